//! What a crash leaves at each step is completed by the next run, with nothing shipped
//! twice or partially; bad input on stdin does not stop rotation or grow memory.

use crate::util::*;
use flate2::write::GzEncoder;
use std::io::Write;
use std::time::Duration;

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn body(from: u64, to: u64) -> String {
    (from..to)
        .map(|s| docker_line(s, 200).trim_start_matches("<14>").to_string())
        .collect()
}

#[test]
fn leftovers_of_a_crash_at_each_step_are_completed() {
    let env = TestEnv::new();
    let logs = env.logs_dir();
    // crash after the rename: a plain rotated file
    std::fs::write(logs.join("docker.log-100"), body(0, 10)).unwrap();
    // crash during compression: a partial .gz.part beside its plain file
    std::fs::write(logs.join("docker.log-101"), body(10, 20)).unwrap();
    std::fs::write(logs.join("docker.log-101.gz.part"), b"\x1f\x8b truncated").unwrap();
    // crash after compression, before shipping: an unshipped .gz
    std::fs::write(logs.join("docker.log-102.gz"), gz(body(20, 30).as_bytes())).unwrap();
    // crash between the .gz rename and the removal of the plain file
    std::fs::write(logs.join("docker.log-103"), body(30, 40)).unwrap();
    std::fs::write(logs.join("docker.log-103.gz"), gz(body(30, 40).as_bytes())).unwrap();
    // a crash while shipping left the object half copied under a temporary name
    std::fs::create_dir_all(env.shipped_dir()).unwrap();
    std::fs::write(env.shipped_dir().join(".docker.log-100.gz.part-1"), b"half").unwrap();
    // the live log, and a file that is not ours
    std::fs::write(env.log(), body(40, 45)).unwrap();
    std::fs::write(logs.join("docker.log.1"), b"not ours").unwrap();

    let out = env.run("upload", &["--reopen", "none"]);
    env.assert_exit(&out, 0);
    let names = env.shipped_names();
    assert_eq!(
        names,
        [
            "docker.log-100.gz",
            "docker.log-101.gz",
            "docker.log-102.gz",
            "docker.log-103.gz"
        ]
    );
    assert_exactly_once_in_order(&env, 45);
    for leftover in [
        "docker.log-100",
        "docker.log-101",
        "docker.log-101.gz.part",
        "docker.log-103",
    ] {
        assert!(
            !logs.join(leftover).exists(),
            "{leftover} left\n{}",
            env.dump()
        );
    }
    assert_eq!(
        std::fs::read(logs.join("docker.log.1")).unwrap(),
        b"not ours"
    );

    // A second run finds nothing to do and ships nothing again.
    let out = env.run("upload", &["--reopen", "none"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(env.shipped().len(), 4);
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
}

#[test]
fn a_lost_state_dir_does_not_ship_twice_under_another_name() {
    let env = TestEnv::new();
    std::fs::write(env.log(), body(0, 10)).unwrap();
    assert_eq!(
        env.run("rotate", &["--reopen", "none"]).status.code(),
        Some(0)
    );
    std::fs::remove_dir_all(env.state()).unwrap();
    let out = env.run("upload", &["--reopen", "none"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.shipped().len(), 1);
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    assert!(log.contains("already at the destination"), "{log}");
    // and the next rotation still gets a larger suffix than the files on disk
    std::fs::write(env.log(), body(10, 20)).unwrap();
    let old = std::process::Command::new("touch")
        .args(["-d", "2001-01-01"])
        .arg(env.log())
        .status()
        .unwrap();
    assert!(old.success());
    assert_eq!(
        env.run("rotate", &["--reopen", "none"]).status.code(),
        Some(0)
    );
    assert_eq!(env.shipped().len(), 2);
    assert_exactly_once_in_order(&env, 20);
}

#[test]
fn sigterm_persists_the_open_incident_for_the_next_watch() {
    let env = TestEnv::new();
    std::fs::write(env.log(), body(0, 5)).unwrap();
    let mut child = env.spawn_watch(&["--quiet", "60s", "--reopen", "none"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"GET / HTTP/1.1 500 1\n").unwrap();
    stdin.flush().unwrap();
    env.wait_for("the incident marker", Duration::from_secs(30), || {
        env.state().join("incident").exists()
    });
    signal(child.id(), nix::sys::signal::Signal::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(env.state().join("incident").exists());
    assert_eq!(env.shipped().len(), 0);

    // The next watch rotates after its own quiet period, without any new line.
    let mut next = env.spawn_watch(&["--quiet", "500ms", "--reopen", "none"]);
    env.wait_for(
        "the pending incident to be shipped",
        Duration::from_secs(30),
        || env.shipped().len() == 1,
    );
    env.wait_for("the incident to be closed", Duration::from_secs(30), || {
        !env.state().join("incident").exists()
    });
    drop(next.stdin.take());
    assert_eq!(next.wait().unwrap().code(), Some(0));
    assert_exactly_once_in_order(&env, 5);
}
