//! The exceptions `spe` raises, and how Rust errors become them.
//!
//! One hierarchy, rooted at `spe.SpeError`. Exceptions about bad arguments
//! also derive from the matching built-in (`ConfigError` is a `ValueError`), so
//! `except ValueError` keeps working for callers that know nothing of SP-E:
//!
//! ```text
//! SpeError(Exception)
//! ├── ConfigError(SpeError, ValueError)        bad argument or setting
//! │   └── ForecastInputError(ForecastError, ConfigError)
//! ├── ForecastError(SpeError)                  a model failed; no tier answered
//! ├── CircuitOpenError(SpeError)               .retry_after_s, .state
//! ├── UpstreamError(SpeError)                  .status, .fault
//! │   └── CallTimeoutError(UpstreamError, TimeoutError)   .timeout_s
//! ├── CacheError(SpeError, OSError)            a cache that cannot be used
//! │   └── CacheCorruptError(CacheError)
//! ├── JournalError(SpeError, OSError)
//! └── StoreError(SpeError, OSError)            the history store
//!     └── StoreCorruptError(StoreError)
//! ```
//!
//! The classes are created once per process, when the module is first
//! imported, with `__module__ = "spe"` so tracebacks and pickles name them as
//! users import them. Adding one means: a variant of [`SpeException`], its
//! line in `SpeException::spec`, its stub in `python/spe/_spe.pyi`, and the
//! mapping of the Rust errors that raise it in [`Error`].

use std::fmt;

use pyo3::exceptions::{PyException, PyOSError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFloat, PyString, PyTuple, PyType};

use spe_core::{
    BreakerConfigError, CacheError, CalibrationError, ConfigError as SynthConfigError,
    DEFAULT_MAX_GAP, FailoverError, Fault, ForecastError, JournalError, MIN_CALIBRATION_HOURS,
    Rejected, SeriesError, SiteError, SourceError, StoreError, UnknownCountry,
};

/// The module the exception classes say they belong to.
const PUBLIC_MODULE: &str = "spe";

/// An exception class of `spe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeException {
    /// `spe.SpeError(Exception)`: the base of every SP-E exception.
    SpeError,
    /// `spe.ConfigError(SpeError, ValueError)`: an invalid argument or setting.
    ConfigError,
    /// `spe.ForecastError(SpeError)`: a model could not be fitted or could not forecast.
    ForecastError,
    /// `spe.ForecastInputError(ForecastError, ConfigError)`: the series or a
    /// forecasting argument cannot be used as given (too short, NaN gaps too
    /// long, bad horizon or level, missing regressors).
    ForecastInputError,
    /// `spe.CircuitOpenError(SpeError)`: a circuit breaker refused the call.
    CircuitOpenError,
    /// `spe.UpstreamError(SpeError)`: an upstream (the weather API) failed.
    UpstreamError,
    /// `spe.CallTimeoutError(UpstreamError, TimeoutError)`: a call ran past its timeout.
    CallTimeoutError,
    /// `spe.CacheError(SpeError, OSError)`: a cache cannot be opened or written.
    CacheError,
    /// `spe.CacheCorruptError(CacheError)`: a cache file is corrupt.
    CacheCorruptError,
    /// `spe.JournalError(SpeError, OSError)`: the incident journal cannot be used.
    JournalError,
    /// `spe.StoreError(SpeError, OSError)`: the history store cannot be used.
    StoreError,
    /// `spe.StoreCorruptError(StoreError)`: the history database is damaged.
    StoreCorruptError,
}

/// How to build one exception class.
struct Spec {
    name: &'static str,
    /// The SP-E parents (the first is the primary one; empty only for the root).
    parents: &'static [SpeException],
    /// A built-in base besides the SP-E parents, e.g. `ValueError`.
    builtin: Option<fn(Python<'_>) -> Bound<'_, PyType>>,
    doc: &'static str,
}

const COUNT: usize = SpeException::ALL.len();

/// The class objects, created on first use (parents before children).
static TYPES: [PyOnceLock<Py<PyType>>; COUNT] = [const { PyOnceLock::new() }; COUNT];

impl SpeException {
    /// Every class, parents before their children.
    pub const ALL: [SpeException; 12] = [
        SpeException::SpeError,
        SpeException::ConfigError,
        SpeException::ForecastError,
        SpeException::ForecastInputError,
        SpeException::CircuitOpenError,
        SpeException::UpstreamError,
        SpeException::CallTimeoutError,
        SpeException::CacheError,
        SpeException::CacheCorruptError,
        SpeException::JournalError,
        SpeException::StoreError,
        SpeException::StoreCorruptError,
    ];

