//! Completing an invocation: store the result, answer callers and waiting clients, release
//! the key's lock to the next invocation in its inbox, and plan the cleanup by retention.

use super::action::{Action, TracedRun};
use super::ctx::Ctx;
use super::invoke::{schedule, start_attempt};
use super::records::{InvocationResult, InvocationStatus, Lock, OutboxMessage, Phase, Timer, TimerKind};
use super::store::{Store, StoreResult};
use crate::ids::InvocationId;

pub fn complete<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    mut status: InvocationStatus,
    result: InvocationResult,
) -> StoreResult<()> {
    if status.attempt.in_flight {
        ctx.actions.push(Action::Abort { id, attempt: status.attempt.attempt });
    }
    status.attempt.in_flight = false;
    status.phase = Phase::Completed { result: result.clone() };
    status.timestamps.completed_at = Some(ctx.now);

    for sink in std::mem::take(&mut status.sinks) {
        let (target, notification) = sink.notification(result.clone());
        ctx.route(OutboxMessage::Notify { target, notification });
    }
    let traced = TracedRun::of(&status, ctx.now);
    ctx.actions.push(Action::Completed { id, result, expires_at: status.expires_at(), traced });

    // The result is kept for the completion retention; the journal for the journal
    // retention, which never outlives the result.
    let keep = status.retention.completion_ms;
    let journal = status.retention.journal_ms.min(keep);
    if journal == 0 {
        ctx.txn.delete_journal(id, status.journal_len);
        status.journal_purged = true;
    } else if journal < keep {
        schedule(
            ctx,
            Timer { fire_at: ctx.now.saturating_add(journal), invocation: id, kind: TimerKind::JournalCleanup },
        );
    }
    let lock_taker = status.target.handler_kind.takes_lock().then(|| status.target.object()).flatten();
    if keep == 0 {
        ctx.txn.delete_invocation(id);
    } else {
        schedule(ctx, Timer { fire_at: ctx.now.saturating_add(keep), invocation: id, kind: TimerKind::Cleanup });
        ctx.save(id, status);
    }

    if let Some(obj) = lock_taker {
        let lock = ctx.txn.lock(&obj)?.unwrap_or_default();
        if lock.holder == Some(id) {
            // Hand the lock to the first invocation waiting in the inbox, if any.
            let mut next_lock = Lock { holder: None, inbox_from: lock.inbox_from };
            while let Some((seq, next)) = ctx.txn.inbox_next(&obj, next_lock.inbox_from)? {
                ctx.txn.delete_inbox(&obj, seq);
                next_lock.inbox_from = seq.saturating_add(1);
                if let Some(mut next_status) = ctx.status(&next)? {
                    next_lock.holder = Some(next);
                    start_attempt(ctx, next, &mut next_status);
                    ctx.save(next, next_status);
                    break;
                }
            }
            ctx.txn.put_lock(&obj, next_lock);
        }
    }
    Ok(())
}

/// Removes a completed invocation whose retention ended.
pub fn purge<S: Store>(ctx: &mut Ctx<'_, '_, S>, id: InvocationId, status: &InvocationStatus) {
    if !status.journal_purged {
        ctx.txn.delete_journal(id, status.journal_len);
    }
    // A workflow's state and promises live as long as its run is remembered.
    if status.target.handler_kind == super::records::HandlerKind::Workflow
        && let Some(obj) = status.target.object()
    {
        ctx.txn.clear_state(&obj);
        ctx.txn.clear_promises(&obj);
    }
    ctx.txn.delete_invocation(id);
    ctx.actions.push(Action::Forgotten { id });
}
