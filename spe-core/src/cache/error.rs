//! The errors [`Cache`](super::Cache) returns.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The file-system operation that failed, in a [`CacheError::Io`].
///
/// ```
/// use spe_core::CacheIoOp;
/// assert_eq!(CacheIoOp::SyncFile.to_string(), "fsync the temporary file");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheIoOp {
    /// Creating the cache directory.
    CreateDir,
    /// Listing the cache directory.
    ReadDir,
    /// Creating the temporary file a new generation is written to.
    CreateTemp,
    /// Writing the temporary file.
    Write,
    /// `fsync` of the temporary file.
    SyncFile,
    /// Renaming the temporary file over the generation's final name.
    Rename,
    /// `fsync` of the cache directory, which makes the rename durable.
    SyncDir,
    /// Opening or locking the cache's lock file (`<name>.lock`).
    Lock,
}

impl fmt::Display for CacheIoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CacheIoOp::CreateDir => "create the cache directory",
            CacheIoOp::ReadDir => "list the cache directory",
            CacheIoOp::CreateTemp => "create the temporary file",
            CacheIoOp::Write => "write the temporary file",
            CacheIoOp::SyncFile => "fsync the temporary file",
            CacheIoOp::Rename => "rename the temporary file into place",
            CacheIoOp::SyncDir => "fsync the cache directory",
            CacheIoOp::Lock => "open or lock the lock file",
        })
    }
}

/// Why a [`Cache`](super::Cache) could not be opened or written.
///
/// A corrupt file found on load is *not* an error: it is quarantined and
/// reported in the [`LoadReport`](super::LoadReport).
///
/// ```
/// use spe_core::{CacheError, CacheIoOp};
/// let e = CacheError::Io {
///     op: CacheIoOp::Write,
///     path: "cache/p.tmp".into(),
///     source: std::io::Error::from(std::io::ErrorKind::StorageFull),
/// };
/// assert!(e.is_storage_full());
/// assert!(e.to_string().starts_with("cannot write the temporary file cache/p.tmp"));
/// assert!(e.to_string().ends_with("(storage full)"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The cache name is not a simple file-name stem.
    #[error("invalid cache name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The configuration is unusable (e.g. zero generations).
    #[error("invalid cache configuration: {0}")]
    InvalidConfig(String),
    /// A file-system operation failed. When it happened during
    /// [`Cache::put`](super::Cache::put), the previous generation is intact and
    /// the temporary file has been removed.
    #[error("cannot {op} {path}: {source}{hint}", path = .path.display(), hint = storage_full_hint(.source))]
    Io {
        /// What was being done.
        op: CacheIoOp,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The cache is already open, in this process or another (its lock
    /// file's lock is held): two open caches of one name would remove each
    /// other's writes in progress. See
    /// [Concurrency](super::Cache#concurrency).
    #[error("{}: cache already open (its lock is held), in this process or another; use the open Cache (clone it) or stop the other process", .path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The value could not be serialized to JSON.
    #[error("cannot encode the value as JSON: {0}")]
    Encode(String),
    /// The serialized value exceeds
    /// [`CacheConfig::max_payload_bytes`](super::CacheConfig::max_payload_bytes).
    #[error("the value is {len} bytes as JSON, over the limit of {max} bytes")]
    PayloadTooLarge {
        /// Its size as JSON.
        len: u64,
        /// The configured limit.
        max: u64,
    },
    /// The generation counter reached `u64::MAX` (only possible if a file
    /// with such a number was placed in the directory).
    #[error("the generation counter is exhausted")]
    SequenceExhausted,
    /// The blocking task of [`Cache::put_async`](super::Cache::put_async)
    /// failed (panicked or was cancelled by a runtime shutdown).
    #[error("the background write task failed: {0}")]
    TaskFailed(String),
}

fn storage_full_hint(e: &io::Error) -> &'static str {
    if is_storage_full(e) {
        " (storage full)"
    } else {
        ""
    }
}

fn is_storage_full(e: &io::Error) -> bool {
    // ENOSPC (28 on Linux) is ErrorKind::StorageFull; EDQUOT (122 on Linux) is a full quota.
    e.kind() == io::ErrorKind::StorageFull
        || (cfg!(target_os = "linux") && matches!(e.raw_os_error(), Some(28) | Some(122)))
}

impl CacheError {
    /// Whether the error is a full disk or quota (`ENOSPC`, `EDQUOT`).
    ///
    /// ```
    /// use spe_core::CacheError;
    /// assert!(!CacheError::SequenceExhausted.is_storage_full());
    /// ```
    pub fn is_storage_full(&self) -> bool {
        match self {
            CacheError::Io { source, .. } => is_storage_full(source),
            _ => false,
        }
    }

    pub(crate) fn io(op: CacheIoOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CacheError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
