//! The naive forecasts: seasonal naive (the value one period before) and
//! naive (the last value, a random walk), with analytic normal intervals.
//!
//! Both are fitted by taking lag-`m` differences of the history (`m` the
//! period, 1 for the naive). Their residuals `eₜ = yₜ − yₜ₋ₘ` give
//! `σ = √(Σ eₜ² / (n − m))` (the residual standard deviation of
//! Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed.,
//! § 5.5, with no estimated parameter). The forecast at step `h` repeats the
//! last observed season; if the series is a seasonal random walk, its error
//! is the sum of `k = ⌈h/m⌉` independent shocks, so
//! `σₕ = σ·√k` and the interval at level `L` is `mean ± z_L·σₕ`
//! ([`normal_intervals`](super::normal_intervals)). For the naive, `k = h`.

use super::intervals::{check_forecast_path, normal_intervals};
use super::model::FittedSummary;
use super::{Exog, Fit, Forecast, ForecastError, History, Predict, validate_horizon};

/// Seasonal naive forecast: the value at step `h` is the last observed value
/// at the same position in the season, `ŷ(n+h) = y(n + h − k·m)` with
/// `k = ⌈h/m⌉` (indices 1-based, `n` observations, period `m`).
///
/// `periods: None` uses the history's periods. With several periods, the
/// period is chosen by [`SeasonalNaive::choose_period`]: the **longest period
/// the history covers at least twice** (so σ is estimated from at least one
/// full period of seasonal differences), else the longest it covers once
/// plus one observation. For hourly demand with periods 24 and 168 this is
/// the weekly seasonal naive as soon as there are two weeks of data: the
/// same hour of the same weekday repeats both the daily and the weekly shape
/// (24 divides 168), while the daily one would forecast Monday from Sunday.
///
/// ```
/// use spe_core::{Fit, History, Predict, SeasonalNaive};
///
/// let y = [1.0, 2.0, 3.0, 1.5, 2.5, 3.5];
/// let fitted = SeasonalNaive::default().fit(&History::new(&y, &[3])).unwrap();
/// let f = fitted.predict(4, &[80.0], None).unwrap();
/// assert_eq!(f.mean(), &[1.5, 2.5, 3.5, 1.5]);
/// assert_eq!(fitted.residuals(), &[0.5, 0.5, 0.5]);
/// // σ = 0.5; step 4 is in the second period ahead: σ₄ = 0.5·√2.
/// let half = f.upper(80.0).unwrap()[3] - f.mean()[3];
/// assert!((half - 1.281_552 * 0.5 * 2f64.sqrt()).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeasonalNaive {
    /// The candidate periods (each at least 1); `None` uses [`History::periods`].
    pub periods: Option<Vec<usize>>,
}

impl SeasonalNaive {
    /// Seasonal naive on the history's periods.
    ///
    /// ```
    /// use spe_core::SeasonalNaive;
    ///
    /// assert_eq!(SeasonalNaive::new().periods, None);
    /// ```
    pub fn new() -> Self {
        SeasonalNaive::default()
    }

    /// Seasonal naive on the given candidate periods, whatever the history's.
    ///
    /// ```
    /// use spe_core::SeasonalNaive;
    ///
    /// assert_eq!(SeasonalNaive::with_periods([24, 168]).periods, Some(vec![24, 168]));
    /// ```
    pub fn with_periods(periods: impl Into<Vec<usize>>) -> Self {
        SeasonalNaive {
            periods: Some(periods.into()),
        }
    }

