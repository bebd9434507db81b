//! The missing-value rule.
//!
//! Forecasting models need equally spaced, finite observations. A series
//! with missing values (`None`, or NaN where the caller uses NaN for missing)
//! is prepared by [`fill_gaps`]:
//!
//! - a gap of at most `max_gap` consecutive missing values between two known
//!   values is filled by linear interpolation;
//! - a longer gap is refused ([`ForecastError::GapTooLong`]): interpolating
//!   across it would invent a day of demand;
//! - missing values at the very end are refused ([`ForecastError::MissingTail`]):
//!   the forecast must start where the data really ends;
//! - missing values at the very start are refused too when `max_gap` is
//!   exceeded, and otherwise filled with the first known value (backfill).
//!
//! No value is ever dropped: the output has exactly the input's length, so
//! forecasts line up with the caller's time axis.

use super::ForecastError;

/// The default longest gap interpolated: 6 steps (six hours of hourly data).
pub const DEFAULT_MAX_GAP: usize = 6;

/// Fill the gaps of `y` by the rule above. Infinite values are an error.
///
/// ```
/// use spe_core::fill_gaps;
///
/// let y = [Some(1.0), None, None, Some(4.0), Some(5.0)];
/// assert_eq!(fill_gaps(&y, 6).unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
/// assert!(fill_gaps(&[Some(1.0), None], 6).is_err());            // missing tail
/// assert!(fill_gaps(&[Some(1.0), None, None, Some(2.0)], 1).is_err()); // gap too long
/// ```
pub fn fill_gaps(y: &[Option<f64>], max_gap: usize) -> Result<Vec<f64>, ForecastError> {
    if let Some((index, value)) = y
        .iter()
        .enumerate()
        .find_map(|(i, v)| v.filter(|x| !x.is_finite()).map(|x| (i, x)))
    {
        return Err(ForecastError::NonFinite { index, value });
    }
    let tail = y.iter().rev().take_while(|v| v.is_none()).count();
    if tail > 0 {
        return Err(ForecastError::MissingTail(tail));
    }
    let mut out = Vec::with_capacity(y.len());
    let mut i = 0;
    while i < y.len() {
        match y[i] {
            Some(v) => {
                out.push(v);
                i += 1;
            }
            None => {
                let start = i;
                while i < y.len() && y[i].is_none() {
                    i += 1;
                }
                let len = i - start;
                if len > max_gap {
                    return Err(ForecastError::GapTooLong {
                        start,
                        len,
                        max: max_gap,
                    });
                }
                // `i < y.len()`: the tail was checked above.
                let next = y[i].unwrap_or_default();
                match out.last().copied() {
                    None => out.extend(std::iter::repeat_n(next, len)),
                    Some(prev) => {
                        let parts = (len + 1) as f64;
                        let step = (next - prev) / parts;
                        if step.is_finite() {
                            out.extend((1..=len).map(|k| prev + step * k as f64));
                        } else {
                            // `next − prev` overflowed (finite values far
                            // apart, −1e308 and 1e308): the same line, in halves.
                            let half_step = (next / 2.0 - prev / 2.0) / parts;
                            out.extend(
                                (1..=len).map(|k| 2.0 * (prev / 2.0 + half_step * k as f64)),
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// [`fill_gaps`] for a slice where NaN marks a missing value.
pub fn fill_nan_gaps(y: &[f64], max_gap: usize) -> Result<Vec<f64>, ForecastError> {
    if let Some((index, value)) = y.iter().copied().enumerate().find(|(_, v)| v.is_infinite()) {
        return Err(ForecastError::NonFinite { index, value });
    }
    let opts: Vec<Option<f64>> = y.iter().map(|v| (!v.is_nan()).then_some(*v)).collect();
    fill_gaps(&opts, max_gap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn leading_gap_is_backfilled_and_infinities_refused() {
        assert_eq!(
            fill_gaps(&[None, None, Some(3.0)], 6).unwrap(),
            vec![3.0; 3]
        );
        assert!(matches!(
            fill_nan_gaps(&[1.0, f64::INFINITY], 6),
            Err(ForecastError::NonFinite { index: 1, .. })
        ));
        assert_eq!(
            fill_nan_gaps(&[1.0, f64::NAN, 3.0], 6).unwrap(),
            vec![1.0, 2.0, 3.0]
        );
        assert_eq!(fill_gaps(&[], 6).unwrap(), Vec::<f64>::new());
        // A leading gap longer than the rule allows is refused, from index 0.
        assert!(matches!(
            fill_gaps(&[None, None, None, Some(1.0)], 2),
            Err(ForecastError::GapTooLong {
                start: 0,
                len: 3,
                ..
            })
        ));
        assert_eq!(
            fill_gaps(&[None, None, Some(1.0)], 2).unwrap(),
            vec![1.0; 3]
        );
    }

    #[test]
    fn a_gap_between_far_apart_values_is_filled_with_finite_values() {
        assert_eq!(
            fill_gaps(&[Some(-1e308), None, Some(1e308)], 6).unwrap(),
            vec![-1e308, 0.0, 1e308]
        );
        let out = fill_nan_gaps(&[f64::MAX, f64::NAN, f64::NAN, -f64::MAX], 6).unwrap();
        assert!(out.iter().all(|v| v.is_finite()), "{out:?}");
        assert!(out[1] > out[2] && out[2] > out[3], "{out:?}");
    }

    proptest! {
        #[test]
        fn output_lines_up_with_input(y in prop::collection::vec(prop::option::weighted(0.8, -1e6..1e6f64), 0..200), max_gap in 0usize..10) {
            if let Ok(out) = fill_gaps(&y, max_gap) {
                prop_assert_eq!(out.len(), y.len());
                for (o, v) in out.iter().zip(&y) {
                    prop_assert!(o.is_finite());
                    if let Some(v) = v { prop_assert_eq!(o, v); }
                }
            }
        }

        /// Any finite values, however far apart: the filled values are
        /// finite and lie between their gap's neighbours.
        #[test]
        fn filled_values_stay_between_their_neighbours(y in prop::collection::vec(prop::option::weighted(0.7, prop::num::f64::NORMAL | prop::num::f64::ZERO), 1..100)) {
            if let Ok(out) = fill_gaps(&y, 10) {
                prop_assert_eq!(out.len(), y.len());
                for (i, o) in out.iter().enumerate() {
                    prop_assert!(o.is_finite(), "{o} at {i}");
                    if y[i].is_none() {
                        let prev = y[..i].iter().rev().flatten().next();
                        let next = y[i..].iter().flatten().next();
                        let (lo, hi) = match (prev, next) {
                            (Some(a), Some(b)) => (a.min(*b), a.max(*b)),
                            (None, Some(b)) => (*b, *b),
                            _ => unreachable!("a trailing gap is refused"),
                        };
                        prop_assert!(lo <= *o && *o <= hi, "{o} not in [{lo}, {hi}]");
                    }
                }
            }
        }
    }
}
