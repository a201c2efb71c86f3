//! The journal: appending the SDK's commands and applying what each one means (spec §9),
//! and appending notifications — forwarded to a running attempt, or waking a suspended one.

use bytes::Bytes;

use super::action::Action;
use super::command::InvokeRequest;
use super::ctx::Ctx;
use super::entries;
use super::invoke::{schedule, start_attempt};
use super::records::{
    FailureInfo, HandlerKind, InvocationResult, InvocationStatus, JournalEntry, Notification, NotificationId,
    NotificationResult, OutboxMessage, Phase, Retention, RetryPolicy, Sink, Source, Target, Timer, TimerKind, WaitSet,
};
use super::store::{Store, StoreResult};
use crate::ids::{AwakeableId, InvocationId};
use crate::protocol::codes;
use crate::protocol::messages::{
    AttachTarget, CallCommandMessage, CompletionResult, JournalCommand, OneWayCallCommandMessage, SignalId,
    SignalResult, ty,
};

/// Appends an entry and returns its index.
fn append_entry<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    status: &mut InvocationStatus,
    ty: u16,
    payload: Bytes,
) -> u32 {
    let index = status.journal_len;
    ctx.txn.put_journal(id, index, JournalEntry { ty, payload, appended_at: ctx.now });
    status.journal_len = status.journal_len.saturating_add(1);
    status.journal_modified_at = ctx.now;
    index
}

/// Appends a notification; forwards it to a running attempt, or resumes a suspended
/// invocation that waits for it.
pub fn append_notification<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    status: &mut InvocationStatus,
    n: Notification,
) {
    let payload = entries::encode_notification(&n);
    let index = append_entry(ctx, id, status, n.ty, payload.clone());
    match &status.phase {
        Phase::Invoked if status.attempt.in_flight => ctx.actions.push(Action::Forward {
            id,
            attempt: status.attempt.attempt,
            index,
            entry: JournalEntry { ty: n.ty, payload, appended_at: ctx.now },
        }),
        Phase::Suspended { waiting } if waits_for(waiting, &n.id) => start_attempt(ctx, id, status),
        _ => {}
    }
}

pub fn waits_for(waiting: &WaitSet, id: &NotificationId) -> bool {
    match id {
        NotificationId::Completion(c) => waiting.completions.contains(c),
        NotificationId::Signal(s) => waiting.signals.contains(s),
        NotificationId::NamedSignal(name) => waiting.named_signals.contains(name),
    }
}

/// A notification for an invocation of this partition (from a timer, a callee, a signal).
pub fn on_notify<S: Store>(ctx: &mut Ctx<'_, '_, S>, target: InvocationId, n: Notification) -> StoreResult<()> {
    let Some(mut status) = ctx.status(&target)? else {
        tracing::debug!(invocation = %target, "dropping notification for unknown invocation");
        return Ok(());
    };
    if status.is_completed() {
        return Ok(());
    }
    append_notification(ctx, target, &mut status, n);
    ctx.save(target, status);
    Ok(())
}

/// What the invoker resolved for a Call/OneWayCall: the callee and its policies.
pub struct Callee {
    pub target: Target,
    pub retry_policy: RetryPolicy,
    pub retention: Retention,
    pub trace: Option<super::records::TraceContext>,
}

/// What became of a command the SDK sent.
#[must_use]
pub enum Applied {
    /// Journaled, and its effect applied (or it has none): the attempt goes on.
    Done,
    /// Journaled, but its effect cannot happen: the invocation ends with this failure.
    Impossible(FailureInfo),
}

