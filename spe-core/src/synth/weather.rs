//! The synthetic weather model: temperature, cloud cover, irradiance, wind.
//!
//! Each variable at an hour is a pure function of (seed, site, hour):
//!
//! - **Cloud cover** — a smooth Gaussian process (value-noise octaves of 60,
//!   15 and 4 h), shifted by a cloudiness bias and a seasonal term (cloudier in
//!   winter), mapped linearly onto 0–100 % between −0.8 and +0.55 standard
//!   deviations, which gives the U-shaped distribution of observed cloud
//!   cover (many clear and many overcast hours).
//! - **Irradiance** — Haurwitz clear-sky GHI at the middle of the preceding
//!   hour (Open-Meteo's `shortwave_radiation` is the preceding hour's mean),
//!   reduced by cloud cover (Kasten & Czeplak). Zero at night, never above
//!   clear sky.
//! - **Temperature** — annual cosine cycle + diurnal cycle + anomaly. The
//!   diurnal cycle is the piecewise cosine of the WAVE model (minimum at
//!   sunrise, maximum at `temp_max_solar_hour`, cooling through the night);
//!   its amplitude is larger in summer and damped by clouds. The anomaly is
//!   autocorrelated noise (octaves of `temp_noise_period_h`, a quarter of it,
//!   and 6 h).
//! - **Wind** — a smooth Gaussian process (40, 10 and 3 h) transformed through
//!   the normal CDF and the inverse Weibull CDF, so the speed follows a
//!   Weibull distribution (shape `wind_weibull_k`) with persistence; the scale
//!   follows a seasonal (windier in winter) and diurnal (afternoon mixing) cycle.

use std::f64::consts::PI;

use super::config::ClimateParams;
use super::noise::{NoiseCursor, SmoothNoise, derive_seed, gamma, normal_cdf};
use super::solar::{
    SunCalc, SunPosition, YEAR_DAYS, YearPhase, clear_sky_ghi, cloud_transmittance, phase_of_day,
    wrap,
};

const COS_30: f64 = 0.866_025_403_784_438_6;
const SIN_30: f64 = 0.5;

/// Local mean solar time in hours (0–24).
#[inline]
pub(crate) fn solar_hour(unix_s: f64, longitude: f64) -> f64 {
    wrap(unix_s / 3600.0 + longitude / 15.0, 24.0)
}

/// One hour of synthetic weather.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WeatherSample {
    pub temperature_2m: f64,
    pub shortwave_radiation: f64,
    pub cloud_cover: f64,
    pub wind_speed_10m: f64,
    /// The sun at the middle of the preceding hour.
    pub sun: SunPosition,
    /// The year phase at the middle of the preceding hour.
    pub phase: YearPhase,
}

/// The weather model for one (seed, site).
#[derive(Debug, Clone)]
pub(crate) struct WeatherModel {
    climate: ClimateParams,
    longitude: f64,
    sun: SunCalc,
    /// Phase of the warmest day (shifted half a year south of the equator).
    temp_peak: (f64, f64),
    /// Phase of the cloudiest and windiest day (mid-January in the north).
    winter_peak: (f64, f64),
    temp_noise: SmoothNoise,
    cloud_noise: SmoothNoise,
    wind_noise: SmoothNoise,
    /// Γ(1 + 1/k), turning a mean wind speed into a Weibull scale.
    weibull_mean_factor: f64,
}

/// Days since the epoch of a unix time.
#[inline]
pub(crate) fn day_index(unix_s: f64) -> i64 {
    (unix_s / 86_400.0).floor() as i64
}

pub(crate) struct WeatherCursor<'a> {
    model: &'a WeatherModel,
    /// Sunrise of the last UTC day seen: `(day, sunrise)`.
    sunrise: (i64, Sunrise),
    temp: NoiseCursor<'a>,
    cloud: NoiseCursor<'a>,
    wind: NoiseCursor<'a>,
}

