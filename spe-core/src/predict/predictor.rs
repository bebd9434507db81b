//! The [`Predictor`] trait, the Rust-model predictor, and the validation
//! every predictor's answer goes through.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::forecast::{DynFit, Forecast, PredictionInterval};

use super::{PredictionRequest, PredictorError, schema::level_key};

/// Anything that forecasts a [`PredictionRequest`]: a Rust model
/// ([`ModelPredictor`]), an external command ([`CommandPredictor`](super::CommandPredictor)),
/// a Python callable (in the Python binding), or your own.
///
/// The [`PredictionChain`](super::PredictionChain) runs it in its own task
/// under a timeout, so an implementation may fail, hang or panic without
/// harming the caller; its answer is validated (see [`check_forecast`]).
/// An implementation that holds resources (a child process) releases them
/// when its future is dropped.
///
/// ```
/// use async_trait::async_trait;
/// use spe_core::{Forecast, PredictionRequest, Predictor, PredictorError};
///
/// /// Tomorrow is like the last observation.
/// #[derive(Debug)]
/// struct Persistence;
///
/// #[async_trait]
/// impl Predictor for Persistence {
///     fn name(&self) -> String {
///         "persistence".into()
///     }
///     async fn predict(&self, request: &PredictionRequest) -> Result<Forecast, PredictorError> {
///         let last = *request.history.last().ok_or_else(|| PredictorError::bad_output("no history"))?;
///         Ok(Forecast::new("persistence", vec![last; request.horizon], vec![])?)
///     }
/// }
/// ```
#[async_trait]
pub trait Predictor: Send + Sync + fmt::Debug {
    /// A name for logs, incidents and [`TierFailure`](super::TierFailure)s.
    fn name(&self) -> String;

    /// Forecast `request.horizon` steps from `request.start`, with intervals
    /// at `request.levels` where it can (the chain derives missing ones).
    async fn predict(&self, request: &PredictionRequest) -> Result<Forecast, PredictorError>;
}

/// A Rust forecasting model as a [`Predictor`]: fitted on the request's
/// history and forecast on tokio's blocking thread pool, so a long fit never
/// stalls the async runtime. A panic in the model becomes
/// [`PredictorError::Panicked`].
///
/// A blocking fit cannot be interrupted: on a timeout the chain stops
/// waiting for it, and the thread finishes its work in the background.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use chrono::Utc;
/// use spe_core::{ModelPredictor, PredictionRequest, Predictor, SeasonalNaive};
///
/// let predictor = ModelPredictor::new(Arc::new(SeasonalNaive::default()));
/// let history: Vec<f64> = (0..24 * 14).map(|t| (t % 24) as f64).collect();
/// let request = PredictionRequest::builder(Utc::now(), history).horizon(24).build()?;
/// let forecast = predictor.predict(&request).await?;
/// assert_eq!(forecast.horizon(), 24);
/// assert!(forecast.lower(95.0).is_some());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ModelPredictor {
    model: Arc<dyn DynFit>,
}

impl ModelPredictor {
    /// Wrap a model.
    pub fn new(model: Arc<dyn DynFit>) -> Self {
        ModelPredictor { model }
    }

    /// The model.
    pub fn model(&self) -> &Arc<dyn DynFit> {
        &self.model
    }
}

#[async_trait]
impl Predictor for ModelPredictor {
    fn name(&self) -> String {
        self.model.name()
    }

    async fn predict(&self, request: &PredictionRequest) -> Result<Forecast, PredictorError> {
        let model = Arc::clone(&self.model);
        let request = request.clone();
        let run = move || -> Result<Forecast, PredictorError> {
            let fitted = model.fit_dyn(&request.model_history())?;
            Ok(fitted.predict(
                request.horizon,
                &request.levels,
                request.exog_future.as_ref(),
            )?)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(run)
                .await
                .map_err(|e| join_error(&e))?,
            Err(_) => run(),
        }
    }
}

/// A task that did not finish: a panic (its message) or a cancellation.
pub(crate) fn join_error(e: &tokio::task::JoinError) -> PredictorError {
    if e.is_panic() {
        PredictorError::Panicked {
            message: e.to_string(),
        }
    } else {
        PredictorError::crashed("cancelled", e.to_string())
    }
}

