//! Weather and energy frames: columns on one hourly axis, with their provenance.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::provenance::Provenance;
use crate::series::{HourlySeries, SeriesError, TimeAxis, check_finite};

/// A column of hourly values, `None` where missing.
pub type Column = Vec<Option<f64>>;

/// The weather variables every source provides, named as Open-Meteo names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WeatherVariable {
    /// Air temperature at 2 m, °C.
    #[serde(rename = "temperature_2m")]
    Temperature2m,
    /// Global horizontal irradiance, mean over the preceding hour, W/m².
    ShortwaveRadiation,
    /// Total cloud cover, %.
    CloudCover,
    /// Wind speed at 10 m, m/s.
    #[serde(rename = "wind_speed_10m")]
    WindSpeed10m,
}

impl WeatherVariable {
    /// All core variables, in column order.
    pub const ALL: [WeatherVariable; 4] = [
        WeatherVariable::Temperature2m,
        WeatherVariable::ShortwaveRadiation,
        WeatherVariable::CloudCover,
        WeatherVariable::WindSpeed10m,
    ];

    /// Open-Meteo's name for the variable.
    pub const fn name(&self) -> &'static str {
        match self {
            WeatherVariable::Temperature2m => "temperature_2m",
            WeatherVariable::ShortwaveRadiation => "shortwave_radiation",
            WeatherVariable::CloudCover => "cloud_cover",
            WeatherVariable::WindSpeed10m => "wind_speed_10m",
        }
    }

    /// The unit SP-E stores the variable in (as Open-Meteo spells it).
    pub fn unit(&self) -> &'static str {
        match self {
            WeatherVariable::Temperature2m => "°C",
            WeatherVariable::ShortwaveRadiation => "W/m²",
            WeatherVariable::CloudCover => "%",
            WeatherVariable::WindSpeed10m => "m/s",
        }
    }

    /// The physically plausible range; values outside it are an error, not data.
    ///
    /// Temperature: the records on Earth are -89.2 °C and 56.7 °C. Irradiance:
    /// the solar constant is 1361 W/m², surface values above ~1400 W/m² do not
    /// occur. Wind: the highest 10 m gust recorded is 113 m/s.
    pub fn plausible_range(&self) -> (f64, f64) {
        match self {
            WeatherVariable::Temperature2m => (-95.0, 65.0),
            WeatherVariable::ShortwaveRadiation => (0.0, 1500.0),
            WeatherVariable::CloudCover => (0.0, 100.0),
            WeatherVariable::WindSpeed10m => (0.0, 120.0),
        }
    }

    /// Radiation from this value up to 0 W/m² is rounding noise of weather
    /// models (Open-Meteo writes `-0.4` at night, in its JSON and its CSV):
    /// [`denoise`](Self::denoise) makes it 0.
    pub const RADIATION_NOISE_FLOOR: f64 = -5.0;

    /// `value` with rounding noise removed: radiation from
    /// [`RADIATION_NOISE_FLOOR`](Self::RADIATION_NOISE_FLOOR) up to 0 is 0;
    /// anything else is unchanged (and may still be outside the
    /// [`plausible_range`](Self::plausible_range)).
    ///
    /// ```
    /// use spe_core::WeatherVariable as V;
    /// assert_eq!(V::ShortwaveRadiation.denoise(-0.4), 0.0);
    /// assert_eq!(V::ShortwaveRadiation.denoise(-6.0), -6.0);
    /// assert_eq!(V::Temperature2m.denoise(-0.4), -0.4);
    /// ```
    pub fn denoise(&self, value: f64) -> f64 {
        match self {
            WeatherVariable::ShortwaveRadiation
                if (Self::RADIATION_NOISE_FLOOR..=0.0).contains(&value) =>
            {
                0.0
            }
            _ => value,
        }
    }

    /// The variable with Open-Meteo's name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        WeatherVariable::ALL.into_iter().find(|v| v.name() == name)
    }
}

