//! Value encoding: a one-byte envelope version followed by the record in `postcard`
//! (compact varint serde). When a record's shape changes, bump [`VERSION`] and convert
//! old versions here on read, so the engine only ever sees current types.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StorageError;

/// Envelope version of every stored record.
pub const VERSION: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![VERSION];
    postcard::to_io(value, &mut out).expect("serializing a record into memory cannot fail");
    out
}

pub fn decode<T: DeserializeOwned>(raw: &[u8], table: &'static str) -> Result<T, StorageError> {
    match raw.split_first() {
        Some((&VERSION, body)) => postcard::from_bytes(body)
            .map_err(|e| StorageError::Corrupt { table, reason: e.to_string() }),
        Some((v, _)) => Err(StorageError::Corrupt { table, reason: format!("unknown record version {v}") }),
        None => Err(StorageError::Corrupt { table, reason: "empty record".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::records::{Notification, NotificationId, NotificationResult};

    #[test]
    fn records_round_trip_and_reject_unknown_versions() {
        let n = Notification {
            ty: 0x800D,
            id: NotificationId::Completion(3),
            result: NotificationResult::Value(bytes::Bytes::from_static(b"42")),
        };
        let raw = encode(&n);
        assert_eq!(raw[0], VERSION);
        assert_eq!(decode::<Notification>(&raw, "t").unwrap(), n);
        let mut bad = raw.clone();
        bad[0] = 99;
        assert!(decode::<Notification>(&bad, "t").is_err());
        assert!(decode::<Notification>(&[], "t").is_err());
    }
}
