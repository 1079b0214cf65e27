//! `watch`'s stream digest: runs of whole lines from the reader, counted by it and digested
//! on a thread of its own, and the open incident's digest saved across restarts.

use super::scan::{line_kind, LineKind, LINE_MAX};
use crate::config::IncidentConfig;
use crate::digest::{Builder, Digest, StreamCounts};
use crate::fsutil::{atomic_write, FileAccess};
use anyhow::{Context, Result};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counts the lines of a run of whole lines from syslog-ng (every line is classified: the
/// quiet period depends on it). No line is kept.
pub fn count_lines(rules: &IncidentConfig, lines: &[u8]) -> StreamCounts {
    let mut counts = StreamCounts::default();
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', lines) {
        match line_kind(rules, &lines[start..nl]) {
            LineKind::Incident(_) => counts.incident += 1,
            LineKind::NotServerError => counts.not_5xx += 1,
            LineKind::Ignored => counts.ignored += 1,
        }
        start = nl + 1;
    }
    counts
}

/// Cuts what stdin delivers into runs of whole lines, each ending with a newline, keeping a
/// line begun in one read for the next. A line longer than [`LINE_MAX`] is cut there (the
/// rest of it, up to its newline, is dropped): memory stays bounded whatever arrives.
#[derive(Debug, Default)]
pub struct LineAligner {
    carry: Vec<u8>,
    overlong: bool,
}

impl LineAligner {
    /// The whole lines `data` completes, or `None` when it completes none.
    pub fn push(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let Some(last) = memchr::memrchr(b'\n', data) else {
            self.keep(data);
            return None;
        };
        // Where the bytes that join the carried line start: past an overlong line's cut.
        let from = if self.overlong {
            memchr::memchr(b'\n', data).unwrap_or(last)
        } else {
            0
        };
        let mut out = Vec::with_capacity(self.carry.len() + last + 1 - from);
        out.append(&mut self.carry);
        out.extend_from_slice(&data[from..=last]);
        self.overlong = false;
        self.keep(&data[last + 1..]);
        Some(out)
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.overlong {
            return;
        }
        let room = LINE_MAX.saturating_sub(self.carry.len());
        if bytes.len() > room {
            self.overlong = true;
        }
        self.carry
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// At the end of the input: the last line if it had no newline (one is added).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        self.overlong = false;
        if self.carry.is_empty() {
            return None;
        }
        let mut last = std::mem::take(&mut self.carry);
        last.push(b'\n');
        Some(last)
    }
}

/// A persisted open incident: `clean` is false while `watch` runs, true once it has saved
/// its last state on the way out; a digest found unclean may miss the lines of its last
/// second, and is then replaced by a scan of the file at rotation.
#[derive(Debug, Serialize, Deserialize)]
struct Persisted {
    clean: bool,
    builder: Builder,
}

fn persisted_path(state_dir: &Path) -> PathBuf {
    state_dir.join("incident-digest.json")
}

/// Saves the open incident's digest of the live `log` (its examples are lines of it, so the
/// file is no more readable than the log).
pub fn save_open(state_dir: &Path, builder: &Builder, clean: bool, log: &Path) -> Result<()> {
    let p = Persisted {
        clean,
        builder: builder.clone(),
    };
    let bytes = serde_json::to_vec(&p).context("cannot serialise the open incident")?;
    atomic_write(
        &persisted_path(state_dir),
        &bytes,
        FileAccess::derived_from_path(log),
    )
}

/// The open incident's digest as `watch` last saved it (for `status`; read-only).
pub fn peek_open(state_dir: &Path) -> Option<Digest> {
    let bytes = std::fs::read(persisted_path(state_dir)).ok()?;
    let p: Persisted = serde_json::from_slice(&bytes).ok()?;
    Some(p.builder.digest("", 1))
}

