//! All SP-E integration tests, in one binary.
