//! The real binary under a minimal fake Lambda Runtime API served by the test (127.0.0.1 only).

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use common::{B64, start_fake_ingress, v1_event, v2_event};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_perdure-apigw-front");
const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

struct FakeRuntime {
    /// The one event to hand out; later `next` calls block forever.
    event: Mutex<Option<String>>,
    /// (path, body) of every POST the function makes.
    posts: mpsc::UnboundedSender<(String, Vec<u8>)>,
}

async fn runtime_api(state: Arc<FakeRuntime>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if req.method() == hyper::Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        let event = state.event.lock().unwrap().take();
        let Some(event) = event else {
            std::future::pending::<()>().await;
            unreachable!();
        };
        let deadline_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 30_000;
        return Ok(Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("Lambda-Runtime-Aws-Request-Id", REQUEST_ID)
            .header("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string())
            .header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:front")
            .body(Full::new(Bytes::from(event)))
            .unwrap());
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let _ = state.posts.send((path, body));
    Ok(Response::builder().status(202).body(Full::new(Bytes::from_static(b"{}"))).unwrap())
}

async fn start_fake_runtime(event: String) -> (SocketAddr, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Arc::new(FakeRuntime { event: Mutex::new(Some(event)), posts: tx });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| runtime_api(state.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    (addr, rx)
}

/// Runs the binary against a fake runtime API handing out `event`; returns what the function
/// POSTed for the invocation and its stderr.
async fn run_binary_once(event: String, ingress: SocketAddr) -> (Value, String) {
    let (runtime, mut posts) = start_fake_runtime(event).await;
    let mut child = tokio::process::Command::new(BIN)
        .env_remove("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH")
        .env_remove("PERDURE_FRONT_STRIP_PREFIX")
        .env_remove("PERDURE_FRONT_TIMEOUT")
        .env("AWS_LAMBDA_RUNTIME_API", runtime.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "front")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("PERDURE_INGRESS_URL", format!("http://{ingress}"))
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the binary");

    let posted = tokio::time::timeout(Duration::from_secs(30), posts.recv()).await;
    let _ = child.start_kill();
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let (path, body) = posted.expect("the function answered in time").expect("a POST arrived");
    assert_eq!(path, format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response"), "stderr: {stderr}");
    let answer: Value = serde_json::from_slice(&body).unwrap();
    eprintln!("runtime API received: {answer}\nfunction stderr:\n{stderr}");
    (answer, stderr)
}

#[tokio::test]
async fn binary_answers_a_v2_invocation_through_the_runtime_api() {
    let ingress = start_fake_ingress().await;
    let event = v2_event(
        "POST",
        "/prod/Greeter/greet",
        "prod",
        "",
        json!({ "headers": { "content-type": "application/json", "idempotency-key": "k1" }, "body": "\"Ada\"" }),
    );
    let (answer, stderr) = run_binary_once(event, ingress).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["isBase64Encoded"], false);
    assert_eq!(answer["headers"]["content-type"], "application/json");
    assert_eq!(answer["headers"]["x-multi"], "one, two");
    let echo: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(echo["path"], "/Greeter/greet");
    assert_eq!(echo["headers"]["idempotency-key"], json!(["k1"]));
    assert!(stderr.contains("forwarded"), "stderr: {stderr}");
}

#[tokio::test]
async fn binary_answers_a_v1_invocation_with_binary_body() {
    let ingress = start_fake_ingress().await;
    let raw: Vec<u8> = vec![0, 1, 2, 250, 251, 255];
    let event = v1_event("POST", "/binary/x", "prod", json!({ "body": B64.encode(&raw), "isBase64Encoded": true }));
    let (answer, _) = run_binary_once(event, ingress).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["isBase64Encoded"], true);
    assert_eq!(answer["multiValueHeaders"]["content-type"], json!(["application/octet-stream"]));
    assert_eq!(B64.decode(answer["body"].as_str().unwrap()).unwrap(), raw);
}

#[tokio::test]
async fn binary_answers_a_v1_invocation_with_multi_value_headers_and_error_status() {
    let ingress = start_fake_ingress().await;
    let (answer, _) =
        run_binary_once(v1_event("POST", "/Greeter/greet", "prod", json!({ "body": "1" })), ingress).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["multiValueHeaders"]["x-multi"], json!(["one", "two"]));

    let (answer, _) = run_binary_once(v1_event("POST", "/Nope/run", "prod", json!({})), ingress).await;
    assert_eq!(answer["statusCode"], 404, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["restate_code"], "RT0018");
}

#[test]
fn binary_without_ingress_url_fails_naming_the_variable() {
    let output = std::process::Command::new(BIN)
        .env_remove("PERDURE_INGRESS_URL")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PERDURE_INGRESS_URL"), "stderr: {stderr}");
}
