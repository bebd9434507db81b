//! The incident journal on real files: round trips, crash damage (torn tails
//! at every byte, flipped bits, garbage), concurrent appends, and the RETEX.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use spe_core::{
    CorruptReason, IgnoreReason, Incident, IncidentId, IncidentKind, Journal, JournalError, Mode,
};

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spe-journal-it-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time")
        + TimeDelta::minutes(minutes)
}

fn file_len(path: &Path) -> usize {
    fs::metadata(path).expect("journal metadata").len() as usize
}

fn ids(incidents: &[Incident]) -> Vec<u64> {
    incidents.iter().map(|i| i.id.get()).collect()
}

/// Writes five records (open #1, open #2, note #1, close #1, close #2) and
/// returns the offset of each record and the file length.
fn five_records(path: &Path) -> (Vec<usize>, usize) {
    let j = Journal::open(path).expect("open");
    let mut offsets = Vec::new();
    offsets.push(file_len(path));
    let a = j
        .open_incident(
            "open-meteo",
            IncidentKind::UpstreamTimeout,
            t(0),
            "no answer in 5000 ms",
        )
        .expect("append");
    offsets.push(file_len(path));
    let b = j
        .open_incident(
            "prediction-engine",
            IncidentKind::ModelCrash,
            t(3),
            "exit 137",
        )
        .expect("append");
    offsets.push(file_len(path));
    j.note(a, t(5), "9 more timeouts").expect("append");
    offsets.push(file_len(path));
    j.close_incident(a, t(30), "half-open probe ok")
        .expect("append");
    offsets.push(file_len(path));
    j.close_incident(b, t(40), "rerun ok").expect("append");
    (offsets, file_len(path))
}

#[test]
fn round_trip() {
    let dir = TempDir::new("round-trip");
    let path = dir.join("data/incidents.journal");
    let before = {
        let j = Journal::open(&path).unwrap();
        assert!(j.open_report().created);
        let a = j
            .open_incident("open-meteo", IncidentKind::Upstream5xx, t(0), "HTTP 503")
            .unwrap();
        j.mode_changed(a, Mode::Nominal, Mode::Estimation, t(0))
            .unwrap();
        j.note(a, t(2), "HTTP 502 and 504 too").unwrap();
        j.mode_changed(a, Mode::Estimation, Mode::Nominal, t(20))
            .unwrap();
        j.close_incident(a, t(20), "recovered").unwrap();
        j.open_incident(
            "cache",
            IncidentKind::CacheCorrupt,
            t(25),
            "checksum mismatch, quarantined",
        )
        .unwrap();
        j.incidents(..)
    };
    let j = Journal::open(&path).unwrap();
    assert!(j.open_report().is_clean());
    assert!(!j.open_report().created);
    assert_eq!(j.open_report().records_read, 6);
    assert_eq!(j.incidents(..), before);
    let a = j.incident(IncidentId(1)).unwrap();
    assert_eq!(a.end, Some(t(20)));
    assert_eq!(a.mode_changes.len(), 2);
    assert_eq!(a.mode_changes[1].to, Mode::Nominal);
    assert_eq!(a.notes, [(t(2), "HTTP 502 and 504 too".to_owned())]);
    assert_eq!(ids(&j.open_incidents()), [2]);
}

#[test]
fn reopen_continues_ids() {
    let dir = TempDir::new("ids");
    let path = dir.join("incidents.journal");
    for round in 0..3u64 {
        let j = Journal::open(&path).unwrap();
        let first = j.open_incident("x", IncidentKind::Other, t(0), "").unwrap();
        let second = j.open_incident("x", IncidentKind::Other, t(1), "").unwrap();
        assert_eq!((first.get(), second.get()), (2 * round + 1, 2 * round + 2));
    }
}

#[test]
fn torn_tail_cut_at_every_byte_of_the_last_record() {
    let dir = TempDir::new("torn");
    let original = dir.join("original.journal");
    let (offsets, full_len) = five_records(&original);
    let bytes = fs::read(&original).unwrap();
    let last = offsets[4];
    let path = dir.join("torn.journal");
    for cut in last..full_len {
        fs::write(&path, &bytes[..cut]).unwrap();
        {
            let j = Journal::open(&path).unwrap();
            let report = j.open_report();
            assert_eq!(report.torn_tail_bytes as usize, cut - last, "cut at {cut}");
            assert!(report.corrupt_regions.is_empty(), "cut at {cut}");
            assert_eq!(report.records_read, 4, "cut at {cut}");
            assert_eq!(file_len(&path), last, "file truncated (cut at {cut})");
            assert_eq!(ids(&j.open_incidents()), [2], "cut at {cut}");
            assert_eq!(j.incident(IncidentId(1)).unwrap().end, Some(t(30)));
            // A new append works and reads back.
            j.close_incident(IncidentId(2), t(50), "after the crash")
                .unwrap();
        }
        let j = Journal::open(&path).unwrap();
        assert!(j.open_report().is_clean(), "cut at {cut}");
        assert_eq!(j.incident(IncidentId(2)).unwrap().end, Some(t(50)));
        drop(j);
    }
}

