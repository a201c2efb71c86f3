//! Engine scenarios: the state machine alone, no RocksDB and no tokio. Each test is named
//! after the behaviour (and spec section of `service-protocol.md`) it proves.

use bytes::Bytes;
use prost::Message as _;

use super::action::Action;
use super::command::{Command, ControlOutcome, ControlRequest, Effect, EffectBatch, InvokeRequest, Outcome};
use super::keyspace::PartitionInfo;
use super::machine::apply;
use super::records::*;
use super::store::{EmptyStore, Store, Txn};
use crate::ids::InvocationId;
use crate::protocol::messages::{
    CallCommandMessage, NotificationMessage, OutputCommandMessage, OutputResult, SetStateCommandMessage,
    SleepCommandMessage, Value, ty,
};

static EMPTY: EmptyStore = EmptyStore;

struct Engine {
    txn: Txn<'static, EmptyStore>,
    now: u64,
    partition: PartitionInfo,
}

impl Engine {
    fn new() -> Self {
        Self::with_partition(PartitionInfo { id: 0, keys: 0..=u64::MAX })
    }

    fn with_partition(partition: PartitionInfo) -> Self {
        Self { txn: Txn::new(&EMPTY, PartitionMeta::default()), now: 1_000, partition }
    }

    fn apply(&mut self, command: Command) -> (Outcome, Vec<Action>) {
        let mut actions = Vec::new();
        let outcome = apply(&mut self.txn, self.now, &self.partition, command, &mut actions).unwrap();
        (outcome, actions)
    }

    fn status(&self, id: &InvocationId) -> InvocationStatus {
        self.txn.invocation(id).unwrap().expect("invocation exists")
    }

    fn effects(&mut self, id: InvocationId, attempt: u32, effects: Vec<Effect>) -> Vec<Action> {
        self.apply(Command::Effects(Box::new(EffectBatch { id, attempt, effects }))).1
    }
}

fn service(name: &str, handler: &str) -> Target {
    Target {
        service: name.into(),
        handler: handler.into(),
        key: None,
        service_kind: ServiceKind::Service,
        handler_kind: HandlerKind::Unkeyed,
    }
}

fn object(name: &str, key: &str, handler: &str, kind: HandlerKind) -> Target {
    Target {
        service: name.into(),
        handler: handler.into(),
        key: Some(key.into()),
        service_kind: ServiceKind::VirtualObject,
        handler_kind: kind,
    }
}

fn invoke(id: InvocationId, target: Target) -> Command {
    Command::Invoke(Box::new(InvokeRequest {
        id,
        target,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from_static(b"\"Alice\""),
        source: Source::Ingress,
        idempotency_key: None,
        execute_at: None,
        sink: None,
        retry_policy: RetryPolicy::default(),
        retention: Retention { completion_ms: 86_400_000, journal_ms: 86_400_000 },
        deployment: None,
        trace: None,
    }))
}

fn command<M: prost::Message>(ty: u16, msg: M) -> Effect {
    Effect::Command { ty, payload: msg.encode_to_vec().into(), call_target: None, call_policy: None, call_trace: None }
}

fn output(value: &str) -> Effect {
    command(
        ty::OUTPUT_COMMAND,
        OutputCommandMessage { result: Some(OutputResult::Value(Value::new(value.to_owned()))), name: String::new() },
    )
}

fn invoked(actions: &[Action]) -> Vec<&super::action::InvokeAttempt> {
    actions.iter().filter_map(|a| if let Action::Invoke(i) = a { Some(i.as_ref()) } else { None }).collect()
}

fn completed(actions: &[Action]) -> Option<&InvocationResult> {
    actions.iter().find_map(|a| if let Action::Completed { result, .. } = a { Some(result) } else { None })
}

#[test]
fn invoke_then_output_and_end_completes_with_the_output() {
    let mut e = Engine::new();
    let id = InvocationId::generate(5);
    let (outcome, actions) = e.apply(invoke(id, service("Greeter", "greet")));
    assert_eq!(outcome, Outcome::Accepted);
    let attempt = invoked(&actions);
    assert_eq!(attempt.len(), 1);
    assert_eq!((attempt[0].attempt, attempt[0].journal_len), (1, 1));
    // §8: entry 0 is the Input command the server wrote.
    assert_eq!(e.txn.journal_entry(&id, 0).unwrap().unwrap().ty, ty::INPUT_COMMAND);

    let actions = e.effects(id, 1, vec![output("\"Hello, Alice!\""), Effect::Ended]);
    assert_eq!(completed(&actions), Some(&InvocationResult::Success(Bytes::from_static(b"\"Hello, Alice!\""))));
    let status = e.status(&id);
    assert!(status.is_completed());
    assert_eq!(status.journal_len, 2);
    assert_eq!(status.expires_at(), Some(1_000 + 86_400_000));
    assert!(!actions.iter().any(|a| matches!(a, Action::Abort { .. })), "a finishing attempt is not aborted");
}

#[test]
fn pinning_is_recorded_from_the_first_attempt_and_kept() {
    let mut e = Engine::new();
    let id = InvocationId::generate(5);
    e.apply(invoke(id, service("Greeter", "greet")));
    let dp = crate::ids::DeploymentId(42);
    let pin = |v| {
        Effect::Pinned(PinnedDeployment { deployment: dp, protocol_version: v, executed_version: None, revision: 0 })
    };
    e.effects(
        id,
        1,
        vec![pin(6), Effect::Failed { failure: FailureInfo::default(), next_retry_delay_ms: Some(0), terminal: false }],
    );
    // A later attempt reporting a different choice does not move the pin.
    e.apply(Command::TimerFired(Timer { fire_at: 1_000, invocation: id, kind: TimerKind::Retry { attempt: 1 } }));
    let status = e.status(&id);
    assert_eq!(
        status.deployment,
        Some(PinnedDeployment { deployment: dp, protocol_version: 6, executed_version: None, revision: 0 })
    );
    let actions = e.effects(id, 2, vec![pin(5)]);
    assert!(actions.is_empty());
    assert_eq!(e.status(&id).deployment.unwrap().protocol_version, 6);
}

