//! Python arguments → checked Rust values (`#[pyo3(from_py_with = …)]` converters).
//!
//! A value of the wrong type raises `TypeError` (as PyO3 does); a value of the
//! right type but outside its domain raises `spe.ConfigError`, whose message
//! names the argument, what was wrong and what to pass instead.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyString, PyTimeAccess,
};
use spe_core::{MAX_HORIZON, Provenance};

use crate::errors::Error;

/// The longest window one call generates: ten years of hours (leap days included).
pub const MAX_HOURS: usize = 10 * 366 * 24;

/// An example of a valid `start`, quoted in error messages.
const START_EXAMPLE: &str = "\"2026-01-01T00:00:00Z\"";

/// `seed`: an integer in `0..2**64`.
pub fn seed(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err("seed must be an integer, not bool"));
    }
    obj.extract::<u64>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(obj.py()) {
            Error::config(format!(
                "seed={} is out of range: use an integer from 0 to 2**64 - 1",
                display(obj)
            ))
            .into()
        } else {
            not_an_integer("seed", obj, e)
        }
    })
}

/// `hours`: an integer in `1..=MAX_HOURS`.
pub fn hours(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let out_of_range = || {
        Error::config(format!(
            "hours={} is out of range: ask for 1 to {MAX_HOURS} hours (ten years); \
             split longer spans into several calls (they join seamlessly)",
            display(obj)
        ))
    };
    // A bool is an int to Python, but `hours=True` is a mistake, not 1.
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "hours must be an integer, not {}",
            type_name(obj)
        )));
    }
    match obj.extract::<i64>() {
        Ok(h) if h >= 1 => usize::try_from(h)
            .ok()
            .filter(|h| *h <= MAX_HOURS)
            .ok_or_else(|| out_of_range().into()),
        Ok(_) => Err(out_of_range().into()),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Err(out_of_range().into()),
        Err(e) => Err(not_an_integer("hours", obj, e)),
    }
}

/// An integer argument `name` in `min..=max`; `hint` says what to pass instead.
pub fn int_in(
    obj: &Bound<'_, PyAny>,
    name: &str,
    min: usize,
    max: usize,
    hint: &str,
) -> PyResult<usize> {
    let out_of_range = || Error::config(format!("{name}={} is out of range: {hint}", display(obj)));
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an integer, not bool"
        )));
    }
    match obj.extract::<i64>() {
        Ok(v) => usize::try_from(v)
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| out_of_range().into()),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Err(out_of_range().into()),
        Err(e) => Err(not_an_integer(name, obj, e)),
    }
}

/// Integer arguments whose range a negative or huge value would overflow
/// (an `OverflowError`, not a `ValueError`): each maps to a `ConfigError`
/// that names the argument. The core checks the finer rules.
macro_rules! count_args {
    ($($(#[$doc:meta])* $fn:ident: $ty:ty = $name:literal, $hint:literal;)*) => {$(
        $(#[$doc])*
        pub fn $fn(obj: &Bound<'_, PyAny>) -> PyResult<$ty> {
            let v = int_in(obj, $name, 0, usize::try_from(<$ty>::MAX).unwrap_or(usize::MAX), $hint)?;
            Ok(<$ty>::try_from(v).unwrap_or(<$ty>::MAX))
        }
    )*};
}

count_args! {
    /// `minimum_calls` of a breaker.
    minimum_calls: u32 = "minimum_calls", "give the calls needed before the rate counts, 1 or more";
    /// `window` of a breaker (calls).
    window: u32 = "window", "give the number of calls the window holds, 1 or more";
    /// `window_s` of a breaker (seconds).
    window_s: u32 = "window_s", "give the window's length in seconds, 1 or more";
    /// `half_open_probes` of a breaker.
    half_open_probes: u32 = "half_open_probes", "give the probes let through half-open, 1 or more";
    /// An incident id.
    incident_id: u64 = "id", "incident ids are 1 or more";
    /// `past_days` of a weather window.
    past_days: u16 = "past_days", "give 0 to 92 days";
    /// `forecast_days` of a weather window.
    forecast_days: u16 = "forecast_days", "give 1 to 16 days";
}

/// `horizon`: steps to forecast, 1 to [`MAX_HORIZON`].
pub fn horizon(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    int_in(
        obj,
        "horizon",
        1,
        MAX_HORIZON,
        &format!("forecast 1 to {MAX_HORIZON} steps (ten years of hours)"),
    )
}

/// `season_length`: an integer or a sequence of integers (seasonal periods
/// in steps, e.g. `24` or `(24, 168)` for hourly data). 1 means "no
/// season" and is dropped; the result is sorted, without duplicates.
pub fn season_length(obj: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    const HINT: &str = "give the seasonal period in steps, at least 1 \
        (24 for a daily cycle in hourly data, (24, 168) for daily and weekly; 1 for none)";
    let one = |item: &Bound<'_, PyAny>| int_in(item, "season_length", 1, MAX_HORIZON, HINT);
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "season_length must be an integer or a sequence of integers, not str",
        ));
    }
    let mut periods = match obj.try_iter() {
        // A sequence: a list, tuple, range or numpy array of integers.
        Ok(items) => items
            .map(|item| one(&item?))
            .collect::<PyResult<Vec<_>>>()?,
        Err(_) => vec![one(obj)?],
    };
    periods.retain(|p| *p > 1);
    periods.sort_unstable();
    periods.dedup();
    Ok(periods)
}

