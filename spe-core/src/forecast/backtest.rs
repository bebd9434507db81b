//! Rolling-origin backtests: see [`backtest`] for the folds and scores.

use serde::{Deserialize, Serialize};

use super::metrics::{self, running_mean};
use super::{
    DynFit, Exog, Forecast, ForecastError, History, MAX_HORIZON, PredictionInterval,
    conformal_intervals, validate_horizon, validate_levels,
};

/// How a backtest cuts the series.
///
/// ```
/// use spe_core::BacktestConfig;
///
/// let config = BacktestConfig::new(24, 3).with_step(12).with_levels([80.0]);
/// assert_eq!((config.horizon, config.folds, config.step), (24, 3, 12));
/// assert!(config.refit);
/// // Origins for 200 observations: 200 − 24 − 2·12, … , 200 − 24.
/// assert_eq!(config.origins(200).unwrap(), vec![152, 164, 176]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BacktestConfig {
    /// Steps forecast at each origin (at least 1).
    pub horizon: usize,
    /// Number of origins (at least 1).
    pub folds: usize,
    /// Steps between consecutive origins (at least 1; [`new`](Self::new) sets the horizon).
    pub step: usize,
    /// Refit at each origin (`true`, the default) or fit once at the first
    /// origin (see [`backtest`]).
    pub refit: bool,
    /// Interval levels in percent (default 80 and 95).
    pub levels: Vec<f64>,
    /// The MASE seasonal period; `None` (the default) uses the shortest of
    /// the series' periods, or 1 without periods (the M4 convention: 24 for
    /// hourly data with periods 24 and 168).
    pub mase_period: Option<usize>,
}

impl BacktestConfig {
    /// `folds` origins `horizon` steps apart (non-overlapping windows), with
    /// refit, 80 % and 95 % intervals, and the default MASE period.
    ///
    /// ```
    /// use spe_core::BacktestConfig;
    ///
    /// let config = BacktestConfig::new(48, 8);
    /// assert_eq!(config.step, 48);
    /// assert_eq!(config.levels, vec![80.0, 95.0]);
    /// ```
    pub fn new(horizon: usize, folds: usize) -> Self {
        BacktestConfig {
            horizon,
            folds,
            step: horizon,
            refit: true,
            levels: vec![80.0, 95.0],
            mase_period: None,
        }
    }

    /// The same configuration with `step` steps between origins.
    ///
    /// ```
    /// use spe_core::BacktestConfig;
    ///
    /// assert_eq!(BacktestConfig::new(48, 8).with_step(24).step, 24);
    /// ```
    pub fn with_step(mut self, step: usize) -> Self {
        self.step = step;
        self
    }

    /// The same configuration, refitting at each origin or not.
    ///
    /// ```
    /// use spe_core::BacktestConfig;
    ///
    /// assert!(!BacktestConfig::new(48, 8).with_refit(false).refit);
    /// ```
    pub fn with_refit(mut self, refit: bool) -> Self {
        self.refit = refit;
        self
    }

    /// The same configuration with other interval levels (percent).
    ///
    /// ```
    /// use spe_core::BacktestConfig;
    ///
    /// assert_eq!(BacktestConfig::new(48, 8).with_levels([90.0]).levels, vec![90.0]);
    /// ```
    pub fn with_levels(mut self, levels: impl Into<Vec<f64>>) -> Self {
        self.levels = levels.into();
        self
    }

    /// The same configuration with MASE scaled by the seasonal naive of `period`.
    ///
    /// ```
    /// use spe_core::BacktestConfig;
    ///
    /// assert_eq!(BacktestConfig::new(48, 8).with_mase_period(168).mase_period, Some(168));
    /// ```
    pub fn with_mase_period(mut self, period: usize) -> Self {
        self.mase_period = Some(period);
        self
    }

