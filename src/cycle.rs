//! One fast-track cycle under the state lock, shared by `watch`, `rotate` and `upload`:
//! finish what an earlier run left, optionally rotate, compress, ship, prune.

use crate::config::Config;
use crate::dest::{self, ShipError};
use crate::digest::sidecar;
use crate::exit::Outcome;
use crate::fsutil::FileAccess;
use crate::metrics::{self, Counters, FailureKind, Step};
use crate::progress::Progress;
use crate::reopen::Reopener;
use crate::retry::Policy;
use crate::rotate::{rotate_log, Rotation};
use crate::spool::{
    apply_keep, compress, compress_and_ship, finish_local, ship_pending, streams, Shipper, Spool,
};
use crate::state::{now_rfc3339, ErrorRecord, RotationRecord, StateDir, StateLock};
use anyhow::Result;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tracing::{error, info, warn};

pub use crate::digest::stream::StreamHandoff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rotate the live log, then ship everything pending.
    Rotate,
    /// Only finish and ship what is pending.
    Upload,
}

#[derive(Debug, Default)]
pub struct Report {
    /// The rotated file's name, when a rotation happened.
    pub rotated: Option<String>,
    /// Its suffix.
    pub rotated_suffix: Option<u64>,
    pub shipped: Vec<String>,
    pub pending: Vec<String>,
    /// What stopped the shipping, when files are left pending.
    pub ship_error: Option<ShipError>,
}

impl Report {
    /// Done, or files left pending: by an error retrying may fix (Pending), or one it will
    /// not (Failed).
    pub fn outcome(&self) -> Outcome {
        match &self.ship_error {
            _ if self.pending.is_empty() => Outcome::Done,
            Some(ShipError::Permanent(_)) => Outcome::Failed,
            _ => Outcome::Pending,
        }
    }
}

/// What a cycle adds to the metrics' counters, and the step it is in (which names the kind
/// of a failure: `fasttrack_failures_total{kind}`).
#[derive(Debug, Default)]
struct Tally {
    change: Counters,
    step: Option<Step>,
}

impl Tally {
    fn begin(&mut self, step: Step) -> Instant {
        self.step = Some(step);
        Instant::now()
    }

    fn took(&mut self, step: Step, seconds: f64) {
        self.change.last_cycle.set(step, seconds);
    }

    fn end(&mut self, step: Step, started: Instant) {
        self.took(step, started.elapsed().as_secs_f64());
        self.step = None;
    }

    /// Counts how the cycle ended. A failure outside the steps (the lock, the state file)
    /// has no kind: `status` shows it.
    fn finish(&mut self, result: &Result<Report>) {
        let kind = match result {
            Err(_) => match self.step {
                Some(Step::Rotate | Step::CloseWait) => Some(FailureKind::Reopen),
                Some(Step::Compress) => Some(FailureKind::Compress),
                Some(Step::Ship) => Some(FailureKind::Temporary),
                None => None,
            },
            Ok(r) => match &r.ship_error {
                Some(ShipError::Permanent(_)) => Some(FailureKind::Permanent),
                Some(ShipError::Retryable(_)) => Some(FailureKind::Temporary),
                None => None,
            },
        };
        if let Some(kind) = kind {
            self.change.absorb(&Counters::failure(kind));
        }
        if matches!(result, Ok(r) if r.pending.is_empty()) {
            self.change.last_success = Some(chrono::Utc::now().timestamp());
        }
    }
}

