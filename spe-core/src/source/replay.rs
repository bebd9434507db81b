//! Replay a recorded hourly weather series from CSV.
//!
//! A [`Replay`] plays a recording back through the [`DataSource`] trait, so a
//! recorded day (or year) can stand in for the live feed: in tests, in demos,
//! in chaos drills, or to re-run an incident.
//!
//! See [`Replay`] for the CSV format.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};

use super::{DataSource, SourceError, Window};
use crate::frame::{Column, WeatherColumns, WeatherFrame, WeatherVariable};
use crate::provenance::Provenance;
use crate::series::{HOUR, SeriesError, TimeAxis};
use crate::site::Site;

const SOURCE_NAME: &str = "replay";

/// The accepted names of the time column (compared ignoring letter case).
const TIME_COLUMNS: [&str; 3] = ["time", "timestamp", "date"];

/// Why a CSV recording could not be loaded into a [`Replay`].
///
/// Errors about the content name the line (1-based, as in the file, the
/// header being line 1) and the column; [`ReplayError::line`] and
/// [`ReplayError::column`] give them programmatically.
///
/// ```
/// use spe_core::{Replay, ReplayError};
///
/// let csv = "time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m\n\
///            2026-01-01T00:00Z,4.0,0,50,3\n\
///            2026-01-01T01:00Z,4.5,0,abc,3\n";
/// let err = Replay::from_csv_str(csv).unwrap_err();
/// assert_eq!(err.line(), Some(3));
/// assert_eq!(err.column(), Some("cloud_cover"));
/// assert!(matches!(err, ReplayError::Row { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The recording could not be read.
    #[error("cannot read the replay recording{}: {source}", path_suffix(.path))]
    Io {
        /// The file, when reading from a path.
        path: Option<PathBuf>,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The recording has no header, or a header but no data row.
    #[error("the replay recording is empty: it needs a header row and at least one data row")]
    Empty,
    /// Required columns are absent from the header.
    #[error(
        "line {line}: the header lacks the column(s) {}; a replay needs a time column \
         (`time`, `timestamp` or `date`) and temperature_2m, shortwave_radiation, \
         cloud_cover, wind_speed_10m",
        .columns.join(", ")
    )]
    MissingColumns {
        /// Line of the header.
        line: u64,
        /// The missing columns (`time` standing for the time column).
        columns: Vec<String>,
    },
    /// A column name appears twice in the header.
    #[error("line {line}: column {column:?} appears more than once in the header")]
    DuplicateColumn {
        /// Line of the header.
        line: u64,
        /// The repeated name (without its unit).
        column: String,
    },
    /// Another problem with the header: an empty name, two time columns, an
    /// unknown unit, text that is not UTF-8.
    #[error("line {line}: header column {column:?}: {message}")]
    Header {
        /// Line of the header.
        line: u64,
        /// The column as written (or its position, `field N`, if it has no name).
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A data row is wrong: wrong number of fields, an unparseable number, a
    /// NaN or infinity, a value out of its plausible range, an unparseable
    /// timestamp, a time off the hour, a duplicate or non-increasing time.
    #[error("line {line}, column {column:?}: {message}")]
    Row {
        /// Line in the file (1-based; the header is line 1).
        line: u64,
        /// Column name (without its unit). For a row with too few fields, the
        /// first column missing; with too many, `field N` for the first extra
        /// field (N counted from 1).
        column: String,
        /// What is wrong.
        message: String,
    },
    /// The CSV syntax itself could not be read.
    #[error("line {line}: malformed CSV: {message}")]
    Csv {
        /// Line in the file (0 if unknown).
        line: u64,
        /// What the CSV reader said.
        message: String,
    },
    /// A time shift would move the recording outside the representable calendar.
    #[error("cannot shift the recording by {hours} h: {message}")]
    TimeShift {
        /// The shift asked, in whole hours.
        hours: i64,
        /// What went wrong.
        message: String,
    },
    /// The recording does not make a valid weather frame.
    #[error("the recording is not a valid weather frame: {0}")]
    Frame(#[from] SeriesError),
}

fn path_suffix(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" {}", p.display()))
        .unwrap_or_default()
}

