use super::definition::{MilestoneSpec, ObligationRef, Stamp, TaskDefinition};
use super::events::{AddressResult, KpiValue};
use super::evidence::Attachment;
use super::records::{RecordRow, SheetRef};
use crate::domain::ids::{AgencyCode, MilestoneId, PlanId, TaskId};
use crate::domain::reminders::{Recipient, ReminderKind};
use chrono::{DateTime, NaiveDate, Utc};

/// A command on a task, with who asked and when (from the request, never
/// from a clock inside the aggregate).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCommand {
    pub stamp: Stamp,
    pub action: TaskAction,
}

// A command lives for one decision; boxing the plan's definition would only
// move the allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum TaskAction {
    /// Register the task, or amend it to match the plan file. Emits nothing
    /// when the task already matches.
    SyncFromPlan {
        plan: PlanId,
        task: TaskId,
        definition: TaskDefinition,
        milestones: Vec<MilestoneSpec>,
    },
    /// The task disappeared from the plan file: keep its history, mark it withdrawn.
    Withdraw { reason: String },
    ReportProgress {
        milestone: MilestoneId,
        /// The obligation's agency, where the caller could mean several.
        agency: Option<AgencyCode>,
        note: String,
        kpis: Vec<KpiValue>,
        evidence: Vec<String>,
        /// Evidence files, already stored (see `store::files`).
        attachments: Vec<Attachment>,
    },
    Submit {
        milestone: MilestoneId,
        /// The obligation's agency, where the caller could mean several.
        agency: Option<AgencyCode>,
        note: String,
        /// Evidence files, already stored (see `store::files`).
        attachments: Vec<Attachment>,
    },
    Approve {
        milestone: MilestoneId,
        /// The obligation's agency, where the caller could mean several.
        agency: Option<AgencyCode>,
        note: String,
    },
    Return {
        milestone: MilestoneId,
        /// The obligation's agency, where the caller could mean several.
        agency: Option<AgencyCode>,
        reason: String,
    },
    Extend {
        milestone: MilestoneId,
        /// The obligation's agency, where the caller could mean several.
        agency: Option<AgencyCode>,
        until: NaiveDate,
        reason: String,
    },
    Waive {
        milestone: MilestoneId,
        /// The obligation's agency, where the caller could mean several.
        agency: Option<AgencyCode>,
        reason: String,
    },
    Cancel {
        milestone: MilestoneId,
        /// The obligation's agency, where the caller could mean several.
        agency: Option<AgencyCode>,
        reason: String,
    },
    /// A message in a milestone's discussion ("Trao đổi") between the
    /// owing agency and the task's lead and advisory agencies.
    Discuss {
        milestone: MilestoneId,
        /// The obligation's agency, where the caller could mean several.
        agency: Option<AgencyCode>,
        text: String,
    },
    /// Rows of a sheet of the state already reached ("ghi nhận từ hồ sơ"),
    /// every row of this task at once: all of them or none.
    RecordFromSheet { sheet: SheetRef, rows: Vec<RecordRow> },
    /// The scheduler found a reminder point that has come (engine only).
    QueueReminder {
        milestone: MilestoneId,
        /// Whose deadline: the point's key is scoped to it (`before-7:UBND`).
        obligation: ObligationRef,
        /// The point's key within the obligation (`before-7`).
        key: String,
        kind: ReminderKind,
        covers: Vec<String>,
        recipients: Vec<Recipient>,
        window: Option<NaiveDate>,
    },
    /// The dispatcher fixed a digest to one agency: these items of this
    /// task go in it, under this Message-ID, to these addresses (engine only).
    FormDigest {
        agency: AgencyCode,
        items: Vec<(MilestoneId, String)>,
        message_id: String,
        addresses: Vec<String>,
    },
    /// The dispatcher tried to deliver a digest (engine only).
    RecordAttempt {
        agency: AgencyCode,
        items: Vec<(MilestoneId, String)>,
        message_id: String,
        attempt: u32,
        results: Vec<AddressResult>,
        next_attempt: Option<DateTime<Utc>>,
    },
    /// Put deliveries that failed for good back in the queue (`outbox retry`).
    Requeue {
        agency: AgencyCode,
        items: Vec<(MilestoneId, String)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Sent {
        message_id: String,
        addresses: Vec<String>,
        reply: String,
    },
    Failed {
        attempt: u32,
        error: String,
        next_attempt: Option<DateTime<Utc>>,
    },
}

impl TaskAction {
    /// The milestone a person's action is about.
    pub fn milestone(&self) -> Option<&MilestoneId> {
        match self {
            Self::ReportProgress { milestone, .. }
            | Self::Submit { milestone, .. }
            | Self::Approve { milestone, .. }
            | Self::Return { milestone, .. }
            | Self::Extend { milestone, .. }
            | Self::Waive { milestone, .. }
            | Self::Cancel { milestone, .. }
            | Self::Discuss { milestone, .. }
            | Self::QueueReminder { milestone, .. } => Some(milestone),
            Self::SyncFromPlan { .. }
            | Self::Withdraw { .. }
            | Self::FormDigest { .. }
            | Self::RecordAttempt { .. }
            | Self::RecordFromSheet { .. }
            | Self::Requeue { .. } => None,
        }
    }

    /// Actions that only the engine may issue (scheduler, dispatcher).
    pub fn is_system(&self) -> bool {
        matches!(
            self,
            Self::QueueReminder { .. } | Self::FormDigest { .. } | Self::RecordAttempt { .. }
        )
    }

    /// Operations: loading a plan (the engine at start-up, an operator at
    /// the terminal or an administrator's account) and re-queuing failed
    /// deliveries.
    pub fn is_operation(&self) -> bool {
        matches!(
            self,
            Self::SyncFromPlan { .. } | Self::Withdraw { .. } | Self::Requeue { .. }
        )
    }
}