fn check_column(
    name: &str,
    values: &[Option<f64>],
    len: usize,
    range: Option<(f64, f64, &'static str)>,
) -> Result<(), SeriesError> {
    if values.len() != len {
        return Err(SeriesError::LengthMismatch {
            column: name.to_owned(),
            expected: len,
            got: values.len(),
        });
    }
    check_finite(name, values)?;
    if let Some((min, max, unit)) = range {
        if let Some((index, value)) = values
            .iter()
            .enumerate()
            .find_map(|(i, v)| v.filter(|x| *x < min || *x > max).map(|x| (i, x)))
        {
            return Err(SeriesError::OutOfRange {
                column: name.to_owned(),
                index,
                value,
                min,
                max,
                unit,
            });
        }
    }
    Ok(())
}

/// The columns of a [`WeatherFrame`], for building one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeatherColumns {
    /// Air temperature at 2 m, °C.
    pub temperature_2m: Column,
    /// Global horizontal irradiance (mean of the preceding hour), W/m².
    pub shortwave_radiation: Column,
    /// Total cloud cover, %.
    pub cloud_cover: Column,
    /// Wind speed at 10 m, m/s.
    pub wind_speed_10m: Column,
    /// Further variables, by name (e.g. `relative_humidity_2m`); only checked to be finite.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Column>,
}

impl WeatherColumns {
    /// Empty columns with room for `n` hours.
    pub fn with_capacity(n: usize) -> Self {
        WeatherColumns {
            temperature_2m: Vec::with_capacity(n),
            shortwave_radiation: Vec::with_capacity(n),
            cloud_cover: Vec::with_capacity(n),
            wind_speed_10m: Vec::with_capacity(n),
            extra: BTreeMap::new(),
        }
    }

    /// The column of a core variable.
    pub fn get(&self, var: WeatherVariable) -> &Column {
        match var {
            WeatherVariable::Temperature2m => &self.temperature_2m,
            WeatherVariable::ShortwaveRadiation => &self.shortwave_radiation,
            WeatherVariable::CloudCover => &self.cloud_cover,
            WeatherVariable::WindSpeed10m => &self.wind_speed_10m,
        }
    }

    /// The column of a core variable, mutably.
    pub fn get_mut(&mut self, var: WeatherVariable) -> &mut Column {
        match var {
            WeatherVariable::Temperature2m => &mut self.temperature_2m,
            WeatherVariable::ShortwaveRadiation => &mut self.shortwave_radiation,
            WeatherVariable::CloudCover => &mut self.cloud_cover,
            WeatherVariable::WindSpeed10m => &mut self.wind_speed_10m,
        }
    }
}

/// Hourly weather for a site: the four core variables plus optional extras,
/// with the provenance of the data and when it was produced.
///
/// Construction checks that every column matches the axis, holds no NaN or
/// infinity, and stays in its [plausible range](WeatherVariable::plausible_range).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{Provenance, TimeAxis, WeatherColumns, WeatherFrame};
///
/// let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
/// let axis = TimeAxis::new(start, 2).unwrap();
/// let cols = WeatherColumns {
///     temperature_2m: vec![Some(14.2), Some(13.8)],
///     shortwave_radiation: vec![Some(0.0), Some(0.0)],
///     cloud_cover: vec![Some(40.0), None],
///     wind_speed_10m: vec![Some(3.1), Some(2.9)],
///     ..Default::default()
/// };
/// let frame = WeatherFrame::new(axis, cols, Provenance::Live, start).unwrap();
/// assert_eq!(frame.len(), 2);
/// assert_eq!(frame.cloud_cover()[1], None);
///
/// // 900 °C is not weather:
/// let mut bad = frame.columns().clone();
/// bad.temperature_2m[0] = Some(900.0);
/// assert!(WeatherFrame::new(axis, bad, Provenance::Live, start).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawWeatherFrame")]
pub struct WeatherFrame {
    axis: TimeAxis,
    columns: WeatherColumns,
    provenance: Provenance,
    produced_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct RawWeatherFrame {
    axis: TimeAxis,
    columns: WeatherColumns,
    provenance: Provenance,
    produced_at: DateTime<Utc>,
}

impl TryFrom<RawWeatherFrame> for WeatherFrame {
    type Error = SeriesError;
    fn try_from(r: RawWeatherFrame) -> Result<Self, Self::Error> {
        WeatherFrame::new(r.axis, r.columns, r.provenance, r.produced_at)
    }
}

impl WeatherFrame {
    /// A validated frame.
    pub fn new(
        axis: TimeAxis,
        columns: WeatherColumns,
        provenance: Provenance,
        produced_at: DateTime<Utc>,
    ) -> Result<Self, SeriesError> {
        for var in WeatherVariable::ALL {
            let (min, max) = var.plausible_range();
            check_column(
                var.name(),
                columns.get(var),
                axis.len(),
                Some((min, max, var.unit())),
            )?;
        }
        for (name, col) in &columns.extra {
            check_column(name, col, axis.len(), None)?;
        }
        Ok(WeatherFrame {
            axis,
            columns,
            provenance,
            produced_at,
        })
    }

