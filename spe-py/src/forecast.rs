//! `spe.forecast`, `spe.forecast_many` and the `spe.Forecast` result.
//!
//! The work ([`run`]) is pure Rust on owned vectors: the arguments are
//! converted with the GIL held, then the models run with it released
//! (`forecast_many` spreads the series over scoped threads, one per core by
//! default), and the results become numpy arrays without a copy.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString, PyTuple};

use spe_core::{
    AutoEts, AutoModel, BoxCox, CandidateScore, DEFAULT_MAX_GAP, DynFit, Exog, Fit,
    Forecast as CoreForecast, ForecastError, History, Mstl, Naive, Predict, PredictionInterval,
    SeasonalNaive, WeatherRegression, fill_nan_gaps, validate_horizon, validate_levels,
};

use crate::args;
use crate::arrays::{self, readonly};
use crate::errors::Error;

/// The models `model=` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelName {
    /// Choose by a rolling-origin backtest on recent history among seasonal
    /// naive, MSTL (moving averages and loess), AutoEts (one period only)
    /// and, when regressors are given, the weather regression.
    Auto,
    /// Last season repeated.
    SeasonalNaive,
    /// Last value repeated.
    Naive,
    /// ETS, the best of six by AICc.
    Ets,
    /// MSTL-style decomposition with ETS on the adjusted series.
    Mstl,
    /// MSTL with STL's loess smoothers (tricube weights, the MSTL paper's
    /// windows).
    MstlLoess,
    /// Regression on weather and calendar (needs regressors).
    Regression,
}

impl ModelName {
    /// Every accepted name and the model it selects.
    pub const NAMES: [(&'static str, ModelName); 8] = [
        ("auto", ModelName::Auto),
        ("seasonal_naive", ModelName::SeasonalNaive),
        ("naive", ModelName::Naive),
        ("ets", ModelName::Ets),
        ("auto_ets", ModelName::Ets),
        ("mstl", ModelName::Mstl),
        ("mstl_loess", ModelName::MstlLoess),
        ("regression", ModelName::Regression),
    ];

    /// The model's canonical name (`auto`, `ets`, …), as `model=` takes it.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("auto", |(n, _)| n)
    }

    /// Parse `model=`: case-insensitive, `-` and `_` alike.
    pub fn parse(name: &str) -> Result<Self, Error> {
        let key = name.trim().to_ascii_lowercase().replace('-', "_");
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == key)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                let names: Vec<String> =
                    Self::NAMES.iter().map(|(n, _)| format!("{n:?}")).collect();
                Error::config(format!(
                    "model={name:?} is not a model SP-E knows: use one of {}",
                    names.join(", ")
                ))
            })
    }

    /// Whether the model needs regressors (`regression`).
    pub fn needs_exog(self) -> bool {
        self == ModelName::Regression
    }

    /// Whether the model can use regressors (`regression`, and `auto`,
    /// which then has the regression among its candidates).
    pub fn accepts_exog(self) -> bool {
        matches!(self, ModelName::Regression | ModelName::Auto)
    }

    /// The model with its default settings, as a trait object.
    pub fn dyn_fit(self) -> Arc<dyn DynFit> {
        match self {
            ModelName::Auto => Arc::new(AutoModel::default()),
            ModelName::SeasonalNaive => Arc::new(SeasonalNaive::new()),
            ModelName::Naive => Arc::new(Naive),
            ModelName::Ets => Arc::new(AutoEts::default()),
            ModelName::Mstl => Arc::new(Mstl::default()),
            ModelName::MstlLoess => Arc::new(Mstl::loess()),
            ModelName::Regression => Arc::new(WeatherRegression::default()),
        }
    }
}

/// `model=` as a [`ModelName`] (a `from_py_with` converter).
pub fn model_arg(obj: &Bound<'_, PyAny>) -> PyResult<ModelName> {
    let name: &str = obj.extract().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "model must be a model name such as \"auto\", not {}",
            arrays::type_name(obj)
        ))
    })?;
    Ok(ModelName::parse(name)?)
}

/// What to forecast, checked.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The model.
    pub model: ModelName,
    /// Steps ahead.
    pub horizon: usize,
    /// Seasonal periods, shortest first.
    pub periods: Vec<usize>,
    /// Interval levels, percent.
    pub levels: Vec<f64>,
    /// The Box–Cox λ the model is fitted under, if any.
    pub box_cox: Option<f64>,
}

