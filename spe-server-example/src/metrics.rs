//! Prometheus metrics, served by `GET /metrics` in the OpenMetrics text
//! format (`prometheus-client`'s encoder: counters' samples end in
//! `_total`, the exposition ends with `# EOF`), labelled [`CONTENT_TYPE`]
//! so that a scraper parses it as OpenMetrics, not as the older Prometheus
//! text format.
//!
//! Counted as requests go (by the hardening stack, see
//! [`layers`](crate::layers)):
//!
//! - `spe_http_requests_total{route,method,status}`: requests by matched
//!   route (`/api/dashboard`; `unmatched` for unknown paths), method and
//!   status class (`2xx`, `4xx`, …);
//! - `spe_http_request_duration_seconds{route,method,status}`: the time to
//!   the answer's head (a histogram).
//!
//! Counted as event streams open and close ([`Metrics::event_stream`]):
//!
//! - `spe_event_streams`: the `/api/events` streams open now. The dashboard's
//!   tabs of one browser share one stream, so this is about the number of
//!   browsers following the server.
//!
//! Set from the shared state at each scrape ([`Gauges`]):
//!
//! - `spe_mode{mode}`: 1 for the current mode (`nominal`, `estimation`), 0 for the other;
//! - `spe_breaker_state{state}`: 1 for the breaker's state, 0 for the others;
//! - `spe_breaker_failure_rate`: failed ÷ calls in the breaker's window;
//! - `spe_open_incidents`: incidents open in the journal (NaN when no journal is
//!   open: the count is unknown, not zero);
//! - `spe_journal_available`: 1 if the incident journal is open;
//! - `spe_weather_age_seconds`: age of the weather served (the cache age in
//!   estimation mode);
//! - `spe_predictions_available`: 1 if predictions can be served;
//! - `spe_predictions_age_seconds`: their age (NaN when none);
//! - `spe_prediction_tier{tier}`: 1 for the tier that made them;
//! - `spe_forecast_error_pct`: the forecast error of the last day, percent
//!   (the KPI `forecast_error_pct`: day-ahead MAPE of the demand; NaN while
//!   unknown);
//! - `spe_history_available`: 1 if the long-term history store is open;
//! - `spe_history_backup_age_seconds`: age of its newest backup (NaN without a
//!   store or before its first backup): alert when it passes the RPO.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use spe_core::{BreakerState, Mode};

/// The content type of what [`Metrics::render`] writes: the OpenMetrics
/// text format 1.0.0.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets, seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The modes and breaker states reported, so every series exists from the start.
const MODES: [Mode; 2] = [Mode::Nominal, Mode::Estimation];
const BREAKER_STATES: [BreakerState; 5] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
    BreakerState::ForcedOpen,
    BreakerState::Disabled,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    tier: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// What the scrape-time gauges show, read from the shared state.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauges {
    /// The current mode.
    pub mode: Mode,
    /// The breaker's state.
    pub breaker_state: BreakerState,
    /// The breaker's failure rate in its window.
    pub breaker_failure_rate: f64,
    /// Open incidents; `None` without a journal.
    pub open_incidents: Option<usize>,
    /// Age of the weather served.
    pub weather_age: Duration,
    /// The predictions served: their tier's name and age; `None` if none.
    pub predictions: Option<(String, Duration)>,
    /// The forecast error of the last day, percent; `None` while unknown.
    pub forecast_error_pct: Option<f64>,
    /// The history store: `None` without one, else the age of its newest
    /// backup (`None` before the first).
    pub history_backup_age: Option<Option<Duration>>,
}

