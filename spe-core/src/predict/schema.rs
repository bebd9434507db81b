//! The JSON exchanged with an external prediction command: the request it
//! reads on stdin ([`request_json`]) and the output it writes
//! ([`parse_predictor_output`]). The format is documented on
//! [`CommandPredictor`](super::CommandPredictor).

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use serde_json::{Map, Value};

use crate::forecast::{Exog, Forecast, PredictionInterval, validate_levels};

use super::{PredictionRequest, PredictorError};

/// The version of the request and output JSON documented on
/// [`CommandPredictor`](super::CommandPredictor). A command may check the
/// request's `"version"`; an output may carry `"version": 1`.
pub const PREDICTION_SCHEMA_VERSION: u32 = 1;

/// The request as the JSON object a prediction command reads on stdin
/// (schema version [`PREDICTION_SCHEMA_VERSION`]).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{PredictionRequest, request_json};
///
/// let start = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
/// let request = PredictionRequest::builder(start, vec![1.0, 2.5]).horizon(3).build().unwrap();
/// let json = request_json(&request);
/// assert_eq!(json["version"], 1);
/// assert_eq!(json["start"], "2026-01-02T00:00:00Z");
/// assert_eq!(json["history_start"], "2026-01-01T22:00:00Z");
/// assert_eq!(json["step_s"], 3600);
/// assert_eq!(json["horizon"], 3);
/// assert_eq!(json["season_length"], serde_json::json!([24, 168]));
/// assert_eq!(json["levels"], serde_json::json!([80, 95]));
/// assert_eq!(json["history"], serde_json::json!([1.0, 2.5]));
/// assert!(json["exog"].is_null() && json["exog_future"].is_null());
/// ```
pub fn request_json(request: &PredictionRequest) -> Value {
    let rfc = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut o = Map::new();
    o.insert("version".into(), PREDICTION_SCHEMA_VERSION.into());
    o.insert("start".into(), rfc(request.start).into());
    o.insert("history_start".into(), rfc(request.history_start()).into());
    o.insert("step_s".into(), request.step_s().into());
    o.insert("horizon".into(), request.horizon.into());
    o.insert(
        "season_length".into(),
        Value::Array(request.periods.iter().map(|&p| p.into()).collect()),
    );
    o.insert(
        "levels".into(),
        Value::Array(request.levels.iter().map(|&l| level_value(l)).collect()),
    );
    o.insert(
        "history".into(),
        Value::Array(request.history.iter().map(|&v| number(v)).collect()),
    );
    o.insert("exog".into(), exog_value(request.exog.as_ref()));
    o.insert(
        "exog_future".into(),
        exog_value(request.exog_future.as_ref()),
    );
    Value::Object(o)
}

/// A level as an integer when it is one (`80`, not `80.0`), so that a
/// script's `f"lower_{level}"` is the key the output needs.
fn level_value(level: f64) -> Value {
    if level.fract() == 0.0 && level.abs() < 1e15 {
        #[allow(clippy::cast_possible_truncation)]
        Value::from(level as i64)
    } else {
        number(level)
    }
}

