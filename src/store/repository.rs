//! One event repository over either database. `EventStore` is not
//! object-safe, so the choice made at run time is an enum that delegates to
//! sqlite-es or postgres-es.

use super::requests::{Request, INSERT_REQUEST};
use super::{info, Store};
use crate::audit::canonical::{canonical_json, Frame};
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Loading an aggregate and appending to it are ours (they carry the hash
/// chain); the other reads go through the libraries' repositories.
pub struct EventRepository {
    store: Store,
    inner: Inner,
    /// The hash of the last event of each aggregate loaded and not yet
    /// appended to, keyed by (aggregate type, id) with its sequence: a
    /// command's append then chains to it without reading it again. A stored
    /// hash never changes, so an entry can be old but never wrong; an append
    /// after another process's is refused by the primary key as before.
    heads: Mutex<HashMap<(String, String), (i64, String)>>,
    /// Set for the repositories of a `Batch`: appends are kept there instead of written.
    staged: Option<Arc<Mutex<Vec<Append>>>>,
}

/// Entries kept at most in `heads` (commands that load and then fail leave theirs).
const HEADS_KEPT: usize = 10_000;

const SELECT_EVENTS: &str = "
SELECT aggregate_id, sequence, event_type, event_version, CAST(payload AS TEXT), CAST(metadata AS TEXT), hash
  FROM events
 WHERE aggregate_type = $1 AND aggregate_id = $2
 ORDER BY sequence";

enum Inner {
    Sqlite(SqliteEventRepository),
    Postgres(PostgresEventRepository),
}

impl EventRepository {
    pub fn new(store: &Store) -> Self {
        let inner = match store {
            Store::Sqlite(pool) => Inner::Sqlite(SqliteEventRepository::new(pool.clone())),
            Store::Postgres(pool) => Inner::Postgres(PostgresEventRepository::new(pool.clone())),
        };
        Self {
            store: store.clone(),
            inner,
            heads: Default::default(),
            staged: None,
        }
    }

    fn remember_head(&self, aggregate_type: &str, aggregate_id: &str, sequence: i64, hash: String) {
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        if heads.len() >= HEADS_KEPT {
            heads.clear();
        }
        heads.insert((aggregate_type.to_string(), aggregate_id.to_string()), (sequence, hash));
    }

    /// The remembered hash of event `sequence` of an aggregate, if it is the one remembered.
    fn take_head(&self, aggregate_type: &str, aggregate_id: &str, sequence: i64) -> Option<String> {
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        let key = (aggregate_type.to_string(), aggregate_id.to_string());
        match heads.remove(&key) {
            Some((seq, hash)) if seq == sequence => Some(hash),
            _ => None,
        }
    }
}

/// A stored event row as `get_events` reads it.
type EventRow = (String, i64, String, String, String, String, Option<String>);

const PREVIOUS_HASH: &str = "SELECT hash FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3";
/// Payload and metadata are written in their canonical form (docs/audit/canonical-form.md),
/// so `audit verify` can hash the stored text without parsing it. PostgreSQL's
/// `json` type keeps the text as given.
const INSERT_EVENT_SQLITE: &str = "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const INSERT_EVENT_POSTGRES: &str = "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6::json, $7::json, $8, $9)";

/// Inside the append's transaction: the database's clock, and whether the
/// store is a simulation store. On PostgreSQL it also takes the
/// transaction's id now, so that the feed order (by transaction id) follows
/// the order of these clock readings as closely as it can.
fn clock_and_kind_sql(now: &str, postgres: bool) -> String {
    let kind = "(SELECT simulation FROM store_info WHERE id = 1)";
    if postgres {
        format!("SELECT {now}, {kind} WHERE pg_current_xact_id() IS NOT NULL")
    } else {
        format!("SELECT {now}, {kind}")
    }
}

/// The row of `store_info` that a `StoreInitialised` event stands for,
/// written in the same transaction as the event.
fn store_info_sql(now: &str) -> String {
    format!("INSERT INTO store_info (id, simulation, legacy, recorded_at) VALUES (1, $1, false, {now})")
}

