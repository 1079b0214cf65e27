//! The watch loop's decisions, as a state machine with one method per event: pure, no I/O,
//! driven by the caller's clock (tokio's, so tests run on a paused one).
//!
//! Events: incident lines arrived, other lines arrived, a wake-up (the quiet period or
//! `--max-wait` is over, a retry is due, the digest should be saved), a cycle finished, and
//! the stop (signal, stdin closed). The driver (`super::watch`) does what the answers say:
//! mark or clear the incident, start a cycle, save the digest.

use super::retry_delay;
use crate::cycle::Mode;
use crate::debounce::Debounce;
use std::time::Duration;
use tokio::time::Instant;

/// An open incident's digest is saved at most this long after its last change.
pub const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// How a cycle ended, as far as the loop's decisions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleEnd {
    /// Nothing is left pending.
    Clean,
    /// Files are pending after a shipping failure; `permanent` when retrying cannot fix it.
    Pending { permanent: bool },
    /// The cycle failed before shipping (lock, rename, reopen, compression...).
    Failed,
}

/// What to do on a wake-up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Wakeup {
    /// Save the open incident's digest.
    pub persist: bool,
    /// Start a cycle.
    pub start: Option<Mode>,
}

/// What to do once a cycle has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterCycle {
    /// The rotated incident is over and no new one opened: remove its marker.
    pub clear_incident: bool,
    /// A retry is scheduled this long from now.
    pub retry_in: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    at: Instant,
    mode: Mode,
}

#[derive(Debug, Clone)]
pub struct WatchLoop {
    debounce: Debounce,
    retry_max: Duration,
    retry: Option<Retry>,
    /// Consecutive failures, for the backoff (u32::MAX: a permanent one, longest delay).
    failures: u32,
    /// The mode of the cycle running, if one is.
    running: Option<Mode>,
    persist_at: Option<Instant>,
}

impl WatchLoop {
    /// A loop whose first cycle (finishing what an earlier run left) is already running.
    /// `resume` reopens the incident an earlier `watch` left open, due after a quiet period.
    pub fn new(
        quiet: Duration,
        max_wait: Duration,
        retry_max: Duration,
        resume: bool,
        now: Instant,
    ) -> Self {
        let mut debounce = Debounce::new(quiet, max_wait);
        if resume {
            debounce.on_activity(now);
        }
        WatchLoop {
            debounce,
            retry_max,
            retry: None,
            failures: 0,
            running: Some(Mode::Upload),
            persist_at: None,
        }
    }

    /// Incident lines arrived. Returns true when they opened a new incident (mark it).
    pub fn on_incident_lines(&mut self, now: Instant) -> bool {
        self.schedule_persist(now);
        self.debounce.on_activity(now)
    }

    /// Only other lines arrived (not 5xx, snoozed): their counts are saved with the digest.
    pub fn on_other_lines(&mut self, now: Instant) {
        self.schedule_persist(now);
    }

    fn schedule_persist(&mut self, now: Instant) {
        self.persist_at.get_or_insert(now + PERSIST_EVERY);
    }

