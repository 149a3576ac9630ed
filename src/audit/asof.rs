//! State as of any instant: replay a task's events up to that time. What the
//! Inspection Committee sees with `--as-of` is what was true then, not now.

use crate::domain::task::{Task, TaskEvent};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde_json::Value;
use sqlx::Row;

/// One stored event of a task, decoded, with its hash.
#[derive(Debug, Clone)]
pub struct Stored {
    pub sequence: i64,
    pub event: TaskEvent,
    pub metadata: Value,
    pub hash: Option<String>,
}

const TASK_EVENTS: &str = "SELECT sequence, payload, metadata, hash FROM events
 WHERE aggregate_type = 'Task' AND aggregate_id = $1 ORDER BY sequence";

fn decode(id: &str, sequence: i64, payload: &str, metadata: &str, hash: Option<String>) -> Result<Stored, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt {
        context: format!("{id} #{sequence}"),
        reason: e.to_string(),
    };
    Ok(Stored {
        sequence,
        event: serde_json::from_str(payload).map_err(corrupt)?,
        metadata: serde_json::from_str(metadata).map_err(corrupt)?,
        hash,
    })
}

impl Store {
    /// The root recorded by the latest checkpoint, if any.
    pub async fn latest_checkpoint_root(&self) -> Result<Option<String>, StoreError> {
        let sql = "SELECT payload FROM events WHERE aggregate_type = 'Checkpoint' ORDER BY sequence DESC LIMIT 1";
        let payload: Option<String> = match self {
            Store::Sqlite(p) => sqlx::query_scalar(sql).fetch_optional(p).await,
            Store::Postgres(p) => {
                sqlx::query_scalar(&sql.replace("SELECT payload", "SELECT payload::text"))
                    .fetch_optional(p)
                    .await
            }
        }
        .map_err(StoreError::query("đọc điểm kiểm"))?;
        Ok(payload
            .and_then(|p| serde_json::from_str::<Value>(&p).ok())
            .and_then(|v| v["CheckpointRecorded"]["root"].as_str().map(str::to_string)))
    }

    /// Every event of one task, in sequence order.
    pub async fn task_events(&self, aggregate_id: &str) -> Result<Vec<Stored>, StoreError> {
        let rows: Vec<(i64, String, String, Option<String>)> = match self {
            Store::Sqlite(p) => sqlx::query(TASK_EVENTS)
                .bind(aggregate_id)
                .fetch_all(p)
                .await
                .map_err(StoreError::query("đọc lịch sử nhiệm vụ"))?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect(),
            Store::Postgres(p) => {
                sqlx::query(&TASK_EVENTS.replace("payload, metadata", "payload::text, metadata::text"))
                    .bind(aggregate_id)
                    .fetch_all(p)
                    .await
                    .map_err(StoreError::query("đọc lịch sử nhiệm vụ"))?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                    .collect()
            }
        };
        rows.into_iter()
            .map(|(seq, p, m, h)| decode(aggregate_id, seq, &p, &m, h))
            .collect()
    }
}

/// The task as it stood at `as_of`: its events stamped at or before then.
pub fn replay_until(events: &[Stored], as_of: DateTime<Utc>) -> Task {
    let mut task = Task::default();
    for s in events.iter().filter(|s| s.event.stamp().at <= as_of) {
        task.apply(s.event.clone());
    }
    task
}
