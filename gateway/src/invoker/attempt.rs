//! One attempt, driven: the only part of the invoker that waits on anything. It calls the pure
//! parts in order and moves what they produce between storage, the transport and the partition:
//!
//! 1. [`choose`]: the deployment, protocol version and revision; a paused deployment ends the
//!    attempt here ([`Chosen::held`]).
//! 2. The destination: the deployment's URI, or the Lambda function to invoke
//!    ([`lambda_versions::function_to_invoke`]).
//! 3. The journal (and an object's eager state) is read off the async workers, and framed with
//!    the start message ([`request::start_frames`], the clock passed in).
//! 4. The request goes out through the endpoint's [`Transport`](super::transport::Transport),
//!    under the abort timeout; the response head is checked ([`translate::check_head`]); a first
//!    attempt through a Lambda alias has the version that ran checked
//!    ([`lambda_versions::check_version`]), then records its pin ([`Chosen::pin`]).
//! 5. Each chunk of the body becomes effects ([`translate::Translator`]), sent to the partition
//!    in order, chunk by chunk. On a bidi stream, notifications the partition forwards are
//!    written to the request side until the SDK's terminal message or inactivity closes it.
//! 6. A failure at any step is reported as the attempt's last effect.
//!
//! Owns: the order of these steps, the timers (inactivity, abort) and batching effects to the
//! partition ([`Reporter`]). Does not own: any decision the pure parts make, nor moving bytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::sync::mpsc;

use super::choose::{Chosen, Timeouts, choose, protocol_label};
use super::client::join_uri;
use super::context::AttemptContext;
use super::failure::AttemptFailure;
use super::lambda::FunctionArn;
use super::lambda_versions;
use super::request::{self, HeaderSources, invoke_path};
use super::spans::AttemptSpans;
use super::translate::{Translator, check_head};
use super::transport::{Destination, Request, RequestFrames, ResponseBody};
use crate::durations::now_ms;
use crate::engine::action::InvokeAttempt;
use crate::engine::command::{Command, Effect, EffectBatch};
use crate::engine::records::{JournalEntry, ObjectKey};
use crate::engine::store::Store;
use crate::metrics::{self, AttemptOutcome};
use crate::schema::{Endpoint, Schema};

/// Sends effects to the partition in the order they happened.
struct Reporter<'a> {
    ctx: &'a AttemptContext,
    id: crate::ids::InvocationId,
    attempt: u32,
    pending: Vec<Effect>,
    /// The attempt's spans, when its invocation is traced.
    spans: Option<AttemptSpans>,
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
        self.pending.push(failure.into_effect());
        self.flush();
    }
}

/// Runs one attempt to its end; everything it learns reaches the partition as effects.
pub async fn run(
    ctx: Arc<AttemptContext>,
    spec: Box<InvokeAttempt>,
    mut notifications: mpsc::UnboundedReceiver<(u32, JournalEntry)>,
) {
    let spans = AttemptSpans::start(spec.trace, spec.deployment.as_ref().and_then(|p| p.executed_version.clone()));
    let mut reporter = Reporter { ctx: &ctx, id: spec.id, attempt: spec.attempt, pending: Vec::new(), spans };
    if let Err(failure) = drive(&ctx, &spec, &mut notifications, &mut reporter).await {
        reporter.fail(failure);
    }
}

