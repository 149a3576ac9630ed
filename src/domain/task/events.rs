use super::definition::{KpiTarget, MilestoneSpec, ObligationMode, ObligationRef, SourceRef, Stamp, TaskDefinition};
use super::evidence::Attachment;
use super::records::{RecordedState, SheetRef};
use crate::domain::ids::{AgencyCode, KpiKey, MilestoneId, PlanId, TaskId};
use crate::domain::reminders::{PolicyOverride, Recipient, ReminderKind};
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

/// A value before and after a plan amendment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change<T> {
    pub from: T,
    pub to: T,
}

/// The fields of a task definition that a plan amendment changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DefinitionChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Change<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Change<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<Change<AgencyCode>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory: Option<Change<Vec<AgencyCode>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementers: Option<Change<Vec<AgencyCode>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinators: Option<Change<Vec<AgencyCode>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Change<Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Change<SourceRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kpis: Option<Change<Vec<KpiTarget>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminders: Option<Change<Option<PolicyOverride>>>,
}

fn change<T: PartialEq + Clone>(from: &T, to: &T) -> Option<Change<T>> {
    (from != to).then(|| Change {
        from: from.clone(),
        to: to.clone(),
    })
}

impl DefinitionChanges {
    pub fn between(old: &TaskDefinition, new: &TaskDefinition) -> Self {
        Self {
            title: change(&old.title, &new.title),
            text: change(&old.text, &new.text),
            lead: change(&old.lead, &new.lead),
            advisory: change(&old.advisory, &new.advisory),
            implementers: change(&old.implementers, &new.implementers),
            coordinators: change(&old.coordinators, &new.coordinators),
            deadline: change(&old.deadline, &new.deadline),
            source: change(&old.source, &new.source),
            kpis: change(&old.kpis, &new.kpis),
            reminders: change(&old.reminders, &new.reminders),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn apply_to(&self, def: &mut TaskDefinition) {
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(c) = &self.$f { def.$f = c.to.clone(); } )*};
        }
        set!(
            title,
            text,
            lead,
            advisory,
            implementers,
            coordinators,
            deadline,
            source,
            kpis,
            reminders
        );
    }
}

/// A KPI value reported against a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiValue {
    pub key: KpiKey,
    pub value: f64,
}

