//! The incident journal: an append-only, crash-safe record of every incident,
//! for the post-incident review ("RETEX"). See [`Journal`].

mod error;
mod format;
mod model;
mod retex;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use error::JournalError;
pub use model::{IgnoreReason, Incident, IncidentId, IncidentKind, JournalEvent, ModeChange};
pub use retex::{ComponentFigures, LongestOutage, Retex};

use crate::file_lock::ExclusiveLock;
use crate::provenance::Mode;
use format::{HeaderCheck, Item};
use model::Folded;

/// Why a region of the journal was skipped.
///
/// ```
/// use spe_core::CorruptReason;
/// assert_eq!(serde_json::to_string(&CorruptReason::InvalidFrame).unwrap(), "\"invalid_frame\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CorruptReason {
    /// Bytes that are not a valid frame (bad magic, length or checksum).
    InvalidFrame,
    /// A frame whose checksum is right but whose payload is not a known
    /// event (e.g. written by a newer version).
    UndecodableRecord,
}

/// A damaged region of the journal, skipped on open and kept in the file
/// (for the post-mortem): in the middle, or at the end when it is not a torn
/// tail (e.g. a complete last record whose checksum fails).
///
/// ```
/// # use spe_core::Journal;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let journal = Journal::open(dir.path().join("incidents.journal"))?;
/// for region in &journal.open_report().corrupt_regions {
///     eprintln!("skipped {} bytes at offset {} ({:?})", region.len, region.offset, region.reason);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CorruptRegion {
    /// Byte offset of the region in the file.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Why it was skipped.
    pub reason: CorruptReason,
}

/// A valid record left out of the folded view.
///
/// ```
/// # use spe_core::Journal;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let journal = Journal::open(dir.path().join("incidents.journal"))?;
/// for ignored in &journal.open_report().ignored_events {
///     eprintln!("ignored {:?} at offset {}: {}", ignored.event, ignored.offset, ignored.reason);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IgnoredEvent {
    /// Byte offset of its frame in the file.
    pub offset: u64,
    /// The event.
    pub event: JournalEvent,
    /// Why it was left out.
    pub reason: IgnoreReason,
}

/// What [`Journal::open`] found in the file.
///
/// Damage is not an error (a journal must survive crashes and bad sectors),
/// so it is reported here: a caller may journal a
/// [`IncidentKind::JournalCorrupt`] incident when [`corrupt_regions`](Self::corrupt_regions)
/// is not empty.
///
/// ```
/// use chrono::Utc;
/// use spe_core::{IncidentKind, Journal};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let journal = Journal::open(dir.path().join("incidents.journal"))?;
/// let report = journal.open_report();
/// assert!(report.created && report.is_clean());
/// if !report.corrupt_regions.is_empty() {
///     let now = Utc::now();
///     let id = journal.open_incident("journal", IncidentKind::JournalCorrupt, now, format!("{report:?}"))?;
///     journal.close_incident(id, now, "skipped")?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OpenReport {
    /// The file was missing or empty and was initialised.
    pub created: bool,
    /// Valid records read (including ignored ones).
    pub records_read: usize,
    /// Bytes of a torn tail at the end of the file — a last record cut
    /// short (an interrupted append), or zeros where data was never written —
    /// cut off after being copied to [`torn_tail_saved_to`](Self::torn_tail_saved_to).
    /// If the copy could not be made they are left in place (and new records
    /// go after them, so the next open reports them as a corrupt region).
    pub torn_tail_bytes: u64,
    /// The file beside the journal holding the torn tail's bytes,
    /// `<journal file name>.tail-<UTC timestamp>`: nothing is destroyed.
    /// `None` when there was no torn tail or the copy failed.
    pub torn_tail_saved_to: Option<PathBuf>,
    /// Damaged regions, skipped and kept in the file: anywhere but a torn
    /// tail (bit rot in a complete record, at the end too, is one).
    pub corrupt_regions: Vec<CorruptRegion>,
    /// Valid records left out of the folded view.
    pub ignored_events: Vec<IgnoredEvent>,
    /// The file header was damaged (a bit or two flipped, its records
    /// intact) and was rewritten; the damaged header's 12 bytes are in this
    /// file beside the journal, `<journal file name>.header-<UTC
    /// timestamp>`. `None` when the header was sound.
    pub damaged_header_saved_to: Option<PathBuf>,
}

impl OpenReport {
    /// No damage, nothing cut, nothing ignored.
    ///
    /// ```
    /// assert!(spe_core::OpenReport::default().is_clean());
    /// ```
    pub fn is_clean(&self) -> bool {
        self.torn_tail_bytes == 0
            && self.corrupt_regions.is_empty()
            && self.ignored_events.is_empty()
            && self.damaged_header_saved_to.is_none()
    }
}

