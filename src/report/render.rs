//! The fleet's report for people: plain text (stdout) and Slack mrkdwn (`--notify`).

use super::merge::{HostTotal, MessageTotal, Report};
use crate::digest::render::slack_escape;
use crate::digest::thousands;
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// `2026-11-22T05:10:10.000Z` -> `2026-11-22 05:10:10` (as written if it is not a time).
fn when(t: &str) -> String {
    DateTime::parse_from_rfc3339(t).map_or_else(
        |_| t.to_string(),
        |t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        },
    )
}

fn range(r: &Report) -> String {
    format!("{} -> {} UTC", when(&r.since), when(&r.until))
}

/// `1234567` -> `1.2 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn headline(r: &Report) -> String {
    format!(
        "{} incident{} on {} host{}, {} lines, {} of logs",
        thousands(r.incidents),
        if r.incidents == 1 { "" } else { "s" },
        thousands(r.hosts_total),
        if r.hosts_total == 1 { "" } else { "s" },
        thousands(r.lines),
        size(r.bytes)
    )
}

fn statuses(r: &Report) -> String {
    let mut s: Vec<(&String, &u64)> = r.statuses.iter().collect();
    s.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    s.iter()
        .map(|(k, v)| format!("{k} x{}", thousands(**v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn hosts(r: &Report) -> String {
    let mut parts: Vec<String> = r
        .hosts
        .iter()
        .map(|h: &HostTotal| {
            format!(
                "{} x{} ({} lines)",
                h.host,
                thousands(h.incidents),
                thousands(h.lines)
            )
        })
        .collect();
    let more = r.hosts_total.saturating_sub(r.hosts.len() as u64);
    if more > 0 {
        parts.push(format!("and {} more", thousands(more)));
    }
    parts.join(", ")
}

fn programs(r: &Report) -> String {
    r.programs
        .iter()
        .map(|p| format!("{} x{}", p.key, thousands(p.count)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` (new)`, ` (known since 2026-11-01)`, or nothing when the records carry no mark.
fn mark(m: &MessageTotal) -> String {
    match (m.new, m.first_seen.as_deref()) {
        (Some(true), _) => " (new)".to_string(),
        (Some(false), Some(first)) => format!(" (known since {})", &when(first)[..10]),
        _ => String::new(),
    }
}

/// What `fasttrack report` prints.
pub fn render_text(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "fasttrack report for {}", r.dest);
    let _ = writeln!(
        o,
        "  range        {} ({} partition{} listed, {} records read)",
        range(r),
        r.partitions.len(),
        if r.partitions.len() == 1 { "" } else { "s" },
        thousands(r.records)
    );
    if r.incidents == 0 {
        let _ = writeln!(o, "  incidents    none");
    } else {
        let _ = writeln!(o, "  incidents    {}", headline(r));
        let _ = writeln!(o, "  statuses     {}", statuses(r));
        let _ = writeln!(o, "  hosts        {}", hosts(r));
        let _ = writeln!(o, "  programs     {}", programs(r));
        let _ = writeln!(o, "  top messages");
        for m in &r.messages {
            let _ = writeln!(o, "  {:>6}  {}{}", thousands(m.count), m.template, mark(m));
        }
        let _ = writeln!(o, "  largest incidents");
        for i in &r.largest {
            let start = i.first_seen.as_deref().map_or("-".to_string(), when);
            let _ = writeln!(
                o,
                "  {:>6}  {}  {start}  {}\n          {}",
                thousands(i.lines),
                i.host,
                i.log,
                i.link
            );
        }
    }
    let _ = write!(o, "{}", notes(r));
    o
}

/// What the report left out, if anything.
fn notes(r: &Report) -> String {
    let mut o = String::new();
    if r.approximate {
        let _ = writeln!(
            o,
            "  (more distinct hosts or messages than fasttrack keeps: the lists are approximate)"
        );
    }
    if r.newer_records > 0 {
        let _ = writeln!(
            o,
            "  ({} records of a newer format left out: upgrade fasttrack to count them)",
            thousands(r.newer_records)
        );
    }
    if r.unreadable > 0 {
        let _ = writeln!(
            o,
            "  ({} records could not be read: {})",
            thousands(r.unreadable),
            r.errors.join("; ")
        );
    }
    o
}

/// The Slack message (mrkdwn) of the report.
pub fn render_slack(r: &Report) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        ":bar_chart: *HTTP 5xx report for {}*, {}: ",
        slack_escape(&r.dest),
        range(r)
    );
    if r.incidents == 0 {
        let _ = writeln!(o, "no incidents");
    } else {
        let _ = writeln!(o, "{}", headline(r));
        let _ = writeln!(o, "*Statuses:* {}", statuses(r));
        let _ = writeln!(o, "*Hosts:* {}", slack_escape(&hosts(r)));
        let _ = writeln!(o, "*Programs:* {}", slack_escape(&programs(r)));
        let _ = writeln!(o, "*Top messages:*");
        for m in &r.messages {
            let _ = writeln!(
                o,
                "\u{2022} {} x `{}`{}",
                thousands(m.count),
                slack_escape(&m.template.replace('`', "'")),
                mark(m)
            );
        }
        let _ = writeln!(o, "*Largest incidents:*");
        for i in &r.largest {
            let label = slack_escape(&format!("{} {}", i.host, i.log));
            let target = if i.link.starts_with("http") {
                format!("<{}|{label}>", i.link)
            } else {
                format!("{label} ({})", slack_escape(&i.link))
            };
            let _ = writeln!(o, "\u{2022} {target}: {} lines", thousands(i.lines));
        }
    }
    o.push_str(&notes(r));
    o.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::merge::Incident;
    use std::collections::BTreeMap;

    fn report() -> Report {
        Report {
            version: 1,
            dest: "s3://incident-logs/fast-track".into(),
            since: "2026-11-21T07:00:00Z".into(),
            until: "2026-11-22T07:00:00Z".into(),
            partitions: vec!["dt=2026-11-21".into(), "dt=2026-11-22".into()],
            records: 3,
            incidents: 3,
            hosts_total: 2,
            lines: 1234,
            bytes: 3 * 1024 * 1024,
            statuses: BTreeMap::from([("502".into(), 1000), ("503".into(), 234)]),
            hosts: vec![HostTotal {
                host: "web1".into(),
                incidents: 2,
                lines: 1000,
                bytes: 0,
                first_seen: None,
                last_seen: None,
            }],
            messages: vec![MessageTotal {
                template: "GET /a/<n> 502".into(),
                count: 1000,
                status: Some("502".into()),
                new: Some(true),
                first_seen: Some("2026-11-21T08:00:00Z".into()),
            }],
            largest: vec![Incident {
                host: "web1".into(),
                log: "docker.log-5.gz".into(),
                key: "fast-track/web1/docker.log-5.gz".into(),
                lines: 900,
                bytes: 0,
                first_seen: Some("2026-11-21T08:00:00.000Z".into()),
                last_seen: None,
                link: "https://s3/x?X-Amz-Signature=1".into(),
                link_expires: None,
            }],
            ..Report::default()
        }
    }

    #[test]
    fn text_and_slack() {
        let text = render_text(&report());
        assert!(
            text.contains("range        2026-11-21 07:00:00 -> 2026-11-22 07:00:00 UTC (2 partitions listed, 3 records read)"),
            "{text}"
        );
        assert!(
            text.contains("incidents    3 incidents on 2 hosts, 1,234 lines, 3.0 MiB of logs"),
            "{text}"
        );
        assert!(
            text.contains("hosts        web1 x2 (1,000 lines), and 1 more"),
            "{text}"
        );
        assert!(text.contains(" 1,000  GET /a/<n> 502 (new)"), "{text}");
        assert!(
            text.contains("web1  2026-11-21 08:00:00  docker.log-5.gz"),
            "{text}"
        );
        let slack = render_slack(&report());
        assert!(slack.contains("`GET /a/&lt;n&gt; 502` (new)"), "{slack}");
        assert!(
            slack.contains("<https://s3/x?X-Amz-Signature=1|web1 docker.log-5.gz>: 900 lines"),
            "{slack}"
        );
        let none = Report {
            incidents: 0,
            ..report()
        };
        assert!(render_text(&none).contains("incidents    none"));
        assert!(render_slack(&none).ends_with("no incidents"));
    }
}