    fn spec(self) -> Spec {
        use SpeException as E;
        match self {
            E::SpeError => Spec {
                name: "SpeError",
                parents: &[],
                builtin: Some(|py| py.get_type::<PyException>()),
                doc: "Base class of every exception SP-E raises.",
            },
            E::ConfigError => Spec {
                name: "ConfigError",
                parents: &[E::SpeError],
                builtin: Some(|py| py.get_type::<PyValueError>()),
                doc: "An invalid argument or setting: the message says which one and how to fix it.\n\n\
                      Also a ``ValueError``.",
            },
            E::ForecastError => Spec {
                name: "ForecastError",
                parents: &[E::SpeError],
                builtin: None,
                doc: "A model could not be fitted or could not forecast.\n\n\
                      Bad input raises the subclass ``ForecastInputError`` (also a ``ValueError``); \
                      what remains is a model failing on valid data (e.g. a singular regression).",
            },
            E::ForecastInputError => Spec {
                name: "ForecastInputError",
                parents: &[E::ForecastError, E::ConfigError],
                builtin: None,
                doc: "The series or a forecasting argument cannot be used as given: too short \
                      for the model, a gap of missing values too long to fill, values beyond \
                      ±1e306 (rescale the series), a bad horizon, level or season length, \
                      missing regressors.\n\n\
                      Both a ``ForecastError`` and a ``ConfigError`` (so a ``ValueError``).",
            },
            E::CircuitOpenError => Spec {
                name: "CircuitOpenError",
                parents: &[E::SpeError],
                builtin: None,
                doc: "A circuit breaker refused the call without running it.\n\n\
                      ``retry_after_s`` is the time in seconds until the breaker lets a probe \
                      through (``None`` while forced open); ``state`` is the state that refused \
                      the call (``\"open\"``, ``\"half_open\"`` or ``\"forced_open\"``).",
            },
            E::UpstreamError => Spec {
                name: "UpstreamError",
                parents: &[E::SpeError],
                builtin: None,
                doc: "An upstream (the weather API) failed: no answer, HTTP error, bad body.\n\n\
                      ``status`` is the HTTP status if the upstream answered with one (else \
                      ``None``); ``fault`` is ``\"upstream\"`` (5xx, timeout, bad data) or \
                      ``\"request\"`` (4xx: the request was wrong). Both are ``None`` on an \
                      ``UpstreamError`` SP-E did not raise (one built by hand).",
            },
            E::CallTimeoutError => Spec {
                name: "CallTimeoutError",
                parents: &[E::UpstreamError],
                builtin: Some(|py| py.get_type::<PyTimeoutError>()),
                doc: "A call ran past its timeout (``timeout_s``) and was abandoned.\n\n\
                      Also a ``TimeoutError``.",
            },
            E::CacheError => Spec {
                name: "CacheError",
                parents: &[E::SpeError],
                builtin: Some(|py| py.get_type::<PyOSError>()),
                doc: "A cache (a ``ResilientForecaster``'s ``cache_dir``) cannot be opened, read \
                      or written: I/O error, a path that is not a directory, a ``cache_dir`` \
                      another process has open.\n\n\
                      Also an ``OSError``.",
            },
            E::CacheCorruptError => Spec {
                name: "CacheCorruptError",
                parents: &[E::CacheError],
                builtin: None,
                doc: "A cache file is corrupt (bad checksum, truncated, unknown format); \
                      SP-E quarantines such files and serves an older generation when it can.",
            },
            E::JournalError => Spec {
                name: "JournalError",
                parents: &[E::SpeError],
                builtin: Some(|py| py.get_type::<PyOSError>()),
                doc: "The incident journal cannot be opened, read or written (I/O error, not \
                      a journal file, unsupported version, already open in this process).\n\n\
                      Also an ``OSError``.",
            },
            E::StoreError => Spec {
                name: "StoreError",
                parents: &[E::SpeError],
                builtin: Some(|py| py.get_type::<PyOSError>()),
                doc: "The history store cannot be opened, read or written (I/O error, disk full, \
                      another application's database, a newer schema).\n\n\
                      Also an ``OSError``.",
            },
            E::StoreCorruptError => Spec {
                name: "StoreCorruptError",
                parents: &[E::StoreError],
                builtin: None,
                doc: "The history database was found damaged while in use. Call \
                      ``store.recover()`` to quarantine it and restore the newest sound \
                      backup (opening the store does this by itself).",
            },
        }
    }

