//! Parallel gzip. The input is cut into blocks that are deflated by libdeflate on all the
//! threads at once; each block becomes one gzip member (RFC 1952 2.2: "a gzip file consists of
//! a series of members"), its own header, deflate stream, CRC-32 and size. `gzip -t`, `zcat`,
//! Python's `gzip`, Java's `GZIPInputStream` and Go's `compress/gzip` read the members back
//! as one file (benches/bench.py, figure 8, checks all five). libdeflate compresses a whole
//! buffer at once, faster and smaller than zlib at the same level, but it cannot take a
//! preset dictionary or stop with a sync flush, so the blocks cannot be chained into a
//! single member the way pigz does: members are what it takes (docs/rotation.md, "The .gz").
//!
//! Memory is bounded: at most `2 x threads` blocks are in flight. The caller's thread reads
//! and counts lines while the workers deflate (and CRC) the blocks; a writer thread puts them
//! in order and hashes the output (sha256 of the `.gz`, the object's identity), so the file
//! never has to be read again before it is shipped.

use anyhow::{anyhow, bail, Context, Result};
use libdeflater::{CompressionLvl, Compressor};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// The smallest block: below it the 18 bytes of each member's header and trailer start to
/// show in the size.
pub const MIN_BLOCK: usize = 32 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// 1 (fastest) to 9 (smallest), as gzip's; libdeflate's levels of the same number.
    pub level: u32,
    pub threads: usize,
    /// Bytes of input per block (and member).
    pub block: usize,
}

/// The gzip header's fields worth keeping: the original name and mtime, as `gzip` does. The
/// first member carries both; the others carry the mtime only.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub name: Option<Vec<u8>>,
    pub mtime: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub plain_bytes: u64,
    pub gz_bytes: u64,
    pub lines: u64,
    /// CRC-32 of the whole uncompressed input (combined from the members').
    pub crc32: u32,
    /// sha256 of the gzip output, every header and trailer included.
    pub gz_sha256: [u8; 32],
}

struct Job {
    index: u64,
    data: Vec<u8>,
}

struct Done {
    index: u64,
    member: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// gzip's fixed header (RFC 1952): deflate, FNAME if a name is given, mtime, OS = Unix.
pub fn header_bytes(header: &Header) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0];
    out.extend_from_slice(&header.mtime.to_le_bytes());
    out.extend_from_slice(&[0, 3]);
    if let Some(name) = &header.name {
        out[3] = 0x08;
        out.extend(name.iter().copied().filter(|&b| b != 0));
        out.push(0);
    }
    out
}

/// One block as one gzip member: `head`, the deflated block, its CRC-32 and its size.
fn member(c: &mut Compressor, head: &[u8], data: &[u8]) -> Result<(Vec<u8>, crc32fast::Hasher)> {
    let bound = c.deflate_compress_bound(data.len());
    let mut out = vec![0u8; head.len() + bound + 8];
    out[..head.len()].copy_from_slice(head);
    let n = c
        .deflate_compress(data, &mut out[head.len()..head.len() + bound])
        .map_err(|e| anyhow!("deflate failed: {e:?}"))?;
    out.truncate(head.len() + n);
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    // ISIZE is the length modulo 2^32 (RFC 1952); a block is far smaller anyway.
    out.extend_from_slice(&crc.clone().finalize().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok((out, crc))
}

fn worker(
    jobs: Arc<Mutex<Receiver<Job>>>,
    done: SyncSender<Result<Done>>,
    (level, heads): (CompressionLvl, &(Vec<u8>, Vec<u8>)),
) {
    let mut c = Compressor::new(level);
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let head = if job.index == 0 { &heads.0 } else { &heads.1 };
        let result = member(&mut c, head, &job.data).map(|(member, crc)| Done {
            index: job.index,
            member,
            crc,
        });
        if done.send(result).is_err() {
            return;
        }
    }
}

