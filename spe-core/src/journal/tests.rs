//! Unit tests of the journal, on real files in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use super::format::{self, HEADER_LEN};
use super::*;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn journal_in(dir: &tempfile::TempDir) -> (Journal, PathBuf) {
    let path = dir.path().join("incidents.journal");
    (Journal::open(&path).unwrap(), path)
}

fn ids(incidents: &[Incident]) -> Vec<u64> {
    incidents.iter().map(|i| i.id.0).collect()
}

#[test]
fn journal_is_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<Journal>();
}

#[test]
fn round_trip_through_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (j, path) = journal_in(&dir);
    let a = j
        .open_incident(
            "open-meteo",
            IncidentKind::UpstreamTimeout,
            t(0),
            "no answer | 5 s\nretrying",
        )
        .unwrap();
    j.mode_changed(a, Mode::Nominal, Mode::Estimation, t(0))
        .unwrap();
    let b = j
        .open_incident(
            "prediction-engine",
            IncidentKind::ModelCrash,
            t(5),
            "exit 137 — OOM",
        )
        .unwrap();
    j.note(a, t(10), "7 more timeouts").unwrap();
    j.mode_changed(a, Mode::Estimation, Mode::Nominal, t(60))
        .unwrap();
    j.close_incident(a, t(60), "probe ok").unwrap();
    let before = j.incidents(..);
    drop(j);

    let j = Journal::open(&path).unwrap();
    let report = j.open_report();
    assert!(report.is_clean() && !report.created, "{report:?}");
    assert_eq!(report.records_read, 6);
    assert_eq!(j.incidents(..), before);
    assert_eq!(ids(&before), [2, 1]);
    let a = j.incident(a).unwrap();
    assert_eq!(a.details, "no answer | 5 s\nretrying");
    assert_eq!(a.resolution.as_deref(), Some("probe ok"));
    assert_eq!(a.notes, [(t(10), "7 more timeouts".to_owned())]);
    assert_eq!(a.mode_changes.len(), 2);
    assert_eq!(ids(&j.open_incidents()), [b.0]);
}

#[test]
fn ids_continue_after_reopen_even_past_lost_openings() {
    let dir = tempfile::tempdir().unwrap();
    let (j, path) = journal_in(&dir);
    j.open_incident("a", IncidentKind::Other, t(0), "").unwrap();
    let second_at = fs::metadata(&path).unwrap().len() as usize;
    let b = j.open_incident("b", IncidentKind::Other, t(1), "").unwrap();
    j.close_incident(b, t(2), "").unwrap();
    drop(j);

    // Damage the opening of #2: its close is then about an unknown incident,
    // but #2 is still taken.
    let mut bytes = fs::read(&path).unwrap();
    bytes[second_at + 20] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let j = Journal::open(&path).unwrap();
    let report = j.open_report();
    assert_eq!(report.corrupt_regions.len(), 1);
    assert_eq!(report.ignored_events.len(), 1);
    assert_eq!(
        report.ignored_events[0].reason,
        IgnoreReason::UnknownIncident
    );
    assert_eq!(report.ignored_events[0].event.id(), b);
    assert_eq!(ids(&j.incidents(..)), [1]);
    let c = j.open_incident("c", IncidentKind::Other, t(3), "").unwrap();
    assert_eq!(c, IncidentId(3));
}

#[test]
fn a_journal_is_open_once_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let (j, path) = journal_in(&dir);
    let same_file_other_spelling = dir.path().join(".").join("incidents.journal");
    assert!(matches!(
        Journal::open(&same_file_other_spelling),
        Err(JournalError::AlreadyOpen { .. })
    ));
    let clone = j.clone();
    drop(j);
    assert!(matches!(
        Journal::open(&path),
        Err(JournalError::AlreadyOpen { .. })
    ));
    drop(clone);
    Journal::open(&path).unwrap();
}

/// Another path to the same file (a hard link) stands in for a second
/// process: the registry sees two paths, the file's lock sees one file.
#[cfg(unix)]
#[test]
fn a_journal_open_elsewhere_is_locked_and_nothing_is_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let (a, path) = journal_in(&dir);
    a.open_incident("open-meteo", IncidentKind::UpstreamTimeout, t(0), "first")
        .unwrap();
    let link = dir.path().join("link.journal");
    fs::hard_link(&path, &link).unwrap();
    let e = Journal::open(&link).unwrap_err();
    assert!(matches!(e, JournalError::Locked { .. }), "{e}");
    assert!(e.to_string().contains("open in another process"), "{e}");
    let b = a
        .open_incident("open-meteo", IncidentKind::UpstreamTimeout, t(1), "second")
        .unwrap();
    assert_eq!(b, IncidentId(2));
    drop(a);
    // Released with the journal: the other path opens it, all there.
    let again = Journal::open(&link).unwrap();
    assert!(again.open_report().is_clean());
    assert_eq!(ids(&again.open_incidents()), vec![2, 1]);
}

