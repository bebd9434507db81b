//! A fake Open-Meteo server on loopback, speaking raw HTTP/1.1 so it can
//! misbehave for real: hang, cut a body mid-way, reset a connection.
//!
//! ```no_run
//! # async fn demo() {
//! use spe_tests::{Behavior, FakeOpenMeteo};
//!
//! let fake = FakeOpenMeteo::start().await;           // Healthy
//! let base_url = fake.base_url();                     // "http://127.0.0.1:PORT"
//! // ... point a client at base_url ...
//! fake.set_behavior(Behavior::service_unavailable_json());
//! fake.set_behavior(Behavior::Hang);
//! assert!(fake.request_count() <= 2);
//! # }
//! ```
//!
//! Every connection gets one answer and `Connection: close`, so each request
//! is a new connection and a behaviour switch applies to the next request.
//! The behaviour is read when a connection is accepted. Requests are recorded
//! before any answer is sent: once a client has its answer (or error), the
//! request is visible in [`FakeOpenMeteo::requests`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc};
use serde_json::{Value, json};
use spe_core::{Country, MAX_FORECAST_DAYS, MAX_PAST_DAYS, Site};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The largest request head the fake reads.
const MAX_HEAD: usize = 64 * 1024;
/// How long the fake waits for a client to close after a complete answer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How the fake answers the next requests.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Behavior {
    /// 200 with a realistic forecast generated for the request: its
    /// `latitude`, `longitude`, `hourly`, `past_days`, `forecast_days`,
    /// `timezone`, `wind_speed_unit`, `temperature_unit` and `timeformat`,
    /// at the fake's clock ([`FakeOpenMeteo::set_now`]). Bad parameters get
    /// Open-Meteo's 400 `{"error":true,"reason":…}` answers; a path other
    /// than `/v1/forecast` gets 404.
    Healthy,
    /// This status, content type and body, whatever the request.
    Fixed {
        /// HTTP status code.
        status: u16,
        /// `Content-Type` header.
        content_type: String,
        /// The body, sent whole with a correct `Content-Length`.
        body: Vec<u8>,
    },
    /// Read the request and never answer; the connection stays open until
    /// the client closes it or the fake is dropped.
    Hang,
    /// 200 with a `Content-Length` of the whole `body`, but only its first
    /// half is sent before the connection is closed.
    CutBody {
        /// The body whose first half is sent.
        body: Vec<u8>,
    },
    /// 200 with `Transfer-Encoding: chunked`: the first half of `body` as one
    /// chunk, then the connection is closed without the final chunk.
    CutChunked {
        /// The body whose first half is sent.
        body: Vec<u8>,
    },
    /// 200 with a `Content-Length` of the whole `body`: headers and the first
    /// half are sent, then nothing more, and the connection stays open.
    StallBody {
        /// The body whose first half is sent.
        body: Vec<u8>,
    },
    /// 200 `application/json` whose body is not JSON.
    Garbage,
    /// Accept the connection and close it at once, before reading anything.
    Closed,
    /// Read the request, then reset the connection (TCP RST).
    Reset,
    /// Wait `delay`, then behave as `then` (a slow but working upstream).
    Delay {
        /// How long to wait after reading the request.
        delay: Duration,
        /// What to do next.
        then: Box<Behavior>,
    },
}

