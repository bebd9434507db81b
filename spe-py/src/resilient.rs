//! `spe.ResilientForecaster`: spe-core's prediction chain with a Python
//! callable as tier 1, and `spe.Prediction`, what it answers.
//!
//! The callable runs on a Python daemon thread (`threading.Thread`, started
//! by `spe._primary.run`), not on a Rust thread: CPython knows its daemon
//! threads and stops them safely at interpreter shutdown, whereas a Rust
//! thread that re-enters Python while the interpreter finalizes aborts the
//! process. The daemon thread runs no Rust code while the callable runs: it
//! hands the callable's answer (or exception) to a [`PrimaryReply`], which
//! only passes it through a channel; the chain reads it, under its timeout,
//! on the thread that awaits it. A Python thread cannot be killed: on a
//! timeout the chain stops waiting and moves on (fallback, cache), the
//! callable finishes in the background and its answer is dropped. The
//! interpreter is never blocked by it — unless the callable itself holds
//! the GIL without releasing it (a C extension that never lets go).
//!
//! `predict` waits with the GIL released in short slices and checks for
//! signals between them, so Ctrl-C raises `KeyboardInterrupt` at once
//! rather than after the timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Timelike, Utc};
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString, PyTuple};

use spe_core::{
    Cache, ChainError, ChainResult, Exog, Forecast as CoreForecast, IntervalColumns, LoadReport,
    PredictionChain, PredictionRequest, Predictions, Predictor, PredictorError, WeakCache,
};

use crate::arrays;
use crate::breaker::ManualClock;
use crate::errors::{Error, SpeException};
use crate::forecast::{Forecast, ModelName, Outcome, levels_or_default, model_arg};
use crate::journal::Journal;

/// Longest traceback kept from a failing callable, in bytes.
const TRACEBACK_BYTES: usize = 4096;

/// A Python callable as tier 1 of the chain: `primary(history, horizon)`,
/// called on a Python daemon thread of its own, one call at a time: a call
/// that hangs past its timeout cannot be interrupted, and while it runs the
/// next ones fail at once (`Busy`, journaled as a timeout) instead of piling
/// up threads.
#[derive(Debug)]
struct PyPredictor {
    callable: Arc<Py<PyAny>>,
    name: String,
    limit: spe_core::RunLimit,
}

/// What the callable gave: its answer (`Ok`) or the exception it raised.
type PrimaryOutcome = Result<Py<PyAny>, Py<PyAny>>;

#[async_trait]
impl Predictor for PyPredictor {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn predict(&self, request: &PredictionRequest) -> Result<CoreForecast, PredictorError> {
        let permit = self.limit.try_start()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let reply = PrimaryReply {
            pending: Mutex::new(Some((tx, permit))),
        };
        let horizon = request.horizon;
        Python::attach(|py| start_primary(py, &self.callable, &request.history, horizon, reply))?;
        let outcome = rx
            .await
            .map_err(|_| PredictorError::crashed("its thread ended without an answer", ""))?;
        Python::attach(|py| match outcome {
            Ok(answer) => read_answer(answer.bind(py), &self.name, horizon),
            Err(exception) => Err(raised(py, &PyErr::from_value(exception.into_bound(py)))),
        })
    }
}

/// Start `spe._primary.run(callable, history, horizon, reply)` on a daemon
/// `threading.Thread`. If it cannot start, `reply` is dropped with its
/// permit.
fn start_primary(
    py: Python<'_>,
    callable: &Py<PyAny>,
    history: &[f64],
    horizon: usize,
    reply: PrimaryReply,
) -> Result<(), PredictorError> {
    let start = || -> PyResult<()> {
        let run = py.import("spe._primary")?.getattr("run")?;
        let history = PyArray1::from_slice(py, history);
        let args = (
            callable.clone_ref(py),
            history,
            horizon,
            Py::new(py, reply)?,
        );
        let kwargs = PyDict::new(py);
        kwargs.set_item("target", run)?;
        kwargs.set_item("args", args)?;
        kwargs.set_item("name", "spe-py-primary")?;
        kwargs.set_item("daemon", true)?;
        py.import("threading")?
            .call_method("Thread", (), Some(&kwargs))?
            .call_method0("start")?;
        Ok(())
    };
    start().map_err(|e| {
        // `Thread.start` waits for the thread in Python code, where a Ctrl-C
        // is handled: that KeyboardInterrupt is the caller's, not the
        // model's. Kept for `block_on_interruptibly` on this thread (the
        // chain's future runs on the caller's thread) to raise.
        if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
            CALLER_INTERRUPT.with(|slot| *slot.borrow_mut() = Some(e.clone_ref(py)));
        }
        PredictorError::crashed("could not start its thread", e.to_string())
    })
}

/// The way back from the primary's daemon thread: called once by
/// `spe._primary.run` with the callable's outcome. It gives the run's
/// permit back (the next call may start) and sends the outcome to the
/// chain, without running any Python code. An outcome nobody waits for
/// any more (the chain timed out) is returned, to be dropped by Python.
#[pyclass(module = "spe._spe", name = "_PrimaryReply", frozen)]
struct PrimaryReply {
    pending: Mutex<
        Option<(
            tokio::sync::oneshot::Sender<PrimaryOutcome>,
            spe_core::RunPermit,
        )>,
    >,
}

#[pymethods]
impl PrimaryReply {
    /// ``reply(ok, value)``: ``value`` is the answer if ``ok``, else the exception.
    fn __call__(&self, ok: bool, value: Py<PyAny>) -> Option<Py<PyAny>> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some((tx, permit)) = pending else {
            return Some(value);
        };
        // Given back when the call returns, whether or not anyone waits,
        // and before the answer is: the next call may start.
        drop(permit);
        let outcome = if ok { Ok(value) } else { Err(value) };
        tx.send(outcome).err().map(|o| match o {
            Ok(v) | Err(v) => v,
        })
    }
}

