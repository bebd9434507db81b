//! The request JSON and the output validator.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::super::{PredictionRequest, parse_predictor_output, request_json};
use super::{good_output, t0};
use crate::forecast::Exog;

fn err(bytes: &str, horizon: usize) -> String {
    parse_predictor_output(bytes.as_bytes(), horizon, "cmd")
        .unwrap_err()
        .to_string()
}

#[test]
fn a_good_output_is_accepted_with_its_intervals_and_model() {
    let f = parse_predictor_output(good_output(3, "gbm").as_bytes(), 3, "cmd").unwrap();
    assert_eq!(f.model(), "gbm");
    assert_eq!(f.mean(), &[100.0, 101.0, 102.0]);
    assert_eq!(f.lower(80.0).unwrap(), &[95.0, 96.0, 97.0]);
    assert_eq!(f.upper(95.0).unwrap(), &[109.0, 110.0, 111.0]);
    // No model: the predictor's name. Version 1, meta and odd levels are fine.
    let f = parse_predictor_output(
        br#"{"version":1,"meta":{"x":[1,2]},"mean":[1],"lower_97.5":[0],"upper_97.5":[2]}"#,
        1,
        "cmd",
    )
    .unwrap();
    assert_eq!(f.model(), "cmd");
    assert_eq!(f.lower(97.5).unwrap(), &[0.0]);
}

