//! The dispatcher: delivers queued messages as one digest per agency and
//! send window, the way a mail server would.
//!
//! 1. A digest is fixed before it is sent: its items, its Message-ID (a
//!    function of the agency, the window and the items) and its addresses
//!    are recorded on every item in one transaction (`ReminderBatched`).
//! 2. Each attempt sends that digest, as fixed, to the addresses left to
//!    try, one SMTP transaction per address, and records every address's
//!    answer on every item in one transaction (`ReminderAttempted`).
//! 3. A 5xx is final at once; a 4xx or an unreachable server is tried again
//!    on a schedule spanning `retry_for` (five days by default); an address
//!    refused does not hold back the others. `outbox retry` puts failures
//!    back in the queue (`ReminderRequeued`).
//!
//! A crash at any point is followed by the same digest under the same
//! Message-ID (never a subset under another): before the digest was fixed,
//! nothing was sent; after, it is read back from the events.

use super::contents::{self, Pending};
use super::email::{self, EmailError};
use super::notice::{self, NoticeMail};
use super::transport::Transport;
use super::{Digest, DigestItem, ItemKind, Role};
use crate::domain::dates::local_date;
use crate::domain::directory;
use crate::domain::ids::{AgencyCode, MilestoneId, TaskKey};
use crate::domain::plan::Agency;
use crate::domain::task::{
    Actor, AddressOutcome, AddressResult, Delivery, DeliveryOutcome, TaskAction, TaskCommand, TaskError,
};
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
    /// How long a digest's transient failures are retried, from its first attempt.
    pub retry_for: Duration,
    /// Attempts before a delivery is marked failed for good, if capped.
    pub max_attempts: Option<u32>,
    /// Test hook: exit the process right after the server accepted a
    /// message, before its outcome is stored (KEHOACH_CRASH_AFTER_SEND=1).
    pub crash_after_send: bool,
    /// Set when `serve` is stopping: a pass finishes the digest in hand and
    /// records it, then takes no more.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
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

/// Waits between attempts: 1, 4, 16, 64 minutes, then every four hours.
pub fn backoff(attempt: u32) -> Duration {
    Duration::minutes(4_i64.saturating_pow(attempt.saturating_sub(1)).min(4 * 60))
}

/// How long transient failures are retried by default: five days, so that
/// a server down over a long weekend loses nothing.
pub const DEFAULT_RETRY_FOR: Duration = Duration::days(5);

/// The address recorded for an agency with none in the directory: its
/// attempt fails visibly, like an address refused.
const NO_ADDRESS: &str = "(không có địa chỉ)";

/// A digest as fixed, and where it stands before this attempt.
struct Fixed {
    message_id: String,
    /// Every address it was fixed with, sorted (its To: header).
    addresses: Vec<String>,
    /// Those the next attempt goes to.
    to_try: Vec<String>,
    attempts: u32,
    first_attempt: Option<DateTime<Utc>>,
}

impl Fixed {
    /// The digest `message_id` as a task view records it.
    fn of(message_id: &str, d: &Delivery) -> Option<Self> {
        match d {
            Delivery::Digest {
                message_id: id,
                addresses,
                attempts,
                first_attempt,
                ..
            } if id == message_id => Some(Self {
                message_id: id.clone(),
                addresses: addresses.keys().cloned().collect(),
                to_try: d.to_try(),
                attempts: *attempts,
                first_attempt: *first_attempt,
            }),
            _ => None,
        }
    }
}

/// One command per task for the rows of a digest (a task may have several).
fn per_task(
    rows: &[&OutboxRow],
    action: impl Fn(Vec<(MilestoneId, String)>) -> TaskAction,
) -> Vec<(TaskKey, TaskAction)> {
    let mut by_task: BTreeMap<&str, Vec<(MilestoneId, String)>> = BTreeMap::new();
    for row in rows {
        if let Some((_, milestone)) = parse_item(&row.aggregate_id, &row.milestone_id) {
            by_task
                .entry(&row.aggregate_id)
                .or_default()
                .push((milestone, row.reminder_key.clone()));
        }
    }
    by_task
        .into_iter()
        .filter_map(|(id, items)| Some((TaskKey::parse(id).ok()?, action(items))))
        .collect()
}

