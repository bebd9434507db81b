//! End-to-end tests of the example server: the real binary, spawned on a
//! free loopback port, talking to a fake Open-Meteo (that misbehaves on
//! demand: the network chaos drill) or to nothing at all, killed and
//! restarted on its data directory.
//!
//! The binary is built once per test run (`spe_tests::server_proc::server_binary`:
//! `cargo build -p spe-server-example`,
//! a no-op when it is up to date) into the target directory of this test, or
//! taken from `SPE_SERVER_EXAMPLE_BIN` if set. Nothing waits on a fixed
//! sleep: the server's address is read from its log, and state changes are
//! awaited by polling with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use spe_core::WeatherVariable;
use spe_tests::ServerProcess;
use spe_tests::server_proc::{self, server_command};
use spe_tests::{Behavior, FakeOpenMeteo, unused_local_addr};

/// How long a state change (a refresh) may take to show.
const SETTLE: Duration = Duration::from_secs(30);
/// Pause between two polls.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// The chaos drill's settings: refresh every second, a 300 ms upstream
/// timeout, a breaker that waits 1 s (then 2, 4, 8 s…) before a probe.
const CHAOS_FLAGS: [&str; 6] = [
    "--refresh-secs",
    "1",
    "--upstream-timeout-ms",
    "300",
    "--breaker-open-secs",
    "1",
];

/// A fresh, not yet existing directory under the system temp dir.
fn fresh_dir() -> PathBuf {
    server_proc::fresh_dir("spe-server-it")
}

