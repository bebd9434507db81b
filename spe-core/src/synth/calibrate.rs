//! Calibration: fit the climate and the demand model to a site's recorded
//! history, so that estimation mode stays close to the real site.
//!
//! - **Temperature**: ordinary least squares of the recorded temperature on
//!   the annual cycle (`1, cos, sin` of the day of year) and the model's
//!   diurnal shape (WAVE shape × seasonal × cloud damping). With less than
//!   330 days, the annual amplitude and phase cannot be identified: they are
//!   kept and only the level and the diurnal amplitude are fitted. The
//!   residual gives the anomaly's standard deviation; its lag-24 h
//!   autocorrelation selects the anomaly's period (persistence) among
//!   candidates by matching the model's own autocorrelation.
//! - **Wind**: the mean 10 m speed.
//! - **Demand** (when a demand series is given): least squares, without
//!   intercept, of demand on the unit load shape of each day type (working
//!   day, Saturday, Sunday/holiday) and on heating and cooling degrees of the
//!   effective temperature. This gives the base level, the weekend factors and
//!   the two sensitivities. A sensitivity whose degrees are almost never
//!   positive in the history (fewer than 72 hours above 0.5 °C·h) is not
//!   identifiable: it keeps its configured value, scaled to the fitted base.
//!   A negative fitted sensitivity is set to 0 and the fit redone without
//!   it. A fit that explains less than a constant would (R² < 0) is refused.
//!
//! A constant temperature or demand series (a stuck sensor) is refused as
//! [`CalibrationError::Degenerate`], and a fitted diurnal temperature
//! amplitude that is not positive (often timestamps that are not UTC) as
//! [`CalibrationError::Implausible`].

use chrono::{DateTime, Datelike as _, Utc};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::config::{MAX_DIURNAL_AMPLITUDE_C, MAX_NOISE_STD_C, SynthConfig};
use super::energy::{DayCache, RollingMean};
use super::noise::SmoothNoise;
use super::solar::YEAR_DAYS;
use super::weather::WeatherModel;
use super::{EnergyTwin, Generator};
use crate::calendar::DayType;
use crate::frame::WeatherFrame;
use crate::series::HourlySeries;
use crate::site::Site;

/// Fewest hours of temperature history calibration accepts (one week).
pub const MIN_CALIBRATION_HOURS: usize = 168;
/// Fewest days for fitting the annual cycle's amplitude and phase.
const MIN_DAYS_FOR_ANNUAL_CYCLE: usize = 330;
/// Fewest hours with positive degrees for a sensitivity to be fitted.
const MIN_DEGREE_HOURS: usize = 72;

/// Why calibration failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrationError {
    /// Not enough recorded hours.
    #[error("calibration needs at least {needed} hours of {what}, got {got}")]
    TooShort {
        /// Which series.
        what: &'static str,
        /// Hours present.
        got: usize,
        /// Hours needed.
        needed: usize,
    },
    /// The demand series does not overlap the weather history.
    #[error(
        "the demand series ({demand_start}..) does not overlap the weather history ({weather_start}..)"
    )]
    NoOverlap {
        /// Start of the demand series.
        demand_start: DateTime<Utc>,
        /// Start of the weather history.
        weather_start: DateTime<Utc>,
    },
    /// The regression is degenerate (e.g. a constant series).
    #[error("calibration is degenerate: {0}")]
    Degenerate(String),
    /// The fitted parameters are outside the generator's valid ranges.
    #[error("fitted parameters are implausible: {0}")]
    Implausible(String),
}

/// The temperature model fitted by calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemperatureFit {
    /// Annual mean, °C.
    pub mean_c: f64,
    /// Annual half-range, °C.
    pub annual_amplitude_c: f64,
    /// Day of year of the warmest point.
    pub peak_day: f64,
    /// Whether amplitude and phase were fitted (≥ 330 days) or kept.
    pub annual_cycle_fitted: bool,
    /// Clear-sky diurnal half-range, °C.
    pub diurnal_amplitude_c: f64,
    /// Standard deviation of the anomaly (residual), °C.
    pub noise_std_c: f64,
    /// Lag-1 h autocorrelation of the anomaly.
    pub lag1_autocorrelation: f64,
    /// Lag-24 h autocorrelation of the anomaly.
    pub lag24_autocorrelation: f64,
    /// Chosen period of the anomaly's slowest octave, hours.
    pub noise_period_h: f64,
}

/// The demand model fitted by calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemandFit {
    /// Temperature-independent working-day level, MW.
    pub base_mw: f64,
    /// Saturday level relative to a working day.
    pub saturday_factor: f64,
    /// Sunday and holiday level relative to a working day.
    pub sunday_factor: f64,
    /// MW per heating degree.
    pub heating_mw_per_c: f64,
    /// Whether the heating sensitivity was fitted (else scaled from the
    /// config); a negative fit is set to 0 and counts as fitted.
    pub heating_fitted: bool,
    /// MW per cooling degree.
    pub cooling_mw_per_c: f64,
    /// Whether the cooling sensitivity was fitted.
    pub cooling_fitted: bool,
    /// Coefficient of determination of the fit, over the hours it kept
    /// (all but the outliers). A fit below [`MIN_DEMAND_R_SQUARED`] is
    /// refused.
    pub r_squared: f64,
    /// Root-mean-square error of the fit over the hours it kept, MW.
    pub rmse_mw: f64,
    /// Hours the robust fit gave almost no weight (a residual beyond about
    /// five robust standard deviations: a meter spike, a unit slip), left
    /// out of `r_squared` and `rmse_mw`.
    #[serde(default)]
    pub outlier_hours: usize,
}

