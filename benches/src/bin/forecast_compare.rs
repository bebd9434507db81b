//! The Rust side of the forecasting comparison (`benches/compare/`).
//!
//! Two subcommands:
//!
//! - `synth OUT.csv`: one year (8760 hours) of the synthetic generator's
//!   demand (default seed, Paris, hourly from 2025-01-01T00:00Z), written as a
//!   single-column CSV with header `y`.
//! - `backtest INPUT.csv --periods 48,336`: the comparison's rolling-origin
//!   protocol for SP-E's models (`auto`, `seasonal_naive`, `mstl`,
//!   `auto_ets`): origin k = n − h·(origins − k) for k in 0..origins, fit on
//!   every point before the origin, forecast h steps with 80 % and 95 %
//!   intervals, refit at each origin. Prints JSON to stdout: the forecasts
//!   and the wall time of fit + predict at each origin. Metrics are computed
//!   by the Python driver, with the same code for every model.
//!
//! Everything runs on the calling thread. Each model is first run once on
//! the first origin (its time is reported as `cold_ms`) before the timed
//! origins, the same warm-up the driver gives the Python peers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use serde::Serialize;
use spe_core::{
    AutoEts, AutoModel, DynFit, Forecast, Generator, History, Mstl, SeasonalNaive, Site, TimeAxis,
};

const USAGE: &str = "\
usage:
  forecast_compare synth OUT.csv
  forecast_compare backtest INPUT.csv --periods P1,P2 [--horizon 48] [--origins 8]
                   [--models auto,seasonal_naive,mstl,mstl_loess,auto_ets]
                   (also: mstl_short) [--full-repeats 0]

synth     writes one year of hourly synthetic demand (default seed, Paris, 2025)
backtest  rolling-origin backtest of SP-E's models; JSON on stdout
          --full-repeats N also times N fits + forecasts on the whole series";

/// The prediction-interval levels every model is asked for.
const LEVELS: [f64; 2] = [80.0, 95.0];

/// Everything that can go wrong before or around the models (a model's own
/// error is reported in the JSON, not here).
#[derive(Debug)]
enum CompareError {
    Usage(String),
    Io(PathBuf, std::io::Error),
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    Data(String),
    Json(serde_json::Error),
}

impl fmt::Display for CompareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompareError::Usage(m) => write!(f, "{m}\n\n{USAGE}"),
            CompareError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            CompareError::Parse { path, line, reason } => {
                write!(f, "{}:{line}: {reason}", path.display())
            }
            CompareError::Data(m) => f.write_str(m),
            CompareError::Json(e) => write!(f, "JSON output: {e}"),
        }
    }
}

impl std::error::Error for CompareError {}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("forecast_compare: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), CompareError> {
    match args.first().map(String::as_str) {
        Some("synth") => match &args[1..] {
            [out] => synth(Path::new(out)),
            _ => Err(CompareError::Usage(
                "synth takes one argument, OUT.csv".into(),
            )),
        },
        Some("backtest") => {
            let opts = BacktestOptions::parse(&args[1..])?;
            let y = read_series(&opts.input)?;
            let report = backtest(&opts, &y)?;
            let json = serde_json::to_string(&report).map_err(CompareError::Json)?;
            println!("{json}");
            Ok(())
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(CompareError::Usage(format!("unknown command {other:?}"))),
        None => Err(CompareError::Usage("no command".into())),
    }
}

/// One year of hourly demand for Paris from the generator's default seed.
fn synthetic_year() -> Result<Vec<f64>, CompareError> {
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .ok_or_else(|| CompareError::Data("2025-01-01T00:00Z is not a valid instant".into()))?;
    let axis =
        TimeAxis::new(start, 8760).map_err(|e| CompareError::Data(format!("time axis: {e}")))?;
    let frames = Generator::default().generate(&Site::paris(), axis, start);
    frames
        .energy
        .demand_mw()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.ok_or_else(|| CompareError::Data(format!("synthetic demand missing at hour {i}")))
        })
        .collect()
}

fn synth(out: &Path) -> Result<(), CompareError> {
    let y = synthetic_year()?;
    let mut text = String::with_capacity(y.len() * 20);
    text.push_str("y\n");
    for v in &y {
        text.push_str(&format!("{v}\n"));
    }
    let tmp = out.with_extension("csv.tmp");
    std::fs::write(&tmp, text).map_err(|e| CompareError::Io(tmp.clone(), e))?;
    std::fs::rename(&tmp, out).map_err(|e| CompareError::Io(out.to_path_buf(), e))
}

/// A single-column CSV with header `y`; every value must be a finite number.
fn read_series(path: &Path) -> Result<Vec<f64>, CompareError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CompareError::Io(path.to_path_buf(), e))?;
    let parse_err = |line: usize, reason: String| CompareError::Parse {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.trim() == "y" => {}
        Some((_, header)) => {
            return Err(parse_err(
                1,
                format!("expected header \"y\", found {header:?}"),
            ));
        }
        None => return Err(parse_err(1, "empty file".into())),
    }
    let mut y = Vec::new();
    for (i, line) in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: f64 = line
            .parse()
            .map_err(|e| parse_err(i + 1, format!("{line:?} is not a number: {e}")))?;
        if !v.is_finite() {
            return Err(parse_err(i + 1, format!("{line:?} is not finite")));
        }
        y.push(v);
    }
    Ok(y)
}

