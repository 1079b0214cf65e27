//! The quiet-period state machine of `watch`: pure, no I/O, driven by the caller's clock.
//!
//! An incident opens with the first 5xx line and is due when the stream has been quiet
//! for `quiet`, or `max_wait` after it opened, whichever comes first, so that a storm
//! that never stops is still fast-tracked.

use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Debounce {
    quiet: Duration,
    max_wait: Duration,
    incident: Option<Incident>,
}

#[derive(Debug, Clone, Copy)]
struct Incident {
    opened: Instant,
    last_seen: Instant,
}

impl Debounce {
    pub fn new(quiet: Duration, max_wait: Duration) -> Self {
        Debounce {
            quiet,
            max_wait,
            incident: None,
        }
    }

    /// Records activity; returns true when this opened a new incident.
    pub fn on_activity(&mut self, now: Instant) -> bool {
        match &mut self.incident {
            Some(incident) => {
                incident.last_seen = incident.last_seen.max(now);
                false
            }
            None => {
                self.incident = Some(Incident {
                    opened: now,
                    last_seen: now,
                });
                true
            }
        }
    }

    /// When the open incident becomes due, if one is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.incident
            .map(|i| (i.last_seen + self.quiet).min(i.opened + self.max_wait))
    }

    pub fn is_due(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    pub fn is_open(&self) -> bool {
        self.incident.is_some()
    }

    /// Closes the incident because a rotation is starting; lines after this open a new one.
    pub fn take(&mut self) -> bool {
        self.incident.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{advance, sleep_until};

    const QUIET: Duration = Duration::from_secs(30);
    const MAX: Duration = Duration::from_secs(600);

    #[tokio::test(start_paused = true)]
    async fn nothing_is_due_without_activity() {
        let d = Debounce::new(QUIET, MAX);
        assert_eq!(d.deadline(), None);
        advance(Duration::from_secs(3600)).await;
        assert!(!d.is_due(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn due_after_the_quiet_period() {
        let mut d = Debounce::new(QUIET, MAX);
        assert!(d.on_activity(Instant::now()));
        advance(Duration::from_secs(29)).await;
        assert!(!d.is_due(Instant::now()));
        advance(Duration::from_secs(1)).await;
        assert!(d.is_due(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn each_line_pushes_the_deadline_back() {
        let mut d = Debounce::new(QUIET, MAX);
        let start = Instant::now();
        d.on_activity(start);
        for _ in 0..5 {
            advance(Duration::from_secs(20)).await;
            assert!(!d.on_activity(Instant::now()), "same incident");
            assert!(!d.is_due(Instant::now()));
        }
        assert_eq!(d.deadline(), Some(start + Duration::from_secs(100) + QUIET));
        sleep_until(d.deadline().unwrap()).await;
        assert!(d.is_due(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_storm_that_never_stops_is_due_at_max_wait() {
        let mut d = Debounce::new(QUIET, MAX);
        let start = Instant::now();
        d.on_activity(start);
        let mut fired_at = None;
        for _ in 0..1000 {
            advance(Duration::from_secs(1)).await;
            if d.is_due(Instant::now()) {
                fired_at = Some(Instant::now());
                break;
            }
            d.on_activity(Instant::now());
        }
        assert_eq!(fired_at, Some(start + MAX));
    }

    #[tokio::test(start_paused = true)]
    async fn take_closes_the_incident_and_the_next_line_opens_another() {
        let mut d = Debounce::new(QUIET, MAX);
        d.on_activity(Instant::now());
        advance(QUIET).await;
        assert!(d.take());
        assert!(!d.is_open());
        assert!(!d.take());
        advance(Duration::from_secs(5)).await;
        let reopened = Instant::now();
        assert!(d.on_activity(reopened));
        assert_eq!(d.deadline(), Some(reopened + QUIET));
    }

    #[tokio::test(start_paused = true)]
    async fn max_wait_shorter_than_quiet_wins() {
        let mut d = Debounce::new(QUIET, Duration::from_secs(10));
        let start = Instant::now();
        d.on_activity(start);
        assert_eq!(d.deadline(), Some(start + Duration::from_secs(10)));
    }
}
