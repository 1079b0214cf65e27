//! Asking syslog-ng to reopen its file destinations after docker.log was renamed.
//!
//! Facts relied on (docs/syslog-ng.md): REOPEN on the control socket answers
//! `OK ...` then a line `.`; `syslog-ng-ctl reopen` exists since 3.13.1; SIGUSR1 reopens
//! files and keeps the program() child (us) running, while SIGHUP is a reload that
//! SIGTERMs us, so `hup` is used only when asked for.

use crate::cli::ReopenMethod;
use crate::config::ReopenConfig;
use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's and RHEL's control socket locations, in the order tried.
const CONTROL_SOCKETS: &[&str] = &[
    "/var/lib/syslog-ng/syslog-ng.ctl",
    "/run/syslog-ng/syslog-ng.ctl",
    "/run/syslog-ng.ctl",
    "/var/run/syslog-ng.ctl",
];
/// Debian's and RHEL's pidfile locations, in the order tried. Debian's init script writes
/// `/run/syslog-ng.pid`; its systemd unit passes no `-p`, so syslog-ng writes its built-in
/// default beside the control socket, `/var/lib/syslog-ng/syslog-ng.pid` (docs/syslog-ng.md).
/// That one is tried last: `/var/lib` survives reboots, `/run` never holds a stale file.
const PIDFILES: &[&str] = &[
    "/run/syslog-ng.pid",
    "/var/run/syslog-ng.pid",
    "/run/syslogd.pid",
    "/var/run/syslogd.pid",
    "/run/syslog-ng/syslog-ng.pid",
    "/var/lib/syslog-ng/syslog-ng.pid",
];
const CTL_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin"];
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The way the reopen request was delivered, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReopenedVia {
    Socket,
    Ctl,
    Usr1,
    Hup,
}

impl std::fmt::Display for ReopenedVia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReopenedVia::Socket => "control socket",
            ReopenedVia::Ctl => "syslog-ng-ctl reopen",
            ReopenedVia::Usr1 => "SIGUSR1",
            ReopenedVia::Hup => "SIGHUP",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Reopener {
    config: ReopenConfig,
}

impl Reopener {
    pub fn new(config: &ReopenConfig) -> Self {
        Reopener {
            config: config.clone(),
        }
    }

    pub fn method(&self) -> ReopenMethod {
        self.config.method
    }

    /// Asks syslog-ng to reopen by the configured method(s). With `none` this does nothing.
    /// The error lists every method tried and why each failed.
    pub fn reopen(&self) -> Result<Option<ReopenedVia>> {
        let order: &[ReopenMethod] = match self.config.method {
            ReopenMethod::None => return Ok(None),
            ReopenMethod::Auto => &[ReopenMethod::Socket, ReopenMethod::Ctl, ReopenMethod::Usr1],
            ReopenMethod::Socket => &[ReopenMethod::Socket],
            ReopenMethod::Ctl => &[ReopenMethod::Ctl],
            ReopenMethod::Usr1 => &[ReopenMethod::Usr1],
            ReopenMethod::Hup => &[ReopenMethod::Hup],
        };
        let mut failures = Vec::new();
        for method in order {
            let attempt = match method {
                ReopenMethod::Socket => self.via_socket().map(|()| ReopenedVia::Socket),
                ReopenMethod::Ctl => self.via_ctl().map(|()| ReopenedVia::Ctl),
                ReopenMethod::Usr1 => self.via_signal(Signal::SIGUSR1).map(|()| ReopenedVia::Usr1),
                ReopenMethod::Hup => self.via_signal(Signal::SIGHUP).map(|()| ReopenedVia::Hup),
                ReopenMethod::Auto | ReopenMethod::None => continue,
            };
            match attempt {
                Ok(via) => return Ok(Some(via)),
                Err(e) => failures.push(format!("{}: {e:#}", method.name())),
            }
        }
        Err(anyhow!(
            "syslog-ng could not be asked to reopen its files ({}); check that syslog-ng runs, or set \
             --control-socket / --pidfile / --reopen",
            failures.join("; ")
        ))
    }

    /// The control socket: configured, beside the configured pidfile, or a default that exists.
    pub fn control_socket(&self) -> Option<PathBuf> {
        if let Some(p) = &self.config.control_socket {
            return Some(p.clone());
        }
        let beside_pidfile = self
            .config
            .pidfile
            .as_ref()
            .and_then(|p| p.parent())
            .map(|d| d.join("syslog-ng.ctl"));
        beside_pidfile
            .into_iter()
            .chain(CONTROL_SOCKETS.iter().map(PathBuf::from))
            .find(|p| p.exists())
    }

    pub fn pidfile(&self) -> Option<PathBuf> {
        if let Some(p) = &self.config.pidfile {
            return Some(p.clone());
        }
        PIDFILES.iter().map(PathBuf::from).find(|p| p.exists())
    }

