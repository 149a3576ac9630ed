//! The global event feed, in an order that never lets a committed event
//! appear behind a reader's checkpoint: on SQLite the commit-ordered
//! position; on PostgreSQL `(tx_id, position)` below the horizon of this
//! store's own open writers (migration 0019; the design and its proof are in
//! docs/architecture.md, "Feed order on PostgreSQL").

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

impl Cursor {
    /// Past every event there can be.
    pub const END: Cursor = Cursor {
        tx: i64::MAX,
        position: i64::MAX,
    };
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

/// The events after one cursor and at or before another, in feed order:
/// the feed reads up to its horizon (`read_after_*`), a snapshot up to any
/// cursor (`Snapshot::read_range`).
const SQLITE_RANGE: &str = "
SELECT 0 AS tx, position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
       prev_hash, hash
  FROM events
 WHERE position > $1 AND position <= $2
 ORDER BY position
 LIMIT $3";

const POSTGRES_RANGE: &str = "
SELECT tx_id::text AS tx, position, aggregate_type, aggregate_id, sequence, event_type, event_version,
       payload::text AS payload, metadata::text AS metadata, prev_hash, hash
  FROM events
 WHERE (tx_id, position) > ($1::text::xid8, $2)
   AND (tx_id, position) <= ($3::text::xid8, $4)
 ORDER BY tx_id, position
 LIMIT $5";

/// The transaction id below which every event writer has ended (`x0`, the
/// first id not yet finished at the statement's start, lowered to the id of
/// the oldest writer still holding the writers' lock of migration 0019), with that writer. Runs
/// as its own statement: the statement that reads the feed afterwards takes
/// a later snapshot, which sees every writer below the horizon as ended.
/// See docs/architecture.md, "Feed order on PostgreSQL".
const POSTGRES_HORIZON: &str = "
SELECT x0, w.pid, w.xid, w.datname, w.xact_start, w.state, w.application_name, w.client
  FROM (SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x0) snap
  LEFT JOIN LATERAL (
    SELECT l.pid,
           coalesce(a.backend_xid::text,
                    (SELECT min(t.transactionid::text::bigint)::text FROM pg_locks t
                      WHERE t.locktype = 'transactionid' AND t.pid = l.pid AND t.mode = 'ExclusiveLock')) AS xid,
           current_database()::text AS datname, extract(epoch FROM a.xact_start)::float8 AS xact_start, a.state,
           a.application_name, a.client_addr::text AS client
      FROM pg_locks l, LATERAL pg_stat_get_activity(l.pid) a
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
       AND l.classid = 1801807983 AND l.objid = 19
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.pid <> pg_backend_pid()
  ) w ON true";

fn decode_row<R: Row>(row: &R) -> Result<FeedEvent, StoreError>
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
pub async fn read_after_sqlite(
    conn: &mut sqlx::SqliteConnection,
    after: Cursor,
    limit: i64,
) -> Result<Vec<FeedEvent>, StoreError> {
    read_range_sqlite(conn, after, Cursor::END, limit).await
}

/// Up to `limit` events after `after` and at or before `upto`, in feed order.
pub async fn read_range_sqlite(
    conn: &mut sqlx::SqliteConnection,
    after: Cursor,
    upto: Cursor,
    limit: i64,
) -> Result<Vec<FeedEvent>, StoreError> {
    let rows = sqlx::query(SQLITE_RANGE)
        .bind(after.position)
        .bind(upto.position)
        .bind(limit)
        .fetch_all(conn)
        .await
        .map_err(StoreError::query("đọc dòng sự kiện chung"))?;
    rows.iter().map(decode_row).collect()
}

/// A transaction that writes events and holds the feed back while it runs:
/// the oldest one still open, as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Blocker {
    /// The server process (`pg_terminate_backend(pid)` ends it).
    pub pid: i32,
    pub database: Option<String>,
    /// When its transaction began.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// `active`, `idle in transaction`, …
    pub state: Option<String>,
    pub application: Option<String>,
    pub client: Option<String>,
    /// Its transaction id (full, 64-bit).
    pub xid: i64,
}

