//! What the handlers read: the [`FailoverService`]'s current snapshot, its
//! breaker's metrics and the incident journal.
//!
//! The failover service (in `spe-core`) owns the data logic: it refreshes
//! from the live source in the background, falls back to the synthetic
//! generator, and publishes an immutable snapshot. A handler takes the
//! current `Arc<WeatherSnapshot>` (a reference-count bump) and works from it;
//! it never waits on a refresh and never calls an upstream.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use spe_core::{FailoverService, Journal, KpiConfig, WeatherSnapshot};

/// The state shared by every handler: the failover service, the incident
/// journal (if it could be opened) and the KPI thresholds. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    service: FailoverService,
    journal: Option<Journal>,
    kpi_config: Arc<KpiConfig>,
}

impl AppState {
    /// State reading `service`'s snapshots and `journal`'s incidents (none:
    /// `/api/incidents` answers an empty list), with the default KPI thresholds.
    pub fn new(service: FailoverService, journal: Option<Journal>) -> Self {
        AppState {
            service,
            journal,
            kpi_config: Arc::new(KpiConfig::default()),
        }
    }

    /// The same state with other KPI thresholds.
    pub fn with_kpi_config(mut self, config: KpiConfig) -> Self {
        self.kpi_config = Arc::new(config);
        self
    }

    /// The failover service.
    pub fn service(&self) -> &FailoverService {
        &self.service
    }

    /// The latest snapshot. Never waits.
    pub fn snapshot(&self) -> Arc<WeatherSnapshot> {
        self.service.snapshot()
    }

    /// The incident journal, if there is one.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// The current time, on the service's clock (so ages and KPIs agree
    /// with the snapshot's times, and tests can pin it).
    pub fn now(&self) -> DateTime<Utc> {
        self.service.now()
    }

    /// The KPI thresholds.
    pub fn kpi_config(&self) -> &KpiConfig {
        &self.kpi_config
    }
}
