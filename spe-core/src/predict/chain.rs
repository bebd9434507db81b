//! [`PredictionChain`]: the tiers, single flight, the cache and the journal.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tracing::Instrument;

use crate::breaker::{Clock, WallClock};
use crate::cache::{Cache, CacheConfig, CacheError, LoadReport};
use crate::forecast::{AutoModel, DynFit, Forecast};
use crate::journal::{IncidentId, IncidentKind, Journal, JournalError};

use super::predictor::{derive_intervals, join_error};
use super::{
    ChainError, ChainResult, ModelPredictor, PredictionRequest, Predictions, Predictor,
    PredictorError, Tier, TierFailure, check_forecast,
};

/// The cache name [`PredictionChain::open_cache`] uses: files
/// `predictions.<generation>.spc`.
pub const PREDICTIONS_CACHE_NAME: &str = "predictions";

/// The default timeout of the primary predictor: 60 s.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The default timeout of the fallback model: 120 s.
const DEFAULT_FALLBACK_TIMEOUT: Duration = Duration::from_secs(120);

type Outcome = Result<Arc<ChainResult>, ChainError>;

/// The resilient prediction chain: a primary predictor, a statistical
/// fallback, and the last good predictions from a crash-safe cache, with
/// single-flight regeneration and every failure journaled.
///
/// A cheap handle: clones share one chain (an `Arc` inside).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use chrono::Utc;
/// use spe_core::{CommandPredictor, Journal, PredictionChain, PredictionRequest, Tier};
///
/// let (cache, report) = PredictionChain::open_cache("data/cache")?;
/// let chain = PredictionChain::builder()
///     .primary(Arc::new(CommandPredictor::shell("python3 analysis.py").build()))
///     .timeout(Duration::from_secs(30))
///     .cache(cache)
///     .cache_report(report)
///     .journal(Journal::open("data/incidents.journal")?)
///     .build();
///
/// // Right after a restart: the cached predictions, with their age.
/// if let Some(last) = chain.latest() {
///     println!("{} predictions, {} s old", last.tier, last.age(chain.now()).as_secs());
/// }
///
/// let request = PredictionRequest::builder(Utc::now(), vec![50.0; 24 * 28]).build()?;
/// match chain.generate(request).await {
///     Ok(result) => {
///         if result.tier != Tier::Primary {
///             println!("{}", result.notice().unwrap_or_default());
///         }
///     }
///     Err(e) => eprintln!("503: {e}"),
/// }
/// # Ok(()) }
/// ```
///
/// A complete run with a Rust model, no command and no files:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use chrono::Utc;
/// use spe_core::{ModelPredictor, PredictionChain, PredictionRequest, SeasonalNaive, Tier};
///
/// let chain = PredictionChain::builder()
///     .primary(Arc::new(ModelPredictor::new(Arc::new(SeasonalNaive::default()))))
///     .build();
/// let history: Vec<f64> = (0..24 * 14).map(|t| 100.0 + (t % 24) as f64).collect();
/// let result = chain.generate(PredictionRequest::builder(Utc::now(), history).horizon(24).build()?).await?;
/// assert_eq!(result.tier, Tier::Primary);
/// assert_eq!(result.predictions.forecast.mean().len(), 24);
/// assert!(result.predictions.forecast.lower(80.0).is_some());
/// assert_eq!(chain.latest().unwrap().predictions, result.predictions);
/// # Ok(()) }
/// ```
///
/// # Tiers
///
/// 1. **Primary**: the [`primary`](PredictionChainBuilder::primary)
///    predictor, run in a task of its own (a panic is contained) under the
///    [`timeout`](PredictionChainBuilder::timeout) (default 60 s). Without a
///    primary, the fallback model is the primary (as the server does when no
///    prediction command is configured), and there is no tier 2.
/// 2. **Fallback**, if tier 1 failed: the
///    [`fallback`](PredictionChainBuilder::fallback) model ([`AutoModel`] by
///    default) fitted on the request's history, under the
///    [`fallback_timeout`](PredictionChainBuilder::fallback_timeout)
///    (default 120 s).
/// 3. **Cache**, if both failed: the last good predictions in the
///    [`cache`](PredictionChainBuilder::cache), whatever request they
///    answered, with their age. Otherwise [`ChainError::NoPredictions`].
///
/// Every answer is checked with [`check_forecast`]: the horizon, finite
/// values, `lower ≤ upper`, intervals containing the mean and nested, and
/// values plausible (within [`PLAUSIBLE_SPREADS`](super::PLAUSIBLE_SPREADS)
/// spreads of the history's range: a model that answers −1e9 MW is
/// `BadOutput`, and the next tier answers). When the primary
/// gives no interval at a requested level (a model that predicts only the
/// mean), the chain **derives** it: it runs the fallback model on the same
/// request and, step by step, puts the fallback's interval half-widths
/// around the primary's mean (`lower = mean − (fallback mean − fallback
/// lower)`, likewise above), and records the fallback's name in
/// [`Predictions::intervals_from`]. If the fallback cannot forecast either,
/// the primary's answer is `BadOutput`.
///
/// A tier-1 or tier-2 answer is written to the cache
/// ([`Cache::put_async`], durable when it returns) before it is returned;
/// a failed write is journaled (`disk_error`) and the answer still returned.
/// A tier-3 answer is not written again. Every answer, of any tier, becomes
/// [`latest`](PredictionChain::latest) and is sent to
/// [`subscribe`](PredictionChain::subscribe)rs.
///
/// # Single flight and cancellation
///
/// One run at a time: a [`generate`](PredictionChain::generate) call made
/// while a run of an **equal** request is in flight joins it and gets its
/// result; a call with another request (other history, horizon, levels…)
/// waits for that run to end, then runs its own, so that a caller never
/// gets predictions it did not ask for and the primary (a command, a Python
/// callable) never runs twice at once. The run is
/// a task of its own: if every caller waiting for it goes away (their
/// futures dropped) before the predictors have answered, it is cancelled,
/// which kills a prediction command's process group; once they have
/// answered, it runs to its end (cache write, journal, `latest`).
///
/// # Journal
///
/// With a [`journal`](PredictionChainBuilder::journal), an outage of the
/// primary is **one incident** of component
/// [`component`](PredictionChainBuilder::component) (default `prediction`):
/// opened at the first failed run, with the kind of the primary's failure
/// (`model_crash`, `model_timeout`, `model_bad_output`) and what was served
/// instead; a note whenever the way it fails changes (another kind, the
/// fallback failing too, the cache serving); closed when the primary answers
/// again, with the number of failed runs. A still-open incident of the
/// component found in the journal at build (left by a crash) is continued.
/// Cache problems are incidents of component `<component>-cache`: corrupt
/// generations found at open (`cache_corrupt`, opened and closed at build,
/// since the cache handled them), and failing writes (`disk_error`, one
/// incident until a write succeeds again).
#[derive(Clone)]
pub struct PredictionChain {
    inner: Arc<Inner>,
}