fn number(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn exog_value(exog: Option<&Exog>) -> Value {
    match exog {
        None => Value::Null,
        Some(exog) => Value::Object(
            exog.names()
                .iter()
                .map(|name| {
                    let column = exog.column(name).unwrap_or_default();
                    (
                        name.clone(),
                        Value::Array(column.iter().map(|&v| number(v)).collect()),
                    )
                })
                .collect(),
        ),
    }
}

/// The key for a level: `lower_80`, `upper_97.5`.
pub(crate) fn level_key(side: &str, level: f64) -> String {
    format!("{side}_{level}")
}

/// Longest accepted `"model"` name, in bytes.
const MAX_MODEL_NAME: usize = 200;

/// A JSON object's members in document order, equal keys kept (a map would
/// keep only one of them).
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// Parses and validates the output of a prediction command (the JSON it
/// wrote on stdout or in its output file) for a forecast of `horizon`
/// steps. `default_model` names the forecast when the output has no
/// `"model"`.
///
/// The rules are those of the output schema documented on
/// [`CommandPredictor`](super::CommandPredictor): a JSON object with `mean`,
/// optional `lower_<L>`/`upper_<L>` pairs, optional `model`, `version` (1)
/// and `meta` (ignored); any other key is rejected. Every array has exactly
/// `horizon` numbers; every interval contains the mean. Intervals at levels
/// not requested are kept here (the chain keeps only the requested ones).
/// The error says which key, which index and which value is wrong.
///
/// Never panics, whatever the bytes.
///
/// ```
/// use spe_core::parse_predictor_output;
///
/// let out = br#"{"mean":[10,11],"lower_80":[9,9.5],"upper_80":[11,12.5],"model":"gbm"}"#;
/// let f = parse_predictor_output(out, 2, "command").unwrap();
/// assert_eq!((f.model(), f.mean()), ("gbm", &[10.0, 11.0][..]));
/// assert_eq!(f.lower(80.0), Some(&[9.0, 9.5][..]));
///
/// let err = parse_predictor_output(br#"{"mean":[10,"n/a"]}"#, 2, "command").unwrap_err();
/// assert_eq!(err.to_string(), r#"unusable output: mean[1] is "n/a", not a number"#);
/// let err = parse_predictor_output(br#"{"mean":[10]}"#, 2, "command").unwrap_err();
/// assert!(err.to_string().contains("mean has 1 value, expected 2"));
/// assert!(parse_predictor_output(b"Traceback (most recent call last)", 2, "command").is_err());
/// let twice = br#"{"mean":[1,2],"mean":[3,4]}"#;
/// assert_eq!(parse_predictor_output(twice, 2, "command").unwrap_err().to_string(),
///            r#"unusable output: key "mean" given twice"#);
/// ```
pub fn parse_predictor_output(
    bytes: &[u8],
    horizon: usize,
    default_model: &str,
) -> Result<Forecast, PredictorError> {
    let bad = |m: String| Err(PredictorError::bad_output(m));
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return bad("empty output: expected a JSON object".into());
    }
    // `NaN`, `Infinity` (Python's `json.dumps` writes them) and numbers too
    // large for a double are not JSON: read with them marked, to say which
    // key and index hold one; the output is refused either way.
    let mut non_finite = None;
    let object = match serde_json::from_slice::<Members>(bytes) {
        Ok(Members(members)) => members,
        Err(_) => match mark_non_finite(bytes).and_then(|(marked, first)| {
            Some((serde_json::from_slice::<Members>(&marked).ok()?, first))
        }) {
            Some((Members(members), first)) => {
                non_finite = Some(first);
                members
            }
            // Not an object: say what it is.
            None => {
                return match serde_json::from_slice::<Value>(bytes) {
                    Err(e) => bad(format!("not JSON ({e}); it starts with {}", snippet(bytes))),
                    Ok(value) => bad(format!("expected a JSON object, got {}", type_name(&value))),
                };
            }
        },
    };
    let mut seen = std::collections::HashSet::with_capacity(object.len());
    let mut model = None;
    let mut mean = None;
    let mut intervals = IntervalColumns::default();
    for (key, value) in &object {
        // A JSON parser keeps one of two equal keys silently: which one the
        // script meant is unknown.
        if !seen.insert(key.as_str()) {
            return bad(format!("key {key:?} given twice"));
        }
        match key.as_str() {
            "version" => {
                if value.as_u64() != Some(u64::from(PREDICTION_SCHEMA_VERSION)) {
                    return bad(format!(
                        "version is {}, expected {PREDICTION_SCHEMA_VERSION}",
                        show(value)
                    ));
                }
            }
            "model" => match value {
                Value::String(s)
                    if marked_token(value).is_none()
                        && !s.trim().is_empty()
                        && s.len() <= MAX_MODEL_NAME
                        && !s.chars().any(char::is_control) =>
                {
                    model = Some(s.trim().to_owned());
                }
                _ => {
                    return bad(format!(
                        "model is {}: expected a non-empty string of at most {MAX_MODEL_NAME} bytes, \
                         without control characters",
                        show(value)
                    ));
                }
            },
            "meta" => {}
            "mean" => mean = Some(numbers(key, value, horizon)?),
            _ if IntervalColumns::is_bound_key(key) => {
                let values = numbers(key, value, horizon)?;
                intervals
                    .insert(key, values)
                    .map_err(PredictorError::bad_output)?;
            }
            _ => {
                return bad(format!(
                    "unknown key {key:?} (expected mean, lower_<level>, upper_<level>, model, version, meta)"
                ));
            }
        }
    }
    let Some(mean) = mean else {
        return bad("no \"mean\" key: expected the forecast's mean path".into());
    };
    if let Some(token) = non_finite {
        // Where no number is read (in `meta`): still not JSON.
        return bad(format!(
            "not JSON: it holds {token}, and JSON has no NaN or infinity"
        ));
    }
    let intervals = intervals
        .into_intervals()
        .map_err(PredictorError::bad_output)?;
    let model = model.unwrap_or_else(|| default_model.to_owned());
    Forecast::new(model, mean, intervals).map_err(|e| PredictorError::bad_output(e.to_string()))
}