/// What calibration fitted, and how well.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// Hours of temperature used.
    pub hours_used: usize,
    /// The temperature model.
    pub temperature: TemperatureFit,
    /// Mean 10 m wind speed, m/s, if the history has wind.
    pub wind_mean_ms: Option<f64>,
    /// The demand model, if a demand series was given.
    pub demand: Option<DemandFit>,
}

/// Solve the normal equations `XᵀX β = Xᵀy` by Gaussian elimination with
/// partial pivoting.
fn solve(mut a: Array2<f64>, mut b: Array1<f64>) -> Option<Array1<f64>> {
    let n = b.len();
    let scale = (0..n)
        .map(|i| a[[i, i]].abs())
        .fold(0.0, f64::max)
        .max(1e-300);
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[[i, col]].abs().total_cmp(&a[[j, col]].abs()))?;
        if a[[pivot, col]].abs() < 1e-10 * scale {
            return None;
        }
        if pivot != col {
            for k in 0..n {
                a.swap([col, k], [pivot, k]);
            }
            b.swap(col, pivot);
        }
        for row in col + 1..n {
            let f = a[[row, col]] / a[[col, col]];
            for k in col..n {
                a[[row, k]] -= f * a[[col, k]];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = Array1::zeros(n);
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[[row, k]] * x[k]).sum();
        x[row] = (b[row] - s) / a[[row, row]];
    }
    x.iter().all(|v: &f64| v.is_finite()).then_some(x)
}

/// Accumulates `XᵀX` and `Xᵀy` row by row.
struct LeastSquares {
    xtx: Array2<f64>,
    xty: Array1<f64>,
    rows: usize,
}

impl LeastSquares {
    fn new(k: usize) -> Self {
        LeastSquares {
            xtx: Array2::zeros((k, k)),
            xty: Array1::zeros(k),
            rows: 0,
        }
    }

    fn add(&mut self, x: &[f64], y: f64) {
        self.add_weighted(x, y, 1.0);
    }

    /// A row counted `w` times (weighted least squares).
    fn add_weighted(&mut self, x: &[f64], y: f64, w: f64) {
        for i in 0..x.len() {
            self.xty[i] += w * x[i] * y;
            for j in 0..x.len() {
                self.xtx[[i, j]] += w * x[i] * x[j];
            }
        }
        self.rows += 1;
    }

    fn solve(self) -> Option<Array1<f64>> {
        solve(self.xtx, self.xty)
    }
}

fn autocorrelation(residuals: &[Option<f64>], lag: usize) -> f64 {
    let present: Vec<f64> = residuals.iter().flatten().copied().collect();
    if present.len() < 2 {
        return 0.0;
    }
    let mean = present.iter().sum::<f64>() / present.len() as f64;
    let var = present.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / present.len() as f64;
    let pairs: Vec<f64> = residuals
        .iter()
        .zip(residuals.iter().skip(lag))
        .filter_map(|(a, b)| Some((a.as_ref()? - mean) * (b.as_ref()? - mean)))
        .collect();
    if pairs.is_empty() || var <= 0.0 {
        return 0.0;
    }
    pairs.iter().sum::<f64>() / pairs.len() as f64 / var
}

/// The noise period whose model lag-24 autocorrelation is closest to `target`.
fn match_noise_period(target: f64, seed: u64) -> f64 {
    const CANDIDATES: [f64; 9] = [24.0, 36.0, 48.0, 72.0, 96.0, 144.0, 192.0, 288.0, 480.0];
    let model_acf = |p: f64| {
        let n = SmoothNoise::new(seed, &[(p, 1.0), (p / 4.0, 0.5), (6.0, 0.2)]);
        let xs: Vec<Option<f64>> = (0..20_000).map(|h| Some(n.at(h as f64))).collect();
        autocorrelation(&xs, 24)
    };
    CANDIDATES
        .into_iter()
        .min_by(|a, b| {
            (model_acf(*a) - target)
                .abs()
                .total_cmp(&(model_acf(*b) - target).abs())
        })
        .unwrap_or(96.0)
}

