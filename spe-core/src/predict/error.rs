//! The errors of the prediction chain: why one predictor failed
//! ([`PredictorError`]) and why the chain had nothing to serve ([`ChainError`]).

use std::time::Duration;

use crate::forecast::ForecastError;
use crate::journal::IncidentKind;

use super::TierFailure;

/// Why one predictor (a tier of the [`PredictionChain`](super::PredictionChain))
/// gave no usable forecast.
///
/// Each variant maps to the [`IncidentKind`] it is journaled as
/// ([`incident_kind`](PredictorError::incident_kind)).
///
/// ```
/// use std::time::Duration;
/// use spe_core::{IncidentKind, PredictorError};
///
/// let e = PredictorError::TimedOut { after: Duration::from_millis(300) };
/// assert_eq!(e.incident_kind(), IncidentKind::ModelTimeout);
/// assert_eq!(e.to_string(), "no answer within 300 ms: stopped");
///
/// let e = PredictorError::bad_output("mean[3] is \"n/a\", not a number");
/// assert_eq!(e.incident_kind(), IncidentKind::ModelBadOutput);
///
/// let e = PredictorError::crashed("exit code 3", "Traceback ...\nValueError: boom");
/// assert_eq!(e.incident_kind(), IncidentKind::ModelCrash);
/// assert!(e.to_string().contains("ValueError: boom"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PredictorError {
    /// The predictor stopped abnormally: a non-zero exit status, a signal,
    /// an exception.
    #[error("crashed ({status}){}", tail_suffix(.stderr_tail))]
    Crashed {
        /// How it ended: `exit code 3`, `killed by signal 9`, `raised ValueError`.
        status: String,
        /// The exit code, when it exited with one.
        code: Option<i32>,
        /// The end of what it wrote to stderr (at most
        /// [`STDERR_TAIL_BYTES`](super::STDERR_TAIL_BYTES)), or a traceback.
        stderr_tail: String,
    },
    /// The predictor did not answer in time and was stopped (a child process
    /// and its process group are killed).
    #[error("no answer within {}: stopped", fmt_duration(*.after))]
    TimedOut {
        /// The timeout that expired.
        after: Duration,
    },
    /// The predictor answered, but its answer is unusable (not JSON, a
    /// missing or unknown key, a wrong number of values, a value that is not
    /// a finite number, a lower bound above its upper bound, …).
    #[error("unusable output: {reason}")]
    BadOutput {
        /// What is wrong, naming the key, the index and the value.
        reason: String,
    },
    /// The predictor could not be started (the program does not exist, is
    /// not executable, or was deleted).
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A Rust model could not be fitted or could not forecast.
    #[error(transparent)]
    Model(#[from] ForecastError),
    /// The predictor panicked (a Rust model or a Rust predictor); the panic
    /// was contained.
    #[error("panicked: {message}")]
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The predictor was not started: as many of its earlier calls as it
    /// may run at once are still running, past the timeout the chain gave
    /// them (a Rust fit or a Python call cannot be interrupted; see
    /// [`RunLimit`](super::RunLimit)).
    #[error("not started: {running} earlier call(s) still running past their timeout")]
    Busy {
        /// The calls still running.
        running: usize,
    },
}

fn tail_suffix(tail: &str) -> String {
    let tail = tail.trim();
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    }
}

/// `300 ms`, `5 s`, `1.500 s`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

impl PredictorError {
    /// A [`BadOutput`](PredictorError::BadOutput) error.
    ///
    /// ```
    /// let e = spe_core::PredictorError::bad_output("mean is missing");
    /// assert_eq!(e.to_string(), "unusable output: mean is missing");
    /// ```
    pub fn bad_output(reason: impl Into<String>) -> Self {
        PredictorError::BadOutput {
            reason: reason.into(),
        }
    }

    /// A [`Crashed`](PredictorError::Crashed) error without an exit code, e.g.
    /// for an exception raised by a Python callable.
    ///
    /// ```
    /// let e = spe_core::PredictorError::crashed("raised ValueError", "bad shape");
    /// assert_eq!(e.to_string(), "crashed (raised ValueError): bad shape");
    /// ```
    pub fn crashed(status: impl Into<String>, stderr_tail: impl Into<String>) -> Self {
        PredictorError::Crashed {
            status: status.into(),
            code: None,
            stderr_tail: stderr_tail.into(),
        }
    }

    /// The kind of incident this failure is journaled as: `model_crash`
    /// (crashed, panicked, could not start, the model failed), `model_timeout`
    /// (timed out, or busy with earlier calls that did), or
    /// `model_bad_output`.
    ///
    /// ```
    /// use spe_core::{ForecastError, IncidentKind, PredictorError};
    /// let e = PredictorError::from(ForecastError::invalid("horizon 0"));
    /// assert_eq!(e.incident_kind(), IncidentKind::ModelCrash);
    /// ```
    pub fn incident_kind(&self) -> IncidentKind {
        match self {
            PredictorError::TimedOut { .. } | PredictorError::Busy { .. } => {
                IncidentKind::ModelTimeout
            }
            PredictorError::BadOutput { .. } => IncidentKind::ModelBadOutput,
            PredictorError::Crashed { .. }
            | PredictorError::Spawn { .. }
            | PredictorError::Model(_)
            | PredictorError::Panicked { .. } => IncidentKind::ModelCrash,
        }
    }
}

/// Why [`PredictionChain::generate`](super::PredictionChain::generate) has
/// no predictions to give.
///
/// ```
/// use spe_core::ChainError;
/// let e = ChainError::InvalidRequest("horizon 0: nothing to forecast".into());
/// assert_eq!(e.to_string(), "invalid prediction request: horizon 0: nothing to forecast");
/// let e = ChainError::NoPredictions { failures: vec![] };
/// assert_eq!(e.to_string(), "no predictions: no cached predictions to fall back on");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// Every tier failed: the predictors (why is in `failures`, also
    /// journaled) and the cache (empty, or none configured). A server
    /// answers this with a 503 and a JSON body.
    #[error("no predictions: {}", describe(.failures))]
    NoPredictions {
        /// Why each predictor tier that was tried failed, in tier order.
        failures: Vec<TierFailure>,
    },
    /// The request is unusable (step, horizon, levels, periods, history,
    /// regressors); nothing was run.
    #[error("invalid prediction request: {0}")]
    InvalidRequest(String),
    /// The run stopped without a result (the runtime is shutting down).
    #[error("the prediction run was interrupted: {0}")]
    Interrupted(String),
}

fn describe(failures: &[TierFailure]) -> String {
    let mut parts: Vec<String> = failures.iter().map(ToString::to_string).collect();
    parts.push("no cached predictions to fall back on".into());
    parts.join("; ")
}

impl From<ForecastError> for ChainError {
    fn from(e: ForecastError) -> Self {
        ChainError::InvalidRequest(e.to_string())
    }
}