#[test]
fn sleep_suspends_and_the_timer_resumes_with_the_whole_journal() {
    // §10.2: suspension, then a new attempt replays the larger journal.
    let mut e = Engine::new();
    let id = InvocationId::generate(9);
    e.apply(invoke(id, service("Greeter", "sleepy")));
    let sleep = SleepCommandMessage { wake_up_time: 3_000, result_completion_id: 1, name: String::new() };
    let actions = e.effects(
        id,
        1,
        vec![
            command(ty::SLEEP_COMMAND, sleep),
            Effect::Suspended(WaitSet { completions: vec![1], signals: vec![1], ..Default::default() }),
        ],
    );
    let timer = actions
        .iter()
        .find_map(|a| if let Action::ScheduleTimer(t) = a { Some(t.clone()) } else { None })
        .expect("sleep arms a timer");
    assert_eq!(timer.fire_at, 3_000);
    assert!(matches!(e.status(&id).phase, Phase::Suspended { .. }));

    e.now = 3_000;
    let (_, actions) = e.apply(Command::TimerFired(timer));
    let attempt = invoked(&actions);
    assert_eq!(attempt.len(), 1, "the sleep completion wakes the invocation");
    assert_eq!((attempt[0].attempt, attempt[0].journal_len), (2, 3));
    let entry = e.txn.journal_entry(&id, 2).unwrap().unwrap();
    assert_eq!(entry.ty, ty::SLEEP_COMPLETION_NOTIFICATION);
    assert_eq!(NotificationMessage::decode(entry.payload).unwrap().completion_id(), Some(1));
}

#[test]
fn suspension_on_something_already_arrived_restarts_at_once() {
    // §10.2: check the journal before parking.
    let mut e = Engine::new();
    let id = InvocationId::generate(9);
    e.apply(invoke(id, service("Greeter", "sideEffect")));
    let actions = e.effects(
        id,
        1,
        vec![
            command(
                ty::RUN_COMMAND,
                crate::protocol::messages::RunCommandMessage { result_completion_id: 1, name: String::new() },
            ),
            Effect::ProposeRun { completion_id: 1, result: InvocationResult::Success(Bytes::from_static(b"42")) },
            Effect::Suspended(WaitSet { completions: vec![1], ..Default::default() }),
        ],
    );
    // The run completion was forwarded to the running attempt, then the suspension
    // restarted it because completion 1 is already in the journal.
    assert!(actions.iter().any(|a| matches!(a, Action::Forward { index: 2, .. })));
    assert_eq!(invoked(&actions).len(), 1);
    assert_eq!(e.status(&id).attempt.attempt, 2);
}

#[test]
fn failures_back_off_exponentially_then_pause() {
    // §10.3: initial 500 ms, factor 2; on max attempts: pause.
    let mut e = Engine::new();
    let id = InvocationId::generate(1);
    let Command::Invoke(mut req) = invoke(id, service("Greeter", "flaky")) else { unreachable!() };
    req.retry_policy.max_attempts = Some(3);
    e.apply(Command::Invoke(req));
    let fail = || Effect::Failed {
        failure: FailureInfo { code: 500, message: "boom".into(), ..Default::default() },
        next_retry_delay_ms: None,
        terminal: false,
    };
    let mut delays = Vec::new();
    for attempt in 1..=2 {
        let actions = e.effects(id, attempt, vec![fail()]);
        let timer =
            actions.iter().find_map(|a| if let Action::ScheduleTimer(t) = a { Some(t.clone()) } else { None }).unwrap();
        delays.push(timer.fire_at - e.now);
        assert_eq!(e.status(&id).attempt.last_failure.as_ref().unwrap().message, "boom");
        let (_, actions) = e.apply(Command::TimerFired(timer));
        assert_eq!(invoked(&actions).len(), 1);
    }
    assert_eq!(delays, vec![500, 1000]);
    e.effects(id, 3, vec![fail()]);
    assert_eq!(e.status(&id).phase, Phase::Paused);
}

#[test]
fn kill_on_max_attempts_completes_with_the_last_error() {
    let mut e = Engine::new();
    let id = InvocationId::generate(1);
    let Command::Invoke(mut req) = invoke(id, service("Greeter", "flaky")) else { unreachable!() };
    req.retry_policy.max_attempts = Some(1);
    req.retry_policy.on_max_attempts = OnMaxAttempts::Kill;
    e.apply(Command::Invoke(req));
    let actions = e.effects(
        id,
        1,
        vec![Effect::Failed {
            failure: FailureInfo { code: 500, message: "boom".into(), ..Default::default() },
            next_retry_delay_ms: None,
            terminal: false,
        }],
    );
    assert_eq!(completed(&actions), Some(&InvocationResult::Failure { code: 500, message: "boom".into() }));
}

