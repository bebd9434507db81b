//! The unfitted/fitted split: a model configuration is fitted on history
//! ([`Fit`]) and gives a fitted model that forecasts ([`Predict`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ForecastError;
use super::error::check_finite;

/// Exogenous regressors: named columns of equal length, one row per time step.
///
/// Deserialising goes through [`Exog::new`], so a document that breaks its
/// rules (columns of different lengths, a non-finite value, a name given
/// twice) is an error, not a value that fails later.
///
/// ```
/// use spe_core::Exog;
///
/// let ok: Exog = serde_json::from_str(r#"{"names":["t"],"columns":[[1,2]]}"#).unwrap();
/// assert_eq!(ok.len(), 2);
/// let short = r#"{"names":["t","hour"],"columns":[[1,2],[0]]}"#;
/// assert!(serde_json::from_str::<Exog>(short).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ExogDocument")]
pub struct Exog {
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
}

/// [`Exog`] as serialised, before its checks.
#[derive(Deserialize)]
struct ExogDocument {
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
}

impl TryFrom<ExogDocument> for Exog {
    type Error = ForecastError;

    fn try_from(doc: ExogDocument) -> Result<Self, Self::Error> {
        if doc.names.len() != doc.columns.len() {
            return Err(ForecastError::invalid(format!(
                "{} regressor names for {} columns",
                doc.names.len(),
                doc.columns.len()
            )));
        }
        Exog::new(doc.names.into_iter().zip(doc.columns).collect())
    }
}

impl Exog {
    /// Columns by name; all the same length and finite.
    pub fn new(columns: Vec<(String, Vec<f64>)>) -> Result<Self, ForecastError> {
        let len = columns.first().map_or(0, |(_, c)| c.len());
        let mut names = Vec::with_capacity(columns.len());
        let mut cols = Vec::with_capacity(columns.len());
        for (name, col) in columns {
            if col.len() != len {
                return Err(ForecastError::invalid(format!(
                    "regressor {name:?} has {} rows, expected {len}",
                    col.len()
                )));
            }
            check_finite(&col)?;
            if names.contains(&name) {
                return Err(ForecastError::invalid(format!(
                    "regressor {name:?} given twice"
                )));
            }
            names.push(name);
            cols.push(col);
        }
        Ok(Exog {
            names,
            columns: cols,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.columns[i].as_slice())
    }

    /// The column names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The rows `range` of every column, as a new `Exog` (what a backtest
    /// fold fits on, or forecasts with). Errors: a range past the last row
    /// or reversed.
    ///
    /// ```
    /// use spe_core::Exog;
    ///
    /// let exog = Exog::new(vec![("t".into(), vec![1.0, 2.0, 3.0, 4.0])]).unwrap();
    /// let tail = exog.rows(2..4).unwrap();
    /// assert_eq!(tail.column("t"), Some(&[3.0, 4.0][..]));
    /// assert!(exog.rows(3..5).is_err());
    /// ```
    pub fn rows(&self, range: std::ops::Range<usize>) -> Result<Exog, ForecastError> {
        if range.start > range.end || range.end > self.len() {
            return Err(ForecastError::invalid(format!(
                "rows {}..{} of regressors with {} rows",
                range.start,
                range.end,
                self.len()
            )));
        }
        Ok(Exog {
            names: self.names.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| c[range.clone()].to_vec())
                .collect(),
        })
    }
}

/// What a model is fitted on: the observations (finite, equally spaced,
/// oldest first — see [`fill_gaps`](super::fill_gaps) for missing values),
/// the seasonal periods, and optional regressors aligned with them.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// The observations.
    pub y: &'a [f64],
    /// Seasonal periods in steps (e.g. `[24, 168]` for hourly data), shortest first.
    pub periods: &'a [usize],
    /// Regressors, one row per observation.
    pub exog: Option<&'a Exog>,
}

impl<'a> History<'a> {
    /// A history of plain observations with seasonal periods.
    pub fn new(y: &'a [f64], periods: &'a [usize]) -> Self {
        History {
            y,
            periods,
            exog: None,
        }
    }

