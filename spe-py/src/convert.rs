//! Serde values to and from Python objects, through JSON.
//!
//! For configuration and report structures (generator parameters,
//! calibration reports, RETEX figures): small, built rarely, so the detour
//! through Python's `json` module costs nothing that matters and keeps one
//! source of truth for field names, spe-core's serde attributes.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::Error;

fn json(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static JSON: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    JSON.get_or_try_init(py, || Ok(py.import("json")?.unbind()))
        .map(|m| m.bind(py))
}

/// `value` as plain Python objects (dicts, lists, str, int, float, None).
pub fn to_python<'py, T: Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::config(format!("cannot encode the value: {e}")))?;
    json(py)?.call_method1("loads", (text,))
}

/// A `T` from plain Python objects; `what` names the argument in messages.
pub fn from_python<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let text: String = json(obj.py())?
        .call_method1("dumps", (obj,))
        .map_err(|e| {
            Error::config(format!(
                "{what} must be plain data (dicts, lists, numbers, strings): {e}"
            ))
        })?
        .extract()?;
    serde_json::from_str(&text).map_err(|e| Error::config(format!("{what}: {e}")).into())
}
