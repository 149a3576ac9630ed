//! The engine: runs commands on aggregates through cqrs-es, with who/when
//! stored as metadata on every event, retries for its own commands, and a
//! clear conflict error for people's commands.

use crate::accounts::history::{Account, AccountCommand};
use crate::audit::checkpoint::{self, Checkpoints, RecordCheckpoint};
use crate::audit::merkle;
use crate::audit::verify::check_store;
use crate::clock::SharedClock;
use crate::domain::ids::{MilestoneId, TaskKey};
use crate::domain::plan::{Plan, PlanCommand, PlanError, SyncPlan};
use crate::domain::task::{Actor, DeliveryOutcome, Milestone, Stamp, Task, TaskAction, TaskCommand, TaskError};
use crate::plan::{load, PlanDefinition};
use crate::projections::{self, CatchUp};
use crate::store::info::{self, InitialiseStore, StoreInfo, StoreMode};
use crate::store::repository::{Append, Batch, EventRepository, RequestRecord};
use crate::store::requests::{Request, RequestId};
use crate::store::{DbUrl, Store, StoreError};
use cqrs_es::persist::{PersistedEventStore, PersistenceError};
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, EventStore};
use std::collections::HashMap;
use std::time::Duration;

pub mod baseline;

type Framework<A> = CqrsFramework<A, PersistedEventStore<EventRepository, A>>;

/// Bounded retries for commands the engine issues itself.
const SYSTEM_ATTEMPTS: u32 = 30;
/// Bounded retries for a batch of the engine's commands (see `execute_batch`).
const BATCH_ATTEMPTS: u32 = 60;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{task}: {source}")]
    Rejected { task: String, source: TaskError },
    #[error("kế hoạch {plan}: {source}")]
    PlanRejected { plan: String, source: PlanError },
    #[error("tài khoản {account}: {source}")]
    AccountRejected {
        account: String,
        source: crate::accounts::history::AccountRejection,
    },
    #[error("{0}: đã có thay đổi khác trong lúc này, hãy tải lại và thử lại")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("lỗi lưu trữ sự kiện ở {aggregate}: {reason}")]
    Persistence { aggregate: String, reason: String },
    /// Asked to make a store of one kind the other kind.
    #[error(transparent)]
    StoreKind(#[from] info::StoreKindError),
    /// An idempotency key already used by the same account for another request.
    #[error("mã yêu cầu {0} đã dùng cho một yêu cầu khác; yêu cầu mới cần mã mới")]
    RequestReused(String),
}

