//! One attempt: open the stream to the pinned deployment, replay the journal, relay what the
//! SDK sends back to the partition as effects, forward live notifications (bidi), and end
//! the request stream once the SDK sent its terminal message.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::AttemptContext;
use super::client::{RequestBody, join_uri, percent_encode};
use super::discovery::discover_lambda;
use super::lambda::{FunctionArn, LambdaError, LambdaRequest};
use super::trace::AttemptTrace;
use crate::durations::now_ms;
use crate::engine::action::InvokeAttempt;
use crate::engine::command::{Command, Effect, EffectBatch};
use crate::engine::records::{
    FailureInfo, InvocationResult, JournalEntry, PinnedDeployment, Retention, RetryPolicy, Target, WaitSet,
};
use crate::engine::store::Store;
use crate::error_chain;
use crate::metrics::{self, AttemptOutcome};
use crate::protocol::frame;
use crate::protocol::manifest::ProtocolMode;
use crate::protocol::messages::{
    DeploymentMessage, JournalCommand as SdkCommand, ProposedRunResult, StartMessage, StateEntry, ty,
};
use crate::protocol::{ServiceProtocolVersion, choose_version};
use crate::schema::{
    Deployment, Endpoint, LambdaVersionCheck, Schema, SchemaChange, ServiceRevision, check_lambda_version,
};

/// Why an attempt failed; becomes the invocation's last failure.
#[derive(Debug)]
pub struct AttemptFailure {
    pub info: FailureInfo,
    pub next_retry_delay_ms: Option<u64>,
    /// Retrying cannot help (the deployment or handler is gone): the invocation ends.
    pub terminal: bool,
}

impl AttemptFailure {
    fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            info: FailureInfo { code, message: message.into(), ..Default::default() },
            next_retry_delay_ms: None,
            terminal: false,
        }
    }

    fn terminal(code: u16, message: impl Into<String>) -> Self {
        Self { terminal: true, ..Self::new(code, message) }
    }
}

/// Sends effects to the partition in the order they happened.
struct Reporter<'a> {
    ctx: &'a AttemptContext,
    id: crate::ids::InvocationId,
    attempt: u32,
    pending: Vec<Effect>,
    /// The attempt's spans, when its invocation is traced.
    trace: Option<AttemptTrace>,
}

impl Reporter<'_> {
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        for effect in &self.pending {
            if let Effect::Failed { failure, .. } = effect {
                tracing::warn!(
                    invocation = %self.id,
                    attempt = self.attempt,
                    code = failure.code,
                    "attempt failed: {}",
                    failure.message
                );
            }
        }
        let batch = EffectBatch { id: self.id, attempt: self.attempt, effects: std::mem::take(&mut self.pending) };
        if self.ctx.partitions.tell(self.id.partition_key, Command::Effects(Box::new(batch))).is_err() {
            tracing::debug!(invocation = %self.id, "partition gone; dropping effects");
        }
    }

    fn fail(&mut self, failure: AttemptFailure) {
        self.pending.push(Effect::Failed {
            failure: failure.info,
            next_retry_delay_ms: failure.next_retry_delay_ms,
            terminal: failure.terminal,
        });
        self.flush();
    }
}

pub async fn run(
    ctx: Arc<AttemptContext>,
    spec: Box<InvokeAttempt>,
    mut notifications: mpsc::UnboundedReceiver<(u32, JournalEntry)>,
) {
    let trace = AttemptTrace::start(spec.trace, spec.deployment.as_ref().and_then(|p| p.executed_version.clone()));
    let mut reporter = Reporter { ctx: &ctx, id: spec.id, attempt: spec.attempt, pending: Vec::new(), trace };
    if let Err(failure) = drive(&ctx, &spec, &mut notifications, &mut reporter).await {
        reporter.fail(failure);
    }
}

/// The deployment, protocol version and service revision an attempt runs against.
struct Chosen<'s> {
    deployment: &'s Deployment,
    version: ServiceProtocolVersion,
    service: &'s ServiceRevision,
    /// For a first attempt: the pin to record, and the settings of the revision it starts on.
    newly_pinned: Option<(PinnedDeployment, RetryPolicy, Retention)>,
}

