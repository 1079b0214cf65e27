//! The fault-injection suite (issue 18): on the paths of `rotate`, `upload` and a `watch`
//! cycle, to a file:// directory and to S3 (s3s-fs), each system call fails once with each
//! error it can return in real life: the N-th call, with Debian's strace
//! (`-e inject=SYSCALL:error=ERR:when=N`). After each run: no panic, no hang, an error that
//! names the file or the step, and the next clean run leaves every line sent shipped exactly
//! once and nothing pending (the exact accounting of tests/util/accounting.rs).
//!
//! How a scenario runs. A real syslog-ng writes docker.log (the test sends it numbered lines)
//! and is asked to reopen over its control socket (`--reopen socket`), so the reopen, the
//! close wait (inotify, /proc) and the control socket are on the path. One clean run under
//! `strace -f` counts the calls; then each sampled (syscall, error, N):
//! - `rotate`: lines are sent, `rotate` runs with the fault, then `rotate` runs clean;
//! - `upload`: lines are sent and docker.log is renamed by hand as a crash right after the
//!   rename would leave it (syslog-ng still writing into it), `upload` finishes the rotation
//!   with the fault, then `upload` runs clean;
//! - `watch`: lines are sent, `watch --quiet 300ms` is fed their 5xx lines on a pipe, stdin is
//!   closed once the cycle is done (or after a few seconds if it failed) and watch must exit
//!   within [`EXIT_AFTER_EOF`] (or it hung); then a clean watch cycle.
//!
//! strace counts calls per thread: `when=N` fails the N-th call of every thread that makes N.
//! The first calls of openat and read are the dynamic loader's (before `main`), so N starts
//! after them. A fault counts only where that error is possible on that descriptor (see
//! [`plausible`]): an eventfd never fails with EIO, and an EAGAIN on a TCP socket tokio polls
//! edge-triggered would be a lie about readiness, not a fault. Such runs are "excluded".
//!
//! CI samples the (syscall, error, N) triples: `FASTTRACK_FAULT_RUNS` per rotate or upload
//! scenario (default 50), `FASTTRACK_FAULT_WATCH_RUNS` per watch scenario (default 15), new
//! runs stop being started after `FASTTRACK_FAULT_BUDGET_SECS` (default 150), and the sample
//! comes from `FASTTRACK_FAULT_SEED` (printed; time by default); `FASTTRACK_FAULT_ONLY`
//! (`read:EIO,flock`) keeps some pairs only, `FASTTRACK_FAULT_PATHS` (`upload,rotate S3`) some
//! paths only. `scripts/faults.sh` runs
//! every N of every pair (`all`) and prints the table of RELIABILITY.md, also written to
//! `$FASTTRACK_FAULT_REPORT` when set.

use crate::util::accounting::account;
use crate::util::*;
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Each system call on the paths, with the errors it can return in real life.
const MATRIX: &[(&str, &[&str])] = &[
    ("write", &["EIO", "ENOSPC", "EDQUOT", "EINTR", "EAGAIN"]),
    ("pwrite64", &["EIO", "ENOSPC", "EDQUOT"]),
    ("writev", &["EINTR", "EAGAIN"]),
    ("fsync", &["EIO", "ENOSPC", "EDQUOT"]),
    ("fdatasync", &["EIO", "ENOSPC", "EDQUOT"]),
    (
        "openat",
        &["EIO", "ENOSPC", "EDQUOT", "EMFILE", "EACCES", "EINTR"],
    ),
    ("read", &["EIO", "EINTR", "EAGAIN"]),
    ("rename", &["EIO", "ENOSPC", "EDQUOT", "EACCES"]),
    ("renameat2", &["EIO", "ENOSPC", "EDQUOT", "EACCES"]),
    ("link", &["EIO", "ENOSPC", "EDQUOT", "EACCES"]),
    ("unlink", &["EIO", "EACCES"]),
    ("mkdir", &["EIO", "ENOSPC", "EDQUOT", "EACCES"]),
    ("getdents64", &["EIO"]),
    ("copy_file_range", &["EIO", "ENOSPC", "EDQUOT"]),
    ("ftruncate", &["EIO", "EINTR"]),
    ("flock", &["EINTR", "EAGAIN"]),
    ("connect", &["ECONNREFUSED", "EAGAIN", "EACCES", "EINTR"]),
    ("sendto", &["EINTR", "EAGAIN"]),
    ("recvfrom", &["EINTR", "EAGAIN", "ECONNREFUSED"]),
    ("inotify_init1", &["EMFILE"]),
    ("inotify_add_watch", &["ENOSPC", "EACCES"]),
];

