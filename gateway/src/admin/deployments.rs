//! `/deployments`: register (discover, validate, store), list, describe with drain status,
//! change the address or headers, and remove (guarded by the drain status).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, Path, Query, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::render::{Drain, RegisterResponse, deployment_detail, deployment_summary};
use super::{ApiVersion, Error, State, read_storage};
use crate::durations::now_ms;
use crate::engine::command::Command;
use crate::ids::DeploymentId;
use crate::ids::InvocationId;
use crate::invoker::discovery::{discover, discover_lambda};
use crate::invoker::lambda::FunctionArn;
use crate::schema::DrainStatus;
use crate::schema::{
    Endpoint, HttpVersion, InFlight, RegisterOutcome, RegisterRequest, SchemaChange, register as register_deployment,
};
use crate::storage::StorageError;

/// `POST /deployments` body: an address (the HTTP form or the Lambda form) and what both carry.
#[derive(Deserialize)]
pub struct RegisterDeploymentRequest {
    #[serde(flatten)]
    address: DeploymentAddress,
    #[serde(default)]
    additional_headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    breaking: bool,
    #[serde(default)]
    force: Option<bool>,
    #[serde(default)]
    dry_run: bool,
    /// perdure: false registers it without sending new invocations there.
    #[serde(default)]
    promote: Option<bool>,
}

/// Where a deployment to register is reached.
#[derive(Deserialize)]
#[serde(untagged)]
enum DeploymentAddress {
    Http {
        uri: String,
        #[serde(default)]
        use_http_11: bool,
    },
    /// A Lambda function: a published version or an alias.
    Lambda {
        arn: String,
        #[serde(default)]
        assume_role_arn: Option<String>,
    },
}

pub async fn list(AxState(state): AxState<State>) -> Result<Response, Error> {
    let schema = state.schema.snapshot();
    let counts = read_storage(&state, |s| Ok(s.drain_counts()?)).await?;
    let deployments: Vec<_> = schema
        .deployments
        .values()
        .map(|d| deployment_summary(d, Drain::of(&schema, &d.id, &counts.get(&d.id).cloned().unwrap_or_default())))
        .collect();
    Ok(Json(serde_json::json!({ "deployments": deployments })).into_response())
}

/// A deployment id from the path, or the answer to give instead.
fn parse_id(id: &str) -> Result<DeploymentId, Error> {
    id.parse().map_err(|e| Error::bad_path_id("deployment", id, e))
}

/// The drain status of one deployment, as of now.
async fn drain_of(state: &State, schema: &crate::schema::Schema, id: &DeploymentId) -> Result<Drain, Error> {
    let id = *id;
    let counts = read_storage(state, move |s| Ok(s.drain_counts()?.remove(&id).unwrap_or_default())).await?;
    Ok(Drain::of(schema, &id, &counts))
}

pub async fn get_one(AxState(state): AxState<State>, Path(id): Path<String>) -> Result<Response, Error> {
    let parsed = parse_id(&id)?;
    let schema = state.schema.snapshot();
    let Some(d) = schema.deployments.get(&parsed) else { return Err(Error::UnknownDeployment(id)) };
    let mut detail = deployment_detail(d, drain_of(&state, &schema, &parsed).await?);
    if let Endpoint::Lambda { .. } = d.endpoint {
        let counts = read_storage(&state, move |s| pinned_versions(s, &parsed)).await?;
        add_pinned_versions(counts, &mut detail);
    }
    Ok(Json(detail).into_response())
}

/// Invocations read per Lambda deployment to count what is pinned to each function version.
const VERSION_COUNT_LIMIT: usize = 1_000_000;

