//! Nobody reads through fasttrack what they could not read in the log (issue #20): the mode,
//! owner and group of every file fasttrack writes, secrets kept out of the command line, and
//! `check`'s warning about a config file others can read. The tests run as root, so a log can
//! be given a group other than root's, which the files made from it must carry.

use crate::util::webhook::{Answer, Webhook};
use crate::util::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The group of the test logs: not root's, so a copied group is seen to be copied.
const LOG_GID: u32 = 4242;
const SECRET_URL: &str = "https://hooks.example.com/services/T000/B000/secret-token";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes the log with 5xx lines (so that its digest has examples), `mode` and [`LOG_GID`].
fn write_log(env: &TestEnv, mode: u32) {
    let text: String = (0..20).map(|s| docker_line(s, 502)).collect();
    std::fs::write(env.log(), text).unwrap();
    std::fs::set_permissions(env.log(), std::fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::chown(env.log(), None, Some(LOG_GID)).unwrap();
}

/// The files of `dir` whose name ends with `ext`.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| p.to_string_lossy().ends_with(ext));
    found.sort();
    found
}

/// Asserts mode, owner and group of `path`.
fn assert_access(env: &TestEnv, path: &Path, mode: u32, gid: u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| {
        panic!("{}: {e}\n{}", path.display(), env.dump());
    });
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid()),
        (mode, 0, gid),
        "{} (expected mode {mode:04o}, owner 0, group {gid})\n{}",
        path.display(),
        env.dump()
    );
}

#[test]
fn files_made_from_a_log_are_never_more_readable_than_the_log() {
    // (mode of the log, mode of every file made from it)
    for (log_mode, derived) in [(0o600, 0o600), (0o644, 0o640)] {
        let env = TestEnv::new();
        // Notifications keep failing, so that the queued one stays on disk to be looked at.
        let hook = Webhook::start(Answer::FailFirst(usize::MAX));
        env.set_notify(&hook.url(), "");
        write_log(&env, log_mode);

        // rotate: the destination is missing, so the files wait beside the log.
        std::fs::remove_dir(env.out()).unwrap();
        let out = env.run("rotate", &["--reopen", "none"]);
        env.assert_exit(&out, 3);
        let gz = files(&env.logs_dir(), ".gz");
        let json = files(&env.logs_dir(), ".json");
        assert_eq!((gz.len(), json.len()), (1, 1), "{}", env.dump());
        assert_access(&env, &gz[0], derived, LOG_GID);
        assert_access(&env, &json[0], derived, LOG_GID);

        // upload: the digest lost meanwhile is rebuilt from the .gz, with the same rule.
        std::fs::remove_file(&json[0]).unwrap();
        std::fs::create_dir(env.out()).unwrap();
        let out = env.run("upload", &[]);
        env.assert_exit(&out, 0);
        assert_eq!(hook.received(), 1, "{}", env.dump());
        assert_access(&env, &json[0], derived, LOG_GID);
        let copies = files(&env.shipped_dir(), "");
        assert_eq!(copies.len(), 2, "{copies:?}\n{}", env.dump());
        for copy in &copies {
            assert_access(&env, copy, derived, LOG_GID);
        }
        // The notification, queued then rewritten after the failed attempt.
        let queued = files(&env.state().join("notify"), ".json");
        assert_eq!(queued.len(), 1, "{}", env.dump());
        assert!(std::fs::read_to_string(&queued[0])
            .unwrap()
            .contains("\"attempts\":1"));
        assert_access(&env, &queued[0], derived, LOG_GID);

        // fasttrack's own state: 0640 in 0750 directories, root's group.
        assert_access(&env, &env.state().join("state.toml"), 0o640, 0);
        assert_access(&env, &env.state().join("lock"), 0o640, 0);
        assert_access(&env, &env.state(), 0o750, 0);
        assert_access(&env, &env.state().join("notify"), 0o750, 0);
        assert_access(&env, &env.log_file(), 0o640, 0);
    }
}

