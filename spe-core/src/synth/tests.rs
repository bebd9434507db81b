//! Tests of the generator as a whole: plausibility, determinism, properties.

use chrono::{Datelike, Duration, TimeZone, Timelike, Utc};
use proptest::prelude::*;

use super::*;
use crate::calendar::Country;

fn year(seed: u64, site: &Site, y: i32) -> SyntheticFrames {
    let start = Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).unwrap();
    Generator::with_seed(seed).generate(site, TimeAxis::new(start, 8760).unwrap(), start)
}

fn values(col: &[Option<f64>]) -> Vec<f64> {
    col.iter()
        .map(|v| v.expect("synthetic data has no gap"))
        .collect()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[test]
fn paris_climate_is_plausible() {
    let site = Site::paris();
    let f = year(1, &site, 2026);
    let t = values(f.weather.temperature_2m());
    let times: Vec<_> = f.weather.axis().times().collect();
    let month_mean = |m: u32| {
        let xs: Vec<f64> = times
            .iter()
            .zip(&t)
            .filter(|(d, _)| d.month() == m)
            .map(|(_, v)| *v)
            .collect();
        mean(&xs)
    };
    let (jan, jul) = (month_mean(1), month_mean(7));
    assert!((1.0..=9.0).contains(&jan), "January mean {jan}");
    assert!((16.0..=25.0).contains(&jul), "July mean {jul}");
    assert!(
        (10.0..=15.5).contains(&mean(&t)),
        "annual mean {}",
        mean(&t)
    );

    // Diurnal cycle: in July, afternoon (15-16 h local = 13-14 UTC) warmer than dawn (5 h local = 3 UTC).
    let at_hour = |h: u32| {
        let xs: Vec<f64> = times
            .iter()
            .zip(&t)
            .filter(|(d, _)| d.month() == 7 && d.hour() == h)
            .map(|(_, v)| *v)
            .collect();
        mean(&xs)
    };
    assert!(
        at_hour(13) > at_hour(3) + 5.0,
        "afternoon {} dawn {}",
        at_hour(13),
        at_hour(3)
    );
    let hottest = (0..24)
        .max_by(|a, b| at_hour(*a).total_cmp(&at_hour(*b)))
        .unwrap();
    assert!((12..=15).contains(&hottest), "hottest UTC hour {hottest}");
    let coldest = (0..24)
        .min_by(|a, b| at_hour(*a).total_cmp(&at_hour(*b)))
        .unwrap();
    assert!(
        (2..=5).contains(&coldest),
        "coldest UTC hour {coldest} (sunrise ≈ 4 UTC)"
    );

    // Wind: mean near the configured 3.8 m/s, Weibull-like spread.
    let w = values(f.weather.wind_speed_10m());
    assert!((3.0..=4.6).contains(&mean(&w)), "wind mean {}", mean(&w));
    let calm = w.iter().filter(|v| **v < 1.0).count() as f64 / w.len() as f64;
    assert!(calm > 0.01 && calm < 0.15, "calm share {calm}");

    // Clouds: both clear and overcast hours are common.
    let c = values(f.weather.cloud_cover());
    let clear = c.iter().filter(|v| **v < 10.0).count() as f64 / c.len() as f64;
    let overcast = c.iter().filter(|v| **v > 90.0).count() as f64 / c.len() as f64;
    assert!(
        clear > 0.1 && overcast > 0.15,
        "clear {clear} overcast {overcast}"
    );

    // Annual irradiation in Paris: about 1100-1300 kWh/m².
    let kwh: f64 = values(f.weather.shortwave_radiation()).iter().sum::<f64>() / 1000.0;
    assert!((950.0..=1400.0).contains(&kwh), "annual GHI {kwh} kWh/m²");
}

#[test]
fn demand_follows_temperature_and_calendar() {
    let site = Site::paris();
    let f = year(2, &site, 2026);
    let d = values(f.energy.demand_mw());
    let times: Vec<_> = f.energy.axis().times().collect();
    let month_mean = |m: u32| {
        let xs: Vec<f64> = times
            .iter()
            .zip(&d)
            .filter(|(t, _)| t.month() == m)
            .map(|(_, v)| *v)
            .collect();
        mean(&xs)
    };
    assert!(
        month_mean(1) > 1.25 * month_mean(7),
        "winter {} summer {}",
        month_mean(1),
        month_mean(7)
    );
    // Sundays lower than working days at midday.
    let midday = |pred: &dyn Fn(chrono::NaiveDate) -> bool| {
        let xs: Vec<f64> = times
            .iter()
            .zip(&d)
            .filter(|(t, _)| {
                let l = site.local(**t);
                l.hour() == 11 && pred(l.date()) && (4..=9).contains(&l.month())
            })
            .map(|(_, v)| *v)
            .collect();
        mean(&xs)
    };
    let working = midday(&|d| Country::France.day_type(d) == crate::DayType::Working);
    let sunday = midday(&|d| d.weekday() == chrono::Weekday::Sun);
    assert!(sunday < 0.92 * working, "sunday {sunday} working {working}");
    // Bastille Day is a holiday: demand at 11 h lower than the Tuesday a week before.
    let at = |m, day| {
        let t = site
            .timezone()
            .with_ymd_and_hms(2026, m, day, 11, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        f.energy.demand_mw()[f.energy.axis().index_of(t).unwrap()].unwrap()
    };
    assert!(
        at(7, 14) < 0.95 * at(7, 7),
        "14 July {} vs 7 July {}",
        at(7, 14),
        at(7, 7)
    );
}

#[test]
fn supply_is_physical() {
    let site = Site::paris();
    let f = year(3, &site, 2026);
    let cfg = SynthConfig::default();
    let solar = values(f.energy.supply_of(crate::SupplySource::Solar));
    let ghi = values(f.weather.shortwave_radiation());
    for (s, g) in solar.iter().zip(&ghi) {
        assert!(*s <= cfg.pv.capacity_mwp / cfg.pv.dc_ac_ratio + 1e-9);
        if *g == 0.0 {
            assert_eq!(*s, 0.0);
        }
    }
    // Capacity factors: PV 10-16 % in northern France, wind 15-35 %.
    let pv_cf = mean(&solar) / cfg.pv.capacity_mwp;
    assert!((0.08..=0.17).contains(&pv_cf), "PV capacity factor {pv_cf}");
    let wind = values(f.energy.supply_of(crate::SupplySource::Wind));
    let wind_cf = mean(&wind) / cfg.wind.capacity_mw;
    assert!(
        (0.12..=0.40).contains(&wind_cf),
        "wind capacity factor {wind_cf}"
    );
    for i in 0..f.energy.len() {
        let other = f.energy.supply_of(crate::SupplySource::Other)[i].unwrap();
        let imports = f.energy.supply_of(crate::SupplySource::Imports)[i].unwrap();
        assert!(other <= cfg.grid.other_capacity_mw + 1e-9);
        assert!(imports <= cfg.grid.import_capacity_mw + 1e-9);
    }
}

#[test]
fn twin_on_generated_weather_matches_fused_generation_after_the_first_day() {
    let site = Site::paris();
    let g = Generator::with_seed(9);
    let start = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    let axis = TimeAxis::new(start, 96).unwrap();
    let fused = g.generate(&site, axis, start);
    let twin = g.twin(&site).energy(&fused.weather).unwrap();
    for i in 23..96 {
        let (a, b) = (
            fused.energy.demand_mw()[i].unwrap(),
            twin.demand_mw()[i].unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "hour {i}: {a} vs {b}");
        let (a, b) = (
            fused.energy.columns().solar_mw[i].unwrap(),
            twin.columns().solar_mw[i].unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "hour {i}: {a} vs {b}");
    }
}

#[test]
fn twin_propagates_missing_inputs() {
    let site = Site::paris();
    let g = Generator::default();
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let w = g.weather(&site, TimeAxis::new(start, 24).unwrap(), start);
    let mut cols = w.columns().clone();
    cols.temperature_2m = vec![None; 24];
    cols.wind_speed_10m[5] = None;
    let w = WeatherFrame::new(w.axis(), cols, Provenance::Live, start).unwrap();
    let e = g.twin(&site).energy(&w).unwrap();
    assert!(e.demand_mw().iter().all(Option::is_none));
    assert!(e.columns().wind_mw[5].is_none() && e.columns().wind_mw[6].is_some());
    assert!(e.columns().imports_mw.iter().all(Option::is_none));
    assert_eq!(e.provenance(), Provenance::Live);
}

#[test]
fn southern_sites_have_inverted_seasons() {
    let sydney = Site::new("Sydney", -33.87, 151.21, "Australia/Sydney", Country::None).unwrap();
    let f = year(4, &sydney, 2026);
    let t = values(f.weather.temperature_2m());
    let jan = mean(&t[..744]);
    let jul = mean(&t[4344..5088]);
    assert!(jan > jul + 8.0, "Sydney January {jan} July {jul}");
}

#[test]
fn different_seeds_and_sites_differ() {
    let site = Site::paris();
    let a = year(1, &site, 2026);
    let b = year(2, &site, 2026);
    assert_ne!(a.weather.temperature_2m(), b.weather.temperature_2m());
    let lyon = Site::new("Lyon", 45.76, 4.84, "Europe/Paris", Country::France).unwrap();
    let c = year(1, &lyon, 2026);
    assert_ne!(a.weather.temperature_2m(), c.weather.temperature_2m());
}

#[tokio::test]
async fn data_source_serves_the_window() {
    let g = Generator::default();
    let site = Site::paris();
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap();
    let w = Window::new(now, 2, 7).unwrap();
    let f = g.fetch(&site, &w).await.unwrap();
    assert_eq!(f.axis(), w.axis(&site).unwrap());
    assert_eq!(f.produced_at(), now);
    assert_eq!(f.provenance(), Provenance::Synthetic);
}

fn any_site() -> impl Strategy<Value = Site> {
    (
        -66.0..66.0f64,
        -180.0..180.0f64,
        prop::sample::select(vec![
            "UTC",
            "Europe/Paris",
            "America/Vancouver",
            "Asia/Kolkata",
            "Australia/Sydney",
        ]),
    )
        .prop_map(|(lat, lon, tz)| Site::new("prop", lat, lon, tz, Country::France).unwrap())
}

fn any_start() -> impl Strategy<Value = chrono::DateTime<Utc>> {
    // 1990..2150, on the hour.
    (631_152_000i64 / 3600..5_680_281_600i64 / 3600)
        .prop_map(|h| Utc.timestamp_opt(h * 3600, 0).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn deterministic_across_overlapping_windows(seed in any::<u64>(), site in any_site(), start in any_start(), offset in 1usize..90) {
        let g = Generator::with_seed(seed);
        let a = g.generate(&site, TimeAxis::new(start, 100).unwrap(), start);
        let b = g.generate(&site, TimeAxis::new(start + Duration::hours(offset as i64), 100).unwrap(), start);
        let n = 100 - offset;
        prop_assert_eq!(&a.weather.temperature_2m()[offset..], &b.weather.temperature_2m()[..n]);
        prop_assert_eq!(&a.weather.wind_speed_10m()[offset..], &b.weather.wind_speed_10m()[..n]);
        prop_assert_eq!(&a.weather.shortwave_radiation()[offset..], &b.weather.shortwave_radiation()[..n]);
        prop_assert_eq!(&a.weather.cloud_cover()[offset..], &b.weather.cloud_cover()[..n]);
        prop_assert_eq!(&a.energy.columns().demand_mw[offset..], &b.energy.columns().demand_mw[..n]);
        prop_assert_eq!(&a.energy.columns().imports_mw[offset..], &b.energy.columns().imports_mw[..n]);
        // The weather-only path gives the same weather.
        let w = g.weather(&site, TimeAxis::new(start, 100).unwrap(), start);
        prop_assert_eq!(w.columns(), a.weather.columns());
    }

    #[test]
    fn irradiance_is_zero_at_night_and_below_clear_sky(seed in any::<u64>(), site in any_site(), start in any_start()) {
        let g = Generator::with_seed(seed);
        let f = g.weather(&site, TimeAxis::new(start, 72).unwrap(), start);
        for (i, t) in f.axis().times().enumerate() {
            let ghi = f.shortwave_radiation()[i].unwrap();
            let clear = g.clear_sky_at(&site, t);
            prop_assert!(ghi >= 0.0 && ghi <= clear + 1e-9, "{t}: {ghi} > clear sky {clear}");
            let sun = sun_position(t - Duration::minutes(30), site.latitude(), site.longitude());
            if sun.cos_zenith <= 0.0 {
                prop_assert_eq!(ghi, 0.0);
            }
        }
    }

    #[test]
    fn values_stay_in_plausible_bands(seed in any::<u64>(), site in any_site(), start in any_start()) {
        let f = Generator::with_seed(seed).generate(&site, TimeAxis::new(start, 168).unwrap(), start);
        for i in 0..f.weather.len() {
            let t = f.weather.temperature_2m()[i].unwrap();
            prop_assert!((-45.0..=50.0).contains(&t), "temperature {t}");
            let w = f.weather.wind_speed_10m()[i].unwrap();
            prop_assert!((0.0..=40.0).contains(&w), "wind {w}");
            let c = f.weather.cloud_cover()[i].unwrap();
            prop_assert!((0.0..=100.0).contains(&c));
            let d = f.energy.demand_mw()[i].unwrap();
            prop_assert!(d > 0.0 && d.is_finite(), "demand {d}");
            for s in crate::SupplySource::ALL {
                let v = f.energy.supply_of(s)[i].unwrap();
                prop_assert!(v >= 0.0 && v.is_finite());
            }
        }
    }
}

#[test]
fn the_first_hours_chrono_knows_can_be_generated() {
    // No hour before the axis exists for the 24 h mean: none is asked for.
    let start = chrono::DateTime::<Utc>::MIN_UTC;
    let axis = crate::series::TimeAxis::new(start, 48).unwrap();
    let frames = Generator::default().generate(&Site::paris(), axis, start);
    assert_eq!(frames.weather.len(), 48);
    assert_eq!(frames.energy.len(), 48);
}

/// The daily range of temperature (noise off) on `day` at `latitude`.
fn daily_range(latitude: f64, day: (i32, u32, u32)) -> f64 {
    let mut config = SynthConfig::default();
    config.climate.temp_noise_std_c = 0.0;
    let site = Site::new("probe", latitude, 15.0, "UTC", Country::None).unwrap();
    let start = Utc.with_ymd_and_hms(day.0, day.1, day.2, 0, 0, 0).unwrap();
    let f =
        Generator::new(config)
            .unwrap()
            .generate(&site, TimeAxis::new(start, 24).unwrap(), start);
    let t = values(f.weather.temperature_2m());
    let (lo, hi) = t
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    hi - lo
}

#[test]
fn polar_night_has_no_afternoon_warming() {
    // No sun on 21 December at 80° N and above: no daily cycle (what is
    // left is the annual cycle's drift over one day).
    for latitude in [80.0, 85.0, 90.0] {
        let range = daily_range(latitude, (2026, 12, 21));
        assert!(range < 0.1, "{latitude}° N: {range:.2} °C");
    }
    // A short day, a part of it; under the midnight sun the whole of it.
    let short = daily_range(66.0, (2026, 12, 21));
    let full = daily_range(80.0, (2026, 6, 21));
    assert!(short > 0.2 && short < full, "{short:.2} < {full:.2}");
    // Below 60°, as before: Paris in December keeps its whole cycle.
    let paris = daily_range(48.85, (2026, 12, 21));
    assert!(paris > 2.0, "{paris:.2}");
    // Summer in the south: polar night in the north, midnight sun there.
    assert!(daily_range(-85.0, (2026, 12, 21)) > 2.0);
    assert!(daily_range(-85.0, (2026, 6, 21)) < 0.1);
}
