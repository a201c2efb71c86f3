//! What an attempt sends before the deployment says anything: the path and headers of its
//! request, and the start frames (the `StartMessage` and the journal replay, framed). Pure: the
//! journal and state come in already read, the clock comes in as `now_ms`, the signature headers
//! come in already signed.
//!
//! Owns: the request's headers (content type, invocation id, key, configured and deployment
//! headers, signature, `traceparent`), what goes into the `StartMessage` (known entries, eager
//! or partial state, retry count, time since the last stored entry, random seed). Does not own:
//! reading storage or signing (the attempt does both and hands the results in), nor how the
//! bytes travel ([`super::transport`]).
//!
//! Call order: [`eager_state`] says what to read, the attempt reads it, then [`start_frames`]
//! frames it; [`invoke_path`] and [`invocation_headers`] give the request's head.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use super::client::percent_encode;
use super::failure::AttemptFailure;
use crate::engine::action::InvokeAttempt;
use crate::engine::records::{JournalEntry, ObjectKey};
use crate::protocol::ServiceProtocolVersion;
use crate::protocol::frame;
use crate::protocol::messages::{StartMessage, StateEntry, ty};

/// `/invoke/{service}/{handler}`: the path of an attempt's request (HTTP or Lambda event), and
/// the audience its signature names.
pub fn invoke_path(spec: &InvokeAttempt) -> String {
    format!("/invoke/{}/{}", spec.target.service, spec.target.handler)
}

/// What an attempt's request carries besides its frames.
pub struct HeaderSources<'a> {
    pub version: ServiceProtocolVersion,
    /// `invoker.additional-headers`.
    pub configured: &'a BTreeMap<String, String>,
    /// The deployment's own additional headers.
    pub deployment: &'a BTreeMap<String, String>,
    /// The request's signature (`x-restate-signature-scheme`, `x-restate-jwt-v1`), if signed.
    pub signature: Vec<(&'static str, String)>,
    /// The attempt's span, when its invocation is traced.
    pub traceparent: Option<String>,
}

/// The headers of an attempt's request, whatever carries it.
pub fn invocation_headers(spec: &InvokeAttempt, sources: HeaderSources<'_>) -> Vec<(String, String)> {
    let content_type = sources.version.content_type();
    let mut headers = vec![
        ("content-type".to_owned(), content_type.to_owned()),
        ("accept".to_owned(), content_type.to_owned()),
        ("x-restate-invocation-id".to_owned(), spec.id.to_string()),
    ];
    if let Some(key) = &spec.target.key {
        headers.push(("x-restate-service-key".to_owned(), percent_encode(key)));
    }
    for (k, v) in sources.configured.iter().chain(sources.deployment) {
        headers.push((k.clone(), v.clone()));
    }
    for (k, v) in sources.signature {
        headers.push((k.to_owned(), v));
    }
    if let Some(traceparent) = sources.traceparent {
        headers.push(("traceparent".to_owned(), traceparent));
    }
    headers
}

/// The object whose state goes with the attempt (eagerly), if any: an object's, unless its
/// handler reads state lazily (`lazy_state`) or eager state is off (`eager_limit` 0).
pub fn eager_state(spec: &InvokeAttempt, lazy_state: bool, eager_limit: usize) -> Option<ObjectKey> {
    spec.target.object().filter(|_| !lazy_state && eager_limit > 0)
}

/// The start message plus the journal replay, framed. `state` is the object's state when it
/// is sent eagerly ([`eager_state`]), `None` when the SDK reads it lazily; past `eager_limit`
/// bytes the rest is left to lazy reads (partial state). `now_ms` is the clock, for the time
/// since the journal was last written.
pub fn start_frames(
    spec: &InvokeAttempt,
    journal: &[JournalEntry],
    state: Option<Vec<(Bytes, Bytes)>>,
    eager_limit: usize,
    now_ms: u64,
) -> Result<Bytes, AttemptFailure> {
    if journal.len() != spec.journal_len as usize {
        return Err(AttemptFailure::internal(format!(
            "reading the journal: expected {} entries, found {}",
            spec.journal_len,
            journal.len()
        )));
    }
    // All of the object's state, as long as it fits the limit; past it the SDK reads the
    // rest lazily (partial state).
    let mut partial_state = state.is_none();
    let state = state.unwrap_or_default();
    let mut state_map = Vec::with_capacity(state.len());
    let mut size = 0usize;
    for (key, value) in state {
        size += key.len() + value.len();
        if size > eager_limit {
            partial_state = true;
            break;
        }
        state_map.push(StateEntry { key, value });
    }
    let start = StartMessage {
        id: Bytes::copy_from_slice(&spec.id.to_bytes()),
        debug_id: spec.id.to_string(),
        known_entries: spec.journal_len,
        state_map,
        partial_state,
        key: spec.target.key.clone().unwrap_or_default(),
        retry_count_since_last_stored_entry: spec.retry_count,
        duration_since_last_stored_entry: now_ms.saturating_sub(spec.journal_modified_at),
        random_seed: spec.id.random_seed(),
    };
    let mut out = BytesMut::new();
    frame::encode_message(ty::START, &start, &mut out);
    for entry in journal {
        frame::encode(entry.ty, &entry.payload, &mut out);
    }
    Ok(out.freeze())
}

