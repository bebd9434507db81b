//! The Open-Meteo client against a fake Open-Meteo over real HTTP on loopback.
//!
//! No test here depends on timing: the ones that expect a timeout talk to a
//! server that never finishes its answer, the others have a generous timeout.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use spe_core::{
    Country, DataSource, Fault, OpenMeteo, OpenMeteoConfig, Provenance, Site, SourceError,
    WeatherFrame, WeatherVariable, Window,
};
use spe_tests::{Behavior, FakeOpenMeteo, fixture, unused_local_addr};

/// Timeout for tests that expect an answer: long, so a loaded machine passes.
const GENEROUS: Duration = Duration::from_secs(20);
/// Timeout for tests that expect a timeout from a server that never finishes.
const SHORT: Duration = Duration::from_millis(300);

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid time")
}

fn client_for(base_url: &str, timeout: Duration) -> OpenMeteo {
    OpenMeteo::new(OpenMeteoConfig {
        base_url: base_url.to_owned(),
        timeout,
        ..OpenMeteoConfig::default()
    })
    .expect("valid config")
}

fn client(fake: &FakeOpenMeteo) -> OpenMeteo {
    client_for(&fake.base_url(), GENEROUS)
}

fn vancouver() -> Site {
    Site::new(
        "Vancouver",
        49.25,
        -123.12,
        "America/Vancouver",
        Country::None,
    )
    .expect("valid site")
}

fn window(now: DateTime<Utc>, past_days: u16, forecast_days: u16) -> Window {
    Window::new(now, past_days, forecast_days).expect("valid window")
}

fn winter_window() -> Window {
    window(utc(2026, 1, 15, 10, 30), 0, 3)
}

async fn fetch_err(client: &OpenMeteo, site: &Site) -> SourceError {
    match client.fetch(site, &winter_window()).await {
        Ok(frame) => panic!("expected an error, got a frame of {} hours", frame.len()),
        Err(e) => e,
    }
}

