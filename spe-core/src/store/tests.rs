use std::collections::BTreeMap;
use std::fs;
use std::io::{Seek as _, SeekFrom, Write as _};

use chrono::{Duration as TD, TimeZone as _};
use proptest::prelude::*;

use super::*;
use crate::forecast::{Forecast, PredictionInterval};
use crate::kpi::Kpi;

fn t(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 0, 0, 0).unwrap() + TD::hours(h)
}

fn open(dir: &Path) -> (HistoryStore, StoreOpenReport) {
    HistoryStore::open(dir, StoreConfig::default(), t(0)).unwrap()
}

fn demand(h: i64, v: f64, p: Provenance) -> Observation {
    Observation::new("demand_mw", t(h), v, p)
}

fn values(store: &HistoryStore, series: &str) -> Vec<(i64, f64, &'static str)> {
    store
        .observations(series, t(-10_000), t(10_000))
        .unwrap()
        .into_iter()
        .map(|o| ((o.time - t(0)).num_hours(), o.value, o.provenance.name()))
        .collect()
}

/// Fills a store with `hours` of demand, so its file spans many pages.
fn fill(store: &HistoryStore, hours: i64) {
    let rows: Vec<_> = (0..hours)
        .flat_map(|h| {
            ["demand_mw", "temperature_2m", "solar_mw"]
                .map(|s| Observation::new(s, t(h), h as f64, Provenance::Live))
        })
        .collect();
    store.record_observations(&rows).unwrap();
}

fn predictions(made: i64, level: f64) -> Predictions {
    let mean: Vec<f64> = (0..48).map(|i| 1000.0 + f64::from(i)).collect();
    let lower = mean.iter().map(|m| m - level).collect();
    let upper = mean.iter().map(|m| m + level).collect();
    Predictions {
        start: t(made + 1),
        step_s: 3600,
        forecast: Forecast::new(
            "mstl",
            mean,
            vec![PredictionInterval {
                level: 80.0,
                lower,
                upper,
            }],
        )
        .unwrap(),
        made_at: t(made) + TD::minutes(5),
        tier: Tier::Fallback,
        intervals_from: None,
        inputs: Provenance::Synthetic,
    }
}

#[test]
fn a_new_store_is_created_empty_and_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, report) = open(dir.path());
        assert!(report.created && report.is_clean(), "{report:?}");
        store
            .record_observations(&[demand(1, 10.0, Provenance::Live)])
            .unwrap();
    }
    let (store, report) = open(dir.path());
    assert!(!report.created && report.is_clean(), "{report:?}");
    assert_eq!(values(&store, "demand_mw"), vec![(1, 10.0, "live")]);
    assert_eq!(store.series().unwrap(), vec!["demand_mw".to_owned()]);
}

#[test]
fn a_less_real_value_never_replaces_a_more_real_one() {
    let store = HistoryStore::in_memory(StoreConfig::default()).unwrap();
    let cached = Provenance::cached(std::time::Duration::from_secs(90));
    assert_eq!(
        store
            .record_observations(&[demand(0, 1.0, Provenance::Synthetic)])
            .unwrap(),
        1
    );
    // Live replaces synthetic; synthetic and cached do not replace live.
    assert_eq!(
        store
            .record_observations(&[demand(0, 2.0, Provenance::Live)])
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .record_observations(&[demand(0, 3.0, Provenance::Synthetic)])
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .record_observations(&[demand(0, 4.0, cached)])
            .unwrap(),
        0
    );
    // A later live value replaces the earlier (a corrected reading).
    assert_eq!(
        store
            .record_observations(&[demand(0, 5.0, Provenance::Live)])
            .unwrap(),
        1
    );
    // Cached beats synthetic and keeps its age; fallback ranks as synthetic.
    // One hour given twice in a call is one row written.
    assert_eq!(
        store
            .record_observations(&[demand(1, 6.0, Provenance::Fallback), demand(1, 7.0, cached)])
            .unwrap(),
        1
    );
    store
        .record_observations(&[demand(1, 8.0, Provenance::Synthetic)])
        .unwrap();
    assert_eq!(
        values(&store, "demand_mw"),
        vec![(0, 5.0, "live"), (1, 7.0, "cached")]
    );
    let row = &store.observations("demand_mw", t(1), t(2)).unwrap()[0];
    assert_eq!(row.provenance, cached);
}

#[test]
fn bad_values_write_nothing() {
    let store = HistoryStore::in_memory(StoreConfig::default()).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = store
            .record_observations(&[
                demand(0, 1.0, Provenance::Live),
                demand(1, bad, Provenance::Live),
            ])
            .unwrap_err();
        assert!(matches!(e, StoreError::InvalidValue { .. }), "{e}");
        assert!(e.to_string().contains("nothing was written"), "{e}");
    }
    let e = store
        .record_observations(&[Observation::new("", t(0), 1.0, Provenance::Live)])
        .unwrap_err();
    assert!(matches!(e, StoreError::InvalidValue { .. }), "{e}");
    assert!(values(&store, "demand_mw").is_empty());
}

#[test]
fn frames_record_their_past_hours_only() {
    let axis = crate::series::TimeAxis::new(t(0), 48).unwrap();
    let frames =
        crate::synth::Generator::with_seed(7).generate(&crate::site::Site::paris(), axis, t(0));
    let store = HistoryStore::in_memory(StoreConfig::default()).unwrap();
    let n = store.record_weather(&frames.weather, t(24)).unwrap();
    assert_eq!(n, 4 * 24);
    let m = store.record_energy(&frames.energy, t(24)).unwrap();
    assert_eq!(m, (1 + SupplySource::ALL.len()) * 24);
    let temps = store.observations("temperature_2m", t(0), t(100)).unwrap();
    assert_eq!(temps.len(), 24);
    assert_eq!(temps[3].value, frames.weather.temperature_2m()[3].unwrap());
    assert_eq!(temps[3].provenance, Provenance::Synthetic);
    let solar = store
        .observations(SupplySource::ALL[0].column(), t(0), t(100))
        .unwrap();
    assert_eq!(solar.len(), 24);
    // The names the dashboard and its CSV use.
    let mut names = store.series().unwrap();
    names.sort();
    let expected = [
        "cloud_cover",
        "demand_mw",
        "imports_mw",
        "other_mw",
        "shortwave_radiation",
        "solar_mw",
        "temperature_2m",
        "wind_mw",
        "wind_speed_10m",
    ];
    assert_eq!(names, expected);
}