#[test]
fn a_header_with_a_flipped_bit_is_rewritten_and_every_record_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.journal");
    {
        let j = Journal::open(&path).unwrap();
        for m in 0..3 {
            j.open_incident("open-meteo", IncidentKind::UpstreamTimeout, t(m), "x")
                .unwrap();
        }
    }
    let sound = fs::read(&path).unwrap();
    let mut newer_versions = 0;
    for bit in 0..HEADER_LEN * 8 {
        let mut bytes = sound.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        fs::write(&path, &bytes).unwrap();
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        match Journal::open(&path) {
            Ok(j) => {
                let report = j.open_report().clone();
                let saved = report.damaged_header_saved_to.clone().unwrap();
                assert_eq!(fs::read(&saved).unwrap(), &bytes[..HEADER_LEN], "bit {bit}");
                assert!(!report.is_clean());
                assert_eq!(report.records_read, 3, "bit {bit}");
                assert_eq!(ids(&j.open_incidents()), vec![3, 2, 1]);
                drop(j);
                assert_eq!(
                    fs::read(&path).unwrap(),
                    sound,
                    "bit {bit}: header restored"
                );
                fs::remove_file(saved).unwrap();
            }
            Err(JournalError::UnsupportedVersion { found, .. }) => {
                // A number a newer build could have written: left alone.
                assert!(
                    bit >= 64 && (2..=255).contains(&found),
                    "bit {bit}: {found}"
                );
                assert_eq!(found, version);
                assert_eq!(fs::read(&path).unwrap(), bytes, "bit {bit}: untouched");
                newer_versions += 1;
            }
            Err(e) => panic!("bit {bit}: {e}"),
        }
    }
    // 1 -> 3, 5, 9, 17, 33, 65, 129.
    assert_eq!(newer_versions, 7);
    // Without a record behind it, a header a bit off is no proof of a
    // journal: left alone.
    let mut bare = format::header().to_vec();
    bare[0] ^= 1;
    bare.extend_from_slice(b"some other file's bytes");
    fs::write(&path, &bare).unwrap();
    assert!(matches!(
        Journal::open(&path),
        Err(JournalError::NotAJournal { .. })
    ));
    assert_eq!(fs::read(&path).unwrap(), bare);
    // Three bits off: another file.
    let mut far = sound.clone();
    far[0] ^= 0b111;
    fs::write(&path, &far).unwrap();
    assert!(matches!(
        Journal::open(&path),
        Err(JournalError::NotAJournal { .. })
    ));
}

#[test]
fn misuse_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let (j, path) = journal_in(&dir);
    let unknown = IncidentId(42);
    assert!(
        matches!(j.close_incident(unknown, t(0), ""), Err(JournalError::UnknownIncident(id)) if id == unknown)
    );
    assert!(matches!(
        j.mode_changed(unknown, Mode::Nominal, Mode::Estimation, t(0)),
        Err(JournalError::UnknownIncident(_))
    ));
    assert!(matches!(
        j.note(unknown, t(0), ""),
        Err(JournalError::UnknownIncident(_))
    ));
    let id = j
        .open_incident("x", IncidentKind::DiskError, t(0), "")
        .unwrap();
    j.close_incident(id, t(1), "").unwrap();
    assert!(matches!(
        j.close_incident(id, t(2), ""),
        Err(JournalError::AlreadyClosed(_))
    ));
    assert!(matches!(
        j.mode_changed(id, Mode::Estimation, Mode::Nominal, t(2)),
        Err(JournalError::AlreadyClosed(_))
    ));
    j.note(id, t(3), "root cause: full disk").unwrap();
    assert_eq!(j.incident(id).unwrap().notes.len(), 1);

    let len = fs::metadata(&path).unwrap().len();
    let huge = "x".repeat(Journal::MAX_RECORD_BYTES);
    assert!(matches!(
        j.note(id, t(4), huge),
        Err(JournalError::RecordTooLarge { .. })
    ));
    assert_eq!(fs::metadata(&path).unwrap().len(), len, "nothing written");
    drop(j);
    let j = Journal::open(&path).unwrap();
    assert!(j.open_report().is_clean());
    assert_eq!(j.open_report().records_read, 3);
}

