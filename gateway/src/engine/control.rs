//! What operators do to invocations through the admin API: cancel (the handler sees it and
//! may compensate), kill (stop now, cascading to callees), purge, restart as new, pause and
//! resume.

use prost::Message as _;

use super::command::{ControlOutcome, ControlRequest, InvokeRequest, Outcome};
use super::completion::{complete, purge};
use super::ctx::Ctx;
use super::invoke::{on_invoke, start_attempt};
use super::journal::append_notification;
use super::records::{
    HandlerKind, InvocationResult, InvocationStatus, Notification, NotificationId, NotificationResult, OutboxMessage,
    Phase, Source,
};
use super::store::{Store, StoreResult};
use crate::ids::{DeploymentId, InvocationId};
use crate::protocol::codes;
use crate::protocol::messages::{InputCommandMessage, NotificationMessage, NotificationResult as WireResult, ty};

/// The signal index of cancellation (spec §8: 1 = CANCEL).
const CANCEL_SIGNAL: u32 = 1;

pub fn on_control<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    request: ControlRequest,
) -> StoreResult<Outcome> {
    let Some(status) = ctx.status(&id)? else {
        return Ok(Outcome::Control(ControlOutcome::NotFound));
    };
    let outcome = match request {
        ControlRequest::Cancel => cancel(ctx, id, status)?,
        ControlRequest::Kill => kill(ctx, id, status)?,
        ControlRequest::Purge if status.is_completed() => {
            purge(ctx, id, &status);
            ControlOutcome::Done
        }
        ControlRequest::PurgeJournal if status.is_completed() => {
            let mut status = status;
            if !status.journal_purged {
                ctx.txn.delete_journal(id, status.journal_len);
                status.journal_purged = true;
                ctx.save(id, status);
            }
            ControlOutcome::Done
        }
        ControlRequest::Purge | ControlRequest::PurgeJournal => ControlOutcome::NotCompleted,
        ControlRequest::RestartAsNew { new_id } => restart_as_new(ctx, id, status, new_id)?,
        ControlRequest::Pause => pause(ctx, id, status),
        ControlRequest::Resume => resume(ctx, id, status),
        ControlRequest::ResumeOn { deployment } => resume_on(ctx, id, status, deployment),
    };
    Ok(Outcome::Control(outcome))
}

/// A deployment was removed with `force`: every not-completed invocation of this partition
/// pinned to it ends with a terminal error naming it (nothing can run its journal any more).
pub fn on_deployment_removed<S: Store>(ctx: &mut Ctx<'_, '_, S>, deployment: DeploymentId) -> StoreResult<()> {
    for id in ctx.txn.pinned_to(&deployment, usize::MAX)? {
        if !ctx.partition.owns(id.partition_key) {
            continue;
        }
        let Some(status) = ctx.status(&id)? else { continue };
        if status.bound_to() != Some(deployment) || status.is_completed() {
            continue;
        }
        let message = if status.deployment.is_some() {
            format!(
                "the deployment {deployment} that {} was pinned to was removed (force) before it completed",
                status.target.display()
            )
        } else {
            format!(
                "the deployment {deployment} that {} was sent to (x-perdure-deployment) was removed (force) before it started",
                status.target.display()
            )
        };
        complete(ctx, id, status, InvocationResult::Failure { code: codes::GONE, message })?;
    }
    Ok(())
}

/// Every invocation of this partition that `deployment`'s pause held goes on.
pub fn on_deployment_resumed<S: Store>(ctx: &mut Ctx<'_, '_, S>, deployment: DeploymentId) -> StoreResult<()> {
    for id in ctx.txn.pinned_to(&deployment, usize::MAX)? {
        if !ctx.partition.owns(id.partition_key) {
            continue;
        }
        let Some(mut status) = ctx.status(&id)? else { continue };
        if status.phase != Phase::Paused || !status.held {
            continue;
        }
        status.held = false;
        start_attempt(ctx, id, &mut status);
        ctx.save(id, status);
    }
    Ok(())
}

/// Not started yet: finish it as canceled. Started: deliver the cancel signal.
fn cancel<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    mut status: InvocationStatus,
) -> StoreResult<ControlOutcome> {
    let canceled = InvocationResult::Failure { code: codes::CANCELED, message: "canceled".into() };
    match status.phase {
        Phase::Completed { .. } => Ok(ControlOutcome::AlreadyCompleted),
        Phase::Scheduled { .. } | Phase::Inboxed { .. } => {
            leave_inbox(ctx, &status);
            complete(ctx, id, status, canceled)?;
            Ok(ControlOutcome::Done)
        }
        Phase::Invoked | Phase::Suspended { .. } | Phase::Paused => {
            let paused = status.phase == Phase::Paused;
            let signal = Notification {
                ty: ty::SIGNAL_NOTIFICATION,
                id: NotificationId::Signal(CANCEL_SIGNAL),
                result: NotificationResult::Void,
            };
            append_notification(ctx, id, &mut status, signal);
            if paused {
                start_attempt(ctx, id, &mut status);
            }
            ctx.save(id, status);
            Ok(ControlOutcome::Appended)
        }
    }
}

