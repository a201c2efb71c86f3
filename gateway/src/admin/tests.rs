//! The admin router called in-process (`Router::oneshot`, axum's testing pattern) over the
//! real parts of a server: a temporary RocksDB, the schema registry with a deployment
//! registered, and partitions running on their own threads. Error paths answer with the
//! status codes and body shapes Restate 1.7 answers (the `restate` CLI needs
//! `{"message","restate_code"}` on every non-2xx JSON answer; path ids that do not parse are
//! plain text).
//!
//! [`Gateway`] is also what the ingress's router tests run on.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::{AdminState, router};
use crate::engine::keyspace::{PartitionInfo, key_range};
use crate::ids::DeploymentId;
use crate::ingress::Ingress;
use crate::partition::{self, Partition, Wiring};
use crate::protocol::Manifest;
use crate::protocol::manifest::parse_manifest;
use crate::schema::tests::{Pending, registration};
use crate::schema::{SchemaDefaults, SchemaRegistry, register};
use crate::storage::log::{Log, LogId, RocksLog};
use crate::storage::{Database, Storage};

/// Services like the TypeScript test services' (`tests/services/ts/services.mjs`), plus one
/// the ingress may not call and one handler it may not call.
const MANIFEST: &str = r#"{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":7,"services":[
    {"name":"Greeter","ty":"SERVICE","handlers":[
        {"name":"greet","input":{"required":false,"contentType":"application/json"},"output":{"contentType":"application/json"}},
        {"name":"sleepy","input":{"required":false,"contentType":"application/json"},"output":{"contentType":"application/json"}},
        {"name":"internal","ingressPrivate":true}]},
    {"name":"Counter","ty":"VIRTUAL_OBJECT","handlers":[
        {"name":"add","ty":"EXCLUSIVE","input":{"required":false,"contentType":"application/json"}},
        {"name":"get","ty":"SHARED","input":{}}]},
    {"name":"SleepWorkflow","ty":"WORKFLOW","handlers":[{"name":"run","ty":"WORKFLOW"},{"name":"status","ty":"SHARED"}]},
    {"name":"Backstage","ty":"SERVICE","ingressPrivate":true,"handlers":[{"name":"tidy"}]}]}"#;

pub(crate) fn manifest() -> Manifest {
    parse_manifest(Some("application/vnd.restate.endpointmanifest.v3+json"), MANIFEST.as_bytes())
        .expect("test manifest")
}

