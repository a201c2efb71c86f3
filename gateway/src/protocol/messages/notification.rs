//! Notifications (0x8000..=0xFBFF): one struct for the shared template (spec §6).
//!
//! * id (oneof): 1 `completion_id`, 2 `signal_id`, 3 `signal_name`;
//! * result (oneof): 4 `void`, 5 `value`, 6 `failure`, 16 `invocation_id`, 17 `state_keys`.
//!
//! Which id and results each notification type uses is in spec §6; the server stores
//! and forwards notifications generically, so this struct does not enforce it.

use bytes::Bytes;

use super::{Failure, StateKeys, Value, Void};

/// Any notification (0x8000..=0xFBFF): which completion or signal, and its result.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct NotificationMessage {
    /// Completion id, signal index or signal name.
    #[prost(oneof = "NotificationId", tags = "1, 2, 3")]
    pub id: Option<NotificationId>,
    /// The result.
    #[prost(oneof = "NotificationResult", tags = "4, 5, 6, 16, 17")]
    pub result: Option<NotificationResult>,
}

/// What a notification completes.
#[derive(Clone, PartialEq, Eq, Hash, prost::Oneof)]
pub enum NotificationId {
    /// A completion id chosen by the SDK in a command.
    #[prost(uint32, tag = "1")]
    CompletionId(u32),
    /// A signal index (1 = cancel, 17+ = awakeables).
    #[prost(uint32, tag = "2")]
    SignalId(u32),
    /// A named signal.
    #[prost(string, tag = "3")]
    SignalName(String),
}

/// Result carried by a notification.
#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum NotificationResult {
    /// Empty result.
    #[prost(message, tag = "4")]
    Void(Void),
    /// A value.
    #[prost(message, tag = "5")]
    Value(Value),
    /// A terminal failure.
    #[prost(message, tag = "6")]
    Failure(Failure),
    /// An invocation id string (CallInvocationId notifications).
    #[prost(string, tag = "16")]
    InvocationId(String),
    /// State keys (GetLazyStateKeys notifications).
    #[prost(message, tag = "17")]
    StateKeys(StateKeys),
}

impl NotificationResult {
    /// The empty result.
    pub fn void() -> Self {
        Self::Void(Void {})
    }

    /// A value result.
    pub fn value(content: impl Into<Bytes>) -> Self {
        Self::Value(Value::new(content))
    }

    /// A failure result with no metadata.
    pub fn failure(code: u32, message: impl Into<String>) -> Self {
        Self::Failure(Failure::new(code, message))
    }
}

impl NotificationMessage {
    /// A notification for the completion id `id`.
    pub fn completion(id: u32, result: NotificationResult) -> Self {
        Self { id: Some(NotificationId::CompletionId(id)), result: Some(result) }
    }

    /// A signal notification (0xFBFF) for signal index `idx` (1 = cancel).
    pub fn signal(idx: u32, result: NotificationResult) -> Self {
        Self { id: Some(NotificationId::SignalId(idx)), result: Some(result) }
    }

    /// A signal notification (0xFBFF) for the named signal `name`.
    pub fn named_signal(name: impl Into<String>, result: NotificationResult) -> Self {
        Self { id: Some(NotificationId::SignalName(name.into())), result: Some(result) }
    }

    /// The completion id, if this notification completes one.
    pub fn completion_id(&self) -> Option<u32> {
        match self.id {
            Some(NotificationId::CompletionId(id)) => Some(id),
            _ => None,
        }
    }

    /// The signal index, if this is an indexed signal.
    pub fn signal_id(&self) -> Option<u32> {
        match self.id {
            Some(NotificationId::SignalId(idx)) => Some(idx),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn notification_template_round_trips_every_variant() {
        let results = [
            NotificationResult::void(),
            NotificationResult::value("42"),
            NotificationResult::failure(409, "cancelled"),
            NotificationResult::InvocationId("inv_1abc".into()),
            NotificationResult::StateKeys(StateKeys { keys: vec![Bytes::from_static(b"k")] }),
        ];
        for result in results {
            for message in [
                NotificationMessage::completion(0, result.clone()),
                NotificationMessage::signal(17, result.clone()),
                NotificationMessage::named_signal("approve", result.clone()),
            ] {
                let decoded = NotificationMessage::decode(message.encode_to_vec().as_slice());
                assert_eq!(decoded.as_ref(), Ok(&message));
            }
        }
        // Sleep completion seen live on the wire: { 1: 1, 4: {} }.
        let sleep = NotificationMessage::completion(1, NotificationResult::void());
        assert_eq!(sleep.encode_to_vec(), vec![0x08, 0x01, 0x22, 0x00]);
        assert_eq!(sleep.completion_id(), Some(1));
        assert_eq!(NotificationMessage::signal(1, NotificationResult::void()).signal_id(), Some(1));
    }
}
