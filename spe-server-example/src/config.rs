//! Command-line flags and their environment-variable fallbacks.
//!
//! Every setting of the SP-E contract is a flag and an environment variable;
//! a flag given on the command line wins over the variable, which wins over
//! the default. See [`Config`] for the table.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use spe_core::{BreakerConfig, Country, FailoverConfig, OpenMeteoConfig, Site, SiteError};

use crate::layers::Hardening;
use crate::serve::ConnectionLimits;

/// Default latitude (Paris), degrees north.
pub const DEFAULT_LATITUDE: f64 = 48.85;
/// Default longitude (Paris), degrees east.
pub const DEFAULT_LONGITUDE: f64 = 2.35;
/// Default IANA time zone.
pub const DEFAULT_TIMEZONE: &str = "Europe/Paris";
/// How much longer than `--upstream-timeout-ms` the HTTP client itself waits:
/// the circuit breaker's timeout fires first (and counts as a timeout); the
/// client's is only a backstop so that no request outlives it for long.
pub const CLIENT_TIMEOUT_MARGIN: Duration = Duration::from_millis(500);
/// File name of the incident journal in the data directory.
pub const JOURNAL_FILE: &str = "incidents.journal";
/// Directory of the caches in the data directory.
pub const CACHE_DIR: &str = "cache";

