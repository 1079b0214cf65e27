//! `--metrics-file` (issue 14): what `rotate`, `upload` and `watch` write, that the counters
//! survive restarts, that `promtool` accepts the file and the shipped alert rules, and that a
//! real node_exporter serves the metrics.

use crate::util::prometheus::{packaging_dir, promtool, samples, NodeExporter};
use crate::util::*;
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

fn metrics_path(env: &TestEnv) -> PathBuf {
    let dir = env.path().join("textfile");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("fasttrack.prom")
}

fn read_metrics(env: &TestEnv, path: &std::path::Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), env.dump()));
    samples(&text)
}

/// Asserts the samples named in `want`, showing the whole file otherwise.
fn assert_samples(env: &TestEnv, got: &BTreeMap<String, f64>, want: &[(&str, f64)]) {
    for (key, value) in want {
        assert_eq!(
            got.get(*key),
            Some(value),
            "{key} in {got:#?}\n{}",
            env.dump()
        );
    }
}

fn write_log(env: &TestEnv, from: u64, to: u64) {
    let text: String = (from..to).map(|s| docker_line(s, 502)).collect();
    std::fs::write(env.log(), text).unwrap();
}

#[test]
fn rotate_and_upload_write_the_metrics_and_the_counters_survive_each_run() {
    let env = TestEnv::new();
    let path = metrics_path(&env);
    let metrics = path.display().to_string();
    write_log(&env, 0, 20);
    let out = env.run("rotate", &["--reopen", "none", "--metrics-file", &metrics]);
    env.assert_exit(&out, 0);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode, 0o644,
        "it holds no log content: readable by node_exporter"
    );
    let shipped: u64 = env.shipped().iter().map(|o| o.body.len() as u64).sum();
    let m = read_metrics(&env, &path);
    assert_samples(
        &env,
        &m,
        &[
            ("fasttrack_up", 0.0),
            ("fasttrack_rotations_total", 1.0),
            ("fasttrack_shipped_files_total", 1.0),
            ("fasttrack_shipped_bytes_total", shipped as f64),
            ("fasttrack_pending_files", 0.0),
            ("fasttrack_failures_total{kind=\"temporary\"}", 0.0),
            ("fasttrack_incident_open", 0.0),
        ],
    );
    let now = chrono::Utc::now().timestamp() as f64;
    for key in [
        "fasttrack_last_rotation_timestamp_seconds",
        "fasttrack_last_success_timestamp_seconds",
    ] {
        assert!((now - m[key]).abs() < 60.0, "{key} = {}", m[key]);
    }
    promtool(
        env.path(),
        &["check", "metrics"],
        Some(&std::fs::read(&path).unwrap()),
    );

    // The destination is gone: the next rotation stays pending, a temporary failure.
    std::fs::rename(env.out(), env.path().join("out.away")).unwrap();
    write_log(&env, 20, 40);
    let out = env.run("rotate", &["--reopen", "none", "--metrics-file", &metrics]);
    env.assert_exit(&out, 3);
    let m = read_metrics(&env, &path);
    assert_samples(
        &env,
        &m,
        &[
            ("fasttrack_rotations_total", 2.0),
            ("fasttrack_shipped_files_total", 1.0),
            ("fasttrack_pending_files", 1.0),
            ("fasttrack_failures_total{kind=\"temporary\"}", 1.0),
        ],
    );
    let gz = env.local_gz_names();
    let pending_gz = env.logs_dir().join(gz.last().unwrap());
    let gz_bytes = std::fs::metadata(&pending_gz).unwrap().len() as f64;
    assert_eq!(m["fasttrack_pending_bytes"], gz_bytes);

    // Back: `upload` ships it, and the totals go on from where they were.
    std::fs::rename(env.path().join("out.away"), env.out()).unwrap();
    let out = env.run("upload", &["--metrics-file", &metrics]);
    env.assert_exit(&out, 0);
    let m = read_metrics(&env, &path);
    assert_samples(
        &env,
        &m,
        &[
            ("fasttrack_rotations_total", 2.0),
            ("fasttrack_shipped_files_total", 2.0),
            ("fasttrack_pending_files", 0.0),
            ("fasttrack_pending_bytes", 0.0),
            ("fasttrack_failures_total{kind=\"temporary\"}", 1.0),
        ],
    );
}

