//! End to end against a real syslog-ng: the 5xx stream, rotations, reopen methods,
//! kill -9 and reload of `watch`, exact accounting of every line.

use crate::util::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// True when nothing is in flight: no open incident, nothing pending, lock free.
fn settled(env: &TestEnv) -> bool {
    if env.state().join("incident").exists() {
        return false;
    }
    let out = env.run("status", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.code() == Some(0) && text.contains("(idle)")
}

/// Sends normal traffic (and 5xx bursts every `burst_every` lines) from a thread until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(
        sng: Arc<Mutex<SyslogNg>>,
        first_seq: u64,
        burst_every: u64,
        pause: Duration,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(first_seq));
        let (s, n) = (stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            let mut seq = first_seq;
            while !s.load(Ordering::Relaxed) {
                let status = if burst_every > 0 && seq % burst_every < 5 {
                    502
                } else {
                    200
                };
                sng.lock().unwrap().send(&docker_line(seq, status));
                seq += 1;
                n.store(seq, Ordering::Relaxed);
                std::thread::sleep(pause);
            }
        });
        Traffic {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Stops and returns the next sequence number (= lines sent so far).
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.sent.load(Ordering::Relaxed)
    }
}

#[test]
fn a_burst_then_quiet_ships_exactly_one_gz() {
    let env = TestEnv::new();
    let mut sng = SyslogNg::start(&env, Some(&["--quiet", "1s"]));
    let mut seq = 0;
    for i in 0..200 {
        sng.send(&docker_line(seq, if i % 4 == 0 { 503 } else { 200 }));
        seq += 1;
    }
    env.wait_for("the burst to be shipped", WAIT, || env.shipped().len() == 1);
    // Normal traffic only from now on: no further fast-track.
    for _ in 0..20 {
        sng.send(&docker_line(seq, 200));
        seq += 1;
    }
    // syslog-ng has handled the 200s once they are in the live log; none opened an incident.
    env.wait_for("the normal traffic in the live log", WAIT, || {
        std::fs::read_to_string(env.log()).is_ok_and(|t| t.contains(&format!("seq={} ", seq - 1)))
    });
    env.wait_for("fasttrack to settle", WAIT, || settled(&env));
    assert_eq!(env.shipped().len(), 1, "{}", env.dump());
    assert_eq!(
        seqs(&gunzip_lines(&env.shipped()[0].body)),
        (0..200).collect::<Vec<_>>(),
        "the shipped log holds the whole burst\n{}",
        env.dump()
    );
    env.wait_for("the live log to hold the later lines", WAIT, || {
        seqs(&env.all_lines()).len() as u64 == seq
    });
    assert_exactly_once_in_order(&env, seq);
    // the local copy is kept (--keep 10) and is the same file
    let shipped = &env.shipped()[0];
    assert_eq!(
        std::fs::read(env.logs_dir().join(&shipped.name)).unwrap(),
        shipped.body
    );
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    assert!(log.contains("reopen via control socket"), "{log}");
}

#[test]
fn traffic_flowing_through_several_rotations_is_kept_exactly_once() {
    let env = TestEnv::new();
    let sng = Arc::new(Mutex::new(SyslogNg::start(
        &env,
        Some(&["--quiet", "300ms"]),
    )));
    // ~500 lines/s of normal traffic with a 5-line 5xx burst every 600 lines.
    let traffic = Traffic::start(sng.clone(), 0, 600, Duration::from_millis(2));
    env.wait_for("three rotations under traffic", WAIT, || {
        env.shipped().len() >= 3
    });
    let sent = traffic.stop();
    env.wait_for("fasttrack to settle", WAIT, || settled(&env));
    env.expect_every_line_once(sent);
}

