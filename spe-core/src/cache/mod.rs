//! A crash-safe cache of last good values: [`Cache`], whose documentation
//! gives the write protocol and the file format.

mod error;
mod format;
#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::durable::{self, PublishStep};
use crate::file_lock::{ExclusiveLock, open_lock_file};
use crate::provenance::Provenance;

pub use error::{CacheError, CacheIoOp};
pub use format::{CACHE_FORMAT_VERSION, CACHE_HEADER_LEN, CACHE_MAGIC, CorruptionReason};

/// Extension of a generation file.
const EXT: &str = "spc";
/// Marks a temporary file: `<generation file>.tmp-<pid>-<n>`.
const TMP_MARK: &str = ".tmp-";
/// Marks a quarantined file: `<generation file>.corrupt-<UTC timestamp>`.
const CORRUPT_MARK: &str = ".corrupt-";
/// Extension of the file whose lock an open cache holds: `<name>.lock`.
const LOCK_EXT: &str = "lock";
/// Longest accepted cache name.
const MAX_NAME_LEN: usize = 64;

/// Settings of a [`Cache`].
///
/// ```
/// use spe_core::CacheConfig;
/// let config = CacheConfig { generations: 5, ..CacheConfig::default() };
/// assert_eq!(CacheConfig::default().generations, 3);
/// assert_eq!(config.max_payload_bytes, 64 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// How many generation files to keep on disk, newest first (at least 1;
    /// default 3). More generations survive more successive corruptions; each
    /// costs one file of the payload's size.
    pub generations: usize,
    /// Largest payload (JSON bytes) accepted by [`Cache::put`] and read back by
    /// [`Cache::open`] (default 64 MiB). It bounds the memory a damaged or
    /// foreign file can make `open` allocate. A file over the limit is
    /// quarantined ([`CorruptionReason::TooLarge`]), so lowering it on an
    /// existing cache sets aside the larger generations.
    pub max_payload_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            generations: 3,
            max_payload_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A value served from a [`Cache`], with when it was stored.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use chrono::{TimeZone, Utc};
/// use spe_core::{Cached, Provenance};
///
/// let stored_at = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
/// let hit = Cached { value: Arc::new(42.0), stored_at, generation: 7 };
/// let now = stored_at + chrono::Duration::minutes(5);
/// assert_eq!(hit.age(now), Duration::from_secs(300));
/// assert_eq!(hit.provenance(now), Provenance::cached(Duration::from_secs(300)));
/// ```
#[derive(Debug)]
pub struct Cached<T> {
    /// The value.
    pub value: Arc<T>,
    /// When it was stored: the `now` given to [`Cache::put`], to the millisecond.
    pub stored_at: DateTime<Utc>,
    /// The generation it was stored in (strictly increasing per cache).
    pub generation: u64,
}

impl<T> Clone for Cached<T> {
    fn clone(&self) -> Self {
        Cached {
            value: Arc::clone(&self.value),
            stored_at: self.stored_at,
            generation: self.generation,
        }
    }
}

impl<T> Cached<T> {
    /// How old the value is at `now`; zero if `now` is before
    /// [`stored_at`](Cached::stored_at) (a clock that stepped back).
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use chrono::Utc;
    /// use spe_core::Cached;
    /// let now = Utc::now();
    /// let hit = Cached { value: Arc::new("x"), stored_at: now, generation: 1 };
    /// assert_eq!(hit.age(now - chrono::Duration::seconds(10)), Duration::ZERO);
    /// ```
    pub fn age(&self, now: DateTime<Utc>) -> Duration {
        now.signed_duration_since(self.stored_at)
            .to_std()
            .unwrap_or(Duration::ZERO)
    }

    /// The provenance of the value handed out at `now`:
    /// [`Provenance::cached`] with its [`age`](Cached::age).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use chrono::Utc;
    /// use spe_core::Cached;
    /// let now = Utc::now();
    /// let hit = Cached { value: Arc::new(1u8), stored_at: now, generation: 1 };
    /// assert_eq!(hit.provenance(now + chrono::Duration::hours(1)).cached_age().unwrap().as_secs(), 3600);
    /// ```
    pub fn provenance(&self, now: DateTime<Utc>) -> Provenance {
        Provenance::cached(self.age(now))
    }
}

/// One generation file on disk.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use spe_core::{Cache, CacheConfig};
/// let dir = tempfile::tempdir()?;
/// let (cache, _) = Cache::<u32>::open(dir.path(), "kpi", CacheConfig::default())?;
/// let generation = cache.put(7, chrono::Utc::now())?;
/// assert_eq!(generation.seq, 1);
/// assert_eq!(generation.path.file_name().unwrap(), "kpi.00000000000000000001.spc");
/// assert_eq!(generation.len, spe_core::CACHE_HEADER_LEN as u64 + 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Generation {
    /// The generation number.
    pub seq: u64,
    /// The file.
    pub path: PathBuf,
    /// The file's size in bytes.
    pub len: u64,
}