/// Ends the invocation with "killed" at once and kills every invocation it called.
fn kill<S: Store>(ctx: &mut Ctx<'_, '_, S>, id: InvocationId, status: InvocationStatus) -> StoreResult<ControlOutcome> {
    if status.is_completed() {
        return Ok(ControlOutcome::AlreadyCompleted);
    }
    leave_inbox(ctx, &status);
    let mut children = Vec::new();
    for index in 0..status.journal_len {
        let Some(entry) = ctx.txn.journal_entry(&id, index)? else { continue };
        if entry.ty != ty::CALL_INVOCATION_ID_COMPLETION_NOTIFICATION {
            continue;
        }
        if let Ok(NotificationMessage { result: Some(WireResult::InvocationId(child)), .. }) =
            NotificationMessage::decode(entry.payload)
            && let Ok(child) = child.parse::<InvocationId>()
        {
            children.push(child);
        }
    }
    complete(ctx, id, status, InvocationResult::Failure { code: codes::KILLED, message: "killed".into() })?;
    for child in children {
        ctx.route(OutboxMessage::Kill { target: child });
    }
    Ok(ControlOutcome::Done)
}

/// Removes a waiting invocation from its key's inbox.
fn leave_inbox<S: Store>(ctx: &mut Ctx<'_, '_, S>, status: &InvocationStatus) {
    if let (Phase::Inboxed { seq }, Some(obj)) = (&status.phase, status.target.object()) {
        ctx.txn.delete_inbox(&obj, *seq);
    }
}

fn restart_as_new<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    status: InvocationStatus,
    new_id: InvocationId,
) -> StoreResult<ControlOutcome> {
    if status.target.handler_kind == HandlerKind::Workflow {
        return Ok(ControlOutcome::Unsupported("restart-as-new is not supported for workflow runs".into()));
    }
    match status.phase {
        Phase::Completed { .. } => {}
        Phase::Scheduled { .. } | Phase::Inboxed { .. } => return Ok(ControlOutcome::NotStarted),
        _ => return Ok(ControlOutcome::NotCompleted),
    }
    let input = if status.journal_purged { None } else { ctx.txn.journal_entry(&id, 0)? };
    let Some(input) = input.and_then(|e| InputCommandMessage::decode(e.payload).ok()) else {
        return Ok(ControlOutcome::InputGone);
    };
    let request = InvokeRequest {
        id: new_id,
        target: status.target.clone(),
        headers: input.headers.into_iter().map(|h| (h.key, h.value)).collect(),
        body: input.value.map(|v| v.content).unwrap_or_default(),
        source: Source::Ingress,
        idempotency_key: None,
        execute_at: None,
        sink: None,
        retry_policy: status.retry_policy.clone(),
        retention: status.retention.clone(),
        deployment: None,
        trace: None,
    };
    on_invoke(ctx, request)?;
    Ok(ControlOutcome::Restarted(new_id))
}

fn pause<S: Store>(ctx: &mut Ctx<'_, '_, S>, id: InvocationId, mut status: InvocationStatus) -> ControlOutcome {
    match status.phase {
        Phase::Completed { .. } => ControlOutcome::AlreadyCompleted,
        Phase::Paused => ControlOutcome::Done,
        Phase::Invoked => {
            if status.attempt.in_flight {
                ctx.actions.push(super::action::Action::Abort { id, attempt: status.attempt.attempt });
                status.attempt.in_flight = false;
            }
            status.attempt.next_retry_at_ms = None;
            status.phase = Phase::Paused;
            ctx.save(id, status);
            ControlOutcome::Appended
        }
        Phase::Suspended { .. } | Phase::Scheduled { .. } | Phase::Inboxed { .. } => {
            ControlOutcome::Unsupported("the invocation is not running".into())
        }
    }
}

/// Moves a not-running invocation to `deployment`, then resumes it there.
fn resume_on<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    mut status: InvocationStatus,
    deployment: DeploymentId,
) -> ControlOutcome {
    match status.phase {
        Phase::Completed { .. } => ControlOutcome::AlreadyCompleted,
        Phase::Scheduled { .. } | Phase::Inboxed { .. } => ControlOutcome::NotStarted,
        Phase::Invoked if status.attempt.in_flight => {
            ControlOutcome::Unsupported("it is running: pause it before moving it to another deployment".into())
        }
        Phase::Invoked | Phase::Paused | Phase::Suspended { .. } => {
            if status.deployment.as_ref().is_some_and(|p| p.deployment == deployment) {
                return resume(ctx, id, status);
            }
            // Unpinned: the next attempt pins it to the deployment asked for.
            status.deployment = None;
            status.requested_deployment = Some(deployment);
            resume(ctx, id, status)
        }
    }
}

fn resume<S: Store>(ctx: &mut Ctx<'_, '_, S>, id: InvocationId, mut status: InvocationStatus) -> ControlOutcome {
    match status.phase {
        Phase::Completed { .. } => ControlOutcome::AlreadyCompleted,
        Phase::Scheduled { .. } | Phase::Inboxed { .. } => ControlOutcome::NotStarted,
        Phase::Invoked if status.attempt.in_flight => ControlOutcome::Done,
        Phase::Invoked | Phase::Paused | Phase::Suspended { .. } => {
            // A resumed invocation gets a fresh retry budget.
            if status.phase == Phase::Paused {
                status.attempt.failures = 0;
            }
            status.held = false;
            start_attempt(ctx, id, &mut status);
            ctx.save(id, status);
            ControlOutcome::Done
        }
    }
}
