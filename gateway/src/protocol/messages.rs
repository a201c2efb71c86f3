//! Service protocol messages (V5/V6): type codes, classification and payloads (spec §5–§7).
//!
//! Payload types are hand-written `prost` structs with the field numbers of Restate's
//! `protocol.proto` (package `dev.restate.service.protocol`); unknown fields are
//! skipped on decode. They live in submodules, all re-exported here:
//!
//! * `common`: nested messages shared by several messages (`Value`, `Failure`, …);
//! * `control`: Start, Suspension, Error, End, CommandAck, ProposeRunCompletion;
//! * `command_messages`: the command messages 0x0400..=0x0414, one struct each;
//! * `journal_command`: [`JournalCommand`], the typed view of any command the SDK journals,
//!   and the completions it awaits;
//! * `notification`: [`NotificationMessage`], one struct for every notification type,
//!   since all notifications share one field layout (the frame's type code says which).
//!
//! This file holds the type codes, their classification, and [`DeploymentMessage`],
//! the decoded form of whatever a deployment may send.

use bytes::Bytes;

use super::frame::Frame;

mod command_messages;
mod common;
mod control;
mod journal_command;
mod notification;

pub use command_messages::*;
pub use common::*;
pub use control::*;
pub use journal_command::*;
pub use notification::*;

/// Message type codes, the `u16` at the front of each frame header (spec §5).
pub mod ty {
    /// `StartMessage`, S→D, first frame of every attempt.
    pub const START: u16 = 0x0000;
    /// `SuspensionMessage`, D→S, terminal.
    pub const SUSPENSION: u16 = 0x0001;
    /// `ErrorMessage`, D→S, terminal.
    pub const ERROR: u16 = 0x0002;
    /// `EndMessage`, D→S, terminal.
    pub const END: u16 = 0x0003;
    /// `CommandAckMessage`: never send it to V5/V6 SDKs (spec §4).
    pub const COMMAND_ACK: u16 = 0x0004;
    /// `ProposeRunCompletionMessage`, D→S, not a journal entry.
    pub const PROPOSE_RUN_COMPLETION: u16 = 0x0005;
    /// `AwaitingOnMessage`, V7 only.
    pub const AWAITING_ON: u16 = 0x0006;
    /// `ProposeRunCompletionAckMessage`, V7 only.
    pub const PROPOSE_RUN_COMPLETION_ACK: u16 = 0x0007;

    /// `InputCommandMessage`, always journal entry 0.
    pub const INPUT_COMMAND: u16 = 0x0400;
    /// `OutputCommandMessage`.
    pub const OUTPUT_COMMAND: u16 = 0x0401;
    /// `GetLazyStateCommandMessage`.
    pub const GET_LAZY_STATE_COMMAND: u16 = 0x0402;
    /// `SetStateCommandMessage`.
    pub const SET_STATE_COMMAND: u16 = 0x0403;
    /// `ClearStateCommandMessage`.
    pub const CLEAR_STATE_COMMAND: u16 = 0x0404;
    /// `ClearAllStateCommandMessage`.
    pub const CLEAR_ALL_STATE_COMMAND: u16 = 0x0405;
    /// `GetLazyStateKeysCommandMessage`.
    pub const GET_LAZY_STATE_KEYS_COMMAND: u16 = 0x0406;
    /// `GetEagerStateCommandMessage`.
    pub const GET_EAGER_STATE_COMMAND: u16 = 0x0407;
    /// `GetEagerStateKeysCommandMessage`.
    pub const GET_EAGER_STATE_KEYS_COMMAND: u16 = 0x0408;
    /// `GetPromiseCommandMessage`.
    pub const GET_PROMISE_COMMAND: u16 = 0x0409;
    /// `PeekPromiseCommandMessage`.
    pub const PEEK_PROMISE_COMMAND: u16 = 0x040A;
    /// `CompletePromiseCommandMessage`.
    pub const COMPLETE_PROMISE_COMMAND: u16 = 0x040B;
    /// `SleepCommandMessage`.
    pub const SLEEP_COMMAND: u16 = 0x040C;
    /// `CallCommandMessage`.
    pub const CALL_COMMAND: u16 = 0x040D;
    /// `OneWayCallCommandMessage`.
    pub const ONE_WAY_CALL_COMMAND: u16 = 0x040E;
    /// `SendSignalCommandMessage` (0x040F has no message).
    pub const SEND_SIGNAL_COMMAND: u16 = 0x0410;
    /// `RunCommandMessage`.
    pub const RUN_COMMAND: u16 = 0x0411;
    /// `AttachInvocationCommandMessage`.
    pub const ATTACH_INVOCATION_COMMAND: u16 = 0x0412;
    /// `GetInvocationOutputCommandMessage`.
    pub const GET_INVOCATION_OUTPUT_COMMAND: u16 = 0x0413;
    /// `CompleteAwakeableCommandMessage`.
    pub const COMPLETE_AWAKEABLE_COMMAND: u16 = 0x0414;

