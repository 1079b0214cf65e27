//! `fasttrack watch`, syslog-ng's program() destination.
//!
//! stdin is drained on its own thread whatever else happens: syslog-ng never blocks on the
//! pipe, it drops messages once the pipe and queue are full (docs/syslog-ng.md), and it
//! must never see us stall. Memory is bounded: at most one line (cut at 64 KiB) is carried
//! between reads. The reader classifies every line ([`crate::classify`]): only incident lines
//! open an incident or restart its quiet period. It hands each run of lines to the digester
//! thread ([`crate::incident::StreamDigester`]) without waiting: a digester that falls
//! behind costs digest detail, never drain rate or a line's count.
//! The async loop owns the quiet-period timer, signals, the digest's persistence and the one
//! cycle that may run at a time on a blocking thread; notifications have a thread of their own.

use crate::config::Config;
use crate::config::IncidentConfig;
use crate::cycle::{self, Mode, Report, StreamHandoff};
use crate::debounce::Debounce;
use crate::dest::{self, Destination};
use crate::digest::{Builder, StreamCounts};
use crate::exit::Outcome;
use crate::incident::{self, fold_skipped, LineAligner, Offer, StreamDigester};
use crate::notify;
use crate::retry::{self, Policy};
use crate::state::{now_rfc3339, StateDir};
use anyhow::{Context, Result};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tracing::{error, info, warn};

const READ_CHUNK: usize = 64 * 1024;
/// An open incident's digest is saved at most this long after its last change.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

enum Input {
    /// Incident lines arrived.
    Activity,
    Eof,
    /// The reader cannot go on (a read error, the digester gone): `watch` stops and exits
    /// non-zero, so that syslog-ng starts a whole new one.
    Fatal(String),
}