impl Behavior {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Behavior::Fixed {
            status,
            content_type: "application/json; charset=utf-8".into(),
            body: body.into(),
        }
    }

    /// `status` with Open-Meteo's error body `{"error":true,"reason":reason}`.
    pub fn error_json(status: u16, reason: &str) -> Self {
        Behavior::json(status, json!({"error": true, "reason": reason}).to_string())
    }

    /// `status` with an HTML page.
    pub fn html(status: u16, page: impl Into<Vec<u8>>) -> Self {
        Behavior::Fixed {
            status,
            content_type: "text/html".into(),
            body: page.into(),
        }
    }

    /// 200 with a fixture file of `tests/data/open_meteo/` as the body.
    pub fn fixture(name: &str) -> Self {
        Behavior::json(200, fixture(name))
    }

    /// 503 with a JSON error body, as an API behind a load balancer may send.
    pub fn service_unavailable_json() -> Self {
        Behavior::error_json(503, "Service temporarily unavailable")
    }

    /// 503 with an nginx-style HTML page.
    pub fn service_unavailable_html() -> Self {
        Behavior::html(503, nginx_page(503, "Service Temporarily Unavailable"))
    }

    /// 502 with an nginx-style HTML page.
    pub fn bad_gateway_html() -> Self {
        Behavior::html(502, nginx_page(502, "Bad Gateway"))
    }

    /// 504 with an nginx-style HTML page.
    pub fn gateway_timeout_html() -> Self {
        Behavior::html(504, nginx_page(504, "Gateway Time-out"))
    }

    /// The 400 Open-Meteo sends for an unknown hourly variable.
    pub fn bad_variable(name: &str) -> Self {
        Behavior::error_json(400, &unknown_variable_reason(name))
    }

    /// The 429 Open-Meteo sends past its per-minute limit.
    pub fn rate_limited() -> Self {
        Behavior::error_json(
            429,
            "Minutely API request limit exceeded. Please try again in one minute.",
        )
    }
}

/// A fixture of `tests/data/open_meteo/` (panics if it does not exist).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("open_meteo")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn nginx_page(status: u16, text: &str) -> String {
    format!(
        "<html>\r\n<head><title>{status} {text}</title></head>\r\n<body>\r\n\
         <center><h1>{status} {text}</h1></center>\r\n<hr><center>nginx</center>\r\n\
         </body>\r\n</html>\r\n"
    )
}

fn unknown_variable_reason(name: &str) -> String {
    format!("Cannot initialize WeatherVariable from invalid String value {name} for key hourly")
}

/// A request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, normally.
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    /// The path alone.
    pub path: String,
    /// The decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Shared {
    behavior: Mutex<Behavior>,
    now: Mutex<Option<DateTime<Utc>>>,
    requests: Mutex<Vec<RecordedRequest>>,
    connections: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not break the fake for the others.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fake Open-Meteo API on `127.0.0.1`, on a port of its own. Dropping it
/// stops the server and closes every open connection.
#[derive(Debug)]
pub struct FakeOpenMeteo {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FakeOpenMeteo {
    /// Start a healthy fake. Panics if loopback cannot be bound.
    pub async fn start() -> Self {
        Self::start_with(Behavior::Healthy).await
    }

    /// Start a fake with `behavior`. Panics if loopback cannot be bound.
    pub async fn start_with(behavior: Behavior) -> Self {
        Self::try_start_with(behavior)
            .await
            .unwrap_or_else(|e| panic!("cannot bind the fake Open-Meteo on 127.0.0.1: {e}"))
    }

    /// Start a fake with `behavior`.
    pub async fn try_start_with(behavior: Behavior) -> std::io::Result<Self> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            behavior: Mutex::new(behavior),
            now: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(FakeOpenMeteo {
            addr,
            shared,
            accept,
        })
    }

    /// The socket address, on 127.0.0.1.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to configure a client with: `http://127.0.0.1:PORT`
    /// (the client appends `/v1/forecast`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Change how the next connections are answered.
    pub fn set_behavior(&self, behavior: Behavior) {
        *lock(&self.shared.behavior) = behavior;
    }

    /// The current behaviour.
    pub fn behavior(&self) -> Behavior {
        lock(&self.shared.behavior).clone()
    }

    /// Pin the clock [`Behavior::Healthy`] generates forecasts at (`None`:
    /// the system clock). Tests that compare with a window pin it so that a
    /// run across midnight cannot change the answer.
    pub fn set_now(&self, now: Option<DateTime<Utc>>) {
        *lock(&self.shared.now) = now;
    }