    /// The time axis.
    pub fn axis(&self) -> TimeAxis {
        self.axis
    }

    /// Number of hours.
    pub fn len(&self) -> usize {
        self.axis.len()
    }

    /// Whether the frame has no hour.
    pub fn is_empty(&self) -> bool {
        self.axis.is_empty()
    }

    /// All columns.
    pub fn columns(&self) -> &WeatherColumns {
        &self.columns
    }

    /// Air temperature at 2 m, °C.
    pub fn temperature_2m(&self) -> &[Option<f64>] {
        &self.columns.temperature_2m
    }

    /// Global horizontal irradiance, W/m².
    pub fn shortwave_radiation(&self) -> &[Option<f64>] {
        &self.columns.shortwave_radiation
    }

    /// Cloud cover, %.
    pub fn cloud_cover(&self) -> &[Option<f64>] {
        &self.columns.cloud_cover
    }

    /// Wind speed at 10 m, m/s.
    pub fn wind_speed_10m(&self) -> &[Option<f64>] {
        &self.columns.wind_speed_10m
    }

    /// An extra column by name.
    pub fn extra(&self, name: &str) -> Option<&[Option<f64>]> {
        self.columns.extra.get(name).map(Vec::as_slice)
    }

    /// One core variable as a standalone series.
    pub fn series(&self, var: WeatherVariable) -> HourlySeries {
        // The frame's columns were validated: finite and aligned with the axis.
        HourlySeries::new(self.axis.start(), self.columns.get(var).clone())
            .unwrap_or_else(|_| unreachable!("frame columns are validated"))
    }

    /// Where the data comes from.
    pub fn provenance(&self) -> Provenance {
        self.provenance
    }

    /// When the data was fetched or generated.
    pub fn produced_at(&self) -> DateTime<Utc> {
        self.produced_at
    }

    /// How old the data is at `now` (zero if `now` is before `produced_at`).
    pub fn age(&self, now: DateTime<Utc>) -> Duration {
        now.signed_duration_since(self.produced_at)
            .to_std()
            .unwrap_or_default()
    }

    /// The same data with another provenance (e.g. `cached` when served from a cache).
    pub fn with_provenance(mut self, provenance: Provenance) -> Self {
        self.provenance = provenance;
        self
    }

    /// Consume the frame into its columns.
    pub fn into_columns(self) -> WeatherColumns {
        self.columns
    }
}

/// The sources of supply in an [`EnergyFrame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SupplySource {
    /// Photovoltaic production.
    Solar,
    /// Wind production.
    Wind,
    /// Dispatchable and baseload local production (nuclear, hydro, thermal).
    Other,
    /// Imports over the interconnections.
    Imports,
}

impl SupplySource {
    /// All sources, in column order.
    pub const ALL: [SupplySource; 4] = [
        SupplySource::Solar,
        SupplySource::Wind,
        SupplySource::Other,
        SupplySource::Imports,
    ];

    /// Column name: `solar_mw`, `wind_mw`, `other_mw`, `imports_mw`.
    pub fn column(&self) -> &'static str {
        match self {
            SupplySource::Solar => "solar_mw",
            SupplySource::Wind => "wind_mw",
            SupplySource::Other => "other_mw",
            SupplySource::Imports => "imports_mw",
        }
    }

    /// Whether the source is renewable.
    pub fn is_renewable(&self) -> bool {
        matches!(self, SupplySource::Solar | SupplySource::Wind)
    }
}

