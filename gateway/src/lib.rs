//! perdure: a durable-execution gateway for serverless code, wire-compatible with Restate 1.7.
//!
//! # Layout
//!
//! - [`config`]: layered configuration (defaults < `perdure.toml` < `PERDURE_*` < flags).
//! - [`server`]: `perdure serve`, wiring everything below and shutting it down in order.
//! - [`protocol`]: the Restate service protocol (frames, messages, discovery manifest); no I/O.
//! - [`schema`]: deployments, services, revisions; registration rules.
//! - [`storage`]: the one RocksDB a [`storage::Database`] owns: a column family set per
//!   partition, record encoding, the per-partition log and its group commit, the storage
//!   format and upgrades from older ones.
//! - [`engine`]: the deterministic state machine (invocations, journals, state, inboxes,
//!   timers, outbox; side effects leave it as actions) and, in `engine::partition`, the task
//!   that drives it for each partition.
//! - [`invoker`]: attempts against deployments over HTTP/2 (bidi) or HTTP/1.1
//!   (request/response), discovery.
//! - [`ingress`]: the Restate-compatible HTTP ingress.
//! - [`admin`]: the admin REST API.
//! - [`query`]: SQL introspection over Restate's system tables: the tables, their streaming
//!   scans, and `POST /query`'s encodings.
//! - [`pg`]: the same SQL over the PostgreSQL wire protocol (psql, drivers) on port 9071.
//! - [`node`]: the node port: Prometheus `/metrics` (and the metrics recorded everywhere),
//!   gRPC health, reflection and node status.
//! - [`traces`]: OpenTelemetry traces of invocations, exported over OTLP.
//! - [`cli`]: `perdure dp|services|invocations`, a client of the admin API.
//! - [`ids`], [`durations`]: identifiers and durations in the forms users see.
//!
//! A request's path: ingress → partition (append, apply, commit) → invoker → deployment →
//! effects → partition → reply to the waiting client.

pub mod admin;
pub mod cli;
pub mod config;
pub mod durations;
pub mod engine;
pub mod ids;
pub mod ingress;
pub mod invoker;
pub mod node;
pub mod pg;
pub mod protocol;
pub mod query;
pub mod schema;
pub mod server;
pub mod storage;
pub mod traces;

/// How many cases a property test runs: `default`, or `PERDURE_FUZZ_CASES` when set (the
/// test script sets it low while it repeats the unit suite, and high for a long fuzz run).
#[cfg(test)]
pub(crate) fn fuzz_cases(default: u32) -> u32 {
    std::env::var("PERDURE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The message a panic carried.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}

/// The Restate version whose APIs perdure serves; `/version` reports it so the `restate` CLI
/// picks its 1.7 code paths.
pub const RESTATE_COMPATIBLE_VERSION: &str = "1.7.12";
