//! Framing of service protocol messages (spec §4).
//!
//! Every message is an 8-byte header followed by a protobuf payload. The header is
//! one big-endian `u64`:
//!
//! ```text
//! bits 63..48  message type (u16)
//! bits 47..32  flags (u16; bit 47 = REQUESTED_ACK, used only by V7)
//! bits 31..0   payload length in bytes (u32), header excluded
//! ```
//!
//! [`decode`] reads from a growing buffer and answers `Ok(None)` while a frame is
//! incomplete ("need more bytes" is a value, not an error), leaving the buffer
//! untouched. Encoders append to a `BytesMut` and always write flags `0`: V5/V6
//! peers never need the ack flag, and shared-core SDKs fail on `CommandAck`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Length of the frame header in bytes.
pub const HEADER_LEN: usize = 8;

/// Largest payload accepted by default: 32 MiB, Restate's message size limit.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 32 * 1024 * 1024;

/// The REQUESTED_ACK flag (most significant bit of the flags field). V7 only.
pub const REQUESTED_ACK_FLAG: u16 = 0x8000;

/// One framed message: its type code, header flags and undecoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Message type code; see [`super::messages::ty`].
    pub ty: u16,
    /// Header flags as received. Reserved bits are ignored on receipt.
    pub flags: u16,
    /// The protobuf payload, without the header.
    pub payload: Bytes,
}

impl Frame {
    /// Whether the sender set the REQUESTED_ACK flag (only meaningful in V7).
    pub fn requests_ack(&self) -> bool {
        self.flags & REQUESTED_ACK_FLAG != 0
    }

    /// Decodes the payload as protobuf message `M`.
    pub fn decode_message<M: prost::Message + Default>(&self) -> Result<M, prost::DecodeError> {
        M::decode(self.payload.clone())
    }

    /// Appends this frame (header with its flags, then payload) to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        put_header(self.ty, self.flags, self.payload.len(), out);
        out.extend_from_slice(&self.payload);
    }
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The header announces a payload longer than the configured limit.
    #[error("message of type {ty:#06x} announces a payload of {length} bytes, above the limit of {max} bytes")]
    TooLarge {
        /// Type code from the offending header.
        ty: u16,
        /// Payload length announced by the header.
        length: u32,
        /// The limit in force.
        max: u32,
    },
}

/// Reads one frame from the front of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole frame; the bytes stay in
/// `buf` (more capacity may be reserved for the rest). On success the frame's bytes
/// are removed from `buf`. A header announcing more than `max_len` payload bytes is
/// an error, reported before waiting for the payload; the stream cannot be resumed
/// after it.
pub fn decode(buf: &mut BytesMut, max_len: u32) -> Result<Option<Frame>, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header = u64::from_be_bytes(*header);
    let ty = (header >> 48) as u16;
    let flags = (header >> 32) as u16;
    let length = header as u32;
    if length > max_len {
        return Err(FrameError::TooLarge { ty, length, max: max_len });
    }
    // `length <= max_len <= u32::MAX`, which fits in `usize` on every supported target.
    let total = HEADER_LEN + length as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let payload = buf.split_to(length as usize).freeze();
    Ok(Some(Frame { ty, flags, payload }))
}

/// Appends a frame with type `ty`, flags `0` and `payload` to `out`.
///
/// # Panics
///
/// If `payload` is longer than `u32::MAX` bytes, which no valid message is.
pub fn encode(ty: u16, payload: &[u8], out: &mut BytesMut) {
    put_header(ty, 0, payload.len(), out);
    out.extend_from_slice(payload);
}

/// Appends a frame with type `ty`, flags `0` and the protobuf encoding of `msg` to `out`.
///
/// # Panics
///
/// If the encoded message is longer than `u32::MAX` bytes, which no valid message is.
pub fn encode_message<M: prost::Message>(ty: u16, msg: &M, out: &mut BytesMut) {
    let length = msg.encoded_len();
    put_header(ty, 0, length, out);
    // `encode_raw` cannot fail: `BytesMut` grows as needed.
    msg.encode_raw(out);
}

