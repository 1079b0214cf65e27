//! `fasttrack check` catches the classic mistakes (issue 14): logrotate rotating the same log,
//! syslog-ng not running `fasttrack watch`, a log syslog-ng stopped writing, a state dir open
//! to others, a webhook that does not answer, a clock off the S3 server's, SELinux absent. Each against the
//! real thing: the binary, a real syslog-ng, s3s-fs, a webhook receiver, libfaketime.

use crate::util::webhook::{Answer, Webhook};
use crate::util::*;
use std::os::unix::fs::PermissionsExt;

/// `check` of this env with its own (empty) logrotate config unless the test gives one.
fn check(env: &TestEnv, extra: &[&str]) -> Cmd {
    let mut args = extra.to_vec();
    let conf = env.path().join("logrotate.conf");
    if !conf.exists() {
        std::fs::write(&conf, "weekly\n").unwrap();
    }
    let conf = conf.display().to_string();
    if !extra.contains(&"--logrotate-conf") {
        args.extend(["--logrotate-conf", conf.as_str()]);
    }
    env.cmd("check", &args)
}

/// The lines of a check's output that start with `label` and name `what`.
fn lines_of<'a>(stdout: &'a str, label: &str, what: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter(|l| l.starts_with(label) && l[6..].starts_with(what))
        .collect()
}

#[test]
fn a_logrotate_rule_for_the_same_log_fails_with_the_file_and_line() {
    let env = TestEnv::new();
    std::fs::write(env.log(), docker_line(0, 200)).unwrap();
    let dir = env.path().join("logrotate.d");
    std::fs::create_dir(&dir).unwrap();
    let main = env.path().join("logrotate.conf");
    std::fs::write(
        &main,
        format!("weekly\nrotate 4\n\ninclude {}\n", dir.display()),
    )
    .unwrap();
    // A backup is not read by logrotate: not reported either.
    std::fs::write(
        dir.join("docker.dpkg-old"),
        format!("{} {{\n}}\n", env.log().display()),
    )
    .unwrap();
    std::fs::write(dir.join("other"), "/var/log/other.log {\n daily\n}\n").unwrap();
    check(&env, &["--reopen", "none"])
        .status(0)
        .stdout_has("OK    logrotate: no rule in")
        .run_in(&env);

    // The old chain's rule, by a glob over the log's directory.
    let glob = format!("{}/*.log", env.logs_dir().display());
    std::fs::write(
        dir.join("docker"),
        format!(
            "# rotated by the old chain\n{glob}\n{{\n  postrotate\n    kill -HUP $(cat /run/syslog-ng.pid) }}\n  endscript\n}}\n"
        ),
    )
    .unwrap();
    let ran = check(&env, &["--reopen", "none"]).status(1).run_in(&env);
    let fail = lines_of(&ran.stdout, "FAIL", "logrotate");
    assert_eq!(fail.len(), 1, "{}", ran.stdout);
    assert!(
        fail[0].contains(&format!(
            "{}:2 ({glob}) also rotates",
            dir.join("docker").display()
        )),
        "{}",
        fail[0]
    );
    assert!(
        fail[0].contains("two rotators lose and duplicate lines"),
        "{}",
        fail[0]
    );

    // A config named on the command line that is not there is a mistake too.
    let missing = env.path().join("nope.conf").display().to_string();
    check(&env, &["--reopen", "none", "--logrotate-conf", &missing])
        .status(1)
        .stdout_has("no such file; fix --logrotate-conf")
        .run();
}

#[test]
fn syslog_ng_running_watch_or_not() {
    let env = TestEnv::new();
    let syslog = SyslogNg::start(&env, Some(&[]));
    let watch = syslog.watch_pid().expect("a watch runs");
    env.wait_for(
        "watch.lock to hold its pid",
        std::time::Duration::from_secs(10),
        || {
            std::fs::read_to_string(env.state().join("watch.lock"))
                .is_ok_and(|t| t.trim() == watch.to_string())
        },
    );
    let ran = check(&env, &[]).status(0).run_in(&env);
    let ok = lines_of(&ran.stdout, "OK", "syslog-ng destination");
    assert_eq!(ok.len(), 1, "{}", ran.stdout);
    assert!(
        ok[0].contains(&format!("d_fasttrack runs `exec {BIN} watch"))
            && ok[0].contains(&format!("a watch is running (pid {watch}")),
        "{}",
        ok[0]
    );
    assert!(
        ran.stdout.contains("OK    syslog-ng control socket"),
        "{}",
        ran.stdout
    );
    drop(syslog);

    // The snippet's destination runs something else: the mistake is named with its fix.
    let _syslog = SyslogNg::start(&env, None);
    let ran = check(&env, &[]).status(1).run_in(&env);
    let fail = lines_of(&ran.stdout, "FAIL", "syslog-ng destination");
    assert_eq!(fail.len(), 1, "{}", ran.stdout);
    assert!(
        fail[0].contains("runs no program() destination with `fasttrack watch`")
            && fail[0].contains("syslog-ng-ctl reload"),
        "{}",
        fail[0]
    );
}