/// A data directory shared by several runs of the server, removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> DataDir {
        DataDir(fresh_dir())
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server ([`ServerProcess`]: killed on drop, its own data
/// directory removed) with an HTTP client.
struct Server {
    process: ServerProcess,
    http: reqwest::Client,
}

impl Server {
    /// Start the server on a free loopback port with a fresh data directory,
    /// Open-Meteo at `open_meteo_url`, and `extra` flags.
    fn start(open_meteo_url: &str, extra: &[&str]) -> Server {
        Server::with(ServerProcess::start(open_meteo_url, extra))
    }

    /// Start the server on `data_dir`, which outlives it.
    fn start_in(data_dir: &Path, open_meteo_url: &str, extra: &[&str]) -> Server {
        Server::with(ServerProcess::start_in(data_dir, open_meteo_url, extra))
    }

    fn with(process: ServerProcess) -> Server {
        let http = reqwest::Client::builder()
            .no_proxy()
            // A guard against a hang, not a timing assertion: a debug build
            // fitting the built-in models on a loaded machine takes seconds.
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|e| panic!("cannot build the HTTP client: {e}"));
        Server { process, http }
    }

    /// Kill the process with SIGKILL (no chance to clean up) and wait for it.
    fn kill(self) {
        self.process.kill();
    }

    /// Send SIGTERM and wait (within [`SETTLE`]) for the process to exit.
    async fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(sent.success());
        let deadline = Instant::now() + SETTLE;
        loop {
            if let Some(status) = self
                .process
                .try_wait()
                .unwrap_or_else(|e| panic!("cannot wait for the server: {e}"))
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {SETTLE:?} after SIGTERM; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    fn url(&self, path: &str) -> String {
        self.process.url(path)
    }

    fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// GET `path`: status, `Cache-Control` and body.
    async fn get(&self, path: &str) -> (u16, Option<String>, String) {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}; log:\n{}", self.log_text()));
        let status = response.status().as_u16();
        let cache = response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: body: {e}"));
        (status, cache, body)
    }

    /// GET `path` as JSON, expecting `status`.
    async fn get_json(&self, path: &str, status: u16) -> Value {
        let (got, cache, body) = self.get(path).await;
        assert_eq!(got, status, "GET {path}: {body}");
        assert_eq!(cache.as_deref(), Some("no-store"), "GET {path}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// GET every read endpoint once, asserting that none answers a 5xx (nor
    /// anything but 200); returns the dashboard and the readiness.
    async fn sweep(&self) -> (Value, Value) {
        let mut dashboard = Value::Null;
        let mut ready = Value::Null;
        for path in ["/api/dashboard", "/readyz", "/livez", "/api/incidents", "/"] {
            let (status, _, body) = self.get(path).await;
            assert!(
                status < 500,
                "GET {path} answered {status}: {body}\nlog:\n{}",
                self.log_text()
            );
            assert_eq!(status, 200, "GET {path}: {body}");
            match path {
                "/api/dashboard" => dashboard = parse(path, &body),
                "/readyz" => ready = parse(path, &body),
                "/api/incidents" => {
                    parse(path, &body);
                }
                "/" => assert!(body.contains("Mode Estimation"), "GET /: {body}"),
                _ => {}
            }
        }
        (dashboard, ready)
    }

    /// Sweep every endpoint (see [`sweep`](Self::sweep)) until `done` holds
    /// for the dashboard and readiness, within [`SETTLE`].
    async fn sweep_until(
        &self,
        what: &str,
        done: impl Fn(&Value, &Value) -> bool,
    ) -> (Value, Value) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let (dashboard, ready) = self.sweep().await;
            if done(&dashboard, &ready) {
                return (dashboard, ready);
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {SETTLE:?}; last dashboard mode {}, breaker {}, readyz {ready}\nlog:\n{}",
                dashboard["mode"],
                dashboard["breaker"],
                self.log_text()
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The incidents listed by `/api/incidents`.
    async fn incidents(&self) -> Vec<Value> {
        let json = self.get_json("/api/incidents", 200).await;
        assert_eq!(json["journal_available"], true, "{json}");
        json["incidents"]
            .as_array()
            .unwrap_or_else(|| panic!("no incident list: {json}"))
            .clone()
    }

    /// Wait until the log has a line containing `needle`, within [`SETTLE`].
    async fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + SETTLE;
        while !self.log_text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log within {SETTLE:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Poll `path` until `done` holds for its JSON, within [`SETTLE`].
    async fn poll_json(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + SETTLE;
        loop {
            let json = self.get_json(path, 200).await;
            if done(&json) {
                return json;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {SETTLE:?}; last {path}: {json}\nlog:\n{}",
                self.log_text()
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

fn parse(path: &str, body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
}

/// The weather columns of the dashboard, as Open-Meteo names them.
const WEATHER_COLUMNS: [&str; 4] = [
    WeatherVariable::ALL[0].name(),
    WeatherVariable::ALL[1].name(),
    WeatherVariable::ALL[2].name(),
    WeatherVariable::ALL[3].name(),
];

/// Checks a series object: `time` and every column of the same length.
fn assert_series(series: &Value, columns: &[&str]) -> usize {
    let n = series["time"].as_array().map_or(0, Vec::len);
    assert!(n >= 168, "{n} hours");
    for column in columns {
        assert_eq!(series[column].as_array().map(Vec::len), Some(n), "{column}");
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_network_the_server_runs_in_estimation_mode() {
    let nowhere = format!("http://{}", unused_local_addr());
    let server = Server::start(&nowhere, &["--upstream-timeout-ms", "2000"]);
    let data_dir = server.process.data_dir();
    assert!(data_dir.is_dir(), "the data directory is created");
    assert!(data_dir.join("incidents.journal").is_file());
    assert!(data_dir.join("cache").is_dir());

    assert_eq!(
        server.get_json("/livez", 200).await,
        serde_json::json!({"status": "ok"})
    );

    // Wait for the first refresh to have failed against the dead upstream.
    let ready = server
        .poll_json("/readyz", "a failed refresh", |j| {
            j["reason"]
                .as_str()
                .is_some_and(|r| r.contains("open-meteo"))
        })
        .await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["mode"], "estimation");
    assert_eq!(ready["degraded"], true);

    let dashboard = server.get_json("/api/dashboard", 200).await;
    assert_eq!(dashboard["mode"], "estimation");
    assert!(
        dashboard["notice"].as_str().is_some_and(|n| !n.is_empty()),
        "{}",
        dashboard["notice"]
    );
    assert!(dashboard["kpis"]["status"].is_string());
    assert!(dashboard["kpis"]["demand_mw"]["value"].is_number());
    assert!(dashboard["kpis"]["coverage_ratio"]["value"].is_number());
    assert_eq!(dashboard["weather"]["provenance"], "synthetic");
    let n = assert_series(&dashboard["weather"], &WEATHER_COLUMNS);
    assert_eq!(assert_series(&dashboard["demand"], &["demand_mw"]), n);
    assert_eq!(
        assert_series(
            &dashboard["supply"],
            &["solar_mw", "wind_mw", "other_mw", "imports_mw"]
        ),
        n
    );
    assert_eq!(dashboard["site"]["name"], "Paris");
    assert!(
        matches!(
            dashboard["breaker"]["state"].as_str(),
            Some("closed" | "open" | "half_open")
        ),
        "{}",
        dashboard["breaker"]
    );
    // The built-in models run in the background from the start: no
    // forecast yet, or theirs.
    assert!(
        dashboard["forecast"].is_null() || dashboard["forecast"]["tier"] == "primary",
        "{}",
        dashboard["forecast"]
    );
    assert!(dashboard["last_live_at"].is_null());

    // The outage is an incident, open; it changed no mode (never nominal).
    let incidents = server.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["open"], true);
    assert_eq!(incidents[0]["kind"], "upstream_unreachable");
    assert_eq!(incidents[0]["component"], "weather");
    assert_eq!(incidents[0]["mode_changes"], serde_json::json!([]));
    assert_eq!(dashboard["incident"], incidents[0]["id"]);

    let (status, _, page) = server.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("Mode Estimation"));

    let missing = server.get_json("/no/such/page", 404).await;
    assert_eq!(missing["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_healthy_upstream_the_server_goes_nominal() {
    let fake = FakeOpenMeteo::start().await;
    let server = Server::start(
        &fake.base_url(),
        &[
            "--upstream-timeout-ms",
            "20000",
            // Short, so a refresh that fails by bad luck is retried soon.
            "--refresh-secs",
            "1",
            "--latitude",
            "49.25",
            "--longitude",
            "-123.12",
            "--timezone",
            "America/Vancouver",
        ],
    );

    let dashboard = server
        .poll_json("/api/dashboard", "nominal mode", |j| j["mode"] == "nominal")
        .await;
    assert!(dashboard["notice"].is_null());
    assert_eq!(dashboard["weather"]["provenance"], "live");
    assert_eq!(dashboard["demand"]["provenance"], "live");
    assert_eq!(dashboard["site"]["latitude"], 49.25);
    assert_eq!(dashboard["site"]["longitude"], -123.12);
    assert_eq!(dashboard["site"]["timezone"], "America/Vancouver");
    assert_eq!(dashboard["kpis"]["provenance"]["kind"], "live");
    let n = assert_series(&dashboard["weather"], &WEATHER_COLUMNS);
    assert_eq!(n, 24 * 9, "2 past days and 7 days from today");
    assert_eq!(assert_series(&dashboard["demand"], &["demand_mw"]), n);

    let request = fake.last_request().expect("the server called the fake");
    assert_eq!(request.path, "/v1/forecast");
    assert_eq!(request.query_param("latitude"), Some("49.25"));
    assert_eq!(request.query_param("timezone"), Some("America/Vancouver"));

    assert_eq!(dashboard["breaker"]["state"], "closed");
    assert!(dashboard["incident"].is_null());
    assert!(dashboard["last_live_at"].is_string());

    let ready = server.get_json("/readyz", 200).await;
    // The built-in models' first run may or may not have answered yet.
    let predictions = ready["predictions"].clone();
    assert!(
        predictions == "pending" || predictions == "available",
        "{ready}"
    );
    assert_eq!(
        ready,
        serde_json::json!({"status": "ready", "mode": "nominal", "degraded": false, "reason": null, "unavailable": [], "predictions": predictions})
    );
    assert_eq!(
        server.get_json("/api/incidents", 200).await,
        serde_json::json!({"incidents": [], "journal_available": true})
    );
}

/// A data directory that is a file: no journal, history store or caches.
/// The server serves all the same (the dashboard, nominal with live data),
/// and readiness says it is degraded and names what it runs without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_usable_data_directory_readiness_names_what_is_missing() {
    let fake = FakeOpenMeteo::start().await;
    let parent = DataDir::new();
    std::fs::create_dir_all(parent.path()).expect("mkdir");
    let data = parent.path().join("data");
    std::fs::write(&data, b"a file where the data directory should be").expect("write");
    let server = Server::start_in(&data, &fake.base_url(), &["--refresh-secs", "1"]);
    let ready = server
        .poll_json("/readyz", "nominal", |j| j["mode"] == "nominal")
        .await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["degraded"], true, "{ready}");
    assert_eq!(
        ready["reason"],
        "running without the incident journal, the history store, the weather cache, \
         the predictions cache and the forecast archive (they could not be opened)"
    );
    assert_eq!(
        ready["unavailable"],
        serde_json::json!([
            "journal",
            "history",
            "weather_cache",
            "predictions_cache",
            "archive"
        ])
    );
    let dashboard = server.get_json("/api/dashboard", 200).await;
    assert_eq!(dashboard["mode"], "nominal");
    assert_eq!(
        server.get_json("/api/incidents", 200).await["journal_available"],
        false
    );
    let history = server.get_json("/api/history?series=demand_mw", 503).await;
    assert_eq!(history["error"]["code"], "history_unavailable");
    // The file is left as it was.
    assert_eq!(
        std::fs::read(&data).expect("read"),
        b"a file where the data directory should be"
    );
}

/// Two servers on one data directory: the second runs without the parts
/// the first holds locked (journal, caches), says so, and writes over none
/// of the first one's files; the history store (SQLite) is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_directory_runs_without_its_locked_parts() {
    let fake = FakeOpenMeteo::start().await;
    let data = DataDir::new();
    let first = Server::start_in(data.path(), &fake.base_url(), &["--refresh-secs", "1"]);
    first
        .poll_json("/readyz", "nominal", |j| j["mode"] == "nominal")
        .await;
    let second = Server::start_in(data.path(), &fake.base_url(), &["--refresh-secs", "1"]);
    let ready = second
        .poll_json("/readyz", "nominal", |j| j["mode"] == "nominal")
        .await;
    assert_eq!(ready["degraded"], true, "{ready}");
    assert_eq!(
        ready["unavailable"],
        serde_json::json!(["journal", "weather_cache", "predictions_cache", "archive"])
    );
    assert_eq!(
        second.get_json("/api/dashboard", 200).await["mode"],
        "nominal"
    );
    // The first is untouched by it.
    let ready = first.get_json("/readyz", 200).await;
    assert_eq!(ready["unavailable"], serde_json::json!([]), "{ready}");
    assert_eq!(
        first.get_json("/api/incidents", 200).await["journal_available"],
        true
    );
}

/// The continuity plan's "network chaos" drill: the upstream hangs, fails,
/// talks garbage, drops connections; no read endpoint ever answers a 5xx,
/// the dashboard goes to estimation mode and stays ready, and comes back to
/// nominal by itself when the upstream heals. The outage is one incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_chaos_drill() {
    let fake = FakeOpenMeteo::start().await;
    let server = Server::start(&fake.base_url(), &CHAOS_FLAGS);
    server
        .sweep_until("nominal mode", |d, _| d["mode"] == "nominal")
        .await;
    assert!(server.incidents().await.is_empty());

    let mut estimating = false;
    for behavior in [
        Behavior::Hang,
        Behavior::service_unavailable_json(),
        Behavior::Garbage,
        Behavior::Closed,
    ] {
        fake.set_behavior(behavior.clone());
        // Counted after the switch: a later connection got this behaviour.
        let before = fake.connection_count();
        let what = format!("the server meeting {behavior:?} in estimation mode");
        server
            .sweep_until(&what, |dashboard, ready| {
                if estimating || dashboard["mode"] == "estimation" {
                    // Once estimating, it stays so, and says so, while the upstream misbehaves.
                    assert_eq!(dashboard["mode"], "estimation", "{what}");
                    assert_eq!(dashboard["weather"]["provenance"], "synthetic");
                    assert!(dashboard["notice"].as_str().is_some_and(|n| !n.is_empty()));
                    assert!(dashboard["incident"].is_u64(), "{}", dashboard["incident"]);
                    assert!(dashboard["kpis"]["demand_mw"]["value"].is_number());
                    if ready["mode"] == "estimation" {
                        assert_eq!(ready["status"], "ready");
                        assert_eq!(ready["degraded"], true, "{ready}");
                        assert!(ready["reason"].as_str().is_some_and(|r| !r.is_empty()));
                    }
                }
                fake.connection_count() > before && dashboard["mode"] == "estimation"
            })
            .await;
        estimating = true;
    }
    // Every call fails: the breaker opens (if it has not yet) and waits.
    let (dashboard, _) = server
        .sweep_until("an open breaker", |d, _| d["breaker"]["state"] == "open")
        .await;
    assert!(dashboard["breaker"]["retry_after_s"].is_number());
    let incident = dashboard["incident"].clone();

    // The upstream heals: the breaker's probe brings nominal back by itself.
    fake.set_behavior(Behavior::Healthy);
    let (dashboard, ready) = server
        .sweep_until("back to nominal", |d, _| d["mode"] == "nominal")
        .await;
    assert_eq!(dashboard["weather"]["provenance"], "live");
    assert!(dashboard["notice"].is_null());
    assert!(dashboard["incident"].is_null());
    assert_eq!(dashboard["breaker"]["state"], "closed");
    assert_eq!(ready["degraded"], false);

    // One outage, one incident: closed (the close lands just after the
    // switch back), with both mode changes.
    let deadline = Instant::now() + SETTLE;
    let incidents = loop {
        let incidents = server.incidents().await;
        if incidents.iter().all(|i| i["open"] == false) || Instant::now() >= deadline {
            break incidents;
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let i = &incidents[0];
    assert_eq!(i["id"], incident);
    assert_eq!(i["open"], false, "{i}");
    assert_eq!(i["component"], "weather");
    assert_eq!(i["kind"], "upstream_timeout", "the drill began with a hang");
    assert!(i["end"].is_string());
    assert!(i["duration_s"].as_u64().is_some_and(|d| d >= 1), "{i}");
    assert!(i["resolution"].as_str().is_some_and(|r| !r.is_empty()));
    let changes: Vec<(&str, &str)> = i["mode_changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["from"].as_str().unwrap_or(""),
                        c["to"].as_str().unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        changes,
        [("nominal", "estimation"), ("estimation", "nominal")],
        "{i}"
    );
}

/// A server killed without warning (SIGKILL) comes back on its data
/// directory at once, with the upstream down: the incident journal is
/// intact and the dashboard answers from the first request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_restarts_with_its_journal() {
    let dir = DataDir::new();
    let fake = FakeOpenMeteo::start().await;
    let first = Server::start_in(dir.path(), &fake.base_url(), &CHAOS_FLAGS);
    first
        .poll_json("/api/dashboard", "nominal mode", |j| j["mode"] == "nominal")
        .await;
    // One outage and its recovery, so the journal has something to keep.
    fake.set_behavior(Behavior::service_unavailable_json());
    first
        .poll_json("/api/dashboard", "estimation mode", |j| {
            j["mode"] == "estimation"
        })
        .await;
    fake.set_behavior(Behavior::Healthy);
    first
        .poll_json("/api/dashboard", "nominal again", |j| {
            j["mode"] == "nominal"
        })
        .await;
    let deadline = Instant::now() + SETTLE;
    let before = loop {
        let incidents = first.incidents().await;
        if incidents.len() == 1 && incidents[0]["open"] == false {
            break incidents;
        }
        assert!(
            Instant::now() < deadline,
            "one closed incident: {incidents:#?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    };
    // The live hours are in the history store.
    let recorded = first
        .poll_json(
            "/api/history?series=temperature_2m",
            "live hours recorded",
            |j| {
                j["provenance"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p == "live"))
            },
        )
        .await;
    first.kill();
    drop(fake);

    // Back, with the upstream down (nothing listens there).
    let nowhere = format!("http://{}", unused_local_addr());
    let second = Server::start_in(dir.path(), &nowhere, &CHAOS_FLAGS);
    let dashboard = second.get_json("/api/dashboard", 200).await;
    assert!(dashboard["kpis"]["demand_mw"]["value"].is_number());
    // The first snapshot was the live weather cached by the first run.
    second.wait_for_log("first snapshot ready").await;
    let log = second.log_text();
    let ready_line = log
        .lines()
        .find(|l| l.contains("first snapshot ready"))
        .unwrap_or_default();
    assert!(
        ready_line.contains("mode=nominal") && ready_line.contains("cached"),
        "{ready_line}"
    );
    match dashboard["mode"].as_str() {
        // Before the first refresh failed: the cached live weather.
        Some("nominal") => assert_eq!(dashboard["weather"]["provenance"], "cached"),
        // After: the synthetic estimate.
        Some("estimation") => assert_eq!(dashboard["weather"]["provenance"], "synthetic"),
        other => panic!("mode {other:?}"),
    }

    // The journal of the first run is served unchanged; the dead upstream
    // is a new incident after it.
    let after = second.incidents().await;
    let old_id = before[0]["id"].as_u64().unwrap_or(0);
    let kept: Vec<&Value> = after
        .iter()
        .filter(|i| i["id"].as_u64().is_some_and(|id| id <= old_id))
        .collect();
    assert_eq!(kept, before.iter().collect::<Vec<_>>());
    let deadline = Instant::now() + SETTLE;
    let newest = loop {
        let incidents = second.incidents().await;
        if incidents.len() == before.len() + 1 {
            break incidents[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "a new incident for the dead upstream: {incidents:#?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    };
    assert_eq!(newest["id"], old_id + 1);
    assert_eq!(newest["open"], true);
    assert_eq!(newest["kind"], "upstream_unreachable");
    assert_eq!(
        newest["mode_changes"][0]["from"], "nominal",
        "it started nominal, from the cache: {newest}"
    );
    let ready = second.get_json("/readyz", 200).await;
    assert_eq!(ready["degraded"], true);

    // The recorded live hours survived the kill, and the estimates the
    // second run records did not overwrite them.
    let history = second
        .get_json(
            &format!(
                "/api/history?series=temperature_2m&from={}&to={}",
                query_time(&recorded["from"]),
                query_time(&recorded["to"])
            ),
            200,
        )
        .await;
    let rows = |j: &Value| -> Vec<(Value, Value, Value)> {
        let column = |k: &str| j[k].as_array().cloned().unwrap_or_default();
        let (t, v, p) = (column("time"), column("value"), column("provenance"));
        t.into_iter()
            .zip(v)
            .zip(p)
            .map(|((t, v), p)| (t, v, p))
            .collect()
    };
    // (A refresh of the first run may have replaced a value by a later live
    // one: the hours and their provenance are what must hold.)
    let live_hours = |j: &Value| -> Vec<Value> {
        rows(j)
            .into_iter()
            .filter(|r| r.2 == "live")
            .map(|r| r.0)
            .collect()
    };
    let (live_before, live_after) = (live_hours(&recorded), live_hours(&history));
    assert!(!live_before.is_empty());
    for hour in &live_before {
        assert!(
            live_after.contains(hour),
            "live hour {hour} lost: {history}"
        );
    }
}

/// A time of a JSON answer as a query value (`+` escaped).
fn query_time(t: &Value) -> String {
    t.as_str().unwrap_or_default().replace('+', "%2B")
}

/// SIGTERM: the server stops accepting, stops its refresh loop and exits 0.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_cleanly() {
    let nowhere = format!("http://{}", unused_local_addr());
    let mut server = Server::start(&nowhere, &[]);
    assert_eq!(
        server.get_json("/livez", 200).await,
        serde_json::json!({"status": "ok"})
    );
    let status = server.terminate().await;
    assert!(status.success(), "{status}; log:\n{}", server.log_text());
    server.wait_for_log("refresh loop stopped").await;
    server.wait_for_log("shutting down").await;
    let log = server.log_text();
    assert!(
        log.lines()
            .any(|l| l.trim_end().ends_with(" stopped") && !l.contains("refresh loop")),
        "{log}"
    );
}

#[test]
fn an_invalid_site_stops_the_server_with_a_clear_message() {
    let data_dir = fresh_dir();
    let out = server_command()
        .args(["--addr", "127.0.0.1:0", "--latitude", "95"])
        .arg("--data-dir")
        .arg(&data_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run the server: {e}"));
    let _ = std::fs::remove_dir_all(&data_dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("latitude 95"), "{stderr}");
}

/// A prediction engine for the drills: an executable script that answers
/// as its `mode` file says (`good`, `slow`, `crash`, `hang`, `garbage`,
/// `vanish`: deletes itself and crashes) and appends a line to `runs` at
/// each start.
struct Engine {
    dir: DataDir,
}

impl Engine {
    fn new(mode: &str) -> Engine {
        let dir = DataDir::new();
        std::fs::create_dir_all(dir.path()).unwrap();
        let script = dir.path().join("engine.sh");
        let mean = vec!["500.5"; 48].join(",");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
here=$(dirname "$0")
echo run >> "$here/runs"
cat > /dev/null
case "$(cat "$here/mode")" in
  good) ;;
  slow) sleep 1 ;;
  crash) echo "Traceback: boom" >&2; exit 3 ;;
  hang) sleep 60 ;;
  garbage) echo "this is not JSON"; exit 0 ;;
  vanish) rm -f -- "$0"; exit 1 ;;
  leak) x=$(head -c 134217728 /dev/zero | tr '\0' a) ;;
esac
echo '{{"mean": [{mean}], "model": "drill-engine"}}'
"#
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let engine = Engine { dir };
        engine.set(mode);
        engine
    }

    fn set(&self, mode: &str) {
        std::fs::write(self.dir.path().join("mode"), mode).unwrap();
    }

    fn command(&self) -> String {
        self.dir.path().join("engine.sh").display().to_string()
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("runs"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

impl Server {
    /// POST `/api/predictions/generate` with this `Authorization`: status and JSON.
    async fn generate(&self, authorization: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(self.url("/api/predictions/generate"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST generate: {e}; log:\n{}", self.log_text()));
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        (status, parse("POST /api/predictions/generate", &body))
    }
}

/// The continuity plan's "Python crash" drill: the prediction engine
/// crashes, hangs, prints garbage, leaks memory, deletes itself mid-run; the API serves
/// the statistical fallback or the cached predictions with their age, and
/// the server keeps running. Regeneration needs the token, and concurrent
/// calls share one run of the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prediction_engine_crash_drill() {
    let engine = Engine::new("good");
    let data = DataDir::new();
    let nowhere = format!("http://{}", unused_local_addr());
    let command = engine.command();
    let flags = [
        "--prediction-command",
        command.as_str(),
        "--prediction-timeout-secs",
        "3",
        "--prediction-memory-mb",
        "64",
        "--admin-token",
        "drill-token",
        "--generate-per-minute",
        "1000",
    ];
    let server = Server::start_in(data.path(), &nowhere, &flags);

    // The token is required.
    for authorization in [None, Some("Bearer wrong"), Some("drill-token")] {
        let (status, body) = server.generate(authorization).await;
        assert_eq!(status, 401, "{authorization:?}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let token = Some("Bearer drill-token");
    let (status, good) = server.generate(token).await;
    assert_eq!(status, 200, "{good}");
    assert_eq!(good["tier"], "primary");
    assert_eq!(good["model"], "drill-engine");
    assert_eq!(good["forecast"]["mean"][0], 500.5);

    // Twenty concurrent calls: one run of the engine.
    engine.set("slow");
    let before = engine.runs();
    let calls: Vec<_> = (0..20).map(|_| server.generate(token)).collect();
    let answers = futures_join_all(calls).await;
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 200 && b["tier"] == "primary"),
        "{answers:?}"
    );
    assert_eq!(engine.runs() - before, 1, "one run for twenty calls");

    // Every way the engine can fail: the fallback answers, says why, and
    // the server stays up.
    for (mode, kind) in [
        ("crash", "model_crash"),
        ("hang", "model_timeout"),
        ("garbage", "model_bad_output"),
        ("leak", "model_crash"), // 128 MiB under a 64 MiB limit
        ("vanish", "model_crash"),
        ("good", ""), // deleted: it cannot even start
    ] {
        engine.set(mode);
        let (status, answer) = server.generate(token).await;
        assert_eq!(status, 200, "{mode}: {answer}");
        assert_eq!(answer["tier"], "fallback", "{mode}: {answer}");
        assert_eq!(answer["provenance"], "fallback");
        assert_eq!(answer["failures"][0]["tier"], "primary", "{mode}");
        if !kind.is_empty() {
            assert_eq!(answer["failures"][0]["kind"], kind, "{mode}: {answer}");
        }
        assert!(answer["notice"].as_str().is_some_and(|n| !n.is_empty()));
        let served = server.get_json("/api/predictions", 200).await;
        assert_eq!(served["tier"], "fallback");
        let dashboard = server.get_json("/api/dashboard", 200).await;
        assert_eq!(dashboard["forecast"]["tier"], "fallback");
        assert_eq!(server.get_json("/livez", 200).await["status"], "ok");
    }
    assert!(!Path::new(&command).exists(), "the engine deleted itself");
    let incidents = server.incidents().await;
    assert!(
        incidents.iter().any(|i| i["component"] == "prediction"),
        "{incidents:#?}"
    );
    server.kill();

    // Restarted with no engine at all: the cached predictions, with their age.
    let second = Server::start_in(data.path(), &nowhere, &flags);
    let cached = second.get_json("/api/predictions", 200).await;
    assert!(
        matches!(cached["tier"].as_str(), Some("cache" | "fallback")),
        "{cached}"
    );
    assert!(cached["age_s"].is_u64());
    assert_eq!(second.get_json("/livez", 200).await["status"], "ok");
}

/// With no predictions at all (an engine stuck in its first run, nothing
/// cached), `/api/predictions` is a clean JSON 503, and the rest answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_predictions_the_api_answers_503() {
    let engine = Engine::new("hang");
    let nowhere = format!("http://{}", unused_local_addr());
    let command = engine.command();
    let server = Server::start(
        &nowhere,
        &[
            "--prediction-command",
            command.as_str(),
            "--prediction-timeout-secs",
            "60",
        ],
    );
    let (status, cache, body) = server.get("/api/predictions").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(
        parse("/api/predictions", &body)["error"]["code"],
        "no_predictions"
    );
    let dashboard = server.get_json("/api/dashboard", 200).await;
    assert!(dashboard["forecast"].is_null());
}

/// Read from `stream` until the server closes it (end of file or reset);
/// returns what it sent first. A guard of a minute against a hang.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the connection open");
    got
}

/// Clients that hold connections without finishing a request, and more
/// connections than allowed, are cut off; the server keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_and_excess_connections_are_cut_off() {
    use tokio::io::AsyncWriteExt as _;
    use tokio::net::TcpStream;
    const LIVEZ: &[u8] = b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let nowhere = format!("http://{}", unused_local_addr());
    let server = Server::start(
        &nowhere,
        &["--header-timeout-ms", "200", "--max-connections", "3"],
    );
    let addr = server.process.addr();
    // Headers that never end, and a client that sends nothing: both closed
    // without an answer.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let cut = read_until_closed(&mut slow).await;
    assert!(!String::from_utf8_lossy(&cut).contains(" 200 "));
    assert!(read_until_closed(&mut silent).await.is_empty());
    // A client that sends its request is served.
    let (status, _, _) = server.get("/livez").await;
    assert_eq!(status, 200);
    drop((slow, silent, server));

    // The cap: a fourth connection is closed as soon as it is accepted
    // while three others are open (sending their headers slowly).
    let server = Server::start(
        &nowhere,
        &["--header-timeout-ms", "60000", "--max-connections", "3"],
    );
    let addr = server.process.addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"G").await.unwrap();
        held.push(c);
    }
    let mut extra = TcpStream::connect(addr).await.unwrap();
    assert!(read_until_closed(&mut extra).await.is_empty());
    server.wait_for_log("too many open connections").await;
    // A held connection that finishes its request is served; then its freed
    // slot takes a new client.
    let mut first = held.remove(0);
    first.write_all(&LIVEZ[1..]).await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_closed(&mut first).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut next = TcpStream::connect(addr).await.unwrap();
        // Refused connections may be reset while this writes.
        let _ = next.write_all(LIVEZ).await;
        let answer = String::from_utf8_lossy(&read_until_closed(&mut next).await).into_owned();
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        // The slot is freed once the server has seen that connection end.
        assert!(Instant::now() < deadline, "no slot freed: {answer:?}");
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Bad input over real HTTP: JSON errors, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_json_errors() {
    let nowhere = format!("http://{}", unused_local_addr());
    let server = Server::start(&nowhere, &["--max-body-bytes", "1024"]);
    // A client of its own: the server answers 413 before the body is sent
    // and closes the connection, which a pooled client might reuse.
    let once = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let big = once
        .post(server.url("/api/predictions/generate"))
        .body(vec![b'x'; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);
    let body: Value = big.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    let missing = server.get_json("/api/nothing/here", 404).await;
    assert_eq!(missing["error"]["code"], "not_found");
    let wrong = server
        .http
        .delete(server.url("/api/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 405);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    for query in [
        "limit=abc",
        "limit=0",
        "limit=99999999999999999999",
        "what=ever",
    ] {
        let bad = server
            .get_json(&format!("/api/incidents?{query}"), 400)
            .await;
        assert_eq!(bad["error"]["code"], "bad_request", "{query}");
    }
    // A page of another site cannot make the server regenerate, nor one
    // whose name was re-pointed at the loopback address (DNS rebinding).
    let port = server
        .url("")
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();
    let rebound_host = format!("evil.example:{port}");
    let rebound_origin = format!("http://evil.example:{port}");
    for (headers, code) in [
        (
            vec![
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
                ("content-type", "text/plain"),
            ],
            "cross_site",
        ),
        (
            vec![
                ("host", rebound_host.as_str()),
                ("origin", rebound_origin.as_str()),
                ("sec-fetch-site", "same-origin"),
            ],
            "forbidden",
        ),
    ] {
        let mut request = server.http.post(server.url("/api/predictions/generate"));
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 403, "{headers:?}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{headers:?}");
    }
    // No token configured, but this client is on loopback: it may regenerate.
    let (status, body) = server.generate(None).await;
    assert_eq!(status, 200, "{body}");
    let doc = server.get_json("/api/openapi.json", 200).await;
    assert!(doc["paths"]["/api/predictions/generate"]["post"].is_object());
    let (status, _, metrics) = server.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("spe_http_requests_total{route=\"/api/incidents\""),
        "{metrics}"
    );
}

/// Await every future, in order.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    // Polled together: a join over all of them.
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}

/// A prediction engine that answers nothing for a minute (`sleep 60`): while
/// it runs, no new predictions can be made.
const STUCK_ENGINE: [&str; 4] = [
    "--prediction-command",
    "sleep 60",
    "--prediction-timeout-secs",
    "60",
];

/// Readiness waits on nothing that may hang: with an empty data directory,
/// an upstream that never answers (its first fetch pending for a minute)
/// and a prediction engine stuck in its first run, `/readyz` answers 200 at
/// once, degraded, and the dashboard is served from the synthetic estimate.
/// (How fast it is ready is measured by `benches/load/run`, not asserted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_at_once_with_the_first_fetch_and_prediction_pending() {
    let fake = FakeOpenMeteo::start().await;
    fake.set_behavior(Behavior::Hang);
    let mut flags = vec!["--upstream-timeout-ms", "60000"];
    flags.extend(STUCK_ENGINE);
    let mut server = Server::start(&fake.base_url(), &flags);
    let data_dir = server.process.data_dir().to_path_buf();

    let ready = server.get_json("/readyz", 200).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["mode"], "estimation");
    assert_eq!(ready["degraded"], true);
    assert_eq!(
        ready["reason"], "no live data yet",
        "the first fetch is still pending"
    );
    assert_eq!(ready["unavailable"], serde_json::json!([]));
    assert_eq!(server.get_json("/livez", 200).await["status"], "ok");
    // Nothing predicted yet, nothing cached: a clean 503, not a wait.
    let none = server.get_json("/api/predictions", 503).await;
    assert_eq!(none["error"]["code"], "no_predictions");
    let dashboard = server.get_json("/api/dashboard", 200).await;
    assert_eq!(dashboard["mode"], "estimation");
    assert_eq!(dashboard["weather"]["provenance"], "synthetic");
    assert!(dashboard["forecast"].is_null());
    assert!(dashboard["kpis"]["demand_mw"]["value"].is_number());
    // A fresh start has no day-old predictions to judge: unknown, status ok.
    assert_eq!(
        dashboard["kpis"]["forecast_error_pct"],
        serde_json::json!({"name": "forecast_error_pct", "value": null, "unit": "%", "status": "ok", "at": null})
    );
    // The fetch did go out, and hangs.
    let deadline = Instant::now() + SETTLE;
    while fake.requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no fetch; log:\n{}",
            server.log_text()
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
    assert_eq!(
        server.get_json("/readyz", 200).await["reason"],
        "no live data yet"
    );
    // The engine's first run is stuck: readiness says predictions are
    // pending (once the run has started: polled, not waited for).
    server
        .poll_json("/readyz", "the first prediction run pending", |j| {
            j["predictions"] == "pending"
        })
        .await;
    assert!(data_dir.join("incidents.journal").is_file());
    // SIGTERM ends the stuck engine and the pending fetch: a clean exit.
    let status = server.terminate().await;
    assert!(status.success(), "{status}; log:\n{}", server.log_text());
}

