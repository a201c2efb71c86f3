//! The state machine fed arbitrary command sequences, on RocksDB as the partition service
//! runs it: every batch is encoded as a log entry, applied, and its writes stored. Then:
//! - no command panics or fails to apply, whatever ids, times, payloads and orders it has
//!   (commands come from clients, operators, deployments and other partitions);
//! - **replay determinism**: applying the same log entries to an empty store rebuilds state
//!   identical byte for byte, which is what crash recovery relies on.

use bytes::Bytes;
use proptest::prelude::*;
use prost::Message as _;

use crate::engine::action::Action;
use crate::engine::command::{Command, ControlRequest, Effect, EffectBatch, InvokeRequest, LogBatch, LogBatchRef};
use crate::engine::keyspace::PartitionInfo;
use crate::engine::machine::apply;
use crate::engine::records::*;
use crate::engine::store::Txn;
use crate::ids::{AwakeableId, DeploymentId, InvocationId};
use crate::protocol::messages as pm;
use crate::protocol::messages::ty;
use crate::storage::{Database, Storage, codec};

/// The invocations a scenario talks about: a handful, so commands meet each other.
fn ids() -> Vec<InvocationId> {
    let mut ids: Vec<InvocationId> =
        (0..5u64).map(|i| InvocationId::new(i.wrapping_mul(0x3333_3333_3333_3333), 1000 + i as u128)).collect();
    ids.push(InvocationId::workflow_run("W", "w1"));
    ids.push(InvocationId::idempotent("S", None, "h", "ik"));
    ids
}

fn targets() -> Vec<Target> {
    let t = |service: &str, handler: &str, key: Option<&str>, service_kind, handler_kind| Target {
        service: service.into(),
        handler: handler.into(),
        key: key.map(Into::into),
        service_kind,
        handler_kind,
    };
    vec![
        t("S", "h", None, ServiceKind::Service, HandlerKind::Unkeyed),
        t("O", "add", Some("k1"), ServiceKind::VirtualObject, HandlerKind::Exclusive),
        t("O", "add", Some("k2"), ServiceKind::VirtualObject, HandlerKind::Exclusive),
        t("O", "get", Some("k1"), ServiceKind::VirtualObject, HandlerKind::Shared),
        t("W", "run", Some("w1"), ServiceKind::Workflow, HandlerKind::Workflow),
        t("W", "status", Some("w1"), ServiceKind::Workflow, HandlerKind::Shared),
        // Not what ingress or the invoker make, but what a damaged or hand-written log could hold.
        t("O", "add", None, ServiceKind::VirtualObject, HandlerKind::Exclusive),
    ]
}

fn id() -> impl Strategy<Value = InvocationId> {
    proptest::sample::select(ids())
}

fn target() -> impl Strategy<Value = Target> {
    proptest::sample::select(targets())
}

/// Times near the scenario's clock, and anywhere up to the end of `u64`.
fn time() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..5_000, 1 => any::<u64>(), 1 => Just(u64::MAX)]
}

fn bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from)
}

fn small() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..6, 1 => any::<u32>()]
}

fn failure() -> impl Strategy<Value = pm::Failure> {
    (any::<u32>(), "[a-z ]{0,8}").prop_map(|(code, message)| pm::Failure { code, message, metadata: vec![] })
}

fn result() -> impl Strategy<Value = InvocationResult> {
    prop_oneof![
        bytes().prop_map(InvocationResult::Success),
        (any::<u16>(), "[a-z]{0,6}").prop_map(|(code, message)| InvocationResult::Failure { code, message }),
    ]
}

fn notification() -> impl Strategy<Value = Notification> {
    let nid = prop_oneof![
        small().prop_map(NotificationId::Completion),
        small().prop_map(NotificationId::Signal),
        "[a-c]{1,2}".prop_map(NotificationId::NamedSignal),
    ];
    let result = prop_oneof![
        Just(NotificationResult::Void),
        bytes().prop_map(NotificationResult::Value),
        (any::<u16>(), "[a-z]{0,4}").prop_map(|(code, message)| NotificationResult::Failure { code, message }),
        id().prop_map(|i| NotificationResult::InvocationId(i.to_string())),
        proptest::collection::vec(bytes(), 0..3).prop_map(NotificationResult::StateKeys),
    ];
    (
        proptest::sample::select(vec![
            ty::SLEEP_COMPLETION_NOTIFICATION,
            ty::CALL_COMPLETION_NOTIFICATION,
            ty::SIGNAL_NOTIFICATION,
            0x1234,
        ]),
        nid,
        result,
    )
        .prop_map(|(ty, id, result)| Notification { ty, id, result })
}

