//! A bounded, deterministic Nelder–Mead minimiser.
//!
//! The models estimate a handful of parameters (ETS smoothing parameters, a
//! base temperature, …) by minimising a loss that is cheap to evaluate but
//! has no convenient gradient. [`NelderMead`] is the classic simplex method
//! (reflection 1, expansion 2, contraction ½, shrink ½) with:
//!
//! - **box constraints by projection**: every trial point is clamped into
//!   `[lower, upper]` before it is evaluated, so the loss is never called
//!   outside the box;
//! - **restarts**: when the simplex has converged, a fresh simplex is built
//!   around the best point and the search resumes, which repairs a simplex
//!   that collapsed on a face of the box or stalled in a valley; restarts stop
//!   when one no longer improves the loss;
//! - **a cap on evaluations** over all restarts;
//! - **determinism**: no randomness, so the same loss and start give the same
//!   answer;
//! - **robustness**: a loss that returns NaN or ±∞ is treated as +∞ (the
//!   point is worse than any finite one), never as a panic.

use super::ForecastError;

/// Nelder–Mead settings. [`NelderMead::default`] suits losses of up to ~10
/// parameters.
///
/// ```
/// use spe_core::NelderMead;
///
/// // Minimise (x - 3)² + (y + 1)² with x in [0, 2]: the constrained optimum is (2, -1).
/// let nm = NelderMead::default();
/// let min = nm
///     .minimize(|p| (p[0] - 3.0).powi(2) + (p[1] + 1.0).powi(2), &[1.0, 0.0], &[0.0, -5.0], &[2.0, 5.0])
///     .unwrap();
/// assert!((min.x[0] - 2.0).abs() < 1e-6 && (min.x[1] + 1.0).abs() < 1e-4);
/// assert!((min.value - 1.0).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NelderMead {
    /// Most loss evaluations over all restarts.
    pub max_evals: usize,
    /// Most restarts after the first convergence.
    pub restarts: usize,
    /// Relative tolerance on the spread of the loss over the simplex.
    pub ftol: f64,
    /// Tolerance on the simplex size, as a fraction of each box width.
    pub xtol: f64,
    /// Size of the initial simplex, as a fraction of each box width.
    pub initial_step: f64,
}

impl Default for NelderMead {
    fn default() -> Self {
        NelderMead {
            max_evals: 2_000,
            restarts: 2,
            ftol: 1e-10,
            xtol: 1e-6,
            initial_step: 0.1,
        }
    }
}

/// The result of [`NelderMead::minimize`].
///
/// ```
/// use spe_core::NelderMead;
///
/// let min = NelderMead::default().minimize(|p| p[0] * p[0], &[0.5], &[-1.0], &[1.0]).unwrap();
/// assert!(min.converged && min.evals > 0 && min.x[0].abs() < 1e-4);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    /// The best point found (inside the box).
    pub x: Vec<f64>,
    /// The loss at `x` (+∞ if the loss was never finite).
    pub value: f64,
    /// Loss evaluations made.
    pub evals: usize,
    /// Whether the last search met the tolerances before the evaluation cap.
    pub converged: bool,
}

/// The loss with evaluation counting and NaN/∞ mapped to +∞.
struct Counted<F> {
    f: F,
    evals: usize,
}

impl<F: FnMut(&[f64]) -> f64> Counted<F> {
    fn eval(&mut self, x: &[f64]) -> f64 {
        self.evals += 1;
        let v = (self.f)(x);
        if v.is_nan() || v == f64::INFINITY {
            f64::INFINITY
        } else if v == f64::NEG_INFINITY {
            // A loss of -∞ is a bug of the loss; do not let it win.
            f64::INFINITY
        } else {
            v
        }
    }
}

