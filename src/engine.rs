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
use crate::store::repository::EventRepository;
use crate::store::{DbUrl, Store, StoreError};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use std::collections::HashMap;
use std::time::Duration;

type Framework<A> = CqrsFramework<A, PersistedEventStore<EventRepository, A>>;

/// Bounded retries for commands the engine issues itself.
const SYSTEM_ATTEMPTS: u32 = 8;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub plan: String,
    pub tasks: usize,
    pub milestones: usize,
    pub withdrawn: usize,
    pub events_written: i64,
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
                    let pause = 5 * u64::from(attempt) + rand::random::<u64>() % 20;
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
    pub async fn act(
        &self,
        key: &TaskKey,
        by: Actor,
        milestone: &MilestoneId,
        action: TaskAction,
    ) -> Result<Option<Milestone>, EngineError> {
        let command = TaskCommand {
            stamp: self.stamp(by),
            action,
        };
        self.execute(key, command).await?;
        self.catch_up().await?;
        let view = self.store.task_view(key).await?;
        Ok(view.and_then(|v| v.task.milestone(milestone).cloned()))
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
            .map_err(|e| match e {
                AggregateError::UserError(source) => EngineError::Rejected {
                    task: key.task.to_string(),
                    source,
                },
                AggregateError::AggregateConflict => EngineError::Conflict(key.task.to_string()),
                other => Self::persistence(&id, other),
            })
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
        self.ensure_initialised().await?;
        let before = self.store.event_count().await?;
        let stamp = self.stamp(by);
        let prefix = format!("{}/", plan.id());
        let stored: Vec<TaskKey> = self
            .store
            .aggregate_ids(Task::TYPE, &prefix)
            .await?
            .iter()
            .filter_map(|id| TaskKey::parse(id).ok())
            .collect();
        let (sync_plan, commands): (SyncPlan, _) = load::commands(plan, &stored, &stamp);
        let plan_id = plan.id().to_string();
        Self::run(&self.plans, &plan_id, sync_plan, &stamp, true)
            .await
            .map_err(|e| match e {
                AggregateError::UserError(source) => EngineError::PlanRejected {
                    plan: plan_id.clone(),
                    source,
                },
                other => Self::persistence(&plan_id, other),
            })?;
        let mut withdrawn = 0;
        for (key, command) in commands {
            if matches!(command.action, TaskAction::Withdraw { .. }) {
                withdrawn += 1;
            }
            self.execute_task(&key, command, true).await?;
        }
        Ok(LoadReport {
            plan: plan_id,
            tasks: plan.tasks.len(),
            milestones: plan.tasks.iter().map(|t| t.milestones.len()).sum(),
            withdrawn,
            events_written: self.store.event_count().await? - before,
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
            .map_err(|e| match e {
                AggregateError::UserError(source) => EngineError::PlanRejected {
                    plan: plan.to_string(),
                    source,
                },
                other => Self::persistence(plan, other),
            })
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
