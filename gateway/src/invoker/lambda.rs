//! Lambda transport: the service protocol over `Lambda.Invoke` (RequestResponse).
//!
//! A request (discovery or one attempt's whole body) becomes one API-Gateway-like event
//! (`{path, httpMethod, headers, body: base64, isBase64Encoded: true}`); the function answers
//! `{statusCode, headers, body, isBase64Encoded}`, which is then read like an HTTP response.
//! Credentials, region overrides and endpoints come from the standard AWS configuration chain
//! (`aws-config`: environment, profiles, web identity, containers, `AWS_ENDPOINT_URL_LAMBDA` /
//! `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL`); the region of each call is the ARN's. A
//! deployment's `assume_role_arn` is assumed through STS, with credentials cached per role.
//!
//! Retrying is the invocation's retry policy, not the SDK's: the SDK's own retries are off,
//! so a throttled or failed call shows up as the invocation's last failure at once.
//!
//! [`LambdaClients`] is the Lambda [`super::transport::Transport`] of attempts (implemented there). Which version an attempt invokes,
//! and the check of a version newly seen behind an alias, are `super::lambda_versions`'.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::protocol::codes;

/// Lambda's limit for a synchronous invocation's request and response payloads.
pub const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// Settings for calling Lambda.
#[derive(Clone, Debug)]
pub struct LambdaSettings {
    /// Passed as `ExternalId` when assuming a deployment's role.
    pub assume_role_external_id: Option<String>,
    /// Request bodies at least this large are zstd-compressed when the deployment's manifest
    /// allows it (`lambdaCompression: "zstd"`).
    pub request_compression_threshold: usize,
}

impl Default for LambdaSettings {
    fn default() -> Self {
        Self { assume_role_external_id: None, request_compression_threshold: 4 << 20 }
    }
}

/// A qualified Lambda function ARN: `arn:<partition>:lambda:<region>:<account>:function:<name>:<qualifier>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
    /// A version number, an alias, or `$LATEST`.
    pub qualifier: String,
}

impl FunctionArn {
    /// Parses a qualified function ARN; the error says what is wrong.
    pub fn parse(arn: &str) -> Result<Self, String> {
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() == 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function" {
            return Err(format!(
                "'{arn}' names no version or alias: register a published version \
                 (arn:…:function:{}:7) or an alias (arn:…:function:{}:live)",
                parts[6], parts[6]
            ));
        }
        if parts.len() != 8 || parts[7].is_empty() {
            return Err(
                "A qualified ARN needs a version or alias suffix, e.g. arn:aws:lambda:<region>:<account>:function:<name>:<version>".into(),
            );
        }
        if parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" {
            return Err(
                "not a Lambda function ARN (arn:<partition>:lambda:<region>:<account>:function:<name>:<qualifier>)"
                    .into(),
            );
        }
        if parts[3].is_empty() || parts[4].is_empty() || parts[6].is_empty() {
            return Err("the ARN's region, account and function name must not be empty".into());
        }
        Ok(Self {
            partition: parts[1].to_owned(),
            region: parts[3].to_owned(),
            account: parts[4].to_owned(),
            name: parts[6].to_owned(),
            qualifier: parts[7].to_owned(),
        })
    }

    /// True for a published version (`:7`), false for an alias or `$LATEST`.
    pub fn is_version(&self) -> bool {
        self.qualifier.bytes().all(|b| b.is_ascii_digit())
    }

    /// True for an alias (`:live`).
    pub fn is_alias(&self) -> bool {
        !self.is_version() && self.qualifier != "$LATEST"
    }

    /// The same function with another qualifier (a version to pin to).
    pub fn with_qualifier(&self, qualifier: &str) -> String {
        format!("arn:{}:lambda:{}:{}:function:{}:{qualifier}", self.partition, self.region, self.account, self.name)
    }
}

