//! Command messages 0x0400..=0x0414 (spec §6).
//!
//! Every command carries its entry name at field 12; completable commands carry the
//! completion id their notification will echo at field 11 (Call and OneWayCall also
//! at field 10, for the CallInvocationId notification).

use bytes::Bytes;

use super::{
    Failure, Header, IdempotentRequestTarget, NotificationId, NotificationMessage, NotificationResult, StateKeys,
    Value, Void, WorkflowTarget,
};

/// Entry 0 of every journal: the request headers and body (0x0400).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct InputCommandMessage {
    /// Request headers.
    #[prost(message, repeated, tag = "1")]
    pub headers: Vec<Header>,
    /// Request body.
    #[prost(message, optional, tag = "14")]
    pub value: Option<Value>,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// The invocation result, effective when End arrives (0x0401).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct OutputCommandMessage {
    /// Value or terminal failure.
    #[prost(oneof = "OutputResult", tags = "14, 15")]
    pub result: Option<OutputResult>,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Result of an [`OutputCommandMessage`].
#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum OutputResult {
    /// Successful output.
    #[prost(message, tag = "14")]
    Value(Value),
    /// Terminal failure.
    #[prost(message, tag = "15")]
    Failure(Failure),
}

/// Read a state key not in the eager snapshot (0x0402; answered by 0x8002).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GetLazyStateCommandMessage {
    /// State key.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// Completion id of the answer.
    #[prost(uint32, tag = "11")]
    pub result_completion_id: u32,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Write a state key (0x0403).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SetStateCommandMessage {
    /// State key.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// New value.
    #[prost(message, optional, tag = "3")]
    pub value: Option<Value>,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Delete a state key (0x0404).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ClearStateCommandMessage {
    /// State key.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Delete every state key of the object/workflow (0x0405).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ClearAllStateCommandMessage {
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// List state keys when the snapshot is partial (0x0406; answered by 0x8006).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GetLazyStateKeysCommandMessage {
    /// Completion id of the answer.
    #[prost(uint32, tag = "11")]
    pub result_completion_id: u32,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// A state read answered from the eager snapshot, result inlined (0x0407).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GetEagerStateCommandMessage {
    /// State key.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// Void when absent, else the value.
    #[prost(oneof = "EagerStateResult", tags = "13, 14")]
    pub result: Option<EagerStateResult>,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Result of a [`GetEagerStateCommandMessage`].
#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum EagerStateResult {
    /// The key is absent.
    #[prost(message, tag = "13")]
    Void(Void),
    /// The key's value.
    #[prost(message, tag = "14")]
    Value(Value),
}

/// A key listing answered from the eager snapshot (0x0408).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GetEagerStateKeysCommandMessage {
    /// The keys.
    #[prost(message, optional, tag = "14")]
    pub value: Option<StateKeys>,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Await a workflow promise (0x0409; answered by 0x8009 when resolved).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GetPromiseCommandMessage {
    /// Promise key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Completion id of the answer.
    #[prost(uint32, tag = "11")]
    pub result_completion_id: u32,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Look at a workflow promise without waiting (0x040A; answered by 0x800A).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PeekPromiseCommandMessage {
    /// Promise key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Completion id of the answer.
    #[prost(uint32, tag = "11")]
    pub result_completion_id: u32,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Resolve a workflow promise (0x040B; answered by 0x800B).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CompletePromiseCommandMessage {
    /// Promise key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value or failure to resolve the promise with.
    #[prost(oneof = "CompletionResult", tags = "2, 3")]
    pub completion: Option<CompletionResult>,
    /// Completion id of the answer.
    #[prost(uint32, tag = "11")]
    pub result_completion_id: u32,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Value or failure at fields 2/3 (CompletePromise and CompleteAwakeable).
#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum CompletionResult {
    /// Success value.
    #[prost(message, tag = "2")]
    Value(Value),
    /// Terminal failure.
    #[prost(message, tag = "3")]
    Failure(Failure),
}

/// Sleep until an absolute time (0x040C; answered by 0x800C when the timer fires).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SleepCommandMessage {
    /// Wake-up time, ms since the Unix epoch (SDK clock).
    #[prost(uint64, tag = "1")]
    pub wake_up_time: u64,
    /// Completion id of the wake-up.
    #[prost(uint32, tag = "11")]
    pub result_completion_id: u32,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Call another handler and await its result (0x040D; answered by 0x800E then 0x800D).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CallCommandMessage {
    /// Target service.
    #[prost(string, tag = "1")]
    pub service_name: String,
    /// Target handler.
    #[prost(string, tag = "2")]
    pub handler_name: String,
    /// Request body.
    #[prost(bytes = "bytes", tag = "3")]
    pub parameter: Bytes,
    /// Request headers.
    #[prost(message, repeated, tag = "4")]
    pub headers: Vec<Header>,
    /// Object/workflow key; empty for plain services.
    #[prost(string, tag = "5")]
    pub key: String,
    /// Idempotency key; if present it must be non-empty.
    #[prost(string, optional, tag = "6")]
    pub idempotency_key: Option<String>,
    /// Completion id of the CallInvocationId notification (0x800E).
    #[prost(uint32, tag = "10")]
    pub invocation_id_notification_idx: u32,
    /// Completion id of the call's result (0x800D).
    #[prost(uint32, tag = "11")]
    pub result_completion_id: u32,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Send a request without awaiting it, possibly delayed (0x040E; answered by 0x800E).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct OneWayCallCommandMessage {
    /// Target service.
    #[prost(string, tag = "1")]
    pub service_name: String,
    /// Target handler.
    #[prost(string, tag = "2")]
    pub handler_name: String,
    /// Request body.
    #[prost(bytes = "bytes", tag = "3")]
    pub parameter: Bytes,
    /// When to invoke, ms since the Unix epoch; 0 or past means now.
    #[prost(uint64, tag = "4")]
    pub invoke_time: u64,
    /// Request headers.
    #[prost(message, repeated, tag = "5")]
    pub headers: Vec<Header>,
    /// Object/workflow key; empty for plain services.
    #[prost(string, tag = "6")]
    pub key: String,
    /// Idempotency key; if present it must be non-empty.
    #[prost(string, optional, tag = "7")]
    pub idempotency_key: Option<String>,
    /// Completion id of the CallInvocationId notification (0x800E).
    #[prost(uint32, tag = "10")]
    pub invocation_id_notification_idx: u32,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Deliver a signal to another invocation (0x0410); index 1 cancels it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SendSignalCommandMessage {
    /// Target invocation id string.
    #[prost(string, tag = "1")]
    pub target_invocation_id: String,
    /// Signal index or name.
    #[prost(oneof = "SignalId", tags = "2, 3")]
    pub signal_id: Option<SignalId>,
    /// The signal's result.
    #[prost(oneof = "SignalResult", tags = "4, 5, 6")]
    pub result: Option<SignalResult>,
    /// Entry name (field 12, called `entry_name` here because `name` is the signal's).
    #[prost(string, tag = "12")]
    pub entry_name: String,
}

/// Which signal a [`SendSignalCommandMessage`] sends.
#[derive(Clone, PartialEq, Eq, Hash, prost::Oneof)]
pub enum SignalId {
    /// Signal index (1 = cancel, 17+ = awakeables).
    #[prost(uint32, tag = "2")]
    Idx(u32),
    /// Named signal.
    #[prost(string, tag = "3")]
    Name(String),
}

/// The result a [`SendSignalCommandMessage`] delivers.
#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum SignalResult {
    /// Empty result.
    #[prost(message, tag = "4")]
    Void(Void),
    /// A value.
    #[prost(message, tag = "5")]
    Value(Value),
    /// A failure.
    #[prost(message, tag = "6")]
    Failure(Failure),
}

impl SendSignalCommandMessage {
    /// The SignalNotification (0xFBFF) to append to the target's journal, or `None`
    /// if the signal id or result is missing.
    pub fn to_notification(&self) -> Option<NotificationMessage> {
        let id = match self.signal_id.clone()? {
            SignalId::Idx(idx) => NotificationId::SignalId(idx),
            SignalId::Name(name) => NotificationId::SignalName(name),
        };
        let result = self.result.clone()?.into();
        Some(NotificationMessage { id: Some(id), result: Some(result) })
    }
}

/// A `ctx.run` side effect; its result arrives via a proposal (0x0411; 0x8011).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RunCommandMessage {
    /// Completion id of the run's result.
    #[prost(uint32, tag = "11")]
    pub result_completion_id: u32,
    /// Entry name (the run's name).
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Wait for another invocation's result (0x0412; answered by 0x8012).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AttachInvocationCommandMessage {
    /// Which invocation.
    #[prost(oneof = "AttachTarget", tags = "1, 3, 4")]
    pub target: Option<AttachTarget>,
    /// Completion id of the answer.
    #[prost(uint32, tag = "11")]
    pub result_completion_id: u32,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// Look up another invocation's result without waiting (0x0413; answered by 0x8013).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GetInvocationOutputCommandMessage {
    /// Which invocation.
    #[prost(oneof = "AttachTarget", tags = "1, 3, 4")]
    pub target: Option<AttachTarget>,
    /// Completion id of the answer.
    #[prost(uint32, tag = "11")]
    pub result_completion_id: u32,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

/// The invocation an Attach or GetInvocationOutput command refers to.
#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum AttachTarget {
    /// By invocation id string.
    #[prost(string, tag = "1")]
    InvocationId(String),
    /// By target and idempotency key.
    #[prost(message, tag = "3")]
    IdempotentRequestTarget(IdempotentRequestTarget),
    /// By workflow run.
    #[prost(message, tag = "4")]
    WorkflowTarget(WorkflowTarget),
}

/// Complete an awakeable (`sign_1…` id) of some invocation (0x0414).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CompleteAwakeableCommandMessage {
    /// Awakeable id, `sign_1…` (or legacy `prom_1…`).
    #[prost(string, tag = "1")]
    pub awakeable_id: String,
    /// Value or failure.
    #[prost(oneof = "CompletionResult", tags = "2, 3")]
    pub result: Option<CompletionResult>,
    /// Entry name.
    #[prost(string, tag = "12")]
    pub name: String,
}

impl From<SignalResult> for NotificationResult {
    fn from(result: SignalResult) -> Self {
        match result {
            SignalResult::Void(void) => Self::Void(void),
            SignalResult::Value(value) => Self::Value(value),
            SignalResult::Failure(failure) => Self::Failure(failure),
        }
    }
}

impl From<CompletionResult> for NotificationResult {
    fn from(result: CompletionResult) -> Self {
        match result {
            CompletionResult::Value(value) => Self::Value(value),
            CompletionResult::Failure(failure) => Self::Failure(failure),
        }
    }
}

impl From<OutputResult> for NotificationResult {
    fn from(result: OutputResult) -> Self {
        match result {
            OutputResult::Value(value) => Self::Value(value),
            OutputResult::Failure(failure) => Self::Failure(failure),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn idempotency_key_presence_is_kept() {
        let with_empty = CallCommandMessage { idempotency_key: Some(String::new()), ..Default::default() };
        let decoded = CallCommandMessage::decode(with_empty.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(decoded.idempotency_key, Some(String::new()), "present but empty is not absent");
        let without = CallCommandMessage::decode(&[][..]).expect("decodes");
        assert_eq!(without.idempotency_key, None);
    }

    #[test]
    fn send_signal_becomes_a_signal_notification() {
        let send = SendSignalCommandMessage {
            target_invocation_id: "inv_1abc".into(),
            signal_id: Some(SignalId::Idx(17)),
            result: Some(SignalResult::Value(Value::new("ok"))),
            entry_name: String::new(),
        };
        assert_eq!(send.to_notification(), Some(NotificationMessage::signal(17, NotificationResult::value("ok"))));
        assert_eq!(SendSignalCommandMessage::default().to_notification(), None);
    }
}