#[test]
fn a_close_before_the_start_gives_a_zero_duration() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = journal_in(&dir);
    let id = j
        .open_incident("x", IncidentKind::Other, t(10), "")
        .unwrap();
    let i = j.close_incident(id, t(5), "clock stepped back").unwrap();
    assert_eq!(i.duration(t(100)), TimeDelta::zero());
    let r = j.retex(t(0), t(100), t(100));
    assert_eq!(r.downtime, TimeDelta::zero());
    assert_eq!(r.incident_count, 1);
}

#[test]
fn a_torn_header_is_initialised_but_a_foreign_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torn");
    fs::write(&path, &format::header()[..5]).unwrap();
    let j = Journal::open(&path).unwrap();
    assert!(j.open_report().created);
    drop(j);
    assert_eq!(fs::read(&path).unwrap(), format::header());
    // A crash after the file was extended, before the header was written.
    let path = dir.path().join("zeros");
    fs::write(&path, [0u8; format::HEADER_LEN]).unwrap();
    assert!(Journal::open(&path).unwrap().open_report().created);
    assert_eq!(fs::read(&path).unwrap(), format::header());

    let path = dir.path().join("foreign");
    fs::write(&path, b"SPE").unwrap(); // a prefix of the header
    assert!(Journal::open(&path).unwrap().open_report().created);
    let path = dir.path().join("foreign2");
    fs::write(&path, b"SPX").unwrap();
    assert!(matches!(
        Journal::open(&path),
        Err(JournalError::NotAJournal { .. })
    ));
    assert_eq!(fs::read(&path).unwrap(), b"SPX");
}

#[test]
fn a_valid_frame_with_unknown_content_is_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (j, path) = journal_in(&dir);
    j.open_incident("a", IncidentKind::Other, t(0), "").unwrap();
    drop(j);
    let mut bytes = fs::read(&path).unwrap();
    let odd_at = bytes.len();
    let odd = format::encode_frame(br#"{"event":"exploded","id":1}"#);
    bytes.extend_from_slice(&odd);
    fs::write(&path, &bytes).unwrap();
    {
        let j = Journal::open(&path).unwrap();
        j.open_incident("b", IncidentKind::Other, t(1), "").unwrap();
    }
    let j = Journal::open(&path).unwrap();
    let report = j.open_report();
    assert_eq!(
        report.corrupt_regions,
        [CorruptRegion {
            offset: odd_at as u64,
            len: odd.len() as u64,
            reason: CorruptReason::UndecodableRecord
        }]
    );
    assert_eq!(report.torn_tail_bytes, 0);
    assert_eq!(ids(&j.incidents(..)), [2, 1]);
}

#[test]
fn unknown_kinds_read_as_other() {
    let e: JournalEvent = serde_json::from_str(
        r#"{"event":"opened","id":1,"component":"c","kind":"meteor","at":"2026-01-01T00:00:00Z","details":""}"#,
    )
    .unwrap();
    assert!(matches!(
        e,
        JournalEvent::Opened {
            kind: IncidentKind::Other,
            ..
        }
    ));
}

#[test]
fn range_queries_follow_the_bounds() {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = journal_in(&dir);
    let a = j.open_incident("a", IncidentKind::Other, t(0), "").unwrap();
    j.close_incident(a, t(10), "").unwrap();
    j.open_incident("b", IncidentKind::Other, t(20), "")
        .unwrap(); // open
    assert_eq!(ids(&j.incidents(t(10)..t(20))), [1]);
    assert_eq!(ids(&j.incidents(t(10)..=t(20))), [2, 1]);
    assert_eq!(ids(&j.incidents((Excluded(t(10)), Included(t(20))))), [2]);
    assert_eq!(
        ids(&j.incidents((Excluded(t(10)), Excluded(t(20))))),
        Vec::<u64>::new()
    );
    assert_eq!(
        ids(&j.incidents((Unbounded, Excluded(t(0))))),
        Vec::<u64>::new()
    );
    assert_eq!(ids(&j.incidents(..=t(0))), [1]);
    assert_eq!(ids(&j.incidents(t(1000)..)), [2]);
}

