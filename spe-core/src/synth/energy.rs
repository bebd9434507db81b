//! The energy twin: demand and supply computed from weather.
//!
//! The same models run on live weather (nominal mode) and on synthetic
//! weather (estimation mode), so switching modes changes the data, not the
//! physics. See [`DemandParams`], [`PvParams`], [`WindParams`] and
//! [`GridParams`] for the equations.

use chrono::{DateTime, Utc};

use super::config::{DemandParams, GridParams, PvParams, SynthConfig, WindParams};
use super::noise::{NoiseCursor, SmoothNoise, derive_seed};
use super::solar::{Plane, SunCalc, SunPosition, YearPhase};
use super::weather::{WeatherModel, site_seed};
use crate::calendar::DayType;
use crate::frame::{EnergyColumns, EnergyFrame, WeatherFrame};
use crate::series::SeriesError;
use crate::site::Site;

/// Shape of the working-day load curve by local hour (French national load
/// curve, winter and summer averaged); normalised to a mean of 1 at run time.
const WORKING_SHAPE: [f64; 24] = [
    0.86, 0.81, 0.78, 0.76, 0.76, 0.79, 0.88, 0.99, 1.06, 1.09, 1.10, 1.11, //
    1.09, 1.07, 1.05, 1.04, 1.04, 1.07, 1.12, 1.15, 1.12, 1.06, 1.00, 0.93,
];
/// Saturday: later, flatter morning.
const SATURDAY_SHAPE: [f64; 24] = [
    0.88, 0.83, 0.79, 0.77, 0.76, 0.77, 0.81, 0.87, 0.95, 1.02, 1.06, 1.08, //
    1.07, 1.03, 1.00, 0.98, 0.99, 1.03, 1.10, 1.13, 1.10, 1.05, 1.00, 0.94,
];
/// Sunday and public holidays: late morning, lunch peak, evening peak.
const SUNDAY_SHAPE: [f64; 24] = [
    0.90, 0.85, 0.81, 0.78, 0.77, 0.77, 0.79, 0.83, 0.89, 0.96, 1.01, 1.05, //
    1.06, 1.01, 0.97, 0.95, 0.96, 1.00, 1.08, 1.12, 1.09, 1.04, 0.99, 0.94,
];

fn normalised(shape: &[f64; 24], level: f64) -> [f64; 24] {
    let mean = shape.iter().sum::<f64>() / 24.0;
    shape.map(|v| v / mean * level)
}

/// Everything the twin needs for one hour.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TwinInput {
    pub unix_s: f64,
    pub local_hour: usize,
    pub day_type: DayType,
    pub temperature: Option<f64>,
    /// Mean temperature of the last 24 hours (this one included).
    pub temperature_mean_24h: Option<f64>,
    pub ghi: Option<f64>,
    pub wind_10m: Option<f64>,
    /// The sun and year phase at the middle of the preceding hour, if already known.
    pub sun: Option<(SunPosition, YearPhase)>,
}

/// One hour of demand and supply, MW.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TwinOutput {
    pub demand: Option<f64>,
    pub solar: Option<f64>,
    pub wind: Option<f64>,
    pub other: Option<f64>,
    pub imports: Option<f64>,
}

/// The energy models of a site: demand, PV, wind and dispatch.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{EnergyTwin, Generator, Site, SynthConfig, TimeAxis};
///
/// let site = Site::paris();
/// let axis = TimeAxis::new(Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap(), 48).unwrap();
/// let weather = Generator::default().weather(&site, axis, axis.start());
/// // The same twin turns live or synthetic weather into demand and supply.
/// let twin = EnergyTwin::new(&SynthConfig::default(), &site).unwrap();
/// let energy = twin.energy(&weather).unwrap();
/// assert_eq!(energy.len(), 48);
/// assert_eq!(energy.provenance(), weather.provenance());
/// assert!(energy.demand_mw().iter().all(|d| d.unwrap() > 0.0));
/// ```
#[derive(Debug, Clone)]
pub struct EnergyTwin {
    site: Site,
    demand: DemandParams,
    pv: PvParams,
    wind: WindParams,
    grid: GridParams,
    shapes: [[f64; 24]; 3],
    noise: SmoothNoise,
    plane: Plane,
    sun: SunCalc,
    /// `(hub / 10 m)^α`, the 10 m to hub-height wind factor.
    hub_factor: f64,
}