    /// `GetLazyStateCompletionNotificationMessage`.
    pub const GET_LAZY_STATE_COMPLETION_NOTIFICATION: u16 = 0x8002;
    /// `GetLazyStateKeysCompletionNotificationMessage`.
    pub const GET_LAZY_STATE_KEYS_COMPLETION_NOTIFICATION: u16 = 0x8006;
    /// `GetPromiseCompletionNotificationMessage`.
    pub const GET_PROMISE_COMPLETION_NOTIFICATION: u16 = 0x8009;
    /// `PeekPromiseCompletionNotificationMessage`.
    pub const PEEK_PROMISE_COMPLETION_NOTIFICATION: u16 = 0x800A;
    /// `CompletePromiseCompletionNotificationMessage`.
    pub const COMPLETE_PROMISE_COMPLETION_NOTIFICATION: u16 = 0x800B;
    /// `SleepCompletionNotificationMessage`.
    pub const SLEEP_COMPLETION_NOTIFICATION: u16 = 0x800C;
    /// `CallCompletionNotificationMessage`.
    pub const CALL_COMPLETION_NOTIFICATION: u16 = 0x800D;
    /// `CallInvocationIdCompletionNotificationMessage` (for Call and OneWayCall).
    pub const CALL_INVOCATION_ID_COMPLETION_NOTIFICATION: u16 = 0x800E;
    /// `RunCompletionNotificationMessage`.
    pub const RUN_COMPLETION_NOTIFICATION: u16 = 0x8011;
    /// `AttachInvocationCompletionNotificationMessage`.
    pub const ATTACH_INVOCATION_COMPLETION_NOTIFICATION: u16 = 0x8012;
    /// `GetInvocationOutputCompletionNotificationMessage`.
    pub const GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION: u16 = 0x8013;
    /// `SignalNotificationMessage` (cancel, awakeables, named signals).
    pub const SIGNAL_NOTIFICATION: u16 = 0xFBFF;

    /// Unknown type ids with any of these bits set are custom entries (spec §4).
    pub const CUSTOM_ENTRY_MASK: u16 = 0xFC00;
}

/// Whether `ty` is one of the control messages 0x0000..=0x0007 (V7 ones included).
pub fn is_control(ty: u16) -> bool {
    ty <= ty::PROPOSE_RUN_COMPLETION_ACK
}

/// Whether `ty` is a known V5/V6 command (0x0400..=0x0414, except the unused 0x040F).
pub fn is_command(ty: u16) -> bool {
    (ty::INPUT_COMMAND..=ty::COMPLETE_AWAKEABLE_COMMAND).contains(&ty) && ty != 0x040F
}

/// Whether `ty` is a known V5/V6 notification.
pub fn is_notification(ty: u16) -> bool {
    use ty::*;
    matches!(
        ty,
        GET_LAZY_STATE_COMPLETION_NOTIFICATION
            | GET_LAZY_STATE_KEYS_COMPLETION_NOTIFICATION
            | GET_PROMISE_COMPLETION_NOTIFICATION
            | PEEK_PROMISE_COMPLETION_NOTIFICATION
            | COMPLETE_PROMISE_COMPLETION_NOTIFICATION
            | SLEEP_COMPLETION_NOTIFICATION
            | CALL_COMPLETION_NOTIFICATION
            | CALL_INVOCATION_ID_COMPLETION_NOTIFICATION
            | RUN_COMPLETION_NOTIFICATION
            | ATTACH_INVOCATION_COMPLETION_NOTIFICATION
            | GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION
            | SIGNAL_NOTIFICATION
    )
}