const LINES_PER_RUN: u64 = 20;
/// A scenario starts over with fresh parts every this many runs, so that the accounting of
/// every shipped object after every run stays cheap.
const GENERATION: u32 = 25;
/// `rotate` and `upload` end within this, or they hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// `watch` exits within this once its stdin is closed, or it hung.
const EXIT_AFTER_EOF: Duration = Duration::from_secs(20);
/// How long an injected watch is given to finish its cycle before its stdin is closed.
const WATCH_CYCLE: Duration = Duration::from_secs(4);
const QUIET: &str = "300ms";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Rotate,
    Upload,
    Watch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Dest {
    File,
    S3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Scenario {
    mode: Mode,
    dest: Dest,
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Scenario::new(Mode::Rotate, Dest::File),
        Scenario::new(Mode::Rotate, Dest::S3),
        Scenario::new(Mode::Upload, Dest::File),
        Scenario::new(Mode::Upload, Dest::S3),
        Scenario::new(Mode::Watch, Dest::File),
        Scenario::new(Mode::Watch, Dest::S3),
    ];

    const fn new(mode: Mode, dest: Dest) -> Scenario {
        Scenario { mode, dest }
    }

    fn command(self) -> &'static str {
        match self.mode {
            Mode::Rotate => "rotate",
            Mode::Upload => "upload",
            Mode::Watch => "watch",
        }
    }

    fn name(self) -> String {
        let dest = match self.dest {
            Dest::File => "file://",
            Dest::S3 => "S3",
        };
        format!("{} {dest}", self.command())
    }
}

/// Fail the `n`-th `syscall` (of each thread) with `errno`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Fault {
    syscall: &'static str,
    errno: &'static str,
    n: u32,
}

impl Fault {
    fn strace_args(&self, trace: &Path) -> Vec<String> {
        vec![
            "-f".into(),
            "-qq".into(),
            "-yy".into(),
            "-o".into(),
            trace.display().to_string(),
            "-e".into(),
            format!("trace={}", self.syscall),
            "-e".into(),
            format!(
                "inject={}:error={}:when={}",
                self.syscall, self.errno, self.n
            ),
        ]
    }
}

/// What kind of object a call was made on, from strace -yy's annotation of its first argument.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// A call that names a path (openat, rename, mkdir, ...): its errors are the matrix's.
    Path,
    /// A regular file, a directory, /proc or /sys.
    File,
    Pipe,
    /// A unix socket: syslog-ng's control socket (blocking, with timeouts).
    Unix,
    /// A TCP socket, driven by tokio: non-blocking, polled edge-triggered.
    Tcp,
    EventFd,
    Inotify,
    /// /dev/null or a terminal.
    CharDevice,
    Other(String),
}

const PATH_CALLS: &[&str] = &[
    "openat",
    "rename",
    "renameat2",
    "link",
    "unlink",
    "mkdir",
    "inotify_init1",
    "inotify_add_watch",
];

impl Target {
    fn of(syscall: &str, args: &str) -> Target {
        if PATH_CALLS.contains(&syscall) {
            return Target::Path;
        }
        let Some(open) = args.find('<') else {
            return Target::Other(args.chars().take(40).collect());
        };
        let what = &args[open + 1..];
        if what.starts_with('/') {
            if what.contains("<char ") {
                Target::CharDevice
            } else {
                Target::File
            }
        } else if what.starts_with("pipe:") {
            Target::Pipe
        } else if what.starts_with("UNIX") {
            Target::Unix
        } else if what.starts_with("TCP") {
            Target::Tcp
        } else if what.starts_with("anon_inode:[eventfd]") {
            Target::EventFd
        } else if what.starts_with("anon_inode:inotify") {
            Target::Inotify
        } else {
            Target::Other(what.chars().take(40).collect())
        }
    }
}

/// Whether `errno` is something `syscall` on `target` can return in real life (`creates`:
/// an open that may create the file).
fn plausible(syscall: &str, errno: &str, target: &Target, creates: bool) -> bool {
    match target {
        // Opening an existing file takes no space; otherwise the matrix lists only what
        // these calls can return.
        Target::Path => !(syscall == "openat" && matches!(errno, "ENOSPC" | "EDQUOT")) || creates,
        // Regular files do not sleep interruptibly or return EAGAIN, except a lock (LOCK_NB:
        // EAGAIN when held) and ftruncate (EINTR while waiting, per its man page).
        Target::File => match errno {
            "EIO" | "ENOSPC" | "EDQUOT" => true,
            "EINTR" => matches!(syscall, "flock" | "ftruncate"),
            "EAGAIN" => syscall == "flock",
            _ => false,
        },
        // watch's stdin: a blocking read can be interrupted.
        Target::Pipe => errno == "EINTR",
        // Blocking with SO_RCVTIMEO/SO_SNDTIMEO: EAGAIN is the timeout.
        Target::Unix => matches!(errno, "EINTR" | "EAGAIN" | "ECONNREFUSED" | "EACCES"),
        // Non-blocking: never EINTR; EAGAIN while data is there would be a readiness lie to
        // an edge-triggered poller (connect's EAGAIN is "no free local port", a real one).
        Target::Tcp => match errno {
            "ECONNREFUSED" | "EACCES" => true,
            "EAGAIN" => syscall == "connect",
            _ => false,
        },
        // eventfd(2): only EAGAIN (counter overflow, which mio handles); inotify, non-blocking:
        // EAGAIN when no event is waiting.
        Target::EventFd | Target::Inotify => errno == "EAGAIN",
        Target::CharDevice | Target::Other(_) => false,
    }
}

