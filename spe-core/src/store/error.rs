//! The errors [`HistoryStore`](super::HistoryStore) returns.

use std::io;
use std::path::PathBuf;

/// Why the history store could not be opened, read or written.
///
/// A damaged database found when opening is *not* an error: it is
/// quarantined and replaced by the newest sound backup, as the
/// [`StoreOpenReport`](super::StoreOpenReport) says. Damage found while the
/// store is in use is [`StoreError::Corrupt`]: call
/// [`HistoryStore::recover`](super::HistoryStore::recover).
///
/// ```
/// use spe_core::StoreError;
/// let e = StoreError::InvalidValue { what: "observation demand_mw".into(), detail: "NaN".into() };
/// assert_eq!(e.to_string(), "invalid observation demand_mw: NaN; nothing was written");
/// assert!(!e.is_corruption());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("cannot {op} {path}: {source}", path = .path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The database engine refused an operation (disk full, locked by
    /// another process for longer than the busy timeout, …).
    #[error("cannot {op}: {message}")]
    Database {
        /// What was being done.
        op: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// The database file is damaged (SQLite reports corruption, or its
    /// integrity check fails). Nothing more is read from it: call
    /// [`HistoryStore::recover`](super::HistoryStore::recover).
    #[error("the history database {path} is damaged: {detail}", path = .path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The file is an SQLite database of another application (another
    /// application id, or none on a file that holds tables): it is left
    /// alone. Move it away or choose another directory.
    #[error(
        "{path} is an SQLite database of another application (application id {application_id:#x}); \
         it was left untouched: move it away or choose another data directory",
        path = .path.display()
    )]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// Its `PRAGMA application_id`.
        application_id: i32,
    },
    /// The database was written by a newer SP-E (its schema version is
    /// above the one this version knows). It is left alone.
    #[error(
        "{path} has schema version {found}, newer than the {supported} this SP-E reads; \
         it was left untouched: upgrade SP-E",
        path = .path.display()
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },
    /// The database needs a repair (it is damaged, empty or missing) while
    /// another store, in this process or another, has it open: moving it
    /// would lose that store's writes. The store that has it open repairs
    /// it on its next error; or close it and open again.
    #[error(
        "the history database needs a repair but another store has it open ({path}): \
         let that one repair it (it does on its next error), or close it and open again",
        path = .path.display()
    )]
    InUse {
        /// The store's lock file.
        path: PathBuf,
    },
    /// Another store, in this process or another, is making or rotating
    /// backups of the same database right now; nothing was done. The
    /// periodic upkeep skips its turn and tries again at the next one.
    #[error(
        "another store is making or rotating the backups in {dir}: try again later",
        dir = .dir.display()
    )]
    BackupInProgress {
        /// The backup directory.
        dir: PathBuf,
    },
    /// [`HistoryStore::relocate`](super::HistoryStore::relocate) was asked to
    /// move a store that a store, in this process or another, has open;
    /// nothing was moved.
    #[error(
        "cannot move the history store in {dir}: a store has it open; close it first",
        dir = .dir.display()
    )]
    Open {
        /// The store's directory.
        dir: PathBuf,
    },
    /// A value to record is unusable (not finite, or a time out of range).
    #[error("invalid {what}: {detail}; nothing was written")]
    InvalidValue {
        /// What was being recorded.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The configuration is unusable.
    #[error("invalid history store configuration: {0}")]
    InvalidConfig(String),
}

impl StoreError {
    /// Whether the error means the database file is damaged
    /// ([`StoreError::Corrupt`]).
    pub fn is_corruption(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
