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

/// What is stored with an object: its content type, its sha256 (lower-case hex, computed
/// when the file was written, so shipping never reads it twice) and the metadata the
/// destination keeps where it can (S3: `x-amz-meta-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: &'static str,
    pub sha256: String,
    pub metadata: Vec<(String, String)>,
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

    /// Where a person can download the object for `expiry` (S3: a presigned GET URL), and
    /// until when if it expires.
    fn link(
        &self,
        key: &ObjectKey,
        expiry: std::time::Duration,
    ) -> Result<(String, Option<String>)>;
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
