//! `tidy`: no code, only a test (`tests/tidy.rs`) that keeps the workspace honest, as
//! rust-analyzer's tidy test does: every crate stays within the boundary its `lib.rs`
//! states (from `cargo metadata`, so a new transitive dependency is caught too), no crate
//! declares a dependency it does not use or declares one twice, and what
//! `docs/ARCHITECTURE.md` states that a machine can check (the protocol version, the files
//! it names) is true.
//!
//! **Boundary:** depends on nothing of ours but what its test reads.