#[test]
fn a_metrics_file_in_a_missing_directory_is_named_with_what_to_do() {
    let env = TestEnv::new();
    write_log(&env, 0, 5);
    let missing = env.path().join("no-such-dir/fasttrack.prom");
    let out = env.run(
        "rotate",
        &[
            "--reopen",
            "none",
            "--metrics-file",
            &missing.display().to_string(),
        ],
    );
    // The metrics never stop a rotation: it is shipped, and the problem is logged.
    env.assert_exit(&out, 0);
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    let want = format!(
        "cannot write the metrics file; create {} (writable by fasttrack) or fix --metrics-file",
        env.path().join("no-such-dir").display()
    );
    assert!(log.contains(&want), "{log}");
}

/// Sends `lines` to a running watch.
fn send(watch: &mut std::process::Child, lines: &str) {
    let stdin = watch.stdin.as_mut().unwrap();
    stdin.write_all(lines.as_bytes()).unwrap();
    stdin.flush().unwrap();
}

#[test]
fn watch_is_up_counts_its_lines_across_restarts_and_is_down_once_stopped() {
    let env = TestEnv::new();
    let path = metrics_path(&env);
    let metrics = path.display().to_string();
    let args = [
        "--quiet",
        "300ms",
        "--reopen",
        "none",
        "--metrics-file",
        &metrics,
    ];
    let mut watch = env.spawn_watch(&args);
    env.wait_for(
        "watch to write fasttrack_up 1",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&path)
                .is_ok_and(|t| samples(&t).get("fasttrack_up") == Some(&1.0))
        },
    );

    // Five 5xx lines and three 200s through the pipe; the log (syslog-ng's job) written here.
    write_log(&env, 0, 5);
    let ok: String = (5..8).map(|s| docker_line(s, 200)).collect();
    let bad: String = (0..5).map(|s| docker_line(s, 502)).collect();
    send(&mut watch, &format!("{ok}{bad}"));
    env.wait_for(
        "the rotation in the metrics",
        Duration::from_secs(20),
        || {
            let m = samples(&std::fs::read_to_string(&path).unwrap_or_default());
            m.get("fasttrack_shipped_files_total") == Some(&1.0)
                && m.get("fasttrack_lines_read_total") == Some(&8.0)
        },
    );
    let m = read_metrics(&env, &path);
    assert_samples(
        &env,
        &m,
        &[
            ("fasttrack_up", 1.0),
            ("fasttrack_rotations_total", 1.0),
            ("fasttrack_lines_not_5xx_total", 3.0),
            ("fasttrack_incident_open", 0.0),
        ],
    );
    // `rotate` by hand beside the running watch: the file it writes still says watch is up.
    let out = env.run("rotate", &["--reopen", "none", "--metrics-file", &metrics]);
    env.assert_exit(&out, 0);
    assert_samples(&env, &read_metrics(&env, &path), &[("fasttrack_up", 1.0)]);
    signal(watch.id(), Signal::SIGTERM);
    assert_eq!(watch.wait().unwrap().code(), Some(0), "{}", env.dump());
    let m = read_metrics(&env, &path);
    assert_samples(
        &env,
        &m,
        &[("fasttrack_up", 0.0), ("fasttrack_lines_read_total", 8.0)],
    );

    // A new watch (syslog-ng's reload) goes on counting from there; closing stdin stops it.
    let mut watch = env.spawn_watch(&args);
    send(
        &mut watch,
        &(8..10).map(|s| docker_line(s, 200)).collect::<String>(),
    );
    env.wait_for("the new watch to be up", Duration::from_secs(10), || {
        let m = samples(&std::fs::read_to_string(&path).unwrap_or_default());
        m.get("fasttrack_up") == Some(&1.0)
    });
    drop(watch.stdin.take());
    assert_eq!(watch.wait().unwrap().code(), Some(0), "{}", env.dump());
    let text = std::fs::read_to_string(&path).unwrap();
    let m = samples(&text);
    assert_samples(
        &env,
        &m,
        &[
            ("fasttrack_up", 0.0),
            ("fasttrack_lines_read_total", 10.0),
            ("fasttrack_lines_not_5xx_total", 5.0),
            ("fasttrack_rotations_total", 1.0),
        ],
    );
    promtool(env.path(), &["check", "metrics"], Some(text.as_bytes()));
}

