//! What the API and the pages both do: find a task the caller may see,
//! turn a request's fields into a domain action, and run it after the role
//! gate (the domain then applies its own rules).

use super::auth::Caller;
use super::{AppState, WebError};
use crate::accounts::{Action, ActionFields, User};
use crate::domain::dates::parse_date;
use crate::domain::ids::{AgencyCode, KpiKey, MilestoneId, TaskKey};
use crate::domain::task::{KpiValue, Milestone, Obligation, TaskAction};
use crate::projections::views::{resolve_task, PlanView, TaskView};
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
    /// New deadline for `extend`, YYYY-MM-DD or DD/MM/YYYY.
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
}

impl ActionInput {
    pub fn into_action(self, action: Action, milestone: MilestoneId) -> Result<TaskAction, WebError> {
        let agency = match self.agency.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) => Some(AgencyCode::parse_loose(a)?),
            None => None,
        };
        let until = match self.until.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => Some(parse_date(u).map_err(|e| WebError::bad_request(format!("hạn mới: {e}")))?),
            None => None,
        };
        let kpis = self
            .kpis
            .into_iter()
            .map(|(k, value)| KpiKey::parse(&k).map(|key| KpiValue { key, value }))
            .collect::<Result<_, _>>()?;
        let evidence = self.evidence.into_iter().filter(|e| !e.trim().is_empty()).collect();
        let fields = ActionFields {
            note: self.note,
            reason: self.reason,
            until,
            kpis,
            evidence,
        };
        action
            .build(milestone, agency, fields)
            .ok_or_else(|| WebError::bad_request("cần hạn mới (until)"))
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
    let user = &caller.user;
    if !user.role_allows(action) {
        return Err(WebError::forbidden_role(&action.label_vi().to_lowercase()));
    }
    let milestone = MilestoneId::parse(milestone)?;
    let task_action = input.into_action(action, milestone.clone())?;
    Ok(state
        .engine
        .act(key, user.actor(caller.channel.clone()), &milestone, task_action)
        .await?)
}

/// The user's agency's roles on a task, in Vietnamese.
pub fn role_on(user: &User, view: &TaskView) -> String {
    let Some(d) = &view.task.definition else {
        return String::new();
    };
    let a = &user.agency;
    let roles: Vec<&str> = [
        (d.lead == *a, "Lãnh đạo"),
        (d.advisory.contains(a), "Tham mưu"),
        (d.implementers.contains(a), "Thực hiện"),
    ]
    .iter()
    .filter(|(yes, _)| *yes)
    .map(|(_, label)| *label)
    .collect();
    if roles.is_empty() {
        "Theo dõi".into()
    } else {
        roles.join(", ")
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

/// Loads a plan file's text; diagnostics come back as 422 with file:line:col.
pub async fn load_plan_text(state: &AppState, caller: &Caller, text: &str) -> Result<(StatusCode, Value), WebError> {
    match crate::plan::parse_str(std::path::Path::new("kế-hoạch-tải-lên.toml"), text) {
        Err(diags) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "error": { "code": "invalid_plan", "message": format!("{} lỗi trong tệp kế hoạch; không nạp gì", diags.len()),
                    "diagnostics": diags.iter().map(|d| d.to_string()).collect::<Vec<_>>() } }),
        )),
        Ok(plan) => {
            let by = caller.user.actor(caller.channel.clone());
            let r = state.engine.load_plan_as(&plan, by).await?;
            state.engine.catch_up().await?;
            Ok((
                StatusCode::OK,
                json!({ "plan": r.plan, "tasks": r.tasks, "milestones": r.milestones, "withdrawn": r.withdrawn, "events_written": r.events_written }),
            ))
        }
    }
}
