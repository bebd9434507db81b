//! `spe.HistoryStore`: the long-term history store (SQLite, with backups).
//!
//! The compiled class takes and gives plain arrays (UTC seconds, floats,
//! names); `python/spe/_history.py` subclasses it with the pandas-friendly
//! `record` and `read`.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use spe_core::{BackupInfo, HistoryStore as CoreStore, Observation, StoreConfig, StoreOpenReport};

use crate::args;
use crate::arrays::readonly;
use crate::errors::Error;
use crate::resilient::Prediction;

/// The long-term history store (use ``spe.HistoryStore``).
#[pyclass(module = "spe._spe", name = "HistoryStore", frozen, subclass)]
pub struct HistoryStore {
    store: Arc<CoreStore>,
    path: PathBuf,
    report: StoreOpenReport,
    backup_every_s: f64,
    backups_kept: usize,
    predictions_kept_days: f64,
}

fn backup_dict<'py>(py: Python<'py>, b: &BackupInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("path", &b.path)?;
    d.set_item("sequence", b.sequence)?;
    d.set_item("taken_at", b.taken_at)?;
    d.set_item("bytes", b.bytes)?;
    Ok(d)
}

fn report_dict<'py>(py: Python<'py>, r: &StoreOpenReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("clean", r.is_clean())?;
    d.set_item("created", r.created)?;
    d.set_item("was_missing", r.was_missing)?;
    d.set_item("quarantined", r.quarantined.as_ref().map(|(p, _)| p))?;
    d.set_item(
        "quarantine_reason",
        r.quarantined.as_ref().map(|(_, why)| why),
    )?;
    d.set_item(
        "restored_from",
        r.restored_from
            .as_ref()
            .map(|b| backup_dict(py, b))
            .transpose()?,
    )?;
    let unusable = PyList::empty(py);
    for (path, why) in &r.unusable_backups {
        unusable.append((path, why))?;
    }
    d.set_item("unusable_backups", unusable)?;
    let skipped = PyList::empty(py);
    for (path, why) in &r.skipped_backups {
        skipped.append((path, why))?;
    }
    d.set_item("skipped_backups", skipped)?;
    d.set_item("summary", r.summary())?;
    Ok(d)
}

fn utc(seconds: i64, name: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| {
        Error::config(format!(
            "{name}: {seconds} s is outside the supported calendar"
        ))
    })
}

/// The columns of recorded predictions: targets and the times they were
/// made at (UTC seconds), models, tiers, inputs and their cached ages,
/// means, and each step's interval bounds as `(level, lower, upper)`.
type PredictionColumns<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Vec<String>,
    Vec<&'static str>,
    Vec<&'static str>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Vec<Vec<(f64, f64, f64)>>,
);

/// Observations: UTC seconds, values, provenances and cached ages.
type Columns<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Vec<&'static str>,
    Bound<'py, PyArray1<f64>>,
);

/// A cached provenance's age in seconds, NaN for the others.
fn age_s(p: spe_core::Provenance) -> f64 {
    p.cached_age().map_or(f64::NAN, |a| a.as_secs_f64())
}

impl HistoryStore {
    /// Runs `op` on the store with the GIL released.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&CoreStore) -> Result<T, spe_core::StoreError> + Send,
    ) -> PyResult<T> {
        let store = Arc::clone(&self.store);
        Ok(py.detach(move || op(&store)).map_err(Error::from)?)
    }

    fn range(
        start: &Bound<'_, PyAny>,
        end: &Bound<'_, PyAny>,
    ) -> PyResult<(DateTime<Utc>, DateTime<Utc>)> {
        let (start, end) = (args::instant(start, "start")?, args::instant(end, "end")?);
        if start >= end {
            return Err(Error::config(format!(
                "start={} must be before end={}",
                start.to_rfc3339(),
                end.to_rfc3339()
            ))
            .into());
        }
        Ok((start, end))
    }
}

