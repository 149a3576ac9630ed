use super::definition::{MilestoneSpec, Stamp, TaskDefinition};
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
    Withdraw {
        reason: String,
    },
    ReportProgress {
        milestone: MilestoneId,
        note: String,
        kpis: Vec<KpiValue>,
        evidence: Vec<String>,
    },
    Submit {
        milestone: MilestoneId,
        note: String,
    },
    Approve {
        milestone: MilestoneId,
        note: String,
    },
    Return {
        milestone: MilestoneId,
        reason: String,
    },
    Extend {
        milestone: MilestoneId,
        until: NaiveDate,
        reason: String,
    },
    Waive {
        milestone: MilestoneId,
        reason: String,
    },
    Cancel {
        milestone: MilestoneId,
        reason: String,
    },
    /// The scheduler found a reminder point that has come (engine only).
    QueueReminder {
        milestone: MilestoneId,
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
    /// Actions that only the engine (plan loader) may issue.
    pub fn is_system(&self) -> bool {
        matches!(
            self,
            Self::SyncFromPlan { .. }
                | Self::Withdraw { .. }
                | Self::QueueReminder { .. }
                | Self::RecordDelivery { .. }
        )
    }
}
