//! Metrics, the recording side: the events that storage, partitions, the invoker, the
//! ingress and traces count, recorded where they happen through the `metrics` facade (each a
//! relaxed atomic add on a handle, histograms a lock-free push drained every few seconds).
//! A leaf: it knows metric names and labels, nothing of the code that records them. What is
//! state rather than an event (queue depths, RocksDB's memory, drain status) is read when
//! `/metrics` is scraped, by the node port (`crate::node::prometheus`), which renders both.
//!
//! Labels are bounded: services, handlers and deployments are what was registered (a request
//! for an unknown target counts with empty ones), statuses and outcomes are fixed sets, and
//! nothing is labelled with an invocation id. Every metric is documented in `docs/metrics.md`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use ::metrics::{
    Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::ids::DeploymentId;

pub const INGRESS_REQUESTS: &str = "perdure_ingress_requests_total";
pub const INGRESS_REQUEST_DURATION: &str = "perdure_ingress_request_duration_seconds";
pub const INGRESS_SHED: &str = "perdure_ingress_shed_total";
pub const INVOCATIONS_COMPLETED: &str = "perdure_invocations_completed_total";
pub const ATTEMPTS: &str = "perdure_attempts_total";
pub const ATTEMPT_DURATION: &str = "perdure_attempt_duration_seconds";
pub const ATTEMPTS_RUNNING: &str = "perdure_invoker_attempts_running";
pub const ATTEMPTS_WAITING: &str = "perdure_invoker_attempts_waiting";
pub const LOG_APPEND_DURATION: &str = "perdure_log_append_duration_seconds";
pub const LOG_COMMIT_ENTRIES: &str = "perdure_log_commit_batch_entries";
pub const LOG_FSYNC_DURATION: &str = "perdure_log_fsync_duration_seconds";
pub const TRACE_SPANS_EXPORTED: &str = "perdure_trace_spans_exported_total";
pub const TRACE_SPANS_DROPPED: &str = "perdure_trace_spans_dropped_total";

/// Buckets of the latency histograms, in seconds: 100 µs to 60 s.
const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets of the group-commit size, in log entries (at most 1024 a group).
const ENTRIES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// When the process installed its recorder (`process_start_time_seconds`).
static STARTED: OnceLock<SystemTime> = OnceLock::new();
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle). `None`
/// when another recorder was installed first: metrics are then not exported.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            STARTED.get_or_init(SystemTime::now);
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(LOG_COMMIT_ENTRIES.into()), ENTRIES))
                .map_err(|e| tracing::warn!("metrics disabled: {e}"))
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            if ::metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("metrics disabled: another metrics recorder is installed");
                return None;
            }
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    describe_counter!(
        INGRESS_REQUESTS,
        "Ingress requests answered, by target service and handler, kind (call, send) and HTTP status"
    );
    describe_histogram!(
        INGRESS_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an ingress request (a call waits for the invocation's result), by service, handler and kind"
    );
    describe_counter!(
        INGRESS_SHED,
        "Ingress requests refused with 503 and Retry-After, by reason (concurrency_limit, partition_queue_full)"
    );
    describe_counter!(INVOCATIONS_COMPLETED, "Invocations that finished, by outcome (success, failure)");
    describe_counter!(
        ATTEMPTS,
        "Attempts that ended, by deployment, protocol (http2, http1, lambda) and outcome (ok, retryable_failure, terminal_failure, held)"
    );
    describe_histogram!(ATTEMPT_DURATION, Unit::Seconds, "How long attempts ran, by deployment and protocol");
    describe_gauge!(ATTEMPTS_RUNNING, "Attempts running now");
    describe_gauge!(ATTEMPTS_WAITING, "Attempts waiting for one of invoker.concurrent-invocations-limit slots");
    describe_histogram!(
        LOG_APPEND_DURATION,
        Unit::Seconds,
        "Time from handing a partition's log entry to the group commit until it is durable"
    );
    describe_histogram!(LOG_COMMIT_ENTRIES, "Log entries written by one group commit (one write batch, one fsync)");
    describe_histogram!(LOG_FSYNC_DURATION, Unit::Seconds, "Time of one group commit's synced write");
    describe_counter!(TRACE_SPANS_EXPORTED, "Trace spans sent to the OTLP collector");
    describe_counter!(
        TRACE_SPANS_DROPPED,
        "Trace spans dropped: the exporter's queue was full, or the collector could not be reached or refused them"
    );
}

