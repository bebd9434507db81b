//! `CommandPredictor` with real child processes (`sh` scripts in a tempdir).

use std::path::Path;
use std::time::Duration;

use super::super::{
    CommandPredictor, MAX_OUTPUT_BYTES, OUTPUT_FILE_ENV, Predictor, PredictorError,
    STDERR_TAIL_BYTES,
};
use super::{good_output, read_pid, request, script};
use crate::journal::IncidentKind;

/// `sh <script>`, with the script's directory in `$DIR`.
fn sh(dir: &Path, script: &Path) -> CommandPredictor {
    sh_timed(dir, script, Duration::from_secs(20))
}

/// [`sh`] with another timeout.
fn sh_timed(dir: &Path, script: &Path, timeout: Duration) -> CommandPredictor {
    CommandPredictor::builder("/bin/sh")
        .arg(script)
        .env("DIR", dir)
        .timeout(timeout)
        .build()
}

#[tokio::test]
async fn a_good_script_answers_on_stdout_and_reads_the_request_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = good_output(4, "gbm");
    let s = script(
        dir.path(),
        "good.sh",
        &format!("cat > \"$DIR/request.json\"\nprintf '%s' '{out}'"),
    );
    let f = sh(dir.path(), &s).predict(&request(4)).await.unwrap();
    assert_eq!(f.model(), "gbm");
    assert_eq!(f.mean(), &[100.0, 101.0, 102.0, 103.0]);
    assert_eq!(f.lower(80.0).unwrap()[0], 95.0);
    let seen: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("request.json")).unwrap())
            .unwrap();
    assert_eq!(seen["version"], 1);
    assert_eq!(seen["horizon"], 4);
    assert_eq!(seen["history"].as_array().unwrap().len(), 48);
    assert_eq!(seen["start"], "2026-11-25T00:00:00Z");
    assert_eq!(seen["levels"], serde_json::json!([80, 95]));
}

#[tokio::test]
async fn a_script_can_answer_in_its_output_file_and_a_stale_file_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = good_output(2, "file-model");
    let s = script(
        dir.path(),
        "file.sh",
        &format!(
            "cat > /dev/null\necho 'progress: 50%'\n[ \"$SPE_OUTPUT_FILE\" = predictions.json ] || exit 9\nprintf '%s' '{out}' > \"$SPE_OUTPUT_FILE\""
        ),
    );
    let command = CommandPredictor::builder("/bin/sh")
        .arg(&s)
        .current_dir(dir.path())
        .output_file("predictions.json")
        .build();
    let f = command.predict(&request(2)).await.unwrap();
    assert_eq!(f.model(), "file-model");
    assert_eq!(
        command.output_file().unwrap(),
        Path::new("predictions.json")
    );

    // A script that exits 0 without writing: the previous file is not taken.
    let lazy = script(dir.path(), "lazy.sh", "cat > /dev/null\nexit 0");
    assert!(dir.path().join("predictions.json").exists());
    let command = CommandPredictor::builder("/bin/sh")
        .arg(&lazy)
        .current_dir(dir.path())
        .output_file("predictions.json")
        .build();
    let e = command.predict(&request(2)).await.unwrap_err();
    assert!(matches!(e, PredictorError::BadOutput { .. }), "{e}");
    assert!(e.to_string().contains("wrote no"), "{e}");
    assert_eq!(OUTPUT_FILE_ENV, "SPE_OUTPUT_FILE");
}

/// An output file that is not a regular file is refused at once: a FIFO
/// nobody writes to would block the open forever, a directory cannot be read.
#[tokio::test]
async fn an_output_file_that_is_a_fifo_or_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, make, kind) in [
        ("fifo.sh", "mkfifo \"$SPE_OUTPUT_FILE\"", "is a FIFO"),
        ("dir.sh", "mkdir \"$SPE_OUTPUT_FILE\"", "is a directory"),
    ] {
        let s = script(dir.path(), name, &format!("cat > /dev/null\n{make}"));
        let command = CommandPredictor::builder("/bin/sh")
            .arg(&s)
            .current_dir(dir.path())
            .output_file(format!("{name}.out"))
            .timeout(Duration::from_secs(60))
            .build();
        let e = command.predict(&request(2)).await.unwrap_err();
        assert!(
            matches!(&e, PredictorError::BadOutput { .. })
                && e.to_string()
                    .contains(&format!("{kind}, not a regular file")),
            "{name}: {e:?}"
        );
    }
}

