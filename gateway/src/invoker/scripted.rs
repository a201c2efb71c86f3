//! Attempts without sockets, for tests: a [`ScriptedTransport`] that plays back the answers a
//! test queued and hands the test every request an attempt opened (destination, head, and the
//! frames it sends, including those forwarded later on a bidi stream), and a [`Fixture`] with
//! what an [`AttemptContext`] needs around it: storage in a temporary directory, a schema with
//! registered deployments, and the partitions' inboxes, where the attempts' effects arrive.
//!
//! The transport stands in for the network only: choosing, framing, translating, timers and
//! reporting are the real code. With tokio's paused clock, timeouts pass at once.
//!
//! Call order: [`Fixture::new`] → [`Fixture::register`] deployments → [`Fixture::context`]
//! (or [`Fixture::invoker`]) → [`ScriptedTransport::answer`] for each request expected →
//! run attempts → [`ScriptedTransport::opened`] / [`Fixture::effects`] to see what happened.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::context::{AttemptContext, InvokerConfig};
use super::transport::{Destination, Request, RequestFrames, Response, Transport, TransportError, Transports};
use super::{Invoker, InvokerHandle};
use crate::engine::action::InvokeAttempt;
use crate::engine::command::{Command, Effect, EffectBatch};
use crate::engine::records::{JournalEntry, PartitionMeta, Target};
use crate::engine::store::Write;
use crate::ids::{DeploymentId, InvocationId};
use crate::protocol::ServiceProtocolVersion;
use crate::protocol::frame::{self, Frame};
use crate::protocol::messages::ty;
use crate::schema::{Endpoint, RegisterRequest, SchemaDefaults, SchemaRegistry};
use crate::storage::Database;

/// A transport that answers from a script.
pub struct ScriptedTransport {
    answers: Mutex<VecDeque<Answer>>,
    opened: mpsc::UnboundedSender<Opened>,
}

impl ScriptedTransport {
    /// The transport, and where the requests it is given arrive, in the order they were opened.
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<Opened>) {
        let (opened, rx) = mpsc::unbounded_channel();
        (Arc::new(Self { answers: Mutex::new(VecDeque::new()), opened }), rx)
    }

    /// Queues the answer to the next request without one.
    pub fn answer(&self, answer: Answer) {
        self.answers.lock().expect("not poisoned").push_back(answer);
    }
}

#[async_trait::async_trait]
impl Transport for ScriptedTransport {
    async fn open(&self, request: Request) -> Result<Response, TransportError> {
        let answer = self.answers.lock().expect("not poisoned").pop_front();
        let Request { destination, path, headers, body } = request;
        let _ = self.opened.send(Opened { destination, path, headers, body });
        match answer {
            Some(Answer::Response(response)) => Ok(response),
            Some(Answer::Error(e)) => Err(e),
            Some(Answer::Never) => std::future::pending().await,
            None => Err(TransportError::Http("the script has no answer for this request".into())),
        }
    }
}

/// What the transport does with a request.
pub enum Answer {
    /// Answers with this head and body.
    Response(Response),
    /// Fails before any response head.
    Error(TransportError),
    /// Never answers.
    Never,
}

impl Answer {
    /// 200 with the content type of `version`, and a body of these chunks, then its end.
    pub fn chunks(version: ServiceProtocolVersion, chunks: Vec<Bytes>) -> Self {
        Self::head(
            http::StatusCode::OK,
            Some(version.content_type()),
            Box::pin(futures::stream::iter(chunks.into_iter().map(Ok))),
        )
    }

    /// 200 with the content type of `version`, and a body the test writes as it goes (an error
    /// breaks it off; dropping the sender ends it).
    pub fn live(version: ServiceProtocolVersion) -> (Self, mpsc::UnboundedSender<Result<Bytes, String>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
        (Self::head(http::StatusCode::OK, Some(version.content_type()), Box::pin(body)), tx)
    }

    /// A response head with an empty body.
    pub fn head(status: http::StatusCode, content_type: Option<&str>, body: super::transport::ResponseBody) -> Self {
        let mut headers = http::HeaderMap::new();
        if let Some(content_type) = content_type {
            headers.insert(http::header::CONTENT_TYPE, content_type.parse().expect("a valid content type"));
        }
        Self::Response(Response { status, headers, executed_version: None, body })
    }

    /// The same answer, as Lambda reports the version that ran.
    pub fn executed(mut self, version: &str) -> Self {
        if let Self::Response(response) = &mut self {
            response.executed_version = Some(version.to_owned());
        }
        self
    }
}