#[derive(Debug)]
struct BacktestOptions {
    input: PathBuf,
    periods: Vec<usize>,
    horizon: usize,
    origins: usize,
    models: Vec<String>,
    full_repeats: usize,
}

impl BacktestOptions {
    fn parse(args: &[String]) -> Result<Self, CompareError> {
        let mut input = None;
        let mut periods = None;
        let mut horizon = 48;
        let mut origins = 8;
        let mut models = vec![
            "auto".to_string(),
            "seasonal_naive".to_string(),
            "mstl".to_string(),
            "mstl_loess".to_string(),
            "auto_ets".to_string(),
        ];
        let mut full_repeats = 0;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| CompareError::Usage(format!("{name} needs a value")))
            };
            match arg.as_str() {
                "--periods" => periods = Some(parse_list(&value("--periods")?, "--periods")?),
                "--horizon" => horizon = parse_count(&value("--horizon")?, "--horizon")?,
                "--origins" => origins = parse_count(&value("--origins")?, "--origins")?,
                "--full-repeats" => {
                    full_repeats = value("--full-repeats")?.parse().map_err(|_| {
                        CompareError::Usage("--full-repeats takes a whole number".into())
                    })?
                }
                "--models" => {
                    models = value("--models")?.split(',').map(str::to_string).collect();
                    for m in &models {
                        model_named(m)?;
                    }
                }
                flag if flag.starts_with("--") => {
                    return Err(CompareError::Usage(format!("unknown option {flag}")));
                }
                path if input.is_none() => input = Some(PathBuf::from(path)),
                extra => {
                    return Err(CompareError::Usage(format!(
                        "unexpected argument {extra:?}"
                    )));
                }
            }
        }
        Ok(BacktestOptions {
            input: input.ok_or_else(|| CompareError::Usage("backtest needs INPUT.csv".into()))?,
            periods: periods
                .ok_or_else(|| CompareError::Usage("backtest needs --periods".into()))?,
            horizon,
            origins,
            models,
            full_repeats,
        })
    }
}

fn parse_count(s: &str, name: &str) -> Result<usize, CompareError> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(CompareError::Usage(format!(
            "{name} takes a positive whole number, got {s:?}"
        ))),
    }
}

fn parse_list(s: &str, name: &str) -> Result<Vec<usize>, CompareError> {
    s.split(',').map(|p| parse_count(p.trim(), name)).collect()
}

fn model_named(name: &str) -> Result<Box<dyn DynFit>, CompareError> {
    Ok(match name {
        "auto" => Box::new(AutoModel::default()),
        "seasonal_naive" => Box::new(SeasonalNaive::default()),
        "mstl" => Box::new(Mstl::default()),
        "mstl_short" => Box::new(Mstl::short()),
        "mstl_loess" => Box::new(Mstl::loess()),
        "auto_ets" => Box::new(AutoEts::default()),
        other => {
            return Err(CompareError::Usage(format!(
                "unknown model {other:?} (auto, seasonal_naive, mstl, mstl_short, mstl_loess, auto_ets)"
            )));
        }
    })
}

/// The JSON printed by `backtest`.
#[derive(Debug, Serialize)]
struct Report {
    input: String,
    n: usize,
    periods: Vec<usize>,
    horizon: usize,
    origins: Vec<usize>,
    levels: Vec<f64>,
    models: Vec<ModelRun>,
}

