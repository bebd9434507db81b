//! The dashboard's charts, drawn on the server as SVG with [`plotters`].
//!
//! `GET /api/charts/{name}.svg[?lang=fr|en]`, `name` one of [`ChartName`]:
//!
//! | name | what it shows |
//! |---|---|
//! | `weather` | the 7 days from local midnight today: temperature and wind; solar radiation and cloud cover |
//! | `demand` | demand (past, then expected from the weather forecast), the demand forecast's mean with its 80 % and 95 % bands, a "now" marker |
//! | `supply` | supply stacked by source (solar, wind, other, imports), demand on top |
//! | `balance` | supply − demand, hour by hour: surplus in green, deficit in red |
//! | `history` | the last 7 days of demand as the history store recorded it: measured (live) hours, estimated hours, and the forecast made a day ahead for each hour |
//!
//! Every chart has a title, axis labels with units, a legend, and a time
//! axis in the site's local time; labels are French (`lang=fr`, the default)
//! or English (`lang=en`). The colours are the dashboard's (see the page's
//! `app.css`). Charts are drawn from the same snapshot as `/api/dashboard`
//! ([`ChartData::from_snapshot`]), so they never wait on an upstream; a
//! missing value leaves a gap, never a made-up point. The answer is
//! `image/svg+xml` with `Cache-Control: no-store`; an unknown name is a 404
//! and an unknown language a 400, with a JSON error body.
//!
//! Text is SVG `<text>` (the browser's fonts): plotters' SVG backend needs no
//! font file.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use spe_core::{FailoverService, Replay, Site};
//! use spe_server_example::charts::{ChartData, ChartName, Lang, render};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = Replay::from_csv_str(
//!     "time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m\n2020-01-01T00:00Z,1,0,50,3\n",
//! )?;
//! let service = FailoverService::builder(Site::paris(), std::sync::Arc::new(source)).build()?;
//! let data = ChartData::from_snapshot(service.site(), &service.snapshot(), service.now());
//! let svg = render(ChartName::Supply, &data, Lang::En)?;
//! assert!(svg.starts_with("<svg"));
//! assert!(svg.contains("Supply by source"));
//! # Ok(()) }
//! ```

use std::fmt;
use std::ops::Range;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike as _, Duration, DurationRound as _, Timelike as _, Utc};
use plotters::coord::Shift;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::{RangedCoordf64, RangedCoordi64};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use serde::Deserialize;
use spe_core::{ChainResult, Mode, Site, SupplySource, WeatherSnapshot};

use crate::error::ApiError;
use crate::state::AppState;

/// Width of every chart, in SVG user units.
pub const WIDTH: u32 = 960;
/// Height of the demand, supply and balance charts.
pub const HEIGHT: u32 = 340;
/// Height of the weather chart (two panels).
pub const WEATHER_HEIGHT: u32 = 560;

// The dashboard's palette (the same values as the page's `app.css`).
const TEXT: RGBColor = RGBColor(0x1c, 0x24, 0x30);
const MUTED: RGBColor = RGBColor(0x5b, 0x66, 0x75);
const GRID: RGBColor = RGBColor(0xd9, 0xde, 0xe4);
const DEMAND: RGBColor = RGBColor(0x1f, 0x5f, 0xae);
const FORECAST: RGBColor = RGBColor(0xc2, 0x41, 0x0c);
const SOLAR: RGBColor = RGBColor(0xe0, 0xa1, 0x00);
const WIND: RGBColor = RGBColor(0x2a, 0x9d, 0x8f);
const OTHER: RGBColor = RGBColor(0x6c, 0x75, 0x7d);
const IMPORTS: RGBColor = RGBColor(0x7b, 0x4f, 0xa0);
const SURPLUS: RGBColor = RGBColor(0x1e, 0x7b, 0x3c);
const DEFICIT: RGBColor = RGBColor(0xa6, 0x1b, 0x1b);
const TEMPERATURE: RGBColor = RGBColor(0xc9, 0x2a, 0x2a);
const CLOUD: RGBColor = RGBColor(0x86, 0x8e, 0x96);

const FONT: &str = "sans-serif";
/// A balance smaller than this (MW) is rounding, not a surplus or deficit.
const BALANCE_EPSILON_MW: f64 = 0.05;

/// A chart the server draws.
///
/// ```
/// use spe_server_example::charts::ChartName;
///
/// assert_eq!(ChartName::from_file("demand.svg"), Some(ChartName::Demand));
/// assert_eq!(ChartName::from_file("demand"), None);
/// assert_eq!(ChartName::Weather.name(), "weather");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChartName {
    /// 7-day weather.
    Weather,
    /// Demand: actual, expected and forecast with its bands.
    Demand,
    /// Supply stacked by source.
    Supply,
    /// Supply − demand.
    Balance,
    /// The recorded week: demand (live or estimated) and its day-ahead
    /// forecast, from the history store.
    History,
}

impl ChartName {
    /// Every chart, in the page's order.
    pub const ALL: [ChartName; 5] = [
        ChartName::Weather,
        ChartName::Demand,
        ChartName::Supply,
        ChartName::Balance,
        ChartName::History,
    ];

    /// The chart's name in its URL: `weather`, `demand`, `supply`,
    /// `balance`, `history`.
    pub fn name(self) -> &'static str {
        match self {
            ChartName::Weather => "weather",
            ChartName::Demand => "demand",
            ChartName::Supply => "supply",
            ChartName::Balance => "balance",
            ChartName::History => "history",
        }
    }

    /// The chart served as `file` (`weather.svg`, …), if any.
    pub fn from_file(file: &str) -> Option<ChartName> {
        let name = file.strip_suffix(".svg")?;
        ChartName::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for ChartName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The language of a chart's labels.
///
/// ```
/// use spe_server_example::charts::Lang;
///
/// assert_eq!(Lang::from_code("en"), Some(Lang::En));
/// assert_eq!(Lang::from_code("de"), None);
/// assert_eq!(Lang::default(), Lang::Fr);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lang {
    /// French (the default).
    #[default]
    Fr,
    /// English.
    En,
}

impl Lang {
    /// The language code: `fr` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// The language of `code` (`fr`, `en`), if supported.
    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// Pick the French or the English text.
    fn pick<'a>(self, fr: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Fr => fr,
            Lang::En => en,
        }
    }
}

/// A demand forecast with its prediction bands, as the demand chart draws
/// it: parallel columns over `time` (hourly, UTC), `None` where missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForecastBands {
    /// The instants.
    pub time: Vec<DateTime<Utc>>,
    /// The mean, MW.
    pub mean: Vec<Option<f64>>,
    /// Lower bound of the 80 % interval, MW.
    pub lower_80: Vec<Option<f64>>,
    /// Upper bound of the 80 % interval, MW.
    pub upper_80: Vec<Option<f64>>,
    /// Lower bound of the 95 % interval, MW.
    pub lower_95: Vec<Option<f64>>,
    /// Upper bound of the 95 % interval, MW.
    pub upper_95: Vec<Option<f64>>,
    /// The model that made it (for the legend; may be empty).
    pub model: String,
    /// The tier of the prediction chain that answered: `primary`,
    /// `fallback` or `cache` (may be empty).
    pub tier: String,
}

impl ForecastBands {
    /// The bands of the prediction chain's `result`: the mean, and the 80 %
    /// and 95 % intervals where the forecast has them (missing otherwise).
    pub fn from_result(result: &ChainResult) -> Self {
        let predictions = &result.predictions;
        let forecast = &predictions.forecast;
        let time = predictions.times();
        let column = |values: Option<&[f64]>| -> Vec<Option<f64>> {
            (0..time.len())
                .map(|i| {
                    values
                        .and_then(|v| v.get(i))
                        .copied()
                        .and_then(|v| finite(Some(v)))
                })
                .collect()
        };
        ForecastBands {
            mean: column(Some(forecast.mean())),
            lower_80: column(forecast.lower(80.0)),
            upper_80: column(forecast.upper(80.0)),
            lower_95: column(forecast.lower(95.0)),
            upper_95: column(forecast.upper(95.0)),
            time,
            model: forecast.model().to_owned(),
            tier: result.tier.name().to_owned(),
        }
    }
}

