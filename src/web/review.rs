//! The review screen of a task page: what an agency filed in the current
//! round of an obligation (its reports and submission: notes, KPI values
//! against their targets, links and files, who and when), the notice of a
//! return shown to the agency, and the confirmation page a decision goes
//! through before it is made. Everything a person reads here is in
//! Vietnamese, by title, label and name, never by id.

use super::auth::Caller;
use super::forms::ActionInput;
use super::pages::urlencode;
use super::WebError;
use crate::accounts::Action;
use crate::audit::asof::Stored;
use crate::domain::ids::{AgencyCode, MilestoneId, TaskKey};
use crate::domain::plan::Plan;
use crate::domain::task::{
    format_number, with_unit, Actor, Attachment, Filed, Milestone, Obligation, ObligationRef, Stamp, TaskCommand,
    TaskDefinition, TaskEvent,
};
use crate::projections::views::{PlanView, TaskView};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

/// A file size in Vietnamese units: "512 byte", "12,3 KB", "1,2 MB".
pub fn size_text(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let b = bytes as f64;
    let (value, unit) = if b < KB {
        return format!("{bytes} byte");
    } else if b < KB * KB {
        (b / KB, "KB")
    } else if b < KB * KB * KB {
        (b / KB / KB, "MB")
    } else {
        (b / KB / KB / KB, "GB")
    };
    format!("{} {unit}", format_number((value * 10.0).round() / 10.0))
}

/// The kind of a file in words, from its media type.
pub fn media_type_text(media_type: &str) -> &'static str {
    match media_type.split(';').next().unwrap_or_default().trim() {
        "application/pdf" => "PDF",
        "image/jpeg" => "Ảnh JPEG",
        "image/png" => "Ảnh PNG",
        "image/gif" => "Ảnh GIF",
        "image/webp" => "Ảnh WebP",
        "application/msword" | "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "Word",
        "application/vnd.ms-excel" | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "Excel",
        "application/vnd.oasis.opendocument.text" => "Văn bản OpenDocument",
        "application/vnd.oasis.opendocument.spreadsheet" => "Bảng tính OpenDocument",
        "text/plain" => "Văn bản thuần",
        "text/csv" => "Bảng CSV",
        m if m.starts_with("image/") => "Ảnh",
        _ => "Tệp khác",
    }
}

