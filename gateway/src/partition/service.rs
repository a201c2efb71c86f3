//! [`Partition`]: the task that owns one partition's log and state, and drives the engine.
//!
//! 1. On start, replay the log entries after the applied LSN stored with the state (they
//!    are durable but their effects may not have reached disk before a crash).
//! 2. Lead: arm every stored timer, re-ship the outbox, restart attempts that were running.
//! 3. Loop: take every waiting request (group commit), apply the commands to a [`Txn`],
//!    append them to the log as one entry (one fsync), write the derived state, and only
//!    then answer requests and perform the actions.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::Attempts;
use super::handle::{Answer, Handle, Inbox, Lane, Rejected, Reply, ReplyMode, Request};
use super::timer_queue::TimerQueue;
use crate::durations::now_ms;
use crate::engine::action::Action;
use crate::engine::command::{Command, LogBatch, LogBatchRef, Outcome};
use crate::engine::keyspace::PartitionInfo;
use crate::engine::machine::apply;
use crate::engine::records::{InvocationResult, PartitionMeta, Phase};
use crate::engine::store::Txn;
use crate::ids::InvocationId;
use crate::storage::log::{Log, Lsn};
use crate::storage::{Storage, StorageError, codec};

/// Most requests taken into one batch.
const MAX_BATCH: usize = 512;

/// Why a partition's task stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Store(#[from] crate::engine::store::StoreError),
    #[error(transparent)]
    Log(#[from] crate::storage::log::LogError),
    #[error(transparent)]
    Append(#[from] crate::storage::log::AppendError),
    /// A command in the log cannot be applied (a bug): the partition stops at it instead of
    /// crashing at every restart; the rest of the server keeps serving.
    #[error(
        "partition {partition} stopped: command {index} of log entry {lsn} cannot be applied: {reason}; the command: {command}"
    )]
    Replay { partition: u32, lsn: Lsn, index: usize, command: String, reason: String },
}

pub struct Partition<L: Log> {
    info: PartitionInfo,
    storage: Storage,
    log: L,
    tail: Lsn,
    meta: PartitionMeta,
    requests: Inbox,
    /// Every partition, this one included: where outbox messages go.
    partitions: Handle,
    attempts: Arc<dyn Attempts>,
    /// Timers due soon; later ones wait in storage.
    timers: TimerQueue,
    /// Clients waiting for invocations to complete.
    waiters: HashMap<InvocationId, Vec<oneshot::Sender<Answer>>>,
    /// Shipped outbox messages confirmed by their targets, not yet contiguous.
    delivered: BTreeSet<u64>,
    /// The LSN whose state was last written, read by the flusher before trimming.
    applied: Arc<AtomicU64>,
    last_now: u64,
    /// Batches since waiters whose clients left were last swept.
    batches_since_sweep: u32,
}

/// A batch applied to a transaction: the transaction, each command's outcome, the actions.
type Applied<'s> = (Txn<'s, Storage>, Vec<Outcome>, Vec<Action>);

/// The first command of a batch that could not be applied.
struct Failed {
    index: usize,
    reason: String,
}

/// Applies a batch of commands in order. A command that panics or fails to read its state
/// stops the batch: a panic must never escape into the partition task, or a logged command
/// would crash the server again at every replay.
fn apply_all<'s>(
    storage: &'s Storage,
    meta: PartitionMeta,
    now: u64,
    info: &PartitionInfo,
    commands: Vec<Command>,
) -> Result<Applied<'s>, Failed> {
    let mut txn = Txn::new(storage, meta);
    let mut actions = Vec::new();
    let mut outcomes = Vec::with_capacity(commands.len());
    for (index, command) in commands.into_iter().enumerate() {
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply(&mut txn, now, info, command, &mut actions)
        }));
        match applied {
            Ok(Ok(outcome)) => outcomes.push(outcome),
            Ok(Err(e)) => return Err(Failed { index, reason: e.to_string() }),
            Err(panic) => {
                let reason = format!("applying it panicked: {}", crate::panic_message(panic));
                return Err(Failed { index, reason });
            }
        }
    }
    Ok((txn, outcomes, actions))
}