    /// The Python name of the class (without the module).
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The class object.
    pub fn type_object(self, py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
        TYPES[self as usize]
            .get_or_try_init(py, || self.create(py))
            .map(|t| t.bind(py))
    }

    fn create(self, py: Python<'_>) -> PyResult<Py<PyType>> {
        let spec = self.spec();
        let mut bases = Vec::with_capacity(3);
        for parent in spec.parents {
            bases.push(parent.type_object(py)?.clone());
        }
        if let Some(builtin) = spec.builtin {
            bases.push(builtin(py));
        }
        let namespace = PyDict::new(py);
        namespace.set_item("__module__", PUBLIC_MODULE)?;
        namespace.set_item("__qualname__", spec.name)?;
        namespace.set_item("__doc__", spec.doc)?;
        // Every UpstreamError has `status` and `fault`, if only None (one
        // raised by hand, e.g. in a test double).
        if self == SpeException::UpstreamError {
            namespace.set_item("status", py.None())?;
            namespace.set_item("fault", py.None())?;
        }
        // `type(name, bases, namespace)`: unlike `create_exception!`, this
        // allows several bases (SP-E parents and a built-in).
        let class =
            py.get_type::<PyType>()
                .call1((spec.name, PyTuple::new(py, bases)?, namespace))?;
        Ok(class.cast_into::<PyType>()?.unbind())
    }

    /// A Python exception of this class with `message`.
    pub fn new_err(self, py: Python<'_>, message: impl Into<String>) -> PyErr {
        match self.type_object(py) {
            Ok(class) => PyErr::from_type(class.clone(), message.into()),
            Err(e) => e,
        }
    }

    /// A Python exception of this class with `message` and attributes.
    pub fn new_err_with(
        self,
        py: Python<'_>,
        message: impl Into<String>,
        attributes: &[(&str, Bound<'_, PyAny>)],
    ) -> PyErr {
        let build = || -> PyResult<PyErr> {
            let value = self.type_object(py)?.call1((message.into(),))?;
            for (name, v) in attributes {
                value.setattr(*name, v)?;
            }
            Ok(PyErr::from_value(value))
        };
        build().unwrap_or_else(|e| e)
    }
}

/// Add every exception class to `module`.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    for exc in SpeException::ALL {
        module.add(exc.name(), exc.type_object(py)?)?;
    }
    Ok(())
}

/// An error of the binding or of spe-core, on its way to Python.
///
/// Functions return `Result<T, Error>` (or `PyResult<T>` and use `?`): the
/// conversion to `PyErr` picks the exception class (variant by variant, see
/// [`Error::exception`]), the message (what was wrong and how to fix it) and
/// the exception's attributes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A bad argument detected by the binding itself; the message says how to fix it.
    Config(String),
    /// An invalid site.
    Site(SiteError),
    /// An unknown holiday calendar.
    Country(UnknownCountry),
    /// An invalid time axis or frame.
    Series(SeriesError),
    /// A forecasting error; `context` says which series or argument (may be empty).
    Forecast {
        /// Where it happened, e.g. `"series 3"`; empty for a single series.
        context: String,
        /// The error.
        error: ForecastError,
    },
    /// Invalid circuit breaker settings.
    BreakerConfig(BreakerConfigError),
    /// A circuit breaker refused a call.
    Rejected(Rejected),
    /// A call ran past its timeout.
    Timeout {
        /// What timed out.
        what: String,
        /// The timeout, seconds.
        after_s: f64,
    },
    /// A data source failed.
    Source(SourceError),
    /// Invalid failover settings.
    Failover(FailoverError),
    /// The incident journal failed.
    Journal(JournalError),
    /// A cache could not be opened or written.
    Cache(CacheError),
    /// A corrupt cache file.
    CacheCorrupt(String),
    /// The history store failed.
    Store(StoreError),
    /// Calibration of the generator failed.
    Calibration(CalibrationError),
    /// Invalid generator parameters.
    SynthConfig(SynthConfigError),
}

impl Error {
    /// A [`Error::Config`] with `message`.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }

    /// A [`Error::Forecast`] about `context` (e.g. `"series 3"`).
    pub fn forecast(context: impl Into<String>, error: ForecastError) -> Self {
        Error::Forecast {
            context: context.into(),
            error,
        }
    }

