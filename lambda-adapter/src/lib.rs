//! Runs a service-protocol HTTP endpoint (any Restate SDK's HTTP server) as an AWS Lambda
//! function.
//!
//! The adapter is the function's `bootstrap`. At start it runs the endpoint's command with `PORT`
//! set, waits until the endpoint accepts connections, then serves Lambda events: each request
//! event from perdure (or Restate) becomes one HTTP request to the local endpoint, and the
//! endpoint's whole answer becomes the response event. Discovery answers are rewritten from
//! `BIDI_STREAM` to `REQUEST_RESPONSE`, because a Lambda invocation carries one request body and
//! one response body; the SDKs then suspend instead of waiting for more input.
//!
//! Environment:
//! - `PERDURE_ADAPTER_COMMAND`: the endpoint's command line, run with `sh -c` (optional: without
//!   it the adapter expects an endpoint started some other way, e.g. by a wrapper script).
//! - `PERDURE_ADAPTER_PORT`: the port the endpoint listens on (default 9080), exported as `PORT`.
//! - `PERDURE_ADAPTER_HOST`: the host it listens on (default `127.0.0.1`).
//! - `PERDURE_ADAPTER_HTTP`: `h2` (HTTP/2 cleartext, what the SDKs' `listen` serves; default)
//!   or `h1` (HTTP/1.1, e.g. Node's `http.createServer(endpoint.http1Handler())`).
//! - `PERDURE_ADAPTER_READY_TIMEOUT`: how long to wait for the endpoint at start (default `10s`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

/// Which HTTP the local endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    H1,
    H2,
}

/// The adapter's settings, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub command: Option<String>,
    pub host: String,
    pub port: u16,
    pub http: Http,
    pub ready_timeout: Duration,
}

/// A setting that cannot be used, named.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("PERDURE_ADAPTER_PORT must be a port number from 1 to 65535, got '{0}'")]
    Port(String),
    #[error("PERDURE_ADAPTER_HTTP must be 'h2' or 'h1', got '{0}'")]
    Http(String),
    #[error("PERDURE_ADAPTER_READY_TIMEOUT must be a duration such as '10s' or '500ms', got '{0}'")]
    ReadyTimeout(String),
    #[error("PERDURE_ADAPTER_HOST must not be empty")]
    Host,
}

impl Config {
    pub fn from_env_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let port = match get("PERDURE_ADAPTER_PORT") {
            None => 9080,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| ConfigError::Port(p.to_owned()))?,
        };
        let http = match get("PERDURE_ADAPTER_HTTP") {
            None | Some("h2") => Http::H2,
            Some("h1") => Http::H1,
            Some(other) => return Err(ConfigError::Http(other.to_owned())),
        };
        let ready_timeout = match get("PERDURE_ADAPTER_READY_TIMEOUT") {
            None => Duration::from_secs(10),
            Some(t) => humantime::parse_duration(t).map_err(|_| ConfigError::ReadyTimeout(t.to_owned()))?,
        };
        let host = match env.get("PERDURE_ADAPTER_HOST") {
            None => "127.0.0.1".to_owned(),
            Some(h) if h.trim().is_empty() => return Err(ConfigError::Host),
            Some(h) => h.trim().to_owned(),
        };
        Ok(Self { command: get("PERDURE_ADAPTER_COMMAND").map(str::to_owned), host, port, http, ready_timeout })
    }
}

/// The request event perdure and Restate send to a Lambda deployment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestEvent {
    pub path: String,
    #[serde(default = "post")]
    pub http_method: String,
    #[serde(default)]
    pub headers: HashMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: bool,
}

fn post() -> String {
    "POST".into()
}

/// The response event the function answers with.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResponseEvent {
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub is_base64_encoded: bool,
    pub body: String,
}

/// Why an event could not be answered (reported as a function error, so it is retried).
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("the event is not a service-protocol request: {0}")]
    Event(String),
    #[error("the endpoint at {addr} did not answer: {why}")]
    Endpoint { addr: String, why: String },
    #[error("the endpoint command exited ({0}) before it listened on {1}")]
    Exited(String, String),
    #[error("the endpoint did not listen on {0} within {1:?}")]
    NotReady(String, Duration),
    #[error("starting the endpoint command: {0}")]
    Spawn(String),
}

