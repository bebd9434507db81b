//! Frames as JSON objects of parallel arrays.
//!
//! A series is `{"time": [...], "<column>": [...], ..., "provenance": "...",
//! "age_s": n}`: `time` holds RFC 3339 UTC instants (`2026-01-15T10:00:00Z`),
//! each column one value per instant (`null` where missing), `provenance` the
//! bare name of where the data comes from (`live`, `synthetic`, `cached`,
//! `fallback`) and `age_s` how old the data is, in whole seconds. The
//! weather also says the unit of each column in `units`
//! (`{"temperature_2m": "°C", "shortwave_radiation": "W/m²", "cloud_cover":
//! "%", "wind_speed_10m": "m/s"}`); energy columns are in MW, as their names
//! say.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use spe_core::{Generator, Site, TimeAxis};
//! use spe_server_example::series_json;
//!
//! let t = Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap();
//! let frames = Generator::default().generate(&Site::paris(), TimeAxis::new(t, 3).unwrap(), t);
//! let json = serde_json::to_value(series_json::demand(&frames.energy, t)).unwrap();
//! assert_eq!(json["time"][0], "2026-01-15T00:00:00Z");
//! assert_eq!(json["demand_mw"].as_array().unwrap().len(), 3);
//! assert_eq!(json["provenance"], "synthetic");
//! assert_eq!(json["age_s"], 0);
//! ```

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};
use spe_core::{EnergyFrame, Provenance, SupplySource, TimeAxis, WeatherFrame, WeatherVariable};

/// One series, ready to serialize: a time axis, named columns of the same
/// length, a provenance and an age. Borrows the frame it was made from.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesJson<'a> {
    axis: TimeAxis,
    columns: Vec<(&'static str, &'a [Option<f64>])>,
    provenance: Provenance,
    age_s: u64,
    /// The unit of each column, when the names do not say it.
    units: Option<Vec<(&'static str, &'static str)>>,
}

impl<'a> SeriesJson<'a> {
    /// The number of instants.
    pub fn len(&self) -> usize {
        self.axis.len()
    }

    /// Whether the series has no instant.
    pub fn is_empty(&self) -> bool {
        self.axis.is_empty()
    }

    /// The column names, in output order.
    pub fn column_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().map(|(name, _)| *name)
    }
}

/// An instant as RFC 3339 in UTC, to the second: `2026-01-15T10:00:00Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The weather columns, named as Open-Meteo names them: `temperature_2m`,
/// `shortwave_radiation`, `cloud_cover`, `wind_speed_10m`.
pub fn weather(frame: &WeatherFrame, now: DateTime<Utc>) -> SeriesJson<'_> {
    SeriesJson {
        axis: frame.axis(),
        columns: WeatherVariable::ALL
            .iter()
            .map(|&v| (v.name(), frame.columns().get(v).as_slice()))
            .collect(),
        provenance: frame.provenance(),
        age_s: frame.age(now).as_secs(),
        units: Some(
            WeatherVariable::ALL
                .iter()
                .map(|v| (v.name(), v.unit()))
                .collect(),
        ),
    }
}

/// The demand column: `demand_mw`.
pub fn demand(frame: &EnergyFrame, now: DateTime<Utc>) -> SeriesJson<'_> {
    SeriesJson {
        axis: frame.axis(),
        columns: vec![("demand_mw", frame.demand_mw())],
        provenance: frame.provenance(),
        age_s: frame.age(now).as_secs(),
        units: None,
    }
}

/// The supply columns by source: `solar_mw`, `wind_mw`, `other_mw`, `imports_mw`.
pub fn supply(frame: &EnergyFrame, now: DateTime<Utc>) -> SeriesJson<'_> {
    SeriesJson {
        axis: frame.axis(),
        columns: SupplySource::ALL
            .iter()
            .map(|&s| (s.column(), frame.supply_of(s)))
            .collect(),
        provenance: frame.provenance(),
        age_s: frame.age(now).as_secs(),
        units: None,
    }
}

/// The instants of an axis, serialized lazily as RFC 3339 strings.
struct Times(TimeAxis);

impl Serialize for Times {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.times().map(rfc3339))
    }
}

/// Column names and their units, serialized as an object.
struct Units<'a>(&'a [(&'static str, &'static str)]);

impl Serialize for Units<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