thread_local! {
    /// Handles this thread resolved, by metric name and label values: after the first use of
    /// a label set, recording is a lookup in a map of this thread (no lock) and an atomic add.
    static COUNTERS: RefCell<HashMap<String, Counter>> = RefCell::new(HashMap::new());
    static HISTOGRAMS: RefCell<HashMap<String, Histogram>> = RefCell::new(HashMap::new());
    static KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The cache key of a label set: the metric's name and the values, which are bounded.
fn with_key<T>(name: &str, labels: &[(&'static str, &str)], f: impl FnOnce(&str) -> T) -> T {
    KEY.with_borrow_mut(|key| {
        key.clear();
        key.push_str(name);
        for (_, v) in labels {
            key.push('\u{1f}');
            key.push_str(v);
        }
        f(key)
    })
}

/// Records through this thread's handle for `name` with `labels`, resolving it first if new.
fn cached<H: Clone>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<String, H>>>,
    name: &'static str,
    labels: &[(&'static str, &str)],
    resolve: impl FnOnce(Vec<::metrics::Label>) -> H,
    record: impl FnOnce(&H),
) {
    with_key(name, labels, |key| {
        cache.with_borrow_mut(|cache| match cache.get(key) {
            Some(h) => record(h),
            None => {
                let h = resolve(labels.iter().map(|(k, v)| ::metrics::Label::new(*k, (*v).to_owned())).collect());
                record(&h);
                cache.insert(key.to_owned(), h);
            }
        })
    })
}

fn cached_counter(name: &'static str, labels: &[(&'static str, &str)], by: u64) {
    cached(&COUNTERS, name, labels, |labels| counter!(name, labels), |c| c.increment(by));
}

fn cached_histogram(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    cached(&HISTOGRAMS, name, labels, |labels| histogram!(name, labels), |h| h.record(value));
}

/// An ingress request for a registered handler was answered.
pub fn ingress_request(service: &str, handler: &str, send: bool, status: u16, elapsed: Duration) {
    let kind = if send { "send" } else { "call" };
    cached_counter(
        INGRESS_REQUESTS,
        &[("service", service), ("handler", handler), ("kind", kind), ("status", status_label(status))],
        1,
    );
    cached_histogram(
        INGRESS_REQUEST_DURATION,
        &[("service", service), ("handler", handler), ("kind", kind)],
        elapsed.as_secs_f64(),
    );
}

/// An ingress request that named no registered handler (or was refused before routing).
pub fn ingress_unrouted(send: bool, status: u16) {
    let kind = if send { "send" } else { "call" };
    cached_counter(
        INGRESS_REQUESTS,
        &[("service", ""), ("handler", ""), ("kind", kind), ("status", status_label(status))],
        1,
    );
}

fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        202 => "202",
        400 => "400",
        404 => "404",
        409 => "409",
        413 => "413",
        415 => "415",
        500 => "500",
        503 => "503",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// Why the ingress shed a request.
#[derive(Clone, Copy, Debug)]
pub enum Shed {
    ConcurrencyLimit,
    PartitionQueueFull,
}

pub fn shed(reason: Shed) {
    let reason = match reason {
        Shed::ConcurrencyLimit => "concurrency_limit",
        Shed::PartitionQueueFull => "partition_queue_full",
    };
    cached_counter(INGRESS_SHED, &[("reason", reason)], 1);
}

pub fn invocation_completed(success: bool) {
    cached_counter(INVOCATIONS_COMPLETED, &[("outcome", if success { "success" } else { "failure" })], 1);
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug)]
pub enum AttemptOutcome {
    /// It ended as the deployment said (completed, suspended, or asked to be retried later).
    Ok,
    /// It failed and will be retried.
    RetryableFailure,
    /// It failed and ends the invocation.
    TerminalFailure,
    /// Its deployment is paused: nothing ran.
    Held,
}

impl AttemptOutcome {
    pub fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::RetryableFailure => "retryable_failure",
            AttemptOutcome::TerminalFailure => "terminal_failure",
            AttemptOutcome::Held => "held",
        }
    }
}

thread_local! {
    /// Deployment ids as label values, formatted once per thread.
    static DEPLOYMENT_LABELS: RefCell<HashMap<DeploymentId, String>> = RefCell::new(HashMap::new());
}

pub fn attempt(deployment: &DeploymentId, protocol: &'static str, outcome: AttemptOutcome, elapsed: Duration) {
    let outcome = outcome.label();
    DEPLOYMENT_LABELS.with_borrow_mut(|labels| {
        let deployment = labels.entry(*deployment).or_insert_with(|| deployment.to_string());
        cached_counter(ATTEMPTS, &[("deployment", deployment), ("protocol", protocol), ("outcome", outcome)], 1);
        cached_histogram(
            ATTEMPT_DURATION,
            &[("deployment", deployment), ("protocol", protocol)],
            elapsed.as_secs_f64(),
        );
    });
}

/// Spans handed to the collector.
pub fn trace_spans_exported(count: u64) {
    counter!(TRACE_SPANS_EXPORTED).increment(count);
}

/// Spans dropped: the exporter's queue was full, or the collector refused or missed them.
pub fn trace_spans_dropped(count: u64) {
    counter!(TRACE_SPANS_DROPPED).increment(count);
}

/// The invoker's slot gauges, resolved once.
pub struct InvokerGauges {
    pub running: Gauge,
    pub waiting: Gauge,
}

impl InvokerGauges {
    pub fn new() -> Self {
        Self { running: gauge!(ATTEMPTS_RUNNING), waiting: gauge!(ATTEMPTS_WAITING) }
    }
}

impl Default for InvokerGauges {
    fn default() -> Self {
        Self::new()
    }
}

pub fn log_append(elapsed: Duration) {
    cached_histogram(LOG_APPEND_DURATION, &[], elapsed.as_secs_f64());
}

pub fn log_group(entries: usize, write: Duration) {
    cached_histogram(LOG_COMMIT_ENTRIES, &[], entries as f64);
    cached_histogram(LOG_FSYNC_DURATION, &[], write.as_secs_f64());
}

/// When the recorder was installed: the process's start, as `process_start_time_seconds`
/// shows it.
pub fn started() -> Option<SystemTime> {
    STARTED.get().copied()
}
