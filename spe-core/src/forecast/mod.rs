//! Forecasting: models with an unfitted/fitted split, the missing-value
//! rule, metrics and backtests.
//!
//! - `model`: [`Fit`] → [`Predict`], [`DynFit`], [`History`], [`Exog`],
//!   [`Forecast`] with validated intervals, the horizon cap;
//! - `missing`: the missing-value rule ([`fill_gaps`]: short gaps
//!   interpolated, long gaps and a missing tail refused, nothing dropped);
//! - the models: `naive` ([`SeasonalNaive`], [`Naive`]), `ets` ([`Ets`],
//!   [`AutoEts`]), `mstl` ([`Mstl`], [`Mstl::short`]), `regression`
//!   ([`WeatherRegression`], [`calendar_exog`]) and `auto` ([`AutoModel`],
//!   the choice by backtest); each documents its intervals and their
//!   measured coverage;
//! - `backtest` ([`backtest`], [`backtest_with_exog`]), `metrics`,
//!   `intervals` (normal and split-conformal), `optim` (bounded
//!   Nelder–Mead).
//!
//! The figures (speed, accuracy against statsforecast and augurs, interval
//! coverage) are in the crate's README, section *Forecasting*.

mod auto;
mod backtest;
mod error;
mod ets;
mod intervals;
mod metrics;
mod missing;
mod model;
mod mstl;
mod naive;
mod optim;
#[cfg(test)]
mod proptests;
mod regression;
mod stl;
mod transform;

pub use auto::{AutoModel, CandidateScore, FittedAuto};
pub use backtest::{
    AccuracyMetrics, BacktestConfig, BacktestFold, BacktestReport, IntervalCoverage, backtest,
    backtest_with_exog,
};
pub use error::ForecastError;
pub use ets::{AutoEts, Ets, EtsParams, FittedEts, Trend};
pub use intervals::{
    conformal_intervals, conformal_intervals_pooled, conformal_min_scores, normal_intervals,
    normal_quantile, z_for_level,
};
pub use metrics::{bias, coverage, mae, mape, mape_skipped, mase, mase_scale, rmse, smape};
pub use missing::{DEFAULT_MAX_GAP, fill_gaps, fill_nan_gaps};
pub(crate) use model::beyond_max_observation;
pub use model::{
    DynFit, Exog, Fit, FittedSummary, Forecast, History, MAX_HORIZON, MAX_OBSERVATION, Predict,
    PredictionInterval, validate_horizon, validate_levels,
};
pub use mstl::{FittedMstl, Mstl, Smoother};
pub use naive::{FittedSeasonalNaive, Naive, SeasonalNaive};
pub use optim::{Minimum, NelderMead};
pub use regression::{FittedWeatherRegression, WeatherRegression, calendar_exog};
pub use stl::{Stl, StlDecomposition};
pub use transform::{BoxCox, FittedBoxCox, MAX_LAMBDA};
