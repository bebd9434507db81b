//! `spe._spe.SyntheticGenerator`: spe-core's synthetic generator for one site.
//!
//! The Python package subclasses it as `spe.SyntheticGenerator` to add
//! `frame()` (pandas); everything computed lives here.

use chrono::{DateTime, Utc};
use numpy::PyArray1;
use numpy::datetime::{Datetime, units::Nanoseconds};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyString};

use spe_core::{
    Country, Generator, HourlySeries, Provenance, Site, SupplySource, SynthConfig, TimeAxis,
    WeatherFrame, WeatherVariable,
};

use crate::errors::Error;
use crate::{args, convert, frames};

/// The default seed: spe-core's (`SynthConfig::default().seed`), so Python
/// and the example server show the same estimate for the same site.
pub const DEFAULT_SEED: u64 = 0x5E_2026;

/// The name spe-core requires for a site; not shown anywhere.
const SITE_NAME: &str = "spe-py";

/// Deterministic synthetic weather, demand and supply for one site.
///
/// Same seed and site: same values, whatever window is asked for (two
/// overlapping windows agree exactly on their overlap). ``seed`` is an integer
/// from 0 to 2**64 - 1 (default 6168614, the example server's); ``latitude``
/// and ``longitude`` are in degrees (north, east); ``timezone`` is an IANA name;
/// ``country`` picks the public holidays (``"FR"`` or ``"none"``).
///
/// This is the compiled core; use its subclass ``spe.SyntheticGenerator``,
/// which adds ``frame()``.
///
/// Raises ``spe.ConfigError`` (a ``ValueError``) for an invalid argument.
///
/// >>> import spe
/// >>> gen = spe._spe.SyntheticGenerator(seed=7)
/// >>> gen
/// SyntheticGenerator(seed=7, latitude=48.85, longitude=2.35, timezone='Europe/Paris', country='FR')
/// >>> gen.arrays("2026-01-01T00:00:00Z", hours=24)["demand_mw"].shape
/// (24,)
#[pyclass(module = "spe._spe", name = "SyntheticGenerator", frozen, subclass)]
pub struct SyntheticGenerator {
    generator: Generator,
    site: Site,
}

/// The generated columns, as numpy-ready vectors.
struct Columns {
    time: Vec<Datetime<Nanoseconds>>,
    values: Vec<(&'static str, Vec<f64>)>,
}

impl SyntheticGenerator {
    /// A generator for a site, checked, with default parameters.
    pub fn build(
        seed: u64,
        latitude: f64,
        longitude: f64,
        timezone: &str,
        country: &str,
    ) -> Result<Self, Error> {
        Self::build_with(seed, latitude, longitude, timezone, country, None)
    }

    /// A generator for a site, checked, with the given parameters (the
    /// seed of `config` is replaced by `seed`).
    pub fn build_with(
        seed: u64,
        latitude: f64,
        longitude: f64,
        timezone: &str,
        country: &str,
        config: Option<SynthConfig>,
    ) -> Result<Self, Error> {
        let country: Country = country.parse()?;
        let site = Site::new(SITE_NAME, latitude, longitude, timezone, country)?;
        let generator = match config {
            Some(config) => Generator::new(SynthConfig { seed, ..config })?,
            None => Generator::with_seed(seed),
        };
        Ok(SyntheticGenerator { generator, site })
    }

    /// The core generator.
    pub fn generator(&self) -> &Generator {
        &self.generator
    }

    /// The site.
    pub fn site(&self) -> &Site {
        &self.site
    }

    fn has_default_params(&self) -> bool {
        let config = self.generator.config();
        *config
            == SynthConfig {
                seed: config.seed,
                ..SynthConfig::default()
            }
    }

    /// The parameters as Python sees them (everything but the seed), or
    /// `None` when they are the defaults.
    fn params_dict<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.has_default_params() {
            return Ok(None);
        }
        let params = convert::to_python(py, self.generator.config())?;
        params.del_item("seed")?;
        Ok(Some(params))
    }

    /// The columns for `axis`: pure Rust, runs without the GIL.
    fn columns(&self, axis: TimeAxis, now: DateTime<Utc>) -> Columns {
        let frames = self.generator.generate(&self.site, axis, now);
        let time = axis
            .times()
            .map(|t| Datetime::from(t.timestamp_nanos_opt().unwrap_or(i64::MIN)))
            .collect();
        let nan_for_missing = |col: &[Option<f64>]| -> Vec<f64> {
            col.iter().map(|v| v.unwrap_or(f64::NAN)).collect()
        };
        let mut values =
            Vec::with_capacity(WeatherVariable::ALL.len() + 1 + SupplySource::ALL.len());
        for var in WeatherVariable::ALL {
            values.push((
                var.name(),
                nan_for_missing(frames.weather.columns().get(var)),
            ));
        }
        values.push(("demand_mw", nan_for_missing(frames.energy.demand_mw())));
        for source in SupplySource::ALL {
            values.push((
                source.column(),
                nan_for_missing(frames.energy.supply_of(source)),
            ));
        }
        Columns { time, values }
    }
}

