//! Python binding of SP-E: the compiled module `spe._spe`.
//!
//! Users import the `spe` package (`python/spe/`), which re-exports this
//! module and adds what needs Python libraries (pandas). Layout:
//!
//! - [`errors`]: the exception hierarchy (`spe.SpeError` and its subclasses)
//!   and the mapping of Rust errors to it;
//! - [`args`]: conversion and checking of Python arguments;
//! - one module per Python-facing area ([`synthetic`] for now), each a thin
//!   `#[pyclass]` over spe-core that releases the GIL for the work itself and
//!   hands results to numpy without copying.
//!
//! The type stubs (`python/spe/_spe.pyi`) describe this module; the Python
//! tests check them against it with `mypy.stubtest`.

pub mod args;
pub mod arrays;
pub mod backtest;
pub mod breaker;
pub mod convert;
pub mod errors;
pub mod forecast;
pub mod frames;
pub mod journal;
pub mod kpi;
pub mod resilient;
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
    m.add_function(wrap_pyfunction!(backtest::backtest, m)?)?;
    m.add_function(wrap_pyfunction!(forecast::calendar_exog, m)?)?;
    m.add_function(wrap_pyfunction!(kpi::compute_kpis, m)?)?;
    m.add_class::<journal::Journal>()?;
    m.add_class::<journal::Retex>()?;
    m.add_class::<weather::WeatherService>()?;
    m.add_class::<weather::WeatherSnapshot>()?;
    m.add_class::<resilient::ResilientForecaster>()?;
    m.add_class::<resilient::Prediction>()?;
    Ok(())
}