/// `levels`: interval levels in percent, a number or a sequence of numbers,
/// each strictly between 0 and 100, without duplicates.
pub fn levels(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let not_bool = |o: &Bound<'_, PyAny>| {
        if is_bool(o) {
            Err(PyTypeError::new_err(
                "levels must be numbers (percent), not bool",
            ))
        } else {
            Ok(())
        }
    };
    not_bool(obj)?;
    let values: Vec<f64> = if let Ok(v) = obj.extract::<f64>() {
        vec![v]
    } else if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "levels must be numbers (percent), not str",
        ));
    } else {
        match obj.try_iter() {
            Ok(items) => items
                .map(|item| {
                    let item = item?;
                    not_bool(&item)?;
                    item.extract::<f64>().map_err(|_| {
                        PyTypeError::new_err(format!(
                            "levels must be numbers (percent), not {}",
                            type_name(&item)
                        ))
                    })
                })
                .collect::<PyResult<_>>()?,
            Err(_) => {
                return Err(PyTypeError::new_err(format!(
                    "levels must be a number or a sequence of numbers (percent), not {}",
                    type_name(obj)
                )));
            }
        }
    };
    if !values.is_empty() && values.iter().all(|l| *l > 0.0 && *l <= 1.0) {
        // To 12 significant digits (×100 is inexact), in the shorter of the
        // plain and exponent forms: 1e-7, not 0.00000010000000000000001.
        let short = |x: f64| {
            let x: f64 = format!("{x:.11e}").parse().unwrap_or(x);
            let (plain, exponent) = (format!("{x}"), format!("{x:e}"));
            if exponent.len() < plain.len() {
                exponent
            } else {
                plain
            }
        };
        let percent: Vec<String> = values.iter().map(|l| short(l * 100.0)).collect();
        warn_user(
            obj.py(),
            &format!(
                "levels are percentages: {} look like fractions, giving intervals of at most \
                 1 %; did you mean levels=({}{})?",
                display(obj),
                percent.join(", "),
                if percent.len() == 1 { "," } else { "" }
            ),
        )?;
    }
    for (i, level) in values.iter().enumerate() {
        if !(level.is_finite() && *level > 0.0 && *level < 100.0) {
            return Err(Error::config(format!(
                "levels: {level} is not a percentage strictly between 0 and 100: \
                 use e.g. levels=(80, 95)"
            ))
            .into());
        }
        if values[..i].contains(level) {
            return Err(Error::config(format!(
                "levels: {level} is given twice: give each level once"
            ))
            .into());
        }
    }
    Ok(values)
}

/// `True`/`False` or a numpy bool: not a number, though both convert to one.
pub fn is_bool(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyBool>()
        || obj
            .get_type()
            .fully_qualified_name()
            .is_ok_and(|n| n == "numpy.bool" || n == "numpy.bool_")
}

/// A real-number argument `name`: an int or a float (or anything with
/// `__float__`), not a bool (`True` would read as 1), else a `TypeError`
/// that names it; an int beyond a float's range is a `ConfigError`. Its
/// range is the caller's to check.
pub fn real(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    if is_bool(obj) {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number, not bool"
        )));
    }
    obj.extract::<f64>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(obj.py()) {
            Error::config(format!("{name} is beyond the range of a float")).into()
        } else {
            PyTypeError::new_err(format!("{name} must be a number, not {}", type_name(obj)))
        }
    })
}

/// `box_cox`: `None` (no transform) or the Box–Cox λ, a number (`0` for a
/// log transform) in the range [`spe_core::BoxCox::new`] takes, else a
/// `TypeError` or a `ConfigError`, checked before any series is read. `-0`
/// is 0, as the core keeps it.
pub fn box_cox(obj: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    if obj.is_none() {
        return Ok(None);
    }
    let lambda = real(obj, "box_cox").map_err(|e| {
        if e.is_instance_of::<PyTypeError>(obj.py()) {
            PyTypeError::new_err(format!(
                "box_cox must be a number (the Box-Cox lambda, 0 for a log transform) or None, \
                 not {}",
                type_name(obj)
            ))
        } else {
            e
        }
    })?;
    match spe_core::BoxCox::new((), lambda) {
        Ok(checked) => Ok(Some(checked.lambda())),
        Err(spe_core::ForecastError::InvalidArgument(why)) => {
            Err(Error::config(format!("box_cox={lambda} is out of range: {why}")).into())
        }
        Err(e) => Err(Error::config(format!("box_cox={lambda}: {e}")).into()),
    }
}