/// Whether `ty` is a custom entry: not a known message, with a bit of 0xFC00 set.
///
/// Restate 1.7 does not implement custom entries; perdure treats one sent by a
/// deployment as a protocol violation of the attempt.
pub fn is_custom(ty: u16) -> bool {
    ty & ty::CUSTOM_ENTRY_MASK != 0 && !is_command(ty) && !is_notification(ty)
}

/// Short human name of a message type, e.g. `"SleepCommand"`, for logs and errors.
///
/// Unknown codes are named `"CustomEntry"` or `"Unknown"`.
pub fn message_name(ty: u16) -> &'static str {
    use ty::*;
    match ty {
        START => "Start",
        SUSPENSION => "Suspension",
        ERROR => "Error",
        END => "End",
        COMMAND_ACK => "CommandAck",
        PROPOSE_RUN_COMPLETION => "ProposeRunCompletion",
        AWAITING_ON => "AwaitingOn",
        PROPOSE_RUN_COMPLETION_ACK => "ProposeRunCompletionAck",
        INPUT_COMMAND => "InputCommand",
        OUTPUT_COMMAND => "OutputCommand",
        GET_LAZY_STATE_COMMAND => "GetLazyStateCommand",
        SET_STATE_COMMAND => "SetStateCommand",
        CLEAR_STATE_COMMAND => "ClearStateCommand",
        CLEAR_ALL_STATE_COMMAND => "ClearAllStateCommand",
        GET_LAZY_STATE_KEYS_COMMAND => "GetLazyStateKeysCommand",
        GET_EAGER_STATE_COMMAND => "GetEagerStateCommand",
        GET_EAGER_STATE_KEYS_COMMAND => "GetEagerStateKeysCommand",
        GET_PROMISE_COMMAND => "GetPromiseCommand",
        PEEK_PROMISE_COMMAND => "PeekPromiseCommand",
        COMPLETE_PROMISE_COMMAND => "CompletePromiseCommand",
        SLEEP_COMMAND => "SleepCommand",
        CALL_COMMAND => "CallCommand",
        ONE_WAY_CALL_COMMAND => "OneWayCallCommand",
        SEND_SIGNAL_COMMAND => "SendSignalCommand",
        RUN_COMMAND => "RunCommand",
        ATTACH_INVOCATION_COMMAND => "AttachInvocationCommand",
        GET_INVOCATION_OUTPUT_COMMAND => "GetInvocationOutputCommand",
        COMPLETE_AWAKEABLE_COMMAND => "CompleteAwakeableCommand",
        GET_LAZY_STATE_COMPLETION_NOTIFICATION => "GetLazyStateCompletionNotification",
        GET_LAZY_STATE_KEYS_COMPLETION_NOTIFICATION => "GetLazyStateKeysCompletionNotification",
        GET_PROMISE_COMPLETION_NOTIFICATION => "GetPromiseCompletionNotification",
        PEEK_PROMISE_COMPLETION_NOTIFICATION => "PeekPromiseCompletionNotification",
        COMPLETE_PROMISE_COMPLETION_NOTIFICATION => "CompletePromiseCompletionNotification",
        SLEEP_COMPLETION_NOTIFICATION => "SleepCompletionNotification",
        CALL_COMPLETION_NOTIFICATION => "CallCompletionNotification",
        CALL_INVOCATION_ID_COMPLETION_NOTIFICATION => "CallInvocationIdCompletionNotification",
        RUN_COMPLETION_NOTIFICATION => "RunCompletionNotification",
        ATTACH_INVOCATION_COMPLETION_NOTIFICATION => "AttachInvocationCompletionNotification",
        GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION => "GetInvocationOutputCompletionNotification",
        SIGNAL_NOTIFICATION => "SignalNotification",
        other if is_custom(other) => "CustomEntry",
        _ => "Unknown",
    }
}

