//! STL, the seasonal-trend decomposition by loess of Cleveland, Cleveland,
//! McRae & Terpenning (1990), documented on [`Stl`].

use super::ForecastError;

/// STL: a series split into a seasonal component of one period, a trend and
/// a remainder, by loess smoothers (Cleveland et al., *STL: A
/// Seasonal-Trend Decomposition Procedure Based on Loess*, Journal of
/// Official Statistics 6(1), 1990).
///
/// # Method
///
/// The inner loop of the paper, repeated
/// [`inner_iterations`](Stl::inner_iterations) times from a zero trend:
///
/// 1. **detrend**: the series minus the current trend;
/// 2. **cycle-subseries smoothing**: each phase's values (`t mod period`)
///    are smoothed by loess over
///    [`seasonal_window`](Stl::seasonal_window) cycles, and extended one
///    cycle before and one after;
/// 3. **low-pass filter** of the result: moving averages of `period`,
///    `period` and 3 values, then loess (degree 1) over
///    [`low_pass_window`](Stl::low_pass_window) values;
/// 4. **seasonal** = step 2 − step 3 (so the component has no level of its
///    own);
/// 5. **trend**: loess (degree [`trend_degree`](Stl::trend_degree)) of the
///    series minus the seasonal component over
///    [`trend_window`](Stl::trend_window) values.
///
/// Loess uses tricube weights: the most recent cycles count most at the end
/// of the series, which is what a forecast continues. As in the reference
/// implementation, each smoother is evaluated every `⌈window / 10⌉` points
/// and interpolated linearly in between, so a decomposition costs O(n)
/// with a small constant. The robustness loop (outer iterations) is not
/// implemented: forecasting models downstream handle outliers themselves.
///
/// Defaults follow R's `stl` and the MSTL paper: seasonal loess of degree
/// 0, trend and low-pass loess of degree 1, 2 inner iterations, a trend
/// window of the smallest odd number ≥ `1.5·period / (1 − 1.5 /
/// seasonal_window)` and a low-pass window of the smallest odd number ≥
/// `period`. Even windows are rounded up to the next odd number.
///
/// ```
/// use spe_core::Stl;
///
/// // Three weeks of a daily cycle on a rising line.
/// let y: Vec<f64> = (0..24 * 21)
///     .map(|t| 0.1 * t as f64 + [0.0, 3.0, 1.0, -4.0][(t % 24) / 6])
///     .collect();
/// let parts = Stl::new(24, 7).decompose(&y).unwrap();
/// // The seasonal component repeats, the trend is the line.
/// let s = parts.seasonal();
/// assert!((s[24 * 10] - s[24 * 11]).abs() < 1e-6);
/// assert!((parts.trend()[24 * 10 + 3] - 0.1 * (24.0 * 10.0 + 3.0) - 0.5).abs() < 0.5);
/// // The three parts add up to the series.
/// let back = parts.seasonal()[5] + parts.trend()[5] + parts.remainder()[5];
/// assert!((back - y[5]).abs() < 1e-9);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stl {
    /// The seasonal period in steps (at least 2).
    pub period: usize,
    /// Cycles in the cycle-subseries loess window (at least 3; rounded up to
    /// an odd number).
    pub seasonal_window: usize,
    /// Degree of the cycle-subseries loess: 0 (a weighted mean, the
    /// default) or 1 (a weighted line, which extrapolates a drifting shape).
    pub seasonal_degree: u8,
    /// Values in the trend loess window; `None` for the default.
    pub trend_window: Option<usize>,
    /// Degree of the trend loess: 0 or 1 (the default).
    pub trend_degree: u8,
    /// Values in the low-pass loess window; `None` for the default.
    pub low_pass_window: Option<usize>,
    /// Inner iterations (at least 1; 2 by default).
    pub inner_iterations: usize,
}

