//! An external prediction command as a [`Predictor`]: [`CommandPredictor`].

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tracing::Instrument;

use crate::forecast::Forecast;

use super::process::{self, ProcessGroup};
use super::schema::{parse_predictor_output, request_json};
use super::{PredictionRequest, Predictor, PredictorError};

/// The environment variable that gives the command the path of its output
/// file, when one is configured ([`CommandPredictorBuilder::output_file`]).
pub const OUTPUT_FILE_ENV: &str = "SPE_OUTPUT_FILE";

/// The environment variable that names one run of a command, set for the
/// command and inherited by every process it starts: at the end of the run,
/// the processes that still hold it are killed (Linux; see
/// [`CommandPredictor`]'s *Running*). Its value is unique to the run.
pub const RUN_ID_ENV: &str = "SPE_PREDICTION_RUN";

/// The most output read from a command (stdout or its output file): 16 MiB.
/// More is [`PredictorError::BadOutput`], and the command is killed.
pub const MAX_OUTPUT_BYTES: u64 = 16 * 1024 * 1024;

/// How much of the end of a command's stderr is kept for messages: 4 KiB.
/// The rest is read and dropped, so a flood cannot eat memory.
pub const STDERR_TAIL_BYTES: usize = 4096;

/// The default timeout of a command: 60 s.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// An external program that forecasts (e.g. `python3 analysis.py`), run as
/// a child process for each request.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use chrono::Utc;
/// use spe_core::{CommandPredictor, PredictionRequest, Predictor};
///
/// let command = CommandPredictor::builder("python3")
///     .arg("analysis.py")
///     .current_dir("models/")
///     .timeout(Duration::from_secs(30))
///     .memory_limit_bytes(1 << 30)
///     .build();
/// let request = PredictionRequest::builder(Utc::now(), vec![50.0; 24 * 28]).build()?;
/// let forecast = command.predict(&request).await?;
/// println!("{} said {:?}", forecast.model(), forecast.mean());
/// # Ok(()) }
/// ```
///
/// # Running
///
/// - The command gets the request as one JSON object on **stdin** (below),
///   then stdin is closed. It inherits the environment, plus the variables
///   set with [`env`](CommandPredictorBuilder::env), plus
///   [`OUTPUT_FILE_ENV`] (`SPE_OUTPUT_FILE`) when an output file is
///   configured, plus [`RUN_ID_ENV`] (`SPE_PREDICTION_RUN`), which names the
///   run (below).
/// - It writes its output JSON on **stdout**, or, with an
///   [`output_file`](CommandPredictorBuilder::output_file), to that file
///   (as the original system wrote `predictions.json`); the file is deleted
///   before each run, so a stale file from an earlier run is never taken for
///   a fresh answer. At most [`MAX_OUTPUT_BYTES`] are read, within the
///   timeout, and only from a regular file (a FIFO or a directory is
///   [`PredictorError::BadOutput`]).
/// - It must **exit with status 0**. Any other end is
///   [`PredictorError::Crashed`] with the status and the last
///   [`STDERR_TAIL_BYTES`] of stderr (a Python traceback, say).
/// - It runs in a **process group of its own** (Unix). When it exits, when
///   it times out, and when the future running it is dropped, the whole
///   group is killed (`SIGKILL`), so the grandchildren a shell or Python
///   started die with it. On Linux the run's other processes die too:
///   - on a timeout or a drop (the command still running), the descendants
///     that left the group (`setsid`, Python's `start_new_session=True`),
///     found through `/proc` and stopped before they are killed, so they
///     cannot fork away meanwhile;
///   - every time, the processes whose environment holds the run's
///     [`RUN_ID_ENV`] (`SPE_PREDICTION_RUN`, set for the command and
///     inherited by everything it starts): a daemon that double-forked out
///     of the tree, or one left behind in another session by a command that
///     exited on its own (it would also keep stdout open, and the run
///     waiting until its timeout).
///
///   What escapes: a process started with a cleared environment
///   (`env -i`) outside the group and the tree.
/// - **Timeout** ([`timeout`](CommandPredictorBuilder::timeout), default
///   [`DEFAULT_COMMAND_TIMEOUT`]): the group is killed and reaped, then
///   [`PredictorError::TimedOut`].
/// - **Memory limit** ([`memory_limit_bytes`](CommandPredictorBuilder::memory_limit_bytes)),
///   Unix only: the command is started through `/bin/sh -c 'ulimit -v <KiB>
///   && exec "$0" "$@"'`, which caps its address space (`RLIMIT_AS`, inherited
///   by its children). An allocation past it fails inside the command
///   (Python raises `MemoryError`, C's `malloc` returns null), which then
///   typically crashes. Address space is not resident memory: runtimes that
///   reserve large virtual areas (the JVM, some GPU stacks) need a larger
///   limit than their real use. Without `/bin/sh` (not Unix) it is ignored.
/// - A program that does not exist, is not executable, or was deleted is
///   [`PredictorError::Spawn`]. (With a memory limit, the program is looked
///   up first, as `execvp` would: executable files only, in `PATH` for a
///   bare name; if it vanishes between that
///   check and the `exec`, the shell's exit status 127 reports it as
///   `Crashed`.)
///
/// # Request (stdin), version 1
///
/// ```json
/// {
///   "version": 1,
///   "start": "2026-11-25T00:00:00Z",
///   "history_start": "2026-10-28T00:00:00Z",
///   "step_s": 3600,
///   "horizon": 48,
///   "season_length": [24, 168],
///   "levels": [80, 95],
///   "history": [512.3, 498.1, "…one number per step, oldest first…"],
///   "exog": {"temperature_2m": ["…one per history step…"]},
///   "exog_future": {"temperature_2m": ["…one per forecast step…"]}
/// }
/// ```
///
/// `start` is the time of the first step to forecast; `history[i]` is at
/// `history_start + i·step_s`; the forecast's step `h` is at
/// `start + h·step_s`. Times are RFC 3339 in UTC. `levels` are percentages
/// (integers when whole). `exog` and `exog_future` are `null` when there are
/// no regressors. Fields may be added in a later version with the same
/// `version`; a removed or changed field gets a new version.
///
/// # Output (stdout or the output file), version 1
///
/// ```json
/// {
///   "mean":     [510.0, 505.2, "…exactly horizon numbers…"],
///   "lower_80": [490.1, 480.7, "…"], "upper_80": [530.3, 529.9, "…"],
///   "lower_95": [478.2, 467.5, "…"], "upper_95": [541.8, 542.4, "…"],
///   "model": "gbm-v3",
///   "version": 1,
///   "meta": {"anything": "ignored"}
/// }
/// ```
///
/// - `mean` is required: exactly `horizon` finite numbers.
/// - Intervals are optional, as `lower_<L>`/`upper_<L>` pairs for any level
///   `L` in (0, 100) (`lower_80`, `upper_97.5`): both of a pair, `horizon`
///   numbers each, `lower ≤ upper` and containing the mean at each step.
///   Requested levels the output lacks are derived by the chain (see
///   [`PredictionChain`](super::PredictionChain)); other levels are dropped.
/// - `model` (optional, a non-empty string of at most 200 bytes, without
///   control characters such as newlines) names the model; default: the
///   predictor's name. `version`, if present, must be 1. `meta` is ignored.
/// - **Any other key is rejected**, so a typo (`lower80`, `means`) is a clear
///   error instead of a silently missing interval.
/// - JSON has no NaN or infinity: `NaN`, `1e999`, strings and `null` are
///   rejected, naming the key, the index and the value.
///
/// [`parse_predictor_output`](super::parse_predictor_output) is the validator.
#[derive(Debug, Clone)]
pub struct CommandPredictor {
    program: OsString,
    args: Vec<OsString>,
    timeout: Duration,
    memory_limit: Option<u64>,
    output_file: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    current_dir: Option<PathBuf>,
    name: String,
}

