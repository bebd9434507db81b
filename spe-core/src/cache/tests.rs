//! Unit tests of the cache, on real files in temporary directories.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use std::future::Future;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Forecast {
    model: String,
    mean: Vec<f64>,
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 0)
        .single()
        .expect("valid time")
}

fn forecast(i: u32) -> Forecast {
    Forecast {
        model: format!("ets-{i}"),
        mean: vec![f64::from(i), 1.5],
    }
}

fn open<T: Serialize + DeserializeOwned + Send + Sync + 'static>(
    dir: &Path,
) -> (Cache<T>, LoadReport) {
    Cache::open(dir, "pred", CacheConfig::default()).expect("open")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, report) = open::<Forecast>(dir.path());
    assert!(report.is_clean());
    assert_eq!(report.loaded, None);
    assert!(cache.get().is_none());

    let g = cache.put(forecast(1), t(0)).unwrap();
    assert_eq!(g.seq, 1);
    let hit = cache.get().unwrap();
    assert_eq!(*hit.value, forecast(1));
    assert_eq!((hit.stored_at, hit.generation), (t(0), 1));
    assert_eq!(hit.age(t(90)), Duration::from_secs(90));
    assert_eq!(
        hit.provenance(t(90)),
        Provenance::cached(Duration::from_secs(90))
    );

    cache.put(forecast(2), t(60)).unwrap();
    drop(cache);
    let (cache, report) = open::<Forecast>(dir.path());
    assert!(report.is_clean());
    assert_eq!(report.loaded, Some(2));
    let hit = cache.get().unwrap();
    assert_eq!(
        (&*hit.value, hit.stored_at, hit.generation),
        (&forecast(2), t(60), 2)
    );
    // Numbering goes on after a reopen.
    assert_eq!(cache.put(forecast(3), t(120)).unwrap().seq, 3);
}

#[test]
fn stored_at_is_kept_to_the_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _) = open::<u8>(dir.path());
    let now = Utc
        .timestamp_opt(1_767_225_600, 123_456_789)
        .single()
        .unwrap();
    cache.put(1, now).unwrap();
    let in_memory = cache.get().unwrap().stored_at;
    assert_eq!(in_memory.timestamp_millis(), 1_767_225_600_123);
    drop(cache);
    let (cache, _) = open::<u8>(dir.path());
    assert_eq!(cache.get().unwrap().stored_at, in_memory);
}

#[test]
fn generations_are_pruned_to_n_and_quarantined_files_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    for keep in [1usize, 2, 3] {
        let name = format!("keep{keep}");
        let config = CacheConfig {
            generations: keep,
            ..CacheConfig::default()
        };
        let (cache, _) = Cache::<u32>::open(dir.path(), &name, config).unwrap();
        for i in 1..=6u32 {
            cache.put(i, t(i64::from(i))).unwrap();
            let seqs: Vec<u64> = cache.generations().unwrap().iter().map(|g| g.seq).collect();
            let expected: Vec<u64> = (1..=u64::from(i)).rev().take(keep).collect();
            assert_eq!(seqs, expected, "keep {keep} after put {i}");
        }
    }
    // A quarantined file survives any number of later writes.
    fs::write(dir.path().join("q.00000000000000000009.spc"), b"garbage").unwrap();
    let (cache, report) = Cache::<u32>::open(dir.path(), "q", CacheConfig::default()).unwrap();
    let moved = report.quarantined[0].moved_to.clone().unwrap();
    for i in 0..5 {
        cache.put(i, t(0)).unwrap();
    }
    assert!(moved.exists());
    assert_eq!(
        cache.generations().unwrap()[0].seq,
        14,
        "numbers continue past the quarantined one"
    );
}