impl Stl {
    /// STL with this period and seasonal window, and the defaults for the
    /// rest.
    ///
    /// ```
    /// use spe_core::Stl;
    ///
    /// let stl = Stl::new(48, 11);
    /// assert_eq!((stl.seasonal_degree, stl.trend_degree, stl.inner_iterations), (0, 1, 2));
    /// ```
    pub fn new(period: usize, seasonal_window: usize) -> Self {
        Stl {
            period,
            seasonal_window,
            seasonal_degree: 0,
            trend_window: None,
            trend_degree: 1,
            low_pass_window: None,
            inner_iterations: 2,
        }
    }

    /// Decomposes `y`, which must be finite and at least two periods long.
    ///
    /// # Errors
    ///
    /// [`ForecastError::InvalidArgument`] for a period under 2, a window
    /// under 3 (or a trend or low-pass window under 3), a degree over 1, a
    /// non-finite value or one beyond ±[`MAX_OBSERVATION`](crate::MAX_OBSERVATION); [`ForecastError::TooShort`] for fewer than two
    /// periods of data.
    ///
    /// ```
    /// use spe_core::{ForecastError, Stl};
    ///
    /// assert!(matches!(Stl::new(24, 7).decompose(&[1.0; 30]), Err(ForecastError::TooShort { .. })));
    /// assert!(matches!(Stl::new(1, 7).decompose(&[1.0; 30]), Err(ForecastError::InvalidArgument(_))));
    /// ```
    pub fn decompose(&self, y: &[f64]) -> Result<StlDecomposition, ForecastError> {
        let spans = self.spans()?;
        let n = y.len();
        let needed = self.period.saturating_mul(2);
        if n < needed {
            return Err(ForecastError::TooShort {
                model: "stl".into(),
                needed,
                got: n,
            });
        }
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(ForecastError::invalid(format!(
                "stl: value {} at index {i} is not finite",
                y[i]
            )));
        }
        if let Some((i, v)) = super::beyond_max_observation(y) {
            return Err(ForecastError::invalid(format!(
                "stl: value {v:e} at index {i} is beyond ±{:e}: rescale the series",
                super::MAX_OBSERVATION
            )));
        }
        let mut work = StlWork::new(n, self.period);
        let mut seasonal = vec![0.0; n];
        let mut trend = vec![0.0; n];
        work.run(y, &spans, &mut seasonal, &mut trend);
        let remainder = y
            .iter()
            .zip(&seasonal)
            .zip(&trend)
            .map(|((v, s), t)| v - s - t)
            .collect();
        Ok(StlDecomposition {
            seasonal,
            trend,
            remainder,
        })
    }

    /// The windows, degrees and jumps actually used.
    pub(crate) fn spans(&self) -> Result<Spans, ForecastError> {
        let np = self.period;
        if np < 2 {
            return Err(ForecastError::invalid(format!(
                "stl: period {np} is less than 2"
            )));
        }
        if self.seasonal_degree > 1 || self.trend_degree > 1 {
            return Err(ForecastError::invalid("stl: loess degrees are 0 or 1"));
        }
        let ns = odd(self.seasonal_window);
        let nt = match self.trend_window {
            Some(w) => odd(w),
            None => {
                let raw = 1.5 * np as f64 / (1.0 - 1.5 / ns as f64);
                // Saturates for absurd periods; checked below like a given window.
                odd(raw.ceil() as usize)
            }
        };
        let nl = odd(self.low_pass_window.unwrap_or(np));
        // Named as given (a window of 0 or 2 is used as the next odd one).
        let given = [
            ("seasonal", Some(self.seasonal_window), ns),
            ("trend", self.trend_window, nt),
            ("low-pass", self.low_pass_window, nl),
        ];
        for (what, given, w) in given {
            if w < 3 {
                let window = match given {
                    Some(g) if g != w => format!("{g} (used as {w})"),
                    _ => w.to_string(),
                };
                return Err(ForecastError::invalid(format!(
                    "stl: {what} window {window} is less than 3"
                )));
            }
        }
        Ok(Spans {
            period: np,
            seasonal: ns,
            trend: nt,
            low_pass: nl,
            seasonal_degree: self.seasonal_degree,
            trend_degree: self.trend_degree,
            inner: self.inner_iterations.max(1),
        })
    }
}

