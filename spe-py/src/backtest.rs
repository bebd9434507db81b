//! `spe.backtest`: a rolling-origin backtest of one model on one series.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use spe_core::{
    AccuracyMetrics, BacktestConfig, BacktestReport, DEFAULT_MAX_GAP, Exog, ForecastError,
    backtest_with_exog, fill_nan_gaps,
};

use crate::args;
use crate::arrays::{self, readonly};
use crate::errors::Error;
use crate::forecast::{ModelName, dyn_model, levels_or_default, model_arg};

/// Backtest one model: fill short NaN gaps, then the core's rolling-origin
/// backtest. Pure Rust: runs without the GIL.
fn run(
    y: &[f64],
    periods: &[usize],
    model: ModelName,
    box_cox: Option<f64>,
    exog: Option<&Exog>,
    config: &BacktestConfig,
) -> Result<BacktestReport, ForecastError> {
    let y = fill_nan_gaps(y, DEFAULT_MAX_GAP)?;
    let model = dyn_model(model, box_cox)?;
    backtest_with_exog(model.as_ref(), &y, periods, exog, config)
}

/// The scores of `metrics` into `d`.
fn put_metrics(py: Python<'_>, d: &Bound<'_, PyDict>, metrics: &AccuracyMetrics) -> PyResult<()> {
    d.set_item("mape", metrics.mape)?;
    d.set_item("smape", metrics.smape)?;
    d.set_item("mase", metrics.mase)?;
    d.set_item("rmse", metrics.rmse)?;
    d.set_item("mae", metrics.mae)?;
    d.set_item("bias", metrics.bias)?;
    d.set_item("mape_skipped", metrics.mape_skipped)?;
    let coverage = PyDict::new(py);
    let width = PyDict::new(py);
    for c in &metrics.coverage {
        let level = level_key(py, c.level)?;
        coverage.set_item(&level, c.coverage)?;
        width.set_item(&level, c.mean_width)?;
    }
    d.set_item("coverage", coverage)?;
    d.set_item("mean_width", width)?;
    Ok(())
}

