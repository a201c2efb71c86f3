//! Upgrades of older storage formats, run by [`super::Database::open`] before anything else
//! reads the data directory. Each step rewrites what its format stored into the next one's
//! layout, idempotently: a crash in the middle leaves the directory at the old format (the
//! format file is written only after the step is flushed), and the step runs again from the
//! start on the next open. What is left of the old layout goes once the new format is
//! recorded ([`drop_leftovers`]).
//!
//! Format 1 → 2: a column family per table (keys led by partition id or partition key),
//! postcard records → a column family per table per partition, tagged keys, records in
//! `pack` (which counts each struct's fields, so they can grow).
//!
//! Format 2 → 3: records only gained fields (they read as they are); each partition's drain
//! counters and pinned index are counted from its invocation records.
//!
//! Format 3 → 4: records only gained fields (trace contexts); nothing is rewritten. The
//! format changes all the same, so that a format-3 build refuses what it would misread.

mod v1;

use rocksdb::{IteratorMode, WriteBatch};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::{self, tag};
use super::{CF_META, Storage, StorageError, codec};
use crate::engine::command::LogBatch;
use crate::engine::records;

/// The tables of format 1, each its own column family (`meta` stays).
const V1_TABLES: [&str; 9] = ["log", "invocation", "journal", "state", "inbox", "lock", "timer", "outbox", "promise"];
/// Format 1 kept each partition's counters in `meta` under this prefix.
const V1_PARTITION_META: &[u8] = b"partition/";
/// Puts per write batch while upgrading.
const CHUNK: usize = 1024;

/// Rewrites a data directory of one format into the next.
type Step = fn(&Storage) -> Result<(), StorageError>;

/// Upgrades from format `from` to the current one, one format at a time.
pub fn run(storage: &Storage, from: u32) -> Result<(), StorageError> {
    let steps: [(u32, Step); 3] = [(1, from_v1), (2, from_v2), (3, from_v3)];
    for (format, step) in steps {
        if from <= format {
            tracing::info!("upgrading the data directory from storage format {format} to {}", format + 1);
            step(storage).map_err(|e| StorageError::Upgrade { from: format, reason: e.to_string() })?;
            storage.flush()?;
        }
    }
    Ok(())
}

/// Removes what an upgrade left of older layouts, once the current format is recorded.
pub fn drop_leftovers(storage: &Storage) -> Result<(), StorageError> {
    let db = storage.db();
    for name in V1_TABLES {
        if db.cf_handle(name).is_some() {
            db.drop_cf(name)?;
        }
    }
    let meta = db.cf_handle(CF_META).expect("meta exists while open");
    let stale: Vec<Box<[u8]>> = db
        .prefix_iterator_cf(&meta, V1_PARTITION_META)
        .map(|item| item.map(|(k, _)| k))
        .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(V1_PARTITION_META)))
        .collect::<Result<_, _>>()?;
    for key in stale {
        db.delete_cf(&meta, key)?;
    }
    Ok(())
}

/// Decodes a format 1 record as `V1` and re-encodes it as today's `Current`, checking that
/// the result reads back.
fn transcode<V1: DeserializeOwned + Serialize, Current: DeserializeOwned>(
    raw: &[u8],
    table: &'static str,
) -> Result<Vec<u8>, StorageError> {
    let body = match raw.split_first() {
        Some((&codec::VERSION_POSTCARD, body)) => body,
        _ => return Err(StorageError::Corrupt { table, reason: "not a storage format 1 record".into() }),
    };
    let old: V1 = postcard::from_bytes(body).map_err(|e| StorageError::Corrupt { table, reason: e.to_string() })?;
    let out = codec::encode(&old);
    codec::decode::<Current>(&out, table)?;
    Ok(out)
}

/// Writes puts in chunks (with the WAL: an upgrade is not replayed from any log).
struct Writer<'a> {
    storage: &'a Storage,
    batch: WriteBatch,
}

impl<'a> Writer<'a> {
    fn new(storage: &'a Storage) -> Self {
        Self { storage, batch: WriteBatch::default() }
    }

    fn put_partition(&mut self, partition: u32, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        if partition >= self.storage.partitions() {
            return Err(StorageError::Corrupt { table: "log", reason: format!("partition {partition} out of range") });
        }
        self.batch.put_cf(&self.storage.table_cf(partition, key[0]), key, value);
        self.flush_if_full()
    }

    fn put_log(&mut self, partition: u32, lsn: u64, value: &[u8]) -> Result<(), StorageError> {
        if partition >= self.storage.partitions() {
            return Err(StorageError::Corrupt { table: "log", reason: format!("partition {partition} out of range") });
        }
        self.batch.put_cf(&self.storage.log_cf(super::log::LogId::Partition(partition)), keys::log_entry(lsn), value);
        self.flush_if_full()
    }

    fn flush_if_full(&mut self) -> Result<(), StorageError> {
        if self.batch.len() >= CHUNK { self.write() } else { Ok(()) }
    }

    fn write(&mut self) -> Result<(), StorageError> {
        let batch = std::mem::take(&mut self.batch);
        Ok(self.storage.db().write(batch)?)
    }
}

fn be_u32(bytes: &[u8], table: &'static str) -> Result<u32, StorageError> {
    Ok(u32::from_be_bytes(
        bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(StorageError::Corrupt { table, reason: "short key".into() })?,
    ))
}

