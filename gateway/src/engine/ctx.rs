//! What a handler of the state machine works with: the batch's transaction, the leader's
//! clock, the partition's identity, the actions it asks for, and the messages it sends.
//!
//! Messages between invocations are data: [`Ctx::route`] puts one for another partition in
//! the outbox (shipped after commit), and one for this partition in a queue that
//! [`super::machine::apply`] drains after the handler returns. No handler ever runs inside
//! another one's read-decide-write: each reads what it needs, decides, and writes once.

use std::collections::VecDeque;

use super::action::Action;
use super::keyspace::PartitionInfo;
use super::records::{InvocationStatus, OutboxMessage};
use super::store::{Store, StoreResult, Txn};
use crate::ids::InvocationId;

pub struct Ctx<'t, 'a, S: Store> {
    pub txn: &'t mut Txn<'a, S>,
    pub now: u64,
    pub partition: &'t PartitionInfo,
    pub actions: &'t mut Vec<Action>,
    /// Messages to invocations of this partition, in the order they were sent.
    local: VecDeque<OutboxMessage>,
}

impl<'t, 'a, S: Store> Ctx<'t, 'a, S> {
    pub fn new(txn: &'t mut Txn<'a, S>, now: u64, partition: &'t PartitionInfo, actions: &'t mut Vec<Action>) -> Self {
        Self { txn, now, partition, actions, local: VecDeque::new() }
    }

    pub fn status(&self, id: &InvocationId) -> StoreResult<Option<InvocationStatus>> {
        self.txn.invocation(id)
    }

    pub fn save(&mut self, id: InvocationId, mut status: InvocationStatus) {
        status.timestamps.modified_at = self.now;
        self.txn.put_invocation(id, status);
    }

    /// Sends a message to the partition that owns its target: queued to be applied after the
    /// current handler when that is this partition, else put in the outbox and shipped after
    /// commit.
    pub fn route(&mut self, message: OutboxMessage) {
        if self.partition.owns(message.partition_key()) {
            self.local.push_back(message);
        } else {
            let seq = self.txn.push_outbox(message.clone());
            self.actions.push(Action::Ship { seq, message });
        }
    }

    /// The next message for this partition, in sending order.
    pub fn next_local(&mut self) -> Option<OutboxMessage> {
        self.local.pop_front()
    }
}