#[derive(Debug, Serialize)]
struct ModelRun {
    name: String,
    /// Fit + predict on the first origin, the first call in this process.
    cold_ms: Option<f64>,
    folds: Vec<FoldRun>,
    /// Fit + predict on the whole series, `--full-repeats` times.
    full_ms: Vec<f64>,
    /// The first error met, if any.
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct FoldRun {
    origin: usize,
    fit_predict_ms: f64,
    forecast: Forecast,
}

/// Fit on `y` and forecast `horizon` steps; the wall time of both, in ms.
fn fit_predict(
    model: &dyn DynFit,
    y: &[f64],
    periods: &[usize],
    horizon: usize,
) -> Result<(f64, Forecast), String> {
    let start = Instant::now();
    let fitted = model
        .fit_dyn(&History::new(y, periods))
        .map_err(|e| e.to_string())?;
    let forecast = fitted
        .predict(horizon, &LEVELS, None)
        .map_err(|e| e.to_string())?;
    Ok((start.elapsed().as_secs_f64() * 1e3, forecast))
}

fn backtest(opts: &BacktestOptions, y: &[f64]) -> Result<Report, CompareError> {
    let needed = opts.horizon * opts.origins;
    if y.len() <= needed {
        return Err(CompareError::Data(format!(
            "{}: {} points, need more than horizon × origins = {needed}",
            opts.input.display(),
            y.len()
        )));
    }
    let origins: Vec<usize> = (0..opts.origins)
        .map(|k| y.len() - opts.horizon * (opts.origins - k))
        .collect();
    let mut models = Vec::with_capacity(opts.models.len());
    for name in &opts.models {
        let model = model_named(name)?;
        let mut run = ModelRun {
            name: name.clone(),
            cold_ms: None,
            folds: Vec::with_capacity(origins.len()),
            full_ms: Vec::new(),
            error: None,
        };
        match fit_predict(
            model.as_ref(),
            &y[..origins[0]],
            &opts.periods,
            opts.horizon,
        ) {
            Ok((ms, _)) => run.cold_ms = Some(ms),
            Err(e) => run.error = Some(e),
        }
        if run.error.is_none() {
            for &origin in &origins {
                match fit_predict(model.as_ref(), &y[..origin], &opts.periods, opts.horizon) {
                    Ok((fit_predict_ms, forecast)) => run.folds.push(FoldRun {
                        origin,
                        fit_predict_ms,
                        forecast,
                    }),
                    Err(e) => {
                        run.error = Some(format!("origin {origin}: {e}"));
                        break;
                    }
                }
            }
        }
        if run.error.is_none() {
            for _ in 0..opts.full_repeats {
                match fit_predict(model.as_ref(), y, &opts.periods, opts.horizon) {
                    Ok((ms, _)) => run.full_ms.push(ms),
                    Err(e) => {
                        run.error = Some(format!("whole series: {e}"));
                        break;
                    }
                }
            }
        }
        models.push(run);
    }
    Ok(Report {
        input: opts.input.display().to_string(),
        n: y.len(),
        periods: opts.periods.clone(),
        horizon: opts.horizon,
        origins,
        levels: LEVELS.to_vec(),
        models,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options_parse_and_reject_bad_input() {
        let o = BacktestOptions::parse(&args("x.csv --periods 48,336 --origins 3")).unwrap();
        assert_eq!(o.periods, vec![48, 336]);
        assert_eq!((o.horizon, o.origins), (48, 3));
        assert!(BacktestOptions::parse(&args("x.csv")).is_err());
        assert!(BacktestOptions::parse(&args("x.csv --periods 0")).is_err());
        assert!(BacktestOptions::parse(&args("x.csv --periods 24 --models nope")).is_err());
        assert!(BacktestOptions::parse(&args("x.csv --periods 24 --horizon")).is_err());
        assert!(BacktestOptions::parse(&args("x.csv y.csv --periods 24")).is_err());
    }

    #[test]
    fn backtest_uses_the_last_non_overlapping_windows() {
        let y: Vec<f64> = (0..24 * 30)
            .map(|t| 100.0 + 10.0 * ((t % 24) as f64).sin())
            .collect();
        let opts = BacktestOptions::parse(&args(
            "mem --periods 24 --horizon 24 --origins 3 --models seasonal_naive --full-repeats 2",
        ))
        .unwrap();
        let r = backtest(&opts, &y).unwrap();
        assert_eq!(r.origins, vec![y.len() - 72, y.len() - 48, y.len() - 24]);
        let m = &r.models[0];
        assert_eq!(m.error, None);
        assert_eq!(m.folds.len(), 3);
        assert_eq!(m.full_ms.len(), 2);
        // A pure daily cycle: the seasonal naive forecast is exact.
        for f in &m.folds {
            let actual = &y[f.origin..f.origin + 24];
            assert_eq!(f.forecast.mean(), actual);
            assert!(f.forecast.lower(95.0).is_some());
        }
    }

    #[test]
    fn backtest_refuses_a_series_too_short_for_the_windows() {
        let opts = BacktestOptions::parse(&args("mem --periods 24")).unwrap();
        assert!(backtest(&opts, &[1.0; 48 * 8]).is_err());
    }

    #[test]
    fn a_model_that_cannot_fit_is_reported_not_fatal() {
        // 10 points of history before the first origin: too short for a weekly MSTL.
        let y = vec![1.0; 10 + 48];
        let opts = BacktestOptions::parse(&args("mem --periods 24,168 --origins 1 --models mstl"))
            .unwrap();
        let r = backtest(&opts, &y).unwrap();
        assert!(r.models[0].error.is_some());
        assert!(r.models[0].folds.is_empty());
    }

    #[test]
    fn series_files_round_trip_and_bad_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("spe-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.csv");
        std::fs::write(&path, "y\n1.5\n2\n\n3e2\n").unwrap();
        assert_eq!(read_series(&path).unwrap(), vec![1.5, 2.0, 300.0]);
        std::fs::write(&path, "value\n1\n").unwrap();
        assert!(read_series(&path).is_err());
        std::fs::write(&path, "y\n1\nNaN\n").unwrap();
        let e = read_series(&path).unwrap_err().to_string();
        assert!(e.contains(":3:"), "{e}");
        std::fs::write(&path, "y\n1\nabc\n").unwrap();
        assert!(read_series(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn synthetic_year_is_complete_and_deterministic() {
        let a = synthetic_year().unwrap();
        assert_eq!(a.len(), 8760);
        assert!(a.iter().all(|v| v.is_finite() && *v > 0.0));
        assert_eq!(a, synthetic_year().unwrap());
    }
}
