//! The [`Router`] holds a handle to each partition and sends requests to the one that owns a
//! key ([`partition_of`]).

use tokio::sync::{mpsc, oneshot};

use crate::engine::command::{Command, Outcome};
use crate::engine::records::InvocationResult;
use crate::engine::partitions::partition_of;
use crate::ids::InvocationId;

/// What a partition answers about an invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The command was applied.
    Applied(Outcome),
    /// The invocation finished.
    Completed { result: InvocationResult, expires_at: Option<u64> },
    /// No such invocation (never existed, or purged).
    NotFound,
    /// The invocation exists but has not finished.
    NotReady,
    /// The command could not be applied (a bug, reported in the log) and was not logged.
    Rejected(String),
}

/// How a caller wants to hear back about a command.
#[derive(Debug)]
pub enum ReplyMode {
    /// Not at all.
    None,
    /// Once the command is durable.
    Applied(oneshot::Sender<Reply>),
    /// Once the invocation the command created or found completes (sync calls).
    Completion(oneshot::Sender<Reply>),
}

#[derive(Debug)]
pub enum Request {
    /// Append and apply a command.
    Command { command: Command, reply: ReplyMode },
    /// Block until the invocation completes.
    Attach { id: InvocationId, reply: oneshot::Sender<Reply> },
    /// Answer now: its result, NotReady or NotFound.
    Output { id: InvocationId, reply: oneshot::Sender<Reply> },
    /// An outbox message this partition shipped was durably accepted by its target.
    Delivered { seq: u64 },
}

/// A partition's inbox of requests.
#[derive(Clone, Debug)]
pub struct PartitionHandle {
    pub tx: mpsc::UnboundedSender<Request>,
}

#[derive(Debug, thiserror::Error)]
#[error("partition {0} is not running")]
pub struct PartitionUnavailable(pub u32);

/// Handles to every partition.
#[derive(Clone, Debug)]
pub struct Router {
    partitions: Vec<PartitionHandle>,
}

impl Router {
    pub fn new(partitions: Vec<PartitionHandle>) -> Self {
        Self { partitions }
    }

    pub fn count(&self) -> u32 {
        self.partitions.len() as u32
    }

    pub fn send(&self, partition_key: u64, request: Request) -> Result<(), PartitionUnavailable> {
        let index = partition_of(partition_key, self.count());
        self.partitions[index as usize].tx.send(request).map_err(|_| PartitionUnavailable(index))
    }

    /// Sends and waits for the reply.
    pub async fn ask(
        &self,
        partition_key: u64,
        make: impl FnOnce(oneshot::Sender<Reply>) -> Request,
    ) -> Result<Reply, PartitionUnavailable> {
        let (tx, rx) = oneshot::channel();
        self.send(partition_key, make(tx))?;
        rx.await.map_err(|_| PartitionUnavailable(partition_of(partition_key, self.count())))
    }
}