/// A generation file found corrupt by [`Cache::open`] and set aside.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use spe_core::{Cache, CacheConfig, CorruptionReason};
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("kpi.00000000000000000001.spc"), b"not a cache file")?;
/// let (cache, report) = Cache::<u32>::open(dir.path(), "kpi", CacheConfig::default())?;
/// assert!(cache.get().is_none());
/// let q = &report.quarantined[0];
/// assert_eq!((q.generation, &q.reason), (1, &CorruptionReason::BadMagic));
/// assert!(!q.path.exists() && q.moved_to.as_ref().unwrap().exists());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quarantined {
    /// Where the file was.
    pub path: PathBuf,
    /// Where it is now (`<file>.corrupt-<UTC timestamp>`); `None` if the
    /// rename failed (logged at `error`), in which case it stays where it was
    /// and is checked (and not served) again at the next open.
    pub moved_to: Option<PathBuf>,
    /// Its generation number (from its file name).
    pub generation: u64,
    /// What is wrong with it.
    pub reason: CorruptionReason,
}

/// A generation file [`Cache::open`] could not read (an I/O error, not a
/// sign of corruption): left in place, not served.
///
/// ```
/// let report = spe_core::LoadReport::default();
/// assert!(report.unreadable.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnreadableFile {
    /// The file.
    pub path: PathBuf,
    /// The operating system's error.
    pub error: String,
}

/// What [`Cache::open`] found: the generation it serves, the files it
/// quarantined or could not read, and the temporary files it removed.
///
/// The caller journals an incident (`cache_corrupt`) when
/// [`is_clean`](LoadReport::is_clean) is false.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use spe_core::{Cache, CacheConfig};
/// let dir = tempfile::tempdir()?;
/// let (_, report) = Cache::<String>::open(dir.path(), "weather", CacheConfig::default())?;
/// assert_eq!(report.loaded, None);
/// assert!(report.is_clean());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// The generation now served by [`Cache::get`], if any.
    pub loaded: Option<u64>,
    /// Generation files found corrupt and renamed aside, newest first.
    pub quarantined: Vec<Quarantined>,
    /// Generation files that could not be read, newest first.
    pub unreadable: Vec<UnreadableFile>,
    /// Temporary files left by an interrupted write, removed.
    pub removed_temp_files: Vec<PathBuf>,
}

impl LoadReport {
    /// No corrupt or unreadable file was found. (Removing a leftover
    /// temporary file is normal crash recovery and does not count.)
    ///
    /// ```
    /// assert!(spe_core::LoadReport::default().is_clean());
    /// ```
    pub fn is_clean(&self) -> bool {
        self.quarantined.is_empty() && self.unreadable.is_empty()
    }
}

