//! Small durable file-system primitives: rename without overwriting, directory fsync,
//! atomic replace of a small file, and [`FileAccess`], the one rule for the modes of the files
//! fasttrack creates.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use nix::unistd::Gid;
use std::fs::{File, Metadata, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Who may read a file fasttrack creates: the one rule for modes (README, "Security").
///
/// - A file made from a log's content (the `.gz`, the digest JSON beside it, `file://` copies,
///   queued notifications, the open incident's digest) is never more readable than the log it
///   came from: it gets the log's group, and the log's mode with at most 0640. Its owner (the
///   user fasttrack runs as, who read the log) may always read and write it. Issue #20: a
///   digest once came out 0644 beside a 0600 log, with client IPs and tokens in its examples.
/// - fasttrack's own state (`state.toml`, the incident marker, upload journals) is 0640, with
///   the group fasttrack runs as, in a 0750 directory.
///
/// The mode is set on the empty file before anything is written, whatever the umask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileAccess {
    mode: u32,
    /// The group to give the file; `None`: the one it is created with.
    group: Option<u32>,
}

impl FileAccess {
    /// fasttrack's own state files.
    pub const STATE: FileAccess = FileAccess {
        mode: 0o640,
        group: None,
    };

    /// A file that holds no log content and is meant for others to read: the metrics file,
    /// read by node_exporter.
    pub const PUBLIC: FileAccess = FileAccess {
        mode: 0o644,
        group: None,
    };

    /// Log content whose log cannot be looked at (not created yet): its owner only.
    pub const OWNER_ONLY: FileAccess = FileAccess {
        mode: 0o600,
        group: None,
    };

    /// A file made from the content of a file with these metadata (a log, or a file already
    /// made from one: the rule gives the same answer twice).
    pub fn derived_from(source: &Metadata) -> FileAccess {
        FileAccess {
            mode: derived_mode(source.mode()),
            group: Some(source.gid()),
        }
    }

    /// A file made from the content of `source`; [`FileAccess::OWNER_ONLY`] if `source` cannot
    /// be looked at (the stricter answer: what cannot be compared is not shared).
    pub fn derived_from_path(source: &Path) -> FileAccess {
        std::fs::metadata(source).map_or(FileAccess::OWNER_ONLY, |m| Self::derived_from(&m))
    }

    /// Gives the freshly created, still empty `file` (at `path`, for messages) this access.
    /// A group fasttrack may not give (it runs without CAP_CHOWN, e.g. under the SELinux
    /// policy, or the file system has no groups) leaves the file to its owner only.
    fn apply(&self, file: &File, path: &Path) -> Result<()> {
        let context = || format!("cannot set the permissions of {}", path.display());
        let mut mode = self.mode;
        if let Some(gid) = self.group {
            let created_with = file.metadata().with_context(context)?.gid();
            if created_with != gid
                && nix::unistd::fchown(file, None, Some(Gid::from_raw(gid))).is_err()
            {
                mode &= 0o600;
            }
        }
        file.set_permissions(Permissions::from_mode(mode))
            .with_context(context)
    }
}

/// The mode of a file made from a source with `source_mode`: the source's group read bit, and
/// read and write for the owner; nothing for others, no write for the group, no special bits.
pub fn derived_mode(source_mode: u32) -> u32 {
    (source_mode & 0o040) | 0o600
}

/// Creates `path` with `access` before a byte is written. Never follows or replaces what is
/// there (`O_EXCL`): a planted symlink makes it fail.
pub fn create_new(path: &Path, access: FileAccess) -> Result<File> {
    let file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    if let Err(e) = access.apply(&file, path) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(file)
}

/// Creates `dir` (0750, the state dir's mode, less the umask) if it does not exist: the
/// directories fasttrack keeps inside its state dir.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
}

/// Renames `from` to `to`, failing if `to` exists. Uses RENAME_NOREPLACE, and link+unlink
/// on file systems that do not support it (both are atomic with respect to `to`).
pub fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    let context = || format!("cannot rename {} to {}", from.display(), to.display());
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL | Errno::ENOSYS) => {
            std::fs::hard_link(from, to).with_context(context)?;
            std::fs::remove_file(from).with_context(context)
        }
        Err(Errno::EEXIST) => {
            Err(anyhow::anyhow!("{} already exists", to.display())).with_context(context)
        }
        Err(e) => Err(std::io::Error::from(e)).with_context(context),
    }
}

/// Makes the entries of `dir` (creations, renames, removals) durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot fsync directory {}", dir.display()))
}

/// Replaces `path` with `contents` atomically and durably (temp file, fsync, rename, fsync dir);
/// the new file has `access` from its first byte.
pub fn atomic_write(path: &Path, contents: &[u8], access: FileAccess) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per call, not only per process: the panic hook marks the incident while another
    // thread may be writing the same file (tests/faults.rs found the two sharing a temp file,
    // and one left behind when the hook ended the process).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let result = (|| -> Result<()> {
        // A leftover of a crash is removed; create_new never follows a planted symlink.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        let mut f = create_new(&tmp, access)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    fsync_dir(dir)
}