    /// How many requests were read (a [`Behavior::Closed`] connection reads none).
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// How many connections were accepted.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Every request read, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The last request read.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.requests).last().cloned()
    }

    /// The target (path and query) of the last request read.
    pub fn last_request_path(&self) -> Option<String> {
        self.last_request().map(|r| r.target)
    }

    /// Forget the recorded requests and connections.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
        self.shared.connections.store(0, Ordering::SeqCst);
    }
}

impl Drop for FakeOpenMeteo {
    fn drop(&mut self) {
        // The accept loop owns the connection tasks: aborting it drops its
        // JoinSet, which aborts them and closes their sockets.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let behavior = lock(&shared.behavior).clone();
                connections.spawn(serve(stream, behavior, Arc::clone(&shared)));
            }
            // Out of file descriptors or similar: back off a little.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn serve(mut stream: TcpStream, behavior: Behavior, shared: Arc<Shared>) {
    if behavior == Behavior::Closed {
        drop(stream);
        return;
    }
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    lock(&shared.requests).push(request.clone());
    let now = lock(&shared.now).unwrap_or_else(Utc::now);
    // Errors writing to a client that went away are of no interest.
    let _ = respond(&mut stream, &behavior, &request, now).await;
}

async fn respond(
    stream: &mut TcpStream,
    behavior: &Behavior,
    request: &RecordedRequest,
    now: DateTime<Utc>,
) -> std::io::Result<()> {
    let mut behavior = behavior;
    while let Behavior::Delay { delay, then } = behavior {
        tokio::time::sleep(*delay).await;
        behavior = then;
    }
    match behavior {
        Behavior::Healthy => {
            let (status, body) = if request.path != "/v1/forecast" {
                (
                    404,
                    json!({"error": true, "reason": "Not Found"}).to_string(),
                )
            } else {
                match generate_forecast(&request.query, now) {
                    Ok(body) => (200, body.to_string()),
                    Err(reason) => (400, json!({"error": true, "reason": reason}).to_string()),
                }
            };
            write_whole(
                stream,
                status,
                "application/json; charset=utf-8",
                body.as_bytes(),
            )
            .await
        }
        Behavior::Fixed {
            status,
            content_type,
            body,
        } => write_whole(stream, *status, content_type, body).await,
        Behavior::Garbage => {
            let body = b"\x00\x1f\x8b garbage {\"hourly\": [1, 2, <<not json>>\xff\xfe";
            write_whole(stream, 200, "application/json; charset=utf-8", body).await
        }
        Behavior::CutBody { body } | Behavior::StallBody { body } => {
            let head = head(
                200,
                "application/json; charset=utf-8",
                &[("Content-Length", body.len().to_string())],
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body[..body.len() / 2]).await?;
            stream.flush().await?;
            if matches!(behavior, Behavior::StallBody { .. }) {
                wait_for_close(stream).await;
            } else {
                stream.shutdown().await?;
            }
            Ok(())
        }
        Behavior::CutChunked { body } => {
            let head = head(
                200,
                "application/json; charset=utf-8",
                &[("Transfer-Encoding", "chunked".to_owned())],
            );
            stream.write_all(head.as_bytes()).await?;
            let half = &body[..body.len() / 2];
            stream
                .write_all(format!("{:x}\r\n", half.len()).as_bytes())
                .await?;
            stream.write_all(half).await?;
            stream.write_all(b"\r\n").await?;
            stream.flush().await?;
            stream.shutdown().await
        }
        Behavior::Hang => {
            wait_for_close(stream).await;
            Ok(())
        }
        Behavior::Reset => stream.set_zero_linger(),
        // `Closed` is handled before reading; reached through a `Delay`, it
        // closes without answering. A `Delay` was unwrapped above.
        Behavior::Closed | Behavior::Delay { .. } => Ok(()),
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Whatever",
    }
}

