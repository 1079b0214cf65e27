//! `file:///DIR`: objects are files under DIR, written to a temporary name, fsynced and
//! renamed into place, so a reader never sees a partial object.

use super::{CheckItem, Destination, Link, ObjectMeta, ShipError, Shipped};
use crate::fsutil::{create_new, fsync_dir, rename_noreplace, FileAccess};
use crate::naming::ObjectKey;
use crate::progress::Progress;
use anyhow::{anyhow, Context, Result};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Bytes copied between two reports of progress: large, so that the kernel's copy between the
/// two files (copy_file_range, which `std::io::copy` uses) stays one call per chunk.
const COPY_CHUNK: u64 = 8 * 1024 * 1024;

pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: &Path) -> Self {
        LocalDir {
            root: root.to_path_buf(),
        }
    }
}

impl Destination for LocalDir {
    fn ship(
        &self,
        key: &ObjectKey,
        file: &Path,
        _meta: &ObjectMeta,
        progress: &dyn Progress,
    ) -> Result<Shipped, ShipError> {
        if !self.root.is_dir() {
            // Retryable: a mount may come back.
            return Err(anyhow!(
                "destination directory {} does not exist; create it (or mount it) or fix --dest",
                self.root.display()
            )
            .into());
        }
        let target = self.root.join(key.as_str());
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
        let bytes = std::fs::metadata(file)
            .with_context(|| format!("cannot stat {}", file.display()))?
            .len();

        if target.exists() {
            return if same_contents(file, &target)? {
                Ok(Shipped::AlreadyThere { bytes })
            } else {
                Err(ShipError::permanent(format!(
                    "{} already exists with different contents; fasttrack never overwrites a shipped log: \
                     move it away, or check that no two hosts ship under the same --host",
                    target.display()
                )))
            };
        }

        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.part-{}", std::process::id()));
        let copy = (|| -> Result<()> {
            // A leftover of a crash is removed; create_new never follows a planted symlink.
            match std::fs::remove_file(&tmp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {}", tmp.display()))
                }
                _ => {}
            }
            let copied = (|| -> Result<u64> {
                let from = File::open(file)?;
                // The copy is no more readable than the file shipped (itself made from the log).
                let mut to = create_new(&tmp, FileAccess::derived_from(&from.metadata()?))?;
                Ok(copy_reporting(&from, &mut to, progress)?)
            })();
            copied
                .with_context(|| format!("cannot copy {} to {}", file.display(), tmp.display()))?;
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot fsync {}", tmp.display()))?;
            rename_noreplace(&tmp, &target)?;
            fsync_dir(&dir)
        })();
        if let Err(e) = copy {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(Shipped::Written { bytes })
    }

    fn link(&self, key: &ObjectKey, _expiry: std::time::Duration) -> Result<Link> {
        Ok(Link::unsigned(format!(
            "file://{}",
            self.root.join(key.as_str()).display()
        )))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.ensure_root()?;
        // Only the directory the prefix names is walked, never the whole destination.
        let dir = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        let mut keys = Vec::new();
        walk(&self.root, dir, &mut keys)?;
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        if key.starts_with('/') || key.split('/').any(|part| part == "..") {
            return Err(anyhow!(
                "{key:?} is not a key of the destination {}",
                self.root.display()
            ));
        }
        let path = self.root.join(key);
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    fn check(&self, probe_key: &ObjectKey) -> Vec<CheckItem> {
        let exists = CheckItem::from_result(
            format!("directory {}", self.root.display()),
            if self.root.is_dir() {
                Ok("exists".into())
            } else {
                Err("does not exist; create it (or mount it) or fix --dest".into())
            },
        );
        let probe = self.root.join(probe_key.as_str());
        let write = (|| -> Result<()> {
            if let Some(dir) = probe.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let mut f = create_new(&probe, FileAccess::OWNER_ONLY)?;
            std::io::Write::write_all(&mut f, b"fasttrack check\n")?;
            f.sync_all()?;
            std::fs::remove_file(&probe)
                .with_context(|| format!("cannot remove {}", probe.display()))
        })();
        vec![
            exists,
            CheckItem::from_result(
                "test write and remove",
                write
                    .map(|()| probe.display().to_string())
                    .map_err(|e| format!("{e:#}")),
            ),
        ]
    }
}

/// Copies `from` to `to`, reporting each chunk written.
fn copy_reporting(from: &File, to: &mut File, progress: &dyn Progress) -> std::io::Result<u64> {
    let mut total = 0;
    loop {
        match std::io::copy(&mut from.take(COPY_CHUNK), to)? {
            0 => return Ok(total),
            n => {
                progress.advance(n);
                total += n;
            }
        }
    }
}

impl LocalDir {
    /// The destination directory must exist to be read: a missing one is not "no objects".
    fn ensure_root(&self) -> Result<()> {
        if self.root.is_dir() {
            Ok(())
        } else {
            Err(anyhow!(
                "destination directory {} does not exist; mount it or name another one",
                self.root.display()
            ))
        }
    }
}

/// Adds the keys of the files below `root/dir` to `keys` (`dir/name`, `/`-separated).
/// A missing directory holds nothing; the `.`-files of copies under way are not objects.
fn walk(root: &Path, dir: &str, keys: &mut Vec<String>) -> Result<()> {
    let path = root.join(dir);
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", path.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let key = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", entry.path().display()))?;
        if kind.is_dir() {
            walk(root, &key, keys)?;
        } else if kind.is_file() {
            keys.push(key);
        }
    }
    Ok(())
}