    /// syslog-ng's pid: from the pidfile, or, without one, our parent when it is syslog-ng
    /// (`watch` is its direct child thanks to `exec`). Always checked to be a running
    /// syslog-ng, so that a recycled pid is never signalled.
    pub fn syslog_ng_pid(&self) -> Result<Pid> {
        let Some(pidfile) = self.pidfile() else {
            let parent = nix::unistd::getppid().as_raw();
            if is_syslog_ng(parent) {
                return Ok(Pid::from_raw(parent));
            }
            bail!(
                "no pidfile found (tried {}); set --pidfile",
                PIDFILES.join(", ")
            );
        };
        let text = std::fs::read_to_string(&pidfile)
            .with_context(|| format!("cannot read pidfile {}", pidfile.display()))?;
        let pid: i32 = text
            .trim()
            .parse()
            .ok()
            .filter(|p| *p > 1)
            .ok_or_else(|| anyhow!("pidfile {} does not hold a pid", pidfile.display()))?;
        if !is_syslog_ng(pid) {
            bail!(
                "pid {pid} from {} is not a running syslog-ng (stale pidfile?)",
                pidfile.display()
            );
        }
        Ok(Pid::from_raw(pid))
    }

    fn via_socket(&self) -> Result<()> {
        let socket = self.control_socket().ok_or_else(|| {
            anyhow!(
                "no control socket found (tried {}); set --control-socket",
                CONTROL_SOCKETS.join(", ")
            )
        })?;
        send_reopen(&socket)
    }

    fn via_ctl(&self) -> Result<()> {
        let ctl = find_syslog_ng_ctl()
            .ok_or_else(|| anyhow!("syslog-ng-ctl not found in {}", CTL_DIRS.join(", ")))?;
        let mut cmd = Command::new(&ctl);
        cmd.arg("reopen");
        if let Some(socket) = self.control_socket() {
            cmd.arg("--control").arg(socket);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", ctl.display()))?;
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{} reopen did not answer within {:?}",
                    ctl.display(),
                    IO_TIMEOUT
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = child.wait_with_output()?;
        if out.status.success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_string()
                + String::from_utf8_lossy(&out.stdout).trim();
            bail!("{} reopen failed ({}): {text}", ctl.display(), out.status)
        }
    }

    fn via_signal(&self, signal: Signal) -> Result<()> {
        let pid = self.syslog_ng_pid()?;
        kill(pid, signal).with_context(|| format!("cannot send {signal} to syslog-ng pid {pid}"))
    }
}

fn is_syslog_ng(pid: i32) -> bool {
    pid > 1
        && std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim().starts_with("syslog-ng"))
}

/// Sends `REOPEN` on syslog-ng's control socket and reads the reply up to the `.` line.
pub fn send_reopen(socket: &Path) -> Result<()> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot connect to control socket {}", socket.display()))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream
        .write_all(b"REOPEN\n")
        .with_context(|| format!("cannot write to control socket {}", socket.display()))?;
    let mut first: Option<String> = None;
    for line in BufReader::new(stream).lines() {
        let line =
            line.with_context(|| format!("cannot read from control socket {}", socket.display()))?;
        if line == "." {
            break;
        }
        if first.is_none() {
            first = Some(line);
        }
    }
    match first {
        Some(reply) if reply.starts_with("OK") => Ok(()),
        Some(reply) => bail!("syslog-ng answered {reply:?} on {}", socket.display()),
        None => bail!(
            "syslog-ng closed {} without a reply (a syslog-ng older than 3.13.1 has no REOPEN command)",
            socket.display()
        ),
    }
}

fn find_syslog_ng_ctl() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain(CTL_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join("syslog-ng-ctl"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn fake_syslog_ng(
        reply: &'static [u8],
    ) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("syslog-ng.ctl");
        let listener = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(s.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            s.write_all(reply).unwrap();
            line
        });
        (dir, path, t)
    }

    #[test]
    fn reopen_ok_reply() {
        let (_d, path, t) = fake_syslog_ng(b"OK Re-open of log destination files initiated\n.\n");
        send_reopen(&path).unwrap();
        assert_eq!(t.join().unwrap(), "REOPEN\n");
    }

    #[test]
    fn reopen_fail_reply_is_reported() {
        let (_d, path, t) = fake_syslog_ng(b"FAIL something broke\n.\n");
        let e = send_reopen(&path).unwrap_err();
        assert!(e.to_string().contains("FAIL something broke"), "{e}");
        t.join().unwrap();
    }

    #[test]
    fn connection_closed_without_reply_names_old_versions() {
        let (_d, path, t) = fake_syslog_ng(b"");
        let e = send_reopen(&path).unwrap_err();
        assert!(e.to_string().contains("3.13.1"), "{e}");
        t.join().unwrap();
    }

    #[test]
    fn every_failed_method_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reopener::new(&ReopenConfig {
            method: ReopenMethod::Auto,
            control_socket: Some(dir.path().join("missing.ctl")),
            pidfile: Some(dir.path().join("missing.pid")),
        });
        let e = format!("{:#}", r.reopen().unwrap_err());
        assert!(e.contains("socket:") && e.contains("missing.ctl"), "{e}");
        assert!(e.contains("ctl:"), "{e}");
        assert!(e.contains("usr1:") && e.contains("missing.pid"), "{e}");
    }

    #[test]
    fn a_pid_that_is_not_syslog_ng_is_never_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("syslog-ng.pid");
        std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
        let r = Reopener::new(&ReopenConfig {
            method: ReopenMethod::Usr1,
            control_socket: None,
            pidfile: Some(pidfile),
        });
        let e = format!("{:#}", r.reopen().unwrap_err());
        assert!(e.contains("not a running syslog-ng"), "{e}");
    }
}
