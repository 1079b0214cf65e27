//! A digest for people: plain text and Slack mrkdwn.

use super::*;

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
    if d.not_5xx > 0 {
        read.push_str(&format!(", {} not 5xx", thousands(d.not_5xx)));
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
pub fn slack_escape(s: &str) -> String {
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
    use crate::digest::test_now as now;

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
}
