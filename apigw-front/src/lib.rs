//! An AWS Lambda front for Amazon API Gateway that forwards every request to perdure's HTTP
//! ingress and answers with exactly what the ingress answered.
//!
//! API Gateway (REST API payload v1 or HTTP API payload v2) invokes the function with a proxy
//! event; [`lambda_http`] turns it into an [`http::Request`] (decoding base64 bodies). This crate
//! then rebuilds the path the client actually asked for (dropping the API Gateway stage and an
//! optional configured prefix), forwards method, path, query, end-to-end headers and body to the
//! ingress over HTTP/1.1, and maps the ingress answer back into a Lambda HTTP response.
//!
//! Failures to reach the ingress are never Lambda function errors: they become `502 Bad Gateway`
//! (connection/protocol failure) or `504 Gateway Timeout` (no answer in time) with the same JSON
//! error body shape the ingress itself uses, `{"message": "...", "restate_code": null}`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

/// Environment variable holding the ingress base URL (required).
pub const ENV_INGRESS_URL: &str = "PERDURE_INGRESS_URL";
/// Environment variable holding an optional path prefix to drop before forwarding.
pub const ENV_STRIP_PREFIX: &str = "PERDURE_FRONT_STRIP_PREFIX";
/// Environment variable holding the per-request timeout (e.g. `25s`, `500ms`).
pub const ENV_TIMEOUT: &str = "PERDURE_FRONT_TIMEOUT";
/// Timeout used when [`ENV_TIMEOUT`] is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(25);

/// Time kept in reserve before the Lambda deadline so the function can still answer 504 itself.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

/// The HTTP client used to talk to the ingress.
pub type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// Builds the HTTP/1.1 client used by [`forward`].
pub fn build_client() -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector)
}

/// Configuration errors, each naming the offending environment variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{ENV_INGRESS_URL} is not set; set it to perdure's HTTP ingress URL, e.g. http://10.0.0.5:8080")]
    MissingIngressUrl,
    #[error("{ENV_INGRESS_URL}={value:?} is not a valid URL: {reason}")]
    InvalidIngressUrl { value: String, reason: String },
    #[error(
        "{ENV_INGRESS_URL}={value:?} uses https, which is not supported yet; only http:// ingress URLs are supported for now"
    )]
    HttpsNotSupported { value: String },
    #[error("{ENV_STRIP_PREFIX}={value:?} is not a valid path prefix: {reason}")]
    InvalidStripPrefix { value: String, reason: String },
    #[error("{ENV_TIMEOUT}={value:?} is not a valid duration (expected e.g. \"25s\" or \"500ms\"): {reason}")]
    InvalidTimeout { value: String, reason: String },
}

/// Runtime configuration of the front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Ingress URL as configured, without a trailing slash (used in error messages).
    pub ingress_url: String,
    /// `host[:port]` of the ingress.
    pub ingress_authority: http::uri::Authority,
    /// Path the ingress is mounted under (`""` for the root), without a trailing slash.
    pub ingress_base_path: String,
    /// Normalised prefix to drop from incoming paths (leading `/`, no trailing `/`).
    pub strip_prefix: Option<String>,
    /// Upper bound for one forwarded request (connect + response + body).
    pub timeout: Duration,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_env_map(&vars)
    }

    /// Reads the configuration from a map of environment variables (testable form of
    /// [`Config::from_env`]). Empty values count as unset.
    pub fn from_env_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

        let raw_url = get(ENV_INGRESS_URL).ok_or(ConfigError::MissingIngressUrl)?;
        let (ingress_authority, ingress_base_path) = parse_ingress_url(raw_url)?;
        let ingress_url = raw_url.trim_end_matches('/').to_string();

        let strip_prefix = match get(ENV_STRIP_PREFIX) {
            None => None,
            Some(value) => normalize_prefix(value)
                .map_err(|reason| ConfigError::InvalidStripPrefix { value: value.to_string(), reason })?,
        };

        let timeout = match get(ENV_TIMEOUT) {
            None => DEFAULT_TIMEOUT,
            Some(value) => {
                let parsed = humantime::parse_duration(value)
                    .map_err(|e| ConfigError::InvalidTimeout { value: value.to_string(), reason: e.to_string() })?;
                if parsed.is_zero() {
                    return Err(ConfigError::InvalidTimeout {
                        value: value.to_string(),
                        reason: "must be greater than zero".to_string(),
                    });
                }
                parsed
            }
        };

        Ok(Config { ingress_url, ingress_authority, ingress_base_path, strip_prefix, timeout })
    }
}

