//! Exponential smoothing (ETS) with additive errors: ETS(A,N,N), ETS(A,A,N),
//! ETS(A,Ad,N) and their variants with additive seasonality, plus
//! [`AutoEts`], which picks one of them by AICc. The model and its
//! estimation are documented on [`Ets`].

use super::error::check_finite;
use super::intervals::check_forecast_path;
use super::model::FittedSummary;
use super::model::validate_horizon;
use super::{
    Exog, Fit, Forecast, ForecastError, History, NelderMead, Predict, normal_intervals,
    validate_levels,
};

/// The longest seasonal period accepted (far beyond any series' two cycles).
const MAX_PERIOD: usize = 1 << 32;

const ALPHA_MIN: f64 = 1e-4;
const ALPHA_MAX: f64 = 0.9999;
const BETA_MIN: f64 = 1e-4;
const GAMMA_MIN: f64 = 1e-4;
const PHI_MIN: f64 = 0.8;
const PHI_MAX: f64 = 0.98;

/// The trend component of an ETS model.
///
/// ```
/// use spe_core::Trend;
///
/// assert_eq!(Trend::Damped.code(), "Ad");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Trend {
    /// No trend (`N`).
    #[default]
    None,
    /// Additive trend (`A`).
    Additive,
    /// Additive damped trend (`Ad`).
    Damped,
}

impl Trend {
    /// The letter(s) of the ETS taxonomy: `N`, `A` or `Ad`.
    ///
    /// ```
    /// assert_eq!(spe_core::Trend::None.code(), "N");
    /// ```
    pub fn code(self) -> &'static str {
        match self {
            Trend::None => "N",
            Trend::Additive => "A",
            Trend::Damped => "Ad",
        }
    }

    fn has_slope(self) -> bool {
        !matches!(self, Trend::None)
    }
}

/// An ETS model with additive errors: its trend and, optionally, the period
/// of an additive seasonality.
///
/// # Model
///
/// With level `l`, trend `b`, seasonal states `s` of period `m`, damping `φ`
/// (`φ = 1` without damping, `b = 0` without trend, `s = 0` without
/// seasonality), and one-step error `eₜ` (Hyndman et al., *Forecasting with
/// Exponential Smoothing*, 2008, class 1):
///
/// ```text
/// ŷₜ = lₜ₋₁ + φ bₜ₋₁ + sₜ₋ₘ          eₜ = yₜ − ŷₜ
/// lₜ = lₜ₋₁ + φ bₜ₋₁ + α eₜ
/// bₜ = φ bₜ₋₁ + β eₜ
/// sₜ = sₜ₋ₘ + γ eₜ
/// ```
///
/// Forecast `h` steps ahead: `lₙ + (φ + … + φʰ) bₙ + sₙ₊ₕ₋ₘ₍ₖ₊₁₎`, with
/// variance `σ²[1 + Σⱼ₌₁ʰ⁻¹ cⱼ²]`, `cⱼ = α + β(φ + … + φʲ) + γ·[j ≡ 0 mod m]`,
/// and normal prediction intervals.
///
/// # Estimation
///
/// Parameters minimise the sum of squared one-step errors (the Gaussian
/// likelihood of additive errors, with `σ²` concentrated out), within the
/// usual bounds α ∈ [10⁻⁴, 0.9999], β ∈ [10⁻⁴, α], γ ∈ [10⁻⁴, 1 − α],
/// φ ∈ [0.8, 0.98]:
///
/// - the smoothing parameters by the bounded [`NelderMead`] (β and γ are
///   searched as fractions of their α-dependent ranges, so the box is
///   fixed), started from the best of five values of α;
/// - the initial states exactly: the one-step errors are *affine* in the
///   initial states for fixed smoothing parameters, so the best initial
///   states are a linear least-squares solution. Without seasonality it is
///   computed inside every loss evaluation (the loss is the SSE with the
///   initial level and slope concentrated out, at the cost of two extra
///   independent recursions in the same loop). With seasonality the
///   `m + 1` or `m + 2` states are solved for at the scanned start and after
///   each of up to two Nelder–Mead rounds (alternating; a round runs only
///   if the previous one still improved the fit by 0.1 %), starting from a
///   classical decomposition of the first (up to four) cycles: centred
///   moving average, seasonal means per phase, a line through the
///   deseasonalised values. The seasonal states are kept summing to zero.
///   The Gram matrix costs O(n·m), not O(n·m²): the response of the errors
///   to the seasonal state of phase `j` is the response to phase 0 delayed
///   by `j` steps.
///
/// The loss loop is allocation-free and arranged so the loop-carried
/// dependency goes through the one-step prediction once per step.
///
/// The series is standardised (centre and half-range) before fitting, so the
/// loss never overflows and constant series need no special case (their
/// forecast is flat with zero-width intervals).
///
/// `σ²` is `SSE / (n − k)` with `k` the number of estimated parameters and
/// initial states; AICc uses the maximised likelihood with `k + 1` parameters.
///
/// The period is explicit: `seasonal: None` is a non-seasonal model whatever
/// the history's periods (see [`AutoEts`] to take them from the history).
/// A series shorter than [`min_len`](Ets::min_len) is
/// [`TooShort`](ForecastError::TooShort).
///
/// ```
/// use spe_core::{Ets, Fit, History, Predict, Trend};
///
/// // Two weeks of a daily pattern on a rising line.
/// let y: Vec<f64> = (0..24 * 14)
///     .map(|t| 100.0 + 0.1 * t as f64 + 10.0 * ((t % 24) as f64 / 24.0 * 6.283).sin())
///     .collect();
/// let fitted = Ets { trend: Trend::Additive, seasonal: Some(24) }
///     .fit(&History::new(&y, &[24]))
///     .unwrap();
/// let f = fitted.predict(24, &[80.0, 95.0], None).unwrap();
/// assert_eq!(f.model(), "ets(A,A,A)");
/// let truth = 100.0 + 0.1 * (24 * 14) as f64; // next value: phase 0, sin(0) = 0
/// assert!((f.mean()[0] - truth).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ets {
    /// The trend.
    pub trend: Trend,
    /// The period of the additive seasonality in steps (at least 2), if any.
    pub seasonal: Option<usize>,
}

impl Ets {
    /// A model with this trend and seasonality.
    ///
    /// ```
    /// use spe_core::{Ets, Trend};
    ///
    /// assert_eq!(Ets::new(Trend::Damped, None).trend, Trend::Damped);
    /// ```
    pub fn new(trend: Trend, seasonal: Option<usize>) -> Self {
        Ets { trend, seasonal }
    }

    /// The fewest observations this model fits on: two full seasonal cycles,
    /// and at least three more than its parameters and initial states.
    ///
    /// ```
    /// use spe_core::{Ets, Trend};
    ///
    /// assert_eq!(Ets::new(Trend::None, None).min_len(), 5);
    /// assert_eq!(Ets::new(Trend::None, Some(24)).min_len(), 48);
    /// // A period no history can hold (fitting refuses it): saturates.
    /// assert_eq!(Ets::new(Trend::Damped, Some(usize::MAX)).min_len(), usize::MAX);
    /// ```
    pub fn min_len(&self) -> usize {
        Spec::of(self).min_len()
    }

    fn spec(&self) -> Result<Spec, ForecastError> {
        if let Some(m) = self.seasonal {
            if m < 2 {
                return Err(ForecastError::invalid(format!(
                    "seasonal period {m} is less than 2"
                )));
            }
            if m > MAX_PERIOD {
                return Err(ForecastError::invalid(format!(
                    "seasonal period {m} is longer than {MAX_PERIOD}"
                )));
            }
        }
        Ok(Spec::of(self))
    }
}

/// Estimated smoothing parameters.
///
/// `beta` is 0 without trend, `gamma` 0 without seasonality, `phi` 1 without
/// damping.
///
/// ```
/// use spe_core::{Ets, Fit, History, Trend};
///
/// let y: Vec<f64> = (0..50).map(|t| (t % 7) as f64).collect();
/// let p = Ets::new(Trend::None, None).fit(&History::new(&y, &[])).unwrap().params();
/// assert!(p.alpha >= 1e-4 && p.alpha <= 0.9999 && p.beta == 0.0 && p.phi == 1.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EtsParams {
    /// Level smoothing α.
    pub alpha: f64,
    /// Trend smoothing β.
    pub beta: f64,
    /// Seasonal smoothing γ.
    pub gamma: f64,
    /// Damping φ.
    pub phi: f64,
}

