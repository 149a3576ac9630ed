//! The task aggregate: commands, events, rules.

pub mod aggregate;
pub mod commands;
pub mod definition;
pub mod errors;
pub mod events;

#[cfg(test)]
mod tests;

pub use aggregate::{
    obligation_key, split_key, Delivery, Milestone, MilestoneStatus, Obligation, ReminderRecord, Task,
};
pub use commands::{DeliveryOutcome, TaskAction, TaskCommand};
pub use definition::{
    system_label, Actor, Baseline, Channel, Comparator, KpiTarget, MilestoneKind, MilestoneSpec, ObligationMode,
    ObligationRef, Principal, SourceRef, Stamp, TargetValue, TaskDefinition,
};
pub use errors::TaskError;
pub use events::{KpiValue, TaskEvent};