/// Validates a predictor's answer against its request, whatever the
/// predictor: exactly `request.horizon` steps; finite values; every
/// interval with `lower ≤ upper` and containing the mean. Keeps the intervals
/// at the requested levels, in the requested order, and returns the
/// requested levels it lacks (which the chain derives, see
/// [`PredictionChain`](super::PredictionChain)). Intervals at other levels
/// are dropped.
///
/// ```
/// use chrono::Utc;
/// use spe_core::{Forecast, PredictionInterval, PredictionRequest, check_forecast};
///
/// let request = PredictionRequest::builder(Utc::now(), vec![1.0; 10]).horizon(2).build().unwrap();
/// let f = Forecast::new("m", vec![1.0, 2.0], vec![
///     PredictionInterval { level: 95.0, lower: vec![0.0, 1.0], upper: vec![2.0, 3.0] },
///     PredictionInterval { level: 50.0, lower: vec![0.5, 1.5], upper: vec![1.5, 2.5] },
/// ]).unwrap();
/// let (kept, missing) = check_forecast(&f, &request).unwrap();
/// assert_eq!(kept.intervals().len(), 1);
/// assert_eq!(missing, vec![80.0]);
///
/// let short = Forecast::new("m", vec![1.0], vec![]).unwrap();
/// assert!(check_forecast(&short, &request).unwrap_err().to_string().contains("1 step"));
/// ```
pub fn check_forecast(
    forecast: &Forecast,
    request: &PredictionRequest,
) -> Result<(Forecast, Vec<f64>), PredictorError> {
    let bad = |m: String| Err(PredictorError::bad_output(m));
    if forecast.horizon() != request.horizon {
        return bad(format!(
            "the forecast has {} step{}, expected {} (the horizon)",
            forecast.horizon(),
            if forecast.horizon() == 1 { "" } else { "s" },
            request.horizon
        ));
    }
    if let Some((i, v)) = forecast
        .mean()
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    {
        return bad(format!("mean[{i}] is {v}, not a finite number"));
    }
    let mut kept = Vec::with_capacity(request.levels.len());
    let mut missing = Vec::new();
    for &level in &request.levels {
        let found = forecast
            .intervals()
            .iter()
            .find(|pi| (pi.level - level).abs() < 1e-9);
        let Some(pi) = found else {
            missing.push(level);
            continue;
        };
        let (lk, uk) = (level_key("lower", level), level_key("upper", level));
        if pi.lower.len() != request.horizon || pi.upper.len() != request.horizon {
            return bad(format!(
                "the {level} % interval does not have {} steps",
                request.horizon
            ));
        }
        for (i, (lo, hi)) in pi.lower.iter().zip(&pi.upper).enumerate() {
            if !lo.is_finite() {
                return bad(format!("{lk}[{i}] is {lo}, not a finite number"));
            }
            if !hi.is_finite() {
                return bad(format!("{uk}[{i}] is {hi}, not a finite number"));
            }
            if lo > hi {
                return bad(format!("{lk}[{i}] = {lo} is above {uk}[{i}] = {hi}"));
            }
        }
        kept.push(PredictionInterval {
            level,
            lower: pi.lower.clone(),
            upper: pi.upper.clone(),
        });
    }
    // Re-checks the whole (a forecast may have been deserialized without
    // validation): every interval contains the mean.
    let checked = Forecast::new(forecast.model(), forecast.mean().to_vec(), kept)
        .map_err(|e| PredictorError::bad_output(e.to_string()))?;
    Ok((checked, missing))
}

/// Adds the `missing` levels to `primary`, borrowing each step's interval
/// half-widths from `donor` (the fallback model's forecast of the same
/// request): `lower = mean − (donor.mean − donor.lower)`, `upper = mean +
/// (donor.upper − donor.mean)`. Intervals end in request order.
pub(crate) fn derive_intervals(
    primary: &Forecast,
    donor: &Forecast,
    levels: &[f64],
) -> Result<Forecast, PredictorError> {
    let mut intervals = Vec::with_capacity(levels.len());
    for &level in levels {
        if let (Some(lo), Some(hi)) = (primary.lower(level), primary.upper(level)) {
            intervals.push(PredictionInterval {
                level,
                lower: lo.to_vec(),
                upper: hi.to_vec(),
            });
            continue;
        }
        let (Some(dlo), Some(dhi)) = (donor.lower(level), donor.upper(level)) else {
            return Err(PredictorError::bad_output(format!(
                "no {level} % interval, and {} has none to derive it from",
                donor.model()
            )));
        };
        if donor.horizon() != primary.horizon() {
            return Err(PredictorError::bad_output(format!(
                "cannot derive the {level} % interval: {} forecast {} steps, not {}",
                donor.model(),
                donor.horizon(),
                primary.horizon()
            )));
        }
        let m = primary.mean();
        let dm = donor.mean();
        intervals.push(PredictionInterval {
            level,
            lower: (0..m.len()).map(|i| m[i] - (dm[i] - dlo[i])).collect(),
            upper: (0..m.len()).map(|i| m[i] + (dhi[i] - dm[i])).collect(),
        });
    }
    Forecast::new(primary.model(), primary.mean().to_vec(), intervals)
        .map_err(|e| PredictorError::bad_output(format!("derived intervals: {e}")))
}
