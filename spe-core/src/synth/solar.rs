//! Sun position and irradiance.
//!
//! - Sun position: Spencer's (1971) Fourier series for the declination and
//!   the equation of time, then the standard spherical-astronomy formulas for
//!   zenith and azimuth from the hour angle. About 0.1–0.3° from NREL's SPA,
//!   which the tests check against the `solar-positioning` crate; SPA itself
//!   costs ~200 ns a call, more than the whole budget of a generated hour.
//! - Clear-sky global horizontal irradiance: Haurwitz (1945),
//!   `GHI = 1098 · cos z · exp(−0.057 / cos z)` W/m².
//! - Cloud cover: Kasten & Czeplak (1980), `GHI = GHI_clear · (1 − 0.75 · n^3.4)`
//!   with `n` the cloud fraction (0–1).
//! - Diffuse fraction: Erbs, Klein & Duffie (1982), from the clearness index.
//! - Plane of array: the isotropic sky model (Liu & Jordan), ground albedo 0.2.

use std::f64::consts::PI;

use chrono::{DateTime, Utc};

/// Solar constant, W/m².
pub const SOLAR_CONSTANT: f64 = 1361.0;
/// Mean length of a year in days.
pub(crate) const YEAR_DAYS: f64 = 365.2422;
/// 2000-01-01T00:00:00Z as a unix time.
const J2000_JAN1_UNIX: f64 = 946_684_800.0;

/// The sun's position seen from a point on Earth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SunPosition {
    /// Cosine of the zenith angle (negative when the sun is below the horizon).
    pub cos_zenith: f64,
    /// Azimuth in degrees, clockwise from north (0 when the sun is down).
    pub azimuth_deg: f64,
}

impl SunPosition {
    /// Elevation above the horizon, degrees.
    pub fn elevation_deg(&self) -> f64 {
        self.cos_zenith.clamp(-1.0, 1.0).asin().to_degrees()
    }
}

/// The position in the year at an instant: the day angle Γ of Spencer's
/// series and what follows from it. Every seasonal quantity of the generator
/// derives from this one pair of sine and cosine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct YearPhase {
    /// Fractional day of the year (0 = 1 January 00:00 UTC), a continuous
    /// phase that drifts at most ~0.75 day from the calendar in a leap cycle.
    pub doy: f64,
    pub cos_g: f64,
    pub sin_g: f64,
    /// Sine and cosine of the solar declination.
    pub sin_dec: f64,
    pub cos_dec: f64,
    /// Equation of time, hours.
    pub eot_h: f64,
}

impl YearPhase {
    pub(crate) fn at(unix_s: f64) -> Self {
        let doy = wrap((unix_s - J2000_JAN1_UNIX) / 86_400.0, YEAR_DAYS);
        let (s, c) = (2.0 * PI * doy / YEAR_DAYS).sin_cos();
        // Multiple angles without further trigonometry.
        let (c2, s2) = (2.0 * c * c - 1.0, 2.0 * s * c);
        let (c3, s3) = (c * (4.0 * c * c - 3.0), s * (3.0 - 4.0 * s * s));
        let dec = 0.006_918 - 0.399_912 * c + 0.070_257 * s - 0.006_758 * c2 + 0.000_907 * s2
            - 0.002_697 * c3
            + 0.001_48 * s3;
        let eot_min =
            229.18 * (0.000_075 + 0.001_868 * c - 0.032_077 * s - 0.014_615 * c2 - 0.040_849 * s2);
        let (sin_dec, cos_dec) = dec.sin_cos();
        YearPhase {
            doy,
            cos_g: c,
            sin_g: s,
            sin_dec,
            cos_dec,
            eot_h: eot_min / 60.0,
        }
    }

    /// Extraterrestrial normal irradiance (eccentricity correction), W/m².
    #[inline]
    pub(crate) fn extraterrestrial(&self) -> f64 {
        SOLAR_CONSTANT * (1.0 + 0.033 * self.cos_g)
    }

    /// `cos(Γ − φ)` for a phase given by its cosine and sine: a seasonal
    /// cycle peaking where `φ` points.
    #[inline]
    pub(crate) fn seasonal(&self, (cos_p, sin_p): (f64, f64)) -> f64 {
        self.cos_g * cos_p + self.sin_g * sin_p
    }
}