/// Runs one cycle; errors and shipping failures are recorded as the state's last error.
/// A retryable shipping failure is retried per file as `retry` says before it is left pending.
/// Compression and shipping report their bytes to `progress` (src/progress.rs).
pub fn run(
    config: &Config,
    destination: &dyn dest::Destination,
    mode: Mode,
    retry: Policy,
    cancel: &AtomicBool,
    stream: Option<StreamHandoff>,
    progress: &dyn Progress,
) -> Result<Report> {
    let state_dir = StateDir::open(&config.state_dir)?;
    let lock = state_dir.lock(cancel, |holder| match holder {
        Some(pid) => info!("waiting for the lock held by fasttrack pid {pid}"),
        None => info!("waiting for the lock"),
    })?;
    // What a process that died mid-write left, now that no other cycle runs.
    crate::fsutil::remove_stale_temps(state_dir.path());
    crate::fsutil::remove_stale_temps(config.log_dir());
    let mut tally = Tally::default();
    let result = run_locked(
        config,
        mode,
        destination,
        (&state_dir, &lock),
        (retry, cancel, progress),
        stream,
        &mut tally,
    );
    tally.finish(&result);
    metrics::store::record(state_dir.path(), &tally.change);
    let failure = match &result {
        Err(e) => Some(format!("{e:#}")),
        Ok(report) => report.ship_error.as_ref().map(|e| format!("{e:#}")),
    };
    if let Some(message) = failure {
        if let Err(e) = &result {
            error!("{e:#}");
        }
        let recorded = state_dir.update(&lock, |s| {
            s.last_error = Some(ErrorRecord {
                at: now_rfc3339(),
                message,
            })
        });
        if let Err(e) = recorded {
            error!("cannot record the last error: {e:#}");
        }
    }
    result
}

fn run_locked(
    config: &Config,
    mode: Mode,
    destination: &dyn dest::Destination,
    (state_dir, lock): (&StateDir, &StateLock),
    (retry, cancel, progress): (Policy, &AtomicBool, &dyn Progress),
    stream: Option<StreamHandoff>,
    tally: &mut Tally,
) -> Result<Report> {
    let reopener = Reopener::new(&config.reopen);
    let mut report = Report::default();
    let shipper = Shipper {
        config,
        dest: destination,
        state_dir,
        lock,
        cancel,
        progress,
    };

    // Whatever an interrupted run left behind is finished first.
    tally.begin(Step::Compress);
    finish_local(config, &reopener, state_dir, lock, cancel, progress)?;
    tally.step = None;

    if mode == Mode::Rotate {
        let largest = Spool::scan(config)?.largest_suffix();
        let last_suffix_before = state_dir.load()?.last_suffix;
        tally.begin(Step::Rotate);
        if let Some(rotation) = rotate_log(config, state_dir, lock, &reopener, largest, cancel)? {
            tally.step = None;
            let close_wait = rotation.close_wait_millis;
            tally.took(Step::Rotate, (rotation.millis - close_wait) as f64 / 1000.0);
            tally.took(Step::CloseWait, close_wait as f64 / 1000.0);
            tally.change.rotations = 1;
            tally.change.last_rotation = Some(chrono::Utc::now().timestamp());
            info!(
                "rotated {} -> {} ({} bytes; reopen via {}; {}; {} ms)",
                config.log.display(),
                rotation.path.display(),
                rotation.bytes,
                rotation
                    .via
                    .map_or_else(|| "none".to_string(), |v| v.to_string()),
                match rotation.closed {
                    None => "no writer waited for".to_string(),
                    Some(c) => format!("closed: {c:?}"),
                },
                rotation.millis
            );
            let suffix = rotation.name.suffix;
            let digest = (stream.as_ref(), last_suffix_before);
            let started = tally.begin(Step::Compress);
            if streams(&shipper, suffix)? {
                // Compression, digest and upload overlap (the step's time is all three, in
                // the metrics); the upload begins once the digest it carries is written.
                compress_and_ship(&shipper, suffix, |opened| {
                    write_digest(config, &rotation, digest, opened);
                })?;
            } else {
                // The digest's scan (when the stream's digest does not cover the file) reads
                // the plain file while compression does, on its own thread.
                let opened = std::fs::File::open(&rotation.path).ok();
                std::thread::scope(|scope| {
                    let digesting = scope.spawn(|| write_digest(config, &rotation, digest, opened));
                    let compressed =
                        compress(config, suffix, (state_dir, lock), (cancel, progress), None);
                    if digesting.join().is_err() {
                        warn!("the digest of {} panicked", rotation.path.display());
                    }
                    compressed
                })?;
            }
            tally.end(Step::Compress, started);
            let file = rotation.name.to_string();
            state_dir.update(lock, |s| {
                s.last_rotation = Some(RotationRecord {
                    at: now_rfc3339(),
                    file: file.clone(),
                    bytes: rotation.bytes,
                })
            })?;
            report.rotated = Some(file);
            report.rotated_suffix = Some(rotation.name.suffix);
        } else {
            info!(
                "{} is missing or empty: nothing to rotate",
                config.log.display()
            );
        }
    }

    let started = tally.begin(Step::Ship);
    let shipped = ship_pending(&shipper, retry)?;
    // A cycle with nothing to ship leaves the last shipment's duration in place.
    if !(shipped.shipped.is_empty() && shipped.pending.is_empty()) {
        tally.took(Step::Ship, started.elapsed().as_secs_f64());
    }
    tally.step = None;
    tally.change.shipped_files = shipped.shipped.len() as u64;
    tally.change.shipped_bytes = shipped.shipped_bytes;
    report.shipped = shipped.shipped;
    report.pending = shipped.pending;
    report.ship_error = shipped.error;
    apply_keep(config, state_dir, lock)?;
    Ok(report)
}

