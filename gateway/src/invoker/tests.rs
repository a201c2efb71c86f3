//! Attempts driven end to end on a scripted transport: real storage (a temporary directory),
//! schema, framing, translation, timers and reporting; only the network is scripted. Time is
//! tokio's paused clock where a timeout matters.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::context::InvokerConfig;
use super::scripted::{
    Answer, Fixture, Opened, ScriptedTransport, end, first_attempt, greet, http_deployment, input_entry,
    lambda_deployment, message, output,
};
use super::transport::{Destination, RequestFrames};
use crate::engine::action::InvokeAttempt;
use crate::engine::command::Effect;
use crate::engine::records::{JournalEntry, PinnedDeployment};
use crate::partition::Attempts as _;
use crate::protocol::ServiceProtocolVersion::V6;
use crate::protocol::messages::{StartMessage, SuspensionMessage, ty};

/// Runs `spec` as an attempt over `transport`; its notifications' sender.
fn spawn_attempt(
    fixture: &Fixture,
    transport: Arc<ScriptedTransport>,
    spec: InvokeAttempt,
) -> (mpsc::UnboundedSender<(u32, JournalEntry)>, tokio::task::JoinHandle<()>) {
    let context = Arc::new(fixture.context(transport, InvokerConfig::default()));
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, tokio::spawn(super::attempt::run(context, Box::new(spec), rx)))
}

async fn start_message(opened: &mut Opened) -> (StartMessage, Vec<crate::protocol::Frame>) {
    let frames = opened.next_frames().await.expect("the start frames");
    assert_eq!(frames[0].ty, ty::START);
    (frames[0].decode_message().unwrap(), frames[1..].to_vec())
}

#[tokio::test]
async fn a_request_response_attempt_replays_the_journal_and_reports_what_the_sdk_said_in_order() {
    let mut fixture = Fixture::new().await;
    let deployment = fixture.register(http_deployment("http://greeter:9080/base/", false)).await;
    let spec = first_attempt(greet(), 1);
    fixture.store_journal(spec.id, &[input_entry("\"Ada\"")]);
    let (transport, mut opened) = ScriptedTransport::new();
    let body = [output("\"hello Ada\""), end()].concat();
    transport.answer(Answer::chunks(V6, vec![Bytes::copy_from_slice(&body[..5]), Bytes::copy_from_slice(&body[5..])]));
    let (_notifications, attempt) = spawn_attempt(&fixture, transport, spec.clone());

    let mut request = opened.recv().await.unwrap();
    let Destination::Http { uri, .. } = &request.destination else { panic!("{:?}", request.destination) };
    assert_eq!(uri, "http://greeter:9080/base/invoke/Greeter/greet");
    assert_eq!(request.header("content-type"), Some(V6.content_type()));
    assert_eq!(request.header("x-restate-invocation-id"), Some(spec.id.to_string().as_str()));
    assert!(matches!(request.body, RequestFrames::Full(_)), "request/response: the body goes at once");
    let (start, replayed) = start_message(&mut request).await;
    assert_eq!(start.known_entries, 1);
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].payload, input_entry("\"Ada\"").payload);

    let effects = fixture.effects_until_done().await;
    attempt.await.unwrap();
    let [Effect::Pinned(pin), Effect::Settings { .. }, Effect::Command { ty: ty::OUTPUT_COMMAND, .. }, Effect::Ended] =
        &effects[..]
    else {
        panic!("{effects:?}")
    };
    assert_eq!((pin.deployment, pin.protocol_version, pin.executed_version.as_deref()), (deployment, 6, None));
}

