use super::definition::{MilestoneSpec, Stamp, TaskDefinition};
use super::events::KpiValue;
use crate::domain::ids::{MilestoneId, PlanId, TaskId};
use chrono::NaiveDate;

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
}

impl TaskAction {
    /// Actions that only the engine (plan loader) may issue.
    pub fn is_system(&self) -> bool {
        matches!(self, Self::SyncFromPlan { .. } | Self::Withdraw { .. })
    }
}