    /// When the loop must next be woken up, if ever.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let cycle = match self.running {
            Some(_) => None,
            None => [self.debounce.deadline(), self.retry.map(|r| r.at)]
                .into_iter()
                .flatten()
                .min(),
        };
        [cycle, self.persist_at].into_iter().flatten().min()
    }

    /// The wake-up: the digest to save, a cycle to start (a due incident before a retry).
    pub fn on_wakeup(&mut self, now: Instant) -> Wakeup {
        let mut w = Wakeup::default();
        if self.persist_at.is_some_and(|t| now >= t) {
            self.persist_at = None;
            w.persist = true;
        }
        if self.running.is_some() {
            return w;
        }
        if self.debounce.is_due(now) {
            self.debounce.take();
            w.start = Some(Mode::Rotate);
        } else if let Some(r) = self.retry.filter(|r| now >= r.at) {
            w.start = Some(r.mode);
        }
        if let Some(mode) = w.start {
            self.retry = None;
            self.running = Some(mode);
        }
        w
    }

    /// The running cycle ended; `jitter` in [0, 1) spreads the retries of many hosts.
    pub fn on_cycle_end(&mut self, end: CycleEnd, now: Instant, jitter: f64) -> AfterCycle {
        let mode = self.running.take().unwrap_or(Mode::Upload);
        let clear_incident =
            mode == Mode::Rotate && end != CycleEnd::Failed && !self.debounce.is_open();
        let retry_mode = match end {
            CycleEnd::Clean => {
                self.failures = 0;
                None
            }
            CycleEnd::Pending { permanent } => {
                // An error retrying cannot fix is retried at the longest delay only, so that
                // the fix (a bucket created, a policy granted) is picked up.
                if permanent {
                    self.failures = u32::MAX;
                }
                Some(Mode::Upload)
            }
            // A rotation that failed keeps its incident and is tried again.
            CycleEnd::Failed => Some(mode),
        };
        let retry_in = retry_mode.map(|mode| {
            let delay = retry_delay(self.failures, self.retry_max, jitter);
            self.failures = self.failures.saturating_add(1);
            self.retry = Some(Retry {
                at: now + delay,
                mode,
            });
            delay
        });
        AfterCycle {
            clear_incident,
            retry_in,
        }
    }

    /// At the stop: whether an incident is still to be fast-tracked (by the next `watch`).
    pub fn incident_pending(&self) -> bool {
        self.debounce.is_open() || self.retry.is_some_and(|r| r.mode == Mode::Rotate)
    }

    /// The mode of the cycle running, if one is.
    pub fn cycle_running_mode(&self) -> Option<Mode> {
        self.running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    const QUIET: Duration = Duration::from_secs(30);
    const MAX_WAIT: Duration = Duration::from_secs(600);
    const RETRY_MAX: Duration = Duration::from_secs(60);

    /// A loop whose start-up cycle has finished cleanly.
    fn idle() -> WatchLoop {
        let mut w = WatchLoop::new(QUIET, MAX_WAIT, RETRY_MAX, false, Instant::now());
        assert!(w.cycle_running_mode().is_some());
        w.on_cycle_end(CycleEnd::Clean, Instant::now(), 0.0);
        w
    }

    /// Advances the paused clock to the next wake-up and returns what it says.
    async fn wake(w: &mut WatchLoop) -> Wakeup {
        let at = w.next_wakeup().expect("a wake-up is scheduled");
        advance(at.saturating_duration_since(Instant::now())).await;
        w.on_wakeup(Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_happens_without_lines() {
        let w = idle();
        assert_eq!(w.next_wakeup(), None);
        assert!(!w.incident_pending());
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_fast_tracked_one_quiet_period_after_its_last_line() {
        let mut w = idle();
        let t0 = Instant::now();
        assert!(w.on_incident_lines(t0), "the first line opens the incident");
        // the digest is saved a second after the first line
        assert_eq!(
            wake(&mut w).await,
            Wakeup {
                persist: true,
                start: None
            }
        );
        assert_eq!(Instant::now() - t0, PERSIST_EVERY);
        advance(Duration::from_secs(9)).await;
        assert!(
            !w.on_incident_lines(Instant::now()),
            "later lines do not reopen it"
        );
        let last = Instant::now();
        assert!(wake(&mut w).await.persist);
        let got = wake(&mut w).await;
        assert_eq!(got.start, Some(Mode::Rotate));
        assert_eq!(Instant::now() - last, QUIET);
        assert!(w.cycle_running_mode().is_some());
        let after = w.on_cycle_end(CycleEnd::Clean, Instant::now(), 0.0);
        assert_eq!(
            after,
            AfterCycle {
                clear_incident: true,
                retry_in: None
            }
        );
        assert_eq!(w.next_wakeup(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_storm_that_never_stops_is_fast_tracked_at_max_wait() {
        let mut w = idle();
        let t0 = Instant::now();
        w.on_incident_lines(t0);
        loop {
            advance(Duration::from_secs(5)).await;
            let now = Instant::now();
            w.on_incident_lines(now);
            if w.on_wakeup(now).start.is_some() {
                break;
            }
        }
        assert_eq!(Instant::now() - t0, MAX_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn lines_during_a_cycle_open_the_next_incident_and_keep_its_marker() {
        let mut w = idle();
        w.on_incident_lines(Instant::now());
        while wake(&mut w).await.start.is_none() {}
        // While the rotation runs, no cycle wake-up is scheduled, only the digest's save.
        advance(Duration::from_secs(1)).await;
        assert!(w.on_incident_lines(Instant::now()), "a new incident");
        assert_eq!(w.next_wakeup(), Some(Instant::now() + PERSIST_EVERY));
        assert_eq!(wake(&mut w).await.start, None);
        advance(QUIET * 2).await;
        let after = w.on_cycle_end(CycleEnd::Clean, Instant::now(), 0.0);
        assert!(!after.clear_incident, "the new incident keeps the marker");
        // The new incident was due while the cycle ran: it starts at the next wake-up.
        assert_eq!(wake(&mut w).await.start, Some(Mode::Rotate));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_and_a_success_resets_the_backoff() {
        let mut w = idle();
        w.on_incident_lines(Instant::now());
        while wake(&mut w).await.start.is_none() {}
        // The rotation fails: it is retried as a rotation, 1 s, then 2 s, then 4 s later.
        for (n, want) in [1u64, 2, 4].into_iter().enumerate() {
            let after = w.on_cycle_end(CycleEnd::Failed, Instant::now(), 0.0);
            assert!(!after.clear_incident);
            assert_eq!(
                after.retry_in,
                Some(Duration::from_secs(want)),
                "failure {n}"
            );
            assert!(w.incident_pending(), "a failed rotation keeps its incident");
            let t = Instant::now();
            assert_eq!(wake(&mut w).await.start, Some(Mode::Rotate));
            assert_eq!(Instant::now() - t, Duration::from_secs(want));
        }
        // Rotated, but the file stays pending after a temporary failure: an upload retry.
        let after = w.on_cycle_end(CycleEnd::Pending { permanent: false }, Instant::now(), 0.0);
        assert!(after.clear_incident);
        assert_eq!(after.retry_in, Some(Duration::from_secs(8)));
        assert!(!w.incident_pending());
        assert_eq!(wake(&mut w).await.start, Some(Mode::Upload));
        let after = w.on_cycle_end(CycleEnd::Clean, Instant::now(), 0.0);
        assert_eq!(after.retry_in, None);
        // The next failure starts from 1 s again.
        w.on_incident_lines(Instant::now());
        while wake(&mut w).await.start.is_none() {}
        let after = w.on_cycle_end(CycleEnd::Failed, Instant::now(), 0.0);
        assert_eq!(after.retry_in, Some(Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_retried_at_the_longest_delay_with_jitter() {
        let mut w = idle();
        w.on_incident_lines(Instant::now());
        while wake(&mut w).await.start.is_none() {}
        let after = w.on_cycle_end(CycleEnd::Pending { permanent: true }, Instant::now(), 0.0);
        assert_eq!(after.retry_in, Some(RETRY_MAX));
        assert_eq!(wake(&mut w).await.start, Some(Mode::Upload));
        let after = w.on_cycle_end(CycleEnd::Pending { permanent: true }, Instant::now(), 0.5);
        assert_eq!(after.retry_in, Some(RETRY_MAX.mul_f64(0.9)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_due_incident_goes_before_a_pending_retry() {
        let mut w = idle();
        w.on_incident_lines(Instant::now());
        while wake(&mut w).await.start.is_none() {}
        w.on_cycle_end(CycleEnd::Pending { permanent: true }, Instant::now(), 0.0);
        let t = Instant::now();
        w.on_incident_lines(t);
        // quiet (30 s) ends before the retry (60 s): a rotation, which ships the rest too
        let start = loop {
            if let Some(mode) = wake(&mut w).await.start {
                break mode;
            }
        };
        assert_eq!((start, Instant::now() - t), (Mode::Rotate, QUIET));
        assert_eq!(
            w.next_wakeup(),
            None,
            "the retry is replaced by the rotation"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_incident_is_due_one_quiet_period_after_the_start_up_cycle() {
        let t0 = Instant::now();
        let mut w = WatchLoop::new(QUIET, MAX_WAIT, RETRY_MAX, true, t0);
        assert!(w.incident_pending());
        assert_eq!(w.next_wakeup(), None, "the start-up cycle runs first");
        w.on_cycle_end(CycleEnd::Clean, t0, 0.0);
        assert_eq!(wake(&mut w).await.start, Some(Mode::Rotate));
        assert_eq!(Instant::now() - t0, QUIET);
    }
}
