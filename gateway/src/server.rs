//! `perdure serve`: wires storage, schema, partitions, the invoker, ingress and admin
//! together, in that order, and shuts them down in reverse: stop accepting, finish the
//! current commits, abort attempts (they resume after restart), flush state to disk.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::engine::machine::PartitionInfo;
use crate::engine::partition::{Partition, PartitionError};
use crate::engine::router::{PartitionHandle, Router, key_range};
use crate::ingress::{self, Ingress};
use crate::invoker::{AttemptContext, DeploymentClient, Invoker, InvokerConfig};
use crate::schema::SchemaRegistry;
use crate::storage::log::{GroupCommit, Log, RocksLog};
use crate::storage::{Storage, StorageOptions};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("cannot listen on {addr} ({what}): {reason}")]
    Bind { what: &'static str, addr: SocketAddr, reason: String },
    #[error("partition failed: {0}")]
    Partition(#[from] PartitionError),
}

/// A running server.
pub struct Server {
    pub ingress_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<Result<(), ServeError>>,
    storage: Storage,
}

const PARTITIONS_KEY: &[u8] = b"partitions";

impl Server {
    pub async fn start(config: Config) -> Result<Self, ServeError> {
        let storage = Storage::open(
            &config.data_dir,
            &StorageOptions {
                memtable_bytes: config.storage.memtable_size as usize,
                cache_bytes: config.storage.cache_size as usize,
            },
        )?;
        let partitions = partition_count(&storage, config.partitions)?;
        let schema = SchemaRegistry::load(storage.clone())?;

        let bind = |what, addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| ServeError::Bind { what, addr, reason: e.to_string() })
        };
        let ingress_listener = bind("ingress", config.ingress.bind_address).await?;
        let admin_listener = bind("admin", config.admin.bind_address).await?;
        let ingress_addr = ingress_listener.local_addr().expect("bound socket has an address");
        let admin_addr = admin_listener.local_addr().expect("bound socket has an address");

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();

        let (invoker, invoker_handle) = Invoker::new();
        let mut handles = Vec::new();
        let mut inboxes = Vec::new();
        for _ in 0..partitions {
            let (tx, rx) = mpsc::unbounded_channel();
            handles.push(PartitionHandle { tx });
            inboxes.push(rx);
        }
        let router = Router::new(handles);
        let mut applied = Vec::new();
        let writer = GroupCommit::start(storage.clone());
        for (id, requests) in inboxes.into_iter().enumerate() {
            let id = id as u32;
            let info = PartitionInfo { id, keys: key_range(id, partitions) };
            let applied_lsn = Arc::new(AtomicU64::new(0));
            let meta = storage.partition_meta(id)?;
            let log = RocksLog::open(storage.clone(), writer.clone(), id, meta.applied_lsn)?;
            let tail = log.tail().await.map_err(|e| PartitionError::Log(e.0))?;
            let partition = Partition::new(
                info,
                storage.clone(),
                log.clone(),
                tail,
                requests,
                router.clone(),
                invoker_handle.clone(),
                applied_lsn.clone(),
            )?;
            applied.push((log, applied_lsn));
            let rx = shutdown_rx.clone();
            tasks.spawn(async move { partition.run(rx).await.map_err(ServeError::from) });
        }

        let client = DeploymentClient::new(config.invoker.connect_timeout);
        let context = AttemptContext {
            client: client.clone(),
            schema: schema.clone(),
            storage: storage.clone(),
            router: router.clone(),
            config: InvokerConfig {
                message_size_limit: config.invoker.message_size_limit,
                eager_state_size_limit: config.invoker.eager_state_size_limit as usize,
                concurrent_invocations_limit: config.invoker.concurrent_invocations_limit as usize,
                ..InvokerConfig::default()
            },
        };
        let rx = shutdown_rx.clone();
        tasks.spawn(async move {
            invoker.run(context, rx).await;
            Ok(())
        });

        let ingress = Arc::new(Ingress {
            schema: schema.clone(),
            router: router.clone(),
            request_size_limit: config.ingress.request_size_limit,
        });
        let rx = shutdown_rx.clone();
        tasks.spawn(async move {
            ingress::serve(ingress_listener, ingress, rx).await;
            Ok(())
        });

        let admin_state = Arc::new(AdminState {
            schema,
            router: router.clone(),
            client,
            defaults: config.schema_defaults(),
            ingress_url: match &config.ingress.advertised_address {
                Some(a) => a.clone(),
                None => format!("http://{ingress_addr}/"),
            },
            discovery_timeout: Duration::from_secs(10),
        });
        let mut rx = shutdown_rx.clone();
        tasks.spawn(async move {
            let app = admin::router(admin_state);
            axum::serve(admin_listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.changed().await;
                })
                .await
                .map_err(|e| ServeError::Bind { what: "admin", addr: admin_addr, reason: e.to_string() })
        });

        let flush_storage = storage.clone();
        let interval = config.storage.flush_interval;
        let mut rx = shutdown_rx;
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = rx.changed() => return Ok(()),
                    _ = tokio::time::sleep(interval) => {}
                }
                if let Err(e) = flush_and_trim(&flush_storage, &applied).await {
                    tracing::warn!("periodic flush failed: {e}");
                }
            }
        });

        Ok(Self { ingress_addr, admin_addr, shutdown, tasks, storage })
    }

    /// Runs until a signal or until a component fails; then shuts down in order.
    pub async fn run_until_signal(mut self) -> Result<(), ServeError> {
        let failure = tokio::select! {
            _ = shutdown_signal() => None,
            Some(done) = self.tasks.join_next() => match done {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(e) => {
                    tracing::error!("a server task panicked: {e}");
                    None
                }
            },
        };
        if let Some(e) = &failure {
            tracing::error!("shutting down: {e}");
        }
        self.shutdown().await;
        failure.map_or(Ok(()), Err)
    }

    /// Stops accepting, lets partitions finish their batch, aborts attempts, flushes.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline => {
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        let storage = self.storage.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || storage.flush()).await.unwrap_or(Ok(())) {
            tracing::warn!("final flush failed: {e}");
        }
    }
}

/// The partition count is fixed when the data directory is created: keys were routed by it.
fn partition_count(storage: &Storage, configured: u32) -> Result<u32, ServeError> {
    match storage.get_meta(PARTITIONS_KEY)? {
        Some(raw) => {
            let stored = raw.as_slice().try_into().map(u32::from_be_bytes).unwrap_or(configured);
            if stored != configured {
                tracing::warn!(
                    "the data directory was created with {stored} partitions; ignoring the configured {configured}"
                );
            }
            Ok(stored)
        }
        None => {
            storage.put_meta_sync(PARTITIONS_KEY, &configured.to_be_bytes())?;
            Ok(configured)
        }
    }
}

/// Flushes every table to disk, then drops log entries whose effects are now on disk.
async fn flush_and_trim(storage: &Storage, partitions: &[(RocksLog, Arc<AtomicU64>)]) -> Result<(), String> {
    let durable: Vec<u64> = partitions.iter().map(|(_, a)| a.load(Ordering::Acquire)).collect();
    let s = storage.clone();
    tokio::task::spawn_blocking(move || s.flush()).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    for ((log, _), upto) in partitions.iter().zip(durable) {
        if upto > 0 {
            log.trim(upto).await.map_err(|e| e.0)?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler succeeds on unix");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