impl Generator {
    /// Fit the climate (and, given a demand series, the demand model) to a
    /// recorded history of `site`, returning a generator with the fitted
    /// parameters and a report of the fit. The generator's other parameters
    /// (PV, wind fleet, grid, seed) are kept.
    ///
    /// `demand` is matched to the weather by timestamp; hours missing in
    /// either are skipped. The demand model is fitted robustly (Huber's
    /// reweighted least squares), so a few wild hours (a meter spike, a
    /// value in kW among MW) do not pull it: they are counted in
    /// [`DemandFit::outlier_hours`]. A model explaining less than
    /// [`MIN_DEMAND_R_SQUARED`] of the demand's variation is refused
    /// ([`CalibrationError::Implausible`]).
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use spe_core::{Generator, HourlySeries, Site, SynthConfig, TimeAxis};
    ///
    /// // A "real" site that is colder and more heating-sensitive than the defaults.
    /// let mut real = SynthConfig::default();
    /// real.climate.temp_mean_c = 9.0;
    /// real.demand.heating_mw_per_c = 70.0;
    /// let site = Site::paris();
    /// let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    /// let history = Generator::new(real).unwrap().generate(&site, TimeAxis::new(start, 2 * 8760).unwrap(), start);
    /// let demand = HourlySeries::new(start, history.energy.demand_mw().to_vec()).unwrap();
    ///
    /// let (fitted, report) = Generator::default().calibrate(&site, &history.weather, Some(&demand)).unwrap();
    /// assert!((report.temperature.mean_c - 9.0).abs() < 0.6);
    /// let heating = report.demand.unwrap().heating_mw_per_c;
    /// assert!((heating - 70.0).abs() < 10.0, "{heating}");
    /// assert_eq!(fitted.config().climate.temp_mean_c, report.temperature.mean_c);
    /// ```
    pub fn calibrate(
        &self,
        site: &Site,
        weather: &WeatherFrame,
        demand: Option<&HourlySeries>,
    ) -> Result<(Generator, CalibrationReport), CalibrationError> {
        let mut config = self.config.clone();
        let temperature = fit_temperature(&config, site, weather)?;
        let c = &mut config.climate;
        c.temp_mean_c = temperature.mean_c;
        c.temp_annual_amplitude_c = temperature.annual_amplitude_c;
        c.temp_peak_day = temperature.peak_day;
        // Beyond the generator's ranges: refused, not clamped (the report
        // and the fitted generator would disagree).
        if temperature.diurnal_amplitude_c > MAX_DIURNAL_AMPLITUDE_C
            || temperature.noise_std_c > MAX_NOISE_STD_C
        {
            return Err(CalibrationError::Implausible(format!(
                "daily amplitude {:.1} °C (at most {MAX_DIURNAL_AMPLITUDE_C}), noise {:.1} °C \
                 (at most {MAX_NOISE_STD_C}): is this an outdoor air temperature, in °C?",
                temperature.diurnal_amplitude_c, temperature.noise_std_c
            )));
        }
        c.temp_diurnal_amplitude_c = temperature.diurnal_amplitude_c;
        c.temp_noise_std_c = temperature.noise_std_c;
        c.temp_noise_period_h = temperature.noise_period_h;

        let winds: Vec<f64> = weather.wind_speed_10m().iter().flatten().copied().collect();
        let wind_mean_ms = (winds.len() >= MIN_CALIBRATION_HOURS)
            .then(|| winds.iter().sum::<f64>() / winds.len() as f64);
        if let Some(w) = wind_mean_ms {
            config.climate.wind_mean_ms = w.clamp(0.3, 15.0);
        }

        let demand_fit = match demand {
            Some(d) => {
                let fit = fit_demand(&config, site, weather, d)?;
                let dp = &mut config.demand;
                dp.base_mw = fit.base_mw;
                dp.saturday_factor = fit.saturday_factor;
                dp.sunday_factor = fit.sunday_factor;
                dp.heating_mw_per_c = fit.heating_mw_per_c;
                dp.cooling_mw_per_c = fit.cooling_mw_per_c;
                dp.noise_std = (fit.rmse_mw / fit.base_mw).clamp(0.0, 0.1);
                Some(fit)
            }
            None => None,
        };
        config
            .validate()
            .map_err(|e| CalibrationError::Implausible(e.to_string()))?;
        let report = CalibrationReport {
            hours_used: weather.temperature_2m().iter().flatten().count(),
            temperature,
            wind_mean_ms,
            demand: demand_fit,
        };
        Ok((Generator { config }, report))
    }
}

/// The model's mean cloud cover (%) of each calendar month (UTC) over the
/// hours of `axis`; 50 % for a month the axis does not reach.
fn model_monthly_cloud(model: &WeatherModel, axis: crate::series::TimeAxis) -> [f64; 12] {
    let mut sums = [0.0; 12];
    let mut counts = [0usize; 12];
    let mut cursor = model.cursor();
    for t in axis.times() {
        let month = t.month0() as usize;
        sums[month] += cursor.sample(t.timestamp() as f64).cloud_cover;
        counts[month] += 1;
    }
    std::array::from_fn(|m| {
        if counts[m] > 0 {
            sums[m] / counts[m] as f64
        } else {
            50.0
        }
    })
}

/// The least standard deviation of a temperature history, °C.
const MIN_TEMPERATURE_STD_C: f64 = 0.2;

