//! Data sources: where weather comes from.
//!
//! [`DataSource`] is the one trait; [`OpenMeteo`] reads the live forecast API,
//! [`Generator`](crate::Generator) makes synthetic weather, and [`Replay`] plays
//! back a recording from CSV.

mod error;
mod open_meteo;
mod replay;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Days, NaiveDateTime, NaiveTime, TimeZone, Utc};

use crate::frame::{WeatherFrame, WeatherVariable};
use crate::series::TimeAxis;
use crate::site::Site;

pub use error::{Fault, SourceError};
pub use open_meteo::{MAX_ANSWER_DISTANCE_KM, OpenMeteo, OpenMeteoConfig, parse_forecast};
pub use replay::{Replay, ReplayError};

/// The most past days Open-Meteo's forecast API serves.
pub const MAX_PAST_DAYS: u16 = 92;
/// The most forecast days Open-Meteo's forecast API serves.
pub const MAX_FORECAST_DAYS: u16 = 16;
/// How far an answer may reach beyond the window asked for, on either side,
/// before [`Window::check_answer`] refuses it. Open-Meteo writes a whole
/// answer with today's UTC offset, so across a clock change its first hour
/// may be an hour or two before the window's; a day is generous.
const ANSWER_OVERREACH: chrono::Duration = chrono::Duration::days(1);

/// Which hours to fetch: `past_days` whole local days before today, today, and
/// the days after it up to `forecast_days` days in all from today, in the
/// site's time zone (as Open-Meteo's `past_days` and `forecast_days` do).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{Site, Window};
///
/// let now = Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap();
/// let w = Window::new(now, 2, 3).unwrap();
/// let axis = w.axis(&Site::paris()).unwrap();
/// assert_eq!(axis.len(), 5 * 24);
/// // Local midnight in Paris (UTC+1 in winter) two days before today:
/// assert_eq!(axis.start(), Utc.with_ymd_and_hms(2026, 1, 12, 23, 0, 0).unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    now: DateTime<Utc>,
    past_days: u16,
    forecast_days: u16,
}

impl Window {
    /// A window around `now`. `past_days` ≤ 92, 1 ≤ `forecast_days` ≤ 16 (the
    /// limits of Open-Meteo's forecast API).
    pub fn new(
        now: DateTime<Utc>,
        past_days: u16,
        forecast_days: u16,
    ) -> Result<Self, SourceError> {
        if past_days > MAX_PAST_DAYS {
            return Err(SourceError::InvalidRequest(format!(
                "past_days = {past_days} is more than {MAX_PAST_DAYS}"
            )));
        }
        if !(1..=MAX_FORECAST_DAYS).contains(&forecast_days) {
            return Err(SourceError::InvalidRequest(format!(
                "forecast_days = {forecast_days} is outside 1..={MAX_FORECAST_DAYS}"
            )));
        }
        Ok(Window {
            now,
            past_days,
            forecast_days,
        })
    }

    /// The reference instant ("now").
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Whole local days before today.
    pub fn past_days(&self) -> u16 {
        self.past_days
    }

    /// Days from today on, today included.
    pub fn forecast_days(&self) -> u16 {
        self.forecast_days
    }

    /// The hourly axis the window covers for `site`: from local midnight
    /// `past_days` before today, `24 × (past_days + forecast_days)` hours.
    pub fn axis(&self, site: &Site) -> Result<TimeAxis, SourceError> {
        let today = site.local(self.now).date();
        let first = today
            .checked_sub_days(Days::new(u64::from(self.past_days)))
            .ok_or_else(|| {
                SourceError::InvalidRequest("window starts before the calendar".into())
            })?;
        let start = local_day_start(site, first.and_time(NaiveTime::MIN))?;
        let len = 24 * usize::from(self.past_days + self.forecast_days);
        TimeAxis::new(start, len).map_err(|e| SourceError::InvalidRequest(e.to_string()))
    }