#[test]
fn every_defect_is_named_with_key_index_and_value() {
    let cases: &[(&str, &str)] = &[
        ("", "empty output"),
        ("  \n", "empty output"),
        ("Traceback (most recent call last):", "not JSON"),
        ("[1,2]", "expected a JSON object, got an array"),
        (r#"{"mean":[1,2]} trailing"#, "not JSON"),
        (r#"{"lower_80":[1,2],"upper_80":[2,3]}"#, "no \"mean\" key"),
        (r#"{"mean":[1,2,3]}"#, "mean has 3 values, expected 2"),
        (r#"{"mean":[1]}"#, "mean has 1 value, expected 2"),
        (r#"{"mean":[1,"NaN"]}"#, r#"mean[1] is "NaN", not a number"#),
        (r#"{"mean":[null,1]}"#, "mean[0] is null, not a number"),
        // Not JSON, but the key and index are named (Python's json.dumps
        // writes NaN and Infinity).
        (
            r#"{"mean":[1,1e999]}"#,
            "mean[1] is 1e999: JSON has no NaN or infinity",
        ),
        (r#"{"mean":[1,NaN]}"#, "mean[1] is NaN: JSON has no NaN"),
        (
            r#"{"mean": [-Infinity, 2], "model": "a \" NaN"}"#,
            "mean[0] is -Infinity: JSON has no NaN",
        ),
        (
            r#"{"mean":[1,2],"lower_95":[0,NaN],"upper_95":[2,3]}"#,
            "lower_95[1] is NaN",
        ),
        // Where no number is read, still refused.
        (
            r#"{"mean":[1,2],"meta":{"loss":NaN}}"#,
            "not JSON: it holds NaN, and JSON has no NaN or infinity",
        ),
        (r#"{"mean":[1,2],"model":Infinity}"#, "model is Infinity"),
        (r#"{"mean":[1,NaN] trailing"#, "not JSON"),
        (
            r#"{"mean":"1,2"}"#,
            "mean is \"1,2\": expected an array of 2 numbers",
        ),
        (
            r#"{"mean":[1,2],"lower_80":[0,3],"upper_80":[2,2.5]}"#,
            "lower_80[1] = 3 is above upper_80[1] = 2.5",
        ),
        (
            r#"{"mean":[1,2],"lower_80":[0,1]}"#,
            "\"lower_80\" has no matching \"upper_80\"",
        ),
        (
            r#"{"mean":[1,2],"upper_80":[2,3]}"#,
            "\"upper_80\" has no matching \"lower_80\"",
        ),
        (
            r#"{"mean":[1,2],"lower_80":[0,1],"upper_80":[2,3],"lower_80.0":[0,1]}"#,
            "level 80 given twice",
        ),
        (
            r#"{"mean":[1,2],"lower_80":[0,1],"upper_80":[2,3],"lower_80":[0,1.5]}"#,
            "key \"lower_80\" given twice",
        ),
        (
            r#"{"model":"a","mean":[1,2],"model":"b"}"#,
            "key \"model\" given twice",
        ),
        (
            r#"{"mean":[1,2],"lower80":[0,1]}"#,
            "unknown key \"lower80\"",
        ),
        (r#"{"mean":[1,2],"means":[0,1]}"#, "unknown key \"means\""),
        (
            r#"{"mean":[1,2],"lower_abc":[0,1]}"#,
            "is not a level in percent",
        ),
        (
            r#"{"mean":[1,2],"lower_100":[0,1],"upper_100":[2,3]}"#,
            "outside (0, 100)",
        ),
        (r#"{"mean":[1,2],"lower_nan":[0,1]}"#, "outside (0, 100)"),
        (r#"{"mean":[1,2],"model":""}"#, "model is \"\""),
        (r#"{"mean":[1,2],"model":7}"#, "model is 7"),
        (
            r#"{"mean":[1,2],"model":"gbm\nv3"}"#,
            "without control characters",
        ),
        (r#"{"mean":[1,2],"version":2}"#, "version is 2, expected 1"),
        (
            r#"{"mean":[1,2],"lower_80":[1.5,1],"upper_80":[3,3]}"#,
            "does not contain the mean",
        ),
    ];
    for (output, expected) in cases {
        let message = err(output, 2);
        assert!(
            message.contains(expected),
            "{output:?}: {message:?} does not say {expected:?}"
        );
        assert!(message.starts_with("unusable output: "), "{message}");
    }
}

#[test]
fn request_json_carries_everything_the_command_needs() {
    let exog = Exog::new(vec![("temperature_2m".into(), vec![1.0, 2.0, 3.0])]).unwrap();
    let future = Exog::new(vec![("temperature_2m".into(), vec![4.0, 5.0])]).unwrap();
    let request = PredictionRequest::builder(t0(), vec![10.0, 11.0, 12.5])
        .horizon(2)
        .levels(vec![80.0, 97.5])
        .periods(vec![24])
        .exog(exog, future)
        .build()
        .unwrap();
    let json = request_json(&request);
    assert_eq!(
        json,
        json!({
            "version": 1,
            "start": "2026-11-25T00:00:00Z",
            "history_start": "2026-11-24T21:00:00Z",
            "step_s": 3600,
            "horizon": 2,
            "season_length": [24],
            "levels": [80, 97.5],
            "history": [10.0, 11.0, 12.5],
            "exog": {"temperature_2m": [1.0, 2.0, 3.0]},
            "exog_future": {"temperature_2m": [4.0, 5.0]},
        })
    );
}

#[test]
fn invalid_requests_are_refused_with_a_reason() {
    let ok = || PredictionRequest::builder(t0(), vec![1.0; 48]);
    let cases: Vec<(Result<PredictionRequest, _>, &str)> = vec![
        (ok().horizon(0).build(), "horizon 0"),
        (ok().levels(vec![80.0, 80.0]).build(), "given twice"),
        (ok().levels(vec![100.0]).build(), "outside (0, 100)"),
        (ok().periods(vec![1]).build(), "period 1"),
        (
            ok().step(std::time::Duration::from_millis(1500)).build(),
            "whole number of seconds",
        ),
        (PredictionRequest::builder(t0(), vec![]).build(), "empty"),
        (
            PredictionRequest::builder(t0(), vec![1.0, f64::INFINITY]).build(),
            "history[1] is inf",
        ),
        (
            ok().exog(
                Exog::new(vec![("t".into(), vec![1.0; 47])]).unwrap(),
                Exog::new(vec![("t".into(), vec![1.0; 48])]).unwrap(),
            )
            .build(),
            "47 rows for 48 observations",
        ),
        (
            ok().exog(
                Exog::new(vec![("t".into(), vec![1.0; 48])]).unwrap(),
                Exog::new(vec![("u".into(), vec![1.0; 48])]).unwrap(),
            )
            .build(),
            "differ",
        ),
        (
            ok().step(std::time::Duration::from_secs(u64::MAX / 2))
                .build(),
            "does not fit in a date",
        ),
    ];
    for (result, expected) in cases {
        let message = result.unwrap_err().to_string();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
}

/// A well-formed output and the values it holds.
#[derive(Debug, Clone)]
struct WellFormed {
    horizon: usize,
    mean: Vec<f64>,
    /// (level, lower widths, upper widths)
    intervals: Vec<(f64, Vec<f64>, Vec<f64>)>,
    model: Option<String>,
}

impl WellFormed {
    fn json(&self) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("mean".into(), json!(self.mean));
        for (level, below, above) in &self.intervals {
            let lower: Vec<f64> = self.mean.iter().zip(below).map(|(m, w)| m - w).collect();
            let upper: Vec<f64> = self.mean.iter().zip(above).map(|(m, w)| m + w).collect();
            o.insert(format!("lower_{level}"), json!(lower));
            o.insert(format!("upper_{level}"), json!(upper));
        }
        if let Some(model) = &self.model {
            o.insert("model".into(), json!(model));
        }
        Value::Object(o)
    }
}

fn well_formed() -> impl Strategy<Value = WellFormed> {
    (1usize..12).prop_flat_map(|horizon| {
        let values = prop::collection::vec(-1e6f64..1e6, horizon);
        let widths = || prop::collection::vec(0f64..1e3, horizon);
        let interval = (
            prop::sample::select(vec![50.0_f64, 80.0, 90.0, 95.0, 97.5, 99.0]),
            widths(),
            widths(),
        );
        (
            values,
            prop::collection::vec(interval, 0..3),
            prop::option::of("[a-z][a-z0-9_()]{0,15}"),
        )
            .prop_map(move |(mean, mut intervals, model)| {
                intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
                intervals.dedup_by(|a, b| a.0 == b.0);
                // Nested: each level's widths add to the level below's.
                for k in 1..intervals.len() {
                    let (narrower, wider) = intervals.split_at_mut(k);
                    let (_, below, above) = &narrower[k - 1];
                    for (w, n) in wider[0].1.iter_mut().zip(below) {
                        *w += n;
                    }
                    for (w, n) in wider[0].2.iter_mut().zip(above) {
                        *w += n;
                    }
                }
                WellFormed {
                    horizon,
                    mean,
                    intervals,
                    model,
                }
            })
    })
}

/// One defect that makes a well-formed output invalid.
#[derive(Debug, Clone)]
enum Defect {
    DropMeanValue,
    ExtraMeanValue,
    StringValue(usize),
    NullValue(usize),
    UnknownKey(String),
    MissingUpper,
    SwapBounds(usize),
    NotAnObject,
    Truncate(usize),
}

fn defect() -> impl Strategy<Value = Defect> {
    prop_oneof![
        Just(Defect::DropMeanValue),
        Just(Defect::ExtraMeanValue),
        any::<usize>().prop_map(Defect::StringValue),
        any::<usize>().prop_map(Defect::NullValue),
        "[a-z]{1,8}"
            .prop_filter("a known key", |k| !["mean", "model", "meta", "version"]
                .contains(&k.as_str()))
            .prop_map(Defect::UnknownKey),
        Just(Defect::MissingUpper),
        any::<usize>().prop_map(Defect::SwapBounds),
        Just(Defect::NotAnObject),
        any::<usize>().prop_map(Defect::Truncate),
    ]
}

/// Apply `defect`; `None` if it does not apply to this output (e.g. no interval).
fn apply(w: &WellFormed, defect: &Defect) -> Option<String> {
    let mut v = w.json();
    let o = v.as_object_mut()?;
    match defect {
        Defect::DropMeanValue => {
            o.get_mut("mean")?.as_array_mut()?.pop();
        }
        Defect::ExtraMeanValue => o.get_mut("mean")?.as_array_mut()?.push(json!(1.0)),
        Defect::StringValue(i) => {
            let mean = o.get_mut("mean")?.as_array_mut()?;
            let i = i % mean.len();
            mean[i] = json!(mean[i].to_string());
        }
        Defect::NullValue(i) => {
            let mean = o.get_mut("mean")?.as_array_mut()?;
            let i = i % mean.len();
            mean[i] = Value::Null;
        }
        Defect::UnknownKey(k) => {
            o.insert(k.clone(), json!(1));
        }
        Defect::MissingUpper => {
            let (level, _, _) = w.intervals.first()?;
            o.remove(&format!("upper_{level}"))?;
        }
        Defect::SwapBounds(i) => {
            // Needs a step where the interval has width, so the swap breaks it.
            let (level, below, above) = w.intervals.first()?;
            let steps: Vec<usize> = (0..w.horizon)
                .filter(|&s| below[s] + above[s] > 1e-3)
                .collect();
            let s = *steps.get(i % steps.len().max(1))?;
            let lk = format!("lower_{level}");
            let uk = format!("upper_{level}");
            let lo = o.get(&lk)?[s].clone();
            let hi = o.get(&uk)?[s].clone();
            o.get_mut(&lk)?.as_array_mut()?[s] = hi;
            o.get_mut(&uk)?.as_array_mut()?[s] = lo;
        }
        Defect::NotAnObject => return Some(Value::Array(vec![v.clone()]).to_string()),
        Defect::Truncate(at) => {
            let text = v.to_string();
            let at = at % text.len();
            return Some(text[..at].to_owned());
        }
    }
    Some(v.to_string())
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0))
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), horizon in 0usize..5) {
        let _ = parse_predictor_output(&bytes, horizon, "cmd");
    }

    #[test]
    fn json_like_text_never_panics(text in r#"[\[\]{}",:0-9a-z_.eE+\- ]{0,200}"#, horizon in 0usize..5) {
        let _ = parse_predictor_output(text.as_bytes(), horizon, "cmd");
    }

    #[test]
    fn well_formed_outputs_are_accepted_with_their_values(w in well_formed()) {
        let text = w.json().to_string();
        let f = parse_predictor_output(text.as_bytes(), w.horizon, "cmd").unwrap();
        prop_assert!(close(f.mean(), &w.mean));
        prop_assert_eq!(f.intervals().len(), w.intervals.len());
        for (level, below, _) in &w.intervals {
            let lower: Vec<f64> = w.mean.iter().zip(below).map(|(m, d)| m - d).collect();
            prop_assert!(close(f.lower(*level).unwrap(), &lower));
        }
        prop_assert_eq!(f.model(), w.model.as_deref().unwrap_or("cmd"));
        // Another horizon is refused.
        prop_assert!(parse_predictor_output(text.as_bytes(), w.horizon + 1, "cmd").is_err());
    }

    #[test]
    fn every_defect_is_rejected(w in well_formed(), d in defect()) {
        if let Some(text) = apply(&w, &d) {
            let result = parse_predictor_output(text.as_bytes(), w.horizon, "cmd");
            prop_assert!(result.is_err(), "{:?} accepted: {}", d, text);
        }
    }
}