/// The open incident's digest saved by an earlier `watch`, if it still describes the live
/// log (no rotation since). Otherwise a fresh one, marked inexact when lines may be missing.
pub fn load_open(state_dir: &Path, last_suffix: Option<u64>, incident_open: bool) -> Builder {
    let fresh = |exact: bool| {
        let mut b = Builder::new("stream");
        b.after_suffix = last_suffix;
        b.exact = exact;
        b
    };
    let path = persisted_path(state_dir);
    let saved: Option<Persisted> = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match saved {
        Some(p) if p.builder.after_suffix == last_suffix => {
            let mut b = p.builder;
            b.exact = b.exact && p.clean;
            b
        }
        // None saved, or rotated since it was saved (it was attached, or a rotation by hand
        // took its lines): lines of an open incident may be missing from a fresh one.
        _ => fresh(!incident_open),
    }
}

/// `watch`'s digester: a thread that takes runs of whole lines from the reader and digests
/// them into the shared builder. The reader has already classified and counted every line
/// (that decides the quiet period); the digester only adds detail, so it never holds the
/// reader up: a run that finds the queue full is added to the digest as counts alone.
pub struct StreamDigester {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    digest: StreamDigest,
}

/// The loop's side of the stream digest: the open incident's digest as the digester thread
/// builds it, with what the reader only counted folded in when it is read.
#[derive(Clone)]
pub struct StreamDigest {
    shared: Arc<Mutex<Builder>>,
    /// Lines counted without the digester: the not-5xx and snoozed ones, and the incident
    /// lines of runs it had no room for.
    skipped: Arc<Mutex<StreamCounts>>,
    /// Runs queued and not digested yet: a digest saved while this is not 0 misses lines.
    in_flight: Arc<AtomicU64>,
}

/// `watch`'s digest of the open incident, handed to the cycle that rotates it: the cycle
/// takes it (leaves None) once it is attached to the rotated file; otherwise `watch` takes
/// it back ([`StreamDigest::settle`]).
pub type StreamHandoff = Arc<Mutex<Option<Builder>>>;

impl StreamDigest {
    fn live(&self) -> std::sync::MutexGuard<'_, Builder> {
        let mut b = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        fold_skipped(&mut b, &self.skipped);
        b
    }

    /// The digest so far (for saving it).
    pub fn snapshot(&self) -> Builder {
        self.live().clone()
    }

    /// Takes the digest so far for the cycle that rotates it; lines from now on go to the
    /// next incident's.
    pub fn hand_off(&self) -> StreamHandoff {
        let taken = std::mem::replace(&mut *self.live(), Builder::new("stream"));
        Arc::new(Mutex::new(Some(taken)))
    }

    /// After a rotating cycle: a digest the cycle did not attach (nothing rotated, or it
    /// failed before the rename) goes back in front of the lines that came since. One it
    /// attached makes the live digest start after the rotated file (`rotated_suffix`);
    /// attached and then failed, where the live digest starts is unknown.
    pub fn settle(&self, handoff: &StreamHandoff, rotated_suffix: Option<u64>) {
        let returned = handoff.lock().ok().and_then(|mut g| g.take());
        let mut live = self.live();
        match (returned, rotated_suffix) {
            (Some(mut older), _) => {
                older.merge(std::mem::replace(&mut *live, Builder::new("stream")));
                *live = older;
            }
            (None, Some(suffix)) => live.after_suffix = Some(suffix),
            (None, None) => live.exact = false,
        }
    }

    /// Puts the digest an earlier `watch` left (`older`) in front of the lines read since.
    pub fn take_over(&self, older: Builder) {
        let mut live = self.live();
        let mut older = older;
        older.merge(std::mem::replace(&mut *live, Builder::new("stream")));
        *live = older;
    }

    /// Runs of lines waiting for the digester.
    pub fn queued(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// What became of a run offered to the digester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// The digester adds the detail of the run's incident lines.
    Queued,
    /// No incident line in the run, or the digester is behind: the run is counted only.
    Counted,
    /// The digester thread is gone: `watch` must not go on half-dead.
    Gone,
}

/// How many runs of lines (up to 64 KiB each) may wait for the digester.
const QUEUE: usize = 32;