fn be_u64(bytes: &[u8], table: &'static str) -> Result<u64, StorageError> {
    Ok(u64::from_be_bytes(
        bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(StorageError::Corrupt { table, reason: "short key".into() })?,
    ))
}

fn from_v1(storage: &Storage) -> Result<(), StorageError> {
    let db = storage.db();
    let mut out = Writer::new(storage);
    for table in V1_TABLES {
        let Some(cf) = db.cf_handle(table) else { continue };
        for item in db.iterator_cf(&cf, IteratorMode::Start) {
            let (key, value) = item?;
            match table {
                // partition ‖ lsn → epoch ‖ batch
                "log" => {
                    let (partition, lsn) = (be_u32(&key, table)?, be_u64(key.get(4..).unwrap_or_default(), table)?);
                    if value.len() < 8 {
                        return Err(StorageError::Corrupt { table, reason: format!("entry {lsn} too short") });
                    }
                    let mut entry = value[..8].to_vec();
                    entry.extend(transcode::<v1::LogBatch, LogBatch>(&value[8..], table)?);
                    out.put_log(partition, lsn, &entry)?;
                }
                // partition key ‖ uuid → envelope ‖ running ‖ status
                "invocation" => {
                    let partition = storage.partition_of(be_u64(&key, table)?);
                    if value.len() < 2 {
                        return Err(StorageError::Corrupt { table, reason: "record too short".into() });
                    }
                    let mut envelope = vec![value[0]];
                    envelope.extend_from_slice(&value[2..]);
                    let mut record = transcode::<v1::InvocationStatus, records::InvocationStatus>(&envelope, table)?;
                    record.insert(1, value[1]);
                    out.put_partition(partition, &[&[tag::INVOCATION][..], &key].concat(), &record)?;
                }
                "journal" => {
                    let partition = storage.partition_of(be_u64(&key, table)?);
                    let record = transcode::<v1::JournalEntry, records::JournalEntry>(&value, table)?;
                    out.put_partition(partition, &[&[tag::JOURNAL][..], &key].concat(), &record)?;
                }
                // Raw values (state bytes, inbox invocation ids) and empty ones (timers).
                "state" | "inbox" => {
                    let partition = storage.partition_of(be_u64(&key, table)?);
                    let t = if table == "state" { tag::STATE } else { tag::INBOX };
                    out.put_partition(partition, &[&[t][..], &key].concat(), &value)?;
                }
                "lock" => {
                    let partition = storage.partition_of(be_u64(&key, table)?);
                    let record = transcode::<v1::Lock, records::Lock>(&value, table)?;
                    out.put_partition(partition, &[&[tag::LOCK][..], &key].concat(), &record)?;
                }
                "promise" => {
                    let partition = storage.partition_of(be_u64(&key, table)?);
                    let record = transcode::<v1::Promise, records::Promise>(&value, table)?;
                    out.put_partition(partition, &[&[tag::PROMISE][..], &key].concat(), &record)?;
                }
                // partition ‖ fire_at ‖ invocation ‖ kind
                "timer" => {
                    let partition = be_u32(&key, table)?;
                    out.put_partition(partition, &[&[tag::TIMER][..], &key[4..]].concat(), &[])?;
                }
                // partition ‖ seq
                "outbox" => {
                    let partition = be_u32(&key, table)?;
                    let record = transcode::<v1::OutboxMessage, records::OutboxMessage>(&value, table)?;
                    out.put_partition(partition, &[&[tag::OUTBOX][..], &key[4..]].concat(), &record)?;
                }
                _ => unreachable!("V1_TABLES lists the tables matched here"),
            }
        }
    }
    let meta = db.cf_handle(CF_META).expect("meta exists while open");
    for item in db.prefix_iterator_cf(&meta, V1_PARTITION_META) {
        let (key, value) = item?;
        let Some(number) = key.strip_prefix(V1_PARTITION_META) else { break };
        let partition: u32 = std::str::from_utf8(number)
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StorageError::Corrupt { table: "meta", reason: "bad partition meta key".into() })?;
        let record = transcode::<v1::PartitionMeta, records::PartitionMeta>(&value, "partition meta")?;
        out.put_partition(partition, &keys::meta(), &record)?;
    }
    out.write()
}

/// Counts every partition's not-completed invocations into its drain counters and pinned
/// index (format 3 keeps them with every batch; format 2 had neither).
/// Records of format 3 read as format 4 ones (their trace contexts are `None`).
fn from_v3(_: &Storage) -> Result<(), StorageError> {
    Ok(())
}

fn from_v2(storage: &Storage) -> Result<(), StorageError> {
    for partition in 0..storage.partitions() {
        let mut meta = storage.partition_meta(partition)?;
        meta.deployments.clear();
        meta.handlers.clear();
        let mut out = Writer::new(storage);
        let invocations = storage.table_cf(partition, tag::INVOCATION);
        for item in storage.db().iterator_cf(&invocations, IteratorMode::Start) {
            let (key, value) = item?;
            let id = keys::parse_invocation(&key)
                .ok_or_else(|| StorageError::Corrupt { table: "invocation", reason: "bad key".into() })?;
            let status = super::tables::decode_status(&value)?;
            let census = records::Census::of(Some(&status));
            meta.recount(&records::Census::default(), &census);
            if let Some((deployment, _)) = census.pinned {
                out.put_partition(partition, &keys::pinned(&deployment, &id), &[])?;
            }
        }
        out.put_partition(partition, &keys::meta(), &codec::encode(&meta))?;
        out.write()?;
    }
    Ok(())
}
