//! The Open-Meteo forecast API client: [`OpenMeteo`], its [`OpenMeteoConfig`],
//! and the response parser [`parse_forecast`].
//!
//! The client asks `GET {base_url}/v1/forecast` for the four core hourly
//! variables (plus any configured extras) in the site's time zone, with wind
//! in m/s and ISO 8601 local times, and turns the answer into a validated
//! [`WeatherFrame`] on a UTC axis. Every way the upstream can fail maps to one
//! [`SourceError`] variant, so a circuit breaker can tell an upstream outage
//! ([`Fault::Upstream`](super::Fault::Upstream)) from a bad request
//! ([`Fault::Request`](super::Fault::Request)).

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::Instrument as _;
use url::Url;

use super::{DataSource, SourceError, Window};
use crate::frame::{Column, WeatherColumns, WeatherFrame, WeatherVariable};
use crate::provenance::Provenance;
use crate::series::{HOUR, TimeAxis};
use crate::site::Site;

/// The name of the source in errors, logs and incidents.
const SOURCE: &str = "open-meteo";
/// The public Open-Meteo API.
const DEFAULT_BASE_URL: &str = "https://api.open-meteo.com";
/// The path appended to the base URL.
const FORECAST_PATH: &str = "v1/forecast";
/// Default whole-request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);
/// The largest successful body accepted. A full 92 + 16 day answer with a
/// dozen variables is well under 1 MiB.
const MAX_BODY_BYTES: usize = 16 << 20;
/// How much of an error body is read to find its reason.
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;
/// How many characters of a non-JSON error body are kept as the reason.
const REASON_CHARS: usize = 200;
/// How many characters of an upstream JSON `reason` are kept.
const MAX_JSON_REASON_CHARS: usize = 1000;
/// The largest UTC offset accepted (ISO 8601 and Open-Meteo stay within ±18 h).
const MAX_UTC_OFFSET_SECONDS: i64 = 18 * 3600;
/// How far from the site the point an answer is for may be, in km.
/// Open-Meteo answers for the grid cell it used (its `latitude` and
/// `longitude`): a few km from the point asked for with its regional
/// models, a few tens of km with the coarsest global one (0.25°), and a
/// neighbouring cell may be chosen for its elevation. Farther, the answer is
/// another place's weather (a misrouted proxy, swapped coordinates).
pub const MAX_ANSWER_DISTANCE_KM: f64 = 100.0;
/// Extra time allowed past the configured timeout before the backstop fires;
/// the HTTP client's own whole-request timeout normally fires first.
const BACKSTOP_MARGIN: Duration = Duration::from_millis(500);

/// Configuration of the [`OpenMeteo`] client.
///
/// Deserializes from a partial object (missing fields take their defaults);
/// the timeout is written in milliseconds as `timeout_ms`.
///
/// ```
/// use std::time::Duration;
/// use spe_core::OpenMeteoConfig;
///
/// let config = OpenMeteoConfig::default();
/// assert_eq!(config.base_url, "https://api.open-meteo.com");
/// assert_eq!(config.timeout, Duration::from_millis(5000));
///
/// let self_hosted: OpenMeteoConfig = serde_json::from_str(
///     r#"{"base_url": "http://meteo.internal:8080/", "timeout_ms": 2000,
///         "extra_hourly": ["relative_humidity_2m"]}"#,
/// ).unwrap();
/// assert_eq!(self_hosted.timeout, Duration::from_secs(2));
/// assert_eq!(self_hosted.user_agent, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenMeteoConfig {
    /// Base URL of the API, default `https://api.open-meteo.com`. The client
    /// appends `/v1/forecast` (a trailing slash is fine; a URL that already
    /// ends in `/v1/forecast` is used as is). Tests and self-hosted instances
    /// pass their own, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    /// Whole-request timeout, from connecting to the last byte of the body
    /// (default 5000 ms). Serialized as `timeout_ms`, in milliseconds.
    #[serde(rename = "timeout_ms", with = "duration_ms")]
    pub timeout: Duration,
    /// The `User-Agent` header; `None` sends `spe-core/<version>`.
    pub user_agent: Option<String>,
    /// Hourly variables to request on top of the four core ones, by their
    /// Open-Meteo names (e.g. `relative_humidity_2m`). Their values land in
    /// [`WeatherColumns::extra`], checked only to be finite; their units are
    /// taken as the API gives them. Default: none.
    pub extra_hourly: Vec<String>,
}

