//! The dispatcher: delivers queued messages as one digest per agency and
//! send window, then records the outcome on each task (`ReminderSent` or
//! `ReminderFailed`). A crash after the server accepted a digest but before
//! the outcome was stored leaves the rows queued: the next pass sends the
//! same digest again with the same Message-ID, so nothing is ever dropped
//! and a mail client can recognise the duplicate.

use super::email::{self, EmailError};
use super::notice::{self, NoticeMail};
use super::transport::Transport;
use super::{Digest, DigestItem, ItemKind, Role};
use crate::domain::dates::local_date;
use crate::domain::ids::AgencyCode;
use crate::domain::task::{DeliveryOutcome, TaskAction};
use crate::engine::{Engine, EngineError};
use crate::projections::views::{OutboxRow, PlanView, TaskView, DIRECTORY_NOTICE};
use crate::scheduling::parse_item;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The advisory lock that lets one process at a time deliver to one
/// agency of one plan: a stable 64-bit key from SHA-256, the same in every
/// process and version.
fn group_lock(plan: &str, agency: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("kehoach-dispatch/{plan}/{agency}"));
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The Inspection Committee, whose digests carry the latest checkpoint root.
const INSPECTORS: &str = "UBKT";

/// How the dispatcher delivers.
pub struct Dispatcher {
    pub transport: Transport,
    /// From: header, `Tên <địa.chỉ>` or a bare address.
    pub from: String,
    /// Web address the links in e-mails start with.
    pub base_url: String,
    /// Right-hand side of Message-IDs.
    pub mail_domain: String,
    /// Attempts before a delivery is marked failed for good.
    pub max_attempts: u32,
    /// Test hook: exit the process right after the server accepted a
    /// message, before its outcome is stored (KEHOACH_CRASH_AFTER_SEND=1).
    pub crash_after_send: bool,
}

/// One digest this pass sent or failed to send.
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    pub agency: String,
    pub window: NaiveDate,
    pub message_id: String,
    pub addresses: Vec<String>,
    pub items: usize,
    pub outcome: String,
    pub ok: bool,
    /// The key of the directory notice this was, if it was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// Waits between attempts: 1, 4, 16, 64, 256 minutes…
pub fn backoff(attempt: u32) -> Duration {
    Duration::minutes(4_i64.saturating_pow(attempt.saturating_sub(1)).min(24 * 60))
}

fn kind_of(s: &str) -> ItemKind {
    match s {
        "overdue" => ItemKind::Overdue,
        "escalation" => ItemKind::Escalation,
        "submitted" => ItemKind::Submitted,
        "approved" => ItemKind::Approved,
        "returned" => ItemKind::Returned,
        _ => ItemKind::Upcoming,
    }
}

/// The plan part of a task's aggregate id (`plan/task`).
fn plan_of(aggregate_id: &str) -> &str {
    aggregate_id.split('/').next().unwrap_or_default()
}

fn role_of(s: &str) -> Role {
    match s {
        "advisory" => Role::Advisory,
        "lead" => Role::Lead,
        "inspector" => Role::Inspector,
        _ => Role::Implementer,
    }
}

/// The send window of a row: its day, or for state-change notices the local
/// day they were queued on.
fn window_of(row: &OutboxRow, tz: chrono_tz::Tz) -> NaiveDate {
    row.window_day
        .as_deref()
        .and_then(|d| d.parse().ok())
        .or_else(|| {
            DateTime::parse_from_rfc3339(&row.queued_at)
                .ok()
                .map(|t| local_date(t.with_timezone(&Utc), tz))
        })
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("không soạn được thư cho {agency}: {source}")]
    Email { agency: String, source: EmailError },
}

