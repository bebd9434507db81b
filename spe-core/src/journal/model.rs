//! Incident ids, kinds, journal events and the folded incident view.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::provenance::Mode;
use crate::source::SourceError;

/// The id of an incident: a number unique in its journal, handed out in
/// increasing order from 1 and continued after a reopen (largest id seen + 1).
///
/// Serialized as a bare number; displayed as `#<n>`.
///
/// ```
/// use spe_core::IncidentId;
/// let id = IncidentId(7);
/// assert_eq!(id.get(), 7);
/// assert_eq!(id.to_string(), "#7");
/// assert_eq!(serde_json::to_string(&id).unwrap(), "7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub u64);

impl IncidentId {
    /// The number.
    ///
    /// ```
    /// assert_eq!(spe_core::IncidentId(3).get(), 3);
    /// ```
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What kind of failure an incident is.
///
/// Serialized in `snake_case` (`upstream_timeout`, `upstream_5xx`, …). A kind
/// this build does not know (written by a newer version) reads as
/// [`IncidentKind::Other`].
///
/// ```
/// use spe_core::IncidentKind;
/// assert_eq!(serde_json::to_string(&IncidentKind::Upstream5xx).unwrap(), "\"upstream_5xx\"");
/// assert_eq!(serde_json::from_str::<IncidentKind>("\"cache_corrupt\"").unwrap(), IncidentKind::CacheCorrupt);
/// assert_eq!(serde_json::from_str::<IncidentKind>("\"solar_flare\"").unwrap(), IncidentKind::Other);
/// assert_eq!(IncidentKind::ModelTimeout.name(), "model_timeout");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IncidentKind {
    /// The upstream gave no complete answer within the call timeout.
    UpstreamTimeout,
    /// The upstream answered with an HTTP 5xx status.
    #[serde(rename = "upstream_5xx")]
    Upstream5xx,
    /// The upstream could not be reached (refused, reset, DNS, no network).
    UpstreamUnreachable,
    /// The upstream rejected the request (HTTP 4xx, including 429).
    UpstreamRejected,
    /// The upstream answered with a truncated, malformed or implausible body.
    BadPayload,
    /// The prediction engine crashed (non-zero exit, panic, exception).
    ModelCrash,
    /// The prediction engine did not finish within its timeout.
    ModelTimeout,
    /// The prediction engine finished but its output is unusable.
    ModelBadOutput,
    /// A cache file was corrupt and was quarantined.
    CacheCorrupt,
    /// The history store was corrupt.
    StoreCorrupt,
    /// The incident journal itself was damaged (see [`OpenReport`](crate::OpenReport)).
    JournalCorrupt,
    /// A disk operation failed (disk full, I/O error, permissions).
    DiskError,
    /// Anything else.
    #[serde(other)]
    Other,
}

impl IncidentKind {
    /// The `snake_case` name, as serialized.
    ///
    /// ```
    /// assert_eq!(spe_core::IncidentKind::UpstreamUnreachable.name(), "upstream_unreachable");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            IncidentKind::UpstreamTimeout => "upstream_timeout",
            IncidentKind::Upstream5xx => "upstream_5xx",
            IncidentKind::UpstreamUnreachable => "upstream_unreachable",
            IncidentKind::UpstreamRejected => "upstream_rejected",
            IncidentKind::BadPayload => "bad_payload",
            IncidentKind::ModelCrash => "model_crash",
            IncidentKind::ModelTimeout => "model_timeout",
            IncidentKind::ModelBadOutput => "model_bad_output",
            IncidentKind::CacheCorrupt => "cache_corrupt",
            IncidentKind::StoreCorrupt => "store_corrupt",
            IncidentKind::JournalCorrupt => "journal_corrupt",
            IncidentKind::DiskError => "disk_error",
            IncidentKind::Other => "other",
        }
    }

    /// The kind of incident a failed data-source fetch is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spe_core::{IncidentKind, SourceError};
    /// let e = SourceError::Timeout { source_name: "open-meteo".into(), after: Duration::from_secs(5) };
    /// assert_eq!(IncidentKind::from_source_error(&e), IncidentKind::UpstreamTimeout);
    /// let e = SourceError::Status { source_name: "open-meteo".into(), status: 502, reason: "bad gateway".into() };
    /// assert_eq!(IncidentKind::from_source_error(&e), IncidentKind::Upstream5xx);
    /// ```
    pub fn from_source_error(error: &SourceError) -> IncidentKind {
        if error.is_timeout() {
            return IncidentKind::UpstreamTimeout;
        }
        if let Some(status) = error.status() {
            return match status {
                500..=599 => IncidentKind::Upstream5xx,
                400..=499 => IncidentKind::UpstreamRejected,
                _ => IncidentKind::BadPayload,
            };
        }
        match error {
            SourceError::Connect { .. } => IncidentKind::UpstreamUnreachable,
            SourceError::Truncated { .. }
            | SourceError::InvalidBody { .. }
            | SourceError::InvalidData { .. } => IncidentKind::BadPayload,
            _ => IncidentKind::Other,
        }
    }
}