/// What the charts draw, taken from one snapshot: the site (for its time
/// zone), the time of the request, the mode, hourly weather, demand and
/// supply by source, and the demand forecast if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    site: Site,
    now: DateTime<Utc>,
    mode: Mode,
    weather_time: Vec<DateTime<Utc>>,
    temperature_2m: Vec<Option<f64>>,
    shortwave_radiation: Vec<Option<f64>>,
    cloud_cover: Vec<Option<f64>>,
    wind_speed_10m: Vec<Option<f64>>,
    energy_time: Vec<DateTime<Utc>>,
    demand_mw: Vec<Option<f64>>,
    /// In [`SupplySource::ALL`] order.
    supply_mw: [Vec<Option<f64>>; 4],
    forecast: Option<ForecastBands>,
    history: Option<RecordedWeek>,
}

/// What the history chart draws: the [`RecordedWeek::HOURS`] hours before
/// the current one, as the history store holds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordedWeek {
    /// The hours, oldest first.
    pub time: Vec<DateTime<Utc>>,
    /// Demand recorded live (or cached live), MW.
    pub measured: Vec<Option<f64>>,
    /// Demand recorded as an estimate (synthetic or fallback), MW.
    pub estimated: Vec<Option<f64>>,
    /// The forecast of each hour made at least a day before it, MW.
    pub day_ahead: Vec<Option<f64>>,
}

impl RecordedWeek {
    /// Hours drawn: a week.
    pub const HOURS: i64 = 168;

    /// The week before the hour of `now`, read from `store` (blocking).
    pub fn read(
        store: &spe_core::HistoryStore,
        now: DateTime<Utc>,
    ) -> Result<Self, spe_core::StoreError> {
        let end = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
        let start = end - Duration::hours(Self::HOURS);
        let time: Vec<DateTime<Utc>> = (0..Self::HOURS)
            .map(|h| start + Duration::hours(h))
            .collect();
        let mut measured = vec![None; time.len()];
        let mut estimated = vec![None; time.len()];
        for o in store.observations("demand_mw", start, end)? {
            let Ok(i) = usize::try_from((o.time - start).num_hours()) else {
                continue;
            };
            let slot = if o.provenance.rank() > 0 {
                &mut measured
            } else {
                &mut estimated
            };
            if let Some(v) = slot.get_mut(i) {
                *v = finite(Some(o.value));
            }
        }
        let mut day_ahead = vec![None; time.len()];
        for p in store.predictions_for(start, end, spe_core::DAY_AHEAD)? {
            // Hourly slots: a step between two hours is not drawn.
            let offset = p.target - start;
            if offset.num_seconds() % 3600 != 0 {
                continue;
            }
            if let Some(v) = usize::try_from(offset.num_hours())
                .ok()
                .and_then(|i| day_ahead.get_mut(i))
            {
                *v = finite(Some(p.mean));
            }
        }
        Ok(RecordedWeek {
            time,
            measured,
            estimated,
            day_ahead,
        })
    }
}

impl ChartData {
    /// The data of `snapshot` at `now` for `site`, without a forecast.
    pub fn from_snapshot(site: &Site, snapshot: &WeatherSnapshot, now: DateTime<Utc>) -> Self {
        let weather = &snapshot.weather;
        let energy = &snapshot.energy;
        ChartData {
            site: site.clone(),
            now,
            mode: snapshot.mode,
            weather_time: weather.axis().times().collect(),
            temperature_2m: weather.temperature_2m().to_vec(),
            shortwave_radiation: weather.shortwave_radiation().to_vec(),
            cloud_cover: weather.cloud_cover().to_vec(),
            wind_speed_10m: weather.wind_speed_10m().to_vec(),
            energy_time: energy.axis().times().collect(),
            demand_mw: energy.demand_mw().to_vec(),
            supply_mw: SupplySource::ALL.map(|s| energy.supply_of(s).to_vec()),
            forecast: None,
            history: None,
        }
    }

    /// The same data with the recorded week for the history chart (none:
    /// the chart says there is no history store).
    pub fn with_history(mut self, history: Option<RecordedWeek>) -> Self {
        self.history = history;
        self
    }

    /// The same data with `forecast` for the demand chart.
    pub fn with_forecast(mut self, forecast: Option<ForecastBands>) -> Self {
        self.forecast = forecast;
        self
    }

    /// The demand forecast, if any.
    pub fn forecast(&self) -> Option<&ForecastBands> {
        self.forecast.as_ref()
    }
}

/// A chart could not be drawn. Drawing into memory fails on no input, so
/// this is a bug; the handler answers a JSON 500 and logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartError(String);

impl fmt::Display for ChartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot draw the chart: {}", self.0)
    }
}

impl std::error::Error for ChartError {}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        ChartError(e.to_string())
    }
}

/// Draw chart `name` of `data` with labels in `lang`: an SVG document.
pub fn render(name: ChartName, data: &ChartData, lang: Lang) -> Result<String, ChartError> {
    let mut svg = String::new();
    let height = match name {
        ChartName::Weather => WEATHER_HEIGHT,
        _ => HEIGHT,
    };
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        match name {
            ChartName::Weather => weather_chart(&root, data, lang)?,
            ChartName::Demand => demand_chart(&root, data, lang)?,
            ChartName::Supply => supply_chart(&root, data, lang)?,
            ChartName::Balance => balance_chart(&root, data, lang)?,
            ChartName::History => history_chart(&root, data, lang)?,
        }
        root.present()?;
    }
    Ok(with_title(svg, &title(name, data, lang)))
}

/// The query of `GET /api/charts/{name}.svg`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartQuery {
    /// `fr` (default) or `en`.
    pub lang: Option<String>,
    /// Ignored: lets the page bust caches (`?v=<generated_at>`).
    pub v: Option<String>,
}

impl ChartQuery {
    /// The language asked for, validated.
    pub fn lang(&self) -> Result<Lang, ApiError> {
        match self.lang.as_deref() {
            None => Ok(Lang::default()),
            Some(code) => Lang::from_code(code).ok_or_else(|| {
                ApiError::bad_request(format!("lang must be \"fr\" or \"en\", not {code:?}"))
            }),
        }
    }
}

/// `GET /api/charts/{name}.svg[?lang=fr|en]`: chart `name` of the current
/// snapshot, as SVG.
pub async fn chart(
    State(state): State<AppState>,
    Path(file): Path<String>,
    query: Result<Query<ChartQuery>, QueryRejection>,
) -> Response {
    let Some(name) = ChartName::from_file(&file) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no chart {file:?}; the charts are {}",
                ChartName::ALL.map(|c| format!("{c}.svg")).join(", ")
            ),
        )
        .into_response();
    };
    let lang = match query {
        Ok(Query(query)) => query.lang(),
        Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
    };
    let lang = match lang {
        Ok(lang) => lang,
        Err(e) => return e.into_response(),
    };
    let snapshot = state.snapshot();
    let forecast = state
        .latest_predictions()
        .map(|(result, _)| ForecastBands::from_result(&result));
    let now = state.now();
    let history = match (name, state.history()) {
        (ChartName::History, Some(history)) => {
            match history
                .run(move |store| RecordedWeek::read(store, now))
                .await
            {
                Ok(week) => Some(week),
                Err(e) => {
                    tracing::error!(error = %e, "reading the history store for its chart failed");
                    None
                }
            }
        }
        _ => None,
    };
    let data = ChartData::from_snapshot(state.service().site(), &snapshot, now)
        .with_forecast(forecast)
        .with_history(history);
    match render(name, &data, lang) {
        Ok(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            svg,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(chart = %name, error = %e, "drawing a chart failed");
            ApiError::internal(format!("the {name} chart could not be drawn")).into_response()
        }
    }
}

// ---------------------------------------------------------------------------
// Time axis

/// Maps instants to chart x values (hours since `origin`) and labels them in
/// the site's local time.
#[derive(Debug, Clone, Copy)]
struct TimeScale<'a> {
    origin: DateTime<Utc>,
    site: &'a Site,
    lang: Lang,
}

