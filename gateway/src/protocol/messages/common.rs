//! Nested messages shared by several messages (spec §6).

use bytes::Bytes;

/// A successful result or payload: `Value { 1 content: bytes }`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Value {
    /// The raw bytes (usually JSON, as produced by the SDK's serde).
    #[prost(bytes = "bytes", tag = "1")]
    pub content: Bytes,
}

impl Value {
    /// Wraps `content`.
    pub fn new(content: impl Into<Bytes>) -> Self {
        Self { content: content.into() }
    }
}

/// The empty result (e.g. "state key absent", "sleep fired").
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Void {}

/// A terminal failure: HTTP-like code and message, plus V6 metadata.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Failure {
    /// HTTP-like error code (e.g. 404, 409, 500).
    #[prost(uint32, tag = "1")]
    pub code: u32,
    /// Human-readable message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Key/value metadata (V6; V5 SDKs never send it).
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<FailureMetadata>,
}

impl Failure {
    /// A failure with `code` and `message` and no metadata.
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), metadata: Vec::new() }
    }
}

/// One metadata pair of a [`Failure`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FailureMetadata {
    /// Metadata key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Metadata value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// One header of an input or an outgoing call.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Header {
    /// Header name.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Header value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A list of state keys.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StateKeys {
    /// The keys (UTF-8 bytes).
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub keys: Vec<Bytes>,
}

/// Addresses a workflow run: service name and workflow key.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WorkflowTarget {
    /// Workflow service name.
    #[prost(string, tag = "1")]
    pub workflow_name: String,
    /// Workflow key.
    #[prost(string, tag = "2")]
    pub workflow_key: String,
}

/// Addresses an invocation by target and idempotency key.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct IdempotentRequestTarget {
    /// Service name.
    #[prost(string, tag = "1")]
    pub service_name: String,
    /// Object/workflow key; absent for plain services.
    #[prost(string, optional, tag = "2")]
    pub service_key: Option<String>,
    /// Handler name.
    #[prost(string, tag = "3")]
    pub handler_name: String,
    /// The idempotency key.
    #[prost(string, tag = "4")]
    pub idempotency_key: String,
}
