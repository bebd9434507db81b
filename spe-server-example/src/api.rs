//! The handlers. They read the failover service's current snapshot, its
//! breaker's metrics and the incident journal, and never call an upstream,
//! so an answer never waits on a failing source.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use spe_core::{
    BreakerMetrics, BreakerState, ChainResult, Incident, IncidentId, IncidentKind, KpiSet, Mode,
    ModeChange, Site, WeatherSnapshot,
};
use utoipa::ToSchema;

use crate::archive::ForecastArchive;
use crate::dashboard_cache::DashboardKey;
use crate::error::ApiError;
use crate::metrics::{self, Gauges};
use crate::openapi::ErrorBody;
use crate::persistence::{self, Persisted};
use crate::predictions::DashboardForecastJson;
use crate::series_json::{self, SeriesJson, rfc3339};
use crate::state::AppState;

/// The dashboard page, embedded in the binary (no CDN: it works offline).
pub const INDEX_HTML: &str = include_str!("../assets/index.html");

/// The page's content security policy: scripts, styles, images and API
/// calls from this origin only (no inline script or style), never framed.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                            img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                            form-action 'none'; frame-ancestors 'none'";

/// Incidents listed by `GET /api/incidents` without `?limit=`.
pub const DEFAULT_INCIDENT_LIMIT: usize = 100;
/// The largest `?limit=` of `GET /api/incidents`.
pub const MAX_INCIDENT_LIMIT: usize = 1000;

/// The site as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteView<'a> {
    /// Display name.
    pub name: &'a str,
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
    /// IANA time zone name.
    pub timezone: &'static str,
}

impl<'a> SiteView<'a> {
    /// The view of `site`.
    pub fn new(site: &'a Site) -> Self {
        SiteView {
            name: site.name(),
            latitude: site.latitude(),
            longitude: site.longitude(),
            timezone: site.timezone().name(),
        }
    }
}

/// The circuit breaker around the live source, as the dashboard shows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerView {
    /// `closed`, `open`, `half_open` (or `forced_open`, `disabled`).
    #[schema(value_type = crate::openapi::BreakerStateName)]
    pub state: BreakerState,
    /// While open: seconds until the next probe may go; `null` otherwise.
    pub retry_after_s: Option<f64>,
    /// Failed calls ÷ calls in the breaker's window (0 when empty).
    pub failure_rate: f64,
    /// Calls in the breaker's window.
    pub window_calls: u32,
    /// Failed probes since the circuit last closed (drives the backoff).
    pub open_attempt: u32,
}

impl From<BreakerMetrics> for BreakerView {
    fn from(m: BreakerMetrics) -> Self {
        BreakerView {
            state: m.state,
            // To the millisecond.
            retry_after_s: m
                .retry_after
                .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
            failure_rate: m.failure_rate,
            window_calls: m.window_calls,
            open_attempt: m.open_attempt,
        }
    }
}

/// The body of `GET /api/dashboard`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dashboard<'a> {
    /// `nominal` or `estimation`.
    #[schema(value_type = crate::openapi::ModeName)]
    pub mode: Mode,
    /// When the data was assembled (RFC 3339, UTC).
    pub generated_at: String,
    /// The site.
    pub site: SiteView<'a>,
    /// The KPIs at the time of the request, with their status levels.
    #[schema(value_type = crate::openapi::KpiSetSchema)]
    pub kpis: KpiSet,
    /// Hourly weather.
    #[schema(value_type = crate::openapi::WeatherSeries)]
    pub weather: SeriesJson<'a>,
    /// Hourly demand.
    #[schema(value_type = crate::openapi::DemandSeries)]
    pub demand: SeriesJson<'a>,
    /// Hourly supply by source.
    #[schema(value_type = crate::openapi::SupplySeries)]
    pub supply: SeriesJson<'a>,
    /// The demand forecast; `null` when no predictions exist.
    pub forecast: Option<DashboardForecastJson>,
    /// A sentence for the operator in estimation mode (English); `null` in
    /// nominal mode.
    pub notice: Option<String>,
    /// Why the service is in estimation mode, as reported by the data
    /// service (technical, English: the page puts it in its own sentence);
    /// `null` in nominal mode.
    pub degradation: Option<String>,
    /// The open incident's id while there is one; `null` otherwise.
    #[schema(value_type = Option<u64>)]
    pub incident: Option<IncidentId>,
    /// When live data last arrived (RFC 3339, UTC); `null` if never.
    pub last_live_at: Option<String>,
    /// The circuit breaker around the live source, at the time of the
    /// request. (Serialized last: the server reuses the rest of the body
    /// for a second and writes this part for each request.)
    pub breaker: BreakerView,
}

