//! Prediction intervals: analytic normal intervals and split-conformal
//! intervals from backtest errors.
//!
//! - [`normal_intervals`]: `mean ± z·σₕ`, with `z` the normal quantile of the
//!   level ([`z_for_level`]) and `σₕ` the model's forecast standard deviation
//!   at step `h` (for example `σ·√⌈h/m⌉` for the seasonal naive).
//! - [`conformal_intervals`]: `mean ± qₕ`, with `qₕ` an empirical quantile of
//!   the absolute errors a rolling-origin backtest made at step `h` (see
//!   [`BacktestReport::errors_per_step`](super::BacktestReport::errors_per_step)).
//!   Distribution-free: it needs no model of the errors, only that the
//!   errors of the coming forecast are exchangeable with the backtest's.

use super::error::check_finite;
use super::{ForecastError, PredictionInterval, validate_levels};
use crate::synth::noise::inverse_normal_cdf;

/// The standard normal quantile Φ⁻¹(p), for `p` in (0, 1).
///
/// Acklam's rational approximation (relative error below 1.2·10⁻⁹).
///
/// ```
/// use spe_core::normal_quantile;
///
/// assert!((normal_quantile(0.975).unwrap() - 1.959_964).abs() < 1e-6);
/// assert_eq!(normal_quantile(0.5).unwrap(), 0.0);
/// assert!(normal_quantile(1.0).is_err());
/// assert!(normal_quantile(f64::NAN).is_err());
/// ```
pub fn normal_quantile(p: f64) -> Result<f64, ForecastError> {
    if !(p > 0.0 && p < 1.0) {
        return Err(ForecastError::invalid(format!(
            "probability {p} is outside (0, 1)"
        )));
    }
    Ok(inverse_normal_cdf(p))
}

/// The half-width multiplier of a central normal interval at `level`
/// percent: Φ⁻¹(½ + level/200) (1.2816 for 80 %, 1.9600 for 95 %).
///
/// ```
/// use spe_core::z_for_level;
///
/// assert!((z_for_level(80.0).unwrap() - 1.281_552).abs() < 1e-6);
/// assert!((z_for_level(95.0).unwrap() - 1.959_964).abs() < 1e-6);
/// assert!(z_for_level(100.0).is_err());
/// ```
pub fn z_for_level(level: f64) -> Result<f64, ForecastError> {
    validate_levels(&[level])?;
    normal_quantile(0.5 + level / 200.0)
}

/// A fitted model's forecast, checked before its intervals are made: a
/// mean or a standard deviation past what a double holds (a trend or a
/// variance run away over a long horizon, on huge values) is the model
/// failing at that step ([`ForecastError::PredictFailed`]), not a bad input.
pub(crate) fn check_forecast_path(
    model: &str,
    mean: &[f64],
    sd: &[f64],
) -> Result<(), ForecastError> {
    let fail = |what: &str, step: usize, value: f64| {
        Err(ForecastError::PredictFailed {
            model: model.to_owned(),
            reason: format!(
                "the forecast {what} at step {step} is {value}, beyond what a double holds: \
                 forecast a shorter horizon, or rescale the series"
            ),
        })
    };
    if let Some(i) = mean.iter().position(|m| !m.is_finite()) {
        return fail("mean", i + 1, mean[i]);
    }
    if let Some(i) = sd.iter().position(|s| !s.is_finite()) {
        return fail("standard deviation", i + 1, sd[i]);
    }
    Ok(())
}

/// Normal prediction intervals `mean ± z·sd` at each level, where `sd[h]` is
/// the forecast standard deviation at step `h`.
///
/// A zero standard deviation gives a zero-width interval (`lower == mean ==
/// upper`). Errors: `mean` and `sd` of different lengths, a non-finite value,
/// a negative `sd`, an invalid level, or bounds that overflow `f64`.
///
/// ```
/// use spe_core::normal_intervals;
///
/// let pis = normal_intervals(&[10.0, 10.0], &[1.0, 2.0], &[95.0]).unwrap();
/// assert_eq!(pis[0].level, 95.0);
/// assert!((pis[0].upper[1] - (10.0 + 2.0 * 1.959_964)).abs() < 1e-5);
/// assert!(normal_intervals(&[1.0], &[-1.0], &[80.0]).is_err());
/// ```
pub fn normal_intervals(
    mean: &[f64],
    sd: &[f64],
    levels: &[f64],
) -> Result<Vec<PredictionInterval>, ForecastError> {
    if mean.len() != sd.len() {
        return Err(ForecastError::invalid(format!(
            "{} means for {} standard deviations",
            mean.len(),
            sd.len()
        )));
    }
    check_finite(mean)?;
    if let Some(step) = sd.iter().position(|s| s.is_infinite()) {
        return Err(ForecastError::invalid(format!(
            "the forecast standard deviation at step {} overflows f64: the series' values \
             are too large for intervals (rescale them)",
            step + 1
        )));
    }
    check_finite(sd)?;
    if let Some(s) = sd.iter().find(|s| **s < 0.0) {
        return Err(ForecastError::invalid(format!(
            "negative standard deviation {s}"
        )));
    }
    validate_levels(levels)?;
    levels
        .iter()
        .map(|&level| {
            let z = z_for_level(level)?;
            let half: Vec<f64> = sd.iter().map(|s| z * s).collect();
            symmetric(mean, &half, level)
        })
        .collect()
}

