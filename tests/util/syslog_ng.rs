//! A private syslog-ng (Debian's syslog-ng-core) for one test: its own config, control
//! socket, pidfile and persist file in the test's temp dir, a unix-stream source to feed it,
//! the article's docker and 5xx filters, a file() destination for docker.log and
//! `program("exec fasttrack watch ...")`. Stopped (and its children killed) on drop.

use super::{TestEnv, BIN};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SyslogNg {
    child: Child,
    input: PathBuf,
    pidfile: PathBuf,
    stream: Option<UnixStream>,
}

/// The shipped snippet, read at test time: the tests run this very file.
const SNIPPET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/syslog-ng/fasttrack.conf");

/// `syslog-ng/fasttrack.conf` with its three host paths pointed into the test's directory and
/// its program() running `program`. Panics if a path is no longer in the file (the tests
/// would otherwise silently stop covering it).
pub fn shipped_snippet(env: &TestEnv, program: &str) -> String {
    let text = std::fs::read_to_string(SNIPPET).expect("syslog-ng/fasttrack.conf");
    let mut out = String::new();
    let mut replaced = [0; 3];
    for line in text.lines() {
        let mut line = line.to_string();
        if !line.trim_start().starts_with('#') {
            for (i, (from, to)) in [
                (
                    "/run/docker-syslog.sock",
                    env.docker_socket().display().to_string(),
                ),
                ("/var/log/docker.log", env.log().display().to_string()),
                ("exec /usr/bin/fasttrack watch", program.to_string()),
            ]
            .iter()
            .enumerate()
            {
                if line.contains(from) {
                    line = line.replace(from, to);
                    replaced[i] += 1;
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    assert_eq!(
        replaced,
        [1, 1, 1],
        "syslog-ng/fasttrack.conf changed its paths: update the test"
    );
    out
}

/// The snippet with f_5xxERR-hook's `message('...')` regex replaced by `rule`.
fn with_rule(snippet: String, rule: Option<&str>) -> String {
    let Some(rule) = rule else {
        return snippet;
    };
    assert!(
        !rule.contains('\''),
        "the rule goes into a single-quoted string"
    );
    let mut out = String::new();
    let mut replaced = false;
    for line in snippet.lines() {
        if line.starts_with("filter f_5xxERR-hook") {
            let start = line.find("message('").expect("a message('...') filter") + 9;
            let end = line[start..].find("')").expect("closed") + start;
            out.push_str(&format!("{}{rule}{}\n", &line[..start], &line[end..]));
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(
        replaced,
        "syslog-ng/fasttrack.conf has no f_5xxERR-hook: update the test"
    );
    out
}

impl SyslogNg {
    /// Starts syslog-ng with the shipped snippet, its program() running `fasttrack watch
    /// <watch_args>` (or only draining the pipe when `watch_args` is None), plus a
    /// unix-stream source wired like a host whose Docker already tags `docker/...` through
    /// the system source.
    pub fn start(env: &TestEnv, watch_args: Option<&[&str]>) -> SyslogNg {
        SyslogNg::start_with(env, watch_args, None, &[])
    }

    /// As [`SyslogNg::start`], with `rule` instead of the shipped f_5xxERR-hook's regex (a
    /// host that kept the article's rule) and `vars` in the environment syslog-ng passes on
    /// to `watch`.
    pub fn start_with(
        env: &TestEnv,
        watch_args: Option<&[&str]>,
        rule: Option<&str>,
        vars: &[(&str, &str)],
    ) -> SyslogNg {
        let input = env.path().join("in.sock");
        let program = match watch_args {
            Some(extra) => {
                let mut args = env.common_args();
                args.extend(extra.iter().map(|s| s.to_string()));
                format!("exec {BIN} watch {}", args.join(" "))
            }
            None => "exec cat >/dev/null".to_string(),
        };
        let conf = format!(
            "@version: 3.38\noptions {{ stats_freq(0); stats_level(1); mark_freq(0); }};\n{}\n\
             source s_test {{ unix-stream(\"{}\"); }};\n\
             log {{ source(s_test); filter(f_docker); destination(d_docker); }};\n\
             log {{ source(s_test); filter(f_5xxERR-hook); destination(d_fasttrack); }};\n",
            with_rule(shipped_snippet(env, &program), rule),
            input.display(),
        );
        let conf_path = env.path().join("syslog-ng.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let out = std::fs::File::create(env.path().join("syslog-ng.out")).unwrap();
        let child = Command::new("syslog-ng")
            .envs(super::AWS_ENV.iter().copied())
            .envs(vars.iter().copied())
            .arg("-F")
            .arg("-f")
            .arg(&conf_path)
            .arg("-c")
            .arg(env.ctl())
            .arg("-p")
            .arg(env.pidfile())
            .arg("-R")
            .arg(env.path().join("syslog-ng.persist"))
            .arg("--no-caps")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect(
                "syslog-ng not found: run the README test command (it installs syslog-ng-core)",
            );
        let mut s = SyslogNg {
            child,
            input,
            pidfile: env.pidfile(),
            stream: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(s.input.exists()
            && env.docker_socket().exists()
            && env.ctl().exists()
            && env.pidfile().exists())
        {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!(
                    "syslog-ng exited at start ({status}):\n{}",
                    std::fs::read_to_string(env.path().join("syslog-ng.out")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "syslog-ng did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        if watch_args.is_some() {
            env.wait_for("fasttrack watch to start", Duration::from_secs(20), || {
                s.watch_pid().is_some()
            });
        }
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends lines over one long-lived unix-stream connection.
    pub fn send(&mut self, text: &str) {
        if self.stream.is_none() {
            self.stream = Some(UnixStream::connect(&self.input).expect("connect to syslog-ng"));
        }
        self.stream
            .as_mut()
            .unwrap()
            .write_all(text.as_bytes())
            .expect("write to syslog-ng");
    }

    /// Sends one message to the snippet's Docker socket (unix-dgram, tagged "docker"), as
    /// Docker's syslog driver does.
    pub fn send_docker(&self, env: &TestEnv, message: &str) {
        let socket = std::os::unix::net::UnixDatagram::unbound().unwrap();
        socket
            .send_to(message.as_bytes(), env.docker_socket())
            .expect("send to the docker socket");
    }

    /// The pid of the running `fasttrack watch` child, if any.
    pub fn watch_pid(&self) -> Option<u32> {
        let me = self.child.id().to_string();
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after_comm = &stat[stat.rfind(')')? + 2..];
            let ppid = after_comm.split(' ').nth(1)?;
            let comm = &stat[stat.find('(')? + 1..stat.rfind(')')?];
            (ppid == me && comm == "fasttrack").then_some(pid)
        })
    }

    /// The `dropped` counters of syslog-ng's destinations (`syslog-ng-ctl stats`), by name,
    /// e.g. `d_docker`: messages syslog-ng could not deliver.
    pub fn dropped(&self, env: &TestEnv) -> Vec<(String, u64)> {
        let out = Command::new("syslog-ng-ctl")
            .args(["stats", "-c"])
            .arg(env.ctl())
            .output()
            .expect("syslog-ng-ctl stats");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                // SourceName;SourceId;SourceInstance;State;Type;Number
                let f: Vec<&str> = l.split(';').collect();
                (f.len() == 6 && f[0].starts_with("dst.") && f[4] == "dropped").then(|| {
                    let name = f[1].split('#').next().unwrap_or(f[1]).to_string();
                    (name, f[5].parse().unwrap_or(0))
                })
            })
            .collect()
    }

    /// `syslog-ng-ctl <args>` against this instance.
    pub fn ctl(&self, env: &TestEnv, args: &[&str]) {
        let status = Command::new("syslog-ng-ctl")
            .args(args)
            .arg("-c")
            .arg(env.ctl())
            .stdout(Stdio::null())
            .status()
            .expect("syslog-ng-ctl");
        assert!(status.success(), "syslog-ng-ctl {args:?} failed");
    }
}

impl Drop for SyslogNg {
    fn drop(&mut self) {
        let watch = self.watch_pid();
        super::stop_child(&mut self.child, Duration::from_secs(10));
        if let Some(pid) = watch {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }
}