/// The model structure used internally (`m == 0`: no seasonality).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spec {
    trend: Trend,
    m: usize,
}

impl Spec {
    fn of(ets: &Ets) -> Spec {
        Spec {
            trend: ets.trend,
            m: ets.seasonal.unwrap_or(0),
        }
    }

    fn seasonal(&self) -> bool {
        self.m > 0
    }

    /// Smoothing parameters estimated.
    fn n_smooth(&self) -> usize {
        1 + usize::from(self.trend.has_slope())
            + usize::from(self.trend == Trend::Damped)
            + usize::from(self.seasonal())
    }

    /// Free initial states (the seasonal ones sum to zero).
    fn n_init(&self) -> usize {
        // Saturating: `Ets::min_len` reaches here with any period.
        (1 + usize::from(self.trend.has_slope())).saturating_add(self.m.saturating_sub(1))
    }

    fn n_params(&self) -> usize {
        self.n_smooth().saturating_add(self.n_init())
    }

    fn min_len(&self) -> usize {
        self.n_params()
            .saturating_add(3)
            .max(self.m.saturating_mul(2))
    }

    fn name(&self) -> String {
        format!(
            "ets(A,{},{})",
            self.trend.code(),
            if self.seasonal() { "A" } else { "N" }
        )
    }

    /// The search box: `[α, β fraction, γ fraction, φ]` for the components present.
    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        let mut lo = vec![ALPHA_MIN];
        let mut hi = vec![ALPHA_MAX];
        if self.trend.has_slope() {
            lo.push(0.0);
            hi.push(1.0);
        }
        if self.seasonal() {
            lo.push(0.0);
            hi.push(1.0);
        }
        if self.trend == Trend::Damped {
            lo.push(PHI_MIN);
            hi.push(PHI_MAX);
        }
        (lo, hi)
    }

    /// A start with level smoothing `alpha`.
    fn start(&self, alpha: f64) -> Vec<f64> {
        let mut x = vec![alpha];
        if self.trend.has_slope() {
            x.push(0.1);
        }
        if self.seasonal() {
            x.push(0.1);
        }
        if self.trend == Trend::Damped {
            x.push(0.95);
        }
        x
    }

    /// Smoothing parameters from a point of the search box.
    fn decode(&self, x: &[f64]) -> EtsParams {
        let mut it = x.iter().copied();
        let alpha = it.next().unwrap_or(0.5).clamp(ALPHA_MIN, ALPHA_MAX);
        let beta = if self.trend.has_slope() {
            let f = it.next().unwrap_or(0.1).clamp(0.0, 1.0);
            BETA_MIN + f * (alpha - BETA_MIN).max(0.0)
        } else {
            0.0
        };
        let gamma = if self.seasonal() {
            let f = it.next().unwrap_or(0.1).clamp(0.0, 1.0);
            GAMMA_MIN + f * (1.0 - alpha - GAMMA_MIN).max(0.0)
        } else {
            0.0
        };
        let phi = match self.trend {
            Trend::Damped => it.next().unwrap_or(0.95).clamp(PHI_MIN, PHI_MAX),
            _ => 1.0,
        };
        EtsParams {
            alpha,
            beta,
            gamma,
            phi,
        }
    }
}

/// A standardised series: `z = (y − center) / scale`.
pub(crate) struct Scaled {
    pub(crate) z: Vec<f64>,
    pub(crate) center: f64,
    pub(crate) scale: f64,
}

/// Standardise by the midrange and half-range (1 for a constant series), so
/// the fit works on values in [−1, 1] whatever the units.
pub(crate) fn standardize(y: &[f64]) -> Result<Scaled, ForecastError> {
    check_finite(y)?;
    let (lo, hi) = y
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    if y.is_empty() {
        return Ok(Scaled {
            z: Vec::new(),
            center: 0.0,
            scale: 1.0,
        });
    }
    let center = lo / 2.0 + hi / 2.0;
    let half = hi / 2.0 - lo / 2.0;
    let scale = if half > 0.0 && half.is_finite() {
        half
    } else {
        1.0
    };
    let z: Vec<f64> = y.iter().map(|v| v / scale - center / scale).collect();
    if z.iter().any(|v| !v.is_finite()) {
        return Err(ForecastError::FitFailed {
            model: "ets".into(),
            reason: "the series cannot be standardised in floating point".into(),
        });
    }
    Ok(Scaled { z, center, scale })
}

/// A fitted ETS model: parameters, final states and in-sample errors.
///
/// ```
/// use spe_core::{Ets, Fit, History, Predict, Trend};
///
/// let y: Vec<f64> = (0..100).map(|t| 5.0 + 0.5 * t as f64).collect();
/// let fitted = Ets::new(Trend::Additive, None).fit(&History::new(&y, &[])).unwrap();
/// assert_eq!(fitted.name(), "ets(A,A,N)");
/// assert_eq!(fitted.residuals().len(), 100);
/// let f = fitted.predict(3, &[95.0], None).unwrap();
/// assert!((f.mean()[2] - (5.0 + 0.5 * 102.0)).abs() < 1e-6);
/// assert!(fitted.sigma2() < 1e-12 && fitted.aicc().is_finite());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FittedEts {
    spec: Spec,
    params: EtsParams,
    center: f64,
    scale: f64,
    /// Final level and slope, standardised.
    level: f64,
    slope: f64,
    /// Final seasonal states by phase (`t mod m`), standardised.
    season: Vec<f64>,
    /// Initial level and slope, standardised.
    init: (f64, f64),
    n: usize,
    /// SSE and σ² of the standardised errors.
    sse_z: f64,
    sigma2_z: f64,
    residuals: Vec<f64>,
}

impl FittedEts {
    /// The model's name in the ETS taxonomy, e.g. `ets(A,Ad,A)`.
    ///
    /// ```
    /// use spe_core::{Ets, Fit, History, Trend};
    ///
    /// let y = [1.0, 2.0, 1.5, 1.7, 1.6, 1.8];
    /// assert_eq!(Ets::default().fit(&History::new(&y, &[])).unwrap().name(), "ets(A,N,N)");
    /// ```
    pub fn name(&self) -> String {
        self.spec.name()
    }

    /// The model fitted (trend and seasonal period).
    ///
    /// ```
    /// use spe_core::{AutoEts, Fit, History};
    ///
    /// let y: Vec<f64> = (0..60).map(|t| (t % 4) as f64 * 3.0).collect();
    /// let fitted = AutoEts::default().fit(&History::new(&y, &[4])).unwrap();
    /// assert_eq!(fitted.model().seasonal, Some(4));
    /// ```
    pub fn model(&self) -> Ets {
        Ets {
            trend: self.spec.trend,
            seasonal: (self.spec.m > 0).then_some(self.spec.m),
        }
    }

    /// The estimated smoothing parameters.
    ///
    /// ```
    /// use spe_core::{Ets, Fit, History};
    ///
    /// let y = [3.0, 4.0, 3.5, 3.7, 3.6, 3.9, 3.8];
    /// let p = Ets::default().fit(&History::new(&y, &[])).unwrap().params();
    /// assert!(p.alpha > 0.0 && p.alpha < 1.0);
    /// ```
    pub fn params(&self) -> EtsParams {
        self.params
    }

    /// The variance of the one-step errors, `SSE / (n − k)`, in the
    /// series' units squared.
    ///
    /// ```
    /// use spe_core::{Ets, Fit, History};
    ///
    /// let y = [3.0; 10];
    /// assert_eq!(Ets::default().fit(&History::new(&y, &[])).unwrap().sigma2(), 0.0);
    /// ```
    pub fn sigma2(&self) -> f64 {
        self.sigma2_z * self.scale * self.scale
    }

    /// The maximised Gaussian log-likelihood (`σ²` at its MLE `SSE / n`).
    ///
    /// ```
    /// use spe_core::{Ets, Fit, History};
    ///
    /// let y = [3.0, 4.0, 3.5, 3.7, 3.6, 3.9, 3.8];
    /// assert!(Ets::default().fit(&History::new(&y, &[])).unwrap().log_likelihood().is_finite());
    /// ```
    pub fn log_likelihood(&self) -> f64 {
        let n = self.n as f64;
        // ln(SSE/n) in the series' units, floored so a perfect fit stays finite.
        let ln_mse = (self.sse_z / n).max(1e-300).ln() + 2.0 * self.scale.ln();
        -0.5 * n * ((2.0 * std::f64::consts::PI).ln() + ln_mse + 1.0)
    }