impl ReplayError {
    /// The line at fault (1-based, the header being line 1), if the error is
    /// about the content of the recording.
    pub fn line(&self) -> Option<u64> {
        match self {
            ReplayError::MissingColumns { line, .. }
            | ReplayError::DuplicateColumn { line, .. }
            | ReplayError::Header { line, .. }
            | ReplayError::Row { line, .. }
            | ReplayError::Csv { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The column at fault, if the error is about one column.
    pub fn column(&self) -> Option<&str> {
        match self {
            ReplayError::DuplicateColumn { column, .. }
            | ReplayError::Header { column, .. }
            | ReplayError::Row { column, .. } => Some(column),
            _ => None,
        }
    }
}

/// A recorded hourly weather series played back as a [`DataSource`].
///
/// Load it from CSV (format below), then [`fetch`](DataSource::fetch)
/// windows from it as from any other source:
/// the frame returned lies exactly on the window's axis, with missing values
/// where the recording has no data. A window holding no recorded row at all is
/// [`SourceError::NoData`].
///
/// A replay stands in for a live feed, so its frames carry
/// [`Provenance::Live`] by default; say otherwise with
/// [`with_provenance`](Replay::with_provenance). An old recording can be
/// played as if it were recorded now with
/// [`with_time_shift`](Replay::with_time_shift).
///
/// # The CSV format
///
/// ```text
/// time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m,relative_humidity_2m
/// 2026-01-15T08:00Z,3.1,12.0,85,4.2,91
/// 2026-01-15T09:00Z,3.6,88.5,70,4.8,
/// 2026-01-15T12:00Z,5.0,240.0,40,5.5,80
/// ```
///
/// * **Header row** first (line 1, unless blank or comment lines precede it).
///   Column names are trimmed. (Open-Meteo's CSV download starts with a
///   location preamble of two lines and a blank line: remove it.)
/// * **A time column** named `time`, `timestamp` or `date` (any letter case).
///   A value is either RFC 3339 with an offset or `Z`
///   (`2026-01-15T09:00:00+01:00`, `2026-01-15T08:00Z`; a space may replace the
///   `T` and the seconds may be left out), or a *naive* `YYYY-MM-DDTHH:MM[:SS]`
///   or `YYYY-MM-DD HH:MM[:SS]`, which is **taken as UTC** (export naive local
///   times with their offset, or in UTC). Every time must be on the hour as
///   written (minutes and seconds zero), a whole number of hours after the first
///   row's time, and later than the previous row's time.
/// * **The four core variables** under their Open-Meteo names:
///   `temperature_2m` (°C), `shortwave_radiation` (W/m²), `cloud_cover` (%),
///   `wind_speed_10m` (m/s). A unit may follow the name in parentheses, as
///   Open-Meteo's CSV download writes it: `temperature_2m (°C)`. Units other
///   than SP-E's are converted: `°F` for temperature; `km/h`, `kn` and `mph`
///   for wind speed. An unknown unit is an error, never silently misread.
/// * **Any other column** is kept as an extra (e.g. `relative_humidity_2m`),
///   under its name without the unit; its values are only checked to be finite.
/// * **Cells**: a number, or an empty cell for a missing value. `NaN`,
///   `inf` and unparseable text are errors; so is a core value outside its
///   [plausible range](WeatherVariable::plausible_range). Radiation a little
///   below 0 (down to [`WeatherVariable::RADIATION_NOISE_FLOOR`], the
///   rounding noise Open-Meteo's download holds at night) is read as 0, as
///   the live client does.
/// * **Gaps**: hours with no row between two rows (10:00 then 13:00) are
///   filled with missing values, so the recording is one regular hourly axis.
///   A recording may span at most [`Replay::MAX_HOURS`] hours.
/// * Blank lines and lines starting with `#` are skipped; a UTF-8 byte-order
///   mark is ignored. If the header row holds no comma but semicolons (or
///   tabs), that is the delimiter; with semicolons a decimal comma is accepted
///   (`3,5`), as spreadsheets in French locales write it.
///
/// Every error names the line (1-based, as in the file: the header is line 1)
/// and the column at fault; see [`ReplayError`].
///
/// # Example
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use spe_core::{DataSource, Provenance, Replay, Site, Window};
///
/// let csv = "\
/// time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m
/// 2025-01-15T08:00Z,3.1,12.0,85,4.2
/// 2025-01-15T09:00Z,3.6,88.5,70,4.8
/// 2025-01-15T12:00Z,5.0,240.0,40,5.5
/// ";
/// let replay = Replay::from_csv_str(csv).unwrap();
/// assert_eq!(replay.len(), 5); // 08:00 to 12:00, the gap filled with missing values
/// assert_eq!(replay.frame().temperature_2m()[2], None);
///
/// // Play last year's recording as this year's weather:
/// let replay = replay.with_time_shift(Duration::days(365)).unwrap();
/// assert_eq!(replay.axis().start(), Utc.with_ymd_and_hms(2026, 1, 15, 8, 0, 0).unwrap());
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let site = Site::new("Greenwich", 51.48, 0.0, "UTC", spe_core::Country::None).unwrap();
/// let now = Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap();
/// let frame = replay.fetch(&site, &Window::new(now, 0, 1).unwrap()).await.unwrap();
/// assert_eq!(frame.len(), 24); // the whole day, on the window's axis
/// assert_eq!(frame.temperature_2m()[9], Some(3.6));
/// assert_eq!(frame.temperature_2m()[0], None); // before the recording starts
/// assert_eq!(frame.provenance(), Provenance::Live);
/// # });
/// ```
#[derive(Clone)]
pub struct Replay {
    /// The recording as served: shifted axis, chosen provenance.
    frame: WeatherFrame,
    /// The axis as recorded in the file.
    recorded_axis: TimeAxis,
    /// Whether each hour had a row in the file (false: a filled gap).
    has_row: Vec<bool>,
    /// The time shift applied, whole hours.
    shift_hours: i64,
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The recording itself may be years long; keep logs readable.
        f.debug_struct("Replay")
            .field("recorded_start", &self.recorded_axis.start())
            .field("hours", &self.recorded_axis.len())
            .field("rows", &self.rows())
            .field("shift_hours", &self.shift_hours)
            .field("provenance", &self.frame.provenance())
            .finish()
    }
}

impl Replay {
    /// The longest recording accepted, in hours (about 22 years), gaps included.
    pub const MAX_HOURS: usize = 200_000;

    /// Load a recording from CSV text read from `reader`.
    pub fn from_reader(mut reader: impl Read) -> Result<Self, ReplayError> {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| ReplayError::Io { path: None, source })?;
        Replay::from_bytes(&bytes)
    }

    /// Load a recording from the CSV file at `path`.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ReplayError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ReplayError::Io {
            path: Some(path.to_path_buf()),
            source,
        })?;
        Replay::from_bytes(&bytes)
    }

    /// Load a recording from CSV text.
    pub fn from_csv_str(csv: &str) -> Result<Self, ReplayError> {
        Replay::from_bytes(csv.as_bytes())
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, ReplayError> {
        let parsed = parse_csv(bytes)?;
        let axis = TimeAxis::new(parsed.start, parsed.has_row.len())?;
        let produced_at = axis.time(axis.len().saturating_sub(1));
        let frame = WeatherFrame::new(axis, parsed.columns, Provenance::Live, produced_at)?;
        Ok(Replay {
            frame,
            recorded_axis: axis,
            has_row: parsed.has_row,
            shift_hours: 0,
        })
    }

    /// Play the recording `shift` later than recorded (earlier if negative):
    /// a recorded 2025-01-15T09:00Z shifted by 365 days is served as
    /// 2026-01-15T09:00Z.
    ///
    /// The shift is rounded to the nearest whole hour, so the recording stays
    /// on its hourly grid, and replaces any earlier shift (shifts do not add
    /// up). Errors if the shifted recording would leave the calendar.
    pub fn with_time_shift(mut self, shift: Duration) -> Result<Self, ReplayError> {
        let hours = shift.num_seconds().saturating_add(1800).div_euclid(3600);
        let start = Duration::try_hours(hours)
            .and_then(|d| self.recorded_axis.start().checked_add_signed(d))
            .ok_or_else(|| ReplayError::TimeShift {
                hours,
                message: "the shifted start is outside the representable calendar".into(),
            })?;
        let axis =
            TimeAxis::new(start, self.recorded_axis.len()).map_err(|e| ReplayError::TimeShift {
                hours,
                message: e.to_string(),
            })?;
        let provenance = self.frame.provenance();
        let produced_at = axis.time(axis.len().saturating_sub(1));
        let columns = self.frame.into_columns();
        self.frame = WeatherFrame::new(axis, columns, provenance, produced_at)?;
        self.shift_hours = hours;
        Ok(self)
    }

    /// Serve the recording's frames with `provenance` instead of the default
    /// [`Provenance::Live`] (a replay stands in for the live feed; say
    /// [`Provenance::Synthetic`] if the recording is itself simulated).
    pub fn with_provenance(mut self, provenance: Provenance) -> Self {
        self.frame = self.frame.with_provenance(provenance);
        self
    }

    /// The whole recording as served (time shift and provenance applied), gaps
    /// filled with missing values. Its `produced_at` is its last hour.
    pub fn frame(&self) -> WeatherFrame {
        self.frame.clone()
    }

    /// The hours of the recording as served (time shift applied).
    pub fn axis(&self) -> TimeAxis {
        self.frame.axis()
    }

    /// The hours of the recording as written in the file (no time shift).
    pub fn recorded_axis(&self) -> TimeAxis {
        self.recorded_axis
    }

    /// The time shift applied, in whole hours.
    pub fn time_shift(&self) -> Duration {
        Duration::hours(self.shift_hours)
    }

    /// Number of hours from the first row to the last, filled gaps included.
    pub fn len(&self) -> usize {
        self.recorded_axis.len()
    }

    /// Always `false`: a recording with no data row is refused with
    /// [`ReplayError::Empty`].
    pub fn is_empty(&self) -> bool {
        self.recorded_axis.is_empty()
    }

    /// Number of data rows the file held (hours not filled in for a gap).
    pub fn rows(&self) -> usize {
        self.has_row.iter().filter(|r| **r).count()
    }

    /// The recording on `axis`, values missing off the recording.
    fn slice(
        &self,
        axis: TimeAxis,
        produced_at: DateTime<Utc>,
    ) -> Result<WeatherFrame, SourceError> {
        let rec = self.frame.axis();
        let indices: Vec<Option<usize>> = axis.times().map(|t| rec.index_of(t)).collect();
        if !indices.iter().flatten().any(|i| self.has_row[*i]) {
            return Err(SourceError::NoData {
                source_name: SOURCE_NAME.into(),
                message: format!(
                    "the recording ({} to {}) has no row from {} to {}",
                    rec.start().to_rfc3339(),
                    rec.time(rec.len().saturating_sub(1)).to_rfc3339(),
                    axis.start().to_rfc3339(),
                    axis.time(axis.len().saturating_sub(1)).to_rfc3339(),
                ),
            });
        }
        let pick = |col: &[Option<f64>]| -> Column {
            indices.iter().map(|i| i.and_then(|i| col[i])).collect()
        };
        let src = self.frame.columns();
        let columns = WeatherColumns {
            temperature_2m: pick(&src.temperature_2m),
            shortwave_radiation: pick(&src.shortwave_radiation),
            cloud_cover: pick(&src.cloud_cover),
            wind_speed_10m: pick(&src.wind_speed_10m),
            extra: src
                .extra
                .iter()
                .map(|(name, col)| (name.clone(), pick(col)))
                .collect(),
        };
        WeatherFrame::new(axis, columns, self.frame.provenance(), produced_at)
            .map_err(|e| SourceError::invalid_data(SOURCE_NAME, e))
    }
}