/// A `Crashed` error for an exception: its type and the end of its traceback.
fn raised(py: Python<'_>, err: &PyErr) -> PredictorError {
    let kind = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an exception".into());
    let text = py
        .import("traceback")
        .and_then(|tb| {
            tb.call_method1(
                "format_exception",
                (err.get_type(py), err.value(py), err.traceback(py)),
            )
        })
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat())
        .unwrap_or_else(|_| err.to_string());
    let start = text.len().saturating_sub(TRACEBACK_BYTES);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    PredictorError::crashed(format!("raised {kind}"), text[start..].trim_end())
}

/// The callable's answer as a forecast: an array of `horizon` numbers, or a
/// dict with `mean` and optional `lower_<L>`/`upper_<L>` pairs (and `model`),
/// read as [`IntervalColumns`] reads a command's output.
fn read_answer(
    answer: &Bound<'_, PyAny>,
    name: &str,
    horizon: usize,
) -> Result<CoreForecast, PredictorError> {
    let bad = |m: String| PredictorError::bad_output(m);
    if answer.is_none() {
        return Err(bad(format!(
            "returned None: return an array of {horizon} numbers, or a dict with \"mean\""
        )));
    }
    if !is_mapping(answer) {
        let mean = values(answer, "the returned array", horizon)?;
        return CoreForecast::new(name, mean, Vec::new()).map_err(|e| bad(e.to_string()));
    }
    let keys: Vec<String> = answer
        .call_method0("keys")
        .and_then(|k| k.try_iter()?.map(|k| k?.extract::<String>()).collect())
        .map_err(|_| bad("the returned dict has keys that are not strings".into()))?;
    let get = |key: &str| answer.get_item(key).map_err(|e| bad(format!("{key}: {e}")));
    let mut mean = None;
    let mut model = name.to_owned();
    let mut intervals = IntervalColumns::default();
    for key in &keys {
        if key == "mean" {
            mean = Some(values(&get(key)?, "mean", horizon)?);
        } else if key == "model" {
            model = get(key)?
                .extract::<String>()
                .map_err(|_| bad("\"model\" is not a string".into()))?;
        } else if IntervalColumns::is_bound_key(key) {
            let column = values(&get(key)?, key, horizon)?;
            intervals.insert(key, column).map_err(bad)?;
        } else {
            return Err(bad(format!(
                "unknown key {key:?} in the returned dict: expected \"mean\", \
                 \"lower_<level>\"/\"upper_<level>\" pairs and \"model\""
            )));
        }
    }
    let Some(mean) = mean else {
        return Err(bad("the returned dict has no \"mean\"".into()));
    };
    let intervals = intervals.into_intervals().map_err(bad)?;
    CoreForecast::new(model, mean, intervals).map_err(|e| bad(e.to_string()))
}

/// Whether the callable's answer is a mapping of columns (a dict, a pandas
/// DataFrame, another mapping) rather than one array. Array-likes come
/// first: a pandas Series or Index has `keys` too, but is one array, as is
/// anything numpy reads (`__array__`), a list or a tuple.
fn is_mapping(answer: &Bound<'_, PyAny>) -> bool {
    let has = |attr: &str| answer.hasattr(attr).unwrap_or(false);
    if answer.is_instance_of::<PyDict>() || has("columns") {
        return true;
    }
    if answer.is_instance_of::<PyList>() || answer.is_instance_of::<PyTuple>() || has("__array__") {
        return false;
    }
    has("keys")
}

/// `horizon` finite numbers from an array-like, or why not: read with the
/// rules of `spe.forecast`'s inputs (no times, strings, booleans or complex
/// numbers; no masked values), as a `model_bad_output`.
fn values(obj: &Bound<'_, PyAny>, what: &str, horizon: usize) -> Result<Vec<f64>, PredictorError> {
    let py = obj.py();
    let bad = |m: String| PredictorError::bad_output(m);
    let message = |e: PyErr| {
        e.value(py)
            .str()
            .map(|m| m.to_string())
            .unwrap_or_else(|_| format!("{what} is not an array of numbers"))
    };
    let masked = arrays::numpy(py)
        .and_then(|np| np.getattr("ma"))
        .and_then(|ma| {
            if ma.call_method1("isMaskedArray", (obj,))?.is_truthy()? {
                ma.call_method1("count_masked", (obj,))?.extract::<usize>()
            } else {
                Ok(0)
            }
        })
        .map_err(|e| bad(message(e)))?;
    if masked > 0 {
        return Err(bad(format!(
            "{what} is a masked array with {masked} masked value{}: a forecast needs every \
             value (fill them, e.g. .filled(...))",
            if masked == 1 { "" } else { "s" }
        )));
    }
    let array = arrays::float_array(obj, what).map_err(|e| bad(message(e)))?;
    if array.ndim() != 1 {
        return Err(bad(format!(
            "{what} has shape {:?}: expected {horizon} numbers (1-D)",
            array.shape()
        )));
    }
    let values: Vec<f64> = array.readonly().as_array().iter().copied().collect();
    if values.len() != horizon {
        return Err(bad(format!(
            "{what} has {} value{}, expected {horizon} (the horizon)",
            values.len(),
            if values.len() == 1 { "" } else { "s" }
        )));
    }
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(bad(format!("{what}[{i}] is {v}, not a finite number")));
    }
    Ok(values)
}

/// What `Prediction.__reduce__` answers: `_restore` and its arguments.
type Reduced<'py> = (Bound<'py, PyAny>, (String, i64));

/// The answer of :meth:`ResilientForecaster.predict`: the forecast, which
/// tier made it and why the tiers above failed.
///
/// ``tier`` is ``"primary"`` (your model), ``"fallback"`` (the statistical
/// model, because yours failed) or ``"cache"`` (the last good predictions,
/// because both failed); ``provenance`` is ``"live"``, ``"fallback"`` or
/// ``"cached"`` accordingly. ``failures`` lists why the tiers above
/// ``tier`` failed (dicts with ``tier``, ``predictor``, ``kind`` —
/// ``"model_crash"``, ``"model_timeout"`` or ``"model_bad_output"`` — and
/// ``message``); ``notice`` says it in a sentence for an operator.
#[pyclass(module = "spe", name = "Prediction", frozen)]
pub struct Prediction {
    result: Arc<ChainResult>,
    now: DateTime<Utc>,
    forecast: Py<Forecast>,
}

