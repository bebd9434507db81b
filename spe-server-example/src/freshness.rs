//! The KPI `data_freshness_s` as the operator reads it: the age of the last
//! *live* data.
//!
//! spe-core's [`compute_kpis`](spe_core::compute_kpis) measures the age of
//! the frame it is given, from the time the frame was produced. In
//! estimation mode that frame is the synthetic estimate, made at each
//! refresh, so its age stays under a refresh period and the tile would read
//! "ok" on a server that never had live data. [`live_freshness`] replaces
//! it, for a synthetic frame, with the age of the last live data
//! ([`WeatherSnapshot::last_live_at`]), judged by the same threshold; with
//! none ever, the value is unknown and the status `critical`. A live or
//! cached frame keeps spe-core's value: its production time is that of the
//! live data (the fetch, for cached data).

use chrono::{DateTime, Utc};
use spe_core::{Kpi, KpiConfig, KpiSet, KpiStatus, Provenance, WeatherSnapshot};

/// The name of the KPI.
pub const DATA_FRESHNESS: &str = "data_freshness_s";

/// `kpis` (of `snapshot` at `now`) with `data_freshness_s` measuring the
/// age of the last live data (see the [module documentation](self)).
pub fn live_freshness(
    mut kpis: KpiSet,
    snapshot: &WeatherSnapshot,
    now: DateTime<Utc>,
    config: &KpiConfig,
) -> KpiSet {
    if !matches!(snapshot.energy.provenance(), Provenance::Synthetic) {
        return kpis;
    }
    let unit = kpis.data_freshness_s.unit.clone();
    kpis.data_freshness_s = match snapshot.last_live_at {
        Some(at) => {
            let age_s = (now - at).num_seconds().max(0) as f64;
            Kpi::new(
                DATA_FRESHNESS,
                Some(age_s),
                unit,
                config.data_freshness_s.status(age_s),
                Some(at),
            )
        }
        None => Kpi::new(DATA_FRESHNESS, None, unit, KpiStatus::Critical, None),
    };
    kpis
}
