//! Views fed by the durable feed. A projection run reads the events after its
//! checkpoint and applies them to the views in the same transaction that
//! moves the checkpoint, so a crash at any point is followed by a catch-up
//! that neither loses nor double-applies an update.

pub mod json;
pub mod lists;
pub mod views;

use crate::domain::plan::{Plan, PlanEvent};
use crate::domain::reminders::next_reminder_on;
use crate::domain::task::{Task, TaskEvent};
use crate::store::feed::{read_after_postgres, read_after_sqlite, Cursor, FeedEvent};
use crate::store::{Store, StoreError};
use cqrs_es::Aggregate;
use sqlx::Row;
use std::collections::BTreeMap;
pub use views::{OutboxRow, PlanView, TaskView};

/// The one projection that keeps `plan_view`, `task_view`, `due_index`,
/// `obligation_index` and `outbox`.
pub const VIEWS: &str = "views";
/// Events read from the feed at a time.
const CHUNK: i64 = 5000;
/// A transaction stops reading the feed after this many events…
const EVENTS_PER_TRANSACTION: i64 = 100_000;
/// …or once it holds this many task views in memory (a few KB each).
const VIEWS_PER_TRANSACTION: usize = 5_000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// Events applied by this run.
    pub applied: u64,
    /// Events applied since the views were last rebuilt.
    pub total: u64,
}

/// What a batch changes: the new state of each touched view.
#[derive(Default)]
struct Changes {
    plans: BTreeMap<String, PlanView>,
    tasks: BTreeMap<String, TaskView>,
}

impl Changes {
    /// Applies one event to the view it belongs to. Views remember the last
    /// sequence they applied, so an event seen twice is skipped.
    fn apply(&mut self, e: &FeedEvent, loaded: &mut Loaded) -> Result<(), StoreError> {
        match e.aggregate_type.as_str() {
            Plan::TYPE => {
                let mut view = match self.plans.remove(&e.aggregate_id) {
                    Some(v) => v,
                    None => loaded
                        .plans
                        .remove(&e.aggregate_id)
                        .unwrap_or_else(|| PlanView::empty(&e.aggregate_id)),
                };
                if e.sequence > view.version {
                    let event: PlanEvent = serde_json::from_str(&e.payload).map_err(|err| e.corrupt(err))?;
                    apply_plan_event(&mut view, e.sequence, event);
                }
                self.plans.insert(e.aggregate_id.clone(), view);
            }
            Task::TYPE => {
                let mut view = match self.tasks.remove(&e.aggregate_id) {
                    Some(v) => v,
                    None => loaded
                        .tasks
                        .remove(&e.aggregate_id)
                        .unwrap_or_else(|| TaskView::empty(&e.aggregate_id)),
                };
                if e.sequence > view.version {
                    let event: TaskEvent = serde_json::from_str(&e.payload).map_err(|err| e.corrupt(err))?;
                    apply_task_event(&mut view, e.sequence, event);
                }
                self.tasks.insert(e.aggregate_id.clone(), view);
            }
            // Checkpoints have no view: `audit verify` reads them from the events.
            // Nor does the store's kind: it is read from `store_info`.
            crate::audit::checkpoint::AGGREGATE_TYPE | crate::store::info::AGGREGATE_TYPE => {}
            // Accounts' operational state is the users tables, written by
            // the command after its event; `audit verify` compares them.
            crate::accounts::history::AGGREGATE_TYPE => {}
            other => tracing::warn!(aggregate_type = other, "bỏ qua sự kiện của loại tổng hợp không biết"),
        }
        Ok(())
    }
}

/// Applies one event of a plan to its view. `audit verify` replays through
/// this too, so that it recomputes the very views the projection writes.
pub(crate) fn apply_plan_event(view: &mut PlanView, sequence: i64, event: PlanEvent) {
    view.plan.apply(event);
    view.version = sequence;
}

/// Applies one event of a task to its view (see `apply_plan_event`).
pub(crate) fn apply_task_event(view: &mut TaskView, sequence: i64, event: TaskEvent) {
    view.updated_at = Some(event.stamp().at);
    view.task.apply(event);
    view.version = sequence;
}

#[derive(Default)]
struct Loaded {
    plans: BTreeMap<String, PlanView>,
    tasks: BTreeMap<String, TaskView>,
}

