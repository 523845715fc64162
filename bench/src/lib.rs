//! Benchmarks of oncepay live in `benches/`; this crate only hosts them.
