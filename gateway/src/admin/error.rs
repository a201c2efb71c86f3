//! Admin API errors: `{"message": ..., "restate_code": ...}` with the right status, in one
//! exhaustive match (the `restate` CLI requires this shape on every non-2xx answer).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::invoker::discovery::DiscoveryError;
use crate::schema::RegistrationError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("The requested deployment '{0}' does not exist")]
    UnknownDeployment(String),
    #[error("The requested service '{0}' does not exist")]
    UnknownService(String),
    #[error("The requested invocation '{0}' does not exist")]
    UnknownInvocation(String),
    #[error("The requested handler '{handler}' on service '{service}' does not exist")]
    UnknownHandler { service: String, handler: String },
    #[error("The request field '{field}' is invalid. Reason: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("Conflict: deployment {0} already exists")]
    AlreadyExists(String),
    #[error("{message}")]
    Conflict { message: String, code: Option<&'static str> },
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("{0}")]
    NotImplemented(String),
    #[error("the partition is unavailable: {0}")]
    Unavailable(String),
    /// A part of the server stopped (`/cluster-health`).
    #[error("the node is not healthy: {0}")]
    Unhealthy(String),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("the request could not be applied (the server log has the details): {0}")]
    Rejected(String),
    /// A registration refused for what it would break: every change it makes, and some of
    /// the invocations it would break.
    #[error("{message}")]
    Refused {
        message: String,
        code: Option<&'static str>,
        changes: Vec<crate::schema::Change>,
        invocations: Vec<crate::ids::InvocationId>,
    },
    /// A deployment that is not drained, removed without `force`.
    #[error("{}", held_message(.id, .drain))]
    Held { id: crate::ids::DeploymentId, drain: Box<super::render::Drain>, invocations: Vec<crate::ids::InvocationId> },
    /// An id in the path that does not parse: answered in plain text, as Restate's framework
    /// answers it.
    #[error("Invalid URL: Cannot parse `{what}` with value `{value}`: {reason}")]
    BadPathId { what: &'static str, value: String, reason: String },
}

impl Error {
    /// An id in the path that does not parse.
    pub fn bad_path_id(what: &'static str, value: &str, reason: impl std::fmt::Display) -> Self {
        Error::BadPathId { what, value: value.to_owned(), reason: reason.to_string() }
    }
}

fn held_message(id: &crate::ids::DeploymentId, drain: &super::render::Drain) -> String {
    let mut why = Vec::new();
    if !drain.latest_for.is_empty() {
        why.push(format!("it serves the latest revision of {}", drain.latest_for.join(", ")));
    }
    let p = &drain.pinned_invocations;
    if p.total > 0 {
        let mut counts = format!(
            "{} running, {} suspended, {} backing off, {} paused",
            p.running, p.suspended, p.backing_off, p.paused
        );
        if p.scheduled + p.inboxed > 0 {
            counts.push_str(&format!(", {} scheduled, {} inboxed", p.scheduled, p.inboxed));
        }
        why.push(format!("{} invocations are pinned to it ({counts})", p.total));
    }
    format!(
        "deployment {id} is {} and cannot be removed: {}. Register its successor and wait for it to drain, or pass force=true (its pinned invocations then fail)",
        drain.drain_status,
        why.join("; ")
    )
}

impl From<RegistrationError> for Error {
    fn from(e: RegistrationError) -> Self {
        match e {
            RegistrationError::Conflict { message, code, changes, invocations } => {
                Error::Refused { message, code, changes, invocations }
            }
            RegistrationError::Storage(s) => Error::Storage(s),
        }
    }
}

impl From<crate::schema::RoutingError> for Error {
    fn from(e: crate::schema::RoutingError) -> Self {
        use crate::schema::RoutingError as R;
        match e {
            R::UnknownService(name) => Error::UnknownService(name),
            R::UnknownDeployment(id) => Error::UnknownDeployment(id.to_string()),
            e @ R::NotServed { .. } => Error::Conflict { message: e.to_string(), code: None },
            R::Invalid(reason) => Error::Conflict { message: reason, code: None },
            e @ R::BadPercent(_) => Error::InvalidField { field: "percent", reason: e.to_string() },
            R::Refused(r) => r.into(),
        }
    }
}

impl Error {
    fn status_and_code(&self) -> (StatusCode, Option<&'static str>) {
        match self {
            Error::UnknownDeployment(_)
            | Error::UnknownService(_)
            | Error::UnknownHandler { .. }
            | Error::UnknownInvocation(_) => (StatusCode::NOT_FOUND, None),
            Error::InvalidField { .. } | Error::BadPathId { .. } => (StatusCode::BAD_REQUEST, None),
            Error::AlreadyExists(_) | Error::Held { .. } => (StatusCode::CONFLICT, None),
            Error::Conflict { code, .. } | Error::Refused { code, .. } => (StatusCode::CONFLICT, *code),
            Error::Discovery(d) => (StatusCode::INTERNAL_SERVER_ERROR, Some(d.code())),
            Error::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, None),
            Error::Unavailable(_) | Error::Unhealthy(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
            Error::Storage(_) | Error::Rejected(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
        }
    }
}

impl From<crate::partition::Error> for Error {
    fn from(e: crate::partition::Error) -> Self {
        match e {
            crate::partition::Error::Rejected(reason) => Error::Rejected(reason),
            unavailable => Error::Unavailable(unavailable.to_string()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::warn!("admin request failed: {self}");
        }
        if let Error::BadPathId { .. } = self {
            return (status, self.to_string()).into_response();
        }
        let message = self.to_string();
        let mut body = serde_json::json!({ "message": message, "restate_code": code });
        if let Error::Held { drain, invocations, .. } = &self {
            body["drain_status"] = drain.drain_status.as_str().into();
            body["latest_for"] = serde_json::json!(drain.latest_for);
            body["pinned_invocations"] = serde_json::to_value(&drain.pinned_invocations).unwrap_or_default();
            body["invocations"] = invocations.iter().map(|i| i.to_string()).collect();
        }
        if let Error::Refused { changes, invocations, .. } = &self {
            if !changes.is_empty() {
                body["changes"] = serde_json::to_value(changes).unwrap_or_default();
            }
            if !invocations.is_empty() {
                body["invocations"] = invocations.iter().map(|i| i.to_string()).collect();
            }
        }
        (status, axum::Json(body)).into_response()
    }
}