#[test]
fn a_flipped_bit_anywhere_in_a_middle_record_skips_only_that_record() {
    let dir = TempDir::new("flip");
    let original = dir.join("original.journal");
    let (offsets, full_len) = five_records(&original);
    let bytes = fs::read(&original).unwrap();
    let (note_at, note_end) = (offsets[2], offsets[3]);
    let path = dir.join("flipped.journal");
    for at in note_at..note_end {
        let mut damaged = bytes.clone();
        damaged[at] ^= 1 << (at % 8);
        fs::write(&path, &damaged).unwrap();
        {
            let j = Journal::open(&path).unwrap();
            let report = j.open_report();
            assert_eq!(report.corrupt_regions.len(), 1, "flip at {at}");
            let region = report.corrupt_regions[0];
            assert_eq!(
                (region.offset as usize, region.len as usize, region.reason),
                (note_at, note_end - note_at, CorruptReason::InvalidFrame),
                "flip at {at}"
            );
            assert_eq!(report.torn_tail_bytes, 0);
            assert_eq!(report.records_read, 4);
            assert!(report.ignored_events.is_empty());
            let a = j.incident(IncidentId(1)).unwrap();
            assert!(a.notes.is_empty());
            assert_eq!(a.end, Some(t(30)));
            assert_eq!(j.incident(IncidentId(2)).unwrap().end, Some(t(40)));
            // Appends after mid-file damage go at the end.
            let c = j
                .open_incident("x", IncidentKind::DiskError, t(60), "")
                .unwrap();
            assert_eq!(c, IncidentId(3));
        }
        assert!(file_len(&path) > full_len);
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.open_report().corrupt_regions.len(), 1);
        assert_eq!(ids(&j.incidents(..)), [3, 2, 1]);
        drop(j);
    }
}

#[test]
fn a_lost_opening_makes_its_later_events_reported_and_ignored() {
    let dir = TempDir::new("lost-open");
    let path = dir.join("incidents.journal");
    let (offsets, _) = five_records(&path);
    let mut bytes = fs::read(&path).unwrap();
    bytes[offsets[1] + 30] ^= 0x20; // inside the payload of "open #2"
    fs::write(&path, &bytes).unwrap();

    let j = Journal::open(&path).unwrap();
    let report = j.open_report();
    assert_eq!(report.corrupt_regions.len(), 1);
    assert_eq!(report.corrupt_regions[0].offset as usize, offsets[1]);
    assert_eq!(report.ignored_events.len(), 1);
    assert_eq!(report.ignored_events[0].offset as usize, offsets[4]);
    assert_eq!(
        report.ignored_events[0].reason,
        IgnoreReason::UnknownIncident
    );
    assert_eq!(ids(&j.incidents(..)), [1]);
    assert!(matches!(
        j.close_incident(IncidentId(2), t(90), ""),
        Err(JournalError::UnknownIncident(_))
    ));
    // #2 was seen (in its close): it is not handed out again.
    assert_eq!(
        j.open_incident("x", IncidentKind::Other, t(90), "")
            .unwrap(),
        IncidentId(3)
    );
}

#[test]
fn garbage_appended_is_kept_and_reported() {
    let dir = TempDir::new("garbage");
    let path = dir.join("incidents.journal");
    let (offsets, full_len) = five_records(&path);
    let mut bytes = fs::read(&path).unwrap();
    // A copy of a frame's magic with a plausible length, then noise.
    let magic = bytes[offsets[0]..offsets[0] + 4].to_vec();
    let mut garbage = magic.clone();
    garbage.extend_from_slice(&20u32.to_le_bytes());
    garbage.extend_from_slice(b"\0\0\0\0not a record at all");
    garbage.extend((0..200u32).map(|i| (i * 37 % 251) as u8));
    garbage.extend_from_slice(&magic);
    bytes.extend_from_slice(&garbage);
    fs::write(&path, &bytes).unwrap();

    // Garbage is not a record cut short by a crash: it is reported as damage
    // and kept for the post-mortem. Only the lone magic at the very end,
    // the start of a frame cut short, is a torn tail: saved aside, then cut.
    let j = Journal::open(&path).unwrap();
    let report = j.open_report();
    assert_eq!(report.records_read, 5);
    assert_eq!(report.torn_tail_bytes, 4);
    let saved = report
        .torn_tail_saved_to
        .clone()
        .expect("the cut bytes are saved");
    assert_eq!(fs::read(&saved).unwrap(), magic);
    assert_eq!(report.corrupt_regions.len(), 1, "{report:?}");
    let region = &report.corrupt_regions[0];
    assert_eq!(region.offset as usize, full_len);
    assert_eq!(region.len as usize, garbage.len() - 4);
    assert_eq!(region.reason, CorruptReason::InvalidFrame);
    assert_eq!(file_len(&path), full_len + garbage.len() - 4);
    assert_eq!(ids(&j.incidents(..)), [2, 1]);
    // New records go after the damage, and a reopen reads them.
    j.open_incident("x", IncidentKind::Other, t(100), "")
        .unwrap();
    drop(j);
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.open_report().corrupt_regions.len(), 1);
    assert_eq!(j.open_report().torn_tail_bytes, 0);
    assert_eq!(ids(&j.incidents(..)), [3, 2, 1]);
}

