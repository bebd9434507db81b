//! Past predictions, kept to judge them against what happened.
//!
//! The dashboard's "forecast error of the last day" compares the demand of
//! the last 24 hours with what was predicted for those hours a day before.
//! The prediction chain only keeps the *latest* predictions, so the archive
//! keeps a history of them, thinned to the entries that answer
//! [`forecast_for`](PredictionArchive::forecast_for) at its
//! [`ArchiveConfig::lead`]: an entry goes once, for each of its steps at
//! least the lead ahead, a newer entry made at least the lead before that
//! step has it too. With a run every five minutes, about one an hour stays,
//! and the answers are those of every run recorded (as the history store,
//! which keeps every run, gives them). None is older than
//! [`ArchiveConfig::retention`]; they are persisted crash-safely in a
//! [`Cache`] so a restart does not lose a day of history.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::Predictions;
use crate::cache::{Cache, CacheConfig, CacheError, LoadReport};
use crate::kpi::DAY_AHEAD;

/// The name of the archive's cache files in their directory.
pub const PREDICTION_ARCHIVE_NAME: &str = "prediction-archive";

/// How far after `now` an archived entry may have been made before
/// [`PredictionArchive::record`] takes it for the mark of a clock that was
/// ahead and drops it (callers recording at once may read the clock a
/// moment apart).
pub const ARCHIVE_FUTURE_SLACK: TimeDelta = TimeDelta::minutes(5);

/// How much of the past the [`PredictionArchive`] keeps, and for which lead.
///
/// ```
/// use std::time::Duration;
/// let c = spe_core::ArchiveConfig::default();
/// assert_eq!(c.retention, Duration::from_secs(72 * 3600));
/// assert_eq!(c.lead, spe_core::DAY_AHEAD);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveConfig {
    /// Entries made longer ago than this are dropped. The default, 72 h,
    /// covers a day-ahead lead over a full day with a day to spare.
    pub retention: Duration,
    /// The lead the archive is kept for: an entry is dropped once newer
    /// ones give every answer of [`forecast_for`](PredictionArchive::forecast_for)
    /// at this lead it would give. Default [`DAY_AHEAD`] (24 h). Asked at
    /// another lead, the archive answers from the entries kept for this one.
    pub lead: Duration,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            retention: Duration::from_secs(72 * 3600),
            lead: DAY_AHEAD,
        }
    }
}

/// A thinned, persisted history of past [`Predictions`].
///
/// [`record`](Self::record) every fresh result of the chain;
/// [`forecast_for`](Self::forecast_for) then answers "what was predicted for
/// this hour, at least this long before it?" — the freshest such prediction.
///
/// The archive keeps only the entries an answer at its
/// [`lead`](ArchiveConfig::lead) can come from: an entry goes once, for
/// each of its steps at least the lead after it was made, a newer entry
/// made at least the lead before that step has it too. With a run every
/// five minutes about one an hour stays, and the answers at that lead are
/// those every run recorded would give (the history store's, which keeps
/// them all), as long as the clock `record` is given does not step back
/// more than [`ARCHIVE_FUTURE_SLACK`]: entries a clock running ahead
/// recorded are dropped once it is corrected, and with them the answers
/// of the older entries they had made needless.
///
/// ```
/// use std::time::Duration;
/// use chrono::{TimeZone, Utc};
/// use spe_core::{ArchiveConfig, Forecast, PredictionArchive, Predictions, Tier};
///
/// let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
/// let predictions = |made_h: i64, level: f64| Predictions {
///     start: t0 + chrono::Duration::hours(made_h),
///     step_s: 3600,
///     forecast: Forecast::new("demo", vec![level; 48], vec![]).unwrap(),
///     made_at: t0 + chrono::Duration::hours(made_h),
///     tier: Tier::Primary,
///     intervals_from: None,
///     inputs: spe_core::Provenance::Live,
/// };
/// let archive = PredictionArchive::in_memory(ArchiveConfig::default());
/// archive.record(&predictions(0, 100.0), t0).unwrap();
/// archive.record(&predictions(6, 110.0), t0 + chrono::Duration::hours(6)).unwrap();
///
/// let day = Duration::from_secs(24 * 3600);
/// // 30 h after t0: the entry made at 6 h is 24 h ahead of it.
/// assert_eq!(archive.forecast_for(t0 + chrono::Duration::hours(30), day), Some(110.0));
/// // 29 h after t0: only the entry made at 0 h is at least a day ahead.
/// assert_eq!(archive.forecast_for(t0 + chrono::Duration::hours(29), day), Some(100.0));
/// // 50 h after t0: past the horizon of the entry made at 0 h, too close for the other.
/// assert_eq!(archive.forecast_for(t0 + chrono::Duration::hours(50), day), Some(110.0));
/// assert_eq!(archive.forecast_for(t0 + chrono::Duration::hours(60), day), None);
/// ```
#[derive(Debug)]
pub struct PredictionArchive {
    config: ArchiveConfig,
    cache: Option<Cache<Vec<Predictions>>>,
    entries: Mutex<Vec<Predictions>>,
    /// Held from the snapshot to its write, so that two `record`s persist
    /// their snapshots in the order they took them (the newest generation
    /// is never an older snapshot). True while the entries in memory differ
    /// from the last generation written (a write failed).
    writer: Mutex<bool>,
}

