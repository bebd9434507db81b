//! The generator's parameters, in one place, with documented defaults.

use serde::{Deserialize, Serialize};

/// Errors from an invalid [`SynthConfig`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A parameter is out of its valid range.
    #[error("synthetic config: {name} = {value} is invalid: {expected}")]
    Invalid {
        /// Parameter path, e.g. `pv.capacity_mwp`.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What is expected.
        expected: &'static str,
    },
}

/// Every parameter of the synthetic generator and the energy twin.
///
/// The defaults describe a mid-sized urban site around Paris: a temperate
/// oceanic climate (Paris-Montsouris normals) and a grid of about 800 MW of
/// temperature-independent demand. `Generator::calibrate`
/// fits the climate and the demand's temperature sensitivity to a real site.
///
/// ```
/// use spe_core::SynthConfig;
///
/// let mut config = SynthConfig::default();
/// config.seed = 7;
/// config.demand.base_mw = 2_000.0;
/// config.validate().unwrap();
/// let json = serde_json::to_string(&config).unwrap();
/// assert_eq!(serde_json::from_str::<SynthConfig>(&json).unwrap(), config);
/// // Missing fields take their defaults; a misspelt one is an error.
/// assert!(serde_json::from_str::<SynthConfig>(r#"{"demand": {"base_mw": 900}}"#).is_ok());
/// let err = serde_json::from_str::<SynthConfig>(r#"{"climate": {"temp_mean_cc": 30}}"#);
/// assert!(err.unwrap_err().to_string().contains("unknown field `temp_mean_cc`"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// Seed of every random stream; with the site, it fixes every value.
    pub seed: u64,
    /// Temperature, cloud and wind climate.
    pub climate: ClimateParams,
    /// Electricity demand.
    pub demand: DemandParams,
    /// Photovoltaic fleet.
    pub pv: PvParams,
    /// Wind fleet.
    pub wind: WindParams,
    /// Dispatchable production and interconnections.
    pub grid: GridParams,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0x5E_2026,
            climate: ClimateParams::default(),
            demand: DemandParams::default(),
            pv: PvParams::default(),
            wind: WindParams::default(),
            grid: GridParams::default(),
        }
    }
}

/// Climate of the site (northern-hemisphere phase; the generator shifts the
/// seasons by half a year for sites south of the equator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClimateParams {
    /// Annual mean temperature, °C. Paris-Montsouris 1991–2020: 12.8.
    pub temp_mean_c: f64,
    /// Half the difference between the warmest and coldest month means, °C (Paris: ≈ 8).
    pub temp_annual_amplitude_c: f64,
    /// Day of year of the warmest point of the annual cycle (Paris: ≈ 200, mid-late July).
    pub temp_peak_day: f64,
    /// Half the mean daily temperature range under a clear sky, °C (Paris: ≈ 5).
    /// Days shorter than 6 hours get a share of it in proportion to their
    /// length, and polar night none (no sun, no afternoon warming).
    pub temp_diurnal_amplitude_c: f64,
    /// Solar hour of the daily maximum (mid-afternoon: ≈ 14.5); the minimum is at sunrise.
    pub temp_max_solar_hour: f64,
    /// Standard deviation of the autocorrelated weather anomaly, °C (Paris: ≈ 2.8).
    pub temp_noise_std_c: f64,
    /// Period in hours of the slowest anomaly octave (synoptic persistence, ≈ 4 days).
    pub temp_noise_period_h: f64,
    /// Mean wind speed at 10 m, m/s (Paris region: ≈ 3.8).
    pub wind_mean_ms: f64,
    /// Weibull shape of the 10 m wind speed (k ≈ 2, the Rayleigh case, in mid-latitudes).
    pub wind_weibull_k: f64,
    /// Relative seasonal swing of the mean wind (windier in winter): 0.2 = ±20 %.
    pub wind_seasonal_swing: f64,
    /// Cloudiness bias in standard deviations (positive = cloudier); Paris ≈ 0.2.
    pub cloud_bias: f64,
    /// Seasonal swing of cloudiness in standard deviations (cloudier in winter).
    pub cloud_seasonal_swing: f64,
}

