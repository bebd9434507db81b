//! The on-disk format: a file header, then checksummed record frames.
//!
//! ```text
//! file   := header frame*
//! header := "SPEJRNL\0" (8 bytes) · format version (u32 LE)            = 12 bytes
//! frame  := magic E5 4A 52 1D · len (u32 LE) · crc32c (u32 LE) · payload (len bytes)
//! crc32c  = CRC-32C (Castagnoli) over the 4 length bytes followed by the payload
//! payload = one JSON object (UTF-8), a `JournalEvent`
//! ```
//!
//! The frame magic starts with `0xE5`, a UTF-8 lead byte that must be
//! followed by a continuation byte (`0x80..=0xBF`); `0x4A` is not one, so the
//! magic can never occur inside a JSON payload. After a damaged frame the
//! reader resynchronises on the next magic whose frame validates.

/// File magic, the first 8 bytes of every journal.
pub(super) const FILE_MAGIC: [u8; 8] = *b"SPEJRNL\0";
/// The format version this build writes and reads.
pub(super) const FORMAT_VERSION: u32 = 1;
/// Length of the file header.
pub(super) const HEADER_LEN: usize = 12;
/// Magic at the start of every frame.
pub(super) const FRAME_MAGIC: [u8; 4] = [0xE5, 0x4A, 0x52, 0x1D];
/// Length of a frame's header (magic, length, checksum).
pub(super) const FRAME_HEADER_LEN: usize = 12;
/// Largest payload accepted, on write and on read (1 MiB).
pub(super) const MAX_PAYLOAD_LEN: usize = 1 << 20;

/// The header written at offset 0 of a new journal.
pub(super) fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&FILE_MAGIC);
    h[8..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// What the first bytes of a file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderCheck {
    /// A valid header of the supported version.
    Valid,
    /// An empty file, or a strict prefix of a valid header (a crash while
    /// the file was being created): initialise it.
    Uninitialised,
    /// Not a journal.
    BadMagic,
    /// A journal of another format version.
    BadVersion(u32),
}

/// Checks the header at the start of `buf` (the whole file).
pub(super) fn check_header(buf: &[u8]) -> HeaderCheck {
    let expected = header();
    if buf.len() < HEADER_LEN {
        return if expected.starts_with(buf) {
            HeaderCheck::Uninitialised
        } else {
            HeaderCheck::BadMagic
        };
    }
    if buf[..8] != FILE_MAGIC {
        return HeaderCheck::BadMagic;
    }
    let version = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
    if version == FORMAT_VERSION {
        HeaderCheck::Valid
    } else {
        HeaderCheck::BadVersion(version)
    }
}

fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload)
}

/// Frames a payload. The caller has checked `payload.len() <= MAX_PAYLOAD_LEN`.
pub(super) fn encode_frame(payload: &[u8]) -> Vec<u8> {
    // MAX_PAYLOAD_LEN fits in a u32, and the caller bounds the payload by it.
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    frame.extend_from_slice(&FRAME_MAGIC);
    frame.extend_from_slice(&len);
    frame.extend_from_slice(&checksum(len, payload).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The payload of the valid frame at `pos`, and the offset just past it;
/// `None` if there is no complete, valid frame there.
pub(super) fn frame_at(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let head = buf.get(pos..pos.checked_add(FRAME_HEADER_LEN)?)?;
    if head[..4] != FRAME_MAGIC {
        return None;
    }
    let len_bytes = [head[4], head[5], head[6], head[7]];
    let len = usize::try_from(u32::from_le_bytes(len_bytes)).ok()?;
    if len > MAX_PAYLOAD_LEN {
        return None;
    }
    let crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    let start = pos + FRAME_HEADER_LEN;
    let end = start.checked_add(len)?;
    let payload = buf.get(start..end)?;
    (checksum(len_bytes, payload) == crc).then_some((payload, end))
}

/// The offset of the next valid frame strictly after `pos`, if any.
fn next_valid_frame(buf: &[u8], pos: usize) -> Option<usize> {
    let mut from = pos + 1;
    while let Some(rest) = buf.get(from..) {
        let found = rest
            .windows(FRAME_MAGIC.len())
            .position(|w| w == FRAME_MAGIC)?;
        let candidate = from + found;
        if frame_at(buf, candidate).is_some() {
            return Some(candidate);
        }
        from = candidate + 1;
    }
    None
}

/// One thing found while scanning a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Item<'a> {
    /// A valid frame at `offset` (of `len` bytes in all) with its payload.
    Frame {
        offset: usize,
        len: usize,
        payload: &'a [u8],
    },
    /// Damaged bytes followed by a valid frame.
    Damaged { offset: usize, len: usize },
}

/// The result of scanning a journal's frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scan<'a> {
    /// Frames and damaged regions, in file order.
    pub items: Vec<Item<'a>>,
    /// Offset just past the last valid frame (or `start`): where the file is cut.
    pub valid_end: usize,
}

