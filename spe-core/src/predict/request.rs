//! What to forecast: [`PredictionRequest`] and its builder.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::Provenance;
use crate::forecast::{Exog, History, validate_horizon, validate_levels};

use super::ChainError;

/// The default horizon: two days of hourly steps.
pub const DEFAULT_HORIZON: usize = 48;

/// What to forecast: a history of equally spaced observations ending just
/// before `start`, and the steps to forecast from `start` on.
///
/// `history[i]` is the value at `start − (history.len() − i) × step`; the
/// forecast's step `h` (from 0) is at `start + h × step`.
///
/// The fields are public for reading; build one with
/// [`PredictionRequest::builder`], which validates it (so does
/// [`PredictionChain::generate`](super::PredictionChain::generate), since the
/// fields can be changed after building).
///
/// ```
/// use std::time::Duration;
/// use chrono::{TimeZone, Utc};
/// use spe_core::PredictionRequest;
///
/// let start = Utc.with_ymd_and_hms(2026, 1, 8, 0, 0, 0).unwrap();
/// let history: Vec<f64> = (0..24 * 7).map(|t| 50.0 + (t % 24) as f64).collect();
/// let request = PredictionRequest::builder(start, history)
///     .horizon(24)
///     .levels(vec![80.0, 95.0])
///     .build()
///     .unwrap();
/// assert_eq!(request.step, Duration::from_secs(3600));
/// assert_eq!(request.periods, vec![24, 168]);
/// assert_eq!(request.history_start(), Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
///
/// // Bad input is a clear error, not a panic.
/// let err = PredictionRequest::builder(start, vec![1.0, f64::NAN]).build().unwrap_err();
/// assert!(err.to_string().contains("history[1] is NaN"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRequest {
    /// The time of the first forecast step (the step after the last observation).
    pub start: DateTime<Utc>,
    /// The time between two steps (a whole number of seconds, at least 1 s).
    pub step: Duration,
    /// The observations, oldest first, finite (fill gaps first, e.g. with
    /// [`fill_nan_gaps`](crate::fill_nan_gaps)).
    pub history: Vec<f64>,
    /// Seasonal periods in steps, shortest first (e.g. `[24, 168]` for
    /// hourly data: a day and a week).
    pub periods: Vec<usize>,
    /// Steps to forecast, 1 to [`MAX_HORIZON`](crate::MAX_HORIZON).
    pub horizon: usize,
    /// Interval levels in percent, each in (0, 100) (e.g. `[80, 95]`).
    pub levels: Vec<f64>,
    /// Regressors over the history (one row per observation).
    pub exog: Option<Exog>,
    /// Regressors over the horizon (one row per step, same columns as `exog`).
    pub exog_future: Option<Exog>,
    /// Where the history came from (default [`Provenance::Live`]): a history
    /// estimated by the synthetic generator gives predictions whose
    /// [`ChainResult::provenance`](crate::ChainResult::provenance) says so.
    pub inputs: Provenance,
}

impl PredictionRequest {
    /// Start a request: `history` ends just before `start`. Defaults: hourly
    /// steps, horizon [`DEFAULT_HORIZON`], periods `[24, 168]` for hourly
    /// steps (none otherwise), levels `[80, 95]`, no regressors.
    ///
    /// ```
    /// # use chrono::Utc;
    /// let r = spe_core::PredictionRequest::builder(Utc::now(), vec![1.0; 48]).build().unwrap();
    /// assert_eq!((r.horizon, r.levels.as_slice()), (48, &[80.0, 95.0][..]));
    /// ```
    pub fn builder(start: DateTime<Utc>, history: Vec<f64>) -> PredictionRequestBuilder {
        PredictionRequestBuilder {
            request: PredictionRequest {
                start,
                step: Duration::from_secs(3600),
                history,
                periods: Vec::new(),
                horizon: DEFAULT_HORIZON,
                levels: vec![80.0, 95.0],
                exog: None,
                exog_future: None,
                inputs: Provenance::Live,
            },
            periods_set: false,
        }
    }

    /// The step in whole seconds.
    ///
    /// ```
    /// # use chrono::Utc;
    /// let r = spe_core::PredictionRequest::builder(Utc::now(), vec![1.0; 48]).build().unwrap();
    /// assert_eq!(r.step_s(), 3600);
    /// ```
    pub fn step_s(&self) -> u64 {
        self.step.as_secs()
    }