impl StreamDigester {
    /// Starts the digester thread on `builder`; the reader keeps the digester, the loop the
    /// [`StreamDigest`].
    pub fn start(
        builder: Builder,
        rules: IncidentConfig,
        state_dir: &Path,
    ) -> Result<(StreamDigester, StreamDigest)> {
        let state_dir = state_dir.to_path_buf();
        let shared = Arc::new(Mutex::new(builder));
        let skipped = Arc::new(Mutex::new(StreamCounts::default()));
        let in_flight = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let (thread_shared, thread_skipped, thread_in_flight) =
            (shared.clone(), skipped.clone(), in_flight.clone());
        std::thread::Builder::new()
            .name("digest".into())
            .spawn(move || {
                for run in rx {
                    crate::crash::test_panic_point("digest", &state_dir);
                    let started = std::time::Instant::now();
                    let now = Utc::now();
                    let Ok(mut b) = thread_shared.lock() else {
                        return;
                    };
                    fold_skipped(&mut b, &thread_skipped);
                    let mut start = 0;
                    for nl in memchr::memchr_iter(b'\n', &run) {
                        let line = &run[start..nl];
                        let line = &line[..line.len().min(LINE_MAX)];
                        // The other lines were counted by the reader.
                        if let LineKind::Incident(verdict) = line_kind(&rules, line) {
                            let text = String::from_utf8_lossy(line);
                            b.add_incident(text.trim_end_matches(['\n', '\r']), verdict, now);
                        }
                        start = nl + 1;
                    }
                    drop(b);
                    thread_in_flight.fetch_sub(1, Ordering::Release);
                    // Rest as long as the work took: under a flood the digester takes at most
                    // half a core, and the reader (the drain) keeps the rest of the machine.
                    std::thread::sleep(started.elapsed());
                }
            })
            .context("cannot start the digest thread")?;
        let digest = StreamDigest {
            shared,
            skipped,
            in_flight,
        };
        Ok((
            StreamDigester {
                tx,
                digest: digest.clone(),
            },
            digest,
        ))
    }

    /// Hands a run of whole lines to the digester, which adds the detail of its incident
    /// lines; the other lines are only counted (here). A run that finds the digester behind
    /// is counted whole.
    pub fn offer(&mut self, run: Vec<u8>, counts: StreamCounts) -> Offer {
        let mut refused = Offer::Counted;
        let mut not_digested = counts.incident;
        let d = &self.digest;
        if counts.incident > 0 {
            d.in_flight.fetch_add(1, Ordering::Acquire);
            match self.tx.try_send(run) {
                Ok(()) => {
                    refused = Offer::Queued;
                    not_digested = 0;
                }
                Err(std::sync::mpsc::TrySendError::Full(_)) => {}
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => refused = Offer::Gone,
            }
            if refused != Offer::Queued {
                d.in_flight.fetch_sub(1, Ordering::Release);
            }
        }
        if not_digested + counts.not_5xx + counts.ignored > 0 {
            let mut skipped = d.skipped.lock().unwrap_or_else(|e| e.into_inner());
            skipped.incident += not_digested;
            skipped.not_5xx += counts.not_5xx;
            skipped.ignored += counts.ignored;
        }
        refused
    }
}