/// Paths of the journals open in this process.
static OPEN_PATHS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn open_paths() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    OPEN_PATHS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Holds a path in [`OPEN_PATHS`] while alive.
struct Registration(PathBuf);

impl Registration {
    fn new(path: PathBuf) -> Result<Registration, JournalError> {
        if open_paths().insert(path.clone()) {
            Ok(Registration(path))
        } else {
            Err(JournalError::AlreadyOpen { path })
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        open_paths().remove(&self.0);
    }
}

struct State {
    file: File,
    /// Offset just past the last acknowledged record.
    end: u64,
    /// The file may hold bytes past `end` (a failed write or truncation):
    /// cut them before the next append.
    needs_cut: bool,
    folded: Folded,
}

struct Shared {
    path: PathBuf,
    report: OpenReport,
    state: Mutex<State>,
    _registration: Registration,
    _lock: ExclusiveLock,
}

/// Takes the journal's lock: an exclusive advisory lock (`flock`) on the
/// file itself, held while it is open, so a second process (a new server
/// started beside a hung one, a notebook) gets [`JournalError::Locked`]
/// instead of appending over this one's acknowledged records. On the file,
/// not its path: a hard link or another path to it is the same lock.
fn lock_journal(file: &File, path: &Path) -> Result<ExclusiveLock, JournalError> {
    let locked = file
        .try_clone()
        .and_then(ExclusiveLock::try_lock)
        .map_err(JournalError::io(path, "lock the file"))?;
    locked.ok_or_else(|| JournalError::Locked {
        path: path.to_path_buf(),
    })
}

/// An append-only, crash-safe incident journal, for the post-incident review
/// ("RETEX"): the [`Incident`]s it folds from its records can be queried by
/// time range and summed up in a [`Retex`] report with availability figures.
///
/// # Durability
///
/// Every append is written and `fsync`ed (`sync_data`) before the call
/// returns: **an acknowledged record survives a crash** (process kill or power
/// loss, on a file system and disk that honour `fsync`). A record whose append
/// returned an error, or that was being written when the process died, may or
/// may not be there after a restart; if it was cut short it is ignored.
///
/// # File format (version 1)
///
/// ```text
/// header := "SPEJRNL\0" (8 bytes) · format version (u32 LE)                 12 bytes
/// frame  := magic E5 4A 52 1D · len (u32 LE) · crc32c (u32 LE) · payload    12 + len bytes
/// ```
///
/// The checksum is CRC-32C over the four length bytes followed by the
/// payload; the payload is one [`JournalEvent`] as JSON (at most 1 MiB). The
/// frame magic cannot occur inside UTF-8 text, so after damage the reader
/// resynchronises on the next magic whose frame validates; a frame with
/// another magic inside it is invalid without its checksum being computed,
/// so opening takes time linear in the file size whatever the file holds.
///
/// # Opening an existing journal
///
/// - A file that does not start with the header, or of another version, is an
///   error ([`JournalError::NotAJournal`], [`JournalError::UnsupportedVersion`])
///   and is left untouched. An empty file, a strict prefix of the header or
///   zeros no longer than it (a crash while creating it) is initialised.
/// - A header one or two bits off (bit rot) over records this build reads
///   is rewritten, its bytes saved to `<journal file name>.header-<UTC
///   timestamp>` ([`OpenReport::damaged_header_saved_to`]), unless the
///   damage could be a newer version's number (`3`, `5`, `9`, … up to
///   255): a newer build's file is never rewritten.
/// - A torn tail — what a crash during an append leaves: a last frame whose
///   header or payload runs past the end of the file, or zeros where the
///   data was never written — is copied to `<journal file name>.tail-<UTC
///   timestamp>` beside the journal (file and directory `fsync`ed), then cut
///   off (truncate + `fsync`), and counted in [`OpenReport::torn_tail_bytes`].
/// - Any other damage is skipped up to the next valid frame (or up to the
///   torn tail, or the end of the file), kept in the file, logged with
///   `tracing::warn!` and listed in [`OpenReport::corrupt_regions`]: in the
///   middle, and at the end too — a complete last record whose checksum
///   fails is bit rot in an acknowledged record, not a torn append. The
///   records after it are read, and new records go after it.
/// - Events about an incident whose opening record was lost (or that close an
///   incident twice) are left out of the folded view and listed in
///   [`OpenReport::ignored_events`]. Ids continue after the largest id seen in
///   any record.
///
/// The whole file is read once at open; queries are answered from memory.
///
/// # Use from async code
///
/// Every method is synchronous (appends wait for the disk): call them through
/// `tokio::task::spawn_blocking`. A [`Journal`] is cheap to clone (an `Arc`)
/// and `Send + Sync`; clones share one file. A given file is open once per
/// process ([`JournalError::AlreadyOpen`] otherwise), and in one process at
/// a time: the open journal holds an exclusive `flock` on it (Unix), and
/// another process opening it gets [`JournalError::Locked`].
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use spe_core::{IncidentKind, Journal, Mode};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("data/incidents.journal");
/// let journal = Journal::open(&path)?;
/// let t0 = Utc.with_ymd_and_hms(2026, 2, 3, 14, 0, 0).unwrap();
///
/// let id = journal.open_incident("open-meteo", IncidentKind::UpstreamTimeout, t0, "no answer within 5000 ms")?;
/// journal.mode_changed(id, Mode::Nominal, Mode::Estimation, t0)?;
/// journal.note(id, t0 + TimeDelta::minutes(10), "12 more failed calls")?;
/// journal.mode_changed(id, Mode::Estimation, Mode::Nominal, t0 + TimeDelta::minutes(25))?;
/// journal.close_incident(id, t0 + TimeDelta::minutes(25), "half-open probe succeeded")?;
/// drop(journal);
///
/// // After a restart (or a crash), everything acknowledged is there.
/// let journal = Journal::open(&path)?;
/// assert!(journal.open_report().is_clean());
/// let incident = journal.incident(id).unwrap();
/// assert_eq!(incident.duration(t0), TimeDelta::minutes(25));
/// assert_eq!(incident.mode_changes.len(), 2);
///
/// let retex = journal.retex(t0 - TimeDelta::days(7), t0 + TimeDelta::days(7), t0 + TimeDelta::days(7));
/// println!("{}", retex.to_markdown());
/// # Ok(()) }
/// ```
///
/// Clones share the journal, across threads:
///
/// ```
/// use chrono::Utc;
/// use spe_core::{IncidentKind, Journal};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let journal = Journal::open(dir.path().join("incidents.journal"))?;
/// let clone = journal.clone();
/// let id = std::thread::spawn(move || {
///     clone.open_incident("prediction-engine", IncidentKind::ModelTimeout, Utc::now(), "no output in 60 s")
/// })
/// .join()
/// .unwrap()?;
/// assert_eq!(journal.open_incidents()[0].id, id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Journal {
    shared: Arc<Shared>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Marks the copy of a torn tail: `<journal file name>.tail-<UTC timestamp>`.
const TAIL_MARK: &str = ".tail-";
/// Marks the copy of a damaged header: `<journal file name>.header-<UTC timestamp>`.
const HEADER_MARK: &str = ".header-";

/// Whether the frames after the header hold at least one record this build
/// reads: the proof that a damaged header is this format's.
fn holds_a_record(buf: &[u8]) -> bool {
    format::scan(buf, format::HEADER_LEN)
        .items
        .iter()
        .any(|item| match item {
            Item::Frame { payload, .. } => serde_json::from_slice::<JournalEvent>(payload).is_ok(),
            Item::Damaged { .. } => false,
        })
}

/// Copies `bytes` (a torn tail, a damaged header) of the journal at `path`
/// to a new file beside it, `<file name><mark><stamp>` (with `-1`, `-2`, …
/// if taken: an earlier copy is never overwritten), `fsync`s it and the
/// directory `dir`, and returns it; nothing is left behind if the copy
/// fails.
fn save_copy(
    path: &Path,
    dir: &Path,
    bytes: &[u8],
    mark: &str,
    stamp: &str,
) -> std::io::Result<PathBuf> {
    for target in crate::durable::side_names(path, mark, stamp) {
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| crate::durable::sync_dir(dir));
        return match written {
            Ok(()) => Ok(target),
            Err(e) => {
                // An incomplete copy is no copy; the tail stays in the journal.
                let _ = fs::remove_file(&target);
                Err(e)
            }
        };
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "no free name for the copy",
    ))
}