/// The `lower_<L>`/`upper_<L>` columns of a predictor's output, gathered
/// into intervals by the rules of the output schema: `L` is a level in
/// percent in (0, 100) (`80`, `97.5`; `80.0` is the same level as `80`), each
/// side of a level given once, both sides given, the lower bound never above
/// the upper one. Used by [`parse_predictor_output`] and by the Python
/// binding's callable predictor, so both read the same keys the same way.
///
/// ```
/// use spe_core::IntervalColumns;
///
/// let mut columns = IntervalColumns::default();
/// assert!(IntervalColumns::is_bound_key("lower_80") && !IntervalColumns::is_bound_key("mean"));
/// columns.insert("lower_80", vec![9.0, 9.5]).unwrap();
/// columns.insert("upper_80", vec![11.0, 12.5]).unwrap();
/// let err = columns.insert("lower_80.0", vec![9.0, 9.5]).unwrap_err();
/// assert!(err.contains("given twice"));
/// let intervals = columns.into_intervals().unwrap();
/// assert_eq!((intervals.len(), intervals[0].level), (1, 80.0));
/// ```
#[derive(Debug, Default)]
pub struct IntervalColumns {
    /// level → (lower (key, values), upper (key, values))
    bounds: BTreeMap<LevelKey, (BoundColumn, BoundColumn)>,
}

type BoundColumn = Option<(String, Vec<f64>)>;

impl IntervalColumns {
    /// Whether `key` names a bound (`lower_…` or `upper_…`).
    pub fn is_bound_key(key: &str) -> bool {
        key.starts_with("lower_") || key.starts_with("upper_")
    }

    /// Add the column `key` (`lower_<L>` or `upper_<L>`).
    ///
    /// # Errors
    ///
    /// A message if `key` is not a bound key, `L` is not a level in
    /// (0, 100), or that side of the level was already given.
    pub fn insert(&mut self, key: &str, values: Vec<f64>) -> Result<(), String> {
        let Some((side, level)) = key
            .strip_prefix("lower_")
            .map(|l| ("lower", l))
            .or_else(|| key.strip_prefix("upper_").map(|l| ("upper", l)))
        else {
            return Err(format!("{key:?} is not lower_<level> or upper_<level>"));
        };
        let Ok(level) = level.parse::<f64>() else {
            return Err(format!(
                "key {key:?}: {level:?} is not a level in percent (e.g. {side}_80)"
            ));
        };
        if validate_levels(&[level]).is_err() {
            return Err(format!("key {key:?}: level {level} is outside (0, 100)"));
        }
        let entry = self.bounds.entry(LevelKey(level)).or_default();
        let slot = if side == "lower" {
            &mut entry.0
        } else {
            &mut entry.1
        };
        if let Some((other, _)) = slot {
            return Err(format!("level {level} given twice ({other:?} and {key:?})"));
        }
        *slot = Some((key.to_owned(), values));
        Ok(())
    }

