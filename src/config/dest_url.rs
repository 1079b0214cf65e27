//! Where rotated logs go: `s3://BUCKET[/PREFIX]` or `file:///DIR`, checked before the first
//! upload (bucket naming rules, no `..`), and the object key of a rotated file there.

use super::values::{Invalid, SettingValue};
use crate::key_template::KeyTemplate;
use crate::naming::ObjectKey;
use std::path::PathBuf;
use std::str::FromStr;

/// Where rotated logs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestUrl {
    /// `file:///DIR`: objects are written under DIR as `<HOST>/<file name>`.
    File { root: PathBuf },
    /// `s3://BUCKET[/PREFIX]`: objects are `<PREFIX>/<HOST>/<file name>` in BUCKET.
    S3 { bucket: String, prefix: String },
}

impl DestUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "destination {url:?} must be file:///ABSOLUTE/DIR (three slashes: file:// then the path)"
                ));
            }
            if path.split('/').any(|part| part == "..") {
                return Err(format!("destination {url:?} must not contain '..'"));
            }
            let trimmed = path.trim_end_matches('/');
            let root = if trimmed.is_empty() { "/" } else { trimmed };
            return Ok(DestUrl::File {
                root: PathBuf::from(root),
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            validate_bucket(bucket).map_err(|e| format!("destination {url:?}: {e}"))?;
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|p| p == ".." || p == ".") || prefix.contains("//") {
                return Err(format!(
                    "destination {url:?}: the prefix must not contain '.', '..' or empty parts"
                ));
            }
            return Ok(DestUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        Err(format!(
            "destination {url:?} is not a URL fasttrack knows; use s3://BUCKET[/PREFIX] or file:///DIR"
        ))
    }

    /// The key of `file_name` at this destination, by `template` (src/key_template.rs), for
    /// a file rotated at `at`.
    pub fn key(
        &self,
        template: &KeyTemplate,
        host: &str,
        file_name: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<ObjectKey> {
        let prefix = match self {
            DestUrl::File { .. } => "",
            DestUrl::S3 { prefix, .. } => prefix,
        };
        template
            .render(prefix, host, file_name, at)
            .map_err(|e| anyhow::anyhow!("{e}; fix --key-template"))
    }
}

impl std::fmt::Display for DestUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DestUrl::File { root } => write!(f, "file://{}", root.display()),
            DestUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            DestUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl FromStr for DestUrl {
    type Err = Invalid;
    fn from_str(url: &str) -> Result<Self, Invalid> {
        DestUrl::parse(url.trim()).map_err(Invalid::Sentence)
    }
}

impl SettingValue for DestUrl {
    type Toml = String;
}

/// S3's bucket naming rules, so that a typo is caught before the first upload.
fn validate_bucket(bucket: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{bucket:?} is not a valid bucket name (3 to 63 lower-case letters, digits, '.' and '-')"
        ))
    }
}