/// The server's settings.
///
/// | variable | flag | default |
/// |---|---|---|
/// | `SPE_ADDR` | `--addr` | `127.0.0.1:8080` |
/// | `SPE_DATA_DIR` | `--data-dir` | `./data` |
/// | `SPE_OPEN_METEO_URL` | `--open-meteo-url` | `https://api.open-meteo.com` |
/// | `SPE_LATITUDE`, `SPE_LONGITUDE`, `SPE_TIMEZONE` | `--latitude`, `--longitude`, `--timezone` | `48.85`, `2.35`, `Europe/Paris` |
/// | `SPE_COUNTRY` | `--country` | `auto` (French holidays when the time zone is `Europe/Paris`) |
/// | `SPE_ADMIN_TOKEN` | `--admin-token` | none: only loopback clients may regenerate predictions |
/// | `SPE_PREDICTION_COMMAND` | `--prediction-command` | none: the built-in models are the primary predictor |
/// | `SPE_PREDICTION_TIMEOUT_SECS` | `--prediction-timeout-secs` | `30` |
/// | `SPE_PREDICTION_MEMORY_MB` | `--prediction-memory-mb` | none: no limit |
/// | `SPE_REFRESH_SECS` | `--refresh-secs` | `300` |
/// | `SPE_UPSTREAM_TIMEOUT_MS` | `--upstream-timeout-ms` | `5000` |
/// | `SPE_BREAKER_OPEN_SECS` | `--breaker-open-secs` | `30` |
/// | `SPE_CORS_ORIGIN` | `--cors-origin` (repeatable, or comma-separated) | none: no CORS |
/// | `SPE_MAX_BODY_BYTES` | `--max-body-bytes` | `65536` |
/// | `SPE_MAX_CONCURRENCY` | `--max-concurrency` | `512` |
/// | `SPE_REQUEST_TIMEOUT_MS` | `--request-timeout-ms` | `10000` |
/// | `SPE_HEADER_TIMEOUT_MS` | `--header-timeout-ms` | `10000` |
/// | `SPE_MAX_CONNECTIONS` | `--max-connections` | `4096` |
/// | `SPE_GENERATE_PER_MINUTE` | `--generate-per-minute` | `6` |
///
/// ```
/// use clap::Parser;
/// use spe_server_example::Config;
///
/// let config = Config::try_parse_from(["spe-server-example", "--addr", "127.0.0.1:0", "--longitude", "-1.55"]).unwrap();
/// assert_eq!(config.addr.port(), 0);
/// assert_eq!(config.site().unwrap().longitude(), -1.55);
/// ```
#[derive(Clone, PartialEq, Parser)]
#[command(
    name = "spe-server-example",
    version,
    about = "SP-E example server: the energy dashboard that stays up when its data sources fail",
    long_about = None
)]
pub struct Config {
    /// Address and port to listen on (port 0 picks a free port).
    #[arg(long, env = "SPE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Directory for caches and the incident journal; created if missing.
    #[arg(long, env = "SPE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Base URL of the Open-Meteo API (the client appends /v1/forecast).
    #[arg(
        long,
        env = "SPE_OPEN_METEO_URL",
        default_value = "https://api.open-meteo.com"
    )]
    pub open_meteo_url: String,

    /// Latitude of the site, degrees north (-90..=90).
    #[arg(long, env = "SPE_LATITUDE", default_value_t = DEFAULT_LATITUDE, allow_negative_numbers = true)]
    pub latitude: f64,

    /// Longitude of the site, degrees east (-180..=180).
    #[arg(long, env = "SPE_LONGITUDE", default_value_t = DEFAULT_LONGITUDE, allow_negative_numbers = true)]
    pub longitude: f64,

    /// IANA time zone of the site, e.g. Europe/Paris.
    #[arg(long, env = "SPE_TIMEZONE", default_value = DEFAULT_TIMEZONE)]
    pub timezone: String,

    /// Bearer token for `POST /api/predictions/generate`. Without one,
    /// only loopback clients may regenerate.
    #[arg(long, env = "SPE_ADMIN_TOKEN", hide_env_values = true, value_parser = parse_admin_token)]
    pub admin_token: Option<String>,

    /// External prediction command, a command line split like a shell does
    /// (quotes and backslashes; no expansion), e.g. `python3 "my model.py" --fast`.
    /// Without one, the built-in models are the primary predictor.
    #[arg(long, env = "SPE_PREDICTION_COMMAND", value_parser = PredictionCommand::parse)]
    pub prediction_command: Option<PredictionCommand>,

    /// Timeout of one run of the prediction chain's primary predictor, seconds.
    #[arg(long, env = "SPE_PREDICTION_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub prediction_timeout_secs: u64,

    /// Address-space limit of the prediction command, MiB (Unix,
    /// `RLIMIT_AS`, inherited by its children): a command that leaks
    /// memory fails its allocation and crashes, and the fallback answers.
    /// Runtimes that reserve large virtual areas (the JVM, some GPU stacks)
    /// need more than they use. None by default.
    #[arg(long, env = "SPE_PREDICTION_MEMORY_MB",
          value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    pub prediction_memory_mb: Option<u64>,

    /// Holiday calendar of the site: `auto` (French when the time zone is
    /// Europe/Paris, none otherwise), `FR` or `none`.
    #[arg(long, env = "SPE_COUNTRY", default_value = "auto", value_parser = CountrySetting::parse)]
    pub country: CountrySetting,

    /// Origin allowed to call the API from a browser (CORS), e.g.
    /// `https://ops.example.com`; repeat the flag or separate with commas.
    /// None by default: no CORS headers at all.
    #[arg(long = "cors-origin", env = "SPE_CORS_ORIGIN", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,

    /// Largest request body accepted, bytes (larger: 413).
    #[arg(long, env = "SPE_MAX_BODY_BYTES", default_value_t = 65_536,
          value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    pub max_body_bytes: u64,

    /// Requests handled at once; any more are refused at once with 503 and
    /// `Retry-After` (load shedding).
    #[arg(long, env = "SPE_MAX_CONCURRENCY", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub max_concurrency: u64,

    /// Time a client has to send a request's line and headers,
    /// milliseconds; a slower one is disconnected.
    #[arg(long, env = "SPE_HEADER_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub header_timeout_ms: u64,

    /// Connections open at once; one more is closed as soon as it is
    /// accepted.
    #[arg(long, env = "SPE_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Time a handler may take to answer, milliseconds (longer: 503).
    #[arg(long, env = "SPE_REQUEST_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub request_timeout_ms: u64,

    /// Calls to `POST /api/predictions/generate` allowed per client address
    /// (IPv6: per /64) and minute (also the burst), and as many refused
    /// attempts (no or a wrong token), counted apart; more get 429 with
    /// `Retry-After`. A malformed call (400) counts for neither.
    #[arg(long, env = "SPE_GENERATE_PER_MINUTE", default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub generate_per_minute: u32,

    /// Seconds between two refreshes of the weather and energy data. Live
    /// data is served as live for three refreshes and the upstream timeout
    /// (at least 15 min), then the synthetic estimate takes over.
    #[arg(long, env = "SPE_REFRESH_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub refresh_secs: u64,

    /// Timeout of one upstream call, milliseconds (enforced by the circuit
    /// breaker: a call that takes longer is a failure).
    #[arg(long, env = "SPE_UPSTREAM_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub upstream_timeout_ms: u64,

    /// First open wait of the circuit breaker, seconds (each failed probe
    /// doubles it, up to 10 minutes or this value if larger).
    #[arg(long, env = "SPE_BREAKER_OPEN_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub breaker_open_secs: u64,
}