#[test]
fn a_wrong_header_or_version_is_an_error_and_the_file_is_left_alone() {
    let dir = TempDir::new("header");
    let foreign = dir.join("notes.txt");
    fs::write(&foreign, "these are not the incidents you are looking for").unwrap();
    assert!(matches!(
        Journal::open(&foreign),
        Err(JournalError::NotAJournal { .. })
    ));
    assert_eq!(
        fs::read_to_string(&foreign).unwrap(),
        "these are not the incidents you are looking for"
    );

    let path = dir.join("incidents.journal");
    five_records(&path);
    let mut bytes = fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    match Journal::open(&path) {
        Err(JournalError::UnsupportedVersion {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (99, Journal::FORMAT_VERSION));
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), bytes);

    // An existing empty file is initialised.
    let empty = dir.join("empty.journal");
    fs::write(&empty, b"").unwrap();
    assert!(Journal::open(&empty).unwrap().open_report().created);
}

#[test]
fn concurrent_appends_from_several_threads_are_all_read_back() {
    const THREADS: usize = 6;
    const PER_THREAD: usize = 15;
    let dir = TempDir::new("threads");
    let path = dir.join("incidents.journal");
    let j = Journal::open(&path).unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|n| {
            let j = j.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for k in 0..PER_THREAD {
                    let at = t((n * 100 + k) as i64);
                    let id = j
                        .open_incident(
                            format!("worker-{n}"),
                            IncidentKind::Other,
                            at,
                            format!("{k}"),
                        )
                        .unwrap();
                    j.note(id, at, "seen").unwrap();
                    j.close_incident(id, at + TimeDelta::minutes(1), "")
                        .unwrap();
                    mine.push(id);
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<IncidentId> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), THREADS * PER_THREAD, "ids are unique");
    drop(j);

    let j = Journal::open(&path).unwrap();
    assert!(j.open_report().is_clean());
    assert_eq!(j.open_report().records_read, 3 * THREADS * PER_THREAD);
    let read = j.incidents(..);
    assert_eq!(read.len(), THREADS * PER_THREAD);
    assert!(read.iter().all(|i| !i.is_open() && i.notes.len() == 1));
}

/// A 10-day period with a 1 h and a 2 h outage overlapping by 30 min, an
/// incident before the period and a short one inside it.
fn schedule(path: &Path) -> (Journal, DateTime<Utc>, DateTime<Utc>) {
    let from = t(0);
    let to = from + TimeDelta::days(10);
    let j = Journal::open(path).expect("open");
    let before = j
        .open_incident(
            "open-meteo",
            IncidentKind::UpstreamUnreachable,
            from - TimeDelta::days(2),
            "",
        )
        .expect("journal write");
    j.close_incident(before, from - TimeDelta::days(1), "")
        .expect("journal write");

    let day2 = from + TimeDelta::days(2);
    let a = j
        .open_incident(
            "open-meteo",
            IncidentKind::UpstreamTimeout,
            day2 + TimeDelta::hours(10),
            "no answer in 5000 ms",
        )
        .expect("journal write");
    j.mode_changed(
        a,
        Mode::Nominal,
        Mode::Estimation,
        day2 + TimeDelta::hours(10),
    )
    .expect("journal write");
    let b = j
        .open_incident(
            "prediction-engine",
            IncidentKind::ModelCrash,
            day2 + TimeDelta::minutes(630),
            "exit | 137",
        )
        .expect("journal write");
    j.mode_changed(
        a,
        Mode::Estimation,
        Mode::Nominal,
        day2 + TimeDelta::hours(11),
    )
    .expect("journal write");
    j.close_incident(a, day2 + TimeDelta::hours(11), "probe ok")
        .expect("journal write");
    j.close_incident(b, day2 + TimeDelta::minutes(750), "restarted")
        .expect("journal write");

    let c = j
        .open_incident(
            "open-meteo",
            IncidentKind::Upstream5xx,
            from + TimeDelta::days(5),
            "HTTP 503",
        )
        .expect("journal write");
    j.close_incident(c, from + TimeDelta::days(5) + TimeDelta::seconds(90), "")
        .expect("journal write");
    (j, from, to)
}

