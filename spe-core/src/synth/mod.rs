//! The synthetic generator: physically grounded weather and energy for a
//! site, deterministic for (seed, site, hour).
//!
//! Estimation mode shows these values when live data is unavailable, so they
//! must be plausible for the site and stable: generating hours 0..100 and then
//! 50..150 gives identical values on the overlap, and a restarted server shows
//! the same estimate. See [`weather`](self) for the weather model, [`EnergyTwin`]
//! for demand and supply, [`SynthConfig`] for every parameter, and
//! [`Generator::calibrate`] to fit the climate and demand to a real site.

mod calibrate;
mod config;
mod energy;
pub(crate) mod noise;
mod solar;
mod weather;

#[cfg(test)]
mod tests;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use calibrate::{
    CalibrationError, CalibrationReport, DemandFit, MIN_CALIBRATION_HOURS, MIN_DEMAND_R_SQUARED,
    TemperatureFit,
};
pub use config::{
    ClimateParams, ConfigError, DemandParams, GridParams, PvParams, SynthConfig, WindParams,
};
pub use energy::EnergyTwin;
pub use solar::{
    SOLAR_CONSTANT, SunPosition, clear_sky_ghi, cloud_transmittance, erbs_diffuse_fraction,
    extraterrestrial, plane_of_array, sun_position,
};

use crate::frame::{EnergyColumns, EnergyFrame, WeatherColumns, WeatherFrame};
use crate::provenance::Provenance;
use crate::series::{HOUR, TimeAxis};
use crate::site::Site;
use crate::source::{DataSource, SourceError, Window};
use energy::{DayCache, RollingMean, TwinInput};
use weather::WeatherModel;

/// Synthetic weather and energy for a site, as one pair of frames.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticFrames {
    /// Weather (provenance `synthetic`).
    pub weather: WeatherFrame,
    /// Demand and supply computed from that weather by the energy twin.
    pub energy: EnergyFrame,
}

/// The synthetic generator.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{Generator, Provenance, Site, TimeAxis};
///
/// let generator = Generator::with_seed(7);
/// let site = Site::paris();
/// let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let year = generator.generate(&site, TimeAxis::new(start, 8760).unwrap(), start);
/// assert_eq!(year.weather.provenance(), Provenance::Synthetic);
/// assert_eq!(year.energy.len(), 8760);
///
/// // Deterministic across windows: a later window repeats the overlap exactly.
/// let later = generator.generate(&site, TimeAxis::new(start + chrono::Duration::hours(50), 100).unwrap(), start);
/// assert_eq!(later.weather.temperature_2m()[0], year.weather.temperature_2m()[50]);
/// assert_eq!(later.energy.demand_mw()[0], year.energy.demand_mw()[50]);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Generator {
    config: SynthConfig,
}

/// Hours of weather generated before a window so the energy twin's 24-hour
/// memory is full at the window's first hour.
const LOOKBACK_HOURS: usize = 23;