/// A forecast and, for `auto`, every candidate's score.
#[derive(Debug)]
pub struct Outcome {
    /// The forecast.
    pub forecast: CoreForecast,
    /// The candidates' backtest scores (`auto` only).
    pub scores: Option<Vec<CandidateScore>>,
}

/// A fitted model and, for `auto`, every candidate's score.
#[derive(Debug)]
pub struct Fitted {
    /// The fitted model.
    pub model: Box<dyn Predict>,
    /// The candidates' backtest scores (`auto` only).
    pub scores: Option<Vec<CandidateScore>>,
}

impl Fitted {
    /// Forecast `spec.horizon` steps at `spec.levels`.
    pub fn predict(&self, spec: &Spec, future: Option<&Exog>) -> Result<Outcome, ForecastError> {
        validate_horizon(spec.horizon)?;
        validate_levels(&spec.levels)?;
        Ok(Outcome {
            forecast: self.model.predict(spec.horizon, &spec.levels, future)?,
            scores: self.scores.clone(),
        })
    }
}

/// A model chosen at run time, as a [`Fit`] (for [`BoxCox`]).
#[derive(Debug)]
struct Shared(Arc<dyn DynFit>);

impl Fit for Shared {
    type Fitted = Box<dyn Predict>;

    fn name(&self) -> String {
        self.0.name()
    }

    fn fit(&self, history: &History<'_>) -> Result<Box<dyn Predict>, ForecastError> {
        self.0.fit_dyn(history)
    }
}

/// `model` with its default settings, under the Box–Cox transform
/// `box_cox` if given, as a trait object.
pub fn dyn_model(model: ModelName, box_cox: Option<f64>) -> Result<Arc<dyn DynFit>, ForecastError> {
    Ok(match box_cox {
        None => model.dyn_fit(),
        Some(lambda) => Arc::new(BoxCox::new(Shared(model.dyn_fit()), lambda)?),
    })
}

/// Fit `model` (under the Box–Cox transform `box_cox`, if given) on `y`,
/// which must have no NaN (see [`fill_nan_gaps`]). Pure Rust: runs without
/// the GIL.
pub fn fit(
    model: ModelName,
    box_cox: Option<f64>,
    periods: &[usize],
    y: &[f64],
    exog: Option<&Exog>,
) -> Result<Fitted, ForecastError> {
    let history = History { y, periods, exog };
    match (model, box_cox) {
        (ModelName::Auto, None) => {
            let fitted = AutoModel::default().fit(&history)?;
            let scores = Some(fitted.scores().to_vec());
            Ok(Fitted {
                model: Box::new(fitted),
                scores,
            })
        }
        (ModelName::Auto, Some(lambda)) => {
            let fitted = BoxCox::new(AutoModel::default(), lambda)?.fit(&history)?;
            let scores = Some(fitted.inner().scores().to_vec());
            Ok(Fitted {
                model: Box::new(fitted),
                scores,
            })
        }
        _ => Ok(Fitted {
            model: dyn_model(model, box_cox)?.fit_dyn(&history)?,
            scores: None,
        }),
    }
}

/// Forecast one series: fill short NaN gaps (the missing-value rule), fit,
/// forecast. Pure Rust: runs without the GIL.
pub fn run(
    spec: &Spec,
    y: &[f64],
    exog: Option<&Exog>,
    future: Option<&Exog>,
) -> Result<Outcome, ForecastError> {
    validate_horizon(spec.horizon)?;
    validate_levels(&spec.levels)?;
    let y = fill_nan_gaps(y, DEFAULT_MAX_GAP)?;
    fit(spec.model, spec.box_cox, &spec.periods, &y, exog)?.predict(spec, future)
}

/// The threads `forecast_many` uses: `n_jobs`, or one per core.
fn threads(n_jobs: Option<usize>, series: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    n_jobs.unwrap_or(cores).clamp(1, series.max(1))
}

