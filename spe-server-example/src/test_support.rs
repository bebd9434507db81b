//! Test doubles shared by the crate's unit tests: an upstream that is live,
//! failing or hanging on demand, a failover service over it on a manual
//! clock, a router over it ([`Rig`]) with request helpers, and a temporary
//! directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use spe_core::{
    BreakerConfig, DataSource, FailoverConfig, FailoverService, Generator, Journal, ManualClock,
    Provenance, Site, SourceError, WeatherFrame, Window,
};
use tower::ServiceExt as _;

use crate::routes::router;
use crate::state::AppState;

/// How the [`Upstream`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Live weather, with the last 5 hours of temperature and cloud cover
    /// missing (as past Open-Meteo's model horizon).
    Live,
    /// Connection refused.
    Refused,
    /// HTTP 503.
    Unavailable,
    /// Never answers.
    Hang,
}

/// Stands in for Open-Meteo.
#[derive(Debug)]
pub(crate) struct Upstream {
    behaviour: Mutex<Behaviour>,
    calls: AtomicUsize,
}

impl Upstream {
    pub(crate) fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Upstream {
            behaviour: Mutex::new(behaviour),
            calls: AtomicUsize::new(0),
        })
    }

    pub(crate) fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap_or_else(|p| p.into_inner()) = behaviour;
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl DataSource for Upstream {
    fn name(&self) -> &str {
        "open-meteo"
    }

    async fn fetch(&self, site: &Site, window: &Window) -> Result<WeatherFrame, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let behaviour = *self.behaviour.lock().unwrap_or_else(|p| p.into_inner());
        match behaviour {
            Behaviour::Live => {
                let axis = window.axis(site)?;
                let mut cols = Generator::with_seed(3)
                    .weather(site, axis, window.now())
                    .into_columns();
                let n = cols.temperature_2m.len();
                for i in n.saturating_sub(5)..n {
                    cols.temperature_2m[i] = None;
                    cols.cloud_cover[i] = None;
                }
                WeatherFrame::new(axis, cols, Provenance::Live, window.now()).map_err(|e| {
                    SourceError::InvalidData {
                        source_name: "open-meteo".into(),
                        message: e.to_string(),
                    }
                })
            }
            Behaviour::Refused => Err(SourceError::Connect {
                source_name: "open-meteo".into(),
                message: "connection refused".into(),
            }),
            Behaviour::Unavailable => Err(SourceError::Status {
                source_name: "open-meteo".into(),
                status: 503,
                reason: "Service temporarily unavailable".into(),
            }),
            Behaviour::Hang => std::future::pending().await,
        }
    }
}

/// The fixed start of the tests' clock: a winter weekday morning.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0)
        .single()
        .expect("valid time")
}

/// spe-core's defaults without jitter, so the breaker's waits are exact.
pub(crate) fn failover_config() -> FailoverConfig {
    FailoverConfig {
        breaker: BreakerConfig {
            jitter: 0.0,
            ..BreakerConfig::default()
        },
        ..FailoverConfig::default()
    }
}

/// A failover service over `upstream` for Paris, on a manual clock at [`t0`].
pub(crate) fn service(
    upstream: Arc<Upstream>,
    journal: Option<Journal>,
) -> (FailoverService, ManualClock) {
    let clock = ManualClock::new();
    let mut builder = FailoverService::builder(Site::paris(), upstream)
        .config(failover_config())
        .clock(clock.clone(), t0());
    if let Some(journal) = journal {
        builder = builder.journal(journal);
    }
    (builder.build().expect("valid settings"), clock)
}

/// A fresh directory under the system's temporary directory, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "spe-server-example-test-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A router over a failover service on a manual clock, and its parts.
pub(crate) struct Rig {
    pub(crate) app: Router,
    pub(crate) state: AppState,
    pub(crate) service: FailoverService,
    pub(crate) clock: ManualClock,
    pub(crate) upstream: Arc<Upstream>,
    pub(crate) journal: Option<Journal>,
    pub(crate) _dir: TempDir,
}

/// A rig whose upstream behaves as `behaviour`, its state made by `state`
/// from the default one.
pub(crate) fn rig_with_state(
    behaviour: Behaviour,
    with_journal: bool,
    state: impl FnOnce(AppState) -> AppState,
) -> Rig {
    let dir = TempDir::new();
    let journal =
        with_journal.then(|| Journal::open(dir.path().join("incidents.journal")).expect("journal"));
    let upstream = Upstream::new(behaviour);
    let (service, clock) = service(upstream.clone(), journal.clone());
    let state = state(AppState::new(service.clone(), journal.clone()));
    let app = router(state.clone());
    Rig {
        app,
        state,
        service,
        clock,
        upstream,
        journal,
        _dir: dir,
    }
}

/// A rig with the default state.
pub(crate) fn rig_with(behaviour: Behaviour, with_journal: bool) -> Rig {
    rig_with_state(behaviour, with_journal, |s| s)
}

/// A rig whose upstream behaves as `behaviour`, after one refresh, with
/// the clock moved 90 s on.
pub(crate) async fn refreshed(behaviour: Behaviour) -> Rig {
    let rig = rig_with(behaviour, true);
    rig.service.refresh().await;
    rig.clock.advance(Duration::from_secs(90));
    rig
}

/// Send `request` to `app`: status, headers and the whole body.
pub(crate) async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .expect("body");
    (status, headers, body.to_vec())
}

/// `method uri` with no body.
pub(crate) async fn call(
    app: &Router,
    method: Method,
    uri: &str,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("valid request");
    send(app, request).await
}

/// `GET uri`, its body as JSON.
pub(crate) async fn get_json(app: &Router, uri: &str) -> (StatusCode, HeaderMap, Value) {
    let (status, headers, body) = call(app, Method::GET, uri).await;
    let json = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "GET {uri}: not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, headers, json)
}

/// The value of header `name`, as text.
pub(crate) fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The headers of every API answer: no caching, no sniffing, JSON.
pub(crate) fn assert_api_headers(headers: &HeaderMap) {
    assert_eq!(header_str(headers, header::CACHE_CONTROL), Some("no-store"));
    assert_eq!(
        header_str(headers, header::X_CONTENT_TYPE_OPTIONS),
        Some("nosniff")
    );
    assert_eq!(header_str(headers, header::X_FRAME_OPTIONS), Some("DENY"));
    assert!(
        header_str(headers, header::CONTENT_SECURITY_POLICY)
            .is_some_and(|csp| csp.contains("frame-ancestors 'none'")),
        "{headers:?}"
    );
    let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
}
