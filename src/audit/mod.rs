//! Tamper evidence: the canonical form and hash chain of stored events,
//! checkpoints over all chains, verification and export.

pub mod asof;
pub mod canonical;
pub mod checkpoint;
pub mod export;
pub mod history;
pub mod merkle;
pub mod report;
pub mod verify;
