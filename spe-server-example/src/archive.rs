//! The forecast error of the last day: spe-core's [`PredictionArchive`]
//! wired to the server.
//!
//! - [`ForecastArchive::open`]: the archive persisted in the cache directory
//!   (`prediction-archive.<generation>.spc`, crash-safe), opened at start-up;
//!   corrupt files found there are quarantined by spe-core and journaled
//!   here as a `cache_corrupt` incident, like the weather cache's;
//! - [`record_results`]: the background task that archives every fresh
//!   answer of the prediction chain (tier `primary` or `fallback`; a result
//!   served from the chain's cache was archived when it was made), off the
//!   async workers (the archive fsyncs); spe-core thins them to those a
//!   day-ahead answer can come from (about one an hour), so the forecast
//!   error judges the same predictions as the history store's day-ahead
//!   series;
//! - [`ForecastArchive::kpis`]: the dashboard's KPIs with
//!   `forecast_error_pct`, the mean absolute percentage error over the last
//!   24 whole hours of the demand predicted for each hour at least a day
//!   before it ([`DAY_AHEAD`]). Unknown (`null`, status `ok`) until the
//!   archive holds day-old predictions: a fresh start has nothing to judge.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use spe_core::{
    ArchiveConfig, CacheError, DAY_AHEAD, EnergyFrame, Journal, Kpi, KpiConfig, KpiSet,
    PREDICTION_ARCHIVE_NAME, PredictionArchive, PredictionChain, Predictions, Tier,
    compute_kpis_with_forecast, forecast_error_kpi,
};
use tokio::sync::watch;

use crate::app;

/// The archive of past predictions and a revision that counts what was
/// recorded (so a cached dashboard knows when its forecast error is stale).
/// Cheap to clone: clones share one archive.
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use spe_core::{Forecast, Predictions, Tier};
/// use spe_server_example::archive::ForecastArchive;
///
/// let made = Utc.with_ymd_and_hms(2026, 1, 14, 9, 0, 0).unwrap();
/// let archive = ForecastArchive::in_memory();
/// let predictions = Predictions {
///     start: made,
///     step_s: 3600,
///     forecast: Forecast::new("demo", vec![1000.0; 48], vec![]).unwrap(),
///     made_at: made,
///     tier: Tier::Primary,
///     intervals_from: None,
///     inputs: spe_core::Provenance::Live,
/// };
/// assert!(archive.record(&predictions, made).unwrap());
/// assert_eq!(archive.revision(), 1);
/// // A day and more later, that hour's day-ahead forecast is known.
/// assert_eq!(archive.day_ahead(made + Duration::hours(30)), Some(1000.0));
/// assert_eq!(archive.day_ahead(made + Duration::hours(10)), None); // made too late
/// ```
#[derive(Debug, Clone)]
pub struct ForecastArchive {
    archive: Arc<PredictionArchive>,
    revision: Arc<watch::Sender<u64>>,
}

impl ForecastArchive {
    fn new(archive: PredictionArchive) -> Self {
        ForecastArchive {
            archive: Arc::new(archive),
            revision: Arc::new(watch::channel(0).0),
        }
    }

    /// An archive in memory only (tests; lost at exit).
    pub fn in_memory() -> Self {
        ForecastArchive::new(PredictionArchive::in_memory(ArchiveConfig::default()))
    }

    /// Open (or create) the archive in `dir` (blocking: call it at
    /// start-up). Damage found there is logged and journaled in `journal`
    /// (a `cache_corrupt` incident, opened and closed at once); an archive
    /// that cannot be opened at all is logged at `error` and `None` is
    /// returned: the server runs without a forecast error.
    pub fn open(dir: &Path, journal: Option<&Journal>, now: DateTime<Utc>) -> Option<Self> {
        match PredictionArchive::open(dir, ArchiveConfig::default()) {
            Ok((archive, report)) => {
                app::journal_cache_report(
                    journal,
                    PREDICTION_ARCHIVE_NAME,
                    &report,
                    now,
                    "starting with an empty prediction archive",
                );
                tracing::info!(
                    entries = archive.len(),
                    "prediction archive ready (judges the forecast error of the last day)"
                );
                Some(ForecastArchive::new(archive))
            }
            Err(e) => {
                tracing::error!(
                    dir = %dir.display(),
                    error = %e,
                    "cannot open the prediction archive; running without the forecast error"
                );
                None
            }
        }
    }