/// The smallest odd number ≥ `w` (saturating).
fn odd(w: usize) -> usize {
    if w % 2 == 1 { w } else { w.saturating_add(1) }
}

/// The parts of a series decomposed by [`Stl`]: seasonal + trend +
/// remainder = the series.
#[derive(Debug, Clone, PartialEq)]
pub struct StlDecomposition {
    seasonal: Vec<f64>,
    trend: Vec<f64>,
    remainder: Vec<f64>,
}

impl StlDecomposition {
    /// The seasonal component, one value per observation.
    pub fn seasonal(&self) -> &[f64] {
        &self.seasonal
    }

    /// The trend, one value per observation.
    pub fn trend(&self) -> &[f64] {
        &self.trend
    }

    /// What is left: the series minus the seasonal component and the trend.
    pub fn remainder(&self) -> &[f64] {
        &self.remainder
    }
}

/// Checked windows of one decomposition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spans {
    pub(crate) period: usize,
    pub(crate) seasonal: usize,
    trend: usize,
    low_pass: usize,
    seasonal_degree: u8,
    trend_degree: u8,
    inner: usize,
}

/// A loess smoother's evaluation step: every `⌈span / 10⌉` points.
fn jump(span: usize) -> usize {
    span.div_ceil(10).max(1)
}

/// Buffers of one decomposition, reused across the inner iterations (and by
/// MSTL across its components).
pub(crate) struct StlWork {
    detrended: Vec<f64>,
    cycle: Vec<f64>,
    low_pass: Vec<f64>,
    scratch: Vec<f64>,
    sub: Vec<f64>,
    sub_out: Vec<f64>,
}

impl StlWork {
    pub(crate) fn new(n: usize, period: usize) -> Self {
        let long = n + 2 * period;
        StlWork {
            detrended: vec![0.0; n],
            cycle: vec![0.0; long],
            low_pass: vec![0.0; long],
            scratch: vec![0.0; long],
            sub: Vec::new(),
            sub_out: Vec::new(),
        }
    }

    /// The inner loop on `y` (finite, at least two periods long): the
    /// seasonal component into `seasonal` and the trend into `trend`,
    /// starting from the trend in `trend` (zeros for a first
    /// decomposition).
    pub(crate) fn run(&mut self, y: &[f64], s: &Spans, seasonal: &mut [f64], trend: &mut [f64]) {
        let n = y.len();
        let np = s.period;
        self.cycle.resize(n + 2 * np, 0.0);
        self.low_pass.resize(n + 2 * np, 0.0);
        self.scratch.resize(n + 2 * np, 0.0);
        self.detrended.resize(n, 0.0);
        for _ in 0..s.inner {
            for ((d, v), t) in self.detrended.iter_mut().zip(y).zip(trend.iter()) {
                *d = v - t;
            }
            self.cycle_subseries(s, n);
            // Low-pass: MA(np), MA(np), MA(3), then loess.
            moving_average(&self.cycle[..n + 2 * np], np, &mut self.low_pass);
            moving_average(&self.low_pass[..n + np + 1], np, &mut self.scratch);
            moving_average(&self.scratch[..n + 2], 3, &mut self.low_pass);
            self.scratch[..n].copy_from_slice(&self.low_pass[..n]);
            smooth(
                &self.scratch[..n],
                s.low_pass,
                1,
                jump(s.low_pass),
                &mut self.low_pass[..n],
            );
            for (i, out) in seasonal.iter_mut().enumerate() {
                *out = self.cycle[np + i] - self.low_pass[i];
            }
            for ((d, v), se) in self.detrended.iter_mut().zip(y).zip(seasonal.iter()) {
                *d = v - se;
            }
            smooth(
                &self.detrended,
                s.trend,
                s.trend_degree,
                jump(s.trend),
                trend,
            );
        }
    }

