//! The failover data service: a breaker-protected primary source with the
//! synthetic generator behind it, serving its last good data at once while
//! one background refresh at a time talks to the upstream.
//!
//! ```text
//!   caller ──▶ snapshot()  (never waits: the last published snapshot)
//!
//!   background ──▶ refresh() ──▶ breaker ──▶ primary.fetch (timeout inside)
//!                     │ ok:  live weather → energy twin → mode nominal
//!                     │ err: synthetic weather → energy twin → mode estimation
//!                     └────▶ publish snapshot, journal mode changes
//! ```
//!
//! # Mode
//!
//! The mode is `nominal` when the latest refresh got live data (provenance
//! `live`: a primary that answers with synthetic or cached data gives
//! `estimation`, its data served as it is); otherwise `estimation`. Following the continuity
//! plan, the first failed call (a timeout, a 5xx, an unreachable upstream, a
//! bad payload) switches to the synthetic estimate at once; the breaker then
//! keeps the service from hammering a dead upstream, and its half-open probe
//! brings the service back to `nominal` by itself when the upstream heals.
//!
//! An outage is one incident in the journal (opened at the switch to
//! `estimation` with the mode change, closed at the return to `nominal`),
//! however many calls failed in between. An incident of the service's
//! component still open in the journal at build (the last run stopped or
//! crashed during an outage) is continued, with a note, not opened twice.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tracing::Instrument;

use crate::breaker::{
    BreakerConfig, BreakerConfigError, BreakerError, BreakerState, CircuitBreaker, Clock, WallClock,
};
use crate::cache::Cache;
use crate::frame::{EnergyFrame, WeatherFrame};
use crate::journal::{IncidentId, IncidentKind, Journal};
use crate::provenance::{Mode, Provenance};
use crate::site::Site;
use crate::source::{DataSource, SourceError, Window};
use crate::synth::{EnergyTwin, Generator};

/// Settings of a [`FailoverService`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailoverConfig {
    /// Time between refreshes while the upstream is healthy (default 300 s).
    #[serde(with = "secs")]
    pub refresh_interval: Duration,
    /// Time before the next attempt after a failed call while the circuit is
    /// still closed (default 30 s, never more than `refresh_interval`); once
    /// open, the breaker's wait rules.
    #[serde(with = "secs")]
    pub retry_interval: Duration,
    /// Live data older than this is never served as live (default 15 min).
    #[serde(with = "secs")]
    pub stale_after: Duration,
    /// Past days fetched (default 2).
    pub past_days: u16,
    /// Forecast days fetched, today included (default 7).
    pub forecast_days: u16,
    /// The breaker around the primary source.
    pub breaker: BreakerConfig,
    /// The component name in incidents (default `weather`).
    pub component: String,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            refresh_interval: Duration::from_secs(300),
            retry_interval: Duration::from_secs(30),
            stale_after: Duration::from_secs(900),
            past_days: 2,
            forecast_days: 7,
            breaker: BreakerConfig::default(),
            component: "weather".into(),
        }
    }
}

impl FailoverConfig {
    /// Check the settings: the intervals are not zero, and live data
    /// refreshed on time does not go stale between two refreshes
    /// (`refresh_interval` plus the breaker's call timeout is less than
    /// `stale_after`), else a healthy service would flap into estimation
    /// mode and journal an incident at every refresh. The breaker's own
    /// settings are checked when the service is built.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spe_core::FailoverConfig;
    ///
    /// assert!(FailoverConfig::default().validate().is_ok());
    /// let hourly = FailoverConfig {
    ///     refresh_interval: Duration::from_secs(3600),
    ///     ..FailoverConfig::default()
    /// };
    /// let err = hourly.validate().unwrap_err();
    /// assert!(err.to_string().contains("stale_after"));
    /// ```
    pub fn validate(&self) -> Result<(), FailoverError> {
        if self.refresh_interval.is_zero() || self.retry_interval.is_zero() {
            return Err(FailoverError::Config(
                "refresh_interval and retry_interval must be more than zero".into(),
            ));
        }
        let timeout = self.breaker.call_timeout.unwrap_or_default();
        let needed = self.refresh_interval.saturating_add(timeout);
        if self.stale_after <= needed {
            return Err(FailoverError::Config(format!(
                "stale_after ({:?}) must be more than refresh_interval ({:?}) plus the call \
                 timeout ({:?}): live data would go stale between two refreshes",
                self.stale_after, self.refresh_interval, timeout
            )));
        }
        Ok(())
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// Why a [`FailoverService`] could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FailoverError {
    /// The breaker settings are invalid.
    #[error(transparent)]
    Breaker(#[from] BreakerConfigError),
    /// The window settings are invalid.
    #[error("invalid failover settings: {0}")]
    Config(String),
}

/// What the service serves: weather and the energy twin's demand and
/// supply, with the mode and why. It serializes (serde) with its frames,
/// which are checked again when it is read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeatherSnapshot {
    /// `nominal` (live data) or `estimation` (synthetic data).
    pub mode: Mode,
    /// The weather (provenance `live`, `cached` or `synthetic`). A `cached`
    /// provenance's `age_s` is the weather's age at `made_at`, when the
    /// snapshot was made from the cache; [`age`](Self::age) gives it at any
    /// later instant.
    pub weather: WeatherFrame,
    /// Demand and supply computed from that weather.
    pub energy: EnergyFrame,
    /// The breaker's state when the snapshot was made.
    pub breaker: BreakerState,
    /// When the snapshot was made.
    pub made_at: DateTime<Utc>,
    /// When live data last arrived.
    pub last_live_at: Option<DateTime<Utc>>,
    /// Why the service is in estimation mode.
    pub degradation: Option<String>,
    /// The open incident, while there is one.
    pub incident: Option<IncidentId>,
}

impl WeatherSnapshot {
    /// How old the weather is at `now`.
    pub fn age(&self, now: DateTime<Utc>) -> Duration {
        self.weather.age(now)
    }

    /// A sentence for the operator, in estimation mode.
    pub fn notice(&self) -> Option<String> {
        (self.mode == Mode::Estimation).then(|| {
            format!(
                "Live weather unavailable ({}): showing simulated estimates.",
                self.degradation.as_deref().unwrap_or("no live data yet")
            )
        })
    }
}

/// A change of mode.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeEvent {
    /// Mode before.
    pub from: Mode,
    /// Mode after.
    pub to: Mode,
    /// When.
    pub at: DateTime<Utc>,
    /// Why (the error that caused it, or the recovery).
    pub reason: String,
}

/// What one refresh did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RefreshOutcome {
    /// Live data arrived.
    Live,
    /// The upstream failed; the snapshot is synthetic.
    Failed(SourceError),
    /// The call timed out inside the breaker.
    TimedOut(Duration),
    /// The breaker refused the call (open); the snapshot is synthetic.
    Rejected {
        /// When the breaker lets a probe go.
        retry_after: Option<Duration>,
    },
    /// Another refresh was running; this call waited for it.
    Joined,
}

