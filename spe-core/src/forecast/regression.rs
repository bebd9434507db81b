//! Regression of a demand series on weather and calendar: heating and
//! cooling degrees, hour of day by day type, and a linear trend. The model
//! and its inputs are documented on [`WeatherRegression`]; [`calendar_exog`]
//! builds the inputs from a site's time zone and holidays.

use chrono::Timelike;

use super::intervals::check_forecast_path;
use super::model::FittedSummary;
use super::model::validate_horizon;
use super::{
    Exog, Fit, Forecast, ForecastError, History, Predict, normal_intervals, validate_levels,
};
use crate::calendar::DayType;
use crate::series::TimeAxis;
use crate::site::Site;

const MODEL: &str = "weather_regression";
const HOURS: usize = 24;
const DAY_TYPES: usize = 3;
/// Hour-of-day × day-type cells.
const CELLS: usize = HOURS * DAY_TYPES;
/// Grid of the heating base temperature when it is fitted, °C.
const HEATING_GRID: (f64, f64) = (10.0, 18.0);
/// Grid of the cooling base temperature when it is fitted, °C.
const COOLING_GRID: (f64, f64) = (18.0, 26.0);
/// Step of the coarse grid, °C.
const COARSE_STEP: f64 = 1.0;
/// Step of the refined grid around the best coarse point, °C.
const FINE_STEP: f64 = 0.25;
/// Temperatures beyond ±this many °C are refused (a Kelvin or °F column
/// given by mistake, or garbage).
const MAX_ABS_TEMPERATURE: f64 = 100.0;
/// A column is collinear with the previous ones when `1 − R²` of its
/// regression on them is below this.
const SINGULAR_TOL: f64 = 1e-10;

/// Regression on weather and calendar, fitted by ordinary least squares.
///
/// # Model
///
/// ```text
/// yₜ = β₀ + β₁·τₜ + δ[hourₜ, day_typeₜ] + βₕ·max(0, Bₕ − Tₜ) + β_c·max(0, Tₜ − B_c) + εₜ
/// ```
///
/// - `τₜ` is a linear trend in the step number (omitted with `trend: false`);
/// - `δ` holds one dummy per hour-of-day × day-type cell (24 hours × working
///   day / Saturday / Sunday-or-holiday), minus the reference cell (hour 0 of
///   a working day, or the first cell present in the history), whose effect
///   is 0;
/// - `Tₜ` is the air temperature, `Bₕ` and `B_c` the heating and cooling base
///   temperatures, `βₕ` and `β_c` the demand per heating and cooling degree.
///
/// # Inputs
///
/// The regressors come in [`History::exog`] when fitting and in the `future`
/// argument of [`Predict::predict`] when forecasting (forecast weather for
/// the horizon, one row per step), as three named [`Exog`] columns:
///
/// - [`TEMPERATURE`](WeatherRegression::TEMPERATURE) `"temperature_2m"`:
///   air temperature, °C, within ±100 °C;
/// - [`HOUR`](WeatherRegression::HOUR) `"hour"`: the local hour, a whole
///   number 0–23;
/// - [`DAY_TYPE`](WeatherRegression::DAY_TYPE) `"day_type"`: 0 for a working
///   day, 1 for a Saturday, 2 for a Sunday or public holiday.
///
/// Other columns are ignored. [`calendar_exog`] builds the three columns
/// from a site's time zone and holiday calendar.
///
/// # Estimation
///
/// Ordinary least squares (normal equations, equilibrated, Cholesky). The
/// base temperatures are the configured ones, or, with `fit_bases` (the
/// default), the pair minimising the sum of squared errors over a grid:
/// heating 10–18 °C, cooling 18–26 °C, by 1 °C, then by 0.25 °C within
/// 0.75 °C of the best point (ties go to the pair closest to the configured
/// bases).
///
/// Cells of the calendar and degree columns the history gives no
/// information on are not estimated, and do not count as parameters:
///
/// - a degree column that is zero throughout the history (no cold or no hot
///   hour) gets a slope of 0;
/// - a cell absent from the history borrows the effect of the same hour on
///   the next more ordinary day type present (Sunday/holiday → Saturday →
///   working day), else the reference cell's (0).
///
/// Errors: missing regressors ([`MissingRegressors`](ForecastError::MissingRegressors)),
/// regressors of the wrong length or with invalid values
/// ([`InvalidArgument`](ForecastError::InvalidArgument)), fewer observations
/// than twice the parameters ([`TooShort`](ForecastError::TooShort)), and a
/// singular design, such as a constant temperature below the heating base
/// ([`FitFailed`](ForecastError::FitFailed)).
///
/// # Intervals
///
/// Normal, `mean ± z·σ` with `σ² = SSE / (n − p)` the residual variance
/// (`p` the estimated coefficients, plus 2 when the bases are fitted), the
/// same at every step. The uncertainty of the coefficients and of the
/// forecast weather is ignored: the intervals are too narrow when the
/// history is short or the weather forecast poor.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{Fit, History, Predict, Site, TimeAxis, WeatherRegression, calendar_exog};
///
/// let site = Site::paris();
/// let start = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
/// let (fit_rows, horizon) = (24 * 20, 24);
/// // Three weeks of temperature between 0 and 20 °C, and demand that rises
/// // by 40 MW per degree below 15 °C.
/// let temperature: Vec<f64> = (0..fit_rows + horizon)
///     .map(|t| 10.0 + 10.0 * (t as f64 / 37.0).sin())
///     .collect();
/// let y: Vec<f64> = temperature.iter().map(|t| 1000.0 + 40.0 * (15.0 - t).max(0.0)).collect();
///
/// let past = TimeAxis::new(start, fit_rows).unwrap();
/// let history_exog = calendar_exog(&site, past, &temperature[..fit_rows]).unwrap();
/// let history = History { y: &y[..fit_rows], periods: &[24], exog: Some(&history_exog) };
/// let fitted = WeatherRegression::default().fit(&history).unwrap();
/// assert!((fitted.heating_slope() - 40.0).abs() < 1e-6);
/// assert_eq!(fitted.heating_base_c(), 15.0);
///
/// // The forecast weather of the next day.
/// let next = TimeAxis::new(past.end(), horizon).unwrap();
/// let future = calendar_exog(&site, next, &temperature[fit_rows..]).unwrap();
/// let f = fitted.predict(horizon, &[95.0], Some(&future)).unwrap();
/// assert!((f.mean()[0] - y[fit_rows]).abs() < 1e-6);
/// // Without the forecast weather there is no forecast.
/// assert!(fitted.predict(horizon, &[95.0], None).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeatherRegression {
    /// Heating base temperature, °C: used as is when `fit_bases` is false,
    /// and to break ties of the grid search otherwise. Default 15 °C.
    pub heating_base_c: f64,
    /// Cooling base temperature, °C (as `heating_base_c`). Default 22 °C.
    pub cooling_base_c: f64,
    /// Fit both base temperatures by grid search (default `true`).
    pub fit_bases: bool,
    /// Include a linear trend (default `true`).
    pub trend: bool,
}

