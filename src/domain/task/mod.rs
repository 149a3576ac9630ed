//! The task aggregate: commands, events, rules.

pub mod aggregate;
pub mod commands;
pub mod definition;
pub mod errors;
pub mod events;

#[cfg(test)]
mod tests;

pub use aggregate::{Delivery, Milestone, MilestoneStatus, ReminderRecord, Task};
pub use commands::{DeliveryOutcome, TaskAction, TaskCommand};
pub use definition::{
    Actor, Baseline, Comparator, KpiTarget, MilestoneKind, MilestoneSpec, SourceRef, Stamp, TargetValue, TaskDefinition,
};
pub use errors::TaskError;
pub use events::{KpiValue, TaskEvent};
