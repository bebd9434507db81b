//! Python binding of SP-E (being written).
use pyo3::prelude::*;

#[pymodule]
fn _spe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