    /// The class the error is raised as.
    pub fn exception(&self) -> SpeException {
        use SpeException as E;
        match self {
            Error::Config(_)
            | Error::Site(_)
            | Error::Country(_)
            | Error::Series(_)
            | Error::BreakerConfig(_)
            | Error::Failover(_)
            | Error::Calibration(_)
            | Error::SynthConfig(_) => E::ConfigError,
            Error::Forecast { error, .. } => match error {
                ForecastError::FitFailed { .. } => E::ForecastError,
                ForecastError::TooShort { .. }
                | ForecastError::NonFinite { .. }
                | ForecastError::GapTooLong { .. }
                | ForecastError::MissingTail(_)
                | ForecastError::InvalidArgument(_)
                | ForecastError::MissingRegressors(_) => E::ForecastInputError,
                _ => E::ForecastError,
            },
            Error::Rejected(_) => E::CircuitOpenError,
            Error::Timeout { .. } => E::CallTimeoutError,
            Error::Source(e) => match e {
                SourceError::InvalidRequest(_) => E::ConfigError,
                SourceError::Timeout { .. } => E::CallTimeoutError,
                _ => E::UpstreamError,
            },
            Error::Journal(_) => E::JournalError,
            Error::Cache(e) => match e {
                CacheError::InvalidName { .. } | CacheError::InvalidConfig(_) => E::ConfigError,
                _ => E::CacheError,
            },
            Error::CacheCorrupt(_) => E::CacheCorruptError,
            Error::Store(e) => match e {
                StoreError::InvalidValue { .. } | StoreError::InvalidConfig(_) => E::ConfigError,
                StoreError::Corrupt { .. } => E::StoreCorruptError,
                _ => E::StoreError,
            },
        }
    }

    /// The attributes the exception carries (`retry_after_s`, `status`, …).
    fn attributes<'py>(&self, py: Python<'py>) -> PyResult<Vec<(&'static str, Bound<'py, PyAny>)>> {
        let none = || py.None().into_bound(py);
        Ok(match self {
            Error::Rejected(r) => vec![
                (
                    "retry_after_s",
                    match r.retry_after {
                        Some(d) => PyFloat::new(py, d.as_secs_f64()).into_any(),
                        None => none(),
                    },
                ),
                ("state", PyString::new(py, r.state.name()).into_any()),
            ],
            // A call that did not answer in time: the upstream's fault, no status.
            Error::Timeout { after_s, .. } => vec![
                ("status", none()),
                ("fault", PyString::new(py, "upstream").into_any()),
                ("timeout_s", PyFloat::new(py, *after_s).into_any()),
            ],
            Error::Source(e) => {
                let status = match e.status() {
                    Some(s) => s.into_pyobject(py)?.into_any(),
                    None => none(),
                };
                let fault = match e.fault() {
                    Fault::Request => "request",
                    _ => "upstream",
                };
                let mut attrs = vec![
                    ("status", status),
                    ("fault", PyString::new(py, fault).into_any()),
                ];
                if let SourceError::Timeout { after, .. } = e {
                    attrs.push((
                        "timeout_s",
                        PyFloat::new(py, after.as_secs_f64()).into_any(),
                    ));
                }
                attrs
            }
            _ => Vec::new(),
        })
    }
}

