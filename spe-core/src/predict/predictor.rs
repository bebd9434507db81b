//! The [`Predictor`] trait, the Rust-model predictor, and the validation
//! every predictor's answer goes through.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
/// waiting for it, and the thread finishes its work in the background. So
/// that a model that hangs holds one thread, not one more at every
/// regeneration, at most [`RunLimit`] fits run at once (one by default,
/// [`ModelPredictor::with_max_running`]): a call while they all run fails at
/// once with [`PredictorError::Busy`], and the chain falls back.
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
    limit: RunLimit,
}

impl ModelPredictor {
    /// Wrap a model; one fit at a time.
    pub fn new(model: Arc<dyn DynFit>) -> Self {
        ModelPredictor {
            model,
            limit: RunLimit::new(1),
        }
    }

    /// The same, running at most `max` fits at once (at least 1); clones
    /// share the limit.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use spe_core::{ModelPredictor, SeasonalNaive};
    ///
    /// let p = ModelPredictor::new(Arc::new(SeasonalNaive::default())).with_max_running(4);
    /// assert_eq!(p.limit().max(), 4);
    /// ```
    pub fn with_max_running(mut self, max: usize) -> Self {
        self.limit = RunLimit::new(max);
        self
    }

    /// The limit on its fits running at once.
    pub fn limit(&self) -> &RunLimit {
        &self.limit
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
        let permit = self.limit.try_start()?;
        let model = Arc::clone(&self.model);
        let request = request.clone();
        let run = move || -> Result<Forecast, PredictorError> {
            // Held until the fit ends, whether or not anyone still waits.
            let _permit = permit;
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

/// A limit on the calls of a predictor running at once, for predictors
/// whose work cannot be interrupted (a Rust fit on a thread, a Python
/// call): each call takes a [`RunPermit`] before it starts and gives it back
/// when its work ends — not when the chain stops waiting — so calls that
/// hang past their timeout keep their permits, and once they hold them all
/// a new call fails at once with [`PredictorError::Busy`] instead of
/// starting yet another thread. Clones share the count.
///
/// ```
/// use spe_core::{PredictorError, RunLimit};
///
/// let limit = RunLimit::new(1);
/// let permit = limit.try_start().unwrap();
/// assert_eq!(limit.running(), 1);
/// assert!(matches!(limit.try_start(), Err(PredictorError::Busy { running: 1 })));
/// drop(permit); // the work ended
/// assert!(limit.try_start().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct RunLimit {
    running: Arc<AtomicUsize>,
    max: usize,
}

impl RunLimit {
    /// At most `max` calls at once (at least 1).
    pub fn new(max: usize) -> Self {
        RunLimit {
            running: Arc::new(AtomicUsize::new(0)),
            max: max.max(1),
        }
    }

    /// The most calls at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The calls running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// A permit to start a call, or [`PredictorError::Busy`] if `max` are
    /// running.
    pub fn try_start(&self) -> Result<RunPermit, PredictorError> {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .map(|_| RunPermit {
                running: Arc::clone(&self.running),
            })
            .map_err(|running| PredictorError::Busy { running })
    }
}

/// A call's place in a [`RunLimit`], given back when dropped.
#[derive(Debug)]
pub struct RunPermit {
    running: Arc<AtomicUsize>,
}

impl Drop for RunPermit {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `BadOutput` for the first value of `forecast` (mean, then bounds) more
/// than [`PLAUSIBLE_SPREADS`] spreads beyond the range of `history`.
fn check_plausible(forecast: &Forecast, history: &[f64]) -> Result<(), PredictorError> {
    let (lo, hi) = history
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let spread = (hi - lo).max(lo.abs()).max(hi.abs());
    if !(spread.is_finite() && spread > 0.0) {
        return Ok(()); // no history, or all zeros: nothing to measure by
    }
    let (min, max) = (
        lo - PLAUSIBLE_SPREADS * spread,
        hi + PLAUSIBLE_SPREADS * spread,
    );
    let series = std::iter::once(("mean".to_owned(), forecast.mean())).chain(
        forecast.intervals().iter().flat_map(|pi| {
            [
                (level_key("lower", pi.level), pi.lower.as_slice()),
                (level_key("upper", pi.level), pi.upper.as_slice()),
            ]
        }),
    );
    for (name, values) in series {
        if let Some((i, v)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| !(min..=max).contains(*v))
        {
            return Err(PredictorError::bad_output(format!(
                "{name}[{i}] = {} is implausible: more than {PLAUSIBLE_SPREADS} × {} \
                 beyond the history's range [{}, {}]",
                short(*v),
                short(spread),
                short(lo),
                short(hi)
            )));
        }
    }
    Ok(())
}

/// `v` for a message: as is, or in scientific notation from 1e15 on (not
/// a number of 300 digits).
fn short(v: f64) -> String {
    if v.abs() >= 1e15 {
        format!("{v:e}")
    } else {
        v.to_string()
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

/// How far beyond the range of the request's history a predicted value (a
/// mean or an interval bound) may lie before [`check_forecast`] refuses it
/// as implausible, in *spreads* of the history: its range `max − min`, or
/// its largest magnitude if that is larger. With demand between 700 and
/// 1900 MW (spread 1900), values from −18 300 to 20 900 MW pass; −1e9 does
/// not.
pub const PLAUSIBLE_SPREADS: f64 = 10.0;

/// Validates a predictor's answer against its request, whatever the
/// predictor: exactly `request.horizon` steps; finite values; every
/// interval with `lower ≤ upper`, containing the mean, and nested (a higher
/// level's interval holds a lower one's); and every value plausible: within
/// [`PLAUSIBLE_SPREADS`] spreads of the history's range (an all-zero
/// history has no spread, and bounds nothing). Keeps the intervals
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
///
/// // The history is all 1.0: spread 1, so values beyond −9 … 11 are refused.
/// let absurd = Forecast::new("m", vec![1.0, -1e9], vec![]).unwrap();
/// let e = check_forecast(&absurd, &request).unwrap_err().to_string();
/// assert!(e.contains("mean[1] = -1000000000 is implausible"), "{e}");
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
    // validation): every interval contains the mean, and they are nested.
    let checked = Forecast::new(forecast.model(), forecast.mean().to_vec(), kept)
        .map_err(|e| PredictorError::bad_output(e.to_string()))?;
    check_plausible(&checked, &request.history)?;
    Ok((checked, missing))
}

/// Adds the `missing` levels to `primary`, borrowing each step's interval
/// half-widths from `donor` (the fallback model's forecast of the same
/// request): `lower = mean − (donor.mean − donor.lower)`, `upper = mean +
/// (donor.upper − donor.mean)`, then clamped step by step so that they nest
/// with the primary's own intervals (no wider than its own at a higher
/// level, no narrower than at a lower one). Intervals end in request order.
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
        // The primary's own intervals below this level and above it.
        let (below, above): (Vec<&PredictionInterval>, Vec<&PredictionInterval>) = primary
            .intervals()
            .iter()
            .filter(|pi| pi.level != level)
            .partition(|pi| pi.level < level);
        let lower = (0..m.len()).map(|i| {
            // At most the lower bounds below this level, at least those above.
            let v = m[i] - (dm[i] - dlo[i]);
            let v = below.iter().fold(v, |v, pi| v.min(pi.lower[i]));
            above.iter().fold(v, |v, pi| v.max(pi.lower[i]))
        });
        let upper = (0..m.len()).map(|i| {
            // At least the upper bounds below this level, at most those above.
            let v = m[i] + (dhi[i] - dm[i]);
            let v = below.iter().fold(v, |v, pi| v.max(pi.upper[i]));
            above.iter().fold(v, |v, pi| v.min(pi.upper[i]))
        });
        intervals.push(PredictionInterval {
            level,
            lower: lower.collect(),
            upper: upper.collect(),
        });
    }
    Forecast::new(primary.model(), primary.mean().to_vec(), intervals)
        .map_err(|e| PredictorError::bad_output(format!("derived intervals: {e}")))
}