#[async_trait]
impl DataSource for Replay {
    fn name(&self) -> &str {
        SOURCE_NAME
    }

    /// The recording on exactly `window.axis(site)`, `None` where it has no
    /// data; `produced_at` is `window.now()`. [`SourceError::NoData`] if no
    /// recorded row falls in the window.
    async fn fetch(&self, site: &Site, window: &Window) -> Result<WeatherFrame, SourceError> {
        let axis = window.axis(site)?;
        self.slice(axis, window.now())
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// `stored = written × scale + offset`.
#[derive(Debug, Clone, Copy)]
struct Conversion {
    scale: f64,
    offset: f64,
}

const IDENTITY: Conversion = Conversion {
    scale: 1.0,
    offset: 0.0,
};

impl Conversion {
    fn apply(self, x: f64) -> f64 {
        x * self.scale + self.offset
    }

    fn is_identity(self) -> bool {
        self.scale == 1.0 && self.offset == 0.0
    }
}

/// How to read a unit written in the header for a core variable.
fn conversion(var: WeatherVariable, unit: &str) -> Option<Conversion> {
    let scale = |scale| Some(Conversion { scale, offset: 0.0 });
    match var {
        WeatherVariable::Temperature2m => match unit {
            "°C" | "ºC" | "degC" | "C" | "celsius" => Some(IDENTITY),
            "°F" | "ºF" | "degF" | "F" | "fahrenheit" => Some(Conversion {
                scale: 5.0 / 9.0,
                offset: -32.0 * 5.0 / 9.0,
            }),
            _ => None,
        },
        WeatherVariable::ShortwaveRadiation => match unit {
            "W/m²" | "W/m2" | "W/m^2" | "W m-2" | "Wm-2" => Some(IDENTITY),
            _ => None,
        },
        WeatherVariable::CloudCover => match unit {
            "%" => Some(IDENTITY),
            _ => None,
        },
        WeatherVariable::WindSpeed10m => match unit {
            "m/s" | "m s-1" | "ms" => Some(IDENTITY),
            "km/h" | "kmh" | "km h-1" => scale(1.0 / 3.6),
            "kn" | "kt" | "knots" => scale(1852.0 / 3600.0),
            "mph" => scale(0.44704),
            _ => None,
        },
    }
}

/// Split `temperature_2m (°C)` into the name and the unit.
fn split_unit(raw: &str) -> (&str, Option<&str>) {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_suffix(')') {
        if let Some(open) = inner.rfind('(') {
            return (inner[..open].trim(), Some(inner[open + 1..].trim()));
        }
    }
    (raw, None)
}

/// What a column of the file holds.
#[derive(Debug, Clone)]
enum Field {
    Time,
    Core(WeatherVariable, Conversion),
    Extra(usize),
}

/// The parsed header.
struct Header {
    line: u64,
    names: Vec<String>,
    fields: Vec<Field>,
    extras: Vec<String>,
}

fn parse_header(record: &csv::ByteRecord, line: u64) -> Result<Header, ReplayError> {
    let mut names = Vec::with_capacity(record.len());
    let mut fields = Vec::with_capacity(record.len());
    let mut extras = Vec::new();
    let mut time_column: Option<String> = None;
    let mut seen: Vec<String> = Vec::with_capacity(record.len());
    let header_error = |column: String, message: String| ReplayError::Header {
        line,
        column,
        message,
    };
    for (n, raw) in record.iter().enumerate() {
        let raw = std::str::from_utf8(raw).map_err(|_| {
            header_error(
                format!("field {}", n + 1),
                "column name is not valid UTF-8".into(),
            )
        })?;
        let (name, unit) = split_unit(raw);
        if name.is_empty() {
            return Err(header_error(
                format!("field {}", n + 1),
                "column has no name".into(),
            ));
        }
        let is_time = TIME_COLUMNS.iter().any(|t| name.eq_ignore_ascii_case(t));
        let key = if is_time {
            name.to_ascii_lowercase()
        } else {
            name.to_owned()
        };
        if seen.contains(&key) {
            return Err(ReplayError::DuplicateColumn { line, column: key });
        }
        seen.push(key.clone());
        let field = if is_time {
            if let Some(first) = &time_column {
                return Err(header_error(
                    name.to_owned(),
                    format!("a second time column (the first is {first:?})"),
                ));
            }
            time_column = Some(name.to_owned());
            Field::Time
        } else if let Some(var) = WeatherVariable::from_name(name) {
            let conv = match unit {
                None => IDENTITY,
                Some(u) => conversion(var, u).ok_or_else(|| {
                    header_error(
                        raw.trim().to_owned(),
                        format!(
                            "unknown unit {u:?} for {name}; SP-E stores it in {}",
                            var.unit()
                        ),
                    )
                })?,
            };
            Field::Core(var, conv)
        } else {
            extras.push(name.to_owned());
            Field::Extra(extras.len() - 1)
        };
        names.push(name.to_owned());
        fields.push(field);
    }
    let mut missing = Vec::new();
    if time_column.is_none() {
        missing.push("time".to_owned());
    }
    for var in WeatherVariable::ALL {
        if !fields
            .iter()
            .any(|f| matches!(f, Field::Core(v, _) if *v == var))
        {
            missing.push(var.name().to_owned());
        }
    }
    if !missing.is_empty() {
        return Err(ReplayError::MissingColumns {
            line,
            columns: missing,
        });
    }
    Ok(Header {
        line,
        names,
        fields,
        extras,
    })
}

/// Parse a timestamp; `Ok((utc, on_the_hour_as_written))`.
fn parse_time(s: &str) -> Option<(DateTime<Utc>, bool)> {
    let on_hour = |minute: u32, second: u32, nano: u32| minute == 0 && second == 0 && nano == 0;
    // With an offset or Z. Normalize a trailing Z and a missing seconds field.
    let normalized = match s.strip_suffix(['Z', 'z']) {
        Some(rest) => format!("{rest}+00:00"),
        None => s.to_owned(),
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(&normalized) {
        return Some((t.to_utc(), on_hour(t.minute(), t.second(), t.nanosecond())));
    }
    for fmt in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%d %H:%M%:z"] {
        if let Ok(t) = DateTime::parse_from_str(&normalized, fmt) {
            return Some((t.to_utc(), on_hour(t.minute(), t.second(), t.nanosecond())));
        }
    }
    // Naive: taken as UTC.
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some((t.and_utc(), on_hour(t.minute(), t.second(), t.nanosecond())));
        }
    }
    None
}

