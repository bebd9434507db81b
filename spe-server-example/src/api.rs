//! The handlers. They read the current [`Snapshot`] and
//! never call an upstream, so an answer never waits on a failing source.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use spe_core::{KpiConfig, KpiSet, Mode, compute_kpis};

use crate::series_json::{self, SeriesJson, rfc3339};
use crate::state::{AppState, Snapshot};

/// The dashboard page, embedded in the binary (no CDN: it works offline).
pub const INDEX_HTML: &str = include_str!("../assets/index.html");

/// The page's content security policy: nothing but itself and the API.
const PAGE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                        connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                        frame-ancestors 'none'";

/// The site as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// The body of `GET /api/dashboard`.
#[derive(Debug, Serialize)]
pub struct Dashboard<'a> {
    /// `nominal` or `estimation`.
    pub mode: Mode,
    /// When the data was assembled (RFC 3339, UTC).
    pub generated_at: String,
    /// The site.
    pub site: SiteView<'a>,
    /// The KPIs at the time of the request, with their status levels.
    pub kpis: KpiSet,
    /// Hourly weather.
    pub weather: SeriesJson<'a>,
    /// Hourly demand.
    pub demand: SeriesJson<'a>,
    /// Hourly supply by source.
    pub supply: SeriesJson<'a>,
    /// The demand forecast; `null` until the forecasting engine is wired in.
    pub forecast: Option<Value>,
    /// The circuit breaker's state; `null` until the breaker is wired in.
    pub breaker: Option<Value>,
    /// A sentence for the operator in estimation mode; `null` in nominal mode.
    pub notice: Option<&'a str>,
}

impl<'a> Dashboard<'a> {
    /// The dashboard of `snapshot` at `now`: series ages and KPIs are
    /// computed for `now`, so data freshness keeps counting between refreshes.
    pub fn new(snapshot: &'a Snapshot, now: DateTime<Utc>, kpi_config: &KpiConfig) -> Self {
        let site = &snapshot.site;
        Dashboard {
            mode: snapshot.mode,
            generated_at: rfc3339(snapshot.generated_at),
            site: SiteView {
                name: site.name(),
                latitude: site.latitude(),
                longitude: site.longitude(),
                timezone: site.timezone().name(),
            },
            kpis: compute_kpis(&snapshot.energy, now, kpi_config),
            weather: series_json::weather(&snapshot.weather, now),
            demand: series_json::demand(&snapshot.energy, now),
            supply: series_json::supply(&snapshot.energy, now),
            forecast: None,
            breaker: None,
            notice: snapshot.notice.as_deref(),
        }
    }
}

/// `GET /api/dashboard`.
pub async fn dashboard(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshot();
    Json(Dashboard::new(&snapshot, state.now(), state.kpi_config())).into_response()
}

/// `GET /livez`: the process is up. Always `{"status":"ok"}`.
pub async fn livez() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The body of `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness<'a> {
    /// Always `ready`: a snapshot exists from startup on.
    pub status: &'static str,
    /// `nominal` or `estimation`.
    pub mode: Mode,
    /// Whether the service runs degraded (estimation mode).
    pub degraded: bool,
    /// Why it is degraded; `null` in nominal mode.
    pub reason: Option<&'a str>,
}

/// `GET /readyz`: ready to serve, in estimation mode too; the body says
/// whether the service is degraded and why.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshot();
    Json(Readiness {
        status: "ready",
        mode: snapshot.mode,
        degraded: snapshot.is_degraded(),
        reason: snapshot.reason.as_deref(),
    })
    .into_response()
}

/// `GET /`: the dashboard page.
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
