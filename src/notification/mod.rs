//! Notification: turning queued reminders into e-mails (`email`) and
//! delivering them over SMTP or into `.eml` files (`transport`).
//!
//! The unit of delivery is a digest: everything one agency should hear about
//! in one send window, as one e-mail.

pub mod account_mail;
pub mod contents;
pub mod dispatch;
pub mod email;
pub mod notice;
pub mod personal;
pub mod signin;
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
    /// obligations: the owing agency's name ("Ủy ban nhân dân thị xã"), so
    /// that an advisory copy says whose it is.
    pub obligation: Option<String>,
    pub due: NaiveDate,
    /// Where the law moves the deadline (a day off under the Civil Code):
    /// "Chủ nhật; theo Điều 148 BLDS: 01/04/2024", shown after the date.
    pub due_moved: Option<String>,
    /// Whole days from the send day to the legal deadline; negative when
    /// overdue.
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
    /// What the subject starts with: the plan's `[mail] subject_prefix`, or
    /// "[kehoach]".
    pub subject_prefix: String,
    /// The local day the e-mail is for.
    pub window: NaiveDate,
    /// Stable across re-sends of the same digest: `<…@domain>` without brackets.
    pub message_id: String,
    /// The Date: header, in the plan's zone (+07:00).
    pub date: DateTime<FixedOffset>,
    /// One line per item in its current state, most urgent first (see
    /// [`contents`]); the first [`contents::FULL_ITEMS`] are written in
    /// full, all of them are counted.
    pub items: Vec<DigestItem>,
    /// The plan's id, for the links to the filtered inbox.
    pub plan_id: String,
    /// Web address the links start with.
    pub base_url: String,
    /// Queued notices folded into a later one about the same item.
    pub folded: usize,
    /// Items no longer owed (waived or cancelled since queued), not listed.
    pub closed: usize,
    /// For the Inspection Committee: the latest audit checkpoint root, so
    /// that roots leave the system by e-mail and a later rewrite of the
    /// store cannot match them.
    pub audit_root: Option<String>,
    /// Sent from a simulation store: marked "MÔ PHỎNG" in the subject and body.
    pub simulation: bool,
}