impl fmt::Debug for Config {
    // By hand, so the admin token never lands in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("open_meteo_url", &self.open_meteo_url)
            .field("latitude", &self.latitude)
            .field("longitude", &self.longitude)
            .field("timezone", &self.timezone)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("prediction_command", &self.prediction_command)
            .field("prediction_timeout_secs", &self.prediction_timeout_secs)
            .field("prediction_memory_mb", &self.prediction_memory_mb)
            .field("country", &self.country)
            .field("cors_origins", &self.cors_origins)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_concurrency", &self.max_concurrency)
            .field("header_timeout_ms", &self.header_timeout_ms)
            .field("max_connections", &self.max_connections)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("generate_per_minute", &self.generate_per_minute)
            .field("refresh_secs", &self.refresh_secs)
            .field("upstream_timeout_ms", &self.upstream_timeout_ms)
            .field("breaker_open_secs", &self.breaker_open_secs)
            .finish()
    }
}

impl Config {
    /// The site the dashboard watches, validated.
    ///
    /// The default position is Paris, with the French holiday calendar. Any
    /// other position is named after its coordinates. The holiday calendar
    /// is `--country`'s; with `auto`, the French one when the time zone is
    /// `Europe/Paris`, none otherwise.
    pub fn site(&self) -> Result<Site, SiteError> {
        let country = self.holidays();
        let is_paris = self.latitude == DEFAULT_LATITUDE
            && self.longitude == DEFAULT_LONGITUDE
            && self.timezone == DEFAULT_TIMEZONE;
        if is_paris && country == Country::France {
            return Ok(Site::paris());
        }
        let name = if is_paris {
            "Paris".to_owned()
        } else {
            format!("Site {:.4}, {:.4}", self.latitude, self.longitude)
        };
        Site::new(name, self.latitude, self.longitude, &self.timezone, country)
    }

    /// Timeout of one run of the primary predictor.
    pub fn prediction_timeout(&self) -> Duration {
        Duration::from_secs(self.prediction_timeout_secs)
    }

    /// The request limits and browser policy of the HTTP layer.
    pub fn hardening(&self) -> Hardening {
        Hardening {
            max_body_bytes: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
            max_concurrency: usize::try_from(self.max_concurrency).unwrap_or(usize::MAX),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            generate_timeout: crate::forecasting::generate_timeout(self),
            cors_origins: self.cors_origins.clone(),
        }
    }

    /// The limits on connections, before any request.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            write_timeout: crate::serve::WRITE_TIMEOUT,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }

    /// Timeout of one upstream call.
    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_timeout_ms)
    }

    /// Time between two refreshes.
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_secs(self.refresh_secs)
    }

    /// First wait of the open circuit breaker before a probe.
    pub fn breaker_open_wait(&self) -> Duration {
        Duration::from_secs(self.breaker_open_secs)
    }

    /// The Open-Meteo client's configuration. Its own timeout is
    /// [`CLIENT_TIMEOUT_MARGIN`] above the upstream timeout, so the breaker's
    /// fires first.
    pub fn open_meteo(&self) -> OpenMeteoConfig {
        OpenMeteoConfig {
            base_url: self.open_meteo_url.clone(),
            timeout: self.upstream_timeout() + CLIENT_TIMEOUT_MARGIN,
            ..OpenMeteoConfig::default()
        }
    }

    /// The failover service's settings: refreshes every `--refresh-secs`
    /// (and retries a failed call no later than that), the breaker's call
    /// timeout is `--upstream-timeout-ms` and its first open wait
    /// `--breaker-open-secs`; everything else is spe-core's default.
    pub fn failover(&self) -> FailoverConfig {
        let defaults = FailoverConfig::default();
        let breaker = BreakerConfig::default();
        let open_wait = self.breaker_open_wait();
        // Live data may miss two refreshes before it is stale: three
        // refreshes and a call's timeout (never less than the default 15 min).
        let stale_after = defaults
            .stale_after
            .max(self.refresh_interval() * 3 + self.upstream_timeout());
        FailoverConfig {
            refresh_interval: self.refresh_interval(),
            retry_interval: defaults.retry_interval.min(self.refresh_interval()),
            stale_after,
            breaker: BreakerConfig {
                call_timeout: Some(self.upstream_timeout()),
                open_wait,
                // An open wait longer than the default cap raises the cap.
                max_open_wait: breaker.max_open_wait.max(open_wait),
                ..breaker
            },
            ..defaults
        }
    }

    /// The long-term history store, one per site, like the caches:
    /// `<data-dir>/history/<site>` (see [`Config::site_key`]), so that a
    /// server restarted for another site neither shows nor forecasts from
    /// the last one's history.
    pub fn history_dir(&self) -> PathBuf {
        self.data_dir
            .join(crate::history::HISTORY_DIR)
            .join(self.site_key())
    }

    /// The incident journal: `<data-dir>/incidents.journal`.
    pub fn journal_path(&self) -> PathBuf {
        self.data_dir.join(JOURNAL_FILE)
    }

    /// The holiday calendar: `--country`'s, or with `auto` the French one
    /// in `Europe/Paris` and none elsewhere.
    fn holidays(&self) -> Country {
        match self.country {
            CountrySetting::Fixed(country) => country,
            CountrySetting::Auto if self.timezone == DEFAULT_TIMEZONE => Country::France,
            CountrySetting::Auto => Country::None,
        }
    }

    /// The caches' directory, one per site: `<data-dir>/cache/<site>` (see
    /// [`Config::site_key`]). Restarted for another site, the server never
    /// serves the last site's cached weather or predictions as its own.
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join(CACHE_DIR).join(self.site_key())
    }

    /// The name of the site's directories in the data directory:
    /// `<latitude>_<longitude>_<time zone>_<country>`, e.g.
    /// `48.8500_2.3500_Europe-Paris_FR` (characters of the zone other than
    /// ASCII letters, digits, `_` and `-` become `-`).
    pub fn site_key(&self) -> String {
        let zone: String = self
            .timezone
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!(
            "{:.4}_{:.4}_{zone}_{}",
            self.latitude,
            self.longitude,
            self.holidays().code()
        )
    }
}

/// A command line to run: a program and its arguments, split like a POSIX
/// shell splits words (single and double quotes, backslash escapes) but
/// without any expansion: no variables, globs, pipes or redirections.
///
/// ```
/// use spe_server_example::config::PredictionCommand;
///
/// let command = PredictionCommand::parse(r#"python3 "my model.py" --horizon 48"#).unwrap();
/// assert_eq!(command.program(), "python3");
/// assert_eq!(command.args(), ["my model.py", "--horizon", "48"]);
/// assert_eq!(command.to_string(), "python3 'my model.py' --horizon 48");
/// assert!(PredictionCommand::parse("  ").is_err());
/// assert!(PredictionCommand::parse("python3 'unbalanced").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictionCommand {
    program: String,
    args: Vec<String>,
}

impl PredictionCommand {
    /// Split `line` into a program and its arguments.
    pub fn parse(line: &str) -> Result<PredictionCommand, String> {
        let mut words = shell_words::split(line)
            .map_err(|e| format!("cannot split the command line ({e}): {line:?}"))?
            .into_iter();
        let program = words
            .next()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| "the command line is empty".to_owned())?;
        Ok(PredictionCommand {
            program,
            args: words.collect(),
        })
    }

    /// The program: a path, or a name looked up in `PATH`.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Its arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }
}

