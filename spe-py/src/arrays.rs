//! Array-likes in, numpy arrays out.
//!
//! In: any float array-like — a list, a tuple, a numpy array of any float or
//! integer dtype and any strides (a masked array's masked values become
//! NaN), a pandas `Series` (nullable dtypes included: `pd.NA` becomes NaN).
//! Times, durations, strings, booleans and complex numbers are refused with
//! a `TypeError`. Each becomes one owned `Vec<f64>` (one
//! copy, so the Rust work can run without the GIL while Python threads keep
//! the original). NaN marks a missing value.
//!
//! Out: [`readonly`] hands a `Vec<f64>` to numpy without copying it and
//! marks the array read-only, so an object's arrays cannot be changed
//! behind its back (`.copy()` gives a writable one).

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use spe_core::Exog;

use crate::errors::Error;

/// `numpy`, imported once.
pub fn numpy(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static NUMPY: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    NUMPY
        .get_or_try_init(py, || Ok(py.import("numpy")?.unbind()))
        .map(|m| m.bind(py))
}

/// The name of `obj`'s type, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "<unknown type>".to_owned())
}

/// `obj` as a float64 numpy array of any dimension (no copy when it already is one).
pub fn float_array<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let py = obj.py();
    let not_numbers = |cause: PyErr| {
        let e = PyTypeError::new_err(format!(
            "{name} must be an array-like of numbers (a list, numpy array or pandas Series), \
             not {}: {cause}",
            type_name(obj)
        ));
        e.set_cause(py, Some(cause));
        e
    };
    if obj.is_none() || obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an array-like of numbers (a list, numpy array or pandas Series), not {}",
            type_name(obj)
        )));
    }
    // numpy would read an iterator as one opaque object (a 0-d array).
    if obj.hasattr("__next__")? {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an array-like of numbers, got a {}: pass a list or numpy array \
             (e.g. list(...) or np.fromiter(..., float))",
            type_name(obj)
        )));
    }
    let np = numpy(py)?;
    // Lists and tuples: numpy's reading of them, to check what they hold.
    let original = obj;
    let obj = if obj.hasattr("dtype")? {
        obj.clone()
    } else {
        np.call_method1("asarray", (obj,)).map_err(not_numbers)?
    };
    let obj = &obj;
    // Something numpy could only wrap as one object (not a number).
    if !original.hasattr("dtype")? && obj.getattr("ndim")?.extract::<usize>()? == 0 {
        let kind: String = obj.getattr("dtype")?.getattr("kind")?.extract()?;
        if kind == "O" {
            return Err(PyTypeError::new_err(format!(
                "{name} must be an array-like of numbers (a list, numpy array or pandas \
                 Series), not {}",
                type_name(original)
            )));
        }
    }
    check_numbers(obj, name)?;
    // numpy masked arrays: masked → NaN (np.require would keep the values
    // under the mask).
    if np
        .getattr("ma")?
        .call_method1("isMaskedArray", (obj,))?
        .is_truthy()?
    {
        let filled = obj
            .call_method1("astype", ("float64",))?
            .call_method1("filled", (f64::NAN,))?;
        let array = aligned_float64(&filled).map_err(not_numbers)?;
        return Ok(array.cast_into::<PyArrayDyn<f64>>()?);
    }
    // pandas (nullable dtypes): NA → NaN. numpy arrays have no `to_numpy`.
    let values = if obj.hasattr("to_numpy")? && !obj.hasattr("columns")? {
        let kwargs = PyDict::new(py);
        kwargs.set_item("dtype", "float64")?;
        kwargs.set_item("na_value", f64::NAN)?;
        obj.call_method("to_numpy", (), Some(&kwargs))
            .map_err(not_numbers)?
    } else {
        obj.clone()
    };
    let array = aligned_float64(&values).map_err(not_numbers)?;
    Ok(array.cast_into::<PyArrayDyn<f64>>()?)
}