/// The server's metrics registry.
///
/// ```
/// use std::time::Duration;
/// use axum::http::{Method, StatusCode};
/// use spe_core::{BreakerState, Mode};
/// use spe_server_example::metrics::{Gauges, Metrics};
///
/// let metrics = Metrics::new();
/// metrics.observe_request("/api/dashboard", &Method::GET, StatusCode::OK, Duration::from_millis(3));
/// let text = metrics.render(&Gauges {
///     mode: Mode::Estimation,
///     breaker_state: BreakerState::Open,
///     breaker_failure_rate: 1.0,
///     open_incidents: Some(1),
///     weather_age: Duration::from_secs(90),
///     predictions: None,
///     forecast_error_pct: Some(4.2),
///     history_backup_age: Some(Some(Duration::from_secs(600))),
/// });
/// assert!(text.contains(r#"spe_http_requests_total{route="/api/dashboard",method="GET",status="2xx"} 1"#));
/// assert!(text.contains(r#"spe_mode{mode="estimation"} 1"#));
/// assert!(text.contains("spe_open_incidents 1.0"));
/// assert!(text.contains("spe_forecast_error_pct 4.2"));
/// assert!(text.contains("spe_history_backup_age_seconds 600.0"));
/// assert!(text.ends_with("# EOF\n"));
/// ```
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    mode: Family<ModeLabels, Gauge>,
    breaker_state: Family<StateLabels, Gauge>,
    breaker_failure_rate: Gauge<f64, AtomicU64>,
    open_incidents: Gauge<f64, AtomicU64>,
    journal_available: Gauge,
    weather_age: Gauge<f64, AtomicU64>,
    predictions_available: Gauge,
    predictions_age: Gauge<f64, AtomicU64>,
    prediction_tier: Family<TierLabels, Gauge>,
    forecast_error_pct: Gauge<f64, AtomicU64>,
    history_available: Gauge,
    history_backup_age: Gauge<f64, AtomicU64>,
    event_streams: Gauge,
    /// Held while gauges are set and the registry encoded, so two scrapes
    /// never interleave.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("spe");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let mode = Family::<ModeLabels, Gauge>::default();
        let breaker_state = Family::<StateLabels, Gauge>::default();
        let breaker_failure_rate = Gauge::<f64, AtomicU64>::default();
        let open_incidents = Gauge::<f64, AtomicU64>::default();
        let journal_available = Gauge::default();
        let weather_age = Gauge::<f64, AtomicU64>::default();
        let predictions_available = Gauge::default();
        let predictions_age = Gauge::<f64, AtomicU64>::default();
        let prediction_tier = Family::<TierLabels, Gauge>::default();
        let forecast_error_pct = Gauge::<f64, AtomicU64>::default();
        let history_available = Gauge::default();
        let history_backup_age = Gauge::<f64, AtomicU64>::default();
        let event_streams = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by matched route, method and status class",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to the answer's head, by matched route, method and status class",
            latency.clone(),
        );
        registry.register(
            "mode",
            "1 for the current mode (nominal: live data; estimation: synthetic estimate)",
            mode.clone(),
        );
        registry.register(
            "breaker_state",
            "1 for the current state of the circuit breaker around the weather API",
            breaker_state.clone(),
        );
        registry.register(
            "breaker_failure_rate",
            "Failed calls / calls in the circuit breaker's window",
            breaker_failure_rate.clone(),
        );
        registry.register(
            "open_incidents",
            "Incidents open in the journal",
            open_incidents.clone(),
        );
        registry.register(
            "journal_available",
            "1 if the incident journal is open",
            journal_available.clone(),
        );
        registry.register(
            "weather_age_seconds",
            "Age of the weather data served",
            weather_age.clone(),
        );
        registry.register(
            "predictions_available",
            "1 if predictions can be served",
            predictions_available.clone(),
        );
        registry.register(
            "predictions_age_seconds",
            "Age of the predictions served (NaN when none)",
            predictions_age.clone(),
        );
        registry.register(
            "prediction_tier",
            "1 for the tier of the prediction chain that made the predictions served",
            prediction_tier.clone(),
        );
        registry.register(
            "forecast_error_pct",
            "Forecast error of the last day: mean absolute percentage error of the demand \
             predicted a day ahead, over the last 24 hours (NaN while unknown)",
            forecast_error_pct.clone(),
        );
        registry.register(
            "history_available",
            "1 if the long-term history store is open",
            history_available.clone(),
        );
        registry.register(
            "history_backup_age_seconds",
            "Age of the history store's newest backup (NaN without a store or before the first backup)",
            history_backup_age.clone(),
        );
        registry.register(
            "event_streams",
            "Event streams (/api/events) open now",
            event_streams.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            mode,
            breaker_state,
            breaker_failure_rate,
            open_incidents,
            journal_available,
            weather_age,
            predictions_available,
            predictions_age,
            prediction_tier,
            forecast_error_pct,
            history_available,
            history_backup_age,
            event_streams,
            scrape: Mutex::new(()),
        }
    }

    /// Count an event stream as open until the returned guard is dropped.
    ///
    /// ```
    /// use spe_server_example::metrics::Metrics;
    ///
    /// let metrics = Metrics::new();
    /// let stream = metrics.event_stream();
    /// assert_eq!(metrics.event_streams(), 1);
    /// drop(stream);
    /// assert_eq!(metrics.event_streams(), 0);
    /// ```
    pub fn event_stream(&self) -> EventStreamGuard {
        self.event_streams.inc();
        EventStreamGuard {
            gauge: self.event_streams.clone(),
        }
    }

    /// The event streams open now (`spe_event_streams`).
    pub fn event_streams(&self) -> i64 {
        self.event_streams.get()
    }

    /// Count one answered request.
    pub fn observe_request(
        &self,
        route: &str,
        method: &Method,
        status: StatusCode,
        latency: Duration,
    ) {
        let labels = RequestLabels {
            route: route.to_owned(),
            method: method_label(method),
            status: status_class(status),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
    }

    /// Set the gauges from `gauges` and encode everything in the OpenMetrics
    /// text format ([`CONTENT_TYPE`]).
    pub fn render(&self, gauges: &Gauges) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        for mode in MODES {
            let label = ModeLabels { mode: mode.name() };
            self.mode
                .get_or_create(&label)
                .set(i64::from(mode == gauges.mode));
        }
        for state in BREAKER_STATES {
            let label = StateLabels {
                state: state.name(),
            };
            self.breaker_state
                .get_or_create(&label)
                .set(i64::from(state == gauges.breaker_state));
        }
        self.breaker_failure_rate.set(gauges.breaker_failure_rate);
        self.journal_available
            .set(i64::from(gauges.open_incidents.is_some()));
        self.open_incidents
            .set(gauges.open_incidents.map_or(f64::NAN, |n| n as f64));
        self.weather_age.set(gauges.weather_age.as_secs_f64());
        self.prediction_tier.clear();
        match &gauges.predictions {
            Some((tier, age)) => {
                self.predictions_available.set(1);
                self.predictions_age.set(age.as_secs_f64());
                self.prediction_tier
                    .get_or_create(&TierLabels { tier: tier.clone() })
                    .set(1);
            }
            None => {
                self.predictions_available.set(0);
                self.predictions_age.set(f64::NAN);
            }
        }
        self.forecast_error_pct
            .set(gauges.forecast_error_pct.unwrap_or(f64::NAN));
        self.history_available
            .set(i64::from(gauges.history_backup_age.is_some()));
        self.history_backup_age.set(
            gauges
                .history_backup_age
                .flatten()
                .map_or(f64::NAN, |age| age.as_secs_f64()),
        );
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &self.registry) {
            // Only a formatter error, which writing to a String never gives.
            tracing::error!(error = %e, "cannot encode the metrics");
            let _ = writeln!(text, "# EOF");
        }
        text
    }
}