impl EngineError {
    pub fn task_error(&self) -> Option<&TaskError> {
        match self {
            Self::Rejected { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What loading a plan did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoadReport {
    pub plan: String,
    pub tasks: usize,
    pub milestones: usize,
    pub withdrawn: usize,
    pub events_written: i64,
}

/// What a person's action did: the milestone after it (its obligations
/// included), whether the request had already been carried out (a retry with
/// the same key: nothing was written), and what could not be done after the
/// events committed. Those events stand; a warning only says that the views
/// or the reply lag behind them.
#[derive(Debug, Clone, Default)]
pub struct Acted {
    pub milestone: Option<Milestone>,
    pub replayed: bool,
    pub warnings: Vec<String>,
}

/// What a plan load did, or had done when its request was first carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub report: LoadReport,
    pub replayed: bool,
}

pub struct Engine {
    pub store: Store,
    pub clock: SharedClock,
    /// Read once when the store is opened; changes only when this engine
    /// initialises the store.
    mode: std::sync::RwLock<StoreMode>,
    tasks: Framework<Task>,
    plans: Framework<Plan>,
    checkpoints: Framework<Checkpoints>,
    accounts: Framework<Account>,
    stores: Framework<StoreInfo>,
}

/// What `checkpoint` recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckpointReport {
    pub root: String,
    pub events: u64,
    pub aggregates: u64,
    pub up_to: [i64; 2],
}

fn framework<A: Aggregate<Services = ()>>(store: &Store) -> Framework<A> {
    CqrsFramework::new(PersistedEventStore::new_event_store(store.repository()), vec![], ())
}

/// A framework whose commands join `batch` instead of writing.
fn batch_framework<A: Aggregate<Services = ()>>(batch: &Batch) -> Framework<A> {
    CqrsFramework::new(PersistedEventStore::new_event_store(batch.repository()), vec![], ())
}

/// The event metadata: the actor's fields (account, e-mail, name, agency,
/// channel and its details; or the component, version and host) and the
/// claimed time, all hashed with the event.
fn metadata(stamp: &Stamp) -> HashMap<String, String> {
    let mut m = HashMap::new();
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&stamp.by) {
        for (k, v) in fields {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            m.insert(k, text);
        }
    }
    m.insert("at".to_string(), stamp.at.to_rfc3339());
    m
}

/// The metadata of a command run for a request with an idempotency key.
fn request_metadata(stamp: &Stamp, request: Option<&Request>) -> HashMap<String, String> {
    let mut m = metadata(stamp);
    if let Some(r) = request {
        m.insert("request_id".to_string(), r.id.to_string());
    }
    m
}

/// This machine's host name, as events name it.
pub fn host_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        if rc == 0 && end > 0 {
            String::from_utf8_lossy(&buf[..end]).into_owned()
        } else {
            "unknown".to_string()
        }
    })
    .clone()
}

/// The engine's own component as an actor: its name, this release and this host.
pub fn system_actor(component: &str) -> Actor {
    Actor::system_on(component, env!("CARGO_PKG_VERSION"), &host_name())
}

/// The operating-system user running this process (for CLI principals).
pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            // SAFETY: getuid has no preconditions.
            let uid = unsafe { libc::getuid() };
            if uid == 0 {
                "root".to_string()
            } else {
                format!("uid-{uid}")
            }
        })
}

impl Engine {
    pub async fn open(url: &DbUrl, clock: SharedClock) -> Result<Self, StoreError> {
        let store = Store::open(url).await?;
        let mode = store.mode().await?;
        Ok(Self::new(store, mode, clock))
    }

    /// An engine on a store whose kind was read with `Store::mode`.
    pub fn new(store: Store, mode: StoreMode, clock: SharedClock) -> Self {
        Self {
            tasks: framework(&store),
            plans: framework(&store),
            checkpoints: framework(&store),
            accounts: framework(&store),
            stores: framework(&store),
            mode: std::sync::RwLock::new(mode),
            store,
            clock,
        }
    }

    /// The same store, on another clock.
    pub fn with_clock(self, clock: SharedClock) -> Self {
        let mode = self.mode();
        Self::new(self.store, mode, clock)
    }