#[test]
fn effects_of_a_superseded_attempt_are_ignored() {
    let mut e = Engine::new();
    let id = InvocationId::generate(1);
    e.apply(invoke(id, service("Greeter", "greet")));
    e.effects(
        id,
        1,
        vec![Effect::Failed { failure: FailureInfo::default(), next_retry_delay_ms: Some(10), terminal: false }],
    );
    let actions = e.effects(id, 1, vec![output("\"late\""), Effect::Ended]);
    assert!(actions.is_empty());
    assert!(!e.status(&id).is_completed());
    assert_eq!(e.status(&id).journal_len, 1);
}

#[test]
fn end_without_output_is_a_protocol_violation_and_retried() {
    // §17: never a silent hang.
    let mut e = Engine::new();
    let id = InvocationId::generate(1);
    e.apply(invoke(id, service("Greeter", "greet")));
    let actions = e.effects(id, 1, vec![Effect::Ended]);
    assert!(actions.iter().any(|a| matches!(a, Action::ScheduleTimer(Timer { kind: TimerKind::Retry { .. }, .. }))));
    let status = e.status(&id);
    assert!(!status.is_completed());
    assert!(status.attempt.last_failure.unwrap().message.contains("End without an Output"));
}

#[test]
fn the_same_id_again_is_deduplicated() {
    // §13.1: an idempotent request maps to the same invocation.
    let mut e = Engine::new();
    let id = InvocationId::idempotent("Greeter", None, "greet", "k1");
    assert_eq!(e.apply(invoke(id, service("Greeter", "greet"))).0, Outcome::Accepted);
    let (outcome, actions) = e.apply(invoke(id, service("Greeter", "greet")));
    assert_eq!(outcome, Outcome::PreviouslyAccepted);
    assert!(actions.is_empty(), "no second attempt");
    e.effects(id, 1, vec![output("\"Hello, Alice!\""), Effect::Ended]);
    let (outcome, _) = e.apply(invoke(id, service("Greeter", "greet")));
    assert_eq!(
        outcome,
        Outcome::Completed {
            result: InvocationResult::Success(Bytes::from_static(b"\"Hello, Alice!\"")),
            expires_at: Some(1_000 + 86_400_000)
        }
    );
}

#[test]
fn exclusive_handlers_queue_per_key_and_run_in_order() {
    // §9 key locks and the inbox.
    let mut e = Engine::new();
    let (a, b, c) = (InvocationId::generate(1), InvocationId::generate(2), InvocationId::generate(3));
    let add = || object("Counter", "k", "add", HandlerKind::Exclusive);
    assert_eq!(invoked(&e.apply(invoke(a, add())).1).len(), 1);
    assert_eq!(invoked(&e.apply(invoke(b, add())).1).len(), 0);
    assert_eq!(invoked(&e.apply(invoke(c, add())).1).len(), 0);
    assert!(matches!(e.status(&b).phase, Phase::Inboxed { .. }));
    // A shared handler on the same key runs right away.
    let shared = InvocationId::generate(4);
    assert_eq!(invoked(&e.apply(invoke(shared, object("Counter", "k", "get", HandlerKind::Shared))).1).len(), 1);
    // Another key is independent.
    let other = InvocationId::generate(5);
    assert_eq!(invoked(&e.apply(invoke(other, object("Counter", "j", "add", HandlerKind::Exclusive))).1).len(), 1);

    let actions = e.effects(a, 1, vec![output("1"), Effect::Ended]);
    let next = invoked(&actions);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].id, b, "the inbox is FIFO");
    let actions = e.effects(b, 1, vec![output("2"), Effect::Ended]);
    assert_eq!(invoked(&actions)[0].id, c);
    let obj = ObjectKey { service: "Counter".into(), key: "k".into() };
    assert_eq!(e.txn.lock(&obj).unwrap().unwrap().holder, Some(c));
    e.effects(c, 1, vec![output("3"), Effect::Ended]);
    let lock = e.txn.lock(&obj).unwrap().unwrap();
    assert_eq!(lock.holder, None);
    assert!(lock.inbox_from > 0, "the inbox cursor moved past the popped entries");
}

#[test]
fn state_commands_change_the_objects_state() {
    let mut e = Engine::new();
    let id = InvocationId::generate(1);
    e.apply(invoke(id, object("Counter", "k", "add", HandlerKind::Exclusive)));
    let set = SetStateCommandMessage {
        key: Bytes::from_static(b"count"),
        value: Some(Value::new(Bytes::from_static(b"5"))),
        name: String::new(),
    };
    e.effects(id, 1, vec![command(ty::SET_STATE_COMMAND, set), output("5"), Effect::Ended]);
    let obj = ObjectKey { service: "Counter".into(), key: "k".into() };
    assert_eq!(e.txn.state(&obj, b"count").unwrap(), Some(Bytes::from_static(b"5")));
}

