//! Where rotated logs are shipped. One small trait so the spool does not care whether the
//! destination is a directory or a bucket. A failed shipment says whether retrying may fix it
//! ([`ShipError`]).

pub mod local;
pub mod s3;

use crate::config::{Config, DestUrl};
use crate::growing::Reader;
use crate::naming::ObjectKey;
use crate::progress::Progress;
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

impl Shipped {
    /// The size of the object the destination holds.
    pub fn bytes(&self) -> u64 {
        match self {
            Shipped::Written { bytes } | Shipped::AlreadyThere { bytes } => *bytes,
        }
    }
}

/// What is stored with an object: its content type, its sha256 (lower-case hex, computed
/// when the file was written, so shipping never reads it twice) and the metadata the
/// destination keeps where it can (S3: `x-amz-meta-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: &'static str,
    pub sha256: String,
    pub metadata: Vec<(String, String)>,
    /// Object tags (`--tag`, `--tag-incident`); none: no tagging header at all.
    pub tags: Vec<(String, String)>,
}

impl ObjectMeta {
    /// The `x-amz-tagging` value (`k=v&k2=v2`, each part percent-encoded), `None` without tags.
    pub fn tagging(&self) -> Option<String> {
        use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
        const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        (!self.tags.is_empty()).then(|| {
            self.tags
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        utf8_percent_encode(k, ENCODE),
                        utf8_percent_encode(v, ENCODE)
                    )
                })
                .collect::<Vec<_>>()
                .join("&")
        })
    }
}

/// Why a shipment failed, sorted for the callers that branch on it: the spool retries a
/// [`ShipError::Retryable`] one ([`crate::retry`]), `rotate`/`upload` exit 3 on it and 1 on a
/// [`ShipError::Permanent`] one, `watch` retries a permanent one at its longest delay only.
/// Both keep the whole message: `{e:#}` prints its context chain, as anyhow does.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// Retrying may fix it: the store unreachable or busy, a timeout, a local I/O error.
    #[error(transparent)]
    Retryable(anyhow::Error),
    /// Retrying will not fix it (wrong bucket, credentials, a conflicting object): the
    /// message says what to change.
    #[error(transparent)]
    Permanent(anyhow::Error),
}

impl ShipError {
    pub fn permanent(message: String) -> ShipError {
        ShipError::Permanent(anyhow::Error::msg(message))
    }

    pub fn retryable(message: String) -> ShipError {
        ShipError::Retryable(anyhow::Error::msg(message))
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, ShipError::Permanent(_))
    }

    /// Adds `context` in front of the message; the kind stays.
    pub fn context(self, context: String) -> ShipError {
        match self {
            ShipError::Retryable(e) => ShipError::Retryable(e.context(context)),
            ShipError::Permanent(e) => ShipError::Permanent(e.context(context)),
        }
    }
}

/// Any other error on the way (reading the file, a task that failed) is worth retrying.
impl From<anyhow::Error> for ShipError {
    fn from(e: anyhow::Error) -> ShipError {
        ShipError::Retryable(e)
    }
}

/// How one line of `fasttrack check` came out. `Warn` does not change the exit code:
/// fasttrack works, but something should be fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One line of `fasttrack check`: `OK    what: detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    pub what: String,
    pub verdict: Verdict,
    pub detail: String,
}

impl CheckItem {
    pub fn new(what: impl Into<String>, verdict: Verdict, detail: impl Into<String>) -> CheckItem {
        CheckItem {
            what: what.into(),
            verdict,
            detail: detail.into(),
        }
    }

    pub fn ok(what: impl Into<String>, detail: impl Into<String>) -> CheckItem {
        CheckItem::new(what, Verdict::Ok, detail)
    }

    pub fn warn(what: impl Into<String>, detail: impl Into<String>) -> CheckItem {
        CheckItem::new(what, Verdict::Warn, detail)
    }

    pub fn fail(what: impl Into<String>, detail: impl Into<String>) -> CheckItem {
        CheckItem::new(what, Verdict::Fail, detail)
    }

    /// OK with the success's detail, FAIL with the error's.
    pub fn from_result(what: impl Into<String>, result: Result<String, String>) -> CheckItem {
        match result {
            Ok(detail) => CheckItem::ok(what, detail),
            Err(detail) => CheckItem::fail(what, detail),
        }
    }
}

pub trait Destination: Send + Sync {
    /// Writes `file` at `key` completely or not at all, verifying what the destination holds;
    /// identical existing objects count as shipped, different ones are a [`ShipError::Permanent`].
    /// The bytes written or acknowledged go to `progress` as they are (per chunk or part).
    fn ship(
        &self,
        key: &ObjectKey,
        file: &Path,
        meta: &ObjectMeta,
        progress: &dyn Progress,
    ) -> Result<Shipped, ShipError>;

    /// The smallest plain file worth shipping while it is compressed ([`Self::ship_growing`]),
    /// or `None` where the destination cannot (then every file is shipped once compressed).
    fn ships_growing_from(&self) -> Option<u64> {
        None
    }

