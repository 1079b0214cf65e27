//! gzip a final rotated file: `X` -> `X.gz.part` -> fsync -> rename to `X.gz` -> fsync dir
//! -> remove `X`. At every instant either `X` or a complete `X.gz` exists, so a crash
//! loses nothing and never leaves a partial `.gz` under the final name. Blocking: callers
//! run it off the async runtime.

use crate::fsutil::{create_new, fsync_dir, rename_noreplace, FileAccess};
use crate::growing::Growing;
use crate::pargz;
use crate::progress::{Counted, Progress};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

const CHUNK: usize = 256 * 1024;
/// Input per parallel deflate block: large enough that the 32 KiB priming and the sync flush
/// cost nothing measurable, small enough that memory stays a few MiB per thread.
const BLOCK: usize = 1024 * 1024;

/// What a compressed file holds: recorded at compression, or read back by [`describe_gz`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compressed {
    pub plain_bytes: u64,
    pub gz_bytes: u64,
    pub lines: u64,
    /// CRC-32 of the uncompressed bytes (as in the gzip trailer).
    pub crc32: u32,
    /// sha256 of the `.gz` file, lower-case hex: the object's identity on the destination.
    pub gz_sha256: String,
}

/// Compresses `plain` into `gz` (through `part`), keeping its mtime and its group, with its
/// mode at most 0640 ([`FileAccess`]), then removes `plain`. The bytes of `plain` read so far
/// go to `progress`. With `growing`, every write that reached `part` is published to it, and
/// so is the end: the final size once `gz` is durable, or the failure.
pub fn gzip_file(
    (plain, part, gz): (&Path, &Path, &Path),
    (level, threads): (u32, usize),
    cancel: &AtomicBool,
    progress: &dyn Progress,
    growing: Option<&Growing>,
) -> Result<Compressed> {
    let result = (|| {
        let stats = write_part(plain, part, (level, threads), cancel, progress, growing)
            .inspect_err(|_| {
                let _ = std::fs::remove_file(part);
            })?;
        rename_noreplace(part, gz)?;
        let dir = gz.parent().unwrap_or(Path::new("/"));
        fsync_dir(dir)?;
        std::fs::remove_file(plain)
            .with_context(|| format!("cannot remove {}", plain.display()))?;
        fsync_dir(dir)?;
        Ok(stats)
    })();
    if let Some(g) = growing {
        match &result {
            Ok(stats) => g.complete(stats.gz_bytes),
            Err(e) => g.failed(&format!("{e:#}")),
        }
    }
    result
}

fn write_part(
    plain: &Path,
    part: &Path,
    (level, threads): (u32, usize),
    cancel: &AtomicBool,
    progress: &dyn Progress,
    growing: Option<&Growing>,
) -> Result<Compressed> {
    let src = File::open(plain).with_context(|| format!("cannot open {}", plain.display()))?;
    let meta = src
        .metadata()
        .with_context(|| format!("cannot stat {}", plain.display()))?;
    // A leftover from a crash is discarded and redone.
    match std::fs::remove_file(part) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", part.display())),
    }
    let out = create_new(part, FileAccess::derived_from(&meta))?;
    let header = pargz::Header {
        name: plain
            .file_name()
            .map(|n| n.to_string_lossy().into_owned().into_bytes()),
        mtime: u32::try_from(meta.mtime()).unwrap_or(0),
    };
    let opts = pargz::Options {
        level,
        threads,
        block: BLOCK,
    };
    let mut writer = BufWriter::with_capacity(CHUNK, Published(out, growing, 0));
    // Counted per read(2): pargz reads 1 MiB blocks, a few reads each, never line by line.
    let src = Counted::new(src, progress);
    let summary = pargz::compress(src, &mut writer, &header, opts, cancel).map_err(|e| {
        if cancel.load(Ordering::Relaxed) {
            anyhow::anyhow!("stopped while compressing {}", plain.display())
        } else {
            e.context(format!(
                "cannot compress {} into {}",
                plain.display(),
                part.display()
            ))
        }
    })?;
    let write_err = || format!("cannot write {}", part.display());
    let Published(out, ..) = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(write_err)?;
    out.set_modified(meta.modified()?)
        .with_context(|| format!("cannot set the mtime of {}", part.display()))?;
    out.sync_all().with_context(write_err)?;
    Ok(Compressed {
        plain_bytes: summary.plain_bytes,
        gz_bytes: summary.gz_bytes,
        lines: summary.lines,
        crc32: summary.crc32,
        gz_sha256: hex::encode(summary.gz_sha256),
    })
}

