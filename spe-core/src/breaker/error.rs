//! What a call through the breaker can end in, and how errors are classified.

use std::time::Duration;

use super::BreakerState;
use crate::source::{Fault, SourceError};

/// A call the breaker refused without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// The state that refused the call (`open`, `half_open` with every probe
    /// slot taken, or `forced_open`).
    pub state: BreakerState,
    /// When a call may be admitted again; `None` while forced open.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.retry_after {
            Some(d) => write!(
                f,
                "circuit {}: retry in {:.1} s",
                self.state.name(),
                d.as_secs_f64()
            ),
            None => write!(
                f,
                "circuit {}: calls refused until it is reset",
                self.state.name()
            ),
        }
    }
}

/// Why a call through a [`CircuitBreaker`](super::CircuitBreaker) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BreakerError<E> {
    /// The breaker refused the call; the operation was not run.
    #[error("{0}")]
    Rejected(Rejected),
    /// The call took longer than the breaker's call timeout (a failure).
    #[error("call timed out after {after:?}")]
    Timeout {
        /// The timeout that expired.
        after: Duration,
    },
    /// The operation itself failed.
    #[error(transparent)]
    Inner(E),
}

impl<E> BreakerError<E> {
    /// The operation's own error, if that is what this is.
    pub fn into_inner(self) -> Option<E> {
        match self {
            BreakerError::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the breaker refused the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, BreakerError::Rejected(_))
    }
}

/// How the breaker counts an operation's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// A failure of the protected dependency: counts towards tripping.
    Failure,
    /// Not the dependency's fault (a bad request, the caller's own
    /// cancellation): not recorded, and a probe permit is released.
    Ignore,
}

/// The default classification of an error type.
///
/// ```
/// use spe_core::{Classify, ErrorClass, SourceError};
///
/// let e = SourceError::Status { source_name: "open-meteo".into(), status: 503, reason: "down".into() };
/// assert_eq!(e.classify(), ErrorClass::Failure);
/// let e = SourceError::Status { source_name: "open-meteo".into(), status: 400, reason: "bad".into() };
/// assert_eq!(e.classify(), ErrorClass::Ignore);
/// ```
pub trait Classify {
    /// How the breaker counts this error (default: a failure).
    fn classify(&self) -> ErrorClass {
        ErrorClass::Failure
    }
}

/// Timeouts, connection errors, 5xx and bad bodies fail; 4xx and invalid
/// requests are the caller's fault and are ignored.
impl Classify for SourceError {
    fn classify(&self) -> ErrorClass {
        match self.fault() {
            Fault::Upstream => ErrorClass::Failure,
            _ => ErrorClass::Ignore,
        }
    }
}

/// I/O errors are failures, except an interrupted operation (the caller's own).
impl Classify for std::io::Error {
    fn classify(&self) -> ErrorClass {
        match self.kind() {
            std::io::ErrorKind::Interrupted => ErrorClass::Ignore,
            _ => ErrorClass::Failure,
        }
    }
}
