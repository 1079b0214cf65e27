//! Is this line a server error? The one answer used by `watch` (every line of the stream),
//! by whole-log scans, by the digest and so by the notification.
//!
//! syslog-ng's filter only pre-selects: a regex cannot tell the status of an access line from
//! its response size (`"GET /a HTTP/1.1" 200 512` matched the article's rule). This reads the
//! status where each format really puts it:
//! - a JSON message (the first `{` of the line starts an object that ends the line): the
//!   fields `status`, `status_code`, `statusCode`, `http_status`, `httpStatus` at the top,
//!   else `status`/`status_code`/`statusCode` inside an `http` or `response` object, as a
//!   number or a string (keys compared without case);
//! - an access line: the three digits right after the request's `HTTP/x.y`, with or
//!   without the closing quote (nginx/Apache common and combined, Traefik, Envoy, Caddy's
//!   text format, plain `GET /x HTTP/1.1 500`);
//! - an HAProxy HTTP log: the status right after the timers (`10/0/30/69/109 502`);
//! - `key=value` fields (`status=502`, `http_status="503"`), and `"status":502` in a JSON
//!   line too long or broken to parse.
//!
//! A status found and outside 5xx makes the line no incident line. A line whose status
//! cannot be found stays one: syslog-ng's filter chose it, and a false negative costs an
//! incident while a false positive costs a rotation.
//!
//! Pure, allocation-free and linear in the line's length: every scan moves forward and looks
//! a bounded distance around each candidate (`tests/classify.rs` checks it with a step count).

use memchr::memmem;
use std::sync::OnceLock;

/// What the line says of its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 5xx status.
    ServerError(u16),
    /// A status outside 5xx: not an incident line, whatever the filter thought.
    NotServerError(u16),
    /// No status found: kept as an incident line.
    NoStatus,
}

impl Verdict {
    /// Whether the line counts in an incident (opens it, restarts its quiet period).
    pub fn is_incident(self) -> bool {
        !matches!(self, Verdict::NotServerError(_))
    }

    pub fn status(self) -> Option<u16> {
        match self {
            Verdict::ServerError(s) | Verdict::NotServerError(s) => Some(s),
            Verdict::NoStatus => None,
        }
    }

    fn of(status: u16) -> Verdict {
        if (500..=599).contains(&status) {
            Verdict::ServerError(status)
        } else {
            Verdict::NotServerError(status)
        }
    }
}

/// Where the status was found, for tests and for `digest --explain`-style diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Json,
    Access,
    Haproxy,
    KeyValue,
    None,
}

/// Classifies one line (without its newline; a `\r` or trailing blanks are fine).
pub fn classify(line: &[u8]) -> Verdict {
    classify_with_source(line).0
}

pub fn classify_with_source(line: &[u8]) -> (Verdict, Source) {
    step(1);
    if let Some(open) = memchr::memchr(b'{', line) {
        match json::status(&line[open..]) {
            json::Outcome::Status(s) => return (Verdict::of(s), Source::Json),
            json::Outcome::NoStatus => return (Verdict::NoStatus, Source::Json),
            json::Outcome::NotJson => {}
        }
    }
    if let Some(s) = access_status(line) {
        return (Verdict::of(s), Source::Access);
    }
    if let Some(s) = haproxy_status(line) {
        return (Verdict::of(s), Source::Haproxy);
    }
    if let Some(s) = key_value_status(line) {
        return (Verdict::of(s), Source::KeyValue);
    }
    (Verdict::NoStatus, Source::None)
}

/// Counts the work done, in tests only: the linearity property test reads it.
#[cfg(test)]
pub(crate) mod steps {
    use std::cell::Cell;
    thread_local!(pub static COUNT: Cell<u64> = const { Cell::new(0) });
}

#[inline(always)]
fn step(_n: usize) {
    #[cfg(test)]
    steps::COUNT.with(|c| c.set(c.get() + _n as u64));
}

