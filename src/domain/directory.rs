//! Notices of changes to the agency directory: when a plan amendment takes
//! e-mail addresses away from an agency (or adds some), the addresses that
//! used to receive the agency's mail are told, so that nobody can redirect
//! an agency's mail silently. A notice is a durable record on the Plan
//! aggregate first, then an e-mail, then marked delivered — like reminders.

use super::ids::AgencyCode;
use super::plan::Agency;
use super::task::{Actor, Delivery, Stamp};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A notice the plan owes to an agency's old addresses, and how its delivery went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryNotice {
    /// Unique within the plan: `directory-<n>-<AGENCY>`.
    pub key: String,
    pub agency: AgencyCode,
    /// Where the notice goes: the old addresses that left the entry, or,
    /// when addresses were only added, every old address.
    pub to: Vec<String>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
    /// Who changed the directory, and when.
    pub changed_by: Actor,
    pub changed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

impl DirectoryNotice {
    pub fn is_sent(&self) -> bool {
        matches!(self.delivery, Some(Delivery::Sent { .. }))
    }
}

/// How one agency's addresses changed between two directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressChange {
    pub agency: AgencyCode,
    pub to: Vec<String>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

/// Every address an entry sends to: the agency's own, then its members',
/// without repeats (compared without case, as mail servers do for domains
/// and nearly all do for the local part).
pub fn addresses(agency: &Agency) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let all = agency
        .emails
        .iter()
        .chain(agency.members.iter().flat_map(|m| m.emails.iter()));
    for a in all {
        let a = a.trim();
        if !a.is_empty() && !out.iter().any(|o| same(o, a)) {
            out.push(a.to_string());
        }
    }
    out
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase()
}

fn minus(left: &[String], right: &[String]) -> Vec<String> {
    left.iter()
        .filter(|a| !right.iter().any(|b| same(a, b)))
        .cloned()
        .collect()
}

/// The agencies whose addresses differ between `old` and `new`, in the old
/// directory's order then the new agencies, with whom to tell. An agency
/// that had no address has nobody to tell and gets no notice.
pub fn address_changes(old: &[Agency], new: &[Agency]) -> Vec<AddressChange> {
    let mut codes: Vec<&AgencyCode> = old.iter().map(|a| &a.code).collect();
    for a in new {
        if !codes.contains(&&a.code) {
            codes.push(&a.code);
        }
    }
    let of =
        |dir: &[Agency], code: &AgencyCode| dir.iter().find(|a| &a.code == code).map(addresses).unwrap_or_default();
    codes
        .into_iter()
        .filter_map(|code| {
            let before = of(old, code);
            let after = of(new, code);
            let removed = minus(&before, &after);
            let added = minus(&after, &before);
            if removed.is_empty() && added.is_empty() {
                return None;
            }
            let to = if removed.is_empty() { before } else { removed.clone() };
            (!to.is_empty()).then(|| AddressChange {
                agency: code.clone(),
                to,
                removed,
                added,
            })
        })
        .collect()
}

/// The number of the next directory change that queues notices: one more
/// than the highest already used by `notices`.
pub fn next_change_number(notices: &[DirectoryNotice]) -> u32 {
    notices
        .iter()
        .filter_map(|n| n.key.strip_prefix("directory-")?.split('-').next()?.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
        + 1
}

pub fn notice_key(change: u32, agency: &AgencyCode) -> String {
    format!("directory-{change}-{agency}")
}

/// A notice as queued by `stamp`.
pub fn queued(
    key: String,
    agency: AgencyCode,
    to: Vec<String>,
    removed: Vec<String>,
    added: Vec<String>,
    stamp: &Stamp,
) -> DirectoryNotice {
    DirectoryNotice {
        key,
        agency,
        to,
        removed,
        added,
        changed_by: stamp.by.clone(),
        changed_at: stamp.at,
        delivery: None,
    }
}