fn parse_ingress_url(value: &str) -> Result<(http::uri::Authority, String), ConfigError> {
    let invalid =
        |reason: &str| ConfigError::InvalidIngressUrl { value: value.to_string(), reason: reason.to_string() };
    let uri: Uri = value.parse().map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(s) if s.eq_ignore_ascii_case("https") => {
            return Err(ConfigError::HttpsNotSupported { value: value.to_string() });
        }
        Some(s) if s.eq_ignore_ascii_case("http") => {}
        Some(_) => return Err(invalid("the scheme must be http://")),
        None => {
            return Err(invalid("expected an absolute URL such as http://10.0.0.5:8080"));
        }
    }
    let authority = uri.authority().cloned().ok_or_else(|| invalid("the URL has no host"))?;
    if authority.host().is_empty() {
        return Err(invalid("the URL has no host"));
    }
    if authority.as_str().contains('@') {
        return Err(invalid("user information in the URL is not supported"));
    }
    if uri.query().is_some() {
        return Err(invalid("the URL must not have a query string"));
    }
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok((authority, base_path))
}

fn normalize_prefix(value: &str) -> Result<Option<String>, String> {
    if value.contains('?') || value.contains('#') {
        return Err("must be a plain path such as /restate".to_string());
    }
    let trimmed = value.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!("/{trimmed}")))
}

// ---------------------------------------------------------------------------------------------
// Request translation
// ---------------------------------------------------------------------------------------------

/// The API Gateway stage of the request, if any (`None` outside API Gateway).
pub fn request_stage(request: &Request) -> Option<&str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.stage.as_deref(),
        RequestContext::ApiGatewayV2(ctx) => ctx.stage.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The client's source IP as reported by API Gateway in the request context.
pub fn source_ip(request: &Request) -> Option<&str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.identity.source_ip.as_deref(),
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
    .filter(|ip| !ip.is_empty())
}

/// Drops a leading `/{stage}` segment from `path` when the stage is set and is not `$default`.
/// Paths that do not carry the stage are returned unchanged.
pub fn strip_stage<'a>(path: &'a str, stage: Option<&str>) -> &'a str {
    match stage {
        None | Some("") | Some("$default") => path,
        Some(stage) => strip_segment_prefix(path, &format!("/{stage}")),
    }
}

/// Drops `prefix` (normalised, e.g. `/restate`) from `path` when the path is the prefix or
/// continues with `/` after it. The result always starts with `/`.
pub fn strip_prefix<'a>(path: &'a str, prefix: Option<&str>) -> &'a str {
    match prefix {
        None => path,
        Some(prefix) => strip_segment_prefix(path, prefix),
    }
}

fn strip_segment_prefix<'a>(path: &'a str, prefix: &str) -> &'a str {
    match path.strip_prefix(prefix) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// Percent-encodes the bytes of `path` that may not appear in a URI path. Existing valid
/// `%XX` escapes are kept as they are, so already-encoded paths pass through unchanged.
pub fn encode_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let keep = b.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@/".contains(&b)
            || (b == b'%'
                && i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit());
        if keep {
            out.push(b as char);
        } else {
            push_pct(&mut out, b);
        }
        i += 1;
    }
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    out
}

fn push_pct(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[(b >> 4) as usize] as char);
    out.push(HEX[(b & 0xf) as usize] as char);
}

fn encode_component(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            push_pct(out, b);
        }
    }
}

/// Encodes parsed query parameters as a query string. Keys are sorted (the parsed form has no
/// order); the values of one key keep their order. Everything but RFC 3986 unreserved
/// characters is percent-encoded (spaces as `%20`).
pub fn encode_query(params: &QueryMap) -> String {
    let mut pairs: Vec<(&str, &str)> = params.iter().collect();
    // Stable sort: values of the same key stay in their original order.
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        encode_component(k, &mut out);
        out.push('=');
        encode_component(v, &mut out);
    }
    out
}