static CLOCK_SQLITE: std::sync::LazyLock<(String, String)> = std::sync::LazyLock::new(|| {
    (
        clock_and_kind_sql(info::SQLITE_NOW, false),
        store_info_sql(info::SQLITE_NOW),
    )
});
static CLOCK_POSTGRES: std::sync::LazyLock<(String, String)> = std::sync::LazyLock::new(|| {
    (
        clock_and_kind_sql(info::POSTGRES_NOW, true),
        store_info_sql(info::POSTGRES_NOW),
    )
});

/// The metadata as stored: what the engine wrote, plus the time the store
/// recorded the event and, on a simulation store, the mark `simulated`.
/// Both are hashed with the rest.
fn recorded_metadata(metadata: &Value, recorded_at: &str, simulation: bool) -> Value {
    let mut m = metadata.clone();
    if let Value::Object(map) = &mut m {
        map.insert("recorded_at".into(), Value::from(recorded_at));
        if simulation {
            map.insert("simulated".into(), Value::Bool(true));
        }
    }
    m
}

/// cqrs-es reads metadata back as a map of strings: a stored `true` is
/// handed to it as `"true"` (the stored, hashed text is not changed).
fn as_strings(metadata: Value) -> Value {
    match metadata {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match v {
                    Value::String(_) => (k, v),
                    other => (k, Value::String(other.to_string())),
                })
                .collect(),
        ),
        other => other,
    }
}

fn persistence(e: sqlx::Error) -> PersistenceError {
    if let sqlx::Error::Database(db) = &e {
        // Primary-key violations: another command wrote this sequence first.
        if matches!(db.code().as_deref(), Some("23505" | "1555" | "2067")) {
            return PersistenceError::OptimisticLockError;
        }
    }
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            PersistenceError::ConnectionError(Box::new(e))
        }
        other => PersistenceError::UnknownError(Box::new(other)),
    }
}

/// SQLite's "database is locked" only means another writer held the lock
/// past the busy timeout: worth another try.
fn sqlite_busy(err: &PersistenceError) -> bool {
    match err {
        PersistenceError::UnknownError(e) | PersistenceError::ConnectionError(e) => {
            let text = e.to_string();
            text.contains("database is locked") || text.contains("database is busy")
        }
        _ => false,
    }
}

/// One aggregate's new events, as a command's commit hands them over.
#[derive(Debug, Clone)]
pub struct Append {
    aggregate_type: &'static str,
    events: Vec<SerializedEvent>,
    /// The hash of the event before the first one, if remembered from loading.
    known: Option<String>,
}

impl Append {
    pub fn aggregate_type(&self) -> &'static str {
        self.aggregate_type
    }

    pub fn events(&self) -> &[SerializedEvent] {
        &self.events
    }
}

