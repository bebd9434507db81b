//! Start-up wiring and the serving loop: the data directory, the incident
//! journal, the weather cache, the history store, the synthetic generator
//! calibrated on the weather it recorded ([`calibrated_generator`]), the
//! Open-Meteo client and spe-core's [`FailoverService`] over them, the prediction chain and the prediction
//! archive ([`App::open`]); then the HTTP server, the service's refresh
//! loop, the prediction runs and the archiving of their answers, with a
//! graceful stop ([`App::serve`]).
//!
//! Nothing at start-up waits on the network or on a prediction: the first
//! snapshot is the cached live weather or the synthetic estimate, the first
//! fetch and the first prediction run start in the background once the
//! server listens, so `/readyz` answers 200 (degraded) at once.
//!
//! Availability comes first: a data directory that cannot be created, a
//! journal that cannot be opened (e.g. a damaged header) or a cache that
//! cannot be opened is logged at `error` and the server runs without it;
//! `GET /readyz` then reports it as a degradation ([`App::unavailable`]).
//! Damage found and repaired at open (cache or archive files quarantined,
//! journal regions skipped) is journaled as an incident (`cache_corrupt`,
//! `journal_corrupt`), opened and closed at once. Only invalid settings stop
//! the start ([`StartError`]).

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound as _, Utc};
use spe_core::{
    Cache, CacheConfig, DataSource, FailoverError, FailoverService, Generator, IncidentKind,
    Journal, JournalError, LoadReport, MIN_CALIBRATION_HOURS, OpenMeteo, PredictionChain,
    SiteError, SourceError, WeatherFrame,
};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::archive::{self, ForecastArchive};
use crate::config::Config;
use crate::forecasting;
use crate::history::{self, History};
use crate::layers::Hardening;
use crate::persistence::Persisted;
use crate::rate_limit::RateLimiter;
use crate::routes::router;
use crate::serve::ConnectionLimits;
use crate::state::AppState;

/// Name of the weather cache in the cache directory.
pub const WEATHER_CACHE: &str = "weather";
/// Component name of incidents about the caches.
pub const CACHE_COMPONENT: &str = "cache";
/// Component name of incidents about the journal itself.
pub const JOURNAL_COMPONENT: &str = "journal";
/// How long [`App::serve`] waits for the refresh loop to stop once the HTTP
/// server is done (a refresh in flight is bounded by the upstream timeout).
const RUN_STOP_GRACE: Duration = Duration::from_secs(10);

/// Days of recorded weather the synthetic generator is calibrated on at
/// start-up ([`calibrated_generator`]).
pub const CALIBRATION_DAYS: i64 = 365;

/// The synthetic generator of estimation mode: the default one calibrated
/// ([`Generator::calibrate`]) on the weather `history` recorded from real
/// sources over the [`CALIBRATION_DAYS`] before today (UTC), so estimates
/// follow the site's climate (mean temperature, its annual and daily
/// cycles, their noise, the mean wind) rather than the defaults' (Paris).
/// The window ends at the start of the day, so restarts within a day give
/// the same estimates. Demand is not fitted: the recorded demand is the
/// energy twin's, computed from the weather. Without a store, with less
/// than [`MIN_CALIBRATION_HOURS`] of real temperature, or if the fit fails,
/// the default generator (the reason is logged).
pub fn calibrated_generator(
    history: Option<&History>,
    site: &spe_core::Site,
    now: DateTime<Utc>,
) -> Generator {
    let default = Generator::default();
    let Some(history) = history else {
        return default;
    };
    let today = now.duration_trunc(chrono::Duration::days(1)).unwrap_or(now);
    let from = today - chrono::Duration::days(CALIBRATION_DAYS);
    let weather = match history.store().real_weather(from, today) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the recorded weather; the synthetic generator keeps its defaults");
            return default;
        }
    };
    let hours = weather.temperature_2m().iter().flatten().count();
    if hours < MIN_CALIBRATION_HOURS {
        tracing::info!(
            hours,
            needed = MIN_CALIBRATION_HOURS,
            "too little recorded live weather to calibrate the synthetic generator; it keeps its defaults"
        );
        return default;
    }
    match default.calibrate(site, &weather, None) {
        Ok((generator, report)) => {
            let t = &report.temperature;
            tracing::info!(
                hours = report.hours_used,
                mean_c = t.mean_c,
                annual_amplitude_c = t.annual_amplitude_c,
                diurnal_amplitude_c = t.diurnal_amplitude_c,
                noise_std_c = t.noise_std_c,
                wind_mean_ms = report.wind_mean_ms,
                "synthetic generator calibrated on the recorded live weather"
            );
            generator
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot calibrate the synthetic generator on the recorded weather; it keeps its defaults");
            default
        }
    }
}

/// Why the server cannot start: invalid settings.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// `--latitude`, `--longitude` or `--timezone` is invalid.
    Site(SiteError),
    /// `--open-meteo-url` or `--upstream-timeout-ms` is invalid.
    OpenMeteo(SourceError),
    /// The failover settings (refresh, breaker) are invalid.
    Failover(FailoverError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Site(e) => {
                write!(f, "invalid site (--latitude, --longitude, --timezone): {e}")
            }
            StartError::OpenMeteo(e) => write!(
                f,
                "invalid Open-Meteo settings (--open-meteo-url, --upstream-timeout-ms): {e}"
            ),
            StartError::Failover(e) => write!(
                f,
                "invalid failover settings (--refresh-secs, --upstream-timeout-ms, --breaker-open-secs): {e}"
            ),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Site(e) => Some(e),
            StartError::OpenMeteo(e) => Some(e),
            StartError::Failover(e) => Some(e),
        }
    }
}