/// A command's `Debug` form, cut to 2000 characters.
fn describe(command: Option<&Command>) -> String {
    let Some(command) = command else { return "(not in the entry)".into() };
    let mut shown = format!("{command:?}");
    if shown.len() > 2000 {
        let cut = (0..=2000).rev().find(|&i| shown.is_char_boundary(i)).unwrap_or(0);
        shown.truncate(cut);
        shown.push('…');
    }
    shown
}

/// What the server wires into a partition's task.
pub struct Wiring<L: Log> {
    pub info: PartitionInfo,
    pub storage: Storage,
    pub log: L,
    /// The log's last LSN.
    pub tail: Lsn,
    pub inbox: Inbox,
    /// Every partition, this one included: where outbox messages go.
    pub partitions: Handle,
    /// Where attempts run (the invoker).
    pub attempts: Arc<dyn Attempts>,
    /// Where the task publishes the LSN whose state it wrote (for trimming and the node port).
    pub applied: Arc<AtomicU64>,
}

impl<L: Log> Partition<L> {
    pub fn new(wiring: Wiring<L>) -> Result<Self, RunError> {
        let Wiring { info, storage, log, tail, inbox, partitions, attempts, applied } = wiring;
        let meta = storage.partition_meta(info.id)?;
        applied.store(meta.applied_lsn, Ordering::Release);
        Ok(Self {
            info,
            storage,
            log,
            tail,
            meta,
            requests: inbox,
            partitions,
            attempts,
            timers: TimerQueue::default(),
            waiters: HashMap::new(),
            delivered: BTreeSet::new(),
            applied,
            last_now: 0,
            batches_since_sweep: 0,
        })
    }

    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) -> Result<(), RunError> {
        self.replay().await?;
        self.lead()?;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let sleep = Duration::from_millis(self.timers.next_wakeup().saturating_sub(now_ms()));
            let first = tokio::select! {
                biased;
                _ = shutdown.changed() => return Ok(()),
                request = self.requests.work.recv() => request,
                request = self.requests.ingress.recv() => request,
                _ = tokio::time::sleep(sleep) => {
                    self.process(Vec::new()).await?;
                    continue;
                }
            };
            let Some(first) = first else { return Ok(()) };
            batch.push(first);
            self.take_more(&mut batch);
            self.process(std::mem::take(&mut batch)).await?;
            batch.reserve(MAX_BATCH);
        }
    }

    /// Fills a batch taking from both inboxes in turn: work under way keeps moving however
    /// many new requests wait, and new requests still get in.
    fn take_more(&mut self, batch: &mut Vec<Request>) {
        let Inbox { work, ingress } = &mut self.requests;
        while batch.len() < MAX_BATCH {
            let before = batch.len();
            if let Ok(request) = work.try_recv() {
                batch.push(request);
            }
            if batch.len() < MAX_BATCH
                && let Ok(request) = ingress.try_recv()
            {
                batch.push(request);
            }
            if batch.len() == before {
                return;
            }
        }
    }

    /// Re-applies log entries the stored state does not contain yet. Their actions were
    /// performed (or lost) before the restart; [`Partition::lead`] recreates what matters.
    async fn replay(&mut self) -> Result<(), RunError> {
        loop {
            let entries = self.log.read(self.meta.applied_lsn, 64).await?;
            if entries.is_empty() {
                return Ok(());
            }
            for entry in entries {
                let batch: LogBatch = codec::decode(&entry.batch, "log")?;
                let (mut txn, _, _) =
                    apply_all(&self.storage, self.meta.clone(), batch.now, &self.info, batch.commands).map_err(
                        |failed| RunError::Replay {
                            partition: self.info.id,
                            lsn: entry.lsn,
                            index: failed.index,
                            command: codec::decode::<LogBatch>(&entry.batch, "log")
                                .map(|b| describe(b.commands.get(failed.index)))
                                .unwrap_or_default(),
                            reason: failed.reason,
                        },
                    )?;
                txn.meta.applied_lsn = entry.lsn;
                let (writes, meta) = txn.into_writes()?;
                self.storage.write_partition_state(self.info.id, &writes, &meta)?;
                self.applied(meta);
                self.last_now = batch.now;
            }
        }
    }

    /// Takes over: arms timers, re-ships undelivered outbox messages, restarts attempts
    /// that were running when the previous leader stopped.
    fn lead(&mut self) -> Result<(), RunError> {
        self.refill_timers(now_ms())?;
        for (seq, message) in self.storage.outbox(self.info.id)? {
            self.perform(Action::Ship { seq, message });
        }
        // By id only: a large backlog costs the invoker a few bytes each until it runs.
        let attempts = &self.attempts;
        self.storage.for_each_running_invocation(self.info.id, |id, status| {
            attempts.invoke_later(id, status.attempt.attempt)
        })?;
        Ok(())
    }

    fn refill_timers(&mut self, now: u64) -> Result<(), RunError> {
        let (storage, partition) = (&self.storage, self.info.id);
        Ok(self.timers.refill(now, |from, until, max| storage.timers(partition, from, until, max))?)
    }

    /// The derived state of a batch is now in storage: remember where it stands.
    fn applied(&mut self, meta: PartitionMeta) {
        self.applied.store(meta.applied_lsn, Ordering::Release);
        self.meta = meta;
    }

    /// Applies one group of requests and commits it.
    async fn process(&mut self, requests: Vec<Request>) -> Result<(), RunError> {
        let now = now_ms().max(self.last_now);
        self.last_now = now;
        self.batches_since_sweep += 1;
        if self.batches_since_sweep >= 1024 {
            // Clients that gave up on long invocations (paused, say) leave closed senders.
            self.batches_since_sweep = 0;
            self.waiters.retain(|_, senders| {
                senders.retain(|s| !s.is_closed());
                !senders.is_empty()
            });
        }

        let mut commands = Vec::new();
        let mut replies = Vec::new();
        let mut reads = Vec::new();
        for request in requests {
            match request {
                Request::Command { command, reply } => {
                    let id = match &command {
                        Command::Invoke(req) => Some(req.id),
                        _ => None,
                    };
                    commands.push(command);
                    replies.push((reply, id));
                }
                Request::Delivered { seq } => {
                    self.delivered.insert(seq);
                }
                read @ (Request::Attach { .. } | Request::Output { .. }) => reads.push(read),
            }
        }
        if self.timers.needs_refill(now) {
            self.refill_timers(now)?;
        }
        while let Some(timer) = self.timers.pop_due(now) {
            commands.push(Command::TimerFired(timer));
            replies.push((ReplyMode::None, None));
        }
        let mut upto = self.meta.outbox_delivered;
        while self.delivered.remove(&upto) {
            upto += 1;
        }
        if upto > self.meta.outbox_delivered {
            commands.push(Command::OutboxDelivered { upto });
            replies.push((ReplyMode::None, None));
        }

        let mut actions = Vec::new();
        if !commands.is_empty() {
            let mut entry = codec::encode(&LogBatchRef { now, commands: &commands });
            let (txn, outcomes, applied_actions) =
                match apply_all(&self.storage, self.meta.clone(), now, &self.info, commands) {
                    Ok(applied) => applied,
                    Err(failed) => {
                        let (applied, kept) = self.reject(now, &entry, failed, &mut replies)?;
                        entry = codec::encode(&LogBatchRef { now, commands: &kept });
                        applied
                    }
                };
            actions = applied_actions;
            // Once the entry is durable, the derived state follows on the same thread.
            let (writes, mut meta) = txn.into_writes()?;
            let storage = self.storage.clone();
            let partition = self.info.id;
            let (lsn, written) = self
                .log
                .append_then(self.tail, 0, Bytes::from(entry), move |lsn| {
                    meta.applied_lsn = lsn;
                    storage.write_partition_state(partition, &writes, &meta).map(|()| meta)
                })
                .await?;
            self.tail = lsn;
            self.applied(written?);
            for ((reply, id), outcome) in replies.into_iter().zip(outcomes) {
                self.answer(reply, id, outcome);
            }
        }
        for action in actions {
            self.perform(action);
        }
        for read in reads {
            self.read(read)?;
        }
        Ok(())
    }

    /// Some command of a batch could not be applied (it panicked, or a read failed): it is
    /// left out of the log, its submitter is told why, and the rest of the batch is applied
    /// again from the encoded entry (applying is deterministic, so it gives what it gave).
    fn reject(
        &self,
        now: u64,
        entry: &[u8],
        mut failed: Failed,
        replies: &mut Vec<(ReplyMode, Option<InvocationId>)>,
    ) -> Result<(Applied<'_>, Vec<Command>), RunError> {
        let mut commands = codec::decode::<LogBatch>(entry, "log")?.commands;
        loop {
            tracing::error!(
                partition = self.info.id,
                command = %describe(commands.get(failed.index)),
                "rejected a command that cannot be applied: {}",
                failed.reason
            );
            commands.remove(failed.index);
            let (reply, _) = replies.remove(failed.index);
            match reply {
                ReplyMode::Applied(tx) | ReplyMode::Completion(tx) => {
                    let _ = tx.send(Err(Rejected(failed.reason.clone())));
                }
                ReplyMode::None => {}
            }
            match apply_all(&self.storage, self.meta.clone(), now, &self.info, commands.clone()) {
                Ok(applied) => return Ok((applied, commands)),
                Err(next) => failed = next,
            }
        }
    }

    fn answer(&mut self, reply: ReplyMode, id: Option<InvocationId>, outcome: Outcome) {
        match (reply, outcome) {
            (ReplyMode::None, _) => {}
            (ReplyMode::Applied(tx), outcome) => {
                let _ = tx.send(Ok(Reply::Applied(outcome)));
            }
            (ReplyMode::Completion(tx), Outcome::Completed { result, expires_at }) => {
                let _ = tx.send(Ok(Reply::Completed { result, expires_at }));
            }
            (ReplyMode::Completion(tx), outcome) => match id {
                // The result arrives with the invocation's `Completed` action.
                Some(id) => self.waiters.entry(id).or_default().push(tx),
                None => {
                    let _ = tx.send(Ok(Reply::Applied(outcome)));
                }
            },
        }
    }

    fn read(&mut self, request: Request) -> Result<(), RunError> {
        let (id, reply, attach) = match request {
            Request::Attach { id, reply } => (id, reply, true),
            Request::Output { id, reply } => (id, reply, false),
            _ => return Ok(()),
        };
        let answer = match self.storage.invocation(&id)? {
            None => Reply::NotFound,
            Some(status) => match (status.expires_at(), status.phase) {
                (expires_at, Phase::Completed { result }) => Reply::Completed { result, expires_at },
                _ if attach => {
                    self.waiters.entry(id).or_default().push(reply);
                    return Ok(());
                }
                _ => Reply::NotReady,
            },
        };
        let _ = reply.send(Ok(answer));
        Ok(())
    }

    /// Performs one action, after its batch is durable.
    fn perform(&mut self, action: Action) {
        match action {
            Action::Invoke(attempt) => self.attempts.invoke(attempt),
            Action::Forward { id, attempt, index, entry } => self.attempts.forward(id, attempt, index, entry),
            Action::Abort { id, attempt } => self.attempts.abort(id, attempt),
            Action::Completed { id, result, traced, .. } => {
                crate::metrics::invocation_completed(matches!(result, InvocationResult::Success(_)));
                if let Some(run) = traced {
                    crate::traces::record(crate::traces::invocation_span(id, &run, &result));
                }
                // Whoever waited sees the completion itself, not a stored result: no expiry
                // (as Restate answers a first completion).
                for waiter in self.waiters.remove(&id).unwrap_or_default() {
                    let _ = waiter.send(Ok(Reply::Completed { result: result.clone(), expires_at: None }));
                }
            }
            Action::Forgotten { id } => {
                for waiter in self.waiters.remove(&id).unwrap_or_default() {
                    let _ = waiter.send(Ok(Reply::NotFound));
                }
            }
            Action::ScheduleTimer(timer) => self.timers.arm(timer),
            Action::Ship { seq, message } => {
                let (source, own_key) = (self.info.id, *self.info.keys.start());
                let target = message.partition_key();
                let (tx, rx) = oneshot::channel();
                let request = Request::Command {
                    command: Command::Shuffle { source, seq, message },
                    reply: ReplyMode::Applied(tx),
                };
                // Sent now, so that messages reach each target in the order they were shipped.
                if self.partitions.send(Lane::Work, target, request).is_err() {
                    return;
                }
                // Delivered once the target answers (it has the message in its log, or rejected
                // it); until then it stays in the outbox and the next leader ships it again.
                let partitions = self.partitions.clone();
                tokio::spawn(async move {
                    if rx.await.is_ok() {
                        let _ = partitions.send(Lane::Work, own_key, Request::Delivered { seq });
                    }
                });
            }
        }
    }
}
