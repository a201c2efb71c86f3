//! Broken deployments: a deployment that answers invocations with garbage must not hurt the
//! server. The attempts fail as protocol violations and are retried with backoff, the
//! invocation stays alive (and can be killed), and everything else keeps working.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;

use crate::harness::*;

const MANIFEST: &str = r#"{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":6,
  "services":[{"name":"Broken","ty":"SERVICE","handlers":[{"name":"h"}]}]}"#;

/// An HTTP/2 endpoint with a valid manifest whose invocations answer `garbage`.
struct FakeDeployment {
    port: u16,
    attempts: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeDeployment {
    fn start(garbage: &'static [u8]) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let counter = counter.clone();
                        async move {
                            let response = if req.uri().path() == "/discover" {
                                http::Response::builder()
                                    .header("content-type", "application/vnd.restate.endpointmanifest.v2+json")
                                    .body(Full::new(Bytes::from_static(MANIFEST.as_bytes())))
                            } else {
                                counter.fetch_add(1, Ordering::SeqCst);
                                http::Response::builder()
                                    .header("content-type", "application/vnd.restate.invocation.v6")
                                    .body(Full::new(Bytes::from_static(garbage)))
                            };
                            Ok::<_, Infallible>(response.unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { port, attempts, _runtime: runtime }
    }
}

fn survives(garbage: &'static [u8]) {
    let perdure = Perdure::start_with(&[("PERDURE_RETRY_POLICY__INITIAL_INTERVAL", "50ms")]);
    let fake = FakeDeployment::start(garbage);
    let (status, body) = perdure.register(&format!("http://127.0.0.1:{}", fake.port), json!({}));
    assert_eq!(status, 201, "{body}");
    let r = post_json(&format!("{}/Broken/h/send", perdure.ingress), "1");
    assert_eq!(r.status, 202);
    let id = r.json()["invocationId"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(20), "several failed attempts", || {
        (fake.attempts.load(Ordering::SeqCst) >= 3).then_some(())
    });
    assert_eq!(get(&format!("{}/restate/invocation/{id}/output", perdure.ingress)).status, 470);
    assert_eq!(get(&format!("{}/health", perdure.admin)).status, 200);
    assert_eq!(request("PATCH", &format!("{}/invocations/{id}/kill", perdure.admin)).status, 200);
    let killed = get(&format!("{}/restate/invocation/{id}/attach", perdure.ingress));
    assert_eq!(killed.status, 409, "{}", killed.body);
}

#[test]
fn garbage_frames_are_protocol_violations_and_retried() {
    // A frame header announcing a custom entry type, then bytes that are no protobuf.
    survives(b"\xfc\x00\x00\x00\x00\x00\x00\x04\xff\xff\xff\xff");
}

#[test]
fn an_oversized_frame_is_refused_without_buffering_it() {
    // Announces a 4 GiB message.
    survives(b"\x04\x01\x00\x00\xff\xff\xff\xff");
}

#[test]
fn an_answer_without_a_terminal_message_is_retried() {
    // An Output command with no End: the stream just stops.
    survives(b"\x04\x01\x00\x00\x00\x00\x00\x05\x72\x03\x0a\x01\x31");
}
