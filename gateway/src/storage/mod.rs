//! Storage: one embedded RocksDB, owned by one [`Database`] and shared through cheap
//! [`Storage`] handles.
//!
//! Layout (since storage format 2; today format 4, see [`format`]): every partition owns a column family per table
//! (`pN-invocation`, `pN-journal`, `pN-state`, …, see [`keys`]) and one for its command log
//! (`pN-log`, keyed by LSN), so one partition's data can be checkpointed, exported or moved
//! alone, and one table's compactions never rewrite another's data; `meta` holds what belongs to the node (the schema as of its log's applied LSN, the
//! partition count) and `log-schema` the log of schema changes.
//!
//! Durability model (the same split Restate uses): the log is written with the WAL and
//! fsynced (one group commit per batch, [`log::LogWriter`]); the tables the state machine
//! derives from it are written **without** the WAL and reach disk with memtable flushes. All
//! column families flush atomically, and each partition's applied LSN is stored with its
//! state, so after a crash the state on disk is a consistent prefix of the log and the
//! partition replays the log from there (`crate::partition`). The log is trimmed up to what
//! a flush has made durable.
//!
//! Call order: [`Database::open`] (checks the format, upgrades older ones) → per partition
//! [`Storage::partition_meta`], replay with [`log::RocksLog::read`], then for every batch
//! `Log::append_then` → [`Storage::write_partition_state`] → at the end [`Database::close`]
//! on the thread that opened it: the log writer is joined, memtables flushed and RocksDB
//! closed there, before the process exits (closing it on another thread while the process
//! runs its exit-time destructors crashes inside RocksDB).

pub mod codec;
pub mod format;
pub mod keys;
pub mod log;
pub mod pack;
mod tables;
pub use tables::KeySlice;
mod upgrade;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocksdb::{
    BlockBasedOptions, BoundColumnFamily, Cache, ColumnFamilyDescriptor, DBCompressionType, DBWithThreadMode,
    MultiThreaded, Options, WriteBatch, WriteOptions,
};

use crate::engine::records::PartitionMeta;

pub type Db = DBWithThreadMode<MultiThreaded>;

/// The node's own records: schema, partition count.
pub const CF_META: &str = "meta";
const PARTITIONS_KEY: &[u8] = b"partitions";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt record in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("cannot open data directory {path}: {reason}")]
    DataDir { path: PathBuf, reason: String },
    #[error(
        "the data directory {path} has storage format {found}, written by a newer perdure; this perdure ({}) reads formats {} to {}, so it leaves the directory untouched",
        env!("CARGO_PKG_VERSION"), format::OLDEST, format::CURRENT
    )]
    NewerFormat { path: PathBuf, found: u32 },
    #[error(transparent)]
    Log(#[from] log::LogError),
    #[error(transparent)]
    Append(#[from] log::AppendError),
    /// A read on a blocking thread ended without an answer (it panicked, or the runtime
    /// shut down under it).
    #[error("a storage read did not finish: {0}")]
    ReadInterrupted(#[source] tokio::task::JoinError),
    #[error("upgrading the data directory from storage format {from}: {reason}")]
    Upgrade { from: u32, reason: String },
}

impl From<StorageError> for crate::engine::store::StoreError {
    fn from(e: StorageError) -> Self {
        crate::engine::store::StoreError::new(e)
    }
}

/// Memory limits for RocksDB.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// Total memtable budget across column families.
    pub memtable_bytes: usize,
    /// Block cache size.
    pub cache_bytes: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self { memtable_bytes: 32 << 20, cache_bytes: 16 << 20 }
    }
}

struct Inner {
    db: Db,
    partitions: u32,
    /// Column family names, by partition and table tag.
    table_cfs: Vec<Vec<String>>,
    log_cfs: Vec<String>,
}

/// The column family of the schema's log.
const SCHEMA_LOG_CF: &str = "log-schema";

/// The handle every component shares; cheap to clone. The database stays open while the
/// [`Database`] that owns it does; handles must be gone by the time it closes.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

/// What [`Storage::stats`] reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct StorageStats {
    pub memtable_bytes: u64,
    pub block_cache_bytes: u64,
    pub table_readers_bytes: u64,
    pub sst_bytes: u64,
    pub pending_compaction_bytes: u64,
}

/// The one owner of the RocksDB instance and of the log writer thread.
pub struct Database {
    dir: PathBuf,
    storage: Option<Storage>,
    writer: Option<log::LogWriter>,
}

/// How long [`Database::close`] waits for the last handles (tasks still winding down).
const HANDLES_GRACE: Duration = Duration::from_secs(5);