    /// Step 2: loess of each cycle-subseries of `self.detrended` into
    /// `self.cycle` (length `n + 2·period`: one extra cycle at each end).
    fn cycle_subseries(&mut self, s: &Spans, n: usize) {
        let np = s.period;
        let ns = s.seasonal;
        for j in 0..np.min(n) {
            let k = (n - 1 - j) / np + 1;
            self.sub.clear();
            self.sub.extend((0..k).map(|i| self.detrended[i * np + j]));
            self.sub_out.resize(k + 2, 0.0);
            smooth(
                &self.sub,
                ns,
                s.seasonal_degree,
                jump(ns),
                &mut self.sub_out[1..=k],
            );
            // One cycle before and one after, extrapolated.
            let right = ns.min(k) - 1;
            self.sub_out[0] = estimate(&self.sub, ns, s.seasonal_degree, -1.0, 0, right)
                .unwrap_or(self.sub_out[1]);
            let left = k.saturating_sub(ns);
            self.sub_out[k + 1] = estimate(&self.sub, ns, s.seasonal_degree, k as f64, left, k - 1)
                .unwrap_or(self.sub_out[k]);
            for (m, v) in self.sub_out.iter().enumerate() {
                self.cycle[m * np + j] = *v;
            }
        }
    }
}

/// Moving averages of `len` consecutive values of `x` into
/// `out[..x.len() - len + 1]`.
fn moving_average(x: &[f64], len: usize, out: &mut [f64]) {
    let n = x.len();
    if len == 0 || n < len {
        return;
    }
    let inv = 1.0 / len as f64;
    let mut sum: f64 = x[..len].iter().sum();
    out[0] = sum * inv;
    for i in 1..=n - len {
        sum += x[i + len - 1] - x[i - 1];
        out[i] = sum * inv;
    }
}

/// Loess of `y` with `span` neighbours and `degree` 0 or 1, evaluated every
/// `jump` points and interpolated linearly in between, into `out`
/// (`out.len() == y.len()`).
fn smooth(y: &[f64], span: usize, degree: u8, jump: usize, out: &mut [f64]) {
    let n = y.len();
    if n < 2 {
        out.copy_from_slice(y);
        return;
    }
    let step = jump.min(n - 1).max(1);
    let half = span.div_ceil(2);
    let window = |i: usize| -> (usize, usize) {
        if span >= n {
            (0, n - 1)
        } else if i < half {
            (0, span - 1)
        } else if i >= n - half {
            (n - span, n - 1)
        } else {
            (i + 1 - half, i + span - half)
        }
    };
    let mut i = 0;
    while i < n {
        let (l, r) = window(i);
        out[i] = estimate(y, span, degree, i as f64, l, r).unwrap_or(y[i]);
        i += step;
    }
    if step > 1 {
        let mut i = 0;
        while i + step < n {
            let delta = (out[i + step] - out[i]) / step as f64;
            for j in i + 1..i + step {
                out[j] = out[i] + delta * (j - i) as f64;
            }
            i += step;
        }
        // The last evaluated point, then the end.
        let k = ((n - 1) / step) * step;
        if k != n - 1 {
            let (l, r) = window(n - 1);
            out[n - 1] = estimate(y, span, degree, (n - 1) as f64, l, r).unwrap_or(y[n - 1]);
            if k != n - 2 {
                let delta = (out[n - 1] - out[k]) / (n - 1 - k) as f64;
                for j in k + 1..n - 1 {
                    out[j] = out[k] + delta * (j - k) as f64;
                }
            }
        }
    }
}

