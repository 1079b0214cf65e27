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
//! [`Digest`] is the serialisable form: it is the JSON written next to the rotated file
//! (`docker.log-<suffix>.json`), persisted across restarts, and printed by `fasttrack digest`.

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// How many distinct keys each counter table keeps.
pub const MESSAGE_CAPACITY: usize = 200;
pub const KEY_CAPACITY: usize = 100;
pub const REQUEST_ID_CAPACITY: usize = 100;
/// Raw examples and templates are cut to this many bytes.
const EXAMPLE_MAX: usize = 1000;
const TEMPLATE_MAX: usize = 300;

/// The article's incident rule, as syslog-ng's snippet applies it: HTTP/, 3 to 20 characters,
/// whitespace, a 5xx status, whitespace.
pub const DEFAULT_MATCH: &str = r"HTTP/.{3,20}[[:space:]]5[[:digit:]]{2}[[:space:]]";

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
}

fn is_zero(n: &u64) -> bool {
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
    statuses: BTreeMap<String, u64>,
    hosts: Table<()>,
    programs: Table<()>,
    messages: Table<MessageInfo>,
    request_ids: Vec<String>,
    request_ids_total: u64,
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
            statuses: BTreeMap::new(),
            hosts: Table::new(KEY_CAPACITY),
            programs: Table::new(KEY_CAPACITY),
            messages: Table::new(MESSAGE_CAPACITY),
            request_ids: Vec::new(),
            request_ids_total: 0,
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

    /// Adds one incident line; `now` stands in for lines without a timestamp of their own.
    pub fn add(&mut self, raw: &str, now: DateTime<Utc>) {
        let line = raw.trim_end_matches(['\n', '\r']);
        let parsed = parse_line(line, now);
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
        let fields = classify(parsed.message);
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

    /// Adds everything `other` counted (a rotation that failed gives its lines back).
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
        if self.incident_id.is_empty() {
            self.incident_id = other.incident_id;
            self.after_suffix = other.after_suffix;
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
                })
                .collect(),
            request_ids: self.request_ids.clone(),
            request_ids_total: self.request_ids_total,
            incident_id: self.incident_id.clone(),
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A syslog line taken apart.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub time: Option<DateTime<Utc>>,
    pub host: Option<&'a str>,
    /// The program (tag) without its `[pid]`: `docker/api`.
    pub program: Option<&'a str>,
    pub message: &'a str,
}

/// Takes apart `Nov 22 04:26:15 host prog[pid]: msg` (syslog-ng's default file and program()
/// template), the same with an ISO 8601 date (`ts-format(iso)`), and RFC 5424 lines. A line
/// that is none of these is all message. BSD dates carry no year: the one that puts the
/// line closest before `now` (plus a day of clock skew) is taken.
pub fn parse_line(line: &str, now: DateTime<Utc>) -> Parsed<'_> {
    let mut rest = line;
    // <PRI> and the RFC 5424 version.
    if let Some(r) = rest.strip_prefix('<') {
        if let Some(end) = r.find('>').filter(|&e| e <= 3) {
            rest = &r[end + 1..];
            if let Some(r) = rest.strip_prefix("1 ") {
                return parse_5424(r, line);
            }
        }
    }
    let (time, after) = match parse_bsd_time(rest, now) {
        Some((t, after)) => (Some(t), after),
        None => match parse_iso_prefix(rest) {
            Some((t, after)) => (Some(t), after),
            None => {
                return Parsed {
                    time: None,
                    host: None,
                    program: None,
                    message: line,
                }
            }
        },
    };
    let after = after.trim_start_matches(' ');
    let Some((host, after)) = after.split_once(' ') else {
        return Parsed {
            time,
            host: None,
            program: None,
            message: after,
        };
    };
    let (program, message) = split_tag(after);
    Parsed {
        time,
        host: Some(host),
        program,
        message,
    }
}