    /// Check the observations are finite and within ±[`MAX_OBSERVATION`],
    /// and the periods sensible.
    ///
    /// # Errors
    ///
    /// [`ForecastError::NonFinite`] for a NaN or infinite observation;
    /// [`ForecastError::InvalidArgument`] for an observation beyond
    /// ±[`MAX_OBSERVATION`] (models add and difference observations, which
    /// would overflow `f64`: rescale the series), a period under 2 or
    /// regressors of another length.
    ///
    /// ```
    /// use spe_core::{ForecastError, History};
    ///
    /// assert!(History::new(&[1.0, 2.0], &[]).validate().is_ok());
    /// let wide = [f64::MAX, -f64::MAX];
    /// assert!(matches!(History::new(&wide, &[]).validate(), Err(ForecastError::InvalidArgument(_))));
    /// ```
    pub fn validate(&self) -> Result<(), ForecastError> {
        check_finite(self.y)?;
        if let Some((i, v)) = beyond_max_observation(self.y) {
            return Err(ForecastError::invalid(format!(
                "observation {i} is {v:e}, beyond ±{MAX_OBSERVATION:e}: models could not add or difference such values without overflowing f64; rescale the series"
            )));
        }
        if let Some(p) = self.periods.iter().find(|p| **p < 2) {
            return Err(ForecastError::invalid(format!(
                "seasonal period {p} is less than 2"
            )));
        }
        if let Some(exog) = self.exog {
            if exog.len() != self.y.len() {
                return Err(ForecastError::invalid(format!(
                    "regressors have {} rows for {} observations",
                    exog.len(),
                    self.y.len()
                )));
            }
        }
        Ok(())
    }
}

/// The largest magnitude of an observation a model takes (1e306): far
/// beyond any real quantity, and a hundredfold below `f64::MAX`, the
/// headroom the models' sums and differences need.
pub const MAX_OBSERVATION: f64 = 1e306;

/// The first value of `y` beyond ±[`MAX_OBSERVATION`], as `(index, value)`:
/// the one magnitude check of the models' inputs.
pub(crate) fn beyond_max_observation(y: &[f64]) -> Option<(usize, f64)> {
    y.iter()
        .copied()
        .enumerate()
        .find(|(_, v)| v.abs() > MAX_OBSERVATION)
}

/// A prediction interval at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionInterval {
    /// Nominal coverage in percent (e.g. 80, 95).
    pub level: f64,
    /// Lower bounds, one per step.
    pub lower: Vec<f64>,
    /// Upper bounds, one per step.
    pub upper: Vec<f64>,
}

/// A forecast: the mean path, prediction intervals, and the model that made it.
///
/// ```
/// use spe_core::{Forecast, PredictionInterval};
///
/// let f = Forecast::new(
///     "seasonal_naive",
///     vec![10.0, 12.0],
///     vec![PredictionInterval { level: 80.0, lower: vec![8.0, 9.0], upper: vec![12.0, 15.0] }],
/// ).unwrap();
/// assert_eq!(f.horizon(), 2);
/// assert_eq!(f.lower(80.0), Some(&[8.0, 9.0][..]));
/// assert_eq!(f.upper(95.0), None);
/// assert!(Forecast::new("bad", vec![f64::NAN], vec![]).is_err());
///
/// // Deserialising checks the same rules.
/// let short = r#"{"model":"m","mean":[1,2],"intervals":[{"level":80,"lower":[0],"upper":[3]}]}"#;
/// assert!(serde_json::from_str::<Forecast>(short).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ForecastDocument")]
pub struct Forecast {
    model: String,
    mean: Vec<f64>,
    intervals: Vec<PredictionInterval>,
}

/// [`Forecast`] as serialised, before its checks.
#[derive(Deserialize)]
struct ForecastDocument {
    model: String,
    mean: Vec<f64>,
    intervals: Vec<PredictionInterval>,
}

impl TryFrom<ForecastDocument> for Forecast {
    type Error = ForecastError;

    fn try_from(doc: ForecastDocument) -> Result<Self, Self::Error> {
        Forecast::new(doc.model, doc.mean, doc.intervals)
    }
}

