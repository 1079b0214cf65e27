//! `fasttrack status`: read-only report of the log, the rotated files and their state, the
//! lock holder, the open incident, the last rotation and the last error. It never changes
//! anything (safe for monitoring, as any user who can read the state dir); it exits 3 when
//! something is waiting to be shipped, like `rotate`, so that a check can alert on it.

use crate::config::Config;
use crate::exit::Outcome;
use crate::naming::{RotatedName, Stage};
use crate::spool::Spool;
use crate::state::{State, StateDir};
use anyhow::Result;
use std::os::unix::fs::MetadataExt;

pub fn run(config: &Config) -> Result<Outcome> {
    let text = render(config)?;
    crate::output::print(format_args!("{}", text.report))?;
    Ok(if text.pending > 0 {
        Outcome::Pending
    } else {
        Outcome::Done
    })
}

pub struct StatusText {
    pub report: String,
    pub pending: usize,
}

/// One `label  value` line of the report.
fn line(out: &mut String, label: &str, value: String) {
    out.push_str(&format!("{label:<15}{value}\n"))
}

pub fn render(config: &Config) -> Result<StatusText> {
    let mut out = String::new();
    line(&mut out, "log", live_log(config));
    line(
        &mut out,
        "destination",
        match &config.dest {
            Some(d) => format!("{d} (host {})", config.host),
            None => "not configured (set --dest)".to_string(),
        },
    );
    let state_dir = StateDir::existing(&config.state_dir);
    let state_exists = config.state_dir.is_dir();
    let state = if state_exists {
        state_dir.load()?
    } else {
        Default::default()
    };
    line(
        &mut out,
        "state dir",
        if !state_exists {
            format!("{} (not created yet)", config.state_dir.display())
        } else {
            match state_dir.lock_holder() {
                Some(pid) => format!(
                    "{} (locked by pid {pid}: rotating or shipping)",
                    config.state_dir.display()
                ),
                None => format!("{} (idle)", config.state_dir.display()),
            }
        },
    );
    open_incident(&mut out, config, &state_dir);
    let pending = rotated_files(&mut out, config, &state)?;
    notifications(&mut out, config);
    line(
        &mut out,
        "last rotation",
        match &state.last_rotation {
            Some(r) => format!("{} {} ({} bytes)", r.at, r.file, r.bytes),
            None => "none recorded".to_string(),
        },
    );
    line(
        &mut out,
        "last error",
        match &state.last_error {
            Some(e) => format!("{} {}", e.at, e.message),
            None => "none recorded".to_string(),
        },
    );
    Ok(StatusText {
        report: out,
        pending,
    })
}

fn live_log(config: &Config) -> String {
    match std::fs::symlink_metadata(&config.log) {
        Ok(m) if m.is_file() => format!(
            "{} ({} bytes, modified {})",
            config.log.display(),
            m.len(),
            unix_to_rfc3339(m.mtime())
        ),
        Ok(_) => format!(
            "{} (NOT a regular file: it will not be rotated)",
            config.log.display()
        ),
        Err(e) => format!("{} ({e})", config.log.display()),
    }
}

/// The incident marker and the open incident's digest, as `watch` last saved it.
fn open_incident(out: &mut String, config: &Config, state_dir: &StateDir) {
    line(
        out,
        "incident",
        match state_dir.incident() {
            Some(since) => format!("open since {since}: fast-tracked after the next quiet period"),
            None => "none open".to_string(),
        },
    );
    let Some(saved) = crate::digest::stream::peek_open(&config.state_dir) else {
        return;
    };
    if saved.lines > 0 || saved.ignored > 0 || saved.not_5xx > 0 {
        let top = saved.messages.first().map_or(String::new(), |m| {
            format!("; top: {} x{}", m.template, m.count)
        });
        line(
            out,
            "  digest",
            format!("{} lines, {} snoozed{top}", saved.lines, saved.ignored),
        );
    }
    if saved.not_5xx > 0 {
        line(
            out,
            "  not 5xx",
            format!(
                "{} lines matched syslog-ng's filter with a status that is not 5xx: they open \
                 no incident; a large number means the filter is too broad (use the shipped \
                 f_5xxERR-hook, see README)",
                saved.not_5xx
            ),
        );
    }
}

/// Each rotated file and its stage; returns how many are pending.
fn rotated_files(out: &mut String, config: &Config, state: &State) -> Result<usize> {
    let spool = Spool::scan(config)?;
    let mut pending = 0;
    let mut files = String::new();
    for (&suffix, group) in &spool.groups {
        let name = |stage| RotatedName::new(config.log_name(), suffix, stage).to_string();
        let size = |n: &str| {
            std::fs::metadata(config.log_dir().join(n))
                .map(|m| format!("{} bytes", m.len()))
                .unwrap_or_default()
        };
        if group.compressed {
            let gz = name(Stage::Compressed);
            let what = match state.shipped.get(&gz) {
                Some(rec) => format!("shipped {} to {} {}", rec.at, rec.dest, rec.key),
                None => {
                    pending += 1;
                    "PENDING: compressed, not shipped yet".to_string()
                }
            };
            files.push_str(&format!("  {gz:<34}{:<16}{what}\n", size(&gz)));
        }
        if group.plain {
            let plain = name(Stage::Plain);
            let what = if group.compressed {
                "leftover of an interrupted compression (removed on the next run)"
            } else {
                pending += 1;
                "PENDING: rotated, not compressed yet"
            };
            files.push_str(&format!("  {plain:<34}{:<16}{what}\n", size(&plain)));
        }
        if group.partial {
            let part = name(Stage::Partial);
            files.push_str(&format!(
                "  {part:<34}{:<16}unfinished compression (redone on the next run)\n",
                size(&part)
            ));
        }
    }
    line(
        out,
        "rotated files",
        if files.is_empty() {
            "none".to_string()
        } else {
            format!("{} ({pending} pending), oldest first:", spool.groups.len())
        },
    );
    out.push_str(&files);
    Ok(pending)
}

fn notifications(out: &mut String, config: &Config) {
    let waiting = crate::notify::pending(&config.state_dir);
    if config.incident.notify.is_some() || !waiting.is_empty() {
        line(
            out,
            "notifications",
            match waiting.first() {
                None => "none waiting".to_string(),
                Some((_, job)) => format!(
                    "{} waiting; {}: {}",
                    waiting.len(),
                    job.name,
                    job.last_error.as_deref().unwrap_or("not tried yet")
                ),
            },
        );
    }
}

fn unix_to_rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}