impl Dispatcher {
    /// One pass at `now`: every queued message whose attempt is due. On a
    /// shared PostgreSQL database the work is shared out by (plan, agency):
    /// each process takes the agencies whose lock it gets and skips the
    /// others, which another process is delivering (or, if it died, whose
    /// lock PostgreSQL released with its connection for the next pass).
    pub async fn dispatch(&self, engine: &Engine, now: DateTime<Utc>) -> Result<Vec<Sent>, DispatchError> {
        engine.catch_up().await?;
        let due = engine.store.outbox_due(now, None).await?;
        let groups: BTreeSet<(String, String)> = due
            .iter()
            .map(|r| (plan_of(&r.aggregate_id).to_string(), r.agency.clone()))
            .collect();
        if groups.is_empty() {
            return Ok(vec![]);
        }
        let plans: HashMap<String, PlanView> = engine
            .store
            .plan_views()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut report = Vec::new();
        for (plan_id, agency) in groups {
            let Some(plan) = plans.get(&plan_id) else { continue };
            let work = self.dispatch_group(engine, plan, &agency, now);
            if let Some(sent) = engine.store.exclusively(group_lock(&plan_id, &agency), work).await? {
                report.extend(sent?);
            }
        }
        Ok(report)
    }

    /// Delivers one agency's due messages of one plan, one digest per send window.
    async fn dispatch_group(
        &self,
        engine: &Engine,
        plan: &PlanView,
        agency: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Sent>, DispatchError> {
        // Under the lock, and after every commit so far is readable: a
        // digest another process has just sent shows as sent here.
        engine.catch_up().await?;
        let rows: Vec<OutboxRow> = engine
            .store
            .outbox_due(now, Some(agency))
            .await?
            .into_iter()
            .filter(|r| plan_of(&r.aggregate_id) == plan.id)
            .collect();
        // Directory notices first: they are about who receives the rest.
        let (notices, rows): (Vec<OutboxRow>, Vec<OutboxRow>) = rows
            .into_iter()
            .partition(|r| r.kind == DIRECTORY_NOTICE && r.aggregate_id == plan.id);
        let mut report = Vec::new();
        if !notices.is_empty() {
            // The notice itself may be newer than the plan view read before the lock.
            let fresh = engine.store.plan_view(&plan.id).await?;
            let plan = fresh.as_ref().unwrap_or(plan);
            for row in &notices {
                report.extend(self.deliver_notice(engine, plan, row, now).await?);
            }
        }
        let mut ids: Vec<String> = rows.iter().map(|r| r.aggregate_id.clone()).collect();
        ids.dedup();
        let tasks: HashMap<String, TaskView> = engine
            .store
            .task_views_by_id(&ids)
            .await?
            .into_iter()
            .map(|v| (v.id.clone(), v))
            .collect();
        let mut windows: BTreeMap<NaiveDate, Vec<&OutboxRow>> = BTreeMap::new();
        for row in &rows {
            windows.entry(window_of(row, plan.tz())).or_default().push(row);
        }
        for (window, rows) in windows {
            report.push(self.deliver(engine, plan, agency, window, &rows, &tasks, now).await?);
        }
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        &self,
        engine: &Engine,
        plan: &PlanView,
        agency: &str,
        window: NaiveDate,
        rows: &[&OutboxRow],
        tasks: &HashMap<String, TaskView>,
        now: DateTime<Utc>,
    ) -> Result<Sent, DispatchError> {
        let header = plan.plan.header.as_ref();
        let tz = plan.tz();
        let directory = AgencyCode::parse(agency)
            .ok()
            .and_then(|a| plan.plan.agency(&a).cloned());
        let mut addresses: Vec<String> = directory.iter().flat_map(|a| a.emails.iter().cloned()).collect();
        for m in directory.iter().flat_map(|a| a.members.iter()) {
            addresses.extend(m.emails.iter().cloned());
        }
        addresses.dedup();

        let mut items: Vec<DigestItem> = rows
            .iter()
            .filter_map(|r| item(r, tasks, window, &self.base_url))
            .collect();
        items.sort_by_key(|i| {
            (
                !(i.days_left < 0 || matches!(i.kind, ItemKind::Overdue | ItemKind::Escalation)),
                i.due,
                i.task_id.clone(),
            )
        });
        let keys: Vec<String> = rows
            .iter()
            .map(|r| format!("{}#{}#{}", r.aggregate_id, r.milestone_id, r.reminder_key))
            .collect();
        let message_id = email::message_id(agency, window, &keys, &self.mail_domain);
        let digest = Digest {
            plan_title: header.map(|h| h.title.clone()).unwrap_or_default(),
            agency_code: agency.to_string(),
            agency_name: directory
                .as_ref()
                .map(|a| a.name.clone())
                .unwrap_or_else(|| agency.to_string()),
            recipients: addresses.clone(),
            from: self.from.clone(),
            window,
            message_id: message_id.clone(),
            date: now.with_timezone(&tz).fixed_offset(),
            items,
            audit_root: if agency == INSPECTORS {
                engine.store.latest_checkpoint_root().await?
            } else {
                None
            },
            simulation: engine.is_simulation(),
        };

        let result: Result<String, (String, bool)> = if addresses.is_empty() {
            Err((format!("cơ quan {agency} không có địa chỉ e-mail trong danh mục"), true))
        } else {
            let message = email::render(&digest).map_err(|source| DispatchError::Email {
                agency: agency.to_string(),
                source,
            })?;
            match self.transport.send(&message, &addresses).await {
                Ok(d) => Ok(d.reply),
                Err(e) => Err((e.to_string(), false)),
            }
        };
        if result.is_ok() && self.crash_after_send {
            tracing::error!(%message_id, "KEHOACH_CRASH_AFTER_SEND: dừng ngay sau khi máy chủ nhận thư");
            std::process::exit(70);
        }
        let ok = result.is_ok();
        let outcome_text = match &result {
            Ok(reply) => reply.clone(),
            Err((e, _)) => e.clone(),
        };
        for row in rows {
            let Some((key, milestone)) = parse_item(&row.aggregate_id, &row.milestone_id) else {
                continue;
            };
            let Ok(agency_code) = AgencyCode::parse(&row.agency) else {
                continue;
            };
            let outcome = match &result {
                Ok(reply) => DeliveryOutcome::Sent {
                    message_id: message_id.clone(),
                    addresses: addresses.clone(),
                    reply: reply.clone(),
                },
                Err((error, give_up)) => {
                    let attempt = u32::try_from(row.attempts).unwrap_or(0) + 1;
                    let last = *give_up || attempt >= self.max_attempts;
                    DeliveryOutcome::Failed {
                        attempt,
                        error: error.clone(),
                        next_attempt: (!last).then(|| now + backoff(attempt)),
                    }
                }
            };
            let action = TaskAction::RecordDelivery {
                milestone,
                key: row.reminder_key.clone(),
                agency: agency_code,
                outcome,
            };
            engine.execute_system(&key, "dispatcher", action).await?;
        }
        if !ok {
            tracing::warn!(agency, %window, error = %outcome_text, "gửi thư thất bại");
        }
        Ok(Sent {
            agency: agency.to_string(),
            window,
            message_id,
            addresses,
            items: rows.len(),
            outcome: outcome_text,
            ok,
            notice: None,
        })
    }

    /// Sends one directory notice to the agency's old addresses and records
    /// the outcome on the plan. A notice that cannot be rendered (an old
    /// address that is not one) fails for good rather than blocking the pass.
    async fn deliver_notice(
        &self,
        engine: &Engine,
        plan: &PlanView,
        row: &OutboxRow,
        now: DateTime<Utc>,
    ) -> Result<Option<Sent>, DispatchError> {
        let Some(n) = plan.plan.notice(&row.reminder_key) else {
            return Ok(None);
        };
        if n.is_sent() {
            return Ok(None);
        }
        let tz = plan.tz();
        let message_id = notice::message_id(&plan.id, &n.key, n.agency.as_str(), &self.mail_domain);
        let mail = NoticeMail {
            plan_title: plan.plan.header.as_ref().map(|h| h.title.clone()).unwrap_or_default(),
            agency_code: n.agency.to_string(),
            agency_name: plan
                .plan
                .agency(&n.agency)
                .map_or_else(|| n.agency.to_string(), |a| a.name.clone()),
            recipients: n.to.clone(),
            removed: n.removed.clone(),
            added: n.added.clone(),
            changed_by: n.changed_by.to_string(),
            changed_at: n.changed_at.with_timezone(&tz).fixed_offset(),
            from: self.from.clone(),
            message_id: message_id.clone(),
            date: now.with_timezone(&tz).fixed_offset(),
            simulation: engine.is_simulation(),
        };
        let result: Result<String, (String, bool)> = match notice::render(&mail) {
            Err(e) => Err((format!("không soạn được thư báo thay đổi danh mục: {e}"), true)),
            Ok(message) => match self.transport.send(&message, &n.to).await {
                Ok(d) => Ok(d.reply),
                Err(e) => Err((e.to_string(), false)),
            },
        };
        if result.is_ok() && self.crash_after_send {
            tracing::error!(%message_id, "KEHOACH_CRASH_AFTER_SEND: dừng ngay sau khi máy chủ nhận thư");
            std::process::exit(70);
        }
        let outcome = match &result {
            Ok(reply) => DeliveryOutcome::Sent {
                message_id: message_id.clone(),
                addresses: n.to.clone(),
                reply: reply.clone(),
            },
            Err((error, give_up)) => {
                let attempt = u32::try_from(row.attempts).unwrap_or(0) + 1;
                let last = *give_up || attempt >= self.max_attempts;
                DeliveryOutcome::Failed {
                    attempt,
                    error: crate::store::one_line(error),
                    next_attempt: (!last).then(|| now + backoff(attempt)),
                }
            }
        };
        engine.record_notice_delivery(&plan.id, &n.key, outcome).await?;
        let (ok, outcome_text) = match result {
            Ok(reply) => (true, reply),
            Err((e, _)) => {
                tracing::warn!(agency = %n.agency, key = %n.key, error = %e, "gửi thư báo thay đổi danh mục thất bại");
                (false, e)
            }
        };
        Ok(Some(Sent {
            agency: n.agency.to_string(),
            window: local_date(now, tz),
            message_id,
            addresses: n.to.clone(),
            items: 1,
            outcome: outcome_text,
            ok,
            notice: Some(n.key.clone()),
        }))
    }
}

fn item(row: &OutboxRow, tasks: &HashMap<String, TaskView>, window: NaiveDate, base_url: &str) -> Option<DigestItem> {
    let view = tasks.get(&row.aggregate_id)?;
    let def = view.task.definition.as_ref()?;
    let m = view
        .task
        .milestones
        .iter()
        .find(|m| m.spec.id.as_str() == row.milestone_id)?;
    let record = m.reminders.iter().find(|r| r.key == row.reminder_key);
    let (plan, task) = row.aggregate_id.split_once('/')?;
    // An item about one obligation carries that obligation's deadline.
    let owed = record
        .and_then(|r| r.obligation.as_ref())
        .and_then(|ob| m.obligation(ob));
    let due = owed.map_or(m.due(), |o| o.due);
    Some(DigestItem {
        task_id: task.to_string(),
        task_title: def.title.clone(),
        role: role_of(&row.role),
        kind: kind_of(&row.kind),
        milestone_id: m.spec.id.to_string(),
        milestone_title: m.spec.title.clone(),
        obligation: owed
            .filter(|_| m.obligations.len() > 1)
            .and_then(|o| o.agency.as_ref().map(|a| a.to_string())),
        due,
        days_left: (due - window).num_days(),
        note: record.and_then(|r| r.note.clone()),
        link: format!("{}/tasks/{plan}/{task}", base_url.trim_end_matches('/')),
    })
}