/// Reads `input` to its end and writes it gzipped to `output`. Stops with an error when
/// `cancel` is set.
pub fn compress(
    mut input: impl Read,
    mut output: impl Write + Send,
    header: &Header,
    opts: Options,
    cancel: &AtomicBool,
) -> Result<Summary> {
    let threads = opts.threads.max(1);
    let block = opts.block.max(MIN_BLOCK);
    let level = CompressionLvl::new(opts.level.clamp(1, 9) as i32)
        .map_err(|e| anyhow!("compression level {}: {e:?}", opts.level))?;
    let heads = (
        header_bytes(header),
        header_bytes(&Header {
            name: None,
            mtime: header.mtime,
        }),
    );
    let (job_tx, job_rx) = sync_channel::<Job>(threads);
    let (done_tx, done_rx) = sync_channel::<Result<Done>>(threads);
    let job_rx = Arc::new(Mutex::new(job_rx));

    std::thread::scope(|scope| -> Result<Summary> {
        for _ in 0..threads {
            let (rx, tx, heads) = (job_rx.clone(), done_tx.clone(), &heads);
            scope.spawn(move || worker(rx, tx, (level, heads)));
        }
        // Only the workers hold these now: when they stop, the reader and writer see it.
        drop(done_tx);
        drop(job_rx);
        // The writer: members come back in any order and leave in order.
        let writer = scope.spawn(move || -> Result<(u64, u32, [u8; 32])> {
            let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
            let (mut next, mut written, mut crc) = (0u64, 0u64, crc32fast::Hasher::new());
            let mut sha = Sha256::new();
            for done in done_rx {
                let done = done?;
                pending.insert(done.index, done);
                while let Some(d) = pending.remove(&next) {
                    output.write_all(&d.member)?;
                    sha.update(&d.member);
                    written += d.member.len() as u64;
                    crc.combine(&d.crc);
                    next += 1;
                }
            }
            if !pending.is_empty() {
                bail!("a compressed block went missing");
            }
            output.flush()?;
            Ok((written, crc.finalize(), sha.finalize().into()))
        });

        let (mut lines, mut plain, mut index) = (0u64, 0u64, 0u64);
        let read_result = (|| -> Result<()> {
            loop {
                if cancel.load(Ordering::Relaxed) {
                    bail!("stopped");
                }
                let data = read_block(&mut input, block)?;
                // An empty input is still one (empty) member: a valid .gz.
                if data.is_empty() && index > 0 {
                    return Ok(());
                }
                let last = data.len() < block;
                lines += memchr::memchr_iter(b'\n', &data).count() as u64;
                plain += data.len() as u64;
                if job_tx.send(Job { index, data }).is_err() {
                    return Ok(()); // the writer stopped: its error is the one reported
                }
                index += 1;
                if last {
                    return Ok(());
                }
            }
        })();
        drop(job_tx);
        // A panic of the writer is reported as an error, not carried into this thread.
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(anyhow!("the gzip writer thread panicked")));
        read_result?;
        let (gz_bytes, crc32, gz_sha256) = written?;
        Ok(Summary {
            plain_bytes: plain,
            gz_bytes,
            lines,
            crc32,
            gz_sha256,
        })
    })
}

