//! `GET /api/predictions` and `POST /api/predictions/generate`.
//!
//! `GET` serves the last good predictions of the prediction chain
//! ([`PredictionChain::latest`](spe_core::PredictionChain::latest): never waits) with their tier, provenance
//! and age, or a JSON 503 `no_predictions` when none exist (none made yet
//! and none cached). `POST …/generate` re-runs the chain for the current
//! snapshot: it is rate limited per client address (429 with
//! `Retry-After`), then needs the admin token (401) or, without a
//! configured token, a loopback client addressing the server by a
//! loopback name (403, see [`auth`](crate::auth)); a cross-site request is
//! refused before (403 `cross_site`, see [`origin`](crate::origin)); it takes no query string and
//! no body (400: they would be ignored). Concurrent calls share one
//! run (the chain's single flight); the answer is the new result, or a JSON
//! 503 `prediction_failed` when every tier failed. It is bounded by the
//! chain's timeouts (see [`forecasting`]). Once admitted, the run goes on
//! to its end even if the client hangs up (it runs in a task of its own),
//! so a regeneration asked through a proxy with a short timeout still
//! updates the predictions.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Json;
use axum::extract::rejection::ExtensionRejection;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use spe_core::ChainResult;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::forecasting;
use crate::rate_limit::RateLimiter;
use crate::series_json::rfc3339;
use crate::state::AppState;

/// The forecast of the predictions: parallel arrays over `time`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForecastJson {
    /// The instants (RFC 3339, UTC), one per step.
    pub time: Vec<String>,
    /// The mean path.
    pub mean: Vec<Option<f64>>,
    /// Lower bound of the 80 % interval; `null` where unknown.
    pub lower_80: Vec<Option<f64>>,
    /// Upper bound of the 80 % interval.
    pub upper_80: Vec<Option<f64>>,
    /// Lower bound of the 95 % interval.
    pub lower_95: Vec<Option<f64>>,
    /// Upper bound of the 95 % interval.
    pub upper_95: Vec<Option<f64>>,
}

/// Why a tier of the prediction chain gave nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureJson {
    /// `primary`, `fallback` or `cache`.
    #[schema(value_type = crate::openapi::TierName)]
    pub tier: String,
    /// The predictor's name.
    pub predictor: String,
    /// The incident kind (`model_crash`, `model_timeout`, …).
    #[schema(value_type = crate::openapi::IncidentKindName)]
    pub kind: String,
    /// What went wrong.
    pub message: String,
}

/// The body of `GET /api/predictions`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictionsJson {
    /// The model that made them.
    pub model: String,
    /// The tier that answered: `primary`, `fallback` or `cache`.
    #[schema(value_type = crate::openapi::TierName)]
    pub tier: String,
    /// When they were made (RFC 3339, UTC).
    pub made_at: String,
    /// Their age, whole seconds.
    pub age_s: u64,
    /// `live` (primary), `fallback` or `cached`; `synthetic` for primary
    /// predictions made from an estimated history (estimation mode).
    #[schema(value_type = crate::openapi::ProvenanceName)]
    pub provenance: String,
    /// Where the history the predictions were made from came from: `live`,
    /// or `synthetic` in estimation mode (`cached` after a warm restart).
    #[schema(value_type = crate::openapi::ProvenanceName)]
    pub inputs: String,
    /// Why the tiers above the one that answered failed, in order.
    pub failures: Vec<FailureJson>,
    /// A sentence for the operator when the primary did not answer.
    pub notice: Option<String>,
    /// The forecast.
    pub forecast: ForecastJson,
}

/// The demand forecast as `/api/dashboard` shows it: a series of parallel
/// arrays like the others, with the model and the tier that made it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardForecastJson {
    /// The instants (RFC 3339, UTC), one per step.
    pub time: Vec<String>,
    /// The mean path.
    pub mean: Vec<Option<f64>>,
    /// Lower bound of the 80 % interval; `null` where unknown.
    pub lower_80: Vec<Option<f64>>,
    /// Upper bound of the 80 % interval.
    pub upper_80: Vec<Option<f64>>,
    /// Lower bound of the 95 % interval.
    pub lower_95: Vec<Option<f64>>,
    /// Upper bound of the 95 % interval.
    pub upper_95: Vec<Option<f64>>,
    /// The model that made it.
    pub model: String,
    /// The tier that answered: `primary`, `fallback` or `cache`.
    #[schema(value_type = crate::openapi::TierName)]
    pub tier: String,
    /// `live` (primary), `fallback` or `cached`; `synthetic` for primary
    /// predictions made from an estimated history (estimation mode).
    #[schema(value_type = crate::openapi::ProvenanceName)]
    pub provenance: String,
    /// Where the history the predictions were made from came from.
    #[schema(value_type = crate::openapi::ProvenanceName)]
    pub inputs: String,
    /// Age of the predictions, whole seconds.
    pub age_s: u64,
}

