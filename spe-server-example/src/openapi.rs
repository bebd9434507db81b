//! The OpenAPI 3.1 document of the server, served at `GET /api/openapi.json`.
//!
//! Built with `utoipa` from the handlers' `#[utoipa::path]` attributes and
//! the JSON types' `ToSchema` derives, so it follows the code. Types that
//! live in `spe-core` (the mode, breaker state, KPIs, incident kinds, the
//! series written by [`series_json`](crate::series_json)) are described by
//! the schema-only mirrors below, which are never serialized: the tests
//! check that live answers of every endpoint validate against the document.
//!
//! ```
//! use utoipa::OpenApi as _;
//! use spe_server_example::openapi::ApiDoc;
//!
//! let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
//! assert!(doc["paths"]["/api/dashboard"]["get"].is_object());
//! assert!(doc["components"]["schemas"]["Dashboard"].is_object());
//! ```

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, PathItem, Ref, Required, ResponseBuilder, ResponsesBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::api;
use crate::events;
use crate::export;
use crate::history;
use crate::predictions;

/// `nominal` or `estimation`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModeName {
    /// Live data flows from the weather API.
    Nominal,
    /// The weather API is unavailable: the synthetic estimate is served.
    Estimation,
}

/// The circuit breaker's state.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerStateName {
    /// Calls flow.
    Closed,
    /// Calls are refused until the open wait has passed.
    Open,
    /// Probes test the dependency.
    HalfOpen,
    /// Refused by the operator.
    ForcedOpen,
    /// Pass-through.
    Disabled,
}

/// Where values come from.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProvenanceName {
    /// Fresh from the real upstream.
    Live,
    /// The local synthetic generator (estimation mode).
    Synthetic,
    /// A last good value from a cache.
    Cached,
    /// A statistical fallback model.
    Fallback,
}

/// The tier of the prediction chain that answered.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierName {
    /// The primary predictor.
    Primary,
    /// The statistical fallback model.
    Fallback,
    /// The last good predictions, from the cache.
    Cache,
}

/// A KPI's status level.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KpiStatusName {
    /// Within its normal range.
    Ok,
    /// Needs a look.
    Warning,
    /// Needs action.
    Critical,
}

/// The kind of an incident.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKindName {
    /// No complete answer within the call timeout.
    UpstreamTimeout,
    /// An HTTP 5xx answer.
    #[serde(rename = "upstream_5xx")]
    Upstream5xx,
    /// Could not be reached.
    UpstreamUnreachable,
    /// An HTTP 4xx answer.
    UpstreamRejected,
    /// A malformed or implausible body.
    BadPayload,
    /// The prediction engine crashed.
    ModelCrash,
    /// The prediction engine did not finish in time.
    ModelTimeout,
    /// The prediction engine's output is unusable.
    ModelBadOutput,
    /// A corrupt cache file was quarantined.
    CacheCorrupt,
    /// The history store was corrupt.
    StoreCorrupt,
    /// The incident journal was damaged.
    JournalCorrupt,
    /// A disk operation failed.
    DiskError,
    /// Anything else.
    Other,
}

/// A series the history store records (`GET /api/history?series=`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeriesName {
    /// Air temperature at 2 m, °C.
    #[serde(rename = "temperature_2m")]
    Temperature2m,
    /// Global horizontal irradiance, W/m².
    ShortwaveRadiation,
    /// Cloud cover, %.
    CloudCover,
    /// Wind speed at 10 m, m/s.
    #[serde(rename = "wind_speed_10m")]
    WindSpeed10m,
    /// Demand, MW.
    DemandMw,
    /// Solar production, MW.
    SolarMw,
    /// Wind production, MW.
    WindMw,
    /// Other local production, MW.
    OtherMw,
    /// Imports, MW.
    ImportsMw,
}