/// A crash-safe, checksummed, multi-generation cache of one value of type `T`.
///
/// The server keeps its last good predictions and its last weather frame in
/// one, so that a crashed prediction engine or a restarted server still has
/// something honest to show: the value, and how old it is.
///
/// ```
/// use chrono::Utc;
/// use spe_core::{Cache, CacheConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let (cache, report) = Cache::<Vec<f64>>::open(dir.path(), "predictions", CacheConfig::default())?;
/// assert!(report.is_clean() && cache.get().is_none());
///
/// let t0 = Utc::now();
/// cache.put(vec![41.5, 42.0], t0)?;
/// let hit = cache.get().expect("just written");
/// assert_eq!(*hit.value, vec![41.5, 42.0]);
/// assert_eq!(hit.provenance(t0 + chrono::Duration::seconds(90)).name(), "cached");
///
/// // After a restart (or a crash) the newest valid generation comes back.
/// drop(cache);
/// let (cache, _) = Cache::<Vec<f64>>::open(dir.path(), "predictions", CacheConfig::default())?;
/// assert_eq!(*cache.get().expect("persisted").value, vec![41.5, 42.0]);
/// # Ok(()) }
/// ```
///
/// # Files
///
/// For a cache named `predictions` the directory holds:
///
/// | file | what it is |
/// |---|---|
/// | `predictions.00000000000000000042.spc` | generation 42 (20-digit zero-padded number, so names sort like numbers) |
/// | `predictions.00000000000000000042.spc.tmp-<pid>-<n>` | a write in progress; one left over from a crash is removed at open |
/// | `predictions.00000000000000000042.spc.corrupt-20260101T120000.123Z` | a generation found corrupt at open, set aside for the post-mortem; never deleted by the cache |
/// | `predictions.lock` | empty; an open cache holds its lock (see [Concurrency](Cache#concurrency)) |
///
/// The newest [`CacheConfig::generations`] generation files are kept (3 by
/// default); older ones are deleted once a newer one is durable.
///
/// # Write protocol
///
/// [`Cache::put`] serializes the value to JSON, then, holding the writer lock:
///
/// 1. creates a temporary file in the same directory (`create_new`, so a
///    unique name is guaranteed) and writes header and payload to it;
/// 2. `fsync`s it;
/// 3. renames it over the generation's final name (atomic on POSIX file
///    systems: readers see the old directory or the new one, never half a file);
/// 4. `fsync`s the directory, which makes the rename durable;
/// 5. publishes the value in memory, then deletes generations beyond the
///    configured number (a crash during pruning at worst leaves an extra old
///    generation, pruned by the next write).
///
/// If any of steps 1–4 fails, the temporary file is removed, the in-memory
/// value and the previous generations are untouched, and the error says what
/// failed ([`CacheError::Io`], [`CacheError::is_storage_full`]). An `Ok` from
/// `put` means the generation is on stable storage. An error from step 4 is
/// ambiguous, as with any `fsync` failure: the new file may or may not survive
/// a power cut, so the write is not acknowledged.
///
/// # File format (version 1)
///
/// Every integer is little-endian. The header is [`CACHE_HEADER_LEN`] = 44 bytes:
///
/// | offset | size | field | value |
/// |---:|---:|---|---|
/// | 0 | 8 | magic | [`CACHE_MAGIC`] = `89 53 50 45 43 0D 0A 1A` (`\x89SPEC\r\n\x1a`) |
/// | 8 | 2 | format version | `u16`, [`CACHE_FORMAT_VERSION`] = 1 |
/// | 10 | 2 | flags | `u16`, 0 (no flag is defined in version 1) |
/// | 12 | 4 | reserved | 0 |
/// | 16 | 8 | generation | `u64`, the number also in the file name |
/// | 24 | 8 | written at | `i64`, Unix time in milliseconds (UTC) |
/// | 32 | 8 | payload length | `u64`, bytes after the header |
/// | 40 | 4 | checksum | `u32`, CRC-32C (Castagnoli) of bytes 0..40 followed by the payload |
/// | 44 | n | payload | the value as UTF-8 JSON (`serde_json`) |
///
/// A file is valid when it is exactly `44 + payload length` bytes long, starts
/// with the magic, has version 1, a matching checksum, zero flags and reserved
/// bytes, a representable timestamp, the generation of its file name, a
/// payload no larger than [`CacheConfig::max_payload_bytes`], and a payload
/// that decodes as the cached type. The version is checked before the
/// checksum, because a later version may lay out its header differently.
///
/// # Load
///
/// [`Cache::open`] creates the directory if needed, removes leftover
/// temporary files, then reads the generations newest first. Each one is
/// checked as above; the first that passes every check (including JSON
/// decoding, and the caller's check with [`Cache::open_checked`]) is
/// served, older ones are checked up to the checksum. A file that
/// fails a check is renamed aside to `<file>.corrupt-<UTC timestamp>`, logged
/// with `tracing` at `warn`, and listed in [`LoadReport::quarantined`] with a
/// [`CorruptionReason`], so the caller can journal the incident. A file that
/// cannot be *read* (an I/O error, which says nothing about its content) is
/// left in place and listed in [`LoadReport::unreadable`]. Nothing found in
/// the directory makes `open` fail or panic; only failing to create or list
/// the directory does.
///
/// # Concurrency
///
/// A [`Cache`] is a cheap handle (`Clone + Send + Sync`, an `Arc` inside):
/// clones share the same value and the same writer lock, so writes are
/// serialized and generation numbers strictly increase. Reads
/// ([`Cache::get`]) come from memory and never touch the disk.
///
/// One open `Cache` per directory and name, across processes: `open` takes
/// an exclusive advisory lock (`flock`, on Unix) on `<name>.lock` and holds
/// it until the last clone is dropped. A second `open` of the same name, in
/// this process or another (a second server started on the same data
/// directory, a notebook), gets [`CacheError::Locked`] instead of removing
/// the first one's temporary files and writing generation numbers it also
/// writes. The lock is released by the operating system when a process
/// dies, so a crash never leaves the cache locked.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use spe_core::{Cache, CacheConfig, CacheError};
/// let dir = tempfile::tempdir()?;
/// let (first, _) = Cache::<u8>::open(dir.path(), "p", CacheConfig::default())?;
/// let second = Cache::<u8>::open(dir.path(), "p", CacheConfig::default());
/// assert!(matches!(second, Err(CacheError::Locked { .. })));
/// drop(first);
/// assert!(Cache::<u8>::open(dir.path(), "p", CacheConfig::default()).is_ok());
/// # Ok(()) }
/// ```
///
/// [`Cache::put`] and [`Cache::open`] do blocking I/O (`fsync`). From async
/// code, call [`Cache::put_async`], or wrap the call in
/// [`tokio::task::spawn_blocking`].
pub struct Cache<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    dir: PathBuf,
    name: String,
    config: CacheConfig,
    /// The next generation number; `None` once `u64::MAX` is used.
    writer: Mutex<Option<u64>>,
    current: RwLock<Option<Cached<T>>>,
    /// Held while the cache is open (see [Concurrency](Cache#concurrency)).
    _lock: ExclusiveLock,
}

