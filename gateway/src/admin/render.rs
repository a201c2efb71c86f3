//! The JSON shapes of the admin API (Restate's admin-rest-model, field for field).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::durations::{format_compact, rfc3339_nanos};
use crate::engine::records::DrainCounts;
use crate::engine::records::OnMaxAttempts;
use crate::protocol::manifest::{HandlerType, ProtocolMode, ServiceType};
use crate::schema::{
    Deployment, DrainStatus, Endpoint, HandlerSchema, InputRules, RetryOverrides, RetrySettings, ServiceRevision,
};

fn friendly(ms: u64) -> String {
    format_compact(Duration::from_millis(ms))
}

fn is_empty_map(m: &BTreeMap<String, String>) -> bool {
    m.is_empty()
}

#[derive(Serialize)]
pub struct RetryPolicyJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exponentiation_factor: Option<f64>,
    pub max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_max_attempts: Option<&'static str>,
}

fn on_max(o: OnMaxAttempts) -> &'static str {
    match o {
        OnMaxAttempts::Pause => "Pause",
        OnMaxAttempts::Kill => "Kill",
    }
}

impl RetryPolicyJson {
    fn service(s: &RetrySettings) -> Self {
        Self {
            initial_interval: Some(friendly(s.initial_interval)),
            exponentiation_factor: Some(s.exponentiation_factor),
            max_attempts: s.max_attempts,
            max_interval: Some(friendly(s.max_interval)),
            on_max_attempts: Some(on_max(s.on_max_attempts)),
        }
    }

    fn handler(o: &RetryOverrides) -> Self {
        Self {
            initial_interval: o.initial_interval.map(friendly),
            exponentiation_factor: o.exponentiation_factor,
            max_attempts: o.max_attempts,
            max_interval: o.max_interval.map(friendly),
            on_max_attempts: o.on_max_attempts.map(on_max),
        }
    }
}

#[derive(Serialize)]
pub struct HandlerJson {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ty: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documentation: Option<String>,
    #[serde(skip_serializing_if = "is_empty_map")]
    pub metadata: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_retention: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_retention: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactivity_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_lazy_state: Option<bool>,
    pub public: bool,
    pub input_description: String,
    pub output_description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_json_schema: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_json_schema: Option<serde_json::Value>,
    pub retry_policy: RetryPolicyJson,
}

impl HandlerJson {
    pub fn new(h: &HandlerSchema) -> Self {
        let (input_description, input_json_schema) = match &h.input {
            InputRules::Any => (r#"one of ["none", "*/*"]"#.to_owned(), None),
            InputRules::Empty => ("none".to_owned(), None),
            InputRules::ContentType { content_type, json_schema, .. } => (content_type.clone(), json_schema.clone()),
        };
        Self {
            name: h.name.clone(),
            ty: h.ty.map(|t| match t {
                HandlerType::Exclusive => "Exclusive",
                HandlerType::Shared => "Shared",
                HandlerType::Workflow => "Workflow",
            }),
            documentation: h.documentation.clone(),
            metadata: h.metadata.clone(),
            idempotency_retention: h.overrides.idempotency_retention.map(friendly),
            journal_retention: h.overrides.journal_retention.map(friendly),
            inactivity_timeout: h.overrides.inactivity_timeout.map(friendly),
            abort_timeout: h.overrides.abort_timeout.map(friendly),
            enable_lazy_state: h.overrides.enable_lazy_state,
            public: h.public,
            input_description,
            output_description: h.output.content_type.clone().unwrap_or_else(|| "none".to_owned()),
            input_json_schema,
            output_json_schema: h.output.json_schema.clone(),
            retry_policy: RetryPolicyJson::handler(&h.retry),
        }
    }
}

#[derive(Serialize)]
pub struct ServiceJson {
    pub name: String,
    pub ty: &'static str,
    pub handlers: Vec<HandlerJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documentation: Option<String>,
    #[serde(skip_serializing_if = "is_empty_map")]
    pub metadata: BTreeMap<String, String>,
    pub deployment_id: String,
    /// The older name of `deployment_id` (Restate's versioning docs still show it).
    pub endpoint_id: String,
    pub revision: u32,
    pub public: bool,
    pub idempotency_retention: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_completion_retention: Option<String>,
    pub journal_retention: String,
    pub inactivity_timeout: String,
    pub abort_timeout: String,
    pub enable_lazy_state: bool,
    pub retry_policy: RetryPolicyJson,
    /// perdure: a share of new invocations going to another deployment (a canary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampJson>,
}

#[derive(Serialize)]
pub struct RampJson {
    pub deployment_id: String,
    pub percent: u8,
}

impl RampJson {
    pub fn new(r: &crate::schema::Ramp) -> Self {
        Self { deployment_id: r.deployment.to_string(), percent: r.percent }
    }
}

impl ServiceJson {
    /// With the service's ramp, if one is running.
    pub fn with_ramp(mut self, ramp: Option<&crate::schema::Ramp>) -> Self {
        self.ramp = ramp.map(RampJson::new);
        self
    }