#[test]
fn rotate_by_hand_while_watch_runs() {
    let env = TestEnv::new();
    let sng = Arc::new(Mutex::new(SyslogNg::start(&env, Some(&["--quiet", "1s"]))));
    let traffic = Traffic::start(sng.clone(), 0, 400, Duration::from_millis(2));
    let mut manual = 0;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(300));
        let out = env.run("rotate", &[]);
        env.assert_exit(&out, 0);
        if String::from_utf8_lossy(&out.stdout).contains("rotated") {
            manual += 1;
        }
    }
    let sent = traffic.stop();
    assert!(
        manual >= 4,
        "only {manual} manual rotations happened\n{}",
        env.dump()
    );
    env.wait_for("fasttrack to settle", WAIT, || settled(&env));
    env.expect_every_line_once(sent);
}

#[test]
fn each_reopen_method_works_with_a_real_syslog_ng() {
    let env = TestEnv::new();
    let sng = Arc::new(Mutex::new(SyslogNg::start(&env, None)));
    let traffic = Traffic::start(sng.clone(), 0, 0, Duration::from_millis(1));
    for (method, shown) in [
        ("socket", "control socket"),
        ("ctl", "syslog-ng-ctl reopen"),
        ("usr1", "SIGUSR1"),
        ("hup", "SIGHUP"),
        ("auto", "control socket"),
    ] {
        std::thread::sleep(Duration::from_millis(300));
        let before = std::fs::read_to_string(env.log_file())
            .unwrap_or_default()
            .len();
        let out = env.run("rotate", &["--reopen", method]);
        let log = std::fs::read_to_string(env.log_file()).unwrap_or_default();
        let new = &log[before..];
        env.assert_exit(&out, 0);
        assert!(
            new.contains(&format!("reopen via {shown}")),
            "--reopen {method}:\n{new}"
        );
        // syslog-ng let go of the file: seen, not guessed from a stable size.
        assert!(
            new.contains("closed: NoWriter") || new.contains("closed: CloseEvent"),
            "--reopen {method}:\n{new}"
        );
    }
    let sent = traffic.stop();
    assert_eq!(env.shipped().len(), 5, "{}", env.dump());
    env.expect_every_line_once(sent);
}

#[test]
fn kill_9_of_watch_is_restarted_by_syslog_ng_and_nothing_is_lost() {
    let env = TestEnv::new();
    let sng = Arc::new(Mutex::new(SyslogNg::start(&env, Some(&["--quiet", "1s"]))));
    let mut seq = 0;
    // An incident is open (marker persisted) when watch is killed: the next one fast-tracks it.
    {
        let mut s = sng.lock().unwrap();
        for _ in 0..20 {
            s.send(&docker_line(seq, 500));
            seq += 1;
        }
    }
    env.wait_for("the incident to be persisted", WAIT, || {
        env.state().join("incident").exists()
    });
    let first = sng.lock().unwrap().watch_pid().unwrap();
    signal(first, nix::sys::signal::Signal::SIGKILL);
    env.wait_for("syslog-ng to restart watch", WAIT, || {
        sng.lock().unwrap().watch_pid().is_some_and(|p| p != first)
    });
    env.wait_for("the killed watch's incident to be shipped", WAIT, || {
        env.shipped().len() == 1
    });

    // More kills in the middle of traffic and rotations.
    let traffic = Traffic::start(sng.clone(), seq, 300, Duration::from_millis(2));
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        if let Some(pid) = sng.lock().unwrap().watch_pid() {
            signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let sent = traffic.stop();
    env.wait_for("a watch to be running", WAIT, || {
        sng.lock().unwrap().watch_pid().is_some()
    });
    env.wait_for("fasttrack to settle", WAIT, || settled(&env));
    env.expect_every_line_once(sent);
    assert!(env.shipped().len() >= 2, "{}", env.dump());
}

#[test]
fn reload_terminates_watch_and_the_next_one_fast_tracks_the_open_incident() {
    let env = TestEnv::new();
    let mut sng = SyslogNg::start(&env, Some(&["--quiet", "3s"]));
    for seq in 0..10 {
        sng.send(&docker_line(seq, 504));
    }
    env.wait_for("the incident to be persisted", WAIT, || {
        env.state().join("incident").exists()
    });
    let first = sng.watch_pid().unwrap();
    sng.ctl(&env, &["reload"]);
    env.wait_for("a new watch after the reload", WAIT, || {
        sng.watch_pid().is_some_and(|p| p != first)
    });
    // The incident goes on under the new watch: its digest covers both halves.
    for seq in 10..15 {
        sng.send(&docker_line(seq, 503));
    }
    env.wait_for("the incident to be shipped", WAIT, || {
        env.shipped().len() == 1
    });
    env.wait_for("fasttrack to settle", WAIT, || settled(&env));
    assert_exactly_once_in_order(&env, 15);
    let name = env.shipped_names()[0].replace(".gz", ".json");
    let digest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.shipped_dir().join(&name)).unwrap()).unwrap();
    assert_eq!(digest["source"], "stream", "{digest:#}");
    assert_eq!(digest["lines"], 15, "{digest:#}");
    assert_eq!(
        digest["statuses"],
        serde_json::json!({"503": 5, "504": 10}),
        "{digest:#}"
    );
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    // syslog-ng closes the pipe and SIGTERMs the process group; whichever comes first stops it.
    assert!(
        log.contains("SIGTERM: stopping") || log.contains("stdin closed by syslog-ng"),
        "{log}"
    );
    assert!(log.contains("an incident is pending"), "{log}");
    assert!(log.contains("resuming the incident"), "{log}");
}

