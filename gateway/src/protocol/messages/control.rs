//! Control messages: Start, Suspension, Error, End, CommandAck and ProposeRunCompletion
//! (spec §6, §7).

use bytes::Bytes;

use super::{Failure, NotificationMessage, NotificationResult, Value};

/// First frame of every attempt (0x0000, S→D).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StartMessage {
    /// Raw invocation id, 24 bytes (partition key ‖ UUID; spec §13.1).
    #[prost(bytes = "bytes", tag = "1")]
    pub id: Bytes,
    /// Invocation id string `inv_1…`.
    #[prost(string, tag = "2")]
    pub debug_id: String,
    /// Number of journal entries (commands and notifications) replayed after Start; ≥ 1.
    #[prost(uint32, tag = "3")]
    pub known_entries: u32,
    /// Eager state snapshot.
    #[prost(message, repeated, tag = "4")]
    pub state_map: Vec<StateEntry>,
    /// Whether `state_map` may be incomplete (absent keys must be fetched lazily).
    #[prost(bool, tag = "5")]
    pub partial_state: bool,
    /// Object/workflow key; empty for services.
    #[prost(string, tag = "6")]
    pub key: String,
    /// Attempts since the last new command was stored (0 on the first attempt).
    #[prost(uint32, tag = "7")]
    pub retry_count_since_last_stored_entry: u32,
    /// Milliseconds since the journal was last modified.
    #[prost(uint64, tag = "8")]
    pub duration_since_last_stored_entry: u64,
    /// V6: stable per-invocation random seed (same on every attempt).
    #[prost(uint64, tag = "9")]
    pub random_seed: u64,
}

/// One entry of [`StartMessage::state_map`]. An empty value means "present but empty".
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StateEntry {
    /// State key (UTF-8 bytes).
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// State value.
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

/// The SDK suspends until any listed notification exists (0x0001, V5/V6 layout).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SuspensionMessage {
    /// Completion ids; resume when any of them is notified.
    #[prost(uint32, repeated, tag = "1")]
    pub waiting_completions: Vec<u32>,
    /// Signal indexes (1 = cancel, 17+ = awakeables).
    #[prost(uint32, repeated, tag = "2")]
    pub waiting_signals: Vec<u32>,
    /// Named signals.
    #[prost(string, repeated, tag = "3")]
    pub waiting_named_signals: Vec<String>,
}

impl SuspensionMessage {
    /// Whether the suspension waits on nothing, which the protocol forbids.
    pub fn is_empty(&self) -> bool {
        self.waiting_completions.is_empty() && self.waiting_signals.is_empty() && self.waiting_named_signals.is_empty()
    }
}

/// How the server should react to an [`ErrorMessage`]; V7 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ErrorBehavior {
    /// Retry with the retry policy (the V5/V6 behavior).
    Retry = 0,
    /// Pause the invocation.
    Pause = 1,
    /// Fail the invocation.
    Fail = 2,
}

/// The attempt failed; the server retries (0x0002, D→S).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ErrorMessage {
    /// Error code (e.g. 500, 570 journal mismatch, 571 protocol violation).
    #[prost(uint32, tag = "1")]
    pub code: u32,
    /// Error message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Stack trace, if any.
    #[prost(string, tag = "3")]
    pub stacktrace: String,
    /// Command index (among commands only) the error relates to.
    #[prost(uint32, optional, tag = "4")]
    pub related_command_index: Option<u32>,
    /// Entry name of the related command.
    #[prost(string, optional, tag = "5")]
    pub related_command_name: Option<String>,
    /// Type code of the related command (e.g. 1031 = 0x0407).
    #[prost(uint32, optional, tag = "6")]
    pub related_command_type: Option<u32>,
    /// Overrides the delay (ms) before the next retry only.
    #[prost(uint64, optional, tag = "8")]
    pub next_retry_delay: Option<u64>,
    /// V7 only: [`ErrorBehavior`] as its number. Decoded harmlessly under V5/V6.
    #[prost(enumeration = "ErrorBehavior", optional, tag = "9")]
    pub behavior: Option<i32>,
}

