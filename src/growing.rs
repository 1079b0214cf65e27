//! A `.gz` that is still being written, read by an upload as it grows: the compressor
//! publishes how many bytes reached the file, and at the end the file's final size (once it
//! is renamed to its final name and synced) or why it failed. A part of a multipart upload
//! waits here until its bytes exist, then reads them from the file like any other part.
//!
//! The writer is a thread (the compressor), the readers are tasks of the S3 runtime: the
//! state is a `tokio::sync::watch`, which needs no runtime to send.

use anyhow::{anyhow, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

#[derive(Debug, Clone, Default)]
struct Grown {
    written: u64,
    /// `Some(Ok(size))`: complete and durable under its final name; `Some(Err)`: it never will be.
    end: Option<Result<u64, String>>,
}

/// One file being compressed: `partial` while written, `complete` once renamed. The writer's
/// side; [`Growing::reader`] gives the readers'.
#[derive(Debug)]
pub struct Growing {
    partial: PathBuf,
    complete: PathBuf,
    tx: watch::Sender<Grown>,
}

/// A reader's view of a [`Growing`] file: owned, so that tasks can take it along.
#[derive(Debug, Clone)]
pub struct Reader {
    partial: PathBuf,
    complete: PathBuf,
    rx: watch::Receiver<Grown>,
}

/// What is there of a range that was waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// `len` bytes from the offset exist (the whole range, or the file's tail).
    Bytes(u64),
    /// The file ended at or before the offset.
    Past,
}

impl Growing {
    pub fn new(partial: &Path, complete: &Path) -> Growing {
        Growing {
            partial: partial.to_path_buf(),
            complete: complete.to_path_buf(),
            tx: watch::Sender::new(Grown::default()),
        }
    }

    pub fn reader(&self) -> Reader {
        Reader {
            partial: self.partial.clone(),
            complete: self.complete.clone(),
            rx: self.tx.subscribe(),
        }
    }

    /// `total` bytes of the file are written (readable by anyone who opens it).
    pub fn written(&self, total: u64) {
        self.tx.send_modify(|g| g.written = g.written.max(total));
    }

    /// The file is complete, durable and `size` bytes long, under its final name.
    pub fn complete(&self, size: u64) {
        self.tx.send_modify(|g| {
            if g.end.is_none() {
                g.written = size;
                g.end = Some(Ok(size));
            }
        });
    }

    /// The file will not be completed (compression failed or was stopped).
    pub fn failed(&self, why: &str) {
        self.tx.send_modify(|g| {
            if g.end.is_none() {
                g.end = Some(Err(why.to_string()));
            }
        });
    }
}

impl Reader {
    /// The name the file is written under (for messages).
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// Waits until `len` bytes from `offset` exist, or the file ended before: what is there.
    pub async fn range(&self, offset: u64, len: u64) -> Result<Range> {
        let mut rx = self.rx.clone();
        let grown = rx
            .wait_for(|g| g.written >= offset + len || g.end.is_some())
            .await
            .map_err(|_| anyhow!("{} is no longer being written", self.partial.display()))?
            .clone();
        match grown.end {
            Some(Err(why)) => Err(anyhow!(
                "{} was not completed: {why}",
                self.partial.display()
            )),
            Some(Ok(size)) if size <= offset => Ok(Range::Past),
            Some(Ok(size)) => Ok(Range::Bytes(len.min(size - offset))),
            None => Ok(Range::Bytes(len)),
        }
    }

    /// Waits for the end: the final size.
    pub async fn size(&self) -> Result<u64> {
        let mut rx = self.rx.clone();
        let grown = rx
            .wait_for(|g| g.end.is_some())
            .await
            .map_err(|_| anyhow!("{} is no longer being written", self.partial.display()))?
            .clone();
        match grown.end {
            Some(Ok(size)) => Ok(size),
            Some(Err(why)) => Err(anyhow!(
                "{} was not completed: {why}",
                self.partial.display()
            )),
            None => Err(anyhow!("{} has no end", self.partial.display())),
        }
    }

    /// Opens the file for reading under whichever name it has now: its partial name, or its
    /// final one once renamed (the bytes are the same).
    pub fn open(&self) -> Result<File> {
        match File::open(&self.partial) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::open(&self.complete)
                .with_context(|| format!("cannot open {}", self.complete.display())),
            Err(e) => Err(e).with_context(|| format!("cannot open {}", self.partial.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_range_waits_for_its_bytes_and_the_tail_for_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let g = Growing::new(&dir.path().join("x.part"), &dir.path().join("x"));
        let rt = rt();
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=10 {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    g.written(i * 100);
                }
                g.complete(1000);
            });
            let g = g.reader();
            rt.block_on(async {
                assert_eq!(g.range(0, 300).await.unwrap(), Range::Bytes(300));
                assert_eq!(g.range(900, 300).await.unwrap(), Range::Bytes(100));
                assert_eq!(g.range(1000, 300).await.unwrap(), Range::Past);
                assert_eq!(g.size().await.unwrap(), 1000);
            });
        });
    }

    #[test]
    fn a_failure_reaches_every_waiter_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let g = Growing::new(&dir.path().join("x.part"), &dir.path().join("x"));
        g.written(10);
        g.failed("stopped");
        g.complete(10); // too late: the failure stands for whoever already saw it
        let rt = rt();
        let e = rt
            .block_on(g.reader().range(0, 100))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.part was not completed: stopped"), "{e}");
    }

    #[test]
    fn open_follows_the_rename() {
        let dir = tempfile::tempdir().unwrap();
        let (part, done) = (dir.path().join("x.part"), dir.path().join("x"));
        let g = Growing::new(&part, &done).reader();
        assert!(g.open().unwrap_err().to_string().contains("cannot open"));
        std::fs::write(&part, "a").unwrap();
        assert!(g.open().is_ok());
        std::fs::rename(&part, &done).unwrap();
        assert!(g.open().is_ok());
    }
}
