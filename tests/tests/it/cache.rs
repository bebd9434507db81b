//! The crash-safe cache through its public API, on real files: reopen,
//! pruning, a file cut at every byte offset, every bit flipped, a wrong
//! version, leftover temporary files, concurrent writers, and a full disk (a
//! real 64 KiB tmpfs, where the machine lets us mount one).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use spe_core::{
    CACHE_FORMAT_VERSION, CACHE_HEADER_LEN, CACHE_MAGIC, Cache, CacheConfig, CacheError, CacheIoOp,
    CorruptionReason, LoadReport, Provenance,
};

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "spe-cache-it-{tag}-{}-{n}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

type Predictions = Vec<f64>;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 0)
        .single()
        .expect("valid time")
}

fn open(dir: &Path) -> (Cache<Predictions>, LoadReport) {
    Cache::open(dir, "predictions", CacheConfig::default()).expect("open the cache")
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_reopen_and_provenance() {
    let tmp = TempDir::new("roundtrip");
    let dir = tmp.path().join("cache");
    let (cache, report) = open(&dir);
    assert!(dir.is_dir(), "open creates the directory");
    assert!(report.is_clean() && report.loaded.is_none());
    assert!(cache.get().is_none());

    let g = cache.put(vec![41.5, 42.25], t(0)).expect("put");
    assert_eq!(g.seq, 1);
    assert_eq!(
        g.path.file_name().and_then(|f| f.to_str()),
        Some("predictions.00000000000000000001.spc")
    );
    let hit = cache.get().expect("in memory");
    assert_eq!(*hit.value, vec![41.5, 42.25]);
    assert_eq!(hit.age(t(3600)), Duration::from_secs(3600));
    assert_eq!(
        hit.provenance(t(3600)),
        Provenance::cached(Duration::from_secs(3600))
    );

    drop(cache);
    let (cache, report) = open(&dir);
    assert!(report.is_clean());
    assert_eq!(report.loaded, Some(1));
    let hit = cache.get().expect("reloaded");
    assert_eq!(
        (&*hit.value, hit.stored_at, hit.generation),
        (&vec![41.5, 42.25], t(0), 1)
    );
}

#[test]
fn the_file_starts_with_the_documented_header() {
    let tmp = TempDir::new("header");
    let (cache, _) = open(tmp.path());
    let g = cache.put(vec![1.0], t(0)).expect("put");
    let bytes = fs::read(&g.path).expect("read");
    let payload = b"[1.0]";
    assert_eq!(bytes.len(), CACHE_HEADER_LEN + payload.len());
    assert_eq!(&bytes[0..8], &CACHE_MAGIC);
    assert_eq!(&bytes[8..10], &CACHE_FORMAT_VERSION.to_le_bytes());
    assert_eq!(&bytes[16..24], &1u64.to_le_bytes());
    assert_eq!(&bytes[24..32], &t(0).timestamp_millis().to_le_bytes());
    assert_eq!(&bytes[32..40], &(payload.len() as u64).to_le_bytes());
    assert_eq!(&bytes[44..], payload);
}

#[test]
fn generations_are_pruned_to_the_configured_number() {
    let tmp = TempDir::new("prune");
    for keep in [1usize, 3, 5] {
        let name = format!("keep{keep}");
        let config = CacheConfig {
            generations: keep,
            ..CacheConfig::default()
        };
        let (cache, _) = Cache::<u64>::open(tmp.path(), &name, config).expect("open");
        for i in 1..=8u64 {
            cache.put(i, t(0)).expect("put");
        }
        let seqs: Vec<u64> = cache
            .generations()
            .expect("list")
            .iter()
            .map(|g| g.seq)
            .collect();
        let expected: Vec<u64> = (1..=8u64).rev().take(keep).collect();
        assert_eq!(seqs, expected);
        let on_disk = file_names(tmp.path())
            .into_iter()
            .filter(|f| f.starts_with(&format!("{name}.")))
            .count();
        // The generations kept, and the lock file.
        assert_eq!(on_disk, keep + 1, "no other file of {name} remains");
    }
}

/// Writes generation 1 (`[1.0]`) and 2 (`[1.0, 2.0]`); returns both files' bytes and names.
fn two_generations() -> (Vec<u8>, Vec<u8>, String, String) {
    let tmp = TempDir::new("source");
    let (cache, _) = open(tmp.path());
    let g1 = cache.put(vec![1.0], t(0)).expect("put 1");
    let g2 = cache.put(vec![1.0, 2.0], t(60)).expect("put 2");
    let name = |p: &Path| {
        p.file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned()
    };
    (
        fs::read(&g1.path).expect("read 1"),
        fs::read(&g2.path).expect("read 2"),
        name(&g1.path),
        name(&g2.path),
    )
}

/// Opens a directory holding generation 1 intact (if `previous`) and
/// generation 2 replaced by `damaged`, and checks the guarantees: the
/// previous value (or none) is served, never the damaged one or anything
/// else, and the damaged file is quarantined byte for byte.
fn check_damaged(
    previous: Option<(&[u8], &str)>,
    damaged: &[u8],
    newest: &str,
    what: &str,
) -> CorruptionReason {
    let tmp = TempDir::new("damaged");
    if let Some((bytes, name)) = previous {
        fs::write(tmp.path().join(name), bytes).expect("write generation 1");
    }
    let newest = tmp.path().join(newest);
    fs::write(&newest, damaged).expect("write the damaged generation");
    let (cache, report) = open(tmp.path());
    match previous {
        Some(_) => {
            let hit = cache
                .get()
                .unwrap_or_else(|| panic!("{what}: generation 1 must be served"));
            assert_eq!((&*hit.value, hit.generation), (&vec![1.0], 1), "{what}");
            assert_eq!(report.loaded, Some(1), "{what}");
        }
        None => {
            assert!(
                cache.get().is_none(),
                "{what}: nothing valid, nothing served"
            );
            assert_eq!(report.loaded, None, "{what}");
        }
    }
    assert_eq!(report.quarantined.len(), 1, "{what}");
    let q = &report.quarantined[0];
    assert_eq!((q.generation, &q.path), (2, &newest), "{what}");
    assert!(!newest.exists(), "{what}: moved aside");
    let moved = q
        .moved_to
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: quarantined"));
    assert!(moved.to_string_lossy().contains(".spc.corrupt-"), "{what}");
    assert_eq!(
        fs::read(moved).expect("read quarantined"),
        damaged,
        "{what}: kept as found"
    );
    // The cache goes on: the next write is generation 3, and wins at reopen.
    assert_eq!(
        cache
            .put(vec![3.0], t(120))
            .expect("put after recovery")
            .seq,
        3
    );
    drop(cache);
    let (cache, report) = open(tmp.path());
    assert!(
        report.is_clean(),
        "{what}: quarantined files are not looked at again"
    );
    assert_eq!(
        cache.get().map(|c| (*c.value).clone()),
        Some(vec![3.0]),
        "{what}"
    );
    q.reason.clone()
}

#[test]
fn a_file_cut_at_every_byte_offset_is_quarantined_and_the_previous_served() {
    let (b1, b2, n1, n2) = two_generations();
    for cut in 0..b2.len() {
        let what = format!("cut at {cut} of {}", b2.len());
        let reason = check_damaged(Some((&b1, &n1)), &b2[..cut], &n2, &what);
        assert_eq!(reason, CorruptionReason::Truncated, "{what}");
        let reason = check_damaged(None, &b2[..cut], &n2, &format!("{what}, alone"));
        assert_eq!(reason, CorruptionReason::Truncated, "{what}");
    }
}

#[test]
fn every_bit_flipped_is_quarantined_and_the_previous_served() {
    let (b1, b2, n1, n2) = two_generations();
    for bit in 0..b2.len() * 8 {
        let mut damaged = b2.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let what = format!("bit {bit} flipped");
        let reason = check_damaged(Some((&b1, &n1)), &damaged, &n2, &what);
        // Which check catches it depends on where it lands.
        let expected = match bit / 8 {
            0..8 => matches!(reason, CorruptionReason::BadMagic),
            8..10 => matches!(reason, CorruptionReason::UnsupportedVersion(_)),
            32..40 => matches!(
                reason,
                CorruptionReason::Truncated
                    | CorruptionReason::TrailingBytes
                    | CorruptionReason::TooLarge(_)
            ),
            _ => matches!(reason, CorruptionReason::ChecksumMismatch),
        };
        assert!(expected, "{what}: unexpected reason {reason:?}");
    }
    // And with no previous generation: nothing served, cleanly.
    let mut damaged = b2.clone();
    damaged[CACHE_HEADER_LEN] ^= 0x20;
    check_damaged(None, &damaged, &n2, "payload bit, alone");
}

#[test]
fn a_wrong_version_is_quarantined() {
    let (b1, b2, n1, n2) = two_generations();
    for version in [0u16, 2, 0xFFFF] {
        let mut v = b2.clone();
        v[8..10].copy_from_slice(&version.to_le_bytes());
        let reason = check_damaged(Some((&b1, &n1)), &v, &n2, &format!("version {version}"));
        assert_eq!(reason, CorruptionReason::UnsupportedVersion(version));
    }
}

#[test]
fn leftover_temp_files_are_cleaned_at_open() {
    let tmp = TempDir::new("temps");
    let (cache, _) = open(tmp.path());
    cache.put(vec![7.0], t(0)).expect("put");
    drop(cache);
    // What a crash between create and rename leaves behind.
    let leftovers = [
        "predictions.00000000000000000002.spc.tmp-4242-0",
        "predictions.00000000000000000003.spc.tmp-4242-1",
    ];
    for l in leftovers {
        fs::write(tmp.path().join(l), b"\x89SPEC\r\n").expect("write a leftover");
    }
    let (cache, report) = open(tmp.path());
    assert!(report.is_clean());
    assert_eq!(report.removed_temp_files.len(), 2);
    assert_eq!(
        file_names(tmp.path()),
        ["predictions.00000000000000000001.spc", "predictions.lock"]
    );
    assert_eq!(cache.get().map(|c| (*c.value).clone()), Some(vec![7.0]));
    assert_eq!(cache.put(vec![8.0], t(1)).expect("put").seq, 4);
}

#[test]
fn concurrent_puts_from_threads() {
    let tmp = TempDir::new("threads");
    let (cache, _) = open(tmp.path());
    let handles: Vec<_> = (0..6u32)
        .map(|th| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                for i in 0..15u32 {
                    let value = vec![f64::from(th), f64::from(i)];
                    let g = cache.put(value, t(i64::from(i))).expect("put");
                    assert!(g.seq >= 1);
                    assert!(cache.get().is_some());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("no thread panicked");
    }
    let seqs: Vec<u64> = cache
        .generations()
        .expect("list")
        .iter()
        .map(|g| g.seq)
        .collect();
    assert_eq!(seqs, vec![90, 89, 88]);
    let newest = cache.get().expect("newest");
    assert_eq!(newest.generation, 90);
    assert!(!file_names(tmp.path()).iter().any(|f| f.contains(".tmp-")));
    drop(cache);
    let (cache, report) = open(tmp.path());
    assert!(report.is_clean());
    assert_eq!(cache.get().map(|c| c.value), Some(newest.value));
}

#[tokio::test]
async fn put_async_from_a_runtime() {
    let tmp = TempDir::new("async");
    let (cache, _) = open(tmp.path());
    let g = cache.put_async(vec![5.0], t(0)).await.expect("put_async");
    assert_eq!(g.seq, 1);
    assert_eq!(cache.get().map(|c| (*c.value).clone()), Some(vec![5.0]));
}

/// A tmpfs mounted on a fresh directory; unmounted (and the directory
/// removed) on drop, even when the test fails.
struct TinyTmpfs {
    dir: TempDir,
}

impl TinyTmpfs {
    /// Mounts a tmpfs of `size`, or says why it cannot.
    fn mount(size: &str) -> Result<Self, String> {
        let dir = TempDir::new("tmpfs");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run `mount`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`mount -t tmpfs` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(TinyTmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Busy (a file still open): detach it now, it goes when released.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes `path` until the file system refuses: returns the error.
fn fill(path: &Path) -> std::io::Error {
    use std::io::Write;
    let mut file = fs::File::create(path).expect("create the filler");
    let chunk = vec![0xAAu8; 4096];
    loop {
        if let Err(e) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
            return e;
        }
    }
}

#[test]
fn disk_full_keeps_the_previous_generation_and_says_so() {
    let fs64k = match TinyTmpfs::mount("64k") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("SKIPPED disk_full_keeps_the_previous_generation_and_says_so: {why}");
            return;
        }
    };
    let dir = fs64k.path().join("cache");
    let (cache, _) = open(&dir);
    let good = vec![1.0, 2.0, 3.0];
    cache.put(good.clone(), t(0)).expect("the first write fits");

    let filler = fs64k.path().join("filler");
    let full = fill(&filler);
    assert_eq!(
        full.kind(),
        std::io::ErrorKind::StorageFull,
        "the tmpfs is full: {full}"
    );

    let err = cache
        .put(vec![9.0; 4096], t(60))
        .expect_err("no room for a new generation");
    assert!(err.is_storage_full(), "the error says storage full: {err}");
    assert!(err.to_string().contains("storage full"), "{err}");
    eprintln!("disk full error: {err}");
    assert!(
        matches!(
            err,
            CacheError::Io {
                op: CacheIoOp::Write | CacheIoOp::SyncFile | CacheIoOp::CreateTemp,
                ..
            }
        ),
        "{err:?}"
    );
    // The previous generation is intact in memory and on disk; no temp file.
    let hit = cache.get().expect("still served");
    assert_eq!((&*hit.value, hit.generation), (&good, 1));
    assert_eq!(
        file_names(&dir),
        ["predictions.00000000000000000001.spc", "predictions.lock"]
    );

    drop(cache);
    let (cache, report) = open(&dir);
    assert!(report.is_clean());
    assert_eq!(cache.get().map(|c| (*c.value).clone()), Some(good));

    // Room again: writing works again (numbering resumes from what is on disk).
    fs::remove_file(&filler).expect("free the space");
    assert_eq!(
        cache
            .put(vec![4.0], t(120))
            .expect("put after freeing space")
            .seq,
        2
    );
    drop(cache);
    let (cache, _) = open(&dir);
    assert_eq!(cache.get().map(|c| (*c.value).clone()), Some(vec![4.0]));
}