impl<T> Clone for Cache<T> {
    fn clone(&self) -> Self {
        Cache {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// A handle on a [`Cache`] that does not keep it open: from
/// [`Cache::downgrade`], [`upgrade`](WeakCache::upgrade) gives the cache
/// back while a [`Cache`] clone is alive somewhere.
///
/// A cache is open once per name (see [Concurrency](Cache#concurrency));
/// a program that opens caches by name on demand keeps these to hand out
/// the open one instead of opening it again, while letting it close (and
/// release its lock) when its last user is done with it.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use spe_core::{Cache, CacheConfig};
/// let dir = tempfile::tempdir()?;
/// let (cache, _) = Cache::<u8>::open(dir.path(), "p", CacheConfig::default())?;
/// let weak = cache.downgrade();
/// cache.put(4, chrono::Utc::now())?;
/// assert_eq!(*weak.upgrade().expect("still open").get().unwrap().value, 4);
/// drop(cache);
/// assert!(weak.upgrade().is_none());
/// assert!(Cache::<u8>::open(dir.path(), "p", CacheConfig::default()).is_ok());
/// # Ok(()) }
/// ```
pub struct WeakCache<T> {
    inner: std::sync::Weak<Inner<T>>,
}

impl<T> WeakCache<T> {
    /// The cache, if a [`Cache`] handle on it is still alive.
    pub fn upgrade(&self) -> Option<Cache<T>> {
        self.inner.upgrade().map(|inner| Cache { inner })
    }
}

impl<T> Clone for WeakCache<T> {
    fn clone(&self) -> Self {
        WeakCache {
            inner: std::sync::Weak::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for WeakCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.upgrade() {
            Some(cache) => f.debug_tuple("WeakCache").field(&cache).finish(),
            None => f.write_str("WeakCache(closed)"),
        }
    }
}

impl<T> fmt::Debug for Cache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self
            .inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|c| c.generation);
        f.debug_struct("Cache")
            .field("dir", &self.inner.dir)
            .field("name", &self.inner.name)
            .field("config", &self.inner.config)
            .field("current_generation", &current)
            .finish()
    }
}

impl<T> Cache<T> {
    /// The cache's directory.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let (cache, _) = spe_core::Cache::<u8>::open(dir.path(), "x", Default::default())?;
    /// assert_eq!(cache.dir(), dir.path());
    /// # Ok(()) }
    /// ```
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The cache's name (the stem of its files).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let (cache, _) = spe_core::Cache::<u8>::open(dir.path(), "x", Default::default())?;
    /// assert_eq!(cache.name(), "x");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// A [`WeakCache`] on this cache, which does not keep it open.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let (cache, _) = spe_core::Cache::<u8>::open(dir.path(), "x", Default::default())?;
    /// assert_eq!(cache.downgrade().upgrade().unwrap().name(), "x");
    /// # Ok(()) }
    /// ```
    pub fn downgrade(&self) -> WeakCache<T> {
        WeakCache {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// The configuration the cache was opened with.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let (cache, _) = spe_core::Cache::<u8>::open(dir.path(), "x", Default::default())?;
    /// assert_eq!(cache.config().generations, 3);
    /// # Ok(()) }
    /// ```
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// The last good value, from memory: the newest valid generation found
    /// at open, or the last successful [`put`](Cache::put). Never blocks on I/O.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let (cache, _) = spe_core::Cache::<u8>::open(dir.path(), "x", Default::default())?;
    /// assert!(cache.get().is_none());
    /// cache.put(3, chrono::Utc::now())?;
    /// assert_eq!(*cache.get().unwrap().value, 3);
    /// # Ok(()) }
    /// ```
    pub fn get(&self) -> Option<Cached<T>> {
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The generation files now on disk, newest first (quarantined and
    /// temporary files are not listed).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let (cache, _) = spe_core::Cache::<u8>::open(dir.path(), "x", Default::default())?;
    /// cache.put(1, chrono::Utc::now())?;
    /// cache.put(2, chrono::Utc::now())?;
    /// let seqs: Vec<u64> = cache.generations()?.into_iter().map(|g| g.seq).collect();
    /// assert_eq!(seqs, [2, 1]);
    /// # Ok(()) }
    /// ```
    pub fn generations(&self) -> Result<Vec<Generation>, CacheError> {
        let listing = scan(&self.inner.dir, &self.inner.name)?;
        let mut out = Vec::with_capacity(listing.generations.len());
        for (seq, path) in listing.generations {
            match fs::metadata(&path) {
                Ok(m) => out.push(Generation {
                    seq,
                    path,
                    len: m.len(),
                }),
                // Pruned or quarantined between the listing and now.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(CacheError::io(CacheIoOp::ReadDir, path, e)),
            }
        }
        Ok(out)
    }
}

impl<T> Cache<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Opens (creating the directory if needed) the cache `name` in `dir`
    /// and loads its newest valid generation; see [Load](Cache#load).
    ///
    /// `name` must be 1 to 64 ASCII letters, digits, `_` or `-`, not starting
    /// with `-`. Blocking: from async code, use
    /// [`tokio::task::spawn_blocking`].
    ///
    /// # Errors
    ///
    /// [`CacheError::InvalidName`], [`CacheError::InvalidConfig`],
    /// [`CacheError::Locked`] if the cache is already open (see
    /// [Concurrency](Cache#concurrency)), or [`CacheError::Io`] if the
    /// directory cannot be created or listed or the lock file cannot be
    /// opened.
    /// Corrupt or unreadable files are reported in the [`LoadReport`], not as errors.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use spe_core::{Cache, CacheConfig, CacheError};
    /// let dir = tempfile::tempdir()?;
    /// let (cache, report) = Cache::<Vec<u8>>::open(dir.path().join("new/sub"), "p", CacheConfig::default())?;
    /// assert!(cache.dir().is_dir() && report.is_clean());
    /// assert!(matches!(
    ///     Cache::<Vec<u8>>::open(dir.path(), "../escape", CacheConfig::default()),
    ///     Err(CacheError::InvalidName { .. })
    /// ));
    /// # Ok(()) }
    /// ```
    pub fn open(
        dir: impl AsRef<Path>,
        name: &str,
        config: CacheConfig,
    ) -> Result<(Self, LoadReport), CacheError> {
        Self::open_checked(dir, name, config, |_| Ok(()))
    }

    /// [`open`](Cache::open), where a generation is served only if its
    /// value also passes `check`: one that decodes but fails it (written by
    /// a buggy or older program) is quarantined like a damaged file, with
    /// [`CorruptionReason::Invalid`], and the next older generation is tried.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use spe_core::{Cache, CacheConfig, CorruptionReason};
    /// let dir = tempfile::tempdir()?;
    /// let (cache, _) = Cache::<i32>::open(dir.path(), "n", CacheConfig::default())?;
    /// cache.put(7, chrono::Utc::now())?;
    /// cache.put(-1, chrono::Utc::now())?; // newest, but not a valid count
    /// drop(cache);
    /// let positive = |v: &i32| if *v >= 0 { Ok(()) } else { Err(format!("{v} is negative")) };
    /// let (cache, report) = Cache::open_checked(dir.path(), "n", CacheConfig::default(), positive)?;
    /// assert_eq!(*cache.get().unwrap().value, 7);
    /// assert_eq!(report.loaded, Some(1));
    /// assert_eq!(report.quarantined[0].reason, CorruptionReason::Invalid("-1 is negative".into()));
    /// # Ok(()) }
    /// ```
    pub fn open_checked(
        dir: impl AsRef<Path>,
        name: &str,
        config: CacheConfig,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Result<(Self, LoadReport), CacheError> {
        validate_name(name)?;
        if config.generations == 0 {
            return Err(CacheError::InvalidConfig(
                "generations must be at least 1".to_owned(),
            ));
        }
        let dir = dir.as_ref().to_path_buf();
        ensure_dir(&dir)?;
        let lock = lock_cache(&dir, name)?;

        let listing = scan(&dir, name)?;
        let mut report = LoadReport::default();
        let mut dir_changed = false;

        for tmp in listing.temps {
            match fs::remove_file(&tmp) {
                Ok(()) => {
                    tracing::info!(path = %tmp.display(), "cache: removed a temporary file left by an interrupted write");
                    dir_changed = true;
                    report.removed_temp_files.push(tmp);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %tmp.display(), error = %e, "cache: cannot remove a leftover temporary file");
                }
            }
        }

        let quarantine_stamp = crate::durable::stamp(Utc::now());
        let mut current: Option<Cached<T>> = None;
        for (seq, path) in listing.generations {
            let bytes = match read_limited(&path, config.max_payload_bytes) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(u64::MAX);
                    let reason = CorruptionReason::TooLarge(len);
                    report
                        .quarantined
                        .push(quarantine(&path, seq, reason, &quarantine_stamp));
                    dir_changed = true;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cache: cannot read a generation file; skipping it");
                    report.unreadable.push(UnreadableFile {
                        path,
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            let checked = format::decode(&bytes, config.max_payload_bytes).and_then(|d| {
                if d.generation == seq {
                    Ok(d)
                } else {
                    Err(CorruptionReason::GenerationMismatch {
                        in_name: seq,
                        in_header: d.generation,
                    })
                }
            });
            let decoded = match checked {
                Ok(d) => d,
                Err(reason) => {
                    report
                        .quarantined
                        .push(quarantine(&path, seq, reason, &quarantine_stamp));
                    dir_changed = true;
                    continue;
                }
            };
            if current.is_some() {
                continue; // an older generation: checked up to its checksum, kept as a spare
            }
            let value = serde_json::from_slice::<T>(decoded.payload)
                .map_err(|e| CorruptionReason::Undecodable(e.to_string()))
                .and_then(|value| match check(&value) {
                    Ok(()) => Ok(value),
                    Err(why) => Err(CorruptionReason::Invalid(why)),
                });
            match value {
                Ok(value) => {
                    current = Some(Cached {
                        value: Arc::new(value),
                        stored_at: decoded.written_at,
                        generation: seq,
                    });
                    report.loaded = Some(seq);
                }
                Err(reason) => {
                    report
                        .quarantined
                        .push(quarantine(&path, seq, reason, &quarantine_stamp));
                    dir_changed = true;
                }
            }
        }
        if dir_changed {
            if let Err(e) = crate::durable::sync_dir(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cache: cannot fsync the directory after recovery");
            }
        }

        let next_seq = match listing.max_seq {
            None => Some(1),
            Some(max) => max.checked_add(1),
        };
        match &current {
            Some(c) => tracing::info!(
                dir = %dir.display(), name, generation = c.generation, stored_at = %c.stored_at,
                quarantined = report.quarantined.len(), "cache: loaded"
            ),
            None => tracing::info!(
                dir = %dir.display(), name, quarantined = report.quarantined.len(),
                "cache: no valid generation on disk"
            ),
        }
        let cache = Cache {
            inner: Arc::new(Inner {
                dir,
                name: name.to_owned(),
                config,
                writer: Mutex::new(next_seq),
                current: RwLock::new(current),
                _lock: lock,
            }),
        };
        Ok((cache, report))
    }

    /// Stores `value` as a new generation, durably, then serves it from memory.
    ///
    /// `now` is recorded as the value's [`stored_at`](Cached::stored_at)
    /// (to the millisecond). Writers are serialized. This is **blocking** I/O
    /// (two `fsync`s): async callers use [`put_async`](Cache::put_async) or
    /// [`tokio::task::spawn_blocking`].
    ///
    /// # Errors
    ///
    /// [`CacheError::Io`] (check [`CacheError::is_storage_full`]),
    /// [`CacheError::Encode`], [`CacheError::PayloadTooLarge`]. On error the
    /// previous generation is intact on disk and in memory, and no temporary
    /// file is left behind.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use spe_core::{Cache, CacheConfig};
    /// let dir = tempfile::tempdir()?;
    /// let (cache, _) = Cache::<Vec<f64>>::open(dir.path(), "predictions", CacheConfig::default())?;
    /// let g = cache.put(vec![1.0, 2.0], chrono::Utc::now())?;
    /// assert!(g.path.exists());
    /// assert_eq!(cache.get().unwrap().generation, g.seq);
    /// # Ok(()) }
    /// ```
    pub fn put(&self, value: T, now: DateTime<Utc>) -> Result<Generation, CacheError> {
        let inner = &*self.inner;
        let payload = serde_json::to_vec(&value).map_err(|e| CacheError::Encode(e.to_string()))?;
        let len = payload.len() as u64;
        if len > inner.config.max_payload_bytes {
            return Err(CacheError::PayloadTooLarge {
                len,
                max: inner.config.max_payload_bytes,
            });
        }
        let written_at_ms = now.timestamp_millis();
        let stored_at = DateTime::from_timestamp_millis(written_at_ms).unwrap_or(now);

        let mut next_seq = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = (*next_seq).ok_or(CacheError::SequenceExhausted)?;
        // Never reuse a number, even after a failed write.
        *next_seq = seq.checked_add(1);

        let bytes = format::encode(seq, written_at_ms, &payload);
        let path = inner.dir.join(generation_file_name(&inner.name, seq));
        if let Err(e) = write_durably(&inner.dir, &path, &bytes) {
            tracing::warn!(error = %e, generation = seq, "cache: write failed; the previous generation is kept");
            return Err(e);
        }
        *inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Cached {
            value: Arc::new(value),
            stored_at,
            generation: seq,
        });
        tracing::debug!(path = %path.display(), generation = seq, bytes = bytes.len(), "cache: stored");
        prune(&inner.dir, &inner.name, inner.config.generations);
        drop(next_seq);
        Ok(Generation {
            seq,
            path,
            len: bytes.len() as u64,
        })
    }

    /// [`put`](Cache::put) on tokio's blocking thread pool, for async callers.
    ///
    /// If this future is dropped, the write still runs to its end (it is
    /// atomic either way). Outside a tokio runtime it falls back to a plain
    /// blocking [`put`](Cache::put) rather than panicking.
    ///
    /// # Errors
    ///
    /// As [`put`](Cache::put), plus [`CacheError::TaskFailed`] if the
    /// blocking task could not finish (runtime shutting down).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use spe_core::{Cache, CacheConfig};
    /// let dir = tempfile::tempdir()?;
    /// let (cache, _) = Cache::<String>::open(dir.path(), "frame", CacheConfig::default())?;
    /// cache.put_async("hello".to_owned(), chrono::Utc::now()).await?;
    /// assert_eq!(cache.get().unwrap().value.as_str(), "hello");
    /// # Ok(()) }
    /// ```
    pub async fn put_async(&self, value: T, now: DateTime<Utc>) -> Result<Generation, CacheError> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.put(value, now);
        };
        let this = self.clone();
        runtime
            .spawn_blocking(move || this.put(value, now))
            .await
            .map_err(|e| CacheError::TaskFailed(e.to_string()))?
    }
}

fn validate_name(name: &str) -> Result<(), CacheError> {
    let invalid = |reason| {
        Err(CacheError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return invalid("longer than 64 bytes");
    }
    if name.starts_with('-') {
        return invalid("starts with '-'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return invalid("only ASCII letters, digits, '_' and '-' are allowed");
    }
    Ok(())
}

fn generation_file_name(name: &str, seq: u64) -> String {
    format!("{name}.{seq:020}.{EXT}")
}

/// What a file name in the cache directory is, for the cache `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Generation(u64),
    Temp(u64),
    Quarantined(u64),
}

fn classify(file_name: &str, name: &str) -> Option<FileKind> {
    let rest = file_name.strip_prefix(name)?.strip_prefix('.')?;
    let digits = rest.get(..20)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq: u64 = digits.parse().ok()?;
    let rest = rest.get(20..)?.strip_prefix('.')?.strip_prefix(EXT)?;
    if rest.is_empty() {
        Some(FileKind::Generation(seq))
    } else if rest.starts_with(TMP_MARK) {
        Some(FileKind::Temp(seq))
    } else if rest.starts_with(CORRUPT_MARK) {
        Some(FileKind::Quarantined(seq))
    } else {
        None
    }
}

#[derive(Debug, Default)]
struct Listing {
    /// Newest first.
    generations: Vec<(u64, PathBuf)>,
    temps: Vec<PathBuf>,
    /// Highest number seen in any of this cache's files.
    max_seq: Option<u64>,
}

fn scan(dir: &Path, name: &str) -> Result<Listing, CacheError> {
    let entries = fs::read_dir(dir).map_err(|e| CacheError::io(CacheIoOp::ReadDir, dir, e))?;
    let mut listing = Listing::default();
    for entry in entries {
        let entry = entry.map_err(|e| CacheError::io(CacheIoOp::ReadDir, dir, e))?;
        let file_name = entry.file_name();
        let Some(kind) = file_name.to_str().and_then(|f| classify(f, name)) else {
            continue;
        };
        // Symbolic links and directories are not ours; leave them alone.
        match entry.file_type() {
            Ok(t) if t.is_file() => {}
            _ => continue,
        }
        let (FileKind::Generation(seq) | FileKind::Temp(seq) | FileKind::Quarantined(seq)) = kind;
        listing.max_seq = listing.max_seq.max(Some(seq));
        match kind {
            FileKind::Generation(seq) => listing.generations.push((seq, entry.path())),
            FileKind::Temp(_) => listing.temps.push(entry.path()),
            FileKind::Quarantined(_) => {}
        }
    }
    listing.generations.sort_by_key(|g| std::cmp::Reverse(g.0));
    Ok(listing)
}

/// Takes the lock of the cache `name` in `dir` (see
/// [Concurrency](Cache#concurrency)), creating its lock file if needed.
fn lock_cache(dir: &Path, name: &str) -> Result<ExclusiveLock, CacheError> {
    let path = dir.join(format!("{name}.{LOCK_EXT}"));
    let file = open_lock_file(&path).map_err(|e| CacheError::io(CacheIoOp::Lock, &path, e))?;
    match ExclusiveLock::try_lock(file) {
        Ok(Some(lock)) => Ok(lock),
        Ok(None) => Err(CacheError::Locked { path }),
        Err(e) => Err(CacheError::io(CacheIoOp::Lock, path, e)),
    }
}

fn ensure_dir(dir: &Path) -> Result<(), CacheError> {
    // New directories' entries are made durable too.
    let unsynced = crate::durable::create_dir_all(dir)
        .map_err(|e| CacheError::io(CacheIoOp::CreateDir, dir, e))?;
    for (parent, e) in unsynced {
        tracing::warn!(dir = %parent.display(), error = %e, "cache: cannot fsync the parent directory");
    }
    Ok(())
}

/// Reads a whole file, or `None` if it is larger than a valid file can be.
fn read_limited(path: &Path, max_payload_bytes: u64) -> io::Result<Option<Vec<u8>>> {
    let limit = max_payload_bytes.saturating_add(CACHE_HEADER_LEN as u64);
    let file = File::open(path)?;
    let hint = file.metadata().map(|m| m.len()).unwrap_or(0).min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// Renames a corrupt generation aside; never fails (a failed rename is logged
/// and reported with `moved_to: None`).
fn quarantine(path: &Path, generation: u64, reason: CorruptionReason, stamp: &str) -> Quarantined {
    let mut moved_to = None;
    for target in crate::durable::side_names(path, CORRUPT_MARK, stamp) {
        // `rename` replaces an existing target: never overwrite an earlier quarantine.
        if target.symlink_metadata().is_ok() {
            continue;
        }
        match fs::rename(path, &target) {
            Ok(()) => moved_to = Some(target),
            Err(e) => tracing::error!(
                path = %path.display(), error = %e,
                "cache: cannot rename a corrupt generation aside; it stays in place and is not served"
            ),
        }
        break;
    }
    tracing::warn!(
        path = %path.display(),
        moved_to = %moved_to.as_deref().unwrap_or(Path::new("-")).display(),
        generation, %reason,
        "cache: corrupt generation quarantined"
    );
    Quarantined {
        path: path.to_path_buf(),
        moved_to,
        generation,
        reason,
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Steps 1–4 of the write protocol. On error before the rename, the
/// temporary file is removed.
fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let base = path.file_name().unwrap_or(OsStr::new("")).to_string_lossy();
    let pid = std::process::id();
    let (tmp, mut file) = loop {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_file_name(format!("{base}{TMP_MARK}{pid}-{n}"));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => break (tmp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(CacheError::io(CacheIoOp::CreateTemp, tmp, e)),
        }
    };
    let written = file.write_all(bytes);
    drop(file);
    let result = written.map_err(|e| (CacheIoOp::Write, e)).and_then(|()| {
        durable::publish(&tmp, path).map_err(|(step, e)| {
            let op = match step {
                PublishStep::SyncFile => CacheIoOp::SyncFile,
                PublishStep::Rename => CacheIoOp::Rename,
                PublishStep::SyncDir => CacheIoOp::SyncDir,
            };
            (op, e)
        })
    });
    match result {
        Ok(()) => Ok(()),
        // The new generation is in place; only its durability is in doubt.
        Err((CacheIoOp::SyncDir, e)) => Err(CacheError::io(CacheIoOp::SyncDir, dir, e)),
        Err((op, e)) => {
            if let Err(rm) = fs::remove_file(&tmp) {
                tracing::error!(path = %tmp.display(), error = %rm, "cache: cannot remove the temporary file of a failed write");
            }
            let at = if op == CacheIoOp::Rename { path } else { &tmp };
            Err(CacheError::io(op, at, e))
        }
    }
}

/// Deletes generations beyond the newest `keep`. Best effort: the new
/// generation is already durable, so a failure is only logged.
fn prune(dir: &Path, name: &str, keep: usize) {
    let listing = match scan(dir, name) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cache: cannot list the directory to prune old generations");
            return;
        }
    };
    for (seq, path) in listing.generations.into_iter().skip(keep) {
        match fs::remove_file(&path) {
            Ok(()) => tracing::debug!(generation = seq, "cache: pruned an old generation"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cache: cannot prune an old generation")
            }
        }
    }
}
