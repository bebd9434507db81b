//! The demand forecast: spe-core's [`PredictionChain`] wired to the
//! server's settings and fed from the failover service's snapshots.
//!
//! - [`chain`]: the chain for a [`Config`]: `--prediction-command` as the
//!   primary predictor (else the built-in models), `--prediction-timeout-secs`,
//!   the crash-safe predictions cache in the data directory (so the last
//!   good predictions survive a restart) and the incident journal;
//! - [`request`]: what the chain is asked: up to [`HISTORY_HOURS`] of
//!   hourly demand up to the current hour, from a local midnight
//!   ([`history_start`]), forecast [`HORIZON`] hours ahead with
//!   daily and weekly seasonality and 80 % and 95 % intervals, with the
//!   weather and calendar regressors of the history and of the horizon
//!   (temperature, local hour, day type: see [`calendar_exog`]), so the
//!   built-in models may choose the weather regression;
//! - [`run`]: the background task that runs the chain after the weather
//!   refreshes (at most once per [`MIN_INTERVAL`]), so handlers only read
//!   [`PredictionChain::latest`] and never wait on the engine.
//!
//! The demand history is the energy twin's. For each hour, the snapshot's
//! value and what the history store recorded ([`Recorded`]: earlier
//! snapshots) compete by [`Provenance::rank`]: the more real one is taken,
//! the snapshot's on a tie (so during an outage the hours recorded live
//! before it beat the snapshot's estimate of them); the synthetic
//! generator's value only for an hour neither has. The temperatures
//! likewise (over the horizon, the snapshot's forecast).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound as _, Utc};
use spe_core::{
    ChainError, CommandPredictor, FailoverService, Generator, Journal, PredictionChain,
    PredictionRequest, Site, TimeAxis, WeatherFrame, WeatherSnapshot, WeatherVariable,
    calendar_exog,
};
use spe_core::{HistoryStore, Provenance, StoreError};
use tokio::sync::watch;

use crate::config::Config;
use crate::history::History;

/// Hours forecast.
pub const HORIZON: usize = 48;
/// Most hours of demand history given to the predictors: four weeks (a day
/// less at most, see [`history_start`]).
pub const HISTORY_HOURS: usize = 28 * 24;
/// Seasonal periods, hours: a day and a week.
pub const PERIODS: [usize; 2] = [24, 168];
/// Interval levels, percent.
pub const LEVELS: [f64; 2] = [80.0, 95.0];
/// Timeout of the statistical fallback model.
pub const FALLBACK_TIMEOUT: Duration = Duration::from_secs(60);
/// The least time between two background runs.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);

/// How long `POST /api/predictions/generate` may take for `config`: two
/// runs of the chain (the primary's timeout, then the fallback's), and a
/// margin. Two, because a regeneration that finds a run for another request
/// in flight (the background run on an older snapshot) waits for its end,
/// then runs its own.
pub fn generate_timeout(config: &Config) -> Duration {
    (config.prediction_timeout() + FALLBACK_TIMEOUT) * 2 + Duration::from_secs(5)
}

/// The prediction chain for `config`, journaling into `journal`. Opens the
/// predictions cache in the site's cache directory ([`Config::cache_dir`]; blocking: call it at start-up);
/// without one (it cannot be opened) the chain runs with no tier 3.
pub fn chain(config: &Config, journal: Option<&Journal>) -> PredictionChain {
    let mut builder = PredictionChain::builder()
        .timeout(config.prediction_timeout())
        .fallback_timeout(FALLBACK_TIMEOUT);
    if let Some(command) = &config.prediction_command {
        let mut primary = CommandPredictor::builder(command.program())
            .args(command.args())
            .timeout(config.prediction_timeout())
            .name(command.to_string());
        if let Some(mb) = config.prediction_memory_mb {
            primary = primary.memory_limit_bytes(mb << 20);
        }
        let primary = primary.build();
        builder = builder.primary(Arc::new(primary));
    }
    match PredictionChain::open_cache(config.cache_dir()) {
        Ok((cache, report)) => builder = builder.cache(cache).cache_report(report),
        Err(e) => tracing::error!(
            error = %e,
            "cannot open the predictions cache; predictions will not survive a restart"
        ),
    }
    if let Some(journal) = journal {
        builder = builder.journal(journal.clone());
    }
    builder.build()
}

