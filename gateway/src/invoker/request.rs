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
