//! Forecast accuracy metrics.
//!
//! Every metric takes the actual values and the forecast (or interval bounds)
//! as slices of equal length and returns `Result<Option<f64>, ForecastError>`:
//!
//! - `Err` for a caller's mistake: slices of different lengths
//!   ([`ForecastError::InvalidArgument`]) or a NaN/infinite value
//!   ([`ForecastError::NonFinite`]);
//! - `Ok(None)` when the metric is undefined: no values, a zero denominator
//!   (all actuals zero for MAPE, a zero in-sample scale for MASE), or a
//!   result too large for `f64`;
//! - `Ok(Some(x))` with `x` finite otherwise. No metric ever returns NaN.
//!
//! Errors are `forecast − actual` for [`bias`] (positive = over-forecast);
//! percentages are in percent (MAPE 12.5 means 12.5 %), coverage is a
//! fraction in [0, 1].

use super::ForecastError;
use super::error::check_finite;

/// Mean absolute error, `mean |forecast − actual|`.
///
/// ```
/// use spe_core::mae;
///
/// assert_eq!(mae(&[1.0, 2.0], &[2.0, 4.0]).unwrap(), Some(1.5));
/// assert_eq!(mae(&[], &[]).unwrap(), None);
/// assert!(mae(&[1.0], &[]).is_err());
/// ```
pub fn mae(actual: &[f64], forecast: &[f64]) -> Result<Option<f64>, ForecastError> {
    check_pair(actual, forecast)?;
    Ok(running_mean(
        actual.iter().zip(forecast).map(|(a, f)| (f - a).abs()),
    ))
}

/// Root mean squared error, `√mean (forecast − actual)²` (computed with
/// scaling, so it does not overflow before the result does).
///
/// ```
/// use spe_core::rmse;
///
/// assert_eq!(rmse(&[0.0, 0.0], &[3.0, -3.0]).unwrap(), Some(3.0));
/// assert_eq!(rmse(&[], &[]).unwrap(), None);
/// ```
pub fn rmse(actual: &[f64], forecast: &[f64]) -> Result<Option<f64>, ForecastError> {
    check_pair(actual, forecast)?;
    let errors: Vec<f64> = actual.iter().zip(forecast).map(|(a, f)| f - a).collect();
    Ok(root_mean_square(&errors))
}

/// Bias, `mean (forecast − actual)`: positive when the forecast is too high.
///
/// ```
/// use spe_core::bias;
///
/// assert_eq!(bias(&[10.0, 10.0], &[12.0, 11.0]).unwrap(), Some(1.5));
/// ```
pub fn bias(actual: &[f64], forecast: &[f64]) -> Result<Option<f64>, ForecastError> {
    check_pair(actual, forecast)?;
    if actual.is_empty() {
        return Ok(None);
    }
    let errors: Vec<f64> = actual.iter().zip(forecast).map(|(a, f)| f - a).collect();
    if errors.iter().any(|e| !e.is_finite()) {
        return Ok(None);
    }
    let n = errors.len() as f64;
    let sum: f64 = errors.iter().sum();
    Ok(if sum.is_finite() {
        Some(sum / n)
    } else {
        // The sum overflows: divide first.
        finite(errors.iter().map(|e| e / n).sum())
    })
}

/// Mean absolute percentage error in percent, `100 · mean |forecast −
/// actual| / |actual|`, over the steps whose actual is not zero.
///
/// Steps with a zero actual are skipped (their percentage error is
/// undefined); [`mape_skipped`] counts them. `None` when every actual is
/// zero (or there is none).
///
/// ```
/// use spe_core::{mape, mape_skipped};
///
/// let actual = [100.0, 200.0, 0.0];
/// let forecast = [110.0, 180.0, 5.0];
/// assert_eq!(mape(&actual, &forecast).unwrap(), Some(10.0)); // (10 % + 10 %) / 2
/// assert_eq!(mape_skipped(&actual), 1);
/// assert_eq!(mape(&[0.0], &[1.0]).unwrap(), None);
/// ```
pub fn mape(actual: &[f64], forecast: &[f64]) -> Result<Option<f64>, ForecastError> {
    check_pair(actual, forecast)?;
    Ok(running_mean(
        actual
            .iter()
            .zip(forecast)
            .filter(|(a, _)| **a != 0.0)
            .map(|(a, f)| 100.0 * ((f - a) / a).abs()),
    ))
}