impl TimeScale<'_> {
    /// Minutes since `origin`.
    fn x(&self, t: DateTime<Utc>) -> i64 {
        (t - self.origin).num_minutes()
    }

    fn time(&self, x: i64) -> DateTime<Utc> {
        self.origin + Duration::minutes(x)
    }

    /// Grid lines over `range`: bold (labelled) ones at local midnights for
    /// spans over two days, else every 6 hours (or every hour under 12
    /// hours); light ones in between.
    fn key_points(&self, range: &Range<i64>) -> (Vec<i64>, Vec<i64>) {
        let span_h = (range.end - range.start) / 60;
        let (bold_step, light_step) = if span_h > 48 {
            (24, 6)
        } else if span_h > 12 {
            (6, 1)
        } else {
            (1, 1)
        };
        let tz = self.site.timezone();
        let mut bold = Vec::new();
        let mut light = Vec::new();
        let first = range.start.div_euclid(60);
        let last = range.end.div_euclid(60);
        for h in first..=last {
            let t = self.origin + Duration::hours(h);
            let local = t.with_timezone(&tz);
            if local.minute() != 0 {
                continue; // half-hour zones: grid on whole local hours only
            }
            let hour = local.hour();
            let x = h * 60;
            if !range.contains(&x) {
                continue;
            }
            if hour % bold_step == 0 {
                bold.push(x);
            } else if hour % light_step == 0 {
                light.push(x);
            }
        }
        (bold, light)
    }

    /// `lun. 15` / `Mon 15` at local midnight, `06 h` / `06:00` otherwise.
    fn label(&self, x: i64) -> String {
        let local = self.time(x).with_timezone(&self.site.timezone());
        if local.hour() == 0 {
            let day = local.weekday().num_days_from_monday() as usize;
            let names = match self.lang {
                Lang::Fr => ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."],
                Lang::En => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            };
            format!("{} {}", names[day % 7], local.day())
        } else {
            match self.lang {
                Lang::Fr => format!("{:02} h", local.hour()),
                Lang::En => format!("{:02}:00", local.hour()),
            }
        }
    }

    fn axis_desc(&self) -> String {
        let tz = self.site.timezone();
        match self.lang {
            Lang::Fr => format!("Heure locale ({})", tz.name()),
            Lang::En => format!("Local time ({})", tz.name()),
        }
    }

    fn coord(&self, range: Range<i64>) -> WithKeyPoints<RangedCoordi64> {
        let (bold, light) = self.key_points(&range);
        let coord: RangedCoordi64 = range.into();
        coord.with_key_points(bold).with_light_points(light)
    }
}

/// The x range of `times` (one hour past the last instant), or an hour from
/// `now` when there is none.
fn x_range(scale: &TimeScale<'_>, times: &[DateTime<Utc>]) -> Range<i64> {
    match (times.first(), times.last()) {
        (Some(&first), Some(&last)) => scale.x(first)..scale.x(last + Duration::hours(1)),
        _ => 0..60,
    }
}

// ---------------------------------------------------------------------------
// Values

/// (minutes since the chart's origin, value).
type Point = (i64, f64);

/// Values of this magnitude or more are drawn as missing: no quantity on
/// these charts (MW, °C, m/s, W/m², %) comes near it, and the drawing
/// library's pixel arithmetic overflows on absurd ones.
const MAX_PLAUSIBLE: f64 = 1e6;

/// `v` if it is known, finite and plausible.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && v.abs() < MAX_PLAUSIBLE)
}

/// The runs of consecutive known values: one polyline each, so a missing
/// value leaves a gap.
fn runs(xs: &[i64], ys: &[Option<f64>]) -> Vec<Vec<Point>> {
    let mut out: Vec<Vec<Point>> = Vec::new();
    let mut current = Vec::new();
    for (&x, &y) in xs.iter().zip(ys) {
        match finite(y) {
            Some(y) => current.push((x, y)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The polygons between `lower` and `upper` over the runs where both are known.
fn bands(xs: &[i64], lower: &[Option<f64>], upper: &[Option<f64>]) -> Vec<Vec<Point>> {
    let mut out = Vec::new();
    let mut top: Vec<Point> = Vec::new();
    let mut bottom: Vec<Point> = Vec::new();
    let mut flush = |top: &mut Vec<Point>, bottom: &mut Vec<Point>| {
        if top.len() > 1 {
            let mut polygon = std::mem::take(top);
            polygon.extend(bottom.drain(..).rev());
            out.push(polygon);
        }
        top.clear();
        bottom.clear();
    };
    for ((&x, &lo), &hi) in xs.iter().zip(lower).zip(upper) {
        match (finite(lo), finite(hi)) {
            (Some(lo), Some(hi)) => {
                top.push((x, hi));
                bottom.push((x, lo));
            }
            _ => flush(&mut top, &mut bottom),
        }
    }
    flush(&mut top, &mut bottom);
    out
}

/// The smallest and largest known values, if any.
fn extent<'a>(columns: impl IntoIterator<Item = &'a [Option<f64>]>) -> Option<(f64, f64)> {
    columns
        .into_iter()
        .flatten()
        .filter_map(|&v| finite(v))
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// A y range around `extent` with 5 % margins and `headroom` (a fraction of
/// the span) on top for the legend; from zero when `from_zero` and the data
/// is positive; `fallback` when nothing is known. Never empty.
fn y_range(
    extent: Option<(f64, f64)>,
    from_zero: bool,
    headroom: f64,
    fallback: Range<f64>,
) -> Range<f64> {
    let Some((mut lo, mut hi)) = extent else {
        return fallback;
    };
    if from_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    let span = hi - lo;
    let pad = if span > 0.0 {
        span * 0.05
    } else {
        lo.abs().max(1.0) * 0.1
    };
    let lo = if from_zero && lo >= 0.0 {
        0.0
    } else {
        lo - pad
    };
    let hi = hi + pad + (hi - lo + pad) * headroom;
    if lo.is_finite() && hi.is_finite() && lo < hi {
        lo..hi
    } else {
        fallback
    }
}

/// Whole numbers with a thin space between thousands: `12 345`.
fn thousands(v: f64) -> String {
    let rounded = v.round();
    let digits = format!("{}", rounded.abs() as i64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    if rounded < 0.0 {
        format!("−{out}")
    } else {
        out
    }
}

fn simulated_suffix(data: &ChartData, lang: Lang) -> &'static str {
    match data.mode {
        Mode::Estimation => lang.pick(" — données simulées", " — simulated data"),
        _ => "",
    }
}

/// The chart's title, for its caption and the SVG `<title>`.
fn title(name: ChartName, data: &ChartData, lang: Lang) -> String {
    let base = match name {
        ChartName::Weather => lang.pick("Météo — 7 jours", "Weather — 7 days"),
        ChartName::Demand => lang.pick(
            "Demande — réelle et prévue (MW)",
            "Demand — actual and forecast (MW)",
        ),
        ChartName::Supply => lang.pick("Production par source (MW)", "Supply by source (MW)"),
        ChartName::Balance => lang.pick(
            "Solde production − demande (MW)",
            "Balance, supply − demand (MW)",
        ),
        ChartName::History => lang.pick(
            "Historique enregistré — demande, 7 jours (MW)",
            "Recorded history — demand, 7 days (MW)",
        ),
    };
    format!(
        "{base} — {}{}",
        data.site.name(),
        simulated_suffix(data, lang)
    )
}

/// `svg` with a `<title>` first inside the root element (read by screen
/// readers and shown as a tooltip when the SVG is opened on its own).
fn with_title(mut svg: String, title: &str) -> String {
    let Some(end) = svg.find('>') else {
        return svg;
    };
    let mut escaped = String::with_capacity(title.len());
    for c in title.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            _ => escaped.push(c),
        }
    }
    svg.insert_str(end + 1, &format!("\n<title>{escaped}</title>"));
    svg
}

// ---------------------------------------------------------------------------
// The charts

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type TimeChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<WithKeyPoints<RangedCoordi64>, RangedCoordf64>>;

fn caption_font() -> TextStyle<'static> {
    (FONT, 19, FontStyle::Bold).into_font().color(&TEXT)
}

fn label_font() -> TextStyle<'static> {
    (FONT, 13).into_font().color(&TEXT)
}

fn desc_font() -> TextStyle<'static> {
    (FONT, 14).into_font().color(&MUTED)
}

/// A legend mark: a filled square of `colour`.
fn square(colour: RGBAColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
}

/// A legend mark: a short line of `style`.
fn line_mark(style: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style)
}

