//! The dashboard in a real headless browser: Debian's `chromium` driven over
//! WebDriver (`chromedriver`, with the `fantoccini` client), against the
//! real server binary on loopback and a fake Open-Meteo that goes down and
//! heals on demand.
//!
//! The test loads `/`, waits for the KPI tiles and the charts, checks that
//! the estimation banner shows while the upstream is down, disappears when it
//! heals and comes back when it fails again (live updates: the page is never
//! reloaded), switches to French, and saves screenshots to
//! `<target>/screenshots/` (`dashboard.png`, `dashboard-estimation.png`).
//! Then seven more tabs open: all load and follow the events through one
//! shared stream (`spe_event_streams` is 1), and a tab without shared
//! workers opens its own. Nothing waits on a fixed sleep: the DOM is polled
//! until a deadline.
//!
//! Needs `chromium` and `chromedriver` (`apt-get install -y chromium
//! chromium-driver`; `.ci/run` installs them), found on `PATH` or through
//! `SPE_CHROMIUM` and `SPE_CHROMEDRIVER`. Without them the test fails and
//! says so, unless `SPE_SKIP_BROWSER=1`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::wd::{TimeoutConfiguration, WebDriverCompatibleCommand, WindowHandle};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use spe_tests::server_proc::{self, fresh_dir};
use spe_tests::{Behavior, FakeOpenMeteo, ServerProcess, unused_local_addr};

/// How long chromedriver may take to listen, and a page to show something.
const STARTUP: Duration = Duration::from_secs(60);
/// How long a change on the server may take to show on the page: a refresh
/// (every second here), then an event, or at worst the page's 30 s poll.
const SETTLE: Duration = Duration::from_secs(75);
/// Pause between two looks at the page.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// Refresh every second; a 300 ms upstream timeout; a breaker that waits 1 s
/// before its first probe.
const SERVER_FLAGS: [&str; 6] = [
    "--refresh-secs",
    "1",
    "--upstream-timeout-ms",
    "300",
    "--breaker-open-secs",
    "1",
];

/// The first of `names` found as a file on `PATH` (or `$var`, if set).
fn find_program(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{var}={} is not a file", path.display());
        return Some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// A running chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Driver {
    fn start(program: &Path) -> Driver {
        let port = unused_local_addr().port();
        let log = fresh_dir("spe-chromedriver").with_extension("log");
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + STARTUP;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within {STARTUP:?}; log:\n{}",
                driver.log_text()
            );
            std::thread::sleep(POLL_EVERY);
        }
        driver
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A WebDriver session on headless Chromium, in a window tall enough for the
/// whole page, preferring English (as a browser in an English locale).
async fn browser(driver: &Driver, chromium: &Path) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--window-size=1280,3200",
                "--lang=en-US",
            ],
            "prefs": {"intl.accept_languages": "en-US,en"},
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object")
    };
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot open a Chromium session through chromedriver: {e}\nchromedriver log:\n{}",
                driver.log_text()
            )
        })
}