    /// Writes the `.gz` that is being written to `growing` at `key`, as [`Self::ship`] does a
    /// file, reading its bytes as they arrive; it completes only once the file is complete and
    /// durable, and fails if it never is. `meta.sha256` is empty (the `.gz` is not whole yet):
    /// the object is identified by the plain file's sums in `meta.metadata`.
    fn ship_growing(
        &self,
        key: &ObjectKey,
        growing: &Reader,
        meta: &ObjectMeta,
        progress: &dyn Progress,
    ) -> Result<Shipped, ShipError> {
        let _ = (key, meta, progress);
        Err(ShipError::permanent(format!(
            "this destination cannot ship {} while it is written",
            growing.path().display()
        )))
    }

    /// Reachable, writable, credentials: each as a line of `fasttrack check`.
    fn check(&self, probe_key: &ObjectKey) -> Vec<CheckItem>;

    /// Where a person can download the object for `expiry` (S3: a presigned GET URL), and
    /// until when it really works, which may be sooner ([`Link`]).
    fn link(&self, key: &ObjectKey, expiry: std::time::Duration) -> Result<Link>;

    /// The keys of the objects whose key starts with `prefix`, in key order (S3: every page
    /// of ListObjectsV2; file://: the files below that directory, without the temporary
    /// `.`-files of a copy under way). Nothing there is an empty list, not an error.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// The bytes of the (small) object at `key`.
    fn get(&self, key: &str) -> Result<Vec<u8>>;

    /// Lists every prefix and fetches the objects listed whose key ends with `suffix`, handing
    /// each to `each` as it arrives, in no particular order: the caller keeps what it needs of
    /// each and never holds them all (`fasttrack report`). Where the destination can (S3), the
    /// prefixes are listed at once and objects fetched while the listing goes on, up to
    /// `concurrency` at a time. A failed listing is the error; a failed fetch goes to `each`.
    fn fetch_under(
        &self,
        prefixes: &[String],
        suffix: &str,
        concurrency: usize,
        each: &mut dyn FnMut(&str, Result<Vec<u8>>),
    ) -> Result<()> {
        let _ = concurrency;
        for prefix in prefixes {
            for key in self.list(prefix)?.iter().filter(|k| k.ends_with(suffix)) {
                each(key, self.get(key));
            }
        }
        Ok(())
    }
}

/// A download link, as a notification shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub url: String,
    /// RFC 3339: until when it works (`None`: it does not expire). The earlier of the expiry
    /// asked for and that of the credentials that signed it: S3 refuses a presigned URL once
    /// its signer's credentials have expired, whatever the URL says.
    pub expires: Option<String>,
    /// RFC 3339: when the (temporary) credentials that signed it expire, when that is what
    /// cut the link short; the message says so.
    pub credentials_expire: Option<String>,
}

impl Link {
    /// A link (or a mere name) that does not expire.
    pub fn unsigned(url: String) -> Link {
        Link {
            url,
            expires: None,
            credentials_expire: None,
        }
    }
}

/// Opens the configured destination (for S3: loads the AWS config and credentials chain).
pub fn open(config: &Config) -> Result<Box<dyn Destination>> {
    open_url(config.require_dest()?, config)
}

/// Opens the destination at `url` with the configuration's S3 options (`fasttrack report`
/// reads another destination than `--dest` this way).
pub fn open_url(url: &DestUrl, config: &Config) -> Result<Box<dyn Destination>> {
    Ok(match url {
        DestUrl::File { root } => Box::new(local::LocalDir::new(root)),
        DestUrl::S3 { bucket, .. } => {
            let mut s3 = s3::S3Dest::new(bucket, &config.s3, &config.state_dir)?;
            let notify = config.incident.notify.as_ref();
            if let Some(profile) = notify.and_then(|n| n.link_profile.as_ref()) {
                s3.sign_links_with(profile)?;
            }
            Box::new(s3)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::{anyhow, Context};

    #[test]
    fn the_message_is_kept_word_for_word_and_context_keeps_the_kind() {
        let e = ShipError::from(
            Err::<(), _>(anyhow!("connection refused"))
                .context("cannot reach s3.local")
                .unwrap_err(),
        );
        assert!(!e.is_permanent());
        assert_eq!(
            format!("{e:#}"),
            "cannot reach s3.local: connection refused"
        );
        assert_eq!(e.to_string(), "cannot reach s3.local");
        let e = ShipError::permanent("bucket b does not exist; create it or fix --dest".into())
            .context("cannot ship f to s3://b as k".into());
        assert!(e.is_permanent());
        assert_eq!(
            format!("{e:#}"),
            "cannot ship f to s3://b as k: bucket b does not exist; create it or fix --dest"
        );
        // as an anyhow error (a command's result), the chain is the same
        assert_eq!(
            format!("{:#}", anyhow::Error::from(e)),
            "cannot ship f to s3://b as k: bucket b does not exist; create it or fix --dest"
        );
    }
}
