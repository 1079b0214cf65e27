//! A private Docker daemon for one test (Debian's `docker.io`: dockerd 20.10 with its own
//! containerd and runc): data root, exec root, socket, pidfile and log in the test's temp dir,
//! no bridge, no iptables, the `vfs` storage driver (TESTBED.md), and the README's own
//! `daemon.json` with its syslog socket pointed at the test's syslog-ng. A busybox image is
//! imported from Debian's `busybox-static` (no image registry is reachable). Stopped by its pid
//! on drop, its containers first; `setpriv --pdeathsig` stops it too if the test process dies
//! without unwinding.
//!
//! Where dockerd cannot run (not installed, not root, no cgroups), [`Dockerd::start`] prints a
//! `SKIPPED:` line on stderr and the test returns, unless `FASTTRACK_REQUIRE_DOCKER=1` (set by
//! `.ci/run`, whose machines run it): then the test fails.

use super::TestEnv;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The image [`Dockerd::start`] imports: `/bin/busybox` and `/bin/sh` linked to it.
pub const IMAGE: &str = "local/busybox";

/// Set to 1 where dockerd must run (CI): a test that cannot start it then fails.
pub const REQUIRE: &str = "FASTTRACK_REQUIRE_DOCKER";

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
/// The socket the README's daemon.json sends container logs to (the snippet's unix-dgram source).
const README_SOCKET: &str = "unixgram:///run/docker-syslog.sock";

/// Why a private dockerd could not be had.
#[derive(Debug)]
pub enum StartError {
    /// This machine cannot run Docker (not root, not installed, dockerd or runc fails): a skip.
    Machine(String),
    /// dockerd runs here, but not with the README's daemon.json: always a failure.
    Config(String),
}

pub struct Dockerd {
    child: Child,
    dir: PathBuf,
    /// From spawn to the first answered API call.
    pub started_in: Duration,
}

/// The `daemon.json` block of README.md (the fenced ```json block that sets `log-driver`),
/// read at test time: the tests run what the README tells people to write.
pub fn readme_daemon_json() -> serde_json::Value {
    let text = std::fs::read_to_string(README).expect("README.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim()) {
            (None, "```json") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    let found: Vec<&String> = blocks
        .iter()
        .filter(|b| b.contains("\"log-driver\""))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "README.md should have one ```json block with \"log-driver\": update the test"
    );
    serde_json::from_str(found[0]).expect("README.md's daemon.json is not valid JSON")
}

/// The README's daemon.json with its syslog socket replaced by the test's syslog-ng's.
fn daemon_json(env: &TestEnv) -> String {
    let mut json = readme_daemon_json();
    let address = &mut json["log-opts"]["syslog-address"];
    assert_eq!(
        address.as_str(),
        Some(README_SOCKET),
        "README.md's daemon.json changed its syslog-address: update the test"
    );
    *address = format!("unixgram://{}", env.docker_socket().display()).into();
    serde_json::to_string_pretty(&json).unwrap()
}

/// A skip, or a failure where dockerd is required (`FASTTRACK_REQUIRE_DOCKER=1`).
pub fn skip_or_fail(test: &str, reason: &str) {
    if std::env::var(REQUIRE).is_ok_and(|v| v == "1") {
        panic!("{test}: {reason} ({REQUIRE}=1: Docker must run on this machine)");
    }
    eprintln!(
        "\n*** SKIPPED: {test}: {reason}. Set {REQUIRE}=1 to make this a failure (CI does). ***\n"
    );
}

/// The first of PATH and the sbin directories (a non-login root shell may lack them) holding `name`.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

impl Dockerd {
    /// Starts a private dockerd configured by the README's daemon.json, imports the busybox
    /// image and runs one container (logging nowhere, so that a fault of the log set-up under
    /// test is never taken for a machine that cannot run Docker). None, after a `SKIPPED:`
    /// line, where Docker cannot run here; a panic instead under `FASTTRACK_REQUIRE_DOCKER=1`,
    /// and always when the README's configuration is what stops dockerd.
    pub fn start(env: &TestEnv, test: &str) -> Option<Dockerd> {
        match Dockerd::try_start(env) {
            Ok(d) => Some(d),
            Err(StartError::Config(why)) => panic!("{test}: {why}"),
            Err(StartError::Machine(reason)) => {
                skip_or_fail(test, &reason);
                None
            }
        }
    }

