//! The wire test vectors of spec §15 (captured from the TypeScript SDK, protocol V6).
//!
//! Each vector is decoded frame by frame into typed messages, and the typed messages
//! are encoded back to the same bytes.

use bytes::{Bytes, BytesMut};
use prost::Message as _;

use super::frame::{self, DEFAULT_MAX_MESSAGE_SIZE, Frame};
use super::messages::*;

fn unhex(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(text, 16).expect("hex digit")
        })
        .collect()
}

fn frames(hex: &str) -> Vec<Frame> {
    let mut buf = BytesMut::from(&unhex(hex)[..]);
    let mut frames = Vec::new();
    while let Some(frame) = frame::decode(&mut buf, DEFAULT_MAX_MESSAGE_SIZE).expect("valid frame") {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "trailing bytes: {buf:?}");
    frames
}

fn typed<M: prost::Message + Default>(frame: &Frame, ty: u16) -> M {
    assert_eq!(frame.ty, ty, "expected {}, got {}", message_name(ty), message_name(frame.ty));
    assert_eq!(frame.flags, 0);
    frame.decode_message().expect("payload decodes")
}

const VECTOR_1_REQUEST: &str = "000000000000002c0a180102030405060708090a0b0c0d0e0f1011121314151617181209696e765f31746573741801280148b960040000000000000b72090a0722576f726c6422";
const VECTOR_1_RESPONSE: &str = "040100000000001272100a0e2248656c6c6f20576f726c6421220003000000000000";
const VECTOR_2: &str = "040c00000000000908af9fb898a034580100010000000000060a0101120101";
const VECTOR_3: &str = "04070000000000090a05636f756e746a00040300000000000c0a05636f756e741a030a013504110000000000085802620473696465000500000000000608027202343200010000000000060a0102120101";
const VECTOR_5: &str = "040100000000000b7a0908a2031204626f6f6d0003000000000000";

#[test]
fn vector_1_start_and_input() {
    let frames = frames(VECTOR_1_REQUEST);
    assert_eq!(frames.len(), 2);
    let start: StartMessage = typed(&frames[0], ty::START);
    let expected_start = StartMessage {
        id: Bytes::from((1..=24).collect::<Vec<u8>>()),
        debug_id: "inv_1test".into(),
        known_entries: 1,
        partial_state: true,
        random_seed: 12345,
        ..Default::default()
    };
    assert_eq!(start, expected_start);
    let input: InputCommandMessage = typed(&frames[1], ty::INPUT_COMMAND);
    let expected_input = InputCommandMessage { value: Some(Value::new("\"World\"")), ..Default::default() };
    assert_eq!(input, expected_input);

    let mut out = BytesMut::new();
    frame::encode_message(ty::START, &expected_start, &mut out);
    JournalCommand::Input(expected_input).encode(&mut out);
    assert_eq!(out.to_vec(), unhex(VECTOR_1_REQUEST));
}

#[test]
fn vector_1_output_and_end() {
    let frames = frames(VECTOR_1_RESPONSE);
    let output =
        OutputCommandMessage { result: Some(OutputResult::Value(Value::new("\"Hello World!\""))), name: String::new() };
    assert_eq!(typed::<OutputCommandMessage>(&frames[0], ty::OUTPUT_COMMAND), output);
    assert_eq!(typed::<EndMessage>(&frames[1], ty::END), EndMessage {});
    assert!(frames[1].payload.is_empty());

    let mut out = BytesMut::new();
    frame::encode_message(ty::OUTPUT_COMMAND, &output, &mut out);
    frame::encode_message(ty::END, &EndMessage {}, &mut out);
    assert_eq!(out.to_vec(), unhex(VECTOR_1_RESPONSE));
}

#[test]
fn vector_2_sleep_then_suspension() {
    let frames = frames(VECTOR_2);
    let sleep: SleepCommandMessage = typed(&frames[0], ty::SLEEP_COMMAND);
    assert_eq!(sleep.result_completion_id, 1);
    assert!(sleep.wake_up_time > 1_700_000_000_000, "absolute ms: {}", sleep.wake_up_time);
    assert!(sleep.name.is_empty());
    let suspension: SuspensionMessage = typed(&frames[1], ty::SUSPENSION);
    let expected =
        SuspensionMessage { waiting_completions: vec![1], waiting_signals: vec![1], waiting_named_signals: vec![] };
    assert_eq!(suspension, expected);
    assert_eq!(completion_ids_of_command(frames[0].ty, &frames[0].payload), Ok(vec![1]));

    let mut out = BytesMut::new();
    frame::encode_message(ty::SLEEP_COMMAND, &sleep, &mut out);
    frame::encode_message(ty::SUSPENSION, &expected, &mut out);
    assert_eq!(out.to_vec(), unhex(VECTOR_2));

    let classified: Vec<_> = frames.iter().map(DeploymentMessage::from_frame).collect();
    assert!(matches!(classified[0], Ok(DeploymentMessage::Command { command: JournalCommand::Sleep(_), .. })));
    assert_eq!(classified[1], Ok(DeploymentMessage::Suspension(expected)));
}