/// Inserts the appends' events with their chained hashes in one
/// transaction: one command's (`persist`) or a whole batch's (`Batch`). The
/// previous event's hash of each aggregate is the one remembered from
/// loading it or is read here. `$clock` is the pair of statements from
/// `CLOCK_SQLITE`/`CLOCK_POSTGRES`; every event of the transaction gets the
/// same `recorded_at`.
macro_rules! insert_chained {
    ($begin:expr, $insert:expr, $clock:expr, $appends:expr, $request:expr) => {{
        let appends: &[Append] = $appends;
        let request: Option<&RequestRecord> = $request;
        let mut tx = $begin.await.map_err(persistence)?;
        let (clock_sql, store_info_sql): &(String, String) = $clock;
        for a in appends.iter().filter(|a| a.aggregate_type == info::AGGREGATE_TYPE) {
            for e in a.events.iter().filter(|e| e.event_type == info::INITIALISED) {
                let simulation = e.payload[info::INITIALISED]["simulation"].as_bool().unwrap_or(false);
                sqlx::query(store_info_sql)
                    .bind(simulation)
                    .execute(&mut *tx)
                    .await
                    .map_err(persistence)?;
            }
        }
        let (recorded_at, simulation): (String, Option<bool>) = sqlx::query_as(clock_sql)
            .fetch_one(&mut *tx)
            .await
            .map_err(persistence)?;
        let simulation = simulation.unwrap_or(false);
        for a in appends {
            let Some(first) = a.events.first() else { continue };
            let mut prev = if first.sequence <= 1 {
                String::new()
            } else if let Some(hash) = a.known.clone() {
                hash
            } else {
                let found: Option<Option<String>> = sqlx::query_scalar(PREVIOUS_HASH)
                    .bind(a.aggregate_type)
                    .bind(&first.aggregate_id)
                    .bind((first.sequence - 1) as i64)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(persistence)?;
                match found {
                    Some(Some(hash)) => hash,
                    _ => {
                        return Err(PersistenceError::UnknownError(
                            format!(
                                "chuỗi băm của {} đứt trước sự kiện {}",
                                first.aggregate_id, first.sequence
                            )
                            .into(),
                        ))
                    }
                }
            };
            for e in &a.events {
                let metadata = recorded_metadata(&e.metadata, &recorded_at, simulation);
                let (payload, metadata) = (canonical_json(&e.payload), canonical_json(&metadata));
                let hash = Frame {
                    prev_hash: &prev,
                    aggregate_type: a.aggregate_type,
                    aggregate_id: &e.aggregate_id,
                    sequence: e.sequence as i64,
                    event_type: &e.event_type,
                    event_version: &e.event_version,
                }
                .hash_canonical(&payload, &metadata);
                sqlx::query($insert)
                    .bind(a.aggregate_type)
                    .bind(&e.aggregate_id)
                    .bind(e.sequence as i64)
                    .bind(&e.event_type)
                    .bind(&e.event_version)
                    .bind(&payload)
                    .bind(&metadata)
                    .bind(&prev)
                    .bind(&hash)
                    .execute(&mut *tx)
                    .await
                    .map_err(persistence)?;
                prev = hash;
            }
        }
        if let Some(r) = request {
            sqlx::query(INSERT_REQUEST)
                .bind(&r.scope)
                .bind(&r.request_id)
                .bind(&r.fingerprint)
                .bind(&r.outcome)
                .bind(&recorded_at)
                .execute(&mut *tx)
                .await
                .map_err(persistence)?;
        }
        tx.commit().await.map_err(persistence)
    }};
}

/// The record of a request with an idempotency key, written in the
/// transaction of the events it produced (`store::requests`).
#[derive(Debug, Clone)]
pub struct RequestRecord {
    scope: String,
    request_id: String,
    fingerprint: String,
    outcome: String,
}

impl RequestRecord {
    pub fn new(request: &Request, outcome: &Value) -> Self {
        Self {
            scope: request.scope.clone(),
            request_id: request.id.to_string(),
            fingerprint: request.fingerprint.clone(),
            outcome: outcome.to_string(),
        }
    }
}

/// Writes appends, and the record of the request they answer, in one
/// transaction (nothing when there is neither an event nor a request).
async fn write(store: &Store, appends: &[Append], request: Option<&RequestRecord>) -> Result<(), PersistenceError> {
    if request.is_none() && appends.iter().all(|a| a.events.is_empty()) {
        return Ok(());
    }
    match store {
        Store::Sqlite(pool) => {
            // The insert is one transaction, so retrying a lock failure cannot write twice.
            let mut attempt = 0;
            loop {
                let result: Result<(), PersistenceError> = async {
                    // IMMEDIATE: take the write lock before reading the previous
                    // hash, instead of failing to upgrade a read lock later.
                    insert_chained!(
                        pool.begin_with("BEGIN IMMEDIATE"),
                        INSERT_EVENT_SQLITE,
                        &CLOCK_SQLITE,
                        appends,
                        request
                    )
                }
                .await;
                match result {
                    Err(e) if sqlite_busy(&e) && attempt < 5 => {
                        attempt += 1;
                        tracing::warn!(attempt, "SQLite đang bận, thử ghi lại");
                        tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                    }
                    other => return other,
                }
            }
        }
        Store::Postgres(pool) => {
            // The writer's lock first: the clock's row lock below gives the
            // transaction its id, which the feed's horizon must know of.
            let begin = async {
                let mut tx = pool.begin().await?;
                super::feed::begin_writing(&mut tx).await?;
                Ok::<_, sqlx::Error>(tx)
            };
            insert_chained!(begin, INSERT_EVENT_POSTGRES, &CLOCK_POSTGRES, appends, request)
        }
    }
}

