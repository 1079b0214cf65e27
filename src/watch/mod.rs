//! `fasttrack watch`, syslog-ng's program() destination.
//!
//! Three threads and a loop. The stdin reader ([`reader`]) drains the pipe whatever else
//! happens and classifies every line ([`crate::classify`]): only incident lines open an
//! incident or restart its quiet period. It hands each run of lines to the digester thread
//! ([`crate::digest::stream::StreamDigester`]) without waiting: a digester that falls behind costs
//! digest detail, never drain rate or a line's count. The notifier delivers webhooks.
//! The async loop here owns the timers, the signals, the digest's saving and the one cycle
//! that may run at a time on a blocking thread; what it decides comes from the pure
//! [`machine::WatchLoop`]. Any thread's death ends the process ([`crate::crash`]).

mod machine;
mod reader;

pub use reader::hold_before_failing;

use crate::config::Config;
use crate::cycle::{self, Mode, Report, StreamHandoff};
use crate::dest::{self, Destination};
use crate::digest::stream::{self, StreamDigest, StreamDigester};
use crate::digest::Builder;
use crate::exit::Outcome;
use crate::metrics::{self, Counters};
use crate::notify;
use crate::retry::{self, Policy};
use crate::state::{now_rfc3339, StateDir, WatchLock};
use anyhow::{Context, Result};
use machine::{CycleEnd, WatchLoop};
use reader::{Input, ReaderCounts};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tracing::{error, info, warn};

/// How long a new `watch` waits for the one it replaces to save its state and go.
const HANDOVER_WAIT: Duration = Duration::from_secs(10);

/// The metrics file is rewritten at least this often (issue 14 asks for every minute; twice
/// that keeps a "stale file" alert on node_textfile_mtime_seconds far from false alarms).
const METRICS_EVERY: Duration = Duration::from_secs(30);

