//! Reads what `status` reports into a [`Status`]: the only part of `status` that does I/O.
//! It reads what `status` always read (the log's and the rotated files' metadata, the state
//! dir's `state.toml`, lock, incident marker, saved digest and notification queue) and never
//! creates or changes anything.

use super::{
    rfc3339_to_unix, unix_to_rfc3339, DigestHeadline, FileOnDisk, FileState, Incident, LastError,
    LastRotation, LiveLog, Notifications, RotatedLog, Shipment, StageName, StateDirStatus, Status,
    TopMessage, WaitingNotification, SCHEMA_VERSION,
};
use crate::config::Config;
use crate::digest::sidecar::sidecar_path;
use crate::naming::{RotatedName, Stage};
use crate::spool::{Group, Spool};
use crate::state::{State, StateDir};
use anyhow::Result;
use std::os::unix::fs::MetadataExt;

/// Reads everything `status` reports. Fails only when the state file is damaged or the log's
/// directory cannot be listed (the error names the file and what to do).
pub fn gather(config: &Config) -> Result<Status> {
    let state_dir = StateDir::existing(&config.state_dir);
    let state_exists = config.state_dir.is_dir();
    let state = if state_exists {
        state_dir.load()?
    } else {
        State::default()
    };
    let rotated_files = rotated_files(config, &state)?;
    let now = chrono::Utc::now();
    Ok(Status {
        version: SCHEMA_VERSION,
        generated_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        generated_at_unix: now.timestamp(),
        fasttrack_version: env!("CARGO_PKG_VERSION").to_string(),
        host: config.host.clone(),
        destination: config.dest.as_ref().map(|d| d.to_string()),
        log: live_log(config),
        state_dir: StateDirStatus {
            path: config.state_dir.display().to_string(),
            exists: state_exists,
            locked_by_pid: state_exists.then(|| state_dir.lock_holder()).flatten(),
        },
        incident: incident(config, &state_dir),
        pending: rotated_files.iter().filter(|f| f.pending).count(),
        rotated_files,
        notifications: notifications(config),
        last_rotation: state.last_rotation.map(|r| LastRotation {
            at_unix: rfc3339_to_unix(&r.at),
            at: r.at,
            file: r.file,
            bytes: r.bytes,
        }),
        last_error: state.last_error.map(|e| LastError {
            at_unix: rfc3339_to_unix(&e.at),
            at: e.at,
            message: e.message,
        }),
    })
}

fn live_log(config: &Config) -> LiveLog {
    let mut log = LiveLog {
        path: config.log.display().to_string(),
        exists: true,
        regular_file: false,
        bytes: None,
        modified: None,
        modified_unix: None,
        error: None,
    };
    match std::fs::symlink_metadata(&config.log) {
        Ok(m) if m.is_file() => {
            log.regular_file = true;
            log.bytes = Some(m.len());
            log.modified = Some(unix_to_rfc3339(m.mtime()));
            log.modified_unix = Some(m.mtime());
        }
        Ok(_) => {}
        Err(e) => {
            log.exists = e.kind() != std::io::ErrorKind::NotFound;
            log.error = Some(e.to_string());
        }
    }
    log
}

/// The incident marker and the open incident's digest, as `watch` last saved it.
fn incident(config: &Config, state_dir: &StateDir) -> Incident {
    let marker = state_dir.incident_marker();
    let since = marker.clone().flatten();
    let digest = crate::digest::stream::peek_open(&config.state_dir)
        .filter(|d| d.lines > 0 || d.ignored > 0 || d.not_5xx > 0)
        .map(|d| DigestHeadline {
            first_seen_unix: d.first_seen.as_deref().and_then(rfc3339_to_unix),
            last_seen_unix: d.last_seen.as_deref().and_then(rfc3339_to_unix),
            lines: d.lines,
            ignored: d.ignored,
            not_5xx: d.not_5xx,
            first_seen: d.first_seen,
            last_seen: d.last_seen,
            statuses: d.statuses,
            top_message: d.messages.into_iter().next().map(|m| TopMessage {
                template: m.template,
                count: m.count,
            }),
        });
    Incident {
        open: marker.is_some(),
        since_unix: since.as_deref().and_then(rfc3339_to_unix),
        since,
        digest,
    }
}

/// Each rotated log beside the live one, oldest first, with its files and its state.
fn rotated_files(config: &Config, state: &State) -> Result<Vec<RotatedLog>> {
    let spool = Spool::scan(config)?;
    Ok(spool
        .groups
        .iter()
        .map(|(&suffix, group)| rotated_log(config, state, suffix, group))
        .collect())
}

fn rotated_log(config: &Config, state: &State, suffix: u64, group: &Group) -> RotatedLog {
    let file = |present: bool, stage| {
        present.then(|| {
            let name = RotatedName::new(config.log_name(), suffix, stage).to_string();
            let bytes = std::fs::metadata(config.log_dir().join(&name))
                .map(|m| m.len())
                .ok();
            FileOnDisk { name, bytes }
        })
    };
    let gz = file(group.compressed, Stage::Compressed);
    let gz_name = RotatedName::new(config.log_name(), suffix, Stage::Compressed).to_string();
    let shipped = state.shipped.get(&gz_name).filter(|_| group.compressed);
    let recorded = state.digests.get(&gz_name).filter(|_| group.compressed);
    let (stage, file_state) = if group.compressed {
        let shipped_or_not = match shipped {
            Some(_) => FileState::Shipped,
            None => FileState::PendingUpload,
        };
        (StageName::Compressed, shipped_or_not)
    } else if group.plain {
        (StageName::Plain, FileState::PendingCompression)
    } else {
        (StageName::Partial, FileState::Unfinished)
    };
    let sidecar = sidecar_path(config, suffix);
    RotatedLog {
        suffix,
        stage,
        state: file_state,
        pending: file_state.is_pending(),
        gz,
        plain: file(group.plain, Stage::Plain),
        partial: file(group.partial, Stage::Partial),
        lines: recorded.map(|d| d.lines),
        uncompressed_bytes: recorded.map(|d| d.bytes),
        digest: sidecar
            .is_file()
            .then(|| sidecar.file_name())
            .flatten()
            .map(|n| n.to_string_lossy().into_owned()),
        shipped: shipped.map(|r| Shipment {
            at: r.at.clone(),
            at_unix: rfc3339_to_unix(&r.at),
            dest: r.dest.clone(),
            key: r.key.clone(),
            bytes: r.bytes,
        }),
    }
}

fn notifications(config: &Config) -> Notifications {
    let waiting = crate::notify::pending(&config.state_dir)
        .into_iter()
        .map(|(_, job)| WaitingNotification {
            file: job.name,
            attempts: job.attempts,
            next_attempt_at: (job.next_at > 0)
                .then(|| unix_to_rfc3339(i64::try_from(job.next_at).unwrap_or(i64::MAX))),
            next_attempt_at_unix: (job.next_at > 0).then_some(job.next_at),
            last_error: job.last_error,
        })
        .collect();
    Notifications {
        configured: config.incident.notify.is_some(),
        waiting,
    }
}