/// Draw the mesh of a single-axis time chart.
fn draw_mesh(
    chart: &mut TimeChart<'_, '_>,
    scale: &TimeScale<'_>,
    y_desc: &str,
) -> Result<(), ChartError> {
    let x_label = |x: &i64| scale.label(*x);
    let y_label = |y: &f64| thousands(*y);
    chart
        .configure_mesh()
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .x_desc(scale.axis_desc())
        .y_desc(y_desc)
        .label_style(label_font())
        .axis_desc_style(desc_font())
        .bold_line_style(GRID)
        .light_line_style(GRID.mix(0.4))
        .axis_style(MUTED)
        .draw()?;
    Ok(())
}

/// A dashed vertical line at `now`, labelled, if `now` is in the chart.
fn draw_now(
    chart: &mut TimeChart<'_, '_>,
    scale: &TimeScale<'_>,
    x_range: &Range<i64>,
    y_range: &Range<f64>,
    now: DateTime<Utc>,
) -> Result<(), ChartError> {
    let x = scale.x(now);
    if !x_range.contains(&x) {
        return Ok(());
    }
    let top = y_range.end - (y_range.end - y_range.start) * 0.02;
    chart.draw_series(std::iter::once(DashedPathElement::new(
        vec![(x, y_range.start), (x, top)],
        6,
        4,
        TEXT.stroke_width(2),
    )))?;
    chart.draw_series(std::iter::once(Text::new(
        scale.lang.pick("maintenant", "now").to_owned(),
        (x, top),
        (FONT, 13)
            .into_font()
            .color(&TEXT)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Top,
            )),
    )))?;
    Ok(())
}

/// The forecast's legend: `Prévision (moyenne) — auto, secours`.
fn forecast_label(f: &ForecastBands, lang: Lang) -> String {
    let mut label = lang
        .pick("Prévision (moyenne)", "Forecast (mean)")
        .to_owned();
    let tier = match f.tier.as_str() {
        "fallback" => lang.pick("secours", "fallback"),
        "cache" => lang.pick("en cache", "cached"),
        _ => "",
    };
    let details: Vec<&str> = [f.model.as_str(), tier]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    if !details.is_empty() {
        label.push_str(" — ");
        label.push_str(&details.join(", "));
    }
    label
}

/// Height of the title and note band above a single chart (pixels).
const HEAD: u32 = 56;

/// Draw `title` and, if any, a `note` (what is missing) in a band at the top
/// of `root`; returns the area below it, for the chart.
fn head<'a>(root: &Area<'a>, title: &str, note: Option<&str>) -> Result<Area<'a>, ChartError> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let (band, body) = root.split_vertically(HEAD);
    let centre = i32::try_from(WIDTH / 2).unwrap_or(0);
    band.draw(&Text::new(
        title.to_owned(),
        (centre, 10),
        caption_font().pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    if let Some(note) = note {
        band.draw(&Text::new(
            note.to_owned(),
            (84, 36),
            (FONT, 14, FontStyle::Italic).into_font().color(&MUTED),
        ))?;
    }
    Ok(body)
}

fn draw_legend<'a, 'b: 'a>(
    chart: &mut TimeChart<'a, 'b>,
    position: SeriesLabelPosition,
) -> Result<(), ChartError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(GRID)
        .label_font(label_font())
        .draw()?;
    Ok(())
}

fn demand_chart(root: &Area<'_>, data: &ChartData, lang: Lang) -> Result<(), ChartError> {
    let origin = data.energy_time.first().copied().unwrap_or(data.now);
    let scale = TimeScale {
        origin,
        site: &data.site,
        lang,
    };
    let mut xr = x_range(&scale, &data.energy_time);
    let forecast = data.forecast.as_ref().filter(|f| !f.time.is_empty());
    if let Some(f) = forecast {
        let fr = x_range(&scale, &f.time);
        xr = xr.start.min(fr.start)..xr.end.max(fr.end);
    }
    let mut columns: Vec<&[Option<f64>]> = vec![&data.demand_mw];
    if let Some(f) = forecast {
        columns.extend([
            f.mean.as_slice(),
            &f.lower_95,
            &f.upper_95,
            &f.lower_80,
            &f.upper_80,
        ]);
    }
    let yr = y_range(extent(columns), false, 0.35, 0.0..1.0);

    let note = forecast.is_none().then(|| {
        lang.pick(
            "Prévision indisponible : demande réelle et attendue seulement",
            "Forecast unavailable: actual and expected demand only",
        )
    });
    let body = head(root, &title(ChartName::Demand, data, lang), note)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .margin_top(4)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(scale.coord(xr.clone()), yr.clone())?;
    draw_mesh(
        &mut chart,
        &scale,
        lang.pick("Puissance (MW)", "Power (MW)"),
    )?;

    if let Some(f) = forecast {
        let xs: Vec<i64> = f.time.iter().map(|&t| scale.x(t)).collect();
        let band95 = FORECAST.mix(0.15);
        let band80 = FORECAST.mix(0.32);
        chart
            .draw_series(
                bands(&xs, &f.lower_95, &f.upper_95)
                    .into_iter()
                    .map(|p| Polygon::new(p, band95.filled())),
            )?
            .label(lang.pick("Intervalle 95 %", "95 % interval"))
            .legend(square(band95));
        chart
            .draw_series(
                bands(&xs, &f.lower_80, &f.upper_80)
                    .into_iter()
                    .map(|p| Polygon::new(p, band80.filled())),
            )?
            .label(lang.pick("Intervalle 80 %", "80 % interval"))
            .legend(square(band80));
    }

    // Demand up to now (actual), then as expected from the weather forecast.
    let xs: Vec<i64> = data.energy_time.iter().map(|&t| scale.x(t)).collect();
    let now_x = scale.x(data.now);
    let past: Vec<Option<f64>> = xs
        .iter()
        .zip(&data.demand_mw)
        .map(|(&x, &v)| if x <= now_x { v } else { None })
        .collect();
    // The expected part starts at the last past point, so the line is continuous.
    let last_past = xs.iter().rposition(|&x| x <= now_x);
    let expected: Vec<Option<f64>> = xs
        .iter()
        .zip(&data.demand_mw)
        .enumerate()
        .map(|(i, (&x, &v))| {
            if x > now_x || Some(i) == last_past {
                v
            } else {
                None
            }
        })
        .collect();
    let actual_style = DEMAND.stroke_width(3);
    chart
        .draw_series(
            runs(&xs, &past)
                .into_iter()
                .map(|r| PathElement::new(r, actual_style)),
        )?
        .label(lang.pick("Demande réelle", "Actual demand"))
        .legend(line_mark(actual_style));
    let expected_style = DEMAND.mix(0.7).stroke_width(2);
    chart
        .draw_series(
            runs(&xs, &expected)
                .into_iter()
                .map(|r| DashedPathElement::new(r, 5, 4, expected_style)),
        )?
        .label(lang.pick(
            "Demande attendue (météo prévue)",
            "Expected demand (weather forecast)",
        ))
        .legend(line_mark(expected_style));

    if let Some(f) = forecast {
        let xs: Vec<i64> = f.time.iter().map(|&t| scale.x(t)).collect();
        let style = FORECAST.stroke_width(3);
        chart
            .draw_series(
                runs(&xs, &f.mean)
                    .into_iter()
                    .map(|r| PathElement::new(r, style)),
            )?
            .label(forecast_label(f, lang))
            .legend(line_mark(style));
    }
    draw_now(&mut chart, &scale, &xr, &yr, data.now)?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

fn supply_chart(root: &Area<'_>, data: &ChartData, lang: Lang) -> Result<(), ChartError> {
    let origin = data.energy_time.first().copied().unwrap_or(data.now);
    let scale = TimeScale {
        origin,
        site: &data.site,
        lang,
    };
    let xr = x_range(&scale, &data.energy_time);
    let xs: Vec<i64> = data.energy_time.iter().map(|&t| scale.x(t)).collect();
    // Cumulative sums, bottom to top; unknown wherever a source below is.
    let mut stacked: Vec<Vec<Option<f64>>> = Vec::with_capacity(4);
    let mut below: Vec<Option<f64>> = vec![Some(0.0); xs.len()];
    for column in &data.supply_mw {
        let top: Vec<Option<f64>> = below
            .iter()
            .zip(column)
            .map(|(&b, &v)| Some(finite(b)? + finite(v)?.max(0.0)))
            .collect();
        stacked.push(top.clone());
        below = top;
    }
    let totals = stacked.last().cloned().unwrap_or_default();
    let yr = y_range(
        extent([totals.as_slice(), data.demand_mw.as_slice()]),
        true,
        0.3,
        0.0..1.0,
    );
    let note = totals
        .iter()
        .all(Option::is_none)
        .then(|| lang.pick("Aucune donnée", "No data"));
    let body = head(root, &title(ChartName::Supply, data, lang), note)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .margin_top(4)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(scale.coord(xr.clone()), yr.clone())?;
    draw_mesh(
        &mut chart,
        &scale,
        lang.pick("Puissance (MW)", "Power (MW)"),
    )?;

    let names = [
        lang.pick("Solaire", "Solar"),
        lang.pick("Éolien", "Wind"),
        lang.pick("Autres", "Other"),
        lang.pick("Imports", "Imports"),
    ];
    let colours = [SOLAR, WIND, OTHER, IMPORTS];
    let zero = vec![Some(0.0); xs.len()];
    for (i, top) in stacked.iter().enumerate() {
        let bottom = if i == 0 { &zero } else { &stacked[i - 1] };
        let fill = colours[i].mix(0.85);
        chart
            .draw_series(
                bands(&xs, bottom, top)
                    .into_iter()
                    .map(|p| Polygon::new(p, fill.filled())),
            )?
            .label(names[i])
            .legend(square(fill));
    }
    let style = DEMAND.stroke_width(3);
    chart
        .draw_series(
            runs(&xs, &data.demand_mw)
                .into_iter()
                .map(|r| PathElement::new(r, style)),
        )?
        .label(lang.pick("Demande", "Demand"))
        .legend(line_mark(style));
    draw_now(&mut chart, &scale, &xr, &yr, data.now)?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

fn balance_chart(root: &Area<'_>, data: &ChartData, lang: Lang) -> Result<(), ChartError> {
    let origin = data.energy_time.first().copied().unwrap_or(data.now);
    let scale = TimeScale {
        origin,
        site: &data.site,
        lang,
    };
    let xr = x_range(&scale, &data.energy_time);
    let xs: Vec<i64> = data.energy_time.iter().map(|&t| scale.x(t)).collect();
    // Supply − demand (imports included), and what local production alone
    // leaves (the gap imports fill).
    let sum = |columns: &[Vec<Option<f64>>], i: usize| -> Option<f64> {
        columns.iter().try_fold(0.0, |acc, c| {
            Some(acc + finite(c.get(i).copied().flatten())?)
        })
    };
    let demand = |i: usize| finite(data.demand_mw.get(i).copied().flatten());
    let balance: Vec<Option<f64>> = (0..xs.len())
        .map(|i| Some(sum(&data.supply_mw, i)? - demand(i)?))
        .collect();
    let local: Vec<Option<f64>> = (0..xs.len())
        .map(|i| Some(sum(&data.supply_mw[..3], i)? - demand(i)?))
        .collect();
    let yr = y_range(
        extent([balance.as_slice(), local.as_slice()]),
        true,
        0.3,
        -1.0..1.0,
    );
    let note = balance
        .iter()
        .all(Option::is_none)
        .then(|| lang.pick("Aucune donnée", "No data"));
    let body = head(root, &title(ChartName::Balance, data, lang), note)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .margin_top(4)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(scale.coord(xr.clone()), yr.clone())?;
    draw_mesh(&mut chart, &scale, lang.pick("Solde (MW)", "Balance (MW)"))?;

    // Rounding noise (|b| < 0.05 MW) is no surplus nor deficit.
    let bar = |sign: f64, colour: RGBColor| {
        xs.iter()
            .zip(&balance)
            .filter_map(move |(&x, &b)| {
                let b = finite(b)?;
                (b * sign >= BALANCE_EPSILON_MW)
                    .then(|| Rectangle::new([(x + 6, 0.0), (x + 54, b)], colour.filled()))
            })
            .collect::<Vec<_>>()
    };
    chart
        .draw_series(bar(1.0, SURPLUS))?
        .label(lang.pick("Excédent", "Surplus"))
        .legend(square(SURPLUS.to_rgba()));
    chart
        .draw_series(bar(-1.0, DEFICIT))?
        .label(lang.pick("Déficit", "Deficit"))
        .legend(square(DEFICIT.to_rgba()));
    let local_style = IMPORTS.stroke_width(2);
    chart
        .draw_series(
            runs(&xs, &local)
                .into_iter()
                .map(|r| DashedPathElement::new(r, 5, 3, local_style)),
        )?
        .label(lang.pick(
            "Production locale − demande (écart couvert par les imports)",
            "Local production − demand (gap filled by imports)",
        ))
        .legend(line_mark(local_style));
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(xr.start, 0.0), (xr.end, 0.0)],
        TEXT.stroke_width(1),
    )))?;
    draw_now(&mut chart, &scale, &xr, &yr, data.now)?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

