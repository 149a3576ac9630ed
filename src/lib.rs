//! kehoach: an event-sourced workflow engine that turns a government
//! implementation plan into tracked, accountable tasks.
//!
//! The flow: a plan file (`plan`) becomes commands on task aggregates
//! (`domain`), whose events are stored (`store`), read back in commit order
//! through the feed, and projected into views (`projections`) that the CLI
//! (`cli`) and later the scheduler and web server read.

pub mod accounts;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod notification;
pub mod plan;
pub mod projections;
pub mod scheduling;
pub mod serve;
pub mod store;
pub mod templates;
pub mod web;