/// The longest horizon any model forecasts: ten years of hourly steps. A
/// larger request is an error, not an attempt to allocate it.
pub const MAX_HORIZON: usize = 87_600;

/// Check a horizon: at least 1 and at most [`MAX_HORIZON`].
///
/// ```
/// use spe_core::validate_horizon;
/// assert!(validate_horizon(48).is_ok());
/// assert!(validate_horizon(0).is_err());
/// assert!(validate_horizon(usize::MAX).is_err());
/// ```
pub fn validate_horizon(horizon: usize) -> Result<(), ForecastError> {
    if horizon == 0 {
        return Err(ForecastError::invalid("horizon 0: nothing to forecast"));
    }
    if horizon > MAX_HORIZON {
        return Err(ForecastError::invalid(format!(
            "horizon {horizon} is more than the {MAX_HORIZON} steps a model forecasts"
        )));
    }
    Ok(())
}

/// How close two levels may be and still be told apart: [`Forecast::lower`]
/// and [`Forecast::upper`] find a level within this.
const LEVEL_TOLERANCE: f64 = 1e-9;

/// Check interval levels: each in (0, 100), no duplicate (nor two levels
/// closer than 1e-9, which a lookup could not tell apart).
///
/// ```
/// use spe_core::validate_levels;
/// assert!(validate_levels(&[80.0, 95.0]).is_ok());
/// assert!(validate_levels(&[80.0, 80.0]).is_err());
/// assert!(validate_levels(&[80.0, 80.0 + 1e-12]).is_err());
/// assert!(validate_levels(&[100.0]).is_err());
/// ```
pub fn validate_levels(levels: &[f64]) -> Result<(), ForecastError> {
    for (i, l) in levels.iter().enumerate() {
        if !(l.is_finite() && *l > 0.0 && *l < 100.0) {
            return Err(ForecastError::invalid(format!(
                "interval level {l} is outside (0, 100)"
            )));
        }
        if levels[..i].iter().any(|m| (m - l).abs() < LEVEL_TOLERANCE) {
            return Err(ForecastError::invalid(format!(
                "interval level {l} given twice"
            )));
        }
    }
    Ok(())
}

