//! Multiple seasonal decomposition with ETS on the deseasonalised series:
//! an MSTL-style model for hourly data with daily and weekly cycles,
//! documented on [`Mstl`].

use super::ets::standardize;
use super::intervals::check_forecast_path;
use super::model::FittedSummary;
use super::stl::{Spans, Stl, StlWork, end_weight_square_sum};
use super::{
    Ets, Exog, Fit, FittedEts, Forecast, ForecastError, History, Predict, PredictionInterval,
    Trend, normal_intervals, validate_levels,
};

/// An MSTL-style model: seasonal components for several periods, ETS on the
/// deseasonalised series.
///
/// # Method
///
/// As in MSTL (Bandara, Hyndman & Bergmeir, 2021), each seasonal component is
/// estimated in turn, shortest period first, from the series minus the other
/// components' current estimates, and the whole sweep is iterated (2 times by
/// default). The estimate of one component with period `p` replaces STL's
/// loess smoothers by moving averages, which are O(n) with a small constant:
///
/// 1. **trend**: a centred moving average of order `p` (2×`p` for even `p`),
///    defined away from the ends (half a period at each end);
/// 2. **cycle-subseries smoothing**: for each phase (`t mod p`), the mean of
///    the detrended values of that phase over a window of `k` consecutive
///    cycles, centred on `t` and shifted inwards near the ends — so the
///    component's last cycle, the one continued into the future, is the mean
///    of the last `k` cycles (this is STL's cycle-subseries loess with a
///    rectangular kernel of degree 0);
/// 3. **low-pass removal**: the centred moving average of order `p` of the
///    result is subtracted (STL's low-pass step), so the component has no
///    level of its own; near the ends the nearest defined value is used.
///
/// Why this is enough: the forecast only uses the last cycle of each
/// component, continued periodically (a seasonal naive of the component).
/// At the end of the series STL's cycle-subseries loess of degree 0 is a
/// weighted mean of the last cycles of each phase; the mean of the last `k`
/// cycles is the same estimator with a rectangular kernel, and moving
/// averages keep fit + forecast of a year of hourly data to about 10 ms. A
/// moving average over a whole number of cycles also removes a periodic
/// component *exactly*, and the default windows are whole multiples of the
/// ratio between nested periods (14 days for 24 inside 168): a sum of
/// periodic components is decomposed exactly, and its forecast is exact.
///
/// The default windows are 7 + 4·i cycles for the i-th period (11, 15, … as
/// the MSTL paper's seasonal windows), rounded up to a multiple of the ratio
/// of any longer period that is a multiple of it.
///
/// **Loess smoother** ([`Mstl::loess`], [`Smoother::Loess`]): each
/// component is instead estimated by [`Stl`], as in the MSTL paper and its
/// implementations (R's `mstl`, statsmodels, statsforecast): tricube-weighted
/// cycle-subseries windows (11 and 15 cycles by default, odd, not rounded to
/// nested cycles), STL's low-pass filter and a loess trend that reaches the
/// ends of the series. The most recent cycles count most and the last half
/// cycle of data is used (moving averages leave it out), so a seasonal
/// shape that drifts — summer demand as the days shorten — is followed
/// sooner; a periodic pattern is no longer decomposed exactly (within about
/// 1 % of its range). On Taylor's half-hourly demand its forecasts score
/// like statsforecast's MSTL (MASE 0.137, see the crate's README; 0.132
/// with the pooled sub-cycles below, 0.131 with the smoothed long cycles)
/// at about 6 ms instead of 2 s; a year of hourly data takes about 11 ms.
/// The
/// estimation variance of a component's last cycle (for the intervals
/// below) is the per-phase variance over the last window times the sum of
/// the squared tricube weights of the end estimate.
///
/// Periods with fewer than two whole cycles of history are left out (the
/// fitted model's [`periods`](FittedMstl::periods) says which were used); a
/// history shorter than two cycles of the shortest period is
/// [`TooShort`](ForecastError::TooShort). Without any period the model is
/// ETS on the series.
///
/// The deseasonalised series (trend + remainder) is forecast by a
/// non-seasonal ETS model — (A,N,N), (A,Ad,N) or (A,A,N) — and each seasonal
/// component's last cycle is added back. The ETS models are fitted on the
/// recent part of the deseasonalised series (the last 2016 observations
/// plus one longest cycle: twelve weeks of hourly data), and the one kept
/// is the one whose in-sample forecasts 1 to `2·p` steps ahead (`p` the
/// shortest period, within 8 to 336 steps) have the least mean squared
/// error — a trended model only if it beats ETS(A,N,N) by 20 %. Not AICc:
/// AICc scores one-step forecasts, and on hourly demand it picks a damped
/// trend that extrapolates the last hours' slope into the next two days
/// (on a year of synthetic hourly demand, MASE 1.29 against 0.93 with the
/// flat level chosen here).
///
/// # Pooled sub-cycles
///
/// A long period that is a whole number `k` of a shorter one (a week of
/// seven days) is forecast by its component's last cycle, whose `k`
/// sub-cycles (days) are each estimated from a few weeks of data. Days of
/// the same kind — Tuesday, Wednesday and Thursday in most demand series —
/// have the same shape up to that estimation noise, and averaging them
/// halves or thirds it. So, with [`pool_subcycles`](Mstl::pool_subcycles)
/// (the default), the sub-cycles of the last cycle (counted from the
/// series' start: the first `q` observations are sub-cycle 0, so start the
/// history at a midnight for them to be calendar days, as the example
/// server does) are grouped
/// by complete linkage: two groups merge while the root-mean-square
/// difference of every pair of their sub-cycles is below twice the
/// root-mean-square one-step error of the deseasonalised series' model
/// (smaller than what one step's noise can tell apart), and each sub-cycle
/// is forecast by the mean of its group. Days that differ more (Monday's
/// morning, Friday's evening, the weekend) keep their own shape; a series
/// without noise pools only identical sub-cycles, so pure seasonal series
/// are still forecast exactly. [`FittedMstl::subcycle_groups`] says which
/// were pooled. Periods of more than 64 sub-cycles are not pooled.
///
/// On Taylor's half-hourly demand it pools Tuesday to Thursday (they differ
/// by about 100 MW, every other pair of days by 1000 MW or more) and lowers
/// `mstl_loess`'s MASE in the comparison's backtest (8 origins × 48 steps,
/// see the crate's README) from 0.137 to 0.132, and on the two 8-day
/// windows before it from 0.161 to 0.158 and from 0.137 to 0.135. On the
/// synthetic hourly year, whose weekdays differ only by their weather, the
/// groups change from one origin to the next and the MASE is 0.3–1 % higher
/// (0.612 to 0.614 for the moving averages on the comparison's window). The
/// in-sample errors that calibrate the intervals (below) are those of the
/// unpooled cycles.
///
/// # Smoothed long cycles
///
/// Every component but the shortest period's is a deviation from the
/// shortest cycle's shape (a weekday's from the common day), each phase of
/// its last cycle the mean of a few noisy cycles, while the deviation itself
/// changes little from one phase to the next. So, with
/// [`smooth_long_cycles`](Mstl::smooth_long_cycles) (the default), the
/// forecast cycle `c` of each such component (after pooling) becomes
/// `c + w (S c − c)`, where `S` is the circular binomial filter
/// `(c[j−1] + 2 c[j] + c[j+1]) / 4` and `w = min(1, ½ v / mean (S c − c)²)`,
/// `v` being the estimation variance of one phase of the cycle (as for the
/// intervals below). That `w` minimises the expected squared error of the
/// blend for independent noise of variance `v` per phase: pure noise gets
/// the whole filter, a pattern whose phase-to-phase changes dwarf its noise
/// is left nearly as it is, and a series without noise (`v` = 0) is not
/// smoothed, so pure seasonal series are still forecast exactly. The
/// shortest period's cycle holds the sharp features of the day and is never
/// smoothed. [`FittedMstl::cycle_smoothing`] gives each `w`.
///
/// On Taylor's half-hourly demand, `w` is 1 for the weekly component (its
/// phases' estimation noise is about nine times its mean squared
/// phase-to-phase change) and `mstl_loess`'s MASE over the 40 days before
/// the data's end (five 8-day windows, 48-step forecasts from each
/// midnight) falls from 0.1471 to 0.1462, lower on all five windows
/// (0.1464 / 0.1640 / 0.1345 / 0.1584 / 0.1322 to 0.1461 / 0.1624 /
/// 0.1337 / 0.1579 / 0.1311, the last being the comparison's); on the
/// synthetic hourly year the moving averages' MASE over the same 40 origins
/// is unchanged (0.7461 to 0.7457).
///
/// # Intervals
///
/// The ETS analytic variance of the deseasonalised series ignores that the
/// seasonal components are estimated, and the ETS model chosen is only an
/// approximation of the remainder's dynamics (on a year of synthetic hourly
/// demand its intervals covered 88–92 % at 80 %). The intervals are
/// therefore calibrated on in-sample errors of the whole procedure: for each
/// step `h`, over the last (up to 2016) origins `t`, the error of the
/// forecast made at `t` — the ETS `h`-step forecast from the ETS state at
/// `t` plus each component's last cycle before `t` — against `yₜ₊ₕ`. The
/// forecast variance at `h` is their mean square plus twice the estimation
/// variance `vᵢ` of each component's last cycle (`vᵢ` = per phase, the
/// sample variance of the detrended values in the last window divided by
/// the window's length, averaged over phases): the in-sample components are
/// centred on the data and absorb about `vᵢ` of the errors they are
/// compared with, and the forecast's components add about `vᵢ` of their
/// own. The intervals are normal. Steps with fewer than 30 in-sample errors
/// continue the last calibrated width with the growth of the ETS analytic
/// standard deviation; a history too short to calibrate falls back on the
/// ETS analytic intervals. What the history does not show (a holiday in the
/// horizon, a change of regime) is not included.
///
/// Measured coverage: synthetic hourly demand (one-year fits, 120 origins
/// over a second year, 48-step horizons, two seeds) 82–86 % at 80 % and
/// 93.6–94.2 % at 95 %; simulated daily + weekly patterns on an ETS(A,N,N)
/// level (the unit test) 82 % and 95 %.
///
/// ```
/// use spe_core::{Fit, History, Mstl, Predict};
///
/// // Four weeks of hourly data: a daily and a weekly cycle on a level.
/// let y: Vec<f64> = (0..24 * 7 * 4)
///     .map(|t| 500.0 + 40.0 * ((t % 24) as f64 - 12.0).abs() + 25.0 * ((t / 24) % 7 == 6) as u8 as f64)
///     .collect();
/// let fitted = Mstl::new(Some(vec![24, 168])).fit(&History::new(&y, &[])).unwrap();
/// let f = fitted.predict(48, &[95.0], None).unwrap();
/// assert!(f.model().starts_with("mstl(24,168)"));
/// // The next hour is hour 0 of the first day of a week.
/// assert!((f.mean()[0] - (500.0 + 40.0 * 12.0)).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mstl {
    /// Seasonal periods in steps; `None` takes the history's periods.
    /// Periods with fewer than two whole cycles of history are left out.
    pub periods: Option<Vec<usize>>,
    /// Cycles in each period's cycle-subseries window (same order as
    /// `periods`); `None` for the defaults described in the module
    /// documentation.
    pub windows: Option<Vec<usize>>,
    /// Sweeps over the components (at least 1; 2 by default).
    pub iterations: usize,
    /// With `windows: None`, use the short default windows (see
    /// [`Mstl::short`]) instead of the long ones.
    pub short_windows: bool,
    /// How each component is estimated: moving averages (the default) or
    /// STL's loess (see [`Mstl::loess`]).
    pub smoother: Smoother,
    /// Forecast a long period's component with its similar sub-cycles
    /// pooled (see *Pooled sub-cycles* above); `true` by default.
    pub pool_subcycles: bool,
    /// Smooth the forecast cycle of every period but the shortest across
    /// adjacent phases, as far as its estimation noise warrants (see
    /// *Smoothed long cycles* above); `true` by default.
    pub smooth_long_cycles: bool,
}

