//! Creating invocations and starting their attempts: new invocations, deduplication by id
//! (idempotency keys, workflow runs), delays, and the per-key lock with its inbox.

use super::action::{Action, InvokeAttempt};
use super::command::{InvokeRequest, Outcome};
use super::ctx::Ctx;
use super::entries;
use super::records::{
    AttemptState, HandlerKind, InvocationResult, InvocationStatus, JournalEntry, Lock, OutboxMessage, Phase, Timer,
    TimerKind, Timestamps,
};
use super::store::{Store, StoreResult};
use crate::ids::InvocationId;
use crate::protocol::codes;

pub fn on_invoke<S: Store>(ctx: &mut Ctx<'_, '_, S>, req: InvokeRequest) -> StoreResult<Outcome> {
    let id = req.id;
    if req.target.handler_kind.takes_lock() && req.target.key.is_none() {
        // Ingress and the invoker give keyed handlers their key; a request without one could
        // not take the key's lock, so it ends here and the caller (if any) hears why.
        let result = InvocationResult::Failure {
            code: codes::BAD_REQUEST,
            message: format!("{} needs a key", req.target.display()),
        };
        if let Some(sink) = &req.sink {
            let (target, notification) = sink.notification(result.clone());
            ctx.route(OutboxMessage::Notify { target, notification });
        }
        return Ok(Outcome::Completed { result, expires_at: None });
    }
    if let Some(mut existing) = ctx.status(&id)? {
        return attach_to_existing(ctx, id, &mut existing, &req);
    }

    let mut status = InvocationStatus {
        target: req.target,
        phase: Phase::Invoked,
        source: req.source,
        idempotency_key: req.idempotency_key,
        deployment: None,
        journal_len: 1,
        commands: 1,
        journal_modified_at: ctx.now,
        output_index: None,
        attempt: AttemptState::default(),
        sinks: req.sink.into_iter().collect(),
        retry_policy: req.retry_policy,
        retention: req.retention,
        timestamps: Timestamps { created_at: ctx.now, modified_at: ctx.now, ..Default::default() },
        journal_purged: false,
        requested_deployment: req.deployment,
        held: false,
        trace: req.trace,
    };
    let input = entries::input(&req.headers, req.body);
    ctx.txn.put_journal(id, 0, JournalEntry { ty: input.0, payload: input.1, appended_at: ctx.now });

    match req.execute_at {
        Some(at) if at > ctx.now => {
            status.phase = Phase::Scheduled { at_ms: at };
            status.timestamps.scheduled_at = Some(ctx.now);
            schedule(ctx, Timer { fire_at: at, invocation: id, kind: TimerKind::Scheduled });
            ctx.save(id, status);
        }
        _ => start_or_enqueue(ctx, id, status)?,
    }
    Ok(Outcome::Accepted)
}

/// A request for an id that exists: the same idempotent request again, or a second
/// workflow run for the same key.
fn attach_to_existing<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    existing: &mut InvocationStatus,
    req: &InvokeRequest,
) -> StoreResult<Outcome> {
    // A second `run` of a finished workflow is refused; an idempotent request gets the
    // stored result back.
    let result = existing.result().map(|result| match existing.target.handler_kind {
        HandlerKind::Workflow => InvocationResult::Failure {
            code: codes::CONFLICT,
            message: "the workflow method was already invoked".into(),
        },
        _ => result.clone(),
    });
    match (&result, &req.sink) {
        (Some(result), Some(sink)) => {
            let (target, notification) = sink.notification(result.clone());
            ctx.route(OutboxMessage::Notify { target, notification });
        }
        (None, Some(sink)) => {
            existing.sinks.push(sink.clone());
            ctx.save(id, existing.clone());
        }
        _ => {}
    }
    Ok(match result {
        Some(result) => Outcome::Completed { result, expires_at: existing.expires_at() },
        None => Outcome::PreviouslyAccepted,
    })
}

/// Runs the invocation now, or queues it behind the key's lock holder.
pub fn start_or_enqueue<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    mut status: InvocationStatus,
) -> StoreResult<()> {
    if status.target.handler_kind.takes_lock() {
        let obj = status.target.object().expect("on_invoke refuses keyed targets without a key");
        let lock = ctx.txn.lock(&obj)?.unwrap_or_default();
        if lock.holder.is_some() {
            let seq = ctx.txn.push_inbox(&obj, id);
            status.phase = Phase::Inboxed { seq };
            status.timestamps.inboxed_at = Some(ctx.now);
            ctx.save(id, status);
            return Ok(());
        }
        ctx.txn.put_lock(&obj, Lock { holder: Some(id), ..lock });
    }
    start_attempt(ctx, id, &mut status);
    ctx.save(id, status);
    Ok(())
}

/// Starts the next attempt; the caller saves `status`.
pub fn start_attempt<S: Store>(ctx: &mut Ctx<'_, '_, S>, id: InvocationId, status: &mut InvocationStatus) {
    status.phase = Phase::Invoked;
    status.attempt.attempt = status.attempt.attempt.saturating_add(1);
    status.attempt.in_flight = true;
    status.attempt.next_retry_at_ms = None;
    status.attempt.known_entries = status.journal_len;
    status.attempt.last_start_at_ms = Some(ctx.now);
    status.timestamps.running_at.get_or_insert(ctx.now);
    ctx.actions.push(Action::Invoke(Box::new(InvokeAttempt::of(id, status))));
}

/// Stores a timer and asks the driver to arm it.
pub fn schedule<S: Store>(ctx: &mut Ctx<'_, '_, S>, timer: Timer) {
    ctx.txn.put_timer(timer.clone());
    ctx.actions.push(Action::ScheduleTimer(timer));
}