/// The columns of an [`EnergyFrame`], all in MW (hourly means).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnergyColumns {
    /// Demand (consumption), MW.
    pub demand_mw: Column,
    /// Solar production, MW.
    pub solar_mw: Column,
    /// Wind production, MW.
    pub wind_mw: Column,
    /// Other local production (baseload, dispatchable), MW.
    pub other_mw: Column,
    /// Imports, MW.
    pub imports_mw: Column,
}

impl EnergyColumns {
    /// Empty columns with room for `n` hours.
    pub fn with_capacity(n: usize) -> Self {
        EnergyColumns {
            demand_mw: Vec::with_capacity(n),
            solar_mw: Vec::with_capacity(n),
            wind_mw: Vec::with_capacity(n),
            other_mw: Vec::with_capacity(n),
            imports_mw: Vec::with_capacity(n),
        }
    }

    /// The column of a supply source.
    pub fn supply(&self, source: SupplySource) -> &Column {
        match source {
            SupplySource::Solar => &self.solar_mw,
            SupplySource::Wind => &self.wind_mw,
            SupplySource::Other => &self.other_mw,
            SupplySource::Imports => &self.imports_mw,
        }
    }

    fn named(&self) -> [(&'static str, &Column); 5] {
        [
            ("demand_mw", &self.demand_mw),
            ("solar_mw", &self.solar_mw),
            ("wind_mw", &self.wind_mw),
            ("other_mw", &self.other_mw),
            ("imports_mw", &self.imports_mw),
        ]
    }
}

/// Hourly demand and supply by source for a site, in MW, with provenance.
///
/// Every column is finite and non-negative where present. Supply is the sum
/// of all sources (imports included); the balance is supply minus demand.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{EnergyColumns, EnergyFrame, Provenance, TimeAxis};
///
/// let t = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
/// let cols = EnergyColumns {
///     demand_mw: vec![Some(800.0)],
///     solar_mw: vec![Some(150.0)],
///     wind_mw: vec![Some(50.0)],
///     other_mw: vec![Some(500.0)],
///     imports_mw: vec![Some(120.0)],
/// };
/// let frame = EnergyFrame::new(TimeAxis::new(t, 1).unwrap(), cols, Provenance::Synthetic, t).unwrap();
/// assert_eq!(frame.supply_mw(0), Some(820.0));
/// assert_eq!(frame.balance_mw(0), Some(20.0));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawEnergyFrame")]
pub struct EnergyFrame {
    axis: TimeAxis,
    columns: EnergyColumns,
    provenance: Provenance,
    produced_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct RawEnergyFrame {
    axis: TimeAxis,
    columns: EnergyColumns,
    provenance: Provenance,
    produced_at: DateTime<Utc>,
}

impl TryFrom<RawEnergyFrame> for EnergyFrame {
    type Error = SeriesError;
    fn try_from(r: RawEnergyFrame) -> Result<Self, Self::Error> {
        EnergyFrame::new(r.axis, r.columns, r.provenance, r.produced_at)
    }
}

impl EnergyFrame {
    /// A validated frame: columns match the axis, finite, non-negative.
    pub fn new(
        axis: TimeAxis,
        columns: EnergyColumns,
        provenance: Provenance,
        produced_at: DateTime<Utc>,
    ) -> Result<Self, SeriesError> {
        for (name, col) in columns.named() {
            check_column(name, col, axis.len(), Some((0.0, f64::MAX, "MW")))?;
        }
        Ok(EnergyFrame {
            axis,
            columns,
            provenance,
            produced_at,
        })
    }

    /// The time axis.
    pub fn axis(&self) -> TimeAxis {
        self.axis
    }

    /// Number of hours.
    pub fn len(&self) -> usize {
        self.axis.len()
    }

    /// Whether the frame has no hour.
    pub fn is_empty(&self) -> bool {
        self.axis.is_empty()
    }

    /// All columns.
    pub fn columns(&self) -> &EnergyColumns {
        &self.columns
    }

    /// Demand, MW.
    pub fn demand_mw(&self) -> &[Option<f64>] {
        &self.columns.demand_mw
    }