#[test]
fn invalid_names_and_config_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["", "a.b", "../x", "a/b", "-x", "é", &"x".repeat(65), "a b"] {
        let err = Cache::<u8>::open(dir.path(), bad, CacheConfig::default()).unwrap_err();
        assert!(
            matches!(err, CacheError::InvalidName { .. }),
            "{bad:?}: {err}"
        );
    }
    for good in ["x", "predictions", "weather_frame-2", &"x".repeat(64)] {
        Cache::<u8>::open(dir.path(), good, CacheConfig::default()).unwrap();
    }
    let err = Cache::<u8>::open(
        dir.path(),
        "x",
        CacheConfig {
            generations: 0,
            ..CacheConfig::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, CacheError::InvalidConfig(_)));
    // Open alone writes nothing but the lock files of the caches opened.
    assert_eq!(
        files_in(dir.path()),
        [
            "predictions.lock".to_owned(),
            "weather_frame-2.lock".to_owned(),
            "x.lock".to_owned(),
            format!("{}.lock", "x".repeat(64)),
        ]
    );
}

#[test]
fn a_cache_is_open_once_until_its_last_handle_goes() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _) = open::<Forecast>(dir.path());
    cache.put(forecast(1), t(0)).unwrap();
    let clone = cache.clone();
    drop(cache);
    // A second open, here or in another process, would remove the first
    // one's writes in progress and reuse its generation numbers.
    let err = Cache::<Forecast>::open(dir.path(), "pred", CacheConfig::default()).unwrap_err();
    let CacheError::Locked { path } = &err else {
        panic!("{err}")
    };
    assert_eq!(path, &dir.path().join("pred.lock"));
    assert!(err.to_string().contains("already open"), "{err}");
    // Other names in the same directory are other caches.
    Cache::<Forecast>::open(dir.path(), "other", CacheConfig::default()).unwrap();
    // The refused open touched nothing: the value and its file are there.
    assert_eq!(*clone.get().unwrap().value, forecast(1));
    assert_eq!(clone.generations().unwrap().len(), 1);

    let weak = clone.downgrade();
    drop(clone);
    assert!(weak.upgrade().is_none(), "closed with its last handle");
    let (reopened, report) = open::<Forecast>(dir.path());
    assert!(report.is_clean());
    assert_eq!(*reopened.get().unwrap().value, forecast(1));
    // The lock file is not a generation, nor a file to quarantine.
    assert_eq!(reopened.generations().unwrap().len(), 1);
    assert!(dir.path().join("pred.lock").is_file());
}

#[test]
fn a_lock_file_that_cannot_be_opened_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("pred.lock")).unwrap();
    let err = Cache::<Forecast>::open(dir.path(), "pred", CacheConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::Io {
                op: CacheIoOp::Lock,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot open or lock the lock file"),
        "{err}"
    );
}

#[test]
fn file_names_are_classified_strictly() {
    use FileKind::*;
    let g = "p.00000000000000000042.spc";
    assert_eq!(classify(g, "p"), Some(Generation(42)));
    assert_eq!(classify(&format!("{g}.tmp-1-2"), "p"), Some(Temp(42)));
    assert_eq!(
        classify(&format!("{g}.corrupt-20260101T000000.000Z"), "p"),
        Some(Quarantined(42))
    );
    for other in [
        "p.0000000000000000042.spc",
        "p.00000000000000000042.spcx",
        "p.00000000000000000042.json",
        "pp.00000000000000000042.spc",
        "p-x.00000000000000000042.spc",
        "p.99999999999999999999.spc", // overflows u64
        "p.+0000000000000000042.spc",
        "p",
        "",
    ] {
        assert_eq!(classify(other, "p"), None, "{other}");
    }
}

#[test]
fn leftover_temp_files_are_removed_at_open_and_others_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _) = open::<u32>(dir.path());
    cache.put(7, t(0)).unwrap();
    drop(cache);
    let tmp = dir.path().join("pred.00000000000000000002.spc.tmp-999-0");
    fs::write(&tmp, b"half a wri").unwrap();
    let foreign = dir.path().join("other.00000000000000000001.spc.tmp-1-1");
    fs::write(&foreign, b"not ours").unwrap();
    fs::write(dir.path().join("README"), b"hello").unwrap();

    let (cache, report) = open::<u32>(dir.path());
    assert_eq!(report.removed_temp_files, vec![tmp.clone()]);
    assert!(report.is_clean());
    assert!(!tmp.exists() && foreign.exists());
    assert_eq!(*cache.get().unwrap().value, 7);
    assert_eq!(
        cache.put(8, t(1)).unwrap().seq,
        3,
        "numbers never reuse a temp file's"
    );
}

