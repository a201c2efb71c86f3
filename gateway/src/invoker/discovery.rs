//! Discovery: `GET {deployment}/discover`, asking for manifest versions 1 to 4, over HTTP or
//! through `Lambda.Invoke` (the same request as an event).

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::BodyExt;

use super::client::{DeploymentClient, RequestBody, join_uri};
use super::identity::RequestIdentity;
use super::lambda::{FunctionArn, LambdaClients, LambdaRequest};
use crate::protocol::manifest::{DISCOVERY_ACCEPT, Manifest, ManifestError, ProtocolMode, parse_manifest};
use crate::schema::HttpVersion;

/// Largest manifest accepted.
const MAX_MANIFEST_BYTES: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The endpoint could not be reached or the exchange broke.
    #[error("[META0003] error when calling '{uri}': {reason}")]
    Unreachable { uri: String, reason: String },
    /// An HTTP/2 request to a server that only speaks HTTP/1.1.
    #[error(
        "[META0014] error when calling '{uri}': server possibly supports only HTTP1.1, consider discovery with --use-http1.1 ({reason})"
    )]
    Http11Only { uri: String, reason: String },
    /// The endpoint answered with an error status.
    #[error("[META0003] error when calling '{uri}': discovery answered {status}: {body}")]
    Status { uri: String, status: u16, body: String },
    /// A Lambda function answered with a streaming (bidi) manifest: Lambda is request/response.
    #[error(
        "[META0012] bad manifest from '{uri}': protocol mode BIDI_STREAM, but a Lambda function can only serve \
         REQUEST_RESPONSE (use the SDK's Lambda handler, or perdure's lambda-adapter in front of an HTTP endpoint)"
    )]
    BidiOverLambda { uri: String },
    /// The manifest was not acceptable.
    #[error("[META0012] bad manifest from '{uri}': {source}")]
    Manifest {
        uri: String,
        #[source]
        source: ManifestError,
    },
}

impl DiscoveryError {
    /// Restate's error code for the admin API's `restate_code`.
    pub fn code(&self) -> &'static str {
        match self {
            DiscoveryError::Unreachable { .. } | DiscoveryError::Status { .. } => "META0003",
            DiscoveryError::Http11Only { .. } => "META0014",
            DiscoveryError::Manifest { .. } | DiscoveryError::BidiOverLambda { .. } => "META0012",
        }
    }
}

/// What discovery learned.
pub struct Discovered {
    pub manifest: Manifest,
    /// The `x-restate-server` header (e.g. `restate-sdk-typescript/1.17.2`).
    pub sdk_version: Option<String>,
    /// Lambda: the function version that answered (`X-Amz-Executed-Version`).
    pub executed_version: Option<String>,
}

pub async fn discover(
    client: &DeploymentClient,
    uri: &str,
    version: &HttpVersion,
    headers: &BTreeMap<String, String>,
    identity: Option<&RequestIdentity>,
    timeout: Duration,
) -> Result<Discovered, DiscoveryError> {
    let unreachable = |reason: String| DiscoveryError::Unreachable { uri: uri.to_owned(), reason };
    let target = join_uri(uri, "/discover").map_err(|e| unreachable(e.to_string()))?;
    let mut builder = http::Request::get(target).header(http::header::ACCEPT, DISCOVERY_ACCEPT);
    for (k, v) in headers {
        builder = builder.header(k, v);
    }
    for (k, v) in identity.map(|i| i.headers("/discover", None)).into_iter().flatten() {
        builder = builder.header(k, v);
    }
    let request = builder.body(RequestBody::empty()).map_err(|e| unreachable(e.to_string()))?;

    let exchange = async {
        let response = client.request(version, request).await.map_err(|e| {
            let reason = crate::error_chain(&e);
            if *version == HttpVersion::Http2 && !e.is_connect() {
                DiscoveryError::Http11Only { uri: uri.to_owned(), reason }
            } else {
                unreachable(reason)
            }
        })?;
        let status = response.status();
        let sdk_version = response.headers().get("x-restate-server").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type =
            response.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = http_body_util::Limited::new(response.into_body(), MAX_MANIFEST_BYTES)
            .collect()
            .await
            .map_err(|e| unreachable(format!("reading the manifest: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(DiscoveryError::Status {
                uri: uri.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            });
        }
        let manifest = parse_manifest(content_type.as_deref(), &body)
            .map_err(|source| DiscoveryError::Manifest { uri: uri.to_owned(), source })?;
        Ok(Discovered { manifest, sdk_version, executed_version: None })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| unreachable(format!("no answer within {}", humantime::format_duration(timeout))))?
}

/// Discovery through `Lambda.Invoke`: `function` is the ARN to call (the registered one, or
/// one version behind an alias).
pub async fn discover_lambda(
    lambda: &LambdaClients,
    function: &str,
    arn: &FunctionArn,
    role: Option<&str>,
    headers: &BTreeMap<String, String>,
    identity: Option<&RequestIdentity>,
    timeout: Duration,
) -> Result<Discovered, DiscoveryError> {
    let unreachable = |reason: String| DiscoveryError::Unreachable { uri: function.to_owned(), reason };
    let mut event_headers: std::collections::HashMap<String, String> =
        headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    event_headers.insert("accept".into(), DISCOVERY_ACCEPT.into());
    for (k, v) in identity.map(|i| i.headers("/discover", None)).into_iter().flatten() {
        event_headers.insert(k.into(), v);
    }
    let request = LambdaRequest {
        path: "/discover".into(),
        method: "GET",
        headers: event_headers,
        body: bytes::Bytes::new(),
        zstd: false,
    };
    let response = tokio::time::timeout(timeout, lambda.call(function, &arn.region, role, &request))
        .await
        .map_err(|_| unreachable(format!("no answer within {}", humantime::format_duration(timeout))))?
        .map_err(|e| unreachable(e.to_string()))?;
    let header = |name: &str| response.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if !response.status.is_success() {
        return Err(DiscoveryError::Status {
            uri: function.to_owned(),
            status: response.status.as_u16(),
            body: String::from_utf8_lossy(&response.body[..response.body.len().min(512)]).into_owned(),
        });
    }
    let manifest = parse_manifest(header("content-type").as_deref(), &response.body)
        .map_err(|source| DiscoveryError::Manifest { uri: function.to_owned(), source })?;
    if manifest.protocol_mode == ProtocolMode::BidiStream {
        return Err(DiscoveryError::BidiOverLambda { uri: function.to_owned() });
    }
    Ok(Discovered { manifest, sdk_version: header("x-restate-server"), executed_version: response.executed_version })
}
