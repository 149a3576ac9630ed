//! `audit export --format jsonl`: every stored event with its hashes, in
//! feed order, for checking offline (see docs/audit/canonical-form.md and
//! docs/audit/verify.py).

use crate::store::feed::Cursor;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
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

/// Writes the export; returns the number of events written.
pub async fn export(store: &Store, out: &mut impl Write, now: DateTime<Utc>) -> Result<u64, ExportError> {
    store.settle(std::time::Duration::from_secs(10)).await?;
    let count = store.event_count().await?;
    writeln!(
        out,
        "{}",
        json!({ "kind": "header", "format": FORMAT, "exported_at": now.to_rfc3339(), "events": count })
    )?;
    let mut after = Cursor::default();
    let mut written = 0;
    loop {
        let batch = store.read_feed(after, 5_000).await?;
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
        }
        after = last;
    }
    out.flush()?;
    Ok(written)
}
