//! The ingress called in-process through [`Ingress::handle`] (the handler the server gives
//! hyper, here with an in-memory body) over the real parts of a server
//! ([`crate::admin::tests::Gateway`]: a temporary RocksDB, the schema, running partitions).
//! Error paths answer as Restate 1.7 does: `{"code","message","source":"ingress"}` with
//! `x-restate-error-source`, and the CORS headers on every answer.

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::Ingress;
use crate::admin::tests::{Answer, Gateway};
use crate::partition::{self, Lane, Request};

/// One request to the ingress, as hyper hands it over (origin-form URI).
pub(crate) async fn request(
    ingress: &Ingress,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::copy_from_slice(body.as_bytes()))).expect("a request");
    Answer::of(ingress.handle(request).await).await
}

async fn post_json(ingress: &Ingress, uri: &str, body: &str) -> Answer {
    request(ingress, Method::POST, uri, &[("content-type", "application/json")], body).await
}

/// Restate's ingress error: `status`, a message starting with `message`, and the headers
/// every ingress answer carries.
fn ingress_error(answer: &Answer, status: StatusCode, message: &str) {
    assert_eq!(answer.status, status, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["code"], status.as_u16(), "{body}");
    assert_eq!(body["source"], "ingress", "{body}");
    let text = body["message"].as_str().unwrap_or_default();
    assert!(text.starts_with(message), "'{text}' does not start with '{message}'");
    assert_eq!(body.as_object().map(|o| o.len()), Some(3), "{body}");
    assert_eq!(answer.header("x-restate-error-source"), Some("ingress"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    cors(answer);
}

fn cors(answer: &Answer) {
    assert_eq!(answer.header("vary"), Some("origin, access-control-request-method, access-control-request-headers"));
    assert_eq!(answer.header("access-control-allow-credentials"), Some("true"));
}

#[tokio::test]
async fn unknown_services_and_handlers_are_404_naming_them() {
    let gateway = Gateway::start().await;
    let ingress = gateway.ingress(1024, 8);
    ingress_error(
        &post_json(&ingress, "/NoSuchService/greet", "\"x\"").await,
        StatusCode::NOT_FOUND,
        "service 'NoSuchService' not found, make sure to register the service before calling it.",
    );
    ingress_error(
        &post_json(&ingress, "/Greeter/noSuchHandler", "\"x\"").await,
        StatusCode::NOT_FOUND,
        "the service 'Greeter' exists, but the handler 'noSuchHandler' was not found, check that the handler exists in the latest registered service version.",
    );
    ingress_error(
        &post_json(&ingress, "/Counter/k/noSuchHandler/send", "1").await,
        StatusCode::NOT_FOUND,
        "the service 'Counter' exists, but the handler 'noSuchHandler' was not found",
    );
    // A well-formed invocation id the partition owning it does not know.
    ingress_error(
        &request(&ingress, Method::GET, "/restate/invocation/inv_1h6VL9iXJDkz0bdqyzuB2nLbvqPiMsfKWA/output", &[], "")
            .await,
        StatusCode::NOT_FOUND,
        "invocation not found",
    );
    ingress_error(
        &request(&ingress, Method::GET, "/restate/invocation/Greeter/greet/never-used/output", &[], "").await,
        StatusCode::NOT_FOUND,
        "invocation not found",
    );
    let lookup =
        json!({ "target": "idempotentInvocation", "service": "Greeter", "handler": "greet", "idempotencyKey": "nope" });
    ingress_error(
        &post_json(&ingress, "/restate/lookup", &lookup.to_string()).await,
        StatusCode::NOT_FOUND,
        "invocation not found",
    );
}

#[tokio::test]
async fn bad_paths_and_ids_are_400_and_a_path_outside_the_prefix_404() {
    let gateway = Gateway::start().await;
    let ingress = gateway.ingress(1024, 8);
    ingress_error(&request(&ingress, Method::GET, "/", &[], "").await, StatusCode::BAD_REQUEST, "bad path: /");
    let expected = "bad path, expected either /:service-name/:handler or /:object-name/:object-key/:handler";
    ingress_error(&post_json(&ingress, "/Counter/add", "1").await, StatusCode::BAD_REQUEST, expected);
    ingress_error(&post_json(&ingress, "/Greeter/somekey/greet", "\"x\"").await, StatusCode::BAD_REQUEST, expected);
    ingress_error(
        &request(&ingress, Method::GET, "/restate/invocation/not-an-id/attach", &[], "").await,
        StatusCode::BAD_REQUEST,
        "bad invocation id 'not-an-id': bad format",
    );
    ingress_error(
        &request(&ingress, Method::GET, "/restate/invocation/inc_1aBCdefGHIjkLMnoPQRsTuv/attach", &[], "").await,
        StatusCode::BAD_REQUEST,
        "bad invocation id 'inc_1aBCdefGHIjkLMnoPQRsTuv': unrecognized resource type: inc",
    );
    ingress_error(
        &post_json(&ingress, "/restate/awakeables/sign_1nope/resolve", "1").await,
        StatusCode::BAD_REQUEST,
        "bad awakeable id 'sign_1nope'",
    );
    ingress_error(
        &post_json(&ingress, "/restate/attach", &json!({ "target": "somewhere" }).to_string()).await,
        StatusCode::BAD_REQUEST,
        "bad target",
    );
    let scoped = json!({ "target": "workflow", "workflowName": "SleepWorkflow", "workflowKey": "w", "scope": "s" });
    ingress_error(
        &post_json(&ingress, "/restate/output", &scoped.to_string()).await,
        StatusCode::BAD_REQUEST,
        "bad target",
    );

    let prefixed = Ingress { path_prefix: Some("/p".into()), ..gateway.ingress(1024, 8) };
    ingress_error(
        &post_json(&prefixed, "/Greeter/greet", "\"x\"").await,
        StatusCode::NOT_FOUND,
        "path '/Greeter/greet' is outside the ingress's path prefix '/p' (ingress.path-prefix)",
    );
    ingress_error(
        &post_json(&prefixed, "/p/NoSuchService/greet", "\"x\"").await,
        StatusCode::NOT_FOUND,
        "service 'NoSuchService' not found",
    );
}

#[tokio::test]
async fn methods_a_path_does_not_take_are_405() {
    let gateway = Gateway::start().await;
    let ingress = gateway.ingress(1024, 8);
    for (method, path) in [
        (Method::PUT, "/Greeter/greet"),
        (Method::DELETE, "/Greeter/greet"),
        (Method::GET, "/Greeter/greet/send"),
        (Method::POST, "/restate/health"),
        (Method::POST, "/restate/invocation/inv_1h6VL9iXJDkz0bdqyzuB2nLbvqPiMsfKWA/output"),
        (Method::GET, "/restate/lookup"),
        (Method::GET, "/restate/awakeables/sign_1nope/resolve"),
    ] {
        let answer = request(&ingress, method.clone(), path, &[], "").await;
        ingress_error(&answer, StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        assert_eq!(answer.json()["message"], "method not allowed", "{method} {path}");
    }
}

#[tokio::test]
async fn the_ingress_refuses_private_services_and_handlers_and_does_not_list_them() {
    let gateway = Gateway::start().await;
    let ingress = gateway.ingress(1024, 8);
    ingress_error(
        &post_json(&ingress, "/Backstage/tidy", "").await,
        StatusCode::BAD_REQUEST,
        "the invoked service is not public",
    );
    ingress_error(
        &post_json(&ingress, "/Greeter/internal/send", "").await,
        StatusCode::BAD_REQUEST,
        "the invoked service is not public",
    );
    let health = request(&ingress, Method::GET, "/restate/health", &[], "").await;
    assert_eq!(health.status, StatusCode::OK);
    cors(&health);
    let mut services: Vec<String> =
        serde_json::from_value(health.json()["services"].clone()).expect("a list of service names");
    services.sort();
    assert_eq!(services, ["Counter", "Greeter", "SleepWorkflow"]);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_and_bodies_that_fail_to_arrive_400() {
    let gateway = Gateway::start().await;
    let ingress = gateway.ingress(1024, 8);
    let big = format!("\"{}\"", "x".repeat(2000));
    ingress_error(
        &post_json(&ingress, "/Greeter/greet/send", &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request body too large: the limit is 1024 bytes",
    );
    ingress_error(
        &post_json(&ingress, "/restate/awakeables/sign_1nope/resolve", &big).await,
        StatusCode::BAD_REQUEST,
        "bad awakeable id",
    );
    ingress_error(
        &post_json(&ingress, "/restate/attach", &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request body too large",
    );
    // A connection that breaks mid-body.
    let chunks: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> =
        vec![Ok(http_body::Frame::data(Bytes::from_static(b"\"par"))), Err(std::io::Error::other("connection reset"))];
    let broken = http::Request::builder()
        .method(Method::POST)
        .uri("/Greeter/greet/send")
        .header("content-type", "application/json")
        .body(http_body_util::StreamBody::new(futures::stream::iter(chunks)))
        .expect("a request");
    let answer = Answer::of(ingress.handle(broken).await).await;
    ingress_error(&answer, StatusCode::BAD_REQUEST, "cannot read the request body: connection reset");
}

#[tokio::test]
async fn bad_idempotency_keys_delays_and_input_are_400_before_anything_is_logged() {
    let gateway = Gateway::start().await;
    let ingress = gateway.ingress(1024, 8);
    let bad_key = http::Request::builder()
        .method(Method::POST)
        .uri("/Greeter/greet")
        .header("content-type", "application/json")
        .header("idempotency-key", http::HeaderValue::from_bytes(b"k\xff").expect("a header value"))
        .body(Full::new(Bytes::from_static(b"\"x\"")))
        .expect("a request");
    ingress_error(
        &Answer::of(ingress.handle(bad_key).await).await,
        StatusCode::BAD_REQUEST,
        "bad idempotency key header: ",
    );
    let idempotent_run = request(
        &ingress,
        Method::POST,
        "/SleepWorkflow/w1/run",
        &[("content-type", "application/json"), ("idempotency-key", "x")],
        "1",
    )
    .await;
    ingress_error(
        &idempotent_run,
        StatusCode::BAD_REQUEST,
        "cannot use the idempotency key with workflow handlers. The handler invocation will already be idempotent by the workflow key itself.",
    );
    ingress_error(
        &post_json(&ingress, "/Greeter/greet/send?delay=banana", "\"x\"").await,
        StatusCode::BAD_REQUEST,
        "bad delay query parameter, must be a ISO8601 duration: ",
    );
    for huge in ["PT99999999999999H", "36501d"] {
        ingress_error(
            &post_json(&ingress, &format!("/Greeter/greet/send?delay={huge}"), "\"x\"").await,
            StatusCode::BAD_REQUEST,
            &format!("bad delay query parameter, must be a ISO8601 duration: '{huge}' is longer than 36500d"),
        );
    }
    ingress_error(
        &post_json(&ingress, "/Greeter/greet?delay=1s", "\"x\"").await,
        StatusCode::BAD_REQUEST,
        "cannot use the delay query parameter with calls. Use /send to send a delayed invocation",
    );
    ingress_error(
        &post_json(&ingress, "/SleepWorkflow/w1/run/send?delay=1s", "1").await,
        StatusCode::BAD_REQUEST,
        "cannot use the delay query parameter with workflow handlers",
    );
    ingress_error(
        &request(&ingress, Method::POST, "/Greeter/greet", &[("content-type", "text/plain")], "\"x\"").await,
        StatusCode::BAD_REQUEST,
        "input validation error: Content-type 'text/plain' does not match 'application/json'",
    );
    ingress_error(
        &request(&ingress, Method::POST, "/Greeter/greet/send", &[], "\"x\"").await,
        StatusCode::BAD_REQUEST,
        "input validation error: Empty content-type",
    );
    ingress_error(
        &post_json(&ingress, "/Counter/k/get", "1").await,
        StatusCode::BAD_REQUEST,
        "input validation error: Content-type 'application/json' not allowed: the handler takes no input",
    );
    // x-perdure-deployment: a bad value, an unknown deployment, one that lacks the service.
    fn to(deployment: &str) -> [(&str, &str); 2] {
        [("content-type", "application/json"), ("x-perdure-deployment", deployment)]
    }
    ingress_error(
        &request(&ingress, Method::POST, "/Greeter/greet/send", &to("dp_nope"), "\"x\"").await,
        StatusCode::BAD_REQUEST,
        "bad x-perdure-deployment header 'dp_nope'",
    );
    ingress_error(
        &request(&ingress, Method::POST, "/Greeter/greet/send", &to("dp_11111111111111111111111"), "\"x\"").await,
        StatusCode::NOT_FOUND,
        "deployment dp_11111111111111111111111 (x-perdure-deployment) is not registered",
    );
    // Nothing of all that reached a partition: no invocation exists.
    let pending = gateway.storage.pending_by_handler().expect("pending invocations");
    assert!(pending.values().all(|&n| n == 0), "{pending:?}");
}

#[tokio::test]
async fn a_send_answers_once_durable_and_its_output_is_not_ready_yet() {
    let gateway = Gateway::start().await;
    let ingress = gateway.ingress(1024, 8);
    let sent = post_json(&ingress, "/Greeter/greet/send", "\"Alice\"").await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text());
    cors(&sent);
    let body = sent.json();
    assert_eq!(body["status"], "Accepted");
    let id = body["invocationId"].as_str().expect("an id").to_owned();
    assert!(id.starts_with("inv_1"), "{id}");
    assert_eq!(sent.header("x-restate-id"), Some(id.as_str()));
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
    ingress_error(
        &request(&ingress, Method::GET, &format!("/restate/invocation/{id}/output"), &[], "").await,
        StatusCode::from_u16(470).expect("470"),
        "the invocation exists but has not completed yet",
    );
    // Twice with one idempotency key: one invocation.
    let keyed = [("content-type", "application/json"), ("idempotency-key", "k1")];
    let first = request(&ingress, Method::POST, "/Counter/c/add/send", &keyed, "1").await.json();
    let again = request(&ingress, Method::POST, "/Counter/c/add/send", &keyed, "1").await.json();
    assert_eq!((first["status"].as_str(), again["status"].as_str()), (Some("Accepted"), Some("PreviouslyAccepted")));
    assert_eq!(first["invocationId"], again["invocationId"]);
    let lookup = json!({ "target": "idempotentInvocation", "service": "Counter", "key": "c", "handler": "add", "idempotencyKey": "k1" });
    let found = post_json(&ingress, "/restate/lookup", &lookup.to_string()).await;
    assert_eq!((found.status, found.json()), (StatusCode::OK, json!({ "invocationId": first["invocationId"] })));
    // Delayed: when it will run, in the answer.
    let delayed = post_json(&ingress, "/Greeter/greet/send?delay=1h", "\"later\"").await.json();
    assert!(delayed["executionTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{delayed}");
}

#[tokio::test]
async fn a_partition_that_is_behind_or_stopped_answers_503_and_the_ingress_sheds_past_its_limit() {
    let gateway = Gateway::start().await;
    // Partitions whose queues the test holds: nothing takes from them.
    let (handle, inboxes) = partition::Handle::new(1, 1);
    let stuck = Ingress { partitions: handle.clone(), ..gateway.ingress(1024, 8) };
    handle.send(Lane::Ingress, 0, Request::Delivered { seq: 0 }).expect("room for one");
    let shed = post_json(&stuck, "/Greeter/greet/send", "\"x\"").await;
    ingress_error(
        &shed,
        StatusCode::SERVICE_UNAVAILABLE,
        "partition 0 is behind and sheds new requests (ingress.queue-per-partition is full)",
    );
    assert_eq!(shed.header("retry-after"), Some("1"));
    drop(inboxes);
    let stopped = post_json(&stuck, "/Greeter/greet/send", "\"x\"").await;
    ingress_error(
        &stopped,
        StatusCode::SERVICE_UNAVAILABLE,
        "the partition owning this invocation is unavailable, try again",
    );
    assert_eq!(stopped.header("retry-after"), None, "not shed: nothing says when it is back");

    // Every request slot taken: shed at once, before the request is even read.
    let ingress = gateway.ingress(1024, 1);
    let _busy = ingress.permits.try_acquire().expect("the one slot");
    let shed = post_json(&ingress, "/Greeter/greet/send", "\"x\"").await;
    ingress_error(
        &shed,
        StatusCode::SERVICE_UNAVAILABLE,
        "the ingress serves 1 requests at once (ingress.concurrency-limit)",
    );
    assert_eq!(shed.header("retry-after"), Some("1"));
    // A CORS preflight needs no slot.
    let preflight = request(
        &ingress,
        Method::OPTIONS,
        "/Greeter/greet",
        &[("origin", "http://example.test"), ("access-control-request-method", "POST")],
        "",
    )
    .await;
    assert_eq!((preflight.status, preflight.body.len()), (StatusCode::OK, 0));
    cors(&preflight);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("http://example.test"));
    assert_eq!(preflight.header("access-control-allow-methods"), Some("POST"));
}
