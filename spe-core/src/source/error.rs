//! The error every [`DataSource`](super::DataSource) returns.

use std::time::Duration;

use crate::series::SeriesError;

/// Whose fault a failed fetch is.
///
/// A circuit breaker counts [`Fault::Upstream`] errors as failures of the
/// upstream; [`Fault::Request`] errors are the caller's to fix and say nothing
/// about the upstream's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The upstream failed: 5xx, timeout, refused or reset connection,
    /// truncated or invalid body, implausible data.
    Upstream,
    /// The request was wrong: 4xx (including 429, too many requests), or an
    /// invalid window or configuration.
    Request,
}

/// Why a data source could not deliver a frame.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No complete answer within the timeout.
    #[error("{source_name}: no complete answer within {after:?}")]
    Timeout {
        /// The source.
        source_name: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The connection could not be made or was reset.
    #[error("{source_name}: connection failed: {message}")]
    Connect {
        /// The source.
        source_name: String,
        /// What the transport said.
        message: String,
    },
    /// The upstream answered with an HTTP error status.
    #[error("{source_name}: HTTP {status}: {reason}")]
    Status {
        /// The source.
        source_name: String,
        /// HTTP status code.
        status: u16,
        /// The upstream's `reason`, or the start of a non-JSON body.
        reason: String,
    },
    /// The body was cut off or could not be read to the end.
    #[error("{source_name}: body cut off or unreadable: {message}")]
    Truncated {
        /// The source.
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// The body is not the expected JSON shape.
    #[error("{source_name}: invalid body: {message}")]
    InvalidBody {
        /// The source.
        source_name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The body parsed, but its data is not weather: NaN, infinite or absurd
    /// values, a broken time axis, an unexpected unit.
    #[error("{source_name}: invalid data: {message}")]
    InvalidData {
        /// The source.
        source_name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The request itself is invalid (bad window, bad configuration).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The source has no data for the window asked (e.g. a replay that ends earlier).
    #[error("{source_name}: no data in the window asked: {message}")]
    NoData {
        /// The source.
        source_name: String,
        /// Detail.
        message: String,
    },
}

impl SourceError {
    /// Whose fault the error is.
    ///
    /// ```
    /// use spe_core::{Fault, SourceError};
    /// let e = SourceError::Status { source_name: "open-meteo".into(), status: 503, reason: "down".into() };
    /// assert_eq!(e.fault(), Fault::Upstream);
    /// let e = SourceError::Status { source_name: "open-meteo".into(), status: 429, reason: "slow down".into() };
    /// assert_eq!(e.fault(), Fault::Request);
    /// ```
    pub fn fault(&self) -> Fault {
        match self {
            SourceError::Status { status, .. } if (400..500).contains(status) => Fault::Request,
            SourceError::InvalidRequest(_) => Fault::Request,
            _ => Fault::Upstream,
        }
    }

    /// Whether the error is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SourceError::Timeout { .. })
    }

    /// The HTTP status, if the upstream answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            SourceError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn invalid_data(source_name: &str, err: SeriesError) -> Self {
        SourceError::InvalidData {
            source_name: source_name.to_owned(),
            message: err.to_string(),
        }
    }
}
