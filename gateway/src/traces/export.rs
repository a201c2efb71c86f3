//! The OTLP exporter: spans queue in a bounded lock-free queue (a full queue drops and counts them,
//! never blocks a request), one task batches them and sends `ExportTraceServiceRequest`s to
//! the collector over gRPC (`TraceService/Export`, port 4317) or HTTP (`POST /v1/traces`,
//! protobuf, port 4318).

use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status, span, status};
use prost::Message as _;
use tokio::sync::{Notify, mpsc, oneshot};

use super::{EXPORTER, Span, SpanKind, Value};
use crate::config::{TracingConfig, TracingProtocol};
use crate::metrics;

/// Spans a batch holds at most.
const BATCH: usize = 512;
/// Spans waiting for the exporter at most; past it new ones are dropped.
const QUEUE: usize = 8192;
/// One export may take this long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Exporter {
    queue: Arc<Queue>,
    /// Flush requests (shutdown).
    flush: mpsc::UnboundedSender<oneshot::Sender<()>>,
    sample_ratio: f64,
}

/// Spans waiting for the exporter task. Recording a span is a lock-free push; the task is
/// woken only when a batch is full (else it takes what is there every `export-interval`), so
/// a traced request never pays for a task wake-up.
struct Queue {
    spans: ArrayQueue<Span>,
    /// A full batch is waiting.
    ready: Notify,
}

impl Exporter {
    pub(super) fn offer(&self, span: Span) {
        if self.queue.spans.push(span).is_err() {
            metrics::trace_spans_dropped(1);
        } else if self.queue.spans.len() == BATCH {
            self.queue.ready.notify_one();
        }
    }

    /// Whether a new trace (one without a sampled caller) is recorded.
    pub(super) fn sample(&self) -> bool {
        self.sample_ratio >= 1.0 || rand::random::<f64>() < self.sample_ratio
    }
}

/// Starts exporting to `config.endpoint` (on the current runtime). Once per process: a second
/// call (a second server in one process, as in tests) keeps the first exporter.
pub fn install(config: &TracingConfig) {
    let Some(endpoint) = config.export_url() else { return };
    EXPORTER.get_or_init(|| {
        let (flush, flushes) = mpsc::unbounded_channel();
        let queue = Arc::new(Queue { spans: ArrayQueue::new(QUEUE), ready: Notify::new() });
        let sink = match config.protocol {
            TracingProtocol::Grpc => match tonic::transport::Endpoint::from_shared(endpoint.clone()) {
                Ok(e) => Sink::Grpc(TraceServiceClient::new(e.timeout(EXPORT_TIMEOUT).connect_lazy())),
                Err(e) => {
                    // Validated with the config; kept from panicking all the same.
                    tracing::warn!("tracing.endpoint {endpoint}: {e}; traces are not exported");
                    Sink::None
                }
            },
            TracingProtocol::HttpProtobuf => Sink::Http {
                client: reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build().unwrap_or_default(),
                url: endpoint.clone(),
            },
        };
        let resource = resource(&config.service_name);
        tokio::spawn(run(Arc::clone(&queue), flushes, sink, resource, config.export_interval));
        tracing::info!("exporting traces over OTLP ({}) to {endpoint}", config.protocol.name());
        Exporter { queue, flush, sample_ratio: config.sample_ratio }
    });
}

/// Sends what is queued now (at shutdown); waits at most `timeout`.
pub async fn flush(timeout: Duration) {
    let Some(exporter) = EXPORTER.get() else { return };
    let (tx, rx) = oneshot::channel();
    if exporter.flush.send(tx).is_ok() {
        let _ = tokio::time::timeout(timeout, rx).await;
    }
}

enum Sink {
    Grpc(TraceServiceClient<tonic::transport::Channel>),
    Http { client: reqwest::Client, url: String },
    None,
}

