//! Key layouts. Every key is a fixed big-endian byte layout that starts with what a scan
//! narrows on: partition-keyed tables start with the 8-byte partition key, so one
//! partition's data (or one object's) is a contiguous range for the engine and for SQL.

use crate::engine::records::{ObjectKey, Timer, TimerKind};
use crate::ids::InvocationId;

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn take_str(buf: &mut &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let s = std::str::from_utf8(buf.get(4..4 + len)?).ok()?.to_owned();
    *buf = &buf[4 + len..];
    Some(s)
}

/// `invocation`: id.
pub fn invocation(id: &InvocationId) -> [u8; 24] {
    id.to_bytes()
}

/// `journal`: id ‖ index.
pub fn journal(id: &InvocationId, index: u32) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..24].copy_from_slice(&id.to_bytes());
    k[24..].copy_from_slice(&index.to_be_bytes());
    k
}

/// pk ‖ service ‖ key: the prefix of everything stored per object.
pub fn object(obj: &ObjectKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + obj.service.len() + obj.key.len());
    k.extend_from_slice(&obj.partition_key().to_be_bytes());
    push_str(&mut k, &obj.service);
    push_str(&mut k, &obj.key);
    k
}

/// Splits an object-prefixed key into the object and the rest.
pub fn split_object(mut key: &[u8]) -> Option<(ObjectKey, &[u8])> {
    key = key.get(8..)?;
    let service = take_str(&mut key)?;
    let k = take_str(&mut key)?;
    Some((ObjectKey { service, key: k }, key))
}

/// `state`: object ‖ name.
pub fn state(obj: &ObjectKey, name: &[u8]) -> Vec<u8> {
    let mut k = object(obj);
    k.extend_from_slice(name);
    k
}

/// `inbox`: object ‖ seq.
pub fn inbox(obj: &ObjectKey, seq: u64) -> Vec<u8> {
    let mut k = object(obj);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// `timer`: partition ‖ fire_at ‖ invocation ‖ kind.
pub fn timer(partition: u32, timer: &Timer) -> Vec<u8> {
    let mut k = Vec::with_capacity(48);
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend_from_slice(&timer.fire_at.to_be_bytes());
    k.extend_from_slice(&timer.invocation.to_bytes());
    match timer.kind {
        TimerKind::Sleep { completion_id } => {
            k.push(0);
            k.extend_from_slice(&completion_id.to_be_bytes());
        }
        TimerKind::Retry { attempt } => {
            k.push(1);
            k.extend_from_slice(&attempt.to_be_bytes());
        }
        TimerKind::Scheduled => k.push(2),
        TimerKind::Cleanup => k.push(3),
        TimerKind::JournalCleanup => k.push(4),
    }
    k
}

pub fn parse_timer(key: &[u8]) -> Option<Timer> {
    let fire_at = u64::from_be_bytes(key.get(4..12)?.try_into().ok()?);
    let invocation = InvocationId::from_bytes(key.get(12..36)?)?;
    let arg = || key.get(37..41).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
    let kind = match *key.get(36)? {
        0 => TimerKind::Sleep { completion_id: arg()? },
        1 => TimerKind::Retry { attempt: arg()? },
        2 => TimerKind::Scheduled,
        3 => TimerKind::Cleanup,
        4 => TimerKind::JournalCleanup,
        _ => return None,
    };
    Some(Timer { fire_at, invocation, kind })
}

/// `outbox` and `log`: partition ‖ sequence number.
pub fn sequenced(partition: u32, seq: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&partition.to_be_bytes());
    k[4..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn parse_sequenced(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(4..12)?.try_into().ok()?))
}

/// `meta`: a partition's counters.
pub fn partition_meta(partition: u32) -> Vec<u8> {
    format!("partition/{partition}").into_bytes()
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_keys_round_trip_and_sort_by_time() {
        let id = InvocationId::generate(7);
        let a = Timer { fire_at: 10, invocation: id, kind: TimerKind::Sleep { completion_id: 3 } };
        let b = Timer { fire_at: 11, invocation: id, kind: TimerKind::Cleanup };
        assert_eq!(parse_timer(&timer(1, &a)), Some(a.clone()));
        assert_eq!(parse_timer(&timer(1, &b)), Some(b.clone()));
        assert!(timer(1, &a) < timer(1, &b));
    }

    #[test]
    fn object_keys_split_back() {
        let obj = ObjectKey { service: "Counter".into(), key: "a/b".into() };
        let k = state(&obj, b"count");
        let (back, rest) = split_object(&k).unwrap();
        assert_eq!(back, obj);
        assert_eq!(rest, b"count");
        assert!(k.starts_with(&object(&obj)));
        assert!(prefix_end(&object(&obj)).as_slice() > k.as_slice());
    }
}
