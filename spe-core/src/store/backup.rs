//! Backups of the history database: made with SQLite's online backup,
//! fsynced, named `history-<sequence>-<UTC time>.sqlite`, rotated, checked
//! before they are restored.
//!
//! The sequence number orders them, not the time: after the clock steps
//! back, the backup just made is still the newest (restored first, rotated
//! out last). Making and rotating take turns across processes (an
//! exclusive lock on `backups.lock`, not waited for: a store that finds it
//! taken skips its turn), so two stores open on the same files never give
//! two backups the same number.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::lock;
use super::schema::{self, Check};
use super::{StoreError, publish, sibling};
use crate::durable;
use crate::file_lock::ExclusiveLock;

const PREFIX: &str = "history-";
const SUFFIX: &str = ".sqlite";
/// The lock file, in the backup directory, that makes and rotates backups
/// one at a time across processes (see the `lock` module).
const BACKUP_LOCK: &str = "backups.lock";

/// One backup of the history database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackupInfo {
    /// Its file.
    pub path: PathBuf,
    /// Its rank: one more than the newest backup's before it.
    pub sequence: u64,
    /// When it was taken, by the clock of then (from its name).
    pub taken_at: DateTime<Utc>,
    /// Its size.
    pub bytes: u64,
}

/// The backups in `dir`, oldest first by sequence (none if `dir` does not
/// exist). Entries whose names are not a backup's, and entries with a
/// backup's name that are not files (a directory), are ignored.
pub(super) fn list(dir: &Path) -> Result<Vec<BackupInfo>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("list the backups in", dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("list the backups in", dir, e))?;
        let name = entry.file_name();
        let Some((sequence, taken_at)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        // Followed through a link: a link to a backup file is one.
        let Ok(meta) = fs::metadata(entry.path()) else {
            continue;
        };
        if !meta.is_file() {
            tracing::warn!(path = %entry.path().display(), "not a file: not a backup, ignored");
            continue;
        }
        let bytes = meta.len();
        found.push(BackupInfo {
            path: entry.path(),
            sequence,
            taken_at,
            bytes,
        });
    }
    found.sort_by(|a, b| {
        a.sequence
            .cmp(&b.sequence)
            .then_with(|| a.path.cmp(&b.path))
    });
    Ok(found)
}

/// [`list`] for an open or a repair, which must not fail because the
/// backups cannot be listed (a file named `backups`, a directory without
/// permission): none, with a warning. Making the next backup reports it.
pub(super) fn list_or_none(dir: &Path) -> Vec<BackupInfo> {
    list(dir).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot list the backups: going on without them");
        Vec::new()
    })
}

/// Deletes the temporary copies that backups interrupted by a crash left in
/// `dir` (`history-<sequence>-<time>.sqlite.tmp`, its `-journal`): never
/// renamed into place, they are not backups. Called with the turn held, so
/// no backup in progress is among them.
fn remove_stale_copies(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((stem, _)) = name.split_once(".tmp") else {
            continue;
        };
        if parse_name(stem).is_some() && entry.file_type().is_ok_and(|t| t.is_file()) {
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(path = %entry.path().display(), "removed a backup copy left by a crash")
                }
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove a backup copy left by a crash")
                }
            }
        }
    }
}

/// The sequence number and the time of a backup's file name.
fn parse_name(name: &str) -> Option<(u64, DateTime<Utc>)> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (sequence, stamp) = rest.split_once('-')?;
    if sequence.is_empty() || !sequence.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let time = NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.3fZ").ok()?;
    Some((sequence.parse().ok()?, time.and_utc()))
}

/// Copies the database behind `conn` into
/// `dir/history-<next sequence>-<now>.sqlite`: into a temporary file, which
/// is switched to a rollback journal (so the copy is one self-contained
/// file), fsynced and renamed into place.
pub(super) fn make(
    conn: &Connection,
    dir: &Path,
    now: DateTime<Utc>,
    db: &Path,
) -> Result<BackupInfo, StoreError> {
    for (parent, e) in durable::create_dir_all(dir)
        .map_err(|e| StoreError::io("create the backup directory", dir, e))?
    {
        tracing::warn!(dir = %parent.display(), error = %e, "could not fsync a new directory's parent");
    }
    // From the choice of the sequence number to the rename: one at a time.
    let _turn = take_turn(dir)?;
    remove_stale_copies(dir);
    let sequence = list(dir)?
        .last()
        .map_or(Some(1), |b| b.sequence.checked_add(1))
        .ok_or_else(|| StoreError::InvalidConfig("the backup sequence is exhausted".to_owned()))?;
    let path = dir.join(format!(
        "{PREFIX}{sequence:08}-{}{SUFFIX}",
        durable::stamp(now)
    ));
    let tmp = sibling(&path, ".tmp");
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        {
            let mut dst =
                Connection::open(&tmp).map_err(schema::db_error("create a backup file"))?;
            Backup::new(conn, &mut dst)
                .and_then(|b| b.run_to_completion(1024, Duration::ZERO, None))
                .map_err(|e| schema::classify(e, "copy the database into a backup", db))?;
            let _: String = dst
                .pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))
                .map_err(schema::db_error("finish a backup file"))?;
            dst.close()
                .map_err(|(_, e)| schema::db_error("close a backup file")(e))?;
        }
        // A copy of damage is no backup: it must not rotate a sound one out.
        // The full check, the one `recover` judges the database by: an index
        // out of step with its table passes the quick one.
        match schema::check(
            &tmp,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            true,
        ) {
            Ok((conn, _)) => drop(conn),
            Err(Check::Damaged(detail)) => {
                return Err(StoreError::Corrupt {
                    path: db.to_path_buf(),
                    detail: format!("its backup copy fails its check: {detail}"),
                });
            }
            Err(Check::Refused(e)) => return Err(e),
            Err(_) => {
                return Err(StoreError::Corrupt {
                    path: db.to_path_buf(),
                    detail: "its backup copy is empty".to_owned(),
                });
            }
        }
        publish(&tmp, &path, "rename the backup into place")
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    tracing::info!(path = %path.display(), bytes, "history store backed up");
    Ok(BackupInfo {
        path,
        sequence,
        taken_at: now,
        bytes,
    })
}

