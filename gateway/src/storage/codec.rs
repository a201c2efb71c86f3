//! Record encoding: a one-byte envelope version, then the record in [`super::pack`]
//! (postcard-like varints; structs as a field count and their fields in declaration order;
//! enum variants by index). The envelope says how the bytes after it are encoded; the data
//! directory's format ([`super::format`]) says which envelopes may occur.
//!
//! How records may change without a new envelope, so that this build reads what earlier
//! builds of the same envelope wrote:
//! - **add a field at the end** of a struct or struct variant, with `#[serde(default)]`
//!   (records written before it decode with the default);
//! - **add an enum variant at the end** of its enum (variants are stored by index);
//! - **rename** fields and variants freely (neither is stored by name).
//!
//! Anything else (removing or reordering fields or variants, changing a field's type) needs a
//! new envelope version or an upgrade step in [`super::upgrade`]. Every change to a record bumps
//! the data directory's format, so that an older build refuses data it would misread; the
//! fixture data directories of every format (`gateway/tests/e2e/fixtures/`) prove the new
//! build still reads them.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StorageError;

/// Envelope of every record written now: [`super::pack`].
pub const VERSION: u8 = 2;
/// Envelope of storage format 1 (postcard); only [`super::upgrade`] reads it.
pub const VERSION_POSTCARD: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(value, &mut out);
    out
}

/// Appends the envelope and the record to `out`.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    out.push(VERSION);
    super::pack::to_writer(value, out).expect("records have known lengths and no skipped fields");
}

pub fn decode<T: DeserializeOwned>(raw: &[u8], table: &'static str) -> Result<T, StorageError> {
    match raw.split_first() {
        Some((&version, body)) => decode_body(version, body, table),
        None => Err(StorageError::Corrupt { table, reason: "empty record".into() }),
    }
}

/// [`decode`] of a record whose version byte and body are apart (a header between them).
pub fn decode_body<T: DeserializeOwned>(version: u8, body: &[u8], table: &'static str) -> Result<T, StorageError> {
    match version {
        VERSION => super::pack::from_slice(body).map_err(|e| StorageError::Corrupt { table, reason: e.to_string() }),
        VERSION_POSTCARD => Err(StorageError::Corrupt {
            table,
            reason: "a storage format 1 record in an upgraded data directory".into(),
        }),
        v => Err(StorageError::Corrupt { table, reason: format!("unknown record version {v}") }),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

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
        bad[0] = VERSION_POSTCARD;
        assert!(decode::<Notification>(&bad, "t").is_err());
        assert!(decode::<Notification>(&[], "t").is_err());
        assert!(decode::<Notification>(&[VERSION, 0xc1], "t").is_err(), "garbage after the envelope");
        let mut long = raw.clone();
        long.push(0);
        assert!(decode::<Notification>(&long, "t").is_err(), "bytes after the record");
    }

    /// The evolution rules of this module's docs, as a test: what an earlier build wrote
    /// still reads after fields and variants were added at the end and renamed.
    #[test]
    fn fields_added_at_the_end_and_new_variants_read_old_records() {
        #[derive(Serialize)]
        enum KindBefore {
            Sleep { completion_id: u32 },
            Cleanup,
        }
        #[derive(Serialize)]
        struct Before {
            id: u64,
            kinds: Vec<KindBefore>,
        }
        #[derive(Debug, PartialEq, Deserialize)]
        enum KindAfter {
            Sleep {
                completion_id: u32,
                #[serde(default)]
                woken_by: Option<String>,
            },
            Purge,
            Retry,
        }
        #[derive(Debug, PartialEq, Deserialize)]
        struct After {
            renamed_id: u64,
            kinds: Vec<KindAfter>,
            #[serde(default)]
            pinned_version: Option<String>,
        }
        let old = encode(&Before { id: 7, kinds: vec![KindBefore::Sleep { completion_id: 3 }, KindBefore::Cleanup] });
        assert_eq!(
            decode::<After>(&old, "t").unwrap(),
            After {
                renamed_id: 7,
                kinds: vec![KindAfter::Sleep { completion_id: 3, woken_by: None }, KindAfter::Purge],
                pinned_version: None
            }
        );
    }
}