impl Prediction {
    fn new(py: Python<'_>, result: Arc<ChainResult>, now: DateTime<Utc>) -> PyResult<Self> {
        let forecast = Forecast::from_outcome(
            py,
            Outcome {
                forecast: result.predictions.forecast.clone(),
                scores: None,
            },
        )?;
        Ok(Prediction {
            result,
            now,
            forecast: Py::new(py, forecast)?,
        })
    }
}

impl Prediction {
    /// The chain's predictions (for recording them in a history store).
    pub(crate) fn predictions(&self) -> &spe_core::Predictions {
        &self.result.predictions
    }
}

#[pymethods]
impl Prediction {
    /// ``"primary"``, ``"fallback"`` or ``"cache"``.
    #[getter]
    fn tier(&self) -> &'static str {
        self.result.tier.name()
    }

    /// ``"live"`` (primary), ``"fallback"`` or ``"cached"``; ``"synthetic"``
    /// for your model's predictions made from a history passed with
    /// ``inputs="synthetic"``.
    #[getter]
    fn provenance(&self) -> &'static str {
        self.result.provenance(self.now).name()
    }

    /// Where the history they were made from came from: ``"live"`` or
    /// ``"synthetic"`` (the ``inputs`` given to
    /// :meth:`ResilientForecaster.predict`).
    #[getter]
    fn inputs(&self) -> &'static str {
        self.result.predictions.inputs.name()
    }

    /// The model that made the forecast (for a cached answer: the model
    /// that made it then).
    #[getter]
    fn model(&self) -> String {
        self.result.predictions.forecast.model().to_owned()
    }

    /// The forecast (a :class:`spe.Forecast`).
    #[getter]
    fn forecast(&self, py: Python<'_>) -> Py<Forecast> {
        self.forecast.clone_ref(py)
    }

    /// The mean path (read-only array).
    #[getter]
    fn mean(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.forecast.bind(py).getattr("mean")?.unbind())
    }

    /// Lower bounds of the ``level`` % interval.
    fn lower(&self, py: Python<'_>, level: f64) -> PyResult<Py<PyAny>> {
        Ok(self
            .forecast
            .bind(py)
            .call_method1("lower", (level,))?
            .unbind())
    }

    /// Upper bounds of the ``level`` % interval.
    fn upper(&self, py: Python<'_>, level: f64) -> PyResult<Py<PyAny>> {
        Ok(self
            .forecast
            .bind(py)
            .call_method1("upper", (level,))?
            .unbind())
    }

    /// Why the tiers above this one failed, in tier order.
    #[getter]
    fn failures<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for f in &self.result.failures {
            let d = PyDict::new(py);
            d.set_item("tier", f.tier.name())?;
            d.set_item("predictor", &f.predictor)?;
            d.set_item("kind", f.kind.name())?;
            d.set_item("message", &f.message)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// A sentence for an operator when your model did not answer, else ``None``.
    #[getter]
    fn notice(&self) -> Option<String> {
        self.result.notice()
    }

    /// When the predictions were made (UTC).
    #[getter]
    fn made_at(&self) -> DateTime<Utc> {
        self.result.predictions.made_at
    }

    /// Seconds since the predictions were made (non-zero for the cache tier).
    #[getter]
    fn age_s(&self) -> f64 {
        self.result.age(self.now).as_secs_f64()
    }

    /// The model whose intervals were borrowed when yours gave none at a
    /// requested level (the fallback's), else ``None``.
    #[getter]
    fn intervals_from(&self) -> Option<String> {
        self.result.predictions.intervals_from.clone()
    }

    /// The time of each step (``datetime64[ns]``, UTC).
    #[getter]
    fn times<'py>(
        &self,
        py: Python<'py>,
    ) -> Bound<'py, PyArray1<numpy::datetime::Datetime<numpy::datetime::units::Nanoseconds>>> {
        let times = self
            .result
            .predictions
            .times()
            .into_iter()
            .map(|t| numpy::datetime::Datetime::from(t.timestamp_nanos_opt().unwrap_or(i64::MIN)))
            .collect();
        PyArray1::from_vec(py, times)
    }

    /// The forecast as a DataFrame on a UTC ``DatetimeIndex`` (``mean``,
    /// ``lower_<L>``, ``upper_<L>``); ``df.attrs`` holds ``tier``,
    /// ``provenance``, ``inputs``, ``model``, ``age_s`` and ``notice``.
    fn to_pandas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let columns = self
            .forecast
            .bind(py)
            .call_method0("to_dict")?
            .cast_into::<PyDict>()?;
        let data = PyDict::new(py);
        data.set_item("time", self.times(py))?;
        for (k, v) in columns.iter() {
            data.set_item(k, v)?;
        }
        let attrs = PyDict::new(py);
        attrs.set_item("tier", self.tier())?;
        attrs.set_item("provenance", self.provenance())?;
        attrs.set_item("inputs", self.inputs())?;
        attrs.set_item("model", self.model())?;
        attrs.set_item("age_s", self.age_s())?;
        attrs.set_item("notice", self.notice())?;
        crate::frames::to_pandas(py, data, attrs)
    }

    fn __len__(&self) -> usize {
        self.result.predictions.forecast.horizon()
    }

    /// Pickle (and copy) support: rebuilt by ``Prediction._restore`` from
    /// the chain's result as JSON and the time it was read at (so its age is
    /// the same).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        let this = slf.get();
        let state = serde_json::to_string(&*this.result)
            .map_err(|e| Error::config(format!("cannot pickle this prediction: {e}")))?;
        // In nanoseconds: a Python datetime would drop them, and change the age.
        let now_ns = this.now.timestamp_nanos_opt().unwrap_or_default();
        Ok((slf.get_type().getattr("_restore")?, (state, now_ns)))
    }

    /// The prediction pickled as ``state``, read at ``now_ns`` (nanoseconds
    /// since the Unix epoch; see ``__reduce__``).
    #[staticmethod]
    fn _restore(py: Python<'_>, state: &str, now_ns: i64) -> PyResult<Self> {
        let result: ChainResult = serde_json::from_str(state)
            .map_err(|e| Error::config(format!("not a pickled prediction: {e}")))?;
        Prediction::new(py, Arc::new(result), DateTime::from_timestamp_nanos(now_ns))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Prediction(tier='{}', model={}, horizon={}, provenance='{}')",
            self.tier(),
            PyString::new(py, &self.model()).repr()?,
            self.__len__(),
            self.provenance()
        ))
    }
}

