//! `spe.compute_kpis`: the dashboard's KPIs from hourly demand and supply.

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use spe_core::{
    EnergyFrame, Kpi, KpiConfig, KpiSet, compute_kpis as core_compute_kpis, live_data_freshness_kpi,
};

use crate::errors::Error;
use crate::{args, frames};

fn kpi_dict<'py>(py: Python<'py>, kpi: &Kpi) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("value", kpi.value)?;
    d.set_item("unit", &kpi.unit)?;
    d.set_item("status", kpi.status.name())?;
    d.set_item("at", kpi.at)?;
    Ok(d)
}

/// The KPIs of hourly energy data at ``now`` (compiled core of
/// ``spe.compute_kpis``; use that).
#[pyfunction]
#[pyo3(signature = (energy, now = None, produced_at = None, provenance = "live", available_capacity_mw = None, last_live_at = None))]
pub fn compute_kpis<'py>(
    py: Python<'py>,
    energy: &Bound<'py, PyAny>,
    now: Option<&Bound<'py, PyAny>>,
    produced_at: Option<&Bound<'py, PyAny>>,
    provenance: &str,
    available_capacity_mw: Option<f64>,
    last_live_at: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let provenance = args::provenance(provenance)?;
    if let Some(c) = available_capacity_mw.filter(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(Error::config(format!(
            "available_capacity_mw={c} is not a capacity: give the megawatts available, \
             more than 0 (or None)"
        ))
        .into());
    }
    let now: DateTime<Utc> = args::instant_or_now(now, "now")?;
    let axis = frames::hourly_axis(energy, "the energy data")?;
    let produced_at = match produced_at.filter(|p| !p.is_none()) {
        Some(p) => args::instant(p, "produced_at")?,
        // The data is as old as its last hour's end.
        None => axis.end().min(now),
    };
    let columns = frames::energy_columns(energy, axis.len())?;
    let frame = EnergyFrame::new(axis, columns, provenance, produced_at).map_err(Error::from)?;
    let config = KpiConfig {
        available_capacity_mw,
        ..KpiConfig::default()
    };
    // `None`: the frame's own age; `"never"`: no live data ever; a time: the last live data.
    let last_live = match last_live_at.filter(|v| !v.is_none()) {
        None => None,
        Some(v) if v.extract::<String>().is_ok_and(|s| s == "never") => Some(None),
        Some(v) => Some(Some(args::instant(v, "last_live_at")?)),
    };
    let kpis = py.detach(|| {
        let mut kpis = core_compute_kpis(&frame, now, &config);
        if let Some(last_live) = last_live {
            kpis.data_freshness_s = live_data_freshness_kpi(&frame, last_live, now, &config);
        }
        kpis
    });
    kpis_dict(py, &kpis)
}

/// A KPI set as a dict: ``status`` (the worst), ``computed_at``,
/// ``provenance``, then one dict per KPI by name.
pub fn kpis_dict<'py>(py: Python<'py>, kpis: &KpiSet) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("status", kpis.status().name())?;
    out.set_item("computed_at", kpis.computed_at)?;
    out.set_item("provenance", kpis.provenance.name())?;
    for kpi in kpis.iter() {
        out.set_item(&kpi.name, kpi_dict(py, kpi)?)?;
    }
    Ok(out)
}