    pub fn new(s: &ServiceRevision) -> Self {
        Self {
            name: s.name.clone(),
            ty: match s.ty {
                ServiceType::Service => "Service",
                ServiceType::VirtualObject => "VirtualObject",
                ServiceType::Workflow => "Workflow",
            },
            handlers: s.handlers.iter().map(HandlerJson::new).collect(),
            documentation: s.documentation.clone(),
            metadata: s.metadata.clone(),
            deployment_id: s.deployment_id.to_string(),
            endpoint_id: s.deployment_id.to_string(),
            revision: s.revision,
            public: s.public,
            idempotency_retention: friendly(s.idempotency_retention),
            workflow_completion_retention: s.workflow_completion_retention.map(friendly),
            journal_retention: friendly(s.journal_retention),
            inactivity_timeout: friendly(s.inactivity_timeout),
            abort_timeout: friendly(s.abort_timeout),
            enable_lazy_state: s.enable_lazy_state,
            retry_policy: RetryPolicyJson::service(&s.retry_policy),
            ramp: None,
        }
    }
}

#[derive(Serialize)]
pub struct ServiceNameRevision {
    pub name: String,
    pub revision: u32,
}

/// A deployment; `S` is name/revision pairs (lists) or full service metadata (details).
#[derive(Serialize)]
pub struct DeploymentJson<S: Serialize> {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assume_role_arn: Option<String>,
    /// Lambda: `Zstd` when the manifest allows compressed payloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<&'static str>,
    #[serde(skip_serializing_if = "is_empty_map")]
    pub additional_headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_empty_map")]
    pub metadata: BTreeMap<String, String>,
    pub created_at: String,
    pub min_protocol_version: u32,
    pub max_protocol_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    pub services: Vec<S>,
    /// perdure's own fields (the `restate` CLI ignores them).
    #[serde(flatten)]
    pub drain: Drain,
    /// perdure: no attempt starts on it until it is resumed.
    pub paused: bool,
    /// perdure, a Lambda alias: each function version seen behind it, as checked (with what
    /// is pinned to it, in a deployment's details).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lambda_versions: Vec<LambdaVersionJson>,
    /// perdure, a Lambda alias: new invocations go to this version, not the alias, because
    /// the alias points at one that failed its check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_at_version: Option<String>,
}

/// One function version behind a Lambda alias.
#[derive(Serialize)]
pub struct LambdaVersionJson {
    pub version: String,
    /// Serves the registered handlers (unchanged, or only with additions).
    pub compatible: bool,
    /// How it differs from the registered manifest, or what breaks.
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen_at: Option<String>,
    /// Not-completed invocations pinned to it (details only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_invocations: Option<u64>,
}

/// Whether a deployment can go: perdure's own fields on every deployment.
#[derive(Clone, Debug, Serialize)]
pub struct Drain {
    /// `active`: new invocations of some service go to it (`latest_for`: its latest revision
    /// or a ramp); `draining`: not any more, but invocations are still pinned to it;
    /// `drained`: neither, it can go; `inactive`: registered without promotion and never
    /// routed to (nothing pinned either: it can go, but `dp prune` leaves it).
    pub drain_status: DrainStatus,
    pub latest_for: Vec<String>,
    pub pinned_invocations: PinnedCounts,
}

/// Not-completed invocations pinned to a deployment, by where they stand.
#[derive(Clone, Debug, Serialize)]
pub struct PinnedCounts {
    pub total: u64,
    pub running: u64,
    pub suspended: u64,
    pub backing_off: u64,
    pub paused: u64,
    /// Not started yet, sent to this deployment with `x-perdure-deployment`: delayed ...
    pub scheduled: u64,
    /// ... or waiting in their key's inbox.
    pub inboxed: u64,
}

impl Drain {
    pub fn of(schema: &crate::schema::Schema, id: &crate::ids::DeploymentId, counts: &DrainCounts) -> Self {
        Drain {
            drain_status: DrainStatus::of(schema, id, counts.total()),
            latest_for: schema.routed_to(id),
            pinned_invocations: PinnedCounts {
                total: counts.total(),
                running: counts.running,
                suspended: counts.suspended,
                backing_off: counts.backing_off,
                paused: counts.paused,
                scheduled: counts.scheduled,
                inboxed: counts.inboxed,
            },
        }
    }
}

pub fn deployment<S: Serialize>(d: &Deployment, services: Vec<S>, drain: Drain) -> DeploymentJson<S> {
    let (uri, protocol_type, http_version, arn, assume_role_arn) = match &d.endpoint {
        Endpoint::Http { uri, http_version } => (
            Some(uri.clone()),
            Some(match d.protocol_mode {
                ProtocolMode::BidiStream => "BidiStream",
                ProtocolMode::RequestResponse => "RequestResponse",
            }),
            Some(http_version.as_str()),
            None,
            None,
        ),
        Endpoint::Lambda { arn, assume_role_arn } => (None, None, None, Some(arn.clone()), assume_role_arn.clone()),
    };
    let compression = match (&d.endpoint, d.manifest.lambda_compression.as_deref()) {
        (Endpoint::Lambda { .. }, Some("zstd")) => Some("Zstd"),
        _ => None,
    };
    let lambda_versions = d
        .lambda_versions
        .seen
        .iter()
        .map(|(version, check)| LambdaVersionJson {
            version: version.clone(),
            compatible: check.compatible,
            changes: check.changes.clone(),
            first_seen_at: Some(rfc3339_nanos(check.seen_at)),
            pinned_invocations: None,
        })
        .collect();
    DeploymentJson {
        id: d.id.to_string(),
        uri,
        protocol_type,
        http_version,
        arn,
        assume_role_arn,
        compression,
        additional_headers: d.additional_headers.clone(),
        metadata: d.metadata.clone(),
        created_at: rfc3339_nanos(d.created_at),
        min_protocol_version: d.min_protocol_version,
        max_protocol_version: d.max_protocol_version,
        sdk_version: d.sdk_version.clone(),
        services,
        drain,
        paused: d.paused,
        lambda_versions,
        held_at_version: d.lambda_versions.held_at.clone(),
    }
}

pub fn deployment_summary(d: &Deployment, drain: Drain) -> DeploymentJson<ServiceNameRevision> {
    let services = d.services.iter().map(|s| ServiceNameRevision { name: s.name.clone(), revision: s.revision });
    deployment(d, services.collect(), drain)
}

pub fn deployment_detail(d: &Deployment, drain: Drain) -> DeploymentJson<ServiceJson> {
    deployment(d, d.services.iter().map(ServiceJson::new).collect(), drain)
}

#[derive(Serialize)]
pub struct RegisterResponse {
    pub id: String,
    pub services: Vec<ServiceJson>,
    pub min_protocol_version: u32,
    pub max_protocol_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    /// perdure: what the registration changed (or would, in a dry run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<crate::schema::Change>,
}

impl RegisterResponse {
    pub fn with_changes(mut self, changes: &[crate::schema::Change]) -> Self {
        self.changes = changes.to_vec();
        self
    }