impl PredictionArchive {
    /// An archive that lives in memory only (lost at exit).
    pub fn in_memory(config: ArchiveConfig) -> PredictionArchive {
        PredictionArchive {
            config,
            cache: None,
            entries: Mutex::new(Vec::new()),
            writer: Mutex::new(false),
        }
    }

    /// Open (or create) the archive persisted in `dir` under
    /// [`PREDICTION_ARCHIVE_NAME`]. What the cache held is loaded, minus
    /// entries that fail [`Predictions::validate`]; a corrupt generation is
    /// quarantined and reported in the [`LoadReport`] (the previous one is
    /// used).
    pub fn open(
        dir: impl AsRef<Path>,
        config: ArchiveConfig,
    ) -> Result<(PredictionArchive, LoadReport), CacheError> {
        let (cache, report): (Cache<Vec<Predictions>>, LoadReport) = Cache::open(
            dir.as_ref(),
            PREDICTION_ARCHIVE_NAME,
            CacheConfig::default(),
        )?;
        let mut entries: Vec<Predictions> = cache
            .get()
            .map(|c| {
                c.value
                    .iter()
                    .filter(|p| p.validate().is_ok())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        entries.sort_by_key(|p| p.made_at);
        Ok((
            PredictionArchive {
                config,
                cache: Some(cache),
                entries: Mutex::new(entries),
                writer: Mutex::new(false),
            },
            report,
        ))
    }

    /// The archive's configuration.
    pub fn config(&self) -> ArchiveConfig {
        self.config
    }

    fn entries(&self) -> MutexGuard<'_, Vec<Predictions>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of archived predictions.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether the archive is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `predictions` at `now`, unless the newest entry was made at
    /// or after them, or they were made before the retention or past
    /// [`ARCHIVE_FUTURE_SLACK`] after `now` (both would be dropped at once);
    /// drop entries older than [`ArchiveConfig::retention`], entries made
    /// more than [`ARCHIVE_FUTURE_SLACK`] after `now` (recorded while the
    /// clock was ahead: kept, they would refuse every record until the clock
    /// caught up with them), and entries newer ones make needless at the
    /// archive's [`lead`](ArchiveConfig::lead) (see [`PredictionArchive`]).
    /// Returns whether they were recorded.
    ///
    /// With a persisted archive, the new state is written (fsynced) before
    /// this returns. On a write error the archive in memory keeps the new
    /// entry and the error is returned; the next call writes the entries
    /// again, even one that records nothing. This does blocking file I/O:
    /// from async code, call it in `spawn_blocking`.
    pub fn record(
        &self,
        predictions: &Predictions,
        now: DateTime<Utc>,
    ) -> Result<bool, CacheError> {
        let retention = TimeDelta::from_std(self.config.retention).unwrap_or(TimeDelta::MAX);
        let mut unsaved = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let (recorded, snapshot) = {
            let mut entries = self.entries();
            let before = entries.len();
            let latest = now.checked_add_signed(ARCHIVE_FUTURE_SLACK).unwrap_or(now);
            entries.retain(|p| p.made_at <= latest);
            if entries.len() < before {
                tracing::warn!(
                    dropped = before - entries.len(),
                    %now,
                    "archived predictions made after now (the clock was ahead): dropped"
                );
                *unsaved = true;
            }
            let cutoff = now.checked_sub_signed(retention);
            let not_newer = entries
                .last()
                .is_some_and(|last| predictions.made_at <= last.made_at);
            // Kept, they would go at once (too old) or at the next call.
            let out_of_range =
                cutoff.is_some_and(|c| predictions.made_at < c) || predictions.made_at > latest;
            let recorded = !not_newer && !out_of_range;
            if recorded {
                entries.push(predictions.clone());
                *unsaved = true;
            }
            if let Some(cutoff) = cutoff {
                entries.retain(|p| p.made_at >= cutoff);
            }
            if thin(&mut entries, self.config.lead, now) {
                *unsaved = true;
            }
            // Copied only when there is something to write.
            let snapshot = (*unsaved && self.cache.is_some()).then(|| entries.clone());
            (recorded, snapshot)
        };
        if let (Some(cache), Some(snapshot)) = (&self.cache, snapshot) {
            cache.put(snapshot, now)?;
        }
        *unsaved = false;
        Ok(recorded)
    }

    /// The value predicted for `time` by the freshest archived predictions
    /// made at least `min_lead` before it (`None` if no entry made that early
    /// covers `time` on its step grid).
    pub fn forecast_for(&self, time: DateTime<Utc>, min_lead: Duration) -> Option<f64> {
        let lead = TimeDelta::from_std(min_lead).ok()?;
        let entries = self.entries();
        entries
            .iter()
            .rev()
            .filter(|p| made_ahead(p.made_at, lead, time))
            .find_map(|p| value_at(p, time))
    }
}

/// Drops the entries of `entries` (sorted by `made_at`) that no answer of
/// `forecast_for` at `lead` can come from: for each of their steps at least
/// `lead` after they were made, a newer entry, made at least `lead` before
/// the step and no later than `now`, has that step too (the freshest such
/// answers before them). Those newer entries stay as long as they do (they
/// are newer, so retention takes them later), so the answers never change.
/// Whether any was dropped.
fn thin(entries: &mut Vec<Predictions>, lead: Duration, now: DateTime<Utc>) -> bool {
    let Ok(lead) = TimeDelta::from_std(lead) else {
        return false;
    };
    let before = entries.len();
    let mut keep = vec![true; before];
    for (i, entry) in entries.iter().enumerate() {
        let newer = &entries[i + 1..];
        let needed = steps(entry)
            .filter(|&t| made_ahead(entry.made_at, lead, t))
            .any(|t| {
                !newer.iter().any(|n| {
                    n.made_at <= now && made_ahead(n.made_at, lead, t) && value_at(n, t).is_some()
                })
            });
        keep[i] = needed || newer.is_empty();
    }
    let mut flags = keep.into_iter();
    entries.retain(|_| flags.next().unwrap_or(true));
    entries.len() < before
}

/// Whether predictions made at `made_at` were made at least `lead` before
/// `time`, to the second, as the history store counts (it keeps `made_at`
/// in whole seconds): a run made at 10:00:00.4 is a day ahead of 10:00
/// the next day in both.
fn made_ahead(made_at: DateTime<Utc>, lead: TimeDelta, time: DateTime<Utc>) -> bool {
    made_at
        .timestamp()
        .checked_add(lead.num_seconds())
        .is_some_and(|m| m <= time.timestamp())
}

/// The times of `p`'s steps.
fn steps(p: &Predictions) -> impl Iterator<Item = DateTime<Utc>> + '_ {
    let step = i64::try_from(p.step_s).unwrap_or(i64::MAX);
    (0..p.forecast.horizon()).map_while(move |k| {
        i64::try_from(k)
            .ok()
            .and_then(|k| k.checked_mul(step))
            .and_then(TimeDelta::try_seconds)
            .and_then(|d| p.start.checked_add_signed(d))
    })
}

/// The mean of `p` at `time`, if `time` is one of its steps.
fn value_at(p: &Predictions, time: DateTime<Utc>) -> Option<f64> {
    let offset = time.signed_duration_since(p.start).num_seconds();
    let step = i64::try_from(p.step_s).ok().filter(|s| *s > 0)?;
    if offset < 0 || offset % step != 0 {
        return None;
    }
    let index = usize::try_from(offset / step).ok()?;
    p.forecast.mean().get(index).copied()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::forecast::Forecast;
    use crate::predict::Tier;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
    }

