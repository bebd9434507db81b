//! State changes and metrics.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls flow; outcomes are recorded.
    Closed,
    /// Calls are refused until the open wait has passed.
    Open,
    /// A bounded number of probes test the dependency.
    HalfOpen,
    /// Refused by the operator until reset.
    ForcedOpen,
    /// Pass-through: calls flow and nothing is recorded.
    Disabled,
}

impl BreakerState {
    /// The name used in JSON, metrics and on screen: `closed`, `open`,
    /// `half_open`, `forced_open`, `disabled`.
    pub fn name(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::Disabled => "disabled",
        }
    }

    /// Whether calls are refused in this state (half-open admits probes).
    pub fn refuses_calls(&self) -> bool {
        matches!(self, BreakerState::Open | BreakerState::ForcedOpen)
    }

    pub(crate) fn code(self) -> u64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
            BreakerState::ForcedOpen => 3,
            BreakerState::Disabled => 4,
        }
    }

    pub(crate) fn from_code(code: u64) -> Self {
        match code {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            3 => BreakerState::ForcedOpen,
            4 => BreakerState::Disabled,
            _ => BreakerState::Closed,
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransitionReason {
    /// The failure rate reached the threshold.
    FailureRate {
        /// Failure rate in the window (0–1).
        rate: f64,
        /// Calls in the window.
        calls: u32,
    },
    /// The slow-call rate reached the threshold.
    SlowCallRate {
        /// Slow-call rate in the window (0–1).
        rate: f64,
        /// Calls in the window.
        calls: u32,
    },
    /// The open wait passed; probes may go.
    OpenWaitElapsed,
    /// A probe failed.
    ProbeFailed,
    /// Every probe succeeded.
    ProbesSucceeded,
    /// [`force_open`](super::CircuitBreaker::force_open) was called.
    ForcedOpen,
    /// [`disable`](super::CircuitBreaker::disable) was called.
    Disabled,
    /// [`reset`](super::CircuitBreaker::reset) was called.
    Reset,
}

/// One state change. Exactly one is published per change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
    /// Why.
    pub reason: TransitionReason,
    /// Breaker clock time of the change.
    pub at: Duration,
    /// When the circuit opens: how long until a probe may go (jitter included).
    pub open_wait: Option<Duration>,
}

/// A snapshot of a breaker's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BreakerMetrics {
    /// Current state.
    pub state: BreakerState,
    /// Time since the last state change.
    pub time_in_state: Duration,
    /// Calls in the sliding window.
    pub window_calls: u32,
    /// Failed calls in the window.
    pub window_failures: u32,
    /// Slow calls in the window.
    pub window_slow_calls: u32,
    /// Failures ÷ calls in the window (0 when empty).
    pub failure_rate: f64,
    /// Slow calls ÷ calls in the window (0 when empty).
    pub slow_call_rate: f64,
    /// Calls refused since creation.
    pub rejected: u64,
    /// Calls that timed out since creation.
    pub timeouts: u64,
    /// Errors classified as not the dependency's fault since creation.
    pub ignored: u64,
    /// State changes since creation.
    pub transitions: u64,
    /// Failed probes since the circuit last closed (drives the backoff).
    pub open_attempt: u32,
    /// In the open state: time until a probe may go.
    pub retry_after: Option<Duration>,
}
