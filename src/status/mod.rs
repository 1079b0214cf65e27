//! `fasttrack status`: read-only report of the log, the rotated files and their state, the
//! lock holder, the open incident, the last rotation and the last error. It never changes
//! anything (safe for monitoring, as any user who can read the state dir); it exits 3 when
//! something is waiting to be shipped, like `rotate`, so that a check can alert on it.
//!
//! One model, two renderings (issue 14): [`gather`] does all the reading into a [`Status`],
//! and the text ([`text`]) and the JSON (`--json`, the serde form of [`Status`]) are both
//! printed from it, so the two can never disagree. The JSON is a public contract, documented
//! field by field in docs/status-json.md: adding a field keeps [`SCHEMA_VERSION`], removing or
//! renaming one (or changing its type or meaning) bumps it.

mod gather;
#[cfg(test)]
mod tests;
mod text;

pub use gather::gather;
pub use text::render_text;

use crate::config::Config;
use crate::exit::Outcome;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// The `version` of the JSON document (docs/status-json.md).
pub const SCHEMA_VERSION: u32 = 1;

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub fn run(config: &Config, format: Format) -> Result<Outcome> {
    let status = gather(config)?;
    let report = match format {
        Format::Text => render_text(&status),
        Format::Json => render_json(&status)?,
    };
    crate::output::print(format_args!("{report}"))?;
    Ok(status.outcome())
}

/// The JSON document, pretty-printed, with a final newline.
pub fn render_json(status: &Status) -> Result<String> {
    let mut json =
        serde_json::to_string_pretty(status).context("cannot serialise the status as JSON")?;
    json.push('\n');
    Ok(json)
}

/// Everything `status` reports. Every field is serialised, `None` as null, so that a consumer
/// of the JSON can rely on every key being there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// [`SCHEMA_VERSION`]; first, so that a consumer can check it before anything else.
    pub version: u32,
    pub generated_at: String,
    pub generated_at_unix: i64,
    pub fasttrack_version: String,
    pub host: String,
    /// `s3://BUCKET[/PREFIX]` or `file:///DIR`; `None` when not configured.
    pub destination: Option<String>,
    pub log: LiveLog,
    pub state_dir: StateDirStatus,
    pub incident: Incident,
    /// How many rotated files wait to be compressed or shipped: exit 3 when not 0.
    pub pending: usize,
    /// Oldest first (ascending suffix: the order the lines were written).
    pub rotated_files: Vec<RotatedLog>,
    pub notifications: Notifications,
    pub last_rotation: Option<LastRotation>,
    pub last_error: Option<LastError>,
}

impl Status {
    /// The exit status of `status`, text or JSON alike.
    pub fn outcome(&self) -> Outcome {
        if self.pending > 0 {
            Outcome::Pending
        } else {
            Outcome::Done
        }
    }
}

/// The live log syslog-ng writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveLog {
    pub path: String,
    /// False only when it does not exist (another error leaves it true, with `error` set).
    pub exists: bool,
    /// A regular file, the only kind fasttrack rotates.
    pub regular_file: bool,
    /// Size and modification time: set for a regular file only.
    pub bytes: Option<u64>,
    pub modified: Option<String>,
    pub modified_unix: Option<i64>,
    /// Why it could not be looked at (e.g. `No such file or directory (os error 2)`).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateDirStatus {
    pub path: String,
    pub exists: bool,
    /// The pid holding the state lock (rotating or shipping right now); `None` when idle.
    pub locked_by_pid: Option<u32>,
}

/// The open incident (`<state-dir>/incident`) and the digest `watch` last saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub open: bool,
    /// When it opened, as the marker says; `None` when none is open or the marker is damaged.
    pub since: Option<String>,
    pub since_unix: Option<i64>,
    /// `None` when `watch` saved none, or it has counted nothing yet.
    pub digest: Option<DigestHeadline>,
}

/// The headline of the open incident's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestHeadline {
    pub lines: u64,
    /// Snoozed by `--ignore`.
    pub ignored: u64,
    /// Selected by syslog-ng's filter but not 5xx: many of them mean the filter is too broad.
    pub not_5xx: u64,
    pub first_seen: Option<String>,
    pub first_seen_unix: Option<i64>,
    pub last_seen: Option<String>,
    pub last_seen_unix: Option<i64>,
    pub statuses: BTreeMap<String, u64>,
    pub top_message: Option<TopMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopMessage {
    pub template: String,
    pub count: u64,
}

/// The furthest stage found on disk for one rotated log (src/naming.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageName {
    Partial,
    Plain,
    Compressed,
}

/// Where one rotated log is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Compressed and shipped; kept locally until `--keep` prunes it.
    Shipped,
    /// Compressed, not shipped yet.
    PendingUpload,
    /// Rotated, not compressed yet.
    PendingCompression,
    /// Only an unfinished `.gz.part`, discarded by the next run.
    Unfinished,
}

impl FileState {
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            FileState::PendingUpload | FileState::PendingCompression
        )
    }
}

/// One rotated log (one suffix) and the files found for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotatedLog {
    pub suffix: u64,
    pub stage: StageName,
    pub state: FileState,
    pub pending: bool,
    /// `docker.log-<suffix>.gz`, `docker.log-<suffix>` (pending, or the leftover of an
    /// interrupted compression when the `.gz` exists) and `docker.log-<suffix>.gz.part`.
    pub gz: Option<FileOnDisk>,
    pub plain: Option<FileOnDisk>,
    pub partial: Option<FileOnDisk>,
    /// What the `.gz` holds, recorded at compression; `None` before, or if not recorded.
    pub lines: Option<u64>,
    pub uncompressed_bytes: Option<u64>,
    /// The name of its incident digest JSON beside it, `None` when there is none.
    pub digest: Option<String>,
    pub shipped: Option<Shipment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOnDisk {
    pub name: String,
    /// `None` when it could not be read (gone since the directory was listed).
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shipment {
    pub at: String,
    pub at_unix: Option<i64>,
    pub dest: String,
    pub key: String,
    pub bytes: u64,
}

/// Webhook notifications of shipped incidents waiting in `<state-dir>/notify/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notifications {
    /// Whether `notify` is set.
    pub configured: bool,
    /// Oldest first.
    pub waiting: Vec<WaitingNotification>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitingNotification {
    /// The shipped `.gz` it announces.
    pub file: String,
    pub attempts: u32,
    /// `None`: due at the next delivery (never tried yet).
    pub next_attempt_at: Option<String>,
    pub next_attempt_at_unix: Option<u64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastRotation {
    pub at: String,
    pub at_unix: Option<i64>,
    /// The rotated file's name.
    pub file: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    pub at: String,
    pub at_unix: Option<i64>,
    pub message: String,
}

/// Unix seconds as RFC 3339 UTC (the digits themselves if out of chrono's range).
pub(crate) fn unix_to_rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

/// The Unix seconds of an RFC 3339 time, `None` if it is not one.
pub(crate) fn rfc3339_to_unix(time: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp())
}