#[pymethods]
impl HistoryStore {
    #[new]
    #[pyo3(signature = (path, *, backup_every_s = 1800.0, backups_kept = None, predictions_kept_days = 90.0))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        backup_every_s: f64,
        backups_kept: Option<&Bound<'_, PyAny>>,
        predictions_kept_days: f64,
    ) -> PyResult<Self> {
        let backups_kept = match backups_kept.filter(|b| !b.is_none()) {
            Some(b) => args::int_in(b, "backups_kept", 1, 100_000, "keep at least 1 backup")?,
            None => StoreConfig::default().backups_kept,
        };
        let every = args::positive_seconds(backup_every_s, "backup_every_s")?;
        let kept =
            args::positive_seconds(predictions_kept_days * 86_400.0, "predictions_kept_days")?;
        let config = StoreConfig::default()
            .with_backup_every(every)
            .with_backups_kept(backups_kept)
            .with_predictions_kept(kept);
        // Absolute, so a pickled store reopens the same directory whatever
        // the working directory of the process that unpickles it.
        let path = std::path::absolute(&path)
            .map_err(|e| Error::config(format!("path={}: {e}", path.display())))?;
        let (store, report) = py
            .detach(|| CoreStore::open(&path, config, Utc::now()))
            .map_err(Error::from)?;
        Ok(HistoryStore {
            store: Arc::new(store),
            path,
            report,
            backup_every_s,
            backups_kept,
            predictions_kept_days,
        })
    }

    /// The store's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// What opening found and did: ``clean``, ``created``, ``was_missing``,
    /// ``quarantined`` (where the damaged database was moved, or ``None``),
    /// ``quarantine_reason``, ``restored_from`` (the backup restored:
    /// ``path``, ``taken_at``, ``bytes``), ``unusable_backups`` (set aside:
    /// ``(path, why)`` pairs), ``skipped_backups`` (a newer SP-E's, left in
    /// place) and a one-line ``summary``.
    #[getter]
    fn open_report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        report_dict(py, &self.report)
    }

    /// Record ``values`` of ``series`` at ``seconds`` (UTC, whole seconds
    /// since 1970), all with ``provenance`` (and, for ``"cached"``, the age
    /// ``cached_age_s``, which it requires); returns the rows written.
    #[pyo3(signature = (series, seconds, values, provenance, cached_age_s=None))]
    fn _record(
        &self,
        py: Python<'_>,
        series: String,
        seconds: Vec<i64>,
        values: Vec<f64>,
        provenance: &str,
        cached_age_s: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        if seconds.len() != values.len() {
            return Err(Error::config(format!(
                "{} times for {} values: give one time per value",
                seconds.len(),
                values.len()
            ))
            .into());
        }
        let provenance = match (args::provenance(provenance)?, cached_age_s) {
            (spe_core::Provenance::Cached { .. }, Some(age)) => {
                spe_core::Provenance::cached(args::seconds(age, "cached_age_s")?)
            }
            (spe_core::Provenance::Cached { .. }, None) => {
                return Err(Error::config(
                    "provenance=\"cached\" needs cached_age_s: how old the cached values were, in seconds",
                )
                .into());
            }
            (other, None) => other,
            (other, Some(_)) => {
                return Err(Error::config(format!(
                    "cached_age_s is for provenance=\"cached\", not {:?}",
                    other.name()
                ))
                .into());
            }
        };
        let rows = seconds
            .iter()
            .zip(&values)
            .map(|(&s, &v)| {
                Ok(Observation::new(
                    series.clone(),
                    utc(s, "times")?,
                    v,
                    provenance,
                ))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        self.run(py, move |store| store.record_observations(&rows))
    }

    /// The observations of ``series`` in ``[start, end)``: UTC seconds,
    /// values, provenances and cached ages (NaN if not cached), oldest
    /// first.
    fn _read<'py>(
        &self,
        py: Python<'py>,
        series: String,
        start: &Bound<'py, PyAny>,
        end: &Bound<'py, PyAny>,
    ) -> PyResult<Columns<'py>> {
        let (start, end) = Self::range(start, end)?;
        let rows = self.run(py, move |store| store.observations(&series, start, end))?;
        let seconds = PyArray1::from_vec(py, rows.iter().map(|o| o.time.timestamp()).collect());
        let values = readonly(py, rows.iter().map(|o| o.value).collect())?;
        Ok((
            seconds,
            values,
            rows.iter().map(|o| o.provenance.name()).collect(),
            readonly(py, rows.iter().map(|o| age_s(o.provenance)).collect())?,
        ))
    }

    /// Record the predictions of ``prediction`` (a :class:`spe.Prediction`):
    /// every step with its interval bounds, keyed by the second they were
    /// made at (recording the same answer again, or another made within the
    /// same second, replaces it whole). Returns the steps written.
    fn record_predictions(&self, py: Python<'_>, prediction: &Prediction) -> PyResult<usize> {
        let predictions = prediction.predictions().clone();
        self.run(py, move |store| store.record_predictions(&predictions))
    }

    /// For each target time in ``[start, end)``, the latest prediction made
    /// at least ``lead_hours`` before it, as columns (see
    /// ``HistoryStore.read_predictions``).
    fn _read_predictions<'py>(
        &self,
        py: Python<'py>,
        start: &Bound<'py, PyAny>,
        end: &Bound<'py, PyAny>,
        lead_hours: &Bound<'py, PyAny>,
    ) -> PyResult<PredictionColumns<'py>> {
        let lead = args::duration(lead_hours, "lead_hours", "hours", 3600.0)?;
        let (start, end) = Self::range(start, end)?;
        let rows = self.run(py, move |store| store.predictions_for(start, end, lead))?;
        Ok((
            PyArray1::from_vec(py, rows.iter().map(|r| r.target.timestamp()).collect()),
            PyArray1::from_vec(py, rows.iter().map(|r| r.made_at.timestamp()).collect()),
            rows.iter().map(|r| r.model.clone()).collect(),
            rows.iter().map(|r| r.tier.name()).collect(),
            rows.iter().map(|r| r.inputs.name()).collect(),
            readonly(py, rows.iter().map(|r| age_s(r.inputs)).collect())?,
            readonly(py, rows.iter().map(|r| r.mean).collect())?,
            rows.into_iter().map(|r| r.bounds).collect(),
        ))
    }

    /// The KPI ``name`` for the hours in ``[start, end)``: UTC seconds,
    /// values (NaN when unknown), statuses, units, provenances and cached
    /// ages (NaN if not cached).
    #[allow(clippy::type_complexity)]
    fn _read_kpis<'py>(
        &self,
        py: Python<'py>,
        name: String,
        start: &Bound<'py, PyAny>,
        end: &Bound<'py, PyAny>,
    ) -> PyResult<(
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<f64>>,
        Vec<&'static str>,
        Vec<String>,
        Vec<&'static str>,
        Bound<'py, PyArray1<f64>>,
    )> {
        let (start, end) = Self::range(start, end)?;
        let rows = self.run(py, move |store| store.kpis(&name, start, end))?;
        Ok((
            PyArray1::from_vec(py, rows.iter().map(|r| r.hour.timestamp()).collect()),
            readonly(
                py,
                rows.iter().map(|r| r.value.unwrap_or(f64::NAN)).collect(),
            )?,
            rows.iter().map(|r| r.status.name()).collect(),
            rows.iter().map(|r| r.unit.clone()).collect(),
            rows.iter().map(|r| r.provenance.name()).collect(),
            readonly(py, rows.iter().map(|r| age_s(r.provenance)).collect())?,
        ))
    }

    /// The names of the series that have observations, sorted.
    fn series(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.run(py, move |store| store.series())
    }

    /// Counts and bounds: ``observations``, ``predictions``, ``kpis``,
    /// ``observed_from``, ``observed_to``, ``last_backup``.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.run(py, move |store| store.stats())?;
        let d = PyDict::new(py);
        d.set_item("observations", s.observations)?;
        d.set_item("predictions", s.predictions)?;
        d.set_item("kpis", s.kpis)?;
        d.set_item("observed_from", s.observed_from)?;
        d.set_item("observed_to", s.observed_to)?;
        d.set_item("last_backup", s.last_backup)?;
        Ok(d)
    }

    /// The backups on disk, oldest first (by ``sequence``, which orders
    /// them even if the clock stepped back): dicts with ``path``,
    /// ``sequence``, ``taken_at`` and ``bytes``.
    fn backups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let all = self.run(py, move |store| store.backups())?;
        let list = PyList::empty(py);
        for b in &all {
            list.append(backup_dict(py, b)?)?;
        }
        Ok(list)
    }

    /// Make a backup now, whether due or not; returns it (``path``,
    /// ``sequence``, ``taken_at``, ``bytes``). Raises
    /// :class:`spe.StoreError` if another store of the same files (the
    /// server's, say) is making or rotating backups at this moment: its
    /// backup is as good, or try again.
    #[pyo3(signature = (*, now = None))]
    fn backup<'py>(
        &self,
        py: Python<'py>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let now = args::instant_or_now(now, "now")?;
        let made = self.run(py, move |store| store.backup_now(now))?;
        made.as_ref().map(|b| backup_dict(py, b)).transpose()
    }

    /// The periodic upkeep: a backup if the last is ``backup_every_s`` old
    /// (the oldest beyond ``backups_kept`` deleted), predictions made more
    /// than ``predictions_kept_days`` before ``now`` (or before the newest
    /// prediction, if earlier: a clock far ahead prunes nothing recent)
    /// pruned. Returns ``backup`` (or ``None``),
    /// ``backups_deleted`` and ``predictions_pruned``.
    #[pyo3(signature = (*, now = None))]
    fn maintain<'py>(
        &self,
        py: Python<'py>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let now = args::instant_or_now(now, "now")?;
        let done = self.run(py, move |store| store.maintain(now))?;
        let d = PyDict::new(py);
        d.set_item(
            "backup",
            done.backup
                .as_ref()
                .map(|b| backup_dict(py, b))
                .transpose()?,
        )?;
        d.set_item("backups_deleted", done.backups_deleted)?;
        d.set_item("predictions_pruned", done.predictions_pruned)?;
        Ok(d)
    }

    /// After a :class:`spe.StoreCorruptError`: quarantine the damaged
    /// database and restore the newest sound backup (a sound database is
    /// left alone). Returns the report, as :attr:`open_report`.
    #[pyo3(signature = (*, now = None))]
    fn recover<'py>(
        &self,
        py: Python<'py>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let now = args::instant_or_now(now, "now")?;
        let report = self.run(py, move |store| store.recover(now))?;
        report_dict(py, &report)
    }

    fn __repr__(&self) -> String {
        format!("HistoryStore({:?})", self.path.display().to_string())
    }

    /// Pickle and copy support: the path and the settings (reopened).
    fn __getnewargs_ex__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<((PathBuf,), Bound<'py, PyDict>)> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("backup_every_s", self.backup_every_s)?;
        kwargs.set_item("backups_kept", self.backups_kept)?;
        kwargs.set_item("predictions_kept_days", self.predictions_kept_days)?;
        Ok(((self.path.clone(),), kwargs))
    }
}
