//! Registering a deployment: what Restate 1.7 does, and where perdure is stricter because a
//! deployment is immutable (see ARCHITECTURE.md, "Where perdure differs").

use std::collections::BTreeMap;

use super::SchemaChange;
use super::model::*;
use crate::ids::DeploymentId;
use crate::protocol::manifest::{HandlerType, Manifest, ManifestHandler, ManifestService, ManifestSettings, ProtocolMode};
use crate::storage::StorageError;

pub struct RegisterRequest {
    pub endpoint: Endpoint,
    pub additional_headers: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub force: bool,
    pub breaking: bool,
    pub dry_run: bool,
    pub manifest: Manifest,
    pub sdk_version: Option<String>,
    pub now: u64,
}

#[derive(Debug)]
pub enum RegisterOutcome {
    /// A new deployment (201).
    Created(Deployment),
    /// The same endpoint with the same manifest is registered already (200).
    Unchanged(Deployment),
    /// `force`: the existing deployment was overwritten in place (200).
    Overwritten(Deployment),
}

impl RegisterOutcome {
    pub fn deployment(&self) -> &Deployment {
        match self {
            RegisterOutcome::Created(d) | RegisterOutcome::Unchanged(d) | RegisterOutcome::Overwritten(d) => d,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// A breaking change or an immutable endpoint with new code (409).
    #[error("{message}")]
    Conflict { message: String, code: Option<&'static str> },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Computes the change registering `req` makes; `None` when nothing changes (unchanged or
/// dry run).
pub fn register(
    schema: &Schema,
    req: RegisterRequest,
    defaults: &SchemaDefaults,
) -> Result<(Option<SchemaChange>, RegisterOutcome), RegistrationError> {
    let existing = schema
        .deployments
        .values()
        .filter(|d| d.endpoint.address() == req.endpoint.address())
        .max_by_key(|d| d.created_at);

    if let Some(existing) = existing
        && !req.force
    {
        let changes = manifest_changes(&existing.manifest, &req.manifest);
        if changes.is_empty() {
            return Ok((None, RegisterOutcome::Unchanged(existing.clone())));
        }
        return Err(RegistrationError::Conflict {
            message: format!(
                "deployment {} at '{}' is already registered with a different manifest ({}). \
                 A deployment is immutable: serve the new code at a new URL (or Lambda version) and register that, \
                 or pass force=true to overwrite it",
                existing.id,
                existing.endpoint.address(),
                changes.join("; ")
            ),
            code: None,
        });
    }

    let id = match (existing, req.dry_run) {
        (Some(existing), false) => existing.id,
        _ => DeploymentId::generate(),
    };

    let mut services = Vec::with_capacity(req.manifest.services.len());
    let mut breaking = Vec::new();
    for m in &req.manifest.services {
        let previous = schema.services.get(&m.name);
        if let Some(prev) = previous
            && prev.ty != m.ty
        {
            breaking.push(format!(
                "the service '{}' changes type from {} to {}",
                m.name,
                prev.ty.as_str(),
                m.ty.as_str()
            ));
        }
        let revision = previous.map_or(1, |p| p.revision + 1);
        services.push(service_revision(m, revision, id, req.manifest.protocol_mode, defaults));
    }
    if !breaking.is_empty() && !(req.breaking || req.force) {
        return Err(RegistrationError::Conflict {
            message: format!(
                "[META0006] Cannot update the schema: {}. Pass breaking=true (the CLI's --breaking) to accept it",
                breaking.join("; ")
            ),
            code: Some("META0006"),
        });
    }

    let deployment = Deployment {
        id,
        endpoint: req.endpoint,
        protocol_mode: req.manifest.protocol_mode,
        additional_headers: req.additional_headers,
        metadata: req.metadata,
        created_at: req.now,
        min_protocol_version: req.manifest.min_protocol_version,
        max_protocol_version: req.manifest.max_protocol_version,
        sdk_version: req.sdk_version,
        services: services.clone(),
        manifest: req.manifest,
    };
    let outcome = if existing.is_some() {
        RegisterOutcome::Overwritten(deployment.clone())
    } else {
        RegisterOutcome::Created(deployment.clone())
    };
    if req.dry_run {
        return Ok((None, outcome));
    }
    let latest = services.into_iter().map(|s| s.name).collect();
    Ok((Some(SchemaChange::PutDeployment { deployment: Box::new(deployment), latest }), outcome))
}

/// What differs between two manifests of one endpoint, in words.
fn manifest_changes(old: &Manifest, new: &Manifest) -> Vec<String> {
    let mut changes = Vec::new();
    if old.protocol_mode != new.protocol_mode {
        changes.push(format!("protocol mode {:?} -> {:?}", old.protocol_mode, new.protocol_mode));
    }
    if (old.min_protocol_version, old.max_protocol_version) != (new.min_protocol_version, new.max_protocol_version) {
        changes.push(format!(
            "protocol versions {}..{} -> {}..{}",
            old.min_protocol_version, old.max_protocol_version, new.min_protocol_version, new.max_protocol_version
        ));
    }
    for s in &new.services {
        match old.service(&s.name) {
            None => changes.push(format!("service '{}' added", s.name)),
            Some(o) if serde_json::to_value(o).ok() != serde_json::to_value(s).ok() => {
                changes.push(format!("service '{}' changed", s.name))
            }
            Some(_) => {}
        }
    }
    for s in &old.services {
        if new.service(&s.name).is_none() {
            changes.push(format!("service '{}' removed", s.name));
        }
    }
    changes
}

fn service_revision(
    m: &ManifestService,
    revision: u32,
    deployment_id: DeploymentId,
    mode: ProtocolMode,
    defaults: &SchemaDefaults,
) -> ServiceRevision {
    let retry = retry_overrides(&m.settings);
    ServiceRevision {
        name: m.name.clone(),
        ty: m.ty,
        revision,
        deployment_id,
        handlers: m.handlers.iter().map(|h| handler_schema(h, m)).collect(),
        public: !m.settings.ingress_private.unwrap_or(false),
        documentation: m.documentation.clone(),
        metadata: m.metadata.clone(),
        idempotency_retention: m.settings.idempotency_retention.unwrap_or(defaults.idempotency_retention),
        workflow_completion_retention: (m.ty == crate::protocol::manifest::ServiceType::Workflow).then(|| {
            m.handlers
                .iter()
                .find_map(|h| h.workflow_completion_retention)
                .unwrap_or(defaults.workflow_completion_retention)
        }),
        journal_retention: m.settings.journal_retention.unwrap_or(defaults.journal_retention),
        // Request/response deployments cannot keep a stream open: Restate reports 0s.
        inactivity_timeout: match mode {
            ProtocolMode::RequestResponse => 0,
            ProtocolMode::BidiStream => m.settings.inactivity_timeout.unwrap_or(defaults.inactivity_timeout),
        },
        abort_timeout: m.settings.abort_timeout.unwrap_or(defaults.abort_timeout),
        enable_lazy_state: m.settings.enable_lazy_state.unwrap_or(false),
        retry_policy: retry.apply(&defaults.retry_policy),
    }
}

/// The retry policy settings a manifest declares (for a service or a handler).
fn retry_overrides(s: &ManifestSettings) -> RetryOverrides {
    RetryOverrides {
        initial_interval: s.retry_policy_initial_interval,
        exponentiation_factor: s.retry_policy_exponentiation_factor,
        max_attempts: s.retry_policy_max_attempts,
        max_interval: s.retry_policy_max_interval,
        on_max_attempts: s.retry_policy_on_max_attempts.map(|o| match o {
            crate::protocol::manifest::OnMaxAttempts::Pause => crate::engine::records::OnMaxAttempts::Pause,
            crate::protocol::manifest::OnMaxAttempts::Kill => crate::engine::records::OnMaxAttempts::Kill,
        }),
    }
}

fn handler_schema(h: &ManifestHandler, service: &ManifestService) -> HandlerSchema {
    let input = match &h.input {
        None => InputRules::Any,
        Some(i) => match &i.content_type {
            None => InputRules::Empty,
            Some(ct) => InputRules::ContentType {
                content_type: ct.clone(),
                required: i.required.unwrap_or(false),
                json_schema: i.json_schema.clone(),
            },
        },
    };
    let output = h.output_or_default();
    HandlerSchema {
        name: h.name.clone(),
        ty: h.effective_ty(service.ty),
        public: !h.settings.ingress_private.or(service.settings.ingress_private).unwrap_or(false),
        documentation: h.documentation.clone(),
        metadata: h.metadata.clone(),
        input,
        output: OutputRules {
            content_type: output.content_type,
            set_content_type_if_empty: output.set_content_type_if_empty.unwrap_or(false),
            json_schema: output.json_schema,
        },
        overrides: HandlerOverrides {
            idempotency_retention: h.settings.idempotency_retention,
            journal_retention: h.settings.journal_retention,
            workflow_completion_retention: if h.effective_ty(service.ty) == Some(HandlerType::Workflow) {
                h.workflow_completion_retention
            } else {
                None
            },
            inactivity_timeout: h.settings.inactivity_timeout,
            abort_timeout: h.settings.abort_timeout,
            enable_lazy_state: h.settings.enable_lazy_state,
        },
        retry: retry_overrides(&h.settings),
    }
}