impl EnergyTwin {
    /// The twin of `site` with the energy parameters of `config`.
    pub fn new(config: &SynthConfig, site: &Site) -> Result<Self, super::ConfigError> {
        config.validate()?;
        let d = &config.demand;
        let mut pv_azimuth = config.pv.azimuth_deg;
        if site.latitude() < 0.0 {
            // Mirror the orientation for the southern hemisphere (face north).
            pv_azimuth = (540.0 - pv_azimuth).rem_euclid(360.0);
        }
        let seed = site_seed(config.seed, site.latitude(), site.longitude());
        Ok(EnergyTwin {
            site: site.clone(),
            demand: d.clone(),
            pv: config.pv.clone(),
            wind: config.wind.clone(),
            grid: config.grid.clone(),
            shapes: [
                normalised(&WORKING_SHAPE, 1.0),
                normalised(&SATURDAY_SHAPE, d.saturday_factor),
                normalised(&SUNDAY_SHAPE, d.sunday_factor),
            ],
            noise: SmoothNoise::new(derive_seed(seed, 21), &[(24.0, 1.0), (5.0, 0.6)]),
            plane: Plane::new(config.pv.tilt_deg, pv_azimuth),
            sun: SunCalc::new(site.latitude(), site.longitude()),
            hub_factor: (config.wind.hub_height_m / 10.0).powf(config.wind.shear_exponent),
        })
    }

    /// The site.
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// The demand profile multiplier for a local hour and day type.
    pub fn profile(&self, local_hour: usize, day_type: DayType) -> f64 {
        let shape = match day_type {
            DayType::Working => &self.shapes[0],
            DayType::Saturday => &self.shapes[1],
            DayType::Sunday | DayType::Holiday => &self.shapes[2],
        };
        shape[local_hour % 24]
    }

    /// Effective temperature from the hour's and the last 24 hours' mean.
    pub fn effective_temperature(&self, temperature: f64, mean_24h: f64) -> f64 {
        (1.0 - self.demand.inertia) * temperature + self.demand.inertia * mean_24h
    }

    /// Heating and cooling degrees of an effective temperature.
    pub fn degrees(&self, t_eff: f64) -> (f64, f64) {
        (
            (self.demand.heating_base_c - t_eff).max(0.0),
            (t_eff - self.demand.cooling_base_c).max(0.0),
        )
    }

    /// AC output of the PV fleet, MW, for a plane-of-array irradiance and air temperature.
    pub fn pv_output(&self, poa: f64, air_temperature: f64) -> f64 {
        let p = &self.pv;
        if poa <= 0.0 {
            return 0.0;
        }
        let cell = air_temperature + poa * (p.noct_c - 20.0) / 800.0;
        let dc = p.capacity_mwp * poa / 1000.0 * (1.0 + p.temp_coefficient * (cell - 25.0));
        let ac = dc * (1.0 - p.losses) * p.inverter_efficiency;
        ac.clamp(0.0, p.capacity_mwp / p.dc_ac_ratio)
    }