pub fn run(config: Config) -> Result<Outcome> {
    // Opened once, outside the runtime (the S3 client has its own, which must not be dropped
    // inside another), and shared by every cycle.
    let destination: Arc<dyn Destination> = Arc::from(dest::open(&config)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(watch(Arc::new(config), destination.clone()));
    drop(runtime);
    drop(destination);
    outcome
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
fn spawn_reader(
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
                let c = incident::count_lines(&rules, &run);
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

/// The delay before the `attempt`-th retry (0-based), as [`Policy::watch_cycle`] says.
pub fn backoff(attempt: u32, max: Duration, jitter: f64) -> Duration {
    Policy::watch_cycle(max).delay_after(attempt.saturating_add(1), jitter)
}

struct Retry {
    at: Instant,
    mode: Mode,
}

async fn watch(config: Arc<Config>, destination: Arc<dyn Destination>) -> Result<Outcome> {
    let state_dir = StateDir::open(&config.state_dir)?;
    crate::crash::mark_incident_on_panic(state_dir.path().to_path_buf());
    let counts = Arc::new(ReaderCounts::default());
    let (tx, mut rx) = mpsc::channel(4);
    // The open incident's digest, as an earlier watch left it if it still applies.
    let last_suffix = state_dir.load()?.last_suffix;
    let builder = incident::load_open(
        state_dir.path(),
        last_suffix,
        state_dir.incident().is_some(),
    );
    let digester = StreamDigester::start(builder, config.incident.clone(), state_dir.path())?;
    let digest = digester.shared.clone();
    let skipped = digester.skipped.clone();
    let in_flight = digester.in_flight.clone();
    let counted = Arc::new(Notify::new());
    spawn_reader(
        state_dir.path().to_path_buf(),
        tx,
        counted.clone(),
        counts.clone(),
        digester,
        config.incident.clone(),
    )?;
    let persist = |clean: bool| {
        let snapshot = {
            let mut b = digest.lock().unwrap_or_else(|e| e.into_inner());
            fold_skipped(&mut b, &skipped);
            b.clone()
        };
        if let Err(e) = incident::save_open(state_dir.path(), &snapshot, clean, &config.log) {
            warn!("cannot save the open incident's digest: {e:#}");
        }
    };
    let kick = match &config.incident.notify {
        None => None,
        Some(n) => {
            let (kick_tx, kick_rx) = std::sync::mpsc::channel::<()>();
            notify::spawn_thread(
                notify::Notifier::new(n)?,
                state_dir.path().to_path_buf(),
                kick_rx,
            )?;
            Some(kick_tx)
        }
    };
    let mut persist_at: Option<Instant> = None;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;

    info!(
        "watch started (pid {}): log {}, destination {}, quiet {:?}, max wait {:?}, reopen {}",
        std::process::id(),
        config.log.display(),
        config.require_dest()?,
        config.quiet,
        config.max_wait,
        config.reopen.method.name()
    );

    let mut debounce = Debounce::new(config.quiet, config.max_wait);
    if let Some(since) = state_dir.incident() {
        info!("resuming the incident open since {since}: fast-tracked after the next quiet period");
        debounce.on_activity(Instant::now());
    }
    let cancel = Arc::new(AtomicBool::new(false));
    // Every start first finishes what an earlier run left (in the background: stdin keeps flowing).
    let mut job: Option<(JoinHandle<Result<Report>>, Mode)> = Some((
        start(&config, &destination, Mode::Upload, &cancel, None),
        Mode::Upload,
    ));
    let mut handoff: Option<StreamHandoff> = None;
    let mut retry: Option<Retry> = None;
    let mut failures = 0u32;
    let mut lines_before = 0u64;
    // Why the loop stopped, when it was not asked to.
    let mut fatal: Option<String> = None;

    loop {
        let next = match (&job, debounce.deadline(), &retry) {
            (Some(_), _, _) => None,
            (None, Some(d), Some(r)) => Some(d.min(r.at)),
            (None, Some(d), None) => Some(d),
            (None, None, Some(r)) => Some(r.at),
            (None, None, None) => None,
        };
        tokio::select! {
            _ = counted.notified() => {
                if persist_at.is_none() {
                    persist_at = Some(Instant::now() + PERSIST_EVERY);
                }
            }
            input = rx.recv() => match input {
                Some(Input::Activity) => {
                    crate::crash::test_panic_point("main", state_dir.path());
                    if persist_at.is_none() {
                        persist_at = Some(Instant::now() + PERSIST_EVERY);
                    }
                    if debounce.on_activity(Instant::now()) {
                        let since = now_rfc3339();
                        info!("incident opened: 5xx lines arriving");
                        if let Err(e) = state_dir.mark_incident(&since) {
                            warn!("cannot persist the open incident: {e:#}");
                        }
                    }
                }
                Some(Input::Eof) => {
                    info!("stdin closed by syslog-ng; stopping");
                    break;
                }
                Some(Input::Fatal(why)) => {
                    fatal = Some(why);
                    break;
                }
                // Every sender is gone without a word: the reader thread ended abnormally.
                None => {
                    fatal = Some("the stdin reader thread is gone".to_string());
                    break;
                }
            },
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sighup.recv() => { info!("SIGHUP: stopping"); break; }
            _ = async { sleep_until(persist_at.unwrap_or_else(Instant::now)).await }, if persist_at.is_some() => {
                persist_at = None;
                persist(false);
            }
            _ = async { sleep_until(next.unwrap_or_else(Instant::now)).await }, if next.is_some() => {
                let now = Instant::now();
                let mode = if debounce.is_due(now) {
                    debounce.take();
                    let total = counts.incident.load(Ordering::Relaxed);
                    info!(
                        "fast-tracking: {} 5xx lines read by this watch (quiet for {:?}, or {:?} since the first)",
                        total - lines_before, config.quiet, config.max_wait
                    );
                    lines_before = total;
                    Mode::Rotate
                } else if let Some(r) = retry.as_ref().filter(|r| now >= r.at) {
                    r.mode
                } else {
                    continue;
                };
                retry = None;
                let stream = (mode == Mode::Rotate).then(|| {
                    // The cycle gets the incident so far; lines from now on open the next one.
                    let mut b = digest.lock().unwrap_or_else(|e| e.into_inner());
                    fold_skipped(&mut b, &skipped);
                    // (where the next one starts is known once the cycle says what it rotated)
                    let next = Builder::new("stream");
                    Arc::new(Mutex::new(Some(std::mem::replace(&mut *b, next))))
                });
                handoff = stream.clone();
                job = Some((start(&config, &destination, mode, &cancel, stream), mode));
            }
            result = async {
                match job.as_mut() {
                    Some((handle, _)) => handle.await,
                    None => std::future::pending().await,
                }
            } => {
                let mode = job.take().map_or(Mode::Upload, |(_, m)| m);
                let report = result.map_err(anyhow::Error::from).and_then(|r| r);
                if let Some(h) = handoff.take() {
                    settle_digest(&h, &digest, &report);
                    persist(false);
                }
                if let (Some(k), Ok(r)) = (&kick, &report) {
                    if !r.shipped.is_empty() && k.send(()).is_err() {
                        fatal = Some("the notification thread is gone".to_string());
                        break;
                    }
                }
                match report {
                    Ok(report) => {
                        if mode == Mode::Rotate && !debounce.is_open() {
                            if let Err(e) = state_dir.clear_incident() {
                                warn!("{e:#}");
                            }
                        }
                        if report.pending.is_empty() {
                            failures = 0;
                        } else {
                            // An error retrying cannot fix is retried at the longest delay only,
                            // so that the fix (a bucket created, a policy granted) is picked up.
                            if report.outcome() == Outcome::Failed {
                                failures = u32::MAX;
                            }
                            retry = Some(schedule(Mode::Upload, &mut failures, config.retry_max_delay));
                        }
                    }
                    Err(e) => {
                        // The cycle already logged and recorded it; a rotation that failed keeps its incident.
                        if mode == Mode::Rotate {
                            error!("fast-track failed; the incident stays pending and is retried");
                        }
                        retry = Some(schedule(mode, &mut failures, config.retry_max_delay));
                        drop(e);
                    }
                }
                if let Some(r) = &retry {
                    info!("retrying in {:?}", r.at.saturating_duration_since(Instant::now()));
                }
            }
        }
    }

    // Start no new rotation; the running step finishes or is abandoned where it is safe.
    cancel.store(true, Ordering::Relaxed);
    if let Some((handle, _)) = job {
        let report = handle.await.map_err(anyhow::Error::from).and_then(|r| r);
        if let Some(h) = handoff.take() {
            settle_digest(&h, &digest, &report);
        }
    }
    // What stdin delivered before the end is digested before the last save (at most 32
    // chunks of 64 KiB are queued); a digest saved with chunks still queued says so.
    let deadline = Instant::now() + Duration::from_secs(2);
    while in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    persist(in_flight.load(Ordering::Acquire) == 0);
    if debounce.is_open() || retry.as_ref().is_some_and(|r| r.mode == Mode::Rotate) {
        if state_dir.incident().is_none() {
            if let Err(e) = state_dir.mark_incident(&now_rfc3339()) {
                error!("cannot persist the open incident: {e:#}");
            }
        }
        info!("an incident is pending: the next watch fast-tracks it after its quiet period");
    }
    match fatal {
        Some(why) => {
            error!(
                "watch stopped: {why}; exiting with an error so that syslog-ng starts a new one"
            );
            Ok(Outcome::Failed)
        }
        None => {
            info!("watch stopped");
            Ok(Outcome::Done)
        }
    }
}

fn start(
    config: &Arc<Config>,
    destination: &Arc<dyn Destination>,
    mode: Mode,
    cancel: &Arc<AtomicBool>,
    stream: Option<StreamHandoff>,
) -> JoinHandle<Result<Report>> {
    let (config, destination, cancel) = (config.clone(), destination.clone(), cancel.clone());
    // One attempt per cycle: the watch loop owns the backoff, and stdin never waits for it.
    tokio::task::spawn_blocking(move || {
        if mode == Mode::Rotate {
            crate::crash::test_panic_point("cycle", &config.state_dir);
        }
        cycle::run(
            &config,
            destination.as_ref(),
            mode,
            Policy::SHIP_IN_WATCH_CYCLE,
            &cancel,
            stream,
        )
    })
}

/// After a rotating cycle: a digest the cycle did not attach (nothing rotated, or it failed
/// before the rename) goes back in front of the lines that came since. One it attached
/// makes the live digest start after the rotated file.
fn settle_digest(handoff: &StreamHandoff, live: &Mutex<Builder>, report: &Result<Report>) {
    let returned = handoff.lock().ok().and_then(|mut g| g.take());
    let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
    match returned {
        Some(mut older) => {
            older.merge(std::mem::replace(&mut *live, Builder::new("stream")));
            *live = older;
        }
        None => match report.as_ref().ok().and_then(|r| r.rotated_suffix) {
            Some(suffix) => live.after_suffix = Some(suffix),
            // Attached, then the cycle failed: where the live digest starts is unknown.
            None => live.exact = false,
        },
    }
}

fn schedule(mode: Mode, failures: &mut u32, max: Duration) -> Retry {
    let delay = backoff(*failures, max, retry::jitter());
    *failures = failures.saturating_add(1);
    Retry {
        at: Instant::now() + delay,
        mode,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let max = Duration::from_secs(60);
        assert_eq!(backoff(0, max, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(1, max, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(5, max, 0.0), Duration::from_secs(32));
        assert_eq!(backoff(6, max, 0.0), max);
        assert_eq!(backoff(1000, max, 0.0), max);
        assert_eq!(backoff(6, max, 0.5), Duration::from_secs(54));
        assert!(backoff(3, max, 0.999) >= Duration::from_millis(6400));
    }
}
