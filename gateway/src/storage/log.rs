//! The per-partition command log behind a small trait, so a distributed log (PostgreSQL,
//! see ARCHITECTURE.md "Beyond one machine") can be a second implementation. The embedded
//! one keeps each partition's entries in its own `pN-log` column family, written with the WAL and fsynced.
//!
//! A log entry is one group commit: an encoded [`crate::engine::command::LogBatch`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rocksdb::{Direction, IteratorMode, WriteOptions};

use super::{Storage, StorageError, keys};

/// Which log: a partition's, or the schema's (deployments and services; see `schema/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogId {
    Partition(u32),
    Schema,
}

/// Log sequence number. Only increases; need not be consecutive.
pub type Lsn = u64;
/// Leadership term. The embedded log has one leader forever (epoch 0).
pub type Epoch = u64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub lsn: Lsn,
    pub epoch: Epoch,
    pub batch: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another leader took over (stale epoch) or the tail moved.
    #[error("append fenced: expected tail {expected}, actual {actual}")]
    Fenced { expected: Lsn, actual: Lsn },
    /// The append may or may not have happened (timeout mid-write).
    #[error("append outcome unknown: {0}")]
    Indeterminate(String),
    #[error("log unavailable: {0}")]
    Unavailable(String),
}

/// A log that could not be read or trimmed, with the cause (the log's own error) as its
/// source: the trait does not say what kind of log it is.
#[derive(Debug, thiserror::Error)]
#[error("log: {0}")]
pub struct LogError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl LogError {
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(cause))
    }
}

/// One partition's log; the partition leader is its only writer.
pub trait Log: Send + Sync + 'static {
    /// Appends `batch` after `expected` (the current tail) and returns its LSN.
    fn append(
        &self,
        expected: Lsn,
        epoch: Epoch,
        batch: Bytes,
    ) -> impl Future<Output = Result<Lsn, AppendError>> + Send;
    /// Appends, then runs `then` with the new LSN as soon as the entry is durable, and
    /// returns both. The embedded log runs `then` on the thread that did the write, which
    /// saves a hand-off per batch for work that must follow the append (applying it).
    fn append_then<T, F>(
        &self,
        expected: Lsn,
        epoch: Epoch,
        batch: Bytes,
        then: F,
    ) -> impl Future<Output = Result<(Lsn, T), AppendError>> + Send
    where
        T: Send + 'static,
        F: FnOnce(Lsn) -> T + Send + 'static,
    {
        async move {
            let lsn = self.append(expected, epoch, batch).await?;
            Ok((lsn, then(lsn)))
        }
    }
    /// Up to `max` entries with LSN greater than `after`, in order.
    fn read(&self, after: Lsn, max: usize) -> impl Future<Output = Result<Vec<LogEntry>, LogError>> + Send;
    /// Waits until the tail passes `after` or `timeout` elapses; returns the tail.
    fn wait(&self, after: Lsn, timeout: Duration) -> impl Future<Output = Result<Lsn, LogError>> + Send;
    fn tail(&self) -> impl Future<Output = Result<Lsn, LogError>> + Send;
    /// Drops entries up to and including `upto`.
    fn trim(&self, upto: Lsn) -> impl Future<Output = Result<(), LogError>> + Send;
}

/// One entry to make durable, and what to do once it is (or failed).
struct Append {
    log: LogId,
    lsn: Lsn,
    value: Vec<u8>,
    then: Box<dyn FnOnce(Result<(), String>) + Send>,
}

enum Job {
    Append(Append),
    /// Write what was queued before, then end.
    Stop,
}

/// The group commit shared by every partition's log: one thread writes whatever entries are
/// queued when it wakes, from all partitions, as one write batch with one fsync, then runs
/// each entry's follow-up. Under load the thread stays busy and batches grow; idle, a lone
/// entry costs one fsync as before. Owned by [`super::Database`], which stops and joins it
/// before closing the database.
pub struct LogWriter {
    tx: std::sync::mpsc::Sender<Job>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A handle to queue entries on the [`LogWriter`].
#[derive(Clone)]
pub struct GroupCommit {
    tx: std::sync::mpsc::Sender<Job>,
}

/// Most entries in one write batch.
const MAX_GROUP: usize = 1024;

impl LogWriter {
    pub(super) fn start(storage: Storage) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("perdure-log".into())
            .spawn(move || {
                let mut stop = false;
                while !stop {
                    let Ok(first) = rx.recv() else { break };
                    let mut group = Vec::new();
                    let mut next = Some(first);
                    while let Some(job) = next.take() {
                        match job {
                            Job::Append(a) => group.push(a),
                            Job::Stop => {
                                stop = true;
                                break;
                            }
                        }
                        if group.len() < MAX_GROUP {
                            next = rx.try_recv().ok();
                        }
                    }
                    if !group.is_empty() {
                        write_group(&storage, group);
                    }
                }
            })
            .expect("spawning the log writer thread");
        Self { tx, thread: Some(thread) }
    }

