//! Registering a deployment: what Restate 1.7 does, and where perdure is stricter because a
//! deployment is immutable (see ARCHITECTURE.md, "Where perdure differs").

use std::collections::BTreeMap;

use super::SchemaChange;
use super::compat::{self, Change};
use super::model::*;
use crate::engine::records::handler_key;
use crate::ids::{DeploymentId, InvocationId};
use crate::protocol::manifest::{
    HandlerType, Manifest, ManifestHandler, ManifestService, ManifestSettings, ProtocolMode,
};
use crate::storage::StorageError;

pub struct RegisterRequest {
    pub endpoint: Endpoint,
    pub additional_headers: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub force: bool,
    pub breaking: bool,
    pub dry_run: bool,
    /// New invocations go to the new revisions (false: registered and checked, but only the
    /// `x-perdure-deployment` header or a later promote sends work there).
    pub promote: bool,
    pub manifest: Manifest,
    pub sdk_version: Option<String>,
    pub now: u64,
    /// A Lambda alias: the version discovery ran on, as the first one seen.
    pub lambda_versions: LambdaVersions,
}

/// What is in flight, as the checks need it: read from the partitions' counters and the
/// pinned index (O(partitions), not O(invocations)).
pub trait InFlight {
    /// Not-completed invocations (started or not) per `service/handler`.
    fn pending(&self) -> Result<BTreeMap<String, u64>, StorageError>;
    /// How many not-completed invocations are pinned to `deployment`, and up to `limit` of them.
    fn pinned(&self, deployment: &DeploymentId, limit: usize) -> Result<(u64, Vec<InvocationId>), StorageError>;
}

/// Invocation ids a refused registration lists, at most.
pub const LISTED: usize = 20;

#[derive(Debug)]
pub enum RegisterOutcome {
    /// A new deployment (201).
    Created(Deployment, Vec<Change>),
    /// The same endpoint with the same manifest is registered already (200).
    Unchanged(Deployment),
    /// `force`: the existing deployment was overwritten in place (200).
    Overwritten(Deployment, Vec<Change>),
}

impl RegisterOutcome {
    pub fn deployment(&self) -> &Deployment {
        match self {
            RegisterOutcome::Created(d, _) | RegisterOutcome::Unchanged(d) | RegisterOutcome::Overwritten(d, _) => d,
        }
    }

