//! The global event feed, in an order that never lets a committed event
//! appear behind a reader's checkpoint (see the migrations for why).

use super::{Store, StoreError};
use serde_json::Value;
use sqlx::Row;

/// A position in the feed: (transaction, position). On SQLite the
/// transaction part is always 0 and the position alone is commit-ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub tx: i64,
    pub position: i64,
}

#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub cursor: Cursor,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The payload and metadata as stored (JSON text): each reader parses
    /// what it needs, into the type it needs.
    pub payload: String,
    pub metadata: String,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl FeedEvent {
    pub fn payload_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.payload)
    }

    pub fn metadata_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.metadata)
    }

    /// The storage error for a part of this event that does not parse.
    pub fn corrupt(&self, err: serde_json::Error) -> StoreError {
        StoreError::Corrupt {
            context: format!("{} #{} ({})", self.aggregate_id, self.sequence, self.event_type),
            reason: err.to_string(),
        }
    }
}

const SQLITE_FEED: &str = "
SELECT 0 AS tx, position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
       prev_hash, hash
  FROM events
 WHERE position > $1
 ORDER BY position
 LIMIT $2";

const POSTGRES_FEED: &str = "
SELECT tx_id::text AS tx, position, aggregate_type, aggregate_id, sequence, event_type, event_version,
       payload::text AS payload, metadata::text AS metadata, prev_hash, hash
  FROM events
 WHERE (tx_id, position) > ($1::text::xid8, $2)
   AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY tx_id, position
 LIMIT $3";

fn decode<R: Row>(row: &R) -> Result<FeedEvent, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let get_s = |c: &str| {
        row.try_get::<String, _>(c)
            .map_err(StoreError::query("đọc dòng sự kiện"))
    };
    let get_i = |c: &str| row.try_get::<i64, _>(c).map_err(StoreError::query("đọc dòng sự kiện"));
    let aggregate_id = get_s("aggregate_id")?;
    let sequence = get_i("sequence")?;
    Ok(FeedEvent {
        cursor: Cursor {
            tx: 0,
            position: get_i("position")?,
        },
        aggregate_type: get_s("aggregate_type")?,
        event_type: get_s("event_type")?,
        event_version: get_s("event_version")?,
        payload: get_s("payload")?,
        metadata: get_s("metadata")?,
        prev_hash: row
            .try_get("prev_hash")
            .map_err(StoreError::query("đọc dòng sự kiện"))?,
        hash: row.try_get("hash").map_err(StoreError::query("đọc dòng sự kiện"))?,
        aggregate_id,
        sequence,
    })
}

/// Reads up to `limit` events after `after`, in feed order, from any executor
/// of the store (a pool or an open transaction).
pub async fn read_after_sqlite<'e, E>(exec: E, after: Cursor, limit: i64) -> Result<Vec<FeedEvent>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let rows = sqlx::query(SQLITE_FEED)
        .bind(after.position)
        .bind(limit)
        .fetch_all(exec)
        .await
        .map_err(StoreError::query("đọc dòng sự kiện chung"))?;
    rows.iter().map(decode).collect()
}

pub async fn read_after_postgres<'e, E>(exec: E, after: Cursor, limit: i64) -> Result<Vec<FeedEvent>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let rows = sqlx::query(POSTGRES_FEED)
        .bind(after.tx.to_string())
        .bind(after.position)
        .bind(limit)
        .fetch_all(exec)
        .await
        .map_err(StoreError::query("đọc dòng sự kiện chung"))?;
    rows.iter()
        .map(|row| {
            let mut event = decode(row)?;
            let tx: String = row.try_get("tx").map_err(StoreError::query("đọc dòng sự kiện chung"))?;
            event.cursor.tx = tx.parse().map_err(|_| StoreError::Corrupt {
                context: "tx_id".into(),
                reason: tx,
            })?;
            Ok(event)
        })
        .collect()
}

/// Makes the feed query of this transaction walk the `(tx_id, position)`
/// index instead of sorting. Without table statistics (a freshly loaded
/// table that autovacuum has not analysed yet) the planner guesses few rows
/// and sorts every remaining event for each page it reads: a rebuild of
/// 26 000 events spent most of its time there.
pub async fn in_feed_order(tx: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    sqlx::query("SET LOCAL enable_sort = off")
        .execute(tx)
        .await
        .map_err(StoreError::query("đọc dòng sự kiện chung"))?;
    Ok(())
}

impl Store {
    /// Waits until every event committed before this call is readable from
    /// the feed. On PostgreSQL the feed stops below the oldest transaction
    /// still running anywhere on the server, so this waits (up to
    /// `patience`) for the transactions in flight now to end. Returns false
    /// if one was still open when patience ran out: nothing is lost, the
    /// events just become readable later.
    pub async fn settle(&self, patience: std::time::Duration) -> Result<bool, StoreError> {
        let Store::Postgres(pool) = self else { return Ok(true) };
        let snapshot = |sql: &'static str| async move {
            let v: String = sqlx::query_scalar(sql)
                .fetch_one(pool)
                .await
                .map_err(StoreError::query("đọc mốc giao dịch"))?;
            Ok::<i64, StoreError>(v.parse().unwrap_or(0))
        };
        let horizon = snapshot("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").await?;
        let started = std::time::Instant::now();
        while snapshot("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").await? < horizon {
            if started.elapsed() >= patience {
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok(true)
    }

    /// Reads up to `limit` events after `after`.
    pub async fn read_feed(&self, after: Cursor, limit: i64) -> Result<Vec<FeedEvent>, StoreError> {
        match self {
            Store::Sqlite(pool) => read_after_sqlite(pool, after, limit).await,
            Store::Postgres(pool) => {
                let mut tx = pool
                    .begin()
                    .await
                    .map_err(StoreError::query("đọc dòng sự kiện chung"))?;
                in_feed_order(&mut tx).await?;
                let events = read_after_postgres(&mut *tx, after, limit).await?;
                tx.commit().await.map_err(StoreError::query("đọc dòng sự kiện chung"))?;
                Ok(events)
            }
        }
    }
}
