//! How the CSV downloads (`/api/export.csv`, `/api/history?format=csv`)
//! are written: their dialect, chosen by `?locale=`, and their cells.
//!
//! - `en` (the default): `,` between fields, `.` in numbers, no byte-order
//!   mark: what most programs read;
//! - `fr`: `;` between fields, `,` in numbers, a UTF-8 byte-order mark: what
//!   a spreadsheet in a French locale opens in columns, with numbers and
//!   `°C` intact. The dashboard's buttons ask for it when the page is in
//!   French.
//!
//! Times are RFC 3339 in both. Text cells a spreadsheet would take for a
//! formula are written as text ([`text_cell`]).
//!
//! ```
//! use spe_server_example::csv_dialect::CsvLocale;
//!
//! let mut out = CsvLocale::Fr.writer(0);
//! out.write_record(["time", "value"]).unwrap();
//! out.write_record(["2026-01-15T10:00:00Z".to_owned(), CsvLocale::Fr.number(Some(-2.5))])
//!     .unwrap();
//! let bytes = out.into_inner().unwrap();
//! assert_eq!(String::from_utf8(bytes).unwrap(), "\u{feff}time;value\n2026-01-15T10:00:00Z;-2,5\n");
//! assert_eq!(CsvLocale::En.number(Some(-2.5)), "-2.5");
//! assert_eq!(CsvLocale::En.number(Some(f64::NAN)), "");
//! ```

use std::borrow::Cow;

use serde::Deserialize;

/// The dialect of a CSV download.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CsvLocale {
    /// `,` between fields, `.` in numbers, no byte-order mark.
    #[default]
    En,
    /// `;` between fields, `,` in numbers, a UTF-8 byte-order mark.
    Fr,
}

impl CsvLocale {
    /// A writer of this dialect into memory (`capacity` bytes reserved),
    /// the byte-order mark already written where the dialect has one.
    pub fn writer(self, capacity: usize) -> csv::Writer<Vec<u8>> {
        let mut buffer = Vec::with_capacity(capacity + 3);
        let delimiter = match self {
            CsvLocale::En => b',',
            CsvLocale::Fr => {
                buffer.extend_from_slice("\u{feff}".as_bytes());
                b';'
            }
        };
        csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_writer(buffer)
    }

    /// A number cell: empty for a missing or non-finite value, else the
    /// shortest form that reads back as the same number, with this
    /// dialect's decimal separator.
    pub fn number(self, value: Option<f64>) -> String {
        let Some(v) = value.filter(|v| v.is_finite()) else {
            return String::new();
        };
        let text = v.to_string();
        match self {
            CsvLocale::En => text,
            CsvLocale::Fr => text.replace('.', ","),
        }
    }
}

/// A text cell a spreadsheet will not run: one beginning with `=`, `+`,
/// `-`, `@`, a tab or a carriage return (a formula to Excel and LibreOffice,
/// e.g. a model name `=HYPERLINK(…)` from a prediction command) gets a `'`
/// in front, which spreadsheets show as text. Numbers are not text cells.
///
/// ```
/// use spe_server_example::csv_dialect::text_cell;
/// assert_eq!(text_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
/// assert_eq!(text_cell("-1+2"), "'-1+2");
/// assert_eq!(text_cell("auto(mstl)"), "auto(mstl)");
/// ```
pub fn text_cell(value: &str) -> Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}