/// Whether an evidence line is a web address to link (http or https only:
/// anything else stays text).
pub fn web_link(evidence: &str) -> bool {
    let lower = evidence.trim().to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && lower.len() > "https://".len()
        && !evidence.trim().chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Who acted, as people read it: the person's name and agency name, never
/// an account id.
pub fn actor_text(actor: &Actor, plan: &Plan) -> String {
    plan.actor_text(actor)
}

/// A local date and time, dd/mm/yyyy HH:MM.
pub fn when_text(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%d/%m/%Y %H:%M").to_string()
}

/// Where the task page's files are served (see the evidence file routes).
pub fn file_links(task_path: &str, a: &Attachment) -> (String, Option<String>) {
    let download = format!("{task_path}/files/{}", a.sha256);
    let view = crate::domain::files::viewable(&a.media_type).then(|| format!("{download}?view=1"));
    (download, view)
}

/// One reported KPI value against its target: label, value, target, met.
fn kpi_json(def: &TaskDefinition, key: &crate::domain::ids::KpiKey, value: f64) -> Value {
    match def.kpi(key) {
        Some(k) => {
            let met = k.met_by(value);
            json!({ "label": k.label, "value": with_unit(value, &k.unit), "target": k.to_string(),
                    "met": met, "verdict": if met { "đạt" } else { "chưa đạt" } })
        }
        None => json!({ "label": "Chỉ tiêu không còn trong kế hoạch", "value": format_number(value),
                        "target": "", "met": false, "verdict": "" }),
    }
}

/// What one obligation's current round filed, in order, for the template.
pub fn filed_json(def: &TaskDefinition, plan: &Plan, tz: Tz, task_path: &str, filed: &[Filed]) -> Vec<Value> {
    filed
        .iter()
        .map(|f| {
            json!({
                "submission": f.submission,
                "kind": if f.submission { "Nộp mốc" } else { "Báo cáo tiến độ" },
                "note": f.note,
                "kpis": f.kpis.iter().map(|k| kpi_json(def, &k.key, k.value)).collect::<Vec<_>>(),
                "links": f.evidence.iter().map(|e| json!({ "text": e, "web": web_link(e), "href": e.trim() })).collect::<Vec<_>>(),
                "files": f.attachments.iter().map(|a| {
                    let (download, view) = file_links(task_path, a);
                    json!({ "name": a.name, "size": size_text(a.size), "type": media_type_text(&a.media_type),
                            "sha256": a.sha256.as_str(), "download": download, "view": view })
                }).collect::<Vec<_>>(),
                "who": actor_text(&f.stamp.by, plan),
                "when": when_text(f.stamp.at, tz),
            })
        })
        .collect()
}

/// The agency's returned obligations, each with who returned it, when and
/// why (from the task's last return of that obligation up to `until`), for
/// the notice at the top of the page.
pub fn return_notices(
    user_agency: &crate::domain::ids::AgencyCode,
    def: &TaskDefinition,
    milestones: &[Milestone],
    events: &[Stored],
    until: Option<DateTime<Utc>>,
    plan: &Plan,
    tz: Tz,
) -> Vec<Value> {
    milestones
        .iter()
        .flat_map(|m| m.obligations.iter().map(move |o| (m, o)))
        .filter(|(_, o)| {
            o.status == crate::domain::task::MilestoneStatus::Returned && o.owed_by(user_agency, &def.implementers)
        })
        .map(|(m, o)| {
            let last = last_return(m, o, events, until);
            json!({
                "milestone": m.spec.id, "title": m.spec.title,
                "who": last.map(|(by, _, _)| actor_text(by, plan)),
                "when": last.map(|(_, at, _)| when_text(at, tz)),
                "reason": last.map(|(_, _, r)| r.to_string()).or_else(|| o.last_reason.clone()),
            })
        })
        .collect()
}

/// The last return of obligation `o` of milestone `m` at or before `until`.
fn last_return<'a>(
    m: &Milestone,
    o: &Obligation,
    events: &'a [Stored],
    until: Option<DateTime<Utc>>,
) -> Option<(&'a Actor, DateTime<Utc>, &'a str)> {
    events.iter().rev().find_map(|s| match &s.event {
        TaskEvent::MilestoneReturned {
            milestone,
            obligation,
            reason,
            stamp,
        } if *milestone == m.spec.id
            && obligation.as_ref().is_none_or(|r| *r == o.reference())
            && until.is_none_or(|u| stamp.at <= u) =>
        {
            Some((&stamp.by, stamp.at, reason.as_str()))
        }
        _ => None,
    })
}

/// Decisions that close or send back an agency's work ask for confirmation
/// on the web before they are made (the API and the CLI do not).
pub fn needs_confirmation(action: Action) -> bool {
    matches!(
        action,
        Action::Submit | Action::Approve | Action::Return | Action::Waive | Action::Cancel
    )
}

/// A decision posted without `confirm=1`: checked as it would be made, then
/// shown back with what it will do, for the person to confirm.
pub struct Confirmation<'a> {
    pub caller: &'a Caller,
    pub key: &'a TaskKey,
    pub plan: &'a PlanView,
    pub view: &'a TaskView,
    pub milestone: &'a str,
    pub action: Action,
    pub now: DateTime<Utc>,
}