async fn drive(
    ctx: &AttemptContext,
    spec: &InvokeAttempt,
    notifications: &mut mpsc::UnboundedReceiver<(u32, JournalEntry)>,
    reporter: &mut Reporter<'_>,
) -> Result<(), AttemptFailure> {
    let schema = ctx.schema.snapshot();
    let chosen = choose(&schema, spec)?;
    let (deployment, protocol) = (chosen.deployment.id, protocol_label(&chosen.deployment.endpoint));
    if chosen.deployment.paused {
        reporter.pending.extend(chosen.held(spec));
        reporter.flush();
        metrics::attempt(&deployment, protocol, AttemptOutcome::Held, Duration::ZERO);
        return Ok(());
    }
    let started = Instant::now();
    let result = exchange(ctx, spec, &schema, chosen, notifications, reporter).await;
    let outcome = match &result {
        Ok(()) => AttemptOutcome::Ok,
        Err(f) if f.is_transient() => AttemptOutcome::RetryableFailure,
        Err(_) => AttemptOutcome::TerminalFailure,
    };
    metrics::attempt(&deployment, protocol, outcome, started.elapsed());
    if let Some(spans) = reporter.spans.take() {
        let target = format!("{}/{}", spec.target.service, spec.target.handler);
        let failure = result.as_ref().err().map(|f| format!("{}: {}", f.info.code, f.info.message));
        spans.finish(&target, spec.attempt, &deployment.to_string(), protocol, outcome.label(), failure.as_deref());
    }
    result
}

/// Steps 2 to 5: the request, the response head, the pin, then the body.
async fn exchange(
    ctx: &AttemptContext,
    spec: &InvokeAttempt,
    schema: &Schema,
    mut chosen: Chosen<'_>,
    notifications: &mut mpsc::UnboundedReceiver<(u32, JournalEntry)>,
    reporter: &mut Reporter<'_>,
) -> Result<(), AttemptFailure> {
    let timeouts = chosen.timeouts(spec);
    let pinned_version = spec.deployment.as_ref().and_then(|p| p.executed_version.clone());
    let path = invoke_path(spec);
    let (destination, alias) = match &chosen.deployment.endpoint {
        Endpoint::Http { uri, http_version } => {
            let uri = join_uri(uri, &path).map_err(|e| AttemptFailure::internal(format!("bad deployment uri: {e}")))?;
            (Destination::Http { uri, version: http_version.clone() }, None)
        }
        Endpoint::Lambda { arn: registered, assume_role_arn } => {
            let arn = FunctionArn::parse(registered).map_err(AttemptFailure::unrunnable)?;
            let role = assume_role_arn.as_deref();
            let function =
                lambda_versions::function_to_invoke(ctx, chosen.deployment, &arn, role, pinned_version.as_deref())
                    .await;
            let destination = Destination::Lambda {
                function,
                region: arn.region.clone(),
                role: role.map(str::to_owned),
                zstd: chosen.deployment.manifest.lambda_compression.as_deref() == Some("zstd"),
            };
            (destination, Some((arn, role)))
        }
    };

    let handler = chosen.handler(spec);
    let eager = request::eager_state(spec, chosen.service.lazy_state(handler), ctx.config.eager_state_size_limit);
    let (journal, state) = read_replay(ctx, spec, eager).await?;
    let initial = request::start_frames(spec, &journal, state, ctx.config.eager_state_size_limit, now_ms())?;
    drop(journal);
    let signature = ctx.identity.as_ref().map(|i| i.headers(&path, spec.target.key.as_deref()).to_vec());
    let headers = request::invocation_headers(
        spec,
        HeaderSources {
            version: chosen.version,
            configured: &ctx.config.additional_headers,
            deployment: &chosen.deployment.additional_headers,
            signature: signature.unwrap_or_default(),
            traceparent: reporter.spans.as_ref().map(AttemptSpans::traceparent),
        },
    );
    let (request_stream, body) = if timeouts.inactivity.is_zero() {
        (None, RequestFrames::Full(initial))
    } else {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(initial);
        (Some(tx), RequestFrames::Stream(rx))
    };
    let request = Request { destination: destination.clone(), path, headers, body };

    let transport = ctx.transports.to(&destination);
    let response = tokio::time::timeout(timeouts.abort, transport.open(request))
        .await
        .map_err(|_| AttemptFailure::no_answer(&destination, timeouts.abort))?
        .map_err(|e| AttemptFailure::transport(e, &destination, pinned_version.as_deref()))?;
    check_head(response.status, &response.headers, chosen.version.content_type())
        .map_err(|f| f.answered_by(&destination))?;
    let executed = match &alias {
        Some(_) => response.executed_version.or(pinned_version),
        None => None,
    };
    if let Some((arn, role)) = &alias
        && chosen.newly_pinned.is_some()
        && arn.is_alias()
        && let Some(version) = &executed
    {
        // Nothing of this attempt is recorded yet: if the version is one new invocations must
        // not run on, its answer is dropped and the next attempt goes where the check says.
        lambda_versions::check_version(ctx, chosen.deployment, arn, *role, version, now_ms()).await?;
    }
    if let Some(spans) = &mut reporter.spans {
        spans.executed_version(executed.as_deref());
    }
    reporter.pending.extend(chosen.pin(executed));
    let open = Open { ctx, spec, schema, destination: &destination, timeouts };
    relay(open, response.body, request_stream, notifications, reporter).await
}

