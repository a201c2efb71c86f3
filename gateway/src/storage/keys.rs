//! Key layouts. Every partition owns a column family per table (`pN-invocation`,
//! `pN-journal`, … and `pN-log`), so one partition can be checkpointed, exported or dropped
//! alone. Every key starts with its table's one-byte tag (so a key says what it is, wherever
//! it is copied), then a fixed big-endian layout that starts with what a scan narrows on:
//! tables of invocations and objects continue with the 8-byte partition key, so one object's
//! (or one key range's) data is contiguous for the engine and for SQL. Logs are keyed by LSN.

use crate::engine::records::{ObjectKey, Timer, TimerKind};
use crate::ids::{DeploymentId, InvocationId};

/// Table tags: the first byte of every key in a partition's column family.
pub mod tag {
    /// The partition's counters (applied LSN, sequence numbers, dedup): one record.
    pub const META: u8 = 0;
    pub const INVOCATION: u8 = 1;
    pub const JOURNAL: u8 = 2;
    pub const STATE: u8 = 3;
    pub const INBOX: u8 = 4;
    pub const LOCK: u8 = 5;
    pub const TIMER: u8 = 6;
    pub const OUTBOX: u8 = 7;
    pub const PROMISE: u8 = 8;
    /// Not-completed invocations by the deployment they are pinned to.
    pub const PINNED: u8 = 9;

    /// Every table, by tag.
    pub const ALL: [u8; 10] = [META, INVOCATION, JOURNAL, STATE, INBOX, LOCK, TIMER, OUTBOX, PROMISE, PINNED];

    /// The name a table's column family carries.
    pub fn cf_name(tag: u8) -> &'static str {
        match tag {
            META => "meta",
            INVOCATION => "invocation",
            JOURNAL => "journal",
            STATE => "state",
            INBOX => "inbox",
            LOCK => "lock",
            TIMER => "timer",
            OUTBOX => "outbox",
            PROMISE => "promise",
            PINNED => "pinned",
            _ => "unknown",
        }
    }

    /// The table a tag names, for error messages.
    pub fn table(tag: u8) -> &'static str {
        match tag {
            META => "partition meta",
            INVOCATION => "invocation",
            JOURNAL => "journal",
            STATE => "state",
            INBOX => "inbox",
            LOCK => "lock",
            TIMER => "timer",
            OUTBOX => "outbox",
            PROMISE => "promise",
            PINNED => "pinned",
            _ => "unknown table",
        }
    }
}

/// Partition `p`'s column family for table `tag`: `p0-invocation`, `p0-journal`, … Each
/// table of each partition has its own, so a table's compactions never rewrite another's
/// data (journals are written once, locks and statuses rewritten all the time).
pub fn table_cf(partition: u32, tag: u8) -> String {
    format!("p{partition}-{}", tag::cf_name(tag))
}