impl fmt::Display for PredictionCommand {
    /// The command line, quoted so that [`PredictionCommand::parse`] gives it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = std::iter::once(&self.program).chain(&self.args);
        f.write_str(&shell_words::join(words))
    }
}

/// `--country`: a fixed holiday calendar, or one chosen from the time zone.
///
/// ```
/// use spe_core::Country;
/// use spe_server_example::config::CountrySetting;
///
/// assert_eq!(CountrySetting::parse("auto"), Ok(CountrySetting::Auto));
/// assert_eq!(CountrySetting::parse("fr"), Ok(CountrySetting::Fixed(Country::France)));
/// assert_eq!(CountrySetting::parse("none"), Ok(CountrySetting::Fixed(Country::None)));
/// assert!(CountrySetting::parse("Atlantis").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CountrySetting {
    /// French holidays when the time zone is `Europe/Paris`, none otherwise.
    #[default]
    Auto,
    /// This calendar.
    Fixed(Country),
}

impl CountrySetting {
    /// `auto`, or a country code spe-core knows (`FR`, `none`).
    pub fn parse(s: &str) -> Result<CountrySetting, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(CountrySetting::Auto);
        }
        s.parse::<Country>()
            .map(CountrySetting::Fixed)
            .map_err(|e| format!("{e}, or \"auto\""))
    }
}

/// The largest admin token accepted, bytes.
pub const MAX_TOKEN_LEN: usize = 1024;

