//! [`BoxCox`]: any model fitted on the Box–Cox transform of the series, its
//! forecasts transformed back.

use super::model::FittedSummary;
use super::{Exog, Fit, Forecast, ForecastError, History, Predict, PredictionInterval};

/// A model fitted on the Box–Cox transform of a positive series, its
/// forecasts transformed back: for seasonality that scales with the level
/// (a daily swing twice as wide when demand is twice as high), which
/// additive models such as [`Mstl`](super::Mstl) and [`Ets`](super::Ets)
/// miss.
///
/// The transform of `y > 0` is `(y^λ − 1) / λ`, and `ln y` for `λ = 0`
/// (multiplicative seasonality); `λ = 1` is a shift, the model unchanged
/// but for the floor at 0 below. Both are computed in forms that stay exact
/// as λ nears 0 (`expm1`, `ln_1p`).
/// The forecast's mean is the back-transformed point forecast, which is the
/// forecast *median* for a symmetric model (as R's `forecast` without
/// `biasadj`); the intervals are the back-transformed bounds, so they keep
/// their coverage and are no longer symmetric. The in-sample
/// [`residuals`](Predict::residuals) are on the series' own scale (observed
/// minus the back-transformed fitted value, NaN in place where that value is
/// beyond what the transform can represent); the components and the
/// parameters of the [`summary`](Predict::summary) (a variance, a
/// likelihood) are on the transformed scale, and its parameters add
/// `box_cox_lambda` first.
///
/// Every observation must be positive (and finite), and its transform
/// within ±[`MAX_OBSERVATION`](crate::MAX_OBSERVATION) and not all equal
/// when the observations are not (else rescale the series). Where the
/// transform cannot map a forecast back (`λ·z + 1 ≤ 0`): for `λ > 0` that
/// is below its range, and the value is 0, the series' floor; for `λ < 0`
/// it is above, and the forecast fails with
/// [`ForecastError::PredictFailed`] naming the step (forecast a shorter
/// horizon). The λ must be finite, within ±[`MAX_LAMBDA`]; `-0` is 0.
///
/// ```
/// use spe_core::{BoxCox, Fit, History, Mstl, Predict};
///
/// // A daily swing of ±20 % around a level that doubles over four weeks.
/// let y: Vec<f64> = (0..24 * 28)
///     .map(|t| {
///         let level = 500.0 * (1.0 + t as f64 / (24.0 * 28.0));
///         level * (1.0 + 0.2 * (t as f64 / 24.0 * std::f64::consts::TAU).sin())
///     })
///     .collect();
/// let log = BoxCox::new(Mstl::default(), 0.0)?.fit(&History::new(&y, &[24]))?;
/// let f = log.predict(24, &[95.0], None)?;
/// assert_eq!(f.model(), "box_cox(0)+mstl(24)+ets(A,A,N)");
/// assert!(f.lower(95.0).unwrap().iter().all(|l| *l > 0.0));
/// assert_eq!(log.summary().param("box_cox_lambda"), Some(0.0));
/// // Non-positive observations cannot be transformed.
/// assert!(BoxCox::new(Mstl::default(), 0.0)?.fit(&History::new(&[1.0, 0.0, 2.0], &[])).is_err());
/// # Ok::<(), spe_core::ForecastError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BoxCox<M> {
    inner: M,
    lambda: f64,
}

/// The largest |λ| [`BoxCox`] takes (2: from `1/y²` to `y²`, beyond which
/// the transform only amplifies noise).
pub const MAX_LAMBDA: f64 = 2.0;