/// The loess estimate at position `xs` from `y[left..=right]`, with tricube
/// weights over the window's half-width (widened when `span` exceeds the
/// series); `None` if every weight is zero.
///
/// One pass: with `d = j − xs`, the normalised weights `wⱼ` and their mean
/// `a = Σ wⱼ dⱼ`, degree 1 reweights by `1 + b·(dⱼ − a)` with `b = −a / c`,
/// `c = Σ wⱼ (dⱼ − a)²` — the reference implementation's update, computed
/// from the weighted sums instead of a weight buffer (distances to `xs`
/// keep the sums well conditioned).
fn estimate(y: &[f64], span: usize, degree: u8, xs: f64, left: usize, right: usize) -> Option<f64> {
    let n = y.len();
    let range = n as f64 - 1.0;
    let h = half_width(n, span, xs, left, right);
    let (sw, swd, swdd, swy, swdy) = weighted_sums(y, xs, h, left, right);
    if sw <= 0.0 {
        return None;
    }
    let mean_y = swy / sw;
    if h > 0.0 && degree > 0 {
        let a = swd / sw;
        let c = swdd / sw - a * a;
        if c.max(0.0).sqrt() > 0.001 * range {
            let b = -a / c;
            return Some(mean_y + b * (swdy / sw - a * mean_y));
        }
    }
    Some(mean_y)
}

/// The loess half-width at `xs` over `left..=right` of a series of `n`
/// values: the farther end, widened when `span` exceeds the series.
fn half_width(n: usize, span: usize, xs: f64, left: usize, right: usize) -> f64 {
    let h = (xs - left as f64).max(right as f64 - xs);
    if span > n {
        h + ((span - n) / 2) as f64
    } else {
        h
    }
}

/// The tricube weight at distance `r` for half-width `h`: 1 within
/// `0.001·h`, 0 beyond `0.999·h` (the reference implementation's cut-offs),
/// `(1 − (r/h)³)³` in between.
fn tricube(r: f64, h: f64) -> f64 {
    if r <= 0.001 * h {
        1.0
    } else if r > 0.999 * h {
        0.0
    } else {
        let q = r / h;
        let c = 1.0 - q * q * q;
        c * c * c
    }
}