#[test]
fn without_selinux_one_ok_line_says_there_is_nothing_to_check() {
    // These machines have no SELinux (TESTBED.md): no selinuxfs in /proc/mounts. What
    // watch's domain may do is unit-tested against a fake kernel (src/check/selinux/tests.rs).
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    if mounts.split_whitespace().any(|f| f == "selinuxfs") {
        eprintln!("skipped: SELinux is enabled here");
        return;
    }
    let env = TestEnv::new();
    let out = check(&env, &["--reopen", "none"])
        .stdout_has(
            "OK    SELinux: not enabled (no selinuxfs mounted): nothing to check for fasttrack_t",
        )
        .run();
    assert_eq!(
        lines_of(&out.stdout, "", "SELinux").len(),
        1,
        "{}",
        out.stdout
    );
}

#[test]
fn a_log_not_written_for_hours_is_a_warning() {
    let env = TestEnv::new();
    std::fs::write(env.log(), docker_line(0, 200)).unwrap();
    check(&env, &["--reopen", "none"])
        .status(0)
        .stdout_has(format!(
            "OK    log {}: last written 0s ago",
            env.log().display()
        ))
        .run();
    let touched = std::process::Command::new("touch")
        .args(["-d", "7 hours ago"])
        .arg(env.log())
        .status()
        .unwrap();
    assert!(touched.success());
    // A warning: fasttrack works, but syslog-ng may have stopped writing there.
    check(&env, &["--reopen", "none"])
        .status(0)
        .stdout_has(format!(
            "WARN  log {}: last written 7h",
            env.log().display()
        ))
        .stdout_has("syslog-ng-ctl stats")
        .run();
}

#[test]
fn state_dir_open_to_others_fails_and_open_files_warn() {
    let env = TestEnv::new();
    std::fs::write(env.log(), docker_line(0, 200)).unwrap();
    env.cmd("rotate", &["--reopen", "none"])
        .status(0)
        .run_in(&env);
    check(&env, &["--reopen", "none"])
        .status(0)
        .stdout_has("OK    state dir:")
        .stdout_lacks("WARN  state files")
        .run();

    let state_toml = env.state().join("state.toml");
    std::fs::set_permissions(&state_toml, std::fs::Permissions::from_mode(0o644)).unwrap();
    check(&env, &["--reopen", "none"])
        .status(0)
        .stdout_has(format!(
            "WARN  state files: {} (0644)",
            state_toml.display()
        ))
        .run();

    std::fs::set_permissions(env.state(), std::fs::Permissions::from_mode(0o777)).unwrap();
    check(&env, &["--reopen", "none"])
        .status(1)
        .stdout_has("FAIL  state dir:")
        .stdout_has("writable by everyone (mode 0777)")
        .run();
}

#[test]
fn the_webhook_is_probed_and_posted_to_only_when_asked() {
    let env = TestEnv::new();
    let hook = Webhook::start(Answer::Ok);
    env.set_notify(&hook.url(), "");
    let ran = check(&env, &["--reopen", "none"]).status(0).run_in(&env);
    let ok = lines_of(&ran.stdout, "OK", "webhook");
    assert_eq!(ok.len(), 1, "{}", ran.stdout);
    assert!(ok[0].contains("answers (HTTP 405 to HEAD)"), "{}", ok[0]);
    assert!(
        !ok[0].contains("secret-token"),
        "the URL's secret stays hidden: {}",
        ok[0]
    );
    assert_eq!(
        hook.received(),
        0,
        "nothing is posted without --notify-test"
    );
    assert_eq!(*hook.others.lock().unwrap(), vec!["HEAD".to_string()]);

    check(&env, &["--reopen", "none", "--notify-test"])
        .status(0)
        .stdout_has("posted a test message")
        .run_in(&env);
    let posted = hook.accepted_json();
    assert_eq!(posted.len(), 1);
    let text = posted[0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("fasttrack test message from testhost: not an incident"),
        "{}",
        posted[0]
    );

    drop(hook);
    check(&env, &["--reopen", "none"])
        .status(1)
        .stdout_has("cannot reach the webhook")
        .stdout_has("check the URL (--notify or the route's url)")
        .run();
}

/// libfaketime's preload library, installed by the README test command (Debian's faketime).
fn libfaketime() -> std::path::PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!("libfaketime not found: run the README test command (it installs faketime)")
    })
}

#[test]
fn a_clock_ten_minutes_off_the_s3_servers_fails() {
    let env = TestEnv::new_s3();
    check(&env, &["--reopen", "none"])
        .status(0)
        .stdout_has("OK    clock: this host is in step with")
        .run_in(&env);
    let ran = check(&env, &["--reopen", "none"])
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", "+10m")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .status(1)
        .run_in(&env);
    let fail = lines_of(&ran.stdout, "FAIL", "clock");
    assert_eq!(fail.len(), 1, "{}", ran.stdout);
    assert!(
        fail[0].contains(" s ahead of http://127.0.0.1:"),
        "{}",
        fail[0]
    );
    assert!(fail[0].contains("synchronise it"), "{}", fail[0]);
}
