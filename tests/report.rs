//! The incident index and `fasttrack report` end to end: incidents shipped by `rotate` from
//! several hosts and days, older records placed directly, the real S3 server (its request
//! log shows which partitions were listed), a file:// destination and a webhook.

use crate::util::s3::{BUCKET, PREFIX};
use crate::util::webhook::{Answer, Webhook};
use crate::util::*;
use serde_json::{json, Value};
use std::path::Path;

/// Writes a log whose incident lines are dated `day` (UTC), one per status, with normal
/// traffic between them, then ships it as `host` with `rotate`.
fn ship_incident(env: &TestEnv, host: &str, day: &str, statuses: &[u16]) {
    let mut text = String::new();
    for (i, status) in statuses.iter().enumerate() {
        text += &format!(
            "{day}T10:00:{i:02}Z {host} docker/shop[1]: 10.0.0.{i} - - \"GET /api/orders/{i} HTTP/1.1\" {status} 0\n"
        );
        text += &format!(
            "{day}T10:00:{i:02}Z {host} docker/shop[1]: 10.0.0.{i} - - \"GET /health HTTP/1.1\" 200 2\n"
        );
    }
    std::fs::write(env.log(), text).unwrap();
    env.cmd("rotate", &["--reopen", "none", "--host", host])
        .status(0)
        .run_in(env);
}

/// An index record as another host (or an older day) left it.
fn record(host: &str, first_seen: &str, lines: u64, status: &str) -> Value {
    let key = format!("{PREFIX}/{host}/docker.log-1.gz");
    json!({
        "version": 1, "dt": &first_seen[..10], "host": host, "log": "docker.log-1.gz",
        "key": key, "sidecar_key": key.replace(".gz", ".json"), "bytes": 1000, "lines": lines,
        "first_seen": first_seen, "last_seen": first_seen, "incident_id": "x",
        "statuses": { status: lines },
        "programs": [{ "key": "docker/old", "count": lines }],
        "messages": [{ "template": format!("GET /old {status}"), "count": lines, "status": status }],
        "shipped_at": first_seen,
    })
}

/// Places an object under `root` (a file:// directory, or the S3 server's bucket directory).
fn place(root: &Path, key: &str, body: &[u8]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn line(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(v).unwrap();
    bytes.push(b'\n');
    bytes
}

const RANGE: [&str; 4] = ["--since", "2026-11-19T01:00:00Z", "--until", "2026-11-22"];

#[test]
fn report_merges_hosts_and_days_in_range_and_lists_only_their_partitions_on_s3() {
    let env = TestEnv::new_s3_logging_requests();
    ship_incident(&env, "web1", "2026-11-20", &[502, 502, 503]);
    ship_incident(&env, "web2", "2026-11-20", &[500]);
    ship_incident(&env, "web3", "2026-11-21", &[502, 504]);

    // one record per incident, one line of JSON, in the partition of its first line
    let index = env.server().download(&format!("{PREFIX}/_incidents/"));
    let keys: Vec<&str> = index.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys.len(), 3, "{keys:?}\n{}", env.dump());
    assert!(keys[0].starts_with("fast-track/_incidents/dt=2026-11-20/web1-docker.log-"));
    assert!(keys[2].starts_with("fast-track/_incidents/dt=2026-11-21/web3-docker.log-"));
    for o in &index {
        assert_eq!(o.content_type.as_deref(), Some("application/json"));
        assert!(o.body.ends_with(b"\n") && o.body.iter().filter(|&&b| b == b'\n').count() == 1);
        let r: Value = serde_json::from_slice(&o.body).unwrap();
        assert_eq!(r["version"], 1);
        let shipped = env
            .server()
            .download(r["key"].as_str().unwrap())
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no log object {}", r["key"]));
        assert_eq!(r["bytes"], shipped.body.len());
    }

    // older incidents, as other hosts left them: one in range, one in a listed partition but
    // before --since, one in a partition out of range, one of a future schema
    let bucket = env.server().root.join(BUCKET);
    let at = |dt: &str, host: &str| format!("{PREFIX}/_incidents/dt={dt}/{host}-docker.log-1.json");
    place(
        &bucket,
        &at("2026-11-19", "old1"),
        &line(&record("old1", "2026-11-19T05:00:00Z", 7, "500")),
    );
    place(
        &bucket,
        &at("2026-11-19", "early"),
        &line(&record("early", "2026-11-19T00:30:00Z", 900, "502")),
    );
    place(
        &bucket,
        &at("2026-11-10", "gone"),
        &line(&record("gone", "2026-11-10T05:00:00Z", 900, "502")),
    );
    place(
        &bucket,
        &at("2026-11-21", "next"),
        br#"{"version":2,"lines":{"a":1}}"#,
    );

    let mark = env.server().request_log_mark();
    let ran = env
        .cmd("report", &[&RANGE[..], &["--json"][..]].concat())
        .status(0)
        .run_in(&env);
    // the days are listed at once: in any order
    let mut listed = env.server().listed_prefixes(mark);
    listed.sort();
    assert_eq!(
        listed,
        [
            "fast-track/_incidents/dt=2026-11-19/",
            "fast-track/_incidents/dt=2026-11-20/",
            "fast-track/_incidents/dt=2026-11-21/",
        ],
        "only the partitions of the range are listed"
    );
    let r: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(r["version"], 1);
    assert_eq!(
        r["partitions"],
        json!(["dt=2026-11-19", "dt=2026-11-20", "dt=2026-11-21"])
    );
    assert_eq!(
        (&r["records"], &r["incidents"], &r["newer_records"]),
        (&json!(5), &json!(4), &json!(1))
    );
    assert_eq!((&r["hosts_total"], &r["lines"]), (&json!(4), &json!(13)));
    assert_eq!(
        r["statuses"],
        json!({"500": 8, "502": 3, "503": 1, "504": 1})
    );
    assert_eq!(r["hosts"][0]["host"], "old1");
    assert_eq!(r["messages"][0]["template"], "GET /old 500");
    let largest = &r["largest"][0];
    assert_eq!(largest["host"], "old1");
    let link = largest["link"].as_str().unwrap();
    assert!(
        link.starts_with(&env.server().endpoint()) && link.contains("X-Amz-Signature="),
        "{link}"
    );
    // a link to a log shipped by rotate downloads it
    let web1 = r["largest"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["host"] == "web1")
        .unwrap();
    let (status, body) = crate::util::webhook::http_get(web1["link"].as_str().unwrap());
    assert_eq!(status, 200);
    assert_eq!(gunzip_lines(&body).len(), 6);

    env.cmd("report", &RANGE)
        .status(0)
        .stdout_has("fasttrack report for s3://incident-logs/fast-track")
        .stdout_has("4 incidents on 4 hosts, 13 lines")
        .stdout_has("statuses     500 x8, 502 x3, 503 x1, 504 x1")
        .stdout_has("(1 records of a newer format left out")
        .run_in(&env);
}

