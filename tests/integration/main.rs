//! Integration tests: one binary, shared helpers, a fresh database per test.

mod accountability;
mod accounts;
mod audit;
mod browser;
mod cli;
mod directory;
mod engine;
mod helpers;
mod legacy;
mod reminders;
mod scale;
mod shipped_plan;
mod time;
mod web;
