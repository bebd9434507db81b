//! The history store on a real file (fsync included): what the server does
//! on each refresh (record a snapshot's 48 past hours of 9 series, then the
//! chain's 48-step predictions), reading a week of one series back, and a
//! backup of a store holding a year of observations and 90 days of hourly
//! predictions (measured first, before the other benchmarks add rows); then
//! the day-ahead forecasts of a week's hours once the last week has been
//! predicted every 5 minutes, as the server does (576 rows per hour).

use std::hint::black_box;

use chrono::{DateTime, Duration, DurationRound as _, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spe_core::{
    Forecast, HistoryStore, Observation, PredictionInterval, Predictions, Provenance, StoreConfig,
    Tier,
};

const SERIES: [&str; 9] = [
    "temperature_2m",
    "shortwave_radiation",
    "cloud_cover",
    "wind_speed_10m",
    "demand_mw",
    "solar_mw",
    "wind_mw",
    "other_mw",
    "imports_mw",
];

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

fn hours(start: DateTime<Utc>, n: i64, provenance: Provenance) -> Vec<Observation> {
    (0..n)
        .flat_map(|h| {
            SERIES.map(|s| Observation::new(s, start + Duration::hours(h), h as f64, provenance))
        })
        .collect()
}

fn predictions(made_at: DateTime<Utc>) -> Predictions {
    let mean: Vec<f64> = (0..48).map(|i| 1000.0 + f64::from(i)).collect();
    let band = |w: f64| PredictionInterval {
        level: w,
        lower: mean.iter().map(|m| m - w).collect(),
        upper: mean.iter().map(|m| m + w).collect(),
    };
    Predictions {
        start: made_at,
        step_s: 3600,
        forecast: Forecast::new("auto(mstl)", mean.clone(), vec![band(80.0), band(95.0)])
            .expect("valid forecast"),
        made_at,
        tier: Tier::Fallback,
        intervals_from: None,
        inputs: Provenance::Live,
    }
}

fn store(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("spe-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (store, _) = HistoryStore::open(&dir, StoreConfig::default(), t0()).expect("store");
    // A year of observations, and 90 days of hourly predictions.
    store
        .record_observations(&hours(t0(), 8760, Provenance::Live))
        .expect("year");
    for h in (8760 - 90 * 24)..8760 {
        store
            .record_predictions(&predictions(t0() + Duration::hours(h)))
            .expect("predictions");
    }
    let snapshot = hours(t0() + Duration::hours(8760 - 48), 48, Provenance::Live);

    let mut group = c.benchmark_group("history_store");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    let mut at = t0() + Duration::days(400);
    let mut size = 0;
    group.bench_function("backup_year", |b| {
        b.iter(|| {
            at += Duration::minutes(1);
            // Each copy deleted at once, so they do not pile up.
            if let Ok(Some(made)) = store.backup_now(at) {
                size = made.bytes;
                let _ = std::fs::remove_file(&made.path);
            }
        })
    });
    group.sample_size(100);
    group.throughput(Throughput::Elements(snapshot.len() as u64));
    group.bench_function("record_snapshot_48h_9_series", |b| {
        b.iter(|| store.record_observations(black_box(&snapshot)))
    });
    group.throughput(Throughput::Elements(48));
    let mut made = t0() + Duration::hours(8760);
    group.bench_function("record_predictions_48_steps", |b| {
        b.iter(|| {
            made += Duration::hours(1);
            store.record_predictions(black_box(&predictions(made)))
        })
    });
    group.throughput(Throughput::Elements(168));
    let from = t0() + Duration::hours(8760 - 168);
    group.bench_function("read_week_one_series", |b| {
        b.iter(|| store.observations("demand_mw", black_box(from), from + Duration::hours(168)))
    });
    let mut made = t0() + Duration::hours(8760 - 14 * 24);
    while made < t0() + Duration::hours(8760) {
        // As the server: from the current hour, whenever made.
        let mut p = predictions(made);
        p.start = made.duration_trunc(Duration::hours(1)).expect("hour");
        store.record_predictions(&p).expect("predictions");
        made += Duration::minutes(5);
    }
    group.bench_function("day_ahead_week", |b| {
        b.iter(|| {
            let found = store
                .predictions_for(
                    black_box(from),
                    from + Duration::hours(168),
                    spe_core::DAY_AHEAD,
                )
                .expect("read");
            assert_eq!(found.len(), 168);
            found
        })
    });
    group.finish();
    eprintln!("history store: one backup of the year is {size} bytes");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, store);
criterion_main!(benches);
