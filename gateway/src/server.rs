//! `perdure serve`: wires schema, partitions, the invoker, ingress and admin together over an
//! open [`Database`], in that order, and shuts them down in reverse: stop accepting, finish
//! the current commits, abort attempts (they resume after restart). The database itself is
//! not the server's: whoever opened it closes it (flushing every table) once the runtime and
//! every task holding a handle are gone, on the thread that opened it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::engine::keyspace::{PartitionInfo, key_range};
use crate::ingress::{self, Ingress};
use crate::invoker::identity::RequestIdentity;
use crate::invoker::lambda::{LambdaClients, LambdaSettings};
use crate::invoker::{AttemptContext, DeploymentClient, Invoker, InvokerConfig, InvokerHandle, Transports};
use crate::partition::{self, Partition, RunError, Wiring};
use crate::schema::SchemaRegistry;
use crate::storage::log::{Log, LogId, RocksLog};
use crate::storage::{Database, Storage};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("cannot listen on {addr} ({what}): {reason}")]
    Bind { what: &'static str, addr: SocketAddr, reason: String },
    #[error("partition failed: {0}")]
    Partition(#[from] RunError),
    #[error("cannot start a partition's runtime: {0}")]
    Runtime(String),
    #[error("a server task panicked: {0}")]
    Panicked(String),
    #[error("cannot listen for signals: {0}")]
    Signals(String),
    #[error(transparent)]
    Tls(#[from] crate::invoker::client::TlsError),
    #[error(transparent)]
    Identity(#[from] crate::invoker::identity::IdentityError),
}

/// The server's tasks: each ends with the server, or fails it.
type Tasks = JoinSet<Result<(), ServeError>>;

/// A running server.
pub struct Server {
    pub ingress_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The PostgreSQL port, unless `pg.enabled` is off.
    pub pg_addr: Option<SocketAddr>,
    /// The node port (`/metrics`, gRPC), unless `node.enabled` is off.
    pub node_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Tasks,
    /// Taken by [`Server::run_until_signal`].
    signals: Option<Signals>,
}

/// The server's sockets, bound before anything starts so that a taken port fails the start.
struct Listeners {
    ingress: TcpListener,
    admin: TcpListener,
    pg: Option<TcpListener>,
    node: Option<TcpListener>,
}

impl Listeners {
    async fn bind(config: &Config) -> Result<Self, ServeError> {
        let bind = |what, addr| async move {
            TcpListener::bind(addr).await.map_err(|e| ServeError::Bind { what, addr, reason: e.to_string() })
        };
        Ok(Self {
            ingress: bind("ingress", config.ingress.bind_address).await?,
            admin: bind("admin", config.admin.bind_address).await?,
            pg: match config.pg.enabled {
                true => Some(bind("PostgreSQL", config.pg.bind_address).await?),
                false => None,
            },
            node: match config.node.enabled {
                true => Some(bind("node", config.node.bind_address).await?),
                false => None,
            },
        })
    }
}

fn address(listener: &TcpListener) -> SocketAddr {
    listener.local_addr().expect("a bound socket has an address")
}

/// Each partition and the applied LSN its task publishes.
type Applied = Vec<(PartitionInfo, RocksLog, Arc<AtomicU64>)>;

impl Server {
    /// Starts every component over `database` (opened with [`Config::storage_options`]):
    /// schema, partitions, the invoker, the ingress, SQL, the node port, the admin API and
    /// the periodic work, in that order.
    pub async fn start(config: Config, database: &Database) -> Result<Self, ServeError> {
        let started = std::time::Instant::now();
        // First, so that handles resolved from here on record into it.
        let metrics = config.node.enabled.then(crate::metrics::install).flatten();
        crate::traces::export::install(&config.tracing);
        let storage = database.storage();
        let schema_log = RocksLog::open(storage.clone(), database.log_writer(), LogId::Schema, 0)?;
        let schema = SchemaRegistry::load(storage.clone(), schema_log).await?;
        let listeners = Listeners::bind(&config).await?;
        let (ingress_addr, admin_addr) = (address(&listeners.ingress), address(&listeners.admin));
        let (pg_addr, node_addr) = (listeners.pg.as_ref().map(address), listeners.node.as_ref().map(address));

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Tasks::new();

        let (invoker, invoker_handle) = Invoker::new();
        let (partitions, applied) =
            start_partitions(&config, database, &invoker_handle, &mut tasks, &shutdown_rx).await?;

        let identity = match &config.request_identity.private_key_file {
            None => None,
            Some(path) => {
                let identity = RequestIdentity::from_pem_file(path, config.request_identity.expiration)?;
                tracing::info!(public_key = identity.public_key(), "requests to deployments are signed");
                Some(Arc::new(identity))
            }
        };
        let roots = crate::invoker::client::root_store(config.invoker.trusted_ca_file.as_deref())?;
        let client = DeploymentClient::with_roots(config.invoker.connect_timeout, roots);
        let lambda = Arc::new(LambdaClients::new(LambdaSettings {
            assume_role_external_id: config.lambda.assume_role_external_id.clone(),
            request_compression_threshold: usize::try_from(config.lambda.request_compression_threshold)
                .unwrap_or(usize::MAX),
        }));
        let context = AttemptContext {
            transports: Transports::network(client.clone(), lambda.clone()),
            lambda: lambda.clone(),
            schema: schema.clone(),
            storage: storage.clone(),
            partitions: partitions.clone(),
            config: InvokerConfig {
                message_size_limit: config.invoker.message_size_limit,
                eager_state_size_limit: config.invoker.eager_state_size_limit as usize,
                concurrent_invocations_limit: config.invoker.concurrent_invocations_limit as usize,
                ..InvokerConfig::default()
            },
            defaults: config.schema_defaults(),
            identity: identity.clone(),
        };
        let rx = shutdown_rx.clone();
        tasks.spawn(async move {
            invoker.run(context, rx).await;
            Ok(())
        });

        let ingress = Arc::new(Ingress {
            schema: schema.clone(),
            partitions: partitions.clone(),
            request_size_limit: config.ingress.request_size_limit,
            path_prefix: config.ingress.normalized_path_prefix(),
            permits: tokio::sync::Semaphore::new(config.ingress.concurrency_limit),
            concurrency_limit: config.ingress.concurrency_limit,
        });
        let rx = shutdown_rx.clone();
        let ingress_listener = listeners.ingress;
        tasks.spawn(async move {
            ingress::serve(ingress_listener, ingress, rx).await;
            Ok(())
        });

        let query = crate::query::QueryEngine::new(schema.clone(), storage.clone(), config.admin.query_timeout);
        if let Some(listener) = listeners.pg {
            let settings = crate::pg::PgSettings {
                query_timeout: config.admin.query_timeout,
                tokens: (!config.admin.auth_tokens.is_empty()).then(|| config.admin.auth_tokens.clone()),
            };
            let (rx, query) = (shutdown_rx.clone(), query.clone());
            tasks.spawn(async move {
                crate::pg::serve(listener, query, settings, rx).await;
                Ok(())
            });
        }
        if let (Some(listener), Some(addr)) = (listeners.node, node_addr) {
            let state = Arc::new(crate::node::NodeState {
                started,
                metrics,
                schema: schema.clone(),
                storage: storage.clone(),
                partitions: partitions.clone(),
                applied: applied.iter().map(|(info, _, lsn)| (info.clone(), lsn.clone())).collect(),
            });
            if let Some(handle) = state.metrics.clone() {
                // Histograms are buffered lock-free until drained: drain them between scrapes.
                every(&mut tasks, &shutdown_rx, Duration::from_secs(5), move || {
                    handle.run_upkeep();
                    async {}
                });
            }
            let node_failed = move |reason| ServeError::Bind { what: "node", addr, reason };
            let app = crate::node::router(state, config.admin.auth_tokens.clone()).await.map_err(node_failed)?;
            let rx = shutdown_rx.clone();
            tasks.spawn(async move { crate::node::serve(listener, app, rx).await.map_err(node_failed) });
        }

        let admin_state = Arc::new(AdminState {
            schema: schema.clone(),
            partitions,
            client,
            defaults: config.schema_defaults(),
            ingress_url: match &config.ingress.advertised_address {
                Some(a) => a.clone(),
                None => format!("http://{ingress_addr}/"),
            },
            discovery_timeout: Duration::from_secs(10),
            lambda,
            lambda_allow_latest: config.lambda.allow_latest,
            identity,
            storage: storage.clone(),
            query,
        });
        if config.deployments.auto_prune {
            let (state, keep) = (admin_state.clone(), config.deployments.keep_drained as usize);
            every(&mut tasks, &shutdown_rx, config.deployments.prune_interval, move || {
                let state = state.clone();
                async move {
                    if let Err(e) = admin::deployments::prune_drained(&state, keep, false).await {
                        tracing::warn!("auto-prune failed: {e}");
                    }
                }
            });
        }
        let mut rx = shutdown_rx.clone();
        let (admin_listener, tokens) = (listeners.admin, config.admin.auth_tokens.clone());
        tasks.spawn(async move {
            axum::serve(admin_listener, admin::router(admin_state, tokens))
                .with_graceful_shutdown(async move {
                    let _ = rx.changed().await;
                })
                .await
                .map_err(|e| ServeError::Bind { what: "admin", addr: admin_addr, reason: e.to_string() })
        });

        let applied = Arc::new(applied);
        every(&mut tasks, &shutdown_rx, config.storage.flush_interval, move || {
            let (storage, applied) = (storage.clone(), applied.clone());
            async move {
                if let Err(e) = flush_and_trim(&storage, &applied).await {
                    tracing::warn!("periodic flush failed: {e}");
                }
            }
        });

        let signals = Signals::listen().map_err(|e| ServeError::Signals(e.to_string()))?;
        Ok(Self { ingress_addr, admin_addr, pg_addr, node_addr, shutdown, tasks, signals: Some(signals) })
    }

    /// Runs until SIGTERM or SIGINT, or until a component fails; then shuts down in order. A
    /// second signal during the shutdown exits at once (everything acknowledged is already
    /// durable: the next start replays the log). A task that panicked makes the server exit
    /// with an error naming the panic.
    pub async fn run_until_signal(mut self) -> Result<(), ServeError> {
        let mut signals = self.signals.take().expect("listening since the server started");
        let failure = loop {
            tokio::select! {
                _ = signals.next() => break None,
                Some(done) = self.tasks.join_next() => match done {
                    Ok(Ok(())) => {}
                    // A logged command that cannot be applied stops its partition, not the
                    // server: requests for it get 503, the rest keeps serving.
                    Ok(Err(ServeError::Partition(e @ RunError::Replay { .. }))) => {
                        tracing::error!("{e}; the other partitions keep serving");
                    }
                    Ok(Err(e)) => break Some(e),
                    Err(e) if e.is_panic() => break Some(ServeError::Panicked(crate::panic_message(e.into_panic()))),
                    Err(e) => break Some(ServeError::Panicked(e.to_string())),
                },
            }
        };
        match &failure {
            Some(e) => tracing::error!("shutting down: {e}"),
            None => tracing::info!("shutting down (a second signal exits at once)"),
        }
        tokio::spawn(async move {
            signals.next().await;
            eprintln!("perdure: second signal, exiting now");
            // Skip destructors and exit handlers: nothing is closed on the way out, exactly as
            // after kill -9, which loses nothing acknowledged.
            // SAFETY: `_exit` ends the process; it touches no Rust state.
            unsafe { libc::_exit(130) }
        });
        self.shutdown().await;
        failure.map_or(Ok(()), Err)
    }

    /// Stops accepting, lets partitions finish their batch (its appends are durable, its
    /// replies sent), aborts attempts (they resume after a restart), and waits for every task.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => match next {
                    None => break,
                    Some(Ok(Err(e))) => tracing::warn!("while shutting down: {e}"),
                    Some(Err(e)) if e.is_panic() => tracing::error!("a task panicked while shutting down: {}", crate::panic_message(e.into_panic())),
                    Some(_) => {}
                },
                _ = &mut deadline => {
                    tracing::warn!("tasks still running after 10 s: aborting them");
                    self.tasks.abort_all();
                    while self.tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        // The spans of what ended last go out before the process does.
        crate::traces::export::flush(Duration::from_secs(2)).await;
    }
}

/// Starts a task per partition, each on a thread of its own: its reads of RocksDB block that
/// thread, never the workers serving the ingress and the admin API. Answers the handle to
/// all of them, and each one's log and applied LSN (for trimming and the node port).
async fn start_partitions(
    config: &Config,
    database: &Database,
    invoker: &InvokerHandle,
    tasks: &mut Tasks,
    shutdown: &watch::Receiver<bool>,
) -> Result<(partition::Handle, Applied), ServeError> {
    let storage = database.storage();
    let count = storage.partitions();
    if count != config.partitions {
        tracing::warn!(
            "the data directory was created with {count} partitions; ignoring the configured {}",
            config.partitions
        );
    }
    let (handle, inboxes) = partition::Handle::new(count, config.ingress.queue_per_partition);
    let mut applied = Vec::new();
    for (id, inbox) in (0..count).zip(inboxes) {
        let info = PartitionInfo { id, keys: key_range(id, count) };
        let applied_lsn = Arc::new(AtomicU64::new(0));
        let meta = storage.partition_meta(id)?;
        let log = RocksLog::open(storage.clone(), database.log_writer(), LogId::Partition(id), meta.applied_lsn)?;
        let tail = log.tail().await.map_err(RunError::from)?;
        let partition = Partition::new(Wiring {
            info: info.clone(),
            storage: storage.clone(),
            log: log.clone(),
            tail,
            inbox,
            partitions: handle.clone(),
            attempts: Arc::new(invoker.clone()),
            applied: applied_lsn.clone(),
        })?;
        applied.push((info, log, applied_lsn));
        let rx = shutdown.clone();
        tasks.spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ServeError::Runtime(e.to_string()))?;
            runtime.block_on(partition.run(rx)).map_err(ServeError::from)
        });
    }
    Ok((handle, applied))
}

