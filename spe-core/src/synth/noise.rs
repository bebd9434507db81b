//! Deterministic, stateless noise: the value at an hour depends only on
//! (seed, hour), never on where a generation window starts.
//!
//! Autocorrelated noise is built as *value noise*: independent standard
//! normal values on knots every `period` hours (drawn from a hash of the seed
//! and the knot index), blended between knots with the smoothstep weight
//! `w = 3f² − 2f³` and renormalised by `√((1−w)² + w²)` so that every hour has
//! exactly unit variance. Summing octaves of different periods gives a
//! stationary Gaussian process whose autocorrelation decays over roughly the
//! longest period — the persistence of weather — while a restart, or a window
//! that overlaps an earlier one, reproduces the same values.

/// SplitMix64's finaliser: a fast, well-mixed 64-bit hash.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed derived from a parent seed and a stream label (one per variable).
pub(crate) fn derive_seed(seed: u64, stream: u64) -> u64 {
    mix64(seed ^ mix64(stream.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

/// A uniform value in the open interval (0, 1) for `(seed, key)`.
#[inline]
pub(crate) fn uniform(seed: u64, key: i64) -> f64 {
    let bits = mix64(seed ^ (key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 11;
    (bits as f64 + 0.5) / (1u64 << 53) as f64
}

/// A standard normal value for `(seed, key)`, by inversion of the normal CDF.
#[inline]
pub(crate) fn gaussian(seed: u64, key: i64) -> f64 {
    inverse_normal_cdf(uniform(seed, key))
}

/// Acklam's rational approximation of the inverse standard normal CDF
/// (relative error below 1.2e-9 over (0, 1)).
pub(crate) fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// The standard normal CDF Φ(z), through erfc (W. J. Cody's rational
/// approximation as given in Numerical Recipes' `erfcc`, fractional error < 1.2e-7).
pub(crate) fn normal_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    let erfc = if x >= 0.0 { erfc } else { 2.0 - erfc };
    0.5 * erfc
}

/// Lanczos approximation of the gamma function (g = 7, n = 9), for x > 0.
pub(crate) fn gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x))
    } else {
        let x = x - 1.0;
        let mut a = COEF[0];
        let t = x + G + 0.5;
        for (i, c) in COEF.iter().enumerate().skip(1) {
            a += c / (x + i as f64);
        }
        (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
    }
}

/// One octave of value noise: knots every `period_h` hours, weighted.
#[derive(Debug, Clone)]
struct Octave {
    seed: u64,
    period_h: f64,
    weight: f64,
    /// For an integral period, the blend weights `(a, b)` of knot k and k+1
    /// at each whole hour into the period (the hot path of the generator).
    table: Option<Vec<(f64, f64)>>,
}

/// Blend weights of the two knots at fraction `f` of the way from one to the
/// next: smoothstep, renormalised to keep unit variance.
#[inline]
fn blend_weights(f: f64) -> (f64, f64) {
    let w = f * f * (3.0 - 2.0 * f);
    let norm = ((1.0 - w) * (1.0 - w) + w * w).sqrt();
    ((1.0 - w) / norm, w / norm)
}

impl Octave {
    /// Knot index and blend weights at `hour`. Whole hours on an integral
    /// period take the table; both paths give the same value for a given
    /// hour, whoever asks.
    #[inline]
    fn locate(&self, hour: f64) -> (i64, (f64, f64)) {
        if let Some(table) = &self.table {
            if hour.fract() == 0.0 && hour.abs() < 1e15 {
                let h = hour as i64;
                let p = table.len() as i64;
                return (h.div_euclid(p), table[h.rem_euclid(p) as usize]);
            }
        }
        let x = hour / self.period_h;
        let k = x.floor();
        (k as i64, blend_weights(x - k))
    }
}

/// Smooth Gaussian noise with unit variance, a sum of value-noise octaves.
#[derive(Debug, Clone)]
pub(crate) struct SmoothNoise {
    octaves: Vec<Octave>,
}

impl SmoothNoise {
    /// `octaves` are `(period in hours, relative weight)`; weights are
    /// normalised so the sum has unit variance.
    pub(crate) fn new(seed: u64, octaves: &[(f64, f64)]) -> Self {
        let norm = octaves.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
        let octaves = octaves
            .iter()
            .enumerate()
            .map(|(i, &(period_h, w))| {
                let period_h = period_h.max(1.0);
                let integral = period_h.fract() == 0.0 && period_h <= 10_000.0;
                Octave {
                    seed: derive_seed(seed, i as u64 + 1),
                    period_h,
                    weight: if norm > 0.0 { w / norm } else { 0.0 },
                    table: integral.then(|| {
                        (0..period_h as usize)
                            .map(|j| blend_weights(j as f64 / period_h))
                            .collect()
                    }),
                }
            })
            .collect();
        SmoothNoise { octaves }
    }

    /// The noise at `hour` (hours since the Unix epoch, fractional allowed).
    pub(crate) fn at(&self, hour: f64) -> f64 {
        self.octaves
            .iter()
            .map(|o| {
                let (k, (a, b)) = o.locate(hour);
                o.weight * (a * gaussian(o.seed, k) + b * gaussian(o.seed, k + 1))
            })
            .sum()
    }

    /// A cursor for evaluating consecutive hours cheaply; gives exactly the
    /// same values as [`SmoothNoise::at`].
    pub(crate) fn cursor(&self) -> NoiseCursor<'_> {
        NoiseCursor {
            noise: self,
            knots: vec![(i64::MIN, 0.0, 0.0); self.octaves.len()],
        }
    }
}