/// Builds a [`CommandPredictor`]; see [`CommandPredictor::builder`].
#[derive(Debug, Clone)]
pub struct CommandPredictorBuilder {
    inner: CommandPredictor,
    name_set: bool,
}

impl CommandPredictor {
    /// A command running `program` (a path, or a name looked up in `PATH`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use spe_core::{CommandPredictor, Predictor};
    /// let c = CommandPredictor::builder("python3").arg("analysis.py").build();
    /// assert_eq!(c.name(), "python3 analysis.py");
    /// assert_eq!(c.timeout(), Duration::from_secs(60));
    /// ```
    pub fn builder(program: impl Into<OsString>) -> CommandPredictorBuilder {
        CommandPredictorBuilder {
            inner: CommandPredictor {
                program: program.into(),
                args: Vec::new(),
                timeout: DEFAULT_COMMAND_TIMEOUT,
                memory_limit: None,
                output_file: None,
                env: Vec::new(),
                current_dir: None,
                name: String::new(),
            },
            name_set: false,
        }
    }

    /// A command line run by `/bin/sh -c` (Unix), e.g. the server's
    /// `SPE_PREDICTION_COMMAND="python3 analysis.py --fast"`: the shell does
    /// the word splitting and quoting. Its name is the command line.
    ///
    /// ```
    /// use spe_core::{CommandPredictor, Predictor};
    /// let c = CommandPredictor::shell("python3 analysis.py --fast").build();
    /// assert_eq!(c.name(), "python3 analysis.py --fast");
    /// ```
    pub fn shell(command_line: &str) -> CommandPredictorBuilder {
        CommandPredictor::builder("/bin/sh")
            .arg("-c")
            .arg(command_line)
            .name(command_line)
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The memory limit in bytes, if any.
    pub fn memory_limit_bytes(&self) -> Option<u64> {
        self.memory_limit
    }

    /// The output file as the command sees it, if one is configured.
    pub fn output_file(&self) -> Option<&Path> {
        self.output_file.as_deref()
    }

    /// The output file as this process reads it: relative to the command's
    /// working directory when relative.
    fn output_path(&self) -> Option<PathBuf> {
        let file = self.output_file.as_ref()?;
        Some(match &self.current_dir {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.clone(),
        })
    }

    fn spawn_error(&self, source: std::io::Error) -> PredictorError {
        PredictorError::Spawn {
            program: self.program.to_string_lossy().into_owned(),
            source,
        }
    }

    fn command(&self) -> Result<Command, PredictorError> {
        let mut cmd = match self.memory_limit {
            #[cfg(unix)]
            Some(bytes) => {
                let program = self.resolve_program()?;
                let mut c = Command::new("/bin/sh");
                c.arg("-c")
                    .arg(format!(
                        "ulimit -v {} && exec \"$0\" \"$@\"",
                        ulimit_kib(bytes)
                    ))
                    .arg(program);
                c
            }
            _ => Command::new(&self.program),
        };
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        if let Some(file) = &self.output_file {
            cmd.env(OUTPUT_FILE_ENV, file);
        }
        #[cfg(unix)]
        cmd.process_group(0);
        Ok(cmd)
    }

    /// The program's path, as `execvp` would find it.
    #[cfg(unix)]
    fn resolve_program(&self) -> Result<PathBuf, PredictorError> {
        let program = Path::new(&self.program);
        let not_found = |what: String| {
            self.spawn_error(std::io::Error::new(std::io::ErrorKind::NotFound, what))
        };
        if program.components().count() > 1 || self.program.as_encoded_bytes().contains(&b'/') {
            let path = match &self.current_dir {
                Some(dir) if program.is_relative() => dir.join(program),
                _ => program.to_path_buf(),
            };
            if !is_executable_file(&path) {
                return Err(not_found("no such executable file".into()));
            }
            // Absolute: the shell runs in `current_dir` already, so a
            // relative `dir/program` would be looked for in `dir/dir`.
            return std::path::absolute(&path).map_err(|e| self.spawn_error(e));
        }
        let path_var = self
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == OsStr::new("PATH"))
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        std::env::split_paths(&path_var)
            .map(|dir| dir.join(program))
            .find(|p| is_executable_file(p))
            .ok_or_else(|| not_found("not found in PATH".into()))
    }