fn history_chart(root: &Area<'_>, data: &ChartData, lang: Lang) -> Result<(), ChartError> {
    let empty = RecordedWeek::default();
    let week = data.history.as_ref().unwrap_or(&empty);
    let origin = week.time.first().copied().unwrap_or(data.now);
    let scale = TimeScale {
        origin,
        site: &data.site,
        lang,
    };
    let xr = if week.time.is_empty() {
        scale.x(data.now - Duration::hours(RecordedWeek::HOURS))..scale.x(data.now)
    } else {
        x_range(&scale, &week.time)
    };
    let columns = [
        week.measured.as_slice(),
        week.estimated.as_slice(),
        week.day_ahead.as_slice(),
    ];
    let yr = y_range(extent(columns), false, 0.3, 0.0..1.0);
    let nothing = columns.iter().all(|c| c.iter().all(Option::is_none));
    let note = if data.history.is_none() {
        Some(lang.pick(
            "Historique indisponible (pas de base d'historique)",
            "History unavailable (no history store)",
        ))
    } else if nothing {
        Some(lang.pick(
            "Rien d'enregistré sur ces 7 jours",
            "Nothing recorded over these 7 days",
        ))
    } else {
        None
    };
    let body = head(root, &title(ChartName::History, data, lang), note)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .margin_top(4)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(scale.coord(xr.clone()), yr.clone())?;
    draw_mesh(
        &mut chart,
        &scale,
        lang.pick("Puissance (MW)", "Power (MW)"),
    )?;
    let xs: Vec<i64> = week.time.iter().map(|&t| scale.x(t)).collect();
    let measured_style = DEMAND.stroke_width(3);
    chart
        .draw_series(
            runs(&xs, &week.measured)
                .into_iter()
                .map(|r| PathElement::new(r, measured_style)),
        )?
        .label(lang.pick(
            "Demande mesurée (données réelles)",
            "Measured demand (live data)",
        ))
        .legend(line_mark(measured_style));
    let estimated_style = OTHER.stroke_width(2);
    chart
        .draw_series(
            runs(&xs, &week.estimated)
                .into_iter()
                .map(|r| DashedPathElement::new(r, 4, 3, estimated_style)),
        )?
        .label(lang.pick(
            "Demande estimée (mode estimation)",
            "Estimated demand (estimation mode)",
        ))
        .legend(line_mark(estimated_style));
    let forecast_style = FORECAST.stroke_width(2);
    chart
        .draw_series(
            runs(&xs, &week.day_ahead)
                .into_iter()
                .map(|r| PathElement::new(r, forecast_style)),
        )?
        .label(lang.pick("Prévision de la veille", "Day-ahead forecast"))
        .legend(line_mark(forecast_style));
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

/// The instants of the 7 days from local midnight today (all of them if
/// today is not in the data).
fn seven_days(data: &ChartData) -> Range<usize> {
    let tz = data.site.timezone();
    let midnight = data
        .now
        .with_timezone(&tz)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|m| m.and_local_timezone(tz).earliest())
        .map(|m| m.with_timezone(&Utc));
    let times = &data.weather_time;
    let start = midnight
        .and_then(|m| times.iter().position(|&t| t >= m))
        .unwrap_or(0);
    let end = times
        .get(start)
        .map(|&first| {
            let limit = first + Duration::days(7);
            times
                .iter()
                .position(|&t| t >= limit)
                .unwrap_or(times.len())
        })
        .unwrap_or(times.len());
    start..end
}