/// A frame received from the deployment, classified and decoded (spec §10.5).
#[derive(Debug, Clone, PartialEq)]
pub enum DeploymentMessage {
    /// A new journal command. Store `payload` verbatim (it is replayed byte for byte);
    /// `command` is its decoded form, for applying the effect.
    Command {
        /// The decoded command; `command.ty()` is the frame's type code.
        command: JournalCommand,
        /// The payload exactly as received.
        payload: Bytes,
    },
    /// A `ctx.run` result to store as a RunCompletionNotification.
    ProposeRunCompletion(RunProposal),
    /// Terminal: suspend until any listed notification exists (never empty).
    Suspension(SuspensionMessage),
    /// Terminal: the attempt failed.
    Error(ErrorMessage),
    /// Terminal: the invocation finished.
    End,
}

/// Why a frame is not an acceptable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The payload is not valid protobuf for its type.
    #[error("malformed {name} message (type {ty:#06x}): {source}")]
    Malformed {
        /// Type code of the frame.
        ty: u16,
        /// Name of the type.
        name: &'static str,
        /// The protobuf error.
        #[source]
        source: prost::DecodeError,
    },
    /// A required field is absent.
    #[error("{name} message (type {ty:#06x}) lacks its {field}")]
    MissingField {
        /// Type code of the frame.
        ty: u16,
        /// Name of the type.
        name: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A suspension that waits on nothing.
    #[error("Suspension message waits on no completion, signal or named signal")]
    EmptySuspension,
    /// A known message the deployment must not send (Start, notifications, acks, V7).
    #[error(
        "the deployment sent a {name} message (type {ty:#06x}), which only the server may send or which V5/V6 does not allow"
    )]
    Unexpected {
        /// Type code of the frame.
        ty: u16,
        /// Name of the type.
        name: &'static str,
    },
    /// The type code is a known message but not a command.
    #[error("{name} (type {ty:#06x}) is not a command")]
    NotACommand {
        /// Type code of the frame.
        ty: u16,
        /// Name of the type.
        name: &'static str,
    },
    /// A custom entry, which this server does not implement.
    #[error("custom journal entries (type {ty:#06x}) are not supported")]
    CustomEntry {
        /// Type code of the frame.
        ty: u16,
    },
    /// A type code outside the protocol.
    #[error("unknown message type {ty:#06x}")]
    UnknownType {
        /// Type code of the frame.
        ty: u16,
    },
}

impl MessageError {
    /// The error for a frame of type `ty` that is not a command.
    pub(crate) fn not_a_command(ty: u16) -> Self {
        if is_custom(ty) {
            Self::CustomEntry { ty }
        } else if is_control(ty) || is_notification(ty) {
            Self::NotACommand { ty, name: message_name(ty) }
        } else {
            Self::UnknownType { ty }
        }
    }

    fn malformed(ty: u16) -> impl FnOnce(prost::DecodeError) -> Self {
        move |source| Self::Malformed { ty, name: message_name(ty), source }
    }
}

impl DeploymentMessage {
    /// Classifies and decodes a frame received from the deployment.
    ///
    /// Anything a V5/V6 SDK must not send (Start, notifications, acks, V7 messages,
    /// custom or unknown types) is an error: a protocol violation of the attempt.
    pub fn from_frame(frame: &Frame) -> Result<Self, MessageError> {
        let ty = frame.ty;
        let payload = frame.payload.clone();
        match ty {
            ty::END => Ok(Self::End),
            ty::SUSPENSION => {
                let suspension: SuspensionMessage =
                    prost::Message::decode(payload).map_err(MessageError::malformed(ty))?;
                if suspension.is_empty() {
                    return Err(MessageError::EmptySuspension);
                }
                Ok(Self::Suspension(suspension))
            }
            ty::ERROR => prost::Message::decode(payload).map(Self::Error).map_err(MessageError::malformed(ty)),
            ty::PROPOSE_RUN_COMPLETION => {
                let proposal: ProposeRunCompletionMessage =
                    prost::Message::decode(payload).map_err(MessageError::malformed(ty))?;
                let result = proposal.result.ok_or(MessageError::MissingField {
                    ty,
                    name: message_name(ty),
                    field: "result",
                })?;
                Ok(Self::ProposeRunCompletion(RunProposal { completion_id: proposal.result_completion_id, result }))
            }
            _ if is_command(ty) => Ok(Self::Command { command: JournalCommand::decode(ty, payload.clone())?, payload }),
            _ if is_control(ty) || is_notification(ty) => Err(MessageError::Unexpected { ty, name: message_name(ty) }),
            _ => Err(MessageError::not_a_command(ty)),
        }
    }

