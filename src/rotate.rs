//! Moving the live log aside: monotonic suffix, rename without overwriting, ask syslog-ng
//! to reopen, wait until it has closed the old file. Blocking; callers hold the state lock.

use crate::cli::ReopenMethod;
use crate::closewait::{open_for_writing, wait_closed, CloseWatch, Closed, FileId};
use crate::config::Config;
use crate::fsutil::{fsync_dir, rename_noreplace};
use crate::naming::{choose_suffix, RotatedName, Stage};
use crate::reopen::{ReopenedVia, Reopener};
use crate::state::{StateDir, StateLock};
use anyhow::{bail, Context, Result};
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tracing::warn;

/// A log that was just moved aside and is now final.
#[derive(Debug)]
pub struct Rotation {
    pub name: RotatedName,
    pub path: PathBuf,
    pub bytes: u64,
    pub via: Option<ReopenedVia>,
    pub closed: Option<Closed>,
    /// The whole rotation, and the part of it spent waiting for syslog-ng to close the file.
    pub millis: u128,
    pub close_wait_millis: u128,
}

/// Rotates the live log. `Ok(None)` when it is missing or empty (nothing to rotate).
pub fn rotate_log(
    config: &Config,
    state_dir: &StateDir,
    lock: &StateLock,
    reopener: &Reopener,
    largest_on_disk: Option<u64>,
    cancel: &AtomicBool,
) -> Result<Option<Rotation>> {
    let started = Instant::now();
    let log = &config.log;
    let meta = match std::fs::symlink_metadata(log) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot stat {}", log.display())),
    };
    refuse_odd_file(log, &meta)?;
    if meta.len() == 0 {
        return Ok(None);
    }

    let largest_used = state_dir.load()?.last_suffix.max(largest_on_disk);
    let suffix = choose_suffix(meta.mtime(), largest_used);
    let name = RotatedName::new(config.log_name(), suffix, Stage::Plain);
    let path = config.log_dir().join(name.to_string());
    let id = FileId {
        dev: meta.dev(),
        ino: meta.ino(),
    };

    // Armed before the rename so that a close right after the reopen is not missed.
    let watch = match reopener.method() {
        ReopenMethod::None => None,
        _ => Some(CloseWatch::arm(log)?),
    };
    // Recorded first: a crash after the rename must never reuse this suffix.
    state_dir.update(lock, |s| s.last_suffix = Some(suffix))?;
    rename_noreplace(log, &path)?;
    fsync_dir(config.log_dir())?;

    let via = match reopener.reopen() {
        Ok(via) => via,
        Err(e) => {
            // syslog-ng still writes into the renamed inode: put it back where it belongs.
            return Err(match rename_noreplace(&path, log).and_then(|()| fsync_dir(config.log_dir())) {
                Ok(()) => e.context(format!(
                    "{} was not rotated (renamed back); the incident stays pending",
                    log.display()
                )),
                Err(back) => e.context(format!(
                    "and {} could not be renamed back to {} ({back:#}); syslog-ng may still be writing \
                     to it: fix the reopen problem, then run `fasttrack rotate`",
                    path.display(),
                    log.display()
                )),
            });
        }
    };

    let close_wait = Instant::now();
    let closed = match watch {
        None => None,
        Some(watch) => {
            let pid = reopener.syslog_ng_pid().ok().map(|p| p.as_raw());
            let how = wait_closed(&path, id, Some(&watch), pid, config.close_timeout, cancel)?;
            if how == Closed::Settled {
                warn!(
                    "syslog-ng did not report closing {} within {:?}; went on once its size was stable",
                    path.display(),
                    config.close_timeout
                );
            }
            Some(how)
        }
    };
    let bytes = std::fs::metadata(&path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    Ok(Some(Rotation {
        name,
        path,
        bytes,
        via,
        closed,
        millis: started.elapsed().as_millis(),
        close_wait_millis: close_wait.elapsed().as_millis(),
    }))
}

/// Makes sure nobody still writes into a rotated file left by an interrupted rotation
/// (a crash between the rename and the end of the close wait).
pub fn ensure_closed(
    path: &Path,
    config: &Config,
    reopener: &Reopener,
    cancel: &AtomicBool,
) -> Result<()> {
    if reopener.method() == ReopenMethod::None {
        return Ok(());
    }
    let id = FileId::of(path)?;
    let pid = reopener.syslog_ng_pid().ok().map(|p| p.as_raw());
    if open_for_writing(path, id, pid) == Some(false) {
        return Ok(());
    }
    let watch = CloseWatch::arm(path)?;
    reopener.reopen().with_context(|| {
        format!(
            "{} may still be written to by syslog-ng; it stays uncompressed until a reopen succeeds",
            path.display()
        )
    })?;
    wait_closed(path, id, Some(&watch), pid, config.close_timeout, cancel)?;
    Ok(())
}

/// Only a regular file is rotated: never follow a symlink or rename a FIFO or directory.
fn refuse_odd_file(path: &Path, meta: &Metadata) -> Result<()> {
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        return Ok(());
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    bail!(
        "refusing to rotate {}: it is {kind}; syslog-ng's file() destination should write a regular file there",
        path.display()
    )
}