/// Removes the temporary files of [`atomic_write`] (`.NAME.tmp-PID[-N]`) that a process no
/// longer running left in `dir` (it died between writing and renaming: a crash, exit 70 from
/// the panic hook while another thread wrote). Best effort: what cannot be removed is logged.
/// Called under the state lock, at the start of each cycle, for the state dir and the log's.
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = stale_temp_pid(&name) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => tracing::info!(
                "removed {}, left by fasttrack pid {pid}, which stopped while writing it",
                entry.path().display()
            ),
            Err(e) => tracing::warn!("cannot remove {}: {e}", entry.path().display()),
        }
    }
}

/// The pid in the name of an [`atomic_write`] temporary file, `.NAME.tmp-PID` or `.NAME.tmp-PID-N`.
fn stale_temp_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, tail) = name.rsplit_once(".tmp-")?;
    let pid = tail.split('-').next()?;
    let rest_ok = tail[pid.len()..]
        .strip_prefix('-')
        .map_or(tail.len() == pid.len(), |n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        });
    (rest_ok && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        .then(|| pid.parse().ok())
        .flatten()
}

/// Whether an I/O error chain is "no space left" or "quota exceeded", to say so plainly.
pub fn is_disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(|io| io.raw_os_error())
            .is_some_and(|code| code == Errno::ENOSPC as i32 || code == Errno::EDQUOT as i32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temps_of_processes_gone_are_removed_and_the_others_kept() {
        assert_eq!(stale_temp_pid(".incident.tmp-12479"), Some(12479));
        assert_eq!(stale_temp_pid(".state.toml.tmp-12-3"), Some(12));
        for not in [
            "incident.tmp-1",
            ".x.tmp-",
            ".x.tmp-a1",
            ".x.tmp-1-",
            ".x.tmp-1-b",
            ".x.json",
        ] {
            assert_eq!(stale_temp_pid(not), None, "{not}");
        }
        let dir = tempfile::tempdir().unwrap();
        // pid 2^22+1 is above Linux's pid_max: never running.
        let gone = dir.path().join(".incident.tmp-4194305-0");
        let mine = dir
            .path()
            .join(format!(".state.toml.tmp-{}-9", std::process::id()));
        let other = dir.path().join(".incident.tmp-1");
        for f in [&gone, &mine, &other] {
            std::fs::write(f, "x").unwrap();
        }
        remove_stale_temps(dir.path());
        assert!(!gone.exists());
        assert!(mine.exists(), "this process may be writing it");
        assert!(other.exists(), "pid 1 runs");
    }

    #[test]
    fn rename_noreplace_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let e = rename_noreplace(&a, &b).unwrap_err();
        assert!(format!("{e:#}").contains("already exists"), "{e:#}");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "a");
        std::fs::remove_file(&b).unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "a");
        assert!(!a.exists());
    }

    #[test]
    fn atomic_write_replaces_whole_contents() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.toml");
        atomic_write(&p, b"one", FileAccess::STATE).unwrap();
        atomic_write(&p, b"two", FileAccess::STATE).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn derived_files_are_never_more_readable_than_their_source() {
        for (source, derived) in [
            (0o600, 0o600),
            (0o644, 0o640),
            (0o640, 0o640),
            (0o666, 0o640),
            (0o604, 0o600),
            (0o440, 0o640),
            (0o4755, 0o640),
            (0o000, 0o600),
        ] {
            assert_eq!(derived_mode(source), derived, "source {source:o}");
            // The rule applied to its own result changes nothing (a copy of a copy).
            assert_eq!(derived_mode(derived), derived);
        }
    }

    #[test]
    fn files_get_their_mode_whatever_the_umask_and_keep_the_source_group() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("docker.log");
        std::fs::write(&log, "x\n").unwrap();
        std::fs::set_permissions(&log, Permissions::from_mode(0o644)).unwrap();
        let derived = dir.path().join("docker.log-1.json");
        atomic_write(&derived, b"{}", FileAccess::derived_from_path(&log)).unwrap();
        assert_eq!(mode_of(&derived), 0o640);
        let (log_gid, derived_gid) = (
            std::fs::metadata(&log).unwrap().gid(),
            std::fs::metadata(&derived).unwrap().gid(),
        );
        assert_eq!(derived_gid, log_gid);

        std::fs::set_permissions(&log, Permissions::from_mode(0o600)).unwrap();
        atomic_write(&derived, b"{}", FileAccess::derived_from_path(&log)).unwrap();
        assert_eq!(
            mode_of(&derived),
            0o600,
            "replacing a file applies the rule again"
        );

        let state = dir.path().join("state.toml");
        atomic_write(&state, b"", FileAccess::STATE).unwrap();
        assert_eq!(mode_of(&state), 0o640);

        let missing = dir.path().join("not-there.log");
        assert_eq!(
            FileAccess::derived_from_path(&missing),
            FileAccess::OWNER_ONLY
        );
    }

    #[test]
    fn create_new_never_follows_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert!(create_new(&planted, FileAccess::STATE).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(
            planted.symlink_metadata().is_ok(),
            "the link is not removed either"
        );
    }
}