impl Default for ClimateParams {
    fn default() -> Self {
        ClimateParams {
            temp_mean_c: 12.8,
            temp_annual_amplitude_c: 8.0,
            temp_peak_day: 200.0,
            temp_diurnal_amplitude_c: 5.0,
            temp_max_solar_hour: 14.5,
            temp_noise_std_c: 2.8,
            temp_noise_period_h: 96.0,
            wind_mean_ms: 3.8,
            wind_weibull_k: 2.0,
            wind_seasonal_swing: 0.2,
            cloud_bias: 0.2,
            cloud_seasonal_swing: 0.4,
        }
    }
}

/// Electricity demand: a temperature-independent profile plus heating and cooling.
///
/// Demand at hour `t` is
/// `base_mw · profile(local hour, day type) · (1 + noise) + heating_mw_per_c · HDD + cooling_mw_per_c · CDD`
/// with `HDD = max(0, heating_base_c − T_eff)`, `CDD = max(0, T_eff − cooling_base_c)`
/// and `T_eff` the effective temperature (see [`DemandParams::inertia`]).
///
/// The sensitivities scale France's: RTE reports about 2.4 GW more demand
/// per °C colder in winter over roughly 45 GW of temperature-independent
/// demand, i.e. 5.3 % of the base per °C; in summer about 0.5 GW per °C
/// warmer, 1.1 %. For the default 800 MW base that is 43 and 9 MW/°C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemandParams {
    /// Mean temperature-independent demand on a working day, MW.
    pub base_mw: f64,
    /// Extra demand per heating degree, MW/°C.
    pub heating_mw_per_c: f64,
    /// Extra demand per cooling degree, MW/°C.
    pub cooling_mw_per_c: f64,
    /// Heating threshold, °C (RTE uses about 15 °C).
    pub heating_base_c: f64,
    /// Cooling threshold, °C.
    pub cooling_base_c: f64,
    /// Weight of the last 24 hours' mean temperature in `T_eff` (building
    /// inertia): `T_eff = (1 − inertia) · T + inertia · mean₂₄(T)`.
    pub inertia: f64,
    /// Level of Saturday demand relative to a working day.
    pub saturday_factor: f64,
    /// Level of Sunday and public-holiday demand relative to a working day.
    pub sunday_factor: f64,
    /// Standard deviation of the autocorrelated relative noise (0.015 = 1.5 %).
    pub noise_std: f64,
}

impl Default for DemandParams {
    fn default() -> Self {
        DemandParams {
            base_mw: 800.0,
            heating_mw_per_c: 43.0,
            cooling_mw_per_c: 9.0,
            heating_base_c: 15.0,
            cooling_base_c: 22.0,
            inertia: 0.7,
            saturday_factor: 0.90,
            sunday_factor: 0.84,
            noise_std: 0.015,
        }
    }
}

/// Photovoltaic fleet, modelled after NREL's PVWatts v5.
///
/// `P_dc = capacity · POA/1000 · (1 + γ (T_cell − 25))`, with the cell
/// temperature from the NOCT model `T_cell = T_air + POA · (NOCT − 20)/800`;
/// `P_ac = min(P_dc · (1 − losses) · η_inverter, capacity / dc_ac_ratio)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PvParams {
    /// DC nameplate capacity, MWp.
    pub capacity_mwp: f64,
    /// Panel tilt from horizontal, degrees.
    pub tilt_deg: f64,
    /// Panel azimuth clockwise from north, degrees (180 = south). For sites
    /// south of the equator the generator mirrors it (0 = north).
    pub azimuth_deg: f64,
    /// Power temperature coefficient γ, 1/°C (PVWatts standard module: −0.0037).
    pub temp_coefficient: f64,
    /// Nominal operating cell temperature, °C (typical: 45).
    pub noct_c: f64,
    /// System losses (soiling, wiring, mismatch, availability; PVWatts: 0.14).
    pub losses: f64,
    /// Inverter efficiency (PVWatts nominal: 0.96).
    pub inverter_efficiency: f64,
    /// DC/AC ratio; the AC output clips at `capacity / dc_ac_ratio` (PVWatts: 1.2).
    pub dc_ac_ratio: f64,
}