/// The due-date index rows of a task: each open milestone with its due date,
/// status, and the day its next reminder comes, counted from the legal
/// deadline (none for a submitted milestone, which waits for its
/// supervisors, not its implementers).
/// `audit verify` compares the stored index with these rows.
pub(crate) fn due_rows(view: &TaskView, plan: Option<&Plan>) -> Vec<(String, String, &'static str, Option<String>)> {
    let header = plan.and_then(|p| p.header.as_ref());
    let deadlines = header.map(crate::domain::deadline::Deadlines::of);
    let policy = match (header, &view.task.definition) {
        (Some(h), Some(def)) => Some(h.reminders.with(def.reminders.as_ref())),
        _ => None,
    };
    view.open_milestones()
        .map(|m| {
            // The earliest next reminder of any obligation still owed by its implementers.
            let next = match (header, &policy) {
                (Some(h), Some(policy)) => m
                    .obligations
                    .iter()
                    .filter(|o| o.reminded())
                    .filter_map(|o| {
                        let ob = o.reference();
                        let due = deadlines.map_or(o.due, |d| d.legal(o.due));
                        next_reminder_on(policy, &h.calendar, due, |k| m.has_reminder(k, &ob))
                    })
                    .min()
                    .map(|d| d.to_string()),
                _ => None,
            };
            (m.spec.id.to_string(), m.due().to_string(), m.status.as_str(), next)
        })
        .collect()
}

const SELECT_CHECKPOINT: &str = "SELECT tx, position, events_applied FROM projection_checkpoints WHERE name = $1";

/// Rows per multi-row INSERT: well under both databases' bind limits.
const ROWS_PER_STATEMENT: usize = 500;
/// Ids per `IN (…)` list.
const IDS_PER_STATEMENT: usize = 5000;

/// A query builder for `{head} IN ($1, $2, …)` over one chunk of ids.
macro_rules! in_list {
    ($db:ty, $head:expr, $chunk:expr) => {{
        let mut q = sqlx::QueryBuilder::<$db>::new($head);
        q.push(" IN (");
        let mut list = q.separated(", ");
        for id in $chunk {
            list.push_bind(*id);
        }
        q.push(")");
        q
    }};
}

/// Deletes the rows of `table` belonging to the given aggregates, in a few statements.
macro_rules! delete_for {
    ($tx:ident, $db:ty, $table:expr, $ids:expr) => {
        for chunk in $ids.chunks(IDS_PER_STATEMENT) {
            in_list!($db, concat!("DELETE FROM ", $table, " WHERE aggregate_id"), chunk)
                .build()
                .execute(&mut *$tx)
                .await
                .map_err(StoreError::query("cập nhật khung nhìn"))?;
        }
    };
}

/// The stored views of the given ids, `(id, payload)`, read in a few
/// statements; `$head` is `SELECT <id column>, payload FROM <table> WHERE <id column>`.
macro_rules! fetch_views {
    ($tx:ident, $db:ty, $head:expr, $ids:expr) => {{
        let mut rows: Vec<(String, String)> = Vec::new();
        for chunk in $ids.chunks(IDS_PER_STATEMENT) {
            let part: Vec<(String, String)> = in_list!($db, $head, chunk)
                .build_query_as()
                .fetch_all(&mut *$tx)
                .await
                .map_err(StoreError::query("đọc khung nhìn"))?;
            rows.extend(part);
        }
        rows
    }};
}

const SELECT_PLAN_VIEWS: &str = "SELECT plan_id, payload FROM plan_view WHERE plan_id";
const SELECT_TASK_VIEWS: &str = "SELECT aggregate_id, payload FROM task_view WHERE aggregate_id";