/// `current_dir` relative to the process's, as a caller may give it.
fn relative_to_cwd(dir: &Path) -> std::path::PathBuf {
    let cwd = std::env::current_dir().unwrap();
    let mut rel = std::path::PathBuf::new();
    for _ in cwd.components().skip(1) {
        rel.push("..");
    }
    rel.join(dir.strip_prefix("/").unwrap())
}

/// With a memory limit, a relative program in a relative working directory
/// runs as it does without one (it used to be looked for in `dir/dir`).
#[cfg(unix)]
#[tokio::test]
async fn a_memory_limit_keeps_a_relative_program_in_a_relative_dir_working() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = good_output(2, "relative");
    let s = script(
        dir.path(),
        "run.sh",
        &format!("cat > /dev/null\nprintf '%s' '{out}'"),
    );
    std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rel = relative_to_cwd(dir.path());
    assert!(rel.is_relative());
    for limit in [None, Some(1u64 << 30)] {
        let mut builder = CommandPredictor::builder("./run.sh").current_dir(&rel);
        if let Some(bytes) = limit {
            builder = builder.memory_limit_bytes(bytes);
        }
        let f = builder.build().predict(&request(2)).await.unwrap();
        assert_eq!(f.model(), "relative", "limit {limit:?}");
    }
}

/// With a memory limit, the `PATH` lookup skips a file that is not
/// executable, as `execvp` does without one.
#[cfg(unix)]
#[tokio::test]
async fn a_memory_limit_looks_up_path_like_execvp() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&first).unwrap();
    std::fs::create_dir(&second).unwrap();
    script(&first, "spe-predict", "exit 7");
    let out = good_output(2, "in-path");
    let real = script(
        &second,
        "spe-predict",
        &format!("cat > /dev/null\nprintf '%s' '{out}'"),
    );
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path =
        std::env::join_paths([&first, &second, Path::new("/usr/bin"), Path::new("/bin")]).unwrap();
    let f = CommandPredictor::builder("spe-predict")
        .env("PATH", path)
        .memory_limit_bytes(1 << 30)
        .build()
        .predict(&request(2))
        .await
        .unwrap();
    assert_eq!(f.model(), "in-path");
}

#[tokio::test]
async fn a_crash_reports_its_exit_code_and_the_end_of_a_flooded_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "crash.sh",
        "head -c 1000000 /dev/zero | tr '\\0' 'x' >&2\necho >&2\necho 'ValueError: model exploded' >&2\nexit 3",
    );
    let e = sh(dir.path(), &s).predict(&request(4)).await.unwrap_err();
    let PredictorError::Crashed {
        status,
        code,
        stderr_tail,
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!(status, "exit code 3");
    assert_eq!(*code, Some(3));
    assert!(
        stderr_tail.ends_with("ValueError: model exploded"),
        "{stderr_tail}"
    );
    assert!(
        stderr_tail.len() <= STDERR_TAIL_BYTES + 4,
        "{}",
        stderr_tail.len()
    );
    assert_eq!(e.incident_kind(), IncidentKind::ModelCrash);
    assert!(e.to_string().contains("model exploded"));
}

#[tokio::test]
async fn a_signal_is_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "segv.sh", "kill -SEGV $$");
    let e = sh(dir.path(), &s).predict(&request(4)).await.unwrap_err();
    assert!(
        matches!(&e, PredictorError::Crashed { code: None, status, .. } if status.starts_with("killed by signal 11")),
        "{e:?}"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_hanging_script_is_killed_with_its_grandchildren_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "hang.sh",
        "echo $$ > \"$DIR/pid\"\nsleep 3600 &\necho $! > \"$DIR/grandchild\"\nwait",
    );
    let command = sh_timed(dir.path(), &s, Duration::from_secs(1));
    let e = command.predict(&request(4)).await.unwrap_err();
    assert!(
        matches!(e, PredictorError::TimedOut { after } if after == Duration::from_secs(1)),
        "{e:?}"
    );
    assert_eq!(e.incident_kind(), IncidentKind::ModelTimeout);
    let pid = read_pid(&dir.path().join("pid")).await;
    let grandchild = read_pid(&dir.path().join("grandchild")).await;
    // The child is reaped before `predict` returns; the grandchild got SIGKILL.
    assert!(!super::alive(pid), "the script {pid} is still running");
    assert!(
        super::wait_dead(grandchild).await,
        "the grandchild {grandchild} is still running"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn dropping_the_future_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "hang.sh",
        "sleep 3600 &\necho $! > \"$DIR/grandchild\"\necho $$ > \"$DIR/pid\"\nwait",
    );
    let command = sh(dir.path(), &s);
    let task = tokio::spawn(async move { command.predict(&request(4)).await });
    let pid = read_pid(&dir.path().join("pid")).await;
    let grandchild = read_pid(&dir.path().join("grandchild")).await;
    assert!(super::alive(pid) && super::alive(grandchild));
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(
        super::wait_dead(pid).await,
        "the script {pid} is still running"
    );
    assert!(
        super::wait_dead(grandchild).await,
        "the grandchild {grandchild} is still running"
    );
}