impl fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One record of the journal, as stored (the JSON payload of a frame).
///
/// Internally tagged by `event`, e.g.
/// `{"event":"closed","id":3,"at":"2026-01-02T11:00:00Z","details":"recovered"}`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{IncidentId, JournalEvent};
/// let e = JournalEvent::Closed {
///     id: IncidentId(3),
///     at: Utc.with_ymd_and_hms(2026, 1, 2, 11, 0, 0).unwrap(),
///     details: "recovered".into(),
/// };
/// assert_eq!(
///     serde_json::to_string(&e).unwrap(),
///     r#"{"event":"closed","id":3,"at":"2026-01-02T11:00:00Z","details":"recovered"}"#
/// );
/// assert_eq!(e.id(), IncidentId(3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JournalEvent {
    /// An incident began.
    Opened {
        /// Its id.
        id: IncidentId,
        /// The failing component, e.g. `open-meteo` or `prediction-engine`.
        component: String,
        /// What kind of failure.
        kind: IncidentKind,
        /// When it began.
        at: DateTime<Utc>,
        /// Free text: the first error, the context.
        details: String,
    },
    /// The incident moved the service from one mode to another.
    ModeChanged {
        /// The incident.
        id: IncidentId,
        /// The mode before.
        from: Mode,
        /// The mode after.
        to: Mode,
        /// When.
        at: DateTime<Utc>,
    },
    /// Something worth recording happened during the incident (e.g. a
    /// summary of the further failures seen).
    Note {
        /// The incident.
        id: IncidentId,
        /// When.
        at: DateTime<Utc>,
        /// Free text.
        details: String,
    },
    /// The incident ended.
    Closed {
        /// The incident.
        id: IncidentId,
        /// When it ended.
        at: DateTime<Utc>,
        /// Free text: how it was resolved.
        details: String,
    },
}

impl JournalEvent {
    /// The incident the event is about.
    ///
    /// ```
    /// use chrono::Utc;
    /// use spe_core::{IncidentId, JournalEvent};
    /// let e = JournalEvent::Note { id: IncidentId(1), at: Utc::now(), details: "3 more timeouts".into() };
    /// assert_eq!(e.id(), IncidentId(1));
    /// ```
    pub fn id(&self) -> IncidentId {
        match self {
            JournalEvent::Opened { id, .. }
            | JournalEvent::ModeChanged { id, .. }
            | JournalEvent::Note { id, .. }
            | JournalEvent::Closed { id, .. } => *id,
        }
    }
}

/// A mode change caused by an incident.
///
/// ```
/// use chrono::Utc;
/// use spe_core::{IncidentKind, Journal, Mode};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let journal = Journal::open(dir.path().join("incidents.journal"))?;
/// let id = journal.open_incident("open-meteo", IncidentKind::Upstream5xx, Utc::now(), "HTTP 503")?;
/// journal.mode_changed(id, Mode::Nominal, Mode::Estimation, Utc::now())?;
/// let change = journal.incident(id).unwrap().mode_changes[0];
/// assert_eq!((change.from, change.to), (Mode::Nominal, Mode::Estimation));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModeChange {
    /// When.
    pub at: DateTime<Utc>,
    /// The mode before.
    pub from: Mode,
    /// The mode after.
    pub to: Mode,
}

/// An incident, folded from its journal events: one per outage.
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use spe_core::{IncidentKind, Journal};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let journal = Journal::open(dir.path().join("incidents.journal"))?;
/// let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 10, 0, 0).unwrap();
/// let id = journal.open_incident("open-meteo", IncidentKind::UpstreamTimeout, t0, "no answer in 5 s")?;
/// let incident = journal.incident(id).unwrap();
/// assert!(incident.is_open());
/// assert_eq!(incident.duration(t0 + TimeDelta::minutes(5)), TimeDelta::minutes(5));
///
/// let closed = journal.close_incident(id, t0 + TimeDelta::hours(1), "probe succeeded")?;
/// assert!(!closed.is_open());
/// assert_eq!(closed.duration(t0 + TimeDelta::days(9)), TimeDelta::hours(1));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Incident {
    /// Its id.
    pub id: IncidentId,
    /// The failing component.
    pub component: String,
    /// What kind of failure.
    pub kind: IncidentKind,
    /// When it began.
    pub start: DateTime<Utc>,
    /// When it ended; `None` while it is open.
    pub end: Option<DateTime<Utc>>,
    /// The mode changes it caused, in journal order.
    pub mode_changes: Vec<ModeChange>,
    /// Notes recorded during (or after) it, in journal order.
    pub notes: Vec<(DateTime<Utc>, String)>,
    /// The details given when it was opened.
    pub details: String,
    /// The details given when it was closed.
    pub resolution: Option<String>,
}