/// What the history store recorded over a request's history: demand and
/// temperature by hour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    demand_mw: HashMap<DateTime<Utc>, (f64, Provenance)>,
    temperature_2m: HashMap<DateTime<Utc>, (f64, Provenance)>,
}

impl Recorded {
    /// The demand and temperature `store` holds for the [`HISTORY_HOURS`]
    /// before the hour of `now`.
    pub fn read(store: &HistoryStore, now: DateTime<Utc>) -> Result<Recorded, StoreError> {
        let end = now
            .duration_trunc(chrono::Duration::hours(1))
            .unwrap_or(now);
        let hours = i64::try_from(HISTORY_HOURS).unwrap_or(i64::MAX);
        let start = end
            .checked_sub_signed(chrono::Duration::hours(hours))
            .unwrap_or(end);
        let read = |series: &str| -> Result<HashMap<DateTime<Utc>, (f64, Provenance)>, StoreError> {
            Ok(store
                .observations(series, start, end)?
                .into_iter()
                .map(|o| (o.time, (o.value, o.provenance)))
                .collect())
        };
        Ok(Recorded {
            demand_mw: read("demand_mw")?,
            temperature_2m: read(WeatherVariable::Temperature2m.name())?,
        })
    }

    /// How many hours of demand were recorded.
    pub fn demand_hours(&self) -> usize {
        self.demand_mw.len()
    }
}

/// Where the history of a forecast from the hour `start` begins: the first
/// midnight of the site's time zone at most [`HISTORY_HOURS`] before
/// `start` (up to the next whole hour where the zone's midnight is not one).
/// The days of the history are then the calendar's: MSTL pools the alike
/// days of the week counting whole days from the first observation, so a
/// history starting mid-day would mix the end of one day with the start of
/// the next. Falls back on `start` minus [`HISTORY_HOURS`] where the zone
/// skips midnight.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::Site;
/// use spe_server_example::forecasting::history_start;
///
/// // 10:00 UTC is 11:00 in Paris in January: the history starts at a
/// // midnight in Paris (23:00 UTC), 659 hours back.
/// let start = Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap();
/// let from = history_start(&Site::paris(), start).unwrap();
/// assert_eq!(from, Utc.with_ymd_and_hms(2025, 12, 18, 23, 0, 0).unwrap());
/// assert_eq!((start - from).num_hours(), 659);
/// ```
pub fn history_start(site: &Site, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
    use chrono::TimeZone as _;
    let hours = i64::try_from(HISTORY_HOURS).unwrap_or(i64::MAX);
    let earliest = start.checked_sub_signed(chrono::Duration::hours(hours))?;
    let zone = site.timezone();
    let local = earliest.with_timezone(&zone);
    let mut day = local.date_naive();
    // Today's midnight if not past, else tomorrow's, else (skipped by a
    // clock change) the day after's.
    for _ in 0..3 {
        if let Some(midnight) = day
            .and_hms_opt(0, 0, 0)
            .and_then(|m| zone.from_local_datetime(&m).earliest())
            .map(|m| m.with_timezone(&Utc))
            .filter(|m| *m >= earliest)
        {
            // Up to a whole UTC hour (zones at half or quarter hours).
            let hour = chrono::Duration::hours(1);
            let floor = midnight.duration_trunc(hour).ok()?;
            let up = if floor < midnight {
                floor + hour
            } else {
                floor
            };
            return Some(up.min(start));
        }
        day = day.succ_opt()?;
    }
    Some(earliest)
}

/// The chain's request at `now` with nothing recorded: see [`request_with`].
pub fn request(
    site: &Site,
    snapshot: &WeatherSnapshot,
    generator: &Generator,
    now: DateTime<Utc>,
) -> Result<PredictionRequest, ChainError> {
    request_with(site, snapshot, &Recorded::default(), generator, now)
}