impl Default for OpenMeteoConfig {
    fn default() -> Self {
        OpenMeteoConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            user_agent: None,
            extra_hourly: Vec::new(),
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// The Open-Meteo forecast API as a [`DataSource`] (name `open-meteo`).
///
/// One `GET {base_url}/v1/forecast` per [`fetch`](DataSource::fetch), with a
/// whole-request timeout, a `tracing` span (`open_meteo_fetch`) and the
/// error mapping below. Cheap to clone (the HTTP connection pool is shared).
///
/// | what happens | error | fault |
/// |---|---|---|
/// | no complete answer within the timeout (connect, headers or body) | [`SourceError::Timeout`] | upstream |
/// | connection refused, reset or closed before an answer | [`SourceError::Connect`] | upstream |
/// | HTTP status ≥ 400 (and any other non-2xx) | [`SourceError::Status`], with Open-Meteo's JSON `reason`, or the start of the body on one line | 4xx: request, else upstream |
/// | body cut off before its end | [`SourceError::Truncated`] | upstream |
/// | body not the expected JSON (including a 200 with `{"error":true}`) | [`SourceError::InvalidBody`] | upstream |
/// | data that is not weather (unit, time axis, range) | [`SourceError::InvalidData`] | upstream |
/// | an answer for another place (its `latitude`/`longitude` over [`MAX_ANSWER_DISTANCE_KM`] from the site) or another time zone (`utc_offset_seconds` not the site's offset now) | [`SourceError::InvalidData`] | upstream |
/// | no value of a core variable at the current hour, or an answer that does not cover the window | [`SourceError::InvalidData`] | upstream |
///
/// ```no_run
/// use chrono::Utc;
/// use spe_core::{DataSource, OpenMeteo, OpenMeteoConfig, Site, Window};
///
/// # async fn run() -> Result<(), spe_core::SourceError> {
/// let client = OpenMeteo::new(OpenMeteoConfig::default())?;
/// let window = Window::new(Utc::now(), 1, 3)?;
/// let frame = client.fetch(&Site::paris(), &window).await?;
/// println!("{} hours, first temperature {:?}", frame.len(), frame.temperature_2m()[0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct OpenMeteo {
    config: OpenMeteoConfig,
    endpoint: Url,
    extras: Vec<String>,
    client: reqwest::Client,
}

impl OpenMeteo {
    /// A client for `config`.
    ///
    /// Errors with [`SourceError::InvalidRequest`] if the base URL is not an
    /// absolute `http` or `https` URL without query or fragment, the timeout
    /// is zero, the user agent is not a valid header value, or an extra
    /// variable name is not a plain `snake_case` name (or is a core variable,
    /// which is always requested).
    ///
    /// Requests to a loopback host (`localhost`, `127.0.0.0/8`, `::1`) never
    /// go through a proxy from the environment; other hosts honour
    /// `HTTPS_PROXY` and friends as `reqwest` does.
    ///
    /// ```
    /// use spe_core::{OpenMeteo, OpenMeteoConfig, SourceError};
    ///
    /// let ok = OpenMeteo::new(OpenMeteoConfig::default()).unwrap();
    /// assert_eq!(ok.endpoint().as_str(), "https://api.open-meteo.com/v1/forecast");
    ///
    /// let bad = OpenMeteoConfig { base_url: "not a url".into(), ..Default::default() };
    /// assert!(matches!(OpenMeteo::new(bad), Err(SourceError::InvalidRequest(_))));
    /// ```
    pub fn new(config: OpenMeteoConfig) -> Result<Self, SourceError> {
        let endpoint = endpoint_url(&config.base_url)?;
        if config.timeout.is_zero() {
            return Err(SourceError::InvalidRequest(
                "open-meteo timeout must be more than zero".into(),
            ));
        }
        let extras = validated_extras(&config.extra_hourly)?;
        let user_agent = config
            .user_agent
            .clone()
            .unwrap_or_else(|| concat!("spe-core/", env!("CARGO_PKG_VERSION")).to_owned());
        let user_agent = reqwest::header::HeaderValue::from_str(&user_agent).map_err(|_| {
            SourceError::InvalidRequest(format!(
                "open-meteo user agent {user_agent:?} is not a valid header value"
            ))
        })?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(user_agent)
            .redirect(reqwest::redirect::Policy::limited(5));
        if is_loopback(&endpoint) {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| {
            SourceError::InvalidRequest(format!(
                "cannot build the HTTP client: {}",
                error_chain(&e)
            ))
        })?;
        Ok(OpenMeteo {
            config,
            endpoint,
            extras,
            client,
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &OpenMeteoConfig {
        &self.config
    }

    /// The forecast endpoint, `{base_url}/v1/forecast`, without a query.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The URL [`fetch`](DataSource::fetch) requests for `site` and `window`:
    /// `latitude`, `longitude`, `hourly` (the four core variables, then the
    /// extras), `past_days`, `forecast_days`, `timezone` (the site's IANA
    /// name), `wind_speed_unit=ms` and `timeformat=iso8601`.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use spe_core::{OpenMeteo, OpenMeteoConfig, Site, Window};
    ///
    /// let client = OpenMeteo::new(OpenMeteoConfig {
    ///     base_url: "http://127.0.0.1:8080/".into(),
    ///     ..Default::default()
    /// }).unwrap();
    /// let now = Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap();
    /// let url = client.url_for(&Site::paris(), &Window::new(now, 1, 3).unwrap());
    /// assert_eq!(
    ///     url.as_str(),
    ///     "http://127.0.0.1:8080/v1/forecast?latitude=48.85&longitude=2.35\
    ///      &hourly=temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m\
    ///      &past_days=1&forecast_days=3&timezone=Europe/Paris\
    ///      &wind_speed_unit=ms&timeformat=iso8601"
    /// );
    /// ```
    pub fn url_for(&self, site: &Site, window: &Window) -> Url {
        let hourly = WeatherVariable::ALL
            .iter()
            .map(|v| v.name())
            .chain(self.extras.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(",");
        let params = [
            ("latitude", site.latitude().to_string()),
            ("longitude", site.longitude().to_string()),
            ("hourly", hourly),
            ("past_days", window.past_days().to_string()),
            ("forecast_days", window.forecast_days().to_string()),
            ("timezone", site.timezone().name().to_owned()),
            ("wind_speed_unit", "ms".to_owned()),
            ("timeformat", "iso8601".to_owned()),
        ];
        let mut query = String::new();
        for (i, (key, value)) in params.iter().enumerate() {
            if i > 0 {
                query.push('&');
            }
            query.push_str(key);
            query.push('=');
            encode_query_value(&mut query, value);
        }
        let mut url = self.endpoint.clone();
        url.set_query(Some(&query));
        url
    }

    /// Parse a forecast body as this client does: like [`parse_forecast`],
    /// but the configured extra variables are required and kept in
    /// [`WeatherColumns::extra`].
    pub fn parse(
        &self,
        body: &[u8],
        produced_at: DateTime<Utc>,
    ) -> Result<WeatherFrame, SourceError> {
        parse_with_extras(body, produced_at, &self.extras).map(|(frame, _)| frame)
    }

    /// GET the URL and return a successful body, or the mapped error.
    async fn get_body(&self, url: Url) -> Result<Vec<u8>, SourceError> {
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport_error(e, false))?;
        let status = response.status();
        if !status.is_success() {
            // Best effort: whatever arrives of the body explains the status.
            let (body, _) = read_body(&mut response, MAX_ERROR_BODY_BYTES).await;
            return Err(SourceError::Status {
                source_name: SOURCE.to_owned(),
                status: status.as_u16(),
                reason: status_reason(&body, status.canonical_reason()),
            });
        }
        if let Some(len) = response.content_length() {
            if len > MAX_BODY_BYTES as u64 {
                return Err(body_too_large());
            }
        }
        match read_body(&mut response, MAX_BODY_BYTES).await {
            (body, None) => Ok(body),
            (_, Some(BodyError::TooLarge)) => Err(body_too_large()),
            (_, Some(BodyError::Transport(e))) => Err(self.transport_error(e, true)),
        }
    }

    fn transport_error(&self, e: reqwest::Error, reading_body: bool) -> SourceError {
        // The full URL (with the site's coordinates) is noise in a message;
        // the origin says which upstream failed.
        let e = e.without_url();
        let message = format!(
            "{}: {}",
            self.endpoint.origin().ascii_serialization(),
            error_chain(&e)
        );
        if e.is_timeout() {
            SourceError::Timeout {
                source_name: SOURCE.to_owned(),
                after: self.config.timeout,
            }
        } else if e.is_builder() {
            SourceError::InvalidRequest(format!("open-meteo request: {message}"))
        } else if reading_body {
            SourceError::Truncated {
                source_name: SOURCE.to_owned(),
                message,
            }
        } else {
            SourceError::Connect {
                source_name: SOURCE.to_owned(),
                message,
            }
        }
    }

    async fn fetch_inner(&self, site: &Site, window: &Window) -> Result<WeatherFrame, SourceError> {
        let url = self.url_for(site, window);
        tracing::debug!(url = %url, "requesting forecast");
        let started = Instant::now();
        let body = tokio::time::timeout(
            self.config.timeout.saturating_add(BACKSTOP_MARGIN),
            self.get_body(url),
        )
        .await
        .map_err(|_| SourceError::Timeout {
            source_name: SOURCE.to_owned(),
            after: self.config.timeout,
        })??;
        // The time of the window, like every source: the clock of the
        // caller (a failover's, maybe simulated) dates the frame, not this
        // machine's; its age counts from when it was asked for.
        let produced_at = window.now();
        let (frame, answered) = parse_with_extras(&body, produced_at, &self.extras)?;
        answered.check(site, window.now())?;
        window.check_answer(site, SOURCE, &frame)?;
        tracing::debug!(
            hours = frame.len(),
            bytes = body.len(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "forecast received"
        );
        Ok(frame)
    }
}

#[async_trait]
impl DataSource for OpenMeteo {
    fn name(&self) -> &str {
        SOURCE
    }

    async fn fetch(&self, site: &Site, window: &Window) -> Result<WeatherFrame, SourceError> {
        let span = tracing::info_span!(
            "open_meteo_fetch",
            site = %site.name(),
            past_days = window.past_days(),
            forecast_days = window.forecast_days(),
        );
        async {
            let result = self.fetch_inner(site, window).await;
            if let Err(e) = &result {
                tracing::warn!(error = %e, fault = ?e.fault(), "open-meteo fetch failed");
            }
            result
        }
        .instrument(span)
        .await
    }

    /// `true`: every answer goes through [`Window::check_answer`].
    fn checks_its_answers(&self) -> bool {
        true
    }
}

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Read the body up to `limit` bytes; returns what was read and why reading stopped early.
async fn read_body(response: &mut reqwest::Response, limit: usize) -> (Vec<u8>, Option<BodyError>) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    let room = limit - body.len();
                    body.extend_from_slice(&chunk[..room]);
                    return (body, Some(BodyError::TooLarge));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return (body, None),
            Err(e) => return (body, Some(BodyError::Transport(e))),
        }
    }
}

fn body_too_large() -> SourceError {
    SourceError::InvalidBody {
        source_name: SOURCE.to_owned(),
        message: format!("body larger than {MAX_BODY_BYTES} bytes"),
    }
}

/// `{base_url}/v1/forecast`, validated.
fn endpoint_url(base_url: &str) -> Result<Url, SourceError> {
    let invalid = |why: String| {
        SourceError::InvalidRequest(format!("open-meteo base URL {base_url:?}: {why}"))
    };
    let base = Url::parse(base_url.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https".into()));
    }
    if base.cannot_be_a_base() || base.host().is_none() {
        return Err(invalid("not an absolute URL with a host".into()));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(invalid("must have no query or fragment".into()));
    }
    let path = base.path().trim_end_matches('/');
    let path = if path.ends_with(FORECAST_PATH) {
        path.to_owned()
    } else {
        format!("{path}/{FORECAST_PATH}")
    };
    let mut endpoint = base.clone();
    endpoint.set_path(&path);
    Ok(endpoint)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn validated_extras(extras: &[String]) -> Result<Vec<String>, SourceError> {
    let mut out: Vec<String> = Vec::with_capacity(extras.len());
    for name in extras {
        let name = name.trim();
        let plain = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !plain {
            return Err(SourceError::InvalidRequest(format!(
                "open-meteo extra hourly variable {name:?} is not a snake_case variable name"
            )));
        }
        if WeatherVariable::from_name(name).is_some() {
            return Err(SourceError::InvalidRequest(format!(
                "open-meteo extra hourly variable {name:?} is a core variable, always requested"
            )));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// Percent-encode a query value, keeping the characters Open-Meteo's own
/// examples show literally (`,` between variables, `/` in time zone names).
fn encode_query_value(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The error message of `e` with its sources, `a: b: c`, without repeats.
fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if parts.last().is_none_or(|last| !last.contains(&msg)) {
            parts.push(msg);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The reason of an HTTP error: Open-Meteo's JSON `reason`, else the start of
/// the body's text on one line, else the status's canonical reason.
fn status_reason(body: &[u8], canonical: Option<&str>) -> String {
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) {
        if let Some(Value::String(reason)) = obj.get("reason") {
            let reason = truncate_chars(&one_line(reason), MAX_JSON_REASON_CHARS);
            if !reason.is_empty() {
                return reason;
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = if text.trim_start().starts_with('<') {
        strip_html(&text)
    } else {
        text.into_owned()
    };
    let reason = truncate_chars(&one_line(&text), REASON_CHARS);
    if reason.is_empty() {
        canonical.unwrap_or("(empty body)").to_owned()
    } else {
        reason
    }
}

/// Collapse every run of whitespace and control characters into one space.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The text of an HTML page: tags dropped, `<script>` and `<style>` contents
/// skipped. Crude, but enough for a proxy's error page.
fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[..gt].trim_start().to_ascii_lowercase();
        rest = &after[gt + 1..];
        out.push(' ');
        for skipped in ["script", "style"] {
            if tag.starts_with(skipped) {
                let close = format!("</{skipped}");
                rest = match rest.to_ascii_lowercase().find(&close) {
                    // ASCII lowercasing keeps byte offsets.
                    Some(end) => &rest[end..],
                    None => "",
                };
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parse an Open-Meteo `/v1/forecast` JSON body into a [`WeatherFrame`] with
/// [`Provenance::Live`], produced at `produced_at`.
///
/// What it accepts and checks:
///
/// - `hourly.time` as local `YYYY-MM-DDTHH:MM` times (`timeformat=iso8601`),
///   made UTC by subtracting `utc_offset_seconds`, or as integer Unix seconds
///   (`timeformat=unixtime`), already UTC. Times must follow each other by
///   exactly one hour, else [`SourceError::InvalidData`].
/// - `hourly_units` must give each core variable's unit: `temperature_2m` in
///   `°C` (or `°F`, converted to °C), `shortwave_radiation` in `W/m²`,
///   `cloud_cover` in `%`, `wind_speed_10m` in `m/s` (or `km/h`, `mp/h`, `kn`,
///   converted to m/s). Any other unit is [`SourceError::InvalidData`] naming
///   the variable and the unit.
/// - `null` values are missing values (`None`), as Open-Meteo sends past a
///   model's horizon.
/// - Radiation values from -5 W/m² up to 0 (model rounding noise) become 0;
///   lower values are invalid data.
/// - Values outside a variable's
///   [plausible range](WeatherVariable::plausible_range) are invalid data,
///   never data. A number too large for `f64` (say `1e999`) is an error, never
///   an infinity.
/// - A missing core variable, a column whose length differs from
///   `hourly.time`, a value that is neither a number nor `null`, a body that
///   is not JSON, and a `{"error": true, "reason": …}` body (even with status
///   200) are [`SourceError::InvalidBody`].
/// - Other hourly variables are ignored. ([`OpenMeteo::parse`] keeps those
///   the client was configured to request.)
///
/// It never panics, whatever the bytes.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use spe_core::{Provenance, parse_forecast};
///
/// let body = r#"{
///   "latitude": 48.86, "longitude": 2.34, "generationtime_ms": 0.07,
///   "utc_offset_seconds": 3600, "timezone": "Europe/Paris",
///   "timezone_abbreviation": "GMT+1", "elevation": 43.0,
///   "hourly_units": {"time": "iso8601", "temperature_2m": "°C",
///     "shortwave_radiation": "W/m²", "cloud_cover": "%", "wind_speed_10m": "m/s"},
///   "hourly": {
///     "time": ["2026-01-15T00:00", "2026-01-15T01:00", "2026-01-15T02:00"],
///     "temperature_2m": [3.1, 2.8, null],
///     "shortwave_radiation": [0.0, -0.4, null],
///     "cloud_cover": [100, 87, null],
///     "wind_speed_10m": [4.2, 3.9, null]
///   }
/// }"#;
/// let now = Utc.with_ymd_and_hms(2026, 1, 15, 9, 0, 0).unwrap();
/// let frame = parse_forecast(body.as_bytes(), now).unwrap();
/// assert_eq!(frame.len(), 3);
/// // Local midnight in Paris (UTC+1) is 23:00 UTC the day before.
/// assert_eq!(frame.axis().start(), Utc.with_ymd_and_hms(2026, 1, 14, 23, 0, 0).unwrap());
/// assert_eq!(frame.temperature_2m(), &[Some(3.1), Some(2.8), None]);
/// assert_eq!(frame.shortwave_radiation()[1], Some(0.0)); // -0.4 clamped
/// assert_eq!(frame.provenance(), Provenance::Live);
///
/// let err = parse_forecast(br#"{"error": true, "reason": "Invalid timezone"}"#, now).unwrap_err();
/// assert!(err.to_string().contains("Invalid timezone"));
/// ```
pub fn parse_forecast(
    body: &[u8],
    produced_at: DateTime<Utc>,
) -> Result<WeatherFrame, SourceError> {
    parse_with_extras(body, produced_at, &[]).map(|(frame, _)| frame)
}

/// Refuses an answer whose local times are not the site's: Open-Meteo
/// writes them with the offset of the time zone asked for as it is at the
/// request (one offset for the whole answer), so `utc_offset_seconds` must
/// be the site's offset around `now` (an hour either side, for a request
/// made as the clocks change). Any other offset would shift every value by
/// the difference.
fn check_offset(site: &Site, now: DateTime<Utc>, offset: i64) -> Result<(), SourceError> {
    let zone = site.timezone();
    let around =
        [-1, 0, 1].map(|h| i64::from(site.utc_offset_seconds(now + chrono::Duration::hours(h))));
    if around.contains(&offset) {
        return Ok(());
    }
    Err(invalid_data(format!(
        "utc_offset_seconds = {offset} is not the offset of {} now ({} s): the answer is for \
         another time zone, and its times would be shifted",
        zone.name(),
        around[1]
    )))
}

/// Refuses an answer for a point more than [`MAX_ANSWER_DISTANCE_KM`] from
/// the site: another place's weather.
fn check_location(site: &Site, latitude: f64, longitude: f64) -> Result<(), SourceError> {
    let km = site.distance_km(latitude, longitude);
    if km <= MAX_ANSWER_DISTANCE_KM {
        return Ok(());
    }
    Err(invalid_data(format!(
        "the answer is for latitude {latitude}, longitude {longitude}, {km:.0} km from {} \
         ({}, {}): another place's weather",
        site.name(),
        site.latitude(),
        site.longitude()
    )))
}

/// What an answer says of itself, beside its hours: checked against the
/// site by [`OpenMeteo`]'s fetch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Answered {
    /// `utc_offset_seconds`, if the times are local (strings).
    offset: Option<i64>,
    /// `latitude` and `longitude` of the grid point used, if given.
    location: Option<(f64, f64)>,
}

impl Answered {
    /// Refuses an answer for another time zone or another place than
    /// `site`'s at `now` ([`check_offset`], [`check_location`]); what it
    /// does not say is not checked.
    fn check(&self, site: &Site, now: DateTime<Utc>) -> Result<(), SourceError> {
        if let Some(offset) = self.offset {
            check_offset(site, now, offset)?;
        }
        if let Some((latitude, longitude)) = self.location {
            check_location(site, latitude, longitude)?;
        }
        Ok(())
    }
}

/// The answer's `latitude` and `longitude`: `None` if either is absent
/// (a proxy may strip them); a value that is not a coordinate is an error.
fn answer_location(root: &Map<String, Value>) -> Result<Option<(f64, f64)>, SourceError> {
    let coordinate = |name: &str, max: f64| -> Result<Option<f64>, SourceError> {
        match root.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && x.abs() <= max => Ok(Some(x)),
                _ => Err(invalid_data(format!("{name} = {n} is not a {name}"))),
            },
            Some(_) => Err(invalid_body(format!("{name} is not a number"))),
        }
    };
    let latitude = coordinate("latitude", 90.0)?;
    let longitude = coordinate("longitude", 180.0)?;
    Ok(latitude.zip(longitude))
}

fn invalid_body(message: impl Into<String>) -> SourceError {
    SourceError::InvalidBody {
        source_name: SOURCE.to_owned(),
        message: message.into(),
    }
}

fn invalid_data(message: impl Into<String>) -> SourceError {
    SourceError::InvalidData {
        source_name: SOURCE.to_owned(),
        message: message.into(),
    }
}

/// What to multiply-and-add a value by to get SP-E's unit.
#[derive(Debug, Clone, Copy)]
enum Conversion {
    Identity,
    Scale(f64),
    FahrenheitToCelsius,
}

impl Conversion {
    fn apply(self, x: f64) -> f64 {
        match self {
            Conversion::Identity => x,
            Conversion::Scale(k) => x * k,
            Conversion::FahrenheitToCelsius => (x - 32.0) * 5.0 / 9.0,
        }
    }
}

fn conversion_for(var: WeatherVariable, unit: &str) -> Option<Conversion> {
    match (var, unit) {
        (WeatherVariable::Temperature2m, "°C") => Some(Conversion::Identity),
        (WeatherVariable::Temperature2m, "°F") => Some(Conversion::FahrenheitToCelsius),
        (WeatherVariable::ShortwaveRadiation, "W/m²") => Some(Conversion::Identity),
        (WeatherVariable::CloudCover, "%") => Some(Conversion::Identity),
        (WeatherVariable::WindSpeed10m, "m/s") => Some(Conversion::Identity),
        (WeatherVariable::WindSpeed10m, "km/h") => Some(Conversion::Scale(1.0 / 3.6)),
        (WeatherVariable::WindSpeed10m, "mp/h") => Some(Conversion::Scale(0.44704)),
        (WeatherVariable::WindSpeed10m, "kn") => Some(Conversion::Scale(1852.0 / 3600.0)),
        _ => None,
    }
}

/// The frame, and what the answer says of itself (its offset and place),
/// for [`Answered::check`].
fn parse_with_extras(
    body: &[u8],
    produced_at: DateTime<Utc>,
    extras: &[String],
) -> Result<(WeatherFrame, Answered), SourceError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| invalid_body(format!("not valid JSON: {e}")))?;
    let Value::Object(root) = root else {
        return Err(invalid_body("not a JSON object"));
    };
    if root.get("error").is_some_and(|e| e != &Value::Bool(false)) {
        let reason = match root.get("reason") {
            Some(Value::String(r)) => truncate_chars(&one_line(r), MAX_JSON_REASON_CHARS),
            _ => "no reason given".to_owned(),
        };
        return Err(invalid_body(format!("the API reported an error: {reason}")));
    }
    let units = match root.get("hourly_units") {
        Some(Value::Object(units)) => units,
        Some(_) => return Err(invalid_body("\"hourly_units\" is not an object")),
        None => return Err(invalid_body("no \"hourly_units\" object")),
    };
    let hourly = match root.get("hourly") {
        Some(Value::Object(hourly)) => hourly,
        Some(_) => return Err(invalid_body("\"hourly\" is not an object")),
        None => return Err(invalid_body("no \"hourly\" object")),
    };

    let (times, offset) = parse_times(&root, hourly)?;
    let location = answer_location(&root)?;
    let Some(&start) = times.first() else {
        return Err(invalid_data("\"hourly.time\" is empty: no hour to show"));
    };
    for (i, pair) in times.windows(2).enumerate() {
        if pair[1].signed_duration_since(pair[0]) != HOUR {
            return Err(invalid_data(format!(
                "hourly.time is not hourly: step {} is {} (UTC) after {} (UTC)",
                i + 1,
                pair[1].format("%Y-%m-%dT%H:%M:%S"),
                pair[0].format("%Y-%m-%dT%H:%M:%S"),
            )));
        }
    }
    let n = times.len();
    let axis = TimeAxis::new(start, n).map_err(|e| SourceError::invalid_data(SOURCE, e))?;

    let mut columns = WeatherColumns::default();
    for var in WeatherVariable::ALL {
        let name = var.name();
        let unit = match units.get(name) {
            Some(Value::String(u)) => u.as_str(),
            Some(_) => return Err(invalid_body(format!("hourly_units.{name} is not a string"))),
            None => return Err(invalid_body(format!("hourly_units has no unit for {name}"))),
        };
        let Some(conversion) = conversion_for(var, unit) else {
            return Err(invalid_data(format!(
                "{name} is in {:?}, expected {:?}",
                truncate_chars(unit, 40),
                var.unit()
            )));
        };
        let mut column = parse_column(hourly, name, n)?
            .ok_or_else(|| invalid_body(format!("hourly has no {name} column")))?;
        for (index, value) in column.iter_mut().enumerate() {
            let Some(x) = value.map(|x| conversion.apply(x)) else {
                continue;
            };
            let x = var.denoise(x);
            if var == WeatherVariable::ShortwaveRadiation && x < 0.0 {
                return Err(invalid_data(format!(
                    "{name} at index {index} is {x} W/m², below the {} W/m² tolerated as rounding noise",
                    WeatherVariable::RADIATION_NOISE_FLOOR
                )));
            }
            *value = Some(x);
        }
        *columns.get_mut(var) = column;
    }
    let mut extra = BTreeMap::new();
    for name in extras {
        let column = parse_column(hourly, name, n)?.ok_or_else(|| {
            invalid_body(format!(
                "hourly has no {name} column, though it was requested"
            ))
        })?;
        extra.insert(name.clone(), column);
    }
    columns.extra = extra;

    WeatherFrame::new(axis, columns, Provenance::Live, produced_at)
        .map(|frame| (frame, Answered { offset, location }))
        .map_err(|e| SourceError::invalid_data(SOURCE, e))
}

/// `hourly.time` as UTC instants, and the offset used for local times.
fn parse_times(
    root: &Map<String, Value>,
    hourly: &Map<String, Value>,
) -> Result<(Vec<DateTime<Utc>>, Option<i64>), SourceError> {
    let raw = match hourly.get("time") {
        Some(Value::Array(raw)) => raw,
        Some(_) => return Err(invalid_body("hourly.time is not an array")),
        None => return Err(invalid_body("hourly has no time column")),
    };
    let mut offset: Option<i64> = None;
    let mut times = Vec::with_capacity(raw.len());
    for (index, t) in raw.iter().enumerate() {
        let utc = match t {
            Value::String(s) => {
                let offset = match offset {
                    Some(o) => o,
                    None => {
                        let o = utc_offset_seconds(root)?;
                        offset = Some(o);
                        o
                    }
                };
                let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
                    .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
                    .map_err(|_| {
                        invalid_body(format!(
                            "hourly.time[{index}] = {:?} is not a YYYY-MM-DDTHH:MM time",
                            truncate_chars(s, 40)
                        ))
                    })?;
                local
                    .checked_sub_signed(chrono::Duration::seconds(offset))
                    .map(|t| t.and_utc())
                    .ok_or_else(|| {
                        invalid_data(format!("hourly.time[{index}] = {s:?} is out of range"))
                    })?
            }
            Value::Number(num) => {
                let secs = num.as_i64().ok_or_else(|| {
                    invalid_body(format!(
                        "hourly.time[{index}] = {num} is not whole Unix seconds"
                    ))
                })?;
                DateTime::from_timestamp(secs, 0).ok_or_else(|| {
                    invalid_data(format!("hourly.time[{index}] = {secs} is out of range"))
                })?
            }
            _ => {
                return Err(invalid_body(format!(
                    "hourly.time[{index}] is neither a time string nor Unix seconds"
                )));
            }
        };
        times.push(utc);
    }
    Ok((times, offset))
}

fn utc_offset_seconds(root: &Map<String, Value>) -> Result<i64, SourceError> {
    let offset = match root.get("utc_offset_seconds") {
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            invalid_body(format!("utc_offset_seconds = {n} is not a whole number"))
        })?,
        Some(_) => return Err(invalid_body("utc_offset_seconds is not a number")),
        None => {
            return Err(invalid_body(
                "no utc_offset_seconds to turn local times into UTC",
            ));
        }
    };
    if offset.abs() > MAX_UTC_OFFSET_SECONDS {
        return Err(invalid_data(format!(
            "utc_offset_seconds = {offset} is beyond ±{MAX_UTC_OFFSET_SECONDS}"
        )));
    }
    Ok(offset)
}

/// A column of `n` numbers or nulls; `None` if the column is absent.
fn parse_column(
    hourly: &Map<String, Value>,
    name: &str,
    n: usize,
) -> Result<Option<Column>, SourceError> {
    let raw = match hourly.get(name) {
        Some(Value::Array(raw)) => raw,
        Some(_) => return Err(invalid_body(format!("hourly.{name} is not an array"))),
        None => return Ok(None),
    };
    if raw.len() != n {
        return Err(invalid_body(format!(
            "hourly.{name} has {} values but hourly.time has {n}",
            raw.len()
        )));
    }
    let mut column = Vec::with_capacity(n);
    for (index, v) in raw.iter().enumerate() {
        let value = match v {
            Value::Null => None,
            Value::Number(num) => match num.as_f64() {
                Some(x) if x.is_finite() => Some(x),
                _ => {
                    return Err(invalid_data(format!(
                        "hourly.{name}[{index}] = {num} is not a finite number"
                    )));
                }
            },
            _ => {
                return Err(invalid_body(format!(
                    "hourly.{name}[{index}] is neither a number nor null"
                )));
            }
        };
        column.push(value);
    }
    Ok(Some(column))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, 9, 30, 0).unwrap()
    }

    /// A realistic body: `n` hours from local `start` in a zone at `offset` s.
    fn body(n: usize, offset: i64, tz: &str, units: [&str; 4], nulls_from: usize) -> String {
        let start = NaiveDateTime::parse_from_str("2026-01-15T00:00", "%Y-%m-%dT%H:%M").unwrap();
        let mut time = Vec::new();
        let mut temp = Vec::new();
        let mut rad = Vec::new();
        let mut cloud = Vec::new();
        let mut wind = Vec::new();
        let mut rh = Vec::new();
        for i in 0..n {
            let t = start + chrono::Duration::hours(i as i64);
            time.push(format!("\"{}\"", t.format("%Y-%m-%dT%H:%M")));
            let h = (i % 24) as f64;
            if i >= nulls_from {
                for c in [&mut temp, &mut rad, &mut cloud, &mut wind, &mut rh] {
                    c.push("null".to_owned());
                }
                continue;
            }
            temp.push(format!(
                "{:.1}",
                4.0 + 3.0 * ((h - 9.0) / 24.0 * std::f64::consts::TAU).sin()
            ));
            rad.push(format!(
                "{:.1}",
                (400.0 * ((h - 6.0) / 12.0 * std::f64::consts::PI).sin()).max(0.0)
            ));
            cloud.push(format!("{}", (i * 7) % 101));
            wind.push(format!("{:.1}", 2.0 + (i % 5) as f64 * 0.7));
            rh.push(format!("{}", 60 + i % 30));
        }
        format!(
            r#"{{"latitude":48.86,"longitude":2.3399997,"generationtime_ms":0.0771,"utc_offset_seconds":{offset},"timezone":"{tz}","timezone_abbreviation":"GMT+1","elevation":43.0,"hourly_units":{{"time":"iso8601","temperature_2m":"{}","shortwave_radiation":"{}","cloud_cover":"{}","wind_speed_10m":"{}","relative_humidity_2m":"%"}},"hourly":{{"time":[{}],"temperature_2m":[{}],"shortwave_radiation":[{}],"cloud_cover":[{}],"wind_speed_10m":[{}],"relative_humidity_2m":[{}]}}}}"#,
            units[0],
            units[1],
            units[2],
            units[3],
            time.join(","),
            temp.join(","),
            rad.join(","),
            cloud.join(","),
            wind.join(","),
            rh.join(","),
        )
    }

    const METRIC: [&str; 4] = ["°C", "W/m²", "%", "m/s"];

    fn paris(n: usize) -> String {
        body(n, 3600, "Europe/Paris", METRIC, usize::MAX)
    }

    fn parse_str(s: &str) -> Result<WeatherFrame, SourceError> {
        parse_forecast(s.as_bytes(), now())
    }

    fn assert_invalid_data<T: std::fmt::Debug>(r: Result<T, SourceError>, needle: &str) {
        match r {
            Err(SourceError::InvalidData { message, .. }) => {
                assert!(
                    message.contains(needle),
                    "{message:?} should mention {needle:?}"
                )
            }
            other => panic!("expected InvalidData mentioning {needle:?}, got {other:?}"),
        }
    }

    fn assert_invalid_body<T: std::fmt::Debug>(r: Result<T, SourceError>, needle: &str) {
        match r {
            Err(SourceError::InvalidBody { message, .. }) => {
                assert!(
                    message.contains(needle),
                    "{message:?} should mention {needle:?}"
                )
            }
            other => panic!("expected InvalidBody mentioning {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_realistic_body() {
        let frame = parse_str(&paris(72)).unwrap();
        assert_eq!(frame.len(), 72);
        assert_eq!(frame.provenance(), Provenance::Live);
        assert_eq!(frame.produced_at(), now());
        assert_eq!(
            frame.axis().start(),
            Utc.with_ymd_and_hms(2026, 1, 14, 23, 0, 0).unwrap()
        );
        assert_eq!(
            frame
                .temperature_2m()
                .iter()
                .filter(|v| v.is_some())
                .count(),
            72
        );
        assert!(
            frame
                .shortwave_radiation()
                .iter()
                .flatten()
                .any(|&r| r > 300.0)
        );
        // Extras not requested are ignored.
        assert!(frame.columns().extra.is_empty());
    }

    #[test]
    fn keeps_requested_extras_and_requires_them() {
        let extras = vec!["relative_humidity_2m".to_owned()];
        let (frame, answered) = parse_with_extras(paris(24).as_bytes(), now(), &extras).unwrap();
        assert_eq!(answered.offset, Some(3600));
        assert_eq!(answered.location, Some((48.86, 2.3399997)));
        assert_eq!(frame.extra("relative_humidity_2m").unwrap()[0], Some(60.0));
        let missing = vec!["dew_point_2m".to_owned()];
        assert_invalid_body(
            parse_with_extras(paris(24).as_bytes(), now(), &missing).map(|(f, _)| f),
            "dew_point_2m",
        );
    }

    #[test]
    fn nulls_are_missing_values() {
        let frame = parse_str(&body(72, 3600, "Europe/Paris", METRIC, 49)).unwrap();
        assert_eq!(frame.len(), 72);
        for var in WeatherVariable::ALL {
            let col = frame.columns().get(var);
            assert_eq!(col.iter().filter(|v| v.is_none()).count(), 23, "{var:?}");
            assert!(col[..49].iter().all(Option::is_some));
        }
    }

    #[test]
    fn units_are_checked_and_converted() {
        let f = parse_str(&body(
            24,
            3600,
            "Europe/Paris",
            ["°F", "W/m²", "%", "km/h"],
            99,
        ))
        .unwrap();
        let c = parse_str(&paris(24)).unwrap();
        // Same numbers read as °F and km/h:
        let (tf, tc) = (
            f.temperature_2m()[0].unwrap(),
            c.temperature_2m()[0].unwrap(),
        );
        assert!((tf - (tc - 32.0) * 5.0 / 9.0).abs() < 1e-9);
        let (wf, wc) = (
            f.wind_speed_10m()[3].unwrap(),
            c.wind_speed_10m()[3].unwrap(),
        );
        assert!((wf - wc / 3.6).abs() < 1e-9);

        assert_invalid_data(
            parse_str(&body(
                24,
                3600,
                "Europe/Paris",
                ["K", "W/m²", "%", "m/s"],
                99,
            )),
            "temperature_2m is in \"K\"",
        );
        assert_invalid_data(
            parse_str(&body(
                24,
                3600,
                "Europe/Paris",
                ["°C", "MJ/m²", "%", "m/s"],
                99,
            )),
            "shortwave_radiation",
        );
        assert_invalid_data(
            parse_str(&body(
                24,
                3600,
                "Europe/Paris",
                ["°C", "W/m²", "fraction", "m/s"],
                99,
            )),
            "cloud_cover",
        );
        assert_invalid_data(
            parse_str(&body(
                24,
                3600,
                "Europe/Paris",
                ["°C", "W/m²", "%", "furlong/fortnight"],
                99,
            )),
            "wind_speed_10m",
        );
        let no_unit = paris(24).replace(r#""cloud_cover":"%","#, "");
        assert_invalid_body(parse_str(&no_unit), "cloud_cover");
    }

    #[test]
    fn small_negative_radiation_clamps_to_zero_large_is_invalid() {
        let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
        v["hourly"]["shortwave_radiation"][0] = serde_json::json!(-0.0);
        v["hourly"]["shortwave_radiation"][1] = serde_json::json!(-3.5);
        v["hourly"]["shortwave_radiation"][2] = serde_json::json!(-5.0);
        let frame = parse_str(&v.to_string()).unwrap();
        assert_eq!(
            &frame.shortwave_radiation()[..3],
            &[Some(0.0), Some(0.0), Some(0.0)]
        );
        assert!(frame.shortwave_radiation()[0].unwrap().is_sign_positive());

        v["hourly"]["shortwave_radiation"][2] = serde_json::json!(-12.0);
        assert_invalid_data(parse_str(&v.to_string()), "shortwave_radiation at index 2");
    }

    #[test]
    fn implausible_values_are_errors_not_data() {
        for (var, value) in [
            ("temperature_2m", 900.0),
            ("temperature_2m", -150.0),
            ("shortwave_radiation", 2000.0),
            ("cloud_cover", 101.0),
            ("wind_speed_10m", -1.0),
            ("wind_speed_10m", 500.0),
        ] {
            let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
            v["hourly"][var][5] = serde_json::json!(value);
            assert_invalid_data(parse_str(&v.to_string()), var);
        }
    }

    #[test]
    fn huge_numbers_are_errors_not_infinity() {
        for huge in ["1e999", "-1e999", "1.7976931348623157e309"] {
            let b = paris(24).replacen(
                r#""temperature_2m":["#,
                &format!(r#""temperature_2m":[{huge},"#),
                1,
            );
            // One extra value: fix the length by dropping the last one.
            let r = parse_str(&b);
            assert!(r.is_err(), "{huge}: {r:?}");
            let fixed = {
                let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
                v["hourly"]["temperature_2m"][0] = serde_json::json!(1.0);
                v.to_string().replacen(
                    r#""temperature_2m":[1.0"#,
                    &format!(r#""temperature_2m":[{huge}"#),
                    1,
                )
            };
            let r = parse_str(&fixed);
            assert!(
                matches!(
                    r,
                    Err(SourceError::InvalidBody { .. } | SourceError::InvalidData { .. })
                ),
                "{huge}: {r:?}"
            );
        }
        // Big but finite is an out-of-range value, not an infinity either.
        let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
        v["hourly"]["wind_speed_10m"][0] = serde_json::json!(1e300);
        assert_invalid_data(parse_str(&v.to_string()), "wind_speed_10m");
    }

    #[test]
    fn every_value_of_a_parsed_frame_is_finite() {
        let frame = parse_str(&body(96, 3600, "Europe/Paris", METRIC, 80)).unwrap();
        for var in WeatherVariable::ALL {
            assert!(
                frame
                    .columns()
                    .get(var)
                    .iter()
                    .flatten()
                    .all(|x| x.is_finite())
            );
        }
    }

    #[test]
    fn times_must_be_hourly_and_consecutive() {
        let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
        v["hourly"]["time"][5] = serde_json::json!("2026-01-15T05:30");
        assert_invalid_data(parse_str(&v.to_string()), "not hourly");

        let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
        v["hourly"]["time"][5] = serde_json::json!("2026-01-15T04:00");
        assert_invalid_data(parse_str(&v.to_string()), "step 5");

        let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
        v["hourly"]["time"][7] = serde_json::json!("2026-01-15T09:00");
        assert_invalid_data(parse_str(&v.to_string()), "not hourly");

        let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
        v["hourly"]["time"][2] = serde_json::json!("yesterday");
        assert_invalid_body(parse_str(&v.to_string()), "hourly.time[2]");

        let mut v: Value = serde_json::from_str(&paris(3)).unwrap();
        for c in [
            "time",
            "temperature_2m",
            "shortwave_radiation",
            "cloud_cover",
            "wind_speed_10m",
        ] {
            v["hourly"][c] = serde_json::json!([]);
        }
        assert_invalid_data(parse_str(&v.to_string()), "empty");
    }

    #[test]
    fn the_offset_must_be_the_sites_around_now() {
        let paris = Site::paris();
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 10, 0, 0).unwrap();
        assert!(check_offset(&paris, winter, 3600).is_ok());
        assert!(check_offset(&paris, summer, 7200).is_ok());
        for (now, wrong) in [
            (winter, 7200),
            (winter, 0),
            (summer, 3600),
            (summer, -36000),
        ] {
            let e = check_offset(&paris, now, wrong).unwrap_err();
            assert!(matches!(e, SourceError::InvalidData { .. }), "{e}");
        }
        // Clocks go forward at 01:00 UTC on 29 March 2026: a request made
        // just before is answered with either offset.
        let change = Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 0).unwrap();
        assert!(check_offset(&paris, change, 3600).is_ok());
        assert!(check_offset(&paris, change, 7200).is_ok());
        assert!(check_offset(&paris, change, 0).is_err());
    }

    #[test]
    fn the_answer_must_be_for_the_sites_place() {
        let paris = Site::paris();
        // The grid cell Open-Meteo uses, a few km away: fine; so is 99 km.
        assert!(check_location(&paris, 48.86, 2.3399997).is_ok());
        assert!(check_location(&paris, 48.85 + 99.0 / 111.2, 2.35).is_ok());
        // Lyon's weather, or Paris's with the coordinates swapped: refused.
        for (lat, lon, km) in [(45.76, 4.84, "391 km"), (2.35, 48.85, "6")] {
            let e = check_location(&paris, lat, lon).unwrap_err();
            assert!(matches!(e, SourceError::InvalidData { .. }), "{e}");
            assert!(
                e.to_string().contains(km) && e.to_string().contains("another place"),
                "{e}"
            );
        }
        // Across the antimeridian, 0.2° of longitude is near, not 40 000 km.
        let fiji = Site::new("Suva", -16.0, 179.9, "Pacific/Fiji", Default::default()).unwrap();
        assert!(check_location(&fiji, -16.0, -179.9).is_ok());
    }

    #[test]
    fn the_answers_coordinates_are_read_when_given() {
        let read =
            |v: &Value| parse_with_extras(v.to_string().as_bytes(), now(), &[]).map(|(_, a)| a);
        let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
        assert_eq!(read(&v).unwrap().location, Some((48.86, 2.3399997)));
        // A proxy that strips them: nothing to check.
        v.as_object_mut().unwrap().remove("longitude");
        assert_eq!(read(&v).unwrap().location, None);
        v["longitude"] = serde_json::json!("2.34");
        assert_invalid_body(read(&v), "longitude is not a number");
        v["longitude"] = serde_json::json!(2.34);
        v["latitude"] = serde_json::json!(91.5);
        assert_invalid_data(read(&v), "latitude = 91.5 is not a latitude");
    }

    #[test]
    fn timezone_offsets_turn_local_times_into_utc() {
        let vancouver = parse_str(&body(24, -28800, "America/Vancouver", METRIC, 99)).unwrap();
        assert_eq!(
            vancouver.axis().start(),
            Utc.with_ymd_and_hms(2026, 1, 15, 8, 0, 0).unwrap()
        );
        let kolkata = parse_str(&body(24, 19800, "Asia/Kolkata", METRIC, 99)).unwrap();
        assert_eq!(
            kolkata.axis().start(),
            Utc.with_ymd_and_hms(2026, 1, 14, 18, 30, 0).unwrap()
        );
        let utc = parse_str(&body(24, 0, "GMT", METRIC, 99)).unwrap();
        assert_eq!(
            utc.axis().start(),
            Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap()
        );

        assert_invalid_data(
            parse_str(&body(24, 90000, "Nowhere", METRIC, 99)),
            "utc_offset_seconds",
        );
        let no_offset = paris(24).replace(r#""utc_offset_seconds":3600,"#, "");
        assert_invalid_body(parse_str(&no_offset), "utc_offset_seconds");
    }

    #[test]
    fn unix_times_are_utc_already() {
        let mut v: Value = serde_json::from_str(&paris(3)).unwrap();
        let t0 = Utc
            .with_ymd_and_hms(2026, 1, 15, 0, 0, 0)
            .unwrap()
            .timestamp();
        v["hourly"]["time"] = serde_json::json!([t0, t0 + 3600, t0 + 7200]);
        v["hourly_units"]["time"] = serde_json::json!("unixtime");
        let frame = parse_str(&v.to_string()).unwrap();
        assert_eq!(frame.axis().start().timestamp(), t0);
        v["hourly"]["time"] = serde_json::json!([t0, t0 + 3600, t0 + 7300]);
        assert_invalid_data(parse_str(&v.to_string()), "not hourly");
    }

    #[test]
    fn shape_errors_are_invalid_body() {
        assert_invalid_body(parse_str("<html>502</html>"), "not valid JSON");
        assert_invalid_body(parse_str("[1,2,3]"), "not a JSON object");
        assert_invalid_body(parse_str("{}"), "hourly_units");
        assert_invalid_body(
            parse_str(r#"{"error":true,"reason":"Latitude must be in range of -90 to 90°."}"#),
            "Latitude must be in range",
        );
        let no_wind = paris(24).replace(r#""wind_speed_10m":["#, r#""wind_gusts_10m":["#);
        assert_invalid_body(parse_str(&no_wind), "no wind_speed_10m column");
        let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
        v["hourly"]["cloud_cover"][3] = serde_json::json!("87");
        assert_invalid_body(parse_str(&v.to_string()), "hourly.cloud_cover[3]");
        let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
        v["hourly"]["cloud_cover"].as_array_mut().unwrap().pop();
        assert_invalid_body(parse_str(&v.to_string()), "23 values");
    }

    #[test]
    fn status_reasons() {
        assert_eq!(
            status_reason(
                br#"{"error":true,"reason":"Minutely API request limit exceeded. Please try again in one minute."}"#,
                Some("Too Many Requests")
            ),
            "Minutely API request limit exceeded. Please try again in one minute."
        );
        let html = b"<html>\r\n<head><title>502 Bad Gateway</title><style>body{color:red}</style></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
        assert_eq!(
            status_reason(html, Some("Bad Gateway")),
            "502 Bad Gateway 502 Bad Gateway nginx"
        );
        assert_eq!(
            status_reason(b"", Some("Gateway Timeout")),
            "Gateway Timeout"
        );
        let long = "x".repeat(5000);
        let r = status_reason(long.as_bytes(), None);
        assert_eq!(r.chars().count(), REASON_CHARS + 1);
        assert_eq!(
            status_reason(b"line one\nline\ttwo\r\n", None),
            "line one line two"
        );
        assert_eq!(
            status_reason(&[0xff, 0xfe, b'o', b'k'], None),
            "\u{fffd}\u{fffd}ok"
        );
    }

    #[test]
    fn endpoint_and_query() {
        for base in [
            "http://127.0.0.1:9/",
            "http://127.0.0.1:9",
            "http://127.0.0.1:9/v1/forecast",
            "http://127.0.0.1:9/v1/forecast/",
        ] {
            assert_eq!(
                endpoint_url(base).unwrap().as_str(),
                "http://127.0.0.1:9/v1/forecast",
                "{base}"
            );
        }
        assert_eq!(
            endpoint_url("https://meteo.example/api/").unwrap().as_str(),
            "https://meteo.example/api/v1/forecast"
        );
        for bad in [
            "",
            "api.open-meteo.com",
            "ftp://x/",
            "http://x/?a=1",
            "mailto:a@b",
        ] {
            assert!(
                matches!(endpoint_url(bad), Err(SourceError::InvalidRequest(_))),
                "{bad}"
            );
        }

        let client = OpenMeteo::new(OpenMeteoConfig {
            base_url: "http://localhost:1".into(),
            extra_hourly: vec!["relative_humidity_2m".into(), "relative_humidity_2m".into()],
            ..Default::default()
        })
        .unwrap();
        let site = Site::new(
            "BA",
            -34.6,
            -58.38,
            "America/Argentina/Buenos_Aires",
            crate::Country::None,
        )
        .unwrap();
        let url = client.url_for(&site, &Window::new(now(), 0, 16).unwrap());
        let q: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["latitude"], "-34.6");
        assert_eq!(q["longitude"], "-58.38");
        assert_eq!(
            q["hourly"],
            "temperature_2m,shortwave_radiation,cloud_cover,wind_speed_10m,relative_humidity_2m"
        );
        assert_eq!(q["past_days"], "0");
        assert_eq!(q["forecast_days"], "16");
        assert_eq!(q["timezone"], "America/Argentina/Buenos_Aires");
        assert_eq!(q["wind_speed_unit"], "ms");
        assert_eq!(q["timeformat"], "iso8601");

        // '+' in a zone name must not turn into a space.
        let site = Site::new("x", 0.0, 0.0, "Etc/GMT+5", crate::Country::None).unwrap();
        let url = client.url_for(&site, &Window::new(now(), 0, 1).unwrap());
        assert!(url.as_str().contains("timezone=Etc/GMT%2B5"));
        let q: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["timezone"], "Etc/GMT+5");
    }

    #[test]
    fn config_validation() {
        let bad =
            |c: OpenMeteoConfig| matches!(OpenMeteo::new(c), Err(SourceError::InvalidRequest(_)));
        assert!(bad(OpenMeteoConfig {
            timeout: Duration::ZERO,
            ..Default::default()
        }));
        assert!(bad(OpenMeteoConfig {
            extra_hourly: vec!["a,b".into()],
            ..Default::default()
        }));
        assert!(bad(OpenMeteoConfig {
            extra_hourly: vec!["cloud_cover".into()],
            ..Default::default()
        }));
        assert!(bad(OpenMeteoConfig {
            user_agent: Some("a\nb".into()),
            ..Default::default()
        }));
        let c = OpenMeteoConfig {
            user_agent: Some("dashboard/1.0".into()),
            ..Default::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"timeout_ms\":5000"), "{json}");
        assert_eq!(serde_json::from_str::<OpenMeteoConfig>(&json).unwrap(), c);
        assert_eq!(
            serde_json::from_str::<OpenMeteoConfig>("{}").unwrap(),
            OpenMeteoConfig::default()
        );
        assert_eq!(OpenMeteo::new(c).unwrap().name(), "open-meteo");
    }

    /// Check the invariants of any frame `parse_forecast` accepts.
    fn check_ok_frame(frame: &WeatherFrame) {
        assert_eq!(frame.provenance(), Provenance::Live);
        for var in WeatherVariable::ALL {
            let (min, max) = var.plausible_range();
            let col = frame.columns().get(var);
            assert_eq!(col.len(), frame.len());
            for x in col.iter().flatten() {
                assert!(x.is_finite() && *x >= min && *x <= max, "{var:?} = {x}");
            }
        }
    }

    /// Tokens to splice into a valid body to break it in interesting ways.
    const TOKENS: &[&str] = &[
        "null",
        "1e999",
        "-1e999",
        "NaN",
        "-5.1",
        "-0.0",
        "1e308",
        "\"\"",
        "{}",
        "[]",
        "true",
        "\"2026-01-15T03:00\"",
        "\"°F\"",
        "\"km/h\"",
        "9999999999999999999999",
        "-3600",
        ",",
        "]",
        "}",
        "\"",
        "\\u0000",
        "0.5",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            if let Ok(frame) = parse_forecast(&bytes, now()) {
                check_ok_frame(&frame);
            }
        }

        #[test]
        fn mutated_bodies_never_panic(
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0usize..4, any::<u8>(), 0..TOKENS.len()), 1..6),
            n in 1usize..30,
            nulls_from in 0usize..40,
            offset in -50_000i64..50_000,
        ) {
            let mut b = body(n, offset, "Europe/Paris", METRIC, nulls_from).into_bytes();
            for (at, kind, byte, token) in edits {
                let i = at.index(b.len() + 1);
                match kind {
                    0 => { if i < b.len() { b[i] = byte } }
                    1 => b.truncate(i),
                    2 => { if i < b.len() { b.remove(i); } }
                    _ => { b.splice(i..i, TOKENS[token].bytes()); }
                }
            }
            if let Ok(frame) = parse_forecast(&b, now()) {
                check_ok_frame(&frame);
            }
        }

        #[test]
        fn valid_json_with_wild_numbers_never_yields_bad_values(
            values in proptest::collection::vec(
                prop_oneof![
                    Just(Value::Null),
                    any::<f64>().prop_filter_map("finite", |x| serde_json::Number::from_f64(x).map(Value::Number)),
                    (-10.0f64..1500.0).prop_map(|x| serde_json::json!(x)),
                    any::<i64>().prop_map(|x| serde_json::json!(x)),
                ],
                24 * 4,
            ),
        ) {
            let mut v: Value = serde_json::from_str(&paris(24)).unwrap();
            for (k, var) in WeatherVariable::ALL.iter().enumerate() {
                v["hourly"][var.name()] = Value::Array(values[k * 24..(k + 1) * 24].to_vec());
            }
            match parse_str(&v.to_string()) {
                Ok(frame) => check_ok_frame(&frame),
                Err(e) => prop_assert!(matches!(e, SourceError::InvalidData { .. }), "{e:?}"),
            }
        }
    }
}
