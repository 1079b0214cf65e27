//! One message for several incidents: a route that may not post yet (its interval, a
//! `Retry-After`) folds the incidents that wait into its next message, the newest shown in
//! full and the earlier ones listed ("3 more incidents since 14:02: ..."). None is dropped.

use super::{payload, Job};
use crate::config::NotifyFormat;
use crate::digest::render::{join_statuses, slack_escape, thousands};
use std::fmt::Write;

/// The body for `jobs` (oldest first, at least one): the newest in full, the others folded.
pub fn folded_payload(format: NotifyFormat, jobs: &[Job]) -> serde_json::Value {
    let Some((newest, earlier)) = jobs.split_last() else {
        return serde_json::Value::Null;
    };
    let mut body = payload(format, newest);
    if earlier.is_empty() {
        return body;
    }
    match format {
        NotifyFormat::Slack => {
            let mut text = body["text"].as_str().unwrap_or_default().to_string();
            let _ = write!(
                text,
                "\n_{} more {} since {}:_",
                earlier.len(),
                if earlier.len() == 1 {
                    "incident"
                } else {
                    "incidents"
                },
                since(earlier)
            );
            for job in earlier {
                let _ = write!(
                    text,
                    "\n\u{2022} <{}|{}> on {}: {} lines ({})",
                    job.link,
                    job.name,
                    slack_escape(&job.digest.reporter),
                    thousands(job.digest.lines),
                    join_statuses(&job.digest)
                );
            }
            body["text"] = serde_json::Value::String(text);
        }
        NotifyFormat::Json => {
            body["incidents"] = serde_json::json!(jobs.len());
            body["folded"] = earlier
                .iter()
                .map(|job| {
                    serde_json::json!({
                        "host": job.digest.reporter,
                        "log": job.name,
                        "key": job.key,
                        "link": job.link,
                        "link_expires": job.link_expires,
                        "lines": job.digest.lines,
                        "statuses": job.digest.statuses,
                        "first_seen": job.digest.first_seen,
                        "last_seen": job.digest.last_seen,
                        "incident_id": job.digest.incident_id,
                    })
                })
                .collect();
        }
    }
    body
}

/// `HH:MM` (UTC) of the earliest first line of `jobs`, or their earliest name.
fn since(jobs: &[Job]) -> String {
    jobs.iter()
        .filter_map(|j| j.digest.first_seen.as_deref())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .min()
        .map_or_else(
            || jobs[0].name.clone(),
            |t| {
                t.with_timezone(&chrono::Utc)
                    .format("%H:%M UTC")
                    .to_string()
            },
        )
}
