//! Merging index records into the fleet's report, one record at a time, in bounded memory:
//! totals per status, host, program and message, and the largest incidents. No I/O: the
//! records come from [`super::run`] as they are fetched, and only their counts are kept.

use super::range::Range;
use crate::index::{self, KeyCount, Record};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The version of `fasttrack report --json` (docs/incident-index.md, "The report").
pub const VERSION: u32 = 1;

/// Distinct hosts, programs and messages kept while merging. Past it the smaller half is
/// dropped and the report says its lists are approximate (a fleet has fewer: 1 000 hosts
/// with 5 templates each is 5 000 messages at most).
pub const CAPACITY: usize = 10_000;

/// Reasons for unreadable records shown in the report (the rest are counted).
const ERRORS_SHOWN: usize = 5;

/// The fleet's digest over a range, as printed with `--json` and posted with
/// `--notify-format json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub version: u32,
    /// The destination read, and the range: RFC 3339, `until` excluded.
    pub dest: String,
    pub since: String,
    pub until: String,
    /// The partitions listed, `dt=YYYY-MM-DD`.
    pub partitions: Vec<String>,
    /// Records read in those partitions, and of those the incidents in the range.
    pub records: u64,
    pub incidents: u64,
    /// Distinct hosts with incidents, their incident lines and the bytes of their logs.
    pub hosts_total: u64,
    pub lines: u64,
    pub bytes: u64,
    pub statuses: BTreeMap<String, u64>,
    /// The largest entries, `top` of each (`--top`).
    pub hosts: Vec<HostTotal>,
    /// Sums of the records' own top programs and messages: a lower bound of the truth.
    pub programs: Vec<KeyCount>,
    pub messages: Vec<MessageTotal>,
    pub largest: Vec<Incident>,
    /// Records that could not be fetched or read, with the first reasons.
    pub unreadable: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Records of a newer schema version, left out (upgrade fasttrack to read them).
    pub newer_records: u64,
    /// True when more distinct keys came than [`CAPACITY`]: the lists are then the largest
    /// seen, and their counts may be under the truth.
    pub approximate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostTotal {
    pub host: String,
    pub incidents: u64,
    pub lines: u64,
    pub bytes: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageTotal {
    pub template: String,
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// From the records' `seen` marks, when they have one: whether the template was new at
    /// some incident of the range, and the earliest time it was seen at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
}

/// One incident of the range, with where to download its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub host: String,
    pub log: String,
    pub key: String,
    pub lines: u64,
    pub bytes: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// A presigned download link (S3), a `file://` path, or the `s3://` URL when no link
    /// could be made; filled in by [`super::run`].
    pub link: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_expires: Option<String>,
}

/// Only the version, read first: a newer record may not parse as this one.
#[derive(Deserialize)]
struct Versioned {
    version: u32,
}

/// Accumulates records into a [`Report`].
pub struct Merger {
    range: Range,
    top: usize,
    capacity: usize,
    report: Report,
    hosts: HashMap<String, HostTotal>,
    programs: HashMap<String, u64>,
    messages: HashMap<String, MessageTotal>,
}

impl Merger {
    pub fn new(range: Range, top: usize) -> Merger {
        Merger {
            range,
            top,
            capacity: CAPACITY,
            report: Report {
                version: VERSION,
                ..Report::default()
            },
            hosts: HashMap::new(),
            programs: HashMap::new(),
            messages: HashMap::new(),
        }
    }

