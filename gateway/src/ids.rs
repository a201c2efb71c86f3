//! Identifiers users see: invocation ids (`inv_1…`), deployment ids (`dp_1…`) and
//! awakeable/signal ids (`sign_1…`), in the same text forms as Restate 1.7 so that the
//! SDKs, the `restate` CLI and users' tooling can pass them around unchanged.
//!
//! An invocation id is 24 raw bytes: the 8-byte big-endian *partition key* followed by a
//! 16-byte invocation uuid. The partition key decides which partition owns the invocation;
//! for a virtual object or workflow it is a hash of the object key, so every invocation of
//! one key lands on the same partition.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

const BASE62: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Why a textual id could not be parsed. The messages match Restate's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("bad format")]
    BadFormat,
    #[error("unrecognized resource type: {0}")]
    UnknownResourceType(String),
    #[error("unrecognized codec version")]
    UnknownVersion,
}

fn base62_encode(mut n: u128, width: usize, out: &mut String) {
    let mut digits = [b'0'; 22];
    let mut i = digits.len();
    while n > 0 {
        i -= 1;
        digits[i] = BASE62[(n % 62) as usize];
        n /= 62;
    }
    let start = digits.len() - width;
    debug_assert!(i >= start, "value does not fit in {width} base62 digits");
    out.push_str(std::str::from_utf8(&digits[start..]).expect("base62 digits are ascii"));
}

fn base62_decode(s: &str) -> Result<u128, IdError> {
    let mut n: u128 = 0;
    for b in s.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            b'A'..=b'Z' => b - b'A' + 36,
            _ => return Err(IdError::BadFormat),
        } as u128;
        n = n.checked_mul(62).and_then(|n| n.checked_add(d)).ok_or(IdError::BadFormat)?;
    }
    Ok(n)
}

/// Splits `prefix_1rest` into (prefix, rest) after checking the codec version digit.
fn split_resource<'a>(s: &'a str, expected: &str) -> Result<&'a str, IdError> {
    let (prefix, rest) = s.split_once('_').ok_or(IdError::BadFormat)?;
    if prefix != expected {
        return Err(IdError::UnknownResourceType(prefix.to_owned()));
    }
    let rest = rest.strip_prefix('1').ok_or(IdError::UnknownVersion)?;
    Ok(rest)
}

/// A stable 64-bit hash, used to place keyed invocations on partitions.
pub fn partition_key_of(key: &[u8]) -> u64 {
    let digest = Sha256::digest(key);
    u64::from_be_bytes(digest[..8].try_into().expect("sha256 is 32 bytes"))
}

/// The id of one invocation: partition key and uuid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct InvocationId {
    pub partition_key: u64,
    pub uuid: u128,
}

impl InvocationId {
    pub const RAW_LEN: usize = 24;

    pub fn new(partition_key: u64, uuid: u128) -> Self {
        Self { partition_key, uuid }
    }

    /// A fresh id for an ordinary invocation: a time-ordered ULID as uuid.
    pub fn generate(partition_key: u64) -> Self {
        Self::new(partition_key, ulid::Ulid::generate().0)
    }