    pub fn handle(&self) -> GroupCommit {
        GroupCommit { tx: self.tx.clone() }
    }

    /// Writes what is queued, then ends the thread and waits for it. Appends queued later
    /// fail with [`AppendError::Unavailable`].
    pub(super) fn stop(mut self) {
        let _ = self.tx.send(Job::Stop);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the log writer thread panicked");
        }
    }
}

fn write_group(storage: &Storage, group: Vec<Append>) {
    let mut batch = rocksdb::WriteBatch::default();
    for a in &group {
        batch.put_cf(&storage.log_cf(a.log), keys::log_entry(a.lsn), &a.value);
    }
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    let started = std::time::Instant::now();
    let result = storage.db().write_opt(batch, &wo).map_err(|e| e.to_string());
    crate::metrics::log_group(group.len(), started.elapsed());
    for a in group {
        (a.then)(result.clone());
    }
}

/// The embedded log of one partition (or of the schema).
#[derive(Clone)]
pub struct RocksLog {
    storage: Storage,
    writer: GroupCommit,
    id: LogId,
    tail: Arc<AtomicU64>,
    appended: Arc<tokio::sync::Notify>,
}

impl RocksLog {
    /// Opens log `id`. `applied` is the LSN the state derived from it already contains: the
    /// tail never goes below it, even when trimming removed every entry.
    pub fn open(storage: Storage, writer: GroupCommit, id: LogId, applied: Lsn) -> Result<Self, StorageError> {
        let handle = storage.log_cf(id);
        let mut iter = storage.db().iterator_cf(&handle, IteratorMode::End);
        let tail = match iter.next() {
            Some(item) => {
                let (k, _) = item?;
                keys::parse_log_entry(&k).ok_or_else(|| StorageError::Corrupt {
                    table: "log",
                    reason: format!("key of {} bytes", k.len()),
                })?
            }
            None => 0,
        }
        .max(applied);
        drop(iter);
        drop(handle);
        Ok(Self {
            storage,
            writer,
            id,
            tail: Arc::new(AtomicU64::new(tail)),
            appended: Arc::new(tokio::sync::Notify::new()),
        })
    }

    fn read_blocking(&self, after: Lsn, max: usize) -> Result<Vec<LogEntry>, StorageError> {
        let Some(first) = after.checked_add(1) else { return Ok(Vec::new()) };
        let start = keys::log_entry(first);
        let handle = self.storage.log_cf(self.id);
        let iter = self.storage.db().iterator_cf(&handle, IteratorMode::From(&start, Direction::Forward));
        let mut out = Vec::new();
        for item in iter.take(max) {
            let (k, v) = item?;
            let lsn = keys::parse_log_entry(&k)
                .ok_or_else(|| StorageError::Corrupt { table: "log", reason: format!("key of {} bytes", k.len()) })?;
            if v.len() < 8 {
                return Err(StorageError::Corrupt { table: "log", reason: format!("entry {lsn} too short") });
            }
            let epoch = u64::from_be_bytes(v[..8].try_into().expect("checked length"));
            out.push(LogEntry { lsn, epoch, batch: Bytes::copy_from_slice(&v[8..]) });
        }
        Ok(out)
    }
}

impl Log for RocksLog {
    async fn append(&self, expected: Lsn, epoch: Epoch, batch: Bytes) -> Result<Lsn, AppendError> {
        self.append_then(expected, epoch, batch, |_| ()).await.map(|(lsn, ())| lsn)
    }

