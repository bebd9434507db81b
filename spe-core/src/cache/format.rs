//! The on-disk layout of one cache generation file: a fixed 44-byte header,
//! then the JSON payload. The table is in the documentation of [`Cache`](super::Cache).

use chrono::{DateTime, Utc};

/// The 8 bytes every cache generation file starts with: `\x89SPEC\r\n\x1a`.
///
/// Like PNG's signature: the non-ASCII first byte catches 7-bit transfers, the
/// `\r\n` catches newline conversion, and `\x1a` stops `type` on Windows.
///
/// ```
/// assert_eq!(&spe_core::CACHE_MAGIC, b"\x89SPEC\r\n\x1a");
/// ```
pub const CACHE_MAGIC: [u8; 8] = *b"\x89SPEC\r\n\x1a";

/// The format version this crate writes, and the only one it reads.
///
/// ```
/// assert_eq!(spe_core::CACHE_FORMAT_VERSION, 1);
/// ```
pub const CACHE_FORMAT_VERSION: u16 = 1;

/// Length in bytes of the header that precedes the payload.
///
/// ```
/// assert_eq!(spe_core::CACHE_HEADER_LEN, 44);
/// ```
pub const CACHE_HEADER_LEN: usize = 44;

const VERSION_AT: usize = 8;
const FLAGS_AT: usize = 10;
const RESERVED_AT: usize = 12;
const GENERATION_AT: usize = 16;
const WRITTEN_AT_AT: usize = 24;
const PAYLOAD_LEN_AT: usize = 32;
const CRC_AT: usize = 40;

/// Why a cache generation file was rejected (and quarantined) on load.
///
/// ```
/// use spe_core::CorruptionReason;
/// let r = CorruptionReason::UnsupportedVersion(7);
/// assert_eq!(r.to_string(), "unsupported format version 7 (this build reads version 1)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptionReason {
    /// The file ends before its header, or before the payload its header announces.
    #[error("truncated: the file is shorter than its header says")]
    Truncated,
    /// The file is longer than its header announces.
    #[error("trailing bytes after the payload")]
    TrailingBytes,
    /// The file does not start with [`CACHE_MAGIC`]: not a cache file, or its first bytes are damaged.
    #[error("bad magic: not an SP-E cache file")]
    BadMagic,
    /// The header names a format version this build does not read.
    #[error("unsupported format version {0} (this build reads version {CACHE_FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    /// The crc32c stored in the header does not match the header and payload.
    #[error("checksum mismatch: the header or payload is damaged")]
    ChecksumMismatch,
    /// The checksum is right, but the header sets flags this build does not know.
    #[error("unknown header flags {0:#06x}")]
    UnknownFlags(u16),
    /// The checksum is right, but the reserved header bytes are not zero.
    #[error("reserved header bytes are not zero")]
    ReservedNotZero,
    /// The checksum is right, but the written-at timestamp is out of range.
    #[error("written-at timestamp {0} ms is out of range")]
    InvalidTimestamp(i64),
    /// The generation number in the header differs from the one in the file name.
    #[error("generation {in_header} in the header, {in_name} in the file name")]
    GenerationMismatch {
        /// The generation in the file name.
        in_name: u64,
        /// The generation in the header.
        in_header: u64,
    },
    /// The file or its announced payload exceeds
    /// [`CacheConfig::max_payload_bytes`](super::CacheConfig::max_payload_bytes).
    #[error("payload of {0} bytes exceeds the configured limit")]
    TooLarge(u64),
    /// The checksum is right, but the payload is not JSON of the cached type
    /// (typically: the type changed between versions of the program).
    #[error("payload does not decode: {0}")]
    Undecodable(String),
    /// The payload decodes, but the value breaks a rule of its type (see
    /// [`Cache::open_checked`](super::Cache::open_checked)).
    #[error("invalid value: {0}")]
    Invalid(String),
}

/// A header and payload that passed every check but the JSON decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decoded<'a> {
    pub(crate) generation: u64,
    pub(crate) written_at: DateTime<Utc>,
    pub(crate) payload: &'a [u8],
}

/// Encodes one generation file: header followed by `payload`.
pub(crate) fn encode(generation: u64, written_at_ms: i64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CACHE_HEADER_LEN + payload.len());
    out.extend_from_slice(&CACHE_MAGIC);
    out.extend_from_slice(&CACHE_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // flags
    out.extend_from_slice(&0u32.to_le_bytes()); // reserved
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&written_at_ms.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    debug_assert_eq!(out.len(), CRC_AT);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out), payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(&bytes[at..at + 2]);
    u16::from_le_bytes(b)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Checks a whole generation file. Never panics, whatever the bytes.