/// The session a live process belongs to (`/proc/<pid>/stat`, field 6).
#[cfg(target_os = "linux")]
fn session_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// A script that starts a process in a session of its own (`setsid`),
/// which starts a child of its own, then waits: the pids go to files.
#[cfg(target_os = "linux")]
const ESCAPING_SCRIPT: &str = "echo $$ > \"$DIR/pid\"
setsid /bin/sh -c 'sleep 3600 & echo $! > \"$DIR/deep\"; echo $$ > \"$DIR/escaped\"; wait' \
    > /dev/null 2>&1 < /dev/null &
wait";

/// The script's, the escaped process's and its child's pids, once all are
/// written; checks that the escaped ones did leave the script's session.
#[cfg(target_os = "linux")]
async fn escaping_pids(dir: &std::path::Path) -> [i32; 3] {
    let pid = read_pid(&dir.join("pid")).await;
    let escaped = read_pid(&dir.join("escaped")).await;
    let deep = read_pid(&dir.join("deep")).await;
    assert_ne!(
        session_of(escaped),
        session_of(pid),
        "setsid did not move it"
    );
    assert_eq!(session_of(deep), session_of(escaped));
    [pid, escaped, deep]
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn processes_that_left_the_group_are_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "escape.sh", ESCAPING_SCRIPT);
    // Long enough for a loaded machine to start all three first.
    let command = sh_timed(dir.path(), &s, Duration::from_secs(5));
    let run = tokio::spawn(async move { command.predict(&request(4)).await });
    let pids = escaping_pids(dir.path()).await;
    let e = run.await.unwrap().unwrap_err();
    assert!(matches!(e, PredictorError::TimedOut { .. }), "{e:?}");
    for pid in pids {
        assert!(super::wait_dead(pid).await, "{pid} is still running");
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn processes_that_left_the_group_are_killed_when_the_run_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "escape.sh", ESCAPING_SCRIPT);
    let command = sh(dir.path(), &s);
    let task = tokio::spawn(async move { command.predict(&request(4)).await });
    let pids = escaping_pids(dir.path()).await;
    assert!(pids.iter().all(|p| super::alive(*p)));
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    for pid in pids {
        assert!(super::wait_dead(pid).await, "{pid} is still running");
    }
}

/// The parent pid of a live process (`/proc/<pid>/stat`, field 4).
#[cfg(target_os = "linux")]
fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    super::super::process::tree::parse_stat(&stat).unwrap().ppid
}

/// Starts a daemon the classic way: a subshell starts it in a session of
/// its own and exits at once, so `init` adopts it; its pid goes to
/// `$DIR/daemon`. It inherits stdout, as a careless daemon does.
#[cfg(target_os = "linux")]
const DAEMON: &str = "( setsid sleep 3600 & echo $! > \"$DIR/daemon\" )";