    /// Akaike's information criterion corrected for small samples, with
    /// `k + 1` parameters (smoothing parameters, free initial states, σ²).
    ///
    /// ```
    /// use spe_core::{Ets, Fit, History};
    ///
    /// let y = [3.0, 4.0, 3.5, 3.7, 3.6, 3.9, 3.8];
    /// assert!(Ets::default().fit(&History::new(&y, &[])).unwrap().aicc().is_finite());
    /// ```
    pub fn aicc(&self) -> f64 {
        let k = (self.spec.n_params() + 1) as f64;
        let n = self.n as f64;
        let aic = -2.0 * self.log_likelihood() + 2.0 * k;
        if n - k - 1.0 > 0.0 {
            aic + 2.0 * k * (k + 1.0) / (n - k - 1.0)
        } else {
            f64::INFINITY
        }
    }

    /// Number of observations fitted.
    ///
    /// ```
    /// use spe_core::{Ets, Fit, History};
    ///
    /// let y = [3.0, 4.0, 3.5, 3.7, 3.6, 3.9, 3.8];
    /// assert_eq!(Ets::default().fit(&History::new(&y, &[])).unwrap().n_obs(), 7);
    /// ```
    pub fn n_obs(&self) -> usize {
        self.n
    }

    /// The level and slope after each observation of `y` (the series the
    /// model was fitted on), in the series' units; `None` for seasonal models.
    pub(crate) fn states(&self, y: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
        if self.spec.seasonal() {
            return None;
        }
        let EtsParams {
            alpha: a,
            beta: bt,
            phi: ph,
            ..
        } = self.params;
        let (mut l, mut b) = self.init;
        let (mut ls, mut bs) = (Vec::with_capacity(y.len()), Vec::with_capacity(y.len()));
        for v in y {
            let z = v / self.scale - self.center / self.scale;
            let pr = l + ph * b;
            let e = z - pr;
            l = pr + a * e;
            b = ph * b + bt * e;
            ls.push(self.center + self.scale * l);
            bs.push(self.scale * b);
        }
        Some((ls, bs))
    }

    /// One-step errors of a non-seasonal model with its fitted smoothing
    /// parameters run over `y` from the initial level and slope of a line
    /// through its first (up to 10) values, in the series' units (empty for
    /// seasonal models).
    pub(crate) fn errors_over(&self, y: &[f64]) -> Vec<f64> {
        if self.spec.seasonal() {
            return Vec::new();
        }
        let EtsParams {
            alpha: a,
            beta: bt,
            phi: ph,
            ..
        } = self.params;
        let z: Vec<f64> = y
            .iter()
            .map(|v| v / self.scale - self.center / self.scale)
            .collect();
        let (mut l, mut b) = initial_line(&z, self.spec.trend.has_slope());
        z.iter()
            .map(|&v| {
                let pr = l + ph * b;
                let e = v - pr;
                l = pr + a * e;
                b = ph * b + bt * e;
                self.scale * e
            })
            .collect()
    }

    /// The damping φ (1 without damping).
    pub(crate) fn phi(&self) -> f64 {
        self.params.phi
    }

    /// Mean and standard deviation of the forecast, `horizon` steps
    /// (checked by [`validate_horizon`]).
    pub(crate) fn mean_sd(&self, horizon: usize) -> Result<(Vec<f64>, Vec<f64>), ForecastError> {
        validate_horizon(horizon)?;
        let EtsParams {
            alpha,
            beta,
            gamma,
            phi,
        } = self.params;
        let m = self.spec.m;
        let mut mean = Vec::with_capacity(horizon);
        let mut sd = Vec::with_capacity(horizon);
        // φ_h = φ + … + φʰ; var_h = σ²(1 + Σ_{j<h} c_j²).
        let mut phi_pow = 1.0;
        let mut phi_sum = 0.0;
        let mut var = self.sigma2_z;
        for h in 1..=horizon {
            phi_pow *= phi;
            phi_sum += phi_pow;
            let s = if m > 0 {
                self.season[(self.n + h - 1) % m]
            } else {
                0.0
            };
            let z = self.level + phi_sum * self.slope + s;
            mean.push(self.center + self.scale * z);
            sd.push(self.scale * var.max(0.0).sqrt());
            // c_h for the next step's variance.
            let seasonal_hit = m > 0 && h % m == 0;
            let c = alpha + beta * phi_sum + if seasonal_hit { gamma } else { 0.0 };
            var += self.sigma2_z * c * c;
        }
        Ok((mean, sd))
    }
}

impl Predict for FittedEts {
    /// Forecast with analytic normal intervals. `future` is ignored (the
    /// model has no regressors). The horizon must pass [`validate_horizon`].
    fn predict(
        &self,
        horizon: usize,
        levels: &[f64],
        _future: Option<&Exog>,
    ) -> Result<Forecast, ForecastError> {
        validate_levels(levels)?;
        let (mean, sd) = self.mean_sd(horizon)?;
        let name = self.spec.name();
        check_forecast_path(&name, &mean, &sd)?;
        let intervals = normal_intervals(&mean, &sd, levels)?;
        Forecast::new(name, mean, intervals)
    }

    fn residuals(&self) -> &[f64] {
        &self.residuals
    }

    /// `alpha`, then `beta` (with a trend), `phi` (damped), `gamma` and
    /// `period` (seasonal), then `sigma2`, `log_likelihood`, `aicc` and
    /// `n_obs` (each when finite). No components.
    fn summary(&self) -> FittedSummary {
        let p = self.params;
        let mut s = FittedSummary::new(self.name()).with_param("alpha", p.alpha);
        if self.spec.trend != Trend::None {
            s = s.with_param("beta", p.beta);
        }
        if self.spec.trend == Trend::Damped {
            s = s.with_param("phi", p.phi);
        }
        if self.spec.m > 0 {
            s = s
                .with_param("gamma", p.gamma)
                .with_param("period", self.spec.m as f64);
        }
        s.with_param("sigma2", self.sigma2())
            .with_param("log_likelihood", self.log_likelihood())
            .with_param("aicc", self.aicc())
            .with_param("n_obs", self.n as f64)
    }
}

impl Ets {
    /// Fit a non-seasonal model with a single Nelder–Mead search (no
    /// restart): for MSTL's trend candidates, whose parameters only need to
    /// be good, not polished.
    pub(crate) fn fit_quick(&self, y: &[f64]) -> Result<FittedEts, ForecastError> {
        let spec = self.spec()?;
        if spec.seasonal() {
            return Err(ForecastError::invalid(
                "fit_quick fits non-seasonal models only",
            ));
        }
        let needed = spec.min_len();
        if y.len() < needed {
            return Err(ForecastError::TooShort {
                model: spec.name(),
                needed,
                got: y.len(),
            });
        }
        let scaled = standardize(y)?;
        fit_scaled_with(spec, &scaled, 0)
    }
}

impl Fit for Ets {
    type Fitted = FittedEts;

    fn name(&self) -> String {
        Spec::of(self).name()
    }

    fn fit(&self, history: &History<'_>) -> Result<FittedEts, ForecastError> {
        history.validate()?;
        let spec = self.spec()?;
        let needed = spec.min_len();
        if history.y.len() < needed {
            return Err(ForecastError::TooShort {
                model: spec.name(),
                needed,
                got: history.y.len(),
            });
        }
        let scaled = standardize(history.y)?;
        fit_scaled(spec, &scaled)
    }
}

/// Picks the ETS model with the lowest AICc among (A,N,N), (A,A,N),
/// (A,Ad,N) and, when `seasonal`, their variants with additive seasonality.
///
/// The seasonal period is `period`, or the shortest period of the history
/// when `None`; seasonal candidates are skipped when there is no period or
/// the series is shorter than two cycles (ETS has one seasonality: for
/// several, see [`Mstl`](crate::Mstl)). Candidates the series is too short
/// for are skipped; if none fits, the error is the simplest candidate's.
///
/// ```
/// use spe_core::{AutoEts, Fit, History, Predict};
///
/// let y: Vec<f64> = (0..200).map(|t| 50.0 + 8.0 * [0.0, 1.0, 0.5, -1.5][t % 4]).collect();
/// let fitted = AutoEts::default().fit(&History::new(&y, &[4])).unwrap();
/// assert_eq!(fitted.model().seasonal, Some(4));
/// let f = fitted.predict(4, &[95.0], None).unwrap();
/// assert!((f.mean()[1] - 58.0).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoEts {
    /// The seasonal period; `None` takes the shortest period of the history.
    pub period: Option<usize>,
    /// Whether seasonal candidates are tried.
    pub seasonal: bool,
}

