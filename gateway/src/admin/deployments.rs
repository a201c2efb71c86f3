//! `/deployments`: register (discover, validate, store), list, describe.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, Path, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::render::{RegisterResponse, deployment_detail, deployment_summary};
use super::{ApiVersion, Error, State, bad_path_id};
use crate::durations::now_ms;
use crate::ids::DeploymentId;
use crate::invoker::discovery::discover;
use crate::schema::{Endpoint, HttpVersion, RegisterOutcome, RegisterRequest, register as register_deployment};

/// `POST /deployments` body: the HTTP form or the Lambda form.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum RegisterDeploymentRequest {
    Http {
        uri: String,
        #[serde(default)]
        additional_headers: Option<BTreeMap<String, String>>,
        #[serde(default)]
        metadata: Option<BTreeMap<String, String>>,
        #[serde(default)]
        use_http_11: bool,
        #[serde(default)]
        breaking: bool,
        #[serde(default)]
        force: Option<bool>,
        #[serde(default)]
        dry_run: bool,
    },
    /// Lambda: the other keys (`assume_role_arn`, …) are read once Lambda is supported.
    Lambda { arn: String },
}

pub async fn list(AxState(state): AxState<State>) -> impl IntoResponse {
    let schema = state.schema.snapshot();
    let deployments: Vec<_> = schema.deployments.values().map(deployment_summary).collect();
    Json(serde_json::json!({ "deployments": deployments }))
}

pub async fn get_one(AxState(state): AxState<State>, Path(id): Path<String>) -> Response {
    let parsed: DeploymentId = match id.parse() {
        Ok(d) => d,
        Err(e) => return bad_path_id("deployment", &id, e),
    };
    match state.schema.deployment(&parsed) {
        Some(d) => Json(deployment_detail(&d)).into_response(),
        None => Error::UnknownDeployment(id).into_response(),
    }
}

/// Normalises an HTTP deployment URI as Restate stores it (an empty path becomes `/`).
fn normalize_uri(raw: &str) -> Result<String, Error> {
    let invalid = |reason: String| Error::InvalidField { field: "uri", reason };
    let uri: http::Uri = raw.parse().map_err(|e| invalid(format!("{e}")))?;
    let scheme = uri.scheme_str().ok_or_else(|| {
        invalid(format!("The provided uri {raw} is not absolute, only absolute URIs can be used."))
    })?;
    if uri.authority().is_none() {
        return Err(invalid(format!("The provided uri {raw} is not absolute, only absolute URIs can be used.")));
    }
    match scheme {
        "http" => {}
        "https" => return Err(invalid("https deployments are not supported yet; use http://".into())),
        other => return Err(invalid(format!("unsupported scheme '{other}', expected http"))),
    }
    let path = uri.path();
    let mut out = format!("{scheme}://{}{}", uri.authority().expect("checked above"), if path.is_empty() { "/" } else { path });
    if let Some(q) = uri.query() {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Checks a Lambda ARN the way Restate does: 8 parts, a function, a qualifier.
fn check_arn(arn: &str) -> Result<(), Error> {
    let parts: Vec<&str> = arn.split(':').collect();
    let invalid = |reason: &str| Error::InvalidField { field: "arn", reason: reason.to_owned() };
    if parts.len() != 8 || parts[7].is_empty() {
        return Err(invalid(
            "A qualified ARN needs a version or alias suffix, e.g. arn:aws:lambda:<region>:<account>:function:<name>:<version>",
        ));
    }
    if parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" {
        return Err(invalid("not a Lambda function ARN (arn:<partition>:lambda:<region>:<account>:function:<name>:<qualifier>)"));
    }
    Ok(())
}

pub async fn register(
    AxState(state): AxState<State>,
    Extension(version): Extension<ApiVersion>,
    Json(body): Json<RegisterDeploymentRequest>,
) -> Result<Response, Error> {
    let (uri, use_http_11, headers, metadata, breaking, force, dry_run) = match body {
        RegisterDeploymentRequest::Http { uri, additional_headers, metadata, use_http_11, breaking, force, dry_run } => {
            (uri, use_http_11, additional_headers, metadata, breaking, force, dry_run)
        }
        RegisterDeploymentRequest::Lambda { arn, .. } => {
            check_arn(&arn)?;
            return Err(Error::NotImplemented(format!(
                "Lambda deployments are not supported yet (cannot register {arn}); register an HTTP endpoint"
            )));
        }
    };
    // Admin API v2 defaults `force` to true; unversioned, v3 and v4 to false.
    let force = force.unwrap_or(version == ApiVersion::V2);
    let uri = normalize_uri(&uri)?;
    let http_version = if use_http_11 { HttpVersion::Http11 } else { HttpVersion::Http2 };
    let headers = headers.unwrap_or_default();
    let discovered = discover(&state.client, &uri, &http_version, &headers, state.discovery_timeout).await?;
    let request = RegisterRequest {
        endpoint: Endpoint::Http { uri, http_version },
        additional_headers: headers,
        metadata: metadata.unwrap_or_default(),
        force,
        breaking,
        dry_run,
        manifest: discovered.manifest,
        sdk_version: discovered.sdk_version,
        now: now_ms(),
    };
    let defaults = state.defaults.clone();
    let outcome = state.schema.update(|schema| register_deployment(schema, request, &defaults)).await?;
    let status = match &outcome {
        RegisterOutcome::Created(_) => StatusCode::CREATED,
        RegisterOutcome::Unchanged(d) if version == ApiVersion::V2 => {
            return Err(Error::AlreadyExists(d.id.to_string()));
        }
        RegisterOutcome::Unchanged(_) => StatusCode::OK,
        RegisterOutcome::Overwritten(_) if version == ApiVersion::V2 => StatusCode::CREATED,
        RegisterOutcome::Overwritten(_) => StatusCode::OK,
    };
    let deployment = outcome.deployment();
    let location = format!("deployments/{}", deployment.id);
    Ok((status, [(header::LOCATION, location)], Json(RegisterResponse::new(deployment))).into_response())
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
        assert!(e.starts_with("The request field 'uri' is invalid. Reason: The provided uri /foo is not absolute"), "{e}");
    }

    #[test]
    fn arns_need_a_qualifier() {
        assert!(check_arn("arn:aws:lambda:eu-central-1:123456789012:function:greeter:7").is_ok());
        assert!(check_arn("arn:aws:lambda:eu-central-1:123456789012:function:greeter").is_err());
        assert!(check_arn("arn:aws:s3:eu-central-1:123456789012:function:greeter:1").is_err());
    }
}
