//! Benchmarks for SP-E live in `benches/benches/`.
