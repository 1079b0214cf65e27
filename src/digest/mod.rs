//! The incident digest: what failed, how often, where and when, in bounded memory.
//!
//! Pure logic, no I/O: [`Builder`] takes lines (from `watch`'s stdin or from a file scan) and
//! keeps first/last time seen, counts per HTTP status, host and program, the top distinct
//! messages after normalisation ([`template`]) with one raw example each, and the request ids
//! of JSON lines. Counters are bounded with the Space-Saving algorithm (Metwally et al.): a
//! table of at most `capacity` keys, where a new key replaces the smallest one and inherits its
//! count as a stated error bound, so the heavy hitters are always found and their counts are
//! exact as long as the table never overflowed (`error` says by how much they may be over).
//!
//! Submodules: [`parse`] takes a syslog line apart, [`template`] groups a message, [`render`]
//! prints a digest; [`scan`] digests whole logs, [`stream`] `watch`'s stream, [`sidecar`] the
//! JSON beside each rotated log.
//!
//! [`Digest`] is the serialisable form: it is the JSON written next to the rotated file
//! (`docker.log-<suffix>.json`), persisted across restarts, and printed by `fasttrack digest`.

use crate::classify::Verdict;
use crate::config::LineFilter;
use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub mod parse;
pub mod render;
pub mod scan;
pub mod sidecar;
pub mod stream;
pub mod template;

pub use parse::{parse_line, Parsed};
pub use render::{render_slack, render_text, thousands, time_frame};
pub use template::{describe, template, Fields};

/// How many distinct keys each counter table keeps.
pub const MESSAGE_CAPACITY: usize = 200;
pub const KEY_CAPACITY: usize = 100;
pub const REQUEST_ID_CAPACITY: usize = 100;
/// Raw examples and templates are cut to this many bytes.
pub(crate) const EXAMPLE_MAX: usize = 1000;
pub(crate) const TEMPLATE_MAX: usize = 300;

/// The incident rule of whole-log scans, and the one syslog-ng's shipped snippet applies
/// (`f_5xxERR-hook`; a test keeps the two the same): a 5xx right after a request's protocol,
/// after HAProxy's timers, in a JSON status field or a `status=` field. It only pre-selects:
/// [`crate::classify`] decides. Written in the syntax PCRE (syslog-ng) and the regex crate
/// read alike: no backslashes, no lookaround. Key names are spelled out (`[Ss]tatus`), not
/// `(?i:...)`: a case-insensitive group after an optional prefix made whole-log scans five
/// times slower (0.69 s instead of 0.13 s for that branch on 200 MiB); the classifier reads
/// keys in any case.
pub const DEFAULT_MATCH: &str = concat!(
    r#"(^|[[:blank:](])HTTP/[0-9.]{1,4}"?[[:blank:]]{1,8}5[0-9]{2}([^0-9A-Za-z_.]|$)"#,
    r#"|(^|[[:blank:]])-?[0-9]+/-?[0-9]+/-?[0-9]+/-?[0-9]+/[+]?-?[0-9]+[[:blank:]]5[0-9]{2}([[:blank:]]|$)"#,
    r#"|"(http[._]?|response[._])?[Ss]tatus(_?[Cc]ode)?"[[:blank:]]*:[[:blank:]]*"?5[0-9]{2}([^0-9]|$)"#,
    r#"|(^|[[:blank:],;{(&?|])(http[._]?|response[._])?[Ss]tatus(_?[Cc]ode)?="?5[0-9]{2}([^0-9]|$)"#,
);

/// The article's rule, kept for compatibility (`--match` or the snippet's comment): it also
/// matches a response size of 500-599 bytes (`"GET /a HTTP/1.1" 200 512 `).
pub const ARTICLE_MATCH: &str = r"HTTP\/.{3,20}[[:space:]]5[[:digit:]]{2}[[:space:]]";

/// One counted key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub key: String,
    pub count: u64,
    /// How much `count` may be over the truth (0 while the table never overflowed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub error: u64,
}