    pub fn new(d: &Deployment) -> Self {
        Self {
            id: d.id.to_string(),
            services: d.services.iter().map(ServiceJson::new).collect(),
            min_protocol_version: d.min_protocol_version,
            max_protocol_version: d.max_protocol_version,
            sdk_version: d.sdk_version.clone(),
            changes: Vec::new(),
        }
    }
}

/// One invocation as `GET /invocations/{id}` shows it (perdure; the same facts, and the
/// same status, as SQL's `sys_invocation`).
pub fn invocation(id: &crate::ids::InvocationId, s: &crate::engine::records::InvocationStatus) -> serde_json::Value {
    use crate::engine::records::{InvocationResult, Phase};
    let t = &s.target;
    let time = |ms: Option<u64>| ms.map(rfc3339_nanos);
    let mut v = serde_json::json!({
        "id": id.to_string(),
        "target": t.display(),
        "target_service_name": t.service,
        "target_service_key": t.key,
        "target_handler_name": t.handler,
        "status": s.user_status(),
        "pinned_deployment_id": s.deployment.as_ref().map(|p| p.deployment.to_string()),
        "pinned_service_revision": s.deployment.as_ref().map(|p| p.revision),
        "pinned_service_protocol_version": s.deployment.as_ref().map(|p| p.protocol_version),
        "pinned_lambda_version": s.deployment.as_ref().and_then(|p| p.executed_version.clone()),
        "requested_deployment_id": s.requested_deployment.map(|d| d.to_string()),
        "held_by_paused_deployment": s.held,
        "idempotency_key": s.idempotency_key,
        "journal_length": s.journal_len,
        "retry_count": s.attempt.retry_count,
        "attempts": s.attempt.attempt,
        "last_failure": s.attempt.last_failure.as_ref().map(|f| serde_json::json!({ "code": f.code, "message": f.message })),
        "next_retry_at": time(s.attempt.next_retry_at_ms),
        "created_at": rfc3339_nanos(s.timestamps.created_at),
        "modified_at": rfc3339_nanos(s.timestamps.modified_at),
        "scheduled_start_at": match s.phase { Phase::Scheduled { at_ms } => time(Some(at_ms)), _ => None },
        "running_at": time(s.timestamps.running_at),
        "completed_at": time(s.timestamps.completed_at),
    });
    if let Phase::Completed { result } = &s.phase {
        v["completion_result"] = match result {
            InvocationResult::Success(_) => "success".into(),
            InvocationResult::Failure { .. } => "failure".into(),
        };
        if let InvocationResult::Failure { code, message } = result {
            v["completion_failure"] = serde_json::json!({ "code": code, "message": message });
        }
    }
    v
}
