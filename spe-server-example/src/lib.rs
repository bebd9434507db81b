//! The SP-E example server: the operator dashboard, wired up.
//!
//! A thin axum application over `spe-core`, one concern per module:
//!
//! - [`config`]: flags and environment variables ([`Config`]);
//! - [`state`]: the immutable [`Snapshot`] the handlers read, swapped
//!   atomically ([`AppState`]);
//! - [`refresh`]: the background task that builds snapshots, live
//!   (Open-Meteo, mode `nominal`) or synthetic (mode `estimation`)
//!   ([`Refresher`]);
//! - [`series_json`]: frames as JSON objects of parallel arrays;
//! - [`api`]: the handlers; [`routes`]: the router ([`router`]);
//! - [`error`]: JSON error bodies ([`ApiError`]).
//!
//! The handlers only read the current snapshot: no request ever waits on an
//! upstream. The circuit breaker, predictions, incident journal, exports and
//! metrics of the full contract arrive in later versions; until then
//! `/api/dashboard` reports `"forecast": null` and `"breaker": null`.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use spe_core::{Generator, Site, TimeAxis};
//! use spe_server_example::{AppState, Snapshot, router};
//!
//! let now = Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap();
//! let frames = Generator::default().generate(&Site::paris(), TimeAxis::new(now, 24).unwrap(), now);
//! let app = router(AppState::fixed(Snapshot::estimation(Site::paris(), frames, now, "offline")));
//! # let _ = app;
//! ```

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod error;
pub mod refresh;
pub mod routes;
pub mod series_json;
pub mod state;

pub use config::Config;
pub use error::ApiError;
pub use refresh::Refresher;
pub use routes::router;
pub use state::{AppState, Clock, Snapshot};
