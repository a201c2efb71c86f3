//! What an attempt reports back: pinning, journal commands, run proposals, and how the
//! attempt ended (suspension, end, failure with retry policy).

use super::command::{Effect, EffectBatch};
use super::completion::complete;
use super::ctx::Ctx;
use super::entries;
use super::invoke::{schedule, start_attempt};
use super::journal::{self, Callee, append_notification, waits_for};
use super::records::{
    FailureInfo, InvocationResult, InvocationStatus, OnMaxAttempts, Phase, Timer, TimerKind, WaitSet,
};
use super::store::{Store, StoreResult};
use crate::ids::InvocationId;
use crate::protocol::codes;
use crate::protocol::messages::ty;

pub fn on_effects<S: Store>(ctx: &mut Ctx<'_, '_, S>, batch: EffectBatch) -> StoreResult<()> {
    let id = batch.id;
    let Some(mut status) = ctx.status(&id)? else { return Ok(()) };
    let current =
        matches!(status.phase, Phase::Invoked) && status.attempt.in_flight && status.attempt.attempt == batch.attempt;
    if !current {
        // A late report of an attempt that was superseded, killed or already ended.
        return Ok(());
    }
    for effect in batch.effects {
        match effect {
            Effect::Pinned(pinned) => {
                status.deployment.get_or_insert(pinned);
            }
            Effect::Command { ty, payload, call_target, call_policy, call_trace } => {
                let callee = match (call_target, call_policy) {
                    (Some(target), Some((retry_policy, retention))) => {
                        Some(Callee { target, retry_policy, retention, trace: call_trace })
                    }
                    _ => None,
                };
                if let journal::Applied::Impossible(failure) =
                    journal::on_command(ctx, id, &mut status, ty, payload, callee)?
                {
                    // No retry can apply it: the invocation ends, and its running attempt stops.
                    let result = InvocationResult::Failure { code: failure.code, message: failure.message.clone() };
                    status.attempt.last_failure = Some(failure);
                    complete(ctx, id, status, result)?;
                    return Ok(());
                }
            }
            Effect::ProposeRun { completion_id, result } => {
                let n = entries::completion(ty::RUN_COMPLETION_NOTIFICATION, completion_id, result.into());
                append_notification(ctx, id, &mut status, n);
            }
            Effect::Suspended(waiting) => {
                suspend(ctx, id, &mut status, waiting)?;
                break;
            }
            Effect::Ended => {
                end(ctx, id, status)?;
                return Ok(());
            }
            Effect::Failed { failure, terminal: true, .. } => {
                // Nothing can run it any more (its deployment or handler is gone): no retry.
                status.attempt.in_flight = false;
                let result = InvocationResult::Failure { code: failure.code, message: failure.message.clone() };
                status.attempt.last_failure = Some(failure);
                complete(ctx, id, status, result)?;
                return Ok(());
            }
            Effect::Failed { failure, next_retry_delay_ms, terminal: false } => {
                if fail(ctx, id, &mut status, failure, next_retry_delay_ms)? {
                    return Ok(());
                }
                break;
            }
            Effect::Settings { retry_policy, retention } => {
                status.retry_policy = retry_policy;
                status.retention = retention;
            }
            Effect::Held { message } => {
                status.attempt.in_flight = false;
                status.attempt.next_retry_at_ms = None;
                status.attempt.last_failure =
                    Some(FailureInfo { code: codes::UNAVAILABLE, message, ..Default::default() });
                status.phase = Phase::Paused;
                status.held = true;
                break;
            }
        }
    }
    ctx.save(id, status);
    Ok(())
}

/// Parks the invocation, unless something it waits for already arrived during the attempt.
fn suspend<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    status: &mut InvocationStatus,
    waiting: WaitSet,
) -> StoreResult<()> {
    status.attempt.in_flight = false;
    for index in status.attempt.known_entries..status.journal_len {
        let Some(entry) = ctx.txn.journal_entry(&id, index)? else { continue };
        if crate::protocol::messages::is_notification(entry.ty)
            && entries::notification_id(&entry.payload).is_some_and(|n| waits_for(&waiting, &n))
        {
            start_attempt(ctx, id, status);
            return Ok(());
        }
    }
    status.phase = Phase::Suspended { waiting };
    Ok(())
}

/// The SDK ended the invocation: its Output command holds the result.
fn end<S: Store>(ctx: &mut Ctx<'_, '_, S>, id: InvocationId, mut status: InvocationStatus) -> StoreResult<()> {
    let result = match status.output_index {
        Some(index) => ctx.txn.journal_entry(&id, index)?.and_then(|e| entries::output_result(&e.payload)),
        None => None,
    };
    match result {
        Some(result) => {
            // The attempt is finishing by itself: no abort.
            status.attempt.in_flight = false;
            complete(ctx, id, status, result)
        }
        None => {
            let failure = FailureInfo {
                code: codes::PROTOCOL_VIOLATION,
                message: "protocol violation: the deployment sent End without an Output command".into(),
                ..Default::default()
            };
            if !fail(ctx, id, &mut status, failure, None)? {
                ctx.save(id, status);
            }
            Ok(())
        }
    }
}

/// Records a failed attempt and schedules the next one by the retry policy. Returns true if
/// the invocation was completed (killed after its last attempt) and saved.
fn fail<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    status: &mut InvocationStatus,
    failure: FailureInfo,
    next_retry_delay_ms: Option<u64>,
) -> StoreResult<bool> {
    status.attempt.in_flight = false;
    status.attempt.failures = status.attempt.failures.saturating_add(1);
    status.attempt.retry_count = status.attempt.retry_count.saturating_add(1);
    let message = failure.message.clone();
    status.attempt.last_failure = Some(failure);
    if status.retry_policy.exhausted(status.attempt.failures) {
        match status.retry_policy.on_max_attempts {
            OnMaxAttempts::Pause => {
                status.phase = Phase::Paused;
                return Ok(false);
            }
            OnMaxAttempts::Kill => {
                let result = InvocationResult::Failure { code: codes::INTERNAL, message };
                complete(ctx, id, status.clone(), result)?;
                return Ok(true);
            }
        }
    }
    let delay = next_retry_delay_ms.unwrap_or_else(|| status.retry_policy.delay_ms(status.attempt.failures));
    let fire_at = ctx.now.saturating_add(delay);
    status.attempt.next_retry_at_ms = Some(fire_at);
    schedule(ctx, Timer { fire_at, invocation: id, kind: TimerKind::Retry { attempt: status.attempt.attempt } });
    Ok(false)
}