/// Forecast every series on `threads` scoped threads (dynamic scheduling:
/// each thread takes the next series when it is done with one). Results in
/// input order.
pub fn run_many(
    spec: &Spec,
    series: &[Vec<f64>],
    threads: usize,
) -> Vec<Result<Outcome, ForecastError>> {
    if threads <= 1 || series.len() <= 1 {
        return series.iter().map(|y| run(spec, y, None, None)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<Outcome, ForecastError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(y) = series.get(i) else { break };
                        out.push((i, run(spec, y, None, None)));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            // A panic in a model: the series left without a result report it below.
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    let mut results: Vec<Result<Outcome, ForecastError>> = Vec::with_capacity(series.len());
    let mut done = done.into_iter().peekable();
    for i in 0..series.len() {
        match done.next_if(|(j, _)| *j == i) {
            Some((_, r)) => results.push(r),
            None => results.push(Err(ForecastError::FitFailed {
                model: format!("{:?}", spec.model),
                reason: "the model panicked (a bug: please report it)".into(),
            })),
        }
    }
    results
}

/// The label of a level in column names: `80`, `97.5`.
pub fn level_label(level: f64) -> String {
    if level.fract() == 0.0 && level.abs() < 1e15 {
        format!("{}", level as i64)
    } else {
        format!("{level}")
    }
}

/// `auto`'s candidate scores as a list of dicts (`model`, `mase`,
/// `geo_mase`, `rmse`, `error`).
pub fn scores_list<'py>(
    py: Python<'py>,
    scores: &[CandidateScore],
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for s in scores {
        let d = PyDict::new(py);
        d.set_item("model", &s.model)?;
        d.set_item("mase", s.mase)?;
        d.set_item("geo_mase", s.geo_mase)?;
        d.set_item("rmse", s.rmse)?;
        d.set_item("error", s.error.as_deref())?;
        list.append(d)?;
    }
    Ok(list)
}

/// `(level, lower, upper)` of one interval.
type Interval = (f64, Py<PyArray1<f64>>, Py<PyArray1<f64>>);

/// A forecast: the mean path, prediction intervals and the model that made it.
///
/// Returned by :func:`spe.forecast` and :func:`spe.forecast_many`; also
/// built from your own model's output with
/// ``Forecast(model, mean, intervals={80: (lower, upper)})`` (checked:
/// finite values, intervals as long as the mean and containing it).
///
/// The arrays are read-only numpy ``float64`` arrays (``.copy()`` gives a
/// writable one). ``index`` is the time index of the forecast steps when
/// known (a pandas ``DatetimeIndex`` continuing the history's), else
/// ``None``. Pickles (and so crosses process boundaries) with its arrays.
///
/// >>> import numpy as np, spe
/// >>> fc = spe.Forecast("mine", [1.0, 2.0], intervals={80: ([0.5, 1.0], [1.5, 3.0])})
/// >>> fc
/// Forecast(model='mine', horizon=2, levels=(80,))
/// >>> fc.upper(80)
/// array([1.5, 3. ])
/// >>> fc.mean.flags.writeable
/// False
#[pyclass(module = "spe", name = "Forecast", frozen)]
pub struct Forecast {
    model: String,
    mean: Py<PyArray1<f64>>,
    /// In the order asked.
    intervals: Vec<Interval>,
    index: Option<Py<PyAny>>,
    /// `auto`'s candidate scores: set at creation, or once by `__setstate__`
    /// when unpickled.
    scores: OnceLock<Vec<CandidateScore>>,
}

impl Forecast {
    /// A Python forecast from a core one (arrays handed over without a copy).
    pub fn from_outcome(py: Python<'_>, outcome: Outcome) -> PyResult<Self> {
        let Outcome { forecast, scores } = outcome;
        let model = forecast.model().to_owned();
        let intervals = forecast.intervals().to_vec();
        let mean = forecast.mean().to_vec();
        Ok(Forecast {
            model,
            mean: readonly(py, mean)?.unbind(),
            intervals: intervals
                .into_iter()
                .map(|pi| {
                    Ok((
                        pi.level,
                        readonly(py, pi.lower)?.unbind(),
                        readonly(py, pi.upper)?.unbind(),
                    ))
                })
                .collect::<PyResult<_>>()?,
            index: None,
            scores: scores.map_or_else(OnceLock::new, OnceLock::from),
        })
    }

    /// The horizon.
    pub fn len(&self, py: Python<'_>) -> usize {
        self.mean.bind(py).len()
    }

    fn interval(&self, level: f64) -> Result<&Interval, Error> {
        self.intervals
            .iter()
            .find(|(l, _, _)| (l - level).abs() < 1e-9)
            .ok_or_else(|| {
                let have: Vec<String> = self.intervals.iter().map(|(l, _, _)| level_label(*l)).collect();
                Error::config(if have.is_empty() {
                    format!(
                        "this forecast has no intervals (levels=()): ask for them, e.g. levels=({}, 95)",
                        level_label(level)
                    )
                } else {
                    format!(
                        "this forecast has no {} % interval, only {}: ask for it with levels=(..., {})",
                        level_label(level),
                        have.join(", "),
                        level_label(level)
                    )
                })
            })
    }

    /// The same forecast with another index (no copy of the arrays).
    fn reindexed(&self, py: Python<'_>, index: Option<Py<PyAny>>) -> Self {
        Forecast {
            model: self.model.clone(),
            mean: self.mean.clone_ref(py),
            intervals: self
                .intervals
                .iter()
                .map(|(l, lo, hi)| (*l, lo.clone_ref(py), hi.clone_ref(py)))
                .collect(),
            index,
            scores: self.scores.clone(),
        }
    }
}

/// A 1-D float array argument as a vector, for the `Forecast` constructor.
fn vector_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f64>> {
    arrays::float_vector(obj, name)
}

#[pymethods]
impl Forecast {
    #[new]
    #[pyo3(signature = (model, mean, intervals = None, index = None))]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = model_label)] model: String,
        mean: &Bound<'_, PyAny>,
        intervals: Option<&Bound<'_, PyAny>>,
        index: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let mean = vector_arg(mean, "mean")?;
        let mut pis = Vec::new();
        if let Some(intervals) = intervals.filter(|i| !i.is_none()) {
            let items = intervals.call_method0("items").map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(
                    "intervals must be a dict {level: (lower, upper)}",
                )
            })?;
            for item in items.try_iter()? {
                let (level, bounds): (f64, (Bound<'_, PyAny>, Bound<'_, PyAny>)) =
                    item?.extract().map_err(|_| {
                        pyo3::exceptions::PyTypeError::new_err(
                            "intervals must be a dict {level: (lower, upper)} with a number as level",
                        )
                    })?;
                let label = level_label(level);
                pis.push(PredictionInterval {
                    level,
                    lower: vector_arg(&bounds.0, &format!("intervals[{label}] lower"))?,
                    upper: vector_arg(&bounds.1, &format!("intervals[{label}] upper"))?,
                });
            }
        }
        let forecast =
            CoreForecast::new(model, mean, pis).map_err(|e| Error::forecast("Forecast", e))?;
        let mut out = Forecast::from_outcome(
            py,
            Outcome {
                forecast,
                scores: None,
            },
        )?;
        if let Some(index) = index.filter(|i| !i.is_none(py)) {
            check_index(py, &index, out.len(py))?;
            out.index = Some(index);
        }
        Ok(out)
    }

    /// The model that made the forecast (``"auto(mstl)"``: ``auto`` chose ``mstl``).
    #[getter]
    fn model(&self) -> &str {
        &self.model
    }

    /// The mean path, one value per step (read-only ``float64`` array).
    #[getter]
    fn mean(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        self.mean.clone_ref(py)
    }

    /// Number of steps.
    #[getter]
    fn horizon(&self, py: Python<'_>) -> usize {
        self.len(py)
    }

    /// The interval levels (percent), in the order asked.
    #[getter]
    fn levels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(
            py,
            self.intervals.iter().map(|(l, _, _)| level_object(py, *l)),
        )
    }

    /// The time index of the steps (pandas), or ``None``.
    #[getter]
    fn index(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.index.as_ref().map(|i| i.clone_ref(py))
    }

    /// For ``model="auto"``: each candidate's backtest score (a list of dicts
    /// with ``model``, ``mase`` (pooled over the folds), ``geo_mase`` (the
    /// geometric mean of the folds' MASE, which ``auto`` ranks by),
    /// ``rmse`` and ``error``), else ``None``.
    #[getter]
    fn scores<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        self.scores
            .get()
            .map(|scores| scores_list(py, scores))
            .transpose()
    }

    /// Lower bounds of the ``level`` % interval (read-only array).
    ///
    /// Raises ``spe.ConfigError`` if the forecast has no interval at that level.
    fn lower(&self, py: Python<'_>, level: f64) -> PyResult<Py<PyArray1<f64>>> {
        Ok(self.interval(level)?.1.clone_ref(py))
    }

    /// Upper bounds of the ``level`` % interval (read-only array).
    ///
    /// Raises ``spe.ConfigError`` if the forecast has no interval at that level.
    fn upper(&self, py: Python<'_>, level: f64) -> PyResult<Py<PyArray1<f64>>> {
        Ok(self.interval(level)?.2.clone_ref(py))
    }

    /// The same forecast on another time index (``len(index) == horizon``);
    /// the arrays are shared, not copied.
    fn with_index(&self, py: Python<'_>, index: Py<PyAny>) -> PyResult<Self> {
        if index.is_none(py) {
            return Ok(self.reindexed(py, None));
        }
        check_index(py, &index, self.len(py))?;
        Ok(self.reindexed(py, Some(index)))
    }

    /// The columns as a dict of arrays: ``mean``, then ``lower_<level>`` and
    /// ``upper_<level>`` for each level (``lower_80``, ``upper_80``, …).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("mean", self.mean.bind(py))?;
        for (level, lower, upper) in &self.intervals {
            let label = level_label(*level);
            d.set_item(format!("lower_{label}"), lower.bind(py))?;
            d.set_item(format!("upper_{label}"), upper.bind(py))?;
        }
        Ok(d)
    }

    /// The forecast as a pandas DataFrame: the columns of :meth:`to_dict`,
    /// indexed by :attr:`index` when known, else by the step number
    /// (1 to ``horizon``, named ``step``). ``df.attrs["model"]`` is the model.
    ///
    /// Needs pandas (``pip install 'spe[pandas]'``).
    fn to_pandas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pd = py.import("pandas").map_err(|e| {
            let err = PyImportError::new_err(
                "Forecast.to_pandas() needs pandas, which is not installed: pip install 'spe[pandas]' \
                 (or pip install pandas); Forecast.to_dict() gives the same columns as numpy arrays",
            );
            err.set_cause(py, Some(e));
            err
        })?;
        let index = match &self.index {
            Some(index) => index.bind(py).clone(),
            None => {
                let kwargs = PyDict::new(py);
                kwargs.set_item("name", "step")?;
                pd.getattr("RangeIndex")?
                    .call((1, self.len(py) + 1), Some(&kwargs))?
            }
        };
        let kwargs = PyDict::new(py);
        kwargs.set_item("index", index)?;
        let df = pd
            .getattr("DataFrame")?
            .call((self.to_dict(py)?,), Some(&kwargs))?;
        df.getattr("attrs")?.set_item("model", &self.model)?;
        Ok(df)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.len(py)
    }

    /// Equal to another forecast with the same model name, mean, intervals
    /// (levels and bounds) and index (compared with ``Index.equals``); a
    /// pickled and unpickled forecast equals the original. Not hashable.
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<Forecast>() else {
            return Ok(false);
        };
        let other = other.get();
        let same = |a: &Py<PyArray1<f64>>, b: &Py<PyArray1<f64>>| -> PyResult<bool> {
            Ok(a.bind(py).readonly().as_slice()? == b.bind(py).readonly().as_slice()?)
        };
        if self.model != other.model
            || !same(&self.mean, &other.mean)?
            || self.intervals.len() != other.intervals.len()
        {
            return Ok(false);
        }
        for ((l1, lo1, hi1), (l2, lo2, hi2)) in self.intervals.iter().zip(&other.intervals) {
            if l1 != l2 || !same(lo1, lo2)? || !same(hi1, hi2)? {
                return Ok(false);
            }
        }
        match (&self.index, &other.index) {
            (None, None) => Ok(true),
            (Some(a), Some(b)) => {
                let (a, b) = (a.bind(py), b.bind(py));
                if a.hasattr("equals")? {
                    a.call_method1("equals", (b,))?.is_truthy()
                } else {
                    a.eq(b)
                }
            }
            _ => Ok(false),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Forecast(model={}, horizon={}, levels={})",
            PyString::new(py, &self.model).repr()?,
            self.len(py),
            self.levels(py)?.repr()?
        ))
    }

    /// Pickle and copy support: the state beyond the constructor's
    /// arguments, ``auto``'s candidate scores (``None`` without).
    fn __getstate__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        self.scores(py)
    }

    /// Pickle and copy support: restore the scores (once).
    fn __setstate__(&self, state: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let Some(state) = state.filter(|s| !s.is_none()) else {
            return Ok(());
        };
        let mut scores = Vec::new();
        for item in state.try_iter()? {
            let item = item?;
            let get = |key: &str| item.get_item(key);
            let mut score = CandidateScore::new(get("model")?.extract::<String>()?);
            score.mase = get("mase")?.extract()?;
            score.geo_mase = get("geo_mase")?.extract()?;
            score.rmse = get("rmse")?.extract()?;
            score.error = get("error")?.extract()?;
            scores.push(score);
        }
        self.scores
            .set(scores)
            .map_err(|_| Error::config("this forecast already has its scores").into())
    }

    /// Pickle and copy support: rebuilt from its arrays.
    fn __getnewargs_ex__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
        let intervals = PyDict::new(py);
        for (level, lower, upper) in &self.intervals {
            intervals.set_item(level_object(py, *level), (lower.bind(py), upper.bind(py)))?;
        }
        let kwargs = PyDict::new(py);
        kwargs.set_item("intervals", intervals)?;
        kwargs.set_item("index", self.index.as_ref().map(|i| i.bind(py)))?;
        Ok((
            PyTuple::new(
                py,
                [
                    PyString::new(py, &self.model).into_any(),
                    self.mean.bind(py).clone().into_any(),
                ],
            )?,
            kwargs,
        ))
    }
}