/// Your model, with SP-E's fallback around it: a forecaster that always
/// answers, and says which model did.
///
/// ``primary`` is any callable ``primary(history, horizon)``: it gets the
/// history as a numpy ``float64`` array (oldest first) and the number of
/// steps to forecast, and returns ``horizon`` numbers (any array-like), or
/// a dict with ``"mean"`` and optional ``"lower_80"``/``"upper_80"``,
/// ``"lower_95"``/``"upper_95"`` (any ``lower_<L>``/``upper_<L>`` pairs) and
/// ``"model"`` (a name). Requested levels it does not give are derived from
/// the fallback's interval widths around your mean.
///
/// :meth:`predict` runs three tiers:
///
/// 1. **primary**, your callable, in a thread of its own under
///    ``timeout_s``. It fails if it raises, runs past the timeout, or
///    returns the wrong shape, NaN, infinities or intervals that do not
///    contain the mean. A Python thread cannot be killed: past the timeout
///    the forecaster stops waiting and the call ends in the background (its
///    answer is dropped); the interpreter is not blocked. While such a call
///    still runs, later predictions do not call your model again (one
///    thread, not one per call): tier 1 fails at once with a
///    ``model_timeout`` failure saying it is "still running".
/// 2. **fallback**, if the primary failed: a statistical model
///    (``fallback``: ``"auto"`` by default, any ``model=`` name of
///    :func:`spe.forecast`, or a :class:`spe.Model`, whose ``box_cox``
///    applies and whose periods, if it has some, are the default
///    ``season_length``) fitted on the same history, under
///    ``fallback_timeout_s``.
/// 3. **cache**, if both failed: the last good predictions, kept crash-safe
///    in ``cache_dir`` (several checksummed generations; a corrupt file is
///    quarantined and an older one served), so they survive a restart.
///    Without ``cache_dir``, or with an empty cache, :class:`spe.ForecastError`
///    is raised (its ``failures`` says why each tier failed). A
///    ``cache_dir`` is used by one process at a time: forecasters of this
///    process on one ``cache_dir`` share its cache (the newest answer of
///    either is the other's tier 3), and another process opening it while
///    this one has it gets :class:`spe.CacheError` ("already open").
///
/// With ``journal`` (a :class:`spe.Journal`), each outage of your model is
/// one incident (component ``prediction``). ``on_corrupt_cache="raise"``
/// raises :class:`spe.CacheCorruptError` when corrupt cache files are found
/// at start (they are quarantined first, so the next start succeeds);
/// ``"quarantine"`` (the default) reports them in :attr:`cache_report`.
/// ``clock`` (a :class:`spe.ManualClock`) drives the timeouts in tests.
///
/// Pickles with its settings when ``primary`` pickles (a module-level
/// function does; a lambda does not, and says so). Unpickled in another
/// process while this one has ``cache_dir`` open, it raises
/// :class:`spe.CacheError`: give each worker process its own ``cache_dir``.
///
/// >>> import numpy as np, spe
/// >>> def my_model(history, horizon):
/// ...     return np.full(horizon, history[-24:].mean())
/// >>> rf = spe.ResilientForecaster(primary=my_model, fallback="seasonal_naive", timeout_s=5.0)
/// >>> history = 100 + 10 * np.sin(np.arange(24 * 14) * 2 * np.pi / 24)
/// >>> p = rf.predict(history, horizon=24, season_length=24)
/// >>> p.tier, p.model, p.intervals_from
/// ('primary', 'my_model', 'seasonal_naive')
/// >>> def broken(history, horizon):
/// ...     raise RuntimeError("model server down")
/// >>> p = spe.ResilientForecaster(primary=broken, fallback="seasonal_naive").predict(
/// ...     history, horizon=24, season_length=24)
/// >>> p.tier, p.failures[0]["kind"], p.provenance
/// ('fallback', 'model_crash', 'fallback')
#[pyclass(module = "spe", name = "ResilientForecaster", frozen)]
pub struct ResilientForecaster {
    chain: PredictionChain,
    runtime: crate::runtime::OwnedRuntime,
    primary: Py<PyAny>,
    fallback: Fallback,
    fallback_name: String,
    timeout_s: f64,
    fallback_timeout_s: f64,
    cache_dir: Option<std::path::PathBuf>,
    journal: Option<Py<Journal>>,
    cache_report: Option<LoadReport>,
    /// `on_corrupt_cache="raise"`.
    raise_on_corrupt: bool,
}

/// The prediction caches open in this process, by canonical directory: a
/// cache is open once (its lock file's lock), so a second forecaster on a
/// `cache_dir` (a notebook cell run again while the first forecaster is
/// still bound) shares the open one rather than being refused. Weak, so a
/// cache closes, and its lock is released, with its last forecaster.
static OPEN_CACHES: Mutex<Vec<(std::path::PathBuf, WeakCache<Predictions>)>> =
    Mutex::new(Vec::new());