/// The deployment an attempt runs on: the one it is pinned to, or for a first attempt the
/// latest revision of its service, re-validated against what the invocation was created for
/// (its handler must still exist, with the same kind).
fn choose<'s>(schema: &'s Schema, spec: &InvokeAttempt) -> Result<Chosen<'s>, AttemptFailure> {
    let (service_name, handler_name) = (&spec.target.service, &spec.target.handler);
    let Some(pinned) = &spec.deployment else { return choose_latest(schema, spec) };
    let deployment = schema.deployments.get(&pinned.deployment).ok_or_else(|| {
        AttemptFailure::terminal(
            410,
            format!(
                "the deployment {} that {} was pinned to was removed (force) before it completed",
                pinned.deployment,
                spec.target.display()
            ),
        )
    })?;
    let version = ServiceProtocolVersion::from_u32(pinned.protocol_version).ok_or_else(|| {
        AttemptFailure::terminal(500, format!("unsupported pinned protocol version {}", pinned.protocol_version))
    })?;
    let service = deployment.services.iter().find(|s| &s.name == service_name).ok_or_else(|| {
        AttemptFailure::terminal(
            500,
            format!(
                "deployment {} does not serve '{service_name}' ({service_name}/{handler_name} is pinned to it)",
                deployment.id
            ),
        )
    })?;
    Ok(Chosen { deployment, version, service, newly_pinned: None })
}

fn choose_latest<'s>(schema: &'s Schema, spec: &InvokeAttempt) -> Result<Chosen<'s>, AttemptFailure> {
    let (service_name, handler_name) = (&spec.target.service, &spec.target.handler);
    let service = match &spec.requested_deployment {
        Some(requested) => {
            if !schema.deployments.contains_key(requested) {
                return Err(AttemptFailure::terminal(
                    410,
                    format!(
                        "the deployment {requested} that {} was sent to (x-perdure-deployment) was removed before it started",
                        spec.target.display()
                    ),
                ));
            }
            schema.revision_on(requested, service_name).ok_or_else(|| {
                AttemptFailure::terminal(404, format!("the deployment {requested} does not serve '{service_name}'"))
            })?
        }
        None => schema.route(service_name, spec.target.key.as_deref(), &spec.id).ok_or_else(|| {
            AttemptFailure::terminal(404, format!("the service '{service_name}' is no longer registered"))
        })?,
    };
    let deployment = schema.deployments.get(&service.deployment_id).ok_or_else(|| {
        AttemptFailure::terminal(
            410,
            format!(
                "the latest revision of '{service_name}' is on deployment {}, which is gone",
                service.deployment_id
            ),
        )
    })?;
    let handler = service.handler(handler_name).ok_or_else(|| {
        AttemptFailure::terminal(
            404,
            format!(
                "the handler '{handler_name}' of '{service_name}' is gone: revision {} (deployment {}) does not serve it",
                service.revision, deployment.id
            ),
        )
    })?;
    let kind = service.target(handler, None).handler_kind;
    if kind != spec.target.handler_kind {
        return Err(AttemptFailure::terminal(
            409,
            format!(
                "the handler {service_name}/{handler_name} was called as {:?} but revision {} (deployment {}) serves it as {:?}",
                spec.target.handler_kind, service.revision, deployment.id, kind
            ),
        ));
    }
    let version =
        choose_version(deployment.min_protocol_version, deployment.max_protocol_version).ok_or_else(|| {
            AttemptFailure::new(
                500,
                format!(
                    "deployment {} speaks protocol versions {}..{}, this server {}..{}",
                    deployment.id,
                    deployment.min_protocol_version,
                    deployment.max_protocol_version,
                    crate::protocol::MIN_SERVICE_PROTOCOL_VERSION,
                    crate::protocol::MAX_SERVICE_PROTOCOL_VERSION
                ),
            )
        })?;
    let pin = PinnedDeployment {
        deployment: deployment.id,
        protocol_version: version.as_u32(),
        executed_version: None,
        revision: service.revision,
    };
    let settings = (service.retry_policy(handler), service.retention(handler));
    Ok(Chosen { deployment, version, service, newly_pinned: Some((pin, settings.0, settings.1)) })
}

