//! The state machine's entry point: [`apply`] takes one command and routes it to the file
//! that owns it. Everything under `engine/` is deterministic: time arrives as `now`, ids
//! arrive inside commands, and side effects leave as [`Action`]s.

use std::ops::RangeInclusive;

use super::action::Action;
use super::command::{Command, ControlRequest, Outcome};
use super::records::{InvocationStatus, OutboxMessage};
use super::store::{Store, StoreResult, Txn};
use crate::ids::InvocationId;

/// Which part of the key space a partition owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    pub id: u32,
    pub keys: RangeInclusive<u64>,
}

impl PartitionInfo {
    pub fn owns(&self, partition_key: u64) -> bool {
        self.keys.contains(&partition_key)
    }
}

/// What applying one command needs: the batch's transaction, the leader's clock, the
/// partition's identity, and the list that collects actions.
pub struct Ctx<'t, 'a, S: Store> {
    pub txn: &'t mut Txn<'a, S>,
    pub now: u64,
    pub partition: &'t PartitionInfo,
    pub actions: &'t mut Vec<Action>,
}

impl<S: Store> Ctx<'_, '_, S> {
    pub fn status(&self, id: &InvocationId) -> StoreResult<Option<InvocationStatus>> {
        self.txn.invocation(id)
    }

    pub fn save(&mut self, id: InvocationId, mut status: InvocationStatus) {
        status.timestamps.modified_at = self.now;
        self.txn.put_invocation(id, status);
    }

    /// Delivers a message to the partition that owns its target: applied right here when
    /// that is this partition, else put in the outbox and shipped after commit.
    pub fn route(&mut self, message: OutboxMessage) -> StoreResult<()> {
        if self.partition.owns(message.partition_key()) {
            self.deliver(message)
        } else {
            let seq = self.txn.push_outbox(message.clone());
            self.actions.push(Action::Ship { seq, message });
            Ok(())
        }
    }

    /// Applies a message addressed to this partition.
    pub fn deliver(&mut self, message: OutboxMessage) -> StoreResult<()> {
        match message {
            OutboxMessage::Invoke(request) => super::invoke::on_invoke(self, *request).map(|_| ()),
            OutboxMessage::Notify { target, notification } => {
                super::journal::on_notify(self, target, notification)
            }
            OutboxMessage::Attach { target, caller, completion_id, wait } => {
                super::journal::on_attach(self, target, caller, completion_id, wait)
            }
            OutboxMessage::Kill { target } => super::control::on_control(self, target, ControlRequest::Kill).map(|_| ()),
        }
    }
}

/// Applies one command. Store errors abort the batch: the partition stops rather than
/// diverge from its log.
pub fn apply<S: Store>(
    txn: &mut Txn<'_, S>,
    now: u64,
    partition: &PartitionInfo,
    command: Command,
    actions: &mut Vec<Action>,
) -> StoreResult<Outcome> {
    let mut ctx = Ctx { txn, now, partition, actions };
    match command {
        Command::Invoke(request) => super::invoke::on_invoke(&mut ctx, *request),
        Command::Effects(batch) => super::effects::on_effects(&mut ctx, *batch).map(|_| Outcome::None),
        Command::TimerFired(timer) => super::timers::on_timer(&mut ctx, timer).map(|_| Outcome::None),
        Command::Shuffle { source, seq, message } => {
            let seen = ctx.txn.meta.dedup.get(&source).copied();
            if seen.is_none_or(|last| seq > last) {
                ctx.txn.meta.dedup.insert(source, seq);
                ctx.deliver(message)?;
            }
            Ok(Outcome::None)
        }
        Command::Control { id, request } => super::control::on_control(&mut ctx, id, request),
        Command::Notify { target, notification } => {
            super::journal::on_notify(&mut ctx, target, notification).map(|_| Outcome::None)
        }
        Command::OutboxDelivered { upto } => {
            let from = ctx.txn.meta.outbox_delivered;
            if upto > from {
                ctx.txn.delete_outbox(from, upto);
                ctx.txn.meta.outbox_delivered = upto;
            }
            Ok(Outcome::None)
        }
    }
}