/// Σw, Σw·d, Σw·d², Σw·y, Σw·d·y over `left..=right`, with `d = j − xs` and
/// `w` the [`tricube`] weight of `|d|`.
fn weighted_sums(
    y: &[f64],
    xs: f64,
    h: f64,
    left: usize,
    right: usize,
) -> (f64, f64, f64, f64, f64) {
    let (mut sw, mut swd, mut swdd, mut swy, mut swdy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut d = left as f64 - xs;
    for v in &y[left..=right] {
        let w = tricube(d.abs(), h);
        let wd = w * d;
        sw += w;
        swd += wd;
        swdd += wd * d;
        swy += w * v;
        swdy += wd * v;
        d += 1.0;
    }
    (sw, swd, swdd, swy, swdy)
}

/// Estimation variance factor of the seasonal component's last value: the
/// sum of the squared normalised tricube weights of a degree-0 loess at the
/// end of a subseries of `k` cycles with window `span` (1 / effective
/// number of cycles).
pub(crate) fn end_weight_square_sum(span: usize, k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    // The window and half-width of `estimate` at the last cycle.
    let (left, xs) = (k.saturating_sub(span), (k - 1) as f64);
    let h = half_width(k, span, xs, left, k - 1);
    let (sum, sum_sq) = (left..k)
        .map(|j| tricube(xs - j as f64, h))
        .fold((0.0, 0.0), |(s, q), w| (s + w, q + w * w));
    if sum > 0.0 { sum_sq / (sum * sum) } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_pure_seasonal_series_is_split_exactly_and_a_line_closely() {
        let pattern = [3.0, -1.0, 4.0, -6.0];
        // On a level: exact. On a line: the degree-0 seasonal loess leaks a
        // little of the slope near the ends (2 % of the pattern's range here).
        for (slope, tolerance) in [(0.0, 1e-9), (0.5, 0.05)] {
            let y: Vec<f64> = (0..4 * 30)
                .map(|t| 10.0 + slope * t as f64 + pattern[t % 4])
                .collect();
            let parts = Stl::new(4, 7).decompose(&y).unwrap();
            for t in 0..y.len() {
                let (s, tr) = (parts.seasonal()[t], parts.trend()[t]);
                assert!(
                    (s - pattern[t % 4]).abs() < tolerance,
                    "slope {slope}, t={t}: {s}"
                );
                let line = 10.0 + slope * t as f64;
                assert!((tr - line).abs() < tolerance, "slope {slope}, t={t}: {tr}");
            }
        }
    }

    #[test]
    fn a_window_too_short_is_named_as_given() {
        let e = Stl::new(24, 0).spans().unwrap_err();
        assert!(
            e.to_string()
                .contains("seasonal window 0 (used as 1) is less than 3"),
            "{e}"
        );
        let e = Stl::new(24, 1).spans().unwrap_err();
        assert!(
            e.to_string().contains("seasonal window 1 is less than 3"),
            "{e}"
        );
        let e = Stl {
            low_pass_window: Some(0),
            ..Stl::new(24, 7)
        }
        .spans()
        .unwrap_err();
        assert!(
            e.to_string().contains("low-pass window 0 (used as 1)"),
            "{e}"
        );
        // 2 is used as 3: fine.
        let spans = Stl {
            trend_window: Some(2),
            ..Stl::new(24, 7)
        }
        .spans()
        .unwrap();
        assert_eq!(spans.trend, 3);
    }

    #[test]
    fn the_end_follows_the_recent_shape() {
        // The daily shape changes halfway; the last cycle's seasonal
        // component must be close to the new shape, not the average.
        let y: Vec<f64> = (0..24 * 40)
            .map(|t| {
                let phase = (t % 24) as f64;
                if t < 24 * 20 { phase } else { 23.0 - phase }
            })
            .collect();
        let parts = Stl::new(24, 7).decompose(&y).unwrap();
        let last = &parts.seasonal()[y.len() - 24..];
        assert!(last[0] > 8.0 && last[23] < -8.0, "{last:?}");
    }

    #[test]
    fn smooth_matches_a_straight_line_with_jumps() {
        // Degree 1 loess reproduces a line exactly, with or without jumps.
        let y: Vec<f64> = (0..101).map(|t| 2.0 * t as f64 - 7.0).collect();
        for jump in [1, 3, 10, 200] {
            let mut out = vec![0.0; y.len()];
            smooth(&y, 21, 1, jump, &mut out);
            for (a, b) in out.iter().zip(&y) {
                assert!((a - b).abs() < 1e-9, "jump {jump}");
            }
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        let y = vec![1.0; 100];
        let mut stl = Stl::new(10, 7);
        stl.seasonal_degree = 2;
        assert!(stl.decompose(&y).is_err());
        let mut stl = Stl::new(10, 7);
        stl.trend_window = Some(1);
        assert!(stl.decompose(&y).is_err());
        assert!(Stl::new(10, 1).decompose(&y).is_err());
        let mut nan = y.clone();
        nan[3] = f64::NAN;
        assert!(Stl::new(10, 7).decompose(&nan).is_err());
    }

    #[test]
    fn end_weights_shrink_with_the_window() {
        let wide = end_weight_square_sum(15, 40);
        let narrow = end_weight_square_sum(5, 40);
        assert!(wide < narrow && narrow < 1.0, "{wide} {narrow}");
        // Fewer cycles than the window: every cycle is used.
        assert!(end_weight_square_sum(15, 1) == 1.0);
    }

    proptest! {
        #[test]
        fn parts_add_up_and_stay_finite(
            y in prop::collection::vec(-1e6f64..1e6, 8..300),
            period in 2usize..12,
            window in 3usize..15,
        ) {
            prop_assume!(y.len() >= 2 * period);
            let parts = Stl::new(period, window).decompose(&y).unwrap();
            for (t, v) in y.iter().enumerate() {
                let s = parts.seasonal()[t] + parts.trend()[t] + parts.remainder()[t];
                prop_assert!(s.is_finite());
                prop_assert!((s - v).abs() <= 1e-6 * (1.0 + v.abs()));
            }
        }
    }
}