/// A level as Python shows it: `80` for a whole number, `97.5` otherwise.
fn level_object(py: Python<'_>, level: f64) -> Bound<'_, PyAny> {
    if level.fract() == 0.0 && level.abs() < 1e15 {
        match (level as i64).into_pyobject(py) {
            Ok(i) => i.into_any(),
            Err(never) => match never {},
        }
    } else {
        PyFloat::new(py, level).into_any()
    }
}

fn check_index(py: Python<'_>, index: &Py<PyAny>, horizon: usize) -> PyResult<()> {
    let len = index.bind(py).len().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err("index must be a sequence (e.g. a pandas Index)")
    })?;
    if len != horizon {
        return Err(Error::config(format!(
            "index has {len} entries for a forecast of {horizon} steps: give one per step"
        ))
        .into());
    }
    Ok(())
}

/// Regressors for a model: refused for models that cannot use them, and
/// both parts needed (the history's and the horizon's).
pub fn regressors(
    model: ModelName,
    exog: Option<&Bound<'_, PyAny>>,
    future: Option<&Bound<'_, PyAny>>,
) -> PyResult<(Option<Exog>, Option<Exog>)> {
    let exog = exog.filter(|e| !e.is_none());
    let future = future.filter(|e| !e.is_none());
    if !model.accepts_exog() && (exog.is_some() || future.is_some()) {
        return Err(Error::config(
            "exog and exog_future are used only by model=\"regression\" and model=\"auto\": \
             drop them, or choose one of those",
        )
        .into());
    }
    let missing = |what: &str| {
        Error::forecast(
            "",
            ForecastError::MissingRegressors(format!("{what} is missing")),
        )
    };
    match (&exog, &future) {
        (Some(_), None) => {
            return Err(missing("exog_future (the regressors over the horizon)").into());
        }
        (None, Some(_)) => return Err(missing("exog (the regressors over the history)").into()),
        _ => {}
    }
    Ok((
        exog.map(|e| arrays::exog(e, "exog")).transpose()?,
        future.map(|e| arrays::exog(e, "exog_future")).transpose()?,
    ))
}

