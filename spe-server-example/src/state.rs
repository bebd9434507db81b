//! What the handlers read: an immutable [`Snapshot`] behind an `Arc`, swapped
//! atomically by the refresh task through a `tokio::sync::watch` channel.
//!
//! A handler takes the current `Arc<Snapshot>` (a reference-count bump under
//! a short read lock) and works from it; it never waits on a refresh and
//! never calls an upstream.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use spe_core::{EnergyFrame, KpiConfig, Mode, Site, SyntheticFrames, WeatherFrame};
use tokio::sync::watch;

/// Everything the dashboard shows, as of one refresh. Never mutated: a
/// refresh builds a new one and swaps it in.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// `nominal` when the weather came from the live source, `estimation`
    /// when it was generated locally.
    pub mode: Mode,
    /// When the snapshot was assembled.
    pub generated_at: DateTime<Utc>,
    /// The site watched.
    pub site: Site,
    /// Hourly weather.
    pub weather: WeatherFrame,
    /// Hourly demand and supply by source, computed from [`weather`](Self::weather).
    pub energy: EnergyFrame,
    /// Why the service is degraded (machine-oriented, for `/readyz` and the
    /// logs); `None` in nominal mode.
    pub reason: Option<String>,
    /// A sentence for the operator; `None` in nominal mode.
    pub notice: Option<String>,
}

impl Snapshot {
    /// A nominal snapshot from live weather and the energy computed from it.
    pub fn nominal(
        site: Site,
        weather: WeatherFrame,
        energy: EnergyFrame,
        generated_at: DateTime<Utc>,
    ) -> Self {
        Snapshot {
            mode: Mode::Nominal,
            generated_at,
            site,
            weather,
            energy,
            reason: None,
            notice: None,
        }
    }

    /// An estimation snapshot from synthetic frames; `reason` says why live
    /// data is not used and ends up in the operator's notice.
    pub fn estimation(
        site: Site,
        frames: SyntheticFrames,
        generated_at: DateTime<Utc>,
        reason: impl Into<String>,
    ) -> Self {
        let reason = reason.into();
        let notice = format!(
            "Live weather data is unavailable ({reason}). The dashboard shows estimates \
             computed by the local synthetic generator; steering can continue, but check \
             the figures against other sources."
        );
        Snapshot {
            mode: Mode::Estimation,
            generated_at,
            site,
            weather: frames.weather,
            energy: frames.energy,
            reason: Some(reason),
            notice: Some(notice),
        }
    }

    /// Whether the service runs degraded (anything but nominal).
    pub fn is_degraded(&self) -> bool {
        self.mode != Mode::Nominal
    }
}

/// The current time; injectable so tests can pin it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The state shared by every handler: the latest snapshot, the clock and the
/// KPI thresholds. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    clock: Clock,
    kpi_config: Arc<KpiConfig>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("snapshot", &*self.snapshots.borrow())
            .field("kpi_config", &self.kpi_config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State reading the snapshots published on `snapshots`, with the system
    /// clock and the default KPI thresholds.
    pub fn new(snapshots: watch::Receiver<Arc<Snapshot>>) -> Self {
        AppState {
            snapshots,
            clock: Arc::new(Utc::now),
            kpi_config: Arc::new(KpiConfig::default()),
        }
    }

    /// State serving one fixed snapshot forever (tests, demos).
    pub fn fixed(snapshot: Snapshot) -> Self {
        // A receiver keeps the last value after its sender is dropped.
        let (_tx, rx) = watch::channel(Arc::new(snapshot));
        AppState::new(rx)
    }

    /// The same state with another clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same state with other KPI thresholds.
    pub fn with_kpi_config(mut self, config: KpiConfig) -> Self {
        self.kpi_config = Arc::new(config);
        self
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshots.borrow())
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The KPI thresholds.
    pub fn kpi_config(&self) -> &KpiConfig {
        &self.kpi_config
    }
}