#[test]
fn a_call_creates_the_callee_and_its_result_returns_to_the_caller() {
    // §9 Call: CallInvocationId at once, CallCompletion when the callee ends.
    let mut e = Engine::new();
    let caller = InvocationId::generate(1);
    e.apply(invoke(caller, service("Greeter", "greetAndCount")));
    let call = CallCommandMessage {
        service_name: "Counter".into(),
        handler_name: "add".into(),
        parameter: Bytes::from_static(b"1"),
        key: "carol".into(),
        invocation_id_notification_idx: 1,
        result_completion_id: 2,
        ..Default::default()
    };
    let effect = Effect::Command {
        ty: ty::CALL_COMMAND,
        payload: call.encode_to_vec().into(),
        call_target: Some(object("Counter", "carol", "add", HandlerKind::Exclusive)),
        call_policy: Some((RetryPolicy::default(), Retention::default())),
        call_trace: None,
    };
    let actions = e.effects(caller, 1, vec![effect]);
    let callee_attempt = invoked(&actions);
    assert_eq!(callee_attempt.len(), 1, "the callee (same partition) starts");
    let callee = callee_attempt[0].id;
    assert_eq!(callee.partition_key, crate::ids::partition_key_of(b"carol"));
    // The caller got the callee's id as notification 2 of its journal.
    let entry = e.txn.journal_entry(&caller, 2).unwrap().unwrap();
    assert_eq!(entry.ty, ty::CALL_INVOCATION_ID_COMPLETION_NOTIFICATION);

    let actions = e.effects(callee, 1, vec![output("1"), Effect::Ended]);
    let forwarded: Vec<_> =
        actions.iter().filter(|a| matches!(a, Action::Forward { id, .. } if *id == caller)).collect();
    assert_eq!(forwarded.len(), 1, "the result is forwarded to the running caller");
    let entry = e.txn.journal_entry(&caller, 3).unwrap().unwrap();
    assert_eq!(entry.ty, ty::CALL_COMPLETION_NOTIFICATION);
    assert_eq!(NotificationMessage::decode(entry.payload).unwrap().completion_id(), Some(2));
}

#[test]
fn messages_for_other_partitions_go_through_the_outbox_exactly_once() {
    let mut p0 = Engine::with_partition(PartitionInfo { id: 0, keys: 0..=(u64::MAX / 2) });
    let mut p1 = Engine::with_partition(PartitionInfo { id: 1, keys: (u64::MAX / 2 + 1)..=u64::MAX });
    let caller = InvocationId::generate(1);
    p0.apply(invoke(caller, service("A", "a")));
    let callee_id = InvocationId::generate(u64::MAX - 1);
    let (_, actions) = p0.apply(Command::Shuffle {
        source: 9,
        seq: 0,
        message: OutboxMessage::Notify {
            target: caller,
            notification: Notification {
                ty: ty::SIGNAL_NOTIFICATION,
                id: NotificationId::Signal(17),
                result: NotificationResult::Void,
            },
        },
    });
    assert_eq!(actions.len(), 1, "delivered once");
    let (_, again) = p0.apply(Command::Shuffle {
        source: 9,
        seq: 0,
        message: OutboxMessage::Notify {
            target: caller,
            notification: Notification {
                ty: ty::SIGNAL_NOTIFICATION,
                id: NotificationId::Signal(17),
                result: NotificationResult::Void,
            },
        },
    });
    assert!(again.is_empty(), "a redelivered message is dropped");
    assert_eq!(p0.status(&caller).journal_len, 2);

    // An invoke for a key of the other partition is shipped, not applied here.
    let Command::Invoke(req) = invoke(callee_id, service("B", "b")) else { unreachable!() };
    let mut ctx_actions = Vec::new();
    {
        let mut ctx = super::ctx::Ctx::new(&mut p0.txn, 1, &p0.partition, &mut ctx_actions);
        ctx.route(OutboxMessage::Invoke(req.clone()));
        assert!(ctx.next_local().is_none());
    }
    let Action::Ship { seq, message } = &ctx_actions[0] else { panic!("expected Ship, got {ctx_actions:?}") };
    assert_eq!(p0.txn.meta.next_outbox_seq, seq + 1);
    let (_, actions) = p1.apply(Command::Shuffle { source: 0, seq: *seq, message: message.clone() });
    assert_eq!(invoked(&actions).len(), 1);
}

#[test]
fn zero_retention_forgets_the_invocation_at_completion() {
    let mut e = Engine::new();
    let id = InvocationId::generate(1);
    let Command::Invoke(mut req) = invoke(id, service("Greeter", "greet")) else { unreachable!() };
    req.retention = Retention::default();
    e.apply(Command::Invoke(req));
    e.effects(id, 1, vec![output("\"x\""), Effect::Ended]);
    assert!(e.txn.invocation(&id).unwrap().is_none());
    assert!(e.txn.journal_entry(&id, 0).unwrap().is_none());
}