/// How [`Mstl`] estimates each seasonal component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Smoother {
    /// Moving averages: a centred trend and rectangular cycle-subseries
    /// windows (the three steps in [`Mstl`]'s documentation). Exact on sums
    /// of periodic components; every cycle in a window counts the same.
    #[default]
    MovingAverage,
    /// [`Stl`]'s loess: tricube-weighted cycle-subseries windows, so the
    /// most recent cycles count most, and a loess trend that reaches the
    /// ends of the series. Follows a drifting seasonal shape sooner.
    Loess,
}

impl Default for Mstl {
    fn default() -> Self {
        Mstl {
            periods: None,
            windows: None,
            iterations: 2,
            short_windows: false,
            smoother: Smoother::MovingAverage,
            pool_subcycles: true,
            smooth_long_cycles: true,
        }
    }
}

impl Mstl {
    /// A model with these periods (or the history's, if `None`) and default
    /// windows and iterations.
    ///
    /// ```
    /// use spe_core::Mstl;
    ///
    /// assert_eq!(Mstl::new(Some(vec![24, 168])).iterations, 2);
    /// ```
    pub fn new(periods: Option<Vec<usize>>) -> Self {
        Mstl {
            periods,
            ..Mstl::default()
        }
    }

    /// The history's periods with **short** windows: 3 cycles, rounded up
    /// to a multiple of the ratio of any longer period that nests the period
    /// (7 days and 3 weeks for hourly data with periods 24 and 168). The
    /// components follow a changing seasonal shape faster than with the
    /// long default windows, at the price of noisier estimates; `auto`
    /// tries both. Its name is `mstl_short`.
    ///
    /// ```
    /// use spe_core::{Fit, History, Mstl};
    ///
    /// let y: Vec<f64> = (0..24 * 28).map(|t| (t % 24) as f64 + ((t / 24) % 7) as f64).collect();
    /// let fitted = Mstl::short().fit(&History::new(&y, &[24, 168])).unwrap();
    /// assert_eq!(fitted.windows(), &[7, 3]);
    /// assert_eq!(Fit::name(&Mstl::short()), "mstl_short");
    /// ```
    pub fn short() -> Self {
        Mstl {
            short_windows: true,
            ..Mstl::default()
        }
    }

    /// The history's periods, each component estimated by [`Stl`] (loess,
    /// as in the MSTL paper and its implementations in R, statsmodels and
    /// statsforecast) with the paper's seasonal windows, 7 + 4·i cycles for
    /// the i-th period (11 and 15). Its name is `mstl_loess`.
    ///
    /// ```
    /// use spe_core::{Fit, History, Mstl};
    ///
    /// let y: Vec<f64> = (0..24 * 28).map(|t| (t % 24) as f64 + ((t / 24) % 7) as f64).collect();
    /// let fitted = Mstl::loess().fit(&History::new(&y, &[24, 168])).unwrap();
    /// assert_eq!(fitted.windows(), &[11, 15]);
    /// assert_eq!(Fit::name(&Mstl::loess()), "mstl_loess");
    /// let f = spe_core::Predict::predict(&fitted, 24, &[80.0], None).unwrap();
    /// assert!(f.model().starts_with("mstl_loess(24,168)+ets("));
    /// ```
    pub fn loess() -> Self {
        Mstl {
            smoother: Smoother::Loess,
            ..Mstl::default()
        }
    }
}

/// Default cycle-subseries window of the `i`-th of the sorted `periods`
/// (long, or short with `short`).
fn default_window(periods: &[usize], i: usize, short: bool, smoother: Smoother) -> usize {
    let p = periods[i];
    let base = if short { 3 } else { 7 + 4 * (i + 1) };
    if smoother == Smoother::Loess {
        // Tricube weights fade: no whole number of nested cycles to keep.
        return base | 1;
    }
    // Least common multiple of the ratios of the longer periods nesting p.
    let mut r = 1usize;
    for &q in &periods[i + 1..] {
        if q % p == 0 {
            let ratio = q / p;
            r = lcm(r, ratio).unwrap_or(r);
        }
    }
    if r > base { r } else { base.div_ceil(r) * r }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: usize, b: usize) -> Option<usize> {
    (a / gcd(a, b).max(1)).checked_mul(b)
}

/// A fitted [`Mstl`]: the seasonal components, the deseasonalised series
/// and the ETS model fitted on it.
///
/// ```
/// use spe_core::{Fit, History, Mstl, Predict};
///
/// let y: Vec<f64> = (0..24 * 30).map(|t| 10.0 + ((t % 24) as f64).sqrt()).collect();
/// let fitted = Mstl::default().fit(&History::new(&y, &[24, 168])).unwrap();
/// assert_eq!(fitted.periods(), &[24, 168]);
/// assert_eq!(fitted.seasonal(0).unwrap().len(), y.len());
/// assert_eq!(fitted.residuals().len(), y.len());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FittedMstl {
    periods: Vec<usize>,
    windows: Vec<usize>,
    seasonals: Vec<Vec<f64>>,
    adjusted: Vec<f64>,
    ets: FittedEts,
    /// Level and slope of the ETS model after each of the last
    /// `calib_origins` observations (the calibration origins).
    calib_level: Vec<f64>,
    calib_slope: Vec<f64>,
    /// Estimation variance of the components' last cycles, summed, in
    /// units of `unit²`.
    seasonal_var: f64,
    /// The scale of the series (half its range, or 1).
    unit: f64,
    /// One-step errors of the ETS model over the whole adjusted series.
    residuals: Vec<f64>,
    /// How the components were estimated (names the forecasts).
    smoother: Smoother,
    /// Each component's cycle continued by the forecast: its last cycle,
    /// with similar sub-cycles pooled, then smoothed (every period but the
    /// shortest; see [`FittedMstl::cycle_smoothing`]).
    cycles: Vec<Vec<f64>>,
    /// For each component, the group of each of its sub-cycles if it was
    /// pooled (see [`FittedMstl::subcycle_groups`]).
    groups: Vec<Option<Vec<usize>>>,
    /// For each component, the weight of its smoothed forecast cycle (see
    /// [`FittedMstl::cycle_smoothing`]).
    smoothing: Vec<f64>,
}

