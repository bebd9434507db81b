//! `spe._spe._fit` and `_FittedModel`: the compiled core of `spe.Model.fit`
//! and `spe.FittedModel` (the time index is handled in `spe._model`).
//!
//! A fitted model keeps the history it was fitted on (after the
//! missing-value rule), so it pickles as that history and refits when
//! unpickled: the models are deterministic, so the copy forecasts exactly
//! as the original.

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use spe_core::{
    DEFAULT_MAX_GAP, Exog, FittedSummary, ForecastError, fill_nan_gaps, validate_horizon,
};

use crate::args;
use crate::arrays::{self, readonly};
use crate::errors::Error;
use crate::forecast::{self, Fitted, Forecast, ModelName, Spec, model_arg};

/// A model fitted on a history (the compiled core of ``spe.FittedModel``;
/// use that).
#[pyclass(module = "spe._spe", name = "_FittedModel", frozen)]
pub struct FittedModel {
    name: ModelName,
    box_cox: Option<f64>,
    periods: Vec<usize>,
    /// The history fitted on, gaps filled (what a pickle refits on).
    y: Vec<f64>,
    exog: Option<Exog>,
    fitted: Fitted,
    summary: FittedSummary,
}

/// What `_FittedModel.__reduce__` answers: `_fit` and its arguments.
type Reduced<'py> = (
    Bound<'py, PyAny>,
    (
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyTuple>,
        &'static str,
        Option<Bound<'py, PyDict>>,
        Option<f64>,
    ),
);

/// ``model``, ``season_length`` and ``box_cox`` checked: the model's
/// canonical name, the periods (sorted, 1 dropped) and λ, as ``spe.Model``
/// keeps them.
#[pyfunction]
#[pyo3(signature = (model, season_length, box_cox = None))]
pub fn _model_spec(
    #[pyo3(from_py_with = model_arg)] model: ModelName,
    #[pyo3(from_py_with = args::season_length)] season_length: Vec<usize>,
    #[pyo3(from_py_with = args::box_cox)] box_cox: Option<f64>,
) -> (&'static str, Vec<usize>, Option<f64>) {
    (model.name(), season_length, box_cox)
}

/// Fit ``model`` on ``y`` (the compiled core of ``spe.Model.fit``; use that).
#[pyfunction]
#[pyo3(signature = (y, season_length, model = ModelName::Auto, exog = None, box_cox = None))]
#[pyo3(text_signature = "(y, season_length, model='auto', exog=None, box_cox=None)")]
pub fn _fit(
    py: Python<'_>,
    y: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = args::season_length)] season_length: Vec<usize>,
    #[pyo3(from_py_with = model_arg)] model: ModelName,
    exog: Option<&Bound<'_, PyAny>>,
    #[pyo3(from_py_with = args::box_cox)] box_cox: Option<f64>,
) -> PyResult<FittedModel> {
    let exog = exog.filter(|e| !e.is_none());
    if exog.is_some() && !model.accepts_exog() {
        return Err(Error::config(
            "exog is used only by model=\"regression\" and model=\"auto\": drop it, or choose \
             one of those",
        )
        .into());
    }
    if exog.is_none() && model.needs_exog() {
        return Err(Error::forecast(
            "",
            ForecastError::MissingRegressors(
                "exog (the regressors over the history) is missing".into(),
            ),
        )
        .into());
    }
    let values = arrays::float_vector(y, "y")?;
    let exog = exog.map(|e| arrays::exog(e, "exog")).transpose()?;
    let (y, fitted) = py
        .detach(|| -> Result<_, ForecastError> {
            let y = fill_nan_gaps(&values, DEFAULT_MAX_GAP)?;
            let fitted = forecast::fit(model, box_cox, &season_length, &y, exog.as_ref())?;
            Ok((y, fitted))
        })
        .map_err(Error::from)?;
    let mut summary = fitted.model.summary();
    if summary.model.is_empty() {
        summary.model = forecast::dyn_model(model, box_cox)
            .map_err(Error::from)?
            .name();
    }
    Ok(FittedModel {
        name: model,
        box_cox,
        periods: season_length,
        y,
        exog,
        fitted,
        summary,
    })
}

