//! Every retry fasttrack makes, in one place: where an upload (or a webhook) is retried, how
//! often, and for how long. Each layer that retries asks a [`Policy`] here; none has delays
//! of its own.
//!
//! An upload is retried at nested layers: each S3 request by the AWS SDK, each file by the
//! command that ships it, and, under `watch`, the pending files by the next cycle.
//!
//! | layer | asks | delay before retry 1, 2, 3... | attempts | waiting in all |
//! |---|---|---|---|---|
//! | one S3 request | the SDK, set up from [`Policy::S3_REQUEST`] (`dest/s3.rs`) | random in 0-200 ms, 0-400 ms | 3 per request | at most 0.6 s; each attempt bounded by `--upload-timeout` (300 s) |
//! | one file, `rotate`/`upload` | `spool::ship_pending`, [`Policy::SHIP_IN_COMMAND`] | 1 s, 2 s | 3 per file | 3 s, then exit 3 with the file kept |
//! | a log uploaded while it is compressed | `spool::compress_and_ship`, [`Policy::SHIP_WHILE_COMPRESSED`] | none | 1 | none: the `.gz` is then shipped from disk as the two rows below say |
//! | one file, a `watch` cycle | `spool::ship_pending`, [`Policy::SHIP_IN_WATCH_CYCLE`] | none | 1 per cycle | none: the next cycle retries |
//! | pending files, `watch` | `watch::schedule`, [`Policy::watch_cycle`]`(--retry-max-delay)` | 1 s, 2 s, 4 s... up to `--retry-max-delay` (60 s), each up to a fifth shorter | until shipped or `watch` stops | unbounded |
//! | one webhook notification | `notify::Notifier::deliver_due`, [`Policy::WEBHOOK`] | 5 s, 10 s, 20 s... 320 s, then 600 s | 12 per notification | 3035 s (51 min), plus up to 12 × 10 s of timeouts: about an hour, then given up with an error |
//!
//! What is retried, and what is not:
//! - Only errors that retrying may fix ([`crate::dest::ShipError::Retryable`]: the store
//!   unreachable, a timeout, 5xx, `SlowDown`, expired credentials) are retried within a
//!   command. A [`crate::dest::ShipError::Permanent`] one (no such bucket, access denied, a
//!   conflicting object) stops the file at once: `rotate`/`upload` exit 1, and `watch` retries
//!   it at its longest delay only, so that a fix (a bucket created, a policy granted) is
//!   picked up without hammering the store.
//! - The layers multiply: in `rotate`/`upload` a request that keeps failing is sent up to
//!   3 × 3 = 9 times before the command exits 3. `watch` makes one attempt per cycle so that
//!   its loop (never stdin) owns the waiting; a cycle that leaves nothing pending resets its
//!   delays, and a failed rotation is retried as a rotation (the incident stays pending).
//! - The SDK's own policy (standard mode): it retries transient errors only (connection
//!   errors, timeouts, 5xx, throttling), waits a random part of `200 ms × 2^(n-1)` ("full
//!   jitter", capped at 20 s; a store's `x-amz-retry-after` is honoured up to that cap), and
//!   stops early when its client-wide retry quota is spent (500 tokens, 5 per retry, 10 per
//!   timeout; the client lives as long as the process). Each attempt is bounded by
//!   `--upload-timeout`, its connection by 10 s. The factor 2, the full jitter and the quota
//!   are the SDK's own; fasttrack sets the attempts, the first delay and the cap.
//! - Webhooks: a job's attempts are counted in its file under `<state-dir>/notify/`, so a
//!   restart does not reset them; `rotate`/`upload` make one pass at the end (the jobs that
//!   are due), `watch` a thread of its own. Each attempt times out after 10 s.
//! - `rotate`/`upload` also stop retrying a file when asked to stop (the watch's cancel flag).
//!
//! Delays grow for [`MAX_GROWTH_STEPS`] retries at most: a cap above `first × factor^16`
//! is never reached (for `watch`, a `--retry-max-delay` above 18 h waits 18 h).

