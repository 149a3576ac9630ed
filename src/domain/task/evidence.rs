//! Evidence files: what a report or a submission attaches. The bytes live
//! in the store, addressed by their SHA-256; the event carries the hash, so
//! the hash chain covers the evidence.

use super::events::KpiValue;
use super::Stamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// At most this many files on one report or submission.
pub const ATTACHMENTS_MAX_ITEMS: usize = 10;
/// A file name of at most this many characters.
pub const ATTACHMENT_NAME_MAX_CHARS: usize = 200;

/// The SHA-256 of a file's bytes: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileHash(String);

impl FileHash {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(format!("{s:?} is not a SHA-256 (64 hex digits)"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FileHash {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<FileHash> for String {
    fn from(h: FileHash) -> String {
        h.0
    }
}

impl fmt::Display for FileHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One evidence file as the event records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub sha256: FileHash,
    /// The file's name as uploaded (no directories).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// The media type found from the content (not the name), e.g.
    /// `application/pdf`, `image/jpeg`.
    pub media_type: String,
}

/// What an agency filed in the current round of an obligation (since it
/// was last returned): its reports, then its submission. What the approver
/// reviews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filed {
    /// The submission (true) or a progress report (false).
    pub submission: bool,
    pub note: String,
    #[serde(default)]
    pub kpis: Vec<KpiValue>,
    /// Links or document numbers.
    #[serde(default)]
    pub evidence: Vec<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    pub stamp: Stamp,
}

impl super::TaskEvent {
    /// The evidence files the event attaches (a report's or a submission's).
    pub fn attachments(&self) -> &[Attachment] {
        match self {
            Self::ProgressReported { attachments, .. } | Self::MilestoneSubmitted { attachments, .. } => attachments,
            _ => &[],
        }
    }
}