    fn hours(h: i64) -> DateTime<Utc> {
        t0() + TimeDelta::hours(h)
    }

    fn predictions(made_h: i64, values: Vec<f64>) -> Predictions {
        Predictions {
            start: hours(made_h),
            step_s: 3600,
            forecast: Forecast::new("test", values, vec![]).unwrap(),
            made_at: hours(made_h),
            tier: Tier::Fallback,
            intervals_from: None,
            inputs: crate::Provenance::Live,
        }
    }

    const DAY: Duration = Duration::from_secs(24 * 3600);

    /// What `forecast_for` answers from every entry recorded (the history
    /// store's rule), for the archive's answers to be checked against.
    fn unthinned(all: &[Predictions], time: DateTime<Utc>, lead: Duration) -> Option<f64> {
        let lead = TimeDelta::from_std(lead).unwrap();
        all.iter()
            .rev()
            .filter(|p| made_ahead(p.made_at, lead, time))
            .find_map(|p| value_at(p, time))
    }

    /// A run made `made_min` minutes after `t0`, starting at the next whole
    /// hour, one value per step: `made_min * 1000 + step`.
    fn run(made_min: i64, horizon: usize) -> Predictions {
        let made_at = t0() + TimeDelta::minutes(made_min);
        let start = t0() + TimeDelta::hours(made_min.div_euclid(60) + 1);
        let values = (0..horizon)
            .map(|k| (made_min * 1000) as f64 + k as f64)
            .collect();
        Predictions {
            start,
            step_s: 3600,
            forecast: Forecast::new("test", values, vec![]).unwrap(),
            made_at,
            tier: Tier::Fallback,
            intervals_from: None,
            inputs: crate::Provenance::Live,
        }
    }