/// A KPI the history store records (`GET /api/history?kpi=`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KpiName {
    /// Demand, MW.
    DemandMw,
    /// Total supply, MW.
    SupplyMw,
    /// Solar production, MW.
    SolarMw,
    /// Wind production, MW.
    WindMw,
    /// Other local production, MW.
    OtherMw,
    /// Imports, MW.
    ImportsMw,
    /// Supply − demand, MW.
    BalanceMw,
    /// Supply ÷ demand.
    CoverageRatio,
    /// Renewable share of the supply.
    RenewableShare,
    /// Peak demand of the last 24 hours, MW.
    PeakDemandMw,
    /// Local production ÷ demand.
    SelfSufficiency,
    /// Age of the data, seconds.
    DataFreshnessS,
    /// Forecast error of the last day, %.
    ForecastErrorPct,
}

/// The recorded predictions `GET /api/history?predictions=` gives.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PredictionsName {
    /// The latest made at least 24 hours before each hour.
    DayAhead,
    /// The latest made before each hour began.
    Latest,
}

/// The format of `GET /api/history`'s answer.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HistoryFormat {
    /// JSON (the default).
    Json,
    /// CSV, as a download.
    Csv,
}

/// A provenance as a tagged object: `{"kind": "cached", "age_s": 90}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceTagged {
    /// Where the values come from.
    pub kind: ProvenanceName,
    /// For `cached`: the age in whole seconds.
    pub age_s: Option<u64>,
}

/// One KPI.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KpiSchema {
    /// Stable machine name (`demand_mw`, `coverage_ratio`, …).
    pub name: String,
    /// The value; `null` when unknown.
    pub value: Option<f64>,
    /// `MW`, `ratio` (1.0 = 100 %), `s` or `%`.
    pub unit: String,
    /// How worrying the value is.
    pub status: KpiStatusName,
    /// The hour the value describes (RFC 3339, UTC); `null` if none applies.
    pub at: Option<String>,
}

/// Supply KPIs by source, MW.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupplyKpisSchema {
    /// Solar.
    pub solar: KpiSchema,
    /// Wind.
    pub wind: KpiSchema,
    /// Other (dispatchable) production.
    pub other: KpiSchema,
    /// Imports.
    pub imports: KpiSchema,
}

/// The KPIs of the dashboard, with their status levels.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KpiSetSchema {
    /// When they were computed (RFC 3339, UTC).
    pub computed_at: String,
    /// Where the data behind them comes from.
    pub provenance: ProvenanceTagged,
    /// The worst status of them all.
    pub status: KpiStatusName,
    /// Demand, MW.
    pub demand_mw: KpiSchema,
    /// Total supply, MW.
    pub supply_mw: KpiSchema,
    /// Supply by source.
    pub supply_by_source: SupplyKpisSchema,
    /// Supply − demand, MW.
    pub balance_mw: KpiSchema,
    /// Supply ÷ demand.
    pub coverage_ratio: KpiSchema,
    /// Renewable share of the supply.
    pub renewable_share: KpiSchema,
    /// Peak demand of the day, MW.
    pub peak_demand_mw: KpiSchema,
    /// Local production ÷ demand.
    pub self_sufficiency: KpiSchema,
    /// Age of the last live data, seconds (cached data: since it was
    /// fetched); in estimation mode it keeps growing, and it is `null`,
    /// status `critical`, when there never was live data.
    pub data_freshness_s: KpiSchema,
    /// Forecast error of the last day, `%`: the mean absolute percentage
    /// error, over the 24 whole hours before the current one, of the demand
    /// predicted for each hour at least a day before it. `null` (status
    /// `ok`) until day-old predictions exist, e.g. after a fresh start.
    pub forecast_error_pct: KpiSchema,
}

/// Hourly weather: parallel arrays over `time`, Open-Meteo's column names.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeatherSeries {
    /// The hours (RFC 3339, UTC).
    pub time: Vec<String>,
    /// Air temperature at 2 m, °C.
    pub temperature_2m: Vec<Option<f64>>,
    /// Global horizontal irradiance, W/m².
    pub shortwave_radiation: Vec<Option<f64>>,
    /// Cloud cover, %.
    pub cloud_cover: Vec<Option<f64>>,
    /// Wind speed at 10 m, m/s.
    pub wind_speed_10m: Vec<Option<f64>>,
    /// Where the data comes from.
    pub provenance: ProvenanceName,
    /// Its age, whole seconds.
    pub age_s: u64,
    /// The unit of each column.
    pub units: WeatherUnits,
}

