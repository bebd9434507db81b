//! The processes of a prediction command, killed as a whole:
//! [`ProcessGroup`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[cfg(target_os = "linux")]
use super::command::RUN_ID_ENV;

/// A value for [`RUN_ID_ENV`](super::RUN_ID_ENV) that no other run has, in this process or
/// another: this process's id and start time, and a count of its runs.
pub(super) fn run_id() -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    #[cfg(target_os = "linux")]
    let start = i32::try_from(pid)
        .ok()
        .and_then(tree::start_time)
        .unwrap_or(0);
    #[cfg(not(target_os = "linux"))]
    let start = 0;
    format!("{pid}-{start}-{run}")
}

/// The child's process group: killed (`SIGKILL`) on request and on drop,
/// unless the leader has been reaped and the group killed already.
///
/// On Linux, [`kill`](Self::kill) also kills every descendant of the
/// leader that left the group (`setsid`, `setpgid`, Python's
/// `start_new_session=True`): the tree under the leader is walked through
/// `/proc/<pid>/task/*/children` (only its own processes are read), each
/// process stopped (`SIGSTOP`) before its children are listed, so none can
/// fork away, and every one found is then killed, unless its pid has since
/// been freed and reused (its start time tells).
///
/// A descendant whose parent had already exited (a daemon that
/// double-forks) was adopted by `init` and is no longer in the tree. Every
/// process of a run carries the run's [`RUN_ID_ENV`](super::RUN_ID_ENV) in its environment, so
/// [`kill`](Self::kill) and [`kill_group`](Self::kill_group) also stop and
/// kill the processes of this user whose initial environment holds it
/// (`/proc/<pid>/environ`). What still escapes: a process started with a
/// cleared environment (`env -i`) outside the group and the tree.
pub(super) struct ProcessGroup {
    #[cfg_attr(not(unix), allow(dead_code))]
    pgid: Option<i32>,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    run_id: String,
    reaped: AtomicBool,
}

impl ProcessGroup {
    /// The group led by the child `pid` (spawned with a process group of
    /// its own and [`RUN_ID_ENV`](super::RUN_ID_ENV) set to `run_id`).
    pub(super) fn new(pid: Option<u32>, run_id: String) -> Self {
        ProcessGroup {
            pgid: pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0),
            run_id,
            reaped: AtomicBool::new(false),
        }
    }

    /// `SIGKILL` to the leader's descendants outside the group and the
    /// run's marked processes (Linux), and to the group, unless it was
    /// [`reaped`](Self::reaped): its id may belong to another group by then.
    pub(super) fn kill(&self) {
        if self.reaped.load(Ordering::Acquire) {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(leader) = self.pgid {
            for process in tree::freeze_descendants(leader) {
                tree::kill(process);
            }
        }
        self.kill_group();
    }

    /// `SIGKILL` to the group and the run's marked processes (Linux) only:
    /// after the leader exited on its own, while it is not reaped yet (its
    /// children were handed to `init` when it exited, so there is no tree
    /// left to walk).
    pub(super) fn kill_group(&self) {
        if self.reaped.load(Ordering::Acquire) {
            return;
        }
        #[cfg(target_os = "linux")]
        for process in tree::freeze_marked(RUN_ID_ENV, &self.run_id) {
            tree::kill(process);
        }
        #[cfg(unix)]
        if let Some(pgid) = self.pgid {
            use nix::sys::signal::{Signal, killpg};
            match killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => {
                    tracing::warn!(pgid, error = %e, "cannot kill the prediction command's process group")
                }
            }
        }
    }

    /// The leader is reaped and the group was killed after it: nothing to
    /// do on drop (and its id may be reused).
    pub(super) fn reaped(&self) {
        self.reaped.store(true, Ordering::Release);
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if !self.reaped.load(Ordering::Acquire) {
            tracing::debug!(pgid = ?self.pgid, "prediction command dropped: killing its processes");
        }
        self.kill();
    }
}

/// `signal` to `pid`; a process already gone is not an error.
#[cfg(target_os = "linux")]
fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(pid, %signal, error = %e, "cannot signal a prediction command's process")
        }
    }
}