impl Default for PvParams {
    fn default() -> Self {
        PvParams {
            capacity_mwp: 400.0,
            tilt_deg: 30.0,
            azimuth_deg: 180.0,
            temp_coefficient: -0.0037,
            noct_c: 45.0,
            losses: 0.14,
            inverter_efficiency: 0.96,
            dc_ac_ratio: 1.2,
        }
    }
}

/// Wind fleet: a power curve at hub height.
///
/// The 10 m wind is extrapolated to hub height with the power law
/// `v_hub = v₁₀ · (hub/10)^α`; output rises with the cube of the speed from
/// cut-in to rated, stays at capacity to cut-out, and is zero beyond.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindParams {
    /// Installed capacity, MW.
    pub capacity_mw: f64,
    /// Hub height, m.
    pub hub_height_m: f64,
    /// Wind shear exponent α: 1/7 ≈ 0.14 over open flat land, ≈ 0.2 over the
    /// farmland and hedges where onshore farms stand (the default).
    pub shear_exponent: f64,
    /// Cut-in speed, m/s.
    pub cut_in_ms: f64,
    /// Rated speed, m/s.
    pub rated_ms: f64,
    /// Cut-out speed, m/s.
    pub cut_out_ms: f64,
    /// Availability and array losses (0.95 = 5 % lost).
    pub availability: f64,
}

impl Default for WindParams {
    fn default() -> Self {
        WindParams {
            capacity_mw: 300.0,
            hub_height_m: 100.0,
            shear_exponent: 0.2,
            cut_in_ms: 3.0,
            rated_ms: 13.0,
            cut_out_ms: 25.0,
            availability: 0.95,
        }
    }
}

/// Dispatchable local production and interconnections.
///
/// Local dispatchable plants ("other") run at least at their must-run level
/// and follow the residual demand (demand − solar − wind) up to their
/// capacity; imports cover what remains, up to the interconnection capacity.
/// What they cannot cover is a shortfall (negative balance); must-run output
/// above the residual is a surplus (positive balance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GridParams {
    /// Dispatchable local capacity (nuclear, hydro, thermal), MW.
    pub other_capacity_mw: f64,
    /// Must-run share of that capacity (0–1).
    pub must_run_share: f64,
    /// Interconnection (import) capacity, MW.
    pub import_capacity_mw: f64,
}

impl Default for GridParams {
    fn default() -> Self {
        GridParams {
            other_capacity_mw: 900.0,
            must_run_share: 0.3,
            import_capacity_mw: 600.0,
        }
    }
}

/// The largest daily temperature amplitude, °C (a 30 °C daily range).
pub(crate) const MAX_DIURNAL_AMPLITUDE_C: f64 = 15.0;
/// The largest temperature noise, °C.
pub(crate) const MAX_NOISE_STD_C: f64 = 8.0;

fn check(
    name: &'static str,
    value: f64,
    ok: bool,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if value.is_finite() && ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            name,
            value,
            expected,
        })
    }
}