#[tokio::test(start_paused = true)]
async fn a_bidi_stream_forwards_new_notifications_and_closes_its_side_when_idle() {
    let mut fixture = Fixture::new().await;
    fixture.register(http_deployment("http://greeter:9080/", true)).await;
    let spec = first_attempt(greet(), 1);
    fixture.store_journal(spec.id, &[input_entry("1")]);
    let (transport, mut opened) = ScriptedTransport::new();
    let (answer, sdk) = Answer::live(V6);
    transport.answer(answer);
    let (notifications, attempt) = spawn_attempt(&fixture, transport, spec.clone());

    let mut request = opened.recv().await.unwrap();
    assert!(matches!(request.body, RequestFrames::Stream(_)), "bidi: the request side stays open");
    start_message(&mut request).await;
    sdk.send(Ok(message(ty::SLEEP_COMMAND, &crate::protocol::messages::SleepCommandMessage::default()))).unwrap();
    let pinned = fixture.effects().await.effects;
    assert!(matches!(
        &pinned[..],
        [Effect::Pinned(_), Effect::Settings { .. }, Effect::Command { ty: ty::SLEEP_COMMAND, .. }]
    ));

    // The partition forwards what it appended: entries the SDK was not sent yet, once each.
    let wake = JournalEntry {
        ty: ty::SLEEP_COMPLETION_NOTIFICATION,
        payload: Bytes::from_static(b"\x08\x01"),
        appended_at: 0,
    };
    notifications.send((0, input_entry("replayed already"))).unwrap();
    notifications.send((1, wake.clone())).unwrap();
    notifications.send((1, wake.clone())).unwrap();
    let forwarded = request.next_frames().await.unwrap();
    assert_eq!((forwarded.len(), forwarded[0].ty, &forwarded[0].payload), (1, wake.ty, &wake.payload));

    // Nothing for the inactivity timeout (1 min by default): our side closes, so the SDK suspends.
    let before = tokio::time::Instant::now();
    assert!(request.next_frames().await.is_none(), "the request side ends");
    let idle = before.elapsed();
    assert!(idle >= Duration::from_secs(60) && idle < Duration::from_secs(61), "{idle:?}");
    let suspension = SuspensionMessage { waiting_completions: vec![2], ..Default::default() };
    sdk.send(Ok(message(ty::SUSPENSION, &suspension))).unwrap();
    assert!(matches!(&fixture.effects().await.effects[..], [Effect::Suspended(w)] if w.completions == [2]));
    drop(sdk);
    attempt.await.unwrap();
}

