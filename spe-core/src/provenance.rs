//! Where a value comes from, and the mode of the service that handed it out.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a value handed out by SP-E comes from.
///
/// Every frame and forecast carries one, so a dashboard can always say whether
/// the operator is looking at live data or at an estimate.
///
/// Serialized as an internally tagged object, e.g. `{"kind":"live"}` or
/// `{"kind":"cached","age_s":120}`; [`Provenance::name`] gives the bare name
/// (`live`, `synthetic`, `cached`, `fallback`) used in flat JSON and on screen.
///
/// ```
/// use spe_core::Provenance;
/// use std::time::Duration;
///
/// let p = Provenance::cached(Duration::from_secs(90));
/// assert_eq!(p.name(), "cached");
/// assert_eq!(p.cached_age(), Some(Duration::from_secs(90)));
/// assert!(!p.is_live());
/// assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"kind":"cached","age_s":90}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Provenance {
    /// Fresh from the real upstream (Open-Meteo, a meter, a replayed recording).
    Live,
    /// Produced by the local synthetic generator (estimation mode).
    Synthetic,
    /// A last good value kept in a cache; `age_s` is how old it was when handed out.
    Cached {
        /// Age in whole seconds at the moment the value was handed out.
        age_s: u64,
    },
    /// Produced by a statistical fallback model because the primary was unavailable.
    Fallback,
}

impl Provenance {
    /// A cached provenance of the given age (rounded down to whole seconds).
    pub fn cached(age: Duration) -> Self {
        Provenance::Cached {
            age_s: age.as_secs(),
        }
    }

    /// The bare name: `live`, `synthetic`, `cached` or `fallback`.
    pub fn name(&self) -> &'static str {
        match self {
            Provenance::Live => "live",
            Provenance::Synthetic => "synthetic",
            Provenance::Cached { .. } => "cached",
            Provenance::Fallback => "fallback",
        }
    }

    /// How real a value of this provenance is: `live` 2, `cached` 1 (a
    /// live value kept), `synthetic` and `fallback` 0 (estimates). Where two
    /// values of one quantity compete, the higher rank is kept (the history
    /// store, the forecasts' history).
    ///
    /// ```
    /// use spe_core::Provenance;
    /// assert!(Provenance::Live.rank() > Provenance::cached(std::time::Duration::ZERO).rank());
    /// assert_eq!(Provenance::Synthetic.rank(), Provenance::Fallback.rank());
    /// ```
    pub fn rank(&self) -> u8 {
        match self {
            Provenance::Live => 2,
            Provenance::Cached { .. } => 1,
            Provenance::Synthetic | Provenance::Fallback => 0,
        }
    }

    /// Whether the value comes straight from the live upstream.
    pub fn is_live(&self) -> bool {
        matches!(self, Provenance::Live)
    }

    /// The age of a cached value, `None` for any other provenance.
    pub fn cached_age(&self) -> Option<Duration> {
        match self {
            Provenance::Cached { age_s } => Some(Duration::from_secs(*age_s)),
            _ => None,
        }
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provenance::Cached { age_s } => write!(f, "cached ({age_s} s old)"),
            other => f.write_str(other.name()),
        }
    }
}

/// The operating mode of a data service.
///
/// `nominal` when live data flows; `estimation` when the dashboard shows
/// simulated (synthetic) data because the live source is unavailable.
///
/// ```
/// use spe_core::Mode;
/// assert_eq!(serde_json::to_string(&Mode::Estimation).unwrap(), "\"estimation\"");
/// assert_eq!("nominal".parse::<Mode>().unwrap(), Mode::Nominal);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mode {
    /// Live data flows from the primary source.
    Nominal,
    /// The primary source is unavailable; values are estimated.
    Estimation,
}

impl Mode {
    /// The bare name: `nominal` or `estimation`.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Nominal => "nominal",
            Mode::Estimation => "estimation",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error returned when parsing an unknown [`Mode`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode {0:?}: expected \"nominal\" or \"estimation\"")]
pub struct ParseModeError(String);

impl std::str::FromStr for Mode {
    type Err = ParseModeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nominal" => Ok(Mode::Nominal),
            "estimation" => Ok(Mode::Estimation),
            other => Err(ParseModeError(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_round_trips_through_json() {
        for p in [
            Provenance::Live,
            Provenance::Synthetic,
            Provenance::Fallback,
            Provenance::Cached { age_s: 3600 },
        ] {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Provenance>(&json).unwrap(), p);
            assert!(json.contains(p.name()));
        }
    }

    #[test]
    fn mode_rejects_unknown_names() {
        assert!("degraded".parse::<Mode>().is_err());
        assert_eq!(Mode::Estimation.to_string(), "estimation");
    }
}
