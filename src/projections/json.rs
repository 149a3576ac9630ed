//! The documented JSON shape of tasks (README, "JSON output"), shared by
//! the CLI's `--format json` and the HTTP API.

use crate::domain::ids::AgencyCode;
use crate::domain::task::Milestone;
use crate::projections::views::{timeliness, TaskView};
use chrono::NaiveDate;
use serde_json::{json, Value};

fn codes(list: &[AgencyCode]) -> Vec<&str> {
    list.iter().map(AgencyCode::as_str).collect()
}

fn milestone_json(m: &Milestone, today: NaiveDate, tz: chrono_tz::Tz, detail: bool) -> Value {
    let mut v = json!({
        "id": m.spec.id,
        "title": m.spec.title,
        "due": m.due().to_string(),
        "status": m.status.as_str(),
        "timeliness": timeliness(m, today, tz),
    });
    if detail {
        let extra = json!({
            "kind": m.spec.kind,
            "planned_due": m.spec.due.to_string(),
            "submitted": m.submitted,
            "approved": m.approved,
            "closed": m.closed,
            "last_reason": m.last_reason,
            "reports": m.reports,
            "kpis": m.kpis,
        });
        if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
            a.extend(b);
        }
    }
    v
}

/// The documented JSON shape of a task (see README, "JSON output").
pub fn task_json(view: &TaskView, today: NaiveDate, tz: chrono_tz::Tz, detail: bool) -> Value {
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
        "withdrawn": view.task.withdrawn,
        "milestones": view.task.milestones.iter().map(|m| milestone_json(m, today, tz, detail)).collect::<Vec<_>>(),
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