#[test]
fn retention_cleanup_timer_purges_result_and_journal() {
    let mut e = Engine::new();
    let id = InvocationId::generate(1);
    e.apply(invoke(id, service("Greeter", "greet")));
    let actions = e.effects(id, 1, vec![output("\"x\""), Effect::Ended]);
    let cleanup = actions
        .iter()
        .find_map(|a| {
            if let Action::ScheduleTimer(t @ Timer { kind: TimerKind::Cleanup, .. }) = a {
                Some(t.clone())
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(cleanup.fire_at, 1_000 + 86_400_000);
    let (_, actions) = e.apply(Command::TimerFired(cleanup));
    assert!(actions.iter().any(|a| matches!(a, Action::Forgotten { .. })));
    assert!(e.txn.invocation(&id).unwrap().is_none());
}

#[test]
fn delayed_invocations_start_when_their_timer_fires() {
    let mut e = Engine::new();
    let id = InvocationId::generate(1);
    let Command::Invoke(mut req) = invoke(id, service("Greeter", "greet")) else { unreachable!() };
    req.execute_at = Some(5_000);
    let (_, actions) = e.apply(Command::Invoke(req));
    assert!(invoked(&actions).is_empty());
    assert_eq!(e.status(&id).phase, Phase::Scheduled { at_ms: 5_000 });
    e.now = 5_000;
    let (_, actions) =
        e.apply(Command::TimerFired(Timer { fire_at: 5_000, invocation: id, kind: TimerKind::Scheduled }));
    assert_eq!(invoked(&actions).len(), 1);
}

#[test]
fn awakeable_completion_from_outside_wakes_the_waiter() {
    let mut e = Engine::new();
    let id = InvocationId::generate(1);
    e.apply(invoke(id, service("Greeter", "waiter")));
    e.effects(id, 1, vec![Effect::Suspended(WaitSet { signals: vec![17], ..Default::default() })]);
    let (_, actions) = e.apply(Command::Notify {
        target: id,
        notification: Notification {
            ty: ty::SIGNAL_NOTIFICATION,
            id: NotificationId::Signal(17),
            result: NotificationResult::Value(Bytes::from_static(b"\"ok\"")),
        },
    });
    assert_eq!(invoked(&actions).len(), 1);
}

#[test]
fn the_journal_goes_at_its_retention_and_the_result_stays_until_its_own() {
    let mut e = Engine::new();
    let id = InvocationId::generate(1);
    let Command::Invoke(mut req) = invoke(id, service("Greeter", "greet")) else { unreachable!() };
    req.retention = Retention { completion_ms: 10_000, journal_ms: 1_000 };
    e.apply(Command::Invoke(req));
    let actions = e.effects(id, 1, vec![output("\"x\""), Effect::Ended]);
    let timers: Vec<Timer> =
        actions.iter().filter_map(|a| if let Action::ScheduleTimer(t) = a { Some(t.clone()) } else { None }).collect();
    assert_eq!(timers.len(), 2, "{timers:?}");
    let journal = timers.iter().find(|t| t.kind == TimerKind::JournalCleanup).unwrap().clone();
    assert_eq!(journal.fire_at, 2_000);
    e.apply(Command::TimerFired(journal));
    let status = e.status(&id);
    assert!(status.journal_purged);
    assert!(e.txn.journal_entry(&id, 0).unwrap().is_none());
    assert_eq!(status.result(), Some(&InvocationResult::Success(Bytes::from_static(b"\"x\""))));
    let cleanup = timers.iter().find(|t| t.kind == TimerKind::Cleanup).unwrap().clone();
    assert_eq!(cleanup.fire_at, 11_000);
    e.apply(Command::TimerFired(cleanup));
    assert!(e.txn.invocation(&id).unwrap().is_none());
}

#[test]
fn a_paused_deployment_holds_its_invocations_until_it_is_resumed_but_not_those_a_user_paused() {
    let mut e = Engine::new();
    let dp = crate::ids::DeploymentId(42);
    let pin =
        Effect::Pinned(PinnedDeployment { deployment: dp, protocol_version: 6, executed_version: None, revision: 1 });
    let held = InvocationId::generate(1);
    let by_user = InvocationId::generate(2);
    for id in [held, by_user] {
        e.apply(invoke(id, service("Greeter", "greet")));
    }
    e.effects(held, 1, vec![pin.clone(), Effect::Held { message: "deployment dp_x is paused".into() }]);
    let status = e.status(&held);
    assert_eq!((status.phase.clone(), status.held, status.attempt.in_flight), (Phase::Paused, true, false));
    assert_eq!(status.attempt.last_failure.as_ref().unwrap().code, 503);
    e.effects(by_user, 1, vec![pin]);
    e.apply(Command::Control { id: by_user, request: super::command::ControlRequest::Pause });
    assert_eq!(e.status(&by_user).phase, Phase::Paused);

    let (_, actions) = e.apply(Command::DeploymentResumed { deployment: crate::ids::DeploymentId(7) });
    assert!(invoked(&actions).is_empty(), "another deployment's resume changes nothing");
    let (_, actions) = e.apply(Command::DeploymentResumed { deployment: dp });
    assert_eq!(invoked(&actions).len(), 1, "only the held one goes on");
    assert!(!e.status(&held).held);
    assert_eq!(e.status(&held).phase, Phase::Invoked);
    assert_eq!(e.status(&by_user).phase, Phase::Paused, "a user's pause stays");
}

fn control(e: &mut Engine, id: InvocationId, request: ControlRequest) -> (ControlOutcome, Vec<Action>) {
    match e.apply(Command::Control { id, request }) {
        (Outcome::Control(outcome), actions) => (outcome, actions),
        (other, _) => panic!("a control command answers with a control outcome, not {other:?}"),
    }
}

fn killed() -> InvocationResult {
    InvocationResult::Failure { code: 409, message: "killed".into() }
}

fn canceled() -> InvocationResult {
    InvocationResult::Failure { code: 409, message: "canceled".into() }
}

/// The signal a journal entry carries, if it is a signal notification.
fn signal_of(entry: &JournalEntry) -> Option<u32> {
    (entry.ty == ty::SIGNAL_NOTIFICATION)
        .then(|| NotificationMessage::decode(entry.payload.clone()).ok()?.signal_id())?
}

/// A call from `caller` (attempt 1) to `Waiter/cancellable` on this partition: the callee's id.
fn call_cancellable(e: &mut Engine, caller: InvocationId) -> InvocationId {
    let call = CallCommandMessage {
        service_name: "Waiter".into(),
        handler_name: "cancellable".into(),
        invocation_id_notification_idx: 1,
        result_completion_id: 2,
        ..Default::default()
    };
    let effect = Effect::Command {
        ty: ty::CALL_COMMAND,
        payload: call.encode_to_vec().into(),
        call_target: Some(service("Waiter", "cancellable")),
        call_policy: Some((RetryPolicy::default(), Retention { completion_ms: 60_000, journal_ms: 60_000 })),
        call_trace: None,
    };
    let actions = e.effects(caller, 1, vec![effect]);
    let started = invoked(&actions);
    assert_eq!(started.len(), 1, "the callee starts on this partition");
    started[0].id
}

#[test]
fn cancel_of_a_running_invocation_delivers_the_cancel_signal_and_lets_the_handler_finish() {
    // Restate's cancel: signal 1 (CANCEL) in the journal, forwarded to the running attempt;
    // the handler decides how it ends (it may compensate first).
    let mut e = Engine::new();
    let id = InvocationId::generate(3);
    e.apply(invoke(id, service("Waiter", "cancellable")));
    let (outcome, actions) = control(&mut e, id, ControlRequest::Cancel);
    assert_eq!(outcome, ControlOutcome::Appended);
    let entry = e.txn.journal_entry(&id, 1).unwrap().expect("the signal is journaled");
    assert_eq!(signal_of(&entry), Some(1), "signal 1 is CANCEL");
    assert!(
        matches!(actions.as_slice(), [Action::Forward { id: f, attempt: 1, index: 1, .. }] if *f == id),
        "only forwarded to the running attempt: {actions:?}"
    );
    let status = e.status(&id);
    assert!(!status.is_completed(), "a cancel does not end the invocation by itself");
    assert_eq!(status.journal_len, 2);

    // The handler compensates and fails with the cancellation: that is how it ends.
    let actions = e.effects(
        id,
        1,
        vec![
            command(
                ty::OUTPUT_COMMAND,
                OutputCommandMessage {
                    result: Some(OutputResult::Failure(crate::protocol::messages::Failure {
                        code: 409,
                        message: "canceled".into(),
                        metadata: vec![],
                    })),
                    name: String::new(),
                },
            ),
            Effect::Ended,
        ],
    );
    assert_eq!(completed(&actions), Some(&canceled()));
    assert_eq!(control(&mut e, id, ControlRequest::Cancel).0, ControlOutcome::AlreadyCompleted);
}

#[test]
fn cancel_of_a_suspended_invocation_wakes_it_only_if_it_listens_for_the_cancel() {
    let mut e = Engine::new();
    let sleeper = InvocationId::generate(3);
    e.apply(invoke(sleeper, service("Waiter", "cancellable")));
    let sleep = SleepCommandMessage { wake_up_time: 60_000, result_completion_id: 1, name: String::new() };
    // SDKs suspend waiting for their completions and signal 1, so a cancel wakes them.
    e.effects(
        sleeper,
        1,
        vec![
            command(ty::SLEEP_COMMAND, sleep),
            Effect::Suspended(WaitSet { completions: vec![1], signals: vec![1], ..Default::default() }),
        ],
    );
    let (outcome, actions) = control(&mut e, sleeper, ControlRequest::Cancel);
    assert_eq!(outcome, ControlOutcome::Appended);
    let attempt = invoked(&actions);
    assert_eq!(attempt.len(), 1, "a new attempt replays the journal with the cancel in it");
    assert_eq!((attempt[0].attempt, attempt[0].journal_len), (2, 3));
    assert_eq!(signal_of(&e.txn.journal_entry(&sleeper, 2).unwrap().unwrap()), Some(1));

    // Suspended on something else only: the cancel waits in the journal for its next attempt.
    let deaf = InvocationId::generate(4);
    e.apply(invoke(deaf, service("Waiter", "awaitAwakeable")));
    e.effects(deaf, 1, vec![Effect::Suspended(WaitSet { signals: vec![17], ..Default::default() })]);
    let (outcome, actions) = control(&mut e, deaf, ControlRequest::Cancel);
    assert_eq!(outcome, ControlOutcome::Appended);
    assert!(invoked(&actions).is_empty(), "{actions:?}");
    assert_eq!(e.status(&deaf).journal_len, 2);
    assert!(matches!(e.status(&deaf).phase, Phase::Suspended { .. }));
}

#[test]
fn cancel_of_a_paused_invocation_starts_an_attempt_to_deliver_it() {
    let mut e = Engine::new();
    let id = InvocationId::generate(3);
    e.apply(invoke(id, service("Greeter", "flaky")));
    assert_eq!(control(&mut e, id, ControlRequest::Pause).0, ControlOutcome::Appended);
    assert_eq!(e.status(&id).phase, Phase::Paused);
    let (outcome, actions) = control(&mut e, id, ControlRequest::Cancel);
    assert_eq!(outcome, ControlOutcome::Appended);
    let attempt = invoked(&actions);
    assert_eq!(attempt.len(), 1, "nothing would deliver the cancel to a paused invocation otherwise");
    assert_eq!((attempt[0].attempt, attempt[0].journal_len), (2, 2));
    assert_eq!(e.status(&id).phase, Phase::Invoked);
}

#[test]
fn cancel_of_an_inboxed_invocation_ends_it_canceled_without_running_and_the_inbox_moves_on() {
    let mut e = Engine::new();
    let (holder, cancelled, next) = (InvocationId::generate(1), InvocationId::generate(2), InvocationId::generate(3));
    let add = || object("Counter", "busy", "add", HandlerKind::Exclusive);
    for id in [holder, cancelled, next] {
        e.apply(invoke(id, add()));
    }
    let (outcome, actions) = control(&mut e, cancelled, ControlRequest::Cancel);
    assert_eq!(outcome, ControlOutcome::Done, "done now: there is nothing to signal");
    assert_eq!(completed(&actions), Some(&canceled()));
    assert!(invoked(&actions).is_empty());
    assert_eq!(e.status(&cancelled).result(), Some(&canceled()));

    // When the holder finishes, the lock goes to the next one still waiting.
    let actions = e.effects(holder, 1, vec![output("1"), Effect::Ended]);
    let started: Vec<InvocationId> = invoked(&actions).iter().map(|a| a.id).collect();
    assert_eq!(started, vec![next], "the cancelled one never runs");
    let obj = ObjectKey { service: "Counter".into(), key: "busy".into() };
    assert_eq!(e.txn.lock(&obj).unwrap().unwrap().holder, Some(next));
}

#[test]
fn cancel_of_a_scheduled_invocation_ends_it_before_its_timer() {
    let mut e = Engine::new();
    let id = InvocationId::generate(1);
    let Command::Invoke(mut req) = invoke(id, service("Greeter", "greet")) else { unreachable!() };
    req.execute_at = Some(5_000);
    e.apply(Command::Invoke(req));
    assert_eq!(control(&mut e, id, ControlRequest::Cancel).0, ControlOutcome::Done);
    assert_eq!(e.status(&id).result(), Some(&canceled()));
    e.now = 5_000;
    let (_, actions) =
        e.apply(Command::TimerFired(Timer { fire_at: 5_000, invocation: id, kind: TimerKind::Scheduled }));
    assert!(invoked(&actions).is_empty(), "its timer firing later starts nothing");
}

#[test]
fn control_of_an_unknown_invocation_is_not_found_and_changes_nothing() {
    let mut e = Engine::new();
    let unknown = InvocationId::generate(8);
    for request in [
        ControlRequest::Cancel,
        ControlRequest::Kill,
        ControlRequest::Purge,
        ControlRequest::RestartAsNew { new_id: InvocationId::generate(8) },
    ] {
        let (outcome, actions) = control(&mut e, unknown, request);
        assert_eq!(outcome, ControlOutcome::NotFound);
        assert!(actions.is_empty());
    }
    assert!(e.txn.invocation(&unknown).unwrap().is_none());
}

#[test]
fn kill_ends_the_invocation_at_once_aborts_its_attempt_and_kills_what_it_called() {
    let mut e = Engine::new();
    let parent = InvocationId::generate(1);
    e.apply(invoke(parent, service("Waiter", "parent")));
    let child = call_cancellable(&mut e, parent);
    let (outcome, actions) = control(&mut e, parent, ControlRequest::Kill);
    assert_eq!(outcome, ControlOutcome::Done);
    // Both end killed, both running attempts are aborted, and nothing is signalled to either
    // (killing runs no compensation).
    for id in [parent, child] {
        assert_eq!(e.status(&id).result(), Some(&killed()), "{id}");
        assert!(
            actions.iter().any(|a| matches!(a, Action::Abort { id: aborted, attempt: 1 } if *aborted == id)),
            "{actions:?}"
        );
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Completed { id: c, result, .. } if *c == id && *result == killed())),
            "{actions:?}"
        );
    }
    assert!(!actions.iter().any(|a| matches!(a, Action::Forward { .. } | Action::Invoke(_))), "{actions:?}");
    assert_eq!(e.status(&child).journal_len, 1, "no cancel signal in the callee's journal");
    assert_eq!(control(&mut e, parent, ControlRequest::Kill).0, ControlOutcome::AlreadyCompleted);
    assert_eq!(control(&mut e, child, ControlRequest::Cancel).0, ControlOutcome::AlreadyCompleted);
}