    /// Run the command once for `request`.
    async fn run(&self, request: &PredictionRequest) -> Result<Forecast, PredictorError> {
        let input = request_json(request).to_string().into_bytes();
        let output_path = self.output_path();
        if let Some(path) = &output_path {
            match tokio::fs::remove_file(path).await {
                Ok(()) => {
                    tracing::debug!(path = %path.display(), "removed the previous output file")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(self.spawn_error(std::io::Error::new(
                        e.kind(),
                        format!(
                            "cannot remove the stale output file {}: {e}",
                            path.display()
                        ),
                    )));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let run_id = process::run_id();
        let mut child = self
            .command()?
            .env(RUN_ID_ENV, &run_id)
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let group = ProcessGroup::new(child.id(), run_id);
        tracing::debug!(command = %self.name, pid = ?child.id(), "prediction command started");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let to_file = output_path.is_some();

        let exchange = async {
            let write = async {
                if let Some(mut stdin) = stdin {
                    // A command that does not read its input gets a broken
                    // pipe here: its exit status decides, not this.
                    if let Err(e) = stdin.write_all(&input).await {
                        tracing::debug!(error = %e, "prediction command did not read its whole input");
                    }
                    let _ = stdin.shutdown().await;
                }
                Ok::<(), Overflow>(())
            };
            let read_out = async {
                if to_file {
                    // Only the output file counts; stdout is drained for the logs.
                    Ok(tail(stdout, STDERR_TAIL_BYTES).await.into_bytes())
                } else {
                    read_limited(stdout, MAX_OUTPUT_BYTES).await
                }
            };
            let read_err = async { Ok(tail(stderr, STDERR_TAIL_BYTES).await) };
            let wait = async {
                let status = child.wait().await;
                // Leftover grandchildren would keep the pipes open.
                group.kill_group();
                group.reaped();
                Ok(status)
            };
            tokio::try_join!(wait, read_out, read_err, write)
        };
        let outcome = tokio::time::timeout_at(deadline, exchange).await;
        let (status, stdout, stderr_tail) = match outcome {
            Err(_elapsed) => {
                group.kill();
                let _ = child.kill().await;
                group.reaped();
                tracing::warn!(command = %self.name, timeout = ?self.timeout, "prediction command timed out: killed");
                return Err(PredictorError::TimedOut {
                    after: self.timeout,
                });
            }
            Ok(Err(Overflow)) => {
                group.kill();
                let _ = child.kill().await;
                group.reaped();
                return Err(PredictorError::bad_output(format!(
                    "more than {MAX_OUTPUT_BYTES} bytes on stdout: killed"
                )));
            }
            Ok(Ok((status, stdout, stderr_tail, ()))) => (status, stdout, stderr_tail),
        };
        let status = status.map_err(|e| self.spawn_error(e))?;
        if !stderr_tail.trim().is_empty() {
            tracing::debug!(command = %self.name, stderr = %stderr_tail, "prediction command stderr");
        }
        if !status.success() {
            return Err(PredictorError::Crashed {
                status: describe_status(status),
                code: status.code(),
                stderr_tail,
            });
        }
        let bytes = match &output_path {
            None => stdout,
            // Within the same deadline: reading is part of the run.
            Some(path) => tokio::time::timeout_at(deadline, read_file_limited(path))
                .await
                .map_err(|_elapsed| PredictorError::TimedOut {
                    after: self.timeout,
                })??,
        };
        parse_predictor_output(&bytes, request.horizon, &self.name)
    }
}

impl CommandPredictorBuilder {
    /// Add an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.inner.args.push(arg.into());
        self
    }

    /// Add arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.inner.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The timeout (default [`DEFAULT_COMMAND_TIMEOUT`]; at least 1 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Cap the command's address space at `bytes` (Unix; see the
    /// [`CommandPredictor`] documentation).
    pub fn memory_limit_bytes(mut self, bytes: u64) -> Self {
        self.inner.memory_limit = Some(bytes);
        self
    }

    /// Read the output from this file instead of stdout; its path is given
    /// to the command in [`OUTPUT_FILE_ENV`]. A relative path is relative to
    /// the command's working directory.
    pub fn output_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.inner.output_file = Some(path.into());
        self
    }

    /// Set an environment variable for the command.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.inner.env.push((key.into(), value.into()));
        self
    }

