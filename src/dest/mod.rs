//! Where rotated logs are shipped. One small trait so the spool does not care whether the
//! destination is a directory or (later) a bucket.

pub mod local;

use crate::config::DestUrl;
use crate::naming::ObjectKey;
use anyhow::Result;
use std::path::Path;

/// What the destination holds after a successful `ship`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shipped {
    /// The object was written.
    Written { bytes: u64 },
    /// An identical object was already there (a retry after a crash): nothing was written.
    AlreadyThere { bytes: u64 },
}

pub trait Destination {
    /// Writes `file` at `key` completely or not at all; identical existing objects count as shipped,
    /// different ones are an error (never overwritten).
    fn ship(&self, key: &ObjectKey, file: &Path) -> Result<Shipped>;
}

pub fn open(url: &DestUrl) -> Box<dyn Destination + Send + Sync> {
    match url {
        DestUrl::File { root } => Box::new(local::LocalDir::new(root)),
    }
}