async fn drive(
    ctx: &AttemptContext,
    spec: &InvokeAttempt,
    notifications: &mut mpsc::UnboundedReceiver<(u32, JournalEntry)>,
    reporter: &mut Reporter<'_>,
) -> Result<(), AttemptFailure> {
    let schema = ctx.schema.snapshot();
    let chosen = choose(&schema, spec)?;
    if chosen.deployment.paused {
        // An emergency stop: nothing starts there. The invocation waits as paused (pinned
        // to it, if this was its first attempt) until the deployment is resumed.
        if let Some((pin, retry_policy, retention)) = chosen.newly_pinned {
            reporter.pending.push(Effect::Pinned(pin));
            reporter.pending.push(Effect::Settings { retry_policy, retention });
        }
        let message = format!(
            "deployment {} is paused: {} waits until it is resumed (POST /deployments/{}/resume)",
            chosen.deployment.id,
            spec.target.display(),
            chosen.deployment.id
        );
        reporter.pending.push(Effect::Held { message });
        reporter.flush();
        metrics::attempt(
            &chosen.deployment.id,
            protocol_label(&chosen.deployment.endpoint),
            AttemptOutcome::Held,
            Duration::ZERO,
        );
        return Ok(());
    }
    let (deployment, protocol, started) =
        (chosen.deployment.id, protocol_label(&chosen.deployment.endpoint), std::time::Instant::now());
    let result = match &chosen.deployment.endpoint {
        Endpoint::Http { uri, http_version } => {
            drive_http(ctx, spec, &schema, chosen, uri, http_version, notifications, reporter).await
        }
        Endpoint::Lambda { arn, assume_role_arn } => {
            drive_lambda(ctx, spec, &schema, chosen, arn, assume_role_arn.as_deref(), reporter).await
        }
    };
    let outcome = match &result {
        Ok(()) => AttemptOutcome::Ok,
        Err(f) if f.terminal => AttemptOutcome::TerminalFailure,
        Err(_) => AttemptOutcome::RetryableFailure,
    };
    metrics::attempt(&deployment, protocol, outcome, started.elapsed());
    if let Some(trace) = reporter.trace.take() {
        let target = format!("{}/{}", spec.target.service, spec.target.handler);
        let failure = result.as_ref().err().map(|f| format!("{}: {}", f.info.code, f.info.message));
        trace.finish(&target, spec.attempt, &deployment.to_string(), protocol, outcome.label(), failure.as_deref());
    }
    result
}

/// The `protocol` label of an attempt's metrics.
fn protocol_label(endpoint: &Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Http { http_version: crate::schema::HttpVersion::Http2, .. } => "http2",
        Endpoint::Http { http_version: crate::schema::HttpVersion::Http11, .. } => "http1",
        Endpoint::Lambda { .. } => "lambda",
    }
}

/// `/invoke/{service}/{handler}`: the path of an attempt's request (HTTP or Lambda event), and
/// the audience its signature names.
fn invoke_path(spec: &InvokeAttempt) -> String {
    format!("/invoke/{}/{}", spec.target.service, spec.target.handler)
}

/// The headers of an attempt's request, whatever carries it.
fn invocation_headers<'a>(
    ctx: &'a AttemptContext,
    spec: &InvokeAttempt,
    chosen: &'a Chosen<'_>,
    trace: Option<&AttemptTrace>,
) -> Vec<(String, String)> {
    let content_type = chosen.version.content_type();
    let mut headers = vec![
        ("content-type".to_owned(), content_type.to_owned()),
        ("accept".to_owned(), content_type.to_owned()),
        ("x-restate-invocation-id".to_owned(), spec.id.to_string()),
    ];
    if let Some(key) = &spec.target.key {
        headers.push(("x-restate-service-key".to_owned(), percent_encode(key)));
    }
    for (k, v) in ctx.config.additional_headers.iter().chain(&chosen.deployment.additional_headers) {
        headers.push((k.clone(), v.clone()));
    }
    if let Some(identity) = &ctx.identity {
        for (k, v) in identity.headers(&invoke_path(spec), spec.target.key.as_deref()) {
            headers.push((k.to_owned(), v));
        }
    }
    if let Some(trace) = trace {
        headers.push(("traceparent".to_owned(), trace.traceparent()));
    }
    headers
}

