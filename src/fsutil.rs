//! Small durable file-system primitives: rename without overwriting, directory fsync,
//! atomic replace of a small file.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use std::fs::File;
use std::io::Write;
use std::path::Path;

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

/// Replaces `path` with `contents` atomically and durably (temp file, fsync, rename, fsync dir).
pub fn atomic_write(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        // A leftover of a crash is removed; create_new never follows a planted symlink.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = File::options().write(true).create_new(true).open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    fsync_dir(dir)
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
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
