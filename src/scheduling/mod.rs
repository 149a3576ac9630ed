//! The reminder scheduler: on each tick it reads the due-date index, works
//! out which reminder points have come for each open milestone, and records
//! each as a `ReminderQueued` event (idempotent: a point already recorded is
//! skipped, so two processes or a re-run queue nothing twice). Sending is the
//! dispatcher's job.

pub mod passes;

use crate::domain::dates::local_date;
use crate::domain::ids::{AgencyCode, MilestoneId, TaskKey};
use crate::domain::plan::Plan;
use crate::domain::reminders::{
    escalation_point, next_to_queue, reminder_points, with_advisory, with_coordinators, Recipient, ReminderKind, Role,
};
use crate::domain::task::{obligation_key, Obligation, TaskAction, TaskDefinition};
use crate::engine::{Engine, EngineError};
use crate::projections::views::TaskView;
use crate::store::Store;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

/// A reminder the pass queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Queued {
    pub task: String,
    pub milestone: String,
    pub key: String,
    pub kind: ReminderKind,
    pub covers: Vec<String>,
    pub recipients: Vec<String>,
}

/// The implementers who owe an obligation (one agency, or all of them for a
/// joint one), with the advisory agencies copied.
fn recipients_for_reminder(def: &TaskDefinition, o: &Obligation) -> Vec<Recipient> {
    let implementers = def
        .implementers
        .iter()
        .filter(|a| o.agency.as_ref().is_none_or(|owner| owner == *a))
        .map(|a| Recipient {
            agency: a.clone(),
            role: Role::Implementer,
        })
        .collect();
    with_coordinators(with_advisory(implementers, &def.advisory), &def.coordinators)
}

fn recipients_for_escalation(def: &TaskDefinition, plan: &Plan) -> Vec<Recipient> {
    let mut out = vec![Recipient {
        agency: def.lead.clone(),
        role: Role::Lead,
    }];
    let inspectors = AgencyCode::parse("UBKT").ok().filter(|u| plan.agency(u).is_some());
    if let Some(u) = inspectors.filter(|u| u != &def.lead) {
        out.push(Recipient {
            agency: u,
            role: Role::Inspector,
        });
    }
    out
}

/// Tasks whose reminders one pass queues at the same time on PostgreSQL.
/// SQLite has one writer at a time, and waiting for its lock costs more than
/// taking turns, so there they go one by one.
const TASKS_AT_ONCE: usize = 8;

/// One scheduling pass at `now`: queues every reminder point that has come.
pub async fn schedule(engine: &Engine, now: DateTime<Utc>) -> Result<Vec<Queued>, EngineError> {
    engine.catch_up().await?;
    let mut queued = Vec::new();
    let plans = engine.store.plan_views().await?;
    // Each plan's today, in its own time zone; one read of the index up to
    // the latest of them serves every plan.
    let todays: Vec<Option<NaiveDate>> = plans
        .iter()
        .map(|p| p.plan.header.as_ref().map(|h| local_date(now, h.tz())))
        .collect();
    let Some(latest) = todays.iter().flatten().max() else {
        return Ok(queued);
    };
    // Only the milestones whose next reminder day has come (an index
    // range), so a pass costs what it queues, not what is open.
    let due = engine.store.reminders_due(*latest).await?;
    let mut by_plan: HashMap<&str, BTreeMap<String, Vec<String>>> = HashMap::new();
    let cutoffs: HashMap<&str, String> = plans
        .iter()
        .zip(&todays)
        .filter_map(|(p, today)| Some((p.id.as_str(), today.as_ref()?.to_string())))
        .collect();
    for (task, milestone, day) in &due {
        let plan_id = task.split_once('/').map_or("", |(p, _)| p);
        if cutoffs.get(plan_id).is_some_and(|today| day <= today) {
            let tasks = by_plan.entry(plan_id).or_default();
            tasks.entry(task.clone()).or_default().push(milestone.clone());
        }
    }
    // Each task is its own aggregate, so their commands can run side by side
    // (results kept in task order).
    let at_once = match engine.store {
        Store::Postgres(_) => TASKS_AT_ONCE,
        Store::Sqlite(_) => 1,
    };
    for (plan_view, today) in plans.iter().zip(todays) {
        let plan = &plan_view.plan;
        let (Some(today), Some(by_task)) = (today, by_plan.remove(plan_view.id.as_str())) else {
            continue;
        };
        let ids: Vec<String> = by_task.keys().cloned().collect();
        let views = engine.store.task_views_by_id(&ids).await?;
        let mut passes = stream::iter(views.iter())
            .map(|view| queue_for_task(engine, plan, view, &by_task[&view.id], today))
            .buffered(at_once);
        while let Some(for_task) = passes.next().await {
            queued.extend(for_task?);
        }
    }
    Ok(queued)
}

