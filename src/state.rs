//! What fasttrack remembers between runs, in the state dir: the lock, `state.toml`
//! (largest suffix used, what was shipped where, the last rotation and error) and the
//! `incident` marker (5xx lines seen but not yet rotated, kept across restarts and kill -9).
//!
//! `state.toml` is only modified under the lock and always replaced atomically, so a
//! reader without the lock (`status`) sees either the old or the new version.

use crate::fsutil::{atomic_write, FileAccess};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::FlockArg;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::warn;

const STATE_FILE: &str = "state.toml";
const LOCK_FILE: &str = "lock";
pub const WATCH_LOCK_FILE: &str = "watch.lock";
const INCIDENT_FILE: &str = "incident";
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(50);
/// What is said of an incident marker whose time cannot be read.
pub const UNREADABLE_TIME: &str = "(an unreadable time)";

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct State {
    /// The largest suffix ever used for the log (files may since have been deleted by --keep).
    pub last_suffix: Option<u64>,
    pub last_rotation: Option<RotationRecord>,
    pub last_error: Option<ErrorRecord>,
    /// Rotated files shipped and still present locally, by file name.
    #[serde(default)]
    pub shipped: BTreeMap<String, ShippedRecord>,
    /// What each compressed file holds (recorded at compression), by file name.
    #[serde(default)]
    pub digests: BTreeMap<String, PlainDigest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct PlainDigest {
    pub lines: u64,
    pub bytes: u64,
    /// CRC-32 of the uncompressed log (absent in records written before 0.2).
    #[serde(default)]
    pub crc32: Option<u32>,
    /// sha256 of the `.gz` (absent in records written before 0.2: then read back).
    #[serde(default)]
    pub gz_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RotationRecord {
    pub at: String,
    pub file: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ErrorRecord {
    pub at: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ShippedRecord {
    pub at: String,
    pub dest: String,
    pub key: String,
    pub bytes: u64,
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The state directory; `open` creates it (0750) if needed and refuses anything odd.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// For writers: creates the directory if missing.
    pub fn open(dir: &Path) -> Result<Self> {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => {
                let euid = nix::unistd::geteuid().as_raw();
                if let Some(problem) = unsafe_state_dir(m.mode(), m.uid(), euid) {
                    bail!("refusing state dir {}: {problem}", dir.display());
                }
                if let Err(e) = nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK) {
                    bail!(
                        "state dir {} is not writable by fasttrack (uid {euid}): {}; \
                         give that user write access (chown it) or fix --state-dir",
                        dir.display(),
                        e.desc()
                    );
                }
            }
            Ok(m) if m.file_type().is_symlink() => bail!(
                "state dir {} is a symbolic link, which fasttrack does not follow; \
                 point --state-dir at the real directory",
                dir.display()
            ),
            Ok(_) => bail!(
                "state dir {} is not a directory; remove it or fix --state-dir",
                dir.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o750)
                    .create(dir)
                    .with_context(|| {
                        format!(
                            "cannot create state dir {}; create it or fix --state-dir",
                            dir.display()
                        )
                    })?;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read state dir {}", dir.display()))
            }
        }
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    /// For readers (`status`): never creates anything.
    pub fn existing(dir: &Path) -> Self {
        StateDir {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Takes the exclusive lock, waiting for another fasttrack to finish its rotation.
    /// `on_wait` is called once if the lock is busy (with the holder's pid when known); the
    /// wait ends with an error when `cancel` is set (a stopping `watch` must not hang here).
    pub fn lock(
        &self,
        cancel: &AtomicBool,
        on_wait: impl FnOnce(Option<u32>),
    ) -> Result<StateLock> {
        let path = self.dir.join(LOCK_FILE);
        let file = open_lock_file(&path)?;
        let mut on_wait = Some(on_wait);
        loop {
            match flock(&file, FlockArg::LockExclusiveNonblock) {
                Ok(()) => break,
                Err(Errno::EWOULDBLOCK) => {
                    if let Some(notify) = on_wait.take() {
                        notify(read_pid(&path));
                    }
                    if cancel.load(Ordering::Relaxed) {
                        bail!("stopped while waiting for the lock {}", path.display());
                    }
                    std::thread::sleep(LOCK_POLL);
                }
                Err(Errno::EINTR) => {}
                Err(e) => {
                    return Err(std::io::Error::from(e))
                        .with_context(|| format!("cannot lock {}", path.display()))
                }
            }
        }
        // From here the lock is released when `lock` is dropped, error or not.
        let mut lock = StateLock { file, path };
        // The holder's pid, for `status` and for whoever waits.
        lock.write_pid()?;
        Ok(lock)
    }

    /// Takes the watch lock ([`WatchLock`]), waiting up to `wait` for an old `watch` to let
    /// go of it; `None` if it still holds it then.
    pub fn watch_lock(&self, wait: std::time::Duration) -> Result<Option<WatchLock>> {
        let path = self.dir.join(WATCH_LOCK_FILE);
        let file = open_lock_file(&path)?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            match flock(&file, FlockArg::LockExclusiveNonblock) {
                Ok(()) => {
                    let mut lock = StateLock { file, path };
                    // For `fasttrack check`, which reports the running watch by its pid.
                    lock.write_pid()?;
                    return Ok(Some(WatchLock(lock)));
                }
                Err(Errno::EWOULDBLOCK) if std::time::Instant::now() >= deadline => {
                    return Ok(None)
                }
                Err(Errno::EWOULDBLOCK | Errno::EINTR) => std::thread::sleep(LOCK_POLL),
                Err(e) => {
                    return Err(std::io::Error::from(e))
                        .with_context(|| format!("cannot lock {}", path.display()))
                }
            }
        }
    }

    /// The pid holding the lock, if it is held right now.
    pub fn lock_holder(&self) -> Option<u32> {
        holder(&self.dir.join(LOCK_FILE)).flatten()
    }

    /// Whether a `watch` holds `watch.lock` right now, and its pid when it wrote one (a
    /// `watch` of 0.1.0 leaves the file empty).
    pub fn watch_holder(&self) -> Option<Option<u32>> {
        holder(&self.dir.join(WATCH_LOCK_FILE))
    }

    /// Reads `state.toml` (an empty state if it does not exist yet).
    pub fn load(&self) -> Result<State> {
        let path = self.dir.join(STATE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| {
                format!(
                    "state file {} is damaged; move it away (fasttrack rebuilds what it needs from the rotated files)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read state file {}", path.display())),
        }
    }

    /// Replaces `state.toml`; callers hold the lock (`_proof`).
    pub fn save(&self, state: &State, _proof: &StateLock) -> Result<()> {
        let text = toml::to_string(state).context("cannot serialise the state")?;
        atomic_write(
            &self.dir.join(STATE_FILE),
            text.as_bytes(),
            FileAccess::STATE,
        )
    }

    /// Loads, changes and saves the state under the lock.
    pub fn update(&self, lock: &StateLock, change: impl FnOnce(&mut State)) -> Result<State> {
        let mut state = self.load()?;
        change(&mut state);
        self.save(&state, lock)?;
        Ok(state)
    }

    /// The open incident marker: when the first unrotated 5xx line was seen. Its existence is
    /// what counts: a marker whose content is damaged still means an incident is open.
    pub fn incident(&self) -> Option<String> {
        self.incident_marker()
            .map(|since| since.unwrap_or_else(|| UNREADABLE_TIME.to_string()))
    }

    /// The open incident marker, if one exists, with its time (`None` when its content is
    /// damaged: `status --json` says null there rather than a placeholder).
    pub fn incident_marker(&self) -> Option<Option<String>> {
        let bytes = std::fs::read(self.dir.join(INCIDENT_FILE)).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let since = text.trim();
        let readable = !since.is_empty() && since.chars().all(|c| !c.is_control());
        Some(readable.then(|| since.chars().take(64).collect()))
    }

    pub fn mark_incident(&self, since: &str) -> Result<()> {
        atomic_write(
            &self.dir.join(INCIDENT_FILE),
            format!("{since}\n").as_bytes(),
            FileAccess::STATE,
        )
    }

    pub fn clear_incident(&self) -> Result<()> {
        let path = self.dir.join(INCIDENT_FILE);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }
}

/// `Some` if someone holds the lock `path` right now, with the pid it wrote if any.
fn holder(path: &Path) -> Option<Option<u32>> {
    let file = File::open(path).ok()?;
    // Got it (shared): nobody holds it; closing `file` releases ours.
    match flock(&file, FlockArg::LockSharedNonblock) {
        Ok(()) => None,
        Err(_) => Some(read_pid(path)),
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    let mut s = String::new();
    File::open(path).ok()?.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// Why a state dir must not be trusted, if it must not: fasttrack renames, ships and deletes
/// what its state says, so nobody but the user it runs as may write there.
pub fn unsafe_state_dir(mode: u32, owner: u32, euid: u32) -> Option<String> {
    if mode & 0o022 != 0 {
        return Some(format!(
            "it is writable by {} (mode {:04o}), so another user could plant files fasttrack trusts; \
             run chmod 750 on it",
            if mode & 0o002 != 0 { "everyone" } else { "its group" },
            mode & 0o7777
        ));
    }
    if owner != euid {
        return Some(format!(
            "it belongs to uid {owner} but fasttrack runs as uid {euid}; chown it to the user \
             syslog-ng runs fasttrack as, or fix --state-dir"
        ));
    }
    None
}

/// Held while rotating or shipping; released on drop (also by the kernel if we die).
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Replaces the lock file's content with this process's pid.
    fn write_pid(&mut self) -> Result<()> {
        let written = (|| {
            self.file.set_len(0)?;
            self.file.rewind()?;
            writeln!(&mut self.file, "{}", std::process::id())
        })();
        written.with_context(|| format!("cannot write lock file {}", self.path.display()))
    }
}

impl Drop for StateLock {
    /// Unlocks, and says so if that fails: closing the file right after releases the lock
    /// anyway (flock(2): a lock belongs to the open file, which dies with its last
    /// descriptor; ours is close-on-exec, so no child holds a copy). nix's `Flock` panicked
    /// here instead (`Failed to remove flock`, issue 18), a panic in a destructor.
    fn drop(&mut self) {
        if let Err(e) = flock(&self.file, FlockArg::Unlock) {
            warn!(
                "cannot unlock {} ({}); it is released as the file is closed",
                self.path.display(),
                e.desc()
            );
        }
    }
}

/// flock(2) on `file`. nix deprecates this call in favour of its `Flock` guard, whose `Drop`
/// panics when the unlock fails: [`StateLock`] owns the file and handles that error.
#[allow(deprecated)]
fn flock(file: &File, arg: FlockArg) -> nix::Result<()> {
    nix::fcntl::flock(file.as_raw_fd(), arg)
}

/// Held by a running `watch` for its whole life: on a reload syslog-ng starts the next one
/// while the old one is still stopping (docs/syslog-ng.md), and the next one takes over the
/// open incident (its marker and its saved digest) only once the old one has let go of it.
pub struct WatchLock(#[allow(dead_code)] StateLock);

/// Opens (creating it) a lock file, never through a symlink.
fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o640)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))
}

/// Waits for an exclusive lock on the lock file `path` (held for moments: the counters'),
/// retrying when interrupted.
pub fn lock_file(path: &Path) -> Result<StateLock> {
    let file = open_lock_file(path)?;
    loop {
        match flock(&file, FlockArg::LockExclusive) {
            Ok(()) => {
                return Ok(StateLock {
                    file,
                    path: path.to_path_buf(),
                })
            }
            Err(Errno::EINTR) => {}
            Err(e) => {
                return Err(std::io::Error::from(e))
                    .with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_second_lock_waits() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(&dir.path().join("state")).unwrap();
        let never = AtomicBool::new(false);
        let lock = sd.lock(&never, |_| panic!("free lock")).unwrap();
        assert_eq!(sd.lock_holder(), Some(std::process::id()));
        sd.update(&lock, |s| {
            s.last_suffix = Some(42);
            s.shipped.insert(
                "docker.log-42.gz".into(),
                ShippedRecord {
                    at: now_rfc3339(),
                    dest: "file:///x".into(),
                    key: "h/docker.log-42.gz".into(),
                    bytes: 7,
                },
            );
        })
        .unwrap();
        let s = sd.load().unwrap();
        assert_eq!(s.last_suffix, Some(42));
        assert_eq!(s.shipped["docker.log-42.gz"].bytes, 7);

        let sd2 = sd.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _l = sd2
                .lock(&AtomicBool::new(false), |holder| tx.send(holder).unwrap())
                .unwrap();
        });
        assert_eq!(rx.recv().unwrap(), Some(std::process::id()));
        drop(lock);
        t.join().unwrap();
        assert_eq!(sd.lock_holder(), None);

        // A stopping watch gives up waiting instead of hanging.
        let _held = sd.lock(&never, |_| {}).unwrap();
        let e = sd.lock(&AtomicBool::new(true), |_| {}).err().unwrap();
        assert!(e.to_string().contains("stopped while waiting"), "{e}");
    }

    #[test]
    fn state_dir_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "").unwrap();
        let e = StateDir::open(&f).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn only_a_private_state_dir_is_trusted() {
        assert_eq!(unsafe_state_dir(0o40750, 0, 0), None);
        assert_eq!(unsafe_state_dir(0o700, 998, 998), None);
        let world = unsafe_state_dir(0o40777, 0, 0).unwrap();
        assert!(
            world.contains("writable by everyone (mode 0777)"),
            "{world}"
        );
        assert!(world.contains("chmod 750"), "{world}");
        let group = unsafe_state_dir(0o770, 0, 0).unwrap();
        assert!(group.contains("writable by its group"), "{group}");
        let owner = unsafe_state_dir(0o750, 1000, 0).unwrap();
        assert!(
            owner.contains("belongs to uid 1000 but fasttrack runs as uid 0"),
            "{owner}"
        );
    }

    #[test]
    fn a_symlinked_state_dir_or_lock_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = StateDir::open(&link).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");

        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep\n").unwrap();
        std::os::unix::fs::symlink(&victim, real.join(LOCK_FILE)).unwrap();
        let sd = StateDir::open(&real).unwrap();
        let e = sd.lock(&AtomicBool::new(false), |_| {}).err().unwrap();
        assert!(format!("{e:#}").contains("cannot open lock file"), "{e:#}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
    }

    #[test]
    fn incident_marker_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(dir.path()).unwrap();
        assert_eq!(sd.incident(), None);
        sd.mark_incident("2026-11-21T00:00:00Z").unwrap();
        assert_eq!(sd.incident().as_deref(), Some("2026-11-21T00:00:00Z"));
        std::fs::write(dir.path().join(INCIDENT_FILE), b"\x00\x01\n").unwrap();
        assert_eq!(sd.incident().as_deref(), Some(UNREADABLE_TIME));
        assert_eq!(sd.incident_marker(), Some(None));
        sd.clear_incident().unwrap();
        sd.clear_incident().unwrap();
        assert_eq!(sd.incident(), None);
    }
}