    /// Check that an answer from `source_name` for `site` is weather for this window:
    /// its hours must include the current hour ([`Window::now`]).
    ///
    /// An answer that does not is stale or misdirected (a caching proxy, a
    /// wrong clock, a recording served as live): serving it as live weather
    /// would show another day's data as today's, so it is
    /// [`SourceError::InvalidData`], an upstream fault the circuit breaker
    /// counts. An answer that includes the current hour but not every hour
    /// asked for is kept (the hours it has are right), and the shortfall is
    /// logged as a warning. An answer reaching more than a day before or
    /// after the window asked for is not an answer to this request (a proxy
    /// serving another query, a misbehaving upstream): it is refused too,
    /// rather than served and recorded as live history for hours nobody
    /// asked for.
    ///
    /// [`OpenMeteo`] checks its answers, and
    /// [`FailoverService`](crate::FailoverService) checks the answers of
    /// every source that does not check its own
    /// ([`DataSource::checks_its_answers`]).
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use spe_core::{Generator, Site, SourceError, Window};
    ///
    /// let site = Site::paris();
    /// let now = Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap();
    /// let window = Window::new(now, 0, 1).unwrap();
    /// let today = Generator::default()
    ///     .generate(&site, window.axis(&site).unwrap(), now)
    ///     .weather;
    /// assert!(window.check_answer(&site, "example", &today).is_ok());
    ///
    /// // The same day's weather, asked for again a week later.
    /// let later = Window::new(now + chrono::Duration::days(7), 0, 1).unwrap();
    /// let err = later.check_answer(&site, "example", &today).unwrap_err();
    /// assert!(matches!(err, SourceError::InvalidData { .. }));
    /// assert!(err.to_string().contains("does not include the current hour"));
    /// ```
    pub fn check_answer(
        &self,
        site: &Site,
        source_name: &str,
        frame: &WeatherFrame,
    ) -> Result<(), SourceError> {
        let got = frame.axis();
        let (start, end) = (got.start(), got.end());
        if !(start <= self.now && self.now < end) {
            return Err(SourceError::InvalidData {
                source_name: source_name.to_owned(),
                message: format!(
                    "the answer covers {} to {} (UTC), which does not include the current \
                     hour {}: stale or misdirected data",
                    start.format("%Y-%m-%d %H:%M"),
                    end.format("%Y-%m-%d %H:%M"),
                    self.now.format("%Y-%m-%d %H:%M"),
                ),
            });
        }
        let asked = self.axis(site)?;
        let too_early = asked
            .start()
            .checked_sub_signed(ANSWER_OVERREACH)
            .is_some_and(|from| start < from);
        let too_late = asked
            .end()
            .checked_add_signed(ANSWER_OVERREACH)
            .is_some_and(|to| end > to);
        if too_early || too_late {
            return Err(SourceError::InvalidData {
                source_name: source_name.to_owned(),
                message: format!(
                    "the answer covers {} to {} (UTC), more than a day beyond the window \
                     asked for, {} to {}: misdirected data",
                    start.format("%Y-%m-%d %H:%M"),
                    end.format("%Y-%m-%d %H:%M"),
                    asked.start().format("%Y-%m-%d %H:%M"),
                    asked.end().format("%Y-%m-%d %H:%M"),
                ),
            });
        }
        // Every core variable at the current hour: what the dashboard shows
        // and the energy twin needs now. A well-formed answer of nulls is no
        // live data.
        let hour = usize::try_from(self.now.signed_duration_since(start).num_hours()).ok();
        let missing: Vec<&str> = WeatherVariable::ALL
            .iter()
            .filter(|var| {
                hour.and_then(|i| frame.columns().get(**var).get(i).copied().flatten())
                    .is_none()
            })
            .map(|var| var.name())
            .collect();
        if !missing.is_empty() {
            return Err(SourceError::InvalidData {
                source_name: source_name.to_owned(),
                message: format!(
                    "the answer has no value of {} for the current hour {}: no live data",
                    missing.join(", "),
                    self.now.format("%Y-%m-%d %H:%M"),
                ),
            });
        }
        if start > asked.start() || end < asked.end() {
            tracing::warn!(
                source = source_name,
                asked_from = %asked.start(),
                asked_to = %asked.end(),
                got_from = %start,
                got_to = %end,
                "the answer covers only part of the window asked for"
            );
        }
        Ok(())
    }
}

/// A source of hourly weather for a site.
///
/// Implementations: [`OpenMeteo`] (live), [`Generator`](crate::Generator)
/// (synthetic), [`Replay`] (recorded). Every frame carries its
/// [`Provenance`](crate::Provenance).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{DataSource, Generator, Provenance, Site, Window};
///
/// # tokio_test_block_on(async {
/// let source = Generator::default();
/// let now = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
/// let frame = source.fetch(&Site::paris(), &Window::new(now, 1, 2).unwrap()).await.unwrap();
/// assert_eq!(frame.len(), 72);
/// assert_eq!(frame.provenance(), Provenance::Synthetic);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait DataSource: Send + Sync + fmt::Debug {
    /// A short name for logs and incidents (`open-meteo`, `synthetic`, `replay`).
    fn name(&self) -> &str;

    /// Fetch hourly weather for `site` over `window`.
    async fn fetch(&self, site: &Site, window: &Window) -> Result<WeatherFrame, SourceError>;

    /// Whether [`fetch`](Self::fetch) already refuses answers that
    /// [`Window::check_answer`] would refuse. The
    /// [`FailoverService`](crate::FailoverService) checks every answer of a
    /// source that returns `false` (the default); one that returns `true`
    /// (like [`OpenMeteo`]) is not checked twice.
    fn checks_its_answers(&self) -> bool {
        false
    }
}

#[async_trait]
impl<T: DataSource + ?Sized> DataSource for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn fetch(&self, site: &Site, window: &Window) -> Result<WeatherFrame, SourceError> {
        (**self).fetch(site, window).await
    }
    fn checks_its_answers(&self) -> bool {
        (**self).checks_its_answers()
    }
}

