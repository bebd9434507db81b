//! The exceptions `spe` raises, and how Rust errors become them.
//!
//! One hierarchy, rooted at `spe.SpeError`. Exceptions about bad arguments
//! also derive from the matching built-in (`ConfigError` is a `ValueError`), so
//! `except ValueError` keeps working for callers that know nothing of SP-E.
//!
//! The classes are created once per process, when the module is first
//! imported, with `__module__ = "spe"` so tracebacks and pickles name them as
//! users import them. Adding one (`CircuitOpenError`, `UpstreamError`, …)
//! means: a variant of [`SpeException`], its line in `SpeException::spec`,
//! its stub in `python/spe/_spe.pyi`, and the mapping of the Rust errors that
//! raise it in [`Error`].

use std::fmt;

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use spe_core::{SeriesError, SiteError, UnknownCountry};

/// The module the exception classes say they belong to.
const PUBLIC_MODULE: &str = "spe";

/// An exception class of `spe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeException {
    /// `spe.SpeError(Exception)`: the base of every SP-E exception.
    SpeError,
    /// `spe.ConfigError(SpeError, ValueError)`: an invalid argument or setting.
    ConfigError,
}

/// How to build one exception class.
struct Spec {
    name: &'static str,
    /// The SP-E parent (`None` only for the root).
    parent: Option<SpeException>,
    /// A built-in base besides the SP-E parent, e.g. `ValueError`.
    builtin: Option<fn(Python<'_>) -> Bound<'_, PyType>>,
    doc: &'static str,
}

const COUNT: usize = SpeException::ALL.len();

/// The class objects, created on first use (parents before children).
static TYPES: [PyOnceLock<Py<PyType>>; COUNT] = [const { PyOnceLock::new() }; COUNT];

impl SpeException {
    /// Every class, parents before their children.
    pub const ALL: [SpeException; 2] = [SpeException::SpeError, SpeException::ConfigError];

    fn spec(self) -> Spec {
        match self {
            SpeException::SpeError => Spec {
                name: "SpeError",
                parent: None,
                builtin: Some(|py| py.get_type::<PyException>()),
                doc: "Base class of every exception SP-E raises.",
            },
            SpeException::ConfigError => Spec {
                name: "ConfigError",
                parent: Some(SpeException::SpeError),
                builtin: Some(|py| py.get_type::<PyValueError>()),
                doc: "An invalid argument or setting: the message says which one and how to fix it.\n\n\
                      Also a ``ValueError``.",
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
        let mut bases = Vec::with_capacity(2);
        if let Some(parent) = spec.parent {
            bases.push(parent.type_object(py)?.clone());
        }
        if let Some(builtin) = spec.builtin {
            bases.push(builtin(py));
        }
        let namespace = PyDict::new(py);
        namespace.set_item("__module__", PUBLIC_MODULE)?;
        namespace.set_item("__qualname__", spec.name)?;
        namespace.set_item("__doc__", spec.doc)?;
        // `type(name, bases, namespace)`: unlike `create_exception!`, this
        // allows several bases (an SP-E parent and a built-in).
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
/// conversion to `PyErr` picks the exception class and the message.
#[derive(Debug)]
pub enum Error {
    /// A bad argument detected by the binding itself; the message says how to fix it.
    Config(String),
    /// An invalid site.
    Site(SiteError),
    /// An unknown holiday calendar.
    Country(UnknownCountry),
    /// An invalid time axis.
    Series(SeriesError),
}

impl Error {
    /// A [`Error::Config`] with `message`.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }

    /// The class the error is raised as.
    pub fn exception(&self) -> SpeException {
        match self {
            Error::Config(_) | Error::Site(_) | Error::Country(_) | Error::Series(_) => {
                SpeException::ConfigError
            }
        }
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
        }
    }
}

impl std::error::Error for Error {}

impl From<SiteError> for Error {
    fn from(e: SiteError) -> Self {
        Error::Site(e)
    }
}

impl From<UnknownCountry> for Error {
    fn from(e: UnknownCountry) -> Self {
        Error::Country(e)
    }
}

impl From<SeriesError> for Error {
    fn from(e: SeriesError) -> Self {
        Error::Series(e)
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> Self {
        Python::attach(|py| e.exception().new_err(py, e.to_string()))
    }
}
