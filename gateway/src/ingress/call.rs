//! Calls and sends to handlers, and awakeable completions.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;

use super::error::{Error, error_response};
use super::{Ingress, RequestBody, Response, json, read_body};
use crate::durations::now_ms;
use crate::engine::command::{Command, InvokeRequest, Outcome};
use crate::engine::records::{HandlerKind, InvocationResult, Notification, NotificationId, NotificationResult, Source};
use crate::ids::{AwakeableId, InvocationId, partition_key_of};
use crate::partition::{Lane, Reply};
use crate::protocol::messages::ty;
use crate::schema::{HandlerSchema, InputRules};

/// Headers that stay with the HTTP exchange instead of going to the handler.
const NOT_FORWARDED: [&str; 5] = ["connection", "host", "idempotency-key", "idempotency-expires", DEPLOYMENT_HEADER];

/// Sends one new invocation to a registered deployment instead of the service's latest
/// revision (a smoke test of an unpromoted deployment, a pinned retry).
pub const DEPLOYMENT_HEADER: &str = "x-perdure-deployment";

/// What a routed call leaves for the ingress's metrics and trace, once answered.
#[derive(Default)]
pub struct Routed {
    /// The registered service and handler it named (metric labels).
    pub target: Option<(String, String)>,
    /// With traces exported: the ingress span to record.
    pub trace: Option<IngressTrace>,
}

pub struct IngressTrace {
    pub span_id: u64,
    /// The caller's span, from the request's `traceparent` (0 for none).
    pub remote_parent: u64,
    pub context: crate::traces::TraceContext,
    pub invocation: InvocationId,
}

/// The deployment `x-perdure-deployment` names, if the request carries it.
fn requested_deployment(headers: &http::HeaderMap) -> Result<Option<crate::ids::DeploymentId>, Error> {
    let Some(value) = headers.get(DEPLOYMENT_HEADER) else { return Ok(None) };
    let raw = value.to_str().map_err(|_| Error::BadDeploymentHeader {
        value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        reason: "not ASCII".into(),
    })?;
    raw.trim()
        .parse()
        .map(Some)
        .map_err(|e: crate::ids::IdError| Error::BadDeploymentHeader { value: raw.to_owned(), reason: e.to_string() })
}

