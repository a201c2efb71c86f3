//! Prometheus text for `/metrics`: what [`crate::metrics`] recorded, then what is state
//! rather than an event, read when scraped (partitions, RocksDB's memory, deployments by drain
//! status, pinned invocations, the process), so a removed deployment's series goes with it.
//!
//! Labels are bounded: services, handlers and deployments are what was registered, statuses
//! are fixed sets, and nothing is labelled with an invocation id. Every metric is documented
//! in `docs/metrics.md`.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::ids::DeploymentId;
use crate::schema::DrainStatus;
use crate::storage::StorageStats;

/// What `/metrics` reads when it is scraped.
pub struct Snapshot {
    /// Per partition: its id, applied LSN and ingress queue depth (`None`: stopped).
    pub partitions: Vec<(u32, u64, Option<usize>)>,
    pub storage: StorageStats,
    /// Deployments per drain status.
    pub drain_statuses: Vec<(DrainStatus, u64)>,
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
        text.sample(
            "perdure_partition_leader",
            &[("partition", &id.to_string())],
            if depth.is_some() { 1.0 } else { 0.0 },
        );
    }

    let s = &snapshot.storage;
    for (name, help, value) in [
        ("perdure_rocksdb_memtable_bytes", "Bytes in RocksDB's memtables", s.memtable_bytes),
        ("perdure_rocksdb_block_cache_bytes", "Bytes in RocksDB's block cache", s.block_cache_bytes),
        (
            "perdure_rocksdb_table_readers_bytes",
            "RocksDB's estimate of its table readers' memory (indexes and filters outside the cache)",
            s.table_readers_bytes,
        ),
        ("perdure_rocksdb_sst_bytes", "Bytes of RocksDB's live table files on disk", s.sst_bytes),
        (
            "perdure_rocksdb_pending_compaction_bytes",
            "RocksDB's estimate of the bytes compaction still has to rewrite",
            s.pending_compaction_bytes,
        ),
    ] {
        text.family(name, "gauge", help);
        text.sample(name, &[], value as f64);
    }

    text.family(
        "perdure_deployments",
        "gauge",
        "Registered deployments by drain status (active, draining, drained, inactive)",
    );
    for (status, count) in &snapshot.drain_statuses {
        text.sample("perdure_deployments", &[("drain_status", status.as_str())], *count as f64);
    }
    text.family(
        "perdure_deployment_pinned_invocations",
        "gauge",
        "Not-completed invocations pinned to a deployment, by status (running, suspended, backing_off, paused, scheduled, inboxed)",
    );
    for (deployment, counts) in &snapshot.pinned {
        let deployment = deployment.to_string();
        for (status, count) in counts {
            text.sample(
                "perdure_deployment_pinned_invocations",
                &[("deployment", &deployment), ("status", status)],
                *count as f64,
            );
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
    if let Some(started) = crate::metrics::started().and_then(|s| s.duration_since(UNIX_EPOCH).ok()) {
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
            drain_statuses: vec![(DrainStatus::Active, 1), (DrainStatus::Draining, 1)],
            pinned: vec![(deployment, vec![("running", 2)])],
        };
        let text = render(None, &snapshot);
        assert!(text.contains("# TYPE perdure_partition_ingress_queue_depth gauge\n"), "{text}");
        assert!(text.contains("perdure_partition_ingress_queue_depth{partition=\"0\"} 3\n"), "{text}");
        assert!(!text.contains("perdure_partition_ingress_queue_depth{partition=\"1\"}"), "{text}");
        assert!(text.contains("perdure_partition_leader{partition=\"1\"} 0\n"), "{text}");
        assert!(text.contains("perdure_rocksdb_memtable_bytes 10\n"), "{text}");
        assert!(text.contains("perdure_deployments{drain_status=\"draining\"} 1\n"), "{text}");
        let pinned =
            format!("perdure_deployment_pinned_invocations{{deployment=\"{deployment}\",status=\"running\"}} 2\n");
        assert!(text.contains(&pinned), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut text = Text(String::new());
        text.sample("m", &[("a", "x\"y\\z\nw")], 1.5);
        assert_eq!(text.0, "m{a=\"x\\\"y\\\\z\\nw\"} 1.5\n");
    }
}
