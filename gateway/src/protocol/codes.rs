//! The error codes of invocation failures, by name.
//!
//! Failures in the service protocol carry an HTTP-like `u16` code (`Failure.code`,
//! `ErrorMessage.code`); the SDKs, the CLI and Restate's UI read meaning into some of them. The
//! invoker and the engine pick codes from this list only, so that each one is chosen in one place
//! and a reader can find every use of, say, "protocol violation". The names and values follow
//! Restate 1.7 (`restate_types::errors::codes`); codes perdure adds for its own failures (503
//! for a held invocation, the Lambda call's 413/429/502) are named here too.
//!
//! Owns: the numbers. Does not own: which failure gets which code (the constructors of
//! `invoker::AttemptFailure` and the engine's handlers decide), nor whether a failure is
//! retried (`AttemptFailure::is_transient`).

/// The request was malformed: a keyed handler called without a key, a bad attach target.
pub const BAD_REQUEST: u16 = 400;
/// No such thing: a service no longer registered, a handler gone, an invocation not found.
pub const NOT_FOUND: u16 = 404;
/// A conflict with what exists: a handler called as another kind, a promise already
/// completed, a workflow already invoked, a Lambda version that does not match its alias.
pub const CONFLICT: u16 = 409;
/// The invocation was cancelled (Restate's `ABORTED`).
pub const CANCELED: u16 = 409;
/// The invocation was killed (Restate's `KILLED`).
pub const KILLED: u16 = 409;
/// What the invocation needs was removed: its deployment.
pub const GONE: u16 = 410;
/// Lambda refused a request over its payload limit.
pub const PAYLOAD_TOO_LARGE: u16 = 413;
/// The deployment (or Lambda) throttled the call; its `Retry-After` is honoured.
pub const TOO_MANY_REQUESTS: u16 = 429;
/// Anything else that went wrong; also every code that does not fit a `u16`.
pub const INTERNAL: u16 = 500;
/// Lambda could not be called, or answered with something that is not a response.
pub const BAD_GATEWAY: u16 = 502;
/// Not available now: the invocation is held by its paused deployment (also a deployment's
/// own 503, whose `Retry-After` is honoured).
pub const UNAVAILABLE: u16 = 503;
/// The SDK's replay does not match the journal (sent by SDKs).
pub const JOURNAL_MISMATCH: u16 = 570;
/// The deployment broke the service protocol: an undecodable frame, a wrong content type,
/// End without an Output command.
pub const PROTOCOL_VIOLATION: u16 = 571;

/// `code` as a failure code: codes outside `u16` are reported as [`INTERNAL`].
pub fn clamp(code: u32) -> u16 {
    u16::try_from(code).unwrap_or(INTERNAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_that_do_not_fit_are_internal() {
        assert_eq!(clamp(571), PROTOCOL_VIOLATION);
        assert_eq!(clamp(u32::from(u16::MAX)), u16::MAX);
        assert_eq!(clamp(u32::from(u16::MAX) + 1), INTERNAL);
    }
}
