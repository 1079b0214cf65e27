//! The command line contract: exit codes, configuration errors, status, --keep,
//! refusing hostile files, suffixes when the clock goes back. Runs are stated with
//! [`Cmd`] (tests/util/cmd.rs): expected status and text, one message when they differ.

use crate::util::*;

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
        env.cmd(sub, &args).status(2).stderr_has(expected).run();
    }
    std::fs::write(env.path().join("fasttrack.toml"), "").unwrap();

    // A value from the environment is named by its variable.
    env.cmd("rotate", &[])
        .env("FASTTRACK_COMPRESSION_LEVEL", "11")
        .status(2)
        .stderr_has("FASTTRACK_COMPRESSION_LEVEL \"11\"")
        .run();

    // ... `--match` too (its field is `match_`, which once named it `--match-`).
    env.cmd("digest", &["/dev/null"])
        .env("FASTTRACK_MATCH", "(")
        .status(2)
        .stderr_has("FASTTRACK_MATCH \"(\" is not a valid regular expression")
        .run();

    // A missing explicit config file is an error that names it.
    let mut bare = std::process::Command::new(BIN);
    hermetic(&mut bare).args(["rotate", "-c", "/nonexistent/fasttrack.toml"]);
    Cmd::new(bare)
        .status(2)
        .stderr_has("/nonexistent/fasttrack.toml")
        .run();

    // No destination anywhere.
    let mut bare = std::process::Command::new(BIN);
    hermetic(&mut bare)
        .args(["rotate", "-c"])
        .arg(env.path().join("fasttrack.toml"))
        .arg("--state-dir")
        .arg(env.state());
    Cmd::new(bare)
        .status(2)
        .stderr_has("no destination configured")
        .run();

    // Usage errors are 2 as well, and nothing was touched.
    env.cmd("rotate", &["--no-such-flag"]).status(2).run();
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
    env.cmd("rotate", &[]).status(0).run_in(&env);
    assert_eq!(env.shipped().len(), 1);
    let local_gz = env.local_gz_names().len();
    assert_eq!(local_gz, 0, "keep = 0 removes the shipped local copy");

    // The environment beats the file: FASTTRACK_KEEP=5 keeps the next one.
    write_log(&env, 10, 20);
    env.cmd("rotate", &[])
        .env("FASTTRACK_KEEP", "5")
        .status(0)
        .run_in(&env);
    assert_eq!(env.local_gz_names().len(), 1);
    assert_exactly_once_in_order(&env, 20);
}

#[test]
fn an_unreachable_destination_exits_3_keeps_the_file_and_upload_ships_it_later() {
    let env = TestEnv::new();
    write_log(&env, 0, 10);
    let missing = env.path().join("not-mounted");
    let dest = format!("file://{}", missing.display());
    env.cmd("rotate", &["--reopen", "none", "--dest", &dest])
        .status(3)
        .stderr_has("does not exist; create it")
        .run();

    env.cmd("status", &["--dest", &dest])
        .status(3)
        .stdout_has("PENDING: compressed, not shipped yet")
        .stdout_has("last error")
        .stdout_has("not-mounted")
        .run();

    std::fs::create_dir(&missing).unwrap();
    env.cmd("upload", &["--reopen", "none", "--dest", &dest])
        .status(0)
        .run_in(&env);
    // the log and its digest
    let mut shipped: Vec<String> = std::fs::read_dir(missing.join(HOST))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    shipped.sort();
    assert_eq!(shipped.len(), 2, "{shipped:?}");
    assert!(shipped[0].ends_with(".gz") && shipped[1] == shipped[0].replace(".gz", ".json"));
    env.cmd("status", &["--dest", &dest]).status(0).run();
}

#[test]
fn keep_prunes_only_shipped_files() {
    let env = TestEnv::new();
    for round in 0..4 {
        write_log(&env, round * 10, round * 10 + 10);
        env.cmd("rotate", &["--reopen", "none", "--keep", "2"])
            .status(0)
            .run_in(&env);
    }
    assert_eq!(env.shipped().len(), 4);
    let shipped = env.shipped_names();
    assert_eq!(env.local_gz_names(), shipped[2..].to_vec());
    assert_exactly_once_in_order(&env, 40);

    // An unshipped file is never pruned, whatever --keep says.
    write_log(&env, 40, 50);
    let missing = format!("file://{}", env.path().join("gone").display());
    env.cmd(
        "rotate",
        &["--reopen", "none", "--keep", "0", "--dest", &missing],
    )
    .status(3)
    .run();
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
        env.cmd("rotate", &["--reopen", "none"])
            .status(0)
            .run_in(&env);
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
    env.cmd("status", &[])
        .status(0)
        .stdout_has("not created yet")
        .stdout_has("rotated files  none")
        .run();
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
    env.cmd("check", &["--reopen", "none"])
        .status(0)
        .stdout_has("OK    test write and remove")
        .run_in(&env);

    let missing = format!("file://{}", env.path().join("unmounted").display());
    env.cmd("check", &["--reopen", "none", "--dest", &missing])
        .status(1)
        .stdout_has("FAIL  directory")
        .stdout_has("fix --dest")
        .run();

    // syslog-ng is not running here: the reopen methods are reported as unusable.
    env.cmd("check", &[])
        .status(1)
        .stdout_has("FAIL  syslog-ng control socket")
        .run();
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
        let mut cmd = env.cmd(sub, &args).status(0);
        cmd.command().stdout(closed_pipe());
        let ran = cmd.run();
        assert_eq!(ran.stderr, "", "{sub}");
    }
    // rotate's report cannot be printed, but it rotated and shipped: its exit code says so.
    let mut cmd = env
        .cmd("rotate", &["--reopen", "none"])
        .status(0)
        .stderr_lacks("fasttrack:");
    cmd.command().stdout(closed_pipe());
    cmd.run_in(&env);
    assert_exactly_once_in_order(&env, 10);
    assert_eq!(env.shipped_names().len(), 1);
}

#[test]
fn a_full_disk_under_stdout_is_one_error_and_never_a_panic() {
    let env = TestEnv::new();
    write_log(&env, 0, 10);
    // The issue-18 case: a cron job whose output goes to a full disk. The work is done, the
    // report cannot be written: exit 1 with one message, no backtrace.
    let mut cmd = env
        .cmd("rotate", &["--reopen", "none"])
        .status(1)
        .stderr_has("fasttrack: cannot write to stdout: No space left on device")
        .stderr_lacks("panicked");
    cmd.command().stdout(dev_full());
    cmd.run_in(&env);
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
        let mut cmd = env
            .cmd(sub, &args)
            .status(1)
            .stderr_has("fasttrack: cannot write to stdout");
        cmd.command().stdout(dev_full());
        cmd.run();
    }
}