    /// As [`Dockerd::start`], telling why it could not: dockerd's start failing with the
    /// README's configuration and succeeding without is the configuration's fault.
    pub fn try_start(env: &TestEnv) -> Result<Dockerd, StartError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(StartError::Machine("dockerd needs root".into()));
        }
        let install = "install Debian's docker.io and busybox-static (scripts/test-deps.sh does)";
        let dockerd = find_program("dockerd")
            .ok_or_else(|| StartError::Machine(format!("no dockerd: {install}")))?;
        find_program("docker")
            .ok_or_else(|| StartError::Machine(format!("no docker client: {install}")))?;
        let busybox = Path::new("/bin/busybox");
        if !busybox.is_file() {
            return Err(StartError::Machine(format!("no /bin/busybox: {install}")));
        }
        let dir = env.path().join("docker");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("daemon.json");
        std::fs::write(&config, daemon_json(env)).unwrap();
        let d = match Dockerd::spawn(&dockerd, &dir, Some(&config)) {
            Ok(d) => d,
            Err(why) => {
                let probe = env.path().join("docker-probe");
                return Err(match Dockerd::spawn(&dockerd, &probe, None) {
                    Ok(_) => StartError::Config(format!(
                        "dockerd starts without the README's daemon.json but not with it: {why}"
                    )),
                    Err(probe_why) => StartError::Machine(probe_why),
                });
            }
        };
        d.import_busybox(busybox).map_err(StartError::Machine)?;
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--log-driver",
            "none",
            IMAGE,
            "sh",
            "-c",
            "true",
        ]);
        if !out.status.success() {
            return Err(StartError::Machine(format!(
                "dockerd cannot run a container: {}; its log ends:\n{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                d.log_tail(15)
            )));
        }
        Ok(d)
    }

    /// Starts `dockerd` over `dir` (with `config`, if any) and waits until it answers.
    fn spawn(dockerd: &Path, dir: &Path, config: Option<&Path>) -> Result<Dockerd, String> {
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let started = Instant::now();
        let mut cmd = Command::new("setpriv");
        // SIGTERM to dockerd when the thread that started it (this test's) is gone.
        cmd.args(["--pdeathsig", "TERM", "--"])
            .arg(dockerd)
            .args(["--iptables=false", "--ip-masq=false", "--bridge=none"])
            .args(["--storage-driver=vfs"])
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()));
        match config {
            Some(config) => cmd.arg("--config-file").arg(config),
            // An empty configuration, not /etc/docker/daemon.json.
            None => {
                std::fs::write(dir.join("empty.json"), "{}").unwrap();
                cmd.arg("--config-file").arg(dir.join("empty.json"))
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run setpriv {}: {e}", dockerd.display()))?;
        let mut d = Dockerd {
            child,
            dir: dir.to_path_buf(),
            started_in: Duration::ZERO,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.ping() {
            if let Ok(Some(status)) = d.child.try_wait() {
                return Err(format!(
                    "dockerd exited at start ({status}); its log ends:\n{}",
                    d.log_tail(5)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "dockerd did not answer within 60 s; its log ends:\n{}",
                    d.log_tail(15)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        d.started_in = started.elapsed();
        Ok(d)
    }

    /// `GET /_ping` on the daemon's socket answers `OK` once it serves the API.
    fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(self.dir.join("docker.sock")) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
    }

    /// `docker import` of a root holding the host's static busybox as `/bin/sh` too.
    fn import_busybox(&self, busybox: &Path) -> Result<(), String> {
        let root = self.dir.join("image");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run tar: {e}"))?;
        let out = self
            .docker_cmd(&["import", "-", IMAGE])
            .stdin(tar.stdout.unwrap())
            .output()
            .map_err(|e| format!("cannot run docker import: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "docker import failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// A `docker` command talking to this daemon only.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.arg("-H")
            .arg(format!("unix://{}", self.dir.join("docker.sock").display()))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.join("client"))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `docker ARGS` to completion.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).output().expect("run docker")
    }

    /// Starts a detached busybox container `name` running `sh -c script`, without network,
    /// logging as the daemon's configuration says, with `extra` options of `docker run`.
    pub fn run_detached(&self, name: &str, extra: &[&str], script: &str) {
        let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        let out = self.docker(&args);
        assert!(
            out.status.success(),
            "docker run {name}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail(20)
        );
    }

    /// Waits for the containers to exit and returns their exit codes.
    pub fn wait(&self, names: &[&str]) -> Vec<i32> {
        let mut args = vec!["wait"];
        args.extend_from_slice(names);
        let out = self.docker(&args);
        assert!(
            out.status.success(),
            "docker wait: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().parse().unwrap_or(-1))
            .collect()
    }

    /// The last `n` lines of dockerd's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The pids whose parent is `pid` (dockerd's containerd).
    fn children_of(pid: u32) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let child: u32 = e.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
                let ppid: u32 = stat[stat.rfind(')')? + 2..]
                    .split(' ')
                    .nth(1)?
                    .parse()
                    .ok()?;
                (ppid == pid).then_some(child)
            })
            .collect()
    }

    /// Mount points at or below `dir` (a container's shm, a network namespace), deepest first.
    fn mounts_below(dir: &Path) -> Vec<String> {
        let dir = dir.display().to_string();
        let mut found: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .map(str::to_string)
            .collect();
        found.sort_by_key(|m| std::cmp::Reverse(m.len()));
        found
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first (dockerd would stop them too, waiting up to 10 s each).
        let ids = self.docker(&["ps", "-aq"]);
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.docker(&args);
        }
        let helpers = Dockerd::children_of(self.child.id());
        super::stop_child(&mut self.child, Duration::from_secs(20));
        // dockerd stops its containerd on SIGTERM; after a SIGKILL it would stay.
        for pid in helpers {
            if std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "containerd")
            {
                super::signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        for mount in Dockerd::mounts_below(&self.dir) {
            let _ = Command::new("umount").args(["-l", &mount]).status();
        }
    }
}