impl Default for WeatherRegression {
    fn default() -> Self {
        WeatherRegression {
            heating_base_c: 15.0,
            cooling_base_c: 22.0,
            fit_bases: true,
            trend: true,
        }
    }
}

impl WeatherRegression {
    /// The regressor column of the air temperature, °C.
    pub const TEMPERATURE: &'static str = "temperature_2m";
    /// The regressor column of the local hour, 0–23.
    pub const HOUR: &'static str = "hour";
    /// The regressor column of the day type: 0 working, 1 Saturday, 2
    /// Sunday or holiday.
    pub const DAY_TYPE: &'static str = "day_type";

    /// A model with configured (not fitted) base temperatures.
    ///
    /// ```
    /// use spe_core::WeatherRegression;
    ///
    /// let m = WeatherRegression::with_bases(16.0, 24.0);
    /// assert!(!m.fit_bases && m.trend);
    /// assert_eq!(m.heating_base_c, 16.0);
    /// ```
    pub fn with_bases(heating_base_c: f64, cooling_base_c: f64) -> Self {
        WeatherRegression {
            heating_base_c,
            cooling_base_c,
            fit_bases: false,
            trend: true,
        }
    }

    fn validate(&self) -> Result<(), ForecastError> {
        for (what, b) in [
            ("heating", self.heating_base_c),
            ("cooling", self.cooling_base_c),
        ] {
            if !(b.is_finite() && b.abs() <= MAX_ABS_TEMPERATURE) {
                return Err(ForecastError::invalid(format!(
                    "{what} base temperature {b} °C is outside ±{MAX_ABS_TEMPERATURE} °C"
                )));
            }
        }
        if self.heating_base_c > self.cooling_base_c {
            return Err(ForecastError::invalid(format!(
                "heating base {} °C is above the cooling base {} °C",
                self.heating_base_c, self.cooling_base_c
            )));
        }
        Ok(())
    }
}

/// The `day_type` code of a [`DayType`]: 0 working, 1 Saturday, 2 Sunday or
/// holiday.
fn day_type_code(day_type: DayType) -> usize {
    match day_type {
        DayType::Working => 0,
        DayType::Saturday => 1,
        DayType::Sunday | DayType::Holiday => 2,
    }
}

/// The regressors of [`WeatherRegression`] for the hours of `axis` at
/// `site`: `temperature` (°C, one value per hour of the axis) as
/// `"temperature_2m"`, the local hour (0–23) as `"hour"`, and the day type
/// of the local date (0 working, 1 Saturday, 2 Sunday or public holiday of
/// the site's country) as `"day_type"`.
///
/// Errors: `temperature` not as long as the axis, or not finite.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{Site, TimeAxis, WeatherRegression, calendar_exog};
///
/// // 14 July 2026, Fête nationale, from midnight Paris time (UTC+2).
/// let start = Utc.with_ymd_and_hms(2026, 7, 13, 22, 0, 0).unwrap();
/// let axis = TimeAxis::new(start, 24).unwrap();
/// let exog = calendar_exog(&Site::paris(), axis, &[20.0; 24]).unwrap();
/// assert_eq!(exog.column(WeatherRegression::HOUR).unwrap()[0], 0.0);
/// assert!(exog.column(WeatherRegression::DAY_TYPE).unwrap().iter().all(|d| *d == 2.0));
/// assert!(calendar_exog(&Site::paris(), axis, &[20.0; 23]).is_err());
/// ```
pub fn calendar_exog(
    site: &Site,
    axis: TimeAxis,
    temperature: &[f64],
) -> Result<Exog, ForecastError> {
    if temperature.len() != axis.len() {
        return Err(ForecastError::invalid(format!(
            "{} temperatures for an axis of {} hours",
            temperature.len(),
            axis.len()
        )));
    }
    let mut hours = Vec::with_capacity(axis.len());
    let mut day_types = Vec::with_capacity(axis.len());
    for t in axis.times() {
        let local = site.local(t);
        hours.push(f64::from(local.hour()));
        let code = day_type_code(site.country().day_type(local.date()));
        day_types.push(code as f64);
    }
    Exog::new(vec![
        (
            WeatherRegression::TEMPERATURE.to_string(),
            temperature.to_vec(),
        ),
        (WeatherRegression::HOUR.to_string(), hours),
        (WeatherRegression::DAY_TYPE.to_string(), day_types),
    ])
}

/// The validated regressors: temperature and calendar cell per row.
struct Inputs {
    temperature: Vec<f64>,
    cell: Vec<usize>,
}

/// Read and check the three columns of `exog` (`what` names it in errors).
fn read_inputs(exog: &Exog, what: &str) -> Result<Inputs, ForecastError> {
    let column = |name: &str| {
        exog.column(name).ok_or_else(|| {
            ForecastError::MissingRegressors(format!(
                "{MODEL} needs the regressor {name:?} in {what} (columns {:?}, {:?}, {:?}; \
                 see calendar_exog), got only {:?}",
                WeatherRegression::TEMPERATURE,
                WeatherRegression::HOUR,
                WeatherRegression::DAY_TYPE,
                exog.names()
            ))
        })
    };
    let temperature = column(WeatherRegression::TEMPERATURE)?;
    let hour = column(WeatherRegression::HOUR)?;
    let day_type = column(WeatherRegression::DAY_TYPE)?;
    if let Some((i, t)) = temperature
        .iter()
        .enumerate()
        .find(|(_, t)| !(t.is_finite() && t.abs() <= MAX_ABS_TEMPERATURE))
    {
        return Err(ForecastError::invalid(format!(
            "{what}: temperature {t} at row {i} is outside ±{MAX_ABS_TEMPERATURE} °C \
             (temperature_2m must be in °C)"
        )));
    }
    let whole = |v: f64, max: usize| v.fract() == 0.0 && (0.0..=max as f64).contains(&v);
    let mut cell = Vec::with_capacity(hour.len());
    for (i, (&h, &d)) in hour.iter().zip(day_type).enumerate() {
        if !whole(h, HOURS - 1) {
            return Err(ForecastError::invalid(format!(
                "{what}: hour {h} at row {i} is not a whole number 0–23"
            )));
        }
        if !whole(d, DAY_TYPES - 1) {
            return Err(ForecastError::invalid(format!(
                "{what}: day type {d} at row {i} is not 0 (working), 1 (Saturday) \
                 or 2 (Sunday or holiday)"
            )));
        }
        cell.push(d as usize * HOURS + h as usize);
    }
    Ok(Inputs {
        temperature: temperature.to_vec(),
        cell,
    })
}