/// The `(cos, sin)` of the phase of day-of-year `day`, for [`YearPhase::seasonal`].
pub(crate) fn phase_of_day(day: f64) -> (f64, f64) {
    let (s, c) = (2.0 * PI * day / YEAR_DAYS).sin_cos();
    (c, s)
}

/// `x` modulo `m` in `[0, m)`, without the libm `fmod` call of
/// `f64::rem_euclid` (a hot spot of the generator). Exact enough for phases.
#[inline]
pub(crate) fn wrap(x: f64, m: f64) -> f64 {
    let r = x - (x / m).floor() * m;
    if r >= m || r < 0.0 { 0.0 } else { r }
}

/// Sun geometry for one latitude and longitude.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SunCalc {
    sin_lat: f64,
    cos_lat: f64,
    tan_lat: f64,
    longitude: f64,
}

impl SunCalc {
    pub(crate) fn new(latitude: f64, longitude: f64) -> Self {
        let (sin_lat, cos_lat) = latitude.to_radians().sin_cos();
        SunCalc {
            sin_lat,
            cos_lat,
            tan_lat: latitude.to_radians().tan(),
            longitude,
        }
    }

    /// The sun at unix time `unix_s`, whose year phase is `phase`.
    #[inline]
    pub(crate) fn at(&self, unix_s: f64, phase: &YearPhase) -> SunPosition {
        self.at_with_hour_angle(unix_s, phase).0
    }

    /// The sun, and the sine and cosine of the hour angle (0 at solar noon).
    #[inline]
    pub(crate) fn at_with_hour_angle(
        &self,
        unix_s: f64,
        phase: &YearPhase,
    ) -> (SunPosition, f64, f64) {
        let solar_time = wrap(unix_s / 3600.0 + self.longitude / 15.0 + phase.eot_h, 24.0);
        let (sin_h, cos_h) = ((solar_time - 12.0) * PI / 12.0).sin_cos();
        let cos_zenith = self.sin_lat * phase.sin_dec + self.cos_lat * phase.cos_dec * cos_h;
        let azimuth_deg = if cos_zenith > 0.0 {
            let south =
                sin_h.atan2(cos_h * self.sin_lat - phase.sin_dec / phase.cos_dec * self.cos_lat);
            wrap(south.to_degrees() + 180.0, 360.0)
        } else {
            0.0
        };
        let sun = SunPosition {
            cos_zenith,
            azimuth_deg,
        };
        (sun, sin_h, cos_h)
    }

    /// Local solar time of sunrise, hours (12 − half the day length),
    /// clamped for polar day and night.
    #[inline]
    pub(crate) fn sunrise_solar_hour(&self, phase: &YearPhase) -> f64 {
        let x = -self.tan_lat * phase.sin_dec / phase.cos_dec;
        12.0 - x.clamp(-1.0, 1.0).acos() * 12.0 / PI
    }
}

/// The sun's position at `t` for a latitude/longitude in degrees.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::sun_position;
///
/// // Paris, summer solstice, solar noon (about 11:51 UTC): elevation ≈ 64.6°.
/// let t = Utc.with_ymd_and_hms(2026, 6, 21, 11, 51, 0).unwrap();
/// let sun = sun_position(t, 48.85, 2.35);
/// assert!((sun.elevation_deg() - 64.6).abs() < 0.3);
/// assert!((sun.azimuth_deg - 180.0).abs() < 2.0);
/// ```
pub fn sun_position(t: DateTime<Utc>, latitude: f64, longitude: f64) -> SunPosition {
    let unix_s = t.timestamp() as f64;
    SunCalc::new(latitude, longitude).at(unix_s, &YearPhase::at(unix_s))
}

/// Extraterrestrial normal irradiance on day-of-year `doy` (0-based), with
/// the simple eccentricity correction, W/m².
pub fn extraterrestrial(doy: f64) -> f64 {
    SOLAR_CONSTANT * (1.0 + 0.033 * (2.0 * PI * doy / YEAR_DAYS).cos())
}

/// Haurwitz clear-sky global horizontal irradiance for a cosine of zenith, W/m²;
/// 0 when the sun is below the horizon.
///
/// ```
/// use spe_core::clear_sky_ghi;
/// assert_eq!(clear_sky_ghi(-0.1), 0.0);
/// let noon = clear_sky_ghi(1.0);
/// assert!((noon - 1037.1).abs() < 1.0);
/// ```
pub fn clear_sky_ghi(cos_zenith: f64) -> f64 {
    if cos_zenith <= 0.0 {
        0.0
    } else {
        1098.0 * cos_zenith * (-0.057 / cos_zenith).exp()
    }
}

