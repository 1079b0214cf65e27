//! Parallel gzip in the pigz style. The input is cut into blocks that are deflated on all
//! the threads at once; each block is primed with the last 32 KiB of the one before as its
//! dictionary (so the ratio stays gzip's) and ends with a sync flush (so the raw deflate
//! streams, byte-aligned, concatenate into one). The result is a single ordinary gzip member
//! whose CRC-32 is combined from the blocks': `gzip -t`, `zcat` and every library read it.
//!
//! Memory is bounded: at most `2 x threads` blocks are in flight. The caller's thread reads
//! and counts lines while the workers deflate (and CRC) the blocks; a writer thread puts them
//! in order and hashes the output (sha256 of the `.gz`, the object's identity), so the file
//! never has to be read again before it is shipped.

use anyhow::{bail, Context, Result};
use flate2::{Compress, Compression, FlushCompress, Status};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// deflate's window: the most a block can refer back into the one before.
const WINDOW: usize = 32 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub level: u32,
    pub threads: usize,
    /// Bytes of input per block.
    pub block: usize,
}

/// The gzip header's fields worth keeping: the original name and mtime, as `gzip` does.
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
    /// CRC-32 of the uncompressed input (the gzip trailer's).
    pub crc32: u32,
    /// sha256 of the gzip output, header and trailer included.
    pub gz_sha256: [u8; 32],
}

struct Job {
    index: u64,
    data: Arc<Vec<u8>>,
    previous: Option<Arc<Vec<u8>>>,
    last: bool,
}

struct Done {
    index: u64,
    deflated: Vec<u8>,
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

/// Deflates one block: primed with the tail of the block before, ended by a sync flush (or
/// the final block's end of stream).
fn deflate_block(job: &Job, level: u32) -> Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if let Some(previous) = &job.previous {
        let tail = &previous[previous.len().saturating_sub(WINDOW)..];
        c.set_dictionary(tail)
            .context("cannot prime the deflate block")?;
    }
    let input = &job.data[..];
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(input.len() / 2 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let status = c
            .compress_vec(&input[consumed..], &mut out, flush)
            .context("deflate failed")?;
        let done_input = c.total_in() as usize == input.len();
        let room_left = out.capacity() > out.len();
        match status {
            Status::StreamEnd => break,
            // A sync flush is complete once all input is in and output did not fill up.
            Status::Ok | Status::BufError if !job.last && done_input && room_left => break,
            Status::Ok | Status::BufError => {}
        }
    }
    Ok(out)
}

fn worker(jobs: Arc<Mutex<Receiver<Job>>>, done: SyncSender<Result<Done>>, level: u32) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let result = deflate_block(&job, level).map(|deflated| {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&job.data);
            Done {
                index: job.index,
                deflated,
                crc,
            }
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
    let block = opts.block.max(WINDOW);
    let head = header_bytes(header);
    output.write_all(&head)?;
    let (job_tx, job_rx) = sync_channel::<Job>(threads);
    let (done_tx, done_rx) = sync_channel::<Result<Done>>(threads);
    let job_rx = Arc::new(Mutex::new(job_rx));

    std::thread::scope(|scope| -> Result<Summary> {
        for _ in 0..threads {
            let (rx, tx) = (job_rx.clone(), done_tx.clone());
            scope.spawn(move || worker(rx, tx, opts.level));
        }
        // Only the workers hold these now: when they stop, the reader and writer see it.
        drop(done_tx);
        drop(job_rx);
        // The writer: blocks come back in any order and leave in order, then the trailer.
        let head_for_hash = head.clone();
        let writer = scope.spawn(move || -> Result<(u64, u32, [u8; 32])> {
            let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
            let (mut next, mut written, mut crc) = (0u64, 0u64, crc32fast::Hasher::new());
            let mut sha = Sha256::new();
            sha.update(&head_for_hash);
            for done in done_rx {
                let done = done?;
                pending.insert(done.index, done);
                while let Some(d) = pending.remove(&next) {
                    output.write_all(&d.deflated)?;
                    sha.update(&d.deflated);
                    written += d.deflated.len() as u64;
                    crc.combine(&d.crc);
                    next += 1;
                }
            }
            if !pending.is_empty() {
                bail!("a compressed block went missing");
            }
            // ISIZE is the length modulo 2^32 (RFC 1952); crc32fast tracks the whole length.
            let plain = crc.total_len();
            let crc32 = crc.finalize();
            let mut trailer = [0u8; 8];
            trailer[..4].copy_from_slice(&crc32.to_le_bytes());
            trailer[4..].copy_from_slice(&(plain as u32).to_le_bytes());
            output.write_all(&trailer)?;
            sha.update(trailer);
            output.flush()?;
            Ok((written + 8, crc32, sha.finalize().into()))
        });

        let (mut lines, mut plain, mut index) = (0u64, 0u64, 0u64);
        let mut previous: Option<Arc<Vec<u8>>> = None;
        let read_result = (|| -> Result<()> {
            let mut current = read_block(&mut input, block)?;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    bail!("stopped");
                }
                // One block ahead: the last block is the one followed by nothing.
                let next = read_block(&mut input, block)?;
                let last = next.is_empty();
                lines += memchr::memchr_iter(b'\n', &current).count() as u64;
                plain += current.len() as u64;
                let data = Arc::new(current);
                let job = Job {
                    index,
                    data: data.clone(),
                    previous: previous.take(),
                    last,
                };
                if job_tx.send(job).is_err() {
                    return Ok(()); // the writer stopped: its error is the one reported
                }
                index += 1;
                if last {
                    return Ok(());
                }
                previous = Some(data);
                current = next;
            }
        })();
        drop(job_tx);
        // A panic of the writer is reported as an error, not carried into this thread.
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the gzip writer thread panicked")));
        read_result?;
        let (deflated, crc32, gz_sha256) = written?;
        Ok(Summary {
            plain_bytes: plain,
            gz_bytes: head.len() as u64 + deflated,
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
    use flate2::read::{GzDecoder, MultiGzDecoder};

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

    #[test]
    fn one_gzip_member_that_reads_back_identical_at_every_size() {
        let data = log_like(20_000);
        for len in [
            0,
            1,
            100,
            WINDOW - 1,
            WINDOW,
            WINDOW + 1,
            3 * WINDOW + 7,
            data.len(),
        ] {
            for threads in [1, 2, 3] {
                let input = &data[..len];
                let (out, s) = gz(input, threads, WINDOW);
                // GzDecoder reads one member only: everything must be in it, CRC and size checked.
                let mut back = Vec::new();
                GzDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
                assert_eq!(back, input, "len {len}, threads {threads}");
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
        let (out, _) = gz(b"x\n", 2, WINDOW);
        let d = GzDecoder::new(&out[..]);
        let h = d.header().unwrap();
        assert_eq!(h.filename(), Some(&b"docker.log-42"[..]));
        assert_eq!(h.mtime(), 1_700_000_000);
        assert_eq!(h.operating_system(), 3);
    }

    #[test]
    fn size_stays_within_a_percent_of_one_stream() {
        let data = log_like(200_000);
        let (parallel, _) = gz(&data, 2, 1 << 20);
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap();
        let ratio = parallel.len() as f64 / single.len() as f64;
        assert!(
            ratio < 1.01,
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
            block: WINDOW,
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
