//! [`AttemptFailure`]: why an attempt ended without the SDK's say, as the invocation's last
//! failure will show it. Each cause has its constructor, which picks the code (from
//! [`crate::protocol::codes`]) and whether retrying can help ([`AttemptFailure::is_transient`]);
//! the messages are the ones users see in `sys_invocation`, the CLI and the logs.
//!
//! Owns: the codes, texts and retry class of the invoker's own failures. Does not own: failures
//! the SDK reports (an `ErrorMessage` becomes an effect in [`super::translate`]), nor what a
//! failure leads to (the engine retries a transient one by the retry policy, and ends the
//! invocation on one that is not).
//!
//! Call order: a pure part (`choose`, `request`, `translate`, `lambda_versions`) or the attempt's
//! driver builds the failure where it finds it; the driver reports it as the attempt's last
//! effect ([`AttemptFailure::into_effect`]), after the effects that came before it.

use std::time::Duration;

use super::lambda::LambdaError;
use super::transport::{Destination, TransportError};
use crate::engine::command::Effect;
use crate::engine::records::FailureInfo;
use crate::protocol::codes;

/// Why an attempt failed; becomes the invocation's last failure.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptFailure {
    pub info: FailureInfo,
    /// When the next attempt may start (the deployment's `Retry-After`), instead of the
    /// retry policy's delay.
    pub next_retry_delay_ms: Option<u64>,
    /// Retrying cannot help (the deployment or handler is gone): the invocation ends.
    terminal: bool,
}

impl AttemptFailure {
    /// A failure another attempt may not have.
    fn transient(code: u16, message: impl Into<String>) -> Self {
        Self {
            info: FailureInfo { code, message: message.into(), ..Default::default() },
            next_retry_delay_ms: None,
            terminal: false,
        }
    }

    /// A failure every attempt would have: the invocation ends with it.
    fn terminal(code: u16, message: impl Into<String>) -> Self {
        Self { terminal: true, ..Self::transient(code, message) }
    }

    /// Worth another attempt. False when what the invocation needs is gone for good (its
    /// deployment, its service or handler, a handler of the kind it was called as): then the
    /// engine ends the invocation with this failure instead of retrying.
    pub fn is_transient(&self) -> bool {
        !self.terminal
    }