    /// The intervals, by increasing level.
    ///
    /// # Errors
    ///
    /// A message if a level has one side only, or a lower bound is above
    /// its upper bound.
    pub fn into_intervals(self) -> Result<Vec<PredictionInterval>, String> {
        let mut intervals = Vec::with_capacity(self.bounds.len());
        for (LevelKey(level), (lower, upper)) in self.bounds {
            let ((lower_key, lower), (upper_key, upper)) = match (lower, upper) {
                (Some(l), Some(u)) => (l, u),
                (Some((k, _)), None) => {
                    return Err(format!(
                        "{k:?} has no matching {:?}",
                        level_key("upper", level)
                    ));
                }
                (None, Some((k, _))) => {
                    return Err(format!(
                        "{k:?} has no matching {:?}",
                        level_key("lower", level)
                    ));
                }
                (None, None) => continue,
            };
            if let Some((i, (lo, hi))) = lower
                .iter()
                .zip(&upper)
                .enumerate()
                .find(|(_, (lo, hi))| lo > hi)
            {
                return Err(format!(
                    "{lower_key}[{i}] = {lo} is above {upper_key}[{i}] = {hi}"
                ));
            }
            intervals.push(PredictionInterval {
                level,
                lower,
                upper,
            });
        }
        Ok(intervals)
    }
}

/// A level as a map key, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LevelKey(f64);

impl Eq for LevelKey {}

impl PartialOrd for LevelKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LevelKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

fn numbers(key: &str, value: &Value, horizon: usize) -> Result<Vec<f64>, PredictorError> {
    let Value::Array(items) = value else {
        return Err(PredictorError::bad_output(format!(
            "{key} is {}: expected an array of {horizon} numbers",
            show(value)
        )));
    };
    if items.len() != horizon {
        return Err(PredictorError::bad_output(format!(
            "{key} has {} value{}, expected {horizon} (the horizon)",
            items.len(),
            if items.len() == 1 { "" } else { "s" }
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v.as_f64() {
            Some(x) if x.is_finite() => Ok(x),
            _ => match marked_token(v) {
                Some(token) => Err(PredictorError::bad_output(format!(
                    "{key}[{i}] is {token}: JSON has no NaN or infinity (write a number, \
                     or leave the key out)"
                ))),
                None => Err(PredictorError::bad_output(format!(
                    "{key}[{i}] is {}, not a number",
                    show(v)
                ))),
            },
        })
        .collect()
}

/// Starts the string [`mark_non_finite`] puts in place of a non-finite
/// number (a NUL: no JSON text a script writes has one unescaped).
const NON_FINITE_MARK: &str = "\u{0}non-finite:";

/// `bytes` with each bare token outside strings that reads as a number but
/// not a finite one (`NaN`, `Infinity`, `-Infinity`, `1e999`) replaced by a
/// string marking it, and the first such token; `None` if there is none.
fn mark_non_finite(bytes: &[u8]) -> Option<(Vec<u8>, String)> {
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut first = None;
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            match b {
                b'\\' => {
                    if let Some(&next) = bytes.get(i + 1) {
                        out.push(next);
                        i += 1;
                    }
                }
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let in_token = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.');
        if b == b'"' {
            in_string = true;
            out.push(b);
            i += 1;
        } else if in_token(b) {
            let start = i;
            while i < bytes.len() && in_token(bytes[i]) {
                i += 1;
            }
            let token = &bytes[start..i];
            let text = std::str::from_utf8(token).unwrap_or_default();
            if text.parse::<f64>().is_ok_and(|x| !x.is_finite()) {
                // The marker as a JSON string (its NUL escaped).
                let marker = Value::String(format!("{NON_FINITE_MARK}{text}"));
                out.extend_from_slice(marker.to_string().as_bytes());
                first.get_or_insert_with(|| text.to_owned());
            } else {
                out.extend_from_slice(token);
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    first.map(|first| (out, first))
}

/// The token a [`mark_non_finite`] marker stands for.
fn marked_token(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => s.strip_prefix(NON_FINITE_MARK),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a JSON value for an error message.
fn show(v: &Value) -> String {
    if let Some(token) = marked_token(v) {
        return token.to_owned();
    }
    match v {
        Value::Array(_) | Value::Object(_) => type_name(v).to_owned(),
        _ => truncate(&v.to_string(), 60),
    }
}

/// The first bytes of a non-JSON output, quoted, for an error message.
fn snippet(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(60)];
    let text = String::from_utf8_lossy(head);
    let more = if bytes.len() > head.len() { "…" } else { "" };
    format!("{:?}{more}", text.trim())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