/// The invocation finished; its result is the OutputCommand (0x0003, D→S).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct EndMessage {}

/// Acknowledges a stored command (0x0004). Never send it to V5/V6 SDKs.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CommandAckMessage {
    /// Index of the acknowledged command.
    #[prost(uint32, tag = "1")]
    pub command_index: u32,
}

/// The SDK proposes the result of a `ctx.run` closure (0x0005, D→S).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ProposeRunCompletionMessage {
    /// The RunCommand's completion id.
    #[prost(uint32, tag = "1")]
    pub result_completion_id: u32,
    /// Raw value bytes or failure.
    #[prost(oneof = "ProposedRunResult", tags = "14, 15")]
    pub result: Option<ProposedRunResult>,
}

/// Result of a [`ProposeRunCompletionMessage`].
#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum ProposedRunResult {
    /// Raw bytes, *not* wrapped in [`Value`] (spec §16 item 8).
    #[prost(bytes = "bytes", tag = "14")]
    Value(Bytes),
    /// Terminal failure of the closure.
    #[prost(message, tag = "15")]
    Failure(Failure),
}

/// A validated run proposal: the completion id and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunProposal {
    /// The RunCommand's completion id.
    pub completion_id: u32,
    /// The proposed result.
    pub result: ProposedRunResult,
}

impl RunProposal {
    /// The RunCompletionNotification (0x8011) to store and forward; the value is
    /// wrapped in [`Value`] there.
    pub fn into_notification(self) -> NotificationMessage {
        let result = match self.result {
            ProposedRunResult::Value(content) => NotificationResult::Value(Value { content }),
            ProposedRunResult::Failure(failure) => NotificationResult::Failure(failure),
        };
        NotificationMessage::completion(self.completion_id, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::ty;
    use prost::Message as _;

    #[test]
    fn suspension_accepts_packed_and_unpacked_lists() {
        let packed = [0x0a, 0x02, 0x11, 0x01, 0x12, 0x01, 0x01];
        let unpacked = [0x08, 0x11, 0x08, 0x01, 0x10, 0x01, 0x1a, 0x01, b'x'];
        let packed = SuspensionMessage::decode(&packed[..]).expect("packed");
        let unpacked = SuspensionMessage::decode(&unpacked[..]).expect("unpacked");
        assert_eq!(packed.waiting_completions, vec![17, 1]);
        assert_eq!(packed.waiting_signals, vec![1]);
        assert_eq!(unpacked.waiting_completions, vec![17, 1]);
        assert_eq!(unpacked.waiting_signals, vec![1]);
        assert_eq!(unpacked.waiting_named_signals, vec!["x".to_string()]);
    }

    #[test]
    fn unknown_fields_are_skipped() {
        // Suspension { 1: [2] } followed by unknown V7 field 4 (length-delimited).
        let bytes = [0x0a, 0x01, 0x02, 0x22, 0x02, 0x08, 0x01];
        let suspension = SuspensionMessage::decode(&bytes[..]).expect("decodes");
        assert_eq!(suspension.waiting_completions, vec![2]);
    }

    #[test]
    fn error_message_optional_fields_round_trip() {
        let error = ErrorMessage {
            code: 570,
            message: "journal mismatch".into(),
            stacktrace: String::new(),
            related_command_index: Some(0),
            related_command_name: None,
            related_command_type: Some(u32::from(ty::GET_EAGER_STATE_COMMAND)),
            next_retry_delay: Some(1500),
            behavior: None,
        };
        let decoded = ErrorMessage::decode(error.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(decoded, error);
        assert_eq!(decoded.related_command_index, Some(0), "present zero survives");
        let with_behavior = ErrorMessage::decode(&[0x48, 0x02][..]).expect("decodes");
        assert_eq!(with_behavior.behavior(), ErrorBehavior::Fail);
    }
}