impl FittedMstl {
    /// The periods decomposed, shortest first.
    ///
    /// ```
    /// use spe_core::{Fit, History, Mstl};
    ///
    /// // 100 points: two cycles of 24 fit, two of 168 do not.
    /// let y: Vec<f64> = (0..100).map(|t| (t % 24) as f64).collect();
    /// let fitted = Mstl::new(Some(vec![168, 24])).fit(&History::new(&y, &[])).unwrap();
    /// assert_eq!(fitted.periods(), &[24]);
    /// ```
    pub fn periods(&self) -> &[usize] {
        &self.periods
    }

    /// The cycle-subseries windows used, one per period.
    ///
    /// ```
    /// use spe_core::{Fit, History, Mstl};
    ///
    /// let y: Vec<f64> = (0..24 * 21).map(|t| (t % 24) as f64).collect();
    /// let fitted = Mstl::default().fit(&History::new(&y, &[24, 168])).unwrap();
    /// assert_eq!(fitted.windows(), &[14, 15]);
    /// ```
    pub fn windows(&self) -> &[usize] {
        &self.windows
    }

    /// The seasonal component of the `i`-th period, one value per observation.
    ///
    /// ```
    /// use spe_core::{Fit, History, Mstl};
    ///
    /// let y: Vec<f64> = (0..60).map(|t| [1.0, 5.0, 3.0][t % 3]).collect();
    /// let fitted = Mstl::default().fit(&History::new(&y, &[3])).unwrap();
    /// assert!((fitted.seasonal(0).unwrap()[1] - 2.0).abs() < 1e-9);
    /// assert!(fitted.seasonal(1).is_none());
    /// ```
    pub fn seasonal(&self, i: usize) -> Option<&[f64]> {
        self.seasonals.get(i).map(Vec::as_slice)
    }

    /// The deseasonalised series (trend + remainder) the ETS model was fitted on.
    ///
    /// ```
    /// use spe_core::{Fit, History, Mstl};
    ///
    /// let y: Vec<f64> = (0..60).map(|t| [1.0, 5.0, 3.0][t % 3]).collect();
    /// let fitted = Mstl::default().fit(&History::new(&y, &[3])).unwrap();
    /// assert!(fitted.adjusted().iter().all(|v| (v - 3.0).abs() < 1e-9));
    /// ```
    pub fn adjusted(&self) -> &[f64] {
        &self.adjusted
    }

    /// For the `i`-th period, the group of each of its sub-cycles if similar
    /// ones were pooled for the forecast (see *Pooled sub-cycles* on
    /// [`Mstl`]): sub-cycle `d` covers the observations `t` with
    /// `(t / q) mod k = d`, `q` the shorter period and `k` their ratio, and
    /// each group is numbered by its first sub-cycle. `None` if nothing was
    /// pooled.
    ///
    /// ```
    /// use spe_core::{Fit, History, Mstl};
    ///
    /// // Six weeks of hourly data with a weekly cycle: weekdays 0-4 alike,
    /// // days 5 and 6 apart (plus a little noise).
    /// let y: Vec<f64> = (0..24 * 7 * 6)
    ///     .map(|t| {
    ///         let day = (t / 24) % 7;
    ///         let weekend = if day >= 5 { 30.0 * (day as f64 - 4.0) } else { 0.0 };
    ///         100.0 + (t % 24) as f64 + weekend + [0.0, 0.3, -0.3][t % 3]
    ///     })
    ///     .collect();
    /// let fitted = Mstl::default().fit(&History::new(&y, &[24, 168])).unwrap();
    /// assert_eq!(fitted.subcycle_groups(1), Some(&[0, 0, 0, 0, 0, 5, 6][..]));
    /// assert_eq!(fitted.subcycle_groups(0), None);
    /// ```
    pub fn subcycle_groups(&self, i: usize) -> Option<&[usize]> {
        self.groups.get(i)?.as_deref()
    }

    /// The weight, from 0 to 1, of the smoothed forecast cycle of the
    /// `i`-th component (see *Smoothed long cycles* on [`Mstl`]): 0 for the
    /// shortest period, without estimation noise, or with
    /// [`smooth_long_cycles`](Mstl::smooth_long_cycles) off; `None` past the
    /// periods used.
    ///
    /// ```
    /// use spe_core::{Fit, History, Mstl};
    ///
    /// // A periodic daily + weekly pattern: nothing to smooth.
    /// let y: Vec<f64> = (0..24 * 7 * 4)
    ///     .map(|t| (t % 24) as f64 + 5.0 * ((t / 24) % 7 == 6) as u8 as f64)
    ///     .collect();
    /// let fitted = Mstl::default().fit(&History::new(&y, &[24, 168])).unwrap();
    /// assert_eq!(fitted.cycle_smoothing(0), Some(0.0));
    /// assert!(fitted.cycle_smoothing(1).unwrap() < 1e-9);
    /// assert_eq!(fitted.cycle_smoothing(2), None);
    /// ```
    pub fn cycle_smoothing(&self, i: usize) -> Option<f64> {
        self.smoothing.get(i).copied()
    }

    /// The ETS model of the deseasonalised series.
    ///
    /// ```
    /// use spe_core::{Fit, History, Mstl};
    ///
    /// let y: Vec<f64> = (0..60).map(|t| [1.0, 5.0, 3.0][t % 3] + t as f64).collect();
    /// let fitted = Mstl::default().fit(&History::new(&y, &[3])).unwrap();
    /// assert_eq!(fitted.ets().model().seasonal, None);
    /// ```
    pub fn ets(&self) -> &FittedEts {
        &self.ets
    }

    /// Calibrated normal intervals (see [`Mstl`]): at each
    /// step `h` with at least [`MIN_CALIBRATION_ERRORS`] in-sample `h`-step
    /// errors, `z·σₕ` with `σₕ²` their mean square plus twice the
    /// components' estimation variance; beyond, the last such half-width grown like the ETS
    /// analytic standard deviation; without enough history, the ETS
    /// analytic intervals.
    fn intervals(
        &self,
        mean: &[f64],
        sd: &[f64],
        levels: &[f64],
    ) -> Result<Vec<PredictionInterval>, ForecastError> {
        if levels.is_empty() {
            // A point forecast (as `auto`'s backtest asks for): the
            // calibration below is most of a forecast's cost.
            return Ok(Vec::new());
        }
        let origins = self.calib_level.len();
        let first = self.adjusted.len() - origins;
        let phi = self.ets.phi();
        // Twice the components' estimation variance: once for the in-sample
        // errors' optimism, once for the forecast's own estimation error.
        // Computed in units of the series' scale, so squares never overflow.
        let unit = self.unit;
        let extra = 2.0 * self.seasonal_var;
        let mut sigma = Vec::with_capacity(sd.len());
        let (mut phi_pow, mut phi_sum) = (1.0, 0.0);
        let mut last: Option<(f64, f64)> = None; // (σ, analytic sd) at the last calibrated step
        for (i, sd_h) in sd.iter().enumerate() {
            let h = i + 1;
            phi_pow *= phi;
            phi_sum += phi_pow;
            let count = origins.saturating_sub(h);
            if count >= MIN_CALIBRATION_ERRORS {
                let mut sum_sq = 0.0;
                for k in 0..count {
                    let t = first + k;
                    // y[t+h] minus the forecast made at t: the ETS forecast of
                    // the deseasonalised series plus each component's last cycle.
                    let mut e = self.adjusted[t + h] / unit
                        - self.calib_level[k] / unit
                        - phi_sum * (self.calib_slope[k] / unit);
                    for (p, s) in self.periods.iter().zip(&self.seasonals) {
                        e += s[t + h] / unit - s[t + h - p * h.div_ceil(*p)] / unit;
                    }
                    sum_sq += e * e;
                }
                let s = unit * (sum_sq / count as f64 + extra).sqrt();
                sigma.push(s);
                last = Some((s, *sd_h));
            } else {
                sigma.push(match last {
                    Some((s, sd0)) if sd0 > 0.0 => s * (sd_h / sd0),
                    Some((s, _)) => s,
                    None => *sd_h,
                });
            }
        }
        normal_intervals(mean, &sigma, levels)
    }

    fn name(&self) -> String {
        let periods: Vec<String> = self.periods.iter().map(ToString::to_string).collect();
        let family = match self.smoother {
            Smoother::Loess => "mstl_loess",
            _ => "mstl",
        };
        format!("{family}({})+{}", periods.join(","), self.ets.name())
    }
}

impl Predict for FittedMstl {
    /// ETS forecast of the deseasonalised series plus each component's last
    /// cycle; calibrated normal intervals. `future` is ignored.
    fn predict(
        &self,
        horizon: usize,
        levels: &[f64],
        _future: Option<&Exog>,
    ) -> Result<Forecast, ForecastError> {
        validate_levels(levels)?;
        let (mut mean, sd) = self.ets.mean_sd(horizon)?;
        for cycle in &self.cycles {
            for (h, m) in mean.iter_mut().enumerate() {
                *m += cycle[h % cycle.len()];
            }
        }
        let name = self.name();
        check_forecast_path(&name, &mean, &sd)?;
        let intervals = self.intervals(&mean, &sd, levels)?;
        Forecast::new(name, mean, intervals)
    }

    fn residuals(&self) -> &[f64] {
        &self.residuals
    }

