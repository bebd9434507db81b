//! The example server as a real process, for end-to-end tests.
//!
//! [`ServerProcess::start`] builds `spe-server-example` once per test run
//! (`cargo build -p spe-server-example`, a no-op when it is up to date) into
//! the target directory of the running test, or takes `SPE_SERVER_EXAMPLE_BIN`
//! if set; spawns it on a free loopback port (`--addr 127.0.0.1:0`) with a
//! fresh data directory, reads its address from its log (no fixed sleep),
//! keeps draining its log, and kills it when dropped.
//!
//! ```no_run
//! use spe_tests::ServerProcess;
//!
//! let server = ServerProcess::start("http://127.0.0.1:9", &["--refresh-secs", "1"]);
//! println!("dashboard at {}", server.url("/"));
//! ```

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// How long the server may take to print its address.
pub const STARTUP: Duration = Duration::from_secs(60);

/// The target directory the running test was built into:
/// `CARGO_TARGET_DIR`, else the one holding the test executable
/// (`<target>/<profile>/deps/it-…`), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace_dir().join(dir)
        };
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| workspace_dir().join("target"))
}

/// The workspace's root directory.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether the running test was built with the release profile.
fn release_profile() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.file_name()? == "release"))
        .unwrap_or(false)
}

/// The server binary, built once for all the tests of this run.
pub fn server_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("SPE_SERVER_EXAMPLE_BIN") {
            return PathBuf::from(bin);
        }
        let target = target_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        // Drop what `cargo test` set for the test binary: build scripts watch
        // some of it, and inheriting it would rebuild half the tree.
        for (key, _) in std::env::vars_os() {
            let key_str = key.to_string_lossy();
            if key_str.starts_with("CARGO_PKG_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "OUT_DIR",
                ]
                .contains(&key_str.as_ref())
            {
                build.env_remove(&key);
            }
        }
        build
            .current_dir(workspace_dir())
            .args(["build", "-p", "spe-server-example", "--target-dir"])
            .arg(&target);
        let profile = if release_profile() {
            build.arg("--release");
            "release"
        } else {
            "debug"
        };
        let out = build
            .output()
            .unwrap_or_else(|e| panic!("cannot run cargo to build spe-server-example: {e}"));
        assert!(
            out.status.success(),
            "cargo build -p spe-server-example failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = target.join(profile).join(format!(
            "spe-server-example{}",
            std::env::consts::EXE_SUFFIX
        ));
        assert!(bin.is_file(), "no server binary at {}", bin.display());
        bin
    })
}

/// A fresh, not yet existing path under the system's temporary directory,
/// named after `prefix`.
pub fn fresh_dir(prefix: &str) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()))
}

/// The address in a log line `... listening on http://127.0.0.1:PORT`.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    const MARK: &str = "listening on http://";
    let rest = &line[line.find(MARK)? + MARK.len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '\u{1b}')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A running `spe-server-example`. Dropping it kills the process (even when
/// an assertion failed) and removes its data directory.
/// The server binary with no ambient `SPE_*` setting, logging at `info`
/// without colours: the base of every run of the server in the tests.
pub fn server_command() -> Command {
    let mut command = Command::new(server_binary());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SPE_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "info").env("NO_COLOR", "1");
    command
}

/// A running server. Dropping it kills the process (even when an assertion
/// failed) and, if it made its data directory, removes it.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    data_dir: PathBuf,
    owns_data_dir: bool,
}

impl ServerProcess {
    /// Start the server on a free loopback port with a fresh data directory,
    /// Open-Meteo at `open_meteo_url`, no ambient `SPE_*` setting, and
    /// `extra` flags; return once it listens.
    ///
    /// # Panics
    ///
    /// If the server cannot be built or started, or does not listen within
    /// [`STARTUP`] (the message has its log).
    pub fn start(open_meteo_url: &str, extra: &[&str]) -> ServerProcess {
        Self::launch(fresh_dir("spe-server-proc"), true, open_meteo_url, extra)
    }

    /// Like [`ServerProcess::start`], on `data_dir`, which outlives it (a
    /// restart on the same directory).
    ///
    /// # Panics
    ///
    /// As [`ServerProcess::start`].
    pub fn start_in(data_dir: &Path, open_meteo_url: &str, extra: &[&str]) -> ServerProcess {
        Self::launch(data_dir.to_path_buf(), false, open_meteo_url, extra)
    }

    fn launch(
        data_dir: PathBuf,
        owns_data_dir: bool,
        open_meteo_url: &str,
        extra: &[&str],
    ) -> ServerProcess {
        let mut child = server_command()
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--open-meteo-url")
            .arg(open_meteo_url)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server_binary().display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (lines_tx, lines_rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            // Drains the log until the process ends, so it never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(line.clone());
                    let _ = lines_tx.send(line);
                }
            });
        }
        // The guard exists before the wait, so a failed start still kills the process.
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            data_dir,
            owns_data_dir,
        };
        let deadline = Instant::now() + STARTUP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = listening_addr(&line) {
                        server.addr = addr;
                        return server;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "no 'listening on' within {STARTUP:?}; log:\n{}",
                    server.log_text()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server
                        .child
                        .wait()
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    panic!(
                        "the server exited ({status}) before listening; log:\n{}",
                        server.log_text()
                    )
                }
            }
        }
    }

    /// Kill the process with SIGKILL (no chance to clean up) and wait for it.
    ///
    /// # Panics
    ///
    /// If the signal cannot be sent.
    pub fn kill(mut self) {
        self.child
            .kill()
            .unwrap_or_else(|e| panic!("cannot kill the server: {e}"));
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has exited, without waiting.
    ///
    /// # Errors
    ///
    /// As [`Child::try_wait`].
    pub fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Its log so far (stderr), one line per line.
    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_read_from_the_log() {
        assert_eq!(
            listening_addr(
                "2026-01-01T00:00:00Z  INFO spe_server_example: listening on http://127.0.0.1:4321"
            ),
            Some(SocketAddr::from(([127, 0, 0, 1], 4321)))
        );
        assert_eq!(
            listening_addr("INFO listening on http://127.0.0.1:80\u{1b}[0m more"),
            Some(SocketAddr::from(([127, 0, 0, 1], 80)))
        );
        assert_eq!(listening_addr("INFO first snapshot ready"), None);
        assert_eq!(listening_addr("listening on http://nonsense"), None);
    }

    #[test]
    fn fresh_dirs_differ() {
        assert_ne!(fresh_dir("x"), fresh_dir("x"));
    }
}