/// Reads the journal to replay (and an object's state, when sent eagerly), off the async workers.
async fn read_replay(
    ctx: &AttemptContext,
    spec: &InvokeAttempt,
    eager: Option<ObjectKey>,
) -> Result<(Vec<JournalEntry>, Option<Vec<(bytes::Bytes, bytes::Bytes)>>), AttemptFailure> {
    let (storage, id, len) = (ctx.storage.clone(), spec.id, spec.journal_len);
    tokio::task::spawn_blocking(move || {
        let journal = storage.journal(&id, len).map_err(|e| e.to_string())?;
        let state = match eager {
            Some(obj) => Some(storage.state_all(&obj).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok::<_, String>((journal, state))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()))
    .map_err(|e| AttemptFailure::internal(format!("reading the journal: {e}")))
}

/// An attempt whose request is out: what reading its answer needs.
struct Open<'a> {
    ctx: &'a AttemptContext,
    spec: &'a InvokeAttempt,
    schema: &'a Schema,
    destination: &'a Destination,
    timeouts: Timeouts,
}

/// Step 5: turns the response body into effects, chunk by chunk, and (bidi) forwards the
/// partition's notifications into the request stream until it closes.
async fn relay(
    open: Open<'_>,
    mut body: ResponseBody,
    mut request_stream: Option<mpsc::UnboundedSender<bytes::Bytes>>,
    notifications: &mut mpsc::UnboundedReceiver<(u32, JournalEntry)>,
    reporter: &mut Reporter<'_>,
) -> Result<(), AttemptFailure> {
    let Open { ctx, spec, schema, destination, timeouts } = open;
    let mut translator = Translator::new(ctx.config.message_size_limit);
    let mut next_forward = spec.journal_len;
    loop {
        let wait = if request_stream.is_some() { timeouts.inactivity } else { timeouts.abort };
        tokio::select! {
            chunk = body.next() => {
                let chunk = match chunk {
                    None if translator.ended() => return Ok(()),
                    None => {
                        reporter.flush();
                        return Err(AttemptFailure::unterminated(destination));
                    }
                    Some(Err(e)) if translator.ended() => {
                        tracing::debug!(invocation = %spec.id, "error after the terminal message: {e}");
                        return Ok(());
                    }
                    Some(Err(e)) => {
                        reporter.flush();
                        return Err(AttemptFailure::stream(&e));
                    }
                    Some(Ok(chunk)) => chunk,
                };
                if translator.ended() {
                    continue;
                }
                translator.push(&chunk, schema, reporter.spans.as_mut(), &mut reporter.pending)?;
                reporter.flush();
                if translator.ended() {
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
                if let Some(spans) = &mut reporter.spans {
                    spans.forwarded(&entry);
                }
                if let Some(tx) = &request_stream {
                    let _ = tx.send(request::forwarded_frame(&entry));
                }
            }
            _ = tokio::time::sleep(wait) => {
                if request_stream.take().is_some() {
                    // Inactivity: closing our side makes the SDK suspend.
                    continue;
                }
                if translator.ended() {
                    return Ok(());
                }
                return Err(AttemptFailure::silent(timeouts.abort));
            }
        }
    }
}