/// The backup directory's lock, or [`StoreError::BackupInProgress`] if
/// another store holds it.
fn take_turn(dir: &Path) -> Result<ExclusiveLock, StoreError> {
    lock::try_exclusive(&dir.join(BACKUP_LOCK))?.ok_or_else(|| StoreError::BackupInProgress {
        dir: dir.to_path_buf(),
    })
}

/// Deletes the oldest backups (by sequence) beyond `keep`; returns how many.
pub(super) fn rotate(dir: &Path, keep: usize) -> Result<usize, StoreError> {
    if !dir.exists() {
        return Ok(0);
    }
    let _turn = take_turn(dir)?;
    let all = list(dir)?;
    let excess = all.len().saturating_sub(keep);
    for old in &all[..excess] {
        match fs::remove_file(&old.path) {
            Ok(()) => {}
            // Deleted by a store of another process meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("delete the old backup", &old.path, e)),
        }
    }
    if excess > 0 {
        durable::sync_dir(dir).map_err(|e| StoreError::io("fsync the backup directory", dir, e))?;
    }
    Ok(excess)
}

/// What [`restore`] made of a backup.
pub(super) enum Restore {
    /// Restored: the database, open.
    Restored(Connection),
    /// Not a sound backup of ours (damaged, empty, another application's):
    /// why. The caller sets it aside.
    Unusable(String),
    /// Written by a newer SP-E: why. Sound as far as anyone here can tell,
    /// so left where it is, for that build.
    Skipped(String),
}

/// Checks `backup` (the full check, as `recover` judges the database: a
/// backup made before that check was used for backups may hold an index out
/// of step), then copies it to `db` (through a temporary file, fsynced,
/// renamed) and opens it. `db` and its logs must have been moved aside.
///
/// An error that says nothing of the backup (it cannot be read just now:
/// I/O, permissions, a lock) is returned as an error, so the backup is
/// neither set aside nor passed over for an older one: the repair is tried
/// again later.
pub(super) fn restore(backup: &BackupInfo, db: &Path) -> Result<Restore, StoreError> {
    match schema::check(
        &backup.path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        true,
    ) {
        Ok((conn, objects)) if objects > 0 => drop(conn),
        Ok(_) => return Ok(Restore::Unusable("empty".to_owned())),
        Err(Check::Damaged(why)) => return Ok(Restore::Unusable(why)),
        Err(Check::Refused(e @ StoreError::Foreign { .. })) => {
            return Ok(Restore::Unusable(e.to_string()));
        }
        Err(Check::Refused(e @ StoreError::NewerSchema { .. })) => {
            return Ok(Restore::Skipped(e.to_string()));
        }
        Err(Check::Refused(e)) => return Err(e),
        Err(Check::Missing | Check::Sound(_) | Check::Blank(_)) => {
            return Ok(Restore::Unusable("vanished".to_owned()));
        }
    }
    // A log here would be applied to the copy.
    for side in ["-wal", "-shm"] {
        let log = sibling(db, side);
        if log.exists() {
            return Err(StoreError::io(
                "restore a backup beside a leftover log",
                log,
                std::io::ErrorKind::AlreadyExists.into(),
            ));
        }
    }
    let tmp = sibling(db, ".restore-tmp");
    let _ = fs::remove_file(&tmp);
    fs::copy(&backup.path, &tmp).map_err(|e| StoreError::io("copy the backup to", &tmp, e))?;
    publish(&tmp, db, "rename the restored copy into place")?;
    let unusable = |why: String| {
        // This attempt's copy and the logs opening it made: none may meet
        // the next candidate.
        for file in [sibling(db, "-wal"), sibling(db, "-shm"), db.to_path_buf()] {
            let _ = fs::remove_file(file);
        }
        Ok(Restore::Unusable(why))
    };
    match schema::inspect(db) {
        Check::Sound(conn) => Ok(Restore::Restored(conn)),
        Check::Refused(e) => Err(e),
        Check::Damaged(why) => unusable(format!("damaged once copied: {why}")),
        Check::Blank(conn) => {
            drop(conn);
            unusable("empty once copied".to_owned())
        }
        Check::Missing => Ok(Restore::Unusable("vanished once copied".to_owned())),
    }
}
