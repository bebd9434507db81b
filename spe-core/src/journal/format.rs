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
//! followed by a continuation byte (`0x80..=0xBF`); `0x4A` is not one, and a
//! payload cannot end with a lead byte, so no magic starts inside a UTF-8
//! payload. After a damaged frame the reader resynchronises on the next magic
//! whose frame validates.
//!
//! # Linear time
//!
//! The positions of the magic are found once. A frame with another magic
//! starting inside it (after its own, other than as its checksum field, which
//! may by chance spell the magic) is invalid **before** its checksum is
//! computed. So the frames whose checksum is computed never start inside one
//! another's payload; each byte is checksummed at most twice while framing,
//! plus at most twice more while telling a torn tail from damage, whatever the
//! file holds (a crafted file of headers claiming 1 MiB each included).
//!
//! # Torn tail or damage
//!
//! A crash during an append can only leave the last frame incomplete (its
//! header or its payload runs past the end of the file), or leave zeros
//! where the data was never written. Only that is a *torn tail*, cut off on
//! open. Anything else with no valid frame after it — a complete frame whose
//! checksum fails (bit rot in an acknowledged record), a damaged length or
//! magic, garbage — is damage: reported and kept, like damage mid-file.

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
/// Offset of the checksum in a frame's header.
const CRC_OFFSET: usize = 8;
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
    // A crash while the file was being created leaves a prefix of the
    // header, or zeros where the header was to be (file systems that extend
    // the length before the data).
    if buf.len() <= HEADER_LEN && buf.iter().all(|b| *b == 0) {
        return HeaderCheck::Uninitialised;
    }
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

/// The highest format version a newer build could plausibly have written;
/// a version field above it (or 0) is not a version, it is damage.
const MAX_PLAUSIBLE_VERSION: u32 = 255;

