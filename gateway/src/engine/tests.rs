//! Engine scenarios: the state machine alone, no RocksDB and no tokio. Each test is named
//! after the behaviour (and spec section of `service-protocol.md`) it proves.

use bytes::Bytes;
use prost::Message as _;

use super::action::Action;
use super::command::{Command, Effect, EffectBatch, InvokeRequest, Outcome};
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