fn fit_temperature(
    config: &SynthConfig,
    site: &Site,
    weather: &WeatherFrame,
) -> Result<TemperatureFit, CalibrationError> {
    let temps = weather.temperature_2m();
    let present = temps.iter().flatten().count();
    if present < MIN_CALIBRATION_HOURS {
        return Err(CalibrationError::TooShort {
            what: "temperature",
            got: present,
            needed: MIN_CALIBRATION_HOURS,
        });
    }
    if let Some(value) = constant(temps.iter().flatten().copied()) {
        return Err(CalibrationError::Degenerate(format!(
            "the temperature is constant ({value} °C): a stuck sensor?"
        )));
    }
    // Any outdoor air varies by more than this over a week; less is a
    // sensor that is stuck, or reads something else.
    let values: Vec<f64> = temps.iter().flatten().copied().collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let std = (values.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
    if std < MIN_TEMPERATURE_STD_C {
        return Err(CalibrationError::Degenerate(format!(
            "the temperature hardly varies (standard deviation {std:.3} °C, less than \
             {MIN_TEMPERATURE_STD_C} °C): a stuck sensor, or not an outdoor air temperature?"
        )));
    }
    // The diurnal regressor is the model's diurnal shape for a unit
    // amplitude, whatever amplitude is configured (0 included).
    let mut unit_climate = config.climate.clone();
    unit_climate.temp_diurnal_amplitude_c = 1.0;
    let model = WeatherModel::new(
        &unit_climate,
        config.seed,
        site.latitude(),
        site.longitude(),
    );
    let shift = if site.latitude() < 0.0 {
        YEAR_DAYS / 2.0
    } else {
        0.0
    };
    let w = 2.0 * std::f64::consts::PI / YEAR_DAYS;
    let axis = weather.axis();
    let clouds = weather.cloud_cover();
    let annual_fitted = present >= MIN_DAYS_FOR_ANNUAL_CYCLE * 24;
    let cc = &config.climate;

    // An hour without a cloud cover takes the model's mean cloud cover of
    // its month (over the history's span): the mean damping of the daily
    // cycle by clouds, not that of a half-cloudy sky, which would bias the
    // fitted amplitude.
    let monthly_cloud = clouds
        .iter()
        .any(Option::is_none)
        .then(|| model_monthly_cloud(&model, axis));
    let rows = (0..axis.len()).filter_map(|i| {
        let t = temps[i]?;
        let unix_s = axis.time(i).timestamp() as f64;
        let phase = WeatherModel::phase(unix_s);
        let cloud = clouds[i].unwrap_or_else(|| {
            let month = axis.time(i).month0() as usize;
            monthly_cloud.as_ref().map_or(50.0, |m| m[month])
        });
        let diurnal = model.diurnal(unix_s, &phase, cloud);
        Some((i, unix_s, phase.doy, t, diurnal))
    });
    let (mean_c, annual_amplitude_c, peak_day, diurnal_amplitude_c) = if annual_fitted {
        let mut ls = LeastSquares::new(4);
        for (_, _, doy, t, d) in rows.clone() {
            let phase = w * (doy - shift);
            ls.add(&[1.0, phase.cos(), phase.sin(), d], t);
        }
        let b = ls.solve().ok_or_else(|| {
            CalibrationError::Degenerate("temperature regression is singular".into())
        })?;
        let amplitude = b[1].hypot(b[2]);
        let peak = (b[2].atan2(b[1]) / w).rem_euclid(YEAR_DAYS);
        (b[0], amplitude, peak, b[3])
    } else {
        let mut ls = LeastSquares::new(2);
        for (_, _, doy, t, d) in rows.clone() {
            let cycle = cc.temp_annual_amplitude_c * (w * (doy - cc.temp_peak_day - shift)).cos();
            ls.add(&[1.0, d], t - cycle);
        }
        let b = ls.solve().ok_or_else(|| {
            CalibrationError::Degenerate("temperature regression is singular".into())
        })?;
        (b[0], cc.temp_annual_amplitude_c, cc.temp_peak_day, b[1])
    };
    if !(-60.0..=40.0).contains(&mean_c) || !(0.0..=30.0).contains(&annual_amplitude_c) {
        return Err(CalibrationError::Implausible(format!(
            "annual mean {mean_c:.1} °C, amplitude {annual_amplitude_c:.1} °C"
        )));
    }
    // Also refuses NaN.
    if diurnal_amplitude_c.is_nan() || diurnal_amplitude_c <= 0.0 {
        return Err(CalibrationError::Implausible(format!(
            "diurnal amplitude {diurnal_amplitude_c:.2} °C: the days are not warmer in the \
             afternoon than at night (are the timestamps UTC?)"
        )));
    }
    let mut residuals = vec![None; axis.len()];
    for (i, _, doy, t, d) in rows {
        let fitted = mean_c
            + annual_amplitude_c * (w * (doy - peak_day - shift)).cos()
            + diurnal_amplitude_c * d;
        residuals[i] = Some(t - fitted);
    }
    let present_res: Vec<f64> = residuals.iter().flatten().copied().collect();
    let noise_std_c =
        (present_res.iter().map(|r| r * r).sum::<f64>() / present_res.len() as f64).sqrt();
    let lag1 = autocorrelation(&residuals, 1);
    let lag24 = autocorrelation(&residuals, 24);
    Ok(TemperatureFit {
        mean_c,
        annual_amplitude_c,
        peak_day,
        annual_cycle_fitted: annual_fitted,
        diurnal_amplitude_c,
        noise_std_c,
        lag1_autocorrelation: lag1,
        lag24_autocorrelation: lag24,
        noise_period_h: match_noise_period(lag24, config.seed),
    })
}

fn fit_demand(
    config: &SynthConfig,
    site: &Site,
    weather: &WeatherFrame,
    demand: &HourlySeries,
) -> Result<DemandFit, CalibrationError> {
    let axis = weather.axis();
    if demand.values().iter().all(Option::is_none) {
        return Err(CalibrationError::TooShort {
            what: "demand (the demand series has no value)",
            got: 0,
            needed: MIN_CALIBRATION_HOURS,
        });
    }
    let overlap = axis.times().filter(|t| demand.get(*t).is_some()).count();
    if overlap == 0 {
        return Err(CalibrationError::NoOverlap {
            demand_start: demand.start(),
            weather_start: axis.start(),
        });
    }
    if overlap < MIN_CALIBRATION_HOURS {
        return Err(CalibrationError::TooShort {
            what: "demand overlapping the weather",
            got: overlap,
            needed: MIN_CALIBRATION_HOURS,
        });
    }
    // Unit shapes (mean 1) of each day type, from a twin with unit factors.
    let mut unit = config.clone();
    unit.demand.saturday_factor = 1.0;
    unit.demand.sunday_factor = 1.0;
    let twin =
        EnergyTwin::new(&unit, site).map_err(|e| CalibrationError::Implausible(e.to_string()))?;

    struct Row {
        x: [f64; 5],
        y: f64,
    }
    let mut rows = Vec::with_capacity(overlap);
    let mut mean = RollingMean::new(24);
    let mut days = DayCache::default();
    let temps = weather.temperature_2m();
    for (i, t) in axis.times().enumerate() {
        let m24 = mean.push(temps[i]);
        let (local_hour, day_type) = days.local(site, t);
        let (Some(temp), Some(m24), Some(y)) = (temps[i], m24, demand.get(t)) else {
            continue;
        };
        let (hdd, cdd) = twin.degrees(twin.effective_temperature(temp, m24));
        let shape = twin.profile(local_hour, day_type);
        let mut x = [0.0; 5];
        match day_type {
            DayType::Working => x[0] = shape,
            DayType::Saturday => x[1] = shape,
            _ => x[2] = shape,
        }
        x[3] = hdd;
        x[4] = cdd;
        rows.push(Row { x, y });
    }
    if rows.len() < MIN_CALIBRATION_HOURS {
        return Err(CalibrationError::TooShort {
            what: "demand hours with a temperature (and the 24 h before it)",
            got: rows.len(),
            needed: MIN_CALIBRATION_HOURS,
        });
    }
    if let Some(value) = constant(rows.iter().map(|r| r.y)) {
        return Err(CalibrationError::Degenerate(format!(
            "the demand is constant ({value} MW): a stuck meter?"
        )));
    }
    let count = |k: usize, min: f64| rows.iter().filter(|r| r.x[k] > min).count();
    // Which regressors are identifiable: day types present, degrees positive often enough.
    let mut active = [
        count(0, 0.0) > 0,
        count(1, 0.0) >= 24,
        count(2, 0.0) >= 24,
        count(3, 0.5) >= MIN_DEGREE_HOURS,
        count(4, 0.5) >= MIN_DEGREE_HOURS,
    ];
    if !active[0] {
        return Err(CalibrationError::Degenerate(
            "no working day in the demand history".into(),
        ));
    }
    // Sensitivities fitted negative: not physical, set to 0.
    let mut dropped = [false; 5];
    let d = &config.demand;
    // The design row of `r` for the active regressors: an inactive weekend
    // type counts in the base with its configured factor.
    let design = |r: &Row, active: &[bool; 5]| -> Vec<f64> {
        let base = r.x[0]
            + r.x[1] * d.saturday_factor * f64::from(!active[1])
            + r.x[2] * d.sunday_factor * f64::from(!active[2]);
        let mut xs: Vec<f64> = (0..5).filter(|k| active[*k]).map(|k| r.x[k]).collect();
        xs[0] = base;
        xs
    };
    let (beta, weights) = loop {
        let idx: Vec<usize> = (0..5).filter(|k| active[*k]).collect();
        let xs: Vec<Vec<f64>> = rows.iter().map(|r| design(r, &active)).collect();
        let ys: Vec<f64> = rows.iter().map(|r| r.y).collect();
        let (b, weights) = huber_fit(&xs, &ys, idx.len())
            .ok_or_else(|| CalibrationError::Degenerate("demand regression is singular".into()))?;
        let mut full = [0.0; 5];
        for (j, k) in idx.iter().enumerate() {
            full[*k] = b[j];
        }
        // A negative sensitivity is not physical: drop it and refit.
        if let Some(k) = (3..5).find(|k| active[*k] && full[*k] < 0.0) {
            active[k] = false;
            dropped[k] = true;
            continue;
        }
        break (full, weights);
    };
    let base_mw = beta[0];
    if !(base_mw > 0.0 && base_mw.is_finite()) {
        return Err(CalibrationError::Implausible(format!(
            "base demand {base_mw:.1} MW"
        )));
    }
    let scale = base_mw / d.base_mw;
    // Fitted, fitted negative (0), or not identifiable (the configured value, scaled).
    let sensitivity = |k: usize, configured: f64| {
        if active[k] {
            beta[k]
        } else if dropped[k] {
            0.0
        } else {
            configured * scale
        }
    };
    let fit = DemandFit {
        base_mw,
        saturday_factor: if active[1] {
            beta[1] / base_mw
        } else {
            d.saturday_factor
        },
        sunday_factor: if active[2] {
            beta[2] / base_mw
        } else {
            d.sunday_factor
        },
        heating_mw_per_c: sensitivity(3, d.heating_mw_per_c),
        heating_fitted: active[3] || dropped[3],
        cooling_mw_per_c: sensitivity(4, d.cooling_mw_per_c),
        cooling_fitted: active[4] || dropped[4],
        r_squared: 0.0,
        rmse_mw: 0.0,
        outlier_hours: 0,
    };
    // Goodness of fit with the final coefficients, over the hours the
    // robust fit kept (an outlier would make any model look bad).
    let predict = |r: &Row| {
        r.x[0] * fit.base_mw
            + r.x[1] * fit.base_mw * fit.saturday_factor
            + r.x[2] * fit.base_mw * fit.sunday_factor
            + r.x[3] * fit.heating_mw_per_c
            + r.x[4] * fit.cooling_mw_per_c
    };
    let kept: Vec<&Row> = rows
        .iter()
        .zip(&weights)
        .filter(|(_, w)| **w >= OUTLIER_WEIGHT)
        .map(|(r, _)| r)
        .collect();
    let outlier_hours = rows.len() - kept.len();
    let n = kept.len() as f64;
    let y_mean = kept.iter().map(|r| r.y).sum::<f64>() / n;
    let sse: f64 = kept.iter().map(|r| (r.y - predict(r)).powi(2)).sum();
    let sst: f64 = kept.iter().map(|r| (r.y - y_mean).powi(2)).sum();
    let r_squared = 1.0 - sse / sst;
    if r_squared.is_nan() || r_squared < MIN_DEMAND_R_SQUARED {
        return Err(CalibrationError::Implausible(format!(
            "the demand model explains {:.0} % of the demand's variation (R² = {r_squared:.2}), \
             less than the {:.0} % a site's demand should show: is this the demand of the \
             site whose weather this is, in MW, hour by hour?",
            (r_squared.max(0.0) * 100.0).min(100.0),
            MIN_DEMAND_R_SQUARED * 100.0
        )));
    }
    Ok(DemandFit {
        r_squared,
        rmse_mw: (sse / n).sqrt(),
        outlier_hours,
        ..fit
    })
}

/// Huber's tuning constant (in robust standard deviations): 95 % efficient
/// on normal errors.
const HUBER_K: f64 = 1.345;
/// Most reweighting rounds of [`huber_fit`].
const HUBER_ROUNDS: usize = 30;
/// A demand hour whose Huber weight falls below this (its residual is more
/// than about five robust standard deviations) is counted as an outlier.
const OUTLIER_WEIGHT: f64 = HUBER_K / 5.0;
/// The least share of the demand's variation the demand model must explain
/// (over the hours it kept) for the fit to be taken.
pub const MIN_DEMAND_R_SQUARED: f64 = 0.5;

/// Least squares made robust to outliers by Huber's iteratively reweighted
/// least squares: rows with a residual beyond [`HUBER_K`] robust standard
/// deviations (1.4826 × the median absolute residual) weigh less the
/// farther they are, so one meter spike cannot pull the fit. Returns the
/// coefficients and each row's final weight; `None` if singular.
fn huber_fit(xs: &[Vec<f64>], ys: &[f64], k: usize) -> Option<(Array1<f64>, Vec<f64>)> {
    let solve_with = |weights: &[f64]| {
        let mut ls = LeastSquares::new(k);
        for ((x, &y), &w) in xs.iter().zip(ys).zip(weights) {
            ls.add_weighted(x, y, w);
        }
        ls.solve()
    };
    let mut weights = vec![1.0; ys.len()];
    let mut beta = solve_with(&weights)?;
    for _ in 0..HUBER_ROUNDS {
        let residuals: Vec<f64> = xs
            .iter()
            .zip(ys)
            .map(|(x, y)| y - x.iter().zip(beta.iter()).map(|(a, b)| a * b).sum::<f64>())
            .collect();
        let mut absolute: Vec<f64> = residuals.iter().map(|r| r.abs()).collect();
        absolute.sort_unstable_by(f64::total_cmp);
        let scale = 1.4826 * absolute[absolute.len() / 2];
        if !(scale > 0.0 && scale.is_finite()) {
            break;
        }
        weights = residuals
            .iter()
            .map(|r| (HUBER_K * scale / r.abs()).min(1.0))
            .collect();
        let next = solve_with(&weights)?;
        let change = next
            .iter()
            .zip(beta.iter())
            .map(|(n, b)| (n - b).abs() / b.abs().max(1e-9))
            .fold(0.0, f64::max);
        beta = next;
        if change < 1e-7 {
            break;
        }
    }
    Some((beta, weights))
}

/// The value of a series that does not vary (within 1e-9 of its scale),
/// `None` if it varies (or is empty).
fn constant(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo <= hi && hi - lo <= 1e-9 * hi.abs().max(lo.abs()).max(1.0)).then_some(lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::TimeAxis;
    use chrono::TimeZone;

    fn history(config: SynthConfig, hours: usize) -> (Site, super::super::SyntheticFrames) {
        let site = Site::paris();
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let g = Generator::new(config).unwrap();
        let f = g.generate(&site, TimeAxis::new(start, hours).unwrap(), start);
        (site, f)
    }

    #[test]
    fn recovers_known_parameters_from_two_years() {
        let mut real = SynthConfig {
            seed: 99,
            ..SynthConfig::default()
        };
        real.climate.temp_mean_c = 10.0;
        real.climate.temp_annual_amplitude_c = 10.5;
        real.climate.temp_peak_day = 195.0;
        real.climate.temp_diurnal_amplitude_c = 3.5;
        real.climate.temp_noise_std_c = 2.0;
        real.climate.wind_mean_ms = 5.0;
        real.demand.base_mw = 1500.0;
        real.demand.heating_mw_per_c = 90.0;
        real.demand.cooling_mw_per_c = 20.0;
        real.demand.sunday_factor = 0.78;
        let (site, f) = history(real, 2 * 8760);
        let demand =
            HourlySeries::new(f.energy.axis().start(), f.energy.demand_mw().to_vec()).unwrap();
        let (g, r) = Generator::default()
            .calibrate(&site, &f.weather, Some(&demand))
            .unwrap();
        let t = &r.temperature;
        assert!(t.annual_cycle_fitted);
        assert!((t.mean_c - 10.0).abs() < 0.6, "{t:?}");
        assert!((t.annual_amplitude_c - 10.5).abs() < 1.0, "{t:?}");
        assert!((t.peak_day - 195.0).abs() < 8.0, "{t:?}");
        assert!((t.diurnal_amplitude_c - 3.5).abs() < 0.5, "{t:?}");
        assert!((t.noise_std_c - 2.0).abs() < 0.5, "{t:?}");
        assert!(t.lag1_autocorrelation > 0.8, "{t:?}");
        assert!((r.wind_mean_ms.unwrap() - 5.0).abs() < 0.6, "{r:?}");
        let d = r.demand.as_ref().unwrap();
        assert!((d.base_mw - 1500.0).abs() < 45.0, "{d:?}");
        assert!((d.heating_mw_per_c - 90.0).abs() < 9.0, "{d:?}");
        assert!((d.cooling_mw_per_c - 20.0).abs() < 8.0, "{d:?}");
        assert!((d.sunday_factor - 0.78).abs() < 0.03, "{d:?}");
        assert!(d.r_squared > 0.9, "{d:?}");
        assert!(d.heating_fitted && d.cooling_fitted);
        assert_eq!(g.config().demand.base_mw, d.base_mw);
    }

    #[test]
    fn a_few_wild_demand_hours_do_not_pull_the_fit() {
        let (site, f) = history(SynthConfig::default(), 8760);
        let clean: Vec<Option<f64>> = f.energy.demand_mw().to_vec();
        let fit = |values: Vec<Option<f64>>| {
            let demand = HourlySeries::new(f.energy.axis().start(), values).unwrap();
            let (_, r) = Generator::with_seed(1)
                .calibrate(&site, &f.weather, Some(&demand))
                .unwrap();
            r.demand.unwrap()
        };
        let truth = fit(clean.clone());
        assert_eq!(truth.outlier_hours, 0, "{truth:?}");
        // One summer hour ×100, ×1000 or set to 1e7, and a day in kW.
        let spiked = |at: &[usize], value: &dyn Fn(f64) -> f64| {
            let mut v = clean.clone();
            for &i in at {
                v[i] = v[i].map(value);
            }
            v
        };
        let kw_day: Vec<usize> = (3000..3024).collect();
        for (what, values) in [
            ("×100", spiked(&[5000], &|x| x * 100.0)),
            ("×1000", spiked(&[5000], &|x| x * 1000.0)),
            ("1e7", spiked(&[5000], &|_| 1e7)),
            ("a day in kW", spiked(&kw_day, &|x| x * 1000.0)),
        ] {
            let d = fit(values);
            assert!(
                (d.base_mw - truth.base_mw).abs() < 0.01 * truth.base_mw,
                "{what}: {d:?}"
            );
            assert!(
                (d.heating_mw_per_c - truth.heating_mw_per_c).abs() < 2.0,
                "{what}: {d:?}"
            );
            assert!(
                (d.cooling_mw_per_c - truth.cooling_mw_per_c).abs() < 2.0,
                "{what}: {d:?}"
            );
            assert!(
                (d.saturday_factor - truth.saturday_factor).abs() < 0.01,
                "{what}: {d:?}"
            );
            assert!(d.outlier_hours >= 1, "{what}: {d:?}");
            assert!(d.r_squared > 0.9, "{what}: {d:?}");
        }
    }

    #[test]
    fn a_demand_the_weather_and_calendar_do_not_explain_is_refused() {
        let (site, f) = history(SynthConfig::default(), 8760);
        // A demand unrelated to the weather and the calendar.
        let demand: Vec<Option<f64>> = (0..8760)
            .map(|i| {
                let x = (i as f64 * 0.731).sin() * 400.0 + (i as f64 / 97.0).cos() * 300.0;
                Some(1000.0 + x)
            })
            .collect();
        let demand = HourlySeries::new(f.energy.axis().start(), demand).unwrap();
        let e = Generator::default()
            .calibrate(&site, &f.weather, Some(&demand))
            .unwrap_err();
        assert!(matches!(e, CalibrationError::Implausible(_)), "{e}");
        assert!(e.to_string().contains("R²"), "{e}");
    }

    #[test]
    fn short_history_keeps_the_annual_cycle_and_unidentifiable_sensitivities() {
        // Six weeks of winter: no cooling degrees at all.
        let mut real = SynthConfig::default();
        real.climate.temp_mean_c = 11.0;
        let (site, f) = history(real, 42 * 24);
        let demand =
            HourlySeries::new(f.energy.axis().start(), f.energy.demand_mw().to_vec()).unwrap();
        let (_, r) = Generator::default()
            .calibrate(&site, &f.weather, Some(&demand))
            .unwrap();
        assert!(!r.temperature.annual_cycle_fitted);
        assert_eq!(
            r.temperature.annual_amplitude_c,
            SynthConfig::default().climate.temp_annual_amplitude_c
        );
        assert!((r.temperature.mean_c - 11.0).abs() < 2.0, "{r:?}");
        let d = r.demand.unwrap();
        assert!(!d.cooling_fitted && d.heating_fitted, "{d:?}");
    }

    #[test]
    fn refuses_too_little_or_misaligned_data() {
        let (site, f) = history(SynthConfig::default(), 100);
        assert!(matches!(
            Generator::default().calibrate(&site, &f.weather, None),
            Err(CalibrationError::TooShort { got: 100, .. })
        ));
        let (site, f) = history(SynthConfig::default(), 400);
        let far = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let demand = HourlySeries::from_f64(far, &[100.0; 300]).unwrap();
        assert!(matches!(
            Generator::default().calibrate(&site, &f.weather, Some(&demand)),
            Err(CalibrationError::NoOverlap { .. })
        ));
    }

    /// `f`'s weather with its temperatures replaced by `temps(old)`.
    fn with_temperatures(
        f: &WeatherFrame,
        temps: impl Fn(&[Option<f64>]) -> Vec<Option<f64>>,
    ) -> WeatherFrame {
        let columns = crate::frame::WeatherColumns {
            temperature_2m: temps(f.temperature_2m()),
            shortwave_radiation: f.shortwave_radiation().to_vec(),
            cloud_cover: f.cloud_cover().to_vec(),
            wind_speed_10m: f.wind_speed_10m().to_vec(),
            ..Default::default()
        };
        WeatherFrame::new(f.axis(), columns, f.provenance(), f.produced_at()).unwrap()
    }

    #[test]
    fn a_history_without_clouds_fits_the_daily_cycle_as_one_with_them() {
        let real = SynthConfig {
            seed: 99,
            ..SynthConfig::default()
        };
        let truth = real.climate.temp_diurnal_amplitude_c;
        let (site, frames) = history(real, 2 * 8760);
        let f = &frames.weather;
        let fitted = |weather: &WeatherFrame| {
            Generator::default()
                .calibrate(&site, weather, None)
                .unwrap()
                .1
                .temperature
                .diurnal_amplitude_c
        };
        let with_clouds = fitted(f);
        let columns = crate::frame::WeatherColumns {
            temperature_2m: f.temperature_2m().to_vec(),
            shortwave_radiation: vec![None; f.len()],
            cloud_cover: vec![None; f.len()],
            wind_speed_10m: vec![None; f.len()],
            ..Default::default()
        };
        let bare = WeatherFrame::new(f.axis(), columns, f.provenance(), f.produced_at()).unwrap();
        let without = fitted(&bare);
        assert!(
            (with_clouds - truth).abs() < 0.25,
            "{with_clouds} vs {truth}"
        );
        assert!(
            (without - truth).abs() < 0.3,
            "{without} vs {truth} (with clouds {with_clouds})"
        );
    }

    #[test]
    fn a_negative_sensitivity_is_zero_not_the_configured_value() {
        // A site whose demand falls in the cold (no electric heating, and
        // something off in winter): the fitted heating sensitivity is negative.
        let mut real = SynthConfig::default();
        real.demand.heating_mw_per_c = 0.0;
        real.demand.noise_std = 0.0;
        let (site, f) = history(real, 8760);
        let values: Vec<f64> = f
            .energy
            .demand_mw()
            .iter()
            .zip(f.weather.temperature_2m())
            .map(|(d, t)| d.unwrap() - 5.0 * (15.0 - t.unwrap()).max(0.0))
            .collect();
        let demand = HourlySeries::from_f64(f.energy.axis().start(), &values).unwrap();
        let (g, r) = Generator::default()
            .calibrate(&site, &f.weather, Some(&demand))
            .unwrap();
        let d = r.demand.unwrap();
        assert_eq!(d.heating_mw_per_c, 0.0, "{d:?}");
        assert!(d.heating_fitted, "{d:?}");
        assert!(d.r_squared > 0.5, "{d:?}");
        assert_eq!(g.config().demand.heating_mw_per_c, 0.0);
    }

    #[test]
    fn a_zero_diurnal_amplitude_can_be_calibrated_from() {
        let (site, f) = history(SynthConfig::default(), 60 * 24);
        let mut flat = SynthConfig::default();
        flat.climate.temp_diurnal_amplitude_c = 0.0;
        let (_, r) = Generator::new(flat)
            .unwrap()
            .calibrate(&site, &f.weather, None)
            .unwrap();
        let expected = SynthConfig::default().climate.temp_diurnal_amplitude_c;
        let fitted = r.temperature.diurnal_amplitude_c;
        assert!(
            (fitted - expected).abs() < 0.2 * expected,
            "{fitted} vs {expected}"
        );
    }

    #[test]
    fn temperatures_twelve_hours_off_are_implausible() {
        let (site, f) = history(SynthConfig::default(), 60 * 24);
        let shifted = with_temperatures(&f.weather, |t| {
            let mut t = t.to_vec();
            t.rotate_left(12);
            t
        });
        let err = Generator::default()
            .calibrate(&site, &shifted, None)
            .unwrap_err();
        assert!(
            matches!(&err, CalibrationError::Implausible(m) if m.contains("diurnal")),
            "{err}"
        );
    }

    #[test]
    fn constant_series_are_degenerate() {
        let (site, f) = history(SynthConfig::default(), 400);
        let stuck = with_temperatures(&f.weather, |t| vec![Some(20.0); t.len()]);
        let err = Generator::default()
            .calibrate(&site, &stuck, None)
            .unwrap_err();
        assert!(
            matches!(&err, CalibrationError::Degenerate(m) if m.contains("constant (20 °C)")),
            "{err}"
        );
        // Nearly stuck: it varies, by a microdegree.
        let nearly = with_temperatures(&f.weather, |t| {
            (0..t.len())
                .map(|i| Some(15.0 + 1e-6 * (i % 7) as f64))
                .collect()
        });
        let err = Generator::default()
            .calibrate(&site, &nearly, None)
            .unwrap_err();
        assert!(
            matches!(&err, CalibrationError::Degenerate(m) if m.contains("hardly varies")),
            "{err}"
        );
        let demand = HourlySeries::from_f64(f.energy.axis().start(), &[500.0; 400]).unwrap();
        let err = Generator::default()
            .calibrate(&site, &f.weather, Some(&demand))
            .unwrap_err();
        assert!(
            matches!(&err, CalibrationError::Degenerate(m) if m.contains("demand is constant")),
            "{err}"
        );
        // Wild noise on the temperature: refused, not clamped into range.
        let wild = with_temperatures(&f.weather, |t| {
            t.iter()
                .enumerate()
                .map(|(i, v)| {
                    v.map(|v| v + 30.0 * ((i as f64 * 12.9898).sin() * 43_758.545).fract())
                })
                .collect()
        });
        let err = Generator::default()
            .calibrate(&site, &wild, None)
            .unwrap_err();
        assert!(
            matches!(&err, CalibrationError::Implausible(m) if m.contains("noise")),
            "{err}"
        );
        // No value at all: said so, not "does not overlap".
        let empty = HourlySeries::new(f.energy.axis().start(), vec![None; 400]).unwrap();
        let err = Generator::default()
            .calibrate(&site, &f.weather, Some(&empty))
            .unwrap_err();
        assert!(err.to_string().contains("has no value"), "{err}");
    }

    #[test]
    fn solver_handles_singular_systems() {
        let a = Array2::from_shape_vec((2, 2), vec![1.0, 2.0, 2.0, 4.0]).unwrap();
        assert!(solve(a, Array1::from(vec![1.0, 2.0])).is_none());
        let a = Array2::from_shape_vec((2, 2), vec![2.0, 1.0, 1.0, 3.0]).unwrap();
        let x = solve(a, Array1::from(vec![3.0, 5.0])).unwrap();
        assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12);
    }
}