/// Whether the first [`HEADER_LEN`] bytes of `buf` are this format's header
/// damaged, rather than another file's or a newer format's: at most two bits
/// off the expected header, with the magic hit or a version field that no
/// build could have written (0, or above [`MAX_PLAUSIBLE_VERSION`]). A
/// version one bit off that could be real (3, 5, 9, …) is not taken for
/// damage: a newer build's file is never rewritten.
pub(super) fn damaged_header(buf: &[u8]) -> bool {
    let Some(found) = buf.get(..HEADER_LEN) else {
        return false;
    };
    let expected = header();
    let bits: u32 = found
        .iter()
        .zip(expected.iter())
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    if bits == 0 || bits > 2 {
        return false;
    }
    let version = u32::from_le_bytes([found[8], found[9], found[10], found[11]]);
    found[..8] != FILE_MAGIC || version == 0 || version > MAX_PLAUSIBLE_VERSION
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

/// A frame header: its length bytes, the length, and the checksum.
struct FrameHeader {
    len_bytes: [u8; 4],
    len: usize,
    crc: u32,
}

/// The header of a frame at the start of `rest`: `None` without the magic or
/// a full header. The length is not checked.
fn frame_header(rest: &[u8]) -> Option<FrameHeader> {
    let head = rest.get(..FRAME_HEADER_LEN)?;
    if head[..4] != FRAME_MAGIC {
        return None;
    }
    let len_bytes = [head[4], head[5], head[6], head[7]];
    Some(FrameHeader {
        len_bytes,
        len: usize::try_from(u32::from_le_bytes(len_bytes)).unwrap_or(usize::MAX),
        crc: u32::from_le_bytes([head[8], head[9], head[10], head[11]]),
    })
}

/// Reads frames off a buffer, counting the bytes it checksums.
struct Reader<'a> {
    buf: &'a [u8],
    /// Every offset where the frame magic starts, in order.
    magics: Vec<usize>,
    /// Bytes checksummed so far.
    checksummed: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], start: usize) -> Reader<'a> {
        let magics = buf
            .get(start..)
            .unwrap_or_default()
            .windows(FRAME_MAGIC.len())
            .enumerate()
            .filter(|(_, w)| *w == FRAME_MAGIC)
            .map(|(i, _)| start + i)
            .collect();
        Reader {
            buf,
            magics,
            checksummed: 0,
        }
    }

    /// The index in `magics` of the first magic strictly after `pos`.
    fn first_magic_after(&self, pos: usize) -> usize {
        self.magics.partition_point(|&m| m <= pos)
    }

    /// The first magic strictly after the frame start `pos`, other than one
    /// spelled by the checksum field of that frame.
    fn next_magic_in_frame(&self, pos: usize) -> Option<usize> {
        let i = self.first_magic_after(pos);
        let mut found = self.magics.get(i..).unwrap_or_default().iter();
        let first = found.next().copied();
        if first == Some(pos + CRC_OFFSET) {
            found.next().copied()
        } else {
            first
        }
    }

    fn checksum(&mut self, len_bytes: [u8; 4], payload: &[u8]) -> u32 {
        self.checksummed += len_bytes.len() + payload.len();
        checksum(len_bytes, payload)
    }

    /// The valid frame at `pos`: its payload, and the offset just past it.
    fn frame_at(&mut self, pos: usize) -> Option<(&'a [u8], usize)> {
        let buf = self.buf;
        let head = frame_header(buf.get(pos..)?)?;
        if head.len > MAX_PAYLOAD_LEN {
            return None;
        }
        let start = pos + FRAME_HEADER_LEN;
        let end = start + head.len;
        // No payload holds the magic (see the module documentation): another
        // frame starts inside this one, so this one is not valid. Checked
        // before the checksum, which keeps the scan linear.
        if self.next_magic_in_frame(pos).is_some_and(|m| m < end) {
            return None;
        }
        let payload = buf.get(start..end)?;
        (self.checksum(head.len_bytes, payload) == head.crc).then_some((payload, end))
    }

    /// The next valid frame strictly after `pos`: its offset, payload and end.
    fn next_valid_frame(&mut self, pos: usize) -> Option<(usize, &'a [u8], usize)> {
        let mut i = self.first_magic_after(pos);
        while let Some(&candidate) = self.magics.get(i) {
            if let Some((payload, end)) = self.frame_at(candidate) {
                return Some((candidate, payload, end));
            }
            i += 1;
        }
        None
    }

    /// Where the torn tail begins in `buf[pos..]`, which holds no valid
    /// frame (`buf.len()` if there is none): the earliest of the trailing
    /// zeros and the start of an incomplete last frame.
    fn torn_from(&mut self, pos: usize) -> usize {
        let buf = self.buf;
        let zeros = buf
            .get(pos..)
            .unwrap_or_default()
            .iter()
            .rev()
            .take_while(|&&b| b == 0)
            .count();
        let zeros_from = buf.len() - zeros;
        // The incomplete frame of a crash is the last one written: it starts
        // at `pos`, at one of the last two magics (the last may be spelled by
        // its checksum), or with a magic cut short at the very end.
        let mut candidates = vec![pos];
        let after = self.first_magic_after(pos);
        candidates.extend(
            self.magics
                .get(after..)
                .unwrap_or_default()
                .iter()
                .rev()
                .take(2),
        );
        candidates.extend((1..FRAME_MAGIC.len()).filter_map(|k| buf.len().checked_sub(k)));
        candidates.retain(|&c| c >= pos && c < zeros_from);
        candidates.sort_unstable();
        candidates.dedup();
        for candidate in candidates {
            if self.is_incomplete_last_frame(candidate) {
                return candidate;
            }
        }
        zeros_from
    }

    /// Whether `buf[pos..]` is the beginning of a frame cut short by the end
    /// of the file, with nothing written after it.
    fn is_incomplete_last_frame(&mut self, pos: usize) -> bool {
        let rest = self.buf.get(pos..).unwrap_or_default();
        let Some(head) = frame_header(rest) else {
            // A header cut short: a prefix of the magic, and a plausible length.
            let magic_part = &rest[..rest.len().min(FRAME_MAGIC.len())];
            let len_ok = match rest.get(4..8) {
                Some(len) => {
                    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
                    usize::try_from(len).is_ok_and(|len| len <= MAX_PAYLOAD_LEN)
                }
                None => true,
            };
            return !rest.is_empty()
                && rest.len() < FRAME_HEADER_LEN
                && FRAME_MAGIC.starts_with(magic_part)
                && len_ok;
        };
        let payload = &rest[FRAME_HEADER_LEN..];
        if head.len > MAX_PAYLOAD_LEN || head.len <= payload.len() {
            // Impossible, or complete: damage.
            return false;
        }
        if self.next_magic_in_frame(pos).is_some() {
            // Something was written after it: not the last append.
            return false;
        }
        // A complete record whose length field was damaged is damage too:
        // its checksum matches with the length of what is there. (The payload
        // is shorter than `head.len`, so its length fits in a u32.)
        let actual = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        self.checksum(actual.to_le_bytes(), payload) != head.crc
    }
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
    /// Damaged bytes, kept in the file: followed by a valid frame, by the
    /// torn tail, or by the end of the file.
    Damaged { offset: usize, len: usize },
}