fn retry_policy() -> impl Strategy<Value = RetryPolicy> {
    (time(), prop_oneof![Just(2.0), any::<f64>()], time(), proptest::option::of(small()), any::<bool>()).prop_map(
        |(initial_interval_ms, factor, max_interval_ms, max_attempts, kill)| RetryPolicy {
            initial_interval_ms,
            factor,
            max_interval_ms,
            max_attempts,
            on_max_attempts: if kill { OnMaxAttempts::Kill } else { OnMaxAttempts::Pause },
        },
    )
}

fn retention() -> impl Strategy<Value = Retention> {
    (prop_oneof![Just(0u64), time()], prop_oneof![Just(0u64), time()])
        .prop_map(|(completion_ms, journal_ms)| Retention { completion_ms, journal_ms })
}

fn sink() -> impl Strategy<Value = Sink> {
    prop_oneof![
        (id(), small()).prop_map(|(caller, completion_id)| Sink::Caller { caller, completion_id }),
        (id(), small()).prop_map(|(caller, completion_id)| Sink::Attacher { caller, completion_id }),
    ]
}

fn invoke_request() -> impl Strategy<Value = InvokeRequest> {
    (
        id(),
        target(),
        bytes(),
        proptest::option::of("ik|other"),
        proptest::option::of(time()),
        proptest::option::of(sink()),
        retry_policy(),
        retention(),
        proptest::option::of(id()),
        proptest::option::of(proptest::prelude::any::<(u128, u64, u64, bool)>()),
    )
        .prop_map(
            |(id, target, body, idempotency_key, execute_at, sink, retry_policy, retention, caller, trace)| {
                InvokeRequest {
                    id,
                    target,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body,
                    source: match caller {
                        Some(caller) => Source::Service { caller, caller_target: "S/h".into() },
                        None => Source::Ingress,
                    },
                    idempotency_key,
                    execute_at,
                    sink,
                    retry_policy,
                    retention,
                    deployment: None,
                    trace: trace.map(|(trace_id, span_id, parent_span_id, sampled)| {
                        crate::engine::records::TraceContext { trace_id, span_id, parent_span_id, sampled }
                    }),
                }
            },
        )
}