/// One batch on one backend: lock the checkpoint, read after it, load the
/// touched views, apply, write views and checkpoint, commit. Written once as
/// a macro because the transaction types of the two databases differ.
macro_rules! run_batch {
    ($tx:ident, $read:ident, $insert_due:ident, $lock_suffix:expr, $db:ty) => {{
        sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(VIEWS)
            .execute(&mut *$tx)
            .await
            .map_err(StoreError::query("khởi tạo điểm kiểm"))?;
        let row = sqlx::query(&format!("{SELECT_CHECKPOINT}{}", $lock_suffix))
            .bind(VIEWS)
            .fetch_one(&mut *$tx)
            .await
            .map_err(StoreError::query("đọc điểm kiểm"))?;
        let cursor = Cursor { tx: row.get(0), position: row.get(1) };
        let total: i64 = row.get(2);
        // Read the feed in chunks, applying each to the views in memory, until
        // the transaction has applied enough events or touched enough views;
        // then each touched view is written once, however many events it had.
        let mut changes = Changes::default();
        let mut loaded = Loaded::default();
        let mut last = cursor;
        let mut applied: i64 = 0;
        while applied < EVENTS_PER_TRANSACTION && changes.tasks.len() < VIEWS_PER_TRANSACTION {
            let events = $read(&mut *$tx, last, CHUNK).await?;
            let Some(end) = events.last().map(|e| e.cursor) else { break };
            // The views this chunk touches that are not in memory yet, read in a few statements.
            let missing = |plans: bool| -> Vec<&str> {
                let ids: std::collections::BTreeSet<&str> = events
                    .iter()
                    .filter(|e| (e.aggregate_type == Plan::TYPE) == plans)
                    .map(|e| e.aggregate_id.as_str())
                    .filter(|id| if plans { !changes.plans.contains_key(*id) } else { !changes.tasks.contains_key(*id) })
                    .collect();
                ids.into_iter().collect()
            };
            for (id, payload) in fetch_views!($tx, $db, SELECT_PLAN_VIEWS, missing(true)) {
                loaded.plans.insert(id.clone(), views::decode(&id, &payload)?);
            }
            for (id, payload) in fetch_views!($tx, $db, SELECT_TASK_VIEWS, missing(false)) {
                loaded.tasks.insert(id.clone(), views::decode(&id, &payload)?);
            }
            for e in &events {
                changes.apply(e, &mut loaded)?;
            }
            applied += events.len() as i64;
            last = end;
        }
        if applied == 0 {
            $tx.commit().await.map_err(StoreError::query("kết thúc giao dịch"))?;
            return Ok((0, total as u64));
        }
        for (id, view) in &changes.plans {
            sqlx::query(
                "INSERT INTO plan_view (plan_id, version, payload) VALUES ($1, $2, $3)
                 ON CONFLICT (plan_id) DO UPDATE SET version = excluded.version, payload = excluded.payload",
            )
            .bind(id)
            .bind(view.version)
            .bind(serde_json::to_string(view).expect("views serialise"))
            .execute(&mut *$tx)
            .await
            .map_err(StoreError::query("ghi khung nhìn kế hoạch"))?;
        }
        let task_rows: Vec<(&String, &TaskView, String)> = changes
            .tasks
            .iter()
            .map(|(id, v)| (id, v, serde_json::to_string(v).expect("views serialise")))
            .collect();
        for chunk in task_rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO task_view (aggregate_id, plan_id, task_id, version, payload) ");
            q.push_values(chunk, |mut b, (id, view, payload)| {
                let (plan, task) = id.split_once('/').unwrap_or(("", id.as_str()));
                b.push_bind(id.as_str()).push_bind(plan).push_bind(task).push_bind(view.version).push_bind(payload.as_str());
            });
            q.push(" ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version, payload = excluded.payload");
            q.build().execute(&mut *$tx).await.map_err(StoreError::query("ghi khung nhìn nhiệm vụ"))?;
        }
        // The due-date index of every changed task, and of every task of a
        // plan whose reminder settings may have changed, with the day each
        // milestone's next reminder comes.
        let mut plans: BTreeMap<String, Option<Plan>> =
            changes.plans.iter().map(|(id, v)| (id.clone(), Some(v.plan.clone()))).collect();
        let mut reindex: Vec<TaskView> = changes.tasks.values().cloned().collect();
        for plan_id in changes.plans.keys() {
            let ids: Vec<String> = sqlx::query_scalar("SELECT aggregate_id FROM task_view WHERE plan_id = $1")
                .bind(plan_id)
                .fetch_all(&mut *$tx)
                .await
                .map_err(StoreError::query("đọc khung nhìn"))?;
            // Only the views not already in memory are read.
            let others: Vec<&str> = ids.iter().map(String::as_str).filter(|id| !changes.tasks.contains_key(*id)).collect();
            for (id, payload) in fetch_views!($tx, $db, SELECT_TASK_VIEWS, others) {
                reindex.push(views::decode(&id, &payload)?);
            }
        }
        for view in &reindex {
            let plan_id = view.id.split_once('/').map_or("", |(p, _)| p).to_string();
            if !plans.contains_key(&plan_id) {
                let found: Option<String> = sqlx::query_scalar("SELECT payload FROM plan_view WHERE plan_id = $1")
                    .bind(&plan_id)
                    .fetch_optional(&mut *$tx)
                    .await
                    .map_err(StoreError::query("đọc khung nhìn"))?;
                let plan = match found {
                    Some(p) => Some(views::decode::<PlanView>(&plan_id, &p)?.plan),
                    None => None,
                };
                plans.insert(plan_id.clone(), plan);
            }
        }
        let due: Vec<DueRow> = reindex
            .iter()
            .flat_map(|view| {
                let plan_id = view.id.split_once('/').map_or("", |(p, _)| p);
                due_rows(view, plans[plan_id].as_ref())
                    .into_iter()
                    .map(move |(m, d, st, n)| (view.id.as_str(), m, d, st, n))
            })
            .collect();
        let ids: Vec<&str> = reindex.iter().map(|v| v.id.as_str()).collect();
        delete_for!($tx, $db, "due_index", &ids);
        $insert_due(&mut $tx, &due).await?;
        // The lists' index of the same tasks (titles, dates and the plan's
        // time zone may have changed with them).
        delete_for!($tx, $db, "obligation_index", &ids);
        let listed: Vec<lists::ListRow> = reindex
            .iter()
            .flat_map(|view| {
                let plan_id = view.id.split_once('/').map_or("", |(p, _)| p);
                lists::list_rows(view, plans[plan_id].as_ref())
            })
            .collect();
        lists::insert_list_rows!($tx, $db, listed);
        // Task ids hold a `/`, plan ids do not: a plan's rows (its directory
        // notices) never share an aggregate id with a task's.
        let ids: Vec<&str> = changes.tasks.keys().chain(changes.plans.keys()).map(String::as_str).collect();
        delete_for!($tx, $db, "outbox", &ids);
        let outbox: Vec<OutboxRow> = changes
            .tasks
            .values()
            .flat_map(|v| v.outbox_rows())
            .chain(changes.plans.values().flat_map(|v| v.outbox_rows()))
            .collect();
        for chunk in outbox.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO outbox (aggregate_id, milestone_id, reminder_key, agency, role, kind, window_day, queued_at, due, \
                 status, attempts, next_attempt_at, message_id, last_error) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.aggregate_id)
                    .push_bind(&r.milestone_id)
                    .push_bind(&r.reminder_key)
                    .push_bind(&r.agency)
                    .push_bind(&r.role)
                    .push_bind(&r.kind)
                    .push_bind(&r.window_day)
                    .push_bind(&r.queued_at)
                    .push_bind(&r.due)
                    .push_bind(&r.status)
                    .push_bind(r.attempts)
                    .push_bind(&r.next_attempt_at)
                    .push_bind(&r.message_id)
                    .push_bind(&r.last_error);
            });
            q.build().execute(&mut *$tx).await.map_err(StoreError::query("cập nhật hộp thư đi"))?;
        }
        sqlx::query("UPDATE projection_checkpoints SET tx = $1, position = $2, events_applied = events_applied + $3 WHERE name = $4")
            .bind(last.tx)
            .bind(last.position)
            .bind(applied)
            .bind(VIEWS)
            .execute(&mut *$tx)
            .await
            .map_err(StoreError::query("ghi điểm kiểm"))?;
        $tx.commit().await.map_err(StoreError::query("ghi khung nhìn"))?;
        Ok((applied as u64, (total + applied) as u64))
    }};
}

