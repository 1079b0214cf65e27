//! Knowing when syslog-ng has let go of a rotated file, so that it is final.
//!
//! Primary signal: inotify IN_CLOSE_WRITE on the renamed inode (armed before the rename;
//! docs/syslog-ng.md). Cross-check: whether a process still holds the inode open for
//! writing, read from /proc (syslog-ng's pid first; all processes otherwise). If neither
//! answers within the timeout, fall back to waiting until size and mtime are stable.

use anyhow::{bail, Context, Result};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);
const SETTLE: Duration = Duration::from_secs(2);

/// How we learned that the file is final. Without evidence either way (no inotify event, /proc
/// not readable), the file is taken as final once its size and mtime are stable; with evidence
/// that it is still open for writing, it is never taken as final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// inotify reported IN_CLOSE_WRITE.
    CloseEvent,
    /// No process holds it open for writing (/proc).
    NoWriter,
    /// Nothing answered in time; its size and mtime stopped changing.
    Settled,
}

/// The identity of a file across renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(path: &Path) -> Result<Self> {
        let m = std::fs::symlink_metadata(path)
            .with_context(|| format!("cannot stat {}", path.display()))?;
        Ok(FileId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// An inotify watch for IN_CLOSE_WRITE on one inode.
pub struct CloseWatch {
    inotify: Inotify,
}

impl CloseWatch {
    /// Arms the watch on the file at `path` (before it is renamed: the watch follows the inode).
    pub fn arm(path: &Path) -> Result<Self> {
        let inotify =
            Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).with_context(|| {
                format!(
                    "cannot watch {} with inotify (no inotify instance)",
                    path.display()
                )
            })?;
        inotify
            .add_watch(path, AddWatchFlags::IN_CLOSE_WRITE)
            .with_context(|| format!("cannot watch {} with inotify", path.display()))?;
        Ok(CloseWatch { inotify })
    }

    fn saw_close(&self) -> bool {
        match self.inotify.read_events() {
            Ok(events) => events
                .iter()
                .any(|e| e.mask.contains(AddWatchFlags::IN_CLOSE_WRITE)),
            Err(_) => false,
        }
    }
}

