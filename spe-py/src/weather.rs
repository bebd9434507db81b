//! `spe.WeatherService` and `spe.WeatherSnapshot`: spe-core's failover data
//! service (Open-Meteo behind a circuit breaker, the synthetic generator
//! behind it) for Python.
//!
//! Each service owns a current-thread tokio runtime, driven only while a
//! Python call waits on it, with the GIL released: no background thread,
//! nothing to shut down, safe to use from several Python threads (one
//! refresh at a time; the others join it).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyString};

use spe_core::{
    BreakerConfig, BreakerError, DataSource, FailoverConfig, FailoverService, Generator, KpiConfig,
    Mode, OpenMeteo, OpenMeteoConfig, RefreshOutcome, Site, WeatherSnapshot as CoreSnapshot,
    Window, compute_kpis, live_data_freshness_kpi,
};

use crate::breaker::{CircuitBreaker, ManualClock};
use crate::errors::Error;
use crate::frames;
use crate::journal::Journal;
use crate::synthetic::{DEFAULT_SEED, SyntheticGenerator};

const SITE_NAME: &str = "spe-py";
const DEFAULT_BASE_URL: &str = "https://api.open-meteo.com";

/// What the weather service serves at one instant: weather, the energy
/// twin's demand and supply computed from it, and where they come from.
///
/// ``mode`` is ``"nominal"`` (live weather) or ``"estimation"`` (the
/// synthetic estimate, because the weather API is failing or its circuit
/// is open); ``provenance`` is ``"live"``, ``"cached"`` or ``"synthetic"``;
/// ``notice`` is the sentence an operator sees in estimation mode.
/// :meth:`frame` and :meth:`arrays` give the hourly values (UTC); the
/// frame's ``attrs`` carry the same provenance and mode.
#[pyclass(module = "spe", name = "WeatherSnapshot", frozen)]
pub struct WeatherSnapshot {
    snapshot: Arc<CoreSnapshot>,
    /// When it was handed out (for the age).
    now: DateTime<Utc>,
    /// What the refresh that preceded it did, if any.
    outcome: Option<String>,
}

impl WeatherSnapshot {
    fn age_s(&self) -> f64 {
        self.snapshot.age(self.now).as_secs_f64()
    }

    fn attrs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("mode", self.snapshot.mode.name())?;
        d.set_item("provenance", self.snapshot.weather.provenance().name())?;
        d.set_item("age_s", self.age_s())?;
        d.set_item("breaker_state", self.snapshot.breaker.name())?;
        d.set_item("made_at", self.snapshot.made_at)?;
        d.set_item("degradation", self.snapshot.degradation.as_deref())?;
        d.set_item("notice", self.snapshot.notice())?;
        Ok(d)
    }
}