/// Caches the knot values of each octave between consecutive calls.
pub(crate) struct NoiseCursor<'a> {
    noise: &'a SmoothNoise,
    knots: Vec<(i64, f64, f64)>,
}

impl NoiseCursor<'_> {
    /// The noise at `hour`; same value as [`SmoothNoise::at`].
    #[inline]
    pub(crate) fn at(&mut self, hour: f64) -> f64 {
        let mut sum = 0.0;
        for (o, knot) in self.noise.octaves.iter().zip(self.knots.iter_mut()) {
            let (k, (a, b)) = o.locate(hour);
            if knot.0 != k {
                *knot = if knot.0 != i64::MIN && knot.0 + 1 == k {
                    (k, knot.2, gaussian(o.seed, k + 1))
                } else {
                    (k, gaussian(o.seed, k), gaussian(o.seed, k + 1))
                };
            }
            sum += o.weight * (a * knot.1 + b * knot.2);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_cdf_and_cdf_agree() {
        for &z in &[-4.0, -2.5, -1.0, -0.1, 0.0, 0.3, 1.7, 3.9] {
            let p = normal_cdf(z);
            assert!((inverse_normal_cdf(p) - z).abs() < 1e-5, "{z}");
        }
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
    }

    #[test]
    fn gamma_matches_known_values() {
        assert!((gamma(1.0) - 1.0).abs() < 1e-12);
        assert!((gamma(5.0) - 24.0).abs() < 1e-9);
        assert!((gamma(1.5) - std::f64::consts::PI.sqrt() / 2.0).abs() < 1e-12);
    }

    #[test]
    fn cursor_matches_pure_evaluation_from_any_start() {
        let n = SmoothNoise::new(42, &[(72.0, 1.0), (12.0, 0.5), (3.0, 0.2)]);
        let mut c = n.cursor();
        for h in 490_000..490_300 {
            assert_eq!(c.at(h as f64), n.at(h as f64));
        }
        let mut c2 = n.cursor();
        assert_eq!(c2.at(490_150.0), n.at(490_150.0));
        // Half-hour offsets (e.g. Asia/Kolkata) take the general path, same rule.
        let mut c3 = n.cursor();
        for h in 0..100 {
            let x = 490_000.5 + h as f64;
            assert_eq!(c3.at(x), n.at(x));
        }
    }

    #[test]
    fn smooth_noise_has_unit_variance_and_persistence() {
        let n = SmoothNoise::new(7, &[(48.0, 1.0), (6.0, 0.4)]);
        let xs: Vec<f64> = (0..200_000).map(|h| n.at(h as f64)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - 1.0).abs() < 0.08, "var {var}");
        let lag1 = xs
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum::<f64>()
            / (xs.len() as f64 * var);
        assert!(lag1 > 0.8, "lag-1 autocorrelation {lag1}");
    }
}