    /// Whether this message ends the attempt (End, Suspension or Error).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::End | Self::Suspension(_) | Self::Error(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_is_disjoint_and_matches_the_catalogue() {
        for code in 0..=u16::MAX {
            let kinds = [is_control(code), is_command(code), is_notification(code), is_custom(code)];
            assert!(kinds.iter().filter(|k| **k).count() <= 1, "{code:#06x}");
            let known = kinds[..3].iter().any(|k| *k);
            assert_eq!(known, !matches!(message_name(code), "CustomEntry" | "Unknown"));
        }
        assert!(is_command(ty::INPUT_COMMAND) && is_command(ty::COMPLETE_AWAKEABLE_COMMAND));
        assert!(!is_command(0x040F) && is_custom(0x040F));
        assert!(is_notification(ty::SIGNAL_NOTIFICATION) && !is_notification(0x8000));
        assert!(is_custom(0x8000) && is_custom(0xFC00) && is_custom(0x0415));
        assert!(!is_custom(0x0200), "V8 ephemeral commands have no 0xFC00 bit");
        assert_eq!(message_name(ty::SLEEP_COMMAND), "SleepCommand");
        assert_eq!(message_name(0x0200), "Unknown");
    }

    fn frame(ty: u16, payload: &'static [u8]) -> Frame {
        Frame { ty, flags: 0, payload: Bytes::from_static(payload) }
    }

    #[test]
    fn deployment_messages_are_classified() {
        let end = DeploymentMessage::from_frame(&frame(ty::END, b"")).expect("end");
        assert!(end.is_terminal());

        let proposal =
            DeploymentMessage::from_frame(&frame(ty::PROPOSE_RUN_COMPLETION, &[0x08, 0x02, 0x72, 0x02, b'4', b'2']))
                .expect("proposal");
        let DeploymentMessage::ProposeRunCompletion(proposal) = proposal else {
            panic!("expected a proposal, got {proposal:?}");
        };
        assert_eq!(proposal.into_notification(), NotificationMessage::completion(2, NotificationResult::value("42")));

        let sleep = DeploymentMessage::from_frame(&frame(ty::SLEEP_COMMAND, &[0x58, 0x01])).expect("command");
        let DeploymentMessage::Command { command, payload } = sleep else {
            panic!("expected a command");
        };
        assert_eq!(command.ty(), ty::SLEEP_COMMAND);
        assert_eq!(&payload[..], &[0x58, 0x01]);
    }

    #[test]
    fn forbidden_and_broken_frames_are_errors_not_panics() {
        let unexpected = |ty| MessageError::Unexpected { ty, name: message_name(ty) };
        let cases = [
            (frame(ty::START, b""), unexpected(ty::START)),
            (frame(ty::COMMAND_ACK, b""), unexpected(ty::COMMAND_ACK)),
            (frame(ty::SLEEP_COMPLETION_NOTIFICATION, b""), unexpected(0x800C)),
            (frame(0xFC00, b""), MessageError::CustomEntry { ty: 0xFC00 }),
            (frame(0x0100, b""), MessageError::UnknownType { ty: 0x0100 }),
            (frame(ty::SUSPENSION, b""), MessageError::EmptySuspension),
            (
                frame(ty::PROPOSE_RUN_COMPLETION, &[0x08, 0x02]),
                MessageError::MissingField {
                    ty: ty::PROPOSE_RUN_COMPLETION,
                    name: "ProposeRunCompletion",
                    field: "result",
                },
            ),
        ];
        for (frame, expected) in cases {
            assert_eq!(DeploymentMessage::from_frame(&frame), Err(expected));
        }
        // A length prefix running past the end of the payload.
        let truncated = DeploymentMessage::from_frame(&frame(ty::CALL_COMMAND, &[0x0a, 0x05, b'a']));
        let Err(err) = truncated else { panic!("truncated payload accepted") };
        assert!(matches!(err, MessageError::Malformed { ty: ty::CALL_COMMAND, .. }), "{err}");
        assert!(err.to_string().contains("CallCommand"), "{err}");
    }
}