/// The chain's request at `now`: hourly demand from [`history_start`] to
/// the current hour (at most [`HISTORY_HOURS`]), forecast from the current
/// hour, with the regressors of
/// [`calendar_exog`] over the history and the horizon. For each hour of
/// demand and temperature: of the snapshot's value and the `recorded` one,
/// the more real by [`Provenance::rank`] (the snapshot's on a tie), else
/// the synthetic generator's.
///
/// # Errors
///
/// [`ChainError::InvalidRequest`] if `now` is out of the calendar's range
/// or the history has a gap neither source fills.
///
/// ```
/// use std::sync::Arc;
/// use spe_core::{FailoverService, Generator, Replay, Site};
/// use spe_server_example::forecasting::{HISTORY_HOURS, HORIZON, request};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let source = Replay::from_csv_str(
///     "time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m\n2020-01-01T00:00Z,1,0,50,3\n",
/// )?;
/// let service = FailoverService::builder(Site::paris(), Arc::new(source)).build()?;
/// let r = request(service.site(), &service.snapshot(), &Generator::default(), service.now())?;
/// assert!(r.history.len() > HISTORY_HOURS - 24 && r.history.len() <= HISTORY_HOURS);
/// assert_eq!(r.horizon, HORIZON);
/// let (past, future) = (r.exog.as_ref().unwrap(), r.exog_future.as_ref().unwrap());
/// assert_eq!((past.len(), future.len()), (r.history.len(), HORIZON));
/// // It starts at a midnight in Paris.
/// assert_eq!(past.column("hour").unwrap()[0], 0.0);
/// assert!(future.column("temperature_2m").is_some());
/// // The history's provenance is the snapshot's.
/// assert_eq!(r.inputs, service.snapshot().energy.provenance());
/// # Ok(()) }
/// ```
pub fn request_with(
    site: &Site,
    snapshot: &WeatherSnapshot,
    recorded: &Recorded,
    generator: &Generator,
    now: DateTime<Utc>,
) -> Result<PredictionRequest, ChainError> {
    let invalid = |what: String| ChainError::InvalidRequest(what);
    let start = now
        .duration_trunc(chrono::Duration::hours(1))
        .map_err(|e| invalid(format!("cannot round {now} to the hour: {e}")))?;
    let history_start =
        history_start(site, start).ok_or_else(|| invalid(format!("no history before {start}")))?;
    let hours = usize::try_from((start - history_start).num_hours())
        .ok()
        .filter(|h| *h > 0)
        .ok_or_else(|| invalid(format!("no history before {start}")))?;
    let axis = TimeAxis::new(history_start, hours).map_err(|e| invalid(e.to_string()))?;
    let future_axis = TimeAxis::new(start, HORIZON).map_err(|e| invalid(e.to_string()))?;
    // The generator over the history and the horizon, in one run.
    let whole =
        TimeAxis::new(history_start, hours + HORIZON).map_err(|e| invalid(e.to_string()))?;
    let generated = generator.generate(site, whole, now);
    let synthetic = &generated.energy;
    let energy = &snapshot.energy;
    let observed = energy.axis();
    let history = axis
        .times()
        .enumerate()
        .map(|(i, t)| {
            let current = observed
                .index_of(t)
                .and_then(|j| energy.demand_mw().get(j).copied().flatten())
                .filter(|v| v.is_finite())
                .map(|v| (v, energy.provenance()));
            more_real(current, recorded.demand_mw.get(&t).copied())
                .or_else(|| synthetic.demand_mw().get(i).copied().flatten())
                .filter(|v| v.is_finite())
                .ok_or_else(|| invalid(format!("no demand for {t}")))
        })
        .collect::<Result<Vec<f64>, ChainError>>()?;
    let exog = |axis: TimeAxis| {
        let temperature = temperatures(
            &snapshot.weather,
            &recorded.temperature_2m,
            &generated.weather,
            axis,
        )?;
        calendar_exog(site, axis, &temperature).map_err(|e| invalid(e.to_string()))
    };
    PredictionRequest::builder(start, history)
        .horizon(HORIZON)
        .periods(PERIODS.to_vec())
        .levels(LEVELS.to_vec())
        .exog(exog(axis)?, exog(future_axis)?)
        // The recent hours, the ones that matter most, are the snapshot's:
        // estimated ones must not give predictions that pass for live.
        .inputs(energy.provenance())
        .build()
}