fn level_key(py: Python<'_>, level: f64) -> PyResult<Bound<'_, PyAny>> {
    Ok(if level.fract() == 0.0 && level.abs() < 1e15 {
        (level as i64).into_pyobject(py)?.into_any()
    } else {
        level.into_pyobject(py)?.into_any()
    })
}

/// A rolling-origin backtest of ``model`` on ``y``; returns its scores.
///
/// The series is cut at ``folds`` origins ``step`` steps apart (default
/// ``step = horizon``: windows side by side), the last window ending at the
/// last observation. At each origin the model is fitted on everything
/// before it (once only, before the first origin, with ``refit=False``) and
/// forecasts the next ``horizon`` steps, which are scored against what
/// happened. ``y``, ``season_length``, ``model``, ``levels`` and
/// ``box_cox`` are as in :func:`spe.forecast` (NaN gaps of up to 6 values are
/// interpolated first). ``exog`` (a dict or DataFrame of regressors, one row
/// per observation, as in :func:`spe.forecast`) serves ``model="regression"``
/// and ``"auto"``: each fold sees the rows before its origin as history and
/// the rows of its window as the future regressors — the observed weather,
/// so those scores are optimistic by the error of a real weather forecast.
///
/// Returns a dict, pooled over all folds: ``mape`` and ``smape`` (percent;
/// MAPE leaves out zero actuals, counted in ``mape_skipped``), ``mase``
/// (scaled by the in-sample seasonal naive of the shortest season), ``rmse``,
/// ``mae``, ``bias`` (mean forecast − actual: positive means over-forecast),
/// ``coverage`` and ``mean_width`` (dicts by level: the fraction of actuals
/// inside the interval, its mean width); ``None`` where a score is undefined.
/// Also ``model``, ``folds``, ``horizon``, ``step``, ``refit``,
/// ``mase_period``, ``mae_per_step`` (array, one per horizon step),
/// ``errors_per_step`` (array of shape ``(horizon, folds)``: the errors
/// actual − forecast, row ``h`` for step ``h + 1``, column ``k`` for fold
/// ``k``) and ``per_fold`` (one dict of the same scores per fold, with its
/// ``origin``).
///
/// With ``refit=False`` the model is fitted once, on the history before the
/// first origin, and its one long forecast is scored at every origin (so
/// ``horizon + (folds − 1)·step`` must be a horizon a model forecasts):
/// faster, and what a model left unrefitted for that long would do.
///
/// Runs without holding the GIL. Raises :class:`spe.ForecastInputError` if
/// the series is too short for the folds (the message says how much is
/// needed).
///
/// >>> import numpy as np, spe
/// >>> t = np.arange(24 * 21)
/// >>> y = 100 + 10 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(1).normal(0, 1, t.size)
/// >>> scores = spe.backtest(y, horizon=24, season_length=24, model="seasonal_naive", folds=7)
/// >>> scores["folds"], sorted(scores["coverage"])
/// (7, [80, 95])
/// >>> 0.5 < scores["mase"] < 2.0
/// True
/// >>> scores["errors_per_step"].shape
/// (24, 7)
#[pyfunction]
#[pyo3(signature = (y, horizon, season_length, model = ModelName::Auto, folds = None, step = None, levels = None, exog = None, refit = true, box_cox = None))]
#[pyo3(
    text_signature = "(y, horizon, season_length, model='auto', folds=3, step=None, levels=(80, 95), exog=None, refit=True, box_cox=None)"
)]
#[allow(clippy::too_many_arguments)]
pub fn backtest<'py>(
    py: Python<'py>,
    y: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = args::horizon)] horizon: usize,
    #[pyo3(from_py_with = args::season_length)] season_length: Vec<usize>,
    #[pyo3(from_py_with = model_arg)] model: ModelName,
    folds: Option<&Bound<'py, PyAny>>,
    step: Option<&Bound<'py, PyAny>>,
    levels: Option<&Bound<'py, PyAny>>,
    exog: Option<&Bound<'py, PyAny>>,
    #[pyo3(from_py_with = refit_arg)] refit: bool,
    #[pyo3(from_py_with = args::box_cox)] box_cox: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let exog = match exog.filter(|e| !e.is_none()) {
        Some(_) if !model.accepts_exog() => {
            return Err(Error::config(
                "exog is used only by model=\"regression\" and model=\"auto\": drop it, or \
                 choose one of those",
            )
            .into());
        }
        Some(e) => Some(arrays::exog(e, "exog")?),
        None if model.needs_exog() => {
            return Err(Error::forecast(
                "",
                ForecastError::MissingRegressors(
                    "model=\"regression\" is backtested on its regressors: exog is missing".into(),
                ),
            )
            .into());
        }
        None => None,
    };
    const FOLD_HINT: &str = "give the number of origins, 1 to 10000";
    let folds = match folds.filter(|f| !f.is_none()) {
        Some(f) => args::int_in(f, "folds", 1, 10_000, FOLD_HINT)?,
        None => 3,
    };
    let step = match step.filter(|s| !s.is_none()) {
        Some(s) => args::int_in(
            s,
            "step",
            1,
            spe_core::MAX_HORIZON,
            "give the steps between origins, 1 or more (None: the horizon)",
        )?,
        None => horizon,
    };
    let config = BacktestConfig::new(horizon, folds)
        .with_step(step)
        .with_refit(refit)
        .with_levels(levels_or_default(levels)?);
    let values = arrays::float_vector(y, "y")?;
    let report = py
        .detach(|| {
            run(
                &values,
                &season_length,
                model,
                box_cox,
                exog.as_ref(),
                &config,
            )
        })
        .map_err(Error::from)?;

    let out = PyDict::new(py);
    out.set_item("model", &report.model)?;
    put_metrics(py, &out, &report.overall)?;
    out.set_item("folds", report.folds.len())?;
    out.set_item("horizon", report.config.horizon)?;
    out.set_item("step", report.config.step)?;
    out.set_item("refit", report.config.refit)?;
    out.set_item("mase_period", report.mase_period)?;
    out.set_item("mae_per_step", readonly(py, report.mae_per_step.clone())?)?;
    let errors = numpy::PyArray2::from_vec2(py, &report.errors_per_step)
        .map_err(|e| Error::config(format!("errors per step: {e}")))?;
    errors.call_method1("setflags", (false,))?;
    out.set_item("errors_per_step", errors)?;
    let per_fold = PyList::empty(py);
    for fold in &report.folds {
        let d = PyDict::new(py);
        d.set_item("origin", fold.origin)?;
        put_metrics(py, &d, &fold.metrics)?;
        per_fold.append(d)?;
    }
    out.set_item("per_fold", per_fold)?;
    Ok(out)
}

/// `refit`: `True` or `False`.
fn refit_arg(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    args::flag(obj, "refit")
}