/// One call in a strace output file: which thread, which call, on what.
struct Call {
    pid: u32,
    syscall: String,
    target: Target,
    /// An open with O_CREAT.
    creates: bool,
    injected: bool,
}

impl Call {
    fn plausible(&self, errno: &str) -> bool {
        plausible(&self.syscall, errno, &self.target, self.creates)
    }
}

/// Parses `strace -f -yy -o` output: one entry per call (an unfinished call and its resumption
/// are one entry, marked injected if either says so).
fn parse_trace(text: &str) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    let mut unfinished: BTreeMap<u32, usize> = BTreeMap::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        let injected = line.ends_with("(INJECTED)");
        if rest.starts_with("<...") {
            if let Some(i) = unfinished.remove(&pid) {
                calls[i].injected |= injected;
            }
            continue;
        }
        let Some(paren) = rest.find('(') else {
            continue;
        };
        let syscall = &rest[..paren];
        if syscall.is_empty()
            || !syscall
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            continue;
        }
        let args = &rest[paren + 1..];
        let first = args.split(", ").next().unwrap_or("");
        calls.push(Call {
            pid,
            syscall: syscall.to_string(),
            target: Target::of(syscall, first),
            creates: args.contains("O_CREAT"),
            injected,
        });
        if line.ends_with("<unfinished ...>") {
            unfinished.insert(pid, calls.len() - 1);
        }
    }
    calls
}

/// From a clean run traced with every syscall of the matrix plus rt_sigaction: for each
/// (syscall, error), the values of N whose call is a plausible target in some thread.
/// For each (syscall, error), the values of N to fail.
type Candidates = BTreeMap<(&'static str, &'static str), BTreeSet<u32>>;

fn candidates(calls: &[Call]) -> Candidates {
    let main = calls.first().map_or(0, |c| c.pid);
    // The dynamic loader's calls come before the runtime's first rt_sigaction.
    let start = calls
        .iter()
        .position(|c| c.pid == main && c.syscall == "rt_sigaction")
        .unwrap_or(0);
    let mut loader: BTreeMap<&str, u32> = BTreeMap::new();
    for c in calls[..start].iter().filter(|c| c.pid == main) {
        *loader.entry(c.syscall.as_str()).or_default() += 1;
    }
    let mut index: BTreeMap<(u32, &str), u32> = BTreeMap::new();
    let mut out = Candidates::new();
    for c in calls {
        let n = index.entry((c.pid, c.syscall.as_str())).or_default();
        *n += 1;
        let Some((syscall, errnos)) = MATRIX.iter().find(|(s, _)| *s == c.syscall) else {
            continue;
        };
        // N up to the loader's count would fail the loader in the main thread.
        if *n <= loader.get(c.syscall.as_str()).copied().unwrap_or(0) {
            continue;
        }
        for errno in errnos.iter() {
            if c.plausible(errno) {
                out.entry((syscall, errno)).or_default().insert(*n);
            }
        }
    }
    out
}

/// How one faulted run went.
#[derive(Debug, Default)]
struct Outcome {
    /// The fault never fired (this run made fewer calls than the counted one).
    not_injected: bool,
    /// Some injection hit a target where that error is impossible: not counted.
    excluded: Option<String>,
    /// Exited non-zero (for watch: also exited before its stdin was closed).
    failed: bool,
    panicked: bool,
    hung: bool,
    /// A failed run whose message names neither a file nor a step.
    unnamed: bool,
    /// Lines missing or duplicated after the clean run.
    lost: u64,
    /// Everything that went wrong, for the failure message.
    problems: Vec<String>,
    /// The run's error message (first line), for the report.
    message: String,
}

impl Outcome {
    /// Judges a faulted run from its trace and what it left: panics, hangs and errors that
    /// name nothing are problems, unless the fault could not happen in real life.
    fn judge(
        fault: Fault,
        calls: &[Call],
        run: &Finished,
        exited_early: bool,
        env: &TestEnv,
    ) -> Outcome {
        let injected: Vec<&Call> = calls.iter().filter(|c| c.injected).collect();
        let exit = run.status.and_then(|s| s.code());
        let mut o = Outcome {
            not_injected: injected.is_empty(),
            excluded: injected
                .iter()
                .find(|c| !c.plausible(fault.errno))
                .map(|c| format!("{:?}", c.target)),
            hung: run.status.is_none(),
            failed: exit != Some(0) || exited_early,
            panicked: exit == Some(101)
                || run.status.and_then(|s| s.signal()) == Some(Signal::SIGABRT as i32)
                || run.stderr.contains("panicked")
                || run.log.contains("panicked"),
            message: error_message(run),
            ..Outcome::default()
        };
        o.unnamed = o.failed && !o.hung && !names_file_or_step(&o.message, env);
        // A fault that cannot happen proves nothing about panics, hangs or messages (tokio
        // panics when its eventfd fails with EIO); the accounting after it still applies.
        if o.excluded.is_none() {
            for (bad, what) in [
                (o.panicked, "panicked".to_string()),
                (o.hung, "hung".to_string()),
                (
                    o.unnamed,
                    format!(
                        "the error names neither a file nor a step ({:?})",
                        o.message
                    ),
                ),
            ] {
                if bad {
                    o.problems.push(what);
                }
            }
        }
        o
    }