/// Scans the frames of `buf` from `start` (just past the header).
///
/// Damage followed by a valid frame is a [`Item::Damaged`] region; anything
/// after the last valid frame (a torn tail, appended garbage) is left out and
/// `valid_end` says where it begins.
pub(super) fn scan(buf: &[u8], start: usize) -> Scan<'_> {
    let mut items = Vec::new();
    let mut pos = start;
    while pos < buf.len() {
        if let Some((payload, end)) = frame_at(buf, pos) {
            items.push(Item::Frame {
                offset: pos,
                len: end - pos,
                payload,
            });
            pos = end;
            continue;
        }
        match next_valid_frame(buf, pos) {
            Some(next) => {
                items.push(Item::Damaged {
                    offset: pos,
                    len: next - pos,
                });
                pos = next;
            }
            None => break,
        }
    }
    Scan {
        items,
        valid_end: pos.min(buf.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(payloads: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
        let mut buf = header().to_vec();
        let mut offsets = Vec::new();
        for p in payloads {
            offsets.push(buf.len());
            buf.extend_from_slice(&encode_frame(p));
        }
        (buf, offsets)
    }

    #[test]
    fn header_checks() {
        assert_eq!(check_header(&header()), HeaderCheck::Valid);
        assert_eq!(check_header(b""), HeaderCheck::Uninitialised);
        assert_eq!(check_header(b"SPEJ"), HeaderCheck::Uninitialised);
        assert_eq!(check_header(b"hello"), HeaderCheck::BadMagic);
        assert_eq!(
            check_header(b"hello, this is not a journal"),
            HeaderCheck::BadMagic
        );
        let mut h = header();
        h[8] = 2;
        assert_eq!(check_header(&h), HeaderCheck::BadVersion(2));
    }

    #[test]
    fn frame_magic_cannot_occur_in_utf8() {
        // A multi-byte lead byte followed by a byte that is not a continuation.
        assert!((0xC2..=0xF4).contains(&FRAME_MAGIC[0]));
        assert!(!(0x80..=0xBF).contains(&FRAME_MAGIC[1]));
    }

    proptest::proptest! {
        #[test]
        fn json_text_never_holds_the_frame_magic(text in "\\PC*", raw in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let lossy = String::from_utf8_lossy(&raw).into_owned();
            for s in [text, lossy] {
                let json = serde_json::to_vec(&s).unwrap_or_default();
                proptest::prop_assert!(!json.windows(4).any(|w| w == FRAME_MAGIC));
            }
        }
    }

    #[test]
    fn frames_round_trip() {
        let (buf, offsets) = file_with(&[b"{\"a\":1}", b"", b"{\"b\":\"\xc3\xa9\"}"]);
        let scan = scan(&buf, HEADER_LEN);
        assert_eq!(scan.valid_end, buf.len());
        let payloads: Vec<_> = scan
            .items
            .iter()
            .map(|i| match i {
                Item::Frame {
                    offset, payload, ..
                } => (*offset, payload.to_vec()),
                Item::Damaged { .. } => panic!("no damage expected"),
            })
            .collect();
        assert_eq!(payloads[0], (offsets[0], b"{\"a\":1}".to_vec()));
        assert_eq!(payloads[1], (offsets[1], Vec::new()));
        assert_eq!(payloads[2].0, offsets[2]);
    }

    #[test]
    fn oversized_length_is_not_a_frame() {
        let mut frame = encode_frame(b"x");
        frame[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(frame_at(&frame, 0).is_none());
    }

    #[test]
    fn damage_in_the_middle_is_a_region_and_the_tail_is_cut() {
        let (mut buf, offsets) = file_with(&[b"{\"a\":1}", b"{\"b\":2}", b"{\"c\":3}"]);
        buf[offsets[1] + 14] ^= 0x01;
        let tail_start = buf.len();
        buf.extend_from_slice(&encode_frame(b"{\"d\":4}")[..10]);
        let scan = scan(&buf, HEADER_LEN);
        assert_eq!(scan.valid_end, tail_start);
        assert_eq!(
            scan.items[1],
            Item::Damaged {
                offset: offsets[1],
                len: offsets[2] - offsets[1]
            }
        );
        assert_eq!(scan.items.len(), 3);
    }
}