#[test]
fn report_reads_a_file_destination_and_says_what_it_could_not_read() {
    let env = TestEnv::new();
    ship_incident(&env, "web1", "2026-11-20", &[502, 503]);
    ship_incident(&env, "web2", "2026-11-20", &[502]);
    let dir = env.out().join("_incidents/dt=2026-11-20");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names[0].starts_with("web1-docker.log-") && names.len() == 2,
        "{names:?}"
    );
    let dest = format!("file://{}", env.out().display());
    env.cmd(
        "report",
        &[&dest, "--since", "2026-11-20", "--until", "2026-11-21"],
    )
    .status(0)
    .stdout_has(format!("fasttrack report for {dest}"))
    .stdout_has("(1 partition listed, 2 records read)")
    .stdout_has("2 incidents on 2 hosts, 3 lines")
    .stdout_has(format!("{dest}/web1/docker.log-"))
    .run_in(&env);

    place(
        &env.out(),
        "_incidents/dt=2026-11-20/broken.json",
        b"{\"version\":1,",
    );
    env.cmd(
        "report",
        &["--since", "2026-11-20", "--until", "2026-11-21"],
    )
    .status(1)
    .stdout_has("2 incidents on 2 hosts")
    .stderr_has("1 of 3 index records could not be read")
    .stderr_has("broken.json")
    .run_in(&env);

    // nothing in range is a report of nothing; a range that is not one is a usage error
    env.cmd(
        "report",
        &["--since", "2026-11-01", "--until", "2026-11-02"],
    )
    .status(0)
    .stdout_has("incidents    none")
    .run_in(&env);
    env.cmd("report", &["--since", "yesterday"])
        .status(2)
        .stderr_has("neither a duration before now (24h, 7d) nor a time")
        .run();
    env.cmd("report", &["--since", "1h", "--until", "2h"])
        .status(2)
        .stderr_has("is not before --until")
        .run();
}

#[test]
fn report_posts_to_the_webhook_given_and_never_to_the_incident_channel_by_surprise() {
    let env = TestEnv::new();
    ship_incident(&env, "web1", "2026-11-20", &[502, 502]);
    let hook = Webhook::start(Answer::Ok);
    // the incident channel in the config file: a report run by hand does not post there
    env.set_notify(&hook.url(), "");
    let range = ["--since", "2026-11-20", "--until", "2026-11-21"];
    env.cmd("report", &range).status(0).run_in(&env);
    assert_eq!(hook.received(), 0);

    env.cmd("report", &range)
        .env("FASTTRACK_NOTIFY", hook.url())
        .status(0)
        .run_in(&env);
    let url = hook.url();
    env.cmd(
        "report",
        &[&range[..], &["--notify", &url, "--notify-format", "json"]].concat(),
    )
    .status(0)
    .run_in(&env);
    let posted = hook.accepted_json();
    assert_eq!(posted.len(), 2);
    let text = posted[0]["text"].as_str().unwrap();
    assert!(text.contains("*HTTP 5xx report for file://"), "{text}");
    assert!(text.contains("1 incident on 1 host, 2 lines"), "{text}");
    assert!(
        text.contains("\u{2022} 2 x `GET /api/orders/&lt;n&gt; 502`"),
        "{text}"
    );
    assert_eq!(posted[1]["event"], "fasttrack.report");
    assert_eq!(posted[1]["report"]["version"], 1);
    assert_eq!(posted[1]["report"]["incidents"], 1);
}
