//! `spe-server-example`: serve the SP-E dashboard.
//!
//! ```text
//! cargo run --release -p spe-server-example -- --help
//! ```
//!
//! Opens the incident journal and the weather cache in `--data-dir`, builds
//! spe-core's failover service (its first snapshot is ready before the server
//! listens: the cached live weather if recent, else the synthetic estimate),
//! listens, and refreshes from Open-Meteo in the background every
//! `--refresh-secs` through a circuit breaker. Logs go to stderr (`RUST_LOG`
//! filters them; default `info`). On Ctrl-C or SIGTERM it stops accepting,
//! lets the requests in flight finish, stops the refresh loop and exits 0.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use spe_server_example::{App, Config};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Exit status for invalid settings (as clap uses for usage errors).
const EXIT_CONFIG: u8 = 2;
/// Exit status for a failure to start or to serve.
const EXIT_RUNTIME: u8 = 1;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    init_tracing();
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("spe-server-example: error: {message}");
            ExitCode::from(code)
        }
    }
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run(config: Config) -> Result<(), (u8, String)> {
    log_settings(&config);
    // Start-up only: opening the journal and the cache reads files.
    let app = App::open(&config).map_err(|e| (EXIT_CONFIG, e.to_string()))?;

    let listener = TcpListener::bind(config.addr).await.map_err(|e| {
        (
            EXIT_RUNTIME,
            format!("cannot listen on {}: {e}", config.addr),
        )
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| (EXIT_RUNTIME, format!("no local address: {e}")))?;
    tracing::info!("listening on http://{local}");

    app.serve(listener, shutdown_signal())
        .await
        .map_err(|e| (EXIT_RUNTIME, format!("server error: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

fn log_settings(config: &Config) {
    tracing::info!(
        data_dir = %config.data_dir.display(),
        open_meteo_url = %config.open_meteo_url,
        latitude = config.latitude,
        longitude = config.longitude,
        timezone = %config.timezone,
        refresh_secs = config.refresh_secs,
        upstream_timeout_ms = config.upstream_timeout_ms,
        breaker_open_secs = config.breaker_open_secs,
        "settings"
    );
    tracing::info!(
        country = ?config.country,
        admin_token = if config.admin_token.is_some() {
            "set"
        } else {
            "unset (loopback clients only may regenerate)"
        },
        prediction_command = %config
            .prediction_command
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string),
        prediction_timeout_secs = config.prediction_timeout_secs,
        cors_origins = ?config.cors_origins,
        max_body_bytes = config.max_body_bytes,
        max_concurrency = config.max_concurrency,
        request_timeout_ms = config.request_timeout_ms,
        generate_per_minute = config.generate_per_minute,
        "edge settings"
    );
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