/// Run `script` (a function body returning a value) in the page.
async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Poll `script` until it returns something other than `false`, `null` or
/// `undefined`, within `within`; returns that value.
async fn wait_for(
    client: &Client,
    server: &ServerProcess,
    what: &str,
    within: Duration,
    script: &str,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let value = js(client, script).await;
        if !matches!(value, Value::Null | Value::Bool(false)) {
            return value;
        }
        if Instant::now() >= deadline {
            let state = js(client, PAGE_STATE).await;
            panic!(
                "{what}: not within {within:?}\npage: {state:#}\nserver log:\n{}",
                server.log_text()
            );
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// What the page shows, for failure messages.
const PAGE_STATE: &str = r#"
    const text = id => { const e = document.getElementById(id); return e ? e.textContent : null; };
    return {
        lang: document.documentElement.lang,
        banner_hidden: document.getElementById("banner").hidden,
        mode: text("mode"), live: text("live"), offline_hidden: document.getElementById("offline").hidden,
        tiles: document.querySelectorAll('#tiles .tile').length,
        charts: [...document.querySelectorAll("img[data-chart]")].map(i => [i.src, i.complete, i.naturalWidth]),
    };
"#;

/// Whether the banner is shown, as the browser lays it out.
const BANNER_SHOWN: &str = r#"
    const b = document.getElementById("banner");
    return !b.hidden && b.getBoundingClientRect().height > 0 && getComputedStyle(b).display !== "none";
"#;

/// Whether every chart image is loaded in `lang` (its natural size is the
/// SVG's: 960 wide).
fn charts_loaded(lang: &str) -> String {
    format!(
        r#"
        const imgs = [...document.querySelectorAll("img[data-chart]")];
        return imgs.length === 5 && imgs.every(i =>
            i.src.includes("lang={lang}") && i.complete && i.naturalWidth === 960 && i.alt.length > 20);
        "#
    )
}

async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client
        .screenshot()
        .await
        .unwrap_or_else(|e| panic!("screenshot failed: {e}"));
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let dir = server_proc::target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// The scenario, on a page of `server` whose upstream is `fake` (down at first).
async fn scenario(client: Client, server: Arc<ServerProcess>, fake: Arc<FakeOpenMeteo>) {
    let client = &client;
    let server = &*server;
    client
        .goto(&server.url("/"))
        .await
        .unwrap_or_else(|e| panic!("cannot load the page: {e}"));

    // The KPI tiles: 9 indicators and 4 sources, with values.
    wait_for(
        client,
        server,
        "the KPI tiles",
        STARTUP,
        r#"return document.querySelectorAll('#tiles .tile').length >= 13;"#,
    )
    .await;
    let demand = js(
        client,
        r#"return document.querySelector('#tiles [data-kpi="demand_mw"] .value').textContent;"#,
    )
    .await;
    assert!(
        demand
            .as_str()
            .is_some_and(|v| v.ends_with(" MW") && v.chars().any(|c| c.is_ascii_digit())),
        "demand tile: {demand}"
    );
    // An English browser gets English labels.
    assert_eq!(
        js(client, "return document.documentElement.lang;").await,
        "en"
    );
    let label = js(
        client,
        r#"return document.querySelector('#tiles [data-kpi="demand_mw"] .label').textContent;"#,
    )
    .await;
    assert_eq!(label, "Demand");
    // A fresh server has no day-old predictions to judge: the forecast
    // error is unknown, and its tile says so, not "ok".
    let forecast_error = js(
        client,
        r#"const t = document.querySelector('#tiles [data-kpi="forecast_error"]');
           return [t.className, t.querySelector('.status').textContent];"#,
    )
    .await;
    assert_eq!(forecast_error, json!(["tile na", "not available"]));

    // The built-in models' predictions reach the page and the demand chart's caption.
    wait_for(
        client,
        server,
        "the predictions",
        SETTLE,
        r#"const p = document.getElementById("predictions").textContent;
            return p.includes(" ago") && document.getElementById("cap-demand").textContent.includes("80 %");"#,
    )
    .await;
    // Made while the upstream is down: from synthetic history, and the page says so.
    let predictions = js(
        client,
        r#"const p = document.getElementById("predictions"); return [p.dataset.inputs, p.textContent];"#,
    )
    .await;
    assert_eq!(predictions[0], "synthetic", "{predictions}");
    assert!(
        predictions[1]
            .as_str()
            .is_some_and(|t| t.contains("from synthetic history")),
        "{predictions}"
    );

    // The upstream is down: estimation mode, the banner shows.
    wait_for(
        client,
        server,
        "the estimation banner",
        SETTLE,
        BANNER_SHOWN,
    )
    .await;
    let banner = client
        .find(Locator::Css("#banner"))
        .await
        .unwrap_or_else(|e| panic!("no banner: {e}"));
    assert!(banner.is_displayed().await.unwrap_or(false));
    let text = banner.text().await.unwrap_or_default();
    assert!(text.contains("Estimation mode — simulated data"), "{text}");
    assert!(
        text.contains("Mode Estimation — données simulées"),
        "{text}"
    );
    assert_eq!(
        js(
            client,
            r#"return document.getElementById("mode").textContent;"#
        )
        .await,
        "estimation"
    );
    wait_for(client, server, "the charts", SETTLE, &charts_loaded("en")).await;
    let shot = screenshot(client, "dashboard-estimation.png").await;
    assert!(shot.is_file());

    // Heal the upstream: the banner goes, without a reload.
    js(client, "window.speNoReload = 42; return true;").await;
    fake.set_behavior(Behavior::Healthy);
    wait_for(
        client,
        server,
        "the banner to disappear after the upstream healed",
        SETTLE,
        r#"return document.getElementById("banner").hidden && document.getElementById("mode").textContent === "nominal";"#,
    )
    .await;
    assert!(!banner.is_displayed().await.unwrap_or(true));
    assert_eq!(
        js(client, "return window.speNoReload;").await,
        42,
        "the page was reloaded"
    );

    // French, by the switch: labels, the page's language and the charts.
    client
        .find(Locator::Css(r#"button[data-lang="fr"]"#))
        .await
        .unwrap_or_else(|e| panic!("no language switch: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click the switch: {e}"));
    wait_for(
        client,
        server,
        "French labels",
        SETTLE,
        r#"return document.documentElement.lang === "fr"
            && document.querySelector('#tiles [data-kpi="demand_mw"] .label').textContent === "Demande"
            && document.getElementById("kpi-title").textContent === "Indicateurs de l'heure";"#,
    )
    .await;
    assert_eq!(
        js(client, r#"return document.querySelector('button[data-lang="fr"]').getAttribute("aria-pressed");"#).await,
        "true"
    );
    wait_for(
        client,
        server,
        "the charts in French",
        SETTLE,
        &charts_loaded("fr"),
    )
    .await;
    let shot = screenshot(client, "dashboard.png").await;
    assert!(shot.is_file());

    // Every download link answers a CSV file with a header row, in its
    // French label and in the French dialect (`;`, decimal commas).
    let downloads = js(
        client,
        r#"return Promise.all([...document.querySelectorAll("a[download]")].map(a =>
            fetch(a.href).then(r => r.text().then(t =>
                [a.id, a.textContent, r.status, r.headers.get("content-type"), t.split("\n")[0],
                 new URL(a.href).searchParams.get("locale")]))));"#,
    )
    .await;
    let downloads = downloads.as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = downloads.iter().filter_map(|d| d[0].as_str()).collect();
    assert_eq!(
        ids,
        ["export", "export-history", "export-forecasts"],
        "{downloads:?}"
    );
    for d in &downloads {
        assert_eq!(d[2], 200, "{d}");
        assert!(
            d[3].as_str().is_some_and(|c| c.starts_with("text/csv")),
            "{d}"
        );
        assert!(d[4].as_str().is_some_and(|h| h.starts_with("time")), "{d}");
        assert_eq!(d[5], "fr", "{d}");
    }
    assert_eq!(downloads[2][1], "Prévisions J-1, 7 jours (CSV)");
    assert_eq!(
        downloads[2][4],
        "time;value;provenance;cached_age_s;made_at;model;tier;lower_95;upper_95"
    );

    // Down again: the banner comes back, live, its details in French
    // around the service's (technical, English) reason.
    fake.set_behavior(Behavior::service_unavailable_json());
    wait_for(
        client,
        server,
        "the banner to come back",
        SETTLE,
        BANNER_SHOWN,
    )
    .await;
    let notice = js(
        client,
        r#"return document.getElementById("notice").textContent;"#,
    )
    .await;
    assert!(
        notice
            .as_str()
            .is_some_and(|n| n.starts_with("Météo en direct indisponible (")
                && n.ends_with(") : estimations simulées affichées.")),
        "{notice}"
    );
    assert_eq!(
        js(client, "return window.speNoReload;").await,
        42,
        "the page was reloaded"
    );
    let incidents = wait_for(
        client,
        server,
        "the incident timeline",
        SETTLE,
        r#"const n = document.querySelectorAll('#timeline li').length; return n > 0 ? n : false;"#,
    )
    .await;
    assert!(incidents.as_u64().is_some_and(|n| n >= 1), "{incidents}");
    // An open incident says how long it has been open, a resolved one how
    // long it lasted; a breaker with failed calls is not shown as normal.
    wait_for(
        client,
        server,
        "the open incident's duration and a breaker that is not green",
        SETTLE,
        r#"const open = [...document.querySelectorAll('#timeline li.open .event-head')];
           const closed = [...document.querySelectorAll('#timeline li.closed .event-head')];
           const pill = document.getElementById("breaker");
           return open.length > 0
             && open.every(h => h.textContent.includes("ouvert depuis "))
             && closed.every(h => h.textContent.includes("durée "))
             && !pill.classList.contains("ok");"#,
    )
    .await;

    // The incident history stops loading (the server answers 503): the page
    // says so, keeps the last list marked stale, never "no incident", and
    // retries by itself; once it loads again the notice goes.
    js(
        client,
        r#"window.speRealFetch = window.fetch;
           window.fetch = (url, options) => String(url).startsWith("/api/incidents")
             ? Promise.resolve(new Response("{}", { status: 503 }))
             : window.speRealFetch(url, options);
           return true;"#,
    )
    .await;
    wait_for(
        client,
        server,
        "the incident history to be marked unavailable",
        SETTLE,
        r#"return !document.getElementById("incidents-error").hidden
            && document.getElementById("no-incidents").hidden
            && document.getElementById("timeline").classList.contains("stale")
            && document.querySelectorAll('#timeline li').length > 0;"#,
    )
    .await;
    js(client, "window.fetch = window.speRealFetch; return true;").await;
    wait_for(
        client,
        server,
        "the incident history to load again",
        SETTLE,
        r#"return document.getElementById("incidents-error").hidden
            && !document.getElementById("timeline").classList.contains("stale");"#,
    )
    .await;
    dashboard_failures(client, server).await;
    tabs_share_one_stream(client, server, &fake).await;
}

/// The dashboard's answer goes wrong in each way a page can meet, by a
/// stand-in `fetch`: the page says which (an HTTP error with the server's
/// message, an answer it cannot read, no answer in time; the page is in
/// French by now), keeps the last
/// data with its tiles marked as not current, and recovers by itself.
async fn dashboard_failures(client: &Client, server: &ServerProcess) {
    let cases = [
        (
            "an HTTP error",
            r#"Promise.resolve(new Response(
                 JSON.stringify({ error: { code: "internal", message: "disk on fire" } }),
                 { status: 500, headers: { "Content-Type": "application/json" } }))"#,
            "Le serveur répond en erreur (HTTP 500, disk on fire)",
        ),
        (
            "an answer that is not JSON",
            r#"Promise.resolve(new Response("<html>proxy error</html>", { status: 200 }))"#,
            "Réponse du serveur illisible",
        ),
        (
            "JSON of another shape",
            r#"Promise.resolve(new Response(JSON.stringify({ hello: 1 }), { status: 200 }))"#,
            "Réponse du serveur illisible",
        ),
        (
            "no answer (a frozen server)",
            r#"new Promise((_, reject) => options.signal.addEventListener("abort",
                 () => reject(new DOMException("aborted", "AbortError"))))"#,
            "Le serveur ne répond pas",
        ),
    ];
    for (what, answer, notice) in cases {
        js(
            client,
            &format!(
                r#"window.speRealFetch = window.fetch;
                   window.fetch = (url, options) => String(url).startsWith("/api/dashboard")
                     ? {answer}
                     : window.speRealFetch(url, options);
                   return true;"#
            ),
        )
        .await;
        let shown = wait_for(
            client,
            server,
            &format!("the page to say {what}"),
            SETTLE,
            r#"const o = document.getElementById("offline");
               const demand = document.querySelector('#tiles [data-kpi="demand_mw"]');
               return !o.hidden && demand.classList.contains("stale") && o.textContent;"#,
        )
        .await;
        assert!(
            shown.as_str().is_some_and(|t| t.starts_with(notice)),
            "{what}: {shown}"
        );
        // The last data stays on screen.
        let value = js(
            client,
            r#"return document.querySelector('#tiles [data-kpi="demand_mw"] .value').textContent;"#,
        )
        .await;
        assert!(
            value.as_str().is_some_and(|v| v.ends_with(" MW")),
            "{what}: {value}"
        );
        js(client, "window.fetch = window.speRealFetch; return true;").await;
        wait_for(
            client,
            server,
            &format!("the page to recover from {what}"),
            SETTLE,
            r#"return document.getElementById("offline").hidden
                && !document.querySelector('#tiles [data-kpi="demand_mw"]').classList.contains("stale");"#,
        )
        .await;
    }
}

