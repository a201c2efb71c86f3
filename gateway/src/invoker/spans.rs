//! The spans of one attempt: the attempt's own (a child of the invocation's span; its id is
//! the `traceparent` the deployment receives) and one per journal step the SDK sends in it:
//! `run` until its result is proposed, `sleep` until its wake-up time, `call` until its
//! result comes back in this attempt (or the attempt ends), `send` at once. A call's callee
//! gets its place in the trace here, under the call's span.

use crate::engine::records::{JournalEntry, TraceContext};
use crate::protocol::messages::{JournalCommand, NotificationMessage, ty};
use crate::traces::{self, Span, SpanKind};

pub struct AttemptSpans {
    context: TraceContext,
    span_id: u64,
    start_ns: u64,
    /// Steps waiting for their completion id: `run` and `call`.
    open: Vec<(u32, Span)>,
    /// The Lambda function version that ran it.
    executed_version: Option<String>,
    /// What the SDK reported as the attempt's error.
    error: Option<String>,
}

impl AttemptSpans {
    /// The trace of an attempt of an invocation traced as `context` (none without exporter).
    pub fn start(context: Option<TraceContext>, executed_version: Option<String>) -> Option<Self> {
        let context = context.filter(|_| traces::enabled())?;
        Some(AttemptSpans {
            context,
            span_id: traces::new_span_id(),
            start_ns: traces::now_ns(),
            open: Vec::new(),
            executed_version,
            error: None,
        })
    }

    /// The `traceparent` header of the attempt's request.
    pub fn traceparent(&self) -> String {
        traces::traceparent(self.context.trace_id, self.span_id, self.context.sampled)
    }

    pub fn executed_version(&mut self, version: Option<&str>) {
        if let Some(v) = version {
            self.executed_version = Some(v.to_owned());
        }
    }

    fn step(&self, name: String, kind: SpanKind) -> Span {
        Span::new(self.context.trace_id, traces::new_span_id(), self.span_id, name, kind, traces::now_ns())
    }

    /// A command the SDK sent; for a call, the callee's place in the trace.
    pub fn command(&mut self, command: &JournalCommand) -> Option<TraceContext> {
        let named = |verb: &str, name: &str| if name.is_empty() { verb.to_owned() } else { format!("{verb} {name}") };
        match command {
            JournalCommand::Run(c) => {
                let span = self.step(named("run", &c.name), SpanKind::Internal);
                self.open.push((c.result_completion_id, span));
                None
            }
            JournalCommand::Sleep(c) => {
                let mut span = self.step(named("sleep", &c.name), SpanKind::Internal);
                span.end_ns = c.wake_up_time.saturating_mul(1_000_000).max(span.start_ns);
                self.emit(span.attr("perdure.sleep.wake_up_time_ms", c.wake_up_time as i64));
                None
            }
            JournalCommand::Call(c) => {
                let span = self
                    .step(format!("call {}/{}", c.service_name, c.handler_name), SpanKind::Client)
                    .attr("rpc.service", c.service_name.clone())
                    .attr("rpc.method", c.handler_name.clone());
                let callee = self.callee(span.span_id);
                self.open.push((c.result_completion_id, span));
                Some(callee)
            }
            JournalCommand::OneWayCall(c) => {
                let mut span = self
                    .step(format!("send {}/{}", c.service_name, c.handler_name), SpanKind::Producer)
                    .attr("rpc.service", c.service_name.clone())
                    .attr("rpc.method", c.handler_name.clone());
                if c.invoke_time > 0 {
                    span = span.attr("perdure.send.invoke_time_ms", c.invoke_time as i64);
                }
                let callee = self.callee(span.span_id);
                self.emit(span);
                Some(callee)
            }
            _ => None,
        }
    }

    fn callee(&self, call_span: u64) -> TraceContext {
        TraceContext {
            trace_id: self.context.trace_id,
            span_id: traces::new_span_id(),
            parent_span_id: call_span,
            sampled: self.context.sampled,
        }
    }

    /// The SDK proposed the result of the `run` under `completion_id`.
    pub fn run_proposed(&mut self, completion_id: u32) {
        self.close(completion_id);
    }

    /// A notification forwarded to the SDK: a call's result ends its span.
    pub fn forwarded(&mut self, entry: &JournalEntry) {
        if self.open.is_empty() || entry.ty != ty::CALL_COMPLETION_NOTIFICATION {
            return;
        }
        if let Some(id) =
            <NotificationMessage as prost::Message>::decode(entry.payload.clone()).ok().and_then(|n| n.completion_id())
        {
            self.close(id);
        }
    }

    /// The SDK reported an error for the attempt.
    pub fn failed(&mut self, message: &str) {
        self.error = Some(message.lines().next().unwrap_or_default().to_owned());
    }

    fn close(&mut self, completion_id: u32) {
        if let Some(at) = self.open.iter().position(|(id, _)| *id == completion_id) {
            let (_, mut span) = self.open.swap_remove(at);
            span.end_ns = traces::now_ns().max(span.start_ns);
            self.emit(span);
        }
    }

    fn emit(&self, span: Span) {
        if self.context.sampled {
            traces::record(span);
        }
    }

    /// Ends the attempt's span (and the steps still open) with what it ran on and how it went.
    pub fn finish(
        mut self,
        target: &str,
        attempt: u32,
        deployment: &str,
        protocol: &'static str,
        outcome: &'static str,
        failure: Option<&str>,
    ) {
        if !self.context.sampled {
            return;
        }
        for (_, mut span) in std::mem::take(&mut self.open) {
            span.end_ns = traces::now_ns().max(span.start_ns);
            traces::record(span);
        }
        let mut span = Span::new(
            self.context.trace_id,
            self.span_id,
            self.context.span_id,
            format!("attempt {target}"),
            SpanKind::Client,
            self.start_ns,
        )
        .attr("perdure.attempt", attempt)
        .attr("perdure.deployment.id", deployment.to_owned())
        .attr("perdure.protocol", protocol)
        .attr("perdure.attempt.outcome", outcome);
        if let Some(version) = self.executed_version.take() {
            span = span.attr("perdure.lambda.version", version);
        }
        span.error = failure.map(str::to_owned).or(self.error.take());
        traces::record(span);
    }
}
