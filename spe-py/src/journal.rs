//! `spe.Journal` and `spe.Retex`: the incident journal and its review.

use chrono::{DateTime, TimeDelta, Utc};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use spe_core::{
    Incident, IncidentId, IncidentKind, Journal as CoreJournal, Mode, Retex as CoreRetex,
};

use crate::args;
use crate::convert;
use crate::errors::Error;

/// An incident as a dict (datetimes timezone-aware, UTC).
pub fn incident_dict<'py>(
    py: Python<'py>,
    incident: &Incident,
    now: DateTime<Utc>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", incident.id.get())?;
    d.set_item("component", &incident.component)?;
    d.set_item("kind", incident.kind.name())?;
    d.set_item("start", incident.start)?;
    d.set_item("end", incident.end)?;
    d.set_item("is_open", incident.is_open())?;
    d.set_item("duration_s", seconds(incident.duration(now)))?;
    d.set_item("details", &incident.details)?;
    d.set_item("resolution", incident.resolution.as_deref())?;
    let changes = PyList::empty(py);
    for change in &incident.mode_changes {
        let c = PyDict::new(py);
        c.set_item("at", change.at)?;
        c.set_item("from", change.from.name())?;
        c.set_item("to", change.to.name())?;
        changes.append(c)?;
    }
    d.set_item("mode_changes", changes)?;
    let notes = PyList::empty(py);
    for (at, text) in &incident.notes {
        notes.append((*at, text))?;
    }
    d.set_item("notes", notes)?;
    Ok(d)
}