impl<M> BoxCox<M> {
    /// `inner` fitted on the Box–Cox transform with parameter `lambda`.
    ///
    /// # Errors
    ///
    /// [`ForecastError::InvalidArgument`] if `lambda` is not finite or
    /// beyond ±[`MAX_LAMBDA`].
    pub fn new(inner: M, lambda: f64) -> Result<Self, ForecastError> {
        if !lambda.is_finite() || lambda.abs() > MAX_LAMBDA {
            return Err(ForecastError::invalid(format!(
                "the Box-Cox lambda must be a finite number from -{MAX_LAMBDA} to {MAX_LAMBDA} \
                 (0 for a log transform), not {lambda}"
            )));
        }
        // + 0.0: -0 is 0 (one name, one model).
        Ok(BoxCox {
            inner,
            lambda: lambda + 0.0,
        })
    }

    /// The transform's parameter λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// The model fitted on the transformed series.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

/// The Box–Cox transform of `y` (positive) with parameter `lambda`, as
/// `expm1(λ ln y) / λ`: exact as λ nears 0, where `(y^λ − 1) / λ` cancels.
fn forward(y: f64, lambda: f64) -> f64 {
    if lambda == 0.0 {
        y.ln()
    } else {
        (lambda * y.ln()).exp_m1() / lambda
    }
}

/// Where the inverse transform of `z` falls.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Inverse {
    /// A positive, finite value.
    Value(f64),
    /// Below the transform's range (`λ > 0`, `λ·z + 1 ≤ 0`): the series'
    /// smallest value, 0.
    Below,
    /// Above what it can represent (`λ < 0`, `λ·z + 1 ≤ 0`, or beyond f64).
    Above,
}

/// The inverse transform of `z`, as `exp(ln_1p(λ z) / λ)` (exact as λ
/// nears 0).
fn inverse(z: f64, lambda: f64) -> Inverse {
    let y = if lambda == 0.0 {
        z.exp()
    } else {
        if lambda * z + 1.0 <= 0.0 {
            return if lambda > 0.0 {
                Inverse::Below
            } else {
                Inverse::Above
            };
        }
        ((lambda * z).ln_1p() / lambda).exp()
    };
    if y.is_finite() {
        Inverse::Value(y)
    } else {
        Inverse::Above
    }
}

/// `λ` as forecasts name it (`0`, `0.5`, `-1`, `1e-12`), or an observation
/// in a message: the shorter of the plain and the exponent forms.
fn label(lambda: f64) -> String {
    let (plain, exponent) = (format!("{lambda}"), format!("{lambda:e}"));
    if exponent.len() < plain.len() {
        exponent
    } else {
        plain
    }
}

impl<M: Fit> Fit for BoxCox<M> {
    type Fitted = FittedBoxCox<M::Fitted>;

    fn name(&self) -> String {
        format!("box_cox({})+{}", label(self.lambda), self.inner.name())
    }

