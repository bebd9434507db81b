//! The one error type of the forecasting models.

/// Why a model could not be fitted or could not forecast.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ForecastError {
    /// Not enough history for the model.
    #[error("{model} needs at least {needed} observations, got {got}")]
    TooShort {
        /// The model.
        model: String,
        /// Observations needed.
        needed: usize,
        /// Observations given.
        got: usize,
    },
    /// A value is NaN or infinite where a number is required.
    #[error(
        "value at index {index} is {value}: not a finite number (use the missing-value rule to fill gaps)"
    )]
    NonFinite {
        /// Position of the value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A gap of missing values is longer than the interpolation rule allows.
    #[error(
        "{len} consecutive missing values from index {start}: more than the {max} the rule interpolates"
    )]
    GapTooLong {
        /// First missing index.
        start: usize,
        /// Length of the gap.
        len: usize,
        /// Longest gap interpolated.
        max: usize,
    },
    /// The most recent values are missing: the forecast origin is unknown.
    #[error("the last {0} values are missing: the forecast would not start where the data ends")]
    MissingTail(usize),
    /// An argument is out of range (horizon, level, period, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The model needs future values of its regressors and did not get them.
    #[error("{0}")]
    MissingRegressors(String),
    /// Fitting failed numerically.
    #[error("{model} could not be fitted: {reason}")]
    FitFailed {
        /// The model.
        model: String,
        /// What went wrong.
        reason: String,
    },
    /// A fitted model could not forecast the horizon asked (a value beyond
    /// what it can represent).
    #[error("{model} could not forecast: {reason}")]
    PredictFailed {
        /// The model.
        model: String,
        /// What went wrong.
        reason: String,
    },
}

impl ForecastError {
    /// An [`InvalidArgument`](ForecastError::InvalidArgument) error.
    pub fn invalid(message: impl Into<String>) -> Self {
        ForecastError::InvalidArgument(message.into())
    }
}

/// `Err(NonFinite)` for the first NaN or infinite value, the one finiteness
/// check of the forecasting code.
pub(crate) fn check_finite(values: &[f64]) -> Result<(), ForecastError> {
    match values
        .iter()
        .copied()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    {
        Some((index, value)) => Err(ForecastError::NonFinite { index, value }),
        None => Ok(()),
    }
}