/// The forecasting message: what was wrong, and how to fix it.
fn forecast_message(f: &mut fmt::Formatter<'_>, error: &ForecastError) -> fmt::Result {
    match error {
        ForecastError::TooShort { model, needed, got } => write!(
            f,
            "{model} needs at least {needed} observations, got {got}: pass a longer history, \
             fewer folds or a shorter horizon, or a model that needs less \
             (model=\"naive\" needs 2, \"seasonal_naive\" one season plus one)"
        ),
        ForecastError::NonFinite { index, value } => write!(
            f,
            "value at index {index} is {value}, not a finite number: in a series to forecast, \
             NaN marks a missing value (gaps of up to {DEFAULT_MAX_GAP} are interpolated) and \
             infinities must be replaced; regressors and forecasts must be finite"
        ),
        ForecastError::GapTooLong { start, len, max } => write!(
            f,
            "{len} consecutive missing values (NaN) from index {start}: at most {max} are \
             interpolated; fill the gap yourself or start the series after it"
        ),
        ForecastError::MissingTail(n) => write!(
            f,
            "the last {n} values are missing (NaN): cut them off (y[:-{n}]) so the forecast \
             starts where the data ends"
        ),
        ForecastError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
        ForecastError::MissingRegressors(m) => write!(
            f,
            "{m}: the weather regression (model=\"regression\", or \"auto\" with regressors) \
             needs exog= (the history's regressors) and exog_future= (their values over the \
             horizon), with columns \"temperature_2m\", \"hour\" and \"day_type\" \
             (see spe.calendar_exog)"
        ),
        other => write!(f, "{other}"),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(message) => f.write_str(message),
            Error::Site(SiteError::Latitude(v)) => write!(
                f,
                "latitude={v:?} is outside -90..=90: give degrees north (negative south of the equator)"
            ),
            Error::Site(SiteError::Longitude(v)) => write!(
                f,
                "longitude={v:?} is outside -180..=180: give degrees east (negative west of Greenwich)"
            ),
            Error::Site(SiteError::Timezone(tz)) => write!(
                f,
                "timezone={tz:?} is not an IANA time zone name: use one such as \"Europe/Paris\" or \"UTC\""
            ),
            Error::Site(e) => write!(f, "invalid site: {e}"),
            Error::Country(UnknownCountry(code)) => write!(
                f,
                "country={code:?} has no holiday calendar in SP-E: use \"FR\", or \"none\" to ignore holidays"
            ),
            Error::Series(SeriesError::Misaligned(t)) => write!(
                f,
                "start={} is not on a whole minute: drop the seconds, e.g. \"{}\"",
                t.to_rfc3339(),
                t.format("%Y-%m-%dT%H:%M:00Z")
            ),
            Error::Series(SeriesError::Overflow { start, len }) => write!(
                f,
                "{len} hours from start={} run past the supported calendar: use an earlier start or fewer hours",
                start.to_rfc3339()
            ),
            Error::Series(e) => write!(f, "{e}"),
            Error::Forecast { context, error } => {
                if !context.is_empty() {
                    write!(f, "{context}: ")?;
                }
                forecast_message(f, error)
            }
            Error::BreakerConfig(BreakerConfigError::Invalid {
                name,
                value,
                expected,
            }) => write!(
                f,
                "circuit breaker setting {name}={value} is invalid: expected {expected}"
            ),
            Error::BreakerConfig(e) => write!(f, "{e}"),
            Error::Rejected(r) => match r.retry_after {
                Some(d) => write!(
                    f,
                    "circuit {}: the call was refused without running; retry in {:.1} s \
                     (retry_after_s), or serve a fallback meanwhile",
                    r.state.name(),
                    d.as_secs_f64()
                ),
                None => write!(
                    f,
                    "circuit {}: calls are refused until the breaker is reset (breaker.reset())",
                    r.state.name()
                ),
            },
            Error::Timeout { what, after_s } => write!(
                f,
                "{what} did not finish within timeout_s={after_s}: it was abandoned \
                 (raise timeout_s if it is just slow)"
            ),
            Error::Source(e) => write!(f, "{e}"),
            Error::Failover(e) => write!(f, "{e}"),
            Error::Journal(e) => write!(f, "{e}"),
            // Forecasters of one process share an open cache_dir: a held
            // lock is another process's.
            Error::Cache(CacheError::Locked { path }) => write!(
                f,
                "{}: cache_dir already open in another process (its lock is held); \
                 give each process its own cache_dir, or stop the other one",
                path.display()
            ),
            Error::Cache(e) => write!(f, "{e}"),
            Error::CacheCorrupt(m) => f.write_str(m),
            Error::Store(e) => write!(f, "{e}"),
            Error::Calibration(e) => write!(
                f,
                "{e}: calibrate() needs at least {MIN_CALIBRATION_HOURS} hours of recorded \
                 temperature_2m (and demand_mw overlapping it to fit demand)"
            ),
            Error::SynthConfig(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

macro_rules! from_error {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Error::$variant(e)
            }
        })*
    };
}

from_error!(
    Site(SiteError),
    Country(UnknownCountry),
    Series(SeriesError),
    BreakerConfig(BreakerConfigError),
    Rejected(Rejected),
    Source(SourceError),
    Failover(FailoverError),
    Journal(JournalError),
    Cache(CacheError),
    Calibration(CalibrationError),
    SynthConfig(SynthConfigError),
    Store(StoreError),
);

impl From<ForecastError> for Error {
    fn from(e: ForecastError) -> Self {
        Error::forecast("", e)
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> Self {
        Python::attach(|py| match e.attributes(py) {
            Ok(attributes) => e.exception().new_err_with(py, e.to_string(), &attributes),
            Err(err) => err,
        })
    }
}
