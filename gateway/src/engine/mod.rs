//! The engine: partitions and their deterministic state machine.
//!
//! Owns invocations, journals, state, inboxes and key locks, timers and the outbox between
//! partitions. Two parts, kept apart:
//! - **the state machine** (every file here but `partition/`): pure and deterministic, no
//!   tokio, no clock, no I/O; it reads through [`store::Store`] and answers with writes and
//!   [`action::Action`]s. [`machine`] is its entry point and says who calls whom.
//! - **its driver**, [`partition`]: the task that owns a partition's log and state, the
//!   [`partition::router::Router`] between partitions and the timer queue. It uses tokio,
//!   `storage/` and the invoker's handle; HTTP to deployments belongs to `invoker/`, clients
//!   to `ingress/`.
//!
//! The driving loop, per partition ([`partition::Partition::run`]):
//! 1. Requests arrive on the partition's channel ([`partition::router::Request`]): commands from
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

// The pure core.
pub mod action;
pub mod command;
mod completion;
mod control;
pub mod ctx;
mod effects;
pub mod entries;
mod invoke;
mod journal;
pub mod machine;
pub mod partitions;
pub mod records;
pub mod store;
mod timers;

// Its driver.
pub mod partition;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
