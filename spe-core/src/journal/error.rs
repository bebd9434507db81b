//! The error every [`Journal`](super::Journal) operation returns.

use std::io;
use std::path::{Path, PathBuf};

use super::model::IncidentId;

/// Why a journal operation failed.
///
/// Opening never overwrites a file it does not recognise: a bad header or an
/// unsupported version is an error and the file is left untouched. Damage
/// *after* a valid header is not an error: a torn tail is saved aside and
/// cut off, other damage is skipped and kept in the file, and both are
/// described in the [`OpenReport`](crate::OpenReport).
///
/// ```
/// use spe_core::{IncidentId, JournalError};
/// let e = JournalError::UnknownIncident(IncidentId(9));
/// assert_eq!(e.to_string(), "unknown incident #9");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A file-system operation failed (the record was then *not* acknowledged).
    #[error("journal {}: cannot {op}: {source}", .path.display())]
    Io {
        /// The journal (or its directory).
        path: PathBuf,
        /// What was being done, e.g. `append a record`.
        op: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file exists but does not start with a journal header.
    #[error("{}: not an SP-E incident journal (bad header); the file was left untouched", .path.display())]
    NotAJournal {
        /// The file.
        path: PathBuf,
    },
    /// The file is a journal of a format version this build cannot read.
    #[error(
        "{}: journal format version {found} is not supported (this build reads version {supported}); the file was left untouched",
        .path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The journal is already open in this process: clone that
    /// [`Journal`](super::Journal) instead of opening it twice.
    #[error("{}: journal already open in this process; clone the open Journal instead", .path.display())]
    AlreadyOpen {
        /// The file.
        path: PathBuf,
    },
    /// Another process has the journal open (it holds the file's lock):
    /// two processes appending to one journal would write over each
    /// other's records.
    #[error("{}: journal open in another process (its lock is held); stop that process or use another journal", .path.display())]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// No incident has this id.
    #[error("unknown incident {0}")]
    UnknownIncident(IncidentId),
    /// The incident is closed: it cannot be closed again nor change mode.
    #[error("incident {0} is already closed")]
    AlreadyClosed(IncidentId),
    /// The record would be larger than the format allows.
    #[error("journal record of {len} bytes exceeds the {max}-byte limit")]
    RecordTooLarge {
        /// Size of the encoded record.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The record could not be encoded.
    #[error("cannot encode journal record: {0}")]
    Encode(String),
    /// Every incident id has been used.
    #[error("incident ids exhausted")]
    IdsExhausted,
}

impl JournalError {
    pub(super) fn io(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> JournalError {
        let path = path.to_path_buf();
        move |source| JournalError::Io { path, op, source }
    }
}