    /// The period used for `n` observations among `candidates`: the longest
    /// with `n ≥ 2·period`, else the longest with `n ≥ period + 1`.
    ///
    /// Errors: no candidate or a zero period ([`ForecastError::InvalidArgument`]);
    /// `n` below the shortest period + 1 ([`ForecastError::TooShort`]).
    ///
    /// ```
    /// use spe_core::SeasonalNaive;
    ///
    /// assert_eq!(SeasonalNaive::choose_period(&[24, 168], 400).unwrap(), 168);
    /// assert_eq!(SeasonalNaive::choose_period(&[24, 168], 200).unwrap(), 24);
    /// assert_eq!(SeasonalNaive::choose_period(&[24, 168], 30).unwrap(), 24);
    /// assert!(SeasonalNaive::choose_period(&[24, 168], 24).is_err());
    /// assert!(SeasonalNaive::choose_period(&[], 100).is_err());
    /// ```
    pub fn choose_period(candidates: &[usize], n: usize) -> Result<usize, ForecastError> {
        if candidates.is_empty() {
            return Err(ForecastError::invalid(
                "seasonal naive needs a seasonal period (give one, or use the naive model)",
            ));
        }
        if candidates.contains(&0) {
            return Err(ForecastError::invalid("seasonal period 0"));
        }
        let longest_where = |covers: &dyn Fn(usize) -> bool| {
            candidates.iter().copied().filter(|&p| covers(p)).max()
        };
        longest_where(&|p| p.checked_mul(2).is_some_and(|two| n >= two))
            .or_else(|| longest_where(&|p| n > p))
            .ok_or_else(|| {
                let shortest = candidates.iter().copied().min().unwrap_or(1);
                ForecastError::TooShort {
                    model: format!("seasonal naive (period {shortest})"),
                    needed: shortest.saturating_add(1),
                    got: n,
                }
            })
    }
}

impl Fit for SeasonalNaive {
    type Fitted = FittedSeasonalNaive;

    fn name(&self) -> String {
        "seasonal_naive".into()
    }

    fn fit(&self, history: &History<'_>) -> Result<FittedSeasonalNaive, ForecastError> {
        history.validate()?;
        let candidates = self.periods.as_deref().unwrap_or(history.periods);
        let period = SeasonalNaive::choose_period(candidates, history.y.len())?;
        FittedSeasonalNaive::fit_lag("seasonal_naive", history.y, period)
    }
}

/// Naive forecast (random walk): every step is the last value,
/// `ŷₙ₊ₕ = yₙ`, with `σₕ = σ·√h`. It ignores the seasonal periods and needs
/// two observations. It is the seasonal naive of period 1, and its fitted
/// model is a [`FittedSeasonalNaive`] with period 1.
///
/// ```
/// use spe_core::{Fit, History, Naive, Predict};
///
/// let y = [1.0, 3.0, 2.0];
/// let fitted = Naive.fit(&History::new(&y, &[])).unwrap();
/// let f = fitted.predict(2, &[95.0], None).unwrap();
/// assert_eq!(f.mean(), &[2.0, 2.0]);
/// assert_eq!(f.model(), "naive");
/// assert_eq!(fitted.residuals(), &[2.0, -1.0]);
/// assert!(Naive.fit(&History::new(&[1.0], &[])).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Naive;

impl Fit for Naive {
    type Fitted = FittedSeasonalNaive;

    fn name(&self) -> String {
        "naive".into()
    }

    fn fit(&self, history: &History<'_>) -> Result<FittedSeasonalNaive, ForecastError> {
        history.validate()?;
        if history.y.len() < 2 {
            return Err(ForecastError::TooShort {
                model: "naive".into(),
                needed: 2,
                got: history.y.len(),
            });
        }
        FittedSeasonalNaive::fit_lag("naive", history.y, 1)
    }
}

/// A fitted seasonal naive (or naive, period 1) model: the last period of
/// the history, the residual standard deviation, and the residuals.
///
/// [`residuals`](Predict::residuals) are the in-sample seasonal differences
/// `yₜ − yₜ₋ₘ` for `t = m..n`: `n − m` values, the `i`-th belonging to
/// observation `m + i` (the first `m` observations have no forecast).
///
/// ```
/// use spe_core::{Fit, History, Predict, SeasonalNaive};
///
/// let y: Vec<f64> = (0..10).map(|t| (t % 2) as f64).collect();
/// let fitted = SeasonalNaive::with_periods([2]).fit(&History::new(&y, &[])).unwrap();
/// assert_eq!(fitted.period(), 2);
/// assert_eq!(fitted.sigma(), 0.0);
/// assert_eq!(fitted.residuals().len(), 8);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FittedSeasonalNaive {
    name: &'static str,
    period: usize,
    /// The last `period` observations.
    last_season: Vec<f64>,
    sigma: f64,
    residuals: Vec<f64>,
}