/// Appends a command the SDK sent and applies its effect.
pub fn on_command<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    status: &mut InvocationStatus,
    ty: u16,
    payload: Bytes,
    callee: Option<Callee>,
) -> StoreResult<Applied> {
    let index = append_entry(ctx, id, status, ty, payload.clone());
    status.commands = status.commands.saturating_add(1);
    status.attempt.retry_count = 0;
    // The invoker decoded the command before sending it; a command that does not decode
    // here has no effect beyond being journaled.
    let Ok(command) = JournalCommand::decode(ty, payload) else { return Ok(Applied::Done) };
    let object = status.target.object();
    match command {
        JournalCommand::Output(_) => status.output_index = Some(index),
        JournalCommand::SetState(c) => {
            if let Some(obj) = &object {
                ctx.txn.put_state(obj, c.key, c.value.map(|v| v.content).unwrap_or_default());
            }
        }
        JournalCommand::ClearState(c) => {
            if let Some(obj) = &object {
                ctx.txn.delete_state(obj, c.key);
            }
        }
        JournalCommand::ClearAllState(_) => {
            if let Some(obj) = &object {
                ctx.txn.clear_state(obj);
            }
        }
        JournalCommand::GetLazyState(c) => {
            let value = match &object {
                Some(obj) => ctx.txn.state(obj, &c.key)?,
                None => None,
            };
            let result = value.map_or(NotificationResult::Void, NotificationResult::Value);
            let n = entries::completion(ty::GET_LAZY_STATE_COMPLETION_NOTIFICATION, c.result_completion_id, result);
            append_notification(ctx, id, status, n);
        }
        JournalCommand::GetLazyStateKeys(c) => {
            let keys = match &object {
                Some(obj) => ctx.txn.state_all(obj)?.into_iter().map(|(k, _)| k).collect(),
                None => Vec::new(),
            };
            let n = entries::completion(
                ty::GET_LAZY_STATE_KEYS_COMPLETION_NOTIFICATION,
                c.result_completion_id,
                NotificationResult::StateKeys(keys),
            );
            append_notification(ctx, id, status, n);
        }
        JournalCommand::Sleep(c) => schedule(
            ctx,
            Timer {
                fire_at: c.wake_up_time,
                invocation: id,
                kind: TimerKind::Sleep { completion_id: c.result_completion_id },
            },
        ),
        JournalCommand::Call(c) => return call(ctx, id, status, index, c.into(), callee),
        JournalCommand::OneWayCall(c) => return call(ctx, id, status, index, c.into(), callee),
        JournalCommand::SendSignal(c) => {
            let (Ok(target), Some(signal), Some(result)) =
                (c.target_invocation_id.parse::<InvocationId>(), c.signal_id, c.result)
            else {
                return Ok(Applied::Done);
            };
            let signal = match signal {
                SignalId::Idx(idx) => NotificationId::Signal(idx),
                SignalId::Name(name) => NotificationId::NamedSignal(name),
            };
            let result = match result {
                SignalResult::Void(_) => NotificationResult::Void,
                SignalResult::Value(v) => NotificationResult::Value(v.content),
                SignalResult::Failure(f) => entries::failure_of(&f),
            };
            let n = Notification { ty: ty::SIGNAL_NOTIFICATION, id: signal, result };
            ctx.route(OutboxMessage::Notify { target, notification: n });
        }
        JournalCommand::CompleteAwakeable(c) => {
            if let Ok(awakeable) = c.awakeable_id.parse::<AwakeableId>() {
                let n = Notification {
                    ty: ty::SIGNAL_NOTIFICATION,
                    id: NotificationId::Signal(awakeable.signal_index),
                    result: entries::value_or_failure(c.result),
                };
                let target = awakeable.invocation;
                ctx.route(OutboxMessage::Notify { target, notification: n });
            }
        }
        // Stored only: the result is inlined (eager state), produced later by a proposal
        // (run), or created by the server (input).
        JournalCommand::Input(_)
        | JournalCommand::GetEagerState(_)
        | JournalCommand::GetEagerStateKeys(_)
        | JournalCommand::Run(_) => {}
        JournalCommand::GetPromise(c) => {
            let Some(obj) = object else { return Ok(Applied::Done) };
            let mut promise = ctx.txn.promise(&obj, &c.key)?.unwrap_or_default();
            match &promise.result {
                Some(result) => {
                    let n = entries::completion(
                        ty::GET_PROMISE_COMPLETION_NOTIFICATION,
                        c.result_completion_id,
                        result.clone().into(),
                    );
                    append_notification(ctx, id, status, n);
                }
                None => {
                    promise.waiters.push((id, c.result_completion_id));
                    ctx.txn.put_promise(&obj, &c.key, promise);
                }
            }
        }
        JournalCommand::PeekPromise(c) => {
            let result = match &object {
                Some(obj) => ctx.txn.promise(obj, &c.key)?.and_then(|p| p.result),
                None => None,
            };
            let result = result.map_or(NotificationResult::Void, Into::into);
            let n = entries::completion(ty::PEEK_PROMISE_COMPLETION_NOTIFICATION, c.result_completion_id, result);
            append_notification(ctx, id, status, n);
        }
        JournalCommand::CompletePromise(c) => {
            let Some(obj) = object else { return Ok(Applied::Done) };
            let mut promise = ctx.txn.promise(&obj, &c.key)?.unwrap_or_default();
            let answer = if promise.result.is_some() {
                NotificationResult::Failure { code: codes::CONFLICT, message: "promise was already completed".into() }
            } else {
                let result = match c.completion {
                    Some(CompletionResult::Value(v)) => InvocationResult::Success(v.content),
                    Some(CompletionResult::Failure(f)) => {
                        InvocationResult::Failure { code: codes::clamp(f.code), message: f.message }
                    }
                    None => InvocationResult::Success(Bytes::new()),
                };
                let waiters = std::mem::take(&mut promise.waiters);
                promise.result = Some(result.clone());
                ctx.txn.put_promise(&obj, &c.key, promise);
                for (waiter, completion_id) in waiters {
                    let n = entries::completion(
                        ty::GET_PROMISE_COMPLETION_NOTIFICATION,
                        completion_id,
                        result.clone().into(),
                    );
                    ctx.route(OutboxMessage::Notify { target: waiter, notification: n });
                }
                NotificationResult::Void
            };
            let n = entries::completion(ty::COMPLETE_PROMISE_COMPLETION_NOTIFICATION, c.result_completion_id, answer);
            append_notification(ctx, id, status, n);
        }
        JournalCommand::AttachInvocation(c) => attach(ctx, id, status, c.target, c.result_completion_id, true)?,
        JournalCommand::GetInvocationOutput(c) => attach(ctx, id, status, c.target, c.result_completion_id, false)?,
    }
    Ok(Applied::Done)
}