    /// Check the configuration: horizon, folds, step and a given MASE period
    /// at least 1, valid levels, and forecasts no model refuses as too long:
    /// the horizon, and without refit the one forecast of `horizon +
    /// (folds − 1)·step` steps, at most [`MAX_HORIZON`].
    ///
    /// ```
    /// use spe_core::BacktestConfig;
    ///
    /// assert!(BacktestConfig::new(24, 3).validate().is_ok());
    /// assert!(BacktestConfig::new(0, 3).validate().is_err());
    /// assert!(BacktestConfig::new(24, 3).with_levels([100.0]).validate().is_err());
    /// // Without refit, 4000 folds a day apart are one forecast of 96 000 steps.
    /// let long = BacktestConfig::new(24, 4000).with_refit(false);
    /// assert!(long.validate().unwrap_err().to_string().contains("without refit"));
    /// assert!(long.with_refit(true).validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), ForecastError> {
        for (what, value) in [
            ("horizon", self.horizon),
            ("folds", self.folds),
            ("step", self.step),
            ("MASE period", self.mase_period.unwrap_or(1)),
        ] {
            if value == 0 {
                return Err(ForecastError::invalid(format!("backtest {what} 0")));
            }
        }
        validate_horizon(self.horizon)?;
        if !self.refit {
            match self.span() {
                Some(span) if span <= MAX_HORIZON => {}
                span => {
                    return Err(ForecastError::invalid(format!(
                        "without refit, the backtest forecasts horizon + (folds − 1)·step = {} \
                         steps in one go, more than the {MAX_HORIZON} a model forecasts: \
                         use fewer folds, a shorter step, or refit",
                        span.map_or_else(|| "more than usize::MAX".into(), |s| s.to_string())
                    )));
                }
            }
        }
        validate_levels(&self.levels)
    }

    /// Steps from the first origin to the end: `horizon + (folds − 1)·step`
    /// (`None` on overflow).
    fn span(&self) -> Option<usize> {
        self.folds
            .checked_sub(1)?
            .checked_mul(self.step)?
            .checked_add(self.horizon)
    }

    fn label(&self, model: &str) -> String {
        format!(
            "{model} backtest ({} folds, horizon {}, step {})",
            self.folds, self.horizon, self.step
        )
    }

    /// The fold origins for a series of `n` observations, oldest first:
    /// `n − horizon − (folds − 1 − k)·step`. Errors: an invalid
    /// configuration, or `n` below `horizon + (folds − 1)·step + 1` (the first
    /// fold needs one training observation; the model may need more).
    ///
    /// ```
    /// use spe_core::BacktestConfig;
    ///
    /// assert_eq!(BacktestConfig::new(10, 3).with_step(5).origins(100).unwrap(), vec![80, 85, 90]);
    /// assert!(BacktestConfig::new(10, 3).origins(30).is_err());
    /// ```
    pub fn origins(&self, n: usize) -> Result<Vec<usize>, ForecastError> {
        self.origins_for("a", n)
    }

    fn origins_for(&self, model: &str, n: usize) -> Result<Vec<usize>, ForecastError> {
        self.validate()?;
        let too_short = |needed| ForecastError::TooShort {
            model: self.label(model),
            needed,
            got: n,
        };
        let span = self.span().ok_or_else(|| too_short(usize::MAX))?;
        if n <= span {
            return Err(too_short(span.saturating_add(1)));
        }
        let first = n - span;
        Ok((0..self.folds).map(|k| first + k * self.step).collect())
    }
}

/// Interval coverage at one level.
///
/// ```
/// use spe_core::{BacktestConfig, SeasonalNaive, backtest};
///
/// let y: Vec<f64> = (0..60).map(|t| (t % 4) as f64 + 0.1 * (t % 7) as f64).collect();
/// let report = backtest(&SeasonalNaive::new(), &y, &[4], &BacktestConfig::new(4, 3)).unwrap();
/// let c = &report.overall.coverage[0];
/// assert_eq!(c.level, 80.0);
/// assert!((0.0..=1.0).contains(&c.coverage));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IntervalCoverage {
    /// Nominal level in percent.
    pub level: f64,
    /// Fraction of actuals inside the interval (0 to 1).
    pub coverage: f64,
    /// Mean interval width (`None` if it overflows `f64`).
    pub mean_width: Option<f64>,
}

/// Accuracy scores of a set of forecasts (see [`metrics`](super::mape) for
/// the definitions; `None` where a score is undefined).
///
/// ```
/// use spe_core::{BacktestConfig, SeasonalNaive, backtest};
///
/// let y: Vec<f64> = (0..60).map(|t| 10.0 + (t % 4) as f64).collect();
/// let report = backtest(&SeasonalNaive::new(), &y, &[4], &BacktestConfig::new(4, 3)).unwrap();
/// assert_eq!(report.overall.mape, Some(0.0));
/// assert_eq!(report.overall.mase, None); // zero in-sample scale: exactly periodic
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccuracyMetrics {
    /// Mean absolute percentage error, percent, over the non-zero actuals.
    pub mape: Option<f64>,
    /// Actuals equal to zero, left out of the MAPE.
    pub mape_skipped: usize,
    /// Symmetric MAPE, percent (0 to 200).
    pub smape: Option<f64>,
    /// Mean absolute scaled error (in-sample seasonal naive of
    /// [`BacktestReport::mase_period`] of each fold's training data).
    /// Pooled: the mean of the folds' scaled errors, over the folds whose
    /// scale is defined.
    pub mase: Option<f64>,
    /// Root mean squared error.
    pub rmse: Option<f64>,
    /// Mean absolute error.
    pub mae: Option<f64>,
    /// Mean of forecast − actual (positive: over-forecast).
    pub bias: Option<f64>,
    /// Coverage of each configured level, in the configuration's order.
    pub coverage: Vec<IntervalCoverage>,
}

/// One fold of a backtest.
///
/// ```
/// use spe_core::{BacktestConfig, Naive, backtest};
///
/// let y: Vec<f64> = (0..30).map(f64::from).collect();
/// let report = backtest(&Naive, &y, &[], &BacktestConfig::new(5, 2)).unwrap();
/// let fold = &report.folds[0];
/// assert_eq!(fold.origin, 20);
/// assert_eq!(fold.actual, vec![20.0, 21.0, 22.0, 23.0, 24.0]);
/// assert_eq!(fold.forecast.mean(), &[19.0; 5]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BacktestFold {
    /// Index of the first forecast observation (= training length with refit).
    pub origin: usize,
    /// The observations `y[origin .. origin + horizon]`.
    pub actual: Vec<f64>,
    /// The forecast of those observations.
    pub forecast: Forecast,
    /// Its scores.
    pub metrics: AccuracyMetrics,
}

