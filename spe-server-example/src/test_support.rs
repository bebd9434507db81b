//! Test doubles shared by the crate's unit tests: an upstream that is live,
//! failing or hanging on demand, a failover service over it on a manual
//! clock, and a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use spe_core::{
    BreakerConfig, DataSource, FailoverConfig, FailoverService, Generator, Journal, ManualClock,
    Provenance, Site, SourceError, WeatherFrame, Window,
};

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
