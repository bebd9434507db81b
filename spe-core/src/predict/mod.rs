//! The resilient prediction chain: a primary predictor, a statistical
//! fallback, and the last good predictions from a crash-safe cache.
//!
//! ```text
//!   generate(request) ──▶ single flight: concurrent calls share one run
//!        │
//!        ├─ tier 1  primary   any Predictor: a Rust model, an external command
//!        │                    (CommandPredictor), a Python callable; under a timeout,
//!        │                    in its own task; its answer validated
//!        ├─ tier 2  fallback  a statistical model (`auto` by default), if tier 1 failed
//!        └─ tier 3  cache     the last good predictions, with their age, if both failed
//!
//!   a tier-1 or tier-2 answer is written to the cache, published to `latest()`
//!   and `subscribe()`rs, and returned; every failure is journaled
//! ```
//!
//! See [`PredictionChain`] for the rules (validation, derived intervals,
//! single flight, cancellation, journaling) and [`CommandPredictor`] for the
//! JSON a prediction command reads and writes.
//!
//! # Provenance
//!
//! A [`ChainResult`] says which [`Tier`] answered and why the tiers above
//! failed ([`TierFailure`]). Its [`provenance`](ChainResult::provenance)
//! uses the crate's [`Provenance`] names:
//!
//! | tier | provenance | age |
//! |---|---|---|
//! | `primary` | `live` | since the predictions were made |
//! | `fallback` | `fallback` | since the predictions were made |
//! | `cache` | `cached` with `age_s` | since the cached predictions were made |
//!
//! The tier of a result is about *this* answer: predictions made by the
//! primary an hour ago and served again from the cache are tier `cache`
//! (their [`Predictions::tier`] still says the primary made them).

mod archive;
mod chain;
mod command;
mod error;
mod predictor;
mod process;
mod request;
mod schema;
#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::forecast::Forecast;
use crate::journal::IncidentKind;
use crate::provenance::Provenance;

pub use archive::{
    ARCHIVE_FUTURE_SLACK, ArchiveConfig, PREDICTION_ARCHIVE_NAME, PredictionArchive,
};
pub use chain::{FRESH_BACKLOG, PREDICTIONS_CACHE_NAME, PredictionChain, PredictionChainBuilder};
pub use command::{
    CommandPredictor, CommandPredictorBuilder, DEFAULT_COMMAND_TIMEOUT, MAX_OUTPUT_BYTES,
    OUTPUT_FILE_ENV, RUN_ID_ENV, STDERR_TAIL_BYTES,
};
pub use error::{ChainError, PredictorError};
pub use predictor::{
    ModelPredictor, PLAUSIBLE_SPREADS, Predictor, RunLimit, RunPermit, check_forecast,
};
pub use request::{DEFAULT_HORIZON, PredictionRequest, PredictionRequestBuilder};
pub use schema::{
    IntervalColumns, PREDICTION_SCHEMA_VERSION, parse_predictor_output, request_json,
};

/// The most characters of a failure's message in [`ChainResult::notice`].
pub const NOTICE_REASON_CHARS: usize = 160;