/// AttachInvocation (wait for the target's result) and GetInvocationOutput (look now).
fn attach<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    status: &mut InvocationStatus,
    target: Option<AttachTarget>,
    completion_id: u32,
    wait: bool,
) -> StoreResult<()> {
    let target = match target {
        Some(AttachTarget::InvocationId(s)) => s.parse::<InvocationId>().ok(),
        Some(AttachTarget::IdempotentRequestTarget(t)) => Some(InvocationId::idempotent(
            &t.service_name,
            t.service_key.as_deref(),
            &t.handler_name,
            &t.idempotency_key,
        )),
        Some(AttachTarget::WorkflowTarget(t)) => Some(InvocationId::workflow_run(&t.workflow_name, &t.workflow_key)),
        None => None,
    };
    match target {
        Some(target) => {
            ctx.route(OutboxMessage::Attach { target, caller: id, completion_id, wait });
            Ok(())
        }
        None => {
            let ty = if wait {
                ty::ATTACH_INVOCATION_COMPLETION_NOTIFICATION
            } else {
                ty::GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION
            };
            let failure = NotificationResult::Failure { code: codes::BAD_REQUEST, message: "bad attach target".into() };
            append_notification(ctx, id, status, entries::completion(ty, completion_id, failure));
            Ok(())
        }
    }
}

/// An attach or output request arriving at the target's partition.
pub fn on_attach<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    target: InvocationId,
    caller: InvocationId,
    completion_id: u32,
    wait: bool,
) -> StoreResult<()> {
    let ty = if wait {
        ty::ATTACH_INVOCATION_COMPLETION_NOTIFICATION
    } else {
        ty::GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION
    };
    let answer = match ctx.status(&target)? {
        None => NotificationResult::Failure { code: codes::NOT_FOUND, message: "invocation not found".into() },
        Some(s) => match s.result() {
            Some(result) => result.clone().into(),
            None if wait => {
                let mut s = s;
                s.sinks.push(Sink::Attacher { caller, completion_id });
                ctx.save(target, s);
                return Ok(());
            }
            // GetInvocationOutput of an unfinished invocation: void ("not ready").
            None => NotificationResult::Void,
        },
    };
    ctx.route(OutboxMessage::Notify { target: caller, notification: entries::completion(ty, completion_id, answer) });
    Ok(())
}