#[test]
fn kill_reaches_callees_on_other_partitions_through_the_outbox() {
    let mut p0 = Engine::with_partition(PartitionInfo { id: 0, keys: 0..=(u64::MAX / 2) });
    let parent = InvocationId::generate(1);
    p0.apply(invoke(parent, service("Waiter", "parent")));
    let child = InvocationId::generate(u64::MAX - 1);
    // The callee's id, as its partition sent it back.
    p0.apply(Command::Notify {
        target: parent,
        notification: Notification {
            ty: ty::CALL_INVOCATION_ID_COMPLETION_NOTIFICATION,
            id: NotificationId::Completion(1),
            result: NotificationResult::InvocationId(child.to_string()),
        },
    });
    let (outcome, actions) = control(&mut p0, parent, ControlRequest::Kill);
    assert_eq!(outcome, ControlOutcome::Done);
    let shipped: Vec<&OutboxMessage> = actions
        .iter()
        .filter_map(|a| if let Action::Ship { message, .. } = a { Some(message) } else { None })
        .collect();
    assert_eq!(shipped, vec![&OutboxMessage::Kill { target: child }]);

    let mut p1 = Engine::with_partition(PartitionInfo { id: 1, keys: (u64::MAX / 2 + 1)..=u64::MAX });
    p1.apply(invoke(child, service("Waiter", "cancellable")));
    p1.apply(Command::Shuffle { source: 0, seq: 0, message: OutboxMessage::Kill { target: child } });
    assert_eq!(p1.status(&child).result(), Some(&killed()));
}