/// A message in one line for an operator: the last line of a Python
/// traceback (the exception), else the first line; cut at
/// [`NOTICE_REASON_CHARS`] characters with an ellipsis.
fn gist(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = if message.contains("Traceback (most recent call last)") {
        lines.next_back()
    } else {
        lines.next()
    }
    .unwrap_or_default();
    match line.char_indices().nth(NOTICE_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// The tier of the [`PredictionChain`] that answered.
///
/// Serialized in `snake_case`: `primary`, `fallback`, `cache`.
///
/// ```
/// use spe_core::Tier;
/// assert_eq!(Tier::Fallback.to_string(), "fallback");
/// assert_eq!(serde_json::to_string(&Tier::Cache).unwrap(), "\"cache\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// The primary predictor (or, with none configured, the fallback model
    /// acting as the primary).
    Primary,
    /// The statistical fallback model.
    Fallback,
    /// The last good predictions from the cache.
    Cache,
}

impl Tier {
    /// The bare name: `primary`, `fallback` or `cache`.
    ///
    /// ```
    /// assert_eq!(spe_core::Tier::Primary.name(), "primary");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Tier::Primary => "primary",
            Tier::Fallback => "fallback",
            Tier::Cache => "cache",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why one tier gave nothing: which tier, which predictor, the kind of
/// incident it was journaled as, and the error.
///
/// ```
/// use spe_core::{IncidentKind, Tier, TierFailure};
/// let f = TierFailure {
///     tier: Tier::Primary,
///     predictor: "python3 analysis.py".into(),
///     kind: IncidentKind::ModelCrash,
///     message: "crashed (exit code 1)".into(),
/// };
/// assert_eq!(f.to_string(), "primary (python3 analysis.py) failed: crashed (exit code 1)");
/// assert_eq!(serde_json::to_value(&f).unwrap()["kind"], "model_crash");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierFailure {
    /// The tier.
    pub tier: Tier,
    /// The predictor's name (or the cache's description).
    pub predictor: String,
    /// The kind of incident it is.
    pub kind: IncidentKind,
    /// What went wrong.
    pub message: String,
}

impl TierFailure {
    pub(crate) fn new(tier: Tier, predictor: String, error: &PredictorError) -> Self {
        TierFailure {
            tier,
            predictor,
            kind: error.incident_kind(),
            message: error.to_string(),
        }
    }
}

impl std::fmt::Display for TierFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) failed: {}",
            self.tier, self.predictor, self.message
        )
    }
}

/// Predictions as cached and served: a validated [`Forecast`] on a time
/// axis, with when and by which tier it was made.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{Forecast, Predictions, Tier};
///
/// let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let p = Predictions {
///     start,
///     step_s: 3600,
///     forecast: Forecast::new("seasonal_naive", vec![1.0, 2.0], vec![]).unwrap(),
///     made_at: start,
///     tier: Tier::Fallback,
///     intervals_from: None,
///     inputs: spe_core::Provenance::Live,
/// };
/// assert_eq!(p.times()[1], Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap());
/// assert!(p.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predictions {
    /// The time of the first step.
    pub start: DateTime<Utc>,
    /// The time between steps, in seconds.
    pub step_s: u64,
    /// The forecast: mean, intervals, model name.
    pub forecast: Forecast,
    /// When the predictor answered (on the chain's clock).
    pub made_at: DateTime<Utc>,
    /// The tier that made them: `primary` or `fallback`.
    pub tier: Tier,
    /// When the primary gave no intervals at some requested level: the model
    /// whose interval half-widths were borrowed (the fallback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals_from: Option<String>,
    /// Where the history they were made from came from
    /// ([`PredictionRequest::inputs`]); predictions cached before this field
    /// existed read as [`Provenance::Live`].
    #[serde(default = "live")]
    pub inputs: Provenance,
}

fn live() -> Provenance {
    Provenance::Live
}

impl Predictions {
    /// The time of step `i` (from 0), if it is a step and representable.
    ///
    /// ```
    /// # use chrono::{TimeZone, Utc};
    /// # use spe_core::{Forecast, Predictions, Tier};
    /// # let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    /// # let p = Predictions { start, step_s: 900, forecast: Forecast::new("m", vec![1.0; 4], vec![]).unwrap(),
    /// #     made_at: start, tier: Tier::Primary, intervals_from: None, inputs: spe_core::Provenance::Live };
    /// assert_eq!(p.time(3), Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 45, 0).unwrap()));
    /// assert_eq!(p.time(4), None);
    /// ```
    pub fn time(&self, i: usize) -> Option<DateTime<Utc>> {
        if i >= self.forecast.horizon() {
            return None;
        }
        request::span(i, self.step_s).and_then(|d| self.start.checked_add_signed(d))
    }

    /// The time of every step.
    pub fn times(&self) -> Vec<DateTime<Utc>> {
        (0..self.forecast.horizon())
            .map_while(|i| self.time(i))
            .collect()
    }

