//! Commands: everything that changes a partition's state. Commands are appended to the
//! partition's log before they are applied, so they carry every input the state machine
//! needs (ids, times, resolved targets): applying the same log again yields the same state.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{DeploymentId, InvocationId};

pub use super::records::InvokeRequest;
use super::records::{
    FailureInfo, InvocationResult, Notification, OutboxMessage, PinnedDeployment, Retention, RetryPolicy, Target,
    Timer, TraceContext, WaitSet,
};

/// One entry of the log: the commands of one group commit and the leader's clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    /// Milliseconds since the Unix epoch when the leader applied the batch.
    pub now: u64,
    pub commands: Vec<Command>,
}

/// [`LogBatch`] borrowing its commands, to encode a batch before applying it; encodes to
/// the same bytes.
#[derive(Serialize)]
pub struct LogBatchRef<'a> {
    pub now: u64,
    pub commands: &'a [Command],
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A new invocation (from ingress, or delivered from another partition).
    Invoke(Box<InvokeRequest>),
    /// What the invoker saw during an attempt, in the order it saw it.
    Effects(Box<EffectBatch>),
    /// A durable timer fired.
    TimerFired(Timer),
    /// A message from another partition's outbox.
    Shuffle { source: u32, seq: u64, message: OutboxMessage },
    /// Outbox entries below `upto` reached their partitions and can be dropped.
    OutboxDelivered { upto: u64 },
    /// A notification from outside (awakeable completed through ingress).
    Notify { target: InvocationId, notification: Notification },
    /// An operator's request about one invocation (admin API).
    Control { id: InvocationId, request: ControlRequest },
    /// A deployment was removed with `force`: the invocations of this partition still pinned
    /// to it end with a terminal error naming it.
    DeploymentRemoved { deployment: DeploymentId },
    /// A paused deployment was resumed: the invocations it held go on.
    DeploymentResumed { deployment: DeploymentId },
}

/// What operators can do to an invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlRequest {
    /// Ask the handler to stop: it sees a cancellation and may compensate.
    Cancel,
    /// Stop now, without telling the handler; cascades to the invocations it called.
    Kill,
    /// Forget a completed invocation (result and journal).
    Purge,
    /// Drop the journal of a completed invocation, keep its result.
    PurgeJournal,
    /// Start a new invocation with the same target and input as a completed one.
    RestartAsNew { new_id: InvocationId },
    /// Stop retrying until resumed.
    Pause,
    /// Retry a paused invocation now.
    Resume,
    /// Resume it on another deployment (`resume?deployment=latest|dp_…`): its next attempt
    /// replays the journal there and pins it there.
    ResumeOn { deployment: DeploymentId },
}

/// Effects of one attempt, batched as the invoker read them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectBatch {
    pub id: InvocationId,
    pub attempt: u32,
    pub effects: Vec<Effect>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// The attempt chose this deployment and protocol version (first attempt only).
    Pinned(PinnedDeployment),
    /// The SDK sent a journal command, exactly as received.
    Command {
        ty: u16,
        payload: Bytes,
        /// For Call/OneWayCall: the callee, resolved against the schema by the invoker.
        call_target: Option<Target>,
        /// For Call/OneWayCall: the callee's retry policy and retention.
        call_policy: Option<(RetryPolicy, Retention)>,
        /// For Call/OneWayCall of a traced invocation: the callee's place in the trace.
        #[serde(default)]
        call_trace: Option<TraceContext>,
    },
    /// The SDK proposed the result of a `ctx.run`.
    ProposeRun { completion_id: u32, result: InvocationResult },
    /// The SDK suspended, waiting for any of these.
    Suspended(WaitSet),
    /// The SDK ended the invocation (its Output command is already in the journal).
    Ended,
    /// The attempt failed and should be retried (or paused/killed by policy); a `terminal`
    /// failure ends the invocation at once (its handler or deployment is gone).
    Failed {
        failure: FailureInfo,
        next_retry_delay_ms: Option<u64>,
        #[serde(default)]
        terminal: bool,
    },
    /// The first attempt chose a revision: the invocation takes its retry policy and
    /// retention from it (not from the revision that was latest when it was created).
    Settings { retry_policy: RetryPolicy, retention: Retention },
    /// The deployment it runs on is paused: the invocation waits as paused, held by it,
    /// until the deployment is resumed (or the invocation is).
    Held { message: String },
}

/// What a control request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlOutcome {
    /// Done now.
    Done,
    /// Delivered to the invocation (a cancel signal): it finishes on its own.
    Appended,
    NotFound,
    AlreadyCompleted,
    NotCompleted,
    /// The journal (input) is gone: cannot restart.
    InputGone,
    /// Not possible for this kind of invocation.
    Unsupported(String),
    /// The invocation has not started yet (inboxed or scheduled).
    NotStarted,
    Restarted(InvocationId),
}

/// What applying a command answers to whoever submitted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to tell.
    None,
    /// The invocation was created now.
    Accepted,
    /// An invocation with this id already exists and is not finished.
    PreviouslyAccepted,
    /// An invocation with this id already finished: here is its result.
    Completed {
        result: InvocationResult,
        expires_at: Option<u64>,
    },
    Control(ControlOutcome),
}