#[pymethods]
impl WeatherSnapshot {
    /// ``"nominal"`` or ``"estimation"``.
    #[getter]
    fn mode(&self) -> &'static str {
        self.snapshot.mode.name()
    }

    /// Where the weather comes from: ``"live"``, ``"cached"`` or ``"synthetic"``.
    #[getter]
    fn provenance(&self) -> &'static str {
        self.snapshot.weather.provenance().name()
    }

    /// Age of the weather in seconds when the snapshot was handed out.
    #[getter]
    #[pyo3(name = "age_s")]
    fn py_age_s(&self) -> f64 {
        self.age_s()
    }

    /// The breaker's state when the snapshot was made.
    #[getter]
    fn breaker_state(&self) -> &'static str {
        self.snapshot.breaker.name()
    }

    /// When the snapshot was made (UTC).
    #[getter]
    fn made_at(&self) -> DateTime<Utc> {
        self.snapshot.made_at
    }

    /// When live data last arrived, or ``None``.
    #[getter]
    fn last_live_at(&self) -> Option<DateTime<Utc>> {
        self.snapshot.last_live_at
    }

    /// Why the service is in estimation mode (``None`` in nominal mode).
    #[getter]
    fn degradation(&self) -> Option<String> {
        self.snapshot.degradation.clone()
    }

    /// The operator's notice in estimation mode, else ``None``.
    #[getter]
    fn notice(&self) -> Option<String> {
        self.snapshot.notice()
    }

    /// The open incident's id in the journal, while there is one.
    #[getter]
    fn incident_id(&self) -> Option<u64> {
        self.snapshot.incident.map(|i| i.get())
    }

    /// What the refresh before this snapshot did (``"live"``,
    /// ``"failed: …"``, ``"timed_out"``, ``"rejected"``, ``"joined"``), or
    /// ``None`` for :meth:`WeatherService.snapshot`.
    #[getter]
    fn outcome(&self) -> Option<String> {
        self.outcome.clone()
    }

    /// The hourly values as a dict of numpy arrays: ``time``
    /// (``datetime64[ns]``, UTC), the weather (``temperature_2m``,
    /// ``shortwave_radiation``, ``cloud_cover``, ``wind_speed_10m``) and the
    /// energy (``demand_mw``, ``solar_mw``, ``wind_mw``, ``other_mw``,
    /// ``imports_mw``); NaN where a value is missing (e.g. past the weather
    /// model's horizon).
    fn arrays<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        frames::frames_dict(py, &self.snapshot.weather, Some(&self.snapshot.energy))
    }

    /// The hourly values as a pandas DataFrame on a UTC ``DatetimeIndex``;
    /// ``df.attrs`` holds ``mode``, ``provenance``, ``age_s``,
    /// ``breaker_state``, ``made_at``, ``degradation`` and ``notice``.
    fn frame<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        frames::to_pandas(py, self.arrays(py)?, self.attrs(py)?)
    }

    /// The dashboard's KPIs at ``now`` (default: the snapshot's time), as
    /// :func:`spe.compute_kpis` returns them. As on the dashboard,
    /// ``data_freshness_s`` of an estimate is the age of the last live data
    /// (``last_live_at``; with none ever, unknown and ``critical``), not that
    /// of the synthetic values made just now.
    #[pyo3(signature = (now = None))]
    fn kpis<'py>(
        &self,
        py: Python<'py>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let now = match now.filter(|n| !n.is_none()) {
            Some(n) => crate::args::instant(n, "now")?,
            None => self.snapshot.made_at,
        };
        let config = KpiConfig::default();
        let mut kpis = compute_kpis(&self.snapshot.energy, now, &config);
        kpis.data_freshness_s = live_data_freshness_kpi(
            &self.snapshot.energy,
            self.snapshot.last_live_at,
            now,
            &config,
        );
        crate::kpi::kpis_dict(py, &kpis)
    }

    fn __len__(&self) -> usize {
        self.snapshot.weather.len()
    }

    /// Pickle (and copy) support: rebuilt by ``WeatherSnapshot._restore``
    /// from the snapshot as JSON, the time it was handed out at (in
    /// nanoseconds, so its age is the same) and the refresh's outcome.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<SnapshotReduced<'py>> {
        let this = slf.get();
        let state = serde_json::to_string(&*this.snapshot)
            .map_err(|e| Error::config(format!("cannot pickle this snapshot: {e}")))?;
        let now_ns = this.now.timestamp_nanos_opt().unwrap_or_default();
        Ok((
            slf.get_type().getattr("_restore")?,
            (state, now_ns, this.outcome.clone()),
        ))
    }

    /// The snapshot pickled as ``state`` (see ``__reduce__``); its frames
    /// are checked again.
    #[staticmethod]
    #[pyo3(signature = (state, now_ns, outcome = None))]
    fn _restore(state: &str, now_ns: i64, outcome: Option<String>) -> PyResult<Self> {
        let snapshot: CoreSnapshot = serde_json::from_str(state)
            .map_err(|e| Error::config(format!("not a pickled weather snapshot: {e}")))?;
        Ok(WeatherSnapshot {
            snapshot: Arc::new(snapshot),
            now: DateTime::from_timestamp_nanos(now_ns),
            outcome,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "WeatherSnapshot(mode='{}', provenance='{}', hours={}, age_s={:.0}, breaker_state='{}')",
            self.mode(),
            self.provenance(),
            self.snapshot.weather.len(),
            self.age_s(),
            self.breaker_state()
        )
    }
}

/// What `WeatherSnapshot.__reduce__` answers: `_restore` and its arguments.
type SnapshotReduced<'py> = (Bound<'py, PyAny>, (String, i64, Option<String>));

/// `__getnewargs_ex__`: `(latitude, longitude, base_url)` and the keywords.
type NewArgs<'py> = ((f64, f64, Option<String>), Bound<'py, PyDict>);

