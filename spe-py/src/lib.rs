//! Python binding of SP-E: the compiled module `spe._spe`.
//!
//! Users import the `spe` package (`python/spe/`), which re-exports this
//! module and adds what is better written in Python (pandas time indexes,
//! the breaker's `call`/`acall`/decorator). The binding is thin: each module
//! converts Python arguments, calls spe-core with the GIL released, and hands
//! results back (numpy arrays without a copy); the logic lives in spe-core.
//!
//! - [`errors`]: the exception hierarchy (`spe.SpeError` and its subclasses)
//!   and the mapping of spe-core's errors onto it, variant by variant;
//! - [`args`], [`arrays`], [`frames`], [`convert`]: Python values in and out
//!   (checked scalars, float array-likes, hourly frames, serde structures);
//! - one module per Python concern: [`synthetic`] (generator, calibration),
//!   [`forecast`] (`forecast`, `forecast_many`, `Forecast`), [`backtest`],
//!   [`breaker`] (`CircuitBreaker`, `ManualClock`), [`weather`]
//!   (`WeatherService`), [`journal`] (`Journal`, `Retex`), [`kpi`]
//!   (`compute_kpis`), [`resilient`] (`ResilientForecaster`, `Prediction`),
//!   [`history`] (`HistoryStore`).
//!
//! The type stubs (`python/spe/_spe.pyi`) describe this module; the Python
//! tests check them against it with `mypy.stubtest`.
//!
//! The doc comments of the `#[pyclass]`es and `#[pyfunction]`s are their
//! Python docstrings, in Python's syntax (`p.failures[0]["kind"]` in a
//! doctest is not a Rust link); rustdoc's link checks are off for them.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::private_intra_doc_links)]

pub mod args;
pub mod arrays;
pub mod backtest;
pub mod breaker;
pub mod convert;
pub mod errors;
pub mod fitted;
pub mod forecast;
pub mod frames;
pub mod history;
pub mod journal;
pub mod kpi;
pub mod resilient;
pub mod runtime;
pub mod synthetic;
pub mod weather;

use pyo3::prelude::*;

/// The package version (the crate's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Compiled core of SP-E; import ``spe`` instead.
#[pymodule]
fn _spe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", VERSION)?;
    errors::register(m)?;
    m.add_class::<synthetic::SyntheticGenerator>()?;
    m.add_class::<forecast::Forecast>()?;
    m.add_class::<breaker::CircuitBreaker>()?;
    m.add_class::<breaker::Call>()?;
    m.add_class::<breaker::ManualClock>()?;
    m.add_function(wrap_pyfunction!(forecast::forecast, m)?)?;
    m.add_function(wrap_pyfunction!(forecast::forecast_many, m)?)?;
    m.add_function(wrap_pyfunction!(fitted::_fit, m)?)?;
    m.add_function(wrap_pyfunction!(fitted::_model_spec, m)?)?;
    m.add_class::<fitted::FittedModel>()?;
    m.add_function(wrap_pyfunction!(backtest::backtest, m)?)?;
    m.add_function(wrap_pyfunction!(forecast::calendar_exog, m)?)?;
    m.add_function(wrap_pyfunction!(kpi::compute_kpis, m)?)?;
    m.add_class::<journal::Journal>()?;
    m.add_class::<history::HistoryStore>()?;
    m.add_class::<journal::Retex>()?;
    m.add_class::<weather::WeatherService>()?;
    m.add_class::<weather::WeatherSnapshot>()?;
    m.add_class::<resilient::ResilientForecaster>()?;
    m.add_class::<resilient::Prediction>()?;
    Ok(())
}