/// Three ASCII digits at `b[i..]` that end there (no digit, letter, `_` or `.` after them),
/// as a status from 100 to 599.
fn status_at(b: &[u8], i: usize) -> Option<u16> {
    let d = b.get(i..i + 3)?;
    if !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.get(i + 3)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
    {
        return None;
    }
    let n = u16::from(d[0] - b'0') * 100 + u16::from(d[1] - b'0') * 10 + u16::from(d[2] - b'0');
    (100..=599).contains(&n).then_some(n)
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn http_finder() -> &'static memmem::Finder<'static> {
    static F: OnceLock<memmem::Finder<'static>> = OnceLock::new();
    F.get_or_init(|| memmem::Finder::new(b"HTTP/"))
}

/// The status right after a request's protocol: `HTTP/1.1" 502`, `HTTP/2" 503`,
/// `HTTP/1.1 500` (the protocol after a blank or `(`, as in a request line). The first `HTTP/` followed by a status wins (the request comes before
/// the referer and user agent in every access format).
fn access_status(line: &[u8]) -> Option<u16> {
    for at in http_finder().find_iter(line) {
        step(1);
        // A request's protocol follows a blank (a user agent "HTTP/1.1 502 checker" is no
        // request); `(HTTP/1.1 500)` is how some frameworks quote a response.
        if at > 0 && !is_blank(line[at - 1]) && line[at - 1] != b'(' {
            continue;
        }
        let mut i = at + 5;
        // the version: 1, 1.1, 2, 2.0, 3 (at most 4 characters)
        let version = line[i..]
            .iter()
            .take(5)
            .take_while(|c| c.is_ascii_digit() || **c == b'.')
            .count();
        step(version);
        if version == 0 || version > 4 {
            continue;
        }
        i += version;
        if line.get(i) == Some(&b'"') {
            i += 1;
        }
        let blanks = line[i..]
            .iter()
            .take(8)
            .take_while(|c| is_blank(**c))
            .count();
        step(blanks);
        if blanks == 0 {
            continue;
        }
        if let Some(s) = status_at(line, i + blanks) {
            return Some(s);
        }
    }
    None
}

/// HAProxy's HTTP log: `... backend/server 10/0/30/69/109 502 2750 ...` (TR/Tw/Tc/Tr/Ta;
/// a timer is -1 when the step did not happen, Ta may start with +).
fn haproxy_status(line: &[u8]) -> Option<u16> {
    for slash in memchr::memchr_iter(b'/', line) {
        step(1);
        // Is this the 4th slash of a timers field? Its last number follows it.
        let mut i = slash + 1;
        if line.get(i) == Some(&b'+') {
            i += 1;
        }
        let n = number_len(&line[i..]);
        if n == 0 || !line.get(i + n).is_some_and(|c| is_blank(*c)) || !timers_before(line, slash) {
            continue;
        }
        let at = i + n + 1;
        if let Some(s) = status_at(line, at) {
            if line.get(at + 3).map_or(true, |c| is_blank(*c)) {
                return Some(s);
            }
        }
    }
    None
}

/// The length of `-?[0-9]{1,12}` at the start of `b` (0: none).
fn number_len(b: &[u8]) -> usize {
    let sign = usize::from(b.first() == Some(&b'-'));
    let digits = b[sign..]
        .iter()
        .take(12)
        .take_while(|c| c.is_ascii_digit())
        .count();
    step(sign + digits);
    if digits == 0 {
        0
    } else {
        sign + digits
    }
}

/// Whether `line[..slash]` ends with a blank (or the line's start) and four numbers joined
/// by three slashes: the `10/0/30/69` of `10/0/30/69/109`.
fn timers_before(line: &[u8], slash: usize) -> bool {
    let mut end = slash;
    for field in 0..4 {
        let digits = line[..end]
            .iter()
            .rev()
            .take(12)
            .take_while(|c| c.is_ascii_digit())
            .count();
        step(digits + 1);
        if digits == 0 {
            return false;
        }
        let mut start = end - digits;
        if start > 0 && line[start - 1] == b'-' {
            start -= 1;
        }
        let last = field == 3;
        match start.checked_sub(1).map(|k| line[k]) {
            Some(b'/') if !last => end = start - 1,
            Some(c) if last && is_blank(c) => return true,
            None if last => return true,
            _ => return false,
        }
    }
    false
}

fn tatus_finder() -> &'static memmem::Finder<'static> {
    static F: OnceLock<memmem::Finder<'static>> = OnceLock::new();
    F.get_or_init(|| memmem::Finder::new(b"tatus"))
}

/// `status=502`, `http_status="503"`, `http.status_code=504`, or `"status": 502` (a JSON line
/// that could not be parsed whole). The key must start the line or follow a separator, so
/// `upstream_status=502` is not the response's status.
fn key_value_status(line: &[u8]) -> Option<u16> {
    for at in tatus_finder().find_iter(line) {
        step(1);
        // "tatus" sits in every key: find the key around it (at most 18 bytes).
        let Some(s_at) = at.checked_sub(1) else {
            continue;
        };
        if !matches!(line[s_at], b's' | b'S') {
            continue;
        }
        // the key's start: back over letters, '_' and '.'
        let mut start = s_at;
        while start > 0
            && s_at - start < 10
            && (line[start - 1].is_ascii_alphabetic()
                || line[start - 1] == b'_'
                || line[start - 1] == b'.')
        {
            start -= 1;
        }
        let mut end = at + 5;
        while end < line.len()
            && end - at < 12
            && (line[end].is_ascii_alphabetic() || line[end] == b'_')
        {
            end += 1;
        }
        step(end - start);
        let key = &line[start..end];
        if !is_status_key(key) {
            continue;
        }
        let before = start.checked_sub(1).map(|i| line[i]);
        let quoted = before == Some(b'"');
        if !quoted
            && !before.map_or(true, |c| {
                is_blank(c) || matches!(c, b',' | b';' | b'{' | b'(' | b'&' | b'?' | b'|')
            })
        {
            continue;
        }
        let mut i = end;
        if quoted {
            if line.get(i) != Some(&b'"') {
                continue;
            }
            i += 1;
            let blanks = line[i..]
                .iter()
                .take(4)
                .take_while(|c| is_blank(**c))
                .count();
            i += blanks;
            if line.get(i) != Some(&b':') {
                continue;
            }
            i += 1;
            i += line[i..]
                .iter()
                .take(4)
                .take_while(|c| is_blank(**c))
                .count();
        } else {
            if line.get(i) != Some(&b'=') {
                continue;
            }
            i += 1;
        }
        if matches!(line.get(i), Some(b'"' | b'\'')) {
            i += 1;
        }
        if let Some(s) = status_at(line, i) {
            return Some(s);
        }
    }
    None
}

/// A status key, in any case: `status`, `status_code` or `statusCode`, alone or after `http`,
/// `http.`, `http_`, `response.` or `response_` (the shipped filter's family of names).
pub(crate) fn is_status_key(key: &[u8]) -> bool {
    if key.len() > 24 {
        return false;
    }
    let mut lower = [0u8; 24];
    for (l, k) in lower.iter_mut().zip(key) {
        *l = k.to_ascii_lowercase();
    }
    let lower = &lower[..key.len()];
    let rest = [&b"http."[..], b"http_", b"response.", b"response_", b"http"]
        .iter()
        .find_map(|p| lower.strip_prefix(*p))
        .unwrap_or(lower);
    is_plain_status_key(rest)
}

/// `status`, `status_code` or `statuscode` (lower case).
fn is_plain_status_key(lower: &[u8]) -> bool {
    matches!(lower, b"status" | b"status_code" | b"statuscode")
}

mod json;

#[cfg(test)]
mod tests;