use std::time::Duration;

/// Attempts of a layer that retries until it succeeds or is stopped.
pub const UNLIMITED: u32 = u32::MAX;

/// The delay stops growing after this many retries (it has reached its cap long before in
/// every policy here; this keeps the arithmetic from overflowing).
pub const MAX_GROWTH_STEPS: u32 = 16;

/// How one layer retries: exponential backoff from `first`, times `factor` after each
/// further failure, at most `cap`, with part of each delay taken off at random (`jitter`)
/// so that many hosts do not retry in step, for `max_attempts` attempts in all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// The delay after the first failed attempt.
    pub first: Duration,
    /// Each further delay is this many times the one before.
    pub factor: u32,
    /// No delay is longer.
    pub cap: Duration,
    /// The part of each delay jitter may take off: 0 none, 0.2 up to a fifth, 1 all of it
    /// (the SDK's "full jitter").
    pub jitter: f64,
    /// Attempts in all, the first one included; [`UNLIMITED`] for a layer that retries until
    /// it succeeds.
    pub max_attempts: u32,
}

impl Policy {
    /// Each S3 request, retried by the AWS SDK itself (`dest/s3.rs` configures the client
    /// from this; the factor and the full jitter are the SDK's, stated here to be read).
    pub const S3_REQUEST: Policy = Policy {
        first: Duration::from_millis(200),
        factor: 2,
        cap: Duration::from_secs(20),
        jitter: 1.0,
        max_attempts: 3,
    };

    /// Each file shipped by `rotate` or `upload`, on a retryable error.
    pub const SHIP_IN_COMMAND: Policy = Policy {
        first: Duration::from_secs(1),
        factor: 2,
        cap: Duration::from_secs(16),
        jitter: 0.0,
        max_attempts: 3,
    };

    /// Each file shipped by a `watch` cycle: one attempt, the watch loop owns the backoff
    /// ([`Policy::watch_cycle`]) and stdin never waits for it.
    pub const SHIP_IN_WATCH_CYCLE: Policy = Policy {
        max_attempts: 1,
        ..Policy::SHIP_IN_COMMAND
    };

    /// A log uploaded while it is compressed (`spool::compress_and_ship`): one attempt; if it
    /// fails, the `.gz` is shipped from disk right after, with the policy of its command.
    pub const SHIP_WHILE_COMPRESSED: Policy = Policy {
        max_attempts: 1,
        ..Policy::SHIP_IN_COMMAND
    };

    /// Each webhook notification (`--notify`).
    pub const WEBHOOK: Policy = Policy {
        first: Duration::from_secs(5),
        factor: 2,
        cap: Duration::from_secs(600),
        jitter: 0.0,
        max_attempts: 12,
    };

    /// `watch`'s next cycle after one that failed or left files pending, up to
    /// `--retry-max-delay`, until the files are shipped.
    pub const fn watch_cycle(retry_max_delay: Duration) -> Policy {
        Policy {
            first: Duration::from_secs(1),
            factor: 2,
            cap: retry_max_delay,
            jitter: 0.2,
            max_attempts: UNLIMITED,
        }
    }

    /// Whether another attempt follows when `attempts` have been made and failed.
    pub fn retries_after(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }

    /// The delay after `failed` attempts (1 for the first failure; 0 reads as 1), with
    /// `jitter` in [0, 1) saying how much of the allowed part to take off. Pure.
    pub fn delay_after(&self, failed: u32, jitter: f64) -> Duration {
        let steps = failed.saturating_sub(1).min(MAX_GROWTH_STEPS);
        let base = self
            .first
            .saturating_mul(self.factor.saturating_pow(steps))
            .min(self.cap);
        if self.jitter > 0.0 {
            base.mul_f64(1.0 - self.jitter * jitter.clamp(0.0, 1.0))
        } else {
            base
        }
    }