/// The `.part` file, whose writes are published to a reader of the growing file, if any.
struct Published<'a>(File, Option<&'a Growing>, u64);

impl Write for Published<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.2 += n as u64;
        if let Some(g) = self.1 {
            g.written(self.2);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// What a compressed file holds, read back from it (when the record made at compression is
/// missing, e.g. after a crash right after the rename): one pass that hashes the file and
/// decompresses it.
pub fn describe_gz(gz: &Path) -> Result<Compressed> {
    struct Hashing<R> {
        inner: R,
        sha: Sha256,
        bytes: u64,
    }
    impl<R: Read> Read for Hashing<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.sha.update(&buf[..n]);
            self.bytes += n as u64;
            Ok(n)
        }
    }
    let file = File::open(gz).with_context(|| format!("cannot open {}", gz.display()))?;
    let hashing = Hashing {
        inner: std::io::BufReader::with_capacity(CHUNK, file),
        sha: Sha256::new(),
        bytes: 0,
    };
    let mut decoder = flate2::read::MultiGzDecoder::new(hashing);
    let mut buf = vec![0u8; CHUNK];
    let (mut bytes, mut lines, mut crc) = (0u64, 0u64, crc32fast::Hasher::new());
    loop {
        let n = decoder
            .read(&mut buf)
            .with_context(|| format!("{} is not a valid gzip file", gz.display()))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += bytecount(&buf[..n]);
        crc.update(&buf[..n]);
    }
    let mut hashing = decoder.into_inner();
    std::io::copy(&mut hashing, &mut std::io::sink())
        .with_context(|| format!("cannot read {}", gz.display()))?;
    Ok(Compressed {
        plain_bytes: bytes,
        gz_bytes: hashing.bytes,
        lines,
        crc32: crc.finalize(),
        gz_sha256: hex::encode(hashing.sha.finalize()),
    })
}

fn bytecount(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::recorder::Recorder;
    use crate::progress::Silent;
    use flate2::read::MultiGzDecoder;

    #[test]
    fn compresses_keeps_mtime_and_removes_the_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("docker.log-5");
        let body: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&plain, &body).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        File::options()
            .write(true)
            .open(&plain)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let part = dir.path().join("docker.log-5.gz.part");
        std::fs::write(&part, "leftover of a crash").unwrap();
        let gz = dir.path().join("docker.log-5.gz");
        let recorder = Recorder::default();
        let no = AtomicBool::new(false);
        let stats = gzip_file((&plain, &part, &gz), (6, 2), &no, &recorder, None).unwrap();
        let (bytes, reports) = recorder.advanced();
        assert_eq!(bytes, body.len() as u64, "every byte read is reported");
        assert!(reports < 20, "per read, not per line: {reports} reports");
        assert_eq!(stats.lines, 10_000);
        assert_eq!(stats.crc32, crc32fast::hash(body.as_bytes()));
        let on_disk = std::fs::read(&gz).unwrap();
        assert_eq!(stats.gz_sha256, hex::encode(Sha256::digest(&on_disk)));
        assert_eq!(stats.gz_bytes, on_disk.len() as u64);
        assert_eq!(describe_gz(&gz).unwrap(), stats);
        assert_eq!(stats.plain_bytes, body.len() as u64);
        assert!(!plain.exists() && !part.exists());
        let mut back = String::new();
        MultiGzDecoder::new(File::open(&gz).unwrap())
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, body);
        assert_eq!(std::fs::metadata(&gz).unwrap().modified().unwrap(), old);
    }

    #[test]
    fn cancel_leaves_the_plain_file_and_no_part() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("docker.log-5");
        std::fs::write(&plain, "x\n").unwrap();
        let part = dir.path().join("docker.log-5.gz.part");
        let gz = dir.path().join("docker.log-5.gz");
        let stop = AtomicBool::new(true);
        assert!(gzip_file((&plain, &part, &gz), (6, 2), &stop, &Silent, None).is_err());
        assert!(plain.exists() && !part.exists() && !gz.exists());
    }
}