/// Waits until `path` (inode `id`) is no longer written to.
///
/// `writer_pid` narrows the /proc check to syslog-ng when its pid is known.
pub fn wait_closed(
    path: &Path,
    id: FileId,
    watch: Option<&CloseWatch>,
    writer_pid: Option<i32>,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<Closed> {
    let deadline = Instant::now() + timeout;
    loop {
        if cancel.load(Ordering::Relaxed) {
            bail!(
                "stopped while waiting for syslog-ng to close {}",
                path.display()
            );
        }
        let writers = open_for_writing(path, id, writer_pid);
        if writers == Some(false) {
            return Ok(Closed::NoWriter);
        }
        // A close event from some other writer while syslog-ng still holds it is not final.
        if watch.is_some_and(CloseWatch::saw_close) && writers.is_none() {
            return Ok(Closed::CloseEvent);
        }
        if Instant::now() >= deadline {
            if writers == Some(true) {
                // Compressing now would lose whatever is still written: leave it for a retry.
                bail!(
                    "{} is still open for writing after {timeout:?}; it stays uncompressed and is                      retried (check that syslog-ng reopened its files: `syslog-ng-ctl reopen`)",
                    path.display()
                );
            }
            break;
        }
        std::thread::sleep(POLL);
    }
    wait_settled(path, cancel)?;
    Ok(Closed::Settled)
}

/// Waits until size and mtime have not changed for [`SETTLE`].
fn wait_settled(path: &Path, cancel: &AtomicBool) -> Result<()> {
    let snapshot = |p: &Path| -> Result<(u64, i64, i64)> {
        let m = std::fs::metadata(p).with_context(|| format!("cannot stat {}", p.display()))?;
        Ok((m.len(), m.mtime(), m.mtime_nsec()))
    };
    let mut last = snapshot(path)?;
    let mut stable_since = Instant::now();
    while stable_since.elapsed() < SETTLE {
        if cancel.load(Ordering::Relaxed) {
            bail!("stopped while waiting for {} to settle", path.display());
        }
        std::thread::sleep(Duration::from_millis(100));
        let now = snapshot(path)?;
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
    }
    Ok(())
}

/// Whether some process has the inode open for writing: `Some(true/false)` when /proc
/// could tell, `None` when it could not (no permission to look at some process).
pub fn open_for_writing(path: &Path, id: FileId, writer_pid: Option<i32>) -> Option<bool> {
    // /proc shows resolved paths: compare with the file's canonical path (symlinked /var/log).
    let canonical = std::fs::canonicalize(path).ok()?;
    let path = canonical.as_path();
    if let Some(pid) = writer_pid {
        if let Some(answer) = pid_writes(pid, path, id) {
            return Some(answer);
        }
    }
    let me = std::process::id().to_string();
    let mut unknown = false;
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries {
        // A listing cut short says nothing about the processes it did not list.
        let Ok(entry) = entry else {
            unknown = true;
            break;
        };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(pid) = name.parse() else { continue };
        match pid_writes(pid, path, id) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => unknown = true,
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}

/// Whether process `pid` has the inode at `path` open for writing; `None` if we may not look.
///
/// Each descriptor's link is read first and only one naming `path` is followed: stat-ing every
/// socket, pipe and other log syslog-ng holds would need (and, under SELinux, be denied and
/// audited) access far beyond this file.
fn pid_writes(pid: i32, path: &Path, id: FileId) -> Option<bool> {
    let fd_dir = format!("/proc/{pid}/fd");
    let entries = match std::fs::read_dir(&fd_dir) {
        Ok(e) => e,
        // The process is gone: it holds nothing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(false),
        Err(_) => return None,
    };
    // Only what was seen is an answer: a listing cut short or a descriptor that could not be
    // read is "cannot tell" (None), never "no writer", or a file syslog-ng still writes into
    // would be compressed and the lines written after it lost (found by tests/faults.rs:
    // getdents64 failing with EIO).
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if gone(&e) => return Some(false),
            Err(_) => return None,
        };
        match std::fs::read_link(entry.path()) {
            // A file renamed while open shows its new name; unlinked ones get " (deleted)".
            Ok(target) if target == path => {}
            Ok(_) => continue,
            // Closed since the listing.
            Err(e) if gone(&e) => continue,
            Err(_) => return None,
        }
        let m = match std::fs::metadata(entry.path()) {
            Ok(m) => m,
            Err(e) if gone(&e) => continue,
            Err(_) => return None,
        };
        if m.dev() != id.dev || m.ino() != id.ino {
            continue;
        }
        // Readers (a `tail -f`) do not matter: only O_WRONLY / O_RDWR descriptors do.
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            entry.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok());
        match flags {
            Some(f) if f & 0o3 == 0 => continue, // O_RDONLY
            _ => return Some(true),
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    #[test]
    fn a_writer_is_seen_and_its_close_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.log");
        let writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let id = FileId::of(&path).unwrap();
        assert_eq!(
            open_for_writing(&path, id, Some(std::process::id() as i32)),
            Some(true)
        );
        let watch = CloseWatch::arm(&path).unwrap();
        let rotated = dir.path().join("docker.log-1");
        std::fs::rename(&path, &rotated).unwrap();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(writer);
        });
        let how = wait_closed(
            &rotated,
            id,
            Some(&watch),
            Some(std::process::id() as i32),
            Duration::from_secs(10),
            &AtomicBool::new(false),
        )
        .unwrap();
        closer.join().unwrap();
        assert!(
            matches!(how, Closed::NoWriter | Closed::CloseEvent),
            "{how:?}"
        );
    }

    #[test]
    fn a_file_still_open_for_writing_is_never_taken_as_final() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.log-1");
        let _writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let id = FileId::of(&path).unwrap();
        let e = wait_closed(
            &path,
            id,
            None,
            Some(std::process::id() as i32),
            Duration::from_millis(100),
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert!(e.to_string().contains("still open for writing"), "{e}");
    }

    #[test]
    fn a_writer_is_seen_through_a_symlinked_directory() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("log")).unwrap();
        let path = dir.path().join("log/docker.log-1");
        let _writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let id = FileId::of(&path).unwrap();
        assert_eq!(
            open_for_writing(&path, id, Some(std::process::id() as i32)),
            Some(true)
        );
    }

    #[test]
    fn readers_do_not_count_as_writers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.log");
        std::fs::write(&path, "x\n").unwrap();
        let _reader = std::fs::File::open(&path).unwrap();
        let id = FileId::of(&path).unwrap();
        assert_eq!(
            pid_writes(std::process::id() as i32, &path, id),
            Some(false)
        );
    }
}
