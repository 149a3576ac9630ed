//! The task aggregate: commands, events, rules.

pub mod aggregate;
pub mod commands;
pub mod definition;
pub mod errors;
pub mod events;
pub mod evidence;
pub mod inputs;
pub mod records;

#[cfg(test)]
mod tests;

pub use aggregate::{
    obligation_key, split_key, AddressState, Delivery, DeliveryStatus, KpiStanding, Milestone, MilestoneStatus,
    Obligation, ReminderRecord, Task,
};
pub use commands::{DeliveryOutcome, TaskAction, TaskCommand};
pub use definition::{
    format_number, system_label, unit_after, with_unit, Actor, Baseline, Better, Channel, Comparator, KpiTarget,
    MilestoneKind, MilestoneSpec, ObligationMode, ObligationRef, Principal, SourceRef, Stamp, TargetValue,
    TaskDefinition, ABOUT_TOLERANCE,
};
pub use errors::TaskError;
pub use events::{AddressOutcome, AddressResult, KpiValue, TaskEvent};
pub use evidence::{Attachment, FileHash, Filed};
pub use records::{RecordRow, Recorded, RecordedState, SheetRef};