/// The failover data service. Clones share one service.
///
/// ```
/// use std::sync::Arc;
/// use chrono::{TimeZone, Utc};
/// use spe_core::{FailoverService, Generator, ManualClock, Mode, Provenance, Replay, Site};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // A "live" source that has no data for the window: the service estimates.
/// let source = Arc::new(Replay::from_csv_str("time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m\n2020-01-01T00:00Z,1,0,50,3\n").unwrap());
/// let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
/// let service = FailoverService::builder(Site::paris(), source)
///     .clock(ManualClock::new(), now)
///     .build()
///     .unwrap();
/// service.refresh().await;
/// let snapshot = service.snapshot();
/// assert_eq!(snapshot.mode, Mode::Estimation);
/// assert_eq!(snapshot.weather.provenance(), Provenance::Synthetic);
/// assert!(snapshot.notice().is_some());
/// # });
/// ```
#[derive(Clone)]
pub struct FailoverService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FailoverService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverService")
            .field("site", &self.inner.site.name())
            .field("primary", &self.inner.primary.name())
            .field("mode", &self.snapshot().mode)
            .finish()
    }
}

struct Inner {
    site: Site,
    config: FailoverConfig,
    primary: Arc<dyn DataSource>,
    generator: Generator,
    twin: EnergyTwin,
    breaker: CircuitBreaker,
    clock: Arc<dyn Clock>,
    wall: WallClock,
    journal: Option<Journal>,
    cache: Option<Cache<WeatherFrame>>,
    snapshot: watch::Sender<Arc<WeatherSnapshot>>,
    modes: broadcast::Sender<ModeEvent>,
    refresh_lock: tokio::sync::Mutex<()>,
    /// Held from checking for an open incident to storing the one opened or
    /// closed, across the journal writes: a stale read and a failed refresh
    /// at the same time open one incident, not two.
    incident_lock: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    incident: Option<IncidentId>,
    /// The incident was continued from before a restart: its failed
    /// attempts before the restart are not in `failures_in_outage`.
    continued: bool,
    failures_in_outage: u64,
    last_live_at: Option<DateTime<Utc>>,
}

/// Builds a [`FailoverService`].
pub struct FailoverBuilder {
    site: Site,
    primary: Arc<dyn DataSource>,
    config: FailoverConfig,
    generator: Generator,
    clock: Option<(Arc<dyn Clock>, DateTime<Utc>)>,
    journal: Option<Journal>,
    cache: Option<Cache<WeatherFrame>>,
}

impl FailoverBuilder {
    /// Settings (default: [`FailoverConfig::default`]).
    pub fn config(mut self, config: FailoverConfig) -> Self {
        self.config = config;
        self
    }

    /// The synthetic generator behind the primary (default parameters otherwise).
    pub fn generator(mut self, generator: Generator) -> Self {
        self.generator = generator;
        self
    }

    /// The clock, and the wall time at its current reading (tests: a
    /// [`ManualClock`](crate::ManualClock)): timestamps are then `wall_now`
    /// plus the clock's progress. Default: the system clock for timeouts and
    /// the system's wall time for timestamps, read at each use (`Utc::now()`),
    /// so a long-running service follows the system's clock corrections.
    pub fn clock(mut self, clock: impl Clock, wall_now: DateTime<Utc>) -> Self {
        self.clock = Some((Arc::new(clock), wall_now));
        self
    }

    /// Journal incidents and mode changes here.
    pub fn journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Keep the last live weather in this cache, and start from it: after a
    /// restart, recent live weather is served (provenance `cached`) until the
    /// first refresh.
    pub fn cache(mut self, cache: Cache<WeatherFrame>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Build the service. Its first snapshot is ready at once: the cached
    /// live weather if recent enough, else the synthetic estimate.
    ///
    /// # Errors
    ///
    /// [`FailoverError`] for settings that [`FailoverConfig::validate`] or
    /// the breaker refuse, or a fetch window that cannot be built.
    pub fn build(self) -> Result<FailoverService, FailoverError> {
        self.config.validate()?;
        let (clock, wall) = WallClock::from_setting(self.clock);
        let wall_now = wall.now();
        let breaker =
            CircuitBreaker::with_clock(self.config.breaker.clone(), SharedClock(clock.clone()))?;
        Window::new(wall_now, self.config.past_days, self.config.forecast_days)
            .map_err(|e| FailoverError::Config(e.to_string()))?;
        let twin = self.generator.twin(&self.site);
        // An outage the last run did not see end (a crash, a stop while
        // estimating) goes on: no second incident, and live data closes it.
        let continued = self.journal.as_ref().and_then(|journal| {
            journal.continue_open_incident(
                &self.config.component,
                wall_now,
                "the service restarted during the outage",
            )
        });
        let inner = Inner {
            site: self.site,
            config: self.config,
            primary: self.primary,
            generator: self.generator,
            twin,
            breaker,
            clock,
            wall,
            journal: self.journal,
            cache: self.cache,
            snapshot: watch::channel(Arc::new(placeholder())).0,
            modes: broadcast::channel(64).0,
            refresh_lock: tokio::sync::Mutex::new(()),
            incident_lock: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                incident: continued,
                continued: continued.is_some(),
                ..State::default()
            }),
        };
        let first = inner.initial_snapshot(wall_now);
        inner.snapshot.send_replace(Arc::new(first));
        Ok(FailoverService {
            inner: Arc::new(inner),
        })
    }
}

/// A clock shared between the service and its breaker.
#[derive(Debug)]
struct SharedClock(Arc<dyn Clock>);

impl Clock for SharedClock {
    fn now(&self) -> Duration {
        self.0.now()
    }
    fn sleep(&self, duration: Duration) -> crate::breaker::Sleep {
        self.0.sleep(duration)
    }
}

/// Never served: replaced before `build` returns.
fn placeholder() -> WeatherSnapshot {
    let g = Generator::default();
    let site = Site::paris();
    let t = DateTime::<Utc>::UNIX_EPOCH;
    let axis = crate::series::TimeAxis::new(t, 0)
        .unwrap_or_else(|_| unreachable!("an empty axis is valid"));
    let frames = g.generate(&site, axis, t);
    WeatherSnapshot {
        mode: Mode::Estimation,
        weather: frames.weather,
        energy: frames.energy,
        breaker: BreakerState::Closed,
        made_at: t,
        last_live_at: None,
        degradation: None,
        incident: None,
    }
}

/// The incident kind of a failed refresh.
fn incident_kind(e: &BreakerError<SourceError>) -> IncidentKind {
    match e {
        BreakerError::Timeout { .. } => IncidentKind::UpstreamTimeout,
        BreakerError::Rejected(_) => IncidentKind::UpstreamUnreachable,
        BreakerError::Inner(e) => IncidentKind::from_source_error(e),
    }
}

impl FailoverService {
    /// Start building a service for `site` with `primary` as the live source.
    pub fn builder(site: Site, primary: Arc<dyn DataSource>) -> FailoverBuilder {
        FailoverBuilder {
            site,
            primary,
            config: FailoverConfig::default(),
            generator: Generator::default(),
            clock: None,
            journal: None,
            cache: None,
        }
    }

