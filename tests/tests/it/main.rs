//! All SP-E integration tests, in one binary.

// Test helpers outside `#[test]` functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod cache;
mod failover;
mod journal;
mod open_meteo;
mod server;
