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
/// | `SPE_ADMIN_TOKEN` | `--admin-token` | none |
/// | `SPE_PREDICTION_COMMAND` | `--prediction-command` | none |
/// | `SPE_REFRESH_SECS` | `--refresh-secs` | `300` |
/// | `SPE_UPSTREAM_TIMEOUT_MS` | `--upstream-timeout-ms` | `5000` |
/// | `SPE_BREAKER_OPEN_SECS` | `--breaker-open-secs` | `30` |
///
/// `--admin-token` and `--prediction-command` are accepted and logged, but
/// not used yet: the prediction endpoints arrive in a later version.
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

    /// Bearer token for the admin endpoints (not used yet).
    #[arg(long, env = "SPE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// External prediction command (not used yet).
    #[arg(long, env = "SPE_PREDICTION_COMMAND")]
    pub prediction_command: Option<String>,

    /// Seconds between two refreshes of the weather and energy data.
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
    /// other position is named after its coordinates; the French calendar is
    /// used when the time zone is `Europe/Paris`, none otherwise.
    pub fn site(&self) -> Result<Site, SiteError> {
        let is_paris = self.latitude == DEFAULT_LATITUDE
            && self.longitude == DEFAULT_LONGITUDE
            && self.timezone == DEFAULT_TIMEZONE;
        if is_paris {
            return Ok(Site::paris());
        }
        let country = if self.timezone == DEFAULT_TIMEZONE {
            Country::France
        } else {
            Country::None
        };
        let name = format!("Site {:.4}, {:.4}", self.latitude, self.longitude);
        Site::new(name, self.latitude, self.longitude, &self.timezone, country)
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
        FailoverConfig {
            refresh_interval: self.refresh_interval(),
            retry_interval: defaults.retry_interval.min(self.refresh_interval()),
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

    /// The incident journal: `<data-dir>/incidents.journal`.
    pub fn journal_path(&self) -> PathBuf {
        self.data_dir.join(JOURNAL_FILE)
    }

    /// The caches' directory: `<data-dir>/cache`.
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join(CACHE_DIR)
    }
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
        assert_eq!(config.cache_dir(), PathBuf::from("d/cache"));

        // Defaults: spe-core's retry interval; a long open wait stays valid.
        let config =
            parse(&["--refresh-secs", "300", "--breaker-open-secs", "3600"]).expect("parses");
        let failover = config.failover();
        assert_eq!(failover.retry_interval, Duration::from_secs(30));
        assert_eq!(failover.breaker.open_wait, Duration::from_secs(3600));
        assert_eq!(failover.breaker.validate(), Ok(()));
    }

    #[test]
    fn debug_hides_the_admin_token() {
        let config = parse(&["--admin-token", "s3cret"]).expect("parses");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.admin_token.as_deref(), Some("s3cret"));
    }
}
