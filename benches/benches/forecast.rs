//! Fit and forecast one year of hourly demand (8760 points, periods 24 and
//! 168) with each model, one thread. Target (issue 4): at most 50 ms.

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use spe_core::{
    AutoEts, AutoModel, DynFit, Generator, History, Mstl, SeasonalNaive, Site, TimeAxis,
};
use std::hint::black_box;

fn one_year_of_demand() -> Vec<f64> {
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    let axis = TimeAxis::new(start, 8760).expect("valid axis");
    let frames = Generator::with_seed(1).generate(&Site::paris(), axis, start);
    frames
        .energy
        .demand_mw()
        .iter()
        .map(|v| v.expect("synthetic demand has no gap"))
        .collect()
}

fn fit_predict(c: &mut Criterion) {
    let y = one_year_of_demand();
    let periods = [24, 168];
    let models: Vec<(&str, Box<dyn DynFit>)> = vec![
        ("seasonal_naive", Box::new(SeasonalNaive::default())),
        ("mstl", Box::new(Mstl::default())),
        ("auto_ets", Box::new(AutoEts::default())),
        ("auto", Box::new(AutoModel::default())),
    ];
    let mut group = c.benchmark_group("fit_predict_year_hourly");
    group.sample_size(20);
    for (name, model) in &models {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let fitted = model
                    .fit_dyn(&History::new(black_box(&y), &periods))
                    .expect("fits");
                fitted.predict(48, &[80.0, 95.0], None).expect("forecasts")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fit_predict);
criterion_main!(benches);
