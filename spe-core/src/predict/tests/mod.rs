//! Tests of the prediction chain: the output validator (with proptest),
//! real child processes, and the chain's tiers, cache and journal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chain;
#[cfg(unix)]
mod command;
mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::PredictionRequest;

/// The forecast origin of the tests.
pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
}

/// `n` hours of a daily cycle.
pub(super) fn history(n: usize) -> Vec<f64> {
    (0..n)
        .map(|t| 500.0 + 50.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).sin())
        .collect()
}

/// Two days of history, `horizon` steps, levels 80 and 95.
pub(super) fn request(horizon: usize) -> PredictionRequest {
    PredictionRequest::builder(t0(), history(48))
        .horizon(horizon)
        .build()
        .unwrap()
}

/// A well-formed output for `horizon` steps, with 80 and 95 % intervals.
pub(super) fn good_output(horizon: usize, model: &str) -> String {
    let mean: Vec<f64> = (0..horizon).map(|i| 100.0 + i as f64).collect();
    let shift = |d: f64| -> Vec<f64> { mean.iter().map(|m| m + d).collect() };
    serde_json::json!({
        "mean": mean,
        "lower_80": shift(-5.0), "upper_80": shift(5.0),
        "lower_95": shift(-9.0), "upper_95": shift(9.0),
        "model": model,
    })
    .to_string()
}

/// Write a `sh` script (run as `sh <path>`, so no exec of a file just
/// written: no "text file busy" race with other tests' forks).
#[cfg(unix)]
pub(super) fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    path
}

/// Whether process `pid` is alive (not gone, not a zombie): it has a
/// start time in `/proc`, as the process-tree kill reads it.
#[cfg(target_os = "linux")]
pub(super) fn alive(pid: i32) -> bool {
    super::process::tree::start_time(pid).is_some()
}

/// Wait (bounded) for process `pid` to die: `SIGKILL` is delivered
/// asynchronously, so a just-killed process may linger an instant.
#[cfg(target_os = "linux")]
pub(super) async fn wait_dead(pid: i32) -> bool {
    for _ in 0..500 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Wait (bounded) for a file written by a child process, and read it.
pub(super) async fn wait_for_file(path: &Path) -> String {
    for _ in 0..1000 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} never appeared", path.display());
}

/// The pid a script wrote (`echo $$ > file`).
pub(super) async fn read_pid(path: &Path) -> i32 {
    wait_for_file(path).await.trim().parse().unwrap()
}

#[test]
fn the_notice_gives_the_gist_of_a_failure_in_one_line() {
    use super::{NOTICE_REASON_CHARS, gist};
    let traceback = "Traceback (most recent call last):\n  File \"/srv/model.py\", line 3, in <module>\n    load()\nValueError: the feature store is down\n";
    assert_eq!(gist(traceback), "ValueError: the feature store is down");
    assert_eq!(
        gist("exit code 3: cannot open model.pkl\nmore detail"),
        "exit code 3: cannot open model.pkl"
    );
    assert_eq!(gist(""), "");
    let long = "é".repeat(NOTICE_REASON_CHARS + 10);
    let cut = gist(&long);
    assert_eq!(cut.chars().count(), NOTICE_REASON_CHARS + 1);
    assert!(cut.ends_with('…'));
}
