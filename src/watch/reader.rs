//! `watch`'s stdin reader: drains the pipe whatever else happens, classifies every line and
//! tells the loop when incident lines arrive.
//!
//! syslog-ng never blocks on the pipe: it drops messages once the pipe and its queue are full
//! (docs/syslog-ng.md), so the reader never waits for anything but stdin. Memory is bounded:
//! at most one line (cut at 64 KiB) is carried between reads.

use crate::config::IncidentConfig;
use crate::digest::stream::{self, LineAligner, Offer, StreamDigester};
use crate::digest::StreamCounts;
use anyhow::{Context, Result};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

const READ_CHUNK: usize = 64 * 1024;

/// What the reader tells the loop.
pub enum Input {
    /// Incident lines arrived.
    Activity,
    Eof,
    /// The reader cannot go on (a read error, the digester gone): `watch` stops and exits
    /// non-zero, so that syslog-ng starts a whole new one.
    Fatal(String),
}

/// What `watch`'s reader has counted since it started.
#[derive(Debug, Default)]
pub struct ReaderCounts {
    /// Incident lines: a 5xx, or no status found ([`crate::classify`]).
    pub incident: AtomicU64,
    /// Lines syslog-ng sent whose status is not 5xx.
    pub not_5xx: AtomicU64,
    /// Lines snoozed by `--ignore`.
    pub ignored: AtomicU64,
}

impl ReaderCounts {
    fn add(&self, c: &StreamCounts) {
        self.incident.fetch_add(c.incident, Ordering::Relaxed);
        self.not_5xx.fetch_add(c.not_5xx, Ordering::Relaxed);
        self.ignored.fetch_add(c.ignored, Ordering::Relaxed);
    }
}

/// Reads stdin, classifies every line (the quiet period depends on each one: a `200` with a
/// 512-byte body restarts nothing), signals activity when a run held an incident line and
/// hands the run to the digester, without ever waiting on either.
pub fn spawn_reader(
    state_dir: PathBuf,
    tx: mpsc::Sender<Input>,
    counted: Arc<Notify>,
    counts: Arc<ReaderCounts>,
    mut digester: StreamDigester,
    rules: IncidentConfig,
) -> Result<()> {
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; READ_CHUNK];
            let mut aligner = LineAligner::default();
            let mut hand_on = |run: Vec<u8>| -> bool {
                let c = stream::count_lines(&rules, &run);
                counts.add(&c);
                if c.incident > 0 {
                    crate::crash::test_panic_point("stdin", &state_dir);
                }
                if digester.offer(run, c) == Offer::Gone {
                    return false;
                }
                if c.incident > 0 {
                    // A full channel already holds an activity notice: dropping this one loses nothing.
                    let _ = tx.try_send(Input::Activity);
                } else if c.not_5xx + c.ignored > 0 {
                    // Only lines that are no incident lines: the digest counting them is
                    // saved, so that `status` shows a filter that lets them through.
                    counted.notify_one();
                }
                true
            };
            let digester_gone = || Input::Fatal("the digest thread is gone".to_string());
            let end = loop {
                match stdin.read(&mut buf) {
                    Ok(0) => {
                        let last = aligner.finish();
                        break match last.map_or(true, &mut hand_on) {
                            true => Input::Eof,
                            false => digester_gone(),
                        };
                    }
                    Ok(n) => {
                        if let Some(run) = aligner.push(&buf[..n]) {
                            if !hand_on(run) {
                                break digester_gone();
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Input::Fatal(format!("cannot read stdin: {e}")),
                }
            };
            let _ = tx.blocking_send(end);
        })
        .context("cannot start the stdin reader thread")?;
    Ok(())
}

/// When `watch` cannot start under syslog-ng (stdin is a pipe), syslog-ng restarts it at
/// once and would loop tightly (docs/syslog-ng.md): keep draining stdin for a while
/// before exiting so that the error is logged every few seconds, not thousands of times.
pub fn hold_before_failing() {
    let stdin_is_pipe = nix::sys::stat::fstat(std::io::stdin())
        .map(|st| {
            let kind = nix::sys::stat::SFlag::S_IFMT.bits() & st.st_mode;
            kind == nix::sys::stat::SFlag::S_IFIFO.bits()
        })
        .unwrap_or(false);
    if !stdin_is_pipe {
        return;
    }
    let _ = std::thread::Builder::new().spawn(|| {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    });
    std::thread::sleep(Duration::from_secs(10));
}
