//! The long-term history store: see [`HistoryStore`].

mod backup;
mod error;
mod lock;
mod schema;
#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;

use crate::durable;
use crate::frame::{EnergyFrame, SupplySource, WeatherFrame, WeatherVariable};
use crate::kpi::{KpiSet, KpiStatus};
use crate::predict::{Predictions, Tier};
use crate::provenance::Provenance;

pub use backup::BackupInfo;
pub use error::StoreError;

use lock::StoreLock;
use schema::{Check, db_error};

/// The database's file name in the store's directory.
pub const HISTORY_FILE: &str = "history.sqlite";
/// The directory, inside the store's, that holds the backups.
pub const BACKUP_DIR: &str = "backups";

/// How the store keeps its backups and old predictions.
///
/// ```
/// use spe_core::StoreConfig;
/// let c = StoreConfig::default();
/// assert_eq!(c.backup_every.as_secs(), 30 * 60); // well inside a 1 h RPO
/// assert!(c.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// The time between two backups ([`HistoryStore::maintain`]). Restoring
    /// the newest backup loses at most this much: keep it under the RPO.
    pub backup_every: Duration,
    /// How many backups are kept (the oldest are deleted), at least 1.
    pub backups_kept: usize,
    /// How long predictions are kept, by the time they were made, counted
    /// back from now or from the newest prediction, whichever is earlier:
    /// a clock that jumps ahead prunes nothing recent, and when the engine
    /// stops, the predictions before it stopped stay for the post-mortem.
    /// Observations and KPIs are kept for ever (a few dozen rows an hour).
    pub predictions_kept: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backup_every: Duration::from_secs(30 * 60),
            backups_kept: 6,
            predictions_kept: Duration::from_secs(90 * 86_400),
        }
    }
}

impl StoreConfig {
    /// The configuration with `backup_every` set.
    pub fn with_backup_every(mut self, every: Duration) -> Self {
        self.backup_every = every;
        self
    }

    /// The configuration with `backups_kept` set.
    pub fn with_backups_kept(mut self, kept: usize) -> Self {
        self.backups_kept = kept;
        self
    }

    /// The configuration with `predictions_kept` set.
    pub fn with_predictions_kept(mut self, kept: Duration) -> Self {
        self.predictions_kept = kept;
        self
    }

    /// Checks the configuration: a backup interval of at least a second
    /// and at most a day, at least one backup kept, predictions kept at least
    /// two days (the day-ahead forecast error needs yesterday's).
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |m: &str| Err(StoreError::InvalidConfig(m.to_owned()));
        if self.backup_every < Duration::from_secs(1)
            || self.backup_every > Duration::from_secs(86_400)
        {
            return bad("backup_every must be between 1 s and 1 day");
        }
        if self.backups_kept == 0 {
            return bad("backups_kept must be at least 1");
        }
        if self.predictions_kept < Duration::from_secs(2 * 86_400)
            || self.predictions_kept > Duration::from_secs(100 * 365 * 86_400)
        {
            return bad("predictions_kept must be between 2 days and 100 years");
        }
        Ok(())
    }
}

/// One recorded value: a series' value for one hour (or one instant), and
/// where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// The series: a weather variable's Open-Meteo name, `demand_mw`, a
    /// supply column (`solar_mw`, `wind_mw`, `other_mw`, `imports_mw`), or any name of yours.
    pub series: String,
    /// The time the value is for (the start of its hour for hourly data).
    pub time: DateTime<Utc>,
    /// The value (finite).
    pub value: f64,
    /// Where it came from. A `cached` provenance is stored with its age.
    pub provenance: Provenance,
}

impl Observation {
    /// An observation.
    pub fn new(
        series: impl Into<String>,
        time: DateTime<Utc>,
        value: f64,
        provenance: Provenance,
    ) -> Self {
        Observation {
            series: series.into(),
            time,
            value,
            provenance,
        }
    }
}

/// A KPI as recorded for one hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiRecord {
    /// The KPI's name (`demand_mw`, `coverage_ratio`, …).
    pub name: String,
    /// The hour it was computed in (start of the hour, UTC).
    pub hour: DateTime<Utc>,
    /// Its value, `None` when it was unknown.
    pub value: Option<f64>,
    /// Its unit.
    pub unit: String,
    /// Its status then.
    pub status: KpiStatus,
    /// The provenance of the data it was computed from.
    pub provenance: Provenance,
    /// When it was computed (the last time in that hour).
    pub computed_at: DateTime<Utc>,
}

/// One step of recorded predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionRecord {
    /// When the predictions were made (to the second).
    pub made_at: DateTime<Utc>,
    /// The time this step is for.
    pub target: DateTime<Utc>,
    /// The model that made them.
    pub model: String,
    /// The tier that answered.
    pub tier: Tier,
    /// The provenance of the history they were made from.
    pub inputs: Provenance,
    /// The predicted mean.
    pub mean: f64,
    /// The interval bounds at this step: `(level, lower, upper)`, by level.
    pub bounds: Vec<(f64, f64, f64)>,
}

/// What [`HistoryStore::open`] (or [`HistoryStore::recover`]) found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoreOpenReport {
    /// The database did not exist and no backup was there: a new, empty one
    /// was created.
    pub created: bool,
    /// The damaged database, moved aside (with its `-wal` beside it), and
    /// why it was judged damaged.
    pub quarantined: Option<(PathBuf, String)>,
    /// The database was missing (deleted by hand?) while backups existed.
    pub was_missing: bool,
    /// The backup restored in its place, if any.
    pub restored_from: Option<BackupInfo>,
    /// Backups that failed their check while looking for one to restore,
    /// and why: each moved aside to `<name>.unusable` in the backup
    /// directory (kept for a post-mortem, no longer listed, counted as the
    /// newest backup, nor tried again), the path here being where it is.
    pub unusable_backups: Vec<(PathBuf, String)>,
    /// Backups passed over, and left where they are, while looking for one
    /// to restore: written by a newer SP-E (sound, as far as this one can
    /// tell, and that build's to read), and why. A backup that cannot be
    /// read at all just now (I/O, permissions) is neither skipped nor set
    /// aside: the open (or `recover`) fails, to be tried again.
    pub skipped_backups: Vec<(PathBuf, String)>,
}