#[test]
fn retex_clips_to_the_period_but_reports_whole_durations() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = journal_in(&dir);
    let day = 24 * 60;
    // Straddles the period start: 4 h, of which 2 h inside.
    let a = j
        .open_incident(
            "open-meteo",
            IncidentKind::UpstreamTimeout,
            t(day - 120),
            "",
        )
        .unwrap();
    j.close_incident(a, t(day + 120), "").unwrap();
    // Entirely before: left out.
    let b = j
        .open_incident("open-meteo", IncidentKind::Upstream5xx, t(0), "")
        .unwrap();
    j.close_incident(b, t(10), "").unwrap();
    // Another component, open, overlapping the first: counts once overall.
    j.open_incident("cache", IncidentKind::CacheCorrupt, t(day + 60), "")
        .unwrap();

    let r = j.retex(t(day), t(2 * day), t(day + 180));
    assert_eq!(r.incident_count, 2);
    assert_eq!(r.still_open, 1);
    assert_eq!(r.downtime, TimeDelta::minutes(180));
    // Down all of the 3 h elapsed so far.
    assert_eq!(r.availability, 0.0);
    assert_eq!(r.mttr, Some(TimeDelta::hours(4)));
    let longest = r.longest_outage.clone().unwrap();
    assert_eq!((longest.id, longest.duration), (a, TimeDelta::hours(4)));
    assert_eq!(r.by_component["open-meteo"].downtime, TimeDelta::hours(2));
    assert_eq!(r.by_component["cache"].downtime, TimeDelta::hours(2));
    assert_eq!(r.by_component["cache"].availability, 1.0 - 2.0 / 3.0);
    assert_eq!(r.by_kind.get(&IncidentKind::Upstream5xx), None);
    assert_eq!(r.by_kind[&IncidentKind::CacheCorrupt], 1);
    let md = r.to_markdown();
    assert!(
        md.contains("| #3 | 2026-01-02 01:00:00 | ongoing | 2 h | cache | cache_corrupt | — |"),
        "{md}"
    );
    // A review is data: it round-trips through JSON (the Python binding
    // pickles it so), durations exactly.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["downtime"], serde_json::json!([10_800, 0]));
    assert_eq!(json["by_kind"]["cache_corrupt"], 1);
    assert_eq!(serde_json::from_value::<Retex>(json).unwrap(), r);
    let mut odd = r.clone();
    odd.mttr = None;
    odd.downtime = TimeDelta::nanoseconds(-1_500_000_001);
    let back: Retex = serde_json::from_str(&serde_json::to_string(&odd).unwrap()).unwrap();
    assert_eq!(back, odd);
    let mut json = serde_json::to_value(&r).unwrap();
    json["downtime"] = serde_json::json!([1, 2_000_000_000]);
    let e = serde_json::from_value::<Retex>(json).unwrap_err();
    assert!(e.to_string().contains("is not a duration"), "{e}");
}

/// The copies of cut tails beside the journal at `path`.
fn tail_copies(path: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}.tail-", path.file_name().unwrap().to_string_lossy());
    let mut found: Vec<PathBuf> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn a_damaged_last_record_is_reported_and_kept_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (j, path) = journal_in(&dir);
    let id = j
        .open_incident("open-meteo", IncidentKind::UpstreamTimeout, t(0), "5 s")
        .unwrap();
    let close_at = fs::metadata(&path).unwrap().len() as usize;
    j.close_incident(id, t(10), "probe ok").unwrap();
    drop(j);
    let mut damaged = fs::read(&path).unwrap();
    let end = damaged.len();
    damaged[close_at + 30] ^= 0x04; // inside the close record's payload
    fs::write(&path, &damaged).unwrap();

    let region = CorruptRegion {
        offset: close_at as u64,
        len: (end - close_at) as u64,
        reason: CorruptReason::InvalidFrame,
    };
    {
        let j = Journal::open(&path).unwrap();
        let report = j.open_report();
        assert_eq!(report.torn_tail_bytes, 0, "{report:?}");
        assert_eq!(report.corrupt_regions, [region]);
        assert_eq!(fs::read(&path).unwrap(), damaged, "nothing cut");
        // The close is unreadable, so the incident reads as open: the
        // report says why (a caller journals a JournalCorrupt incident).
        assert!(j.incident(id).unwrap().is_open());
        let c = j
            .open_incident("journal", IncidentKind::JournalCorrupt, t(20), "")
            .unwrap();
        assert_eq!(c, IncidentId(2));
        j.close_incident(c, t(21), "").unwrap();
    }
    // Appends went after the damaged record; every reopen says the same.
    for _ in 0..2 {
        let j = Journal::open(&path).unwrap();
        let report = j.open_report();
        assert_eq!(report.torn_tail_bytes, 0);
        assert_eq!(report.corrupt_regions, [region]);
        assert_eq!(report.records_read, 3);
        assert!(fs::read(&path).unwrap().starts_with(&damaged));
        assert_eq!(ids(&j.incidents(..)), [2, 1]);
        assert_eq!(j.incident(IncidentId(2)).unwrap().end, Some(t(21)));
    }
    assert!(tail_copies(&path).is_empty());
}