/// The result of [`backtest`].
///
/// ```
/// use spe_core::{BacktestConfig, SeasonalNaive, backtest};
///
/// let y: Vec<f64> = (0..100).map(|t| (t % 5) as f64 + 0.01 * t as f64).collect();
/// let report = backtest(&SeasonalNaive::new(), &y, &[5], &BacktestConfig::new(5, 4)).unwrap();
/// assert_eq!(report.model, "seasonal_naive");
/// assert_eq!(report.folds.len(), 4);
/// assert_eq!(report.mae_per_step.len(), 5);
/// assert_eq!(report.errors_per_step[0].len(), 4); // one error per fold
/// assert!(report.overall.mase.unwrap() < 1.1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BacktestReport {
    /// The model's name.
    pub model: String,
    /// The configuration used.
    pub config: BacktestConfig,
    /// The seasonal period of the MASE scale.
    pub mase_period: usize,
    /// The folds, oldest origin first.
    pub folds: Vec<BacktestFold>,
    /// Scores pooled over all folds' forecasts.
    pub overall: AccuracyMetrics,
    /// Mean absolute error at each horizon step (index 0 = step 1), over the folds.
    pub mae_per_step: Vec<f64>,
    /// The errors `actual − forecast` at each horizon step, one per fold
    /// (`errors_per_step[h][k]`: step `h + 1` of fold `k`).
    pub errors_per_step: Vec<Vec<f64>>,
}

impl BacktestReport {
    /// Split-conformal intervals around `mean` (one value per horizon step)
    /// from this backtest's errors per step: see
    /// [`conformal_intervals`](super::conformal_intervals). Needs enough
    /// folds for the levels (19 for 95 %).
    ///
    /// ```
    /// use spe_core::{BacktestConfig, Fit, History, Predict, SeasonalNaive, backtest};
    ///
    /// let y: Vec<f64> = (0..200).map(|t| (t % 4) as f64 + ((t * 7919) % 13) as f64 / 13.0).collect();
    /// let config = BacktestConfig::new(4, 20).with_step(1);
    /// let report = backtest(&SeasonalNaive::new(), &y, &[4], &config).unwrap();
    /// let mean = SeasonalNaive::new().fit(&History::new(&y, &[4])).unwrap()
    ///     .predict(4, &[], None).unwrap().mean().to_vec();
    /// let pis = report.conformal_intervals(&mean, &[80.0, 95.0]).unwrap();
    /// assert_eq!(pis[1].level, 95.0);
    /// ```
    pub fn conformal_intervals(
        &self,
        mean: &[f64],
        levels: &[f64],
    ) -> Result<Vec<PredictionInterval>, ForecastError> {
        conformal_intervals(mean, &self.errors_per_step, levels)
    }

    /// The pooled coverage at `level`, if it was configured.
    ///
    /// ```
    /// use spe_core::{BacktestConfig, Naive, backtest};
    ///
    /// let y: Vec<f64> = (0..50).map(|t| ((t * 37) % 11) as f64).collect();
    /// let report = backtest(&Naive, &y, &[], &BacktestConfig::new(5, 3)).unwrap();
    /// assert!(report.coverage(95.0).is_some());
    /// assert!(report.coverage(50.0).is_none());
    /// ```
    pub fn coverage(&self, level: f64) -> Option<f64> {
        self.overall
            .coverage
            .iter()
            .find(|c| (c.level - level).abs() < 1e-9)
            .map(|c| c.coverage)
    }
}