/// The fraction of clear-sky irradiance that reaches the ground under a
/// cloud cover in percent (Kasten & Czeplak 1980): 1 when clear, 0.25 overcast.
pub fn cloud_transmittance(cloud_cover_pct: f64) -> f64 {
    let n = (cloud_cover_pct / 100.0).clamp(0.0, 1.0);
    1.0 - 0.75 * n.powf(3.4)
}

/// Diffuse fraction of global irradiance from the clearness index `kt` (Erbs et al. 1982).
pub fn erbs_diffuse_fraction(kt: f64) -> f64 {
    let kt = kt.clamp(0.0, 1.0);
    if kt <= 0.22 {
        1.0 - 0.09 * kt
    } else if kt <= 0.80 {
        0.9511 - 0.1604 * kt + 4.388 * kt.powi(2) - 16.638 * kt.powi(3) + 12.336 * kt.powi(4)
    } else {
        0.165
    }
}

/// Irradiance on a tilted plane (W/m²) from global horizontal irradiance:
/// Erbs decomposition into beam and diffuse, then the isotropic sky model.
///
/// `doy` is the 0-based day of the year (for the extraterrestrial irradiance),
/// `tilt_deg` from horizontal, `azimuth_deg` of the plane clockwise from north
/// (180 = facing south), ground albedo 0.2.
///
/// The beam is at most the extraterrestrial irradiance: a GHI too high
/// for the sun's height counts as diffuse beyond it.
///
/// ```
/// use spe_core::{SunPosition, extraterrestrial, plane_of_array};
/// let noon = SunPosition { cos_zenith: 0.5, azimuth_deg: 180.0 };
/// // A panel tilted towards a low sun catches more than the horizontal.
/// assert!(plane_of_array(400.0, noon, 0.0, 35.0, 180.0) > 400.0);
/// // 300 W/m² with the sun 4° high: not 3,600 W/m² of beam on a wall.
/// let dawn = SunPosition { cos_zenith: 0.07, azimuth_deg: 180.0 };
/// assert!(plane_of_array(300.0, dawn, 0.0, 90.0, 180.0) <= extraterrestrial(0.0) + 300.0);
/// ```
pub fn plane_of_array(
    ghi: f64,
    sun: SunPosition,
    doy: f64,
    tilt_deg: f64,
    azimuth_deg: f64,
) -> f64 {
    Plane::new(tilt_deg, azimuth_deg).irradiance(ghi, sun, extraterrestrial(doy))
}

/// A tilted plane, with its trigonometry computed once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plane {
    cos_tilt: f64,
    sin_tilt: f64,
    azimuth_deg: f64,
}

impl Plane {
    pub(crate) fn new(tilt_deg: f64, azimuth_deg: f64) -> Self {
        let (sin_tilt, cos_tilt) = tilt_deg.to_radians().sin_cos();
        Plane {
            cos_tilt,
            sin_tilt,
            azimuth_deg,
        }
    }