/// Forecast one series (the compiled core of ``spe.forecast``; use that).
#[pyfunction]
#[pyo3(signature = (y, horizon, season_length, model = ModelName::Auto, levels = None, exog = None, exog_future = None, box_cox = None))]
#[pyo3(
    text_signature = "(y, horizon, season_length, model='auto', levels=None, exog=None, exog_future=None, box_cox=None)"
)]
#[allow(clippy::too_many_arguments)]
pub fn forecast(
    py: Python<'_>,
    y: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = args::horizon)] horizon: usize,
    #[pyo3(from_py_with = args::season_length)] season_length: Vec<usize>,
    #[pyo3(from_py_with = model_arg)] model: ModelName,
    levels: Option<&Bound<'_, PyAny>>,
    exog: Option<&Bound<'_, PyAny>>,
    exog_future: Option<&Bound<'_, PyAny>>,
    #[pyo3(from_py_with = args::box_cox)] box_cox: Option<f64>,
) -> PyResult<Forecast> {
    let spec = Spec {
        model,
        horizon,
        periods: season_length,
        levels: levels_or_default(levels)?,
        box_cox,
    };
    let values = arrays::float_vector(y, "y")?;
    let (exog, future) = regressors(model, exog, exog_future)?;
    let outcome = py
        .detach(|| run(&spec, &values, exog.as_ref(), future.as_ref()))
        .map_err(Error::from)?;
    Forecast::from_outcome(py, outcome)
}

