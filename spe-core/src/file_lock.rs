//! An exclusive advisory lock on an open file (`flock`, Unix; elsewhere a
//! no-op), taken without waiting: a holder that hangs never blocks the one
//! asking. The history store's backups, the incident journal and the
//! caches use it; [`open_lock_file`] opens the files kept for their lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens the file at `path` that is kept only for its lock, creating it if
/// missing (never truncating: it may be another holder's).
pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// An exclusive lock on a file, held until dropped.
#[derive(Debug)]
pub(crate) struct ExclusiveLock {
    #[cfg(unix)]
    _flock: nix::fcntl::Flock<File>,
    #[cfg(not(unix))]
    _file: File,
}

impl ExclusiveLock {
    /// Takes the exclusive lock on `file` if no one, in this process (through
    /// another open of the file) or another, holds it: `None` if someone
    /// does. The lock lasts as long as the returned value.
    pub(crate) fn try_lock(file: File) -> io::Result<Option<ExclusiveLock>> {
        #[cfg(unix)]
        {
            use nix::fcntl::{Flock, FlockArg};
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(flock) => Ok(Some(ExclusiveLock { _flock: flock })),
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
                Err((_, errno)) => Err(io::Error::from(errno)),
            }
        }
        #[cfg(not(unix))]
        {
            Ok(Some(ExclusiveLock { _file: file }))
        }
    }
}