pub async fn call(
    ingress: &Ingress,
    req: http::Request<impl RequestBody>,
    service: String,
    parts: Vec<String>,
    send: bool,
    routed: &mut Routed,
) -> Result<Response, Error> {
    let schema = ingress.schema.snapshot();
    let requested = requested_deployment(req.headers())?;
    let latest = schema.service(&service);
    let svc = match &requested {
        None => latest.ok_or_else(|| Error::UnknownService(service.clone()))?,
        Some(d) => {
            if !schema.deployments.contains_key(d) {
                return Err(Error::UnknownDeployment(d.to_string()));
            }
            schema
                .revision_on(d, &service)
                .ok_or_else(|| Error::NotOnDeployment { deployment: d.to_string(), service: service.clone() })?
        }
    };
    let (key, handler_name) = match (svc.is_keyed(), parts.as_slice()) {
        (false, [handler]) => (None, handler),
        (true, [key, handler]) => (Some(key.clone()), handler),
        _ => return Err(Error::BadCallPath),
    };
    let handler = svc
        .handler(handler_name)
        .ok_or_else(|| Error::UnknownHandler { service: service.clone(), handler: handler_name.clone() })?;
    // From here on the request counts under its (registered, so bounded) service and handler.
    routed.target = Some((service.clone(), handler_name.clone()));
    // Hiding a service (PATCH /services) changes its latest revision: it hides every one.
    if !latest.unwrap_or(svc).public || !svc.public || !handler.public {
        return Err(Error::Private);
    }
    let delay = match query_param(req.uri().query(), "delay") {
        Some(raw) => Some(crate::durations::parse(&raw).map_err(Error::BadDelay)?),
        None => None,
    };
    if delay.is_some() && !send {
        return Err(Error::DelayOnCall);
    }
    let is_workflow_run = handler.ty == Some(crate::protocol::manifest::HandlerType::Workflow);
    if is_workflow_run && delay.is_some() {
        return Err(Error::DelayOnWorkflow);
    }
    let idempotency_key = match req.headers().get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|e| Error::BadIdempotencyKey(e.to_string()))?.to_owned()),
        None => None,
    };
    if is_workflow_run && idempotency_key.is_some() {
        return Err(Error::IdempotencyKeyOnWorkflow);
    }
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().map(str::to_owned).map_err(|_| Error::InputValidation("bad content-type header".into())))
        .transpose()?;

    // Traced: the request's traceparent (if any) is continued under an ingress span.
    let trace = crate::traces::enabled().then(|| {
        let remote =
            req.headers().get("traceparent").and_then(|v| v.to_str().ok()).and_then(crate::traces::parse_traceparent);
        let span_id = crate::traces::new_span_id();
        (remote.map_or(0, |r| r.span_id), span_id, crate::traces::new_invocation(remote, span_id))
    });
    let mut headers = Vec::with_capacity(req.headers().len() + 1);
    let ingress_path = req.uri().path_and_query().map_or(req.uri().path(), |pq| pq.as_str());
    headers.push(("x-restate-ingress-path".to_owned(), ingress_path.to_owned()));
    for (name, value) in req.headers() {
        if NOT_FORWARDED.contains(&name.as_str()) {
            continue;
        }
        if let Ok(v) = value.to_str() {
            headers.push((name.as_str().to_owned(), v.to_owned()));
        }
    }
    let body = read_body(req.into_body(), ingress.request_size_limit).await?;
    validate_input(&handler.input, content_type.as_deref(), &body)?;

    let target = svc.target(handler, key.clone());
    let id = match (&idempotency_key, target.handler_kind) {
        (Some(ik), _) => InvocationId::idempotent(&service, key.as_deref(), handler_name, ik),
        (None, HandlerKind::Workflow) => InvocationId::workflow_run(&service, key.as_deref().unwrap_or_default()),
        (None, _) => {
            let pk = key.as_deref().map_or_else(rand::random::<u64>, |k| partition_key_of(k.as_bytes()));
            InvocationId::generate(pk)
        }
    };
    let execute_at = delay.map(|d| now_ms().saturating_add(d.as_millis() as u64));
    let request = InvokeRequest {
        id,
        target,
        headers,
        body,
        source: Source::Ingress,
        idempotency_key,
        execute_at,
        sink: None,
        retry_policy: svc.retry_policy(handler),
        retention: svc.retention(handler),
        deployment: requested,
        trace: trace.map(|t| t.2),
    };
    if let Some((remote_parent, span_id, context)) = trace {
        routed.trace = Some(IngressTrace { span_id, remote_parent, context, invocation: id });
    }
    let command = Command::Invoke(Box::new(request));
    if send {
        let status = match ingress.partitions.apply(Lane::Ingress, id.partition_key, command).await? {
            Outcome::Accepted => "Accepted",
            _ => "PreviouslyAccepted",
        };
        let mut body = serde_json::Map::new();
        body.insert("invocationId".into(), id.to_string().into());
        if let Some(at) = execute_at {
            body.insert("executionTime".into(), crate::durations::rfc3339_nanos(at).into());
        }
        body.insert("status".into(), status.into());
        let mut response = json(StatusCode::ACCEPTED, serde_json::Value::Object(body).to_string());
        response.headers_mut().insert("x-restate-id", header_value(&id.to_string()));
        return Ok(response);
    }
    match ingress.partitions.call(id.partition_key, command).await? {
        Reply::Completed { result, expires_at } => Ok(result_response(&id, result, expires_at, Some(handler))),
        _ => Err(Error::Unavailable),
    }
}

/// The HTTP answer for a finished invocation: its output (200) or its terminal error.
pub fn result_response(
    id: &InvocationId,
    result: InvocationResult,
    expires_at: Option<u64>,
    handler: Option<&HandlerSchema>,
) -> Response {
    match result {
        InvocationResult::Success(body) => {
            let content_type = match handler {
                Some(h) if !body.is_empty() || h.output.set_content_type_if_empty => h.output.content_type.clone(),
                Some(_) => None,
                None => (!body.is_empty()).then(|| "application/json".to_owned()),
            };
            let mut response = http::Response::new(Full::new(body));
            let headers = response.headers_mut();
            headers.insert("x-restate-id", header_value(&id.to_string()));
            if let Some(at) = expires_at {
                headers.insert("idempotency-expires", header_value(&crate::durations::rfc3339_offset(at)));
            }
            if let Some(ct) = content_type.and_then(|ct| HeaderValue::from_str(&ct).ok()) {
                headers.insert(http::header::CONTENT_TYPE, ct);
            }
            response
        }
        InvocationResult::Failure { code, message } => {
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| s.as_u16() >= 400)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_response(status, &message, "invocation", Some(id))
        }
    }
}

/// `POST /restate/awakeables/{id}/resolve|reject`.
pub async fn awakeable(
    ingress: &Ingress,
    req: http::Request<impl RequestBody>,
    id: String,
    resolve: bool,
) -> Result<Response, Error> {
    let awakeable: AwakeableId = id.parse().map_err(|reason| Error::BadAwakeableId { id: id.clone(), reason })?;
    let body = read_body(req.into_body(), ingress.request_size_limit).await?;
    let result = if resolve {
        NotificationResult::Value(body)
    } else {
        NotificationResult::Failure { code: 500, message: String::from_utf8_lossy(&body).into_owned() }
    };
    let notification =
        Notification { ty: ty::SIGNAL_NOTIFICATION, id: NotificationId::Signal(awakeable.signal_index), result };
    let target = awakeable.invocation;
    ingress.partitions.apply(Lane::Ingress, target.partition_key, Command::Notify { target, notification }).await?;
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::ACCEPTED;
    Ok(response)
}

