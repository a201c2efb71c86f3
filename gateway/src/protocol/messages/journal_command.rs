//! [`JournalCommand`]: the typed view of any command, and the completions it awaits.
//!
//! [`JournalCommand::completions`] lists the completion ids a command will be notified on,
//! with the notification type each will arrive as.

use bytes::{Buf, BytesMut};

use super::command_messages::*;
use super::{MessageError, ty};
use crate::protocol::frame::encode_message;

/// A completion a command waits for: the id the SDK chose and the notification type
/// that will carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PendingCompletion {
    /// The completion id, echoed in `NotificationMessage::id`.
    pub completion_id: u32,
    /// Type code of the notification that completes it, e.g. 0x800C for Sleep.
    pub notification_ty: u16,
}

macro_rules! commands {
    ($( $(#[$doc:meta])* $variant:ident($message:ident) = $code:path, name: $name:ident; )*) => {
        /// A journal command as the SDK sent it, decoded: one variant per command type (spec §6).
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum JournalCommand {
            $( $(#[$doc])* $variant($message), )*
        }

        impl JournalCommand {
            /// Decodes the payload of a frame of type `ty`, which must be a command.
            pub fn decode(ty: u16, payload: impl Buf) -> Result<Self, MessageError> {
                let decoded = match ty {
                    $( $code => <$message as prost::Message>::decode(payload).map(Self::$variant), )*
                    _ => return Err(MessageError::not_a_command(ty)),
                };
                decoded.map_err(MessageError::malformed(ty))
            }

            /// The command's type code.
            pub fn ty(&self) -> u16 {
                match self {
                    $( Self::$variant(_) => $code, )*
                }
            }

            /// The entry name (field 12), possibly empty.
            pub fn entry_name(&self) -> &str {
                match self {
                    $( Self::$variant(message) => &message.$name, )*
                }
            }

            /// Appends the command as a frame to `out`. Journal replay sends the
            /// stored bytes instead; this is for tests and server-created entries.
            pub fn encode(&self, out: &mut BytesMut) {
                match self {
                    $( Self::$variant(message) => encode_message($code, message, out), )*
                }
            }
        }
    };
}

commands! {
    /// 0x0400.
    Input(InputCommandMessage) = ty::INPUT_COMMAND, name: name;
    /// 0x0401.
    Output(OutputCommandMessage) = ty::OUTPUT_COMMAND, name: name;
    /// 0x0402.
    GetLazyState(GetLazyStateCommandMessage) = ty::GET_LAZY_STATE_COMMAND, name: name;
    /// 0x0403.
    SetState(SetStateCommandMessage) = ty::SET_STATE_COMMAND, name: name;
    /// 0x0404.
    ClearState(ClearStateCommandMessage) = ty::CLEAR_STATE_COMMAND, name: name;
    /// 0x0405.
    ClearAllState(ClearAllStateCommandMessage) = ty::CLEAR_ALL_STATE_COMMAND, name: name;
    /// 0x0406.
    GetLazyStateKeys(GetLazyStateKeysCommandMessage) = ty::GET_LAZY_STATE_KEYS_COMMAND, name: name;
    /// 0x0407.
    GetEagerState(GetEagerStateCommandMessage) = ty::GET_EAGER_STATE_COMMAND, name: name;
    /// 0x0408.
    GetEagerStateKeys(GetEagerStateKeysCommandMessage) = ty::GET_EAGER_STATE_KEYS_COMMAND, name: name;
    /// 0x0409.
    GetPromise(GetPromiseCommandMessage) = ty::GET_PROMISE_COMMAND, name: name;
    /// 0x040A.
    PeekPromise(PeekPromiseCommandMessage) = ty::PEEK_PROMISE_COMMAND, name: name;
    /// 0x040B.
    CompletePromise(CompletePromiseCommandMessage) = ty::COMPLETE_PROMISE_COMMAND, name: name;
    /// 0x040C.
    Sleep(SleepCommandMessage) = ty::SLEEP_COMMAND, name: name;
    /// 0x040D.
    Call(CallCommandMessage) = ty::CALL_COMMAND, name: name;
    /// 0x040E.
    OneWayCall(OneWayCallCommandMessage) = ty::ONE_WAY_CALL_COMMAND, name: name;
    /// 0x0410.
    SendSignal(SendSignalCommandMessage) = ty::SEND_SIGNAL_COMMAND, name: entry_name;
    /// 0x0411.
    Run(RunCommandMessage) = ty::RUN_COMMAND, name: name;
    /// 0x0412.
    AttachInvocation(AttachInvocationCommandMessage) = ty::ATTACH_INVOCATION_COMMAND, name: name;
    /// 0x0413.
    GetInvocationOutput(GetInvocationOutputCommandMessage) = ty::GET_INVOCATION_OUTPUT_COMMAND, name: name;
    /// 0x0414.
    CompleteAwakeable(CompleteAwakeableCommandMessage) = ty::COMPLETE_AWAKEABLE_COMMAND, name: name;
}

impl JournalCommand {
    /// The completions this command will receive notifications for, in the order the
    /// server appends them (Call: invocation id first, then the result).
    pub fn completions(&self) -> Vec<PendingCompletion> {
        let one = |completion_id, notification_ty| vec![PendingCompletion { completion_id, notification_ty }];
        match self {
            Self::GetLazyState(c) => one(c.result_completion_id, ty::GET_LAZY_STATE_COMPLETION_NOTIFICATION),
            Self::GetLazyStateKeys(c) => one(c.result_completion_id, ty::GET_LAZY_STATE_KEYS_COMPLETION_NOTIFICATION),
            Self::GetPromise(c) => one(c.result_completion_id, ty::GET_PROMISE_COMPLETION_NOTIFICATION),
            Self::PeekPromise(c) => one(c.result_completion_id, ty::PEEK_PROMISE_COMPLETION_NOTIFICATION),
            Self::CompletePromise(c) => one(c.result_completion_id, ty::COMPLETE_PROMISE_COMPLETION_NOTIFICATION),
            Self::Sleep(c) => one(c.result_completion_id, ty::SLEEP_COMPLETION_NOTIFICATION),
            Self::Call(c) => vec![
                PendingCompletion {
                    completion_id: c.invocation_id_notification_idx,
                    notification_ty: ty::CALL_INVOCATION_ID_COMPLETION_NOTIFICATION,
                },
                PendingCompletion {
                    completion_id: c.result_completion_id,
                    notification_ty: ty::CALL_COMPLETION_NOTIFICATION,
                },
            ],
            Self::OneWayCall(c) => {
                one(c.invocation_id_notification_idx, ty::CALL_INVOCATION_ID_COMPLETION_NOTIFICATION)
            }
            Self::Run(c) => one(c.result_completion_id, ty::RUN_COMPLETION_NOTIFICATION),
            Self::AttachInvocation(c) => one(c.result_completion_id, ty::ATTACH_INVOCATION_COMPLETION_NOTIFICATION),
            Self::GetInvocationOutput(c) => {
                one(c.result_completion_id, ty::GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION)
            }
            Self::Input(_)
            | Self::Output(_)
            | Self::SetState(_)
            | Self::ClearState(_)
            | Self::ClearAllState(_)
            | Self::GetEagerState(_)
            | Self::GetEagerStateKeys(_)
            | Self::SendSignal(_)
            | Self::CompleteAwakeable(_) => Vec::new(),
        }
    }
}

/// The completion ids the command of type `ty` with `payload` will receive
/// notifications for (e.g. Call → `[invocation_id_notification_idx,
/// result_completion_id]`, Sleep → `[result_completion_id]`, SetState → `[]`).
///
/// Types that are not commands have none. Fails only if the payload is malformed.
pub fn completion_ids_of_command(ty: u16, payload: &[u8]) -> Result<Vec<u32>, prost::DecodeError> {
    match JournalCommand::decode(ty, payload) {
        Ok(command) => Ok(command.completions().iter().map(|c| c.completion_id).collect()),
        Err(MessageError::Malformed { source, .. }) => Err(source),
        Err(_) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame;
    use crate::protocol::messages::*;
    use bytes::Bytes;
    use prost::Message as _;

    #[test]
    fn completion_ids_follow_the_command_type() {
        let call = CallCommandMessage {
            service_name: "Greeter".into(),
            handler_name: "greet".into(),
            invocation_id_notification_idx: 2,
            result_completion_id: 3,
            ..Default::default()
        };
        let ids = completion_ids_of_command(ty::CALL_COMMAND, &call.encode_to_vec());
        assert_eq!(ids, Ok(vec![2, 3]));

        let send = OneWayCallCommandMessage { invocation_id_notification_idx: 1, ..Default::default() };
        assert_eq!(completion_ids_of_command(ty::ONE_WAY_CALL_COMMAND, &send.encode_to_vec()), Ok(vec![1]));
        assert_eq!(completion_ids_of_command(ty::SLEEP_COMMAND, &[0x58, 0x01]), Ok(vec![1]));
        assert_eq!(completion_ids_of_command(ty::RUN_COMMAND, &[0x58, 0x02]), Ok(vec![2]));
        assert_eq!(completion_ids_of_command(ty::GET_LAZY_STATE_COMMAND, &[0x58, 0x04]), Ok(vec![4]));
        assert_eq!(completion_ids_of_command(ty::SET_STATE_COMMAND, &[]), Ok(vec![]));
        assert_eq!(completion_ids_of_command(ty::END, &[]), Ok(vec![]));
        assert!(completion_ids_of_command(ty::SLEEP_COMMAND, &[0x58]).is_err());
    }

    #[test]
    fn call_completions_name_their_notification_types() {
        let call = JournalCommand::Call(CallCommandMessage {
            invocation_id_notification_idx: 2,
            result_completion_id: 3,
            ..Default::default()
        });
        assert_eq!(
            call.completions(),
            vec![
                PendingCompletion { completion_id: 2, notification_ty: 0x800E },
                PendingCompletion { completion_id: 3, notification_ty: 0x800D },
            ]
        );
    }

    #[test]
    fn every_command_round_trips_through_a_frame() {
        let commands = vec![
            JournalCommand::Input(InputCommandMessage {
                headers: vec![Header { key: "content-type".into(), value: "application/json".into() }],
                value: Some(Value::new("\"Alice\"")),
                name: String::new(),
            }),
            JournalCommand::Output(OutputCommandMessage {
                result: Some(OutputResult::Failure(Failure::new(418, "boom"))),
                name: String::new(),
            }),
            JournalCommand::GetEagerStateKeys(GetEagerStateKeysCommandMessage {
                value: Some(StateKeys { keys: vec![Bytes::from_static(b"count")] }),
                name: String::new(),
            }),
            JournalCommand::CompletePromise(CompletePromiseCommandMessage {
                key: "p".into(),
                completion: Some(CompletionResult::Value(Value::new("1"))),
                result_completion_id: 5,
                name: String::new(),
            }),
            JournalCommand::OneWayCall(OneWayCallCommandMessage {
                service_name: "Counter".into(),
                handler_name: "add".into(),
                parameter: Bytes::from_static(b"1"),
                invoke_time: 1_795_349_433_664,
                key: "k1".into(),
                idempotency_key: Some("ik1".into()),
                invocation_id_notification_idx: 1,
                ..Default::default()
            }),
            JournalCommand::SendSignal(SendSignalCommandMessage {
                target_invocation_id: "inv_1abc".into(),
                signal_id: Some(SignalId::Idx(1)),
                result: Some(SignalResult::Void(Void {})),
                entry_name: "cancel".into(),
            }),
            JournalCommand::AttachInvocation(AttachInvocationCommandMessage {
                target: Some(AttachTarget::IdempotentRequestTarget(IdempotentRequestTarget {
                    service_name: "Greeter".into(),
                    service_key: None,
                    handler_name: "greet".into(),
                    idempotency_key: "ik".into(),
                })),
                result_completion_id: 7,
                name: String::new(),
            }),
            JournalCommand::GetInvocationOutput(GetInvocationOutputCommandMessage {
                target: Some(AttachTarget::WorkflowTarget(WorkflowTarget {
                    workflow_name: "Wf".into(),
                    workflow_key: "k".into(),
                })),
                result_completion_id: 8,
                name: String::new(),
            }),
            JournalCommand::CompleteAwakeable(CompleteAwakeableCommandMessage {
                awakeable_id: "sign_1abc".into(),
                result: Some(CompletionResult::Failure(Failure::new(500, "no"))),
                name: "wake".into(),
            }),
        ];
        for command in commands {
            let mut buf = BytesMut::new();
            command.encode(&mut buf);
            let frame = frame::decode(&mut buf, 1024).expect("valid").expect("whole");
            assert_eq!(frame.ty, command.ty());
            assert_eq!(JournalCommand::decode(frame.ty, frame.payload), Ok(command));
        }
    }

    #[test]
    fn entry_names_come_from_field_12() {
        let run = JournalCommand::decode(ty::RUN_COMMAND, &[0x58, 0x02, 0x62, 0x04, b's', b'i', b'd', b'e'][..]);
        assert_eq!(run.map(|c| c.entry_name().to_owned()), Ok("side".to_owned()));
        let signal = JournalCommand::decode(ty::SEND_SIGNAL_COMMAND, &[0x62, 0x01, b'x'][..]);
        assert_eq!(signal.map(|c| c.entry_name().to_owned()), Ok("x".to_owned()));
        assert_eq!(
            JournalCommand::decode(ty::END, &[][..]),
            Err(MessageError::NotACommand { ty: ty::END, name: "End" })
        );
    }
}