/// How many fresh answers [`PredictionChain::fresh_answers`] keeps for a
/// reader that falls behind.
pub const FRESH_BACKLOG: usize = 64;

struct Inner {
    primary: Option<Arc<dyn Predictor>>,
    fallback: Arc<dyn Predictor>,
    timeout: Duration,
    fallback_timeout: Duration,
    cache: Option<Cache<Predictions>>,
    journal: Option<Journal>,
    component: String,
    clock: Arc<dyn Clock>,
    wall: WallClock,
    latest: watch::Sender<Option<Arc<ChainResult>>>,
    /// Every fresh answer (tier primary or fallback), in order.
    fresh: broadcast::Sender<Arc<ChainResult>>,
    flight: Mutex<Option<Flight>>,
    next_flight: AtomicU64,
    /// Incident bookkeeping, updated inside the blocking journal tasks so a
    /// cancelled caller cannot leave it half-done.
    incidents: Mutex<IncidentState>,
}

/// The run in flight.
struct Flight {
    id: u64,
    /// What it predicts: only an equal request joins it.
    request: Arc<PredictionRequest>,
    waiters: usize,
    result: watch::Receiver<Option<Outcome>>,
    abort: AbortHandle,
    /// The predictors have answered: the run finishes even without waiters.
    committed: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct IncidentState {
    /// The open incident of the primary's outage.
    outage: Option<IncidentId>,
    failed_runs: u64,
    /// How the last failed run failed, to note only changes.
    last_signature: Option<String>,
    /// The open incident of failing cache writes.
    disk: Option<IncidentId>,
    disk_failures: u64,
}

impl std::fmt::Debug for PredictionChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictionChain")
            .field("primary", &self.inner.primary.as_ref().map(|p| p.name()))
            .field("fallback", &self.inner.fallback.name())
            .field("timeout", &self.inner.timeout)
            .field("fallback_timeout", &self.inner.fallback_timeout)
            .field("cache", &self.inner.cache)
            .field("component", &self.inner.component)
            .finish_non_exhaustive()
    }
}

