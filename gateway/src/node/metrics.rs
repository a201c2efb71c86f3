//! Prometheus metrics. Events are recorded where they happen, through the `metrics` facade
//! (each a relaxed atomic add on a handle, histograms a lock-free push drained every few
//! seconds); what is state rather than an event (queue depths, RocksDB's memory, drain
//! status) is read when `/metrics` is scraped and written after the recorded ones, so a
//! removed deployment's series goes with it.
//!
//! Labels are bounded: services, handlers and deployments are what was registered (a request
//! for an unknown target counts with empty ones), statuses and outcomes are fixed sets, and
//! nothing is labelled with an invocation id. Every metric is documented in `docs/metrics.md`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::ids::DeploymentId;
use crate::storage::StorageStats;

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
const SECONDS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
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
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("metrics disabled: another metrics recorder is installed");
                return None;
            }
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    describe_counter!(INGRESS_REQUESTS, "Ingress requests answered, by target service and handler, kind (call, send) and HTTP status");
    describe_histogram!(
        INGRESS_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an ingress request (a call waits for the invocation's result), by service, handler and kind"
    );
    describe_counter!(INGRESS_SHED, "Ingress requests refused with 503 and Retry-After, by reason (concurrency_limit, partition_queue_full)");
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
    resolve: impl FnOnce(Vec<metrics::Label>) -> H,
    record: impl FnOnce(&H),
) {
    with_key(name, labels, |key| {
        cache.with_borrow_mut(|cache| match cache.get(key) {
            Some(h) => record(h),
            None => {
                let h = resolve(labels.iter().map(|(k, v)| metrics::Label::new(*k, (*v).to_owned())).collect());
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
    cached_histogram(INGRESS_REQUEST_DURATION, &[("service", service), ("handler", handler), ("kind", kind)], elapsed.as_secs_f64());
}

/// An ingress request that named no registered handler (or was refused before routing).
pub fn ingress_unrouted(send: bool, status: u16) {
    let kind = if send { "send" } else { "call" };
    cached_counter(INGRESS_REQUESTS, &[("service", ""), ("handler", ""), ("kind", kind), ("status", status_label(status))], 1);
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
        cached_histogram(ATTEMPT_DURATION, &[("deployment", deployment), ("protocol", protocol)], elapsed.as_secs_f64());
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

/// What `/metrics` reads when it is scraped.
pub struct Snapshot {
    /// Per partition: its id, applied LSN and ingress queue depth (`None`: stopped).
    pub partitions: Vec<(u32, u64, Option<usize>)>,
    pub storage: StorageStats,
    /// Deployments per drain status.
    pub drain_statuses: Vec<(&'static str, u64)>,
    /// Per deployment, its not-completed pinned invocations by status.
    pub pinned: Vec<(DeploymentId, Vec<(&'static str, u64)>)>,
}

/// The text `/metrics` answers: what was recorded, then the snapshot and the process.
pub fn render(handle: Option<&PrometheusHandle>, snapshot: &Snapshot) -> String {
    let mut out = handle.map(PrometheusHandle::render).unwrap_or_default();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let mut text = Text(out);
    text.family("perdure_build_info", "gauge", "perdure's version and the Restate version whose APIs it serves");
    text.sample(
        "perdure_build_info",
        &[("version", env!("CARGO_PKG_VERSION")), ("restate_compatible_version", crate::RESTATE_COMPATIBLE_VERSION)],
        1.0,
    );

    text.family("perdure_partition_ingress_queue_depth", "gauge", "Ingress requests waiting in a partition's queue");
    for (id, _, depth) in &snapshot.partitions {
        if let Some(depth) = depth {
            text.sample("perdure_partition_ingress_queue_depth", &[("partition", &id.to_string())], *depth as f64);
        }
    }
    text.family("perdure_partition_applied_lsn", "gauge", "The last log entry a partition applied");
    for (id, lsn, _) in &snapshot.partitions {
        text.sample("perdure_partition_applied_lsn", &[("partition", &id.to_string())], *lsn as f64);
    }
    text.family("perdure_partition_leader", "gauge", "1 while a partition's task runs and leads it, 0 once it stopped");
    for (id, _, depth) in &snapshot.partitions {
        text.sample("perdure_partition_leader", &[("partition", &id.to_string())], if depth.is_some() { 1.0 } else { 0.0 });
    }

    let s = &snapshot.storage;
    for (name, help, value) in [
        ("perdure_rocksdb_memtable_bytes", "Bytes in RocksDB's memtables", s.memtable_bytes),
        ("perdure_rocksdb_block_cache_bytes", "Bytes in RocksDB's block cache", s.block_cache_bytes),
        ("perdure_rocksdb_table_readers_bytes", "RocksDB's estimate of its table readers' memory (indexes and filters outside the cache)", s.table_readers_bytes),
        ("perdure_rocksdb_sst_bytes", "Bytes of RocksDB's live table files on disk", s.sst_bytes),
        ("perdure_rocksdb_pending_compaction_bytes", "RocksDB's estimate of the bytes compaction still has to rewrite", s.pending_compaction_bytes),
    ] {
        text.family(name, "gauge", help);
        text.sample(name, &[], value as f64);
    }

    text.family("perdure_deployments", "gauge", "Registered deployments by drain status (active, draining, drained, inactive)");
    for (status, count) in &snapshot.drain_statuses {
        text.sample("perdure_deployments", &[("drain_status", status)], *count as f64);
    }
    text.family(
        "perdure_deployment_pinned_invocations",
        "gauge",
        "Not-completed invocations pinned to a deployment, by status (running, suspended, backing_off, paused, scheduled, inboxed)",
    );
    for (deployment, counts) in &snapshot.pinned {
        let deployment = deployment.to_string();
        for (status, count) in counts {
            text.sample("perdure_deployment_pinned_invocations", &[("deployment", &deployment), ("status", status)], *count as f64);
        }
    }
    process(&mut text);
    text.0
}

/// The standard `process_*` metrics, from `/proc/self` (Linux; absent elsewhere).
fn process(text: &mut Text) {
    // SAFETY: sysconf reads a constant of the system.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some((_, rest)) = stat.rsplit_once(')')
        && ticks > 0
    {
        // Fields after the command name, from field 3 (state): utime and stime are 14 and 15.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let cpu = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        text.family("process_cpu_seconds_total", "counter", "User and system CPU time the process used");
        text.sample("process_cpu_seconds_total", &[], (cpu(11) + cpu(12)) / ticks as f64);
    }
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm")
        && let Some(pages) = statm.split_whitespace().nth(1).and_then(|p| p.parse::<f64>().ok())
    {
        text.family("process_resident_memory_bytes", "gauge", "Resident memory of the process");
        text.sample("process_resident_memory_bytes", &[], pages * page as f64);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        text.family("process_open_fds", "gauge", "Open file descriptors");
        text.sample("process_open_fds", &[], fds.count() as f64);
    }
    if let Some(started) = STARTED.get().and_then(|s| s.duration_since(UNIX_EPOCH).ok()) {
        text.family("process_start_time_seconds", "gauge", "When the process started, in seconds since the Unix epoch");
        text.sample("process_start_time_seconds", &[], started.as_secs_f64());
    }
}

/// Prometheus text exposition (format 0.0.4).
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.0.push_str("\\\\"),
                        '"' => self.0.push_str("\\\""),
                        '\n' => self.0.push_str("\\n"),
                        c => self.0.push(c),
                    }
                }
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_snapshot_in_prometheus_text_format() {
        let deployment = DeploymentId::generate();
        let snapshot = Snapshot {
            partitions: vec![(0, 12, Some(3)), (1, 7, None)],
            storage: StorageStats { memtable_bytes: 10, ..Default::default() },
            drain_statuses: vec![("active", 1), ("draining", 1)],
            pinned: vec![(deployment, vec![("running", 2)])],
        };
        let text = render(None, &snapshot);
        assert!(text.contains("# TYPE perdure_partition_ingress_queue_depth gauge\n"), "{text}");
        assert!(text.contains("perdure_partition_ingress_queue_depth{partition=\"0\"} 3\n"), "{text}");
        assert!(!text.contains("perdure_partition_ingress_queue_depth{partition=\"1\"}"), "{text}");
        assert!(text.contains("perdure_partition_leader{partition=\"1\"} 0\n"), "{text}");
        assert!(text.contains("perdure_rocksdb_memtable_bytes 10\n"), "{text}");
        assert!(text.contains("perdure_deployments{drain_status=\"draining\"} 1\n"), "{text}");
        let pinned = format!("perdure_deployment_pinned_invocations{{deployment=\"{deployment}\",status=\"running\"}} 2\n");
        assert!(text.contains(&pinned), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut text = Text(String::new());
        text.sample("m", &[("a", "x\"y\\z\nw")], 1.5);
        assert_eq!(text.0, "m{a=\"x\\\"y\\\\z\\nw\"} 1.5\n");
    }
}