#[tokio::test]
async fn a_stream_that_breaks_off_fails_the_attempt_after_what_the_sdk_said_before() {
    let mut fixture = Fixture::new().await;
    fixture.register(http_deployment("http://greeter:9080/", false)).await;
    let spec = first_attempt(greet(), 1);
    fixture.store_journal(spec.id, &[input_entry("1")]);
    let (transport, _opened) = ScriptedTransport::new();
    let (answer, sdk) = Answer::live(V6);
    transport.answer(answer);
    let (_notifications, attempt) = spawn_attempt(&fixture, transport, spec);
    sdk.send(Ok(output("1"))).unwrap();
    sdk.send(Err("connection reset".into())).unwrap();
    let said = fixture.effects().await.effects;
    assert!(matches!(said.last(), Some(Effect::Command { ty: ty::OUTPUT_COMMAND, .. })), "{said:?}");
    let failed = fixture.effects().await.effects;
    let [Effect::Failed { failure, terminal: false, .. }] = &failed[..] else { panic!("{failed:?}") };
    assert_eq!((failure.code, failure.message.as_str()), (500, "stream error: connection reset"));
    attempt.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_deployment_that_does_not_answer_fails_the_attempt_at_the_abort_timeout() {
    let mut fixture = Fixture::new().await;
    fixture.register(http_deployment("http://greeter:9080/", true)).await;
    let spec = first_attempt(greet(), 1);
    fixture.store_journal(spec.id, &[input_entry("1")]);
    let (transport, _opened) = ScriptedTransport::new();
    transport.answer(Answer::Never);
    let (_notifications, _attempt) = spawn_attempt(&fixture, transport, spec);
    let failed = fixture.effects().await.effects;
    let [Effect::Failed { failure, terminal: false, .. }] = &failed[..] else { panic!("{failed:?}") };
    assert_eq!(failure.message, "the deployment did not answer within the abort timeout");
}

#[tokio::test]
async fn a_wrong_answer_is_said_of_the_deployment_and_nothing_is_pinned() {
    let mut fixture = Fixture::new().await;
    fixture.register(http_deployment("http://greeter:9080/", true)).await;
    let spec = first_attempt(greet(), 1);
    fixture.store_journal(spec.id, &[input_entry("1")]);
    let (transport, _opened) = ScriptedTransport::new();
    let html = Box::pin(futures::stream::iter([Ok(Bytes::from_static(b"<html>"))]));
    transport.answer(Answer::head(http::StatusCode::OK, Some("text/html"), html));
    let (_notifications, attempt) = spawn_attempt(&fixture, transport, spec);
    let failed = fixture.effects().await.effects;
    let [Effect::Failed { failure, .. }] = &failed[..] else { panic!("{failed:?}") };
    assert_eq!(
        (failure.code, failure.message.clone()),
        (571, format!("deployment answered: content type text/html instead of {}", V6.content_type()))
    );
    attempt.await.unwrap();
}

#[tokio::test]
async fn a_paused_deployment_holds_the_invocation_without_sending_anything() {
    let mut fixture = Fixture::new().await;
    let id = fixture.register(http_deployment("http://greeter:9080/", true)).await;
    fixture
        .schema
        .update(|s| {
            let mut d = s.deployments[&id].clone();
            d.paused = true;
            let change = crate::schema::SchemaChange::UpdateDeployment { deployment: Box::new(d) };
            Ok::<_, crate::storage::StorageError>((Some(change), ()))
        })
        .await
        .unwrap();
    let spec = first_attempt(greet(), 1);
    let (transport, mut opened) = ScriptedTransport::new();
    let (_notifications, attempt) = spawn_attempt(&fixture, transport, spec);
    let held = fixture.effects().await.effects;
    assert!(matches!(&held[..], [Effect::Pinned(_), Effect::Settings { .. }, Effect::Held { .. }]), "{held:?}");
    attempt.await.unwrap();
    assert!(opened.try_recv().is_err(), "no request");
}

#[tokio::test]
async fn a_first_lambda_attempt_pins_the_version_that_ran_and_a_later_one_invokes_exactly_it() {
    let mut fixture = Fixture::new().await;
    let alias = "arn:aws:lambda:eu-west-1:1:function:greeter:live";
    let deployment = fixture.register(lambda_deployment(alias, &[("5", true), ("6", false)])).await;
    let spec = first_attempt(greet(), 1);
    fixture.store_journal(spec.id, &[input_entry("1")]);
    let (transport, mut opened) = ScriptedTransport::new();
    transport.answer(Answer::chunks(V6, vec![[output("1"), end()].concat().into()]).executed("5"));
    let (_notifications, attempt) = spawn_attempt(&fixture, transport.clone(), spec.clone());
    let request = opened.recv().await.unwrap();
    let Destination::Lambda { function, region, .. } = &request.destination else { panic!("{request:?}") };
    assert_eq!((function.as_str(), region.as_str()), (alias, "eu-west-1"), "a first attempt follows the alias");
    assert_eq!(request.path, "/invoke/Greeter/greet");
    assert!(matches!(request.body, RequestFrames::Full(_)));
    let effects = fixture.effects_until_done().await;
    attempt.await.unwrap();
    let Effect::Pinned(pin) = &effects[0] else { panic!("{effects:?}") };
    assert_eq!(pin.deployment, deployment);
    assert_eq!(pin.executed_version.as_deref(), Some("5"), "the version that ran, checked before");
    assert!(matches!(effects.last(), Some(Effect::Ended)));

    // A later attempt invokes the version it is pinned to, wherever the alias points.
    let pinned = InvokeAttempt { attempt: 1, deployment: Some(pin.clone()), ..spec.clone() };
    transport.answer(Answer::chunks(V6, vec![[output("1"), end()].concat().into()]));
    let (_notifications, attempt) = spawn_attempt(&fixture, transport.clone(), pinned);
    let Destination::Lambda { function, .. } = opened.recv().await.unwrap().destination else { unreachable!() };
    assert_eq!(function, "arn:aws:lambda:eu-west-1:1:function:greeter:5");
    assert!(matches!(&fixture.effects_until_done().await[..], [Effect::Command { .. }, Effect::Ended]));
    attempt.await.unwrap();

    // A first attempt that ran on a version that failed its check does not count.
    transport.answer(Answer::chunks(V6, vec![[output("1"), end()].concat().into()]).executed("6"));
    let (_notifications, attempt) = spawn_attempt(&fixture, transport, spec);
    let refused = fixture.effects_until_done().await;
    let [Effect::Failed { failure, terminal: false, .. }] = &refused[..] else { panic!("{refused:?}") };
    assert_eq!(failure.code, 409);
    assert!(failure.message.starts_with("Lambda version 6 behind alias 'live'"), "{failure:?}");
    attempt.await.unwrap();
}

#[tokio::test]
async fn a_lambda_failure_names_the_version_the_invocation_is_pinned_to() {
    let mut fixture = Fixture::new().await;
    let alias = "arn:aws:lambda:eu-west-1:1:function:greeter:live";
    let deployment = fixture.register(lambda_deployment(alias, &[])).await;
    let spec = InvokeAttempt {
        deployment: Some(PinnedDeployment {
            deployment,
            protocol_version: 6,
            executed_version: Some("3".into()),
            revision: 1,
        }),
        ..first_attempt(greet(), 1)
    };
    fixture.store_journal(spec.id, &[input_entry("1")]);
    let (transport, _opened) = ScriptedTransport::new();
    let missing = super::lambda::LambdaError::NotFound("Lambda says greeter:3 does not exist".into());
    transport.answer(Answer::Error(missing.into()));
    let (_notifications, attempt) = spawn_attempt(&fixture, transport, spec);
    let failed = fixture.effects().await.effects;
    let [Effect::Failed { failure, .. }] = &failed[..] else { panic!("{failed:?}") };
    assert_eq!(failure.code, 404);
    assert!(failure.message.contains("pinned to version 3, which must stay published"), "{failure:?}");
    attempt.await.unwrap();
}

/// The seam for scheduling tests: an invoker built on a scripted transport runs at most its
/// limit of attempts, and starts the next waiting one when a slot frees.
#[tokio::test]
async fn the_invoker_runs_scripted_attempts_within_its_limit_in_order() {
    let mut fixture = Fixture::new().await;
    fixture.register(http_deployment("http://greeter:9080/", false)).await;
    let (first, second) = (first_attempt(greet(), 1), first_attempt(greet(), 1));
    fixture.store_journal(first.id, &[input_entry("1")]);
    fixture.store_journal(second.id, &[input_entry("2")]);
    fixture.store_invocation(&second);
    let (transport, mut opened) = ScriptedTransport::new();
    let (answer, sdk) = Answer::live(V6);
    transport.answer(answer);
    transport.answer(Answer::chunks(V6, vec![[output("2"), end()].concat().into()]));
    let config = InvokerConfig { concurrent_invocations_limit: 1, ..InvokerConfig::default() };
    let (invoker, _shutdown) = Fixture::invoker(fixture.context(transport, config));
    invoker.invoke(Box::new(first.clone()));
    invoker.invoke(Box::new(second.clone()));

    let mut running = opened.recv().await.unwrap();
    assert_eq!(running.header("x-restate-invocation-id"), Some(first.id.to_string().as_str()));
    start_message(&mut running).await;
    // Nothing to wait on for something that must not happen: a bounded wait, long enough for
    // a second attempt started at once to have opened its request.
    let meanwhile = tokio::time::timeout(Duration::from_millis(300), opened.recv()).await;
    assert!(meanwhile.is_err(), "one slot: the second waits");
    sdk.send(Ok([output("1"), end()].concat().into())).unwrap();
    drop(sdk);
    let done = fixture.effects_until_done().await;
    assert!(matches!(done.last(), Some(Effect::Ended)));
    let next = opened.recv().await.unwrap();
    assert_eq!(next.header("x-restate-invocation-id"), Some(second.id.to_string().as_str()), "read back from storage");
    let batch = fixture.effects().await;
    assert_eq!(batch.id, second.id);
}