/// How far the PostgreSQL feed can read now.
#[derive(Debug, Clone, PartialEq)]
pub struct Horizon {
    /// The first transaction id not finished when it was computed (x0):
    /// every event committed before is below it.
    pub next: i64,
    /// Every event with a transaction id below this is readable, for good.
    pub below: i64,
    /// The oldest writer still open, which holds `below` where it is.
    pub blocker: Option<Blocker>,
}

/// The full transaction id of a 32-bit `xid` seen while `x0` (full) was the
/// first unfinished id: None when it is `x0` or later (a writer that began
/// after the snapshot, which the horizon need not wait for).
fn widen(xid: u32, x0: u64) -> Option<u64> {
    let behind = (x0 as u32).wrapping_sub(xid);
    (behind != 0 && behind < 1 << 31).then(|| x0 - u64::from(behind))
}

/// The feed's horizon now: one statement, to be followed by the statement
/// that reads (a later snapshot) on the same connection.
pub async fn horizon(conn: &mut sqlx::PgConnection) -> Result<Horizon, StoreError> {
    let rows = sqlx::query(POSTGRES_HORIZON)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::query("đọc các giao dịch đang ghi sự kiện"))?;
    let corrupt = |what: &str, v: &str| StoreError::Corrupt {
        context: what.into(),
        reason: v.into(),
    };
    let mut horizon: Option<Horizon> = None;
    for row in &rows {
        let x0: String = row.try_get("x0").map_err(StoreError::query("đọc mốc giao dịch"))?;
        let x0: u64 = x0.parse().map_err(|_| corrupt("pg_snapshot_xmax", &x0))?;
        let h = horizon.get_or_insert(Horizon {
            next: x0 as i64,
            below: x0 as i64,
            blocker: None,
        });
        let Some(xid) = row
            .try_get::<Option<String>, _>("xid")
            .map_err(StoreError::query("đọc mốc giao dịch"))?
        else {
            continue;
        };
        let short: u64 = xid.parse().map_err(|_| corrupt("backend_xid", &xid))?;
        let Some(full) = widen(short as u32, x0) else { continue };
        if (full as i64) < h.below {
            let text = |c: &str| {
                row.try_get::<Option<String>, _>(c)
                    .map_err(StoreError::query("đọc mốc giao dịch"))
            };
            h.below = full as i64;
            h.blocker = Some(Blocker {
                pid: row.try_get("pid").map_err(StoreError::query("đọc mốc giao dịch"))?,
                database: text("datname")?,
                since: row
                    .try_get::<Option<f64>, _>("xact_start")
                    .map_err(StoreError::query("đọc mốc giao dịch"))?
                    .and_then(|t| chrono::DateTime::from_timestamp_millis((t * 1000.0) as i64)),
                state: text("state")?,
                application: text("application_name")?.filter(|a| !a.is_empty()),
                client: text("client")?,
                xid: full as i64,
            });
        }
    }
    horizon.ok_or_else(|| corrupt("pg_current_snapshot", "không có dòng"))
}

/// Reads up to `limit` events after `after`, below the horizon computed
/// first on the same connection. Run it in READ COMMITTED (the default):
/// the read must take a snapshot later than the horizon's.
pub async fn read_after_postgres(
    conn: &mut sqlx::PgConnection,
    after: Cursor,
    limit: i64,
) -> Result<Vec<FeedEvent>, StoreError> {
    let below = horizon(&mut *conn).await?.below;
    // `tx_id < below` is `(tx_id, position) <= (below - 1, any position)`.
    let upto = Cursor {
        tx: below - 1,
        position: i64::MAX,
    };
    read_range_postgres(conn, after, upto, limit).await
}

