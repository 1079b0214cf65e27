//! Takes a syslog line apart: time, host, program, message.

use super::*;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::test_now as now;

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
}
