//! Property-based fuzzing of everything here that reads bytes from a deployment: the frame
//! decoder, every message decoder and the discovery manifest parser. Whatever comes in, they
//! answer a value or an error, never a panic; what the encoders write decodes back the same,
//! in one piece or split anywhere.

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::frame::{self, Frame};
use super::manifest::parse_manifest;
use super::messages::{self, DeploymentMessage, JournalCommand, NotificationMessage, completion_ids_of_command, ty};

/// Every type code the protocol names, plus a few it does not.
const TYPES: &[u16] = &[
    ty::START,
    ty::SUSPENSION,
    ty::ERROR,
    ty::END,
    ty::PROPOSE_RUN_COMPLETION,
    0x0006,
    0x0007,
    ty::INPUT_COMMAND,
    ty::OUTPUT_COMMAND,
    ty::GET_LAZY_STATE_COMMAND,
    ty::SET_STATE_COMMAND,
    ty::CLEAR_STATE_COMMAND,
    ty::CLEAR_ALL_STATE_COMMAND,
    ty::GET_LAZY_STATE_KEYS_COMMAND,
    ty::GET_EAGER_STATE_COMMAND,
    ty::GET_EAGER_STATE_KEYS_COMMAND,
    ty::GET_PROMISE_COMMAND,
    ty::PEEK_PROMISE_COMMAND,
    ty::COMPLETE_PROMISE_COMMAND,
    ty::SLEEP_COMMAND,
    ty::CALL_COMMAND,
    ty::ONE_WAY_CALL_COMMAND,
    0x040F,
    ty::SEND_SIGNAL_COMMAND,
    ty::RUN_COMMAND,
    ty::ATTACH_INVOCATION_COMMAND,
    ty::GET_INVOCATION_OUTPUT_COMMAND,
    ty::COMPLETE_AWAKEABLE_COMMAND,
    ty::GET_LAZY_STATE_COMPLETION_NOTIFICATION,
    ty::GET_LAZY_STATE_KEYS_COMPLETION_NOTIFICATION,
    ty::GET_PROMISE_COMPLETION_NOTIFICATION,
    ty::PEEK_PROMISE_COMPLETION_NOTIFICATION,
    ty::COMPLETE_PROMISE_COMPLETION_NOTIFICATION,
    ty::SLEEP_COMPLETION_NOTIFICATION,
    ty::CALL_COMPLETION_NOTIFICATION,
    ty::CALL_INVOCATION_ID_COMPLETION_NOTIFICATION,
    ty::RUN_COMPLETION_NOTIFICATION,
    ty::ATTACH_INVOCATION_COMPLETION_NOTIFICATION,
    ty::GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION,
    ty::SIGNAL_NOTIFICATION,
    0xFC00,
    0xFFFF,
    0x7FFF,
];

fn any_type() -> impl Strategy<Value = u16> {
    prop_oneof![4 => proptest::sample::select(TYPES), 1 => any::<u16>()]
}

/// Payloads that are sometimes protobuf-shaped (a field tag, a length, bytes), often not.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let field = (1u8..20, 0u8..6, proptest::collection::vec(any::<u8>(), 0..24)).prop_map(|(n, wire, body)| {
        let mut out = vec![(n << 3) | wire];
        if wire == 2 {
            out.push(body.len() as u8);
        }
        out.extend(body);
        out
    });
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec(field, 0..8).prop_map(|fs| fs.concat()),
    ]
}

