//! The rotated files beside the log and what each needs: scan, finish compression,
//! ship oldest first, prune shipped ones beyond `--keep`. Recovery after a crash is the
//! same code: whatever stage a file is found in, the next step is taken from there.

mod ship;
mod stream;

pub use ship::{object_tags, ship_pending, ShipReport, Shipper};
pub use stream::{compress_and_ship, streams};

use crate::compress::gzip_file;
use crate::config::Config;
use crate::digest::sidecar;
use crate::growing::Growing;
use crate::naming::{RotatedName, Stage};
use crate::progress::{during, Progress, Step};
use crate::reopen::Reopener;
use crate::rotate::ensure_closed;
use crate::state::{PlainDigest, State, StateDir, StateLock};
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
pub fn finish_local(
    config: &Config,
    reopener: &Reopener,
    state_dir: &StateDir,
    lock: &StateLock,
    cancel: &AtomicBool,
    progress: &dyn Progress,
) -> Result<()> {
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
            compress(config, suffix, (state_dir, lock), (cancel, progress), None)?;
        }
    }
    Ok(())
}

/// Compresses the plain rotated file with this suffix and records what it holds. With
/// `growing`, an upload follows the `.gz` as it is written ([`stream`]).
pub fn compress(
    config: &Config,
    suffix: u64,
    (state_dir, lock): (&StateDir, &StateLock),
    (cancel, progress): (&AtomicBool, &dyn Progress),
    growing: Option<&Growing>,
) -> Result<()> {
    let plain = path_of(config, suffix, Stage::Plain);
    let started = Instant::now();
    let stats = during(progress, Step::Compress, &plain, || {
        gzip_file(
            (
                &plain,
                &path_of(config, suffix, Stage::Partial),
                &path_of(config, suffix, Stage::Compressed),
            ),
            (config.compression_level, config.compression_threads),
            cancel,
            progress,
            growing,
        )
    })
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
    let name = RotatedName::new(config.log_name(), suffix, Stage::Compressed).to_string();
    state_dir.update(lock, |s| {
        s.digests.insert(
            name,
            PlainDigest {
                lines: stats.lines,
                bytes: stats.plain_bytes,
                crc32: Some(stats.crc32),
                gz_sha256: Some(stats.gz_sha256.clone()),
            },
        );
    })?;
    Ok(())
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
    let mut removed = Vec::new();
    for name in shipped_present.into_iter().take(excess) {
        let path = config.log_dir().join(name);
        if let Some(rotated) = RotatedName::parse(config.log_name(), name) {
            let sidecar = sidecar::sidecar_path(config, rotated.suffix);
            match std::fs::remove_file(&sidecar) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warn!("cannot remove {}: {e}", sidecar.display()),
            }
        }
        match std::fs::remove_file(&path) {
            Ok(()) => info!(
                "removed {} (shipped; --keep {})",
                path.display(),
                config.keep
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
        removed.push(name.clone());
    }
    let before = (state.shipped.len(), state.digests.len());
    let kept = |name: &String| present.contains(name) && !removed.contains(name);
    state.shipped.retain(|name, _| kept(name));
    state.digests.retain(|name, _| kept(name));
    if before != (state.shipped.len(), state.digests.len()) {
        state_dir.save(&state, lock)?;
    }
    Ok(())
}
