//! Every model, and `auto`, on arbitrary finite inputs: no panic, and
//! either a clear error or a forecast of the asked length with finite
//! means and intervals around them.

use std::sync::Arc;

use proptest::prelude::*;

use super::{
    AutoEts, AutoModel, DynFit, Ets, Exog, ForecastError, History, Mstl, Naive, SeasonalNaive,
    Trend, WeatherRegression,
};

/// A series: a shape (noise, constant, trend, seasonal pattern, noise with
/// spikes at ±[`MAX_OBSERVATION`](super::MAX_OBSERVATION), the largest
/// taken, or at `f64::MAX`, refused) at a magnitude from tiny to huge, possibly
/// shifted far from zero.
fn series() -> impl Strategy<Value = Vec<f64>> {
    let magnitude = prop_oneof![
        Just(1e-300),
        Just(1e-9),
        Just(1.0),
        Just(1e6),
        Just(1e150),
        Just(1e300),
    ];
    let offset = prop_oneof![Just(0.0), Just(1.0), Just(-1e3)];
    (
        prop::collection::vec(-1.0..1.0f64, 0..260),
        0u8..6,
        magnitude,
        offset,
        2usize..30,
    )
        .prop_map(|(noise, shape, scale, offset, period)| {
            noise
                .iter()
                .enumerate()
                .map(|(t, e)| {
                    let v = match shape {
                        0 | 4 | 5 => *e,
                        1 => 0.5,
                        2 => t as f64 / 100.0 + 0.1 * e,
                        _ => ((t % period) as f64 / period as f64) + 0.05 * e,
                    };
                    match (shape, t % period) {
                        (4, 1) => super::MAX_OBSERVATION,
                        (4, 2) if t % 2 == 0 => -super::MAX_OBSERVATION,
                        (5, 1) => f64::MAX,
                        _ => (v + offset) * scale,
                    }
                })
                .collect()
        })
}

fn periods() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        Just(vec![]),
        (2usize..40).prop_map(|p| vec![p]),
        (2usize..30, 2usize..6).prop_map(|(p, k)| vec![p, p * k]),
        prop::collection::vec(2usize..100, 1..4).prop_map(|mut v| {
            v.sort_unstable();
            v
        }),
    ]
}

/// Calendar and temperature regressors for `n` rows.
fn exog(n: usize, temperature_shift: f64) -> Exog {
    Exog::new(vec![
        (
            WeatherRegression::TEMPERATURE.into(),
            (0..n)
                .map(|t| {
                    (10.0 + temperature_shift + 8.0 * (t as f64 / 17.0).sin()).clamp(-90.0, 90.0)
                })
                .collect(),
        ),
        (
            WeatherRegression::HOUR.into(),
            (0..n).map(|t| (t % 24) as f64).collect(),
        ),
        (
            WeatherRegression::DAY_TYPE.into(),
            (0..n).map(|t| ((t / 24) % 3) as f64).collect(),
        ),
    ])
    .unwrap_or_default()
}

fn models() -> Vec<Arc<dyn DynFit>> {
    vec![
        Arc::new(Naive),
        Arc::new(SeasonalNaive::default()),
        Arc::new(Ets::new(Trend::None, None)),
        Arc::new(Ets::new(Trend::Damped, None)),
        Arc::new(Ets::new(Trend::Additive, Some(4))),
        Arc::new(AutoEts::default()),
        Arc::new(Mstl::default()),
        Arc::new(Mstl::short()),
        Arc::new(Mstl::loess()),
        Arc::new(WeatherRegression::default()),
        Arc::new(AutoModel::default()),
    ]
}