/// Tabs opened beside the first in [`tabs_share_one_stream`]: more than the
/// six connections a browser keeps to one server over HTTP/1.1.
const MORE_TABS: usize = 7;

/// Whether the page follows the events, live, and how (`shared`, `direct`).
fn following_events(via: &str) -> String {
    format!(
        r#"const live = document.getElementById("live");
        return document.querySelectorAll('#tiles .tile').length >= 13
            && live.dataset.state === "sse" && live.dataset.via === "{via}";"#
    )
}

/// Eight tabs of one browser: all load and follow the events, through one
/// stream (a stream per tab would leave the seventh waiting for a
/// connection), and a change reaches every tab. A tab whose browser has no
/// shared workers opens its own stream. The upstream is down on entry and
/// healthy on return; the first tab is current again.
async fn tabs_share_one_stream(client: &Client, server: &ServerProcess, fake: &FakeOpenMeteo) {
    let first = client
        .window()
        .await
        .unwrap_or_else(|e| panic!("no window handle: {e}"));
    wait_for(
        client,
        server,
        "the first tab to follow the shared events",
        SETTLE,
        &following_events("shared"),
    )
    .await;
    assert_eq!(event_streams(server).await, 1);

    // A tab that hangs waiting for a connection fails its load here.
    client
        .update_timeouts(TimeoutConfiguration::new(None, Some(STARTUP), None))
        .await
        .unwrap_or_else(|e| panic!("cannot set the page-load timeout: {e}"));
    let mut tabs = Vec::new();
    for i in 0..MORE_TABS {
        let tab = open_tab(client, server, None).await;
        wait_for(
            client,
            server,
            &format!("tab {} to follow the shared events", i + 2),
            SETTLE,
            &following_events("shared"),
        )
        .await;
        tabs.push(tab);
    }
    assert_eq!(
        event_streams(server).await,
        1,
        "one stream for {} tabs",
        MORE_TABS + 1
    );

    // A browser without shared workers: the tab opens its own stream.
    let alone = open_tab(client, server, Some("delete window.SharedWorker;")).await;
    wait_for(
        client,
        server,
        "a tab without shared workers to follow the events by itself",
        SETTLE,
        &following_events("direct"),
    )
    .await;
    assert_eq!(event_streams(server).await, 2);
    tabs.push(alone);

    // The upstream heals: every tab hears of it (through the stream).
    fake.set_behavior(Behavior::Healthy);
    for (i, tab) in tabs.iter().enumerate() {
        switch_to(client, tab).await;
        wait_for(
            client,
            server,
            &format!("the banner of tab {} to go once the upstream healed", i + 2),
            SETTLE,
            r#"return document.getElementById("banner").hidden && document.getElementById("mode").textContent === "nominal";"#,
        )
        .await;
    }

    // Closing the tabs ends the second stream; the first tab keeps the shared one.
    for tab in tabs {
        switch_to(client, &tab).await;
        client
            .close_window()
            .await
            .unwrap_or_else(|e| panic!("cannot close a tab: {e}"));
    }
    switch_to(client, &first).await;
    let deadline = Instant::now() + SETTLE;
    while event_streams(server).await != 1 {
        assert!(
            Instant::now() < deadline,
            "the closed tabs' stream is still open\nserver log:\n{}",
            server.log_text()
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
    wait_for(
        client,
        server,
        "the first tab to still follow",
        SETTLE,
        &following_events("shared"),
    )
    .await;
}

/// A new tab, current, showing the dashboard; `before` is a script run in it
/// before the page's own.
async fn open_tab(client: &Client, server: &ServerProcess, before: Option<&str>) -> WindowHandle {
    let tab = client
        .new_window(true)
        .await
        .unwrap_or_else(|e| panic!("cannot open a tab: {e}"))
        .handle;
    switch_to(client, &tab).await;
    if let Some(source) = before {
        client
            .issue_cmd(Cdp {
                cmd: "Page.addScriptToEvaluateOnNewDocument",
                params: json!({ "source": source }),
            })
            .await
            .unwrap_or_else(|e| panic!("cannot add a script to the tab: {e}"));
    }
    client.goto(&server.url("/")).await.unwrap_or_else(|e| {
        panic!(
            "the page did not load in a new tab: {e}\nserver log:\n{}",
            server.log_text()
        )
    });
    tab
}

async fn switch_to(client: &Client, tab: &WindowHandle) {
    client
        .switch_to_window(tab.clone())
        .await
        .unwrap_or_else(|e| panic!("cannot switch tabs: {e}"));
}

/// The server's `spe_event_streams`: the event streams open now.
async fn event_streams(server: &ServerProcess) -> u64 {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(STARTUP)
        .build()
        .unwrap_or_else(|e| panic!("cannot build the HTTP client: {e}"));
    let text = http
        .get(server.url("/metrics"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("GET /metrics: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix("spe_event_streams "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no spe_event_streams in\n{text}"))
}

/// A Chrome DevTools command for the current tab, through chromedriver's
/// `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_headless_browser() {
    if std::env::var_os("SPE_SKIP_BROWSER").is_some_and(|v| v == "1") {
        eprintln!("SPE_SKIP_BROWSER=1: the browser test is skipped");
        return;
    }
    let chromium = find_program(
        "SPE_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let chromedriver = find_program("SPE_CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        panic!(
            "the browser test needs chromium and chromedriver on PATH (Debian: apt-get install -y \
             chromium chromium-driver; or set SPE_CHROMIUM and SPE_CHROMEDRIVER), \
             or SPE_SKIP_BROWSER=1 to skip it"
        );
    };

    let fake = Arc::new(FakeOpenMeteo::start_with(Behavior::service_unavailable_json()).await);
    let server = Arc::new(ServerProcess::start(&fake.base_url(), &SERVER_FLAGS));
    let driver = Driver::start(&chromedriver);
    let client = browser(&driver, &chromium).await;

    // The scenario runs as its own task so that a failed assertion still
    // closes the browser before the test fails.
    let outcome = tokio::spawn(scenario(
        client.clone(),
        Arc::clone(&server),
        Arc::clone(&fake),
    ))
    .await;
    let _ = client.close().await;
    drop(driver);
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the browser scenario did not finish: {e}"),
        }
    }
}