impl<'a> Dashboard<'a> {
    /// The dashboard of `snapshot` at `now` with these `kpis` (see
    /// [`AppState::kpis`]): series ages are computed for `now`, so data
    /// freshness keeps counting between refreshes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use spe_core::{FailoverService, KpiConfig, Replay, Site, compute_kpis};
    /// use spe_server_example::api::Dashboard;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let source = Replay::from_csv_str(
    /// #     "time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m\n2020-01-01T00:00Z,1,0,50,3\n",
    /// # )?;
    /// let service = FailoverService::builder(Site::paris(), Arc::new(source)).build()?;
    /// let snapshot = service.snapshot();
    /// let now = service.now();
    /// let kpis = compute_kpis(&snapshot.energy, now, &KpiConfig::default());
    /// let dashboard = Dashboard::new(service.site(), &snapshot, service.breaker().metrics(), now, kpis);
    /// let json = serde_json::to_string(&dashboard)?;
    /// assert!(json.starts_with(r#"{"mode":"estimation","#));
    /// assert!(json.contains(r#""forecast_error_pct":{"name":"forecast_error_pct","value":null"#));
    /// # Ok(()) }
    /// ```
    pub fn new(
        site: &'a Site,
        snapshot: &'a WeatherSnapshot,
        breaker: BreakerMetrics,
        now: DateTime<Utc>,
        kpis: KpiSet,
    ) -> Self {
        Dashboard::with_forecast(site, snapshot, breaker, now, kpis, None)
    }

    /// The same with the demand forecast of `predictions` (the chain's
    /// result and the time to measure its age at).
    pub fn with_forecast(
        site: &'a Site,
        snapshot: &'a WeatherSnapshot,
        breaker: impl Into<BreakerView>,
        now: DateTime<Utc>,
        kpis: KpiSet,
        predictions: Option<(&ChainResult, DateTime<Utc>)>,
    ) -> Self {
        Dashboard {
            mode: snapshot.mode,
            generated_at: rfc3339(snapshot.made_at),
            site: SiteView::new(site),
            kpis,
            weather: series_json::weather(&snapshot.weather, now),
            demand: series_json::demand(&snapshot.energy, now),
            supply: series_json::supply(&snapshot.energy, now),
            forecast: predictions.map(|(result, at)| DashboardForecastJson::new(result, at)),
            notice: snapshot.notice(),
            degradation: snapshot.notice().and(snapshot.degradation.clone()),
            incident: snapshot.incident,
            last_live_at: snapshot.last_live_at.map(rfc3339),
            breaker: breaker.into(),
        }
    }
}

/// `GET /api/dashboard`. The body is built once per second of the clock
/// (and per snapshot, predictions and archive revision) and reused, with
/// the breaker of each request: ages and KPIs are those of the request's
/// whole second.
#[utoipa::path(
    get,
    path = "/api/dashboard",
    tag = "dashboard",
    responses((status = 200, description = "What the dashboard shows, at the time of the request (to the second)", body = Dashboard<'_>))
)]
pub async fn dashboard(State(state): State<AppState>) -> Response {
    let service = state.service();
    let breaker = BreakerView::from(service.breaker().metrics());
    let key = DashboardKey::new(
        state.snapshot(),
        state.latest_predictions(),
        state.archive().map_or(0, ForecastArchive::revision),
        state.now(),
    );
    let body = state.dashboard_cache().body(key, breaker, |key, breaker| {
        let kpis = state.kpis(&key.snapshot, key.now);
        serde_json::to_vec(&Dashboard::with_forecast(
            service.site(),
            &key.snapshot,
            *breaker,
            key.now,
            kpis,
            key.predictions
                .as_ref()
                .map(|(result, at)| (result.as_ref(), *at)),
        ))
    });
    match body {
        Ok(body) => ([(header::CONTENT_TYPE, JSON)], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize the dashboard");
            ApiError::internal("the dashboard could not be written").into_response()
        }
    }
}

/// The content type of JSON answers.
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The body of `GET /livez`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Liveness {
    /// Always `ok`.
    pub status: &'static str,
}