/// After a kill -9, a restarted server serves the very predictions of the
/// first run (the same time, model and values, bit for bit) from its cache,
/// with their age, while its engine has not answered yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_serves_the_same_predictions_after_a_restart() {
    let dir = DataDir::new();
    let nowhere = format!("http://{}", unused_local_addr());
    let first = Server::start_in(dir.path(), &nowhere, &[]);
    // The built-in models answer in the background.
    let deadline = Instant::now() + SETTLE;
    let before = loop {
        let (status, _, body) = first.get("/api/predictions").await;
        if status == 200 {
            break parse("/api/predictions", &body);
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "no predictions; log:\n{}",
            first.log_text()
        );
        tokio::time::sleep(POLL_EVERY).await;
    };
    assert_eq!(before["tier"], "primary");
    first.kill();

    let mut second = Server::start_in(dir.path(), &nowhere, &STUCK_ENGINE);
    let after = second.get_json("/api/predictions", 200).await;
    assert_eq!(after["tier"], "cache", "{after}");
    assert_eq!(after["provenance"], "cached");
    assert!(after["age_s"].is_u64());
    for key in ["made_at", "model"] {
        assert_eq!(after[key], before[key], "{key}");
    }
    assert_eq!(after["forecast"], before["forecast"], "the same values");
    let dashboard = second.get_json("/api/dashboard", 200).await;
    assert_eq!(dashboard["forecast"]["tier"], "cache");
    assert_eq!(dashboard["forecast"]["mean"], before["forecast"]["mean"]);
    let status = second.terminate().await;
    assert!(status.success(), "{status}");
}
