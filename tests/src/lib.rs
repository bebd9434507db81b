//! Shared test support for SP-E integration tests.