/// Runs `work` every `period` until the server shuts down.
fn every<F, W>(tasks: &mut Tasks, shutdown: &watch::Receiver<bool>, period: Duration, mut work: W)
where
    W: FnMut() -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let mut shutdown = shutdown.clone();
    tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                _ = tokio::time::sleep(period) => work().await,
            }
        }
    });
}

/// Flushes every table to disk, then drops log entries whose effects are now on disk.
async fn flush_and_trim(storage: &Storage, partitions: &Applied) -> Result<(), String> {
    let durable: Vec<u64> = partitions.iter().map(|(_, _, a)| a.load(Ordering::Acquire)).collect();
    let s = storage.clone();
    tokio::task::spawn_blocking(move || s.flush()).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    for ((_, log, _), upto) in partitions.iter().zip(durable) {
        if upto > 0 {
            log.trim(upto).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// SIGTERM and SIGINT, listened to from the moment the server starts (before it says it is
/// ready), so that a signal sent right after that is never missed.
pub struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that panics takes the server down with an error naming the panic, which
    /// `main` turns into a non-zero exit.
    #[tokio::test]
    async fn a_panicked_task_is_a_failure_naming_the_panic() {
        let (shutdown, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(async { panic!("the invoker lost its marbles") });
        let server = Server {
            ingress_addr: ([127, 0, 0, 1], 0).into(),
            admin_addr: ([127, 0, 0, 1], 0).into(),
            pg_addr: None,
            node_addr: None,
            shutdown,
            tasks,
            signals: Some(Signals::listen().unwrap()),
        };
        match server.run_until_signal().await {
            Err(ServeError::Panicked(message)) => assert!(message.contains("lost its marbles"), "{message}"),
            other => panic!("expected a panic failure, got {other:?}"),
        }
    }
}