impl SynthConfig {
    /// Check every parameter; the generator refuses an invalid config.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.climate;
        check(
            "climate.temp_mean_c",
            c.temp_mean_c,
            (-60.0..=40.0).contains(&c.temp_mean_c),
            "-60..=40 °C",
        )?;
        check(
            "climate.temp_annual_amplitude_c",
            c.temp_annual_amplitude_c,
            (0.0..=30.0).contains(&c.temp_annual_amplitude_c),
            "0..=30 °C",
        )?;
        check(
            "climate.temp_peak_day",
            c.temp_peak_day,
            (0.0..=366.0).contains(&c.temp_peak_day),
            "0..=366",
        )?;
        check(
            "climate.temp_diurnal_amplitude_c",
            c.temp_diurnal_amplitude_c,
            (0.0..=MAX_DIURNAL_AMPLITUDE_C).contains(&c.temp_diurnal_amplitude_c),
            "0..=15 °C",
        )?;
        check(
            "climate.temp_max_solar_hour",
            c.temp_max_solar_hour,
            (12.0..=18.0).contains(&c.temp_max_solar_hour),
            "12..=18 h",
        )?;
        check(
            "climate.temp_noise_std_c",
            c.temp_noise_std_c,
            (0.0..=MAX_NOISE_STD_C).contains(&c.temp_noise_std_c),
            "0..=8 °C",
        )?;
        check(
            "climate.temp_noise_period_h",
            c.temp_noise_period_h,
            (6.0..=2000.0).contains(&c.temp_noise_period_h),
            "6..=2000 h",
        )?;
        check(
            "climate.wind_mean_ms",
            c.wind_mean_ms,
            (0.3..=15.0).contains(&c.wind_mean_ms),
            "0.3..=15 m/s",
        )?;
        check(
            "climate.wind_weibull_k",
            c.wind_weibull_k,
            (1.0..=5.0).contains(&c.wind_weibull_k),
            "1..=5",
        )?;
        check(
            "climate.wind_seasonal_swing",
            c.wind_seasonal_swing,
            (0.0..=0.8).contains(&c.wind_seasonal_swing),
            "0..=0.8",
        )?;
        check(
            "climate.cloud_bias",
            c.cloud_bias,
            (-3.0..=3.0).contains(&c.cloud_bias),
            "-3..=3",
        )?;
        check(
            "climate.cloud_seasonal_swing",
            c.cloud_seasonal_swing,
            (0.0..=2.0).contains(&c.cloud_seasonal_swing),
            "0..=2",
        )?;
        let d = &self.demand;
        check(
            "demand.base_mw",
            d.base_mw,
            d.base_mw > 0.0 && d.base_mw <= 1e6,
            "> 0 and ≤ 1e6 MW",
        )?;
        check(
            "demand.heating_mw_per_c",
            d.heating_mw_per_c,
            d.heating_mw_per_c >= 0.0 && d.heating_mw_per_c <= d.base_mw,
            "0..=base_mw",
        )?;
        check(
            "demand.cooling_mw_per_c",
            d.cooling_mw_per_c,
            d.cooling_mw_per_c >= 0.0 && d.cooling_mw_per_c <= d.base_mw,
            "0..=base_mw",
        )?;
        check(
            "demand.heating_base_c",
            d.heating_base_c,
            (-10.0..=25.0).contains(&d.heating_base_c),
            "-10..=25 °C",
        )?;
        check(
            "demand.cooling_base_c",
            d.cooling_base_c,
            d.cooling_base_c >= d.heating_base_c && d.cooling_base_c <= 40.0,
            "heating_base_c..=40 °C",
        )?;
        check(
            "demand.inertia",
            d.inertia,
            (0.0..=1.0).contains(&d.inertia),
            "0..=1",
        )?;
        check(
            "demand.saturday_factor",
            d.saturday_factor,
            (0.3..=1.5).contains(&d.saturday_factor),
            "0.3..=1.5",
        )?;
        check(
            "demand.sunday_factor",
            d.sunday_factor,
            (0.3..=1.5).contains(&d.sunday_factor),
            "0.3..=1.5",
        )?;
        check(
            "demand.noise_std",
            d.noise_std,
            (0.0..=0.1).contains(&d.noise_std),
            "0..=0.1",
        )?;
        let p = &self.pv;
        check(
            "pv.capacity_mwp",
            p.capacity_mwp,
            (0.0..=1e6).contains(&p.capacity_mwp),
            "0..=1e6 MWp",
        )?;
        check(
            "pv.tilt_deg",
            p.tilt_deg,
            (0.0..=90.0).contains(&p.tilt_deg),
            "0..=90°",
        )?;
        check(
            "pv.azimuth_deg",
            p.azimuth_deg,
            (0.0..=360.0).contains(&p.azimuth_deg),
            "0..=360°",
        )?;
        check(
            "pv.temp_coefficient",
            p.temp_coefficient,
            (-0.02..=0.0).contains(&p.temp_coefficient),
            "-0.02..=0 per °C",
        )?;
        check(
            "pv.noct_c",
            p.noct_c,
            (20.0..=70.0).contains(&p.noct_c),
            "20..=70 °C",
        )?;
        check(
            "pv.losses",
            p.losses,
            (0.0..0.9).contains(&p.losses),
            "0..0.9",
        )?;
        check(
            "pv.inverter_efficiency",
            p.inverter_efficiency,
            p.inverter_efficiency > 0.5 && p.inverter_efficiency <= 1.0,
            "0.5..=1",
        )?;
        check(
            "pv.dc_ac_ratio",
            p.dc_ac_ratio,
            (0.8..=2.0).contains(&p.dc_ac_ratio),
            "0.8..=2",
        )?;
        let w = &self.wind;
        check(
            "wind.capacity_mw",
            w.capacity_mw,
            (0.0..=1e6).contains(&w.capacity_mw),
            "0..=1e6 MW",
        )?;
        check(
            "wind.hub_height_m",
            w.hub_height_m,
            (10.0..=250.0).contains(&w.hub_height_m),
            "10..=250 m",
        )?;
        check(
            "wind.shear_exponent",
            w.shear_exponent,
            (0.0..=0.6).contains(&w.shear_exponent),
            "0..=0.6",
        )?;
        // Each speed finite first: a NaN would otherwise fail the
        // comparison of the field before it, and be blamed on that one.
        for (name, value) in [
            ("wind.cut_in_ms", w.cut_in_ms),
            ("wind.rated_ms", w.rated_ms),
            ("wind.cut_out_ms", w.cut_out_ms),
        ] {
            check(name, value, value.is_finite(), "a finite speed, m/s")?;
        }
        check(
            "wind.cut_in_ms",
            w.cut_in_ms,
            w.cut_in_ms > 0.0 && w.cut_in_ms < w.rated_ms,
            "0 < cut_in < rated",
        )?;
        check(
            "wind.rated_ms",
            w.rated_ms,
            w.rated_ms < w.cut_out_ms,
            "cut_in < rated < cut_out",
        )?;
        check(
            "wind.cut_out_ms",
            w.cut_out_ms,
            w.cut_out_ms <= 50.0,
            "rated < cut_out ≤ 50 m/s",
        )?;
        check(
            "wind.availability",
            w.availability,
            (0.0..=1.0).contains(&w.availability),
            "0..=1",
        )?;
        let g = &self.grid;
        check(
            "grid.other_capacity_mw",
            g.other_capacity_mw,
            (0.0..=1e6).contains(&g.other_capacity_mw),
            "0..=1e6 MW",
        )?;
        check(
            "grid.must_run_share",
            g.must_run_share,
            (0.0..=1.0).contains(&g.must_run_share),
            "0..=1",
        )?;
        check(
            "grid.import_capacity_mw",
            g.import_capacity_mw,
            (0.0..=1e6).contains(&g.import_capacity_mw),
            "0..=1e6 MW",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        SynthConfig::default().validate().unwrap();
        let mut c = SynthConfig::default();
        c.wind.rated_ms = 30.0;
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("wind.rated_ms"), "{err}");
        let mut c = SynthConfig::default();
        c.demand.base_mw = f64::NAN;
        assert!(c.validate().is_err());
        // A NaN speed is named, not the field compared with it.
        for (field, set) in [
            (
                "wind.cut_out_ms",
                (|c: &mut SynthConfig| c.wind.cut_out_ms = f64::NAN) as fn(&mut SynthConfig),
            ),
            ("wind.rated_ms", |c: &mut SynthConfig| {
                c.wind.rated_ms = f64::NAN
            }),
            ("wind.cut_in_ms", |c: &mut SynthConfig| {
                c.wind.cut_in_ms = f64::NAN
            }),
        ] {
            let mut c = SynthConfig::default();
            set(&mut c);
            let err = c.validate().unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn partial_json_takes_defaults() {
        let c: SynthConfig =
            serde_json::from_str(r#"{"seed": 3, "demand": {"base_mw": 50.0}}"#).unwrap();
        assert_eq!(c.seed, 3);
        assert_eq!(c.demand.base_mw, 50.0);
        assert_eq!(c.demand.heating_base_c, 15.0);
        assert_eq!(c.pv, PvParams::default());
    }
}