#[async_trait]
impl<T: DataSource + ?Sized> DataSource for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn fetch(&self, site: &Site, window: &Window) -> Result<WeatherFrame, SourceError> {
        (**self).fetch(site, window).await
    }
    fn checks_its_answers(&self) -> bool {
        (**self).checks_its_answers()
    }
}

/// The instant local `midnight` starts at `site`: the earlier of two if
/// the clocks go back over it, the first local time after it if they jump
/// forward over it (some zones move their clocks at midnight).
fn local_day_start(site: &Site, midnight: NaiveDateTime) -> Result<DateTime<Utc>, SourceError> {
    let tz = site.timezone();
    // A jump forward skips an hour at most (two in a few historical zones).
    for hours in 0..=3 {
        let local = midnight + chrono::Duration::hours(hours);
        if let Some(start) = tz.from_local_datetime(&local).earliest() {
            return Ok(start.with_timezone(&Utc));
        }
    }
    Err(SourceError::InvalidRequest(format!(
        "local midnight {midnight} does not exist in {}",
        site.timezone()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn window_limits() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(Window::new(now, 93, 1).is_err());
        assert!(Window::new(now, 0, 0).is_err());
        assert!(Window::new(now, 0, 17).is_err());
        assert!(Window::new(now, 92, 16).is_ok());
    }

    #[test]
    fn window_axis_starts_at_local_midnight_on_dst_days() {
        let at = |tz: &str, now: DateTime<Utc>| {
            let site = Site::new("x", 0.0, 0.0, tz, crate::Country::None).unwrap();
            Window::new(now, 0, 1).unwrap().axis(&site).unwrap().start()
        };
        let utc = |d: u32, m: u32, h: u32| Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap();
        // (zone, now, start of today there)
        let cases = [
            // Auckland leaves DST at 03:00 on Sunday 5 April: that day's
            // midnight is still at UTC+13, 11:00 UTC the day before.
            ("Pacific/Auckland", utc(4, 4, 22), utc(4, 4, 11)),
            // Auckland enters DST at 02:00 on Sunday 27 September: midnight at UTC+12.
            ("Pacific/Auckland", utc(26, 9, 20), utc(26, 9, 12)),
            // Paris, the last Sundays of March and October.
            ("Europe/Paris", utc(29, 3, 12), utc(28, 3, 23)),
            ("Europe/Paris", utc(25, 10, 12), utc(24, 10, 22)),
            // Santiago jumps from midnight to 01:00 on 6 September: the day
            // starts at 01:00 local, 04:00 UTC.
            ("America/Santiago", utc(6, 9, 12), utc(6, 9, 4)),
        ];
        for (tz, now, start) in cases {
            assert_eq!(at(tz, now), start, "{tz} at {now}");
        }
    }

    #[test]
    fn an_answer_reaching_far_beyond_the_window_is_refused() {
        let site = Site::paris();
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap();
        let window = Window::new(now, 0, 1).unwrap();
        let asked = window.axis(&site).unwrap();
        let frame = |start: DateTime<Utc>, hours: usize| {
            let axis = TimeAxis::new(start, hours).unwrap();
            crate::Generator::default()
                .generate(&site, axis, now)
                .weather
        };
        // The window itself, and an answer an hour or two off at either end
        // (a whole answer written with today's offset across a clock change).
        for (start, hours) in [
            (asked.start(), 24),
            (asked.start() - chrono::Duration::hours(2), 28),
            (asked.start() - chrono::Duration::hours(24), 72),
        ] {
            let f = frame(start, hours);
            assert!(
                window.check_answer(&site, "x", &f).is_ok(),
                "{start} {hours}"
            );
        }
        // Twenty years up to next week, for one day asked: refused, not
        // served (and recorded) as twenty years of live weather.
        for (start, hours) in [
            (
                asked.start() - chrono::Duration::days(365 * 20),
                24 * (365 * 20 + 7),
            ),
            (asked.start() - chrono::Duration::hours(25), 40),
            (asked.start(), 24 * 2 + 1),
        ] {
            let err = window
                .check_answer(&site, "x", &frame(start, hours))
                .unwrap_err();
            assert!(matches!(err, SourceError::InvalidData { .. }), "{err:?}");
            assert!(
                err.to_string()
                    .contains("more than a day beyond the window"),
                "{err}"
            );
        }
    }

    #[test]
    fn window_axis_uses_local_days() {
        let site = Site::paris();
        // 23:30 UTC on 14 July is already 15 July in Paris (UTC+2).
        let now = Utc.with_ymd_and_hms(2026, 7, 14, 23, 30, 0).unwrap();
        let axis = Window::new(now, 0, 1).unwrap().axis(&site).unwrap();
        assert_eq!(
            axis.start(),
            Utc.with_ymd_and_hms(2026, 7, 14, 22, 0, 0).unwrap()
        );
        assert_eq!(axis.len(), 24);
    }
}