/// The process tree under a pid, read from `/proc`.
#[cfg(target_os = "linux")]
pub(super) mod tree {
    use std::collections::HashSet;

    use nix::sys::signal::Signal;

    /// Walks of the tree: a signalled process stops a moment after
    /// `kill` returns, so a walk may miss what it forked meanwhile; the
    /// next finds it.
    const MAX_WALKS: usize = 8;

    /// A process found in the tree: its pid and its start time (in clock
    /// ticks since boot), which tells it from a later process given the
    /// same pid.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Found {
        pub(crate) pid: i32,
        pub(crate) start: u64,
    }

    /// Stops (`SIGSTOP`) `root` and every live descendant of it, each before
    /// its children are listed (a stopped process cannot fork), walking the
    /// tree again until a walk finds nobody new, and returns the
    /// descendants (not `root`, the caller's child) for the caller to kill
    /// with [`kill`].
    pub(crate) fn freeze_descendants(root: i32) -> Vec<Found> {
        super::signal(root, Signal::SIGSTOP);
        let mut found: Vec<Found> = Vec::new();
        let mut seen: HashSet<i32> = HashSet::from([root]);
        for _ in 0..MAX_WALKS {
            let before = found.len();
            let mut stack = vec![root];
            let mut visited: HashSet<i32> = HashSet::new();
            while let Some(parent) = stack.pop() {
                if !visited.insert(parent) {
                    continue;
                }
                for pid in children(parent) {
                    if seen.insert(pid) {
                        let Some(start) = start_time(pid) else {
                            continue;
                        };
                        super::signal(pid, Signal::SIGSTOP);
                        found.push(Found { pid, start });
                    }
                    stack.push(pid);
                }
            }
            if found.len() == before {
                break;
            }
        }
        found
    }

    /// Stops (`SIGSTOP`) every live process of this user, but this one,
    /// whose initial environment (`/proc/<pid>/environ`) holds `key=value`,
    /// scanning again until a scan finds nobody new, and returns them for
    /// the caller to kill with [`kill`]. Processes of other users cannot be
    /// read, and are left alone.
    pub(crate) fn freeze_marked(key: &str, value: &str) -> Vec<Found> {
        let marker = format!("{key}={value}");
        let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        let mut found: Vec<Found> = Vec::new();
        let mut seen: HashSet<i32> = HashSet::from([me]);
        for _ in 0..MAX_WALKS {
            let before = found.len();
            for pid in pids() {
                if seen.contains(&pid) || !has_env(pid, marker.as_bytes()) {
                    continue;
                }
                seen.insert(pid);
                let Some(start) = start_time(pid) else {
                    continue;
                };
                super::signal(pid, Signal::SIGSTOP);
                found.push(Found { pid, start });
            }
            if found.len() == before {
                break;
            }
        }
        found
    }

    /// The pids in `/proc`.
    fn pids() -> Vec<i32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// Whether `entry` (`KEY=value`) is one of the NUL-separated entries of
    /// `pid`'s initial environment; `false` when it cannot be read.
    pub(crate) fn has_env(pid: i32, entry: &[u8]) -> bool {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|environ| environ.split(|b| *b == 0).any(|e| e == entry))
    }

    /// `SIGKILL` to `process` if its pid still names the process found (a
    /// pid freed and reused since is left alone).
    pub(crate) fn kill(process: Found) {
        if start_time(process.pid) == Some(process.start) {
            super::signal(process.pid, Signal::SIGKILL);
        }
    }

    /// The children of `pid`: from `/proc/<pid>/task/*/children` (one file
    /// per thread), or, on a kernel without those files, from the parent
    /// pid of every process.
    pub(crate) fn children(pid: i32) -> Vec<i32> {
        let tasks = std::path::PathBuf::from(format!("/proc/{pid}/task"));
        let Ok(threads) = std::fs::read_dir(&tasks) else {
            return Vec::new(); // gone
        };
        let mut out = Vec::new();
        for thread in threads.flatten() {
            match std::fs::read_to_string(thread.path().join("children")) {
                Ok(text) => out.extend(
                    text.split_ascii_whitespace()
                        .filter_map(|c| c.parse::<i32>().ok()),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && thread.path().exists() => {
                    return children_by_scan(pid);
                }
                Err(_) => {} // the thread ended
            }
        }
        out
    }

    /// The children of `pid` from the parent pid of every live process.
    pub(crate) fn children_by_scan(pid: i32) -> Vec<i32> {
        pids()
            .into_iter()
            .filter(|child| {
                std::fs::read_to_string(format!("/proc/{child}/stat"))
                    .ok()
                    .and_then(|stat| parse_stat(&stat))
                    .is_some_and(|fields| fields.ppid == pid && fields.alive())
            })
            .collect()
    }

    /// The start time of the live process `pid`, `None` if there is none
    /// (or only its zombie).
    pub(crate) fn start_time(pid: i32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&stat).filter(Stat::alive).map(|s| s.start)
    }

    /// The fields of a `/proc/<pid>/stat` line this module reads.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Stat {
        pub(crate) state: char,
        pub(crate) ppid: i32,
        pub(crate) start: u64,
    }

    impl Stat {
        fn alive(&self) -> bool {
            self.state != 'Z' && self.state != 'X'
        }
    }

    /// Parses `pid (comm) state ppid … starttime …` (`starttime` is field
    /// 22), where `comm` may hold spaces and parentheses (so the last `)`
    /// ends it).
    pub(crate) fn parse_stat(stat: &str) -> Option<Stat> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        // Fields 5 to 21 lie between the parent pid (4) and the start time.
        let start = fields.nth(17)?.parse().ok()?;
        Some(Stat { state, ppid, start })
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use proptest::prelude::*;

    use super::tree::{Found, Stat, children, children_by_scan, kill, parse_stat, start_time};

    /// A stat line with these fields (the rest as the kernel writes them).
    fn line(pid: i32, comm: &str, state: char, ppid: i32, start: u64) -> String {
        format!(
            "{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 {start} 1024 10 18446744073709551615"
        )
    }

    #[test]
    fn stat_lines_are_parsed_past_any_command_name() {
        let stat = |state, ppid, start| Some(Stat { state, ppid, start });
        assert_eq!(parse_stat(&line(42, "sh", 'S', 7, 99)), stat('S', 7, 99));
        // A name with spaces and parentheses: the last `)` ends it.
        assert_eq!(
            parse_stat(&line(43, "a) b (c)", 'Z', 1, 5)),
            stat('Z', 1, 5)
        );
        // This process's own line.
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        let me = parse_stat(&own).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id() as i32);
        assert!(me.start > 0);
        // Cut short or garbled: nothing.
        assert_eq!(parse_stat("44 (x"), None);
        assert_eq!(parse_stat("45 (x) R"), None);
        assert_eq!(parse_stat("46 (x) R notapid"), None);
        assert_eq!(parse_stat("47 (x) R 1 2 3"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn children_are_listed_both_ways_and_a_reused_pid_is_never_killed() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let me = std::process::id() as i32;
        assert!(children(me).contains(&pid));
        assert!(children_by_scan(me).contains(&pid));
        let start = start_time(pid).unwrap();
        // A different start time: another process that got the pid.
        kill(Found {
            pid,
            start: start + 1,
        });
        assert_eq!(child.try_wait().unwrap(), None, "killed a stranger");
        kill(Found { pid, start });
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        assert_eq!(start_time(pid), None);
    }

    proptest! {
        #[test]
        fn any_command_name_parses_back(
            comm in "\\PC{0,16}",
            state in proptest::sample::select(vec!['R', 'S', 'D', 'T', 'Z', 'X', 'I']),
            ppid in 0i32..i32::MAX,
            start in any::<u64>(),
        ) {
            prop_assert_eq!(
                parse_stat(&line(1, &comm, state, ppid, start)),
                Some(Stat { state, ppid, start })
            );
        }

        #[test]
        fn garbage_never_panics(text in "\\PC{0,200}") {
            let _ = parse_stat(&text);
        }
    }
}
