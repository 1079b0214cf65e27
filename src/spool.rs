//! The rotated files beside the log and what each needs: scan, finish compression,
//! ship oldest first, prune shipped ones beyond `--keep`. Recovery after a crash is the
//! same code: whatever stage a file is found in, the next step is taken from there.

use crate::compress::gzip_file;
use crate::config::Config;
use crate::dest::{Destination, Shipped};
use crate::naming::{RotatedName, Stage};
use crate::reopen::Reopener;
use crate::rotate::ensure_closed;
use crate::state::{now_rfc3339, ShippedRecord, State, StateDir, StateLock};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tracing::{info, warn};

/// The files found for one suffix.
#[derive(Debug, Default, Clone)]
pub struct Group {
    pub plain: bool,
    pub partial: bool,
    pub compressed: bool,
}

/// Rotated files beside the log, by suffix (ascending = the order the lines were written).
#[derive(Debug, Default)]
pub struct Spool {
    pub groups: BTreeMap<u64, Group>,
}

impl Spool {
    pub fn scan(config: &Config) -> Result<Spool> {
        let dir = config.log_dir();
        let base = config.log_name();
        let mut groups: BTreeMap<u64, Group> = BTreeMap::new();
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|n| RotatedName::parse(base, n))
            else {
                continue;
            };
            let g = groups.entry(name.suffix).or_default();
            match name.stage {
                Stage::Plain => g.plain = true,
                Stage::Partial => g.partial = true,
                Stage::Compressed => g.compressed = true,
            }
        }
        Ok(Spool { groups })
    }

    pub fn largest_suffix(&self) -> Option<u64> {
        self.groups.keys().next_back().copied()
    }
}

fn path_of(config: &Config, suffix: u64, stage: Stage) -> PathBuf {
    config
        .log_dir()
        .join(RotatedName::new(config.log_name(), suffix, stage).to_string())
}

/// Brings every rotated file to the compressed stage: removes partial files, removes plain
/// files whose `.gz` is complete, compresses the rest (after making sure syslog-ng let go).
pub fn finish_local(config: &Config, reopener: &Reopener, cancel: &AtomicBool) -> Result<()> {
    let spool = Spool::scan(config)?;
    for (&suffix, group) in &spool.groups {
        let plain = path_of(config, suffix, Stage::Plain);
        let part = path_of(config, suffix, Stage::Partial);
        let gz = path_of(config, suffix, Stage::Compressed);
        if group.partial {
            info!("discarding unfinished {}", part.display());
            std::fs::remove_file(&part)
                .with_context(|| format!("cannot remove {}", part.display()))?;
        }
        if group.plain && group.compressed {
            // The .gz was renamed into place only once complete and synced: the plain copy is redundant.
            info!("removing {}: {} is complete", plain.display(), gz.display());
            std::fs::remove_file(&plain)
                .with_context(|| format!("cannot remove {}", plain.display()))?;
        } else if group.plain {
            ensure_closed(&plain, config, reopener, cancel)?;
            compress(config, suffix, cancel)?;
        }
    }
    Ok(())
}

/// Compresses the plain rotated file with this suffix.
pub fn compress(config: &Config, suffix: u64, cancel: &AtomicBool) -> Result<()> {
    let plain = path_of(config, suffix, Stage::Plain);
    let started = Instant::now();
    let stats = gzip_file(
        &plain,
        &path_of(config, suffix, Stage::Partial),
        &path_of(config, suffix, Stage::Compressed),
        config.compression_level,
        cancel,
    )
    .map_err(|e| {
        if crate::fsutil::is_disk_full(&e) {
            e.context(format!(
                "no space left to compress {}; it is kept as is: free space in {}, it will be retried",
                plain.display(),
                config.log_dir().display()
            ))
        } else {
            e
        }
    })?;
    info!(
        "compressed {}: {} lines, {} -> {} bytes in {} ms",
        plain.display(),
        stats.lines,
        stats.plain_bytes,
        stats.gz_bytes,
        started.elapsed().as_millis()
    );
    Ok(())
}

/// The result of shipping the pending files.
#[derive(Debug, Default)]
pub struct ShipReport {
    pub shipped: Vec<String>,
    /// Files still waiting, and the error that stopped the first of them.
    pub pending: Vec<String>,
    pub error: Option<String>,
}

/// Ships every compressed file not yet recorded as shipped, oldest first, recording each
/// durably as soon as it is shipped. Stops at the first failure (the rest stay pending).
pub fn ship_pending(
    config: &Config,
    dest: &dyn Destination,
    state_dir: &StateDir,
    lock: &StateLock,
) -> Result<ShipReport> {
    let dest_url = config.require_dest()?;
    let spool = Spool::scan(config)?;
    let state = state_dir.load()?;
    let mut report = ShipReport::default();
    for (&suffix, group) in &spool.groups {
        if !group.compressed {
            continue;
        }
        let name = RotatedName::new(config.log_name(), suffix, Stage::Compressed).to_string();
        if state.shipped.contains_key(&name) {
            continue;
        }
        if report.error.is_some() {
            report.pending.push(name);
            continue;
        }
        let path = path_of(config, suffix, Stage::Compressed);
        let key = dest_url.key(&config.host, &name);
        let started = Instant::now();
        match dest.ship(&key, &path) {
            Ok(shipped) => {
                let (bytes, how) = match shipped {
                    Shipped::Written { bytes } => (bytes, "shipped"),
                    Shipped::AlreadyThere { bytes } => (bytes, "already at the destination:"),
                };
                state_dir.update(lock, |s| {
                    s.shipped.insert(
                        name.clone(),
                        ShippedRecord {
                            at: now_rfc3339(),
                            dest: dest_url.to_string(),
                            key: key.to_string(),
                            bytes,
                        },
                    );
                })?;
                info!(
                    "{how} {} -> {dest_url} {key} ({bytes} bytes, {} ms)",
                    path.display(),
                    started.elapsed().as_millis()
                );
                report.shipped.push(name);
            }
            Err(e) => {
                let message = format!(
                    "cannot ship {} to {dest_url} as {key}: {e:#}",
                    path.display()
                );
                warn!("{message}");
                report.error = Some(message);
                report.pending.push(name);
            }
        }
    }
    Ok(report)
}

/// Deletes shipped files beyond the newest `keep`, and forgets records of files that are gone.
/// Never deletes a file that is not recorded as shipped.
pub fn apply_keep(config: &Config, state_dir: &StateDir, lock: &StateLock) -> Result<()> {
    let spool = Spool::scan(config)?;
    let mut state: State = state_dir.load()?;
    let present: Vec<String> = spool
        .groups
        .iter()
        .filter(|(_, g)| g.compressed)
        .map(|(&s, _)| RotatedName::new(config.log_name(), s, Stage::Compressed).to_string())
        .collect();
    let shipped_present: Vec<&String> = present
        .iter()
        .filter(|n| state.shipped.contains_key(*n))
        .collect();
    let excess = shipped_present.len().saturating_sub(config.keep);
    let mut changed = false;
    for name in shipped_present.into_iter().take(excess) {
        let path = config.log_dir().join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => info!(
                "removed {} (shipped; --keep {})",
                path.display(),
                config.keep
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
        state.shipped.remove(name);
        changed = true;
    }
    let before = state.shipped.len();
    state.shipped.retain(|name, _| present.contains(name));
    changed |= before != state.shipped.len();
    if changed {
        state_dir.save(&state, lock)?;
    }
    Ok(())
}