/// One distinct message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The message with its variable parts replaced: `<n>`, `<hex>`, `<uuid>`, `<ip>`, `<ts>`, `"<*>"`.
    pub template: String,
    pub count: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub error: u64,
    /// The first raw line seen with this template.
    pub example: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Whether earlier incidents had this message ([`crate::known`]): set once the incident's
    /// digest is final, when its log is shipped; absent before, and in `fasttrack digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
}

/// A top message's mark: new, or seen in earlier incidents of this host ([`crate::known`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// RFC 3339: the first line of the first incident that had this message.
    pub first_seen: String,
    /// Earlier incidents with this message (its template and status); 0: it is new.
    pub incidents: u64,
}

impl Seen {
    /// No earlier incident had this message (what `only-new` routes select).
    pub fn is_new(&self) -> bool {
        self.incidents == 0
    }
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The digest of one incident (or of a whole log), as written to JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// `stream` (built by `watch` from the lines syslog-ng sent) or `file` (a scan of the log).
    pub source: String,
    /// The host fasttrack runs on.
    #[serde(default)]
    pub reporter: String,
    /// The rotated file this digest describes, once it is attached to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// RFC 3339 times of the first and last line (the lines' own timestamps when they carry one).
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Lines of the incident (selected by the rule, not ignored).
    pub lines: u64,
    /// Lines read in all (file scans: the whole log; streams: as `lines` plus `ignored`).
    pub lines_read: u64,
    /// Lines matching an `--ignore` pattern: not counted, still in the shipped log.
    pub ignored: u64,
    /// Lines counted but not digested (`watch` under a flood keeps draining and counting).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_digested: u64,
    /// Lines the filter selected whose status is not 5xx (a `200` with a 512-byte body):
    /// not incident lines. Many of them mean syslog-ng's filter is too broad.
    #[serde(default)]
    pub not_5xx: u64,
    pub statuses: BTreeMap<String, u64>,
    pub hosts: Vec<Count>,
    pub programs: Vec<Count>,
    pub messages: Vec<Message>,
    /// Request ids of JSON lines (the first ones, up to a bound), and how many there were.
    pub request_ids: Vec<String>,
    pub request_ids_total: u64,
    /// An id of the incident: the time its first line was digested.
    #[serde(default)]
    pub incident_id: String,
}

/// A Space-Saving counter table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Table<V> {
    capacity: usize,
    entries: HashMap<String, (u64, u64, V)>,
}

impl<V: Clone> Table<V> {
    fn new(capacity: usize) -> Self {
        Table {
            capacity,
            entries: HashMap::new(),
        }
    }

    /// Adds `n` to `key`; `value` makes the entry's payload when the key is new.
    fn add(&mut self, key: &str, n: u64, value: impl FnOnce() -> V) {
        if let Some(e) = self.entries.get_mut(key) {
            e.0 += n;
            return;
        }
        if self.entries.len() < self.capacity {
            self.entries.insert(key.to_string(), (n, 0, value()));
            return;
        }
        // Full: the smallest entry gives its place (and its count, as the error bound).
        let smallest = self
            .entries
            .iter()
            .min_by(|a, b| a.1 .0.cmp(&b.1 .0).then_with(|| b.0.cmp(a.0)))
            .map(|(k, (c, _, _))| (k.clone(), *c));
        if let Some((old, min)) = smallest {
            self.entries.remove(&old);
            self.entries
                .insert(key.to_string(), (min + n, min, value()));
        }
    }

    /// Entries by count, largest first (ties by key, for stable output).
    fn top(&self, n: usize) -> Vec<(&String, u64, u64, &V)> {
        let mut all: Vec<_> = self
            .entries
            .iter()
            .map(|(k, (c, e, v))| (k, *c, *e, v))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

/// What [`Builder`] keeps per message template.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MessageInfo {
    example: String,
    status: Option<String>,
}

/// What `watch`'s reader counted in a run of lines (every line, whether digested or not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounts {
    /// Incident lines: 5xx, or no status found.
    pub incident: u64,
    /// A status outside 5xx.
    pub not_5xx: u64,
    /// Matched an `--ignore` pattern.
    pub ignored: u64,
}

