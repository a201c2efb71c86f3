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
    use crate::protocol::messages::JournalCommand as SdkCommand;
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::invoker::scripted::{end, http_deployment, message, output, schema_of};
    use crate::protocol::messages::{
        CallCommandMessage, ErrorMessage, Failure, ProposeRunCompletionMessage, StartMessage, SuspensionMessage, ty,
    };

    fn schema() -> Schema {
        schema_of(vec![http_deployment("http://v1/", true)])
    }

    /// Feeds `bytes` in chunks of `size`; the effects, and whether the terminal message came.
    fn translate(bytes: &[u8], size: usize) -> Result<(Vec<Effect>, bool), AttemptFailure> {
        let (schema, mut translator, mut effects) = (schema(), Translator::new(1 << 20), Vec::new());
        for chunk in bytes.chunks(size) {
            translator.push(chunk, &schema, None, &mut effects)?;
        }
        Ok((effects, translator.ended()))
    }

    fn call(service: &str, handler: &str, key: &str) -> Bytes {
        let call = CallCommandMessage {
            service_name: service.into(),
            handler_name: handler.into(),
            key: key.into(),
            result_completion_id: 2,
            invocation_id_notification_idx: 1,
            name: "charge".into(),
            ..Default::default()
        };
        message(ty::CALL_COMMAND, &call)
    }

    #[test]
    fn messages_become_effects_in_order_however_the_body_is_cut_and_nothing_after_the_end_counts() {
        let body = [output("\"hi\""), end(), output("\"after\"")].concat();
        for size in [1, 3, 8, body.len()] {
            let (effects, ended) = translate(&body, size).unwrap();
            assert!(ended, "chunks of {size}");
            assert!(
                matches!(
                    &effects[..],
                    [Effect::Command { ty: ty::OUTPUT_COMMAND, call_target: None, .. }, Effect::Ended]
                ),
                "chunks of {size}: {effects:?}"
            );
            let Effect::Command { payload, .. } = &effects[0] else { unreachable!() };
            assert_eq!(payload[..], output("\"hi\"")[8..], "the command's payload, exactly as received");
        }
        let (effects, ended) = translate(&output("1")[..5], 5).unwrap();
        assert!(effects.is_empty() && !ended, "half a frame waits for the rest");
    }

    #[test]
    fn a_call_carries_its_callee_resolved_against_the_schema() {
        let (effects, _) =
            translate(&[call("Counter", "add", "k1"), call("Greeter", "greet", "ignored")].concat(), 64).unwrap();
        let targets: Vec<_> = effects
            .iter()
            .map(|e| match e {
                Effect::Command { call_target: Some(t), call_policy: Some(_), .. } => {
                    (t.service.as_str(), t.key.clone())
                }
                other => panic!("a call with its target and policy: {other:?}"),
            })
            .collect();
        assert_eq!(targets, [("Counter", Some("k1".to_owned())), ("Greeter", None)], "a service's key is dropped");
    }

    #[test]
    fn a_call_that_cannot_be_resolved_fails_the_attempt_naming_the_command() {
        for (bytes, expected) in [
            (call("Nope", "x", ""), "the call target service 'Nope' is not registered"),
            (call("Greeter", "wave", ""), "the service 'Greeter' has no handler 'wave'"),
            (call("Counter", "add", ""), "calling 'Counter/add' needs a key: 'Counter' is keyed"),
        ] {
            let failure = translate(&bytes, 64).unwrap_err();
            assert_eq!((failure.info.code, failure.info.message.as_str()), (500, expected));
            assert_eq!(failure.info.related_command_type, Some(ty::CALL_COMMAND));
            assert_eq!(failure.info.related_command_name.as_deref(), Some("charge"));
            assert!(failure.is_transient(), "registering the target lets the next attempt go on");
        }
    }

    #[test]
    fn what_the_protocol_forbids_is_a_protocol_violation() {
        let start = message(ty::START, &StartMessage::default());
        let failure = translate(&start, 64).unwrap_err();
        assert_eq!(failure.info.code, 571);
        assert!(failure.info.message.starts_with("protocol violation: "), "{failure:?}");
        let empty_suspension = message(ty::SUSPENSION, &SuspensionMessage::default());
        assert_eq!(translate(&empty_suspension, 64).unwrap_err().info.code, 571);
        let (schema, mut small, mut effects) = (schema(), Translator::new(4), Vec::new());
        let too_large = small.push(&output("a long enough value"), &schema, None, &mut effects).unwrap_err();
        assert_eq!(too_large.info.code, 571, "over the message size limit");
    }

    #[test]
    fn the_sdk_error_keeps_its_code_stacktrace_and_retry_delay() {
        let error = ErrorMessage {
            code: 70_000,
            message: "boom".into(),
            stacktrace: "at handler".into(),
            related_command_index: Some(3),
            related_command_name: Some("charge".into()),
            related_command_type: Some(u32::from(ty::RUN_COMMAND)),
            next_retry_delay: Some(u64::MAX),
            behavior: None,
        };
        let (effects, ended) = translate(&message(ty::ERROR, &error), 64).unwrap();
        assert!(ended);
        let [Effect::Failed { failure, next_retry_delay_ms, terminal: false }] = &effects[..] else {
            panic!("{effects:?}")
        };
        assert_eq!((failure.code, failure.message.as_str()), (500, "boom\nat handler"), "a code past u16 is 500");
        assert_eq!((failure.related_command_index, failure.related_command_type), (Some(3), Some(ty::RUN_COMMAND)));
        assert_eq!(*next_retry_delay_ms, Some(crate::durations::MAX_MS));
    }

    #[test]
    fn a_suspension_and_a_proposed_run_result_become_their_effects() {
        let proposal = ProposeRunCompletionMessage {
            result_completion_id: 4,
            result: Some(ProposedRunResult::Failure(Failure::new(400, "no"))),
        };
        let suspension =
            SuspensionMessage { waiting_completions: vec![4], waiting_signals: vec![17], ..Default::default() };
        let body = [message(ty::PROPOSE_RUN_COMPLETION, &proposal), message(ty::SUSPENSION, &suspension)].concat();
        let (effects, ended) = translate(&body, 64).unwrap();
        assert!(ended);
        assert_eq!(
            effects,
            vec![
                Effect::ProposeRun {
                    completion_id: 4,
                    result: InvocationResult::Failure { code: 400, message: "no".into() }
                },
                Effect::Suspended(WaitSet { completions: vec![4], signals: vec![17], named_signals: vec![] }),
            ]
        );
    }

    #[test]
    fn the_head_must_be_a_success_of_the_content_type_asked_for() {
        let v6 = "application/vnd.restate.invocation.v6";
        let headers = |pairs: &[(http::HeaderName, &str)]| {
            pairs.iter().map(|(k, v)| (k.clone(), v.parse().unwrap())).collect::<http::HeaderMap>()
        };
        assert!(check_head(http::StatusCode::OK, &headers(&[(http::header::CONTENT_TYPE, v6)]), v6).is_ok());
        let wrong = check_head(http::StatusCode::OK, &headers(&[(http::header::CONTENT_TYPE, "text/html")]), v6);
        assert_eq!(wrong.unwrap_err().info.message, format!("content type text/html instead of {v6}"));
        let none = check_head(http::StatusCode::OK, &headers(&[]), v6).unwrap_err();
        assert_eq!((none.info.code, none.info.message), (571, format!("content type (none) instead of {v6}")));
        let busy =
            check_head(http::StatusCode::SERVICE_UNAVAILABLE, &headers(&[(http::header::RETRY_AFTER, " 3 ")]), v6);
        let busy = busy.unwrap_err();
        assert_eq!((busy.info.code, busy.next_retry_delay_ms), (503, Some(3_000)));
        let date = check_head(
            http::StatusCode::TOO_MANY_REQUESTS,
            &headers(&[(http::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT")]),
            v6,
        );
        assert_eq!(date.unwrap_err().next_retry_delay_ms, None, "only seconds are understood");
    }
}