/// A notification forwarded to the SDK on an open (bidi) stream, framed.
pub fn forwarded_frame(entry: &JournalEntry) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + entry.payload.len());
    frame::encode(entry.ty, &entry.payload, &mut out);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::records::{HandlerKind, ServiceKind, Target};
    use crate::invoker::scripted::{decode_all, first_attempt, greet, input_entry};

    fn counter(key: &str) -> Target {
        Target {
            service: "Counter".into(),
            handler: "add".into(),
            key: Some(key.into()),
            service_kind: ServiceKind::VirtualObject,
            handler_kind: HandlerKind::Exclusive,
        }
    }

    fn start_of(frames: &[u8]) -> (StartMessage, Vec<crate::protocol::Frame>) {
        let frames = decode_all(frames);
        assert_eq!(frames[0].ty, ty::START);
        (frames[0].decode_message().unwrap(), frames[1..].to_vec())
    }

    #[test]
    fn the_start_message_takes_the_time_since_the_journal_was_written_from_the_clock_given() {
        let spec = InvokeAttempt { retry_count: 3, journal_modified_at: 10_000, ..first_attempt(greet(), 2) };
        let journal =
            [input_entry("\"Ada\""), JournalEntry { ty: 0x0411, payload: Bytes::from_static(b"run"), appended_at: 9 }];
        let (start, replayed) = start_of(&start_frames(&spec, &journal, None, 1 << 20, 12_500).unwrap());
        assert_eq!(start.duration_since_last_stored_entry, 2_500);
        assert_eq!(start.retry_count_since_last_stored_entry, 3);
        assert_eq!((start.known_entries, start.debug_id.clone()), (2, spec.id.to_string()));
        assert_eq!(start.random_seed, spec.id.random_seed());
        assert_eq!(&start.id[..], &spec.id.to_bytes()[..]);
        assert!(start.partial_state && start.state_map.is_empty(), "no eager state: the SDK reads it lazily");
        let replayed: Vec<_> = replayed.into_iter().map(|f| (f.ty, f.payload)).collect();
        assert_eq!(replayed, journal.iter().map(|e| (e.ty, e.payload.clone())).collect::<Vec<_>>(), "verbatim");
        let early = start_of(&start_frames(&spec, &journal, None, 1 << 20, 9_000).unwrap()).0;
        assert_eq!(early.duration_since_last_stored_entry, 0, "a clock behind the journal reads as no time");
    }

    #[test]
    fn eager_state_goes_whole_up_to_the_limit_and_the_rest_is_read_lazily() {
        let spec = first_attempt(counter("k1"), 1);
        let state = || vec![(Bytes::from("a"), Bytes::from("1234")), (Bytes::from("b"), Bytes::from("5678"))];
        let journal = [input_entry("1")];
        let (whole, _) = start_of(&start_frames(&spec, &journal, Some(state()), 10, 0).unwrap());
        assert_eq!((whole.state_map.len(), whole.partial_state, whole.key.as_str()), (2, false, "k1"));
        let (partial, _) = start_of(&start_frames(&spec, &journal, Some(state()), 9, 0).unwrap());
        assert_eq!((partial.state_map.len(), partial.partial_state), (1, true));
        assert_eq!(partial.state_map[0], StateEntry { key: "a".into(), value: "1234".into() });
    }

    #[test]
    fn an_object_gets_eager_state_unless_lazy_or_turned_off() {
        let object = first_attempt(counter("k1"), 1);
        let expected = Some(ObjectKey { service: "Counter".into(), key: "k1".into() });
        assert_eq!(eager_state(&object, false, 1), expected);
        assert_eq!(eager_state(&object, true, 1), None, "the handler reads state lazily");
        assert_eq!(eager_state(&object, false, 0), None, "eager state is off");
        assert_eq!(eager_state(&first_attempt(greet(), 1), false, 1), None, "a service has no state");
    }

    #[test]
    fn a_journal_shorter_than_the_attempt_expects_is_not_replayed() {
        let spec = first_attempt(greet(), 2);
        let failure = start_frames(&spec, &[input_entry("1")], None, 0, 0).unwrap_err();
        assert_eq!(
            (failure.info.code, failure.info.message.as_str()),
            (500, "reading the journal: expected 2 entries, found 1")
        );
        assert!(failure.is_transient());
    }

    #[test]
    fn the_head_carries_the_version_the_key_the_configured_headers_the_signature_and_the_trace() {
        let spec = first_attempt(counter("a b/c"), 1);
        let configured = BTreeMap::from([("x-env".to_owned(), "prod".to_owned())]);
        let deployment = BTreeMap::from([("authorization".to_owned(), "Bearer t".to_owned())]);
        let headers = invocation_headers(
            &spec,
            HeaderSources {
                version: ServiceProtocolVersion::V5,
                configured: &configured,
                deployment: &deployment,
                signature: vec![("x-restate-signature-scheme", "v1".into())],
                traceparent: Some("00-abc-def-01".into()),
            },
        );
        let v5 = "application/vnd.restate.invocation.v5";
        let expected = [
            ("content-type", v5),
            ("accept", v5),
            ("x-restate-invocation-id", &spec.id.to_string()),
            ("x-restate-service-key", "a%20b%2Fc"),
            ("x-env", "prod"),
            ("authorization", "Bearer t"),
            ("x-restate-signature-scheme", "v1"),
            ("traceparent", "00-abc-def-01"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(headers, expected);
        assert_eq!(invoke_path(&spec), "/invoke/Counter/add");
    }

    #[test]
    fn a_forwarded_notification_is_framed_as_stored() {
        let entry = JournalEntry {
            ty: ty::SLEEP_COMPLETION_NOTIFICATION,
            payload: Bytes::from_static(b"\x08\x01"),
            appended_at: 0,
        };
        let frames = decode_all(&forwarded_frame(&entry));
        assert_eq!(frames.len(), 1);
        assert_eq!((frames[0].ty, &frames[0].payload[..]), (entry.ty, &entry.payload[..]));
    }
}