/// The prediction cache in `dir`: the one open in this process if there is
/// one (with a report of what it serves, nothing found damaged), else
/// opened. Blocking (the open reads and may quarantine files).
fn open_prediction_cache(dir: &std::path::Path) -> Result<(Cache<Predictions>, LoadReport), Error> {
    let mut open = OPEN_CACHES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    open.retain(|(_, weak)| weak.upgrade().is_some());
    let key = std::fs::canonicalize(dir).ok();
    let shared = key.as_ref().and_then(|key| {
        open.iter()
            .find(|(path, _)| path == key)
            .and_then(|(_, weak)| weak.upgrade())
    });
    if let Some(cache) = shared {
        let mut report = LoadReport::default();
        report.loaded = cache.get().map(|hit| hit.generation);
        return Ok((cache, report));
    }
    let (cache, report) = PredictionChain::open_cache(dir)?;
    // The directory exists now that the cache is open.
    let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    open.push((key, cache.downgrade()));
    Ok((cache, report))
}

/// The ``fallback`` argument: a model name, or a ``spe.Model`` (its model,
/// its Box–Cox λ, and its periods as the default ``season_length``).
struct Fallback {
    model: ModelName,
    box_cox: Option<f64>,
    /// A ``spe.Model``'s periods, when it has some.
    periods: Option<Vec<usize>>,
    /// The ``spe.Model`` given, for the repr and pickles.
    spec: Option<Py<PyAny>>,
}

impl Fallback {
    /// The default: ``"auto"``, periods from ``predict``.
    const AUTO: Fallback = Fallback {
        model: ModelName::Auto,
        box_cox: None,
        periods: None,
        spec: None,
    };

    fn extract(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let model_class = obj.py().import("spe._model")?.getattr("Model")?;
        if !obj.is_instance(&model_class)? {
            let model = model_arg(obj).map_err(|e| {
                if e.is_instance_of::<PyTypeError>(obj.py()) {
                    PyTypeError::new_err(format!(
                        "fallback must be a model name such as \"auto\" or a spe.Model, not {}",
                        arrays::type_name(obj)
                    ))
                } else {
                    e
                }
            })?;
            return Ok(Fallback {
                model,
                box_cox: None,
                periods: None,
                spec: None,
            });
        }
        // A spe.Model checked its own fields when it was made.
        let periods: Vec<usize> = obj.getattr("season_length")?.extract()?;
        Ok(Fallback {
            model: model_arg(&obj.getattr("name")?)?,
            box_cox: crate::args::box_cox(&obj.getattr("box_cox")?)?,
            periods: (!periods.is_empty()).then_some(periods),
            spec: Some(obj.clone().unbind()),
        })
    }

    /// What ``__getnewargs_ex__`` passes back: the ``spe.Model``, or the
    /// model's name.
    fn argument<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        match &self.spec {
            Some(spec) => spec.bind(py).clone(),
            None => PyString::new(py, self.model.name()).into_any(),
        }
    }
}

fn callable_name(callable: &Bound<'_, PyAny>) -> String {
    for attr in ["__qualname__", "__name__"] {
        if let Ok(name) = callable.getattr(attr).and_then(|n| n.extract::<String>()) {
            return name;
        }
    }
    callable
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "primary".into())
}

/// The next whole hour after now (UTC): the default start of a forecast.
fn next_hour(now: DateTime<Utc>) -> DateTime<Utc> {
    let floor = now
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);
    floor + chrono::Duration::hours(1)
}

/// `start` and `step` from a pandas Series on a `DatetimeIndex`, if it is
/// one: the step after the last timestamp, and the index's step.
///
/// The index must be time-zone aware and regular (one step throughout),
/// else the forecast would be put at the wrong times: a [`Error::config`]
/// says how to fix it. (`NaT` and order are checked before, by
/// `spe._forecast._check_index`.) A one-entry index gives a start and no
/// step.
fn from_index(history: &Bound<'_, PyAny>) -> PyResult<Option<(DateTime<Utc>, Option<Duration>)>> {
    let Ok(index) = history.getattr("index") else {
        return Ok(None);
    };
    if !index.hasattr("tz")? || !index.hasattr("asi8")? {
        return Ok(None);
    }
    if index.getattr("tz")?.is_none() {
        return Err(Error::config(
            "the history's DatetimeIndex has no time zone: localize it \
             (history.tz_localize(\"Europe/Paris\")), or pass start= and step_s=",
        )
        .into());
    }
    // pandas 2 indexes may count in s, ms or µs: ask for nanoseconds.
    let index = if index.hasattr("as_unit")? {
        index.call_method1("as_unit", ("ns",)).map_err(|e| {
            Error::config(format!(
                "the history's index does not fit in nanoseconds: {e}"
            ))
        })?
    } else {
        index
    };
    let nanos = arrays::numpy(index.py())?
        .call_method1("asarray", (index.getattr("asi8")?,))?
        .call_method1("astype", ("int64",))?;
    let nanos = nanos.cast_into::<numpy::PyArray1<i64>>()?;
    let nanos = nanos.readonly();
    let nanos = nanos.as_slice()?;
    let (Some(&first), Some(&last)) = (nanos.first(), nanos.last()) else {
        return Ok(None);
    };
    let to_time = |ns: i64| DateTime::<Utc>::from_timestamp_nanos(ns);
    // NaT, disorder and duplicates were refused by spe._forecast._check_index
    // (see `predict`); the step check below only guards the arithmetic.
    if nanos.len() < 2 {
        return Ok(Some((to_time(last), None)));
    }
    let step = nanos[1].saturating_sub(first);
    if step <= 0 {
        return Err(Error::config(
            "the history's index does not increase: sort it (history.sort_index()) \
             and drop duplicate times",
        )
        .into());
    }
    if let Some(i) = nanos
        .windows(2)
        .position(|w| w[1].saturating_sub(w[0]) != step)
    {
        return Err(Error::config(format!(
            "the history's index is not regular: {} between positions {i} and {}, \
             {} at the start; resample it (e.g. history.asfreq(\"h\"), gaps become NaN) \
             or pass start= and step_s=",
            nanos_text(nanos[i + 1].saturating_sub(nanos[i])),
            i + 1,
            nanos_text(step),
        ))
        .into());
    }
    let next = last.checked_add(step).map(to_time).ok_or_else(|| {
        Error::config("the history's index ends too late for another step".to_owned())
    })?;
    Ok(Some((
        next,
        Some(Duration::from_nanos(step.unsigned_abs())),
    )))
}

