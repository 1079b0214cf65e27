//! The counters behind the metrics, in `<state-dir>/counters.toml`: read, add to and replace
//! under `<state-dir>/counters.lock` (flock), so that every fasttrack of the host (an old and
//! a new `watch` overlapping on a reload, `rotate` by hand beside `watch`, the notifier
//! thread) adds what it did without losing anyone else's. The file is replaced atomically:
//! a reader never sees half of it.

use super::Counters;
use crate::fsutil::{atomic_write, FileAccess};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

const COUNTERS_FILE: &str = "counters.toml";
const COUNTERS_LOCK: &str = "counters.lock";

pub fn counters_path(state_dir: &Path) -> PathBuf {
    state_dir.join(COUNTERS_FILE)
}

/// The counters store's lock, held while they are read, changed and written (and, by
/// [`super::publish`], while the metrics file is written from them). Released on drop.
pub struct StoreLock(#[allow(dead_code)] crate::state::StateLock);

/// Waits for the store's lock (held for milliseconds at a time).
pub fn lock(state_dir: &Path) -> Result<StoreLock> {
    crate::state::lock_file(&state_dir.join(COUNTERS_LOCK)).map(StoreLock)
}

/// The counters (all zero before the first change).
pub fn load(state_dir: &Path, _proof: &StoreLock) -> Result<Counters> {
    let path = counters_path(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| {
            format!(
                "counters file {} is damaged; move it away (the metrics' counters then restart from 0)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Counters::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn save(state_dir: &Path, counters: &Counters, _proof: &StoreLock) -> Result<()> {
    let text = toml::to_string(counters).context("cannot serialise the counters")?;
    atomic_write(
        &counters_path(state_dir),
        text.as_bytes(),
        FileAccess::STATE,
    )
}

/// Adds `change` to the counters under `lock`; returns the new totals.
pub fn add_locked(state_dir: &Path, change: &Counters, lock: &StoreLock) -> Result<Counters> {
    let mut counters = load(state_dir, lock)?;
    if change.is_empty() {
        return Ok(counters);
    }
    counters.absorb(change);
    save(state_dir, &counters, lock)?;
    Ok(counters)
}

/// Adds `change` to the counters of `state_dir`.
pub fn add(state_dir: &Path, change: &Counters) -> Result<Counters> {
    let lock = lock(state_dir)?;
    add_locked(state_dir, change, &lock)
}

/// Adds `change`, warning (never failing) when it cannot: the metrics never stop a rotation.
pub fn record(state_dir: &Path, change: &Counters) {
    if let Err(e) = add(state_dir, change) {
        tracing::warn!("cannot update the metrics' counters: {e:#}");
    }
}