/// The JSON target of `POST /restate/{attach,output,lookup}`.
#[derive(serde::Deserialize)]
#[serde(tag = "target", rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum BodyTarget {
    Invocation {
        invocation_id: String,
    },
    Workflow {
        workflow_name: String,
        workflow_key: String,
        scope: Option<String>,
    },
    IdempotentInvocation {
        service: String,
        key: Option<String>,
        handler: String,
        idempotency_key: String,
        scope: Option<String>,
    },
}

impl BodyTarget {
    pub fn invocation_id(&self) -> Result<InvocationId, Error> {
        let unscoped = |scope: &Option<String>| match scope {
            Some(_) => Err(Error::BadTarget("scoped invocations require vqueues, which perdure does not have".into())),
            None => Ok(()),
        };
        match self {
            BodyTarget::Invocation { invocation_id } => {
                invocation_id.parse().map_err(|reason| Error::BadInvocationId { id: invocation_id.clone(), reason })
            }
            BodyTarget::Workflow { workflow_name, workflow_key, scope } => {
                unscoped(scope)?;
                Ok(InvocationId::workflow_run(workflow_name, workflow_key))
            }
            BodyTarget::IdempotentInvocation { service, key, handler, idempotency_key, scope } => {
                unscoped(scope)?;
                Ok(InvocationId::idempotent(service, key.as_deref(), handler, idempotency_key))
            }
        }
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("ids and timestamps are visible ascii")
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| super::path::percent_decode(&v.replace('+', " ")).unwrap_or_else(|| v.to_owned()))
    })
}

/// Checks a request body against the handler's input rules.
fn validate_input(rules: &InputRules, content_type: Option<&str>, body: &[u8]) -> Result<(), Error> {
    match rules {
        InputRules::Any => Ok(()),
        InputRules::Empty => match (content_type, body.is_empty()) {
            (None, true) => Ok(()),
            (Some(ct), _) => {
                Err(Error::InputValidation(format!("Content-type '{ct}' not allowed: the handler takes no input")))
            }
            (None, false) => {
                Err(Error::InputValidation("Non-empty body not allowed: the handler takes no input".into()))
            }
        },
        InputRules::ContentType { content_type: expected, required, json_schema } => match content_type {
            None if body.is_empty() && !*required => Ok(()),
            None => Err(Error::InputValidation("Empty content-type".into())),
            Some(got) if !media_type_matches(expected, got) => {
                Err(Error::InputValidation(format!("Content-type '{got}' does not match '{expected}'")))
            }
            Some(_) if body.is_empty() && json_schema.is_some() => {
                Err(Error::InputValidation("Empty body not allowed".into()))
            }
            Some(_) => Ok(()),
        },
    }
}

/// `type/subtype` equality ignoring parameters and case; `*` matches anything.
fn media_type_matches(pattern: &str, got: &str) -> bool {
    let essence = |s: &str| s.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let (p, g) = (essence(pattern), essence(got));
    let (pt, ps) = p.split_once('/').unwrap_or((&p, "*"));
    let (gt, gs) = g.split_once('/').unwrap_or((&g, ""));
    (pt == "*" || pt == gt) && (ps == "*" || ps == gs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_rules_match_restate() {
        let json =
            InputRules::ContentType { content_type: "application/json".into(), required: false, json_schema: None };
        assert!(validate_input(&json, Some("application/json"), b"1").is_ok());
        assert!(validate_input(&json, Some("application/json; charset=utf-8"), b"1").is_ok());
        assert!(validate_input(&json, None, b"").is_ok());
        let e = validate_input(&json, Some("text/plain"), b"\"x\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "input validation error: Content-type 'text/plain' does not match 'application/json'"
        );
        assert_eq!(
            validate_input(&json, None, b"x").unwrap_err().to_string(),
            "input validation error: Empty content-type"
        );
        assert!(validate_input(&InputRules::Empty, Some("application/json"), b"").is_err());
        assert!(validate_input(&InputRules::Empty, None, b"").is_ok());
        assert!(validate_input(&InputRules::Any, Some("x/y"), b"zz").is_ok());
        assert!(media_type_matches("*/*", "text/plain"));
        assert!(media_type_matches("application/*", "application/cbor"));
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param(Some("delay=10s&x=1"), "delay").as_deref(), Some("10s"));
        assert_eq!(query_param(Some("x=1"), "delay"), None);
        assert_eq!(query_param(None, "delay"), None);
    }
}
