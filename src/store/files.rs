//! Evidence files: bytes addressed by their SHA-256 (`evidence_files`),
//! in the database so that every `serve` process shares them. A file is
//! stored before the event that attaches it is committed: a file no event
//! attaches is harmless, an event whose file is missing is not (`audit
//! verify` reports it).

use super::{Store, StoreError};
use crate::domain::files::Evidence;
use crate::domain::task::FileHash;
use chrono::{DateTime, Utc};

/// A stored file: its bytes and what was recorded with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub sha256: String,
    pub size: i64,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Store {
    /// Stores a checked file; storing the same bytes again changes nothing.
    pub async fn put_file(&self, file: &Evidence, at: DateTime<Utc>) -> Result<(), StoreError> {
        let a = &file.attachment;
        crate::with_pool!(self, pool => sqlx::query(
            "INSERT INTO evidence_files (sha256, size, media_type, bytes, stored_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(a.sha256.as_str())
        .bind(file.bytes.len() as i64)
        .bind(&a.media_type)
        .bind(&file.bytes)
        .bind(at.to_rfc3339())
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(StoreError::query("lưu tệp minh chứng")))
    }

    /// Stores checked files, one after the other.
    pub async fn put_files(&self, files: &[Evidence], at: DateTime<Utc>) -> Result<(), StoreError> {
        for f in files {
            self.put_file(f, at).await?;
        }
        Ok(())
    }

    /// The stored file with this hash, if any.
    pub async fn get_file(&self, sha256: &FileHash) -> Result<Option<StoredFile>, StoreError> {
        let row: Option<(String, i64, String, Vec<u8>)> = crate::with_pool!(self, pool => sqlx::query_as(
            "SELECT sha256, size, media_type, bytes FROM evidence_files WHERE sha256 = $1",
        )
        .bind(sha256.as_str())
        .fetch_optional(pool)
        .await
        .map_err(StoreError::query("đọc tệp minh chứng"))?);
        Ok(row.map(|(sha256, size, media_type, bytes)| StoredFile {
            sha256,
            size,
            media_type,
            bytes,
        }))
    }
}
