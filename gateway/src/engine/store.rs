//! How the state machine reads and writes: [`Store`] is the small synchronous read trait it
//! sees; [`Txn`] layers the writes of the batch being applied over a store, so later
//! commands of a batch read what earlier ones wrote, and collects them as [`Write`]s for
//! `storage/` to turn into one write batch. A `Txn` over [`EmptyStore`] is a complete
//! in-memory store, which is what the engine's tests use.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use std::cell::RefCell;

use crate::ids::{DeploymentId, InvocationId};

use super::records::{
    Census, InvocationStatus, JournalEntry, Lock, ObjectKey, OutboxMessage, PartitionMeta, Promise, Timer,
};

/// A storage failure while reading, carrying the store's own error as its source (the
/// engine does not know which store it reads). The partition cannot continue past it.
#[derive(Debug, thiserror::Error)]
#[error("storage read failed: {0}")]
pub struct StoreError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps the error of the store that failed to read.
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(cause))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Reads the state machine needs.
pub trait Store {
    fn invocation(&self, id: &InvocationId) -> StoreResult<Option<InvocationStatus>>;
    fn journal_entry(&self, id: &InvocationId, index: u32) -> StoreResult<Option<JournalEntry>>;
    fn state(&self, obj: &ObjectKey, name: &[u8]) -> StoreResult<Option<Bytes>>;
    /// All state entries of an object, sorted by name.
    fn state_all(&self, obj: &ObjectKey) -> StoreResult<Vec<(Bytes, Bytes)>>;
    /// The first inbox entry of `obj` with sequence number `>= from_seq`.
    fn inbox_next(&self, obj: &ObjectKey, from_seq: u64) -> StoreResult<Option<(u64, InvocationId)>>;
    fn lock(&self, obj: &ObjectKey) -> StoreResult<Option<Lock>>;
    fn promise(&self, obj: &ObjectKey, name: &str) -> StoreResult<Option<Promise>>;
    /// Up to `limit` invocations the pinned index lists under `deployment`, of any partition
    /// (check their status: the index can include ones the batch being applied changed).
    fn pinned_to(&self, deployment: &DeploymentId, limit: usize) -> StoreResult<Vec<InvocationId>>;
}

/// One change to stored state.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    PutInvocation(InvocationId, Box<InvocationStatus>),
    DeleteInvocation(InvocationId),
    PutJournal(InvocationId, u32, JournalEntry),
    /// Remove journal entries `0..len`.
    DeleteJournal(InvocationId, u32),
    PutState(ObjectKey, Bytes, Bytes),
    DeleteState(ObjectKey, Bytes),
    ClearState(ObjectKey),
    PutInbox(ObjectKey, u64, InvocationId),
    DeleteInbox(ObjectKey, u64),
    PutLock(ObjectKey, Lock),
    PutTimer(Timer),
    DeleteTimer(Timer),
    PutPromise(ObjectKey, String, Promise),
    /// Remove every promise of a workflow instance.
    ClearPromises(ObjectKey),
    PutOutbox(u64, OutboxMessage),
    /// Remove outbox entries `from..to`.
    DeleteOutbox {
        from: u64,
        to: u64,
    },
    /// The pinned index: this invocation is pinned to this deployment and not completed.
    PutPinned(DeploymentId, InvocationId),
    DeletePinned(DeploymentId, InvocationId),
}

/// A store with nothing in it.
pub struct EmptyStore;

impl Store for EmptyStore {
    fn invocation(&self, _: &InvocationId) -> StoreResult<Option<InvocationStatus>> {
        Ok(None)
    }
    fn journal_entry(&self, _: &InvocationId, _: u32) -> StoreResult<Option<JournalEntry>> {
        Ok(None)
    }
    fn state(&self, _: &ObjectKey, _: &[u8]) -> StoreResult<Option<Bytes>> {
        Ok(None)
    }
    fn state_all(&self, _: &ObjectKey) -> StoreResult<Vec<(Bytes, Bytes)>> {
        Ok(Vec::new())
    }
    fn inbox_next(&self, _: &ObjectKey, _: u64) -> StoreResult<Option<(u64, InvocationId)>> {
        Ok(None)
    }
    fn lock(&self, _: &ObjectKey) -> StoreResult<Option<Lock>> {
        Ok(None)
    }
    fn promise(&self, _: &ObjectKey, _: &str) -> StoreResult<Option<Promise>> {
        Ok(None)
    }
    fn pinned_to(&self, _: &DeploymentId, _: usize) -> StoreResult<Vec<InvocationId>> {
        Ok(Vec::new())
    }
}

#[derive(Default)]
struct StateOverlay {
    cleared: bool,
    entries: BTreeMap<Bytes, Option<Bytes>>,
}