/// The values of `level`'s bound (`lower` or `upper`), `null` each where
/// the forecast has no interval at that level.
fn bound(values: Option<&[f64]>, horizon: usize) -> Vec<Option<f64>> {
    match values {
        Some(values) => values.iter().map(|v| v.is_finite().then_some(*v)).collect(),
        None => vec![None; horizon],
    }
}

impl ForecastJson {
    /// The forecast of `result`.
    pub fn new(result: &ChainResult) -> Self {
        let predictions = &result.predictions;
        let forecast = &predictions.forecast;
        let horizon = forecast.horizon();
        ForecastJson {
            time: predictions.times().into_iter().map(rfc3339).collect(),
            mean: bound(Some(forecast.mean()), horizon),
            lower_80: bound(forecast.lower(80.0), horizon),
            upper_80: bound(forecast.upper(80.0), horizon),
            lower_95: bound(forecast.lower(95.0), horizon),
            upper_95: bound(forecast.upper(95.0), horizon),
        }
    }
}

impl PredictionsJson {
    /// The view of `result` at `now`.
    pub fn new(result: &ChainResult, now: DateTime<Utc>) -> Self {
        PredictionsJson {
            model: result.predictions.forecast.model().to_owned(),
            tier: result.tier.name().to_owned(),
            made_at: rfc3339(result.predictions.made_at),
            age_s: result.age(now).as_secs(),
            provenance: result.provenance(now).name().to_owned(),
            inputs: result.predictions.inputs.name().to_owned(),
            failures: result
                .failures
                .iter()
                .map(|f| FailureJson {
                    tier: f.tier.name().to_owned(),
                    predictor: f.predictor.clone(),
                    kind: f.kind.name().to_owned(),
                    message: f.message.clone(),
                })
                .collect(),
            notice: result.notice(),
            forecast: ForecastJson::new(result),
        }
    }
}

impl DashboardForecastJson {
    /// The view of `result` at `now`.
    pub fn new(result: &ChainResult, now: DateTime<Utc>) -> Self {
        let ForecastJson {
            time,
            mean,
            lower_80,
            upper_80,
            lower_95,
            upper_95,
        } = ForecastJson::new(result);
        DashboardForecastJson {
            time,
            mean,
            lower_80,
            upper_80,
            lower_95,
            upper_95,
            model: result.predictions.forecast.model().to_owned(),
            tier: result.tier.name().to_owned(),
            provenance: result.provenance(now).name().to_owned(),
            inputs: result.predictions.inputs.name().to_owned(),
            age_s: result.age(now).as_secs(),
        }
    }
}

/// The answer to a request body that could not be read: 413 when over the
/// limit ([`Hardening::max_body_bytes`](crate::Hardening)), else 400.
fn body_error(error: &axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            );
        }
        source = e.source();
    }
    ApiError::bad_request(format!("the request body could not be read: {error}"))
}

/// `GET /api/predictions`.
#[utoipa::path(
    get,
    path = "/api/predictions",
    tag = "predictions",
    responses(
        (status = 200, description = "The last good predictions, with provenance and age", body = PredictionsJson),
        (status = 503, description = "No predictions exist (`no_predictions`)", body = crate::openapi::ErrorBody),
    )
)]
pub async fn latest(State(state): State<AppState>) -> Response {
    match state.latest_predictions() {
        Some((result, now)) => Json(PredictionsJson::new(&result, now)).into_response(),
        None => no_predictions().into_response(),
    }
}

/// The 400 for a query string on `POST …/generate`, which takes none.
fn unexpected_query(query: &str) -> ApiError {
    // Echoed only when short: the message stays small.
    let got = if query.chars().count() <= 64 {
        format!(" (got {query:?})")
    } else {
        String::new()
    };
    ApiError::bad_request(format!(
        "POST /api/predictions/generate takes no query parameters{got}: \
         it regenerates with the server's own settings"
    ))
}

