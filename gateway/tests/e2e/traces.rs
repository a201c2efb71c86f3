//! Traces as a collector receives them: a small OTLP receiver (the `opentelemetry-proto`
//! `TraceService` over tonic) in the test, perdure exporting to it, and the spans checked for
//! the structure `docs/operations.md` documents: ingress → invocation → attempts → steps, calls as
//! child invocations in the same trace, the request's `traceparent` continued and the
//! attempt's passed to the deployment, and the same trace after a `kill -9`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use serde_json::json;

use crate::harness::*;

/// Spans received, with the `service.name` of the resource that sent them.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    any_value::Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                spans.extend(ss.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// An OTLP/gRPC receiver on a free loopback port, served by its own runtime thread.
struct Collector {
    url: String,
    received: Received,
    _runtime: tokio::runtime::Runtime,
}

impl Collector {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Received::default();
        let service = TraceServiceServer::new(received.clone());
        runtime.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream_of(listener))
                .await
                .expect("collector serves");
        });
        Collector { url, received, _runtime: runtime }
    }

    fn spans(&self) -> Vec<(String, Span)> {
        self.received.0.lock().unwrap().clone()
    }

    /// Waits until `f` finds what it looks for in the spans received so far.
    fn wait_for<T>(&self, what: &str, mut f: impl FnMut(&[Span]) -> Option<T>) -> T {
        eventually(Duration::from_secs(30), what, || {
            let spans: Vec<Span> = self.spans().into_iter().map(|(_, s)| s).collect();
            f(&spans)
        })
    }
}

fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = Result<tokio::net::TcpStream, std::io::Error>> {
    futures::stream::unfold(listener, |listener| async move {
        let next = listener.accept().await.map(|(stream, _)| stream);
        Some((next, listener))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    })
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one '{name}' span; got {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    found[0]
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.parent_span_id == parent.span_id).collect()
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn an_invocation_exports_its_ingress_attempts_steps_and_calls_as_one_trace() {
    let collector = Collector::start();
    let perdure = Perdure::start_with(&[
        ("PERDURE_TRACING__ENDPOINT", collector.url.as_str()),
        ("PERDURE_TRACING__EXPORT_INTERVAL", "50ms"),
        ("PERDURE_TRACING__SERVICE_NAME", "perdure-under-test"),
    ]);
    let svc = TsServices::start("h2", "v1");
    let deployment = perdure.deploy(&svc.url(), json!({}));

    let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let r = post_with(
        &format!("{}/Greeter/traced", perdure.ingress),
        "\"Ada\"",
        &[("content-type", "application/json"), ("traceparent", &traceparent)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let out = r.json();
    assert_eq!(out["greeting"], "Hello, Ada!");
    let id = r.header("x-restate-id").expect("invocation id").to_owned();

    // Three invocations end: traced, the greet it called and the greet it sent; each span
    // arrives once what it covers ended (an attempt's once its stream closed).
    let spans = collector.wait_for("three invocations, their attempts and the ingress span", |spans| {
        let count = |prefix: &str| spans.iter().filter(|s| s.name.starts_with(prefix)).count();
        (count("invocation ") >= 3
            && count("attempt Greeter/greet") >= 2
            && count("attempt Greeter/traced") >= 1
            && count("ingress ") >= 1)
            .then(|| spans.to_vec())
    });
    assert!(collector.spans().iter().all(|(service, _)| service == "perdure-under-test"));
    assert!(spans.iter().all(|s| hex(&s.trace_id) == TRACE), "every span continues the request's trace");

    let ingress = one(&spans, "ingress Greeter/traced");
    assert_eq!(hex(&ingress.parent_span_id), CALLER_SPAN, "the caller's span is the ingress span's parent");
    assert_eq!(ingress.kind, SpanKind::Server as i32);
    assert_eq!(attr(ingress, "restate.invocation.id").as_deref(), Some(id.as_str()));
    assert_eq!(attr(ingress, "http.response.status_code").as_deref(), Some("200"));

    let invocation = one(&spans, "invocation Greeter/traced");
    assert_eq!(invocation.parent_span_id, ingress.span_id);
    assert_eq!(attr(invocation, "restate.invocation.id").as_deref(), Some(id.as_str()));
    assert_eq!(attr(invocation, "perdure.deployment.id").as_deref(), Some(deployment.as_str()));
    assert_eq!(attr(invocation, "restate.invocation.result").as_deref(), Some("success"));

    let attempts = named(&spans, "attempt Greeter/traced");
    assert!(!attempts.is_empty());
    for attempt in &attempts {
        assert_eq!(attempt.parent_span_id, invocation.span_id, "attempts are children of the invocation");
        assert_eq!(attr(attempt, "perdure.deployment.id").as_deref(), Some(deployment.as_str()));
        assert_eq!(attr(attempt, "perdure.protocol").as_deref(), Some("http2"));
        assert!(attempt.start_time_unix_nano >= invocation.start_time_unix_nano / 1_000_000 * 1_000_000);
    }
    // The deployment was sent the traceparent of the attempt that ran it.
    let sent = out["traceparent"].as_str().expect("the handler saw a traceparent");
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE, "01"), "{sent}");
    let last = attempts.iter().find(|a| hex(&a.span_id) == parts[2]).expect("the attempt named by the traceparent");

    // Steps are children of the attempt that ran them (the last one, after any replay).
    let steps: Vec<&str> = attempts.iter().flat_map(|a| children(&spans, a)).map(|s| s.name.as_str()).collect();
    for step in ["run stamp", "sleep", "call Greeter/greet", "send Greeter/greet"] {
        assert!(steps.contains(&step), "a '{step}' step; got {steps:?}");
    }
    let run = one(&spans, "run stamp");
    assert!(run.end_time_unix_nano >= run.start_time_unix_nano);
    let sleep = one(&spans, "sleep");
    // It ends at the wake-up time the SDK recorded (20 ms after the SDK asked; not measured
    // here, as the machine's load moves the span's start).
    let wake_up_ms: u64 = attr(sleep, "perdure.sleep.wake_up_time_ms").expect("the wake-up time").parse().unwrap();
    assert_eq!(
        sleep.end_time_unix_nano,
        (wake_up_ms * 1_000_000).max(sleep.start_time_unix_nano),
        "the sleep span ends at its wake-up time"
    );
    let call = one(&spans, "call Greeter/greet");
    assert_eq!(call.kind, SpanKind::Client as i32);
    assert!(children(&spans, last).iter().any(|s| s.name == "send Greeter/greet"));

    // The called and the sent invocation are children of the steps that made them.
    let callees = named(&spans, "invocation Greeter/greet");
    assert_eq!(callees.len(), 2, "{callees:?}");
    let send = one(&spans, "send Greeter/greet");
    let called =
        callees.iter().find(|c| c.parent_span_id == call.span_id).expect("the called invocation under the call");
    let sent_one =
        callees.iter().find(|c| c.parent_span_id == send.span_id).expect("the sent invocation under the send");
    for callee in [called, sent_one] {
        let attempt = children(&spans, callee).into_iter().find(|s| s.name == "attempt Greeter/greet");
        assert!(attempt.is_some(), "the callee's attempt under it");
    }

    // SQL shows the trace id.
    let rows = query_rows(&perdure, &format!("SELECT trace_id FROM sys_invocation WHERE id = '{id}'"));
    assert_eq!(rows[0]["trace_id"], TRACE, "{rows:?}");
    let metrics = get(&format!("{}/metrics", perdure.node)).body;
    assert!(metrics.contains("perdure_trace_spans_exported_total"), "{metrics}");
}

/// A request without `traceparent` starts a trace; the standard OTEL_EXPORTER_OTLP_ENDPOINT
/// configures the exporter; the trace survives `kill -9` in the middle of a sleep: the
/// attempt after the restart is a child of the same invocation span, under the same ingress.
#[test]
fn a_trace_starts_at_the_ingress_and_carries_on_after_a_crash() {
    let collector = Collector::start();
    let (mut perdure, _svc) = Perdure::start_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.as_str()),
        ("PERDURE_TRACING__EXPORT_INTERVAL", "50ms"),
    ])
    .serving(TsServices::start("h2", "v1"), json!({}));

    let r = post_json(&format!("{}/Greeter/sleepy/send", perdure.ingress), "3000");
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["invocationId"].as_str().unwrap().to_owned();
    let ingress = collector.wait_for("the send's ingress span", |spans| {
        spans.iter().find(|s| s.name == "ingress Greeter/sleepy").cloned()
    });
    assert!(ingress.parent_span_id.is_empty(), "no traceparent: a new trace starts at the ingress");
    assert_eq!(attr(&ingress, "perdure.ingress.kind").as_deref(), Some("send"));
    let trace = hex(&ingress.trace_id);
    let rows = query_rows(&perdure, &format!("SELECT trace_id FROM sys_invocation WHERE id = '{id}'"));
    assert_eq!(rows[0]["trace_id"], trace.as_str());
    // Sleeping: the step was seen (its span ends at its wake-up time).
    collector.wait_for("the sleep step", |spans| spans.iter().any(|s| s.name == "sleep").then_some(()));

    perdure.crash_and_restart();
    let done = get(&format!("{}/restate/invocation/{id}/attach", perdure.ingress));
    assert_eq!(done.status, 200, "{}", done.body);
    let spans = collector.wait_for("the invocation span after the restart", |spans| {
        spans.iter().any(|s| s.name == "invocation Greeter/sleepy").then(|| spans.to_vec())
    });
    let invocation = one(&spans, "invocation Greeter/sleepy");
    assert_eq!(hex(&invocation.trace_id), trace);
    assert_eq!(invocation.parent_span_id, ingress.span_id, "the stored context: same trace, same parent");
    let after = named(&spans, "attempt Greeter/sleepy");
    assert!(!after.is_empty());
    assert!(after.iter().all(|a| a.parent_span_id == invocation.span_id && a.trace_id == invocation.trace_id));
    assert_eq!(attr(invocation, "restate.invocation.result").as_deref(), Some("success"));
}