///
/// Order of the checks: magic, version (a future version may lay its header
/// out differently, so nothing after it is read), length, limit, checksum,
/// then the fields the checksum vouches for.
pub(crate) fn decode(
    bytes: &[u8],
    max_payload_bytes: u64,
) -> Result<Decoded<'_>, CorruptionReason> {
    if bytes.len() < CACHE_MAGIC.len() {
        return Err(if CACHE_MAGIC.starts_with(bytes) {
            CorruptionReason::Truncated
        } else {
            CorruptionReason::BadMagic
        });
    }
    if bytes[..CACHE_MAGIC.len()] != CACHE_MAGIC {
        return Err(CorruptionReason::BadMagic);
    }
    if bytes.len() < VERSION_AT + 2 {
        return Err(CorruptionReason::Truncated);
    }
    let version = u16_at(bytes, VERSION_AT);
    if version != CACHE_FORMAT_VERSION {
        return Err(CorruptionReason::UnsupportedVersion(version));
    }
    if bytes.len() < CACHE_HEADER_LEN {
        return Err(CorruptionReason::Truncated);
    }
    let payload_len = u64_at(bytes, PAYLOAD_LEN_AT);
    if payload_len > max_payload_bytes {
        return Err(CorruptionReason::TooLarge(payload_len));
    }
    let available = (bytes.len() - CACHE_HEADER_LEN) as u64;
    if available < payload_len {
        return Err(CorruptionReason::Truncated);
    }
    if available > payload_len {
        return Err(CorruptionReason::TrailingBytes);
    }
    let payload = &bytes[CACHE_HEADER_LEN..];
    let computed = crc32c::crc32c_append(crc32c::crc32c(&bytes[..CRC_AT]), payload);
    if computed != u32_at(bytes, CRC_AT) {
        return Err(CorruptionReason::ChecksumMismatch);
    }
    let flags = u16_at(bytes, FLAGS_AT);
    if flags != 0 {
        return Err(CorruptionReason::UnknownFlags(flags));
    }
    if u32_at(bytes, RESERVED_AT) != 0 {
        return Err(CorruptionReason::ReservedNotZero);
    }
    let written_at_ms = i64::from_le_bytes(u64_at(bytes, WRITTEN_AT_AT).to_le_bytes());
    let written_at = DateTime::from_timestamp_millis(written_at_ms)
        .ok_or(CorruptionReason::InvalidTimestamp(written_at_ms))?;
    Ok(Decoded {
        generation: u64_at(bytes, GENERATION_AT),
        written_at,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 1 << 20;

    fn sample() -> Vec<u8> {
        encode(0x0102_0304_0506_0708, 1_767_225_600_123, br#"[1,2,3]"#)
    }

    #[test]
    fn layout_is_byte_for_byte_as_documented() {
        let b = sample();
        assert_eq!(b.len(), CACHE_HEADER_LEN + 7);
        assert_eq!(&b[0..8], b"\x89SPEC\r\n\x1a");
        assert_eq!(&b[8..10], &[1, 0]); // version 1, little-endian
        assert_eq!(&b[10..12], &[0, 0]); // flags
        assert_eq!(&b[12..16], &[0, 0, 0, 0]); // reserved
        assert_eq!(&b[16..24], &[8, 7, 6, 5, 4, 3, 2, 1]); // generation
        assert_eq!(&b[24..32], &1_767_225_600_123i64.to_le_bytes()); // written at
        assert_eq!(&b[32..40], &7u64.to_le_bytes()); // payload length
        let crc = crc32c::crc32c(&[&b[..40], &b[44..]].concat());
        assert_eq!(&b[40..44], &crc.to_le_bytes());
        assert_eq!(&b[44..], b"[1,2,3]");
        let d = decode(&b, MAX).unwrap();
        assert_eq!(d.generation, 0x0102_0304_0506_0708);
        assert_eq!(d.written_at.timestamp_millis(), 1_767_225_600_123);
        assert_eq!(d.payload, b"[1,2,3]");
    }

    #[test]
    fn every_cut_is_truncated() {
        let b = sample();
        for cut in 0..b.len() {
            assert_eq!(
                decode(&b[..cut], MAX),
                Err(CorruptionReason::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let b = sample();
        for bit in 0..b.len() * 8 {
            let mut c = b.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode(&c, MAX).is_err(),
                "bit {bit} flipped went undetected"
            );
        }
    }

    #[test]
    fn each_reason_is_reported() {
        let b = sample();
        let mut c = b.clone();
        c[0] = b'X';
        assert_eq!(decode(&c, MAX), Err(CorruptionReason::BadMagic));
        assert_eq!(decode(b"junk", MAX), Err(CorruptionReason::BadMagic));
        let mut c = b.clone();
        c[8..10].copy_from_slice(&2u16.to_le_bytes());
        assert_eq!(
            decode(&c, MAX),
            Err(CorruptionReason::UnsupportedVersion(2))
        );
        let mut c = b.clone();
        c.push(b' ');
        assert_eq!(decode(&c, MAX), Err(CorruptionReason::TrailingBytes));
        let mut c = b.clone();
        c[45] ^= 0x01;
        assert_eq!(decode(&c, MAX), Err(CorruptionReason::ChecksumMismatch));
        assert_eq!(decode(&b, 6), Err(CorruptionReason::TooLarge(7)));

        // Fields behind a valid checksum: re-seal after editing.
        let reseal = |mut c: Vec<u8>| {
            let crc = crc32c::crc32c(&[&c[..40], &c[44..]].concat());
            c[40..44].copy_from_slice(&crc.to_le_bytes());
            c
        };
        let mut c = b.clone();
        c[10] = 0x04;
        assert_eq!(
            decode(&reseal(c), MAX),
            Err(CorruptionReason::UnknownFlags(4))
        );
        let mut c = b.clone();
        c[13] = 1;
        assert_eq!(
            decode(&reseal(c), MAX),
            Err(CorruptionReason::ReservedNotZero)
        );
        let mut c = b.clone();
        c[24..32].copy_from_slice(&i64::MAX.to_le_bytes());
        assert_eq!(
            decode(&reseal(c), MAX),
            Err(CorruptionReason::InvalidTimestamp(i64::MAX))
        );
    }
}
