//! Public holidays and day types, which shape electricity demand.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// A country whose public-holiday calendar SP-E knows.
///
/// Serialized as its ISO 3166-1 alpha-2 code (`"FR"`), or `"none"` for a site
/// whose holidays should be ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub enum Country {
    /// France (metropolitan): 11 national public holidays.
    #[default]
    #[serde(rename = "FR")]
    France,
    /// No holiday calendar: every weekday is a working day.
    #[serde(rename = "none")]
    None,
}

impl Country {
    /// The ISO code (`"FR"`), or `"none"`.
    pub fn code(&self) -> &'static str {
        match self {
            Country::France => "FR",
            Country::None => "none",
        }
    }

    /// Whether `date` is a national public holiday.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use spe_core::Country;
    ///
    /// let d = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    /// assert!(Country::France.is_holiday(d(7, 14)));   // Fête nationale
    /// assert!(Country::France.is_holiday(d(4, 6)));    // Easter Monday 2026
    /// assert!(!Country::France.is_holiday(d(4, 7)));
    /// assert!(!Country::None.is_holiday(d(7, 14)));
    /// ```
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        match self {
            Country::France => is_french_holiday(date),
            Country::None => false,
        }
    }

    /// The kind of day `date` is for electricity demand.
    pub fn day_type(&self, date: NaiveDate) -> DayType {
        if self.is_holiday(date) {
            return DayType::Holiday;
        }
        match date.weekday() {
            Weekday::Sat => DayType::Saturday,
            Weekday::Sun => DayType::Sunday,
            _ => DayType::Working,
        }
    }
}

impl std::str::FromStr for Country {
    type Err = UnknownCountry;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "FR" | "FRA" | "FRANCE" => Ok(Country::France),
            "NONE" | "" => Ok(Country::None),
            _ => Err(UnknownCountry(s.to_owned())),
        }
    }
}

/// A country code SP-E has no holiday calendar for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no holiday calendar for country {0:?}: use \"FR\" or \"none\"")]
pub struct UnknownCountry(pub String);

/// The kind of day, as demand profiles see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DayType {
    /// Monday to Friday, not a holiday.
    Working,
    /// Saturday, not a holiday.
    Saturday,
    /// Sunday.
    Sunday,
    /// A public holiday (demand close to a Sunday's).
    Holiday,
}

/// Easter Sunday (Gregorian), by the anonymous Gregorian algorithm
/// (Meeus/Jones/Butcher). Valid for every Gregorian year.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

fn is_french_holiday(date: NaiveDate) -> bool {
    let fixed = matches!(
        (date.month(), date.day()),
        (1, 1) | (5, 1) | (5, 8) | (7, 14) | (8, 15) | (11, 1) | (11, 11) | (12, 25)
    );
    if fixed {
        return true;
    }
    // Movable feasts: Easter Monday, Ascension Thursday, Whit Monday.
    if !matches!(date.month(), 3..=6) {
        return false;
    }
    let Some(easter) = easter_sunday(date.year()) else {
        return false;
    };
    let offset = (date - easter).num_days();
    matches!(offset, 1 | 39 | 50)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn easter_dates_match_known_years() {
        let known = [
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
        ];
        for (y, m, d) in known {
            assert_eq!(easter_sunday(y), NaiveDate::from_ymd_opt(y, m, d), "{y}");
        }
    }

    #[test]
    fn france_has_eleven_holidays_a_year() {
        for year in 2000..2100 {
            let start = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
            let n = start
                .iter_days()
                .take_while(|d| d.year() == year)
                .filter(|d| Country::France.is_holiday(*d))
                .count();
            // 11 distinct days, except when a movable feast falls on a fixed one
            // (Ascension on 1 or 8 May happens).
            assert!((10..=11).contains(&n), "{year}: {n}");
        }
    }

    #[test]
    fn day_types() {
        let d = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        assert_eq!(Country::France.day_type(d(11, 25)), DayType::Working);
        assert_eq!(Country::France.day_type(d(11, 28)), DayType::Saturday);
        assert_eq!(Country::France.day_type(d(11, 29)), DayType::Sunday);
        assert_eq!(Country::France.day_type(d(5, 14)), DayType::Holiday); // Ascension 2026
        assert_eq!(Country::France.day_type(d(5, 25)), DayType::Holiday); // Whit Monday 2026
    }
}