/// `--log-format json` (here `PERDURE_LOG_FORMAT=json`) writes one JSON object a line, and
/// what happens during an attempt names its invocation.
#[test]
fn json_logs_name_the_invocation() {
    let (perdure, _svc) =
        Perdure::start_capturing(&[("PERDURE_LOG_FORMAT", "json")]).serving(TsServices::start("h2", "v1"), json!({}));
    // Fails twice (warnings), then succeeds.
    let r = post_json(&format!("{}/Greeter/flaky", perdure.ingress), "\"logs\"");
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.header("x-restate-id").unwrap().to_owned();
    let lines = eventually(Duration::from_secs(10), "two warnings of failed attempts", || {
        let log = perdure.log();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}")))
            .collect();
        let failed = lines.iter().filter(|l| l["fields"]["invocation"] == id.as_str()).count();
        (failed >= 2).then_some(lines)
    });
    let failed: Vec<_> = lines.iter().filter(|l| l["fields"]["invocation"] == id.as_str()).collect();
    for line in &failed {
        assert_eq!(line["level"], "WARN", "{line}");
        assert!(line["fields"]["message"].as_str().unwrap().contains("attempt failed"), "{line}");
        // The attempt's span names the invocation too.
        assert_eq!(line["span"]["invocation"], id.as_str(), "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
}

/// OTLP over HTTP (`protocol = "http/protobuf"`): a bare endpoint gets `/v1/traces`, and the
/// body is an `ExportTraceServiceRequest` in protobuf.
#[test]
fn traces_go_over_otlp_http_too() {
    use prost::Message as _;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: http::HeaderMap, body: bytes::Bytes| {
            let sink = sink.clone();
            async move {
                let content_type =
                    headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let request = ExportTraceServiceRequest::decode(body).expect("an ExportTraceServiceRequest");
                let mut spans = sink.lock().unwrap();
                for rs in request.resource_spans {
                    for ss in rs.scope_spans {
                        spans.extend(ss.spans.into_iter().map(|s| (content_type.clone(), s)));
                    }
                }
                http::StatusCode::OK
            }
        }),
    );
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (perdure, _svc) = Perdure::start_with(&[
        ("PERDURE_TRACING__ENDPOINT", url.as_str()),
        ("PERDURE_TRACING__PROTOCOL", "http/protobuf"),
        ("PERDURE_TRACING__EXPORT_INTERVAL", "50ms"),
    ])
    .serving(TsServices::start("h2", "v1"), json!({}));
    let r = post_json(&format!("{}/Greeter/greet", perdure.ingress), "\"http\"");
    assert_eq!(r.status, 200, "{}", r.body);
    let spans = eventually(Duration::from_secs(30), "ingress, invocation and attempt spans over HTTP", || {
        let spans = received.lock().unwrap().clone();
        let has = |name: &str| spans.iter().any(|(_, s)| s.name == name);
        (has("ingress Greeter/greet") && has("invocation Greeter/greet") && has("attempt Greeter/greet"))
            .then_some(spans)
    });
    assert!(spans.iter().all(|(ct, _)| ct == "application/x-protobuf"), "protobuf bodies");
    let (_, invocation) = spans.iter().find(|(_, s)| s.name == "invocation Greeter/greet").unwrap();
    let (_, ingress) = spans.iter().find(|(_, s)| s.name == "ingress Greeter/greet").unwrap();
    assert_eq!(invocation.parent_span_id, ingress.span_id);
    drop(runtime);
}