impl From<AdapterError> for lambda_runtime::Diagnostic {
    fn from(e: AdapterError) -> Self {
        let error_type = match e {
            AdapterError::Event(_) => "Adapter.BadEvent",
            AdapterError::Endpoint { .. } => "Adapter.EndpointUnreachable",
            AdapterError::Exited(..) | AdapterError::NotReady(..) | AdapterError::Spawn(_) => {
                "Adapter.EndpointNotStarted"
            }
        };
        lambda_runtime::Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// The running adapter: the endpoint's process (if it started one) and a client to it.
#[derive(Clone)]
pub struct Adapter {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    client: Client<HttpConnector, Full<Bytes>>,
    child: Option<tokio::sync::Mutex<tokio::process::Child>>,
}

impl Adapter {
    /// Starts the endpoint's command (if any) and waits until it accepts connections.
    pub async fn start(config: Config) -> Result<Self, AdapterError> {
        let mut child = match &config.command {
            None => None,
            Some(command) => Some(
                tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .env("PORT", config.port.to_string())
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| AdapterError::Spawn(e.to_string()))?,
            ),
        };
        let addr = format!("{}:{}", config.host, config.port);
        let deadline = Instant::now() + config.ready_timeout;
        loop {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                break;
            }
            if let Some(c) = child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(AdapterError::Exited(status.to_string(), addr));
            }
            if Instant::now() >= deadline {
                return Err(AdapterError::NotReady(addr, config.ready_timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(Duration::from_secs(60));
        if config.http == Http::H2 {
            builder.http2_only(true);
        }
        let client = builder.build_http();
        Ok(Self { inner: Arc::new(Inner { config, client, child: child.map(tokio::sync::Mutex::new) }) })
    }

    /// Answers one Lambda event.
    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, AdapterError> {
        let request: RequestEvent =
            serde_json::from_value(event.payload).map_err(|e| AdapterError::Event(e.to_string()))?;
        let response = self.forward(request).await?;
        serde_json::to_value(response).map_err(|e| AdapterError::Event(e.to_string()))
    }

    /// Sends one request event to the endpoint and turns its answer into a response event.
    pub async fn forward(&self, event: RequestEvent) -> Result<ResponseEvent, AdapterError> {
        let config = &self.inner.config;
        let addr = format!("{}:{}", config.host, config.port);
        let body = decode_body(&event)?;
        let path = if event.path.starts_with('/') { event.path.clone() } else { format!("/{}", event.path) };
        let uri: http::Uri = format!("http://{addr}{path}")
            .parse()
            .map_err(|e| AdapterError::Event(format!("path '{}': {e}", event.path)))?;
        let method = http::Method::from_bytes(event.http_method.as_bytes())
            .map_err(|_| AdapterError::Event(format!("method '{}'", event.http_method)))?;
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in &event.headers {
            // Hop-by-hop and framing headers belong to this connection, not to the event.
            if is_connection_header(name) {
                continue;
            }
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request.body(Full::new(body)).map_err(|e| AdapterError::Event(e.to_string()))?;
        let response = match self.inner.client.request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.exit_if_endpoint_died().await;
                return Err(AdapterError::Endpoint { addr, why: e.to_string() });
            }
        };
        let (parts, body) = response.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return Err(AdapterError::Endpoint { addr, why: format!("reading the answer: {e}") }),
        };
        let mut headers = BTreeMap::new();
        for (name, value) in &parts.headers {
            if is_connection_header(name.as_str()) {
                continue;
            }
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v: &mut String| {
                    v.push_str(", ");
                    v.push_str(&value)
                })
                .or_insert(value);
        }
        let body = if path.starts_with("/discover") && parts.status.is_success() {
            request_response_manifest(body)
        } else {
            body
        };
        Ok(ResponseEvent {
            status_code: parts.status.as_u16(),
            headers,
            is_base64_encoded: true,
            body: BASE64.encode(&body),
        })
    }

    /// A dead endpoint cannot come back inside this environment: exit, so Lambda starts a new one.
    async fn exit_if_endpoint_died(&self) {
        if let Some(child) = &self.inner.child
            && let Ok(Some(status)) = child.lock().await.try_wait()
        {
            eprintln!(
                "perdure-lambda-adapter: the endpoint command exited ({status}); exiting so the environment restarts"
            );
            std::process::exit(1);
        }
    }
}

fn decode_body(event: &RequestEvent) -> Result<Bytes, AdapterError> {
    let raw = event.body.as_deref().unwrap_or("");
    if event.is_base64_encoded {
        BASE64
            .decode(raw.as_bytes())
            .map(Bytes::from)
            .map_err(|e| AdapterError::Event(format!("body is not base64: {e}")))
    } else {
        Ok(Bytes::copy_from_slice(raw.as_bytes()))
    }
}