fn head(status: u16, content_type: &str, extra: &[(&str, String)]) -> String {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nConnection: close\r\n",
        reason_phrase(status)
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

async fn write_whole(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = head(
        status,
        content_type,
        &[("Content-Length", body.len().to_string())],
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    stream.shutdown().await?;
    // Let the client read everything before the socket goes away.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, wait_for_close(stream)).await;
    Ok(())
}

/// Read (and discard) until the peer closes or the connection fails.
async fn wait_for_close(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Read and parse one request head; `None` if the client closed first or
/// sent something that is not HTTP.
async fn read_request(stream: &mut TcpStream) -> Option<RecordedRequest> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q),
        None => (target.clone(), ""),
    };
    let query = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    Some(RecordedRequest {
        method,
        target,
        path,
        query,
        headers,
    })
}

/// Extra hourly variables the fake knows: name, unit, a typical value.
const EXTRAS: &[(&str, &str, f64)] = &[
    ("relative_humidity_2m", "%", 78.0),
    ("dew_point_2m", "°C", 1.5),
    ("apparent_temperature", "°C", 2.0),
    ("precipitation", "mm", 0.0),
    ("surface_pressure", "hPa", 1008.4),
    ("pressure_msl", "hPa", 1016.2),
    ("wind_direction_10m", "°", 225.0),
    ("direct_radiation", "W/m²", 0.0),
    ("diffuse_radiation", "W/m²", 0.0),
];