#[test]
fn a_watch_that_stops_on_a_fatal_error_writes_fasttrack_up_0() {
    let env = TestEnv::new();
    let path = metrics_path(&env);
    // What a SIGKILLed watch leaves behind (the stale-file alert is for that case).
    std::fs::write(&path, "fasttrack_up 1\n").unwrap();
    // stdin is a directory: the first read fails, which is fatal (src/watch/mod.rs).
    let stdin = std::fs::File::open(env.path()).unwrap();
    let out = env
        .fasttrack(
            "watch",
            &[
                "--reopen",
                "none",
                "--metrics-file",
                &path.display().to_string(),
            ],
        )
        .stdin(stdin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", env.dump());
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    assert!(log.contains("watch stopped: cannot read stdin"), "{log}");
    let m = read_metrics(&env, &path);
    assert_samples(
        &env,
        &m,
        &[("fasttrack_up", 0.0), ("fasttrack_rotations_total", 0.0)],
    );
}

#[test]
fn node_exporter_serves_fasttracks_metrics_after_a_real_rotation() {
    let env = TestEnv::new();
    let path = metrics_path(&env);
    let exporter = NodeExporter::start(
        path.parent().unwrap(),
        &env.path().join("node-exporter.log"),
    );
    write_log(&env, 0, 20);
    let out = env.run(
        "rotate",
        &[
            "--reopen",
            "none",
            "--metrics-file",
            &path.display().to_string(),
        ],
    );
    env.assert_exit(&out, 0);
    let body = exporter
        .get("/metrics")
        .unwrap_or_else(|e| panic!("{e}\n{}", exporter.output()));
    let m = samples(&body);
    assert_eq!(
        m.get("node_textfile_scrape_error"),
        Some(&0.0),
        "node_exporter could not read the file:\n{body}\n{}",
        exporter.output()
    );
    for (key, value) in [
        ("fasttrack_rotations_total", 1.0),
        ("fasttrack_shipped_files_total", 1.0),
        ("fasttrack_up", 0.0),
        ("fasttrack_failures_total{kind=\"permanent\"}", 0.0),
    ] {
        assert_eq!(m.get(key), Some(&value), "{key} in\n{body}");
    }
    let version = format!(
        "fasttrack_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(m.get(&version), Some(&1.0), "{body}");
    // The series the stale-file alert (packaging/fasttrack.rules.yml) reads.
    let mtime = m
        .iter()
        .find(|(k, _)| {
            k.starts_with("node_textfile_mtime_seconds{") && k.contains("fasttrack.prom")
        })
        .unwrap_or_else(|| panic!("no node_textfile_mtime_seconds for fasttrack.prom in\n{body}"));
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - mtime.1).abs() < 60.0, "{mtime:?}");
}

#[test]
fn the_shipped_alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = packaging_dir();
    let checked = promtool(&dir, &["check", "rules", "fasttrack.rules.yml"], None);
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(text.contains("SUCCESS: 6 rules found"), "{text}");
    let tested = promtool(&dir, &["test", "rules", "fasttrack.rules.test.yml"], None);
    let text = String::from_utf8_lossy(&tested.stdout);
    assert!(text.contains("SUCCESS"), "{text}");
}