    /// The command's working directory (default: this process's).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.inner.current_dir = Some(dir.into());
        self
    }

    /// The name in logs, incidents and results (default: the command line).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.inner.name = name.into();
        self.name_set = true;
        self
    }

    /// The predictor.
    pub fn build(mut self) -> CommandPredictor {
        if !self.name_set || self.inner.name.trim().is_empty() {
            let mut parts = vec![self.inner.program.to_string_lossy().into_owned()];
            parts.extend(
                self.inner
                    .args
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned()),
            );
            self.inner.name = parts.join(" ");
        }
        if self.inner.name.chars().count() > 120 {
            self.inner.name = self.inner.name.chars().take(119).chain(['…']).collect();
        }
        self.inner
    }
}

#[async_trait]
impl Predictor for CommandPredictor {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn predict(&self, request: &PredictionRequest) -> Result<Forecast, PredictorError> {
        let span = tracing::debug_span!("prediction_command", command = %self.name);
        self.run(request).instrument(span).await
    }
}

/// Whether `path` is a file its owner, group or others may execute (what
/// `execvp` would try; it skips a non-executable file earlier in `PATH`).
#[cfg(unix)]
fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Stdout was longer than allowed.
struct Overflow;

fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = nix::sys::signal::Signal::try_from(signal)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            return format!("killed by signal {signal}{name}");
        }
    }
    status.to_string()
}