    /// For each period `p`: `window_<p>` and `cycle_smoothing_<p>`; then the
    /// ETS model's parameters prefixed `ets_` (`ets_alpha`, …). Components:
    /// `seasonal_<p>` for each period, then `adjusted` (what the ETS model
    /// was fitted on).
    fn summary(&self) -> FittedSummary {
        let mut s = FittedSummary::new(self.name());
        for (i, p) in self.periods.iter().enumerate() {
            s = s.with_param(format!("window_{p}"), self.windows[i] as f64);
            s = s.with_param(
                format!("cycle_smoothing_{p}"),
                self.smoothing.get(i).copied().unwrap_or(0.0),
            );
            s.components
                .push((format!("seasonal_{p}"), self.seasonals[i].clone()));
        }
        for (name, value) in self.ets.summary().params {
            s = s.with_param(format!("ets_{name}"), value);
        }
        s.components
            .push(("adjusted".into(), self.adjusted.clone()));
        s
    }
}

impl Fit for Mstl {
    type Fitted = FittedMstl;

    fn name(&self) -> String {
        let short = self.short_windows && self.windows.is_none();
        match (self.smoother, short) {
            (Smoother::MovingAverage, false) => "mstl".into(),
            (Smoother::MovingAverage, true) => "mstl_short".into(),
            (Smoother::Loess, false) => "mstl_loess".into(),
            (Smoother::Loess, true) => "mstl_loess_short".into(),
        }
    }

    fn fit(&self, history: &History<'_>) -> Result<FittedMstl, ForecastError> {
        history.validate()?;
        let y = history.y;
        let n = y.len();
        let given: Vec<usize> = self
            .periods
            .clone()
            .unwrap_or_else(|| history.periods.to_vec());
        if let Some(p) = given.iter().find(|p| **p < 2) {
            return Err(ForecastError::invalid(format!(
                "seasonal period {p} is less than 2"
            )));
        }
        if let Some(w) = &self.windows {
            if w.len() != given.len() {
                return Err(ForecastError::invalid(format!(
                    "{} windows for {} periods",
                    w.len(),
                    given.len()
                )));
            }
            if w.contains(&0) {
                return Err(ForecastError::invalid("a seasonal window of 0 cycles"));
            }
        }
        // Sort by period (windows follow), drop duplicates and periods
        // without two whole cycles of history.
        let mut pairs: Vec<(usize, Option<usize>)> = given
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, self.windows.as_ref().map(|w| w[i])))
            .collect();
        pairs.sort_by_key(|(p, _)| *p);
        pairs.dedup_by_key(|(p, _)| *p);
        let shortest = pairs.first().map(|(p, _)| *p);
        pairs.retain(|(p, _)| p.checked_mul(2).is_some_and(|two| two <= n));
        let ets_min = 5;
        let needed = shortest.map_or(ets_min, |p| p.saturating_mul(2).max(ets_min));
        if n < needed {
            return Err(ForecastError::TooShort {
                model: self.name(),
                needed,
                got: n,
            });
        }
        let periods: Vec<usize> = pairs.iter().map(|(p, _)| *p).collect();
        let windows: Vec<usize> = pairs
            .iter()
            .enumerate()
            .map(|(i, (_, w))| {
                w.unwrap_or_else(|| default_window(&periods, i, self.short_windows, self.smoother))
            })
            .collect();

        let scaled = standardize(y)?;
        let z = &scaled.z;
        let mut seasonals = vec![vec![0.0; n]; periods.len()];
        let mut deseason = z.clone();
        let variances = match self.smoother {
            Smoother::MovingAverage => {
                let mut work = Work::new(n);
                sweep(
                    &mut deseason,
                    &mut seasonals,
                    self.iterations,
                    |i, x, out| work.seasonal(x, periods[i], windows[i], out),
                )
            }
            Smoother::Loess => {
                let mut work = StlWork::new(n, periods.last().copied().unwrap_or(0));
                let mut trend = vec![0.0; n];
                let spans = periods
                    .iter()
                    .zip(&windows)
                    .map(|(p, w)| Stl::new(*p, *w).spans())
                    .collect::<Result<Vec<_>, _>>()?;
                sweep(
                    &mut deseason,
                    &mut seasonals,
                    self.iterations,
                    |i, x, out| {
                        trend.fill(0.0);
                        work.run(x, &spans[i], out, &mut trend);
                        loess_variance(x, &trend, &spans[i])
                    },
                )
            }
        };
        let (c, sc) = (scaled.center, scaled.scale);
        let adjusted: Vec<f64> = deseason.iter().map(|v| c + sc * v).collect();
        if adjusted.iter().any(|v| !v.is_finite()) {
            // Values near the largest f64: the components overflow when
            // scaled back.
            return Err(ForecastError::FitFailed {
                model: self.name(),
                reason: "the decomposition overflows f64 at this magnitude: rescale the series"
                    .into(),
            });
        }
        for s in &mut seasonals {
            for v in s.iter_mut() {
                *v *= sc;
            }
        }
        let seasonal_var = variances.iter().sum::<f64>();
        // The adjusted series' model, fitted on the most recent observations:
        // the calibration origins and the longest cycle before them.
        let longest = periods.last().copied().unwrap_or(0);
        let window = n.min(CALIBRATION_ORIGINS + longest);
        let recent = &adjusted[n - window..];
        let lead = selection_lead(&periods);
        let ets = choose_trend(recent, lead)?;
        // Calibration origins: the most recent ones with a whole longest
        // cycle before them.
        let origins = CALIBRATION_ORIGINS
            .min(n.saturating_sub(longest))
            .min(window);
        let (mut calib_level, mut calib_slope) = ets.states(recent).unwrap_or_default();
        calib_level.drain(..window.saturating_sub(origins).min(calib_level.len()));
        calib_slope.drain(..window.saturating_sub(origins).min(calib_slope.len()));
        let residuals = ets.errors_over(&adjusted);
        // A threshold of 0 pools nothing.
        let tau = if self.pool_subcycles {
            POOL_THRESHOLD * rms_finite(&residuals[n - window..])
        } else {
            0.0
        };
        let (mut cycles, groups) = forecast_cycles(&periods, &seasonals, tau);
        // Every period but the shortest; the variances are in units of sc².
        let smoothing: Vec<f64> = cycles
            .iter_mut()
            .zip(&variances)
            .enumerate()
            .map(|(i, (cycle, v))| {
                if self.smooth_long_cycles && i > 0 {
                    smooth_cycle(cycle, *v, sc)
                } else {
                    0.0
                }
            })
            .collect();
        Ok(FittedMstl {
            periods,
            windows,
            seasonals,
            adjusted,
            ets,
            calib_level,
            calib_slope,
            seasonal_var,
            unit: sc,
            residuals,
            smoother: self.smoother,
            cycles,
            groups,
            smoothing,
        })
    }
}

/// MSTL's sweeps: `iterations` times, for each component `i` in turn, add
/// it back to `deseason`, re-estimate it with `estimate(i, deseason,
/// seasonal)` (which returns the estimation variance of its last cycle) and
/// take it out again. Returns each component's last variance.
fn sweep(
    deseason: &mut [f64],
    seasonals: &mut [Vec<f64>],
    iterations: usize,
    mut estimate: impl FnMut(usize, &[f64], &mut [f64]) -> f64,
) -> Vec<f64> {
    let mut variances = vec![0.0; seasonals.len()];
    for _ in 0..iterations.max(1) {
        for (i, seasonal) in seasonals.iter_mut().enumerate() {
            for (d, s) in deseason.iter_mut().zip(seasonal.iter()) {
                *d += s;
            }
            variances[i] = estimate(i, deseason, seasonal);
            for (d, s) in deseason.iter_mut().zip(seasonal.iter()) {
                *d -= s;
            }
        }
    }
    variances
}

/// Estimation variance of a loess component's last cycle: per phase, the
/// sample variance of the detrended values `x − trend` over the last
/// window, times the sum of the squared end weights of the tricube loess
/// (one over its effective number of cycles); averaged over the phases.
fn loess_variance(x: &[f64], trend: &[f64], spans: &Spans) -> f64 {
    let (n, p, span) = (x.len(), spans.period, spans.seasonal);
    let mut total = 0.0;
    let mut phases = 0usize;
    // Phases have one of two lengths: the end weights of the last one seen.
    let mut weights: Option<(usize, f64)> = None;
    for j in 0..p.min(n) {
        let k = (n - 1 - j) / p + 1;
        let w = span.min(k);
        if w < 2 {
            continue;
        }
        let values = (k - w..k).map(|i| x[i * p + j] - trend[i * p + j]);
        let mean = values.clone().sum::<f64>() / w as f64;
        let ss: f64 = values.map(|v| (v - mean) * (v - mean)).sum();
        let factor = match weights {
            Some((seen, f)) if seen == k => f,
            _ => {
                let f = end_weight_square_sum(span, k);
                weights = Some((k, f));
                f
            }
        };
        total += ss / (w - 1) as f64 * factor;
        phases += 1;
    }
    if phases == 0 {
        0.0
    } else {
        total / phases as f64
    }
}

/// Sub-cycles closer than this many root-mean-square one-step errors are
/// pooled (see *Pooled sub-cycles* on [`Mstl`]).
const POOL_THRESHOLD: f64 = 2.0;