fn seconds(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn kind(name: &str) -> Result<IncidentKind, Error> {
    let quoted = serde_json::Value::String(name.to_owned());
    match serde_json::from_value::<IncidentKind>(quoted) {
        Ok(k) if k.name() == name => Ok(k),
        _ => Err(Error::config(format!(
            "kind={name:?} is not an incident kind: use one of \"upstream_timeout\", \
             \"upstream_5xx\", \"upstream_unreachable\", \"upstream_rejected\", \"bad_payload\", \
             \"model_crash\", \"model_timeout\", \"model_bad_output\", \"cache_corrupt\", \
             \"store_corrupt\", \"journal_corrupt\", \"disk_error\", \"other\""
        ))),
    }
}

fn mode(name: &str, arg: &str) -> Result<Mode, Error> {
    name.parse::<Mode>().map_err(|_| {
        Error::config(format!(
            "{arg}={name:?} is not a mode: use \"nominal\" or \"estimation\""
        ))
    })
}

/// The incident journal: an append-only, crash-safe record of every
/// incident (start, end, component, cause, mode changes), for the
/// post-incident review (RETEX).
///
/// Opens (or creates, with its directories) the journal file at ``path``,
/// the one the example server writes (``<data dir>/incidents.journal``).
/// Each record is checksummed and fsynced. A torn tail left by a crash (the
/// start of a record cut short) is copied beside the journal, then cut off;
/// any other damage is kept in place and skipped; both are reported in
/// :attr:`open_report`. A file that is not a journal is refused, untouched.
/// One process opens a journal once: share the object (threads may use it
/// concurrently). Pickles as its path (reopened on unpickling, so in
/// another process).
///
/// Raises :class:`spe.JournalError` (an ``OSError``) if the file cannot be
/// used.
///
/// >>> import spe, tempfile, os
/// >>> journal = spe.Journal(os.path.join(tempfile.mkdtemp(), "incidents.journal"))
/// >>> i = journal.open_incident("open-meteo", "upstream_5xx", "HTTP 503", at="2026-03-01T08:00:00Z")
/// >>> journal.mode_changed(i, "nominal", "estimation", at="2026-03-01T08:00:00Z")
/// >>> journal.close_incident(i, "probe ok", at="2026-03-01T08:30:00Z")["duration_s"]
/// 1800.0
/// >>> r = journal.retex("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z")
/// >>> r.incident_count, round(r.availability_percent, 3)
/// (1, 97.917)
/// >>> r.to_markdown().splitlines()[0]
/// '# RETEX — incident review'
#[pyclass(module = "spe", name = "Journal", frozen, weakref)]
pub struct Journal {
    journal: CoreJournal,
}

impl Journal {
    /// A record of incident ``id`` at ``at`` cannot come before its start:
    /// the journal is append-only, so a mistaken time would stay for good.
    fn not_before_start(&self, id: u64, at: DateTime<Utc>, what: &str) -> PyResult<()> {
        match self.journal.incident(IncidentId(id)) {
            Some(incident) if at < incident.start => Err(Error::config(format!(
                "incident {id} started at {}: it cannot {what} at {}, before it started",
                incident
                    .start
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ))
            .into()),
            _ => Ok(()),
        }
    }

    /// The core journal (clones share it).
    pub fn core(&self) -> &CoreJournal {
        &self.journal
    }
}

#[pymethods]
impl Journal {
    #[new]
    fn new(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let journal = py
            .detach(|| CoreJournal::open(&path))
            .map_err(Error::from)?;
        Ok(Journal { journal })
    }

    /// The journal's file.
    #[getter]
    fn path(&self) -> std::path::PathBuf {
        self.journal.path().to_path_buf()
    }

    /// What opening found: ``created``, ``records_read``,
    /// ``torn_tail_bytes``, ``torn_tail_saved_to`` (the copy of the cut
    /// bytes, or ``None``), ``corrupt_regions`` (skipped damage, kept in the
    /// file), ``ignored_events`` and ``damaged_header_saved_to`` (the copy
    /// of a header found a bit or two off and rewritten, or ``None``).
    #[getter]
    fn open_report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_python(py, self.journal.open_report())
    }

    /// The incidents overlapping ``[start, end]`` (both optional: open-ended),
    /// newest first, as dicts: ``id``, ``component``, ``kind``, ``start``,
    /// ``end`` (``None`` while open), ``is_open``, ``duration_s`` (up to now
    /// while open), ``details``, ``resolution``, ``mode_changes`` (dicts with
    /// ``at``, ``from``, ``to``) and ``notes`` (``(at, text)`` pairs).
    #[pyo3(signature = (start = None, end = None))]
    fn incidents<'py>(
        &self,
        py: Python<'py>,
        start: Option<&Bound<'py, PyAny>>,
        end: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let start = start
            .filter(|s| !s.is_none())
            .map(|s| args::instant(s, "start"))
            .transpose()?;
        let end = end
            .filter(|s| !s.is_none())
            .map(|s| args::instant(s, "end"))
            .transpose()?;
        let found = match (start, end) {
            (Some(a), Some(b)) => self.journal.incidents(a..=b),
            (Some(a), None) => self.journal.incidents(a..),
            (None, Some(b)) => self.journal.incidents(..=b),
            (None, None) => self.journal.incidents(..),
        };
        let now = Utc::now();
        let out = PyList::empty(py);
        for incident in &found {
            out.append(incident_dict(py, incident, now)?)?;
        }
        Ok(out)
    }

    /// The incidents still open, newest first (dicts as :meth:`incidents`).
    fn open_incidents<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let now = Utc::now();
        let out = PyList::empty(py);
        for incident in &self.journal.open_incidents() {
            out.append(incident_dict(py, incident, now)?)?;
        }
        Ok(out)
    }

    /// The incident with this id, or ``None``.
    fn incident<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::incident_id)] id: u64,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.journal
            .incident(IncidentId(id))
            .map(|i| incident_dict(py, &i, Utc::now()))
            .transpose()
    }

    /// Record a new incident; returns its id. ``kind`` is one of
    /// ``"upstream_timeout"``, ``"upstream_5xx"``, ``"upstream_unreachable"``,
    /// ``"upstream_rejected"``, ``"bad_payload"``, ``"model_crash"``,
    /// ``"model_timeout"``, ``"model_bad_output"``, ``"cache_corrupt"``,
    /// ``"store_corrupt"``, ``"journal_corrupt"``, ``"disk_error"``,
    /// ``"other"``. ``at`` defaults to now. Durable when it returns.
    #[pyo3(signature = (component, kind, details = String::new(), at = None))]
    #[pyo3(text_signature = "($self, component, kind, details='', at=None)")]
    fn open_incident(
        &self,
        py: Python<'_>,
        component: String,
        kind: &str,
        details: String,
        at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let kind = self::kind(kind)?;
        let at = args::instant_or_now(at, "at")?;
        let id = py
            .detach(|| self.journal.open_incident(component, kind, at, details))
            .map_err(Error::from)?;
        Ok(id.get())
    }

    /// Record that incident ``id`` moved the service from mode ``from_mode``
    /// to ``to_mode`` (``"nominal"`` or ``"estimation"``).
    #[pyo3(signature = (id, from_mode, to_mode, at = None))]
    fn mode_changed(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::incident_id)] id: u64,
        from_mode: &str,
        to_mode: &str,
        at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let from = mode(from_mode, "from_mode")?;
        let to = mode(to_mode, "to_mode")?;
        let at = args::instant_or_now(at, "at")?;
        self.not_before_start(id, at, "change mode")?;
        py.detach(|| self.journal.mode_changed(IncidentId(id), from, to, at))
            .map_err(Error::from)?;
        Ok(())
    }

    /// Add a note to incident ``id`` (open or closed).
    #[pyo3(signature = (id, details, at = None))]
    fn note(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::incident_id)] id: u64,
        details: String,
        at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let at = args::instant_or_now(at, "at")?;
        py.detach(|| self.journal.note(IncidentId(id), at, details))
            .map_err(Error::from)?;
        Ok(())
    }

    /// Record the end of incident ``id``; returns the closed incident
    /// (a dict as :meth:`incidents`). Closing twice raises ``JournalError``;
    /// an ``at`` before the incident's start raises ``ConfigError``.
    #[pyo3(signature = (id, details = String::new(), at = None))]
    #[pyo3(text_signature = "($self, id, details='', at=None)")]
    fn close_incident<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::incident_id)] id: u64,
        details: String,
        at: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let at = args::instant_or_now(at, "at")?;
        self.not_before_start(id, at, "end")?;
        let closed = py
            .detach(|| self.journal.close_incident(IncidentId(id), at, details))
            .map_err(Error::from)?;
        incident_dict(py, &closed, at)
    }

    /// The post-incident review of ``[start, end)``: availability, downtime,
    /// MTTR, longest outage, counts by kind and component, the incidents
    /// that overlap the period. ``end`` and ``now`` default to now;
    /// ``start`` to 30 days before ``end``. Open incidents last until
    /// ``now``, and availability is measured over the part of the period
    /// before ``now``.
    #[pyo3(signature = (start = None, end = None, now = None))]
    fn retex(
        &self,
        start: Option<&Bound<'_, PyAny>>,
        end: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Retex> {
        let now = args::instant_or_now(now, "now")?;
        let end = match end.filter(|e| !e.is_none()) {
            Some(e) => args::instant(e, "end")?,
            None => now,
        };
        let start = match start.filter(|s| !s.is_none()) {
            Some(s) => args::instant(s, "start")?,
            None => end - TimeDelta::days(30),
        };
        if start > end {
            return Err(Error::config(format!(
                "start={} is after end={}: give the period oldest first",
                start.to_rfc3339(),
                end.to_rfc3339()
            ))
            .into());
        }
        Ok(Retex {
            retex: self.journal.retex(start, end, now),
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Journal({})",
            PyString::new(py, &self.journal.path().display().to_string()).repr()?
        ))
    }

    /// Pickle (and copy) support: reopened from its path by
    /// ``Journal._reopen``, which shares this journal when it is still open
    /// in the process (a journal is open once per process).
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (std::path::PathBuf,))> {
        let path = slf.get().journal.path().to_path_buf();
        register(slf, &path)?;
        Ok((slf.get_type().getattr("_reopen")?, (path,)))
    }

    /// The journal at ``path``: a handle sharing the one open in this
    /// process, if one that was pickled, copied or reopened is still
    /// alive, else the file opened (as ``Journal(path)``).
    #[staticmethod]
    fn _reopen(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Py<Journal>> {
        let journal = match open_handle(py, &path)? {
            Some(open) => Journal {
                journal: open.get().journal.clone(),
            },
            None => Journal::new(py, path.clone())?,
        };
        let journal = Bound::new(py, journal)?;
        register(&journal, &path)?;
        Ok(journal.unbind())
    }
}