/// `GET /livez`: the process is up. Always `{"status":"ok"}`.
#[utoipa::path(
    get,
    path = "/livez",
    tag = "health",
    responses((status = 200, description = "The process is up", body = Liveness))
)]
pub async fn livez() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// The body of `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    /// Always `ready`: a snapshot exists from startup on, so the dashboard
    /// serves.
    pub status: &'static str,
    /// `nominal` or `estimation`.
    #[schema(value_type = crate::openapi::ModeName)]
    pub mode: Mode,
    /// Whether the service runs degraded: in estimation mode, or without a
    /// part of its data directory (`unavailable`).
    pub degraded: bool,
    /// Why it is degraded, in words (the data service's reason, then the
    /// parts it runs without); `null` when it is not.
    pub reason: Option<String>,
    /// The parts of the data directory that could not be opened, which the
    /// server runs without (`journal`, `history`, `weather_cache`,
    /// `predictions_cache`, `archive`); empty when all are there.
    pub unavailable: Vec<Persisted>,
    /// Whether predictions can be served: `available`; `pending` (none yet,
    /// a run is in flight: e.g. the first run after a start with nothing
    /// cached); `none` (none, and no run in flight: no engine, or every
    /// tier of the last run failed). Not a degradation by itself: the
    /// dashboard serves without a forecast, and `GET /api/predictions`
    /// answers a clean 503 meanwhile.
    pub predictions: PredictionsReadiness,
}

/// Whether predictions can be served, as `GET /readyz` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PredictionsReadiness {
    /// Predictions (fresh or cached) can be served.
    Available,
    /// None yet; a run is in flight.
    Pending,
    /// None, and no run in flight.
    None,
}

impl Readiness {
    /// The readiness of `state` now.
    pub fn of(state: &AppState) -> Self {
        let snapshot = state.snapshot();
        let unavailable = state.unavailable().to_vec();
        let mut reasons: Vec<String> = Vec::new();
        if let Some(degradation) = &snapshot.degradation {
            reasons.push(degradation.clone());
        }
        if !unavailable.is_empty() {
            reasons.push(persistence::describe(&unavailable));
        }
        let predictions = match state.predictions() {
            Some(chain) if chain.latest().is_some() => PredictionsReadiness::Available,
            Some(chain) if chain.is_running() => PredictionsReadiness::Pending,
            _ => PredictionsReadiness::None,
        };
        Readiness {
            status: "ready",
            mode: snapshot.mode,
            degraded: snapshot.mode != Mode::Nominal || !unavailable.is_empty(),
            reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            unavailable,
            predictions,
        }
    }
}

/// `GET /readyz`: ready to serve, in estimation mode and without its data
/// directory too (the dashboard serves); the body says whether the service
/// is degraded and why.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "Ready, in estimation mode and without persistence too; the body says whether it is degraded and why", body = Readiness))
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    Json(Readiness::of(&state)).into_response()
}

/// A mode change of an incident, as `GET /api/incidents` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeChangeView {
    /// The mode before.
    #[schema(value_type = crate::openapi::ModeName)]
    pub from: Mode,
    /// The mode after.
    #[schema(value_type = crate::openapi::ModeName)]
    pub to: Mode,
    /// When (RFC 3339, UTC).
    pub at: String,
}

impl From<&ModeChange> for ModeChangeView {
    fn from(c: &ModeChange) -> Self {
        ModeChangeView {
            from: c.from,
            to: c.to,
            at: rfc3339(c.at),
        }
    }
}

/// An incident, as `GET /api/incidents` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentView<'a> {
    /// Its id, a number.
    #[schema(value_type = u64)]
    pub id: IncidentId,
    /// The failing component (`weather`, `cache`, `journal`, …).
    pub component: &'a str,
    /// What kind of failure (`upstream_timeout`, `upstream_5xx`, …).
    #[schema(value_type = crate::openapi::IncidentKindName)]
    pub kind: IncidentKind,
    /// When it began (RFC 3339, UTC).
    pub start: String,
    /// When it ended; `null` while open.
    pub end: Option<String>,
    /// Whether it is still going on.
    pub open: bool,
    /// How long it lasted, or has lasted so far, in whole seconds.
    pub duration_s: u64,
    /// The mode changes it caused, oldest first.
    pub mode_changes: Vec<ModeChangeView>,
    /// What was known when it began (the first error).
    pub details: &'a str,
    /// How it ended; `null` while open.
    pub resolution: Option<&'a str>,
}