/// Everything a received frame goes through in the invoker.
fn read_frame(frame: &Frame) {
    let _ = DeploymentMessage::from_frame(frame);
    let _ = frame.decode_message::<NotificationMessage>();
    if messages::is_command(frame.ty) {
        if let Ok(command) = JournalCommand::decode(frame.ty, frame.payload.clone()) {
            let _ = command.completions();
            let _ = command.entry_name();
            let mut out = BytesMut::new();
            command.encode(&mut out);
        }
        let _ = completion_ids_of_command(frame.ty, &frame.payload);
    }
    let _ = messages::message_name(frame.ty);
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: crate::fuzz_cases(2000), failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_decode_to_frames_or_errors(bytes in proptest::collection::vec(any::<u8>(), 0..600), max in 0u32..512) {
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(f)) = frame::decode(&mut buf, max) {
            read_frame(&f);
        }
    }

    #[test]
    fn every_message_type_reads_arbitrary_payloads(ty in any_type(), flags in any::<u16>(), payload in payload()) {
        read_frame(&Frame { ty, flags, payload: payload.into() });
    }

    #[test]
    fn frames_split_anywhere_decode_as_written(
        frames in proptest::collection::vec((any_type(), any::<u16>(), payload()), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut wire = BytesMut::new();
        for (ty, flags, payload) in &frames {
            Frame { ty: *ty, flags: *flags, payload: payload.clone().into() }.encode(&mut wire);
        }
        let wire = wire.freeze();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort_unstable();
        let (mut buf, mut from, mut got) = (BytesMut::new(), 0, Vec::new());
        for to in points {
            buf.extend_from_slice(&wire[from..to]);
            from = to;
            while let Some(f) = frame::decode(&mut buf, u32::MAX).expect("frames we wrote") {
                got.push((f.ty, f.flags, f.payload.to_vec()));
            }
        }
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn manifests_of_arbitrary_bytes_are_refused_not_panicked_on(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        content_type in proptest::option::of("application/vnd\\.restate\\.endpointmanifest\\.v[0-5]\\+json|[a-z/]{0,12}"),
    ) {
        let _ = parse_manifest(content_type.as_deref(), &body);
    }

    #[test]
    fn manifests_of_arbitrary_json_are_parsed_or_refused_not_panicked_on(json in manifest_json()) {
        let body = serde_json::to_vec(&json).expect("JSON values serialize");
        for v in 1..=4 {
            if let Ok(m) = parse_manifest(Some(&format!("application/vnd.restate.endpointmanifest.v{v}+json")), &body) {
                // What is accepted stays within the limits every later computation relies on.
                for s in &m.services {
                    let all = std::iter::once(&s.settings).chain(s.handlers.iter().map(|h| &h.settings));
                    for settings in all {
                        prop_assert!(settings.idempotency_retention.is_none_or(|ms| ms <= crate::durations::MAX_MS));
                        prop_assert!(settings.retry_policy_exponentiation_factor.is_none_or(|f| f >= 1.0));
                    }
                }
            }
        }
    }
}

#[test]
fn the_manifest_strategy_produces_valid_manifests_too() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = manifest_json();
    let parsed = (0..500)
        .filter(|_| {
            let json = strategy.new_tree(&mut runner).expect("a value").current();
            let body = serde_json::to_vec(&json).expect("JSON");
            parse_manifest(Some("application/vnd.restate.endpointmanifest.v4+json"), &body).is_ok()
        })
        .count();
    assert!(parsed > 20, "only {parsed} of 500 generated manifests parsed: the fuzzing would not reach the checks");
}

/// JSON shaped like a manifest: the right keys with values of any kind and size.
fn manifest_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
        "[a-zA-Z_.-]{0,12}".prop_map(Value::from),
        proptest::sample::select(vec![
            "SERVICE",
            "VIRTUAL_OBJECT",
            "WORKFLOW",
            "EXCLUSIVE",
            "SHARED",
            "BIDI_STREAM",
            "REQUEST_RESPONSE",
            "PAUSE",
            "KILL"
        ])
        .prop_map(Value::from),
    ];
    let duration = prop_oneof![
        2 => Just(Value::Null),
        2 => (0u64..100_000).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => scalar.clone(),
    ];
    let handler = (
        "[a-z][a-zA-Z_]{0,8}",
        proptest::option::of(proptest::sample::select(vec!["EXCLUSIVE", "SHARED", "WORKFLOW", "nope"])),
        scalar.clone(),
        duration.clone(),
        prop_oneof![Just(Value::Null), (0.0f64..10.0).prop_map(Value::from), scalar.clone()],
    )
        .prop_map(|(name, ty, input, retention, factor)| {
            json!({ "name": name, "ty": ty, "input": input, "idempotencyRetention": retention,
                    "retryPolicyExponentiationFactor": factor, "workflowCompletionRetention": retention })
        });
    let service = (
        "[A-Z][a-zA-Z_.-]{0,8}",
        proptest::sample::select(vec!["SERVICE", "VIRTUAL_OBJECT", "WORKFLOW", "OTHER"]),
        proptest::collection::vec(handler, 0..4),
        duration.clone(),
        duration,
    )
        .prop_map(|(name, ty, handlers, timeout, interval)| {
            json!({ "name": name, "ty": ty, "handlers": handlers, "inactivityTimeout": timeout,
                    "retryPolicyInitialInterval": interval, "retryPolicyMaxAttempts": timeout })
        });
    let version = prop_oneof![3 => (5u64..=7).prop_map(Value::from), 1 => scalar];
    (
        proptest::collection::vec(service, 0..4),
        proptest::option::of(proptest::sample::select(vec!["BIDI_STREAM", "REQUEST_RESPONSE", "x"])),
        version.clone(),
        version,
    )
        .prop_map(|(services, mode, min, max)| {
            json!({ "protocolMode": mode, "minProtocolVersion": min, "maxProtocolVersion": max, "services": services })
        })
}