/// The delimiter: `,` unless the header row holds none and holds `;` or tabs.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let header = bytes
        .split(|b| *b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty() && !l.starts_with(b"#"))
        .unwrap_or_default();
    if header.contains(&b',') {
        b','
    } else if header.contains(&b';') {
        b';'
    } else if header.contains(&b'\t') {
        b'\t'
    } else {
        b','
    }
}

struct Parsed {
    start: DateTime<Utc>,
    columns: WeatherColumns,
    has_row: Vec<bool>,
}

/// Columns being filled while reading.
struct Builder {
    core: [Column; 4],
    extras: Vec<Column>,
    has_row: Vec<bool>,
}

impl Builder {
    fn push_missing_hour(&mut self) {
        for col in self.core.iter_mut().chain(self.extras.iter_mut()) {
            col.push(None);
        }
        self.has_row.push(false);
    }
}

/// The line a record starts on. The CSV reader reports the position where it
/// started looking, before the blank and comment lines it skipped.
fn record_line(bytes: &[u8], pos: &csv::Position) -> u64 {
    let mut line = pos.line();
    let mut rest = usize::try_from(pos.byte())
        .ok()
        .and_then(|b| bytes.get(b..))
        .unwrap_or_default();
    loop {
        if let Some(r) = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
        {
            rest = r;
            line += 1;
        } else if let Some(r) = rest.strip_prefix(b"\r") {
            rest = r;
        } else if rest.starts_with(b"#") {
            match rest.iter().position(|b| *b == b'\n') {
                Some(end) => {
                    rest = &rest[end + 1..];
                    line += 1;
                }
                None => break,
            }
        } else {
            break;
        }
    }
    line
}

fn core_index(var: WeatherVariable) -> usize {
    WeatherVariable::ALL
        .iter()
        .position(|v| *v == var)
        .unwrap_or_default()
}

fn parse_csv(bytes: &[u8]) -> Result<Parsed, ReplayError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let delimiter = sniff_delimiter(bytes);
    let decimal_comma = delimiter == b';';
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .comment(Some(b'#'))
        .from_reader(bytes);

    let mut header: Option<Header> = None;
    let mut builder: Option<Builder> = None;
    // (first time, previous time) once a row has been read.
    let mut times: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    let mut record = csv::ByteRecord::new();
    let mut last_line = 0u64;

    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(last_line);
                return Err(ReplayError::Csv {
                    line,
                    message: e.to_string(),
                });
            }
        }
        let line = record
            .position()
            .map(|p| record_line(bytes, p))
            .unwrap_or(last_line + 1);
        last_line = line;
        let Some(h) = &header else {
            let h = parse_header(&record, line)?;
            builder = Some(Builder {
                core: Default::default(),
                extras: vec![Vec::new(); h.extras.len()],
                has_row: Vec::new(),
            });
            header = Some(h);
            continue;
        };
        let Some(b) = builder.as_mut() else {
            continue;
        };
        let (first, prev) = read_row(h, b, &record, line, times, decimal_comma)?;
        times = Some((first, prev));
    }

    let (Some(h), Some(b), Some((first, _))) = (header, builder, times) else {
        return Err(ReplayError::Empty);
    };
    let [
        temperature_2m,
        shortwave_radiation,
        cloud_cover,
        wind_speed_10m,
    ] = b.core;
    let extra = h.extras.into_iter().zip(b.extras).collect();
    Ok(Parsed {
        start: first,
        columns: WeatherColumns {
            temperature_2m,
            shortwave_radiation,
            cloud_cover,
            wind_speed_10m,
            extra,
        },
        has_row: b.has_row,
    })
}

