//! The node port (5122 by default): what operators wire into what they run.
//!
//! - `GET /metrics`: Prometheus text ([`prometheus`]: recorded events, then state read at scrape);
//! - `GET /health`: 200 while the server runs;
//! - gRPC over HTTP/2 on the same port: `grpc.health.v1.Health` (overall and per service),
//!   server reflection (`grpc.reflection.v1` and `v1alpha`, for grpcurl-style clients), and
//!   `perdure.node.v1.NodeStatus/GetStatus` (version, uptime, partitions with their applied
//!   LSN and leader state, deployments by drain status).
//!
//! With `admin.auth-tokens`, everything but `/health` and the gRPC health service needs
//! `Authorization: Bearer` one of them (as the admin API does).

pub mod prometheus;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::engine::keyspace::PartitionInfo;
use crate::schema::{DrainStatus, SchemaRegistry};
use crate::storage::Storage;

/// The generated node-control service (`proto/node.proto`).
pub mod proto {
    tonic::include_proto!("perdure.node.v1");

    /// Its descriptor set, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("node_descriptor");
}

use proto::node_status_server::{NodeStatus, NodeStatusServer};

/// What the node port reports on.
pub struct NodeState {
    pub started: Instant,
    pub metrics: Option<PrometheusHandle>,
    pub schema: SchemaRegistry,
    pub storage: Storage,
    pub partitions: crate::partition::Handle,
    /// Each partition and its applied LSN, as its task publishes it.
    pub applied: Vec<(PartitionInfo, Arc<AtomicU64>)>,
}

impl NodeState {
    /// The state `/metrics` and `GetStatus` report. Reads partition metadata from storage:
    /// call it off the async workers.
    fn snapshot(&self) -> Result<prometheus::Snapshot, crate::storage::StorageError> {
        let queues = self.partitions.ingress_queues();
        let partitions = self
            .applied
            .iter()
            .map(|(info, applied)| {
                (info.id, applied.load(Ordering::Acquire), queues.get(info.id as usize).copied().flatten())
            })
            .collect();
        let counts = self.storage.drain_counts()?;
        let schema = self.schema.snapshot();
        let mut statuses: BTreeMap<DrainStatus, u64> = DrainStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        let mut pinned = Vec::new();
        for id in schema.deployments.keys() {
            let c = counts.get(id).cloned().unwrap_or_default();
            *statuses.entry(DrainStatus::of(&schema, id, c.total())).or_default() += 1;
            pinned.push((
                *id,
                vec![
                    ("running", c.running),
                    ("suspended", c.suspended),
                    ("backing_off", c.backing_off),
                    ("paused", c.paused),
                    ("scheduled", c.scheduled),
                    ("inboxed", c.inboxed),
                ],
            ));
        }
        Ok(prometheus::Snapshot {
            partitions,
            storage: self.storage.stats(),
            drain_statuses: statuses.into_iter().collect(),
            pinned,
        })
    }
}

async fn snapshot(state: &Arc<NodeState>) -> Result<prometheus::Snapshot, String> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || state.snapshot().map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(format!("reading the node's state: {e}")))
}

async fn scrape(axum::extract::State(state): axum::extract::State<Arc<NodeState>>) -> axum::response::Response {
    match snapshot(&state).await {
        Ok(s) => (
            [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            prometheus::render(state.metrics.as_ref(), &s),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("cannot read metrics: {e}\n")).into_response(),
    }
}

struct StatusService {
    state: Arc<NodeState>,
}

#[tonic::async_trait]
impl NodeStatus for StatusService {
    async fn get_status(
        &self,
        _request: tonic::Request<proto::GetStatusRequest>,
    ) -> Result<tonic::Response<proto::GetStatusResponse>, tonic::Status> {
        let s = snapshot(&self.state).await.map_err(tonic::Status::unavailable)?;
        let partitions = self
            .state
            .applied
            .iter()
            .zip(&s.partitions)
            .map(|((info, _), (id, applied_lsn, queue))| proto::PartitionStatus {
                id: *id,
                start_key: *info.keys.start(),
                end_key: *info.keys.end(),
                applied_lsn: *applied_lsn,
                leader_state: match queue {
                    Some(_) => proto::LeaderState::Leader,
                    None => proto::LeaderState::Stopped,
                } as i32,
                ingress_queue_depth: queue.unwrap_or(0) as u64,
            })
            .collect();
        Ok(tonic::Response::new(proto::GetStatusResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            restate_compatible_version: crate::RESTATE_COMPATIBLE_VERSION.to_owned(),
            uptime_ms: self.state.started.elapsed().as_millis() as u64,
            partitions,
            deployments_by_drain_status: s
                .drain_statuses
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), *v as u32))
                .collect(),
        }))
    }
}

/// The node port's routes: HTTP and gRPC on one router.
pub async fn router(state: Arc<NodeState>, tokens: Vec<String>) -> Result<Router, String> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<NodeStatusServer<StatusService>>().await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().map_err(|e| format!("gRPC reflection: {e}"))?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(|e| format!("gRPC reflection: {e}"))?;
    let grpc = tonic::service::Routes::new(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(NodeStatusServer::new(StatusService { state: state.clone() }))
        .into_axum_router();
    let http = Router::new()
        .route("/metrics", get(scrape))
        .route("/health", get(|| async { StatusCode::OK }))
        .with_state(state);
    let app = http.merge(grpc);
    if tokens.is_empty() {
        return Ok(app);
    }
    let tokens = Arc::new(tokens);
    Ok(app.layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
        let tokens = tokens.clone();
        async move {
            let path = request.uri().path();
            let open = path == "/health" || path.starts_with("/grpc.health.v1.Health/");
            let refused = match crate::auth::bearer(&tokens, request.headers(), "the node port") {
                Ok(()) => return next.run(request).await,
                Err(_) if open => return next.run(request).await,
                Err(message) => message,
            };
            let grpc = request
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.starts_with("application/grpc"));
            if grpc {
                return tonic::Status::unauthenticated(refused).into_http::<axum::body::Body>().into_response();
            }
            (StatusCode::UNAUTHORIZED, format!("{refused}\n")).into_response()
        }
    })))
}

/// Serves the node port until `shutdown` flips. Open gRPC watch streams do not hold the
/// shutdown up: the listener just stops.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    tokio::select! {
        served = axum::serve(listener, app) => served.map_err(|e| e.to_string()),
        _ = shutdown.changed() => Ok(()),
    }
}