/// The result of scanning a journal's frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scan<'a> {
    /// Frames and damaged regions, in file order, from `start` to `torn_from`
    /// without a gap.
    pub items: Vec<Item<'a>>,
    /// Where the torn tail begins (the length of the file if there is none):
    /// the file is cut there, and new records go there.
    pub torn_from: usize,
    /// Bytes checksummed while scanning (linear in the length of the file).
    pub checksummed: usize,
}

/// Scans the frames of `buf` from `start` (just past the header).
///
/// Damage is a [`Item::Damaged`] region, up to the next valid frame or, at
/// the end, up to the torn tail (see the module documentation), which is
/// left out: `torn_from` says where it begins.
pub(super) fn scan(buf: &[u8], start: usize) -> Scan<'_> {
    let mut reader = Reader::new(buf, start);
    let mut items = Vec::new();
    let mut pos = start;
    let mut torn_from = buf.len().max(start);
    while pos < buf.len() {
        // The frame here, or the next valid one after damaged bytes.
        let found = match reader.frame_at(pos) {
            Some((payload, end)) => Some((pos, payload, end)),
            None => reader.next_valid_frame(pos),
        };
        let Some((offset, payload, end)) = found else {
            torn_from = reader.torn_from(pos);
            if torn_from > pos {
                items.push(Item::Damaged {
                    offset: pos,
                    len: torn_from - pos,
                });
            }
            break;
        };
        if offset > pos {
            items.push(Item::Damaged {
                offset: pos,
                len: offset - pos,
            });
        }
        items.push(Item::Frame {
            offset,
            len: end - offset,
            payload,
        });
        pos = end;
    }
    Scan {
        items,
        torn_from,
        checksummed: reader.checksummed,
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
        assert_eq!(check_header(&[0; HEADER_LEN]), HeaderCheck::Uninitialised);
        assert_eq!(check_header(&[0; 3]), HeaderCheck::Uninitialised);
        assert_eq!(check_header(&[0; HEADER_LEN + 1]), HeaderCheck::BadMagic);
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
        assert_eq!(scan.torn_from, buf.len());
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
        assert!(Reader::new(&frame, 0).frame_at(0).is_none());
    }

    #[test]
    fn damage_in_the_middle_is_a_region_and_the_tail_is_cut() {
        let (mut buf, offsets) = file_with(&[b"{\"a\":1}", b"{\"b\":2}", b"{\"c\":3}"]);
        buf[offsets[1] + 14] ^= 0x01;
        let tail_start = buf.len();
        buf.extend_from_slice(&encode_frame(b"{\"d\":4}")[..10]);
        let scan = scan(&buf, HEADER_LEN);
        assert_eq!(scan.torn_from, tail_start);
        assert_eq!(
            scan.items[1],
            Item::Damaged {
                offset: offsets[1],
                len: offsets[2] - offsets[1]
            }
        );
        assert_eq!(scan.items.len(), 3);
    }

    /// Where the torn tail begins, and the damaged regions.
    fn torn_from_and_damage(buf: &[u8]) -> (usize, Vec<(usize, usize)>) {
        let scan = scan(buf, HEADER_LEN);
        let damage = scan
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Damaged { offset, len } => Some((*offset, *len)),
                Item::Frame { .. } => None,
            })
            .collect();
        (scan.torn_from, damage)
    }

    #[test]
    fn a_flipped_bit_anywhere_in_the_last_frame_is_damage_not_a_torn_tail() {
        let (buf, offsets) = file_with(&[b"{\"a\":1}", b"{\"b\":2}", b"{\"c\":\"the last\"}"]);
        let last = offsets[2];
        for at in last..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[at] ^= 1 << bit;
                assert_eq!(
                    torn_from_and_damage(&damaged),
                    (buf.len(), vec![(last, buf.len() - last)]),
                    "bit {bit} of byte {at} flipped"
                );
            }
        }
    }

    #[test]
    fn an_incomplete_last_frame_is_a_torn_tail() {
        let (buf, _) = file_with(&[b"{\"a\":1}", b"{\"b\":2}"]);
        let whole = encode_frame(b"{\"c\":3}");
        for cut in 1..whole.len() {
            let mut torn = buf.clone();
            torn.extend_from_slice(&whole[..cut]);
            assert_eq!(
                torn_from_and_damage(&torn),
                (buf.len(), vec![]),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn trailing_zeros_are_a_torn_tail() {
        let (buf, offsets) = file_with(&[b"{\"a\":1}", b"{\"b\":2}"]);
        for zeros in [1, 4, 11, 12, 13, 4096] {
            let mut torn = buf.clone();
            torn.resize(buf.len() + zeros, 0);
            assert_eq!(
                torn_from_and_damage(&torn),
                (buf.len(), vec![]),
                "{zeros} zeros"
            );
        }
        // Zeros after a damaged last record: the record is damage, the zeros are torn.
        let mut torn = buf.clone();
        torn[offsets[1] + 13] ^= 0x10;
        torn.resize(buf.len() + 4096, 0);
        assert_eq!(
            torn_from_and_damage(&torn),
            (buf.len(), vec![(offsets[1], buf.len() - offsets[1])])
        );
    }

    #[test]
    fn a_torn_frame_after_a_damaged_last_record_is_cut_and_the_record_kept() {
        let (mut buf, offsets) = file_with(&[b"{\"a\":1}", b"{\"b\":2}"]);
        let end = buf.len();
        let whole = encode_frame(b"{\"c\":3}");
        buf.extend_from_slice(&whole[..whole.len() - 1]);
        // The checksum, then the length (now claiming past the end of the file).
        for at in [offsets[1] + 9, offsets[1] + 4] {
            let mut damaged = buf.clone();
            damaged[at] ^= 0x08;
            assert_eq!(
                torn_from_and_damage(&damaged),
                (end, vec![(offsets[1], end - offsets[1])]),
                "byte {at} damaged"
            );
        }
    }

    #[test]
    fn garbage_after_the_last_frame_is_damage() {
        let (mut buf, _) = file_with(&[b"{\"a\":1}"]);
        let end = buf.len();
        buf.extend_from_slice(b"not a frame at all, but not zeros either");
        assert_eq!(
            torn_from_and_damage(&buf),
            (buf.len(), vec![(end, buf.len() - end)])
        );
    }

    /// A frame header claiming `len` bytes with a wrong checksum.
    fn bogus_header(len: u32) -> Vec<u8> {
        let mut h = FRAME_MAGIC.to_vec();
        h.extend_from_slice(&len.to_le_bytes());
        h.extend_from_slice(&[0; 4]);
        h
    }

    #[test]
    fn headers_claiming_long_payloads_are_not_checksummed_again_and_again() {
        // Only bogus headers: every resynchronisation candidate claims 256 KiB.
        let mut buf = header().to_vec();
        while buf.len() < 512 << 10 {
            buf.extend_from_slice(&bogus_header(256 << 10));
        }
        let found = scan(&buf, HEADER_LEN);
        assert!(
            found.checksummed <= buf.len(),
            "{} bytes checksummed for a {}-byte file",
            found.checksummed,
            buf.len()
        );

        // Valid frames, each after a bogus header: the frame-by-frame path.
        let mut buf = header().to_vec();
        let good = encode_frame(b"{\"a\":1}");
        let mut frames = 0;
        while buf.len() < 512 << 10 {
            buf.extend_from_slice(&bogus_header(256 << 10));
            buf.extend_from_slice(&good);
            frames += 1;
        }
        let found = scan(&buf, HEADER_LEN);
        assert!(
            found.checksummed <= buf.len(),
            "{} bytes checksummed for a {}-byte file",
            found.checksummed,
            buf.len()
        );
        let read = found
            .items
            .iter()
            .filter(|i| matches!(i, Item::Frame { .. }))
            .count();
        assert_eq!(read, frames);
    }

    /// `prefix` and 4 more bytes, chosen so that the frame of that payload has
    /// the checksum `crc` (CRC is affine in the last 4 bytes: solve for them).
    fn payload_with_checksum(prefix: &[u8], crc: u32) -> Vec<u8> {
        let with = |x: u32| {
            let mut p = prefix.to_vec();
            p.extend_from_slice(&x.to_le_bytes());
            p
        };
        let len = u32::try_from(prefix.len() + 4).unwrap().to_le_bytes();
        let f = |x: u32| checksum(len, &with(x));
        let base = f(0);
        // basis[b]: (image, preimage) with the image's highest set bit at b.
        let mut basis: [Option<(u32, u32)>; 32] = [None; 32];
        for i in 0..32 {
            let (mut image, mut pre) = (f(1 << i) ^ base, 1u32 << i);
            for bit in (0..32).rev() {
                if image >> bit & 1 == 0 {
                    continue;
                }
                match basis[bit] {
                    Some((bi, bp)) => (image, pre) = (image ^ bi, pre ^ bp),
                    None => {
                        basis[bit] = Some((image, pre));
                        break;
                    }
                }
            }
        }
        let (mut want, mut x) = (crc ^ base, 0u32);
        for bit in (0..32).rev() {
            if want >> bit & 1 == 1 {
                let (bi, bp) = basis[bit].unwrap();
                (want, x) = (want ^ bi, x ^ bp);
            }
        }
        assert_eq!(want, 0);
        with(x)
    }

    #[test]
    fn a_frame_whose_checksum_spells_the_magic_is_still_read() {
        let payload = payload_with_checksum(b"{\"a\":1}", u32::from_le_bytes(FRAME_MAGIC));
        let forged = encode_frame(&payload);
        assert_eq!(forged[8..12], FRAME_MAGIC);
        assert!(!payload.windows(4).any(|w| w == FRAME_MAGIC));
        let next = encode_frame(b"{\"b\":2}");
        // Read in turn, and found again after damage.
        for garbage in [&b""[..], b"xx"] {
            let mut buf = header().to_vec();
            buf.extend_from_slice(garbage);
            buf.extend_from_slice(&forged);
            buf.extend_from_slice(&next);
            let found = scan(&buf, HEADER_LEN);
            assert_eq!(found.torn_from, buf.len());
            let frames: Vec<_> = found
                .items
                .iter()
                .filter_map(|i| match i {
                    Item::Frame { payload, .. } => Some(payload.to_vec()),
                    Item::Damaged { .. } => None,
                })
                .collect();
            assert_eq!(frames, [payload.clone(), b"{\"b\":2}".to_vec()]);
        }
        // Cut short, it is a torn tail still.
        let mut buf = header().to_vec();
        buf.extend_from_slice(&forged[..forged.len() - 2]);
        assert_eq!(torn_from_and_damage(&buf), (HEADER_LEN, vec![]));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..proptest::prelude::ProptestConfig::default() })]

        /// Whatever the damage, each byte is checksummed a bounded number of
        /// times, and the items tile the file up to the torn tail.
        #[test]
        fn scanning_is_linear_and_tiles_the_file(
            payloads in proptest::collection::vec("[a-z\"{}:é ]{0,40}", 0..12),
            edits in proptest::collection::vec((0.0f64..1.0, 0usize..5, 0u32..300), 0..6),
        ) {
            let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_bytes()).collect();
            let (mut buf, _) = file_with(&refs);
            for (at, what, n) in edits {
                let at = HEADER_LEN + ((at * (buf.len() - HEADER_LEN) as f64) as usize);
                let at = at.min(buf.len());
                match what {
                    0 => if at < buf.len() { buf[at] ^= 1 << (n % 8) },
                    1 => buf.truncate(at),
                    2 => { buf.splice(at..at, bogus_header(n)); }
                    3 => { buf.splice(at..at, FRAME_MAGIC); }
                    _ => buf.resize(buf.len() + n as usize, 0),
                }
            }
            let found = scan(&buf, HEADER_LEN);
            proptest::prop_assert!(found.checksummed <= 4 * buf.len());
            let mut pos = HEADER_LEN;
            for item in &found.items {
                let (offset, len) = match item {
                    Item::Frame { offset, len, .. } | Item::Damaged { offset, len } => (*offset, *len),
                };
                proptest::prop_assert_eq!(offset, pos);
                pos += len;
            }
            proptest::prop_assert_eq!(pos, found.torn_from);
            proptest::prop_assert!(found.torn_from <= buf.len());
        }
    }
}