/// Heating and cooling degrees of `t` for bases `(heating, cooling)`.
fn degrees(t: f64, bases: (f64, f64)) -> (f64, f64) {
    ((bases.0 - t).max(0.0), (t - bases.1).max(0.0))
}

/// The columns of the design: intercept (0), trend (1, if any), the cell
/// dummies, then the heating and cooling degrees when present.
struct Layout {
    trend: bool,
    /// Column of each cell's dummy; `None` for the reference and absent cells.
    cell_col: [Option<usize>; CELLS],
    /// Columns before the degrees.
    fixed: usize,
}

impl Layout {
    fn new(trend: bool, seen: &[bool; CELLS]) -> Self {
        let mut cell_col = [None; CELLS];
        let mut next = 1 + usize::from(trend);
        let mut reference_found = false;
        for (g, col) in cell_col.iter_mut().enumerate() {
            if !seen[g] {
                continue;
            }
            if reference_found {
                *col = Some(next);
                next += 1;
            } else {
                reference_found = true;
            }
        }
        Layout {
            trend,
            cell_col,
            fixed: next,
        }
    }
}

/// The standardised data of a fit.
struct Data {
    /// Standardised observations.
    y: Vec<f64>,
    /// Trend regressor per row.
    trend: Vec<f64>,
    inputs: Inputs,
}

/// A least-squares solution at given bases.
struct Solution {
    bases: (f64, f64),
    beta: Vec<f64>,
    heating_col: Option<usize>,
    cooling_col: Option<usize>,
    sse: f64,
}

impl Solution {
    fn parameters(&self) -> usize {
        self.beta.len()
    }
}

/// The sparse row `i` of the design: up to five (column, value) pairs in
/// ascending column order.
fn design_row(
    data: &Data,
    layout: &Layout,
    i: usize,
    bases: (f64, f64),
    cols: (Option<usize>, Option<usize>),
) -> ([usize; 5], [f64; 5], usize) {
    let mut idx = [0usize; 5];
    let mut val = [0f64; 5];
    idx[0] = 0;
    val[0] = 1.0;
    let mut m = 1;
    if layout.trend {
        idx[m] = 1;
        val[m] = data.trend[i];
        m += 1;
    }
    if let Some(c) = layout.cell_col[data.inputs.cell[i]] {
        idx[m] = c;
        val[m] = 1.0;
        m += 1;
    }
    let (hdd, cdd) = degrees(data.inputs.temperature[i], bases);
    if let Some(c) = cols.0 {
        idx[m] = c;
        val[m] = hdd;
        m += 1;
    }
    if let Some(c) = cols.1 {
        idx[m] = c;
        val[m] = cdd;
        m += 1;
    }
    (idx, val, m)
}

/// The fixed columns' (intercept, trend, calendar cells) part of the
/// normal equations, equilibrated and Cholesky-factorised once per fit:
/// every pair of base temperatures shares it, and only the degree columns
/// change. Extending this factor by the degree columns
/// ([`solve_at`]) performs exactly the operations of a Cholesky
/// factorisation of the whole matrix, in the same order, at O(k²) per pair
/// instead of O(k³).
struct FixedFactor {
    /// Number of fixed columns.
    k: usize,
    /// Lower-triangular factor of the equilibrated fixed block, row-major `k × k`.
    l: Vec<f64>,
    /// Equilibration: `1 / √diag`.
    scale: Vec<f64>,
    /// The forward-substituted right-hand side of the fixed rows.
    z: Vec<f64>,
}

/// Accumulate the upper triangle of `XᵀX` and `Xᵀy` of the design at
/// `bases` (with degree columns `cols`) into `gram` (`k × k`) and `rhs`.
fn normal_equations(
    data: &Data,
    layout: &Layout,
    bases: (f64, f64),
    cols: (Option<usize>, Option<usize>),
    gram: &mut [f64],
    rhs: &mut [f64],
    k: usize,
) {
    for i in 0..data.y.len() {
        let (idx, val, m) = design_row(data, layout, i, bases, cols);
        for a in 0..m {
            rhs[idx[a]] += val[a] * data.y[i];
            for b in a..m {
                gram[idx[a] * k + idx[b]] += val[a] * val[b];
            }
        }
    }
}

/// Factorise the fixed columns' block; `None` if they are collinear.
fn factor_fixed(data: &Data, layout: &Layout) -> Option<FixedFactor> {
    let k = layout.fixed;
    let mut gram = vec![0.0; k * k];
    let mut rhs = vec![0.0; k];
    normal_equations(
        data,
        layout,
        (0.0, 0.0),
        (None, None),
        &mut gram,
        &mut rhs,
        k,
    );
    let scale = cholesky_factor(&mut gram, k)?;
    let z = forward(&gram, &rhs, &scale, k, 0, Vec::new());
    Some(FixedFactor {
        k,
        l: gram,
        scale,
        z,
    })
}

/// Equilibrate `gram` (upper triangle filled, `k × k` row-major) to a unit
/// diagonal and factorise it in place (lower triangle); returns the
/// equilibration, or `None` if a column is collinear with the previous
/// ones (see [`SINGULAR_TOL`]).
fn cholesky_factor(gram: &mut [f64], k: usize) -> Option<Vec<f64>> {
    let mut scale = vec![0.0; k];
    for (i, s) in scale.iter_mut().enumerate() {
        let d = gram[i * k + i];
        if !(d.is_finite() && d > 0.0) {
            return None;
        }
        *s = 1.0 / d.sqrt();
    }
    for i in 0..k {
        for j in 0..=i {
            gram[i * k + j] = gram[j * k + i] * scale[i] * scale[j];
        }
    }
    factor_columns(gram, k, 0)?;
    Some(scale)
}

/// The Cholesky column sweep on the equilibrated lower triangle of `l`
/// (`k × k`), for the rows from `first` on: the columns before `first` are
/// already factorised for rows before `first`.
fn factor_columns(l: &mut [f64], k: usize, first: usize) -> Option<()> {
    for j in 0..k {
        if j >= first {
            let d = l[j * k + j] - (0..j).map(|m| l[j * k + m].powi(2)).sum::<f64>();
            if d.is_nan() || d <= SINGULAR_TOL {
                return None;
            }
            l[j * k + j] = d.sqrt();
        }
        let pivot = l[j * k + j];
        for i in (j + 1).max(first)..k {
            let s: f64 = (0..j).map(|m| l[i * k + m] * l[j * k + m]).sum();
            l[i * k + j] = (l[i * k + j] - s) / pivot;
        }
    }
    Some(())
}

/// Forward substitution of the equilibrated right-hand side for rows
/// `first..k`, continuing `z` (the rows before `first`).
fn forward(
    l: &[f64],
    rhs: &[f64],
    scale: &[f64],
    k: usize,
    first: usize,
    mut z: Vec<f64>,
) -> Vec<f64> {
    for i in first..k {
        let zi = rhs[i] * scale[i];
        let s: f64 = (0..i).map(|m| l[i * k + m] * z[m]).sum();
        z.push((zi - s) / l[i * k + i]);
    }
    z
}

