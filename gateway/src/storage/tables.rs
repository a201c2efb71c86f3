//! The engine's tables on RocksDB: reads for the state machine ([`Store`]), the write batch
//! a group of [`Write`]s becomes, and the scans a partition leader runs when it starts.

use bytes::Bytes;
use rocksdb::{ReadOptions, WriteBatch};

use super::keys::tag;
use super::{Storage, StorageError, codec, keys};
use crate::engine::records::{
    InvocationStatus, JournalEntry, Lock, ObjectKey, OutboxMessage, PartitionMeta, Promise, Timer,
};
use crate::engine::store::{Store, StoreResult, Write};
use crate::ids::{DeploymentId, InvocationId};

/// Journals up to this long are read entry by entry instead of scanned.
const JOURNAL_POINT_READS: u32 = 4;

impl Storage {
    fn get_decoded<T: serde::de::DeserializeOwned>(
        &self,
        partition: u32,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        match self.db().get_pinned_cf(&self.table_cf(partition, key[0]), key)? {
            Some(raw) => Ok(Some(codec::decode(&raw, tag::table(key[0]))?)),
            None => Ok(None),
        }
    }

    /// Iterates `[start, end)` of one table of a partition (the table of `start`'s tag), in
    /// key order.
    fn scan(
        &self,
        partition: u32,
        start: &[u8],
        end: Vec<u8>,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end);
        let handle = self.table_cf(partition, start.first().copied().unwrap_or(tag::META));
        // The raw iterator lends each key and value in place (no copy per record).
        let mut iter = self.db().raw_iterator_cf_opt(&handle, ro);
        iter.seek(start);
        while let (Some(k), Some(v)) = (iter.key(), iter.value()) {
            if !f(k, v)? {
                return Ok(());
            }
            iter.next();
        }
        iter.status()?;
        Ok(())
    }

    /// Writes one partition's batch of derived state and its counters (no WAL).
    pub fn write_partition_state(
        &self,
        partition: u32,
        writes: &[Write],
        meta: &PartitionMeta,
    ) -> Result<(), StorageError> {
        self.write_state(self.state_batch(partition, writes, meta))
    }

    /// Turns writes of one partition's batch into a RocksDB write batch.
    fn state_batch(&self, partition: u32, writes: &[Write], meta: &PartitionMeta) -> WriteBatch {
        let cfs: Vec<_> = tag::ALL.iter().map(|&t| self.table_cf(partition, t)).collect();
        let cf = |t: u8| &cfs[t as usize];
        let mut b = WriteBatch::default();
        for w in writes {
            match w {
                Write::PutInvocation(id, status) => {
                    b.put_cf(cf(tag::INVOCATION), keys::invocation(id), encode_status(status))
                }
                Write::DeleteInvocation(id) => b.delete_cf(cf(tag::INVOCATION), keys::invocation(id)),
                Write::PutJournal(id, index, entry) => {
                    b.put_cf(cf(tag::JOURNAL), keys::journal(id, *index), codec::encode(entry))
                }
                Write::DeleteJournal(id, len) => {
                    b.delete_range_cf(cf(tag::JOURNAL), keys::journal(id, 0), keys::journal(id, *len))
                }
                Write::PutState(obj, name, value) => b.put_cf(cf(tag::STATE), keys::state(obj, name), value),
                Write::DeleteState(obj, name) => b.delete_cf(cf(tag::STATE), keys::state(obj, name)),
                Write::ClearState(obj) => {
                    let prefix = keys::object(tag::STATE, obj);
                    b.delete_range_cf(cf(tag::STATE), &prefix, &keys::prefix_end(&prefix))
                }
                Write::PutInbox(obj, seq, id) => b.put_cf(cf(tag::INBOX), keys::inbox(obj, *seq), id.to_bytes()),
                Write::DeleteInbox(obj, seq) => b.delete_cf(cf(tag::INBOX), keys::inbox(obj, *seq)),
                Write::PutLock(obj, lock) => b.put_cf(cf(tag::LOCK), keys::lock(obj), codec::encode(lock)),
                Write::PutTimer(t) => b.put_cf(cf(tag::TIMER), keys::timer(t), []),
                Write::DeleteTimer(t) => b.delete_cf(cf(tag::TIMER), keys::timer(t)),
                Write::PutPromise(obj, name, promise) => {
                    b.put_cf(cf(tag::PROMISE), keys::promise(obj, name), codec::encode(promise))
                }
                Write::ClearPromises(obj) => {
                    let prefix = keys::object(tag::PROMISE, obj);
                    b.delete_range_cf(cf(tag::PROMISE), &prefix, &keys::prefix_end(&prefix))
                }
                Write::PutOutbox(seq, m) => b.put_cf(cf(tag::OUTBOX), keys::outbox(*seq), codec::encode(m)),
                Write::DeleteOutbox { from, to } => {
                    b.delete_range_cf(cf(tag::OUTBOX), keys::outbox(*from), keys::outbox(*to))
                }
                Write::PutPinned(d, id) => b.put_cf(cf(tag::PINNED), keys::pinned(d, id), []),
                Write::DeletePinned(d, id) => b.delete_cf(cf(tag::PINNED), keys::pinned(d, id)),
            }
        }
        b.put_cf(cf(tag::META), keys::meta(), codec::encode(meta));
        b
    }

    /// An invocation's status, from the partition that owns it.
    pub fn invocation(&self, id: &InvocationId) -> Result<Option<InvocationStatus>, StorageError> {
        let cf = self.table_cf(self.partition_of(id.partition_key), tag::INVOCATION);
        match self.db().get_pinned_cf(&cf, keys::invocation(id))? {
            Some(raw) => Ok(Some(decode_status(&raw)?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` invocations the pinned index lists under `deployment`, of every partition.
    pub fn pinned_to(&self, deployment: &DeploymentId, limit: usize) -> Result<Vec<InvocationId>, StorageError> {
        let prefix = keys::pinned_to(deployment);
        let mut out = Vec::new();
        for partition in 0..self.partitions() {
            self.scan(partition, &prefix, keys::prefix_end(&prefix), |k, _| {
                if out.len() >= limit {
                    return Ok(false);
                }
                out.push(
                    InvocationId::from_bytes(&k[prefix.len()..])
                        .ok_or_else(|| StorageError::Corrupt { table: "pinned", reason: "bad key".into() })?,
                );
                Ok(true)
            })?;
        }
        Ok(out)
    }

    /// Journal entries `0..len` of an invocation, for replay to the SDK.
    pub fn journal(&self, id: &InvocationId, len: u32) -> Result<Vec<JournalEntry>, StorageError> {
        let mut out = Vec::with_capacity(len.min(1024) as usize);
        let partition = self.partition_of(id.partition_key);
        // A short journal (a first attempt has only its input) is cheaper to read by point
        // lookups than through an iterator, whose setup and seek dominate at this size.
        if len <= JOURNAL_POINT_READS {
            for index in 0..len {
                match self.get_decoded(partition, &keys::journal(id, index))? {
                    Some(entry) => out.push(entry),
                    None => break,
                }
            }
            return Ok(out);
        }
        self.scan(partition, &keys::journal(id, 0), keys::journal(id, len).to_vec(), |_, v| {
            out.push(codec::decode(v, "journal")?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// A partition's timers with `from <= fire_at < until`, in firing order, at most `max`.
    pub fn timers(&self, partition: u32, from: u64, until: u64, max: usize) -> Result<Vec<Timer>, StorageError> {
        let mut out = Vec::new();
        self.scan(partition, &keys::timers_from(from), keys::timers_from(until).to_vec(), |k, _| {
            out.push(
                keys::parse_timer(k)
                    .ok_or_else(|| StorageError::Corrupt { table: "timer", reason: "unparseable timer key".into() })?,
            );
            Ok(out.len() < max)
        })?;
        Ok(out)
    }

    /// Undelivered outbox messages of a partition, in order.
    pub fn outbox(&self, partition: u32) -> Result<Vec<(u64, OutboxMessage)>, StorageError> {
        let prefix = [tag::OUTBOX];
        let mut out = Vec::new();
        self.scan(partition, &prefix, keys::prefix_end(&prefix), |k, v| {
            let seq = keys::parse_outbox(k)
                .ok_or_else(|| StorageError::Corrupt { table: "outbox", reason: "bad key".into() })?;
            out.push((seq, codec::decode(v, "outbox")?));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Visits the invocation records of `partition` (SQL introspection reads them) until `f`
    /// says stop.
    pub fn for_each_invocation(
        &self,
        partition: u32,
        slice: Option<KeySlice>,
        f: impl FnMut(InvocationId, InvocationStatus) -> bool,
    ) -> Result<(), StorageError> {
        self.visit_invocations(partition, false, slice, f)
    }

    /// Counts the invocation records of `partition` without decoding them (what `count(*)`
    /// over every invocation needs).
    pub fn count_invocations(&self, partition: u32, slice: Option<KeySlice>) -> Result<u64, StorageError> {
        let (start, end) = slice_bounds(tag::INVOCATION, slice);
        let mut n = 0u64;
        self.scan(partition, &start, end, |_, _| {
            n += 1;
            Ok(true)
        })?;
        Ok(n)
    }

    /// Decodes the invocation records of `partition` (only those whose attempt was running,
    /// if `running_only`: the header byte says so without decoding) and hands each to `f`
    /// until it says stop.
    fn visit_invocations(
        &self,
        partition: u32,
        running_only: bool,
        slice: Option<KeySlice>,
        mut f: impl FnMut(InvocationId, InvocationStatus) -> bool,
    ) -> Result<(), StorageError> {
        let (start, end) = slice_bounds(tag::INVOCATION, slice);
        self.scan(partition, &start, end, |k, v| {
            if running_only && v.get(1) != Some(&RUNNING) {
                return Ok(true);
            }
            let id = keys::parse_invocation(k)
                .ok_or_else(|| StorageError::Corrupt { table: "invocation", reason: "bad key".into() })?;
            Ok(f(id, decode_status(v)?))
        })
    }

    /// Visits the records of a per-object table (`table`, a tag) of `partition` (only those
    /// of `only`, a key-prefix scan, when given): the object, the rest of the key after it,
    /// and the value, until `f` says stop.
    fn visit_objects(
        &self,
        partition: u32,
        table: u8,
        only: Option<&ObjectKey>,
        mut f: impl FnMut(ObjectKey, &[u8], &[u8]) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let prefix = match only {
            Some(obj) => keys::object(table, obj),
            None => vec![table],
        };
        self.scan(partition, &prefix, keys::prefix_end(&prefix), |k, v| {
            let (obj, rest) = keys::split_object(k)
                .ok_or_else(|| StorageError::Corrupt { table: tag::table(table), reason: "bad key".into() })?;
            f(obj, rest, v)
        })
    }

    /// Visits the inbox entries of `partition` (of `only`, when given): the object, its
    /// sequence number, the invocation, until `f` says stop.
    pub fn for_each_inbox_entry(
        &self,
        partition: u32,
        only: Option<&ObjectKey>,
        mut f: impl FnMut(ObjectKey, u64, InvocationId) -> bool,
    ) -> Result<(), StorageError> {
        let corrupt = || StorageError::Corrupt { table: "inbox", reason: "bad entry".into() };
        self.visit_objects(partition, tag::INBOX, only, |obj, rest, v| {
            let seq = u64::from_be_bytes(rest.try_into().map_err(|_| corrupt())?);
            Ok(f(obj, seq, InvocationId::from_bytes(v).ok_or_else(corrupt)?))
        })
    }

    /// Visits the journal entries of `partition` (of invocation `only`, a key-prefix scan,
    /// when given): the invocation, the index, the entry, until `f` says stop.
    pub fn for_each_journal_entry(
        &self,
        partition: u32,
        only: Option<&InvocationId>,
        slice: Option<KeySlice>,
        mut f: impl FnMut(InvocationId, u32, JournalEntry) -> bool,
    ) -> Result<(), StorageError> {
        let (start, end) = match only {
            Some(id) => (keys::journal(id, 0).to_vec(), keys::journal(id, u32::MAX).to_vec()),
            None => slice_bounds(tag::JOURNAL, slice),
        };
        let corrupt = || StorageError::Corrupt { table: "journal", reason: "bad key".into() };
        self.scan(partition, &start, end, |k, v| {
            let id = InvocationId::from_bytes(k.get(1..k.len().saturating_sub(4)).ok_or_else(corrupt)?)
                .ok_or_else(corrupt)?;
            let index = u32::from_be_bytes(k[k.len() - 4..].try_into().map_err(|_| corrupt())?);
            Ok(f(id, index, codec::decode(v, "journal")?))
        })
    }

    /// Visits the state entries of `partition` (of `only`, when given): the object, the
    /// name, the value, until `f` says stop.
    pub fn for_each_state_entry(
        &self,
        partition: u32,
        only: Option<&ObjectKey>,
        mut f: impl FnMut(ObjectKey, &[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        self.visit_objects(partition, tag::STATE, only, |obj, name, v| Ok(f(obj, name, v)))
    }

    /// Visits the workflow promises of `partition` (of `only`, when given): the workflow, the
    /// promise's name, it, until `f` says stop.
    pub fn for_each_promise(
        &self,
        partition: u32,
        only: Option<&ObjectKey>,
        mut f: impl FnMut(ObjectKey, String, crate::engine::records::Promise) -> bool,
    ) -> Result<(), StorageError> {
        self.visit_objects(partition, tag::PROMISE, only, |obj, name, v| {
            Ok(f(obj, String::from_utf8_lossy(name).into_owned(), codec::decode(v, "promise")?))
        })
    }

    /// Visits the object locks of `partition` (of `only`, when given) that have a holder,
    /// until `f` says stop.
    pub fn for_each_lock_holder(
        &self,
        partition: u32,
        only: Option<&ObjectKey>,
        mut f: impl FnMut(ObjectKey, InvocationId) -> bool,
    ) -> Result<(), StorageError> {
        self.visit_objects(partition, tag::LOCK, only, |obj, _, v| {
            let lock: crate::engine::records::Lock = codec::decode(v, "lock")?;
            match lock.holder {
                Some(holder) => Ok(f(obj, holder)),
                None => Ok(true),
            }
        })
    }

    /// Visits every invocation of `partition` whose attempt was running (what a new leader
    /// restarts). Only those records are decoded.
    pub fn for_each_running_invocation(
        &self,
        partition: u32,
        mut f: impl FnMut(InvocationId, InvocationStatus),
    ) -> Result<(), StorageError> {
        self.visit_invocations(partition, true, None, |id, status| {
            f(id, status);
            true
        })
    }
}

#[cfg(test)]
impl Storage {
    /// Every record of a partition, in key order (tests compare whole states).
    pub(crate) fn dump_partition(&self, partition: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for start in tag::ALL.map(|t| [t]) {
            self.scan(partition, &start, vec![0xff; 2], |k, v| {
                out.push((k.to_vec(), v.to_vec()));
                Ok(true)
            })
            .expect("scan");
        }
        out.sort();
        out
    }
}

impl Storage {
    /// Every partition's drain counters, summed: not-completed invocations pinned to each
    /// deployment, by where they stand.
    pub fn drain_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<DeploymentId, crate::engine::records::DrainCounts>, StorageError> {
        let mut out: std::collections::BTreeMap<DeploymentId, crate::engine::records::DrainCounts> = Default::default();
        for partition in 0..self.partitions() {
            for (d, counts) in self.partition_meta(partition)?.deployments {
                out.entry(d).or_default().add(&counts);
            }
        }
        Ok(out)
    }

    /// Every partition's count of not-completed invocations per `service/handler`, summed.
    pub fn pending_by_handler(&self) -> Result<std::collections::BTreeMap<String, u64>, StorageError> {
        let mut out: std::collections::BTreeMap<String, u64> = Default::default();
        for partition in 0..self.partitions() {
            for (h, n) in self.partition_meta(partition)?.handlers {
                *out.entry(h).or_default() += n;
            }
        }
        Ok(out)
    }
}

/// Invocation records carry one byte in front of the record, after the envelope version:
/// whether the attempt was running, so a starting leader finds those without decoding the
/// (mostly completed, retained) rest.
const RUNNING: u8 = 1;

pub(super) fn encode_status(status: &InvocationStatus) -> Vec<u8> {
    let running = matches!(status.phase, crate::engine::records::Phase::Invoked) && status.attempt.in_flight;
    let mut out = Vec::with_capacity(128);
    codec::encode_into(status, &mut out);
    out.insert(1, if running { RUNNING } else { 0 });
    out
}

/// Partition keys `from..until` (`until` `None`: to the end), a slice of a table keyed by
/// partition key first, so several threads can scan one table side by side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySlice {
    pub from: u64,
    pub until: Option<u64>,
}

impl KeySlice {
    /// Slice `i` of `n` equal slices of the partition key space.
    pub fn nth(i: usize, n: usize) -> Self {
        let width = (u64::MAX / n as u64).max(1);
        let at = |k: usize| (k as u64).saturating_mul(width);
        KeySlice { from: at(i), until: (i + 1 < n).then(|| at(i + 1)) }
    }
}

/// The key bounds of `slice` (or the whole table) of a table whose keys are tag ‖ partition key ‖ ….
fn slice_bounds(table: u8, slice: Option<KeySlice>) -> (Vec<u8>, Vec<u8>) {
    let at = |pk: u64| {
        let mut k = vec![table];
        k.extend_from_slice(&pk.to_be_bytes());
        k
    };
    match slice {
        None => (vec![table], keys::prefix_end(&[table])),
        Some(s) => (at(s.from), s.until.map_or_else(|| keys::prefix_end(&[table]), at)),
    }
}

pub(super) fn decode_status(raw: &[u8]) -> Result<InvocationStatus, StorageError> {
    if raw.len() < 2 {
        return Err(StorageError::Corrupt { table: "invocation", reason: "record too short".into() });
    }
    codec::decode_body(raw[0], &raw[2..], "invocation")
}

/// The engine's reads. Reads route by partition key to the partition that owns it; a
/// failure reaches the engine as a [`crate::engine::store::StoreError`] carrying the
/// [`StorageError`] (readers outside the engine call the inherent methods, which answer the
/// `StorageError` itself).
impl Store for Storage {
    fn invocation(&self, id: &InvocationId) -> StoreResult<Option<InvocationStatus>> {
        Ok(Storage::invocation(self, id)?)
    }

    fn journal_entry(&self, id: &InvocationId, index: u32) -> StoreResult<Option<JournalEntry>> {
        Ok(self.get_decoded(self.partition_of(id.partition_key), &keys::journal(id, index))?)
    }

    fn state(&self, obj: &ObjectKey, name: &[u8]) -> StoreResult<Option<Bytes>> {
        let cf = self.table_cf(self.partition_of(obj.partition_key()), tag::STATE);
        let v = self.db().get_cf(&cf, keys::state(obj, name)).map_err(StorageError::from)?;
        Ok(v.map(Bytes::from))
    }

    fn state_all(&self, obj: &ObjectKey) -> StoreResult<Vec<(Bytes, Bytes)>> {
        let prefix = keys::object(tag::STATE, obj);
        let mut out = Vec::new();
        self.scan(self.partition_of(obj.partition_key()), &prefix, keys::prefix_end(&prefix), |k, v| {
            out.push((Bytes::copy_from_slice(&k[prefix.len()..]), Bytes::copy_from_slice(v)));
            Ok(true)
        })?;
        Ok(out)
    }

    fn inbox_next(&self, obj: &ObjectKey, from_seq: u64) -> StoreResult<Option<(u64, InvocationId)>> {
        let prefix = keys::object(tag::INBOX, obj);
        let mut found = None;
        self.scan(
            self.partition_of(obj.partition_key()),
            &keys::inbox(obj, from_seq),
            keys::prefix_end(&prefix),
            |k, v| {
                let seq = u64::from_be_bytes(
                    k[prefix.len()..]
                        .try_into()
                        .map_err(|_| StorageError::Corrupt { table: "inbox", reason: "bad key".into() })?,
                );
                let id = InvocationId::from_bytes(v)
                    .ok_or_else(|| StorageError::Corrupt { table: "inbox", reason: "bad value".into() })?;
                found = Some((seq, id));
                Ok(false)
            },
        )?;
        Ok(found)
    }

    fn lock(&self, obj: &ObjectKey) -> StoreResult<Option<Lock>> {
        Ok(self.get_decoded(self.partition_of(obj.partition_key()), &keys::lock(obj))?)
    }

    fn promise(&self, obj: &ObjectKey, name: &str) -> StoreResult<Option<Promise>> {
        Ok(self.get_decoded(self.partition_of(obj.partition_key()), &keys::promise(obj, name))?)
    }

    fn pinned_to(&self, deployment: &DeploymentId, limit: usize) -> StoreResult<Vec<InvocationId>> {
        Ok(Storage::pinned_to(self, deployment, limit)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::records::*;

    fn status(phase: Phase, in_flight: bool) -> InvocationStatus {
        let target = Target {
            service: "Greeter".into(),
            handler: "greet".into(),
            key: None,
            service_kind: ServiceKind::Service,
            handler_kind: HandlerKind::Unkeyed,
        };
        let mut s = InvocationStatus::sample(target, phase);
        s.attempt = AttemptState { attempt: 1, in_flight, ..Default::default() };
        s
    }

    #[test]
    fn a_starting_leader_finds_running_invocations_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::Database::open(dir.path(), &Default::default(), 2).unwrap();
        let storage = db.storage();
        let running = InvocationId::generate(10);
        let backing_off = InvocationId::generate(11);
        let done = InvocationId::generate(12);
        let elsewhere = InvocationId::generate(u64::MAX - 1);
        assert_eq!((storage.partition_of(10), storage.partition_of(u64::MAX - 1)), (0, 1));
        let writes = [
            Write::PutInvocation(running, Box::new(status(Phase::Invoked, true))),
            Write::PutInvocation(backing_off, Box::new(status(Phase::Invoked, false))),
            Write::PutInvocation(
                done,
                Box::new(status(Phase::Completed { result: InvocationResult::Success(Bytes::new()) }, false)),
            ),
            Write::PutInvocation(elsewhere, Box::new(status(Phase::Invoked, true))),
        ];
        storage.write_partition_state(0, &writes[..3], &PartitionMeta::default()).unwrap();
        storage.write_partition_state(1, &writes[3..], &PartitionMeta::default()).unwrap();
        let mut found = Vec::new();
        storage.for_each_running_invocation(0, |id, s| found.push((id, s.attempt.in_flight))).unwrap();
        assert_eq!(found, vec![(running, true)]);
        // Every record still reads back whole.
        assert!(storage.invocation(&done).unwrap().unwrap().is_completed());
        assert_eq!(storage.invocation(&backing_off).unwrap().unwrap().phase, Phase::Invoked);
    }

    #[test]
    fn journals_read_the_same_by_point_lookups_and_by_scan() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::Database::open(dir.path(), &Default::default(), 1).unwrap();
        let storage = db.storage();
        let id = InvocationId::generate(7);
        let entry = |i: u32| JournalEntry {
            ty: 0x0400 + i as u16,
            payload: Bytes::from(format!("entry {i}")),
            appended_at: u64::from(i),
        };
        let writes: Vec<Write> = (0..10).map(|i| Write::PutJournal(id, i, entry(i))).collect();
        storage.write_partition_state(0, &writes, &PartitionMeta::default()).unwrap();
        for len in [0, 1, JOURNAL_POINT_READS, JOURNAL_POINT_READS + 1, 10] {
            let got = storage.journal(&id, len).unwrap();
            let want: Vec<JournalEntry> = (0..len).map(entry).collect();
            assert_eq!(got, want, "len {len}");
        }
        // Asking for more than there is gives what there is, either way (the caller checks).
        let other = InvocationId::generate(8);
        storage.write_partition_state(0, &[Write::PutJournal(other, 0, entry(0))], &PartitionMeta::default()).unwrap();
        assert_eq!(storage.journal(&other, 3).unwrap().len(), 1);
        assert_eq!(storage.journal(&other, 9).unwrap().len(), 1);
    }
}

#[cfg(test)]
mod slice_tests {
    use super::KeySlice;

    #[test]
    fn slices_cover_the_partition_key_space_without_overlap() {
        for n in 1..=4 {
            let slices: Vec<KeySlice> = (0..n).map(|i| KeySlice::nth(i, n)).collect();
            assert_eq!(slices[0].from, 0);
            assert_eq!(slices[n - 1].until, None, "the last slice runs to the end");
            for pair in slices.windows(2) {
                assert_eq!(pair[0].until, Some(pair[1].from), "{pair:?}");
            }
        }
    }
}
