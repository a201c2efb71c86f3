//! The engine: the deterministic state machine of a partition.
//!
//! Owns what commands mean for invocations, journals, state, inboxes and key locks, timers
//! and the outbox between partitions. Pure and deterministic: no tokio, no clock, no I/O, no
//! randomness; it reads through [`store::Store`] and answers with writes and
//! [`action::Action`]s, plain data that the partition service (`crate::partition`) performs
//! once the batch that produced them is durable. [`machine`] is its entry point and says who
//! calls whom; [`keyspace`] says which partition owns which keys.
//!
//! Applying a command only changes state and emits actions, so replaying a partition's log
//! rebuilds the same state.

pub mod action;
pub mod command;
mod completion;
mod control;
pub mod ctx;
mod effects;
pub mod entries;
mod invoke;
mod journal;
pub mod keyspace;
pub mod machine;
pub mod records;
pub mod store;
mod timers;

#[cfg(test)]
mod tests;
