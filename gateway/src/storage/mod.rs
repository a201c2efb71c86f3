//! Storage: one embedded RocksDB with a column family per table.
//!
//! Durability model (the same split Restate uses): the per-partition command **log** is
//! written with the WAL and fsynced (one group commit per batch); the tables the state
//! machine derives from it are written **without** the WAL and reach disk with memtable
//! flushes. All column families flush atomically, and each partition's applied LSN is
//! stored with its state, so after a crash the state on disk is a consistent prefix of the
//! log and the partition replays the log from there (`engine::partition`). The log is
//! trimmed up to what a flush has made durable.
//!
//! Call order: [`Storage::open`] → per partition [`Storage::partition_meta`], replay with
//! [`log::RocksLog::read`], then for every batch `Log::append_then` → [`Storage::write_partition_state`].

pub mod codec;
pub mod keys;
pub mod log;
mod tables;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, DBWithThreadMode,
    MultiThreaded, Options, WriteBatch, WriteOptions,
};

use crate::engine::records::PartitionMeta;

pub type Db = DBWithThreadMode<MultiThreaded>;

pub const CF_LOG: &str = "log";
pub const CF_INVOCATION: &str = "invocation";
pub const CF_JOURNAL: &str = "journal";
pub const CF_STATE: &str = "state";
pub const CF_INBOX: &str = "inbox";
pub const CF_LOCK: &str = "lock";
pub const CF_TIMER: &str = "timer";
pub const CF_OUTBOX: &str = "outbox";
pub const CF_PROMISE: &str = "promise";
pub const CF_META: &str = "meta";

const ALL_CFS: [&str; 10] =
    [CF_LOG, CF_INVOCATION, CF_JOURNAL, CF_STATE, CF_INBOX, CF_LOCK, CF_TIMER, CF_OUTBOX, CF_PROMISE, CF_META];

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt record in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("cannot open data directory {path}: {reason}")]
    DataDir { path: PathBuf, reason: String },
}

impl From<StorageError> for crate::engine::store::StoreError {
    fn from(e: StorageError) -> Self {
        crate::engine::store::StoreError(e.to_string())
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

/// The handle every component shares; cheap to clone.
#[derive(Clone)]
pub struct Storage {
    db: Arc<Db>,
}

impl Storage {
    pub fn open(dir: &Path, opts: &StorageOptions) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::DataDir { path: dir.to_owned(), reason: e.to_string() })?;
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        // State is written without the WAL; atomic flushes keep all tables (and each
        // partition's applied LSN) consistent with each other on disk.
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

        let cache = Cache::new_lru_cache(opts.cache_bytes);
        let cf_opts = |name: &str| {
            let mut o = Options::default();
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_bloom_filter(10.0, false);
            table.set_cache_index_and_filter_blocks(true);
            o.set_block_based_table_factory(&table);
            o.set_write_buffer_size((opts.memtable_bytes / 8).max(1 << 20));
            o.set_max_write_buffer_number(3);
            o.set_compression_type(DBCompressionType::Lz4);
            o.set_bottommost_compression_type(DBCompressionType::Zstd);
            if name == CF_LOG {
                o.set_compression_type(DBCompressionType::None);
            }
            ColumnFamilyDescriptor::new(name, o)
        };
        // Name the default column family too, or it gets stock options (64 MiB memtables),
        // which also sets how much WAL space RocksDB preallocates.
        let cfs: Vec<_> = std::iter::once("default").chain(ALL_CFS).map(cf_opts).collect();
        let db = Db::open_cf_descriptors(&db_opts, dir, cfs)?;
        Ok(Self { db: Arc::new(db) })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn cf(&self, name: &str) -> Arc<rocksdb::BoundColumnFamily<'_>> {
        self.db.cf_handle(name).expect("all column families are created at open")
    }

    /// Writes a batch of derived state (no WAL: the log is the durable record).
    pub fn write_state(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// Writes metadata durably (WAL + fsync): deployments, schema.
    pub fn put_meta_sync(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.put_cf_opt(&self.cf(CF_META), key, value, &wo)?;
        Ok(())
    }

    pub fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_cf(&self.cf(CF_META), key)?)
    }

    pub fn partition_meta(&self, partition: u32) -> Result<PartitionMeta, StorageError> {
        match self.db.get_cf(&self.cf(CF_META), keys::partition_meta(partition))? {
            Some(raw) => codec::decode(&raw, "partition meta"),
            None => Ok(PartitionMeta::default()),
        }
    }

    /// Flushes every memtable to disk (atomically across tables).
    pub fn flush(&self) -> Result<(), StorageError> {
        let cfs: Vec<_> = ALL_CFS.iter().map(|n| self.cf(n)).collect();
        let refs: Vec<_> = cfs.iter().collect();
        let mut fo = rocksdb::FlushOptions::default();
        fo.set_wait(true);
        self.db.flush_cfs_opt(&refs, &fo)?;
        Ok(())
    }
}