    /// [`Policy::delay_after`] with the jitter read from the clock.
    pub fn next_delay(&self, failed: u32) -> Duration {
        self.delay_after(failed, jitter())
    }
}

/// A number in [0, 1) from the clock's nanoseconds: enough to keep hosts out of step.
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delays before each retry of a policy with a bound on attempts, without jitter.
    fn delays(policy: Policy) -> Vec<Duration> {
        (1..policy.max_attempts)
            .map(|failed| policy.delay_after(failed, 0.0))
            .collect()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_command_tries_a_file_three_times_one_then_two_seconds_apart() {
        let p = Policy::SHIP_IN_COMMAND;
        assert_eq!(delays(p), [secs(1), secs(2)]);
        assert!(p.retries_after(1) && p.retries_after(2) && !p.retries_after(3));
        // beyond the attempts a command makes, the delay doubles to 16 s and stays there
        assert_eq!(p.delay_after(5, 0.0), secs(16));
        assert_eq!(p.delay_after(6, 0.0), secs(16));
        assert_eq!(p.delay_after(u32::MAX, 0.9), secs(16));
        // no jitter: whatever the clock says
        assert_eq!(p.next_delay(2), secs(2));
    }

    #[test]
    fn a_watch_cycle_ships_once() {
        let p = Policy::SHIP_IN_WATCH_CYCLE;
        assert!(!p.retries_after(1));
        assert!(delays(p).is_empty());
    }

    #[test]
    fn watch_doubles_from_one_second_to_its_cap_with_a_fifth_of_jitter() {
        let max = secs(60);
        let p = Policy::watch_cycle(max);
        assert_eq!(p.delay_after(1, 0.0), secs(1));
        assert_eq!(p.delay_after(2, 0.0), secs(2));
        assert_eq!(p.delay_after(6, 0.0), secs(32));
        assert_eq!(p.delay_after(7, 0.0), max);
        assert_eq!(p.delay_after(1001, 0.0), max);
        // a permanent error waits the longest delay at once
        assert_eq!(p.delay_after(u32::MAX, 0.0), max);
        assert_eq!(p.delay_after(7, 0.5), secs(54));
        assert!(p.delay_after(4, 0.999) >= Duration::from_millis(6400));
        assert!(p.delay_after(4, 0.999) < secs(8));
        assert!(p.retries_after(u32::MAX - 1));
        // the doubling stops after 16 steps: 2^16 s, however long the cap
        assert_eq!(
            Policy::watch_cycle(secs(86_400)).delay_after(40, 0.0),
            secs(65_536)
        );
        let jittered = p.next_delay(7);
        assert!(jittered > secs(48) && jittered <= max, "{jittered:?}");
    }

    #[test]
    fn webhooks_back_off_to_ten_minutes_for_about_an_hour() {
        let p = Policy::WEBHOOK;
        assert_eq!(p.delay_after(1, 0.0), secs(5));
        assert_eq!(p.delay_after(2, 0.0), secs(10));
        assert_eq!(p.delay_after(8, 0.0), secs(600));
        assert_eq!(p.delay_after(40, 0.0), secs(600));
        assert!(p.retries_after(11) && !p.retries_after(12));
        let waits = delays(p);
        assert_eq!(waits.len(), 11);
        assert_eq!(waits[6], secs(320));
        assert_eq!(waits.iter().sum::<Duration>(), secs(3035));
    }

    #[test]
    fn the_sdk_waits_at_most_six_hundred_ms_over_three_attempts() {
        let p = Policy::S3_REQUEST;
        let waits = delays(p);
        assert_eq!(
            waits,
            [Duration::from_millis(200), Duration::from_millis(400)]
        );
        assert_eq!(waits.iter().sum::<Duration>(), Duration::from_millis(600));
        // full jitter: anything down to nothing
        assert!(p.delay_after(2, 0.999) < Duration::from_millis(1));
        // the cap is the SDK's default: setting it changes nothing
        assert_eq!(
            aws_config::retry::RetryConfig::standard().max_backoff(),
            p.cap
        );
    }
}