async fn run(
    queue: Arc<Queue>,
    mut flushes: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    mut sink: Sink,
    resource: Resource,
    interval: Duration,
) {
    let mut last_warning: Option<std::time::Instant> = None;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let flushed = tokio::select! {
            done = flushes.recv() => match done {
                None => break,
                done => done,
            },
            () = queue.ready.notified() => None,
            _ = tick.tick() => None,
        };
        // Everything queued now, a batch at a time.
        loop {
            let spans: Vec<Span> = std::iter::from_fn(|| queue.spans.pop()).take(BATCH).collect();
            if spans.is_empty() {
                break;
            }
            let (count, full) = (spans.len() as u64, spans.len() == BATCH);
            match send(&mut sink, request(&resource, spans)).await {
                Ok(()) => metrics::trace_spans_exported(count),
                Err(e) => {
                    metrics::trace_spans_dropped(count);
                    // A collector that is down is worth one line a minute, not one per batch.
                    if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                        tracing::warn!("exporting {count} spans failed (dropped): {e}");
                        last_warning = Some(std::time::Instant::now());
                    }
                }
            }
            if !full {
                break;
            }
        }
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

async fn send(sink: &mut Sink, request: ExportTraceServiceRequest) -> Result<(), String> {
    match sink {
        Sink::Grpc(client) => {
            client.export(request).await.map(|_| ()).map_err(|s| format!("{}: {}", s.code(), s.message()))
        }
        Sink::Http { client, url } => {
            let response = client
                .post(url.as_str())
                .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                .body(request.encode_to_vec())
                .send()
                .await
                .map_err(|e| crate::error_chain(&e))?;
            if response.status().is_success() { Ok(()) } else { Err(format!("HTTP {}", response.status())) }
        }
        Sink::None => Ok(()),
    }
}

fn resource(service_name: &str) -> Resource {
    Resource {
        attributes: vec![
            kv("service.name", Value::from(service_name.to_owned())),
            kv("service.version", Value::from(env!("CARGO_PKG_VERSION"))),
            kv("telemetry.sdk.name", Value::from("perdure")),
        ],
        ..Default::default()
    }
}

fn request(resource: &Resource, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "perdure".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans: spans.into_iter().map(otlp_span).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn otlp_span(s: Span) -> opentelemetry_proto::tonic::trace::v1::Span {
    let kind = match s.kind {
        SpanKind::Internal => span::SpanKind::Internal,
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
        SpanKind::Producer => span::SpanKind::Producer,
    };
    let status = match s.error {
        Some(message) => Status { message, code: status::StatusCode::Error as i32 },
        None => Status { message: String::new(), code: status::StatusCode::Unset as i32 },
    };
    opentelemetry_proto::tonic::trace::v1::Span {
        trace_id: s.trace_id.to_be_bytes().to_vec(),
        span_id: s.span_id.to_be_bytes().to_vec(),
        parent_span_id: if s.parent_span_id == 0 { Vec::new() } else { s.parent_span_id.to_be_bytes().to_vec() },
        // W3C trace flags: sampled (only sampled spans are recorded).
        flags: 1,
        name: s.name,
        kind: kind as i32,
        start_time_unix_nano: s.start_ns,
        end_time_unix_nano: s.end_ns,
        attributes: s.attributes.into_iter().map(|(k, v)| kv(k, v)).collect(),
        status: Some(status),
        ..Default::default()
    }
}

fn kv(key: &'static str, value: Value) -> KeyValue {
    let value = match value {
        Value::Str(s) => any_value::Value::StringValue(s.into_owned()),
        Value::Int(i) => any_value::Value::IntValue(i),
    };
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_become_otlp_with_big_endian_ids_and_an_error_status() {
        let mut span =
            Span::new(0x0102, 0x0304, 0, "attempt Greeter/greet".into(), SpanKind::Client, 5).attr("n", 3u32);
        span.error = Some("boom".into());
        let request = request(&resource("perdure"), vec![span]);
        let otlp = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(otlp.trace_id, 0x0102u128.to_be_bytes());
        assert_eq!(otlp.span_id, 0x0304u64.to_be_bytes());
        assert!(otlp.parent_span_id.is_empty(), "a root span has no parent");
        assert_eq!(otlp.kind, span::SpanKind::Client as i32);
        assert_eq!(otlp.status.as_ref().unwrap().code, status::StatusCode::Error as i32);
        assert_eq!(otlp.attributes[0].key, "n");
        let service = &request.resource_spans[0].resource.as_ref().unwrap().attributes[0];
        assert_eq!(service.key, "service.name");
    }
}
