//! The partition service: one task per partition owns its log and its state and drives the
//! engine's state machine over them; everyone else reaches the partitions through a cheap,
//! cloneable [`Handle`].
//!
//! Owns: the order in which commands are applied (the log), group commit, answering whoever
//! waits, performing the engine's actions once they are durable, the timers due soon, the
//! outbox's delivery to other partitions. Does not own: what a command means (`engine/`), how
//! bytes reach the disk (`storage/`), HTTP to deployments (`invoker/`) or to clients
//! (`ingress/`).
//!
//! The driving loop, per partition ([`Partition::run`]):
//! 1. Requests arrive on the partition's two queues ([`Lane`]): commands from ingress, the
//!    invoker, timers, admin and other partitions' outboxes, and reads (attach, output).
//! 2. The batch of waiting commands is applied in order by [`crate::engine::machine::apply`]
//!    to a [`crate::engine::store::Txn`] over storage: pure, deterministic, time passed in as
//!    `now`.
//! 3. The commands are appended to the partition's log as one entry (one fsync shared by the
//!    whole batch); the writes they produced go to RocksDB.
//! 4. Only then: replies to whoever waits, and every [`crate::engine::action::Action`] is
//!    performed (start attempts, forward notifications, arm timers, ship outbox messages).
//!
//! Applying a command only changes state and emits actions, so replaying the log after a
//! crash rebuilds the same state; the leader then recreates the actions that matter.
//!
//! Cluster mode plugs in here: leadership (a partition led by another node is reached by
//! forwarding through the handle), epochs on the log, and stepping down.

#[cfg(test)]
mod fuzz;
mod handle;
mod service;
mod timer_queue;

pub use handle::{Answer, Error, Handle, Inbox, Lane, Rejected, Reply, ReplyMode, Request};
pub use service::{Partition, RunError, Wiring};

use crate::engine::action::InvokeAttempt;
use crate::engine::records::JournalEntry;
use crate::ids::InvocationId;

/// Where a partition's attempts run: the invoker, told after each commit. A port, so that the
/// partition does not depend on how attempts reach deployments.
pub trait Attempts: Send + Sync + 'static {
    /// Start this attempt (as soon as a slot is free).
    fn invoke(&self, attempt: Box<InvokeAttempt>);
    /// Start this attempt when a slot is free, reading it from storage then (a leader
    /// restarting what was running: cheap to hold many).
    fn invoke_later(&self, id: InvocationId, attempt: u32);
    /// A notification for a running attempt, to forward to the SDK if the attempt streams.
    fn forward(&self, id: InvocationId, attempt: u32, index: u32, entry: JournalEntry);
    /// Stop the running attempt without telling the SDK anything more.
    fn abort(&self, id: InvocationId, attempt: u32);
}