/// The wired-up application: the failover service, the journal it writes
/// to, and the settings of the HTTP edge.
#[derive(Debug, Clone)]
pub struct App {
    service: FailoverService,
    journal: Option<Journal>,
    predictions: PredictionChain,
    archive: Option<ForecastArchive>,
    history: Option<History>,
    unavailable: Vec<Persisted>,
    admin_token: Option<String>,
    generate_per_minute: u32,
    hardening: Hardening,
    connections: ConnectionLimits,
}

impl App {
    /// Wire the application for `config`, with Open-Meteo as the live source.
    /// Blocking (it opens files): call it at start-up.
    pub fn open(config: &Config) -> Result<App, StartError> {
        let source = OpenMeteo::new(config.open_meteo()).map_err(StartError::OpenMeteo)?;
        App::open_with(config, Arc::new(source))
    }

    /// Wire the application for `config` with `primary` as the live source.
    /// Settings are checked before anything is touched on disk. The first
    /// snapshot is ready when this returns: the cached live weather if recent
    /// enough, else the synthetic estimate.
    pub fn open_with(config: &Config, primary: Arc<dyn DataSource>) -> Result<App, StartError> {
        let site = config.site().map_err(StartError::Site)?;
        let failover = config.failover();
        failover
            .breaker
            .validate()
            .map_err(|e| StartError::Failover(e.into()))?;

        let now = Utc::now();
        if let Err(e) = std::fs::create_dir_all(&config.data_dir) {
            tracing::error!(
                data_dir = %config.data_dir.display(),
                error = %e,
                "cannot create the data directory; running without what it should hold"
            );
        }
        let journal = open_journal(&config.journal_path(), now);
        let cache = open_cache(&config.cache_dir(), journal.as_ref(), now);

        let mut unavailable = Vec::new();
        if journal.is_none() {
            unavailable.push(Persisted::Journal);
        }
        if cache.is_none() {
            unavailable.push(Persisted::WeatherCache);
        }
        crate::history::adopt_earlier_layout(&config.data_dir, &config.site_key());
        let history = History::open(&config.history_dir(), journal.as_ref(), now);
        let generator = calibrated_generator(history.as_ref(), &site, now);
        let mut builder = FailoverService::builder(site, primary)
            .config(failover)
            .generator(generator);
        if let Some(journal) = &journal {
            builder = builder.journal(journal.clone());
        }
        if let Some(cache) = cache {
            builder = builder.cache(cache);
        }
        let service = builder.build().map_err(StartError::Failover)?;
        let first = service.snapshot();
        tracing::info!(mode = %first.mode, provenance = first.weather.provenance().name(), "first snapshot ready");
        let predictions = forecasting::chain(config, journal.as_ref());
        match predictions.latest() {
            Some(cached) => tracing::info!(
                age_s = cached.age(predictions.now()).as_secs(),
                model = cached.predictions.forecast.model(),
                "cached predictions ready"
            ),
            None => tracing::info!("no cached predictions yet"),
        }
        let archive = ForecastArchive::open(&config.cache_dir(), journal.as_ref(), now);
        if history.is_none() {
            unavailable.push(Persisted::History);
        }
        if predictions.cache().is_none() {
            unavailable.push(Persisted::PredictionsCache);
        }
        if archive.is_none() {
            unavailable.push(Persisted::Archive);
        }
        unavailable.sort_unstable();
        Ok(App {
            service,
            journal,
            predictions,
            archive,
            history,
            unavailable,
            admin_token: config.admin_token.clone(),
            generate_per_minute: config.generate_per_minute,
            hardening: config.hardening(),
            connections: config.connection_limits(),
        })
    }

    /// The failover service.
    pub fn service(&self) -> &FailoverService {
        &self.service
    }

    /// The incident journal, if it could be opened.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// The prediction chain.
    pub fn predictions(&self) -> &PredictionChain {
        &self.predictions
    }

    /// The archive of past predictions, if it could be opened.
    pub fn archive(&self) -> Option<&ForecastArchive> {
        self.archive.as_ref()
    }

    /// The long-term history store, if it could be opened.
    pub fn history(&self) -> Option<&History> {
        self.history.as_ref()
    }

    /// The parts of the data directory that could not be opened, which the
    /// server runs without.
    pub fn unavailable(&self) -> &[Persisted] {
        &self.unavailable
    }

    /// The handlers' state.
    pub fn state(&self) -> AppState {
        let state = AppState::new(self.service.clone(), self.journal.clone())
            .with_unavailable(self.unavailable.iter().copied())
            .with_predictions(self.predictions.clone())
            .with_admin_token(self.admin_token.clone())
            .with_rate_limiter(RateLimiter::new(self.generate_per_minute))
            .with_hardening(self.hardening.clone());
        let state = match &self.archive {
            Some(archive) => state.with_archive(archive.clone()),
            None => state,
        };
        match &self.history {
            Some(history) => state.with_history(history.clone()),
            None => state,
        }
    }

