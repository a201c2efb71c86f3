//! The Restate service protocol (V5/V6) and discovery manifest, as pure codecs.
//!
//! This folder turns bytes into typed messages and back. It performs **no I/O**: the
//! same code serves HTTP/2 streams, HTTP/1.1 bodies and Lambda payloads, and every
//! function here can be tested with plain byte slices (spec: `service-protocol.md`).
//!
//! # What lives here
//!
//! * [`frame`]: the 8-byte frame header (`type u16 | flags u16 | length u32`, big
//!   endian) and the "need more bytes" decoder, [`frame::decode`] returning
//!   `Ok(None)` until a whole frame is buffered.
//! * [`messages`]: message type codes ([`messages::ty`]), their classification
//!   (control / command / notification / custom), and hand-written `prost` structs for
//!   every V5/V6 message, including the typed [`messages::JournalCommand`] view of commands
//!   and the [`messages::DeploymentMessage`] view of what an SDK may send.
//! * [`manifest`]: the discovery manifest returned by `GET /discover` (JSON), its
//!   validation, and the `Accept` header the server sends.
//! * [`codes`]: the failure codes (571 protocol violation, 410 gone, …) by name.
//! * Protocol version negotiation: [`ServiceProtocolVersion`] and [`choose_version`].
//!
//! # What does not live here
//!
//! Sockets, HTTP, retries and timeouts belong to the invoker; what a command *does*
//! (state, timers, calls) belongs to the engine; storing journal entries belongs to
//! storage. Journal entries are stored as `(type code, payload bytes)` exactly as
//! received and replayed verbatim, so nothing here canonicalizes commands.
//!
//! # Call order during one attempt
//!
//! 1. Registration: [`manifest::parse_manifest`] validates the SDK's manifest, and
//!    [`choose_version`] picks the version pinned on each invocation.
//! 2. The invoker encodes a [`messages::StartMessage`] with [`frame::encode_message`],
//!    then each stored journal entry with [`frame::encode`].
//! 3. For each chunk received, it calls [`frame::decode`] in a loop until `Ok(None)`,
//!    and classifies each frame with [`messages::DeploymentMessage::from_frame`].
//! 4. Commands are decoded with [`messages::JournalCommand::decode`] for their effect and the
//!    completion ids they await ([`messages::completion_ids_of_command`]).

pub mod codes;
pub mod frame;
pub mod manifest;
pub mod messages;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod wire_vectors;

pub use frame::{DEFAULT_MAX_MESSAGE_SIZE, Frame, FrameError};
pub use manifest::{DISCOVERY_ACCEPT, Manifest, ManifestError, parse_manifest};
pub use messages::{DeploymentMessage, JournalCommand, MessageError, NotificationMessage};

/// Lowest service protocol version this server speaks.
pub const MIN_SERVICE_PROTOCOL_VERSION: u32 = 5;
/// Highest service protocol version this server speaks (V7 is a later milestone).
pub const MAX_SERVICE_PROTOCOL_VERSION: u32 = 6;

/// A service protocol version this server can speak with a deployment.
///
/// V5 and V6 share one message set; V6 only adds `StartMessage.random_seed` and
/// `Failure.metadata`, which V5 SDKs ignore. The difference on the wire is the
/// content type of the invocation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceProtocolVersion {
    /// `application/vnd.restate.invocation.v5`.
    V5,
    /// `application/vnd.restate.invocation.v6`.
    V6,
}

impl ServiceProtocolVersion {
    /// The `content-type` (and `accept`) of invocation requests using this version.
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::V5 => "application/vnd.restate.invocation.v5",
            Self::V6 => "application/vnd.restate.invocation.v6",
        }
    }

    /// The version number, e.g. `6`.
    pub fn as_u32(&self) -> u32 {
        match self {
            Self::V5 => 5,
            Self::V6 => 6,
        }
    }

    /// The version with that number, if this server speaks it.
    pub fn from_u32(version: u32) -> Option<Self> {
        match version {
            5 => Some(Self::V5),
            6 => Some(Self::V6),
            _ => None,
        }
    }

    /// The version whose content type is exactly `content_type`, if this server speaks it.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        [Self::V5, Self::V6].into_iter().find(|version| version.content_type() == content_type)
    }
}

impl std::fmt::Display for ServiceProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "V{}", self.as_u32())
    }
}

/// Picks the service protocol version for a deployment advertising `[min, max]`.
///
/// The server's range is [`MIN_SERVICE_PROTOCOL_VERSION`, `MAX_SERVICE_PROTOCOL_VERSION`]
/// (`[5, 6]`). The choice is `min(max, 6)`, provided it is at least `max(min, 5)`;
/// otherwise the ranges do not overlap and the result is `None`. SDKs advertising
/// `[5, 7]` therefore get V6, as with Restate 1.7.
pub fn choose_version(min: u32, max: u32) -> Option<ServiceProtocolVersion> {
    let chosen = max.min(MAX_SERVICE_PROTOCOL_VERSION);
    if chosen >= min.max(MIN_SERVICE_PROTOCOL_VERSION) { ServiceProtocolVersion::from_u32(chosen) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_the_highest_common_version() {
        assert_eq!(choose_version(5, 7), Some(ServiceProtocolVersion::V6));
        assert_eq!(choose_version(5, 6), Some(ServiceProtocolVersion::V6));
        assert_eq!(choose_version(5, 5), Some(ServiceProtocolVersion::V5));
        assert_eq!(choose_version(1, 5), Some(ServiceProtocolVersion::V5));
        assert_eq!(choose_version(6, 8), Some(ServiceProtocolVersion::V6));
    }

    #[test]
    fn rejects_ranges_that_do_not_overlap() {
        assert_eq!(choose_version(7, 9), None);
        assert_eq!(choose_version(1, 4), None);
        assert_eq!(choose_version(6, 5), None, "min above max is empty");
    }

    #[test]
    fn version_numbers_and_content_types_round_trip() {
        for version in [ServiceProtocolVersion::V5, ServiceProtocolVersion::V6] {
            assert_eq!(ServiceProtocolVersion::from_u32(version.as_u32()), Some(version));
            assert_eq!(ServiceProtocolVersion::from_content_type(version.content_type()), Some(version));
        }
        assert_eq!(ServiceProtocolVersion::V6.content_type(), "application/vnd.restate.invocation.v6");
        assert_eq!(ServiceProtocolVersion::from_u32(7), None);
        assert_eq!(ServiceProtocolVersion::V5.to_string(), "V5");
    }
}