/// How many steps [`mape`] skips: the actuals equal to zero.
///
/// ```
/// use spe_core::mape_skipped;
///
/// assert_eq!(mape_skipped(&[0.0, 1.0, -0.0]), 2);
/// ```
pub fn mape_skipped(actual: &[f64]) -> usize {
    actual.iter().filter(|a| **a == 0.0).count()
}

/// Symmetric mean absolute percentage error in percent (0 to 200),
/// `100 · mean 2·|forecast − actual| / (|actual| + |forecast|)`.
///
/// A step where actual and forecast are both zero is a perfect forecast and
/// counts as 0 % (its ratio 0/0 is otherwise undefined).
///
/// ```
/// use spe_core::smape;
///
/// // 2·10/(100+110) and 0/0 → 0.
/// let s = smape(&[100.0, 0.0], &[110.0, 0.0]).unwrap().unwrap();
/// assert!((s - 100.0 * (20.0 / 210.0) / 2.0).abs() < 1e-12);
/// assert_eq!(smape(&[1.0], &[-1.0]).unwrap(), Some(200.0));
/// ```
pub fn smape(actual: &[f64], forecast: &[f64]) -> Result<Option<f64>, ForecastError> {
    check_pair(actual, forecast)?;
    Ok(running_mean(actual.iter().zip(forecast).map(|(a, f)| {
        // Scaled by the larger magnitude so nothing overflows.
        let scale = a.abs().max(f.abs());
        if scale == 0.0 {
            0.0
        } else {
            let (a, f) = (a / scale, f / scale);
            let r = (f - a).abs() / (a.abs() + f.abs());
            200.0 * r.min(1.0)
        }
    })))
}

/// The MASE scale: the in-sample mean absolute error of the seasonal naive
/// forecast of period `period`, `mean_t |y_t − y_{t−m}|` for `t = m..n`.
///
/// `None` when it is zero (a constant, or exactly `m`-periodic, history: no
/// naive error to scale by). Errors: `period` 0, `insample` not longer than
/// `period` ([`ForecastError::TooShort`]), or a non-finite value.
///
/// ```
/// use spe_core::mase_scale;
///
/// assert_eq!(mase_scale(&[1.0, 2.0, 4.0, 7.0], 1).unwrap(), Some(2.0));
/// assert_eq!(mase_scale(&[1.0, 2.0, 1.0, 2.0], 2).unwrap(), None);
/// assert!(mase_scale(&[1.0, 2.0], 2).is_err());
/// assert!(mase_scale(&[1.0, 2.0], usize::MAX).is_err()); // not an overflow
/// ```
pub fn mase_scale(insample: &[f64], period: usize) -> Result<Option<f64>, ForecastError> {
    if period == 0 {
        return Err(ForecastError::invalid("MASE period 0"));
    }
    check_finite(insample)?;
    if insample.len() <= period {
        return Err(ForecastError::TooShort {
            model: format!("the MASE scale of period {period}"),
            needed: period.saturating_add(1),
            got: insample.len(),
        });
    }
    let scale = running_mean(
        insample[period..]
            .iter()
            .zip(insample)
            .map(|(y, lag)| (y - lag).abs()),
    );
    Ok(scale.filter(|s| *s > 0.0))
}