impl Generator {
    /// A generator with the given parameters, checked.
    pub fn new(config: SynthConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Generator { config })
    }

    /// A generator with default parameters and the given seed.
    pub fn with_seed(seed: u64) -> Self {
        Generator {
            config: SynthConfig {
                seed,
                ..SynthConfig::default()
            },
        }
    }

    /// The parameters.
    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    /// The energy twin of `site` with this generator's parameters.
    pub fn twin(&self, site: &Site) -> EnergyTwin {
        // The config was validated when the generator was built.
        EnergyTwin::new(&self.config, site).unwrap_or_else(|_| unreachable!("validated config"))
    }

    /// Clear-sky irradiance (W/m²) for the hour ending at `t` at `site`: the
    /// ceiling of the generated `shortwave_radiation` at `t`.
    pub fn clear_sky_at(&self, site: &Site, t: DateTime<Utc>) -> f64 {
        clear_sky_ghi(
            sun_position(
                t - chrono::Duration::minutes(30),
                site.latitude(),
                site.longitude(),
            )
            .cos_zenith,
        )
    }

    fn model(&self, site: &Site) -> WeatherModel {
        WeatherModel::new(
            &self.config.climate,
            self.config.seed,
            site.latitude(),
            site.longitude(),
        )
    }

    /// Synthetic weather for `site` over `axis`.
    pub fn weather(&self, site: &Site, axis: TimeAxis, produced_at: DateTime<Utc>) -> WeatherFrame {
        let model = self.model(site);
        let mut cursor = model.cursor();
        let mut cols = WeatherColumns::with_capacity(axis.len());
        let start = axis.start().timestamp() as f64;
        for i in 0..axis.len() {
            let w = cursor.sample(start + 3600.0 * i as f64);
            cols.temperature_2m.push(Some(w.temperature_2m));
            cols.shortwave_radiation.push(Some(w.shortwave_radiation));
            cols.cloud_cover.push(Some(w.cloud_cover));
            cols.wind_speed_10m.push(Some(w.wind_speed_10m));
        }
        WeatherFrame::new(axis, cols, Provenance::Synthetic, produced_at)
            .unwrap_or_else(|e| unreachable!("the weather model stays in range: {e}"))
    }

    /// Synthetic weather and the energy twin's demand and supply over `axis`.
    ///
    /// Weather for the 23 hours before the window is generated too (and
    /// dropped), so the twin's 24-hour temperature memory does not depend on
    /// where the window starts.
    pub fn generate(
        &self,
        site: &Site,
        axis: TimeAxis,
        produced_at: DateTime<Utc>,
    ) -> SyntheticFrames {
        let model = self.model(site);
        let twin = self.twin(site);
        let mut weather = model.cursor();
        let mut energy = twin.cursor();
        let mut mean = RollingMean::new(24);
        let mut days = DayCache::default();
        let mut wcols = WeatherColumns::with_capacity(axis.len());
        let mut ecols = EnergyColumns::with_capacity(axis.len());
        // The 24 h mean needs the hours before the axis (there are none
        // before chrono's first date).
        let lookback = if axis
            .start()
            .checked_sub_signed(HOUR * LOOKBACK_HOURS as i32)
            .is_some()
        {
            LOOKBACK_HOURS
        } else {
            0
        };
        let first = axis.start() - HOUR * lookback as i32;
        let first_s = first.timestamp() as f64;
        for i in 0..axis.len() + lookback {
            let unix_s = first_s + 3600.0 * i as f64;
            let w = weather.sample(unix_s);
            let mean_24h = mean.push(Some(w.temperature_2m));
            if i < lookback {
                continue;
            }
            let t = first + HOUR * i as i32;
            let (local_hour, day_type) = days.local(site, t);
            let out = energy.step(TwinInput {
                unix_s,
                local_hour,
                day_type,
                temperature: Some(w.temperature_2m),
                temperature_mean_24h: mean_24h,
                ghi: Some(w.shortwave_radiation),
                wind_10m: Some(w.wind_speed_10m),
                sun: Some((w.sun, w.phase)),
            });
            wcols.temperature_2m.push(Some(w.temperature_2m));
            wcols.shortwave_radiation.push(Some(w.shortwave_radiation));
            wcols.cloud_cover.push(Some(w.cloud_cover));
            wcols.wind_speed_10m.push(Some(w.wind_speed_10m));
            ecols.push(out);
        }
        let weather = WeatherFrame::new(axis, wcols, Provenance::Synthetic, produced_at)
            .unwrap_or_else(|e| unreachable!("the weather model stays in range: {e}"));
        let energy = EnergyFrame::new(axis, ecols, Provenance::Synthetic, produced_at)
            .unwrap_or_else(|e| {
                unreachable!("the energy models stay finite and non-negative: {e}")
            });
        SyntheticFrames { weather, energy }
    }
}

#[async_trait]
impl DataSource for Generator {
    fn name(&self) -> &str {
        "synthetic"
    }

    async fn fetch(&self, site: &Site, window: &Window) -> Result<WeatherFrame, SourceError> {
        let axis = window.axis(site)?;
        Ok(self.weather(site, axis, window.now()))
    }
}
