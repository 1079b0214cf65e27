use super::*;
use std::collections::HashMap;

/// A policy in a table: (target type, class) -> permissions fasttrack_t has; labels by path.
struct FakeKernel {
    labels: HashMap<PathBuf, String>,
    allowed: HashMap<(&'static str, &'static str), Vec<&'static str>>,
    module_loaded: bool,
}

impl FakeKernel {
    fn new() -> Self {
        FakeKernel {
            labels: HashMap::new(),
            allowed: HashMap::new(),
            module_loaded: true,
        }
    }

    fn label(mut self, path: &str, ty: &str) -> Self {
        self.labels
            .insert(PathBuf::from(path), format!("system_u:object_r:{ty}:s0"));
        self
    }

    fn allow(mut self, ty: &'static str, class: &'static str, perms: &[&'static str]) -> Self {
        self.allowed.insert((ty, class), perms.to_vec());
        self
    }
}

impl Kernel for FakeKernel {
    fn label(&self, path: &Path) -> std::io::Result<String> {
        self.labels
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn denied(
        &self,
        scontext: &str,
        tcontext: &str,
        class: &str,
        perms: &[&str],
    ) -> Result<Vec<String>, AccessError> {
        if !self.module_loaded {
            return Err(AccessError::InvalidContext);
        }
        assert_eq!(context_type(scontext), "fasttrack_t");
        let have = self
            .allowed
            .iter()
            .find(|((t, c), _)| *t == context_type(tcontext) && *c == class)
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        Ok(perms
            .iter()
            .filter(|p| !have.contains(p))
            .map(|p| p.to_string())
            .collect())
    }

    fn process_label(&self, _pid: i32) -> std::io::Result<String> {
        Ok("system_u:system_r:syslogd_t:s0".into())
    }
}

fn target(path: &str, usage: Use) -> Target {
    Target {
        path: PathBuf::from(path),
        usage,
    }
}

const SCON: &str = "system_u:system_r:fasttrack_t:s0";

#[test]
fn without_selinuxfs_one_ok_line_says_so() {
    let items = items(Mode::Absent, &FakeKernel::new(), SCON, &[]);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].verdict, Verdict::Ok);
    assert!(
        items[0].detail.contains("not enabled"),
        "{}",
        items[0].detail
    );
}

#[test]
fn the_mount_point_comes_from_proc_mounts() {
    let mounts = "sysfs /sys sysfs rw 0 0\nselinuxfs /sys/fs/selinux selinuxfs rw,relatime 0 0\n";
    assert_eq!(
        selinuxfs_mount(mounts),
        Some(PathBuf::from("/sys/fs/selinux"))
    );
    assert_eq!(selinuxfs_mount("proc /proc proc rw 0 0\n"), None);
}

#[test]
fn watch_runs_as_syslog_ng_with_the_fasttrack_type() {
    assert_eq!(
        watch_context(Some("system_u:system_r:syslogd_t:s0")),
        "system_u:system_r:fasttrack_t:s0"
    );
    assert_eq!(
        watch_context(Some("system_u:system_r:syslogd_t:s0-s0:c0.c1023")),
        "system_u:system_r:fasttrack_t:s0-s0:c0.c1023"
    );
    assert_eq!(watch_context(None), SCON);
    assert_eq!(watch_context(Some("kernel")), SCON);
}

#[test]
fn the_default_labels_pass() {
    let kernel = FakeKernel::new()
        .label("/var/log", "var_log_t")
        .label("/var/lib/fasttrack", "fasttrack_var_lib_t")
        .allow(
            "var_log_t",
            "dir",
            &["search", "write", "add_name", "remove_name"],
        )
        .allow(
            "fasttrack_var_lib_t",
            "dir",
            &["search", "write", "add_name", "remove_name"],
        );
    let targets = [
        target("/var/log", Use::LogDir),
        target("/var/lib/fasttrack", Use::StateDir),
        target("/var/log/docker.log", Use::Log),
    ];
    let items = items(Mode::Enforcing, &kernel, SCON, &targets);
    assert_eq!(items.len(), 4);
    assert!(items.iter().all(|i| i.verdict == Verdict::Ok), "{items:?}");
    assert!(items[1]
        .detail
        .contains("/var/log (system_u:object_r:var_log_t:s0)"));
    // A log syslog-ng has not created yet is not an error.
    assert!(items[3].detail.contains("does not exist yet"));
}

#[test]
fn an_unlabelled_file_destination_fails_with_the_semanage_fix() {
    let kernel = FakeKernel::new()
        .label("/srv/incident-logs", "var_t")
        .allow("var_t", "dir", &["search"]);
    let item = target_item(
        Mode::Enforcing,
        &kernel,
        SCON,
        &target("/srv/incident-logs", Use::Dest),
    );
    assert_eq!(item.verdict, Verdict::Fail);
    assert_eq!(item.what, "SELinux file:// destination");
    assert_eq!(
        item.detail,
        "/srv/incident-logs is system_u:object_r:var_t:s0: watch (fasttrack_t) is denied dir \
         { write add_name remove_name create }; fix: semanage fcontext -a -t fasttrack_dest_t \
         '/srv/incident-logs(/.*)?' && restorecon -R /srv/incident-logs"
    );
}