    /// The time of the first observation: `start − len(history) × step`
    /// (the earliest representable date if that underflows, which a
    /// validated request never does).
    ///
    /// ```
    /// # use chrono::{TimeZone, Utc};
    /// let start = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
    /// let r = spe_core::PredictionRequest::builder(start, vec![1.0; 24]).build().unwrap();
    /// assert_eq!(r.history_start(), Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    /// ```
    pub fn history_start(&self) -> DateTime<Utc> {
        span(self.history.len(), self.step_s())
            .and_then(|d| self.start.checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The history as the forecasting models take it.
    ///
    /// ```
    /// # use chrono::Utc;
    /// let r = spe_core::PredictionRequest::builder(Utc::now(), vec![1.0; 48]).build().unwrap();
    /// assert_eq!(r.model_history().y.len(), 48);
    /// ```
    pub fn model_history(&self) -> History<'_> {
        History {
            y: &self.history,
            periods: &self.periods,
            exog: self.exog.as_ref(),
        }
    }

    /// Check the request: a step of whole seconds (at least 1 s), a
    /// non-empty finite history within ±[`MAX_OBSERVATION`](crate::MAX_OBSERVATION)
    /// (what the models take), a horizon in `1..=MAX_HORIZON`, levels in
    /// (0, 100) without duplicates, periods of at least 2 steps, regressors
    /// for both the history and the horizon with the right lengths and the
    /// same columns, and a time axis that fits in a date.
    ///
    /// # Errors
    ///
    /// [`ChainError::InvalidRequest`], saying what is wrong.
    ///
    /// ```
    /// # use chrono::Utc;
    /// let mut r = spe_core::PredictionRequest::builder(Utc::now(), vec![1.0; 48]).build().unwrap();
    /// r.horizon = 0;
    /// assert!(r.validate().is_err());
    /// // Beyond what the models take: refused before any model runs.
    /// let huge = spe_core::PredictionRequest::builder(Utc::now(), vec![1e307; 48]).build();
    /// assert!(matches!(huge, Err(spe_core::ChainError::InvalidRequest(m)) if m.contains("rescale")));
    /// ```
    pub fn validate(&self) -> Result<(), ChainError> {
        let invalid = |m: String| Err(ChainError::InvalidRequest(m));
        if self.step < Duration::from_secs(1) || self.step.subsec_nanos() != 0 {
            return invalid(format!(
                "step {:?} is not a whole number of seconds (at least 1 s)",
                self.step
            ));
        }
        if self.history.is_empty() {
            return invalid("the history is empty".into());
        }
        if let Some((i, v)) = self
            .history
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite())
        {
            return invalid(format!(
                "history[{i}] is {v}: not a finite number (fill gaps first)"
            ));
        }
        if let Some((i, v)) = crate::forecast::beyond_max_observation(&self.history) {
            return invalid(format!(
                "history[{i}] is {v:e}, beyond ±{:e}: rescale the series",
                crate::MAX_OBSERVATION
            ));
        }
        validate_horizon(self.horizon)?;
        validate_levels(&self.levels)?;
        if let Some(p) = self.periods.iter().find(|p| **p < 2) {
            return invalid(format!("seasonal period {p} is less than 2 steps"));
        }
        match (&self.exog, &self.exog_future) {
            (None, None) => {}
            (Some(past), Some(future)) => {
                if past.len() != self.history.len() {
                    return invalid(format!(
                        "the history regressors have {} rows for {} observations",
                        past.len(),
                        self.history.len()
                    ));
                }
                if future.len() != self.horizon {
                    return invalid(format!(
                        "the future regressors have {} rows for a horizon of {}",
                        future.len(),
                        self.horizon
                    ));
                }
                if past.names() != future.names() {
                    return invalid(format!(
                        "the history regressors {:?} and the future regressors {:?} differ",
                        past.names(),
                        future.names()
                    ));
                }
            }
            _ => {
                return invalid("regressors need both the history part and the future part".into());
            }
        }
        let axis_ok = span(self.history.len(), self.step_s())
            .and_then(|d| self.start.checked_sub_signed(d))
            .is_some()
            && span(self.horizon, self.step_s())
                .and_then(|d| self.start.checked_add_signed(d))
                .is_some();
        if !axis_ok {
            return invalid("the time axis does not fit in a date".into());
        }
        Ok(())
    }
}

/// `steps × step_s` seconds, if representable.
pub(crate) fn span(steps: usize, step_s: u64) -> Option<chrono::TimeDelta> {
    let steps = i64::try_from(steps).ok()?;
    let step = i64::try_from(step_s).ok()?;
    chrono::TimeDelta::try_seconds(steps.checked_mul(step)?)
}

/// Builds a validated [`PredictionRequest`]; see [`PredictionRequest::builder`].
#[derive(Debug, Clone)]
pub struct PredictionRequestBuilder {
    request: PredictionRequest,
    periods_set: bool,
}

impl PredictionRequestBuilder {
    /// The time between steps (default 1 h).
    pub fn step(mut self, step: Duration) -> Self {
        self.request.step = step;
        self
    }

    /// Steps to forecast (default [`DEFAULT_HORIZON`]).
    pub fn horizon(mut self, horizon: usize) -> Self {
        self.request.horizon = horizon;
        self
    }

    /// Seasonal periods in steps (default `[24, 168]` for hourly steps, none
    /// for other steps).
    pub fn periods(mut self, periods: Vec<usize>) -> Self {
        self.request.periods = periods;
        self.periods_set = true;
        self
    }

    /// Interval levels in percent (default `[80, 95]`; empty for none).
    pub fn levels(mut self, levels: Vec<f64>) -> Self {
        self.request.levels = levels;
        self
    }

    /// Regressors: `history` has one row per observation, `future` one row
    /// per forecast step, with the same columns.
    pub fn exog(mut self, history: Exog, future: Exog) -> Self {
        self.request.exog = Some(history);
        self.request.exog_future = Some(future);
        self
    }

    /// Where the history came from (default [`Provenance::Live`]): pass
    /// [`Provenance::Synthetic`] for a history estimated in estimation mode,
    /// so that the predictions do not pass for live ones.
    ///
    /// ```
    /// # use chrono::Utc;
    /// use spe_core::{PredictionRequest, Provenance};
    ///
    /// let r = PredictionRequest::builder(Utc::now(), vec![1.0; 48])
    ///     .inputs(Provenance::Synthetic)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(r.inputs, Provenance::Synthetic);
    /// ```
    pub fn inputs(mut self, inputs: Provenance) -> Self {
        self.request.inputs = inputs;
        self
    }

    /// The request, validated as [`PredictionRequest::validate`] says.
    ///
    /// # Errors
    ///
    /// [`ChainError::InvalidRequest`], saying what is wrong.
    pub fn build(mut self) -> Result<PredictionRequest, ChainError> {
        if !self.periods_set && self.request.step == Duration::from_secs(3600) {
            self.request.periods = vec![24, 168];
        }
        self.request.validate()?;
        Ok(self.request)
    }
}