/// The units of the weather columns (as Open-Meteo spells them).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeatherUnits {
    /// `°C`.
    pub temperature_2m: String,
    /// `W/m²`.
    pub shortwave_radiation: String,
    /// `%`.
    pub cloud_cover: String,
    /// `m/s`.
    pub wind_speed_10m: String,
}

/// Hourly demand.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemandSeries {
    /// The hours (RFC 3339, UTC).
    pub time: Vec<String>,
    /// Demand, MW.
    pub demand_mw: Vec<Option<f64>>,
    /// Where the data comes from.
    pub provenance: ProvenanceName,
    /// Its age, whole seconds.
    pub age_s: u64,
}

/// Hourly supply by source, MW.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupplySeries {
    /// The hours (RFC 3339, UTC).
    pub time: Vec<String>,
    /// Solar production.
    pub solar_mw: Vec<Option<f64>>,
    /// Wind production.
    pub wind_mw: Vec<Option<f64>>,
    /// Other production.
    pub other_mw: Vec<Option<f64>>,
    /// Imports.
    pub imports_mw: Vec<Option<f64>>,
    /// Where the data comes from.
    pub provenance: ProvenanceName,
    /// Its age, whole seconds.
    pub age_s: u64,
}

/// The error of an error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// A stable machine code (`not_found`, `bad_request`, `unauthorized`,
    /// `too_many_requests`, `overloaded`, `timeout`, `no_predictions`, …).
    pub code: String,
    /// A sentence for humans.
    pub message: String,
}

/// Every 4xx and 5xx answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A `GET` answering `content_type` on 200, a JSON 404 for an unknown
/// `{param}`, and a JSON 400 if `bad_request` says why.
fn file_operation(
    tag: &str,
    summary: &str,
    param: &str,
    param_description: &str,
    content_type: &str,
    bad_request: Option<&str>,
) -> PathItem {
    let text = ObjectBuilder::new().schema_type(Type::String).build();
    let mut responses = ResponsesBuilder::new()
        .response(
            "200",
            ResponseBuilder::new().description(summary).content(
                content_type,
                ContentBuilder::new().schema(Some(text.clone())).build(),
            ),
        )
        .response(
            "404",
            error_response(&format!("No such {param} (`not_found`)")),
        );
    if let Some(why) = bad_request {
        responses = responses.response("400", error_response(why));
    }
    let operation = OperationBuilder::new()
        .tag(tag)
        .summary(Some(summary))
        .parameter(
            ParameterBuilder::new()
                .name(param)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(param_description))
                .schema(Some(text)),
        )
        .responses(responses.build())
        .build();
    PathItem::new(HttpMethod::Get, operation)
}

/// A JSON error answer.
fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// Adds the routes whose handlers carry no `#[utoipa::path]` (the charts
/// and the page's files), the bearer scheme, and the answers every route
/// may give.
struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let charts: Vec<String> = crate::charts::ChartName::ALL
            .iter()
            .map(|c| format!("`{c}.svg`"))
            .collect();
        let mut charts_operation = file_operation(
            "dashboard",
            "A chart of the dashboard, SVG",
            "name",
            &format!("One of {}", charts.join(", ")),
            "image/svg+xml",
            Some("An unknown `lang`, or another parameter (`bad_request`)"),
        );
        if let Some(get) = charts_operation.get.as_mut() {
            get.parameters.get_or_insert_with(Vec::new).push(
                ParameterBuilder::new()
                    .name("lang")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some("The labels' language: `fr` (default) or `en`"))
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["fr", "en"]))
                            .build(),
                    ))
                    .build(),
            );
        }
        openapi
            .paths
            .paths
            .insert("/api/charts/{name}".to_owned(), charts_operation);
        openapi.paths.paths.insert(
            "/assets/{file}".to_owned(),
            file_operation(
                "page",
                "A file of the dashboard page (script, style, icon)",
                "file",
                "`app.js`, `events.js`, `events-worker.js`, `i18n.js`, `app.css`, `print.css`, `favicon.svg`",
                "text/plain",
                None,
            ),
        );
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let error = error_response;
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut operation.responses.responses;
                responses.entry("405".into()).or_insert_with(|| {
                    error("Wrong method for this path (`method_not_allowed`, with `Allow`)").into()
                });
                responses.entry("503".into()).or_insert_with(|| {
                    error(
                        "Too many requests in flight (`overloaded`, with `Retry-After`) \
                         or too slow an answer (`timeout`)",
                    )
                    .into()
                });
            }
        }
    }
}