    /// The store's kind, as read when it was opened.
    pub fn mode(&self) -> StoreMode {
        *self.mode.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether simulated time belongs here (`--now`, `simulate`, the "MÔ PHỎNG" marks).
    pub fn is_simulation(&self) -> bool {
        self.mode().is_simulation()
    }

    /// Makes a new store a production or a simulation store, recording it
    /// as the store's first event. Nothing happens if it already is that
    /// kind; it is refused if it is the other kind (a store made by an
    /// earlier release is production).
    pub async fn initialise(&self, simulation: bool) -> Result<StoreMode, EngineError> {
        let mode = match self.store.mode().await? {
            StoreMode::Uninitialised => {
                let stamp = self.stamp(system_actor("store"));
                let command = InitialiseStore {
                    simulation,
                    stamp: stamp.clone(),
                };
                Self::run(&self.stores, info::AGGREGATE_ID, command, &stamp, true)
                    .await
                    .map_err(|e| match e {
                        AggregateError::UserError(kind) => EngineError::StoreKind(kind),
                        other => Self::persistence(info::AGGREGATE_ID, other),
                    })?;
                self.store.mode().await?
            }
            other => other,
        };
        *self.mode.write().unwrap_or_else(|e| e.into_inner()) = mode;
        if mode.is_simulation() != simulation {
            return Err(info::StoreKindError(mode.is_simulation()).into());
        }
        Ok(mode)
    }

    /// Before the first write to a new store: it becomes a production store.
    async fn ensure_initialised(&self) -> Result<(), EngineError> {
        if self.mode() != StoreMode::Uninitialised {
            return Ok(());
        }
        match self.store.mode().await? {
            StoreMode::Uninitialised => self.initialise(false).await.map(|_| ()),
            other => {
                *self.mode.write().unwrap_or_else(|e| e.into_inner()) = other;
                Ok(())
            }
        }
    }

    /// A stamp for an action by `by`, now.
    pub fn stamp(&self, by: Actor) -> Stamp {
        Stamp {
            by,
            at: self.clock.now(),
        }
    }

    async fn run<A: Aggregate>(
        fw: &Framework<A>,
        id: &str,
        command: impl Into<A::Command>,
        stamp: &Stamp,
        retry: bool,
    ) -> Result<(), AggregateError<A::Error>>
    where
        A::Command: Clone,
    {
        let command: A::Command = command.into();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match fw.execute_with_metadata(id, command.clone(), metadata(stamp)).await {
                Err(AggregateError::AggregateConflict) if retry && attempt < SYSTEM_ATTEMPTS => {
                    let pause = (10 * u64::from(attempt)).min(500) + rand::random::<u64>() % 50;
                    tracing::debug!(aggregate = id, attempt, "xung đột ghi đồng thời, thử lại");
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                other => return other,
            }
        }
    }

    fn persistence<E: std::error::Error>(id: &str, e: AggregateError<E>) -> EngineError {
        let reason = match e {
            AggregateError::DatabaseConnectionError(e) => format!("mất kết nối cơ sở dữ liệu: {e}"),
            AggregateError::DeserializationError(e) => format!("không đọc được sự kiện: {e}"),
            AggregateError::UnexpectedError(e) => e.to_string(),
            other => other.to_string(),
        };
        EngineError::Persistence {
            aggregate: id.to_string(),
            reason: crate::store::one_line(&reason),
        }
    }

    /// Runs a person's command. A lost race is reported, not retried: the
    /// person decided on a state that no longer exists.
    pub async fn execute(&self, key: &TaskKey, command: TaskCommand) -> Result<(), EngineError> {
        self.execute_task(key, command, false).await
    }

    /// Runs a person's action on one milestone, brings the views up to date
    /// and returns the milestone after it (its obligations included).
    ///
    /// With an idempotency key, the action is recorded with the key in the
    /// transaction of its events; a retry with the same key and the same
    /// action writes nothing and returns the milestone as the first run left
    /// it, and the same key with another action is refused. Once the events
    /// have committed, nothing that follows (views, reading the result) turns
    /// the action into a failure: it comes back as a warning.
    pub async fn act(
        &self,
        key: &TaskKey,
        by: Actor,
        milestone: &MilestoneId,
        action: TaskAction,
        request: Option<&RequestId>,
    ) -> Result<Acted, EngineError> {
        if let TaskAction::Extend { until, .. } = &action {
            self.check_extension(key, *until).await?;
        }
        let what = serde_json::json!({ "task": key.to_string(), "action": format!("{action:?}") });
        let request = request.map(|id| Request::new(&by, id.clone(), &what));
        let id = key.to_string();
        let outcome = |appends: &[Append]| {
            let sequence = appends
                .iter()
                .filter(|a| a.aggregate_type() == Task::TYPE)
                .flat_map(|a| a.events())
                .filter(|e| e.aggregate_id == id)
                .map(|e| e.sequence)
                .max();
            serde_json::json!({ "task": id, "sequence": sequence })
        };
        let command = TaskCommand {
            stamp: self.stamp(by),
            action,
        };
        let commands = [(key.clone(), command)];
        let (outcome, replayed) = self
            .once(request.as_ref(), async {
                let (_, outcome) = self
                    .execute_batch(None, &commands, false, request.as_ref(), &outcome)
                    .await?;
                Ok(outcome)
            })
            .await?;
        let mut acted = Acted {
            replayed,
            ..Acted::default()
        };
        if let Err(e) = self.catch_up().await {
            acted.warnings.push(format!("chưa cập nhật được các khung nhìn: {e}"));
        }
        let sequence = outcome["sequence"].as_u64().map(|s| s as usize);
        match self.task_at(&id, sequence).await {
            Ok(task) => acted.milestone = task.milestone(milestone).cloned(),
            Err(e) => acted.warnings.push(format!("chưa đọc được kết quả: {e}")),
        }
        for w in &acted.warnings {
            tracing::warn!(task = %id, "đã ghi thao tác nhưng {w}");
        }
        Ok(acted)
    }

    /// An extension's date within the plan (its period, or `extend_until`).
    async fn check_extension(&self, key: &TaskKey, until: chrono::NaiveDate) -> Result<(), EngineError> {
        let plan = self.store.plan_view(key.plan.as_str()).await?;
        let Some(header) = plan.as_ref().and_then(|p| p.plan.header.as_ref()) else {
            return Ok(());
        };
        crate::domain::task::inputs::check_extension(until, header.latest_extension()).map_err(|source| {
            EngineError::Rejected {
                task: key.task.to_string(),
                source,
            }
        })
    }

    /// The outcome of `first`, run unless the request was already carried
    /// out, and whether it was (then nothing is run, and the outcome is the
    /// one recorded). A conflict may be the same request committed meanwhile
    /// by a retry: then that one's outcome is the answer.
    async fn once(
        &self,
        request: Option<&Request>,
        first: impl std::future::Future<Output = Result<serde_json::Value, EngineError>>,
    ) -> Result<(serde_json::Value, bool), EngineError> {
        let Some(request) = request else {
            return Ok((first.await?, false));
        };
        if let Some(outcome) = self.recorded(request).await? {
            return Ok((outcome, true));
        }
        match first.await {
            Err(EngineError::Conflict(what)) => match self.recorded(request).await? {
                Some(outcome) => Ok((outcome, true)),
                None => Err(EngineError::Conflict(what)),
            },
            other => other.map(|outcome| (outcome, false)),
        }
    }

    /// The outcome recorded for a request with this key, if any; a key
    /// recorded for another request is refused.
    async fn recorded(&self, request: &Request) -> Result<Option<serde_json::Value>, EngineError> {
        match self.store.recorded_request(request).await? {
            Some(r) if r.fingerprint == request.fingerprint => Ok(Some(r.outcome)),
            Some(_) => Err(EngineError::RequestReused(request.id.to_string())),
            None => Ok(None),
        }
    }

    /// A task as its events up to `sequence` (all of them without one) make it.
    async fn task_at(&self, id: &str, sequence: Option<usize>) -> Result<Task, EngineError> {
        let events = PersistedEventStore::<_, Task>::new_event_store(self.store.repository())
            .load_events(id)
            .await
            .map_err(|e| Self::persistence(id, e))?;
        let mut task = Task::default();
        for e in events
            .into_iter()
            .take_while(|e| sequence.is_none_or(|s| e.sequence <= s))
        {
            task.apply(e.payload);
        }
        Ok(task)
    }

    /// Runs a command the engine issues itself (scheduler, dispatcher):
    /// stamped with the component's name, retried on conflict.
    pub async fn execute_system(&self, key: &TaskKey, component: &str, action: TaskAction) -> Result<(), EngineError> {
        let command = TaskCommand {
            stamp: self.stamp(system_actor(component)),
            action,
        };
        self.execute_task(key, command, true).await
    }

    async fn execute_task(&self, key: &TaskKey, command: TaskCommand, retry: bool) -> Result<(), EngineError> {
        self.ensure_initialised().await?;
        let id = key.to_string();
        let stamp = command.stamp.clone();
        Self::run(&self.tasks, &id, command, &stamp, retry)
            .await
            .map_err(|e| Self::task_failure(key, e))
    }

    fn task_failure(key: &TaskKey, e: AggregateError<TaskError>) -> EngineError {
        match e {
            AggregateError::UserError(source) => EngineError::Rejected {
                task: key.task.to_string(),
                source,
            },
            AggregateError::AggregateConflict => EngineError::Conflict(key.task.to_string()),
            other => Self::persistence(&key.to_string(), other),
        }
    }

    fn plan_failure(plan: &str, e: AggregateError<PlanError>) -> EngineError {
        match e {
            AggregateError::UserError(source) => EngineError::PlanRejected {
                plan: plan.to_string(),
                source,
            },
            other => Self::persistence(plan, other),
        }
    }

    /// Runs each command on its task (distinct tasks) and writes every event they
    /// produce in one transaction: all or nothing. A domain rejection of any
    /// command rejects the whole batch (EngineError::Rejected naming that task).
    /// A concurrent write to any of the tasks reloads and retries the whole batch
    /// (bounded, like execute_system); metadata/stamps as execute_task writes them.
    pub async fn execute_tasks_atomically(&self, commands: Vec<(TaskKey, TaskCommand)>) -> Result<(), EngineError> {
        self.execute_batch(None, &commands, true, None, &|_| serde_json::Value::Null)
            .await
            .map(|_| ())
    }

    /// The commands of a batch, the plan's first, run on aggregates loaded
    /// now and written in one transaction, with the record of `request` if
    /// there is one (its outcome computed from what the batch appends). The
    /// engine's own batches (`retry`) are loaded and decided again on a
    /// conflict. Returns the number of events written and the outcome.
    async fn execute_batch(
        &self,
        plan: Option<(&str, &SyncPlan)>,
        commands: &[(TaskKey, TaskCommand)],
        retry: bool,
        request: Option<&Request>,
        outcome: &(dyn Fn(&[Append]) -> serde_json::Value + Sync),
    ) -> Result<(usize, serde_json::Value), EngineError> {
        let mut seen = std::collections::HashSet::new();
        if let Some((key, _)) = commands.iter().find(|(key, _)| !seen.insert(key)) {
            // Both commands would be decided on the same stored state.
            return Err(EngineError::Persistence {
                aggregate: key.to_string(),
                reason: "một lô lệnh có hai lệnh trên cùng nhiệm vụ".into(),
            });
        }
        self.ensure_initialised().await?;
        let name = || match plan {
            Some((id, _)) => format!("kế hoạch {id}"),
            None => commands
                .iter()
                .map(|(k, _)| k.task.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let batch = Batch::new(&self.store);
            if let Some((id, sync)) = plan {
                let plans: Framework<Plan> = batch_framework(&batch);
                plans
                    .execute_with_metadata(id, sync.clone().into(), request_metadata(&sync.stamp, request))
                    .await
                    .map_err(|e| Self::plan_failure(id, e))?;
            }
            let tasks: Framework<Task> = batch_framework(&batch);
            for (key, command) in commands {
                tasks
                    .execute_with_metadata(
                        &key.to_string(),
                        command.clone(),
                        request_metadata(&command.stamp, request),
                    )
                    .await
                    .map_err(|e| Self::task_failure(key, e))?;
            }
            let outcome = outcome(&batch.appends());
            let record = request.map(|r| RequestRecord::new(r, &outcome));
            match batch.commit_with(record.as_ref()).await {
                // A batch spans many tasks, so under several processes it
                // loses races more often than one command: it keeps trying
                // longer, with growing pauses (at most about 25 s in all).
                Err(PersistenceError::OptimisticLockError) if retry && attempt < BATCH_ATTEMPTS => {
                    let pause = (10 * u64::from(attempt)).min(500) + rand::random::<u64>() % 50;
                    tracing::debug!(batch = %name(), attempt, "xung đột ghi đồng thời, thử lại cả lô");
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(PersistenceError::OptimisticLockError) => return Err(EngineError::Conflict(name())),
                Err(e) => return Err(Self::persistence::<TaskError>(&name(), e.into())),
                Ok(written) => return Ok((written, outcome)),
            }
        }
    }

    /// Runs a command on an account (id = the user's id). People's commands
    /// are not retried on conflict; the engine's own (imports) are.
    pub async fn execute_account(&self, id: &str, command: AccountCommand, retry: bool) -> Result<(), EngineError> {
        self.ensure_initialised().await?;
        let stamp = command.stamp.clone();
        Self::run(&self.accounts, id, command, &stamp, retry)
            .await
            .map_err(|e| match e {
                AggregateError::UserError(source) => EngineError::AccountRejected {
                    account: id.to_string(),
                    source,
                },
                AggregateError::AggregateConflict => EngineError::Conflict(format!("tài khoản {id}")),
                other => Self::persistence(id, other),
            })
    }

    /// Makes the store match a plan definition: registers new tasks, emits
    /// amendments only for what changed, and withdraws tasks no longer listed.
    pub async fn load_plan(&self, plan: &PlanDefinition) -> Result<LoadReport, EngineError> {
        self.load_plan_as(plan, Actor::operator(&os_user(), &host_name())).await
    }

    /// Loads a plan as `by`: an administrator's account (the web and the
    /// API) or the operator at this host (the CLI and `serve`). Every event
    /// of the load names them, and the plan's events name the file.
    pub async fn load_plan_as(&self, plan: &PlanDefinition, by: Actor) -> Result<LoadReport, EngineError> {
        Ok(self.load_plan_for(plan, by, None).await?.report)
    }

    /// Loads a plan as `by`, the plan and all its tasks in one transaction:
    /// a load that fails or is killed half-way leaves nothing of itself.
    /// With an idempotency key, the load is recorded with its report; a
    /// retry of the same file with the same key is answered with that
    /// report, and the key with another file is refused.
    pub async fn load_plan_for(
        &self,
        plan: &PlanDefinition,
        by: Actor,
        request: Option<&RequestId>,
    ) -> Result<Loaded, EngineError> {
        self.ensure_initialised().await?;
        if let Some(text) = &plan.text {
            // The text, by the SHA-256 its load records: the plan in force
            // can be downloaded, and its directory edited, from the web. A
            // text no event names (the load fails) is harmless.
            self.store.put_file(&plan_text(plan, text), self.clock.now()).await?;
        }
        let request = request.map(|id| Request::new(&by, id.clone(), &serde_json::json!({ "load": plan.source })));
        let plan_id = plan.id().to_string();
        let load = async {
            let stamp = self.stamp(by);
            let prefix = format!("{plan_id}/");
            let stored: Vec<TaskKey> = self
                .store
                .aggregate_ids(Task::TYPE, &prefix)
                .await?
                .iter()
                .filter_map(|id| TaskKey::parse(id).ok())
                .collect();
            let (sync_plan, commands): (SyncPlan, _) = load::commands(plan, &stored, &stamp);
            let withdrawn = commands
                .iter()
                .filter(|(_, c)| matches!(c.action, TaskAction::Withdraw { .. }))
                .count();
            let outcome = |appends: &[Append]| {
                let report = LoadReport {
                    plan: plan_id.clone(),
                    tasks: plan.tasks.len(),
                    milestones: plan.tasks.iter().map(|t| t.milestones.len()).sum(),
                    withdrawn,
                    events_written: appends.iter().map(|a| a.events().len() as i64).sum(),
                };
                serde_json::to_value(report).unwrap_or_default()
            };
            let batch = self.execute_batch(
                Some((&plan_id, &sync_plan)),
                &commands,
                true,
                request.as_ref(),
                &outcome,
            );
            Ok(batch.await?.1)
        };
        let (outcome, replayed) = self.once(request.as_ref(), load).await?;
        Ok(Loaded {
            report: Self::report_from(&plan_id, outcome)?,
            replayed,
        })
    }

    fn report_from(plan: &str, outcome: serde_json::Value) -> Result<LoadReport, EngineError> {
        serde_json::from_value(outcome).map_err(|e| EngineError::Persistence {
            aggregate: plan.to_string(),
            reason: format!("không đọc được kết quả đã ghi của yêu cầu: {e}"),
        })
    }

    /// Records how delivering a directory notice of `plan` went, as the dispatcher.
    pub async fn record_notice_delivery(
        &self,
        plan: &str,
        key: &str,
        outcome: DeliveryOutcome,
    ) -> Result<(), EngineError> {
        let stamp = self.stamp(system_actor("dispatcher"));
        let command = PlanCommand::RecordNoticeDelivery {
            key: key.to_string(),
            outcome,
            stamp: stamp.clone(),
        };
        Self::run(&self.plans, plan, command, &stamp, true)
            .await
            .map_err(|e| Self::plan_failure(plan, e))
    }

    /// Records a checkpoint: the Merkle root over the heads of every chain,
    /// after checking every chain (a broken store is not blessed).
    pub async fn checkpoint(&self) -> Result<CheckpointReport, EngineError> {
        self.ensure_initialised().await?;
        // Up to the last event of a real chain, so that checkpointing twice
        // with nothing new in between records nothing.
        let checker = check_store(&self.store, |_| {})
            .await?
            .map_err(|p| EngineError::Persistence {
                aggregate: format!("{} {}", p.aggregate_type, p.aggregate_id),
                reason: format!("không ghi điểm kiểm vì kho sự kiện có lỗi: {p}"),
            })?;
        let covered = checker.covered;
        let up_to = [covered.tx, covered.position];
        let (heads, events) = checker.heads_at(up_to);
        let changed = checker.changed_heads(up_to);
        let report = CheckpointReport {
            root: merkle::root(&heads),
            events,
            aggregates: heads.len() as u64,
            up_to,
        };
        let stamp = self.stamp(system_actor("audit"));
        let command = RecordCheckpoint {
            root: report.root.clone(),
            events: report.events,
            aggregates: report.aggregates,
            up_to,
            heads: changed,
            stamp: stamp.clone(),
        };
        Self::run(&self.checkpoints, checkpoint::AGGREGATE_ID, command, &stamp, true)
            .await
            .map_err(|e| Self::persistence(checkpoint::AGGREGATE_ID, e))?;
        Ok(report)
    }

    /// Brings the views up to date with every event committed before this call.
    pub async fn catch_up(&self) -> Result<CatchUp, StoreError> {
        projections::catch_up_with_present(&self.store, Duration::from_secs(10)).await
    }
}

/// A plan's text as a stored file (`evidence_files`, by its SHA-256).
fn plan_text(plan: &PlanDefinition, text: &str) -> crate::domain::files::Evidence {
    crate::domain::files::Evidence {
        attachment: crate::domain::task::Attachment {
            sha256: crate::domain::files::sha256(text.as_bytes()),
            name: plan.source.file_name(),
            size: text.len() as u64,
            media_type: PLAN_TEXT_MEDIA.to_string(),
        },
        bytes: text.as_bytes().to_vec(),
    }
}

/// The media type plan texts are stored with.
pub const PLAN_TEXT_MEDIA: &str = "application/toml";
