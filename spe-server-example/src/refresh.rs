//! The background task that builds snapshots.
//!
//! Each refresh asks the live source (Open-Meteo) for the weather of a window
//! around now (2 past days, 7 days from today) and runs the energy twin on
//! it: a `nominal` snapshot. On any error it logs a warning and builds an
//! `estimation` snapshot from the synthetic generator instead, with a notice
//! saying why. The first snapshot is synthetic and built before the server
//! listens, so the dashboard is ready at once and never waits on the network.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use spe_core::{DataSource, Generator, Site, SourceError, TimeAxis, Window};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::state::Snapshot;

/// Whole local days before today in the window.
pub const PAST_DAYS: u16 = 2;
/// Days from today on (today included) in the window.
pub const FORECAST_DAYS: u16 = 7;

/// Why the first snapshot is synthetic.
pub const STARTUP_REASON: &str = "live weather not fetched yet: the server has just started";

/// Builds snapshots from a live source, with the synthetic generator behind it.
#[derive(Debug, Clone)]
pub struct Refresher {
    source: Arc<dyn DataSource>,
    generator: Generator,
    site: Site,
}

impl Refresher {
    /// A refresher for `site` reading `source`, falling back to `generator`.
    pub fn new(source: Arc<dyn DataSource>, generator: Generator, site: Site) -> Self {
        Refresher {
            source,
            generator,
            site,
        }
    }

    /// The site.
    pub fn site(&self) -> &Site {
        &self.site
    }

    fn window_axis(&self, now: DateTime<Utc>) -> Result<(Window, TimeAxis), SourceError> {
        let window = Window::new(now, PAST_DAYS, FORECAST_DAYS)?;
        let axis = window.axis(&self.site)?;
        Ok((window, axis))
    }

    /// An estimation snapshot at `now`, from the synthetic generator alone.
    /// Fails only if `now` is too far from the present for a time axis.
    pub fn synthetic(
        &self,
        now: DateTime<Utc>,
        reason: impl Into<String>,
    ) -> Result<Snapshot, SourceError> {
        let (_, axis) = self.window_axis(now)?;
        let frames = self.generator.generate(&self.site, axis, now);
        Ok(Snapshot::estimation(self.site.clone(), frames, now, reason))
    }

    /// A snapshot at `now`: nominal from the live source if it answers,
    /// else estimation from the synthetic generator.
    pub async fn refresh(&self, now: DateTime<Utc>) -> Result<Snapshot, SourceError> {
        let (window, _) = self.window_axis(now)?;
        let live = match self.source.fetch(&self.site, &window).await {
            Ok(weather) => self
                .generator
                .twin(&self.site)
                .energy(&weather)
                .map(|energy| (weather, energy))
                .map_err(|e| format!("the energy model rejected the live weather: {e}")),
            Err(e) => Err(e.to_string()),
        };
        match live {
            Ok((weather, energy)) => Ok(Snapshot::nominal(self.site.clone(), weather, energy, now)),
            Err(reason) => {
                tracing::warn!(source = self.source.name(), %reason, "live weather unavailable; using the synthetic generator");
                self.synthetic(now, reason)
            }
        }
    }

    /// Refresh at once, then every `every`, publishing each snapshot on
    /// `snapshots`. Stops when every receiver is gone or the task is aborted.
    pub fn spawn(self, every: Duration, snapshots: watch::Sender<Arc<Snapshot>>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let snapshot = match self.refresh(Utc::now()).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot build a snapshot; keeping the previous one");
                        continue;
                    }
                };
                let previous = snapshots.borrow().mode;
                if previous != snapshot.mode {
                    tracing::info!(from = %previous, to = %snapshot.mode, "mode changed");
                }
                tracing::debug!(mode = %snapshot.mode, hours = snapshot.weather.len(), "snapshot refreshed");
                if snapshots.send(Arc::new(snapshot)).is_err() {
                    break;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use spe_core::{Provenance, WeatherFrame};

    /// Fails every fetch with a refused connection.
    #[derive(Debug)]
    struct Down;

    #[async_trait]
    impl DataSource for Down {
        fn name(&self) -> &str {
            "down"
        }
        async fn fetch(&self, _: &Site, _: &Window) -> Result<WeatherFrame, SourceError> {
            Err(SourceError::Connect {
                source_name: "down".into(),
                message: "connection refused".into(),
            })
        }
    }

    /// Serves synthetic weather relabelled as live.
    #[derive(Debug)]
    struct Up;

    #[async_trait]
    impl DataSource for Up {
        fn name(&self) -> &str {
            "up"
        }
        async fn fetch(&self, site: &Site, window: &Window) -> Result<WeatherFrame, SourceError> {
            let axis = window.axis(site)?;
            Ok(Generator::with_seed(1)
                .weather(site, axis, window.now())
                .with_provenance(Provenance::Live))
        }
    }

    use chrono::TimeZone;
    use spe_core::Mode;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0)
            .single()
            .expect("valid time")
    }

    fn refresher(source: Arc<dyn DataSource>) -> Refresher {
        Refresher::new(source, Generator::default(), Site::paris())
    }

    #[tokio::test]
    async fn a_failing_source_gives_an_estimation_snapshot() {
        let snapshot = refresher(Arc::new(Down))
            .refresh(now())
            .await
            .expect("snapshot");
        assert_eq!(snapshot.mode, Mode::Estimation);
        assert!(snapshot.is_degraded());
        assert_eq!(snapshot.weather.provenance(), Provenance::Synthetic);
        assert_eq!(snapshot.weather.len(), 24 * 9);
        let reason = snapshot.reason.as_deref().expect("a reason");
        assert!(reason.contains("connection refused"), "{reason}");
        assert!(
            snapshot
                .notice
                .as_deref()
                .is_some_and(|n| n.contains("connection refused"))
        );
    }

    #[tokio::test]
    async fn a_working_source_gives_a_nominal_snapshot() {
        let snapshot = refresher(Arc::new(Up))
            .refresh(now())
            .await
            .expect("snapshot");
        assert_eq!(snapshot.mode, Mode::Nominal);
        assert!(!snapshot.is_degraded());
        assert_eq!(snapshot.weather.provenance(), Provenance::Live);
        assert_eq!(snapshot.energy.provenance(), Provenance::Live);
        assert_eq!(snapshot.energy.len(), snapshot.weather.len());
        assert_eq!(snapshot.reason, None);
        assert_eq!(snapshot.notice, None);
    }

    #[test]
    fn the_startup_snapshot_is_synthetic_and_deterministic() {
        let r = refresher(Arc::new(Down));
        let a = r.synthetic(now(), STARTUP_REASON).expect("snapshot");
        let b = r.synthetic(now(), STARTUP_REASON).expect("snapshot");
        assert_eq!(a, b);
        assert_eq!(a.mode, Mode::Estimation);
        assert_eq!(a.generated_at, now());
        assert!(
            a.weather
                .axis()
                .index_of(
                    Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0)
                        .single()
                        .expect("valid")
                )
                .is_some()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_publishes_at_once_and_stops_without_receivers() {
        let r = refresher(Arc::new(Up));
        let initial = r.synthetic(now(), STARTUP_REASON).expect("snapshot");
        let (tx, mut rx) = watch::channel(Arc::new(initial));
        let task = r.spawn(Duration::from_secs(300), tx);
        rx.changed().await.expect("a first refresh");
        assert_eq!(rx.borrow().mode, Mode::Nominal);
        drop(rx);
        // With time paused, the next tick comes at once; the send fails and the task ends.
        task.await.expect("the task ends cleanly");
    }
}