#[test]
fn predictions_round_trip_and_the_day_ahead_one_is_found() {
    let store = HistoryStore::in_memory(StoreConfig::default()).unwrap();
    assert_eq!(store.record_predictions(&predictions(0, 50.0)).unwrap(), 48);
    assert_eq!(
        store.record_predictions(&predictions(20, 60.0)).unwrap(),
        48
    );
    // Recording the same predictions again replaces them, every step: a
    // shorter record leaves none of the longer one behind, nor the reverse.
    let mut short = predictions(20, 10.0);
    short.forecast = Forecast::new("mstl", vec![1.0; 12], vec![]).unwrap();
    store.record_predictions(&short).unwrap();
    assert_eq!(store.stats().unwrap().predictions, 48 + 12);
    assert_eq!(
        store.record_predictions(&predictions(20, 70.0)).unwrap(),
        48
    );
    let lead = std::time::Duration::from_secs(86_400);
    // Hour 30: the predictions of hour 0 were made 30 h before, those of
    // hour 20 only 10 h before.
    let p = store.prediction_for(t(30), lead).unwrap().unwrap();
    assert_eq!(p.made_at, t(0) + TD::minutes(5));
    assert_eq!(p.mean, 1000.0 + 29.0);
    assert_eq!(p.bounds, vec![(80.0, 979.0, 1079.0)]);
    assert_eq!(
        (p.tier, p.inputs, p.model.as_str()),
        (Tier::Fallback, Provenance::Synthetic, "mstl")
    );
    // With no lead, the latest wins, with its replaced bounds.
    let latest = store
        .prediction_for(t(30), std::time::Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(
        latest.bounds,
        vec![(80.0, 1000.0 + 9.0 - 70.0, 1000.0 + 9.0 + 70.0)]
    );
    // Nothing made a day before hour 10.
    assert!(store.prediction_for(t(10), lead).unwrap().is_none());
    assert_eq!(store.stats().unwrap().predictions, 96);
    // A second run within the same second: known by that second, it
    // replaces the first, and the newest is what is read.
    let mut rerun = predictions(20, 5.0);
    rerun.made_at += TD::milliseconds(400);
    store.record_predictions(&rerun).unwrap();
    assert_eq!(store.stats().unwrap().predictions, 96);
    let latest = store
        .prediction_for(t(30), std::time::Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(
        latest.bounds,
        vec![(80.0, 1000.0 + 9.0 - 5.0, 1000.0 + 9.0 + 5.0)]
    );
}

#[test]
fn kpis_keep_the_last_set_of_each_hour() {
    let store = HistoryStore::in_memory(StoreConfig::default()).unwrap();
    let axis = crate::series::TimeAxis::new(t(0), 24).unwrap();
    let frames =
        crate::synth::Generator::with_seed(7).generate(&crate::site::Site::paris(), axis, t(0));
    let mut set = crate::kpi::compute_kpis(
        &frames.energy,
        t(5) + TD::minutes(10),
        &crate::kpi::KpiConfig::default(),
    );
    set.demand_mw = Kpi::new("demand_mw", Some(900.0), "MW", KpiStatus::Ok, Some(t(5)));
    let n = store.record_kpis(&set).unwrap();
    assert_eq!(n, set.iter().count());
    set.computed_at = t(5) + TD::minutes(40);
    set.demand_mw = Kpi::new(
        "demand_mw",
        Some(950.0),
        "MW",
        KpiStatus::Warning,
        Some(t(5)),
    );
    store.record_kpis(&set).unwrap();
    set.computed_at = t(6);
    store.record_kpis(&set).unwrap();
    let rows = store.kpis("demand_mw", t(0), t(10)).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].hour, rows[0].value, rows[0].status),
        (t(5), Some(950.0), KpiStatus::Warning)
    );
    assert_eq!(rows[0].computed_at, t(5) + TD::minutes(40));
    let unknown = store.kpis("forecast_error_pct", t(0), t(10)).unwrap();
    assert_eq!(unknown[0].value, None);
}

#[test]
fn maintain_backs_up_when_due_rotates_and_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::default()
        .with_backups_kept(2)
        .with_predictions_kept(std::time::Duration::from_secs(3 * 86_400));
    let (store, _) = HistoryStore::open(dir.path(), config, t(0)).unwrap();
    store.record_predictions(&predictions(0, 10.0)).unwrap();
    let first = store.maintain(t(1)).unwrap();
    assert!(first.backup.is_some());
    // Not due 10 minutes later.
    assert!(
        store
            .maintain(t(1) + TD::minutes(10))
            .unwrap()
            .backup
            .is_none()
    );
    assert!(
        store
            .maintain(t(1) + TD::minutes(30))
            .unwrap()
            .backup
            .is_some()
    );
    let third = store.maintain(t(2)).unwrap();
    assert_eq!(third.backups_deleted, 1);
    let kept = store.backups().unwrap();
    assert_eq!(
        kept.iter().map(|b| b.taken_at).collect::<Vec<_>>(),
        vec![t(1) + TD::minutes(30), t(2)]
    );
    assert!(kept.iter().all(|b| b.bytes > 0));
    assert_eq!(store.stats().unwrap().last_backup, Some(t(2)));
    // A clock stepped back: a backup at once, which is the newest (by
    // sequence) and stays; the oldest goes.
    let back = store.maintain(t(1)).unwrap();
    let made = back.backup.expect("a backup at once");
    assert_eq!(back.backups_deleted, 1);
    let kept = store.backups().unwrap();
    assert_eq!(kept.last(), Some(&made));
    assert_eq!(
        kept.iter().map(|b| b.sequence).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert_eq!(store.stats().unwrap().last_backup, Some(t(1)));
    // Four days on, the predictions made at hour 0 are kept while they are
    // the newest (the engine stopped: they are what it said last)…
    assert_eq!(store.maintain(t(4 * 24)).unwrap().predictions_pruned, 0);
    // …and pruned once newer ones are made.
    store
        .record_predictions(&predictions(4 * 24, 10.0))
        .unwrap();
    let later = store.maintain(t(4 * 24)).unwrap();
    assert_eq!(later.predictions_pruned, 48);
    assert_eq!(store.stats().unwrap().predictions, 48);
    // A reopened store knows its last backup.
    drop(store);
    let (store, _) = open(dir.path());
    assert_eq!(store.stats().unwrap().last_backup, Some(t(4 * 24)));
}

#[test]
fn a_clock_far_ahead_prunes_no_recent_prediction() {
    let config =
        StoreConfig::default().with_predictions_kept(std::time::Duration::from_secs(3 * 86_400));
    let store = HistoryStore::in_memory(config).unwrap();
    for made in [0, 24, 48, 96] {
        store.record_predictions(&predictions(made, 10.0)).unwrap();
    }
    // Ten years ahead: counted back from the newest (hour 96), only the run
    // of hour 0, four days before it, is old enough.
    let jumped = store.maintain(t(10 * 365 * 24)).unwrap();
    assert_eq!(jumped.predictions_pruned, 48);
    assert_eq!(store.stats().unwrap().predictions, 3 * 48);
    // The clock back: nothing more to prune.
    assert_eq!(store.maintain(t(97)).unwrap().predictions_pruned, 0);
}