impl Serialize for SeriesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let extra = 3 + usize::from(self.units.is_some());
        let mut map = serializer.serialize_map(Some(self.columns.len() + extra))?;
        map.serialize_entry("time", &Times(self.axis))?;
        for (name, values) in &self.columns {
            // Option<f64>: a number, or null where missing.
            map.serialize_entry(name, values)?;
        }
        map.serialize_entry("provenance", self.provenance.name())?;
        map.serialize_entry("age_s", &self.age_s)?;
        if let Some(units) = &self.units {
            map.serialize_entry("units", &Units(units))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde_json::{Value, json};
    use spe_core::{EnergyColumns, WeatherColumns};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0)
            .single()
            .expect("valid time")
    }

    fn axis(len: usize) -> TimeAxis {
        TimeAxis::new(t0(), len).expect("valid axis")
    }

    fn weather_frame() -> WeatherFrame {
        let cols = WeatherColumns {
            temperature_2m: vec![Some(4.5), None, Some(-1.25)],
            shortwave_radiation: vec![Some(0.0), Some(12.0), None],
            cloud_cover: vec![None, None, None],
            wind_speed_10m: vec![Some(3.0), Some(2.5), Some(2.0)],
            ..Default::default()
        };
        WeatherFrame::new(axis(3), cols, Provenance::Live, t0()).expect("valid frame")
    }

    fn energy_frame() -> EnergyFrame {
        let cols = EnergyColumns {
            demand_mw: vec![Some(800.0), None],
            solar_mw: vec![Some(0.0), Some(10.0)],
            wind_mw: vec![None, Some(40.0)],
            other_mw: vec![Some(500.0), Some(510.0)],
            imports_mw: vec![Some(300.0), None],
        };
        EnergyFrame::new(
            axis(2),
            cols,
            Provenance::cached(std::time::Duration::from_secs(60)),
            t0(),
        )
        .expect("valid frame")
    }

    fn to_json(series: &SeriesJson<'_>) -> Value {
        serde_json::to_value(series).expect("serializes")
    }

    #[test]
    fn weather_is_parallel_arrays_with_nulls() {
        let now = t0() + Duration::seconds(95);
        let json = to_json(&weather(&weather_frame(), now));
        assert_eq!(
            json,
            json!({
                "time": ["2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"],
                "temperature_2m": [4.5, null, -1.25],
                "shortwave_radiation": [0.0, 12.0, null],
                "cloud_cover": [null, null, null],
                "wind_speed_10m": [3.0, 2.5, 2.0],
                "provenance": "live",
                "age_s": 95,
                "units": {"temperature_2m": "°C", "shortwave_radiation": "W/m²", "cloud_cover": "%", "wind_speed_10m": "m/s"},
            })
        );
    }

    #[test]
    fn keys_come_in_a_stable_order() {
        let text = serde_json::to_string(&supply(&energy_frame(), t0())).expect("serializes");
        let positions: Vec<usize> = [
            "\"time\"",
            "\"solar_mw\"",
            "\"wind_mw\"",
            "\"other_mw\"",
            "\"imports_mw\"",
            "\"provenance\"",
            "\"age_s\"",
        ]
        .iter()
        .map(|k| text.find(k).unwrap_or(usize::MAX))
        .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn demand_and_supply_split_the_energy_frame() {
        let frame = energy_frame();
        let demand = to_json(&demand(&frame, t0()));
        assert_eq!(demand["demand_mw"], json!([800.0, null]));
        assert_eq!(demand["provenance"], "cached");
        assert_eq!(demand.as_object().map(|o| o.len()), Some(4));
        let supply_series = supply(&frame, t0());
        assert_eq!(
            supply_series.column_names().collect::<Vec<_>>(),
            ["solar_mw", "wind_mw", "other_mw", "imports_mw"]
        );
        let supply = to_json(&supply_series);
        assert_eq!(supply["wind_mw"], json!([null, 40.0]));
        assert_eq!(supply["imports_mw"], json!([300.0, null]));
    }

    #[test]
    fn age_is_zero_before_production_time() {
        let json = to_json(&weather(&weather_frame(), t0() - Duration::hours(1)));
        assert_eq!(json["age_s"], 0);
    }

    #[test]
    fn every_column_matches_the_time_axis() {
        let frames =
            spe_core::Generator::default().generate(&spe_core::Site::paris(), axis(200), t0());
        for series in [
            weather(&frames.weather, t0()),
            demand(&frames.energy, t0()),
            supply(&frames.energy, t0()),
        ] {
            assert_eq!(series.len(), 200);
            assert!(!series.is_empty());
            let json = to_json(&series);
            let times = json["time"].as_array().expect("time array");
            assert_eq!(times.len(), 200);
            for name in series.column_names() {
                assert_eq!(json[name].as_array().map(Vec::len), Some(200), "{name}");
            }
        }
    }

    #[test]
    fn an_empty_frame_gives_empty_arrays() {
        let frame = WeatherFrame::new(
            axis(0),
            WeatherColumns::default(),
            Provenance::Synthetic,
            t0(),
        )
        .expect("empty frame");
        let json = to_json(&weather(&frame, t0()));
        assert_eq!(json["time"], json!([]));
        assert_eq!(json["temperature_2m"], json!([]));
    }

    #[test]
    fn rfc3339_is_utc_to_the_second() {
        assert_eq!(
            rfc3339(t0() + Duration::milliseconds(1500)),
            "2026-03-29T00:00:01Z"
        );
    }
}
