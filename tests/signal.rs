//! The exact 5xx signal end to end: the shipped snippet's filter in a real syslog-ng, and
//! `watch` classifying every line it gets. A 200 with a 512-byte body is no incident line.

use crate::util::*;
use std::time::{Duration, Instant};

/// A successful request whose response size is in the 500s: the article's rule took it for
/// a 5xx (`HTTP/1.1" 200 512 `).
fn ok_with_5xx_size(seq: u64) -> String {
    format!(
        "<14>Nov 21 12:00:00 docker/shop-1[42]: 192.0.2.7 - - \"GET /api/items/{seq} HTTP/1.1\" 200 {} \"-\" \"curl/8.5\" rt=0.512 seq={seq}\n",
        500 + seq % 100
    )
}

fn bad_gateway(seq: u64) -> String {
    format!(
        "<14>Nov 21 12:00:00 docker/shop-1[42]: 192.0.2.7 - - \"POST /api/orders/{seq} HTTP/1.1\" 502 157 \"-\" \"curl/8.5\" seq={seq}\n"
    )
}

/// The shipped filter keeps the 200s away from `watch`.
#[test]
fn the_shipped_filter_keeps_200s_with_5xx_sizes_out() {
    let not_5xx = burst_among_steady_200s(None);
    assert_eq!(not_5xx, 0, "syslog-ng passed 200s on to watch");
}

/// With the article's rule syslog-ng passes every 200 with a 5xx size on: `watch` counts
/// them as not 5xx and they hold nothing open.
#[test]
fn with_the_article_rule_watch_ignores_200s_with_5xx_sizes() {
    // The article's rule, written for a single-quoted syslog-ng string.
    let article = fasttrack::digest::ARTICLE_MATCH;
    let not_5xx = burst_among_steady_200s(Some(article));
    assert!(not_5xx >= 65, "{not_5xx} lines counted as not 5xx");
}

/// A steady stream of 200s with 5xx sizes, and one burst of 502s in the middle: one
/// rotation about one quiet period after the burst (not at --max-wait), whose digest lists
/// only the 502s, and every line shipped or still in the live log exactly once. Returns the
/// digest's `not_5xx`.
fn burst_among_steady_200s(rule: Option<&str>) -> u64 {
    let env = TestEnv::new();
    let quiet = Duration::from_secs(2);
    // The old outcome was a rotation at --max-wait (1 h) only.
    let mut sng = SyslogNg::start_with(
        &env,
        Some(&["--quiet", "2s", "--max-wait", "1h"]),
        rule,
        &[],
    );
    let mut seq = 0u64;
    let mut send = |sng: &mut SyslogNg, line: fn(u64) -> String| {
        sng.send(&line(seq));
        seq += 1;
    };
    // 2 s of 200s alone: no incident, nothing rotated.
    let tick = Duration::from_millis(50);
    for _ in 0..40 {
        send(&mut sng, ok_with_5xx_size);
        std::thread::sleep(tick);
    }
    assert!(env.shipped().is_empty(), "{}", env.dump());
    assert!(
        !env.state().join("incident").exists(),
        "200s opened an incident\n{}",
        env.dump()
    );
    // The burst, with the 200s still flowing around it.
    for _ in 0..25 {
        send(&mut sng, bad_gateway);
        send(&mut sng, ok_with_5xx_size);
    }
    let burst_end = Instant::now();
    // The 200s keep coming; the rotation must come one quiet period after the burst.
    let mut rotated_after = None;
    while burst_end.elapsed() < quiet * 5 {
        send(&mut sng, ok_with_5xx_size);
        std::thread::sleep(tick);
        if rotated_after.is_none() && !env.shipped().is_empty() {
            rotated_after = Some(burst_end.elapsed());
        }
    }
    let after = rotated_after.unwrap_or_else(|| {
        panic!(
            "no rotation within {:?} of the burst while 200s kept coming\n{}",
            quiet * 5,
            env.dump()
        )
    });
    assert!(
        after >= quiet,
        "rotated {after:?} after the burst, before the quiet period"
    );
    let shipped = env.shipped();
    assert_eq!(shipped.len(), 1, "{}", env.dump());
    let digest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.logs_dir().join(shipped[0].name.replace(".gz", ".json")))
            .expect("the digest beside the rotated log"),
    )
    .unwrap();
    assert_eq!(
        digest["statuses"],
        serde_json::json!({"502": 25}),
        "{digest:#}"
    );
    assert_eq!(digest["lines"], 25, "{digest:#}");
    assert_eq!(digest["source"], "stream", "{digest:#}");
    assert_eq!(
        digest["messages"][0]["template"],
        "POST /api/orders/<n> 502"
    );
    let not_5xx = digest["not_5xx"].as_u64().expect("not_5xx in the digest");
    if not_5xx > 0 {
        // `status` says that the filter lets non-5xx lines through (the 200s after the burst).
        env.wait_for(
            "status to show the not-5xx lines",
            Duration::from_secs(10),
            || {
                let out = env.run("status", &[]);
                String::from_utf8_lossy(&out.stdout).contains("not 5xx")
            },
        );
    }
    env.expect_every_line_once(seq);
    drop(sng);
    not_5xx
}