/// What Call and OneWayCall have in common, beyond the callee the invoker resolved.
struct CallRequest {
    /// The command's type code.
    ty: u16,
    /// The service and handler the SDK asked to call (with `key`), as it named them.
    service: String,
    handler: String,
    /// The step's name, if the handler gave it one.
    name: String,
    key: String,
    idempotency_key: Option<String>,
    headers: Vec<(String, String)>,
    body: Bytes,
    execute_at: Option<u64>,
    id_notification: u32,
    /// Call only: where the result goes.
    result_completion: Option<u32>,
}

impl From<CallCommandMessage> for CallRequest {
    fn from(c: CallCommandMessage) -> Self {
        Self {
            ty: ty::CALL_COMMAND,
            service: c.service_name,
            handler: c.handler_name,
            name: c.name,
            key: c.key,
            idempotency_key: c.idempotency_key,
            headers: c.headers.into_iter().map(|h| (h.key, h.value)).collect(),
            body: c.parameter,
            execute_at: None,
            id_notification: c.invocation_id_notification_idx,
            result_completion: Some(c.result_completion_id),
        }
    }
}

impl From<OneWayCallCommandMessage> for CallRequest {
    fn from(c: OneWayCallCommandMessage) -> Self {
        Self {
            ty: ty::ONE_WAY_CALL_COMMAND,
            service: c.service_name,
            handler: c.handler_name,
            name: c.name,
            key: c.key,
            idempotency_key: c.idempotency_key,
            headers: c.headers.into_iter().map(|h| (h.key, h.value)).collect(),
            body: c.parameter,
            execute_at: (c.invoke_time > 0).then_some(c.invoke_time),
            id_notification: c.invocation_id_notification_idx,
            result_completion: None,
        }
    }
}

/// Creates the callee invocation of a Call or OneWayCall and tells the caller its id.
///
/// The invoker resolves the callee before it reports the command (an unknown one fails the
/// attempt, which is retried). A call reported without it cannot be made, and it is in the
/// journal now: a retry would replay it, and the SDK would wait for its result forever. So the
/// caller fails, naming the call.
fn call<S: Store>(
    ctx: &mut Ctx<'_, '_, S>,
    id: InvocationId,
    status: &mut InvocationStatus,
    index: u32,
    req: CallRequest,
    callee: Option<Callee>,
) -> StoreResult<Applied> {
    let Some(callee) = callee else {
        let asked = match req.key.as_str() {
            "" => format!("{}/{}", req.service, req.handler),
            key => format!("{}/{key}/{}", req.service, req.handler),
        };
        return Ok(Applied::Impossible(FailureInfo {
            code: codes::INTERNAL,
            message: format!(
                "the call to {asked} cannot be made: its target was not resolved when the attempt sent it"
            ),
            related_command_index: Some(status.commands.saturating_sub(1)),
            related_command_name: Some(req.name).filter(|n| !n.is_empty()),
            related_command_type: Some(req.ty),
        }));
    };
    let key = (!req.key.is_empty()).then_some(req.key);
    let (service, handler) = (&callee.target.service, &callee.target.handler);
    let callee_id = match (&req.idempotency_key, callee.target.handler_kind) {
        (Some(ik), _) => InvocationId::idempotent(service, key.as_deref(), handler, ik),
        (None, HandlerKind::Workflow) => InvocationId::workflow_run(service, key.as_deref().unwrap_or_default()),
        (None, _) => {
            InvocationId::derived(&id, index, key.as_deref().map(|k| crate::ids::partition_key_of(k.as_bytes())))
        }
    };
    let n = entries::completion(
        ty::CALL_INVOCATION_ID_COMPLETION_NOTIFICATION,
        req.id_notification,
        NotificationResult::InvocationId(callee_id.to_string()),
    );
    append_notification(ctx, id, status, n);
    let request = InvokeRequest {
        id: callee_id,
        target: callee.target,
        headers: req.headers,
        body: req.body,
        source: Source::Service { caller: id, caller_target: status.target.display() },
        idempotency_key: req.idempotency_key,
        execute_at: req.execute_at,
        sink: req.result_completion.map(|completion_id| Sink::Caller { caller: id, completion_id }),
        retry_policy: callee.retry_policy,
        retention: callee.retention,
        deployment: None,
        trace: callee.trace,
    };
    ctx.route(OutboxMessage::Invoke(Box::new(request)));
    Ok(Applied::Done)
}
