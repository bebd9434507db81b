//! `GET /api/export.csv`: what the dashboard shows, as CSV.
//!
//! One row per hour of the dashboard's window, oldest first, with a header
//! row: `time_utc` (RFC 3339), the weather columns (Open-Meteo's names),
//! `demand_mw`, the supply columns by source, the demand forecast's
//! `forecast_mean`, `forecast_lower_80`, `forecast_upper_80`,
//! `forecast_lower_95`, `forecast_upper_95` (empty where there is no
//! forecast), the day-ahead check behind the KPI `forecast_error_pct`
//! (`forecast_day_ahead_mw`: the demand predicted for the hour at least a
//! day before it, from the prediction archive; `forecast_day_ahead_error_pct`:
//! its absolute error in percent of the demand, where both are known — the
//! KPI is their mean over the last 24 whole hours), and the provenance of
//! each part: `mode`,
//! `weather_provenance`, `energy_provenance`, `forecast_provenance`. A
//! missing value is an empty field. Served as an attachment named
//! `spe-export-<date of the snapshot, UTC>.csv`.

use axum::extract::{Query, State, rejection::QueryRejection};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use spe_core::{ChainResult, SupplySource, WeatherSnapshot, WeatherVariable};

use crate::archive::ForecastArchive;
use crate::csv_dialect::CsvLocale;
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::series_json::rfc3339;
use crate::state::AppState;

/// The content type of the export.
pub const CONTENT_TYPE: &str = "text/csv; charset=utf-8";

/// The forecast columns of the export, in order.
pub const FORECAST_COLUMNS: [&str; 5] = [
    "forecast_mean",
    "forecast_lower_80",
    "forecast_upper_80",
    "forecast_lower_95",
    "forecast_upper_95",
];

/// The day-ahead columns of the export, in order.
pub const DAY_AHEAD_COLUMNS: [&str; 2] = ["forecast_day_ahead_mw", "forecast_day_ahead_error_pct"];

/// The header row.
pub fn header_row() -> Vec<&'static str> {
    let mut row = vec!["time_utc"];
    row.extend(WeatherVariable::ALL.iter().map(|v| v.name()));
    row.push("demand_mw");
    row.extend(SupplySource::ALL.iter().map(|s| s.column()));
    row.extend(FORECAST_COLUMNS);
    row.extend(DAY_AHEAD_COLUMNS);
    row.extend([
        "mode",
        "weather_provenance",
        "energy_provenance",
        "forecast_provenance",
    ]);
    row
}