fn parse_5424<'a>(rest: &'a str, line: &'a str) -> Parsed<'a> {
    let mut parts = rest.splitn(6, ' ');
    let (Some(ts), Some(host), Some(app), Some(_pid), Some(_msgid), Some(tail)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Parsed {
            time: None,
            host: None,
            program: None,
            message: line,
        };
    };
    // Structured data: "-" or [..][..].
    let message = if let Some(m) = tail.strip_prefix("- ") {
        m
    } else if tail.starts_with('[') {
        skip_structured_data(tail)
    } else {
        tail.strip_prefix('-').unwrap_or(tail)
    };
    let nil = |s: &'a str| (s != "-").then_some(s);
    Parsed {
        time: DateTime::parse_from_rfc3339(ts)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        host: nil(host),
        program: nil(app),
        message: message.strip_prefix('\u{feff}').unwrap_or(message),
    }
}

fn skip_structured_data(s: &str) -> &str {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] == b'[' {
        // to the matching unescaped ']'
        i += 1;
        while i < bytes.len() && bytes[i] != b']' {
            if bytes[i] == b'\\' {
                i += 1;
            }
            i += 1;
        }
        i += 1;
    }
    s.get(i..).map_or("", |m| m.trim_start_matches(' '))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Nov 22 04:26:15` or `Nov  2 04:26:15` (optionally with .micros), then the rest.
fn parse_bsd_time(s: &str, now: DateTime<Utc>) -> Option<(DateTime<Utc>, &str)> {
    let b = s.as_bytes();
    if b.len() < 15 || b[3] != b' ' {
        return None;
    }
    let month = MONTHS.iter().position(|m| m.as_bytes() == &b[..3])? as u32 + 1;
    let day: u32 = s[4..6].trim_start().parse().ok()?;
    if b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    let (h, m, sec): (u32, u32, u32) = (
        s[7..9].parse().ok()?,
        s[10..12].parse().ok()?,
        s[13..15].parse().ok()?,
    );
    let mut end = 15;
    let mut nanos = 0u32;
    if b.get(15) == Some(&b'.') {
        let digits = b[16..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 {
            let frac = &s[16..16 + digits.min(9)];
            nanos = frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32);
            end = 16 + digits;
        }
    }
    let at = |year: i32| {
        Utc.with_ymd_and_hms(year, month, day, h, m, sec)
            .single()
            .map(|t| t + chrono::Duration::nanoseconds(i64::from(nanos)))
    };
    let limit = now + chrono::Duration::days(1);
    let t = at(now.year())
        .filter(|t| *t <= limit)
        .or_else(|| at(now.year() - 1))?;
    Some((t, &s[end..]))
}

/// An RFC 3339 / ISO 8601 timestamp up to the first space.
fn parse_iso_prefix(s: &str) -> Option<(DateTime<Utc>, &str)> {
    let b = s.as_bytes();
    if b.len() < 19 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let end = s.find(' ').unwrap_or(s.len());
    let token = &s[..end];
    let t = DateTime::parse_from_rfc3339(token)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(token, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })?;
    Some((t, &s[end..]))
}

/// `prog[pid]: message` or `prog: message`; anything else is all message.
fn split_tag(s: &str) -> (Option<&str>, &str) {
    let Some(colon) = s.find(": ") else {
        return (None, s);
    };
    let tag = &s[..colon];
    if tag.is_empty() || tag.contains(' ') {
        return (None, s);
    }
    let program = match tag.find('[') {
        Some(open) if tag.ends_with(']') => &tag[..open],
        _ => tag,
    };
    (Some(program), &s[colon + 2..])
}

/// What a message says, for grouping.
#[derive(Debug, PartialEq, Eq)]
pub struct Fields {
    pub template: String,
    pub status: Option<String>,
    pub request_id: Option<String>,
}

/// The request line and status of an access-log line: `"POST /path HTTP/1.1" 502`.
/// Hand-written (no regex): it runs on every line of an incident.
fn access_request(m: &str) -> Option<(&str, &str, &str)> {
    let mut from = 0;
    while let Some(q) = m[from..].find('"').map(|i| from + i) {
        from = q + 1;
        let rest = &m[q + 1..];
        let method_len = rest.bytes().take_while(u8::is_ascii_uppercase).count();
        if !(3..=10).contains(&method_len) || rest.as_bytes().get(method_len) != Some(&b' ') {
            continue;
        }
        let after_method = &rest[method_len + 1..];
        let Some(path_len) = after_method.find([' ', '"']) else {
            continue;
        };
        let tail = &after_method[path_len..];
        let Some(version) = tail.strip_prefix(" HTTP/") else {
            continue;
        };
        let version_len = version
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        let Some(status) = version[version_len..].strip_prefix("\" ") else {
            continue;
        };
        let sb = status.as_bytes();
        if sb.len() >= 3
            && (b'1'..=b'5').contains(&sb[0])
            && sb[1].is_ascii_digit()
            && sb[2].is_ascii_digit()
            && sb
                .get(3)
                .map_or(true, |c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        {
            return Some((&rest[..method_len], &after_method[..path_len], &status[..3]));
        }
    }
    None
}

fn status_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // Invariant: a constant pattern that compiles (every test that parses a status runs it).
    RE.get_or_init(|| Regex::new(r"HTTP/\S{1,20}\s+([1-5][0-9]{2})\b").expect("valid"))
}

/// The template, status and request id of a message: from its fields when it is JSON, from
/// the access-log request line when it has one (`POST /api/orders/<n> 502`), else the
/// normalised message.
pub fn classify(message: &str) -> Fields {
    let m = message.trim();
    if m.starts_with('{') {
        if let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(m) {
            return classify_json(&obj);
        }
    }
    if let Some((method, path, status)) = access_request(m) {
        let path = path.split('?').next().unwrap_or("");
        return Fields {
            template: format!("{method} {} {status}", template(path)),
            status: Some(status.to_string()),
            request_id: None,
        };
    }
    Fields {
        template: template(m),
        status: status_regex().captures(m).map(|c| c[1].to_string()),
        request_id: None,
    }
}

fn classify_json(obj: &serde_json::Map<String, serde_json::Value>) -> Fields {
    let field = |names: &[&str]| -> Option<String> {
        for name in names {
            let found = obj
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .or_else(|| {
                    // one level down: {"http": {"status": 502}}
                    let (outer, inner) = name.split_once('.')?;
                    obj.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(outer))?
                        .1
                        .as_object()?
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(inner))
                        .map(|(_, v)| v)
                });
            match found {
                Some(serde_json::Value::String(s)) if !s.is_empty() => return Some(s.clone()),
                Some(serde_json::Value::Number(n)) => return Some(n.to_string()),
                _ => {}
            }
        }
        None
    };
    let status = field(&[
        "status",
        "statusCode",
        "status_code",
        "httpStatus",
        "http_status",
        "http.status",
        "http.status_code",
        "response.status",
    ]);
    let level = field(&["level", "severity", "levelname", "lvl"]);
    let action = field(&[
        "actionId",
        "action_id",
        "action",
        "route",
        "endpoint",
        "path",
        "url",
        "http.path",
        "request.path",
    ]);
    let method = field(&["method", "http.method", "request.method"]);
    let message = field(&["message", "msg", "error", "err", "event"]);
    let request_id = field(&[
        "requestId",
        "request_id",
        "reqId",
        "req_id",
        "x-request-id",
        "http.request_id",
    ]);
    let mut parts: Vec<String> = Vec::new();
    if let Some(l) = &level {
        parts.push(format!("[{}]", l.to_ascii_lowercase()));
    }
    if let Some(m) = &method {
        parts.push(m.clone());
    }
    if let Some(a) = &action {
        parts.push(template(a.split('?').next().unwrap_or("")));
    }
    if let Some(s) = &status {
        parts.push(s.clone());
    }
    if let Some(m) = &message {
        parts.push(template(m));
    }
    if parts.is_empty() {
        // JSON without any field we know: its keys are the best template.
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        parts.push(format!("{{{}}}", keys.join(",")));
    }
    let status = status.filter(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()));
    Fields {
        template: cut(&parts.join(" "), TEMPLATE_MAX).to_string(),
        status,
        request_id,
    }
}

/// Replaces the variable parts of a message: quoted values with `"<*>"`, UUIDs with
/// `<uuid>`, IPv4/IPv6 addresses (with a port) with `<ip>`, dates and times with `<ts>`,
/// hex ids (`0x..`, or 6+ hex digits with a digit) with `<hex>`, numbers with `<n>` (a unit
/// after them stays: `<n>ms`). One pass, no regex: it runs on every line of an incident.
pub fn template(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(TEMPLATE_MAX) + 8);
    let b = message.as_bytes();
    let mut i = 0;
    while i < b.len() && out.len() < TEMPLATE_MAX {
        let c = b[i];
        if c == b'"' || c == b'\'' {
            // a quoted value, closed on the same line
            if let Some(len) = message[i + 1..].find(c as char) {
                out.push(c as char);
                out.push_str("<*>");
                out.push(c as char);
                i += len + 2;
                continue;
            }
        }
        if is_token_byte(c) {
            let start = i;
            while i < b.len() && is_token_byte(b[i]) {
                i += 1;
            }
            let token = &message[start..i];
            if is_timestamp(token) {
                // A timestamp's offset (`+00:00`, `Z`) belongs to it.
                while i < b.len() && (b[i] == b'+' || b[i] == b'Z') {
                    i += 1;
                    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b':') {
                        i += 1;
                    }
                }
                out.push_str("<ts>");
                continue;
            }
            push_token(token, &mut out);
            continue;
        }
        // any other character (UTF-8 sequences are copied whole)
        let ch = message[i..].chars().next().unwrap_or(' ');
        if ch.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(ch);
        }
        i += ch.len_utf8();
    }
    cut(out.trim_end(), TEMPLATE_MAX).to_string()
}

fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b':' | b'-' | b'_')
}

fn push_token(token: &str, out: &mut String) {
    if is_uuid(token) {
        out.push_str("<uuid>");
    } else if is_ip(token) {
        out.push_str("<ip>");
    } else if is_time(token) {
        out.push_str("<ts>");
    } else {
        // Segments between . : - _ are judged one by one: worker-12 -> worker-<n>.
        let mut rest = token;
        while !rest.is_empty() {
            let seg_len = rest
                .find(['.', ':', '-', '_'])
                .unwrap_or(rest.len())
                .max(usize::from(rest.starts_with(['.', ':', '-', '_'])));
            let (seg, tail) = rest.split_at(seg_len);
            push_segment(seg, out);
            rest = tail;
        }
    }
}

fn push_segment(seg: &str, out: &mut String) {
    let b = seg.as_bytes();
    if b.is_empty() {
        return;
    }
    if !b[0].is_ascii_alphanumeric() {
        out.push_str(seg);
        return;
    }
    if (seg.starts_with("0x") || seg.starts_with("0X"))
        && b.len() > 2
        && b[2..].iter().all(u8::is_ascii_hexdigit)
    {
        out.push_str("<hex>");
        return;
    }
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let unit = &b[digits..];
    // 42, 1.2.3, 250ms, 12.5s, 3KB: a number (its parts collapsed into one <n>) and its unit
    let number = digits > 0
        && (unit.is_empty() || (unit.len() <= 3 && unit.iter().all(u8::is_ascii_alphabetic)));
    let hex =
        b.len() >= 6 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit);
    if number && (unit.is_empty() || !hex) {
        if out.ends_with("<n>.") || out.ends_with("<n>,") {
            out.pop();
        } else {
            out.push_str("<n>");
        }
        out.push_str(&seg[digits..]);
        return;
    }
    if hex {
        out.push_str("<hex>");
        return;
    }
    out.push_str(seg);
}

fn is_uuid(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_ip(t: &str) -> bool {
    // IPv4, optionally with :port
    let v4 = |s: &str| {
        let mut parts = 0;
        s.split('.').all(|p| {
            parts += 1;
            !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok()
        }) && parts == 4
    };
    if !t.as_bytes().first().is_some_and(u8::is_ascii_hexdigit) {
        return false;
    }
    if let Some((host, port)) = t.rsplit_once(':') {
        if v4(host) && !port.is_empty() && port.bytes().all(|c| c.is_ascii_digit()) {
            return true;
        }
    }
    if v4(t) {
        return true;
    }
    // IPv6: hex groups and colons, at least two colons, a hex digit
    t.matches(':').count() >= 2
        && t.bytes()
            .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        && t.bytes().any(|c| c.is_ascii_hexdigit())
        && !is_time(t)
}

/// `2026-11-22`, `2026-11-22T04:26:15(.123)`.
fn is_timestamp(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && (b.len() == 10 || b[10] == b'T' || b[10] == b'_')
}

/// `04:26:15`, `4:26`, `04:26:15.123`, `04:26:15,123`.
fn is_time(t: &str) -> bool {
    let main = t.split(['.', ',']).next().unwrap_or("");
    let mut parts = 0;
    main.split(':').enumerate().all(|(i, p)| {
        parts += 1;
        (if i == 0 { 1..=2 } else { 2..=2 }).contains(&p.len())
            && p.bytes().all(|c| c.is_ascii_digit())
    }) && (2..=3).contains(&parts)
}

/// `12345` -> `12,345`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `04:10:01 -> 04:12:33 UTC (2m 32s)`, with dates when they differ from the first one.
pub fn time_frame(d: &Digest) -> Option<String> {
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let (first, last) = (parse(&d.first_seen)?, parse(&d.last_seen)?);
    let span = (last - first).to_std().unwrap_or_default();
    let span = humantime::format_duration(std::time::Duration::from_secs(span.as_secs()));
    let end = if first.date_naive() == last.date_naive() {
        last.format("%H:%M:%S").to_string()
    } else {
        last.format("%Y-%m-%d %H:%M:%S").to_string()
    };
    Some(format!(
        "{} -> {end} UTC ({span})",
        first.format("%Y-%m-%d %H:%M:%S")
    ))
}

fn join_counts(items: &[Count], max: usize) -> String {
    let mut parts: Vec<String> = items
        .iter()
        .take(max)
        .map(|c| format!("{} x{}", c.key, thousands(c.count)))
        .collect();
    if items.len() > max {
        parts.push(format!("and {} more", items.len() - max));
    }
    parts.join(", ")
}

fn join_statuses(d: &Digest) -> String {
    let mut s: Vec<(&String, &u64)> = d.statuses.iter().collect();
    s.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    s.iter()
        .map(|(k, v)| format!("{k} x{}", thousands(**v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `fasttrack digest` prints for one log.
pub fn render_text(d: &Digest, name: &str) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{name}");
    let mut read = format!("{} read", thousands(d.lines_read));
    if d.ignored > 0 {
        read.push_str(&format!(", {} ignored", thousands(d.ignored)));
    }
    if d.not_digested > 0 {
        read.push_str(&format!(
            ", {} counted but not digested (flood)",
            thousands(d.not_digested)
        ));
    }
    let _ = writeln!(
        o,
        "  lines        {} in the incident ({read})",
        thousands(d.lines)
    );
    if d.lines == 0 {
        return o;
    }
    if let Some(frame) = time_frame(d) {
        let _ = writeln!(o, "  time frame   {frame}");
    }
    let _ = writeln!(o, "  statuses     {}", join_statuses(d));
    let _ = writeln!(o, "  hosts        {}", join_counts(&d.hosts, 8));
    let _ = writeln!(o, "  programs     {}", join_counts(&d.programs, 8));
    let _ = writeln!(o, "  top messages");
    let width = d.messages.first().map_or(1, |m| thousands(m.count).len());
    for m in &d.messages {
        let approx = if m.error > 0 { "~" } else { " " };
        let _ = writeln!(
            o,
            "  {approx}{:>width$}  {}",
            thousands(m.count),
            m.template
        );
        let _ = writeln!(o, "   {:>width$}  e.g. {}", "", cut(&m.example, 200));
    }
    if d.request_ids_total > 0 {
        let shown: Vec<&str> = d.request_ids.iter().take(10).map(String::as_str).collect();
        let more = d.request_ids_total.saturating_sub(shown.len() as u64);
        let _ = writeln!(
            o,
            "  request ids  {}{}",
            shown.join(", "),
            if more > 0 {
                format!(" (and {more} more lines with one)")
            } else {
                String::new()
            }
        );
    }
    o
}

/// Slack's mrkdwn gives `&`, `<` and `>` a meaning (links, mentions): text from logs is escaped.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Slack message (mrkdwn) for a shipped incident; `link` is where to download the log.
pub fn render_slack(d: &Digest, name: &str, link: &str, link_note: &str) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        ":rotating_light: *HTTP 5xx incident on {}*: {} lines{}",
        slack_escape(&d.reporter),
        thousands(d.lines),
        time_frame(d).map_or(String::new(), |f| format!(", {}", slack_escape(&f)))
    );
    let _ = writeln!(o, "*Statuses:* {}", join_statuses(d));
    let _ = writeln!(o, "*Hosts:* {}", slack_escape(&join_counts(&d.hosts, 5)));
    let _ = writeln!(
        o,
        "*Programs:* {}",
        slack_escape(&join_counts(&d.programs, 5))
    );
    let _ = writeln!(o, "*Top messages:*");
    for m in d.messages.iter().take(5) {
        let _ = writeln!(
            o,
            "\u{2022} {} x `{}`",
            thousands(m.count),
            slack_escape(&m.template.replace('`', "'"))
        );
    }
    if d.ignored > 0 {
        let _ = writeln!(o, "({} snoozed lines not counted)", thousands(d.ignored));
    }
    let _ = write!(o, "<{link}|{name}>{link_note}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    #[test]
    fn parses_bsd_iso_and_5424_lines() {
        let p = parse_line(
            "Nov 22 04:26:15 web1 docker/api[812]: 10.0.0.7 - - \"GET / HTTP/1.1\" 502 0",
            now(),
        );
        assert_eq!(p.host, Some("web1"));
        assert_eq!(p.program, Some("docker/api"));
        assert_eq!(p.message, "10.0.0.7 - - \"GET / HTTP/1.1\" 502 0");
        assert_eq!(
            p.time,
            Some(Utc.with_ymd_and_hms(2026, 11, 22, 4, 26, 15).unwrap())
        );
        // December lines read in January belong to last year
        let jan = Utc.with_ymd_and_hms(2027, 1, 2, 0, 0, 0).unwrap();
        let p = parse_line("Dec 31 23:59:59 h p: m", jan);
        assert_eq!(
            p.time,
            Some(Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap())
        );
        let p = parse_line("Nov  2 04:26:15 h gunicorn: boom", now());
        assert_eq!(
            (p.host, p.program, p.message),
            (Some("h"), Some("gunicorn"), "boom")
        );
        let p = parse_line("2026-11-22T04:26:15+01:00 db2 nginx[1]: x", now());
        assert_eq!(
            p.time,
            Some(Utc.with_ymd_and_hms(2026, 11, 22, 3, 26, 15).unwrap())
        );
        assert_eq!((p.host, p.program), (Some("db2"), Some("nginx")));
        let p = parse_line(
            "<14>1 2026-11-22T04:26:15.5Z web3 api 77 - [x@1 a=\"\\]\"] hello",
            now(),
        );
        assert_eq!(
            (p.host, p.program, p.message),
            (Some("web3"), Some("api"), "hello")
        );
        let p = parse_line("just some text: here", now());
        assert_eq!(
            (p.time, p.host, p.message),
            (None, None, "just some text: here")
        );
    }

    #[test]
    fn normalises_the_variable_parts() {
        let cases = [
            (
                "upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.1.2.3, server: api.example.com, request: \"GET /v1/users/42 HTTP/1.1\", upstream: \"http://172.17.0.4:8000/v1/users/42\"",
                "upstream timed out (<n>: Connection timed out) while reading response header from upstream, client: <ip>, server: api.example.com, request: \"<*>\", upstream: \"<*>\"",
            ),
            (
                "[2026-11-22 04:26:15 +0000] [812] [CRITICAL] WORKER TIMEOUT (pid:4711)",
                "[<ts> <ts> +<n>] [<n>] [CRITICAL] WORKER TIMEOUT (pid:<n>)",
            ),
            (
                "order 3fa85f64-5717-4562-b3fc-2c963f66afa6 failed after 1234ms on worker-12 at 0x7ffd5e8c",
                "order <uuid> failed after <n>ms on worker-<n> at <hex>",
            ),
            (
                "connect to [2001:db8::1]:5432 failed: container 3f2a9c1b7e4d",
                "connect to [<ip>]:<n> failed: container <hex>",
            ),
            ("took 12.5s, version 1.2.3", "took <n>s, version <n>"),
        ];
        for (input, want) in cases {
            assert_eq!(template(input), want, "{input}");
        }
        // the same error with other values groups together
        assert_eq!(
            template("user 'bob' not found (id 17) from 10.0.0.1:5544"),
            template("user 'alice' not found (id 99321) from 192.168.1.20:80")
        );
    }

    #[test]
    fn access_lines_group_by_request_and_status() {
        let f = classify(
            "172.18.0.1 - - [22/Nov/2026:04:26:15 +0000] \"POST /api/orders/1234?x=1 HTTP/1.1\" 502 157 \"-\" \"curl/8.0\"",
        );
        assert_eq!(f.template, "POST /api/orders/<n> 502");
        assert_eq!(f.status.as_deref(), Some("502"));
        // gunicorn/Django access format
        let f = classify("10.0.0.9 - - \"GET /admin/login/ HTTP/2.0\" 503 0 \"-\" \"Mozilla/5.0\"");
        assert_eq!(f.template, "GET /admin/login/ 503");
        // an error line that mentions a status without a request line
        let f = classify("Internal Server Error: /api/x (HTTP/1.1 500 )");
        assert_eq!(f.status.as_deref(), Some("500"));
    }

    #[test]
    fn json_lines_use_their_fields() {
        let f = classify(
            r#"{"level":"ERROR","requestId":"req-8f3e","actionId":"CreateOrder","status":502,"message":"payment gateway timeout after 3000ms","ts":"2026-11-22T04:26:15Z"}"#,
        );
        assert_eq!(
            f.template,
            "[error] CreateOrder 502 payment gateway timeout after <n>ms"
        );
        assert_eq!(f.status.as_deref(), Some("502"));
        assert_eq!(f.request_id.as_deref(), Some("req-8f3e"));
        let f = classify(
            r#"{"http":{"status_code":"503","method":"GET","path":"/v1/items/77"},"msg":"upstream reset"}"#,
        );
        assert_eq!(f.template, "GET /v1/items/<n> 503 upstream reset");
        assert_eq!(f.status.as_deref(), Some("503"));
        // not JSON after all
        let f = classify("{oops 500");
        assert_eq!(f.template, "{oops <n>");
    }

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
    fn renders_text_and_slack() {
        let mut b = Builder::new("file");
        for i in 0..1234 {
            b.add(
                &format!(
                    "Nov 22 04:26:{:02} web1 docker/api[1]: \"GET /x/{i} HTTP/1.1\" 502 0",
                    i % 60
                ),
                now(),
            );
        }
        b.skip();
        let d = b.digest("web1", 10);
        let text = render_text(&d, "docker.log-5.gz");
        assert!(
            text.contains("lines        1,234 in the incident (1,235 read)"),
            "{text}"
        );
        assert!(
            text.contains("time frame   2026-11-22 04:26:00 -> 04:26:59 UTC (59s)"),
            "{text}"
        );
        assert!(text.contains("statuses     502 x1,234"), "{text}");
        assert!(text.contains("1,234  GET /x/<n> 502"), "{text}");
        let slack = render_slack(&d, "docker.log-5.gz", "http://x/y", " (link valid 7 days)");
        assert!(
            slack.contains("*HTTP 5xx incident on web1*: 1,234 lines"),
            "{slack}"
        );
        assert!(
            slack.contains("<http://x/y|docker.log-5.gz> (link valid 7 days)"),
            "{slack}"
        );
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
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