/// Most sub-cycles in a period for pooling (complete linkage is cubic in
/// their number).
const POOL_MAX_SUBCYCLES: usize = 64;

/// Root mean square of the finite values of `x` (0 if there is none).
fn rms_finite(x: &[f64]) -> f64 {
    let (sum, count) = x
        .iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, c), v| (s + v * v, c + 1));
    if count == 0 {
        0.0
    } else {
        (sum / count as f64).sqrt()
    }
}

/// Each component's cycle continued by the forecast, and the groups of its
/// sub-cycles if any were pooled: the last cycle of the `i`-th component,
/// with the sub-cycles of the longest shorter period that divides it
/// pooled below `tau` (none with `tau` 0).
fn forecast_cycles(
    periods: &[usize],
    seasonals: &[Vec<f64>],
    tau: f64,
) -> (Vec<Vec<f64>>, Vec<Option<Vec<usize>>>) {
    let mut cycles = Vec::with_capacity(periods.len());
    let mut groups = Vec::with_capacity(periods.len());
    for (i, (p, s)) in periods.iter().zip(seasonals).enumerate() {
        let n = s.len();
        let mut cycle = s[n - p..].to_vec();
        let inner = periods[..i].iter().rev().find(|q| p % *q == 0);
        let pooled = match inner {
            Some(q) if tau > 0.0 && tau.is_finite() && p / q <= POOL_MAX_SUBCYCLES => {
                pool(&mut cycle, n - p, *q, tau)
            }
            _ => None,
        };
        cycles.push(cycle);
        groups.push(pooled);
    }
    (cycles, groups)
}

/// Pools, in place, the sub-cycles of length `q` of `cycle` (one cycle of
/// a period `k·q`, starting at observation `start`; sub-cycle `d` holds the
/// observations `t` with `(t / q) mod k = d`) whose root-mean-square
/// differences are all below `tau`, by complete linkage. Returns each
/// sub-cycle's group (numbered by its first sub-cycle) if any two were
/// pooled.
fn pool(cycle: &mut [f64], start: usize, q: usize, tau: f64) -> Option<Vec<usize>> {
    let len = cycle.len();
    let k = len / q;
    // The position in `cycle` of phase j of sub-cycle d: the observation
    // t ≡ d·q + j (mod k·q) among start..start + k·q.
    let at = |d: usize, j: usize| (d * q + j + len - start % len) % len;
    let mut dist = vec![vec![0.0; k]; k];
    for a in 0..k {
        for b in 0..a {
            let ss: f64 = (0..q)
                .map(|j| {
                    let d = cycle[at(a, j)] - cycle[at(b, j)];
                    d * d
                })
                .sum();
            // Not a number (overflowed components): never pooled.
            let rms = (ss / q as f64).sqrt();
            let rms = if rms.is_nan() { f64::INFINITY } else { rms };
            dist[a][b] = rms;
            dist[b][a] = rms;
        }
    }
    // Complete linkage: merge the two closest groups while their farthest
    // members are closer than tau.
    let mut members: Vec<Vec<usize>> = (0..k).map(|d| vec![d]).collect();
    loop {
        let mut best: Option<(f64, usize, usize)> = None;
        for a in 0..members.len() {
            for b in 0..a {
                let far = members[a]
                    .iter()
                    .flat_map(|x| members[b].iter().map(|y| dist[*x][*y]))
                    .fold(0.0f64, f64::max);
                if far < tau && best.is_none_or(|(f, _, _)| far < f) {
                    best = Some((far, a, b));
                }
            }
        }
        let Some((_, a, b)) = best else { break };
        let moved = members.swap_remove(a);
        members[b].extend(moved);
    }
    if members.len() == k {
        return None;
    }
    let mut label = vec![0; k];
    for group in &members {
        let first = group.iter().copied().min().unwrap_or(0);
        for &d in group {
            label[d] = first;
        }
        if group.len() > 1 {
            for j in 0..q {
                let mean = group.iter().map(|d| cycle[at(*d, j)]).sum::<f64>() / group.len() as f64;
                for &d in group {
                    cycle[at(d, j)] = mean;
                }
            }
        }
    }
    Some(label)
}

/// Smooths, in place, a component's forecast `cycle` (periodic) across
/// adjacent phases as far as its estimation noise warrants, and returns the
/// weight given to the smoothed cycle (see *Smoothed long cycles* on
/// [`Mstl`]). `variance` is the estimation variance of one phase of the
/// cycle, in units of `unit²`.
///
/// The smoothed cycle is `S c`, the circular binomial filter
/// `(c[j−1] + 2 c[j] + c[j+1]) / 4`; the cycle becomes `c + w (S c − c)`.
/// For `c` = truth + independent noise of variance `v` per phase, the
/// expected squared error of that blend is least at
/// `w = v (1 − s₀) / E‖S c − c‖²` per phase, `s₀ = ½` being the filter's
/// centre weight: the observed mean square of `S c − c` estimates the
/// denominator. `w` is capped at 1 (pure noise: the whole filter) and is 0
/// when there is no estimation noise (a periodic series is forecast
/// exactly) or nothing to smooth. Noise that is correlated across phases
/// makes `S c − c` smaller than white noise would, so `w` is then an upper
/// bound; the cap keeps it to the filter, which only removes the shortest
/// wiggles.
fn smooth_cycle(cycle: &mut [f64], variance: f64, unit: f64) -> f64 {
    let len = cycle.len();
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if len < 3 || !positive(variance) || !positive(unit) {
        return 0.0;
    }
    let diff: Vec<f64> = (0..len)
        .map(|j| {
            let (prev, next) = (cycle[(j + len - 1) % len], cycle[(j + 1) % len]);
            // (prev + 2c + next)/4 − c, in units of `unit`.
            (prev / unit + next / unit) / 4.0 - cycle[j] / unit / 2.0
        })
        .collect();
    let ms = diff.iter().map(|d| d * d).sum::<f64>() / len as f64;
    let weight = if ms > 0.0 && ms.is_finite() {
        (SMOOTH_CENTRE_COMPLEMENT * variance / ms).min(1.0)
    } else {
        0.0
    };
    if weight > 0.0 {
        for (c, d) in cycle.iter_mut().zip(&diff) {
            *c += weight * unit * d;
        }
    }
    weight
}

/// `1 − s₀` for the binomial filter `[1, 2, 1] / 4` of [`smooth_cycle`].
const SMOOTH_CENTRE_COMPLEMENT: f64 = 0.5;

/// Most recent origins whose in-sample errors calibrate the intervals.
const CALIBRATION_ORIGINS: usize = 2016;

/// The steps ahead whose in-sample errors choose the trend of the adjusted
/// series: two cycles of the shortest period, within 8 to 336 (8 without
/// periods).
fn selection_lead(periods: &[usize]) -> usize {
    periods
        .first()
        .map_or(8, |p| p.saturating_mul(2))
        .clamp(8, 336)
}

/// ETS(A,N,N), (A,A,N) and (A,Ad,N) fitted on `x` (the adjusted series'
/// recent part); the one whose in-sample forecasts 1 to `lead` steps ahead
/// have the least mean squared error, over the origins after the first
/// quarter of `x` (ties to the simpler model). Forms `x` is too short for are
/// skipped; ETS(A,N,N) needs 5 observations.
fn choose_trend(x: &[f64], lead: usize) -> Result<FittedEts, ForecastError> {
    let mut best: Option<(f64, FittedEts)> = None;
    for trend in [Trend::None, Trend::Damped, Trend::Additive] {
        let model = Ets::new(trend, None);
        if x.len() < model.min_len() && trend != Trend::None {
            continue;
        }
        let fitted = model.fit_quick(x)?;
        let score = multi_step_mse(&fitted, x, lead);
        let score = if trend == Trend::None {
            score
        } else {
            score / TREND_GAIN
        };
        if best.as_ref().is_none_or(|(b, _)| score < *b) {
            best = Some((score, fitted));
        }
    }
    best.map(|(_, f)| f).ok_or_else(|| ForecastError::TooShort {
        model: "mstl".into(),
        needed: 5,
        got: x.len(),
    })
}

const TREND_GAIN: f64 = 0.8;

/// Mean squared in-sample error of `fitted`'s forecasts 1 to `lead` steps
/// ahead of `x`, from the origins after the first quarter (infinite if there
/// is none or it is not finite).
fn multi_step_mse(fitted: &FittedEts, x: &[f64], lead: usize) -> f64 {
    let Some((level, slope)) = fitted.states(x) else {
        return f64::INFINITY;
    };
    let phi = fitted.phi();
    let mut phi_sums = Vec::with_capacity(lead);
    let (mut pow, mut sum) = (1.0, 0.0);
    for _ in 0..lead {
        pow *= phi;
        sum += pow;
        phi_sums.push(sum);
    }
    let n = x.len();
    // Errors in units of the largest magnitude, so squares never overflow.
    let unit = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let unit = if unit > 0.0 { unit } else { 1.0 };
    let (mut total, mut count) = (0.0, 0usize);
    for k in n / 4..n.saturating_sub(1) {
        for (h, ps) in phi_sums.iter().enumerate().take(n - 1 - k) {
            let e = x[k + 1 + h] / unit - level[k] / unit - ps * (slope[k] / unit);
            total += e * e;
            count += 1;
        }
    }
    let mse = total / count.max(1) as f64;
    if count > 0 && mse.is_finite() {
        mse
    } else {
        f64::INFINITY
    }
}

