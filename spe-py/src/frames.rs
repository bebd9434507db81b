//! Hourly frames between Python and spe-core.
//!
//! In: a dict of arrays with a `time` array (what `arrays()` returns; the
//! Python package turns a DataFrame on a `DatetimeIndex` into one), read as
//! an hourly UTC [`TimeAxis`] plus columns with NaN for missing values.
//!
//! Out: weather and energy frames as a dict of numpy arrays (`time` as
//! `datetime64[ns]`, UTC, then `float64` columns).

use chrono::{DateTime, Utc};
use numpy::datetime::{Datetime, units::Nanoseconds};
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use spe_core::{
    Column, EnergyColumns, EnergyFrame, SupplySource, TimeAxis, WeatherColumns, WeatherFrame,
    WeatherVariable,
};

use crate::arrays::{self, numpy};
use crate::errors::Error;

const HOUR_NS: i64 = 3_600_000_000_000;

/// The `time` entry of `data` as an hourly UTC axis.
pub fn hourly_axis(data: &Bound<'_, PyAny>, what: &str) -> PyResult<TimeAxis> {
    let py = data.py();
    let time = data.get_item("time").map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} needs the times: a DataFrame on a DatetimeIndex, or a dict with a \"time\" \
             array (datetime64, UTC)"
        ))
    })?;
    let ns = numpy(py)?
        .call_method1("asarray", (time, "datetime64[ns]"))
        .and_then(|a| a.call_method1("astype", ("int64",)))
        .map_err(|e| {
            let err = PyTypeError::new_err(format!(
                "{what}: \"time\" must be datetimes (datetime64, UTC): {e}"
            ));
            err.set_cause(py, Some(e));
            err
        })?
        .cast_into::<PyArrayDyn<i64>>()?;
    if ns.ndim() != 1 {
        return Err(Error::config(format!("{what}: \"time\" must be 1-D")).into());
    }
    let ns: Vec<i64> = ns.readonly().as_array().iter().copied().collect();
    let Some(&first) = ns.first() else {
        return Err(Error::config(format!("{what} is empty: give at least one hour")).into());
    };
    if first == i64::MIN {
        return Err(Error::config(format!("{what}: the first time is NaT (missing)")).into());
    }
    if let Some(i) = ns
        .windows(2)
        .position(|w| w[1].checked_sub(w[0]) != Some(HOUR_NS))
    {
        return Err(Error::config(format!(
            "{what}: \"time\" must be hourly and complete, without duplicates: rows {i} and {} \
             are not one hour apart (resample to hourly and leave missing values as NaN, e.g. \
             df.resample(\"h\").mean())",
            i + 1
        ))
        .into());
    }
    let start = DateTime::<Utc>::from_timestamp_nanos(first);
    Ok(TimeAxis::new(start, ns.len()).map_err(Error::from)?)
}

/// Column `name` of `data` (length `len`, NaN → missing), or all missing if absent.
pub fn optional_column(data: &Bound<'_, PyAny>, name: &str, len: usize) -> PyResult<Column> {
    let has = data
        .call_method1("__contains__", (name,))
        .and_then(|b| b.extract::<bool>())
        .unwrap_or(false);
    if !has {
        return Ok(vec![None; len]);
    }
    let values = arrays::float_vector(&data.get_item(name)?, name)?;
    if values.len() != len {
        return Err(Error::config(format!(
            "column {name:?} has {} values for {len} times: give one per hour",
            values.len()
        ))
        .into());
    }
    Ok(values
        .into_iter()
        .map(|v| (!v.is_nan()).then_some(v))
        .collect())
}

/// Weather columns of `data` (absent ones all missing).
pub fn weather_columns(data: &Bound<'_, PyAny>, len: usize) -> PyResult<WeatherColumns> {
    let mut columns = WeatherColumns::with_capacity(len);
    for var in WeatherVariable::ALL {
        *columns.get_mut(var) = optional_column(data, var.name(), len)?;
    }
    Ok(columns)
}

/// Energy columns of `data`; `demand_mw` is required.
pub fn energy_columns(data: &Bound<'_, PyAny>, len: usize) -> PyResult<EnergyColumns> {
    let has_demand = data
        .call_method1("__contains__", ("demand_mw",))
        .and_then(|b| b.extract::<bool>())
        .unwrap_or(false);
    if !has_demand {
        return Err(Error::config(
            "the energy data has no \"demand_mw\" column: give demand and supply in MW \
             (demand_mw, solar_mw, wind_mw, other_mw, imports_mw)",
        )
        .into());
    }
    Ok(EnergyColumns {
        demand_mw: optional_column(data, "demand_mw", len)?,
        solar_mw: optional_column(data, SupplySource::Solar.column(), len)?,
        wind_mw: optional_column(data, SupplySource::Wind.column(), len)?,
        other_mw: optional_column(data, SupplySource::Other.column(), len)?,
        imports_mw: optional_column(data, SupplySource::Imports.column(), len)?,
    })
}

/// The times of `axis` for numpy.
pub fn times(axis: TimeAxis) -> Vec<Datetime<Nanoseconds>> {
    axis.times()
        .map(|t| Datetime::from(t.timestamp_nanos_opt().unwrap_or(i64::MIN)))
        .collect()
}

fn nan_for_missing(col: &[Option<f64>]) -> Vec<f64> {
    col.iter().map(|v| v.unwrap_or(f64::NAN)).collect()
}

/// Weather and (optionally) energy as a dict of arrays: `time`, the weather
/// columns, then the energy columns.
pub fn frames_dict<'py>(
    py: Python<'py>,
    weather: &WeatherFrame,
    energy: Option<&EnergyFrame>,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("time", PyArray1::from_vec(py, times(weather.axis())))?;
    for var in WeatherVariable::ALL {
        out.set_item(
            var.name(),
            PyArray1::from_vec(py, nan_for_missing(weather.columns().get(var))),
        )?;
    }
    if let Some(energy) = energy {
        out.set_item(
            "demand_mw",
            PyArray1::from_vec(py, nan_for_missing(energy.demand_mw())),
        )?;
        for source in SupplySource::ALL {
            out.set_item(
                source.column(),
                PyArray1::from_vec(py, nan_for_missing(energy.supply_of(source))),
            )?;
        }
    }
    Ok(out)
}

/// `spe._frames.to_frame(arrays, attrs)`: a pandas DataFrame on a UTC
/// DatetimeIndex (the Python package's helper).
pub fn to_pandas<'py>(
    py: Python<'py>,
    arrays: Bound<'py, PyDict>,
    attrs: Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    py.import("spe._frames")?
        .getattr("to_frame")?
        .call1((arrays, attrs))
}