/// Several commands' events written together: commands run on aggregates
/// loaded through `repository()` append nothing; their events are kept and
/// `commit` writes all of them in one transaction, all or nothing. A stale
/// append (another process wrote one of the aggregates meanwhile) is refused
/// by the primary key as for one command, and then nothing is written.
#[derive(Clone)]
pub struct Batch {
    store: Store,
    appends: Arc<Mutex<Vec<Append>>>,
}

impl Batch {
    pub fn new(store: &Store) -> Self {
        Self {
            store: store.clone(),
            appends: Default::default(),
        }
    }

    /// A repository whose appends join this batch.
    pub fn repository(&self) -> EventRepository {
        let mut repo = EventRepository::new(&self.store);
        repo.staged = Some(self.appends.clone());
        repo
    }

    /// What the commands run so far would append, in order.
    pub fn appends(&self) -> Vec<Append> {
        self.appends.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The number of events the batch holds.
    pub fn len(&self) -> usize {
        let appends = self.appends.lock().unwrap_or_else(|e| e.into_inner());
        appends.iter().map(|a| a.events.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes every event of the batch in one transaction; returns how many.
    pub async fn commit(self) -> Result<usize, PersistenceError> {
        self.commit_with(None).await
    }

    /// Writes every event of the batch and the record of the request they
    /// answer in one transaction; returns how many events.
    pub async fn commit_with(self, request: Option<&RequestRecord>) -> Result<usize, PersistenceError> {
        let appends = std::mem::take(&mut *self.appends.lock().unwrap_or_else(|e| e.into_inner()));
        write(&self.store, &appends, request).await?;
        Ok(appends.iter().map(|a| a.events.len()).sum())
    }
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let rows: Vec<EventRow> = crate::with_pool!(&self.store, pool => sqlx::query_as(SELECT_EVENTS)
            .bind(A::TYPE)
            .bind(aggregate_id)
            .fetch_all(pool)
            .await
            .map_err(persistence)?);
        let mut events = Vec::with_capacity(rows.len());
        let mut head = None;
        for (id, sequence, event_type, event_version, payload, metadata, hash) in rows {
            let json = |text: &str| {
                serde_json::from_str::<Value>(text).map_err(|e| PersistenceError::DeserializationError(Box::new(e)))
            };
            events.push(SerializedEvent {
                payload: json(&payload)?,
                metadata: as_strings(json(&metadata)?),
                aggregate_id: id,
                sequence: sequence as usize,
                aggregate_type: A::TYPE.to_string(),
                event_type,
                event_version,
            });
            head = hash.map(|h| (sequence, h));
        }
        if let Some((sequence, hash)) = head {
            self.remember_head(A::TYPE, aggregate_id, sequence, hash);
        }
        Ok(events)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match &self.inner {
            Inner::Sqlite(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
            Inner::Postgres(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match &self.inner {
            Inner::Sqlite(r) => r.get_snapshot::<A>(aggregate_id).await,
            Inner::Postgres(r) => r.get_snapshot::<A>(aggregate_id).await,
        }
    }

    /// Our own insert rather than the libraries': the hash chain is written
    /// in the same transaction as the events. Snapshots are not used.
    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return Err(PersistenceError::UnknownError("kehoach không dùng snapshot".into()));
        }
        let known = events
            .first()
            .and_then(|first| self.take_head(A::TYPE, &first.aggregate_id, first.sequence as i64 - 1));
        let append = Append {
            aggregate_type: A::TYPE,
            events: events.to_vec(),
            known,
        };
        match &self.staged {
            Some(batch) => {
                batch.lock().unwrap_or_else(|e| e.into_inner()).push(append);
                Ok(())
            }
            None => write(&self.store, std::slice::from_ref(&append), None).await,
        }
    }

    async fn stream_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<ReplayStream, PersistenceError> {
        match &self.inner {
            Inner::Sqlite(r) => r.stream_events::<A>(aggregate_id).await,
            Inner::Postgres(r) => r.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match &self.inner {
            Inner::Sqlite(r) => r.stream_all_events::<A>().await,
            Inner::Postgres(r) => r.stream_all_events::<A>().await,
        }
    }
}