/// A rolling-origin backtest of `model` on `y` (with seasonal `periods`).
///
/// With `folds` folds, forecast horizon `horizon` and `step` between
/// origins, the series is cut at the origins
///
/// ```text
/// origin_k = n − horizon − (folds − 1 − k)·step,   k = 0 … folds − 1
/// ```
///
/// so the last fold's window ends exactly at the last observation. Fold `k`
/// is fitted on `y[..origin_k]` and forecasts `y[origin_k .. origin_k + horizon]`.
///
/// With `refit: false` the model is fitted **once**, on the first fold's
/// training data `y[..origin_0]`, and forecasts `horizon + (folds − 1)·step`
/// steps in one go; fold `k` is scored on the slice of that long forecast
/// that covers its window (steps `k·step + 1 … k·step + horizon` after
/// `origin_0`). This measures a model that is never updated: later folds are
/// forecast from further away, and their "step 1" in the per-step figures is
/// really lead time `k·step + 1`. (The [`Predict`](super::Predict) trait
/// cannot update a fitted model's state with new observations, so there is no
/// "keep the parameters, refresh the state" variant.)
///
/// Scores ([`BacktestReport`]): per fold and pooled over all folds — MAPE,
/// sMAPE, MASE, RMSE, MAE, bias, interval coverage and mean width per level —
/// plus the MAE per horizon step and the raw errors per step, which feed
/// [`conformal_intervals`](super::conformal_intervals). The library measures
/// no time; time the call yourself.
///
/// The models see no regressors here (`History::exog` is `None`): a model
/// that needs them fails with its own error. [`backtest_with_exog`] passes
/// them.
///
/// Errors: an invalid configuration, a value beyond
/// ±[`MAX_OBSERVATION`](super::MAX_OBSERVATION) or a non-finite value
/// ([`ForecastError::InvalidArgument`], [`ForecastError::NonFinite`]); a
/// series too short for the folds ([`ForecastError::TooShort`], counting
/// what the model itself needs for its first fit); the model's own errors.
///
/// ```
/// use spe_core::{BacktestConfig, ForecastError, SeasonalNaive, backtest};
///
/// let y: Vec<f64> = (0..24 * 14).map(|t| ((t % 24) as f64 - 12.0).abs()).collect();
/// let report = backtest(&SeasonalNaive::new(), &y, &[24], &BacktestConfig::new(24, 3)).unwrap();
/// assert_eq!(report.overall.rmse, Some(0.0)); // pure daily shape: exact
///
/// // 3 folds of 24 steps plus the 25 observations the first fit needs.
/// match backtest(&SeasonalNaive::new(), &y[..90], &[24], &BacktestConfig::new(24, 3)) {
///     Err(ForecastError::TooShort { needed, got, .. }) => assert_eq!((needed, got), (97, 90)),
///     other => panic!("{other:?}"),
/// }
/// ```
pub fn backtest(
    model: &dyn DynFit,
    y: &[f64],
    periods: &[usize],
    config: &BacktestConfig,
) -> Result<BacktestReport, ForecastError> {
    backtest_with_exog(model, y, periods, None, config)
}

/// [`backtest`] with regressors: `exog` has one row per observation of `y`,
/// and each fold passes its slices to the model — the rows of the training
/// data in [`History::exog`] (`exog[..origin]`), and the rows of the window
/// it forecasts as the `future` regressors of
/// [`Predict::predict`](super::Predict::predict) (`exog[origin .. origin +
/// horizon]`; with `refit: false`, the rows from the first origin to the
/// end). In a real forecast the future regressors are themselves forecasts
/// (tomorrow's weather); here they are the values that were observed, so
/// the scores of a model that uses them are optimistic by the error of
/// those forecasts.
///
/// With `exog: None` this is exactly [`backtest`]. Errors: those of
/// [`backtest`], and regressors whose length is not the series'
/// ([`ForecastError::InvalidArgument`]).
///
/// ```
/// use spe_core::{BacktestConfig, Exog, WeatherRegression, backtest_with_exog};
///
/// // Five weeks of demand that rises by 30 MW per degree below 16 °C.
/// let n = 24 * 35;
/// let temperature: Vec<f64> = (0..n).map(|t| 8.0 + 6.0 * (t as f64 / 50.0).sin()).collect();
/// let y: Vec<f64> = temperature.iter().map(|t| 500.0 + 30.0 * (16.0 - t).max(0.0)).collect();
/// let exog = Exog::new(vec![
///     ("temperature_2m".into(), temperature),
///     ("hour".into(), (0..n).map(|t| (t % 24) as f64).collect()),
///     ("day_type".into(), vec![0.0; n]),
/// ])
/// .unwrap();
/// let model = WeatherRegression::with_bases(16.0, 22.0);
/// let report = backtest_with_exog(&model, &y, &[24], Some(&exog), &BacktestConfig::new(24, 3)).unwrap();
/// assert!(report.overall.rmse.unwrap() < 1e-6);
/// ```
pub fn backtest_with_exog(
    model: &dyn DynFit,
    y: &[f64],
    periods: &[usize],
    exog: Option<&Exog>,
    config: &BacktestConfig,
) -> Result<BacktestReport, ForecastError> {
    let name = model.name();
    let origins = config.origins_for(&name, y.len())?;
    History { y, periods, exog }.validate()?;
    let n = y.len();
    let horizon = config.horizon;
    let levels = config.levels.as_slice();
    let mase_period = config
        .mase_period
        .or_else(|| periods.iter().copied().min())
        .unwrap_or(1);
    // A model's TooShort at origin `o` means the whole backtest needs the
    // model's minimum plus the `n − o` observations after the origin.
    let rows = |range: std::ops::Range<usize>| exog.map(|x| x.rows(range)).transpose();
    let fit = |origin: usize| {
        let past = rows(0..origin)?;
        let history = History {
            y: &y[..origin],
            periods,
            exog: past.as_ref(),
        };
        model.fit_dyn(&history).map_err(|e| match e {
            ForecastError::TooShort { needed, .. } => ForecastError::TooShort {
                model: config.label(&name),
                needed: needed.saturating_add(n - origin),
                got: n,
            },
            other => other,
        })
    };

    let forecasts: Vec<Forecast> = if config.refit {
        origins
            .iter()
            .map(|&origin| {
                let future = rows(origin..origin + horizon)?;
                fit(origin)?.predict(horizon, levels, future.as_ref())
            })
            .collect::<Result<_, _>>()?
    } else {
        let first = origins[0];
        let future = rows(first..n)?;
        let long = fit(first)?.predict(n - first, levels, future.as_ref())?;
        check_forecast(&name, &long, n - first, levels)?;
        origins
            .iter()
            .map(|&origin| slice_forecast(&long, origin - first, horizon))
            .collect::<Result<_, _>>()?
    };

    let mut folds = Vec::with_capacity(config.folds);
    let mut errors_per_step = vec![Vec::with_capacity(config.folds); horizon];
    let mut scaled_errors = Vec::new();
    for (origin, forecast) in origins.into_iter().zip(forecasts) {
        check_forecast(&name, &forecast, horizon, levels)?;
        let actual = y[origin..origin + horizon].to_vec();
        for (j, (a, f)) in actual.iter().zip(forecast.mean()).enumerate() {
            let e = a - f;
            if !e.is_finite() {
                return Err(ForecastError::invalid(format!(
                    "{name}'s forecast error at index {} overflows f64",
                    origin + j
                )));
            }
            errors_per_step[j].push(e);
        }
        let scale = match metrics::mase_scale(&y[..origin], mase_period) {
            Ok(scale) => scale,
            Err(ForecastError::TooShort { .. }) => None,
            Err(e) => return Err(e),
        };
        if let Some(scale) = scale {
            scaled_errors.extend(
                actual
                    .iter()
                    .zip(forecast.mean())
                    .map(|(a, f)| (a - f).abs() / scale),
            );
        }
        let fold_metrics = score(
            &actual,
            &[&forecast],
            scale.map(|s| (s, actual.as_slice(), forecast.mean())),
            levels,
        )?;
        folds.push(BacktestFold {
            origin,
            actual,
            forecast,
            metrics: fold_metrics,
        });
    }

    let all_actual: Vec<f64> = folds.iter().flat_map(|f| f.actual.clone()).collect();
    let all_forecasts: Vec<&Forecast> = folds.iter().map(|f| &f.forecast).collect();
    let mut overall = score(&all_actual, &all_forecasts, None, levels)?;
    overall.mase = running_mean(scaled_errors.into_iter());
    let mae_per_step = errors_per_step
        .iter()
        // Finite errors, at least one fold: the running mean is defined.
        .map(|e| running_mean(e.iter().map(|x| x.abs())).unwrap_or(0.0))
        .collect();

    Ok(BacktestReport {
        model: name,
        config: config.clone(),
        mase_period,
        folds,
        overall,
        mae_per_step,
        errors_per_step,
    })
}