#[test]
fn kill_of_an_inboxed_invocation_takes_it_out_of_the_inbox() {
    let mut e = Engine::new();
    let (holder, victim, next) = (InvocationId::generate(1), InvocationId::generate(2), InvocationId::generate(3));
    for id in [holder, victim, next] {
        e.apply(invoke(id, object("Counter", "k", "add", HandlerKind::Exclusive)));
    }
    assert_eq!(control(&mut e, victim, ControlRequest::Kill).0, ControlOutcome::Done);
    assert_eq!(e.status(&victim).result(), Some(&killed()));
    let actions = e.effects(holder, 1, vec![output("1"), Effect::Ended]);
    let started: Vec<InvocationId> = invoked(&actions).iter().map(|a| a.id).collect();
    assert_eq!(started, vec![next]);
}

#[test]
fn restart_as_new_runs_a_copy_with_the_same_input_and_keeps_the_original() {
    let mut e = Engine::new();
    let id = InvocationId::generate(5);
    e.apply(invoke(id, service("Greeter", "greet")));
    e.effects(id, 1, vec![output("\"Hello, Alice!\""), Effect::Ended]);
    let new_id = InvocationId::generate(5);
    let (outcome, actions) = control(&mut e, id, ControlRequest::RestartAsNew { new_id });
    assert_eq!(outcome, ControlOutcome::Restarted(new_id));
    let attempt = invoked(&actions);
    assert_eq!(attempt.len(), 1);
    assert_eq!((attempt[0].id, attempt[0].attempt, attempt[0].journal_len), (new_id, 1, 1));
    assert_eq!(attempt[0].target, service("Greeter", "greet"));
    let copy = e.status(&new_id);
    assert_eq!((copy.phase.clone(), copy.source.clone()), (Phase::Invoked, Source::Ingress));
    let input = |id| {
        let entry = e.txn.journal_entry(&id, 0).unwrap().unwrap();
        crate::protocol::messages::InputCommandMessage::decode(entry.payload).unwrap()
    };
    assert_eq!(input(new_id), input(id), "the same headers and body");
    assert_eq!(
        e.status(&id).result(),
        Some(&InvocationResult::Success(Bytes::from_static(b"\"Hello, Alice!\""))),
        "the original keeps its result"
    );
}