    /// Output of the wind fleet, MW, for a 10 m wind speed.
    ///
    /// ```
    /// use spe_core::{EnergyTwin, Site, SynthConfig};
    /// let twin = EnergyTwin::new(&SynthConfig::default(), &Site::paris()).unwrap();
    /// assert_eq!(twin.wind_output(1.0), 0.0);            // below cut-in at hub height
    /// assert!(twin.wind_output(12.0) > 250.0);           // at rated at hub height
    /// assert_eq!(twin.wind_output(25.0), 0.0);           // past cut-out
    /// ```
    pub fn wind_output(&self, wind_10m: f64) -> f64 {
        let w = &self.wind;
        let v = wind_10m.max(0.0) * self.hub_factor;
        let fraction = if v < w.cut_in_ms || v >= w.cut_out_ms {
            0.0
        } else if v >= w.rated_ms {
            1.0
        } else {
            (v.powi(3) - w.cut_in_ms.powi(3)) / (w.rated_ms.powi(3) - w.cut_in_ms.powi(3))
        };
        w.capacity_mw * w.availability * fraction
    }

    /// Split the residual demand between dispatchable production and imports:
    /// `(other, imports)`, MW.
    pub fn dispatch(&self, demand: f64, solar: f64, wind: f64) -> (f64, f64) {
        let g = &self.grid;
        let residual = demand - solar - wind;
        let must_run = g.other_capacity_mw * g.must_run_share;
        let other = residual.clamp(must_run, g.other_capacity_mw.max(must_run));
        let imports = (residual - other).clamp(0.0, g.import_capacity_mw);
        (other, imports)
    }

    pub(crate) fn cursor(&self) -> TwinCursor<'_> {
        TwinCursor {
            twin: self,
            noise: self.noise.cursor(),
        }
    }

    /// Demand and supply for every hour of `weather`, with its provenance.
    ///
    /// Hours whose inputs are missing give missing outputs: demand needs the
    /// temperature, solar the irradiance and temperature, wind the wind speed,
    /// dispatch all three. The 24-hour mean temperature uses the hours of the
    /// frame available so far, so the first day of a frame has a shorter memory.
    pub fn energy(&self, weather: &WeatherFrame) -> Result<EnergyFrame, SeriesError> {
        let axis = weather.axis();
        let temps = weather.temperature_2m();
        let mut mean = RollingMean::new(24);
        let mut day = DayCache::default();
        let mut cols = EnergyColumns::with_capacity(axis.len());
        let mut cursor = self.cursor();
        for (i, (t, &temperature)) in axis.times().zip(temps).enumerate() {
            let (local_hour, day_type) = day.local(&self.site, t);
            let out = cursor.step(TwinInput {
                unix_s: t.timestamp() as f64,
                local_hour,
                day_type,
                temperature,
                temperature_mean_24h: mean.push(temperature),
                ghi: weather.shortwave_radiation()[i],
                wind_10m: weather.wind_speed_10m()[i],
                sun: None,
            });
            cols.push(out);
        }
        EnergyFrame::new(axis, cols, weather.provenance(), weather.produced_at())
    }
}

impl EnergyColumns {
    pub(crate) fn push(&mut self, out: TwinOutput) {
        self.demand_mw.push(out.demand);
        self.solar_mw.push(out.solar);
        self.wind_mw.push(out.wind);
        self.other_mw.push(out.other);
        self.imports_mw.push(out.imports);
    }
}

pub(crate) struct TwinCursor<'a> {
    twin: &'a EnergyTwin,
    noise: NoiseCursor<'a>,
}

