//! How an attempt's bytes reach a deployment and come back: one trait, [`Transport`], with one
//! implementation per kind of endpoint, both at the end of this file (the clients themselves
//! know nothing of attempts). HTTP is [`DeploymentClient`] (in [`super::client`]): an
//! HTTP/2 bidi stream whose request side stays open for forwarded notifications, or one
//! request/response over HTTP/2 or HTTP/1.1. Lambda is [`LambdaClients`] (in [`super::lambda`]):
//! the whole request as one `Invoke` event, the whole response back. Tests use a scripted one
//! (`super::scripted`) that plays back response frames and records what was sent.
//!
//! A transport only moves bytes: it sends the request head and the frames the attempt hands it,
//! and gives back the response head and the body's chunks as they arrive. It does not frame or
//! decode messages, check the head, time anything out, or decide about retries: that is the
//! attempt's ([`super::attempt`]), which drives every transport the same way:
//!
//! 1. [`Transport::open`] with a [`Request`] (its [`Destination`], path, headers and body: all
//!    of it, or a stream the attempt keeps writing into), under the abort timeout;
//! 2. reads the [`Response`] head, then its body chunk by chunk until the stream ends;
//! 3. for a streamed request, drops the sending side to end it.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use super::client::{DeploymentClient, RequestBody};
use super::lambda::{LambdaClients, LambdaError, LambdaRequest};
use crate::schema::HttpVersion;

/// Carries attempts to deployments of one kind.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Sends the request and returns once the response head is there (its body streams on).
    async fn open(&self, request: Request) -> Result<Response, TransportError>;
}

/// Where an attempt goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// `POST {uri}` over HTTP/2 or HTTP/1.1.
    Http { uri: http::Uri, version: HttpVersion },
    /// `Lambda.Invoke` of `function` (a qualified ARN: the version or alias to run).
    Lambda {
        function: String,
        region: String,
        /// The role to assume for the call.
        role: Option<String>,
        /// The deployment's manifest allows zstd-compressed events.
        zstd: bool,
    },
}

impl Destination {
    /// True for a Lambda function.
    pub fn is_lambda(&self) -> bool {
        matches!(self, Destination::Lambda { .. })
    }
}

/// One attempt's request.
#[derive(Debug)]
pub struct Request {
    pub destination: Destination,
    /// `/invoke/{service}/{handler}`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: RequestFrames,
}

/// The request body: the start message and the journal, then (bidi) forwarded notifications.
#[derive(Debug)]
pub enum RequestFrames {
    /// All of it at once (request/response).
    Full(Bytes),
    /// What the attempt writes into the channel, until it drops the sender (bidi).
    Stream(mpsc::UnboundedReceiver<Bytes>),
}

/// The response's body: chunks of frames as they arrive; an error ends it.
pub type ResponseBody = BoxStream<'static, Result<Bytes, String>>;

/// A response head and its body.
pub struct Response {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    /// Lambda: the function version that ran (`X-Amz-Executed-Version`).
    pub executed_version: Option<String>,
    pub body: ResponseBody,
}

/// Why a request got no response head.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The request could not be built from what the attempt gave (a header HTTP refuses).
    #[error("{0}")]
    Request(String),
    /// HTTP: the deployment could not be reached, or the exchange broke before the head.
    #[error("error when calling the deployment: {0}")]
    Http(String),
    /// Lambda could not be called, or the function did not give a response.
    #[error(transparent)]
    Lambda(#[from] LambdaError),
}

impl TransportError {
    /// Worth another attempt: a deployment that cannot be reached now may be later, and the
    /// invocation's retry policy decides how long to keep trying. (What can never run again, a
    /// deployment or handler that is gone, is found when choosing, not here.)
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Request(_) | TransportError::Http(_) | TransportError::Lambda(_) => true,
        }
    }
}

/// A transport for each kind of endpoint.
#[derive(Clone)]
pub struct Transports {
    pub http: Arc<dyn Transport>,
    pub lambda: Arc<dyn Transport>,
}

impl Transports {
    /// The network: HTTP through the deployment client's pools, Lambda through its clients.
    pub fn network(client: DeploymentClient, lambda: Arc<LambdaClients>) -> Self {
        Self { http: Arc::new(client), lambda }
    }

    /// One transport for every destination (a test's scripted one).
    pub fn all(transport: Arc<dyn Transport>) -> Self {
        Self { http: transport.clone(), lambda: transport }
    }

    /// The transport that reaches `destination`.
    pub fn to(&self, destination: &Destination) -> &dyn Transport {
        match destination {
            Destination::Http { .. } => &*self.http,
            Destination::Lambda { .. } => &*self.lambda,
        }
    }
}

#[async_trait::async_trait]
impl Transport for DeploymentClient {
    /// `POST` to the deployment: the head goes out with the body (complete, or streamed from
    /// the attempt's channel), and the response's data frames come back as they arrive.
    async fn open(&self, request: Request) -> Result<Response, TransportError> {
        let Destination::Http { uri, version } = &request.destination else {
            return Err(TransportError::Request(format!("{:?} is not an HTTP deployment", request.destination)));
        };
        let mut builder = http::Request::post(uri.clone());
        for (k, v) in request.headers {
            builder = builder.header(k, v);
        }
        let body = match request.body {
            RequestFrames::Full(bytes) => RequestBody::Full(Some(bytes)),
            RequestFrames::Stream(rx) => RequestBody::Stream(rx),
        };
        let request = builder.body(body).map_err(|e| TransportError::Request(e.to_string()))?;
        let response =
            self.request(version, request).await.map_err(|e| TransportError::Http(crate::error_chain(&e)))?;
        let (head, body) = response.into_parts();
        Ok(Response { status: head.status, headers: head.headers, executed_version: None, body: data_chunks(body) })
    }
}

/// The data frames of a response body (trailers skipped); an error ends it.
fn data_chunks(body: hyper::body::Incoming) -> ResponseBody {
    use futures::StreamExt as _;
    use http_body_util::BodyExt as _;
    futures::stream::unfold(Some(body), |body| async move {
        let mut body = body?;
        loop {
            match body.frame().await? {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => return Some((Ok(data), Some(body))),
                    Err(_) => continue,
                },
                Err(e) => return Some((Err(crate::error_chain(&e)), None)),
            }
        }
    })
    .boxed()
}

#[async_trait::async_trait]
impl Transport for LambdaClients {
    /// One `Invoke`: the request (all of it) as the event, the function's whole answer as the
    /// response, its body as one chunk.
    async fn open(&self, request: Request) -> Result<Response, TransportError> {
        let Destination::Lambda { function, region, role, zstd } = &request.destination else {
            return Err(TransportError::Request(format!("{:?} is not a Lambda function", request.destination)));
        };
        let RequestFrames::Full(body) = request.body else {
            return Err(TransportError::Request("Lambda takes a request whole, not streamed".into()));
        };
        let event = LambdaRequest {
            path: request.path,
            method: "POST",
            headers: request.headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect(),
            body,
            zstd: *zstd,
        };
        let response = self.call(function, region, role.as_deref(), &event).await?;
        Ok(Response {
            status: response.status,
            headers: response.headers,
            executed_version: response.executed_version,
            body: Box::pin(futures::stream::iter([Ok(response.body)])),
        })
    }
}
