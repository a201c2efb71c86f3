//! The schema's data: deployments, service revisions, handlers, and the effective settings
//! (retention, timeouts, retry policy) resolved from manifest overrides and server defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::records::{HandlerKind, OnMaxAttempts, Retention, RetryPolicy, ServiceKind, Target};
use crate::ids::DeploymentId;
use crate::protocol::manifest::{HandlerType, Manifest, ProtocolMode, ServiceType};

/// Everything registered.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Schema {
    pub deployments: BTreeMap<DeploymentId, Deployment>,
    /// The latest revision of every service: where its new invocations go.
    pub services: BTreeMap<String, ServiceRevision>,
    /// Services of which a share of new invocations goes to another deployment (a canary).
    #[serde(default)]
    pub ramps: BTreeMap<String, Ramp>,
    /// The deployments each service's latest revision was on, oldest first (for rollback).
    #[serde(default)]
    pub history: BTreeMap<String, Vec<DeploymentId>>,
}

/// A share of a service's new invocations that goes to another deployment than its latest
/// revision's: chosen once per invocation (per key for objects and workflows), then pinned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ramp {
    pub deployment: DeploymentId,
    /// 1..=99.
    pub percent: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpVersion {
    Http11,
    Http2,
}

impl HttpVersion {
    pub fn as_str(&self) -> &'static str {
        match self {
            HttpVersion::Http11 => "HTTP/1.1",
            HttpVersion::Http2 => "HTTP/2.0",
        }
    }
}

/// Where a deployment lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    Http { uri: String, http_version: HttpVersion },
    Lambda { arn: String, assume_role_arn: Option<String> },
}

impl Endpoint {
    /// The address as users registered it (normalised URI or ARN).
    pub fn address(&self) -> &str {
        match self {
            Endpoint::Http { uri, .. } => uri,
            Endpoint::Lambda { arn, .. } => arn,
        }
    }

    /// A Lambda ARN qualified by an alias (not a version, not `$LATEST`).
    pub fn is_lambda_alias(&self) -> bool {
        match self {
            Endpoint::Http { .. } => false,
            Endpoint::Lambda { arn, .. } => {
                arn.rsplit(':').next().is_some_and(|q| q != "$LATEST" && !q.bytes().all(|b| b.is_ascii_digit()))
            }
        }
    }
}

/// One registered deployment. Immutable, except for headers and metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deployment {
    pub id: DeploymentId,
    pub endpoint: Endpoint,
    pub protocol_mode: ProtocolMode,
    pub additional_headers: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    /// ms since the Unix epoch.
    pub created_at: u64,
    pub min_protocol_version: u32,
    pub max_protocol_version: u32,
    pub sdk_version: Option<String>,
    /// The services as registered with this deployment.
    pub services: Vec<ServiceRevision>,
    /// The manifest discovery returned, to tell whether the same endpoint changed.
    pub manifest: Manifest,
    /// An emergency stop: no attempt starts on it; its invocations wait as paused until it
    /// is resumed.
    #[serde(default)]
    pub paused: bool,
    /// A Lambda alias deployment: the function versions seen behind the alias, as checked.
    #[serde(default, skip_serializing_if = "LambdaVersions::is_empty")]
    pub lambda_versions: LambdaVersions,
}

/// The function versions that ran behind a Lambda alias, each checked against the
/// deployment's registered manifest the first time it ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaVersions {
    /// Version → what its check found.
    pub seen: BTreeMap<String, LambdaVersionCheck>,
    /// Set while the alias points at a version that failed its check: new invocations go to
    /// this version (the newest that passed) instead of following the alias.
    pub held_at: Option<String>,
}

impl LambdaVersions {
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty() && self.held_at.is_none()
    }
}

/// One function version behind an alias, as checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaVersionCheck {
    /// Serves the registered handlers unchanged (or only with additions).
    pub compatible: bool,
    /// How its manifest differs from the registered one (empty: identical).
    pub changes: Vec<String>,
    /// ms since the Unix epoch.
    pub seen_at: u64,
}

/// Retry policy settings as users see them (durations in ms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetrySettings {
    pub initial_interval: u64,
    pub exponentiation_factor: f64,
    /// `None`: unlimited.
    pub max_attempts: Option<u32>,
    pub max_interval: u64,
    pub on_max_attempts: OnMaxAttempts,
}

impl From<&RetrySettings> for RetryPolicy {
    fn from(s: &RetrySettings) -> Self {
        RetryPolicy {
            initial_interval_ms: s.initial_interval,
            factor: s.exponentiation_factor,
            max_interval_ms: s.max_interval,
            max_attempts: s.max_attempts,
            on_max_attempts: s.on_max_attempts,
        }
    }
}