/// A cache with generations 1 (`[1]`) and 2 (`[1, 2]`); returns their bytes.
fn two_generations(dir: &Path) -> (Vec<u8>, Vec<u8>, PathBuf, PathBuf) {
    let (cache, _) = open::<Vec<u32>>(dir);
    let g1 = cache.put(vec![1], t(0)).unwrap();
    let g2 = cache.put(vec![1, 2], t(1)).unwrap();
    (
        fs::read(&g1.path).unwrap(),
        fs::read(&g2.path).unwrap(),
        g1.path,
        g2.path,
    )
}

#[test]
fn a_cut_at_every_offset_falls_back_to_the_previous_generation() {
    let src = tempfile::tempdir().unwrap();
    let (b1, b2, p1, p2) = two_generations(src.path());
    for cut in 0..b2.len() {
        for with_previous in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            if with_previous {
                fs::write(dir.path().join(p1.file_name().unwrap()), &b1).unwrap();
            }
            let newest = dir.path().join(p2.file_name().unwrap());
            fs::write(&newest, &b2[..cut]).unwrap();
            let (cache, report) = open::<Vec<u32>>(dir.path());
            if with_previous {
                assert_eq!(*cache.get().unwrap().value, vec![1], "cut {cut}");
                assert_eq!(report.loaded, Some(1));
            } else {
                assert!(cache.get().is_none(), "cut {cut}");
                assert_eq!(report.loaded, None);
            }
            assert_eq!(report.quarantined.len(), 1);
            let q = &report.quarantined[0];
            assert_eq!(
                (q.generation, &q.reason),
                (2, &CorruptionReason::Truncated),
                "cut {cut}"
            );
            assert!(!newest.exists());
            assert_eq!(fs::read(q.moved_to.as_ref().unwrap()).unwrap(), &b2[..cut]);
        }
    }
}

#[test]
fn every_bit_flip_falls_back_to_the_previous_generation() {
    let src = tempfile::tempdir().unwrap();
    let (b1, b2, p1, p2) = two_generations(src.path());
    let mut reasons = BTreeSet::new();
    for bit in 0..b2.len() * 8 {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(p1.file_name().unwrap()), &b1).unwrap();
        let mut damaged = b2.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        fs::write(dir.path().join(p2.file_name().unwrap()), &damaged).unwrap();
        let (cache, report) = open::<Vec<u32>>(dir.path());
        assert_eq!(*cache.get().unwrap().value, vec![1], "bit {bit}");
        assert_eq!(report.quarantined.len(), 1, "bit {bit}");
        reasons.insert(
            format!("{:?}", report.quarantined[0].reason)
                .chars()
                .take(12)
                .collect::<String>(),
        );
    }
    // Damage lands on the magic, the version, the length and the checksum alike.
    assert!(reasons.len() >= 4, "{reasons:?}");
}

#[test]
fn wrong_version_and_wrong_type_are_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let (_, b2, _, p2) = two_generations(dir.path());
    let mut v2 = b2.clone();
    v2[8..10].copy_from_slice(&2u16.to_le_bytes());
    fs::write(&p2, &v2).unwrap();
    let (cache, report) = open::<Vec<u32>>(dir.path());
    assert_eq!(
        report.quarantined[0].reason,
        CorruptionReason::UnsupportedVersion(2)
    );
    assert_eq!(*cache.get().unwrap().value, vec![1]);
    drop(cache);

    // The program changed its type: the old generation is set aside, not served.
    let (cache, report) =
        Cache::<String>::open(dir.path(), "pred", CacheConfig::default()).unwrap();
    assert!(cache.get().is_none());
    assert!(matches!(
        report.quarantined[0].reason,
        CorruptionReason::Undecodable(_)
    ));
}

#[test]
fn a_renamed_generation_is_caught_by_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, p1, p2) = two_generations(dir.path());
    fs::remove_file(&p1).unwrap();
    let p5 = dir.path().join("pred.00000000000000000005.spc");
    fs::rename(&p2, &p5).unwrap();
    let (cache, report) = open::<Vec<u32>>(dir.path());
    assert!(cache.get().is_none());
    assert_eq!(
        report.quarantined[0].reason,
        CorruptionReason::GenerationMismatch {
            in_name: 5,
            in_header: 2
        }
    );
}

