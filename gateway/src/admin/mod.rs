//! The admin REST API (port 9070): deployments, services, handlers, health, version and the
//! OpenAPI document, mounted at `/` and `/v2`..`/v4` like Restate's, so the real `restate`
//! CLI and the CDK construct work against it; and the web console at `/ui` ([`ui`]), a page
//! that is a client of the same API.
//!
//! Owns: HTTP shapes and status codes of the admin API. Does not own: registration rules
//! (`schema/`) or discovery (`invoker/discovery`).

mod about;
pub mod deployments;
pub mod error;
mod invocations;
mod openapi;
mod query;
pub mod render;
mod services;
#[cfg(test)]
pub(crate) mod tests;
mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{any, get};

use crate::invoker::DeploymentClient;
use crate::schema::{SchemaDefaults, SchemaRegistry};

pub use error::Error;

/// Restate's admin API versions; a few behaviours differ between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    Unversioned,
    V2,
    V3,
    V4,
}

/// What the admin handlers share.
pub struct AdminState {
    pub schema: SchemaRegistry,
    pub partitions: crate::partition::Handle,
    pub client: DeploymentClient,
    pub defaults: SchemaDefaults,
    pub ingress_url: String,
    pub discovery_timeout: Duration,
    /// Calls to Lambda deployments (discovery).
    pub lambda: Arc<crate::invoker::lambda::LambdaClients>,
    /// `lambda.allow-latest`.
    pub lambda_allow_latest: bool,
    /// Signs discovery requests, when a key is configured.
    pub identity: Option<Arc<crate::invoker::identity::RequestIdentity>>,
    /// Read for drain counts and the pinned index.
    pub storage: crate::storage::Storage,
    /// SQL over the system tables.
    pub query: crate::query::QueryEngine,
}

pub type State = Arc<AdminState>;

/// Runs storage reads off the async workers: a slow disk (or a large scan, such as the
/// invocations pinned to a deployment) stalls a blocking thread, never `/health` or the ingress.
async fn read_storage<T: Send + 'static>(
    state: &State,
    read: impl FnOnce(&crate::storage::Storage) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let storage = state.storage.clone();
    tokio::task::spawn_blocking(move || read(&storage))
        .await
        .unwrap_or_else(|e| Err(Error::Storage(crate::storage::StorageError::ReadInterrupted(e))))
}

/// The admin API; with `tokens`, every route but `/health` and the console's shell needs
/// `Authorization: Bearer` one of them.
pub fn router(state: State, tokens: Vec<String>) -> Router {
    let app = routes(state);
    if tokens.is_empty() {
        return app;
    }
    let tokens = Arc::new(tokens);
    app.layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
        let tokens = tokens.clone();
        async move {
            let path = request.uri().path();
            let open = path == "/health"
                || ui::is_open(path)
                || path.strip_prefix("/v").and_then(|r| r.split_once('/')).is_some_and(|(_, p)| p == "health");
            match crate::auth::bearer(&tokens, request.headers(), "this admin API") {
                Ok(()) => next.run(request).await,
                Err(_) if open => next.run(request).await,
                Err(message) => {
                    (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({ "message": message }))).into_response()
                }
            }
        }
    }))
}

fn routes(state: State) -> Router {
    let api = |version: ApiVersion| {
        Router::new()
            .route("/health", get(|| async { StatusCode::OK }))
            .route("/version", get(about::version))
            .route("/openapi", get(openapi::document))
            .route("/cluster-health", get(about::cluster_health))
            .route("/deployments", get(deployments::list).post(deployments::register))
            .route("/deployments/prune", axum::routing::post(deployments::prune))
            .route(
                "/deployments/{id}",
                get(deployments::get_one).delete(deployments::remove).patch(deployments::update),
            )
            .route("/deployments/{id}/invocations", get(invocations::pinned))
            .route("/deployments/{id}/pause", axum::routing::post(deployments::pause))
            .route("/deployments/{id}/resume", axum::routing::post(deployments::resume))
            .route("/services", get(services::list))
            .route("/services/{name}", get(services::get_one).patch(services::modify))
            .route("/services/{name}/handlers", get(services::handlers))
            .route("/services/{name}/promote", axum::routing::post(services::promote))
            .route("/services/{name}/rollback", axum::routing::post(services::rollback))
            .route("/services/{name}/ramp", axum::routing::post(services::ramp))
            .route("/services/{name}/handlers/{handler}", get(services::handler))
            .route("/invocations/{id}", get(invocations::get_one).delete(invocations::delete))
            .route("/invocations/{id}/cancel", axum::routing::patch(invocations::cancel))
            .route("/invocations/{id}/kill", axum::routing::patch(invocations::kill))
            .route("/invocations/{id}/purge", axum::routing::patch(invocations::purge))
            .route("/invocations/{id}/purge-journal", axum::routing::patch(invocations::purge_journal))
            .route("/invocations/{id}/restart-as-new", axum::routing::patch(invocations::restart_as_new))
            .route("/invocations/{id}/pause", axum::routing::patch(invocations::pause))
            .route("/invocations/{id}/resume", axum::routing::patch(invocations::resume))
            .route("/query", axum::routing::post(query::query))
            .route("/subscriptions", get(about::subscriptions))
            .route("/kafka-clusters", get(about::kafka_clusters))
            .layer(Extension(version))
            .with_state(state.clone())
    };
    Router::new()
        .merge(api(ApiVersion::Unversioned))
        .nest("/v2", api(ApiVersion::V2))
        .nest("/v3", api(ApiVersion::V3))
        .nest("/v4", api(ApiVersion::V4))
        .route("/v1", any(v1))
        .route("/v1/{*rest}", any(v1))
        .merge(ui::routes())
}

async fn v1() -> impl IntoResponse {
    (StatusCode::BAD_REQUEST, "Unsupported Admin API version V1. This server supports versions between V2 and V4.")
}
