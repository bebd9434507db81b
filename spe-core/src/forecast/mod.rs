//! Forecasting: models with an unfitted/fitted split, the missing-value
//! rule, metrics and backtests.

mod error;
mod missing;
mod model;

pub use error::ForecastError;
pub use missing::{DEFAULT_MAX_GAP, fill_gaps, fill_nan_gaps};
pub use model::{
    DynFit, Exog, Fit, Forecast, History, Predict, PredictionInterval, validate_levels,
};