    /// One line for the verbose log of a sweep.
    fn describe(&self) -> String {
        let what = if self.not_injected {
            "not injected".to_string()
        } else if let Some(on) = &self.excluded {
            format!("excluded ({on})")
        } else if self.failed {
            "failed".to_string()
        } else {
            "absorbed".to_string()
        };
        let problem = if self.problems.is_empty() {
            ""
        } else {
            ", PROBLEM"
        };
        match self.message.is_empty() {
            true => format!("{what}{problem}"),
            false => format!("{what}{problem}: {}", self.message),
        }
    }
}

/// A finished process (or one that was killed after hanging).
struct Finished {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    /// What fasttrack appended to its log file during the run.
    log: String,
}

/// One scenario's live parts: a syslog-ng writing docker.log (dropped first), the test's
/// directory and S3 server, and the lines sent so far.
struct Bench {
    sng: SyslogNg,
    env: TestEnv,
    scenario: Scenario,
    sent: u64,
    runs: u32,
    /// The next suffix of a rotation made by hand (upload).
    next_suffix: u64,
    serial: u32,
}

impl Bench {
    fn new(scenario: Scenario) -> Bench {
        let env = match scenario.dest {
            Dest::File => TestEnv::new(),
            Dest::S3 => TestEnv::new_s3(),
        };
        let sng = SyslogNg::start(&env, None);
        Bench {
            sng,
            env,
            scenario,
            sent: 0,
            runs: 0,
            next_suffix: 1_000_000,
            serial: 0,
        }
    }

    fn args(&self) -> Vec<String> {
        let mut args = self.env.common_args();
        args.extend(
            ["--reopen", "socket", "--close-timeout", "5s"]
                .iter()
                .map(|s| s.to_string()),
        );
        if self.scenario.mode == Mode::Watch {
            args.extend(
                [
                    "--quiet",
                    QUIET,
                    "--max-wait",
                    "10s",
                    "--retry-max-delay",
                    "2s",
                ]
                .iter()
                .map(|s| s.to_string()),
            );
        }
        args
    }