#[test]
fn vector_3_state_run_and_proposal() {
    let frames = frames(VECTOR_3);
    assert_eq!(frames.len(), 5);
    let get = GetEagerStateCommandMessage {
        key: Bytes::from_static(b"count"),
        result: Some(EagerStateResult::Void(Void {})),
        name: String::new(),
    };
    let set =
        SetStateCommandMessage { key: Bytes::from_static(b"count"), value: Some(Value::new("5")), name: String::new() };
    let run = RunCommandMessage { result_completion_id: 2, name: "side".into() };
    let proposal = ProposeRunCompletionMessage {
        result_completion_id: 2,
        result: Some(ProposedRunResult::Value(Bytes::from_static(b"42"))),
    };
    let suspension =
        SuspensionMessage { waiting_completions: vec![2], waiting_signals: vec![1], waiting_named_signals: vec![] };
    assert_eq!(typed::<GetEagerStateCommandMessage>(&frames[0], ty::GET_EAGER_STATE_COMMAND), get);
    assert_eq!(typed::<SetStateCommandMessage>(&frames[1], ty::SET_STATE_COMMAND), set);
    assert_eq!(typed::<RunCommandMessage>(&frames[2], ty::RUN_COMMAND), run);
    assert_eq!(typed::<ProposeRunCompletionMessage>(&frames[3], ty::PROPOSE_RUN_COMPLETION), proposal);
    assert_eq!(typed::<SuspensionMessage>(&frames[4], ty::SUSPENSION), suspension);

    let mut out = BytesMut::new();
    JournalCommand::GetEagerState(get).encode(&mut out);
    JournalCommand::SetState(set).encode(&mut out);
    JournalCommand::Run(run).encode(&mut out);
    frame::encode_message(ty::PROPOSE_RUN_COMPLETION, &proposal, &mut out);
    frame::encode_message(ty::SUSPENSION, &suspension, &mut out);
    assert_eq!(out.to_vec(), unhex(VECTOR_3));

    // The proposal becomes the RunCompletion notification replayed next time: the raw
    // value bytes are wrapped in a Value there.
    let Ok(DeploymentMessage::ProposeRunCompletion(proposal)) = DeploymentMessage::from_frame(&frames[3]) else {
        panic!("frame 3 is a run proposal");
    };
    let notification = proposal.into_notification();
    assert_eq!(notification.encode_to_vec(), unhex("08022a040a023432"));
    let mut replayed = BytesMut::new();
    frame::encode_message(ty::RUN_COMPLETION_NOTIFICATION, &notification, &mut replayed);
    assert_eq!(replayed.to_vec(), unhex("8011000000000008 08022a040a023432"));
}

#[test]
fn vector_5_terminal_failure() {
    let frames = frames(VECTOR_5);
    let output: OutputCommandMessage = typed(&frames[0], ty::OUTPUT_COMMAND);
    let expected =
        OutputCommandMessage { result: Some(OutputResult::Failure(Failure::new(418, "boom"))), name: String::new() };
    assert_eq!(output, expected);
    assert_eq!(frames[1].ty, ty::END);

    let mut out = BytesMut::new();
    JournalCommand::Output(expected).encode(&mut out);
    frame::encode_message(ty::END, &EndMessage {}, &mut out);
    assert_eq!(out.to_vec(), unhex(VECTOR_5));
}

#[test]
fn vector_7_awakeable_suspension_lists_signal_17_and_cancel() {
    let suspension = SuspensionMessage::decode(&unhex("12021101")[..]).expect("decodes");
    assert_eq!(suspension.waiting_signals, vec![17, 1]);
    assert!(suspension.waiting_completions.is_empty());
    assert_eq!(suspension.encode_to_vec(), unhex("12021101"));
}

#[test]
fn vectors_survive_any_chunking() {
    let bytes = unhex(VECTOR_3);
    let expected = frames(VECTOR_3);
    for chunk in 1..=bytes.len() {
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for piece in bytes.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(frame) = frame::decode(&mut buf, DEFAULT_MAX_MESSAGE_SIZE).expect("valid") {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, expected, "chunk size {chunk}");
    }
}
