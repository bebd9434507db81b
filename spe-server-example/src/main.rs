//! `spe-server-example`: serve the SP-E dashboard.
//!
//! ```text
//! cargo run --release -p spe-server-example -- --help
//! ```
//!
//! Starts in estimation mode from the synthetic generator, listens, then
//! refreshes from Open-Meteo in the background every `--refresh-secs`. Logs go
//! to stderr (`RUST_LOG` filters them; default `info`). Stops cleanly on
//! Ctrl-C or SIGTERM.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use clap::Parser as _;
use spe_core::{Generator, OpenMeteo};
use spe_server_example::refresh::STARTUP_REASON;
use spe_server_example::{AppState, Config, Refresher, router};
use tokio::net::TcpListener;
use tokio::sync::watch;
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
    let site = config.site().map_err(|e| {
        (
            EXIT_CONFIG,
            format!("invalid site (--latitude, --longitude, --timezone): {e}"),
        )
    })?;
    let source = OpenMeteo::new(config.open_meteo()).map_err(|e| {
        (
            EXIT_CONFIG,
            format!("invalid Open-Meteo settings (--open-meteo-url, --upstream-timeout-ms): {e}"),
        )
    })?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        (
            EXIT_RUNTIME,
            format!(
                "cannot create the data directory {}: {e}",
                config.data_dir.display()
            ),
        )
    })?;
    log_settings(&config);

    let refresher = Refresher::new(Arc::new(source), Generator::default(), site);
    // Ready at once, from the synthetic generator: never waits on the network.
    let initial = refresher
        .synthetic(Utc::now(), STARTUP_REASON)
        .map_err(|e| {
            (
                EXIT_RUNTIME,
                format!("cannot build the first snapshot: {e}"),
            )
        })?;
    let (snapshots, receiver) = watch::channel(Arc::new(initial));

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

    let refresh = refresher.spawn(config.refresh_interval(), snapshots);
    let served = axum::serve(listener, router(AppState::new(receiver)))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    refresh.abort();
    served.map_err(|e| (EXIT_RUNTIME, format!("server error: {e}")))?;
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
        "settings"
    );
    tracing::info!(
        admin_token = if config.admin_token.is_some() {
            "set"
        } else {
            "unset"
        },
        prediction_command = config.prediction_command.as_deref().unwrap_or("none"),
        breaker_open_secs = config.breaker_open_secs,
        "accepted but not used yet (predictions and circuit breaker arrive later)"
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
