//! A command that cannot be applied never crash-loops the server. Here the cause is a record
//! damaged on disk (the test writes it, with the server stopped): a logged command that
//! reads it stops only its own partition, with the partition, LSN and command in the log,
//! at every restart, while the other partitions keep serving; a new command that reads it is
//! refused with a 500 naming why, and is never logged.

use bytes::Bytes;
use perdure::engine::command::{Command, ControlRequest, LogBatch};
use perdure::engine::keyspace::partition_of;
use perdure::engine::records::PartitionMeta;
use perdure::ids::{InvocationId, partition_key_of};
use perdure::storage::codec;
use serde_json::json;

use crate::harness::*;
use crate::rust_sdk::RustServices;

const PARTITIONS: u32 = 3;

/// An object key whose invocations live on `partition`.
fn key_on(partition: u32) -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .find(|k| partition_of(partition_key_of(k.as_bytes()), PARTITIONS) == partition)
        .unwrap()
}

/// An invocation id on `partition`.
fn id_on(partition: u32) -> InvocationId {
    InvocationId::new(partition_key_of(key_on(partition).as_bytes()), 42)
}

/// Damages the stored record of `id`, and (with `log`) appends a logged command that reads it.
fn damage(data: &std::path::Path, id: InvocationId, log: Option<Command>) {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), data).unwrap();
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), data, &names).unwrap();
    let partition = partition_of(id.partition_key, PARTITIONS);
    let state = db.cf_handle(&format!("p{partition}-meta")).unwrap();
    let records = db.cf_handle(&format!("p{partition}-invocation")).unwrap();
    let mut key = vec![1u8];
    key.extend_from_slice(&id.to_bytes());
    db.put_cf(&records, key, [2u8, 0, 0xc1]).unwrap();
    if let Some(command) = log {
        let meta: PartitionMeta = codec::decode(&db.get_cf(&state, [0u8]).unwrap().unwrap(), "meta").unwrap();
        let log_cf = db.cf_handle(&format!("p{partition}-log")).unwrap();
        let last = db
            .iterator_cf(&log_cf, rocksdb::IteratorMode::End)
            .next()
            .map(|e| u64::from_be_bytes(e.unwrap().0.as_ref().try_into().unwrap()))
            .unwrap_or(0);
        let lsn = last.max(meta.applied_lsn) + 1;
        let mut entry = vec![0u8; 8];
        entry.extend(codec::encode(&LogBatch { now: 1, commands: vec![command] }));
        db.put_cf(&log_cf, lsn.to_be_bytes(), Bytes::from(entry)).unwrap();
    }
    db.flush_wal(true).unwrap();
}

#[test]
fn a_command_that_cannot_be_applied_stops_its_partition_only_and_never_loops() {
    let (mut perdure, _svc) = Perdure::start_capturing(&[]).serving(RustServices::start(), json!({}));
    let add =
        |p: &Perdure, partition: u32| post_json(&format!("{}/RustCounter/{}/add", p.ingress, key_on(partition)), "1");
    for partition in 0..PARTITIONS {
        assert_eq!(add(&perdure, partition).body, "1");
    }
    assert!(perdure.stop().success());

    let (logged, live) = (id_on(0), id_on(1));
    damage(perdure.data_dir(), logged, Some(Command::Control { id: logged, request: ControlRequest::Cancel }));
    damage(perdure.data_dir(), live, None);

    let mut counts = [1u32; PARTITIONS as usize];
    let mut add_counted = |p: &Perdure, partition: u32| {
        counts[partition as usize] += 1;
        (add(p, partition).body, counts[partition as usize].to_string())
    };
    for restart in 0..2 {
        perdure.restart();
        eventually(std::time::Duration::from_secs(10), "the partition to report", || {
            perdure.log().matches("partition 0 stopped").nth(restart).map(|_| ())
        });
        let log = perdure.log();
        assert!(log.contains("Cancel") && log.contains(&format!("{logged:?}")), "the command is named:\n{log}");
        assert!(log.contains("log entry"), "the LSN is named:\n{log}");
        // The other partitions serve; the stopped one answers 503.
        let (got, want) = add_counted(&perdure, 1);
        assert_eq!(got, want);
        let (got, want) = add_counted(&perdure, 2);
        assert_eq!(got, want);
        assert_eq!(add(&perdure, 0).status, 503);
        // The admin API's cluster health says which partition stopped.
        let health = get(&format!("{}/cluster-health", perdure.admin));
        assert_eq!(health.status, 503, "{}", health.body);
        assert!(health.body.contains("partition 0 has stopped"), "{}", health.body);
        // A new command reading a damaged record is refused, not logged, not fatal.
        let refused = request("PATCH", &format!("{}/invocations/{live}/cancel", perdure.admin));
        assert_eq!(refused.status, 500, "{}", refused.body);
        assert!(refused.body.contains("could not be applied"), "{}", refused.body);
        let (got, want) = add_counted(&perdure, 1);
        assert_eq!(got, want);
        assert!(perdure.is_running());
        assert!(perdure.stop().success(), "shuts down cleanly with a stopped partition");
    }
}