impl FittedSeasonalNaive {
    /// Fit on `y` (finite, at least `period + 1` long) with lag `period ≥ 1`.
    fn fit_lag(name: &'static str, y: &[f64], period: usize) -> Result<Self, ForecastError> {
        let n = y.len();
        if period == 0 || n <= period {
            return Err(ForecastError::TooShort {
                model: format!("{name} (period {period})"),
                needed: period.saturating_add(1),
                got: n,
            });
        }
        let residuals: Vec<f64> = y[period..]
            .iter()
            .zip(y)
            .map(|(now, before)| now - before)
            .collect();
        if residuals.iter().any(|e| !e.is_finite()) {
            return Err(ForecastError::FitFailed {
                model: name.into(),
                reason: "seasonal differences overflow f64".into(),
            });
        }
        let sigma = super::metrics::root_mean_square(&residuals).ok_or_else(|| {
            ForecastError::FitFailed {
                model: name.into(),
                reason: "the residual standard deviation overflows f64".into(),
            }
        })?;
        Ok(FittedSeasonalNaive {
            name,
            period,
            last_season: y[n - period..].to_vec(),
            sigma,
            residuals,
        })
    }

    /// The period used (1 for the naive).
    ///
    /// ```
    /// use spe_core::{Fit, History, Naive};
    ///
    /// assert_eq!(Naive.fit(&History::new(&[1.0, 2.0], &[])).unwrap().period(), 1);
    /// ```
    pub fn period(&self) -> usize {
        self.period
    }

    /// The residual standard deviation σ (one-period-ahead).
    ///
    /// ```
    /// use spe_core::{Fit, History, Naive};
    ///
    /// // Differences 3 and −3: σ = √((9 + 9) / 2) = 3.
    /// assert_eq!(Naive.fit(&History::new(&[0.0, 3.0, 0.0], &[])).unwrap().sigma(), 3.0);
    /// ```
    pub fn sigma(&self) -> f64 {
        self.sigma
    }
}

impl Predict for FittedSeasonalNaive {
    fn predict(
        &self,
        horizon: usize,
        levels: &[f64],
        _future: Option<&Exog>,
    ) -> Result<Forecast, ForecastError> {
        validate_horizon(horizon)?;
        let m = self.period;
        let mean: Vec<f64> = (0..horizon).map(|i| self.last_season[i % m]).collect();
        let sd: Vec<f64> = (0..horizon)
            .map(|i| self.sigma * ((i / m + 1) as f64).sqrt())
            .collect();
        check_forecast_path(self.name, &mean, &sd)?;
        let intervals = normal_intervals(&mean, &sd, levels)?;
        Forecast::new(self.name, mean, intervals)
    }

    fn residuals(&self) -> &[f64] {
        &self.residuals
    }

