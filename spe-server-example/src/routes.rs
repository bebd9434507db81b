//! The router: routes, fallbacks and the headers every answer carries.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /` | the dashboard page (HTML, embedded) |
//! | `GET /api/dashboard` | the dashboard data (JSON) |
//! | `GET /livez` | `{"status":"ok"}` |
//! | `GET /readyz` | `{"status":"ready","mode":…,"degraded":…,"reason":…}` |
//! | anything else | 404, or 405 on a known path, with a JSON error body |
//!
//! Every answer carries `X-Content-Type-Options: nosniff`; every answer but
//! the page carries `Cache-Control: no-store`. A panic in a handler becomes a
//! JSON 500 instead of a dropped connection.

use std::any::Any;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::api;
use crate::error::{self, ApiError};
use crate::state::AppState;

/// The application's router over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(api::index))
        .route("/api/dashboard", get(api::dashboard))
        .route("/livez", get(api::livez))
        .route("/readyz", get(api::readyz))
        // After the routes: applies to the routes registered so far.
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::not_found)
        .with_state(state)
        // Innermost, so its 500 gets the headers below too.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    tracing::error!(panic = %what, "a handler panicked");
    ApiError::internal("internal error; the server keeps running").into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use serde_json::Value;
    use spe_core::{Generator, Provenance, Site, TimeAxis, Window};
    use tower::ServiceExt as _;

    use super::*;
    use crate::state::Snapshot;

    /// The fixed "now" of these tests: a winter weekday morning.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0)
            .single()
            .expect("valid time")
    }

    fn axis() -> TimeAxis {
        Window::new(now(), 2, 7)
            .and_then(|w| w.axis(&Site::paris()))
            .expect("valid window")
    }

    fn estimation() -> Snapshot {
        let frames = Generator::default().generate(&Site::paris(), axis(), now());
        Snapshot::estimation(
            Site::paris(),
            frames,
            now(),
            "open-meteo: connection failed: refused",
        )
    }

    /// Live-labelled weather with a gap: the last 5 hours of temperature and
    /// cloud cover missing, as past Open-Meteo's model horizon.
    fn nominal() -> Snapshot {
        let generator = Generator::default();
        let site = Site::paris();
        let mut cols = generator.weather(&site, axis(), now()).into_columns();
        let n = cols.temperature_2m.len();
        for i in n - 5..n {
            cols.temperature_2m[i] = None;
            cols.cloud_cover[i] = None;
        }
        let weather = spe_core::WeatherFrame::new(axis(), cols, Provenance::Live, now())
            .expect("valid frame");
        let energy = generator.twin(&site).energy(&weather).expect("energy");
        Snapshot::nominal(site, weather, energy, now())
    }

    /// The router over `snapshot`, with the clock 90 s after the snapshot.
    fn app(snapshot: Snapshot) -> Router {
        let later = now() + Duration::seconds(90);
        router(AppState::fixed(snapshot).with_clock(Arc::new(move || later)))
    }

    async fn call(
        app: Router,
        method: Method,
        uri: &str,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("valid request");
        let response = app.oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("body");
        (status, headers, body.to_vec())
    }

    async fn get_json(app: Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let (status, headers, body) = call(app, Method::GET, uri).await;
        let json = serde_json::from_slice(&body).expect("a JSON body");
        (status, headers, json)
    }

    fn assert_api_headers(headers: &axum::http::HeaderMap) {
        assert_eq!(
            headers
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        assert_eq!(
            headers
                .get(header::X_CONTENT_TYPE_OPTIONS)
                .and_then(|v| v.to_str().ok()),
            Some("nosniff")
        );
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
    }

    fn array<'a>(json: &'a Value, key: &str) -> &'a Vec<Value> {
        json[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is not an array in {json}"))
    }

    /// Checks a series object: `time` of RFC 3339 UTC strings, every column
    /// as long, provenance and age; returns the number of instants.
    fn check_series(series: &Value, columns: &[&str], provenance: &str) -> usize {
        let times = array(series, "time");
        for t in times {
            let t = t.as_str().expect("a string");
            assert!(t.ends_with('Z'), "{t}");
            DateTime::parse_from_rfc3339(t).expect("RFC 3339");
        }
        for column in columns {
            let values = array(series, column);
            assert_eq!(values.len(), times.len(), "{column}");
            assert!(values.iter().all(|v| v.is_null() || v.is_f64()), "{column}");
        }
        assert_eq!(series["provenance"], provenance);
        assert_eq!(series["age_s"], 90);
        assert_eq!(series.as_object().map(|o| o.len()), Some(columns.len() + 3));
        times.len()
    }

    const WEATHER: [&str; 4] = [
        "temperature_2m",
        "shortwave_radiation",
        "cloud_cover",
        "wind_speed_10m",
    ];
    const SUPPLY: [&str; 4] = ["solar_mw", "wind_mw", "other_mw", "imports_mw"];

    #[tokio::test]
    async fn dashboard_in_estimation_mode() {
        let (status, headers, json) = get_json(app(estimation()), "/api/dashboard").await;
        assert_eq!(status, StatusCode::OK);
        assert_api_headers(&headers);
        assert_eq!(json["mode"], "estimation");
        assert_eq!(json["generated_at"], "2026-01-15T10:30:00Z");
        assert_eq!(
            json["site"],
            serde_json::json!({"name": "Paris", "latitude": 48.85, "longitude": 2.35, "timezone": "Europe/Paris"})
        );
        let n = check_series(&json["weather"], &WEATHER, "synthetic");
        assert!(n >= 168, "{n} hours");
        assert_eq!(json["weather"]["time"][0], "2026-01-12T23:00:00Z"); // local midnight, 2 days back
        assert_eq!(
            check_series(&json["demand"], &["demand_mw"], "synthetic"),
            n
        );
        assert_eq!(check_series(&json["supply"], &SUPPLY, "synthetic"), n);
        assert!(json["forecast"].is_null());
        assert!(json["breaker"].is_null());
        let notice = json["notice"]
            .as_str()
            .expect("a notice in estimation mode");
        assert!(notice.contains("connection failed"), "{notice}");
        // KPIs for the hour of the request, synthetic data: every value known.
        let kpis = &json["kpis"];
        assert!(matches!(
            kpis["status"].as_str(),
            Some("ok" | "warning" | "critical")
        ));
        assert_eq!(kpis["provenance"]["kind"], "synthetic");
        assert_eq!(kpis["demand_mw"]["at"], "2026-01-15T10:00:00Z");
        assert!(kpis["demand_mw"]["value"].as_f64().is_some_and(|v| v > 0.0));
        assert_eq!(kpis["data_freshness_s"]["value"], 90.0);
        for source in ["solar", "wind", "other", "imports"] {
            assert!(
                kpis["supply_by_source"][source]["value"].is_number(),
                "{source}"
            );
        }
        let keys: Vec<&str> = json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut expected = [
            "mode",
            "generated_at",
            "site",
            "kpis",
            "weather",
            "demand",
            "supply",
            "forecast",
            "breaker",
            "notice",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
    }

    #[tokio::test]
    async fn dashboard_in_nominal_mode_keeps_nulls() {
        let (status, _, json) = get_json(app(nominal()), "/api/dashboard").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["mode"], "nominal");
        assert!(json["notice"].is_null());
        let n = check_series(&json["weather"], &WEATHER, "live");
        assert_eq!(check_series(&json["demand"], &["demand_mw"], "live"), n);
        check_series(&json["supply"], &SUPPLY, "live");
        let temperature = array(&json["weather"], "temperature_2m");
        assert!(temperature[..n - 5].iter().all(Value::is_number));
        assert!(temperature[n - 5..].iter().all(Value::is_null));
        assert!(array(&json["weather"], "cloud_cover")[n - 1].is_null());
        assert!(array(&json["weather"], "wind_speed_10m")[n - 1].is_number());
        // Demand needs the temperature: missing where it is.
        assert!(array(&json["demand"], "demand_mw")[n - 1].is_null());
        assert!(array(&json["demand"], "demand_mw")[0].is_number());
    }

    #[tokio::test]
    async fn livez_and_readyz() {
        let (status, headers, json) = get_json(app(estimation()), "/livez").await;
        assert_eq!(status, StatusCode::OK);
        assert_api_headers(&headers);
        assert_eq!(json, serde_json::json!({"status": "ok"}));

        let (status, headers, json) = get_json(app(estimation()), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_api_headers(&headers);
        assert_eq!(json["status"], "ready");
        assert_eq!(json["mode"], "estimation");
        assert_eq!(json["degraded"], true);
        assert_eq!(json["reason"], "open-meteo: connection failed: refused");

        let (status, _, json) = get_json(app(nominal()), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json,
            serde_json::json!({"status": "ready", "mode": "nominal", "degraded": false, "reason": null})
        );
    }

    #[tokio::test]
    async fn unknown_paths_get_a_json_404() {
        for uri in [
            "/nope",
            "/api",
            "/api/dashboard/extra",
            "/api/predictions",
            "/%2e%2e/etc/passwd",
        ] {
            let (status, headers, json) = get_json(app(estimation()), uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert_api_headers(&headers);
            assert_eq!(json["error"]["code"], "not_found", "{uri}");
            assert!(
                json["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }

    #[tokio::test]
    async fn wrong_methods_get_a_json_405() {
        for (method, uri) in [
            (Method::POST, "/api/dashboard"),
            (Method::DELETE, "/livez"),
            (Method::PUT, "/"),
        ] {
            let (status, headers, body) = call(app(estimation()), method.clone(), uri).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert_api_headers(&headers);
            let allow = headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(allow.contains("GET"), "{allow}");
            let json: Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(json["error"]["code"], "method_not_allowed");
            assert_eq!(
                json["error"]["message"],
                format!("{method} is not allowed on {uri}")
            );
        }
    }

    #[tokio::test]
    async fn head_works_on_the_api() {
        let (status, _, body) = call(app(estimation()), Method::HEAD, "/api/dashboard").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn the_page_is_embedded_and_offline() {
        let (status, headers, body) = call(app(estimation()), Method::GET, "/").await;
        assert_eq!(status, StatusCode::OK);
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert_eq!(
            headers
                .get(header::X_CONTENT_TYPE_OPTIONS)
                .and_then(|v| v.to_str().ok()),
            Some("nosniff")
        );
        assert_eq!(
            headers
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
            Some("no-cache")
        );
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
        let page = String::from_utf8(body).expect("UTF-8");
        assert!(page.contains("Mode Estimation — données simulées"));
        assert!(page.contains("Estimation mode — simulated data"));
        assert!(page.contains("/api/dashboard"));
        // Nothing from outside: the only URL is the SVG namespace, no external script or style.
        let outside = page.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !outside.contains("http://")
                && !outside.contains("https://")
                && !outside.contains("//cdn")
        );
        assert!(!page.contains("<script src") && !page.contains("<link"));
    }

    #[tokio::test]
    async fn a_panicking_handler_gives_a_json_500() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ));
        let (status, headers, body) = call(app, Method::GET, "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            headers
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        let json: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(json["error"]["code"], "internal");
    }

    #[tokio::test]
    async fn the_snapshot_is_swapped_atomically() {
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(estimation()));
        let state = AppState::new(rx).with_clock(Arc::new(now));
        let app = router(state);
        let (_, _, before) = get_json(app.clone(), "/readyz").await;
        assert_eq!(before["mode"], "estimation");
        tx.send(Arc::new(nominal())).expect("a receiver");
        let (_, _, after) = get_json(app, "/readyz").await;
        assert_eq!(after["mode"], "nominal");
    }
}