/// The forecast has `horizon` steps and every level.
fn check_forecast(
    model: &str,
    forecast: &Forecast,
    horizon: usize,
    levels: &[f64],
) -> Result<(), ForecastError> {
    let fail = |reason: String| ForecastError::FitFailed {
        model: model.into(),
        reason,
    };
    if forecast.horizon() != horizon {
        return Err(fail(format!(
            "asked for {horizon} steps, forecast {}",
            forecast.horizon()
        )));
    }
    if let Some(level) = levels.iter().find(|l| forecast.lower(**l).is_none()) {
        return Err(fail(format!("no {level} % interval in its forecast")));
    }
    Ok(())
}

/// Steps `offset .. offset + horizon` of a long forecast.
fn slice_forecast(
    long: &Forecast,
    offset: usize,
    horizon: usize,
) -> Result<Forecast, ForecastError> {
    let range = offset..offset + horizon;
    let intervals = long
        .intervals()
        .iter()
        .map(|pi| PredictionInterval {
            level: pi.level,
            lower: pi.lower[range.clone()].to_vec(),
            upper: pi.upper[range.clone()].to_vec(),
        })
        .collect();
    Forecast::new(long.model(), long.mean()[range].to_vec(), intervals)
}

/// Scores of `actual` against the concatenated `forecasts`; `mase` gives the
/// fold's scale with its actual and mean (pooled MASE is set by the caller).
fn score(
    actual: &[f64],
    forecasts: &[&Forecast],
    mase: Option<(f64, &[f64], &[f64])>,
    levels: &[f64],
) -> Result<AccuracyMetrics, ForecastError> {
    let mean: Vec<f64> = forecasts.iter().flat_map(|f| f.mean().to_vec()).collect();
    let mase = match mase {
        Some((scale, a, f)) => metrics::mae(a, f)?.and_then(|e| {
            let m = e / scale;
            m.is_finite().then_some(m)
        }),
        None => None,
    };
    let coverage = levels
        .iter()
        .map(|&level| {
            let bounds = |upper: bool| -> Vec<f64> {
                forecasts
                    .iter()
                    .flat_map(|f| {
                        let b = if upper {
                            f.upper(level)
                        } else {
                            f.lower(level)
                        };
                        b.unwrap_or_default().to_vec()
                    })
                    .collect()
            };
            let (lower, upper) = (bounds(false), bounds(true));
            Ok(IntervalCoverage {
                level,
                coverage: metrics::coverage(actual, &lower, &upper)?.unwrap_or(0.0),
                mean_width: running_mean(lower.iter().zip(&upper).map(|(l, u)| u - l)),
            })
        })
        .collect::<Result<_, ForecastError>>()?;
    Ok(AccuracyMetrics {
        mape: metrics::mape(actual, &mean)?,
        mape_skipped: metrics::mape_skipped(actual),
        smape: metrics::smape(actual, &mean)?,
        mase,
        rmse: metrics::rmse(actual, &mean)?,
        mae: metrics::mae(actual, &mean)?,
        bias: metrics::bias(actual, &mean)?,
        coverage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::intervals::test_rng::XorShift;
    use crate::forecast::{Exog, Fit, Naive, Predict, SeasonalNaive};
    use proptest::prelude::*;
    use std::sync::Mutex;

    /// A model that records the training lengths it is fitted on and
    /// forecasts the training length at every step.
    #[derive(Debug, Default)]
    struct Spy {
        fitted_on: Mutex<Vec<usize>>,
    }

    #[derive(Debug)]
    struct SpyFitted(usize);

    impl Fit for Spy {
        type Fitted = SpyFitted;
        fn name(&self) -> String {
            "spy".into()
        }
        fn fit(&self, history: &History<'_>) -> Result<SpyFitted, ForecastError> {
            if let Ok(mut v) = self.fitted_on.lock() {
                v.push(history.y.len());
            }
            Ok(SpyFitted(history.y.len()))
        }
    }

    impl Predict for SpyFitted {
        fn predict(
            &self,
            horizon: usize,
            levels: &[f64],
            _: Option<&Exog>,
        ) -> Result<Forecast, ForecastError> {
            let mean = vec![self.0 as f64; horizon];
            let intervals = levels
                .iter()
                .map(|&level| PredictionInterval {
                    level,
                    lower: mean.iter().map(|m| m - 1.0).collect(),
                    upper: mean.iter().map(|m| m + 1.0).collect(),
                })
                .collect();
            Forecast::new("spy", mean, intervals)
        }
        fn residuals(&self) -> &[f64] {
            &[]
        }
    }

    #[test]
    fn fold_origins_are_exactly_as_specified() {
        let y: Vec<f64> = (0..100).map(f64::from).collect();
        let config = BacktestConfig::new(10, 3).with_step(5);
        let spy = Spy::default();
        let report = backtest(&spy, &y, &[], &config).unwrap();
        // origin_k = n − horizon − (folds − 1 − k)·step
        let expected: Vec<usize> = (0..3).map(|k| 100 - 10 - (3 - 1 - k) * 5).collect();
        assert_eq!(expected, vec![80, 85, 90]);
        assert_eq!(
            report.folds.iter().map(|f| f.origin).collect::<Vec<_>>(),
            expected
        );
        assert_eq!(*spy.fitted_on.lock().unwrap(), expected);
        for fold in &report.folds {
            let o = fold.origin;
            assert_eq!(fold.actual, y[o..o + 10].to_vec());
            assert_eq!(fold.forecast.mean(), &vec![o as f64; 10][..]);
        }
        // The last window ends at the last observation.
        assert_eq!(report.folds[2].origin + 10, y.len());
        // Errors per step: actual − forecast = (o + j) − o = j.
        for (j, e) in report.errors_per_step.iter().enumerate() {
            assert_eq!(e, &vec![j as f64; 3]);
            assert_eq!(report.mae_per_step[j], j as f64);
        }
        // Bias: forecast − actual = −j, mean over j = 0..9 → −4.5.
        assert!((report.overall.bias.unwrap() + 4.5).abs() < 1e-12);
        // Coverage of ±1: steps 0 and 1 of each fold.
        assert_eq!(report.coverage(80.0), Some(0.2));
        assert_eq!(report.overall.coverage[0].mean_width, Some(2.0));
        // Default step = horizon: adjacent windows.
        assert_eq!(
            BacktestConfig::new(10, 3).origins(100).unwrap(),
            vec![70, 80, 90]
        );
    }

    /// A model that forecasts its future regressor "x" and records the
    /// rows of regressors it was fitted on.
    #[derive(Debug, Default)]
    struct Echo {
        fitted_rows: Mutex<Vec<usize>>,
    }

    #[derive(Debug)]
    struct EchoFitted;

    impl Fit for Echo {
        type Fitted = EchoFitted;
        fn name(&self) -> String {
            "echo".into()
        }
        fn fit(&self, history: &History<'_>) -> Result<EchoFitted, ForecastError> {
            let exog = history
                .exog
                .ok_or_else(|| ForecastError::MissingRegressors("echo needs x".into()))?;
            assert_eq!(exog.len(), history.y.len());
            if let Ok(mut v) = self.fitted_rows.lock() {
                v.push(exog.len());
            }
            Ok(EchoFitted)
        }
    }

    impl Predict for EchoFitted {
        fn predict(
            &self,
            horizon: usize,
            levels: &[f64],
            future: Option<&Exog>,
        ) -> Result<Forecast, ForecastError> {
            let x = future
                .and_then(|f| f.column("x"))
                .ok_or_else(|| ForecastError::MissingRegressors("echo needs future x".into()))?;
            assert_eq!(x.len(), horizon);
            let intervals = levels
                .iter()
                .map(|&level| PredictionInterval {
                    level,
                    lower: x.to_vec(),
                    upper: x.to_vec(),
                })
                .collect();
            Forecast::new("echo", x.to_vec(), intervals)
        }
        fn residuals(&self) -> &[f64] {
            &[]
        }
    }

    #[test]
    fn regressors_are_sliced_per_fold() {
        let n = 100;
        let y: Vec<f64> = (0..n).map(|t| (t * t % 17) as f64).collect();
        // The regressor is the series itself: echoing it is a perfect forecast.
        let exog = Exog::new(vec![("x".into(), y.clone())]).unwrap();
        for refit in [true, false] {
            let config = BacktestConfig::new(10, 3).with_step(5).with_refit(refit);
            let echo = Echo::default();
            let report = backtest_with_exog(&echo, &y, &[], Some(&exog), &config).unwrap();
            let fitted = echo.fitted_rows.lock().unwrap().clone();
            assert_eq!(fitted, if refit { vec![80, 85, 90] } else { vec![80] });
            for fold in &report.folds {
                assert_eq!(fold.forecast.mean(), fold.actual.as_slice());
            }
            assert_eq!(report.overall.rmse, Some(0.0));
            assert_eq!(report.coverage(95.0), Some(1.0));
        }
        // Without regressors the model's own error comes back.
        assert!(matches!(
            backtest(&Echo::default(), &y, &[], &BacktestConfig::new(10, 3)),
            Err(ForecastError::MissingRegressors(_))
        ));
        // Regressors of the wrong length are refused up front.
        let short = Exog::new(vec![("x".into(), y[..99].to_vec())]).unwrap();
        assert!(matches!(
            backtest_with_exog(
                &Echo::default(),
                &y,
                &[],
                Some(&short),
                &BacktestConfig::new(10, 3)
            ),
            Err(ForecastError::InvalidArgument(_))
        ));
        // The same result as `backtest` for a model without regressors.
        let config = BacktestConfig::new(7, 4);
        assert_eq!(
            backtest_with_exog(&SeasonalNaive::new(), &y, &[5], Some(&exog), &config).unwrap(),
            backtest(&SeasonalNaive::new(), &y, &[5], &config).unwrap()
        );
    }

    #[test]
    fn without_refit_one_fit_covers_every_window() {
        let y: Vec<f64> = (0..100).map(f64::from).collect();
        let config = BacktestConfig::new(10, 3).with_step(5).with_refit(false);
        let spy = Spy::default();
        let report = backtest(&spy, &y, &[], &config).unwrap();
        assert_eq!(*spy.fitted_on.lock().unwrap(), vec![80]);
        for fold in &report.folds {
            assert_eq!(fold.forecast.mean(), &[80.0; 10]);
        }
        // Fold 2 starts 10 steps after the fit: errors 10..19.
        assert!((report.folds[2].metrics.mae.unwrap() - 14.5).abs() < 1e-12);

        // The naive from origin 80 forecasts 79 everywhere.
        let r = backtest(&Naive, &y, &[], &config).unwrap();
        assert!(r.folds.iter().all(|f| f.forecast.mean() == [79.0; 10]));
        assert!((r.folds[1].metrics.bias.unwrap() - (79.0 - 89.5)).abs() < 1e-12);
    }

    #[test]
    fn metrics_per_fold_and_pooled() {
        // Season 4 plus a step of +1 after t = 40: seasonal naive is exact
        // except in the 4 steps after the jump.
        let y: Vec<f64> = (0..60)
            .map(|t| 10.0 + (t % 4) as f64 + if t >= 44 { 1.0 } else { 0.0 })
            .collect();
        let config = BacktestConfig::new(4, 4).with_mase_period(4);
        let report = backtest(&SeasonalNaive::new(), &y, &[4], &config).unwrap();
        let origins: Vec<usize> = report.folds.iter().map(|f| f.origin).collect();
        assert_eq!(origins, vec![44, 48, 52, 56]);
        // Fold 0 (origin 44) forecasts y[40..44] for y[44..48]: all 1 too low.
        let f0 = &report.folds[0].metrics;
        assert_eq!(f0.bias, Some(-1.0));
        assert_eq!(f0.rmse, Some(1.0));
        // In-sample y[..44] is exactly 4-periodic: no MASE scale.
        assert_eq!(f0.mase, None);
        // Fold 1 trains on y[..48]: 4 of 44 seasonal differences are 1.
        let f1 = &report.folds[1].metrics;
        assert_eq!(f1.rmse, Some(0.0));
        assert_eq!(f1.mase, Some(0.0));
        assert_eq!(report.overall.bias, Some(-0.25));
        assert_eq!(report.overall.mae, Some(0.25));
        assert_eq!(report.overall.mase, Some(0.0));
        assert_eq!(report.mae_per_step, vec![0.25; 4]);
        assert_eq!(report.mase_period, 4);
        // sMAPE/MAPE consistent with hand computation of fold 0.
        let a = &report.folds[0].actual;
        let expected_mape = a.iter().map(|v| 100.0 / v).sum::<f64>() / 4.0;
        assert!((f0.mape.unwrap() - expected_mape).abs() < 1e-12);
    }

    #[test]
    fn clear_errors() {
        let y = vec![1.0; 50];
        // Config errors.
        for bad in [
            BacktestConfig::new(0, 3),
            BacktestConfig::new(5, 0),
            BacktestConfig::new(5, 3).with_step(0),
            BacktestConfig::new(5, 3).with_levels([0.0]),
            BacktestConfig::new(5, 3).with_mase_period(0),
        ] {
            assert!(matches!(
                backtest(&Naive, &y, &[], &bad),
                Err(ForecastError::InvalidArgument(_))
            ));
        }
        // Too short for the folds alone.
        assert!(matches!(
            backtest(&Naive, &y, &[], &BacktestConfig::new(10, 5)),
            Err(ForecastError::TooShort {
                needed: 51,
                got: 50,
                ..
            })
        ));
        // Too short for the model's first fit: 10·4 + 2 for the naive.
        assert!(matches!(
            backtest(&Naive, &y[..41], &[], &BacktestConfig::new(10, 4)),
            Err(ForecastError::TooShort {
                needed: 42,
                got: 41,
                ..
            })
        ));
        // Seasonal naive on a 24 period: 10·4 + 25.
        match backtest(
            &SeasonalNaive::new(),
            &y,
            &[24],
            &BacktestConfig::new(10, 4),
        ) {
            Err(ForecastError::TooShort { needed, got, model }) => {
                assert_eq!((needed, got), (65, 50));
                assert!(model.contains("seasonal_naive backtest"), "{model}");
            }
            other => panic!("{other:?}"),
        }
        // Overflowing spans.
        assert!(matches!(
            backtest(
                &Naive,
                &y,
                &[],
                &BacktestConfig::new(10, usize::MAX).with_step(usize::MAX)
            ),
            Err(ForecastError::TooShort { .. })
        ));
        // Non-finite values.
        let mut bad = y.clone();
        bad[3] = f64::NAN;
        assert!(matches!(
            backtest(&Naive, &bad, &[], &BacktestConfig::new(5, 2)),
            Err(ForecastError::NonFinite { index: 3, .. })
        ));
    }

    /// End to end: the errors of a backtest calibrate conformal intervals for
    /// the next forecast of a seasonal random walk.
    #[test]
    fn conformal_intervals_from_backtest_cover_the_future() {
        let mut rng = XorShift::new(99);
        let (m, horizon, sims) = (6, 6, 600);
        let config = BacktestConfig::new(horizon, 24)
            .with_step(1)
            .with_levels([80.0]);
        let (mut hits, mut total) = (0usize, 0usize);
        for _ in 0..sims {
            let n = 150;
            let mut y: Vec<f64> = (0..m).map(|_| 20.0 * rng.uniform()).collect();
            for t in m..n + horizon {
                // Heavy-tailed shocks: the normal intervals would not fit.
                let e = rng.normal() * if rng.uniform() < 0.1 { 4.0 } else { 1.0 };
                y.push(y[t - m] + e);
            }
            let (train, test) = y.split_at(n);
            let report = backtest(&SeasonalNaive::new(), train, &[m], &config).unwrap();
            let mean = SeasonalNaive::new()
                .fit(&History::new(train, &[m]))
                .unwrap()
                .predict(horizon, &[], None)
                .unwrap();
            let pis = report.conformal_intervals(mean.mean(), &[80.0]).unwrap();
            let pi = &pis[0];
            for ((a, lo), hi) in test.iter().zip(&pi.lower).zip(&pi.upper) {
                hits += usize::from(lo <= a && a <= hi);
                total += 1;
            }
        }
        let rate = hits as f64 / total as f64;
        // Nominal ≥ 80 %, ⌈25·0.8⌉/25 = 80 % expected.
        assert!((0.76..=0.86).contains(&rate), "{rate}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn never_panics_and_outputs_are_finite(
            y in prop::collection::vec(-1e6..1e6f64, 0..300),
            periods in prop::collection::vec(2usize..50, 0..3),
            horizon in 0usize..30,
            folds in 0usize..6,
            step in 0usize..20,
            refit in any::<bool>(),
            naive in any::<bool>(),
        ) {
            let config = BacktestConfig::new(horizon, folds).with_step(step).with_refit(refit);
            let result = if naive {
                backtest(&Naive, &y, &periods, &config)
            } else {
                backtest(&SeasonalNaive::new(), &y, &periods, &config)
            };
            match result {
                Ok(report) => {
                    prop_assert_eq!(report.folds.len(), folds);
                    let all = report.folds.iter().map(|f| &f.metrics).chain([&report.overall]);
                    for m in all {
                        for v in [m.mape, m.smape, m.mase, m.rmse, m.mae, m.bias].into_iter().flatten() {
                            prop_assert!(v.is_finite());
                        }
                        for c in &m.coverage {
                            prop_assert!((0.0..=1.0).contains(&c.coverage));
                        }
                    }
                    prop_assert!(report.mae_per_step.iter().all(|v| v.is_finite()));
                    prop_assert_eq!(report.errors_per_step.len(), horizon);
                }
                Err(e) => prop_assert!(matches!(
                    e,
                    ForecastError::TooShort { .. } | ForecastError::InvalidArgument(_)
                ), "{e}"),
            }
        }
    }
}