fn no_predictions() -> ApiError {
    ApiError::unavailable(
        "no_predictions",
        "no predictions exist yet (none made since the start and none cached); retry shortly",
    )
}

/// `POST /api/predictions/generate`.
#[utoipa::path(
    post,
    path = "/api/predictions/generate",
    tag = "predictions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new predictions", body = PredictionsJson),
        (status = 400, description = "A query string or a request body: this takes neither (`bad_request`)", body = crate::openapi::ErrorBody),
        (status = 401, description = "No, a malformed or a wrong bearer token", body = crate::openapi::ErrorBody),
        (status = 403, description = "A cross-site request (`cross_site`: from a page of another origin than the server's own or a configured CORS origin), or, with no token configured, a client not on loopback or not addressing the server by a loopback name (`forbidden`)", body = crate::openapi::ErrorBody),
        (status = 413, description = "The request body is too large", body = crate::openapi::ErrorBody),
        (status = 429, description = "Rate limited; see `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 503, description = "Every tier of the prediction chain failed, or there is no engine", body = crate::openapi::ErrorBody),
    )
)]
pub async fn generate(
    State(state): State<AppState>,
    connect: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    request: Request,
) -> Response {
    // Known when served with connect info (as `App::serve` does).
    let peer = connect.ok().map(|ConnectInfo(addr)| addr);
    let client = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
    // The token is checked first (in constant time), so that refused
    // attempts and admitted calls draw on separate budgets: guessing cannot
    // use up the operator's.
    if let Err(e) = state.admin().check(request.headers(), peer) {
        if let Err(wait) = state.rate_limiter().check_refused(client) {
            return ApiError::too_many_requests(RateLimiter::retry_after_secs(wait))
                .into_response();
        }
        tracing::warn!(client = %client, code = e.code(), "regeneration refused");
        return e.into_response();
    }
    // It takes no parameters: a query such as `?horizon=5` would otherwise
    // be ignored without a word.
    if let Some(query) = request.uri().query().filter(|q| !q.is_empty()) {
        return unexpected_query(query).into_response();
    }
    // Nor a body; read to its end all the same, so that one over the limit
    // is refused (413) even without a Content-Length.
    match axum::body::to_bytes(request.into_body(), usize::MAX).await {
        Ok(body) if body.is_empty() => {}
        Ok(body) => {
            return ApiError::bad_request(format!(
                "POST /api/predictions/generate takes no request body (got {} bytes): \
                 it regenerates with the server's own settings",
                body.len()
            ))
            .into_response();
        }
        Err(e) => return body_error(&e).into_response(),
    }
    // Only a well-formed call spends a regeneration of the budget: the
    // operator who mistyped one is not then held back from the right one.
    if let Err(wait) = state.rate_limiter().check(client) {
        return ApiError::too_many_requests(RateLimiter::retry_after_secs(wait)).into_response();
    }
    let Some(chain) = state.predictions() else {
        return ApiError::unavailable(
            "prediction_engine_unavailable",
            "this server has no prediction engine",
        )
        .into_response();
    };
    tracing::info!(client = %client, "regeneration asked");
    // Detached: once admitted, the regeneration runs to its end even if
    // this answer is dropped (the client hung up, a proxy timed out, the
    // request timeout cut it), so it always updates the predictions. The
    // run is still the chain's single flight: concurrent calls join it.
    let run = tokio::spawn(regenerate(
        state.service().clone(),
        state.history().cloned(),
        chain.clone(),
    ));
    match run.await {
        Ok(Ok(result)) => Json(PredictionsJson::new(&result, chain.now())).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the regeneration task failed");
            ApiError::unavailable("prediction_failed", "the regeneration failed unexpectedly")
                .into_response()
        }
    }
}

/// One forced run of `chain` on the current snapshot and the recorded
/// history: its result, or a 503 `prediction_failed` (the request could
/// not be built, every tier failed, or the run was interrupted).
async fn regenerate(
    service: spe_core::FailoverService,
    history: Option<crate::history::History>,
    chain: spe_core::PredictionChain,
) -> Result<std::sync::Arc<ChainResult>, ApiError> {
    let request = forecasting::current_request(&service, history.as_ref())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot build the prediction request");
            ApiError::unavailable("prediction_failed", e.to_string())
        })?;
    chain
        .generate(request)
        .await
        .map_err(|e| ApiError::unavailable("prediction_failed", e.to_string()))
}
