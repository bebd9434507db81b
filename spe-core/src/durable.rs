//! Making directory entries durable: `fsync` of directories, and creating
//! directories whose entries survive a power cut.
//!
//! A new file or a rename is durable only once the directory holding it is
//! fsynced; a new directory only once its parent is. The cache and the
//! journal create their directories and files through these, and the cache
//! and the history store put whole files in place with [`publish`].

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// `fsync` of a directory, which makes new entries and renames in it
/// durable (a no-op where directories cannot be opened for it).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The step of [`publish`] that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublishStep {
    /// `fsync` of the temporary file.
    SyncFile,
    /// Its rename over the destination.
    Rename,
    /// `fsync` of the directory holding both.
    SyncDir,
}

/// Puts the fully written file `tmp` in place as `dest`, durably: `tmp` is
/// fsynced, renamed over `dest` (atomically: a reader sees the old file or
/// the new one, never a mix), then their directory is fsynced so the rename
/// survives a power cut. `tmp` and `dest` must be in one directory.
///
/// On an error before the rename, `tmp` is still there, for the caller to
/// remove; after it, `dest` is the new file and only its durability is in
/// doubt.
pub(crate) fn publish(tmp: &Path, dest: &Path) -> Result<(), (PublishStep, io::Error)> {
    File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| (PublishStep::SyncFile, e))?;
    fs::rename(tmp, dest).map_err(|e| (PublishStep::Rename, e))?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    sync_dir(dir).map_err(|e| (PublishStep::SyncDir, e))
}

/// `create_dir_all`, then the parent of every directory it created is
/// fsynced, topmost first, so the whole new path survives a power cut. An
/// existing directory is left alone. Returns the directories whose parent
/// could not be fsynced (for the caller to log): the directories exist, and
/// most file systems make them durable soon anyway.
pub(crate) fn create_dir_all(dir: &Path) -> io::Result<Vec<(PathBuf, io::Error)>> {
    let mut missing = Vec::new();
    let mut next = Some(dir);
    while let Some(d) = next {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        next = d.parent();
    }
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    fs::create_dir_all(dir)?;
    let mut failed = Vec::new();
    for created in missing.iter().rev() {
        let parent = match created.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Err(e) = sync_dir(parent) {
            failed.push((parent.to_path_buf(), e));
        }
    }
    Ok(failed)
}

/// The time stamp of a side file: UTC, to the millisecond, no separators
/// a file name could object to (`20260105T120000.000Z`).
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// The names a file set aside beside `path` may take, in order:
/// `<file name><mark><stamp>`, then with `-1`, `-2`, … (up to 999) for the
/// caller to skip the taken ones, so an earlier side file is never
/// overwritten.
pub(crate) fn side_names<'a>(
    path: &'a Path,
    mark: &'a str,
    stamp: &'a str,
) -> impl Iterator<Item = PathBuf> + 'a {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (0..1000u32).map(move |attempt| {
        let suffix = if attempt == 0 {
            String::new()
        } else {
            format!("-{attempt}")
        };
        path.with_file_name(format!("{base}{mark}{stamp}{suffix}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_every_missing_level_and_leaves_existing_ones() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a").join("b").join("c");
        assert!(create_dir_all(&deep).unwrap().is_empty());
        assert!(deep.is_dir());
        // Existing: nothing to do, nothing fails.
        assert!(create_dir_all(&deep).unwrap().is_empty());
        assert!(sync_dir(&deep).is_ok());
    }

    #[test]
    fn side_names_count_up_after_the_stamp() {
        let at = DateTime::parse_from_rfc3339("2026-01-05T12:00:00.25Z")
            .unwrap()
            .with_timezone(&Utc);
        let stamp = stamp(at);
        assert_eq!(stamp, "20260105T120000.250Z");
        let names: Vec<PathBuf> = side_names(Path::new("d/j.log"), ".tail-", &stamp).collect();
        assert_eq!(names.len(), 1000);
        assert_eq!(names[0], Path::new("d/j.log.tail-20260105T120000.250Z"));
        assert_eq!(names[2], Path::new("d/j.log.tail-20260105T120000.250Z-2"));
    }

    #[test]
    fn publish_replaces_the_destination_and_names_the_failed_step() {
        let root = tempfile::tempdir().unwrap();
        let (tmp, dest) = (root.path().join("f.tmp"), root.path().join("f"));
        fs::write(&dest, b"old").unwrap();
        fs::write(&tmp, b"new").unwrap();
        publish(&tmp, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert!(!tmp.exists());
        // No temporary file: the first step fails, the destination is kept.
        let (step, _) = publish(&tmp, &dest).unwrap_err();
        assert_eq!(step, PublishStep::SyncFile);
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        // A directory in the way of the rename.
        fs::write(&tmp, b"newer").unwrap();
        let blocked = root.path().join("d");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), b"x").unwrap();
        let (step, _) = publish(&tmp, &blocked).unwrap_err();
        assert_eq!(step, PublishStep::Rename);
        assert_eq!(fs::read(&tmp).unwrap(), b"newer");
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("f");
        fs::write(&file, b"x").unwrap();
        assert!(create_dir_all(&file.join("sub")).is_err());
        assert!(sync_dir(&root.path().join("missing")).is_err());
    }
}