impl Confirmation<'_> {
    /// The confirmation page's context, or why the decision would be refused
    /// (the same refusal as when it is made: nothing is written either way).
    pub fn context(&self, input: &ActionInput, form: &[(String, String)], post_to: &str) -> Result<Value, WebError> {
        let user = &self.caller.user;
        if !user.role_allows(self.action) {
            return Err(WebError::forbidden_role(&self.action.label_vi().to_lowercase()));
        }
        let id = MilestoneId::parse(self.milestone)?;
        let command = TaskCommand {
            stamp: Stamp {
                by: user.actor(self.caller.channel.clone()),
                at: self.now,
            },
            action: input.clone().into_action(self.action, id.clone())?,
        };
        let events = self.view.task.decide(command)?;
        let m = self
            .view
            .task
            .milestone(&id)
            .ok_or_else(|| WebError::not_found(format!("không có mốc {id}")))?;
        let decided = events.iter().find_map(decided_obligation);
        let o = m
            .obligations
            .iter()
            .find(|o| decided.is_some_and(|r| *r == o.reference()))
            .or(m.obligations.first());
        let def = self.view.task.definition.as_ref();
        let tz = self.plan.tz();
        let whose = o.map(|o| self.whose(o)).unwrap_or_default();
        let task_path = format!(
            "/tasks/{}/{}",
            urlencode(self.key.plan.as_str()),
            urlencode(self.key.task.as_str())
        );
        let verb = self.action.label_vi();
        Ok(json!({
            "title": format!("Xác nhận: {} mốc {}", verb.to_lowercase(), m.spec.title),
            "question": format!("{verb} mốc «{}» của {whose}?", m.spec.title),
            "task_title": def.map(|d| d.title.clone()),
            "consequence": consequence(self.action, &whose),
            "action": self.action.as_str(),
            "verb": verb,
            "note": input.note, "reason": input.reason,
            "filed": match (def, o) {
                (Some(def), Some(o)) if matches!(self.action, Action::Approve | Action::Return) =>
                    filed_json(def, &self.plan.plan, tz, &task_path, &o.filed),
                _ => vec![],
            },
            "post_to": post_to,
            "fields": form.iter().filter(|(k, _)| k != "csrf" && k != "confirm")
                .map(|(k, v)| json!({ "name": k, "value": v })).collect::<Vec<_>>(),
            "back": format!("{task_path}?m={m}#m-{m}", m = urlencode(self.milestone)),
        }))
    }

    /// Whose obligation, by the agency's name: "«Ủy ban nhân dân thị xã»",
    /// or for a joint one the agency that submitted it, else the implementers.
    fn whose(&self, o: &Obligation) -> String {
        let name = |c: &AgencyCode| {
            self.plan
                .plan
                .agency(c)
                .map_or_else(|| c.to_string(), |a| a.name.clone())
        };
        match o.agency.as_ref().or(o.fulfilled_by.as_ref()) {
            Some(c) => format!("«{}»", name(c)),
            None => "các cơ quan thực hiện (nghĩa vụ chung)".to_string(),
        }
    }
}

/// The obligation a decided event is about.
fn decided_obligation(e: &TaskEvent) -> Option<&ObligationRef> {
    match e {
        TaskEvent::MilestoneSubmitted { obligation, .. }
        | TaskEvent::MilestoneApproved { obligation, .. }
        | TaskEvent::MilestoneReturned { obligation, .. }
        | TaskEvent::MilestoneWaived { obligation, .. }
        | TaskEvent::MilestoneCancelled { obligation, .. } => obligation.as_ref(),
        _ => None,
    }
}

/// What a decision will do, in a sentence for the confirmation page.
fn consequence(action: Action, whose: &str) -> String {
    match action {
        Action::Submit => format!(
            "Mốc của {whose} được gửi lên để cấp trên duyệt; cấp trên nhận thông báo. \
             Sau khi nộp, mốc chỉ làm tiếp được nếu bị trả lại."
        ),
        Action::Approve => format!(
            "Mốc của {whose} được ghi là đã duyệt và cơ quan nhận thông báo. Việc duyệt ghi vào lịch sử, không hoàn tác được."
        ),
        Action::Return => format!(
            "Mốc trở lại cho {whose} làm tiếp; cơ quan nhận thông báo kèm lý do, lý do hiện ở đầu trang nhiệm vụ của cơ quan. \
             Những gì đã nộp trong lượt này vẫn còn trong lịch sử."
        ),
        Action::Waive => format!("{whose} không phải thực hiện mốc này nữa. Việc miễn ghi vào lịch sử, không hoàn tác được."),
        Action::Cancel => format!("Mốc bị hủy đối với {whose}. Việc hủy ghi vào lịch sử, không hoàn tác được."),
        other => other.label_vi().to_string(),
    }
}

