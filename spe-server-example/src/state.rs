//! What the handlers read: the [`FailoverService`]'s current snapshot, its
//! breaker's metrics, the incident journal, the prediction chain's latest
//! answer and the archive of past predictions; and what the edges need:
//! the admin check, the rate limit, the metrics registry, the HTTP limits
//! and the signal that ends the event streams at shutdown.
//!
//! The failover service (in `spe-core`) owns the data logic: it refreshes
//! from the live source in the background, falls back to the synthetic
//! generator, and publishes an immutable snapshot. A handler takes the
//! current `Arc<WeatherSnapshot>` (a reference-count bump) and works from it;
//! it never waits on a refresh and never calls an upstream.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use spe_core::{
    ChainResult, FailoverService, Journal, KpiConfig, KpiSet, PredictionChain, WeatherSnapshot,
    compute_kpis, live_data_freshness_kpi,
};
use tokio::sync::watch;

use crate::archive::ForecastArchive;
use crate::auth::AdminAuth;
use crate::dashboard_cache::DashboardCache;
use crate::history::History;
use crate::layers::Hardening;
use crate::metrics::Metrics;
use crate::persistence::Persisted;
use crate::rate_limit::RateLimiter;

/// Calls a minute to `POST /api/predictions/generate` per client, by default.
pub const DEFAULT_GENERATE_PER_MINUTE: u32 = 6;

/// The state shared by every handler. Cheap to clone (one reference
/// count: axum clones it for every request).
///
/// ```
/// use std::sync::Arc;
/// use spe_core::{FailoverService, Replay, Site};
/// use spe_server_example::{AppState, Hardening, RateLimiter};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let source = Replay::from_csv_str(
///     "time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m\n2020-01-01T00:00Z,1,0,50,3\n",
/// )?;
/// let service = FailoverService::builder(Site::paris(), Arc::new(source)).build()?;
/// let state = AppState::new(service, None)
///     .with_admin_token(Some("s3cret".to_owned()))
///     .with_rate_limiter(RateLimiter::new(10))
///     .with_hardening(Hardening::default());
/// assert!(state.admin().has_token());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// What the state holds; copied on write by the `with_*` methods.
#[derive(Debug, Clone)]
struct Inner {
    service: FailoverService,
    journal: Option<Journal>,
    kpi_config: Arc<KpiConfig>,
    admin: AdminAuth,
    rate_limiter: RateLimiter,
    metrics: Arc<Metrics>,
    hardening: Arc<Hardening>,
    streams_stop: Arc<watch::Sender<bool>>,
    predictions: Option<PredictionChain>,
    archive: Option<ForecastArchive>,
    history: Option<History>,
    unavailable: Arc<[Persisted]>,
    dashboard_cache: Arc<DashboardCache>,
}

