//! The records a partition keeps: invocation status, journal entries, timers, inbox
//! entries, outbox messages. They are plain data, serialized by `storage/` behind a
//! versioned envelope; nothing here does I/O.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{DeploymentId, InvocationId};
use crate::protocol::messages::ty;

/// What kind of service an invocation targets, as the engine needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceKind {
    Service,
    VirtualObject,
    Workflow,
}

/// How a handler of a keyed service treats the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandlerKind {
    /// Plain services: no key, no lock.
    Unkeyed,
    /// Holds the key's lock while it runs; later ones wait in the inbox.
    Exclusive,
    /// Runs concurrently with the lock holder; may only read state.
    Shared,
    /// The workflow's `run`: exclusive, runs once per key.
    Workflow,
}

impl HandlerKind {
    pub fn takes_lock(self) -> bool {
        matches!(self, HandlerKind::Exclusive | HandlerKind::Workflow)
    }
}

/// The handler an invocation runs: service, optional key, handler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub service: String,
    pub handler: String,
    pub key: Option<String>,
    pub service_kind: ServiceKind,
    pub handler_kind: HandlerKind,
}

impl Target {
    /// The object (service + key) this target addresses, for keyed services.
    pub fn object(&self) -> Option<ObjectKey> {
        self.key.as_ref().map(|key| ObjectKey { service: self.service.clone(), key: key.clone() })
    }

    /// `Svc/handler` or `Svc/key/handler`, as SQL and the CLI show targets.
    pub fn display(&self) -> String {
        match &self.key {
            Some(k) => format!("{}/{}/{}", self.service, k, self.handler),
            None => format!("{}/{}", self.service, self.handler),
        }
    }
}

/// A virtual object or workflow instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    pub service: String,
    pub key: String,
}

impl ObjectKey {
    pub fn partition_key(&self) -> u64 {
        crate::ids::partition_key_of(self.key.as_bytes())
    }
}

/// The retry policy resolved for an invocation when it was created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub initial_interval_ms: u64,
    pub factor: f64,
    pub max_interval_ms: u64,
    /// `None` retries forever.
    pub max_attempts: Option<u32>,
    pub on_max_attempts: OnMaxAttempts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnMaxAttempts {
    Pause,
    Kill,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_interval_ms: 500,
            factor: 2.0,
            max_interval_ms: 60_000,
            max_attempts: Some(70),
            on_max_attempts: OnMaxAttempts::Pause,
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `failures` (1 = the first retry).
    pub fn delay_ms(&self, failures: u32) -> u64 {
        let exp = self.factor.powi(failures.saturating_sub(1).min(64) as i32);
        let d = self.initial_interval_ms as f64 * exp;
        if d.is_finite() { (d as u64).min(self.max_interval_ms) } else { self.max_interval_ms }
    }

    pub fn exhausted(&self, failures: u32) -> bool {
        self.max_attempts.is_some_and(|max| failures >= max)
    }
}

/// How long completed invocations are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Result kept (attach/output/dedup) for this long after completion.
    pub completion_ms: u64,
    /// Journal kept for this long after completion.
    pub journal_ms: u64,
}

/// Who created an invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    Ingress,
    Service { caller: InvocationId, caller_target: String },
}

/// Where a result goes when the invocation completes (besides in-memory ingress waiters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sink {
    /// A caller's journal waits for the result of its Call under `completion_id`.
    Caller { caller: InvocationId, completion_id: u32 },
    /// An invocation attached to this one (AttachInvocation command) under `completion_id`.
    Attacher { caller: InvocationId, completion_id: u32 },
}

impl Sink {
    /// The notification that delivers `result` to this sink, and who receives it.
    pub fn notification(&self, result: InvocationResult) -> (InvocationId, Notification) {
        let (caller, completion_id, ty) = match self {
            Sink::Caller { caller, completion_id } => (*caller, *completion_id, ty::CALL_COMPLETION_NOTIFICATION),
            Sink::Attacher { caller, completion_id } => {
                (*caller, *completion_id, ty::ATTACH_INVOCATION_COMPLETION_NOTIFICATION)
            }
        };
        (caller, Notification { ty, id: NotificationId::Completion(completion_id), result: result.into() })
    }
}

