//! The command line contract: exit codes, configuration errors, status, --keep,
//! refusing hostile files, suffixes when the clock goes back.

use crate::util::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_log(env: &TestEnv, from: u64, to: u64) {
    let text: String = (from..to).map(|s| docker_line(s, 200)).collect();
    std::fs::write(env.log(), text).unwrap();
}

#[test]
fn bad_configuration_exits_2_and_names_the_setting() {
    let env = TestEnv::new();
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (
            vec!["--quiet", "soon"],
            None,
            "--quiet \"soon\" is not a duration",
        ),
        (vec!["--keep=-1"], None, "--keep \"-1\" is not valid"),
        (
            vec!["--dest", "s3:/x"],
            None,
            "is not a URL fasttrack knows",
        ),
        (vec![], Some("quite = \"5s\"\n"), "unknown field `quite`"),
        (vec![], Some("keep = \"many\"\n"), "keep"),
    ];
    for (args, file, expected) in cases {
        std::fs::write(env.path().join("fasttrack.toml"), file.unwrap_or("")).unwrap();
        let sub = if args.first() == Some(&"--quiet") {
            "watch"
        } else {
            "rotate"
        };
        let out = env.run(sub, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} {file:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(expected),
            "{args:?} {file:?}: {}",
            stderr(&out)
        );
    }
    std::fs::write(env.path().join("fasttrack.toml"), "").unwrap();

    // A value from the environment is named by its variable.
    let out = env
        .fasttrack("rotate", &[])
        .env("FASTTRACK_COMPRESSION_LEVEL", "11")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("FASTTRACK_COMPRESSION_LEVEL \"11\""),
        "{}",
        stderr(&out)
    );

    // ... `--match` too (its field is `match_`, which once named it `--match-`).
    let out = env
        .fasttrack("digest", &["/dev/null"])
        .env("FASTTRACK_MATCH", "(")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("FASTTRACK_MATCH \"(\" is not a valid regular expression"),
        "{}",
        stderr(&out)
    );

    // A missing explicit config file is an error that names it.
    let out = std::process::Command::new(BIN)
        .args(["rotate", "-c", "/nonexistent/fasttrack.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/fasttrack.toml"),
        "{}",
        stderr(&out)
    );

    // No destination anywhere.
    let out = std::process::Command::new(BIN)
        .args(["rotate", "-c"])
        .arg(env.path().join("fasttrack.toml"))
        .arg("--state-dir")
        .arg(env.state())
        .env_remove("FASTTRACK_DEST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no destination configured"),
        "{}",
        stderr(&out)
    );

    // Usage errors are 2 as well, and nothing was touched.
    let out = env.run("rotate", &["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!env.state().exists());
}

#[test]
fn config_file_values_apply_and_flags_win() {
    let env = TestEnv::new();
    write_log(&env, 0, 10);
    let toml = format!(
        "log = \"{}\"\nkeep = 0\ncompression-level = 9\nreopen = \"none\"\n",
        env.path().join("elsewhere.log").display()
    );
    std::fs::write(env.path().join("fasttrack.toml"), toml).unwrap();
    // --log from the command line beats the file's log; keep = 0 from the file applies.
    let out = env.run("rotate", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.shipped().len(), 1);
    let local_gz = env.local_gz_names().len();
    assert_eq!(local_gz, 0, "keep = 0 removes the shipped local copy");

    // The environment beats the file: FASTTRACK_KEEP=5 keeps the next one.
    write_log(&env, 10, 20);
    let out = env
        .fasttrack("rotate", &[])
        .env("FASTTRACK_KEEP", "5")
        .output()
        .unwrap();
    env.assert_exit(&out, 0);
    assert_eq!(env.local_gz_names().len(), 1);
    assert_exactly_once_in_order(&env, 20);
}

#[test]
fn an_unreachable_destination_exits_3_keeps_the_file_and_upload_ships_it_later() {
    let env = TestEnv::new();
    write_log(&env, 0, 10);
    let missing = env.path().join("not-mounted");
    let dest = format!("file://{}", missing.display());
    let out = env.run("rotate", &["--reopen", "none", "--dest", &dest]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not exist; create it"),
        "{}",
        stderr(&out)
    );

    let status = env.run("status", &["--dest", &dest]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(3), "{text}");
    assert!(
        text.contains("PENDING: compressed, not shipped yet"),
        "{text}"
    );
    assert!(
        text.contains("last error") && text.contains("not-mounted"),
        "{text}"
    );

    std::fs::create_dir(&missing).unwrap();
    let out = env.run("upload", &["--reopen", "none", "--dest", &dest]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // the log and its digest
    let mut shipped: Vec<String> = std::fs::read_dir(missing.join(HOST))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    shipped.sort();
    assert_eq!(shipped.len(), 2, "{shipped:?}");
    assert!(shipped[0].ends_with(".gz") && shipped[1] == shipped[0].replace(".gz", ".json"));
    let status = env.run("status", &["--dest", &dest]);
    assert_eq!(status.status.code(), Some(0));
}

#[test]
fn keep_prunes_only_shipped_files() {
    let env = TestEnv::new();
    for round in 0..4 {
        write_log(&env, round * 10, round * 10 + 10);
        let out = env.run("rotate", &["--reopen", "none", "--keep", "2"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert_eq!(env.shipped().len(), 4);
    let shipped = env.shipped_names();
    assert_eq!(env.local_gz_names(), shipped[2..].to_vec());
    assert_exactly_once_in_order(&env, 40);

    // An unshipped file is never pruned, whatever --keep says.
    write_log(&env, 40, 50);
    let missing = format!("file://{}", env.path().join("gone").display());
    let out = env.run(
        "rotate",
        &["--reopen", "none", "--keep", "0", "--dest", &missing],
    );
    assert_eq!(out.status.code(), Some(3));
    let local = env.local_gz_names();
    assert_eq!(
        local.len(),
        1,
        "only the unshipped file is left\n{}",
        env.dump()
    );
    assert!(!shipped.contains(&local[0]), "{}", env.dump());
}

#[test]
fn suffixes_keep_increasing_when_mtimes_collide_or_go_back() {
    let env = TestEnv::new();
    for (round, date) in [
        "2030-01-01 00:00:00",
        "2030-01-01 00:00:00",
        "2020-05-05",
        "@0",
    ]
    .iter()
    .enumerate()
    {
        write_log(&env, round as u64 * 10, round as u64 * 10 + 10);
        let touched = std::process::Command::new("touch")
            .args(["-d", date])
            .arg(env.log())
            .status()
            .unwrap();
        assert!(touched.success());
        let out = env.run("rotate", &["--reopen", "none"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let names = env.shipped_names();
    assert_eq!(
        names,
        [
            "docker.log-1893456000.gz",
            "docker.log-1893456001.gz",
            "docker.log-1893456002.gz",
            "docker.log-1893456003.gz"
        ]
    );
    assert_exactly_once_in_order(&env, 40);
}

#[test]
fn status_reports_an_untouched_host_and_exits_0() {
    let env = TestEnv::new();
    let out = env.run("status", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("not created yet"), "{text}");
    assert!(text.contains("rotated files  none"), "{text}");
    assert!(!env.state().exists(), "status never creates anything");
}

#[test]
fn watch_that_cannot_start_under_syslog_ng_logs_why_and_does_not_spin() {
    // syslog-ng restarts a child that exits at once; with stdin a pipe, a failing watch keeps
    // draining it for a while and writes the reason to its log file (stderr is /dev/null there).
    let env = TestEnv::new();
    let started = std::time::Instant::now();
    let mut bad_value = env.spawn_watch(&["--quiet", "soon"]);
    let mut bad_flag = env.spawn_watch(&["--no-such-flag"]);
    assert_eq!(bad_value.wait().unwrap().code(), Some(2));
    assert_eq!(bad_flag.wait().unwrap().code(), Some(2));
    assert!(started.elapsed() >= std::time::Duration::from_secs(5));
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    assert!(log.contains("--quiet \"soon\" is not a duration"), "{log}");
    assert!(log.contains("cannot start `fasttrack watch`"), "{log}");
}

#[test]
fn check_a_directory_destination() {
    let env = TestEnv::new();
    let out = env.run("check", &["--reopen", "none"]);
    env.assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OK    test write and remove"), "{text}");

    let missing = format!("file://{}", env.path().join("unmounted").display());
    let out = env.run("check", &["--reopen", "none", "--dest", &missing]);
    env.assert_exit(&out, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL  directory") && text.contains("fix --dest"),
        "{text}"
    );

    // syslog-ng is not running here: the reopen methods are reported as unusable.
    let out = env.run("check", &[]);
    env.assert_exit(&out, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL  syslog-ng control socket"), "{text}");
}

/// A stdout whose reader has gone away, as under `| head -1`: writes fail with EPIPE (the
/// Rust runtime ignores SIGPIPE, and fasttrack keeps it so: src/output.rs).
fn closed_pipe() -> std::process::Stdio {
    let (read, write) = nix::unistd::pipe().expect("a pipe");
    drop(read);
    std::process::Stdio::from(write)
}

fn dev_full() -> std::process::Stdio {
    std::process::Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full"),
    )
}

#[test]
fn a_reader_that_goes_away_stops_the_output_quietly_and_the_work_still_counts() {
    let env = TestEnv::new();
    write_log(&env, 0, 10);
    let log = env.log().display().to_string();
    for (sub, args) in [
        ("digest", vec![log.as_str()]),
        ("status", vec![]),
        ("check", vec![]),
        ("--help", vec![]),
    ] {
        let out = env
            .fasttrack(sub, &args)
            .stdout(closed_pipe())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{sub}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{sub}");
    }
    // rotate's report cannot be printed, but it rotated and shipped: its exit code says so.
    let out = env
        .fasttrack("rotate", &["--reopen", "none"])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    env.assert_exit(&out, 0);
    assert!(!stderr(&out).contains("fasttrack:"), "{}", stderr(&out));
    assert_exactly_once_in_order(&env, 10);
    assert_eq!(env.shipped_names().len(), 1);
}

#[test]
fn a_full_disk_under_stdout_is_one_error_and_never_a_panic() {
    let env = TestEnv::new();
    write_log(&env, 0, 10);
    // The issue-18 case: a cron job whose output goes to a full disk. The work is done, the
    // report cannot be written: exit 1 with one message, no backtrace.
    let out = env
        .fasttrack("rotate", &["--reopen", "none"])
        .stdout(dev_full())
        .output()
        .unwrap();
    env.assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("fasttrack: cannot write to stdout: No space left on device"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(std::fs::read_to_string(env.log_file())
        .unwrap()
        .contains("cannot write to stdout"));
    assert_exactly_once_in_order(&env, 10);
    assert_eq!(env.shipped_names().len(), 1);
    let sample = env.path().join("sample.log");
    std::fs::write(&sample, docker_line(0, 502)).unwrap();
    let sample = sample.display().to_string();
    for (sub, args) in [
        ("digest", vec![sample.as_str()]),
        ("status", vec![]),
        ("--help", vec![]),
    ] {
        let out = env
            .fasttrack(sub, &args)
            .stdout(dev_full())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{sub}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("fasttrack: cannot write to stdout"),
            "{sub}: {}",
            stderr(&out)
        );
    }
}
