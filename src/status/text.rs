//! The text report of `fasttrack status`, printed from a [`Status`]: pure, no I/O. Its lines
//! are what operators and tests read (tests/cli.rs); the JSON says the same in fields.

use super::{FileState, Incident, LiveLog, RotatedLog, Status};
use crate::state::UNREADABLE_TIME;

/// One `label  value` line of the report.
fn line(out: &mut String, label: &str, value: String) {
    out.push_str(&format!("{label:<15}{value}\n"))
}

pub fn render_text(status: &Status) -> String {
    let mut out = String::new();
    line(&mut out, "log", live_log(&status.log));
    line(
        &mut out,
        "destination",
        match &status.destination {
            Some(d) => format!("{d} (host {})", status.host),
            None => "not configured (set --dest)".to_string(),
        },
    );
    let dir = &status.state_dir;
    line(
        &mut out,
        "state dir",
        match (dir.exists, dir.locked_by_pid) {
            (false, _) => format!("{} (not created yet)", dir.path),
            (true, Some(pid)) => {
                format!("{} (locked by pid {pid}: rotating or shipping)", dir.path)
            }
            (true, None) => format!("{} (idle)", dir.path),
        },
    );
    incident(&mut out, &status.incident);
    rotated_files(&mut out, status);
    notifications(&mut out, status);
    line(
        &mut out,
        "last rotation",
        match &status.last_rotation {
            Some(r) => format!("{} {} ({} bytes)", r.at, r.file, r.bytes),
            None => "none recorded".to_string(),
        },
    );
    line(
        &mut out,
        "last error",
        match &status.last_error {
            Some(e) => format!("{} {}", e.at, e.message),
            None => "none recorded".to_string(),
        },
    );
    out
}

fn live_log(log: &LiveLog) -> String {
    match (&log.error, log.bytes, &log.modified) {
        (Some(e), _, _) => format!("{} ({e})", log.path),
        (None, Some(bytes), Some(modified)) if log.regular_file => {
            format!("{} ({bytes} bytes, modified {modified})", log.path)
        }
        _ => format!("{} (NOT a regular file: it will not be rotated)", log.path),
    }
}

/// The incident marker and the open incident's digest, as `watch` last saved it.
fn incident(out: &mut String, incident: &Incident) {
    line(
        out,
        "incident",
        if incident.open {
            format!(
                "open since {}: fast-tracked after the next quiet period",
                incident.since.as_deref().unwrap_or(UNREADABLE_TIME)
            )
        } else {
            "none open".to_string()
        },
    );
    let Some(digest) = &incident.digest else {
        return;
    };
    let top = digest.top_message.as_ref().map_or(String::new(), |m| {
        format!("; top: {} x{}", m.template, m.count)
    });
    line(
        out,
        "  digest",
        format!("{} lines, {} snoozed{top}", digest.lines, digest.ignored),
    );
    if digest.not_5xx > 0 {
        line(
            out,
            "  not 5xx",
            format!(
                "{} lines matched syslog-ng's filter with a status that is not 5xx: they open \
                 no incident; a large number means the filter is too broad (use the shipped \
                 f_5xxERR-hook, see README)",
                digest.not_5xx
            ),
        );
    }
}

/// Each rotated file and its stage, one line per file on disk.
fn rotated_files(out: &mut String, status: &Status) {
    line(
        out,
        "rotated files",
        if status.rotated_files.is_empty() {
            "none".to_string()
        } else {
            format!(
                "{} ({} pending), oldest first:",
                status.rotated_files.len(),
                status.pending
            )
        },
    );
    for log in &status.rotated_files {
        rotated_log(out, log);
    }
}

fn rotated_log(out: &mut String, log: &RotatedLog) {
    let mut file = |name: &str, bytes: Option<u64>, what: &str| {
        let size = bytes.map_or(String::new(), |b| format!("{b} bytes"));
        out.push_str(&format!("  {name:<34}{size:<16}{what}\n"));
    };
    if let Some(gz) = &log.gz {
        let what = match &log.shipped {
            Some(rec) => format!("shipped {} to {} {}", rec.at, rec.dest, rec.key),
            None => "PENDING: compressed, not shipped yet".to_string(),
        };
        file(&gz.name, gz.bytes, &what);
    }
    if let Some(plain) = &log.plain {
        let what = if log.state == FileState::PendingCompression {
            "PENDING: rotated, not compressed yet"
        } else {
            "leftover of an interrupted compression (removed on the next run)"
        };
        file(&plain.name, plain.bytes, what);
    }
    if let Some(part) = &log.partial {
        file(
            &part.name,
            part.bytes,
            "unfinished compression (redone on the next run)",
        );
    }
}

fn notifications(out: &mut String, status: &Status) {
    let n = &status.notifications;
    if n.configured || !n.waiting.is_empty() {
        line(
            out,
            "notifications",
            match n.waiting.first() {
                None => "none waiting".to_string(),
                Some(job) => format!(
                    "{} waiting; {}: {}",
                    n.waiting.len(),
                    job.file,
                    job.last_error.as_deref().unwrap_or("not tried yet")
                ),
            },
        );
    }
}