impl<'a> IncidentView<'a> {
    /// The view of `incident` at `now` (an open incident lasts until `now`).
    pub fn new(incident: &'a Incident, now: DateTime<Utc>) -> Self {
        IncidentView {
            id: incident.id,
            component: &incident.component,
            kind: incident.kind,
            start: rfc3339(incident.start),
            end: incident.end.map(rfc3339),
            open: incident.is_open(),
            duration_s: u64::try_from(incident.duration(now).num_seconds()).unwrap_or(0),
            mode_changes: incident.mode_changes.iter().map(Into::into).collect(),
            details: &incident.details,
            resolution: incident.resolution.as_deref(),
        }
    }
}

/// The body of `GET /api/incidents`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Incidents<'a> {
    /// The incidents, newest first.
    pub incidents: Vec<IncidentView<'a>>,
    /// Whether the journal is open; `false` when it could not be opened at
    /// startup (then the list is empty for want of a journal, not of incidents).
    pub journal_available: bool,
}

/// The query of `GET /api/incidents`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentsQuery {
    /// At most this many incidents, newest first: 1 to 1000, default 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

impl IncidentsQuery {
    /// The limit asked for, validated.
    pub fn limit(&self) -> Result<usize, ApiError> {
        let Some(raw) = self.limit.as_deref() else {
            return Ok(DEFAULT_INCIDENT_LIMIT);
        };
        raw.parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_INCIDENT_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit must be a whole number from 1 to {MAX_INCIDENT_LIMIT}, not {raw:?}"
                ))
            })
    }
}

/// `GET /api/incidents[?limit=N]`: the incident journal, newest first.
/// Without a journal, an empty list (`"journal_available": false`).
#[utoipa::path(
    get,
    path = "/api/incidents",
    tag = "incidents",
    params(IncidentsQuery),
    responses(
        (status = 200, description = "The incident journal, newest first", body = Incidents<'_>),
        (status = 400, description = "A bad `limit`, or an unknown parameter", body = ErrorBody),
    )
)]
pub async fn incidents(
    State(state): State<AppState>,
    query: Result<Query<IncidentsQuery>, QueryRejection>,
) -> Response {
    let limit = match query {
        Ok(Query(query)) => query.limit(),
        Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
    };
    let limit = match limit {
        Ok(limit) => limit,
        Err(e) => return e.into_response(),
    };
    let now = state.now();
    let Some(journal) = state.journal().cloned() else {
        return Json(Incidents {
            incidents: Vec::new(),
            journal_available: false,
        })
        .into_response();
    };
    // The journal's lock may be held by an append waiting on the disk: read
    // it off the async workers.
    let listed = tokio::task::spawn_blocking(move || journal.newest_incidents(limit)).await;
    match listed {
        Ok(listed) => Json(Incidents {
            incidents: listed.iter().map(|i| IncidentView::new(i, now)).collect(),
            journal_available: true,
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading the incident journal failed");
            ApiError::internal("the incident journal could not be read").into_response()
        }
    }
}

/// `GET /`: the dashboard page.
#[utoipa::path(
    get,
    path = "/",
    tag = "page",
    responses((status = 200, description = "The dashboard page", content_type = "text/html", body = String))
)]
pub async fn index() -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        Html(INDEX_HTML),
    )
        .into_response()
}

/// `GET /metrics`: the OpenMetrics text format, which Prometheus scrapes
/// (the metrics are listed in the server's documentation).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "The metrics, OpenMetrics text format 1.0.0 (Prometheus scrapes it)", content_type = "application/openmetrics-text", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshot();
    let breaker = state.service().breaker().metrics();
    // The journal's lock may be held by an append waiting on the disk.
    let open_incidents = match state.journal().cloned() {
        Some(journal) => tokio::task::spawn_blocking(move || journal.open_incidents().len())
            .await
            .ok(),
        None => None,
    };
    let now = state.now();
    let forecast_error_pct = state.archive().and_then(|archive| {
        archive
            .forecast_error(&snapshot.energy, now, state.kpi_config())
            .value
    });
    let gauges = Gauges {
        mode: snapshot.mode,
        breaker_state: breaker.state,
        breaker_failure_rate: breaker.failure_rate,
        open_incidents,
        weather_age: snapshot.age(now),
        predictions: state
            .latest_predictions()
            .map(|(result, at)| (result.tier.name().to_owned(), result.age(at))),
        forecast_error_pct,
        history_backup_age: state.history().map(|h| {
            h.last_backup()
                .map(|at| (now - at).to_std().unwrap_or(std::time::Duration::ZERO))
        }),
    };
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics().render(&gauges),
    )
        .into_response()
}
