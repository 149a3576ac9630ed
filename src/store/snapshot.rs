//! One consistent view of the whole store, for a reader that must compare
//! tables with each other while writers go on (`audit verify` beside a
//! running `serve`): a read-only REPEATABLE READ transaction on PostgreSQL,
//! a read transaction on SQLite (WAL: writers are not blocked).

use super::feed::{read_range_postgres, read_range_sqlite, Cursor, FeedEvent};
use super::{Store, StoreError};

pub enum Snapshot {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$conn` bound to the snapshot's connection (`&mut
/// SqliteConnection` or `&mut PgConnection`), like `with_pool!` for pools.
#[macro_export]
macro_rules! with_snapshot {
    ($snap:expr, $conn:ident => $body:expr) => {
        match $snap {
            $crate::store::snapshot::Snapshot::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::store::snapshot::Snapshot::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

impl Store {
    /// Opens a snapshot: every read through it sees the store as it was at
    /// its first read.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        match self {
            Store::Sqlite(pool) => Ok(Snapshot::Sqlite(
                pool.begin().await.map_err(StoreError::query("mở ảnh chụp kho"))?,
            )),
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(StoreError::query("mở ảnh chụp kho"))?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("mở ảnh chụp kho"))?;
                // Walk the (tx_id, position) index rather than sort.
                super::feed::in_feed_order(&mut tx).await?;
                Ok(Snapshot::Postgres(tx))
            }
        }
    }
}

impl Snapshot {
    /// The cursor up to which the views have applied the events.
    pub async fn views_checkpoint(&mut self) -> Result<Cursor, StoreError> {
        let row: Option<(i64, i64)> = with_snapshot!(self, conn => sqlx::query_as(
            "SELECT tx, position FROM projection_checkpoints WHERE name = $1")
            .bind(crate::projections::VIEWS)
            .fetch_optional(conn)
            .await
            .map_err(StoreError::query("đọc điểm kiểm"))?);
        Ok(row.map(|(tx, position)| Cursor { tx, position }).unwrap_or_default())
    }

    /// Up to `limit` events after `after` and at or before `upto`, in feed
    /// order: everything committed when the snapshot was taken (no horizon:
    /// the snapshot does not move, so nothing can appear behind its reader).
    pub async fn read_range(&mut self, after: Cursor, upto: Cursor, limit: i64) -> Result<Vec<FeedEvent>, StoreError> {
        match self {
            Snapshot::Sqlite(tx) => read_range_sqlite(tx, after, upto, limit).await,
            Snapshot::Postgres(tx) => read_range_postgres(tx, after, upto, limit).await,
        }
    }

    /// Number of events in the snapshot.
    pub async fn event_count(&mut self) -> Result<i64, StoreError> {
        crate::with_snapshot!(self, conn => sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
            .fetch_one(conn)
            .await
            .map_err(StoreError::query("đếm sự kiện")))
    }

    /// Ends the snapshot (it wrote nothing).
    pub async fn close(self) {
        let _ = match self {
            Snapshot::Sqlite(tx) => tx.rollback().await,
            Snapshot::Postgres(tx) => tx.rollback().await,
        };
    }
}