/// The journals handed out by pickling, copying and `_reopen`, by canonical
/// path: weak references (a dict of lists of `weakref.ref`), so that a
/// journal closes when its last handle goes. Guarded by the GIL.
fn registry(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    static REGISTRY: pyo3::sync::PyOnceLock<Py<PyDict>> = pyo3::sync::PyOnceLock::new();
    REGISTRY
        .get_or_try_init(py, || Ok(PyDict::new(py).unbind()))
        .map(|d| d.bind(py))
}

/// The registry's key for `path`: canonical, so that two spellings of one
/// file meet; `None` if the file cannot be resolved (not there).
fn registry_key(path: &std::path::Path) -> Option<String> {
    std::fs::canonicalize(path)
        .ok()
        .map(|p| p.display().to_string())
}

/// Record `journal` as a live handle of the journal at `path`.
fn register(journal: &Bound<'_, Journal>, path: &std::path::Path) -> PyResult<()> {
    let py = journal.py();
    let Some(key) = registry_key(path) else {
        return Ok(());
    };
    let reference = py.import("weakref")?.call_method1("ref", (journal,))?;
    let registry = registry(py)?;
    let handles = match registry.get_item(&key)? {
        Some(list) => list.cast_into::<PyList>()?,
        None => {
            let list = PyList::empty(py);
            registry.set_item(&key, &list)?;
            list
        }
    };
    handles.append(reference)?;
    Ok(())
}