/// Least squares at `bases`; `None` if the design is singular.
fn solve_at(
    data: &Data,
    layout: &Layout,
    fixed: &FixedFactor,
    bases: (f64, f64),
) -> Option<Solution> {
    let temps = &data.inputs.temperature;
    let heating_present = temps.iter().any(|t| degrees(*t, bases).0 > 0.0);
    let cooling_present = temps.iter().any(|t| degrees(*t, bases).1 > 0.0);
    let heating_col = heating_present.then_some(layout.fixed);
    let cooling_col = cooling_present.then_some(layout.fixed + usize::from(heating_present));
    let kf = fixed.k;
    let k = kf + usize::from(heating_present) + usize::from(cooling_present);
    let cols = (heating_col, cooling_col);

    // The degree columns' rows of the normal equations: the fixed block is
    // accumulated too (it is the same for every pair) only when there is
    // no degree column, which costs nothing then.
    let mut gram = vec![0.0; k * k];
    let mut rhs = vec![0.0; k];
    if k > kf {
        for i in 0..data.y.len() {
            let (idx, val, m) = design_row(data, layout, i, bases, cols);
            for a in 0..m {
                if idx[a] >= kf {
                    rhs[idx[a]] += val[a] * data.y[i];
                }
                for b in a..m {
                    if idx[b] >= kf {
                        gram[idx[a] * k + idx[b]] += val[a] * val[b];
                    }
                }
            }
        }
    }
    // The factor: the fixed block as factorised once, then the degree rows
    // equilibrated and swept exactly as a factorisation of the whole would.
    let mut scale = fixed.scale.clone();
    for i in kf..k {
        let d = gram[i * k + i];
        if !(d.is_finite() && d > 0.0) {
            return None;
        }
        scale.push(1.0 / d.sqrt());
    }
    for i in 0..kf {
        gram[i * k..i * k + kf].copy_from_slice(&fixed.l[i * kf..(i + 1) * kf]);
    }
    for i in kf..k {
        for j in 0..=i {
            gram[i * k + j] = gram[j * k + i] * scale[i] * scale[j];
        }
    }
    factor_columns(&mut gram, k, kf)?;
    let mut z = forward(&gram, &rhs, &scale, k, kf, fixed.z.clone());
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|m| gram[m * k + i] * z[m]).sum();
        z[i] = (z[i] - s) / gram[i * k + i];
    }
    let beta: Vec<f64> = z.iter().zip(&scale).map(|(v, s)| v * s).collect();
    if !beta.iter().all(|b| b.is_finite()) {
        return None;
    }
    let sse = (0..data.y.len())
        .map(|i| {
            let (idx, val, m) = design_row(data, layout, i, bases, cols);
            let fit: f64 = (0..m).map(|a| val[a] * beta[idx[a]]).sum();
            (data.y[i] - fit).powi(2)
        })
        .sum::<f64>();
    sse.is_finite().then_some(Solution {
        bases,
        beta,
        heating_col,
        cooling_col,
        sse,
    })
}

/// Grid points from `lo` to `hi` by `step`.
fn grid(lo: f64, hi: f64, step: f64) -> impl Iterator<Item = f64> {
    let n = ((hi - lo) / step + 1e-9).floor().max(0.0) as usize;
    (0..=n).map(move |i| lo + step * i as f64)
}

impl Fit for WeatherRegression {
    type Fitted = FittedWeatherRegression;

    fn name(&self) -> String {
        MODEL.to_string()
    }

    fn fit(&self, history: &History<'_>) -> Result<FittedWeatherRegression, ForecastError> {
        self.validate()?;
        history.validate()?;
        let exog = history.exog.ok_or_else(|| {
            ForecastError::MissingRegressors(format!(
                "{MODEL} needs the history's regressors {:?}, {:?} and {:?} (see \
                 calendar_exog)",
                WeatherRegression::TEMPERATURE,
                WeatherRegression::HOUR,
                WeatherRegression::DAY_TYPE
            ))
        })?;
        let inputs = read_inputs(exog, "the history's regressors")?;
        let y = history.y;
        let n = y.len();

        let mut seen = [false; CELLS];
        for g in &inputs.cell {
            seen[*g] = true;
        }
        let layout = Layout::new(self.trend, &seen);
        let fitted_bases = if self.fit_bases { 2 } else { 0 };
        let max_parameters = layout.fixed + 2 + fitted_bases;
        let needed = 2 * max_parameters;
        if n < needed {
            return Err(ForecastError::TooShort {
                model: MODEL.to_string(),
                needed,
                got: n,
            });
        }

        // Standardise by centre and half-range: no overflow, whatever the scale.
        let (lo, hi) = y
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        let center = lo / 2.0 + hi / 2.0;
        let half = hi / 2.0 - lo / 2.0;
        let scale = if half > 0.0 { half } else { 1.0 };
        let trend_center = (n as f64 - 1.0) / 2.0;
        let trend_scale = n as f64;
        let data = Data {
            y: y.iter().map(|v| (v - center) / scale).collect(),
            trend: (0..n)
                .map(|i| (i as f64 - trend_center) / trend_scale)
                .collect(),
            inputs,
        };

        let configured = (self.heating_base_c, self.cooling_base_c);
        let solution = if self.fit_bases {
            search_bases(&data, &layout, configured)
        } else {
            factor_fixed(&data, &layout).and_then(|f| solve_at(&data, &layout, &f, configured))
        }
        .ok_or_else(|| ForecastError::FitFailed {
            model: MODEL.to_string(),
            reason: "the design is singular: a regressor is a combination of the others \
                     (for example a constant temperature, or degrees that do not vary)"
                .to_string(),
        })?;

        let parameters = solution.parameters() + fitted_bases;
        let dof = n.saturating_sub(parameters).max(1);
        let sigma = scale * (solution.sse / dof as f64).sqrt();
        let beta = &solution.beta;
        let at = |col: Option<usize>| col.map_or(0.0, |c| beta[c]);

        // Cell effects, with absent cells borrowing from a more ordinary day type.
        let mut cell_effect = [0.0; CELLS];
        for (g, effect) in cell_effect.iter_mut().enumerate() {
            let (day, hour) = (g / HOURS, g % HOURS);
            if let Some(d) = (0..=day).rev().find(|d| seen[d * HOURS + hour]) {
                *effect = at(layout.cell_col[d * HOURS + hour]);
            }
        }
        let model = FittedWeatherRegression {
            center,
            scale,
            trend_center,
            trend_scale,
            n,
            intercept: beta[0],
            trend: if self.trend { beta[1] } else { 0.0 },
            cell_effect,
            heating: at(solution.heating_col),
            cooling: at(solution.cooling_col),
            bases: solution.bases,
            sigma,
            residuals: Vec::new(),
        };
        let residuals: Vec<f64> = (0..n)
            .map(|i| {
                let t = data.inputs.temperature[i];
                y[i] - model.mean_at(i, data.inputs.cell[i], t)
            })
            .collect();
        if residuals.iter().any(|r| !r.is_finite()) || !sigma.is_finite() {
            return Err(ForecastError::FitFailed {
                model: MODEL.to_string(),
                reason: "the fitted values overflow f64".to_string(),
            });
        }
        Ok(FittedWeatherRegression { residuals, ..model })
    }
}