/// The parts of a server the routers work on, started for real over a temporary directory.
/// No invoker runs: an attempt a partition starts goes nowhere, so tests use sends and
/// reads, never calls that wait for a handler.
pub(crate) struct Gateway {
    pub schema: SchemaRegistry,
    pub partitions: partition::Handle,
    pub storage: Storage,
    /// `http://127.0.0.1:1/`, registered with [`manifest`]: the latest revision of each service.
    pub deployment: DeploymentId,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Where attempts would go; kept so that handing one over is not an error.
    _invoker: crate::invoker::Invoker,
    // Dropped last, once every handle to it is gone.
    _db: Database,
    _dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start() -> Self {
        const PARTITIONS: u32 = 2;
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Database::open(dir.path(), &Default::default(), PARTITIONS).expect("open the database");
        let storage = db.storage();
        let schema_log = RocksLog::open(storage.clone(), db.log_writer(), LogId::Schema, 0).expect("schema log");
        let schema = SchemaRegistry::load(storage.clone(), schema_log).await.expect("load the schema");
        let (invoker, invoker_handle) = crate::invoker::Invoker::new();
        let (partitions, inboxes) = partition::Handle::new(PARTITIONS, 64);
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let mut threads = Vec::new();
        for (id, inbox) in (0..PARTITIONS).zip(inboxes) {
            let info = PartitionInfo { id, keys: key_range(id, PARTITIONS) };
            let meta = storage.partition_meta(id).expect("partition meta");
            let log = RocksLog::open(storage.clone(), db.log_writer(), LogId::Partition(id), meta.applied_lsn)
                .expect("partition log");
            let tail = log.tail().await.expect("log tail");
            let partition = Partition::new(Wiring {
                info,
                storage: storage.clone(),
                log,
                tail,
                inbox,
                partitions: partitions.clone(),
                attempts: Arc::new(invoker_handle.clone()),
                applied: Arc::new(AtomicU64::new(0)),
            })
            .expect("partition");
            let rx = shutdown_rx.clone();
            // As the server runs them: each on a thread of its own.
            threads.push(std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(partition.run(rx)).expect("the partition runs until shut down");
            }));
        }
        let mut gateway = Self {
            schema,
            partitions,
            storage,
            deployment: DeploymentId(0),
            shutdown: Some(shutdown),
            threads,
            _invoker: invoker,
            _db: db,
            _dir: dir,
        };
        gateway.deployment = gateway.register("http://127.0.0.1:1/").await;
        gateway
    }

    /// Registers [`manifest`] at `uri` (as discovery there would have found it): its id.
    pub async fn register(&self, uri: &str) -> DeploymentId {
        let mut request = registration(uri, manifest());
        request.now = crate::durations::now_ms();
        let outcome = self
            .schema
            .update(|s| register(s, request, &SchemaDefaults::default(), &Pending::default()))
            .await
            .expect("registered");
        outcome.deployment().id
    }

    /// The admin API over these parts; with `tokens`, guarded by them.
    pub fn admin(&self, tokens: &[&str]) -> Router {
        let state = Arc::new(AdminState {
            schema: self.schema.clone(),
            partitions: self.partitions.clone(),
            client: crate::invoker::DeploymentClient::with_roots(
                std::time::Duration::from_secs(1),
                rustls::RootCertStore::empty(),
            ),
            defaults: SchemaDefaults::default(),
            ingress_url: "http://127.0.0.1:8080/".into(),
            discovery_timeout: std::time::Duration::from_secs(1),
            lambda: Arc::new(crate::invoker::lambda::LambdaClients::new(crate::invoker::lambda::LambdaSettings {
                assume_role_external_id: None,
                request_compression_threshold: usize::MAX,
            })),
            lambda_allow_latest: false,
            identity: None,
            storage: self.storage.clone(),
            query: crate::query::QueryEngine::new(
                self.schema.clone(),
                self.storage.clone(),
                std::time::Duration::from_secs(10),
            ),
        });
        router(state, tokens.iter().map(|t| t.to_string()).collect())
    }

    /// The ingress over these parts, taking bodies of up to `request_size_limit` bytes and
    /// `concurrency_limit` requests at once.
    pub fn ingress(&self, request_size_limit: u64, concurrency_limit: usize) -> Ingress {
        Ingress {
            schema: self.schema.clone(),
            partitions: self.partitions.clone(),
            request_size_limit,
            path_prefix: None,
            permits: tokio::sync::Semaphore::new(concurrency_limit),
            concurrency_limit,
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // Dropping the sender ends every partition's loop; then the database can close.
        self.shutdown.take();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() && !std::thread::panicking() {
                panic!("a partition thread panicked");
            }
        }
    }
}

/// A response, read whole.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub async fn of<B: http_body::Body<Error: std::fmt::Debug>>(response: http::Response<B>) -> Self {
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("the body").to_bytes();
        Self { status: parts.status, headers: parts.headers, body }
    }
}

/// One request to the admin router, as a client would send it.
async fn call(app: &Router, method: Method, uri: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::new(Full::new(Bytes::copy_from_slice(body.as_bytes())))).expect("a request");
    Answer::of(app.clone().oneshot(request).await.expect("the router answers")).await
}

async fn get(app: &Router, uri: &str) -> Answer {
    call(app, Method::GET, uri, &[], "").await
}

async fn send_json(app: &Router, method: Method, uri: &str, body: Value) -> Answer {
    call(app, method, uri, &[("content-type", "application/json")], &body.to_string()).await
}