/// Folds the write-ahead log into the database file, so damage written to
/// the file is what reads see.
fn checkpoint(store: &HistoryStore) {
    store
        .lock()
        .conn
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
}

/// Drops the store's page cache, so the next read goes to the file.
fn forget_cache(store: &HistoryStore) {
    store
        .lock()
        .conn
        .execute_batch("PRAGMA shrink_memory")
        .unwrap();
}

/// Overwrites 2000 bytes of a page in the middle of `dir`'s database
/// (header intact); returns its path.
fn damage_middle_page(dir: &Path) -> PathBuf {
    let db = dir.join(HISTORY_FILE);
    let len = fs::metadata(&db).unwrap().len();
    assert!(len > 40_000, "{len}");
    scribble(&db, len / 2 + 100, 2000);
    db
}

/// Overwrites `len` bytes at `at` with a pattern.
fn scribble(path: &Path, at: u64, len: usize) {
    let mut f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&vec![0xA5; len]).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_garbage_file_is_quarantined_and_the_newest_backup_restored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path());
        fill(&store, 10);
        store.backup_now(t(10)).unwrap();
        // Written after the backup: lost with the database.
        store
            .record_observations(&[demand(11, 11.0, Provenance::Live)])
            .unwrap();
    }
    let db = dir.path().join(HISTORY_FILE);
    fs::write(&db, b"this is not a database, just garbage bytes ....................................................").unwrap();
    let (store, report) = HistoryStore::open(dir.path(), StoreConfig::default(), t(12)).unwrap();
    let (moved, why) = report.quarantined.clone().unwrap();
    assert!(
        moved
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("history.sqlite.corrupt-")
    );
    assert!(moved.exists() && !why.is_empty());
    assert_eq!(report.restored_from.as_ref().unwrap().taken_at, t(10));
    assert!(
        report.summary().contains("restored the backup"),
        "{}",
        report.summary()
    );
    assert_eq!(values(&store, "demand_mw").len(), 10);
    // The restored store takes writes.
    store
        .record_observations(&[demand(11, 11.0, Provenance::Live)])
        .unwrap();
    assert_eq!(values(&store, "demand_mw").len(), 11);
}

#[test]
fn damage_inside_the_file_is_found_by_the_integrity_check() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path());
        fill(&store, 3000);
        store.backup_now(t(1)).unwrap();
        checkpoint(&store);
    }
    damage_middle_page(dir.path());
    let (store, report) = HistoryStore::open(dir.path(), StoreConfig::default(), t(2)).unwrap();
    assert!(report.quarantined.is_some(), "{report:?}");
    assert!(report.restored_from.is_some(), "{report:?}");
    assert_eq!(values(&store, "demand_mw").len(), 3000);
}

/// A store in `dir` backed up with 5 values at hour 1, then with 11 at
/// hour 2, and closed.
fn two_backups(dir: &Path) {
    let (store, _) = open(dir);
    fill(&store, 5);
    store.backup_now(t(1)).unwrap();
    fill(&store, 6);
    store.backup_now(t(2)).unwrap();
}

#[test]
fn a_newer_builds_backup_is_passed_over_and_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    two_backups(dir.path());
    // The newest backup as a newer SP-E would have written it, and the
    // database damaged.
    let backups = list_backups(dir.path());
    Connection::open(&backups[1])
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let newer = fs::read(&backups[1]).unwrap();
    fs::write(dir.path().join(HISTORY_FILE), b"garbage").unwrap();
    let (store, report) = HistoryStore::open(dir.path(), StoreConfig::default(), t(3)).unwrap();
    assert_eq!(report.restored_from.as_ref().unwrap().taken_at, t(1));
    assert_eq!(values(&store, "demand_mw").len(), 5);
    assert!(report.unusable_backups.is_empty(), "{report:?}");
    let [(path, why)] = &report.skipped_backups[..] else {
        panic!("{report:?}")
    };
    assert_eq!(path, &backups[1]);
    assert!(why.contains("schema version 99"), "{why}");
    assert!(report.summary().contains("skipped"), "{}", report.summary());
    // Still a backup, untouched, for the build that can read it.
    assert_eq!(list_backups(dir.path()), backups);
    assert_eq!(fs::read(&backups[1]).unwrap(), newer);
}

#[test]
fn damaged_backups_are_skipped_and_without_any_the_store_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    two_backups(dir.path());
    let backups = list_backups(dir.path());
    fs::write(&backups[1], b"garbage").unwrap();
    fs::write(dir.path().join(HISTORY_FILE), b"garbage").unwrap();
    let (store, report) = HistoryStore::open(dir.path(), StoreConfig::default(), t(3)).unwrap();
    assert_eq!(report.unusable_backups.len(), 1);
    // Set aside, kept: no longer a backup.
    let aside = &report.unusable_backups[0].0;
    assert!(aside.to_string_lossy().ends_with(".unusable"), "{aside:?}");
    assert_eq!(fs::read(aside).unwrap(), b"garbage");
    assert_eq!(list_backups(dir.path()), [backups[0].clone()]);
    assert_eq!(report.restored_from.unwrap().taken_at, t(1));
    assert_eq!(values(&store, "demand_mw").len(), 5);
    drop(store);
    // Now every backup is bad.
    for b in list_backups(dir.path()) {
        fs::write(b, b"garbage").unwrap();
    }
    fs::write(dir.path().join(HISTORY_FILE), b"garbage").unwrap();
    let (store, report) = HistoryStore::open(dir.path(), StoreConfig::default(), t(4)).unwrap();
    assert!(
        report.created && report.restored_from.is_none(),
        "{report:?}"
    );
    // The one left: the other was set aside at the last open.
    assert_eq!(report.unusable_backups.len(), 1);
    // No backup left to count as the newest.
    assert_eq!(store.stats().unwrap().last_backup, None);
    assert!(list_backups(dir.path()).is_empty());
    assert!(
        report.summary().contains("no sound backup"),
        "{}",
        report.summary()
    );
    assert!(values(&store, "demand_mw").is_empty());
    // Two quarantined files, neither overwritten.
    let quarantined = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".corrupt-")
        })
        .count();
    assert_eq!(quarantined, 2);
}