/// Why a call to Lambda did not give a response.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// The function ran and failed (`X-Amz-Function-Error`): an exception, a timeout, a crash.
    #[error("the Lambda function failed on version {version}: {error_type}: {message}")]
    Function { version: String, error_type: String, message: String },
    /// Lambda throttled the call (429 `TooManyRequestsException`).
    #[error("Lambda throttled the call ({0})")]
    Throttled(String),
    /// The function, version or alias does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The event is over Lambda's 6 MB limit.
    #[error(
        "the Lambda request is {size} bytes, over Lambda's synchronous payload limit of {PAYLOAD_LIMIT} bytes \
         (the journal replayed to the function is too large)"
    )]
    TooLarge { size: usize },
    /// Anything else between perdure and Lambda: credentials, network, a 5xx, a bad answer.
    #[error("{0}")]
    Call(String),
}

impl LambdaError {
    /// The HTTP-like status an attempt's failure carries.
    pub fn code(&self) -> u16 {
        match self {
            LambdaError::Function { .. } => codes::INTERNAL,
            LambdaError::Throttled(_) => codes::TOO_MANY_REQUESTS,
            LambdaError::NotFound(_) => codes::NOT_FOUND,
            LambdaError::TooLarge { .. } => codes::PAYLOAD_TOO_LARGE,
            LambdaError::Call(_) => codes::BAD_GATEWAY,
        }
    }
}

/// The request a function receives, as the SDKs' Lambda handlers read it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestEvent<'a> {
    path: &'a str,
    http_method: &'a str,
    headers: &'a HashMap<String, String>,
    body: String,
    is_base64_encoded: bool,
}

/// The response a function returns.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseEvent {
    status_code: u16,
    #[serde(default)]
    headers: Option<HashMap<String, String>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

/// One request to a function.
pub struct LambdaRequest {
    /// `/discover` or `/invoke/{service}/{handler}`.
    pub path: String,
    pub method: &'static str,
    pub headers: HashMap<String, String>,
    pub body: Bytes,
    /// The manifest allows zstd (`lambdaCompression`).
    pub zstd: bool,
}

/// A function's answer, read as an HTTP response.
#[derive(Debug)]
pub struct LambdaResponse {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// The version that ran (`X-Amz-Executed-Version`).
    pub executed_version: Option<String>,
}

/// Encodes a request as the event JSON (compressing a large body if allowed).
pub fn encode_event(request: &LambdaRequest, compression_threshold: usize) -> Result<Vec<u8>, LambdaError> {
    let mut headers = request.headers.clone();
    let mut body = request.body.clone();
    if request.zstd {
        headers.insert("accept-encoding".into(), "zstd".into());
        if body.len() >= compression_threshold {
            body = zstd::bulk::compress(&body, 3)
                .map_err(|e| LambdaError::Call(format!("compressing the request: {e}")))?
                .into();
            headers.insert("content-encoding".into(), "zstd".into());
        }
    }
    let event = RequestEvent {
        path: &request.path,
        http_method: request.method,
        headers: &headers,
        body: BASE64.encode(&body),
        is_base64_encoded: true,
    };
    let bytes = serde_json::to_vec(&event).map_err(|e| LambdaError::Call(e.to_string()))?;
    if bytes.len() > PAYLOAD_LIMIT {
        return Err(LambdaError::TooLarge { size: bytes.len() });
    }
    Ok(bytes)
}

/// Decodes a function's response event (decompressing a zstd body).
pub fn decode_response(payload: &[u8], executed_version: Option<String>) -> Result<LambdaResponse, LambdaError> {
    let bad =
        |why: String| LambdaError::Call(format!("the function's answer is not a service-protocol response: {why}"));
    let event: ResponseEvent = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
    let status = http::StatusCode::from_u16(event.status_code).map_err(|e| bad(e.to_string()))?;
    let mut headers = http::HeaderMap::new();
    for (k, v) in event.headers.unwrap_or_default() {
        let (Ok(name), Ok(value)) = (http::HeaderName::try_from(k.as_str()), http::HeaderValue::try_from(v.as_str()))
        else {
            return Err(bad(format!("bad header '{k}'")));
        };
        headers.insert(name, value);
    }
    let raw = event.body.unwrap_or_default();
    let mut body: Bytes = if event.is_base64_encoded {
        BASE64.decode(raw.as_bytes()).map_err(|e| bad(format!("body is not base64: {e}")))?.into()
    } else {
        raw.into_bytes().into()
    };
    if headers.get(http::header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"zstd")) {
        body = zstd::stream::decode_all(&body[..]).map_err(|e| bad(format!("zstd body: {e}")))?.into();
        headers.remove(http::header::CONTENT_ENCODING);
    }
    Ok(LambdaResponse { status, headers, body, executed_version })
}