/// Counts the not-completed invocations pinned to each function version of a Lambda
/// deployment (reads each pinned invocation: O(pinned), for one deployment's details), so an
/// operator knows when an old version can be deleted.
fn pinned_versions(storage: &crate::storage::Storage, id: &DeploymentId) -> Result<BTreeMap<String, u64>, Error> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for invocation in storage.pinned_to(id, VERSION_COUNT_LIMIT)? {
        let Some(status) = storage.invocation(&invocation)? else { continue };
        if let Some(version) = status.deployment.and_then(|p| p.executed_version) {
            *counts.entry(version).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Adds the pinned counts to the function versions a deployment's details list.
fn add_pinned_versions(
    mut counts: BTreeMap<String, u64>,
    detail: &mut super::render::DeploymentJson<super::render::ServiceJson>,
) {
    for v in &mut detail.lambda_versions {
        v.pinned_invocations = Some(counts.remove(&v.version).unwrap_or(0));
    }
    // Versions pinned but never checked (a version-qualified ARN, or pins older than the checks).
    for (version, n) in counts {
        detail.lambda_versions.push(super::render::LambdaVersionJson {
            version,
            compatible: true,
            changes: Vec::new(),
            first_seen_at: None,
            pinned_invocations: Some(n),
        });
    }
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    #[serde(default)]
    force: bool,
}

use crate::schema::LISTED;

/// `DELETE /deployments/{id}`: without `force`, only a drained deployment (latest for no
/// service, nothing pinned) goes; otherwise 409 with what holds it. With `force` it goes at
/// once, with the services whose latest revision it served, and every invocation still
/// pinned to it ends with a terminal error naming it.
pub async fn remove(
    AxState(state): AxState<State>,
    Path(id): Path<String>,
    Query(query): Query<RemoveQuery>,
) -> Result<Response, Error> {
    let parsed = parse_id(&id)?;
    let storage = state.storage.clone();
    let removed = state
        .schema
        .update(|schema| {
            if !schema.deployments.contains_key(&parsed) {
                return Err(Error::UnknownDeployment(id.clone()));
            }
            let latest = schema.latest_on(&parsed);
            let counts = storage.drain_counts()?.remove(&parsed).unwrap_or_default();
            let drain = Drain::of(schema, &parsed, &counts);
            if !query.force && !drain.drain_status.can_be_removed() {
                let pinned = storage.pinned_to(&parsed, LISTED)?;
                return Err(Error::Held { id: parsed, drain: Box::new(drain), invocations: pinned });
            }
            Ok((Some(SchemaChange::RemoveDeployment { id: parsed, services: latest }), drain))
        })
        .await?;
    if removed.pinned_invocations.total > 0 || query.force {
        // The schema no longer has it (no new attempt can start there); now every partition
        // ends what is still pinned to it. Answered once each partition has it in its log.
        state.partitions.broadcast(|| Command::DeploymentRemoved { deployment: parsed }).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /deployments/{id}/pause`: an emergency stop. Attempts already running go on; no new
/// one starts there, and its invocations (and new ones routed to it) wait as paused.
pub async fn pause(AxState(state): AxState<State>, Path(id): Path<String>) -> Result<Response, Error> {
    set_paused(state, id, true).await
}

/// `POST /deployments/{id}/resume`: attempts start there again, and every invocation its
/// pause held goes on.
pub async fn resume(AxState(state): AxState<State>, Path(id): Path<String>) -> Result<Response, Error> {
    set_paused(state, id, false).await
}

async fn set_paused(state: State, id: String, paused: bool) -> Result<Response, Error> {
    let parsed = parse_id(&id)?;
    state
        .schema
        .update(|schema| {
            let Some(d) = schema.deployments.get(&parsed) else { return Err(Error::UnknownDeployment(id.clone())) };
            let change = (d.paused != paused).then_some(SchemaChange::PauseDeployment { id: parsed, paused });
            Ok((change, ()))
        })
        .await?;
    if !paused {
        // Also when it was not paused: an invocation held just as it was resumed goes on.
        state.partitions.broadcast(|| Command::DeploymentResumed { deployment: parsed }).await?;
    }
    let schema = state.schema.snapshot();
    let d = schema.deployments.get(&parsed).ok_or_else(|| Error::UnknownDeployment(id.clone()))?;
    Ok(Json(deployment_detail(d, drain_of(&state, &schema, &parsed).await?)).into_response())
}

/// `POST /deployments/prune` body (perdure).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    #[serde(default)]
    keep: usize,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /deployments/prune`: removes drained deployments beyond the newest `keep` of them
/// (never an active, draining or inactive one); answers what went (or would go).
pub async fn prune(AxState(state): AxState<State>, body: Option<Json<PruneRequest>>) -> Result<Response, Error> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let removed = prune_drained(&state, req.keep, req.dry_run).await?;
    Ok(Json(serde_json::json!({
        "dry_run": req.dry_run,
        "removed": removed.iter().map(|(id, address)| serde_json::json!({ "id": id.to_string(), "address": address })).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// Removes (or, in a dry run, lists) the drained deployments beyond the newest `keep`. Each
/// removal is decided again inside its schema change, against the counters as they are then.
pub async fn prune_drained(state: &State, keep: usize, dry_run: bool) -> Result<Vec<(DeploymentId, String)>, Error> {
    let schema = state.schema.snapshot();
    let counts = read_storage(state, |s| Ok(s.drain_counts()?)).await?;
    let mut removed = Vec::new();
    for d in crate::schema::prunable(&schema, &counts, keep) {
        let (id, address) = (d.id, d.endpoint.address().to_owned());
        if dry_run {
            removed.push((id, address));
            continue;
        }
        let storage = state.storage.clone();
        let gone = state
            .schema
            .update(|schema| {
                let pinned = storage.drain_counts()?.remove(&id).unwrap_or_default().total();
                if !schema.deployments.contains_key(&id) || DrainStatus::of(schema, &id, pinned) != DrainStatus::Drained
                {
                    return Ok::<_, Error>((None, false));
                }
                Ok((Some(SchemaChange::RemoveDeployment { id, services: schema.latest_on(&id) }), true))
            })
            .await?;
        if gone {
            tracing::info!(deployment = %id, "pruned drained deployment {address}");
            removed.push((id, address));
        }
    }
    Ok(removed)
}

/// `PATCH /deployments/{id}` body (Restate's `UpdateDeploymentRequest`, HTTP form).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateDeploymentRequest {
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    additional_headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    use_http_11: Option<bool>,
    #[serde(default)]
    arn: Option<String>,
    #[serde(default)]
    assume_role_arn: Option<String>,
    #[serde(default)]
    overwrite: bool,
    #[serde(default)]
    dry_run: bool,
}

/// `PATCH /deployments/{id}`: new headers, or a new address that serves the same code (its
/// discovery returns the identical manifest). New code is a new deployment.
pub async fn update(
    AxState(state): AxState<State>,
    Path(id): Path<String>,
    Json(req): Json<UpdateDeploymentRequest>,
) -> Result<Response, Error> {
    let parsed = parse_id(&id)?;
    let Some(current) = state.schema.deployment(&parsed) else { return Err(Error::UnknownDeployment(id)) };
    if req.overwrite {
        return Err(Error::Conflict {
            message: format!(
                "deployment {parsed} cannot be overwritten: a deployment is immutable. Register the new code \
                 as a new deployment (a new URL or Lambda version); its services get new revisions"
            ),
            code: None,
        });
    }
    let endpoint = match &current.endpoint {
        Endpoint::Http { uri: old_uri, http_version: old_version } => {
            if req.arn.is_some() || req.assume_role_arn.is_some() {
                return Err(Error::InvalidField {
                    field: "arn",
                    reason: format!("deployment {parsed} is an HTTP deployment; change its 'uri' instead"),
                });
            }
            let uri = match &req.uri {
                Some(u) => normalize_uri(u)?,
                None => old_uri.clone(),
            };
            let http_version = match req.use_http_11 {
                Some(true) => HttpVersion::Http11,
                Some(false) => HttpVersion::Http2,
                None => old_version.clone(),
            };
            Endpoint::Http { uri, http_version }
        }
        Endpoint::Lambda { arn: old_arn, assume_role_arn: old_role } => {
            if req.uri.is_some() || req.use_http_11.is_some() {
                return Err(Error::InvalidField {
                    field: "uri",
                    reason: format!("deployment {parsed} is a Lambda deployment; change its 'arn' instead"),
                });
            }
            let arn = match &req.arn {
                Some(a) => {
                    check_arn(a, state.lambda_allow_latest)?;
                    a.clone()
                }
                None => old_arn.clone(),
            };
            Endpoint::Lambda { arn, assume_role_arn: req.assume_role_arn.clone().or_else(|| old_role.clone()) }
        }
    };
    let headers = req.additional_headers.clone().unwrap_or_else(|| current.additional_headers.clone());
    if endpoint != current.endpoint {
        // The same code at a new address (or reached with another role): discovery there
        // must answer the same manifest.
        let discovered = discover_endpoint(&state, &endpoint, &headers).await?;
        if discovered.manifest != current.manifest {
            let address = endpoint.address();
            return Err(Error::Conflict {
                message: format!(
                    "'{address}' serves different code than deployment {parsed} (its manifest differs): a deployment is \
                     immutable, so register '{address}' as a new deployment instead"
                ),
                code: None,
            });
        }
    }
    let mut next = current.clone();
    next.endpoint = endpoint;
    next.additional_headers = headers;
    let schema = state.schema.snapshot();
    let drain = drain_of(&state, &schema, &parsed).await?;
    if req.dry_run || (next.endpoint == current.endpoint && next.additional_headers == current.additional_headers) {
        return Ok(Json(deployment_detail(&next, drain)).into_response());
    }
    let change = SchemaChange::UpdateDeployment { deployment: Box::new(next.clone()) };
    state.schema.update(|_| Ok::<_, Error>((Some(change), ()))).await?;
    Ok(Json(deployment_detail(&next, drain)).into_response())
}

/// Normalises an HTTP deployment URI as Restate stores it (an empty path becomes `/`).
fn normalize_uri(raw: &str) -> Result<String, Error> {
    let invalid = |reason: String| Error::InvalidField { field: "uri", reason };
    let uri: http::Uri = raw.parse().map_err(|e| invalid(format!("{e}")))?;
    let scheme = uri
        .scheme_str()
        .ok_or_else(|| invalid(format!("The provided uri {raw} is not absolute, only absolute URIs can be used.")))?;
    if uri.authority().is_none() {
        return Err(invalid(format!("The provided uri {raw} is not absolute, only absolute URIs can be used.")));
    }
    match scheme {
        "http" | "https" => {}
        other => return Err(invalid(format!("unsupported scheme '{other}', expected http or https"))),
    }
    let path = uri.path();
    let mut out =
        format!("{scheme}://{}{}", uri.authority().expect("checked above"), if path.is_empty() { "/" } else { path });
    if let Some(q) = uri.query() {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Checks a Lambda ARN: qualified, and (unless `lambda.allow-latest`) a published version
/// or an alias, so the code under an invocation can never change.
fn check_arn(arn: &str, allow_latest: bool) -> Result<FunctionArn, Error> {
    let invalid = |reason: String| Error::InvalidField { field: "arn", reason };
    let parsed = FunctionArn::parse(arn).map_err(invalid)?;
    if parsed.qualifier == "$LATEST" && !allow_latest {
        return Err(invalid(format!(
            "'{arn}' is $LATEST, whose code changes under running invocations: publish a version and register \
             arn:…:function:{}:<version>, or an alias (arn:…:function:{}:live). For development, \
             lambda.allow-latest = true permits $LATEST",
            parsed.name, parsed.name
        )));
    }
    Ok(parsed)
}

/// What both forms of `POST /deployments` carry besides the address.
struct Registration {
    headers: BTreeMap<String, String>,
    metadata: BTreeMap<String, String>,
    breaking: bool,
    force: Option<bool>,
    dry_run: bool,
    promote: bool,
}

pub async fn register(
    AxState(state): AxState<State>,
    Extension(version): Extension<ApiVersion>,
    Json(body): Json<RegisterDeploymentRequest>,
) -> Result<Response, Error> {
    let endpoint = match body.address {
        DeploymentAddress::Http { uri, use_http_11 } => {
            let uri = normalize_uri(&uri)?;
            let http_version = if use_http_11 { HttpVersion::Http11 } else { HttpVersion::Http2 };
            Endpoint::Http { uri, http_version }
        }
        DeploymentAddress::Lambda { arn, assume_role_arn } => {
            check_arn(&arn, state.lambda_allow_latest)?;
            Endpoint::Lambda { arn, assume_role_arn }
        }
    };
    let common = Registration {
        headers: body.additional_headers.unwrap_or_default(),
        metadata: body.metadata.unwrap_or_default(),
        breaking: body.breaking,
        force: body.force,
        dry_run: body.dry_run,
        promote: body.promote.unwrap_or(true),
    };
    // Admin API v2 defaults `force` to true; unversioned, v3 and v4 to false.
    let force = common.force.unwrap_or(version == ApiVersion::V2);
    let discovered = discover_endpoint(&state, &endpoint, &common.headers).await?;
    let lambda_versions = first_lambda_version(&state, &endpoint, &discovered);
    let request = RegisterRequest {
        endpoint,
        additional_headers: common.headers,
        metadata: common.metadata,
        force,
        breaking: common.breaking,
        dry_run: common.dry_run,
        promote: common.promote,
        manifest: discovered.manifest,
        sdk_version: discovered.sdk_version,
        now: now_ms(),
        lambda_versions,
    };
    let defaults = state.defaults.clone();
    let in_flight = Counters(&state.storage);
    let outcome = state.schema.update(|schema| register_deployment(schema, request, &defaults, &in_flight)).await?;
    let status = match &outcome {
        RegisterOutcome::Created(..) => StatusCode::CREATED,
        RegisterOutcome::Unchanged(d) if version == ApiVersion::V2 => {
            return Err(Error::AlreadyExists(d.id.to_string()));
        }
        RegisterOutcome::Unchanged(_) => StatusCode::OK,
        RegisterOutcome::Overwritten(..) if version == ApiVersion::V2 => StatusCode::CREATED,
        RegisterOutcome::Overwritten(..) => StatusCode::OK,
    };
    let deployment = outcome.deployment();
    let location = format!("deployments/{}", deployment.id);
    let body = RegisterResponse::new(deployment).with_changes(outcome.changes());
    Ok((status, [(header::LOCATION, location)], Json(body)).into_response())
}

/// Runs discovery at an endpoint: `GET /discover` over HTTP, or the same through Lambda Invoke.
async fn discover_endpoint(
    state: &State,
    endpoint: &Endpoint,
    headers: &BTreeMap<String, String>,
) -> Result<crate::invoker::discovery::Discovered, Error> {
    Ok(match endpoint {
        Endpoint::Http { uri, http_version } => {
            discover(&state.client, uri, http_version, headers, state.identity.as_deref(), state.discovery_timeout)
                .await?
        }
        Endpoint::Lambda { arn, assume_role_arn } => {
            let parsed = FunctionArn::parse(arn).map_err(|reason| Error::InvalidField { field: "arn", reason })?;
            discover_lambda(
                &state.lambda,
                arn,
                &parsed,
                assume_role_arn.as_deref(),
                headers,
                state.identity.as_deref(),
                state.discovery_timeout,
            )
            .await?
        }
    })
}

/// For an alias: the version discovery ran on is the first one seen behind it, and passes.
/// Registering the alias again (with `force`) accepts whatever version it points at now.
fn first_lambda_version(
    state: &State,
    endpoint: &Endpoint,
    discovered: &crate::invoker::discovery::Discovered,
) -> crate::schema::LambdaVersions {
    let mut versions = crate::schema::LambdaVersions::default();
    let Endpoint::Lambda { arn, .. } = endpoint else { return versions };
    if !FunctionArn::parse(arn).is_ok_and(|a| a.is_alias()) {
        return versions;
    }
    let schema = state.schema.snapshot();
    if let Some(existing) =
        schema.deployments.values().filter(|d| d.endpoint.address() == arn).max_by_key(|d| d.created_at)
    {
        versions.seen = existing.lambda_versions.seen.clone();
    }
    if let Some(v) = &discovered.executed_version {
        versions.seen.insert(
            v.clone(),
            crate::schema::LambdaVersionCheck { compatible: true, changes: Vec::new(), seen_at: now_ms() },
        );
    }
    versions
}

/// What the partitions have in flight, for the registration checks.
struct Counters<'a>(&'a crate::storage::Storage);

impl InFlight for Counters<'_> {
    fn pending(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        self.0.pending_by_handler()
    }

    fn pinned(&self, deployment: &DeploymentId, limit: usize) -> Result<(u64, Vec<InvocationId>), StorageError> {
        let total = self.0.drain_counts()?.get(deployment).map_or(0, |c| c.total());
        let sample = self.0.pinned_to(deployment, limit)?;
        Ok((total, sample))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_normalised_like_restate() {
        assert_eq!(normalize_uri("http://localhost:9080").unwrap(), "http://localhost:9080/");
        assert_eq!(normalize_uri("http://localhost:9080/").unwrap(), "http://localhost:9080/");
        assert_eq!(normalize_uri("http://h:1/p/q").unwrap(), "http://h:1/p/q");
        let e = normalize_uri("/foo").unwrap_err().to_string();
        assert!(
            e.starts_with("The request field 'uri' is invalid. Reason: The provided uri /foo is not absolute"),
            "{e}"
        );
    }

    #[test]
    fn arns_need_a_version_or_alias() {
        assert!(check_arn("arn:aws:lambda:eu-central-1:123456789012:function:greeter:7", false).is_ok());
        assert!(check_arn("arn:aws:lambda:eu-central-1:123456789012:function:greeter:live", false).is_ok());
        assert!(check_arn("arn:aws:lambda:eu-central-1:123456789012:function:greeter", false).is_err());
        assert!(check_arn("arn:aws:s3:eu-central-1:123456789012:function:greeter:1", false).is_err());
        let latest = "arn:aws:lambda:eu-central-1:123456789012:function:greeter:$LATEST";
        let e = check_arn(latest, false).unwrap_err().to_string();
        assert!(e.contains("publish a version") && e.contains("lambda.allow-latest"), "{e}");
        assert!(check_arn(latest, true).is_ok());
    }
}
