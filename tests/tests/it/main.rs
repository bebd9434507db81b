//! All SP-E integration tests, in one binary.

mod cache;
mod failover;
mod journal;
mod open_meteo;
mod server;
