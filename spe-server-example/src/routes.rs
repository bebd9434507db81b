//! The router: routes and fallbacks, wrapped in the hardening stack
//! ([`layers`]).
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /` | the dashboard page (HTML, embedded) |
//! | `GET /api/dashboard` | the dashboard data (JSON) |
//! | `GET /api/events` | Server-Sent Events: `snapshot` on each new snapshot or predictions |
//! | `GET /api/export.csv` | what the dashboard shows, as CSV |
//! | `GET /api/incidents[?limit=N]` | the incident journal, newest first (JSON) |
//! | `GET /api/predictions` | the last good predictions, or 503 `no_predictions` |
//! | `POST /api/predictions/generate` | regenerate (token or loopback; rate limited) |
//! | `GET /api/openapi.json` | the OpenAPI document |
//! | `GET /livez` | `{"status":"ok"}` |
//! | `GET /readyz` | `{"status":"ready","mode":…,"degraded":…,"reason":…,"unavailable":[…],"predictions":…}` |
//! | `GET /metrics` | Prometheus metrics, OpenMetrics text format |
//! | `GET /api/charts/{name}.svg` | a chart of the dashboard, SVG ([`charts`]) |
//! | `GET /assets/{file}` | the page's scripts, styles and icon ([`assets`]) |
//! | anything else | 404, or 405 on a known path, with a JSON error body |

use axum::Router;
use axum::routing::{get, post};

use crate::error;
use crate::state::AppState;
use crate::{api, assets, charts, events, export, history, layers, openapi, predictions};

/// The application's router over `state`, hardened with the state's limits.
pub fn router(state: AppState) -> Router {
    let hardening = state.hardening().clone();
    let metrics = state.metrics().clone();
    let routes = Router::new()
        .route("/", get(api::index))
        .route("/api/dashboard", get(api::dashboard))
        .route("/api/events", get(events::events))
        .route("/api/export.csv", get(export::export_csv))
        .route("/api/incidents", get(api::incidents))
        .route("/api/history", get(history::history))
        .route("/api/predictions", get(predictions::latest))
        .route("/api/predictions/generate", post(predictions::generate))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/livez", get(api::livez))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/api/charts/{name}", get(charts::chart))
        .route("/assets/{file}", get(assets::asset))
        // After the routes: applies to the routes registered so far.
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::not_found)
        .with_state(state);
    layers::harden(routes, &hardening, metrics)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{Method, StatusCode, header};
    use chrono::DateTime;
    use serde_json::{Value, json};
    use spe_core::IncidentKind;

    use crate::test_support::{
        Behaviour, Rig, assert_api_headers, call, get_json, refreshed, rig_with,
    };

    fn array<'a>(json: &'a Value, key: &str) -> &'a Vec<Value> {
        json[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is not an array in {json}"))
    }

    fn keys(json: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        keys
    }

    fn sorted(mut names: Vec<&str>) -> Vec<&str> {
        names.sort_unstable();
        names
    }

    /// Checks a series object: `time` of RFC 3339 UTC strings, every column
    /// as long, provenance and age; returns the number of instants.
    fn check_series(series: &Value, columns: &[&str], provenance: &str, age_s: u64) -> usize {
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
        assert_eq!(series["age_s"], age_s);
        // Weather says its units; energy columns say MW in their names.
        let units = usize::from(series.get("units").is_some());
        if units == 1 {
            let names = keys(&series["units"]);
            assert_eq!(names, sorted(columns.to_vec()), "a unit for each column");
        }
        assert_eq!(
            series.as_object().map(|o| o.len()),
            Some(columns.len() + 3 + units)
        );
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
        let rig = refreshed(Behaviour::Refused).await;
        let (status, headers, json) = get_json(&rig.app, "/api/dashboard").await;
        assert_eq!(status, StatusCode::OK);
        assert_api_headers(&headers);
        assert_eq!(json["mode"], "estimation");
        assert_eq!(json["generated_at"], "2026-01-15T10:30:00Z");
        assert_eq!(
            json["site"],
            json!({"name": "Paris", "latitude": 48.85, "longitude": 2.35, "timezone": "Europe/Paris"})
        );
        // Ages are counted at the request: 90 s after the refresh.
        let n = check_series(&json["weather"], &WEATHER, "synthetic", 90);
        assert_eq!(n, 9 * 24, "2 past days and 7 days from today");
        assert_eq!(json["weather"]["time"][0], "2026-01-12T23:00:00Z"); // local midnight, 2 days back
        assert_eq!(
            check_series(&json["demand"], &["demand_mw"], "synthetic", 90),
            n
        );
        assert_eq!(check_series(&json["supply"], &SUPPLY, "synthetic", 90), n);
        assert!(json["forecast"].is_null());
        let notice = json["notice"]
            .as_str()
            .expect("a notice in estimation mode");
        assert!(notice.contains("connection refused"), "{notice}");
        let reason = json["degradation"]
            .as_str()
            .expect("a degradation in estimation mode");
        assert!(notice.contains(reason), "{notice} / {reason}");
        // One failed call: below the breaker's minimum, it stays closed.
        assert_eq!(
            json["breaker"],
            json!({"state": "closed", "retry_after_s": null, "failure_rate": 1.0, "window_calls": 1, "open_attempt": 0})
        );
        // It never was nominal, but the outage is an incident.
        assert_eq!(json["incident"], 1);
        assert!(json["last_live_at"].is_null());
        // KPIs for the hour of the request, synthetic data: every value known.
        let kpis = &json["kpis"];
        assert!(matches!(
            kpis["status"].as_str(),
            Some("ok" | "warning" | "critical")
        ));
        assert_eq!(kpis["provenance"]["kind"], "synthetic");
        assert_eq!(kpis["demand_mw"]["at"], "2026-01-15T10:00:00Z");
        assert!(kpis["demand_mw"]["value"].as_f64().is_some_and(|v| v > 0.0));
        // Never any live data: its age is unknown, and that is critical
        // (not the age of the estimate, which is always fresh).
        assert_eq!(
            kpis["data_freshness_s"],
            json!({"name": "data_freshness_s", "value": null, "unit": "s", "status": "critical", "at": null})
        );
        assert_eq!(kpis["status"], "critical");
        for source in ["solar", "wind", "other", "imports"] {
            assert!(
                kpis["supply_by_source"][source]["value"].is_number(),
                "{source}"
            );
        }
        assert_eq!(
            keys(&json),
            sorted(vec![
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
                "degradation",
                "incident",
                "last_live_at",
            ])
        );
    }

    #[tokio::test]
    async fn dashboard_in_nominal_mode_keeps_nulls() {
        let rig = refreshed(Behaviour::Live).await;
        let (status, _, json) = get_json(&rig.app, "/api/dashboard").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["mode"], "nominal");
        assert!(json["notice"].is_null());
        assert!(json["degradation"].is_null());
        assert!(json["incident"].is_null());
        assert_eq!(json["last_live_at"], "2026-01-15T10:30:00Z");
        assert_eq!(json["breaker"]["state"], "closed");
        assert_eq!(json["breaker"]["failure_rate"], 0.0);
        let n = check_series(&json["weather"], &WEATHER, "live", 90);
        assert_eq!(check_series(&json["demand"], &["demand_mw"], "live", 90), n);
        check_series(&json["supply"], &SUPPLY, "live", 90);
        assert_eq!(json["kpis"]["provenance"]["kind"], "live");
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
    async fn an_outage_opens_the_breaker_and_recovery_closes_the_incident() {
        let rig = refreshed(Behaviour::Live).await;
        rig.upstream.set(Behaviour::Unavailable);
        rig.service.refresh().await;

        let (_, _, json) = get_json(&rig.app, "/api/dashboard").await;
        assert_eq!(json["mode"], "estimation");
        assert_eq!(json["weather"]["provenance"], "synthetic");
        assert!(
            json["notice"].as_str().is_some_and(|n| n.contains("503")),
            "{}",
            json["notice"]
        );
        // One success, one failure: 50 %, the breaker opens for 30 s.
        assert_eq!(
            json["breaker"],
            json!({"state": "open", "retry_after_s": 30.0, "failure_rate": 0.5, "window_calls": 2, "open_attempt": 0})
        );
        assert_eq!(json["incident"], 1);
        assert_eq!(json["last_live_at"], "2026-01-15T10:30:00Z");

        let (_, _, ready) = get_json(&rig.app, "/readyz").await;
        assert_eq!(ready["degraded"], true);
        assert!(
            ready["reason"].as_str().is_some_and(|r| r.contains("503")),
            "{ready}"
        );

        let (_, _, listed) = get_json(&rig.app, "/api/incidents").await;
        let open = &listed["incidents"][0];
        assert_eq!(open["open"], true);
        assert!(open["end"].is_null());
        assert!(open["resolution"].is_null());
        assert_eq!(open["kind"], "upstream_5xx");
        assert_eq!(open["start"], "2026-01-15T10:31:30Z");
        assert_eq!(
            open["mode_changes"],
            json!([{"from": "nominal", "to": "estimation", "at": "2026-01-15T10:31:30Z"}])
        );

        // The data freshness is that of the last live data, fetched at 10:30.
        assert_eq!(
            json["kpis"]["data_freshness_s"]["value"], 90.0,
            "{}",
            json["kpis"]["data_freshness_s"]
        );
        assert_eq!(
            json["kpis"]["data_freshness_s"]["at"],
            "2026-01-15T10:30:00Z"
        );

        // While open, ten seconds on: the wait counts down, the incident
        // lasts, the live data ages.
        rig.clock.advance(Duration::from_secs(10));
        let (_, _, json) = get_json(&rig.app, "/api/dashboard").await;
        assert_eq!(json["breaker"]["retry_after_s"], 20.0);
        assert_eq!(json["kpis"]["data_freshness_s"]["value"], 100.0);
        let (_, _, listed) = get_json(&rig.app, "/api/incidents").await;
        assert_eq!(listed["incidents"][0]["duration_s"], 10);

        // The upstream heals; after the open wait, the probe brings nominal back.
        rig.upstream.set(Behaviour::Live);
        rig.clock.advance(Duration::from_secs(20));
        rig.service.refresh().await;
        let (_, _, json) = get_json(&rig.app, "/api/dashboard").await;
        assert_eq!(json["mode"], "nominal");
        // Live again: fresh.
        assert_eq!(json["kpis"]["data_freshness_s"]["value"], 0.0);
        assert!(json["incident"].is_null());
        assert_eq!(json["breaker"]["state"], "closed");
        assert_eq!(json["last_live_at"], "2026-01-15T10:32:00Z");

        let (_, _, listed) = get_json(&rig.app, "/api/incidents").await;
        assert_eq!(listed["journal_available"], true);
        let incidents = array(&listed, "incidents");
        assert_eq!(incidents.len(), 1, "{listed}");
        let closed = &incidents[0];
        assert_eq!(
            keys(closed),
            sorted(vec![
                "id",
                "component",
                "kind",
                "start",
                "end",
                "open",
                "duration_s",
                "mode_changes",
                "details",
                "resolution",
            ])
        );
        assert_eq!(closed["id"], 1);
        assert_eq!(closed["component"], "weather");
        assert_eq!(closed["open"], false);
        assert_eq!(closed["end"], "2026-01-15T10:32:00Z");
        assert_eq!(closed["duration_s"], 30);
        assert!(
            closed["details"]
                .as_str()
                .is_some_and(|d| d.contains("503")),
            "{closed}"
        );
        assert!(closed["resolution"].as_str().is_some_and(|r| !r.is_empty()));
        assert_eq!(
            closed["mode_changes"],
            json!([
                {"from": "nominal", "to": "estimation", "at": "2026-01-15T10:31:30Z"},
                {"from": "estimation", "to": "nominal", "at": "2026-01-15T10:32:00Z"},
            ])
        );
    }

    #[tokio::test]
    async fn readers_never_wait_on_a_hanging_upstream() {
        let rig = rig_with(Behaviour::Hang, true);
        let refresh = tokio::spawn({
            let service = rig.service.clone();
            async move { service.refresh().await }
        });
        // The refresh is stuck inside the breaker's 5 s timeout (manual clock).
        while rig.clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        for uri in ["/api/dashboard", "/readyz", "/api/incidents", "/livez"] {
            let (status, _, _) = call(&rig.app, Method::GET, uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
        }
        let (_, _, ready) = get_json(&rig.app, "/readyz").await;
        assert_eq!(ready["reason"], "no live data yet");
        rig.clock.advance(Duration::from_secs(5));
        refresh.await.expect("the refresh ends");
        let (_, _, ready) = get_json(&rig.app, "/readyz").await;
        assert!(
            ready["reason"]
                .as_str()
                .is_some_and(|r| r.contains("timed out")),
            "{ready}"
        );
        let (_, _, listed) = get_json(&rig.app, "/api/incidents").await;
        assert_eq!(listed["incidents"][0]["kind"], "upstream_timeout");
    }

    #[tokio::test]
    async fn livez_and_readyz() {
        let rig = refreshed(Behaviour::Refused).await;
        let (status, headers, json) = get_json(&rig.app, "/livez").await;
        assert_eq!(status, StatusCode::OK);
        assert_api_headers(&headers);
        assert_eq!(json, json!({"status": "ok"}));

        let (status, headers, json) = get_json(&rig.app, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_api_headers(&headers);
        assert_eq!(
            json,
            json!({"status": "ready", "mode": "estimation", "degraded": true, "reason": "open-meteo: connection failed: connection refused", "unavailable": [], "predictions": "none"})
        );

        // Before any refresh: ready at once, on the synthetic estimate.
        let fresh = rig_with(Behaviour::Live, false);
        let (status, _, json) = get_json(&fresh.app, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json,
            json!({"status": "ready", "mode": "estimation", "degraded": true, "reason": "no live data yet", "unavailable": [], "predictions": "none"})
        );
        // The handlers read each new snapshot as it is published.
        fresh.service.refresh().await;
        let (status, _, json) = get_json(&fresh.app, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json,
            json!({"status": "ready", "mode": "nominal", "degraded": false, "reason": null, "unavailable": [], "predictions": "none"})
        );
    }

    /// A journal with `n` closed incidents, one minute apart, and a rig over it.
    async fn rig_with_incidents(n: u32) -> Rig {
        let rig = rig_with(Behaviour::Live, true);
        let journal = rig.journal.clone().expect("a journal");
        let t0 = crate::test_support::t0();
        for i in 0..n {
            let start = t0 - chrono::Duration::minutes(i64::from(n - i));
            let id = journal
                .open_incident(
                    "weather",
                    IncidentKind::UpstreamTimeout,
                    start,
                    format!("#{i}"),
                )
                .expect("append");
            journal
                .close_incident(id, start + chrono::Duration::seconds(20), "recovered")
                .expect("append");
        }
        rig
    }

    #[tokio::test]
    async fn incidents_are_listed_newest_first() {
        let rig = rig_with_incidents(3).await;
        let (status, headers, json) = get_json(&rig.app, "/api/incidents").await;
        assert_eq!(status, StatusCode::OK);
        assert_api_headers(&headers);
        assert_eq!(keys(&json), ["incidents", "journal_available"]);
        let ids: Vec<&Value> = array(&json, "incidents").iter().map(|i| &i["id"]).collect();
        assert_eq!(ids, [3, 2, 1]);
        assert_eq!(
            json["incidents"][2],
            json!({
                "id": 1,
                "component": "weather",
                "kind": "upstream_timeout",
                "start": "2026-01-15T10:27:00Z",
                "end": "2026-01-15T10:27:20Z",
                "open": false,
                "duration_s": 20,
                "mode_changes": [],
                "details": "#0",
                "resolution": "recovered",
            })
        );
    }

    #[tokio::test]
    async fn incidents_take_a_limit() {
        let rig = rig_with_incidents(5).await;
        for (query, expected) in [
            ("?limit=2", vec![5, 4]),
            ("?limit=1", vec![5]),
            ("?limit=1000", vec![5, 4, 3, 2, 1]),
            ("?limit=3", vec![5, 4, 3]),
            ("", vec![5, 4, 3, 2, 1]),
        ] {
            let uri = format!("/api/incidents{query}");
            let (status, _, json) = get_json(&rig.app, &uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            let ids: Vec<u64> = array(&json, "incidents")
                .iter()
                .filter_map(|i| i["id"].as_u64())
                .collect();
            assert_eq!(ids, expected, "{uri}");
        }
    }

    #[tokio::test]
    async fn a_bad_limit_is_a_json_400() {
        let rig = rig_with_incidents(1).await;
        for query in [
            "limit=0",
            "limit=1001",
            "limit=-1",
            "limit=abc",
            "limit=",
            "limit=2.5",
            "limit=99999999999999999999999",
            "limit=1&limit=2",
            "limt=5",
        ] {
            let uri = format!("/api/incidents?{query}");
            let (status, headers, json) = get_json(&rig.app, &uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {json}");
            assert_api_headers(&headers);
            assert_eq!(json["error"]["code"], "bad_request", "{uri}");
            assert!(
                json["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{uri}: {json}"
            );
        }
        let (_, _, json) = get_json(&rig.app, "/api/incidents?limit=0").await;
        assert_eq!(
            json["error"]["message"],
            "limit must be a whole number from 1 to 1000, not \"0\""
        );
    }

    #[tokio::test]
    async fn without_a_journal_the_list_is_empty() {
        let rig = rig_with(Behaviour::Refused, false);
        rig.service.refresh().await;
        let (status, _, json) = get_json(&rig.app, "/api/incidents?limit=5").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json, json!({"incidents": [], "journal_available": false}));
        // A bad limit is still refused.
        let (status, _, _) = get_json(&rig.app, "/api/incidents?limit=0").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // The dashboard has no incident id to show.
        let (_, _, json) = get_json(&rig.app, "/api/dashboard").await;
        assert_eq!(json["mode"], "estimation");
        assert!(json["incident"].is_null());
    }

    #[tokio::test]
    async fn unknown_paths_get_a_json_404() {
        let rig = rig_with(Behaviour::Refused, false);
        for uri in [
            "/nope",
            "/api",
            "/api/dashboard/extra",
            "/api/incidents/1",
            "/api/predictions/latest",
            "/%2e%2e/etc/passwd",
        ] {
            let (status, headers, json) = get_json(&rig.app, uri).await;
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
        let rig = rig_with(Behaviour::Refused, false);
        for (method, uri) in [
            (Method::POST, "/api/dashboard"),
            (Method::DELETE, "/api/incidents"),
            (Method::DELETE, "/livez"),
            (Method::PUT, "/"),
        ] {
            let (status, headers, body) = call(&rig.app, method.clone(), uri).await;
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
        let rig = rig_with(Behaviour::Refused, true);
        for uri in ["/api/dashboard", "/api/incidents"] {
            let (status, _, body) = call(&rig.app, Method::HEAD, uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert!(body.is_empty(), "{uri}");
        }
    }

    #[tokio::test]
    async fn the_page_is_embedded_and_offline() {
        let rig = rig_with(Behaviour::Refused, false);
        let (status, headers, body) = call(&rig.app, Method::GET, "/").await;
        assert_eq!(status, StatusCode::OK);
        let header_of = |name| headers.get(name).and_then(|v| v.to_str().ok());
        assert!(
            header_of(header::CONTENT_TYPE).is_some_and(|t| t.starts_with("text/html")),
            "{headers:?}"
        );
        assert_eq!(header_of(header::X_CONTENT_TYPE_OPTIONS), Some("nosniff"));
        assert_eq!(header_of(header::CACHE_CONTROL), Some("no-cache"));
        assert_eq!(
            header_of(header::CONTENT_SECURITY_POLICY),
            Some(crate::api::PAGE_CSP)
        );
        let page = String::from_utf8(body).expect("UTF-8");
        assert!(page.contains("Mode Estimation"));
        assert!(page.contains(r#"id="breaker""#));
        assert!(page.contains(r#"id="incident""#));
        // Nothing from outside: the only URL is the SVG namespace.
        let outside = page.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !outside.contains("http://")
                && !outside.contains("https://")
                && !outside.contains("//cdn")
        );
        // No inline script (the CSP would block it): scripts come from /assets/.
        for (i, _) in page.match_indices("<script") {
            let tag = &page[i..page[i..].find('>').map_or(page.len(), |e| i + e)];
            assert!(tag.contains(r#"src="/assets/"#), "{tag}");
        }
    }

    #[tokio::test]
    async fn a_panicking_handler_gives_a_json_500() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = crate::layers::harden(
            axum::Router::new().route("/boom", axum::routing::get(boom)),
            &crate::Hardening::default(),
            std::sync::Arc::new(crate::metrics::Metrics::new()),
        );
        let (status, headers, body) = call(&app, Method::GET, "/boom").await;
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
}