/// The seed of a site: the generator's seed mixed with the site's coordinates.
pub(crate) fn site_seed(seed: u64, latitude: f64, longitude: f64) -> u64 {
    derive_seed(derive_seed(seed, latitude.to_bits()), longitude.to_bits())
}

/// Days at least this long (hours) get the whole daily temperature cycle;
/// shorter ones a share of it in proportion, down to none in polar night
/// (no sun, no afternoon warming). Six hours leaves every site below about
/// 60° of latitude untouched all year.
const FULL_CYCLE_DAY_LENGTH_H: f64 = 6.0;

/// A day's sunrise, as the daily temperature cycle uses it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sunrise {
    /// Solar hour of sunrise, within the WAVE model's bounds.
    pub(crate) solar_hour: f64,
    /// Share of the daily cycle's amplitude, in [0, 1]: the day's length
    /// over [`FULL_CYCLE_DAY_LENGTH_H`], at most 1.
    pub(crate) daylight: f64,
}

impl Default for Sunrise {
    fn default() -> Self {
        Sunrise {
            solar_hour: 6.0,
            daylight: 1.0,
        }
    }
}

impl WeatherModel {
    pub(crate) fn new(climate: &ClimateParams, seed: u64, latitude: f64, longitude: f64) -> Self {
        let s = site_seed(seed, latitude, longitude);
        let p = climate.temp_noise_period_h;
        let shift = if latitude < 0.0 { YEAR_DAYS / 2.0 } else { 0.0 };
        WeatherModel {
            climate: climate.clone(),
            longitude,
            sun: SunCalc::new(latitude, longitude),
            temp_peak: phase_of_day(climate.temp_peak_day + shift),
            winter_peak: phase_of_day(15.0 + shift),
            temp_noise: SmoothNoise::new(
                derive_seed(s, 11),
                &[(p, 1.0), (p / 4.0, 0.5), (6.0, 0.2)],
            ),
            cloud_noise: SmoothNoise::new(
                derive_seed(s, 12),
                &[(60.0, 1.0), (15.0, 0.6), (4.0, 0.3)],
            ),
            wind_noise: SmoothNoise::new(
                derive_seed(s, 13),
                &[(40.0, 1.0), (10.0, 0.5), (3.0, 0.25)],
            ),
            weibull_mean_factor: gamma(1.0 + 1.0 / climate.wind_weibull_k),
        }
    }

    pub(crate) fn cursor(&self) -> WeatherCursor<'_> {
        WeatherCursor {
            model: self,
            sunrise: (i64::MIN, Sunrise::default()),
            temp: self.temp_noise.cursor(),
            cloud: self.cloud_noise.cursor(),
            wind: self.wind_noise.cursor(),
        }
    }

    /// The year phase used for hour `unix_s`: that of the middle of the
    /// preceding hour, as for the irradiance.
    #[inline]
    pub(crate) fn phase(unix_s: f64) -> YearPhase {
        YearPhase::at(unix_s - 1800.0)
    }

    /// The annual cycle: a cosine in [-1, 1] peaking on the warmest day.
    #[inline]
    pub(crate) fn annual(&self, phase: &YearPhase) -> f64 {
        phase.seasonal(self.temp_peak)
    }

    /// The diurnal term, °C: WAVE shape (−1 at sunrise, +1 at
    /// `temp_max_solar_hour`) × an amplitude larger in summer and damped by clouds.
    #[inline]
    pub(crate) fn diurnal(&self, unix_s: f64, phase: &YearPhase, cloud_cover: f64) -> f64 {
        let sunrise = self.sunrise(day_index(unix_s));
        self.diurnal_with_sunrise(unix_s, phase, cloud_cover, sunrise)
    }

    /// The sunrise of UTC day `day` (days since the epoch), taken at that
    /// day's noon: its solar hour kept within the WAVE model's bounds, and
    /// how much of a daily cycle the sun drives (see [`Sunrise`]).
    pub(crate) fn sunrise(&self, day: i64) -> Sunrise {
        let noon = YearPhase::at(day as f64 * 86_400.0 + 43_200.0);
        let raw = self.sun.sunrise_solar_hour(&noon);
        let day_length_h = 2.0 * (12.0 - raw);
        Sunrise {
            solar_hour: raw.clamp(1.0, self.climate.temp_max_solar_hour - 2.0),
            daylight: (day_length_h / FULL_CYCLE_DAY_LENGTH_H).clamp(0.0, 1.0),
        }
    }

    #[inline]
    fn diurnal_with_sunrise(
        &self,
        unix_s: f64,
        phase: &YearPhase,
        cloud_cover: f64,
        sunrise: Sunrise,
    ) -> f64 {
        let c = &self.climate;
        let Sunrise {
            solar_hour: sunrise,
            daylight,
        } = sunrise;
        let solar_h = solar_hour(unix_s, self.longitude);
        let t_max = c.temp_max_solar_hour;
        let shape = if solar_h >= sunrise && solar_h <= t_max {
            -(PI * (solar_h - sunrise) / (t_max - sunrise)).cos()
        } else {
            let since = wrap(solar_h - t_max, 24.0);
            let span = 24.0 - (t_max - sunrise);
            (PI * since / span).cos()
        };
        let amplitude = c.temp_diurnal_amplitude_c
            * (0.8 + 0.2 * self.annual(phase))
            * (1.0 - 0.6 * cloud_cover / 100.0)
            * daylight;
        amplitude * shape
    }
}

