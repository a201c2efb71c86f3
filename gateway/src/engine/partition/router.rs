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

/// A partition's two inboxes: work already under way (attempts' journal entries, messages
/// between partitions, admin commands), which must always get in, and new requests from the
/// ingress, bounded, so a partition that falls behind sheds them instead of buffering.
#[derive(Clone, Debug)]
pub struct PartitionHandle {
    pub tx: mpsc::UnboundedSender<Request>,
    pub ingress: mpsc::Sender<Request>,
}

/// Where a partition's requests arrive: see [`PartitionHandle`].
#[derive(Debug)]
pub struct Inbox {
    pub internal: mpsc::UnboundedReceiver<Request>,
    pub ingress: mpsc::Receiver<Request>,
}

impl PartitionHandle {
    /// A partition's handle and inbox, holding at most `ingress_capacity` ingress requests.
    pub fn channel(ingress_capacity: usize) -> (Self, Inbox) {
        let (tx, internal) = mpsc::unbounded_channel();
        let (ingress_tx, ingress) = mpsc::channel(ingress_capacity.max(1));
        (Self { tx, ingress: ingress_tx }, Inbox { internal, ingress })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("partition {0} is not running")]
pub struct PartitionUnavailable(pub u32);

/// Why the ingress could not hand a request to its partition.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("partition {0} is not running")]
    Unavailable(u32),
    /// Its ingress queue is full: the partition is behind.
    #[error("partition {0} is overloaded")]
    Overloaded(u32),
}

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

    /// Each partition's ingress queue: requests waiting in it, or `None` once its task has
    /// stopped.
    pub fn ingress_queues(&self) -> Vec<Option<usize>> {
        self.partitions
            .iter()
            .map(|p| (!p.ingress.is_closed()).then(|| p.ingress.max_capacity() - p.ingress.capacity()))
            .collect()
    }

    pub fn send(&self, partition_key: u64, request: Request) -> Result<(), PartitionUnavailable> {
        let index = partition_of(partition_key, self.count());
        self.partitions[index as usize].tx.send(request).map_err(|_| PartitionUnavailable(index))
    }

    /// Offers a request from the ingress: refused at once when the partition's ingress queue
    /// is full.
    pub fn offer(&self, partition_key: u64, request: Request) -> Result<(), Refused> {
        let index = partition_of(partition_key, self.count());
        self.partitions[index as usize].ingress.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Refused::Overloaded(index),
            mpsc::error::TrySendError::Closed(_) => Refused::Unavailable(index),
        })
    }

    /// Offers a request from the ingress and waits for the reply.
    pub async fn offer_and_wait(
        &self,
        partition_key: u64,
        make: impl FnOnce(oneshot::Sender<Reply>) -> Request,
    ) -> Result<Reply, Refused> {
        let (tx, rx) = oneshot::channel();
        self.offer(partition_key, make(tx))?;
        rx.await.map_err(|_| Refused::Unavailable(partition_of(partition_key, self.count())))
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