impl Journal {
    /// The format version this build reads and writes.
    ///
    /// ```
    /// assert_eq!(spe_core::Journal::FORMAT_VERSION, 1);
    /// ```
    pub const FORMAT_VERSION: u32 = format::FORMAT_VERSION;

    /// The largest record (encoded JSON event) accepted, in bytes.
    ///
    /// ```
    /// assert_eq!(spe_core::Journal::MAX_RECORD_BYTES, 1 << 20);
    /// ```
    pub const MAX_RECORD_BYTES: usize = format::MAX_PAYLOAD_LEN;

    /// Opens the journal at `path`, creating it (and its parent directories)
    /// if missing; cuts a torn tail (saving a copy) and skips other damage, as the
    /// [`Journal`] documentation describes, and says what it found in
    /// [`open_report`](Self::open_report).
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the file cannot be created, read or repaired;
    /// [`JournalError::NotAJournal`] or [`JournalError::UnsupportedVersion`]
    /// for a file that is not a journal of this format (left untouched);
    /// [`JournalError::AlreadyOpen`] if this process has it open already.
    ///
    /// ```
    /// use spe_core::{Journal, JournalError};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("nested/dir/incidents.journal");
    /// let journal = Journal::open(&path)?;
    /// assert!(journal.open_report().created);
    /// assert!(matches!(Journal::open(&path), Err(JournalError::AlreadyOpen { .. })));
    /// drop(journal);
    /// assert!(!Journal::open(&path)?.open_report().created);
    ///
    /// std::fs::write(dir.path().join("notes.txt"), "hello")?;
    /// assert!(matches!(Journal::open(dir.path().join("notes.txt")), Err(JournalError::NotAJournal { .. })));
    /// # Ok(()) }
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Journal, JournalError> {
        let path = path.as_ref();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // New directories' entries are made durable too.
        let unsynced = crate::durable::create_dir_all(&dir)
            .map_err(JournalError::io(&dir, "create the directory"))?;
        for (parent, e) in unsynced {
            tracing::warn!(dir = %parent.display(), error = %e, "journal: cannot fsync the parent directory");
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(JournalError::io(path, "open the file"))?;
        let canonical =
            fs::canonicalize(path).map_err(JournalError::io(path, "resolve the path"))?;
        let registration = Registration::new(canonical)?;
        let lock = lock_journal(&file, path)?;

        let mut buf = Vec::new();
        file.read_to_end(&mut buf)
            .map_err(JournalError::io(path, "read the file"))?;

        let mut report = OpenReport::default();
        let mut header = format::check_header(&buf);
        if matches!(header, HeaderCheck::BadMagic | HeaderCheck::BadVersion(_))
            && format::damaged_header(&buf)
            && holds_a_record(&buf)
        {
            let stamp = crate::durable::stamp(Utc::now());
            let saved = save_copy(path, &dir, &buf[..format::HEADER_LEN], HEADER_MARK, &stamp)
                .and_then(|saved| {
                    file.seek(SeekFrom::Start(0))?;
                    file.write_all(&format::header())?;
                    file.sync_all()?;
                    Ok(saved)
                })
                .map_err(JournalError::io(path, "repair the damaged header"))?;
            tracing::warn!(
                path = %path.display(),
                saved_to = %saved.display(),
                "damaged header of the incident journal rewritten (its records are intact)"
            );
            buf[..format::HEADER_LEN].copy_from_slice(&format::header());
            report.damaged_header_saved_to = Some(saved);
            header = HeaderCheck::Valid;
        }
        match header {
            HeaderCheck::Valid => {}
            HeaderCheck::Uninitialised => {
                let init = |file: &mut File| -> std::io::Result<()> {
                    file.set_len(0)?;
                    file.seek(SeekFrom::Start(0))?;
                    file.write_all(&format::header())?;
                    file.sync_all()?;
                    crate::durable::sync_dir(&dir)
                };
                init(&mut file).map_err(JournalError::io(path, "initialise the file"))?;
                report.created = true;
                buf = format::header().to_vec();
                tracing::info!(path = %path.display(), "incident journal created");
            }
            HeaderCheck::BadMagic => {
                return Err(JournalError::NotAJournal {
                    path: path.to_path_buf(),
                });
            }
            HeaderCheck::BadVersion(found) => {
                return Err(JournalError::UnsupportedVersion {
                    path: path.to_path_buf(),
                    found,
                    supported: format::FORMAT_VERSION,
                });
            }
        }

        let scan = format::scan(&buf, format::HEADER_LEN);
        let mut folded = Folded::default();
        for item in scan.items {
            match item {
                Item::Frame {
                    offset,
                    len,
                    payload,
                } => match serde_json::from_slice::<JournalEvent>(payload) {
                    Ok(event) => {
                        report.records_read += 1;
                        if let Err(reason) = folded.apply(event.clone()) {
                            tracing::warn!(
                                path = %path.display(), offset, id = %event.id(), %reason,
                                "journal record ignored"
                            );
                            report.ignored_events.push(IgnoredEvent {
                                offset: to_u64(offset),
                                event,
                                reason,
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(
                            path = %path.display(), offset, len, error = %e,
                            "journal record with a valid checksum but an unknown content skipped"
                        );
                        report.corrupt_regions.push(CorruptRegion {
                            offset: to_u64(offset),
                            len: to_u64(len),
                            reason: CorruptReason::UndecodableRecord,
                        });
                    }
                },
                Item::Damaged { offset, len } => {
                    tracing::warn!(
                        path = %path.display(), offset, len,
                        "corrupt region in the incident journal skipped"
                    );
                    report.corrupt_regions.push(CorruptRegion {
                        offset: to_u64(offset),
                        len: to_u64(len),
                        reason: CorruptReason::InvalidFrame,
                    });
                }
            }
        }

        let checksummed = scan.checksummed;
        let torn_from = scan.torn_from;
        let mut end = to_u64(torn_from);
        let mut needs_cut = false;
        if let Some(tail) = buf.get(torn_from..).filter(|t| !t.is_empty()) {
            report.torn_tail_bytes = to_u64(tail.len());
            let stamp = crate::durable::stamp(Utc::now());
            match save_copy(path, &dir, tail, TAIL_MARK, &stamp) {
                Ok(saved) => {
                    tracing::warn!(
                        path = %path.display(), offset = torn_from, bytes = tail.len(),
                        saved_to = %saved.display(),
                        "torn tail of the incident journal saved aside and cut off"
                    );
                    report.torn_tail_saved_to = Some(saved);
                    let truncate = |file: &File| -> std::io::Result<()> {
                        file.set_len(end)?;
                        file.sync_all()
                    };
                    if let Err(e) = truncate(&file) {
                        // Still readable; the next append retries the cut first.
                        tracing::warn!(path = %path.display(), error = %e, "cannot cut the torn tail yet");
                        needs_cut = true;
                    }
                }
                Err(e) => {
                    // Never destroy bytes that could not be saved: keep them,
                    // and append after them.
                    tracing::error!(
                        path = %path.display(), offset = torn_from, bytes = tail.len(), error = %e,
                        "cannot save the torn tail of the incident journal aside; it is kept, and new records go after it"
                    );
                    end = to_u64(buf.len());
                }
            }
        }

        tracing::info!(
            path = %path.display(),
            records = report.records_read,
            incidents = folded.incidents.len(),
            torn_tail_bytes = report.torn_tail_bytes,
            corrupt_regions = report.corrupt_regions.len(),
            ignored_events = report.ignored_events.len(),
            bytes = buf.len(),
            checksummed,
            "incident journal opened"
        );

        Ok(Journal {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                report,
                state: Mutex::new(State {
                    file,
                    end,
                    needs_cut,
                    folded,
                }),
                _registration: registration,
                _lock: lock,
            }),
        })
    }

    /// What [`open`](Self::open) found: records read, bytes cut, regions skipped.
    ///
    /// ```
    /// # use spe_core::Journal;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let journal = Journal::open(dir.path().join("incidents.journal"))?;
    /// assert_eq!(journal.open_report().records_read, 0);
    /// # Ok(()) }
    /// ```
    pub fn open_report(&self) -> &OpenReport {
        &self.shared.report
    }

    /// The path the journal was opened with.
    ///
    /// ```
    /// # use spe_core::Journal;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("incidents.journal");
    /// assert_eq!(Journal::open(&path)?.path(), path);
    /// # Ok(()) }
    /// ```
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // State is only changed after the disk said yes, so it is consistent
        // even if a thread panicked while holding the lock.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `event` (valid for `state`), fsyncs it, then folds it in.
    fn append(&self, state: &mut State, event: JournalEvent) -> Result<(), JournalError> {
        let path = &self.shared.path;
        let payload =
            serde_json::to_vec(&event).map_err(|e| JournalError::Encode(e.to_string()))?;
        if payload.len() > format::MAX_PAYLOAD_LEN {
            return Err(JournalError::RecordTooLarge {
                len: payload.len(),
                max: format::MAX_PAYLOAD_LEN,
            });
        }
        let frame = format::encode_frame(&payload);
        if state.needs_cut {
            state
                .file
                .set_len(state.end)
                .map_err(JournalError::io(path, "cut the end of the file"))?;
            state.needs_cut = false;
        }
        let end = state.end;
        let write = |file: &mut File| -> std::io::Result<()> {
            file.seek(SeekFrom::Start(end))?;
            file.write_all(&frame)?;
            file.sync_data()
        };
        if let Err(e) = write(&mut state.file) {
            // Not acknowledged: take the partial record back out if we can.
            if state.file.set_len(end).is_err() {
                state.needs_cut = true;
            }
            tracing::warn!(path = %path.display(), error = %e, "journal append failed");
            return Err(JournalError::Io {
                path: path.clone(),
                op: "append a record",
                source: e,
            });
        }
        state.end = end + to_u64(frame.len());
        tracing::debug!(path = %path.display(), id = %event.id(), bytes = frame.len(), "journal record appended");
        // Checked by the caller under the same lock, so this cannot be refused.
        let _ = state.folded.apply(event);
        Ok(())
    }

    fn append_checked(&self, event: JournalEvent) -> Result<(), JournalError> {
        let mut state = self.state();
        let id = event.id();
        state.folded.check(&event).map_err(|reason| match reason {
            IgnoreReason::AlreadyClosed => JournalError::AlreadyClosed(id),
            _ => JournalError::UnknownIncident(id),
        })?;
        self.append(&mut state, event)
    }

    /// Records the start of an incident and returns its new id. Call it once
    /// per outage (not once per failed call); use [`note`](Self::note) for
    /// what happens during it.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the record could not be written and synced
    /// (then the incident does not exist); [`JournalError::RecordTooLarge`].
    ///
    /// ```
    /// # use chrono::Utc;
    /// # use spe_core::{IncidentKind, IncidentId, Journal};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let journal = Journal::open(dir.path().join("incidents.journal"))?;
    /// let a = journal.open_incident("open-meteo", IncidentKind::UpstreamUnreachable, Utc::now(), "connection refused")?;
    /// let b = journal.open_incident("prediction-engine", IncidentKind::ModelCrash, Utc::now(), "exit 1")?;
    /// assert_eq!((a, b), (IncidentId(1), IncidentId(2)));
    /// # Ok(()) }
    /// ```
    pub fn open_incident(
        &self,
        component: impl Into<String>,
        kind: IncidentKind,
        at: DateTime<Utc>,
        details: impl Into<String>,
    ) -> Result<IncidentId, JournalError> {
        let mut state = self.state();
        let id = IncidentId(
            state
                .folded
                .max_id
                .checked_add(1)
                .ok_or(JournalError::IdsExhausted)?,
        );
        let event = JournalEvent::Opened {
            id,
            component: component.into(),
            kind,
            at,
            details: details.into(),
        };
        self.append(&mut state, event)?;
        Ok(id)
    }

    /// Records that incident `id` moved the service from mode `from` to `to`.
    ///
    /// # Errors
    ///
    /// [`JournalError::UnknownIncident`], [`JournalError::AlreadyClosed`],
    /// [`JournalError::Io`].
    ///
    /// ```
    /// # use chrono::Utc;
    /// # use spe_core::{IncidentKind, Journal, JournalError, Mode};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("incidents.journal"))?;
    /// let id = journal.open_incident("open-meteo", IncidentKind::Upstream5xx, Utc::now(), "HTTP 502")?;
    /// journal.mode_changed(id, Mode::Nominal, Mode::Estimation, Utc::now())?;
    /// journal.close_incident(id, Utc::now(), "recovered")?;
    /// let late = journal.mode_changed(id, Mode::Estimation, Mode::Nominal, Utc::now());
    /// assert!(matches!(late, Err(JournalError::AlreadyClosed(_))));
    /// # Ok(()) }
    /// ```
    pub fn mode_changed(
        &self,
        id: IncidentId,
        from: Mode,
        to: Mode,
        at: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        self.append_checked(JournalEvent::ModeChanged { id, from, to, at })
    }

    /// Adds a note to incident `id`, open or closed: further failures seen
    /// during the outage (summarised — counting them is the caller's job),
    /// or a post-mortem remark.
    ///
    /// # Errors
    ///
    /// [`JournalError::UnknownIncident`], [`JournalError::Io`],
    /// [`JournalError::RecordTooLarge`].
    ///
    /// ```
    /// # use chrono::Utc;
    /// # use spe_core::{IncidentKind, Journal};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("incidents.journal"))?;
    /// let id = journal.open_incident("open-meteo", IncidentKind::UpstreamTimeout, Utc::now(), "5 s")?;
    /// journal.note(id, Utc::now(), "also HTTP 503 twice")?;
    /// assert_eq!(journal.incident(id).unwrap().notes[0].1, "also HTTP 503 twice");
    /// # Ok(()) }
    /// ```
    pub fn note(
        &self,
        id: IncidentId,
        at: DateTime<Utc>,
        details: impl Into<String>,
    ) -> Result<(), JournalError> {
        self.append_checked(JournalEvent::Note {
            id,
            at,
            details: details.into(),
        })
    }

    /// Records the end of incident `id` and returns the closed incident.
    ///
    /// # Errors
    ///
    /// [`JournalError::UnknownIncident`], [`JournalError::AlreadyClosed`]
    /// (closing twice is refused, not a panic), [`JournalError::Io`].
    ///
    /// ```
    /// # use chrono::{TimeDelta, Utc};
    /// # use spe_core::{IncidentId, IncidentKind, Journal, JournalError};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("incidents.journal"))?;
    /// let start = Utc::now();
    /// let id = journal.open_incident("open-meteo", IncidentKind::UpstreamTimeout, start, "5 s")?;
    /// let closed = journal.close_incident(id, start + TimeDelta::minutes(2), "probe ok")?;
    /// assert_eq!(closed.duration(start), TimeDelta::minutes(2));
    /// assert!(matches!(journal.close_incident(id, start, ""), Err(JournalError::AlreadyClosed(_))));
    /// assert!(matches!(journal.close_incident(IncidentId(99), start, ""), Err(JournalError::UnknownIncident(_))));
    /// # Ok(()) }
    /// ```
    pub fn close_incident(
        &self,
        id: IncidentId,
        at: DateTime<Utc>,
        details: impl Into<String>,
    ) -> Result<Incident, JournalError> {
        let mut state = self.state();
        let event = JournalEvent::Closed {
            id,
            at,
            details: details.into(),
        };
        state.folded.check(&event).map_err(|reason| match reason {
            IgnoreReason::AlreadyClosed => JournalError::AlreadyClosed(id),
            _ => JournalError::UnknownIncident(id),
        })?;
        self.append(&mut state, event)?;
        state
            .folded
            .incidents
            .get(&id)
            .cloned()
            .ok_or(JournalError::UnknownIncident(id))
    }

    /// Close an incident a component tracks (the prediction chain, the
    /// failover service). One already closed (or unknown) is as good as
    /// closed; an I/O error is returned, and the caller keeps tracking the
    /// incident so that its next success closes it.
    pub(crate) fn close_tracked(
        &self,
        id: IncidentId,
        at: DateTime<Utc>,
        details: impl Into<String>,
    ) -> Result<(), JournalError> {
        match self.close_incident(id, at, details) {
            Ok(_) => Ok(()),
            Err(JournalError::AlreadyClosed(_) | JournalError::UnknownIncident(_)) => {
                tracing::warn!(incident = %id, "the tracked incident was already closed");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The incident with this id, if any.
    ///
    /// ```
    /// # use spe_core::{IncidentId, Journal};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("incidents.journal"))?;
    /// assert!(journal.incident(IncidentId(1)).is_none());
    /// # Ok(()) }
    /// ```
    pub fn incident(&self, id: IncidentId) -> Option<Incident> {
        self.state().folded.incidents.get(&id).cloned()
    }

    /// The incidents whose interval `[start, end]` overlaps `range`, newest
    /// first (latest start first). An open incident is still going on: its
    /// interval has no end. `..` gives them all.
    ///
    /// ```
    /// # use chrono::{TimeDelta, TimeZone, Utc};
    /// # use spe_core::{IncidentKind, Journal};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("incidents.journal"))?;
    /// let day = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    /// let a = journal.open_incident("open-meteo", IncidentKind::UpstreamTimeout, day, "")?;
    /// journal.close_incident(a, day + TimeDelta::hours(1), "")?;
    /// let b = journal.open_incident("open-meteo", IncidentKind::Upstream5xx, day + TimeDelta::days(2), "")?;
    ///
    /// let ids = |v: Vec<spe_core::Incident>| v.iter().map(|i| i.id).collect::<Vec<_>>();
    /// assert_eq!(ids(journal.incidents(..)), [b, a]);
    /// assert_eq!(ids(journal.incidents(day + TimeDelta::minutes(30)..day + TimeDelta::days(1))), [a]);
    /// assert_eq!(ids(journal.incidents(day + TimeDelta::days(30)..)), [b]); // still open
    /// # Ok(()) }
    /// ```
    pub fn incidents(&self, range: impl RangeBounds<DateTime<Utc>>) -> Vec<Incident> {
        let mut found: Vec<Incident> = self
            .state()
            .folded
            .incidents
            .values()
            .filter(|i| overlaps(i, &range))
            .cloned()
            .collect();
        retex::newest_first(&mut found);
        found
    }

    /// The `limit` newest incidents (latest start first, as
    /// [`incidents`](Self::incidents) orders them), cloning only those: for
    /// a listing of the last few in a long journal.
    ///
    /// ```
    /// # use chrono::{TimeDelta, Utc};
    /// # use spe_core::{IncidentKind, Journal};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("incidents.journal"))?;
    /// let t = Utc::now();
    /// for h in 0..5 {
    ///     journal.open_incident("x", IncidentKind::Other, t + TimeDelta::hours(h), "")?;
    /// }
    /// let two = journal.newest_incidents(2);
    /// assert_eq!(two, journal.incidents(..)[..2]);
    /// assert_eq!(two[0].start, t + TimeDelta::hours(4));
    /// # Ok(()) }
    /// ```
    pub fn newest_incidents(&self, limit: usize) -> Vec<Incident> {
        let state = self.state();
        let mut found: Vec<&Incident> = state.folded.incidents.values().collect();
        let newest = |a: &&Incident, b: &&Incident| retex::newest_order(a, b);
        if limit < found.len() {
            found.select_nth_unstable_by(limit, newest);
            found.truncate(limit);
        }
        found.sort_by(newest);
        found.into_iter().cloned().collect()
    }

    /// The incidents still open, newest first.
    ///
    /// ```
    /// # use chrono::Utc;
    /// # use spe_core::{IncidentKind, Journal};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("incidents.journal"))?;
    /// let id = journal.open_incident("open-meteo", IncidentKind::UpstreamTimeout, Utc::now(), "")?;
    /// assert_eq!(journal.open_incidents().len(), 1);
    /// journal.close_incident(id, Utc::now(), "")?;
    /// assert!(journal.open_incidents().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn open_incidents(&self) -> Vec<Incident> {
        let mut found: Vec<Incident> = self
            .state()
            .folded
            .incidents
            .values()
            .filter(|i| i.is_open())
            .cloned()
            .collect();
        retex::newest_first(&mut found);
        found
    }

    /// After a restart, the incident of `component` to continue: the newest
    /// one still open, noted with `note` at `at`. Older open ones of the
    /// component (left by an earlier crash) are closed as superseded by it,
    /// so one outage keeps one incident. `None` when none is open. Journal
    /// errors are logged, not returned: a restart goes on without them.
    ///
    /// ```
    /// # use chrono::Utc;
    /// # use spe_core::{IncidentKind, Journal};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("incidents.journal"))?;
    /// let older = journal.open_incident("prediction", IncidentKind::ModelCrash, Utc::now(), "crash")?;
    /// let newer = journal.open_incident("prediction", IncidentKind::ModelTimeout, Utc::now(), "60 s")?;
    /// assert_eq!(journal.continue_open_incident("prediction", Utc::now(), "restarted"), Some(newer));
    /// assert!(!journal.incident(older).unwrap().is_open());
    /// assert_eq!(journal.incident(newer).unwrap().notes[0].1, "restarted");
    /// assert_eq!(journal.continue_open_incident("open-meteo", Utc::now(), "restarted"), None);
    /// # Ok(()) }
    /// ```
    pub fn continue_open_incident(
        &self,
        component: &str,
        at: DateTime<Utc>,
        note: &str,
    ) -> Option<IncidentId> {
        let mut open: Vec<IncidentId> = self
            .open_incidents()
            .into_iter()
            .filter(|i| i.component == component)
            .map(|i| i.id)
            .collect();
        open.sort_unstable();
        let newest = open.pop()?;
        tracing::info!(incident = %newest, component, "continuing an open incident after a restart");
        if let Err(e) = self.note(newest, at, note) {
            tracing::error!(incident = %newest, error = %e, "could not note the restart");
        }
        for id in open {
            let reason = format!("superseded by incident {newest}, still open at restart");
            if let Err(e) = self.close_tracked(id, at, reason) {
                tracing::error!(incident = %id, error = %e, "could not close a superseded incident");
            }
        }
        Some(newest)
    }

    /// The post-incident review of the period `[from, to)` (its end
    /// excluded, so consecutive periods share no incident that merely touches
    /// their boundary) as seen at `now` (open incidents last until `now`):
    /// availability, downtime, incident count, mean time to recovery, longest
    /// outage, counts by kind and per-component figures. See [`Retex`] for
    /// which incidents count and how availability is measured — over the part
    /// of the period elapsed at `now`; an empty or inverted period, or one
    /// not begun, has availability 1.
    ///
    /// ```
    /// # use chrono::{TimeDelta, TimeZone, Utc};
    /// # use spe_core::{IncidentKind, Journal};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let journal = Journal::open(dir.path().join("incidents.journal"))?;
    /// let from = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    /// let id = journal.open_incident("open-meteo", IncidentKind::UpstreamTimeout, from + TimeDelta::hours(12), "")?;
    /// let retex = journal.retex(from, from + TimeDelta::days(1), from + TimeDelta::hours(18));
    /// assert_eq!(retex.still_open, 1);
    /// assert_eq!(retex.downtime, TimeDelta::hours(6)); // open: counted until `now`
    /// // The day is not over: availability is over the 18 h elapsed, not 24 h.
    /// assert_eq!(retex.measured_until, from + TimeDelta::hours(18));
    /// assert_eq!(retex.availability, 1.0 - 6.0 / 18.0);
    /// assert_eq!(retex.mttr, None);
    ///
    /// // The next day: the incident is in it only while it goes on.
    /// let next = from + TimeDelta::days(1);
    /// journal.close_incident(id, next, "recovered at midnight")?;
    /// assert_eq!(journal.retex(next, next + TimeDelta::days(1), next + TimeDelta::days(1)).incident_count, 0);
    /// # Ok(()) }
    /// ```
    pub fn retex(&self, from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Retex {
        let all: Vec<Incident> = self.state().folded.incidents.values().cloned().collect();
        Retex::compute(all, from, to, now)
    }
}

/// Whether the incident's `[start, end]` (unbounded end while open) meets `range`.
fn overlaps(incident: &Incident, range: &impl RangeBounds<DateTime<Utc>>) -> bool {
    let after_range_start = match (range.start_bound(), incident.end) {
        (Bound::Unbounded, _) | (_, None) => true,
        (Bound::Included(a), Some(e)) => e.max(incident.start) >= *a,
        (Bound::Excluded(a), Some(e)) => e.max(incident.start) > *a,
    };
    let before_range_end = match range.end_bound() {
        Bound::Unbounded => true,
        Bound::Included(b) => incident.start <= *b,
        Bound::Excluded(b) => incident.start < *b,
    };
    after_range_start && before_range_end
}