/// Read one data row into the builder; returns the new (first, previous) times.
fn read_row(
    h: &Header,
    b: &mut Builder,
    record: &csv::ByteRecord,
    line: u64,
    times: Option<(DateTime<Utc>, DateTime<Utc>)>,
    decimal_comma: bool,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ReplayError> {
    let row_error = |column: &str, message: String| ReplayError::Row {
        line,
        column: column.to_owned(),
        message,
    };
    let expected = h.fields.len();
    if record.len() != expected {
        let column = match h.names.get(record.len()) {
            Some(name) => name.clone(),
            None => format!("field {}", expected + 1),
        };
        return Err(row_error(
            &column,
            format!(
                "the row has {} field(s) but the header (line {}) has {expected}",
                record.len(),
                h.line
            ),
        ));
    }

    // Decode every cell first; the time goes first so gaps can be filled.
    let mut cells = Vec::with_capacity(expected);
    for (raw, name) in record.iter().zip(&h.names) {
        let cell = std::str::from_utf8(raw)
            .map_err(|_| row_error(name, "the cell is not valid UTF-8 text".into()))?;
        cells.push(cell.trim());
    }

    let Some(time_pos) = h.fields.iter().position(|f| matches!(f, Field::Time)) else {
        return Err(row_error("time", "no time column".into()));
    };
    let time_name = &h.names[time_pos];
    let time_text = cells[time_pos];
    if time_text.is_empty() {
        return Err(row_error(time_name, "the time is empty".into()));
    }
    let (t, on_hour) = parse_time(time_text).ok_or_else(|| {
        row_error(
            time_name,
            format!(
                "{time_text:?} is not a timestamp: use RFC 3339 (2026-01-15T09:00:00+01:00, \
                 2026-01-15T08:00Z) or YYYY-MM-DDTHH:MM[:SS] / YYYY-MM-DD HH:MM[:SS] in UTC"
            ),
        )
    })?;
    if !on_hour {
        return Err(row_error(
            time_name,
            format!("{time_text} is not on the hour (minutes and seconds must be zero)"),
        ));
    }
    if t.checked_add_signed(HOUR).is_none() {
        return Err(row_error(
            time_name,
            format!("{time_text} is at the edge of the representable calendar"),
        ));
    }
    let first = match times {
        None => t,
        Some((first, prev)) => {
            if t <= prev {
                let what = if t == prev { "repeats" } else { "is before" };
                return Err(row_error(
                    time_name,
                    format!(
                        "{time_text} {what} the previous row's time {}; times must increase",
                        prev.to_rfc3339()
                    ),
                ));
            }
            let step = t.signed_duration_since(prev);
            if step.num_seconds() % 3600 != 0 {
                return Err(row_error(
                    time_name,
                    format!(
                        "{time_text} is not a whole number of hours after the previous row's \
                         time {}",
                        prev.to_rfc3339()
                    ),
                ));
            }
            let hours = usize::try_from(step.num_hours()).unwrap_or(usize::MAX);
            let len = b.has_row.len();
            if hours > Replay::MAX_HOURS || len.saturating_add(hours) > Replay::MAX_HOURS {
                return Err(row_error(
                    time_name,
                    format!(
                        "{time_text} would make the recording longer than {} hours",
                        Replay::MAX_HOURS
                    ),
                ));
            }
            for _ in 1..hours {
                b.push_missing_hour();
            }
            first
        }
    };

    // Values.
    let mut core: [Option<f64>; 4] = [None; 4];
    let mut extras: Vec<Option<f64>> = vec![None; b.extras.len()];
    for ((field, name), cell) in h.fields.iter().zip(&h.names).zip(&cells) {
        if matches!(field, Field::Time) || cell.is_empty() {
            continue;
        }
        let text = if decimal_comma {
            std::borrow::Cow::Owned(cell.replace(',', "."))
        } else {
            std::borrow::Cow::Borrowed(*cell)
        };
        let written: f64 = text
            .parse()
            .map_err(|_| row_error(name, format!("{cell:?} is not a number")))?;
        if !written.is_finite() {
            return Err(row_error(
                name,
                format!(
                    "{cell:?} is not a finite number; leave the cell empty for a missing value"
                ),
            ));
        }
        match field {
            Field::Time => {}
            Field::Core(var, conv) => {
                // Night-time radiation of -0.x W/m², as the live client takes it.
                let value = var.denoise(conv.apply(written));
                let (min, max) = var.plausible_range();
                if !(min..=max).contains(&value) {
                    let from = if conv.is_identity() {
                        String::new()
                    } else {
                        format!(" (converted from {cell})")
                    };
                    return Err(row_error(
                        name,
                        format!(
                            "{value} {unit}{from} is outside the plausible range {min}..={max} {unit}",
                            unit = var.unit()
                        ),
                    ));
                }
                core[core_index(*var)] = Some(value);
            }
            Field::Extra(i) => {
                if let Some(slot) = extras.get_mut(*i) {
                    *slot = Some(written);
                }
            }
        }
    }
    for (col, v) in b.core.iter_mut().zip(core) {
        col.push(v);
    }
    for (col, v) in b.extras.iter_mut().zip(extras) {
        col.push(v);
    }
    b.has_row.push(true);
    Ok((first, t))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::calendar::Country;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const HEAD: &str = "time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m";

    fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn csv(rows: &[&str]) -> String {
        let mut s = String::from(HEAD);
        for r in rows {
            s.push('\n');
            s.push_str(r);
        }
        s.push('\n');
        s
    }

    fn utc_site() -> Site {
        Site::new("Greenwich", 51.48, 0.0, "UTC", Country::None).unwrap()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Assert the error is a row error at `line`, `column`, mentioning `needle`.
    #[track_caller]
    fn assert_row_err(text: &str, line: u64, column: &str, needle: &str) {
        let err = Replay::from_csv_str(text).unwrap_err();
        match &err {
            ReplayError::Row {
                line: l,
                column: c,
                message,
            } => {
                assert_eq!((*l, c.as_str()), (line, column), "{err}");
                assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            }
            other => panic!("expected a row error, got {other:?}"),
        }
        assert!(err.to_string().contains(&format!("line {line}")), "{err}");
        assert!(err.to_string().contains(column), "{err}");
    }

    #[test]
    fn reads_a_simple_recording() {
        let r = Replay::from_csv_str(&csv(&[
            "2026-01-01T00:00Z,4.0,0,50,3",
            "2026-01-01T01:00:00+00:00,4.5,0,,3.5",
        ]))
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.rows(), 2);
        assert!(!r.is_empty());
        assert_eq!(r.axis().start(), utc(2026, 1, 1, 0));
        let f = r.frame();
        assert_eq!(f.temperature_2m(), &[Some(4.0), Some(4.5)]);
        assert_eq!(f.cloud_cover(), &[Some(50.0), None]);
        assert_eq!(f.provenance(), Provenance::Live);
        assert_eq!(f.produced_at(), utc(2026, 1, 1, 1));
        assert_eq!(r.name(), "replay");
    }

    #[test]
    fn accepts_every_documented_time_format() {
        for t in [
            "2026-01-01T05:00:00Z",
            "2026-01-01T05:00Z",
            "2026-01-01T06:00:00+01:00",
            "2026-01-01 06:00:00+01:00",
            "2026-01-01T06:00+01:00",
            "2026-01-01T05:00",
            "2026-01-01T05:00:00",
            "2026-01-01 05:00",
            "2026-01-01 05:00:00",
        ] {
            let r = Replay::from_csv_str(&csv(&[&format!("{t},1,0,0,0")]))
                .unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(r.axis().start(), utc(2026, 1, 1, 5), "{t}");
        }
        // Half-hour offsets: on the hour as written, at :30 UTC.
        let r = Replay::from_csv_str(&csv(&[
            "2026-01-01T05:00+05:30,1,0,0,0",
            "2026-01-01T06:00+05:30,1,0,0,0",
        ]))
        .unwrap();
        assert_eq!(
            r.axis().start(),
            Utc.with_ymd_and_hms(2025, 12, 31, 23, 30, 0).unwrap()
        );
    }

    #[test]
    fn header_aliases_units_extras_bom_and_comments() {
        let text = "\u{feff}# recorded at the Lyon substation\n\
                    Date, temperature_2m (°F),shortwave_radiation (W/m²),cloud_cover (%),wind_speed_10m (km/h),relative_humidity_2m (%)\n\
                    \n\
                    2026-01-01 00:00,50,0,10,36,80\n\
                    2026-01-01 01:00,32,0,10,18,\n";
        let r = Replay::from_csv_str(text).unwrap();
        let f = r.frame();
        assert!((f.temperature_2m()[0].unwrap() - 10.0).abs() < 1e-9);
        assert!(f.temperature_2m()[1].unwrap().abs() < 1e-9);
        assert!((f.wind_speed_10m()[0].unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(
            f.extra("relative_humidity_2m"),
            Some(&[Some(80.0), None][..])
        );
    }

    #[test]
    fn semicolons_and_decimal_commas() {
        let text = "time;temperature_2m;shortwave_radiation;cloud_cover;wind_speed_10m\n\
                    2026-01-01T00:00;3,5;0;50;2,25\n";
        let f = Replay::from_csv_str(text).unwrap().frame();
        assert_eq!(f.temperature_2m(), &[Some(3.5)]);
        assert_eq!(f.wind_speed_10m(), &[Some(2.25)]);
    }

    #[test]
    fn gaps_are_filled_with_missing_values() {
        let r = Replay::from_csv_str(&csv(&[
            "2026-01-01T10:00Z,1,0,0,0",
            "2026-01-01T13:00Z,4,0,0,0",
            "2026-01-01T14:00Z,5,0,0,0",
        ]))
        .unwrap();
        assert_eq!(r.len(), 5);
        assert_eq!(r.rows(), 3);
        assert_eq!(
            r.frame().temperature_2m(),
            &[Some(1.0), None, None, Some(4.0), Some(5.0)]
        );
        assert_eq!(r.frame().cloud_cover()[1], None);
    }

    #[test]
    fn error_unparseable_number() {
        let text = csv(&["2026-01-01T00:00Z,1,0,0,0", "2026-01-01T01:00Z,1,0,abc,0"]);
        assert_row_err(&text, 3, "cloud_cover", "not a number");
    }

    #[test]
    fn error_nan_and_infinity() {
        for bad in ["NaN", "inf", "-inf", "infinity", "1e400"] {
            let text = csv(&[&format!("2026-01-01T00:00Z,1,0,0,{bad}")]);
            assert_row_err(&text, 2, "wind_speed_10m", "finite");
        }
        let text = format!("{HEAD},pressure\n2026-01-01T00:00Z,1,0,0,0,NaN\n");
        assert_row_err(&text, 2, "pressure", "finite");
    }

    #[test]
    fn error_unparseable_timestamp() {
        for bad in [
            "yesterday",
            "2026-13-01T00:00",
            "2026-01-01",
            "2026-01-01T25:00Z",
        ] {
            let text = csv(&["2026-01-01T00:00Z,1,0,0,0", &format!("{bad},1,0,0,0")]);
            assert_row_err(&text, 3, "time", "not a timestamp");
        }
        let text = csv(&[",1,0,0,0"]);
        assert_row_err(&text, 2, "time", "empty");
    }

    #[test]
    fn error_wrong_number_of_fields() {
        let text = csv(&["2026-01-01T00:00Z,1,0,0"]);
        assert_row_err(&text, 2, "wind_speed_10m", "4 field(s)");
        let text = csv(&["2026-01-01T00:00Z,1,0,0,0", "2026-01-01T01:00Z,1,0,0,0,7"]);
        assert_row_err(&text, 3, "field 6", "6 field(s)");
    }

    #[test]
    fn error_time_not_on_the_hour() {
        let text = csv(&["2026-01-01T00:00Z,1,0,0,0", "2026-01-01T01:30Z,1,0,0,0"]);
        assert_row_err(&text, 3, "time", "not on the hour");
        let text = csv(&["2026-01-01T00:00:01,1,0,0,0"]);
        assert_row_err(&text, 2, "time", "not on the hour");
        // On the hour as written, but off the first row's grid.
        let text = csv(&[
            "2026-01-01T00:00Z,1,0,0,0",
            "2026-01-01T06:00+05:30,1,0,0,0",
        ]);
        assert_row_err(&text, 3, "time", "whole number of hours");
    }

    #[test]
    fn error_duplicate_and_decreasing_times() {
        let text = csv(&[
            "2026-01-01T00:00Z,1,0,0,0",
            "2026-01-01T01:00Z,1,0,0,0",
            "2026-01-01T01:00Z,1,0,0,0",
        ]);
        assert_row_err(&text, 4, "time", "repeats");
        let text = csv(&["2026-01-01T05:00Z,1,0,0,0", "2026-01-01T04:00Z,1,0,0,0"]);
        assert_row_err(&text, 3, "time", "is before");
        // The same instant written with another offset is a duplicate too.
        let text = csv(&[
            "2026-01-01T05:00Z,1,0,0,0",
            "2026-01-01T06:00+01:00,1,0,0,0",
        ]);
        assert_row_err(&text, 3, "time", "repeats");
    }

    #[test]
    fn error_out_of_plausible_range() {
        let cases = [
            ("2026-01-01T00:00Z,900,0,0,0", "temperature_2m"),
            ("2026-01-01T00:00Z,1,-5.5,0,0", "shortwave_radiation"),
            ("2026-01-01T00:00Z,1,0,101,0", "cloud_cover"),
            ("2026-01-01T00:00Z,1,0,0,-1", "wind_speed_10m"),
        ];
        for (row, column) in cases {
            assert_row_err(&csv(&[row]), 2, column, "plausible range");
        }
        // After a unit conversion: 500 km/h is 139 m/s.
        let text = "time,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m (km/h)\n\
                    2026-01-01T00:00Z,1,0,0,500\n";
        assert_row_err(text, 2, "wind_speed_10m", "converted from 500");
        // Extras have no range.
        let text = format!("{HEAD},pressure_msl\n2026-01-01T00:00Z,1,0,0,0,101325\n");
        assert!(Replay::from_csv_str(&text).is_ok());
    }

    #[test]
    fn night_radiation_rounding_noise_is_zero_as_in_the_live_client() {
        let text = "time,temperature_2m (°C),shortwave_radiation (W/m²),cloud_cover (%),wind_speed_10m (m/s)\n\
                    2026-01-15T00:00,3.1,-0.4,100,4.2\n\
                    2026-01-15T01:00,3.0,-5,100,4.0\n";
        let frame = Replay::from_csv_str(text).unwrap().frame();
        assert_eq!(frame.shortwave_radiation(), &[Some(0.0), Some(0.0)]);
    }

    #[test]
    fn error_missing_core_columns_are_named() {
        let err =
            Replay::from_csv_str("time,temperature_2m,wind_speed_10m\n2026-01-01T00:00Z,1,2\n")
                .unwrap_err();
        match &err {
            ReplayError::MissingColumns { line, columns } => {
                assert_eq!(*line, 1);
                assert_eq!(columns, &["shortwave_radiation", "cloud_cover"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("shortwave_radiation, cloud_cover"));
        let err = Replay::from_csv_str(
            "when,temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m\n",
        )
        .unwrap_err();
        assert!(
            matches!(&err, ReplayError::MissingColumns { columns, .. } if columns == &["time"]),
            "{err:?}"
        );
    }

    #[test]
    fn error_duplicate_and_bad_header_columns() {
        let err = Replay::from_csv_str(&format!("{HEAD},cloud_cover (%)\n")).unwrap_err();
        assert!(
            matches!(&err, ReplayError::DuplicateColumn { line: 1, column } if column == "cloud_cover"),
            "{err:?}"
        );
        assert_eq!(err.column(), Some("cloud_cover"));
        let err = Replay::from_csv_str(&format!("{HEAD},Date\n")).unwrap_err();
        assert!(
            matches!(&err, ReplayError::Header { line: 1, column, .. } if column == "Date"),
            "{err:?}"
        );
        let err = Replay::from_csv_str(&format!("{HEAD},\n")).unwrap_err();
        assert!(
            matches!(&err, ReplayError::Header { column, .. } if column == "field 6"),
            "{err:?}"
        );
        let err = Replay::from_csv_str(
            "time,temperature_2m (K),shortwave_radiation,cloud_cover,wind_speed_10m\n",
        )
        .unwrap_err();
        assert!(
            matches!(&err, ReplayError::Header { column, message, .. }
                if column == "temperature_2m (K)" && message.contains("unknown unit")),
            "{err:?}"
        );
    }

    #[test]
    fn error_empty() {
        for text in ["", "\n\n", "# only a comment\n", &format!("{HEAD}\n")] {
            assert!(
                matches!(Replay::from_csv_str(text), Err(ReplayError::Empty)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn error_invalid_utf8_names_the_cell() {
        let mut bytes = csv(&["2026-01-01T00:00Z,1,0,0,0"]).into_bytes();
        let at = bytes.len() - 2; // the last value
        bytes[at] = 0xff;
        let err = Replay::from_reader(&bytes[..]).unwrap_err();
        assert_eq!(
            (err.line(), err.column()),
            (Some(2), Some("wind_speed_10m")),
            "{err}"
        );
    }

    #[test]
    fn error_io_names_the_path() {
        let err = Replay::from_path("this/file/does/not/exist.csv").unwrap_err();
        assert!(matches!(err, ReplayError::Io { path: Some(_), .. }));
        assert!(err.to_string().contains("exist.csv"), "{err}");
    }

    #[test]
    fn error_line_numbers_follow_the_file() {
        // A blank line, a comment and a quoted field spanning two lines.
        let text = format!(
            "{HEAD},note\n\n2026-01-01T00:00Z,1,0,0,0,\"1\n\"\n# comment\n\r\n2026-01-01T01:00Z,1,0,x,0,\n"
        );
        assert_row_err(&text, 7, "cloud_cover", "not a number");
        // The first data row after a blank line and a comment.
        let text = format!("{HEAD}\n\n# comment\n2026-01-01T00:00Z,1,0,0,x\n");
        assert_row_err(&text, 4, "wind_speed_10m", "not a number");
    }

    #[test]
    fn error_gap_too_long() {
        let text = csv(&["1900-01-01T00:00Z,1,0,0,0", "2100-01-01T00:00Z,1,0,0,0"]);
        assert_row_err(&text, 3, "time", "longer than");
    }

    #[test]
    fn reads_from_a_file() {
        let path = std::env::temp_dir().join(format!("spe-replay-{}.csv", std::process::id()));
        std::fs::write(&path, csv(&["2026-01-01T00:00Z,1,0,0,0"])).unwrap();
        let r = Replay::from_path(&path);
        let _ = std::fs::remove_file(&path);
        assert_eq!(r.unwrap().len(), 1);
    }

    #[test]
    fn fetch_slices_the_window_onto_its_axis() {
        // 2026-01-15 22:00 UTC to 2026-01-16 02:00 UTC, with a gap at 00:00.
        let r = Replay::from_csv_str(&csv(&[
            "2026-01-15T22:00Z,1,0,0,0",
            "2026-01-15T23:00Z,2,0,0,0",
            "2026-01-16T01:00Z,4,0,0,0",
            "2026-01-16T02:00Z,5,0,0,0",
        ]))
        .unwrap();
        let site = utc_site();
        let now = utc(2026, 1, 16, 1);
        let w = Window::new(now, 1, 1).unwrap();
        let f = block_on(r.fetch(&site, &w)).unwrap();
        let axis = w.axis(&site).unwrap();
        assert_eq!(f.axis(), axis);
        assert_eq!(f.len(), 48);
        assert_eq!(f.produced_at(), now);
        let mut expected = vec![None; 48];
        expected[22] = Some(1.0);
        expected[23] = Some(2.0);
        expected[25] = Some(4.0);
        expected[26] = Some(5.0);
        assert_eq!(f.temperature_2m(), &expected[..]);

        // Paris (UTC+1): the window starts at 23:00 UTC the day before.
        let f = block_on(r.fetch(&Site::paris(), &Window::new(now, 0, 1).unwrap())).unwrap();
        assert_eq!(f.axis().start(), utc(2026, 1, 15, 23));
        assert_eq!(
            &f.temperature_2m()[..4],
            &[Some(2.0), None, Some(4.0), Some(5.0)]
        );
    }

    #[test]
    fn fetch_outside_the_recording_is_no_data() {
        let r = Replay::from_csv_str(&csv(&[
            "2026-01-15T10:00Z,1,0,0,0",
            "2026-01-18T10:00Z,1,0,0,0",
        ]))
        .unwrap();
        let site = utc_site();
        let later = Window::new(utc(2026, 2, 1, 0), 1, 1).unwrap();
        let err = block_on(r.fetch(&site, &later)).unwrap_err();
        assert!(matches!(err, SourceError::NoData { .. }), "{err}");
        // A window inside the recording's gap holds no recorded row either.
        let gap = Window::new(utc(2026, 1, 17, 0), 0, 1).unwrap();
        assert!(matches!(
            block_on(r.fetch(&site, &gap)),
            Err(SourceError::NoData { .. })
        ));
    }

    #[test]
    fn time_shift_replays_an_old_recording_now() {
        let r = Replay::from_csv_str(&csv(&[
            "2025-03-01T00:00Z,1,0,0,0",
            "2025-03-01T01:00Z,2,0,0,0",
        ]))
        .unwrap();
        let site = utc_site();
        let w = Window::new(utc(2026, 3, 1, 0), 0, 1).unwrap();
        assert!(matches!(
            block_on(r.fetch(&site, &w)),
            Err(SourceError::NoData { .. })
        ));

        // 365 days, plus 20 minutes that round away.
        let shifted = r
            .clone()
            .with_time_shift(Duration::days(365) + Duration::minutes(20))
            .unwrap();
        assert_eq!(shifted.time_shift(), Duration::days(365));
        assert_eq!(shifted.axis().start(), utc(2026, 3, 1, 0));
        assert_eq!(shifted.recorded_axis().start(), utc(2025, 3, 1, 0));
        let f = block_on(shifted.fetch(&site, &w)).unwrap();
        assert_eq!(&f.temperature_2m()[..3], &[Some(1.0), Some(2.0), None]);

        // Shifts replace each other; negative shifts go back in time.
        let back = shifted.with_time_shift(Duration::hours(-2)).unwrap();
        assert_eq!(back.axis().start(), utc(2025, 2, 28, 22));
        assert_eq!(back.frame().produced_at(), utc(2025, 2, 28, 23));

        // A shift off the calendar is refused, not a panic.
        let err = r.with_time_shift(Duration::MAX).unwrap_err();
        assert!(matches!(err, ReplayError::TimeShift { .. }), "{err}");
    }

    #[test]
    fn provenance_is_live_unless_told_otherwise() {
        let r = Replay::from_csv_str(&csv(&["2026-01-01T00:00Z,1,0,0,0"]))
            .unwrap()
            .with_provenance(Provenance::Synthetic);
        assert_eq!(r.frame().provenance(), Provenance::Synthetic);
        let f = block_on(r.fetch(&utc_site(), &Window::new(utc(2026, 1, 1, 0), 0, 1).unwrap()))
            .unwrap();
        assert_eq!(f.provenance(), Provenance::Synthetic);
        let shifted = r.with_time_shift(Duration::hours(1)).unwrap();
        assert_eq!(shifted.frame().provenance(), Provenance::Synthetic);
    }

    #[test]
    fn debug_output_stays_short() {
        let rows: Vec<String> = (0..500)
            .map(|h| {
                format!(
                    "{},1,0,0,0",
                    (utc(2026, 1, 1, 0) + Duration::hours(h)).format("%Y-%m-%dT%H:%MZ")
                )
            })
            .collect();
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        let r = Replay::from_csv_str(&csv(&rows)).unwrap();
        assert!(format!("{r:?}").len() < 300);
    }

    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("NaN".to_owned()),
            Just("inf".to_owned()),
            Just("\"a,b\"".to_owned()),
            Just("\"".to_owned()),
            (-200.0f64..2000.0).prop_map(|x| format!("{x}")),
            any::<f64>().prop_map(|x| format!("{x}")),
            "[0-9eE.,+-]{0,8}",
            ".{0,6}",
        ]
    }

    fn time() -> impl Strategy<Value = String> {
        prop_oneof![
            (0i64..200).prop_map(|h| (utc(2026, 1, 1, 0) + Duration::hours(h))
                .format("%Y-%m-%dT%H:%MZ")
                .to_string()),
            (-9999i64..9999, 0u32..24, 0u32..61)
                .prop_map(|(y, h, m)| format!("{y:04}-01-01T{h:02}:{m:02}")),
            ".{0,25}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_text_never_panics(text in "(?s).{0,400}") {
            let _ = Replay::from_csv_str(&text);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Replay::from_reader(&bytes[..]);
        }

        #[test]
        fn csv_shaped_text_never_panics(
            header in prop_oneof![
                Just(HEAD.to_owned()),
                Just(format!("{HEAD},extra")),
                "[a-z_,;() ]{0,60}",
            ],
            rows in proptest::collection::vec(
                (time(), proptest::collection::vec(cell(), 0..7)), 0..12),
            shift_h in -1_000_000i64..1_000_000,
        ) {
            let mut text = header;
            for (t, cells) in rows {
                text.push('\n');
                text.push_str(&t);
                for c in cells {
                    text.push(',');
                    text.push_str(&c);
                }
            }
            if let Ok(r) = Replay::from_csv_str(&text) {
                prop_assert!(r.len() >= r.rows() && r.rows() >= 1);
                let f = r.frame();
                for var in WeatherVariable::ALL {
                    let (min, max) = var.plausible_range();
                    prop_assert!(f.columns().get(var).iter().flatten()
                        .all(|v| v.is_finite() && (min..=max).contains(v)));
                }
                if let Ok(shifted) = r.with_time_shift(Duration::hours(shift_h)) {
                    let w = Window::new(shifted.axis().start(), 0, 1).unwrap();
                    let _ = block_on(shifted.fetch(&utc_site(), &w));
                }
            }
        }
    }
}
