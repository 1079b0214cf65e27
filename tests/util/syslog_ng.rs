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

/// The article's filters, verbatim (../shared/seeds/fast-tracking-server-errors-to-s3.txt).
const FILTERS: &str = r#"
filter f_docker { program("docker") or tags("docker"); };
filter f_5xxERR-hook { filter(f_docker) and message("HTTP\/.{3,20}[[:space:]]5[[:digit:]]{2}[[:space:]]"); };
"#;

impl SyslogNg {
    /// Starts syslog-ng with `fasttrack watch <watch_args>` as its program() destination,
    /// or without one when `watch_args` is None.
    pub fn start(env: &TestEnv, watch_args: Option<&[&str]>) -> SyslogNg {
        let input = env.path().join("in.sock");
        let mut conf = format!(
            "@version: 3.38\noptions {{ stats_freq(0); mark_freq(0); }};\n\
             source s_test {{ unix-stream(\"{}\"); }};\n{FILTERS}\n\
             destination d_docker {{ file(\"{}\"); }};\n\
             log {{ source(s_test); filter(f_docker); destination(d_docker); }};\n",
            input.display(),
            env.log().display()
        );
        if let Some(extra) = watch_args {
            let mut args = env.common_args();
            args.extend(extra.iter().map(|s| s.to_string()));
            conf += &format!(
                "destination d_fasttrack {{ program(\"exec {BIN} watch {}\" mark-mode(none)); }};\n\
                 log {{ source(s_test); filter(f_5xxERR-hook); destination(d_fasttrack); }};\n",
                args.join(" ")
            );
        }
        let conf_path = env.path().join("syslog-ng.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let out = std::fs::File::create(env.path().join("syslog-ng.out")).unwrap();
        let child = Command::new("syslog-ng")
            .envs(super::AWS_ENV.iter().copied())
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
        while !(s.input.exists() && env.ctl().exists() && env.pidfile().exists()) {
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
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pid) = watch {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }
}
