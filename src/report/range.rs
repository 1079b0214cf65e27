//! The time range of a report and the index partitions it needs: pure, no I/O.
//!
//! An incident belongs to the range of its first line (`first_seen`, else the time its record
//! was made), and to the partition of that day, UTC (src/index.rs). The range is
//! `[since, until)`, so `--since 2026-11-21 --until 2026-11-22` is the whole 21st and lists
//! only `dt=2026-11-21`.

use chrono::{DateTime, NaiveDate, Utc};
use std::str::FromStr;
use std::time::Duration;

/// The most days one report may span (ten years): one listing per day.
pub const MAX_DAYS: i64 = 3660;

/// `--since` / `--until`: a duration before now, or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBound {
    /// `24h`, `7d`, `90m`: that long before now.
    Ago(Duration),
    /// `2026-11-22` (midnight UTC) or `2026-11-22T05:00:00Z` (RFC 3339).
    At(DateTime<Utc>),
}

impl FromStr for TimeBound {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(d) = humantime::parse_duration(s) {
            return Ok(TimeBound::Ago(d));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(TimeBound::At(t.with_timezone(&Utc)));
        }
        if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(TimeBound::At(day.and_time(Default::default()).and_utc()));
        }
        Err(format!(
            "{s:?} is neither a duration before now (24h, 7d) nor a time (2026-11-22, \
             2026-11-22T05:00:00Z)"
        ))
    }
}

impl TimeBound {
    pub fn at(self, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        match self {
            TimeBound::At(t) => Ok(t),
            TimeBound::Ago(d) => chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .ok_or_else(|| {
                    format!(
                        "{} before now is too long ago",
                        humantime::format_duration(d)
                    )
                }),
        }
    }
}

/// `[since, until)`, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Range {
    /// The range from `since` to `until` (default: now); errors are worded after the flags.
    pub fn new(
        since: TimeBound,
        until: Option<TimeBound>,
        now: DateTime<Utc>,
    ) -> Result<Range, String> {
        let since = since.at(now).map_err(|e| format!("--since: {e}"))?;
        let until = match until {
            Some(u) => u.at(now).map_err(|e| format!("--until: {e}"))?,
            None => now,
        };
        if since >= until {
            return Err(format!(
                "--since {} is not before --until {}; give a range that moves forward",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        let range = Range { since, until };
        let days = range
            .last_day()
            .signed_duration_since(since.date_naive())
            .num_days()
            + 1;
        if days > MAX_DAYS {
            return Err(format!(
                "the range spans {days} days, more than {MAX_DAYS}; give a later --since"
            ));
        }
        Ok(range)
    }

    /// The day of the last instant in the range (`until` is excluded).
    fn last_day(&self) -> NaiveDate {
        (self.until - chrono::Duration::nanoseconds(1)).date_naive()
    }

    /// The UTC days whose partitions hold the range's incidents, oldest first.
    pub fn days(&self) -> Vec<NaiveDate> {
        let last = self.last_day();
        self.since
            .date_naive()
            .iter_days()
            .take_while(|d| *d <= last)
            .collect()
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.since <= t && t < self.until
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn bounds_are_durations_dates_or_times() {
        assert_eq!(
            "24h".parse::<TimeBound>(),
            Ok(TimeBound::Ago(Duration::from_secs(86_400)))
        );
        assert_eq!(
            "7d".parse::<TimeBound>(),
            Ok(TimeBound::Ago(Duration::from_secs(7 * 86_400)))
        );
        assert_eq!(
            "2026-11-22".parse::<TimeBound>(),
            Ok(TimeBound::At(t(2026, 11, 22, 0, 0)))
        );
        assert_eq!(
            "2026-11-22T07:30:00+02:00".parse::<TimeBound>(),
            Ok(TimeBound::At(t(2026, 11, 22, 5, 30)))
        );
        let e = "yesterday".parse::<TimeBound>().unwrap_err();
        assert!(e.contains("neither a duration"), "{e}");
    }

    #[test]
    fn the_last_24_hours_are_two_partitions() {
        let now = t(2026, 11, 22, 7, 0);
        let r = Range::new("24h".parse().unwrap(), None, now).unwrap();
        assert_eq!(r.days(), [day("2026-11-21"), day("2026-11-22")]);
        assert!(r.contains(t(2026, 11, 21, 7, 0)));
        assert!(!r.contains(t(2026, 11, 21, 6, 59)));
        assert!(!r.contains(now), "until is excluded");
    }

    #[test]
    fn a_day_until_the_next_is_one_partition() {
        let now = t(2026, 12, 1, 0, 0);
        let r = Range::new(
            "2026-11-21".parse().unwrap(),
            Some("2026-11-22".parse().unwrap()),
            now,
        )
        .unwrap();
        assert_eq!(r.days(), [day("2026-11-21")]);
        let week = Range::new("7d".parse().unwrap(), None, t(2026, 11, 22, 0, 0)).unwrap();
        assert_eq!(week.days().len(), 7, "{:?}", week.days());
        assert_eq!(week.days()[0], day("2026-11-15"));
    }

    #[test]
    fn backwards_or_endless_ranges_are_refused() {
        let now = t(2026, 11, 22, 7, 0);
        let e = Range::new("1h".parse().unwrap(), Some("2h".parse().unwrap()), now).unwrap_err();
        assert!(e.contains("is not before --until"), "{e}");
        let e = Range::new("2000-01-01".parse().unwrap(), None, now).unwrap_err();
        assert!(e.contains("more than 3660"), "{e}");
    }
}