/// The daemon's pid, once written, and once it has left the script's tree
/// and session (the script's session is this process's): `setsid` runs a
/// moment after its pid is written.
#[cfg(target_os = "linux")]
async fn daemon_pid(dir: &std::path::Path, script: i32) -> i32 {
    let daemon = read_pid(&dir.join("daemon")).await;
    let own = session_of(i32::try_from(std::process::id()).unwrap());
    for _ in 0..500 {
        if parent_of(daemon) != script && session_of(daemon) != own {
            return daemon;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the daemon {daemon} did not leave the script's tree and session");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_daemon_that_double_forked_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!("echo $$ > \"$DIR/pid\"\n{DAEMON}\nsleep 3600");
    let s = script(dir.path(), "daemon.sh", &body);
    let command = sh_timed(dir.path(), &s, Duration::from_secs(5));
    let run = tokio::spawn(async move { command.predict(&request(4)).await });
    let pid = read_pid(&dir.path().join("pid")).await;
    let daemon = daemon_pid(dir.path(), pid).await;
    let e = run.await.unwrap().unwrap_err();
    assert!(matches!(e, PredictorError::TimedOut { .. }), "{e:?}");
    assert!(
        super::wait_dead(daemon).await,
        "the daemon {daemon} is still running"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_daemon_left_behind_by_a_good_run_is_killed_and_does_not_hold_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = good_output(4, "leaky");
    // The daemon keeps stdout open: without the kill, the run would wait
    // for its end of file until the timeout.
    let body = format!(
        "cat > /dev/null\necho $$ > \"$DIR/pid\"\n{DAEMON}\n\
         until [ -e \"$DIR/go\" ]; do sleep 0.01; done\nprintf '%s' '{out}'"
    );
    let s = script(dir.path(), "leaky.sh", &body);
    let command = sh_timed(dir.path(), &s, Duration::from_secs(120));
    let run = tokio::spawn(async move { command.predict(&request(4)).await });
    let pid = read_pid(&dir.path().join("pid")).await;
    let daemon = daemon_pid(dir.path(), pid).await;
    std::fs::write(dir.path().join("go"), "").unwrap();
    let forecast = run.await.unwrap().unwrap();
    assert_eq!(forecast.model(), "leaky");
    assert!(
        super::wait_dead(daemon).await,
        "the daemon {daemon} is still running"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn only_the_processes_marked_with_the_run_are_found() {
    use super::super::RUN_ID_ENV;
    use super::super::process::{run_id, tree};
    let (mine, other) = (run_id(), run_id());
    assert_ne!(mine, other);
    let spawn = |id: &str| {
        std::process::Command::new("sleep")
            .arg("30")
            .env(RUN_ID_ENV, id)
            .spawn()
            .unwrap()
    };
    let (mut marked, mut stranger) = (spawn(&mine), spawn(&other));
    let found = tree::freeze_marked(RUN_ID_ENV, &mine);
    assert_eq!(
        found.iter().map(|f| f.pid).collect::<Vec<_>>(),
        [marked.id() as i32],
        "{found:?}"
    );
    // A prefix of the value is not the value.
    let prefix = &mine[..mine.len() - 1];
    assert!(!tree::has_env(
        marked.id() as i32,
        format!("{RUN_ID_ENV}={prefix}").as_bytes()
    ));
    for f in found {
        tree::kill(f);
    }
    assert!(marked.wait().is_ok());
    assert_eq!(
        stranger.try_wait().unwrap(),
        None,
        "killed another run's process"
    );
    stranger.kill().unwrap();
    let _ = stranger.wait();
}

#[tokio::test]
async fn garbage_wrong_counts_non_numbers_and_crossed_bounds_are_bad_output() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("echo 'Segmentation fault (core dumped)'", "not JSON"),
        ("head -c 5000 /dev/urandom", "not JSON"),
        ("echo '{\"mean\":[1,2,3]}'", "mean has 3 values, expected 4"),
        (
            "echo '{\"mean\":[1,2,1e999,4]}'",
            "mean[2] is 1e999: JSON has no NaN",
        ),
        (
            "echo '{\"mean\":[1,2,\"inf\",4]}'",
            "mean[2] is \"inf\", not a number",
        ),
        (
            "echo '{\"mean\":[1,2,3,4],\"lower_80\":[0,1,2,5],\"upper_80\":[2,3,4,4.5]}'",
            "lower_80[3] = 5 is above upper_80[3] = 4.5",
        ),
        ("true", "empty output"),
    ];
    for (i, (body, expected)) in cases.iter().enumerate() {
        let s = script(
            dir.path(),
            &format!("bad{i}.sh"),
            &format!("cat > /dev/null\n{body}"),
        );
        let e = sh(dir.path(), &s).predict(&request(4)).await.unwrap_err();
        assert!(
            matches!(e, PredictorError::BadOutput { .. }) && e.to_string().contains(expected),
            "{body}: {e}"
        );
        assert_eq!(e.incident_kind(), IncidentKind::ModelBadOutput);
    }
}

#[tokio::test]
async fn a_stdout_flood_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "flood.sh",
        &format!("head -c {} /dev/zero", MAX_OUTPUT_BYTES + 1000),
    );
    let e = sh(dir.path(), &s).predict(&request(4)).await.unwrap_err();
    assert!(e.to_string().contains("more than"), "{e}");
}

#[tokio::test]
async fn a_missing_or_deleted_program_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("predict.sh");
    for command in [
        CommandPredictor::builder(&gone).build(),
        CommandPredictor::builder(&gone)
            .memory_limit_bytes(1 << 30)
            .build(),
        CommandPredictor::builder("no-such-predictor-anywhere")
            .memory_limit_bytes(1 << 30)
            .build(),
    ] {
        let e = command.predict(&request(4)).await.unwrap_err();
        assert!(matches!(e, PredictorError::Spawn { .. }), "{e:?}");
        assert_eq!(e.incident_kind(), IncidentKind::ModelCrash);
    }
    // Run through an interpreter, a deleted script is the interpreter's crash.
    let e = CommandPredictor::builder("/bin/sh")
        .arg(&gone)
        .build()
        .predict(&request(4))
        .await
        .unwrap_err();
    assert!(matches!(e, PredictorError::Crashed { .. }), "{e:?}");
}

