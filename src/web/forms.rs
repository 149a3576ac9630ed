//! What the API and the pages both do: find a task the caller may see,
//! turn a request's fields into a domain action, and run it after the role
//! gate (the domain then applies its own rules).

use super::auth::Caller;
use super::{AppState, WebError};
use crate::accounts::{Action, ActionFields, User};
use crate::domain::dates::parse_iso_date;
use crate::domain::ids::{AgencyCode, KpiKey, MilestoneId, TaskKey};
use crate::domain::task::{KpiValue, Milestone, Obligation, TaskAction};
use crate::engine::Acted;
use crate::projections::views::{resolve_task, PlanView, TaskView};
use crate::store::requests::RequestId;
use axum::http::StatusCode;
use serde_json::{json, Value};

/// The fields an action may carry, from JSON or a form.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub reason: String,
    /// New deadline for `extend`, YYYY-MM-DD.
    #[serde(default)]
    pub until: Option<String>,
    /// Reported KPI values by key.
    #[serde(default)]
    pub kpis: std::collections::BTreeMap<String, f64>,
    /// Links or document numbers backing a report.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// The obligation's agency, where the milestone has several.
    #[serde(default)]
    pub agency: Option<String>,
    /// Evidence files, already checked and stored (`files::attach`); from
    /// the request's file parts, never from its JSON.
    #[serde(skip)]
    pub attachments: Vec<crate::domain::task::Attachment>,
}

impl ActionInput {
    pub fn into_action(self, action: Action, milestone: MilestoneId) -> Result<TaskAction, WebError> {
        // Given means given: an empty agency or date is refused, not taken as absent.
        let agency = self
            .agency
            .as_deref()
            .map(|a| AgencyCode::parse(&a.to_ascii_uppercase()))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .map(|u| parse_iso_date(u).map_err(|e| WebError::bad_request(format!("hạn mới (YYYY-MM-DD): {e}"))))
            .transpose()?;
        let kpis = self
            .kpis
            .into_iter()
            .map(|(k, value)| KpiKey::parse(&k).map(|key| KpiValue::new(key, value)))
            .collect::<Result<_, _>>()?;
        let evidence = self.evidence.into_iter().filter(|e| !e.trim().is_empty()).collect();
        let fields = ActionFields {
            note: self.note,
            reason: self.reason,
            until,
            kpis,
            evidence,
            attachments: self.attachments,
        };
        action.build(milestone, agency, fields).ok_or_else(|| {
            WebError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "until_required",
                "gia hạn cần hạn mới (until)",
            )
        })
    }
}

/// A task the user may see, or 404 (no such task) / 403 (not theirs).
pub async fn visible_task(
    state: &AppState,
    plans: &[PlanView],
    user: &User,
    task: &str,
    plan: Option<&str>,
) -> Result<(TaskKey, PlanView, TaskView), WebError> {
    let (key, plan) = resolve_task(plans, task, plan)?;
    let view =
        state.store().task_view(&key).await?.ok_or_else(|| {
            WebError::not_found(format!("không có nhiệm vụ {} trong kế hoạch {}", key.task, key.plan))
        })?;
    if !user.can_see(&view) {
        return Err(WebError::not_your_task());
    }
    Ok((key, plan, view))
}

/// Runs an action for the user: the role gate, then the domain's rules.
pub async fn perform(
    state: &AppState,
    caller: &Caller,
    key: &TaskKey,
    milestone: &str,
    action: Action,
    input: ActionInput,
) -> Result<Option<Milestone>, WebError> {
    Ok(perform_once(state, caller, key, milestone, action, input, None)
        .await?
        .milestone)
}

