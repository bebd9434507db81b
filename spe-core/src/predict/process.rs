//! The processes of a prediction command, killed as a whole:
//! [`ProcessGroup`].

use std::sync::atomic::{AtomicBool, Ordering};

/// The child's process group: killed (`SIGKILL`) on request and on drop,
/// unless the leader has been reaped and the group killed already.
///
/// On Linux, [`kill`](Self::kill) also kills every descendant of the
/// leader that left the group (`setsid`, `setpgid`, Python's
/// `start_new_session=True`): they are found through `/proc`, stopped
/// (`SIGSTOP`, so they cannot fork any more) until no new one appears, and
/// then killed. A descendant whose parent had already exited was adopted by
/// `init` and is no longer the leader's: a daemon that double-forks out of
/// the group escapes.
pub(super) struct ProcessGroup {
    #[cfg_attr(not(unix), allow(dead_code))]
    pgid: Option<i32>,
    reaped: AtomicBool,
}

impl ProcessGroup {
    /// The group led by the child `pid` (spawned with a process group of
    /// its own).
    pub(super) fn new(pid: Option<u32>) -> Self {
        ProcessGroup {
            pgid: pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0),
            reaped: AtomicBool::new(false),
        }
    }

    /// `SIGKILL` to the leader's descendants outside the group (Linux) and
    /// to the group, unless it was [`reaped`](Self::reaped): its id may
    /// belong to another group by then.
    pub(super) fn kill(&self) {
        if self.reaped.load(Ordering::Acquire) {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(leader) = self.pgid {
            for pid in tree::freeze_descendants(leader) {
                signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        self.kill_group();
    }

    /// `SIGKILL` to the group only: after the leader exited on its own,
    /// while it is not reaped yet (its children were handed to `init` when
    /// it exited, so there is no tree left to walk).
    pub(super) fn kill_group(&self) {
        if self.reaped.load(Ordering::Acquire) {
            return;
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

    /// Rounds of walking the tree and stopping what is new: a process
    /// forks faster than one round only if it forked in every round.
    const MAX_ROUNDS: usize = 8;

    /// Stops (`SIGSTOP`) `root` and every live descendant of it, walking
    /// `/proc` again until a walk finds nobody new, and returns the
    /// descendants (not `root`) for the caller to kill. A stopped process
    /// cannot fork, so after a round that finds nobody new the tree is
    /// complete; the rounds are bounded all the same.
    pub(crate) fn freeze_descendants(root: i32) -> Vec<i32> {
        super::signal(root, nix::sys::signal::Signal::SIGSTOP);
        let mut found: Vec<i32> = Vec::new();
        let mut seen: HashSet<i32> = HashSet::new();
        for _ in 0..MAX_ROUNDS {
            let new: Vec<i32> = descendants(root, &processes())
                .into_iter()
                .filter(|pid| seen.insert(*pid))
                .collect();
            if new.is_empty() {
                break;
            }
            for &pid in &new {
                super::signal(pid, nix::sys::signal::Signal::SIGSTOP);
            }
            found.extend(new);
        }
        found
    }

    /// Every live (not zombie) process as `(pid, parent pid)`; processes
    /// that end while being read are skipped.
    fn processes() -> Vec<(i32, i32)> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (state, ppid) = parse_stat(&stat)?;
            (state != 'Z' && state != 'X').then_some((pid, ppid))
        })
        .collect()
    }

    /// The state and the parent pid in a `/proc/<pid>/stat` line:
    /// `pid (comm) state ppid …`, where `comm` may hold spaces and
    /// parentheses (so the last `)` ends it).
    pub(crate) fn parse_stat(stat: &str) -> Option<(char, i32)> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        Some((state, ppid))
    }

    /// The descendants of `root` in `processes` (`(pid, parent pid)`),
    /// parents before their children; `root` itself is not included.
    pub(crate) fn descendants(root: i32, processes: &[(i32, i32)]) -> Vec<i32> {
        let mut out: Vec<i32> = Vec::new();
        let mut frontier = vec![root];
        let mut inside: HashSet<i32> = HashSet::from([root]);
        while let Some(parent) = frontier.pop() {
            for &(pid, ppid) in processes {
                if ppid == parent && inside.insert(pid) {
                    out.push(pid);
                    frontier.push(pid);
                }
            }
        }
        out
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::tree::{descendants, parse_stat};

    #[test]
    fn stat_lines_are_parsed_past_any_command_name() {
        assert_eq!(parse_stat("42 (sh) S 7 42 42 0 -1"), Some(('S', 7)));
        // A name with spaces and parentheses: the last `)` ends it.
        assert_eq!(parse_stat("43 (a) b (c)) Z 1 43 43 0 -1"), Some(('Z', 1)));
        assert_eq!(parse_stat("44 (x"), None);
        assert_eq!(parse_stat("45 (x) R"), None);
        assert_eq!(parse_stat("46 (x) R notapid"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn descendants_are_the_whole_subtree_and_nothing_else() {
        // 1 ─ 10 ─ 11 ─ 12, 10 ─ 13; 1 ─ 20 ─ 21 (another tree); a cycle
        // 30 ↔ 31 (pids reused while reading) must not loop.
        let procs = [
            (10, 1),
            (11, 10),
            (12, 11),
            (13, 10),
            (20, 1),
            (21, 20),
            (30, 31),
            (31, 30),
        ];
        let mut d = descendants(10, &procs);
        d.sort_unstable();
        assert_eq!(d, [11, 12, 13]);
        assert!(descendants(12, &procs).is_empty());
        let mut c = descendants(30, &procs);
        c.sort_unstable();
        assert_eq!(c, [31]);
    }
}