/// Handler-level overrides of the retry policy (manifest v4).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RetryOverrides {
    pub initial_interval: Option<u64>,
    pub exponentiation_factor: Option<f64>,
    pub max_attempts: Option<u32>,
    pub max_interval: Option<u64>,
    pub on_max_attempts: Option<OnMaxAttempts>,
}

impl RetryOverrides {
    pub fn is_empty(&self) -> bool {
        *self == RetryOverrides::default()
    }

    pub fn apply(&self, base: &RetrySettings) -> RetrySettings {
        RetrySettings {
            initial_interval: self.initial_interval.unwrap_or(base.initial_interval),
            exponentiation_factor: self.exponentiation_factor.unwrap_or(base.exponentiation_factor),
            max_attempts: self.max_attempts.or(base.max_attempts),
            max_interval: self.max_interval.unwrap_or(base.max_interval),
            on_max_attempts: self.on_max_attempts.unwrap_or(base.on_max_attempts),
        }
    }
}

/// What request bodies a handler accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum InputRules {
    /// No input declared: any body, or none.
    Any,
    /// `input: {}`: no body and no content type.
    Empty,
    /// A body of this content type (`type/subtype`, wildcards allowed); without a body too
    /// when not `required`.
    ContentType { content_type: String, required: bool, json_schema: Option<serde_json::Value> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputRules {
    pub content_type: Option<String>,
    pub set_content_type_if_empty: bool,
    pub json_schema: Option<serde_json::Value>,
}

/// Per-handler settings that override the service's (ms).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HandlerOverrides {
    pub idempotency_retention: Option<u64>,
    pub journal_retention: Option<u64>,
    pub workflow_completion_retention: Option<u64>,
    pub inactivity_timeout: Option<u64>,
    pub abort_timeout: Option<u64>,
    pub enable_lazy_state: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HandlerSchema {
    pub name: String,
    pub ty: Option<HandlerType>,
    pub public: bool,
    pub documentation: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub input: InputRules,
    pub output: OutputRules,
    pub overrides: HandlerOverrides,
    pub retry: RetryOverrides,
}

/// A service as served by one deployment, with its effective settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceRevision {
    pub name: String,
    pub ty: ServiceType,
    pub revision: u32,
    pub deployment_id: DeploymentId,
    pub handlers: Vec<HandlerSchema>,
    pub public: bool,
    pub documentation: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub idempotency_retention: u64,
    pub workflow_completion_retention: Option<u64>,
    pub journal_retention: u64,
    pub inactivity_timeout: u64,
    pub abort_timeout: u64,
    pub enable_lazy_state: bool,
    pub retry_policy: RetrySettings,
}

impl ServiceRevision {
    pub fn handler(&self, name: &str) -> Option<&HandlerSchema> {
        self.handlers.iter().find(|h| h.name == name)
    }

    pub fn kind(&self) -> ServiceKind {
        match self.ty {
            ServiceType::Service => ServiceKind::Service,
            ServiceType::VirtualObject => ServiceKind::VirtualObject,
            ServiceType::Workflow => ServiceKind::Workflow,
        }
    }

    pub fn is_keyed(&self) -> bool {
        self.ty != ServiceType::Service
    }

    /// The engine's view of a call to `handler` (with `key` for keyed services).
    pub fn target(&self, handler: &HandlerSchema, key: Option<String>) -> Target {
        let handler_kind = match handler.ty {
            None => HandlerKind::Unkeyed,
            Some(HandlerType::Exclusive) => HandlerKind::Exclusive,
            Some(HandlerType::Shared) => HandlerKind::Shared,
            Some(HandlerType::Workflow) => HandlerKind::Workflow,
        };
        Target {
            service: self.name.clone(),
            handler: handler.name.clone(),
            key,
            service_kind: self.kind(),
            handler_kind,
        }
    }

    pub fn retry_policy(&self, handler: &HandlerSchema) -> RetryPolicy {
        RetryPolicy::from(&handler.retry.apply(&self.retry_policy))
    }

    /// How long results and journals of invocations of `handler` are kept.
    pub fn retention(&self, handler: &HandlerSchema) -> Retention {
        let journal = handler.overrides.journal_retention.unwrap_or(self.journal_retention);
        let completion = if handler.ty == Some(HandlerType::Workflow) {
            handler
                .overrides
                .workflow_completion_retention
                .or(self.workflow_completion_retention)
                .unwrap_or(self.idempotency_retention)
        } else {
            handler.overrides.idempotency_retention.unwrap_or(self.idempotency_retention)
        };
        Retention { completion_ms: completion, journal_ms: journal }
    }