/// Everything `reader` gives, or `Overflow` past `limit` bytes.
async fn read_limited<R: AsyncRead + Unpin>(
    reader: Option<R>,
    limit: u64,
) -> Result<Vec<u8>, Overflow> {
    let Some(reader) = reader else {
        return Ok(Vec::new());
    };
    let mut buf = Vec::new();
    if let Err(e) = reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .await
    {
        tracing::debug!(error = %e, "error reading the prediction command's stdout");
    }
    if buf.len() as u64 > limit {
        return Err(Overflow);
    }
    Ok(buf)
}

/// The last `keep` bytes of what `reader` gives, as text (reads to the end).
async fn tail<R: AsyncRead + Unpin>(reader: Option<R>, keep: usize) -> String {
    let Some(mut reader) = reader else {
        return String::new();
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 8192];
    let mut cut = false;
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 2 * keep {
                    buf.drain(..buf.len() - keep);
                    cut = true;
                }
            }
        }
    }
    if buf.len() > keep {
        buf.drain(..buf.len() - keep);
        cut = true;
    }
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim_end();
    if cut {
        format!("…{text}")
    } else {
        text.to_owned()
    }
}

/// `a directory`, `a FIFO`, … for an error message.
fn describe_file_type(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "something else"
    }
}

/// The output file, read whole (at most [`MAX_OUTPUT_BYTES`]). Only a
/// regular file is read: a FIFO would block the open until someone writes
/// to it, a device could give bytes forever.
async fn read_file_limited(path: &Path) -> Result<Vec<u8>, PredictorError> {
    let not_regular = |kind: std::fs::FileType| {
        PredictorError::bad_output(format!(
            "{} is {}, not a regular file",
            path.display(),
            describe_file_type(kind)
        ))
    };
    if let Ok(meta) = tokio::fs::metadata(path).await {
        if !meta.is_file() {
            return Err(not_regular(meta.file_type()));
        }
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.read(true);
    // Non-blocking: if a FIFO replaced the file since the check, the open
    // still returns at once (and the check below refuses it).
    #[cfg(unix)]
    options.custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits());
    let file = match options.open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PredictorError::bad_output(format!(
                "the command exited with status 0 but wrote no {}",
                path.display()
            )));
        }
        Err(e) => {
            return Err(PredictorError::bad_output(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    match file.metadata().await {
        Ok(meta) if !meta.is_file() => return Err(not_regular(meta.file_type())),
        Ok(_) => {}
        Err(e) => {
            return Err(PredictorError::bad_output(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    }
    let mut buf = Vec::new();
    file.take(MAX_OUTPUT_BYTES + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| PredictorError::bad_output(format!("cannot read {}: {e}", path.display())))?;
    if buf.len() as u64 > MAX_OUTPUT_BYTES {
        return Err(PredictorError::bad_output(format!(
            "{} is larger than {MAX_OUTPUT_BYTES} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

/// The address-space limit `ulimit -v` is given for `bytes`: KiB, rounded
/// up (at least 1), or `unlimited` beyond [`MAX_ULIMIT_KIB`], where a shell
/// multiplying by 1024 into 64 bits would wrap (dash's `ulimit -v 2^54`
/// sets 0, and every run would crash) and which no address space reaches.
fn ulimit_kib(bytes: u64) -> String {
    let kib = bytes.div_ceil(1024).max(1);
    if kib > MAX_ULIMIT_KIB {
        "unlimited".to_owned()
    } else {
        kib.to_string()
    }
}

/// The largest `ulimit -v` given as a number: 2^53 KiB (8 EiB), far past
/// any machine's address space (2^57 bytes with five-level paging).
const MAX_ULIMIT_KIB: u64 = 1 << 53;