/// The backup files (not the lock file beside them), by name.
fn list_backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir.join(BACKUP_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sqlite"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_deleted_database_is_restored_from_its_backup() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path());
        fill(&store, 4);
        store.backup_now(t(1)).unwrap();
    }
    for side in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(dir.path().join(format!("{HISTORY_FILE}{side}")));
    }
    let (store, report) = open(dir.path());
    assert!(
        report.was_missing && report.restored_from.is_some(),
        "{report:?}"
    );
    assert_eq!(values(&store, "demand_mw").len(), 4);
}

#[test]
fn another_applications_database_and_a_newer_schema_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(HISTORY_FILE);
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA application_id = 42; CREATE TABLE t(x);")
            .unwrap();
    }
    let before = fs::read(&db).unwrap();
    let e = HistoryStore::open(dir.path(), StoreConfig::default(), t(0)).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Foreign {
                application_id: 42,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("left untouched"), "{e}");
    assert_eq!(fs::read(&db).unwrap(), before);

    fs::remove_file(&db).unwrap();
    drop(open(dir.path()));
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA user_version = 99;").unwrap();
    }
    let e = HistoryStore::open(dir.path(), StoreConfig::default(), t(0)).unwrap_err();
    assert!(
        matches!(e, StoreError::NewerSchema { found: 99, .. }),
        "{e}"
    );
}

#[test]
fn recover_replaces_a_database_damaged_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    fill(&store, 3000);
    store.backup_now(t(1)).unwrap();
    checkpoint(&store);
    let db = dir.path().join(HISTORY_FILE);
    let len = fs::metadata(&db).unwrap().len();
    scribble(&db, 4096 * 3, usize::try_from(len).unwrap() - 4096 * 4);
    // Reading through the damage (not from the page cache) is an error
    // that says so.
    forget_cache(&store);
    let Err(e) = store.observations("temperature_2m", t(0), t(4000)) else {
        panic!("the damage was not seen");
    };
    assert!(e.is_corruption(), "{e}");
    let report = store.recover(t(2)).unwrap();
    assert!(
        report.quarantined.is_some() && report.restored_from.is_some(),
        "{report:?}"
    );
    assert_eq!(values(&store, "temperature_2m").len(), 3000);
    // A sound database is left as it is.
    assert!(store.recover(t(3)).unwrap().is_clean());
}

#[test]
fn an_invalid_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for config in [
        StoreConfig::default().with_backups_kept(0),
        StoreConfig::default().with_backup_every(std::time::Duration::ZERO),
        StoreConfig::default().with_predictions_kept(std::time::Duration::from_secs(3600)),
    ] {
        let e = HistoryStore::open(dir.path(), config, t(0)).unwrap_err();
        assert!(matches!(e, StoreError::InvalidConfig(_)), "{e}");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Record(Vec<(u8, i16, f64, u8)>),
    Reopen,
}

fn provenance(i: u8) -> Provenance {
    match i % 4 {
        0 => Provenance::Live,
        1 => Provenance::Synthetic,
        2 => Provenance::Fallback,
        _ => Provenance::Cached {
            age_s: u64::from(i),
        },
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((0u8..3, -50i16..50, -1e12f64..1e12, any::<u8>()), 0..20).prop_map(Op::Record),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever is recorded, across reopenings, reads back as the model of
    /// the rule says: per series and hour, the last value among the most
    /// real ones.
    #[test]
    fn what_is_read_is_what_the_rule_kept(ops in prop::collection::vec(op(), 1..12)) {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = open(dir.path());
        let mut model: BTreeMap<(String, i64), (f64, Provenance)> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Record(rows) => {
                    let obs: Vec<_> = rows
                        .iter()
                        .map(|&(s, h, v, p)| Observation::new(format!("s{s}"), t(i64::from(h)), v, provenance(p)))
                        .collect();
                    store.record_observations(&obs).unwrap();
                    for o in obs {
                        let key = (o.series.clone(), o.time.timestamp());
                        match model.get(&key) {
                            Some((_, old)) if rank(*old) > rank(o.provenance) => {}
                            _ => { model.insert(key, (o.value, o.provenance)); }
                        }
                    }
                }
                Op::Reopen => {
                    drop(store);
                    let (s, report) = open(dir.path());
                    prop_assert!(report.is_clean());
                    store = s;
                }
            }
        }
        let mut read = BTreeMap::new();
        for s in 0..3 {
            for o in store.observations(&format!("s{s}"), t(-100), t(100)).unwrap() {
                read.insert((o.series, o.time.timestamp()), (o.value, o.provenance));
            }
        }
        prop_assert_eq!(read, model);
    }
}

/// Predictions of `steps` hourly steps made at hour `made` (to the second
/// `made_s` of it), from the next hour, each step's mean `made·1000 + step`.
fn predictions_at(made: i64, made_s: i64, steps: usize) -> Predictions {
    let mean: Vec<f64> = (0..steps)
        .map(|i| made as f64 * 1000.0 + i as f64)
        .collect();
    Predictions {
        start: t(made + 1),
        step_s: 3600,
        forecast: Forecast::new("mstl", mean, vec![]).unwrap(),
        made_at: t(made) + TD::seconds(made_s),
        tier: Tier::Primary,
        intervals_from: None,
        inputs: Provenance::Live,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The range query gives, for each target in the range, the latest
    /// prediction made at least `lead` before it: as a model of every
    /// recorded step says, and as `prediction_for` says target by target.
    #[test]
    fn predictions_for_a_range_are_the_latest_with_the_lead(
        made in prop::collection::vec((0i64..60, 0i64..3600, 1usize..30), 1..8),
        lead_h in 0u64..30,
        from in -5i64..80,
        len in 0i64..80,
    ) {
        let store = HistoryStore::in_memory(StoreConfig::default()).unwrap();
        // target -> (made_at, mean) of every step recorded; the same
        // made_at recorded again replaces its steps.
        let mut recorded: BTreeMap<i64, Vec<(i64, i64, f64)>> = BTreeMap::new();
        for &(h, s, steps) in &made {
            let p = predictions_at(h, s, steps);
            store.record_predictions(&p).unwrap();
            let made_at = p.made_at.timestamp();
            recorded.remove(&made_at);
            let rows = (0..steps)
                .map(|i| (made_at, p.time(i).unwrap().timestamp(), p.forecast.mean()[i]))
                .collect();
            recorded.insert(made_at, rows);
        }
        let lead = std::time::Duration::from_secs(lead_h * 3600);
        let (start, end) = (t(from), t(from + len));
        let mut want: BTreeMap<i64, (i64, f64)> = BTreeMap::new();
        for (made_at, target, mean) in recorded.values().flatten().copied() {
            let in_range = target >= start.timestamp() && target < end.timestamp();
            if in_range && made_at <= target - (lead_h * 3600) as i64 {
                let best = want.entry(target).or_insert((made_at, mean));
                if made_at > best.0 {
                    *best = (made_at, mean);
                }
            }
        }
        let got = store.predictions_for(start, end, lead).unwrap();
        let got_map: BTreeMap<i64, (i64, f64)> = got
            .iter()
            .map(|r| (r.target.timestamp(), (r.made_at.timestamp(), r.mean)))
            .collect();
        prop_assert_eq!(got.len(), got_map.len());
        prop_assert!(got.windows(2).all(|w| w[0].target < w[1].target));
        prop_assert_eq!(&got_map, &want);
        for h in from..from + len {
            let one = store.prediction_for(t(h), lead).unwrap();
            prop_assert_eq!(one.map(|r| (r.made_at.timestamp(), r.mean)), want.get(&t(h).timestamp()).copied());
        }
    }
}

#[test]
fn after_the_clock_steps_back_the_newest_backup_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::default().with_backups_kept(2);
    {
        let (store, _) = HistoryStore::open(dir.path(), config.clone(), t(0)).unwrap();
        fill(&store, 5);
        store.maintain(t(24)).unwrap();
        store.maintain(t(25)).unwrap();
        fill(&store, 10);
        // The clock is corrected: a day back.
        store.maintain(t(1)).unwrap();
    }
    fs::write(dir.path().join(HISTORY_FILE), b"garbage").unwrap();
    let (store, report) = HistoryStore::open(dir.path(), config, t(2)).unwrap();
    assert_eq!(report.restored_from.unwrap().taken_at, t(1));
    assert_eq!(values(&store, "demand_mw").len(), 10);
}