    #[test]
    fn runs_every_five_minutes_thin_to_about_one_an_hour_with_the_same_answers() {
        let a = PredictionArchive::in_memory(ArchiveConfig::default());
        let mut all = Vec::new();
        // Two days of a run every five minutes.
        for m in (0..48 * 60).step_by(5) {
            let p = run(m, 48);
            assert!(a.record(&p, p.made_at).unwrap());
            all.push(p);
        }
        // One kept per hour (the last run of each hour a day before a step),
        // and the newest ones still ahead of them.
        assert!(a.len() <= 48 + 12 * 2, "{} kept of {}", a.len(), all.len());
        assert!(a.len() >= 48, "{} kept", a.len());
        let now = all.last().unwrap().made_at;
        for h in 0..(48 + 48) {
            let t = t0() + TimeDelta::hours(h);
            assert_eq!(
                a.forecast_for(t, DAY),
                unthinned(&all, t, DAY),
                "hour {h}, {} kept",
                a.len()
            );
        }
        // The answer for hour 30 is the last run made at least a day before
        // it, at 6:00 (minute 360, its step 23), not one made earlier.
        assert_eq!(
            a.forecast_for(hours(30), DAY),
            Some(360_000.0 + 23.0),
            "now {now}"
        );
        // Older than the newest, or made at the same time: skipped, not
        // inserted out of order.
        assert!(!a.record(&run(5, 48), now).unwrap());
        assert!(!a.record(&run(48 * 60 - 5, 48), now).unwrap());
    }

    #[test]
    fn made_at_counts_to_the_second_as_the_history_store_does() {
        let a = PredictionArchive::in_memory(ArchiveConfig::default());
        let mut p = predictions(0, (0..48).map(f64::from).collect());
        p.made_at += TimeDelta::milliseconds(400);
        a.record(&p, p.made_at).unwrap();
        assert_eq!(a.forecast_for(hours(24), DAY), Some(24.0));
        assert_eq!(a.forecast_for(hours(23), DAY), None);
    }

    #[test]
    fn an_entry_stays_for_the_steps_newer_ones_do_not_have() {
        let a = PredictionArchive::in_memory(ArchiveConfig::default());
        // A long run, then short ones: the long one alone answers for its
        // far steps, so it stays.
        a.record(&run(0, 48), hours(0)).unwrap();
        for m in (5..120).step_by(5) {
            a.record(&run(m, 12), t0() + TimeDelta::minutes(m)).unwrap();
        }
        assert_eq!(a.forecast_for(hours(40), DAY), Some(39.0));
        assert!(a.entries().iter().any(|p| p.made_at == t0()));
    }

