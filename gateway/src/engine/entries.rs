//! Journal entries the server writes itself (Input, notifications), encoded as the protocol
//! messages the SDK will be replayed.

use bytes::Bytes;
use prost::Message as _;

use super::records::{InvocationResult, Notification, NotificationId, NotificationResult};
use crate::protocol::codes;
use crate::protocol::messages::{
    self as pm, Header, InputCommandMessage, JournalCommand, NotificationMessage, OutputResult, Value, ty,
};

/// The Input command (entry 0) for a request: type and payload.
pub fn input(headers: &[(String, String)], body: Bytes) -> (u16, Bytes) {
    let msg = InputCommandMessage {
        headers: headers.iter().map(|(k, v)| Header { key: k.clone(), value: v.clone() }).collect(),
        value: Some(Value { content: body }),
        name: String::new(),
    };
    (ty::INPUT_COMMAND, msg.encode_to_vec().into())
}

/// The payload of a notification, as the SDK reads it.
pub fn encode_notification(n: &Notification) -> Bytes {
    let id = match &n.id {
        NotificationId::Completion(c) => pm::NotificationId::CompletionId(*c),
        NotificationId::Signal(s) => pm::NotificationId::SignalId(*s),
        NotificationId::NamedSignal(s) => pm::NotificationId::SignalName(s.clone()),
    };
    let result = match &n.result {
        NotificationResult::Void => pm::NotificationResult::void(),
        NotificationResult::Value(v) => pm::NotificationResult::value(v.clone()),
        NotificationResult::Failure { code, message } => pm::NotificationResult::failure(*code as u32, message.clone()),
        NotificationResult::InvocationId(s) => pm::NotificationResult::InvocationId(s.clone()),
        NotificationResult::StateKeys(keys) => pm::NotificationResult::StateKeys(pm::StateKeys { keys: keys.clone() }),
    };
    NotificationMessage { id: Some(id), result: Some(result) }.encode_to_vec().into()
}

/// Reads the id of a stored notification entry, to match it against what a suspended
/// invocation waits for.
pub fn notification_id(payload: &[u8]) -> Option<NotificationId> {
    let msg = NotificationMessage::decode(payload).ok()?;
    Some(match msg.id? {
        pm::NotificationId::CompletionId(c) => NotificationId::Completion(c),
        pm::NotificationId::SignalId(s) => NotificationId::Signal(s),
        pm::NotificationId::SignalName(s) => NotificationId::NamedSignal(s),
    })
}

pub fn completion(ty: u16, completion_id: u32, result: NotificationResult) -> Notification {
    Notification { ty, id: NotificationId::Completion(completion_id), result }
}

/// The invocation result an Output command carries.
pub fn output_result(payload: &[u8]) -> Option<InvocationResult> {
    match JournalCommand::decode(ty::OUTPUT_COMMAND, payload).ok()? {
        JournalCommand::Output(out) => Some(match out.result? {
            OutputResult::Value(v) => InvocationResult::Success(v.content),
            OutputResult::Failure(f) => InvocationResult::Failure { code: codes::clamp(f.code), message: f.message },
        }),
        _ => None,
    }
}

pub fn failure_of(f: &pm::Failure) -> NotificationResult {
    NotificationResult::Failure { code: codes::clamp(f.code), message: f.message.clone() }
}

pub fn value_or_failure(result: Option<pm::CompletionResult>) -> NotificationResult {
    match result {
        Some(pm::CompletionResult::Value(v)) => NotificationResult::Value(v.content),
        Some(pm::CompletionResult::Failure(f)) => failure_of(&f),
        None => NotificationResult::Void,
    }
}