/// A `True`/`False` argument `name` (not 0, 1 or another truthy value),
/// else a `TypeError` that names it.
pub fn flag(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<bool> {
    obj.cast::<PyBool>().map(|b| b.is_true()).map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be True or False, not {}",
            type_name(obj)
        ))
    })
}

/// A `str` argument `name`, else a `TypeError` that names it; `hint`
/// says what to pass.
pub fn text(obj: &Bound<'_, PyAny>, name: &str, hint: &str) -> PyResult<String> {
    obj.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be a str ({hint}), not {}",
            type_name(obj)
        ))
    })
}

/// A `UserWarning` with `message`, attributed to the first frame outside
/// the `spe` package (the user's call, not `spe`'s Python wrappers).
pub fn warn_user(py: Python<'_>, message: &str) -> PyResult<()> {
    let package = py.import("spe")?.getattr("__path__")?.get_item(0)?;
    let mut package: String = package.extract()?;
    package.push(std::path::MAIN_SEPARATOR);
    // `warnings.warn` called from Rust: stacklevel 1 is the innermost Python frame.
    let mut frame = py.import("sys")?.call_method1("_getframe", (0,))?;
    let mut level = 1_u32;
    while !frame.is_none() {
        let file: String = frame.getattr("f_code")?.getattr("co_filename")?.extract()?;
        if !file.starts_with(&package) {
            break;
        }
        frame = frame.getattr("f_back")?;
        level += 1;
    }
    py.import("warnings")?.call_method1(
        "warn",
        (
            message,
            py.get_type::<pyo3::exceptions::PyUserWarning>(),
            level,
        ),
    )?;
    Ok(())
}

/// A duration in seconds: a finite, non-negative number.
pub fn seconds(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<std::time::Duration> {
    duration(obj, name, "seconds", 1.0)
}

/// A duration given as a finite, non-negative number of `unit`s of
/// `unit_s` seconds each (`"hours"`, 3600): a `TypeError` for a bool or a
/// non-number, a `ConfigError` for NaN, infinities, negatives or too long.
pub fn duration(
    obj: &Bound<'_, PyAny>,
    name: &str,
    unit: &str,
    unit_s: f64,
) -> PyResult<std::time::Duration> {
    let value: f64 = if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number of {unit}, not bool"
        )));
    } else {
        obj.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "{name} must be a number of {unit}, not {}",
                type_name(obj)
            ))
        })?
    };
    if !(value.is_finite() && value >= 0.0) {
        return Err(Error::config(format!(
            "{name}={value} is not a duration: give a finite number of {unit}, 0 or more"
        ))
        .into());
    }
    std::time::Duration::try_from_secs_f64(value * unit_s)
        .map_err(|_| Error::config(format!("{name}={value} {unit} is too long")).into())
}

/// A timeout or an interval in seconds (already a float): finite, more than 0.
pub fn positive_seconds(value: f64, name: &str) -> Result<std::time::Duration, Error> {
    if !(value.is_finite() && value > 0.0) {
        return Err(Error::config(format!(
            "{name}={value} is not a duration: give a finite number of seconds, more than 0"
        )));
    }
    std::time::Duration::try_from_secs_f64(value)
        .map_err(|_| Error::config(format!("{name}={value} seconds is too long")))
}

/// The `TypeError` for a non-integer `name`, or `err` itself if it is something else.
fn not_an_integer(name: &str, obj: &Bound<'_, PyAny>, err: PyErr) -> PyErr {
    if !err.is_instance_of::<PyTypeError>(obj.py()) {
        return err;
    }
    let e = PyTypeError::new_err(format!("{name} must be an integer, not {}", type_name(obj)));
    e.set_cause(obj.py(), Some(err));
    e
}

pub use crate::arrays::type_name;

/// `start`: an RFC 3339 string with a UTC offset, or a timezone-aware `datetime`.
///
/// Naive datetimes (and strings without an offset) are refused: Python reads
/// them as local time, and guessing would shift every value by hours.
pub fn start(obj: &Bound<'_, PyAny>) -> PyResult<DateTime<Utc>> {
    instant(obj, "start")
}