impl AppState {
    /// State reading `service`'s snapshots and `journal`'s incidents (none:
    /// `/api/incidents` answers an empty list), with the default KPI
    /// thresholds, no admin token (loopback clients only), the default rate
    /// limit and the default HTTP limits.
    pub fn new(service: FailoverService, journal: Option<Journal>) -> Self {
        let inner = Inner {
            service,
            journal,
            kpi_config: Arc::new(KpiConfig::default()),
            admin: AdminAuth::new(None),
            rate_limiter: RateLimiter::new(DEFAULT_GENERATE_PER_MINUTE),
            metrics: Arc::new(Metrics::new()),
            hardening: Arc::new(Hardening::default()),
            streams_stop: Arc::new(watch::channel(false).0),
            predictions: None,
            archive: None,
            history: None,
            unavailable: Arc::new([]),
            dashboard_cache: Arc::new(DashboardCache::default()),
        };
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The state to change (copied if shared).
    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// The same state with this archive of past predictions (none: the
    /// forecast error of the last day is unknown).
    pub fn with_archive(mut self, archive: ForecastArchive) -> Self {
        self.inner_mut().archive = Some(archive);
        self
    }

    /// The same state with this history store (none: `GET /api/history`
    /// answers 503).
    pub fn with_history(mut self, history: History) -> Self {
        self.inner_mut().history = Some(history);
        self
    }

    /// The same state knowing that these parts of the data directory could
    /// not be opened (`GET /readyz` reports them). Parts never configured
    /// (a state without a history store, say) are not missing: only what
    /// the server tried to open and could not.
    pub fn with_unavailable(mut self, missing: impl IntoIterator<Item = Persisted>) -> Self {
        let mut missing: Vec<Persisted> = missing.into_iter().collect();
        missing.sort_unstable();
        missing.dedup();
        self.inner_mut().unavailable = missing.into();
        self
    }

    /// The parts of the data directory the server runs without.
    pub fn unavailable(&self) -> &[Persisted] {
        &self.inner.unavailable
    }

    /// The history store, if there is one.
    pub fn history(&self) -> Option<&History> {
        self.inner.history.as_ref()
    }

    /// The archive of past predictions, if there is one.
    pub fn archive(&self) -> Option<&ForecastArchive> {
        self.inner.archive.as_ref()
    }

    /// The KPIs of `snapshot` at `now`, with the forecast error of the last
    /// day when there is an archive, and the data freshness of the last
    /// live data ([`live_data_freshness_kpi`]).
    pub fn kpis(&self, snapshot: &WeatherSnapshot, now: DateTime<Utc>) -> KpiSet {
        let config = &self.inner.kpi_config;
        let mut kpis = match &self.inner.archive {
            Some(archive) => archive.kpis(&snapshot.energy, now, config),
            None => compute_kpis(&snapshot.energy, now, config),
        };
        kpis.data_freshness_s =
            live_data_freshness_kpi(&snapshot.energy, snapshot.last_live_at, now, config);
        kpis
    }

    /// The serialized dashboard of the current second (see
    /// [`dashboard_cache`](crate::dashboard_cache)).
    pub fn dashboard_cache(&self) -> &DashboardCache {
        &self.inner.dashboard_cache
    }

    /// The same state with this prediction chain (none: `/api/predictions`
    /// answers 503 and `"forecast"` is `null`).
    pub fn with_predictions(mut self, chain: PredictionChain) -> Self {
        self.inner_mut().predictions = Some(chain);
        self
    }

    /// The prediction chain, if there is one.
    pub fn predictions(&self) -> Option<&PredictionChain> {
        self.inner.predictions.as_ref()
    }

    /// The last predictions and the time to measure their age at. Never waits.
    pub fn latest_predictions(&self) -> Option<(Arc<ChainResult>, DateTime<Utc>)> {
        let chain = self.inner.predictions.as_ref()?;
        Some((chain.latest()?, chain.now()))
    }

    /// The same state with other KPI thresholds.
    pub fn with_kpi_config(mut self, config: KpiConfig) -> Self {
        self.inner_mut().kpi_config = Arc::new(config);
        self
    }

    /// The same state with this admin token (`None`: loopback clients only).
    pub fn with_admin_token(mut self, token: Option<String>) -> Self {
        self.inner_mut().admin = AdminAuth::new(token);
        self
    }

    /// The same state with this rate limit on regeneration.
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.inner_mut().rate_limiter = limiter;
        self
    }

    /// The same state with these HTTP limits and CORS origins.
    pub fn with_hardening(mut self, hardening: Hardening) -> Self {
        self.inner_mut().hardening = Arc::new(hardening);
        self
    }

    /// The failover service.
    pub fn service(&self) -> &FailoverService {
        &self.inner.service
    }

    /// The latest snapshot. Never waits.
    pub fn snapshot(&self) -> Arc<WeatherSnapshot> {
        self.inner.service.snapshot()
    }

    /// The incident journal, if there is one.
    pub fn journal(&self) -> Option<&Journal> {
        self.inner.journal.as_ref()
    }

    /// The current time, on the service's clock (so ages and KPIs agree
    /// with the snapshot's times, and tests can pin it).
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.service.now()
    }

    /// The KPI thresholds.
    pub fn kpi_config(&self) -> &KpiConfig {
        &self.inner.kpi_config
    }

    /// The admin check of `POST /api/predictions/generate`.
    pub fn admin(&self) -> &AdminAuth {
        &self.inner.admin
    }

    /// The rate limit of `POST /api/predictions/generate`.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.rate_limiter
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The HTTP limits and CORS origins.
    pub fn hardening(&self) -> &Hardening {
        &self.inner.hardening
    }

    /// End every event stream (`/api/events`), so a graceful shutdown is
    /// not held up by clients that never hang up. Streams opened afterwards
    /// end at once.
    pub fn stop_streams(&self) {
        self.inner.streams_stop.send_replace(true);
    }

    /// A receiver that turns `true` when the streams must end.
    pub fn streams_stopped(&self) -> watch::Receiver<bool> {
        self.inner.streams_stop.subscribe()
    }
}
