//! OpenTelemetry traces, exported over OTLP when an endpoint is configured (`[tracing]
//! endpoint`, or `OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! An invocation's trace:
//!
//! ```text
//! ingress Greeter/greet          (SERVER; continues the request's W3C traceparent)
//! └─ invocation Greeter/greet    (from creation to completion, across restarts)
//!    ├─ attempt Greeter/greet    (CLIENT; deployment, Lambda version, outcome; its id is the
//!    │  │                         traceparent the deployment receives)
//!    │  ├─ run charge            (a ctx.run: until its result was proposed)
//!    │  ├─ sleep                 (until its wake-up time)
//!    │  └─ call Counter/add      (until its result came back in this attempt)
//!    │     └─ invocation Counter/add   (the callee, in the same trace)
//!    └─ attempt Greeter/greet    (a retry, or the attempt after a suspension)
//! ```
//!
//! Where an invocation sits in its trace ([`TraceContext`]) is decided where it is created
//! (the ingress, or the invoker seeing its caller's call) and stored with it, so attempts after
//! a restart continue the same trace. Spans are plain data handed to a bounded queue
//! ([`record`]); one task batches them to the collector. With no endpoint nothing is recorded
//! or stored: the cost is one branch.

pub mod export;

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

pub use crate::engine::records::TraceContext;

/// The process's exporter, once [`export::install`] ran.
static EXPORTER: OnceLock<export::Exporter> = OnceLock::new();

/// Whether traces are exported (an endpoint was configured).
pub fn enabled() -> bool {
    EXPORTER.get().is_some()
}

/// Hands a finished span to the exporter; dropped (and counted) when its queue is full.
pub fn record(span: Span) {
    if let Some(exporter) = EXPORTER.get() {
        exporter.offer(span);
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// A new span id (never 0, which W3C reserves for "none").
pub fn new_span_id() -> u64 {
    rand::random::<u64>().max(1)
}

/// A new trace id (never 0).
pub fn new_trace_id() -> u128 {
    rand::random::<u128>().max(1)
}

/// What an incoming `traceparent` header says: the trace, the caller's span, sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteParent {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
}

/// Parses a W3C `traceparent` (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`). Later
/// versions may append fields after the flags; an invalid header is ignored (a new trace).
pub fn parse_traceparent(value: &str) -> Option<RemoteParent> {
    let value = value.trim();
    let mut parts = value.splitn(4, '-');
    let (version, trace, span, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let flags = rest.get(..2)?;
    if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    if version == "00" && rest.len() != 2 {
        return None;
    }
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !(hex(version) && hex(trace) && hex(span) && hex(flags)) {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let span_id = u64::from_str_radix(span, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace_id != 0 && span_id != 0).then_some(RemoteParent { trace_id, span_id, sampled: flags & 1 == 1 })
}

/// The `traceparent` header naming `span_id` in `trace_id`.
pub fn traceparent(trace_id: u128, span_id: u64, sampled: bool) -> String {
    format!("00-{trace_id:032x}-{span_id:016x}-{:02x}", u8::from(sampled))
}

/// The context of a new invocation created by the ingress request whose span is
/// `ingress_span`, continuing `remote` when the request carried a `traceparent`.
pub fn new_invocation(remote: Option<RemoteParent>, ingress_span: u64) -> TraceContext {
    let (trace_id, sampled) = match remote {
        Some(r) => (r.trace_id, r.sampled),
        None => (new_trace_id(), EXPORTER.get().is_some_and(export::Exporter::sample)),
    };
    TraceContext { trace_id, span_id: new_span_id(), parent_span_id: ingress_span, sampled }
}

/// The kind of a span, as OTLP names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Internal,
    Server,
    Client,
    Producer,
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(Cow<'static, str>),
    Int(i64),
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}

/// A finished span.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: u128,
    pub span_id: u64,
    /// 0 for a root span.
    pub parent_span_id: u64,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Vec<(&'static str, Value)>,
    /// Set for a span that failed: its status is ERROR with this message.
    pub error: Option<String>,
}

impl Span {
    /// A span of `context`'s trace under `parent`, started at `start_ns`, ending now.
    pub fn new(trace_id: u128, span_id: u64, parent_span_id: u64, name: String, kind: SpanKind, start_ns: u64) -> Self {
        Span {
            trace_id,
            span_id,
            parent_span_id,
            name,
            kind,
            start_ns,
            end_ns: now_ns().max(start_ns),
            attributes: Vec::new(),
            error: None,
        }
    }

    pub fn attr(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.attributes.push((key, value.into()));
        self
    }
}

/// The span of a finished invocation: from its creation to its completion.
pub fn invocation_span(
    id: crate::ids::InvocationId,
    run: &crate::engine::action::TracedRun,
    result: &crate::engine::records::InvocationResult,
) -> Span {
    let start_ns = run.created_at.saturating_mul(1_000_000);
    let mut span = Span {
        trace_id: run.trace.trace_id,
        span_id: run.trace.span_id,
        parent_span_id: run.trace.parent_span_id,
        name: format!("invocation {}/{}", run.target.service, run.target.handler),
        kind: SpanKind::Internal,
        start_ns,
        end_ns: run.completed_at.saturating_mul(1_000_000).max(start_ns),
        attributes: Vec::with_capacity(5),
        error: None,
    }
    .attr("restate.invocation.id", id.to_string())
    .attr("restate.invocation.target", run.target.display())
    .attr("perdure.attempts", run.attempts);
    if let Some(deployment) = &run.deployment {
        span = span.attr("perdure.deployment.id", deployment.to_string());
    }
    match result {
        crate::engine::records::InvocationResult::Success(_) => span.attr("restate.invocation.result", "success"),
        crate::engine::records::InvocationResult::Failure { code, message } => {
            span.error = Some(format!("{code}: {message}"));
            span.attr("restate.invocation.result", "failure")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_what_w3c_rejects() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = parse_traceparent(header).unwrap();
        assert_eq!(parsed.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(parsed.span_id, 0x00f067aa0ba902b7);
        assert!(parsed.sampled);
        assert_eq!(traceparent(parsed.trace_id, parsed.span_id, true), header);
        assert!(!parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap().sampled);
        // A later version may carry more fields after the flags.
        assert!(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_invocation_continues_the_remote_trace_under_the_ingress_span() {
        let remote = RemoteParent { trace_id: 7, span_id: 9, sampled: false };
        let ctx = new_invocation(Some(remote), 11);
        assert_eq!((ctx.trace_id, ctx.parent_span_id, ctx.sampled), (7, 11, false));
        assert_ne!(ctx.span_id, 0);
        assert_ne!(new_invocation(None, 11).trace_id, 0);
    }
}