    async fn append_then<T, F>(
        &self,
        expected: Lsn,
        epoch: Epoch,
        batch: Bytes,
        then: F,
    ) -> Result<(Lsn, T), AppendError>
    where
        T: Send + 'static,
        F: FnOnce(Lsn) -> T + Send + 'static,
    {
        let actual = self.tail.load(Ordering::Acquire);
        if actual != expected {
            return Err(AppendError::Fenced { expected, actual });
        }
        let lsn = expected + 1;
        let mut value = Vec::with_capacity(8 + batch.len());
        value.extend_from_slice(&epoch.to_be_bytes());
        value.extend_from_slice(&batch);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = std::time::Instant::now();
        let append = Append {
            log: self.id,
            lsn,
            value,
            then: Box::new(move |written| {
                let _ = tx.send(written.map(|()| then(lsn)));
            }),
        };
        self.writer
            .tx
            .send(Job::Append(append))
            .map_err(|_| AppendError::Unavailable("the log writer stopped".into()))?;
        let result = rx
            .await
            .map_err(|_| AppendError::Unavailable("the log writer stopped before writing".into()))?
            .map_err(AppendError::Unavailable)?;
        crate::metrics::log_append(started.elapsed());
        self.tail.store(lsn, Ordering::Release);
        self.appended.notify_waiters();
        Ok((lsn, result))
    }

    async fn read(&self, after: Lsn, max: usize) -> Result<Vec<LogEntry>, LogError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read_blocking(after, max))
            .await
            .map_err(LogError::new)?
            .map_err(LogError::new)
    }

    async fn wait(&self, after: Lsn, timeout: Duration) -> Result<Lsn, LogError> {
        let notified = self.appended.notified();
        let tail = self.tail.load(Ordering::Acquire);
        if tail > after {
            return Ok(tail);
        }
        let _ = tokio::time::timeout(timeout, notified).await;
        Ok(self.tail.load(Ordering::Acquire))
    }

    async fn tail(&self) -> Result<Lsn, LogError> {
        Ok(self.tail.load(Ordering::Acquire))
    }

    async fn trim(&self, upto: Lsn) -> Result<(), LogError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let cf = this.storage.log_cf(this.id);
            let end = keys::log_entry(upto.saturating_add(1));
            this.storage.db().delete_range_cf(&cf, keys::log_entry(0), end)?;
            // Drop the trimmed entries' files now rather than at some later compaction: the
            // log is most of what the data directory writes.
            this.storage.db().compact_range_cf(&cf, None::<&[u8]>, Some(&end[..]));
            Ok::<(), rocksdb::Error>(())
        })
        .await
        .map_err(LogError::new)?
        .map_err(LogError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_from_partitions_are_durable_ordered_and_trimmable() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::super::Database::open(dir.path(), &Default::default(), 2).unwrap();
        let (storage, writer) = (db.storage(), db.log_writer());
        let a = RocksLog::open(storage.clone(), writer.clone(), LogId::Partition(0), 0).unwrap();
        let b = RocksLog::open(storage.clone(), writer.clone(), LogId::Partition(1), 0).unwrap();
        // Concurrent appends of two partitions share the writer.
        let (ra, rb) = tokio::join!(
            a.append_then(0, 0, Bytes::from_static(b"a1"), |lsn| lsn * 10),
            b.append(0, 0, Bytes::from_static(b"b1")),
        );
        assert_eq!(ra.unwrap(), (1, 10));
        assert_eq!(rb.unwrap(), 1);
        assert_eq!(a.append(1, 0, Bytes::from_static(b"a2")).await.unwrap(), 2);
        // A stale tail is fenced.
        assert!(matches!(a.append(1, 0, Bytes::from_static(b"x")).await, Err(AppendError::Fenced { .. })));
        let entries = a.read(0, 10).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.batch.clone()).collect::<Vec<_>>(), [&b"a1"[..], &b"a2"[..]]);
        assert_eq!(b.read(0, 10).await.unwrap().len(), 1);
        a.trim(1).await.unwrap();
        assert_eq!(a.read(0, 10).await.unwrap().len(), 1);
        // Reopened: the tail survives, and never goes below the applied LSN.
        let again = RocksLog::open(storage.clone(), writer.clone(), LogId::Partition(0), 0).unwrap();
        assert_eq!(again.tail().await.unwrap(), 2);
        let trimmed = RocksLog::open(storage, writer, LogId::Partition(0), 7).unwrap();
        assert_eq!(trimmed.tail().await.unwrap(), 7);
        // The owner closes the database here, on this thread, after the writer thread ended.
        drop((a, b, again, trimmed));
        db.close().unwrap();
    }
}
