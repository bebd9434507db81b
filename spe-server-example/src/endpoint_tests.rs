//! Handler tests (`tower::ServiceExt::oneshot`) of the endpoints beyond the
//! dashboard's: predictions, regeneration (token, loopback, rate limit,
//! body limit), events, export, metrics, the OpenAPI document, and the
//! headers and JSON errors every answer carries.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use futures_util::StreamExt as _;
use serde_json::Value;
use spe_core::ManualClock;

use crate::rate_limit::RateLimiter;
use crate::test_support::{
    Behaviour, assert_api_headers, call, get_json, header_str, refreshed, rig_with, rig_with_state,
    send,
};

const REMOTE: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)),
    40000,
);
const LOCAL: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

fn from(app: &Router, peer: SocketAddr) -> Router {
    app.clone().layer(MockConnectInfo(peer))
}

fn generate(authorization: Option<&str>, body: Body) -> Request<Body> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/api/predictions/generate");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    request.body(body).expect("valid request")
}

/// A CSV download with fields separated by `delimiter`: its header row
/// and its rows.
fn csv_table(body: &[u8], delimiter: u8) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(body);
    let header = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader.records().map(|r| r.expect("a row")).collect();
    (header, rows)
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn without_predictions_the_api_answers_a_json_503() {
    let rig = refreshed(Behaviour::Refused).await;
    let (status, headers, body) = get_json(&rig.app, "/api/predictions").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_api_headers(&headers);
    assert_eq!(body["error"]["code"], "no_predictions");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn regeneration_needs_the_token() {
    let rig = rig_with_state(Behaviour::Refused, false, |s| {
        s.with_admin_token(Some("s3cret".into()))
            .with_rate_limiter(RateLimiter::new(1000))
    });
    let app = from(&rig.app, REMOTE);
    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cre"),
        Some("s3cret"),
        Some("Basic czNjcmV0"),
    ] {
        let (status, headers, body) = send(&app, generate(authorization, Body::empty())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_api_headers(&headers);
        assert!(
            header_str(&headers, header::WWW_AUTHENTICATE).is_some_and(|v| v.starts_with("Bearer"))
        );
        assert_eq!(json(&body)["error"]["code"], "unauthorized");
    }
    // Loopback needs it too once a token is configured.
    let (status, _, _) = send(&from(&rig.app, LOCAL), generate(None, Body::empty())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The right token gets through to the engine (none in this version).
    let (status, headers, body) = send(&app, generate(Some("Bearer s3cret"), Body::empty())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_api_headers(&headers);
    assert_eq!(
        json(&body)["error"]["code"],
        "prediction_engine_unavailable"
    );
}

#[tokio::test]
async fn without_a_token_only_loopback_may_regenerate() {
    let rig = rig_with_state(Behaviour::Refused, false, |s| {
        s.with_rate_limiter(RateLimiter::new(1000))
    });
    let (status, _, body) = send(
        &from(&rig.app, REMOTE),
        generate(Some("Bearer x"), Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json(&body)["error"]["code"], "forbidden");
    // An unknown peer is not trusted.
    let (status, _, _) = send(&rig.app, generate(None, Body::empty())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = send(&from(&rig.app, LOCAL), generate(None, Body::empty())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json(&body)["error"]["code"],
        "prediction_engine_unavailable"
    );
}

#[tokio::test]
async fn cross_site_and_rebound_regenerations_are_refused() {
    use std::sync::atomic::Ordering;
    let engine = std::sync::Arc::new(Engine::default());
    let rig = chain_rig(&engine);
    let app = from(&rig.app, LOCAL);
    let post = |headers: &[(&str, &str)]| {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/api/predictions/generate");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::empty()).expect("valid request")
    };
    // What the reviewer's page sent: a "simple" request, no preflight.
    for (headers, code) in [
        (
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
                ("content-type", "text/plain"),
            ][..],
            "cross_site",
        ),
        (
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
            ],
            "cross_site",
        ),
        (
            &[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")],
            "cross_site",
        ),
        // DNS rebinding: evil.example re-pointed at 127.0.0.1, a
        // same-origin request as the browser sees it.
        (
            &[
                ("host", "evil.example:8080"),
                ("origin", "http://evil.example:8080"),
                ("sec-fetch-site", "same-origin"),
            ],
            "forbidden",
        ),
    ] {
        let (status, headers_out, body) = send(&app, post(headers)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
        assert_api_headers(&headers_out);
        assert_eq!(json(&body)["error"]["code"], code, "{headers:?}");
    }
    assert_eq!(engine.runs.load(Ordering::SeqCst), 0, "nothing was run");
    // The dashboard's own page passes.
    let (status, _, body) = send(
        &app,
        post(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(engine.runs.load(Ordering::SeqCst), 1);
    // Reads are not refused, whatever their origin.
    let request = Request::builder()
        .uri("/api/dashboard")
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .expect("valid request");
    let (status, _, _) = send(&app, request).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_configured_cors_origin_may_regenerate_with_the_token() {
    let engine = std::sync::Arc::new(Engine::default());
    let rig = chain_rig_with(&engine, |s| {
        s.with_admin_token(Some("t".into()))
            .with_hardening(crate::Hardening {
                cors_origins: vec!["https://ops.example.com".into()],
                ..crate::Hardening::default()
            })
    });
    let app = from(&rig.app, REMOTE);
    let post = |origin: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/predictions/generate")
            .header("host", "spe.internal:8080")
            .header("origin", origin)
            .header("sec-fetch-site", "cross-site")
            .header(header::AUTHORIZATION, "Bearer t")
            .body(Body::empty())
            .expect("valid request")
    };
    let (status, headers, body) = send(&app, post("https://ops.example.com")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        header_str(&headers, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("https://ops.example.com")
    );
    // Another origin, even with the token.
    let (status, _, body) = send(&app, post("https://evil.example")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json(&body)["error"]["code"], "cross_site");
}

#[tokio::test]
async fn regeneration_is_rate_limited_per_client() {
    let clock = ManualClock::new();
    let rig = rig_with_state(Behaviour::Refused, false, |s| {
        s.with_admin_token(Some("t".into()))
            .with_rate_limiter(RateLimiter::with_clock(2, clock.clone()))
    });
    let app = from(&rig.app, REMOTE);
    // Wrong tokens are limited: no guessing at full speed.
    for _ in 0..2 {
        let (status, _, _) = send(&app, generate(Some("Bearer guess"), Body::empty())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) = send(&app, generate(None, Body::empty())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_api_headers(&headers);
    assert_eq!(header_str(&headers, header::RETRY_AFTER), Some("30"));
    assert_eq!(json(&body)["error"]["code"], "too_many_requests");
    // They do not use up the budget of the same client with the token.
    for _ in 0..2 {
        let (status, _, _) = send(&app, generate(Some("Bearer t"), Body::empty())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    let (status, headers, _) = send(&app, generate(Some("Bearer t"), Body::empty())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header_str(&headers, header::RETRY_AFTER), Some("30"));
    // Another client is not held back.
    let (status, _, _) = send(
        &from(&rig.app, LOCAL),
        generate(Some("Bearer t"), Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    clock.advance(Duration::from_secs(30));
    let (status, _, _) = send(&app, generate(Some("Bearer t"), Body::empty())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, _) = send(&app, generate(Some("Bearer guess"), Body::empty())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_malformed_regeneration_does_not_spend_the_budget() {
    let clock = ManualClock::new();
    let rig = rig_with_state(Behaviour::Refused, false, |s| {
        s.with_admin_token(Some("t".into()))
            .with_rate_limiter(RateLimiter::with_clock(1, clock.clone()))
    });
    let app = from(&rig.app, REMOTE);
    // A body, then a query, where the call takes neither: 400, nothing run.
    for _ in 0..3 {
        let (status, _, body) = send(&app, generate(Some("Bearer t"), Body::from("{}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json(&body)["error"]["code"], "bad_request");
    }
    let mut request = generate(Some("Bearer t"), Body::empty());
    *request.uri_mut() = "/api/predictions/generate?horizon=5".parse().unwrap();
    let (status, _, _) = send(&app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The one regeneration a minute is still there for the right call…
    let (status, _, _) = send(&app, generate(Some("Bearer t"), Body::empty())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // …and spent by it.
    let (status, _, _) = send(&app, generate(Some("Bearer t"), Body::empty())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn oversized_bodies_get_a_json_413() {
    let rig = rig_with_state(Behaviour::Refused, false, |s| {
        s.with_admin_token(Some("t".into()))
            .with_rate_limiter(RateLimiter::new(1000))
            .with_hardening(crate::Hardening {
                max_body_bytes: 1024,
                ..crate::Hardening::default()
            })
    });
    let app = from(&rig.app, REMOTE);
    // Announced by Content-Length: refused before the handler runs.
    let mut request = generate(Some("Bearer t"), Body::from(vec![b'x'; 4096]));
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, 4096.into());
    let (status, headers, body) = send(&app, request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_api_headers(&headers);
    assert_eq!(json(&body)["error"]["code"], "payload_too_large");
    // Streamed without a length: refused when read.
    let chunks = futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(bytes_of(512))));
    let (status, headers, body) =
        send(&app, generate(Some("Bearer t"), Body::from_stream(chunks))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_api_headers(&headers);
    assert_eq!(json(&body)["error"]["code"], "payload_too_large");
    // A small one is refused too, as no body is taken (400), but not as
    // too large.
    let (status, _, body) = send(&app, generate(Some("Bearer t"), Body::from("{}"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["error"]["code"], "bad_request");
    // On a GET route too.
    let request = Request::builder()
        .method(Method::GET)
        .uri("/api/dashboard")
        .header(header::CONTENT_LENGTH, 4096)
        .body(Body::from(vec![b'x'; 4096]))
        .expect("valid request");
    let (status, _, body) = send(&app, request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(&body)["error"]["code"], "payload_too_large");
}

fn bytes_of(n: usize) -> axum::body::Bytes {
    axum::body::Bytes::from(vec![b'y'; n])
}

#[tokio::test]
async fn new_routes_refuse_wrong_methods_with_a_json_405() {
    let rig = rig_with(Behaviour::Refused, false);
    for (method, uri, allowed) in [
        (Method::GET, "/api/predictions/generate", "POST"),
        (Method::POST, "/api/predictions", "GET"),
        (Method::POST, "/api/export.csv", "GET"),
        (Method::DELETE, "/api/events", "GET"),
        (Method::PUT, "/metrics", "GET"),
        (Method::POST, "/api/openapi.json", "GET"),
    ] {
        let (status, headers, body) = call(&rig.app, method.clone(), uri).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_api_headers(&headers);
        assert!(header_str(&headers, header::ALLOW).is_some_and(|a| a.contains(allowed)));
        assert_eq!(json(&body)["error"]["code"], "method_not_allowed");
    }
}

#[tokio::test]
async fn the_export_is_the_dashboard_as_csv() {
    let rig = refreshed(Behaviour::Refused).await;
    let (status, headers, body) = call(&rig.app, Method::GET, "/api/export.csv").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header_str(&headers, header::CONTENT_TYPE),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        header_str(&headers, header::CONTENT_DISPOSITION),
        Some(r#"attachment; filename="spe-export-2026-01-15.csv""#)
    );
    assert_eq!(
        header_str(&headers, header::CACHE_CONTROL),
        Some("no-store")
    );
    let (header_row, rows) = csv_table(&body, b',');
    assert_eq!(header_row, crate::export::header_row());
    let (_, _, dashboard) = get_json(&rig.app, "/api/dashboard").await;
    let times = dashboard["weather"]["time"].as_array().expect("times");
    assert_eq!(rows.len(), times.len());
    let column = |name: &str| header_row.iter().position(|h| h == name).expect(name);
    for (row, time) in rows.iter().zip(times) {
        assert_eq!(Some(&row[column("time_utc")]), time.as_str());
        assert_eq!(&row[column("mode")], "estimation");
        assert_eq!(&row[column("weather_provenance")], "synthetic");
        assert_eq!(&row[column("energy_provenance")], "synthetic");
        assert_eq!(&row[column("forecast_mean")], "");
    }
    // The values are the dashboard's.
    let i = 30;
    let demand: f64 = rows[i][column("demand_mw")].parse().expect("a number");
    assert_eq!(Some(demand), dashboard["demand"]["demand_mw"][i].as_f64());
    let temperature: f64 = rows[i][column("temperature_2m")].parse().expect("a number");
    assert_eq!(
        Some(temperature),
        dashboard["weather"]["temperature_2m"][i].as_f64()
    );
    // In the French dialect: the same rows, `;` between fields, decimal
    // commas, a byte-order mark.
    let (status, _, fr) = call(&rig.app, Method::GET, "/api/export.csv?locale=fr").await;
    assert_eq!(status, StatusCode::OK);
    let fr = String::from_utf8(fr).expect("UTF-8");
    let fr = fr.strip_prefix('\u{feff}').expect("a byte-order mark");
    let (fr_header, fr_rows) = csv_table(fr.as_bytes(), b';');
    assert_eq!(fr_header, header_row);
    assert_eq!(fr_rows.len(), rows.len());
    let fr_temperature = &fr_rows[i][column("temperature_2m")];
    assert_eq!(
        fr_temperature,
        rows[i][column("temperature_2m")].replace('.', ",")
    );
    assert_eq!(
        &fr_rows[i][column("time_utc")],
        &rows[i][column("time_utc")]
    );
    // It takes no other parameter: one asked for is refused, not ignored.
    for uri in [
        "/api/export.csv?format=json",
        "/api/export.csv?from=2026-01-01T00:00:00Z",
        "/api/export.csv?locale=de",
    ] {
        let (status, _, body) = get_json(&rig.app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("unknown field") || m.contains("unknown variant")),
            "{body}"
        );
    }
}

/// The next SSE event of `stream`, skipping keep-alive comments.
async fn next_event(
    stream: &mut (impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin),
) -> Option<(String, Value)> {
    let mut text = String::new();
    loop {
        let chunk = stream.next().await?.expect("a chunk");
        text.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        if let Some(end) = text.find("\n\n") {
            let frame = text[..end].to_owned();
            text.drain(..end + 2);
            // Comments and keep-alive pings carry no news.
            if frame.starts_with(':') || frame.lines().any(|l| l == "event: ping") {
                continue;
            }
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::to_owned)
                    .unwrap_or_default()
            };
            let data: Value = serde_json::from_str(&field("data: ")).expect("JSON data");
            return Some((field("event: "), data));
        }
    }
}

/// A quiet stream sends `ping` events the page can see (comments are
/// hidden from scripts), so it can tell a frozen server from a quiet one.
#[tokio::test(start_paused = true)]
async fn a_quiet_event_stream_pings() {
    let rig = rig_with(Behaviour::Live, false);
    let response = tower::ServiceExt::oneshot(
        rig.app.clone(),
        Request::builder()
            .uri("/api/events")
            .body(Body::empty())
            .expect("request"),
    )
    .await
    .expect("infallible");
    let mut stream = response.into_body().into_data_stream();
    let (name, _) = next_event(&mut stream)
        .await
        .expect("the snapshot on connect");
    assert_eq!(name, "snapshot");
    // Nothing happens: the paused clock runs to the keep-alive.
    let before = tokio::time::Instant::now();
    let chunk = stream.next().await.expect("a chunk").expect("bytes");
    let frame = String::from_utf8(chunk.to_vec()).expect("UTF-8");
    // With data: a browser dispatches no event whose data is empty.
    assert!(
        frame.lines().any(|l| l == "event: ping") && frame.lines().any(|l| l == "data: {}"),
        "{frame:?}"
    );
    assert_eq!(before.elapsed(), crate::events::KEEP_ALIVE);
}

#[tokio::test]
async fn events_follow_the_snapshots_and_end_at_shutdown() {
    let rig = rig_with(Behaviour::Live, false);
    assert_eq!(rig.state.metrics().event_streams(), 0);
    let response = tower::ServiceExt::oneshot(
        rig.app.clone(),
        Request::builder()
            .uri("/api/events")
            .body(Body::empty())
            .expect("request"),
    )
    .await
    .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_str(response.headers(), header::CONTENT_TYPE),
        Some("text/event-stream")
    );
    assert_eq!(
        header_str(response.headers(), header::CACHE_CONTROL),
        Some("no-cache")
    );
    let mut stream = response.into_body().into_data_stream();
    // Counted while open, in the metrics too.
    assert_eq!(rig.state.metrics().event_streams(), 1);
    let (_, _, metrics) = call(&rig.app, Method::GET, "/metrics").await;
    let metrics = String::from_utf8(metrics).expect("UTF-8");
    assert!(
        metrics.lines().any(|l| l == "spe_event_streams 1"),
        "{metrics}"
    );

    // On connect: the current snapshot.
    let (name, data) = next_event(&mut stream).await.expect("a first event");
    assert_eq!(name, "snapshot");
    assert_eq!(
        data,
        serde_json::json!({"mode": "estimation", "generated_at": "2026-01-15T10:30:00Z", "predictions_made_at": null})
    );
    // A refresh publishes a new snapshot: live data, nominal.
    rig.clock.advance(Duration::from_secs(60));
    rig.service.refresh().await;
    let (name, data) = next_event(&mut stream).await.expect("a second event");
    assert_eq!(name, "snapshot");
    assert_eq!(data["mode"], "nominal");
    assert_eq!(data["generated_at"], "2026-01-15T10:31:00Z");
    // Shutdown ends the stream.
    rig.state.stop_streams();
    assert!(next_event(&mut stream).await.is_none());
    drop(stream);
    assert_eq!(rig.state.metrics().event_streams(), 0);
}

#[tokio::test]
async fn metrics_count_requests_and_show_the_state() {
    let rig = refreshed(Behaviour::Refused).await;
    for uri in [
        "/api/dashboard",
        "/api/dashboard",
        "/nope",
        "/api/incidents?limit=0",
    ] {
        let _ = call(&rig.app, Method::GET, uri).await;
    }
    let (status, headers, body) = call(&rig.app, Method::GET, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).expect("UTF-8");
    // Labelled as what it is: OpenMetrics (a `# EOF` end, counters typed
    // without their `_total` suffix), which Prometheus would misparse as
    // its 0.0.4 text format.
    assert_eq!(
        header_str(&headers, header::CONTENT_TYPE),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.lines()
            .any(|l| l == "# TYPE spe_http_requests counter"),
        "{text}"
    );
    for line in [
        r#"spe_http_requests_total{route="/api/dashboard",method="GET",status="2xx"} 2"#,
        r#"spe_http_requests_total{route="unmatched",method="GET",status="4xx"} 1"#,
        r#"spe_http_requests_total{route="/api/incidents",method="GET",status="4xx"} 1"#,
        r#"spe_mode{mode="estimation"} 1"#,
        r#"spe_breaker_state{state="closed"} 1"#,
        "spe_breaker_failure_rate 1.0",
        "spe_open_incidents 1.0",
        "spe_journal_available 1",
        "spe_weather_age_seconds 90.0",
        "spe_predictions_available 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

/// The paths of the router, read from `routes.rs` (every `.route("…"`).
fn routed_paths() -> Vec<String> {
    let source = include_str!("routes.rs");
    let source = &source[..source.find("#[cfg(test)]").unwrap_or(source.len())];
    source
        .match_indices(".route(\"")
        .filter_map(|(i, m)| {
            let rest = &source[i + m.len()..];
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .collect()
}

#[test]
fn every_route_is_in_the_openapi_document() {
    let doc: Value = serde_json::from_str(crate::openapi::document()).expect("JSON");
    let paths = doc["paths"].as_object().expect("paths");
    let routed = routed_paths();
    assert!(routed.len() >= 11, "{routed:?}");
    for path in &routed {
        assert!(
            paths.contains_key(path),
            "{path} is routed but not documented"
        );
    }
    for path in paths.keys() {
        assert!(routed.contains(path), "{path} is documented but not routed");
    }
    assert_eq!(doc["openapi"], "3.1.0");
}

/// The schema the document gives for `method path` answering `status` as
/// `content_type`, resolvable on its own (the components beside it).
fn response_schema(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
) -> Value {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]
        [content_type]["schema"];
    assert!(
        schema.is_object(),
        "no schema for {method} {path} {status} {content_type}"
    );
    let mut schema = schema.clone();
    schema["components"] = doc["components"].clone();
    schema
}

fn assert_valid(schema: &Value, instance: &Value, what: &str) {
    let validator =
        jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("{what}: bad schema: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(5)
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

#[tokio::test]
async fn live_answers_match_the_openapi_document() {
    let doc: Value = serde_json::from_str(crate::openapi::document()).expect("JSON");
    // Estimation mode with an incident, then nominal: both shapes.
    let rig = refreshed(Behaviour::Unavailable).await;
    let app = from(&rig.app, REMOTE);
    let cases: Vec<(Method, &str, u16)> = vec![
        (Method::GET, "/api/dashboard", 200),
        (Method::GET, "/api/incidents", 200),
        (Method::GET, "/api/incidents?limit=0", 400),
        (Method::GET, "/readyz", 200),
        (Method::GET, "/livez", 200),
        (Method::GET, "/api/predictions", 503),
        (Method::POST, "/api/predictions/generate", 403),
        (Method::DELETE, "/api/dashboard", 405),
        (Method::GET, "/api/openapi.json", 200),
    ];
    let mut checked = 0;
    for round in 0..2 {
        for (method, uri, status) in &cases {
            let (got, headers, body) = call(&app, method.clone(), uri).await;
            assert_eq!(got.as_u16(), *status, "{method} {uri}");
            let content_type = header_str(&headers, header::CONTENT_TYPE).unwrap_or("");
            assert!(
                content_type.starts_with("application/json"),
                "{method} {uri}"
            );
            let path = uri.split('?').next().unwrap_or(uri);
            // A 405 is documented on the methods the path has.
            let documented = if *status == 405 {
                "get".to_owned()
            } else {
                method.as_str().to_lowercase()
            };
            let schema = response_schema(&doc, &documented, path, *status, "application/json");
            assert_valid(
                &schema,
                &json(&body),
                &format!("{method} {uri} (round {round})"),
            );
            checked += 1;
        }
        rig.upstream.set(Behaviour::Live);
        rig.clock.advance(Duration::from_secs(3600));
        rig.service.refresh().await;
    }
    assert_eq!(checked, 2 * cases.len());

    // Text answers: the right content types.
    for (uri, content_type) in [
        ("/", "text/html"),
        ("/metrics", "application/openmetrics-text"),
        ("/api/export.csv", "text/csv"),
    ] {
        let (status, headers, _) = call(&app, Method::GET, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(
            doc["paths"][uri]["get"]["responses"]["200"]["content"][content_type].is_object(),
            "{uri}"
        );
        assert!(
            header_str(&headers, header::CONTENT_TYPE).is_some_and(|t| t.starts_with(content_type)),
            "{uri}"
        );
    }
    // The event data.
    let schema = response_schema(&doc, "get", "/api/events", 200, "text/event-stream");
    let event = serde_json::to_value(crate::events::SnapshotEvent::new(
        &rig.service.snapshot(),
        None,
    ))
    .expect("JSON");
    assert_valid(&schema, &event, "an event");
    // A 404 anywhere has the error body.
    let (_, _, body) = call(&app, Method::GET, "/nowhere").await;
    let schema = response_schema(&doc, "get", "/api/predictions", 503, "application/json");
    assert_valid(&schema, &json(&body), "a 404");
}

#[tokio::test]
async fn the_schema_catches_a_wrong_answer() {
    // The validation above could not pass by accident.
    let doc: Value = serde_json::from_str(crate::openapi::document()).expect("JSON");
    let rig = refreshed(Behaviour::Refused).await;
    let (_, _, mut dashboard) = get_json(&rig.app, "/api/dashboard").await;
    let schema = response_schema(&doc, "get", "/api/dashboard", 200, "application/json");
    assert_valid(&schema, &dashboard, "the dashboard");
    dashboard["mode"] = "sleeping".into();
    let validator = jsonschema::validator_for(&schema).expect("a schema");
    assert!(!validator.is_valid(&dashboard));
    dashboard["mode"] = "nominal".into();
    dashboard["weather"]["extra"] = Value::Array(vec![]);
    assert!(!validator.is_valid(&dashboard));
}

/// A predictor that counts its runs, can be held until released, and
/// fails on demand.
#[derive(Debug)]
struct Engine {
    runs: std::sync::atomic::AtomicUsize,
    hold: tokio::sync::Semaphore,
    held: std::sync::atomic::AtomicBool,
    fail: std::sync::atomic::AtomicBool,
    /// The first hour of demand of the last request.
    first_demand: std::sync::Mutex<Option<f64>>,
    /// Told at each run's start.
    entered: tokio::sync::Notify,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            runs: Default::default(),
            hold: tokio::sync::Semaphore::new(0),
            held: Default::default(),
            fail: Default::default(),
            first_demand: Default::default(),
            entered: tokio::sync::Notify::new(),
        }
    }
}

#[async_trait::async_trait]
impl spe_core::Predictor for Engine {
    fn name(&self) -> String {
        "test-engine".into()
    }

    async fn predict(
        &self,
        request: &spe_core::PredictionRequest,
    ) -> Result<spe_core::Forecast, spe_core::PredictorError> {
        use std::sync::atomic::Ordering;
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.entered.notify_one();
        *self
            .first_demand
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = request.history.first().copied();
        if self.held.load(Ordering::SeqCst) {
            let _permit = self.hold.acquire().await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(spe_core::PredictorError::crashed(
                "exit status 1",
                "Traceback: boom",
            ));
        }
        let model = spe_core::SeasonalNaive::default();
        let forecast = spe_core::DynFit::fit_dyn(&model, &request.model_history())
            .and_then(|fitted| fitted.predict(request.horizon, &request.levels, None))
            .map_err(|e| spe_core::PredictorError::bad_output(e.to_string()))?;
        Ok(forecast.renamed("test-engine"))
    }
}

fn chain_rig(engine: &std::sync::Arc<Engine>) -> crate::test_support::Rig {
    chain_rig_with(engine, |s| s)
}

fn chain_rig_with(
    engine: &std::sync::Arc<Engine>,
    state: impl FnOnce(crate::AppState) -> crate::AppState,
) -> crate::test_support::Rig {
    let chain = spe_core::PredictionChain::builder()
        .primary(engine.clone())
        .fallback(std::sync::Arc::new(spe_core::SeasonalNaive::default()))
        .build();
    rig_with_state(Behaviour::Refused, true, |s| {
        state(
            s.with_predictions(chain)
                .with_rate_limiter(RateLimiter::new(1000)),
        )
    })
}

#[tokio::test]
async fn a_forced_regeneration_reads_the_recorded_history_as_the_background_runs_do() {
    let engine = std::sync::Arc::new(Engine::default());
    let history = crate::history::History::in_memory();
    let rig = chain_rig_with(&engine, |s| s.with_history(history.clone()));
    rig.service.refresh().await;
    let now = rig.service.now();
    let hour =
        chrono::DurationRound::duration_trunc(now, chrono::TimeDelta::hours(1)).expect("hour");
    let first = crate::forecasting::history_start(rig.service.site(), hour).expect("a start");
    // Recorded live weeks ago: outside the snapshot, which reaches back
    // two days only.
    assert!(
        rig.service
            .snapshot()
            .energy
            .axis()
            .index_of(first)
            .is_none()
    );
    history
        .store()
        .record_observations(&[spe_core::Observation::new(
            "demand_mw",
            first,
            4321.0,
            spe_core::Provenance::Live,
        )])
        .expect("recorded");
    let (status, _, body) = send(&from(&rig.app, LOCAL), generate(None, Body::empty())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        *engine.first_demand.lock().expect("not poisoned"),
        Some(4321.0),
        "the recorded hour, not the generator's"
    );
}

#[tokio::test]
async fn regeneration_refuses_a_query_or_a_body_it_would_ignore() {
    use std::sync::atomic::Ordering;
    let engine = std::sync::Arc::new(Engine::default());
    let rig = chain_rig(&engine);
    let app = from(&rig.app, LOCAL);
    let post = |uri: &str, body: Body| {
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .body(body)
            .expect("valid request")
    };
    for (uri, body, says) in [
        (
            "/api/predictions/generate?horizon=5",
            Body::empty(),
            "takes no query parameters (got \"horizon=5\")",
        ),
        (
            "/api/predictions/generate?force",
            Body::empty(),
            "takes no query parameters (got \"force\")",
        ),
        (
            "/api/predictions/generate",
            Body::from(r#"{"horizon": 5}"#),
            "takes no request body (got 14 bytes)",
        ),
        (
            "/api/predictions/generate?horizon=5",
            Body::from("x"),
            "takes no query parameters",
        ),
    ] {
        let (status, headers, body) = send(&app, post(uri, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_api_headers(&headers);
        let error = json(&body);
        assert_eq!(error["error"]["code"], "bad_request", "{uri}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{uri}: {message}");
    }
    assert_eq!(engine.runs.load(Ordering::SeqCst), 0, "nothing was run");
    // A long query is not echoed back.
    let long = format!("/api/predictions/generate?{}", "a".repeat(500));
    let (status, _, body) = send(&app, post(&long, Body::empty())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!String::from_utf8_lossy(&body).contains("aaaa"));
    // A bare `?` is no parameter: it regenerates.
    let (status, _, body) = send(&app, post("/api/predictions/generate?", Body::empty())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(engine.runs.load(Ordering::SeqCst), 1);
    // The 400 is the documented one.
    let doc: Value = serde_json::from_str(crate::openapi::document()).expect("JSON");
    let (_, _, body) = send(
        &app,
        post("/api/predictions/generate?horizon=5", Body::empty()),
    )
    .await;
    let schema = response_schema(
        &doc,
        "post",
        "/api/predictions/generate",
        400,
        "application/json",
    );
    assert_valid(&schema, &json(&body), "a 400 of generate");
}

#[tokio::test]
async fn regenerated_predictions_are_served_everywhere() {
    let engine = std::sync::Arc::new(Engine::default());
    let rig = chain_rig(&engine);
    rig.service.refresh().await;
    let app = from(&rig.app, LOCAL);
    // None yet.
    let (status, _, _) = get_json(&app, "/api/predictions").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    let (status, headers, body) = send(&app, generate(None, Body::empty())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_api_headers(&headers);
    let made = json(&body);
    assert_eq!(made["tier"], "primary");
    // The upstream is refused: estimation mode, so the engine's predictions
    // were made from synthetic history and must not pass for live ones.
    assert_eq!(rig.service.snapshot().mode, spe_core::Mode::Estimation);
    assert_eq!(made["provenance"], "synthetic");
    assert_eq!(made["inputs"], "synthetic");
    assert_eq!(made["model"], "test-engine");
    assert_eq!(made["failures"], serde_json::json!([]));
    assert!(
        made["notice"]
            .as_str()
            .is_some_and(|n| n.contains("estimated (synthetic) history")),
        "{}",
        made["notice"]
    );
    let forecast = &made["forecast"];
    assert_eq!(
        forecast["time"].as_array().map(Vec::len),
        Some(crate::forecasting::HORIZON)
    );
    // The current hour first (the rig's clock: 10:30).
    assert_eq!(forecast["time"][0], "2026-01-15T10:00:00Z");
    for column in ["mean", "lower_80", "upper_80", "lower_95", "upper_95"] {
        let values = forecast[column].as_array().expect(column);
        assert_eq!(values.len(), crate::forecasting::HORIZON, "{column}");
        assert!(values.iter().all(Value::is_number), "{column}");
    }
    assert_eq!(engine.runs.load(std::sync::atomic::Ordering::SeqCst), 1);

    let (status, _, served) = get_json(&app, "/api/predictions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served["made_at"], made["made_at"]);
    assert_eq!(served["forecast"], made["forecast"]);

    // The dashboard shows it as a series, the export row by row.
    let (_, _, dashboard) = get_json(&app, "/api/dashboard").await;
    let series = &dashboard["forecast"];
    assert_eq!(series["tier"], "primary");
    assert_eq!(series["provenance"], "synthetic");
    assert_eq!(series["inputs"], "synthetic");
    assert_eq!(series["mean"], forecast["mean"]);
    assert_eq!(series["time"], forecast["time"]);
    let (_, _, csv) = call(&app, Method::GET, "/api/export.csv").await;
    let text = String::from_utf8(csv).expect("UTF-8");
    let row = text
        .lines()
        .find(|l| l.starts_with("2026-01-15T10:00:00Z,"))
        .expect("the current hour");
    let mean = forecast["mean"][0].as_f64().expect("a number");
    assert!(row.contains(&format!(",{mean},")), "{row}");
    // Weather, energy and forecast all estimated.
    assert!(
        row.ends_with(",estimation,synthetic,synthetic,synthetic"),
        "{row}"
    );
    let before = text
        .lines()
        .find(|l| l.starts_with("2026-01-15T09:00:00Z,"))
        .expect("the hour before");
    assert!(before.ends_with(",synthetic,synthetic,"), "{before}");

    // Metrics know the tier.
    let (_, _, metrics) = call(&app, Method::GET, "/metrics").await;
    let metrics = String::from_utf8(metrics).expect("UTF-8");
    assert!(
        metrics.contains("spe_prediction_tier{tier=\"primary\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("spe_predictions_available 1"));

    // All of it matches the OpenAPI document.
    let doc: Value = serde_json::from_str(crate::openapi::document()).expect("JSON");
    for (path, method, instance) in [
        ("/api/predictions", "get", &served),
        ("/api/predictions/generate", "post", &made),
        ("/api/dashboard", "get", &dashboard),
    ] {
        let schema = response_schema(&doc, method, path, 200, "application/json");
        assert_valid(&schema, instance, path);
    }
}

#[tokio::test]
async fn a_failing_engine_falls_back_and_says_so() {
    let engine = std::sync::Arc::new(Engine::default());
    engine.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let rig = chain_rig(&engine);
    let app = from(&rig.app, LOCAL);
    let (status, _, body) = send(&app, generate(None, Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    let made = json(&body);
    assert_eq!(made["tier"], "fallback");
    assert_eq!(made["provenance"], "fallback");
    assert_eq!(made["failures"][0]["tier"], "primary");
    assert_eq!(made["failures"][0]["kind"], "model_crash");
    assert_eq!(made["failures"][0]["predictor"], "test-engine");
    assert!(
        made["notice"]
            .as_str()
            .is_some_and(|n| n.contains("fallback")),
        "{made}"
    );
    let doc: Value = serde_json::from_str(crate::openapi::document()).expect("JSON");
    let schema = response_schema(
        &doc,
        "post",
        "/api/predictions/generate",
        200,
        "application/json",
    );
    assert_valid(&schema, &made, "a fallback answer");
}

// One thread: the calls run only while this test yields, each until it
// waits on the run, so all twenty have joined it once the engine is called.
#[tokio::test(flavor = "current_thread")]
async fn concurrent_regenerations_run_the_engine_once() {
    use std::sync::atomic::Ordering;
    let engine = std::sync::Arc::new(Engine::default());
    engine.held.store(true, Ordering::SeqCst);
    let rig = chain_rig(&engine);
    let app = from(&rig.app, LOCAL);
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { send(&app, generate(None, Body::empty())).await })
        })
        .collect();
    // Every call waits on the one run in flight.
    while engine.runs.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    engine.hold.add_permits(1);
    let mut made_at = Vec::new();
    for call in calls {
        let (status, _, body) = call.await.expect("no panic");
        assert_eq!(status, StatusCode::OK);
        made_at.push(json(&body)["made_at"].clone());
    }
    assert_eq!(engine.runs.load(Ordering::SeqCst), 1);
    assert!(made_at.windows(2).all(|w| w[0] == w[1]), "{made_at:?}");
}

#[tokio::test]
async fn a_regeneration_runs_to_its_end_when_the_client_hangs_up() {
    use std::sync::atomic::Ordering;
    let engine = std::sync::Arc::new(Engine::default());
    // The chain on a clock of the test's, so that each run's `made_at` is known.
    let clock = ManualClock::new();
    let t0 = crate::test_support::t0();
    let chain = spe_core::PredictionChain::builder()
        .primary(engine.clone())
        .fallback(std::sync::Arc::new(spe_core::SeasonalNaive::default()))
        .clock(clock.clone(), t0)
        .build();
    let rig = rig_with_state(Behaviour::Refused, true, |s| {
        s.with_predictions(chain.clone())
            .with_rate_limiter(RateLimiter::new(1000))
    });
    let app = from(&rig.app, LOCAL);
    let (status, _, body) = send(&app, generate(None, Body::empty())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["made_at"], "2026-01-15T10:30:00Z");
    // The first run's start, told and not waited for: taken.
    engine.entered.notified().await;

    // A minute on, a second regeneration, held inside the engine.
    clock.advance(Duration::from_secs(60));
    engine.held.store(true, Ordering::SeqCst);
    let mut latest = chain.subscribe();
    latest.borrow_and_update();
    let mut call = Box::pin(send(&app, generate(None, Body::empty())));
    tokio::select! {
        answer = &mut call => panic!("answered while the engine is held: {answer:?}"),
        () = engine.entered.notified() => {}
    }
    assert_eq!(engine.runs.load(Ordering::SeqCst), 2);
    // The client hangs up: its answer is dropped before the engine ends.
    drop(call);
    engine.hold.add_permits(1);
    // The run still ends and its predictions replace the first (a guard
    // against a hang, not a timing assertion).
    tokio::time::timeout(
        Duration::from_secs(60),
        latest.wait_for(|l| l.as_ref().is_some_and(|r| r.predictions.made_at > t0)),
    )
    .await
    .expect("the run ended although nobody waited for it")
    .expect("the chain lives");
    let (status, _, served) = get_json(&app, "/api/predictions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served["made_at"], "2026-01-15T10:31:00Z");
    assert_eq!(served["tier"], "primary");
    assert_eq!(served["model"], "test-engine");
    assert_eq!(engine.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn readiness_tells_whether_predictions_are_pending() {
    use std::sync::atomic::Ordering;
    let engine = std::sync::Arc::new(Engine::default());
    engine.held.store(true, Ordering::SeqCst);
    let rig = chain_rig(&engine);
    rig.service.refresh().await;
    let app = from(&rig.app, LOCAL);
    let (_, _, ready) = get_json(&app, "/readyz").await;
    assert_eq!(ready["predictions"], "none", "{ready}");
    let call = tokio::spawn({
        let app = app.clone();
        async move { send(&app, generate(None, Body::empty())).await }
    });
    engine.entered.notified().await;
    // A run in flight, nothing to serve yet: pending, and not a degradation
    // of its own (the reason is the estimation mode's only).
    let (status, _, ready) = get_json(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["predictions"], "pending", "{ready}");
    assert_eq!(
        ready["reason"],
        "open-meteo: connection failed: connection refused"
    );
    engine.hold.add_permits(1);
    let (status, _, _) = call.await.expect("no panic");
    assert_eq!(status, StatusCode::OK);
    let (_, _, ready) = get_json(&app, "/readyz").await;
    assert_eq!(ready["predictions"], "available", "{ready}");
}

/// Day-ahead predictions for the last day before `now`'s hour, made two days
/// before it: the demand of `snapshot` times 1.10 on even hours and 0.98 on
/// odd ones, so their error is 10 % and 2 % by turns: a MAPE of 6 %.
fn day_old_predictions(
    snapshot: &spe_core::WeatherSnapshot,
    now: chrono::DateTime<chrono::Utc>,
) -> spe_core::Predictions {
    use chrono::{DurationRound as _, Timelike as _};
    let hour = now
        .duration_trunc(chrono::Duration::hours(1))
        .expect("an hour");
    let start = hour - chrono::Duration::hours(48);
    let energy = &snapshot.energy;
    let mean: Vec<f64> = (0..48)
        .map(|i| {
            let t = start + chrono::Duration::hours(i);
            if i < 24 {
                return 1000.0; // before the last day: not judged
            }
            let actual = energy
                .axis()
                .index_of(t)
                .and_then(|j| energy.demand_mw()[j])
                .expect("a demand for each hour of the last day");
            actual * if t.hour() % 2 == 0 { 1.10 } else { 0.98 }
        })
        .collect();
    spe_core::Predictions {
        start,
        step_s: 3600,
        forecast: spe_core::Forecast::new("day-old", mean, vec![]).expect("valid"),
        made_at: start,
        tier: spe_core::Tier::Primary,
        intervals_from: None,
        inputs: spe_core::Provenance::Live,
    }
}

/// The value of the metric line `name value`.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

#[tokio::test]
async fn the_forecast_error_of_the_last_day_is_served_everywhere() {
    let archive = crate::archive::ForecastArchive::in_memory();
    let rig = rig_with_state(Behaviour::Refused, false, |s| {
        s.with_archive(archive.clone())
    });
    rig.service.refresh().await;
    let now = rig.service.now();

    // An empty archive: unknown, and no worry (status ok).
    let (status, _, dashboard) = get_json(&rig.app, "/api/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        dashboard["kpis"]["forecast_error_pct"],
        serde_json::json!({"name": "forecast_error_pct", "value": null, "unit": "%", "status": "ok", "at": null})
    );
    let (_, _, body) = call(&rig.app, Method::GET, "/metrics").await;
    let text = String::from_utf8(body).expect("UTF-8");
    assert!(
        text.lines().any(|l| l == "spe_forecast_error_pct NaN"),
        "{text}"
    );

    // Day-old predictions in the archive: a MAPE of 6 %, a warning (5 to 10 %).
    let snapshot = rig.service.snapshot();
    let recorded = archive
        .record(&day_old_predictions(&snapshot, now), now)
        .expect("recorded");
    assert!(recorded);
    // The same second: the dashboard is not the cached one of before.
    let (_, _, dashboard) = get_json(&rig.app, "/api/dashboard").await;
    let kpi = &dashboard["kpis"]["forecast_error_pct"];
    let value = kpi["value"].as_f64().expect("a value");
    assert!((value - 6.0).abs() < 1e-9, "{kpi}");
    assert_eq!(kpi["unit"], "%");
    assert_eq!(kpi["status"], "warning");
    assert_eq!(kpi["at"], "2026-01-15T09:00:00Z", "the last hour judged");
    assert!(matches!(
        dashboard["kpis"]["status"].as_str(),
        Some("warning" | "critical")
    ));
    // It matches the OpenAPI document with a value too.
    let doc: Value = serde_json::from_str(crate::openapi::document()).expect("JSON");
    let schema = response_schema(&doc, "get", "/api/dashboard", 200, "application/json");
    assert_valid(&schema, &dashboard, "the dashboard with a forecast error");

    // The metrics' gauge.
    let (_, _, body) = call(&rig.app, Method::GET, "/metrics").await;
    let text = String::from_utf8(body).expect("UTF-8");
    let gauge = metric(&text, "spe_forecast_error_pct").expect("the gauge");
    assert!((gauge - 6.0).abs() < 1e-9, "{text}");

    // The export: each hour's day-ahead forecast and its error; their mean
    // over the last day is the KPI.
    let (status, _, body) = call(&rig.app, Method::GET, "/api/export.csv").await;
    assert_eq!(status, StatusCode::OK);
    let (header_row, rows) = csv_table(&body, b',');
    let column = |name: &str| header_row.iter().position(|h| h == name).expect(name);
    let row_at = |time: &str| {
        rows.iter()
            .find(|r| &r[column("time_utc")] == time)
            .unwrap_or_else(|| panic!("no row at {time}"))
    };
    let number = |row: &csv::StringRecord, name: &str| -> f64 {
        row[column(name)]
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let even = row_at("2026-01-15T08:00:00Z");
    let odd = row_at("2026-01-15T09:00:00Z");
    assert!(
        (number(even, "forecast_day_ahead_mw") / number(even, "demand_mw") - 1.10).abs() < 1e-9
    );
    assert!((number(even, "forecast_day_ahead_error_pct") - 10.0).abs() < 1e-9);
    assert!((number(odd, "forecast_day_ahead_error_pct") - 2.0).abs() < 1e-9);
    let errors: Vec<f64> = rows
        .iter()
        .filter(|r| {
            let t = &r[column("time_utc")];
            ("2026-01-14T10:00:00Z".."2026-01-15T10:00:00Z").contains(&t)
        })
        .map(|r| number(r, "forecast_day_ahead_error_pct"))
        .collect();
    assert_eq!(errors.len(), 24);
    let mean = errors.iter().sum::<f64>() / 24.0;
    assert!((mean - value).abs() < 1e-9);
    // Before the archived predictions' day, and from the current hour on
    // (less than a day ahead of them), nothing.
    for time in ["2026-01-13T09:00:00Z", "2026-01-15T10:00:00Z"] {
        let row = row_at(time);
        assert_eq!(&row[column("forecast_day_ahead_mw")], "", "{time}");
        assert_eq!(&row[column("forecast_day_ahead_error_pct")], "", "{time}");
    }
}

/// A run of the chain every five minutes, each with its own level: the
/// export's day-ahead column (from the archive) and the history's day-ahead
/// series (from the store, which keeps every run) name the same run for
/// each hour.
#[tokio::test]
async fn the_export_and_the_history_agree_on_each_hours_day_ahead_forecast() {
    use chrono::DurationRound as _;
    let archive = crate::archive::ForecastArchive::in_memory();
    let history = crate::history::History::in_memory();
    let rig = rig_with_state(Behaviour::Refused, false, |s| {
        s.with_archive(archive.clone())
            .with_history(history.clone())
    });
    rig.service.refresh().await;
    let now = rig.service.now();
    let hour = now
        .duration_trunc(chrono::Duration::hours(1))
        .expect("an hour");
    // From 34 h to 26 h before now's hour: 96 runs.
    for (k, minutes) in (26 * 60..34 * 60).rev().step_by(5).enumerate() {
        let made_at = hour - chrono::Duration::minutes(minutes);
        let start = made_at
            .duration_trunc(chrono::Duration::hours(1))
            .expect("an hour")
            + chrono::Duration::hours(1);
        let level = 1000.0 + k as f64;
        let run = spe_core::Predictions {
            start,
            step_s: 3600,
            forecast: spe_core::Forecast::new("run", vec![level; 48], vec![]).expect("valid"),
            made_at,
            tier: spe_core::Tier::Primary,
            intervals_from: None,
            inputs: spe_core::Provenance::Live,
        };
        history.store().record_predictions(&run).expect("recorded");
        archive.record(&run, made_at).expect("archived");
    }
    assert!(archive.len() < 20, "thinned: {} of 96 kept", archive.len());

    let (status, _, body) = get_json(&rig.app, "/api/history?predictions=day_ahead").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let times: Vec<String> = body["time"]
        .as_array()
        .expect("times")
        .iter()
        .map(|t| t.as_str().expect("a time").to_owned())
        .collect();
    let values: Vec<f64> = body["value"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v.as_f64().expect("a value"))
        .collect();

    let (from, to) = (
        body["from"].as_str().expect("from").to_owned(),
        body["to"].as_str().expect("to").to_owned(),
    );
    let (from, to) = (&from, &to);
    let (status, _, csv_body) = call(&rig.app, Method::GET, "/api/export.csv").await;
    assert_eq!(status, StatusCode::OK);
    let (header_row, rows) = csv_table(&csv_body, b',');
    let column = |name: &str| header_row.iter().position(|h| h == name).expect(name);
    let mut compared = 0;
    for row in &rows {
        let exported = &row[column("forecast_day_ahead_mw")];
        let in_history = times
            .iter()
            .position(|t| t == &row[column("time_utc")])
            .map(|i| values[i]);
        match in_history {
            Some(v) => {
                assert_eq!(exported.parse::<f64>().ok(), Some(v), "at {}", &row[0]);
                compared += 1;
            }
            // Within the range the history covered: none there either.
            None if &row[0] >= from.as_str() && &row[0] < to.as_str() => {
                assert_eq!(exported, "", "at {}", &row[0]);
            }
            None => {}
        }
    }
    assert!(compared >= 8, "{compared} hours compared");
}
