//! Turns a plan definition into the commands that make the store match it.

use super::PlanDefinition;
use crate::domain::ids::TaskKey;
use crate::domain::plan::SyncPlan;
use crate::domain::task::{Stamp, TaskAction, TaskCommand};

/// The commands that bring the store in line with `plan`: one for the plan
/// itself, one per task in the file, and a withdrawal for each task that the
/// store has and the file no longer lists.
pub fn commands(
    plan: &PlanDefinition,
    stored_tasks: &[TaskKey],
    stamp: &Stamp,
) -> (SyncPlan, Vec<(TaskKey, TaskCommand)>) {
    let sync_plan = SyncPlan {
        header: plan.header.clone(),
        agencies: plan.agencies.clone(),
        source: plan.source.clone(),
        stamp: stamp.clone(),
    };
    let mut out: Vec<(TaskKey, TaskCommand)> = plan
        .tasks
        .iter()
        .map(|t| {
            let action = TaskAction::SyncFromPlan {
                plan: plan.header.id.clone(),
                task: t.id.clone(),
                definition: t.definition.clone(),
                milestones: t.milestones.clone(),
            };
            (
                plan.key(t),
                TaskCommand {
                    stamp: stamp.clone(),
                    action,
                },
            )
        })
        .collect();
    for key in stored_tasks {
        if key.plan == plan.header.id && !plan.tasks.iter().any(|t| t.id == key.task) {
            let action = TaskAction::Withdraw {
                reason: "Nhiệm vụ không còn trong tệp kế hoạch".into(),
            };
            out.push((
                key.clone(),
                TaskCommand {
                    stamp: stamp.clone(),
                    action,
                },
            ));
        }
    }
    (sync_plan, out)
}
