//! The store's lock file (`history.lock`): every open store holds a shared
//! lock on it for its lifetime; moving the database (a quarantine, a
//! restore) needs the exclusive lock, so no other store, in this process or
//! another, can be writing to the file being moved. Making or rotating
//! backups holds an exclusive lock on `backups/backups.lock`, so two
//! processes backing up the same store never both take the next sequence
//! number: the second finds the lock taken and skips its turn
//! ([`StoreError::BackupInProgress`]) rather than wait on a holder that
//! might hang. Advisory (`flock`) on Unix; elsewhere a no-op.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::StoreError;
use crate::file_lock::{ExclusiveLock, open_lock_file};

/// The lock file's name in the store's directory.
pub(super) const LOCK_FILE: &str = "history.lock";

/// A shared lock on a store's lock file, held until dropped.
#[derive(Debug)]
pub(super) struct StoreLock {
    path: PathBuf,
    #[cfg(unix)]
    flock: nix::fcntl::Flock<File>,
    #[cfg(not(unix))]
    _file: File,
}

impl StoreLock {
    /// Takes a shared lock on `dir`'s lock file (waiting for a repair in
    /// progress elsewhere to end).
    pub(super) fn shared(dir: &Path) -> Result<StoreLock, StoreError> {
        let path = dir.join(LOCK_FILE);
        let file =
            open_lock_file(&path).map_err(|e| StoreError::io("open the lock file", &path, e))?;
        #[cfg(unix)]
        {
            use nix::fcntl::{Flock, FlockArg};
            let flock = Flock::lock(file, FlockArg::LockShared)
                .map_err(|(_, errno)| StoreError::io("lock", &path, std::io::Error::from(errno)))?;
            Ok(StoreLock { path, flock })
        }
        #[cfg(not(unix))]
        {
            Ok(StoreLock { path, _file: file })
        }
    }

    /// Runs `f` under the exclusive lock, then goes back to the shared one.
    /// [`StoreError::InUse`] if another store holds the lock.
    pub(super) fn exclusive<T>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        #[cfg(unix)]
        {
            use nix::fcntl::FlockArg;
            if let Err(errno) = self.flock.relock(FlockArg::LockExclusiveNonblock) {
                // A failed conversion may have dropped the shared lock: take
                // it again before saying why.
                let _ = self.flock.relock(FlockArg::LockShared);
                return Err(if errno == nix::errno::Errno::EWOULDBLOCK {
                    StoreError::InUse {
                        path: self.path.clone(),
                    }
                } else {
                    StoreError::io("lock", &self.path, std::io::Error::from(errno))
                });
            }
            let r = f();
            if let Err(errno) = self.flock.relock(FlockArg::LockShared) {
                tracing::warn!(error = %errno, "could not go back to a shared lock on the history store");
            }
            r
        }
        #[cfg(not(unix))]
        {
            f()
        }
    }
}

/// Takes the exclusive lock on `path` (created if missing) if no one, in
/// this process or another, holds it: `None` if someone does (a holder that
/// hangs then never blocks this one).
pub(super) fn try_exclusive(path: &Path) -> Result<Option<ExclusiveLock>, StoreError> {
    let file = open_lock_file(path).map_err(|e| StoreError::io("open the lock file", path, e))?;
    ExclusiveLock::try_lock(file).map_err(|e| StoreError::io("lock", path, e))
}
