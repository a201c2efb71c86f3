//! `/services` and their handlers: the latest revision of each service.

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::response::IntoResponse;

use super::render::{HandlerJson, ServiceJson};
use super::{Error, State};
use crate::ids::DeploymentId;
use crate::schema::{Routed, Schema, SchemaChange};

pub async fn list(AxState(state): AxState<State>) -> impl IntoResponse {
    let schema = state.schema.snapshot();
    let services: Vec<_> =
        schema.services.values().map(|s| ServiceJson::new(s).with_ramp(schema.ramps.get(&s.name))).collect();
    Json(serde_json::json!({ "services": services }))
}

pub async fn get_one(AxState(state): AxState<State>, Path(name): Path<String>) -> Result<impl IntoResponse, Error> {
    let schema = state.schema.snapshot();
    let service = schema.service(&name).ok_or_else(|| Error::UnknownService(name.clone()))?;
    Ok(Json(ServiceJson::new(service).with_ramp(schema.ramps.get(&name))))
}

pub async fn handlers(AxState(state): AxState<State>, Path(name): Path<String>) -> Result<impl IntoResponse, Error> {
    let schema = state.schema.snapshot();
    let service = schema.service(&name).ok_or(Error::UnknownService(name))?;
    let handlers: Vec<_> = service.handlers.iter().map(HandlerJson::new).collect();
    Ok(Json(serde_json::json!({ "handlers": handlers })))
}

pub async fn handler(
    AxState(state): AxState<State>,
    Path((name, handler)): Path<(String, String)>,
) -> Result<impl IntoResponse, Error> {
    let schema = state.schema.snapshot();
    let service = schema.service(&name).ok_or_else(|| Error::UnknownService(name.clone()))?;
    let h = service.handler(&handler).ok_or(Error::UnknownHandler { service: name, handler: handler.clone() })?;
    Ok(Json(HandlerJson::new(h)))
}

/// `PATCH /services/{name}` body: every field optional, and JSON `null` means "unchanged"
/// (the `restate` CLI sends all six).
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModifyServiceRequest {
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    idempotency_retention: Option<String>,
    #[serde(default)]
    workflow_completion_retention: Option<String>,
    #[serde(default)]
    journal_retention: Option<String>,
    #[serde(default)]
    inactivity_timeout: Option<String>,
    #[serde(default)]
    abort_timeout: Option<String>,
}

fn duration_field(field: &'static str, value: &Option<String>) -> Result<Option<u64>, Error> {
    value
        .as_deref()
        .map(|v| {
            crate::durations::parse(v)
                .map(|d| d.as_millis() as u64)
                .map_err(|reason| Error::InvalidField { field, reason })
        })
        .transpose()
}

pub async fn modify(
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    Json(req): Json<ModifyServiceRequest>,
) -> Result<impl IntoResponse, Error> {
    let idempotency = duration_field("idempotency_retention", &req.idempotency_retention)?;
    let workflow = duration_field("workflow_completion_retention", &req.workflow_completion_retention)?;
    let journal = duration_field("journal_retention", &req.journal_retention)?;
    let inactivity = duration_field("inactivity_timeout", &req.inactivity_timeout)?;
    let abort = duration_field("abort_timeout", &req.abort_timeout)?;
    let updated = state
        .schema
        .update(|schema| {
            let Some(current) = schema.service(&name) else {
                return Err(Error::UnknownService(name.clone()));
            };
            let mut service = current.clone();
            if workflow.is_some() && service.workflow_completion_retention.is_none() {
                return Err(Error::InvalidField {
                    field: "workflow_completion_retention",
                    reason: format!("'{name}' is not a workflow"),
                });
            }
            if let Some(p) = req.public {
                service.public = p;
            }
            service.idempotency_retention = idempotency.unwrap_or(service.idempotency_retention);
            service.journal_retention = journal.unwrap_or(service.journal_retention);
            service.inactivity_timeout = inactivity.unwrap_or(service.inactivity_timeout);
            service.abort_timeout = abort.unwrap_or(service.abort_timeout);
            if workflow.is_some() {
                service.workflow_completion_retention = workflow;
            }
            if &service == current {
                return Ok((None, service));
            }
            Ok((Some(SchemaChange::PutService { service: Box::new(service.clone()) }), service))
        })
        .await?;
    Ok(Json(ServiceJson::new(&updated)))
}

/// `POST /services/{name}/promote` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    deployment: String,
    #[serde(default)]
    breaking: bool,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /services/{name}/rollback` body (may be empty).
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[serde(default)]
    deployment: Option<String>,
    #[serde(default)]
    breaking: bool,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /services/{name}/ramp` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RampRequest {
    deployment: String,
    percent: u32,
    #[serde(default)]
    breaking: bool,
    #[serde(default)]
    dry_run: bool,
}

fn deployment_field(raw: &str) -> Result<DeploymentId, Error> {
    raw.parse().map_err(|e| Error::InvalidField { field: "deployment", reason: format!("'{raw}': {e}") })
}

/// Applies a routing move (unless a dry run) and answers what it did.
async fn route(
    state: &State,
    dry_run: bool,
    decide: impl FnOnce(&Schema, &std::collections::BTreeMap<String, u64>) -> Result<(Option<SchemaChange>, Routed), Error>,
) -> Result<Json<serde_json::Value>, Error> {
    let pending = super::read_storage(state, |s| Ok(s.pending_by_handler()?)).await?;
    let routed = state
        .schema
        .update(|schema| {
            let (change, routed) = decide(schema, &pending)?;
            Ok::<_, Error>((if dry_run { None } else { change }, routed))
        })
        .await?;
    Ok(Json(serde_json::json!({
        "service": ServiceJson::new(&routed.service).with_ramp(routed.ramp.as_ref()),
        "changes": routed.changes,
        "dry_run": dry_run,
    })))
}

/// Points the service's new invocations at a registered deployment (perdure).
pub async fn promote(
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    Json(req): Json<PromoteRequest>,
) -> Result<impl IntoResponse, Error> {
    let to = deployment_field(&req.deployment)?;
    route(&state, req.dry_run, |schema, pending| {
        if schema.service(&name).is_none()
            && !schema.deployments.values().any(|d| d.services.iter().any(|s| s.name == name))
        {
            return Err(Error::UnknownService(name.clone()));
        }
        Ok(crate::schema::promote(schema, &name, to, req.breaking, pending)?)
    })
    .await
}

/// Goes back to the deployment the service was on before (or the one named) (perdure).
pub async fn rollback(
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    body: Option<Json<RollbackRequest>>,
) -> Result<impl IntoResponse, Error> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let named = req.deployment.as_deref().map(deployment_field).transpose()?;
    route(&state, req.dry_run, |schema, pending| {
        if schema.service(&name).is_none() {
            return Err(Error::UnknownService(name.clone()));
        }
        let to = match named {
            Some(d) => d,
            None => crate::schema::rollback_target(schema, &name)?,
        };
        Ok(crate::schema::promote(schema, &name, to, req.breaking, pending)?)
    })
    .await
}

/// Sends a percentage of the service's new invocations to another deployment (perdure).
pub async fn ramp(
    AxState(state): AxState<State>,
    Path(name): Path<String>,
    Json(req): Json<RampRequest>,
) -> Result<impl IntoResponse, Error> {
    let to = deployment_field(&req.deployment)?;
    route(&state, req.dry_run, |schema, pending| {
        Ok(crate::schema::ramp(schema, &name, to, req.percent, req.breaking, pending)?)
    })
    .await
}
