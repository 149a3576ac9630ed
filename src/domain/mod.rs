//! The pure core: identifiers, calendar values and the task aggregate.
//! Nothing here does I/O or reads a clock.

pub mod calendar;
pub mod dates;
pub mod deadline;
pub mod directory;
pub mod files;
pub mod ids;
pub mod notices;
pub mod plan;
pub mod reminders;
pub mod task;
pub mod text;
