//! Actions: the side effects a state transition asks for. The partition performs them only
//! after the batch that produced them is durable (commit, then act), each in one arm of
//! the partition service's `perform`.

use crate::ids::{DeploymentId, InvocationId};

use super::records::{
    InvocationResult, InvocationStatus, JournalEntry, OutboxMessage, PinnedDeployment, Target, Timer, TraceContext,
};

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start an attempt of this invocation. The invoker reads journal entries
    /// `0..journal_len` from storage, and eager state for keyed targets.
    Invoke(Box<InvokeAttempt>),
    /// A notification was appended to the journal of an invocation whose attempt is running:
    /// forward it to the SDK if the attempt streams (bidi).
    Forward { id: InvocationId, attempt: u32, index: u32, entry: JournalEntry },
    /// Stop the running attempt without telling the SDK anything more.
    Abort { id: InvocationId, attempt: u32 },
    /// The invocation finished: answer everyone waiting on it through ingress.
    Completed {
        id: InvocationId,
        result: InvocationResult,
        expires_at: Option<u64>,
        /// What its span is made of, when it was traced (sampled).
        traced: Option<Box<TracedRun>>,
    },
    /// The invocation's result is gone (purged): waiters learn it does not exist.
    Forgotten { id: InvocationId },
    /// Arm a timer.
    ScheduleTimer(Timer),
    /// Send an outbox message to the partition owning its target.
    Ship { seq: u64, message: OutboxMessage },
}

/// Everything an attempt needs to start.
#[derive(Clone, Debug, PartialEq)]
pub struct InvokeAttempt {
    pub id: InvocationId,
    pub attempt: u32,
    pub target: Target,
    pub deployment: Option<PinnedDeployment>,
    /// Not pinned yet: the deployment the first attempt goes to instead of the latest.
    pub requested_deployment: Option<DeploymentId>,
    pub journal_len: u32,
    pub retry_count: u32,
    pub journal_modified_at: u64,
    /// Its place in a trace: the attempt's span is a child of the invocation's.
    pub trace: Option<super::records::TraceContext>,
}

impl InvokeAttempt {
    /// The current attempt of an invocation, as its status describes it.
    pub fn of(id: InvocationId, status: &InvocationStatus) -> Self {
        Self {
            id,
            attempt: status.attempt.attempt,
            target: status.target.clone(),
            deployment: status.deployment.clone(),
            requested_deployment: status.requested_deployment,
            journal_len: status.journal_len,
            retry_count: status.attempt.retry_count,
            journal_modified_at: status.journal_modified_at,
            trace: status.trace,
        }
    }
}

/// A traced invocation's run, as its span shows it (built by whoever performs
/// [`Action::Completed`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TracedRun {
    pub trace: TraceContext,
    pub target: Target,
    pub created_at: u64,
    pub completed_at: u64,
    pub attempts: u32,
    pub deployment: Option<DeploymentId>,
}

impl TracedRun {
    /// The run of an invocation completing at `now`, if it is traced.
    pub fn of(status: &InvocationStatus, now: u64) -> Option<Box<Self>> {
        let trace = status.trace.filter(|t| t.sampled)?;
        Some(Box::new(Self {
            trace,
            target: status.target.clone(),
            created_at: status.timestamps.created_at,
            completed_at: now,
            attempts: status.attempt.attempt,
            deployment: status.deployment.as_ref().map(|p| p.deployment),
        }))
    }
}