    fn fit(&self, history: &History<'_>) -> Result<Self::Fitted, ForecastError> {
        history.validate()?;
        if let Some((i, y)) = history.y.iter().enumerate().find(|(_, y)| **y <= 0.0) {
            return Err(ForecastError::invalid(format!(
                "the Box-Cox transform needs positive observations, and observation {i} is {}: \
                 shift the series, or drop the transform",
                label(*y)
            )));
        }
        let z: Vec<f64> = history.y.iter().map(|y| forward(*y, self.lambda)).collect();
        if let Some((i, v)) = z
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite() || v.abs() > super::MAX_OBSERVATION)
        {
            return Err(ForecastError::invalid(format!(
                "the Box-Cox transform (lambda {}) of observation {i} ({}) is {}, beyond \
                 ±{:e}: rescale the series (to values near 1), or use a lambda closer to 0",
                label(self.lambda),
                label(history.y[i]),
                label(*v),
                super::MAX_OBSERVATION
            )));
        }
        let distinct = |v: &[f64]| v.iter().any(|x| *x != v[0]);
        if !z.is_empty() && distinct(history.y) && !distinct(&z) {
            return Err(ForecastError::invalid(format!(
                "the Box-Cox transform (lambda {}) maps every observation to {}: at this \
                 magnitude the transform loses the series' variation; rescale the series (to \
                 values near 1)",
                label(self.lambda),
                z[0]
            )));
        }
        // A constant series, at a magnitude a negative lambda maps to the
        // transform's bound −1/λ: the inverse cannot map it back, and every
        // forecast would fail. (A varying one that reaches the bound is
        // refused above when it collapses, else fitted, its residuals there
        // NaN.)
        if let Some(&v) = z.first() {
            if !distinct(history.y) && !matches!(inverse(v, self.lambda), Inverse::Value(_)) {
                return Err(ForecastError::invalid(format!(
                    "the Box-Cox transform (lambda {}) of the constant series ({}) is {}, the \
                     bound it cannot be mapped back from: rescale the series (to values near \
                     1), or use a lambda closer to 0",
                    label(self.lambda),
                    label(history.y[0]),
                    label(v)
                )));
            }
        }
        let inner = self.inner.fit(&History { y: &z, ..*history })?;
        // Residuals on the series' scale: observed minus the back-transformed
        // fitted value, for the observations the inner residuals belong to
        // (the last ones); NaN in place where the fitted value is beyond
        // what the transform can represent, so they still line up.
        let e = inner.residuals();
        let offset = history.y.len().saturating_sub(e.len());
        let residuals = e
            .iter()
            .zip(&z[offset..])
            .zip(&history.y[offset..])
            .map(|((e, z), y)| match inverse(z - e, self.lambda) {
                Inverse::Value(fitted) => y - fitted,
                Inverse::Below => *y,
                Inverse::Above => f64::NAN,
            })
            .collect();
        Ok(FittedBoxCox {
            inner,
            lambda: self.lambda,
            residuals,
        })
    }
}

/// A [`BoxCox`] model, fitted.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedBoxCox<F> {
    inner: F,
    lambda: f64,
    residuals: Vec<f64>,
}

impl<F> FittedBoxCox<F> {
    /// The model fitted on the transformed series.
    pub fn inner(&self) -> &F {
        &self.inner
    }

    /// The transform's parameter λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }
}

impl<F: Predict> Predict for FittedBoxCox<F> {
    /// The inner model's forecast, transformed back (see [`BoxCox`]).
    fn predict(
        &self,
        horizon: usize,
        levels: &[f64],
        future: Option<&Exog>,
    ) -> Result<Forecast, ForecastError> {
        let f = self.inner.predict(horizon, levels, future)?;
        let lambda = self.lambda;
        let overflow = |what: &str, step: usize| ForecastError::PredictFailed {
            model: format!("box_cox({})+{}", label(lambda), f.model()),
            reason: format!(
                "the {what} at step {} is beyond what the transform (lambda {}) can map back: \
                 forecast a shorter horizon, or use a lambda closer to 1",
                step + 1,
                label(lambda)
            ),
        };
        // Below the transform's range (λ > 0) is 0, the series' floor.
        let back = |values: &[f64], what: &str| -> Result<Vec<f64>, ForecastError> {
            values
                .iter()
                .enumerate()
                .map(|(step, z)| match inverse(*z, lambda) {
                    Inverse::Value(y) => Ok(y),
                    Inverse::Below => Ok(0.0),
                    Inverse::Above => Err(overflow(what, step)),
                })
                .collect()
        };
        let mean = back(f.mean(), "forecast")?;
        let intervals = f
            .intervals()
            .iter()
            .map(|pi| {
                Ok(PredictionInterval {
                    level: pi.level,
                    lower: back(&pi.lower, &format!("{} % lower bound", pi.level))?,
                    upper: back(&pi.upper, &format!("{} % upper bound", pi.level))?,
                })
            })
            .collect::<Result<Vec<_>, ForecastError>>()?;
        Forecast::new(
            format!("box_cox({})+{}", label(lambda), f.model()),
            mean,
            intervals,
        )
    }

    fn residuals(&self) -> &[f64] {
        &self.residuals
    }