    /// Sends the run's lines through syslog-ng and waits until docker.log holds them; for
    /// `upload`, then renames docker.log by hand. Returns the 5xx lines (watch's input), or
    /// what happened to the lines if they never reached docker.log.
    fn prepare(&mut self) -> Result<String, String> {
        let mut all = String::new();
        let mut errors = String::new();
        for seq in self.sent..self.sent + LINES_PER_RUN {
            let status = if seq % 4 == 0 { 502 } else { 200 };
            let line = docker_line(seq, status);
            if status == 502 {
                errors.push_str(&line);
            }
            all.push_str(&line);
        }
        self.sng.send(&all);
        self.sent += LINES_PER_RUN;
        let last = format!("seq={} ", self.sent - 1);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(self.env.log()).is_ok_and(|t| t.contains(&last)) {
            if Instant::now() > deadline {
                return Err(format!(
                    "lines sent to syslog-ng never reached docker.log (it writes into {:?})\n{}",
                    self.sng_rotated_files(),
                    self.env.dump()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.scenario.mode == Mode::Upload {
            let to = self
                .env
                .logs_dir()
                .join(format!("docker.log-{}", self.next_suffix));
            self.next_suffix += 1;
            std::fs::rename(self.env.log(), &to).expect("rename docker.log by hand");
        }
        Ok(errors)
    }

    /// Rotated files syslog-ng holds open: after a clean run there must be none, or the lines
    /// it writes next go into a file fasttrack has shipped (or deleted).
    fn sng_rotated_files(&self) -> Vec<String> {
        let fd_dir = format!("/proc/{}/fd", self.sng.pid());
        std::fs::read_dir(fd_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|t| t.display().to_string())
            .filter(|t| t.contains("/docker.log-"))
            .collect()
    }

    fn files(&mut self, what: &str) -> (PathBuf, PathBuf, PathBuf) {
        self.serial += 1;
        let base = self.env.path().join(format!("run-{}-{what}", self.serial));
        (
            base.with_extension("stdout"),
            base.with_extension("stderr"),
            base.with_extension("trace"),
        )
    }

    /// A command running fasttrack (under strace when `strace` is given), with stdout and
    /// stderr in files (a cron job's output on disk: EIO and ENOSPC are real there).
    fn command(&mut self, strace: Option<Vec<String>>, what: &str) -> (Command, PathBuf, PathBuf) {
        let (out, err, _) = self.files(what);
        let mut cmd = match strace {
            Some(args) => {
                let mut c = Command::new("strace");
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        hermetic(&mut cmd);
        // cargo test sets LD_LIBRARY_PATH to its build dirs, where the dynamic loader then
        // looks for libc first: 69 openat calls before `main` instead of 4, and no thread could
        // have one of its first 69 openat calls failed (N starts after the loader's).
        cmd.env_remove("LD_LIBRARY_PATH");
        cmd.arg(self.scenario.command())
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            // Its own process group: a hung run is killed with everything it started.
            .process_group(0);
        (cmd, out, err)
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(self.env.log_file()).map_or(0, |m| m.len())
    }

    fn finish(
        &self,
        status: Option<ExitStatus>,
        out: &Path,
        err: &Path,
        log_from: u64,
    ) -> Finished {
        let log = std::fs::read(self.env.log_file()).unwrap_or_default();
        let from = (log_from as usize).min(log.len());
        Finished {
            status,
            stdout: std::fs::read_to_string(out).unwrap_or_default(),
            stderr: std::fs::read_to_string(err).unwrap_or_default(),
            log: String::from_utf8_lossy(&log[from..]).into_owned(),
        }
    }

    /// Runs `rotate` or `upload` to the end, or kills it after [`RUN_TIMEOUT`].
    fn run_once(&mut self, strace: Option<Vec<String>>, what: &str) -> Finished {
        let log_from = self.log_len();
        let (mut cmd, out, err) = self.command(strace, what);
        let mut child = cmd.spawn().expect("spawn fasttrack (is strace installed?)");
        let status = wait_or_kill(&mut child, RUN_TIMEOUT);
        self.finish(status, &out, &err, log_from)
    }

    /// A watch cycle: `watch` is fed `input`, its stdin closed once nothing is pending (or
    /// after `cycle`), then it must exit within [`EXIT_AFTER_EOF`]. `exited_early` says
    /// whether it stopped before its stdin was closed.
    fn watch_once(
        &mut self,
        strace: Option<Vec<String>>,
        what: &str,
        input: &str,
        cycle: Duration,
    ) -> (Finished, bool) {
        let log_from = self.log_len();
        let (mut cmd, out, err) = self.command(strace, what);
        let mut child = cmd
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn fasttrack watch (is strace installed?)");
        let mut stdin = child.stdin.take().expect("watch's stdin");
        // A watch that already exited closed the pipe: nothing to feed.
        let _ = stdin.write_all(input.as_bytes());
        let deadline = Instant::now() + cycle;
        // Give the quiet period its time before looking, so that the cycle can start.
        std::thread::sleep(Duration::from_millis(400));
        let mut exited_early = false;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                exited_early = true;
                break;
            }
            if nothing_pending(&self.env) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(stdin);
        let status = wait_or_kill(&mut child, EXIT_AFTER_EOF);
        (self.finish(status, &out, &err, log_from), exited_early)
    }

    /// Runs the scenario's command with `fault`, then a clean run, and checks both.
    fn faulted_run(&mut self, fault: Fault, input: &str) -> Outcome {
        self.runs += 1;
        let (_, _, trace) = self.files("trace");
        let strace = Some(fault.strace_args(&trace));
        let (run, exited_early) = self.cycle(strace, "faulted", input, WATCH_CYCLE);
        let calls = parse_trace(&std::fs::read_to_string(&trace).unwrap_or_default());
        let mut outcome = Outcome::judge(fault, &calls, &run, exited_early, &self.env);
        if !outcome.problems.is_empty() {
            let context = format!(
                "{} with {fault:?}: exit {:?}\n--- stderr:\n{}\n--- log:\n{}",
                self.scenario.name(),
                run.status,
                run.stderr,
                run.log
            );
            outcome.problems = vec![format!("{}: {context}", outcome.problems.join("; "))];
        }
        self.clean_run_and_account(&mut outcome, &format!("after {fault:?}"));
        outcome
    }

    /// One run of the scenario's command; for watch, fed `input` and given up to `cycle`.
    fn cycle(
        &mut self,
        strace: Option<Vec<String>>,
        what: &str,
        input: &str,
        cycle: Duration,
    ) -> (Finished, bool) {
        match self.scenario.mode {
            Mode::Watch => self.watch_once(strace, what, input, cycle),
            _ => (self.run_once(strace, what), false),
        }
    }

    /// A first clean cycle (it creates the state dir, the destination's directories and the
    /// keys' prefix, so that the counted run is a normal one, as most faulted runs are), then
    /// the counting run: a clean cycle under strace recording every call of the matrix.
    fn count(&mut self) -> (Vec<Call>, Vec<String>) {
        let mut problems = self.clean_cycle(None, "warm");
        let (_, _, trace) = self.files("count");
        let strace = ["-f", "-qq", "-yy", "-o", &trace.display().to_string()]
            .iter()
            .map(|s| s.to_string())
            .chain(["-e".to_string(), format!("trace={}", counting_trace_set())])
            .collect();
        problems.extend(self.clean_cycle(Some(strace), "count"));
        let calls = parse_trace(&std::fs::read_to_string(&trace).unwrap_or_default());
        assert!(
            calls.len() > 100,
            "{}: strace recorded {} calls: is strace working?",
            self.scenario.name(),
            calls.len()
        );
        (calls, problems)
    }

    /// A cycle without a fault, checked as every clean run is.
    fn clean_cycle(&mut self, strace: Option<Vec<String>>, what: &str) -> Vec<String> {
        let name = self.scenario.name();
        let input = self.prepare().unwrap_or_else(|e| panic!("{name}: {e}"));
        drop(self.cycle(strace, what, &input, Duration::from_secs(30)));
        let mut outcome = Outcome::default();
        self.clean_run_and_account(&mut outcome, &format!("after the {what} run"));
        outcome.problems
    }

    /// The next clean run, then the exact accounting: every line sent is in the shipped
    /// objects exactly once, in order, and nothing is pending or left behind.
    fn clean_run_and_account(&mut self, outcome: &mut Outcome, what: &str) {
        // For watch, a 5xx line opens an incident if the faulted run left lines unrotated.
        let input = docker_line(self.sent.saturating_sub(1), 502);
        let (clean, exited_early) = self.cycle(None, "clean", &input, Duration::from_secs(30));
        let name = self.scenario.name();
        if clean.status.and_then(|s| s.code()) != Some(0) || exited_early {
            outcome.problems.push(format!(
                "{name} {what}: the clean run exited {:?}\n--- stdout:\n{}\n--- stderr:\n{}\n--- log:\n{}",
                clean.status, clean.stdout, clean.stderr, clean.log
            ));
        }
        let acc = account(&self.env, self.sent);
        outcome.lost = acc.missing + acc.duplicates;
        let live = std::fs::read_to_string(self.env.log()).unwrap_or_default();
        let unshipped = live.lines().filter(|l| l.contains("seq=")).count();
        let leftovers = leftovers(&self.env);
        let held = self.sng_rotated_files();
        if !held.is_empty() {
            outcome.problems.push(format!(
                "{name} {what}: after the clean run syslog-ng still writes into {held:?}: \
                 the lines it writes next are lost\n{}",
                self.env.dump()
            ));
        }
        let status = self.env.run("status", &[]);
        if !acc.ok()
            || acc.left_local > 0
            || unshipped > 0
            || !leftovers.is_empty()
            || status.status.code() != Some(0)
        {
            outcome.problems.push(format!(
                "{name} {what}: after the clean run: sent {} found {} missing {} duplicated {} \
                 partial {} left local {} unshipped in docker.log {unshipped} leftovers {leftovers:?} \
                 status exit {:?}\n{:?}\n--- status:\n{}\n{}",
                acc.sent,
                acc.found,
                acc.missing,
                acc.duplicates,
                acc.partial,
                acc.left_local,
                status.status.code(),
                acc.problems,
                String::from_utf8_lossy(&status.stdout),
                self.env.dump()
            ));
        }
    }
}

/// Waits for `child` up to `timeout`; kills its process group if it is still running.
fn wait_or_kill(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    Signal::SIGKILL,
                );
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Nothing waits locally: docker.log holds no line, no rotated file is left uncompressed or
/// half-compressed, and `status` reports nothing pending.
fn nothing_pending(env: &TestEnv) -> bool {
    let live = std::fs::metadata(env.log()).map_or(0, |m| m.len());
    live == 0
        && leftovers(env).is_empty()
        && std::fs::read_dir(env.logs_dir()).is_ok_and(|d| {
            d.flatten().all(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                !name.starts_with("docker.log-") || name.ends_with(".gz") || name.ends_with(".json")
            })
        })
        && env.run("status", &[]).status.code() == Some(0)
}

/// Temporary files left behind: `.gz.part` beside the log, `.tmp-` and `.part-` files in the
/// state dir, beside the log and in the file:// destination.
fn leftovers(env: &TestEnv) -> Vec<String> {
    let mut found = Vec::new();
    for dir in [env.logs_dir(), env.state(), env.shipped_dir()] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".part") || name.contains(".tmp-") || name.contains(".part-") {
                found.push(format!("{}/{name}", dir.display()));
            }
        }
    }
    found
}

/// The run's error: its last `fasttrack:` line on stderr, else the last ERROR or WARN line
/// of its log (watch logs what stops a cycle).
fn error_message(run: &Finished) -> String {
    let from_stderr = run
        .stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("fasttrack: "))
        .map(str::to_string);
    from_stderr
        .or_else(|| {
            run.log
                .lines()
                .rev()
                .find(|l| l.contains(" ERROR ") || l.contains(" WARN "))
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Whether an error message says where the run failed: a file of the test (log, rotated
/// file, state, destination), the S3 bucket or endpoint, or the step by name.
fn names_file_or_step(message: &str, env: &TestEnv) -> bool {
    const STEPS: &[&str] = &[
        "stdout",
        "stderr",
        "stdin",
        "syslog-ng",
        "control socket",
        "inotify",
        "s3://",
        "127.0.0.1",
        "thread",
        "runtime",
    ];
    message.contains(&env.path().display().to_string()) || STEPS.iter().any(|s| message.contains(s))
}

/// The sample for one scenario: up to `budget` (syscall, error, N) triples, one N per pair
/// in turn (pairs shuffled) so that every pair is covered before any gets a second N.
fn sample(candidates: &Candidates, budget: Option<usize>, rng: &mut Rng) -> Vec<Fault> {
    let mut pools: Vec<((&'static str, &'static str), Vec<u32>)> = candidates
        .iter()
        .map(|(&pair, ns)| (pair, ns.iter().copied().collect()))
        .collect();
    rng.shuffle(&mut pools);
    let mut picked = Vec::new();
    loop {
        let mut any = false;
        for ((syscall, errno), pool) in pools.iter_mut() {
            if pool.is_empty() || budget.is_some_and(|b| picked.len() >= b) {
                continue;
            }
            let n = pool.swap_remove(rng.below(pool.len() as u64) as usize);
            picked.push(Fault { syscall, errno, n });
            any = true;
        }
        if !any {
            break;
        }
    }
    rng.shuffle(&mut picked);
    picked
}

/// Every syscall of the matrix, and rt_sigaction (the end of the dynamic loader's calls).
fn counting_trace_set() -> String {
    let mut set: Vec<&str> = MATRIX.iter().map(|(s, _)| *s).collect();
    set.push("rt_sigaction");
    set.join(",")
}

/// A row of the table: one (syscall, error) over every scenario.
#[derive(Default)]
struct Row {
    scenarios: BTreeSet<String>,
    candidates: usize,
    runs: u64,
    failed: u64,
    absorbed: u64,
    excluded: u64,
    not_injected: u64,
    panics: u64,
    hangs: u64,
    lost: u64,
    unnamed: u64,
}

#[derive(Default)]
struct Report {
    rows: BTreeMap<(&'static str, &'static str), Row>,
    /// Which scenarios make each call at all.
    called: BTreeMap<&'static str, BTreeSet<String>>,
    /// Per scenario: runs started, runs skipped by the time budget, seconds.
    scenarios: BTreeMap<Scenario, (u64, u64, u64)>,
    problems: Vec<String>,
}

fn budget_from_env(var: &str, default: usize) -> Option<usize> {
    match std::env::var(var) {
        Ok(v) if v == "all" => None,
        Ok(v) => Some(
            v.parse()
                .unwrap_or_else(|_| panic!("{var}={v:?}: use a number of runs or `all`")),
        ),
        Err(_) => Some(default),
    }
}

impl Report {
    fn counted(&mut self, scenario: Scenario, calls: &[Call], candidates: &Candidates) {
        for (syscall, _) in MATRIX {
            if calls.iter().any(|c| c.syscall == *syscall) {
                self.called
                    .entry(syscall)
                    .or_default()
                    .insert(scenario.name());
            }
        }
        for (&pair, ns) in candidates {
            let row = self.rows.entry(pair).or_default();
            row.scenarios.insert(scenario.name());
            row.candidates += ns.len();
        }
    }

    fn record(&mut self, scenario: Scenario, fault: Fault, outcome: Outcome, seed: u64) {
        let row = self.rows.entry((fault.syscall, fault.errno)).or_default();
        if outcome.not_injected {
            row.not_injected += 1;
        } else if outcome.excluded.is_some() {
            row.excluded += 1;
        } else {
            row.runs += 1;
            row.failed += u64::from(outcome.failed);
            row.absorbed += u64::from(!outcome.failed);
            row.panics += u64::from(outcome.panicked);
            row.hangs += u64::from(outcome.hung);
            row.unnamed += u64::from(outcome.unnamed);
        }
        // Whatever the fault was, nothing may be lost afterwards.
        row.lost += outcome.lost;
        for p in outcome.problems {
            self.problems.push(format!(
                "{}: {fault:?} (replay: FASTTRACK_FAULT_SEED={seed} cargo test --test integration faults)\n{p}",
                scenario.name()
            ));
        }
    }

    /// Lines sent after `previous` never reached docker.log: that run left syslog-ng
    /// writing where nothing will ship from.
    fn lost_after(&mut self, scenario: Scenario, previous: Option<Fault>, seed: u64, e: String) {
        if let Some(p) = previous {
            self.rows.entry((p.syscall, p.errno)).or_default().lost += LINES_PER_RUN;
        }
        self.problems.push(format!(
            "{}: after {previous:?} (replay: FASTTRACK_FAULT_SEED={seed}): {e}",
            scenario.name()
        ));
    }
}

fn run_scenario(scenario: Scenario, seed: u64, deadline: Option<Instant>, report: &Mutex<Report>) {
    let started = Instant::now();
    let lock = || report.lock().unwrap_or_else(|e| e.into_inner());
    let mut bench = Bench::new(scenario);
    let (calls, problems) = bench.count();
    let candidates = candidates(&calls);
    let budget = match scenario.mode {
        Mode::Watch => budget_from_env("FASTTRACK_FAULT_WATCH_RUNS", 15),
        _ => budget_from_env("FASTTRACK_FAULT_RUNS", 50),
    };
    let mut rng = Rng::new(seed ^ (scenario.mode as u64 * 7 + scenario.dest as u64 + 1));
    let mut faults = sample(&candidates, budget, &mut rng);
    if let Ok(only) = std::env::var("FASTTRACK_FAULT_ONLY") {
        // e.g. `read:EIO,openat`: replays some pairs only.
        faults.retain(|f| {
            only.split(',').any(|o| {
                o == f.syscall || o == format!("{}:{}", f.syscall, f.errno) || o == f.errno
            })
        });
    }
    lock().problems.extend(problems);
    lock().counted(scenario, &calls, &candidates);
    let verbose = std::env::var_os("FASTTRACK_FAULT_VERBOSE").is_some();
    if verbose {
        for (pair, ns) in &candidates {
            eprintln!("faults: {} {pair:?}: N in {ns:?}", scenario.name());
        }
    }
    let (mut ran, mut skipped, mut previous) = (0, 0, None);
    for fault in faults {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            skipped += 1;
            continue;
        }
        if bench.runs >= GENERATION {
            bench = Bench::new(scenario);
        }
        let input = bench.prepare().unwrap_or_else(|e| {
            lock().lost_after(scenario, previous, seed, e);
            bench = Bench::new(scenario);
            let again = bench.prepare();
            again.unwrap_or_else(|e| panic!("{}: {e}", scenario.name()))
        });
        previous = Some(fault);
        let outcome = bench.faulted_run(fault, &input);
        ran += 1;
        if verbose {
            eprintln!(
                "faults: {} {fault:?}: {}",
                scenario.name(),
                outcome.describe()
            );
        }
        lock().record(scenario, fault, outcome, seed);
    }
    lock()
        .scenarios
        .insert(scenario, (ran, skipped, started.elapsed().as_secs()));
}

/// The table of RELIABILITY.md.
fn render(report: &Report, seed: u64) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| System call | Error | Paths where it can happen | N to fail | Runs | First run failed | \
         Absorbed (exit 0) | Not injected | Excluded | Panics | Hangs | Lost lines | \
         Error not naming file or step |"
    );
    let _ = writeln!(
        t,
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (syscall, errnos) in MATRIX {
        for errno in errnos.iter() {
            let row = report.rows.get(&(*syscall, *errno));
            let Some(r) = row.filter(|r| r.candidates > 0) else {
                let why = match report.called.get(syscall) {
                    Some(_) => format!("called, never where {errno} can happen"),
                    None => "not called".to_string(),
                };
                let _ = writeln!(
                    t,
                    "| {syscall} | {errno} | {why} | 0 | 0 | - | - | - | - | - | - | - | - |"
                );
                continue;
            };
            let _ = writeln!(
                t,
                "| {syscall} | {errno} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                if r.scenarios.len() == Scenario::ALL.len() {
                    "all six".to_string()
                } else {
                    r.scenarios.iter().cloned().collect::<Vec<_>>().join(", ")
                },
                r.candidates,
                r.runs,
                r.failed,
                r.absorbed,
                r.not_injected,
                r.excluded,
                r.panics,
                r.hangs,
                r.lost,
                r.unnamed
            );
        }
    }
    let _ = writeln!(t);
    for (s, (ran, skipped, secs)) in &report.scenarios {
        let _ = writeln!(
            t,
            "- {}: {ran} faulted runs in {secs} s{}",
            s.name(),
            if *skipped > 0 {
                format!(" ({skipped} more sampled, not started: time budget)")
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(t, "- seed {seed}");
    t
}

#[test]
fn every_system_call_failing_once_panics_nothing_hangs_nothing_and_loses_no_line() {
    let seed = seed_from_env("FASTTRACK_FAULT_SEED");
    eprintln!("faults: seed {seed} (FASTTRACK_FAULT_SEED={seed} replays the sample)");
    let deadline = match std::env::var("FASTTRACK_FAULT_BUDGET_SECS").as_deref() {
        Ok("none") => None,
        Ok(v) => Some(Duration::from_secs(
            v.parse()
                .expect("FASTTRACK_FAULT_BUDGET_SECS: a number of seconds or `none`"),
        )),
        Err(_) => Some(Duration::from_secs(150)),
    }
    .map(|d| Instant::now() + d);
    let report = Mutex::new(Report::default());
    // e.g. `upload,rotate S3`: some paths only.
    let paths = std::env::var("FASTTRACK_FAULT_PATHS").unwrap_or_default();
    std::thread::scope(|scope| {
        for scenario in Scenario::ALL {
            if !paths.is_empty() && !paths.split(',').any(|p| scenario.name().contains(p)) {
                continue;
            }
            let report = &report;
            std::thread::Builder::new()
                .name(scenario.name())
                .spawn_scoped(scope, move || {
                    run_scenario(scenario, seed, deadline, report)
                })
                .expect("a scenario thread");
        }
    });
    let report = report.into_inner().unwrap_or_else(|e| e.into_inner());
    let table = render(&report, seed);
    eprintln!("{table}");
    if let Ok(path) = std::env::var("FASTTRACK_FAULT_REPORT") {
        std::fs::write(&path, &table).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
    let total: u64 = report.rows.values().map(|r| r.runs).sum();
    assert!(total > 0, "no faulted run was counted\n{table}");
    assert!(
        report.problems.is_empty(),
        "{} problem(s), seed {seed}:\n\n{}\n\n{table}",
        report.problems.len(),
        report
            .problems
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n=====\n\n")
    );
}
