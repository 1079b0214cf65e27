//! Test fixtures: a temp environment with the paths fasttrack uses, a private syslog-ng,
//! traffic helpers and the exact accounting of lines.

#![allow(dead_code)]

pub mod accounting;
pub mod cmd;
pub mod docker;
pub mod prometheus;
pub mod s3;
pub mod sts;
pub mod syslog_ng;
pub mod tinyproxy;
pub mod webhook;

use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use cmd::Cmd;
pub use s3::{S3Server, Store};
pub use syslog_ng::SyslogNg;

pub const BIN: &str = env!("CARGO_BIN_EXE_fasttrack");
pub const HOST: &str = "testhost";

/// A private directory holding everything one test touches, and, for S3 tests, the server.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    /// The S3 server objects are shipped to (None: a file:// destination).
    pub s3: Option<S3Server>,
    /// The endpoint fasttrack is given: the server's, or a proxy's in front of it.
    pub endpoint: Option<String>,
}

/// One shipped object: its file name and bytes.
pub struct ShippedObject {
    pub name: String,
    pub body: Vec<u8>,
}

/// The environment of every fasttrack and syslog-ng started by a test: static test credentials,
/// no instance metadata lookups (nothing but loopback is ever contacted), no ~/.aws files.
pub const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY),
    ("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
];

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("fasttrack-test-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir(dir.path().join("out")).unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("fasttrack.toml"), "").unwrap();
        TestEnv {
            dir,
            s3: None,
            endpoint: None,
        }
    }

    /// A test environment shipping to a fresh bucket of its own s3s-fs.
    pub fn new_s3() -> TestEnv {
        TestEnv::new_s3_on(s3::Store::S3sFs)
    }

    /// A test environment shipping to a fresh bucket of its own `store`.
    pub fn new_s3_on(store: s3::Store) -> TestEnv {
        let mut env = TestEnv::new();
        let server = S3Server::start_store(store, &env.path().join("s3"));
        env.endpoint = Some(server.endpoint());
        env.s3 = Some(server);
        env
    }

    /// As [`TestEnv::new_s3`], with the server's request log in `s3-requests.log`.
    pub fn new_s3_logging_requests() -> TestEnv {
        let mut env = TestEnv::new();
        let server =
            S3Server::start_logging(&env.path().join("s3"), &env.path().join("s3-requests.log"));
        env.endpoint = Some(server.endpoint());
        env.s3 = Some(server);
        env
    }

    pub fn server(&self) -> &S3Server {
        self.s3.as_ref().expect("an S3 test environment")
    }

    pub fn server_mut(&mut self) -> &mut S3Server {
        self.s3.as_mut().expect("an S3 test environment")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn config_file(&self) -> PathBuf {
        self.path().join("fasttrack.toml")
    }

    /// Sets the webhook in the config file (where a secret belongs), with `more` TOML lines.
    pub fn set_notify(&self, url: &str, more: &str) {
        std::fs::write(self.config_file(), format!("notify = \"{url}\"\n{more}")).unwrap();
    }
    pub fn log(&self) -> PathBuf {
        self.path().join("logs/docker.log")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.path().join("logs")
    }
    pub fn out(&self) -> PathBuf {
        self.path().join("out")
    }
    pub fn shipped_dir(&self) -> PathBuf {
        self.out().join(HOST)
    }
    pub fn state(&self) -> PathBuf {
        self.path().join("state")
    }
    pub fn log_file(&self) -> PathBuf {
        self.path().join("fasttrack.log")
    }
    pub fn ctl(&self) -> PathBuf {
        self.path().join("syslog-ng.ctl")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.path().join("syslog-ng.pid")
    }
    pub fn docker_socket(&self) -> PathBuf {
        self.path().join("docker-syslog.sock")
    }

    /// The options every fasttrack run of this test shares (a hermetic empty config file).
    pub fn common_args(&self) -> Vec<String> {
        vec![
            "-c".into(),
            self.path().join("fasttrack.toml").display().to_string(),
            "--log".into(),
            self.log().display().to_string(),
            "--dest".into(),
            self.dest_url(),
            "--state-dir".into(),
            self.state().display().to_string(),
            "--log-file".into(),
            self.log_file().display().to_string(),
            "--host".into(),
            HOST.into(),
            "--control-socket".into(),
            self.ctl().display().to_string(),
            "--pidfile".into(),
            self.pidfile().display().to_string(),
        ]
        .into_iter()
        .chain(self.endpoint.iter().flat_map(|e| {
            [
                "--endpoint-url".to_string(),
                e.clone(),
                "--path-style".to_string(),
                "--region".to_string(),
                "us-east-1".to_string(),
            ]
        }))
        .collect()
    }

    pub fn dest_url(&self) -> String {
        match &self.s3 {
            Some(_) => format!("s3://{}/{}", s3::BUCKET, s3::PREFIX),
            None => format!("file://{}", self.out().display()),
        }
    }

    /// A `fasttrack` command with this env's options and no FASTTRACK_* from the outside.
    pub fn fasttrack(&self, sub: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        hermetic(&mut cmd);
        cmd.arg(sub).args(self.common_args()).args(extra);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `fasttrack watch` fed by a pipe the test writes to; its output goes to its log file.
    pub fn spawn_watch(&self, extra: &[&str]) -> std::process::Child {
        self.fasttrack("watch", extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn fasttrack watch")
    }

    /// `fasttrack SUB` with this env's options, as a [`Cmd`] to state what it must do.
    pub fn cmd(&self, sub: &str, extra: &[&str]) -> Cmd {
        Cmd::new(self.fasttrack(sub, extra))
    }

    pub fn run(&self, sub: &str, extra: &[&str]) -> Output {
        self.fasttrack(sub, extra).output().expect("run fasttrack")
    }

    /// Everything a failing assertion needs to be understood.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for dir in [
            self.logs_dir(),
            self.shipped_dir(),
            self.state(),
            self.state().join("uploads"),
        ] {
            s += &format!("--- {}:\n", dir.display());
            if let Ok(entries) = std::fs::read_dir(&dir) {
                let mut names: Vec<String> = entries
                    .flatten()
                    .map(|e| {
                        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                        format!("  {} ({len} bytes)", e.file_name().to_string_lossy())
                    })
                    .collect();
                names.sort();
                s += &names.join("\n");
                s += "\n";
            }
        }
        if let Some(server) = &self.s3 {
            s += &format!("--- objects: {:?}\n", self.shipped_names());
            if server.store == s3::Store::Rclone {
                s += "--- rclone serve s3:\n";
                s += &std::fs::read_to_string(server.root.with_extension("rclone.log"))
                    .unwrap_or_default();
            }
        }
        s += "--- fasttrack.log:\n";
        s += &std::fs::read_to_string(self.log_file()).unwrap_or_default();
        s
    }

    /// Shipped objects in name order (= the order their lines were written), read from the
    /// destination directory or downloaded from the S3 server.
    pub fn shipped(&self) -> Vec<ShippedObject> {
        let mut objects: Vec<ShippedObject> = match &self.s3 {
            Some(server) => server
                .download(&format!("{}/{HOST}/", s3::PREFIX))
                .into_iter()
                .map(|o| ShippedObject {
                    name: o.key.rsplit('/').next().unwrap_or_default().to_string(),
                    body: o.body,
                })
                .collect(),
            None => std::fs::read_dir(self.shipped_dir())
                .map(|d| {
                    d.flatten()
                        .map(|e| ShippedObject {
                            name: e.file_name().to_string_lossy().into_owned(),
                            body: std::fs::read(e.path()).unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        objects.retain(|o| o.name.ends_with(".gz") && !o.name.starts_with('.'));
        objects.sort_by_key(|o| suffix_of(&o.name));
        objects
    }

    /// The file names of the shipped objects, in order.
    pub fn shipped_names(&self) -> Vec<String> {
        self.shipped().into_iter().map(|o| o.name).collect()
    }

    /// The `.gz` files kept beside the log, sorted.
    pub fn local_gz_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.logs_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".gz"))
            .collect();
        names.sort();
        names
    }

    /// Asserts the exit code of a run, showing its stderr and the dump otherwise.
    pub fn assert_exit(&self, out: &Output, code: i32) {
        assert_eq!(
            out.status.code(),
            Some(code),
            "stderr: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.dump()
        );
    }

    /// Waits until syslog-ng has written the `sent` lines, then checks each is found exactly once.
    pub fn expect_every_line_once(&self, sent: u64) {
        self.wait_for("every line to be written", Duration::from_secs(60), || {
            seqs(&self.all_lines()).len() as u64 >= sent
        });
        assert_exactly_once_in_order(self, sent);
    }

    /// All lines of the shipped objects then the live log, in order.
    pub fn all_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for o in self.shipped() {
            lines.extend(gunzip_lines(&o.body));
        }
        if let Ok(text) = std::fs::read_to_string(self.log()) {
            lines.extend(text.lines().map(str::to_string));
        }
        lines
    }

    /// Waits until `cond` holds, or panics with the dump.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out after {timeout:?} waiting for {what}\n{}",
            self.dump()
        );
    }
}

