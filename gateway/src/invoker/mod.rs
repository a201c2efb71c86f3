//! The invoker runs attempts: for each `Invoke` action of a partition it opens a stream to
//! the invocation's deployment (HTTP/2 bidi, HTTP/1.1 request/response, or Lambda Invoke), replays the
//! journal, and relays every message the SDK sends back to the partition as an effect.
//! Retry decisions are the state machine's; the invoker only reports what happened.
//!
//! Owns: HTTP clients to deployments ([`client`]), Lambda clients ([`lambda`]), discovery ([`discovery`]), running
//! attempts ([`attempt`]). Does not own: the journal or any durable state.
//!
//! Call order: `Invoker::new` → spawn [`Invoker::run`] → partitions call
//! [`InvokerHandle::invoke`] / `forward` / `abort` after each commit.

pub mod attempt;
pub mod client;
pub mod discovery;
pub mod identity;
pub mod lambda;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::engine::action::InvokeAttempt;
use crate::engine::records::JournalEntry;
use crate::engine::partition::router::Router;
use crate::ids::InvocationId;
use crate::schema::SchemaRegistry;
use crate::storage::Storage;

pub use client::DeploymentClient;

/// Settings of the invoker.
#[derive(Clone, Debug)]
pub struct InvokerConfig {
    /// Largest protocol message accepted from a deployment.
    pub message_size_limit: u32,
    /// Headers added to every request to deployments.
    pub additional_headers: BTreeMap<String, String>,
    /// Most state (keys and values, bytes) sent eagerly with an attempt; 0 = always lazy.
    pub eager_state_size_limit: usize,
    /// Most attempts running at once; the others wait their turn, in order.
    pub concurrent_invocations_limit: usize,
}

impl Default for InvokerConfig {
    fn default() -> Self {
        Self {
            message_size_limit: crate::protocol::DEFAULT_MAX_MESSAGE_SIZE,
            additional_headers: BTreeMap::new(),
            eager_state_size_limit: 32 << 20,
            concurrent_invocations_limit: 1000,
        }
    }
}

/// What every attempt shares.
pub struct AttemptContext {
    pub client: DeploymentClient,
    pub lambda: Arc<lambda::LambdaClients>,
    pub schema: SchemaRegistry,
    pub storage: Storage,
    pub router: Router,
    pub config: InvokerConfig,
    /// For checking Lambda versions behind an alias like a registration.
    pub defaults: crate::schema::SchemaDefaults,
    /// Signs every request to deployments, when a key is configured.
    pub identity: Option<Arc<identity::RequestIdentity>>,
}

enum Input {
    Invoke(Box<InvokeAttempt>),
    Forward { id: InvocationId, attempt: u32, index: u32, entry: JournalEntry },
    Abort { id: InvocationId, attempt: u32 },
    Done { id: InvocationId, attempt: u32 },
}

/// How partitions reach the invoker. Cheap to clone.
#[derive(Clone)]
pub struct InvokerHandle {
    tx: mpsc::UnboundedSender<Input>,
}

impl InvokerHandle {
    pub fn invoke(&self, attempt: Box<InvokeAttempt>) {
        let _ = self.tx.send(Input::Invoke(attempt));
    }

    pub fn forward(&self, id: InvocationId, attempt: u32, index: u32, entry: JournalEntry) {
        let _ = self.tx.send(Input::Forward { id, attempt, index, entry });
    }

    pub fn abort(&self, id: InvocationId, attempt: u32) {
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
    /// Bounds running attempts (`concurrent_invocations_limit`); fair, so they start in order.
    slots: Arc<tokio::sync::Semaphore>,
    running: HashMap<InvocationId, Running>,
}

impl Invoker {
    /// Creates the invoker and its handle. The context is provided once partitions exist
    /// ([`Invoker::run`]), since attempts report to them.
    pub fn new() -> (Self, InvokerHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let slots = Arc::new(tokio::sync::Semaphore::new(0));
        (Self { rx, tx: tx.clone(), context: None, slots, running: HashMap::new() }, InvokerHandle { tx })
    }

    pub async fn run(mut self, context: AttemptContext, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        self.slots.add_permits(context.config.concurrent_invocations_limit.max(1));
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
                let (id, attempt) = (spec.id, spec.attempt);
                if let Some(previous) = self.running.remove(&id) {
                    previous.task.abort();
                }
                let (notifications, rx) = mpsc::unbounded_channel();
                let context = self.context.clone().expect("run() sets the context before handling input");
                let done = self.tx.clone();
                let slots = self.slots.clone();
                let task = tokio::spawn(async move {
                    let Ok(_slot) = slots.acquire_owned().await else { return };
                    attempt::run(context, spec, rx).await;
                    let _ = done.send(Input::Done { id, attempt });
                });
                self.running.insert(id, Running { attempt, notifications, task });
            }
            Input::Forward { id, attempt, index, entry } => {
                if let Some(running) = self.running.get(&id).filter(|r| r.attempt == attempt) {
                    let _ = running.notifications.send((index, entry));
                }
            }
            Input::Abort { id, attempt } => {
                if self.running.get(&id).is_some_and(|r| r.attempt == attempt) {
                    if let Some(running) = self.running.remove(&id) {
                        running.task.abort();
                    }
                }
            }
            Input::Done { id, attempt } => {
                if self.running.get(&id).is_some_and(|r| r.attempt == attempt) {
                    self.running.remove(&id);
                }
            }
        }
    }
}
