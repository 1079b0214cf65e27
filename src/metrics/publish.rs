//! Gathers a [`Snapshot`] from the state dir and the rotated files, and writes the metrics
//! file: atomically (a temporary name node_exporter ignores, then a rename) and mode 0644, as
//! it holds no log content.
//!
//! Written under the counters store's lock, so that two writers (an old and a new `watch` on
//! a reload, `rotate` beside `watch`) never interleave: the last one writes what is true at
//! its moment, including whether a `watch` runs (its lock is held).

use super::store::{self, StoreLock};
use super::{render, Counters, Snapshot};
use crate::config::Config;
use crate::fsutil::{atomic_write, FileAccess};
use crate::naming::{RotatedName, Stage};
use crate::spool::Spool;
use crate::state::{StateDir, WATCH_LOCK_FILE};
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::path::Path;
use std::time::SystemTime;

/// What only a running `watch` knows, when it is the one writing.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    /// Incident lines of the open incident so far.
    pub incident_lines: u64,
}

/// Adds `change` to the counters and, when `--metrics-file` is set, writes the metrics file.
/// `live` is given by a running `watch` (then `fasttrack_up` is 1); other writers, and a
/// `watch` that stops, report whether some `watch` holds the watch lock.
pub fn publish(config: &Config, live: Option<Live>, change: &Counters) -> Result<()> {
    if config.metrics_file.is_none() && change.is_empty() {
        return Ok(());
    }
    let state_dir = StateDir::existing(&config.state_dir);
    let lock = store::lock(state_dir.path())?;
    let counters = store::add_locked(state_dir.path(), change, &lock)?;
    let Some(path) = &config.metrics_file else {
        return Ok(());
    };
    let snapshot = gather(config, &state_dir, live, counters, &lock)?;
    atomic_write(path, render(&snapshot).as_bytes(), FileAccess::PUBLIC).with_context(|| {
        format!(
            "cannot write the metrics file; create {} (writable by fasttrack) or fix --metrics-file",
            path.parent().unwrap_or(Path::new("/")).display()
        )
    })
}

/// [`publish`], warning (never failing) when it cannot: metrics never stop a rotation.
pub fn publish_or_warn(config: &Config, live: Option<Live>, change: &Counters) {
    if let Err(e) = publish(config, live, change) {
        tracing::warn!("cannot publish the metrics: {e:#}");
    }
}

fn gather(
    config: &Config,
    state_dir: &StateDir,
    live: Option<Live>,
    counters: Counters,
    _proof: &StoreLock,
) -> Result<Snapshot> {
    let (pending_files, pending_bytes, oldest_pending_age) = pending(config, state_dir)?;
    let incident_open = state_dir.incident().is_some();
    let incident_lines = match (incident_open, live) {
        (false, _) => 0,
        (true, Some(l)) => l.incident_lines,
        (true, None) => crate::digest::stream::peek_open(state_dir.path()).map_or(0, |d| d.lines),
    };
    Ok(Snapshot {
        up: live.is_some() || watch_running(state_dir.path()),
        version: env!("CARGO_PKG_VERSION").to_string(),
        counters,
        pending_files,
        pending_bytes,
        oldest_pending_age,
        incident_open,
        incident_lines,
        notifications_pending: crate::notify::pending(state_dir.path()).len() as u64,
    })
}

/// The rotated files not shipped yet: how many, their bytes (the `.gz`, else the plain file
/// still to compress) and the age of the oldest in seconds (by its modification time: when
/// syslog-ng last wrote it, or when it was compressed).
fn pending(config: &Config, state_dir: &StateDir) -> Result<(u64, u64, f64)> {
    let spool = Spool::scan(config)?;
    let state = state_dir.load()?;
    let now = SystemTime::now();
    let (mut files, mut bytes, mut oldest) = (0u64, 0u64, 0f64);
    for (&suffix, group) in &spool.groups {
        let stage = match (group.compressed, group.plain) {
            (true, _) => Stage::Compressed,
            (false, true) => Stage::Plain,
            _ => continue,
        };
        let gz = RotatedName::new(config.log_name(), suffix, Stage::Compressed).to_string();
        if state.shipped.contains_key(&gz) {
            continue;
        }
        let name = RotatedName::new(config.log_name(), suffix, stage).to_string();
        // A file removed meanwhile (shipped and pruned by another process) is not pending.
        let Ok(meta) = std::fs::metadata(config.log_dir().join(&name)) else {
            continue;
        };
        files += 1;
        bytes += meta.len();
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .map_or(0.0, |d| d.as_secs_f64().floor());
        oldest = oldest.max(age);
    }
    Ok((files, bytes, oldest))
}

/// Whether a `watch` holds the watch lock (src/state.rs) right now.
fn watch_running(state_dir: &Path) -> bool {
    let Ok(file) = std::fs::File::open(state_dir.join(WATCH_LOCK_FILE)) else {
        return false;
    };
    matches!(
        Flock::lock(file, FlockArg::LockSharedNonblock),
        Err((_, Errno::EWOULDBLOCK))
    )
}
