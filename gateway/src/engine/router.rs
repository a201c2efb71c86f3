//! Partitions split the 64-bit partition-key space into equal ranges; the [`Router`] holds
//! a handle to each and sends requests to the one that owns a key.

use std::ops::RangeInclusive;

use tokio::sync::{mpsc, oneshot};

use super::command::{Command, Outcome};
use super::records::InvocationResult;
use crate::ids::InvocationId;

/// The key range of partition `index` out of `count`.
pub fn key_range(index: u32, count: u32) -> RangeInclusive<u64> {
    let start = |i: u32| (((i as u128) << 64).div_ceil(count as u128)) as u64;
    let end = if index + 1 == count { u64::MAX } else { start(index + 1) - 1 };
    start(index)..=end
}

/// The partition that owns `partition_key`.
pub fn partition_of(partition_key: u64, count: u32) -> u32 {
    ((partition_key as u128 * count as u128) >> 64) as u32
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_key_space_and_agree_with_lookup() {
        for count in [1u32, 2, 3, 4, 7, 24] {
            let mut next = 0u64;
            for i in 0..count {
                let r = key_range(i, count);
                assert_eq!(*r.start(), next, "partition {i} of {count}");
                assert_eq!(partition_of(*r.start(), count), i);
                assert_eq!(partition_of(*r.end(), count), i);
                next = r.end().wrapping_add(1);
            }
            assert_eq!(*key_range(count - 1, count).end(), u64::MAX);
        }
    }
}
