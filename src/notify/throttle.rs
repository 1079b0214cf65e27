//! When each route may post next: at most one message per route per its `interval`, none
//! before a webhook's `Retry-After`, at most one per second per webhook URL. Incidents that
//! come in between wait in the queue and go out folded into the next message; nothing is
//! dropped. The times are kept in `<state-dir>/notify-throttle.json` so that a restart (every
//! syslog-ng reload restarts `watch`) does not reset them.

use crate::fsutil::{atomic_write, FileAccess};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing::warn;

/// The longest `Retry-After` honoured: a webhook asking for more is asked again then.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Used when a 429 comes without a `Retry-After` fasttrack can read.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// One route's times, in Unix seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTimes {
    /// The last message posted.
    #[serde(default)]
    pub last_sent: u64,
    /// Not before this (a 429's `Retry-After`).
    #[serde(default)]
    pub not_before: u64,
}

/// Every route's times.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    #[serde(default)]
    pub routes: BTreeMap<String, RouteTimes>,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("notify-throttle.json")
}

impl Throttle {
    /// Reads the times; a missing file is a fresh start, an unreadable one a warning and a
    /// fresh start (at worst one message comes early).
    pub fn load(state_dir: &Path) -> Throttle {
        let path = path(state_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                warn!(
                    "{} is not readable ({e}); the notification intervals start afresh",
                    path.display()
                );
                Throttle::default()
            }),
            Err(_) => Throttle::default(),
        }
    }

    pub fn save(&self, state_dir: &Path) {
        let path = path(state_dir);
        let written = serde_json::to_vec(self)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| atomic_write(&path, &bytes, FileAccess::STATE));
        if let Err(e) = written {
            warn!("cannot write {}: {e:#}", path.display());
        }
    }

    pub fn get(&self, route: &str) -> RouteTimes {
        self.routes.get(route).copied().unwrap_or_default()
    }

    pub fn set(&mut self, route: &str, times: RouteTimes) {
        self.routes.insert(route.to_string(), times);
    }
}

/// When a route may post again: after its interval since the last message, after a
/// `Retry-After`, and not before the earliest retry of the jobs waiting (`jobs_due`).
pub fn due_at(times: RouteTimes, interval: Duration, jobs_due: u64) -> u64 {
    let by_interval = if times.last_sent == 0 {
        0
    } else {
        times.last_sent + interval.as_secs()
    };
    by_interval.max(times.not_before).max(jobs_due)
}

/// The delay a `Retry-After` header asks for: seconds, or an HTTP date (`now` in Unix
/// seconds); bounded by [`MAX_RETRY_AFTER`], [`DEFAULT_RETRY_AFTER`] when unreadable.
pub fn retry_after(header: Option<&str>, now: u64) -> Duration {
    let Some(value) = header.map(str::trim) else {
        return DEFAULT_RETRY_AFTER;
    };
    let asked = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => match chrono::DateTime::parse_from_rfc2822(value) {
            Ok(at) => Duration::from_secs((at.timestamp().max(0) as u64).saturating_sub(now)),
            Err(_) => DEFAULT_RETRY_AFTER,
        },
    };
    asked.clamp(Duration::from_secs(1), MAX_RETRY_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_the_interval_the_retry_after_and_the_jobs_backoff() {
        let five = Duration::from_secs(300);
        assert_eq!(
            due_at(RouteTimes::default(), five, 0),
            0,
            "never sent: at once"
        );
        let sent = RouteTimes {
            last_sent: 1000,
            not_before: 0,
        };
        assert_eq!(due_at(sent, five, 0), 1300);
        assert_eq!(due_at(sent, Duration::ZERO, 0), 1000);
        assert_eq!(due_at(sent, five, 2000), 2000);
        let limited = RouteTimes {
            last_sent: 1000,
            not_before: 5000,
        };
        assert_eq!(due_at(limited, five, 0), 5000);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after(Some("30"), 0), Duration::from_secs(30));
        assert_eq!(retry_after(Some(" 0 "), 0), Duration::from_secs(1));
        assert_eq!(retry_after(Some("999999"), 0), MAX_RETRY_AFTER);
        assert_eq!(retry_after(None, 0), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(Some("soon"), 0), DEFAULT_RETRY_AFTER);
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-03T00:00:00Z")
            .unwrap()
            .timestamp() as u64;
        assert_eq!(
            retry_after(Some("Thu, 03 Dec 2026 00:02:00 GMT"), now),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn times_survive_a_restart_and_a_bad_file_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Throttle::default();
        t.set(
            "shop",
            RouteTimes {
                last_sent: 7,
                not_before: 9,
            },
        );
        t.save(dir.path());
        assert_eq!(Throttle::load(dir.path()), t);
        std::fs::write(path(dir.path()), "{oops").unwrap();
        assert_eq!(Throttle::load(dir.path()), Throttle::default());
    }
}