/// An open event stream, counted in `spe_event_streams` until dropped
/// (see [`Metrics::event_stream`]).
#[derive(Debug)]
#[must_use = "the stream is counted only while the guard lives"]
pub struct EventStreamGuard {
    gauge: Gauge,
}

impl Drop for EventStreamGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The method as a label, from a closed set (no unbounded label values).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `1xx` … `5xx`.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            mode: Mode::Nominal,
            breaker_state: BreakerState::Closed,
            breaker_failure_rate: 0.25,
            open_incidents: None,
            weather_age: Duration::from_millis(1500),
            predictions: Some(("fallback".into(), Duration::from_secs(60))),
            forecast_error_pct: Some(6.5),
            history_backup_age: Some(Some(Duration::from_secs(90))),
        }
    }

    #[test]
    fn gauges_follow_the_state() {
        let metrics = Metrics::new();
        let text = metrics.render(&gauges());
        for line in [
            r#"spe_mode{mode="nominal"} 1"#,
            r#"spe_mode{mode="estimation"} 0"#,
            r#"spe_breaker_state{state="closed"} 1"#,
            r#"spe_breaker_state{state="half_open"} 0"#,
            "spe_breaker_failure_rate 0.25",
            "spe_journal_available 0",
            "spe_weather_age_seconds 1.5",
            "spe_predictions_available 1",
            "spe_predictions_age_seconds 60.0",
            r#"spe_prediction_tier{tier="fallback"} 1"#,
            "spe_forecast_error_pct 6.5",
            "spe_history_available 1",
            "spe_history_backup_age_seconds 90.0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        // The tier changes: the old one is gone.
        let text = metrics.render(&Gauges {
            predictions: None,
            open_incidents: Some(2),
            forecast_error_pct: None,
            ..gauges()
        });
        assert!(
            text.lines().any(|l| l == "spe_forecast_error_pct NaN"),
            "{text}"
        );
        assert!(!text.contains("spe_prediction_tier{"), "{text}");
        assert!(text.lines().any(|l| l == "spe_predictions_age_seconds NaN"));
        assert!(text.lines().any(|l| l == "spe_open_incidents 2.0"));
        assert!(text.lines().any(|l| l == "spe_journal_available 1"));
        // No journal: the count is unknown, not zero.
        let text = metrics.render(&Gauges {
            open_incidents: None,
            ..gauges()
        });
        assert!(
            text.lines().any(|l| l == "spe_open_incidents NaN"),
            "{text}"
        );
        assert!(text.lines().any(|l| l == "spe_journal_available 0"));
        // A store before its first backup, then no store.
        let text = metrics.render(&Gauges {
            history_backup_age: Some(None),
            ..gauges()
        });
        assert!(text.lines().any(|l| l == "spe_history_available 1"));
        assert!(
            text.lines()
                .any(|l| l == "spe_history_backup_age_seconds NaN")
        );
        let text = metrics.render(&Gauges {
            history_backup_age: None,
            ..gauges()
        });
        assert!(
            text.lines().any(|l| l == "spe_history_available 0"),
            "{text}"
        );
    }

    #[test]
    fn requests_are_counted_by_route_method_and_class() {
        let metrics = Metrics::new();
        for status in [200, 204, 404, 503] {
            metrics.observe_request(
                "/api/dashboard",
                &Method::GET,
                StatusCode::from_u16(status).expect("a status"),
                Duration::from_millis(2),
            );
        }
        metrics.observe_request(
            "unmatched",
            &Method::from_bytes(b"BREW").expect("a method"),
            StatusCode::NOT_FOUND,
            Duration::from_secs(20),
        );
        let text = metrics.render(&gauges());
        for line in [
            r#"spe_http_requests_total{route="/api/dashboard",method="GET",status="2xx"} 2"#,
            r#"spe_http_requests_total{route="/api/dashboard",method="GET",status="4xx"} 1"#,
            r#"spe_http_requests_total{route="/api/dashboard",method="GET",status="5xx"} 1"#,
            r#"spe_http_requests_total{route="unmatched",method="other",status="4xx"} 1"#,
            r#"spe_http_request_duration_seconds_count{route="/api/dashboard",method="GET",status="2xx"} 2"#,
            r#"spe_http_request_duration_seconds_bucket{le="0.0025",route="/api/dashboard",method="GET",status="2xx"} 2"#,
            r#"spe_http_request_duration_seconds_bucket{le="10.0",route="unmatched",method="other",status="4xx"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