/// Reads up to `size` bytes (fewer only at the end of the input).
fn read_block(input: &mut impl Read, size: usize) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(size);
    Read::take(&mut *input, size as u64)
        .read_to_end(&mut buf)
        .context("read failed")?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::bufread::GzDecoder;
    use flate2::read::MultiGzDecoder;
    use flate2::Compression;

    fn log_like(lines: usize) -> Vec<u8> {
        (0..lines)
            .map(|i| {
                format!(
                    "Nov 21 12:{:02}:{:02} web{} docker/app-{}[{}]: GET /api/orders/{} HTTP/1.1\" {} {}\n",
                    i / 60 % 60,
                    i % 60,
                    i % 7,
                    i % 13,
                    1000 + i % 97,
                    i * 7919 % 100_000,
                    if i % 50 == 0 { 502 } else { 200 },
                    i * 31 % 5000
                )
            })
            .collect::<String>()
            .into_bytes()
    }

    fn gz(data: &[u8], threads: usize, block: usize) -> (Vec<u8>, Summary) {
        let mut out = Vec::new();
        let header = Header {
            name: Some(b"docker.log-42".to_vec()),
            mtime: 1_700_000_000,
        };
        let opts = Options {
            level: 6,
            threads,
            block,
        };
        let s = compress(data, &mut out, &header, opts, &AtomicBool::new(false)).unwrap();
        (out, s)
    }

    /// The members of a gzip file, each checked on its own: (header length, input length).
    fn members(mut gz: &[u8]) -> Vec<usize> {
        let mut sizes = Vec::new();
        while !gz.is_empty() {
            // GzDecoder reads one member only, its CRC and size checked.
            let mut d = GzDecoder::new(gz);
            let mut back = Vec::new();
            d.read_to_end(&mut back).unwrap();
            sizes.push(back.len());
            gz = d.into_inner();
        }
        sizes
    }

    #[test]
    fn one_member_per_block_that_reads_back_identical_at_every_size() {
        let data = log_like(20_000);
        let b = MIN_BLOCK;
        for len in [0, 1, 100, b - 1, b, b + 1, 3 * b + 7, data.len()] {
            for threads in [1, 2, 3] {
                let input = &data[..len];
                let (out, s) = gz(input, threads, b);
                let mut back = Vec::new();
                MultiGzDecoder::new(&out[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, input, "len {len}, threads {threads}");
                let sizes = members(&out);
                assert_eq!(sizes.len(), len.div_ceil(b).max(1), "len {len}");
                assert!(sizes.iter().rev().skip(1).all(|&n| n == b), "{sizes:?}");
                assert_eq!(s.plain_bytes, len as u64);
                assert_eq!(s.gz_bytes, out.len() as u64);
                assert_eq!(s.lines, memchr::memchr_iter(b'\n', input).count() as u64);
                assert_eq!(s.gz_sha256, <[u8; 32]>::from(Sha256::digest(&out)));
                assert_eq!(s.crc32, crc32fast::hash(input));
            }
        }
    }

    #[test]
    fn keeps_name_and_mtime_like_gzip() {
        let data = log_like(5_000);
        let (out, _) = gz(&data, 2, MIN_BLOCK);
        assert!(members(&out).len() > 1);
        let d = GzDecoder::new(&out[..]);
        let h = d.header().unwrap();
        assert_eq!(h.filename(), Some(&b"docker.log-42"[..]));
        assert_eq!(h.mtime(), 1_700_000_000);
        assert_eq!(h.operating_system(), 3);
        // The members after the first keep the mtime, not the name (gzip -N restores the first).
        let mut first = GzDecoder::new(&out[..]);
        std::io::copy(&mut first, &mut std::io::sink()).unwrap();
        let d = GzDecoder::new(first.into_inner());
        let h = d.header().unwrap();
        assert_eq!((h.filename(), h.mtime()), (None, 1_700_000_000));
    }

    #[test]
    fn no_larger_than_one_zlib_stream_at_the_same_level() {
        let data = log_like(200_000);
        let (parallel, _) = gz(&data, 2, 1 << 20);
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap();
        let ratio = parallel.len() as f64 / single.len() as f64;
        assert!(
            ratio <= 1.0,
            "parallel {} vs single {}",
            parallel.len(),
            single.len()
        );
        let mut back = Vec::new();
        MultiGzDecoder::new(&parallel[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn cancel_and_write_errors_stop_without_hanging() {
        let data = log_like(50_000);
        let opts = Options {
            level: 6,
            threads: 2,
            block: MIN_BLOCK,
        };
        let e = compress(
            &data[..],
            Vec::new(),
            &Header::default(),
            opts,
            &AtomicBool::new(true),
        );
        assert!(e.unwrap_err().to_string().contains("stopped"));

        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(std::io::Error::from_raw_os_error(28));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let e = compress(
            &data[..],
            Full(50_000),
            &Header::default(),
            opts,
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert!(
            e.chain().any(|c| c
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.raw_os_error() == Some(28))),
            "{e:#}"
        );
    }
}