/// Of the snapshot's value and the recorded one, the more real (by
/// [`Provenance::rank`]); the snapshot's on a tie.
fn more_real(
    current: Option<(f64, Provenance)>,
    recorded: Option<(f64, Provenance)>,
) -> Option<f64> {
    let recorded = recorded.filter(|(v, _)| v.is_finite());
    match (current, recorded) {
        (Some((c, cp)), Some((r, rp))) => Some(if rp.rank() > cp.rank() { r } else { c }),
        (current, recorded) => current.or(recorded).map(|(v, _)| v),
    }
}

/// The temperature of each hour of `axis`: of `observed`'s and the
/// `recorded` one, the more real, else `synthetic`'s.
fn temperatures(
    observed: &WeatherFrame,
    recorded: &HashMap<DateTime<Utc>, (f64, Provenance)>,
    synthetic: &WeatherFrame,
    axis: TimeAxis,
) -> Result<Vec<f64>, ChainError> {
    let value = |frame: &WeatherFrame, t| {
        let i = frame.axis().index_of(t)?;
        frame
            .columns()
            .get(WeatherVariable::Temperature2m)
            .get(i)
            .copied()
            .flatten()
            .filter(|v| v.is_finite())
    };
    axis.times()
        .map(|t| {
            let current = value(observed, t).map(|v| (v, observed.provenance()));
            more_real(current, recorded.get(&t).copied())
                .or_else(|| value(synthetic, t))
                .ok_or_else(|| ChainError::InvalidRequest(format!("no temperature for {t}")))
        })
        .collect()
}

/// The chain's request now ([`request_with`]): the service's current
/// snapshot, what `history` recorded before it (nothing if there is no
/// store, or if it cannot be read: a warning is logged and the generator
/// fills those hours) and the service's generator (the one its estimates
/// come from, calibrated at start-up). The background runs and a forced
/// regeneration both build their request here.
pub async fn current_request(
    service: &FailoverService,
    history: Option<&History>,
) -> Result<PredictionRequest, ChainError> {
    let snapshot = service.snapshot();
    let now = service.now();
    let recorded = match history {
        Some(history) => history
            .run(move |store| Recorded::read(store, now))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the recorded history; using the generator's");
                Recorded::default()
            }),
        None => Recorded::default(),
    };
    request_with(
        service.site(),
        &snapshot,
        &recorded,
        service.generator(),
        now,
    )
}

/// Run the chain once for the service's current snapshot (and what
/// `history` recorded before it, see [`current_request`]); log the outcome.
pub async fn run_once(
    service: &FailoverService,
    chain: &PredictionChain,
    history: Option<&History>,
) {
    let request = match current_request(service, history).await {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(error = %e, "no prediction request");
            return;
        }
    };
    match chain.generate(request).await {
        Ok(result) => tracing::info!(
            tier = %result.tier,
            model = result.predictions.forecast.model(),
            failures = result.failures.len(),
            "predictions made"
        ),
        Err(e) => tracing::warn!(error = %e, "no predictions"),
    }
}

