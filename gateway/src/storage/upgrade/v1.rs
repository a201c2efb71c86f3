//! Storage format 1, frozen: the records exactly as perdure wrote them up to commit 3d2a799,
//! in postcard (which stores neither field names nor counts, and variants by index, so these
//! definitions must never change). An upgrade decodes a record with these types and
//! re-encodes it in today's envelope ([`super::super::codec`]), whose fields and variants
//! line up with these (the current records only ever add fields and variants at the end):
//! the current build then reads it like any record it wrote itself, including fields added
//! since (they take their defaults).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// `InvocationId` as format 1 stored it (derived serde of `{ partition_key, uuid }`); written
/// out as today's id.
#[derive(Deserialize)]
pub struct Id {
    partition_key: u64,
    uuid: u128,
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::ids::InvocationId::new(self.partition_key, self.uuid).serialize(s)
    }
}

/// `DeploymentId` as format 1 stored it; written out as today's id.
#[derive(Deserialize)]
pub struct DpId(u128);

impl Serialize for DpId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::ids::DeploymentId(self.0).serialize(s)
    }
}

#[derive(Serialize, Deserialize)]
pub enum ServiceKind {
    Service,
    VirtualObject,
    Workflow,
}

#[derive(Serialize, Deserialize)]
pub enum HandlerKind {
    Unkeyed,
    Exclusive,
    Shared,
    Workflow,
}

#[derive(Serialize, Deserialize)]
pub struct Target {
    pub service: String,
    pub handler: String,
    pub key: Option<String>,
    pub service_kind: ServiceKind,
    pub handler_kind: HandlerKind,
}

#[derive(Serialize, Deserialize)]
pub struct RetryPolicy {
    pub initial_interval_ms: u64,
    pub factor: f64,
    pub max_interval_ms: u64,
    pub max_attempts: Option<u32>,
    pub on_max_attempts: OnMaxAttempts,
}

#[derive(Serialize, Deserialize)]
pub enum OnMaxAttempts {
    Pause,
    Kill,
}

#[derive(Serialize, Deserialize)]
pub struct Retention {
    pub completion_ms: u64,
    pub journal_ms: u64,
}

#[derive(Serialize, Deserialize)]
pub enum Source {
    Ingress,
    Service { caller: Id, caller_target: String },
}

#[derive(Serialize, Deserialize)]
pub enum Sink {
    Caller { caller: Id, completion_id: u32 },
    Attacher { caller: Id, completion_id: u32 },
}