/// The body [`Behavior::Healthy`] answers for query `query` at `now`, or
/// the `reason` of the 400 Open-Meteo would answer.
///
/// Local days run from midnight `past_days` before today (in `timezone`) for
/// `past_days + forecast_days` days; like Open-Meteo, the whole answer uses
/// one UTC offset, the zone's offset at `now`. Values are smooth,
/// deterministic functions of time and place, and physically plausible.
pub fn generate_forecast(query: &[(String, String)], now: DateTime<Utc>) -> Result<Value, String> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let number = |name: &str| -> Result<Option<f64>, String> {
        get(name)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| format!("Parameter '{name}' must be a floating point number"))
            })
            .transpose()
    };
    let (Some(latitude), Some(longitude)) = (number("latitude")?, number("longitude")?) else {
        return Err(
            "Parameter 'latitude' and 'longitude' must have the same number of elements".into(),
        );
    };
    if !(-90.0..=90.0).contains(&latitude) {
        return Err(format!(
            "Latitude must be in range of -90 to 90°. Given: {latitude}."
        ));
    }
    if !(-180.0..=180.0).contains(&longitude) {
        return Err(format!(
            "Longitude must be in range of -180 to 180°. Given: {longitude}."
        ));
    }
    let days = |name: &str, default: u16, max: u16| -> Result<u16, String> {
        match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u16>()
                .ok()
                .filter(|d| *d <= max)
                .ok_or_else(|| format!("Parameter '{name}' must be between 0 and {max}")),
        }
    };
    let past_days = days("past_days", 0, MAX_PAST_DAYS)?;
    let forecast_days = days("forecast_days", 7, MAX_FORECAST_DAYS)?;
    let tz = get("timezone").unwrap_or("GMT");
    let site = Site::new("fake", latitude, longitude, tz, Country::None)
        .map_err(|_| "Invalid timezone".to_owned())?;
    let (wind_unit, wind_factor) = match get("wind_speed_unit").unwrap_or("kmh") {
        "ms" => ("m/s", 1.0),
        "kmh" => ("km/h", 3.6),
        "mph" => ("mp/h", 2.236_936),
        "kn" => ("kn", 1.943_844),
        other => {
            return Err(format!(
                "Cannot initialize WindspeedUnit from invalid String value {other} for key wind_speed_unit"
            ));
        }
    };
    let fahrenheit = match get("temperature_unit").unwrap_or("celsius") {
        "celsius" => false,
        "fahrenheit" => true,
        other => {
            return Err(format!(
                "Cannot initialize TemperatureUnit from invalid String value {other} for key temperature_unit"
            ));
        }
    };
    let unixtime = match get("timeformat").unwrap_or("iso8601") {
        "iso8601" => false,
        "unixtime" => true,
        other => {
            return Err(format!(
                "Cannot initialize Timeformat from invalid String value {other} for key timeformat"
            ));
        }
    };
    let variables: Vec<&str> = get("hourly")
        .map(|h| h.split(',').filter(|v| !v.is_empty()).collect())
        .unwrap_or_default();

    let offset = i64::from(site.utc_offset_seconds(now));
    let today = (now + chrono::Duration::seconds(offset)).date_naive();
    let first = today - chrono::Duration::days(i64::from(past_days));
    let local_start = first.and_time(NaiveTime::MIN);
    let n = 24 * usize::from(past_days + forecast_days);

    let mut units = serde_json::Map::new();
    let mut hourly = serde_json::Map::new();
    units.insert(
        "time".into(),
        json!(if unixtime { "unixtime" } else { "iso8601" }),
    );
    let times: Vec<Value> = (0..n)
        .map(|i| {
            let local = local_start + chrono::Duration::hours(i as i64);
            if unixtime {
                json!(local.and_utc().timestamp() - offset)
            } else {
                json!(local.format("%Y-%m-%dT%H:%M").to_string())
            }
        })
        .collect();
    hourly.insert("time".into(), Value::Array(times));
    let utc_start = local_start.and_utc() - chrono::Duration::seconds(offset);
    for var in variables {
        let (unit, values): (&str, Vec<Value>) = match var {
            "temperature_2m" => (
                if fahrenheit { "°F" } else { "°C" },
                (0..n)
                    .map(|i| {
                        let c = temperature(utc_start, i, latitude, longitude);
                        round1(if fahrenheit { c * 9.0 / 5.0 + 32.0 } else { c })
                    })
                    .collect(),
            ),
            "shortwave_radiation" => (
                "W/m²",
                (0..n)
                    .map(|i| round1(radiation(utc_start, i, latitude, longitude)))
                    .collect(),
            ),
            "cloud_cover" => ("%", (0..n).map(|i| json!(cloud(utc_start, i))).collect()),
            "wind_speed_10m" | "wind_gusts_10m" => {
                let gust = if var == "wind_gusts_10m" { 1.8 } else { 1.0 };
                (
                    wind_unit,
                    (0..n)
                        .map(|i| round1(wind(utc_start, i) * gust * wind_factor))
                        .collect(),
                )
            }
            other => match EXTRAS.iter().find(|(name, _, _)| *name == other) {
                Some((_, unit, value)) => (unit, (0..n).map(|_| json!(value)).collect()),
                None => return Err(unknown_variable_reason(other)),
            },
        };
        units.insert(var.into(), json!(unit));
        hourly.insert(var.into(), Value::Array(values));
    }

    Ok(json!({
        "latitude": latitude,
        "longitude": longitude,
        "generationtime_ms": 0.0519752502441406,
        "utc_offset_seconds": offset,
        "timezone": site.timezone().name(),
        "timezone_abbreviation": gmt_abbreviation(offset),
        "elevation": 42.0,
        "hourly_units": Value::Object(units),
        "hourly": Value::Object(hourly),
    }))
}

fn round1(x: f64) -> Value {
    json!((x * 10.0).round() / 10.0)
}

fn gmt_abbreviation(offset: i64) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let (h, m) = (offset.abs() / 3600, offset.abs() % 3600 / 60);
    match (h, m) {
        (0, 0) => "GMT".into(),
        (h, 0) => format!("GMT{sign}{h}"),
        (h, m) => format!("GMT{sign}{h}:{m:02}"),
    }
}

fn hour_at(utc_start: DateTime<Utc>, i: usize) -> DateTime<Utc> {
    utc_start + chrono::Duration::hours(i as i64)
}