/// Up to `limit` events after `after` and at or before `upto`, in feed order.
pub async fn read_range_postgres(
    conn: &mut sqlx::PgConnection,
    after: Cursor,
    upto: Cursor,
    limit: i64,
) -> Result<Vec<FeedEvent>, StoreError> {
    let rows = sqlx::query(POSTGRES_RANGE)
        .bind(after.tx.to_string())
        .bind(after.position)
        .bind(upto.tx.to_string())
        .bind(upto.position)
        .bind(limit)
        .fetch_all(conn)
        .await
        .map_err(StoreError::query("đọc dòng sự kiện chung"))?;
    rows.iter().map(decode_pg_row).collect()
}

/// A PostgreSQL feed row: the event and its transaction id (as text, `xid8`).
fn decode_pg_row(row: &sqlx::postgres::PgRow) -> Result<FeedEvent, StoreError> {
    let mut event = decode_row(row)?;
    let tx: String = row.try_get("tx").map_err(StoreError::query("đọc dòng sự kiện chung"))?;
    event.cursor.tx = tx.parse().map_err(|_| StoreError::Corrupt {
        context: "tx_id".into(),
        reason: tx,
    })?;
    Ok(event)
}

/// Takes the writers' lock of migration 0019 at the start of a PostgreSQL
/// transaction that will write other tables before it writes events (the
/// trigger takes it itself when events come first).
pub async fn begin_writing(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared(1801807983, 19), set_config('kehoach.feed_writer', 'on', true)")
        .execute(tx)
        .await?;
    Ok(())
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

/// One line for an operator: which writer holds the feed back, since when
/// (in Vietnam's time: the store knows no plan), and how to end it.
pub fn held_back(b: &Blocker) -> String {
    let mut who = vec![format!("tiến trình PostgreSQL {}", b.pid)];
    if let Some(db) = &b.database {
        who.push(format!("cơ sở dữ liệu {db}"));
    }
    if let Some(app) = &b.application {
        who.push(format!("ứng dụng {app}"));
    }
    if let Some(client) = &b.client {
        who.push(format!("máy {client}"));
    }
    if let Some(state) = &b.state {
        who.push(format!("trạng thái {state}"));
    }
    let since = b
        .since
        .map(|t| {
            format!(
                ", mở từ {}",
                t.with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
                    .format("%d/%m/%Y %H:%M:%S")
            )
        })
        .unwrap_or_default();
    format!(
        "một giao dịch ghi sự kiện còn mở ({}{since}): các sự kiện ghi sau nó chờ nó kết thúc mới vào khung nhìn, \
         không mất gì; nếu nó bị treo, kết thúc bằng SELECT pg_terminate_backend({});",
        who.join(", "),
        b.pid
    )
}

/// The writer last named in the log, and when: a process says it once,
/// again at most every [`SAY_AGAIN`] while it lasts.
static SAID: std::sync::Mutex<Option<(i32, std::time::Instant)>> = std::sync::Mutex::new(None);

/// How often the same open writer is named again in the log.
pub const SAY_AGAIN: std::time::Duration = std::time::Duration::from_secs(300);

/// Logs (once, see [`SAID`]) that `b` holds the feed back.
pub fn say_held_back(b: &Blocker, unseen: Option<i64>) {
    let mut said = SAID.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if matches!(*said, Some((pid, at)) if pid == b.pid && at.elapsed() < SAY_AGAIN) {
        return;
    }
    *said = Some((b.pid, std::time::Instant::now()));
    match unseen {
        Some(n) => tracing::warn!(pid = b.pid, unseen = n, "{} ({n} sự kiện đang chờ)", held_back(b)),
        None => tracing::warn!(pid = b.pid, "{}", held_back(b)),
    }
}

/// Logs (once) that the writer last named has ended.
pub fn say_released() {
    let mut said = SAID.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((pid, _)) = said.take() {
        tracing::info!(pid, "giao dịch giữ khung nhìn đã kết thúc; khung nhìn cập nhật tiếp");
    }
}

/// What holds the feed back now: the committed events it cannot read yet
/// and the writer they wait for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FeedLag {
    /// Committed events the feed cannot read yet (0 on SQLite).
    pub unseen: i64,
    pub blocker: Option<Blocker>,
}