/// The path to request on the ingress: the raw path API Gateway received, minus the stage
/// (when present in it) and the configured prefix, percent-encoded where needed.
pub fn ingress_path(config: &Config, request: &Request) -> String {
    let raw = request.raw_http_path();
    let raw = if raw.is_empty() { request.uri().path() } else { raw };
    let path = strip_stage(raw, request_stage(request));
    let path = strip_prefix(path, config.strip_prefix.as_deref());
    encode_path(path)
}

/// The query string to send to the ingress (without `?`), if any.
///
/// For HTTP API (v2) events the raw query string from the event is used verbatim; for REST API
/// (v1) events, which only carry parsed parameters, it is re-encoded from them.
pub fn ingress_query(request: &Request) -> Option<String> {
    let query = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(_)) | None => request.uri().query().map(str::to_string),
        Some(_) => request.query_string_parameters_ref().map(encode_query),
    };
    query.filter(|q| !q.is_empty())
}

/// Builds the ingress URI for `path` (already encoded) and `query`.
pub fn ingress_uri(config: &Config, path: &str, query: Option<&str>) -> Result<Uri, http::Error> {
    let mut path_and_query = format!("{}{}", config.ingress_base_path, path);
    if let Some(q) = query {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    Uri::builder().scheme("http").authority(config.ingress_authority.clone()).path_and_query(path_and_query).build()
}

/// Connection-specific headers that must not be forwarded in either direction.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" | "te" | "trailer"
    )
}

/// Whether a request header is forwarded to the ingress. `host` and `content-length` are
/// recomputed by the HTTP client; hop-by-hop headers are dropped; everything else (including
/// `x-amzn-*` and `x-forwarded-*`) is kept.
pub fn is_forwarded_request_header(name: &HeaderName) -> bool {
    !(is_hop_by_hop(name) || name == header::HOST || name == header::CONTENT_LENGTH)
}