impl Incident {
    /// Whether the incident is still open.
    ///
    /// ```
    /// # use chrono::Utc;
    /// # use spe_core::{IncidentKind, Journal};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("j"))?;
    /// let id = journal.open_incident("model", IncidentKind::ModelCrash, Utc::now(), "exit 1")?;
    /// assert!(journal.incident(id).unwrap().is_open());
    /// # Ok(()) }
    /// ```
    pub fn is_open(&self) -> bool {
        self.end.is_none()
    }

    /// When it ended, or `now` while it is open; never before `start`.
    ///
    /// ```
    /// # use chrono::{TimeDelta, Utc};
    /// # use spe_core::{IncidentKind, Journal};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("j"))?;
    /// let start = Utc::now();
    /// let id = journal.open_incident("model", IncidentKind::ModelCrash, start, "exit 1")?;
    /// let later = start + TimeDelta::minutes(3);
    /// assert_eq!(journal.incident(id).unwrap().end_or(later), later);
    /// # Ok(()) }
    /// ```
    pub fn end_or(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.end.unwrap_or(now).max(self.start)
    }

    /// How long it lasted: `end − start`, or `now − start` while open; never
    /// negative (a clock that stepped back gives zero).
    ///
    /// ```
    /// # use chrono::{TimeDelta, Utc};
    /// # use spe_core::{IncidentKind, Journal};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("j"))?;
    /// let start = Utc::now();
    /// let id = journal.open_incident("model", IncidentKind::ModelTimeout, start, "60 s")?;
    /// let incident = journal.close_incident(id, start + TimeDelta::seconds(90), "rerun ok")?;
    /// assert_eq!(incident.duration(start), TimeDelta::seconds(90));
    /// # Ok(()) }
    /// ```
    pub fn duration(&self, now: DateTime<Utc>) -> TimeDelta {
        self.end_or(now) - self.start
    }
}

/// Why an event read from the journal was left out of the folded view.
///
/// ```
/// use spe_core::IgnoreReason;
/// assert_ne!(IgnoreReason::UnknownIncident, IgnoreReason::AlreadyClosed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IgnoreReason {
    /// It refers to an incident whose opening record is missing (lost to
    /// corruption).
    UnknownIncident,
    /// It opens an incident with an id already in use.
    DuplicateId,
    /// It changes the mode of, or closes, an incident already closed.
    AlreadyClosed,
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IgnoreReason::UnknownIncident => "unknown incident",
            IgnoreReason::DuplicateId => "duplicate incident id",
            IgnoreReason::AlreadyClosed => "incident already closed",
        })
    }
}

/// The incidents folded from the events, and the largest id seen.
#[derive(Debug, Clone, Default)]
pub(super) struct Folded {
    pub incidents: BTreeMap<IncidentId, Incident>,
    pub max_id: u64,
}

impl Folded {
    /// Whether `event` can be applied.
    pub fn check(&self, event: &JournalEvent) -> Result<(), IgnoreReason> {
        let id = event.id();
        let existing = self.incidents.get(&id);
        match (event, existing) {
            (JournalEvent::Opened { .. }, None) => Ok(()),
            (JournalEvent::Opened { .. }, Some(_)) => Err(IgnoreReason::DuplicateId),
            (_, None) => Err(IgnoreReason::UnknownIncident),
            (JournalEvent::Note { .. }, Some(_)) => Ok(()),
            (JournalEvent::ModeChanged { .. } | JournalEvent::Closed { .. }, Some(i)) => {
                if i.is_open() {
                    Ok(())
                } else {
                    Err(IgnoreReason::AlreadyClosed)
                }
            }
        }
    }

    /// Applies `event` if it can be; its id counts as seen either way.
    pub fn apply(&mut self, event: JournalEvent) -> Result<(), IgnoreReason> {
        self.max_id = self.max_id.max(event.id().0);
        self.check(&event)?;
        match event {
            JournalEvent::Opened {
                id,
                component,
                kind,
                at,
                details,
            } => {
                self.incidents.insert(
                    id,
                    Incident {
                        id,
                        component,
                        kind,
                        start: at,
                        end: None,
                        mode_changes: Vec::new(),
                        notes: Vec::new(),
                        details,
                        resolution: None,
                    },
                );
            }
            JournalEvent::ModeChanged { id, from, to, at } => {
                if let Some(i) = self.incidents.get_mut(&id) {
                    i.mode_changes.push(ModeChange { at, from, to });
                }
            }
            JournalEvent::Note { id, at, details } => {
                if let Some(i) = self.incidents.get_mut(&id) {
                    i.notes.push((at, details));
                }
            }
            JournalEvent::Closed { id, at, details } => {
                if let Some(i) = self.incidents.get_mut(&id) {
                    i.end = Some(at);
                    i.resolution = Some(details);
                }
            }
        }
        Ok(())
    }
}