/// `levels=None` means the default (80, 95).
pub fn levels_or_default(levels: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<f64>> {
    match levels.filter(|l| !l.is_none()) {
        Some(l) => args::levels(l),
        None => Ok(vec![80.0, 95.0]),
    }
}

/// The regressors of ``model="regression"`` for ``len(temperature)`` hours
/// from ``start``, as a dict of arrays.
///
/// ``temperature_2m`` is ``temperature`` (°C, one value per hour, finite);
/// ``hour`` is the local hour (0–23) and ``day_type`` the local day's type
/// (0 working day, 1 Saturday, 2 Sunday or public holiday) at a site in
/// ``timezone`` with the holidays of ``country`` (``"FR"`` or ``"none"``).
/// ``start`` is read as in :meth:`SyntheticGenerator.arrays`. Use it for
/// the history (``exog=``) and, with the forecast temperatures, for the
/// horizon (``exog_future=``).
///
/// >>> import spe
/// >>> x = spe.calendar_exog("2026-07-13T22:00:00Z", [20.0] * 3)   # 14 July, Paris
/// >>> sorted(x), x["hour"].tolist(), x["day_type"].tolist()
/// (['day_type', 'hour', 'temperature_2m'], [0.0, 1.0, 2.0], [2.0, 2.0, 2.0])
#[pyfunction]
#[pyo3(signature = (start, temperature, timezone = "Europe/Paris", country = "FR"))]
pub fn calendar_exog<'py>(
    py: Python<'py>,
    #[pyo3(from_py_with = args::start)] start: chrono::DateTime<chrono::Utc>,
    temperature: &Bound<'py, PyAny>,
    timezone: &str,
    country: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let temperature = arrays::float_vector(temperature, "temperature")?;
    let country: spe_core::Country = country.parse().map_err(Error::from)?;
    let site = spe_core::Site::new("spe-py", 0.0, 0.0, timezone, country).map_err(Error::from)?;
    let axis = spe_core::TimeAxis::new(start, temperature.len()).map_err(Error::from)?;
    let exog = spe_core::calendar_exog(&site, axis, &temperature)
        .map_err(|e| Error::forecast("temperature", e))?;
    let out = PyDict::new(py);
    for name in exog.names() {
        if let Some(column) = exog.column(name) {
            out.set_item(name, readonly(py, column.to_vec())?)?;
        }
    }
    Ok(out)
}

