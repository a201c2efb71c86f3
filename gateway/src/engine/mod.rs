//! The engine: partitions and their deterministic state machine.
//!
//! Owns invocations, journals, state, inboxes and key locks, timers and the outbox between
//! partitions. Does no I/O of its own beyond `storage/`: HTTP to deployments belongs to
//! `invoker/`, clients to `ingress/`.
//!
//! The driving loop, per partition ([`partition::Partition::run`]):
//! 1. Requests arrive on the partition's channel ([`router::Request`]): commands from
//!    ingress, the invoker, timers and other partitions' outboxes.
//! 2. The batch of waiting commands is applied in order by [`machine::apply`] to a
//!    [`store::Txn`] over storage: pure, deterministic, time passed in as `now`.
//! 3. The commands are appended to the partition's log as one entry (one fsync shared by
//!    the whole batch); the writes they produced go to RocksDB.
//! 4. Only then: replies to whoever waits, and every [`action::Action`] is performed
//!    (start attempts, forward notifications, arm timers, ship outbox messages).
//!
//! Applying a command only changes state and emits actions, so replaying the log after a
//! crash rebuilds the same state; the leader then recreates the actions that matter.

pub mod action;
pub mod command;
mod completion;
mod control;
mod effects;
pub mod entries;
mod invoke;
mod journal;
pub mod machine;
pub mod partition;
pub mod records;
pub mod router;
pub mod store;
pub mod timer_queue;
mod timers;

#[cfg(test)]
mod tests;