    /// The deterministic id of an idempotent request: the same target and idempotency key
    /// always name the same invocation.
    pub fn idempotent(service: &str, key: Option<&str>, handler: &str, idempotency_key: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"ik");
        for part in [Some(service), key, Some(handler), Some(idempotency_key)].into_iter().flatten() {
            h.update(b",");
            h.update(part.as_bytes());
        }
        let pk = match key {
            Some(k) => partition_key_of(k.as_bytes()),
            None => partition_key_of(idempotency_key.as_bytes()),
        };
        Self::new(pk, uuid_of_digest(&h.finalize()))
    }

    /// The deterministic id of a workflow's `run` for one key.
    pub fn workflow_run(service: &str, key: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"wf,");
        h.update(service.as_bytes());
        h.update(b",");
        h.update(key.as_bytes());
        Self::new(partition_key_of(key.as_bytes()), uuid_of_digest(&h.finalize()))
    }

    /// A deterministic id derived from a parent invocation and a journal position: used for
    /// invocations created by the state machine, which may not draw randomness.
    pub fn derived(parent: &InvocationId, index: u32, partition_key: Option<u64>) -> Self {
        let mut h = Sha256::new();
        h.update(b"child,");
        h.update(parent.to_bytes());
        h.update(index.to_be_bytes());
        let digest = h.finalize();
        let pk =
            partition_key.unwrap_or_else(|| u64::from_be_bytes(digest[16..24].try_into().expect("32-byte digest")));
        Self::new(pk, uuid_of_digest(&digest))
    }

    pub fn to_bytes(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.partition_key.to_be_bytes());
        out[8..].copy_from_slice(&self.uuid.to_be_bytes());
        out
    }

    pub fn from_bytes(raw: &[u8]) -> Option<Self> {
        if raw.len() != Self::RAW_LEN {
            return None;
        }
        Some(Self {
            partition_key: u64::from_be_bytes(raw[..8].try_into().ok()?),
            uuid: u128::from_be_bytes(raw[8..].try_into().ok()?),
        })
    }

    /// A stable per-invocation seed for the SDK's random generator (V6 `random_seed`).
    pub fn random_seed(&self) -> u64 {
        let d = Sha256::digest(self.to_bytes());
        u64::from_be_bytes(d[..8].try_into().expect("32-byte digest"))
    }
}

fn uuid_of_digest(digest: &[u8]) -> u128 {
    u128::from_be_bytes(digest[..16].try_into().expect("digest has at least 16 bytes"))
}

impl fmt::Display for InvocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Restate encodes each part's big-endian bytes read back as a little-endian integer.
        let mut s = String::with_capacity(38);
        s.push_str("inv_1");
        base62_encode(self.partition_key.swap_bytes() as u128, 11, &mut s);
        base62_encode(self.uuid.swap_bytes(), 22, &mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for InvocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for InvocationId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let rest = split_resource(s, "inv")?;
        if rest.len() != 33 || !rest.is_ascii() {
            return Err(IdError::BadFormat);
        }
        let pk = base62_decode(&rest[..11])?;
        let uuid = base62_decode(&rest[11..])?;
        let pk = u64::try_from(pk).map_err(|_| IdError::BadFormat)?;
        Ok(Self { partition_key: pk.swap_bytes(), uuid: uuid.swap_bytes() })
    }
}

/// The id of a registered deployment.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct DeploymentId(pub u128);

impl DeploymentId {
    pub fn generate() -> Self {
        Self(ulid::Ulid::generate().0)
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(26);
        s.push_str("dp_1");
        base62_encode(self.0, 22, &mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for DeploymentId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let rest = split_resource(s, "dp")?;
        if rest.is_empty() || rest.len() > 22 {
            return Err(IdError::BadFormat);
        }
        Ok(Self(base62_decode(rest)?))
    }
}

/// An awakeable (signal) id: the invocation that waits and the signal index it waits on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AwakeableId {
    pub invocation: InvocationId,
    pub signal_index: u32,
}

impl fmt::Display for AwakeableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 28];
        raw[..24].copy_from_slice(&self.invocation.to_bytes());
        raw[24..].copy_from_slice(&self.signal_index.to_be_bytes());
        write!(f, "sign_1{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
    }
}

