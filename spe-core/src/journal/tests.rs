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
    assert_eq!(r.availability, 1.0 - 3.0 / 24.0);
    assert_eq!(r.mttr, Some(TimeDelta::hours(4)));
    let longest = r.longest_outage.clone().unwrap();
    assert_eq!((longest.id, longest.duration), (a, TimeDelta::hours(4)));
    assert_eq!(r.by_component["open-meteo"].downtime, TimeDelta::hours(2));
    assert_eq!(r.by_component["cache"].downtime, TimeDelta::hours(2));
    assert_eq!(r.by_component["cache"].availability, 1.0 - 2.0 / 24.0);
    assert_eq!(r.by_kind.get(&IncidentKind::Upstream5xx), None);
    assert_eq!(r.by_kind[&IncidentKind::CacheCorrupt], 1);
    let md = r.to_markdown();
    assert!(
        md.contains("| #3 | 2026-01-02 01:00:00 | ongoing | 2 h | cache | cache_corrupt | — |"),
        "{md}"
    );
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