/// Names listed in `Connection` are hop-by-hop for this message too.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The headers to send to the ingress: every end-to-end header of the incoming request (all
/// values kept), plus `x-forwarded-for: {source_ip}` when the request has none.
pub fn forward_request_headers(incoming: &HeaderMap, source_ip: Option<&str>) -> HeaderMap {
    let listed = connection_listed(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 1);
    for (name, value) in incoming {
        if is_forwarded_request_header(name) && !listed.iter().any(|l| l == name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    let xff = HeaderName::from_static("x-forwarded-for");
    if !out.contains_key(&xff)
        && let Some(ip) = source_ip
        && let Ok(v) = HeaderValue::from_str(ip)
    {
        out.insert(xff, v);
    }
    out
}

/// The headers to answer with: the ingress response headers (all values kept) minus hop-by-hop
/// headers and `content-length` (API Gateway computes it from the body it sends).
pub fn response_headers(ingress: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(ingress);
    let mut out = HeaderMap::with_capacity(ingress.len());
    for (name, value) in ingress {
        if !is_hop_by_hop(name) && name != header::CONTENT_LENGTH && !listed.iter().any(|l| l == name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Combines repeated response headers into one comma-separated value (`set-cookie` excepted).
///
/// The HTTP API (payload v2) response has no `multiValueHeaders`, and lambda_http 1.3 serialises
/// only the first value of a repeated header there, so repeated values are folded first
/// (RFC 9110 §5.3). `set-cookie` values stay separate: lambda_http moves them into `cookies`.
pub fn fold_repeated_headers(headers: HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let mut values = headers.get_all(name).iter();
        let first = values.next().cloned();
        let rest: Vec<&HeaderValue> = values.collect();
        if rest.is_empty() || name == header::SET_COOKIE {
            for v in headers.get_all(name) {
                out.append(name.clone(), v.clone());
            }
            continue;
        }
        let mut joined: Vec<u8> = first.map(|v| v.as_bytes().to_vec()).unwrap_or_default();
        for v in rest {
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(v.as_bytes());
        }
        match HeaderValue::from_bytes(&joined) {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(_) => {
                for v in headers.get_all(name) {
                    out.append(name.clone(), v.clone());
                }
            }
        }
    }
    out
}

/// Whether a response with this `content-type` is returned as text (`text/*`,
/// `application/json`, `*+json`) rather than base64-encoded binary.
pub fn is_text_content_type(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence.starts_with("text/") || essence == "application/json" || essence.ends_with("+json")
}

/// The Lambda response body for an ingress response: empty, text (for text content types with
/// valid UTF-8) or binary.
pub fn response_body(headers: &HeaderMap, body: Bytes) -> Body {
    if body.is_empty() {
        return Body::Empty;
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if is_text_content_type(ct) {
        match String::from_utf8(body.to_vec()) {
            Ok(s) => Body::Text(s),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    } else {
        Body::Binary(body.to_vec())
    }
}

/// An error answer in the ingress error shape: `{"message": ..., "restate_code": null}`.
pub fn error_response(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": message, "restate_code": null }).to_string();
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

fn request_body_bytes(body: Body) -> Bytes {
    match body {
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    }
}

/// The time budget for this request: the configured timeout, capped by the Lambda deadline
/// (minus a small margin) when the request carries a Lambda context.
fn effective_timeout(config: &Config, request: &Request) -> Duration {
    let Some(deadline_ms) = request.lambda_context_ref().map(|c| c.deadline).filter(|d| *d > 0) else {
        return config.timeout;
    };
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(DEADLINE_MARGIN);
    config.timeout.min(left.max(Duration::from_millis(1)))
}

enum ForwardError {
    Unreachable(String),
    Timeout(Duration),
}

/// Forwards one API Gateway request to the ingress and translates the answer back.
///
/// Ingress failures become 502/504 answers (see the crate docs); the `Err` case is reserved
/// for failures to build the Lambda response itself.
pub async fn forward(config: &Config, client: &Client, request: Request) -> Result<Response<Body>, lambda_http::Error> {
    let path = ingress_path(config, &request);
    let query = ingress_query(&request);
    let headers = forward_request_headers(request.headers(), source_ip(&request));
    let timeout = effective_timeout(config, &request);
    let method = request.method().clone();
    let http_api = matches!(request.request_context_ref(), Some(RequestContext::ApiGatewayV2(_)));

    let uri = match ingress_uri(config, &path, query.as_deref()) {
        Ok(uri) => uri,
        Err(e) => {
            tracing::warn!(%path, error = %e, "cannot build ingress URI");
            return Ok(error_response(StatusCode::BAD_REQUEST, &format!("Invalid request path {path:?}: {e}")));
        }
    };

    let body = request_body_bytes(request.into_body());
    let mut outgoing = http::Request::new(Full::new(body));
    *outgoing.method_mut() = method.clone();
    *outgoing.uri_mut() = uri.clone();
    *outgoing.headers_mut() = headers;

    tracing::debug!(%method, %uri, "forwarding to ingress");
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(timeout, async {
        let response = client.request(outgoing).await.map_err(|e| ForwardError::Unreachable(error_chain(&e)))?;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| ForwardError::Unreachable(format!("reading the response body failed: {}", error_chain(&e))))?
            .to_bytes();
        Ok::<_, ForwardError>((parts, bytes))
    })
    .await
    .unwrap_or(Err(ForwardError::Timeout(timeout)));

    match result {
        Ok((parts, bytes)) => {
            tracing::info!(%method, %uri, status = parts.status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "forwarded");
            let mut headers = response_headers(&parts.headers);
            if http_api {
                headers = fold_repeated_headers(headers);
            }
            let body = response_body(&headers, bytes);
            let mut response = Response::new(body);
            *response.status_mut() = parts.status;
            *response.headers_mut() = headers;
            Ok(response)
        }
        Err(ForwardError::Unreachable(cause)) => {
            tracing::warn!(%method, %uri, %cause, "ingress unreachable");
            Ok(error_response(
                StatusCode::BAD_GATEWAY,
                &format!("The perdure ingress at {} could not be reached: {cause}", config.ingress_url),
            ))
        }
        Err(ForwardError::Timeout(t)) => {
            tracing::warn!(%method, %uri, timeout_ms = t.as_millis() as u64, "ingress timed out");
            Ok(error_response(
                StatusCode::GATEWAY_TIMEOUT,
                &format!(
                    "The perdure ingress at {} did not answer within {}",
                    config.ingress_url,
                    humantime::format_duration(t)
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