fn is_connection_header(name: &str) -> bool {
    ["connection", "content-length", "host", "keep-alive", "transfer-encoding", "upgrade", "te", "proxy-connection"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

/// The manifest with `protocolMode` `REQUEST_RESPONSE` (other answers pass unchanged).
fn request_response_manifest(body: Bytes) -> Bytes {
    let Ok(mut manifest) = serde_json::from_slice::<serde_json::Value>(&body) else { return body };
    let Some(object) = manifest.as_object_mut() else { return body };
    object.insert("protocolMode".into(), "REQUEST_RESPONSE".into());
    serde_json::to_vec(&manifest).map(Bytes::from).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_and_bad_settings_are_named() {
        let c = Config::from_env_map(&env(&[])).unwrap();
        assert_eq!(
            (c.port, c.http, c.host.as_str(), c.ready_timeout, c.command),
            (9080, Http::H2, "127.0.0.1", Duration::from_secs(10), None)
        );
        let c = Config::from_env_map(&env(&[
            ("PERDURE_ADAPTER_PORT", "9999"),
            ("PERDURE_ADAPTER_HTTP", "h1"),
            ("PERDURE_ADAPTER_COMMAND", "node app.mjs"),
            ("PERDURE_ADAPTER_READY_TIMEOUT", "500ms"),
        ]))
        .unwrap();
        assert_eq!(
            (c.port, c.http, c.ready_timeout, c.command.as_deref()),
            (9999, Http::H1, Duration::from_millis(500), Some("node app.mjs"))
        );
        assert_eq!(Config::from_env_map(&env(&[("PERDURE_ADAPTER_PORT", "0")])), Err(ConfigError::Port("0".into())));
        assert_eq!(
            Config::from_env_map(&env(&[("PERDURE_ADAPTER_PORT", "70000")])),
            Err(ConfigError::Port("70000".into()))
        );
        assert_eq!(Config::from_env_map(&env(&[("PERDURE_ADAPTER_HTTP", "h3")])), Err(ConfigError::Http("h3".into())));
        assert_eq!(
            Config::from_env_map(&env(&[("PERDURE_ADAPTER_READY_TIMEOUT", "soon")])),
            Err(ConfigError::ReadyTimeout("soon".into()))
        );
        assert_eq!(Config::from_env_map(&env(&[("PERDURE_ADAPTER_HOST", " ")])), Err(ConfigError::Host));
    }

    #[test]
    fn the_manifest_becomes_request_response() {
        let body = Bytes::from_static(br#"{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"services":[]}"#);
        let out: serde_json::Value = serde_json::from_slice(&request_response_manifest(body)).unwrap();
        assert_eq!(out["protocolMode"], "REQUEST_RESPONSE");
        assert_eq!(out["minProtocolVersion"], 5);
        let not_json = Bytes::from_static(b"nope");
        assert_eq!(request_response_manifest(not_json.clone()), not_json);
    }

    #[test]
    fn event_bodies_decode_plain_or_base64() {
        let ev = |body: &str, b64: bool| RequestEvent {
            path: "/x".into(),
            http_method: "POST".into(),
            headers: HashMap::new(),
            body: Some(body.into()),
            is_base64_encoded: b64,
        };
        assert_eq!(decode_body(&ev("aGk=", true)).unwrap(), Bytes::from_static(b"hi"));
        assert_eq!(decode_body(&ev("hi", false)).unwrap(), Bytes::from_static(b"hi"));
        assert!(matches!(decode_body(&ev("!!", true)), Err(AdapterError::Event(_))));
    }

    /// A real HTTP/1.1 server on loopback answers through the adapter.
    #[tokio::test]
    async fn forwards_a_request_and_returns_the_whole_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                        let path = req.uri().path().to_owned();
                        let ct = req.headers().get("content-type").cloned();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let answer = if path == "/discover" {
                            Bytes::from_static(br#"{"protocolMode":"BIDI_STREAM","services":[]}"#)
                        } else {
                            Bytes::from([&b"echo:"[..], &body[..]].concat())
                        };
                        let mut r = http::Response::builder().status(200).header("x-path", path);
                        if let Some(ct) = ct {
                            r = r.header("content-type", ct);
                        }
                        Ok::<_, std::convert::Infallible>(r.body(Full::new(answer)).unwrap())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let config = Config {
            command: None,
            host: "127.0.0.1".into(),
            port,
            http: Http::H1,
            ready_timeout: Duration::from_secs(5),
        };
        let adapter = Adapter::start(config).await.unwrap();
        let mut headers = HashMap::new();
        headers.insert("content-type".to_owned(), "application/vnd.restate.invocation.v5".to_owned());
        let out = adapter
            .forward(RequestEvent {
                path: "/invoke/Greeter/greet".into(),
                http_method: "POST".into(),
                headers,
                body: Some(BASE64.encode(b"\x00\x01")),
                is_base64_encoded: true,
            })
            .await
            .unwrap();
        assert_eq!(out.status_code, 200);
        assert_eq!(out.headers["x-path"], "/invoke/Greeter/greet");
        assert_eq!(out.headers["content-type"], "application/vnd.restate.invocation.v5");
        assert_eq!(BASE64.decode(out.body).unwrap(), b"echo:\x00\x01");
        let out = adapter
            .forward(RequestEvent {
                path: "/discover".into(),
                http_method: "GET".into(),
                headers: HashMap::new(),
                body: None,
                is_base64_encoded: false,
            })
            .await
            .unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&BASE64.decode(out.body).unwrap()).unwrap();
        assert_eq!(manifest["protocolMode"], "REQUEST_RESPONSE");
    }

    #[tokio::test]
    async fn an_endpoint_that_never_listens_is_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = Config {
            command: Some("exit 3".into()),
            host: "127.0.0.1".into(),
            port,
            http: Http::H2,
            ready_timeout: Duration::from_secs(30),
        };
        let err = Adapter::start(config).await.err().expect("fails");
        assert!(matches!(err, AdapterError::Exited(..)), "{err}");
        let config = Config {
            command: None,
            host: "127.0.0.1".into(),
            port,
            http: Http::H2,
            ready_timeout: Duration::from_millis(100),
        };
        assert!(matches!(Adapter::start(config).await.err(), Some(AdapterError::NotReady(..))));
    }
}