/// The server's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "SP-E example server",
        description = "The SP-E operator dashboard's API: an energy supply/demand dashboard that \
                       stays up when its data sources fail. Every 4xx and 5xx answer has a JSON \
                       body `{\"error\": {\"code\", \"message\"}}`; unknown paths answer 404 \
                       (`not_found`), bodies over the limit 413 (`payload_too_large`).",
    ),
    paths(
        api::index,
        api::dashboard,
        api::incidents,
        api::livez,
        api::readyz,
        api::metrics,
        events::events,
        export::export_csv,
        history::history,
        predictions::latest,
        predictions::generate,
        openapi_json,
    ),
    components(schemas(ErrorBody, ErrorDetail, SeriesName, KpiName, PredictionsName, HistoryFormat, crate::csv_dialect::CsvLocale)),
    modifiers(&Common),
    tags(
        (name = "dashboard", description = "What the operator sees"),
        (name = "incidents", description = "The incident journal"),
        (name = "history", description = "The long-term history: recorded series and KPIs"),
        (name = "predictions", description = "The demand forecast and its regeneration"),
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "page", description = "The dashboard page"),
    )
)]
pub struct ApiDoc;

/// The document as JSON text, built once.
pub fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi().to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialize the OpenAPI document");
            "{}".to_owned()
        })
    })
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "health",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::from_str(super::document()).expect("JSON")
    }

    fn parameter<'a>(operation: &'a Value, name: &str) -> &'a Value {
        operation["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("no parameter {name}: {operation}"))
    }

    #[test]
    fn the_history_is_described_as_it_answers() {
        let doc = doc();
        let history = &doc["paths"]["/api/history"]["get"];
        let content = &history["responses"]["200"]["content"];
        assert!(content["application/json"].is_object(), "{content}");
        assert!(content["text/csv"].is_object(), "{content}");
        for (name, schema) in [
            ("predictions", "PredictionsName"),
            ("format", "HistoryFormat"),
        ] {
            let reference = parameter(history, name)["schema"].to_string();
            assert!(reference.contains(schema), "{name}: {reference}");
        }
        assert_eq!(
            doc["components"]["schemas"]["PredictionsName"]["enum"],
            serde_json::json!(["day_ahead", "latest"])
        );
        for name in ["from", "to"] {
            assert_eq!(parameter(history, name)["schema"]["format"], "date-time");
        }
    }

    #[test]
    fn every_chart_and_its_language_are_described() {
        let doc = doc();
        let charts = &doc["paths"]["/api/charts/{name}"]["get"];
        let names = parameter(charts, "name")["description"]
            .as_str()
            .expect("text");
        for chart in crate::charts::ChartName::ALL {
            assert!(names.contains(&format!("`{chart}.svg`")), "{names}");
        }
        let lang = parameter(charts, "lang");
        assert_eq!(lang["in"], "query");
        assert_eq!(lang["schema"]["enum"], serde_json::json!(["fr", "en"]));
    }

    /// Descriptions come from doc comments: no rustdoc link may leak into
    /// what a client reads.
    #[test]
    fn no_rustdoc_link_is_in_the_document() {
        let text = super::document();
        for leak in ["](", "[`"] {
            if let Some(at) = text.find(leak) {
                let context: String = text[..at]
                    .chars()
                    .rev()
                    .take(80)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                panic!("{leak:?} after {context:?}");
            }
        }
    }
}
