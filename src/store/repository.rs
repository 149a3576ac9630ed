//! One event repository over either database. `EventStore` is not
//! object-safe, so the choice made at run time is an enum that delegates to
//! sqlite-es or postgres-es.

use super::Store;
use crate::audit::canonical::{canonical_json, Frame};
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use std::time::Duration;

/// Reads go through the libraries' repositories; writes are ours (see `persist`).
pub struct EventRepository {
    store: Store,
    inner: Inner,
}

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
        }
    }
}

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

/// Inserts a command's events with their chained hashes in one transaction:
/// one extra read (the previous event's hash) per command.
macro_rules! insert_chained {
    ($begin:expr, $insert:expr, $aggregate_type:expr, $events:expr) => {{
        let events: &[SerializedEvent] = $events;
        let Some(first) = events.first() else { return Ok(()) };
        let mut tx = $begin.await.map_err(persistence)?;
        let mut prev = if first.sequence <= 1 {
            String::new()
        } else {
            let found: Option<Option<String>> = sqlx::query_scalar(PREVIOUS_HASH)
                .bind($aggregate_type)
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
        for e in events {
            let (payload, metadata) = (canonical_json(&e.payload), canonical_json(&e.metadata));
            let hash = Frame {
                prev_hash: &prev,
                aggregate_type: $aggregate_type,
                aggregate_id: &e.aggregate_id,
                sequence: e.sequence as i64,
                event_type: &e.event_type,
                event_version: &e.event_version,
            }
            .hash_canonical(&payload, &metadata);
            sqlx::query($insert)
                .bind($aggregate_type)
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
        tx.commit().await.map_err(persistence)
    }};
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match &self.inner {
            Inner::Sqlite(r) => r.get_events::<A>(aggregate_id).await,
            Inner::Postgres(r) => r.get_events::<A>(aggregate_id).await,
        }
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
        match &self.store {
            Store::Sqlite(pool) => {
                // The insert is one transaction, so retrying a lock failure cannot write twice.
                let mut attempt = 0;
                loop {
                    let result: Result<(), PersistenceError> = async {
                        // IMMEDIATE: take the write lock before reading the previous
                        // hash, instead of failing to upgrade a read lock later.
                        insert_chained!(pool.begin_with("BEGIN IMMEDIATE"), INSERT_EVENT_SQLITE, A::TYPE, events)
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
            Store::Postgres(pool) => insert_chained!(pool.begin(), INSERT_EVENT_POSTGRES, A::TYPE, events),
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