/// The bases minimising the SSE over the grid (coarse, then refined), ties
/// to the pair closest to `anchor`.
fn search_bases(data: &Data, layout: &Layout, anchor: (f64, f64)) -> Option<Solution> {
    let fixed = factor_fixed(data, layout)?;
    let mut best: Option<(Solution, f64)> = None;
    let consider = |best: &mut Option<(Solution, f64)>, bases: (f64, f64)| {
        if bases.0 > bases.1 {
            return;
        }
        let Some(s) = solve_at(data, layout, &fixed, bases) else {
            return;
        };
        let dist = (bases.0 - anchor.0).abs() + (bases.1 - anchor.1).abs();
        let better = match best.as_ref() {
            None => true,
            Some((b, bd)) => {
                let tol = 1e-12 * b.sse.max(f64::MIN_POSITIVE);
                s.sse < b.sse - tol || (s.sse <= b.sse + tol && dist < *bd)
            }
        };
        if better {
            *best = Some((s, dist));
        }
    };
    for h in grid(HEATING_GRID.0, HEATING_GRID.1, COARSE_STEP) {
        for c in grid(COOLING_GRID.0, COOLING_GRID.1, COARSE_STEP) {
            consider(&mut best, (h, c));
        }
    }
    let (h0, c0) = best.as_ref()?.0.bases;
    let reach = COARSE_STEP - FINE_STEP;
    for h in grid(
        (h0 - reach).max(HEATING_GRID.0),
        (h0 + reach).min(HEATING_GRID.1),
        FINE_STEP,
    ) {
        for c in grid(
            (c0 - reach).max(COOLING_GRID.0),
            (c0 + reach).min(COOLING_GRID.1),
            FINE_STEP,
        ) {
            consider(&mut best, (h, c));
        }
    }
    best.map(|(s, _)| s)
}

/// A fitted [`WeatherRegression`]. Coefficients are in the units of the
/// observations (e.g. MW).
///
/// ```
/// use spe_core::{Exog, Fit, History, WeatherRegression};
///
/// // Two weeks of working days: demand 500 + 30 MW per degree below 16 °C.
/// let n = 24 * 14;
/// let temperature: Vec<f64> = (0..n).map(|t| 6.0 + 0.4 * (t % 24) as f64 + (t / 24 % 7) as f64).collect();
/// let hour: Vec<f64> = (0..n).map(|t| (t % 24) as f64).collect();
/// let y: Vec<f64> = temperature.iter().map(|t| 500.0 + 30.0 * (16.0 - t).max(0.0)).collect();
/// let exog = Exog::new(vec![
///     ("temperature_2m".into(), temperature),
///     ("hour".into(), hour),
///     ("day_type".into(), vec![0.0; n]),
/// ])
/// .unwrap();
/// let history = History { y: &y, periods: &[], exog: Some(&exog) };
/// let f = WeatherRegression::with_bases(16.0, 22.0).fit(&history).unwrap();
/// assert!((f.heating_slope() - 30.0).abs() < 1e-6);
/// assert_eq!(f.cooling_slope(), 0.0); // never above 22 °C: not estimated
/// assert!(f.sigma() < 1e-6);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FittedWeatherRegression {
    center: f64,
    scale: f64,
    trend_center: f64,
    trend_scale: f64,
    n: usize,
    /// Standardised coefficients.
    intercept: f64,
    trend: f64,
    cell_effect: [f64; CELLS],
    heating: f64,
    cooling: f64,
    bases: (f64, f64),
    /// Residual standard deviation, in the units of the observations.
    sigma: f64,
    residuals: Vec<f64>,
}

impl FittedWeatherRegression {
    /// The mean at step `i` (0 = first observation) of calendar cell `cell`
    /// and temperature `t`.
    fn mean_at(&self, i: usize, cell: usize, t: f64) -> f64 {
        let (hdd, cdd) = degrees(t, self.bases);
        let tau = (i as f64 - self.trend_center) / self.trend_scale;
        let z = self.intercept
            + self.trend * tau
            + self.cell_effect[cell]
            + self.heating * hdd
            + self.cooling * cdd;
        self.center + self.scale * z
    }

    /// The heating base temperature, °C (fitted or configured).
    pub fn heating_base_c(&self) -> f64 {
        self.bases.0
    }

    /// The cooling base temperature, °C (fitted or configured).
    pub fn cooling_base_c(&self) -> f64 {
        self.bases.1
    }

    /// Demand per heating degree (0 if the history has no hour below the base).
    pub fn heating_slope(&self) -> f64 {
        self.scale * self.heating
    }

    /// Demand per cooling degree (0 if the history has no hour above the base).
    pub fn cooling_slope(&self) -> f64 {
        self.scale * self.cooling
    }

    /// Change of the demand per step of the linear trend (0 without trend).
    pub fn trend_per_step(&self) -> f64 {
        self.scale * self.trend / self.trend_scale
    }

    /// The effect of `hour` (0–23) on a day of type `day_type`, relative to
    /// the reference cell (hour 0 of a working day, if present in the
    /// history); `None` for an hour beyond 23.
    pub fn hour_effect(&self, hour: usize, day_type: DayType) -> Option<f64> {
        (hour < HOURS)
            .then(|| self.scale * self.cell_effect[day_type_code(day_type) * HOURS + hour])
    }

    /// The residual standard deviation used by the intervals.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }
}

impl Predict for FittedWeatherRegression {
    /// Forecast with the regressors of the horizon in `future`: exactly
    /// `horizon` rows of `temperature_2m`, `hour` and `day_type`.
    fn predict(
        &self,
        horizon: usize,
        levels: &[f64],
        future: Option<&Exog>,
    ) -> Result<Forecast, ForecastError> {
        validate_horizon(horizon)?;
        validate_levels(levels)?;
        let future = future.ok_or_else(|| {
            ForecastError::MissingRegressors(format!(
                "{MODEL} needs the future regressors {:?}, {:?} and {:?} for the {horizon} \
                 steps of the horizon (forecast weather; see calendar_exog)",
                WeatherRegression::TEMPERATURE,
                WeatherRegression::HOUR,
                WeatherRegression::DAY_TYPE
            ))
        })?;
        if future.len() < horizon {
            return Err(ForecastError::MissingRegressors(format!(
                "{MODEL}: the future regressors have {} rows for a horizon of {horizon} steps",
                future.len()
            )));
        }
        if future.len() > horizon {
            return Err(ForecastError::invalid(format!(
                "{MODEL}: the future regressors have {} rows for a horizon of {horizon} steps",
                future.len()
            )));
        }
        let inputs = read_inputs(future, "the future regressors")?;
        let mean: Vec<f64> = (0..horizon)
            .map(|h| self.mean_at(self.n + h, inputs.cell[h], inputs.temperature[h]))
            .collect();
        let sd = vec![self.sigma; horizon];
        check_forecast_path(MODEL, &mean, &sd)?;
        let intervals = normal_intervals(&mean, &sd, levels)?;
        Forecast::new(MODEL, mean, intervals)
    }