/// The task views of the rows' tasks, by id.
async fn tasks_of(engine: &Engine, rows: &[OutboxRow]) -> Result<HashMap<String, TaskView>, DispatchError> {
    let mut ids: Vec<String> = rows.iter().map(|r| r.aggregate_id.clone()).collect();
    ids.sort();
    ids.dedup();
    Ok(engine
        .store
        .task_views_by_id(&ids)
        .await?
        .into_iter()
        .map(|v| (v.id.clone(), v))
        .collect())
}

/// The delivery of a row's item to its agency, as the task view has it.
fn delivery_of<'a>(tasks: &'a HashMap<String, TaskView>, row: &OutboxRow, agency: &AgencyCode) -> Option<&'a Delivery> {
    tasks
        .get(&row.aggregate_id)?
        .task
        .milestones
        .iter()
        .find(|m| m.spec.id.as_str() == row.milestone_id)?
        .reminders
        .iter()
        .find(|r| r.key == row.reminder_key)?
        .deliveries
        .get(agency)
}

/// Runs the dispatcher's commands on every task of a digest in one transaction.
async fn atomically(engine: &Engine, commands: Vec<(TaskKey, TaskAction)>) -> Result<(), EngineError> {
    as_one(engine, crate::engine::system_actor("dispatcher"), commands).await
}

/// Runs commands by `by` on several tasks in one transaction.
async fn as_one(engine: &Engine, by: Actor, commands: Vec<(TaskKey, TaskAction)>) -> Result<(), EngineError> {
    let stamp = engine.stamp(by);
    let commands = commands
        .into_iter()
        .map(|(key, action)| {
            (
                key,
                TaskCommand {
                    stamp: stamp.clone(),
                    action,
                },
            )
        })
        .collect();
    engine.execute_tasks_atomically(commands).await
}

fn kind_of(s: &str) -> ItemKind {
    match s {
        "overdue" => ItemKind::Overdue,
        "escalation" => ItemKind::Escalation,
        "submitted" => ItemKind::Submitted,
        "approved" => ItemKind::Approved,
        "returned" => ItemKind::Returned,
        "message" => ItemKind::Message,
        "extended" => ItemKind::Extended,
        "waived" => ItemKind::Waived,
        _ => ItemKind::Upcoming,
    }
}

/// The (plan, agency) groups of a pass in the order they are delivered:
/// the plans take turns, one agency of each in turn (the first agency of
/// every plan, then the second of every plan, …), so one plan's many
/// digests never hold up another plan's. Within a plan, agencies go in
/// code order.
pub fn plans_in_turn(groups: BTreeSet<(String, String)>) -> Vec<(String, String)> {
    let total = groups.len();
    let mut by_plan: BTreeMap<String, std::collections::VecDeque<String>> = BTreeMap::new();
    for (plan, agency) in groups {
        by_plan.entry(plan).or_default().push_back(agency);
    }
    let mut order = Vec::with_capacity(total);
    while order.len() < total {
        for (plan, agencies) in &mut by_plan {
            if let Some(agency) = agencies.pop_front() {
                order.push((plan.clone(), agency));
            }
        }
    }
    order
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
        "coordinator" => Role::Coordinator,
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
    #[error("mã cơ quan không hợp lệ trong hộp thư đi: {0:?}")]
    Agency(String),
}