/// The fewest scores a split-conformal interval at `level` percent needs:
/// the smallest `n` with ⌈(n+1)·level/100⌉ ≤ `n` (4 for 80 %, 19 for 95 %,
/// 99 for 99 %). With fewer, the corrected quantile would be the infinite
/// upper end of the score distribution.
///
/// ```
/// use spe_core::conformal_min_scores;
///
/// assert_eq!(conformal_min_scores(80.0).unwrap(), 4);
/// assert_eq!(conformal_min_scores(95.0).unwrap(), 19);
/// assert!(conformal_min_scores(0.0).is_err());
/// ```
pub fn conformal_min_scores(level: f64) -> Result<usize, ForecastError> {
    validate_levels(&[level])?;
    // `rank(n) − n` never increases with `n`: double to a valid `n`, then
    // bisect for the smallest.
    let valid = |n: usize| conformal_rank(n, level) <= n;
    let mut hi = 1usize;
    while !valid(hi) {
        if hi == usize::MAX {
            return Err(ForecastError::invalid(format!(
                "level {level} % is too close to 100 for conformal intervals"
            )));
        }
        hi = hi.saturating_mul(2);
    }
    let mut lo = hi / 2; // invalid (or 0)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if valid(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

/// The rank `k = ⌈(n+1)·level/100⌉` (1-based) of the split-conformal
/// quantile among `n` sorted scores; a relative tolerance keeps exact
/// products such as 20 × 0.95 from rounding up.
fn conformal_rank(n: usize, level: f64) -> usize {
    let x = (n as f64 + 1.0) * level / 100.0;
    ((x - x * 1e-12).ceil() as usize).max(1)
}

/// Split-conformal prediction intervals from per-step backtest errors.
///
/// `errors_per_step[h]` holds the errors (actual − forecast; the sign is
/// ignored) that earlier forecasts made at step `h + 1`, for example
/// [`BacktestReport::errors_per_step`](super::BacktestReport::errors_per_step);
/// it must have one entry per step of `mean`. At each step and level, with
/// `n` absolute errors sorted ascending, the half-width is the
/// `k = ⌈(n+1)·level/100⌉`-th smallest — the empirical quantile of level
/// `k/n`, the finite-sample correction of split-conformal prediction. If the
/// coming error is exchangeable with the `n` scores, the interval covers it
/// with probability at least `level` % (and at most `level` % + 1/(n+1)
/// without ties).
///
/// Errors: a step with fewer than [`conformal_min_scores`] scores
/// ([`ForecastError::TooShort`]: use more backtest folds, or pool the steps
/// with [`conformal_intervals_pooled`]), a non-finite value, an invalid level,
/// or a length mismatch.
///
/// ```
/// use spe_core::conformal_intervals;
///
/// // Five backtest folds: errors at step 1 and step 2.
/// let errors = vec![
///     vec![0.5, -1.0, 0.2, -0.1, 0.3],
///     vec![1.0, -2.0, 0.4, 3.0, -0.5],
/// ];
/// let pis = conformal_intervals(&[10.0, 11.0], &errors, &[80.0]).unwrap();
/// // k = ⌈6 × 0.8⌉ = 5: the largest absolute error of each step.
/// assert_eq!(pis[0].lower, vec![9.0, 8.0]);
/// assert_eq!(pis[0].upper, vec![11.0, 14.0]);
/// // 95 % needs at least 19 scores per step.
/// assert!(conformal_intervals(&[10.0, 11.0], &errors, &[95.0]).is_err());
/// ```
pub fn conformal_intervals(
    mean: &[f64],
    errors_per_step: &[Vec<f64>],
    levels: &[f64],
) -> Result<Vec<PredictionInterval>, ForecastError> {
    if errors_per_step.len() != mean.len() {
        return Err(ForecastError::invalid(format!(
            "{} steps of errors for a {}-step forecast",
            errors_per_step.len(),
            mean.len()
        )));
    }
    check_finite(mean)?;
    validate_levels(levels)?;
    let sorted: Vec<Vec<f64>> = errors_per_step
        .iter()
        .map(|e| sorted_abs(e))
        .collect::<Result<_, _>>()?;
    levels
        .iter()
        .map(|&level| {
            let half: Vec<f64> = sorted
                .iter()
                .map(|s| conformal_quantile(s, level))
                .collect::<Result<_, _>>()?;
            symmetric(mean, &half, level)
        })
        .collect()
}

/// Split-conformal prediction intervals from one pooled set of errors, the
/// same half-width at every step.
///
/// The rule of [`conformal_intervals`] with all steps' errors together: more
/// scores per quantile, at the price of ignoring that errors usually grow
/// with the step (the interval is then too wide early and too narrow late).
///
/// ```
/// use spe_core::conformal_intervals_pooled;
///
/// let errors = [0.5, -1.0, 0.2, -0.1, 0.3, 1.0, -2.0, 0.4, 3.0, -0.5];
/// let pis = conformal_intervals_pooled(&[10.0, 11.0], &errors, &[80.0]).unwrap();
/// // n = 10, k = ⌈11 × 0.8⌉ = 9: the second largest absolute error, 2.0.
/// assert_eq!(pis[0].lower, vec![8.0, 9.0]);
/// assert_eq!(pis[0].upper, vec![12.0, 13.0]);
/// ```
pub fn conformal_intervals_pooled(
    mean: &[f64],
    errors: &[f64],
    levels: &[f64],
) -> Result<Vec<PredictionInterval>, ForecastError> {
    check_finite(mean)?;
    validate_levels(levels)?;
    let sorted = sorted_abs(errors)?;
    levels
        .iter()
        .map(|&level| {
            let q = conformal_quantile(&sorted, level)?;
            symmetric(mean, &vec![q; mean.len()], level)
        })
        .collect()
}

fn sorted_abs(errors: &[f64]) -> Result<Vec<f64>, ForecastError> {
    check_finite(errors)?;
    let mut s: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
    s.sort_by(f64::total_cmp);
    Ok(s)
}

/// The split-conformal quantile of ascending `sorted` scores at `level`.
fn conformal_quantile(sorted: &[f64], level: f64) -> Result<f64, ForecastError> {
    let n = sorted.len();
    let k = conformal_rank(n, level);
    if k > n {
        return Err(ForecastError::TooShort {
            model: format!("a split-conformal {level} % interval"),
            needed: conformal_min_scores(level)?,
            got: n,
        });
    }
    Ok(sorted[k - 1])
}

/// `mean ± half` as a validated interval (finite bounds).
fn symmetric(mean: &[f64], half: &[f64], level: f64) -> Result<PredictionInterval, ForecastError> {
    let lower: Vec<f64> = mean.iter().zip(half).map(|(m, h)| m - h).collect();
    let upper: Vec<f64> = mean.iter().zip(half).map(|(m, h)| m + h).collect();
    if lower.iter().chain(&upper).any(|v| !v.is_finite()) {
        return Err(ForecastError::invalid(format!(
            "the {level} % interval overflows f64"
        )));
    }
    Ok(PredictionInterval {
        level,
        lower,
        upper,
    })
}

/// A tiny deterministic generator for the forecasting tests.
#[cfg(test)]
pub(crate) mod test_rng {
    /// xorshift64* with Box–Muller normals.
    pub(crate) struct XorShift(u64);

    impl XorShift {
        pub(crate) fn new(seed: u64) -> Self {
            XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
        }

        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// Uniform in (0, 1).
        pub(crate) fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        /// Standard normal.
        pub(crate) fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_rng::XorShift;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantiles_match_tables() {
        for (p, z) in [
            (0.5, 0.0),
            (0.9, 1.281_551_565_5),
            (0.975, 1.959_963_985),
            (0.995, 2.575_829_304),
            (0.01, -2.326_347_874),
            (1e-6, -4.753_424_309),
        ] {
            let q = normal_quantile(p).unwrap();
            assert!((q - z).abs() < 1e-7, "Φ⁻¹({p}) = {q}, expected {z}");
        }
        assert!((z_for_level(99.0).unwrap() - 2.575_829_304).abs() < 1e-7);
        for bad in [0.0, 1.0, -0.1, f64::NAN, f64::INFINITY] {
            assert!(normal_quantile(bad).is_err());
        }
        for bad in [0.0, 100.0, -5.0, f64::NAN] {
            assert!(z_for_level(bad).is_err());
        }
    }

    #[test]
    fn normal_intervals_are_symmetric_and_zero_sd_is_zero_width() {
        let pis = normal_intervals(&[5.0, 6.0], &[0.0, 1.0], &[80.0, 95.0]).unwrap();
        assert_eq!(pis.len(), 2);
        assert_eq!(pis[0].lower[0], 5.0);
        assert_eq!(pis[0].upper[0], 5.0);
        assert!((pis[1].upper[1] - 6.0 - 1.959_964).abs() < 1e-6);
        assert!((pis[1].lower[1] - 6.0 + 1.959_964).abs() < 1e-6);
        assert!(normal_intervals(&[1.0], &[1.0, 2.0], &[80.0]).is_err());
        assert!(normal_intervals(&[1.0], &[f64::NAN], &[80.0]).is_err());
        assert!(normal_intervals(&[1.0], &[1.0], &[80.0, 80.0]).is_err());
        assert!(normal_intervals(&[1e308], &[1e308], &[95.0]).is_err());
    }

    #[test]
    fn min_scores_follow_the_rank_rule() {
        for level in [1.0, 10.0, 50.0, 80.0, 90.0, 95.0, 97.5, 99.0, 99.9] {
            let n = conformal_min_scores(level).unwrap();
            assert!(conformal_rank(n, level) <= n, "{level}");
            assert!(n == 1 || conformal_rank(n - 1, level) > n - 1, "{level}");
        }
        assert_eq!(conformal_min_scores(90.0).unwrap(), 9);
        assert_eq!(conformal_min_scores(99.0).unwrap(), 99);
        assert_eq!(conformal_min_scores(50.0).unwrap(), 1);
        assert_eq!(conformal_rank(19, 95.0), 19);
        assert_eq!(conformal_rank(9, 80.0), 8);
    }

    #[test]
    fn conformal_errors_are_clear() {
        let few = vec![vec![1.0, 2.0, 3.0]];
        match conformal_intervals(&[0.0], &few, &[80.0]) {
            Err(ForecastError::TooShort { needed, got, .. }) => {
                assert_eq!((needed, got), (4, 3));
            }
            other => panic!("{other:?}"),
        }
        assert!(conformal_intervals(&[0.0, 1.0], &few, &[50.0]).is_err());
        assert!(conformal_intervals(&[0.0], &[vec![f64::NAN; 10]], &[50.0]).is_err());
        assert!(conformal_intervals_pooled(&[0.0], &[], &[50.0]).is_err());
        // No levels: no intervals.
        assert!(conformal_intervals(&[0.0], &few, &[]).unwrap().is_empty());
    }

    /// Exchangeable scores: the interval covers a fresh error at least at the
    /// nominal rate, and at most 1/(n+1) above it.
    #[test]
    fn conformal_coverage_on_simulated_errors() {
        let mut rng = XorShift::new(11);
        let n = 39;
        let reps = 4000;
        for (level, lo, hi) in [(80.0, 0.785, 0.84), (95.0, 0.94, 0.99)] {
            let mut covered = 0;
            for _ in 0..reps {
                // Heavy-ish tails: a Laplace-like mixture, step 2 twice as wide.
                let draw = |rng: &mut XorShift, scale: f64| {
                    let g = rng.normal();
                    scale * g * if rng.uniform() < 0.2 { 3.0 } else { 1.0 }
                };
                let errors: Vec<Vec<f64>> = (1..=2)
                    .map(|s| (0..n).map(|_| draw(&mut rng, s as f64)).collect())
                    .collect();
                let pis = conformal_intervals(&[0.0, 0.0], &errors, &[level]).unwrap();
                for (s, scale) in [(0, 1.0), (1, 2.0)] {
                    let fresh = draw(&mut rng, scale);
                    if pis[0].lower[s] <= fresh && fresh <= pis[0].upper[s] {
                        covered += 1;
                    }
                }
            }
            let rate = f64::from(covered) / f64::from(2 * reps);
            assert!((lo..=hi).contains(&rate), "{level} %: coverage {rate}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn conformal_never_panics(
            mean in prop::collection::vec(-1e6..1e6f64, 0..20),
            errors in prop::collection::vec(prop::collection::vec(-1e6..1e6f64, 0..40), 0..20),
            level in 0.0..100.0f64,
        ) {
            if let Ok(pis) = conformal_intervals(&mean, &errors, &[level]) {
                for pi in &pis {
                    for ((l, u), m) in pi.lower.iter().zip(&pi.upper).zip(&mean) {
                        prop_assert!(l.is_finite() && u.is_finite() && l <= m && m <= u);
                    }
                }
            }
            let flat: Vec<f64> = errors.concat();
            if let Ok(pis) = conformal_intervals_pooled(&mean, &flat, &[level]) {
                prop_assert_eq!(pis[0].lower.len(), mean.len());
            }
        }
    }
}
