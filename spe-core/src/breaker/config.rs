//! The breaker's settings and their defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the breaker measures the recent failure rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SlidingWindow {
    /// The last `size` calls (1..=65535). No lock: the fast path.
    Count {
        /// Number of calls in the window.
        size: u32,
    },
    /// The calls that ended in the last `seconds` seconds (1..=3600),
    /// aggregated per second.
    Time {
        /// Length of the window, seconds.
        seconds: u32,
    },
}

/// Errors from an invalid [`BreakerConfig`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BreakerConfigError {
    /// A setting is out of its valid range.
    #[error("circuit breaker setting {name} = {value} is invalid: expected {expected}")]
    Invalid {
        /// Setting name.
        name: &'static str,
        /// The value given, as text.
        value: String,
        /// What is expected.
        expected: &'static str,
    },
}

/// The circuit breaker's settings.
///
/// # Defaults, and why
///
/// The defaults are chosen for SP-E's main use: a weather API polled every
/// few minutes, with a synthetic generator behind it. Peers' defaults are made
/// for services called many times a second — resilience4j trips at a 50 %
/// failure rate over the last 100 calls and stays open 60 s; Polly trips at
/// 10 % over a 30 s window (at least 100 calls) and breaks for 5 s. At one
/// call every 5 minutes, a 100-call window would take 8 hours to fill and a
/// 30 s window would never hold two calls. So:
///
/// | setting | default | why |
/// |---|---|---|
/// | `window` | last 10 calls | about an hour of polling: long enough to see a trend, short enough to forget an old outage |
/// | `minimum_calls` | 2 | the rate is judged from the second call on, so two failures in a row after a start or a recovery are an outage at once. One of those first two calls failing is half of them and trips too (a cheap mistake at one call every few minutes: the fallback serves, and a probe follows 30 s later); from the third call on, one failure alone never trips. (A count window smaller than this needs only its size.) |
/// | `failure_rate` | 0.5 | half the recent calls failing: the upstream is unreliable |
/// | `slow_call_duration` | 3 s | well above Open-Meteo's usual sub-second answers, below the 5 s timeout |
/// | `slow_call_rate` | 0.8 | slow but working answers trip only when nearly all are slow |
/// | `call_timeout` | 5 s | the continuity plan: a call over 5000 ms is an incident |
/// | `open_wait` | 30 s | retry soon: the fallback is always there, so probing costs little |
/// | `max_open_wait` | 10 min | backoff ×2 per failed probe, capped so recovery is seen within minutes (at most [`MAX_OPEN_WAIT`](Self::MAX_OPEN_WAIT), one day) |
/// | `jitter` | 0.1 | ±10 % on the wait, so a fleet of dashboards does not probe in step (the cap still holds: at the cap, it only shortens the wait) |
/// | `half_open_probes` | 1 | one probe at a time; its success closes the circuit |
///
/// ```
/// use std::time::Duration;
/// use spe_core::{BreakerConfig, SlidingWindow};
///
/// let config = BreakerConfig {
///     window: SlidingWindow::Time { seconds: 60 },
///     open_wait: Duration::from_secs(5),
///     ..BreakerConfig::default()
/// };
/// config.validate().unwrap();
/// assert!(BreakerConfig { failure_rate: 1.5, ..config }.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakerConfig {
    /// The sliding window over which rates are measured.
    pub window: SlidingWindow,
    /// Calls needed in the window before the breaker may trip.
    ///
    /// With a [`SlidingWindow::Count`] window smaller than this, the window's
    /// size is the minimum instead (as in resilience4j): a window of `size`
    /// calls never holds more, and would otherwise never trip.
    pub minimum_calls: u32,
    /// Failure rate (0–1] at or above which the breaker trips.
    pub failure_rate: f64,
    /// A call lasting at least this long is slow.
    #[serde(with = "millis")]
    pub slow_call_duration: Duration,
    /// Slow-call rate (0–1] at or above which the breaker trips.
    pub slow_call_rate: f64,
    /// Timeout of each call, enforced inside the breaker (a timeout is a
    /// failure). `None`: no timeout.
    #[serde(with = "opt_millis")]
    pub call_timeout: Option<Duration>,
    /// First wait in the open state before a probe.
    #[serde(with = "millis")]
    pub open_wait: Duration,
    /// Growth of the open wait after each failed probe.
    pub backoff_multiplier: f64,
    /// Cap of the open wait, jitter included; at most
    /// [`MAX_OPEN_WAIT`](Self::MAX_OPEN_WAIT) (one day).
    #[serde(with = "millis")]
    pub max_open_wait: Duration,
    /// Random spread of the open wait, as a fraction (0.1 = ±10 %), applied
    /// before the cap: at `max_open_wait`, the jitter only shortens the wait.
    pub jitter: f64,
    /// Probes admitted at once in the half-open state; that many successes close the circuit.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: SlidingWindow::Count { size: 10 },
            minimum_calls: 2,
            failure_rate: 0.5,
            slow_call_duration: Duration::from_secs(3),
            slow_call_rate: 0.8,
            call_timeout: Some(Duration::from_millis(5000)),
            open_wait: Duration::from_secs(30),
            backoff_multiplier: 2.0,
            max_open_wait: Duration::from_secs(600),
            jitter: 0.1,
            half_open_probes: 1,
        }
    }
}

fn invalid(name: &'static str, value: impl ToString, expected: &'static str) -> BreakerConfigError {
    BreakerConfigError::Invalid {
        name,
        value: value.to_string(),
        expected,
    }
}

impl BreakerConfig {
    /// The largest `max_open_wait` (and so `open_wait`) accepted: one day.
    /// A circuit that should stay open longer is an operator's decision:
    /// [`force_open`](super::CircuitBreaker::force_open).
    pub const MAX_OPEN_WAIT: Duration = Duration::from_secs(86_400);