impl TwinCursor<'_> {
    #[inline]
    pub(crate) fn step(&mut self, x: TwinInput) -> TwinOutput {
        let tw = self.twin;
        let demand = match (x.temperature, x.temperature_mean_24h) {
            (Some(t), Some(m)) => {
                let (hdd, cdd) = tw.degrees(tw.effective_temperature(t, m));
                let noise = 1.0 + tw.demand.noise_std * self.noise.at(x.unix_s / 3600.0);
                let d = tw.demand.base_mw * tw.profile(x.local_hour, x.day_type) * noise
                    + tw.demand.heating_mw_per_c * hdd
                    + tw.demand.cooling_mw_per_c * cdd;
                Some(d.max(0.01 * tw.demand.base_mw))
            }
            _ => None,
        };
        let solar = match (x.ghi, x.temperature) {
            (Some(ghi), Some(t)) if ghi > 0.0 => {
                let (sun, phase) = x.sun.unwrap_or_else(|| {
                    let phase = WeatherModel::phase(x.unix_s);
                    (tw.sun.at(x.unix_s - 1800.0, &phase), phase)
                });
                let poa = tw.plane.irradiance(ghi, sun, phase.extraterrestrial());
                Some(tw.pv_output(poa, t))
            }
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        let wind = x.wind_10m.map(|v| tw.wind_output(v));
        let (other, imports) = match (demand, solar, wind) {
            (Some(d), Some(s), Some(w)) => {
                let (o, i) = tw.dispatch(d, s, w);
                (Some(o), Some(i))
            }
            _ => (None, None),
        };
        TwinOutput {
            demand,
            solar,
            wind,
            other,
            imports,
        }
    }
}

/// Mean of the last `n` present values pushed (missing values are skipped
/// but still age out of the window).
///
/// Values are summed in fixed point (2⁻²⁰ ≈ 1e-6 steps), exactly, so the same
/// window of values gives the same bits wherever a run started — a running
/// floating-point sum would carry rounding from earlier values.
pub(crate) struct RollingMean {
    buf: Vec<Option<i64>>,
    pos: usize,
    sum: i64,
    count: usize,
}

const FIXED_SCALE: f64 = (1u64 << 20) as f64;

impl RollingMean {
    pub(crate) fn new(n: usize) -> Self {
        RollingMean {
            buf: vec![None; n.max(1)],
            pos: 0,
            sum: 0,
            count: 0,
        }
    }

    /// Push a value and return the mean of the window, `None` if it holds no value.
    pub(crate) fn push(&mut self, v: Option<f64>) -> Option<f64> {
        if let Some(old) = self.buf[self.pos] {
            self.sum -= old;
            self.count -= 1;
        }
        // Temperatures are bounded (±100 °C), far inside i64 once scaled.
        let q = v.map(|x| (x.clamp(-1e6, 1e6) * FIXED_SCALE).round() as i64);
        self.buf[self.pos] = q;
        if let Some(x) = q {
            self.sum += x;
            self.count += 1;
        }
        self.pos = (self.pos + 1) % self.buf.len();
        (self.count > 0).then(|| self.sum as f64 / FIXED_SCALE / self.count as f64)
    }
}

/// Local hour and day type, with the time-zone lookup done twice a UTC day
/// (at its start and its end; when they agree, the offset holds all day) and
/// the holiday lookup once a local day.
#[derive(Default)]
pub(crate) struct DayCache {
    /// UTC day and its offset in seconds, `None` if the offset changes that day.
    utc_day: Option<(i64, Option<i64>)>,
    /// Local day number and its day type.
    local_day: Option<(i64, DayType)>,
}