/// Builds a [`PredictionChain`]; see [`PredictionChain::builder`].
pub struct PredictionChainBuilder {
    primary: Option<Arc<dyn Predictor>>,
    fallback: Arc<dyn DynFit>,
    timeout: Duration,
    fallback_timeout: Duration,
    cache: Option<Cache<Predictions>>,
    cache_report: Option<LoadReport>,
    journal: Option<Journal>,
    component: String,
    clock: Option<(Arc<dyn Clock>, DateTime<Utc>)>,
}

impl std::fmt::Debug for PredictionChainBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictionChainBuilder")
            .field("primary", &self.primary.as_ref().map(|p| p.name()))
            .field("fallback", &self.fallback.name())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PredictionChainBuilder {
    /// The primary predictor (default: none, the fallback model is the primary).
    pub fn primary(mut self, predictor: Arc<dyn Predictor>) -> Self {
        self.primary = Some(predictor);
        self
    }

    /// The fallback model (default [`AutoModel::default`]).
    pub fn fallback(mut self, model: Arc<dyn DynFit>) -> Self {
        self.fallback = model;
        self
    }

    /// The primary's timeout (default 60 s; at least 1 ms). A
    /// [`CommandPredictor`](super::CommandPredictor) also has its own; the
    /// shorter one stops it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The fallback model's timeout (default 120 s; at least 1 ms). A model
    /// fit cannot be interrupted: past the timeout the chain stops waiting
    /// and the fit ends in the background.
    pub fn fallback_timeout(mut self, timeout: Duration) -> Self {
        self.fallback_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Keep the last good predictions here (see [`PredictionChain::open_cache`])
    /// and start from them: [`latest`](PredictionChain::latest) serves them
    /// (tier `cache`) until the first run.
    pub fn cache(mut self, cache: Cache<Predictions>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// What [`Cache::open`] found: corrupt or unreadable generations are
    /// journaled at build.
    pub fn cache_report(mut self, report: LoadReport) -> Self {
        self.cache_report = Some(report);
        self
    }

    /// Journal incidents here.
    pub fn journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The component name in incidents (default `prediction`).
    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = component.into();
        self
    }

    /// The clock for timeouts and timestamps, and the wall time at its
    /// current reading (tests: a [`ManualClock`](crate::ManualClock)):
    /// timestamps are then `wall_now` plus the clock's progress. Default: the
    /// system clock for timeouts and the system's wall time for timestamps,
    /// read at each use (`Utc::now()`), so a long-running server follows the
    /// system's clock corrections.
    pub fn clock(mut self, clock: impl Clock, wall_now: DateTime<Utc>) -> Self {
        self.clock = Some((Arc::new(clock), wall_now));
        self
    }

    /// Build the chain. Journals the cache report and checks the cached
    /// predictions (blocking I/O: a few journal records at most).
    pub fn build(self) -> PredictionChain {
        let (clock, wall) = WallClock::from_setting(self.clock);
        let wall_now = wall.now();
        let mut incidents = IncidentState::default();
        if let Some(journal) = &self.journal {
            // Incidents left open by a stop during an outage: continued, and
            // closed when the primary (or the cache write) works again.
            const RESTARTED: &str =
                "restarted during this incident: continued (counts start again from here)";
            incidents.outage = journal.continue_open_incident(&self.component, wall_now, RESTARTED);
            incidents.disk = journal.continue_open_incident(
                &cache_component(&self.component),
                wall_now,
                RESTARTED,
            );
            if let Some(report) = &self.cache_report {
                journal_load_report(journal, &self.component, report, wall_now);
            }
        }
        let initial = self.cache.as_ref().and_then(|cache| {
            let hit = cache.get()?;
            match hit.value.validate() {
                Ok(()) => Some(Arc::new(ChainResult {
                    predictions: (*hit.value).clone(),
                    tier: Tier::Cache,
                    failures: Vec::new(),
                })),
                Err(reason) => {
                    let details = format!(
                        "cached predictions (generation {}) are invalid and not served: {reason}",
                        hit.generation
                    );
                    tracing::error!(%details);
                    if let Some(journal) = &self.journal {
                        open_and_close(
                            journal,
                            &cache_component(&self.component),
                            IncidentKind::CacheCorrupt,
                            wall_now,
                            &details,
                        );
                    }
                    None
                }
            }
        });
        let fallback: Arc<dyn Predictor> = Arc::new(ModelPredictor::new(self.fallback));
        PredictionChain {
            inner: Arc::new(Inner {
                primary: self.primary,
                fallback,
                timeout: self.timeout,
                fallback_timeout: self.fallback_timeout,
                cache: self.cache,
                journal: self.journal,
                component: self.component,
                clock,
                wall,
                latest: watch::channel(initial).0,
                fresh: broadcast::channel(FRESH_BACKLOG).0,
                flight: Mutex::new(None),
                next_flight: AtomicU64::new(1),
                incidents: Mutex::new(incidents),
            }),
        }
    }
}

fn cache_component(component: &str) -> String {
    format!("{component}-cache")
}

/// Open and close an incident at once: a problem found and handled.
fn open_and_close(
    journal: &Journal,
    component: &str,
    kind: IncidentKind,
    at: DateTime<Utc>,
    details: &str,
) {
    let result = journal
        .open_incident(component, kind, at, details)
        .and_then(|id| journal.close_incident(id, at, "handled at startup"));
    if let Err(e) = result {
        tracing::error!(error = %e, "could not write to the incident journal");
    }
}

fn journal_load_report(journal: &Journal, component: &str, report: &LoadReport, at: DateTime<Utc>) {
    let serving = match report.loaded {
        Some(g) => format!("serving generation {g}"),
        None => "no valid generation left".into(),
    };
    if !report.quarantined.is_empty() {
        let files: Vec<String> = report
            .quarantined
            .iter()
            .map(|q| {
                let name = q
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match &q.moved_to {
                    Some(to) => format!("{name} ({:?}) moved to {}", q.reason, to.display()),
                    None => format!("{name} ({:?}) could not be moved aside", q.reason),
                }
            })
            .collect();
        let details = format!(
            "{} corrupt prediction cache file(s) quarantined: {}; {serving}",
            files.len(),
            files.join(", ")
        );
        tracing::warn!(%details);
        open_and_close(
            journal,
            &cache_component(component),
            IncidentKind::CacheCorrupt,
            at,
            &details,
        );
    }
    if !report.unreadable.is_empty() {
        let files: Vec<String> = report
            .unreadable
            .iter()
            .map(|u| format!("{} ({})", u.path.display(), u.error))
            .collect();
        let details = format!(
            "{} prediction cache file(s) unreadable, left in place: {}; {serving}",
            files.len(),
            files.join(", ")
        );
        tracing::warn!(%details);
        open_and_close(
            journal,
            &cache_component(component),
            IncidentKind::DiskError,
            at,
            &details,
        );
    }
}

impl PredictionChain {
    /// Start building a chain: no primary (the fallback is the primary),
    /// [`AutoModel`] as the fallback, no cache, no journal, the system clock.
    pub fn builder() -> PredictionChainBuilder {
        PredictionChainBuilder {
            primary: None,
            fallback: Arc::new(AutoModel::default()),
            timeout: DEFAULT_TIMEOUT,
            fallback_timeout: DEFAULT_FALLBACK_TIMEOUT,
            cache: None,
            cache_report: None,
            journal: None,
            component: "prediction".into(),
            clock: None,
        }
    }

    /// Open (or create) the predictions cache in `dir`, named
    /// [`PREDICTIONS_CACHE_NAME`], with the default [`CacheConfig`]. Pass both
    /// halves to the builder ([`cache`](PredictionChainBuilder::cache),
    /// [`cache_report`](PredictionChainBuilder::cache_report)). Blocking I/O.
    ///
    /// A generation whose predictions fail [`Predictions::validate`] is
    /// quarantined like a damaged file and the previous one served
    /// ([`Cache::open_checked`]).
    ///
    /// # Errors
    ///
    /// As [`Cache::open`]: the directory cannot be created or listed.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let (cache, report) = spe_core::PredictionChain::open_cache(dir.path())?;
    /// assert!(cache.get().is_none() && report.is_clean());
    /// # Ok(()) }
    /// ```
    pub fn open_cache(
        dir: impl AsRef<Path>,
    ) -> Result<(Cache<Predictions>, LoadReport), CacheError> {
        Cache::open_checked(
            dir,
            PREDICTIONS_CACHE_NAME,
            CacheConfig::default(),
            Predictions::validate,
        )
    }

    /// Run the chain for `request`, single-flight (see the type's
    /// documentation): tier 1, else tier 2, else tier 3.
    ///
    /// Needs a tokio runtime (the run is a task).
    ///
    /// # Errors
    ///
    /// [`ChainError::InvalidRequest`] (nothing run),
    /// [`ChainError::NoPredictions`] (every tier failed), or
    /// [`ChainError::Interrupted`] (no runtime, or it is shutting down).
    pub async fn generate(
        &self,
        request: PredictionRequest,
    ) -> Result<Arc<ChainResult>, ChainError> {
        request.validate()?;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(ChainError::Interrupted(
                "generate needs a tokio runtime".into(),
            ));
        };
        let request = Arc::new(request);
        let (mut result, guard) = loop {
            match self.join_or_start(&runtime, &request) {
                Flying::Joined(result, guard) => break (result, guard),
                Flying::Busy(mut other) => {
                    // Another request's run: wait for its end (a result, or
                    // its cancellation), then try again.
                    let _ = other.wait_for(Option::is_some).await;
                }
            }
        };
        let outcome = match result.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        drop(guard);
        outcome.unwrap_or_else(|| {
            Err(ChainError::Interrupted(
                "the run ended without a result".into(),
            ))
        })
    }

    fn join_or_start(
        &self,
        runtime: &tokio::runtime::Handle,
        request: &Arc<PredictionRequest>,
    ) -> Flying {
        let inner = &self.inner;
        let mut slot = inner.flight();
        if let Some(flight) = slot.as_mut() {
            if *flight.request != **request {
                tracing::debug!(
                    run = flight.id,
                    "another request's prediction run is in flight: waiting for its end"
                );
                return Flying::Busy(flight.result.clone());
            }
            flight.waiters += 1;
            tracing::debug!(
                run = flight.id,
                waiters = flight.waiters,
                "joining the prediction run in flight"
            );
            return Flying::Joined(
                flight.result.clone(),
                WaiterGuard {
                    inner: Arc::clone(inner),
                    id: flight.id,
                },
            );
        }
        let id = inner.next_flight.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        let committed = Arc::new(AtomicBool::new(false));
        let task_inner = Arc::clone(inner);
        let task_committed = Arc::clone(&committed);
        let task_request = Arc::clone(request);
        let span = tracing::info_span!(
            "prediction_run",
            run = id,
            horizon = request.horizon,
            history = request.history.len()
        );
        let handle = runtime.spawn(
            async move {
                // Frees the slot however the task ends (a panic included),
                // so that no later call joins a run that will never answer.
                let _slot = ClearFlight {
                    inner: Arc::clone(&task_inner),
                    id,
                };
                let outcome = Arc::clone(&task_inner)
                    .run(task_request, task_committed)
                    .await;
                task_inner.finish(id, &tx, outcome);
            }
            .instrument(span),
        );
        *slot = Some(Flight {
            id,
            request: Arc::clone(request),
            waiters: 1,
            result: rx.clone(),
            abort: handle.abort_handle(),
            committed,
        });
        Flying::Joined(
            rx,
            WaiterGuard {
                inner: Arc::clone(inner),
                id,
            },
        )
    }

    /// The last answer (of any tier), or, before the first run, the cached
    /// predictions found at build (tier `cache`). Never waits.
    pub fn latest(&self) -> Option<Arc<ChainResult>> {
        self.inner.latest.borrow().clone()
    }

    /// The latest answer, as it changes (e.g. to push it to a dashboard):
    /// a reader that falls behind sees only the newest. To see every fresh
    /// answer, use [`PredictionChain::fresh_answers`].
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<ChainResult>>> {
        self.inner.latest.subscribe()
    }

    /// Every fresh answer (tier `primary` or `fallback`, not answers served
    /// from the cache), in order, from now on (e.g. to record each one). A
    /// reader more than [`FRESH_BACKLOG`] answers behind loses the oldest
    /// and is told how many (`RecvError::Lagged`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use spe_core::{ModelPredictor, PredictionChain, PredictionRequest, SeasonalNaive};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let chain = PredictionChain::builder()
    ///     .primary(Arc::new(ModelPredictor::new(Arc::new(SeasonalNaive::default()))))
    ///     .build();
    /// let mut fresh = chain.fresh_answers();
    /// let history: Vec<f64> = (0..24 * 14).map(|t| 500.0 + f64::from(t % 24)).collect();
    /// chain.generate(PredictionRequest::builder(chain.now(), history).horizon(24).build()?).await?;
    /// assert_eq!(fresh.try_recv()?.tier, spe_core::Tier::Primary);
    /// # Ok(()) }
    /// ```
    pub fn fresh_answers(&self) -> broadcast::Receiver<Arc<ChainResult>> {
        self.inner.fresh.subscribe()
    }

    /// Wall time on the chain's clock (use it for [`ChainResult::age`]).
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    /// Whether a run is in flight.
    pub fn is_running(&self) -> bool {
        self.inner.flight().is_some()
    }

    /// The primary predictor's name (the fallback model's without a primary).
    pub fn primary_name(&self) -> String {
        match &self.inner.primary {
            Some(p) => p.name(),
            None => self.inner.fallback.name(),
        }
    }

    /// The fallback model's name.
    pub fn fallback_name(&self) -> String {
        self.inner.fallback.name()
    }

    /// The cache, if any.
    pub fn cache(&self) -> Option<&Cache<Predictions>> {
        self.inner.cache.as_ref()
    }

    /// How many callers wait for the run in flight (tests).
    #[cfg(test)]
    pub(crate) fn waiters(&self) -> usize {
        self.inner.flight().as_ref().map_or(0, |f| f.waiters)
    }
}