/// A `due_index` row: task, milestone, due date, status, next reminder day.
type DueRow<'a> = (&'a str, String, String, &'static str, Option<String>);

async fn insert_due_sqlite(tx: &mut sqlx::SqliteConnection, due: &[DueRow<'_>]) -> Result<(), StoreError> {
    for chunk in due.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO due_index (aggregate_id, milestone_id, due, status, next_reminder) ",
        );
        q.push_values(chunk, |mut b, (id, m, d, st, n)| {
            b.push_bind(*id)
                .push_bind(m.as_str())
                .push_bind(d.as_str())
                .push_bind(*st)
                .push_bind(n.as_deref());
        });
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("cập nhật chỉ mục hạn"))?;
    }
    Ok(())
}

/// On PostgreSQL the rows go as five arrays in one statement: far fewer
/// parameters to bind and parse than multi-row VALUES.
async fn insert_due_postgres(tx: &mut sqlx::PgConnection, due: &[DueRow<'_>]) -> Result<(), StoreError> {
    if due.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = due.iter().map(|r| r.0).collect();
    let milestones: Vec<&str> = due.iter().map(|r| r.1.as_str()).collect();
    let dues: Vec<&str> = due.iter().map(|r| r.2.as_str()).collect();
    let statuses: Vec<&str> = due.iter().map(|r| r.3).collect();
    let next: Vec<Option<&str>> = due.iter().map(|r| r.4.as_deref()).collect();
    sqlx::query(
        "INSERT INTO due_index (aggregate_id, milestone_id, due, status, next_reminder) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])",
    )
    .bind(ids)
    .bind(milestones)
    .bind(dues)
    .bind(statuses)
    .bind(next)
    .execute(tx)
    .await
    .map_err(StoreError::query("cập nhật chỉ mục hạn"))?;
    Ok(())
}

async fn batch(store: &Store) -> Result<(u64, u64), StoreError> {
    match store {
        Store::Sqlite(pool) => {
            // IMMEDIATE takes the write lock first, so two runners queue
            // instead of both reading the same checkpoint.
            let mut tx = pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(StoreError::query("mở giao dịch khung nhìn"))?;
            run_batch!(tx, read_after_sqlite, insert_due_sqlite, "", sqlx::Sqlite)
        }
        Store::Postgres(pool) => {
            let mut tx = pool
                .begin()
                .await
                .map_err(StoreError::query("mở giao dịch khung nhìn"))?;
            crate::store::feed::in_feed_order(&mut tx).await?;
            run_batch!(
                tx,
                read_after_postgres,
                insert_due_postgres,
                " FOR UPDATE",
                sqlx::Postgres
            )
        }
    }
}

/// Applies every event not yet in the views.
pub async fn catch_up(store: &Store) -> Result<CatchUp, StoreError> {
    let mut result = CatchUp::default();
    loop {
        let (applied, total) = batch(store).await?;
        result.applied += applied;
        result.total = total;
        if applied == 0 {
            return Ok(result);
        }
    }
}

/// Committed events not yet in the views (those the feed cannot read yet
/// included): what `/health` reports as the views' lag.
pub async fn views_behind(store: &Store) -> Result<i64, StoreError> {
    let sql = match store {
        // The checkpoint (none yet: before every event), read once.
        Store::Sqlite(_) => {
            "SELECT count(*) FROM events e, \
             (SELECT coalesce(max(position), 0) AS p FROM projection_checkpoints WHERE name = $1) c \
             WHERE e.position > c.p"
        }
        Store::Postgres(_) => {
            "SELECT count(*) FROM events e, \
             (SELECT coalesce(max(tx), 0) AS t, coalesce(max(position), 0) AS p FROM projection_checkpoints WHERE name = $1) c \
             WHERE (e.tx_id, e.position) > (c.t::text::xid8, c.p)"
        }
    };
    crate::with_pool!(store, pool => sqlx::query_scalar::<_, i64>(sql)
        .bind(VIEWS)
        .fetch_one(pool)
        .await
        .map_err(StoreError::query("đếm sự kiện chưa vào khung nhìn")))
}

/// Catches up with every event committed before this call, for
/// read-your-writes in one-shot commands (see `Store::settle`).
pub async fn catch_up_with_present(store: &Store, patience: std::time::Duration) -> Result<CatchUp, StoreError> {
    if let Some(blocker) = store.settle(patience).await? {
        crate::store::feed::say_held_back(&blocker, None);
    }
    catch_up(store).await
}

/// Empties the views and replays every event into them. Each batch commits
/// with its checkpoint, so an interrupted rebuild resumes where it stopped.
pub async fn rebuild(store: &Store) -> Result<CatchUp, StoreError> {
    crate::with_pool!(store, pool => {
        let mut tx = pool.begin().await.map_err(StoreError::query("mở giao dịch dựng lại"))?;
        for sql in [
            "DELETE FROM due_index",
            "DELETE FROM obligation_index",
            "DELETE FROM outbox",
            "DELETE FROM task_view",
            "DELETE FROM plan_view",
            "DELETE FROM projection_checkpoints WHERE name = 'views'",
        ] {
            sqlx::query(sql).execute(&mut *tx).await.map_err(StoreError::query("xóa khung nhìn"))?;
        }
        tx.commit().await.map_err(StoreError::query("xóa khung nhìn"))?;
    });
    catch_up(store).await
}
