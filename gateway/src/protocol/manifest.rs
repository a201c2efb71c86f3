//! The discovery manifest an SDK returns from `GET /discover` (spec §3).
//!
//! [`parse_manifest`] checks the response's content type, parses the JSON leniently
//! (unknown keys are ignored, as newer SDKs add fields) and validates what the server
//! relies on: the protocol mode, an overlapping service protocol range, service and
//! handler names, and handler types that fit their service type.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize};

use super::{MAX_SERVICE_PROTOCOL_VERSION, MIN_SERVICE_PROTOCOL_VERSION, choose_version};

/// The `Accept` header of discovery requests: manifest versions 1 to 4, as Restate sends.
pub const DISCOVERY_ACCEPT: &str = "application/vnd.restate.endpointmanifest.v1+json, \
     application/vnd.restate.endpointmanifest.v2+json, \
     application/vnd.restate.endpointmanifest.v3+json, \
     application/vnd.restate.endpointmanifest.v4+json";

/// The manifest versions this server understands.
const MANIFEST_VERSIONS: [u32; 4] = [1, 2, 3, 4];

/// The manifest version of an exact manifest content type, e.g. `4` for
/// `application/vnd.restate.endpointmanifest.v4+json`.
pub fn manifest_version(content_type: &str) -> Option<u32> {
    let version = content_type.strip_prefix("application/vnd.restate.endpointmanifest.v")?.strip_suffix("+json")?;
    MANIFEST_VERSIONS.into_iter().find(|known| known.to_string() == version)
}

/// How the server must drive invocations of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProtocolMode {
    /// Full duplex: the request stays open and notifications are streamed live.
    BidiStream,
    /// The request body ends after the replay; the SDK suspends when it must wait.
    RequestResponse,
}

/// The kind of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceType {
    /// Stateless service.
    Service,
    /// Keyed, stateful object.
    VirtualObject,
    /// Keyed workflow with one `WORKFLOW` run handler.
    Workflow,
}

impl ServiceType {
    /// The manifest spelling, e.g. `"VIRTUAL_OBJECT"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Service => "SERVICE",
            Self::VirtualObject => "VIRTUAL_OBJECT",
            Self::Workflow => "WORKFLOW",
        }
    }
}

/// The kind of a handler of an object or workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HandlerType {
    /// Holds the key's lock; may write state.
    Exclusive,
    /// Runs concurrently; may only read state.
    Shared,
    /// The workflow's run handler.
    Workflow,
}

impl HandlerType {
    /// The manifest spelling, e.g. `"SHARED"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Exclusive => "EXCLUSIVE",
            Self::Shared => "SHARED",
            Self::Workflow => "WORKFLOW",
        }
    }
}

/// What happens when the retry policy's attempts are exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OnMaxAttempts {
    /// Pause the invocation (Restate's default).
    Pause,
    /// Kill the invocation with the last error.
    Kill,
}

/// A deployment's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Bidirectional streaming or request/response.
    pub protocol_mode: ProtocolMode,
    /// Lowest service protocol version the deployment speaks.
    pub min_protocol_version: u32,
    /// Highest service protocol version the deployment speaks.
    pub max_protocol_version: u32,
    /// `"zstd"` if Lambda payloads may be compressed (manifest v4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_compression: Option<String>,
    /// The services the deployment serves.
    pub services: Vec<ManifestService>,
}

/// A service of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestService {
    /// Service name.
    pub name: String,
    /// Service type.
    pub ty: ServiceType,
    /// Its handlers.
    pub handlers: Vec<ManifestHandler>,
    /// Documentation (manifest v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation: Option<String>,
    /// Free-form metadata (manifest v2).
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Timeouts, retention, lazy state, visibility and retry policy (manifest v3/v4).
    #[serde(flatten)]
    pub settings: ManifestSettings,
}

