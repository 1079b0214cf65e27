//! A half-dead `watch` is worse than a dead one: a panic in any of its threads ends the
//! process with the reason in its log, syslog-ng starts a new one, and that one ships the
//! incident the dead one had open. The panics are forced through `FASTTRACK_TEST_PANIC`, a
//! hook compiled into debug builds only (`src/crash.rs`).

use crate::util::webhook::{Answer, Webhook};
use crate::util::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn burst(sng: &mut SyslogNg, seq: &mut u64, n: u64) {
    for _ in 0..n {
        sng.send(&docker_line(*seq, 502));
        *seq += 1;
    }
}

/// One forced panic in `thread`, under a real syslog-ng.
fn panic_in(thread: &str) {
    let env = TestEnv::new();
    let hook = Webhook::start(Answer::Ok);
    if thread == "notify" {
        env.set_notify(&hook.url(), "notify-format = \"json\"\n");
    }
    let mut sng = SyslogNg::start_with(
        &env,
        Some(&["--quiet", "1s"]),
        None,
        &[("FASTTRACK_TEST_PANIC", thread)],
    );
    let first = sng.watch_pid().expect("watch runs");
    let mut seq = 0;
    burst(&mut sng, &mut seq, 20);
    // The process ends, whole: no thread is left running without the others.
    env.wait_for(
        &format!("watch to exit after a panic in {thread}"),
        WAIT,
        || !std::path::Path::new(&format!("/proc/{first}")).exists(),
    );
    let log = std::fs::read_to_string(env.log_file()).unwrap_or_default();
    assert!(
        log.contains("panicked") && log.contains(&format!("FASTTRACK_TEST_PANIC={thread}")),
        "the reason is not in the log:\n{log}"
    );
    assert!(log.contains("exiting (status 70)"), "{log}");
    // syslog-ng starts a new watch, which ships the incident.
    env.wait_for("syslog-ng to start a new watch", WAIT, || {
        sng.watch_pid().is_some_and(|p| p != first)
    });
    env.wait_for("the incident to be shipped", WAIT, || {
        !env.shipped().is_empty()
    });
    if thread == "notify" {
        env.wait_for("the notification", WAIT, || {
            !hook.accepted_json().is_empty()
        });
    }
    // Nothing pending, every line exactly once.
    env.wait_for("nothing pending", WAIT, || {
        env.run("status", &[]).status.code() == Some(0)
    });
    env.expect_every_line_once(seq);
    // The new watch goes on working: a second burst is fast-tracked too.
    burst(&mut sng, &mut seq, 5);
    env.wait_for("the second incident", WAIT, || env.shipped().len() >= 2);
    env.expect_every_line_once(seq);
    drop(sng);
}

#[test]
fn a_panic_in_the_stdin_reader_ends_watch_and_the_next_one_ships_the_incident() {
    panic_in("stdin");
}

#[test]
fn a_panic_in_the_digester_ends_watch_and_the_next_one_ships_the_incident() {
    panic_in("digest");
}

#[test]
fn a_panic_in_the_main_loop_ends_watch_and_the_next_one_ships_the_incident() {
    panic_in("main");
}

#[test]
fn a_panic_in_a_cycle_ends_watch_and_the_next_one_ships_the_incident() {
    panic_in("cycle");
}

#[test]
fn a_panic_in_the_notifier_ends_watch_and_the_next_one_notifies() {
    panic_in("notify");
}
