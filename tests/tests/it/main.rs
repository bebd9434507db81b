//! All SP-E integration tests, in one binary.

mod open_meteo;
mod server;