#[test]
fn a_torn_tail_is_saved_beside_the_journal_then_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (j, path) = journal_in(&dir);
    let id = j
        .open_incident("open-meteo", IncidentKind::UpstreamTimeout, t(0), "")
        .unwrap();
    drop(j);
    let intact = fs::read(&path).unwrap();
    let frame = format::encode_frame(
        br#"{"event":"closed","id":1,"at":"2026-01-01T00:10:00Z","details":"probe ok"}"#,
    );
    let half = &frame[..frame.len() / 2];
    let mut torn = intact.clone();
    torn.extend_from_slice(half);
    fs::write(&path, &torn).unwrap();

    {
        let j = Journal::open(&path).unwrap();
        let report = j.open_report();
        assert_eq!(report.torn_tail_bytes as usize, half.len());
        assert!(report.corrupt_regions.is_empty());
        assert_eq!(fs::read(&path).unwrap(), intact, "cut");
        let copies = tail_copies(&path);
        assert_eq!(copies.len(), 1, "{copies:?}");
        assert_eq!(
            fs::read(&copies[0]).unwrap(),
            half,
            "the cut bytes are kept"
        );
        assert_eq!(
            report.torn_tail_saved_to.as_deref(),
            Some(copies[0].as_path())
        );
        j.close_incident(id, t(10), "after the crash").unwrap();
    }
    let j = Journal::open(&path).unwrap();
    assert!(j.open_report().is_clean());
    assert_eq!(j.incident(id).unwrap().end, Some(t(10)));
    assert_eq!(tail_copies(&path).len(), 1);
}

#[test]
fn trailing_zeros_are_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (j, path) = journal_in(&dir);
    j.open_incident("cache", IncidentKind::CacheCorrupt, t(0), "")
        .unwrap();
    drop(j);
    let intact = fs::read(&path).unwrap();
    let mut zeroed = intact.clone();
    zeroed.resize(intact.len() + 4096, 0); // size extended, data never written
    fs::write(&path, &zeroed).unwrap();

    let j = Journal::open(&path).unwrap();
    let report = j.open_report();
    assert_eq!(report.torn_tail_bytes, 4096);
    assert!(report.corrupt_regions.is_empty());
    assert_eq!(fs::read(&path).unwrap(), intact);
    let copies = tail_copies(&path);
    assert_eq!(copies.len(), 1);
    assert_eq!(fs::read(&copies[0]).unwrap(), vec![0; 4096]);
}

/// A torn tail that cannot be saved aside is not cut: it is kept, new
/// records go after it, and the next open reports it as damage.
#[cfg(target_os = "linux")]
#[test]
fn a_torn_tail_that_cannot_be_saved_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    // The name of the copy would be longer than a file name can be (255).
    let path = dir.path().join("j".repeat(240));
    let j = Journal::open(&path).unwrap();
    j.open_incident("x", IncidentKind::Other, t(0), "").unwrap();
    drop(j);
    let intact = fs::read(&path).unwrap();
    let half = &format::encode_frame(
        br#"{"event":"note","id":1,"at":"2026-01-01T00:01:00Z","details":"x"}"#,
    )[..30];
    let mut torn = intact.clone();
    torn.extend_from_slice(half);
    fs::write(&path, &torn).unwrap();
    {
        let j = Journal::open(&path).unwrap();
        let report = j.open_report();
        assert_eq!(report.torn_tail_bytes as usize, half.len());
        assert_eq!(report.torn_tail_saved_to, None);
        assert_eq!(fs::read(&path).unwrap(), torn, "not cut");
        j.open_incident("y", IncidentKind::Other, t(1), "").unwrap();
    }
    let j = Journal::open(&path).unwrap();
    let report = j.open_report();
    assert_eq!(report.torn_tail_bytes, 0);
    assert_eq!(
        report.corrupt_regions,
        [CorruptRegion {
            offset: intact.len() as u64,
            len: half.len() as u64,
            reason: CorruptReason::InvalidFrame
        }]
    );
    assert_eq!(ids(&j.incidents(..)), [2, 1]);
    assert!(tail_copies(&path).is_empty());
}

#[test]
fn tail_copies_never_overwrite_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.journal");
    let stamp = "20260101T000000.000Z";
    let first = save_copy(&path, dir.path(), b"first", TAIL_MARK, stamp).unwrap();
    let second = save_copy(&path, dir.path(), b"second", TAIL_MARK, stamp).unwrap();
    assert_eq!(
        first.file_name().unwrap(),
        "incidents.journal.tail-20260101T000000.000Z"
    );
    assert_ne!(first, second);
    assert_eq!(fs::read(&first).unwrap(), b"first");
    assert_eq!(fs::read(&second).unwrap(), b"second");
}