/// The settings a service is rebuilt from.
struct Settings {
    latitude: f64,
    longitude: f64,
    base_url: Option<String>,
    timezone: String,
    country: String,
    timeout_s: f64,
    past_days: u16,
    forecast_days: u16,
    stale_after_s: f64,
    seed: u64,
    breaker: Option<Py<CircuitBreaker>>,
    generator: Option<Py<SyntheticGenerator>>,
    journal: Option<Py<Journal>>,
}

/// Weather for a site that never fails: live from Open-Meteo while it
/// answers, the synthetic estimate when it does not.
///
/// Each :meth:`fetch` asks Open-Meteo (``base_url``, default
/// ``https://api.open-meteo.com``; ``/v1/forecast`` is appended) for
/// ``past_days`` days before today and ``forecast_days`` from today, through
/// a circuit breaker with the call timeout ``timeout_s`` inside. A call that
/// fails (timeout, HTTP 5xx, no connection, bad body) switches to the
/// synthetic generator at once (``mode="estimation"``); while the circuit
/// is open the API is not called at all; its half-open probe brings the
/// service back to ``"nominal"`` by itself when the API recovers. The
/// breaker's settings are ``breaker``'s (a :class:`spe.CircuitBreaker`;
/// the service builds its own breaker from them) or the defaults.
///
/// ``generator`` (a :class:`spe.SyntheticGenerator`, e.g. calibrated to
/// the site) makes the estimate; by default one with ``seed``. ``journal``
/// (a :class:`spe.Journal`) records every outage as one incident with its
/// mode changes. Live data older than ``stale_after_s`` (more than
/// ``timeout_s``) is never served as live. ``clock`` (a :class:`spe.ManualClock`, for tests) drives the
/// breaker's waits and the data's age instead of the system clock.
///
/// Works with no network at all (everything is then an estimate). The
/// HTTP work runs in Rust with the GIL released. Pickles as its settings.
///
/// >>> import spe
/// >>> service = spe.WeatherService(48.85, 2.35, base_url="http://127.0.0.1:9", timeout_s=1.0)
/// >>> snap = service.fetch()            # nothing listens on port 9
/// >>> snap.mode, snap.provenance
/// ('estimation', 'synthetic')
/// >>> snap.frame().attrs["mode"]
/// 'estimation'
#[pyclass(module = "spe", name = "WeatherService", frozen)]
pub struct WeatherService {
    service: FailoverService,
    live: OpenMeteo,
    generator: Generator,
    runtime: crate::runtime::OwnedRuntime,
    settings: Settings,
}

impl WeatherService {
    fn describe(outcome: &RefreshOutcome) -> String {
        match outcome {
            RefreshOutcome::Live => "live".into(),
            RefreshOutcome::Failed(e) => format!("failed: {e}"),
            RefreshOutcome::TimedOut(after) => {
                format!("timed_out after {:.1} s", after.as_secs_f64())
            }
            RefreshOutcome::Rejected { .. } => "rejected".into(),
            RefreshOutcome::Joined => "joined".into(),
            _ => "other".into(),
        }
    }

    fn hand_out(&self, snapshot: Arc<CoreSnapshot>, outcome: Option<String>) -> WeatherSnapshot {
        WeatherSnapshot {
            snapshot,
            now: self.service.now(),
            outcome,
        }
    }
}

