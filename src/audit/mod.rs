//! Tamper evidence: the canonical form and hash chain of stored events.

pub mod canonical;