    /// Irradiance on the plane for a GHI, the sun, and the extraterrestrial
    /// normal irradiance `e0` of the day.
    #[inline]
    pub(crate) fn irradiance(&self, ghi: f64, sun: SunPosition, e0: f64) -> f64 {
        if ghi <= 0.0 || sun.cos_zenith <= 0.0 {
            return 0.0;
        }
        // Near the horizon beam decomposition is unstable: treat the light as diffuse.
        let (beam_normal, diffuse) = if sun.cos_zenith < 0.065 {
            (0.0, ghi)
        } else {
            let kt = ghi / (e0 * sun.cos_zenith);
            let diffuse = erbs_diffuse_fraction(kt) * ghi;
            // No beam is stronger than the sun's outside the atmosphere: a
            // measured GHI too high for a low sun (a sensor's error, the
            // hour's mean read at its middle) is taken as diffuse beyond it.
            let beam_normal = ((ghi - diffuse) / sun.cos_zenith).min(e0);
            (beam_normal, ghi - beam_normal * sun.cos_zenith)
        };
        let sin_zenith = (1.0 - sun.cos_zenith * sun.cos_zenith).max(0.0).sqrt();
        let cos_aoi = sun.cos_zenith * self.cos_tilt
            + sin_zenith * self.sin_tilt * (sun.azimuth_deg - self.azimuth_deg).to_radians().cos();
        let beam = beam_normal * cos_aoi.max(0.0);
        let sky = diffuse * (1.0 + self.cos_tilt) / 2.0;
        let ground = ghi * 0.2 * (1.0 - self.cos_tilt) / 2.0;
        (beam + sky + ground).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sun_is_down_at_midnight_and_up_at_noon_in_paris() {
        let midnight = Utc.with_ymd_and_hms(2026, 3, 20, 0, 0, 0).unwrap();
        let noon = Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap();
        assert!(sun_position(midnight, 48.85, 2.35).cos_zenith < 0.0);
        let s = sun_position(noon, 48.85, 2.35);
        // Equinox: elevation ≈ 90 − 48.85 ≈ 41°, sun due south.
        assert!((s.elevation_deg() - 41.1).abs() < 1.0, "{s:?}");
        assert!((s.azimuth_deg - 180.0).abs() < 5.0, "{s:?}");
    }

    #[test]
    fn transmittance_bounds() {
        assert_eq!(cloud_transmittance(0.0), 1.0);
        assert!((cloud_transmittance(100.0) - 0.25).abs() < 1e-12);
        assert!(cloud_transmittance(50.0) < 1.0 && cloud_transmittance(50.0) > 0.9);
    }

    #[test]
    fn plane_of_array_gains_in_winter_for_a_south_tilted_panel() {
        // Paris, winter noon: a 35° south-facing panel sees more than horizontal.
        let t = Utc.with_ymd_and_hms(2026, 12, 21, 12, 0, 0).unwrap();
        let sun = sun_position(t, 48.85, 2.35);
        let ghi = clear_sky_ghi(sun.cos_zenith);
        let poa = plane_of_array(ghi, sun, 355.0, 35.0, 180.0);
        assert!(poa > ghi * 1.3, "poa {poa} ghi {ghi}");
        assert_eq!(plane_of_array(0.0, sun, 355.0, 35.0, 180.0), 0.0);
    }

    #[test]
    fn sunrise_is_earlier_in_summer() {
        let day = |m, d| {
            YearPhase::at(
                Utc.with_ymd_and_hms(2026, m, d, 12, 0, 0)
                    .unwrap()
                    .timestamp() as f64,
            )
        };
        let paris = SunCalc::new(48.85, 2.35);
        let summer = paris.sunrise_solar_hour(&day(6, 21));
        let winter = paris.sunrise_solar_hour(&day(12, 21));
        assert!((summer - 4.0).abs() < 0.3, "{summer}");
        assert!((winter - 8.0).abs() < 0.3, "{winter}");
        assert_eq!(SunCalc::new(80.0, 0.0).sunrise_solar_hour(&day(6, 21)), 0.0); // polar day
    }

    proptest::proptest! {
        /// The fast formulas agree with NREL's SPA (from `solar-positioning`).
        #[test]
        fn agrees_with_spa(unix_s in 1_262_304_000i64..4_102_444_800, lat in -80.0..80.0f64, lon in -180.0..180.0f64) {
            use solar_positioning::{Location, SolarPositions, time::JulianDate};
            let t = Utc.timestamp_opt(unix_s, 0).unwrap();
            let ours = sun_position(t, lat, lon);
            let jd = JulianDate::new(2_440_587.5 + unix_s as f64 / 86_400.0, 69.0).unwrap();
            let spa = SolarPositions::new().at_from_julian(jd, Location { latitude: lat, longitude: lon }, 0.0, None).unwrap();
            let zenith = ours.cos_zenith.clamp(-1.0, 1.0).acos().to_degrees();
            proptest::prop_assert!((zenith - spa.zenith_angle()).abs() < 0.5, "zenith {} vs SPA {}", zenith, spa.zenith_angle());
            if ours.cos_zenith > 0.0 && spa.zenith_angle() > 5.0 {
                let d = (ours.azimuth_deg - spa.azimuth()).rem_euclid(360.0);
                let d = d.min(360.0 - d);
                proptest::prop_assert!(d < 1.5, "azimuth {} vs SPA {}", ours.azimuth_deg, spa.azimuth());
            }
        }
    }
}