/// Whether `user` may write in the discussion of the obligation a request
/// names (its agency, else the user's own part, else the only one): the
/// obligation's own agency, or a supervisor of a lead or advisory agency.
async fn discussion_allowed(
    state: &AppState,
    user: &crate::accounts::User,
    key: &TaskKey,
    milestone: &str,
    agency: Option<&str>,
) -> Result<(), WebError> {
    let refused = || WebError::forbidden_role(&Action::Discuss.label_vi().to_lowercase());
    let views = state.store().task_views_by_id(&[key.to_string()]).await?;
    let view = views
        .first()
        .ok_or_else(|| WebError::not_found(format!("không có nhiệm vụ {}", key.task)))?;
    let def = view.task.definition.as_ref().ok_or_else(refused)?;
    let Some(m) = view.task.milestones.iter().find(|m| m.spec.id.as_str() == milestone) else {
        // The domain names the unknown milestone.
        return Ok(());
    };
    let o = match agency {
        // A code that cannot be one names no obligation: the domain says so.
        Some(code) => AgencyCode::parse(&code.trim().to_ascii_uppercase())
            .ok()
            .and_then(|code| m.obligation_named(def, &code)),
        None => m
            .obligations
            .iter()
            .find(|o| o.owed_by(&user.agency, &def.implementers))
            .or_else(|| (m.obligations.len() == 1).then(|| &m.obligations[0])),
    };
    match o {
        Some(o) if user.may_on(Action::Discuss, view, o) => Ok(()),
        Some(_) => Err(refused()),
        // Which part is meant: the domain says so.
        None => Ok(()),
    }
}

/// `perform` for a request that may carry an idempotency key: a retry with
/// the key is answered with the first outcome (`Acted::replayed`).
pub async fn perform_once(
    state: &AppState,
    caller: &Caller,
    key: &TaskKey,
    milestone: &str,
    action: Action,
    input: ActionInput,
    request: Option<&RequestId>,
) -> Result<Acted, WebError> {
    let user = &caller.user;
    if !user.role_allows(action) {
        return Err(WebError::forbidden_role(&action.label_vi().to_lowercase()));
    }
    if action == Action::Discuss {
        // The domain knows agencies, not roles: on another agency's part a
        // lead or advisory agency writes only through its supervisors.
        discussion_allowed(state, user, key, milestone, input.agency.as_deref()).await?;
    }
    let milestone = MilestoneId::parse(milestone)?;
    let task_action = input.into_action(action, milestone.clone())?;
    Ok(state
        .engine
        .act(
            key,
            user.actor(caller.channel.clone()),
            &milestone,
            task_action,
            request,
        )
        .await?)
}

/// The user's agency's roles on a task, in Vietnamese.
pub fn role_on(user: &User, view: &TaskView) -> String {
    match &view.task.definition {
        Some(d) => crate::projections::lists::roles_label(crate::projections::lists::role_bits(d, &user.agency)),
        None => String::new(),
    }
}

/// Submitted obligations waiting for the user's approval (never the user's own agency's).
pub fn approval_queue<'a>(user: &User, views: &'a [TaskView]) -> Vec<(&'a TaskView, &'a Milestone, &'a Obligation)> {
    views
        .iter()
        .filter(|v| user.may(Action::Approve, v))
        .flat_map(|v| {
            v.task.milestones.iter().flat_map(move |m| {
                m.obligations
                    .iter()
                    .filter(move |o| user.may_on(Action::Approve, v, o))
                    .map(move |o| (v, m, o))
            })
        })
        .collect()
}

/// The name a plan text posted on the web is read and recorded under.
pub const UPLOADED_PLAN: &str = "kế-hoạch-tải-lên.toml";

/// Loads a plan file's text; diagnostics come back as 422 with file:line:col.
pub async fn load_plan_text(state: &AppState, caller: &Caller, text: &str) -> Result<(StatusCode, Value), WebError> {
    let (status, value, _) = load_plan_text_once(state, caller, text, None).await?;
    Ok((status, value))
}

