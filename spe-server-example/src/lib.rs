//! The SP-E example server: the operator dashboard, wired up.
//!
//! A thin axum application over `spe-core`: the data logic (live weather
//! through a circuit breaker, the synthetic estimate behind it, one journaled
//! incident per outage, the last live weather cached across restarts) lives
//! in spe-core's [`FailoverService`](spe_core::FailoverService); this crate
//! wires it up and translates it to HTTP, one concern per module:
//!
//! - [`config`]: flags and environment variables ([`Config`]);
//! - [`app`]: start-up wiring (data directory, incident journal, weather
//!   cache, Open-Meteo client, failover service) and serving with a graceful
//!   stop ([`App`]);
//! - [`state`]: what the handlers read ([`AppState`]);
//! - [`series_json`]: frames as JSON objects of parallel arrays;
//! - [`api`]: the dashboard, incidents, health and metrics handlers;
//!   [`events`]: Server-Sent Events; [`export`]: the CSV export;
//!   [`predictions`]: the prediction endpoints; [`dashboard_cache`]: the
//!   dashboard's body, built once a second and reused;
//! - [`archive`]: past predictions, kept to compute the forecast error of
//!   the last day; [`persistence`]: which parts of the data directory the
//!   server runs without; [`history`]: the long-term history store (observations,
//!   predictions, KPIs, backups) and `GET /api/history`;
//! - [`routes`]: the router ([`router`]); [`layers`]: the hardening stack
//!   (timeouts, body limit, load shedding, security headers, CORS, request
//!   spans, metrics) ([`Hardening`]);
//! - [`auth`]: the admin check ([`AdminAuth`]); [`origin`]: cross-site
//!   requests that change state refused; [`rate_limit`]: the rate
//!   limit of regeneration ([`RateLimiter`]); [`metrics`]: Prometheus
//!   metrics; [`openapi`]: the OpenAPI document;
//! - [`error`]: JSON error bodies ([`ApiError`]).
//!
//! The handlers only read the service's current snapshot, its breaker's
//! metrics and the journal: no request ever waits on an upstream.
//!
//! ```
//! use std::sync::Arc;
//! use spe_core::{FailoverService, Replay, Site};
//! use spe_server_example::{AppState, router};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Any `DataSource` can be the live source; here a one-row recording.
//! let source = Replay::from_csv_str(
//!     "time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m\n2020-01-01T00:00Z,1,0,50,3\n",
//! )?;
//! let service = FailoverService::builder(Site::paris(), Arc::new(source)).build()?;
//! let app = router(AppState::new(service, None)); // no incident journal
//! # let _ = app;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod archive;
pub mod assets;
pub mod auth;
pub mod charts;
pub mod config;
pub mod csv_dialect;
pub mod dashboard_cache;
#[cfg(test)]
mod endpoint_tests;
pub mod error;
pub mod events;
pub mod export;
pub mod forecasting;
pub mod history;
pub mod layers;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod persistence;
pub mod predictions;
pub mod rate_limit;
pub mod routes;
pub mod series_json;
pub mod serve;
pub mod state;
#[cfg(test)]
mod test_support;

pub use app::{App, StartError};
pub use auth::AdminAuth;
pub use config::Config;
pub use error::ApiError;
pub use layers::Hardening;
pub use rate_limit::RateLimiter;
pub use routes::router;
pub use state::AppState;