impl NelderMead {
    fn check(&self, x0: &[f64], lower: &[f64], upper: &[f64]) -> Result<(), ForecastError> {
        if lower.len() != x0.len() || upper.len() != x0.len() {
            return Err(ForecastError::invalid(format!(
                "start has {} coordinates, bounds {} and {}",
                x0.len(),
                lower.len(),
                upper.len()
            )));
        }
        for (i, ((x, lo), hi)) in x0.iter().zip(lower).zip(upper).enumerate() {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(ForecastError::invalid(format!(
                    "bounds [{lo}, {hi}] of coordinate {i} are not a finite interval"
                )));
            }
            if !x.is_finite() {
                return Err(ForecastError::NonFinite {
                    index: i,
                    value: *x,
                });
            }
        }
        let settings_ok = self.ftol.is_finite()
            && self.ftol >= 0.0
            && self.xtol.is_finite()
            && self.xtol >= 0.0
            && self.initial_step.is_finite()
            && self.initial_step > 0.0;
        if !settings_ok {
            return Err(ForecastError::invalid(
                "Nelder-Mead tolerances must be finite and non-negative, the initial step positive",
            ));
        }
        Ok(())
    }

    /// Minimise `f` over the box `[lower, upper]` from `x0` (clamped into the
    /// box). `f` is only ever called on points inside the box.
    ///
    /// Errors: bounds and start of different lengths, a non-finite or empty
    /// interval (`lower > upper`), a non-finite start, or invalid settings.
    /// A zero-dimensional problem evaluates `f` once.
    ///
    /// ```
    /// use spe_core::NelderMead;
    ///
    /// let rosenbrock = |p: &[f64]| (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2);
    /// let min = NelderMead::default()
    ///     .minimize(rosenbrock, &[-1.2, 1.0], &[-2.0, -2.0], &[2.0, 2.0])
    ///     .unwrap();
    /// assert!((min.x[0] - 1.0).abs() < 1e-4 && (min.x[1] - 1.0).abs() < 1e-4);
    /// assert!(NelderMead::default().minimize(rosenbrock, &[0.0], &[1.0], &[0.0]).is_err());
    /// ```
    pub fn minimize<F: FnMut(&[f64]) -> f64>(
        &self,
        f: F,
        x0: &[f64],
        lower: &[f64],
        upper: &[f64],
    ) -> Result<Minimum, ForecastError> {
        self.check(x0, lower, upper)?;
        let d = x0.len();
        let mut f = Counted { f, evals: 0 };
        let mut best: Vec<f64> = x0
            .iter()
            .zip(lower.iter().zip(upper))
            .map(|(x, (lo, hi))| x.clamp(*lo, *hi))
            .collect();
        let mut best_f = f.eval(&best);
        if d == 0 {
            return Ok(Minimum {
                x: best,
                value: best_f,
                evals: f.evals,
                converged: true,
            });
        }
        let width: Vec<f64> = lower.iter().zip(upper).map(|(lo, hi)| hi - lo).collect();
        let mut ws = Workspace::new(d);
        let mut converged = false;
        for round in 0..=self.restarts {
            if f.evals >= self.max_evals.max(1) {
                break;
            }
            let before = best_f;
            converged = self.search(
                &mut f,
                &mut ws,
                &mut best,
                &mut best_f,
                lower,
                upper,
                &width,
            );
            if round > 0 && before - best_f <= self.ftol * before.abs() {
                break;
            }
        }
        Ok(Minimum {
            x: best,
            value: best_f,
            evals: f.evals,
            converged,
        })
    }

    /// One Nelder–Mead search from `best`; updates `best` and `best_f`.
    /// Returns whether it converged before the evaluation cap.
    #[allow(clippy::too_many_arguments)]
    fn search<F: FnMut(&[f64]) -> f64>(
        &self,
        f: &mut Counted<F>,
        ws: &mut Workspace,
        best: &mut [f64],
        best_f: &mut f64,
        lower: &[f64],
        upper: &[f64],
        width: &[f64],
    ) -> bool {
        let d = best.len();
        let max_evals = self.max_evals.max(1);
        // Initial simplex: the start and one step along each axis (towards
        // the inside of the box when the start is on the upper bound).
        ws.pts[0].copy_from_slice(best);
        ws.vals[0] = *best_f;
        for i in 0..d {
            let step = self.initial_step * width[i];
            let p = &mut ws.pts[i + 1];
            p.copy_from_slice(best);
            p[i] = if best[i] + step <= upper[i] {
                best[i] + step
            } else {
                best[i] - step
            }
            .clamp(lower[i], upper[i]);
            ws.vals[i + 1] = f.eval(&ws.pts[i + 1]);
        }
        let mut converged = false;
        while f.evals < max_evals {
            ws.order();
            let (b, w, sw) = (ws.idx[0], ws.idx[d], ws.idx[d - 1]);
            let (fb, fw, fsw) = (ws.vals[b], ws.vals[w], ws.vals[sw]);
            // Convergence: the loss is flat over the simplex and the simplex is small.
            let flat = fw == fb || fw - fb <= self.ftol * fb.abs();
            let small = ws.pts.iter().all(|p| {
                p.iter()
                    .zip(&ws.pts[b])
                    .zip(width)
                    .all(|((x, xb), wd)| (x - xb).abs() <= self.xtol * wd)
            });
            if flat && small {
                converged = true;
                break;
            }
            // Centroid of all points but the worst.
            ws.centroid.fill(0.0);
            for &i in &ws.idx[..d] {
                for (c, x) in ws.centroid.iter_mut().zip(&ws.pts[i]) {
                    *c += x;
                }
            }
            for c in &mut ws.centroid {
                *c /= d as f64;
            }
            // Reflection.
            ws.trial(w, 1.0, lower, upper, 0);
            let fr = f.eval(&ws.tr[0]);
            if fr < fb {
                // Expansion.
                ws.trial(w, 2.0, lower, upper, 1);
                let fe = f.eval(&ws.tr[1]);
                if fe < fr {
                    ws.accept(w, 1, fe);
                } else {
                    ws.accept(w, 0, fr);
                }
            } else if fr < fsw {
                ws.accept(w, 0, fr);
            } else {
                // Contraction: outside if the reflection beat the worst, inside otherwise.
                let (coef, target) = if fr < fw { (0.5, fr) } else { (-0.5, fw) };
                ws.trial(w, coef, lower, upper, 1);
                let fc = f.eval(&ws.tr[1]);
                if fc < target || (coef > 0.0 && fc <= target) {
                    ws.accept(w, 1, fc);
                } else {
                    // Shrink towards the best point.
                    for k in 0..=d {
                        if k == b || f.evals >= max_evals {
                            continue;
                        }
                        for j in 0..d {
                            let xb = ws.pts[b][j];
                            let v = xb + 0.5 * (ws.pts[k][j] - xb);
                            ws.pts[k][j] = v.clamp(lower[j], upper[j]);
                        }
                        ws.vals[k] = f.eval(&ws.pts[k]);
                    }
                }
            }
        }
        let (i, v) = ws
            .vals
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, *best_f));
        if v < *best_f {
            *best_f = v;
            best.copy_from_slice(&ws.pts[i]);
        }
        converged
    }
}

