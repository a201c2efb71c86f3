//! The state machine's entry point: [`apply`] takes one command, routes it to the file that
//! owns it, then applies the messages that command sent to invocations of this same partition
//! (and the ones those sent, in order) until none is left. Everything under `engine/` is
//! deterministic: time arrives as `now`, ids arrive inside commands, and side effects leave
//! as [`Action`]s.
//!
//! Who calls whom (a tree; [`Ctx`] and [`PartitionInfo`] are leaves every handler uses):
//! `apply` → {`invoke`, `effects`, `timers`, `control`, `journal`}; `effects` → {`journal`,
//! `completion`}; `timers`, `control` → {`completion`, `journal`}; `journal`, `completion` →
//! `invoke`.

use super::action::Action;
use super::command::{Command, ControlRequest, Outcome};
use super::ctx::Ctx;
use super::keyspace::PartitionInfo;
use super::records::OutboxMessage;
use super::store::{Store, StoreResult, Txn};

/// Applies one command, then every message it sent within this partition. Store errors
/// abort the batch: the partition stops rather than diverge from its log.
pub fn apply<S: Store>(
    txn: &mut Txn<'_, S>,
    now: u64,
    partition: &PartitionInfo,
    command: Command,
    actions: &mut Vec<Action>,
) -> StoreResult<Outcome> {
    let mut ctx = Ctx::new(txn, now, partition, actions);
    let outcome = match command {
        Command::Invoke(request) => super::invoke::on_invoke(&mut ctx, *request)?,
        Command::Effects(batch) => {
            super::effects::on_effects(&mut ctx, *batch)?;
            Outcome::None
        }
        Command::TimerFired(timer) => {
            super::timers::on_timer(&mut ctx, timer)?;
            Outcome::None
        }
        Command::Shuffle { source, seq, message } => {
            let seen = ctx.txn.meta.dedup.get(&source).copied();
            if seen.is_none_or(|last| seq > last) {
                ctx.txn.meta.dedup.insert(source, seq);
                deliver(&mut ctx, message)?;
            }
            Outcome::None
        }
        Command::Control { id, request } => super::control::on_control(&mut ctx, id, request)?,
        Command::Notify { target, notification } => {
            super::journal::on_notify(&mut ctx, target, notification)?;
            Outcome::None
        }
        Command::DeploymentRemoved { deployment } => {
            super::control::on_deployment_removed(&mut ctx, deployment)?;
            Outcome::None
        }
        Command::DeploymentResumed { deployment } => {
            super::control::on_deployment_resumed(&mut ctx, deployment)?;
            Outcome::None
        }
        Command::OutboxDelivered { upto } => {
            let from = ctx.txn.meta.outbox_delivered;
            if upto > from {
                ctx.txn.delete_outbox(from, upto);
                ctx.txn.meta.outbox_delivered = upto;
            }
            Outcome::None
        }
    };
    while let Some(message) = ctx.next_local() {
        deliver(&mut ctx, message)?;
    }
    Ok(outcome)
}

/// Applies a message addressed to an invocation of this partition.
fn deliver<S: Store>(ctx: &mut Ctx<'_, '_, S>, message: OutboxMessage) -> StoreResult<()> {
    match message {
        OutboxMessage::Invoke(request) => super::invoke::on_invoke(ctx, *request).map(|_| ()),
        OutboxMessage::Notify { target, notification } => super::journal::on_notify(ctx, target, notification),
        OutboxMessage::Attach { target, caller, completion_id, wait } => {
            super::journal::on_attach(ctx, target, caller, completion_id, wait)
        }
        OutboxMessage::Kill { target } => super::control::on_control(ctx, target, ControlRequest::Kill).map(|_| ()),
    }
}