async fn queue_for_task(
    engine: &Engine,
    plan: &Plan,
    view: &TaskView,
    milestones: &[String],
    today: NaiveDate,
) -> Result<Vec<Queued>, EngineError> {
    let (Some(header), Some(def), Some(key)) = (&plan.header, &view.task.definition, view.key()) else {
        return Ok(vec![]);
    };
    let policy = header.reminders.with(def.reminders.as_ref());
    // Offsets count from the legal deadline (a deadline on a day off ends on
    // the next working day under the Civil Code).
    let deadlines = crate::domain::deadline::Deadlines::of(header);
    let mut out = Vec::new();
    for m in view
        .task
        .milestones
        .iter()
        .filter(|m| milestones.contains(&m.spec.id.to_string()))
    {
        for o in m.obligations.iter().filter(|o| o.reminded()) {
            let ob = o.reference();
            let due = deadlines.legal(o.due);
            let points = reminder_points(&policy, &header.calendar, due, today);
            let mut wanted = Vec::new();
            if let Some((point, covers)) = next_to_queue(&points, |k| m.has_reminder(k, &ob)) {
                wanted.push((point, covers, recipients_for_reminder(def, o)));
            }
            if let Some(point) = escalation_point(&policy, &header.calendar, due, today) {
                if !m.has_reminder(&point.key, &ob) {
                    wanted.push((point, vec![], recipients_for_escalation(def, plan)));
                }
            }
            for (point, covers, recipients) in wanted {
                let action = TaskAction::QueueReminder {
                    milestone: m.spec.id.clone(),
                    obligation: ob.clone(),
                    key: point.key.clone(),
                    kind: point.kind,
                    covers: covers.clone(),
                    recipients: recipients.clone(),
                    window: Some(today),
                };
                engine.execute_system(&key, "scheduler", action).await?;
                out.push(Queued {
                    task: key.task.to_string(),
                    milestone: m.spec.id.to_string(),
                    key: obligation_key(&point.key, &ob),
                    kind: point.kind,
                    covers,
                    recipients: recipients.iter().map(|r| r.agency.to_string()).collect(),
                });
            }
        }
    }
    Ok(out)
}

/// The instants in `[from, until)` at which a cron expression fires in `tz`.
pub fn fire_times(send_at: &str, tz: chrono_tz::Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let Ok(schedule) = cron::Schedule::from_str(send_at) else {
        return vec![];
    };
    let start = tz.from_utc_datetime(&(from - Duration::seconds(1)).naive_utc());
    schedule
        .after(&start)
        .map(|t| t.with_timezone(&Utc))
        .take_while(|t| *t < until)
        .filter(|t| *t >= from)
        .collect()
}

/// The milestone and key a queued item is about, parsed back from the outbox.
pub fn parse_item(aggregate_id: &str, milestone: &str) -> Option<(TaskKey, MilestoneId)> {
    Some((TaskKey::parse(aggregate_id).ok()?, MilestoneId::parse(milestone).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_in_the_morning_in_hanoi_is_one_in_utc() {
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        let from = "2024-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let times = fire_times("0 0 8 * * *", tz, from, from + Duration::days(2));
        let shown: Vec<String> = times.iter().map(|t| t.to_rfc3339()).collect();
        assert_eq!(shown, ["2024-03-01T01:00:00+00:00", "2024-03-02T01:00:00+00:00"]);
    }
}