impl WeatherCursor<'_> {
    /// The weather at unix time `unix_s` (on the hour, or :30 for half-hour zones).
    #[inline]
    pub(crate) fn sample(&mut self, unix_s: f64) -> WeatherSample {
        let m = self.model;
        let c = &m.climate;
        let hour = unix_s / 3600.0;
        let phase = WeatherModel::phase(unix_s);
        let winter = phase.seasonal(m.winter_peak);

        // Cloud cover, %.
        let z = self.cloud.at(hour) + c.cloud_bias + c.cloud_seasonal_swing * winter;
        let cloud_cover = (100.0 * (z + 0.8) / 1.35).clamp(0.0, 100.0);

        // Irradiance: mean of the preceding hour, taken at its middle.
        let (sun, sin_h, cos_h) = m.sun.at_with_hour_angle(unix_s - 1800.0, &phase);
        let clear = clear_sky_ghi(sun.cos_zenith);
        let shortwave_radiation = if clear > 0.0 {
            clear * cloud_transmittance(cloud_cover)
        } else {
            0.0
        };

        // Temperature.
        let day = day_index(unix_s);
        if self.sunrise.0 != day {
            self.sunrise = (day, m.sunrise(day));
        }
        let temperature_2m = (c.temp_mean_c
            + c.temp_annual_amplitude_c * m.annual(&phase)
            + m.diurnal_with_sunrise(unix_s, &phase, cloud_cover, self.sunrise.1)
            + c.temp_noise_std_c * self.temp.at(hour))
        .clamp(-90.0, 60.0);

        // Wind: Gaussian → uniform → Weibull.
        let u = normal_cdf(self.wind.at(hour)).clamp(1e-12, 1.0 - 1e-12);
        let seasonal = 1.0 + c.wind_seasonal_swing * winter;
        // Afternoon mixing: cos(H − 30°) of the hour angle H at the middle of
        // the preceding hour peaks at about 14:30 solar time.
        let diurnal = 1.0 + 0.15 * (cos_h * COS_30 + sin_h * SIN_30);
        let scale = c.wind_mean_ms * seasonal * diurnal / m.weibull_mean_factor;
        let e = -(1.0 - u).ln();
        let weibull = if c.wind_weibull_k == 2.0 {
            e.sqrt()
        } else {
            e.powf(1.0 / c.wind_weibull_k)
        };
        let wind_speed_10m = (scale * weibull).clamp(0.0, 60.0);

        WeatherSample {
            temperature_2m,
            shortwave_radiation,
            cloud_cover,
            wind_speed_10m,
            sun,
            phase,
        }
    }
}