/// Writes the digest of a rotated file beside it: from the lines `watch` saw stream by, or
/// from a scan of the file. A failure only costs a scan when the file is shipped.
fn write_digest(
    config: &Config,
    rotation: &Rotation,
    (stream, last_suffix_before): (Option<&StreamHandoff>, Option<u64>),
    opened: Option<std::fs::File>,
) {
    let taken = stream.and_then(|s| s.lock().ok().and_then(|mut g| g.take()));
    let name = rotation.name.to_string();
    // The sidecar's access is the log's, taken before compression may remove the log.
    let access = match &opened {
        Some(f) => f
            .metadata()
            .map_or(FileAccess::OWNER_ONLY, |m| FileAccess::derived_from(&m)),
        None => FileAccess::derived_from_path(&rotation.path),
    };
    let plain = (rotation.path.as_path(), opened);
    let Some(d) = sidecar::digest_for_rotated(config, plain, &name, taken, last_suffix_before)
    else {
        return;
    };
    let sidecar = sidecar::sidecar_path(config, rotation.name.suffix);
    if let Err(e) = sidecar::write_sidecar_as(&sidecar, &d, access) {
        warn!("{e:#}; the digest is rebuilt when the file is shipped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(pending: &[&str], error: Option<ShipError>) -> Report {
        Report {
            pending: pending.iter().map(|s| s.to_string()).collect(),
            ship_error: error,
            ..Report::default()
        }
    }

    /// The failure kind each ending counts (`fasttrack_failures_total{kind}`).
    #[test]
    fn a_cycle_counts_its_failure_by_the_step_it_failed_in() {
        let failures = |step: Option<Step>, result: Result<Report>| {
            let mut t = Tally {
                step,
                ..Tally::default()
            };
            t.finish(&result);
            (t.change.failures, t.change.last_success.is_some())
        };
        let failed = || Err(anyhow::anyhow!("boom"));
        let (f, ok) = failures(Some(Step::Rotate), failed());
        assert_eq!((f.reopen, f.get(FailureKind::Compress), ok), (1, 0, false));
        assert_eq!(failures(Some(Step::CloseWait), failed()).0.reopen, 1);
        assert_eq!(failures(Some(Step::Compress), failed()).0.compress, 1);
        assert_eq!(failures(Some(Step::Ship), failed()).0.temporary, 1);
        let (f, _) = failures(None, failed());
        assert_eq!(f, crate::metrics::Failures::default(), "the lock: no kind");
        let missing = ShipError::permanent("bucket b does not exist".into());
        let (f, ok) = failures(None, Ok(report(&["a.gz"], Some(missing))));
        assert_eq!((f.permanent, f.temporary, ok), (1, 0, false));
        let busy = ShipError::retryable("HTTP 503".into());
        assert_eq!(
            failures(None, Ok(report(&["a.gz"], Some(busy))))
                .0
                .temporary,
            1
        );
        let (f, ok) = failures(None, Ok(report(&[], None)));
        assert_eq!((f, ok), (crate::metrics::Failures::default(), true));
    }

    #[test]
    fn files_left_pending_say_whether_a_retry_may_ship_them() {
        assert_eq!(report(&[], None).outcome(), Outcome::Done);
        let busy = || ShipError::retryable("the store answered HTTP 503; will retry".into());
        let missing = || ShipError::permanent("bucket b does not exist".into());
        assert_eq!(report(&["a.gz"], Some(busy())).outcome(), Outcome::Pending);
        assert_eq!(
            report(&["a.gz", "b.gz"], Some(missing())).outcome(),
            Outcome::Failed
        );
    }
}
