//! `audit export --format jsonl`: every stored event with its hashes, in
//! feed order, then every evidence file the events attach and every
//! original document a plan was imported from (base64), for
//! checking offline (see docs/audit/canonical-form.md and
//! docs/audit/verify.py).

use crate::domain::plan::{Plan, PlanEvent};
use crate::domain::task::{FileHash, Task, TaskEvent};
use crate::store::feed::Cursor;
use crate::store::snapshot::Snapshot;
use crate::store::{Store, StoreError};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate as _;
use serde_json::json;
use std::io::Write;

pub const FORMAT: &str = "kehoach-export-v1";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("không ghi được tệp xuất: {0}")]
    Write(#[from] std::io::Error),
}

/// The hashes of the files a task event's payload attaches (none if it
/// does not read as a task event).
fn attachments_of(payload: &serde_json::Value) -> Vec<FileHash> {
    serde_json::from_value::<TaskEvent>(payload.clone())
        .map(|event| event.attachments().iter().map(|a| a.sha256.clone()).collect())
        .unwrap_or_default()
}

/// The hash of the original document a plan's load event records, if any.
fn document_of(payload: &serde_json::Value) -> Option<FileHash> {
    match serde_json::from_value::<PlanEvent>(payload.clone()).ok()? {
        PlanEvent::PlanRegistered { source, .. } | PlanEvent::PlanAmended { source, .. } => {
            FileHash::parse(&source?.document?.sha256).ok()
        }
        _ => None,
    }
}

/// One `file` line: the stored bytes of an attached file, base64. A file
/// missing from the store is left out (verify.py then reports it).
async fn write_file(store: &Store, out: &mut impl Write, sha256: &FileHash) -> Result<(), ExportError> {
    let Some(file) = store.get_file(sha256).await? else {
        tracing::warn!(sha256 = %sha256, "tệp minh chứng không có trong kho; không xuất được");
        return Ok(());
    };
    let line = json!({
        "kind": "file",
        "sha256": sha256.as_str(),
        "size": file.size,
        "media_type": file.media_type,
        "base64": base64::engine::general_purpose::STANDARD.encode(&file.bytes),
    });
    writeln!(out, "{line}")?;
    Ok(())
}

/// Writes the export; returns the number of events written.
///
/// The events are read in one snapshot of the store: the header's count and
/// the lines agree even while `serve` writes, and every event committed when
/// the export began is in it.
pub async fn export(store: &Store, out: &mut impl Write, now: DateTime<Utc>) -> Result<u64, ExportError> {
    let mut snap = store.snapshot().await?;
    let written = export_in(store, &mut snap, out, now).await;
    snap.close().await;
    written
}

async fn export_in(
    store: &Store,
    snap: &mut Snapshot,
    out: &mut impl Write,
    now: DateTime<Utc>,
) -> Result<u64, ExportError> {
    let count = snap.event_count().await?;
    writeln!(
        out,
        "{}",
        json!({ "kind": "header", "format": FORMAT, "exported_at": now.to_rfc3339(), "events": count })
    )?;
    let mut after = Cursor::default();
    let mut written = 0;
    let mut attached: Vec<FileHash> = Vec::new();
    loop {
        let batch = snap.read_range(after, Cursor::END, 5_000).await?;
        let Some(last) = batch.last().map(|e| e.cursor) else {
            break;
        };
        for e in batch {
            let (payload, metadata) = (
                e.payload_value().map_err(|err| e.corrupt(err))?,
                e.metadata_value().map_err(|err| e.corrupt(err))?,
            );
            let line = json!({
                "kind": "event",
                "cursor": [e.cursor.tx, e.cursor.position],
                "aggregate_type": e.aggregate_type,
                "aggregate_id": e.aggregate_id,
                "sequence": e.sequence,
                "event_type": e.event_type,
                "event_version": e.event_version,
                "payload": payload,
                "metadata": metadata,
                "prev_hash": e.prev_hash,
                "hash": e.hash,
            });
            writeln!(out, "{line}")?;
            written += 1;
            let files = if e.aggregate_type == Task::TYPE {
                attachments_of(&line["payload"])
            } else if e.aggregate_type == Plan::TYPE {
                document_of(&line["payload"]).into_iter().collect()
            } else {
                Vec::new()
            };
            for a in files {
                if !attached.contains(&a) {
                    attached.push(a);
                }
            }
        }
        after = last;
    }
    for sha256 in &attached {
        write_file(store, out, sha256).await?;
    }
    out.flush()?;
    Ok(written)
}