/// Buffers of one search, allocated once.
struct Workspace {
    pts: Vec<Vec<f64>>,
    vals: Vec<f64>,
    idx: Vec<usize>,
    centroid: Vec<f64>,
    tr: [Vec<f64>; 2],
}

impl Workspace {
    fn new(d: usize) -> Self {
        Workspace {
            pts: vec![vec![0.0; d]; d + 1],
            vals: vec![f64::INFINITY; d + 1],
            idx: (0..=d).collect(),
            centroid: vec![0.0; d],
            tr: [vec![0.0; d], vec![0.0; d]],
        }
    }

    /// Sort the vertex indices by loss (stable, so ties keep their order).
    fn order(&mut self) {
        let vals = &self.vals;
        self.idx.sort_by(|a, b| vals[*a].total_cmp(&vals[*b]));
    }

    /// `tr[slot] = clamp(centroid + coef · (centroid − pts[from]))`.
    fn trial(&mut self, from: usize, coef: f64, lower: &[f64], upper: &[f64], slot: usize) {
        let (pts, tr, centroid) = (&self.pts, &mut self.tr, &self.centroid);
        for (j, t) in tr[slot].iter_mut().enumerate() {
            let c = centroid[j];
            *t = (c + coef * (c - pts[from][j])).clamp(lower[j], upper[j]);
        }
    }

