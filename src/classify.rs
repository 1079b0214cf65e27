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

/// Status keys of `key=value` lines, lower case; `http.`/`response.` prefixed forms too.
const KV_KEYS: [&[u8]; 7] = [
    b"status",
    b"status_code",
    b"statuscode",
    b"http_status",
    b"httpstatus",
    b"http_status_code",
    b"response_status",
];

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

/// `status`, `http_status`, `http.status_code`, `response.status`, ... (case-insensitive).
fn is_status_key(key: &[u8]) -> bool {
    if key.len() > 20 {
        return false;
    }
    let mut lower = [0u8; 20];
    for (l, k) in lower.iter_mut().zip(key) {
        *l = k.to_ascii_lowercase();
    }
    let lower = &lower[..key.len()];
    let plain = |k: &[u8]| KV_KEYS.contains(&k);
    if plain(lower) {
        return true;
    }
    for prefix in [&b"http."[..], b"response."] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            return matches!(rest, b"status" | b"status_code" | b"statuscode");
        }
    }
    false
}

/// A hand-written walk over one JSON object: no allocation, one pass, depth-limited.
mod json {
    use super::step;

    pub enum Outcome {
        Status(u16),
        /// A JSON object without a status field.
        NoStatus,
        /// Not one whole JSON object up to the end of the line.
        NotJson,
    }

    /// Deeper objects are not looked into (and a line nested deeper is not taken as JSON).
    const MAX_DEPTH: usize = 32;