impl Database {
    /// Opens (or creates, with `partitions` partitions) the data directory at `dir`, upgrading
    /// an older storage format in place and refusing a newer one without writing to it.
    pub fn open(dir: &Path, opts: &StorageOptions, partitions: u32) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::DataDir { path: dir.to_owned(), reason: e.to_string() })?;
        let found = format::read(dir)?;
        format::check(dir, found)?;
        if found == format::Found::Empty {
            format::write(dir, format::CURRENT)?;
        }
        let db_opts = db_options(opts);
        let cache = Cache::new_lru_cache(opts.cache_bytes);
        let existing = if dir.join("CURRENT").exists() { Db::list_cf(&db_opts, dir)? } else { Vec::new() };
        let fresh = existing.is_empty();
        let mut names: Vec<String> = ["default", CF_META].iter().map(|s| s.to_string()).collect();
        names.extend(existing.into_iter().filter(|n| n != "default" && n != CF_META));
        if fresh {
            // Every column family in one go (one MANIFEST and OPTIONS write, not one per family).
            names.extend(cf_names(partitions));
        }
        let descriptors: Vec<_> =
            names.iter().map(|n| ColumnFamilyDescriptor::new(n, cf_options(n, opts, &cache))).collect();
        let db = Db::open_cf_descriptors(&db_opts, dir, descriptors)?;

        let partitions = match db.get_cf(&db.cf_handle(CF_META).expect("opened above"), PARTITIONS_KEY)? {
            Some(raw) => u32::from_be_bytes(raw.as_slice().try_into().map_err(|_| StorageError::Corrupt {
                table: CF_META,
                reason: "partition count is not 4 bytes".into(),
            })?),
            None => {
                let mut wo = WriteOptions::default();
                wo.set_sync(true);
                db.put_cf_opt(
                    &db.cf_handle(CF_META).expect("opened above"),
                    PARTITIONS_KEY,
                    partitions.to_be_bytes(),
                    &wo,
                )?;
                partitions
            }
        };
        if partitions == 0 {
            return Err(StorageError::Corrupt { table: CF_META, reason: "partition count is 0".into() });
        }
        let table_cfs: Vec<Vec<String>> =
            (0..partitions).map(|p| keys::tag::ALL.iter().map(|&t| keys::table_cf(p, t)).collect()).collect();
        let log_cfs: Vec<String> = (0..partitions).map(keys::log_cf).collect();
        for name in &cf_names(partitions) {
            if db.cf_handle(name).is_none() {
                db.create_cf(name, &cf_options(name, opts, &cache))?;
            }
        }
        let storage = Storage { inner: Arc::new(Inner { db, partitions, table_cfs, log_cfs }) };
        if let format::Found::Format(from) = found
            && from < format::CURRENT
        {
            upgrade::run(&storage, from)?;
            format::write(dir, format::CURRENT)?;
        }
        upgrade::drop_leftovers(&storage)?;
        let writer = log::LogWriter::start(storage.clone());
        Ok(Self { dir: dir.to_owned(), storage: Some(storage), writer: Some(writer) })
    }

    /// A handle to the open database.
    pub fn storage(&self) -> Storage {
        self.storage.clone().expect("open until closed")
    }

    /// A handle to the group commit every partition's log appends through.
    pub fn log_writer(&self) -> log::GroupCommit {
        self.writer.as_ref().expect("open until closed").handle()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the log writer (entries already queued are written), flushes every memtable and
    /// closes RocksDB on this thread. Handles still held elsewhere get a short grace period to
    /// go away; if some remain, the database is left open (and never closed implicitly on
    /// another thread) after stopping its background work: everything is already durable.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.shut()
    }

    fn shut(&mut self) -> Result<(), StorageError> {
        if let Some(writer) = self.writer.take() {
            writer.stop();
        }
        let Some(storage) = self.storage.take() else { return Ok(()) };
        let flushed = storage.flush();
        let mut inner = storage.inner;
        let deadline = Instant::now() + HANDLES_GRACE;
        loop {
            match Arc::try_unwrap(inner) {
                Ok(inner) => {
                    drop(inner);
                    return flushed;
                }
                Err(shared) if Instant::now() < deadline => {
                    inner = shared;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(shared) => {
                    tracing::error!(
                        handles = Arc::strong_count(&shared) - 1,
                        "storage handles outlived the database; leaving RocksDB open (its data is flushed)"
                    );
                    shared.db.cancel_all_background_work(true);
                    std::mem::forget(shared);
                    return flushed;
                }
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Err(e) = self.shut() {
            tracing::warn!("closing the database: {e}");
        }
    }
}

/// The column families of a data directory with `partitions` partitions (besides `default`
/// and `meta`).
fn cf_names(partitions: u32) -> Vec<String> {
    let mut names: Vec<String> =
        (0..partitions).flat_map(|p| keys::tag::ALL.iter().map(move |&t| keys::table_cf(p, t))).collect();
    names.extend((0..partitions).map(keys::log_cf));
    names.push(SCHEMA_LOG_CF.to_owned());
    names
}

fn db_options(opts: &StorageOptions) -> Options {
    let mut db_opts = Options::default();
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    // State is written without the WAL; atomic flushes keep all tables (and each partition's
    // applied LSN) consistent with each other on disk.
    db_opts.set_atomic_flush(true);
    db_opts.set_db_write_buffer_size(opts.memtable_bytes);
    db_opts.set_max_total_wal_size(opts.memtable_bytes as u64);
    db_opts.set_max_background_jobs(2);
    db_opts.set_keep_log_file_num(2);
    db_opts.set_max_log_file_size(1 << 20);
    db_opts.set_log_level(rocksdb::LogLevel::Warn);
    // Little preallocated space: a fresh data directory stays small on disk (RocksDB
    // preallocates the WAL by the largest memtable size, see below).
    db_opts.set_manifest_preallocation_size(0);
    db_opts
}

/// Options of one column family. Every column family gets them, `default` too, or it gets
/// stock options (64 MiB memtables), which also sets how much WAL space RocksDB preallocates.
fn cf_options(name: &str, opts: &StorageOptions, cache: &Cache) -> Options {
    let mut o = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    table.set_cache_index_and_filter_blocks(true);
    // Partitioned index and filters: a point read loads one small index partition through the
    // (small, bounded) block cache, not a table's whole index. With one flat index per table, a
    // 1M-invocation backlog made every journal read decompress a multi-megabyte index block
    // evicted from the cache (drain at ~500 invocations/s, CPU-bound). Only the top level stays
    // pinned; readers of tables written before this still work (the format is per table).
    table.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(true);
    table.set_pin_top_level_index_and_filter(true);
    table.set_cache_index_and_filter_blocks_with_high_priority(true);
    o.set_block_based_table_factory(&table);
    o.set_write_buffer_size((opts.memtable_bytes / 8).max(1 << 20));
    o.set_max_write_buffer_number(3);
    if name.ends_with("-log") || name.starts_with("log") {
        // Short-lived (trimmed after every flush) and written once: not worth compressing.
        o.set_compression_type(DBCompressionType::None);
    } else {
        o.set_compression_type(DBCompressionType::Lz4);
        o.set_bottommost_compression_type(DBCompressionType::Zstd);
    }
    o
}

impl Storage {
    pub fn partitions(&self) -> u32 {
        self.inner.partitions
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The column family that holds table `tag` of partition `p`.
    pub(crate) fn table_cf(&self, p: u32, tag: u8) -> Arc<BoundColumnFamily<'_>> {
        let name = self.inner.table_cfs[p as usize].get(tag as usize).expect("a known table tag");
        self.inner.db.cf_handle(name).expect("table column families exist while open")
    }

    /// The column family of a log.
    pub(crate) fn log_cf(&self, log: log::LogId) -> Arc<BoundColumnFamily<'_>> {
        let name = match log {
            log::LogId::Partition(p) => &self.inner.log_cfs[p as usize],
            log::LogId::Schema => SCHEMA_LOG_CF,
        };
        self.inner.db.cf_handle(name).expect("log column families exist while open")
    }

    fn meta_cf(&self) -> Arc<BoundColumnFamily<'_>> {
        self.inner.db.cf_handle(CF_META).expect("the meta column family exists while open")
    }

    /// The partition that owns `partition_key`.
    pub fn partition_of(&self, partition_key: u64) -> u32 {
        crate::engine::keyspace::partition_of(partition_key, self.inner.partitions)
    }

    /// RocksDB's memory and disk use, summed over every column family (RocksDB's own
    /// estimates, cheap to read: no I/O).
    pub fn stats(&self) -> StorageStats {
        let db = &self.inner.db;
        let mut stats = StorageStats::default();
        let names = self.inner.table_cfs.iter().flatten().chain(&self.inner.log_cfs).map(String::as_str);
        for name in names.chain([CF_META, SCHEMA_LOG_CF]) {
            let Some(cf) = db.cf_handle(name) else { continue };
            let int = |property: &str| db.property_int_value_cf(&cf, property).ok().flatten().unwrap_or(0);
            stats.memtable_bytes += int("rocksdb.cur-size-all-mem-tables");
            stats.table_readers_bytes += int("rocksdb.estimate-table-readers-mem");
            stats.sst_bytes += int("rocksdb.live-sst-files-size");
            stats.pending_compaction_bytes += int("rocksdb.estimate-pending-compaction-bytes");
            // One cache serves every family: each reports the whole of it.
            stats.block_cache_bytes = stats.block_cache_bytes.max(int("rocksdb.block-cache-usage"));
        }
        stats
    }

    /// Writes a batch of derived state (no WAL: the log is the durable record).
    pub fn write_state(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.db().write_opt(batch, &wo)?;
        Ok(())
    }

    /// Writes node metadata durably (WAL + fsync): schema, partition count.
    pub fn put_meta_sync(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db().put_cf_opt(&self.meta_cf(), key, value, &wo)?;
        Ok(())
    }

    /// Writes node metadata derived from a log (the schema): with the WAL, not synced.
    pub fn put_meta(&self, entries: &[(&[u8], &[u8])]) -> Result<(), StorageError> {
        let meta = self.meta_cf();
        let mut batch = WriteBatch::default();
        for (k, v) in entries {
            batch.put_cf(&meta, k, v);
        }
        self.db().write(batch)?;
        Ok(())
    }

    pub fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db().get_cf(&self.meta_cf(), key)?)
    }

    pub fn partition_meta(&self, partition: u32) -> Result<PartitionMeta, StorageError> {
        match self.db().get_cf(&self.table_cf(partition, keys::tag::META), keys::meta())? {
            Some(raw) => codec::decode(&raw, "partition meta"),
            None => Ok(PartitionMeta::default()),
        }
    }

    /// Flushes every memtable to disk (atomically across column families).
    pub fn flush(&self) -> Result<(), StorageError> {
        let names = std::iter::once(CF_META).chain(self.inner.table_cfs.iter().flatten().map(String::as_str));
        let cfs: Vec<_> = names
            .chain(self.inner.log_cfs.iter().map(String::as_str))
            .chain([SCHEMA_LOG_CF])
            .filter_map(|n| self.db().cf_handle(n))
            .collect();
        let refs: Vec<_> = cfs.iter().collect();
        let mut fo = rocksdb::FlushOptions::default();
        fo.set_wait(true);
        self.db().flush_cfs_opt(&refs, &fo)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_gets_the_current_format_and_keeps_its_partition_count() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), &Default::default(), 3).unwrap();
        assert_eq!(db.storage().partitions(), 3);
        db.close().unwrap();
        assert_eq!(format::read(dir.path()).unwrap(), format::Found::Format(format::CURRENT));
        let again = Database::open(dir.path(), &Default::default(), 5).unwrap();
        assert_eq!(again.storage().partitions(), 3, "fixed when the directory was created");
    }

    #[test]
    fn a_newer_format_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        Database::open(dir.path(), &Default::default(), 1).unwrap().close().unwrap();
        format::write(dir.path(), format::CURRENT + 1).unwrap();
        let listing = |p: &Path| {
            let mut files: Vec<_> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (e.file_name(), std::fs::read(e.path()).unwrap())
                })
                .collect();
            files.sort();
            files
        };
        let before = listing(dir.path());
        let err = Database::open(dir.path(), &Default::default(), 1).err().expect("refused").to_string();
        assert!(err.contains(&format!("storage format {}", format::CURRENT + 1)), "{err}");
        assert!(err.contains(&format!("reads formats {} to {}", format::OLDEST, format::CURRENT)), "{err}");
        assert!(listing(dir.path()) == before, "not a byte written");
    }

    #[test]
    fn a_read_failure_reaches_the_engine_with_the_storage_error_as_its_cause() {
        let e: crate::engine::store::StoreError =
            StorageError::Corrupt { table: "invocation", reason: "record too short".into() }.into();
        let cause = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<StorageError>());
        assert!(matches!(cause, Some(StorageError::Corrupt { table: "invocation", .. })), "{e:?}");
        assert_eq!(e.to_string(), "storage read failed: corrupt record in invocation: record too short");
    }

    #[test]
    fn a_log_failure_keeps_its_cause() {
        let e: StorageError =
            log::LogError::new(StorageError::Corrupt { table: "log", reason: "entry 7 too short".into() }).into();
        let cause = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<StorageError>());
        assert!(matches!(cause, Some(StorageError::Corrupt { table: "log", .. })), "{e:?}");
        assert_eq!(e.to_string(), "log: corrupt record in log: entry 7 too short");
    }
}