    #[test]
    fn retention_drops_old_entries() {
        let a = PredictionArchive::in_memory(ArchiveConfig::default());
        for h in 0..100 {
            a.record(&predictions(h, vec![h as f64; 48]), hours(h))
                .unwrap();
        }
        assert_eq!(a.len(), 73); // made at 27..=99
        // 50 h: entries made ≤ 26 h are gone; no entry is a day ahead.
        assert_eq!(a.forecast_for(hours(50), DAY), None);
        // 52 h: the entry made at 28 h is (index 24).
        assert_eq!(a.forecast_for(hours(52), DAY), Some(28.0));
    }

    #[test]
    fn off_grid_and_out_of_horizon_times_have_no_value() {
        let a = PredictionArchive::in_memory(ArchiveConfig::default());
        a.record(&predictions(0, (0..48).map(f64::from).collect()), hours(0))
            .unwrap();
        assert_eq!(a.forecast_for(hours(30), DAY), Some(30.0));
        assert_eq!(
            a.forecast_for(hours(30) + TimeDelta::minutes(30), DAY),
            None
        );
        assert_eq!(a.forecast_for(hours(48), DAY), None);
        assert_eq!(a.forecast_for(hours(47), DAY), Some(47.0));
        assert_eq!(a.forecast_for(hours(10), DAY), None); // made too late
        assert_eq!(a.forecast_for(hours(10), Duration::ZERO), Some(10.0));
    }

