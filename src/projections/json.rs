//! The documented JSON shape of tasks (README, "JSON output"), shared by
//! the CLI's `--format json` and the HTTP API.

use crate::domain::deadline::Deadlines;
use crate::domain::ids::AgencyCode;
use crate::domain::task::{Milestone, Obligation};
use crate::projections::views::{obligation_timeliness, timeliness, TaskView};
use chrono::NaiveDate;
use serde_json::{json, Value};

fn codes(list: &[AgencyCode]) -> Vec<&str> {
    list.iter().map(AgencyCode::as_str).collect()
}

/// One obligation: whose it is, where it stands and who acted on it.
pub fn obligation_json(o: &Obligation, today: NaiveDate, dl: Deadlines<'_>, detail: bool) -> Value {
    let mut v = json!({
        "agency": o.agency,
        "joint": o.agency.is_none(),
        "status": o.status.as_str(),
        "timeliness": obligation_timeliness(o, today, dl),
        "due": o.due.to_string(),
        "due_legal": dl.legal(o.due).to_string(),
        "submitted": o.submitted,
        "approved": o.approved,
    });
    if detail {
        let extra = json!({
            "extended_until": o.extended_until.map(|d| d.to_string()),
            "fulfilled_by": o.fulfilled_by,
            "closed": o.closed,
            "last_reason": o.last_reason,
            "reports": o.reports,
            "kpis": o.kpis,
        });
        if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
            a.extend(b);
        }
    }
    v
}

/// Each obligation's agency (null for the joint one) and status, as commands report them.
pub fn obligation_states(m: &Milestone) -> Vec<Value> {
    m.obligations
        .iter()
        .map(|o| json!({ "agency": o.agency, "status": o.status.as_str() }))
        .collect()
}

fn milestone_json(m: &Milestone, today: NaiveDate, dl: Deadlines<'_>, detail: bool) -> Value {
    let mut v = json!({
        "id": m.spec.id,
        "title": m.spec.title,
        "due": m.due().to_string(),
        "due_legal": dl.legal(m.due()).to_string(),
        "status": m.status.as_str(),
        "timeliness": timeliness(m, today, dl),
        "obligation": m.spec.obligation.as_str(),
        "obligations": m.obligations.iter().map(|o| obligation_json(o, today, dl, detail)).collect::<Vec<_>>(),
    });
    if detail {
        let extra = json!({
            "kind": m.spec.kind,
            "planned_due": m.spec.due.to_string(),
            "approved": m.approved(),
            "reports": m.reports(),
            "kpis": m.kpis(),
        });
        if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
            a.extend(b);
        }
    }
    v
}

/// The documented JSON shape of a task (see README, "JSON output").
pub fn task_json(view: &TaskView, today: NaiveDate, dl: Deadlines<'_>, detail: bool) -> Value {
    let (plan, id) = view.id.split_once('/').unwrap_or(("", &view.id));
    let Some(def) = &view.task.definition else {
        return json!({ "id": id, "plan": plan });
    };
    let mut v = json!({
        "id": id,
        "plan": plan,
        "title": def.title,
        "lead": def.lead,
        "advisory": codes(&def.advisory),
        "implementers": codes(&def.implementers),
        "coordinators": codes(&def.coordinators),
        "withdrawn": view.task.withdrawn,
        "milestones": view.task.milestones.iter().map(|m| milestone_json(m, today, dl, detail)).collect::<Vec<_>>(),
    });
    if detail {
        let extra = json!({
            "text": def.text,
            "deadline": def.deadline,
            "source": def.source,
            "kpis": def.kpis,
            "version": view.version,
            "updated_at": view.updated_at,
        });
        if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
            a.extend(b);
        }
    }
    v
}