    pub fn inactivity_timeout(&self, handler: Option<&HandlerSchema>) -> u64 {
        handler.and_then(|h| h.overrides.inactivity_timeout).unwrap_or(self.inactivity_timeout)
    }

    pub fn abort_timeout(&self, handler: Option<&HandlerSchema>) -> u64 {
        handler.and_then(|h| h.overrides.abort_timeout).unwrap_or(self.abort_timeout)
    }

    pub fn lazy_state(&self, handler: Option<&HandlerSchema>) -> bool {
        handler.and_then(|h| h.overrides.enable_lazy_state).unwrap_or(self.enable_lazy_state)
    }
}

/// Server-wide defaults applied where a manifest sets nothing (ms).
#[derive(Clone, Debug, PartialEq)]
pub struct SchemaDefaults {
    pub idempotency_retention: u64,
    pub journal_retention: u64,
    pub workflow_completion_retention: u64,
    pub inactivity_timeout: u64,
    pub abort_timeout: u64,
    pub retry_policy: RetrySettings,
}

impl Default for SchemaDefaults {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600 * 1000;
        Self {
            idempotency_retention: DAY,
            journal_retention: DAY,
            workflow_completion_retention: DAY,
            inactivity_timeout: 60_000,
            abort_timeout: 600_000,
            retry_policy: RetrySettings {
                initial_interval: 500,
                exponentiation_factor: 2.0,
                max_attempts: Some(70),
                max_interval: 60_000,
                on_max_attempts: OnMaxAttempts::Pause,
            },
        }
    }
}

impl Schema {
    /// The latest revision of a service and the deployment serving it.
    pub fn service(&self, name: &str) -> Option<&ServiceRevision> {
        self.services.get(name)
    }

    pub fn deployment_of(&self, service: &str) -> Option<&Deployment> {
        self.services.get(service).and_then(|s| self.deployments.get(&s.deployment_id))
    }

    /// The revision of `service` that `deployment` serves, if it does.
    pub fn revision_on(&self, deployment: &DeploymentId, service: &str) -> Option<&ServiceRevision> {
        self.deployments.get(deployment)?.services.iter().find(|s| s.name == service)
    }

    /// The revision a new invocation of `service` goes to: the latest, or the ramp's
    /// deployment for its share. Objects and workflows split by key, so one key's calls stay
    /// on one deployment during a ramp; other services by invocation.
    pub fn route(&self, service: &str, key: Option<&str>, id: &crate::ids::InvocationId) -> Option<&ServiceRevision> {
        let latest = self.services.get(service)?;
        let Some(ramp) = self.ramps.get(service) else { return Some(latest) };
        let bucket = match key {
            Some(key) => crate::ids::partition_key_of(format!("ramp\0{service}\0{key}").as_bytes()),
            None => crate::ids::partition_key_of(id.to_string().as_bytes()),
        } % 100;
        if bucket < u64::from(ramp.percent) {
            self.revision_on(&ramp.deployment, service).or(Some(latest))
        } else {
            Some(latest)
        }
    }

    /// The revision number the next revision of `service` gets: past every one any
    /// deployment carries (an unpromoted registration takes one too).
    pub fn next_revision(&self, service: &str) -> u32 {
        let on_deployments = self.deployments.values().flat_map(|d| d.services.iter()).filter(|s| s.name == service);
        on_deployments.chain(self.services.get(service)).map(|s| s.revision).max().unwrap_or(0) + 1
    }

    /// The services whose new invocations (all, or a ramp's share) go to `deployment`.
    pub fn routed_to(&self, deployment: &DeploymentId) -> Vec<String> {
        let mut names: Vec<String> =
            self.services.values().filter(|s| &s.deployment_id == deployment).map(|s| s.name.clone()).collect();
        for (name, ramp) in &self.ramps {
            if &ramp.deployment == deployment && !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// Whether new invocations of some service go to `deployment` now (latest revision or ramp).
    pub fn is_routed_to(&self, deployment: &DeploymentId) -> bool {
        self.services.values().any(|s| &s.deployment_id == deployment)
            || self.ramps.values().any(|r| &r.deployment == deployment)
    }

    /// Whether new invocations of some service ever went to `deployment` (registered and
    /// promoted, promoted later, or rolled back to), as far as the routing history goes.
    pub fn ever_routed(&self, deployment: &DeploymentId) -> bool {
        self.history.values().any(|h| h.contains(deployment))
    }

    /// Names of services users can call through ingress.
    pub fn public_services(&self) -> impl Iterator<Item = &str> {
        self.services.values().filter(|s| s.public).map(|s| s.name.as_str())
    }
}