fn weather_chart(root: &Area<'_>, data: &ChartData, lang: Lang) -> Result<(), ChartError> {
    let days = seven_days(data);
    let times = &data.weather_time[days.clone()];
    let origin = times.first().copied().unwrap_or(data.now);
    let scale = TimeScale {
        origin,
        site: &data.site,
        lang,
    };
    let xr = x_range(&scale, times);
    let xs: Vec<i64> = times.iter().map(|&t| scale.x(t)).collect();
    let column = |c: &[Option<f64>]| c.get(days.clone()).unwrap_or(&[]).to_vec();
    let temperature = column(&data.temperature_2m);
    let wind = column(&data.wind_speed_10m);
    let radiation = column(&data.shortwave_radiation);
    let cloud = column(&data.cloud_cover);

    let (top, bottom) = root.split_vertically(WEATHER_HEIGHT / 2);
    let x_label = |x: &i64| scale.label(*x);

    // Top: temperature (left axis) and wind (right axis).
    let t_range = y_range(extent([temperature.as_slice()]), false, 0.3, 0.0..10.0);
    let w_range = y_range(extent([wind.as_slice()]), true, 0.3, 0.0..10.0);
    let mut chart = ChartBuilder::on(&top)
        .caption(title(ChartName::Weather, data, lang), caption_font())
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(72)
        .right_y_label_area_size(72)
        .build_cartesian_2d(scale.coord(xr.clone()), t_range)?
        .set_secondary_coord(xr.clone(), w_range);
    chart
        .configure_mesh()
        .x_label_formatter(&x_label)
        .y_desc(lang.pick("Température (°C)", "Temperature (°C)"))
        .label_style(label_font())
        .axis_desc_style(desc_font())
        .bold_line_style(GRID)
        .light_line_style(GRID.mix(0.4))
        .axis_style(MUTED)
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc(lang.pick("Vent à 10 m (m/s)", "Wind at 10 m (m/s)"))
        .label_style(label_font())
        .axis_desc_style(desc_font())
        .axis_style(MUTED)
        .draw()?;
    let t_style = TEMPERATURE.stroke_width(3);
    chart
        .draw_series(
            runs(&xs, &temperature)
                .into_iter()
                .map(|r| PathElement::new(r, t_style)),
        )?
        .label(lang.pick("Température", "Temperature"))
        .legend(line_mark(t_style));
    let w_style = WIND.stroke_width(2);
    chart
        .draw_secondary_series(
            runs(&xs, &wind)
                .into_iter()
                .map(|r| PathElement::new(r, w_style)),
        )?
        .label(lang.pick("Vent", "Wind"))
        .legend(line_mark(w_style));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(GRID)
        .label_font(label_font())
        .draw()?;

    // Bottom: solar radiation (left axis, filled) and cloud cover (right axis, %).
    let r_range = y_range(extent([radiation.as_slice()]), true, 0.3, 0.0..100.0);
    let mut chart = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .right_y_label_area_size(72)
        .build_cartesian_2d(scale.coord(xr.clone()), r_range)?
        .set_secondary_coord(xr.clone(), 0.0..130.0);
    chart
        .configure_mesh()
        .x_label_formatter(&x_label)
        .x_desc(scale.axis_desc())
        .y_desc(lang.pick("Rayonnement solaire (W/m²)", "Solar radiation (W/m²)"))
        .label_style(label_font())
        .axis_desc_style(desc_font())
        .bold_line_style(GRID)
        .light_line_style(GRID.mix(0.4))
        .axis_style(MUTED)
        .draw()?;
    let percent = |y: &f64| {
        if *y <= 100.0 {
            format!("{y:.0}")
        } else {
            String::new()
        }
    };
    chart
        .configure_secondary_axes()
        .y_desc(lang.pick("Nébulosité (%)", "Cloud cover (%)"))
        .y_label_formatter(&percent)
        .label_style(label_font())
        .axis_desc_style(desc_font())
        .axis_style(MUTED)
        .draw()?;
    let zero = vec![Some(0.0); xs.len()];
    let r_fill = SOLAR.mix(0.45);
    chart
        .draw_series(
            bands(&xs, &zero, &radiation)
                .into_iter()
                .map(|p| Polygon::new(p, r_fill.filled())),
        )?
        .label(lang.pick("Rayonnement", "Radiation"))
        .legend(square(r_fill));
    let c_style = CLOUD.stroke_width(2);
    chart
        .draw_secondary_series(
            runs(&xs, &cloud)
                .into_iter()
                .map(|r| PathElement::new(r, c_style)),
        )?
        .label(lang.pick("Nébulosité", "Cloud cover"))
        .legend(line_mark(c_style));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(GRID)
        .label_font(label_font())
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode, header};
    use chrono::TimeZone as _;
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;
    use crate::test_support::{Behaviour, call, header_str, refreshed};

    fn utc(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, 0, 0)
            .single()
            .expect("valid time")
    }

    /// Parses `svg` as XML and returns the texts of its `<text>` elements.
    fn svg_texts(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        doc.descendants()
            .filter(|n| n.has_tag_name("text") || n.has_tag_name("title"))
            .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
            .collect()
    }

    /// Hourly data for Paris over `hours` from `start`, `now` in it.
    fn data(start: DateTime<Utc>, hours: usize, now: DateTime<Utc>, mode: Mode) -> ChartData {
        let time: Vec<DateTime<Utc>> = (0..hours)
            .map(|h| start + Duration::hours(h as i64))
            .collect();
        let wave = |base: f64, amp: f64| -> Vec<Option<f64>> {
            (0..hours)
                .map(|h| Some(base + amp * (h as f64 / 24.0 * std::f64::consts::TAU).sin()))
                .collect()
        };
        ChartData {
            site: Site::paris(),
            now,
            mode,
            weather_time: time.clone(),
            temperature_2m: wave(5.0, 4.0),
            shortwave_radiation: wave(100.0, 100.0),
            cloud_cover: wave(50.0, 40.0),
            wind_speed_10m: wave(4.0, 2.0),
            energy_time: time,
            demand_mw: wave(1000.0, 200.0),
            supply_mw: [
                wave(50.0, 50.0),
                wave(80.0, 20.0),
                vec![Some(700.0); hours],
                wave(170.0, 130.0),
            ],
            forecast: None,
            history: None,
        }
    }

    fn bands_for(start: DateTime<Utc>, hours: usize) -> ForecastBands {
        let time = (0..hours)
            .map(|h| start + Duration::hours(h as i64))
            .collect();
        let column = |offset: f64| {
            (0..hours)
                .map(|h| Some(1000.0 + offset + h as f64))
                .collect()
        };
        ForecastBands {
            time,
            mean: column(0.0),
            lower_80: column(-50.0),
            upper_80: column(50.0),
            lower_95: column(-90.0),
            upper_95: column(90.0),
            model: "mstl".to_owned(),
            tier: "fallback".to_owned(),
        }
    }

    #[test]
    fn names_and_languages_round_trip() {
        for name in ChartName::ALL {
            assert_eq!(
                ChartName::from_file(&format!("{name}.svg")),
                Some(name),
                "{name}"
            );
        }
        for bad in [
            "weather",
            "weather.png",
            "WEATHER.svg",
            ".svg",
            "",
            "weather.svg.svg",
        ] {
            assert_eq!(ChartName::from_file(bad), None, "{bad}");
        }
        assert_eq!(Lang::from_code(Lang::Fr.code()), Some(Lang::Fr));
        assert_eq!(Lang::from_code(Lang::En.code()), Some(Lang::En));
        assert_eq!(Lang::from_code("FR"), None);
    }

    #[test]
    fn missing_values_leave_gaps() {
        let xs = [0, 60, 120, 180, 240, 300];
        let ys = [
            Some(1.0),
            None,
            Some(2.0),
            Some(3.0),
            Some(f64::NAN),
            Some(4.0),
        ];
        assert_eq!(
            runs(&xs, &ys),
            vec![
                vec![(0, 1.0)],
                vec![(120, 2.0), (180, 3.0)],
                vec![(300, 4.0)]
            ]
        );
        assert!(runs(&xs, &[None; 6]).is_empty());
        // A band needs both bounds and two points: a closed outline, top then bottom.
        let lower = [Some(0.0), Some(1.0), None, Some(5.0), Some(5.0), Some(5.0)];
        let upper = [Some(2.0), Some(3.0), Some(9.0), None, Some(7.0), None];
        assert_eq!(
            bands(&xs, &lower, &upper),
            vec![vec![(0, 2.0), (60, 3.0), (60, 1.0), (0, 0.0)]]
        );
    }

    #[test]
    fn y_ranges_fit_the_data_with_room_for_the_legend() {
        assert_eq!(y_range(None, true, 0.3, 0.0..1.0), 0.0..1.0);
        let r = y_range(Some((800.0, 1200.0)), false, 0.0, 0.0..1.0);
        assert!(
            r.start < 800.0 && r.start > 700.0 && r.end > 1200.0 && r.end < 1300.0,
            "{r:?}"
        );
        let r = y_range(Some((800.0, 1200.0)), true, 0.3, 0.0..1.0);
        assert_eq!(r.start, 0.0);
        assert!(r.end > 1200.0 * 1.3, "{r:?}");
        // A flat series still gets a range.
        let r = y_range(Some((0.0, 0.0)), true, 0.3, -1.0..1.0);
        assert!(r.start < r.end, "{r:?}");
        // Beyond f64: the fallback.
        assert_eq!(
            y_range(Some((-f64::MAX, f64::MAX)), false, 0.3, 0.0..1.0),
            0.0..1.0
        );
    }

    #[test]
    fn the_time_axis_is_in_local_time() {
        // Paris, winter: local midnight is 23:00 UTC.
        let origin = utc(2026, 1, 14, 23);
        let scale = TimeScale {
            origin,
            site: &Site::paris(),
            lang: Lang::Fr,
        };
        let (bold, light) = scale.key_points(&(0..9 * 24 * 60));
        assert_eq!(bold.len(), 9);
        assert!(bold.iter().all(|x| x % (24 * 60) == 0), "{bold:?}");
        assert_eq!(light.len(), 9 * 3);
        assert_eq!(scale.label(0), "jeu. 15");
        assert_eq!(scale.label(7 * 60), "07 h");
        let en = TimeScale {
            lang: Lang::En,
            ..scale
        };
        assert_eq!(en.label(0), "Thu 15");
        assert_eq!(en.label(13 * 60), "13:00");
        assert_eq!(en.axis_desc(), "Local time (Europe/Paris)");
        assert_eq!(scale.axis_desc(), "Heure locale (Europe/Paris)");

        // Across the spring change (29 March 2026): midnights stay midnights.
        let origin = utc(2026, 3, 27, 23);
        let scale = TimeScale { origin, ..scale };
        let (bold, _) = scale.key_points(&(0..4 * 24 * 60));
        let labels: Vec<String> = bold.iter().map(|&x| scale.label(x)).collect();
        // 4 × 24 hours from Saturday's midnight end an hour past Wednesday's.
        assert_eq!(
            labels,
            ["sam. 28", "dim. 29", "lun. 30", "mar. 31", "mer. 1"]
        );
        assert_eq!(bold[2] - bold[1], 23 * 60, "the short day");

        // Short spans: every 6 hours.
        let (bold, _) = scale.key_points(&(0..24 * 60));
        assert_eq!(bold.len(), 4);
    }

    #[test]
    fn numbers_group_thousands() {
        assert_eq!(thousands(1234.4), "1\u{202f}234");
        assert_eq!(thousands(-1234567.0), "−1\u{202f}234\u{202f}567");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(thousands(-0.2), "0");
    }

    #[test]
    fn the_demand_chart_draws_the_forecast_and_its_bands() {
        let now = utc(2026, 1, 15, 10);
        let start = now - Duration::hours(48);
        let with = data(start, 9 * 24, now, Mode::Nominal).with_forecast(Some(bands_for(now, 48)));
        assert!(with.forecast().is_some());
        let texts =
            svg_texts(&render(ChartName::Demand, &with, Lang::Fr).expect("drawn")).join("\n");
        for label in [
            "Intervalle 80 %",
            "Intervalle 95 %",
            "Prévision (moyenne) — mstl, secours",
            "Demande réelle",
            "maintenant",
            "Puissance (MW)",
            "Heure locale (Europe/Paris)",
        ] {
            assert!(texts.contains(label), "{label} in {texts}");
        }
        assert!(!texts.contains("Prévision indisponible"), "{texts}");
        assert!(!texts.contains("données simulées"), "{texts}");

        let without = data(start, 9 * 24, now, Mode::Estimation);
        let texts =
            svg_texts(&render(ChartName::Demand, &without, Lang::En).expect("drawn")).join("\n");
        assert!(texts.contains("Forecast unavailable"), "{texts}");
        assert!(texts.contains("simulated data"), "{texts}");
        assert!(!texts.contains("80 % interval"), "{texts}");
        assert!(texts.contains("now"), "{texts}");
    }

    #[test]
    fn the_now_marker_is_only_drawn_inside_the_chart() {
        let start = utc(2026, 1, 15, 0);
        let later = data(start, 24, start + Duration::days(30), Mode::Nominal);
        let texts = svg_texts(&render(ChartName::Supply, &later, Lang::Fr).expect("drawn"));
        assert!(!texts.iter().any(|t| t == "maintenant"), "{texts:?}");
    }

    #[test]
    fn empty_and_unknown_data_still_draw() {
        let now = utc(2026, 1, 15, 10);
        let mut empty = data(now, 0, now, Mode::Estimation);
        for name in ChartName::ALL {
            let svg = render(name, &empty, Lang::Fr).expect("drawn");
            assert!(svg.starts_with("<svg"), "{name}");
            svg_texts(&svg);
        }
        empty = data(now - Duration::hours(24), 48, now, Mode::Estimation);
        for column in [
            &mut empty.temperature_2m,
            &mut empty.shortwave_radiation,
            &mut empty.cloud_cover,
            &mut empty.wind_speed_10m,
            &mut empty.demand_mw,
        ] {
            column.fill(None);
        }
        for column in &mut empty.supply_mw {
            column.fill(None);
        }
        for name in ChartName::ALL {
            let texts = svg_texts(&render(name, &empty, Lang::En).expect("drawn"));
            if matches!(name, ChartName::Supply | ChartName::Balance) {
                assert!(texts.iter().any(|t| t == "No data"), "{name}: {texts:?}");
            }
        }
    }

    #[test]
    fn the_title_is_escaped() {
        let svg = with_title("<svg a=\"1\">\n</svg>".to_owned(), "A < B & C > D");
        assert_eq!(
            svg,
            "<svg a=\"1\">\n<title>A &lt; B &amp; C &gt; D</title>\n</svg>"
        );
    }

    fn value() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            Just(None),
            (-1e5..1e5f64).prop_map(Some),
            proptest::num::f64::ANY.prop_map(Some),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever the values (huge, negative, NaN, missing), every chart
        /// draws a well-formed SVG.
        #[test]
        fn any_values_draw(values in proptest::collection::vec(value(), 10 * 24), hours in 0usize..40) {
            let now = utc(2026, 6, 1, 12);
            let mut d = data(now - Duration::hours(12), hours, now, Mode::Nominal);
            let mut next = values.iter().copied().cycle();
            let mut refill = |column: &mut Vec<Option<f64>>| {
                for v in column.iter_mut() {
                    *v = next.next().flatten();
                }
            };
            refill(&mut d.temperature_2m);
            refill(&mut d.shortwave_radiation);
            refill(&mut d.cloud_cover);
            refill(&mut d.wind_speed_10m);
            refill(&mut d.demand_mw);
            for column in &mut d.supply_mw {
                refill(column);
            }
            let mut forecast = bands_for(now, hours.min(24));
            refill(&mut forecast.mean);
            refill(&mut forecast.upper_95);
            let d = d.with_forecast(Some(forecast));
            for name in ChartName::ALL {
                let svg = render(name, &d, Lang::Fr).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(roxmltree::Document::parse(&svg).is_ok(), "{name}");
            }
        }
    }

    // The handler, through the router.

    #[tokio::test]
    async fn every_chart_is_served_as_svg_in_both_languages() {
        let rig = refreshed(Behaviour::Live).await;
        let expect: [(ChartName, &str, &str); 4] = [
            (ChartName::Weather, "Température (°C)", "Temperature (°C)"),
            (ChartName::Demand, "Puissance (MW)", "Power (MW)"),
            (
                ChartName::Supply,
                "Production par source (MW)",
                "Supply by source (MW)",
            ),
            (ChartName::Balance, "Solde (MW)", "Balance (MW)"),
        ];
        for (name, fr, en) in expect {
            for (query, label, axis) in [
                ("", fr, "Heure locale (Europe/Paris)"),
                (
                    "?lang=fr&v=2026-01-15T10:30:00Z",
                    fr,
                    "Heure locale (Europe/Paris)",
                ),
                ("?lang=en", en, "Local time (Europe/Paris)"),
            ] {
                let uri = format!("/api/charts/{name}.svg{query}");
                let (status, headers, body) = call(&rig.app, Method::GET, &uri).await;
                assert_eq!(status, StatusCode::OK, "{uri}");
                assert_eq!(
                    header_str(&headers, header::CONTENT_TYPE),
                    Some("image/svg+xml"),
                    "{uri}"
                );
                assert_eq!(
                    header_str(&headers, header::CACHE_CONTROL),
                    Some("no-store"),
                    "{uri}"
                );
                let svg = String::from_utf8(body).expect("UTF-8");
                assert!(svg.starts_with("<svg"), "{uri}");
                let texts = svg_texts(&svg).join("\n");
                assert!(texts.contains(label), "{uri}: {label} not in {texts}");
                assert!(texts.contains(axis), "{uri}: {axis} not in {texts}");
                assert!(texts.contains("Paris"), "{uri}");
            }
        }
    }

    #[tokio::test]
    async fn the_demand_chart_shows_the_latest_predictions() {
        use std::sync::Arc;

        let chain = spe_core::PredictionChain::builder()
            .primary(Arc::new(spe_core::ModelPredictor::new(Arc::new(
                spe_core::SeasonalNaive::default(),
            ))))
            .fallback(Arc::new(spe_core::SeasonalNaive::default()))
            .build();
        let rig = crate::test_support::rig_with_state(Behaviour::Live, false, |s| {
            s.with_predictions(chain.clone())
        });
        rig.service.refresh().await;
        let uri = "/api/charts/demand.svg?lang=en";
        let (_, _, before) = call(&rig.app, Method::GET, uri).await;
        let before = svg_texts(&String::from_utf8(before).expect("UTF-8")).join("\n");
        assert!(before.contains("Forecast unavailable"), "{before}");

        crate::forecasting::run_once(&rig.service, &chain, None).await;
        let (result, _) = rig.state.latest_predictions().expect("predictions made");
        let bands = ForecastBands::from_result(&result);
        assert_eq!(bands.time.len(), result.predictions.forecast.horizon());
        assert!(bands.mean.iter().all(Option::is_some));
        assert!(
            bands
                .upper_95
                .iter()
                .zip(&bands.upper_80)
                .all(|(a, b)| a >= b)
        );
        assert_eq!(bands.tier, "primary");

        let (status, _, after) = call(&rig.app, Method::GET, uri).await;
        assert_eq!(status, StatusCode::OK);
        let after = svg_texts(&String::from_utf8(after).expect("UTF-8")).join("\n");
        assert!(!after.contains("Forecast unavailable"), "{after}");
        for label in ["80 % interval", "95 % interval", "Forecast (mean) — "] {
            assert!(after.contains(label), "{label} not in {after}");
        }
        assert!(after.contains(&bands.model), "{after}");
    }

    #[tokio::test]
    async fn charts_follow_the_mode() {
        let rig = refreshed(Behaviour::Refused).await;
        let (_, _, body) = call(&rig.app, Method::GET, "/api/charts/supply.svg?lang=en").await;
        let texts = svg_texts(&String::from_utf8(body).expect("UTF-8")).join("\n");
        assert!(texts.contains("simulated data"), "{texts}");
        // The weather chart shows the 7 days from local midnight: Thursday 15 to Wednesday 21.
        let (_, _, body) = call(&rig.app, Method::GET, "/api/charts/weather.svg?lang=en").await;
        let texts = svg_texts(&String::from_utf8(body).expect("UTF-8"));
        assert!(texts.iter().any(|t| t == "Thu 15"), "{texts:?}");
        assert!(texts.iter().any(|t| t == "Wed 21"), "{texts:?}");
        assert!(!texts.iter().any(|t| t == "Tue 13"), "{texts:?}");
    }

    #[tokio::test]
    async fn unknown_charts_and_languages_are_json_errors() {
        let rig = refreshed(Behaviour::Live).await;
        for (uri, status, code) in [
            ("/api/charts/nope.svg", StatusCode::NOT_FOUND, "not_found"),
            ("/api/charts/weather", StatusCode::NOT_FOUND, "not_found"),
            (
                "/api/charts/weather.png",
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                "/api/charts/..%2Fweather.svg",
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                "/api/charts/weather.svg?lang=de",
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "/api/charts/weather.svg?lang=",
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "/api/charts/weather.svg?colour=red",
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
        ] {
            let (got, headers, body) = call(&rig.app, Method::GET, uri).await;
            assert_eq!(got, status, "{uri}");
            assert!(
                header_str(&headers, header::CONTENT_TYPE)
                    .is_some_and(|t| t.starts_with("application/json")),
                "{uri}"
            );
            let json: Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(json["error"]["code"], code, "{uri}");
            assert!(json["error"]["message"].is_string(), "{uri}");
        }
        let (_, _, body) = call(&rig.app, Method::GET, "/api/charts/nope.svg").await;
        let json: Value = serde_json::from_slice(&body).expect("JSON");
        let message = json["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("weather.svg, demand.svg, supply.svg, balance.svg"),
            "{message}"
        );
    }
    #[test]
    fn the_history_chart_draws_the_recorded_week_by_provenance() {
        use spe_core::{
            Forecast, HistoryStore, Observation, Predictions, Provenance, StoreConfig, Tier,
        };
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap();
        let hour = Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap();
        let store = HistoryStore::in_memory(StoreConfig::default()).unwrap();
        store
            .record_observations(&[
                Observation::new(
                    "demand_mw",
                    hour - Duration::hours(3),
                    900.0,
                    Provenance::Live,
                ),
                Observation::new(
                    "demand_mw",
                    hour - Duration::hours(2),
                    910.0,
                    Provenance::Synthetic,
                ),
                // The current hour is not drawn: it is not over.
                Observation::new("demand_mw", hour, 1.0, Provenance::Live),
            ])
            .unwrap();
        let made = hour - Duration::hours(30);
        store
            .record_predictions(&Predictions {
                start: made + Duration::hours(1),
                step_s: 3600,
                forecast: Forecast::new("test", vec![950.0; 48], vec![]).unwrap(),
                made_at: made,
                tier: Tier::Primary,
                intervals_from: None,
                inputs: Provenance::Live,
            })
            .unwrap();
        let week = RecordedWeek::read(&store, now).unwrap();
        assert_eq!(week.time.len(), 168);
        assert_eq!(week.time[167], hour - Duration::hours(1));
        assert_eq!(week.measured[165], Some(900.0));
        assert_eq!(week.estimated[165], None);
        assert_eq!(week.estimated[166], Some(910.0));
        assert_eq!(week.measured[166], None);
        // Hour h's day-ahead forecast: made at least 24 h before it.
        let first_ahead = week
            .time
            .iter()
            .position(|&t| t >= made + Duration::hours(24))
            .unwrap();
        assert_eq!(week.day_ahead[first_ahead], Some(950.0));
        assert_eq!(week.day_ahead[first_ahead - 1], None);

        let data = data(now - Duration::hours(24), 48, now, Mode::Nominal).with_history(Some(week));
        let svg = render(ChartName::History, &data, Lang::En).unwrap();
        let texts = svg_texts(&svg).join("\n");
        for label in [
            "Measured demand",
            "Estimated demand",
            "Day-ahead forecast",
            "Recorded history",
        ] {
            assert!(texts.contains(label), "{label} in {texts}");
        }
        assert!(!texts.contains("no history store"));
        let none = render(
            ChartName::History,
            &super::tests::data(now - Duration::hours(24), 48, now, Mode::Nominal),
            Lang::Fr,
        )
        .unwrap();
        let texts = svg_texts(&none).join("\n");
        assert!(texts.contains("pas de base d'historique"), "{texts}");
    }
}