impl Store {
    /// Waits until every event committed before this call is readable from
    /// the feed. On PostgreSQL the feed stops below the oldest transaction
    /// still writing events to this store, so this waits (up to `patience`)
    /// for the writers in flight now to end. Returns the one still open when
    /// patience ran out: nothing is lost, its followers' events just become
    /// readable when it ends.
    pub async fn settle(&self, patience: std::time::Duration) -> Result<Option<Blocker>, StoreError> {
        let Store::Postgres(pool) = self else { return Ok(None) };
        let mut conn = pool.acquire().await.map_err(StoreError::query("đọc mốc giao dịch"))?;
        let mut now = horizon(&mut conn).await?;
        // Everything committed before this call is below it.
        let target = now.next;
        let started = std::time::Instant::now();
        while now.below < target {
            // A writer already open for longer than the patience is not
            // one about to commit: no use waiting for it.
            let stuck = now.blocker.as_ref().and_then(|b| b.since).is_some_and(|since| {
                chrono::Utc::now()
                    .signed_duration_since(since)
                    .to_std()
                    .unwrap_or_default()
                    >= patience
            });
            if stuck || started.elapsed() >= patience {
                return Ok(now.blocker);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            now = horizon(&mut conn).await?;
        }
        Ok(None)
    }

    /// The feed's lag now (nothing on SQLite, whose one writer at a time
    /// makes every committed event readable at once).
    pub async fn feed_lag(&self) -> Result<FeedLag, StoreError> {
        let Store::Postgres(pool) = self else {
            return Ok(FeedLag::default());
        };
        let mut conn = pool.acquire().await.map_err(StoreError::query("đọc mốc giao dịch"))?;
        let h = horizon(&mut conn).await?;
        let Some(blocker) = h.blocker else {
            return Ok(FeedLag::default());
        };
        let unseen: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE tx_id >= $1::text::xid8")
            .bind(h.below.to_string())
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::query("đếm sự kiện chưa đọc được"))?;
        Ok(FeedLag {
            unseen,
            blocker: Some(blocker),
        })
    }

    /// Reads up to `limit` events after `after`.
    pub async fn read_feed(&self, after: Cursor, limit: i64) -> Result<Vec<FeedEvent>, StoreError> {
        match self {
            Store::Sqlite(pool) => {
                let mut conn = pool
                    .acquire()
                    .await
                    .map_err(StoreError::query("đọc dòng sự kiện chung"))?;
                read_after_sqlite(&mut conn, after, limit).await
            }
            Store::Postgres(pool) => {
                let mut tx = pool
                    .begin()
                    .await
                    .map_err(StoreError::query("đọc dòng sự kiện chung"))?;
                in_feed_order(&mut tx).await?;
                let events = read_after_postgres(&mut tx, after, limit).await?;
                tx.commit().await.map_err(StoreError::query("đọc dòng sự kiện chung"))?;
                Ok(events)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::widen;

    #[test]
    fn transaction_ids_widen_across_the_epoch() {
        // The same epoch.
        assert_eq!(widen(90, 100), Some(90));
        // At or after x0: not a writer the horizon waits for.
        assert_eq!(widen(100, 100), None);
        assert_eq!(widen(105, 100), None);
        // x0 just past a wraparound of the 32-bit counter: epoch 1.
        let x0 = (1u64 << 32) + 5;
        assert_eq!(widen(u32::MAX - 2, x0), Some((1u64 << 32) - 3));
        assert_eq!(widen(3, x0), Some((1u64 << 32) + 3));
        assert_eq!(widen(7, x0), None);
    }
}