#[pymethods]
impl FittedModel {
    /// The fitted model, named as its forecasts are (``"auto(mstl)"``,
    /// ``"ets(A,Ad,A)"``).
    #[getter]
    fn model(&self) -> &str {
        &self.summary.model
    }

    /// The parameters by name (floats).
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, value) in &self.summary.params {
            d.set_item(name, value)?;
        }
        Ok(d)
    }

    /// The components by name (read-only arrays, one value per observation).
    #[getter]
    fn components<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, values) in &self.summary.components {
            d.set_item(name, readonly(py, values.clone())?)?;
        }
        Ok(d)
    }

    /// In-sample one-step residuals (read-only array).
    #[getter]
    fn residuals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        readonly(py, self.fitted.model.residuals().to_vec())
    }

    /// ``auto``'s candidate scores, else ``None``.
    #[getter]
    fn scores<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        self.fitted
            .scores
            .as_deref()
            .map(|s| forecast::scores_list(py, s))
            .transpose()
    }

    /// Observations fitted.
    #[getter]
    fn n_obs(&self) -> usize {
        self.y.len()
    }

    /// The seasonal periods asked for (sorted, 1 dropped).
    #[getter]
    fn season_length<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.periods)
    }

    /// The Box–Cox λ the model was fitted under, or ``None``.
    #[getter]
    fn box_cox(&self) -> Option<f64> {
        self.box_cox
    }

    /// Whether the model was fitted with regressors (so ``predict`` needs
    /// ``exog_future``).
    #[getter]
    fn uses_exog(&self) -> bool {
        self.exog.is_some()
    }

    /// Forecast ``horizon`` steps past the history (the compiled core of
    /// ``spe.FittedModel.predict``).
    #[pyo3(signature = (horizon, levels = None, exog_future = None))]
    fn predict(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::horizon)] horizon: usize,
        levels: Option<&Bound<'_, PyAny>>,
        exog_future: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Forecast> {
        let spec = Spec {
            model: self.name,
            horizon,
            periods: self.periods.clone(),
            levels: forecast::levels_or_default(levels)?,
            box_cox: self.box_cox,
        };
        validate_horizon(horizon).map_err(Error::from)?;
        let future = match (exog_future.filter(|e| !e.is_none()), &self.exog) {
            (Some(f), Some(_)) => Some(arrays::exog(f, "exog_future")?),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::config(
                    "this model was fitted without exog, so exog_future has no use: drop it, or \
                     fit with exog= to use regressors",
                )
                .into());
            }
            (None, Some(_)) => {
                return Err(Error::forecast(
                    "",
                    ForecastError::MissingRegressors(
                        "exog_future (the regressors over the horizon) is missing: the model \
                         was fitted with exog"
                            .into(),
                    ),
                )
                .into());
            }
        };
        let outcome = py
            .detach(|| self.fitted.predict(&spec, future.as_ref()))
            .map_err(Error::from)?;
        Forecast::from_outcome(py, outcome)
    }

    /// Pickle (and copy) support: refitted by ``_fit`` on the same history,
    /// which gives the same model.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Reduced<'py>> {
        let exog = match &self.exog {
            Some(exog) => {
                let d = PyDict::new(py);
                for name in exog.names() {
                    if let Some(column) = exog.column(name) {
                        d.set_item(name, readonly(py, column.to_vec())?)?;
                    }
                }
                Some(d)
            }
            None => None,
        };
        Ok((
            py.import("spe._spe")?.getattr("_fit")?,
            (
                readonly(py, self.y.clone())?,
                PyTuple::new(py, &self.periods)?,
                self.name.name(),
                exog,
                self.box_cox,
            ),
        ))
    }

    fn __repr__(&self) -> String {
        let periods: Vec<String> = self.periods.iter().map(ToString::to_string).collect();
        let tuple = match periods.len() {
            1 => format!("({},)", periods[0]),
            _ => format!("({})", periods.join(", ")),
        };
        format!(
            "_FittedModel(model='{}', n_obs={}, season_length={tuple})",
            self.summary.model,
            self.y.len()
        )
    }
}
