//! The site a dashboard watches: where it is, its time zone, its holidays.

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::{Country, DayType};

/// Errors from building a [`Site`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SiteError {
    /// Latitude outside -90..=90 degrees or not finite.
    #[error("latitude {0} is outside -90..=90 degrees")]
    Latitude(f64),
    /// Longitude outside -180..=180 degrees or not finite.
    #[error("longitude {0} is outside -180..=180 degrees")]
    Longitude(f64),
    /// Not an IANA time zone name.
    #[error("unknown time zone {0:?}: use an IANA name such as \"Europe/Paris\"")]
    Timezone(String),
    /// Empty site name.
    #[error("site name is empty")]
    EmptyName,
}

/// A site: name, position, IANA time zone and holiday calendar.
///
/// ```
/// use spe_core::{Country, Site};
///
/// let site = Site::new("Lyon", 45.76, 4.84, "Europe/Paris", Country::France).unwrap();
/// assert_eq!(site.timezone().name(), "Europe/Paris");
/// assert!(Site::new("Nowhere", 91.0, 0.0, "UTC", Country::None).is_err());
/// assert_eq!(Site::paris().name(), "Paris");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawSite")]
pub struct Site {
    name: String,
    latitude: f64,
    longitude: f64,
    timezone: Tz,
    country: Country,
}

#[derive(Deserialize)]
struct RawSite {
    name: String,
    latitude: f64,
    longitude: f64,
    timezone: String,
    #[serde(default)]
    country: Country,
}

impl TryFrom<RawSite> for Site {
    type Error = SiteError;
    fn try_from(r: RawSite) -> Result<Self, Self::Error> {
        Site::new(r.name, r.latitude, r.longitude, &r.timezone, r.country)
    }
}

impl Site {
    /// A validated site.
    pub fn new(
        name: impl Into<String>,
        latitude: f64,
        longitude: f64,
        timezone: &str,
        country: Country,
    ) -> Result<Self, SiteError> {
        let name = name.into();
        if name.trim().is_empty() {
            return Err(SiteError::EmptyName);
        }
        if !(latitude.is_finite() && (-90.0..=90.0).contains(&latitude)) {
            return Err(SiteError::Latitude(latitude));
        }
        if !(longitude.is_finite() && (-180.0..=180.0).contains(&longitude)) {
            return Err(SiteError::Longitude(longitude));
        }
        let timezone: Tz = timezone
            .parse()
            .map_err(|_| SiteError::Timezone(timezone.to_owned()))?;
        Ok(Site {
            name,
            latitude,
            longitude,
            timezone,
            country,
        })
    }

    /// The default site: Paris (48.85 N, 2.35 E), Europe/Paris, France.
    pub fn paris() -> Self {
        Site {
            name: "Paris".into(),
            latitude: 48.85,
            longitude: 2.35,
            timezone: chrono_tz::Europe::Paris,
            country: Country::France,
        }
    }

    /// The site's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Latitude in degrees north.
    pub fn latitude(&self) -> f64 {
        self.latitude
    }

    /// Longitude in degrees east.
    pub fn longitude(&self) -> f64 {
        self.longitude
    }

    /// The great-circle distance in km from the site to a point (haversine,
    /// on a sphere of the Earth's mean radius, 6371 km).
    ///
    /// ```
    /// use spe_core::Site;
    /// let paris = Site::paris();
    /// assert_eq!(paris.distance_km(48.85, 2.35), 0.0);
    /// // Lyon is about 390 km away; one degree of latitude about 111 km.
    /// assert!((paris.distance_km(45.76, 4.84) - 391.0).abs() < 5.0);
    /// assert!((paris.distance_km(49.85, 2.35) - 111.2).abs() < 0.1);
    /// ```
    pub fn distance_km(&self, latitude: f64, longitude: f64) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6371.0088;
        let (phi1, phi2) = (self.latitude.to_radians(), latitude.to_radians());
        let dphi = phi2 - phi1;
        let dlambda = (longitude - self.longitude).to_radians();
        let h =
            (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
    }

    /// The IANA time zone.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The holiday calendar's country.
    pub fn country(&self) -> Country {
        self.country
    }

    /// Local wall-clock time at `t`.
    pub fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        self.timezone
            .from_utc_datetime(&t.naive_utc())
            .naive_local()
    }

    /// The UTC offset in seconds at `t`.
    pub fn utc_offset_seconds(&self, t: DateTime<Utc>) -> i32 {
        self.timezone
            .offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc()
    }

    /// The day type (working day, Saturday, Sunday, holiday) at `t`, in local time.
    pub fn day_type(&self, t: DateTime<Utc>) -> DayType {
        self.country.day_type(self.local(t).date())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn validates_coordinates_and_zone() {
        assert_eq!(
            Site::new("x", 0.0, 181.0, "UTC", Country::None),
            Err(SiteError::Longitude(181.0))
        );
        assert!(matches!(
            Site::new("x", f64::NAN, 0.0, "UTC", Country::None),
            Err(SiteError::Latitude(_))
        ));
        assert_eq!(
            Site::new("x", 0.0, 0.0, "Mars/Olympus", Country::None),
            Err(SiteError::Timezone("Mars/Olympus".into()))
        );
        assert_eq!(
            Site::new(" ", 0.0, 0.0, "UTC", Country::None),
            Err(SiteError::EmptyName)
        );
    }

    #[test]
    fn deserializing_validates_too() {
        let ok = r#"{"name":"Paris","latitude":48.85,"longitude":2.35,"timezone":"Europe/Paris","country":"FR"}"#;
        assert_eq!(serde_json::from_str::<Site>(ok).unwrap(), Site::paris());
        let bad = ok.replace("48.85", "148.85");
        assert!(serde_json::from_str::<Site>(&bad).is_err());
        let json = serde_json::to_string(&Site::paris()).unwrap();
        assert_eq!(serde_json::from_str::<Site>(&json).unwrap(), Site::paris());
    }

    #[test]
    fn local_time_follows_daylight_saving() {
        let site = Site::paris();
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap();
        assert_eq!(site.local(winter).hour(), 13);
        assert_eq!(site.local(summer).hour(), 14);
        assert_eq!(site.utc_offset_seconds(summer), 7200);
    }
}
