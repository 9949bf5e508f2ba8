//! The integration tests: one binary, so the real-component harness in [`common`] compiles
//! once. Each module is one tier or subject of the README's test table, named as its file was
//! when each was a binary of its own, so a test reads `attestations::…`, `registry::…`:
//! `cargo test --test it registry::` runs one module, `cargo test --test it e2e::` the end to
//! end tier.
//!
//! Tests run in parallel threads of this one process; the harness keeps no global state (see
//! [`common`]). The few tests that measure the machine (time and memory of a server process:
//! the floods, the end-to-end control plane) take [`common::machine::alone`], so that they do not
//! measure the other tests.

mod common;

mod attestations;
mod cli;
mod conformance;
mod e2e;
mod floods;
mod harness;
mod hostile;
mod keyless;
mod load;
mod registry;
mod registry_tls;
mod router;
mod server;