/// A virtual object's (or workflow's) lock: who holds it, and where its inbox continues.
/// The record stays when the lock is free, so the inbox cursor survives: inbox entries
/// below `inbox_from` are all gone, and looking for the next one never walks over them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub holder: Option<InvocationId>,
    pub inbox_from: u64,
}

/// A workflow's durable promise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    /// Set once resolved or rejected.
    pub result: Option<InvocationResult>,
    /// Invocations waiting in GetPromise: (invocation, completion id).
    pub waiters: Vec<(InvocationId, u32)>,
}

/// The outcome of a finished invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvocationResult {
    Success(Bytes),
    Failure { code: u16, message: String },
}

/// The deployment an invocation is pinned to, recorded at its first attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedDeployment {
    pub deployment: DeploymentId,
    pub protocol_version: u32,
    /// For a Lambda alias: the function version that ran the first attempt
    /// (`X-Amz-Executed-Version`); later attempts invoke exactly it. `None` for HTTP.
    pub executed_version: Option<String>,
    /// The revision of the service the first attempt ran (0 when recorded before format 3).
    #[serde(default)]
    pub revision: u32,
}

/// What an invocation waits for while suspended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitSet {
    pub completions: Vec<u32>,
    pub signals: Vec<u32>,
    pub named_signals: Vec<String>,
}

/// The life of an invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Delayed: starts at `at_ms`.
    Scheduled { at_ms: u64 },
    /// Waiting in the key's inbox for the lock.
    Inboxed { seq: u64 },
    /// Has (or is about to get) an attempt, or is backing off before the next one.
    Invoked,
    /// Parked until one of the awaited notifications arrives.
    Suspended { waiting: WaitSet },
    /// Stopped after exhausting its retries; resumes only by an operator.
    Paused,
    /// Finished; kept for the retention period.
    Completed { result: InvocationResult },
}

/// The last failed attempt, as SQL and the CLI show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureInfo {
    pub code: u16,
    pub message: String,
    pub related_command_index: Option<u32>,
    pub related_command_name: Option<String>,
    pub related_command_type: Option<u16>,
}

/// Attempt bookkeeping.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptState {
    /// Number of the current attempt; effects of other attempts are ignored.
    pub attempt: u32,
    /// Whether the current attempt is running (an `Invoke` action was emitted and it has
    /// not yet ended, suspended or failed).
    pub in_flight: bool,
    /// Failed attempts since the SDK last produced a new journal entry.
    pub retry_count: u32,
    /// Failed attempts in total.
    pub failures: u32,
    pub last_failure: Option<FailureInfo>,
    pub next_retry_at_ms: Option<u64>,
    pub last_start_at_ms: Option<u64>,
    /// Journal length when the current attempt started (entries at or after it are live).
    pub known_entries: u32,
}

/// Timestamps in ms since the Unix epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamps {
    pub created_at: u64,
    pub modified_at: u64,
    pub inboxed_at: Option<u64>,
    pub scheduled_at: Option<u64>,
    pub running_at: Option<u64>,
    pub completed_at: Option<u64>,
}

/// Everything a partition knows about one invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvocationStatus {
    pub target: Target,
    pub phase: Phase,
    pub source: Source,
    pub idempotency_key: Option<String>,
    pub deployment: Option<PinnedDeployment>,
    /// Entries in the journal (commands and notifications).
    pub journal_len: u32,
    /// Commands in the journal.
    pub commands: u32,
    /// When the journal last changed.
    pub journal_modified_at: u64,
    /// Index of the Output command, once the SDK wrote it.
    pub output_index: Option<u32>,
    pub attempt: AttemptState,
    pub sinks: Vec<Sink>,
    pub retry_policy: RetryPolicy,
    pub retention: Retention,
    pub timestamps: Timestamps,
    /// Set once the journal has been removed after completion.
    pub journal_purged: bool,
    /// Where the first attempt goes instead of the latest revision (the ingress's
    /// `x-perdure-deployment`), until it is pinned.
    #[serde(default)]
    pub requested_deployment: Option<DeploymentId>,
    /// Paused because its deployment is (not by a user or the retry policy): resuming the
    /// deployment resumes it.
    #[serde(default)]
    pub held: bool,
    /// Its place in a trace, when traces were exported as it was created.
    #[serde(default)]
    pub trace: Option<TraceContext>,
}

