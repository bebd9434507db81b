//! Fit and forecast one year of hourly demand (8760 points, periods 24 and
//! 168) with each model, one thread. Target (issue 4): at most 50 ms for
//! `auto`. `auto_with_weather` gives `auto` the generator's temperature and
//! the calendar as regressors, so the weather regression is a candidate too.

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use spe_core::{
    AutoEts, AutoModel, DynFit, Exog, Fit, Generator, History, Mstl, Predict, SeasonalNaive, Site,
    TimeAxis, calendar_exog,
};
use std::hint::black_box;

/// One year of hourly demand, and its temperature and calendar regressors
/// (the year's 8760 rows, then the 48 of the forecast horizon).
fn one_year_of_demand() -> (Vec<f64>, Exog, Exog) {
    let site = Site::paris();
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    let axis = TimeAxis::new(start, 8760 + 48).expect("valid axis");
    let frames = Generator::with_seed(1).generate(&site, axis, start);
    let column = |values: Vec<Option<f64>>| -> Vec<f64> {
        values
            .into_iter()
            .map(|v| v.expect("synthetic values have no gap"))
            .collect()
    };
    let demand = column(frames.energy.demand_mw().to_vec());
    let temperature = column(frames.weather.temperature_2m().to_vec());
    let past = TimeAxis::new(start, 8760).expect("valid axis");
    let future = TimeAxis::new(past.end(), 48).expect("valid axis");
    let exog = calendar_exog(&site, past, &temperature[..8760]).expect("regressors");
    let future_exog = calendar_exog(&site, future, &temperature[8760..]).expect("regressors");
    (demand[..8760].to_vec(), exog, future_exog)
}

fn fit_predict(c: &mut Criterion) {
    let (y, exog, future) = one_year_of_demand();
    let periods = [24, 168];
    let models: Vec<(&str, Box<dyn DynFit>)> = vec![
        ("seasonal_naive", Box::new(SeasonalNaive::default())),
        ("mstl", Box::new(Mstl::default())),
        ("mstl_short", Box::new(Mstl::short())),
        ("mstl_loess", Box::new(Mstl::loess())),
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
    group.bench_function("auto_with_weather", |b| {
        let model = AutoModel::default();
        b.iter(|| {
            let history = History {
                y: black_box(&y),
                periods: &periods,
                exog: Some(&exog),
            };
            let fitted = model.fit(&history).expect("fits");
            fitted
                .predict(48, &[80.0, 95.0], Some(&future))
                .expect("forecasts")
        })
    });
    group.finish();
}

criterion_group!(benches, fit_predict);
criterion_main!(benches);
