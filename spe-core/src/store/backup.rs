//! Backups of the history database: made with SQLite's online backup,
//! fsynced, named by the time they were taken, rotated, checked before they
//! are restored.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::schema::{self, Check};
use super::{StoreError, sibling};
use crate::durable;

const PREFIX: &str = "history-";
const SUFFIX: &str = ".sqlite";

/// One backup of the history database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupInfo {
    /// Its file.
    pub path: PathBuf,
    /// When it was taken (from its name: `history-<UTC time>.sqlite`).
    pub taken_at: DateTime<Utc>,
    /// Its size.
    pub bytes: u64,
}

/// The backups in `dir`, oldest first (none if `dir` does not exist).
/// Files whose names are not a backup's are ignored.
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
        let Some(taken_at) = name.to_str().and_then(taken_at) else {
            continue;
        };
        let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
        found.push(BackupInfo {
            path: entry.path(),
            taken_at,
            bytes,
        });
    }
    found.sort_by(|a, b| {
        a.taken_at
            .cmp(&b.taken_at)
            .then_with(|| a.path.cmp(&b.path))
    });
    Ok(found)
}

fn taken_at(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.3fZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Copies the database behind `conn` into `dir/history-<now>.sqlite`:
/// into a temporary file, which is switched to a rollback journal (so the
/// copy is one self-contained file), fsynced and renamed into place.
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
    let path = dir.join(format!("{PREFIX}{}{SUFFIX}", durable::stamp(now)));
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
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io("fsync the backup", &tmp, e))?;
        fs::rename(&tmp, &path)
            .map_err(|e| StoreError::io("rename the backup into place", &tmp, e))?;
        durable::sync_dir(dir).map_err(|e| StoreError::io("fsync the backup directory", dir, e))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    tracing::info!(path = %path.display(), bytes, "history store backed up");
    Ok(BackupInfo {
        path,
        taken_at: now,
        bytes,
    })
}

/// Deletes the oldest backups beyond `keep`; returns how many.
pub(super) fn rotate(dir: &Path, keep: usize) -> Result<usize, StoreError> {
    let all = list(dir)?;
    let excess = all.len().saturating_sub(keep);
    for old in &all[..excess] {
        fs::remove_file(&old.path)
            .map_err(|e| StoreError::io("delete the old backup", &old.path, e))?;
    }
    if excess > 0 {
        durable::sync_dir(dir).map_err(|e| StoreError::io("fsync the backup directory", dir, e))?;
    }
    Ok(excess)
}

/// Checks `backup`, then copies it to `db` (through a temporary file,
/// fsynced, renamed) and opens it. `Ok(Err(why))` if the backup is unusable
/// (it is left where it is).
pub(super) fn restore(
    backup: &BackupInfo,
    db: &Path,
) -> Result<Result<Connection, String>, StoreError> {
    match schema::check(
        &backup.path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(conn) => drop(conn),
        Err(Check::Damaged(why)) => return Ok(Err(why)),
        Err(Check::Refused(e)) => return Ok(Err(e.to_string())),
        Err(Check::Missing | Check::Sound(_)) => return Ok(Err("vanished".to_owned())),
    }
    let tmp = sibling(db, ".restore-tmp");
    let _ = fs::remove_file(&tmp);
    fs::copy(&backup.path, &tmp).map_err(|e| StoreError::io("copy the backup to", &tmp, e))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io("fsync the restored copy", &tmp, e))?;
    fs::rename(&tmp, db)
        .map_err(|e| StoreError::io("rename the restored copy into place", &tmp, e))?;
    if let Some(dir) = db.parent() {
        durable::sync_dir(dir).map_err(|e| StoreError::io("fsync the store directory", dir, e))?;
    }
    match schema::inspect(db) {
        Check::Sound(conn) => Ok(Ok(conn)),
        Check::Refused(e) => Err(e),
        Check::Damaged(why) => {
            let _ = fs::remove_file(db);
            Ok(Err(format!("damaged once copied: {why}")))
        }
        Check::Missing => Ok(Err("vanished once copied".to_owned())),
    }
}
