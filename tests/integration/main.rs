//! Integration tests: one binary, shared helpers, a fresh database per test.

mod accountability;
mod accounts;
mod admin_web;
mod atomic;
mod audit;
mod browser;
mod cli;
mod digests;
mod directory;
mod engine;
mod evidence;
mod faults;
mod helpers;
mod idempotency;
mod legacy;
mod lists;
mod reminders;
mod review;
mod scale;
mod shipped_plan;
mod signin_security;
mod strict;
mod time;
mod verify_coverage;
mod web;
mod words;