/// The settings a service declares and its handlers may override.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSettings {
    /// Inactivity timeout in ms (manifest v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactivity_timeout: Option<u64>,
    /// Abort timeout in ms (manifest v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_timeout: Option<u64>,
    /// Journal retention in ms (manifest v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_retention: Option<u64>,
    /// Idempotency retention in ms (manifest v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_retention: Option<u64>,
    /// No eager state in StartMessage when true (manifest v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_lazy_state: Option<bool>,
    /// Not callable from ingress when true (manifest v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_private: Option<bool>,
    /// Retry policy: first delay in ms (manifest v4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy_initial_interval: Option<u64>,
    /// Retry policy: largest delay in ms (manifest v4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy_max_interval: Option<u64>,
    /// Retry policy: attempts before `retry_policy_on_max_attempts` (manifest v4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy_max_attempts: Option<u32>,
    /// Retry policy: delay growth factor (manifest v4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy_exponentiation_factor: Option<f64>,
    /// Retry policy: what to do when attempts run out (manifest v4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy_on_max_attempts: Option<OnMaxAttempts>,
}

/// A handler of a [`ManifestService`]. Its settings override the service's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestHandler {
    /// Handler name.
    pub name: String,
    /// Handler type; see [`ManifestHandler::effective_ty`] for the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<HandlerType>,
    /// Accepted request body; see [`ManifestHandler::input_or_default`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputPayload>,
    /// Response body; see [`ManifestHandler::output_or_default`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputPayload>,
    /// Documentation (manifest v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation: Option<String>,
    /// Free-form metadata (manifest v2).
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Completion retention of workflow runs in ms (WORKFLOW handler only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_completion_retention: Option<u64>,
    /// Overrides of the service's settings.
    #[serde(flatten)]
    pub settings: ManifestSettings,
}

/// The request body a handler accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputPayload {
    /// Whether a body is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Accept-style content type (wildcards allowed); absent = no body expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// JSON schema of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<serde_json::Value>,
}

/// The response body a handler produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputPayload {
    /// Content type of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Whether to set the content type even on an empty body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_content_type_if_empty: Option<bool>,
    /// JSON schema of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<serde_json::Value>,
}

impl ManifestHandler {
    /// The handler type in force: the declared one, else EXCLUSIVE for objects and
    /// WORKFLOW for workflows; always `None` for plain services.
    pub fn effective_ty(&self, service_ty: ServiceType) -> Option<HandlerType> {
        match service_ty {
            ServiceType::Service => None,
            ServiceType::VirtualObject => Some(self.ty.unwrap_or(HandlerType::Exclusive)),
            ServiceType::Workflow => Some(self.ty.unwrap_or(HandlerType::Workflow)),
        }
    }

    /// The declared input, or the default when absent: any content type, not required.
    pub fn input_or_default(&self) -> InputPayload {
        self.input.clone().unwrap_or(InputPayload {
            required: Some(false),
            content_type: Some("*/*".to_owned()),
            json_schema: None,
        })
    }

    /// The declared output, or the default when absent: JSON, no content type when empty.
    pub fn output_or_default(&self) -> OutputPayload {
        self.output.clone().unwrap_or(OutputPayload {
            content_type: Some("application/json".to_owned()),
            set_content_type_if_empty: Some(false),
            json_schema: None,
        })
    }
}

impl Manifest {
    /// The service named `name`, if declared.
    pub fn service(&self, name: &str) -> Option<&ManifestService> {
        self.services.iter().find(|service| service.name == name)
    }
}

impl ManifestService {
    /// The handler named `name`, if declared.
    pub fn handler(&self, name: &str) -> Option<&ManifestHandler> {
        self.handlers.iter().find(|handler| handler.name == name)
    }
}