#[test]
fn corrupt_older_generations_are_quarantined_too() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, p1, _) = two_generations(dir.path());
    fs::write(&p1, b"\x89SPEC\r\n\x1a rubbish").unwrap();
    let (cache, report) = open::<Vec<u32>>(dir.path());
    assert_eq!(*cache.get().unwrap().value, vec![1, 2]);
    assert_eq!(report.loaded, Some(2));
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.quarantined[0].generation, 1);
}

#[test]
fn quarantine_never_overwrites_an_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pred.00000000000000000001.spc");
    let mut moved = BTreeSet::new();
    for round in 0..3u8 {
        fs::write(&p, [b'x', round]).unwrap();
        let q = quarantine(&p, 1, CorruptionReason::BadMagic, "20260101T000000.000Z");
        let to = q.moved_to.unwrap();
        assert_eq!(fs::read(&to).unwrap(), [b'x', round]);
        moved.insert(to);
    }
    assert_eq!(moved.len(), 3);
    for m in &moved {
        assert!(m.exists());
    }
}

#[test]
fn oversized_files_and_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let small = CacheConfig {
        max_payload_bytes: 8,
        ..CacheConfig::default()
    };
    let (cache, _) = Cache::<String>::open(dir.path(), "s", small.clone()).unwrap();
    cache.put("12345".to_owned(), t(0)).unwrap(); // "\"12345\"" is 7 bytes
    let err = cache.put("123456789".to_owned(), t(1)).unwrap_err();
    assert!(
        matches!(err, CacheError::PayloadTooLarge { len: 11, max: 8 }),
        "{err}"
    );
    assert_eq!(cache.get().unwrap().value.as_str(), "12345");
    drop(cache);

    // A huge file is not read into memory, just set aside.
    let big = dir.path().join("s.00000000000000000009.spc");
    fs::write(&big, vec![0u8; 1000]).unwrap();
    let (cache, report) = Cache::<String>::open(dir.path(), "s", small).unwrap();
    assert_eq!(
        report.quarantined[0].reason,
        CorruptionReason::TooLarge(1000)
    );
    assert_eq!(cache.get().unwrap().value.as_str(), "12345");
}

#[test]
fn a_failed_rename_keeps_the_previous_generation_and_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _) = open::<u32>(dir.path());
    cache.put(1, t(0)).unwrap();
    // Block generation 2's name with a directory: rename(file, dir) fails.
    let blocker = dir.path().join("pred.00000000000000000002.spc");
    fs::create_dir(&blocker).unwrap();
    let err = cache.put(2, t(1)).unwrap_err();
    match &err {
        CacheError::Io { op, path, .. } => {
            assert_eq!(*op, CacheIoOp::Rename);
            assert_eq!(path, &blocker);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!err.is_storage_full());
    assert_eq!(*cache.get().unwrap().value, 1);
    assert!(!files_in(dir.path()).iter().any(|f| f.contains(".tmp-")));
    // The next write takes the next number and succeeds.
    assert_eq!(cache.put(3, t(2)).unwrap().seq, 3);
    drop(cache);
    let (cache, report) = open::<u32>(dir.path());
    assert_eq!(*cache.get().unwrap().value, 3);
    assert!(report.is_clean());
}

#[test]
fn a_vanished_directory_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("c");
    let (cache, _) = Cache::<u32>::open(&sub, "p", CacheConfig::default()).unwrap();
    cache.put(1, t(0)).unwrap();
    fs::remove_dir_all(&sub).unwrap();
    let err = cache.put(2, t(1)).unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::Io {
                op: CacheIoOp::CreateTemp,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(*cache.get().unwrap().value, 1);
    assert!(cache.generations().is_err());
}

#[test]
fn concurrent_puts_from_threads_are_serialised() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _) = open::<(u32, u32)>(dir.path());
    let threads = 8u32;
    let per_thread = 10u32;
    let handles: Vec<_> = (0..threads)
        .map(|th| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|i| cache.put((th, i), t(0)).unwrap().seq)
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seqs.sort_unstable();
    let n = u64::from(threads * per_thread);
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "each put got its own number"
    );
    let on_disk: Vec<u64> = cache.generations().unwrap().iter().map(|g| g.seq).collect();
    assert_eq!(on_disk, vec![n, n - 1, n - 2]);
    assert_eq!(
        cache.get().unwrap().generation,
        n,
        "memory holds the newest write"
    );
    let in_memory = *cache.get().unwrap().value;
    drop(cache);
    let (cache, report) = open::<(u32, u32)>(dir.path());
    assert!(report.is_clean());
    assert_eq!(*cache.get().unwrap().value, in_memory);
}