/// Restate's admin error: `{"message", "restate_code"}` with `status`.
fn admin_error(answer: &Answer, status: StatusCode, message: &str) {
    assert_eq!(answer.status, status, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    assert_eq!(body["message"], message, "{body}");
    assert!(body.get("restate_code").is_some(), "restate_code is always there (null when none): {body}");
}

const UNKNOWN_INVOCATION: &str = "inv_1h6VL9iXJDkz0bdqyzuB2nLbvqPiMsfKWA";

#[tokio::test]
async fn unknown_deployments_services_handlers_and_invocations_are_404_naming_them() {
    let gateway = Gateway::start().await;
    let app = gateway.admin(&[]);
    for prefix in ["", "/v2", "/v3", "/v4"] {
        admin_error(
            &get(&app, &format!("{prefix}/deployments/dp_11111111111111111111111")).await,
            StatusCode::NOT_FOUND,
            "The requested deployment 'dp_11111111111111111111111' does not exist",
        );
    }
    admin_error(
        &get(&app, "/services/NoSuchService").await,
        StatusCode::NOT_FOUND,
        "The requested service 'NoSuchService' does not exist",
    );
    admin_error(
        &get(&app, "/services/Greeter/handlers/nope").await,
        StatusCode::NOT_FOUND,
        "The requested handler 'nope' on service 'Greeter' does not exist",
    );
    let unknown_invocation = format!("The requested invocation '{UNKNOWN_INVOCATION}' does not exist");
    admin_error(
        &get(&app, &format!("/invocations/{UNKNOWN_INVOCATION}")).await,
        StatusCode::NOT_FOUND,
        &unknown_invocation,
    );
    // These reach the partition owning the id, which knows nothing of it.
    for action in ["cancel", "kill", "purge", "purge-journal", "restart-as-new", "pause", "resume"] {
        let answer = call(&app, Method::PATCH, &format!("/invocations/{UNKNOWN_INVOCATION}/{action}"), &[], "").await;
        admin_error(&answer, StatusCode::NOT_FOUND, &unknown_invocation);
    }
    admin_error(
        &call(&app, Method::DELETE, "/deployments/dp_11111111111111111111111", &[], "").await,
        StatusCode::NOT_FOUND,
        "The requested deployment 'dp_11111111111111111111111' does not exist",
    );
    // A path the API does not have: 404 with no body, as Restate.
    let nope = get(&app, "/nope").await;
    assert_eq!((nope.status, nope.body.len()), (StatusCode::NOT_FOUND, 0));
}

#[tokio::test]
async fn ids_in_the_path_that_do_not_parse_are_400_in_plain_text() {
    let gateway = Gateway::start().await;
    let app = gateway.admin(&[]);
    let plain = |answer: &Answer, expected: &str| {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
        assert_eq!(answer.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(answer.text(), expected);
    };
    plain(
        &get(&app, "/deployments/not-an-id").await,
        "Invalid URL: Cannot parse `deployment` with value `not-an-id`: bad format",
    );
    plain(
        &get(&app, "/v3/deployments/not-an-id/invocations").await,
        "Invalid URL: Cannot parse `deployment` with value `not-an-id`: bad format",
    );
    plain(
        &call(&app, Method::DELETE, "/deployments/not-an-id", &[], "").await,
        "Invalid URL: Cannot parse `deployment` with value `not-an-id`: bad format",
    );
    plain(
        &call(&app, Method::PATCH, "/invocations/not-an-id/cancel", &[], "").await,
        "Invalid URL: Cannot parse `invocation_id` with value `not-an-id`: bad format",
    );
    plain(
        &get(&app, "/invocations/inc_1aBCdefGHIjkLMnoPQRsTuv").await,
        "Invalid URL: Cannot parse `invocation_id` with value `inc_1aBCdefGHIjkLMnoPQRsTuv`: unrecognized resource type: inc",
    );
    // Version 1 of the admin API is gone, in plain text too.
    let v1 = get(&app, "/v1/deployments").await;
    assert_eq!(v1.status, StatusCode::BAD_REQUEST);
    assert_eq!(v1.text(), "Unsupported Admin API version V1. This server supports versions between V2 and V4.");
}

#[tokio::test]
async fn invalid_fields_are_400_naming_the_field_and_why() {
    let gateway = Gateway::start().await;
    let app = gateway.admin(&[]);
    let ingress = gateway.ingress(1024, 8);
    let invalid = |field: &str| format!("The request field '{field}' is invalid. Reason: ");
    let starts = |answer: &Answer, prefix: &str| {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
        let message = answer.json()["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.starts_with(prefix), "{message} does not start with {prefix}");
        message
    };
    let unknown = format!("/invocations/{UNKNOWN_INVOCATION}");
    let m = starts(&call(&app, Method::DELETE, &format!("{unknown}?mode=explode"), &[], "").await, &invalid("mode"));
    assert!(m.ends_with("unknown mode 'explode': use cancel, kill or purge"), "{m}");
    starts(&call(&app, Method::PATCH, &format!("{unknown}/restart-as-new?from=3"), &[], "").await, &invalid("from"));
    starts(
        &call(&app, Method::PATCH, &format!("{unknown}/restart-as-new?deployment=keep"), &[], "").await,
        &invalid("deployment"),
    );
    let dp = gateway.deployment;
    let m = starts(&get(&app, &format!("/deployments/{dp}/invocations?limit=0")).await, &invalid("limit"));
    assert!(m.ends_with("must be between 1 and 10000, not 0"), "{m}");
    let m = starts(
        &send_json(&app, Method::PATCH, "/services/Greeter", json!({ "idempotency_retention": "99999999999d" })).await,
        &invalid("idempotency_retention"),
    );
    assert!(m.contains("36500d"), "{m}");
    let m = starts(
        &send_json(&app, Method::PATCH, "/services/Greeter", json!({ "workflow_completion_retention": "1h" })).await,
        &invalid("workflow_completion_retention"),
    );
    assert!(m.ends_with("'Greeter' is not a workflow"), "{m}");
    // Refused before any discovery is tried.
    let m = starts(&send_json(&app, Method::POST, "/deployments", json!({ "uri": "/foo" })).await, &invalid("uri"));
    assert!(m.contains("is not absolute"), "{m}");
    starts(&send_json(&app, Method::POST, "/deployments", json!({ "uri": "ftp://h/" })).await, &invalid("uri"));
    let latest = "arn:aws:lambda:eu-central-1:123456789012:function:greeter:$LATEST";
    let m = starts(&send_json(&app, Method::POST, "/deployments", json!({ "arn": latest })).await, &invalid("arn"));
    assert!(m.contains("lambda.allow-latest"), "{m}");

    // Resuming onto a deployment that is not one: a real invocation, sent with a delay.
    let sent = crate::ingress::tests::request(
        &ingress,
        Method::POST,
        "/Greeter/greet/send?delay=1h",
        &[("content-type", "application/json")],
        "\"x\"",
    )
    .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text());
    let id = sent.json()["invocationId"].as_str().expect("an id").to_owned();
    let m = starts(
        &call(&app, Method::PATCH, &format!("/invocations/{id}/resume?deployment=nope"), &[], "").await,
        &invalid("deployment"),
    );
    assert!(m.contains("'nope' is not keep, latest or a deployment id"), "{m}");
    let m = starts(
        &call(&app, Method::PATCH, &format!("/invocations/{id}/resume?deployment=dp_11111111111111111111111"), &[], "")
            .await,
        &invalid("deployment"),
    );
    assert!(m.ends_with("deployment dp_11111111111111111111111 does not exist"), "{m}");
}

#[tokio::test]
async fn bodies_that_are_not_the_json_expected_are_refused_as_restate_does() {
    let gateway = Gateway::start().await;
    let app = gateway.admin(&[]);
    let json = [("content-type", "application/json")];
    // Syntax errors: 400, plain text.
    for body in ["{\"uri\":", "{\"uri\":\"http://127.0.0.1:9}"] {
        let answer = call(&app, Method::POST, "/deployments", &json, body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
        assert_eq!(answer.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(answer.text().starts_with("Failed to parse the request body as JSON: "), "{}", answer.text());
    }
    // Well-formed but not a registration: 422, plain text.
    let answer = call(&app, Method::POST, "/deployments", &json, "{}").await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.text());
    assert!(
        answer.text().starts_with("Failed to deserialize the JSON body into the target type: "),
        "{}",
        answer.text()
    );
    let answer = call(&app, Method::PATCH, "/deployments/dp_11111111111111111111111", &json, "{\"nope\":1}").await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.text());
    assert!(answer.text().contains("unknown field `nope`"), "{}", answer.text());
    // Not JSON at all.
    let answer = call(&app, Method::POST, "/deployments", &[], "uri=http://x/").await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", answer.text());
    let answer = call(&app, Method::POST, "/query", &[], "SELECT 1").await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", answer.text());
    // SQL that does not parse: 400 with Restate's `{"message"}`.
    let answer = call(&app, Method::POST, "/query", &json, &json!({ "query": "SELEKT nope" }).to_string()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    let message = answer.json()["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("SELEKT"), "{message}");
    let answer = call(&app, Method::POST, "/query", &json, "{\"sql\":\"SELECT 1\"}").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    // A method the path does not have: 405 with what it has.
    let answer = call(&app, Method::PUT, "/deployments", &json, "{}").await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.header("allow"), Some("GET,HEAD,POST"));
}

#[tokio::test]
async fn a_deployment_that_is_not_drained_is_kept_unless_forced_and_says_what_holds_it() {
    let gateway = Gateway::start().await;
    let app = gateway.admin(&[]);
    let ingress = gateway.ingress(1024, 8);
    let dp1 = gateway.deployment;

    // Active: it serves the latest revision of every service.
    let held = call(&app, Method::DELETE, &format!("/deployments/{dp1}"), &[], "").await;
    assert_eq!(held.status, StatusCode::CONFLICT, "{}", held.text());
    let body = held.json();
    assert_eq!(body["drain_status"], "active", "{body}");
    assert_eq!(body["latest_for"], json!(["Backstage", "Counter", "Greeter", "SleepWorkflow"]), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(&format!("deployment {dp1} is active and cannot be removed")), "{message}");
    assert!(message.contains("force=true"), "{message}");
    assert!(body.get("restate_code").is_some(), "{body}");

    // Draining: a newer deployment took over, and work sent to this one waits for it.
    let dp2 = gateway.register("http://127.0.0.1:2/").await;
    let sent = crate::ingress::tests::request(
        &ingress,
        Method::POST,
        "/Greeter/greet/send?delay=1h",
        &[("content-type", "application/json"), ("x-perdure-deployment", &dp1.to_string())],
        "\"later\"",
    )
    .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text());
    let later = sent.json()["invocationId"].as_str().expect("an id").to_owned();
    let held = call(&app, Method::DELETE, &format!("/deployments/{dp1}"), &[], "").await;
    assert_eq!(held.status, StatusCode::CONFLICT, "{}", held.text());
    let body = held.json();
    assert_eq!(body["drain_status"], "draining", "{body}");
    assert_eq!(body["latest_for"], json!([]), "{body}");
    assert_eq!(
        (body["pinned_invocations"]["total"].as_u64(), body["pinned_invocations"]["scheduled"].as_u64()),
        (Some(1), Some(1)),
        "{body}"
    );
    assert_eq!(body["invocations"], json!([later]), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("1 scheduled"), "{body}");
    // The one that took over is active, so it is held too.
    assert_eq!(call(&app, Method::DELETE, &format!("/deployments/{dp2}"), &[], "").await.status, StatusCode::CONFLICT);

    // Forced: it goes at once, and what was pinned to it ends naming it.
    let forced = call(&app, Method::DELETE, &format!("/deployments/{dp1}?force=true"), &[], "").await;
    assert_eq!(forced.status, StatusCode::ACCEPTED, "{}", forced.text());
    assert_eq!(get(&app, &format!("/deployments/{dp1}")).await.status, StatusCode::NOT_FOUND);
    let ended =
        crate::ingress::tests::request(&ingress, Method::GET, &format!("/restate/invocation/{later}/output"), &[], "")
            .await;
    assert_eq!(ended.status, StatusCode::GONE, "{}", ended.text());
    let message = ended.json()["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains(&dp1.to_string()) && message.contains("before it started"), "{message}");
}

#[tokio::test]
async fn with_tokens_every_route_but_health_needs_one_of_them() {
    let gateway = Gateway::start().await;
    let app = gateway.admin(&["old-token-9876543210", "admin-token-0123456789"]);
    let missing = get(&app, "/deployments").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.json(),
        json!({ "message": "this admin API needs `Authorization: Bearer <token>` with one of admin.auth-tokens" })
    );
    for wrong in ["Bearer admin-token-012345678", "Bearer nope", "Basic YWRtaW46YWRtaW4="] {
        let answer = call(&app, Method::GET, "/deployments", &[("authorization", wrong)], "").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert!(answer.json()["message"].as_str().is_some(), "{wrong}");
    }
    let wrong = call(&app, Method::GET, "/v3/services", &[("authorization", "Bearer nope")], "").await;
    assert_eq!(wrong.json()["message"], "the bearer token is not one of admin.auth-tokens");
    // Writes are guarded before anything is looked at.
    let answer = call(&app, Method::DELETE, "/deployments/not-an-id", &[], "").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    for token in ["old-token-9876543210", "admin-token-0123456789"] {
        let bearer = format!("Bearer {token}");
        let answer = call(&app, Method::GET, "/deployments", &[("authorization", &bearer)], "").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.json()["deployments"][0]["id"], gateway.deployment.to_string());
    }
    // Health is open, so probes need no secret.
    for path in ["/health", "/v2/health", "/v4/health"] {
        assert_eq!(get(&app, path).await.status, StatusCode::OK, "{path}");
    }
}