    /// One fetched object: its bytes, or why it could not be fetched.
    pub fn add(&mut self, key: &str, fetched: anyhow::Result<Vec<u8>>) {
        // A newer record may not even parse as this version's: its version alone decides.
        let record = fetched.and_then(|bytes| match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) if r.version > index::VERSION => Ok(None),
            Ok(r) => Ok(Some(r)),
            Err(e) => match serde_json::from_slice::<Versioned>(&bytes) {
                Ok(v) if v.version > index::VERSION => Ok(None),
                _ => Err(e.into()),
            },
        });
        match record {
            Ok(Some(r)) => self.add_record(key, r),
            Ok(None) => self.report.newer_records += 1,
            Err(e) => self.unreadable(format!("{key}: {e:#}")),
        }
    }

    fn unreadable(&mut self, reason: String) {
        self.report.unreadable += 1;
        if self.report.errors.len() < ERRORS_SHOWN {
            self.report.errors.push(reason);
        }
    }

    /// Adds a record if its incident is in the range.
    pub fn add_record(&mut self, key: &str, r: Record) {
        self.report.records += 1;
        let Some(at) = time_of(&r) else {
            return self.unreadable(format!(
                "{key}: neither first_seen nor shipped_at is a time"
            ));
        };
        if !self.range.contains(at) {
            return;
        }
        let report = &mut self.report;
        report.incidents += 1;
        report.lines += r.lines;
        report.bytes += r.bytes;
        for (status, n) in &r.statuses {
            *report.statuses.entry(status.clone()).or_default() += n;
        }
        self.add_host(&r);
        for p in &r.programs {
            *self.programs.entry(p.key.clone()).or_default() += p.count;
        }
        for m in &r.messages {
            let total = self
                .messages
                .entry(m.template.clone())
                .or_insert_with(|| MessageTotal {
                    template: m.template.clone(),
                    count: 0,
                    status: m.status.clone(),
                    new: None,
                    first_seen: None,
                });
            total.count += m.count;
            if let Some(seen) = &m.seen {
                total.new = Some(total.new == Some(true) || seen.incidents == 0);
                total.first_seen = earliest(total.first_seen.take(), Some(seen.first_seen.clone()));
            }
        }
        self.keep_largest(r);
        let capacity = self.capacity;
        let pruned = prune(&mut self.hosts, capacity, |h| h.lines)
            | prune(&mut self.programs, capacity, |n| *n)
            | prune(&mut self.messages, capacity, |m| m.count);
        self.report.approximate |= pruned;
    }

    fn add_host(&mut self, r: &Record) {
        let h = self
            .hosts
            .entry(r.host.clone())
            .or_insert_with(|| HostTotal {
                host: r.host.clone(),
                incidents: 0,
                lines: 0,
                bytes: 0,
                first_seen: None,
                last_seen: None,
            });
        h.incidents += 1;
        h.lines += r.lines;
        h.bytes += r.bytes;
        h.first_seen = earliest(h.first_seen.take(), r.first_seen.clone());
        h.last_seen = match (h.last_seen.take(), r.last_seen.clone()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Keeps the `top` largest incidents (by lines, then key for a stable order).
    fn keep_largest(&mut self, r: Record) {
        let largest = &mut self.report.largest;
        let smaller = |a: &Incident| (std::cmp::Reverse(a.lines), a.key.clone());
        if largest.len() >= self.top
            && largest
                .last()
                .is_some_and(|last| smaller(last) <= (std::cmp::Reverse(r.lines), r.key.clone()))
        {
            return;
        }
        largest.push(Incident {
            host: r.host,
            log: r.log,
            key: r.key,
            lines: r.lines,
            bytes: r.bytes,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            link: String::new(),
            link_expires: None,
        });
        largest.sort_by_key(smaller);
        largest.truncate(self.top);
    }

    /// The report, with its lists cut to `top`.
    pub fn finish(self, dest: String, partitions: Vec<String>) -> Report {
        let top = self.top;
        let mut report = self.report;
        report.dest = dest;
        report.partitions = partitions;
        report.since = rfc3339(self.range.since);
        report.until = rfc3339(self.range.until);
        report.hosts_total = self.hosts.len() as u64;
        report.hosts = largest(self.hosts.into_values(), top, |h| (h.lines, h.host.clone()));
        report.programs = largest(
            self.programs
                .into_iter()
                .map(|(key, count)| KeyCount { key, count }),
            top,
            |p| (p.count, p.key.clone()),
        );
        report.messages = largest(self.messages.into_values(), top, |m| {
            (m.count, m.template.clone())
        });
        report
    }
}

/// When an incident happened, for the range: its first line, else when its record was made.
fn time_of(r: &Record) -> Option<DateTime<Utc>> {
    [r.first_seen.as_deref(), Some(r.shipped_at.as_str())]
        .into_iter()
        .flatten()
        .find_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The earlier of two RFC 3339 times written the same way (UTC, `Z`): they sort as text.
fn earliest(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The `n` largest items by `weight` (ties: by the key in it, ascending).
fn largest<T, K: Ord>(
    items: impl Iterator<Item = T>,
    n: usize,
    weight: impl Fn(&T) -> (u64, K),
) -> Vec<T> {
    let mut all: Vec<T> = items.collect();
    all.sort_by(|a, b| {
        let (wa, ka) = weight(a);
        let (wb, kb) = weight(b);
        wb.cmp(&wa).then(ka.cmp(&kb))
    });
    all.truncate(n);
    all
}

/// Past `capacity` entries, drops all but the heaviest half; whether it did.
fn prune<V>(map: &mut HashMap<String, V>, capacity: usize, weight: impl Fn(&V) -> u64) -> bool {
    if map.len() <= capacity {
        return false;
    }
    let mut weights: Vec<u64> = map.values().map(&weight).collect();
    weights.sort_unstable_by(|a, b| b.cmp(a));
    let floor = weights[capacity / 2];
    map.retain(|_, v| weight(v) > floor);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Seen, TopMessage};
    use chrono::TimeZone;

    fn range() -> Range {
        Range {
            since: Utc.with_ymd_and_hms(2026, 11, 21, 7, 0, 0).unwrap(),
            until: Utc.with_ymd_and_hms(2026, 11, 22, 7, 0, 0).unwrap(),
        }
    }

    fn record(host: &str, n: u64, first_seen: &str, status: &str) -> Record {
        Record {
            version: 1,
            dt: first_seen[..10].to_string(),
            host: host.into(),
            log: format!("docker.log-{n}.gz"),
            key: format!("p/{host}/docker.log-{n}.gz"),
            sidecar_key: format!("p/{host}/docker.log-{n}.json"),
            bytes: 100 * n,
            lines: n,
            first_seen: Some(first_seen.into()),
            last_seen: Some(first_seen.into()),
            incident_id: String::new(),
            statuses: BTreeMap::from([(status.to_string(), n)]),
            programs: vec![KeyCount {
                key: "docker/web".into(),
                count: n,
            }],
            messages: vec![TopMessage {
                template: format!("GET /x {status}"),
                count: n,
                status: Some(status.into()),
                seen: None,
            }],
            shipped_at: "2026-11-22T06:00:00Z".into(),
        }
    }

    fn add(m: &mut Merger, r: Record) {
        let key = r.key.clone();
        m.add(&key, Ok(serde_json::to_vec(&r).unwrap()));
    }

    #[test]
    fn totals_per_status_host_program_and_message_of_the_range_only() {
        let mut m = Merger::new(range(), 2);
        add(
            &mut m,
            record("web1", 10, "2026-11-21T08:00:00.000Z", "502"),
        );
        add(&mut m, record("web1", 5, "2026-11-22T01:00:00.000Z", "503"));
        add(&mut m, record("web2", 7, "2026-11-21T09:00:00.000Z", "502"));
        add(&mut m, record("web3", 1, "2026-11-22T02:00:00.000Z", "500"));
        // the same partition, before the range
        add(
            &mut m,
            record("web9", 99, "2026-11-21T06:59:59.000Z", "502"),
        );
        let r = m.finish("s3://b/p".into(), vec!["dt=2026-11-21".into()]);
        assert_eq!((r.records, r.incidents, r.lines, r.bytes), (5, 4, 23, 2300));
        assert_eq!(r.hosts_total, 3);
        assert_eq!(r.statuses["502"], 17);
        assert_eq!(r.statuses["503"], 5);
        assert_eq!(r.hosts.len(), 2);
        assert_eq!(
            (
                r.hosts[0].host.as_str(),
                r.hosts[0].incidents,
                r.hosts[0].lines
            ),
            ("web1", 2, 15)
        );
        assert_eq!(
            r.hosts[0].first_seen.as_deref(),
            Some("2026-11-21T08:00:00.000Z")
        );
        assert_eq!(
            r.hosts[0].last_seen.as_deref(),
            Some("2026-11-22T01:00:00.000Z")
        );
        assert_eq!(r.programs[0].count, 23);
        assert_eq!(r.messages[0].template, "GET /x 502");
        assert_eq!(r.messages[0].count, 17);
        let largest: Vec<u64> = r.largest.iter().map(|i| i.lines).collect();
        assert_eq!(largest, [10, 7]);
        assert_eq!(r.since, "2026-11-21T07:00:00Z");
        let mut json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["version"], 1);
        json["errors"] = serde_json::json!([]);
        assert_eq!(
            crate::index::json_keys(&json),
            crate::index::documented_fields("## `fasttrack report`"),
            "docs/incident-index.md and the report disagree"
        );
    }

    #[test]
    fn unreadable_and_newer_records_are_counted_not_merged() {
        let mut m = Merger::new(range(), 10);
        m.add("p/a.json", Ok(b"{not json".to_vec()));
        m.add("p/b.json", Err(anyhow::anyhow!("access denied")));
        m.add("p/c.json", Ok(br#"{"version":2,"lines":"many"}"#.to_vec()));
        add(&mut m, record("web1", 3, "2026-11-21T08:00:00Z", "502"));
        let r = m.finish(String::new(), vec![]);
        assert_eq!((r.unreadable, r.newer_records, r.incidents), (2, 1, 1));
        assert!(
            r.errors[1].contains("p/b.json: access denied"),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn seen_marks_say_new_when_any_incident_saw_it_first() {
        let mut m = Merger::new(range(), 10);
        for (incidents, first) in [(3, "2026-11-01T00:00:00Z"), (0, "2026-11-21T08:00:00Z")] {
            let mut r = record("web1", 2, "2026-11-21T08:00:00Z", "502");
            r.key = format!("k{incidents}");
            r.messages[0].seen = Some(Seen {
                first_seen: first.into(),
                incidents,
            });
            add(&mut m, r);
        }
        let mut known = record("web2", 2, "2026-11-21T09:00:00Z", "503");
        known.messages[0].seen = Some(Seen {
            first_seen: "2026-10-01T00:00:00Z".into(),
            incidents: 9,
        });
        add(&mut m, known);
        add(&mut m, record("web3", 1, "2026-11-21T09:00:00Z", "500"));
        let r = m.finish(String::new(), vec![]);
        let mark = |t: &str| {
            let m = r.messages.iter().find(|m| m.template == t).unwrap();
            (m.new, m.first_seen.clone())
        };
        assert_eq!(
            mark("GET /x 502"),
            (Some(true), Some("2026-11-01T00:00:00Z".into()))
        );
        assert_eq!(
            mark("GET /x 503"),
            (Some(false), Some("2026-10-01T00:00:00Z".into()))
        );
        assert_eq!(mark("GET /x 500"), (None, None));
    }

    #[test]
    fn memory_stays_bounded_past_the_capacity() {
        let mut m = Merger::new(range(), 3);
        m.capacity = 8;
        for i in 0..100 {
            let mut r = record(&format!("h{i}"), 1 + i % 7, "2026-11-21T08:00:00Z", "502");
            r.messages[0].template = format!("t{i}");
            add(&mut m, r);
        }
        assert!(m.hosts.len() <= 8 && m.messages.len() <= 8);
        let r = m.finish(String::new(), vec![]);
        assert!(r.approximate);
        assert_eq!(r.incidents, 100);
        assert_eq!(r.largest.len(), 3);
        assert!(r.largest.iter().all(|i| i.lines == 7));
    }
}
