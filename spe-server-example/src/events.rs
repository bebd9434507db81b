//! `GET /api/events`: Server-Sent Events telling the page when to re-fetch.
//!
//! On connect, and each time the failover service publishes a new snapshot
//! (a refresh, a change of mode) or new predictions are made, the stream
//! sends an event named `snapshot` whose data is
//! `{"mode": "nominal"|"estimation", "generated_at": "<RFC 3339>",
//! "predictions_made_at": "<RFC 3339>"|null}` ([`SnapshotEvent`]). A
//! keep-alive event named `ping` (data `{}`: an event without data is
//! never dispatched to scripts) goes every [`KEEP_ALIVE`] when
//! nothing happens: an event, not a comment, so the page sees it and can
//! tell a quiet server from a frozen one or a dead connection (it
//! reconnects after [`KEEP_ALIVE`] × 3 of silence). The
//! stream ends when the server shuts down ([`AppState::stop_streams`]),
//! so a graceful stop is not held up by open pages. Open streams are
//! counted in the metric `spe_event_streams`.
//!
//! The dashboard's tabs share one stream per browser (a shared worker,
//! `/assets/events-worker.js`): a browser keeps at most six HTTP/1.1
//! connections to a server, and a stream per tab would leave a seventh tab
//! waiting for one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Serialize;
use spe_core::{ChainResult, Mode, WeatherSnapshot};
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::metrics::EventStreamGuard;
use crate::series_json::rfc3339;
use crate::state::AppState;

/// The name of the events sent.
pub const EVENT_NAME: &str = "snapshot";
/// The name of the keep-alive events.
pub const PING_NAME: &str = "ping";
/// Interval of the keep-alive events.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The data of a `snapshot` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotEvent {
    /// `nominal` or `estimation`.
    #[schema(value_type = crate::openapi::ModeName)]
    pub mode: Mode,
    /// When the snapshot was made (RFC 3339, UTC): the dashboard's `generated_at`.
    pub generated_at: String,
    /// When the predictions served were made (RFC 3339, UTC); `null` if none.
    pub predictions_made_at: Option<String>,
}

impl SnapshotEvent {
    /// The event for `snapshot` and the latest `predictions`.
    pub fn new(snapshot: &WeatherSnapshot, predictions: Option<&ChainResult>) -> Self {
        SnapshotEvent {
            mode: snapshot.mode,
            generated_at: rfc3339(snapshot.made_at),
            predictions_made_at: predictions.map(|p| rfc3339(p.predictions.made_at)),
        }
    }

    /// As an SSE event.
    pub fn to_event(&self) -> Event {
        let data = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned());
        Event::default().event(EVENT_NAME).data(data)
    }
}

/// `GET /api/events`.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "dashboard",
    responses((
        status = 200,
        description = "Server-Sent Events: on connect and on each new snapshot or new predictions, \
                       an event named `snapshot` whose `data` is a JSON `SnapshotEvent`; \
                       a keep-alive event named `ping` (data `{}`) every 15 s of quiet; the stream \
                       ends when the server stops",
        content_type = "text/event-stream",
        body = SnapshotEvent,
    ))
)]
pub async fn events(State(state): State<AppState>) -> Response {
    Sse::new(snapshot_events(&state))
        .keep_alive(
            KeepAlive::new()
                .interval(KEEP_ALIVE)
                .event(Event::default().event(PING_NAME).data("{}")),
        )
        .into_response()
}

/// Where a stream is: the receivers it waits on.
struct Cursor {
    snapshots: watch::Receiver<Arc<WeatherSnapshot>>,
    /// The chain's answers; a receiver that never changes without a chain.
    predictions: watch::Receiver<Option<Arc<ChainResult>>>,
    /// Keeps that receiver open without a chain.
    _no_chain: Option<watch::Sender<Option<Arc<ChainResult>>>>,
    stop: watch::Receiver<bool>,
    first: bool,
    /// Counts the stream in `spe_event_streams` while it lives.
    _open: EventStreamGuard,
}

/// The stream of `snapshot` events of `state`, ending at shutdown.
pub fn snapshot_events(state: &AppState) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    let (predictions, no_chain) = match state.predictions() {
        Some(chain) => (chain.subscribe(), None),
        None => {
            let (tx, rx) = watch::channel(None);
            (rx, Some(tx))
        }
    };
    let cursor = Cursor {
        snapshots: state.service().watch(),
        predictions,
        _no_chain: no_chain,
        stop: state.streams_stopped(),
        first: true,
        _open: state.metrics().event_stream(),
    };
    futures_util::stream::unfold(cursor, |mut cursor| async move {
        if *cursor.stop.borrow_and_update() {
            return None;
        }
        if !cursor.first {
            tokio::select! {
                changed = cursor.snapshots.changed() => changed.ok()?,
                changed = cursor.predictions.changed() => changed.ok()?,
                // The server stops (or its state is gone).
                _ = cursor.stop.changed() => return None,
            }
        }
        cursor.first = false;
        let predictions = cursor.predictions.borrow_and_update().clone();
        let event = SnapshotEvent::new(
            &cursor.snapshots.borrow_and_update(),
            predictions.as_deref(),
        )
        .to_event();
        Some((Ok(event), cursor))
    })
}