#[tokio::test]
async fn a_memory_limit_lets_a_small_command_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = good_output(4, "small");
    let s = script(
        dir.path(),
        "small.sh",
        &format!("cat > /dev/null\nprintf '%s' '{out}'"),
    );
    // Up to the largest limits, which a shell's `ulimit -v` in KiB would
    // wrap to 0 if given as numbers (every run crashing): no real limit.
    for bytes in [256 << 20, 1 << 62, (1 << 63) + 1, u64::MAX - 1023, u64::MAX] {
        let command = CommandPredictor::builder("sh")
            .arg(&s)
            .memory_limit_bytes(bytes)
            .build();
        assert_eq!(command.memory_limit_bytes(), Some(bytes));
        let f = command.predict(&request(4)).await.unwrap();
        assert_eq!(f.model(), "small", "{bytes}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_shell_that_hogs_memory_under_a_memory_limit_crashes() {
    // 96 MiB read into a shell variable: it answers its length without a
    // limit, and crashes under a 32 MiB one.
    let hog = |limit: Option<u64>| {
        let builder = CommandPredictor::builder("/bin/sh")
            .arg("-c")
            .arg("x=$(head -c 100663296 /dev/zero | tr '\\0' a); echo \"{\\\"mean\\\":[${#x},0,0,0]}\"")
            .timeout(Duration::from_secs(60));
        match limit {
            Some(bytes) => builder.memory_limit_bytes(bytes).build(),
            None => builder.build(),
        }
    };
    let f = hog(None).predict(&request(4)).await.unwrap();
    assert_eq!(f.mean()[0], 100_663_296.0);
    let e = hog(Some(32 << 20)).predict(&request(4)).await.unwrap_err();
    assert!(matches!(&e, PredictorError::Crashed { .. }), "{e:?}");
    assert_eq!(e.incident_kind(), IncidentKind::ModelCrash);
}

#[tokio::test]
async fn a_python_memory_hog_under_a_memory_limit_fails_with_memory_error() {
    // The project's machines have Python 3 (the binding's tests need it).
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            std::process::Command::new(p)
                .arg("-c")
                .arg("pass")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("python3 on PATH");
    let command = CommandPredictor::builder(python)
        .arg("-c")
        .arg(
            "import sys\nsys.stdin.read()\nhog = bytearray(1 << 30)\nprint('{\"mean\":[1,2,3,4]}')",
        )
        .memory_limit_bytes(256 << 20)
        .timeout(Duration::from_secs(60))
        .build();
    let e = command.predict(&request(4)).await.unwrap_err();
    assert!(
        matches!(&e, PredictorError::Crashed { stderr_tail, .. } if stderr_tail.contains("MemoryError")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_shell_command_line_runs_through_sh() {
    let dir = tempfile::tempdir().unwrap();
    let out = good_output(4, "shell");
    std::fs::write(dir.path().join("out.json"), &out).unwrap();
    let command = CommandPredictor::shell("cat > /dev/null && cat 'out.json'")
        .current_dir(dir.path())
        .build();
    assert_eq!(command.name(), "cat > /dev/null && cat 'out.json'");
    assert_eq!(command.predict(&request(4)).await.unwrap().model(), "shell");
}
