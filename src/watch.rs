//! `fasttrack watch`, syslog-ng's program() destination.
//!
//! stdin is drained on its own thread whatever else happens: syslog-ng never blocks on the
//! pipe, it drops messages once the pipe and queue are full (shared/SYSLOG-NG.md), and it
//! must never see us stall. Memory is bounded: bytes are counted, never buffered as lines.
//! The async loop owns the quiet-period timer, signals and the one cycle that may run at a
//! time on a blocking thread.

use crate::config::Config;
use crate::cycle::{self, Mode, Report};
use crate::debounce::Debounce;
use crate::dest::{self, Destination};
use crate::exit::Outcome;
use crate::state::{now_rfc3339, StateDir};
use anyhow::{Context, Result};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tracing::{error, info, warn};

const READ_CHUNK: usize = 64 * 1024;
const RETRY_FIRST: Duration = Duration::from_secs(1);

enum Input {
    Activity,
    Eof(Option<std::io::Error>),
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

/// Reads stdin in chunks, counting lines, and signals activity without ever waiting on the loop.
fn spawn_reader(tx: mpsc::Sender<Input>, lines: Arc<AtomicU64>) -> Result<()> {
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.blocking_send(Input::Eof(None));
                        return;
                    }
                    Ok(n) => {
                        let newlines = buf[..n].iter().filter(|&&b| b == b'\n').count();
                        lines.fetch_add(newlines as u64, Ordering::Relaxed);
                        // A full channel already holds an activity notice: dropping this one loses nothing.
                        let _ = tx.try_send(Input::Activity);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Input::Eof(Some(e)));
                        return;
                    }
                }
            }
        })
        .context("cannot start the stdin reader thread")?;
    Ok(())
}

/// The delay before the `attempt`-th retry (0-based): doubling from 1 s, capped at `max`, with
/// `jitter` in [0, 1) taking up to a fifth off so that many hosts do not retry in step.
pub fn backoff(attempt: u32, max: Duration, jitter: f64) -> Duration {
    let base = RETRY_FIRST.saturating_mul(1u32 << attempt.min(16)).min(max);
    base.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
}

fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

struct Retry {
    at: Instant,
    mode: Mode,
}

async fn watch(config: Arc<Config>, destination: Arc<dyn Destination>) -> Result<Outcome> {
    let state_dir = StateDir::open(&config.state_dir)?;
    let lines = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::channel(4);
    spawn_reader(tx, lines.clone())?;
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
        start(&config, &destination, Mode::Upload, &cancel),
        Mode::Upload,
    ));
    let mut retry: Option<Retry> = None;
    let mut failures = 0u32;
    let mut lines_before = 0u64;

    loop {
        let next = match (&job, debounce.deadline(), &retry) {
            (Some(_), _, _) => None,
            (None, Some(d), Some(r)) => Some(d.min(r.at)),
            (None, Some(d), None) => Some(d),
            (None, None, Some(r)) => Some(r.at),
            (None, None, None) => None,
        };
        tokio::select! {
            input = rx.recv() => match input {
                Some(Input::Activity) => {
                    if debounce.on_activity(Instant::now()) {
                        let since = now_rfc3339();
                        info!("incident opened: 5xx lines arriving");
                        if let Err(e) = state_dir.mark_incident(&since) {
                            warn!("cannot persist the open incident: {e:#}");
                        }
                    }
                }
                eof => {
                    let err = match eof { Some(Input::Eof(e)) => e, _ => None };
                    match err {
                        Some(e) => warn!("cannot read stdin ({e}); stopping"),
                        None => info!("stdin closed by syslog-ng; stopping"),
                    }
                    break;
                }
            },
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sighup.recv() => { info!("SIGHUP: stopping"); break; }
            _ = async { sleep_until(next.unwrap_or_else(Instant::now)).await }, if next.is_some() => {
                let now = Instant::now();
                let mode = if debounce.is_due(now) {
                    debounce.take();
                    let total = lines.load(Ordering::Relaxed);
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
                job = Some((start(&config, &destination, mode, &cancel), mode));
            }
            result = async {
                match job.as_mut() {
                    Some((handle, _)) => handle.await,
                    None => std::future::pending().await,
                }
            } => {
                let mode = job.take().map_or(Mode::Upload, |(_, m)| m);
                let report = result.map_err(anyhow::Error::from).and_then(|r| r);
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
                            if report.permanent {
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
        let _ = handle.await;
    }
    if debounce.is_open() || retry.as_ref().is_some_and(|r| r.mode == Mode::Rotate) {
        if state_dir.incident().is_none() {
            if let Err(e) = state_dir.mark_incident(&now_rfc3339()) {
                error!("cannot persist the open incident: {e:#}");
            }
        }
        info!("an incident is pending: the next watch fast-tracks it after its quiet period");
    }
    info!("watch stopped");
    Ok(Outcome::Done)
}

fn start(
    config: &Arc<Config>,
    destination: &Arc<dyn Destination>,
    mode: Mode,
    cancel: &Arc<AtomicBool>,
) -> JoinHandle<Result<Report>> {
    let (config, destination, cancel) = (config.clone(), destination.clone(), cancel.clone());
    // One attempt per cycle: the watch loop owns the backoff, and stdin never waits for it.
    tokio::task::spawn_blocking(move || cycle::run(&config, destination.as_ref(), mode, 1, &cancel))
}

fn schedule(mode: Mode, failures: &mut u32, max: Duration) -> Retry {
    let delay = backoff(*failures, max, jitter());
    *failures = failures.saturating_add(1);
    Retry {
        at: Instant::now() + delay,
        mode,
    }
}

/// When `watch` cannot start under syslog-ng (stdin is a pipe), syslog-ng restarts it at
/// once and would loop tightly (shared/SYSLOG-NG.md): keep draining stdin for a while
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