/// What `forecast_many` does with a series that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnError {
    Raise,
    Skip,
}

/// `on_error`: a str (which one is checked where it is used).
fn on_error_arg(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    args::text(obj, "on_error", "\"raise\" or \"skip\"")
}

/// `model` of a `Forecast`: its name, a str.
fn model_label(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    args::text(obj, "model", "the name of the model that made the forecast")
}

/// Forecast many series in parallel (the compiled core of ``spe.forecast_many``; use that).
#[pyfunction]
#[pyo3(signature = (ys, horizon, season_length, model = ModelName::Auto, levels = None, n_jobs = None, on_error = String::from("raise"), box_cox = None))]
#[pyo3(
    text_signature = "(ys, horizon, season_length, model='auto', levels=None, n_jobs=None, on_error='raise', box_cox=None)"
)]
#[allow(clippy::too_many_arguments)]
pub fn forecast_many<'py>(
    py: Python<'py>,
    ys: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = args::horizon)] horizon: usize,
    #[pyo3(from_py_with = args::season_length)] season_length: Vec<usize>,
    #[pyo3(from_py_with = model_arg)] model: ModelName,
    levels: Option<&Bound<'py, PyAny>>,
    n_jobs: Option<&Bound<'py, PyAny>>,
    #[pyo3(from_py_with = on_error_arg)] on_error: String,
    #[pyo3(from_py_with = args::box_cox)] box_cox: Option<f64>,
) -> PyResult<Bound<'py, PyList>> {
    if model.needs_exog() {
        return Err(Error::config(
            "forecast_many does not take regressors, so it cannot run model=\"regression\": \
             call spe.forecast per series with exog= and exog_future=",
        )
        .into());
    }
    let on_error = match on_error.as_str() {
        "raise" => OnError::Raise,
        "skip" => OnError::Skip,
        other => {
            return Err(Error::config(format!(
                "on_error={other:?} is not an option: use \"raise\" (the first failing series \
                 raises) or \"skip\" (None in its place)"
            ))
            .into());
        }
    };
    let n_jobs = match n_jobs.filter(|n| !n.is_none()) {
        Some(n) => Some(args::int_in(
            n,
            "n_jobs",
            1,
            4096,
            "give the number of threads, 1 or more (None: one per core)",
        )?),
        None => None,
    };
    let spec = Spec {
        model,
        horizon,
        periods: season_length,
        levels: levels_or_default(levels)?,
        box_cox,
    };
    let series = arrays::float_vectors(ys, "Y")?;
    let threads = threads(n_jobs, series.len());
    let results = py.detach(|| run_many(&spec, &series, threads));
    let out = PyList::empty(py);
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(outcome) => out.append(Forecast::from_outcome(py, outcome)?)?,
            Err(e) if on_error == OnError::Skip => {
                tracing::debug!(series = i, error = %e, "forecast_many: series skipped");
                out.append(py.None())?;
            }
            Err(e) => return Err(Error::forecast(format!("series {i}"), e).into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(n: usize) -> Vec<f64> {
        (0..n)
            .map(|t| 100.0 + 10.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).sin())
            .collect()
    }

    fn spec(model: ModelName) -> Spec {
        Spec {
            model,
            horizon: 24,
            periods: vec![24],
            levels: vec![80.0, 95.0],
            box_cox: None,
        }
    }

    #[test]
    fn model_names() {
        assert_eq!(ModelName::parse("AUTO").unwrap(), ModelName::Auto);
        assert_eq!(ModelName::parse("auto-ets").unwrap(), ModelName::Ets);
        assert_eq!(ModelName::parse(" mstl ").unwrap(), ModelName::Mstl);
        let message = ModelName::parse("prophet").unwrap_err().to_string();
        assert!(message.contains("\"seasonal_naive\""), "{message}");
    }

    #[test]
    fn short_gaps_are_filled_long_ones_refused() {
        let mut y = daily(24 * 7);
        y[30] = f64::NAN;
        let out = run(&spec(ModelName::SeasonalNaive), &y, None, None).unwrap();
        assert_eq!(out.forecast.horizon(), 24);
        for v in &mut y[40..60] {
            *v = f64::NAN;
        }
        assert!(matches!(
            run(&spec(ModelName::SeasonalNaive), &y, None, None),
            Err(ForecastError::GapTooLong { start: 40, .. })
        ));
    }

    #[test]
    fn many_matches_one_by_one_in_order() {
        let series: Vec<Vec<f64>> = (0..7)
            .map(|k| daily(24 * 7).iter().map(|v| v * (1.0 + k as f64)).collect())
            .chain([vec![1.0]])
            .collect();
        let s = spec(ModelName::SeasonalNaive);
        let parallel = run_many(&s, &series, 3);
        assert_eq!(parallel.len(), series.len());
        for (y, p) in series.iter().zip(&parallel) {
            match (run(&s, y, None, None), p) {
                (Ok(a), Ok(b)) => assert_eq!(a.forecast, b.forecast),
                (Err(a), Err(b)) => assert_eq!(&a, b),
                (a, b) => panic!("{a:?} vs {b:?}"),
            }
        }
        assert!(parallel[7].is_err());
    }

    #[test]
    fn level_labels() {
        assert_eq!(level_label(80.0), "80");
        assert_eq!(level_label(97.5), "97.5");
    }

    #[test]
    fn thread_count() {
        assert_eq!(threads(Some(8), 3), 3);
        assert_eq!(threads(Some(2), 100), 2);
        assert_eq!(threads(None, 0), 1);
    }
}
