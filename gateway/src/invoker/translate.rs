//! What the deployment's answer means for the partition: the response head is checked
//! ([`check_head`]), then its bytes are decoded into SDK messages and each message becomes an
//! [`Effect`] ([`Translator::push`]), a call's target resolved against the schema on the way
//! ([`resolve_call`]). Pure: bytes and a schema snapshot in, effects or an
//! [`AttemptFailure`] out; the attempt's spans (when traced) see each command go by.
//!
//! Owns: the response's protocol rules (status and content type, frame limits, which message
//! ends the attempt), the translation of each message into an effect. Does not own: sending the
//! effects (the attempt batches them to the partition), what an effect does (the engine).
//!
//! Call order: [`check_head`] once, then [`Translator::push`] for each chunk of the body until
//! it reports the terminal message (End, Suspension or Error).

use bytes::BytesMut;

use super::failure::AttemptFailure;
use super::spans::AttemptSpans;
use crate::engine::command::Effect;
use crate::engine::records::{FailureInfo, InvocationResult, Retention, RetryPolicy, Target, WaitSet};
use crate::protocol::messages::{DeploymentMessage, ProposedRunResult};
use crate::protocol::{codes, frame};
use crate::schema::Schema;

/// Checks status and content type of the SDK's response head.
pub fn check_head(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    content_type: &str,
) -> Result<(), AttemptFailure> {
    let got = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if status.is_success() && got == Some(content_type) {
        return Ok(());
    }
    if status.is_success() {
        return Err(AttemptFailure::content_type(got, content_type));
    }
    let retry_after_ms = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| secs.saturating_mul(1000).min(crate::durations::MAX_MS));
    Err(AttemptFailure::status(status, retry_after_ms))
}

/// Decodes a response body into effects, across chunks (a frame may span several).
pub struct Translator {
    buffer: BytesMut,
    /// The largest message accepted (`invoker.message-size-limit`).
    message_size_limit: u32,
    ended: bool,
}

impl Translator {
    pub fn new(message_size_limit: u32) -> Self {
        Self { buffer: BytesMut::new(), message_size_limit, ended: false }
    }

    /// True once the terminal message (End, Suspension, Error) came; nothing after it counts.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Decodes the messages completed by `chunk` into effects, appended to `effects` in the
    /// order they came; stops at the terminal one. Bytes after it are ignored.
    pub fn push(
        &mut self,
        chunk: &[u8],
        schema: &Schema,
        mut spans: Option<&mut AttemptSpans>,
        effects: &mut Vec<Effect>,
    ) -> Result<(), AttemptFailure> {
        if self.ended {
            return Ok(());
        }
        self.buffer.extend_from_slice(chunk);
        while let Some(frame) =
            frame::decode(&mut self.buffer, self.message_size_limit).map_err(AttemptFailure::protocol_violation)?
        {
            let message = DeploymentMessage::from_frame(&frame).map_err(AttemptFailure::protocol_violation)?;
            let terminal = message.is_terminal();
            effects.push(effect_of(schema, message, spans.as_deref_mut())?);
            if terminal {
                self.ended = true;
                return Ok(());
            }
        }
        Ok(())
    }
}

/// What a message from the SDK means for the partition.
pub fn effect_of(
    schema: &Schema,
    message: DeploymentMessage,
    spans: Option<&mut AttemptSpans>,
) -> Result<Effect, AttemptFailure> {
    use crate::protocol::messages::Command as SdkCommand;
    Ok(match message {
        DeploymentMessage::Command { command, payload } => {
            let ty = command.ty();
            let call_trace = spans.and_then(|t| t.command(&command));
            let call = match &command {
                SdkCommand::Call(c) => Some((&c.service_name, &c.handler_name, &c.key)),
                SdkCommand::OneWayCall(c) => Some((&c.service_name, &c.handler_name, &c.key)),
                _ => None,
            };
            let (call_target, call_policy) = match call {
                Some((service, handler, key)) => {
                    let (target, policy, retention) = resolve_call(schema, service, handler, key)
                        .map_err(|message| AttemptFailure::bad_call(message, ty, command.entry_name()))?;
                    (Some(target), Some((policy, retention)))
                }
                None => (None, None),
            };
            Effect::Command { ty, payload, call_target, call_policy, call_trace: call_trace.filter(|_| call.is_some()) }
        }
        DeploymentMessage::ProposeRunCompletion(p) => {
            if let Some(t) = spans {
                t.run_proposed(p.completion_id);
            }
            Effect::ProposeRun {
                completion_id: p.completion_id,
                result: match p.result {
                    ProposedRunResult::Value(v) => InvocationResult::Success(v),
                    ProposedRunResult::Failure(f) => {
                        InvocationResult::Failure { code: codes::clamp(f.code), message: f.message }
                    }
                },
            }
        }
        DeploymentMessage::Suspension(s) => Effect::Suspended(WaitSet {
            completions: s.waiting_completions,
            signals: s.waiting_signals,
            named_signals: s.waiting_named_signals,
        }),
        DeploymentMessage::Error(e) => {
            if let Some(t) = spans {
                t.failed(&format!("{}: {}", e.code, e.message));
            }
            let mut message = e.message;
            if !e.stacktrace.is_empty() {
                message.push('\n');
                message.push_str(&e.stacktrace);
            }
            Effect::Failed {
                failure: FailureInfo {
                    code: codes::clamp(e.code),
                    message,
                    related_command_index: e.related_command_index,
                    related_command_name: e.related_command_name,
                    related_command_type: e.related_command_type.and_then(|t| u16::try_from(t).ok()),
                },
                next_retry_delay_ms: e.next_retry_delay.map(|ms| ms.min(crate::durations::MAX_MS)),
                terminal: false,
            }
        }
        DeploymentMessage::End => Effect::Ended,
    })
}

/// Resolves the callee of a call against the current schema: its target (with its key, for a
/// keyed service), retry policy and retention.
pub fn resolve_call(
    schema: &Schema,
    service: &str,
    handler: &str,
    key: &str,
) -> Result<(Target, RetryPolicy, Retention), String> {
    let svc =
        schema.service(service).ok_or_else(|| format!("the call target service '{service}' is not registered"))?;
    let h = svc.handler(handler).ok_or_else(|| format!("the service '{service}' has no handler '{handler}'"))?;
    let key = match (svc.is_keyed(), key.is_empty()) {
        (true, true) => return Err(format!("calling '{service}/{handler}' needs a key: '{service}' is keyed")),
        (true, false) => Some(key.to_owned()),
        (false, _) => None,
    };
    Ok((svc.target(h, key), svc.retry_policy(h), svc.retention(h)))
}