/// A deterministic 0..1 value for hour `i` (a cheap integer hash).
fn noise(t: DateTime<Utc>, salt: u64) -> f64 {
    let mut x = (t.timestamp() as u64 / 3600) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn solar_hour(t: DateTime<Utc>, longitude: f64) -> f64 {
    (f64::from(t.hour()) + longitude / 15.0).rem_euclid(24.0)
}

fn temperature(utc_start: DateTime<Utc>, i: usize, latitude: f64, longitude: f64) -> f64 {
    let t = hour_at(utc_start, i);
    let season = -((f64::from(t.ordinal()) + 10.0) / 365.25 * std::f64::consts::TAU).cos()
        * latitude.signum();
    let mean = 25.0 - 0.35 * latitude.abs() + 8.0 * season * (latitude.abs() / 60.0);
    let daily = 4.0 * ((solar_hour(t, longitude) - 9.0) / 24.0 * std::f64::consts::TAU).sin();
    mean + daily + 1.5 * (noise(t, 1) - 0.5)
}

fn cloud(utc_start: DateTime<Utc>, i: usize) -> u32 {
    let t = hour_at(utc_start, i);
    let slow = 0.5 + 0.5 * (t.timestamp() as f64 / 3600.0 / 17.0).sin();
    ((slow * 80.0 + noise(t, 2) * 20.0).round() as u32).min(100)
}

fn radiation(utc_start: DateTime<Utc>, i: usize, latitude: f64, longitude: f64) -> f64 {
    let t = hour_at(utc_start, i);
    let declination = -23.44_f64.to_radians()
        * ((f64::from(t.ordinal()) + 10.0) / 365.25 * std::f64::consts::TAU).cos();
    // Mean over the preceding hour: take the sun at half past.
    let hour_angle = ((solar_hour(t, longitude) - 0.5 - 12.0) * 15.0).to_radians();
    let lat = latitude.to_radians();
    let sin_elevation =
        lat.sin() * declination.sin() + lat.cos() * declination.cos() * hour_angle.cos();
    let clear = 1000.0 * sin_elevation.max(0.0);
    let cc = f64::from(cloud(utc_start, i)) / 100.0;
    clear * (1.0 - 0.75 * cc.powi(3))
}

fn wind(utc_start: DateTime<Utc>, i: usize) -> f64 {
    let t = hour_at(utc_start, i);
    (3.5 + 2.5 * (t.timestamp() as f64 / 3600.0 / 11.0).sin() + 1.5 * noise(t, 3)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn generated_forecast_is_parsed_by_spe_core() {
        let now = Utc
            .with_ymd_and_hms(2026, 7, 1, 12, 0, 0)
            .single()
            .expect("valid time");
        let body = generate_forecast(
            &q(&[
                ("latitude", "48.85"),
                ("longitude", "2.35"),
                (
                    "hourly",
                    "temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m",
                ),
                ("past_days", "2"),
                ("forecast_days", "3"),
                ("timezone", "Europe/Paris"),
                ("wind_speed_unit", "ms"),
            ]),
            now,
        )
        .expect("valid query");
        let frame = spe_core::parse_forecast(body.to_string().as_bytes(), now).expect("parses");
        assert_eq!(frame.len(), 120);
        assert!(
            frame
                .shortwave_radiation()
                .iter()
                .flatten()
                .any(|&r| r > 500.0)
        );
        assert_eq!(
            frame.axis().start(),
            Utc.with_ymd_and_hms(2026, 6, 28, 22, 0, 0)
                .single()
                .expect("valid time")
        );
    }

    #[test]
    fn bad_queries_get_open_meteo_reasons() {
        let now = Utc::now();
        let err = generate_forecast(
            &q(&[
                ("latitude", "1"),
                ("longitude", "1"),
                ("hourly", "tempeture_2m"),
            ]),
            now,
        )
        .expect_err("unknown variable");
        assert!(err.contains("tempeture_2m"));
        let err = generate_forecast(
            &q(&[
                ("latitude", "1"),
                ("longitude", "1"),
                ("timezone", "Mars/Base"),
            ]),
            now,
        )
        .expect_err("bad zone");
        assert_eq!(err, "Invalid timezone");
    }
}
