//! [`Handle`]: how ingress, admin, the invoker and other partitions reach the partitions. It
//! holds the two queues of every partition and sends each request to the one that owns its
//! key ([`partition_of`]); cheap to clone.
//!
//! Every "send a command, wait for the partition's answer" goes through one of its methods,
//! so that an unavailable, overloaded or rejecting partition reads the same to every caller
//! ([`Error`]).

use tokio::sync::{mpsc, oneshot};

use crate::engine::command::{Command, Outcome};
use crate::engine::keyspace::{key_range, partition_of};
use crate::engine::records::InvocationResult;
use crate::ids::InvocationId;

/// What a partition answers about a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The command is durable and applied.
    Applied(Outcome),
    /// The invocation finished.
    Completed { result: InvocationResult, expires_at: Option<u64> },
    /// No such invocation (never existed, or purged).
    NotFound,
    /// The invocation exists but has not finished.
    NotReady,
}

/// A command the partition could not apply (a bug, reported in the server's log): it was left
/// out of the log, and this is why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected(pub String);

/// What travels back to whoever waits on a request.
pub type Answer = Result<Reply, Rejected>;

/// How a caller wants to hear back about a command.
#[derive(Debug)]
pub enum ReplyMode {
    /// Not at all.
    None,
    /// Once the command is durable.
    Applied(oneshot::Sender<Answer>),
    /// Once the invocation the command created or found completes (sync calls).
    Completion(oneshot::Sender<Answer>),
}

/// What a partition is asked to do.
#[derive(Debug)]
pub enum Request {
    /// Append and apply a command.
    Command { command: Command, reply: ReplyMode },
    /// Answer once the invocation completes.
    Attach { id: InvocationId, reply: oneshot::Sender<Answer> },
    /// Answer now: its result, NotReady or NotFound.
    Output { id: InvocationId, reply: oneshot::Sender<Answer> },
    /// An outbox message this partition shipped was durably accepted by its target.
    Delivered { seq: u64 },
}

/// Which of a partition's two queues a request joins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Work already under way (attempts' effects, messages between partitions, admin
    /// commands): always taken, however far behind the partition is.
    Work,
    /// A new request from the ingress: bounded, so a partition that falls behind sheds new
    /// work ([`Error::Overloaded`]) instead of buffering it.
    Ingress,
}

/// Why a request got no answer from its partition.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Its task has stopped (shutting down, or stopped at a command it cannot apply).
    #[error("partition {0} is not running")]
    Unavailable(u32),
    /// Its ingress queue is full: the partition is behind.
    #[error("partition {0} is overloaded")]
    Overloaded(u32),
    /// The command could not be applied and was not logged (the server log has the details).
    #[error("{0}")]
    Rejected(String),
}

/// One partition's queues, sending side.
#[derive(Clone, Debug)]
struct Queues {
    work: mpsc::UnboundedSender<Request>,
    ingress: mpsc::Sender<Request>,
}

/// Where a partition's requests arrive: see [`Lane`].
#[derive(Debug)]
pub struct Inbox {
    pub work: mpsc::UnboundedReceiver<Request>,
    pub ingress: mpsc::Receiver<Request>,
}

/// Handles to every partition.
#[derive(Clone, Debug)]
pub struct Handle {
    partitions: std::sync::Arc<[Queues]>,
}