impl StoreOpenReport {
    /// Whether the database opened as it was: nothing quarantined, missing or
    /// restored.
    pub fn is_clean(&self) -> bool {
        self.quarantined.is_none() && !self.was_missing && self.restored_from.is_none()
    }

    /// A one-line account for a log or an incident (empty when clean).
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some((path, why)) = &self.quarantined {
            parts.push(format!(
                "damaged database quarantined as {} ({why})",
                path.display()
            ));
        }
        if self.was_missing {
            parts.push("the database was missing".to_owned());
        }
        match &self.restored_from {
            Some(b) => parts.push(format!(
                "restored the backup of {} ({})",
                b.taken_at.to_rfc3339(),
                b.path.display()
            )),
            None if !self.is_clean() => parts.push("no sound backup: started empty".to_owned()),
            None => {}
        }
        for (path, why) in &self.unusable_backups {
            parts.push(format!("backup {} unusable ({why})", path.display()));
        }
        for (path, why) in &self.skipped_backups {
            parts.push(format!("backup {} skipped ({why})", path.display()));
        }
        parts.join("; ")
    }
}

/// Counts and bounds of what the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoreStats {
    /// Observation rows.
    pub observations: u64,
    /// Prediction steps.
    pub predictions: u64,
    /// KPI rows.
    pub kpis: u64,
    /// The earliest and latest observation times.
    pub observed_from: Option<DateTime<Utc>>,
    /// See `observed_from`.
    pub observed_to: Option<DateTime<Utc>>,
    /// The newest backup, if any.
    pub last_backup: Option<DateTime<Utc>>,
}

/// What [`HistoryStore::maintain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Maintenance {
    /// The backup made, if one was due.
    pub backup: Option<BackupInfo>,
    /// Old backups deleted.
    pub backups_deleted: usize,
    /// Prediction steps deleted (made before the retention).
    pub predictions_pruned: usize,
}

/// The long-term history store: observations, predictions and KPIs, hour by
/// hour, in an embedded SQLite database, with backups.
///
/// - **What it keeps.** [`Observation`]s (one value of one series, such as
///   `temperature_2m` or `demand_mw`, for one hour, with its provenance), the
///   [`Predictions`] the chain made (every step, with its intervals) and the
///   [`KpiSet`]s computed (one row per KPI and hour, the last computed in the
///   hour wins).
/// - **Which value wins.** A recorded value replaces an earlier one of the
///   same series and hour unless it is less real: `live` beats `cached`, which
///   beats `synthetic` and `fallback`. So an hour measured live is never
///   overwritten by an estimate made during an outage, and an estimate is
///   replaced when live data for that hour arrives.
/// - **Durability.** Write-ahead log with `synchronous = FULL`: a write that
///   returned is on disk (the RPO's "acknowledged writes are never lost").
///   [`HistoryStore::maintain`] copies the database to `backups/` every
///   [`StoreConfig::backup_every`] (SQLite's online backup, then fsync of the
///   copy and its directory) and keeps the newest [`StoreConfig::backups_kept`].
/// - **Damage.** Opening checks the file (`PRAGMA quick_check`, the
///   application id and the schema version). A damaged file is quarantined
///   (renamed to `history.sqlite.corrupt-<time>`, with its `-wal`) and the
///   newest backup that passes the same check is restored in its place; the
///   [`StoreOpenReport`] says what happened and how much was lost. Damage
///   found later is [`StoreError::Corrupt`]; [`HistoryStore::recover`] does
///   the same quarantine and restore without a restart. A file of another
///   application, or of a newer SP-E, is refused and left untouched.
/// - **Provenance.** Each row keeps where its data came from, and for
///   cached data how old it was when handed out (an observation's value, a
///   prediction's inputs, the data a KPI set was computed from).
/// - **Upgrades.** A store written by an older SP-E is migrated when it is
///   opened, in one transaction under the write lock (stores opening it at
///   once wait, and find it migrated). The file as it was is first copied to
///   `history.sqlite.v<version>` beside it: an older SP-E refuses a newer
///   schema, so going back means putting that copy in place (what was
///   recorded since is lost). A backup of an older version is migrated when
///   it is restored. From version 1 (before the cached ages of predictions'
///   inputs and of KPIs were kept), those rows read back with age 0.
///
/// Every method blocks (SQLite and fsync): from async code, call it in
/// `tokio::task::spawn_blocking`. The store is `Sync`: one connection behind a
/// mutex, so writes are serialised.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{HistoryStore, Observation, Provenance, StoreConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let (store, report) = HistoryStore::open(dir.path(), StoreConfig::default(), Utc::now())?;
/// assert!(report.is_clean());
///
/// let h = Utc.with_ymd_and_hms(2026, 1, 14, 9, 0, 0).unwrap();
/// store.record_observations(&[
///     Observation::new("demand_mw", h, 1180.0, Provenance::Synthetic),
///     Observation::new("demand_mw", h, 1215.0, Provenance::Live),
///     Observation::new("demand_mw", h, 1190.0, Provenance::Synthetic), // less real: ignored
/// ])?;
/// let rows = store.observations("demand_mw", h, h + chrono::Duration::hours(1))?;
/// assert_eq!((rows[0].value, rows[0].provenance), (1215.0, Provenance::Live));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct HistoryStore {
    inner: Mutex<Inner>,
    location: Option<PathBuf>,
    config: StoreConfig,
    /// A repair failed: failing calls report corruption until one succeeds.
    broken: AtomicBool,
    /// The shared lock every open store holds (`None` in memory).
    lock: Option<StoreLock>,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    last_backup: Option<DateTime<Utc>>,
}