    /// What the deployment or its transport did wrong this time (500); retried.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::transient(codes::INTERNAL, message)
    }

    /// The deployment broke the service protocol (571): a frame or message that does not decode.
    pub fn protocol_violation(error: impl std::fmt::Display) -> Self {
        Self::transient(codes::PROTOCOL_VIOLATION, format!("protocol violation: {error}"))
    }

    /// The response is not a service-protocol stream of the version the attempt speaks (571).
    pub fn content_type(got: Option<&str>, expected: &str) -> Self {
        Self::transient(
            codes::PROTOCOL_VIOLATION,
            format!("content type {} instead of {expected}", got.unwrap_or("(none)")),
        )
    }

    /// The deployment answered with an error status; its code is the failure's. After 429 and
    /// 503 the next attempt waits as long as `retry_after_ms` says.
    pub fn status(status: http::StatusCode, retry_after_ms: Option<u64>) -> Self {
        let mut failure = Self::transient(status.as_u16(), format!("HTTP {status}"));
        if matches!(status.as_u16(), codes::TOO_MANY_REQUESTS | codes::UNAVAILABLE) {
            failure.next_retry_delay_ms = retry_after_ms;
        }
        failure
    }

    /// Something the invocation needs was removed (410); it ends.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::terminal(codes::GONE, message)
    }

    /// Its service or handler is not served any more (404); it ends.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::terminal(codes::NOT_FOUND, message)
    }

    /// Its handler is now served as another kind than it was called as (409); it ends.
    pub fn kind_changed(message: impl Into<String>) -> Self {
        Self::terminal(codes::CONFLICT, message)
    }

    /// Nothing could ever run it as it is: a pin to a protocol version or a service its
    /// deployment does not have, an ARN that does not parse (500); it ends.
    pub fn unrunnable(message: impl Into<String>) -> Self {
        Self::terminal(codes::INTERNAL, message)
    }

    /// The Lambda version that ran behind an alias does not match the registered manifest
    /// (409): its answer does not count, and the next attempt goes to the version held.
    pub fn version_refused(message: impl Into<String>) -> Self {
        Self::transient(codes::CONFLICT, message)
    }

    /// A call or send whose target cannot be resolved (500), naming the command that made it.
    pub fn bad_call(message: String, command_type: u16, command_name: &str) -> Self {
        let mut failure = Self::internal(message);
        failure.info.related_command_type = Some(command_type);
        failure.info.related_command_name = Some(command_name.to_owned()).filter(|n| !n.is_empty());
        failure
    }

    /// The transport got no response head. A Lambda failure names the function, and for a
    /// missing version the invocation pinned to it.
    pub fn transport(error: TransportError, destination: &Destination, pinned_version: Option<&str>) -> Self {
        let transient = error.is_transient();
        let failure = match error {
            TransportError::Lambda(e) => {
                let function = match destination {
                    Destination::Lambda { function, .. } => function.as_str(),
                    Destination::Http { .. } => "the deployment",
                };
                lambda_failure(e, function, pinned_version)
            }
            other => Self::internal(other.to_string()),
        };
        Self { terminal: !transient, ..failure }
    }

    /// The response head did not come within the abort timeout.
    pub fn no_answer(destination: &Destination, abort: Duration) -> Self {
        match destination {
            Destination::Http { .. } => Self::internal("the deployment did not answer within the abort timeout"),
            Destination::Lambda { function, .. } => Self::internal(format!(
                "{function} did not answer within the abort timeout ({})",
                humantime::format_duration(abort)
            )),
        }
    }

    /// The response ended before End, Suspension or Error.
    pub fn unterminated(destination: &Destination) -> Self {
        match destination {
            Destination::Http { .. } => {
                Self::internal("the deployment closed the stream without End, Suspension or Error")
            }
            Destination::Lambda { function, .. } => {
                Self::internal(format!("{function} answered without End, Suspension or Error"))
            }
        }
    }

    /// Nothing came from the deployment for the abort timeout while the response was open.
    pub fn silent(abort: Duration) -> Self {
        Self::internal(format!(
            "no message from the deployment for {} (abort timeout)",
            humantime::format_duration(abort)
        ))
    }

    /// The response body broke off.
    pub fn stream(reason: &str) -> Self {
        Self::internal(format!("stream error: {reason}"))
    }

    /// A failure about the response head, said of who answered.
    pub fn answered_by(mut self, destination: &Destination) -> Self {
        self.info.message = match destination {
            Destination::Http { .. } => format!("deployment answered: {}", self.info.message),
            Destination::Lambda { function, .. } => format!("{function} answered: {}", self.info.message),
        };
        self
    }

    /// The effect that reports it to the partition.
    pub fn into_effect(self) -> Effect {
        Effect::Failed { failure: self.info, next_retry_delay_ms: self.next_retry_delay_ms, terminal: self.terminal }
    }
}