/// An instant argument `name`, read as [`start`] is.
pub fn instant(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<DateTime<Utc>> {
    if let Ok(text) = obj.cast::<PyString>() {
        return Ok(parse_rfc3339_arg(text.to_str()?, name)?);
    }
    if let Ok(dt) = obj.cast::<PyDateTime>() {
        return from_datetime(dt, name);
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be an RFC 3339 string such as {START_EXAMPLE} or a timezone-aware \
         datetime.datetime, not {}",
        type_name(obj)
    )))
}

/// An optional instant: `None` is now.
pub fn instant_or_now(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<DateTime<Utc>> {
    match obj.filter(|o| !o.is_none()) {
        Some(o) => instant(o, name),
        None => Ok(Utc::now()),
    }
}

/// A provenance by name: `live`, `synthetic`, `cached` (of age 0) or
/// `fallback`.
pub fn provenance(name: &str) -> Result<Provenance, Error> {
    match name {
        "live" => Ok(Provenance::Live),
        "synthetic" => Ok(Provenance::Synthetic),
        "fallback" => Ok(Provenance::Fallback),
        "cached" => Ok(Provenance::cached(std::time::Duration::ZERO)),
        other => Err(Error::config(format!(
            "provenance={other:?} is not a provenance: use \"live\", \"synthetic\", \"cached\" or \"fallback\""
        ))),
    }
}

#[cfg(test)]
fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, Error> {
    parse_rfc3339_arg(text, "start")
}

fn parse_rfc3339_arg(text: &str, name: &str) -> Result<DateTime<Utc>, Error> {
    match DateTime::parse_from_rfc3339(text.trim()) {
        Ok(t) => Ok(t.with_timezone(&Utc)),
        Err(e) => {
            let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f"))
                .or_else(|_| NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M"));
            Err(if naive.is_ok() {
                Error::config(format!(
                    "{name}={text:?} has no UTC offset: append \"Z\" for UTC (e.g. {START_EXAMPLE}) \
                     or the site's offset such as \"+01:00\""
                ))
            } else {
                Error::config(format!(
                    "{name}={text:?} is not an RFC 3339 timestamp ({e}): write it like {START_EXAMPLE}"
                ))
            })
        }
    }
}

fn from_datetime(dt: &Bound<'_, PyDateTime>, name: &str) -> PyResult<DateTime<Utc>> {
    let offset = dt.call_method0("utcoffset")?;
    if offset.is_none() {
        return Err(Error::config(format!(
            "{name}={} is a naive datetime: give it a time zone, e.g. \
             datetime(2026, 1, 1, tzinfo=timezone.utc), or pass {START_EXAMPLE}",
            display(dt)
        ))
        .into());
    }
    let offset = offset.cast::<PyDelta>()?;
    let offset = Duration::days(offset.get_days().into())
        + Duration::seconds(offset.get_seconds().into())
        + Duration::microseconds(offset.get_microseconds().into());
    let invalid = || {
        Error::config(format!(
            "{name}={} is not a valid date and time",
            display(dt)
        ))
    };
    let date = NaiveDate::from_ymd_opt(dt.get_year(), dt.get_month().into(), dt.get_day().into())
        .ok_or_else(invalid)?;
    let time = NaiveTime::from_hms_micro_opt(
        dt.get_hour().into(),
        dt.get_minute().into(),
        dt.get_second().into(),
        dt.get_microsecond(),
    )
    .ok_or_else(invalid)?;
    // pandas.Timestamp is a datetime with nanoseconds on top.
    let nanos: u32 = match dt.getattr("nanosecond") {
        Ok(n) => n.extract().unwrap_or(0),
        Err(_) => 0,
    };
    let local = date.and_time(time) + Duration::nanoseconds(nanos.into());
    Ok((local - offset).and_utc())
}

/// `repr(obj)` for messages, or a placeholder if even that fails.
fn display(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rfc3339_with_offsets() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00Z").unwrap(), t);
        assert_eq!(parse_rfc3339("2026-01-01T01:00:00+01:00").unwrap(), t);
        assert_eq!(parse_rfc3339(" 2026-01-01 00:00:00z ").unwrap(), t);
    }

    #[test]
    fn messages_say_how_to_fix() {
        let naive = parse_rfc3339("2026-01-01T00:00:00")
            .unwrap_err()
            .to_string();
        assert!(
            naive.contains("no UTC offset") && naive.contains("\"Z\""),
            "{naive}"
        );
        let garbage = parse_rfc3339("yesterday").unwrap_err().to_string();
        assert!(
            garbage.contains("not an RFC 3339") && garbage.contains("2026-01-01T00:00:00Z"),
            "{garbage}"
        );
        let month = parse_rfc3339("2026-13-01T00:00:00Z")
            .unwrap_err()
            .to_string();
        assert!(month.contains("not an RFC 3339"), "{month}");
    }
}
