//! Fired timers: sleeps complete, backoffs end, delayed invocations start, retention ends.

use super::completion::purge;
use super::ctx::Ctx;
use super::entries;
use super::invoke::{start_attempt, start_or_enqueue};
use super::journal::on_notify;
use super::records::{NotificationResult, Phase, Timer, TimerKind};
use super::store::{Store, StoreResult};
use crate::protocol::messages::ty;

pub fn on_timer<S: Store>(ctx: &mut Ctx<'_, '_, S>, timer: Timer) -> StoreResult<()> {
    ctx.txn.delete_timer(timer.clone());
    let id = timer.invocation;
    match timer.kind {
        TimerKind::Sleep { completion_id } => {
            let n = entries::completion(ty::SLEEP_COMPLETION_NOTIFICATION, completion_id, NotificationResult::Void);
            on_notify(ctx, id, n)
        }
        TimerKind::Retry { attempt } => {
            let Some(mut status) = ctx.status(&id)? else { return Ok(()) };
            let backing_off = matches!(status.phase, Phase::Invoked)
                && !status.attempt.in_flight
                && status.attempt.attempt == attempt;
            if backing_off {
                start_attempt(ctx, id, &mut status);
                ctx.save(id, status);
            }
            Ok(())
        }
        TimerKind::Scheduled => {
            let Some(status) = ctx.status(&id)? else { return Ok(()) };
            if matches!(status.phase, Phase::Scheduled { .. }) {
                start_or_enqueue(ctx, id, status)?;
            }
            Ok(())
        }
        TimerKind::Cleanup => {
            let Some(status) = ctx.status(&id)? else { return Ok(()) };
            if status.is_completed() {
                purge(ctx, id, &status);
            }
            Ok(())
        }
        TimerKind::JournalCleanup => {
            let Some(mut status) = ctx.status(&id)? else { return Ok(()) };
            if status.is_completed() && !status.journal_purged {
                ctx.txn.delete_journal(id, status.journal_len);
                status.journal_purged = true;
                ctx.save(id, status);
            }
            Ok(())
        }
    }
}