    /// The inner model's summary (components on the transformed scale),
    /// named as the forecasts are, with `box_cox_lambda` first.
    fn summary(&self) -> FittedSummary {
        let inner = self.inner.summary();
        let mut s = FittedSummary::new(if inner.model.is_empty() {
            String::new()
        } else {
            format!("box_cox({})+{}", label(self.lambda), inner.model)
        })
        .with_param("box_cox_lambda", self.lambda);
        s.params.extend(inner.params);
        s.components = inner.components;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::{Ets, Mstl, SeasonalNaive, mase};

    /// Hourly, a level that doubles over `days`, a daily swing of ±`swing`
    /// of the level, multiplicative noise.
    fn multiplicative(days: usize, swing: f64, seed: u64) -> Vec<f64> {
        let mut rng = crate::forecast::intervals::test_rng::XorShift::new(seed);
        let n = 24 * days;
        (0..n)
            .map(|t| {
                let level = 500.0 * (1.0 + t as f64 / n as f64);
                let day = (t as f64 / 24.0 * std::f64::consts::TAU).sin();
                level * (1.0 + swing * day) * (1.0 + 0.01 * rng.normal())
            })
            .collect()
    }

    /// A model whose every fit answers `forecast`.
    #[derive(Debug, Clone)]
    struct Fixed {
        forecast: Forecast,
    }

    impl Fit for Fixed {
        type Fitted = Fixed;
        fn name(&self) -> String {
            "fixed".into()
        }
        fn fit(&self, _: &History<'_>) -> Result<Fixed, ForecastError> {
            Ok(self.clone())
        }
    }

    impl Predict for Fixed {
        fn predict(
            &self,
            _: usize,
            _: &[f64],
            _: Option<&Exog>,
        ) -> Result<Forecast, ForecastError> {
            Ok(self.forecast.clone())
        }
        fn residuals(&self) -> &[f64] {
            &[]
        }
    }

    #[test]
    fn the_transform_inverts_and_lambda_one_is_the_model_itself() {
        for lambda in [-2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0] {
            for y in [1e-3, 0.5, 1.0, 7.0, 1234.5] {
                let Inverse::Value(back) = inverse(forward(y, lambda), lambda) else {
                    panic!("λ {lambda}, y {y}: no inverse");
                };
                assert!((back - y).abs() <= 1e-9 * y, "λ {lambda}, y {y}: {back}");
            }
        }
        // As λ nears 0, the transform nears the log, without cancellation.
        for lambda in [1e-300, -1e-300, 1e-15, 1e-12, -1e-9] {
            for y in [1e-3, 0.5, 7.0, 1234.5] {
                let z = forward(y, lambda);
                assert!(
                    (z - y.ln()).abs() <= 1e-6 * y.ln().abs().max(1.0),
                    "λ {lambda}: {z}"
                );
                let Inverse::Value(back) = inverse(z, lambda) else {
                    panic!("λ {lambda}, y {y}: no inverse");
                };
                assert!((back - y).abs() <= 1e-9 * y, "λ {lambda}, y {y}: {back}");
            }
        }
        assert_eq!(label(1e-300), "1e-300");
        assert_eq!(
            (label(0.5), label(-2.0), label(0.0)),
            ("0.5".into(), "-2".into(), "0".into())
        );
        let minus_zero = BoxCox::new(Mstl::default(), -0.0).unwrap();
        assert!(minus_zero.lambda().is_sign_positive());
        assert_eq!(minus_zero.name(), "box_cox(0)+mstl");
        // λ = 1 shifts the series by 1: the same forecast, shifted back.
        let y = multiplicative(21, 0.2, 1);
        let history = History::new(&y, &[24]);
        let plain = Mstl::default()
            .fit(&history)
            .unwrap()
            .predict(48, &[80.0], None)
            .unwrap();
        let one = BoxCox::new(Mstl::default(), 1.0)
            .unwrap()
            .fit(&history)
            .unwrap()
            .predict(48, &[80.0], None)
            .unwrap();
        for (a, b) in plain.mean().iter().zip(one.mean()) {
            assert!((a - b).abs() < 1e-6 * a.abs(), "{a} {b}");
        }
    }

    #[test]
    fn a_log_model_forecasts_a_multiplicative_season_better() {
        // Fit on three weeks, forecast the next two days, eight origins.
        let y = multiplicative(40, 0.3, 7);
        let (mut plain, mut log) = (Vec::new(), Vec::new());
        for origin in (24 * 30..=24 * 37).step_by(24) {
            let history = History::new(&y[..origin], &[24]);
            let actual = &y[origin..origin + 48];
            let p = Mstl::default()
                .fit(&history)
                .unwrap()
                .predict(48, &[], None)
                .unwrap();
            let l = BoxCox::new(Mstl::default(), 0.0)
                .unwrap()
                .fit(&history)
                .unwrap()
                .predict(48, &[], None)
                .unwrap();
            plain.push(mase(actual, p.mean(), &y[..origin], 24).unwrap().unwrap());
            log.push(mase(actual, l.mean(), &y[..origin], 24).unwrap().unwrap());
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            mean(&log) < 0.8 * mean(&plain),
            "log {:.3} vs plain {:.3}",
            mean(&log),
            mean(&plain)
        );
    }

    #[test]
    fn intervals_are_back_transformed_bounds_and_residuals_are_on_the_series_scale() {
        let y = multiplicative(21, 0.2, 3);
        let history = History::new(&y, &[24]);
        let model = BoxCox::new(SeasonalNaive::default(), 0.0).unwrap();
        let fitted = model.fit(&history).unwrap();
        let f = fitted.predict(24, &[80.0, 95.0], None).unwrap();
        let z: Vec<f64> = y.iter().map(|v| v.ln()).collect();
        let inner = SeasonalNaive::default()
            .fit(&History::new(&z, &[24]))
            .unwrap()
            .predict(24, &[80.0, 95.0], None)
            .unwrap();
        for i in 0..24 {
            assert!((f.mean()[i] - inner.mean()[i].exp()).abs() < 1e-9 * f.mean()[i]);
            let (lo, hi) = (f.lower(95.0).unwrap()[i], f.upper(95.0).unwrap()[i]);
            assert!((lo - inner.lower(95.0).unwrap()[i].exp()).abs() < 1e-9 * lo);
            assert!((hi - inner.upper(95.0).unwrap()[i].exp()).abs() < 1e-9 * hi);
            // Not symmetric any more: wider above.
            assert!(hi - f.mean()[i] > f.mean()[i] - lo);
        }
        // Seasonal naive residuals are y_t − y_{t−24}, on the series' scale.
        let r = fitted.residuals();
        assert_eq!(r.len(), y.len() - 24);
        for (i, e) in r.iter().enumerate() {
            assert!((e - (y[i + 24] - y[i])).abs() < 1e-9 * y[i + 24]);
        }
        let s = fitted.summary();
        assert_eq!(s.model, "box_cox(0)+seasonal_naive");
        assert_eq!(s.params[0], ("box_cox_lambda".to_owned(), 0.0));
        assert_eq!(s.param("period"), Some(24.0));
    }

    #[test]
    fn bad_lambdas_data_and_bounds_are_clear_errors() {
        for lambda in [f64::NAN, f64::INFINITY, 2.5, -3.0] {
            let e = BoxCox::new(Ets::default(), lambda).unwrap_err();
            assert!(e.to_string().contains("lambda"), "{e}");
        }
        let model = BoxCox::new(Ets::default(), 0.5).unwrap();
        for bad in [[1.0, 2.0, 0.0, 3.0], [1.0, -2.0, 1.0, 3.0]] {
            let e = model.fit(&History::new(&bad, &[])).unwrap_err();
            assert!(e.to_string().contains("positive observations"), "{e}");
        }
        // λ = −2: the transform is bounded above by 1/2, so a bound at or
        // past it cannot be mapped back: an error, not an infinite bound.
        // With λ = 0.5 a lower bound below −2 maps to 0.
        let answer = |mean: f64, lower: f64, upper: f64| Fixed {
            forecast: Forecast::new(
                "fixed",
                vec![mean],
                vec![PredictionInterval {
                    level: 95.0,
                    lower: vec![lower],
                    upper: vec![upper],
                }],
            )
            .unwrap(),
        };
        let y = [1.0, 2.0, 3.0];
        let e = BoxCox::new(answer(0.2, 0.1, 0.5), -2.0)
            .unwrap()
            .fit(&History::new(&y, &[]))
            .unwrap()
            .predict(1, &[95.0], None)
            .unwrap_err();
        assert!(matches!(e, ForecastError::PredictFailed { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("95 % upper bound at step 1 is beyond"),
            "{e}"
        );
        // λ > 0: a whole forecast below the range is the floor, 0.
        let f = BoxCox::new(answer(-2.8, -3.0, -2.5), 0.5)
            .unwrap()
            .fit(&History::new(&y, &[]))
            .unwrap()
            .predict(1, &[95.0], None)
            .unwrap();
        assert_eq!((f.mean(), f.upper(95.0).unwrap()), (&[0.0][..], &[0.0][..]));
        let f = BoxCox::new(answer(0.2, -3.0, 0.4), 0.5)
            .unwrap()
            .fit(&History::new(&y, &[]))
            .unwrap()
            .predict(1, &[95.0], None)
            .unwrap();
        assert_eq!(f.lower(95.0).unwrap(), &[0.0]);
        assert!((f.mean()[0] - 1.1_f64.powi(2)).abs() < 1e-12);
        assert!((f.upper(95.0).unwrap()[0] - 1.2_f64.powi(2)).abs() < 1e-12);
    }

    #[test]
    fn transforms_beyond_f64_or_that_lose_the_series_are_refused() {
        let model = |lambda| BoxCox::new(Ets::default(), lambda).unwrap();
        let tiny = [1e-310, 2e-310, 3e-310, 4e-310];
        let e = model(-1.0).fit(&History::new(&tiny, &[])).unwrap_err();
        assert!(e.to_string().contains("observation 0 (1e-310)"), "{e}");
        assert!(e.to_string().contains("rescale the series"), "{e}");
        let huge = [1e100, 2e100, 3e100, 4e100];
        let e = model(-2.0).fit(&History::new(&huge, &[])).unwrap_err();
        assert!(
            e.to_string().contains("maps every observation to 0.5"),
            "{e}"
        );
        // A constant series stays a constant series: not refused…
        assert!(model(-2.0).fit(&History::new(&[5.0; 30], &[])).is_ok());
        // …unless it is at the bound the inverse cannot map back from
        // ((1 − 1e-18)/2 rounds to 1/2): every forecast would fail.
        let e = model(-2.0).fit(&History::new(&[1e9; 50], &[])).unwrap_err();
        assert!(
            e.to_string().contains("cannot be mapped back from")
                && e.to_string().contains("closer to 0"),
            "{e}"
        );
    }

    #[test]
    fn residuals_line_up_with_the_history_even_beyond_the_range() {
        // λ = −2 on a fast-growing series: some fitted values overshoot the
        // transform's bound 1/2, and their residuals are NaN in place.
        let y: Vec<f64> = (0..300).map(|t| (t as f64 / 10.0).exp() + 1.0).collect();
        let fitted = BoxCox::new(Ets::default(), -2.0)
            .unwrap()
            .fit(&History::new(&y, &[]))
            .unwrap();
        let r = fitted.residuals();
        assert_eq!(r.len(), y.len());
        assert!(r.iter().any(|e| e.is_nan()), "no fitted value overshot");
        assert!(r.iter().filter(|e| !e.is_nan()).all(|e| e.is_finite()));
    }
}