    /// Serve on `listener` and run the service's refresh loop until
    /// `shutdown` resolves; then end the event streams, stop accepting, let
    /// the requests in flight finish, stop the refresh loop and wait for it
    /// (a refresh in flight is bounded by the upstream timeout). The journal
    /// needs no flush: each record is fsynced as it is appended.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let refresh = tokio::spawn({
            let service = self.service.clone();
            let stopped = stopped.clone();
            async move { service.run(stopped).await }
        });
        // Subscribed before the first run can publish.
        let archiving = self.archive.clone().map(|archive| {
            tokio::spawn(archive::record_results(
                archive,
                self.predictions.clone(),
                stopped.clone(),
            ))
        });
        let state = self.state();
        let recording = self.history.clone().map(|history| {
            tokio::spawn(history::record(
                history,
                state.clone(),
                Some(self.predictions.clone()),
                stopped.clone(),
            ))
        });
        let predicting = tokio::spawn(forecasting::run(
            self.service.clone(),
            self.predictions.clone(),
            self.history.clone(),
            stopped,
        ));
        let streams = state.clone();
        let app = router(state);
        crate::serve::serve(listener, app, self.connections, async move {
            shutdown.await;
            // Open event streams would hold the graceful stop forever.
            streams.stop_streams();
        })
        .await;
        let _ = stop.send(true);
        // Dropping a run in flight kills its command: this ends at once.
        if let Err(e) = predicting.await {
            tracing::error!(error = %e, "the prediction task failed");
        }
        // An archive write in flight finishes (one fsync) before this ends.
        if let Some(archiving) = archiving
            && let Err(e) = archiving.await
        {
            tracing::error!(error = %e, "the archiving task failed");
        }
        // A history write in flight finishes before this ends.
        if let Some(recording) = recording
            && let Err(e) = recording.await
        {
            tracing::error!(error = %e, "the history task failed");
        }
        match tokio::time::timeout(RUN_STOP_GRACE, refresh).await {
            Ok(Ok(())) => tracing::info!("refresh loop stopped"),
            Ok(Err(e)) => tracing::error!(error = %e, "the refresh loop failed"),
            Err(_) => tracing::warn!(
                "the refresh loop did not stop within {RUN_STOP_GRACE:?}; leaving it behind"
            ),
        }
        Ok(())
    }
}

/// The file name of `path`, for incident details (no machine paths).
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Open the journal; on failure log and run without one. Damage skipped in
/// the middle of the file is journaled as a `journal_corrupt` incident. A
/// file that is not a journal at all (its header destroyed) is set aside,
/// untouched, as `incidents.journal.bad-<time>`, and a fresh journal starts
/// with a `journal_corrupt` incident that says so: incidents keep being
/// recorded, and nothing of the old file is lost. A journal of a newer
/// format is left alone (a newer server wrote it).
fn open_journal(path: &Path, now: DateTime<Utc>) -> Option<Journal> {
    let journal = match Journal::open(path) {
        Ok(journal) => journal,
        Err(JournalError::NotAJournal { .. }) => return reopen_fresh_journal(path, now),
        Err(e) => {
            tracing::error!(
                path = %path.display(),
                error = %e,
                "cannot open the incident journal; running without one (incidents are only logged)"
            );
            return None;
        }
    };
    let report = journal.open_report();
    if let Some(saved) = &report.damaged_header_saved_to {
        // Rewritten in the file: the next open finds it sound, so this is
        // journaled once.
        let details = format!(
            "{}: damaged header rewritten (the damaged bytes are in {})",
            file_name(path),
            file_name(saved)
        );
        tracing::error!(%details, "incident journal header damaged");
        record_journal_repaired(
            &journal,
            now,
            details,
            "header rewritten on open; every record was read",
        );
    }
    if report.torn_tail_bytes > 0 {
        let saved_to = report
            .torn_tail_saved_to
            .as_ref()
            .map(|p| p.display().to_string());
        tracing::warn!(
            bytes = report.torn_tail_bytes,
            saved_to = saved_to.as_deref().unwrap_or("nowhere"),
            "incident journal: cut a torn last record (an interrupted write)"
        );
    }
    for ignored in &report.ignored_events {
        tracing::warn!(offset = ignored.offset, reason = %ignored.reason, "incident journal: record left out");
    }
    if !report.corrupt_regions.is_empty() {
        let regions: Vec<String> = report
            .corrupt_regions
            .iter()
            .map(|r| {
                let reason = serde_json::to_value(r.reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("{:?}", r.reason));
                format!("{} bytes at offset {} ({reason})", r.len, r.offset)
            })
            .collect();
        let details = format!(
            "{}: skipped {} damaged region(s): {}",
            file_name(path),
            regions.len(),
            regions.join("; ")
        );
        // The damage stays in the file (for the post-mortem), so every open
        // finds it: journaled once, not at every restart.
        let known = journal
            .incidents(..)
            .iter()
            .any(|i| i.kind == IncidentKind::JournalCorrupt && i.details == details);
        if known {
            tracing::warn!(%details, "incident journal damaged (already journaled)");
        } else {
            tracing::error!(%details, "incident journal damaged");
            record_journal_repaired(
                &journal,
                now,
                details,
                "damaged regions skipped on open; the records around them were read",
            );
        }
    }
    Some(journal)
}