    /// In-sample residuals of the least-squares fit (observed − fitted).
    fn residuals(&self) -> &[f64] {
        &self.residuals
    }

    /// `heating_base_c`, `cooling_base_c`, `heating_slope`,
    /// `cooling_slope`, `trend_per_step`, `sigma`, then the hour effects
    /// (see [`hour_effect`](FittedWeatherRegression::hour_effect)) as
    /// `hour_effect_<day type>_<hour>`, the day type `working`, `saturday`
    /// or `sunday_or_holiday` (`hour_effect_working_07`). No components.
    fn summary(&self) -> FittedSummary {
        let mut s = FittedSummary::new(MODEL)
            .with_param("heating_base_c", self.heating_base_c())
            .with_param("cooling_base_c", self.cooling_base_c())
            .with_param("heating_slope", self.heating_slope())
            .with_param("cooling_slope", self.cooling_slope())
            .with_param("trend_per_step", self.trend_per_step())
            .with_param("sigma", self.sigma());
        let day_types = [
            ("working", DayType::Working),
            ("saturday", DayType::Saturday),
            ("sunday_or_holiday", DayType::Sunday),
        ];
        for (name, day_type) in day_types {
            for hour in 0..HOURS {
                if let Some(effect) = self.hour_effect(hour, day_type) {
                    s = s.with_param(format!("hour_effect_{name}_{hour:02}"), effect);
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::intervals::test_rng::XorShift;
    use super::*;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    const HEATING_SLOPE: f64 = 40.0;
    const COOLING_SLOPE: f64 = 25.0;

    /// A year of hourly Paris weather and demand with known coefficients.
    struct Sim {
        y: Vec<f64>,
        exog: Exog,
    }

    fn simulate(noise_sd: f64, seed: u64) -> Sim {
        let site = Site::paris();
        let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let axis = TimeAxis::new(start, 8760).unwrap();
        let mut rng = XorShift::new(seed);
        let temperature: Vec<f64> = (0..axis.len())
            .map(|t| {
                let day = t as f64 / 24.0;
                12.0 - 11.0 * (std::f64::consts::TAU * day / 365.0).cos()
                    + 4.0 * (std::f64::consts::TAU * (t % 24) as f64 / 24.0 - 2.0).sin()
                    + 2.0 * rng.normal()
            })
            .collect();
        let exog = calendar_exog(&site, axis, &temperature).unwrap();
        let hour = exog.column(WeatherRegression::HOUR).unwrap().to_vec();
        let day_type = exog.column(WeatherRegression::DAY_TYPE).unwrap().to_vec();
        let y = (0..axis.len())
            .map(|t| {
                let h = hour[t];
                let shape = 800.0 * (std::f64::consts::TAU * (h - 14.0) / 24.0).cos();
                let day = [0.0, -600.0, -1000.0][day_type[t] as usize];
                let (hdd, cdd) = degrees(temperature[t], (15.0, 22.0));
                20_000.0
                    + 0.05 * t as f64
                    + shape
                    + day
                    + HEATING_SLOPE * hdd
                    + COOLING_SLOPE * cdd
                    + noise_sd * rng.normal()
            })
            .collect();
        Sim { y, exog }
    }

    fn split(exog: &Exog, at: usize) -> (Exog, Exog) {
        let part = |r: std::ops::Range<usize>| {
            Exog::new(
                exog.names()
                    .iter()
                    .map(|n| (n.clone(), exog.column(n).unwrap()[r.clone()].to_vec()))
                    .collect(),
            )
            .unwrap()
        };
        (part(0..at), part(at..exog.len()))
    }

    #[test]
    fn recovers_known_coefficients_and_bases() {
        let sim = simulate(150.0, 3);
        let history = History {
            y: &sim.y,
            periods: &[24, 168],
            exog: Some(&sim.exog),
        };
        let f = WeatherRegression::default().fit(&history).unwrap();
        assert!(
            (f.heating_slope() - HEATING_SLOPE).abs() < 2.0,
            "{}",
            f.heating_slope()
        );
        assert!(
            (f.heating_base_c() - 15.0).abs() <= 0.5,
            "{}",
            f.heating_base_c()
        );
        assert!(
            (f.cooling_slope() - COOLING_SLOPE).abs() < 5.0,
            "{}",
            f.cooling_slope()
        );
        assert!(
            (f.cooling_base_c() - 22.0).abs() <= 1.0,
            "{}",
            f.cooling_base_c()
        );
        assert!(
            (f.trend_per_step() - 0.05).abs() < 0.01,
            "{}",
            f.trend_per_step()
        );
        assert!((f.sigma() - 150.0).abs() < 10.0, "{}", f.sigma());
        // Sunday 14:00 vs working-day 14:00: −1000 MW.
        let sunday = f.hour_effect(14, DayType::Sunday).unwrap();
        let working = f.hour_effect(14, DayType::Working).unwrap();
        assert!(
            (sunday - working + 1000.0).abs() < 50.0,
            "{sunday} {working}"
        );
        assert_eq!(f.residuals().len(), sim.y.len());
        assert_eq!(f.hour_effect(24, DayType::Working), None);
        // The summary gives the same figures by name.
        let summary = f.summary();
        assert_eq!(summary.model, "weather_regression");
        assert_eq!(summary.param("heating_slope"), Some(f.heating_slope()));
        assert_eq!(summary.param("cooling_base_c"), Some(f.cooling_base_c()));
        assert_eq!(summary.param("sigma"), Some(f.sigma()));
        assert_eq!(
            summary.param("hour_effect_sunday_or_holiday_14"),
            Some(sunday)
        );
        assert_eq!(summary.param("hour_effect_working_14"), Some(working));
        assert_eq!(summary.params.len(), 6 + 3 * 24);
        assert!(summary.components.is_empty());
    }

    #[test]
    fn without_the_trend_there_is_no_slope_and_one_parameter_less() {
        let sim = simulate(150.0, 3);
        let history = History {
            y: &sim.y,
            periods: &[24, 168],
            exog: Some(&sim.exog),
        };
        let flat = WeatherRegression {
            trend: false,
            ..WeatherRegression::default()
        };
        let f = flat.fit(&history).unwrap();
        assert_eq!(f.trend_per_step(), 0.0);
        // The drift (0.05 MW per hour, 438 MW over the year) is left in
        // the residuals: they are wider than with the trend.
        let with = WeatherRegression::default().fit(&history).unwrap();
        assert!(
            f.sigma() > with.sigma() + 5.0,
            "{} {}",
            f.sigma(),
            with.sigma()
        );
        // Forecasts stay level where the trend would climb.
        let (_, future) = split(&sim.exog, 8760 - 48);
        let short = History {
            y: &sim.y[..8760 - 48],
            periods: &[24, 168],
            exog: Some(&split(&sim.exog, 8760 - 48).0),
        };
        assert!(
            flat.fit(&short)
                .unwrap()
                .predict(48, &[80.0], Some(&future))
                .is_ok()
        );
        // One coefficient less: the shortest history is 2 observations shorter.
        let (past, _) = split(&sim.exog, 20);
        let tiny = History {
            y: &sim.y[..20],
            periods: &[],
            exog: Some(&past),
        };
        match flat.fit(&tiny) {
            Err(ForecastError::TooShort { needed, .. }) => {
                assert_eq!(needed, 2 * (2 + 19 + 2 + 2) - 2);
            }
            other => panic!("{other:?}"),
        }
    }

    /// Extending the fixed columns' factor by the degree columns gives
    /// exactly the solution of the whole normal equations factorised at once.
    #[test]
    fn the_shared_fixed_factor_changes_nothing() {
        let sim = simulate(150.0, 17);
        let n = 24 * 60;
        let inputs = read_inputs(&sim.exog.rows(0..n).unwrap(), "test").unwrap();
        let mut seen = [false; CELLS];
        for g in &inputs.cell {
            seen[*g] = true;
        }
        let layout = Layout::new(true, &seen);
        let data = Data {
            y: sim.y[..n]
                .iter()
                .map(|v| (v - 20_000.0) / 2_000.0)
                .collect(),
            trend: (0..n).map(|i| i as f64 / n as f64 - 0.5).collect(),
            inputs,
        };
        let fixed = factor_fixed(&data, &layout).unwrap();
        for bases in [(10.0, 18.0), (15.0, 22.0), (18.0, 26.0), (-50.0, 60.0)] {
            let s = solve_at(&data, &layout, &fixed, bases).unwrap();
            // The whole matrix at once.
            let k = s.beta.len();
            let mut gram = vec![0.0; k * k];
            let mut rhs = vec![0.0; k];
            let cols = (s.heating_col, s.cooling_col);
            normal_equations(&data, &layout, bases, cols, &mut gram, &mut rhs, k);
            let scale = cholesky_factor(&mut gram, k).unwrap();
            let mut z = forward(&gram, &rhs, &scale, k, 0, Vec::new());
            for i in (0..k).rev() {
                let t: f64 = (i + 1..k).map(|m| gram[m * k + i] * z[m]).sum();
                z[i] = (z[i] - t) / gram[i * k + i];
            }
            let beta: Vec<f64> = z.iter().zip(&scale).map(|(v, s)| v * s).collect();
            assert_eq!(s.beta, beta, "{bases:?}");
        }
    }

    #[test]
    fn configured_bases_are_kept() {
        let sim = simulate(150.0, 5);
        let history = History {
            y: &sim.y,
            periods: &[],
            exog: Some(&sim.exog),
        };
        let f = WeatherRegression::with_bases(15.0, 22.0)
            .fit(&history)
            .unwrap();
        assert_eq!((f.heating_base_c(), f.cooling_base_c()), (15.0, 22.0));
        assert!((f.heating_slope() - HEATING_SLOPE).abs() < 1.5);
        assert!(
            WeatherRegression::with_bases(20.0, 18.0)
                .fit(&history)
                .is_err()
        );
        assert!(
            WeatherRegression::with_bases(f64::NAN, 18.0)
                .fit(&history)
                .is_err()
        );
    }

    #[test]
    fn forecast_without_noise_matches_the_truth() {
        let sim = simulate(0.0, 7);
        let cut = sim.y.len() - 48;
        let (past, future) = split(&sim.exog, cut);
        let history = History {
            y: &sim.y[..cut],
            periods: &[24],
            exog: Some(&past),
        };
        let f = WeatherRegression::default().fit(&history).unwrap();
        assert_eq!((f.heating_base_c(), f.cooling_base_c()), (15.0, 22.0));
        assert!(f.sigma() < 1e-6, "{}", f.sigma());
        let fc = f.predict(48, &[80.0, 95.0], Some(&future)).unwrap();
        assert_eq!(fc.model(), "weather_regression");
        for (m, truth) in fc.mean().iter().zip(&sim.y[cut..]) {
            assert!((m - truth).abs() < 1e-6 * truth.abs(), "{m} vs {truth}");
        }
        assert_eq!(fc.intervals().len(), 2);
    }

    /// Coverage of the normal intervals on the simulated year (independent
    /// noise): 10 forecasts of 48 hours at the end of the year.
    #[test]
    fn intervals_cover_at_their_nominal_rate() {
        let sim = simulate(150.0, 13);
        let n = sim.y.len();
        let (mut c80, mut c95) = (0.0, 0.0);
        let origins: Vec<usize> = (0..10).map(|k| n - 48 * (10 - k)).collect();
        for &o in &origins {
            let (past, rest) = split(&sim.exog, o);
            let (future, _) = split(&rest, 48);
            let history = History {
                y: &sim.y[..o],
                periods: &[24, 168],
                exog: Some(&past),
            };
            let f = WeatherRegression::default()
                .fit(&history)
                .unwrap()
                .predict(48, &[80.0, 95.0], Some(&future))
                .unwrap();
            let actual = &sim.y[o..o + 48];
            let cover = |level| {
                crate::forecast::coverage(actual, f.lower(level).unwrap(), f.upper(level).unwrap())
                    .unwrap()
                    .unwrap()
            };
            c80 += cover(80.0) / origins.len() as f64;
            c95 += cover(95.0) / origins.len() as f64;
        }
        assert!((0.74..=0.86).contains(&c80), "80 % coverage {c80}");
        assert!((0.91..=0.99).contains(&c95), "95 % coverage {c95}");
    }

    #[test]
    fn missing_regressors_are_clear_errors() {
        let sim = simulate(10.0, 9);
        let cut = sim.y.len() - 24;
        let (past, future) = split(&sim.exog, cut);
        let history = History {
            y: &sim.y[..cut],
            periods: &[24],
            exog: Some(&past),
        };
        let f = WeatherRegression::with_bases(15.0, 22.0)
            .fit(&history)
            .unwrap();
        match f.predict(24, &[95.0], None) {
            Err(ForecastError::MissingRegressors(msg)) => {
                assert!(
                    msg.contains("temperature_2m") && msg.contains("24 steps"),
                    "{msg}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            f.predict(25, &[95.0], Some(&future)),
            Err(ForecastError::MissingRegressors(_))
        ));
        assert!(matches!(
            f.predict(23, &[95.0], Some(&future)),
            Err(ForecastError::InvalidArgument(_))
        ));
        let no_hour = Exog::new(vec![
            ("temperature_2m".into(), vec![10.0; 24]),
            ("day_type".into(), vec![0.0; 24]),
        ])
        .unwrap();
        match f.predict(24, &[95.0], Some(&no_hour)) {
            Err(ForecastError::MissingRegressors(msg)) => {
                assert!(msg.contains("\"hour\""), "{msg}")
            }
            other => panic!("{other:?}"),
        }
        // No regressors in the history.
        let bare = History::new(&sim.y, &[24]);
        assert!(matches!(
            WeatherRegression::default().fit(&bare),
            Err(ForecastError::MissingRegressors(_))
        ));
        // Invalid values.
        let bad_hour = Exog::new(vec![
            ("temperature_2m".into(), vec![10.0; 24]),
            ("hour".into(), vec![24.0; 24]),
            ("day_type".into(), vec![0.0; 24]),
        ])
        .unwrap();
        assert!(matches!(
            f.predict(24, &[95.0], Some(&bad_hour)),
            Err(ForecastError::InvalidArgument(_))
        ));
        let kelvin = Exog::new(vec![
            ("temperature_2m".into(), vec![283.0; 24]),
            ("hour".into(), vec![0.0; 24]),
            ("day_type".into(), vec![0.0; 24]),
        ])
        .unwrap();
        assert!(f.predict(24, &[95.0], Some(&kelvin)).is_err());
    }

    #[test]
    fn short_history_and_singular_design_are_errors() {
        let sim = simulate(10.0, 11);
        let (past, _) = split(&sim.exog, 20);
        let history = History {
            y: &sim.y[..20],
            periods: &[],
            exog: Some(&past),
        };
        match WeatherRegression::default().fit(&history) {
            Err(ForecastError::TooShort { needed, got, .. }) => {
                assert_eq!(got, 20);
                // Intercept, trend, 19 more hours, 2 slopes, 2 bases.
                assert_eq!(needed, 2 * (2 + 19 + 2 + 2));
            }
            other => panic!("{other:?}"),
        }
        // Constant temperature below the heating base: degrees are a
        // multiple of the intercept.
        let n = 24 * 7;
        let exog = Exog::new(vec![
            ("temperature_2m".into(), vec![5.0; n]),
            ("hour".into(), (0..n).map(|t| (t % 24) as f64).collect()),
            ("day_type".into(), vec![0.0; n]),
        ])
        .unwrap();
        let y: Vec<f64> = (0..n).map(|t| (t % 5) as f64).collect();
        let history = History {
            y: &y,
            periods: &[],
            exog: Some(&exog),
        };
        assert!(matches!(
            WeatherRegression::with_bases(15.0, 22.0).fit(&history),
            Err(ForecastError::FitFailed { .. })
        ));
        // Regressors of the wrong length.
        let history = History {
            y: &y[..n - 1],
            periods: &[],
            exog: Some(&exog),
        };
        assert!(matches!(
            WeatherRegression::default().fit(&history),
            Err(ForecastError::InvalidArgument(_))
        ));
    }

    #[test]
    fn calendar_exog_marks_holidays_and_weekends() {
        let site = Site::paris();
        // Sat 11 July 2026 00:00 Paris (UTC+2) to Wed 15 July 00:00.
        let start = Utc.with_ymd_and_hms(2026, 7, 10, 22, 0, 0).unwrap();
        let axis = TimeAxis::new(start, 24 * 4).unwrap();
        let exog = calendar_exog(&site, axis, &vec![20.0; 96]).unwrap();
        let hour = exog.column(WeatherRegression::HOUR).unwrap();
        let day = exog.column(WeatherRegression::DAY_TYPE).unwrap();
        assert_eq!(&hour[..3], &[0.0, 1.0, 2.0]);
        assert_eq!(hour[23], 23.0);
        // Saturday, Sunday, Monday (working), Tuesday 14 July (holiday).
        for (d, expected) in [1.0, 2.0, 0.0, 2.0].into_iter().enumerate() {
            assert!(
                day[d * 24..(d + 1) * 24].iter().all(|v| *v == expected),
                "day {d}: {:?}",
                &day[d * 24..(d + 1) * 24]
            );
        }
        // Winter: UTC+1, local midnight at 23:00 UTC.
        let start = Utc.with_ymd_and_hms(2026, 1, 6, 23, 0, 0).unwrap();
        let axis = TimeAxis::new(start, 2).unwrap();
        let exog = calendar_exog(&site, axis, &[0.0, 0.0]).unwrap();
        assert_eq!(exog.column(WeatherRegression::HOUR).unwrap(), &[0.0, 1.0]);
        assert!(calendar_exog(&site, axis, &[f64::NAN, 0.0]).is_err());
    }

    fn finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            -50.0..50.0f64,
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn never_panics_on_finite_inputs(
            rows in prop::collection::vec(
                (finite(), -30.0..40.0f64, finite(), 0u8..4, finite(), 0u8..3, finite()),
                0..120,
            ),
            wild_temperature in prop::bool::weighted(0.2),
            wild_calendar in prop::bool::weighted(0.2),
            fit_bases in any::<bool>(),
            trend in any::<bool>(),
            horizon in 0usize..30,
            level in finite(),
        ) {
            let y: Vec<f64> = rows.iter().map(|r| r.0).collect();
            let temperature = rows.iter().map(|r| if wild_temperature { r.2 } else { r.1 }).collect();
            let hour = rows.iter().map(|r| if wild_calendar { r.4 } else { f64::from(r.3) }).collect();
            let day = rows.iter().map(|r| if wild_calendar { r.6 } else { f64::from(r.5) }).collect();
            let exog = Exog::new(vec![
                ("temperature_2m".into(), temperature),
                ("hour".into(), hour),
                ("day_type".into(), day),
            ]).unwrap();
            let model = WeatherRegression { fit_bases, trend, ..WeatherRegression::default() };
            let history = History { y: &y, periods: &[], exog: Some(&exog) };
            if let Ok(f) = model.fit(&history) {
                prop_assert!(f.sigma().is_finite());
                prop_assert!(f.residuals().iter().all(|r| r.is_finite()));
                let k = horizon.min(rows.len());
                let (_, future) = split(&exog, rows.len() - k);
                if let Ok(fc) = f.predict(k, &[level], Some(&future)) {
                    prop_assert_eq!(fc.horizon(), k);
                    prop_assert!(fc.mean().iter().all(|m| m.is_finite()));
                }
            }
        }
    }
}