impl InvocationStatus {
    /// Its phase by name (`sys_invocation_status.status`): inboxed, scheduled, invoked,
    /// suspended, paused or completed.
    pub fn raw_status(&self) -> &'static str {
        match self.phase {
            Phase::Inboxed { .. } => "inboxed",
            Phase::Scheduled { .. } => "scheduled",
            Phase::Invoked => "invoked",
            Phase::Suspended { .. } => "suspended",
            Phase::Paused => "paused",
            Phase::Completed { .. } => "completed",
        }
    }

    /// The status users see (`sys_invocation.status`, the admin API, the CLIs): pending,
    /// scheduled, ready, running, backing-off, suspended, paused or completed.
    pub fn user_status(&self) -> &'static str {
        match self.phase {
            Phase::Inboxed { .. } => "pending",
            Phase::Invoked if self.attempt.in_flight => "running",
            Phase::Invoked if self.attempt.retry_count > 0 || self.attempt.next_retry_at_ms.is_some() => "backing-off",
            Phase::Invoked => "ready",
            _ => self.raw_status(),
        }
    }

    /// A fresh, not-yet-started status for `target` (tests build on it).
    #[cfg(test)]
    pub fn sample(target: Target, phase: Phase) -> Self {
        InvocationStatus {
            target,
            phase,
            source: Source::Ingress,
            idempotency_key: None,
            deployment: None,
            journal_len: 1,
            commands: 1,
            journal_modified_at: 0,
            output_index: None,
            attempt: AttemptState::default(),
            sinks: vec![],
            retry_policy: RetryPolicy::default(),
            retention: Retention::default(),
            timestamps: Timestamps::default(),
            journal_purged: false,
            requested_deployment: None,
            held: false,
            trace: None,
        }
    }

    /// The deployment this invocation runs on: the one it is pinned to, or before its first
    /// attempt the one it was sent to (`x-perdure-deployment`). The drain counters and the
    /// pinned index list it under that deployment.
    pub fn bound_to(&self) -> Option<DeploymentId> {
        self.deployment.as_ref().map(|p| p.deployment).or(self.requested_deployment)
    }
}

/// Where a not-completed invocation stands, as the drain counters of its deployment count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DrainClass {
    /// An attempt is running.
    Running,
    /// Waiting for a completion (sleep, call, awakeable, promise).
    Suspended,
    /// Waiting for its next attempt after a failure.
    BackingOff,
    /// Stopped after its retries, until an operator resumes it.
    Paused,
    /// Not started, delayed; sent to this deployment (`x-perdure-deployment`).
    Scheduled,
    /// Not started, waiting in its key's inbox; sent to this deployment.
    Inboxed,
}

/// What one partition holds for one deployment: its pinned, not-completed invocations by
/// where they stand.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainCounts {
    pub running: u64,
    pub suspended: u64,
    pub backing_off: u64,
    pub paused: u64,
    /// Not started yet, but bound for this deployment (sent with `x-perdure-deployment`).
    #[serde(default)]
    pub scheduled: u64,
    #[serde(default)]
    pub inboxed: u64,
}

impl DrainCounts {
    pub fn total(&self) -> u64 {
        self.running + self.suspended + self.backing_off + self.paused + self.scheduled + self.inboxed
    }

