//! `check` under SELinux: `check` itself runs in the admin's domain (unconfined_t), so its
//! own probes can pass where `watch`, confined to `fasttrack_t` (selinux/fasttrack.te), is
//! denied. Here the kernel is asked what `fasttrack_t` may do on the labels of the paths
//! `watch` uses: the log's directory and the log, the state dir, a `file://` destination,
//! the metrics directory, syslog-ng's control socket and pidfile. Each denial is a FAIL (a
//! WARN when SELinux is permissive: logged, not yet enforced) naming the path, its label,
//! the missing permissions and the command that fixes it (README.md "Install on RHEL").
//! Without SELinux one OK line says so. The kernel is behind the [`Kernel`] trait
//! (selinuxfs.rs); everything here is pure and unit-tested with a fake.

use crate::dest::{CheckItem, Verdict};
use std::path::{Path, PathBuf};

/// The questions `check` asks the kernel, answered by selinuxfs (or a fake in tests).
pub trait Kernel {
    /// The SELinux label of `path` itself (a symlink is not followed).
    fn label(&self, path: &Path) -> std::io::Result<String>;
    /// Which of `perms` on `class` the policy denies `scontext` on `tcontext`.
    fn denied(
        &self,
        scontext: &str,
        tcontext: &str,
        class: &str,
        perms: &[&str],
    ) -> Result<Vec<String>, AccessError>;
    /// The label of a running process (/proc/PID/attr/current).
    fn process_label(&self, pid: i32) -> std::io::Result<String>;
}

#[derive(Debug, PartialEq)]
pub enum AccessError {
    /// The policy does not know the source context: the fasttrack module is not loaded.
    InvalidContext,
    Other(String),
}

/// What `watch` does with a path, and so which permissions it needs there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Use {
    /// The directory of docker.log: rename it, create the .gz, remove the rest.
    LogDir,
    /// docker.log itself: renamed, read, removed once shipped.
    Log,
    /// The state dir: state.toml, lock, spool.
    StateDir,
    /// A `file://` destination's directory: DIR/HOST created, files written and renamed.
    Dest,
    /// The directory of --metrics-file: fasttrack.prom replaced.
    MetricsDir,
    /// syslog-ng's control socket: connect.
    ControlSocket,
    /// syslog-ng's pidfile: read.
    Pidfile,
}

impl Use {
    fn what(self) -> &'static str {
        match self {
            Use::LogDir => "log directory",
            Use::Log => "log",
            Use::StateDir => "state dir",
            Use::Dest => "file:// destination",
            Use::MetricsDir => "metrics directory",
            Use::ControlSocket => "syslog-ng control socket",
            Use::Pidfile => "syslog-ng pidfile",
        }
    }

    /// The object class and the permissions `watch` needs on it (selinux/fasttrack.te).
    pub fn needs(self) -> (&'static str, &'static [&'static str]) {
        const DIR_ENTRIES: &[&str] = &["search", "write", "add_name", "remove_name"];
        match self {
            Use::LogDir | Use::StateDir | Use::MetricsDir => ("dir", DIR_ENTRIES),
            // DIR/HOST is created with the destination's own label.
            Use::Dest => (
                "dir",
                &["search", "write", "add_name", "remove_name", "create"],
            ),
            Use::Log => ("file", &["getattr", "read", "rename", "unlink"]),
            Use::ControlSocket => ("sock_file", &["write"]),
            Use::Pidfile => ("file", &["read", "open"]),
        }
    }

    /// The command that gives `path` (labelled `ty`) a label `fasttrack_t` may use.
    pub fn fix(self, path: &Path, ty: &str) -> String {
        let p = path.display();
        let relabel =
            |want: &str| format!("semanage fcontext -a -t {want} '{p}(/.*)?' && restorecon -R {p}");
        match self {
            Use::Dest if ty == "nfs_t" => "setsebool -P fasttrack_dest_nfs on".to_string(),
            Use::Dest => relabel("fasttrack_dest_t"),
            Use::LogDir | Use::Log if path.starts_with("/var/log") => {
                format!("restorecon -Rv {p}")
            }
            Use::LogDir | Use::Log => relabel("var_log_t"),
            Use::StateDir if path == Path::new("/var/lib/fasttrack") => {
                format!("restorecon -Rv {p}")
            }
            Use::StateDir => relabel("fasttrack_var_lib_t"),
            Use::MetricsDir => relabel("fasttrack_metrics_t"),
            Use::ControlSocket => format!(
                "fasttrack connects to sockets labelled syslogd_var_lib_t, syslogd_var_run_t or \
                 devlog_t: restorecon -v {p}, or point --control-socket at syslog-ng's own \
                 (/var/lib/syslog-ng/syslog-ng.ctl)"
            ),
            Use::Pidfile => format!(
                "fasttrack reads pidfiles labelled syslogd_var_run_t or syslogd_var_lib_t: \
                 restorecon -v {p}, or set --pidfile to syslog-ng's own"
            ),
        }
    }
}

/// A path `watch` uses, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub path: PathBuf,
    pub usage: Use,
}