#[derive(Serialize, Deserialize)]
pub struct Lock {
    pub holder: Option<Id>,
    pub inbox_from: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Promise {
    pub result: Option<InvocationResult>,
    pub waiters: Vec<(Id, u32)>,
}

#[derive(Serialize, Deserialize)]
pub enum InvocationResult {
    Success(Bytes),
    Failure { code: u16, message: String },
}

#[derive(Serialize, Deserialize)]
pub struct PinnedDeployment {
    pub deployment: DpId,
    pub protocol_version: u32,
    pub executed_version: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct WaitSet {
    pub completions: Vec<u32>,
    pub signals: Vec<u32>,
    pub named_signals: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub enum Phase {
    Scheduled { at_ms: u64 },
    Inboxed { seq: u64 },
    Invoked,
    Suspended { waiting: WaitSet },
    Paused,
    Completed { result: InvocationResult },
}

#[derive(Serialize, Deserialize)]
pub struct FailureInfo {
    pub code: u16,
    pub message: String,
    pub related_command_index: Option<u32>,
    pub related_command_name: Option<String>,
    pub related_command_type: Option<u16>,
}

#[derive(Serialize, Deserialize)]
pub struct AttemptState {
    pub attempt: u32,
    pub in_flight: bool,
    pub retry_count: u32,
    pub failures: u32,
    pub last_failure: Option<FailureInfo>,
    pub next_retry_at_ms: Option<u64>,
    pub last_start_at_ms: Option<u64>,
    pub known_entries: u32,
}

#[derive(Serialize, Deserialize)]
pub struct Timestamps {
    pub created_at: u64,
    pub modified_at: u64,
    pub inboxed_at: Option<u64>,
    pub scheduled_at: Option<u64>,
    pub running_at: Option<u64>,
    pub completed_at: Option<u64>,
}

#[derive(Serialize, Deserialize)]
pub struct InvocationStatus {
    pub target: Target,
    pub phase: Phase,
    pub source: Source,
    pub idempotency_key: Option<String>,
    pub deployment: Option<PinnedDeployment>,
    pub journal_len: u32,
    pub commands: u32,
    pub journal_modified_at: u64,
    pub output_index: Option<u32>,
    pub attempt: AttemptState,
    pub sinks: Vec<Sink>,
    pub retry_policy: RetryPolicy,
    pub retention: Retention,
    pub timestamps: Timestamps,
    pub journal_purged: bool,
}

#[derive(Serialize, Deserialize)]
pub struct JournalEntry {
    pub ty: u16,
    pub payload: Bytes,
    pub appended_at: u64,
}

#[derive(Serialize, Deserialize)]
pub enum TimerKind {
    Sleep { completion_id: u32 },
    Retry { attempt: u32 },
    Scheduled,
    Cleanup,
    JournalCleanup,
}

#[derive(Serialize, Deserialize)]
pub struct Timer {
    pub fire_at: u64,
    pub invocation: Id,
    pub kind: TimerKind,
}

#[derive(Serialize, Deserialize)]
pub struct InvokeRequest {
    pub id: Id,
    pub target: Target,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub source: Source,
    pub idempotency_key: Option<String>,
    pub execute_at: Option<u64>,
    pub sink: Option<Sink>,
    pub retry_policy: RetryPolicy,
    pub retention: Retention,
}

#[derive(Serialize, Deserialize)]
pub enum OutboxMessage {
    Invoke(Box<InvokeRequest>),
    Notify { target: Id, notification: Notification },
    Attach { target: Id, caller: Id, completion_id: u32, wait: bool },
    Kill { target: Id },
}

#[derive(Serialize, Deserialize)]
pub struct Notification {
    pub ty: u16,
    pub id: NotificationId,
    pub result: NotificationResult,
}

#[derive(Serialize, Deserialize)]
pub enum NotificationId {
    Completion(u32),
    Signal(u32),
    NamedSignal(String),
}

#[derive(Serialize, Deserialize)]
pub enum NotificationResult {
    Void,
    Value(Bytes),
    Failure { code: u16, message: String },
    Id(String),
    StateKeys(Vec<Bytes>),
}

#[derive(Serialize, Deserialize)]
pub struct PartitionMeta {
    pub applied_lsn: u64,
    pub next_inbox_seq: u64,
    pub next_outbox_seq: u64,
    pub outbox_delivered: u64,
    pub dedup: BTreeMap<u32, u64>,
}

#[derive(Serialize, Deserialize)]
pub struct LogBatch {
    pub now: u64,
    pub commands: Vec<Command>,
}

#[derive(Serialize, Deserialize)]
pub enum Command {
    Invoke(Box<InvokeRequest>),
    Effects(Box<EffectBatch>),
    TimerFired(Timer),
    Shuffle { source: u32, seq: u64, message: OutboxMessage },
    OutboxDelivered { upto: u64 },
    Notify { target: Id, notification: Notification },
    Control { id: Id, request: ControlRequest },
}

#[derive(Serialize, Deserialize)]
pub enum ControlRequest {
    Cancel,
    Kill,
    Purge,
    PurgeJournal,
    RestartAsNew { new_id: Id },
    Pause,
    Resume,
}

#[derive(Serialize, Deserialize)]
pub struct EffectBatch {
    pub id: Id,
    pub attempt: u32,
    pub effects: Vec<Effect>,
}

#[derive(Serialize, Deserialize)]
pub enum Effect {
    Pinned(PinnedDeployment),
    Command { ty: u16, payload: Bytes, call_target: Option<Target>, call_policy: Option<(RetryPolicy, Retention)> },
    ProposeRun { completion_id: u32, result: InvocationResult },
    Suspended(WaitSet),
    Ended,
    Failed { failure: FailureInfo, next_retry_delay_ms: Option<u64> },
}