    /// One supply source, MW.
    pub fn supply_of(&self, source: SupplySource) -> &[Option<f64>] {
        self.columns.supply(source)
    }

    /// Total supply at hour `i` (all sources, imports included); `None` if any is missing.
    pub fn supply_mw(&self, i: usize) -> Option<f64> {
        SupplySource::ALL
            .iter()
            .map(|s| self.columns.supply(*s).get(i).copied().flatten())
            .sum()
    }

    /// Supply minus demand at hour `i`.
    pub fn balance_mw(&self, i: usize) -> Option<f64> {
        Some(self.supply_mw(i)? - self.columns.demand_mw.get(i).copied().flatten()?)
    }

    /// Where the data comes from (that of the weather it was computed from).
    pub fn provenance(&self) -> Provenance {
        self.provenance
    }

    /// When the underlying data was produced.
    pub fn produced_at(&self) -> DateTime<Utc> {
        self.produced_at
    }

    /// How old the data is at `now`.
    pub fn age(&self, now: DateTime<Utc>) -> Duration {
        now.signed_duration_since(self.produced_at)
            .to_std()
            .unwrap_or_default()
    }

    /// The same data with another provenance.
    pub fn with_provenance(mut self, provenance: Provenance) -> Self {
        self.provenance = provenance;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn axis(n: usize) -> TimeAxis {
        TimeAxis::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(), n).unwrap()
    }

    fn cols(n: usize) -> WeatherColumns {
        WeatherColumns {
            temperature_2m: vec![Some(5.0); n],
            shortwave_radiation: vec![Some(0.0); n],
            cloud_cover: vec![Some(50.0); n],
            wind_speed_10m: vec![None; n],
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn weather_frame_checks_lengths_ranges_and_finiteness() {
        let a = axis(3);
        assert!(WeatherFrame::new(a, cols(3), Provenance::Live, a.start()).is_ok());
        let err = WeatherFrame::new(a, cols(2), Provenance::Live, a.start()).unwrap_err();
        assert!(matches!(
            err,
            SeriesError::LengthMismatch {
                expected: 3,
                got: 2,
                ..
            }
        ));
        let mut c = cols(3);
        c.cloud_cover[2] = Some(101.0);
        let err = WeatherFrame::new(a, c, Provenance::Live, a.start()).unwrap_err();
        assert!(
            matches!(err, SeriesError::OutOfRange { index: 2, .. }),
            "{err}"
        );
        let mut c = cols(3);
        c.extra.insert(
            "relative_humidity_2m".into(),
            vec![Some(1.0), Some(f64::NAN), None],
        );
        assert!(matches!(
            WeatherFrame::new(a, c, Provenance::Live, a.start()),
            Err(SeriesError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn weather_frame_json_round_trip_revalidates() {
        let a = axis(2);
        let f = WeatherFrame::new(a, cols(2), Provenance::Synthetic, a.start()).unwrap();
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<WeatherFrame>(&json).unwrap(), f);
        let bad = json.replacen("50.0", "500.0", 1);
        assert!(serde_json::from_str::<WeatherFrame>(&bad).is_err());
    }

    #[test]
    fn energy_frame_rejects_negative_production_and_sums_supply() {
        let a = axis(2);
        let mut c = EnergyColumns {
            demand_mw: vec![Some(10.0), Some(10.0)],
            solar_mw: vec![Some(1.0), None],
            wind_mw: vec![Some(2.0), Some(2.0)],
            other_mw: vec![Some(3.0), Some(3.0)],
            imports_mw: vec![Some(4.0), Some(4.0)],
        };
        let f = EnergyFrame::new(a, c.clone(), Provenance::Live, a.start()).unwrap();
        assert_eq!(f.supply_mw(0), Some(10.0));
        assert_eq!(f.balance_mw(0), Some(0.0));
        assert_eq!(f.supply_mw(1), None);
        assert_eq!(f.supply_mw(7), None);
        c.wind_mw[0] = Some(-1.0);
        assert!(EnergyFrame::new(a, c, Provenance::Live, a.start()).is_err());
    }
}