/// Set aside a file that is not a journal and start a fresh one that
/// records it; `None` (run without a journal) if either step fails.
fn reopen_fresh_journal(path: &Path, now: DateTime<Utc>) -> Option<Journal> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".bad-{}", now.format("%Y%m%dT%H%M%S%.3fZ")));
    let aside = std::path::PathBuf::from(aside);
    if let Err(e) = std::fs::rename(path, &aside) {
        tracing::error!(
            path = %path.display(),
            error = %e,
            "the incident journal has no journal header and cannot be set aside; \
             running without one (incidents are only logged)"
        );
        return None;
    }
    let journal = match Journal::open(path) {
        Ok(journal) => journal,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot start a fresh incident journal");
            return None;
        }
    };
    let details = format!(
        "{} had no journal header (destroyed or overwritten): set aside as {}, \
         a fresh journal started",
        file_name(path),
        file_name(&aside)
    );
    tracing::error!(%details, "incident journal replaced");
    record_journal_repaired(
        &journal,
        now,
        details,
        "the damaged file is kept aside for inspection",
    );
    Some(journal)
}

/// Open the weather cache; on failure log and run without one. Files found
/// corrupt (quarantined) or unreadable are journaled as a `cache_corrupt`
/// incident.
fn open_cache(
    dir: &Path,
    journal: Option<&Journal>,
    now: DateTime<Utc>,
) -> Option<Cache<WeatherFrame>> {
    let (cache, report) =
        match Cache::<WeatherFrame>::open(dir, WEATHER_CACHE, CacheConfig::default()) {
            Ok(opened) => opened,
            Err(e) => {
                tracing::error!(
                    dir = %dir.display(),
                    error = %e,
                    "cannot open the weather cache; running without one"
                );
                return None;
            }
        };
    journal_cache_report(
        journal,
        WEATHER_CACHE,
        &report,
        now,
        "starting without cached weather",
    );
    Some(cache)
}

/// Log what opening the cache `name` found, and journal its damage (files
/// quarantined or unreadable) as a `cache_corrupt` incident, opened and
/// closed at once; `without` says how the server starts when no valid
/// generation is left.
pub(crate) fn journal_cache_report(
    journal: Option<&Journal>,
    name: &str,
    report: &LoadReport,
    now: DateTime<Utc>,
    without: &str,
) {
    for removed in &report.removed_temp_files {
        tracing::info!(cache = name, file = %file_name(removed), "removed a cache write left over from a crash");
    }
    if report.is_clean() {
        return;
    }
    let details = cache_details(name, report);
    tracing::error!(%details, "cache damaged");
    if let Some(journal) = journal {
        let resolution = match report.loaded {
            Some(generation) => format!("corrupt files set aside; serving generation {generation}"),
            None => format!("corrupt files set aside; no valid generation left, {without}"),
        };
        record_repaired(
            journal,
            CACHE_COMPONENT,
            IncidentKind::CacheCorrupt,
            now,
            details,
            resolution,
        );
    }
}

/// What the load report of the cache `name` says, file by file.
fn cache_details(name: &str, report: &LoadReport) -> String {
    let mut parts: Vec<String> = report
        .quarantined
        .iter()
        .map(|q| match &q.moved_to {
            Some(to) => format!(
                "quarantined {} ({}) as {}",
                file_name(&q.path),
                q.reason,
                file_name(to)
            ),
            None => format!(
                "{} is corrupt ({}) but could not be moved aside",
                file_name(&q.path),
                q.reason
            ),
        })
        .collect();
    parts.extend(
        report
            .unreadable
            .iter()
            .map(|u| format!("{} unreadable ({})", file_name(&u.path), u.error)),
    );
    format!("{name} cache: {}", parts.join("; "))
}

/// Damage of the journal itself found and repaired at open: a
/// `journal_corrupt` incident, opened and closed at once.
fn record_journal_repaired(
    journal: &Journal,
    now: DateTime<Utc>,
    details: String,
    resolution: &str,
) {
    record_repaired(
        journal,
        JOURNAL_COMPONENT,
        IncidentKind::JournalCorrupt,
        now,
        details,
        resolution,
    );
}