/// A journal command as an SDK would send it (well-formed, with arbitrary fields), or junk.
fn sdk_command() -> impl Strategy<Value = Effect> {
    let state_key = proptest::sample::select(vec![Bytes::from_static(b"count"), Bytes::from_static(b"x")]);
    let promise_key = proptest::sample::select(vec!["decision".to_owned(), "other".to_owned()]);
    let value = || bytes().prop_map(pm::Value::new);
    let completion =
        prop_oneof![value().prop_map(pm::CompletionResult::Value), failure().prop_map(pm::CompletionResult::Failure)];
    let attach_target = prop_oneof![
        id().prop_map(|i| pm::AttachTarget::InvocationId(i.to_string())),
        "[a-z_0-9]{0,10}".prop_map(pm::AttachTarget::InvocationId),
        Just(pm::AttachTarget::WorkflowTarget(pm::WorkflowTarget {
            workflow_name: "W".into(),
            workflow_key: "w1".into()
        })),
        Just(pm::AttachTarget::IdempotentRequestTarget(pm::IdempotentRequestTarget {
            service_name: "S".into(),
            service_key: None,
            handler_name: "h".into(),
            idempotency_key: "ik".into(),
        })),
    ];
    let encoded = prop_oneof![
        prop_oneof![value().prop_map(pm::OutputResult::Value), failure().prop_map(pm::OutputResult::Failure)].prop_map(
            |r| (ty::OUTPUT_COMMAND, pm::OutputCommandMessage { result: Some(r), name: String::new() }.encode_to_vec())
        ),
        (state_key.clone(), value()).prop_map(|(key, v)| (
            ty::SET_STATE_COMMAND,
            pm::SetStateCommandMessage { key, value: Some(v), name: String::new() }.encode_to_vec()
        )),
        state_key.clone().prop_map(|key| (
            ty::CLEAR_STATE_COMMAND,
            pm::ClearStateCommandMessage { key, name: String::new() }.encode_to_vec()
        )),
        Just((ty::CLEAR_ALL_STATE_COMMAND, pm::ClearAllStateCommandMessage { name: String::new() }.encode_to_vec())),
        (state_key, small()).prop_map(|(key, result_completion_id)| (
            ty::GET_LAZY_STATE_COMMAND,
            pm::GetLazyStateCommandMessage { key, result_completion_id, name: String::new() }.encode_to_vec()
        )),
        small().prop_map(|result_completion_id| (
            ty::GET_LAZY_STATE_KEYS_COMMAND,
            pm::GetLazyStateKeysCommandMessage { result_completion_id, name: String::new() }.encode_to_vec()
        )),
        (promise_key.clone(), small()).prop_map(|(key, result_completion_id)| (
            ty::GET_PROMISE_COMMAND,
            pm::GetPromiseCommandMessage { key, result_completion_id, name: String::new() }.encode_to_vec()
        )),
        (promise_key.clone(), small()).prop_map(|(key, result_completion_id)| (
            ty::PEEK_PROMISE_COMMAND,
            pm::PeekPromiseCommandMessage { key, result_completion_id, name: String::new() }.encode_to_vec()
        )),
        (promise_key, proptest::option::of(completion.clone()), small()).prop_map(
            |(key, completion, result_completion_id)| (
                ty::COMPLETE_PROMISE_COMMAND,
                pm::CompletePromiseCommandMessage { key, completion, result_completion_id, name: String::new() }
                    .encode_to_vec()
            )
        ),
        (time(), small()).prop_map(|(wake_up_time, result_completion_id)| (
            ty::SLEEP_COMMAND,
            pm::SleepCommandMessage { wake_up_time, result_completion_id, name: String::new() }.encode_to_vec()
        )),
        (bytes(), "|k1|k2", proptest::option::of("ik|x"), small(), small()).prop_map(
            |(parameter, key, idempotency_key, id_idx, cid)| (
                ty::CALL_COMMAND,
                pm::CallCommandMessage {
                    service_name: "S".into(),
                    handler_name: "h".into(),
                    parameter,
                    headers: vec![],
                    key,
                    idempotency_key,
                    invocation_id_notification_idx: id_idx,
                    result_completion_id: cid,
                    name: String::new(),
                }
                .encode_to_vec()
            )
        ),
        (bytes(), time(), "|k1", small()).prop_map(|(parameter, invoke_time, key, id_idx)| (
            ty::ONE_WAY_CALL_COMMAND,
            pm::OneWayCallCommandMessage {
                service_name: "O".into(),
                handler_name: "add".into(),
                parameter,
                invoke_time,
                headers: vec![],
                key,
                idempotency_key: None,
                invocation_id_notification_idx: id_idx,
                name: String::new(),
            }
            .encode_to_vec()
        )),
        (
            id(),
            small(),
            prop_oneof![
                value().prop_map(pm::SignalResult::Value),
                failure().prop_map(pm::SignalResult::Failure),
                Just(pm::SignalResult::Void(pm::Void {}))
            ],
            any::<bool>()
        )
            .prop_map(|(target, idx, result, named)| (
                ty::SEND_SIGNAL_COMMAND,
                pm::SendSignalCommandMessage {
                    target_invocation_id: target.to_string(),
                    signal_id: Some(if named { pm::SignalId::Name("a".into()) } else { pm::SignalId::Idx(idx) }),
                    result: Some(result),
                    entry_name: String::new(),
                }
                .encode_to_vec()
            )),
        small().prop_map(|result_completion_id| (
            ty::RUN_COMMAND,
            pm::RunCommandMessage { result_completion_id, name: String::new() }.encode_to_vec()
        )),
        (proptest::option::of(attach_target.clone()), small()).prop_map(|(target, result_completion_id)| (
            ty::ATTACH_INVOCATION_COMMAND,
            pm::AttachInvocationCommandMessage { target, result_completion_id, name: String::new() }.encode_to_vec()
        )),
        (proptest::option::of(attach_target), small()).prop_map(|(target, result_completion_id)| (
            ty::GET_INVOCATION_OUTPUT_COMMAND,
            pm::GetInvocationOutputCommandMessage { target, result_completion_id, name: String::new() }.encode_to_vec()
        )),
        (id(), small(), proptest::option::of(completion)).prop_map(|(invocation, signal_index, result)| (
            ty::COMPLETE_AWAKEABLE_COMMAND,
            pm::CompleteAwakeableCommandMessage {
                awakeable_id: AwakeableId { invocation, signal_index }.to_string(),
                result,
                name: String::new(),
            }
            .encode_to_vec()
        )),
        (
            proptest::sample::select(vec![
                ty::GET_EAGER_STATE_COMMAND,
                ty::INPUT_COMMAND,
                ty::CALL_COMMAND,
                0x040F,
                0x0999
            ]),
            proptest::collection::vec(any::<u8>(), 0..16)
        )
            .prop_map(|(t, junk)| (t, junk)),
    ];
    (encoded, proptest::option::of(target()), proptest::option::of((retry_policy(), retention()))).prop_map(
        |((ty, payload), call_target, call_policy)| Effect::Command {
            ty,
            payload: payload.into(),
            call_target,
            call_policy,
            call_trace: None,
        },
    )
}