    /// The current snapshot. Never waits on the upstream.
    ///
    /// Live data older than `stale_after` is never served as live: if the
    /// refresh loop has not brought fresh data in time (it is not running,
    /// or the runtime is starved), the synthetic estimate is published
    /// instead and the mode becomes `estimation`.
    pub fn snapshot(&self) -> Arc<WeatherSnapshot> {
        let current = self.inner.snapshot.borrow().clone();
        let now = self.inner.now();
        let stale = current.mode == Mode::Nominal && !self.inner.is_fresh_live(&current, now);
        if !stale {
            return current;
        }
        let (weather, energy) = self.inner.synthetic(now);
        let reason = format!(
            "live data is {} s old, more than the {} s allowed",
            current.weather.age(now).as_secs(),
            self.inner.config.stale_after.as_secs()
        );
        tracing::warn!(%reason, "mode estimation: serving synthetic data");
        let snapshot = Arc::new(WeatherSnapshot {
            mode: Mode::Estimation,
            weather,
            energy,
            breaker: self.inner.breaker.state(),
            made_at: now,
            last_live_at: current.last_live_at,
            degradation: Some(reason.clone()),
            incident: current.incident,
        });
        // Replace only what was read: a refresh may have just published live data.
        let replaced = self.inner.snapshot.send_if_modified(|published| {
            let same = Arc::ptr_eq(published, &current);
            if same {
                *published = snapshot.clone();
            }
            same
        });
        if !replaced {
            return self.inner.snapshot.borrow().clone();
        }
        self.inner
            .announce(Mode::Nominal, Mode::Estimation, now, reason.clone());
        if self.inner.journal.is_some() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let service = self.clone();
                runtime.spawn(async move { service.inner.journal_stale(reason, now).await });
            }
        }
        snapshot
    }

    /// Watch the snapshots as they are published.
    pub fn watch(&self) -> watch::Receiver<Arc<WeatherSnapshot>> {
        self.inner.snapshot.subscribe()
    }

    /// Receive every mode change from now on.
    pub fn mode_changes(&self) -> broadcast::Receiver<ModeEvent> {
        self.inner.modes.subscribe()
    }

    /// The synthetic generator behind the primary: the estimates of
    /// estimation mode are its, and a caller filling other gaps (a
    /// forecast's history) should use it too, so both agree.
    pub fn generator(&self) -> &Generator {
        &self.inner.generator
    }

    /// The breaker around the primary source.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.inner.breaker
    }

    /// The site.
    pub fn site(&self) -> &Site {
        &self.inner.site
    }

    /// Wall time on the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    /// Refresh once, single-flight: if a refresh is running, wait for it and
    /// return [`RefreshOutcome::Joined`]. Bounded by the breaker's call
    /// timeout. Readers are never blocked: they keep getting the previous
    /// snapshot until the new one is published.
    pub async fn refresh(&self) -> RefreshOutcome {
        let inner = &self.inner;
        let _guard = match inner.refresh_lock.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                let _wait = inner.refresh_lock.lock().await;
                return RefreshOutcome::Joined;
            }
        };
        inner.refresh_once().await
    }

    /// Run the refresh loop until `shutdown` turns true (or its sender is
    /// dropped): refresh, then wait `refresh_interval` after live data,
    /// `retry_interval` after a failure, or until the open breaker lets a
    /// probe go.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let outcome = tokio::select! {
                outcome = self.refresh() => outcome,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let delay = self.next_delay(&outcome);
            tokio::select! {
                () = self.inner.clock.sleep(delay) => {}
                changed = shutdown.wait_for(|stop| *stop) => {
                    let _ = changed;
                    return;
                }
            }
            // Live data gone stale while waiting: published now, to watchers
            // too, before the refresh (which may hang up to its timeout).
            let _ = self.snapshot();
        }
    }

    /// How long [`run`](Self::run) waits after `outcome`: `refresh_interval`
    /// after live data, else the retry interval or the open breaker's wait;
    /// never past the moment the live data being served goes stale, so the
    /// switch to estimation is published to [`watch`](Self::watch)ers then,
    /// not at the next call of [`snapshot`](Self::snapshot).
    pub fn next_delay(&self, outcome: &RefreshOutcome) -> Duration {
        let c = &self.inner.config;
        let delay = match outcome {
            RefreshOutcome::Live => c.refresh_interval,
            RefreshOutcome::Joined => c.retry_interval.min(c.refresh_interval),
            _ => match self.inner.breaker.retry_after() {
                Some(wait) => wait,
                None => c.retry_interval.min(c.refresh_interval),
            },
        };
        let current = self.inner.snapshot.borrow().clone();
        let delay = if current.mode == Mode::Nominal {
            let age = current.weather.age(self.inner.now());
            // Just past the limit: `snapshot` switches once the age exceeds it.
            let until_stale = c.stale_after.saturating_sub(age) + Duration::from_secs(1);
            delay.min(until_stale)
        } else {
            delay
        };
        delay.max(Duration::from_millis(10))
    }
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.wall.now()
    }

    /// Whether `snapshot` serves live data still fresh at `now`: nominal,
    /// and no older than `stale_after` (at the limit, still fresh).
    fn is_fresh_live(&self, snapshot: &WeatherSnapshot, now: DateTime<Utc>) -> bool {
        snapshot.mode == Mode::Nominal && snapshot.weather.age(now) <= self.config.stale_after
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn window(&self, now: DateTime<Utc>) -> Window {
        // Validated in `build`.
        Window::new(now, self.config.past_days, self.config.forecast_days)
            .unwrap_or_else(|_| unreachable!("window settings validated at build"))
    }

    fn synthetic(&self, now: DateTime<Utc>) -> (WeatherFrame, EnergyFrame) {
        let axis = self
            .window(now)
            .axis(&self.site)
            .unwrap_or_else(|_| unreachable!("a validated window has an axis"));
        let f = self.generator.generate(&self.site, axis, now);
        (f.weather, f.energy)
    }

    fn initial_snapshot(&self, now: DateTime<Utc>) -> WeatherSnapshot {
        if let Some(cached) = self.cache.as_ref().and_then(Cache::get) {
            let age = cached.age(now);
            if age <= self.config.stale_after {
                let weather = (*cached.value)
                    .clone()
                    .with_provenance(cached.provenance(now));
                if let Ok(energy) = self.twin.energy(&weather) {
                    self.lock().last_live_at = Some(weather.produced_at());
                    tracing::info!(age_s = age.as_secs(), "starting from cached live weather");
                    return WeatherSnapshot {
                        mode: Mode::Nominal,
                        weather,
                        energy,
                        breaker: self.breaker.state(),
                        made_at: now,
                        last_live_at: Some(cached.stored_at),
                        degradation: None,
                        incident: None,
                    };
                }
            }
        }
        let (weather, energy) = self.synthetic(now);
        WeatherSnapshot {
            mode: Mode::Estimation,
            weather,
            energy,
            breaker: self.breaker.state(),
            made_at: now,
            last_live_at: None,
            degradation: Some("no live data yet".into()),
            incident: None,
        }
    }

    async fn refresh_once(&self) -> RefreshOutcome {
        // `instrument`, not `span.enter()`: a guard held across an await
        // would leave the span entered on whatever else the thread runs.
        let span = tracing::info_span!("failover_refresh", source = self.primary.name());
        self.refresh_in_span().instrument(span).await
    }

    async fn refresh_in_span(&self) -> RefreshOutcome {
        let now = self.now();
        let window = self.window(now);
        let result = self
            .breaker
            .call(|| async {
                let frame = self.primary.fetch(&self.site, &window).await?;
                if !self.primary.checks_its_answers() {
                    window.check_answer(&self.site, self.primary.name(), &frame)?;
                }
                Ok::<_, SourceError>(frame)
            })
            .await;
        let now = self.now();
        match result {
            Ok(frame) => match self.twin.energy(&frame) {
                Ok(energy) => {
                    self.on_live(frame, energy, now).await;
                    RefreshOutcome::Live
                }
                Err(e) => {
                    let err = SourceError::InvalidData {
                        source_name: self.primary.name().to_owned(),
                        message: format!("energy twin: {e}"),
                    };
                    self.on_failure(BreakerError::Inner(err.clone()), now).await;
                    RefreshOutcome::Failed(err)
                }
            },
            Err(e) => {
                let outcome = match &e {
                    BreakerError::Rejected(r) => RefreshOutcome::Rejected {
                        retry_after: r.retry_after,
                    },
                    BreakerError::Timeout { after } => RefreshOutcome::TimedOut(*after),
                    BreakerError::Inner(err) => RefreshOutcome::Failed(err.clone()),
                };
                self.on_failure(e, now).await;
                outcome
            }
        }
    }

    async fn on_live(&self, weather: WeatherFrame, energy: EnergyFrame, now: DateTime<Utc>) {
        if weather.provenance() != Provenance::Live {
            return self.on_not_live(weather, energy, now).await;
        }
        let _incident_lock = self.incident_lock.lock().await;
        let previous = self.snapshot.borrow().mode;
        let (incident, failures, continued) = {
            let mut state = self.lock();
            state.last_live_at = Some(now);
            let failures = std::mem::take(&mut state.failures_in_outage);
            // Forgotten only once its close is on disk (below): a refresh
            // cancelled before, or a close that fails, leaves it to the next.
            (state.incident, failures, state.continued)
        };
        if let Some(cache) = &self.cache {
            if let Err(e) = cache.put_async(weather.clone(), now).await {
                tracing::error!(error = %e, "could not cache the live weather");
            }
        }
        let snapshot = WeatherSnapshot {
            mode: Mode::Nominal,
            weather,
            energy,
            breaker: self.breaker.state(),
            made_at: now,
            last_live_at: Some(now),
            degradation: None,
            incident: None,
        };
        self.snapshot.send_replace(Arc::new(snapshot));
        let reason = format!("live data back from {}", self.primary.name());
        let changed = previous != Mode::Nominal;
        if changed {
            tracing::info!(%reason, "mode nominal");
            self.announce(previous, Mode::Nominal, now, reason.clone());
        }
        // An incident continued from before a restart is closed even when
        // the cache let this run start nominal; its record goes back to
        // nominal if it last went to estimation, whatever this run showed.
        if let Some(id) = incident {
            let since = if continued { " since the restart" } else { "" };
            let closed = self
                .journal_value(move |j| {
                    let estimating = j
                        .incident(id)
                        .and_then(|i| i.mode_changes.last().map(|c| c.to))
                        == Some(Mode::Estimation);
                    if changed || estimating {
                        j.mode_changed(id, Mode::Estimation, Mode::Nominal, now)?;
                    }
                    j.close_tracked(
                        id,
                        now,
                        format!("{reason} after {failures} failed attempt(s){since}"),
                    )
                })
                .await;
            if closed.is_some() {
                let mut state = self.lock();
                if state.incident == Some(id) {
                    state.incident = None;
                    state.continued = false;
                }
            }
        }
    }

    /// The primary answered, but not with live data (a generator, a replay of
    /// simulated data): its data is served as it is, in estimation mode,
    /// saying why. Nothing failed, so no incident is opened (nor an open one
    /// closed: live data is not back), and nothing is cached as the last
    /// good live weather.
    async fn on_not_live(&self, weather: WeatherFrame, energy: EnergyFrame, now: DateTime<Utc>) {
        let _incident_lock = self.incident_lock.lock().await;
        let previous = self.snapshot.borrow().mode;
        let reason = format!(
            "{} answered with {} data, not live data",
            self.primary.name(),
            weather.provenance().name()
        );
        let incident = self.lock().incident;
        self.publish_estimation(previous, weather, energy, now, reason, incident);
    }

    /// Publish an estimation-mode snapshot of `weather` and `energy`, saying
    /// `reason`, and announce the mode change if `previous` was not
    /// estimation.
    fn publish_estimation(
        &self,
        previous: Mode,
        weather: WeatherFrame,
        energy: EnergyFrame,
        now: DateTime<Utc>,
        reason: String,
        incident: Option<IncidentId>,
    ) {
        let provenance = weather.provenance().name();
        let snapshot = WeatherSnapshot {
            mode: Mode::Estimation,
            weather,
            energy,
            breaker: self.breaker.state(),
            made_at: now,
            last_live_at: self.lock().last_live_at,
            degradation: Some(reason.clone()),
            incident,
        };
        self.snapshot.send_replace(Arc::new(snapshot));
        if previous != Mode::Estimation {
            tracing::warn!(%reason, provenance, "mode estimation");
            self.announce(previous, Mode::Estimation, now, reason);
        } else {
            tracing::debug!(%reason, "still in estimation mode");
        }
    }

    async fn on_failure(&self, error: BreakerError<SourceError>, now: DateTime<Utc>) {
        let previous = self.snapshot.borrow().clone();
        if error.is_rejected() && self.is_fresh_live(&previous, now) {
            // The breaker opened after a call that succeeded (on slow
            // answers: a failed call would have switched to estimation
            // already). No call failed and the live data is still fresh:
            // it is served, as between refreshes, until it goes stale.
            tracing::info!(
                retry = %error,
                "circuit open after a successful call: the live data is served while fresh"
            );
            let snapshot = WeatherSnapshot {
                breaker: self.breaker.state(),
                ..(*previous).clone()
            };
            self.snapshot.send_replace(Arc::new(snapshot));
            return;
        }
        // While the breaker refuses calls, keep saying what caused the outage.
        let reason = match (&error, &previous.degradation) {
            (BreakerError::Rejected(r), Some(cause)) if previous.mode == Mode::Estimation => {
                let cause = cause.split(" [circuit").next().unwrap_or(cause);
                format!("{cause} [{r}]")
            }
            _ => error.to_string(),
        };
        let kind = incident_kind(&error);
        let (weather, energy) = self.synthetic(now);
        let _incident_lock = self.incident_lock.lock().await;
        let (open_new, incident) = {
            let mut state = self.lock();
            state.failures_in_outage += u64::from(!error.is_rejected());
            (state.incident.is_none(), state.incident)
        };
        let mut incident = incident;
        if open_new && self.journal.is_some() {
            let component = self.config.component.clone();
            let details = reason.clone();
            let from = previous.mode;
            let opened = self
                .journal_value(move |j| {
                    let id = j.open_incident(component, kind, now, details)?;
                    if from != Mode::Estimation {
                        j.mode_changed(id, from, Mode::Estimation, now)?;
                    }
                    Ok(id)
                })
                .await;
            incident = opened;
            self.lock().incident = opened;
        }
        self.publish_estimation(previous.mode, weather, energy, now, reason, incident);
    }

    /// Journal the switch to estimation made on read because live data went stale.
    async fn journal_stale(&self, reason: String, now: DateTime<Utc>) {
        let _incident_lock = self.incident_lock.lock().await;
        // Already journaled (a failed refresh got there first), or live
        // data came back in the meantime: nothing to open.
        if self.lock().incident.is_some() || self.snapshot.borrow().mode == Mode::Nominal {
            return;
        }
        let component = self.config.component.clone();
        let opened = self
            .journal_value(move |j| {
                let id = j.open_incident(component, IncidentKind::Other, now, reason)?;
                j.mode_changed(id, Mode::Nominal, Mode::Estimation, now)?;
                Ok(id)
            })
            .await;
        self.lock().incident = opened;
    }

    fn announce(&self, from: Mode, to: Mode, at: DateTime<Utc>, reason: String) {
        let _ = self.modes.send(ModeEvent {
            from,
            to,
            at,
            reason,
        });
    }

    async fn journal_value<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Journal) -> Result<T, crate::journal::JournalError> + Send + 'static,
    ) -> Option<T> {
        let journal = self.journal.clone()?;
        match tokio::task::spawn_blocking(move || f(&journal)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not write to the incident journal");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "incident journal task failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use chrono::TimeZone;

    use super::*;
    use crate::breaker::ManualClock;
    use crate::cache::CacheConfig;
    use crate::provenance::Provenance;

    #[derive(Debug, Clone)]
    enum Behaviour {
        Live,
        /// Weather for the same window a week earlier: a stale answer.
        WeekOld,
        Fail(SourceError),
        Hang,
        /// A well-formed answer without a single value.
        Nulls,
        /// Simulated data, labelled so (a generator, a replay of a simulation).
        Synthetic,
        /// Live, after the clock advanced this long (a slow answer).
        SlowLive(ManualClock, Duration),
    }

    /// Stands in for the upstream: live, failing or hanging on demand.
    #[derive(Debug)]
    struct Scripted {
        behaviour: Mutex<Behaviour>,
        calls: AtomicUsize,
        /// What [`DataSource::checks_its_answers`] claims.
        self_checking: bool,
    }

    impl Scripted {
        fn new(b: Behaviour) -> Arc<Self> {
            Self::with(b, false)
        }
        /// A source that claims to check its own answers (and, here, does not).
        fn self_checking(b: Behaviour) -> Arc<Self> {
            Self::with(b, true)
        }
        fn with(b: Behaviour, self_checking: bool) -> Arc<Self> {
            Arc::new(Scripted {
                behaviour: Mutex::new(b),
                calls: AtomicUsize::new(0),
                self_checking,
            })
        }
        fn set(&self, b: Behaviour) {
            *self.behaviour.lock().unwrap() = b;
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl DataSource for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn checks_its_answers(&self) -> bool {
            self.self_checking
        }
        async fn fetch(&self, site: &Site, window: &Window) -> Result<WeatherFrame, SourceError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let b = self.behaviour.lock().unwrap().clone();
            match b {
                Behaviour::Live => {
                    let axis = window.axis(site)?;
                    Ok(Generator::with_seed(1)
                        .weather(site, axis, window.now())
                        .with_provenance(Provenance::Live))
                }
                Behaviour::WeekOld => {
                    let then = window.now() - chrono::Duration::days(7);
                    let axis = Window::new(then, window.past_days(), window.forecast_days())?
                        .axis(site)?;
                    Ok(Generator::with_seed(1)
                        .weather(site, axis, then)
                        .with_provenance(Provenance::Live))
                }
                Behaviour::Fail(e) => Err(e),
                Behaviour::Hang => std::future::pending().await,
                Behaviour::Nulls => {
                    let axis = window.axis(site)?;
                    let frame = Generator::with_seed(1).weather(site, axis, window.now());
                    let mut columns = frame.columns().clone();
                    for var in crate::frame::WeatherVariable::ALL {
                        columns.get_mut(var).iter_mut().for_each(|v| *v = None);
                    }
                    Ok(WeatherFrame::new(axis, columns, Provenance::Live, window.now()).unwrap())
                }
                Behaviour::Synthetic => {
                    let axis = window.axis(site)?;
                    Ok(Generator::with_seed(77).weather(site, axis, window.now()))
                }
                Behaviour::SlowLive(clock, by) => {
                    clock.advance(by);
                    let axis = window.axis(site)?;
                    Ok(Generator::with_seed(1)
                        .weather(site, axis, window.now())
                        .with_provenance(Provenance::Live))
                }
            }
        }
    }

    fn status(code: u16) -> SourceError {
        SourceError::Status {
            source_name: "scripted".into(),
            status: code,
            reason: "test".into(),
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn config() -> FailoverConfig {
        FailoverConfig {
            breaker: BreakerConfig {
                jitter: 0.0,
                ..BreakerConfig::default()
            },
            ..FailoverConfig::default()
        }
    }

    fn service(source: Arc<Scripted>, journal: Option<Journal>) -> (FailoverService, ManualClock) {
        let clock = ManualClock::new();
        let mut b = FailoverService::builder(Site::paris(), source)
            .config(config())
            .clock(clock.clone(), t0());
        if let Some(j) = journal {
            b = b.journal(j);
        }
        (b.build().unwrap(), clock)
    }

    #[tokio::test]
    async fn an_answer_without_values_is_no_live_data() {
        let src = Scripted::new(Behaviour::Live);
        let (s, _) = service(src.clone(), None);
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        src.set(Behaviour::Nulls);
        match s.refresh().await {
            RefreshOutcome::Failed(SourceError::InvalidData { message, .. }) => assert!(
                message.contains("no value of temperature_2m, shortwave_radiation"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        let snap = s.snapshot();
        assert_eq!(snap.mode, Mode::Estimation);
        assert_eq!(snap.weather.provenance(), Provenance::Synthetic);
        assert!(snap.notice().is_some());
    }

    #[tokio::test]
    async fn a_primary_that_answers_simulated_data_is_estimation_without_an_incident() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("j.log")).unwrap();
        let src = Scripted::new(Behaviour::Live);
        let (s, _) = service(src.clone(), Some(journal.clone()));
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        assert_eq!(s.snapshot().mode, Mode::Nominal);
        let mut modes = s.mode_changes();
        src.set(Behaviour::Synthetic);
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        let snap = s.snapshot();
        assert_eq!(snap.mode, Mode::Estimation);
        // Its own data, as it labelled it (not the service's generator).
        assert_eq!(snap.weather.provenance(), Provenance::Synthetic);
        let window = Window::new(t0(), 2, 7).unwrap();
        let own = Generator::with_seed(77).weather(
            &Site::paris(),
            window.axis(&Site::paris()).unwrap(),
            t0(),
        );
        assert_eq!(snap.weather.temperature_2m(), own.temperature_2m());
        assert!(
            snap.degradation
                .as_deref()
                .is_some_and(|d| d.contains("scripted answered with synthetic data, not live data")),
            "{:?}",
            snap.degradation
        );
        assert_eq!(modes.try_recv().unwrap().to, Mode::Estimation);
        // Nothing failed: no incident; live data back is nominal again.
        assert!(journal.incidents(..).is_empty());
        src.set(Behaviour::Live);
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        assert_eq!(s.snapshot().mode, Mode::Nominal);
        assert!(journal.incidents(..).is_empty());
    }

    #[tokio::test]
    async fn a_circuit_opened_by_slow_answers_keeps_fresh_live_data_nominal() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("j.log")).unwrap();
        let clock = ManualClock::new();
        let mut config = config();
        config.breaker.slow_call_duration = Duration::from_secs(2);
        config.breaker.open_wait = Duration::from_secs(3600);
        config.breaker.max_open_wait = Duration::from_secs(3600);
        let src = Scripted::new(Behaviour::SlowLive(clock.clone(), Duration::from_secs(3)));
        let s = FailoverService::builder(Site::paris(), src.clone())
            .config(config.clone())
            .clock(clock.clone(), t0())
            .journal(journal.clone())
            .build()
            .unwrap();
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        // Two slow answers of two: the circuit is open, the data live.
        assert_eq!(s.snapshot().breaker, BreakerState::Open);
        let outcome = s.refresh().await;
        assert!(
            matches!(outcome, RefreshOutcome::Rejected { .. }),
            "{outcome:?}"
        );
        assert_eq!(src.calls(), 2);
        let snap = s.snapshot();
        assert_eq!(snap.mode, Mode::Nominal);
        assert_eq!(snap.weather.provenance(), Provenance::Live);
        assert_eq!(snap.breaker, BreakerState::Open);
        assert!(journal.incidents(..).is_empty());
        // The loop wakes when the data goes stale, not at the end of the
        // hour-long open wait.
        let age = snap.weather.age(s.inner.now());
        assert_eq!(
            s.next_delay(&outcome),
            config.stale_after - age + Duration::from_secs(1)
        );
        // Then it is stale: estimation.
        clock.advance(config.stale_after);
        assert_eq!(s.snapshot().mode, Mode::Estimation);
    }

    #[tokio::test]
    async fn starts_in_estimation_then_goes_live() {
        let src = Scripted::new(Behaviour::Live);
        let (s, _) = service(src.clone(), None);
        let first = s.snapshot();
        assert_eq!(first.mode, Mode::Estimation);
        assert_eq!(first.weather.provenance(), Provenance::Synthetic);
        assert_eq!(first.weather.len(), 9 * 24);
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        let snap = s.snapshot();
        assert_eq!(snap.mode, Mode::Nominal);
        assert_eq!(snap.weather.provenance(), Provenance::Live);
        assert_eq!(snap.energy.provenance(), Provenance::Live);
        assert_eq!(snap.notice(), None);
        assert_eq!(src.calls(), 1);
    }

    /// Yield until every spawned task of the (current-thread) runtime has ended.
    async fn settle() {
        let metrics = tokio::runtime::Handle::current().metrics();
        while metrics.num_alive_tasks() > 0 {
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn a_refresh_interval_the_data_would_go_stale_in_is_refused() {
        for (refresh, stale, ok) in [(300, 900, true), (890, 900, false), (3600, 900, false)] {
            let config = FailoverConfig {
                refresh_interval: Duration::from_secs(refresh),
                stale_after: Duration::from_secs(stale),
                breaker: BreakerConfig {
                    call_timeout: Some(Duration::from_secs(10)),
                    ..BreakerConfig::default()
                },
                ..FailoverConfig::default()
            };
            let built = FailoverService::builder(Site::paris(), Scripted::new(Behaviour::Live))
                .config(config)
                .build();
            match built {
                Ok(_) => assert!(ok, "{refresh} s / {stale} s accepted"),
                Err(FailoverError::Config(m)) => {
                    assert!(!ok, "{refresh} s / {stale} s refused: {m}");
                    assert!(m.contains("stale_after"), "{m}");
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// A journaled service that has had live data once.
    async fn live_with_journal() -> (
        FailoverService,
        ManualClock,
        Arc<Scripted>,
        Journal,
        tempfile::TempDir,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("journal.log")).unwrap();
        let src = Scripted::new(Behaviour::Live);
        let (s, clock) = service(src.clone(), Some(journal.clone()));
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        (s, clock, src, journal, dir)
    }

    #[tokio::test]
    async fn a_stale_read_and_a_failed_refresh_open_one_incident() {
        let (s, clock, src, journal, _dir) = live_with_journal().await;
        // The live data goes stale while the upstream fails: a read marks the
        // data stale (and journals it in a task) as a refresh fails.
        clock.advance(Duration::from_secs(901));
        src.set(Behaviour::Fail(status(503)));
        assert_eq!(s.snapshot().mode, Mode::Estimation);
        assert!(matches!(s.refresh().await, RefreshOutcome::Failed(_)));
        settle().await;
        assert_eq!(
            journal.open_incidents().len(),
            1,
            "{:?}",
            journal.incidents(..)
        );
        // Live data again: nothing stays open.
        clock.advance(Duration::from_secs(30));
        src.set(Behaviour::Live);
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        settle().await;
        assert_eq!(journal.incidents(..).len(), 1);
        assert!(
            journal.open_incidents().is_empty(),
            "{:?}",
            journal.incidents(..)
        );
    }

    #[tokio::test]
    async fn a_stale_read_after_live_data_is_back_opens_nothing() {
        let (s, clock, _src, journal, _dir) = live_with_journal().await;
        clock.advance(Duration::from_secs(901));
        // The read's journal task has not run yet when live data comes back.
        assert_eq!(s.snapshot().mode, Mode::Estimation);
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        settle().await;
        assert!(
            journal.incidents(..).is_empty(),
            "{:?}",
            journal.incidents(..)
        );
    }

    #[tokio::test]
    async fn an_outage_is_one_incident_and_recovery_is_automatic() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("journal.log")).unwrap();
        let src = Scripted::new(Behaviour::Live);
        let (s, clock) = service(src.clone(), Some(journal.clone()));
        let mut modes = s.mode_changes();
        s.refresh().await;
        assert_eq!(modes.try_recv().unwrap().to, Mode::Nominal);

        src.set(Behaviour::Fail(status(503)));
        assert!(matches!(s.refresh().await, RefreshOutcome::Failed(_)));
        let snap = s.snapshot();
        assert_eq!(
            snap.mode,
            Mode::Estimation,
            "the first failure switches at once"
        );
        assert_eq!(snap.weather.provenance(), Provenance::Synthetic);
        assert!(snap.notice().unwrap().contains("503"));
        // A snapshot is data: it round-trips through JSON, incident included.
        assert!(snap.incident.is_some());
        let json = serde_json::to_string(&*snap).unwrap();
        assert_eq!(
            serde_json::from_str::<WeatherSnapshot>(&json).unwrap(),
            *snap
        );
        let change = modes.try_recv().unwrap();
        assert_eq!((change.from, change.to), (Mode::Nominal, Mode::Estimation));

        // One success and one failure in the window: 50 %, the breaker opens;
        // then the source is left alone until the open wait has passed.
        assert_eq!(s.breaker().state(), BreakerState::Open);
        let calls = src.calls();
        let outcome = s.refresh().await;
        assert!(matches!(
            outcome,
            RefreshOutcome::Rejected {
                retry_after: Some(_)
            }
        ));
        let cause = s.snapshot().degradation.clone().unwrap();
        assert!(
            cause.contains("503") && cause.contains("circuit open"),
            "the first cause is kept: {cause}"
        );
        assert_eq!(
            src.calls(),
            calls,
            "an open breaker does not call the upstream"
        );
        assert_eq!(s.next_delay(&outcome), Duration::from_secs(30));
        assert!(modes.try_recv().is_err(), "no mode change while estimating");

        // The upstream heals; after the open wait the probe brings nominal back.
        src.set(Behaviour::Live);
        clock.advance(Duration::from_secs(30));
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        assert_eq!(s.snapshot().mode, Mode::Nominal);
        assert_eq!(s.breaker().state(), BreakerState::Closed);
        let back = modes.try_recv().unwrap();
        assert_eq!((back.from, back.to), (Mode::Estimation, Mode::Nominal));

        let incidents = journal.incidents(..);
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        let i = &incidents[0];
        assert_eq!(i.kind, IncidentKind::Upstream5xx);
        assert_eq!(i.component, "weather");
        assert!(!i.is_open());
        assert_eq!(i.mode_changes.len(), 2);
        assert_eq!(i.end, Some(s.now()));
        assert!(
            i.resolution
                .as_deref()
                .unwrap_or_default()
                .contains("1 failed attempt"),
            "{i:?}"
        );
    }

    #[tokio::test]
    async fn readers_never_wait_on_a_hanging_upstream_and_refresh_is_single_flight() {
        let src = Scripted::new(Behaviour::Hang);
        let (s, clock) = service(src.clone(), None);
        let a = tokio::spawn({
            let s = s.clone();
            async move { s.refresh().await }
        });
        while clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        // A concurrent refresh joins the running one instead of calling again.
        let b = tokio::spawn({
            let s = s.clone();
            async move { s.refresh().await }
        });
        tokio::task::yield_now().await;
        // Readers get the current snapshot immediately.
        assert_eq!(s.snapshot().mode, Mode::Estimation);
        assert_eq!(src.calls(), 1);
        clock.advance(Duration::from_secs(5));
        assert!(
            matches!(a.await.unwrap(), RefreshOutcome::TimedOut(d) if d == Duration::from_secs(5))
        );
        assert!(matches!(b.await.unwrap(), RefreshOutcome::Joined));
        assert_eq!(src.calls(), 1);
        assert!(
            s.snapshot()
                .degradation
                .as_deref()
                .unwrap()
                .contains("timed out")
        );
    }

    #[tokio::test]
    async fn an_outage_open_at_a_restart_is_continued_then_closed() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("j.log")).unwrap();
        // The last run stopped while estimating: its incident is still open.
        let left = journal
            .open_incident("weather", IncidentKind::Upstream5xx, t0(), "HTTP 503")
            .unwrap();
        let other = journal
            .open_incident("prediction", IncidentKind::ModelCrash, t0(), "not ours")
            .unwrap();
        let src = Scripted::new(Behaviour::Fail(status(503)));
        let (s, _) = service(src.clone(), Some(journal.clone()));
        s.refresh().await;
        let open: Vec<_> = journal.open_incidents().iter().map(|i| i.id).collect();
        assert_eq!(open.len(), 2, "no second weather incident: {open:?}");
        assert!(open.contains(&left) && open.contains(&other));
        let i = journal.incident(left).unwrap();
        assert!(
            i.notes.iter().any(|(_, n)| n.contains("restarted")),
            "{i:?}"
        );

        src.set(Behaviour::Live);
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        let closed = journal.incident(left).unwrap();
        assert!(!closed.is_open());
        assert_eq!(
            closed.mode_changes.last().map(|c| c.to),
            Some(Mode::Nominal)
        );
        assert!(
            journal.incident(other).unwrap().is_open(),
            "another component's"
        );
    }

    #[tokio::test]
    async fn an_outage_continued_on_cached_weather_is_closed_back_to_nominal() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("j.log")).unwrap();
        let src = Scripted::new(Behaviour::Live);
        // A run that had live weather (cached), then failed, and was killed
        // while estimating: its incident is open, last gone to estimation.
        {
            let (cache, _) = Cache::open(dir.path(), "weather", CacheConfig::default()).unwrap();
            let (s, _) = {
                let clock = ManualClock::new();
                let b = FailoverService::builder(Site::paris(), src.clone())
                    .config(config())
                    .clock(clock.clone(), t0())
                    .cache(cache)
                    .journal(journal.clone());
                (b.build().unwrap(), clock)
            };
            s.refresh().await;
            src.set(Behaviour::Fail(status(503)));
            s.refresh().await;
            s.refresh().await;
        }
        let open = journal.open_incidents();
        assert_eq!(open.len(), 1);
        let id = open[0].id;
        // Restarted a minute later: the cache makes it start nominal.
        src.set(Behaviour::Live);
        let (cache, _) =
            Cache::<WeatherFrame>::open(dir.path(), "weather", CacheConfig::default()).unwrap();
        let s = FailoverService::builder(Site::paris(), src)
            .config(config())
            .clock(ManualClock::new(), t0() + chrono::Duration::minutes(1))
            .cache(cache)
            .journal(journal.clone())
            .build()
            .unwrap();
        assert_eq!(s.snapshot().mode, Mode::Nominal);
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        let closed = journal.incident(id).unwrap();
        assert!(!closed.is_open());
        let modes: Vec<_> = closed.mode_changes.iter().map(|c| (c.from, c.to)).collect();
        assert_eq!(
            modes,
            [
                (Mode::Nominal, Mode::Estimation),
                (Mode::Estimation, Mode::Nominal)
            ]
        );
        let resolution = closed.resolution.unwrap_or_default();
        assert!(
            resolution.ends_with("after 0 failed attempt(s) since the restart"),
            "{resolution}"
        );
    }

    #[tokio::test]
    async fn a_stale_answer_is_not_served_as_live() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("j.log")).unwrap();
        let src = Scripted::new(Behaviour::WeekOld);
        let (s, _) = service(src.clone(), Some(journal.clone()));
        let outcome = s.refresh().await;
        assert!(
            matches!(&outcome, RefreshOutcome::Failed(SourceError::InvalidData { message, .. })
                if message.contains("does not include the current hour")),
            "{outcome:?}"
        );
        let snap = s.snapshot();
        assert_eq!(snap.mode, Mode::Estimation);
        assert_eq!(snap.weather.provenance(), Provenance::Synthetic);
        assert!(snap.weather.axis().index_of(t0()).is_some());
        assert!(
            snap.degradation
                .as_deref()
                .unwrap()
                .contains("stale or misdirected"),
            "{:?}",
            snap.degradation
        );
        assert_eq!(s.breaker().metrics().window_failures, 1);
        let open = journal.open_incidents();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].kind, IncidentKind::BadPayload);

        src.set(Behaviour::Live);
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        assert_eq!(s.snapshot().mode, Mode::Nominal);
        assert!(journal.open_incidents().is_empty());
    }

    /// A source that says it checks its own answers is trusted with it (the
    /// service does not check them again): this one lies, and its week-old
    /// answer is taken as live. The snapshot still does not serve it as
    /// live: it is older than `stale_after`.
    #[tokio::test]
    async fn a_self_checking_source_is_not_checked_twice() {
        let (s, _) = service(Scripted::self_checking(Behaviour::WeekOld), None);
        assert!(matches!(s.refresh().await, RefreshOutcome::Live));
        assert_eq!(s.breaker().metrics().window_failures, 0);
        let snap = s.snapshot();
        assert_eq!(snap.mode, Mode::Estimation);
        assert!(
            snap.degradation.as_deref().unwrap().contains("more than"),
            "{:?}",
            snap.degradation
        );
    }

    #[tokio::test]
    async fn client_errors_estimate_without_tripping() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("j.log")).unwrap();
        let src = Scripted::new(Behaviour::Fail(status(400)));
        let (s, _) = service(src.clone(), Some(journal.clone()));
        for _ in 0..5 {
            s.refresh().await;
        }
        assert_eq!(s.snapshot().mode, Mode::Estimation);
        assert_eq!(s.breaker().state(), BreakerState::Closed);
        let open = journal.open_incidents();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].kind, IncidentKind::UpstreamRejected);
        assert!(open[0].mode_changes.is_empty(), "it never was nominal");
    }

    #[tokio::test]
    async fn restart_serves_recent_cached_live_weather() {
        let dir = tempfile::tempdir().unwrap();
        let src = Scripted::new(Behaviour::Live);
        {
            let (cache, _) = Cache::open(dir.path(), "weather", CacheConfig::default()).unwrap();
            let clock = ManualClock::new();
            let s = FailoverService::builder(Site::paris(), src.clone())
                .config(config())
                .clock(clock, t0())
                .cache(cache)
                .build()
                .unwrap();
            s.refresh().await;
        }
        // Restarted two minutes later, with the upstream down.
        src.set(Behaviour::Fail(status(503)));
        let (cache, _) =
            Cache::<WeatherFrame>::open(dir.path(), "weather", CacheConfig::default()).unwrap();
        let clock = ManualClock::new();
        let s = FailoverService::builder(Site::paris(), src.clone())
            .config(config())
            .clock(clock.clone(), t0() + chrono::Duration::minutes(2))
            .cache(cache.clone())
            .build()
            .unwrap();
        let snap = s.snapshot();
        assert_eq!(snap.mode, Mode::Nominal);
        assert_eq!(snap.weather.provenance(), Provenance::Cached { age_s: 120 });
        // Served again later: the label keeps the age at `made_at`, the
        // snapshot's age is the weather's at the instant asked.
        clock.advance(Duration::from_secs(30));
        let again = s.snapshot();
        assert_eq!(
            again.weather.provenance(),
            Provenance::Cached { age_s: 120 }
        );
        assert_eq!(again.made_at, snap.made_at);
        let later = t0() + chrono::Duration::minutes(2) + chrono::Duration::seconds(30);
        assert_eq!(again.age(later), Duration::from_secs(150));
        // Twenty minutes later it is too old to serve as real data.
        let s = FailoverService::builder(Site::paris(), src)
            .config(config())
            .clock(ManualClock::new(), t0() + chrono::Duration::minutes(20))
            .cache(cache)
            .build()
            .unwrap();
        assert_eq!(s.snapshot().mode, Mode::Estimation);
    }

    #[tokio::test]
    async fn live_data_older_than_stale_after_is_not_served_as_live() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path().join("j.log")).unwrap();
        let src = Scripted::new(Behaviour::Live);
        let (s, clock) = service(src, Some(journal.clone()));
        let mut modes = s.mode_changes();
        s.refresh().await;
        clock.advance(Duration::from_secs(900));
        assert_eq!(
            s.snapshot().mode,
            Mode::Nominal,
            "exactly stale_after old is still live"
        );
        clock.advance(Duration::from_secs(1));
        let snap = s.snapshot();
        assert_eq!(snap.mode, Mode::Estimation);
        assert_eq!(snap.weather.provenance(), Provenance::Synthetic);
        assert!(snap.degradation.as_deref().unwrap().contains("901 s old"));
        assert_eq!(modes.try_recv().unwrap().to, Mode::Nominal);
        assert_eq!(modes.try_recv().unwrap().to, Mode::Estimation);
        // Published once: the next read does not announce again.
        assert_eq!(s.snapshot().mode, Mode::Estimation);
        assert!(modes.try_recv().is_err());
        // The switch is journaled (from a task: reads never wait on the disk).
        while s.inner.lock().incident.is_none() {
            tokio::task::yield_now().await;
        }
        assert_eq!(journal.open_incidents().len(), 1);
        // The next refresh brings live data back and closes the incident.
        s.refresh().await;
        assert_eq!(s.snapshot().mode, Mode::Nominal);
        assert!(journal.open_incidents().is_empty());
        assert_eq!(journal.incidents(..).len(), 1);
    }

    #[tokio::test]
    async fn run_loop_stops_on_shutdown() {
        let src = Scripted::new(Behaviour::Live);
        let (s, clock) = service(src.clone(), None);
        let (stop, stopped) = watch::channel(false);
        let mut snapshots = s.watch();
        let task = tokio::spawn({
            let s = s.clone();
            async move { s.run(stopped).await }
        });
        snapshots
            .wait_for(|snap| snap.mode == Mode::Nominal)
            .await
            .unwrap();
        while clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_secs(300));
        while src.calls() < 2 {
            tokio::task::yield_now().await;
        }
        stop.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(src.calls(), 2);
    }

    #[test]
    fn incident_kinds_follow_the_error() {
        let e = |s: SourceError| incident_kind(&BreakerError::Inner(s));
        assert_eq!(e(status(502)), IncidentKind::Upstream5xx);
        assert_eq!(e(status(429)), IncidentKind::UpstreamRejected);
        assert_eq!(
            e(SourceError::Connect {
                source_name: "x".into(),
                message: "refused".into()
            }),
            IncidentKind::UpstreamUnreachable
        );
        assert_eq!(
            e(SourceError::Truncated {
                source_name: "x".into(),
                message: "cut".into()
            }),
            IncidentKind::BadPayload
        );
        assert_eq!(
            incident_kind(&BreakerError::<SourceError>::Timeout {
                after: Duration::from_secs(5)
            }),
            IncidentKind::UpstreamTimeout
        );
    }
}
