//! Hourly time axes and series whose missing values are explicit.
//!
//! A value is either `Some(finite f64)` or `None` (missing). A NaN or an
//! infinity never enters a series by accident: the constructors reject them,
//! and the one lossy constructor ([`HourlySeries::from_f64_nan_as_missing`])
//! says in its name what it does.

use chrono::{DateTime, Duration, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// One hour, the step of every series in SP-E.
pub const HOUR: Duration = Duration::hours(1);

/// Errors from building a series or a frame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SeriesError {
    /// A value was NaN or infinite; use `None` for a missing value.
    #[error(
        "value at index {index} of {column:?} is {value}, not a finite number; use a missing value (null/None) instead"
    )]
    NonFinite {
        /// Column name.
        column: String,
        /// Position in the column.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A value lies outside the physically plausible range of its variable.
    #[error(
        "value {value} at index {index} of {column:?} is outside the plausible range {min}..={max} {unit}"
    )]
    OutOfRange {
        /// Column name.
        column: String,
        /// Position in the column.
        index: usize,
        /// The offending value.
        value: f64,
        /// Lowest plausible value.
        min: f64,
        /// Highest plausible value.
        max: f64,
        /// Unit of the variable.
        unit: &'static str,
    },
    /// A column's length differs from the time axis.
    #[error("column {column:?} has {got} values but the time axis has {expected} hours")]
    LengthMismatch {
        /// Column name.
        column: String,
        /// Number of hours on the axis.
        expected: usize,
        /// Number of values in the column.
        got: usize,
    },
    /// The start of an axis is not on a whole minute.
    #[error("time axis start {0} is not on a whole minute")]
    Misaligned(DateTime<Utc>),
    /// The axis would run past the representable time range.
    #[error("time axis of {len} hours from {start} overflows the calendar")]
    Overflow {
        /// Start of the axis.
        start: DateTime<Utc>,
        /// Number of hours.
        len: usize,
    },
}

/// A regular hourly time axis: `len` instants, one hour apart, from `start` (UTC).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::TimeAxis;
///
/// let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let axis = TimeAxis::new(start, 48).unwrap();
/// assert_eq!(axis.time(1), start + chrono::Duration::hours(1));
/// assert_eq!(axis.index_of(start + chrono::Duration::hours(5)), Some(5));
/// assert_eq!(axis.end(), start + chrono::Duration::hours(48));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawAxis")]
pub struct TimeAxis {
    start: DateTime<Utc>,
    len: usize,
}

#[derive(Deserialize)]
struct RawAxis {
    start: DateTime<Utc>,
    len: usize,
}

impl TryFrom<RawAxis> for TimeAxis {
    type Error = SeriesError;
    fn try_from(raw: RawAxis) -> Result<Self, Self::Error> {
        TimeAxis::new(raw.start, raw.len)
    }
}

impl TimeAxis {
    /// An axis of `len` hours from `start`, which must be on a whole minute
    /// (sites with half-hour UTC offsets have local hours at :30 UTC).
    pub fn new(start: DateTime<Utc>, len: usize) -> Result<Self, SeriesError> {
        if start.second() != 0 || start.nanosecond() != 0 {
            return Err(SeriesError::Misaligned(start));
        }
        let hours = i64::try_from(len).map_err(|_| SeriesError::Overflow { start, len })?;
        Duration::try_hours(hours)
            .and_then(|d| start.checked_add_signed(d))
            .ok_or(SeriesError::Overflow { start, len })?;
        Ok(TimeAxis { start, len })
    }

    /// The first instant.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// One hour past the last instant (exclusive end).
    pub fn end(&self) -> DateTime<Utc> {
        self.time(self.len)
    }

    /// Number of instants.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the axis has no instant.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The instant at `index` (may be `len`, the exclusive end).
    pub fn time(&self, index: usize) -> DateTime<Utc> {
        // `new` checked that start + len hours is representable.
        self.start + Duration::hours(index as i64)
    }

    /// The index of `t` if it lies exactly on the axis.
    pub fn index_of(&self, t: DateTime<Utc>) -> Option<usize> {
        let d = t.signed_duration_since(self.start);
        if d < Duration::zero() || d.num_seconds() % 3600 != 0 || d.subsec_nanos() != 0 {
            return None;
        }
        let i = usize::try_from(d.num_hours()).ok()?;
        (i < self.len).then_some(i)
    }

    /// The instants, in order.
    pub fn times(&self) -> impl ExactSizeIterator<Item = DateTime<Utc>> + '_ {
        (0..self.len).map(|i| self.time(i))
    }
}

/// Check that every value of a column is finite; `None` is fine.
pub(crate) fn check_finite(column: &str, values: &[Option<f64>]) -> Result<(), SeriesError> {
    match values
        .iter()
        .enumerate()
        .find_map(|(i, v)| v.filter(|x| !x.is_finite()).map(|x| (i, x)))
    {
        Some((index, value)) => Err(SeriesError::NonFinite {
            column: column.to_owned(),
            index,
            value,
        }),
        None => Ok(()),
    }
}