    /// Archive `predictions` at `now` (see [`PredictionArchive::record`]):
    /// whether they were kept. Blocking file I/O (an fsync): from async
    /// code, call it in `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// The write failed; the archive in memory keeps them all the same.
    pub fn record(
        &self,
        predictions: &Predictions,
        now: DateTime<Utc>,
    ) -> Result<bool, CacheError> {
        let recorded = self.archive.record(predictions, now);
        // Kept in memory even when the write failed: the answers change.
        if !matches!(recorded, Ok(false)) {
            self.revision.send_modify(|r| *r += 1);
        }
        recorded
    }

    /// How many times the archive changed since it was opened.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// A receiver of [`revision`](Self::revision) (tests wait on it).
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Number of archived predictions.
    pub fn len(&self) -> usize {
        self.archive.len()
    }

    /// Whether nothing is archived.
    pub fn is_empty(&self) -> bool {
        self.archive.is_empty()
    }

    /// The demand predicted for `time` at least [`DAY_AHEAD`] before it.
    pub fn day_ahead(&self, time: DateTime<Utc>) -> Option<f64> {
        self.archive.forecast_for(time, DAY_AHEAD)
    }

    /// The KPI `forecast_error_pct` of `frame`'s demand at `now`.
    pub fn forecast_error(
        &self,
        frame: &EnergyFrame,
        now: DateTime<Utc>,
        config: &KpiConfig,
    ) -> Kpi {
        forecast_error_kpi(frame, now, config, |t| self.day_ahead(t))
    }

    /// Every KPI of `frame` at `now`, the forecast error included.
    pub fn kpis(&self, frame: &EnergyFrame, now: DateTime<Utc>, config: &KpiConfig) -> KpiSet {
        compute_kpis_with_forecast(frame, now, config, |t| self.day_ahead(t))
    }
}

