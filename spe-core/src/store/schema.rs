//! The database's schema, its pragmas, and the check a file must pass to be
//! used.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::StoreError;

/// `PRAGMA application_id`: "SPE1", so a store is told from other SQLite files.
pub(super) const APPLICATION_ID: i32 = 0x5350_4531;
/// The schema version this build writes and reads (`PRAGMA user_version`).
pub(super) const SCHEMA_VERSION: i64 = 2;

/// From version 1 to 2: the age of cached inputs of predictions and KPIs
/// (`NULL` in the rows recorded before, which read back as age 0).
const ADDED_IN_2: [(&str, &str); 2] = [("predictions", "inputs_age_s"), ("kpis", "cached_age_s")];

/// The copy of a database kept before it is migrated: `history.sqlite.v<N>`
/// for version `N`, beside it.
pub(super) fn pre_migration_copy(path: &Path, version: i64) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".v{version}"));
    path.with_file_name(name)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS observations (
    series TEXT NOT NULL,
    time INTEGER NOT NULL,
    value REAL NOT NULL,
    provenance TEXT NOT NULL,
    cached_age_s INTEGER,
    rank INTEGER NOT NULL,
    PRIMARY KEY (series, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS predictions (
    made_at INTEGER NOT NULL,
    target INTEGER NOT NULL,
    model TEXT NOT NULL,
    tier TEXT NOT NULL,
    inputs TEXT NOT NULL,
    mean REAL NOT NULL,
    inputs_age_s INTEGER,
    PRIMARY KEY (made_at, target)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS predictions_by_target ON predictions (target, made_at);
CREATE TABLE IF NOT EXISTS prediction_bounds (
    made_at INTEGER NOT NULL,
    target INTEGER NOT NULL,
    level REAL NOT NULL,
    lower REAL NOT NULL,
    upper REAL NOT NULL,
    PRIMARY KEY (made_at, target, level)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kpis (
    name TEXT NOT NULL,
    hour INTEGER NOT NULL,
    value REAL,
    unit TEXT NOT NULL,
    status TEXT NOT NULL,
    provenance TEXT NOT NULL,
    computed_at INTEGER NOT NULL,
    cached_age_s INTEGER,
    PRIMARY KEY (name, hour)
) WITHOUT ROWID;
";

/// Insert, or replace unless the stored value is more real (higher rank).
pub(super) const UPSERT_OBSERVATION: &str = "
INSERT INTO observations (series, time, value, provenance, cached_age_s, rank)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (series, time) DO UPDATE SET
    value = excluded.value, provenance = excluded.provenance,
    cached_age_s = excluded.cached_age_s, rank = excluded.rank
WHERE excluded.rank >= observations.rank";

pub(super) const SELECT_OBSERVATIONS: &str = "
SELECT time, value, provenance, cached_age_s FROM observations
WHERE series = ?1 AND time >= ?2 AND time < ?3 ORDER BY time";

pub(super) const UPSERT_PREDICTION: &str = "
INSERT OR REPLACE INTO predictions (made_at, target, model, tier, inputs, mean, inputs_age_s)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

pub(super) const INSERT_BOUND: &str = "
INSERT OR REPLACE INTO prediction_bounds (made_at, target, level, lower, upper)
VALUES (?1, ?2, ?3, ?4, ?5)";

/// The latest prediction for the target `?1` made at least `?2` seconds
/// before it (one index lookup).
pub(super) const SELECT_PREDICTION_FOR: &str = "
SELECT made_at, target, model, tier, inputs, mean, inputs_age_s FROM predictions
WHERE target = ?1 AND made_at <= ?1 - ?2 ORDER BY made_at DESC LIMIT 1";

/// For each target in `[?1, ?2)`, the latest prediction made at least `?3`
/// seconds before it. The distinct targets are walked through the index
/// `predictions_by_target`, one jump each (a target has a row per
/// prediction that covers it: hundreds when the predictions are made every
/// few minutes), then each target's latest prediction is one index lookup.
/// Filtering every row by a correlated `MAX` instead ran that subquery for
/// each of those rows: 140 ms against 2 ms for a week of predictions made
/// every 5 minutes.
pub(super) const SELECT_PREDICTIONS_FOR: &str = "
WITH RECURSIVE targets(t) AS (
    SELECT (SELECT MIN(target) FROM predictions WHERE target >= ?1 AND target < ?2)
    UNION ALL
    SELECT (SELECT MIN(target) FROM predictions WHERE target > targets.t AND target < ?2)
    FROM targets WHERE targets.t IS NOT NULL
)
SELECT p.made_at, p.target, p.model, p.tier, p.inputs, p.mean, p.inputs_age_s
FROM targets JOIN predictions p
ON p.target = targets.t AND p.made_at = (
    SELECT MAX(q.made_at) FROM predictions q
    WHERE q.target = targets.t AND q.made_at <= targets.t - ?3)
ORDER BY p.target";

pub(super) const SELECT_BOUNDS: &str = "
SELECT level, lower, upper FROM prediction_bounds
WHERE made_at = ?1 AND target = ?2 ORDER BY level";

pub(super) const UPSERT_KPI: &str = "
INSERT OR REPLACE INTO kpis (name, hour, value, unit, status, provenance, computed_at, cached_age_s)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

pub(super) const SELECT_KPIS: &str = "
SELECT hour, value, unit, status, provenance, computed_at, cached_age_s FROM kpis
WHERE name = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour";

pub(super) const STATS: &str = "
SELECT (SELECT count(*) FROM observations), (SELECT count(*) FROM predictions),
       (SELECT count(*) FROM kpis), (SELECT min(time) FROM observations),
       (SELECT max(time) FROM observations)";

/// What [`inspect`] found.
pub(super) enum Check {
    /// Opened, checked and ready.
    Sound(Connection),
    /// No file.
    Missing,
    /// An SQLite file with nothing in it (empty, or created and never
    /// written): not set up.
    Blank(Connection),
    /// Damaged: why.
    Damaged(String),
    /// Not ours to touch (another application's, a newer schema), or the
    /// file cannot be opened at all (permissions).
    Refused(StoreError),
}

/// A closure mapping a rusqlite error to [`StoreError::Database`].
pub(super) fn db_error(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Database {
        op,
        message: e.to_string(),
    }
}

/// Whether SQLite's error says the file is damaged.
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// A rusqlite error as a [`StoreError`]: corruption codes become
/// [`StoreError::Corrupt`].
pub(super) fn classify(e: rusqlite::Error, op: &'static str, path: &Path) -> StoreError {
    if is_damage(&e) {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    } else {
        db_error(op)(e)
    }
}

/// Opens `path` (which must exist) and checks it: an SQLite file, ours or
/// blank, a schema this build reads, and `PRAGMA quick_check` clean. A sound
/// file is returned ready (pragmas set, schema created or kept).
pub(super) fn inspect(path: &Path) -> Check {
    inspect_with(path, false)
}

/// [`inspect`], with the full `PRAGMA integrity_check` (which also compares
/// every index with its table) when `full`.
pub(super) fn inspect_with(path: &Path, full: bool) -> Check {
    match path.try_exists() {
        Ok(false) => return Check::Missing,
        Ok(true) => {}
        Err(e) => return Check::Refused(StoreError::io("look for", path, e)),
    }
    match check(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        full,
    ) {
        Ok((conn, 0)) => Check::Blank(conn),
        Ok((conn, _)) => match prepare(&conn, path) {
            Ok(()) => Check::Sound(conn),
            Err(e) if e.is_corruption() => Check::Damaged(e.to_string()),
            Err(e) => Check::Refused(e),
        },
        Err(c) => c,
    }
}

/// Opens `path` with `flags` and runs the checks, without writing; returns
/// the connection and how many schema objects the file holds (0: blank).
/// A file without SP-E's application id is refused unless it is blank.
pub(super) fn check(path: &Path, flags: OpenFlags, full: bool) -> Result<(Connection, i64), Check> {
    let damaged = |e: rusqlite::Error| -> Check {
        if is_damage(&e) {
            Check::Damaged(e.to_string())
        } else {
            Check::Refused(db_error("open the history database")(e))
        }
    };
    let conn = Connection::open_with_flags(path, flags).map_err(damaged)?;
    let id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(damaged)?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(damaged)?;
    if id != APPLICATION_ID && (id != 0 || objects > 0) {
        return Err(Check::Refused(StoreError::Foreign {
            path: path.to_path_buf(),
            application_id: id,
        }));
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(damaged)?;
    if version > SCHEMA_VERSION {
        return Err(Check::Refused(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        }));
    }
    let pragma = if full {
        "PRAGMA integrity_check"
    } else {
        "PRAGMA quick_check"
    };
    let mut stmt = conn.prepare(pragma).map_err(damaged)?;
    let lines = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(damaged)?;
    drop(stmt);
    if lines != ["ok"] {
        let mut detail = lines.into_iter().take(3).collect::<Vec<_>>().join("; ");
        if detail.is_empty() {
            detail = "the integrity check returned nothing".to_owned();
        }
        return Err(Check::Damaged(format!("integrity check failed: {detail}")));
    }
    Ok((conn, objects))
}

/// Creates a new database at `path` (which must not exist).
pub(super) fn create(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(db_error("create the history database"))?;
    prepare(&conn, path)?;
    if let Some(dir) = path.parent() {
        crate::durable::sync_dir(dir)
            .map_err(|e| StoreError::io("fsync the store directory", dir, e))?;
    }
    Ok(conn)
}

/// Sets the pragmas (write-ahead log, full sync) and creates the schema, or
/// migrates an older one (after keeping a copy of it, see
/// [`pre_migration_copy`]).
pub(super) fn prepare(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let fail = |e| classify(e, "prepare the history database", path);
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(fail)?;
    // In memory the journal mode stays "memory"; on disk it must become WAL.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(fail)?;
    if mode != "wal" && mode != "memory" {
        return Err(StoreError::Database {
            op: "switch the history database to write-ahead logging",
            message: format!("journal mode is {mode}"),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(fail)?;
    // An older file is copied first, for a downgrade (an older SP-E
    // refuses a newer schema).
    let seen: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(fail)?;
    if (1..SCHEMA_VERSION).contains(&seen) {
        keep_copy(conn, path, seen)?;
    }
    // Under the write lock (IMMEDIATE: another store opening the same file
    // waits for it, and then finds it migrated), a blank file (version 0)
    // gets the current schema and an older one is migrated, in one
    // transaction.
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)
        .map_err(fail)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(fail)?;
    tx.execute_batch(SCHEMA).map_err(fail)?;
    if version == 1 {
        for (table, column) in ADDED_IN_2 {
            let present: bool = tx
                .query_row(
                    "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
                    [table, column],
                    |r| r.get(0),
                )
                .map_err(fail)?;
            if !present {
                tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} INTEGER;"))
                    .map_err(fail)?;
            }
        }
    }
    tx.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(fail)?;
    tx.commit().map_err(fail)?;
    if (1..SCHEMA_VERSION).contains(&version) {
        tracing::info!(path = %path.display(), from = version, to = SCHEMA_VERSION, "history database migrated");
    }
    Ok(())
}

/// Copies the database of version `version` behind `conn` to
/// [`pre_migration_copy`], unless a sound copy of that version is there: the
/// first one kept is the oldest. The copy is written with `VACUUM INTO` to a
/// temporary file, fsynced and renamed into place, so a crash leaves no half
/// copy under the final name; a copy found damaged, or of another version
/// (a half copy of an older build), is made again. An in-memory database has
/// no copy.
fn keep_copy(conn: &Connection, path: &Path, version: i64) -> Result<(), StoreError> {
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    let copy = pre_migration_copy(path, version);
    match copy_version(&copy) {
        Some(v) if v == version => return Ok(()),
        Some(v) => {
            tracing::warn!(copy = %copy.display(), found = v, expected = version, "the pre-migration copy has another version: made again")
        }
        None if copy.exists() => {
            tracing::warn!(copy = %copy.display(), "the pre-migration copy is unreadable or damaged: made again")
        }
        None => {}
    }
    // One temporary name per attempt: two stores migrating the same file at
    // once (in one process or two) each write their own, and the later
    // rename wins (both copy the same database).
    static ATTEMPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let attempt = ATTEMPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = super::sibling(&copy, &format!(".tmp-{}-{attempt}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let target = tmp.to_string_lossy().into_owned();
    let written = conn
        .execute("VACUUM INTO ?1", [&target])
        .map_err(db_error("copy the history database before migrating it"))
        .and_then(|_| super::publish(&tmp, &copy, "rename the pre-migration copy into place"));
    if let Err(e) = written {
        // Left only if the rename did not happen; a failed fsync of the
        // directory after it finds nothing to remove.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// The schema version of the pre-migration copy at `copy` if it is there
/// and passes the quick check; `None` otherwise.
fn copy_version(copy: &Path) -> Option<i64> {
    if !copy.is_file() {
        return None;
    }
    let (conn, objects) = check(
        copy,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        false,
    )
    .ok()?;
    if objects == 0 {
        return None;
    }
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .ok()
}