impl Default for AutoEts {
    fn default() -> Self {
        AutoEts {
            period: None,
            seasonal: true,
        }
    }
}

impl AutoEts {
    /// Non-seasonal candidates only.
    ///
    /// ```
    /// assert!(!spe_core::AutoEts::non_seasonal().seasonal);
    /// ```
    pub fn non_seasonal() -> Self {
        AutoEts {
            period: None,
            seasonal: false,
        }
    }

    /// The candidates for a history of `n` points with `periods`.
    fn candidates(&self, periods: &[usize]) -> Vec<Ets> {
        let trends = [Trend::None, Trend::Additive, Trend::Damped];
        let mut out: Vec<Ets> = trends.iter().map(|t| Ets::new(*t, None)).collect();
        if self.seasonal {
            if let Some(m) = self.period.or_else(|| periods.iter().copied().min()) {
                out.extend(trends.iter().map(|t| Ets::new(*t, Some(m))));
            }
        }
        out
    }
}

impl Fit for AutoEts {
    type Fitted = FittedEts;

    fn name(&self) -> String {
        "auto_ets".into()
    }

    fn fit(&self, history: &History<'_>) -> Result<FittedEts, ForecastError> {
        history.validate()?;
        if let Some(p) = self.period.filter(|p| *p < 2) {
            return Err(ForecastError::invalid(format!(
                "seasonal period {p} is less than 2"
            )));
        }
        let n = history.y.len();
        let candidates = self.candidates(history.periods);
        let simplest = Ets::default();
        if n < simplest.min_len() {
            return Err(ForecastError::TooShort {
                model: self.name(),
                needed: simplest.min_len(),
                got: n,
            });
        }
        let scaled = standardize(history.y)?;
        let mut best: Option<FittedEts> = None;
        let mut first_err = None;
        for c in candidates {
            let spec = match c.spec() {
                Ok(s) => s,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            if n < spec.min_len() {
                continue;
            }
            match fit_scaled(spec, &scaled) {
                Ok(f) => {
                    if best.as_ref().is_none_or(|b| f.aicc() < b.aicc()) {
                        best = Some(f);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        best.ok_or_else(|| {
            first_err.unwrap_or_else(|| ForecastError::FitFailed {
                model: self.name(),
                reason: "no candidate could be fitted".into(),
            })
        })
    }
}

// ---------------------------------------------------------------------------
// Estimation.

fn fit_scaled(spec: Spec, scaled: &Scaled) -> Result<FittedEts, ForecastError> {
    fit_scaled_with(spec, scaled, optimizer().restarts)
}

/// [`fit_scaled`] with `restarts` Nelder–Mead restarts for non-seasonal
/// models.
fn fit_scaled_with(
    spec: Spec,
    scaled: &Scaled,
    restarts: usize,
) -> Result<FittedEts, ForecastError> {
    let z = &scaled.z;
    let n = z.len();
    let (params, l0, b0, mut season) = if spec.seasonal() {
        fit_seasonal(spec, z)?
    } else {
        let (p, l0, b0) = fit_nonseasonal(spec, z, restarts)?;
        (p, l0, b0, Vec::new())
    };
    let mut resid = vec![0.0; n];
    let (sse_z, level, slope) = run(z, &params, l0, b0, &mut season, Some(&mut resid));
    if !(sse_z.is_finite() && level.is_finite() && slope.is_finite())
        || season.iter().any(|s| !s.is_finite())
    {
        return Err(ForecastError::FitFailed {
            model: spec.name(),
            reason: "the recursions diverged".into(),
        });
    }
    for r in &mut resid {
        *r *= scaled.scale;
    }
    let dof = n.saturating_sub(spec.n_params()).max(1);
    Ok(FittedEts {
        spec,
        params,
        center: scaled.center,
        scale: scaled.scale,
        level,
        slope,
        season,
        init: (l0, b0),
        n,
        sse_z,
        sigma2_z: sse_z / dof as f64,
        residuals: resid,
    })
}

/// The Nelder–Mead settings of the ETS fits.
fn optimizer() -> NelderMead {
    NelderMead {
        max_evals: 1_500,
        restarts: 2,
        ftol: 1e-8,
        xtol: 1e-4,
        initial_step: 0.1,
    }
}

/// Start values of α scanned before the simplex search.
const ALPHA_SCAN: [f64; 5] = [0.02, 0.15, 0.4, 0.7, 0.95];

/// The best of a small scan over α (other parameters at their start values).
fn scan(spec: Spec, loss: &mut impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut start = spec.start(ALPHA_SCAN[0]);
    let mut best = f64::INFINITY;
    for a in ALPHA_SCAN {
        let x = spec.start(a);
        let v = loss(&x);
        if v < best {
            best = v;
            start = x;
        }
    }
    start
}

/// Minimise `loss` over the search box from `start`, with initial simplex
/// steps of `step` times the box widths.
fn search(
    spec: Spec,
    loss: &mut impl FnMut(&[f64]) -> f64,
    start: &[f64],
    step: f64,
    restarts: usize,
) -> Vec<f64> {
    let (lo, hi) = spec.bounds();
    let nm = NelderMead {
        initial_step: step,
        restarts,
        ..optimizer()
    };
    match nm.minimize(loss, start, &lo, &hi) {
        Ok(m) => m.x,
        // The box and start are built here and always valid.
        Err(_) => start.to_vec(),
    }
}

/// Non-seasonal: the initial level and slope are concentrated out of the loss.
fn fit_nonseasonal(
    spec: Spec,
    z: &[f64],
    restarts: usize,
) -> Result<(EtsParams, f64, f64), ForecastError> {
    let trend = spec.trend.has_slope();
    let (lh, bh) = initial_line(z, trend);
    let mut loss = |x: &[f64]| concentrated(z, &spec.decode(x), lh, bh, trend).0;
    let start = scan(spec, &mut loss);
    let x = search(spec, &mut loss, &start, 0.1, restarts);
    let params = spec.decode(&x);
    let (_, dl, db) = concentrated(z, &params, lh, bh, trend);
    Ok((params, lh + dl, bh + db))
}

/// Initial level and slope from a line through the first points (slope 0
/// without trend).
fn initial_line(z: &[f64], trend: bool) -> (f64, f64) {
    let k = z.len().min(10);
    if k == 0 {
        return (0.0, 0.0);
    }
    if !trend || k < 2 {
        return (z[0], 0.0);
    }
    // Least squares of z_t on (t + 1): the level at time 0 is the intercept.
    let (l, b) = ols_line(&z[..k]);
    (l, b)
}

/// Intercept and slope of `w_t ≈ a + b (t + 1)`.
fn ols_line(w: &[f64]) -> (f64, f64) {
    let k = w.len() as f64;
    if w.len() < 2 {
        return (w.first().copied().unwrap_or(0.0), 0.0);
    }
    let tm = (k + 1.0) / 2.0;
    let wm = w.iter().sum::<f64>() / k;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in w.iter().enumerate() {
        let dt = (i + 1) as f64 - tm;
        sxy += dt * (v - wm);
        sxx += dt * dt;
    }
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (wm - b * tm, b)
}

/// `x`, or 0 once it is below 1e-150: the responses to a unit initial state
/// decay geometrically, and left alone they reach subnormal numbers (and
/// their squares do sooner), which many CPUs compute a hundred times slower
/// (on an Intel Xeon, 87 % of an hourly year's MSTL fit went there: 25 ms
/// instead of 4). What is dropped is below 1e-300 of the sums it enters.
#[inline(always)]
fn flush_tiny(x: f64) -> f64 {
    if x.abs() < 1e-150 { 0.0 } else { x }
}

/// SSE of a non-seasonal model with the initial level and slope chosen by
/// least squares around `(lh, bh)`; returns `(SSE, δl, δb)`.
///
/// The one-step errors are `e⁰ₜ − δl·uₜ − δb·vₜ`, where `e⁰` are the errors
/// from `(lh, bh)` and `u`, `v` the one-step predictions of the homogeneous
/// recursions (y = 0) from a unit level and a unit slope; the three
/// recursions are independent and run in one loop.
fn concentrated(z: &[f64], p: &EtsParams, lh: f64, bh: f64, trend: bool) -> (f64, f64, f64) {
    let EtsParams {
        alpha: a,
        beta: bt,
        phi: ph,
        ..
    } = *p;
    let a1 = 1.0 - a;
    if !trend {
        let (mut l, mut u) = (lh, 1.0);
        let (mut see, mut seu, mut suu) = (0.0, 0.0, 0.0);
        for &y in z {
            let e = y - l;
            see += e * e;
            seu += e * u;
            suu += u * u;
            l = a1 * l + a * y;
            u = flush_tiny(u * a1);
        }
        let dl = if suu > 0.0 { seu / suu } else { 0.0 };
        let sse = (see - dl * seu).max(0.0);
        return (sse, dl, 0.0);
    }
    let (mut l, mut b) = (lh, bh);
    // Responses to a unit initial level (ul, ub) and a unit initial slope (vl, vb).
    let (mut ul, mut ub, mut vl, mut vb) = (1.0, 0.0, 0.0, 1.0);
    let (mut see, mut seu, mut sev, mut suu, mut suv, mut svv) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for &y in z {
        let pr = l + ph * b;
        let e = y - pr;
        // l' = pr + α e and b' = φ b + β e, written so the dependency chain is short.
        l = a1 * pr + a * y;
        b = (ph * b + bt * y) - bt * pr;
        let pu = ul + ph * ub;
        let pv = vl + ph * vb;
        ul = flush_tiny(a1 * pu);
        ub = flush_tiny(ph * ub - bt * pu);
        vl = flush_tiny(a1 * pv);
        vb = flush_tiny(ph * vb - bt * pv);
        see += e * e;
        seu += e * pu;
        sev += e * pv;
        suu += pu * pu;
        suv += pu * pv;
        svv += pv * pv;
    }
    let det = suu * svv - suv * suv;
    if det > 1e-12 * suu * svv && det.is_finite() {
        let dl = (seu * svv - sev * suv) / det;
        let db = (sev * suu - seu * suv) / det;
        let sse = (see - dl * seu - db * sev).max(0.0);
        (sse, dl, db)
    } else if suu > 0.0 {
        let dl = seu / suu;
        ((see - dl * seu).max(0.0), dl, 0.0)
    } else {
        (see, 0.0, 0.0)
    }
}

/// One pass of the recursions from `(l0, b0, season)`. `season` holds the
/// seasonal states by phase (`t mod m`; empty without seasonality) and is
/// updated in place to the final states; `resid` receives the one-step
/// errors. Returns `(SSE, final level, final slope)`.
fn run(
    z: &[f64],
    p: &EtsParams,
    l0: f64,
    b0: f64,
    season: &mut [f64],
    resid: Option<&mut [f64]>,
) -> (f64, f64, f64) {
    match resid {
        Some(r) => run_impl::<true>(z, p, l0, b0, season, r),
        None => run_impl::<false>(z, p, l0, b0, season, &mut []),
    }
}

#[inline(always)]
fn run_impl<const RESID: bool>(
    z: &[f64],
    p: &EtsParams,
    l0: f64,
    b0: f64,
    season: &mut [f64],
    resid: &mut [f64],
) -> (f64, f64, f64) {
    let EtsParams {
        alpha: a,
        beta: bt,
        gamma: g,
        phi: ph,
    } = *p;
    let a1 = 1.0 - a;
    let (mut l, mut b, mut sse) = (l0, b0, 0.0);
    if season.is_empty() {
        for (t, &y) in z.iter().enumerate() {
            let pr = l + ph * b;
            let e = y - pr;
            // l' = pr + α e, b' = φ b + β e, arranged so that the loop-carried
            // dependency chain goes through `pr` only once.
            l = a1 * pr + a * y;
            b = (ph * b + bt * y) - bt * pr;
            sse += e * e;
            if RESID {
                resid[t] = e;
            }
        }
    } else if bt == 0.0 && b == 0.0 {
        // No trend: the slope stays zero, so leave it out of the chain.
        let m = season.len();
        for (c, chunk) in z.chunks(m).enumerate() {
            for (j, (&y, s)) in chunk.iter().zip(season.iter_mut()).enumerate() {
                let ys = y - *s;
                let e = ys - l;
                l = a1 * l + a * ys;
                *s += g * e;
                sse += e * e;
                if RESID {
                    resid[c * m + j] = e;
                }
            }
        }
    } else {
        let m = season.len();
        for (c, chunk) in z.chunks(m).enumerate() {
            for (j, (&y, s)) in chunk.iter().zip(season.iter_mut()).enumerate() {
                let pr = l + ph * b;
                let ys = y - *s;
                let e = ys - pr;
                l = a1 * pr + a * ys;
                b = (ph * b + bt * ys) - bt * pr;
                *s += g * e;
                sse += e * e;
                if RESID {
                    resid[c * m + j] = e;
                }
            }
        }
    }
    (sse, l, b)
}

/// Seasonal models: the smoothing parameters by Nelder–Mead for fixed
/// initial states, then the initial states by least squares, alternating.
#[allow(clippy::type_complexity)]
fn fit_seasonal(spec: Spec, z: &[f64]) -> Result<(EtsParams, f64, f64, Vec<f64>), ForecastError> {
    let m = spec.m;
    let trend = spec.trend.has_slope();
    let (mut l0, mut b0, mut s0) = initial_seasonal(z, m, trend);
    let mut scratch = vec![0.0; m];
    let mut ls = LsWork::new(z.len(), m);
    let mut x = scan(spec, &mut |x: &[f64]| {
        scratch.copy_from_slice(&s0);
        run(z, &spec.decode(x), l0, b0, &mut scratch, None).0
    });
    // Least-squares initial states for the scanned start, then rounds of
    // (smoothing parameters | states) and (states | smoothing parameters).
    for round in 0..3 {
        if round > 0 {
            x = search(
                spec,
                &mut |x: &[f64]| {
                    scratch.copy_from_slice(&s0);
                    run(z, &spec.decode(x), l0, b0, &mut scratch, None).0
                },
                &x,
                if round == 1 { 0.1 } else { 0.05 },
                optimizer().restarts,
            );
        }
        let params = spec.decode(&x);
        scratch.copy_from_slice(&s0);
        let before = run(z, &params, l0, b0, &mut scratch, None).0;
        let Some((l1, b1, s1)) = ls.solve(z, &params, l0, b0, &s0, trend) else {
            continue;
        };
        scratch.copy_from_slice(&s1);
        let after = run(z, &params, l1, b1, &mut scratch, None).0;
        let better = after.is_finite() && after < before;
        let noticeably = better && before - after > 1e-3 * before;
        if better {
            (l0, b0, s0) = (l1, b1, s1);
        }
        // Another round only if the initial states moved the fit noticeably.
        if round > 0 && !noticeably {
            break;
        }
    }
    Ok((spec.decode(&x), l0, b0, s0))
}

/// Initial states of a seasonal model from a classical decomposition of the
/// first (up to four) cycles: a centred moving average of order `m` as
/// trend, the mean detrended value of each phase as seasonal state
/// (centred to sum to zero), and a line through the deseasonalised values
/// for level and slope.
fn initial_seasonal(z: &[f64], m: usize, trend: bool) -> (f64, f64, Vec<f64>) {
    let cycles = (z.len() / m).clamp(1, 4);
    let w = &z[..(cycles * m).min(z.len())];
    let mut season = vec![0.0; m];
    let mut count = vec![0usize; m];
    let mut ma = vec![0.0; w.len()];
    if let Some((a, b)) = centred_moving_average(w, m, &mut ma) {
        for t in a..=b {
            season[t % m] += w[t] - ma[t];
            count[t % m] += 1;
        }
    }
    for (s, c) in season.iter_mut().zip(&count) {
        if *c > 0 {
            *s /= *c as f64;
        }
    }
    let mean = season.iter().sum::<f64>() / m as f64;
    for s in &mut season {
        *s -= mean;
    }
    let deseason: Vec<f64> = w
        .iter()
        .enumerate()
        .map(|(t, v)| v - season[t % m])
        .collect();
    let (l0, b0) = if trend {
        ols_line(&deseason)
    } else {
        let k = deseason.len().min(m);
        (deseason[..k].iter().sum::<f64>() / k.max(1) as f64, 0.0)
    };
    (l0, b0, season)
}

/// Centred moving average of order `p` (2×p for even `p`) into `out`;
/// returns the first and last index where it is defined, or `None` when `x`
/// is too short. Values outside that range are left untouched.
pub(crate) fn centred_moving_average(
    x: &[f64],
    p: usize,
    out: &mut [f64],
) -> Option<(usize, usize)> {
    let n = x.len();
    let h = p / 2;
    if p == 0 || n < 2 * h + 1 || out.len() < n {
        return None;
    }
    let (a, b) = (h, n - 1 - h);
    let inv = 1.0 / p as f64;
    if p % 2 == 1 {
        let mut sum: f64 = x[..p].iter().sum();
        out[a] = sum * inv;
        for t in a + 1..=b {
            sum += x[t + h] - x[t - h - 1];
            out[t] = sum * inv;
        }
    } else {
        // Inner sum over t-h+1 ..= t+h-1 (p - 1 values) plus half weights at ±h.
        let mut sum: f64 = x[1..p].iter().sum();
        out[a] = (sum + 0.5 * (x[0] + x[p])) * inv;
        for t in a + 1..=b {
            sum += x[t + h - 1] - x[t - h];
            out[t] = (sum + 0.5 * (x[t - h] + x[t + h])) * inv;
        }
    }
    Some((a, b))
}

/// Buffers of the initial-state least squares, allocated once per fit.
struct LsWork {
    e: Vec<f64>,
    zeros: Vec<f64>,
    ul: Vec<f64>,
    ub: Vec<f64>,
    us: Vec<f64>,
    ring: Vec<f64>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

impl LsWork {
    fn new(n: usize, m: usize) -> Self {
        LsWork {
            e: vec![0.0; n],
            zeros: vec![0.0; n],
            ul: vec![0.0; n],
            ub: vec![0.0; n],
            us: vec![0.0; n],
            ring: vec![0.0; m],
        }
    }

    /// The one-step predictions of the homogeneous recursions (y = 0) from
    /// the state `(l, b, ring)` into `out`.
    fn response(&mut self, p: &EtsParams, l: f64, b: f64, which: usize) {
        let out = match which {
            0 => &mut self.ul,
            1 => &mut self.ub,
            _ => &mut self.us,
        };
        run(&self.zeros, p, l, b, &mut self.ring, Some(out));
        // The errors of y = 0 are minus the predictions.
        for v in out.iter_mut() {
            *v = -*v;
        }
    }

    /// Least-squares initial states for the smoothing parameters `p`, with
    /// the seasonal states summing to zero; `None` if the system is singular.
    ///
    /// The errors are affine in the initial states: `e(x₀ + δ) = e(x₀) − U δ`,
    /// with a column of `U` per state. The column of the seasonal state of
    /// phase `j` is the column of phase 0 delayed by `j` steps (nothing
    /// happens until that state is first used at time `j`, and the
    /// recursions are the same from then on), so the Gram matrix needs only
    /// three recursions and O(n·m) dot products.
    fn solve(
        &mut self,
        z: &[f64],
        p: &EtsParams,
        l0: f64,
        b0: f64,
        s0: &[f64],
        trend: bool,
    ) -> Option<(f64, f64, Vec<f64>)> {
        let n = z.len();
        let m = s0.len();
        self.ring.copy_from_slice(s0);
        run(z, p, l0, b0, &mut self.ring, Some(&mut self.e));
        self.ring.fill(0.0);
        self.response(p, 1.0, 0.0, 0);
        if trend {
            self.ring.fill(0.0);
            self.response(p, 0.0, 1.0, 1);
        }
        self.ring.fill(0.0);
        self.ring[0] = 1.0;
        self.response(p, 0.0, 0.0, 2);

        // Full Gram matrix G and U'e over the states [l, (b), s_0 .. s_{m-1}].
        let off = 1 + usize::from(trend);
        let k = off + m;
        let mut g = vec![0.0; k * k];
        let mut v = vec![0.0; k];
        let (e, ul, ub, us) = (&self.e, &self.ul, &self.ub, &self.us);
        let mut cols: Vec<&[f64]> = vec![ul];
        if trend {
            cols.push(ub);
        }
        for (i, ci) in cols.iter().enumerate() {
            v[i] = dot(e, ci);
            for (j, cj) in cols.iter().enumerate().skip(i) {
                g[i * k + j] = dot(ci, cj);
            }
            for j in 0..m {
                // Σ_{t ≥ j} c_i[t] u_s[t − j]
                g[i * k + off + j] = dot(&ci[j..], &us[..n - j]);
            }
        }
        for j in 0..m {
            v[off + j] = dot(&e[j..], &us[..n - j]);
        }
        // Seasonal block: G[i][j] (i ≤ j, L = j − i) = Σ_{q=0}^{n−1−j} u_s[q+L] u_s[q].
        for lag in 0..m {
            let full = dot(&us[lag..], &us[..n - lag]);
            let mut tail = 0.0;
            for i in 0..m - lag {
                let j = i + lag;
                if i > 0 {
                    // Drop the term q = n − j (= n − i − lag), no longer in range.
                    let q = n - j;
                    tail += us[q + lag] * us[q];
                }
                g[(off + i) * k + off + j] = full - tail;
            }
        }
        for i in 0..k {
            for j in 0..i {
                g[i * k + j] = g[j * k + i];
            }
        }
        // Reduce with s_{m-1} = −Σ_{j<m-1} s_j: the last seasonal column is
        // subtracted from the others and dropped.
        let r = k - 1;
        let last = k - 1;
        let mut gr = vec![0.0; r * r];
        let mut vr = vec![0.0; r];
        let is_season = |i: usize| i >= off;
        for i in 0..r {
            let ti = if is_season(i) { 1.0 } else { 0.0 };
            vr[i] = v[i] - ti * v[last];
            for j in 0..r {
                let tj = if is_season(j) { 1.0 } else { 0.0 };
                gr[i * r + j] = g[i * k + j] - tj * g[i * k + last] - ti * g[last * k + j]
                    + ti * tj * g[last * k + last];
            }
        }
        let delta = cholesky_solve(&mut gr, &mut vr, r)?;
        let l1 = l0 + delta[0];
        let b1 = if trend { b0 + delta[1] } else { b0 };
        let mut s1 = s0.to_vec();
        let mut sum = 0.0;
        for j in 0..m - 1 {
            s1[j] += delta[off + j];
            sum += delta[off + j];
        }
        s1[m - 1] -= sum;
        (l1.is_finite() && b1.is_finite() && s1.iter().all(|s| s.is_finite()))
            .then_some((l1, b1, s1))
    }
}

/// Solve `A x = b` for a symmetric positive semi-definite `A` (`r × r`, row
/// major) by Cholesky with a small ridge; `None` if it fails.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], r: usize) -> Option<Vec<f64>> {
    let max_diag = (0..r).map(|i| a[i * r + i]).fold(0.0, f64::max);
    if !(max_diag > 0.0 && max_diag.is_finite()) {
        return None;
    }
    let ridge = 1e-10 * max_diag;
    for i in 0..r {
        a[i * r + i] += ridge;
    }
    // In-place lower factor L (A = L Lᵀ).
    for j in 0..r {
        let mut d = a[j * r + j];
        for q in 0..j {
            d -= a[j * r + q] * a[j * r + q];
        }
        if d.is_nan() || d <= 0.0 {
            return None;
        }
        let d = d.sqrt();
        a[j * r + j] = d;
        for i in j + 1..r {
            let mut s = a[i * r + j];
            for q in 0..j {
                s -= a[i * r + q] * a[j * r + q];
            }
            a[i * r + j] = s / d;
        }
    }
    // Forward then backward substitution.
    for i in 0..r {
        let mut s = b[i];
        for q in 0..i {
            s -= a[i * r + q] * b[q];
        }
        b[i] = s / a[i * r + i];
    }
    for i in (0..r).rev() {
        let mut s = b[i];
        for q in i + 1..r {
            s -= a[q * r + i] * b[q];
        }
        b[i] = s / a[i * r + i];
    }
    b.iter().all(|x| x.is_finite()).then(|| b.to_vec())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_forecast_past_what_a_double_holds_is_a_failed_prediction() {
        // Valid values (all ≤ 1e306) with a steep trend: ten years ahead
        // the mean overflows. That is the model failing at a step, not a
        // bad input value.
        let y: Vec<f64> = (0..200).map(|t| 1e306 * (t as f64 / 200.0)).collect();
        let history = History::new(&y, &[]);
        let fitted = Ets::new(Trend::Additive, None).fit(&history).unwrap();
        for levels in [&[][..], &[80.0, 95.0][..]] {
            let e = fitted.predict(87_600, levels, None).unwrap_err();
            let ForecastError::PredictFailed { reason, .. } = &e else {
                panic!("{e:?}")
            };
            assert!(
                reason.contains("at step") && reason.contains("shorter horizon"),
                "{e}"
            );
        }
        // MSTL on the same values, with a daily cycle: the same error.
        let y: Vec<f64> = (0..24 * 10)
            .map(|t| 1e306 * (t as f64 / 240.0) * (1.0 + 0.1 * ((t % 24) as f64 / 24.0)) / 1.1)
            .collect();
        let history = History::new(&y, &[24]);
        let fitted = crate::forecast::Mstl::default().fit(&history).unwrap();
        let e = fitted.predict(87_600, &[], None).unwrap_err();
        assert!(matches!(e, ForecastError::PredictFailed { .. }), "{e:?}");
    }

    /// Share of `actual` inside the 80 % and 95 % intervals of `f`
    /// (every step has the same weight, so averaging over equal-length
    /// forecasts pools the steps).
    pub(crate) fn coverage_80_95(f: &Forecast, actual: &[f64]) -> (f64, f64) {
        let at = |level| {
            crate::forecast::coverage(actual, f.lower(level).unwrap(), f.upper(level).unwrap())
                .unwrap()
                .unwrap()
        };
        (at(80.0), at(95.0))
    }

    /// xorshift64* with Box–Muller normals: deterministic test noise.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
        }
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        pub(crate) fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// Simulate an additive-error ETS process.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn simulate(
        n: usize,
        p: EtsParams,
        l0: f64,
        b0: f64,
        s0: &[f64],
        sigma: f64,
        rng: &mut Rng,
    ) -> Vec<f64> {
        let (mut l, mut b) = (l0, b0);
        let mut s = s0.to_vec();
        let m = s.len();
        (0..n)
            .map(|t| {
                let st = if m > 0 { s[t % m] } else { 0.0 };
                let e = sigma * rng.normal();
                let y = l + p.phi * b + st + e;
                l = l + p.phi * b + p.alpha * e;
                b = p.phi * b + p.beta * e;
                if m > 0 {
                    s[t % m] += p.gamma * e;
                }
                y
            })
            .collect()
    }

    fn params(alpha: f64, beta: f64, gamma: f64, phi: f64) -> EtsParams {
        EtsParams {
            alpha,
            beta,
            gamma,
            phi,
        }
    }

    #[test]
    fn recovers_ets_aan() {
        let truth = params(0.3, 0.05, 0.0, 1.0);
        let y = simulate(2000, truth, 100.0, 0.5, &[], 1.0, &mut Rng::new(7));
        let f = Ets::new(Trend::Additive, None)
            .fit(&History::new(&y, &[]))
            .unwrap();
        let p = f.params();
        assert!((p.alpha - 0.3).abs() < 0.1, "{p:?}");
        assert!((p.beta - 0.05).abs() < 0.05, "{p:?}");
        assert!((f.sigma2() - 1.0).abs() < 0.15, "{}", f.sigma2());
    }

    #[test]
    fn recovers_ets_ana() {
        let truth = params(0.2, 0.0, 0.15, 1.0);
        let s0: Vec<f64> = (0..12)
            .map(|j| 5.0 * (std::f64::consts::TAU * j as f64 / 12.0).sin())
            .collect();
        let y = simulate(2000, truth, 50.0, 0.0, &s0, 1.0, &mut Rng::new(11));
        let f = Ets::new(Trend::None, Some(12))
            .fit(&History::new(&y, &[12]))
            .unwrap();
        let p = f.params();
        assert!((p.alpha - 0.2).abs() < 0.1, "{p:?}");
        assert!((p.gamma - 0.15).abs() < 0.1, "{p:?}");
        assert!((f.sigma2() - 1.0).abs() < 0.15, "{}", f.sigma2());
        // The summary names the parameters the model has, and only those.
        let summary = f.summary();
        assert_eq!(summary.model, "ets(A,N,A)");
        let names: Vec<&str> = summary.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "alpha",
                "gamma",
                "period",
                "sigma2",
                "log_likelihood",
                "aicc",
                "n_obs"
            ]
        );
        assert_eq!(summary.param("gamma"), Some(p.gamma));
        assert_eq!(summary.param("period"), Some(12.0));
        assert_eq!(summary.param("aicc"), Some(f.aicc()));
        assert_eq!(summary.param("n_obs"), Some(2000.0));
        let damped = Ets::new(Trend::Damped, None)
            .fit(&History::new(&y, &[]))
            .unwrap()
            .summary();
        let names: Vec<&str> = damped.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "alpha",
                "beta",
                "phi",
                "sigma2",
                "log_likelihood",
                "aicc",
                "n_obs"
            ]
        );
    }

    #[test]
    fn recovers_ets_ann_and_damped_trend() {
        let y = simulate(
            2000,
            params(0.6, 0.0, 0.0, 1.0),
            0.0,
            0.0,
            &[],
            2.0,
            &mut Rng::new(3),
        );
        let p = Ets::default().fit(&History::new(&y, &[])).unwrap().params();
        assert!((p.alpha - 0.6).abs() < 0.1, "{p:?}");
        let y = simulate(
            2000,
            params(0.4, 0.2, 0.0, 0.9),
            10.0,
            1.0,
            &[],
            1.0,
            &mut Rng::new(5),
        );
        let p = Ets::new(Trend::Damped, None)
            .fit(&History::new(&y, &[]))
            .unwrap()
            .params();
        assert!((p.alpha - 0.4).abs() < 0.1, "{p:?}");
        assert!((p.beta - 0.2).abs() < 0.1, "{p:?}");
        assert!((p.phi - 0.9).abs() < 0.08, "{p:?}");
    }

    #[test]
    fn pure_seasonal_series_are_forecast_exactly() {
        let pattern = [3.0, -1.0, 4.0, 1.0, -5.0, 9.0, -2.0];
        let m = pattern.len();
        let y: Vec<f64> = (0..10 * m).map(|t| 20.0 + pattern[t % m]).collect();
        let truth: Vec<f64> = (10 * m..13 * m).map(|t| 20.0 + pattern[t % m]).collect();
        for trend in [Trend::None, Trend::Additive, Trend::Damped] {
            let f = Ets::new(trend, Some(m))
                .fit(&History::new(&y, &[m]))
                .unwrap()
                .predict(3 * m, &[80.0], None)
                .unwrap();
            for (a, b) in f.mean().iter().zip(&truth) {
                assert!((a - b).abs() < 1e-6, "{trend:?}: {a} vs {b}");
            }
        }
        let f = AutoEts::default()
            .fit(&History::new(&y, &[m]))
            .unwrap()
            .predict(3 * m, &[], None)
            .unwrap();
        for (a, b) in f.mean().iter().zip(&truth) {
            assert!((a - b).abs() < 1e-6, "auto: {a} vs {b}");
        }
        // A seasonal pattern on a line (24 steps, like hours).
        let y: Vec<f64> = (0..24 * 8)
            .map(|t| 100.0 - 0.3 * t as f64 + ((t % 24) as f64).sqrt())
            .collect();
        let f = Ets::new(Trend::Additive, Some(24))
            .fit(&History::new(&y, &[24]))
            .unwrap()
            .predict(48, &[95.0], None)
            .unwrap();
        for (h, a) in f.mean().iter().enumerate() {
            let t = 24 * 8 + h;
            let b = 100.0 - 0.3 * t as f64 + ((t % 24) as f64).sqrt();
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn ann_intervals_cover_at_their_nominal_rate() {
        // Many simulated ETS(A,N,N) histories; score the 80 % and 95 %
        // intervals of the next 10 steps against the simulated future.
        let truth = params(0.3, 0.0, 0.0, 1.0);
        let (n, h, reps) = (200, 10, 300);
        let mut rng = Rng::new(2024);
        let (mut c80, mut c95) = (0.0, 0.0);
        for _ in 0..reps {
            let y = simulate(n + h, truth, 10.0, 0.0, &[], 1.0, &mut rng);
            let f = Ets::default()
                .fit(&History::new(&y[..n], &[]))
                .unwrap()
                .predict(h, &[80.0, 95.0], None)
                .unwrap();
            let (a, b) = coverage_80_95(&f, &y[n..]);
            c80 += a / reps as f64;
            c95 += b / reps as f64;
        }
        assert!((0.75..=0.85).contains(&c80), "80 % coverage {c80}");
        assert!((0.92..=0.98).contains(&c95), "95 % coverage {c95}");
    }

    #[test]
    fn interval_widths_follow_the_class_one_formula() {
        let y = simulate(
            300,
            params(0.5, 0.1, 0.2, 1.0),
            0.0,
            0.0,
            &[1.0, -1.0, 0.5, -0.5],
            1.0,
            &mut Rng::new(9),
        );
        let fitted = Ets::new(Trend::Additive, Some(4))
            .fit(&History::new(&y, &[4]))
            .unwrap();
        let p = fitted.params();
        let f = fitted.predict(9, &[95.0], None).unwrap();
        let z = 1.959_963_985;
        let mut acc = 1.0;
        for h in 1..=9 {
            let half = f.upper(95.0).unwrap()[h - 1] - f.mean()[h - 1];
            let expect = z * (fitted.sigma2() * acc).sqrt();
            assert!((half - expect).abs() < 1e-6 * expect, "h={h}");
            let c = p.alpha + p.beta * h as f64 + if h % 4 == 0 { p.gamma } else { 0.0 };
            acc += c * c;
        }
    }

    #[test]
    fn least_squares_initial_states_are_optimal() {
        let y = simulate(
            150,
            params(0.3, 0.1, 0.2, 0.9),
            3.0,
            0.2,
            &[2.0, -1.0, 0.5, -1.5, 0.0],
            1.0,
            &mut Rng::new(1),
        );
        let spec = Spec {
            trend: Trend::Damped,
            m: 5,
        };
        let p = spec.decode(&[0.3, 0.3, 0.25, 0.9]);
        let (l0, b0, s0) = initial_seasonal(&y, 5, true);
        let mut ls = LsWork::new(y.len(), 5);
        let (l1, b1, s1) = ls.solve(&y, &p, l0, b0, &s0, true).unwrap();
        assert!(s1.iter().sum::<f64>().abs() < 1e-9);
        let sse = |l: f64, b: f64, s: &[f64]| {
            let mut ring = s.to_vec();
            run(&y, &p, l, b, &mut ring, None).0
        };
        let best = sse(l1, b1, &s1);
        assert!(best <= sse(l0, b0, &s0));
        let eps = 1e-3;
        for k in 0..7 {
            for sign in [-1.0, 1.0] {
                let (mut l, mut b, mut s) = (l1, b1, s1.clone());
                match k {
                    0 => l += sign * eps,
                    1 => b += sign * eps,
                    // Move two seasonal states in opposite directions: the sum stays zero.
                    _ => {
                        s[k - 2] += sign * eps;
                        s[(k - 1) % 5] -= sign * eps;
                    }
                }
                assert!(sse(l, b, &s) >= best - 1e-9, "state {k}");
            }
        }
    }

    #[test]
    fn constant_series_give_flat_forecasts() {
        let y = [42.5; 60];
        for model in [
            Ets::new(Trend::None, None),
            Ets::new(Trend::Additive, None),
            Ets::new(Trend::Damped, Some(12)),
        ] {
            let fitted = model.fit(&History::new(&y, &[12])).unwrap();
            let f = fitted.predict(30, &[80.0, 95.0], None).unwrap();
            assert!(
                f.mean().iter().all(|v| (v - 42.5).abs() < 1e-9),
                "{model:?}"
            );
            assert!(
                f.upper(95.0)
                    .unwrap()
                    .iter()
                    .all(|v| (v - 42.5).abs() < 1e-9)
            );
            assert!(fitted.residuals().iter().all(|r| r.abs() < 1e-9));
        }
        let auto = AutoEts::default().fit(&History::new(&y, &[12])).unwrap();
        assert_eq!(auto.name(), "ets(A,N,N)");
        assert!(auto.aicc().is_finite());
    }

    #[test]
    fn short_and_bad_inputs_are_refused() {
        let y = [1.0, 2.0, 3.0];
        assert!(matches!(
            Ets::default().fit(&History::new(&y, &[])),
            Err(ForecastError::TooShort {
                needed: 5,
                got: 3,
                ..
            })
        ));
        assert!(matches!(
            AutoEts::default().fit(&History::new(&[], &[])),
            Err(ForecastError::TooShort { got: 0, .. })
        ));
        let y30: Vec<f64> = (0..30).map(f64::from).collect();
        assert!(matches!(
            Ets::new(Trend::None, Some(24)).fit(&History::new(&y30, &[])),
            Err(ForecastError::TooShort { needed: 48, .. })
        ));
        assert!(
            Ets::new(Trend::None, Some(1))
                .fit(&History::new(&y30, &[]))
                .is_err()
        );
        // AutoEts falls back to non-seasonal models when two cycles do not fit.
        let f = AutoEts::default().fit(&History::new(&y30, &[24])).unwrap();
        assert_eq!(f.model().seasonal, None);
        let bad_period = AutoEts {
            period: Some(1),
            seasonal: true,
        };
        assert!(matches!(
            bad_period.fit(&History::new(&y30, &[])),
            Err(ForecastError::InvalidArgument(_))
        ));
        // Boxed as `DynFit`, as `auto` and backtests hold them.
        let models: Vec<Box<dyn crate::DynFit>> =
            vec![Box::new(Ets::default()), Box::new(AutoEts::default())];
        for m in &models {
            let f = m.fit_dyn(&History::new(&y30, &[7])).unwrap();
            assert_eq!(f.predict(3, &[90.0], None).unwrap().horizon(), 3);
        }
        let mut bad = y30.clone();
        bad[4] = f64::NAN;
        assert!(matches!(
            Ets::default().fit(&History::new(&bad, &[])),
            Err(ForecastError::NonFinite { index: 4, .. })
        ));
        let fitted = Ets::default().fit(&History::new(&y30, &[])).unwrap();
        assert!(fitted.predict(usize::MAX, &[], None).is_err());
        assert!(fitted.predict(3, &[100.0], None).is_err());
        assert!(fitted.predict(0, &[80.0], None).is_err());
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let y: Vec<f64> = (0..50)
            .map(|t| if t % 2 == 0 { 1e300 } else { -1e300 })
            .collect();
        let fitted = AutoEts::default().fit(&History::new(&y, &[2])).unwrap();
        assert!(fitted.aicc().is_finite());
        // The forecast itself is finite or a clean error.
        if let Ok(f) = fitted.predict(4, &[95.0], None) {
            assert!(f.mean().iter().all(|v| v.is_finite()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn never_panics_and_stays_finite(
            y in prop::collection::vec(-1e6..1e6f64, 0..400),
            m in 2usize..30,
            h in 1usize..60,
            trend in 0usize..3,
        ) {
            let trend = [Trend::None, Trend::Additive, Trend::Damped][trend];
            let periods = [m];
            let history = History::new(&y, &periods);
            let fits = [
                Ets::new(trend, None).fit(&history),
                Ets::new(trend, Some(m)).fit(&history),
                AutoEts::default().fit(&history),
            ];
            for fitted in fits {
                match fitted {
                    Ok(f) => {
                        prop_assert!(f.residuals().iter().all(|r| r.is_finite()));
                        prop_assert_eq!(f.residuals().len(), y.len());
                        let fc = f.predict(h, &[80.0, 95.0], None);
                        prop_assert!(fc.is_ok(), "{:?}", fc);
                        if let Ok(fc) = fc {
                            prop_assert!(fc.mean().iter().all(|v| v.is_finite()));
                        }
                    }
                    Err(e) => prop_assert!(
                        matches!(e, ForecastError::TooShort { .. }),
                        "{e}"
                    ),
                }
            }
        }
    }
}
