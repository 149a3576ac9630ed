//! State as of any instant: replay a task's events up to that time. What the
//! Inspection Committee sees with `--as-of` is what was true then, not now.

use crate::domain::plan::PlanEvent;
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
const PLAN_EVENTS: &str = "SELECT sequence, payload, metadata, hash FROM events
 WHERE aggregate_type = 'Plan' AND aggregate_id = $1 ORDER BY sequence";

/// One stored event of a plan, decoded, with its hash.
#[derive(Debug, Clone)]
pub struct StoredPlan {
    pub sequence: i64,
    pub event: PlanEvent,
    pub metadata: Value,
    pub hash: Option<String>,
}

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
        self.event_rows(TASK_EVENTS, aggregate_id, "đọc lịch sử nhiệm vụ")
            .await?
            .into_iter()
            .map(|(seq, p, m, h)| decode(aggregate_id, seq, &p, &m, h))
            .collect()
    }

    /// When a plan's record began: the instant its first load was recorded
    /// (none for a plan never loaded).
    pub async fn record_start(&self, plan_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.plan_events(plan_id).await?.iter().find_map(|s| match &s.event {
            PlanEvent::PlanRegistered { stamp, .. } => Some(stamp.at),
            _ => None,
        }))
    }

    /// Every event of one plan (its header and agency directory), in sequence order.
    pub async fn plan_events(&self, plan_id: &str) -> Result<Vec<StoredPlan>, StoreError> {
        self.event_rows(PLAN_EVENTS, plan_id, "đọc lịch sử kế hoạch")
            .await?
            .into_iter()
            .map(|(sequence, p, m, hash)| {
                let corrupt = |e: serde_json::Error| StoreError::Corrupt {
                    context: format!("{plan_id} #{sequence}"),
                    reason: e.to_string(),
                };
                Ok(StoredPlan {
                    sequence,
                    event: serde_json::from_str(&p).map_err(corrupt)?,
                    metadata: serde_json::from_str(&m).map_err(corrupt)?,
                    hash,
                })
            })
            .collect()
    }

    async fn event_rows(
        &self,
        sql: &str,
        aggregate_id: &str,
        what: &'static str,
    ) -> Result<Vec<(i64, String, String, Option<String>)>, StoreError> {
        Ok(match self {
            Store::Sqlite(p) => sqlx::query(sql)
                .bind(aggregate_id)
                .fetch_all(p)
                .await
                .map_err(StoreError::query(what))?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect(),
            Store::Postgres(p) => sqlx::query(&sql.replace("payload, metadata", "payload::text, metadata::text"))
                .bind(aggregate_id)
                .fetch_all(p)
                .await
                .map_err(StoreError::query(what))?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect(),
        })
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