fn same_contents(a: &Path, b: &Path) -> Result<bool> {
    let open = |p: &Path| File::open(p).with_context(|| format!("cannot open {}", p.display()));
    let (fa, fb) = (open(a)?, open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ra, mut rb) = (BufReader::new(fa), BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = ra.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        rb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::recorder::Recorder;
    use crate::progress::Silent;

    fn meta() -> ObjectMeta {
        ObjectMeta {
            content_type: "application/gzip",
            sha256: "00".into(),
            metadata: vec![],
            tags: vec![],
        }
    }

    #[test]
    fn ships_once_and_a_retry_is_recognised() {
        let src_dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let file = src_dir.path().join("docker.log-9.gz");
        std::fs::write(&file, b"gzip bytes").unwrap();
        let dest = LocalDir::new(out.path());
        let key = ObjectKey::new("", "web1", "docker.log-9.gz");
        let recorder = Recorder::default();
        assert_eq!(
            dest.ship(&key, &file, &meta(), &recorder).unwrap(),
            Shipped::Written { bytes: 10 }
        );
        assert_eq!(recorder.advanced(), (10, 1), "the bytes written, reported");
        assert_eq!(
            dest.ship(&key, &file, &meta(), &recorder).unwrap(),
            Shipped::AlreadyThere { bytes: 10 }
        );
        assert_eq!(
            recorder.advanced(),
            (10, 1),
            "nothing written: nothing more reported"
        );
        assert_eq!(
            std::fs::read(out.path().join("web1/docker.log-9.gz")).unwrap(),
            b"gzip bytes"
        );
        assert_eq!(
            std::fs::read_dir(out.path().join("web1")).unwrap().count(),
            1
        );
    }

    #[test]
    fn a_different_object_under_the_same_key_is_never_overwritten() {
        let src_dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let file = src_dir.path().join("docker.log-9.gz");
        std::fs::write(&file, b"ours").unwrap();
        std::fs::create_dir(out.path().join("web1")).unwrap();
        std::fs::write(out.path().join("web1/docker.log-9.gz"), b"theirs").unwrap();
        let e = LocalDir::new(out.path())
            .ship(
                &ObjectKey::new("", "web1", "docker.log-9.gz"),
                &file,
                &meta(),
                &Silent,
            )
            .unwrap_err();
        assert!(e.to_string().contains("never overwrites"), "{e}");
        assert!(e.is_permanent());
        assert_eq!(
            std::fs::read(out.path().join("web1/docker.log-9.gz")).unwrap(),
            b"theirs"
        );
    }

    #[test]
    fn lists_one_directory_and_reads_back() {
        let out = tempfile::tempdir().unwrap();
        let day = out.path().join("_incidents/dt=2026-11-22");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::create_dir_all(out.path().join("_incidents/dt=2026-11-23")).unwrap();
        std::fs::write(day.join("b.json"), b"{}\n").unwrap();
        std::fs::write(day.join("a.json"), b"{}\n").unwrap();
        std::fs::write(day.join(".c.json.part-7"), b"{").unwrap();
        std::fs::write(out.path().join("_incidents/dt=2026-11-23/d.json"), b"").unwrap();
        let dest = LocalDir::new(out.path());
        assert_eq!(
            dest.list("_incidents/dt=2026-11-22/").unwrap(),
            [
                "_incidents/dt=2026-11-22/a.json",
                "_incidents/dt=2026-11-22/b.json"
            ]
        );
        assert!(dest.list("_incidents/dt=2026-11-24/").unwrap().is_empty());
        assert_eq!(
            dest.get("_incidents/dt=2026-11-22/a.json").unwrap(),
            b"{}\n"
        );
        assert!(dest.get("../etc/passwd").is_err());
        let mut got = Vec::new();
        let prefixes = [
            "_incidents/dt=2026-11-22/".to_string(),
            "_incidents/dt=2026-11-23/".to_string(),
        ];
        dest.fetch_under(&prefixes, "b.json", 4, &mut |key, bytes| {
            got.push((key.to_string(), bytes.unwrap()))
        })
        .unwrap();
        assert_eq!(
            got,
            [(
                "_incidents/dt=2026-11-22/b.json".to_string(),
                b"{}\n".to_vec()
            )]
        );
        let e = LocalDir::new(&out.path().join("nope"))
            .list("x/")
            .unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn a_missing_root_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = LocalDir::new(&dir.path().join("nope"))
            .ship(&ObjectKey::new("", "h", "f"), &file, &meta(), &Silent)
            .unwrap_err();
        assert!(e.to_string().contains("fix --dest"), "{e}");
        assert!(!e.is_permanent(), "a mount may come back");
    }
}