#[test]
fn restart_as_new_needs_a_completed_invocation_that_is_not_a_workflow_run_and_still_has_its_input() {
    let mut e = Engine::new();
    let fresh = || InvocationId::generate(6);
    let running = InvocationId::generate(1);
    e.apply(invoke(running, object("Counter", "k", "add", HandlerKind::Exclusive)));
    let inboxed = InvocationId::generate(2);
    e.apply(invoke(inboxed, object("Counter", "k", "add", HandlerKind::Exclusive)));
    assert_eq!(
        control(&mut e, running, ControlRequest::RestartAsNew { new_id: fresh() }).0,
        ControlOutcome::NotCompleted
    );
    assert_eq!(
        control(&mut e, inboxed, ControlRequest::RestartAsNew { new_id: fresh() }).0,
        ControlOutcome::NotStarted
    );

    let run = InvocationId::workflow_run("SleepWorkflow", "w9");
    let workflow = Target {
        service: "SleepWorkflow".into(),
        handler: "run".into(),
        key: Some("w9".into()),
        service_kind: ServiceKind::Workflow,
        handler_kind: HandlerKind::Workflow,
    };
    e.apply(invoke(run, workflow));
    e.effects(run, 1, vec![output("\"woke up\""), Effect::Ended]);
    let (outcome, actions) = control(&mut e, run, ControlRequest::RestartAsNew { new_id: fresh() });
    assert!(matches!(&outcome, ControlOutcome::Unsupported(why) if why.contains("workflow")), "{outcome:?}");
    assert!(actions.is_empty());

    let greeted = InvocationId::generate(3);
    e.apply(invoke(greeted, service("Greeter", "greet")));
    e.effects(greeted, 1, vec![output("\"x\""), Effect::Ended]);
    assert_eq!(control(&mut e, greeted, ControlRequest::PurgeJournal).0, ControlOutcome::Done);
    let new_id = fresh();
    let (outcome, actions) = control(&mut e, greeted, ControlRequest::RestartAsNew { new_id });
    assert_eq!(outcome, ControlOutcome::InputGone);
    assert!(actions.is_empty());
    assert!(e.txn.invocation(&new_id).unwrap().is_none(), "nothing was created");
}

#[test]
fn a_call_whose_target_was_never_resolved_fails_the_caller_naming_the_target() {
    // §9 Call and OneWayCall: the invoker resolves the callee before it reports the command.
    // One reported without it cannot be made, and its command is in the journal already (a
    // retry would replay it, and the SDK would wait for it forever): the caller fails, its
    // running attempt stops, and the failure says which call it was.
    let call = CallCommandMessage {
        service_name: "Counter".into(),
        handler_name: "add".into(),
        key: "carol".into(),
        invocation_id_notification_idx: 1,
        result_completion_id: 2,
        ..Default::default()
    };
    let send = crate::protocol::messages::OneWayCallCommandMessage {
        service_name: "Mailer".into(),
        handler_name: "send".into(),
        invocation_id_notification_idx: 1,
        ..Default::default()
    };
    for (effect, named) in [
        (command(ty::CALL_COMMAND, call), "Counter/carol/add"),
        (command(ty::ONE_WAY_CALL_COMMAND, send), "Mailer/send"),
    ] {
        let mut e = Engine::new();
        let caller = InvocationId::generate(1);
        e.apply(invoke(caller, service("Greeter", "greetAndCount")));
        let actions = e.effects(caller, 1, vec![effect]);
        let Some(InvocationResult::Failure { message, .. }) = completed(&actions) else {
            panic!("the caller ends with a failure, not {actions:?}");
        };
        assert!(message.contains(named), "the failure names the call's target: {message}");
        assert!(actions.iter().any(|a| matches!(a, Action::Abort { id, attempt: 1 } if *id == caller)));
        assert!(invoked(&actions).is_empty(), "no callee is created");
        let status = e.status(&caller);
        assert!(status.is_completed());
        assert!(status.attempt.last_failure.as_ref().is_some_and(|f| f.message.contains(named)));
        // The stopped attempt's later reports change nothing.
        e.effects(caller, 1, vec![output("\"late\""), Effect::Ended]);
        assert_eq!(e.status(&caller).phase, status.phase);
    }
}