impl Dispatcher {
    pub(super) fn stopping(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// One pass at `now`: every queued message whose attempt is due. Plans
    /// take turns, one agency of each in turn ([`plans_in_turn`]), so a plan
    /// with thousands of digests does not hold up another plan's within the
    /// pass. On a
    /// shared PostgreSQL database the work is shared out by (plan, agency):
    /// each process takes the agencies whose lock it gets and skips the
    /// others, which another process is delivering (or, if it died, whose
    /// lock PostgreSQL released with its connection for the next pass).
    /// Personal notices ([`super::personal`]) follow the digests in the same pass.
    pub async fn dispatch(&self, engine: &Engine, now: DateTime<Utc>) -> Result<Vec<Sent>, DispatchError> {
        let report = self.dispatch_digests(engine, now).await;
        if let Err(e) = self.personal(engine, now).await {
            tracing::error!(error = %e, "thông báo riêng lỗi; sẽ thử lại ở lượt sau");
        }
        report
    }

    /// Makes the personal notices the new events call for and sends those due.
    pub async fn personal(
        &self,
        engine: &Engine,
        now: DateTime<Utc>,
    ) -> Result<Vec<super::personal::PersonalSent>, crate::store::StoreError> {
        let made = super::personal::collect(self, engine, now).await?;
        if made > 0 {
            tracing::info!(made, "đã lập thông báo riêng");
        }
        super::personal::deliver(self, engine, now).await
    }

    async fn dispatch_digests(&self, engine: &Engine, now: DateTime<Utc>) -> Result<Vec<Sent>, DispatchError> {
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
        for (plan_id, agency) in plans_in_turn(groups) {
            if self.stopping() {
                break;
            }
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
        let tasks = tasks_of(engine, &rows).await?;
        let tz = plan.tz();
        let today = local_date(now, tz);
        let Ok(code) = AgencyCode::parse(agency) else {
            return Err(DispatchError::Agency(agency.to_string()));
        };
        // Digests already fixed, due again: sent as they were fixed, under
        // their Message-ID, to the addresses left to try.
        let mut fixed: BTreeMap<String, (Option<Fixed>, Vec<&OutboxRow>)> = BTreeMap::new();
        // Items in no digest yet: one new digest per send window that has
        // come. A row of a later window (queued ahead, say by a simulation
        // resumed from an earlier day) waits for its day.
        let mut windows: BTreeMap<NaiveDate, Vec<&OutboxRow>> = BTreeMap::new();
        for row in &rows {
            // Nothing goes out before its day, not even a digest fixed on
            // that day by a run that was then cut short (a simulation
            // resumed from an earlier day).
            if window_of(row, tz) > today {
                continue;
            }
            match &row.message_id {
                Some(id) => {
                    let entry = fixed.entry(id.clone()).or_insert_with(|| {
                        let state = delivery_of(&tasks, row, &code).and_then(|d| Fixed::of(id, d));
                        (state, vec![])
                    });
                    entry.1.push(row);
                }
                None => windows.entry(window_of(row, tz)).or_default().push(row),
            }
        }
        for (window, rows) in windows {
            if self.stopping() {
                return Ok(report);
            }
            // Formed here, its state is known without reading the views back
            // (on a busy PostgreSQL they may lag behind this commit).
            if let Some(state) = self.form(engine, plan, &code, window, &rows).await? {
                fixed.insert(state.message_id.clone(), (Some(state), rows));
            }
        }
        for (message_id, (state, rows)) in fixed {
            if self.stopping() {
                break;
            }
            let Some(state) = state else {
                tracing::warn!(agency, %message_id, "thư tổng hợp chưa có trong khung nhìn; gửi ở lượt sau");
                continue;
            };
            let window = rows.first().map(|r| window_of(r, tz)).unwrap_or(today);
            report.push(
                self.deliver(engine, plan, &code, window, &state, &rows, &tasks, now)
                    .await?,
            );
        }
        Ok(report)
    }

    /// An agency's entry in the plan's directory.
    fn directory_of<'a>(plan: &'a PlanView, agency: &str) -> Option<&'a Agency> {
        AgencyCode::parse(agency).ok().and_then(|a| plan.plan.agency(&a))
    }