/// Mean absolute scaled error: the forecast's MAE divided by the in-sample
/// MAE of the seasonal naive of period `period` ([`mase_scale`]). Below 1,
/// the forecast beats the in-sample seasonal naive.
///
/// `None` when the scale is zero (constant or exactly periodic history) or
/// there is no value; errors as in [`mase_scale`] and [`mae`].
///
/// ```
/// use spe_core::mase;
///
/// let insample = [1.0, 2.0, 4.0, 7.0]; // naive (m = 1) MAE: (1 + 2 + 3) / 3 = 2
/// assert_eq!(mase(&[10.0], &[11.0], &insample, 1).unwrap(), Some(0.5));
/// assert_eq!(mase(&[10.0], &[11.0], &[5.0, 5.0], 1).unwrap(), None);
/// ```
pub fn mase(
    actual: &[f64],
    forecast: &[f64],
    insample: &[f64],
    period: usize,
) -> Result<Option<f64>, ForecastError> {
    let error = mae(actual, forecast)?;
    let scale = mase_scale(insample, period)?;
    Ok(match (error, scale) {
        (Some(e), Some(s)) => finite(e / s),
        _ => None,
    })
}

/// Interval coverage: the fraction (0 to 1) of actuals inside
/// `[lower, upper]`, bounds included.
///
/// ```
/// use spe_core::coverage;
///
/// let c = coverage(&[1.0, 5.0, 3.0, 2.0], &[0.0, 0.0, 3.0, 2.5], &[2.0, 4.0, 4.0, 3.0]);
/// assert_eq!(c.unwrap(), Some(0.5));
/// assert_eq!(coverage(&[], &[], &[]).unwrap(), None);
/// ```
pub fn coverage(
    actual: &[f64],
    lower: &[f64],
    upper: &[f64],
) -> Result<Option<f64>, ForecastError> {
    check_pair(actual, lower)?;
    check_pair(actual, upper)?;
    if actual.is_empty() {
        return Ok(None);
    }
    let inside = actual
        .iter()
        .zip(lower.iter().zip(upper))
        .filter(|(a, (l, u))| *l <= *a && *a <= *u)
        .count();
    Ok(Some(inside as f64 / actual.len() as f64))
}

/// Equal lengths and finite values.
pub(crate) fn check_pair(actual: &[f64], other: &[f64]) -> Result<(), ForecastError> {
    if actual.len() != other.len() {
        return Err(ForecastError::invalid(format!(
            "{} actual values for {} forecast values",
            actual.len(),
            other.len()
        )));
    }
    check_finite(actual)?;
    check_finite(other)
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The mean of non-negative values: the sum divided by the count, or, if
/// the sum overflows, a running mean (finite whenever the values are);
/// `None` if empty or a value is not finite.
pub(crate) fn running_mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut sum, mut mean, mut n) = (0.0, 0.0, 0.0);
    for v in values {
        n += 1.0;
        sum += v;
        mean += (v - mean) / n;
    }
    if n == 0.0 {
        None
    } else if sum.is_finite() {
        Some(sum / n)
    } else {
        finite(mean)
    }
}

