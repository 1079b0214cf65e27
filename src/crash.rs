//! A panic in any thread ends the whole process, with its reason logged.
//!
//! `watch` runs a stdin reader, a digester, a notifier, the async loop and cycles on
//! blocking threads. A thread that dies alone leaves a half-dead process: syslog-ng's pipe
//! is no longer drained (syslog-ng then drops this destination's messages), the quiet
//! period never ends, and nothing restarts `watch` because it has not exited. A process that
//! exits is restarted by syslog-ng at once and picks up the persisted incident
//! (docs/syslog-ng.md), so a panic anywhere is turned into an exit.
//!
//! A panic hook, whatever the panic strategy: the hook writes the reason (thread, message,
//! place) to fasttrack's log file first, then exits with [`crate::exit::PANIC`], which
//! syslog-ng treats like any other exit (never 127). The release build's `panic = "abort"`
//! (Cargo.toml, for its size) is never reached: the hook runs first and exits, where an abort
//! would raise SIGABRT and dump a core of a process holding log lines, with no word in
//! fasttrack's own log.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where the hook writes the reason, once the log file is known.
static LOG_FILE: OnceLock<PathBuf> = OnceLock::new();
/// `watch`'s state dir: a panic there marks an incident open (see [`mark_incident_on_panic`]).
static WATCH_STATE: OnceLock<PathBuf> = OnceLock::new();

/// Makes a panic in any thread log its reason and end the process.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        let line = format!(
            "fasttrack: internal error: thread '{name}' panicked{place}: {message}; exiting \
             (status {}) so that it is restarted whole: please report this",
            crate::exit::PANIC
        );
        // Written straight to the file, not through the logger: the panic may have struck
        // while the logger's lock was held.
        if let Some(path) = LOG_FILE.get() {
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(path) {
                let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                // One write, so that no other thread's line lands inside this one.
                let _ = f.write_all(format!("{stamp} ERROR {line}\n").as_bytes());
            }
        }
        let _ = writeln!(std::io::stderr(), "{line}");
        if let Some(dir) = WATCH_STATE.get() {
            let state = crate::state::StateDir::existing(dir);
            if state.incident().is_none() {
                let _ = state.mark_incident(&crate::state::now_rfc3339());
            }
        }
        std::process::exit(i32::from(crate::exit::PANIC));
    }));
}

/// Makes a panic in `watch` mark an incident open in `state_dir`: lines it had read but not
/// yet acted on are gone with the process (syslog-ng does not send them again), so the next
/// `watch` fast-tracks the live log after its quiet period. At worst that is one rotation
/// too many, never an incident missed.
pub fn mark_incident_on_panic(state_dir: PathBuf) {
    let _ = WATCH_STATE.set(state_dir);
}

/// Called once the log file is open.
pub fn log_to(path: PathBuf) {
    let _ = LOG_FILE.set(path);
}

/// A test-only way to make one thread panic, compiled into debug builds only: with
/// `FASTTRACK_TEST_PANIC=<thread>` (stdin, digest, notify, cycle, main) that thread panics the
/// first time it reaches its check point, once per state dir (a marker file says it did),
/// so that the restarted process runs normally.
#[cfg(debug_assertions)]
pub fn test_panic_point(thread: &str, state_dir: &std::path::Path) {
    if std::env::var("FASTTRACK_TEST_PANIC").ok().as_deref() != Some(thread) {
        return;
    }
    let marker = state_dir.join(format!("test-panic-{thread}"));
    if std::fs::File::create_new(&marker).is_ok() {
        panic!("FASTTRACK_TEST_PANIC={thread}: a forced panic for the tests");
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn test_panic_point(_thread: &str, _state_dir: &std::path::Path) {}