/// A live handle of the journal at `path`, if the registry has one (dead
/// references are dropped on the way).
fn open_handle<'py>(
    py: Python<'py>,
    path: &std::path::Path,
) -> PyResult<Option<Bound<'py, Journal>>> {
    let Some(key) = registry_key(path) else {
        return Ok(None);
    };
    let registry = registry(py)?;
    let Some(handles) = registry.get_item(&key)? else {
        return Ok(None);
    };
    let handles = handles.cast_into::<PyList>()?;
    let mut live = None;
    let alive = PyList::empty(py);
    for reference in handles.iter() {
        let target = reference.call0()?;
        if let Ok(journal) = target.cast_into::<Journal>() {
            alive.append(&reference)?;
            live.get_or_insert(journal);
        }
    }
    if alive.is_empty() {
        registry.del_item(&key)?;
    } else {
        registry.set_item(&key, alive)?;
    }
    Ok(live)
}

/// A post-incident review (RETEX) over a period: what
/// :meth:`Journal.retex` returns.
///
/// Availability counts every incident as unavailability of the live data
/// path (the dashboard keeps serving estimates meanwhile); overlapping
/// incidents count once. It is measured over the elapsed part of the
/// period (up to ``measured_until``): time that has not happened yet is
/// not counted as available.
#[pyclass(module = "spe", name = "Retex", frozen)]
pub struct Retex {
    retex: CoreRetex,
}

#[pymethods]
impl Retex {
    /// Availability over the elapsed part of the period, percent (100
    /// without incidents, or before the period begins).
    #[getter]
    fn availability_percent(&self) -> f64 {
        self.retex.availability_percent()
    }

    /// Incidents overlapping the period.
    #[getter]
    fn incident_count(&self) -> usize {
        self.retex.incident_count
    }