/// An admin token: 1 to [`MAX_TOKEN_LEN`] visible ASCII characters (what
/// an `Authorization` header can carry), no spaces.
fn parse_admin_token(token: &str) -> Result<String, String> {
    if token.is_empty() {
        return Err("the admin token is empty".into());
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(format!(
            "the admin token is longer than {MAX_TOKEN_LEN} bytes"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the admin token must be visible ASCII characters, without spaces".into());
    }
    Ok(token.to_owned())
}

/// A browser origin: `http://host[:port]` or `https://host[:port]`, no path,
/// kept as a browser serializes it (lower case, without the scheme's
/// default port): CORS compares it with the `Origin` header byte for byte.
fn parse_origin(origin: &str) -> Result<String, String> {
    let origin = origin.trim();
    let lower = origin.to_ascii_lowercase();
    let (scheme, rest, default_port) = if let Some(rest) = lower.strip_prefix("https://") {
        ("https", rest, 443)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        ("http", rest, 80)
    } else {
        return Err(format!(
            "{origin:?} is not an origin: it must start with http:// or https://"
        ));
    };
    let not_an_origin = || {
        format!(
            "{origin:?} is not an origin: scheme://host[:port] (port 1 to 65535), \
             without path, query or wildcard"
        )
    };
    let valid_chars = rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    // The host, and what follows it: nothing or `:port`.
    let (host, after) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (address, after) = v6.split_once(']').ok_or_else(not_an_origin)?;
            address
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| not_an_origin())?;
            (&rest[..address.len() + 2], after)
        }
        None => rest.split_at(rest.find(':').unwrap_or(rest.len())),
    };
    if !valid_chars || host.is_empty() || (!host.starts_with('[') && host.contains(['[', ']'])) {
        return Err(not_an_origin());
    }
    let port = match after.strip_prefix(':') {
        None if after.is_empty() => None,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            match digits.parse::<u16>() {
                Ok(0) | Err(_) => return Err(not_an_origin()),
                Ok(port) => Some(port),
            }
        }
        _ => return Err(not_an_origin()),
    };
    Ok(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("spe-server-example").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_follow_the_contract() {
        // Only checks values no test environment sets.
        let config = parse(&["--addr", "127.0.0.1:9", "--data-dir", "d"]).expect("parses");
        assert_eq!(config.addr.to_string(), "127.0.0.1:9");
        assert_eq!(config.data_dir, PathBuf::from("d"));
        let d = Config::command();
        let default = |name: &str| {
            d.get_arguments().find(|a| a.get_id() == name).map(|a| {
                a.get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(default("addr"), Some(vec!["127.0.0.1:8080".to_owned()]));
        assert_eq!(default("data_dir"), Some(vec!["./data".to_owned()]));
        assert_eq!(
            default("open_meteo_url"),
            Some(vec!["https://api.open-meteo.com".to_owned()])
        );
        assert_eq!(default("latitude"), Some(vec!["48.85".to_owned()]));
        assert_eq!(default("longitude"), Some(vec!["2.35".to_owned()]));
        assert_eq!(default("timezone"), Some(vec!["Europe/Paris".to_owned()]));
        assert_eq!(default("refresh_secs"), Some(vec!["300".to_owned()]));
        assert_eq!(
            default("upstream_timeout_ms"),
            Some(vec!["5000".to_owned()])
        );
        assert_eq!(default("breaker_open_secs"), Some(vec!["30".to_owned()]));
        assert_eq!(default("country"), Some(vec!["auto".to_owned()]));
        assert_eq!(
            default("prediction_timeout_secs"),
            Some(vec!["30".to_owned()])
        );
        assert_eq!(default("max_body_bytes"), Some(vec!["65536".to_owned()]));
        assert_eq!(default("max_concurrency"), Some(vec!["512".to_owned()]));
        assert_eq!(
            default("request_timeout_ms"),
            Some(vec!["10000".to_owned()])
        );
        assert_eq!(default("generate_per_minute"), Some(vec!["6".to_owned()]));
        assert_eq!(default("cors_origins"), Some(vec![]));
        assert_eq!(default("admin_token"), Some(vec![]));
        let envs: Vec<_> = d
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        for var in [
            "SPE_ADDR",
            "SPE_DATA_DIR",
            "SPE_OPEN_METEO_URL",
            "SPE_LATITUDE",
            "SPE_LONGITUDE",
            "SPE_TIMEZONE",
            "SPE_ADMIN_TOKEN",
            "SPE_PREDICTION_COMMAND",
            "SPE_REFRESH_SECS",
            "SPE_UPSTREAM_TIMEOUT_MS",
            "SPE_BREAKER_OPEN_SECS",
            "SPE_COUNTRY",
            "SPE_PREDICTION_TIMEOUT_SECS",
            "SPE_PREDICTION_MEMORY_MB",
            "SPE_CORS_ORIGIN",
            "SPE_MAX_BODY_BYTES",
            "SPE_MAX_CONCURRENCY",
            "SPE_REQUEST_TIMEOUT_MS",
            "SPE_GENERATE_PER_MINUTE",
        ] {
            assert!(envs.iter().any(|e| e == var), "{var} is not wired");
        }
    }

    #[test]
    fn the_default_site_is_paris() {
        let config = parse(&[
            "--latitude",
            "48.85",
            "--longitude",
            "2.35",
            "--timezone",
            "Europe/Paris",
        ])
        .expect("parses");
        assert_eq!(config.site(), Ok(Site::paris()));
    }

    #[test]
    fn negative_coordinates_and_other_zones() {
        let config = parse(&[
            "--latitude",
            "-33.87",
            "--longitude",
            "151.21",
            "--timezone",
            "Australia/Sydney",
        ])
        .expect("parses");
        let site = config.site().expect("valid site");
        assert_eq!(site.latitude(), -33.87);
        assert_eq!(site.country(), Country::None);
        assert_eq!(site.timezone().name(), "Australia/Sydney");
    }

    #[test]
    fn invalid_sites_are_reported() {
        let bad_lat = parse(&["--latitude", "91", "--timezone", "UTC"]).expect("parses");
        assert_eq!(bad_lat.site(), Err(SiteError::Latitude(91.0)));
        let bad_tz = parse(&["--timezone", "Mars/Olympus"]).expect("parses");
        assert!(matches!(bad_tz.site(), Err(SiteError::Timezone(_))));
        let nan = parse(&["--longitude", "NaN", "--timezone", "UTC"]).expect("parses");
        assert!(matches!(nan.site(), Err(SiteError::Longitude(_))));
    }

    #[test]
    fn bad_numbers_are_usage_errors() {
        assert!(parse(&["--refresh-secs", "0"]).is_err());
        assert!(parse(&["--upstream-timeout-ms", "-5"]).is_err());
        assert!(parse(&["--addr", "not-an-address"]).is_err());
        assert!(parse(&["--latitude", "north"]).is_err());
    }

    #[test]
    fn failover_settings_follow_the_flags() {
        let config = parse(&[
            "--data-dir",
            "d",
            "--refresh-secs",
            "1",
            "--upstream-timeout-ms",
            "300",
            "--breaker-open-secs",
            "2",
        ])
        .expect("parses");
        let failover = config.failover();
        assert_eq!(failover.refresh_interval, Duration::from_secs(1));
        assert_eq!(failover.retry_interval, Duration::from_secs(1));
        assert_eq!(
            failover.breaker.call_timeout,
            Some(Duration::from_millis(300))
        );
        assert_eq!(failover.breaker.open_wait, Duration::from_secs(2));
        assert_eq!(failover.breaker.validate(), Ok(()));
        assert_eq!(failover.component, FailoverConfig::default().component);
        assert!(config.open_meteo().timeout > config.upstream_timeout());
        assert_eq!(config.journal_path(), PathBuf::from("d/incidents.journal"));
        assert_eq!(
            config.cache_dir(),
            PathBuf::from("d/cache/48.8500_2.3500_Europe-Paris_FR")
        );
        assert_eq!(
            config.history_dir(),
            PathBuf::from("d/history/48.8500_2.3500_Europe-Paris_FR")
        );

        // Defaults: spe-core's retry interval; a long open wait stays valid.
        let config =
            parse(&["--refresh-secs", "300", "--breaker-open-secs", "3600"]).expect("parses");
        let failover = config.failover();
        assert_eq!(failover.retry_interval, Duration::from_secs(30));
        assert_eq!(failover.breaker.open_wait, Duration::from_secs(3600));
        assert_eq!(failover.breaker.validate(), Ok(()));
        assert_eq!(
            failover.stale_after,
            Duration::from_secs(900).max(Duration::from_secs(3 * 300) + config.upstream_timeout())
        );
        assert_eq!(failover.validate(), Ok(()));

        // Hourly refreshes: live data is not stale before three have passed.
        let config = parse(&["--refresh-secs", "3600"]).expect("parses");
        let failover = config.failover();
        assert_eq!(
            failover.stale_after,
            Duration::from_secs(3 * 3600) + config.upstream_timeout()
        );
        assert_eq!(failover.validate(), Ok(()));
        let config = parse(&["--refresh-secs", "86400"]).expect("parses");
        assert_eq!(config.failover().validate(), Ok(()));
    }

    #[test]
    fn debug_hides_the_admin_token() {
        let config = parse(&["--admin-token", "s3cret"]).expect("parses");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.admin_token.as_deref(), Some("s3cret"));
    }

    #[test]
    fn the_prediction_command_is_split_like_a_shell_does() {
        let config = parse(&[
            "--prediction-command",
            r#"python3 "my model.py" --out 'a b' \"q\""#,
            "--prediction-timeout-secs",
            "5",
        ])
        .expect("parses");
        let command = config.prediction_command.as_ref().expect("a command");
        assert_eq!(command.program(), "python3");
        assert_eq!(command.args(), ["my model.py", "--out", "a b", "\"q\""]);
        // Displayed quoted, so it reads back the same.
        let again = PredictionCommand::parse(&command.to_string()).expect("parses back");
        assert_eq!(&again, command);
        assert_eq!(config.prediction_timeout(), Duration::from_secs(5));
        assert_eq!(config.prediction_memory_mb, None);
        let limited = parse(&["--prediction-memory-mb", "512"]).expect("parses");
        assert_eq!(limited.prediction_memory_mb, Some(512));
        for bad in ["0", "15", "-1", "lots"] {
            assert!(parse(&["--prediction-memory-mb", bad]).is_err(), "{bad}");
        }
        for bad in ["", "   ", "python3 'open", r#"x "y"#] {
            let e = parse(&["--prediction-command", bad]).expect_err(bad);
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
        assert!(parse(&["--prediction-timeout-secs", "0"]).is_err());
    }

    #[test]
    fn the_country_is_chosen_or_derived() {
        let site = |args: &[&str]| parse(args).expect("parses").site().expect("a site");
        assert_eq!(site(&[]), Site::paris());
        assert_eq!(site(&["--country", "FR"]), Site::paris());
        let paris_without_holidays = site(&["--country", "none"]);
        assert_eq!(paris_without_holidays.country(), Country::None);
        assert_eq!(paris_without_holidays.name(), "Paris");
        let tokyo = [
            "--latitude",
            "35.68",
            "--longitude",
            "139.69",
            "--timezone",
            "Asia/Tokyo",
        ];
        assert_eq!(site(&tokyo).country(), Country::None);
        let mut tokyo_fr = tokyo.to_vec();
        tokyo_fr.extend(["--country", "fr"]);
        assert_eq!(site(&tokyo_fr).country(), Country::France);
        let lyon = ["--latitude", "45.76", "--longitude", "4.84"];
        assert_eq!(site(&lyon).country(), Country::France);
        let e = parse(&["--country", "Atlantis"]).expect_err("unknown");
        assert!(e.to_string().contains("auto"), "{e}");
    }

    #[test]
    fn limits_and_cors_origins() {
        let config = parse(&[
            "--max-body-bytes",
            "1024",
            "--max-concurrency",
            "8",
            "--request-timeout-ms",
            "1500",
            "--generate-per-minute",
            "60",
            "--cors-origin",
            "https://ops.example.com,http://localhost:3000",
            "--cors-origin",
            "http://[::1]:8081",
        ])
        .expect("parses");
        assert_eq!(
            config.hardening(),
            Hardening {
                max_body_bytes: 1024,
                max_concurrency: 8,
                request_timeout: Duration::from_millis(1500),
                generate_timeout: Duration::from_secs(2 * (30 + 60) + 5),
                cors_origins: vec![
                    "https://ops.example.com".into(),
                    "http://localhost:3000".into(),
                    "http://[::1]:8081".into(),
                ],
            }
        );
        assert_eq!(config.generate_per_minute, 60);
        for bad in [
            &["--cors-origin", "*"][..],
            &["--cors-origin", "ops.example.com"],
            &["--cors-origin", "https://ops.example.com/path"],
            &["--cors-origin", "ftp://ops.example.com"],
            &["--max-body-bytes", "0"],
            &["--max-concurrency", "0"],
            &["--request-timeout-ms", "0"],
            &["--generate-per-minute", "0"],
            &["--admin-token", ""],
            &["--admin-token", "has space"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // As a browser writes them: lower case, no default port, so that
        // CORS (which compares them byte for byte) can match them.
        for (given, kept) in [
            ("https://Ops.Example.COM", "https://ops.example.com"),
            ("HTTPS://ops.example.com:443", "https://ops.example.com"),
            ("http://localhost:80", "http://localhost"),
            ("http://localhost:443", "http://localhost:443"),
            ("http://[::1]:8081", "http://[::1]:8081"),
        ] {
            let config = parse(&["--cors-origin", given]).expect(given);
            assert_eq!(config.cors_origins, [kept], "{given}");
        }
        for bad in [
            "https://:8080",
            "https://ops.example.com:",
            "https://ops.example.com:0",
            "https://ops.example.com:99999",
            "https://ops.example.com:8a",
            "https://a:1:2",
        ] {
            let e = parse(&["--cors-origin", bad]).expect_err(bad);
            assert!(e.to_string().contains("not an origin"), "{bad}: {e}");
        }
        let long = "x".repeat(MAX_TOKEN_LEN + 1);
        assert!(parse(&["--admin-token", &long]).is_err());
        assert!(parse(&["--admin-token", &long[1..]]).is_ok());
    }
}
