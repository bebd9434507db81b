//! Past predictions, kept to judge them against what happened.
//!
//! The dashboard's "forecast error of the last day" compares the demand of
//! the last 24 hours with what was predicted for those hours a day before.
//! The prediction chain only keeps the *latest* predictions, so the archive
//! keeps a thinned history of them: at most one entry per
//! [`ArchiveConfig::min_spacing`], none older than
//! [`ArchiveConfig::retention`], persisted crash-safely in a [`Cache`] so a
//! restart does not lose a day of history.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::Predictions;
use crate::cache::{Cache, CacheConfig, CacheError, LoadReport};

/// The name of the archive's cache files in their directory.
pub const PREDICTION_ARCHIVE_NAME: &str = "prediction-archive";

/// How far after `now` an archived entry may have been made before
/// [`PredictionArchive::record`] takes it for the mark of a clock that was
/// ahead and drops it (callers recording at once may read the clock a
/// moment apart).
pub const ARCHIVE_FUTURE_SLACK: TimeDelta = TimeDelta::minutes(5);

/// How much of the past the [`PredictionArchive`] keeps.
///
/// ```
/// use std::time::Duration;
/// let c = spe_core::ArchiveConfig::default();
/// assert_eq!(c.retention, Duration::from_secs(72 * 3600));
/// assert_eq!(c.min_spacing, Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveConfig {
    /// Entries made longer ago than this are dropped. The default, 72 h,
    /// covers a day-ahead lead over a full day with a day to spare.
    pub retention: Duration,
    /// A new entry is recorded only if the newest one was made at least this
    /// long before it (the chain may regenerate every few minutes; hourly
    /// entries are enough to judge hourly values). Default 1 h.
    pub min_spacing: Duration,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            retention: Duration::from_secs(72 * 3600),
            min_spacing: Duration::from_secs(3600),
        }
    }
}

/// A thinned, persisted history of past [`Predictions`].
///
/// [`record`](Self::record) every fresh result of the chain;
/// [`forecast_for`](Self::forecast_for) then answers "what was predicted for
/// this hour, at least this long before it?" — the freshest such prediction.
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

    /// Record `predictions` at `now`, unless the newest entry was made less
    /// than [`ArchiveConfig::min_spacing`] before them (or after them), or
    /// they were made before the retention or past [`ARCHIVE_FUTURE_SLACK`]
    /// after `now` (both would be dropped at once); drop
    /// entries older than [`ArchiveConfig::retention`], and entries made
    /// more than [`ARCHIVE_FUTURE_SLACK`] after `now` (recorded while the clock was
    /// ahead: kept, they would refuse every record until the clock caught up
    /// with them). Returns whether they were recorded.
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
        let spacing = TimeDelta::from_std(self.config.min_spacing).unwrap_or(TimeDelta::MAX);
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
            let too_close = entries.last().is_some_and(|last| {
                last.made_at
                    .checked_add_signed(spacing)
                    .is_none_or(|t| predictions.made_at < t)
            });
            // Kept, they would go at once (too old) or at the next call.
            let out_of_range =
                cutoff.is_some_and(|c| predictions.made_at < c) || predictions.made_at > latest;
            let recorded = !too_close && !out_of_range;
            if recorded {
                entries.push(predictions.clone());
                *unsaved = true;
            }
            if let Some(cutoff) = cutoff {
                entries.retain(|p| p.made_at >= cutoff);
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
        let latest_made = time.checked_sub_signed(lead)?;
        let entries = self.entries();
        entries
            .iter()
            .rev()
            .filter(|p| p.made_at <= latest_made)
            .find_map(|p| value_at(p, time))
    }
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

    #[test]
    fn entries_closer_than_the_spacing_are_skipped() {
        let a = PredictionArchive::in_memory(ArchiveConfig::default());
        assert!(a.record(&predictions(0, vec![1.0; 48]), hours(0)).unwrap());
        let mut p = predictions(0, vec![2.0; 48]);
        p.made_at = t0() + TimeDelta::minutes(59);
        assert!(!a.record(&p, p.made_at).unwrap());
        assert!(a.record(&predictions(1, vec![3.0; 48]), hours(1)).unwrap());
        // Older than the newest: skipped, not inserted out of order.
        assert!(!a.record(&predictions(-5, vec![4.0; 48]), hours(1)).unwrap());
        assert_eq!(a.len(), 2);
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
        // Too close to record anything, but the entries are written.
        let mut p = predictions(1, vec![3.0; 48]);
        p.made_at += TimeDelta::minutes(10);
        assert!(!a.record(&p, p.made_at).unwrap());
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
        /// Whatever is recorded, the archive stays ordered, spaced and within
        /// retention, and every answer is a value some entry made early enough.
        #[test]
        fn invariants_hold(made in proptest::collection::vec(0i64..400, 1..60), query in 0i64..500) {
            let a = PredictionArchive::in_memory(ArchiveConfig::default());
            let mut now = hours(0);
            for h in made {
                let p = predictions(h, vec![h as f64; 48]);
                now = now.max(p.made_at);
                a.record(&p, now).unwrap();
            }
            let entries = a.entries().clone();
            for w in entries.windows(2) {
                prop_assert!(w[1].made_at - w[0].made_at >= TimeDelta::hours(1));
            }
            for e in &entries {
                prop_assert!(e.made_at >= now - TimeDelta::hours(72));
            }
            if let Some(v) = a.forecast_for(hours(query), DAY) {
                let made_h = v as i64;
                prop_assert!(made_h + 24 <= query && query < made_h + 48);
            }
        }
    }
}