#[tokio::test]
async fn horizon_nulls_become_missing_values() {
    let fake = FakeOpenMeteo::start_with(Behavior::fixture("paris_72h_last_23_null.json")).await;
    let frame = client(&fake)
        .fetch(&Site::paris(), &winter_window())
        .await
        .expect("fixture parses");
    assert_eq!(frame.len(), 72);
    assert_eq!(frame.provenance(), Provenance::Live);
    for (name, column) in [
        ("temperature_2m", frame.temperature_2m()),
        ("shortwave_radiation", frame.shortwave_radiation()),
        ("cloud_cover", frame.cloud_cover()),
        ("wind_speed_10m", frame.wind_speed_10m()),
    ] {
        assert_eq!(column.iter().filter(|v| v.is_none()).count(), 23, "{name}");
        assert!(column[..49].iter().all(Option::is_some), "{name}");
        assert!(column[49..].iter().all(Option::is_none), "{name}");
    }
    // 2026-01-15T00:00 in Paris (UTC+1) is 2026-01-14T23:00Z.
    let axis = frame.axis();
    assert_eq!(axis.start(), utc(2026, 1, 14, 23, 0));
    assert_eq!(axis.time(71), utc(2026, 1, 17, 22, 0));
    assert_eq!(
        frame
            .series(WeatherVariable::Temperature2m)
            .last_valid()
            .map(|(t, _)| t),
        Some(utc(2026, 1, 16, 23, 0))
    );
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn an_answer_for_other_days_is_refused_and_a_short_one_kept() {
    // The fixture is 15–17 January in Paris.
    let fake = FakeOpenMeteo::start_with(Behavior::fixture("paris_72h_last_23_null.json")).await;
    let client = client(&fake);
    // Asked on 1 March: the answer is weeks old (a cache, a wrong clock).
    let err = client
        .fetch(&Site::paris(), &window(utc(2026, 3, 1, 9, 0), 0, 3))
        .await
        .expect_err("stale answer");
    assert_eq!(err.fault(), Fault::Upstream, "{err:?}");
    assert!(
        matches!(&err, SourceError::InvalidData { source_name, message }
            if source_name == "open-meteo"
                && message.contains("2026-01-14 23:00 to 2026-01-17 23:00")
                && message.contains("current hour 2026-03-01 09:00")),
        "{err}"
    );
    // Asked at 23:00 UTC on 17 January, the hour after the last one served.
    let err = client
        .fetch(&Site::paris(), &window(utc(2026, 1, 17, 23, 0), 0, 1))
        .await
        .expect_err("ends before now");
    assert!(matches!(err, SourceError::InvalidData { .. }), "{err:?}");
    // Asked for one past day more than it has: the hours it has are kept.
    let frame = client
        .fetch(&Site::paris(), &window(utc(2026, 1, 15, 10, 30), 1, 3))
        .await
        .expect("covers now");
    assert_eq!(frame.len(), 72);
    assert_eq!(frame.axis().start(), utc(2026, 1, 14, 23, 0));
}

#[tokio::test]
async fn an_answer_for_another_place_is_refused() {
    // The fixture is for Paris's grid cell (48.86, 2.34): fine for Paris,
    // not for Lyon (390 km away), nor once the coordinates are swapped.
    let paris = String::from_utf8(fixture("paris_72h_last_23_null.json")).expect("UTF-8");
    let fake = FakeOpenMeteo::start_with(Behavior::json(200, paris.clone())).await;
    let lyon = Site::new("Lyon", 45.76, 4.84, "Europe/Paris", Default::default()).expect("site");
    let err = client(&fake)
        .fetch(&lyon, &winter_window())
        .await
        .expect_err("Paris's weather for Lyon");
    assert_eq!(err.fault(), Fault::Upstream, "{err:?}");
    assert!(
        matches!(&err, SourceError::InvalidData { message, .. }
            if message.contains("393 km from Lyon") && message.contains("another place")),
        "{err}"
    );
    let swapped = paris
        .replacen(r#""latitude":48.86"#, r#""latitude":2.34"#, 1)
        .replacen(r#""longitude":2.3399997"#, r#""longitude":48.86"#, 1);
    assert_ne!(swapped, paris, "the fixture's coordinates were replaced");
    let fake = FakeOpenMeteo::start_with(Behavior::json(200, swapped)).await;
    let err = client(&fake)
        .fetch(&Site::paris(), &winter_window())
        .await
        .expect_err("swapped coordinates");
    assert!(matches!(err, SourceError::InvalidData { .. }), "{err}");
}

#[tokio::test]
async fn an_answer_in_another_time_zone_is_refused_not_shifted() {
    // The fixture is Paris in January, UTC+1. The same body claiming other
    // offsets would put every value hours off.
    let paris = String::from_utf8(fixture("paris_72h_last_23_null.json")).expect("UTF-8");
    assert!(paris.contains(r#""utc_offset_seconds":3600"#));
    for (offset, zone) in [(7200, "Europe/Paris"), (-36000, "GMT"), (0, "GMT")] {
        let body = paris
            .replace(
                r#""utc_offset_seconds":3600"#,
                &format!(r#""utc_offset_seconds":{offset}"#),
            )
            .replace(
                r#""timezone":"Europe/Paris""#,
                &format!(r#""timezone":"{zone}""#),
            );
        let fake = FakeOpenMeteo::start_with(Behavior::json(200, body)).await;
        let err = client(&fake)
            .fetch(&Site::paris(), &winter_window())
            .await
            .expect_err("another zone's offset");
        assert_eq!(err.fault(), Fault::Upstream, "{err:?}");
        assert!(
            matches!(&err, SourceError::InvalidData { message, .. }
                if message.contains(&format!("utc_offset_seconds = {offset} is not the offset of Europe/Paris now (3600 s)"))),
            "{err}"
        );
    }
    // The right offset parses (the fixture as it is), dated by the
    // window's clock (January here), not this machine's.
    let fake = FakeOpenMeteo::start_with(Behavior::json(200, paris)).await;
    let frame = client(&fake)
        .fetch(&Site::paris(), &winter_window())
        .await
        .expect("Paris's own answer");
    assert_eq!(frame.produced_at(), winter_window().now());
}

#[tokio::test]
async fn vancouver_local_times_are_shifted_by_eight_hours() {
    let fake = FakeOpenMeteo::start_with(Behavior::fixture("vancouver_48h.json")).await;
    let frame = client(&fake)
        .fetch(&vancouver(), &window(utc(2026, 1, 15, 20, 0), 0, 2))
        .await
        .expect("fixture parses");
    assert_eq!(frame.len(), 48);
    // Local 2026-01-15T00:00 at UTC-8 is 08:00 UTC.
    assert_eq!(frame.axis().start(), utc(2026, 1, 15, 8, 0));
    assert_eq!(frame.axis().end(), utc(2026, 1, 17, 8, 0));
    assert_eq!(
        frame
            .temperature_2m()
            .iter()
            .filter(|v| v.is_none())
            .count(),
        0
    );
    let request = fake.last_request().expect("one request");
    assert_eq!(request.query_param("timezone"), Some("America/Vancouver"));
}

#[tokio::test]
async fn the_request_carries_the_real_query() {
    let fake = FakeOpenMeteo::start().await;
    let now = utc(2026, 1, 15, 10, 30);
    fake.set_now(Some(now));
    let client = OpenMeteo::new(OpenMeteoConfig {
        base_url: format!("{}/", fake.base_url()),
        timeout: GENEROUS,
        user_agent: Some("spe-tests/1.0".into()),
        extra_hourly: vec!["relative_humidity_2m".into()],
    })
    .expect("valid config");
    let w = window(now, 2, 5);
    let frame = client
        .fetch(&Site::paris(), &w)
        .await
        .expect("healthy answer");

    let request = fake.last_request().expect("one request");
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/v1/forecast");
    assert_eq!(request.query_param("latitude"), Some("48.85"));
    assert_eq!(request.query_param("longitude"), Some("2.35"));
    assert_eq!(
        request.query_param("hourly"),
        Some("temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m,relative_humidity_2m")
    );
    assert_eq!(request.query_param("past_days"), Some("2"));
    assert_eq!(request.query_param("forecast_days"), Some("5"));
    assert_eq!(request.query_param("timezone"), Some("Europe/Paris"));
    assert_eq!(request.query_param("wind_speed_unit"), Some("ms"));
    assert_eq!(request.query_param("timeformat"), Some("iso8601"));
    assert_eq!(request.header("user-agent"), Some("spe-tests/1.0"));
    assert_eq!(
        fake.last_request_path().as_deref(),
        Some(
            client
                .url_for(&Site::paris(), &w)
                .as_str()
                .trim_start_matches(&fake.base_url())
        )
    );

    // The healthy fake answers for exactly the window asked.
    assert_eq!(frame.axis(), w.axis(&Site::paris()).expect("axis"));
    assert_eq!(frame.len(), 7 * 24);
    let humidity = frame.extra("relative_humidity_2m").expect("extra kept");
    assert_eq!(humidity.len(), frame.len());
}

#[tokio::test]
async fn healthy_answers_match_the_window_in_any_zone() {
    let fake = FakeOpenMeteo::start().await;
    let client = client(&fake);
    let kolkata = Site::new("Pune", 18.52, 73.86, "Asia/Kolkata", Country::None).expect("site");
    for (site, now) in [
        (Site::paris(), utc(2026, 1, 15, 10, 30)),
        (Site::paris(), utc(2026, 7, 14, 23, 30)),
        (vancouver(), utc(2026, 1, 15, 3, 0)),
        (kolkata, utc(2026, 3, 1, 20, 0)),
    ] {
        fake.set_now(Some(now));
        let w = window(now, 1, 2);
        let frame = client.fetch(&site, &w).await.expect("healthy answer");
        assert_eq!(
            frame.axis(),
            w.axis(&site).expect("axis"),
            "{} at {now}",
            site.name()
        );
        assert_eq!(missing(&frame), 0);
    }
}

/// Missing values over the four core columns.
fn missing(frame: &WeatherFrame) -> usize {
    [
        frame.temperature_2m(),
        frame.shortwave_radiation(),
        frame.cloud_cover(),
        frame.wind_speed_10m(),
    ]
    .iter()
    .map(|c| c.iter().filter(|v| v.is_none()).count())
    .sum()
}

#[tokio::test]
async fn an_unknown_variable_is_a_400_with_open_meteo_reason() {
    let reason =
        "Cannot initialize WeatherVariable from invalid String value tempeture_2m for key hourly";
    let fake = FakeOpenMeteo::start_with(Behavior::error_json(400, reason)).await;
    let err = fetch_err(&client(&fake), &Site::paris()).await;
    match &err {
        SourceError::Status {
            source_name,
            status,
            reason: got,
        } => {
            assert_eq!(source_name, "open-meteo");
            assert_eq!(*status, 400);
            assert_eq!(got, reason);
        }
        other => panic!("expected Status 400, got {other:?}"),
    }
    assert_eq!(err.fault(), Fault::Request);
    assert_eq!(err.status(), Some(400));

    // The healthy fake refuses a misspelt extra the same way.
    fake.set_behavior(Behavior::Healthy);
    let misspelt = OpenMeteo::new(OpenMeteoConfig {
        base_url: fake.base_url(),
        timeout: GENEROUS,
        extra_hourly: vec!["tempeture_2m".into()],
        ..OpenMeteoConfig::default()
    })
    .expect("valid config");
    let err = fetch_err(&misspelt, &Site::paris()).await;
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains(reason), "{err}");
}

#[tokio::test]
async fn rate_limiting_is_a_429_and_the_callers_fault() {
    let fake = FakeOpenMeteo::start_with(Behavior::rate_limited()).await;
    let err = fetch_err(&client(&fake), &Site::paris()).await;
    assert!(
        matches!(&err, SourceError::Status { status: 429, reason, .. }
            if reason == "Minutely API request limit exceeded. Please try again in one minute."),
        "{err:?}"
    );
    assert_eq!(err.fault(), Fault::Request);
}

#[tokio::test]
async fn html_gateway_pages_are_upstream_failures_on_one_line() {
    let fake = FakeOpenMeteo::start_with(Behavior::bad_gateway_html()).await;
    let client = client(&fake);
    let err = fetch_err(&client, &Site::paris()).await;
    match &err {
        SourceError::Status { status, reason, .. } => {
            assert_eq!(*status, 502);
            assert!(reason.contains("502 Bad Gateway"), "{reason:?}");
            assert!(
                !reason.contains('\n') && !reason.contains('\r') && !reason.contains('<'),
                "{reason:?}"
            );
            assert!(reason.chars().count() <= 201, "{reason:?}");
        }
        other => panic!("expected Status 502, got {other:?}"),
    }
    assert_eq!(err.fault(), Fault::Upstream);

    fake.set_behavior(Behavior::gateway_timeout_html());
    let err = fetch_err(&client, &Site::paris()).await;
    assert_eq!(err.status(), Some(504));
    assert_eq!(err.fault(), Fault::Upstream);

    fake.set_behavior(Behavior::service_unavailable_json());
    let err = fetch_err(&client, &Site::paris()).await;
    assert!(
        matches!(&err, SourceError::Status { status: 503, reason, .. } if reason == "Service temporarily unavailable"),
        "{err:?}"
    );
    assert_eq!(err.fault(), Fault::Upstream);

    fake.set_behavior(Behavior::service_unavailable_html());
    let err = fetch_err(&client, &Site::paris()).await;
    assert_eq!(err.status(), Some(503));

    // A long plain-text error body is cut to about 200 characters.
    fake.set_behavior(Behavior::Fixed {
        status: 500,
        content_type: "text/plain".into(),
        body: format!("boom\n{}", "x".repeat(10_000)).into_bytes(),
    });
    match fetch_err(&client, &Site::paris()).await {
        SourceError::Status {
            status: 500,
            reason,
            ..
        } => {
            assert!(reason.starts_with("boom x"), "{reason:?}");
            assert!(reason.chars().count() <= 201, "{}", reason.len());
        }
        other => panic!("expected Status 500, got {other:?}"),
    }
}

fn assert_cut_off(err: &SourceError) {
    assert_eq!(err.fault(), Fault::Upstream, "{err:?}");
    assert!(
        matches!(err, SourceError::Truncated { source_name, .. } if source_name == "open-meteo"),
        "a body cut off mid-way should be Truncated, got {err:?}"
    );
}

#[tokio::test]
async fn a_body_cut_in_the_middle_is_truncated() {
    let body = fixture("paris_72h_last_23_null.json");
    let fake = FakeOpenMeteo::start_with(Behavior::CutBody { body: body.clone() }).await;
    let client = client(&fake);
    assert_cut_off(&fetch_err(&client, &Site::paris()).await);

    fake.set_behavior(Behavior::CutChunked { body });
    assert_cut_off(&fetch_err(&client, &Site::paris()).await);
}

#[tokio::test]
async fn a_response_that_never_finishes_times_out() {
    let fake = FakeOpenMeteo::start_with(Behavior::Hang).await;
    let client = client_for(&fake.base_url(), SHORT);
    let err = fetch_err(&client, &Site::paris()).await;
    assert!(
        matches!(&err, SourceError::Timeout { after, .. } if *after == SHORT),
        "no answer at all: {err:?}"
    );
    assert!(err.is_timeout());
    assert_eq!(err.fault(), Fault::Upstream);

    // Headers and half the body, then silence: the timeout covers the body too.
    fake.set_behavior(Behavior::StallBody {
        body: fixture("paris_72h_last_23_null.json"),
    });
    let err = fetch_err(&client, &Site::paris()).await;
    assert!(err.is_timeout(), "stalled body: {err:?}");
    assert_eq!(err.fault(), Fault::Upstream);
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let addr = unused_local_addr();
    let client = client_for(&format!("http://{addr}"), GENEROUS);
    let err = fetch_err(&client, &Site::paris()).await;
    assert!(
        matches!(&err, SourceError::Connect { source_name, .. } if source_name == "open-meteo"),
        "{err:?}"
    );
    assert_eq!(err.fault(), Fault::Upstream);
}

#[tokio::test]
async fn closed_and_reset_connections_are_connect_errors() {
    let fake = FakeOpenMeteo::start_with(Behavior::Closed).await;
    let client = client(&fake);
    let err = fetch_err(&client, &Site::paris()).await;
    assert!(
        matches!(err, SourceError::Connect { .. }),
        "closed: {err:?}"
    );
    assert_eq!(err.fault(), Fault::Upstream);
    assert!(fake.connection_count() >= 1);

    fake.set_behavior(Behavior::Reset);
    let err = fetch_err(&client, &Site::paris()).await;
    assert!(matches!(err, SourceError::Connect { .. }), "reset: {err:?}");
    assert_eq!(err.fault(), Fault::Upstream);
}

#[tokio::test]
async fn garbage_and_error_bodies_with_200_are_invalid_bodies() {
    let fake = FakeOpenMeteo::start_with(Behavior::Garbage).await;
    let client = client(&fake);
    let err = fetch_err(&client, &Site::paris()).await;
    assert!(matches!(err, SourceError::InvalidBody { .. }), "{err:?}");
    assert_eq!(err.fault(), Fault::Upstream);

    fake.set_behavior(Behavior::error_json(
        200,
        "Parameter 'past_days' must be between 0 and 92",
    ));
    let err = fetch_err(&client, &Site::paris()).await;
    assert!(
        matches!(&err, SourceError::InvalidBody { message, .. } if message.contains("past_days")),
        "{err:?}"
    );

    // JSON that is not a forecast.
    fake.set_behavior(Behavior::json(200, r#"{"hello":"world"}"#));
    let err = fetch_err(&client, &Site::paris()).await;
    assert!(matches!(err, SourceError::InvalidBody { .. }), "{err:?}");

    // A forecast whose numbers are not weather.
    let body = String::from_utf8(fixture("vancouver_48h.json")).expect("utf-8");
    let hot = body.replacen("\"temperature_2m\":[", "\"temperature_2m\":[1e999,", 1);
    fake.set_behavior(Behavior::json(200, hot));
    let err = fetch_err(&client, &Site::paris()).await;
    assert!(
        matches!(
            err,
            SourceError::InvalidBody { .. } | SourceError::InvalidData { .. }
        ),
        "{err:?}"
    );
    let wrong_unit = body.replace("\"wind_speed_10m\":\"m/s\"", "\"wind_speed_10m\":\"Bft\"");
    fake.set_behavior(Behavior::json(200, wrong_unit));
    let err = fetch_err(&client, &Site::paris()).await;
    assert!(
        matches!(&err, SourceError::InvalidData { message, .. } if message.contains("wind_speed_10m") && message.contains("Bft")),
        "{err:?}"
    );
}

#[tokio::test]
async fn behaviour_switches_take_effect_on_the_next_request() {
    let fake = FakeOpenMeteo::start().await;
    let client = client(&fake);
    let site = Site::paris();
    let w = window(Utc::now(), 0, 1);
    assert!(client.fetch(&site, &w).await.is_ok());
    fake.set_behavior(Behavior::service_unavailable_json());
    assert_eq!(
        client.fetch(&site, &w).await.err().and_then(|e| e.status()),
        Some(503)
    );
    // A slow but working upstream still answers within the timeout.
    fake.set_behavior(Behavior::Delay {
        delay: Duration::from_millis(50),
        then: Box::new(Behavior::Healthy),
    });
    assert!(client.fetch(&site, &w).await.is_ok());
    fake.set_behavior(Behavior::Healthy);
    assert!(client.fetch(&site, &w).await.is_ok());
    assert_eq!(fake.request_count(), 4);
    assert_eq!(fake.requests().len(), 4);
    assert_eq!(client.name(), "open-meteo");
}
