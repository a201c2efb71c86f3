//! The invoker runs attempts: for each `Invoke` action of a partition it opens a stream to
//! the invocation's deployment (HTTP/2 bidi, HTTP/1.1 request/response, or Lambda Invoke), replays the
//! journal, and relays every message the SDK sends back to the partition as an effect.
//! Retry decisions are the state machine's; the invoker only reports what happened, and whether
//! retrying can help ([`AttemptFailure::is_transient`]).
//!
//! Owns, by job:
//! - scheduling attempts on a bounded number of slots: [`Invoker`] and its [`InvokerHandle`] (here);
//! - driving one attempt, the only part that waits: [`attempt`];
//! - pure decisions, unit-tested without sockets or a clock: what it runs against ([`choose`]),
//!   what it sends ([`request`]), what the answer means ([`translate`]), its failures ([`failure`]),
//!   which Lambda version runs behind an alias ([`lambda_versions`], with the Lambda calls it needs);
//! - moving bytes: the [`transport::Transport`] trait, implemented by the HTTP client ([`client`]) and
//!   the Lambda clients ([`lambda`]); tests drive attempts through a scripted one (`scripted`);
//! - the attempt's trace spans ([`spans`]), request signing ([`identity`]), discovery ([`discovery`]).
//!
//! Does not own: the journal or any durable state (read from storage, changed by the partition
//! through effects), what an effect does (`engine/`).
//!
//! Call order: `Invoker::new` → spawn [`Invoker::run`] with an [`AttemptContext`] (the network's
//! [`Transports`], or a test's) → partitions ask for attempts through [`InvokerHandle`], their
//! [`crate::partition::Attempts`], after each commit → each attempt runs [`attempt::run`] and
//! reports effects through `partition::Handle::tell`.
//!
//! At most `concurrent_invocations_limit` attempts run at once. The others wait in order, as
//! an id and an attempt number only: what they need is in storage (the partition wrote it
//! before asking), and is read when a slot frees. So memory grows with the running attempts,
//! not with the backlog.

pub mod attempt;
pub mod choose;
pub mod client;
pub mod context;
pub mod discovery;
pub mod failure;
pub mod identity;
pub mod lambda;
pub mod lambda_versions;
pub mod request;
#[cfg(test)]
pub mod scripted;
pub mod spans;
#[cfg(test)]
mod tests;
pub mod translate;
pub mod transport;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::engine::action::InvokeAttempt;
use crate::engine::records::JournalEntry;
use crate::ids::InvocationId;

pub use client::DeploymentClient;
pub use context::{AttemptContext, InvokerConfig};
pub use failure::AttemptFailure;
pub use transport::Transports;

enum Input {
    Invoke(Box<InvokeAttempt>),
    /// Run this attempt when a slot is free, as storage describes it then.
    InvokeLater {
        id: InvocationId,
        attempt: u32,
    },
    Forward {
        id: InvocationId,
        attempt: u32,
        index: u32,
        entry: JournalEntry,
    },
    Abort {
        id: InvocationId,
        attempt: u32,
    },
    Done {
        id: InvocationId,
        attempt: u32,
    },
}

/// How partitions reach the invoker. Cheap to clone.
#[derive(Clone)]
pub struct InvokerHandle {
    tx: mpsc::UnboundedSender<Input>,
}

impl crate::partition::Attempts for InvokerHandle {
    fn invoke(&self, attempt: Box<InvokeAttempt>) {
        let _ = self.tx.send(Input::Invoke(attempt));
    }

    fn invoke_later(&self, id: InvocationId, attempt: u32) {
        let _ = self.tx.send(Input::InvokeLater { id, attempt });
    }

    fn forward(&self, id: InvocationId, attempt: u32, index: u32, entry: JournalEntry) {
        let _ = self.tx.send(Input::Forward { id, attempt, index, entry });
    }

    fn abort(&self, id: InvocationId, attempt: u32) {
        let _ = self.tx.send(Input::Abort { id, attempt });
    }
}

struct Running {
    attempt: u32,
    notifications: mpsc::UnboundedSender<(u32, JournalEntry)>,
    task: JoinHandle<()>,
}

pub struct Invoker {
    rx: mpsc::UnboundedReceiver<Input>,
    tx: mpsc::UnboundedSender<Input>,
    context: Option<Arc<AttemptContext>>,
    /// `concurrent_invocations_limit`.
    limit: usize,
    running: HashMap<InvocationId, Running>,
    /// Attempts waiting for a slot, in arrival order.
    waiting: VecDeque<(InvocationId, u32)>,
    gauges: crate::metrics::InvokerGauges,
}