    /// Replace vertex `k` by trial point `slot`.
    fn accept(&mut self, k: usize, slot: usize, value: f64) {
        let (pts, tr) = (&mut self.pts, &self.tr);
        pts[k].copy_from_slice(&tr[slot]);
        self.vals[k] = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(p: &[f64]) -> f64 {
        (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2)
    }

    #[test]
    fn rosenbrock_is_solved_from_the_classic_start() {
        let min = NelderMead::default()
            .minimize(rosenbrock, &[-1.2, 1.0], &[-5.0, -5.0], &[5.0, 5.0])
            .unwrap();
        assert!((min.x[0] - 1.0).abs() < 1e-5, "{min:?}");
        assert!((min.x[1] - 1.0).abs() < 1e-5, "{min:?}");
        assert!(min.value < 1e-10);
        assert!(min.evals <= 2_000);
    }

    #[test]
    fn rosenbrock_in_four_dimensions() {
        let f = |p: &[f64]| {
            p.windows(2)
                .map(|w| (1.0 - w[0]).powi(2) + 100.0 * (w[1] - w[0] * w[0]).powi(2))
                .sum::<f64>()
        };
        let nm = NelderMead {
            max_evals: 20_000,
            restarts: 5,
            ..NelderMead::default()
        };
        let min = nm
            .minimize(f, &[-1.0, 0.5, -0.5, 1.5], &[-3.0; 4], &[3.0; 4])
            .unwrap();
        for x in &min.x {
            assert!((x - 1.0).abs() < 1e-3, "{min:?}");
        }
    }

    #[test]
    fn bounded_quadratic_stops_on_the_active_bounds() {
        // Unconstrained optimum (3, -2, 0.5) lies outside the box in x and y.
        let f = |p: &[f64]| {
            (p[0] - 3.0).powi(2) + 2.0 * (p[1] + 2.0).powi(2) + 0.5 * (p[2] - 0.5).powi(2)
        };
        let mut calls_outside = 0;
        let (lo, hi) = ([0.0, -1.0, 0.0], [1.0, 1.0, 1.0]);
        let min = NelderMead::default()
            .minimize(
                |p| {
                    if p.iter().zip(&lo).zip(&hi).any(|((x, l), h)| x < l || x > h) {
                        calls_outside += 1;
                    }
                    f(p)
                },
                &[0.5, 0.5, 0.9],
                &lo,
                &hi,
            )
            .unwrap();
        assert_eq!(calls_outside, 0);
        assert!((min.x[0] - 1.0).abs() < 1e-6, "{min:?}");
        assert!((min.x[1] + 1.0).abs() < 1e-6, "{min:?}");
        assert!((min.x[2] - 0.5).abs() < 1e-3, "{min:?}");
    }

    #[test]
    fn start_on_the_upper_bound_and_outside_is_clamped() {
        let min = NelderMead::default()
            .minimize(|p| (p[0] - 0.2).powi(2), &[7.0], &[0.0], &[1.0])
            .unwrap();
        assert!((min.x[0] - 0.2).abs() < 1e-5);
    }

    #[test]
    fn deterministic() {
        let nm = NelderMead::default();
        let a = nm
            .minimize(rosenbrock, &[0.0, 0.0], &[-2.0; 2], &[2.0; 2])
            .unwrap();
        let b = nm
            .minimize(rosenbrock, &[0.0, 0.0], &[-2.0; 2], &[2.0; 2])
            .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn nan_and_infinite_losses_are_avoided() {
        // NaN left of 0.3, the minimum at 0.5.
        let f = |p: &[f64]| {
            if p[0] < 0.3 {
                f64::NAN
            } else if p[0] > 0.9 {
                f64::NEG_INFINITY
            } else {
                (p[0] - 0.5).powi(2)
            }
        };
        let min = NelderMead::default()
            .minimize(f, &[0.6], &[0.0], &[1.0])
            .unwrap();
        assert!((min.x[0] - 0.5).abs() < 1e-4, "{min:?}");
        let never = NelderMead::default()
            .minimize(|_| f64::NAN, &[0.6, 0.1], &[0.0; 2], &[1.0; 2])
            .unwrap();
        assert_eq!(never.value, f64::INFINITY);
        assert!(never.evals <= 2_000);
    }

    #[test]
    fn degenerate_inputs() {
        let nm = NelderMead::default();
        let z = nm.minimize(|_| 4.0, &[], &[], &[]).unwrap();
        assert_eq!((z.value, z.evals), (4.0, 1));
        // A fixed coordinate (lower == upper) stays fixed.
        let m = nm
            .minimize(
                |p| (p[0] - 0.3).powi(2) + p[1],
                &[0.0, 2.0],
                &[0.0, 2.0],
                &[1.0, 2.0],
            )
            .unwrap();
        assert_eq!(m.x[1], 2.0);
        assert!((m.x[0] - 0.3).abs() < 1e-4);
        assert!(nm.minimize(|_| 0.0, &[0.0], &[0.0, 1.0], &[1.0]).is_err());
        assert!(nm.minimize(|_| 0.0, &[f64::NAN], &[0.0], &[1.0]).is_err());
        assert!(
            nm.minimize(|_| 0.0, &[0.0], &[f64::NEG_INFINITY], &[1.0])
                .is_err()
        );
        let capped = NelderMead {
            max_evals: 5,
            ..NelderMead::default()
        }
        .minimize(rosenbrock, &[0.0, 0.0], &[-2.0; 2], &[2.0; 2])
        .unwrap();
        assert!(capped.evals <= 6 && !capped.converged);
    }
}