    #[test]
    fn a_persisted_archive_survives_a_restart_and_a_corrupt_generation() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (a, report) =
                PredictionArchive::open(dir.path(), ArchiveConfig::default()).unwrap();
            assert!(report.is_clean());
            assert!(a.is_empty());
            a.record(&predictions(0, vec![5.0; 48]), hours(0)).unwrap();
            a.record(&predictions(2, vec![7.0; 48]), hours(2)).unwrap();
        }
        let (a, _) = PredictionArchive::open(dir.path(), ArchiveConfig::default()).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a.forecast_for(hours(26), DAY), Some(7.0));

        // Flip a byte in the newest generation: it is quarantined and the
        // previous generation (one entry) is served.
        let newest = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(PREDICTION_ARCHIVE_NAME)
                    && !name.contains("corrupt")
                    && !name.ends_with(".lock")
            })
            .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
            .unwrap();
        let mut bytes = std::fs::read(&newest).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40;
        std::fs::write(&newest, bytes).unwrap();
        drop(a); // a restart
        let (a, report) = PredictionArchive::open(dir.path(), ArchiveConfig::default()).unwrap();
        assert!(!report.is_clean());
        assert_eq!(a.len(), 1);
        assert_eq!(a.forecast_for(hours(26), DAY), Some(5.0));
    }

    #[test]
    fn a_clock_that_was_ahead_does_not_wedge_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = PredictionArchive::open(dir.path(), ArchiveConfig::default()).unwrap();
        assert!(a.record(&predictions(0, vec![1.0; 48]), hours(0)).unwrap());
        // The clock jumps 30 days ahead for one record, then is corrected.
        assert!(
            a.record(&predictions(720, vec![9.0; 48]), hours(720))
                .unwrap()
        );
        assert!(a.record(&predictions(1, vec![2.0; 48]), hours(1)).unwrap());
        for h in 2..30 {
            assert!(
                a.record(&predictions(h, vec![h as f64; 48]), hours(h))
                    .unwrap()
            );
        }
        // The entry made at 0 h went with the jump (retention follows the
        // clock); those made since the correction are all there.
        assert_eq!(a.len(), 29);
        assert_eq!(a.forecast_for(hours(25), DAY), Some(2.0));
        drop(a);
        // The restart finds what was in memory, the future entry gone.
        let (a, _) = PredictionArchive::open(dir.path(), ArchiveConfig::default()).unwrap();
        assert_eq!(a.len(), 29);
        assert!(a.entries().iter().all(|p| p.made_at <= hours(29)));
        // An entry a moment ahead (another caller's clock reading) is kept.
        let mut p = predictions(31, vec![31.0; 48]);
        p.made_at += TimeDelta::minutes(2);
        assert!(a.record(&p, hours(31)).unwrap());
        assert!(
            !a.record(&predictions(31, vec![0.0; 48]), hours(31))
                .unwrap()
        );
        assert_eq!(a.len(), 30);
    }

    #[test]
    fn entries_that_would_be_dropped_at_once_are_not_recorded() {
        let a = PredictionArchive::in_memory(ArchiveConfig::default());
        let now = hours(1000);
        let retention = TimeDelta::from_std(ArchiveConfig::default().retention).unwrap();
        let old = predictions(1000 - retention.num_hours() - 1, vec![1.0; 48]);
        assert!(!a.record(&old, now).unwrap(), "older than the retention");
        let ahead = predictions(1001, vec![1.0; 48]);
        assert!(!a.record(&ahead, now).unwrap(), "an hour after now");
        assert!(a.is_empty());
        assert!(a.record(&predictions(1000, vec![1.0; 48]), now).unwrap());
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn an_entry_whose_write_failed_is_written_by_the_next_call() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("archive");
        let (a, _) = PredictionArchive::open(&root, ArchiveConfig::default()).unwrap();
        assert!(a.record(&predictions(0, vec![1.0; 48]), hours(0)).unwrap());
        // The directory is replaced by a file: the write fails, the entry
        // stays in memory.
        let aside = dir.path().join("aside");
        std::fs::rename(&root, &aside).unwrap();
        std::fs::write(&root, b"not a directory").unwrap();
        assert!(a.record(&predictions(1, vec![2.0; 48]), hours(1)).is_err());
        assert_eq!(a.len(), 2);
        std::fs::remove_file(&root).unwrap();
        std::fs::rename(&aside, &root).unwrap();
        // Older than the newest: nothing recorded, but the entries are
        // written.
        assert!(!a.record(&predictions(0, vec![3.0; 48]), hours(1)).unwrap());
        drop(a);
        let (a, _) = PredictionArchive::open(&root, ArchiveConfig::default()).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a.forecast_for(hours(25), DAY), Some(2.0));
    }

    /// Concurrent records: what a restart finds is what was in memory (the
    /// newest generation is never an older snapshot written last).
    #[test]
    fn concurrent_records_persist_the_newest_state() {
        use std::sync::atomic::{AtomicI64, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = PredictionArchive::open(dir.path(), ArchiveConfig::default()).unwrap();
        let next = AtomicI64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..40 {
                        let h = next.fetch_add(1, Ordering::SeqCst);
                        let p = predictions(h, vec![h as f64; 4]);
                        a.record(&p, hours(h)).unwrap();
                    }
                });
            }
        });
        let in_memory: Vec<DateTime<Utc>> = a.entries().iter().map(|p| p.made_at).collect();
        drop(a);
        let (b, _) = PredictionArchive::open(dir.path(), ArchiveConfig::default()).unwrap();
        let persisted: Vec<DateTime<Utc>> = b.entries().iter().map(|p| p.made_at).collect();
        assert_eq!(persisted, in_memory);
    }

    proptest! {
        /// Whatever runs are recorded (any minute, any horizon, in any
        /// order, the clock moving forward), the archive stays ordered and
        /// within retention, and answers at its lead as every run recorded
        /// would.
        #[test]
        fn thinning_never_changes_an_answer(
            made in proptest::collection::vec((0i64..6000, 1usize..60), 1..80),
            queries in proptest::collection::vec(0i64..160, 1..20),
        ) {
            let a = PredictionArchive::in_memory(ArchiveConfig::default());
            let mut all: Vec<Predictions> = Vec::new();
            let mut now = t0();
            for (m, horizon) in made {
                let p = run(m, horizon);
                now = now.max(p.made_at);
                if a.record(&p, now).unwrap() {
                    all.push(p);
                }
            }
            let cutoff = now - TimeDelta::hours(72);
            all.retain(|p| p.made_at >= cutoff);
            let entries = a.entries().clone();
            for w in entries.windows(2) {
                prop_assert!(w[0].made_at < w[1].made_at);
            }
            for e in &entries {
                prop_assert!(e.made_at >= cutoff);
            }
            for h in queries {
                let t = hours(h);
                prop_assert_eq!(a.forecast_for(t, DAY), unthinned(&all, t, DAY), "hour {}", h);
            }
        }
    }
}