/// An attempt's failure from a Lambda call.
fn lambda_failure(e: LambdaError, function: &str, pinned: Option<&str>) -> AttemptFailure {
    let message = match (&e, pinned) {
        (LambdaError::NotFound(_), Some(v)) => format!(
            "{e}. The invocation is pinned to version {v}, which must stay published until it completes \
             (delete a version once `perdure dp describe` shows nothing pinned to it)"
        ),
        (LambdaError::TooLarge { .. }, _) => format!("{e} calling {function}"),
        _ => e.to_string(),
    };
    AttemptFailure::transient(e.code(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lambda(function: &str) -> Destination {
        Destination::Lambda { function: function.into(), region: "eu-west-1".into(), role: None, zstd: false }
    }

    #[test]
    fn what_is_gone_ends_the_invocation_and_the_rest_is_retried() {
        assert!(!AttemptFailure::gone("x").is_transient());
        assert!(!AttemptFailure::not_found("x").is_transient());
        assert!(!AttemptFailure::kind_changed("x").is_transient());
        assert!(!AttemptFailure::unrunnable("x").is_transient());
        for failure in [
            AttemptFailure::internal("x"),
            AttemptFailure::protocol_violation("x"),
            AttemptFailure::version_refused("x"),
            AttemptFailure::status(http::StatusCode::BAD_GATEWAY, None),
            AttemptFailure::transport(TransportError::Http("refused".into()), &lambda("f"), None),
        ] {
            assert!(failure.is_transient(), "{failure:?}");
        }
        let Effect::Failed { terminal, failure, .. } = AttemptFailure::gone("removed").into_effect() else {
            panic!("a failure reports as Failed")
        };
        assert!(terminal);
        assert_eq!((failure.code, failure.message.as_str()), (410, "removed"));
    }

    #[test]
    fn a_throttling_status_carries_its_retry_after_and_others_do_not() {
        let throttled = AttemptFailure::status(http::StatusCode::TOO_MANY_REQUESTS, Some(2000));
        assert_eq!((throttled.info.code, throttled.next_retry_delay_ms), (429, Some(2000)));
        assert_eq!(throttled.info.message, "HTTP 429 Too Many Requests");
        let unavailable = AttemptFailure::status(http::StatusCode::SERVICE_UNAVAILABLE, Some(1000));
        assert_eq!(unavailable.next_retry_delay_ms, Some(1000));
        let broken = AttemptFailure::status(http::StatusCode::INTERNAL_SERVER_ERROR, Some(1000));
        assert_eq!(broken.next_retry_delay_ms, None, "Retry-After counts for 429 and 503 only");
    }

    #[test]
    fn lambda_failures_name_the_function_and_a_pinned_version() {
        let f = "arn:aws:lambda:eu-west-1:1:function:greeter:7";
        let missing = LambdaError::NotFound(format!("Lambda says {f} does not exist: gone"));
        let failure = AttemptFailure::transport(missing.into(), &lambda(f), Some("7"));
        assert_eq!(failure.info.code, 404);
        assert!(failure.info.message.contains("pinned to version 7, which must stay published"), "{failure:?}");
        assert!(failure.is_transient(), "a deleted version may be published again: retried as before");
        let large = AttemptFailure::transport(LambdaError::TooLarge { size: 7 << 20 }.into(), &lambda(f), None);
        assert_eq!(large.info.code, 413);
        assert!(large.info.message.ends_with(&format!("calling {f}")), "{large:?}");
        let throttled = AttemptFailure::transport(LambdaError::Throttled("slow down".into()).into(), &lambda(f), None);
        assert_eq!(
            (throttled.info.code, throttled.info.message.as_str()),
            (429, "Lambda throttled the call (slow down)")
        );
    }

    #[test]
    fn who_did_not_answer_is_named() {
        let http = Destination::Http {
            uri: "http://h/invoke/A/b".parse().unwrap(),
            version: crate::schema::HttpVersion::Http2,
        };
        let f = "arn:aws:lambda:eu-west-1:1:function:greeter:live";
        assert_eq!(
            AttemptFailure::no_answer(&http, Duration::from_secs(60)).info.message,
            "the deployment did not answer within the abort timeout"
        );
        assert_eq!(
            AttemptFailure::no_answer(&lambda(f), Duration::from_secs(60)).info.message,
            format!("{f} did not answer within the abort timeout (1m)")
        );
        assert_eq!(
            AttemptFailure::unterminated(&lambda(f)).info.message,
            format!("{f} answered without End, Suspension or Error")
        );
        let head = AttemptFailure::status(http::StatusCode::NOT_FOUND, None);
        assert_eq!(head.clone().answered_by(&http).info.message, "deployment answered: HTTP 404 Not Found");
        assert_eq!(head.answered_by(&lambda(f)).info.message, format!("{f} answered: HTTP 404 Not Found"));
    }
}