#[test]
fn a_crash_between_rename_and_reopen_is_completed_by_the_next_run() {
    let env = TestEnv::new();
    let sng = Arc::new(Mutex::new(SyslogNg::start(&env, None)));
    let traffic = Traffic::start(sng.clone(), 0, 0, Duration::from_millis(1));
    std::thread::sleep(Duration::from_millis(500));
    // What a crash right after step 4 leaves: the log renamed, syslog-ng still writing into it.
    std::fs::rename(env.log(), env.logs_dir().join("docker.log-1000")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = env.run("upload", &[]);
    env.assert_exit(&out, 0);
    std::thread::sleep(Duration::from_millis(300));
    let sent = traffic.stop();
    assert_eq!(env.shipped().len(), 1, "{}", env.dump());
    assert!(!env.logs_dir().join("docker.log-1000").exists());
    env.expect_every_line_once(sent);
}

#[test]
fn the_shipped_snippet_passes_syntax_only() {
    let env = TestEnv::new();
    let conf = env.path().join("snippet-only.conf");
    let program = format!("exec {BIN} watch -c /etc/fasttrack/fasttrack.toml");
    std::fs::write(
        &conf,
        format!(
            "@version: 3.38\n{}",
            crate::util::syslog_ng::shipped_snippet(&env, &program)
        ),
    )
    .unwrap();
    let out = std::process::Command::new("syslog-ng")
        .arg("--syntax-only")
        .arg("-f")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "syslog-ng --syntax-only: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn docker_default_tags_and_docker_program_names_both_reach_fasttrack() {
    let env = TestEnv::new();
    let mut sng = SyslogNg::start(&env, Some(&["--quiet", "500ms"]));
    // Docker's default tag is the container id: only the snippet's tagged socket catches it.
    sng.send_docker(
        &env,
        "<27>Nov 21 12:00:00 5790672ab6a0[812]: GET /checkout?seq=0 HTTP/1.1\" 502 157",
    );
    // A host that sets tag=docker/{{.Name}} and logs through another source: the article's filter.
    sng.send(&docker_line(1, 200));
    // Not Docker: neither in docker.log nor fast-tracked.
    sng.send("<14>Nov 21 12:00:00 nginx[42]: GET /x?seq=999 HTTP/1.1\" 500 1\n");
    env.wait_for("the incident to be shipped", WAIT, || {
        env.shipped().len() == 1
    });
    env.wait_for("fasttrack to settle", WAIT, || settled(&env));
    // Two sources: syslog-ng does not order them against each other.
    let mut found = seqs(&env.all_lines());
    found.sort();
    assert_eq!(found, [0, 1], "{}", env.dump());
    assert!(!env.all_lines().iter().any(|l| l.contains("nginx")));
}