/// What [`PredictionChain::join_or_start`] found.
enum Flying {
    /// Waiting for the run of this request (joined, or just started).
    Joined(watch::Receiver<Option<Outcome>>, WaiterGuard),
    /// Another request's run is in flight: its result channel.
    Busy(watch::Receiver<Option<Outcome>>),
}

/// One caller waiting for the run in flight: the last one to leave before
/// the predictors answered cancels the run.
struct WaiterGuard {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        let cancelled = {
            let mut slot = self.inner.flight();
            match slot.as_mut() {
                Some(flight) if flight.id == self.id => {
                    flight.waiters = flight.waiters.saturating_sub(1);
                    if flight.waiters == 0 && !flight.committed.load(Ordering::Acquire) {
                        slot.take().map(|f| f.abort)
                    } else {
                        None
                    }
                }
                _ => None,
            }
        };
        // Outside the lock: the task's own guard takes it when it is dropped.
        if let Some(abort) = cancelled {
            abort.abort();
            tracing::info!(
                run = self.id,
                "prediction run cancelled: no caller waits for it"
            );
        }
    }
}

/// Held by the run's task: frees the flight slot when the task ends.
struct ClearFlight {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for ClearFlight {
    fn drop(&mut self) {
        let mut slot = self.inner.flight();
        if slot.as_ref().is_some_and(|f| f.id == self.id) {
            *slot = None;
        }
    }
}

/// Aborts the task when dropped (a timed-out or cancelled predictor).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.wall.now()
    }

    fn flight(&self) -> MutexGuard<'_, Option<Flight>> {
        self.flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finish(&self, id: u64, tx: &watch::Sender<Option<Outcome>>, outcome: Outcome) {
        {
            let mut slot = self.flight();
            if slot.as_ref().is_some_and(|f| f.id == id) {
                *slot = None;
            }
        }
        tx.send_replace(Some(outcome));
    }

    /// Run `predictor` in a task of its own under `timeout`.
    async fn call(
        &self,
        tier: Tier,
        predictor: Arc<dyn Predictor>,
        request: Arc<PredictionRequest>,
        timeout: Duration,
    ) -> Result<Forecast, PredictorError> {
        let span = tracing::info_span!("prediction_tier", %tier, predictor = %predictor.name());
        let mut task = AbortOnDrop(tokio::spawn(
            async move { predictor.predict(&request).await }.instrument(span),
        ));
        let sleep = self.clock.sleep(timeout);
        tokio::select! {
            joined = &mut task.0 => joined.map_err(|e| join_error(&e))?,
            () = sleep => Err(PredictorError::TimedOut { after: timeout }),
        }
    }

    /// The fallback model's forecast of `request`, computed at most once per run.
    async fn fallback_forecast(
        &self,
        request: &Arc<PredictionRequest>,
        memo: &mut Option<Result<Forecast, TierFailure>>,
    ) -> Result<Forecast, TierFailure> {
        if let Some(done) = memo {
            return done.clone();
        }
        let name = self.fallback.name();
        let result = self
            .call(
                Tier::Fallback,
                Arc::clone(&self.fallback),
                Arc::clone(request),
                self.fallback_timeout,
            )
            .await
            .and_then(|f| check_forecast(&f, request))
            .and_then(|(f, missing)| {
                if missing.is_empty() {
                    Ok(f)
                } else {
                    Err(PredictorError::bad_output(format!(
                        "no interval at level(s) {missing:?}"
                    )))
                }
            })
            .map_err(|e| TierFailure::new(Tier::Fallback, name, &e));
        *memo = Some(result.clone());
        result
    }

    async fn run(
        self: Arc<Self>,
        request: Arc<PredictionRequest>,
        committed: Arc<AtomicBool>,
    ) -> Outcome {
        let mut failures: Vec<TierFailure> = Vec::new();
        let mut memo = None;
        let has_primary = self.primary.is_some();
        let primary = self
            .primary
            .clone()
            .unwrap_or_else(|| Arc::clone(&self.fallback));
        let primary_name = primary.name();
        let mut answer: Option<(Forecast, Tier, Option<String>)> = None;

        tracing::debug!(predictor = %primary_name, "tier 1: primary");
        let tier1 = self
            .call(Tier::Primary, primary, Arc::clone(&request), self.timeout)
            .await
            .and_then(|f| check_forecast(&f, &request));
        match tier1 {
            Ok((forecast, missing)) if missing.is_empty() => {
                answer = Some((forecast, Tier::Primary, None));
            }
            Ok((forecast, missing)) => {
                let derived = if has_primary {
                    match self.fallback_forecast(&request, &mut memo).await {
                        Ok(donor) => derive_intervals(&forecast, &donor, &request.levels)
                            .map(|f| (f, donor.model().to_owned())),
                        Err(failure) => Err(PredictorError::bad_output(format!(
                            "no interval at level(s) {missing:?}, and the fallback could not derive them: {}",
                            failure.message
                        ))),
                    }
                } else {
                    Err(PredictorError::bad_output(format!(
                        "no interval at level(s) {missing:?}"
                    )))
                };
                match derived {
                    Ok((forecast, donor)) => {
                        answer = Some((forecast, Tier::Primary, Some(donor)));
                    }
                    Err(e) => {
                        failures.push(TierFailure::new(Tier::Primary, primary_name.clone(), &e))
                    }
                }
            }
            Err(e) => failures.push(TierFailure::new(Tier::Primary, primary_name.clone(), &e)),
        }
        if let Some(f) = failures.last() {
            tracing::warn!(predictor = %f.predictor, kind = %f.kind, error = %f.message, "tier 1 failed");
        }

        if answer.is_none() && has_primary {
            tracing::debug!(predictor = %self.fallback.name(), "tier 2: fallback");
            match self.fallback_forecast(&request, &mut memo).await {
                Ok(forecast) => answer = Some((forecast, Tier::Fallback, None)),
                Err(failure) => {
                    tracing::warn!(predictor = %failure.predictor, kind = %failure.kind, error = %failure.message, "tier 2 failed");
                    failures.push(failure);
                }
            }
        }

        // The predictors have answered: finish even if every caller leaves.
        committed.store(true, Ordering::Release);
        let now = self.now();
        let outcome = match answer {
            Some((forecast, tier, intervals_from)) => {
                let predictions = Predictions {
                    start: request.start,
                    step_s: request.step_s(),
                    forecast,
                    made_at: now,
                    tier,
                    intervals_from,
                    inputs: request.inputs,
                };
                if let Some(cache) = &self.cache {
                    let written = cache.put_async(predictions.clone(), now).await;
                    Arc::clone(&self)
                        .journal_cache_write(written.err(), now)
                        .await;
                }
                Ok(Arc::new(ChainResult {
                    predictions,
                    tier,
                    failures,
                }))
            }
            None => match self.cached() {
                Some(predictions) => {
                    tracing::warn!(made_at = %predictions.made_at, "tier 3: serving the last good predictions");
                    Ok(Arc::new(ChainResult {
                        predictions,
                        tier: Tier::Cache,
                        failures,
                    }))
                }
                None => Err(ChainError::NoPredictions { failures }),
            },
        };
        Arc::clone(&self).journal_run(&outcome, now).await;
        match &outcome {
            Ok(result) => {
                tracing::info!(
                    tier = %result.tier,
                    model = %result.predictions.forecast.model(),
                    failures = result.failures.len(),
                    "predictions ready"
                );
                self.latest.send_replace(Some(Arc::clone(result)));
                if result.tier != Tier::Cache {
                    // No receiver is not an error.
                    let _ = self.fresh.send(Arc::clone(result));
                }
            }
            Err(e) => tracing::error!(error = %e, "no predictions to serve"),
        }
        outcome
    }

    /// The cache's predictions, if valid.
    fn cached(&self) -> Option<Predictions> {
        let hit = self.cache.as_ref()?.get()?;
        match hit.value.validate() {
            Ok(()) => Some((*hit.value).clone()),
            Err(reason) => {
                tracing::error!(%reason, generation = hit.generation, "cached predictions are invalid: not served");
                None
            }
        }
    }

    /// Run `f` on the journal in a blocking task (with the incident state
    /// locked), never failing the caller.
    async fn with_journal(
        self: Arc<Self>,
        f: impl FnOnce(&Journal, &mut IncidentState) -> Result<(), JournalError> + Send + 'static,
    ) {
        if self.journal.is_none() {
            return;
        }
        let task = tokio::task::spawn_blocking(move || {
            let Some(journal) = &self.journal else {
                return Ok(());
            };
            let mut state = self
                .incidents
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            f(journal, &mut state)
        });
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not write to the incident journal"),
            Err(e) => tracing::error!(error = %e, "incident journal task failed"),
        }
    }

    /// Journal a run: open, note or close the outage incident of the primary.
    async fn journal_run(self: Arc<Self>, outcome: &Outcome, now: DateTime<Utc>) {
        let (failures, served, served_by) = match outcome {
            Ok(r) => (r.failures.clone(), describe_served(r, now), r.tier.name()),
            Err(ChainError::NoPredictions { failures }) => (
                failures.clone(),
                "nothing served: no cached predictions".to_owned(),
                "none",
            ),
            Err(_) => return,
        };
        let primary_name = self
            .primary
            .as_ref()
            .map_or_else(|| self.fallback.name(), |p| p.name());
        let component = self.component.clone();
        let primary_failed = failures
            .first()
            .filter(|f| f.tier == Tier::Primary)
            .cloned();
        Arc::clone(&self)
            .with_journal(move |journal, state| {
                let Some(first) = primary_failed else {
                    if let Some(id) = state.outage {
                        let runs = state.failed_runs;
                        let reason = format!(
                            "primary {primary_name} answered again after {runs} failed run(s)"
                        );
                        // Forgotten only once closed: a failed close is retried.
                        journal.close_tracked(id, now, reason)?;
                        state.outage = None;
                        state.failed_runs = 0;
                        state.last_signature = None;
                    }
                    return Ok(());
                };
                let signature: Vec<String> = failures
                    .iter()
                    .map(|f| format!("{}:{}", f.tier, f.kind))
                    .chain(std::iter::once(format!("served:{served_by}")))
                    .collect();
                let signature = signature.join("/");
                let details = failures
                    .iter()
                    .map(ToString::to_string)
                    .chain(std::iter::once(served))
                    .collect::<Vec<_>>()
                    .join("; ");
                state.failed_runs += 1;
                match state.outage {
                    None => {
                        let id = journal.open_incident(component, first.kind, now, details)?;
                        state.outage = Some(id);
                        state.last_signature = Some(signature);
                    }
                    Some(id) => {
                        if state.last_signature.as_deref() != Some(signature.as_str()) {
                            journal.note(id, now, details)?;
                            state.last_signature = Some(signature);
                        }
                    }
                }
                Ok(())
            })
            .await;
    }

    /// Journal a cache write: a failure opens (or continues) the disk
    /// incident, a success closes it.
    async fn journal_cache_write(self: Arc<Self>, error: Option<CacheError>, now: DateTime<Utc>) {
        if let Some(e) = &error {
            tracing::error!(error = %e, "could not cache the predictions; they are served anyway");
        }
        let component = cache_component(&self.component);
        let message = error.map(|e| e.to_string());
        Arc::clone(&self)
            .with_journal(move |journal, state| {
                match (message, state.disk) {
                    (Some(message), None) => {
                        state.disk_failures = 1;
                        let id = journal.open_incident(
                            component,
                            IncidentKind::DiskError,
                            now,
                            format!("cannot cache the predictions (served anyway): {message}"),
                        )?;
                        state.disk = Some(id);
                    }
                    (Some(_), Some(_)) => state.disk_failures += 1,
                    (None, Some(id)) => {
                        let n = state.disk_failures;
                        let reason = format!("predictions cached again after {n} failed write(s)");
                        journal.close_tracked(id, now, reason)?;
                        state.disk = None;
                        state.disk_failures = 0;
                    }
                    (None, None) => {}
                }
                Ok(())
            })
            .await;
    }
}

/// `served: fallback auto(ets)` / `served: cached predictions of … made at … (3600 s old)`.
fn describe_served(r: &ChainResult, now: DateTime<Utc>) -> String {
    match r.tier {
        Tier::Primary => format!("served: primary {}", r.predictions.forecast.model()),
        Tier::Fallback => format!("served: fallback {}", r.predictions.forecast.model()),
        Tier::Cache => {
            let p = &r.predictions;
            let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let until = p
                .time(p.forecast.horizon().saturating_sub(1))
                .map(|last| format!(", up to {}", rfc(last)))
                .unwrap_or_default();
            format!(
                "served: cached predictions of {} made at {} ({} s old{until})",
                p.forecast.model(),
                rfc(p.made_at),
                r.age(now).as_secs()
            )
        }
    }
}