#[test]
fn a_log_left_without_its_database_is_never_applied_to_the_restored_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    fill(&store, 10);
    store.backup_now(t(1)).unwrap();
    fill(&store, 2000);
    checkpoint(&store);
    store
        .record_observations(&[demand(5000, 1.0, Provenance::Live)])
        .unwrap();
    // Killed: the connection is never closed, so its log stays (the lock
    // goes, as a dead process's does); then the database file alone is
    // deleted.
    let inner = store.inner.into_inner().unwrap();
    std::mem::forget(inner.conn);
    drop(store.lock);
    let wal = sibling(&dir.path().join(HISTORY_FILE), "-wal");
    assert!(wal.exists());
    fs::remove_file(dir.path().join(HISTORY_FILE)).unwrap();
    let (store, report) = open(dir.path());
    assert!(report.was_missing, "{report:?}");
    assert!(report.unusable_backups.is_empty(), "{report:?}");
    assert_eq!(report.restored_from.as_ref().unwrap().taken_at, t(1));
    let (moved, _) = report.quarantined.clone().expect("the log set aside");
    assert!(moved.to_string_lossy().ends_with("-wal"), "{moved:?}");
    assert!(moved.exists());
    // Exactly the backup's rows: nothing of the log replayed.
    assert_eq!(values(&store, "demand_mw").len(), 10);
}

#[test]
fn an_empty_file_is_restored_when_backups_exist_and_set_up_when_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(HISTORY_FILE);
    fs::write(&db, b"").unwrap();
    let (store, report) = open(dir.path());
    assert!(report.created && report.is_clean(), "{report:?}");
    fill(&store, 3);
    store.backup_now(t(1)).unwrap();
    drop(store);
    fs::write(&db, b"").unwrap();
    for side in ["-wal", "-shm"] {
        let _ = fs::remove_file(sibling(&db, side));
    }
    let (store, report) = open(dir.path());
    assert!(
        report.quarantined.is_some() && report.restored_from.is_some(),
        "{report:?}"
    );
    assert_eq!(values(&store, "demand_mw").len(), 3);
}

#[test]
fn a_database_without_an_application_id_but_with_tables_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(HISTORY_FILE);
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE invoices(x); INSERT INTO invoices VALUES (1);")
            .unwrap();
    }
    let before = fs::read(&db).unwrap();
    let e = HistoryStore::open(dir.path(), StoreConfig::default(), t(0)).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Foreign {
                application_id: 0,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(fs::read(&db).unwrap(), before);
}

#[test]
fn a_repair_that_fails_leaves_a_working_store_that_asks_for_another() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    fill(&store, 3);
    // Another process holds the write lock: the repair cannot set the file
    // up (after the busy timeout).
    let other = Connection::open(dir.path().join(HISTORY_FILE)).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let e = store.recover(t(1)).unwrap_err();
    assert!(!e.is_corruption(), "{e}");
    // The file was reopened: the store reads again, and a failure (the
    // lock, still held) now says to recover again.
    assert_eq!(values(&store, "demand_mw").len(), 3);
    let e = store
        .record_observations(&[demand(10, 1.0, Provenance::Live)])
        .unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert!(e.to_string().contains("recover again"), "{e}");
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    // Which succeeds, and the store is as it was.
    assert!(store.recover(t(2)).unwrap().is_clean());
    store
        .record_observations(&[demand(10, 1.0, Provenance::Live)])
        .unwrap();
    assert_eq!(values(&store, "demand_mw").len(), 4);
}

#[test]
fn a_backup_of_a_damaged_database_is_refused_and_the_sound_one_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::default().with_backups_kept(1);
    let (store, _) = HistoryStore::open(dir.path(), config, t(0)).unwrap();
    fill(&store, 3000);
    let sound = store.maintain(t(1)).unwrap().backup.unwrap();
    checkpoint(&store);
    damage_middle_page(dir.path());
    forget_cache(&store);
    // Due, but the copy fails its check: an error that says damage, and
    // the sound backup is not rotated out.
    let e = store.maintain(t(2)).unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert_eq!(store.backups().unwrap(), vec![sound]);
    assert!(
        fs::read_dir(dir.path().join(BACKUP_DIR))
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")),
        "no temporary copy left"
    );
    let report = store.recover(t(3)).unwrap();
    assert!(report.restored_from.is_some(), "{report:?}");
    assert_eq!(values(&store, "demand_mw").len(), 3000);
}

#[test]
fn recover_runs_the_full_check_that_finds_an_index_out_of_step() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    fill(&store, 50);
    store.record_predictions(&predictions(0, 10.0)).unwrap();
    store.backup_now(t(1)).unwrap();
    // The quick check does not see it.
    put_an_index_out_of_step(&dir.path().join(HISTORY_FILE));
    assert!(matches!(
        schema::inspect(&dir.path().join(HISTORY_FILE)),
        Check::Sound(_)
    ));
    let report = store.recover(t(2)).unwrap();
    assert!(report.quarantined.is_some(), "{report:?}");
    assert!(report.restored_from.is_some(), "{report:?}");
    assert_eq!(store.stats().unwrap().predictions, 48);
}