#[test]
fn the_open_incident_digest_is_no_more_readable_than_the_log() {
    for (log_mode, derived) in [(0o600, 0o600), (0o644, 0o640)] {
        let env = TestEnv::new();
        write_log(&env, log_mode);
        let mut watch = env.spawn_watch(&["--reopen", "none", "--quiet", "1h"]);
        let mut stdin = watch.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, docker_line(20, 503).as_bytes()).unwrap();
        let marker = env.state().join("incident");
        env.wait_for("the incident to open", Duration::from_secs(20), || {
            marker.exists()
        });
        // Closing stdin stops watch, which saves the open incident's digest on its way out.
        drop(stdin);
        let status = watch.wait().unwrap();
        assert!(status.success(), "{status}\n{}", env.dump());
        assert_access(
            &env,
            &env.state().join("incident-digest.json"),
            derived,
            LOG_GID,
        );
        assert_access(&env, &marker, 0o640, 0);
    }
}

#[test]
fn watch_refuses_a_webhook_on_its_command_line_and_says_why_in_its_log() {
    let env = TestEnv::new();
    let out = env.run("watch", &["--notify", SECRET_URL]);
    env.assert_exit(&out, 2);
    // Under syslog-ng stderr is /dev/null: the log file must say it.
    let log = std::fs::read_to_string(env.log_file()).unwrap_or_default();
    for text in [&stderr(&out), &log] {
        assert!(
            text.contains("--notify on the command line is refused by `fasttrack watch`"),
            "{text}"
        );
        assert!(
            text.contains(&format!("set notify in {}", env.config_file().display()))
                && text.contains("FASTTRACK_NOTIFY in the environment"),
            "{text}"
        );
        assert!(!text.contains("secret-token"), "{text}");
    }
    assert!(!env.state().exists(), "nothing started");

    // From the environment, watch takes it (and stops when its stdin closes).
    let out = env
        .fasttrack("watch", &["--reopen", "none"])
        .env("FASTTRACK_NOTIFY", SECRET_URL)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    env.assert_exit(&out, 0);
}

#[test]
fn one_shot_commands_take_a_webhook_on_their_command_line_with_a_warning() {
    let env = TestEnv::new();
    let hook = Webhook::start(Answer::Ok);
    write_log(&env, 0o600);
    let out = env.run("rotate", &["--reopen", "none", "--notify", &hook.url()]);
    env.assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains(
            "fasttrack: warning: --notify on the command line can be read by every local user"
        ) && err.contains("FASTTRACK_NOTIFY"),
        "{err}"
    );
    assert_eq!(hook.accepted_json().len(), 1, "{}", env.dump());

    // The same webhook from the config file: no warning. (No wait for the interval since the
    // first message: a second message at once.)
    env.set_notify(&hook.url(), "notify-interval = \"0s\"\n");
    write_log(&env, 0o600);
    let out = env.run("rotate", &["--reopen", "none"]);
    env.assert_exit(&out, 0);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(hook.accepted_json().len(), 2, "{}", env.dump());
}

#[test]
fn check_warns_when_a_config_file_holding_a_secret_is_readable_by_others() {
    let env = TestEnv::new();
    let config = env.config_file();
    let check = |mode: u32, gid: u32| {
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&config, None, Some(gid)).unwrap();
        let out = env.run("check", &["--reopen", "none"]);
        // A warning, not a failure: the exit code is that of the checks.
        env.assert_exit(&out, 0);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("WARN"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Without a secret in it, its mode is nobody's business here.
    assert_eq!(check(0o644, 0), Vec::<String>::new());

    // A webhook that answers: the check of the webhook passes, the warning is the only news.
    let hook = Webhook::start(Answer::Ok);
    env.set_notify(&hook.url(), "");
    let warned = check(0o644, 0);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(
        warned[0],
        format!(
            "WARN  config file {c}: it holds notify, a secret, and every local user can read it \
             (mode 0644); run `chmod o-r {c}`",
            c = config.display()
        )
    );
    let warned = check(0o640, LOG_GID);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains(&format!(
            "the members of group {LOG_GID} can read it (mode 0640); run `chgrp root"
        )),
        "{warned:?}"
    );
    // The packaged mode and owner: 0640 root:root.
    assert_eq!(check(0o640, 0), Vec::<String>::new());
}