    fn slot(&mut self, class: DrainClass) -> &mut u64 {
        match class {
            DrainClass::Running => &mut self.running,
            DrainClass::Suspended => &mut self.suspended,
            DrainClass::BackingOff => &mut self.backing_off,
            DrainClass::Paused => &mut self.paused,
            DrainClass::Scheduled => &mut self.scheduled,
            DrainClass::Inboxed => &mut self.inboxed,
        }
    }

    /// Counts one more (`up`) or one fewer invocation in `class`.
    pub fn adjust(&mut self, class: DrainClass, up: bool) {
        let slot = self.slot(class);
        *slot = if up { slot.saturating_add(1) } else { slot.saturating_sub(1) };
    }

    pub fn add(&mut self, other: &DrainCounts) {
        self.running += other.running;
        self.suspended += other.suspended;
        self.backing_off += other.backing_off;
        self.paused += other.paused;
        self.scheduled += other.scheduled;
        self.inboxed += other.inboxed;
    }
}

/// What the counters a partition keeps about one invocation are made of: the deployment it
/// is pinned to and where it stands, and the handler it runs, while it is not completed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub pinned: Option<(DeploymentId, DrainClass)>,
    /// `service/handler` of a not-completed invocation, pinned or not yet started.
    pub handler: Option<String>,
}

impl Census {
    pub fn of(status: Option<&InvocationStatus>) -> Self {
        let Some(s) = status.filter(|s| !s.is_completed()) else { return Self::default() };
        let class = match &s.phase {
            Phase::Invoked if s.attempt.in_flight => Some(DrainClass::Running),
            Phase::Invoked => Some(DrainClass::BackingOff),
            Phase::Suspended { .. } => Some(DrainClass::Suspended),
            Phase::Paused => Some(DrainClass::Paused),
            Phase::Scheduled { .. } => Some(DrainClass::Scheduled),
            Phase::Inboxed { .. } => Some(DrainClass::Inboxed),
            Phase::Completed { .. } => None,
        };
        Census { pinned: s.bound_to().zip(class), handler: Some(handler_key(&s.target.service, &s.target.handler)) }
    }
}

/// The key of a handler in [`PartitionMeta::handlers`].
pub fn handler_key(service: &str, handler: &str) -> String {
    format!("{service}/{handler}")
}

impl InvocationStatus {
    pub fn is_completed(&self) -> bool {
        matches!(self.phase, Phase::Completed { .. })
    }

    pub fn result(&self) -> Option<&InvocationResult> {
        match &self.phase {
            Phase::Completed { result } => Some(result),
            _ => None,
        }
    }

    /// When the kept result expires, for the `idempotency-expires` header.
    pub fn expires_at(&self) -> Option<u64> {
        self.timestamps.completed_at.map(|c| c.saturating_add(self.retention.completion_ms))
    }
}

/// One journal entry exactly as it travels on the wire: message type and protobuf payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub ty: u16,
    pub payload: Bytes,
    pub appended_at: u64,
}

/// What a timer does when it fires.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TimerKind {
    /// Complete a Sleep command's completion id.
    Sleep { completion_id: u32 },
    /// Start the next attempt after a backoff.
    Retry { attempt: u32 },
    /// Start a delayed invocation.
    Scheduled,
    /// Remove a completed invocation whose retention ended.
    Cleanup,
    /// Remove the journal of a completed invocation whose journal retention ended.
    JournalCleanup,
}

/// A durable timer: fires at `fire_at` (ms since epoch) for an invocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timer {
    pub fire_at: u64,
    pub invocation: InvocationId,
    pub kind: TimerKind,
}

/// A request to create an invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvokeRequest {
    pub id: InvocationId,
    pub target: Target,
    /// Headers handed to the handler (Input command headers).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub source: Source,
    pub idempotency_key: Option<String>,
    /// Start no earlier than this (ms since epoch): delayed sends.
    pub execute_at: Option<u64>,
    /// A caller's journal that waits for the result.
    pub sink: Option<Sink>,
    pub retry_policy: RetryPolicy,
    pub retention: Retention,
    /// The deployment its first attempt goes to, instead of the latest revision.
    #[serde(default)]
    pub deployment: Option<DeploymentId>,
    /// Its place in a trace (see [`TraceContext`]).
    #[serde(default)]
    pub trace: Option<TraceContext>,
}