/// The paths of a configuration that `watch` uses.
pub struct Paths<'a> {
    pub log: &'a Path,
    pub state_dir: &'a Path,
    pub dest: Option<&'a crate::config::DestUrl>,
    pub metrics_file: Option<&'a Path>,
    pub control_socket: Option<&'a Path>,
    pub pidfile: Option<&'a Path>,
}

/// What to ask about `paths`, in the order the lines are printed.
pub fn targets(paths: &Paths) -> Vec<Target> {
    let mut targets = Vec::new();
    let mut add = |path: Option<&Path>, usage| {
        if let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) {
            targets.push(Target {
                path: path.to_path_buf(),
                usage,
            });
        }
    };
    add(paths.log.parent(), Use::LogDir);
    add(Some(paths.log), Use::Log);
    add(Some(paths.state_dir), Use::StateDir);
    if let Some(crate::config::DestUrl::File { root }) = paths.dest {
        add(Some(root), Use::Dest);
    }
    add(paths.metrics_file.and_then(Path::parent), Use::MetricsDir);
    add(paths.control_socket, Use::ControlSocket);
    add(paths.pidfile, Use::Pidfile);
    targets
}

/// SELinux as /proc/mounts and selinuxfs's `enforce` describe it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Absent,
    Permissive,
    Enforcing,
}

/// Where selinuxfs is mounted, from the text of /proc/mounts.
pub fn selinuxfs_mount(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, dir, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "selinuxfs").then(|| PathBuf::from(dir))
    })
}

/// The context `watch` runs in: syslog-ng's (system_u:system_r:syslogd_t:s0 on RHEL) with
/// the type fasttrack_t, as the transition on /usr/bin/fasttrack gives it.
pub fn watch_context(syslog_ng: Option<&str>) -> String {
    const DEFAULT: &str = "system_u:system_r:fasttrack_t:s0";
    let Some(context) = syslog_ng else {
        return DEFAULT.to_string();
    };
    let parts: Vec<&str> = context.splitn(4, ':').collect();
    match parts.as_slice() {
        [user, role, _, level] => format!("{user}:{role}:fasttrack_t:{level}"),
        _ => DEFAULT.to_string(),
    }
}

/// The type of a context (`system_u:object_r:var_log_t:s0` -> `var_log_t`).
pub fn context_type(context: &str) -> &str {
    context.split(':').nth(2).unwrap_or(context)
}

/// The lines for all `targets`: one summary line, then one per target.
pub fn items(
    mode: Mode,
    kernel: &dyn Kernel,
    scontext: &str,
    targets: &[Target],
) -> Vec<CheckItem> {
    let state = match mode {
        Mode::Absent => {
            return vec![CheckItem::ok(
                "SELinux",
                "not enabled (no selinuxfs mounted): nothing to check for fasttrack_t",
            )]
        }
        Mode::Permissive => "permissive: denials are logged, not enforced",
        Mode::Enforcing => "enforcing",
    };
    let mut items = vec![CheckItem::ok(
        "SELinux",
        format!("{state}; checking what watch may do as {scontext}"),
    )];
    for target in targets {
        let item = target_item(mode, kernel, scontext, target);
        let unknown = item.detail.contains("module is not loaded");
        items.push(item);
        if unknown {
            break; // every further line would say the same
        }
    }
    items
}

/// One target's line: OK, or the denial with its fix (WARN when permissive).
pub fn target_item(mode: Mode, kernel: &dyn Kernel, scontext: &str, target: &Target) -> CheckItem {
    let what = format!("SELinux {}", target.usage.what());
    let p = target.path.display();
    let label = match kernel.label(&target.path) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return CheckItem::ok(what, format!("{p} does not exist yet: not checked"))
        }
        Err(e) => return CheckItem::warn(what, format!("cannot read the label of {p}: {e}")),
    };
    let (class, perms) = target.usage.needs();
    let denied = match kernel.denied(scontext, &label, class, perms) {
        Ok(d) => d,
        Err(AccessError::InvalidContext) => {
            return CheckItem::fail(
                what,
                format!(
                    "the policy does not know {scontext}: the fasttrack module is not loaded, \
                     so watch runs unconfined or not at all; install fasttrack-selinux \
                     (or semodule -i fasttrack.pp) and restart syslog-ng"
                ),
            )
        }
        Err(AccessError::Other(e)) => {
            return CheckItem::warn(what, format!("cannot ask the kernel about {p}: {e}"))
        }
    };
    if denied.is_empty() {
        return CheckItem::ok(
            what,
            format!("{p} ({label}): fasttrack_t may {}", perms.join(", ")),
        );
    }
    let verdict = match mode {
        Mode::Enforcing => Verdict::Fail,
        Mode::Permissive | Mode::Absent => Verdict::Warn,
    };
    let fix = target.usage.fix(&target.path, context_type(&label));
    CheckItem::new(
        what,
        verdict,
        format!(
            "{p} is {label}: watch (fasttrack_t) is denied {class} {{ {} }}; fix: {fix}",
            denied.join(" ")
        ),
    )
}

#[cfg(test)]
mod tests;