/// The forecast's times must fit numpy's and pandas' `datetime64[ns]`
/// (years 1677 to 2262), or `Prediction.times` could not show them.
fn check_nanosecond_range(request: &PredictionRequest) -> PyResult<()> {
    let steps = u32::try_from(request.horizon).unwrap_or(u32::MAX);
    let last = chrono::Duration::from_std(request.step)
        .ok()
        .and_then(|step| step.checked_mul(i32::try_from(steps).unwrap_or(i32::MAX)))
        .and_then(|span| request.start.checked_add_signed(span));
    let fits = |t: Option<DateTime<Utc>>| t.and_then(|t| t.timestamp_nanos_opt()).is_some();
    if fits(Some(request.start)) && fits(last) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "start={} with {} steps of {} s leaves the range of datetime64[ns] \
             (years 1677 to 2262)",
            request
                .start
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            request.horizon,
            request.step.as_secs()
        ))
        .into())
    }
}

/// A duration in nanoseconds, for messages.
fn nanos_text(ns: i64) -> String {
    if ns % 1_000_000_000 == 0 {
        format!("{} s", ns / 1_000_000_000)
    } else {
        format!("{ns} ns")
    }
}

fn cache_report_dict<'py>(py: Python<'py>, report: &LoadReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("loaded", report.loaded)?;
    let quarantined = PyList::empty(py);
    for q in &report.quarantined {
        let e = PyDict::new(py);
        e.set_item("path", &q.path)?;
        e.set_item("moved_to", q.moved_to.as_ref())?;
        e.set_item("generation", q.generation)?;
        e.set_item("reason", q.reason.to_string())?;
        quarantined.append(e)?;
    }
    d.set_item("quarantined", quarantined)?;
    let unreadable = PyList::empty(py);
    for u in &report.unreadable {
        unreadable.append((&u.path, &u.error))?;
    }
    d.set_item("unreadable", unreadable)?;
    Ok(d)
}