impl HistoryStore {
    /// Opens (or creates) the store in `dir`: the database
    /// `dir/history.sqlite`, backups in `dir/backups/`. A damaged or missing
    /// database is replaced by the newest sound backup (see the
    /// [`HistoryStore`] docs); `now` names the quarantined file.
    ///
    /// # Errors
    ///
    /// The directory cannot be created, the file is another application's
    /// or a newer SP-E's, the configuration is invalid, or the database
    /// cannot be written (full disk, permissions).
    pub fn open(
        dir: &Path,
        config: StoreConfig,
        now: DateTime<Utc>,
    ) -> Result<(HistoryStore, StoreOpenReport), StoreError> {
        config.validate()?;
        for (parent, e) in durable::create_dir_all(dir)
            .map_err(|e| StoreError::io("create the store directory", dir, e))?
        {
            tracing::warn!(dir = %parent.display(), error = %e, "could not fsync a new directory's parent");
        }
        let path = dir.join(HISTORY_FILE);
        let lock = StoreLock::shared(dir)?;
        let mut report = StoreOpenReport::default();
        let conn = match open_or_restore(&path, now, &mut report, &lock) {
            // Another store was creating the file as this one looked: it is
            // there now.
            Err(StoreError::InUse { .. }) if report.is_clean() => match schema::inspect(&path) {
                Check::Sound(conn) => conn,
                _ => open_or_restore(&path, now, &mut report, &lock)?,
            },
            other => other?,
        };
        let last_backup = backup::list_or_none(&dir.join(BACKUP_DIR))
            .last()
            .map(|b| b.taken_at);
        let store = HistoryStore {
            inner: Mutex::new(Inner { conn, last_backup }),
            location: Some(dir.to_path_buf()),
            config,
            broken: AtomicBool::new(false),
            lock: Some(lock),
        };
        if !report.is_clean() {
            tracing::warn!(report = %report.summary(), "history store recovered");
        }
        Ok((store, report))
    }

    /// A store in memory (tests, or a process that keeps nothing); backups
    /// and recovery do nothing.
    pub fn in_memory(config: StoreConfig) -> Result<HistoryStore, StoreError> {
        config.validate()?;
        let conn = Connection::open_in_memory().map_err(db_error("open an in-memory database"))?;
        schema::prepare(&conn, Path::new(":memory:"))?;
        Ok(HistoryStore {
            inner: Mutex::new(Inner {
                conn,
                last_backup: None,
            }),
            location: None,
            config,
            broken: AtomicBool::new(false),
            lock: None,
        })
    }