/// A request an attempt opened.
#[derive(Debug)]
pub struct Opened {
    pub destination: Destination,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: RequestFrames,
}

impl Opened {
    /// The value of a header, if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The frames of the next chunk the attempt sent (the start frames come first); `None` once
    /// the request side is closed.
    pub async fn next_frames(&mut self) -> Option<Vec<Frame>> {
        let chunk = match &mut self.body {
            RequestFrames::Full(bytes) if bytes.is_empty() => return None,
            RequestFrames::Full(bytes) => std::mem::take(bytes),
            RequestFrames::Stream(rx) => rx.recv().await?,
        };
        Some(decode_all(&chunk))
    }
}

/// Every frame in `bytes`.
pub fn decode_all(bytes: &[u8]) -> Vec<Frame> {
    let mut buffer = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = frame::decode(&mut buffer, u32::MAX).expect("well-formed frames") {
        frames.push(frame);
    }
    assert!(buffer.is_empty(), "no partial frame left");
    frames
}

/// One framed message, as an SDK sends it.
pub fn message<M: prost::Message>(ty: u16, message: &M) -> Bytes {
    let mut out = BytesMut::new();
    frame::encode_message(ty, message, &mut out);
    out.freeze()
}

/// The End message, framed.
pub fn end() -> Bytes {
    message(ty::END, &crate::protocol::messages::EndMessage {})
}

/// An Output command with a value, framed.
pub fn output(value: &str) -> Bytes {
    use crate::protocol::messages::{OutputCommandMessage, OutputResult, Value};
    message(
        ty::OUTPUT_COMMAND,
        &OutputCommandMessage { result: Some(OutputResult::Value(Value::new(value.to_owned()))), name: String::new() },
    )
}

/// Storage, schema and partitions for attempts that run on a scripted transport.
pub struct Fixture {
    pub db: Database,
    pub schema: SchemaRegistry,
    pub partitions: crate::partition::Handle,
    inbox: crate::partition::Inbox,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// Empty storage and schema, one partition.
    pub async fn new() -> Self {
        use crate::storage::log::{LogId, RocksLog};
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = Database::open(dir.path(), &Default::default(), 1).expect("storage opens");
        let log = RocksLog::open(db.storage(), db.log_writer(), LogId::Schema, 0).expect("schema log opens");
        let schema = SchemaRegistry::load(db.storage(), log).await.expect("schema loads");
        let (partitions, mut inboxes) = crate::partition::Handle::new(1, 8);
        let inbox = inboxes.pop().expect("one partition");
        Self { db, schema, partitions, inbox, _dir: dir }
    }

    /// Registers a deployment ([`http_deployment`], [`lambda_deployment`]); its id.
    pub async fn register(&self, req: RegisterRequest) -> DeploymentId {
        let pending = crate::schema::tests::Pending::default();
        let outcome = self
            .schema
            .update(|s| crate::schema::register(s, req, &SchemaDefaults::default(), &pending))
            .await
            .expect("registers");
        outcome.deployment().id
    }

    /// The context attempts share, reaching deployments through `transport`.
    pub fn context(&self, transport: Arc<dyn Transport>, config: InvokerConfig) -> AttemptContext {
        AttemptContext {
            transports: Transports::all(transport),
            lambda: Arc::new(super::lambda::LambdaClients::new(Default::default())),
            schema: self.schema.clone(),
            storage: self.db.storage(),
            partitions: self.partitions.clone(),
            config,
            defaults: SchemaDefaults::default(),
            identity: None,
        }
    }

    /// A running invoker over `context`, and its handle; it stops when `shutdown` is dropped.
    pub fn invoker(context: AttemptContext) -> (InvokerHandle, tokio::sync::watch::Sender<bool>) {
        let (invoker, handle) = Invoker::new();
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(invoker.run(context, rx));
        (handle, shutdown)
    }

    /// Stores an invocation's journal, entries `0..`, in order.
    pub fn store_journal(&self, id: InvocationId, entries: &[JournalEntry]) {
        let writes: Vec<Write> =
            entries.iter().enumerate().map(|(i, e)| Write::PutJournal(id, i as u32, e.clone())).collect();
        self.db.storage().write_partition_state(0, &writes, &PartitionMeta::default()).expect("journal stored");
    }