/// Records the pin (and the settings of the revision it starts on) of a first attempt.
fn pin(
    reporter: &mut Reporter<'_>,
    newly_pinned: Option<(PinnedDeployment, RetryPolicy, Retention)>,
    executed: Option<String>,
) {
    if let Some(trace) = &mut reporter.trace {
        trace.executed_version(executed.as_deref());
    }
    if let Some((mut pin, retry_policy, retention)) = newly_pinned {
        pin.executed_version = executed;
        reporter.pending.push(Effect::Pinned(pin));
        reporter.pending.push(Effect::Settings { retry_policy, retention });
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive_http(
    ctx: &AttemptContext,
    spec: &InvokeAttempt,
    schema: &Schema,
    chosen: Chosen<'_>,
    uri: &str,
    http_version: &crate::schema::HttpVersion,
    notifications: &mut mpsc::UnboundedReceiver<(u32, JournalEntry)>,
    reporter: &mut Reporter<'_>,
) -> Result<(), AttemptFailure> {
    let handler = chosen.service.handler(&spec.target.handler);
    let inactivity = Duration::from_millis(chosen.service.inactivity_timeout(handler));
    let abort = Duration::from_millis(chosen.service.abort_timeout(handler).max(1));
    let bidi = chosen.deployment.protocol_mode == ProtocolMode::BidiStream && !inactivity.is_zero();

    let initial = start_frames(ctx, spec, &chosen).await?;
    let content_type = chosen.version.content_type();
    let target =
        join_uri(uri, &invoke_path(spec)).map_err(|e| AttemptFailure::new(500, format!("bad deployment uri: {e}")))?;
    let mut builder = http::Request::post(target);
    for (k, v) in invocation_headers(ctx, spec, &chosen, reporter.trace.as_ref()) {
        builder = builder.header(k, v);
    }
    let (mut request_stream, body) = if bidi {
        let (tx, body) = RequestBody::channel();
        let _ = tx.send(initial);
        (Some(tx), body)
    } else {
        (None, RequestBody::Full(Some(initial)))
    };
    let request = builder.body(body).map_err(|e| AttemptFailure::new(500, e.to_string()))?;

    let response = tokio::time::timeout(abort, ctx.client.request(http_version, request))
        .await
        .map_err(|_| AttemptFailure::new(500, "the deployment did not answer within the abort timeout"))?
        .map_err(|e| AttemptFailure::new(500, format!("error when calling the deployment: {}", error_chain(&e))))?;
    check_head(response.status(), response.headers(), content_type).map_err(|mut f| {
        f.info.message = format!("deployment answered: {}", f.info.message);
        f
    })?;
    pin(reporter, chosen.newly_pinned, None);

    let mut body = response.into_body();
    let mut buffer = BytesMut::new();
    let mut next_forward = spec.journal_len;
    let mut ended = false;
    loop {
        let wait = if request_stream.is_some() { inactivity } else { abort };
        tokio::select! {
            frame = body.frame() => {
                let chunk = match frame {
                    None if ended => return Ok(()),
                    None => {
                        reporter.flush();
                        return Err(AttemptFailure::new(500, "the deployment closed the stream without End, Suspension or Error"));
                    }
                    Some(Err(e)) if ended => {
                        tracing::debug!(invocation = %spec.id, "error after the terminal message: {e}");
                        return Ok(());
                    }
                    Some(Err(e)) => {
                        reporter.flush();
                        return Err(AttemptFailure::new(500, format!("stream error: {}", error_chain(&e))));
                    }
                    Some(Ok(f)) => match f.into_data() {
                        Ok(data) => data,
                        Err(_) => continue,
                    },
                };
                if ended {
                    continue;
                }
                buffer.extend_from_slice(&chunk);
                ended = relay(ctx, schema, &mut buffer, reporter)?;
                reporter.flush();
                if ended {
                    // End our side so the SDK can finish its response; drain what is left.
                    request_stream = None;
                }
            }
            forwarded = notifications.recv(), if request_stream.is_some() => {
                let Some((index, entry)) = forwarded else { continue };
                if index < next_forward {
                    continue;
                }
                next_forward = index + 1;
                if let Some(trace) = &mut reporter.trace {
                    trace.forwarded(&entry);
                }
                let mut out = BytesMut::with_capacity(8 + entry.payload.len());
                frame::encode(entry.ty, &entry.payload, &mut out);
                if let Some(tx) = &request_stream {
                    let _ = tx.send(out.freeze());
                }
            }
            _ = tokio::time::sleep(wait) => {
                if request_stream.take().is_some() {
                    // Inactivity: closing our side makes the SDK suspend.
                    continue;
                }
                if ended {
                    return Ok(());
                }
                return Err(AttemptFailure::new(500, format!(
                    "no message from the deployment for {} (abort timeout)",
                    humantime::format_duration(abort)
                )));
            }
        }
    }
}

/// Decodes the SDK's messages in `buffer` into effects (queued on the reporter); true once
/// the terminal one (End, Suspension, Error) came.
fn relay(
    ctx: &AttemptContext,
    schema: &Schema,
    buffer: &mut BytesMut,
    reporter: &mut Reporter<'_>,
) -> Result<bool, AttemptFailure> {
    while let Some(frame) = frame::decode(buffer, ctx.config.message_size_limit)
        .map_err(|e| AttemptFailure::new(571, format!("protocol violation: {e}")))?
    {
        let message = DeploymentMessage::from_frame(&frame)
            .map_err(|e| AttemptFailure::new(571, format!("protocol violation: {e}")))?;
        let terminal = message.is_terminal();
        let effect = effect_of(schema, message, reporter.trace.as_mut())?;
        reporter.pending.push(effect);
        if terminal {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One attempt through `Lambda.Invoke`: the whole request (Start and the journal) as one
/// event, the whole response back. An invocation pinned to a function version invokes
/// exactly that version; a first attempt invokes the registered ARN (an alias follows
/// wherever it points) and records the version that ran (`X-Amz-Executed-Version`).
async fn drive_lambda(
    ctx: &AttemptContext,
    spec: &InvokeAttempt,
    schema: &Schema,
    chosen: Chosen<'_>,
    registered: &str,
    role: Option<&str>,
    reporter: &mut Reporter<'_>,
) -> Result<(), AttemptFailure> {
    let arn = FunctionArn::parse(registered).map_err(|e| AttemptFailure::terminal(500, e))?;
    let deployment = chosen.deployment;
    let pinned_version = spec.deployment.as_ref().and_then(|p| p.executed_version.clone());
    let function = match &pinned_version {
        Some(v) => arn.with_qualifier(v),
        None if arn.is_alias() => match held_version(ctx, deployment, &arn, role).await {
            Some(v) => arn.with_qualifier(&v),
            None => registered.to_owned(),
        },
        None => registered.to_owned(),
    };
    let handler = chosen.service.handler(&spec.target.handler);
    let abort = Duration::from_millis(chosen.service.abort_timeout(handler).max(1));
    let content_type = chosen.version.content_type();
    let request = LambdaRequest {
        path: invoke_path(spec),
        method: "POST",
        headers: invocation_headers(ctx, spec, &chosen, reporter.trace.as_ref())
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        body: start_frames(ctx, spec, &chosen).await?,
        zstd: deployment.manifest.lambda_compression.as_deref() == Some("zstd"),
    };
    let response = tokio::time::timeout(abort, ctx.lambda.call(&function, &arn.region, role, &request))
        .await
        .map_err(|_| {
            AttemptFailure::new(
                500,
                format!("{function} did not answer within the abort timeout ({})", humantime::format_duration(abort)),
            )
        })?
        .map_err(|e| lambda_failure(e, &function, pinned_version.as_deref()))?;
    check_head(response.status, &response.headers, content_type).map_err(|mut f| {
        f.info.message = format!("{function} answered: {}", f.info.message);
        f
    })?;
    let executed = response.executed_version.clone().or(pinned_version.clone());
    if chosen.newly_pinned.is_some()
        && arn.is_alias()
        && let Some(version) = &executed
    {
        // Nothing of this attempt is recorded yet: if the version is one new invocations must
        // not run on, its answer is dropped and the next attempt goes where the check says.
        check_version(ctx, deployment, &arn, role, version).await?;
    }
    pin(reporter, chosen.newly_pinned, executed);
    let mut buffer = BytesMut::from(&response.body[..]);
    let ended = relay(ctx, schema, &mut buffer, reporter)?;
    reporter.flush();
    if !ended {
        return Err(AttemptFailure::new(500, format!("{function} answered without End, Suspension or Error")));
    }
    Ok(())
}

/// While the alias points at a version that failed its check, where new invocations go: the
/// held version, unless the alias has since moved to one that passed (or one not yet seen,
/// which the alias then runs and the check sees). Asks Lambda where the alias points only
/// in that state.
async fn held_version(
    ctx: &AttemptContext,
    deployment: &Deployment,
    arn: &FunctionArn,
    role: Option<&str>,
) -> Option<String> {
    let held = deployment.lambda_versions.held_at.clone()?;
    let current = match ctx.lambda.alias_version(deployment.endpoint.address(), &arn.region, role).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(deployment = %deployment.id, "cannot read where alias {} points: {e}", arn.qualifier);
            return Some(held);
        }
    };
    match deployment.lambda_versions.seen.get(&current) {
        Some(c) if !c.compatible => Some(held),
        Some(c) => {
            let check = c.clone();
            record_version(ctx, deployment, &current, check).await;
            Some(current)
        }
        None => None,
    }
}

/// Checks a version seen behind an alias for the first time (discovery on exactly it,
/// compared with the registered manifest) and records what it found. Err: this attempt's
/// answer must not count.
async fn check_version(
    ctx: &AttemptContext,
    deployment: &Deployment,
    arn: &FunctionArn,
    role: Option<&str>,
    version: &str,
) -> Result<(), AttemptFailure> {
    let refused = |check: &LambdaVersionCheck| {
        AttemptFailure::new(
            409,
            format!(
                "Lambda version {version} behind alias '{}' of deployment {} does not match what was registered ({}); \
                 new invocations stay on the last version that does until the alias is registered again with breaking=true",
                arn.qualifier,
                deployment.id,
                check.changes.join("; ")
            ),
        )
    };
    if let Some(check) = deployment.lambda_versions.seen.get(version) {
        return if check.compatible { Ok(()) } else { Err(refused(check)) };
    }
    let exact = arn.with_qualifier(version);
    let discovered = discover_lambda(
        &ctx.lambda,
        &exact,
        arn,
        role,
        &deployment.additional_headers,
        ctx.identity.as_deref(),
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| {
        AttemptFailure::new(500, format!("checking Lambda version {version} behind alias '{}': {e}", arn.qualifier))
    })?;
    let check = check_lambda_version(deployment, &discovered.manifest, &ctx.defaults, now_ms());
    if check.compatible {
        tracing::info!(deployment = %deployment.id, "Lambda version {version} behind alias '{}' checked: it matches", arn.qualifier);
    } else {
        tracing::warn!(
            deployment = %deployment.id,
            "Lambda version {version} behind alias '{}' does not match the registered manifest: {}",
            arn.qualifier,
            check.changes.join("; ")
        );
    }
    let result = if check.compatible { Ok(()) } else { Err(refused(&check)) };
    record_version(ctx, deployment, version, check).await;
    result
}

/// Records a version's check in the schema (once: a change that is already there is skipped).
async fn record_version(ctx: &AttemptContext, deployment: &Deployment, version: &str, check: LambdaVersionCheck) {
    let id = deployment.id;
    let recorded = ctx
        .schema
        .update(|schema| {
            let Some(d) = schema.deployments.get(&id) else { return Ok::<_, crate::storage::StorageError>((None, ())) };
            let unchanged = d.lambda_versions.seen.get(version).is_some_and(|c| c.compatible == check.compatible)
                && (d.lambda_versions.held_at.is_none() == check.compatible);
            let change = (!unchanged).then(|| SchemaChange::LambdaVersion {
                deployment: id,
                version: version.to_owned(),
                check: check.clone(),
            });
            Ok((change, ()))
        })
        .await;
    if let Err(e) = recorded {
        tracing::warn!(deployment = %id, "recording the check of Lambda version {version}: {e}");
    }
}

/// An attempt's failure from a Lambda call.
fn lambda_failure(e: LambdaError, function: &str, pinned: Option<&str>) -> AttemptFailure {
    let message = match (&e, pinned) {
        (LambdaError::NotFound(_), Some(v)) => format!(
            "{e}. The invocation is pinned to version {v}, which must stay published until it completes \
             (delete a version once `perdure dp describe` shows nothing pinned to it)"
        ),
        (LambdaError::TooLarge { .. }, _) => format!("{e} calling {function}"),
        _ => e.to_string(),
    };
    AttemptFailure::new(e.code(), message)
}

/// Start message plus the journal replay, framed. The journal (and, for an object, its state
/// when sent eagerly) is read off the async workers.
async fn start_frames(
    ctx: &AttemptContext,
    spec: &InvokeAttempt,
    chosen: &Chosen<'_>,
) -> Result<Bytes, AttemptFailure> {
    let handler = chosen.service.handler(&spec.target.handler);
    let eager_state =
        spec.target.object().filter(|_| !chosen.service.lazy_state(handler) && ctx.config.eager_state_size_limit > 0);
    let (storage, id, len) = (ctx.storage.clone(), spec.id, spec.journal_len);
    let eager = eager_state.is_some();
    let read = tokio::task::spawn_blocking(move || {
        let journal = storage.journal(&id, len).map_err(|e| e.to_string())?;
        let state = match eager_state {
            Some(obj) => storage.state_all(&obj).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        Ok::<_, String>((journal, state))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let (journal, state) = read.map_err(|e| AttemptFailure::new(500, format!("reading the journal: {e}")))?;
    if journal.len() != spec.journal_len as usize {
        return Err(AttemptFailure::new(
            500,
            format!("reading the journal: expected {} entries, found {}", spec.journal_len, journal.len()),
        ));
    }
    // All of the object's state, as long as it fits the limit; past it the SDK reads the
    // rest lazily (partial state).
    let mut partial_state = !eager;
    let mut state_map = Vec::with_capacity(state.len());
    let mut size = 0usize;
    for (key, value) in state {
        size += key.len() + value.len();
        if size > ctx.config.eager_state_size_limit {
            partial_state = true;
            break;
        }
        state_map.push(StateEntry { key, value });
    }
    let start = StartMessage {
        id: Bytes::copy_from_slice(&spec.id.to_bytes()),
        debug_id: spec.id.to_string(),
        known_entries: spec.journal_len,
        state_map,
        partial_state,
        key: spec.target.key.clone().unwrap_or_default(),
        retry_count_since_last_stored_entry: spec.retry_count,
        duration_since_last_stored_entry: now_ms().saturating_sub(spec.journal_modified_at),
        random_seed: spec.id.random_seed(),
    };
    let mut out = BytesMut::new();
    frame::encode_message(ty::START, &start, &mut out);
    for entry in &journal {
        frame::encode(entry.ty, &entry.payload, &mut out);
    }
    Ok(out.freeze())
}

/// Checks status and content type of the SDK's response head.
fn check_head(status: http::StatusCode, headers: &http::HeaderMap, content_type: &str) -> Result<(), AttemptFailure> {
    let got = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if status.is_success() && got == Some(content_type) {
        return Ok(());
    }
    let retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| secs.saturating_mul(1000).min(crate::durations::MAX_MS));
    let mut failure = if status.is_success() {
        AttemptFailure::new(571, format!("content type {} instead of {content_type}", got.unwrap_or("(none)")))
    } else {
        AttemptFailure::new(status.as_u16(), format!("HTTP {status}"))
    };
    if matches!(status.as_u16(), 429 | 503) {
        failure.next_retry_delay_ms = retry_after;
    }
    Err(failure)
}

/// What a message from the SDK means for the partition.
fn effect_of(
    schema: &Schema,
    message: DeploymentMessage,
    trace: Option<&mut AttemptTrace>,
) -> Result<Effect, AttemptFailure> {
    Ok(match message {
        DeploymentMessage::Command { command, payload } => {
            let ty = command.ty();
            let call_trace = trace.and_then(|t| t.command(&command));
            let call = match &command {
                SdkCommand::Call(c) => Some((&c.service_name, &c.handler_name, &c.key)),
                SdkCommand::OneWayCall(c) => Some((&c.service_name, &c.handler_name, &c.key)),
                _ => None,
            };
            let (call_target, call_policy) = match call {
                Some((service, handler, key)) => {
                    let (target, policy, retention) =
                        resolve_call(schema, service, handler, key).map_err(|message| AttemptFailure {
                            info: FailureInfo {
                                code: 500,
                                message,
                                related_command_type: Some(ty),
                                related_command_name: Some(command.entry_name().to_owned()).filter(|n| !n.is_empty()),
                                ..Default::default()
                            },
                            next_retry_delay_ms: None,
                            terminal: false,
                        })?;
                    (Some(target), Some((policy, retention)))
                }
                None => (None, None),
            };
            Effect::Command { ty, payload, call_target, call_policy, call_trace: call_trace.filter(|_| call.is_some()) }
        }
        DeploymentMessage::ProposeRunCompletion(p) => {
            if let Some(t) = trace {
                t.run_proposed(p.completion_id);
            }
            Effect::ProposeRun {
                completion_id: p.completion_id,
                result: match p.result {
                    ProposedRunResult::Value(v) => InvocationResult::Success(v),
                    ProposedRunResult::Failure(f) => InvocationResult::Failure {
                        code: crate::engine::entries::clamp_code(f.code),
                        message: f.message,
                    },
                },
            }
        }
        DeploymentMessage::Suspension(s) => Effect::Suspended(WaitSet {
            completions: s.waiting_completions,
            signals: s.waiting_signals,
            named_signals: s.waiting_named_signals,
        }),
        DeploymentMessage::Error(e) => {
            if let Some(t) = trace {
                t.failed(&format!("{}: {}", e.code, e.message));
            }
            let mut message = e.message;
            if !e.stacktrace.is_empty() {
                message.push('\n');
                message.push_str(&e.stacktrace);
            }
            Effect::Failed {
                failure: FailureInfo {
                    code: crate::engine::entries::clamp_code(e.code),
                    message,
                    related_command_index: e.related_command_index,
                    related_command_name: e.related_command_name,
                    related_command_type: e.related_command_type.and_then(|t| u16::try_from(t).ok()),
                },
                next_retry_delay_ms: e.next_retry_delay.map(|ms| ms.min(crate::durations::MAX_MS)),
                terminal: false,
            }
        }
        DeploymentMessage::End => Effect::Ended,
    })
}

/// Resolves the callee of a call against the current schema.
fn resolve_call(
    schema: &Schema,
    service: &str,
    handler: &str,
    key: &str,
) -> Result<(Target, RetryPolicy, Retention), String> {
    let svc =
        schema.service(service).ok_or_else(|| format!("the call target service '{service}' is not registered"))?;
    let h = svc.handler(handler).ok_or_else(|| format!("the service '{service}' has no handler '{handler}'"))?;
    let key = match (svc.is_keyed(), key.is_empty()) {
        (true, true) => return Err(format!("calling '{service}/{handler}' needs a key: '{service}' is keyed")),
        (true, false) => Some(key.to_owned()),
        (false, _) => None,
    };
    Ok((svc.target(h, key), svc.retry_policy(h), svc.retention(h)))
}