#[test]
fn retex_periods_are_half_open() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = journal_in(&dir);
    let day = 24 * 60;
    // 23:00 → 24:00 on the first day: all of it in the first day.
    let late = j
        .open_incident("open-meteo", IncidentKind::UpstreamTimeout, t(day - 60), "")
        .unwrap();
    j.close_incident(late, t(day), "").unwrap();

    let first = j.retex(t(0), t(day), t(3 * day));
    assert_eq!(first.incident_count, 1);
    assert_eq!(first.downtime, TimeDelta::hours(1));
    assert_eq!(first.mttr, Some(TimeDelta::hours(1)));

    let second = j.retex(t(day), t(2 * day), t(3 * day));
    assert_eq!(second.incident_count, 0, "{:?}", second.incidents);
    assert!(second.incidents.is_empty());
    assert_eq!(second.downtime, TimeDelta::zero());
    assert_eq!(second.availability, 1.0);
    assert_eq!(second.mttr, None);
    assert_eq!(second.longest_outage, None);
    assert!(second.by_kind.is_empty() && second.by_component.is_empty());
    assert!(
        second
            .to_markdown()
            .contains("_No incident in this period._")
    );
}

#[test]
fn a_zero_length_incident_counts_where_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = journal_in(&dir);
    let day = 24 * 60;
    let blip = j
        .open_incident("open-meteo", IncidentKind::Upstream5xx, t(day), "")
        .unwrap();
    j.close_incident(blip, t(day), "").unwrap();

    assert_eq!(j.retex(t(0), t(day), t(3 * day)).incident_count, 0);
    let second = j.retex(t(day), t(2 * day), t(3 * day));
    assert_eq!(second.incident_count, 1);
    assert_eq!(second.downtime, TimeDelta::zero());
    assert_eq!(second.mttr, Some(TimeDelta::zero()));
    // An empty period holds nothing.
    assert_eq!(j.retex(t(day), t(day), t(3 * day)).incident_count, 0);
}

#[test]
fn an_incident_across_the_boundary_counts_in_both_periods_with_its_whole_duration() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = journal_in(&dir);
    let day = 24 * 60;
    let night = j
        .open_incident(
            "prediction-engine",
            IncidentKind::ModelCrash,
            t(day - 60),
            "",
        )
        .unwrap();
    j.close_incident(night, t(day + 60), "").unwrap();
    for from in [0, day] {
        let r = j.retex(t(from), t(from + day), t(3 * day));
        assert_eq!(r.incident_count, 1, "from {from}");
        assert_eq!(r.downtime, TimeDelta::hours(1), "clipped to the period");
        assert_eq!(r.mttr, Some(TimeDelta::hours(2)), "whole duration");
        assert_eq!(r.longest_outage.unwrap().duration, TimeDelta::hours(2));
    }
}

