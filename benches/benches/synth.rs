//! One site-year (8760 hours, every weather and energy column) from the
//! synthetic generator. Target: at least 2 million rows per second on one core.

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spe_core::{Generator, Site, TimeAxis};
use std::hint::black_box;

fn site_year(c: &mut Criterion) {
    let site = Site::paris();
    let generator = Generator::with_seed(7);
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    let axis = TimeAxis::new(start, 8760).expect("valid axis");

    let mut group = c.benchmark_group("synthetic");
    group.throughput(Throughput::Elements(8760));
    group.bench_function("site_year_weather_and_energy", |b| {
        b.iter(|| generator.generate(black_box(&site), black_box(axis), start))
    });
    group.bench_function("site_year_weather_only", |b| {
        b.iter(|| generator.weather(black_box(&site), black_box(axis), start))
    });
    let weather = generator.weather(&site, axis, start);
    let twin = generator.twin(&site);
    group.bench_function("site_year_twin_on_weather", |b| {
        b.iter(|| twin.energy(black_box(&weather)))
    });
    group.finish();
}

criterion_group!(benches, site_year);

fn parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("parts");
    group.throughput(Throughput::Elements(8760));
    group.bench_function("sun_position_year", |b| {
        b.iter(|| {
            let mut acc = 0.0;
            for h in 0..8760 {
                acc += spe_core::sun_position(
                    Utc.timestamp_opt(1_767_225_600 + h * 3600, 0)
                        .single()
                        .expect("t"),
                    48.85,
                    2.35,
                )
                .cos_zenith;
            }
            acc
        })
    });
    let site = Site::paris();
    group.bench_function("local_time_year", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for h in 0..8760 {
                use chrono::Timelike;
                acc += site
                    .local(
                        Utc.timestamp_opt(1_767_225_600 + h * 3600, 0)
                            .single()
                            .expect("t"),
                    )
                    .hour();
            }
            acc
        })
    });
    group.finish();
}
criterion_group!(parts_group, parts);
criterion_main!(benches, parts_group);