fn effect() -> impl Strategy<Value = Effect> {
    prop_oneof![
        6 => sdk_command(),
        2 => (0u128..3, 5u32..8, proptest::option::of("[0-9]")).prop_map(|(d, protocol_version, executed_version)| {
            Effect::Pinned(PinnedDeployment { deployment: DeploymentId(d), protocol_version, executed_version, revision: 1 })
        }),
        2 => (small(), result()).prop_map(|(completion_id, result)| Effect::ProposeRun { completion_id, result }),
        2 => (proptest::collection::vec(small(), 0..3), proptest::collection::vec(small(), 0..2), proptest::collection::vec("[a-c]", 0..2))
            .prop_map(|(completions, signals, named_signals)| Effect::Suspended(WaitSet { completions, signals, named_signals })),
        2 => Just(Effect::Ended),
        2 => (retry_policy(), retention()).prop_map(|(retry_policy, retention)| Effect::Settings { retry_policy, retention }),
        2 => (any::<u16>(), proptest::option::of(time())).prop_map(|(code, next_retry_delay_ms)| Effect::Failed {
            failure: FailureInfo { code, message: "boom".into(), ..Default::default() },
            next_retry_delay_ms,
            terminal: code % 7 == 0,
        }),
        1 => Just(Effect::Held { message: "paused".into() }),
    ]
}

fn timer() -> impl Strategy<Value = Timer> {
    let kind = prop_oneof![
        small().prop_map(|completion_id| TimerKind::Sleep { completion_id }),
        small().prop_map(|attempt| TimerKind::Retry { attempt }),
        Just(TimerKind::Scheduled),
        Just(TimerKind::Cleanup),
        Just(TimerKind::JournalCleanup),
    ];
    (time(), id(), kind).prop_map(|(fire_at, invocation, kind)| Timer { fire_at, invocation, kind })
}