/// Refuse values that numpy would turn into numbers but are not: times
/// (`datetime64`, `timedelta64`, which become nanosecond counts), strings,
/// booleans and complex numbers (whose imaginary part would be dropped).
fn check_numbers(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<()> {
    let Ok(dtype) = obj.getattr("dtype") else {
        return Ok(());
    };
    let kind: String = match dtype.getattr("kind").and_then(|k| k.extract()) {
        Ok(kind) => kind,
        Err(_) => return Ok(()),
    };
    if kind == "O" {
        // Python objects: numpy would parse strings ("1.5" → 1.5) silently.
        for item in obj.try_iter()? {
            let item = item?;
            if item.is_instance_of::<PyString>() || item.is_instance_of::<PyBytes>() {
                return Err(PyTypeError::new_err(format!(
                    "{name} must be an array-like of numbers, not of strings (found {}): \
                     parse them first, e.g. pd.to_numeric",
                    item.repr()?
                )));
            }
        }
        return Ok(());
    }
    let what = match kind.as_str() {
        "i" | "u" | "f" => return Ok(()),
        "M" => "times (datetime64): pass the values, with the times as the index or start=",
        "m" => "durations (timedelta64): convert them, e.g. .dt.total_seconds()",
        "b" => "booleans: convert them explicitly, e.g. .astype(float)",
        "c" => "complex numbers",
        "U" | "S" => "strings: parse them first, e.g. pd.to_numeric",
        _ => "values that are not numbers",
    };
    Err(PyTypeError::new_err(format!(
        "{name} must be an array-like of numbers, not of {} values ({what})",
        dtype.str()?
    )))
}

/// `np.require(obj, "float64", "A")`: a float64 array whose data is aligned
/// (no copy when it already is). Arrays can arrive misaligned — pickle
/// protocol 5 out-of-band buffers (Dask, multiprocessing), `np.frombuffer`
/// at an odd offset — and Rust must never read them in place.
pub fn aligned_float64<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let np = numpy(obj.py())?;
    let kwargs = PyDict::new(obj.py());
    kwargs.set_item("dtype", "float64")?;
    kwargs.set_item("requirements", "A")?;
    np.call_method("require", (obj,), Some(&kwargs))
}

/// A 1-D array-like of numbers as an owned vector; NaN for missing values.
///
/// `name` is the argument's name in messages.
pub fn float_vector(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f64>> {
    if obj.hasattr("columns")? {
        return Err(PyTypeError::new_err(format!(
            "{name} must be one series (1-D), not a {}: pass one column, e.g. df[\"demand_mw\"]",
            type_name(obj)
        )));
    }
    let array = float_array(obj, name)?;
    let shape = array.shape().to_vec();
    if shape.len() != 1 {
        return Err(Error::config(format!(
            "{name} must be 1-D (one series), got an array of shape {}: \
             for several series use spe.forecast_many",
            shape_text(&shape)
        ))
        .into());
    }
    let readonly = array.readonly();
    Ok(match readonly.as_slice() {
        Ok(slice) => slice.to_vec(),
        // Strided: gather the elements.
        Err(_) => readonly.as_array().iter().copied().collect(),
    })
}

/// Many series: a 2-D array-like (one series per row) or a sequence of 1-D
/// array-likes (lengths may differ).
pub fn float_vectors(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<Vec<f64>>> {
    if obj.hasattr("columns")? {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a 2-D array (one series per row) or a list of series, not a {}: \
             pass [df[c] for c in df.columns] (one series per column) or df.to_numpy().T",
            type_name(obj)
        )));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = obj.try_iter()?.collect::<PyResult<_>>()?;
        // A list of numbers is one series, not many.
        if let Some(first) = items.first() {
            if first.extract::<f64>().is_ok() {
                return Err(Error::config(format!(
                    "{name} must hold several series (a 2-D array or a list of 1-D arrays), \
                     got a list of numbers: wrap one series in a list ([y]) or use spe.forecast"
                ))
                .into());
            }
        }
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| float_vector(item, &format!("{name}[{i}]")))
            .collect();
    }
    let array = float_array(obj, name)?;
    let shape = array.shape().to_vec();
    if shape.len() != 2 {
        return Err(Error::config(format!(
            "{name} must be 2-D (one series per row), got an array of shape {}",
            shape_text(&shape)
        ))
        .into());
    }
    let readonly = array.readonly();
    let view = readonly.as_array();
    Ok(view
        .outer_iter()
        .map(|row| row.iter().copied().collect())
        .collect())
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [] => "() (a scalar)".to_owned(),
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Regressors: a mapping of column name to 1-D array-like (a dict, a pandas
/// DataFrame), every column finite and of the same length.
pub fn exog(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Exog> {
    if !obj.hasattr("keys")? {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a mapping of column name to values (a dict or a pandas DataFrame), \
             not {}",
            type_name(obj)
        )));
    }
    let mut columns = Vec::new();
    for key in obj.call_method0("keys")?.try_iter()? {
        let key = key?;
        let column: String = key.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "{name} column names must be strings, not {}",
                type_name(&key)
            ))
        })?;
        let values = float_vector(&obj.get_item(&key)?, &format!("{name}[{column:?}]"))?;
        columns.push((column, values));
    }
    Exog::new(columns).map_err(|e| Error::forecast(name, e).into())
}

/// A read-only numpy array that takes ownership of `values` (no copy).
pub fn readonly<'py>(py: Python<'py>, values: Vec<f64>) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let array = PyArray1::from_vec(py, values);
    array.call_method1("setflags", (false,))?;
    Ok(array)
}
