//! Shipping a log while it is compressed: the parts of a multipart upload start as soon as
//! the compressed bytes for them are on disk, so a fast-track takes about the longer of
//! compression and upload instead of their sum (BENCHMARKS.md, figure 9).
//!
//! The `.gz` is still written, renamed and synced as always (src/compress.rs): it is the
//! recovery copy, and the upload reads its parts from it. The upload completes only once the
//! `.gz` is durable under its final name. What a crash leaves is recovered as ever: the
//! multipart upload's id is journalled before its first part (the next run aborts it), the
//! `.gz.part` is discarded and redone, and an object completed but not recorded as shipped is
//! recognised as ours by the plain file's size, lines and CRC-32 in its metadata (the
//! sha256 of the `.gz` cannot be in it: S3 fixes metadata when the upload starts).
//!
//! Two threads: this one uploads (the S3 runtime), a scoped one compresses. State writes stay
//! in order: compression records the `.gz` before this thread records the shipment.

use super::ship::{self, Body, PlainSums, Shipper};
use super::{path_of, Spool};
use crate::fsutil::FileAccess;
use crate::growing::Growing;
use crate::naming::{RotatedName, Stage};
use crate::retry::Policy;
use anyhow::{anyhow, Context, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;
use tracing::warn;

/// Whether the log rotated with `suffix` is shipped while it is compressed: the destination
/// can follow a growing file and finds the plain file large enough to be worth it, and no
/// older file waits to be shipped first (files go oldest first).
pub fn streams(s: &Shipper, suffix: u64) -> Result<bool> {
    let plain = path_of(s.config, suffix, Stage::Plain);
    let Some(from) = s.dest.ships_growing_from() else {
        return Ok(false);
    };
    let size = std::fs::metadata(&plain)
        .with_context(|| format!("cannot stat {}", plain.display()))?
        .len();
    if size < from {
        return Ok(false);
    }
    let state = s.state_dir.load()?;
    let spool = Spool::scan(s.config)?;
    let older_waits = spool.groups.iter().any(|(&other, group)| {
        let name = RotatedName::new(s.config.log_name(), other, Stage::Compressed).to_string();
        other != suffix && (group.plain || !state.shipped.contains_key(&name))
    });
    Ok(!older_waits)
}

/// Compresses the rotated log `suffix` and uploads it meanwhile. Compression starts at once;
/// this thread first writes the digest (`digest`, given the plain file opened: a scan when
/// the stream's digest does not cover it), reads the plain file's sums, then uploads the parts
/// written so far and the rest as they come. A compression error is the error, as
/// [`super::compress`]'s; a failed upload is logged and leaves the `.gz` pending, for
/// [`ship::ship_pending`] to ship from disk.
pub fn compress_and_ship(
    s: &Shipper,
    suffix: u64,
    digest: impl FnOnce(Option<File>) + Send,
) -> Result<()> {
    let config = s.config;
    let plain = path_of(config, suffix, Stage::Plain);
    // Opened before the compression starts: it removes the plain file when it is done.
    let source = File::open(&plain).with_context(|| format!("cannot open {}", plain.display()))?;
    let access = FileAccess::derived_from(
        &source
            .metadata()
            .with_context(|| format!("cannot stat {}", plain.display()))?,
    );
    let for_digest = source.try_clone().ok();
    let growing = Growing::new(
        &path_of(config, suffix, Stage::Partial),
        &path_of(config, suffix, Stage::Compressed),
    );
    let reader = growing.reader();
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let compressing = scope.spawn(|| {
            super::compress(
                config,
                suffix,
                (s.state_dir, s.lock),
                (s.cancel, s.progress),
                Some(&growing),
            )
        });
        digest(for_digest);
        let uploaded = ship::prepare(s, suffix, (&plain, access)).and_then(|prepared| {
            let sums = plain_sums(&source, &plain)?;
            let meta = ship::streamed_meta(s, &prepared, &sums)?;
            let body = Body::Growing(&reader);
            let sent = ship::upload(s, &prepared, &meta, body, Policy::SHIP_WHILE_COMPRESSED)?;
            Ok((prepared, sent))
        });
        let compressed = compressing
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the compressing thread panicked")));
        compressed?;
        match uploaded {
            Ok((prepared, Ok(shipped))) => {
                ship::record(s, &prepared, &shipped, (started, Body::Growing(&reader)))?;
            }
            // Logged by upload(), naming the file; shipped from disk next.
            Ok((_, Err(_))) => {}
            Err(e) => warn!(
                "{e:#}; {} is shipped once compressed instead",
                plain.display()
            ),
        }
        Ok(())
    })
}

/// The lines, size and CRC-32 of the plain file, read from `file` (opened before the
/// compression could remove it) from its start, whatever its offset.
fn plain_sums(file: &File, path: &Path) -> Result<PlainSums> {
    let mut buf = vec![0u8; 1 << 20];
    let mut sums = PlainSums {
        lines: 0,
        bytes: 0,
        crc32: 0,
    };
    let mut crc = crc32fast::Hasher::new();
    loop {
        let n = match file.read_at(&mut buf, sums.bytes) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        sums.lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        sums.bytes += n as u64;
        crc.update(&buf[..n]);
    }
    sums.crc32 = crc.finalize();
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_sums_are_those_of_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.log-1");
        let body: Vec<u8> = (0..300_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        std::fs::write(&path, &body).unwrap();
        let sums = plain_sums(&File::open(&path).unwrap(), &path).unwrap();
        assert_eq!(
            sums,
            PlainSums {
                lines: 300_000,
                bytes: body.len() as u64,
                crc32: crc32fast::hash(&body),
            }
        );
    }
}