/// Accumulates lines into a digest, in bounded memory. Serialisable, so that `watch` can
/// persist an open incident and resume it after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Builder {
    pub source: String,
    pub after_suffix: Option<u64>,
    /// False when lines may be missing (a restart after a crash): the file is then scanned.
    #[serde(default)]
    pub exact: bool,
    pub incident_id: String,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    lines: u64,
    lines_read: u64,
    ignored: u64,
    not_digested: u64,
    #[serde(default)]
    not_5xx: u64,
    statuses: BTreeMap<String, u64>,
    hosts: Table<()>,
    programs: Table<()>,
    messages: Table<MessageInfo>,
    request_ids: Vec<String>,
    request_ids_total: u64,
    /// Digests of the incident lines each filter passes (a notification route's share of the
    /// incident), filled as lines are added. Only whole-file scans set it: never persisted.
    #[serde(skip)]
    pub routed: Vec<(LineFilter, Builder)>,
}

impl Builder {
    pub fn new(source: &str) -> Self {
        Builder {
            source: source.to_string(),
            after_suffix: None,
            exact: true,
            incident_id: String::new(),
            first: None,
            last: None,
            lines: 0,
            lines_read: 0,
            ignored: 0,
            not_digested: 0,
            not_5xx: 0,
            statuses: BTreeMap::new(),
            hosts: Table::new(KEY_CAPACITY),
            programs: Table::new(KEY_CAPACITY),
            messages: Table::new(MESSAGE_CAPACITY),
            request_ids: Vec::new(),
            request_ids_total: 0,
            routed: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0 && self.ignored == 0 && self.not_digested == 0
    }

    pub fn lines(&self) -> u64 {
        self.lines + self.not_digested
    }

    /// A line read but not selected by the incident rule (file scans).
    pub fn skip(&mut self) {
        self.lines_read += 1;
    }

    /// `n` lines read but not selected.
    pub fn skip_many(&mut self, n: u64) {
        self.lines_read += n;
    }

    pub fn ignore(&mut self) {
        self.lines_read += 1;
        self.ignored += 1;
    }

    /// Lines counted without being looked at (a flood `watch` could not digest in time).
    pub fn not_digested(&mut self, lines: u64) {
        self.lines_read += lines;
        self.not_digested += lines;
    }

    /// Lines the filter selected whose status is not 5xx ([`crate::classify`]), in bulk.
    pub fn not_5xx_many(&mut self, n: u64) {
        self.lines_read += n;
        self.not_5xx += n;
    }

    /// What the lines counted by [`StreamCounts`] add up to, when they were not digested.
    pub fn counted(&mut self, c: &StreamCounts) {
        self.not_digested(c.incident);
        self.not_5xx_many(c.not_5xx);
        self.lines_read += c.ignored;
        self.ignored += c.ignored;
    }

    /// Adds a line the filter selected: an incident line unless its status says otherwise
    /// ([`crate::classify`]); `now` stands in for lines without a timestamp of their own.
    pub fn add(&mut self, raw: &str, now: DateTime<Utc>) {
        let line = raw.trim_end_matches(['\n', '\r']);
        let verdict = crate::classify::classify(line.as_bytes());
        if !verdict.is_incident() {
            self.not_5xx_many(1);
            return;
        }
        self.add_incident(line, verdict, now);
    }

    /// Adds a line already classified as an incident line.
    pub fn add_incident(&mut self, line: &str, verdict: Verdict, now: DateTime<Utc>) {
        let parsed = parse_line(line, now);
        if !self.routed.is_empty() {
            let status = verdict.status().map(|s| s.to_string()).unwrap_or_default();
            let (host, program) = (parsed.host.unwrap_or("-"), parsed.program.unwrap_or("-"));
            for (filter, routed) in &mut self.routed {
                if filter.passes(host, program, &status, parsed.message) {
                    routed.add_incident(line, verdict, now);
                }
            }
        }
        let at = parsed.time.unwrap_or(now);
        self.lines_read += 1;
        self.lines += 1;
        if self.first.map_or(true, |f| at < f) {
            self.first = Some(at);
        }
        if self.last.map_or(true, |l| at > l) {
            self.last = Some(at);
        }
        if self.incident_id.is_empty() {
            self.incident_id = at.format("%Y%m%dT%H%M%S%.3fZ").to_string();
        }
        self.hosts.add(parsed.host.unwrap_or("-"), 1, || ());
        self.programs.add(parsed.program.unwrap_or("-"), 1, || ());
        let fields = describe(parsed.message, verdict.status().map(|s| s.to_string()));
        let status = fields.status.clone().unwrap_or_else(|| "-".to_string());
        *self.statuses.entry(status).or_default() += 1;
        let template = fields.template;
        self.messages.add(&template, 1, || MessageInfo {
            example: cut(line, EXAMPLE_MAX).to_string(),
            status: fields.status,
        });
        if let Some(id) = fields.request_id {
            self.request_ids_total += 1;
            if self.request_ids.len() < REQUEST_ID_CAPACITY && !self.request_ids.contains(&id) {
                self.request_ids.push(id);
            }
        }
    }

    /// Adds everything `other`, the lines that came after self's, counted (a rotation that
    /// failed gives its lines back; a new `watch` takes over an old one's).
    pub fn merge(&mut self, other: Builder) {
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, other.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.lines += other.lines;
        self.lines_read += other.lines_read;
        self.ignored += other.ignored;
        self.not_digested += other.not_digested;
        self.not_5xx += other.not_5xx;
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, (c, _, v)) in other.hosts.entries {
            self.hosts.add(&k, c, || v);
        }
        for (k, (c, _, v)) in other.programs.entries {
            self.programs.add(&k, c, || v);
        }
        for (k, (c, _, v)) in other.messages.entries {
            self.messages.add(&k, c, || v);
        }
        self.request_ids_total += other.request_ids_total;
        for id in other.request_ids {
            if self.request_ids.len() < REQUEST_ID_CAPACITY && !self.request_ids.contains(&id) {
                self.request_ids.push(id);
            }
        }
        // `after_suffix` and `exact` stay self's: they say where self, the older part, starts.
        if self.incident_id.is_empty() {
            self.incident_id = other.incident_id;
        }
    }