/// `load_plan_text` with an idempotency key; also says whether the answer
/// is the first outcome of the key (nothing written now). Once the load has
/// committed, a failure to bring the views up to date is only logged.
pub async fn load_plan_text_once(
    state: &AppState,
    caller: &Caller,
    text: &str,
    request: Option<&RequestId>,
) -> Result<(StatusCode, Value, bool), WebError> {
    match crate::plan::parse_bounded(std::path::Path::new(UPLOADED_PLAN), text) {
        Err(diags) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "error": { "code": "invalid_plan", "message": format!("{} lỗi trong tệp kế hoạch; không nạp gì", diags.len()),
                    "diagnostics": diags.iter().map(|d| d.to_string()).collect::<Vec<_>>() } }),
            false,
        )),
        Ok(plan) => {
            let by = caller.user.actor(caller.channel.clone());
            let loaded = state.engine.load_plan_for(&plan, by, request).await?;
            if let Err(e) = state.engine.catch_up().await {
                tracing::warn!(error = %e, "đã nạp kế hoạch nhưng chưa cập nhật được các khung nhìn");
            }
            let r = loaded.report;
            Ok((
                StatusCode::OK,
                json!({ "plan": r.plan, "tasks": r.tasks, "milestones": r.milestones, "withdrawn": r.withdrawn, "events_written": r.events_written }),
                loaded.replayed,
            ))
        }
    }
}

/// A number as people write it in Vietnamese forms: `.` groups thousands,
/// `,` marks decimals (`1.000` = 1000, `1.000,5` = 1000.5, `12,5` = 12.5),
/// or plain digits (`1000`). Anything else, or a form that reads two ways
/// (`1,000`: one, or one thousand?), is refused with the reason.
pub fn parse_vn_number(text: &str) -> Result<f64, String> {
    let s = text.trim();
    let malformed = || format!("{text:?} không phải số (viết 1.000 cho một nghìn, 1.000,5 hoặc 12,5 cho số thập phân)");
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, fraction) = match digits.split_once(',') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(f) = fraction {
        if !all_digits(f) {
            return Err(malformed());
        }
    }
    let groups: Vec<&str> = whole.split('.').collect();
    let grouped = groups.len() > 1;
    if !groups.iter().all(|g| all_digits(g))
        || (grouped && (groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3)))
    {
        return Err(malformed());
    }
    if !grouped && fraction.is_some_and(|f| f.len() == 3) && whole.len() <= 3 && whole != "0" {
        return Err(format!(
            "{text:?} đọc được hai cách; viết {}.{} nếu là số nguyên, hoặc thêm/bớt chữ số thập phân",
            whole,
            fraction.unwrap_or_default()
        ));
    }
    let plain = format!(
        "{}{}{}",
        if negative { "-" } else { "" },
        groups.concat(),
        fraction.map(|f| format!(".{f}")).unwrap_or_default()
    );
    plain
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(malformed)
}

#[cfg(test)]
mod tests {
    use super::parse_vn_number;
    use crate::domain::task::format_number as format_vn_number;

    #[test]
    fn reads_vietnamese_numbers() {
        for (text, value) in [
            ("1000", 1000.0),
            ("1.000", 1000.0),
            ("1.000,5", 1000.5),
            ("12,5", 12.5),
            ("0,125", 0.125),
            ("1.234.567", 1234567.0),
            (" 85 ", 85.0),
            ("-5", -5.0),
            ("12,50", 12.5),
        ] {
            assert_eq!(parse_vn_number(text), Ok(value), "{text}");
        }
    }

    #[test]
    fn refuses_malformed_and_ambiguous_numbers() {
        for text in [
            "",
            "1e308",
            "12.5",
            "1.00",
            "1000.000,5,5",
            "1,000",
            "1..000",
            ".5",
            "1.",
            "1,",
            "abc",
            "1 000",
            "NaN",
            "inf",
            "1.0000",
            "+5",
            "--5",
        ] {
            assert!(parse_vn_number(text).is_err(), "{text}");
        }
        assert!(parse_vn_number("1,000").unwrap_err().contains("hai cách"));
    }

    #[test]
    fn writes_vietnamese_numbers_that_read_back() {
        for (value, text) in [
            (0.0, "0"),
            (2.0, "2"),
            (85.5, "85,5"),
            (1000.0, "1.000"),
            (1234567.125, "1.234.567,125"),
            (-1500.25, "-1.500,25"),
            (12.0004, "12"),
            (-0.0001, "0"),
        ] {
            assert_eq!(format_vn_number(value), text, "{value}");
        }
        for value in [1000.0, 85.5, 1234567.125, -1500.25, 0.5] {
            assert_eq!(parse_vn_number(&format_vn_number(value)), Ok(value), "{value}");
        }
    }
}
