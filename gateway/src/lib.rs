//! perdure: a durable-execution gateway for serverless code, wire-compatible with Restate 1.7.
//!
//! # Layout
//!
//! `docs/architecture.md` walks through the same map with the path of one invocation, the
//! storage layout and where cluster mode plugs in.
//!
//! - [`config`]: layered configuration (defaults < `perdure.toml` < `PERDURE_*` < flags).
//! - [`server`]: `perdure serve`, wiring everything below and shutting it down in order.
//! - [`protocol`]: the Restate service protocol (frames, messages, discovery manifest); no I/O.
//! - [`engine`]: the deterministic state machine of a partition (invocations, journals,
//!   state, inboxes, timers, outbox); no I/O, side effects leave it as actions. A leaf.
//! - [`partition`]: the partition service: a task per partition that owns its log and
//!   state, applies commands through the engine, commits, then performs the actions; and the
//!   [`partition::Handle`] through which everyone else reaches it.
//! - [`storage`]: the one RocksDB a [`storage::Database`] owns: a column family set per
//!   partition, record encoding, the per-partition log and its group commit, the storage
//!   format and upgrades from older ones.
//! - [`schema`]: deployments, services, revisions; registration, routing and drain rules.
//! - [`invoker`]: attempts against deployments: pure parts (choosing, the request, translating
//!   answers into effects), a driver, and transports behind one trait (HTTP/2 bidi, HTTP/1.1
//!   request/response, Lambda); discovery.
//! - [`ingress`]: the Restate-compatible HTTP ingress.
//! - [`admin`]: the admin REST API and the web console.
//! - [`query`]: SQL introspection over Restate's system tables: the tables, their streaming
//!   scans, and `POST /query`'s encodings.
//! - [`pg`]: the same SQL over the PostgreSQL wire protocol (psql, drivers) on port 9071.
//! - [`node`]: the node port: Prometheus `/metrics`, gRPC health, reflection and node status.
//! - [`metrics`]: the events recorded everywhere (counters and histograms); a leaf.
//! - [`traces`]: OpenTelemetry traces of invocations, exported over OTLP.
//! - [`auth`]: the bearer token check shared by the admin, node and PostgreSQL ports.
//! - [`cli`]: `perdure dp|services|invocations`, a client of the admin API.
//! - [`ids`], [`durations`]: identifiers and durations in the forms users see.
//!
//! A request's path: ingress → partition handle → partition (append, apply, commit) →
//! invoker → deployment → effects → partition → reply to the waiting client.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod durations;
pub mod engine;
pub mod ids;
pub mod ingress;
pub mod invoker;
pub mod metrics;
pub mod node;
pub mod partition;
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

/// An error and its causes, one after another (as hyper and reqwest nest them).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The Restate version whose APIs perdure serves; `/version` reports it so the `restate` CLI
/// picks its 1.7 code paths.
pub const RESTATE_COMPATIBLE_VERSION: &str = "1.7.12";