#[pymethods]
impl ResilientForecaster {
    #[new]
    #[pyo3(signature = (
        primary,
        fallback = Fallback::AUTO,
        timeout_s = 5.0,
        cache_dir = None,
        *,
        fallback_timeout_s = 120.0,
        journal = None,
        on_corrupt_cache = "quarantine",
        clock = None,
    ))]
    #[pyo3(
        text_signature = "(primary, fallback='auto', timeout_s=5.0, cache_dir=None, *, \
                          fallback_timeout_s=120.0, journal=None, on_corrupt_cache='quarantine', clock=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        primary: Bound<'_, PyAny>,
        #[pyo3(from_py_with = Fallback::extract)] fallback: Fallback,
        timeout_s: f64,
        cache_dir: Option<std::path::PathBuf>,
        fallback_timeout_s: f64,
        journal: Option<Py<Journal>>,
        on_corrupt_cache: &str,
        #[pyo3(from_py_with = crate::breaker::manual_clock)] clock: Option<Py<ManualClock>>,
    ) -> PyResult<Self> {
        if !primary.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "primary must be a callable primary(history, horizon), not {}",
                arrays::type_name(&primary)
            )));
        }
        let raise_on_corrupt = match on_corrupt_cache {
            "quarantine" => false,
            "raise" => true,
            other => {
                return Err(Error::config(format!(
                    "on_corrupt_cache={other:?} is not an option: use \"quarantine\" or \"raise\""
                ))
                .into());
            }
        };
        let timeout = crate::args::positive_seconds(timeout_s, "timeout_s")?;
        let fallback_timeout =
            crate::args::positive_seconds(fallback_timeout_s, "fallback_timeout_s")?;
        let name = callable_name(&primary);
        let predictor = PyPredictor {
            callable: Arc::new(primary.clone().unbind()),
            name,
            limit: spe_core::RunLimit::new(1),
        };
        let fallback_model =
            crate::forecast::dyn_model(fallback.model, fallback.box_cox).map_err(Error::from)?;
        let fallback_name = fallback_model.name();
        let mut builder = PredictionChain::builder()
            .primary(Arc::new(predictor))
            .fallback(fallback_model)
            .timeout(timeout)
            .fallback_timeout(fallback_timeout);
        let mut cache_report = None;
        if let Some(dir) = &cache_dir {
            let (cache, report) = py.detach(|| open_prediction_cache(dir))?;
            if raise_on_corrupt && !report.quarantined.is_empty() {
                let files: Vec<String> = report
                    .quarantined
                    .iter()
                    .map(|q| format!("{} ({})", q.path.display(), q.reason))
                    .collect();
                return Err(Error::CacheCorrupt(format!(
                    "corrupt prediction cache files were found and quarantined: {}; the next \
                     start serves the newest good generation (on_corrupt_cache=\"quarantine\" \
                     continues without raising)",
                    files.join(", ")
                ))
                .into());
            }
            builder = builder.cache(cache).cache_report(report.clone());
            cache_report = Some(report);
        }
        if let Some(j) = &journal {
            builder = builder.journal(j.get().core().clone());
        }
        if let Some(c) = &clock {
            builder = builder.clock(c.get().core().clone(), Utc::now());
        }
        let chain = py.detach(|| builder.build());
        let runtime = crate::runtime::OwnedRuntime::current_thread()
            .map_err(|e| Error::config(format!("cannot start the forecaster's runtime: {e}")))?;
        Ok(ResilientForecaster {
            chain,
            runtime,
            primary: primary.unbind(),
            fallback,
            fallback_name,
            timeout_s,
            fallback_timeout_s,
            cache_dir,
            journal,
            cache_report,
            raise_on_corrupt,
        })
    }

    /// Forecast ``horizon`` steps after ``history``: your model, else the
    /// fallback, else the last good predictions. Returns a
    /// :class:`spe.Prediction` that says which tier answered and why.
    ///
    /// ``history`` is any 1-D array-like of numbers (NaN gaps of up to 6
    /// values are interpolated first, as in :func:`spe.forecast`);
    /// ``season_length`` the seasonal periods for the fallback (default:
    /// those of a ``spe.Model`` fallback that has some, else ``(24, 168)``
    /// for hourly steps); ``levels`` the interval levels.
    /// ``start`` is the time of the first forecast step and ``step_s`` the
    /// seconds between steps: by default, from a pandas Series'
    /// ``DatetimeIndex`` (which must be time-zone aware, increasing, free of
    /// ``NaT`` and regular, else :class:`spe.ConfigError`; give both
    /// ``start`` and ``step_s`` to ignore it), else the next whole hour
    /// (UTC) and 3600. Pandas ``exog``/``exog_future`` must be indexed like
    /// the history and like the steps after it.
    /// ``exog``/``exog_future`` are regressors for a ``"regression"``
    /// fallback. ``inputs`` says where the history came from: ``"live"``
    /// (the default) or ``"synthetic"`` for an estimated history, so that
    /// your model's predictions then say ``provenance == "synthetic"`` and
    /// never pass for live ones. Concurrent calls with equal arguments share
    /// one run; a call with other arguments waits for the run in flight,
    /// then runs its own, so that ``primary`` never runs twice at once and
    /// no call gets predictions it did not ask for. The work runs with the
    /// GIL released.
    ///
    /// Raises :class:`spe.ForecastError` when every tier failed (its
    /// ``failures`` attribute lists why), :class:`spe.ConfigError` for a bad
    /// request.
    #[pyo3(signature = (history, horizon = 48, season_length = None, levels = None, start = None, step_s = None, exog = None, exog_future = None, inputs = "live"))]
    #[allow(clippy::too_many_arguments)]
    fn predict(
        &self,
        py: Python<'_>,
        history: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = crate::args::horizon)] horizon: usize,
        season_length: Option<&Bound<'_, PyAny>>,
        levels: Option<&Bound<'_, PyAny>>,
        start: Option<&Bound<'_, PyAny>>,
        step_s: Option<&Bound<'_, PyAny>>,
        exog: Option<&Bound<'_, PyAny>>,
        exog_future: Option<&Bound<'_, PyAny>>,
        inputs: &str,
    ) -> PyResult<Prediction> {
        let inputs = match inputs {
            "live" => spe_core::Provenance::Live,
            "synthetic" => spe_core::Provenance::Synthetic,
            other => {
                return Err(Error::config(format!(
                    "inputs={other:?}: give \"live\" or \"synthetic\" (an estimated history)"
                ))
                .into());
            }
        };
        // The same time-index rules as spe.forecast (NaT, order, exog alignment).
        py.import("spe._forecast")?
            .getattr("_check_index")?
            .call1((
                history,
                exog.filter(|e| !e.is_none()),
                exog_future.filter(|e| !e.is_none()),
            ))?;
        let values = arrays::float_vector(history, "history")?;
        let values = spe_core::fill_nan_gaps(&values, spe_core::DEFAULT_MAX_GAP)
            .map_err(|e| Error::forecast("history", e))?;
        let (start, step_s) = (
            start.filter(|s| !s.is_none()),
            step_s.filter(|s| !s.is_none()),
        );
        let indexed = if start.is_some() && step_s.is_some() {
            None
        } else {
            from_index(history)?
        };
        let step = match step_s {
            Some(s) => Duration::from_secs(crate::args::int_in(
                s,
                "step_s",
                1,
                366 * 86_400,
                "give the seconds between steps, 1 or more (3600 for hourly data)",
            )? as u64),
            None => indexed
                .and_then(|(_, step)| step)
                .unwrap_or(Duration::from_secs(3600)),
        };
        let start = match start {
            Some(s) => crate::args::instant(s, "start")?,
            None => match indexed {
                Some((next, _)) => next,
                None => next_hour(self.chain.now()),
            },
        };
        let mut builder = PredictionRequest::builder(start, values)
            .inputs(inputs)
            .horizon(horizon)
            .step(step)
            .levels(levels_or_default(levels)?);
        if let Some(s) = season_length.filter(|s| !s.is_none()) {
            builder = builder.periods(crate::args::season_length(s)?);
        } else if let Some(periods) = &self.fallback.periods {
            builder = builder.periods(periods.clone());
        }
        match (
            exog.filter(|e| !e.is_none()),
            exog_future.filter(|e| !e.is_none()),
        ) {
            (None, None) => {}
            (Some(e), Some(f)) => {
                let e: Exog = arrays::exog(e, "exog")?;
                let f: Exog = arrays::exog(f, "exog_future")?;
                builder = builder.exog(e, f);
            }
            _ => {
                return Err(Error::config(
                    "give both exog (over the history) and exog_future (over the horizon), or neither",
                )
                .into());
            }
        }
        let request = builder.build().map_err(chain_error)?;
        check_nanosecond_range(&request)?;
        let result = block_on_interruptibly(py, &self.runtime, self.chain.generate(request))?
            .map_err(chain_error)?;
        Prediction::new(py, result, self.chain.now())
    }

    /// The last answer (of any tier) or, after a restart with ``cache_dir``,
    /// the cached predictions (tier ``"cache"``); ``None`` if there is none.
    /// Never runs a model.
    fn latest(&self, py: Python<'_>) -> PyResult<Option<Prediction>> {
        self.chain
            .latest()
            .map(|r| Prediction::new(py, r, self.chain.now()))
            .transpose()
    }

    /// What opening ``cache_dir`` found (``loaded`` generation,
    /// ``quarantined`` corrupt files, ``unreadable`` files), or ``None``
    /// without a cache.
    #[getter]
    fn cache_report<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.cache_report
            .as_ref()
            .map(|r| cache_report_dict(py, r))
            .transpose()
    }

    /// The primary callable.
    #[getter]
    fn primary(&self, py: Python<'_>) -> Py<PyAny> {
        self.primary.clone_ref(py)
    }

    /// The fallback model's name (``"box_cox(0)+mstl"`` for
    /// ``spe.Model("mstl", box_cox=0)``).
    #[getter]
    fn fallback(&self) -> &str {
        &self.fallback_name
    }

    /// The primary's timeout, seconds.
    #[getter]
    fn timeout_s(&self) -> f64 {
        self.timeout_s
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let primary = self.chain.primary_name();
        let cache = match &self.cache_dir {
            Some(d) => PyString::new(py, &d.display().to_string())
                .repr()?
                .to_string(),
            None => "None".into(),
        };
        let fallback = match &self.fallback.spec {
            Some(spec) => spec.bind(py).repr()?,
            None => PyString::new(py, &self.fallback_name).repr()?,
        };
        Ok(format!(
            "ResilientForecaster(primary={}, fallback={fallback}, timeout_s={}, cache_dir={cache})",
            PyString::new(py, &primary).repr()?,
            PyFloat::new(py, self.timeout_s).repr()?,
        ))
    }

    /// Pickle support: rebuilt from its settings, if the primary pickles
    /// (the cache and the journal are reopened from their paths; a
    /// ``ManualClock`` is replaced by the system clock).
    fn __getnewargs_ex__<'py>(&self, py: Python<'py>) -> PyResult<NewArgs<'py>> {
        let pickle = py.import("pickle")?;
        if let Err(e) = pickle.call_method1("dumps", (self.primary.bind(py),)) {
            let err = PyTypeError::new_err(format!(
                "this ResilientForecaster cannot be pickled: its primary {} cannot be ({e}); \
                 define the model as a module-level function (or a picklable object), or build \
                 the forecaster in the other process",
                self.primary
                    .bind(py)
                    .repr()
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            ));
            err.set_cause(py, Some(e));
            return Err(err);
        }
        let args = PyTuple::new(
            py,
            [
                self.primary.bind(py).clone(),
                self.fallback.argument(py),
                PyFloat::new(py, self.timeout_s).into_any(),
                self.cache_dir.clone().into_pyobject(py)?.into_any(),
            ],
        )?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("fallback_timeout_s", self.fallback_timeout_s)?;
        kwargs.set_item("journal", self.journal.as_ref().map(|j| j.bind(py)))?;
        kwargs.set_item(
            "on_corrupt_cache",
            if self.raise_on_corrupt {
                "raise"
            } else {
                "quarantine"
            },
        )?;
        Ok((args, kwargs))
    }
}

