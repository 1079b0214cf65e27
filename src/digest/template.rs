//! What a message says, for grouping: its template (variable parts replaced), status and
//! request id.

use super::*;

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

/// The template and request id of a message: from its fields when it is JSON, from the
/// access-log request line when it has one (`POST /api/orders/<n> 502`), else the normalised
/// message. `status` is [`crate::classify`]'s, read by the caller from the whole line (the
/// digest and the decision to open an incident never disagree, and a line is classified once).
pub fn describe(message: &str, status: Option<String>) -> Fields {
    let m = message.trim();
    if m.starts_with('{') {
        if let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(m) {
            return Fields {
                status,
                ..classify_json(&obj)
            };
        }
    }
    if let Some((method, path, shown)) = access_request(m) {
        let path = path.split('?').next().unwrap_or("");
        return Fields {
            template: format!("{method} {} {shown}", template(path)),
            status,
            request_id: None,
        };
    }
    Fields {
        template: template(m),
        status,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// [`describe`] with the status the classifier reads from the message.
    fn classify(message: &str) -> Fields {
        let status = crate::classify::classify(message.trim().as_bytes())
            .status()
            .map(|s| s.to_string());
        describe(message, status)
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
}