/// Where an invocation sits in a distributed trace (W3C Trace Context): decided where it is
/// created and stored with it, so that every attempt, after restarts too, continues the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub trace_id: u128,
    /// The invocation's own span; its attempts are children of it.
    pub span_id: u64,
    /// What created it: the ingress request's span, or the caller's call step.
    pub parent_span_id: u64,
    /// Recorded (exported); a context that is not still propagates to the deployment.
    pub sampled: bool,
}

/// A message from one partition to another, kept in the sender's outbox until delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OutboxMessage {
    /// Create an invocation on the partition that owns its key.
    Invoke(Box<InvokeRequest>),
    /// Deliver a result into a caller's journal.
    Notify { target: InvocationId, notification: Notification },
    /// An invocation asks for another's result: wait for it (attach) or look (output).
    Attach { target: InvocationId, caller: InvocationId, completion_id: u32, wait: bool },
    /// Kill an invocation (cascading from a killed parent).
    Kill { target: InvocationId },
}

impl OutboxMessage {
    pub fn partition_key(&self) -> u64 {
        match self {
            OutboxMessage::Invoke(req) => req.id.partition_key,
            OutboxMessage::Notify { target, .. }
            | OutboxMessage::Attach { target, .. }
            | OutboxMessage::Kill { target } => target.partition_key,
        }
    }
}

/// A notification to append to a journal: a completion for a completion id or a signal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Notification message type (e.g. 0x800D for a call result).
    pub ty: u16,
    pub id: NotificationId,
    pub result: NotificationResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationId {
    Completion(u32),
    Signal(u32),
    NamedSignal(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationResult {
    Void,
    Value(Bytes),
    Failure { code: u16, message: String },
    InvocationId(String),
    StateKeys(Vec<Bytes>),
}

impl From<InvocationResult> for NotificationResult {
    fn from(r: InvocationResult) -> Self {
        match r {
            InvocationResult::Success(v) => NotificationResult::Value(v),
            InvocationResult::Failure { code, message } => NotificationResult::Failure { code, message },
        }
    }
}

/// Per-partition counters and bookkeeping, stored as one record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Last log sequence number whose effects are in this state.
    pub applied_lsn: u64,
    pub next_inbox_seq: u64,
    pub next_outbox_seq: u64,
    /// Outbox entries below this sequence were delivered and removed.
    pub outbox_delivered: u64,
    /// Highest outbox sequence seen from each source partition (deduplication).
    pub dedup: std::collections::BTreeMap<u32, u64>,
    /// Not-completed invocations pinned to each deployment, by where they stand (the drain
    /// status of deployments; kept exact in the same write batch as the invocations).
    #[serde(default)]
    pub deployments: std::collections::BTreeMap<DeploymentId, DrainCounts>,
    /// Not-completed invocations of each `service/handler`, started or not.
    #[serde(default)]
    pub handlers: std::collections::BTreeMap<String, u64>,
}

impl PartitionMeta {
    /// Moves one invocation's counts from what it was to what it is.
    pub fn recount(&mut self, before: &Census, after: &Census) {
        if before == after {
            return;
        }
        if before.pinned != after.pinned {
            if let Some((d, class)) = before.pinned {
                let counts = self.deployments.entry(d).or_default();
                counts.adjust(class, false);
                if counts.total() == 0 {
                    self.deployments.remove(&d);
                }
            }
            if let Some((d, class)) = after.pinned {
                self.deployments.entry(d).or_default().adjust(class, true);
            }
        }
        if before.handler != after.handler {
            if let Some(h) = &before.handler
                && let Some(n) = self.handlers.get_mut(h)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.handlers.remove(h);
                }
            }
            if let Some(h) = &after.handler {
                *self.handlers.entry(h.clone()).or_default() += 1;
            }
        }
    }
}