pub fn run(config: Config) -> Result<Outcome> {
    // Opened once, outside the runtime (the S3 client has its own, which must not be dropped
    // inside another), and shared by every cycle.
    let destination: Arc<dyn Destination> = Arc::from(dest::open(&config)?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let config = Arc::new(config);
    let outcome = runtime.block_on(watch(config.clone(), destination.clone()));
    drop(runtime);
    drop(destination);
    // However watch ended (stopped, a fatal error, a start-up failure), and after it let go
    // of the watch lock: `fasttrack_up` is 0 now unless a newer watch already runs.
    if config.metrics_file.is_some() {
        metrics::publish::publish_or_warn(&config, None, &Counters::default());
    }
    outcome
}

/// The delay before the `attempt`-th retry (0-based), as [`Policy::watch_cycle`] says.
pub fn retry_delay(attempt: u32, max: Duration, jitter: f64) -> Duration {
    Policy::watch_cycle(max).delay_after(attempt.saturating_add(1), jitter)
}

/// What the loop works with besides its decisions.
struct Driver {
    config: Arc<Config>,
    destination: Arc<dyn Destination>,
    state_dir: StateDir,
    digest: StreamDigest,
    counts: Arc<ReaderCounts>,
    /// Wakes the notifier after a shipment.
    kick: Option<std::sync::mpsc::Sender<()>>,
    cancel: Arc<AtomicBool>,
    job: Option<JoinHandle<Result<Report>>>,
    /// The digest handed to the running rotation.
    handoff: Option<StreamHandoff>,
    /// Incident lines counted at the last fast-track, for its log line.
    lines_before: u64,
    /// The reader's counts already added to the metrics' counters (lines read, not 5xx).
    lines_published: (u64, u64),
    /// The last metrics write failed (warned once until one succeeds again).
    metrics_failing: bool,
}

impl Driver {
    fn persist(&self, clean: bool) {
        let snapshot = self.digest.snapshot();
        let saved = stream::save_open(self.state_dir.path(), &snapshot, clean, &self.config.log);
        if let Err(e) = saved {
            warn!("cannot save the open incident's digest: {e:#}");
        }
    }

    /// Adds the lines read since the last time to the counters and rewrites the metrics
    /// file (`--metrics-file`). A small write on the loop's thread, like the digest's save.
    fn publish_metrics(&mut self) {
        if self.config.metrics_file.is_none() {
            return;
        }
        let c = &self.counts;
        let not_5xx = c.not_5xx.load(Ordering::Relaxed);
        let read = c.incident.load(Ordering::Relaxed) + not_5xx + c.ignored.load(Ordering::Relaxed);
        let change = Counters {
            lines_read: read.saturating_sub(self.lines_published.0),
            lines_not_5xx: not_5xx.saturating_sub(self.lines_published.1),
            ..Counters::default()
        };
        let live = metrics::Live {
            incident_lines: self.digest.snapshot().lines(),
        };
        match metrics::publish(&self.config, Some(live), &change) {
            Ok(()) => {
                self.lines_published = (read, not_5xx);
                self.metrics_failing = false;
            }
            Err(e) if !self.metrics_failing => {
                warn!("cannot publish the metrics: {e:#}");
                self.metrics_failing = true;
            }
            Err(_) => {}
        }
    }

    fn mark_incident(&self) {
        if let Err(e) = self.state_dir.mark_incident(&now_rfc3339()) {
            warn!("cannot persist the open incident: {e:#}");
        }
    }

    fn start(&mut self, mode: Mode) {
        let stream = (mode == Mode::Rotate).then(|| {
            let total = self.counts.incident.load(Ordering::Relaxed);
            info!(
                "fast-tracking: {} 5xx lines read by this watch (quiet for {:?}, or {:?} since the first)",
                total - self.lines_before,
                self.config.quiet,
                self.config.max_wait
            );
            self.lines_before = total;
            // The cycle gets the incident so far; lines from now on open the next one.
            self.digest.hand_off()
        });
        self.handoff = stream.clone();
        let (config, destination, cancel) = (
            self.config.clone(),
            self.destination.clone(),
            self.cancel.clone(),
        );
        // One attempt per cycle: the loop owns the backoff, and stdin never waits for it.
        self.job = Some(tokio::task::spawn_blocking(move || {
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
                // No bar: watch's stderr is syslog-ng's /dev/null (src/progress.rs).
                &crate::progress::Silent,
            )
        }));
    }

    /// Settles the digest after a cycle; false when the notifier is gone.
    fn cycle_done(&mut self, report: &Result<Report>) -> bool {
        if let Some(h) = self.handoff.take() {
            let suffix = report.as_ref().ok().and_then(|r| r.rotated_suffix);
            self.digest.settle(&h, suffix);
            self.persist(false);
        }
        match (&self.kick, report) {
            (Some(k), Ok(r)) if !r.shipped.is_empty() => k.send(()).is_ok(),
            _ => true,
        }
    }

    /// Waits for the running cycle (it stops at the next safe point) and the digester, then
    /// saves the digest a last time.
    async fn finish(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(job) = self.job.take() {
            let report = job.await.map_err(anyhow::Error::from).and_then(|r| r);
            if let Some(h) = self.handoff.take() {
                let suffix = report.as_ref().ok().and_then(|r| r.rotated_suffix);
                self.digest.settle(&h, suffix);
            }
        }
        // What stdin delivered before the end is digested before the last save (at most 32
        // runs are queued); a digest saved with runs still queued says so.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.digest.queued() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.persist(self.digest.queued() == 0);
    }
}

fn cycle_end(report: &Result<Report>) -> CycleEnd {
    match report {
        Ok(r) if r.pending.is_empty() => CycleEnd::Clean,
        Ok(r) => CycleEnd::Pending {
            permanent: r.outcome() == Outcome::Failed,
        },
        Err(_) => CycleEnd::Failed,
    }
}