    /// Moves the store in `from` (its database, backups and the files set
    /// aside beside them: the whole directory) to `to`, which must not exist
    /// and must be on the same file system (its parent is created if
    /// missing). The move is one rename, made
    /// durable (both parent directories are fsynced): after a crash the
    /// store is wholly in one place or the other. Meant for a store's
    /// owner changing its layout, before opening it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Open`] if a store, in this process or another, has it
    /// open (nothing is moved); [`StoreError::Io`] if `to` exists, or the
    /// rename or an fsync fails.
    ///
    /// ```
    /// use spe_core::{HistoryStore, StoreConfig};
    /// # let tmp = std::env::temp_dir().join(format!("spe-relocate-doc-{}", std::process::id()));
    /// let (from, to) = (tmp.join("old"), tmp.join("new"));
    /// let now = chrono::Utc::now();
    /// drop(HistoryStore::open(&from, StoreConfig::default(), now)?);
    /// HistoryStore::relocate(&from, &to)?;
    /// assert!(!from.exists());
    /// assert!(to.join(spe_core::HISTORY_FILE).exists());
    /// # std::fs::remove_dir_all(&tmp)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn relocate(from: &Path, to: &Path) -> Result<(), StoreError> {
        let lock_path = from.join(lock::LOCK_FILE);
        let Some(_lock) = lock::try_exclusive(&lock_path)? else {
            return Err(StoreError::Open {
                dir: from.to_path_buf(),
            });
        };
        if to.symlink_metadata().is_ok() {
            return Err(StoreError::io(
                "move the store to",
                to,
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            ));
        }
        if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
            for (dir, e) in durable::create_dir_all(parent)
                .map_err(|e| StoreError::io("create the directory", parent, e))?
            {
                tracing::warn!(dir = %dir.display(), error = %e, "could not fsync a new directory's parent");
            }
        }
        std::fs::rename(from, to).map_err(|e| StoreError::io("move the store to", to, e))?;
        // The lock file moved with the directory: the lock is still held
        // (it is on the file, not its name) until `_lock` is dropped.
        for parent in [from.parent(), to.parent()].into_iter().flatten() {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            durable::sync_dir(parent)
                .map_err(|e| StoreError::io("fsync the directory", parent, e))?;
        }
        Ok(())
    }

    /// The store's directory (`None` in memory).
    pub fn dir(&self) -> Option<&Path> {
        self.location.as_deref()
    }

    /// Its configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock left no transaction open (rusqlite
        // rolls back on drop): the connection is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn db_path(&self) -> PathBuf {
        self.location
            .as_ref()
            .map_or_else(|| PathBuf::from(":memory:"), |d| d.join(HISTORY_FILE))
    }

    /// Maps SQLite's corruption codes to [`StoreError::Corrupt`].
    fn check<T>(&self, r: Result<T, rusqlite::Error>, op: &'static str) -> Result<T, StoreError> {
        r.map_err(|e| {
            if self.broken.load(Ordering::Acquire) {
                StoreError::Corrupt {
                    path: self.db_path(),
                    detail: format!("{e} (an earlier repair failed: recover again)"),
                }
            } else {
                schema::classify(e, op, &self.db_path())
            }
        })
    }

    /// Records observations in one transaction (all or none), by the rule in
    /// the [`HistoryStore`] docs: a value replaces the stored one for its
    /// series and time unless it is less real. Returns how many rows were
    /// inserted or replaced: a series and time given twice (the later value
    /// wins unless it is less real) counts once.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidValue`] for a non-finite value, an empty series
    /// name or a time outside ±262,000 years (nothing is written); database
    /// errors.
    pub fn record_observations(&self, rows: &[Observation]) -> Result<usize, StoreError> {
        for o in rows {
            if !o.value.is_finite() {
                return Err(invalid(
                    format!("observation {}", o.series),
                    format!("value {} at {}", o.value, o.time),
                ));
            }
            if o.series.is_empty() || o.series.len() > 200 {
                return Err(invalid("observation", "a series name of 1 to 200 bytes"));
            }
        }
        let mut inner = self.lock();
        let r = (|| {
            let tx = inner.conn.transaction()?;
            let mut changed = std::collections::HashSet::new();
            {
                let mut stmt = tx.prepare_cached(schema::UPSERT_OBSERVATION)?;
                for o in rows {
                    let n = stmt.execute(params![
                        o.series,
                        o.time.timestamp(),
                        o.value,
                        o.provenance.name(),
                        age_column(o.provenance),
                        rank(o.provenance),
                    ])?;
                    if n > 0 {
                        changed.insert((o.series.as_str(), o.time.timestamp()));
                    }
                }
            }
            tx.commit()?;
            Ok(changed.len())
        })();
        drop(inner);
        self.check(r, "record observations")
    }

    /// Records the hours of `frame` before `until` (the hours that are past:
    /// a frame's later hours are forecasts, not observations), one
    /// observation per core weather variable and hour with a value.
    pub fn record_weather(
        &self,
        frame: &WeatherFrame,
        until: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let axis = frame.axis();
        let mut rows = Vec::new();
        for var in WeatherVariable::ALL {
            push_column(
                &mut rows,
                var.name(),
                &axis,
                frame.columns().get(var),
                until,
                frame.provenance(),
            );
        }
        self.record_observations(&rows)
    }

    /// Records the hours of `frame` before `until`: `demand_mw` and one
    /// series per supply source (its column name, `solar_mw`, `wind_mw`, …).
    pub fn record_energy(
        &self,
        frame: &EnergyFrame,
        until: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let axis = frame.axis();
        let mut rows = Vec::new();
        push_column(
            &mut rows,
            "demand_mw",
            &axis,
            frame.demand_mw(),
            until,
            frame.provenance(),
        );
        for source in SupplySource::ALL {
            push_column(
                &mut rows,
                source.column(),
                &axis,
                frame.supply_of(source),
                until,
                frame.provenance(),
            );
        }
        self.record_observations(&rows)
    }

    /// The observations of `series` in `[from, to)`, oldest first.
    pub fn observations(
        &self,
        series: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Observation>, StoreError> {
        let inner = self.lock();
        let r = (|| {
            let mut stmt = inner.conn.prepare_cached(schema::SELECT_OBSERVATIONS)?;
            let rows =
                stmt.query_map(params![series, ceil_second(from), ceil_second(to)], |row| {
                    let time: i64 = row.get(0)?;
                    let value: f64 = row.get(1)?;
                    let provenance: String = row.get(2)?;
                    let age: Option<i64> = row.get(3)?;
                    Ok((time, value, provenance, age))
                })?;
            rows.collect::<Result<Vec<_>, _>>()
        })();
        drop(inner);
        let raw = self.check(r, "read observations")?;
        raw.into_iter()
            .map(|(time, value, provenance, age)| {
                Ok(Observation {
                    series: series.to_owned(),
                    time: from_unix(time, &self.db_path())?,
                    value,
                    provenance: provenance_from(&provenance, age, &self.db_path())?,
                })
            })
            .collect()
    }

    /// The weather recorded from real sources over the hours of
    /// `[from, to)` (`from` rounded down to its hour), as a frame of
    /// provenance `live` made at `to`: a value recorded `live` or `cached`
    /// (a kept live value) is taken, an hour without one is a gap. Values
    /// recorded as estimates (`synthetic`, `fallback`) are left out, so a
    /// generator [calibrated](crate::Generator::calibrate) on this frame
    /// is fitted to the site's weather, not to its own estimates.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use spe_core::{HistoryStore, Observation, Provenance, StoreConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = HistoryStore::in_memory(StoreConfig::default())?;
    /// let t = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
    /// store.record_observations(&[
    ///     Observation::new("temperature_2m", t, 4.5, Provenance::Live),
    ///     Observation::new("temperature_2m", t + chrono::Duration::hours(1), 9.0, Provenance::Synthetic),
    /// ])?;
    /// let frame = store.real_weather(t, t + chrono::Duration::hours(2))?;
    /// assert_eq!(frame.temperature_2m(), &[Some(4.5), None]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidValue`] if the range holds no whole hour or is
    /// longer than [`MAX_REAL_WEATHER_HOURS`]; a recorded value outside its
    /// variable's plausible range (written by hand as that series) is a
    /// [`StoreError::Database`] naming it; database errors.
    pub fn real_weather(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<WeatherFrame, StoreError> {
        let start = from.duration_trunc(TimeDelta::hours(1)).unwrap_or(from);
        let hours = to.signed_duration_since(start).num_hours();
        let len = usize::try_from(hours)
            .ok()
            .filter(|n| (1..=MAX_REAL_WEATHER_HOURS).contains(n))
            .ok_or_else(|| {
                invalid(
                    "weather range",
                    format!(
                        "{from} to {to} holds {hours} whole hours, not 1 to {MAX_REAL_WEATHER_HOURS}"
                    ),
                )
            })?;
        let axis = crate::series::TimeAxis::new(start, len)
            .map_err(|e| invalid("weather range", e.to_string()))?;
        let end = axis.end();
        let mut columns = crate::frame::WeatherColumns::with_capacity(len);
        for var in WeatherVariable::ALL {
            let column = columns.get_mut(var);
            column.resize(len, None);
            for o in self.observations(var.name(), start, end)? {
                if o.provenance.rank() == 0 {
                    continue;
                }
                if let Some(i) = axis.index_of(o.time) {
                    column[i] = Some(o.value);
                }
            }
        }
        WeatherFrame::new(axis, columns, Provenance::Live, to)
            .map_err(|e| damaged(&self.db_path(), format!("recorded weather: {e}")))
    }

    /// The names of the series that have observations, sorted.
    pub fn series(&self) -> Result<Vec<String>, StoreError> {
        let inner = self.lock();
        let r = (|| {
            let mut stmt = inner
                .conn
                .prepare_cached("SELECT DISTINCT series FROM observations ORDER BY series")?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>, _>>()
        })();
        drop(inner);
        self.check(r, "list the series")
    }

    /// Records every step of `predictions`. Returns the steps written.
    ///
    /// Predictions are known by when they were made, to the second: a
    /// record with the `made_at` second of an earlier one (the same
    /// predictions again, or a second run within that second) replaces it
    /// whole, steps and bounds, so the newest run of each second is kept.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidValue`] if a step's time is out of range;
    /// database errors.
    pub fn record_predictions(&self, predictions: &Predictions) -> Result<usize, StoreError> {
        let made_at = predictions.made_at.timestamp();
        let step = i64::try_from(predictions.step_s)
            .map_err(|_| invalid("predictions", "a step over i64::MAX seconds"))?;
        let start = predictions.start.timestamp();
        let forecast = &predictions.forecast;
        let targets: Vec<i64> = (0..forecast.mean().len())
            .map(|i| {
                i64::try_from(i)
                    .ok()
                    .and_then(|i| i.checked_mul(step))
                    .and_then(|d| d.checked_add(start))
                    .filter(|t| DateTime::from_timestamp(*t, 0).is_some())
                    .ok_or_else(|| {
                        invalid("predictions", format!("step {i} is out of the time range"))
                    })
            })
            .collect::<Result<_, _>>()?;
        let mut inner = self.lock();
        let r = (|| {
            let tx = inner.conn.transaction()?;
            {
                // The same predictions recorded again replace every step
                // (none of a longer earlier record is left behind).
                tx.prepare_cached("DELETE FROM prediction_bounds WHERE made_at = ?1")?
                    .execute([made_at])?;
                tx.prepare_cached("DELETE FROM predictions WHERE made_at = ?1")?
                    .execute([made_at])?;
                let mut ins = tx.prepare_cached(schema::UPSERT_PREDICTION)?;
                let mut bound = tx.prepare_cached(schema::INSERT_BOUND)?;
                for (i, (&target, &mean)) in targets.iter().zip(forecast.mean()).enumerate() {
                    ins.execute(params![
                        made_at,
                        target,
                        forecast.model(),
                        predictions.tier.name(),
                        predictions.inputs.name(),
                        mean,
                        age_column(predictions.inputs)
                    ])?;
                    for interval in forecast.intervals() {
                        bound.execute(params![
                            made_at,
                            target,
                            interval.level,
                            interval.lower[i],
                            interval.upper[i]
                        ])?;
                    }
                }
            }
            tx.commit()?;
            Ok(targets.len())
        })();
        drop(inner);
        self.check(r, "record predictions")
    }

    /// The prediction for `target` made at least `lead` before it, the
    /// latest such: for example the day-ahead forecast of an hour
    /// (`lead` = 24 h). `None` if none was recorded.
    pub fn prediction_for(
        &self,
        target: DateTime<Utc>,
        lead: Duration,
    ) -> Result<Option<PredictionRecord>, StoreError> {
        let lead = i64::try_from(lead.as_secs()).unwrap_or(i64::MAX);
        let mut found = self.read_predictions(
            schema::SELECT_PREDICTION_FOR,
            params![target.timestamp(), lead],
        )?;
        Ok(found.pop().map(|mut p| {
            // The caller's time, to the nanosecond (rows are to the second).
            p.target = target;
            p
        }))
    }

    /// For each target time in `[from, to)` that has one, the prediction
    /// made at least `lead` before it, the latest such, oldest target first:
    /// for example every hour's day-ahead forecast over a week (`lead` =
    /// [`DAY_AHEAD`](crate::DAY_AHEAD)), to set against what was measured.
    /// One query: an index lookup per target, however many predictions
    /// cover it (about 2 ms for a week of hourly targets predicted every 5
    /// minutes), plus one per row for its bounds.
    ///
    /// ```
    /// use chrono::{Duration, TimeZone, Utc};
    /// use spe_core::{DAY_AHEAD, Forecast, HistoryStore, Predictions, Provenance, StoreConfig, Tier};
    ///
    /// let store = HistoryStore::in_memory(StoreConfig::default()).unwrap();
    /// let made = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
    /// // Two days of hourly predictions made at midnight, from 1 am.
    /// let p = Predictions {
    ///     start: made + Duration::hours(1),
    ///     step_s: 3600,
    ///     forecast: Forecast::new("mstl", (0..48).map(f64::from).collect(), vec![]).unwrap(),
    ///     made_at: made,
    ///     tier: Tier::Fallback,
    ///     intervals_from: None,
    ///     inputs: Provenance::Live,
    /// };
    /// store.record_predictions(&p).unwrap();
    /// // Only the hours of the second day were predicted a day ahead.
    /// let day_ahead = store.predictions_for(made, made + Duration::days(3), DAY_AHEAD).unwrap();
    /// assert_eq!(day_ahead.len(), 25);
    /// assert_eq!(day_ahead[0].target, made + Duration::hours(24));
    /// assert_eq!(day_ahead[0].mean, 23.0);
    /// ```
    pub fn predictions_for(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        lead: Duration,
    ) -> Result<Vec<PredictionRecord>, StoreError> {
        let lead = i64::try_from(lead.as_secs()).unwrap_or(i64::MAX);
        self.read_predictions(
            schema::SELECT_PREDICTIONS_FOR,
            params![ceil_second(from), ceil_second(to), lead],
        )
    }

    /// The predictions `sql` selects with `args` (columns `made_at, target,
    /// model, tier, inputs, mean, inputs_age_s`), each with its bounds.
    fn read_predictions(
        &self,
        sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<PredictionRecord>, StoreError> {
        type Row = (i64, i64, String, String, String, f64, Option<i64>);
        let inner = self.lock();
        let r = (|| {
            let rows = inner
                .conn
                .prepare_cached(sql)?
                .query_map(args, |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                        row.get(6)?,
                    ))
                })?
                .collect::<Result<Vec<Row>, _>>()?;
            let mut stmt = inner.conn.prepare_cached(schema::SELECT_BOUNDS)?;
            rows.into_iter()
                .map(|row| {
                    let bounds = stmt
                        .query_map(params![row.0, row.1], |b| {
                            Ok((b.get(0)?, b.get(1)?, b.get(2)?))
                        })?
                        .collect::<Result<Vec<(f64, f64, f64)>, _>>()?;
                    Ok((row, bounds))
                })
                .collect::<Result<Vec<_>, rusqlite::Error>>()
        })();
        drop(inner);
        let raw = self.check(r, "read predictions")?;
        let path = self.db_path();
        raw.into_iter()
            .map(
                |((made_at, target, model, tier, inputs, mean, age), bounds)| {
                    Ok(PredictionRecord {
                        made_at: from_unix(made_at, &path)?,
                        target: from_unix(target, &path)?,
                        model,
                        tier: match tier.as_str() {
                            "primary" => Tier::Primary,
                            "fallback" => Tier::Fallback,
                            "cache" => Tier::Cache,
                            other => return Err(damaged(&path, format!("unknown tier {other:?}"))),
                        },
                        inputs: provenance_from(&inputs, age, &path)?,
                        mean,
                        bounds,
                    })
                },
            )
            .collect()
    }

    /// Records the KPIs of `set` for the hour of `set.computed_at` (a later
    /// set in the same hour replaces it). Returns the rows written.
    pub fn record_kpis(&self, set: &KpiSet) -> Result<usize, StoreError> {
        let hour = hour_of(set.computed_at).timestamp();
        let computed_at = set.computed_at.timestamp();
        let mut inner = self.lock();
        let r = (|| {
            let tx = inner.conn.transaction()?;
            let mut n = 0;
            {
                let mut stmt = tx.prepare_cached(schema::UPSERT_KPI)?;
                for kpi in set.iter() {
                    n += stmt.execute(params![
                        kpi.name,
                        hour,
                        kpi.value.filter(|v| v.is_finite()),
                        kpi.unit,
                        kpi.status.name(),
                        set.provenance.name(),
                        computed_at,
                        age_column(set.provenance)
                    ])?;
                }
            }
            tx.commit()?;
            Ok(n)
        })();
        drop(inner);
        self.check(r, "record KPIs")
    }

    /// The recorded values of KPI `name` for the hours in `[from, to)`,
    /// oldest first.
    pub fn kpis(
        &self,
        name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<KpiRecord>, StoreError> {
        let inner = self.lock();
        let r = (|| {
            let mut stmt = inner.conn.prepare_cached(schema::SELECT_KPIS)?;
            let rows =
                stmt.query_map(params![name, ceil_second(from), ceil_second(to)], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Option<f64>>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, i64>(5)?,
                        row.get::<_, Option<i64>>(6)?,
                    ))
                })?;
            rows.collect::<Result<Vec<_>, _>>()
        })();
        drop(inner);
        let path = self.db_path();
        self.check(r, "read KPIs")?
            .into_iter()
            .map(
                |(hour, value, unit, status, provenance, computed_at, age)| {
                    Ok(KpiRecord {
                        name: name.to_owned(),
                        hour: from_unix(hour, &path)?,
                        value,
                        unit,
                        status: match status.as_str() {
                            "ok" => KpiStatus::Ok,
                            "warning" => KpiStatus::Warning,
                            "critical" => KpiStatus::Critical,
                            other => {
                                return Err(damaged(
                                    &path,
                                    format!("unknown KPI status {other:?}"),
                                ));
                            }
                        },
                        provenance: provenance_from(&provenance, age, &path)?,
                        computed_at: from_unix(computed_at, &path)?,
                    })
                },
            )
            .collect()
    }

    /// Counts and bounds of what the store holds.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let inner = self.lock();
        let last_backup = inner.last_backup;
        let r = inner.conn.query_row(schema::STATS, [], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Option<i64>>(3)?,
                row.get::<_, Option<i64>>(4)?,
            ))
        });
        drop(inner);
        let (obs, preds, kpis, from, to) = self.check(r, "count the rows")?;
        let path = self.db_path();
        let time = |t: Option<i64>| t.map(|t| from_unix(t, &path)).transpose();
        Ok(StoreStats {
            observations: u64::try_from(obs).unwrap_or(0),
            predictions: u64::try_from(preds).unwrap_or(0),
            kpis: u64::try_from(kpis).unwrap_or(0),
            observed_from: time(from)?,
            observed_to: time(to)?,
            last_backup,
        })
    }

    /// The backups on disk, oldest first (none in memory).
    pub fn backups(&self) -> Result<Vec<BackupInfo>, StoreError> {
        match &self.location {
            Some(dir) => backup::list(&dir.join(BACKUP_DIR)),
            None => Ok(Vec::new()),
        }
    }

    /// Makes a backup now, whether due or not (see [`HistoryStore::maintain`]).
    /// `None` in memory.
    ///
    /// # Errors
    ///
    /// [`StoreError::BackupInProgress`] if another store of the same files
    /// is making or rotating backups at this moment (its backup is as
    /// good); [`StoreError::Corrupt`] if the copy fails its check; I/O and
    /// database errors.
    pub fn backup_now(&self, now: DateTime<Utc>) -> Result<Option<BackupInfo>, StoreError> {
        let Some(dir) = &self.location else {
            return Ok(None);
        };
        let mut inner = self.lock();
        let info = backup::make(
            &inner.conn,
            &dir.join(BACKUP_DIR),
            now,
            &dir.join(HISTORY_FILE),
        )?;
        inner.last_backup = Some(info.taken_at);
        Ok(Some(info))
    }

    /// The periodic upkeep, for a background task to call every few
    /// minutes: a backup if the last is [`StoreConfig::backup_every`] old
    /// (then the oldest backups beyond [`StoreConfig::backups_kept`] are
    /// deleted), and predictions made more than
    /// [`StoreConfig::predictions_kept`] before now, or before the newest
    /// prediction if that is earlier, deleted.
    pub fn maintain(&self, now: DateTime<Utc>) -> Result<Maintenance, StoreError> {
        let mut done = Maintenance::default();
        let keep = TimeDelta::from_std(self.config.predictions_kept)
            .unwrap_or(TimeDelta::MAX)
            .num_seconds();
        {
            let mut inner = self.lock();
            let r = (|| {
                // One transaction: no step is left without its bounds.
                // Immediate: it reads before it writes, and another store
                // of the same file writing in between must not make the
                // upgrade fail (busy) instead of waiting its turn.
                let tx = inner
                    .conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let newest: Option<i64> =
                    tx.query_row("SELECT MAX(made_at) FROM predictions", [], |row| row.get(0))?;
                let until = newest.map_or(now.timestamp(), |n| n.min(now.timestamp()));
                let cutoff = until.saturating_sub(keep);
                tx.execute("DELETE FROM prediction_bounds WHERE made_at < ?1", [cutoff])?;
                let n = tx.execute("DELETE FROM predictions WHERE made_at < ?1", [cutoff])?;
                tx.commit()?;
                Ok(n)
            })();
            drop(inner);
            done.predictions_pruned = self.check(r, "delete old predictions")?;
        }
        let Some(dir) = &self.location else {
            return Ok(done);
        };
        let every = TimeDelta::from_std(self.config.backup_every).unwrap_or(TimeDelta::MAX);
        let due = match self.lock().last_backup {
            None => true,
            // The newest backup dated in the future (a clock stepped back):
            // one at once, so the backups follow the clock again (backups
            // are ordered by their sequence number, not their time).
            Some(last) => now < last || now.signed_duration_since(last) >= every,
        };
        if due {
            match self.backup_now(now) {
                Ok(b) => done.backup = b,
                // Another store is at it: its backup will do; ours waits
                // for the next upkeep.
                Err(StoreError::BackupInProgress { .. }) => {
                    tracing::debug!("another store is backing up: this upkeep's backup skipped");
                    return Ok(done);
                }
                Err(e) => return Err(e),
            }
            match backup::rotate(&dir.join(BACKUP_DIR), self.config.backups_kept) {
                Ok(deleted) => done.backups_deleted = deleted,
                // The other store rotates after its own backup.
                Err(StoreError::BackupInProgress { .. }) => {
                    tracing::debug!("another store is rotating the backups");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Recovers from damage found while running ([`StoreError::Corrupt`]):
    /// the database is quarantined and the newest sound backup restored, as
    /// when opening. A store in memory cannot recover: the report is empty.
    ///
    /// If the repair itself fails (a full disk, a lock held by another
    /// process), the database file is reopened as it is, the error is
    /// returned, and until a later `recover` succeeds every failing call
    /// reports [`StoreError::Corrupt`], so callers keep trying.
    pub fn recover(&self, now: DateTime<Utc>) -> Result<StoreOpenReport, StoreError> {
        let Some(dir) = &self.location else {
            return Ok(StoreOpenReport::default());
        };
        let path = dir.join(HISTORY_FILE);
        let mut inner = self.lock();
        // Close the connection first: the files are moved. Until a sound
        // database is back, the store holds an empty read-only stand-in, on
        // which every read and write fails.
        let old = std::mem::replace(&mut inner.conn, stand_in()?);
        if let Err((_, e)) = old.close() {
            tracing::warn!(error = %e, "closing the damaged history database failed");
        }
        let mut report = StoreOpenReport::default();
        let mut repair = || {
            // After an error, the full check: the quick one misses an index
            // that disagrees with its table.
            let why = match schema::inspect_with(&path, true) {
                // Sound after all (the damage was in memory, or a transient
                // error): keep it.
                Check::Sound(conn) => return Ok(conn),
                Check::Damaged(why) => why,
                Check::Blank(_) => "the database file is empty".to_owned(),
                Check::Missing => "the database file is missing".to_owned(),
                Check::Refused(e) => return Err(e),
            };
            quarantine(&path, now, why, &mut report)?;
            restore_or_create(&path, &mut report)
        };
        let repaired = match &self.lock {
            Some(lock) => lock.exclusive(repair),
            None => repair(),
        };
        match repaired {
            Ok(conn) => {
                inner.conn = conn;
                self.broken.store(false, Ordering::Release);
                drop(inner);
                if !report.is_clean() {
                    tracing::warn!(report = %report.summary(), "history store recovered");
                }
                Ok(report)
            }
            Err(e) => {
                if let Ok(conn) = Connection::open(&path) {
                    inner.conn = conn;
                }
                self.broken.store(true, Ordering::Release);
                tracing::error!(error = %e, "the history store could not be repaired");
                Err(e)
            }
        }
    }
}

/// An empty read-only database on which every read and write fails.
fn stand_in() -> Result<Connection, StoreError> {
    Connection::open_with_flags(
        ":memory:",
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_error("open an in-memory database"))
}

/// Opens `path`, or replaces it by a sound backup when it is damaged,
/// missing, or empty while backups exist.
fn open_or_restore(
    path: &Path,
    now: DateTime<Utc>,
    report: &mut StoreOpenReport,
    lock: &StoreLock,
) -> Result<Connection, StoreError> {
    let have_backups = !backup::list_or_none(&backup_dir(path)).is_empty();
    let check = schema::inspect(path);
    if let Check::Sound(_) | Check::Refused(_) = check {
        // Nothing to move.
    } else {
        // Moving files: no other store may have them open.
        return lock.exclusive(|| repair_at_open(path, now, report, check, have_backups));
    }
    match check {
        Check::Sound(conn) => Ok(conn),
        Check::Refused(e) => Err(e),
        other => repair_at_open(path, now, report, other, have_backups),
    }
}

/// [`open_or_restore`]'s repairs, under the exclusive lock.
fn repair_at_open(
    path: &Path,
    now: DateTime<Utc>,
    report: &mut StoreOpenReport,
    check: Check,
    have_backups: bool,
) -> Result<Connection, StoreError> {
    match check {
        Check::Sound(conn) => Ok(conn),
        Check::Refused(e) => Err(e),
        Check::Blank(conn) if !have_backups => {
            // A new file (e.g. created by a run that crashed before its
            // first write): set it up.
            schema::prepare(&conn, path)?;
            report.created = true;
            Ok(conn)
        }
        Check::Blank(conn) => {
            drop(conn);
            let why = "the database file is empty while backups exist".to_owned();
            quarantine(path, now, why, report)?;
            restore_or_create(path, report)
        }
        Check::Missing => {
            // A log left without its database must never be applied to a
            // new or restored one.
            quarantine(
                path,
                now,
                "a write-ahead log without its database".to_owned(),
                report,
            )?;
            if !have_backups {
                report.created = true;
                return schema::create(path);
            }
            report.was_missing = true;
            restore_or_create(path, report)
        }
        Check::Damaged(why) => {
            quarantine(path, now, why, report)?;
            restore_or_create(path, report)
        }
    }
}

fn backup_dir(db: &Path) -> PathBuf {
    db.with_file_name(BACKUP_DIR)
}

/// Moves a damaged database aside, its `-wal` and `-shm` first (a log left
/// behind would be applied to the copy restored in its place). Reports the
/// database's new name, or the log's when only a log was there; nothing
/// when there was nothing to move.
fn quarantine(
    path: &Path,
    now: DateTime<Utc>,
    why: String,
    report: &mut StoreOpenReport,
) -> Result<(), StoreError> {
    let stamp = durable::stamp(now);
    let target = durable::side_names(path, ".corrupt-", &stamp)
        .find(|p| !p.exists() && !sibling(p, "-wal").exists() && !sibling(p, "-shm").exists())
        .ok_or_else(|| {
            StoreError::io(
                "find a free name to quarantine",
                path,
                std::io::ErrorKind::AlreadyExists.into(),
            )
        })?;
    let mut moved = None;
    for side in ["-wal", "-shm"] {
        let from = sibling(path, side);
        if from.exists() {
            let to = sibling(&target, side);
            fs::rename(&from, &to).map_err(|e| StoreError::io("quarantine", &from, e))?;
            if side == "-wal" {
                moved = Some(to);
            }
        }
    }
    if path.exists() {
        fs::rename(path, &target).map_err(|e| StoreError::io("quarantine", path, e))?;
        moved = Some(target);
    }
    if let Some(dir) = path.parent() {
        durable::sync_dir(dir).map_err(|e| StoreError::io("fsync the store directory", dir, e))?;
    }
    if let Some(moved) = moved {
        report.quarantined = Some((moved, why));
    }
    Ok(())
}

/// Restores the newest sound backup into `path`, else creates an empty
/// database there.
fn restore_or_create(path: &Path, report: &mut StoreOpenReport) -> Result<Connection, StoreError> {
    for candidate in backup::list_or_none(&backup_dir(path)).into_iter().rev() {
        match backup::restore(&candidate, path)? {
            backup::Restore::Restored(conn) => {
                report.restored_from = Some(candidate);
                return Ok(conn);
            }
            backup::Restore::Unusable(why) => report
                .unusable_backups
                .push((set_aside_backup(candidate.path), why)),
            backup::Restore::Skipped(why) => report.skipped_backups.push((candidate.path, why)),
        }
    }
    report.created = true;
    schema::create(path)
}

/// Moves an unusable backup to `<name>.unusable` beside it, so that it is
/// no longer listed (nor counted as the newest backup, nor tried at every
/// open) but kept for a post-mortem; returns where it is. If it cannot be
/// moved it stays (and is tried again next time).
fn set_aside_backup(path: PathBuf) -> PathBuf {
    let aside = sibling(&path, ".unusable");
    match fs::rename(&path, &aside) {
        Ok(()) => {
            if let Some(dir) = aside.parent() {
                if let Err(e) = crate::durable::sync_dir(dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the backup directory");
                }
            }
            aside
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot set an unusable backup aside");
            path
        }
    }
}

/// [`durable::publish`] for the store: the fully written `tmp` becomes
/// `dest`, and a failed step is a [`StoreError::Io`], `rename_op` naming
/// the rename ("rename the backup into place").
pub(crate) fn publish(tmp: &Path, dest: &Path, rename_op: &'static str) -> Result<(), StoreError> {
    durable::publish(tmp, dest).map_err(|(step, e)| match step {
        durable::PublishStep::SyncFile => StoreError::io("fsync", tmp, e),
        durable::PublishStep::Rename => StoreError::io(rename_op, tmp, e),
        durable::PublishStep::SyncDir => StoreError::io(
            "fsync the directory",
            dest.parent().unwrap_or(Path::new(".")),
            e,
        ),
    })
}

/// `path` with `suffix` appended to its file name (`history.sqlite-wal`).
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn push_column(
    rows: &mut Vec<Observation>,
    series: &str,
    axis: &crate::series::TimeAxis,
    column: &[Option<f64>],
    until: DateTime<Utc>,
    provenance: Provenance,
) {
    for (t, v) in axis.times().zip(column) {
        if t >= until {
            break;
        }
        if let Some(v) = v {
            rows.push(Observation::new(series, t, *v, provenance));
        }
    }
}

/// The age column of a provenance: a cached value's age in seconds, `NULL`
/// for the others.
fn age_column(p: Provenance) -> Option<i64> {
    p.cached_age()
        .map(|a| i64::try_from(a.as_secs()).unwrap_or(i64::MAX))
}

/// How real a provenance is: a value replaces a stored one of at most its
/// rank.
fn rank(p: Provenance) -> i64 {
    i64::from(p.rank())
}

/// `t` in whole seconds, rounded up: rows are stored to the second, so a
/// bound with a fraction excludes the second it falls in (`[from, to)`).
fn ceil_second(t: DateTime<Utc>) -> i64 {
    let s = t.timestamp();
    if t.timestamp_subsec_nanos() > 0 {
        s.saturating_add(1)
    } else {
        s
    }
}

fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// Most hours [`HistoryStore::real_weather`] reads at once: two years.
pub const MAX_REAL_WEATHER_HOURS: usize = 2 * 366 * 24;

fn invalid(what: impl Into<String>, detail: impl Into<String>) -> StoreError {
    StoreError::InvalidValue {
        what: what.into(),
        detail: detail.into(),
    }
}

/// A row SQLite reads back fine but SP-E cannot decode (edited from
/// outside): an error for this read, not damage to repair (the file passes
/// its integrity check, so a recovery would change nothing).
fn damaged(path: &Path, detail: String) -> StoreError {
    StoreError::Database {
        op: "decode a recorded row",
        message: format!("{}: {detail}", path.display()),
    }
}

fn from_unix(t: i64, path: &Path) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp(t, 0).ok_or_else(|| damaged(path, format!("time {t} is out of range")))
}

fn provenance_from(name: &str, age: Option<i64>, path: &Path) -> Result<Provenance, StoreError> {
    Ok(match name {
        "live" => Provenance::Live,
        "synthetic" => Provenance::Synthetic,
        "fallback" => Provenance::Fallback,
        "cached" => Provenance::Cached {
            age_s: age.and_then(|a| u64::try_from(a).ok()).unwrap_or(0),
        },
        other => return Err(damaged(path, format!("unknown provenance {other:?}"))),
    })
}