/// Why a discovery response was refused. Each message says what was received.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The response's content type is not a known manifest type.
    #[error(
        "unsupported discovery response content type {received:?}; expected application/vnd.restate.endpointmanifest.v1..v4+json"
    )]
    ContentType {
        /// What the deployment sent, `None` if the header was absent.
        received: Option<String>,
    },
    /// The body is not JSON, or not shaped like a manifest.
    #[error("invalid manifest JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("the manifest must be a JSON object")]
    NotAnObject,
    /// `protocolMode` is absent (older SDKs omit it).
    #[error(
        "the manifest lacks protocolMode (BIDI_STREAM or REQUEST_RESPONSE); this SDK version is too old, please upgrade it"
    )]
    MissingProtocolMode,
    /// The version range is malformed.
    #[error(
        "invalid service protocol range [{min}, {max}]: need 1 <= minProtocolVersion <= maxProtocolVersion <= {}",
        i32::MAX
    )]
    InvalidVersionRange {
        /// Declared `minProtocolVersion`.
        min: u32,
        /// Declared `maxProtocolVersion`.
        max: u32,
    },
    /// The version range does not overlap the server's.
    #[error(
        "the deployment supports service protocol versions [{min}, {max}], but this server supports [{}, {}]",
        MIN_SERVICE_PROTOCOL_VERSION,
        MAX_SERVICE_PROTOCOL_VERSION
    )]
    UnsupportedVersions {
        /// Declared `minProtocolVersion`.
        min: u32,
        /// Declared `maxProtocolVersion`.
        max: u32,
    },
    /// A service name does not match `^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9._-]*$`.
    #[error(
        "invalid service name {0:?}: it must start with a letter (or '_' and a letter or digit) and contain only letters, digits, '.', '_' and '-'"
    )]
    InvalidServiceName(String),
    /// A handler name does not match `^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*$`.
    #[error(
        "invalid handler name {handler:?} in service {service}: it must start with a letter (or '_' and a letter or digit) and contain only letters, digits and '_'"
    )]
    InvalidHandlerName {
        /// The service.
        service: String,
        /// The offending name.
        handler: String,
    },
    /// A service is declared twice.
    #[error("service {0} is declared more than once")]
    DuplicateService(String),
    /// A handler is declared twice in one service.
    #[error("handler {handler} is declared more than once in service {service}")]
    DuplicateHandler {
        /// The service.
        service: String,
        /// The handler.
        handler: String,
    },
    /// A duration or factor outside what perdure accepts.
    #[error("{field} of {place} is {value}: {reason}")]
    OutOfRange {
        /// `service` or `service/handler`.
        place: String,
        /// The manifest field, as the manifest names it.
        field: &'static str,
        /// The value declared.
        value: String,
        /// What the limit is.
        reason: String,
    },
    /// A handler type that its service type does not allow.
    #[error(
        "handler {service}/{handler} has type {}, which a {} does not allow{}",
        .handler_ty.as_str(),
        .service_ty.as_str(),
        allowed_handler_types(.service_ty)
    )]
    HandlerTypeNotAllowed {
        /// The service.
        service: String,
        /// The handler.
        handler: String,
        /// The service's type.
        service_ty: ServiceType,
        /// The declared handler type.
        handler_ty: HandlerType,
    },
}

fn allowed_handler_types(service_ty: &ServiceType) -> &'static str {
    match service_ty {
        ServiceType::Service => " (SERVICE handlers have no type)",
        ServiceType::VirtualObject => " (use EXCLUSIVE or SHARED)",
        ServiceType::Workflow => " (use WORKFLOW or SHARED)",
    }
}

