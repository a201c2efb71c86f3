//! The engine's tables on RocksDB: reads for the state machine ([`Store`]), the write batch
//! a group of [`Write`]s becomes, and the scans a partition leader runs when it starts.

use std::ops::RangeInclusive;

use bytes::Bytes;
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch};

use super::{
    CF_INBOX, CF_INVOCATION, CF_JOURNAL, CF_LOCK, CF_META, CF_OUTBOX, CF_PROMISE, CF_STATE, CF_TIMER, Storage,
    StorageError, codec, keys,
};
use crate::engine::records::{
    InvocationStatus, JournalEntry, Lock, ObjectKey, OutboxMessage, PartitionMeta, Promise, Timer,
};
use crate::engine::store::{Store, StoreResult, Write};
use crate::ids::InvocationId;

impl Storage {
    fn get_decoded<T: serde::de::DeserializeOwned>(
        &self,
        cf: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        match self.db().get_pinned_cf(&self.cf(cf), key)? {
            Some(raw) => Ok(Some(codec::decode(&raw, cf)?)),
            None => Ok(None),
        }
    }

    /// Iterates `[start, end)` of a column family, in key order.
    fn scan(
        &self,
        cf: &'static str,
        start: &[u8],
        end: Vec<u8>,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end);
        let handle = self.cf(cf);
        let iter = self.db().iterator_cf_opt(&handle, ro, IteratorMode::From(start, Direction::Forward));
        for item in iter {
            let (k, v) = item?;
            if !f(&k, &v)? {
                break;
            }
        }
        Ok(())
    }

    /// Turns writes of one partition's batch into a RocksDB write batch.
    pub fn state_batch(&self, partition: u32, writes: &[Write], meta: &PartitionMeta) -> WriteBatch {
        let mut b = WriteBatch::default();
        for w in writes {
            match w {
                Write::PutInvocation(id, status) => {
                    b.put_cf(&self.cf(CF_INVOCATION), keys::invocation(id), codec::encode(status.as_ref()))
                }
                Write::DeleteInvocation(id) => b.delete_cf(&self.cf(CF_INVOCATION), keys::invocation(id)),
                Write::PutJournal(id, index, entry) => {
                    b.put_cf(&self.cf(CF_JOURNAL), keys::journal(id, *index), codec::encode(entry))
                }
                Write::DeleteJournal(id, len) => b.delete_range_cf(
                    &self.cf(CF_JOURNAL),
                    keys::journal(id, 0),
                    keys::journal(id, *len),
                ),
                Write::PutState(obj, name, value) => {
                    b.put_cf(&self.cf(CF_STATE), keys::state(obj, name), value)
                }
                Write::DeleteState(obj, name) => b.delete_cf(&self.cf(CF_STATE), keys::state(obj, name)),
                Write::ClearState(obj) => {
                    let prefix = keys::object(obj);
                    b.delete_range_cf(&self.cf(CF_STATE), &prefix, &keys::prefix_end(&prefix))
                }
                Write::PutInbox(obj, seq, id) => b.put_cf(&self.cf(CF_INBOX), keys::inbox(obj, *seq), id.to_bytes()),
                Write::DeleteInbox(obj, seq) => b.delete_cf(&self.cf(CF_INBOX), keys::inbox(obj, *seq)),
                Write::PutLock(obj, lock) => b.put_cf(&self.cf(CF_LOCK), keys::object(obj), codec::encode(lock)),
                Write::PutTimer(t) => b.put_cf(&self.cf(CF_TIMER), keys::timer(partition, t), []),
                Write::DeleteTimer(t) => b.delete_cf(&self.cf(CF_TIMER), keys::timer(partition, t)),
                Write::PutPromise(obj, name, promise) => {
                    b.put_cf(&self.cf(CF_PROMISE), keys::state(obj, name.as_bytes()), codec::encode(promise))
                }
                Write::ClearPromises(obj) => {
                    let prefix = keys::object(obj);
                    b.delete_range_cf(&self.cf(CF_PROMISE), &prefix, &keys::prefix_end(&prefix))
                }
                Write::PutOutbox(seq, m) => {
                    b.put_cf(&self.cf(CF_OUTBOX), keys::sequenced(partition, *seq), codec::encode(m))
                }
                Write::DeleteOutbox { from, to } => b.delete_range_cf(
                    &self.cf(CF_OUTBOX),
                    keys::sequenced(partition, *from),
                    keys::sequenced(partition, *to),
                ),
            }
        }
        b.put_cf(&self.cf(CF_META), keys::partition_meta(partition), codec::encode(meta));
        b
    }

    /// Journal entries `0..len` of an invocation, for replay to the SDK.
    pub fn journal(&self, id: &InvocationId, len: u32) -> Result<Vec<JournalEntry>, StorageError> {
        let mut out = Vec::with_capacity(len as usize);
        self.scan(CF_JOURNAL, &keys::journal(id, 0), keys::journal(id, len).to_vec(), |_, v| {
            out.push(codec::decode(v, CF_JOURNAL)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Every timer of a partition, in firing order.
    pub fn timers(&self, partition: u32) -> Result<Vec<Timer>, StorageError> {
        let prefix = partition.to_be_bytes();
        let mut out = Vec::new();
        self.scan(CF_TIMER, &prefix, keys::prefix_end(&prefix), |k, _| {
            out.push(keys::parse_timer(k).ok_or_else(|| StorageError::Corrupt {
                table: CF_TIMER,
                reason: "unparseable timer key".into(),
            })?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Undelivered outbox messages of a partition, in order.
    pub fn outbox(&self, partition: u32) -> Result<Vec<(u64, OutboxMessage)>, StorageError> {
        let prefix = partition.to_be_bytes();
        let mut out = Vec::new();
        self.scan(CF_OUTBOX, &prefix, keys::prefix_end(&prefix), |k, v| {
            let seq = keys::parse_sequenced(k).unwrap_or_default();
            out.push((seq, codec::decode(v, CF_OUTBOX)?));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Visits every invocation whose partition key lies in `keys`.
    pub fn for_each_invocation(
        &self,
        keys: &RangeInclusive<u64>,
        mut f: impl FnMut(InvocationId, InvocationStatus) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let start = keys.start().to_be_bytes();
        let end = match keys.end().checked_add(1) {
            Some(e) => e.to_be_bytes().to_vec(),
            None => vec![0xff; 25],
        };
        self.scan(CF_INVOCATION, &start, end, |k, v| {
            let id = InvocationId::from_bytes(k).ok_or_else(|| StorageError::Corrupt {
                table: CF_INVOCATION,
                reason: "bad key".into(),
            })?;
            f(id, codec::decode(v, CF_INVOCATION)?)
        })
    }
}

impl Store for Storage {
    fn invocation(&self, id: &InvocationId) -> StoreResult<Option<InvocationStatus>> {
        Ok(self.get_decoded(CF_INVOCATION, &keys::invocation(id))?)
    }

    fn journal_entry(&self, id: &InvocationId, index: u32) -> StoreResult<Option<JournalEntry>> {
        Ok(self.get_decoded(CF_JOURNAL, &keys::journal(id, index))?)
    }

    fn state(&self, obj: &ObjectKey, name: &[u8]) -> StoreResult<Option<Bytes>> {
        let v = self.db().get_cf(&self.cf(CF_STATE), keys::state(obj, name)).map_err(StorageError::from)?;
        Ok(v.map(Bytes::from))
    }

    fn state_all(&self, obj: &ObjectKey) -> StoreResult<Vec<(Bytes, Bytes)>> {
        let prefix = keys::object(obj);
        let mut out = Vec::new();
        self.scan(CF_STATE, &prefix, keys::prefix_end(&prefix), |k, v| {
            out.push((Bytes::copy_from_slice(&k[prefix.len()..]), Bytes::copy_from_slice(v)));
            Ok(true)
        })?;
        Ok(out)
    }

    fn inbox_next(&self, obj: &ObjectKey, from_seq: u64) -> StoreResult<Option<(u64, InvocationId)>> {
        let prefix = keys::object(obj);
        let mut found = None;
        self.scan(CF_INBOX, &keys::inbox(obj, from_seq), keys::prefix_end(&prefix), |k, v| {
            let seq = u64::from_be_bytes(k[prefix.len()..].try_into().map_err(|_| StorageError::Corrupt {
                table: CF_INBOX,
                reason: "bad key".into(),
            })?);
            let id = InvocationId::from_bytes(v).ok_or_else(|| StorageError::Corrupt {
                table: CF_INBOX,
                reason: "bad value".into(),
            })?;
            found = Some((seq, id));
            Ok(false)
        })?;
        Ok(found)
    }

    fn lock(&self, obj: &ObjectKey) -> StoreResult<Option<Lock>> {
        Ok(self.get_decoded(CF_LOCK, &keys::object(obj))?)
    }

    fn promise(&self, obj: &ObjectKey, name: &str) -> StoreResult<Option<Promise>> {
        Ok(self.get_decoded(CF_PROMISE, &keys::state(obj, name.as_bytes()))?)
    }
}