impl Invoker {
    /// Creates the invoker and its handle. The context is provided once partitions exist
    /// ([`Invoker::run`]), since attempts report to them.
    pub fn new() -> (Self, InvokerHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let invoker = Self {
            rx,
            tx: tx.clone(),
            context: None,
            limit: 1,
            running: HashMap::new(),
            waiting: VecDeque::new(),
            gauges: crate::metrics::InvokerGauges::new(),
        };
        (invoker, InvokerHandle { tx })
    }

    pub async fn run(mut self, context: AttemptContext, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        self.limit = context.config.concurrent_invocations_limit.max(1);
        self.context = Some(Arc::new(context));
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                input = self.rx.recv() => match input {
                    Some(input) => self.handle(input),
                    None => break,
                },
            }
        }
        for (_, running) in self.running.drain() {
            running.task.abort();
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Invoke(spec) => {
                if let Some(previous) = self.running.remove(&spec.id) {
                    previous.task.abort();
                }
                if self.running.len() < self.limit && self.waiting.is_empty() {
                    self.start(spec.id, spec.attempt, Starting::Known(spec));
                } else {
                    self.waiting.push_back((spec.id, spec.attempt));
                }
            }
            Input::InvokeLater { id, attempt } => self.waiting.push_back((id, attempt)),
            Input::Forward { id, attempt, index, entry } => {
                if let Some(running) = self.running.get(&id).filter(|r| r.attempt == attempt) {
                    let _ = running.notifications.send((index, entry));
                }
            }
            Input::Abort { id, attempt } => {
                if self.running.get(&id).is_some_and(|r| r.attempt == attempt)
                    && let Some(running) = self.running.remove(&id)
                {
                    running.task.abort();
                }
            }
            Input::Done { id, attempt } => {
                if self.running.get(&id).is_some_and(|r| r.attempt == attempt) {
                    self.running.remove(&id);
                }
            }
        }
        self.fill();
        self.gauges.running.set(self.running.len() as f64);
        self.gauges.waiting.set(self.waiting.len() as f64);
    }

    /// Starts waiting attempts while slots are free. Each is read back from storage by its
    /// task (off the async workers): one that moved on while it waited (cancelled, killed,
    /// superseded by a later attempt) ends at once, as the partition no longer expects it.
    fn fill(&mut self) {
        while self.running.len() < self.limit {
            let Some((id, attempt)) = self.waiting.pop_front() else { return };
            if !self.running.contains_key(&id) {
                self.start(id, attempt, Starting::Waited);
            }
        }
    }

    fn start(&mut self, id: InvocationId, attempt: u32, starting: Starting) {
        let (notifications, rx) = mpsc::unbounded_channel();
        let context = self.context.clone().expect("run() sets the context before handling input");
        let done = self.tx.clone();
        // Log lines of the attempt carry its invocation id and number (`--log-format json`
        // writes them as the `span` object of each line). At the highest level, so that it is
        // there whatever the filter lets through.
        let span = tracing::error_span!("attempt", invocation = %id, attempt);
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                let spec = match starting {
                    Starting::Known(spec) => Some(spec),
                    Starting::Waited => waited_attempt(&context, id, attempt).await,
                };
                if let Some(spec) = spec {
                    attempt::run(context, spec, rx).await;
                }
                let _ = done.send(Input::Done { id, attempt });
            },
            span,
        ));
        self.running.insert(id, Running { attempt, notifications, task });
    }
}

/// What a starting attempt knows: all of it (sent by the partition), or only its id and
/// number (it waited for a slot), the rest being in storage.
enum Starting {
    Known(Box<InvokeAttempt>),
    Waited,
}

/// The attempt as storage describes it now, if it is still the invocation's current one.
/// A failing read is retried (the partition expects the attempt, so it must not be lost).
async fn waited_attempt(context: &AttemptContext, id: InvocationId, attempt: u32) -> Option<Box<InvokeAttempt>> {
    loop {
        let storage = context.storage.clone();
        let read = tokio::task::spawn_blocking(move || storage.invocation(&id).map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match read {
            Ok(Some(status)) if status.attempt.attempt == attempt && status.attempt.in_flight => {
                return Some(Box::new(InvokeAttempt::of(id, &status)));
            }
            Ok(_) => return None,
            Err(e) => tracing::error!(invocation = %id, "reading a waiting attempt (retrying in 1 s): {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