    /// Seconds of downtime in the period (the union of the incidents).
    #[getter]
    fn downtime_s(&self) -> f64 {
        seconds(self.retex.downtime)
    }

    /// Mean time to recovery of the closed incidents, seconds, or ``None``.
    #[getter]
    fn mttr_s(&self) -> Option<f64> {
        self.retex.mttr.map(seconds)
    }

    /// Everything as a dict: ``period_start``, ``period_end``,
    /// ``generated_at``, ``measured_until``, ``availability`` (0–1), ``availability_percent``,
    /// ``downtime_s``, ``incident_count``, ``still_open``, ``mttr_s``,
    /// ``longest_outage`` (``id``, ``component``, ``duration_s``),
    /// ``by_kind``, ``by_component`` (``incidents``, ``downtime_s``,
    /// ``availability``) and ``incidents`` (dicts as :meth:`Journal.incidents`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = &self.retex;
        let d = PyDict::new(py);
        d.set_item("period_start", r.period_start)?;
        d.set_item("period_end", r.period_end)?;
        d.set_item("generated_at", r.generated_at)?;
        d.set_item("measured_until", r.measured_until)?;
        d.set_item("availability", r.availability)?;
        d.set_item("availability_percent", r.availability_percent())?;
        d.set_item("downtime_s", seconds(r.downtime))?;
        d.set_item("incident_count", r.incident_count)?;
        d.set_item("still_open", r.still_open)?;
        d.set_item("mttr_s", r.mttr.map(seconds))?;
        let longest = match &r.longest_outage {
            Some(l) => {
                let o = PyDict::new(py);
                o.set_item("id", l.id.get())?;
                o.set_item("component", &l.component)?;
                o.set_item("duration_s", seconds(l.duration))?;
                Some(o)
            }
            None => None,
        };
        d.set_item("longest_outage", longest)?;
        let by_kind = PyDict::new(py);
        for (kind, count) in &r.by_kind {
            by_kind.set_item(kind.name(), count)?;
        }
        d.set_item("by_kind", by_kind)?;
        let by_component = PyDict::new(py);
        for (component, figures) in &r.by_component {
            let f = PyDict::new(py);
            f.set_item("incidents", figures.incidents)?;
            f.set_item("downtime_s", seconds(figures.downtime))?;
            f.set_item("availability", figures.availability)?;
            by_component.set_item(component, f)?;
        }
        d.set_item("by_component", by_component)?;
        let incidents = PyList::empty(py);
        for incident in &r.incidents {
            incidents.append(incident_dict(py, incident, r.generated_at)?)?;
        }
        d.set_item("incidents", incidents)?;
        Ok(d)
    }

    /// The review as a Markdown report (summary table, counts by kind and
    /// component, incident table newest first), for the RETEX meeting.
    fn to_markdown(&self) -> String {
        self.retex.to_markdown()
    }

    /// Pickle (and copy) support: rebuilt by ``Retex._restore`` from the
    /// review as JSON (not recomputed from the journal, which may have
    /// changed since).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let state = serde_json::to_string(&slf.get().retex)
            .map_err(|e| Error::config(format!("cannot pickle this review: {e}")))?;
        Ok((slf.get_type().getattr("_restore")?, (state,)))
    }

    /// The review pickled as ``state`` (see ``__reduce__``).
    #[staticmethod]
    fn _restore(state: &str) -> PyResult<Self> {
        let retex = serde_json::from_str(state)
            .map_err(|e| Error::config(format!("not a pickled review: {e}")))?;
        Ok(Retex { retex })
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Retex>()
            .is_ok_and(|o| o.get().retex == self.retex)
    }

    fn __repr__(&self) -> String {
        format!(
            "Retex(period_start='{}', period_end='{}', incident_count={}, availability_percent={:.3})",
            self.retex.period_start.to_rfc3339(),
            self.retex.period_end.to_rfc3339(),
            self.retex.incident_count,
            self.retex.availability_percent()
        )
    }
}