impl KpiValue {
    /// A value as reported; `-0` is 0 (it would be shown as `-0`).
    pub fn new(key: KpiKey, value: f64) -> Self {
        let value = if value == 0.0 { 0.0 } else { value };
        Self { key, value }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Events live briefly between decide and serialisation; boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum TaskEvent {
    TaskRegistered {
        plan: PlanId,
        task: TaskId,
        definition: TaskDefinition,
        stamp: Stamp,
    },
    TaskAmended {
        changes: DefinitionChanges,
        stamp: Stamp,
    },
    TaskWithdrawn {
        reason: String,
        stamp: Stamp,
    },
    TaskReinstated {
        stamp: Stamp,
    },
    MilestoneOpened {
        milestone: MilestoneSpec,
        stamp: Stamp,
    },
    /// The plan changed a milestone's title or planned due date.
    MilestoneAmended {
        milestone: MilestoneId,
        title: Option<Change<String>>,
        due: Option<Change<NaiveDate>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        obligation: Option<Change<ObligationMode>>,
        stamp: Stamp,
    },
    ProgressReported {
        milestone: MilestoneId,
        /// The obligation concerned; absent in release 0.1 events (see `Task::apply`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        obligation: Option<ObligationRef>,
        note: String,
        kpis: Vec<KpiValue>,
        evidence: Vec<String>,
        /// Evidence files; absent before release 0.3 and when there are none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<Attachment>,
        stamp: Stamp,
    },
    MilestoneSubmitted {
        milestone: MilestoneId,
        /// The obligation concerned; absent in release 0.1 events (see `Task::apply`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        obligation: Option<ObligationRef>,
        note: String,
        /// Evidence files; absent before release 0.3 and when there are none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<Attachment>,
        stamp: Stamp,
    },
    MilestoneApproved {
        milestone: MilestoneId,
        /// The obligation concerned; absent in release 0.1 events (see `Task::apply`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        obligation: Option<ObligationRef>,
        note: String,
        stamp: Stamp,
    },
    MilestoneReturned {
        milestone: MilestoneId,
        /// The obligation concerned; absent in release 0.1 events (see `Task::apply`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        obligation: Option<ObligationRef>,
        reason: String,
        stamp: Stamp,
    },
    DeadlineExtended {
        milestone: MilestoneId,
        /// The obligation concerned; absent in release 0.1 events (see `Task::apply`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        obligation: Option<ObligationRef>,
        from: NaiveDate,
        until: NaiveDate,
        reason: String,
        stamp: Stamp,
    },
    MilestoneWaived {
        milestone: MilestoneId,
        /// The obligation concerned; absent in release 0.1 events (see `Task::apply`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        obligation: Option<ObligationRef>,
        reason: String,
        stamp: Stamp,
    },
    /// A row of a sheet of the state already reached: recorded now (the
    /// stamp) from the office's files, naming the sheet and its row; a
    /// claimed `done_on` judges on-time or late.
    ObligationRecorded {
        milestone: MilestoneId,
        obligation: ObligationRef,
        state: RecordedState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        done_on: Option<NaiveDate>,
        note: String,
        record: String,
        sheet: SheetRef,
        row: u32,
        stamp: Stamp,
    },
    MilestoneCancelled {
        milestone: MilestoneId,
        /// The obligation concerned; absent in release 0.1 events (see `Task::apply`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        obligation: Option<ObligationRef>,
        reason: String,
        stamp: Stamp,
    },
    /// A message in a milestone's discussion, by the owing agency or by a
    /// lead or advisory agency of the task (who: the stamp); the other side
    /// is told by a notice queued in the same commit.
    MessagePosted {
        milestone: MilestoneId,
        obligation: ObligationRef,
        text: String,
        stamp: Stamp,
    },
    /// A message is due to the recipients: recorded before any e-mail is
    /// sent, so that delivery can be retried and proved. `key` is unique
    /// within the milestone; `covers` lists earlier points this one stands
    /// for (missed while the engine was down).
    ReminderQueued {
        milestone: MilestoneId,
        /// The obligation concerned; absent in release 0.1 events (see `Task::apply`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        obligation: Option<ObligationRef>,
        key: String,
        kind: ReminderKind,
        covers: Vec<String>,
        recipients: Vec<Recipient>,
        /// The local day it belongs to; None for state-change notices, which go out at once.
        window: Option<NaiveDate>,
        note: Option<String>,
        stamp: Stamp,
    },
    ReminderSent {
        milestone: MilestoneId,
        key: String,
        agency: AgencyCode,
        message_id: String,
        addresses: Vec<String>,
        reply: String,
        stamp: Stamp,
    },
    ReminderFailed {
        milestone: MilestoneId,
        key: String,
        agency: AgencyCode,
        attempt: u32,
        error: String,
        /// None when this was the last attempt.
        next_attempt: Option<DateTime<Utc>>,
        stamp: Stamp,
    },
    /// The item was put in a digest, before any attempt to send it: the
    /// digest (its Message-ID, its addresses, and the items that carry this
    /// Message-ID) is fixed from here on, and every attempt sends it again
    /// as it is. Written for every item of the digest in one transaction.
    ReminderBatched {
        milestone: MilestoneId,
        key: String,
        agency: AgencyCode,
        message_id: String,
        addresses: Vec<String>,
        stamp: Stamp,
    },
    /// One attempt to deliver the digest, with the server's answer for each
    /// address tried. Written for every item of the digest in one transaction.
    ReminderAttempted {
        milestone: MilestoneId,
        key: String,
        agency: AgencyCode,
        message_id: String,
        attempt: u32,
        results: Vec<AddressResult>,
        /// When the addresses deferred are tried again; None: no more attempts.
        next_attempt: Option<DateTime<Utc>>,
        stamp: Stamp,
    },
    /// An operator put a delivery that had failed for good back in the
    /// queue (`outbox retry`): its failed addresses are tried again, with
    /// the same Message-ID.
    ReminderRequeued {
        milestone: MilestoneId,
        key: String,
        agency: AgencyCode,
        stamp: Stamp,
    },
}

/// What the server said about one address in one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressResult {
    pub address: String,
    pub outcome: AddressOutcome,
    /// The server's reply, or the error.
    pub reply: String,
}

impl AddressResult {
    /// `address: reply`, as errors and logs show a refusal.
    pub fn described(&self) -> String {
        format!("{}: {}", self.address, self.reply)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressOutcome {
    /// Accepted (2xx): delivered.
    Accepted,
    /// Refused for good (5xx, or an address that is not one): final at once.
    Rejected,
    /// Not delivered this time (4xx, no connection, timeout): tried again.
    Deferred,
}

impl TaskEvent {
    pub fn stamp(&self) -> &Stamp {
        match self {
            Self::TaskRegistered { stamp, .. }
            | Self::TaskAmended { stamp, .. }
            | Self::TaskWithdrawn { stamp, .. }
            | Self::TaskReinstated { stamp }
            | Self::MilestoneOpened { stamp, .. }
            | Self::MilestoneAmended { stamp, .. }
            | Self::ProgressReported { stamp, .. }
            | Self::MilestoneSubmitted { stamp, .. }
            | Self::MilestoneApproved { stamp, .. }
            | Self::MilestoneReturned { stamp, .. }
            | Self::DeadlineExtended { stamp, .. }
            | Self::MilestoneWaived { stamp, .. }
            | Self::MilestoneCancelled { stamp, .. }
            | Self::MessagePosted { stamp, .. }
            | Self::ObligationRecorded { stamp, .. }
            | Self::ReminderQueued { stamp, .. }
            | Self::ReminderSent { stamp, .. }
            | Self::ReminderFailed { stamp, .. }
            | Self::ReminderBatched { stamp, .. }
            | Self::ReminderAttempted { stamp, .. }
            | Self::ReminderRequeued { stamp, .. } => stamp,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::TaskRegistered { .. } => "TaskRegistered",
            Self::TaskAmended { .. } => "TaskAmended",
            Self::TaskWithdrawn { .. } => "TaskWithdrawn",
            Self::TaskReinstated { .. } => "TaskReinstated",
            Self::MilestoneOpened { .. } => "MilestoneOpened",
            Self::MilestoneAmended { .. } => "MilestoneAmended",
            Self::ProgressReported { .. } => "ProgressReported",
            Self::MilestoneSubmitted { .. } => "MilestoneSubmitted",
            Self::MilestoneApproved { .. } => "MilestoneApproved",
            Self::MilestoneReturned { .. } => "MilestoneReturned",
            Self::DeadlineExtended { .. } => "DeadlineExtended",
            Self::MilestoneWaived { .. } => "MilestoneWaived",
            Self::MilestoneCancelled { .. } => "MilestoneCancelled",
            Self::MessagePosted { .. } => "MessagePosted",
            Self::ObligationRecorded { .. } => "ObligationRecorded",
            Self::ReminderQueued { .. } => "ReminderQueued",
            Self::ReminderSent { .. } => "ReminderSent",
            Self::ReminderFailed { .. } => "ReminderFailed",
            Self::ReminderBatched { .. } => "ReminderBatched",
            Self::ReminderAttempted { .. } => "ReminderAttempted",
            Self::ReminderRequeued { .. } => "ReminderRequeued",
        }
    }
}

impl DomainEvent for TaskEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    /// 2: obligations and principals. Version 1 events (release 0.1) still
    /// decode: the fields added since are optional.
    fn event_version(&self) -> String {
        "2".to_string()
    }
}