fn outbox_message() -> impl Strategy<Value = OutboxMessage> {
    prop_oneof![
        invoke_request().prop_map(|r| OutboxMessage::Invoke(Box::new(r))),
        (id(), notification()).prop_map(|(target, notification)| OutboxMessage::Notify { target, notification }),
        (id(), id(), small(), any::<bool>()).prop_map(|(target, caller, completion_id, wait)| OutboxMessage::Attach {
            target,
            caller,
            completion_id,
            wait
        }),
        id().prop_map(|target| OutboxMessage::Kill { target }),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    let control = prop_oneof![
        Just(ControlRequest::Cancel),
        Just(ControlRequest::Kill),
        Just(ControlRequest::Purge),
        Just(ControlRequest::PurgeJournal),
        id().prop_map(|new_id| ControlRequest::RestartAsNew { new_id }),
        Just(ControlRequest::Pause),
        Just(ControlRequest::Resume),
        (0u128..3).prop_map(|d| ControlRequest::ResumeOn { deployment: DeploymentId(d) }),
    ];
    prop_oneof![
        3 => invoke_request().prop_map(|r| Command::Invoke(Box::new(r))),
        6 => (id(), 0u32..4, proptest::collection::vec(effect(), 0..6))
            .prop_map(|(id, attempt, effects)| Command::Effects(Box::new(EffectBatch { id, attempt, effects }))),
        2 => timer().prop_map(Command::TimerFired),
        2 => (id(), control).prop_map(|(id, request)| Command::Control { id, request }),
        1 => (id(), notification()).prop_map(|(target, notification)| Command::Notify { target, notification }),
        1 => (0u32..3, 0u64..6, outbox_message()).prop_map(|(source, seq, message)| Command::Shuffle { source, seq, message }),
        1 => (0u64..8).prop_map(|upto| Command::OutboxDelivered { upto }),
        1 => (0u128..3).prop_map(|d| Command::DeploymentRemoved { deployment: DeploymentId(d) }),
        1 => (0u128..3).prop_map(|d| Command::DeploymentResumed { deployment: DeploymentId(d) }),
    ]
}

/// Batches of commands, each with the clock step before it.
fn scenario() -> impl Strategy<Value = Vec<(u64, Vec<Command>)>> {
    proptest::collection::vec((0u64..3_000, proptest::collection::vec(command(), 1..8)), 1..20)
}

/// Applies one batch as the partition driver does; a panic or error fails the case.
fn apply_batch(
    storage: &Storage,
    partition: &PartitionInfo,
    now: u64,
    commands: Vec<Command>,
) -> Result<Vec<Action>, String> {
    let mut meta = storage.partition_meta(partition.id).map_err(|e| e.to_string())?;
    meta.applied_lsn += 1;
    let mut txn = Txn::new(storage, meta);
    let mut actions = Vec::new();
    for command in commands {
        let shown = format!("{command:?}");
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply(&mut txn, now, partition, command, &mut actions)
        }));
        match applied {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("{shown}: {e}")),
            Err(p) => return Err(format!("{shown}: panicked: {}", crate::panic_message(p))),
        }
    }
    let (writes, meta) = txn.into_writes().map_err(|e| e.to_string())?;
    storage.write_partition_state(partition.id, &writes, &meta).map_err(|e| e.to_string())?;
    Ok(actions)
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: crate::fuzz_cases(300), failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_commands_apply_and_their_log_replays_to_identical_state(batches in scenario()) {
        let (dir_live, dir_replay) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let live = Database::open(dir_live.path(), &Default::default(), 1).unwrap();
        let replayed = Database::open(dir_replay.path(), &Default::default(), 1).unwrap();
        let partition = PartitionInfo { id: 0, keys: 0..=u64::MAX };
        let mut now = 1_000u64;
        let mut log = Vec::new();
        for (step, commands) in batches {
            now += step;
            log.push(codec::encode(&LogBatchRef { now, commands: &commands }));
            if let Err(e) = apply_batch(&live.storage(), &partition, now, commands) {
                prop_assert!(false, "applying failed: {e}");
            }
        }
        for entry in &log {
            let batch: LogBatch = codec::decode(entry, "log").unwrap();
            if let Err(e) = apply_batch(&replayed.storage(), &partition, batch.now, batch.commands) {
                prop_assert!(false, "replaying failed: {e}");
            }
        }
        let (a, b) = (live.storage().dump_partition(0), replayed.storage().dump_partition(0));
        prop_assert!(a == b, "replayed state differs from live state: {} vs {} records", a.len(), b.len());
        // The drain counters and the pinned index say what the invocation records say.
        let (counted, indexed) = recount(&live.storage());
        let meta = live.storage().partition_meta(0).unwrap();
        prop_assert_eq!(&meta.deployments, &counted.deployments);
        prop_assert_eq!(&meta.handlers, &counted.handlers);
        for (d, counts) in &counted.deployments {
            prop_assert_eq!(indexed.get(d).map_or(0, Vec::len) as u64, counts.total());
        }
    }
}

/// Counts from scratch what the partition's counters should hold: every invocation record,
/// and the pinned index as the storage lists it.
fn recount(storage: &Storage) -> (PartitionMeta, std::collections::BTreeMap<DeploymentId, Vec<InvocationId>>) {
    let mut meta = PartitionMeta::default();
    let mut indexed = std::collections::BTreeMap::new();
    let stored = storage.dump_partition(0).into_iter().filter(|(k, _)| k[0] == crate::storage::keys::tag::INVOCATION);
    for (key, _) in stored {
        let id = crate::storage::keys::parse_invocation(&key).unwrap();
        let status = storage.invocation(&id).unwrap();
        meta.recount(&Census::default(), &Census::of(status.as_ref()));
    }
    for d in 0..3 {
        let listed = storage.pinned_to(&DeploymentId(d), usize::MAX).unwrap();
        if !listed.is_empty() {
            indexed.insert(DeploymentId(d), listed);
        }
    }
    (meta, indexed)
}

/// The strategy makes invocations run, suspend and complete, not just bounce off.
#[test]
fn scenarios_reach_deep_states() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = scenario();
    let (mut completed, mut suspended, mut journaled) = (0, 0, 0);
    for _ in 0..40 {
        let batches = strategy.new_tree(&mut runner).unwrap().current();
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), &Default::default(), 1).unwrap();
        let partition = PartitionInfo { id: 0, keys: 0..=u64::MAX };
        let mut now = 1_000;
        for (step, commands) in batches {
            now += step;
            apply_batch(&db.storage(), &partition, now, commands).unwrap();
        }
        for id in ids() {
            if let Some(s) = db.storage().invocation(&id).unwrap() {
                completed += s.is_completed() as u32;
                suspended += matches!(s.phase, Phase::Suspended { .. }) as u32;
                journaled += (s.journal_len > 2) as u32;
            }
        }
    }
    assert!(
        completed > 5 && suspended > 2 && journaled > 5,
        "completed {completed}, suspended {suspended}, journaled {journaled}"
    );
}