/// Damage found and repaired (at start-up, or by the history store while
/// running): an incident opened and closed at once.
pub(crate) fn record_repaired(
    journal: &Journal,
    component: &str,
    kind: IncidentKind,
    now: DateTime<Utc>,
    details: String,
    resolution: impl Into<String>,
) {
    let recorded = journal
        .open_incident(component, kind, now, details)
        .and_then(|id| journal.close_incident(id, now, resolution));
    if let Err(e) = recorded {
        tracing::error!(error = %e, %kind, "could not journal the incident");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Behaviour, TempDir, Upstream};
    use clap::Parser as _;
    use spe_core::{Mode, Provenance};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn config(data_dir: &Path) -> Config {
        let mut args: Vec<std::ffi::OsString> = [
            "spe-server-example",
            "--addr",
            "127.0.0.1:0",
            "--latitude",
            "48.85",
            "--longitude",
            "2.35",
            "--timezone",
            "Europe/Paris",
            "--data-dir",
        ]
        .iter()
        .map(Into::into)
        .collect();
        args.push(data_dir.into());
        Config::try_parse_from(args).expect("valid flags")
    }

    fn open(dir: &Path, behaviour: Behaviour) -> App {
        App::open_with(&config(dir), Upstream::new(behaviour)).expect("starts")
    }

    /// Records in `dir`'s history store 60 days of a warm site's weather
    /// (mean 24 °C, windy), up to today, with `provenance`.
    fn record_warm_weather(dir: &Path, provenance: Provenance) -> Generator {
        use chrono::DurationRound as _;
        let config = config(dir);
        let history = History::open(&config.history_dir(), None, Utc::now()).expect("a store");
        let mut synth = spe_core::SynthConfig::default();
        synth.climate.temp_mean_c = 24.0;
        synth.climate.temp_annual_amplitude_c = 2.0;
        synth.climate.wind_mean_ms = 7.0;
        let warm = Generator::new(synth).expect("valid");
        let today = Utc::now()
            .duration_trunc(chrono::Duration::days(1))
            .expect("a day");
        let start = today - chrono::Duration::days(60);
        let axis = spe_core::TimeAxis::new(start, 60 * 24).expect("an axis");
        let site = config.site().expect("a site");
        let frames = warm.generate(&site, axis, today);
        history
            .store()
            .record_weather(&frames.weather.with_provenance(provenance), today)
            .expect("recorded");
        warm
    }

    fn mean_temperature(weather: &WeatherFrame) -> f64 {
        let t: Vec<f64> = weather.temperature_2m().iter().flatten().copied().collect();
        t.iter().sum::<f64>() / t.len() as f64
    }

    #[tokio::test]
    async fn the_estimates_follow_the_recorded_live_weather() {
        let tmp = TempDir::new();
        let default = open(tmp.path(), Behaviour::Refused);
        let default_mean = mean_temperature(&default.service().snapshot().weather);
        assert_eq!(
            default.service().generator().config(),
            Generator::default().config(),
            "nothing recorded: the defaults"
        );
        drop(default);

        let warm = record_warm_weather(tmp.path(), Provenance::Live);
        let app = open(tmp.path(), Behaviour::Refused);
        let first = app.service().snapshot();
        assert_eq!(first.mode, Mode::Estimation);
        // The estimates of the days shown are the warm site's, within the
        // noise, far from the defaults'.
        let site = app.service().site().clone();
        let truth = warm.generate(&site, first.weather.axis(), first.made_at);
        let (mean, truth_mean) = (
            mean_temperature(&first.weather),
            mean_temperature(&truth.weather),
        );
        assert!(
            (mean - truth_mean).abs() < 2.5,
            "calibrated {mean:.1} °C, the site's {truth_mean:.1} °C"
        );
        assert!(
            mean > default_mean + 5.0,
            "calibrated {mean:.1} °C, default {default_mean:.1} °C"
        );
    }

    #[tokio::test]
    async fn recorded_estimates_do_not_calibrate_the_generator() {
        let tmp = TempDir::new();
        let _ = record_warm_weather(tmp.path(), Provenance::Synthetic);
        let app = open(tmp.path(), Behaviour::Refused);
        assert_eq!(
            app.service().generator().config(),
            Generator::default().config()
        );
    }

    #[tokio::test]
    async fn an_empty_data_directory_is_set_up() {
        let tmp = TempDir::new();
        let data = tmp.path().join("nested").join("data");
        let app = open(&data, Behaviour::Refused);
        assert!(data.join("incidents.journal").is_file());
        assert!(data.join("cache").is_dir());
        let journal = app.journal().expect("a journal");
        assert!(journal.open_report().created);
        assert!(app.archive().is_some_and(ForecastArchive::is_empty));
        assert!(journal.incidents(..).is_empty());
        let first = app.service().snapshot();
        assert_eq!(first.mode, Mode::Estimation);
        assert_eq!(first.weather.provenance(), Provenance::Synthetic);
    }

    /// A first run on `dir` that gets live weather (and caches it), stopped.
    async fn run_once_live(dir: &Path) {
        let app = open(dir, Behaviour::Live);
        app.service().refresh().await;
        assert_eq!(app.service().snapshot().mode, Mode::Nominal);
    }

    #[tokio::test]
    async fn live_weather_is_cached_and_served_after_a_restart() {
        let tmp = TempDir::new();
        run_once_live(tmp.path()).await;
        let app = open(tmp.path(), Behaviour::Refused);
        let first = app.service().snapshot();
        assert_eq!(first.mode, Mode::Nominal);
        assert_eq!(first.weather.provenance().name(), "cached");
    }

    #[tokio::test]
    async fn another_site_does_not_start_from_the_last_sites_cache() {
        let tmp = TempDir::new();
        run_once_live(tmp.path()).await;
        let tokyo = tokyo(tmp.path());
        assert_ne!(tokyo.cache_dir(), config(tmp.path()).cache_dir());
        let app = App::open_with(&tokyo, Upstream::new(Behaviour::Refused)).expect("starts");
        let first = app.service().snapshot();
        assert_eq!(
            first.mode,
            Mode::Estimation,
            "Paris' weather is not Tokyo's"
        );
        assert_eq!(first.weather.provenance().name(), "synthetic");
        drop(app);
        // Back to Paris: its cache is still there.
        let app = open(tmp.path(), Behaviour::Refused);
        assert_eq!(
            app.service().snapshot().weather.provenance().name(),
            "cached"
        );
    }

    fn tokyo(dir: &Path) -> Config {
        let mut tokyo = config(dir);
        tokyo.latitude = 35.68;
        tokyo.longitude = 139.69;
        tokyo.timezone = "Asia/Tokyo".into();
        tokyo
    }

    /// A store in `dir` holding one live demand hour, closed.
    fn store_with_one_hour(dir: &Path) -> DateTime<Utc> {
        let hour = chrono::DateTime::parse_from_rfc3339("2026-01-14T09:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        let (store, _) = spe_core::HistoryStore::open(dir, spe_core::StoreConfig::default(), hour)
            .expect("opens");
        store
            .record_observations(&[spe_core::Observation::new(
                "demand_mw",
                hour,
                1234.0,
                Provenance::Live,
            )])
            .expect("recorded");
        store.backup_now(hour).expect("backed up");
        hour
    }

    fn demand_rows(app: &App, hour: DateTime<Utc>) -> usize {
        app.history()
            .expect("a history store")
            .store()
            .observations("demand_mw", hour, hour + chrono::Duration::hours(1))
            .expect("readable")
            .len()
    }

    #[tokio::test]
    async fn each_site_has_its_own_history_and_the_earlier_shared_store_becomes_the_sites() {
        let tmp = TempDir::new();
        let paris = config(tmp.path());
        let shared = tmp.path().join(crate::history::HISTORY_DIR);
        let hour = store_with_one_hour(&shared);

        // The store of the earlier layout is Paris' now, backups and all.
        let app = open(tmp.path(), Behaviour::Refused);
        assert_eq!(demand_rows(&app, hour), 1);
        assert_eq!(
            app.history().expect("a store").store().dir(),
            Some(paris.history_dir().as_path())
        );
        assert!(!shared.join(spe_core::HISTORY_FILE).exists());
        assert_eq!(
            app.history()
                .expect("a store")
                .store()
                .backups()
                .expect("listed")
                .len(),
            1
        );
        drop(app);

        // Tokyo starts with a store of its own, and leaves Paris' alone.
        let app =
            App::open_with(&tokyo(tmp.path()), Upstream::new(Behaviour::Refused)).expect("starts");
        assert_eq!(demand_rows(&app, hour), 0, "Paris' demand is not Tokyo's");
        drop(app);
        let app = open(tmp.path(), Behaviour::Refused);
        assert_eq!(demand_rows(&app, hour), 1);
    }

    #[tokio::test]
    async fn a_move_a_crash_interrupted_is_finished_for_its_own_site() {
        let tmp = TempDir::new();
        let paris = config(tmp.path());
        let half_way = tmp
            .path()
            .join(format!("history.{}.moving", paris.site_key()));
        let hour = store_with_one_hour(&half_way);
        // Started for Tokyo, the server puts Paris' store in Paris' place.
        let app =
            App::open_with(&tokyo(tmp.path()), Upstream::new(Behaviour::Refused)).expect("starts");
        assert_eq!(demand_rows(&app, hour), 0);
        assert!(!half_way.exists());
        assert!(paris.history_dir().join(spe_core::HISTORY_FILE).exists());
        drop(app);
        assert_eq!(demand_rows(&open(tmp.path(), Behaviour::Refused), hour), 1);
    }

    #[tokio::test]
    async fn a_shared_store_open_elsewhere_is_not_moved() {
        let tmp = TempDir::new();
        let shared = tmp.path().join(crate::history::HISTORY_DIR);
        let hour = store_with_one_hour(&shared);
        // An older server still running on the directory.
        let (older, _) =
            spe_core::HistoryStore::open(&shared, spe_core::StoreConfig::default(), hour)
                .expect("opens");
        let app = open(tmp.path(), Behaviour::Refused);
        assert_eq!(demand_rows(&app, hour), 0);
        assert!(shared.join(spe_core::HISTORY_FILE).exists());
        assert_eq!(
            older
                .observations("demand_mw", hour, hour + chrono::Duration::hours(1))
                .expect("readable")
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_corrupt_cache_file_is_quarantined_and_journaled() {
        let tmp = TempDir::new();
        let cache_dir = config(tmp.path()).cache_dir();
        std::fs::create_dir_all(&cache_dir).expect("mkdir");
        std::fs::write(
            cache_dir.join("weather.00000000000000000001.spc"),
            b"not a cache file",
        )
        .expect("write");
        let app = open(tmp.path(), Behaviour::Refused);
        let incidents = app.journal().expect("a journal").incidents(..);
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        let i = &incidents[0];
        assert_eq!(i.kind, IncidentKind::CacheCorrupt);
        assert_eq!(i.component, "cache");
        assert!(!i.is_open());
        assert_eq!(i.end, Some(i.start));
        assert!(
            i.details
                .contains("quarantined weather.00000000000000000001.spc (bad magic"),
            "{}",
            i.details
        );
        assert!(!i.details.contains(&tmp.path().display().to_string()));
        assert!(!cache_dir.join("weather.00000000000000000001.spc").exists());
        assert_eq!(app.service().snapshot().mode, Mode::Estimation);
    }

    #[tokio::test]
    async fn a_damaged_history_store_is_restored_from_its_backup_and_journaled() {
        let tmp = TempDir::new();
        let hour = store_with_one_hour(&config(tmp.path()).history_dir());
        let db = config(tmp.path())
            .history_dir()
            .join(spe_core::HISTORY_FILE);
        std::fs::write(&db, b"this is no database: the disk ate it").expect("write");
        let app = open(tmp.path(), Behaviour::Refused);
        let incidents = app.journal().expect("a journal").incidents(..);
        let i = incidents
            .iter()
            .find(|i| i.kind == IncidentKind::StoreCorrupt)
            .unwrap_or_else(|| panic!("no store_corrupt incident: {incidents:?}"));
        assert_eq!(i.component, "store");
        assert!(!i.is_open());
        assert!(
            i.details.contains("quarantined as history.sqlite.corrupt-"),
            "{}",
            i.details
        );
        assert!(i.details.contains("restored history-"), "{}", i.details);
        assert!(!i.details.contains(&tmp.path().display().to_string()));
        // The restored backup is the newest one, as /metrics reports it.
        assert!(app.history().and_then(History::last_backup).is_some());
        let store = app.history().expect("a history store").store();
        let rows = store
            .observations("demand_mw", hour, hour + chrono::Duration::hours(1))
            .expect("readable");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].value, 1234.0);
    }

    #[tokio::test]
    async fn a_journal_with_a_bad_header_is_set_aside_and_a_fresh_one_records_it() {
        let tmp = TempDir::new();
        let path = tmp.path().join("incidents.journal");
        std::fs::write(&path, b"this is not a journal").expect("write");
        let app = open(tmp.path(), Behaviour::Refused);
        let journal = app.journal().expect("a fresh journal");
        // The old file is kept, byte for byte, beside the new one.
        let aside: Vec<_> = std::fs::read_dir(tmp.path())
            .expect("list")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.to_string_lossy().contains("incidents.journal.bad-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(
            std::fs::read(&aside[0]).expect("read"),
            b"this is not a journal"
        );
        let incidents = journal.incidents(..);
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        assert_eq!(incidents[0].kind, IncidentKind::JournalCorrupt);
        assert!(!incidents[0].is_open());
        assert!(
            incidents[0]
                .details
                .contains("set aside as incidents.journal.bad-"),
            "{}",
            incidents[0].details
        );
        // Outages are journaled again.
        app.service().refresh().await;
        assert_eq!(app.service().snapshot().mode, Mode::Estimation);
        assert!(app.service().snapshot().incident.is_some());
        assert_eq!(journal.open_incidents().len(), 1);
    }

    #[tokio::test]
    async fn a_journal_header_with_a_flipped_bit_is_repaired_and_journaled_once() {
        let tmp = TempDir::new();
        let path = tmp.path().join("incidents.journal");
        {
            let journal = Journal::open(&path).expect("open");
            journal
                .open_incident("weather", IncidentKind::Upstream5xx, Utc::now(), "kept")
                .expect("append");
        }
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[2] ^= 0x10;
        std::fs::write(&path, &bytes).expect("write");

        let app = open(tmp.path(), Behaviour::Refused);
        let journal = app.journal().expect("the journal opens");
        assert!(journal.open_report().damaged_header_saved_to.is_some());
        let incidents = journal.incidents(..);
        assert!(
            incidents.iter().any(|i| i.details == "kept"),
            "{incidents:?}"
        );
        let repaired: Vec<_> = incidents
            .iter()
            .filter(|i| i.kind == IncidentKind::JournalCorrupt)
            .collect();
        assert_eq!(repaired.len(), 1, "{repaired:?}");
        assert!(
            repaired[0]
                .details
                .starts_with("incidents.journal: damaged header rewritten"),
            "{}",
            repaired[0].details
        );
        drop(app);
        let app = open(tmp.path(), Behaviour::Refused);
        let journal = app.journal().expect("the journal opens");
        assert!(journal.open_report().is_clean());
        let count = journal
            .incidents(..)
            .iter()
            .filter(|i| i.kind == IncidentKind::JournalCorrupt)
            .count();
        assert_eq!(count, 1, "journaled again at a restart");
    }

    #[tokio::test]
    async fn damage_in_the_middle_of_the_journal_is_journaled() {
        let tmp = TempDir::new();
        let path = tmp.path().join("incidents.journal");
        {
            let journal = Journal::open(&path).expect("open");
            for n in 0..3 {
                let id = journal
                    .open_incident(
                        "weather",
                        IncidentKind::Upstream5xx,
                        Utc::now(),
                        format!("{n}"),
                    )
                    .expect("append");
                journal
                    .close_incident(id, Utc::now(), "ok")
                    .expect("append");
            }
        }
        // Flip a byte inside the third record's payload: its checksum fails,
        // valid records follow, so it is mid-file damage.
        let mut bytes = std::fs::read(&path).expect("read");
        let magic = [0xE5, 0x4A, 0x52, 0x1D];
        let frames: Vec<usize> = bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == magic)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(frames.len(), 6, "six records");
        bytes[frames[2] + 20] ^= 0xFF;
        std::fs::write(&path, &bytes).expect("write");

        let app = open(tmp.path(), Behaviour::Refused);
        let journal = app.journal().expect("the journal still opens");
        assert_eq!(journal.open_report().corrupt_regions.len(), 1);
        let damaged: Vec<_> = journal
            .incidents(..)
            .into_iter()
            .filter(|i| i.kind == IncidentKind::JournalCorrupt)
            .collect();
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        assert_eq!(damaged[0].component, "journal");
        assert!(!damaged[0].is_open());
        assert!(
            damaged[0]
                .details
                .starts_with("incidents.journal: skipped 1 damaged region(s):"),
            "{}",
            damaged[0].details
        );
        // Restarts find the same damage: still one incident.
        drop(app);
        for _ in 0..2 {
            let app = open(tmp.path(), Behaviour::Refused);
            let journal = app.journal().expect("the journal still opens");
            let count = journal
                .incidents(..)
                .iter()
                .filter(|i| i.kind == IncidentKind::JournalCorrupt)
                .count();
            assert_eq!(count, 1, "journaled again at a restart");
        }
    }

    /// `GET /readyz` of `app`.
    async fn readiness(app: &App) -> serde_json::Value {
        let (status, _, ready) =
            crate::test_support::get_json(&router(app.state()), "/readyz").await;
        assert_eq!(status, axum::http::StatusCode::OK, "{ready}");
        ready
    }

    #[tokio::test]
    async fn a_data_directory_that_is_a_file_is_served_without_and_reported_degraded() {
        let tmp = TempDir::new();
        let data = tmp.path().join("data");
        std::fs::write(&data, b"a file, not a directory").expect("write");
        let app = open(&data, Behaviour::Live);
        assert!(app.journal().is_none());
        assert!(app.history().is_none());
        assert_eq!(app.unavailable(), Persisted::ALL);
        // Live data: nominal, and still degraded, naming what is missing.
        app.service().refresh().await;
        assert_eq!(app.service().snapshot().mode, Mode::Nominal);
        let ready = readiness(&app).await;
        assert_eq!(ready["mode"], "nominal");
        assert_eq!(ready["degraded"], true);
        assert_eq!(
            ready["reason"],
            "running without the incident journal, the history store, the weather cache, \
             the predictions cache and the forecast archive (they could not be opened)"
        );
        assert_eq!(
            ready["unavailable"],
            serde_json::json!([
                "journal",
                "history",
                "weather_cache",
                "predictions_cache",
                "archive"
            ])
        );
        // The dashboard serves all the same.
        let (status, _, dashboard) =
            crate::test_support::get_json(&router(app.state()), "/api/dashboard").await;
        assert_eq!(status, axum::http::StatusCode::OK);
        assert_eq!(dashboard["mode"], "nominal");
    }

    #[tokio::test]
    async fn a_directory_where_the_journal_should_be_is_reported_and_the_rest_kept() {
        let tmp = TempDir::new();
        std::fs::create_dir_all(tmp.path().join("incidents.journal")).expect("mkdir");
        let app = open(tmp.path(), Behaviour::Refused);
        assert!(app.journal().is_none());
        assert_eq!(app.unavailable(), [Persisted::Journal]);
        app.service().refresh().await;
        let ready = readiness(&app).await;
        assert_eq!(ready["mode"], "estimation");
        assert_eq!(ready["degraded"], true);
        let reason = ready["reason"].as_str().expect("a reason");
        // The outage first, then what the server runs without.
        assert!(
            reason.starts_with("open-meteo: connection failed")
                && reason
                    .ends_with("; running without the incident journal (it could not be opened)"),
            "{reason}"
        );
        assert_eq!(ready["unavailable"], serde_json::json!(["journal"]));
        // A sound data directory: nothing reported missing.
        let sound = TempDir::new();
        let app = open(sound.path(), Behaviour::Live);
        assert!(app.unavailable().is_empty());
        app.service().refresh().await;
        let ready = readiness(&app).await;
        assert_eq!(ready["degraded"], false);
        assert!(ready["reason"].is_null());
        assert_eq!(ready["unavailable"], serde_json::json!([]));
    }

    #[test]
    fn invalid_settings_stop_the_start_before_touching_the_disk() {
        let tmp = TempDir::new();
        let data = tmp.path().join("data");
        let mut bad = config(&data);
        bad.latitude = 95.0;
        let e = App::open_with(&bad, Upstream::new(Behaviour::Live)).expect_err("invalid");
        assert!(matches!(e, StartError::Site(_)));
        assert!(e.to_string().contains("--latitude"), "{e}");
        assert!(!data.exists());

        let mut bad = config(&data);
        bad.open_meteo_url = "not a url".into();
        let e = App::open(&bad).expect_err("invalid");
        assert!(matches!(e, StartError::OpenMeteo(_)), "{e}");
        assert!(!data.exists());
    }

    /// One HTTP/1.1 request on a fresh connection; the whole answer.
    async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer
    }

    #[tokio::test]
    async fn serve_runs_the_refresh_loop_and_stops_on_the_signal() {
        let tmp = TempDir::new();
        let upstream = Upstream::new(Behaviour::Live);
        let app = App::open_with(&config(tmp.path()), upstream.clone()).expect("starts");
        let service = app.service().clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (signal, shutdown) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(listener, async {
            let _ = shutdown.await;
        }));

        // The refresh loop runs: live data arrives.
        let mut snapshots = service.watch();
        tokio::time::timeout(
            Duration::from_secs(30),
            snapshots.wait_for(|s| s.mode == Mode::Nominal),
        )
        .await
        .expect("nominal in time")
        .expect("the service is alive");
        let answer = http_get(addr, "/readyz").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(r#""mode":"nominal""#), "{answer}");

        let _ = signal.send(());
        tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("stops in time")
            .expect("no panic")
            .expect("no I/O error");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
        assert!(upstream.calls() >= 1);
    }
}
