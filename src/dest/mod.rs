//! Where rotated logs are shipped. One small trait so the spool does not care whether the
//! destination is a directory or a bucket. Errors a retry cannot fix carry [`Permanent`].

pub mod local;
pub mod s3;

use crate::config::{Config, DestUrl};
use crate::naming::ObjectKey;
use anyhow::Result;
use std::path::Path;

/// What the destination holds after a successful `ship`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shipped {
    /// The object was written (and verified).
    Written { bytes: u64 },
    /// An identical object was already there (a retry after a crash): nothing was written.
    AlreadyThere { bytes: u64 },
}

/// What is known about a rotated file, stored with the object where the destination can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub host: String,
    pub source_log: String,
    pub lines: u64,
    pub plain_bytes: u64,
    /// sha256 of the uncompressed log, lower-case hex.
    pub sha256_plain: String,
}

/// An error that retrying will not fix (wrong bucket, credentials, a conflicting object):
/// the message says what to change. The caller branches on it: `rotate`/`upload` exit 1
/// instead of 3, and `watch` retries at its longest delay only.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Permanent(pub String);

pub fn is_permanent(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Permanent>())
}

/// One line of `fasttrack check`.
#[derive(Debug, Clone)]
pub struct CheckItem {
    pub what: String,
    pub result: Result<String, String>,
}

pub trait Destination: Send + Sync {
    /// Writes `file` at `key` completely or not at all, verifying what the destination holds;
    /// identical existing objects count as shipped, different ones are a [`Permanent`] error.
    fn ship(&self, key: &ObjectKey, file: &Path, meta: &ObjectMeta) -> Result<Shipped>;

    /// Reachable, writable, credentials: each as a line of `fasttrack check`.
    fn check(&self, probe_key: &ObjectKey) -> Vec<CheckItem>;
}

/// Opens the configured destination (for S3: loads the AWS config and credentials chain).
pub fn open(config: &Config) -> Result<Box<dyn Destination>> {
    Ok(match config.require_dest()? {
        DestUrl::File { root } => Box::new(local::LocalDir::new(root)),
        DestUrl::S3 { bucket, .. } => {
            Box::new(s3::S3Dest::new(bucket, &config.s3, &config.state_dir)?)
        }
    })
}
