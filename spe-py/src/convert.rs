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

/// How deep [`non_finite`] looks into nested containers.
const MAX_DEPTH: usize = 32;

/// Where in `obj` (dicts, lists and tuples, depth first) a float is NaN or
/// infinite, as a path from `path` (`params["pv"]["capacity_mwp"]`), with
/// the value.
///
/// Looks no deeper than [`MAX_DEPTH`] (a cycle, or absurd nesting, is left
/// for `json.dumps` to refuse).
fn non_finite(obj: &Bound<'_, PyAny>, path: &str, depth: usize) -> Option<(String, f64)> {
    use pyo3::types::{PyDict, PyFloat, PyList, PyTuple};
    if depth > MAX_DEPTH {
        return None;
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return (!v.is_finite()).then(|| (path.to_owned(), v));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return d.iter().find_map(|(k, v)| {
            let key = k.repr().map_or_else(|_| "?".to_owned(), |r| r.to_string());
            non_finite(&v, &format!("{path}[{key}]"), depth + 1)
        });
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return None;
    };
    items
        .iter()
        .enumerate()
        .find_map(|(i, v)| non_finite(v, &format!("{path}[{i}]"), depth + 1))
}

/// A `T` from plain Python objects; `what` names the argument in messages.
pub fn from_python<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    // JSON has no NaN: named here, not as the parser's line and column.
    if let Some((path, value)) = non_finite(obj, what, 0) {
        return Err(Error::config(format!("{path} is {value}: give a finite number")).into());
    }
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