#[test]
fn a_file_named_backups_does_not_stop_the_store_from_opening() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(BACKUP_DIR), b"not a directory").unwrap();
    let (store, report) = open(dir.path());
    assert!(report.is_clean(), "{report:?}");
    fill(&store, 3);
    assert_eq!(values(&store, "demand_mw").len(), 3);
    // The next backup says what is wrong.
    let e = store.maintain(t(1)).unwrap_err();
    assert!(e.to_string().contains("backup directory"), "{e}");
    drop(store);
    let (store, report) = open(dir.path());
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(values(&store, "demand_mw").len(), 3);
}

#[test]
fn entries_that_are_not_backups_are_ignored_and_crash_leftovers_removed() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::default()
        .with_backups_kept(1)
        .with_backup_every(std::time::Duration::from_secs(3600));
    let (store, _) = HistoryStore::open(dir.path(), config, t(0)).unwrap();
    fill(&store, 3);
    let first = store.maintain(t(1)).unwrap().backup.unwrap();
    let backups = dir.path().join(BACKUP_DIR);
    // A directory with a backup's name, and the temporary copy (and its
    // journal) of a backup that crashed before its rename.
    let squatter = backups.join("history-00000007-20260114T020000.000Z.sqlite");
    fs::create_dir(&squatter).unwrap();
    let leftovers = [
        backups.join("history-00000002-20260114T013000.000Z.sqlite.tmp"),
        backups.join("history-00000002-20260114T013000.000Z.sqlite.tmp-journal"),
    ];
    for f in &leftovers {
        fs::write(f, b"half a copy").unwrap();
    }
    let unrelated = backups.join("notes.tmp");
    fs::write(&unrelated, b"kept").unwrap();
    assert_eq!(store.backups().unwrap(), vec![first]);
    for h in 2..5 {
        let done = store.maintain(t(h)).unwrap();
        assert!(done.backup.is_some(), "{done:?}");
        assert_eq!(store.backups().unwrap().len(), 1);
    }
    // Numbered after the real backups only.
    assert_eq!(store.backups().unwrap()[0].sequence, 4);
    assert!(squatter.is_dir(), "a directory is not deleted as a backup");
    for f in &leftovers {
        assert!(!f.exists(), "{} left", f.display());
    }
    assert!(unrelated.exists());
}