/// Lambda clients, one per (region, role), made on first use.
pub struct LambdaClients {
    settings: LambdaSettings,
    base: tokio::sync::OnceCell<aws_config::SdkConfig>,
    clients: tokio::sync::Mutex<HashMap<(String, Option<String>), aws_sdk_lambda::Client>>,
}

impl LambdaClients {
    pub fn new(settings: LambdaSettings) -> Self {
        Self { settings, base: tokio::sync::OnceCell::new(), clients: tokio::sync::Mutex::new(HashMap::new()) }
    }

    async fn client(&self, region: &str, role: Option<&str>) -> aws_sdk_lambda::Client {
        let key = (region.to_owned(), role.map(str::to_owned));
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&key) {
            return c.clone();
        }
        let base = self
            .base
            .get_or_init(|| async {
                // No SDK retries (the invocation's own policy retries) and no stalled-stream
                // watchdog per call (the attempt's abort timeout covers a stuck call).
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .stalled_stream_protection(
                        aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled(),
                    )
                    .load()
                    .await
            })
            .await;
        let region = aws_config::Region::new(region.to_owned());
        let mut config = aws_sdk_lambda::config::Builder::from(base).region(region.clone());
        if let Some(role) = role {
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("perdure")
                .region(region)
                .configure(base);
            if let Some(id) = &self.settings.assume_role_external_id {
                provider = provider.external_id(id);
            }
            config = config.credentials_provider(provider.build().await);
        }
        let client = aws_sdk_lambda::Client::from_conf(config.build());
        clients.insert(key, client.clone());
        client
    }

    /// Invokes `function` (a qualified ARN) with the request and reads its answer.
    pub async fn call(
        &self,
        function: &str,
        region: &str,
        role: Option<&str>,
        request: &LambdaRequest,
    ) -> Result<LambdaResponse, LambdaError> {
        let payload = encode_event(request, self.settings.request_compression_threshold)?;
        let client = self.client(region, role).await;
        let out = client
            .invoke()
            .function_name(function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::RequestResponse)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map_err(|e| call_error(function, e))?;
        let executed = out.executed_version().map(str::to_owned);
        let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        if out.function_error().is_some() {
            #[derive(Deserialize, Default)]
            #[serde(rename_all = "camelCase")]
            struct FunctionError {
                #[serde(default)]
                error_type: String,
                #[serde(default)]
                error_message: String,
            }
            let e: FunctionError = serde_json::from_slice(body).unwrap_or_default();
            let message = if e.error_message.is_empty() && e.error_type.is_empty() {
                String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned()
            } else {
                e.error_message
            };
            return Err(LambdaError::Function {
                version: executed.unwrap_or_else(|| "?".into()),
                error_type: if e.error_type.is_empty() { "Unhandled".into() } else { e.error_type },
                message,
            });
        }
        decode_response(body, executed)
    }
}

impl LambdaClients {
    /// The version an alias points at now (its primary version: weighted routing aside).
    pub async fn alias_version(
        &self,
        alias_arn: &str,
        region: &str,
        role: Option<&str>,
    ) -> Result<String, LambdaError> {
        let client = self.client(region, role).await;
        let (function, alias) =
            alias_arn.rsplit_once(':').ok_or_else(|| LambdaError::Call(format!("'{alias_arn}' has no alias")))?;
        let out = client.get_alias().function_name(function).name(alias).send().await.map_err(|e| {
            use aws_sdk_lambda::error::DisplayErrorContext;
            LambdaError::Call(format!("GetAlias {alias_arn}: {}", DisplayErrorContext(&e)))
        })?;
        out.function_version()
            .map(str::to_owned)
            .ok_or_else(|| LambdaError::Call(format!("GetAlias {alias_arn}: no FunctionVersion")))
    }
}