    /// Check predictions read back from a cache: a step of at least 1 s, a
    /// valid forecast (finite values, intervals containing the mean), a time
    /// axis that fits in a date, and a tier of `primary` or `fallback`.
    ///
    /// # Errors
    ///
    /// What is wrong, as a sentence.
    pub fn validate(&self) -> Result<(), String> {
        if self.step_s == 0 {
            return Err("step_s is 0".into());
        }
        if self.tier == Tier::Cache {
            return Err("predictions cannot be made by the cache tier".into());
        }
        Forecast::new(
            self.forecast.model(),
            self.forecast.mean().to_vec(),
            self.forecast.intervals().to_vec(),
        )
        .map_err(|e| e.to_string())?;
        let last = self.forecast.horizon().saturating_sub(1);
        if self.forecast.horizon() > 0 && self.time(last).is_none() {
            return Err("the time axis does not fit in a date".into());
        }
        Ok(())
    }
}

/// What [`PredictionChain::generate`] answers: the predictions, the tier
/// that answered, and why the tiers above it failed.
///
/// ```
/// use std::time::Duration;
/// use chrono::{TimeZone, Utc};
/// use spe_core::{ChainResult, Forecast, Predictions, Provenance, Tier};
///
/// let made = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let predictions = Predictions { start: made, step_s: 3600,
///     forecast: Forecast::new("auto(ets)", vec![1.0], vec![]).unwrap(),
///     made_at: made, tier: Tier::Primary, intervals_from: None, inputs: spe_core::Provenance::Live };
/// let result = ChainResult { predictions, tier: Tier::Cache, failures: vec![] };
/// let now = made + chrono::Duration::hours(2);
/// assert_eq!(result.age(now), Duration::from_secs(7200));
/// assert_eq!(result.provenance(now), Provenance::Cached { age_s: 7200 });
/// let json = result.to_json(now);
/// assert_eq!(json["tier"], "cache");
/// assert_eq!(json["provenance"], "cached");
/// assert_eq!(json["time"][0], "2026-01-01T00:00:00Z");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainResult {
    /// The predictions.
    pub predictions: Predictions,
    /// The tier that answered.
    pub tier: Tier,
    /// Why the tiers above `tier` failed, in tier order (empty for `primary`,
    /// and for a result loaded from the cache when the chain was built).
    pub failures: Vec<TierFailure>,
}

impl ChainResult {
    /// How old the predictions are at `now` (zero if `now` is earlier).
    pub fn age(&self, now: DateTime<Utc>) -> Duration {
        now.signed_duration_since(self.predictions.made_at)
            .to_std()
            .unwrap_or(Duration::ZERO)
    }

    /// Where the predictions come from, as the module documentation's table
    /// says: `live` (primary), `fallback`, or `cached` with the age at `now`
    /// — except that primary predictions made from a history that was not
    /// live take the history's provenance (`synthetic` in estimation mode):
    /// they never pass for live ones. The history's provenance is always in
    /// [`Predictions::inputs`].
    ///
    /// ```
    /// # use chrono::Utc;
    /// use spe_core::{ChainResult, Forecast, Predictions, Provenance, Tier};
    ///
    /// let now = Utc::now();
    /// let predictions = Predictions { start: now, step_s: 3600,
    ///     forecast: Forecast::new("auto(mstl)", vec![1.0], vec![]).unwrap(),
    ///     made_at: now, tier: Tier::Primary, intervals_from: None,
    ///     inputs: Provenance::Synthetic };
    /// let r = ChainResult { predictions, tier: Tier::Primary, failures: vec![] };
    /// assert_eq!(r.provenance(now), Provenance::Synthetic);
    /// assert!(r.notice().unwrap().contains("estimated"));
    /// ```
    pub fn provenance(&self, now: DateTime<Utc>) -> Provenance {
        match self.tier {
            Tier::Primary => self.predictions.inputs,
            Tier::Fallback => Provenance::Fallback,
            Tier::Cache => Provenance::cached(self.age(now)),
        }
    }

