//! `/invocations/{id}/…`: cancel, kill, purge, purge-journal, restart-as-new, pause, resume
//! (and the deprecated `DELETE /invocations/{id}?mode=`), with Restate's status codes.

use axum::Json;
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Error, State, read_storage};
use crate::engine::command::{Command, ControlOutcome, ControlRequest, Outcome};
use crate::ids::InvocationId;
use crate::partition::Lane;

#[derive(Deserialize, Default)]
pub struct RestartParams {
    from: Option<u32>,
    deployment: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct DeleteParams {
    mode: Option<String>,
}

async fn control(state: &State, id: InvocationId, request: ControlRequest) -> Result<ControlOutcome, Error> {
    match state.partitions.apply(Lane::Work, id.partition_key, Command::Control { id, request }).await? {
        Outcome::Control(outcome) => Ok(outcome),
        other => Err(Error::Unavailable(format!("unexpected answer from the partition: {other:?}"))),
    }
}

fn parse(id: &str) -> Result<InvocationId, Error> {
    id.parse().map_err(|e| Error::bad_path_id("invocation_id", id, e))
}

/// Maps what happened to a status code; `done` is the status for `Done`.
fn answer(id: &InvocationId, outcome: ControlOutcome, done: StatusCode) -> Response {
    let conflict = |message: String| Error::Conflict { message, code: None }.into_response();
    match outcome {
        ControlOutcome::Done => done.into_response(),
        ControlOutcome::Appended => StatusCode::ACCEPTED.into_response(),
        ControlOutcome::Restarted(new) => Json(serde_json::json!({ "new_invocation_id": new.to_string() })).into_response(),
        ControlOutcome::NotFound => Error::UnknownInvocation(id.to_string()).into_response(),
        ControlOutcome::AlreadyCompleted => conflict(format!("The invocation '{id}' is already completed")),
        ControlOutcome::NotCompleted => conflict(format!("The invocation '{id}' is not yet completed")),
        ControlOutcome::Unsupported(reason) if reason.contains("workflow") => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({ "message": reason, "restate_code": null })))
                .into_response()
        }
        ControlOutcome::Unsupported(reason) => conflict(format!("The invocation '{id}' cannot be changed: {reason}")),
        ControlOutcome::InputGone => (
            StatusCode::GONE,
            Json(serde_json::json!({
                "message": format!("The invocation '{id}' cannot be restarted: its journal (and input) is no longer retained"),
                "restate_code": null
            })),
        )
            .into_response(),
        ControlOutcome::NotStarted => (
            StatusCode::from_u16(425).expect("425 is a valid status"),
            Json(serde_json::json!({ "message": format!("The invocation '{id}' has not started yet"), "restate_code": null })),
        )
            .into_response(),
    }
}

macro_rules! simple {
    ($name:ident, $request:expr, $done:expr) => {
        pub async fn $name(AxState(state): AxState<State>, Path(id): Path<String>) -> Response {
            let id = match parse(&id) {
                Ok(id) => id,
                Err(r) => return r.into_response(),
            };
            match control(&state, id, $request).await {
                Ok(outcome) => answer(&id, outcome, $done),
                Err(e) => e.into_response(),
            }
        }
    };
}

simple!(cancel, ControlRequest::Cancel, StatusCode::OK);
simple!(kill, ControlRequest::Kill, StatusCode::OK);
simple!(purge, ControlRequest::Purge, StatusCode::OK);
simple!(purge_journal, ControlRequest::PurgeJournal, StatusCode::OK);
simple!(pause, ControlRequest::Pause, StatusCode::OK);

#[derive(Deserialize, Default)]
pub struct ResumeParams {
    deployment: Option<String>,
}

/// `PATCH /invocations/{id}/resume[?deployment=keep|latest|dp_…]`: resume where it is pinned,
/// or move it (its next attempt replays the journal on the deployment named, or on the one
/// its service's latest revision is on).
pub async fn resume(
    AxState(state): AxState<State>,
    Path(raw): Path<String>,
    Query(params): Query<ResumeParams>,
) -> Response {
    let id = match parse(&raw) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let invalid = |reason: String| Error::InvalidField { field: "deployment", reason }.into_response();
    let request = match params.deployment.as_deref() {
        None | Some("keep") => ControlRequest::Resume,
        Some(which) => {
            let schema = state.schema.snapshot();
            let service = match read_invocation(&state, id).await {
                Ok(Some(status)) => status.target.service,
                Ok(None) => return Error::UnknownInvocation(raw).into_response(),
                Err(e) => return e.into_response(),
            };
            let deployment = if which == "latest" {
                match schema.service(&service) {
                    Some(s) => s.deployment_id,
                    None => return invalid(format!("the service '{service}' has no latest revision to resume on")),
                }
            } else {
                match which.parse::<crate::ids::DeploymentId>() {
                    Ok(d) if schema.revision_on(&d, &service).is_some() => d,
                    Ok(d) if schema.deployments.contains_key(&d) => {
                        return invalid(format!("deployment {d} does not serve the service '{service}'"));
                    }
                    Ok(d) => return invalid(format!("deployment {d} does not exist")),
                    Err(e) => return invalid(format!("'{which}' is not keep, latest or a deployment id: {e}")),
                }
            };
            ControlRequest::ResumeOn { deployment }
        }
    };
    match control(&state, id, request).await {
        Ok(outcome) => answer(&id, outcome, StatusCode::OK),
        Err(e) => e.into_response(),
    }
}