    struct Walk<'a> {
        b: &'a [u8],
        i: usize,
        /// A status at the top level (wins), and one inside `http`/`response`.
        top: Option<u16>,
        nested: Option<u16>,
    }

    pub fn status(text: &[u8]) -> Outcome {
        let mut w = Walk {
            b: text,
            i: 0,
            top: None,
            nested: None,
        };
        if w.object(0, Parent::Top).is_none() {
            return Outcome::NotJson;
        }
        w.blanks();
        if w.i != w.b.len() {
            return Outcome::NotJson;
        }
        match w.top.or(w.nested) {
            Some(s) => Outcome::Status(s),
            None => Outcome::NoStatus,
        }
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Parent {
        Top,
        /// An object under a key named `http` or `response`.
        Http,
        Other,
    }

    impl<'a> Walk<'a> {
        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }

        fn blanks(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
                self.i += 1;
                step(1);
            }
        }

        fn eat(&mut self, c: u8) -> Option<()> {
            self.blanks();
            (self.peek()? == c).then(|| self.i += 1)
        }

        fn object(&mut self, depth: usize, parent: Parent) -> Option<()> {
            if depth >= MAX_DEPTH {
                return None;
            }
            self.eat(b'{')?;
            self.blanks();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Some(());
            }
            loop {
                self.blanks();
                let key = self.string()?;
                self.eat(b':')?;
                self.blanks();
                let wanted = match parent {
                    Parent::Top => top_status_key(key),
                    Parent::Http => nested_status_key(key),
                    Parent::Other => false,
                };
                match self.peek()? {
                    b'{' => {
                        let child = if parent == Parent::Top && container_key(key) {
                            Parent::Http
                        } else {
                            Parent::Other
                        };
                        self.object(depth + 1, child)?;
                    }
                    b'[' => self.array(depth + 1)?,
                    b'"' => {
                        let value = self.string()?;
                        if wanted {
                            self.found(parent, status_text(value));
                        }
                    }
                    _ => {
                        let value = self.scalar()?;
                        if wanted {
                            self.found(parent, status_text(value));
                        }
                    }
                }
                self.blanks();
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        fn found(&mut self, parent: Parent, status: Option<u16>) {
            let slot = if parent == Parent::Top {
                &mut self.top
            } else {
                &mut self.nested
            };
            if slot.is_none() {
                *slot = status;
            }
        }

        fn array(&mut self, depth: usize) -> Option<()> {
            if depth >= MAX_DEPTH {
                return None;
            }
            self.eat(b'[')?;
            self.blanks();
            if self.peek() == Some(b']') {
                self.i += 1;
                return Some(());
            }
            loop {
                self.value(depth)?;
                self.blanks();
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        fn value(&mut self, depth: usize) -> Option<()> {
            self.blanks();
            match self.peek()? {
                b'{' => self.object(depth + 1, Parent::Other),
                b'[' => self.array(depth + 1),
                b'"' => self.string().map(drop),
                _ => self.scalar().map(drop),
            }
        }

        /// A string's raw bytes between its quotes (escapes left as they are).
        fn string(&mut self) -> Option<&'a [u8]> {
            if self.peek()? != b'"' {
                return None;
            }
            let start = self.i + 1;
            let mut i = start;
            loop {
                let rel = memchr::memchr2(b'"', b'\\', &self.b[i..])?;
                step(rel + 1);
                i += rel;
                if self.b[i] == b'\\' {
                    i += 2;
                    if i > self.b.len() {
                        return None;
                    }
                } else {
                    self.i = i + 1;
                    return Some(&self.b[start..i]);
                }
            }
        }

        /// A number, true, false or null.
        fn scalar(&mut self) -> Option<&'a [u8]> {
            let start = self.i;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
            {
                self.i += 1;
                step(1);
            }
            let token = &self.b[start..self.i];
            let ok = matches!(token, b"true" | b"false" | b"null")
                || token
                    .first()
                    .is_some_and(|c| c.is_ascii_digit() || *c == b'-');
            ok.then_some(token)
        }
    }

    fn lower_eq(key: &[u8], names: &[&[u8]]) -> bool {
        names.iter().any(|n| n.eq_ignore_ascii_case(key))
    }

    fn top_status_key(key: &[u8]) -> bool {
        lower_eq(
            key,
            &[
                b"status",
                b"status_code",
                b"statusCode",
                b"http_status",
                b"httpStatus",
                b"http.status_code",
                b"http.status",
            ],
        )
    }

    fn nested_status_key(key: &[u8]) -> bool {
        lower_eq(key, &[b"status", b"status_code", b"statusCode"])
    }

    fn container_key(key: &[u8]) -> bool {
        lower_eq(key, &[b"http", b"response"])
    }

    /// 502 or "502" (a status written as a number or a string).
    fn status_text(v: &[u8]) -> Option<u16> {
        if v.len() != 3 {
            return None;
        }
        super::status_at(v, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(line: &str) -> Verdict {
        classify(line.as_bytes())
    }

    #[test]
    fn access_lines_read_the_status_not_the_size() {
        use Verdict::*;
        let p = "Nov 22 04:26:15 web1 docker/api[1]: ";
        assert_eq!(v(&format!("{p}1.2.3.4 - - [22/Nov/2026:04:26:15 +0000] \"GET /a HTTP/1.1\" 200 512 \"-\" \"curl\"")), NotServerError(200));
        assert_eq!(
            v(&format!("{p}1.2.3.4 - - \"GET /a HTTP/1.1\" 502 12")),
            ServerError(502)
        );
        assert_eq!(
            v(&format!(
                "{p}::1 - - \"GET /v1/500/items HTTP/2.0\" 201 503"
            )),
            NotServerError(201)
        );
        assert_eq!(v("GET /x HTTP/1.1 500 12"), ServerError(500));
        assert_eq!(
            v("[2026-11-22T04:26:15.310Z] \"POST /api HTTP/2\" 503 UH 0 91 2 - \"-\""),
            ServerError(503)
        );
        assert_eq!(v("\"GET / HTTP/1.1\"\t504\t0"), ServerError(504));
        // a status must end where it ends
        assert_eq!(v("\"GET / HTTP/1.1\" 5023 0"), NoStatus);
        assert_eq!(v("\"GET / HTTP/1.1\" 999 0"), NoStatus);
        // no status after the protocol (nginx error log): nothing found
        assert_eq!(
            v("upstream timed out, request: \"GET /a HTTP/1.1\", upstream: \"http://x\""),
            NoStatus
        );
    }

    #[test]
    fn haproxy_status_follows_the_timers() {
        let line = "haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 502 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} \"GET /index.html HTTP/1.1\"";
        assert_eq!(
            classify_with_source(line.as_bytes()),
            (Verdict::ServerError(502), Source::Haproxy)
        );
        let line = "haproxy[1]: 10.0.1.2:1 [06/Feb/2009:12:14:14.655] fe be/srv -1/-1/-1/-1/+3001 200 0 - - cD-- 0/0/0/0/0 0/0 \"GET / HTTP/1.1\"";
        assert_eq!(v(line), Verdict::NotServerError(200));
    }

    #[test]
    fn json_fields_at_the_top_or_under_http() {
        use Verdict::*;
        assert_eq!(
            v(r#"h p: {"level":"error","status":502,"msg":"bad gateway"}"#),
            ServerError(502)
        );
        assert_eq!(v(r#"{"statusCode":"503"}"#), ServerError(503));
        assert_eq!(
            v(r#"{"http":{"method":"GET","status_code":504}}"#),
            ServerError(504)
        );
        assert_eq!(
            v(r#"{"response":{"status":500},"upstream_status":200}"#),
            ServerError(500)
        );
        assert_eq!(
            v(r#"{"status":"error","http":{"status_code":502}}"#),
            ServerError(502)
        );
        // a top-level status beats a nested one; a 5xx inside a message string is text
        assert_eq!(
            v(r#"{"status":200,"http":{"status":502},"msg":"upstream said HTTP/1.1 502 "}"#),
            NotServerError(200)
        );
        assert_eq!(
            v(r#"{"upstream_status":502,"status":200}"#),
            NotServerError(200)
        );
        assert_eq!(
            v(r#"{"msg":"GET / HTTP/1.1 502 ","level":"info"}"#),
            NoStatus
        );
        assert_eq!(v(r#"{"STATUS":500}"#), ServerError(500));
        assert_eq!(
            v(r#"{"a":[1,{"status":200}],"b":"x\"y","status":503}"#),
            ServerError(503)
        );
        // broken JSON falls back to the text rules
        assert_eq!(v(r#"{"status":502,"msg":"cut"#), ServerError(502));
        assert_eq!(
            classify_with_source(br#"{"status": "200" , "x":1"#),
            (NotServerError(200), Source::KeyValue)
        );
    }

    #[test]
    fn key_value_fields() {
        use Verdict::*;
        assert_eq!(
            v("level=error status=502 path=/a rt=0.512"),
            ServerError(502)
        );
        assert_eq!(v("method=GET http_status=\"503\""), ServerError(503));
        assert_eq!(
            v("status=200 rt=0.512 upstream_status=502"),
            NotServerError(200)
        );
        assert_eq!(v("upstream_status=502 bytes=10"), NoStatus);
        assert_eq!(v("http.status_code=500"), ServerError(500));
        assert_eq!(v("Status=504"), ServerError(504));
        assert_eq!(v("status=ok"), NoStatus);
    }

    /// The corpus written by `tests/corpus/generate.py`: hundreds of lines of every format,
    /// each with the classification it must get.
    const CORPUS: &str = include_str!("../tests/corpus/http-status.jsonl");
    const SNIPPET: &str = include_str!("../syslog-ng/fasttrack.conf");

    struct Case {
        format: String,
        expect: String,
        status: Option<u16>,
        line: String,
    }

    fn corpus() -> Vec<Case> {
        CORPUS
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("corpus line is JSON");
                Case {
                    format: v["format"].as_str().unwrap().to_string(),
                    expect: v["expect"].as_str().unwrap().to_string(),
                    status: v["status"].as_u64().map(|n| n as u16),
                    line: v["line"].as_str().unwrap().to_string(),
                }
            })
            .collect()
    }

    /// The regex of the shipped snippet's f_5xxERR-hook.
    fn snippet_filter() -> String {
        let def = SNIPPET
            .lines()
            .find(|l| l.starts_with("filter f_5xxERR-hook"))
            .expect("the snippet defines f_5xxERR-hook");
        let start = def.find("message('").expect("a message('...') filter") + 9;
        let end = def[start..].find("')").expect("closed") + start;
        def[start..end].to_string()
    }

    #[test]
    fn the_snippet_and_the_default_match_are_the_same_rule() {
        assert_eq!(snippet_filter(), crate::digest::DEFAULT_MATCH);
    }

    #[test]
    fn every_corpus_line_gets_its_classification_with_or_without_a_syslog_header() {
        let cases = corpus();
        assert!(cases.len() >= 300, "{} lines", cases.len());
        let mut wrong = Vec::new();
        for c in &cases {
            let want = match (c.expect.as_str(), c.status) {
                ("5xx", Some(s)) => Verdict::ServerError(s),
                ("other", Some(s)) => Verdict::NotServerError(s),
                _ => Verdict::NoStatus,
            };
            for line in [
                c.line.clone(),
                format!("Nov 22 04:26:15 web1 docker/shop-api[812]: {}", c.line),
                format!(
                    "2026-11-22T04:26:15+00:00 web1 docker/shop-api[812]: {}\r",
                    c.line
                ),
            ] {
                let got = classify(line.as_bytes());
                if got != want {
                    wrong.push(format!("{} {want:?} got {got:?}: {line}", c.format));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// True and false positives and negatives of the article's rule, the shipped filter and
    /// the filter followed by the classifier (`cargo test corpus_counts -- --nocapture`).
    #[test]
    fn corpus_counts_of_the_article_rule_the_filter_and_the_classifier() {
        let article = regex::bytes::Regex::new(crate::digest::ARTICLE_MATCH).unwrap();
        let filter = regex::bytes::Regex::new(&snippet_filter()).unwrap();
        #[derive(Default, Debug, PartialEq)]
        struct Counts {
            tp: u32,
            fp: u32,
            fn_: u32,
            tn: u32,
            no_status_selected: u32,
        }
        let mut counts: [Counts; 3] = Default::default();
        for c in corpus() {
            let line = c.line.as_bytes();
            let by_filter = filter.is_match(line);
            let selected = [
                article.is_match(line),
                by_filter,
                by_filter && classify(line).is_incident(),
            ];
            for (n, &sel) in counts.iter_mut().zip(&selected) {
                match (c.expect.as_str(), sel) {
                    ("5xx", true) => n.tp += 1,
                    ("5xx", false) => n.fn_ += 1,
                    ("other", true) => n.fp += 1,
                    ("other", false) => n.tn += 1,
                    (_, true) => n.no_status_selected += 1,
                    _ => {}
                }
            }
        }
        for (name, n) in ["article's rule", "shipped filter", "filter + classifier"]
            .iter()
            .zip(&counts)
        {
            println!(
                "{name:<20} true pos {:>3}  false pos {:>3}  false neg {:>3}  true neg {:>3}  no-status lines selected {:>2}",
                n.tp, n.fp, n.fn_, n.tn, n.no_status_selected
            );
        }
        let [article, filter, classifier] = counts;
        assert_eq!(filter.fn_, 0, "the shipped filter misses a 5xx line");
        assert!(filter.tp >= article.tp);
        assert!(
            article.fp > 0 && filter.fp * 3 <= article.fp,
            "far fewer false positives: {} vs {}",
            filter.fp,
            article.fp
        );
        assert_eq!((classifier.fp, classifier.fn_), (0, 0));
    }

    fn steps_of(line: &[u8]) -> u64 {
        steps::COUNT.with(|c| c.set(0));
        let _ = classify(line);
        steps::COUNT.with(|c| c.get())
    }

    /// Work per byte stays bounded: a scan that went back over the line for every candidate
    /// would be quadratic, and these lines would show it.
    const STEPS_PER_BYTE: u64 = 80;

    #[test]
    fn pathological_lines_stay_linear() {
        for unit in [
            &b"HTTP/1.1\" "[..],
            b"HTTP/",
            b"{\"a\":",
            b"[",
            b"{\"status\":{\"status\":",
            b"\"",
            b"\\\"",
            b"1/2/3/4/",
            b"123456789012/",
            b"/",
            b"status=",
            b"xstatus",
            b" status_code=\"",
            b"tatus",
        ] {
            for reps in [10, 1000, 20_000] {
                let line = unit.repeat(reps);
                let steps = steps_of(&line);
                assert!(
                    steps <= STEPS_PER_BYTE * (line.len() as u64 + 1),
                    "{} steps for {} bytes of {:?}",
                    steps,
                    line.len(),
                    String::from_utf8_lossy(unit)
                );
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn corpus_lines() -> Vec<Vec<u8>> {
            corpus().into_iter().map(|c| c.line.into_bytes()).collect()
        }

        /// A corpus line with bytes replaced, inserted, removed and runs repeated.
        fn mutated() -> impl Strategy<Value = Vec<u8>> {
            let lines = corpus_lines();
            (
                0..lines.len(),
                proptest::collection::vec((any::<u16>(), 0u8..4, any::<u8>(), 1usize..200), 0..8),
            )
                .prop_map(move |(i, edits)| {
                    let mut l = lines[i].clone();
                    for (at, kind, byte, reps) in edits {
                        let at = usize::from(at) % (l.len() + 1);
                        match kind {
                            0 if at < l.len() => l[at] = byte,
                            1 => l.insert(at, byte),
                            2 if at < l.len() => {
                                l.remove(at);
                            }
                            _ => {
                                let end = (at + 12).min(l.len());
                                let piece = l[at..end].to_vec();
                                for _ in 0..reps {
                                    l.splice(at..at, piece.iter().copied());
                                }
                            }
                        }
                    }
                    l
                })
        }

        fn check(line: &[u8]) -> Result<(), TestCaseError> {
            let steps = steps_of(line);
            prop_assert!(
                steps <= STEPS_PER_BYTE * (line.len() as u64 + 1),
                "{} steps for {} bytes",
                steps,
                line.len()
            );
            // The digest's parser and grouping take the same line without panicking.
            let text = String::from_utf8_lossy(line);
            let mut b = crate::digest::Builder::new("file");
            b.add(&text, chrono::Utc::now());
            let _ = crate::digest::parse_line(&text, chrono::Utc::now());
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn arbitrary_bytes_never_panic_and_stay_linear(line in proptest::collection::vec(any::<u8>(), 0..3000)) {
                check(&line)?;
            }

            #[test]
            fn mutated_corpus_lines_never_panic_and_stay_linear(line in mutated()) {
                check(&line)?;
            }
        }
    }
}