/// Lines the digester had no room for are counted in the digest all the same.
fn fold_skipped(b: &mut Builder, skipped: &Mutex<StreamCounts>) {
    let counts = std::mem::take(&mut *skipped.lock().unwrap_or_else(|e| e.into_inner()));
    if counts != StreamCounts::default() {
        b.counted(&counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::digest::test_rules as rules;

    fn wait_idle(d: &StreamDigest) {
        let wait = std::time::Instant::now();
        while d.queued() > 0 {
            assert!(wait.elapsed() < std::time::Duration::from_secs(10));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn the_stream_digester_classifies_snoozes_and_never_blocks() {
        let r = rules(&["/health "]);
        let dir = tempfile::tempdir().unwrap();
        let (mut d, digest) =
            StreamDigester::start(Builder::new("stream"), r.clone(), dir.path()).unwrap();
        let run = b"h p: \"GET /a HTTP/1.1\" 502 0\nh p: \"GET /b HTTP/1.1\" 503 0\n\
                    h p: \"GET /health HTTP/1.1\" 500 0\nh p: \"GET /c HTTP/1.1\" 200 512\n";
        let counts = count_lines(&r, run);
        assert_eq!(
            counts,
            StreamCounts {
                incident: 2,
                not_5xx: 1,
                ignored: 1
            }
        );
        assert_eq!(d.offer(run.to_vec(), counts), Offer::Queued);
        wait_idle(&digest);
        let got = digest.snapshot().digest("h", 10);
        assert_eq!((got.lines, got.ignored, got.not_5xx), (2, 1, 1));
        assert_eq!(got.lines_read, 4);
        assert_eq!(got.statuses.keys().collect::<Vec<_>>(), ["502", "503"]);
        // A flood: the reader never waits; what finds the queue full is counted, not lost.
        let held = digest.shared.lock().unwrap();
        let mut refused = 0;
        for _ in 0..(QUEUE + 10) {
            if d.offer(run.to_vec(), counts) != Offer::Queued {
                refused += 1;
            }
        }
        drop(held);
        assert!(refused >= 9, "{refused}");
        wait_idle(&digest);
        let got = digest.snapshot().digest("h", 10);
        let runs = (QUEUE + 11) as u64;
        assert_eq!(got.lines, 2 * runs, "every incident line is counted");
        assert_eq!(got.not_digested, 2 * refused);
        assert_eq!((got.not_5xx, got.ignored), (runs, runs));
        assert_eq!(got.lines_read, 4 * runs);
        // A run without incident lines is counted, never queued.
        let quiet = b"h p: \"GET /c HTTP/1.1\" 200 512\n";
        assert_eq!(
            d.offer(quiet.to_vec(), count_lines(&r, quiet)),
            Offer::Counted
        );
        assert_eq!(digest.queued(), 0);
    }

    #[test]
    fn a_handed_off_digest_comes_back_unless_the_cycle_attached_it() {
        let dir = tempfile::tempdir().unwrap();
        let r = rules(&[]);
        let (mut d, digest) =
            StreamDigester::start(Builder::new("stream"), r.clone(), dir.path()).unwrap();
        let run = b"h p: \"GET /a HTTP/1.1\" 502 0\n";
        d.offer(run.to_vec(), count_lines(&r, run));
        wait_idle(&digest);
        let handoff = digest.hand_off();
        assert_eq!(
            digest.snapshot().lines(),
            0,
            "the next incident starts empty"
        );
        d.offer(run.to_vec(), count_lines(&r, run));
        wait_idle(&digest);
        // not attached (nothing rotated): both incidents' lines are one digest again
        digest.settle(&handoff, None);
        assert_eq!(digest.snapshot().lines(), 2);
        // attached to the rotated file 7: the live digest starts after it
        let handoff = digest.hand_off();
        handoff.lock().unwrap().take();
        digest.settle(&handoff, Some(7));
        let live = digest.snapshot();
        assert_eq!(
            (live.lines(), live.after_suffix, live.exact),
            (0, Some(7), true)
        );
        // attached, then the cycle failed: inexact
        let handoff = digest.hand_off();
        handoff.lock().unwrap().take();
        digest.settle(&handoff, None);
        assert!(!digest.snapshot().exact);
    }

    #[test]
    fn the_line_aligner_hands_on_whole_lines_and_cuts_overlong_ones() {
        let mut a = LineAligner::default();
        assert_eq!(a.push(b"ab"), None);
        assert_eq!(a.push(b"c\nde\nf").as_deref(), Some(&b"abc\nde\n"[..]));
        assert_eq!(a.push(b"g\n").as_deref(), Some(&b"fg\n"[..]));
        assert_eq!(a.finish(), None);
        let big = vec![b'x'; LINE_MAX * 2];
        assert_eq!(a.push(&big), None);
        assert_eq!(a.push(&big), None);
        let run = a.push(b"xx\nshort\ntail").unwrap();
        assert_eq!(
            run.len(),
            LINE_MAX + 1 + 6,
            "the long line is cut at LINE_MAX"
        );
        assert!(run.ends_with(b"x\nshort\n"));
        assert_eq!(a.finish().as_deref(), Some(&b"tail\n"[..]));
    }
}