    /// Fixes a digest before anything is sent: its items, its Message-ID
    /// (a function of the agency, the window and the items) and its
    /// addresses, recorded on every item in one transaction. None when
    /// another process has put some of the items in a digest meanwhile (this
    /// one's view was behind): nothing is recorded, nothing sent.
    async fn form(
        &self,
        engine: &Engine,
        plan: &PlanView,
        agency: &AgencyCode,
        window: NaiveDate,
        rows: &[&OutboxRow],
    ) -> Result<Option<Fixed>, DispatchError> {
        let keys: Vec<String> = rows
            .iter()
            .map(|r| format!("{}#{}#{}", r.aggregate_id, r.milestone_id, r.reminder_key))
            .collect();
        let message_id = email::message_id(agency.as_str(), window, &keys, &self.mail_domain);
        let mut addresses = Self::directory_of(plan, agency.as_str())
            .map(directory::addresses)
            .unwrap_or_default();
        if addresses.is_empty() {
            // Fails visibly at the first attempt, like an address refused.
            addresses.push(NO_ADDRESS.to_string());
        }
        addresses.sort();
        let commands = per_task(rows, |items| TaskAction::FormDigest {
            agency: agency.clone(),
            items,
            message_id: message_id.clone(),
            addresses: addresses.clone(),
        });
        match atomically(engine, commands).await {
            Ok(()) => Ok(Some(Fixed {
                message_id,
                to_try: addresses.clone(),
                addresses,
                attempts: 0,
                first_attempt: None,
            })),
            Err(EngineError::Rejected {
                source: TaskError::AlreadyInDigest { .. },
                ..
            }) => {
                tracing::info!(%agency, %window, "một tiến trình khác đã đưa các mục này vào thư; bỏ qua ở lượt này");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a fixed digest to the addresses it has left to try, one SMTP
    /// transaction per address (one refused address does not hold back the
    /// others), and records the answers on every item in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        &self,
        engine: &Engine,
        plan: &PlanView,
        agency_code: &AgencyCode,
        window: NaiveDate,
        state: &Fixed,
        rows: &[&OutboxRow],
        tasks: &HashMap<String, TaskView>,
        now: DateTime<Utc>,
    ) -> Result<Sent, DispatchError> {
        let header = plan.plan.header.as_ref();
        let tz = plan.tz();
        let agency = agency_code.as_str();
        let message_id = state.message_id.as_str();
        let directory = Self::directory_of(plan, agency);
        let recipients: Vec<String> = state.addresses.iter().filter(|a| *a != NO_ADDRESS).cloned().collect();
        let to_try = &state.to_try;

        let pending: Vec<Pending> = rows
            .iter()
            .filter_map(|r| pending(r, plan, tasks, window, &self.base_url))
            .collect();
        let folded = contents::fold(pending);
        let digest = Digest {
            plan_title: header.map(|h| h.title.clone()).unwrap_or_default(),
            agency_code: agency.to_string(),
            agency_name: directory
                .as_ref()
                .map(|a| a.name.clone())
                .unwrap_or_else(|| agency.to_string()),
            recipients: recipients.clone(),
            from: plan.plan.mail().sender(&self.from),
            subject_prefix: plan.plan.mail().subject_prefix().to_string(),
            window,
            message_id: message_id.to_string(),
            date: now.with_timezone(&tz).fixed_offset(),
            items: folded.items,
            plan_id: plan.id.clone(),
            base_url: self.base_url.clone(),
            folded: folded.folded,
            closed: folded.closed,
            audit_root: if agency == INSPECTORS {
                engine.store.latest_checkpoint_root().await?
            } else {
                None
            },
            simulation: engine.is_simulation(),
        };
        let results = if recipients.is_empty() {
            vec![AddressResult {
                address: NO_ADDRESS.to_string(),
                outcome: AddressOutcome::Rejected,
                reply: format!("cơ quan {agency} không có địa chỉ e-mail trong danh mục"),
            }]
        } else {
            let message = email::render(&digest).map_err(|source| DispatchError::Email {
                agency: agency.to_string(),
                source,
            })?;
            self.send_each(&message, to_try).await
        };
        if self.crash_after_send && results.iter().any(|r| r.outcome == AddressOutcome::Accepted) {
            tracing::error!(%message_id, "KEHOACH_CRASH_AFTER_SEND: dừng ngay sau khi máy chủ nhận thư");
            std::process::exit(70);
        }
        let attempt = state.attempts.saturating_add(1);
        let deferred = results.iter().any(|r| r.outcome == AddressOutcome::Deferred);
        let next_attempt = (deferred && !self.gives_up(attempt, state.first_attempt.unwrap_or(now), now))
            .then(|| now + backoff(attempt));
        let commands = per_task(rows, |items| TaskAction::RecordAttempt {
            agency: agency_code.clone(),
            items,
            message_id: message_id.to_string(),
            attempt,
            results: results.clone(),
            next_attempt,
        });
        atomically(engine, commands).await?;
        let accepted: Vec<String> = results
            .iter()
            .filter(|r| r.outcome == AddressOutcome::Accepted)
            .map(|r| r.address.clone())
            .collect();
        let refused: Vec<String> = results
            .iter()
            .filter(|r| r.outcome != AddressOutcome::Accepted)
            .map(AddressResult::described)
            .collect();
        if !refused.is_empty() {
            tracing::warn!(agency, %window, %message_id, attempt, retry = ?next_attempt.map(|t| t.to_rfc3339()), refused = %refused.join("; "), "có địa chỉ chưa nhận thư");
        }
        let outcome = match (accepted.is_empty(), refused.is_empty()) {
            (_, true) => results.iter().map(|r| r.reply.clone()).collect::<Vec<_>>().join("; "),
            (true, false) => refused.join("; "),
            (false, false) => format!("đã nhận: {}; chưa nhận: {}", accepted.join(", "), refused.join("; ")),
        };
        Ok(Sent {
            agency: agency.to_string(),
            window,
            message_id: message_id.to_string(),
            addresses: accepted.clone(),
            items: rows.len(),
            outcome,
            ok: !accepted.is_empty(),
            notice: None,
        })
    }

    /// Whether attempt `attempt`, whose digest was first tried at `first`,
    /// is the last: retries span `retry_for` (at least three days by
    /// default), or `max_attempts` if one is set.
    fn gives_up(&self, attempt: u32, first: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.max_attempts.is_some_and(|m| attempt >= m) || now + backoff(attempt) > first + self.retry_for
    }

    /// One SMTP transaction per address. Once the server cannot be reached
    /// (a transient failure), the remaining addresses are deferred untried.
    async fn send_each(&self, message: &lettre::Message, addresses: &[String]) -> Vec<AddressResult> {
        let mut results = Vec::with_capacity(addresses.len());
        let mut unreachable: Option<String> = None;
        for address in addresses {
            if let Some(reason) = &unreachable {
                results.push(AddressResult {
                    address: address.clone(),
                    outcome: AddressOutcome::Deferred,
                    reply: reason.clone(),
                });
                continue;
            }
            let result = match self.transport.send(message, std::slice::from_ref(address)).await {
                Ok(d) => AddressResult {
                    address: address.clone(),
                    outcome: AddressOutcome::Accepted,
                    reply: d.reply,
                },
                Err(e) if e.is_permanent() => AddressResult {
                    address: address.clone(),
                    outcome: AddressOutcome::Rejected,
                    reply: crate::store::one_line(&e.to_string()),
                },
                Err(e) => {
                    let reply = crate::store::one_line(&e.to_string());
                    if !e.is_about_recipient() {
                        unreachable = Some(reply.clone());
                    }
                    AddressResult {
                        address: address.clone(),
                        outcome: AddressOutcome::Deferred,
                        reply,
                    }
                }
            };
            results.push(result);
        }
        results
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
                Err(e) => Err((e.to_string(), e.is_permanent())),
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
                let first = DateTime::parse_from_rfc3339(&row.queued_at).map_or(now, |t| t.with_timezone(&Utc));
                let last = *give_up || self.gives_up(attempt, first, now);
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

/// What `outbox retry` put back in the queue: one digest (or one release
/// 0.2 item) to one agency.
#[derive(Debug, Clone, Serialize)]
pub struct Requeued {
    pub agency: String,
    /// The digest's Message-ID, sent again as it was; None for an item
    /// failed before digests were fixed, which goes in a new digest.
    pub message_id: Option<String>,
    pub items: usize,
    pub last_error: Option<String>,
}

/// Puts deliveries that failed for good (wholly, or for some addresses)
/// back in the queue, as `by`: every item of one digest in one transaction,
/// recorded as `ReminderRequeued`. `agency` and `since` (the local day of
/// the last attempt, or of queuing for older failures) narrow the choice.
pub async fn requeue(
    engine: &Engine,
    by: Actor,
    agency: Option<&AgencyCode>,
    since: Option<NaiveDate>,
) -> Result<Vec<Requeued>, DispatchError> {
    engine.catch_up().await?;
    let plans: HashMap<String, PlanView> = engine
        .store
        .plan_views()
        .await?
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    let rows: Vec<OutboxRow> = engine
        .store
        .outbox(None)
        .await?
        .into_iter()
        .filter(|r| r.status != "queued" && r.last_error.is_some() && r.milestone_id != DIRECTORY_NOTICE)
        .filter(|r| agency.is_none_or(|a| a.as_str() == r.agency))
        .collect();
    let tasks = tasks_of(engine, &rows).await?;
    let mut groups: BTreeMap<(String, String), Vec<&OutboxRow>> = BTreeMap::new();
    for row in &rows {
        let Ok(code) = AgencyCode::parse(&row.agency) else {
            continue;
        };
        let Some(d) = delivery_of(&tasks, row, &code).filter(|d| d.failed_for_good()) else {
            continue;
        };
        let tz = plans
            .get(plan_of(&row.aggregate_id))
            .map_or(chrono_tz::Asia::Ho_Chi_Minh, PlanView::tz);
        let last = match d {
            Delivery::Digest { last_attempt, .. } => *last_attempt,
            _ => None,
        }
        .or_else(|| {
            DateTime::parse_from_rfc3339(&row.queued_at)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        });
        if since.is_some_and(|s| last.is_none_or(|t| local_date(t, tz) < s)) {
            continue;
        }
        let group = row
            .message_id
            .clone()
            .unwrap_or_else(|| format!("{}#{}#{}", row.aggregate_id, row.milestone_id, row.reminder_key));
        groups.entry((row.agency.clone(), group)).or_default().push(row);
    }
    let mut done = Vec::new();
    for ((agency, _), rows) in groups {
        let Ok(code) = AgencyCode::parse(&agency) else { continue };
        let commands = per_task(&rows, |items| TaskAction::Requeue {
            agency: code.clone(),
            items,
        });
        as_one(engine, by.clone(), commands).await?;
        done.push(Requeued {
            agency,
            message_id: rows.first().and_then(|r| r.message_id.clone()),
            items: rows.len(),
            last_error: rows.first().and_then(|r| r.last_error.clone()),
        });
    }
    engine.catch_up().await?;
    Ok(done)
}

/// A row's notice as a digest line, with what folding needs: the
/// obligation it is about and that obligation's status now.
fn pending(
    row: &OutboxRow,
    plan: &PlanView,
    tasks: &HashMap<String, TaskView>,
    window: NaiveDate,
    base_url: &str,
) -> Option<Pending> {
    let view = tasks.get(&row.aggregate_id)?;
    let def = view.task.definition.as_ref()?;
    let m = view
        .task
        .milestones
        .iter()
        .find(|m| m.spec.id.as_str() == row.milestone_id)?;
    let record = m.reminders.iter().find(|r| r.key == row.reminder_key);
    let (plan_id, task) = row.aggregate_id.split_once('/')?;
    // An item about one obligation carries that obligation's deadline.
    let owed = record
        .and_then(|r| r.obligation.as_ref())
        .and_then(|ob| m.obligation(ob));
    let due = owed.map_or(m.due(), |o| o.due);
    let deadlines = plan.deadlines();
    let owner = owed.and_then(|o| o.agency.as_ref());
    // Whose part it is, by the agency's name, where there are several.
    let obligation = owner
        .filter(|_| m.obligations.len() > 1)
        .map(|a| plan.plan.agency_name(a));
    let (role, kind) = (role_of(&row.role), kind_of(&row.kind));
    // Straight to the agency's part of the milestone, with the form the
    // recipient is asked to use open.
    let open = match (role, kind) {
        (Role::Lead | Role::Advisory, ItemKind::Submitted) => Some("approve"),
        (Role::Implementer, ItemKind::Overdue | ItemKind::Escalation | ItemKind::Upcoming | ItemKind::Returned) => {
            Some("report")
        }
        _ => None,
    };
    let label = owed.map_or_else(|| "chung".to_string(), |o| o.label());
    let item = DigestItem {
        task_id: task.to_string(),
        task_title: def.title.clone(),
        role,
        kind,
        milestone_id: m.spec.id.to_string(),
        milestone_title: m.spec.title.clone(),
        obligation,
        due,
        due_moved: deadlines.moved_note(due),
        days_left: (deadlines.legal(due) - window).num_days(),
        note: record.and_then(|r| r.note.clone()),
        link: format!(
            "{}{}",
            base_url.trim_end_matches('/'),
            crate::projections::lists::obligation_link(plan_id, task, m.spec.id.as_str(), &label, open)
        ),
    };
    Some(Pending {
        item,
        obligation: owner.map(ToString::to_string),
        queued_at: row.queued_at.clone(),
        status: owed.map(|o| o.status),
        settled: owed.is_some_and(|o| {
            o.recorded.as_ref().is_some_and(|r| {
                matches!(
                    r.state,
                    crate::domain::task::RecordedState::Done | crate::domain::task::RecordedState::NotDone
                )
            })
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_take_turns() {
        let mut groups = BTreeSet::new();
        for agency in ["A1", "A2", "A3", "A4"] {
            groups.insert(("big".to_owned(), agency.to_owned()));
        }
        groups.insert(("small".to_owned(), "S1".to_owned()));
        groups.insert(("zzz".to_owned(), "Z1".to_owned()));
        let order: Vec<String> = plans_in_turn(groups)
            .into_iter()
            .map(|(p, a)| format!("{p}/{a}"))
            .collect();
        assert_eq!(order, ["big/A1", "small/S1", "zzz/Z1", "big/A2", "big/A3", "big/A4"]);
        assert!(plans_in_turn(BTreeSet::new()).is_empty());
    }
}