#[test]
fn availability_is_over_the_elapsed_part_of_the_period() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = journal_in(&dir);
    let day = 24 * 60;
    j.open_incident("open-meteo", IncidentKind::UpstreamUnreachable, t(0), "")
        .unwrap();
    // Six hours into the day, down all along: 0 %, not 75 %.
    let r = j.retex(t(0), t(day), t(360));
    assert_eq!(r.downtime, TimeDelta::hours(6));
    assert_eq!(r.measured_until, t(360));
    assert_eq!(r.availability, 0.0);
    assert_eq!(r.by_component["open-meteo"].availability, 0.0);
    assert!(
        r.to_markdown()
            .contains("- **Measured until:** 2026-01-01 06:00:00 UTC")
    );
    // Over: the whole period.
    let r = j.retex(t(0), t(day), t(2 * day));
    assert_eq!(r.measured_until, t(day));
    assert_eq!(r.availability, 0.0);
    assert!(!r.to_markdown().contains("Measured until"));
    // Not begun: nothing measured, fully available.
    let r = j.retex(t(day), t(2 * day), t(day));
    assert_eq!((r.incident_count, r.availability), (0, 1.0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Splitting a period in two splits its downtime exactly; an incident
    /// counts in a half only when it spends time in it (or starts in it,
    /// when of zero length).
    #[test]
    fn retex_splits_add_up(
        spans in prop::collection::vec((0i64..300, prop::option::of(0i64..120)), 0..8),
        split in 0i64..300,
    ) {
        let incidents: Vec<Incident> = spans
            .iter()
            .enumerate()
            .map(|(n, (start, len))| Incident {
                id: IncidentId(n as u64 + 1),
                component: COMPONENTS[n % COMPONENTS.len()].to_owned(),
                kind: IncidentKind::Other,
                start: t(*start),
                end: len.map(|l| t(start + l)),
                mode_changes: Vec::new(),
                notes: Vec::new(),
                details: String::new(),
                resolution: None,
            })
            .collect();
        let now = t(400);
        let (from, mid, to) = (t(0), t(split), t(300));
        let whole = Retex::compute(incidents.clone(), from, to, now);
        let left = Retex::compute(incidents.clone(), from, mid, now);
        let right = Retex::compute(incidents.clone(), mid, to, now);
        prop_assert_eq!(whole.downtime, left.downtime + right.downtime);
        for i in &incidents {
            let (s, e) = (i.start, i.end_or(now));
            let within = |lo, hi| if s == e { lo <= s && s < hi } else { s < hi && e > lo };
            let listed = |r: &Retex| r.incidents.iter().any(|x| x.id == i.id);
            prop_assert_eq!(listed(&left), within(from, mid));
            prop_assert_eq!(listed(&right), within(mid, to));
            prop_assert_eq!(listed(&whole), listed(&left) || listed(&right));
        }
    }
}

// ---------------------------------------------------------------------------
// Property: whatever happens to the file, opening never panics and never
// invents an incident.

#[derive(Debug, Clone)]
enum Op {
    Open {
        component: usize,
        kind: usize,
        details: String,
    },
    ModeChange {
        pick: usize,
    },
    Note {
        pick: usize,
        details: String,
    },
    Close {
        pick: usize,
        details: String,
    },
}

const COMPONENTS: [&str; 3] = ["open-meteo", "prediction-engine", "cache"];
const KINDS: [IncidentKind; 5] = [
    IncidentKind::UpstreamTimeout,
    IncidentKind::Upstream5xx,
    IncidentKind::ModelCrash,
    IncidentKind::CacheCorrupt,
    IncidentKind::Other,
];

fn op() -> impl Strategy<Value = Op> {
    let text = "[a-z |é\n\"]{0,24}";
    prop_oneof![
        (0..COMPONENTS.len(), 0..KINDS.len(), text).prop_map(|(component, kind, details)| {
            Op::Open {
                component,
                kind,
                details,
            }
        }),
        any::<usize>().prop_map(|pick| Op::ModeChange { pick }),
        (any::<usize>(), text).prop_map(|(pick, details)| Op::Note { pick, details }),
        (any::<usize>(), text).prop_map(|(pick, details)| Op::Close { pick, details }),
    ]
}

/// Writes `ops` through a journal at `path`; returns the events acknowledged.
fn write_ops(path: &Path, ops: &[Op]) -> Vec<JournalEvent> {
    let j = Journal::open(path).unwrap();
    let mut events = Vec::new();
    let mut open: Vec<(IncidentId, Mode)> = Vec::new();
    let mut known: Vec<IncidentId> = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        let at = t(n as i64 * 7);
        match op {
            Op::Open {
                component,
                kind,
                details,
            } => {
                let id = j
                    .open_incident(COMPONENTS[*component], KINDS[*kind], at, details.clone())
                    .unwrap();
                events.push(JournalEvent::Opened {
                    id,
                    component: COMPONENTS[*component].to_owned(),
                    kind: KINDS[*kind],
                    at,
                    details: details.clone(),
                });
                open.push((id, Mode::Nominal));
                known.push(id);
            }
            Op::ModeChange { pick } if !open.is_empty() => {
                let k = pick % open.len();
                let (id, from) = open[k];
                let to = if from == Mode::Nominal {
                    Mode::Estimation
                } else {
                    Mode::Nominal
                };
                j.mode_changed(id, from, to, at).unwrap();
                open[k].1 = to;
                events.push(JournalEvent::ModeChanged { id, from, to, at });
            }
            Op::Note { pick, details } if !known.is_empty() => {
                let id = known[pick % known.len()];
                j.note(id, at, details.clone()).unwrap();
                events.push(JournalEvent::Note {
                    id,
                    at,
                    details: details.clone(),
                });
            }
            Op::Close { pick, details } if !open.is_empty() => {
                let (id, _) = open.remove(pick % open.len());
                j.close_incident(id, at, details.clone()).unwrap();
                events.push(JournalEvent::Closed {
                    id,
                    at,
                    details: details.clone(),
                });
            }
            _ => {}
        }
    }
    events
}

fn is_subsequence<T: PartialEq>(sub: &[T], of: &[T]) -> bool {
    let mut it = of.iter();
    sub.iter().all(|x| it.any(|y| y == x))
}