thread_local! {
    /// A Ctrl-C handled in Python code the chain's future ran on the
    /// caller's thread (starting the primary's thread), which the chain could
    /// only report as the primary's failure: raised by
    /// `block_on_interruptibly` instead of the chain's answer.
    static CALLER_INTERRUPT: std::cell::RefCell<Option<PyErr>> = const { std::cell::RefCell::new(None) };
}

/// How long `predict` waits with the GIL released between two checks for
/// signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Run `future` on `runtime` with the GIL released, in slices of
/// [`SIGNAL_CHECK`] between which pending signals are handled: a
/// `KeyboardInterrupt` (or another signal handler's exception) drops the
/// future, which cancels its work, and is raised.
fn block_on_interruptibly<F>(
    py: Python<'_>,
    runtime: &tokio::runtime::Runtime,
    future: F,
) -> PyResult<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    let mut future = std::pin::pin!(future);
    // One left by a run nobody waited on like this is not this call's.
    CALLER_INTERRUPT.with(|slot| slot.borrow_mut().take());
    loop {
        // The timer is made inside `block_on`: it needs the runtime's context.
        let slice = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(SIGNAL_CHECK, future.as_mut()).await })
        });
        // Signals first: a Ctrl-C during the last slice wins over its
        // output (which may be the fallback answering for a primary
        // interrupted as it started).
        if let Some(interrupt) = CALLER_INTERRUPT.with(|slot| slot.borrow_mut().take()) {
            return Err(interrupt);
        }
        py.check_signals()?;
        if let Ok(output) = slice {
            return Ok(output);
        }
    }
}

/// `__getnewargs_ex__`: the positional and keyword arguments.
type NewArgs<'py> = (Bound<'py, PyTuple>, Bound<'py, PyDict>);

/// A chain error as a Python exception.
fn chain_error(e: ChainError) -> PyErr {
    Python::attach(|py| match e {
        ChainError::NoPredictions { failures } => {
            let list = PyList::empty(py);
            for f in &failures {
                let d = PyDict::new(py);
                let _ = d.set_item("tier", f.tier.name());
                let _ = d.set_item("predictor", &f.predictor);
                let _ = d.set_item("kind", f.kind.name());
                let _ = d.set_item("message", &f.message);
                let _ = list.append(d);
            }
            let why: Vec<String> = failures.iter().map(ToString::to_string).collect();
            let mut message = String::from("no predictions: ");
            if !why.is_empty() {
                message.push_str(&why.join("; "));
                message.push_str("; ");
            }
            message.push_str(
                "and no cached predictions to fall back on (give cache_dir= to keep the last good ones)",
            );
            SpeException::ForecastError.new_err_with(py, message, &[("failures", list.into_any())])
        }
        ChainError::InvalidRequest(m) => {
            SpeException::ConfigError.new_err(py, format!("invalid prediction request: {m}"))
        }
        other => SpeException::SpeError.new_err(py, other.to_string()),
    })
}