/// The notice after an action, by the milestone's title (and the agency's
/// name when the action named one): "Đã ghi nhận: duyệt mốc «…» của «…»".
pub fn done_message(action: Action, milestone: Option<&Milestone>, agency: Option<&str>, plan: &Plan) -> String {
    let title = milestone.map_or_else(String::new, |m| format!(" «{}»", m.spec.title));
    let whose = agency
        .and_then(|a| AgencyCode::parse(&a.to_ascii_uppercase()).ok())
        .map(|c| match plan.agency(&c) {
            Some(a) => format!(" của «{}»", a.name),
            None => format!(" của {c}"),
        })
        .unwrap_or_default();
    let verb = match action {
        Action::Submit => "nộp".to_string(),
        Action::Discuss => return format!("Đã gửi tin nhắn về mốc{title}{whose}; bên kia sẽ được báo qua thư."),
        other => other.label_vi().to_lowercase(),
    };
    format!("Đã ghi nhận: {verb} mốc{title}{whose}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::KpiKey;
    use crate::domain::task::{Comparator, KpiTarget, TargetValue};

    fn kpi(comparator: Comparator, target: TargetValue, unit: &str, per_year: bool) -> KpiTarget {
        KpiTarget {
            better: None,
            key: KpiKey::parse("chi-tieu").unwrap(),
            label: "Chỉ tiêu".into(),
            comparator,
            target,
            unit: unit.into(),
            per_year,
            baseline: None,
        }
    }

    #[test]
    fn targets_and_values_read_the_vietnamese_way() {
        let models = kpi(Comparator::AtLeast, TargetValue::Value(1000.0), "mô hình", true);
        assert_eq!(models.to_string(), "≥ 1.000 mô hình/năm");
        let share = kpi(
            Comparator::Between,
            TargetValue::Range { min: 80.0, max: 92.5 },
            "%",
            false,
        );
        assert_eq!(share.to_string(), "80–92,5%");
        assert_eq!(with_unit(2.0, "mô hình"), "2 mô hình");
        assert_eq!(with_unit(85.5, "%"), "85,5%");
        assert_eq!(with_unit(1234.0, ""), "1.234");
    }

    #[test]
    fn sizes_and_kinds_in_words() {
        assert_eq!(size_text(512), "512 byte");
        assert_eq!(size_text(12_595), "12,3 KB");
        assert_eq!(size_text(1_258_291), "1,2 MB");
        assert_eq!(size_text(2 * 1024 * 1024), "2 MB");
        assert_eq!(media_type_text("application/pdf"), "PDF");
        assert_eq!(media_type_text("image/jpeg"), "Ảnh JPEG");
        assert_eq!(
            media_type_text("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            "Word"
        );
        assert_eq!(media_type_text("application/vnd.ms-excel"), "Excel");
        assert_eq!(media_type_text("application/zip"), "Tệp khác");
        assert!(crate::domain::files::viewable("application/pdf") && crate::domain::files::viewable("image/png"));
        assert!(!crate::domain::files::viewable("application/msword"));
    }

    #[test]
    fn only_web_addresses_become_links() {
        assert!(web_link("https://ducpho.gov.vn/van-ban/123"));
        assert!(web_link("HTTP://example.vn/a"));
        for text in [
            "javascript:alert(1)",
            "Số 12/KH-UBND",
            "ftp://x.vn/a",
            "https://",
            "https://a.vn/x y",
            "data:text/html,hi",
        ] {
            assert!(!web_link(text), "{text}");
        }
    }
}