/// Writes of the batch being applied, readable before they are stored.
pub struct Txn<'a, S: Store> {
    base: &'a S,
    invocations: HashMap<InvocationId, Option<InvocationStatus>>,
    journal: HashMap<(InvocationId, u32), Option<JournalEntry>>,
    state: HashMap<ObjectKey, StateOverlay>,
    inbox: BTreeMap<(ObjectKey, u64), Option<InvocationId>>,
    locks: HashMap<ObjectKey, Lock>,
    /// Promises written here; `cleared` objects read as empty below what is written.
    promises: HashMap<(ObjectKey, String), Option<Promise>>,
    promises_cleared: std::collections::HashSet<ObjectKey>,
    /// The partition's counters; written back by the driver with the batch.
    pub meta: PartitionMeta,
    writes: Vec<Write>,
    /// What the counters held for each invocation read from the base store, before this
    /// batch changed it.
    originals: RefCell<HashMap<InvocationId, Census>>,
}

impl<'a, S: Store> Txn<'a, S> {
    pub fn new(base: &'a S, meta: PartitionMeta) -> Self {
        Self {
            base,
            invocations: HashMap::new(),
            journal: HashMap::new(),
            state: HashMap::new(),
            inbox: BTreeMap::new(),
            locks: HashMap::new(),
            promises: HashMap::new(),
            promises_cleared: Default::default(),
            meta,
            writes: Vec::new(),
            originals: RefCell::new(HashMap::new()),
        }
    }

    /// The writes collected, and the partition counters. Invocation statuses are written
    /// once each, in their final form for the batch; the drain counters and the pinned index
    /// move from what each invocation was to what it is, in the same batch.
    pub fn into_writes(mut self) -> StoreResult<(Vec<Write>, PartitionMeta)> {
        let originals = std::mem::take(self.originals.get_mut());
        for (id, status) in std::mem::take(&mut self.invocations) {
            let before = match originals.get(&id) {
                Some(census) => census.clone(),
                None => Census::of(self.base.invocation(&id)?.as_ref()),
            };
            let after = Census::of(status.as_ref());
            self.meta.recount(&before, &after);
            let (was, is) = (before.pinned.map(|p| p.0), after.pinned.map(|p| p.0));
            if was != is {
                if let Some(d) = was {
                    self.writes.push(Write::DeletePinned(d, id));
                }
                if let Some(d) = is {
                    self.writes.push(Write::PutPinned(d, id));
                }
            }
            self.writes.push(match status {
                Some(status) => Write::PutInvocation(id, Box::new(status)),
                None => Write::DeleteInvocation(id),
            });
        }
        Ok((self.writes, self.meta))
    }

    pub fn put_invocation(&mut self, id: InvocationId, status: InvocationStatus) {
        self.invocations.insert(id, Some(status));
    }

    pub fn delete_invocation(&mut self, id: InvocationId) {
        self.invocations.insert(id, None);
    }

    pub fn put_journal(&mut self, id: InvocationId, index: u32, entry: JournalEntry) {
        self.journal.insert((id, index), Some(entry.clone()));
        self.writes.push(Write::PutJournal(id, index, entry));
    }

    pub fn delete_journal(&mut self, id: InvocationId, len: u32) {
        for index in 0..len {
            self.journal.insert((id, index), None);
        }
        self.writes.push(Write::DeleteJournal(id, len));
    }

    pub fn put_state(&mut self, obj: &ObjectKey, name: Bytes, value: Bytes) {
        self.state.entry(obj.clone()).or_default().entries.insert(name.clone(), Some(value.clone()));
        self.writes.push(Write::PutState(obj.clone(), name, value));
    }

    pub fn delete_state(&mut self, obj: &ObjectKey, name: Bytes) {
        self.state.entry(obj.clone()).or_default().entries.insert(name.clone(), None);
        self.writes.push(Write::DeleteState(obj.clone(), name));
    }

    pub fn clear_state(&mut self, obj: &ObjectKey) {
        let overlay = self.state.entry(obj.clone()).or_default();
        overlay.cleared = true;
        overlay.entries.clear();
        self.writes.push(Write::ClearState(obj.clone()));
    }

    pub fn push_inbox(&mut self, obj: &ObjectKey, id: InvocationId) -> u64 {
        let seq = self.meta.next_inbox_seq;
        self.meta.next_inbox_seq = self.meta.next_inbox_seq.saturating_add(1);
        self.inbox.insert((obj.clone(), seq), Some(id));
        self.writes.push(Write::PutInbox(obj.clone(), seq, id));
        seq
    }

    pub fn delete_inbox(&mut self, obj: &ObjectKey, seq: u64) {
        self.inbox.insert((obj.clone(), seq), None);
        self.writes.push(Write::DeleteInbox(obj.clone(), seq));
    }

    pub fn put_lock(&mut self, obj: &ObjectKey, lock: Lock) {
        self.locks.insert(obj.clone(), lock);
        self.writes.push(Write::PutLock(obj.clone(), lock));
    }

