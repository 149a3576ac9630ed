//! Notification: turning queued reminders into e-mails (`email`) and
//! delivering them over SMTP or into `.eml` files (`transport`).
//!
//! The unit of delivery is a digest: everything one agency should hear about
//! in one send window, as one e-mail.

pub mod dispatch;
pub mod email;
pub mod notice;
pub mod transport;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::Serialize;

pub use crate::domain::reminders::{ReminderKind as ItemKind, Role};

/// One line of a digest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DigestItem {
    pub task_id: String,
    pub task_title: String,
    pub role: Role,
    pub kind: ItemKind,
    pub milestone_id: String,
    pub milestone_title: String,
    /// Whose part of the milestone the item is about, where it has several
    /// obligations (`UBND`), so that an advisory copy says whose it is.
    pub obligation: Option<String>,
    pub due: NaiveDate,
    /// Whole days from the send day to the due date; negative when overdue.
    pub days_left: i64,
    /// A reason or note that comes with the item (a return's reason, say).
    pub note: Option<String>,
    /// Where to act: the task's web address.
    pub link: String,
}

/// One e-mail to one agency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Digest {
    pub plan_title: String,
    pub agency_code: String,
    pub agency_name: String,
    /// Envelope and To: addresses of the agency (and its members).
    pub recipients: Vec<String>,
    pub from: String,
    /// The local day the e-mail is for.
    pub window: NaiveDate,
    /// Stable across re-sends of the same digest: `<…@domain>` without brackets.
    pub message_id: String,
    /// The Date: header, in the plan's zone (+07:00).
    pub date: DateTime<FixedOffset>,
    /// Overdue first, then by due date.
    pub items: Vec<DigestItem>,
    /// For the Inspection Committee: the latest audit checkpoint root, so
    /// that roots leave the system by e-mail and a later rewrite of the
    /// store cannot match them.
    pub audit_root: Option<String>,
    /// Sent from a simulation store: marked "MÔ PHỎNG" in the subject and body.
    pub simulation: bool,
}