impl Handle {
    /// The handle to `count` partitions and each one's inbox, in partition order; each
    /// ingress queue holds at most `ingress_capacity` requests.
    pub fn new(count: u32, ingress_capacity: usize) -> (Self, Vec<Inbox>) {
        let (queues, inboxes) = (0..count)
            .map(|_| {
                let (work, work_rx) = mpsc::unbounded_channel();
                let (ingress, ingress_rx) = mpsc::channel(ingress_capacity.max(1));
                (Queues { work, ingress }, Inbox { work: work_rx, ingress: ingress_rx })
            })
            .unzip::<_, _, Vec<_>, Vec<_>>();
        (Self { partitions: queues.into() }, inboxes)
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

    /// Hands a request to the partition owning `partition_key`, without waiting.
    pub fn send(&self, lane: Lane, partition_key: u64, request: Request) -> Result<(), Error> {
        let index = partition_of(partition_key, self.count());
        let queues = &self.partitions[index as usize];
        match lane {
            Lane::Work => queues.work.send(request).map_err(|_| Error::Unavailable(index)),
            Lane::Ingress => queues.ingress.try_send(request).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::Overloaded(index),
                mpsc::error::TrySendError::Closed(_) => Error::Unavailable(index),
            }),
        }
    }

    /// Appends a command without waiting for it (an attempt's effects: the partition expects
    /// them, and a lost batch is retried as a new attempt).
    pub fn tell(&self, partition_key: u64, command: Command) -> Result<(), Error> {
        self.send(Lane::Work, partition_key, Request::Command { command, reply: ReplyMode::None })
    }

    /// Appends a command and waits until it is durable: its outcome.
    pub async fn apply(&self, lane: Lane, partition_key: u64, command: Command) -> Result<Outcome, Error> {
        match self.ask(lane, partition_key, |tx| Request::Command { command, reply: ReplyMode::Applied(tx) }).await? {
            Reply::Applied(outcome) => Ok(outcome),
            other => unreachable!("a partition answers an applied command with its outcome, not {other:?}"),
        }
    }

    /// Appends a command from the ingress and waits for the invocation it creates (or finds)
    /// to complete: [`Reply::Completed`], or [`Reply::Applied`] for a command that is not an
    /// invocation.
    pub async fn call(&self, partition_key: u64, command: Command) -> Result<Reply, Error> {
        self.ask(Lane::Ingress, partition_key, |tx| Request::Command { command, reply: ReplyMode::Completion(tx) })
            .await
    }

    /// Waits for an invocation to complete: [`Reply::Completed`] or [`Reply::NotFound`].
    pub async fn attach(&self, id: InvocationId) -> Result<Reply, Error> {
        self.ask(Lane::Ingress, id.partition_key, |reply| Request::Attach { id, reply }).await
    }

    /// An invocation's result now: [`Reply::Completed`], [`Reply::NotReady`] or
    /// [`Reply::NotFound`].
    pub async fn output(&self, id: InvocationId) -> Result<Reply, Error> {
        self.ask(Lane::Ingress, id.partition_key, |reply| Request::Output { id, reply }).await
    }

    /// Appends a command to every partition; answers once each has it in its log.
    pub async fn broadcast(&self, command: impl Fn() -> Command) -> Result<(), Error> {
        for partition in 0..self.count() {
            let key = *key_range(partition, self.count()).start();
            self.apply(Lane::Work, key, command()).await?;
        }
        Ok(())
    }

    /// Sends a request and waits for its answer.
    async fn ask(
        &self,
        lane: Lane,
        partition_key: u64,
        request: impl FnOnce(oneshot::Sender<Answer>) -> Request,
    ) -> Result<Reply, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(lane, partition_key, request(tx))?;
        match rx.await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(Rejected(reason))) => Err(Error::Rejected(reason)),
            Err(_) => Err(Error::Unavailable(partition_of(partition_key, self.count()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_ingress_queue_sheds_while_work_still_gets_in() {
        let (handle, mut inboxes) = Handle::new(1, 1);
        let id = InvocationId::generate(7);
        handle.send(Lane::Ingress, 7, Request::Delivered { seq: 0 }).unwrap();
        assert_eq!(handle.send(Lane::Ingress, 7, Request::Delivered { seq: 1 }), Err(Error::Overloaded(0)));
        handle.tell(id.partition_key, Command::OutboxDelivered { upto: 1 }).unwrap();
        assert!(matches!(inboxes[0].work.try_recv(), Ok(Request::Command { .. })));
        assert_eq!(handle.ingress_queues(), vec![Some(1)]);
        drop(inboxes);
        assert_eq!(handle.ingress_queues(), vec![None]);
        assert_eq!(handle.output(id).await, Err(Error::Unavailable(0)));
    }

    #[tokio::test]
    async fn a_rejected_command_is_an_error_naming_why() {
        let (handle, mut inboxes) = Handle::new(2, 8);
        let id = InvocationId::generate(u64::MAX);
        let asked = tokio::spawn({
            let handle = handle.clone();
            async move { handle.apply(Lane::Work, id.partition_key, Command::OutboxDelivered { upto: 1 }).await }
        });
        let Some(Request::Command { reply: ReplyMode::Applied(tx), .. }) = inboxes[1].work.recv().await else {
            panic!("the command goes to the partition owning its key, asking to hear once applied")
        };
        tx.send(Err(Rejected("applying it panicked".into()))).unwrap();
        assert_eq!(asked.await.unwrap(), Err(Error::Rejected("applying it panicked".into())));
    }
}