/// The forecast of `model`, checked: a clear error or a valid forecast.
fn check(
    model: &dyn DynFit,
    history: &History<'_>,
    horizon: usize,
    future: Option<&Exog>,
) -> Result<(), TestCaseError> {
    let levels = [80.0, 95.0];
    let fitted = match model.fit_dyn(history) {
        Ok(f) => f,
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            // The input is finite and complete: an error must not blame it
            // for values or gaps it does not have.
            prop_assert!(
                !matches!(
                    e,
                    ForecastError::NonFinite { .. }
                        | ForecastError::GapTooLong { .. }
                        | ForecastError::MissingTail(_)
                ),
                "{}: {}",
                model.name(),
                e
            );
            return Ok(());
        }
    };
    prop_assert!(
        fitted.residuals().iter().all(|r| r.is_finite()),
        "{}: residuals not finite",
        model.name()
    );
    // What it learned: finite figures, components as long as the history.
    let summary = fitted.summary();
    prop_assert!(
        !summary.model.is_empty(),
        "{}: unnamed summary",
        model.name()
    );
    for (name, value) in &summary.params {
        prop_assert!(value.is_finite(), "{}: {} = {}", model.name(), name, value);
    }
    for (name, values) in &summary.components {
        prop_assert_eq!(values.len(), history.y.len(), "{}", name);
        prop_assert!(
            values.iter().all(|v| v.is_finite()),
            "{}: {} not finite",
            model.name(),
            name
        );
    }
    match fitted.predict(horizon, &levels, future) {
        Ok(f) => {
            prop_assert_eq!(f.horizon(), horizon);
            prop_assert!(f.mean().iter().all(|m| m.is_finite()));
            for level in levels {
                let (lo, hi) = (f.lower(level), f.upper(level));
                prop_assert!(lo.is_some() && hi.is_some(), "no {} % interval", level);
                if let (Some(lo), Some(hi)) = (lo, hi) {
                    for ((l, m), u) in lo.iter().zip(f.mean()).zip(hi) {
                        let slack = 1e-9 * m.abs().max(1.0);
                        prop_assert!(l.is_finite() && u.is_finite());
                        prop_assert!(*l <= m + slack && *m <= u + slack, "{} {} {}", l, m, u);
                    }
                }
            }
        }
        Err(e) => {
            // Only errors a caller can act on: bounds that overflow f64 at
            // extreme magnitudes, or a model that needs regressors.
            prop_assert!(
                matches!(
                    e,
                    ForecastError::InvalidArgument(_)
                        | ForecastError::MissingRegressors(_)
                        | ForecastError::FitFailed { .. }
                        | ForecastError::PredictFailed { .. }
                ),
                "{}: {}",
                model.name(),
                e
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_model_gives_a_clear_error_or_a_valid_forecast(
        y in series(),
        periods in periods(),
        horizon in 1usize..120,
        with_exog in any::<bool>(),
        temperature_shift in -20.0..20.0f64,
    ) {
        let all = exog(y.len() + horizon, temperature_shift);
        let (past, future) = match (all.rows(0..y.len()), all.rows(y.len()..y.len() + horizon)) {
            (Ok(p), Ok(f)) => (p, f),
            _ => return Err(TestCaseError::fail("regressor rows")),
        };
        let history = History {
            y: &y,
            periods: &periods,
            exog: with_exog.then_some(&past),
        };
        for model in models() {
            check(model.as_ref(), &history, horizon, with_exog.then_some(&future))?;
        }
    }
}

#[test]
fn horizon_bounds_are_errors_for_every_model() {
    let y: Vec<f64> = (0..24 * 21).map(|t| ((t % 24) as f64).sin()).collect();
    let past = exog(y.len(), 0.0);
    let history = History {
        y: &y,
        periods: &[24, 168],
        exog: Some(&past),
    };
    for model in models() {
        let fitted = model.fit_dyn(&history).unwrap();
        assert!(
            matches!(
                fitted.predict(0, &[80.0], None),
                Err(ForecastError::InvalidArgument(_) | ForecastError::MissingRegressors(_))
            ),
            "{}",
            model.name()
        );
        assert!(
            fitted.predict(usize::MAX, &[80.0], None).is_err(),
            "{}",
            model.name()
        );
        assert!(
            fitted.predict(3, &[100.0], None).is_err(),
            "{}",
            model.name()
        );
    }
}