/// `√mean x²`, scaled by the largest |x| so the squares cannot overflow;
/// `None` if empty or a value is not finite.
pub(crate) fn root_mean_square(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if max == 0.0 {
        return Some(0.0);
    }
    let mean_sq = running_mean(values.iter().map(|v| (v / max) * (v / max)))?;
    finite(max * mean_sq.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_computed_examples() {
        let actual = [100.0, 50.0, 0.0, 25.0];
        let forecast = [90.0, 60.0, 10.0, 25.0];
        // errors f − a: −10, 10, 10, 0
        assert_eq!(mae(&actual, &forecast).unwrap(), Some(7.5));
        assert_eq!(bias(&actual, &forecast).unwrap(), Some(2.5));
        let r = rmse(&actual, &forecast).unwrap().unwrap();
        assert!((r - (300.0f64 / 4.0).sqrt()).abs() < 1e-12);
        // MAPE skips the zero actual: (10 % + 20 % + 0 %) / 3.
        let m = mape(&actual, &forecast).unwrap().unwrap();
        assert!((m - 10.0).abs() < 1e-12);
        assert_eq!(mape_skipped(&actual), 1);
        // sMAPE: 20/190, 20/110, 20/10 → 2 (i.e. 200 %), 0.
        let s = smape(&actual, &forecast).unwrap().unwrap();
        let expected = 100.0 * (20.0 / 190.0 + 20.0 / 110.0 + 2.0 + 0.0) / 4.0;
        assert!((s - expected).abs() < 1e-12, "{s} vs {expected}");
        // MASE with a seasonal period 2: in-sample |y_t − y_{t−2}|.
        let insample = [1.0, 5.0, 3.0, 9.0, 4.0, 8.0];
        // differences: 2, 4, 1, −1 → scale 2.
        assert_eq!(mase_scale(&insample, 2).unwrap(), Some(2.0));
        assert_eq!(
            mase(&actual, &forecast, &insample, 2).unwrap(),
            Some(7.5 / 2.0)
        );
        let c = coverage(
            &actual,
            &[95.0, 40.0, -1.0, 26.0],
            &[105.0, 49.0, 1.0, 30.0],
        );
        assert_eq!(c.unwrap(), Some(0.5));
    }

    #[test]
    fn zero_denominators_give_none_not_nan() {
        assert_eq!(mape(&[0.0, 0.0], &[1.0, 2.0]).unwrap(), None);
        assert_eq!(smape(&[0.0, 0.0], &[0.0, 0.0]).unwrap(), Some(0.0));
        assert_eq!(mase(&[1.0], &[2.0], &[3.0; 10], 2).unwrap(), None);
        assert_eq!(rmse(&[0.0], &[0.0]).unwrap(), Some(0.0));
        for f in [mae, rmse, bias, mape, smape] {
            assert_eq!(f(&[], &[]).unwrap(), None);
            assert!(f(&[1.0], &[f64::NAN]).is_err());
            assert!(f(&[1.0, 2.0], &[1.0]).is_err());
        }
        assert!(mase_scale(&[1.0; 5], 0).is_err());
        assert!(matches!(
            mase_scale(&[1.0; 5], 5),
            Err(ForecastError::TooShort {
                needed: 6,
                got: 5,
                ..
            })
        ));
        // Huge values: the squares would overflow, the RMSE does not.
        assert_eq!(rmse(&[0.0, 0.0], &[1e200, -1e200]).unwrap(), Some(1e200));
        // Errors that overflow f64: None, not infinity.
        assert_eq!(mae(&[-f64::MAX], &[f64::MAX]).unwrap(), None);
        assert_eq!(bias(&[-f64::MAX], &[f64::MAX]).unwrap(), None);
        assert_eq!(smape(&[-f64::MAX], &[f64::MAX]).unwrap(), Some(200.0));
        assert!(mape(&[1e-300], &[1e10]).unwrap().is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn metrics_are_finite_or_none(
            pairs in prop::collection::vec((-1e6..1e6f64, -1e6..1e6f64, 0.0..1e3f64), 0..100),
            period in 1usize..10,
        ) {
            let actual: Vec<f64> = pairs.iter().map(|p| p.0).collect();
            let forecast: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            let lower: Vec<f64> = pairs.iter().map(|p| p.1 - p.2).collect();
            let upper: Vec<f64> = pairs.iter().map(|p| p.1 + p.2).collect();
            for f in [mae, rmse, bias, mape, smape] {
                if let Some(v) = f(&actual, &forecast).unwrap() {
                    prop_assert!(v.is_finite());
                }
            }
            if let Some(s) = smape(&actual, &forecast).unwrap() {
                prop_assert!((0.0..=200.0).contains(&s));
            }
            if let Some(c) = coverage(&actual, &lower, &upper).unwrap() {
                prop_assert!((0.0..=1.0).contains(&c));
            }
            match mase(&actual, &forecast, &actual, period) {
                Ok(Some(v)) => prop_assert!(v.is_finite() && v >= 0.0),
                Ok(None) => {}
                Err(e) => prop_assert!(matches!(e, ForecastError::TooShort { .. }), "{e}"),
            }
        }
    }
}