#[test]
fn an_nfs_destination_names_the_boolean() {
    let kernel = FakeKernel::new().label("/mnt/logs", "nfs_t");
    let item = target_item(
        Mode::Enforcing,
        &kernel,
        SCON,
        &target("/mnt/logs", Use::Dest),
    );
    assert_eq!(item.verdict, Verdict::Fail);
    assert!(
        item.detail
            .ends_with("fix: setsebool -P fasttrack_dest_nfs on"),
        "{}",
        item.detail
    );
}

#[test]
fn permissive_mode_warns_instead_of_failing() {
    let kernel = FakeKernel::new().label("/srv/x", "default_t");
    let item = target_item(
        Mode::Permissive,
        &kernel,
        SCON,
        &target("/srv/x", Use::Dest),
    );
    assert_eq!(item.verdict, Verdict::Warn);
}

#[test]
fn fixes_name_the_type_each_use_needs() {
    let cases = [
        (Use::LogDir, "/var/log", "restorecon -Rv /var/log"),
        (
            Use::LogDir,
            "/data/logs",
            "semanage fcontext -a -t var_log_t '/data/logs(/.*)?' && restorecon -R /data/logs",
        ),
        (Use::StateDir, "/var/lib/fasttrack", "restorecon -Rv /var/lib/fasttrack"),
        (
            Use::StateDir,
            "/opt/ft",
            "semanage fcontext -a -t fasttrack_var_lib_t '/opt/ft(/.*)?' && restorecon -R /opt/ft",
        ),
        (
            Use::MetricsDir,
            "/var/lib/prom",
            "semanage fcontext -a -t fasttrack_metrics_t '/var/lib/prom(/.*)?' && restorecon -R /var/lib/prom",
        ),
    ];
    for (usage, path, want) in cases {
        assert_eq!(
            usage.fix(Path::new(path), "var_t"),
            want,
            "{usage:?} {path}"
        );
    }
    assert!(Use::ControlSocket
        .fix(Path::new("/tmp/s.ctl"), "tmp_t")
        .contains("devlog_t: restorecon -v /tmp/s.ctl"));
    assert!(Use::Pidfile
        .fix(Path::new("/tmp/p"), "tmp_t")
        .contains("--pidfile"));
}

#[test]
fn a_control_socket_in_run_is_checked_for_connect() {
    let kernel = FakeKernel::new()
        .label("/run/syslog-ng.ctl", "devlog_t")
        .allow("devlog_t", "sock_file", &["write"]);
    let item = target_item(
        Mode::Enforcing,
        &kernel,
        SCON,
        &target("/run/syslog-ng.ctl", Use::ControlSocket),
    );
    assert_eq!(item.verdict, Verdict::Ok, "{item:?}");
    assert!(item.detail.contains("fasttrack_t may write"));
}

#[test]
fn a_missing_module_is_one_fail_with_the_install_step() {
    let mut kernel = FakeKernel::new()
        .label("/var/log", "var_log_t")
        .label("/var/lib/fasttrack", "fasttrack_var_lib_t");
    kernel.module_loaded = false;
    let targets = [
        target("/var/log", Use::LogDir),
        target("/var/lib/fasttrack", Use::StateDir),
    ];
    let items = items(Mode::Enforcing, &kernel, SCON, &targets);
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[1].verdict, Verdict::Fail);
    assert!(items[1].detail.contains("install fasttrack-selinux"));
}

#[test]
fn targets_follow_the_configuration() {
    let dest = crate::config::DestUrl::File {
        root: PathBuf::from("/srv/incident-logs"),
    };
    let got = targets(&Paths {
        log: Path::new("/var/log/docker.log"),
        state_dir: Path::new("/var/lib/fasttrack"),
        dest: Some(&dest),
        metrics_file: Some(Path::new(
            "/var/lib/node_exporter/textfile_collector/f.prom",
        )),
        control_socket: Some(Path::new("/run/syslog-ng.ctl")),
        pidfile: Some(Path::new("/var/lib/syslog-ng/syslog-ng.pid")),
    });
    let got: Vec<(&str, Use)> = got
        .iter()
        .map(|t| (t.path.to_str().unwrap(), t.usage))
        .collect();
    assert_eq!(
        got,
        [
            ("/var/log", Use::LogDir),
            ("/var/log/docker.log", Use::Log),
            ("/var/lib/fasttrack", Use::StateDir),
            ("/srv/incident-logs", Use::Dest),
            ("/var/lib/node_exporter/textfile_collector", Use::MetricsDir),
            ("/run/syslog-ng.ctl", Use::ControlSocket),
            ("/var/lib/syslog-ng/syslog-ng.pid", Use::Pidfile),
        ]
    );
}