impl DayCache {
    /// Local hour and day type at `t`.
    pub(crate) fn local(&mut self, site: &Site, t: DateTime<Utc>) -> (usize, DayType) {
        let ts = t.timestamp();
        let day = ts.div_euclid(86_400);
        let offset = match self.utc_day {
            Some((d, offset)) if d == day => offset,
            _ => {
                let at =
                    |s: i64| DateTime::from_timestamp(s, 0).map(|t| site.utc_offset_seconds(t));
                let (start, end) = (at(day * 86_400), at(day * 86_400 + 86_399));
                let offset = if start == end {
                    start.map(i64::from)
                } else {
                    None
                };
                self.utc_day = Some((day, offset));
                offset
            }
        }
        .unwrap_or_else(|| i64::from(site.utc_offset_seconds(t)));
        let local_s = ts + offset;
        let local_day = local_s.div_euclid(86_400);
        let hour = (local_s.rem_euclid(86_400) / 3600) as usize;
        let day_type = match self.local_day {
            Some((d, ty)) if d == local_day => ty,
            _ => {
                let ty = DateTime::from_timestamp(local_day * 86_400, 0)
                    .map(|d| site.country().day_type(d.date_naive()))
                    .unwrap_or(DayType::Working);
                self.local_day = Some((local_day, ty));
                ty
            }
        };
        (hour, day_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twin() -> EnergyTwin {
        EnergyTwin::new(&SynthConfig::default(), &Site::paris()).unwrap()
    }

    #[test]
    fn profiles_are_normalised() {
        let tw = twin();
        let mean: f64 = (0..24)
            .map(|h| tw.profile(h, DayType::Working))
            .sum::<f64>()
            / 24.0;
        assert!((mean - 1.0).abs() < 1e-12);
        let sun: f64 = (0..24)
            .map(|h| tw.profile(h, DayType::Holiday))
            .sum::<f64>()
            / 24.0;
        assert!((sun - 0.84).abs() < 1e-12);
        // Evening peak above the night trough.
        assert!(tw.profile(19, DayType::Working) > 1.3 * tw.profile(4, DayType::Working));
    }

    #[test]
    fn heating_sensitivity_matches_config() {
        let tw = twin();
        let (h5, _) = tw.degrees(5.0);
        let (h4, _) = tw.degrees(4.0);
        assert_eq!(h4 - h5, 1.0);
        assert_eq!(tw.degrees(18.0), (0.0, 0.0));
        assert_eq!(tw.degrees(25.0), (0.0, 3.0));
    }

    #[test]
    fn pv_derates_with_heat_and_clips_at_ac_rating() {
        let tw = twin();
        assert!(tw.pv_output(800.0, 35.0) < tw.pv_output(800.0, 5.0));
        assert_eq!(tw.pv_output(0.0, 20.0), 0.0);
        assert!((tw.pv_output(1400.0, -20.0) - 400.0 / 1.2).abs() < 1e-9);
    }

    #[test]
    fn dispatch_respects_must_run_and_import_limits() {
        let tw = twin();
        // Low residual: must-run (270 MW) runs anyway, nothing imported.
        assert_eq!(tw.dispatch(300.0, 200.0, 50.0), (270.0, 0.0));
        // High residual: other at capacity, imports capped.
        assert_eq!(tw.dispatch(2_000.0, 0.0, 0.0), (900.0, 600.0));
        assert_eq!(tw.dispatch(1_000.0, 0.0, 0.0), (900.0, 100.0));
    }

    #[test]
    fn day_cache_matches_the_time_zone_across_dst_changes() {
        use chrono::{TimeZone, Timelike};
        let sites = [
            Site::paris(),
            Site::new(
                "Kolkata",
                22.57,
                88.36,
                "Asia/Kolkata",
                crate::Country::None,
            )
            .unwrap(),
            Site::new(
                "Lord Howe",
                -31.55,
                159.08,
                "Australia/Lord_Howe",
                crate::Country::None,
            )
            .unwrap(),
        ];
        for site in &sites {
            let mut cache = DayCache::default();
            let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
            for h in 0..8760 {
                let t = start + chrono::Duration::hours(h);
                let local = site.local(t);
                let expected = (local.hour() as usize, site.country().day_type(local.date()));
                assert_eq!(cache.local(site, t), expected, "{} at {t}", site.name());
            }
        }
    }

    #[test]
    fn rolling_mean_skips_missing() {
        let mut m = RollingMean::new(3);
        assert_eq!(m.push(None), None);
        assert_eq!(m.push(Some(3.0)), Some(3.0));
        assert_eq!(m.push(Some(6.0)), Some(4.5));
        assert_eq!(m.push(Some(9.0)), Some(6.0));
        assert_eq!(m.push(None), Some(7.5));
    }
}