/// The background task: run the chain now, then after each new snapshot,
/// at most once per [`MIN_INTERVAL`], until `stop` turns `true` (a run in
/// flight is then dropped: the chain kills its command).
pub async fn run(
    service: FailoverService,
    chain: PredictionChain,
    history: Option<History>,
    mut stop: watch::Receiver<bool>,
) {
    let mut snapshots = service.watch();
    loop {
        snapshots.borrow_and_update();
        tokio::select! {
            () = run_once(&service, &chain, history.as_ref()) => {},
            _ = stop.wait_for(|s| *s) => return,
        }
        tokio::select! {
            () = tokio::time::sleep(MIN_INTERVAL) => {},
            _ = stop.wait_for(|s| *s) => return,
        }
        tokio::select! {
            changed = snapshots.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Behaviour, rig_with};
    use chrono::{Duration, TimeZone as _};

    #[test]
    fn the_history_starts_at_a_local_midnight_in_any_zone() {
        let site =
            |tz: &str| Site::new("s", 0.0, 0.0, tz, spe_core::Country::France).expect("a site");
        let at = |y, m, d, h| {
            Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
                .single()
                .expect("valid")
        };
        let hours = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_hours();
        let max = i64::try_from(HISTORY_HOURS).expect("small");
        // Paris in summer (UTC+2), a start at local midnight: 28 whole days.
        let start = at(2026, 7, 1, 22);
        let from = history_start(&site("Europe/Paris"), start).expect("a start");
        assert_eq!((from, hours(from, start)), (at(2026, 6, 3, 22), max));
        // Across the spring change (29 March 2026): still a Paris midnight.
        let start = at(2026, 4, 10, 12);
        let from = history_start(&site("Europe/Paris"), start).expect("a start");
        let paris = site("Europe/Paris").timezone();
        assert_eq!(
            from.with_timezone(&paris).format("%H:%M").to_string(),
            "00:00"
        );
        assert!(hours(from, start) > max - 24 && hours(from, start) <= max);
        // Kolkata (UTC+5:30): midnight is 18:30 UTC, so the next whole hour.
        let start = at(2026, 1, 15, 10);
        let from = history_start(&site("Asia/Kolkata"), start).expect("a start");
        assert_eq!(from, at(2025, 12, 18, 19));
        // Havana skips midnight on 8 March 2026 (00:00 becomes 01:00): four
        // weeks before the start is 7 March 22:00 there, so the next
        // midnight that exists, 9 March (UTC−4).
        let start = at(2026, 4, 5, 3);
        let from = history_start(&site("America/Havana"), start).expect("a start");
        assert_eq!(from, at(2026, 3, 9, 4));
    }

    fn temperature_at(frame: &WeatherFrame, t: DateTime<Utc>) -> Option<f64> {
        let i = frame.axis().index_of(t)?;
        frame
            .columns()
            .get(WeatherVariable::Temperature2m)
            .get(i)
            .copied()
            .flatten()
    }

    #[tokio::test]
    async fn the_regressors_are_the_snapshots_weather_and_the_generators_before_it() {
        let rig = rig_with(Behaviour::Live, false);
        rig.service.refresh().await;
        let snapshot = rig.service.snapshot();
        let now = rig.service.now();
        let generator = Generator::default();
        let r = request(rig.service.site(), &snapshot, &generator, now).expect("a request");
        let start = Utc
            .with_ymd_and_hms(2026, 1, 15, 10, 0, 0)
            .single()
            .expect("valid");
        assert_eq!(r.start, start);
        let past = r.exog.as_ref().expect("history regressors");
        let future = r.exog_future.as_ref().expect("horizon regressors");
        let past_t = past.column("temperature_2m").expect("temperature");
        let future_t = future.column("temperature_2m").expect("temperature");
        // Over the horizon: the live forecast of the snapshot.
        for (i, value) in future_t.iter().enumerate() {
            let t = start + Duration::hours(i64::try_from(i).expect("small"));
            assert_eq!(Some(*value), temperature_at(&snapshot.weather, t), "{t}");
        }
        // Four weeks back (from a local midnight), before the snapshot's
        // window: the generator's.
        let history_start = history_start(rig.service.site(), start).expect("a start");
        let hours = r.history.len();
        assert_eq!((start - history_start).num_hours(), 659);
        assert_eq!(
            past.column("hour").expect("hour")[0],
            0.0,
            "midnight in Paris"
        );
        let whole = TimeAxis::new(history_start, hours + HORIZON).expect("axis");
        let generated = generator.generate(rig.service.site(), whole, now).weather;
        assert!(snapshot.weather.axis().index_of(history_start).is_none());
        assert_eq!(Some(past_t[0]), temperature_at(&generated, history_start));
        // The last hour of the history is in the snapshot: its value.
        let last = start - Duration::hours(1);
        assert_eq!(
            Some(past_t[hours - 1]),
            temperature_at(&snapshot.weather, last)
        );
        // The calendar: local hours (Paris, UTC+1 in January) and day types.
        assert_eq!(future.column("hour").expect("hour")[0], 11.0);
        let day_type = future.column("day_type").expect("day type");
        assert_eq!(day_type[0], 0.0, "a Thursday");
        assert_eq!(day_type[47], 1.0, "Saturday 10:00 local");
    }
    #[tokio::test]
    async fn recorded_hours_come_before_the_generators_and_after_the_snapshots() {
        let rig = rig_with(Behaviour::Live, false);
        rig.service.refresh().await;
        let snapshot = rig.service.snapshot();
        let now = rig.service.now();
        let start = now.duration_trunc(Duration::hours(1)).expect("hour");
        let history_start = history_start(rig.service.site(), start).expect("a start");
        let last = start - Duration::hours(1);
        assert!(snapshot.weather.axis().index_of(history_start).is_none());
        assert!(snapshot.energy.axis().index_of(last).is_some());
        // Recorded: the first hour of the history (outside the snapshot) and
        // the last (inside it), demand and temperature.
        let store =
            spe_core::HistoryStore::in_memory(spe_core::StoreConfig::default()).expect("store");
        let live = spe_core::Provenance::Live;
        store
            .record_observations(&[
                spe_core::Observation::new("demand_mw", history_start, 4321.0, live),
                spe_core::Observation::new("temperature_2m", history_start, -7.5, live),
                spe_core::Observation::new("demand_mw", last, 1.0, live),
                spe_core::Observation::new("temperature_2m", last, 40.0, live),
                // Outside the history: not read.
                spe_core::Observation::new("demand_mw", start, 2.0, live),
            ])
            .expect("recorded");
        let recorded = Recorded::read(&store, now).expect("read");
        assert_eq!(recorded.demand_hours(), 2);
        let generator = Generator::default();
        let r = request_with(rig.service.site(), &snapshot, &recorded, &generator, now)
            .expect("a request");
        let past_t = r
            .exog
            .as_ref()
            .expect("regressors")
            .column("temperature_2m")
            .expect("temperature");
        assert_eq!(
            (r.history[0], past_t[0]),
            (4321.0, -7.5),
            "recorded before generated"
        );
        let i = snapshot
            .energy
            .axis()
            .index_of(last)
            .expect("in the snapshot");
        let n = r.history.len();
        assert_eq!(Some(r.history[n - 1]), snapshot.energy.demand_mw()[i]);
        assert_eq!(Some(past_t[n - 1]), temperature_at(&snapshot.weather, last));
        // Nothing recorded: the generator's, as before.
        let plain = request(rig.service.site(), &snapshot, &generator, now).expect("a request");
        assert_ne!(plain.history[0], 4321.0);
    }
    #[tokio::test]
    async fn in_estimation_mode_hours_recorded_live_beat_the_snapshots_estimate() {
        let rig = rig_with(Behaviour::Refused, false);
        rig.service.refresh().await;
        let snapshot = rig.service.snapshot();
        assert_eq!(
            snapshot.energy.provenance(),
            spe_core::Provenance::Synthetic
        );
        let now = rig.service.now();
        let start = now.duration_trunc(Duration::hours(1)).expect("hour");
        let last = start - Duration::hours(1);
        let before = start - Duration::hours(2);
        assert!(snapshot.energy.axis().index_of(before).is_some());
        let store =
            spe_core::HistoryStore::in_memory(spe_core::StoreConfig::default()).expect("store");
        store
            .record_observations(&[
                // Measured before the outage: live.
                spe_core::Observation::new("demand_mw", last, 777.0, spe_core::Provenance::Live),
                spe_core::Observation::new(
                    "temperature_2m",
                    last,
                    33.0,
                    spe_core::Provenance::Live,
                ),
                // An earlier estimate: no better than the snapshot's.
                spe_core::Observation::new(
                    "demand_mw",
                    before,
                    1.0,
                    spe_core::Provenance::Synthetic,
                ),
            ])
            .expect("recorded");
        let recorded = Recorded::read(&store, now).expect("read");
        let r = request_with(
            rig.service.site(),
            &snapshot,
            &recorded,
            &Generator::default(),
            now,
        )
        .expect("a request");
        let past_t = r
            .exog
            .as_ref()
            .expect("regressors")
            .column("temperature_2m")
            .expect("t");
        let n = r.history.len();
        assert_eq!(r.history[n - 1], 777.0);
        assert_eq!(past_t[n - 1], 33.0);
        let i = snapshot
            .energy
            .axis()
            .index_of(before)
            .expect("in the snapshot");
        assert_eq!(Some(r.history[n - 2]), snapshot.energy.demand_mw()[i]);
        // The predictions still say their inputs are estimates.
        assert_eq!(r.inputs, spe_core::Provenance::Synthetic);
    }
}