    pub fn put_promise(&mut self, obj: &ObjectKey, name: &str, promise: Promise) {
        self.promises.insert((obj.clone(), name.to_owned()), Some(promise.clone()));
        self.writes.push(Write::PutPromise(obj.clone(), name.to_owned(), promise));
    }

    pub fn clear_promises(&mut self, obj: &ObjectKey) {
        self.promises.retain(|(o, _), _| o != obj);
        self.promises_cleared.insert(obj.clone());
        self.writes.push(Write::ClearPromises(obj.clone()));
    }

    pub fn put_timer(&mut self, timer: Timer) {
        self.writes.push(Write::PutTimer(timer));
    }

    pub fn delete_timer(&mut self, timer: Timer) {
        self.writes.push(Write::DeleteTimer(timer));
    }

    /// Adds a message to the outbox and returns its sequence number.
    pub fn push_outbox(&mut self, message: OutboxMessage) -> u64 {
        let seq = self.meta.next_outbox_seq;
        self.meta.next_outbox_seq = self.meta.next_outbox_seq.saturating_add(1);
        self.writes.push(Write::PutOutbox(seq, message));
        seq
    }

    pub fn delete_outbox(&mut self, from: u64, to: u64) {
        if from < to {
            self.writes.push(Write::DeleteOutbox { from, to });
        }
    }
}

impl<S: Store> Store for Txn<'_, S> {
    fn invocation(&self, id: &InvocationId) -> StoreResult<Option<InvocationStatus>> {
        match self.invocations.get(id) {
            Some(v) => Ok(v.clone()),
            None => {
                let stored = self.base.invocation(id)?;
                self.originals.borrow_mut().entry(*id).or_insert_with(|| Census::of(stored.as_ref()));
                Ok(stored)
            }
        }
    }

    fn pinned_to(&self, deployment: &DeploymentId, limit: usize) -> StoreResult<Vec<InvocationId>> {
        let mut ids: std::collections::BTreeSet<InvocationId> =
            self.base.pinned_to(deployment, limit)?.into_iter().collect();
        for (id, status) in &self.invocations {
            if status.as_ref().and_then(|s| s.bound_to()).is_some_and(|d| &d == deployment) {
                ids.insert(*id);
            }
        }
        Ok(ids.into_iter().take(limit).collect())
    }

    fn journal_entry(&self, id: &InvocationId, index: u32) -> StoreResult<Option<JournalEntry>> {
        match self.journal.get(&(*id, index)) {
            Some(v) => Ok(v.clone()),
            None => self.base.journal_entry(id, index),
        }
    }

    fn state(&self, obj: &ObjectKey, name: &[u8]) -> StoreResult<Option<Bytes>> {
        if let Some(overlay) = self.state.get(obj) {
            if let Some(v) = overlay.entries.get(name) {
                return Ok(v.clone());
            }
            if overlay.cleared {
                return Ok(None);
            }
        }
        self.base.state(obj, name)
    }

    fn state_all(&self, obj: &ObjectKey) -> StoreResult<Vec<(Bytes, Bytes)>> {
        let overlay = self.state.get(obj);
        let mut merged: BTreeMap<Bytes, Bytes> = match overlay {
            Some(o) if o.cleared => BTreeMap::new(),
            _ => self.base.state_all(obj)?.into_iter().collect(),
        };
        if let Some(o) = overlay {
            for (k, v) in &o.entries {
                match v {
                    Some(v) => merged.insert(k.clone(), v.clone()),
                    None => merged.remove(k),
                };
            }
        }
        Ok(merged.into_iter().collect())
    }

    fn inbox_next(&self, obj: &ObjectKey, from_seq: u64) -> StoreResult<Option<(u64, InvocationId)>> {
        // The first base entry not deleted here...
        let mut cursor = from_seq;
        let from_base = loop {
            match self.base.inbox_next(obj, cursor)? {
                Some((seq, id)) => match self.inbox.get(&(obj.clone(), seq)) {
                    Some(None) => cursor = seq.saturating_add(1),
                    _ => break Some((seq, id)),
                },
                None => break None,
            }
        };
        // ...against the first entry added here.
        let from_overlay = self
            .inbox
            .range((obj.clone(), from_seq)..=(obj.clone(), u64::MAX))
            .find_map(|((_, seq), id)| id.map(|id| (*seq, id)));
        Ok(match (from_base, from_overlay) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        })
    }

    fn lock(&self, obj: &ObjectKey) -> StoreResult<Option<Lock>> {
        match self.locks.get(obj) {
            Some(lock) => Ok(Some(*lock)),
            None => self.base.lock(obj),
        }
    }

    fn promise(&self, obj: &ObjectKey, name: &str) -> StoreResult<Option<Promise>> {
        match self.promises.get(&(obj.clone(), name.to_owned())) {
            Some(v) => Ok(v.clone()),
            None if self.promises_cleared.contains(obj) => Ok(None),
            None => self.base.promise(obj, name),
        }
    }
}