fn put_header(ty: u16, flags: u16, length: usize, out: &mut BytesMut) {
    let length = u32::try_from(length).expect("protocol payloads are capped far below 4 GiB");
    out.reserve(HEADER_LEN + length as usize);
    out.put_u64((u64::from(ty) << 48) | (u64::from(flags) << 32) | u64::from(length));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::{EndMessage, SleepCommandMessage, ty};

    fn decode_all(buf: &mut BytesMut) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = decode(buf, DEFAULT_MAX_MESSAGE_SIZE).expect("valid frames") {
            frames.push(frame);
        }
        frames
    }

    #[test]
    fn header_layout_is_big_endian_type_flags_length() {
        let mut out = BytesMut::new();
        encode(0x040c, &[1, 2, 3], &mut out);
        assert_eq!(&out[..], &[0x04, 0x0c, 0, 0, 0, 0, 0, 3, 1, 2, 3]);
    }

    #[test]
    fn round_trips_several_frames() {
        let sleep =
            SleepCommandMessage { wake_up_time: 1_700_000_000_000, result_completion_id: 1, name: "nap".into() };
        let mut buf = BytesMut::new();
        encode_message(ty::SLEEP_COMMAND, &sleep, &mut buf);
        encode_message(ty::END, &EndMessage {}, &mut buf);
        encode(0x8011, b"\x08\x02", &mut buf);

        let frames = decode_all(&mut buf);
        assert!(buf.is_empty());
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].ty, ty::SLEEP_COMMAND);
        assert_eq!(frames[0].decode_message::<SleepCommandMessage>(), Ok(sleep));
        assert_eq!(frames[1], Frame { ty: ty::END, flags: 0, payload: Bytes::new() });
        assert_eq!(frames[2].payload, Bytes::from_static(b"\x08\x02"));
    }

    #[test]
    fn partial_input_needs_more_bytes_and_keeps_them() {
        let mut whole = BytesMut::new();
        encode(0x0401, b"hello", &mut whole);
        let whole = whole.freeze();

        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(decode(&mut buf, 1024), Ok(None), "cut at {cut}");
            assert_eq!(&buf[..], &whole[..cut], "bytes kept at cut {cut}");
        }

        // Feeding byte by byte yields the frame exactly once, at the end.
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for byte in whole.iter() {
            buf.put_u8(*byte);
            if let Some(frame) = decode(&mut buf, 1024).expect("valid") {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].payload, Bytes::from_static(b"hello"));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_length_is_an_error_naming_length_and_limit() {
        let mut buf = BytesMut::from(&[0x04, 0x01, 0, 0, 0, 0, 0x10, 0x01][..]);
        let err = decode(&mut buf, 4096).expect_err("too large");
        assert_eq!(err, FrameError::TooLarge { ty: 0x0401, length: 4097, max: 4096 });
        let text = err.to_string();
        assert!(text.contains("4097") && text.contains("4096"), "{text}");
    }

    #[test]
    fn length_equal_to_limit_is_accepted() {
        let mut buf = BytesMut::new();
        encode(0x0401, &[7; 16], &mut buf);
        assert!(decode(&mut buf, 16).expect("at the limit").is_some());
    }

    #[test]
    fn flags_are_kept_on_decode_and_written_back_by_frame_encode() {
        let mut buf = BytesMut::from(&[0x00, 0x05, 0x80, 0x00, 0, 0, 0, 2, 0x08, 0x02][..]);
        let frame = decode(&mut buf, 1024).expect("valid").expect("complete");
        assert_eq!(frame.ty, 0x0005);
        assert!(frame.requests_ack());
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        assert_eq!(&out[..], &[0x00, 0x05, 0x80, 0x00, 0, 0, 0, 2, 0x08, 0x02]);
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic pseudo-random walk over short inputs and small limits.
        let mut seed: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let mut bytes = Vec::new();
            for _ in 0..(seed % 40) {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                // Mostly zero bytes, so that short lengths and whole frames occur too.
                let byte = if seed.is_multiple_of(3) { (seed >> 16) as u8 } else { 0 };
                bytes.push(byte);
            }
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = decode(&mut buf, seed % 64) {}
        }
    }
}
