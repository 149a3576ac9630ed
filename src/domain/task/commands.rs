use super::definition::{MilestoneSpec, ObligationRef, Stamp, TaskDefinition};
use super::events::KpiValue;
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
    },
    Submit {
        milestone: MilestoneId,
        /// The obligation's agency, where the caller could mean several.
        agency: Option<AgencyCode>,
        note: String,
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
    /// The dispatcher tried to deliver a queued message to one agency (engine only).
    RecordDelivery {
        milestone: MilestoneId,
        key: String,
        agency: AgencyCode,
        outcome: DeliveryOutcome,
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
            | Self::QueueReminder { milestone, .. }
            | Self::RecordDelivery { milestone, .. } => Some(milestone),
            Self::SyncFromPlan { .. } | Self::Withdraw { .. } => None,
        }
    }

    /// Actions that only the engine may issue (scheduler, dispatcher).
    pub fn is_system(&self) -> bool {
        matches!(self, Self::QueueReminder { .. } | Self::RecordDelivery { .. })
    }

    /// Actions of loading a plan: the engine at start-up, an operator at the
    /// terminal or an administrator's account.
    pub fn is_plan_load(&self) -> bool {
        matches!(self, Self::SyncFromPlan { .. } | Self::Withdraw { .. })
    }
}
