//! The HTTP ingress (Restate-compatible, port 8080): calls and sends to handlers, attach and
//! output, awakeables, health. HTTP/1.1 and HTTP/2 (h2c) on one listener, served with
//! hyper directly: this is the hot path.
//!
//! Owns: parsing and validating requests, minting invocation ids, shaping responses. Does
//! not own: invocation state (it asks the owning partition through its [`Handle`]).

mod call;
pub mod error;
pub mod path;
#[cfg(test)]
pub(crate) mod tests;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::ids::InvocationId;
use crate::metrics;
use crate::partition::{Handle, Reply};
use crate::schema::SchemaRegistry;
use error::Error;
use path::{BodyAction, Op, Route};

pub type Response = http::Response<Full<Bytes>>;

/// A request body the ingress reads: hyper's `Incoming` when it serves, any body of `Bytes`
/// in tests. [`Ingress::handle`] is generic over it and compiled for `Incoming` alone in the
/// server, so the seam costs the hot path nothing.
pub trait RequestBody: http_body::Body<Data = Bytes, Error: Into<BoxError>> {}

impl<B: http_body::Body<Data = Bytes, Error: Into<BoxError>>> RequestBody for B {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the ingress needs; shared by every connection.
pub struct Ingress {
    pub schema: SchemaRegistry,
    pub partitions: Handle,
    pub request_size_limit: u64,
    /// `ingress.path-prefix`, normalised to `/p` (no trailing `/`).
    pub path_prefix: Option<String>,
    /// One permit per request served at once (`ingress.concurrency-limit`).
    pub permits: tokio::sync::Semaphore,
    pub concurrency_limit: usize,
}

/// Accepts connections until `shutdown` flips.
pub async fn serve(listener: TcpListener, ingress: Arc<Ingress>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("ingress accept failed: {e}");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let ingress = ingress.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let ingress = ingress.clone();
                async move { Ok::<_, Infallible>(ingress.handle(req).await) }
            });
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!("ingress connection ended: {e}");
            }
        });
    }
}