    /// Check every setting.
    pub fn validate(&self) -> Result<(), BreakerConfigError> {
        match self.window {
            SlidingWindow::Count { size } if !(1..=65_535).contains(&size) => {
                return Err(invalid("window.size", size, "1..=65535 calls"));
            }
            SlidingWindow::Time { seconds } if !(1..=3600).contains(&seconds) => {
                return Err(invalid("window.seconds", seconds, "1..=3600 seconds"));
            }
            _ => {}
        }
        if self.minimum_calls == 0 || self.minimum_calls > 65_535 {
            return Err(invalid("minimum_calls", self.minimum_calls, "1..=65535"));
        }
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Err(invalid(
                "failure_rate",
                self.failure_rate,
                "a rate in (0, 1]",
            ));
        }
        if !(self.slow_call_rate > 0.0 && self.slow_call_rate <= 1.0) {
            return Err(invalid(
                "slow_call_rate",
                self.slow_call_rate,
                "a rate in (0, 1]",
            ));
        }
        if self.slow_call_duration.is_zero() {
            return Err(invalid("slow_call_duration", "0", "a positive duration"));
        }
        if self.call_timeout.is_some_and(|t| t.is_zero()) {
            return Err(invalid("call_timeout", "0", "a positive duration or none"));
        }
        if self.max_open_wait > Self::MAX_OPEN_WAIT {
            return Err(invalid(
                "max_open_wait",
                format!("{:?}", self.max_open_wait),
                "at most one day (86400 s)",
            ));
        }
        if self.open_wait.is_zero() || self.open_wait > self.max_open_wait {
            return Err(invalid(
                "open_wait",
                format!("{:?}", self.open_wait),
                "positive and at most max_open_wait",
            ));
        }
        if !(self.backoff_multiplier >= 1.0 && self.backoff_multiplier <= 100.0) {
            return Err(invalid(
                "backoff_multiplier",
                self.backoff_multiplier,
                "1..=100",
            ));
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            return Err(invalid("jitter", self.jitter, "0..=0.5"));
        }
        if !(1..=1000).contains(&self.half_open_probes) {
            return Err(invalid(
                "half_open_probes",
                self.half_open_probes,
                "1..=1000",
            ));
        }
        Ok(())
    }

    /// The open wait before the probe after `attempt` failed probes (0 for
    /// the first opening), before jitter: `open_wait × multiplier^attempt`,
    /// capped at `max_open_wait`. Never panics, even on settings that do not
    /// [`validate`](Self::validate).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = self.backoff_multiplier.powi(attempt.min(64) as i32);
        let wait = self.open_wait.as_secs_f64() * factor;
        if wait >= self.max_open_wait.as_secs_f64() {
            return self.max_open_wait;
        }
        // Only a multiplier out of range (negative, NaN) fails here.
        Duration::try_from_secs_f64(wait).unwrap_or(self.max_open_wait)
    }

    /// The open wait after `attempt` failed probes with the jitter drawn as
    /// `u` (in `[0, 1)`): the [`backoff`](Self::backoff) spread by
    /// `±jitter`, then capped at `max_open_wait`. Saturating: no setting or
    /// draw makes it panic or exceed the cap.
    pub(crate) fn open_wait_for(&self, attempt: u32, u: f64) -> Duration {
        let wait = self.backoff(attempt);
        if self.jitter == 0.0 {
            return wait;
        }
        let factor = 1.0 + self.jitter * (2.0 * u - 1.0);
        // Out of range (an invalid jitter, an overflow): no spread.
        Duration::try_from_secs_f64(wait.as_secs_f64() * factor)
            .unwrap_or(wait)
            .min(self.max_open_wait)
    }

    /// The calls the window must hold before the breaker may trip:
    /// `minimum_calls`, or a count window's size if smaller.
    pub(crate) fn effective_minimum_calls(&self) -> u32 {
        match self.window {
            SlidingWindow::Count { size } => self.minimum_calls.min(size),
            SlidingWindow::Time { .. } => self.minimum_calls,
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let c = BreakerConfig::default();
        assert_eq!(c.backoff(0), Duration::from_secs(30));
        assert_eq!(c.backoff(1), Duration::from_secs(60));
        assert_eq!(c.backoff(3), Duration::from_secs(240));
        assert_eq!(c.backoff(5), Duration::from_secs(600));
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(600));
    }

    #[test]
    fn defaults_validate_and_json_uses_milliseconds() {
        let c = BreakerConfig::default();
        c.validate().unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["call_timeout"], 5000);
        assert_eq!(json["window"]["count"]["size"], 10);
        let back: BreakerConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
        let partial: BreakerConfig = serde_json::from_str(r#"{"call_timeout": null}"#).unwrap();
        assert_eq!(partial.call_timeout, None);
    }

    #[test]
    fn rejects_bad_settings() {
        let bad = [
            BreakerConfig {
                window: SlidingWindow::Count { size: 0 },
                ..Default::default()
            },
            BreakerConfig {
                window: SlidingWindow::Time { seconds: 0 },
                ..Default::default()
            },
            BreakerConfig {
                minimum_calls: 0,
                ..Default::default()
            },
            BreakerConfig {
                failure_rate: f64::NAN,
                ..Default::default()
            },
            BreakerConfig {
                slow_call_rate: 0.0,
                ..Default::default()
            },
            BreakerConfig {
                call_timeout: Some(Duration::ZERO),
                ..Default::default()
            },
            BreakerConfig {
                open_wait: Duration::from_secs(601),
                ..Default::default()
            },
            BreakerConfig {
                jitter: 0.9,
                ..Default::default()
            },
            BreakerConfig {
                half_open_probes: 0,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