/// Changes the definition of the predictions' index without rebuilding it:
/// its entries no longer match the table, which only the full check sees.
fn put_an_index_out_of_step(db: &Path) {
    let c = Connection::open(db).unwrap();
    c.execute_batch(
        "PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET sql = 'CREATE INDEX predictions_by_target ON predictions (made_at, target)'
         WHERE name = 'predictions_by_target';
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
}

#[test]
fn a_backup_is_made_and_restored_only_if_it_passes_the_full_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(HISTORY_FILE);
    let config = StoreConfig::default().with_backups_kept(1);
    let (store, _) = HistoryStore::open(dir.path(), config.clone(), t(0)).unwrap();
    fill(&store, 50);
    store.record_predictions(&predictions(0, 10.0)).unwrap();
    let sound = store.maintain(t(1)).unwrap().backup.unwrap();
    drop(store);
    put_an_index_out_of_step(&db);
    // The quick check the open runs passes...
    let (store, report) = HistoryStore::open(dir.path(), config, t(2)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    // ...but the backup of it is refused, and the sound one is not rotated out.
    let e = store.maintain(t(3)).unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert_eq!(store.backups().unwrap(), vec![sound.clone()]);
    // A damaged backup left by an older build (checked only quickly), newer
    // than the sound one: recover passes over it.
    let stale = dir
        .path()
        .join(BACKUP_DIR)
        .join("history-00000009-20260114T040000.000Z.sqlite");
    fs::copy(&db, &stale).unwrap();
    let report = store.recover(t(4)).unwrap();
    assert!(report.quarantined.is_some(), "{report:?}");
    assert_eq!(report.restored_from.as_ref(), Some(&sound), "{report:?}");
    assert!(matches!(schema::inspect_with(&db, true), Check::Sound(_)));
    assert_eq!(store.stats().unwrap().predictions, 48);
    store.record_predictions(&predictions(1, 11.0)).unwrap();
    assert_eq!(store.stats().unwrap().predictions, 96);
}

#[test]
fn a_store_never_moves_a_database_another_store_has_open() {
    let dir = tempfile::tempdir().unwrap();
    let (running, _) = open(dir.path());
    fill(&running, 3000);
    running.backup_now(t(1)).unwrap();
    checkpoint(&running);
    let db = damage_middle_page(dir.path());
    let before = fs::read(&db).unwrap();
    // A second opener (a notebook next to the server) finds the damage but
    // may not move the file the running store writes to.
    let e = HistoryStore::open(dir.path(), StoreConfig::default(), t(2)).unwrap_err();
    assert!(matches!(e, StoreError::InUse { .. }), "{e}");
    assert!(e.to_string().contains("another store has it open"), "{e}");
    assert_eq!(fs::read(&db).unwrap(), before);
    // The running store repairs it itself.
    let report = running.recover(t(3)).unwrap();
    assert!(report.restored_from.is_some(), "{report:?}");
    // Two stores on a sound database: both fine.
    let (second, report) = open(dir.path());
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(values(&second, "demand_mw").len(), 3000);
}

#[test]
fn range_bounds_with_a_fraction_of_a_second_keep_to_half_open_ranges() {
    let store = HistoryStore::in_memory(StoreConfig::default()).unwrap();
    store
        .record_observations(&[
            demand(0, 1.0, Provenance::Live),
            demand(1, 2.0, Provenance::Live),
        ])
        .unwrap();
    let half = TD::milliseconds(500);
    let rows = store
        .observations("demand_mw", t(0) + half, t(1) + half)
        .unwrap();
    assert_eq!(rows.iter().map(|o| o.value).collect::<Vec<_>>(), vec![2.0]);
    let rows = store
        .observations("demand_mw", t(0) - half, t(1) - half)
        .unwrap();
    assert_eq!(rows.iter().map(|o| o.value).collect::<Vec<_>>(), vec![1.0]);
}

#[test]
fn two_stores_backing_up_at_once_never_share_a_sequence_number() {
    // Two stores on the same files (a server and a notebook, say): their
    // backups take turns (one that finds the other at it is told so and
    // tries again), so each gets its own number.
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::default().with_backups_kept(100);
    let (a, _) = HistoryStore::open(dir.path(), config.clone(), t(0)).unwrap();
    let (b, _) = HistoryStore::open(dir.path(), config, t(0)).unwrap();
    fill(&a, 50);
    let rounds = 12;
    std::thread::scope(|scope| {
        for (k, store) in [&a, &b].into_iter().enumerate() {
            scope.spawn(move || {
                for i in 0..rounds {
                    let now = t(100) + TD::seconds(i * 10 + k as i64);
                    loop {
                        match store.backup_now(now) {
                            Ok(made) => break assert!(made.is_some()),
                            Err(StoreError::BackupInProgress { .. }) => {
                                std::thread::yield_now();
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let backups = a.backups().unwrap();
    let sequences: Vec<u64> = backups.iter().map(|b| b.sequence).collect();
    assert_eq!(sequences, (1..=2 * rounds as u64).collect::<Vec<_>>());
    drop((a, b));
    // Two stores keeping 3 back up and rotate at once: each old backup is
    // deleted once, without error, and the newest 3 are left (one of the
    // two may have skipped its turn).
    let config = StoreConfig::default().with_backups_kept(3);
    let (c, _) = HistoryStore::open(dir.path(), config.clone(), t(200)).unwrap();
    let (d, _) = HistoryStore::open(dir.path(), config, t(200)).unwrap();
    std::thread::scope(|scope| {
        for (k, store) in [&c, &d].into_iter().enumerate() {
            scope.spawn(move || store.maintain(t(200) + TD::seconds(k as i64)).unwrap());
        }
    });
    let left: Vec<u64> = c.backups().unwrap().iter().map(|b| b.sequence).collect();
    assert!(
        left == vec![23, 24, 25] || left == vec![24, 25, 26],
        "{left:?}"
    );
}

#[test]
fn the_age_of_cached_inputs_is_kept_for_predictions_and_kpis() {
    let store = HistoryStore::in_memory(StoreConfig::default()).unwrap();
    let two_minutes = Provenance::cached(std::time::Duration::from_secs(120));
    let mut p = predictions(0, 50.0);
    p.inputs = two_minutes;
    store.record_predictions(&p).unwrap();
    let zero = std::time::Duration::ZERO;
    assert_eq!(
        store.prediction_for(t(3), zero).unwrap().unwrap().inputs,
        two_minutes
    );
    let all = store.predictions_for(t(1), t(49), zero).unwrap();
    assert_eq!(all.len(), 48);
    assert!(all.iter().all(|r| r.inputs == two_minutes));

    let axis = crate::series::TimeAxis::new(t(0), 24).unwrap();
    let frames =
        crate::synth::Generator::with_seed(7).generate(&crate::site::Site::paris(), axis, t(0));
    let mut set = crate::kpi::compute_kpis(&frames.energy, t(5), &crate::kpi::KpiConfig::default());
    let an_hour = Provenance::cached(std::time::Duration::from_secs(3600));
    set.provenance = an_hour;
    store.record_kpis(&set).unwrap();
    set.computed_at = t(6);
    set.provenance = Provenance::Live;
    store.record_kpis(&set).unwrap();
    let rows = store.kpis("demand_mw", t(0), t(10)).unwrap();
    let got: Vec<_> = rows.iter().map(|r| r.provenance).collect();
    assert_eq!(got, [an_hour, Provenance::Live]);
}

/// The schema of version 1, as the first release wrote it.
const SCHEMA_V1: &str = "
CREATE TABLE observations (series TEXT NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL,
    provenance TEXT NOT NULL, cached_age_s INTEGER, rank INTEGER NOT NULL,
    PRIMARY KEY (series, time)) WITHOUT ROWID;
CREATE TABLE predictions (made_at INTEGER NOT NULL, target INTEGER NOT NULL, model TEXT NOT NULL,
    tier TEXT NOT NULL, inputs TEXT NOT NULL, mean REAL NOT NULL,
    PRIMARY KEY (made_at, target)) WITHOUT ROWID;
CREATE INDEX predictions_by_target ON predictions (target, made_at);
CREATE TABLE prediction_bounds (made_at INTEGER NOT NULL, target INTEGER NOT NULL,
    level REAL NOT NULL, lower REAL NOT NULL, upper REAL NOT NULL,
    PRIMARY KEY (made_at, target, level)) WITHOUT ROWID;
CREATE TABLE kpis (name TEXT NOT NULL, hour INTEGER NOT NULL, value REAL, unit TEXT NOT NULL,
    status TEXT NOT NULL, provenance TEXT NOT NULL, computed_at INTEGER NOT NULL,
    PRIMARY KEY (name, hour)) WITHOUT ROWID;
";

/// Writes a store of schema version 1 at `db`, with one prediction step
/// (made at hour 0 for hour 1), one KPI and one observation, all cached.
fn write_v1(db: &Path) {
    let c = rusqlite::Connection::open(db).unwrap();
    // As version 1 left its files: write-ahead logged.
    let mode: String = c
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    c.execute_batch(SCHEMA_V1).unwrap();
    c.execute_batch(&format!(
        "PRAGMA application_id = {}; PRAGMA user_version = 1;",
        schema::APPLICATION_ID
    ))
    .unwrap();
    let (made, target) = (t(0).timestamp(), t(1).timestamp());
    c.execute(
        "INSERT INTO predictions VALUES (?1, ?2, 'mstl', 'fallback', 'cached', 1000.0)",
        [made, target],
    )
    .unwrap();
    c.execute(
        "INSERT INTO prediction_bounds VALUES (?1, ?2, 80.0, 950.0, 1050.0)",
        [made, target],
    )
    .unwrap();
    c.execute(
        "INSERT INTO kpis VALUES ('demand_mw', ?1, 900.0, 'MW', 'ok', 'cached', ?1)",
        [made],
    )
    .unwrap();
    c.execute(
        "INSERT INTO observations VALUES ('demand_mw', ?1, 900.0, 'cached', 60, 1)",
        [made],
    )
    .unwrap();
}

/// The rows [`write_v1`] wrote, read back from `store`.
fn check_v1_rows(store: &HistoryStore) {
    let old = store
        .prediction_for(t(1), std::time::Duration::ZERO)
        .unwrap()
        .unwrap();
    // Their unknown ages read back as 0.
    assert_eq!(
        (old.mean, old.inputs),
        (1000.0, Provenance::cached(std::time::Duration::ZERO))
    );
    assert_eq!(old.bounds, vec![(80.0, 950.0, 1050.0)]);
    let kpi = store.kpis("demand_mw", t(0), t(1)).unwrap();
    assert_eq!(kpi[0].value, Some(900.0));
    assert_eq!(values(store, "demand_mw"), [(0, 900.0, "cached")]);
}

fn user_version(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// The rows of the predictions table in the database file at `db`.
fn prediction_rows(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM predictions", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_version_1_store_is_migrated_and_keeps_its_rows_and_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(HISTORY_FILE);
    write_v1(&db);
    let (store, report) = open(dir.path());
    assert!(report.is_clean(), "{report:?}");
    check_v1_rows(&store);
    // New rows keep their age, in the same tables.
    let mut p = predictions(2, 10.0);
    p.inputs = Provenance::cached(std::time::Duration::from_secs(42));
    store.record_predictions(&p).unwrap();
    let new = store
        .prediction_for(t(4), std::time::Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(
        new.inputs,
        Provenance::cached(std::time::Duration::from_secs(42))
    );
    drop(store);
    assert_eq!(user_version(&db), schema::SCHEMA_VERSION);
    // The file as it was is kept beside it, for a downgrade.
    let copy = schema::pre_migration_copy(&db, 1);
    assert_eq!(copy, dir.path().join("history.sqlite.v1"));
    assert_eq!(user_version(&copy), 1);
    assert_eq!(prediction_rows(&copy), 1);
    // And it opens again as it is.
    let (store, report) = open(dir.path());
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(store.stats().unwrap().predictions, 1 + 48);
}

#[test]
fn a_half_written_pre_migration_copy_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(HISTORY_FILE);
    write_v1(&db);
    // A crash during an earlier copy left a truncated file under the name.
    let copy = schema::pre_migration_copy(&db, 1);
    fs::write(&copy, b"SQLite format 3\0 half written").unwrap();
    let (store, report) = open(dir.path());
    assert!(report.is_clean(), "{report:?}");
    check_v1_rows(&store);
    drop(store);
    assert_eq!(user_version(&copy), 1);
    assert_eq!(prediction_rows(&copy), 1);
    // No temporary copy is left beside it.
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

#[test]
fn stores_opening_a_version_1_file_at_once_migrate_it_once() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        write_v1(&dir.path().join(HISTORY_FILE));
        let gate = std::sync::Barrier::new(4);
        let opened: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        gate.wait();
                        HistoryStore::open(dir.path(), StoreConfig::default(), t(0))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in opened {
            let (store, report) = r.unwrap();
            assert!(report.is_clean(), "{report:?}");
            check_v1_rows(&store);
        }
        assert_eq!(
            user_version(&dir.path().join(HISTORY_FILE)),
            schema::SCHEMA_VERSION
        );
    }
}

#[test]
fn a_version_1_backup_is_restored_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    fs::create_dir(&backups).unwrap();
    write_v1(&backups.join("history-1-20260114T000000.000Z.sqlite"));
    fs::write(
        dir.path().join(HISTORY_FILE),
        b"garbage, not a database ......",
    )
    .unwrap();
    let (store, report) = open(dir.path());
    assert_eq!(
        report.restored_from.as_ref().unwrap().sequence,
        1,
        "{report:?}"
    );
    check_v1_rows(&store);
    assert_eq!(
        user_version(&dir.path().join(HISTORY_FILE)),
        schema::SCHEMA_VERSION
    );
}

#[test]
fn real_weather_takes_the_live_and_cached_hours_and_leaves_the_estimates_out() {
    let store = HistoryStore::in_memory(StoreConfig::default()).unwrap();
    let cached = Provenance::cached(std::time::Duration::from_secs(600));
    store
        .record_observations(&[
            Observation::new("temperature_2m", t(0), 3.0, Provenance::Live),
            Observation::new("temperature_2m", t(1), 4.0, cached),
            Observation::new("temperature_2m", t(2), 9.0, Provenance::Synthetic),
            Observation::new("temperature_2m", t(3), 9.5, Provenance::Fallback),
            Observation::new("wind_speed_10m", t(1), 6.5, Provenance::Live),
            // Outside the range asked.
            Observation::new("temperature_2m", t(5), 1.0, Provenance::Live),
        ])
        .unwrap();
    // From inside hour 0: the frame starts at its hour.
    let frame = store.real_weather(t(0) + TD::minutes(20), t(4)).unwrap();
    assert_eq!(frame.axis().start(), t(0));
    assert_eq!(frame.len(), 4);
    assert_eq!(frame.temperature_2m(), &[Some(3.0), Some(4.0), None, None]);
    assert_eq!(frame.wind_speed_10m(), &[None, Some(6.5), None, None]);
    assert_eq!(frame.cloud_cover(), &[None; 4]);
    assert_eq!(frame.provenance(), Provenance::Live);
    assert_eq!(frame.produced_at(), t(4));

    // Empty, reversed and too long ranges are refused.
    for (from, to) in [(t(2), t(2)), (t(3), t(1))] {
        let e = store.real_weather(from, to).unwrap_err();
        assert!(matches!(e, StoreError::InvalidValue { .. }), "{e}");
    }
    let long = TD::hours(i64::try_from(MAX_REAL_WEATHER_HOURS).unwrap() + 1);
    let e = store.real_weather(t(0), t(0) + long).unwrap_err();
    assert!(e.to_string().contains("not 1 to"), "{e}");

    // A value recorded by hand under a weather name, out of its range: a
    // clear error naming it, not a frame of garbage.
    store
        .record_observations(&[Observation::new(
            "temperature_2m",
            t(1),
            500.0,
            Provenance::Live,
        )])
        .unwrap();
    let e = store.real_weather(t(0), t(4)).unwrap_err();
    assert!(e.to_string().contains("temperature_2m"), "{e}");
}

#[test]
fn a_closed_store_is_relocated_whole_and_an_open_one_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let from = tmp.path().join("history");
    let to = tmp.path().join("sites").join("paris");
    let (store, _) = open(&from);
    fill(&store, 48);
    store.backup_now(t(1)).unwrap();
    let before = store.stats().unwrap();

    // Open here: refused, nothing moved.
    let e = HistoryStore::relocate(&from, &to).unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e}");
    assert!(e.to_string().contains("close it first"), "{e}");
    assert!(from.join(HISTORY_FILE).exists() && !to.exists());

    drop(store);
    // A destination that exists is never written over.
    fs::create_dir_all(&to).unwrap();
    let e = HistoryStore::relocate(&from, &to).unwrap_err();
    assert!(matches!(e, StoreError::Io { .. }), "{e}");
    assert!(from.join(HISTORY_FILE).exists());
    fs::remove_dir_all(tmp.path().join("sites")).unwrap();

    // Its parent is created.
    HistoryStore::relocate(&from, &to).unwrap();
    assert!(!from.exists());
    let (moved, report) = open(&to);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(moved.stats().unwrap().observations, before.observations);
    assert_eq!(moved.backups().unwrap().len(), 1, "the backups moved too");
}