    /// What the registration changes (or would, in a dry run).
    pub fn changes(&self) -> &[Change] {
        match self {
            RegisterOutcome::Created(_, c) | RegisterOutcome::Overwritten(_, c) => c,
            RegisterOutcome::Unchanged(_) => &[],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// A breaking change or an immutable endpoint with new code (409). `changes` lists every
    /// change the registration would make; `invocations` some of those it would break.
    #[error("{message}")]
    Conflict { message: String, code: Option<&'static str>, changes: Vec<Change>, invocations: Vec<InvocationId> },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl RegistrationError {
    fn conflict(message: String) -> Self {
        RegistrationError::Conflict { message, code: None, changes: Vec::new(), invocations: Vec::new() }
    }
}

/// Computes the change registering `req` makes; `None` when nothing changes (unchanged or
/// dry run). A dry run is checked exactly like the real thing.
pub fn register(
    schema: &Schema,
    req: RegisterRequest,
    defaults: &SchemaDefaults,
    in_flight: &dyn InFlight,
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
        return Err(RegistrationError::conflict(format!(
            "deployment {} at '{}' is already registered with a different manifest ({}). \
             A deployment is immutable: serve the new code at a new URL (or Lambda version) and register that, \
             or pass force=true to overwrite it",
            existing.id,
            existing.endpoint.address(),
            changes.join("; ")
        )));
    }

    let id = match (existing, req.dry_run) {
        (Some(existing), false) => existing.id,
        _ => DeploymentId::generate(),
    };

    let pending = in_flight.pending()?;
    let mut services = Vec::with_capacity(req.manifest.services.len());
    let mut changes = Vec::new();
    for m in &req.manifest.services {
        let previous = schema.services.get(&m.name);
        let revision = schema.next_revision(&m.name);
        let service = service_revision(m, revision, id, req.manifest.protocol_mode, defaults);
        changes.extend(compat::changes(previous, &service, &pending));
        services.push(service);
    }

    // Overwriting in place: the services the old manifest had and the new one lacks go with
    // it, and the invocations pinned to it would run the new code.
    let mut dropped = Vec::new();
    if let Some(existing) = existing {
        for old in &existing.services {
            if req.manifest.service(&old.name).is_some()
                || schema.services.get(&old.name).is_none_or(|s| s.deployment_id != existing.id)
            {
                continue;
            }
            let waiting: u64 =
                old.handlers.iter().map(|h| pending.get(&handler_key(&old.name, &h.name)).copied().unwrap_or(0)).sum();
            let change = if waiting > 0 {
                format!("removed by the overwrite, while {waiting} invocations of it are not completed")
            } else {
                "removed by the overwrite".into()
            };
            changes.push(Change::new(&old.name, None, change, waiting > 0));
            dropped.push(old.name.clone());
        }
        // Behind a Lambda alias every invocation is pinned to the version it ran on: an
        // overwrite changes no code under them.
        let (pinned, sample) = if existing.endpoint.is_lambda_alias() {
            (0, Vec::new())
        } else {
            in_flight.pinned(&existing.id, LISTED)?
        };
        if pinned > 0 {
            let range = |min: u32, max: u32| format!("{min}..{max}");
            let mut what = format!(
                "{pinned} invocations are pinned to deployment {}, and overwriting it changes the code under them",
                existing.id
            );
            if (existing.min_protocol_version, existing.max_protocol_version)
                != (req.manifest.min_protocol_version, req.manifest.max_protocol_version)
            {
                what.push_str(&format!(
                    " (and its protocol versions, {} -> {})",
                    range(existing.min_protocol_version, existing.max_protocol_version),
                    range(req.manifest.min_protocol_version, req.manifest.max_protocol_version)
                ));
            }
            if !req.breaking {
                return Err(RegistrationError::Conflict {
                    message: format!(
                        "{what}. Register the new code at a new URL (or Lambda version) so they finish on theirs, \
                         or pass breaking=true as well as force=true to overwrite it anyway"
                    ),
                    code: None,
                    changes,
                    invocations: sample,
                });
            }
            changes.push(Change::new("", None, what, true));
        }
    }

    let changes = if req.breaking || req.force { changes } else { refuse_breaking(changes)? };

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
        // An overwrite keeps an emergency stop in place.
        paused: existing.is_some_and(|e| e.paused),
        lambda_versions: req.lambda_versions,
    };
    let outcome = if existing.is_some() {
        RegisterOutcome::Overwritten(deployment.clone(), changes)
    } else {
        RegisterOutcome::Created(deployment.clone(), changes)
    };
    if req.dry_run {
        return Ok((None, outcome));
    }
    // Unpromoted, a service stays where it is, except where it is on this very deployment
    // (an overwrite): its latest revision must be the code the deployment now serves.
    let latest = services
        .into_iter()
        .map(|s| s.name)
        .filter(|name| {
            req.promote || existing.is_some_and(|e| schema.services.get(name).is_some_and(|s| s.deployment_id == e.id))
        })
        .collect();
    Ok((Some(SchemaChange::PutDeployment { deployment: Box::new(deployment), latest, dropped }), outcome))
}

/// `changes` as they are when none of them breaks anything; otherwise the 409 naming each
/// one that does (Restate's `META0006` for a service type change).
pub(super) fn refuse_breaking(changes: Vec<Change>) -> Result<Vec<Change>, RegistrationError> {
    let refused: Vec<&Change> = changes.iter().filter(|c| c.breaking).collect();
    if refused.is_empty() {
        return Ok(changes);
    }
    let type_change = refused.iter().any(|c| c.handler.is_none() && c.change.contains("service type"));
    let listed = refused.iter().map(|c| c.describe()).collect::<Vec<_>>().join("; ");
    let message = if type_change {
        format!("[META0006] Cannot update the schema: {listed}. Pass breaking=true (the CLI's --breaking) to accept it")
    } else {
        format!(
            "Breaking changes: {listed}. Work that is pending or pinned may fail. Pass breaking=true (the CLI's --breaking) to accept them"
        )
    };
    Err(RegistrationError::Conflict {
        message,
        code: type_change.then_some("META0006"),
        changes,
        invocations: Vec::new(),
    })
}

/// Checks a function version that ran behind a Lambda alias for the first time against what
/// the alias deployment was registered with: could new invocations routed to the deployment
/// run there? The same rules as a new revision, with every handler counted as having work
/// (the ingress keeps accepting calls to each registered handler).
pub fn check_lambda_version(
    deployment: &Deployment,
    manifest: &Manifest,
    defaults: &SchemaDefaults,
    now: u64,
) -> LambdaVersionCheck {
    let differences = manifest_changes(&deployment.manifest, manifest);
    if differences.is_empty() {
        return LambdaVersionCheck { compatible: true, changes: differences, seen_at: now };
    }
    let mut breaking = Vec::new();
    let registered = crate::protocol::choose_version(deployment.min_protocol_version, deployment.max_protocol_version);
    if let Some(v) = registered
        && !(manifest.min_protocol_version..=manifest.max_protocol_version).contains(&v.as_u32())
    {
        breaking.push(format!(
            "it speaks protocol versions {}..{}, not {} as registered",
            manifest.min_protocol_version,
            manifest.max_protocol_version,
            v.as_u32()
        ));
    }
    for old in &deployment.services {
        let Some(m) = manifest.service(&old.name) else {
            breaking.push(format!("{}: the service is gone", old.name));
            continue;
        };
        let new = service_revision(m, old.revision, deployment.id, manifest.protocol_mode, defaults);
        let all_busy: BTreeMap<String, u64> =
            old.handlers.iter().map(|h| (handler_key(&old.name, &h.name), 1)).collect();
        breaking.extend(
            compat::changes(Some(old), &new, &all_busy).into_iter().filter(|c| c.breaking).map(|c| c.describe()),
        );
    }
    let compatible = breaking.is_empty();
    LambdaVersionCheck { compatible, changes: if compatible { differences } else { breaking }, seen_at: now }
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