    /// Stores the status of an invocation whose current attempt is `spec`, running (what the
    /// partition writes before it asks for the attempt).
    pub fn store_invocation(&self, spec: &InvokeAttempt) {
        use crate::engine::records::{AttemptState, InvocationStatus, Phase};
        let mut status = InvocationStatus::sample(spec.target.clone(), Phase::Invoked);
        status.attempt = AttemptState { attempt: spec.attempt, in_flight: true, ..Default::default() };
        status.journal_len = spec.journal_len;
        status.journal_modified_at = spec.journal_modified_at;
        let write = Write::PutInvocation(spec.id, Box::new(status));
        self.db.storage().write_partition_state(0, &[write], &PartitionMeta::default()).expect("status stored");
    }

    /// Stores a value of an object's state.
    pub fn store_state(&self, object: crate::engine::records::ObjectKey, key: &str, value: &str) {
        let write = Write::PutState(object, Bytes::from(key.to_owned()), Bytes::from(value.to_owned()));
        self.db.storage().write_partition_state(0, &[write], &PartitionMeta::default()).expect("state stored");
    }

    /// The next batch of effects an attempt sent to the partition.
    pub async fn effects(&mut self) -> EffectBatch {
        match self.inbox.work.recv().await.expect("the partitions' handle is alive") {
            crate::partition::Request::Command { command: Command::Effects(batch), .. } => *batch,
            other => panic!("expected effects, got {other:?}"),
        }
    }

    /// Effects sent until (and with) the attempt's last one, in order.
    pub async fn effects_until_done(&mut self) -> Vec<Effect> {
        let mut all = Vec::new();
        loop {
            let batch = self.effects().await;
            let done = batch.effects.iter().any(|e| {
                matches!(e, Effect::Ended | Effect::Suspended(_) | Effect::Failed { .. } | Effect::Held { .. })
            });
            all.extend(batch.effects);
            if done {
                return all;
            }
        }
    }
}

/// A first attempt of `service/handler` (unkeyed service), with a journal of `journal_len`.
pub fn first_attempt(target: Target, journal_len: u32) -> InvokeAttempt {
    InvokeAttempt {
        id: InvocationId::generate(7),
        attempt: 0,
        target,
        deployment: None,
        requested_deployment: None,
        journal_len,
        retry_count: 0,
        journal_modified_at: 1_000,
        trace: None,
    }
}

/// `Greeter/greet`, as the test manifest registers it.
pub fn greet() -> Target {
    Target {
        service: "Greeter".into(),
        handler: "greet".into(),
        key: None,
        service_kind: crate::engine::records::ServiceKind::Service,
        handler_kind: crate::engine::records::HandlerKind::Unkeyed,
    }
}

/// An Input command, as ingress stores it.
pub fn input_entry(body: &str) -> JournalEntry {
    use crate::protocol::messages::{InputCommandMessage, Value};
    let input = InputCommandMessage { headers: vec![], value: Some(Value::new(body.to_owned())), name: String::new() };
    JournalEntry { ty: ty::INPUT_COMMAND, payload: prost::Message::encode_to_vec(&input).into(), appended_at: 1_000 }
}

/// A schema with these registrations applied, in order (each promoted to latest).
pub fn schema_of(registrations: Vec<RegisterRequest>) -> crate::schema::Schema {
    let mut schema = crate::schema::Schema::default();
    for req in registrations {
        let pending = crate::schema::tests::Pending::default();
        let (change, _) =
            crate::schema::register(&schema, req, &SchemaDefaults::default(), &pending).expect("registers");
        schema.apply(change.expect("a new deployment"));
    }
    schema
}

/// An HTTP/2 deployment at `uri` serving the test manifest (`Greeter/greet`, `Counter/add|get`)
/// as bidi streams, or as request/response.
pub fn http_deployment(uri: &str, bidi: bool) -> RegisterRequest {
    let mut manifest = crate::schema::tests::manifest("");
    if !bidi {
        manifest.protocol_mode = crate::protocol::manifest::ProtocolMode::RequestResponse;
    }
    crate::schema::tests::registration(uri, manifest)
}

/// A Lambda deployment of `arn` serving the test manifest, with these versions seen behind it.
pub fn lambda_deployment(arn: &str, seen: &[(&str, bool)]) -> RegisterRequest {
    let mut req = http_deployment(arn, false);
    req.endpoint = Endpoint::Lambda { arn: arn.to_owned(), assume_role_arn: None };
    for (version, compatible) in seen {
        let check = crate::schema::LambdaVersionCheck {
            compatible: *compatible,
            changes: if *compatible { vec![] } else { vec!["Greeter: the service is gone".into()] },
            seen_at: 1_000,
        };
        req.lambda_versions.seen.insert((*version).to_owned(), check);
    }
    req
}