impl Forecast {
    /// A validated forecast: finite values, intervals as long as the mean and
    /// containing it, levels in (0, 100), and nested: at every step the
    /// interval of a higher level holds that of a lower one (the 95 % band
    /// contains the 80 % band). Containment and nesting allow a relative
    /// rounding slack of 1e-9.
    ///
    /// ```
    /// use spe_core::{Forecast, PredictionInterval};
    ///
    /// let band = |level, lower: f64, upper: f64| PredictionInterval {
    ///     level, lower: vec![lower], upper: vec![upper],
    /// };
    /// assert!(Forecast::new("m", vec![1.0], vec![band(80.0, 0.5, 1.5), band(95.0, 0.0, 2.0)]).is_ok());
    /// let crossed = Forecast::new("m", vec![1.0], vec![band(80.0, 0.0, 2.0), band(95.0, 0.5, 1.5)]);
    /// assert!(crossed.unwrap_err().to_string().contains("not within the 95 % interval"));
    /// let nan = Forecast::new("m", vec![f64::NAN], vec![]);
    /// assert!(nan.unwrap_err().to_string().contains("mean[0] is NaN"));
    /// ```
    pub fn new(
        model: impl Into<String>,
        mean: Vec<f64>,
        intervals: Vec<PredictionInterval>,
    ) -> Result<Self, ForecastError> {
        if let Some((i, m)) = mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(ForecastError::invalid(format!(
                "mean[{i}] is {m}, not a finite number"
            )));
        }
        let levels: Vec<f64> = intervals.iter().map(|i| i.level).collect();
        validate_levels(&levels)?;
        let slack = |m: f64| 1e-9 * m.abs().max(1.0);
        for pi in &intervals {
            if pi.lower.len() != mean.len() || pi.upper.len() != mean.len() {
                return Err(ForecastError::invalid(format!(
                    "the {} % interval does not have {} steps",
                    pi.level,
                    mean.len()
                )));
            }
            for (i, m) in mean.iter().enumerate() {
                let (lo, hi) = (pi.lower[i], pi.upper[i]);
                for (side, bound) in [("lower", lo), ("upper", hi)] {
                    if !bound.is_finite() {
                        return Err(ForecastError::invalid(format!(
                            "the {} % interval's {side} bound at step {i} is {bound}, not a finite number",
                            pi.level
                        )));
                    }
                }
                if !(lo <= *m + slack(*m) && *m <= hi + slack(*m)) {
                    return Err(ForecastError::invalid(format!(
                        "the {} % interval [{lo}, {hi}] at step {i} does not contain the mean {m}",
                        pi.level
                    )));
                }
            }
        }
        let mut by_level: Vec<&PredictionInterval> = intervals.iter().collect();
        by_level.sort_by(|a, b| a.level.total_cmp(&b.level));
        for pair in by_level.windows(2) {
            let (narrow, wide) = (pair[0], pair[1]);
            for (i, m) in mean.iter().enumerate() {
                let (nl, nu, wl, wu) = (
                    narrow.lower[i],
                    narrow.upper[i],
                    wide.lower[i],
                    wide.upper[i],
                );
                if wl > nl + slack(*m) || wu < nu - slack(*m) {
                    return Err(ForecastError::invalid(format!(
                        "the {} % interval [{nl}, {nu}] at step {i} is not within the {} % interval \
                         [{wl}, {wu}]: a higher level's interval must hold a lower level's",
                        narrow.level, wide.level
                    )));
                }
            }
        }
        Ok(Forecast {
            model: model.into(),
            mean,
            intervals,
        })
    }

    /// The model's name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The mean path.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Number of steps.
    pub fn horizon(&self) -> usize {
        self.mean.len()
    }

    /// The intervals.
    pub fn intervals(&self) -> &[PredictionInterval] {
        &self.intervals
    }

    /// Lower bounds at `level`, if computed.
    pub fn lower(&self, level: f64) -> Option<&[f64]> {
        self.interval(level).map(|i| i.lower.as_slice())
    }

    /// Upper bounds at `level`, if computed.
    pub fn upper(&self, level: f64) -> Option<&[f64]> {
        self.interval(level).map(|i| i.upper.as_slice())
    }

    fn interval(&self, level: f64) -> Option<&PredictionInterval> {
        self.intervals
            .iter()
            .find(|i| (i.level - level).abs() < LEVEL_TOLERANCE)
    }

    /// The same forecast under another model name (e.g. `auto(ets)`).
    pub fn renamed(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }
}

/// A model configuration that can be fitted.
pub trait Fit: Send + Sync + fmt::Debug {
    /// The fitted model.
    type Fitted: Predict + 'static;

    /// The model's name (`seasonal_naive`, `ets`, `mstl`, …).
    fn name(&self) -> String;

    /// Fit on `history`.
    fn fit(&self, history: &History<'_>) -> Result<Self::Fitted, ForecastError>;
}

/// A fitted model that forecasts.
pub trait Predict: Send + Sync + fmt::Debug {
    /// Forecast `horizon` steps past the end of the history, with intervals
    /// at `levels` (percent). `future` holds the regressors for the horizon,
    /// for models that use them.
    fn predict(
        &self,
        horizon: usize,
        levels: &[f64],
        future: Option<&Exog>,
    ) -> Result<Forecast, ForecastError>;

    /// In-sample one-step-ahead residuals (observed − fitted), where defined;
    /// used for conformal intervals and diagnostics.
    fn residuals(&self) -> &[f64];

