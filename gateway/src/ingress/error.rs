//! Ingress errors and how they look on the wire: `{"code","message","source"}` with the
//! `x-restate-error-source` header, as Restate 1.7.4+ answers.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;

use crate::ids::{IdError, InvocationId};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad path: {0}")]
    BadPath(String),
    #[error(
        "path '{path}' is outside the ingress's path prefix '{prefix}' (ingress.path-prefix): call {prefix}/<service>/<handler>"
    )]
    OutsidePrefix { path: String, prefix: String },
    #[error("bad path, expected either /:service-name/:handler or /:object-name/:object-key/:handler")]
    BadCallPath,
    #[error("service '{0}' not found, make sure to register the service before calling it.")]
    UnknownService(String),
    #[error(
        "the service '{service}' exists, but the handler '{handler}' was not found, check that the handler exists in the latest registered service version."
    )]
    UnknownHandler { service: String, handler: String },
    #[error("the invoked service is not public")]
    Private,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("input validation error: {0}")]
    InputValidation(String),
    #[error("bad delay query parameter, must be a ISO8601 duration: {0}")]
    BadDelay(String),
    #[error("cannot use the delay query parameter with calls. Use /send to send a delayed invocation")]
    DelayOnCall,
    #[error("cannot use the delay query parameter with workflow handlers")]
    DelayOnWorkflow,
    #[error(
        "cannot use the idempotency key with workflow handlers. The handler invocation will already be idempotent by the workflow key itself."
    )]
    IdempotencyKeyOnWorkflow,
    #[error("bad idempotency key header: {0}")]
    BadIdempotencyKey(String),
    #[error("bad invocation id '{id}': {reason}")]
    BadInvocationId { id: String, reason: IdError },
    #[error("scoped invocations require vqueues to be enabled")]
    Scoped,
    #[error("bad target: {0}")]
    BadTarget(String),
    #[error("bad awakeable id '{id}': {reason}")]
    BadAwakeableId { id: String, reason: IdError },
    #[error("invocation not found")]
    InvocationNotFound,
    #[error("the invocation exists but has not completed yet")]
    NotReady,
    #[error("request body too large: the limit is {0} bytes")]
    BodyTooLarge(u64),
    #[error("cannot read the request body: {0}")]
    BodyRead(String),
    #[error("the partition owning this invocation is unavailable, try again")]
    Unavailable,
    #[error(
        "partition {0} is behind and sheds new requests (ingress.queue-per-partition is full): retry after the Retry-After seconds"
    )]
    Overloaded(u32),
    #[error(
        "the ingress serves {0} requests at once (ingress.concurrency-limit) and sheds more: retry after the Retry-After seconds"
    )]
    TooManyRequests(usize),
    #[error("bad x-perdure-deployment header '{value}': {reason}")]
    BadDeploymentHeader { value: String, reason: String },
    #[error("deployment {0} (x-perdure-deployment) is not registered")]
    UnknownDeployment(String),
    #[error("deployment {deployment} (x-perdure-deployment) does not serve the service '{service}'")]
    NotOnDeployment { deployment: String, service: String },
    #[error("the request could not be applied (the server log has the details): {0}")]
    Rejected(String),
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::UnknownService(_)
            | Error::UnknownHandler { .. }
            | Error::InvocationNotFound
            | Error::UnknownDeployment(_)
            | Error::OutsidePrefix { .. }
            | Error::NotOnDeployment { .. } => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::NotReady => StatusCode::from_u16(470).expect("470 is a valid status code"),
            Error::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unavailable | Error::Overloaded(_) | Error::TooManyRequests(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Rejected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::BadPath(_)
            | Error::BadCallPath
            | Error::Private
            | Error::InputValidation(_)
            | Error::BadDelay(_)
            | Error::DelayOnCall
            | Error::DelayOnWorkflow
            | Error::IdempotencyKeyOnWorkflow
            | Error::BadIdempotencyKey(_)
            | Error::BadInvocationId { .. }
            | Error::BadAwakeableId { .. }
            | Error::BadTarget(_)
            | Error::BadDeploymentHeader { .. }
            | Error::Scoped
            | Error::BodyRead(_) => StatusCode::BAD_REQUEST,
        }
    }

    pub fn into_response(self) -> http::Response<Full<Bytes>> {
        let status = self.status();
        let mut response = error_response(status, &self.to_string(), "ingress", None);
        if let Error::Overloaded(_) | Error::TooManyRequests(_) = self {
            crate::metrics::shed(match self {
                Error::TooManyRequests(_) => crate::metrics::Shed::ConcurrencyLimit,
                _ => crate::metrics::Shed::PartitionQueueFull,
            });
            response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// What a shed request is told to wait: a partition that is behind catches up in about this.
pub const RETRY_AFTER_SECONDS: &str = "1";

impl From<crate::partition::Error> for Error {
    fn from(e: crate::partition::Error) -> Self {
        match e {
            crate::partition::Error::Unavailable(_) => Error::Unavailable,
            crate::partition::Error::Overloaded(partition) => Error::Overloaded(partition),
            crate::partition::Error::Rejected(reason) => Error::Rejected(reason),
        }
    }
}

/// `{"code","message","source"}` with `x-restate-error-source` (and `x-restate-id`).
pub fn error_response(
    status: StatusCode,
    message: &str,
    source: &'static str,
    id: Option<&InvocationId>,
) -> http::Response<Full<Bytes>> {
    let body = serde_json::json!({ "code": status.as_u16(), "message": message, "source": source });
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(id) = id {
        headers.insert("x-restate-id", HeaderValue::from_str(&id.to_string()).expect("ids are ascii"));
    }
    headers.insert("x-restate-error-source", HeaderValue::from_static(source));
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