impl std::str::FromStr for AwakeableId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let rest = split_resource(s, "sign")?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(rest).map_err(|_| IdError::BadFormat)?;
        if raw.len() != 28 {
            return Err(IdError::BadFormat);
        }
        let invocation = InvocationId::from_bytes(&raw[..24]).ok_or(IdError::BadFormat)?;
        let signal_index = u32::from_be_bytes(raw[24..].try_into().map_err(|_| IdError::BadFormat)?);
        Ok(Self { invocation, signal_index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn invocation_id_text_form_matches_restate() {
        // spec/service-protocol.md §13.1 check value
        let raw = hex("c18b43144c5108ff55886ee14ed188c69a4932b27b613186");
        let id = InvocationId::from_bytes(&raw).unwrap();
        assert_eq!(id.to_string(), "inv_1lTwYRzJwUOl45dxpxra7Ai8gT3uUhIoWV");
        assert_eq!("inv_1lTwYRzJwUOl45dxpxra7Ai8gT3uUhIoWV".parse::<InvocationId>().unwrap(), id);
    }

    #[test]
    fn invocation_id_round_trips_and_rejects_garbage() {
        let id = InvocationId::generate(42);
        assert_eq!(id.to_string().parse::<InvocationId>().unwrap(), id);
        assert_eq!(InvocationId::from_bytes(&id.to_bytes()), Some(id));
        assert_eq!("not-an-id".parse::<InvocationId>(), Err(IdError::BadFormat));
        assert_eq!(
            "inc_1aBCdefGHIjkLMnoPQRsTuv".parse::<InvocationId>(),
            Err(IdError::UnknownResourceType("inc".into()))
        );
        assert_eq!("inv_2abc".parse::<InvocationId>(), Err(IdError::UnknownVersion));
        assert_eq!("inv_1abc".parse::<InvocationId>(), Err(IdError::BadFormat));
    }

    #[test]
    fn deterministic_ids_are_stable_and_distinct() {
        let a = InvocationId::idempotent("Greeter", None, "greet", "k1");
        assert_eq!(a, InvocationId::idempotent("Greeter", None, "greet", "k1"));
        assert_ne!(a, InvocationId::idempotent("Greeter", None, "greet", "k2"));
        let w = InvocationId::workflow_run("Wf", "a");
        assert_eq!(w.partition_key, partition_key_of(b"a"));
        assert_ne!(w, InvocationId::workflow_run("Wf", "b"));
    }

    #[test]
    fn deployment_id_round_trips() {
        let id = DeploymentId::generate();
        let s = id.to_string();
        assert!(s.starts_with("dp_1") && s.len() == 26, "{s}");
        assert_eq!(s.parse::<DeploymentId>().unwrap(), id);
        assert!("dp_11111111111111111111111".parse::<DeploymentId>().is_ok());
        assert_eq!("not-an-id".parse::<DeploymentId>(), Err(IdError::BadFormat));
    }

    #[test]
    fn awakeable_id_matches_sdk_layout() {
        // spec §13.2: sign_1 + base64url(raw id ‖ u32 BE index)
        let parsed: AwakeableId = "sign_1wYtDFExRCP9ViG7hTtGIxppJMrJ7YTGGAAAAEQ".parse().unwrap();
        assert_eq!(parsed.signal_index, 17);
        assert_eq!(parsed.to_string(), "sign_1wYtDFExRCP9ViG7hTtGIxppJMrJ7YTGGAAAAEQ");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: crate::fuzz_cases(3000), failure_persistence: None, ..Default::default() })]

        /// Ids in paths, bodies and journal entries come from outside: parsing never panics,
        /// and what parses prints back the same.
        #[test]
        fn arbitrary_text_parses_to_ids_or_errors(s in "(inv|dp|sign|prom)?_?1?[0-9a-zA-Z]{0,60}|\\PC{0,40}") {
            if let Ok(id) = s.parse::<InvocationId>() {
                proptest::prop_assert_eq!(id.to_string().parse::<InvocationId>().ok(), Some(id));
            }
            if let Ok(id) = s.parse::<DeploymentId>() {
                proptest::prop_assert_eq!(id.to_string().parse::<DeploymentId>().ok(), Some(id));
            }
            let _ = s.parse::<AwakeableId>();
        }
    }
}
