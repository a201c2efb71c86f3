//! End-to-end tests: the real `perdure` binary on loopback with real SDK endpoints (the
//! TypeScript SDK 1.17.2 on Node 22, the Rust `restate-sdk` in-process). Every test starts
//! its own server on free ports and its own data directory, so they run in parallel.

mod admin;
mod broken;
mod cli;
mod console;
mod crash;
mod durability;
mod fuzz;
mod harness;
mod ingress;
mod lambda;
mod lifecycle;
mod operations;
mod pg;
mod pipelines;
mod poison;
mod python_sdk;
mod query;
mod rust_sdk;
mod semantics;
mod signing;
mod tls;
mod traces;
mod typescript;
mod upgrade;
mod versioning;