    /// `period` (1 for the naive) and `sigma`. No components.
    fn summary(&self) -> FittedSummary {
        FittedSummary::new(self.name)
            .with_param("period", self.period as f64)
            .with_param("sigma", self.sigma)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::intervals::test_rng::XorShift;
    use crate::forecast::{DynFit, coverage};
    use proptest::prelude::*;

    #[test]
    fn pure_seasonal_series_is_forecast_exactly_with_zero_width() {
        let season = [3.0, 7.5, -2.0, 11.0, 0.25, 4.0, 9.0];
        let y: Vec<f64> = (0..5 * 7).map(|t| season[t % 7]).collect();
        let fitted = SeasonalNaive::new().fit(&History::new(&y, &[7])).unwrap();
        assert_eq!(fitted.sigma(), 0.0);
        assert!(fitted.residuals().iter().all(|e| *e == 0.0));
        let f = fitted.predict(30, &[80.0, 95.0], None).unwrap();
        for h in 0..30 {
            assert_eq!(f.mean()[h], season[(35 + h) % 7]);
            for level in [80.0, 95.0] {
                assert_eq!(f.lower(level).unwrap()[h], f.mean()[h]);
                assert_eq!(f.upper(level).unwrap()[h], f.mean()[h]);
            }
        }
        assert_eq!(f.model(), "seasonal_naive");
        let summary = fitted.summary();
        assert_eq!(summary.model, "seasonal_naive");
        assert_eq!(
            summary.params,
            [("period".to_owned(), 7.0), ("sigma".to_owned(), 0.0)]
        );
    }

    #[test]
    fn multi_period_choice() {
        // Hourly: a daily and a weekly shape.
        let y: Vec<f64> = (0..400)
            .map(|t| (t % 24) as f64 + if (t / 24) % 7 >= 5 { 10.0 } else { 0.0 })
            .collect();
        // 400 ≥ 2·168: weekly, exact.
        let weekly = SeasonalNaive::new()
            .fit(&History::new(&y, &[24, 168]))
            .unwrap();
        assert_eq!(weekly.period(), 168);
        let f = weekly.predict(48, &[], None).unwrap();
        for h in 0..48 {
            let t = 400 + h;
            let truth = (t % 24) as f64 + if (t / 24) % 7 >= 5 { 10.0 } else { 0.0 };
            assert_eq!(f.mean()[h], truth);
        }
        // 200 observations cover a week only once: daily.
        let daily = SeasonalNaive::new()
            .fit(&History::new(&y[..200], &[24, 168]))
            .unwrap();
        assert_eq!(daily.period(), 24);
        // Config periods override the history's, in any order.
        let cfg = SeasonalNaive::with_periods([168, 24]);
        assert_eq!(cfg.fit(&History::new(&y, &[])).unwrap().period(), 168);
        assert_eq!(cfg.fit(&History::new(&y[..170], &[])).unwrap().period(), 24);
        assert_eq!(SeasonalNaive::choose_period(&[24, 168], 169).unwrap(), 24);
        assert_eq!(SeasonalNaive::choose_period(&[168], 169).unwrap(), 168);
        assert_eq!(SeasonalNaive::choose_period(&[1], 2).unwrap(), 1);
    }

    #[test]
    fn clear_errors() {
        let short = [1.0; 7];
        match SeasonalNaive::new().fit(&History::new(&short, &[7, 24])) {
            Err(ForecastError::TooShort { needed, got, .. }) => assert_eq!((needed, got), (8, 7)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            SeasonalNaive::new().fit(&History::new(&[1.0; 50], &[])),
            Err(ForecastError::InvalidArgument(_))
        ));
        assert!(matches!(
            SeasonalNaive::new().fit(&History::new(&[1.0, f64::NAN, 2.0], &[2])),
            Err(ForecastError::NonFinite { index: 1, .. })
        ));
        assert!(
            SeasonalNaive::with_periods([0])
                .fit(&History::new(&[1.0; 5], &[]))
                .is_err()
        );
        assert!(matches!(
            Naive.fit(&History::new(&[], &[])),
            Err(ForecastError::TooShort {
                needed: 2,
                got: 0,
                ..
            })
        ));
        let fitted = Naive.fit(&History::new(&[1.0, 2.0], &[])).unwrap();
        assert!(fitted.predict(0, &[], None).is_err());
        assert!(fitted.predict(3, &[0.0], None).is_err());
        assert!(fitted.predict(3, &[80.0, 80.0], None).is_err());
        // Values whose differences overflow f64: refused up front.
        assert!(matches!(
            Naive.fit(&History::new(&[-f64::MAX, f64::MAX], &[])),
            Err(ForecastError::InvalidArgument(_))
        ));
        // The boxed (dyn) path names the model.
        let boxed: &dyn DynFit = &SeasonalNaive::new();
        assert_eq!(boxed.name(), "seasonal_naive");
    }

    /// Simulated seasonal random walks `yₜ = yₜ₋ₘ + εₜ`: the analytic
    /// intervals cover the future at their nominal rate.
    #[test]
    fn analytic_intervals_are_calibrated_on_a_seasonal_random_walk() {
        let mut rng = XorShift::new(2024);
        let (m, n, horizon, sims) = (12, 240, 36, 2000);
        let levels = [80.0, 95.0];
        let mut hits = [0usize; 2];
        let mut hits_by_k = [[0usize; 3]; 2];
        let mut total = 0usize;
        for _ in 0..sims {
            let mut y: Vec<f64> = (0..m).map(|_| 100.0 + 10.0 * rng.normal()).collect();
            for t in m..n + horizon {
                let e = 2.0 * rng.normal();
                y.push(y[t - m] + e);
            }
            let (train, test) = y.split_at(n);
            let f = SeasonalNaive::new()
                .fit(&History::new(train, &[m]))
                .unwrap()
                .predict(horizon, &levels, None)
                .unwrap();
            for (i, level) in levels.iter().enumerate() {
                let (lo, hi) = (f.lower(*level).unwrap(), f.upper(*level).unwrap());
                for h in 0..horizon {
                    if lo[h] <= test[h] && test[h] <= hi[h] {
                        hits[i] += 1;
                        hits_by_k[i][h / m] += 1;
                    }
                }
            }
            total += horizon;
        }
        let rate = |h: usize| h as f64 / total as f64;
        assert!(
            (0.78..=0.82).contains(&rate(hits[0])),
            "80 %: {}",
            rate(hits[0])
        );
        assert!(
            (0.935..=0.965).contains(&rate(hits[1])),
            "95 %: {}",
            rate(hits[1])
        );
        // Calibrated at every k = ⌈h/m⌉, not only on average.
        for (k, hits) in hits_by_k[0].iter().enumerate() {
            let r = *hits as f64 / (sims * m) as f64;
            assert!((0.76..=0.84).contains(&r), "80 % at k = {}: {r}", k + 1);
        }
    }

    #[test]
    fn naive_intervals_are_calibrated_on_a_random_walk() {
        let mut rng = XorShift::new(7);
        let (n, horizon, sims) = (100, 10, 2000);
        let mut actual = Vec::new();
        let (mut lower, mut upper) = (Vec::new(), Vec::new());
        for _ in 0..sims {
            let mut y = vec![50.0];
            for t in 1..n + horizon {
                y.push(y[t - 1] + rng.normal());
            }
            let f = Naive
                .fit(&History::new(&y[..n], &[24]))
                .unwrap()
                .predict(horizon, &[80.0], None)
                .unwrap();
            actual.extend_from_slice(&y[n..]);
            lower.extend_from_slice(f.lower(80.0).unwrap());
            upper.extend_from_slice(f.upper(80.0).unwrap());
        }
        let c = coverage(&actual, &lower, &upper).unwrap().unwrap();
        assert!((0.76..=0.84).contains(&c), "{c}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn never_panics_and_outputs_are_finite(
            y in prop::collection::vec(-1e6..1e6f64, 0..300),
            periods in prop::collection::vec(2usize..60, 0..3),
            horizon in 0usize..100,
            naive in any::<bool>(),
        ) {
            let history = History::new(&y, &periods);
            let fitted = if naive {
                Naive.fit(&history)
            } else {
                SeasonalNaive::with_periods(periods.clone()).fit(&history)
            };
            if let Ok(fitted) = fitted {
                prop_assert!(fitted.sigma().is_finite());
                prop_assert_eq!(fitted.residuals().len(), y.len() - fitted.period());
                match fitted.predict(horizon, &[50.0, 80.0, 99.0], None) {
                    Ok(f) => {
                        prop_assert_eq!(f.horizon(), horizon);
                        for pi in f.intervals() {
                            for ((l, u), m) in pi.lower.iter().zip(&pi.upper).zip(f.mean()) {
                                prop_assert!(l.is_finite() && u.is_finite() && l <= m && m <= u);
                            }
                        }
                    }
                    Err(e) => prop_assert!(horizon == 0, "{e}"),
                }
            }
        }
    }
}