/// Partition `p`'s log column family.
pub fn log_cf(partition: u32) -> String {
    format!("p{partition}-log")
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn take_str(buf: &mut &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let s = std::str::from_utf8(buf.get(4..4usize.checked_add(len)?)?).ok()?.to_owned();
    *buf = &buf[4 + len..];
    Some(s)
}

/// The partition's counters.
pub fn meta() -> [u8; 1] {
    [tag::META]
}

/// `invocation`: id.
pub fn invocation(id: &InvocationId) -> [u8; 25] {
    let mut k = [0u8; 25];
    k[0] = tag::INVOCATION;
    k[1..].copy_from_slice(&id.to_bytes());
    k
}

/// The invocation id of an `invocation` key.
pub fn parse_invocation(key: &[u8]) -> Option<InvocationId> {
    InvocationId::from_bytes(key.get(1..)?)
}

/// Bounds of the invocations whose partition key is `pk`: `[start(pk), start(pk + 1))`.
pub fn invocations_from(partition_key: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = tag::INVOCATION;
    k[1..].copy_from_slice(&partition_key.to_be_bytes());
    k
}

/// `journal`: id ‖ index.
pub fn journal(id: &InvocationId, index: u32) -> [u8; 29] {
    let mut k = [0u8; 29];
    k[0] = tag::JOURNAL;
    k[1..25].copy_from_slice(&id.to_bytes());
    k[25..].copy_from_slice(&index.to_be_bytes());
    k
}

/// tag ‖ pk ‖ service ‖ key: the prefix of everything a table stores per object.
pub fn object(tag: u8, obj: &ObjectKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(17 + obj.service.len() + obj.key.len());
    k.push(tag);
    k.extend_from_slice(&obj.partition_key().to_be_bytes());
    push_str(&mut k, &obj.service);
    push_str(&mut k, &obj.key);
    k
}

/// Splits an object-prefixed key (of any table) into the object and the rest.
pub fn split_object(mut key: &[u8]) -> Option<(ObjectKey, &[u8])> {
    key = key.get(9..)?;
    let service = take_str(&mut key)?;
    let k = take_str(&mut key)?;
    Some((ObjectKey { service, key: k }, key))
}

/// `state`: object ‖ name.
pub fn state(obj: &ObjectKey, name: &[u8]) -> Vec<u8> {
    let mut k = object(tag::STATE, obj);
    k.extend_from_slice(name);
    k
}

/// `inbox`: object ‖ seq.
pub fn inbox(obj: &ObjectKey, seq: u64) -> Vec<u8> {
    let mut k = object(tag::INBOX, obj);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// `lock`: object.
pub fn lock(obj: &ObjectKey) -> Vec<u8> {
    object(tag::LOCK, obj)
}

/// `promise`: object ‖ name.
pub fn promise(obj: &ObjectKey, name: &str) -> Vec<u8> {
    let mut k = object(tag::PROMISE, obj);
    k.extend_from_slice(name.as_bytes());
    k
}

/// `timer`: fire_at ‖ invocation ‖ kind (‖ argument).
pub fn timer(timer: &Timer) -> Vec<u8> {
    let mut k = timers_from(timer.fire_at).to_vec();
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

/// The first `timer` key firing at or after `at`.
pub fn timers_from(at: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = tag::TIMER;
    k[1..].copy_from_slice(&at.to_be_bytes());
    k
}

pub fn parse_timer(key: &[u8]) -> Option<Timer> {
    if key.first() != Some(&tag::TIMER) {
        return None;
    }
    let fire_at = u64::from_be_bytes(key.get(1..9)?.try_into().ok()?);
    let invocation = InvocationId::from_bytes(key.get(9..33)?)?;
    let arg = || key.get(34..38).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
    let kind = match *key.get(33)? {
        0 => TimerKind::Sleep { completion_id: arg()? },
        1 => TimerKind::Retry { attempt: arg()? },
        2 => TimerKind::Scheduled,
        3 => TimerKind::Cleanup,
        4 => TimerKind::JournalCleanup,
        _ => return None,
    };
    Some(Timer { fire_at, invocation, kind })
}

/// `outbox`: seq.
pub fn outbox(seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = tag::OUTBOX;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn parse_outbox(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

/// `pinned`: deployment ‖ invocation.
pub fn pinned(deployment: &DeploymentId, id: &InvocationId) -> [u8; 41] {
    let mut k = [0u8; 41];
    k[..17].copy_from_slice(&pinned_to(deployment));
    k[17..].copy_from_slice(&id.to_bytes());
    k
}

/// The prefix of every `pinned` key of one deployment.
pub fn pinned_to(deployment: &DeploymentId) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = tag::PINNED;
    k[1..].copy_from_slice(&deployment.0.to_be_bytes());
    k
}

/// A log entry's key in `pN-log`: its LSN.
pub fn log_entry(lsn: u64) -> [u8; 8] {
    lsn.to_be_bytes()
}

pub fn parse_log_entry(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
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
        assert_eq!(parse_timer(&timer(&a)), Some(a.clone()));
        assert_eq!(parse_timer(&timer(&b)), Some(b.clone()));
        assert!(timer(&a) < timer(&b));
        assert!(
            timers_from(10).as_slice() <= timer(&a).as_slice() && timer(&a).as_slice() < timers_from(11).as_slice()
        );
    }

    #[test]
    fn object_keys_split_back_and_tables_do_not_overlap() {
        let obj = ObjectKey { service: "Counter".into(), key: "a/b".into() };
        let k = state(&obj, b"count");
        let (back, rest) = split_object(&k).unwrap();
        assert_eq!(back, obj);
        assert_eq!(rest, b"count");
        assert!(k.starts_with(&object(tag::STATE, &obj)));
        assert!(prefix_end(&object(tag::STATE, &obj)).as_slice() > k.as_slice());
        assert!(lock(&obj) < inbox(&obj, 0) || lock(&obj)[0] != inbox(&obj, 0)[0]);
        assert_ne!(state(&obj, b"")[0], promise(&obj, "")[0]);
        assert_eq!(split_object(&[tag::STATE, 0, 0]), None);
        assert_eq!(split_object(&[&[tag::STATE][..], &[0; 8], &[0xff; 4]].concat()), None, "a length past the end");
    }
}