/// Every incident read back was written, with exactly what was written.
fn check_not_invented(
    incidents: &[Incident],
    written: &[JournalEvent],
) -> Result<(), TestCaseError> {
    for i in incidents {
        let opened = written.iter().find_map(|e| match e {
            JournalEvent::Opened {
                id,
                component,
                kind,
                at,
                details,
            } if *id == i.id => Some((component, kind, at, details)),
            _ => None,
        });
        let Some((component, kind, at, details)) = opened else {
            return Err(TestCaseError::fail(format!("invented incident {i:?}")));
        };
        prop_assert_eq!(&i.component, component);
        prop_assert_eq!(&i.kind, kind);
        prop_assert_eq!(&i.start, at);
        prop_assert_eq!(&i.details, details);
        let changes: Vec<ModeChange> = written
            .iter()
            .filter_map(|e| match e {
                JournalEvent::ModeChanged { id, from, to, at } if *id == i.id => Some(ModeChange {
                    at: *at,
                    from: *from,
                    to: *to,
                }),
                _ => None,
            })
            .collect();
        prop_assert!(is_subsequence(&i.mode_changes, &changes));
        let notes: Vec<(DateTime<Utc>, String)> = written
            .iter()
            .filter_map(|e| match e {
                JournalEvent::Note { id, at, details } if *id == i.id => {
                    Some((*at, details.clone()))
                }
                _ => None,
            })
            .collect();
        prop_assert!(is_subsequence(&i.notes, &notes));
        if let Some(end) = i.end {
            let closed = written.iter().find_map(|e| match e {
                JournalEvent::Closed { id, at, details } if *id == i.id => {
                    Some((*at, details.clone()))
                }
                _ => None,
            });
            prop_assert_eq!(
                Some((end, i.resolution.clone().unwrap_or_default())),
                closed
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The newest few are the head of the full listing, ties in start
    /// included, for every limit.
    #[test]
    fn newest_incidents_are_the_head_of_the_listing(
        starts in prop::collection::vec(0i64..6, 0..12),
        limit in 0usize..15,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = journal_in(&dir);
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for h in &starts {
            journal
                .open_incident("x", IncidentKind::Other, t0 + TimeDelta::hours(*h), "")
                .unwrap();
        }
        let all = journal.incidents(..);
        prop_assert_eq!(journal.newest_incidents(limit), all[..limit.min(all.len())].to_vec());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn damaged_files_never_panic_nor_invent(
        ops in prop::collection::vec(op(), 1..16),
        cut in prop::option::of(0.0f64..1.0),
        change in prop::option::of((0.0f64..1.0, 1u8..=255)),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("incidents.journal");
        let written = write_ops(&path, &ops);
        let mut bytes = fs::read(&path).unwrap();
        let intact = bytes.len();
        if let Some(cut) = cut {
            bytes.truncate((cut * bytes.len() as f64) as usize);
        }
        let mut changed_at = None;
        if let Some((at, xor)) = change {
            if !bytes.is_empty() {
                let at = ((at * bytes.len() as f64) as usize).min(bytes.len() - 1);
                bytes[at] ^= xor;
                changed_at = Some(at);
            }
        }
        let damaged = cut.is_some() || changed_at.is_some();
        fs::write(&path, &bytes).unwrap();

        let j = match Journal::open(&path) {
            Ok(j) => j,
            Err(JournalError::NotAJournal { .. } | JournalError::UnsupportedVersion { .. }) => {
                prop_assert!(changed_at.is_some_and(|at| at < HEADER_LEN), "header error without header damage");
                prop_assert_eq!(fs::read(&path).unwrap(), bytes, "a foreign file is left untouched");
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
        };
        let read = j.incidents(..);
        check_not_invented(&read, &written)?;
        if !damaged {
            prop_assert!(j.open_report().is_clean());
            prop_assert_eq!(fs::metadata(&path).unwrap().len() as usize, intact);
            let opened = written.iter().filter(|e| matches!(e, JournalEvent::Opened { .. })).count();
            prop_assert_eq!(read.len(), opened);
        }
        // The file is usable: a new incident gets a fresh id and survives a reopen.
        let max_seen = written.iter().map(|e| e.id().0).max().unwrap_or(0);
        let report = j.open_report().clone();
        let new = j.open_incident("after", IncidentKind::Other, t(100_000), "after the damage").unwrap();
        prop_assert!(read.iter().all(|i| i.id < new));
        prop_assert!(report.ignored_events.iter().all(|e| e.event.id() < new));
        prop_assert!(new.0 <= max_seen + 1);
        drop(j);

        let j = Journal::open(&path).unwrap();
        let again = j.open_report();
        prop_assert_eq!(again.torn_tail_bytes, 0);
        prop_assert_eq!(&again.corrupt_regions, &report.corrupt_regions);
        let mut expected = read.clone();
        expected.insert(0, j.incident(new).unwrap());
        prop_assert_eq!(j.incidents(..), expected);
    }
}