/// The reader's two ways of telling the loop that lines arrived.
struct Inputs {
    rx: mpsc::Receiver<Input>,
    /// Only lines that are no incident lines arrived.
    counted: Arc<Notify>,
    sigterm: Signal,
    sigint: Signal,
    sighup: Signal,
    metrics_tick: tokio::time::Interval,
}

async fn watch(config: Arc<Config>, destination: Arc<dyn Destination>) -> Result<Outcome> {
    let (mut driver, mut machine, inputs, handover) = start_up(config, destination).await?;
    driver.publish_metrics();
    let fatal = event_loop(&mut driver, &mut machine, inputs).await?;
    // Start no new rotation; the running step finishes or is abandoned where it is safe.
    driver.finish().await;
    // The last lines' counts; `run` writes `fasttrack_up 0` once the watch lock is let go.
    driver.publish_metrics();
    if machine.incident_pending() {
        if driver.state_dir.incident().is_none() {
            driver.mark_incident();
        }
        info!("an incident is pending: the next watch fast-tracks it after its quiet period");
    }
    // Held until here: the next watch then takes the incident over whole.
    drop(handover);
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

/// Starts the threads, takes over what an earlier watch left, and starts the first cycle
/// (finishing what an earlier run left, in the background: stdin keeps flowing).
async fn start_up(
    config: Arc<Config>,
    destination: Arc<dyn Destination>,
) -> Result<(Driver, WatchLoop, Inputs, Option<WatchLock>)> {
    let state_dir = StateDir::open(&config.state_dir)?;
    crate::crash::mark_incident_on_panic(state_dir.path().to_path_buf());
    // Handled from the start: a stop asked for while waiting for an earlier watch is graceful.
    let sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let sighup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let counts = Arc::new(ReaderCounts::default());
    let (tx, rx) = mpsc::channel(4);
    // stdin is drained from the start; what an earlier watch left is taken over below.
    let (digester, digest) = StreamDigester::start(
        Builder::new("stream"),
        config.incident.clone(),
        state_dir.path(),
    )?;
    let counted = Arc::new(Notify::new());
    reader::spawn_reader(
        state_dir.path().to_path_buf(),
        tx,
        counted.clone(),
        counts.clone(),
        digester,
        config.incident.clone(),
    )?;
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
    let handover = take_over(&state_dir, &digest).await?;
    let resumed = state_dir.incident();
    info!(
        "watch started (pid {}): log {}, destination {}, quiet {:?}, max wait {:?}, reopen {}",
        std::process::id(),
        config.log.display(),
        config.require_dest()?,
        config.quiet,
        config.max_wait,
        config.reopen.method.name()
    );
    if let Some(since) = &resumed {
        info!("resuming the incident open since {since}: fast-tracked after the next quiet period");
    }
    let machine = WatchLoop::new(
        config.quiet,
        config.max_wait,
        config.retry_max_delay,
        resumed.is_some(),
        Instant::now(),
    );
    let mut driver = Driver {
        config,
        destination,
        state_dir,
        digest,
        counts,
        kick,
        cancel: Arc::new(AtomicBool::new(false)),
        job: None,
        handoff: None,
        lines_before: 0,
        lines_published: (0, 0),
        metrics_failing: false,
    };
    driver.start(Mode::Upload);
    let mut metrics_tick = tokio::time::interval_at(Instant::now() + METRICS_EVERY, METRICS_EVERY);
    // After a long pause (a suspended host), one write, not a burst of them.
    metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let inputs = Inputs {
        rx,
        counted,
        sigterm,
        sigint,
        sighup,
        metrics_tick,
    };
    Ok((driver, machine, inputs, handover))
}

/// On a reload the old watch is still stopping (saving its digest, marking its incident):
/// its incident is taken over once it has let go (docs/rotation.md).
async fn take_over(state_dir: &StateDir, digest: &StreamDigest) -> Result<Option<WatchLock>> {
    let dir = state_dir.path().to_path_buf();
    let handover =
        tokio::task::spawn_blocking(move || StateDir::existing(&dir).watch_lock(HANDOVER_WAIT))
            .await
            .context("cannot wait for the previous watch")??;
    if handover.is_none() {
        warn!(
            "an earlier watch still holds {} after {HANDOVER_WAIT:?}: taking over its incident as it is",
            state_dir.path().join("watch.lock").display()
        );
    }
    let last_suffix = state_dir.load()?.last_suffix;
    digest.take_over(stream::load_open(
        state_dir.path(),
        last_suffix,
        state_dir.incident().is_some(),
    ));
    Ok(handover)
}

/// Events until the stop; returns why it stopped when it was not asked to.
async fn event_loop(
    driver: &mut Driver,
    machine: &mut WatchLoop,
    mut inputs: Inputs,
) -> Result<Option<String>> {
    loop {
        let next = machine.next_wakeup();
        tokio::select! {
            _ = inputs.counted.notified() => machine.on_other_lines(Instant::now()),
            input = inputs.rx.recv() => match input {
                Some(Input::Activity) => {
                    crate::crash::test_panic_point("main", driver.state_dir.path());
                    if machine.on_incident_lines(Instant::now()) {
                        info!("incident opened: 5xx lines arriving");
                        driver.mark_incident();
                        driver.publish_metrics();
                    }
                }
                Some(Input::Eof) => {
                    info!("stdin closed by syslog-ng; stopping");
                    return Ok(None);
                }
                Some(Input::Fatal(why)) => return Ok(Some(why)),
                // Every sender is gone without a word: the reader thread ended abnormally.
                None => return Ok(Some("the stdin reader thread is gone".to_string())),
            },
            _ = inputs.sigterm.recv() => { info!("SIGTERM: stopping"); return Ok(None); }
            _ = inputs.sigint.recv() => { info!("SIGINT: stopping"); return Ok(None); }
            _ = inputs.sighup.recv() => { info!("SIGHUP: stopping"); return Ok(None); }
            _ = async { sleep_until(next.unwrap_or_else(Instant::now)).await }, if next.is_some() => {
                let wakeup = machine.on_wakeup(Instant::now());
                if wakeup.persist {
                    driver.persist(false);
                }
                if let Some(mode) = wakeup.start {
                    driver.start(mode);
                    driver.publish_metrics();
                }
            }
            _ = inputs.metrics_tick.tick() => driver.publish_metrics(),
            result = async {
                match driver.job.as_mut() {
                    Some(job) => job.await,
                    None => std::future::pending().await,
                }
            } => {
                driver.job = None;
                let report = result.map_err(anyhow::Error::from).and_then(|r| r);
                if !driver.cycle_done(&report) {
                    return Ok(Some("the notification thread is gone".to_string()));
                }
                if report.is_err() && machine.cycle_running_mode() == Some(Mode::Rotate) {
                    // The cycle already logged and recorded its error.
                    error!("fast-track failed; the incident stays pending and is retried");
                }
                let after = machine.on_cycle_end(cycle_end(&report), Instant::now(), retry::jitter());
                if after.clear_incident {
                    if let Err(e) = driver.state_dir.clear_incident() {
                        warn!("{e:#}");
                    }
                }
                if let Some(delay) = after.retry_in {
                    info!("retrying in {delay:?}");
                }
                driver.publish_metrics();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let max = Duration::from_secs(60);
        assert_eq!(retry_delay(0, max, 0.0), Duration::from_secs(1));
        assert_eq!(retry_delay(1, max, 0.0), Duration::from_secs(2));
        assert_eq!(retry_delay(5, max, 0.0), Duration::from_secs(32));
        assert_eq!(retry_delay(6, max, 0.0), max);
        assert_eq!(retry_delay(1000, max, 0.0), max);
        assert_eq!(retry_delay(6, max, 0.5), Duration::from_secs(54));
        assert!(retry_delay(3, max, 0.999) >= Duration::from_millis(6400));
    }
}