pub async fn restart_as_new(
    AxState(state): AxState<State>,
    Path(id): Path<String>,
    Query(params): Query<RestartParams>,
) -> Response {
    let id = match parse(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    if params.from.is_some_and(|from| from != 0) {
        return Error::InvalidField {
            field: "from",
            reason: "restarting from a journal index other than 0 is not supported yet".into(),
        }
        .into_response();
    }
    if params.deployment.as_deref().is_some_and(|d| d != "latest") {
        return Error::InvalidField {
            field: "deployment",
            reason:
                "a restarted invocation runs on the latest deployment; 'keep' or a deployment id is not supported yet"
                    .into(),
        }
        .into_response();
    }
    let new_id = InvocationId::generate(id.partition_key);
    match control(&state, id, ControlRequest::RestartAsNew { new_id }).await {
        Ok(outcome) => answer(&id, outcome, StatusCode::OK),
        Err(e) => e.into_response(),
    }
}

/// Deprecated form: 202 whatever the outcome (as Restate answers), but only once the command
/// is durable, so an acknowledged cancel, kill or purge survives a crash.
pub async fn delete(
    AxState(state): AxState<State>,
    Path(id): Path<String>,
    Query(params): Query<DeleteParams>,
) -> Response {
    let id = match parse(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let request = match params.mode.as_deref().unwrap_or("cancel") {
        "cancel" => ControlRequest::Cancel,
        "kill" => ControlRequest::Kill,
        "purge" => ControlRequest::Purge,
        other => {
            return Error::InvalidField {
                field: "mode",
                reason: format!("unknown mode '{other}': use cancel, kill or purge"),
            }
            .into_response();
        }
    };
    match control(&state, id, request).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /invocations/{id}` (perdure): where one invocation stands and where it is pinned.
pub async fn get_one(AxState(state): AxState<State>, Path(raw): Path<String>) -> Response {
    let id = match parse(&raw) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match read_invocation(&state, id).await {
        Ok(Some(status)) => Json(super::render::invocation(&id, &status)).into_response(),
        Ok(None) => Error::UnknownInvocation(raw).into_response(),
        Err(e) => e.into_response(),
    }
}

/// One invocation's status, read off the async workers.
async fn read_invocation(
    state: &State,
    id: InvocationId,
) -> Result<Option<crate::engine::records::InvocationStatus>, Error> {
    read_storage(state, move |s| Ok(s.invocation(&id)?)).await
}

#[derive(Deserialize)]
pub struct PinnedParams {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

/// `GET /deployments/{id}/invocations?limit=N` (perdure): the not-completed invocations pinned
/// to a deployment, from its index (at most `limit`, 1..=10000).
pub async fn pinned(
    AxState(state): AxState<State>,
    Path(raw): Path<String>,
    Query(params): Query<PinnedParams>,
) -> Response {
    let deployment: crate::ids::DeploymentId = match raw.parse() {
        Ok(d) => d,
        Err(e) => return Error::bad_path_id("deployment", &raw, e).into_response(),
    };
    if !(1..=10_000).contains(&params.limit) {
        return Error::InvalidField {
            field: "limit",
            reason: format!("must be between 1 and 10000, not {}", params.limit),
        }
        .into_response();
    }
    if !state.schema.snapshot().deployments.contains_key(&deployment) {
        return Error::UnknownDeployment(raw).into_response();
    }
    let limit = params.limit;
    let listed = read_storage(&state, move |s| {
        let ids = s.pinned_to(&deployment, limit)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(status) = s.invocation(&id)?
                && !status.is_completed()
            {
                out.push(super::render::invocation(&id, &status));
            }
        }
        Ok(out)
    })
    .await;
    match listed {
        Ok(invocations) => Json(serde_json::json!({ "invocations": invocations })).into_response(),
        Err(e) => e.into_response(),
    }
}