fn call_error(
    function: &str,
    e: aws_sdk_lambda::error::SdkError<aws_sdk_lambda::operation::invoke::InvokeError>,
) -> LambdaError {
    use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata};
    if let Some(service) = e.as_service_error() {
        let message = service.message().unwrap_or_default().to_owned();
        if service.is_resource_not_found_exception() {
            return LambdaError::NotFound(format!("Lambda says {function} does not exist: {message}"));
        }
        if service.is_too_many_requests_exception() {
            return LambdaError::Throttled(format!(
                "{}: {message}",
                service.code().unwrap_or("TooManyRequestsException")
            ));
        }
        if service.is_request_too_large_exception() {
            return LambdaError::Call(format!("Lambda refused the request as too large: {message}"));
        }
        return LambdaError::Call(format!("calling {function}: {}: {message}", service.code().unwrap_or("error")));
    }
    if let Some(raw) = e.raw_response()
        && raw.status().as_u16() == codes::TOO_MANY_REQUESTS
    {
        return LambdaError::Throttled(format!("HTTP 429 from Lambda calling {function}"));
    }
    LambdaError::Call(format!("calling {function}: {}", DisplayErrorContext(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_parsed_with_what_is_wrong() {
        let a = FunctionArn::parse("arn:aws:lambda:eu-central-1:123456789012:function:greeter:7").unwrap();
        assert_eq!((a.region.as_str(), a.name.as_str(), a.qualifier.as_str()), ("eu-central-1", "greeter", "7"));
        assert!(a.is_version() && !a.is_alias());
        assert_eq!(a.with_qualifier("9"), "arn:aws:lambda:eu-central-1:123456789012:function:greeter:9");
        let live = FunctionArn::parse("arn:aws:lambda:eu-central-1:123456789012:function:greeter:live").unwrap();
        assert!(live.is_alias());
        assert!(!FunctionArn::parse("arn:aws:lambda:r:1:function:g:$LATEST").unwrap().is_alias());
        let e = FunctionArn::parse("arn:aws:lambda:eu-central-1:123456789012:function:greeter").unwrap_err();
        assert!(e.contains("names no version or alias"), "{e}");
        assert!(FunctionArn::parse("arn:aws:s3:eu-central-1:123456789012:function:greeter:1").is_err());
        assert!(FunctionArn::parse("arn:aws:lambda:eu-central-1:123456789012:function:greeter:").is_err());
    }

    #[test]
    fn events_round_trip_with_compression() {
        let request = LambdaRequest {
            path: "/invoke/Greeter/greet".into(),
            method: "POST",
            headers: HashMap::from([("content-type".into(), "application/vnd.restate.invocation.v5".into())]),
            body: Bytes::from(vec![7u8; 100]),
            zstd: true,
        };
        let event: serde_json::Value = serde_json::from_slice(&encode_event(&request, 10).unwrap()).unwrap();
        assert_eq!(event["path"], "/invoke/Greeter/greet");
        assert_eq!(event["httpMethod"], "POST");
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["headers"]["content-encoding"], "zstd");
        assert_eq!(event["headers"]["accept-encoding"], "zstd");
        let compressed = BASE64.decode(event["body"].as_str().unwrap()).unwrap();
        assert_eq!(zstd::stream::decode_all(&compressed[..]).unwrap(), vec![7u8; 100]);

        let answer = serde_json::json!({
            "statusCode": 200,
            "headers": {"content-type": "application/vnd.restate.invocation.v5", "content-encoding": "zstd"},
            "isBase64Encoded": true,
            "body": BASE64.encode(&compressed),
            "statusDescription": "200 OK"
        });
        let r = decode_response(answer.to_string().as_bytes(), Some("3".into())).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], &[7u8; 100][..]);
        assert!(r.headers.get("content-encoding").is_none());
        assert_eq!(r.executed_version.as_deref(), Some("3"));

        let raw = decode_response(br#"{"statusCode":404,"headers":null,"body":"nope"}"#, None).unwrap();
        assert_eq!((raw.status.as_u16(), &raw.body[..]), (404, &b"nope"[..]));
        assert!(decode_response(b"{}", None).is_err());
    }

    #[test]
    fn oversized_requests_are_refused_before_invoking() {
        let request = LambdaRequest {
            path: "/invoke/A/b".into(),
            method: "POST",
            headers: HashMap::new(),
            body: Bytes::from(vec![1u8; PAYLOAD_LIMIT]),
            zstd: false,
        };
        let e = encode_event(&request, usize::MAX).unwrap_err();
        assert!(matches!(e, LambdaError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("6291456"), "{e}");
    }
}