    /// The digest, with the `top` largest entries of each list.
    pub fn digest(&self, reporter: &str, top: usize) -> Digest {
        let counts = |t: &Table<()>| {
            t.top(top)
                .into_iter()
                .map(|(k, count, error, _)| Count {
                    key: k.clone(),
                    count,
                    error,
                })
                .collect()
        };
        Digest {
            source: self.source.clone(),
            reporter: reporter.to_string(),
            log: None,
            first_seen: self.first.map(rfc3339),
            last_seen: self.last.map(rfc3339),
            lines: self.lines + self.not_digested,
            lines_read: self.lines_read,
            ignored: self.ignored,
            not_digested: self.not_digested,
            not_5xx: self.not_5xx,
            statuses: self.statuses.clone(),
            hosts: counts(&self.hosts),
            programs: counts(&self.programs),
            messages: self
                .messages
                .top(top)
                .into_iter()
                .map(|(k, count, error, info)| Message {
                    template: k.clone(),
                    count,
                    error,
                    example: info.example.clone(),
                    status: info.status.clone(),
                    seen: None,
                })
                .collect(),
            request_ids: self.request_ids.clone(),
            request_ids_total: self.request_ids_total,
            incident_id: self.incident_id.clone(),
        }
    }
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The default incident rule with `ignore` patterns, for the tests of every submodule.
#[cfg(test)]
pub(crate) fn test_rules(ignore: &[&str]) -> crate::config::IncidentConfig {
    crate::config::IncidentConfig {
        select: regex::bytes::Regex::new(DEFAULT_MATCH).unwrap(),
        ignore: regex::bytes::RegexSet::new(ignore).unwrap(),
        top: 10,
        notify: None,
    }
}

/// A fixed "now" for the tests of every submodule.
#[cfg(test)]
pub(crate) fn test_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

#[cfg(test)]
mod tests {
    use super::test_now as now;
    use super::*;