/// The axis of `hours` hours from `start`, checked to fit numpy's `datetime64[ns]`.
fn axis(start: DateTime<Utc>, hours: usize) -> Result<TimeAxis, Error> {
    let axis = TimeAxis::new(start, hours)?;
    if axis.start().timestamp_nanos_opt().is_none() || axis.end().timestamp_nanos_opt().is_none() {
        return Err(Error::config(format!(
            "{hours} hours from start={} fall outside numpy's datetime64[ns] range \
             (1677-09-22 to 2262-04-11 UTC): pick a start in that range",
            start.to_rfc3339()
        )));
    }
    Ok(axis)
}

#[pymethods]
impl SyntheticGenerator {
    #[new]
    #[pyo3(signature = (
        seed = DEFAULT_SEED,
        latitude = 48.85,
        longitude = 2.35,
        timezone = "Europe/Paris",
        country = "FR",
        params = None,
    ))]
    // Spelled out so `inspect.signature` shows the seed (a constant would show
    // as `...`); the Python tests check it against the defaults in force.
    #[pyo3(
        text_signature = "(seed=6168614, latitude=48.85, longitude=2.35, timezone='Europe/Paris', country='FR', params=None)"
    )]
    fn new(
        #[pyo3(from_py_with = args::seed)] seed: u64,
        latitude: f64,
        longitude: f64,
        timezone: &str,
        country: &str,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let config = match params.filter(|p| !p.is_none()) {
            Some(p) => {
                if p.cast::<PyDict>()
                    .is_ok_and(|d| d.contains("seed").unwrap_or(false))
                {
                    return Err(Error::config(
                        "params has a \"seed\" entry: pass the seed as seed= instead",
                    )
                    .into());
                }
                Some(convert::from_python::<SynthConfig>(p, "params")?)
            }
            None => None,
        };
        Ok(Self::build_with(
            seed, latitude, longitude, timezone, country, config,
        )?)
    }

    /// The generator's parameters (climate, demand, PV, wind, grid) as a
    /// dict, or ``None`` for the defaults; ``calibrate`` changes them.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.params_dict(py)
    }

    /// Fit the climate (and the demand model, given ``demand_mw``) to a
    /// recorded history (compiled core of ``calibrate``; use that).
    ///
    /// ``history`` is a dict of arrays with ``time`` (hourly, UTC) and
    /// ``temperature_2m`` (°C), optionally ``wind_speed_10m`` and
    /// ``demand_mw``; NaN marks a missing value. Returns the fitted
    /// parameters (for ``params=``) and the report.
    fn _calibrate<'py>(
        &self,
        py: Python<'py>,
        history: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let axis = frames::hourly_axis(history, "the calibration history")?;
        let columns = frames::weather_columns(history, axis.len())?;
        let weather =
            WeatherFrame::new(axis, columns, Provenance::Live, axis.end()).map_err(Error::from)?;
        let has_demand = history
            .call_method1("__contains__", ("demand_mw",))
            .and_then(|b| b.extract::<bool>())
            .unwrap_or(false);
        let demand = if has_demand {
            let values = frames::optional_column(history, "demand_mw", axis.len())?;
            Some(HourlySeries::new(axis.start(), values).map_err(Error::from)?)
        } else {
            None
        };
        let (fitted, report) = py
            .detach(|| {
                self.generator
                    .calibrate(&self.site, &weather, demand.as_ref())
            })
            .map_err(Error::from)?;
        let params = convert::to_python(py, fitted.config())?;
        params.del_item("seed")?;
        Ok((params, convert::to_python(py, &report)?))
    }

    /// The seed of every random stream.
    #[getter]
    fn seed(&self) -> u64 {
        self.generator.config().seed
    }

    /// Latitude in degrees north.
    #[getter]
    fn latitude(&self) -> f64 {
        self.site.latitude()
    }

    /// Longitude in degrees east.
    #[getter]
    fn longitude(&self) -> f64 {
        self.site.longitude()
    }

    /// IANA time zone name (local hours drive the demand profile).
    #[getter]
    fn timezone(&self) -> &'static str {
        self.site.timezone().name()
    }

    /// Holiday calendar: ``"FR"`` or ``"none"``.
    #[getter]
    fn country(&self) -> &'static str {
        self.site.country().code()
    }

    /// Hourly synthetic weather, demand and supply as numpy arrays.
    ///
    /// ``start`` is the first hour: an RFC 3339 string with a UTC offset
    /// (``"2026-01-01T00:00:00Z"``, ``"2026-01-01T01:00:00+01:00"``) or a
    /// timezone-aware ``datetime``; naive datetimes and strings without an
    /// offset are refused rather than guessed. It must be on a whole minute.
    /// ``hours`` is the number of hourly rows, 1 to 87840 (ten years).
    ///
    /// Returns a dict of 1-D arrays, all of length ``hours``, in this order:
    /// ``time`` (``datetime64[ns]``, UTC, hourly from ``start``), then
    /// ``float64`` arrays ``temperature_2m`` (°C), ``shortwave_radiation``
    /// (W/m², mean of the preceding hour), ``cloud_cover`` (%),
    /// ``wind_speed_10m`` (m/s), ``demand_mw``, ``solar_mw``, ``wind_mw``,
    /// ``other_mw`` and ``imports_mw`` (MW). A missing value is NaN (the
    /// generator itself never leaves one). Each call returns new arrays that
    /// the caller owns.
    ///
    /// Runs without holding the GIL. Raises ``spe.ConfigError`` for a bad
    /// ``start`` or ``hours``, ``TypeError`` for arguments of the wrong type.
    ///
    /// >>> import spe
    /// >>> gen = spe.SyntheticGenerator(seed=7)
    /// >>> a = gen.arrays("2026-01-01T00:00:00Z", hours=48)
    /// >>> list(a)[:3]
    /// ['time', 'temperature_2m', 'shortwave_radiation']
    /// >>> a["time"][:2]
    /// array(['2026-01-01T00:00:00.000000000', '2026-01-01T01:00:00.000000000'],
    ///       dtype='datetime64[ns]')
    /// >>> b = gen.arrays("2026-01-02T00:00:00Z", hours=24)
    /// >>> bool((a["demand_mw"][24:] == b["demand_mw"]).all())
    /// True
    #[pyo3(signature = (start, hours))]
    fn arrays<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::start)] start: DateTime<Utc>,
        #[pyo3(from_py_with = args::hours)] hours: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let axis = axis(start, hours)?;
        let now = Utc::now();
        let columns = py.detach(|| self.columns(axis, now));
        let out = PyDict::new(py);
        out.set_item("time", PyArray1::from_vec(py, columns.time))?;
        for (name, values) in columns.values {
            out.set_item(name, PyArray1::from_vec(py, values))?;
        }
        Ok(out)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let this = slf.get();
        let params = if this.has_default_params() {
            ""
        } else {
            ", params={...}"
        };
        Ok(format!(
            "{}(seed={}, latitude={}, longitude={}, timezone={}, country={}{params})",
            slf.get_type().qualname()?,
            this.seed(),
            PyFloat::new(py, this.latitude()).repr()?,
            PyFloat::new(py, this.longitude()).repr()?,
            PyString::new(py, this.timezone()).repr()?,
            PyString::new(py, this.country()).repr()?,
        ))
    }

    /// Pickle and copy support: rebuilt from its arguments.
    fn __getnewargs_ex__<'py>(&self, py: Python<'py>) -> PyResult<((), Bound<'py, PyDict>)> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("seed", self.seed())?;
        kwargs.set_item("latitude", self.latitude())?;
        kwargs.set_item("longitude", self.longitude())?;
        kwargs.set_item("timezone", self.timezone())?;
        kwargs.set_item("country", self.country())?;
        if let Some(params) = self.params_dict(py)? {
            kwargs.set_item("params", params)?;
        }
        Ok(((), kwargs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use spe_core::SynthConfig;

    #[test]
    fn default_seed_is_spe_cores() {
        assert_eq!(DEFAULT_SEED, SynthConfig::default().seed);
    }

    #[test]
    fn columns_match_the_core_generator() {
        let generator = SyntheticGenerator::build(7, 48.85, 2.35, "Europe/Paris", "FR").unwrap();
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let axis = TimeAxis::new(start, 48).unwrap();
        let columns = generator.columns(axis, start);
        let names: Vec<_> = columns.values.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "temperature_2m",
                "shortwave_radiation",
                "cloud_cover",
                "wind_speed_10m",
                "demand_mw",
                "solar_mw",
                "wind_mw",
                "other_mw",
                "imports_mw"
            ]
        );
        assert_eq!(
            i64::from(columns.time[1]),
            start.timestamp_nanos_opt().unwrap() + 3_600_000_000_000
        );
        let core = Generator::with_seed(7).generate(&Site::paris(), axis, start);
        let demand: Vec<f64> = core.energy.demand_mw().iter().map(|v| v.unwrap()).collect();
        assert_eq!(columns.values[4].1, demand);
    }

    #[test]
    fn rejects_axes_numpy_cannot_hold() {
        let late = Utc.with_ymd_and_hms(2262, 4, 1, 0, 0, 0).unwrap();
        let message = axis(late, 24 * 30).unwrap_err().to_string();
        assert!(message.contains("datetime64[ns]"), "{message}");
        assert!(axis(late, 24).is_ok());
    }
}