/// The environment of a fasttrack (or of a tool that runs it) started by a test: no
/// FASTTRACK_* from the outside, the test's AWS settings ([`AWS_ENV`]).
pub fn hermetic(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FASTTRACK_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(AWS_ENV.iter().copied())
}

/// A small deterministic generator (xorshift64*), so that a run is reproduced from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A seed from `var`, or from the clock; tests print it so that a run can be replayed.
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

fn suffix_of(name: &str) -> u64 {
    Some(name)
        .and_then(|n| n.strip_prefix("docker.log-"))
        .and_then(|n| n.strip_suffix(".gz"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

pub fn gunzip_lines(gz: &[u8]) -> Vec<String> {
    let mut text = String::new();
    MultiGzDecoder::new(gz)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("a shipped object is not valid gzip: {e}"));
    text.lines().map(str::to_string).collect()
}

/// The sequence numbers (`seq=N`) found in `lines`, in order.
pub fn seqs(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = &l[l.find("seq=")? + 4..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
        .collect()
}

/// Asserts that the lines sent, 0..sent, are each found exactly once, in order.
pub fn assert_exactly_once_in_order(env: &TestEnv, sent: u64) {
    let found = seqs(&env.all_lines());
    let expected: Vec<u64> = (0..sent).collect();
    if found != expected {
        let mut seen = std::collections::HashMap::new();
        for s in &found {
            *seen.entry(*s).or_insert(0) += 1;
        }
        let missing: Vec<u64> = (0..sent)
            .filter(|s| !seen.contains_key(s))
            .take(20)
            .collect();
        let dups: Vec<u64> = seen
            .iter()
            .filter(|(_, &n)| n > 1)
            .map(|(&s, _)| s)
            .take(20)
            .collect();
        panic!(
            "sent {sent} lines, found {} (missing {missing:?}, duplicated {dups:?}, in order: {})\n{}",
            found.len(),
            found.windows(2).all(|w| w[0] < w[1]),
            env.dump()
        );
    }
}

/// A syslog line as Docker's syslog driver sends it over a local socket (no hostname).
pub fn docker_line(seq: u64, status: u16) -> String {
    format!(
        "<14>Nov 21 12:00:00 docker/web-1[42]: GET /api/orders?seq={seq} HTTP/1.1\" {status} 17\n"
    )
}

/// Stops a server the test started: SIGTERM, up to `grace` to exit, then SIGKILL; reaped.
pub fn stop_child(child: &mut std::process::Child, grace: Duration) {
    signal(child.id(), nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until `child`'s multipart upload has parts on the server, then kills it with SIGKILL
/// and checks that the upload was left unfinished (what the next run must clean up).
pub fn kill_9_once_parts_are_up(env: &TestEnv, mut child: std::process::Child, wait: Duration) {
    env.wait_for("parts to be on the server", wait, || {
        env.server()
            .unfinished_uploads()
            .iter()
            .any(|n| n.contains(".part-"))
    });
    signal(child.id(), nix::sys::signal::Signal::SIGKILL);
    child.wait().unwrap();
    assert!(!env.server().unfinished_uploads().is_empty());
}

/// Sends `signal` to `pid`; a process that has just exited is not an error.
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => panic!("cannot send {signal} to {pid}: {e}"),
    }
}

/// VmHWM (peak resident set) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