#[test]
fn retex_figures_on_a_hand_made_schedule() {
    let dir = TempDir::new("retex");
    let (j, from, to) = schedule(&dir.join("incidents.journal"));
    let r = j.retex(from, to, to);

    assert_eq!(r.incident_count, 3);
    assert_eq!(ids(&r.incidents), [4, 3, 2]);
    assert_eq!(r.still_open, 0);
    // 1 h ∪ 2 h overlapping 30 min = 2 h 30 min, plus 90 s.
    let downtime = TimeDelta::minutes(150) + TimeDelta::seconds(90);
    assert_eq!(r.downtime, downtime);
    let period_s = 10.0 * 86_400.0;
    assert_eq!(r.availability, 1.0 - 9_090.0 / period_s);
    assert!((r.availability_percent() - 98.947_916_666).abs() < 1e-6);
    // MTTR: (60 min + 120 min + 1.5 min) / 3.
    assert_eq!(r.mttr, Some(TimeDelta::seconds((3_600 + 7_200 + 90) / 3)));
    let longest = r.longest_outage.clone().unwrap();
    assert_eq!(longest.id, IncidentId(3));
    assert_eq!(longest.component, "prediction-engine");
    assert_eq!(longest.duration, TimeDelta::hours(2));
    assert_eq!(r.by_kind[&IncidentKind::UpstreamTimeout], 1);
    assert_eq!(r.by_kind[&IncidentKind::ModelCrash], 1);
    assert_eq!(r.by_kind[&IncidentKind::Upstream5xx], 1);
    assert!(!r.by_kind.contains_key(&IncidentKind::UpstreamUnreachable));
    let meteo = &r.by_component["open-meteo"];
    assert_eq!(
        (meteo.incidents, meteo.downtime),
        (2, TimeDelta::seconds(3_690))
    );
    assert_eq!(meteo.availability, 1.0 - 3_690.0 / period_s);
    let engine = &r.by_component["prediction-engine"];
    assert_eq!(
        (engine.incidents, engine.downtime),
        (1, TimeDelta::hours(2))
    );

    // A period ending in the middle of #3: downtime is clipped to the
    // period, durations (MTTR, longest) are not.
    let mid = from + TimeDelta::days(2) + TimeDelta::hours(12);
    let r = j.retex(from, mid, to);
    assert_eq!(ids(&r.incidents), [3, 2]);
    assert_eq!(r.downtime, TimeDelta::hours(2));
    assert_eq!(r.mttr, Some(TimeDelta::minutes(90)));
    assert_eq!(r.longest_outage.unwrap().duration, TimeDelta::hours(2));
}

#[test]
fn the_markdown_report_holds_the_tables() {
    let dir = TempDir::new("markdown");
    let (j, from, to) = schedule(&dir.join("incidents.journal"));
    let md = j.retex(from, to, to).to_markdown();

    assert!(md.starts_with("# RETEX"), "{md}");
    assert!(
        md.contains("2026-01-01 00:00:00 UTC → 2026-01-11 00:00:00 UTC (10 d)"),
        "{md}"
    );
    for line in [
        "| Figure | Value |",
        "| Availability | 98.948 % |",
        "| Downtime | 2 h 31 min 30 s |",
        "| Incidents | 3 |",
        "| Mean time to recovery | 1 h 30 s |",
        "| Longest outage | #3 (prediction-engine), 2 h |",
        "| upstream_timeout | 1 |",
        "| # | Start | End | Duration | Component | Kind | Mode changes | Details |",
        "| #4 | 2026-01-06 00:00:00 | 2026-01-06 00:01:30 | 1 min 30 s | open-meteo | upstream_5xx | — | HTTP 503 |",
        "| #3 | 2026-01-03 10:30:00 | 2026-01-03 12:30:00 | 2 h | prediction-engine | model_crash | — | exit \\| 137 — resolved: restarted |",
        "| #2 | 2026-01-03 10:00:00 | 2026-01-03 11:00:00 | 1 h | open-meteo | upstream_timeout | nominal → estimation at 10:00:00; estimation → nominal at 11:00:00 | no answer in 5000 ms — resolved: probe ok |",
    ] {
        assert!(
            md.lines().any(|l| l == line),
            "missing line {line:?} in\n{md}"
        );
    }
    let pos = |s: &str| md.find(s).unwrap();
    assert!(
        pos("| #4 |") < pos("| #3 |") && pos("| #3 |") < pos("| #2 |"),
        "newest first"
    );
    assert!(!md.contains("| #1 |"), "outside the period");
}