#[pymethods]
impl WeatherService {
    #[new]
    #[pyo3(signature = (
        latitude = 48.85,
        longitude = 2.35,
        base_url = None,
        *,
        timezone = "Europe/Paris".to_owned(),
        country = "FR".to_owned(),
        timeout_s = 5.0,
        past_days = 2,
        forecast_days = 7,
        stale_after_s = 900.0,
        seed = DEFAULT_SEED,
        breaker = None,
        generator = None,
        journal = None,
        clock = None,
    ))]
    #[pyo3(
        text_signature = "(latitude=48.85, longitude=2.35, base_url=None, *, timezone='Europe/Paris', \
                          country='FR', timeout_s=5.0, past_days=2, forecast_days=7, \
                          stale_after_s=900.0, seed=6168614, breaker=None, generator=None, journal=None, \
                          clock=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        latitude: f64,
        longitude: f64,
        base_url: Option<String>,
        timezone: String,
        country: String,
        timeout_s: f64,
        #[pyo3(from_py_with = crate::args::past_days)] past_days: u16,
        #[pyo3(from_py_with = crate::args::forecast_days)] forecast_days: u16,
        stale_after_s: f64,
        #[pyo3(from_py_with = crate::args::seed)] seed: u64,
        breaker: Option<Py<CircuitBreaker>>,
        generator: Option<Py<SyntheticGenerator>>,
        journal: Option<Py<Journal>>,
        #[pyo3(from_py_with = crate::breaker::manual_clock)] clock: Option<Py<ManualClock>>,
    ) -> PyResult<Self> {
        let timeout = crate::args::positive_seconds(timeout_s, "timeout_s")?;
        let stale_after = crate::args::positive_seconds(stale_after_s, "stale_after_s")?;
        let site = Site::new(
            SITE_NAME,
            latitude,
            longitude,
            &timezone,
            country.parse().map_err(Error::from)?,
        )
        .map_err(Error::from)?;
        let live = OpenMeteo::new(OpenMeteoConfig {
            base_url: base_url
                .clone()
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
            timeout,
            ..OpenMeteoConfig::default()
        })
        .map_err(Error::from)?;
        let mut breaker_config = match &breaker {
            Some(b) => b.get().core_config(),
            None => BreakerConfig::default(),
        };
        breaker_config.call_timeout = Some(timeout);
        if stale_after <= timeout {
            return Err(Error::config(format!(
                "stale_after_s={stale_after_s} must be more than timeout_s={timeout_s}: \
                 live data could go stale while it is fetched"
            ))
            .into());
        }
        let config = FailoverConfig {
            // This service has no refresh loop (`fetch` refreshes): the
            // interval only has to agree with `stale_after`.
            refresh_interval: FailoverConfig::default()
                .refresh_interval
                .min((stale_after - timeout) / 2),
            stale_after,
            past_days,
            forecast_days,
            breaker: breaker_config,
            ..FailoverConfig::default()
        };
        let generator_core = match &generator {
            Some(g) => g.get().generator().clone(),
            None => Generator::with_seed(seed),
        };
        let mut builder =
            FailoverService::builder(site, Arc::new(live.clone()) as Arc<dyn DataSource>)
                .config(config)
                .generator(generator_core.clone());
        if let Some(j) = &journal {
            builder = builder.journal(j.get().core().clone());
        }
        if let Some(c) = &clock {
            builder = builder.clock(c.get().core().clone(), Utc::now());
        }
        let runtime = crate::runtime::OwnedRuntime::current_thread().map_err(|e| {
            Error::config(format!("cannot start the weather service's runtime: {e}"))
        })?;
        let service = {
            let _entered = runtime.enter();
            builder.build().map_err(Error::from)?
        };
        let _ = py;
        Ok(WeatherService {
            service,
            live,
            generator: generator_core,
            runtime,
            settings: Settings {
                latitude,
                longitude,
                base_url,
                timezone,
                country,
                timeout_s,
                past_days,
                forecast_days,
                stale_after_s,
                seed,
                breaker,
                generator,
                journal,
            },
        })
    }

    /// Ask the weather API once (through the breaker; at most
    /// ``timeout_s``), then return the snapshot: live weather if it
    /// answered with weather that includes the current hour, the synthetic
    /// estimate otherwise (an answer for other days, from a stale cache or a
    /// wrong clock, counts as an upstream failure). Never raises because the
    /// API failed. Calls from several threads share one request.
    fn fetch(&self, py: Python<'_>) -> WeatherSnapshot {
        let outcome = py.detach(|| self.runtime.block_on(self.service.refresh()));
        let snapshot = py.detach(|| {
            let _entered = self.runtime.enter();
            self.service.snapshot()
        });
        self.hand_out(snapshot, Some(Self::describe(&outcome)))
    }

    /// The current snapshot, without calling the API (the last fetch's
    /// result, or the estimate if live data went stale).
    fn snapshot(&self, py: Python<'_>) -> WeatherSnapshot {
        let snapshot = py.detach(|| {
            let _entered = self.runtime.enter();
            self.service.snapshot()
        });
        self.hand_out(snapshot, None)
    }

    /// One call to the weather API through the service's breaker, without
    /// failover: returns a live snapshot, or raises
    /// :class:`spe.UpstreamError` (``status``, ``fault``),
    /// :class:`spe.CallTimeoutError` or :class:`spe.CircuitOpenError`.
    /// Does not change what :meth:`snapshot` serves.
    fn fetch_live(&self, py: Python<'_>) -> PyResult<WeatherSnapshot> {
        let site = self.service.site().clone();
        let (past, forecast) = (self.settings.past_days, self.settings.forecast_days);
        let now = self.service.now();
        let window = Window::new(now, past, forecast).map_err(Error::from)?;
        let result = py.detach(|| {
            self.runtime.block_on(
                self.service
                    .breaker()
                    .call(|| self.live.fetch(&site, &window)),
            )
        });
        let weather = match result {
            Ok(w) => w,
            Err(BreakerError::Rejected(r)) => return Err(Error::Rejected(r).into()),
            Err(BreakerError::Timeout { after }) => {
                return Err(Error::Timeout {
                    what: "the weather API".into(),
                    after_s: after.as_secs_f64(),
                }
                .into());
            }
            Err(BreakerError::Inner(e)) => return Err(Error::Source(e).into()),
            Err(other) => {
                return Err(Error::config(format!("the weather call failed: {other}")).into());
            }
        };
        let energy = self
            .generator
            .twin(&site)
            .energy(&weather)
            .map_err(Error::from)?;
        let snapshot = CoreSnapshot {
            mode: Mode::Nominal,
            weather,
            energy,
            breaker: self.service.breaker().state(),
            made_at: now,
            last_live_at: Some(now),
            degradation: None,
            incident: None,
        };
        Ok(self.hand_out(Arc::new(snapshot), Some("live".into())))
    }

    /// ``"nominal"`` or ``"estimation"``, now.
    #[getter]
    fn mode(&self, py: Python<'_>) -> &'static str {
        self.snapshot(py).mode()
    }

    /// The breaker's state: ``"closed"``, ``"open"``, ``"half_open"``, …
    #[getter]
    fn breaker_state(&self) -> &'static str {
        self.service.breaker().state().name()
    }

    /// The breaker's counters (as :meth:`CircuitBreaker.metrics`).
    fn breaker_metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.service.breaker().metrics();
        let d = PyDict::new(py);
        d.set_item("state", m.state.name())?;
        d.set_item("time_in_state_s", m.time_in_state.as_secs_f64())?;
        d.set_item("window_calls", m.window_calls)?;
        d.set_item("window_failures", m.window_failures)?;
        d.set_item("window_slow_calls", m.window_slow_calls)?;
        d.set_item("failure_rate", m.failure_rate)?;
        d.set_item("slow_call_rate", m.slow_call_rate)?;
        d.set_item("rejected", m.rejected)?;
        d.set_item("timeouts", m.timeouts)?;
        d.set_item("ignored", m.ignored)?;
        d.set_item("transitions", m.transitions)?;
        d.set_item("open_attempt", m.open_attempt)?;
        d.set_item("retry_after_s", m.retry_after.map(|d| d.as_secs_f64()))?;
        Ok(d)
    }

    /// The Open-Meteo endpoint called.
    #[getter]
    fn endpoint(&self) -> String {
        self.live.endpoint().to_string()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "WeatherService(latitude={}, longitude={}, endpoint={}, mode={})",
            PyFloat::new(py, self.settings.latitude).repr()?,
            PyFloat::new(py, self.settings.longitude).repr()?,
            PyString::new(py, &self.endpoint()).repr()?,
            PyString::new(py, self.mode(py)).repr()?,
        ))
    }

    /// Pickle and copy support: a new service with the same settings (it
    /// starts from the estimate until its first fetch; a ``ManualClock`` is
    /// replaced by the system clock).
    fn __getnewargs_ex__<'py>(&self, py: Python<'py>) -> PyResult<NewArgs<'py>> {
        let s = &self.settings;
        let kwargs = PyDict::new(py);
        kwargs.set_item("timezone", &s.timezone)?;
        kwargs.set_item("country", &s.country)?;
        kwargs.set_item("timeout_s", s.timeout_s)?;
        kwargs.set_item("past_days", s.past_days)?;
        kwargs.set_item("forecast_days", s.forecast_days)?;
        kwargs.set_item("stale_after_s", s.stale_after_s)?;
        kwargs.set_item("seed", s.seed)?;
        kwargs.set_item("breaker", s.breaker.as_ref().map(|b| b.bind(py)))?;
        kwargs.set_item("generator", s.generator.as_ref().map(|g| g.bind(py)))?;
        kwargs.set_item("journal", s.journal.as_ref().map(|j| j.bind(py)))?;
        Ok(((s.latitude, s.longitude, s.base_url.clone()), kwargs))
    }
}