#[test]
fn cache_is_clone_send_sync() {
    fn check<X: Clone + Send + Sync + 'static>() {}
    check::<Cache<Forecast>>();
    check::<Cached<Forecast>>();
    check::<LoadReport>();
    fn error<E: std::error::Error + Send + Sync + 'static>() {}
    error::<CacheError>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_async_writes_off_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _) = open::<Forecast>(dir.path());
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.put_async(forecast(i), t(0)).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(cache.get().unwrap().generation, 4);
}

#[test]
fn put_async_outside_a_runtime_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _) = open::<u8>(dir.path());
    // A minimal executor that is not tokio.
    let fut = std::pin::pin!(cache.put_async(9, t(0)));
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match fut.poll(&mut cx) {
        std::task::Poll::Ready(r) => assert_eq!(r.unwrap().seq, 1),
        std::task::Poll::Pending => panic!("the fallback completes at once"),
    }
    assert_eq!(*cache.get().unwrap().value, 9);
}

#[derive(Debug, Clone)]
enum Damage {
    Cut(prop::sample::Index),
    Flip(Vec<(prop::sample::Index, u8)>),
    Overwrite(prop::sample::Index, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Damage::Cut),
        prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..6).prop_map(Damage::Flip),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, b)| Damage::Overwrite(i, b)),
    ]
}

fn apply(bytes: &[u8], damage: &Damage) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match damage {
        Damage::Cut(i) => out.truncate(i.index(bytes.len())),
        Damage::Flip(flips) => {
            for (i, mask) in flips {
                out[i.index(bytes.len())] ^= mask;
            }
        }
        Damage::Overwrite(i, with) => {
            let at = i.index(bytes.len());
            for (k, b) in with.iter().enumerate() {
                if let Some(slot) = out.get_mut(at + k) {
                    *slot = *b;
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever is written is read back, in memory and after a reopen.
    #[test]
    fn random_payloads_round_trip(values in prop::collection::vec(
        (any::<String>(), prop::collection::vec(any::<i64>(), 0..20)), 1..5)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (cache, _) = open::<(String, Vec<i64>)>(dir.path());
        for (i, v) in values.iter().enumerate() {
            cache.put(v.clone(), t(i as i64)).unwrap();
            prop_assert_eq!(&*cache.get().unwrap().value, v);
        }
        drop(cache);
        let (cache, report) = open::<(String, Vec<i64>)>(dir.path());
        prop_assert!(report.is_clean());
        prop_assert_eq!(&*cache.get().unwrap().value, values.last().unwrap());
    }

    /// Random damage to the newest file never yields a value that was not
    /// written: a damaged file is quarantined and the previous one served.
    #[test]
    fn damaged_newest_file_never_yields_unwritten_data(
        values in prop::collection::vec(any::<Vec<u16>>(), 1..4),
        damage in damage(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (cache, _) = open::<Vec<u16>>(dir.path());
        for (i, v) in values.iter().enumerate() {
            cache.put(v.clone(), t(i as i64)).unwrap();
        }
        let newest = cache.generations().unwrap()[0].path.clone();
        drop(cache);
        let original = fs::read(&newest).unwrap();
        let damaged = apply(&original, &damage);
        fs::write(&newest, &damaged).unwrap();

        let (cache, report) = open::<Vec<u16>>(dir.path());
        let got = cache.get().map(|c| (*c.value).clone());
        if damaged == original {
            prop_assert_eq!(got.as_ref(), values.last());
            prop_assert!(report.is_clean());
        } else {
            prop_assert_eq!(report.quarantined.len(), 1);
            prop_assert_eq!(got.as_ref(), values.iter().rev().nth(1));
        }
        if let Some(v) = got {
            prop_assert!(values.contains(&v));
        }
    }
}