/// The background task: archive each fresh answer of `chain` (tier
/// `primary` or `fallback`) as it is published, until `stop` turns `true`.
/// An answer published before the stop is archived before the task ends.
/// A write error is logged; the next answer tries again. The chain is
/// subscribed to when this is called, not when the task first runs, so an
/// answer published in between is not missed (one seen twice is thinned out
/// by the archive).
pub fn record_results(
    archive: ForecastArchive,
    chain: PredictionChain,
    mut stop: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let mut results = chain.subscribe();
    async move {
        let mut stopping = false;
        loop {
            let latest = results.borrow_and_update().clone();
            if let Some(result) = latest.filter(|r| r.tier != Tier::Cache) {
                let now = chain.now();
                let archive = archive.clone();
                let recorded =
                    tokio::task::spawn_blocking(move || archive.record(&result.predictions, now))
                        .await;
                match recorded {
                    Ok(Ok(true)) => tracing::debug!("predictions archived"),
                    Ok(Ok(false)) => {
                        tracing::debug!(
                            "predictions not archived: made no later than the newest archived"
                        )
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "cannot write the prediction archive")
                    }
                    Err(e) => tracing::error!(error = %e, "the archive write failed"),
                }
            }
            if stopping {
                return;
            }
            // Results first: an answer published just before the stop is
            // still archived (else the restart would bring it back as tier
            // `cache`, which is not archived, and its hour would be lost).
            tokio::select! {
                biased;
                changed = results.changed() => if changed.is_err() { return },
                _ = stop.wait_for(|s| *s) => {
                    if !results.has_changed().unwrap_or(false) {
                        return;
                    }
                    stopping = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;
    use futures_util::FutureExt;
    use spe_core::{
        Forecast, IncidentKind, ManualClock, ModelPredictor, PredictionRequest, SeasonalNaive,
    };
    use std::time::Duration;

    fn t0() -> DateTime<Utc> {
        crate::test_support::t0()
    }

    fn predictions(made_at: DateTime<Utc>, level: f64) -> Predictions {
        Predictions {
            start: made_at,
            step_s: 3600,
            forecast: Forecast::new("test", vec![level; 48], vec![]).expect("valid"),
            made_at,
            tier: Tier::Fallback,
            intervals_from: None,
            inputs: spe_core::Provenance::Live,
        }
    }

    #[test]
    fn the_archive_survives_a_restart() {
        let dir = TempDir::new();
        let made = t0() - chrono::Duration::hours(30);
        {
            let archive = ForecastArchive::open(dir.path(), None, t0()).expect("opens");
            assert!(archive.is_empty());
            assert!(
                archive
                    .record(&predictions(made, 900.0), made)
                    .expect("written")
            );
            // Made earlier than the newest: not recorded, the revision does
            // not move.
            let earlier = made - chrono::Duration::minutes(10);
            assert!(
                !archive
                    .record(&predictions(earlier, 1.0), made)
                    .expect("no error")
            );
            assert_eq!(archive.revision(), 1);
        }
        let archive = ForecastArchive::open(dir.path(), None, t0()).expect("opens");
        assert_eq!(archive.len(), 1);
        assert_eq!(archive.revision(), 0);
        assert_eq!(
            archive.day_ahead(made + chrono::Duration::hours(24)),
            Some(900.0)
        );
    }

    #[test]
    fn a_corrupt_archive_is_journaled_and_set_aside() {
        let dir = TempDir::new();
        std::fs::write(
            dir.path()
                .join("prediction-archive.00000000000000000001.spc"),
            b"garbage",
        )
        .expect("write");
        let journal = Journal::open(dir.path().join("incidents.journal")).expect("journal");
        let archive = ForecastArchive::open(dir.path(), Some(&journal), t0()).expect("opens");
        assert!(archive.is_empty());
        let incidents = journal.incidents(..);
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        assert_eq!(incidents[0].kind, IncidentKind::CacheCorrupt);
        assert_eq!(incidents[0].component, "cache");
        assert!(!incidents[0].is_open());
        assert!(
            incidents[0].details.starts_with(
                "prediction-archive cache: quarantined prediction-archive.00000000000000000001.spc"
            ),
            "{}",
            incidents[0].details
        );
        assert!(
            incidents[0]
                .resolution
                .as_deref()
                .is_some_and(|r| r.contains("empty prediction archive")),
            "{:?}",
            incidents[0].resolution
        );
    }

    #[tokio::test]
    async fn fresh_answers_of_the_chain_are_archived() {
        let dir = TempDir::new();
        let archive = ForecastArchive::open(dir.path(), None, t0()).expect("opens");
        let chain = PredictionChain::builder()
            .primary(Arc::new(ModelPredictor::new(Arc::new(
                SeasonalNaive::default(),
            ))))
            .build();
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(record_results(archive.clone(), chain.clone(), stop));
        let mut revisions = archive.watch();

        let history: Vec<f64> = (0..24 * 14).map(|t| 500.0 + f64::from(t % 24)).collect();
        let request = PredictionRequest::builder(chain.now(), history)
            .horizon(24)
            .build()
            .expect("valid request");
        let result = chain.generate(request).await.expect("predictions");
        assert_eq!(result.tier, Tier::Primary);
        revisions.wait_for(|r| *r == 1).await.expect("archived");
        assert_eq!(archive.len(), 1);
        let _ = stop_tx.send(true);
        task.await.expect("the task stops");
        // Persisted: the archive reopened after a restart has it.
        drop((archive, chain));
        let reopened = ForecastArchive::open(dir.path(), None, t0()).expect("opens");
        assert_eq!(reopened.len(), 1);
    }

    #[tokio::test]
    async fn an_answer_published_just_before_the_stop_is_archived() {
        let dir = TempDir::new();
        let archive = ForecastArchive::open(dir.path(), None, t0()).expect("opens");
        let clock = ManualClock::new();
        let chain = PredictionChain::builder()
            .primary(Arc::new(ModelPredictor::new(Arc::new(
                SeasonalNaive::default(),
            ))))
            .clock(clock.clone(), t0())
            .build();
        let history: Vec<f64> = (0..24 * 14).map(|t| 500.0 + f64::from(t % 24)).collect();
        // Each round: the task waits for news; then an answer and the stop
        // arrive together (the task is not polled in between). Two days
        // ahead, hourly: each answer has a day-ahead step no later one has,
        // so none is thinned out.
        for round in 1..=8 {
            let (stop_tx, stop) = watch::channel(false);
            let mut task = Box::pin(record_results(archive.clone(), chain.clone(), stop));
            assert!(task.as_mut().now_or_never().is_none(), "waits for news");
            clock.advance(Duration::from_secs(3600));
            let request = PredictionRequest::builder(chain.now(), history.clone())
                .horizon(48)
                .build()
                .expect("valid request");
            chain.generate(request).await.expect("predictions");
            let _ = stop_tx.send(true);
            task.await;
            assert_eq!(archive.len(), round, "round {round}");
        }
    }
}