/// Fewest in-sample errors for an empirical interval at one step.
const MIN_CALIBRATION_ERRORS: usize = 30;

/// Buffers of the decomposition, allocated once per fit.
struct Work {
    trend: Vec<f64>,
    raw: Vec<f64>,
    prefix: Vec<f64>,
}

impl Work {
    fn new(n: usize) -> Self {
        Work {
            trend: vec![0.0; n],
            raw: vec![0.0; n],
            prefix: Vec::with_capacity(n + n / 2 + 1),
        }
    }

    /// The seasonal component of period `p` of `x` into `out`, by the three
    /// steps described on [`Mstl`], with windows of `k` cycles.
    /// Requires `x.len() >= 2p`; otherwise `out` is zero.
    ///
    /// Returns the estimation variance of the component's last cycle: per
    /// phase, the sample variance of the detrended values in the last window
    /// divided by the window's length, averaged over the phases.
    fn seasonal(&mut self, x: &[f64], p: usize, k: usize, out: &mut [f64]) -> f64 {
        out.fill(0.0);
        let Some((a, b)) = super::ets::centred_moving_average(x, p, &mut self.trend) else {
            return 0.0;
        };
        // Per phase, prefix sums of the detrended values at a, …, b.
        // Phase φ's first time in [a, b] is t0(φ); its values are at t0 + i p.
        let t0 = |phase: usize| a + (phase + p - a % p) % p;
        let count = |phase: usize| {
            let t = t0(phase);
            if t > b { 0 } else { (b - t) / p + 1 }
        };
        self.prefix.clear();
        let mut offsets = Vec::with_capacity(p);
        for phase in 0..p {
            offsets.push(self.prefix.len());
            let mut acc = 0.0;
            self.prefix.push(acc);
            let mut t = t0(phase);
            while t <= b {
                acc += x[t] - self.trend[t];
                self.prefix.push(acc);
                t += p;
            }
        }
        // Variance of the mean of the last window, per phase.
        let mut var_sum = 0.0;
        for (phase, o) in offsets.iter().enumerate() {
            let c = count(phase);
            let w = k.min(c);
            if w < 2 {
                continue;
            }
            let start = c - w;
            let mean = (self.prefix[o + c] - self.prefix[o + start]) / w as f64;
            let ss: f64 = (start..c)
                .map(|i| {
                    let t = t0(phase) + i * p;
                    let d = x[t] - self.trend[t] - mean;
                    d * d
                })
                .sum();
            var_sum += ss / (w - 1) as f64 / w as f64;
        }
        let variance = var_sum / p as f64;
        // Cycle-subseries means over windows of k cycles around each time.
        for (t, r) in self.raw.iter_mut().enumerate() {
            let phase = t % p;
            let c = count(phase);
            if c == 0 {
                *r = 0.0;
                continue;
            }
            let w = k.min(c);
            let first = t0(phase);
            let i = if t >= first {
                ((t - first) / p) as isize
            } else {
                -(((first - t).div_ceil(p)) as isize)
            };
            let start = (i - (w as isize - 1) / 2).clamp(0, (c - w) as isize) as usize;
            let o = offsets[phase];
            *r = (self.prefix[o + start + w] - self.prefix[o + start]) / w as f64;
        }
        // Remove the low-pass level (centred moving average, held at the ends).
        let Some((a2, b2)) = super::ets::centred_moving_average(&self.raw, p, &mut self.trend)
        else {
            out.copy_from_slice(&self.raw);
            return variance;
        };
        for (t, o) in out.iter_mut().enumerate() {
            let level = self.trend[t.clamp(a2, b2)];
            *o = self.raw[t] - level;
        }
        variance
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::ets::tests::{Rng, coverage_80_95};
    use proptest::prelude::*;

    /// Largest error of `mstl_loess` on a pure daily + weekly pattern.
    const LOESS_PURE_TOLERANCE: f64 = 1.0;

    /// A daily and a weekly pattern (the weekly one not a multiple of the daily).
    fn pattern(t: usize) -> f64 {
        let hour = (t % 24) as f64;
        let day = (t / 24) % 7;
        30.0 * (std::f64::consts::TAU * hour / 24.0).sin()
            + 10.0 * (std::f64::consts::TAU * hour / 12.0).cos()
            + if day >= 5 {
                -25.0 + hour
            } else {
                4.0 * day as f64
            }
    }

    /// `n` observations of `shape` on an ETS(A,N,N) level starting at
    /// `level`: noise of standard deviation `sigma`, smoothing `alpha`.
    fn on_noisy_level(
        n: usize,
        seed: u64,
        mut level: f64,
        sigma: f64,
        alpha: f64,
        shape: impl Fn(usize) -> f64,
    ) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|t| {
                let e = sigma * rng.normal();
                let v = level + shape(t) + e;
                level += alpha * e;
                v
            })
            .collect()
    }

    /// Root mean square of a forecast's shape error against `shape` from
    /// observation `n` on, its mean (the level's error) removed.
    fn shape_error(mean: &[f64], n: usize, shape: impl Fn(usize) -> f64) -> f64 {
        let dev: Vec<f64> = mean
            .iter()
            .enumerate()
            .map(|(h, m)| m - shape(n + h))
            .collect();
        let k = dev.len() as f64;
        let centre = dev.iter().sum::<f64>() / k;
        (dev.iter().map(|d| (d - centre).powi(2)).sum::<f64>() / k).sqrt()
    }

    #[test]
    fn pooling_is_complete_linkage_on_absolute_subcycles() {
        // Sub-cycles of 3: the first and last identical, the second 0.9 from
        // them, the third 0.9 from the second (1.8 from the first). Single
        // linkage below 1.0 would chain all four; complete linkage keeps the
        // third apart.
        let base = [1.0, 2.0, 3.0];
        let mut cycle: Vec<f64> = [0.0, 0.9, 1.8, 0.0]
            .iter()
            .flat_map(|off| base.iter().map(move |b| b + off))
            .collect();
        let unpooled = cycle.clone();
        let groups = pool(&mut cycle, 0, 3, 1.0).unwrap();
        assert_eq!(groups, vec![0, 0, 2, 0]);
        for (j, b) in base.iter().enumerate() {
            for d in [0, 1, 3] {
                assert!((cycle[3 * d + j] - (b + 0.3)).abs() < 1e-12);
            }
            assert!((cycle[6 + j] - (b + 1.8)).abs() < 1e-12);
        }
        // Nothing within tau: untouched, no groups.
        let mut cycle = unpooled.clone();
        cycle[0] += 1e-6;
        let before = cycle.clone();
        assert_eq!(pool(&mut cycle, 0, 3, 1e-9), None);
        assert_eq!(cycle, before);

        // A cycle starting mid-sub-cycle (observation 4 of sub-cycles of 3,
        // four per cycle): sub-cycle d is the observations t with
        // (t / 3) mod 4 = d, wherever the cycle starts.
        let value = |t: usize| match (t / 3) % 4 {
            1 | 3 => 10.0 + (t % 3) as f64,
            d => 100.0 * d as f64 + (t % 3) as f64,
        };
        let mut cycle: Vec<f64> = (4..16).map(value).collect();
        assert_eq!(pool(&mut cycle, 4, 3, 0.5), Some(vec![0, 1, 2, 1]));
        assert_eq!(cycle, (4..16).map(value).collect::<Vec<_>>());
    }

    #[test]
    fn pooling_alike_days_sharpens_the_weekly_forecast() {
        // Twelve weeks: weekdays share one shape, Saturday and Sunday have
        // their own; an ETS(A,N,N) level (α = 0.2) and noise (σ = 6).
        let shape = |t: usize| {
            let hour = (t % 24) as f64;
            let daily = 40.0 * (std::f64::consts::TAU * hour / 24.0).sin();
            match (t / 24) % 7 {
                5 => daily * 0.6 - 30.0,
                6 => daily * 0.5 - 80.0 + 2.0 * hour,
                _ => daily,
            }
        };
        let n = 168 * 12;
        let y = on_noisy_level(n, 7, 800.0, 6.0, 0.2, shape);
        let history = History::new(&y, &[24, 168]);
        for smoother in [Smoother::MovingAverage, Smoother::Loess] {
            let error = |pool_subcycles: bool| {
                // Pooling alone: the smoothing would also lower the
                // unpooled error.
                let model = Mstl {
                    smoother,
                    pool_subcycles,
                    smooth_long_cycles: false,
                    ..Mstl::default()
                };
                let fitted = model.fit(&history).unwrap();
                let f = fitted.predict(168, &[], None).unwrap();
                // The forecast's shape against the true one, level removed.
                let rms = shape_error(f.mean(), n, shape);
                (rms, fitted.subcycle_groups(1).map(<[usize]>::to_vec))
            };
            let (pooled, groups) = error(true);
            let (alone, none) = error(false);
            assert_eq!(none, None);
            assert_eq!(groups, Some(vec![0, 0, 0, 0, 0, 5, 6]), "{smoother:?}");
            assert!(
                pooled < 0.85 * alone,
                "{smoother:?}: pooled {pooled}, alone {alone}"
            );
        }
    }

    #[test]
    fn smoothing_weight_follows_the_noise() {
        // No estimation noise: untouched, weight 0.
        let sharp: Vec<f64> = (0..48)
            .map(|j| if j % 2 == 0 { 10.0 } else { -10.0 })
            .collect();
        let mut c = sharp.clone();
        assert_eq!(smooth_cycle(&mut c, 0.0, 1.0), 0.0);
        assert_eq!(c, sharp);
        // A sharp pattern far above its noise: hardly smoothed (the filter
        // turns ±10 into 0, so E‖Sc − c‖² ≈ 100 ≫ ½·0.01).
        let mut c = sharp.clone();
        let w = smooth_cycle(&mut c, 0.01, 1.0);
        assert!(w > 0.0 && w < 1e-4, "{w}");
        // Pure white noise of known variance: the whole filter.
        let mut rng = Rng::new(3);
        let noise: Vec<f64> = (0..336).map(|_| 2.0 * rng.normal()).collect();
        let mut c = noise.clone();
        assert_eq!(smooth_cycle(&mut c, 4.0, 1.0), 1.0);
        let n = noise.len();
        for j in 0..n {
            let expected = (noise[(j + n - 1) % n] + 2.0 * noise[j] + noise[(j + 1) % n]) / 4.0;
            assert!((c[j] - expected).abs() < 1e-12);
        }
        // The weight does not depend on the unit the cycle is scaled by.
        let mut a = noise.clone();
        let mut b: Vec<f64> = noise.iter().map(|v| v * 1e200).collect();
        let (wa, wb) = (
            smooth_cycle(&mut a, 0.5, 1.0),
            smooth_cycle(&mut b, 0.5, 1e200),
        );
        assert!(wa > 0.0 && wa < 1.0 && (wa - wb).abs() < 1e-12, "{wa} {wb}");
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| (x * 1e200 - y).abs() <= 1e188)
        );
        // Cycles too short to smooth, and degenerate inputs.
        let mut short = vec![1.0, 2.0];
        assert_eq!(smooth_cycle(&mut short, 1.0, 1.0), 0.0);
        assert_eq!(smooth_cycle(&mut c, f64::NAN, 1.0), 0.0);
    }

    #[test]
    fn smoothing_sharpens_a_noisy_weekly_forecast() {
        // Twelve weeks of half-hourly data (periods 48 and 336): a weekly
        // deviation smooth in the time of day, on a daily shape, an
        // ETS(A,N,N) level and noise; averaged over seeds.
        let half_hours = 48usize;
        let shape = |t: usize| {
            let x = (t % half_hours) as f64 / half_hours as f64;
            let daily = 60.0 * (std::f64::consts::TAU * x).sin()
                + 20.0 * (2.0 * std::f64::consts::TAU * x).cos();
            let weekly = match (t / half_hours) % 7 {
                5 => -40.0 + 30.0 * (std::f64::consts::TAU * x).cos(),
                6 => -70.0 + 40.0 * (std::f64::consts::PI * x).sin(),
                d => 3.0 * d as f64,
            };
            daily + weekly
        };
        let n = 336 * 12;
        for smoother in [Smoother::MovingAverage, Smoother::Loess] {
            let (mut with, mut without) = (0.0, 0.0);
            for seed in 0..4 {
                let y = on_noisy_level(n, 11 + seed, 900.0, 8.0, 0.1, shape);
                let history = History::new(&y, &[48, 336]);
                let error = |smooth_long_cycles: bool| {
                    let fitted = Mstl {
                        smoother,
                        pool_subcycles: false,
                        smooth_long_cycles,
                        ..Mstl::default()
                    }
                    .fit(&history)
                    .unwrap();
                    let w = fitted.cycle_smoothing(1).unwrap();
                    let f = fitted.predict(336, &[], None).unwrap();
                    (shape_error(f.mean(), n, shape), w)
                };
                let (smoothed, w) = error(true);
                let (alone, off) = error(false);
                assert_eq!(off, 0.0);
                assert!(w > 0.5, "{smoother:?}: weight {w}");
                with += smoothed;
                without += alone;
            }
            assert!(
                with < 0.97 * without,
                "{smoother:?}: smoothed {with}, alone {without}"
            );
        }
    }

    #[test]
    fn taylor_pools_tuesday_to_thursday() {
        // The comparison's half-hourly demand (benches/compare), starting on
        // a Monday: fitted on the twelve weeks before its last eight days.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../benches/compare/data/taylor.csv"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let y: Vec<f64> = text
            .lines()
            .skip(1)
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert_eq!(y.len(), 4032);
        let fitted = Mstl::loess()
            .fit(&History::new(&y[..4032 - 8 * 48], &[48, 336]))
            .unwrap();
        assert_eq!(fitted.subcycle_groups(1), Some(&[0, 1, 1, 1, 4, 5, 6][..]));
        // The summary: windows, smoothing weights and the ETS parameters by
        // name; the components add back up to the series.
        let summary = fitted.summary();
        assert_eq!(summary.model, fitted.predict(1, &[], None).unwrap().model());
        assert_eq!(summary.param("window_48"), Some(fitted.windows()[0] as f64));
        assert_eq!(
            summary.param("window_336"),
            Some(fitted.windows()[1] as f64)
        );
        assert_eq!(
            summary.param("cycle_smoothing_336"),
            fitted.cycle_smoothing(1)
        );
        assert_eq!(
            summary.param("ets_alpha"),
            Some(fitted.ets().params().alpha)
        );
        let names: Vec<&str> = summary.components.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["seasonal_48", "seasonal_336", "adjusted"]);
        let (daily, weekly, adjusted) = (
            summary.component("seasonal_48").unwrap(),
            summary.component("seasonal_336").unwrap(),
            summary.component("adjusted").unwrap(),
        );
        for t in 0..4032 - 8 * 48 {
            assert!((daily[t] + weekly[t] + adjusted[t] - y[t]).abs() < 1e-6 * y[t].abs());
        }
    }

    #[test]
    fn default_windows_nest() {
        let ma = Smoother::MovingAverage;
        assert_eq!(default_window(&[24, 168], 0, false, ma), 14);
        assert_eq!(default_window(&[24, 168], 1, false, ma), 15);
        assert_eq!(default_window(&[48, 336], 0, false, ma), 14);
        assert_eq!(default_window(&[7], 0, false, ma), 11);
        assert_eq!(default_window(&[12, 30], 0, false, ma), 11);
        assert_eq!(default_window(&[2, 60], 0, false, ma), 30);
        assert_eq!(default_window(&[24, 168], 0, true, ma), 7);
        assert_eq!(default_window(&[24, 168], 1, true, ma), 3);
        assert_eq!(default_window(&[7], 0, true, ma), 3);
        // Loess: the paper's odd windows, no nesting.
        let lo = Smoother::Loess;
        assert_eq!(default_window(&[24, 168], 0, false, lo), 11);
        assert_eq!(default_window(&[24, 168], 1, false, lo), 15);
        assert_eq!(default_window(&[24, 168], 0, true, lo), 3);
    }

    #[test]
    fn pure_multi_seasonal_series_are_forecast_exactly() {
        for (weeks, slope) in [(5usize, 0.0), (8, 0.0), (6, 0.05)] {
            let n = 168 * weeks + 7;
            let y: Vec<f64> = (0..n)
                .map(|t| 1000.0 + slope * t as f64 + pattern(t))
                .collect();
            let fitted = Mstl::new(Some(vec![24, 168]))
                .fit(&History::new(&y, &[]))
                .unwrap();
            let f = fitted.predict(400, &[80.0, 95.0], None).unwrap();
            for (h, m) in f.mean().iter().enumerate() {
                let t = n + h;
                let truth = 1000.0 + slope * t as f64 + pattern(t);
                assert!(
                    (m - truth).abs() < 1e-6,
                    "{weeks} weeks, slope {slope}, h={h}: {m} vs {truth}"
                );
            }
            assert!(fitted.residuals().iter().all(|r| r.abs() < 1e-6));
        }
    }

    #[test]
    fn loess_forecasts_pure_multi_seasonal_series_closely() {
        // Tricube windows do not remove the weekly pattern from the daily
        // component exactly (moving averages over whole weeks do), but the
        // components' sum still continues the pattern.
        for (weeks, slope) in [(5usize, 0.0), (8, 0.0), (6, 0.05)] {
            let n = 168 * weeks + 7;
            let y: Vec<f64> = (0..n)
                .map(|t| 1000.0 + slope * t as f64 + pattern(t))
                .collect();
            let fitted = Mstl {
                periods: Some(vec![24, 168]),
                ..Mstl::loess()
            }
            .fit(&History::new(&y, &[]))
            .unwrap();
            assert!(fitted.name().starts_with("mstl_loess(24,168)+ets("));
            let f = fitted.predict(336, &[80.0, 95.0], None).unwrap();
            let worst = f
                .mean()
                .iter()
                .enumerate()
                .map(|(h, m)| {
                    let t = n + h;
                    (m - (1000.0 + slope * t as f64 + pattern(t))).abs()
                })
                .fold(0.0f64, f64::max);
            // The pattern's range is about 90.
            assert!(
                worst < LOESS_PURE_TOLERANCE,
                "{weeks} weeks, slope {slope}: {worst}"
            );
        }
    }

    #[test]
    fn recovers_the_seasonal_shape_under_noise() {
        // Patterns plus an ETS(A,N,N) level (α = 0.3, σ = 2).
        let mut rng = Rng::new(42);
        let n = 168 * 20;
        let mut level = 500.0;
        let y: Vec<f64> = (0..n)
            .map(|t| {
                let e = 2.0 * rng.normal();
                let v = level + pattern(t) + e;
                level += 0.3 * e;
                v
            })
            .collect();
        for smoother in [Smoother::MovingAverage, Smoother::Loess] {
            let fitted = Mstl {
                periods: Some(vec![24, 168]),
                smoother,
                ..Mstl::default()
            }
            .fit(&History::new(&y, &[]))
            .unwrap();
            check_recovered(&fitted, n, smoother);
        }
    }

    fn check_recovered(fitted: &FittedMstl, n: usize, smoother: Smoother) {
        // The components' sum over the last week matches the centred pattern
        // (its amplitude is about 60, the noise's standard deviation 2).
        let mean_pattern = (0..168).map(pattern).sum::<f64>() / 168.0;
        let dev: Vec<f64> = (n - 168..n)
            .map(|t| {
                let s = fitted.seasonal(0).unwrap()[t] + fitted.seasonal(1).unwrap()[t];
                s - (pattern(t) - mean_pattern)
            })
            .collect();
        let rms = (dev.iter().map(|d| d * d).sum::<f64>() / 168.0).sqrt();
        let worst = dev.iter().fold(0.0f64, |w, d| w.max(d.abs()));
        // Tricube weights count fewer cycles: a noisier estimate.
        let (max_rms, max_worst) = match smoother {
            Smoother::Loess => (1.5, 4.0),
            _ => (1.0, 3.0),
        };
        assert!(
            rms < max_rms && worst < max_worst,
            "{smoother:?}: rms {rms}, worst {worst}"
        );
        let ets = fitted.ets();
        assert_eq!(ets.model().seasonal, None);
        let p = ets.params();
        assert!((p.alpha - 0.3).abs() < 0.1, "{smoother:?}: {p:?}");
        // With loess, what the daily component keeps of the weekly pattern
        // (see `loess_forecasts_pure_multi_seasonal_series_closely`) adds
        // to the one-step errors.
        let max_excess = if smoother == Smoother::Loess {
            1.0
        } else {
            0.3
        };
        let sigma = ets.sigma2().sqrt();
        assert!((sigma - 2.0).abs() < max_excess, "{smoother:?}: σ {sigma}");
    }

    #[test]
    fn intervals_cover_simulated_series() {
        intervals_cover(Smoother::MovingAverage);
    }

    #[test]
    fn loess_intervals_cover_simulated_series() {
        intervals_cover(Smoother::Loess);
    }

    fn intervals_cover(smoother: Smoother) {
        let (n, h, reps) = (168 * 8, 24, 150);
        let mut rng = Rng::new(77);
        let (mut c80, mut c95) = (0.0, 0.0);
        for _ in 0..reps {
            let mut level = 100.0;
            let y: Vec<f64> = (0..n + h)
                .map(|t| {
                    let e = rng.normal();
                    let v = level + pattern(t) + e;
                    level += 0.5 * e;
                    v
                })
                .collect();
            let f = Mstl {
                periods: Some(vec![24, 168]),
                smoother,
                ..Mstl::default()
            }
            .fit(&History::new(&y[..n], &[]))
            .unwrap()
            .predict(h, &[80.0, 95.0], None)
            .unwrap();
            let (a, b) = coverage_80_95(&f, &y[n..]);
            c80 += a / reps as f64;
            c95 += b / reps as f64;
        }
        assert!(
            (0.75..=0.88).contains(&c80),
            "{smoother:?}: 80 % coverage {c80}"
        );
        assert!(
            (0.92..=0.985).contains(&c95),
            "{smoother:?}: 95 % coverage {c95}"
        );
    }

    #[test]
    fn huge_values_are_refused_or_fitted_never_blamed_as_non_finite() {
        let mut y: Vec<f64> = (0..37).map(|t| (t % 7) as f64).collect();
        y[2] = f64::MAX;
        y[27] = f64::MAX;
        let e = Mstl::default()
            .fit(&History::new(&y, &[7]))
            .expect_err("beyond the largest observation taken");
        assert!(
            matches!(&e, ForecastError::InvalidArgument(m) if m.contains("observation 2")),
            "{e}"
        );
        // At the largest magnitude taken: a forecast or a numerical failure.
        y[2] = crate::forecast::MAX_OBSERVATION;
        y[27] = -crate::forecast::MAX_OBSERVATION;
        for model in [Mstl::default(), Mstl::loess()] {
            match model.fit(&History::new(&y, &[7])) {
                Ok(fitted) => {
                    let f = fitted.predict(7, &[95.0], None).expect("a forecast");
                    assert!(f.mean().iter().all(|m| m.is_finite()));
                }
                Err(e) => assert!(matches!(e, ForecastError::FitFailed { .. }), "{e}"),
            }
        }
    }

    #[test]
    fn constant_and_short_series() {
        let y = vec![7.25; 400];
        for model in [Mstl::default(), Mstl::loess()] {
            let fitted = model.fit(&History::new(&y, &[24, 168])).unwrap();
            let f = fitted.predict(100, &[80.0, 95.0], None).unwrap();
            assert!(f.mean().iter().all(|v| (v - 7.25).abs() < 1e-9));
            assert!(
                f.upper(95.0)
                    .unwrap()
                    .iter()
                    .all(|v| (v - 7.25).abs() < 1e-9)
            );
            assert_eq!(fitted.periods(), &[24, 168]);
        }

        let short: Vec<f64> = (0..40).map(f64::from).collect();
        assert!(matches!(
            Mstl::default().fit(&History::new(&short, &[24, 168])),
            Err(ForecastError::TooShort {
                needed: 48,
                got: 40,
                ..
            })
        ));
        assert!(matches!(
            Mstl::default().fit(&History::new(&short[..3], &[])),
            Err(ForecastError::TooShort {
                needed: 5,
                got: 3,
                ..
            })
        ));
        // Without periods it is ETS on the series.
        let f = Mstl::default().fit(&History::new(&short, &[])).unwrap();
        assert!(f.periods().is_empty());
        assert!(f.predict(5, &[95.0], None).is_ok());
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let y: Vec<f64> = (0..500).map(|t| (t % 24) as f64).collect();
        let h = History::new(&y, &[]);
        let bad = |m: Mstl| matches!(m.fit(&h), Err(ForecastError::InvalidArgument(_)));
        assert!(bad(Mstl::new(Some(vec![1, 24]))));
        assert!(bad(Mstl {
            periods: Some(vec![24, 168]),
            windows: Some(vec![7]),
            ..Mstl::default()
        }));
        assert!(bad(Mstl {
            periods: Some(vec![24]),
            windows: Some(vec![0]),
            ..Mstl::default()
        }));
        let fitted = Mstl::new(Some(vec![24])).fit(&h).unwrap();
        assert!(fitted.predict(usize::MAX, &[], None).is_err());
        assert!(fitted.predict(0, &[], None).is_err());
        assert!(fitted.predict(2, &[0.0], None).is_err());
        let mut nan = y.clone();
        nan[10] = f64::INFINITY;
        assert!(matches!(
            Mstl::new(Some(vec![24])).fit(&History::new(&nan, &[])),
            Err(ForecastError::NonFinite { index: 10, .. })
        ));
        // Unsorted, duplicated periods with their windows.
        let fitted = Mstl {
            periods: Some(vec![168, 24, 24]),
            windows: Some(vec![3, 7, 9]),
            iterations: 1,
            ..Mstl::default()
        }
        .fit(&h)
        .unwrap();
        assert_eq!(fitted.periods(), &[24, 168]);
        assert_eq!(fitted.windows(), &[7, 3]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn never_panics_and_stays_finite(
            y in prop::collection::vec(-1e6..1e6f64, 0..400),
            p1 in 2usize..40,
            p2 in 2usize..200,
            h in 1usize..100,
            loess in any::<bool>(),
        ) {
            let periods = [p1.min(p2), p1.max(p2)];
            let model = if loess { Mstl::loess() } else { Mstl::default() };
            match model.fit(&History::new(&y, &periods)) {
                Ok(f) => {
                    prop_assert_eq!(f.residuals().len(), y.len());
                    prop_assert!(f.residuals().iter().all(|r| r.is_finite()));
                    let fc = f.predict(h, &[50.0, 80.0, 95.0], None);
                    prop_assert!(fc.is_ok(), "{:?}", fc);
                    if let Ok(fc) = fc {
                        prop_assert!(fc.mean().iter().all(|v| v.is_finite()));
                    }
                }
                Err(e) => prop_assert!(matches!(e, ForecastError::TooShort { .. }), "{e}"),
            }
        }
    }
}