/// The CSV of `snapshot` in the dialect `locale`, with the forecast of
/// `predictions` (the chain's answer and the time to measure its age at)
/// and the day-ahead forecasts of `archive`.
///
/// ```
/// use std::sync::Arc;
/// use spe_core::{FailoverService, Replay, Site};
/// use spe_server_example::csv_dialect::CsvLocale;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let source = Replay::from_csv_str(
///     "time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m\n2020-01-01T00:00Z,1,0,50,3\n",
/// )?;
/// let service = FailoverService::builder(Site::paris(), Arc::new(source)).build()?;
/// let csv = spe_server_example::export::to_csv(&service.snapshot(), None, None, CsvLocale::En)?;
/// let text = String::from_utf8(csv)?;
/// assert!(text.starts_with("time_utc,temperature_2m,"));
/// assert_eq!(text.lines().count(), 1 + service.snapshot().weather.len());
/// # Ok(()) }
/// ```
pub fn to_csv(
    snapshot: &WeatherSnapshot,
    predictions: Option<(&ChainResult, DateTime<Utc>)>,
    archive: Option<&ForecastArchive>,
    locale: CsvLocale,
) -> Result<Vec<u8>, csv::Error> {
    let number = |v: Option<f64>| locale.number(v);
    let forecast = predictions.map(|(result, at)| {
        let f = &result.predictions.forecast;
        let columns = [
            Some(f.mean()),
            f.lower(80.0),
            f.upper(80.0),
            f.lower(95.0),
            f.upper(95.0),
        ];
        (result, result.provenance(at).name(), columns)
    });
    let weather = &snapshot.weather;
    let energy = &snapshot.energy;
    let mut out = locale.writer(weather.len() * 160);
    out.write_record(header_row())?;
    let mode = snapshot.mode.name();
    let weather_provenance = weather.provenance().name();
    let energy_provenance = energy.provenance().name();
    let energy_axis = energy.axis();
    for (i, t) in weather.axis().times().enumerate() {
        let mut row: Vec<String> = Vec::with_capacity(24);
        row.push(rfc3339(t));
        for v in WeatherVariable::ALL {
            row.push(number(weather.columns().get(v).get(i).copied().flatten()));
        }
        let j = energy_axis.index_of(t);
        let at = |column: &[Option<f64>]| j.and_then(|j| column.get(j).copied().flatten());
        let demand = at(energy.demand_mw());
        row.push(number(demand));
        for s in SupplySource::ALL {
            row.push(number(at(energy.supply_of(s))));
        }
        // The forecast where it has the hour.
        let step = forecast.as_ref().and_then(|(result, provenance, columns)| {
            let k = forecast_index(result, t)?;
            Some((
                *provenance,
                columns.map(|c| c.and_then(|c| c.get(k).copied())),
            ))
        });
        match step {
            Some((_, values)) => row.extend(values.map(number)),
            None => row.extend(FORECAST_COLUMNS.iter().map(|_| String::new())),
        }
        let day_ahead = archive.and_then(|a| a.day_ahead(t));
        row.push(number(day_ahead));
        row.push(number(day_ahead_error_pct(demand, day_ahead)));
        row.push(mode.to_owned());
        row.push(weather_provenance.to_owned());
        row.push(if j.is_some() { energy_provenance } else { "" }.to_owned());
        row.push(step.map_or("", |(p, _)| p).to_owned());
        out.write_record(&row)?;
    }
    out.into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// `|predicted − actual| ÷ actual × 100`, as the KPI counts an hour: not
/// for a missing or zero actual.
fn day_ahead_error_pct(actual: Option<f64>, predicted: Option<f64>) -> Option<f64> {
    let (actual, predicted) = (actual?, predicted?);
    if actual == 0.0 {
        return None;
    }
    Some(((predicted - actual) / actual).abs() * 100.0).filter(|e| e.is_finite())
}

/// The step of `result`'s forecast at `t`, if it has one.
fn forecast_index(result: &ChainResult, t: DateTime<Utc>) -> Option<usize> {
    let p = &result.predictions;
    let offset = t.signed_duration_since(p.start).num_seconds();
    let step = i64::try_from(p.step_s).ok().filter(|s| *s > 0)?;
    if offset < 0 || offset % step != 0 {
        return None;
    }
    let k = usize::try_from(offset / step).ok()?;
    (k < p.forecast.horizon()).then_some(k)
}

/// The export's query: only the CSV dialect. Another parameter is refused
/// (`400`), not ignored: a client asking for `?from=…` or `?format=json`
/// would otherwise take the whole window as CSV for what it asked.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// The CSV dialect: `en` (default: `,` between fields, `.` in numbers)
    /// or `fr` (`;` between fields, `,` in numbers, a UTF-8 byte-order
    /// mark, for a spreadsheet in a French locale).
    #[param(value_type = Option<CsvLocale>)]
    pub locale: Option<CsvLocale>,
}

/// `GET /api/export.csv`.
#[utoipa::path(
    get,
    path = "/api/export.csv",
    tag = "dashboard",
    params(ExportQuery),
    responses((
        status = 200,
        description = "What the dashboard shows, one row per hour, as an attachment \
                       `spe-export-<date>.csv`",
        content_type = "text/csv",
        body = String,
    ), (
        status = 400,
        description = "An unknown `locale`, or another parameter",
        body = ErrorBody,
    ))
)]
pub async fn export_csv(
    State(state): State<AppState>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Response {
    let locale = match query {
        Ok(Query(query)) => query.locale.unwrap_or_default(),
        Err(rejection) => return ApiError::bad_request(rejection.body_text()).into_response(),
    };
    let snapshot = state.snapshot();
    let filename = format!(
        "attachment; filename=\"spe-export-{}.csv\"",
        snapshot.made_at.format("%Y-%m-%d")
    );
    let predictions = state.latest_predictions();
    match to_csv(
        &snapshot,
        predictions
            .as_ref()
            .map(|(result, at)| (result.as_ref(), *at)),
        state.archive(),
        locale,
    ) {
        Ok(body) => {
            let disposition = HeaderValue::from_str(&filename)
                .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot write the CSV export");
            ApiError::internal("the export could not be written").into_response()
        }
    }
}