/// An hourly series on UTC timestamps with explicit missing values.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::HourlySeries;
///
/// let start = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
/// let s = HourlySeries::new(start, vec![Some(1.0), None, Some(3.0)]).unwrap();
/// assert_eq!(s.missing_count(), 1);
/// assert_eq!(s.get(start + chrono::Duration::hours(2)), Some(3.0));
///
/// // NaN is refused, not slipped in:
/// assert!(HourlySeries::from_f64(start, &[1.0, f64::NAN]).is_err());
/// // ...unless the caller says NaN means "missing":
/// let lossy = HourlySeries::from_f64_nan_as_missing(start, &[1.0, f64::NAN]).unwrap();
/// assert_eq!(lossy.values(), &[Some(1.0), None]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawSeries")]
pub struct HourlySeries {
    axis: TimeAxis,
    values: Vec<Option<f64>>,
}

#[derive(Deserialize)]
struct RawSeries {
    axis: TimeAxis,
    values: Vec<Option<f64>>,
}

impl TryFrom<RawSeries> for HourlySeries {
    type Error = SeriesError;
    fn try_from(raw: RawSeries) -> Result<Self, Self::Error> {
        if raw.values.len() != raw.axis.len() {
            return Err(SeriesError::LengthMismatch {
                column: "values".into(),
                expected: raw.axis.len(),
                got: raw.values.len(),
            });
        }
        HourlySeries::new(raw.axis.start(), raw.values)
    }
}

impl HourlySeries {
    /// A series from `start`, one value an hour; `None` marks a missing value.
    /// Errors on NaN or infinite values.
    pub fn new(start: DateTime<Utc>, values: Vec<Option<f64>>) -> Result<Self, SeriesError> {
        check_finite("values", &values)?;
        let axis = TimeAxis::new(start, values.len())?;
        Ok(HourlySeries { axis, values })
    }

    /// A series with no missing value. Errors on NaN or infinite values.
    pub fn from_f64(start: DateTime<Utc>, values: &[f64]) -> Result<Self, SeriesError> {
        HourlySeries::new(start, values.iter().copied().map(Some).collect())
    }

    /// A series where NaN and infinities are taken to mean "missing".
    pub fn from_f64_nan_as_missing(
        start: DateTime<Utc>,
        values: &[f64],
    ) -> Result<Self, SeriesError> {
        let values = values
            .iter()
            .map(|v| v.is_finite().then_some(*v))
            .collect::<Vec<_>>();
        let axis = TimeAxis::new(start, values.len())?;
        Ok(HourlySeries { axis, values })
    }

    /// The time axis.
    pub fn axis(&self) -> TimeAxis {
        self.axis
    }

    /// The first instant.
    pub fn start(&self) -> DateTime<Utc> {
        self.axis.start()
    }

    /// Number of hours (missing ones included).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the series has no hour at all.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values, `None` where missing.
    pub fn values(&self) -> &[Option<f64>] {
        &self.values
    }

    /// The value at instant `t`; `None` if `t` is off the axis or the value is missing.
    pub fn get(&self, t: DateTime<Utc>) -> Option<f64> {
        self.axis.index_of(t).and_then(|i| self.values[i])
    }

    /// Number of missing values.
    pub fn missing_count(&self) -> usize {
        self.values.iter().filter(|v| v.is_none()).count()
    }

    /// `(time, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (DateTime<Utc>, Option<f64>)> + '_ {
        self.axis.times().zip(self.values.iter().copied())
    }

    /// Values as `f64` with NaN standing for missing, for numeric code that wants it
    /// (numpy, ndarray). The caller takes on the NaN convention explicitly.
    pub fn to_f64_nan(&self) -> Vec<f64> {
        self.values.iter().map(|v| v.unwrap_or(f64::NAN)).collect()
    }

    /// The last non-missing value and its time.
    pub fn last_valid(&self) -> Option<(DateTime<Utc>, f64)> {
        self.values
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, v)| v.map(|x| (self.axis.time(i), x)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn rejects_non_finite_values() {
        let err = HourlySeries::new(t0(), vec![Some(1.0), Some(f64::INFINITY)]).unwrap_err();
        assert!(matches!(err, SeriesError::NonFinite { index: 1, .. }));
    }

    #[test]
    fn rejects_start_off_the_minute() {
        let t = t0() + Duration::seconds(30);
        assert_eq!(TimeAxis::new(t, 3), Err(SeriesError::Misaligned(t)));
    }

    #[test]
    fn index_of_refuses_off_axis_instants() {
        let axis = TimeAxis::new(t0(), 10).unwrap();
        assert_eq!(axis.index_of(t0() - HOUR), None);
        assert_eq!(axis.index_of(t0() + Duration::minutes(30)), None);
        assert_eq!(axis.index_of(t0() + Duration::hours(10)), None);
        assert_eq!(axis.index_of(t0() + Duration::hours(9)), Some(9));
    }

    #[test]
    fn serde_round_trip_keeps_missing_values_and_rejects_bad_lengths() {
        let s = HourlySeries::new(t0(), vec![Some(1.5), None, Some(-2.0)]).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("null"));
        assert_eq!(serde_json::from_str::<HourlySeries>(&json).unwrap(), s);
        let bad = json.replace("\"len\":3", "\"len\":4");
        assert!(serde_json::from_str::<HourlySeries>(&bad).is_err());
    }

    #[test]
    fn last_valid_skips_trailing_missing() {
        let s = HourlySeries::new(t0(), vec![Some(1.0), Some(2.0), None]).unwrap();
        assert_eq!(s.last_valid(), Some((t0() + HOUR, 2.0)));
    }
}