    /// What the model learned, for inspection: its name, parameters and
    /// components ([`FittedSummary`]). Empty unless the model says.
    fn summary(&self) -> FittedSummary {
        FittedSummary::default()
    }
}

/// What a fitted model learned, for inspection ([`Predict::summary`]): the
/// name its forecasts carry, its parameters, and the series it split the
/// history into.
///
/// ```
/// use spe_core::{Fit, History, Mstl, Predict};
///
/// // Ten days: two weekly cycles do not fit, so only the daily one is used.
/// let y: Vec<f64> = (0..24 * 10).map(|t| (t % 24) as f64 + 0.01 * t as f64).collect();
/// let summary = Mstl::default().fit(&History::new(&y, &[24, 168])).unwrap().summary();
/// assert!(summary.model.starts_with("mstl(24)+ets("));
/// assert!(summary.param("ets_alpha").is_some());
/// assert_eq!(summary.component("seasonal_24").unwrap().len(), y.len());
/// assert_eq!(summary.component("adjusted").unwrap().len(), y.len());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct FittedSummary {
    /// The fitted model, named as its forecasts are (`ets(A,Ad,A)`,
    /// `mstl(24,168)+ets(A,N,N)`, `auto(mstl)`); empty if the model does
    /// not say.
    pub model: String,
    /// Its parameters by name, in a stable order (`alpha`, `heating_base_c`,
    /// …): finite numbers (a count or a period as a float). A figure that
    /// overflows `f64` (the variance of a series near `1e200`) is left out.
    pub params: Vec<(String, f64)>,
    /// The series it split the history into, by name, each one value per
    /// observation (MSTL: `seasonal_<period>` for each period, then
    /// `adjusted`, the trend plus remainder).
    pub components: Vec<(String, Vec<f64>)>,
}

impl FittedSummary {
    /// A summary naming the model, with no parameters or components yet.
    pub fn new(model: impl Into<String>) -> Self {
        FittedSummary {
            model: model.into(),
            ..FittedSummary::default()
        }
    }

    /// The parameter `name`, if the model has it.
    pub fn param(&self, name: &str) -> Option<f64> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// The component `name`, if the model has it.
    pub fn component(&self, name: &str) -> Option<&[f64]> {
        self.components
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Add a parameter (builder style); a value that is not finite is left
    /// out.
    ///
    /// ```
    /// let s = spe_core::FittedSummary::new("m").with_param("a", 1.0).with_param("b", f64::INFINITY);
    /// assert_eq!((s.param("a"), s.param("b")), (Some(1.0), None));
    /// ```
    pub fn with_param(mut self, name: impl Into<String>, value: f64) -> Self {
        if value.is_finite() {
            self.params.push((name.into(), value));
        }
        self
    }
}

/// An object-safe [`Fit`]: lets `auto` and backtests hold different models.
pub trait DynFit: Send + Sync + fmt::Debug {
    /// The model's name.
    fn name(&self) -> String;
    /// Fit on `history`, boxing the fitted model.
    fn fit_dyn(&self, history: &History<'_>) -> Result<Box<dyn Predict>, ForecastError>;
}

/// A boxed fitted model forecasts as the model in the box, so a model
/// chosen at run time ([`DynFit::fit_dyn`]) can be the inner model of an
/// adapter such as [`BoxCox`](super::BoxCox).
///
/// ```
/// use spe_core::{DynFit, History, Naive, Predict};
///
/// let boxed: Box<dyn Predict> = Naive.fit_dyn(&History::new(&[1.0, 3.0], &[]))?;
/// fn last<P: Predict>(p: &P) -> f64 { p.predict(1, &[], None).unwrap().mean()[0] }
/// assert_eq!(last(&boxed), 3.0);
/// assert_eq!(boxed.summary().param("period"), Some(1.0));
/// # Ok::<(), spe_core::ForecastError>(())
/// ```
impl<P: Predict + ?Sized> Predict for Box<P> {
    fn predict(
        &self,
        horizon: usize,
        levels: &[f64],
        future: Option<&Exog>,
    ) -> Result<Forecast, ForecastError> {
        (**self).predict(horizon, levels, future)
    }

    fn residuals(&self) -> &[f64] {
        (**self).residuals()
    }

    fn summary(&self) -> FittedSummary {
        (**self).summary()
    }
}

impl<T: Fit> DynFit for T {
    fn name(&self) -> String {
        Fit::name(self)
    }

    fn fit_dyn(&self, history: &History<'_>) -> Result<Box<dyn Predict>, ForecastError> {
        Ok(Box::new(self.fit(history)?))
    }
}