    /// A sentence for the operator when the primary did not answer. It gives
    /// the first failure's gist (its first line, or a traceback's last, cut
    /// at [`NOTICE_REASON_CHARS`] characters); the whole messages are in
    /// [`failures`](Self::failures).
    ///
    /// ```
    /// # use chrono::Utc;
    /// # use spe_core::{ChainResult, Forecast, Predictions, Tier};
    /// # let p = Predictions { start: Utc::now(), step_s: 3600,
    /// #     forecast: Forecast::new("auto(ets)", vec![1.0], vec![]).unwrap(),
    /// #     made_at: Utc::now(), tier: Tier::Fallback, intervals_from: None, inputs: spe_core::Provenance::Live };
    /// let r = ChainResult { predictions: p, tier: Tier::Fallback, failures: vec![] };
    /// assert!(r.notice().unwrap().contains("statistical fallback"));
    /// ```
    pub fn notice(&self) -> Option<String> {
        let why = self
            .failures
            .first()
            .map(|f| format!(" ({})", gist(&f.message)))
            .unwrap_or_default();
        let tier = match self.tier {
            Tier::Primary => None,
            Tier::Fallback => Some(format!(
                "Primary prediction engine unavailable{why}: showing the statistical fallback ({}).",
                self.predictions.forecast.model()
            )),
            Tier::Cache => {
                let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
                let p = &self.predictions;
                // The cached predictions answered an earlier request: say
                // which hours they cover, which may end before the hours
                // asked for now.
                let until = p
                    .time(p.forecast.horizon().saturating_sub(1))
                    .map(|last| format!(", for {} to {}", rfc(p.start), rfc(last)))
                    .unwrap_or_default();
                Some(format!(
                    "Prediction engines unavailable{why}: showing the last good predictions, made at {}{until}.",
                    rfc(p.made_at)
                ))
            }
        };
        let inputs = match self.predictions.inputs {
            Provenance::Live => None,
            Provenance::Synthetic => Some(
                "Made from estimated (synthetic) history, not from live measurements.".to_owned(),
            ),
            other => Some(format!("Made from {} history.", other.name())),
        };
        match (tier, inputs) {
            (Some(t), Some(i)) => Some(format!("{t} {i}")),
            (t, i) => t.or(i),
        }
    }

    /// The result as the JSON the dashboard and `GET /api/predictions`
    /// serve: parallel arrays `time` (RFC 3339, UTC), `mean`,
    /// `lower_<L>`/`upper_<L>` for each level (`lower_80`, `upper_80`,
    /// `lower_95`, `upper_95`), and `model`, `tier`, `provenance`, `inputs`, `age_s`,
    /// `made_at`, `step_s`, `intervals_from`, `failures`, `notice`.
    pub fn to_json(&self, now: DateTime<Utc>) -> Value {
        let p = &self.predictions;
        let rfc = |t: DateTime<Utc>| Value::from(t.to_rfc3339_opts(SecondsFormat::Secs, true));
        let numbers = |v: &[f64]| {
            Value::Array(
                v.iter()
                    .map(|&x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number))
                    .collect(),
            )
        };
        let mut o = Map::new();
        o.insert(
            "time".into(),
            Value::Array(p.times().into_iter().map(rfc).collect()),
        );
        o.insert("mean".into(), numbers(p.forecast.mean()));
        for pi in p.forecast.intervals() {
            o.insert(schema::level_key("lower", pi.level), numbers(&pi.lower));
            o.insert(schema::level_key("upper", pi.level), numbers(&pi.upper));
        }
        o.insert("model".into(), p.forecast.model().into());
        o.insert("tier".into(), self.tier.name().into());
        o.insert("provenance".into(), self.provenance(now).name().into());
        o.insert("inputs".into(), p.inputs.name().into());
        o.insert("age_s".into(), self.age(now).as_secs().into());
        o.insert("made_at".into(), rfc(p.made_at));
        o.insert("step_s".into(), p.step_s.into());
        o.insert(
            "intervals_from".into(),
            p.intervals_from.clone().map_or(Value::Null, Value::from),
        );
        o.insert(
            "failures".into(),
            serde_json::to_value(&self.failures).unwrap_or(Value::Null),
        );
        o.insert(
            "notice".into(),
            self.notice().map_or(Value::Null, Value::from),
        );
        Value::Object(o)
    }
}