/// Parses and validates a discovery response.
///
/// `content_type` is the response's `content-type` header; it must be exactly one of
/// `application/vnd.restate.endpointmanifest.v{1,2,3,4}+json`.
pub fn parse_manifest(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, ManifestError> {
    if content_type.and_then(manifest_version).is_none() {
        return Err(ManifestError::ContentType { received: content_type.map(str::to_owned) });
    }
    let json: serde_json::Value = serde_json::from_slice(body)?;
    let object = json.as_object().ok_or(ManifestError::NotAnObject)?;
    if object.get("protocolMode").is_none_or(serde_json::Value::is_null) {
        return Err(ManifestError::MissingProtocolMode);
    }
    let manifest: Manifest = serde_json::from_value(json)?;
    validate(&manifest)?;
    Ok(manifest)
}

fn validate(manifest: &Manifest) -> Result<(), ManifestError> {
    let (min, max) = (manifest.min_protocol_version, manifest.max_protocol_version);
    if min < 1 || min > max || max > i32::MAX as u32 {
        return Err(ManifestError::InvalidVersionRange { min, max });
    }
    if choose_version(min, max).is_none() {
        return Err(ManifestError::UnsupportedVersions { min, max });
    }
    let mut service_names = BTreeSet::new();
    for service in &manifest.services {
        if !is_valid_name(&service.name, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(ManifestError::InvalidServiceName(service.name.clone()));
        }
        if !service_names.insert(service.name.as_str()) {
            return Err(ManifestError::DuplicateService(service.name.clone()));
        }
        let mut handler_names = BTreeSet::new();
        for handler in &service.handlers {
            if !is_valid_name(&handler.name, |c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ManifestError::InvalidHandlerName {
                    service: service.name.clone(),
                    handler: handler.name.clone(),
                });
            }
            if !handler_names.insert(handler.name.as_str()) {
                return Err(ManifestError::DuplicateHandler {
                    service: service.name.clone(),
                    handler: handler.name.clone(),
                });
            }
            check_handler_type(service, handler)?;
            let place = format!("{}/{}", service.name, handler.name);
            check_settings(&place, &handler.settings)?;
            if let Some(ms) = handler.workflow_completion_retention {
                check_ms(&place, "workflowCompletionRetention", ms)?;
            }
        }
        check_settings(&service.name, &service.settings)?;
    }
    Ok(())
}

/// Durations (ms) are at most [`crate::durations::MAX`]; the retry factor is at least 1.
fn check_settings(place: &str, s: &ManifestSettings) -> Result<(), ManifestError> {
    let durations = [
        ("inactivityTimeout", s.inactivity_timeout),
        ("abortTimeout", s.abort_timeout),
        ("journalRetention", s.journal_retention),
        ("idempotencyRetention", s.idempotency_retention),
        ("retryPolicyInitialInterval", s.retry_policy_initial_interval),
        ("retryPolicyMaxInterval", s.retry_policy_max_interval),
    ];
    for (field, value) in durations {
        if let Some(ms) = value {
            check_ms(place, field, ms)?;
        }
    }
    if let Some(f) = s.retry_policy_exponentiation_factor
        && !(f.is_finite() && f >= 1.0)
    {
        return Err(ManifestError::OutOfRange {
            place: place.to_owned(),
            field: "retryPolicyExponentiationFactor",
            value: f.to_string(),
            reason: "it must be a number of at least 1".into(),
        });
    }
    Ok(())
}

fn check_ms(place: &str, field: &'static str, ms: u64) -> Result<(), ManifestError> {
    crate::durations::check_ms(ms).map(|_| ()).map_err(|reason| ManifestError::OutOfRange {
        place: place.to_owned(),
        field,
        value: format!("{ms} ms"),
        reason,
    })
}

/// `^([a-zA-Z]|_[a-zA-Z0-9])<rest>*$`, where `rest` accepts the remaining characters.
fn is_valid_name(name: &str, rest: impl Fn(char) -> bool) -> bool {
    let mut chars = name.chars();
    let head_ok = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => true,
        Some('_') => chars.next().is_some_and(|c| c.is_ascii_alphanumeric()),
        _ => false,
    };
    head_ok && chars.all(rest)
}

fn check_handler_type(service: &ManifestService, handler: &ManifestHandler) -> Result<(), ManifestError> {
    let Some(handler_ty) = handler.ty else {
        return Ok(());
    };
    let allowed = match service.ty {
        ServiceType::Service => false,
        ServiceType::VirtualObject => {
            matches!(handler_ty, HandlerType::Exclusive | HandlerType::Shared)
        }
        ServiceType::Workflow => matches!(handler_ty, HandlerType::Workflow | HandlerType::Shared),
    };
    if allowed {
        Ok(())
    } else {
        Err(ManifestError::HandlerTypeNotAllowed {
            service: service.name.clone(),
            handler: handler.name.clone(),
            service_ty: service.ty,
            handler_ty,
        })
    }
}

/// Deserializes `null` as the type's default (SDKs may send `"metadata": null`).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests;