impl Ingress {
    pub async fn handle(&self, req: http::Request<impl RequestBody>) -> Response {
        let origin = req.headers().get(http::header::ORIGIN).cloned();
        let mut response = if req.method() == Method::OPTIONS {
            preflight(&req)
        } else {
            match self.permits.try_acquire() {
                Ok(_permit) => self.route(req).await.unwrap_or_else(Error::into_response),
                Err(_) => Error::TooManyRequests(self.concurrency_limit).into_response(),
            }
        };
        let headers = response.headers_mut();
        headers.insert(
            http::header::VARY,
            HeaderValue::from_static("origin, access-control-request-method, access-control-request-headers"),
        );
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        if let Some(origin) = origin {
            headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        response
    }

    async fn route(&self, req: http::Request<impl RequestBody>) -> Result<Response, Error> {
        let full = req.uri().path();
        let route = match &self.path_prefix {
            None => path::parse(full)?,
            Some(prefix) => match full.strip_prefix(prefix.as_str()) {
                Some(rest) if rest.starts_with('/') => path::parse(rest)?,
                _ => return Err(Error::OutsidePrefix { path: full.to_owned(), prefix: prefix.clone() }),
            },
        };
        match route {
            Route::Health => {
                only(&req, &[Method::GET])?;
                let schema = self.schema.snapshot();
                let services: Vec<&str> = schema.public_services().collect();
                Ok(json(StatusCode::OK, serde_json::json!({ "services": services }).to_string()))
            }
            Route::Call { service, parts, send } => {
                if send {
                    only(&req, &[Method::POST])?;
                } else {
                    only(&req, &[Method::GET, Method::POST])?;
                }
                let started = std::time::Instant::now();
                let mut routed = call::Routed::default();
                let result = call::call(self, req, service, parts, send, &mut routed).await;
                let status = match &result {
                    Ok(response) => response.status(),
                    Err(e) => e.status(),
                };
                match &routed.target {
                    Some((service, handler)) => {
                        metrics::ingress_request(service, handler, send, status.as_u16(), started.elapsed())
                    }
                    None => metrics::ingress_unrouted(send, status.as_u16()),
                }
                if let (Some(trace), Some((service, handler))) = (routed.trace, routed.target)
                    && trace.context.sampled
                {
                    ingress_span(trace, &service, &handler, send, status, started);
                }
                result
            }
            Route::ById { id, op } => {
                only(&req, &[Method::GET])?;
                let id: InvocationId =
                    id.parse().map_err(|reason| Error::BadInvocationId { id: id.clone(), reason })?;
                self.result(id, op).await
            }
            Route::ByIdempotencyKey { service, parts, idempotency_key, op } => {
                only(&req, &[Method::GET])?;
                let (key, handler) = match parts.as_slice() {
                    [handler] => (None, handler.as_str()),
                    [key, handler] => (Some(key.as_str()), handler.as_str()),
                    _ => return Err(Error::BadCallPath),
                };
                self.result(InvocationId::idempotent(&service, key, handler, &idempotency_key), op).await
            }
            Route::Workflow { service, key, op } => {
                only(&req, &[Method::GET])?;
                self.result(InvocationId::workflow_run(&service, &key), op).await
            }
            Route::ByBody { action } => {
                only(&req, &[Method::POST])?;
                let body = read_body(req.into_body(), self.request_size_limit).await?;
                let target: call::BodyTarget =
                    serde_json::from_slice(&body).map_err(|e| Error::BadTarget(e.to_string()))?;
                let id = target.invocation_id()?;
                match action {
                    BodyAction::Result(op) => self.result(id, op).await,
                    BodyAction::Lookup => {
                        // Known (running or retained) invocations only.
                        match self.partitions.output(id).await? {
                            Reply::NotFound => Err(Error::InvocationNotFound),
                            _ => Ok(json(
                                StatusCode::OK,
                                serde_json::json!({ "invocationId": id.to_string() }).to_string(),
                            )),
                        }
                    }
                }
            }
            Route::Awakeable { id, resolve } => {
                only(&req, &[Method::POST])?;
                call::awakeable(self, req, id, resolve).await
            }
        }
    }

    /// Attach (wait) or output (peek) of an invocation.
    async fn result(&self, id: InvocationId, op: Op) -> Result<Response, Error> {
        let reply = match op {
            Op::Attach => self.partitions.attach(id).await?,
            Op::Output => self.partitions.output(id).await?,
        };
        match reply {
            Reply::Completed { result, expires_at } => Ok(call::result_response(&id, result, expires_at, None)),
            Reply::NotReady => Err(Error::NotReady),
            Reply::NotFound | Reply::Applied(_) => Err(Error::InvocationNotFound),
        }
    }
}

/// Records the span of an ingress request that created (or found) an invocation.
fn ingress_span(
    trace: call::IngressTrace,
    service: &str,
    handler: &str,
    send: bool,
    status: StatusCode,
    started: std::time::Instant,
) {
    use crate::traces::{Span, SpanKind, now_ns};
    let start_ns = now_ns().saturating_sub(started.elapsed().as_nanos() as u64);
    let kind = if send { "send" } else { "call" };
    let mut span = Span::new(
        trace.context.trace_id,
        trace.span_id,
        trace.remote_parent,
        format!("ingress {service}/{handler}"),
        SpanKind::Server,
        start_ns,
    )
    .attr("rpc.system", "restate")
    .attr("rpc.service", service.to_owned())
    .attr("rpc.method", handler.to_owned())
    .attr("perdure.ingress.kind", kind)
    .attr("restate.invocation.id", trace.invocation.to_string())
    .attr("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.error = Some(format!("HTTP {status}"));
    }
    crate::traces::record(span);
}

fn only<B>(req: &http::Request<B>, methods: &[Method]) -> Result<(), Error> {
    if methods.contains(req.method()) { Ok(()) } else { Err(Error::MethodNotAllowed) }
}

fn preflight<B>(req: &http::Request<B>) -> Response {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    let headers = response.headers_mut();
    if let Some(m) = req.headers().get(http::header::ACCESS_CONTROL_REQUEST_METHOD) {
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_METHODS, m.clone());
    }
    if let Some(h) = req.headers().get(http::header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
    }
    response
}

pub fn json(status: StatusCode, body: String) -> Response {
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Reads a request body up to `limit` bytes.
pub async fn read_body(body: impl RequestBody, limit: u64) -> Result<Bytes, Error> {
    match http_body_util::Limited::new(body, limit as usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(Error::BodyTooLarge(limit)),
        Err(e) => Err(Error::BodyRead(e.to_string())),
    }
}
