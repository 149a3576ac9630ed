//! One event repository over either database. `EventStore` is not
//! object-safe, so the choice made at run time is an enum that delegates to
//! sqlite-es or postgres-es.

use super::Store;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use std::time::Duration;

pub enum EventRepository {
    Sqlite(SqliteEventRepository),
    Postgres(PostgresEventRepository),
}

impl EventRepository {
    pub fn new(store: &Store) -> Self {
        match store {
            Store::Sqlite(pool) => Self::Sqlite(SqliteEventRepository::new(pool.clone())),
            Store::Postgres(pool) => Self::Postgres(PostgresEventRepository::new(pool.clone())),
        }
    }
}

/// sqlite-es reports "database is locked" as an unexpected error; it only
/// means another writer held the lock past the busy timeout.
fn sqlite_busy(err: &PersistenceError) -> bool {
    match err {
        PersistenceError::UnknownError(e) | PersistenceError::ConnectionError(e) => {
            let text = e.to_string();
            text.contains("database is locked") || text.contains("database is busy")
        }
        _ => false,
    }
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.get_events::<A>(aggregate_id).await,
            Self::Postgres(r) => r.get_events::<A>(aggregate_id).await,
        }
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
            Self::Postgres(r) => r.get_last_events::<A>(aggregate_id, last_sequence).await,
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.get_snapshot::<A>(aggregate_id).await,
            Self::Postgres(r) => r.get_snapshot::<A>(aggregate_id).await,
        }
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        match self {
            Self::Sqlite(r) => {
                // The insert is one transaction, so retrying a lock failure cannot write twice.
                let mut attempt = 0;
                loop {
                    match r.persist::<A>(events, snapshot_update.clone()).await {
                        Err(e) if sqlite_busy(&e) && attempt < 5 => {
                            attempt += 1;
                            tracing::warn!(attempt, "SQLite đang bận, thử ghi lại");
                            tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                        }
                        other => return other,
                    }
                }
            }
            Self::Postgres(r) => r.persist::<A>(events, snapshot_update).await,
        }
    }

    async fn stream_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.stream_events::<A>(aggregate_id).await,
            Self::Postgres(r) => r.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.stream_all_events::<A>().await,
            Self::Postgres(r) => r.stream_all_events::<A>().await,
        }
    }
}
