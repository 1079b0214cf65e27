//! One fast-track cycle under the state lock, shared by `watch`, `rotate` and `upload`:
//! finish what an earlier run left, optionally rotate, compress, ship, prune.

use crate::config::Config;
use crate::dest;
use crate::digest::sidecar;
use crate::exit::Outcome;
use crate::reopen::Reopener;
use crate::rotate::rotate_log;
use crate::spool::{apply_keep, compress, finish_local, ship_pending, Spool};
use crate::state::{now_rfc3339, ErrorRecord, RotationRecord, StateDir, StateLock};
use anyhow::Result;
use std::sync::atomic::AtomicBool;
use tracing::{error, info, warn};

pub use crate::digest::stream::StreamHandoff;

/// How many times `rotate` and `upload` try to ship a file on a retryable error before
/// exiting 3 with the file kept (each S3 request is itself retried by the SDK).
pub const CLI_ATTEMPTS: u32 = 3;

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
    pub ship_error: Option<String>,
    /// The shipping error is one that retrying will not fix.
    pub permanent: bool,
}

impl Report {
    pub fn outcome(&self) -> Outcome {
        match (self.pending.is_empty(), self.permanent) {
            (true, _) => Outcome::Done,
            (false, false) => Outcome::Pending,
            (false, true) => Outcome::Failed,
        }
    }
}

/// Runs one cycle; errors and shipping failures are recorded as the state's last error.
/// A retryable shipping failure is tried `attempts` times per file before it is left pending.
pub fn run(
    config: &Config,
    destination: &dyn dest::Destination,
    mode: Mode,
    attempts: u32,
    cancel: &AtomicBool,
    stream: Option<StreamHandoff>,
) -> Result<Report> {
    let state_dir = StateDir::open(&config.state_dir)?;
    let lock = state_dir.lock(cancel, |holder| match holder {
        Some(pid) => info!("waiting for the lock held by fasttrack pid {pid}"),
        None => info!("waiting for the lock"),
    })?;
    let result = run_locked(
        config,
        mode,
        destination,
        (&state_dir, &lock),
        attempts,
        cancel,
        stream,
    );
    let failure = match &result {
        Err(e) => Some(format!("{e:#}")),
        Ok(report) => report.ship_error.clone(),
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
    attempts: u32,
    cancel: &AtomicBool,
    stream: Option<StreamHandoff>,
) -> Result<Report> {
    let reopener = Reopener::new(&config.reopen);
    let mut report = Report::default();

    // Whatever an interrupted run left behind is finished first.
    finish_local(config, &reopener, state_dir, lock, cancel)?;

    if mode == Mode::Rotate {
        let largest = Spool::scan(config)?.largest_suffix();
        let last_suffix_before = state_dir.load()?.last_suffix;
        if let Some(rotation) = rotate_log(config, state_dir, lock, &reopener, largest, cancel)? {
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
            // The digest is written before compressing: the plain file is at hand for a scan.
            let taken = stream
                .as_ref()
                .and_then(|s| s.lock().ok().and_then(|mut g| g.take()));
            let name = rotation.name.to_string();
            if let Some(d) = sidecar::digest_for_rotated(
                config,
                &rotation.path,
                &name,
                taken,
                last_suffix_before,
            ) {
                let sidecar = sidecar::sidecar_path(config, rotation.name.suffix);
                if let Err(e) = sidecar::write_sidecar(&sidecar, &d, &rotation.path) {
                    warn!("{e:#}; the digest is rebuilt when the file is shipped");
                }
            }
            compress(config, rotation.name.suffix, state_dir, lock, cancel)?;
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

    let shipped = ship_pending(config, destination, state_dir, lock, attempts, cancel)?;
    report.shipped = shipped.shipped;
    report.pending = shipped.pending;
    report.ship_error = shipped.error;
    report.permanent = shipped.permanent;
    apply_keep(config, state_dir, lock)?;
    Ok(report)
}