    #[test]
    fn builds_a_digest_with_counts_hosts_programs_and_examples() {
        let mut b = Builder::new("file");
        let lines = [
            "Nov 22 04:26:15 web1 docker/api[1]: 1.2.3.4 - - \"POST /orders/1 HTTP/1.1\" 502 0",
            "Nov 22 04:26:16 web2 docker/api[1]: 1.2.3.5 - - \"POST /orders/2 HTTP/1.1\" 502 0",
            "Nov 22 04:26:17 web1 docker/web[9]: 1.2.3.5 - - \"GET /health HTTP/1.1\" 503 0",
            "Nov 22 04:26:14 web1 docker/api[1]: {\"status\":500,\"requestId\":\"r1\",\"message\":\"db down\"}",
        ];
        for l in lines {
            b.add(l, now());
        }
        let d = b.digest("me", 10);
        assert_eq!(d.lines, 4);
        assert_eq!(d.first_seen.as_deref(), Some("2026-11-22T04:26:14.000Z"));
        assert_eq!(d.last_seen.as_deref(), Some("2026-11-22T04:26:17.000Z"));
        assert_eq!(
            d.statuses,
            BTreeMap::from([
                ("500".to_string(), 1),
                ("502".to_string(), 2),
                ("503".to_string(), 1)
            ])
        );
        assert_eq!(
            d.hosts[0],
            Count {
                key: "web1".into(),
                count: 3,
                error: 0
            }
        );
        assert_eq!(d.programs[0].key, "docker/api");
        assert_eq!(d.messages[0].template, "POST /orders/<n> 502");
        assert_eq!(d.messages[0].count, 2);
        assert_eq!(d.messages[0].example, lines[0]);
        assert_eq!(d.request_ids, vec!["r1".to_string()]);
        // JSON round trip, as persisted
        let back: Digest = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn memory_is_bounded_and_heavy_hitters_survive() {
        let mut b = Builder::new("stream");
        for i in 0..50_000u64 {
            // one frequent error among a flood of unique ones
            if i % 10 == 0 {
                b.add("h p: database is down", now());
            }
            // 997 distinct words, no digits (which would be normalised away)
            let word: String = [i % 997 / 26 / 26, i % 997 / 26 % 26, i % 997 % 26]
                .iter()
                .map(|&c| (b'a' + c as u8) as char)
                .collect();
            b.add(&format!("h p: unique error {word}"), now());
        }
        assert!(b.messages.entries.len() <= MESSAGE_CAPACITY);
        let d = b.digest("me", 5);
        assert_eq!(d.messages[0].template, "h p: database is down");
        assert!(d.messages[0].count >= 5_000);
        assert!(d.messages[0].count - d.messages[0].error <= 5_000);
    }

    #[test]
    fn merge_adds_up() {
        let mut a = Builder::new("stream");
        a.add("Nov 22 04:00:00 h p: x 500", now());
        let mut b = Builder::new("stream");
        b.add("Nov 22 05:00:00 h2 p: x 501", now());
        b.ignore();
        a.merge(b);
        let d = a.digest("me", 10);
        assert_eq!((d.lines, d.ignored, d.lines_read), (2, 1, 3));
        assert_eq!(d.messages[0].count, 2);
        assert_eq!(d.last_seen.as_deref(), Some("2026-11-22T05:00:00.000Z"));
    }
}
