//! The incident digest and notifications end to end: a real syslog-ng feeding `watch`, the
//! real S3 server, and a webhook receiver in the test; `fasttrack digest` on plain, gzipped
//! and s3:// logs.

use crate::util::s3;
use crate::util::webhook::{http_get, Answer, Webhook};
use crate::util::*;
use std::io::Write;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// The lines of one burst: 30 502s of one endpoint, 20 503s of another (from another
/// container), 5 health checks that are snoozed, and normal traffic around them.
fn burst(sng: &mut SyslogNg, seq: &mut u64) {
    let mut send = |program: &str, request: &str, status: u16| {
        sng.send(&format!(
            "<14>Nov 21 12:00:{:02} {program}[42]: 10.0.{}.{} - - \"{request} HTTP/1.1\" {status} 17 seq={}\n",
            *seq % 60,
            *seq % 7,
            *seq % 200,
            *seq
        ));
        *seq += 1;
    };
    for i in 0..30u64 {
        send(
            "docker/api-1",
            &format!("POST /api/orders/{}", 1000 + i * 7),
            502,
        );
        send("docker/api-1", &format!("GET /api/orders/{i}"), 200);
        if i < 20 {
            send(
                "docker/web-1",
                &format!("GET /api/users/3fa85f64-5717-4562-b3fc-{:012x}", i * 977),
                503,
            );
        }
        if i < 5 {
            send("docker/web-1", "GET /health", 500);
        }
    }
}

#[test]
fn one_notification_per_incident_with_the_counts_sent_and_a_link_that_downloads_it() {
    let env = TestEnv::new_s3();
    let hook = Webhook::start(Answer::Ok);
    // The webhook is a secret: `watch` takes it from the config file, never from its arguments.
    env.set_notify(&hook.url(), "notify-format = \"json\"\n");
    let mut sng = SyslogNg::start(
        &env,
        Some(&["--quiet", "500ms", "--ignore", "'GET /health '"]),
    );
    let mut seq = 0;
    // Snoozed lines alone open no incident.
    for _ in 0..5 {
        sng.send(&format!(
            "<14>Nov 21 12:00:00 docker/web-1[42]: 10.0.0.1 - - \"GET /health HTTP/1.1\" 500 0 seq={seq}\n"
        ));
        seq += 1;
    }
    // Once watch has counted them (its saved digest says so), no incident is open.
    env.wait_for("watch to count the snoozed lines", WAIT, || {
        std::fs::read(env.state().join("incident-digest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["builder"]["ignored"] == 5)
    });
    assert!(!env.state().join("incident").exists(), "{}", env.dump());
    assert!(env.shipped().is_empty(), "{}", env.dump());
    assert!(hook.accepted_json().is_empty());

    burst(&mut sng, &mut seq);
    env.wait_for("the notification", WAIT, || {
        !hook.accepted_json().is_empty()
    });
    // Exactly one: one incident shipped, and nothing left to notify once fasttrack is idle.
    env.wait_for("fasttrack to be idle with nothing queued", WAIT, || {
        let out = env.run("status", &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        out.status.code() == Some(0) && text.contains("(idle)") && text.contains("none waiting")
    });
    assert_eq!(env.shipped().len(), 1, "{}", env.dump());
    let notes = hook.accepted_json();
    assert_eq!(notes.len(), 1, "{notes:#?}\n{}", env.dump());
    let note = &notes[0];
    let d = &note["digest"];
    assert_eq!(note["event"], "fasttrack.incident.shipped");
    assert_eq!(d["lines"], 50, "{note:#}");
    // the 5 snoozed lines before the burst went into the same incident's file
    assert_eq!(d["ignored"], 10, "{note:#}");
    assert_eq!(
        d["statuses"],
        serde_json::json!({"502": 30, "503": 20}),
        "{note:#}"
    );
    assert_eq!(d["messages"][0]["template"], "POST /api/orders/<n> 502");
    assert_eq!(d["messages"][0]["count"], 30);
    assert_eq!(d["messages"][1]["template"], "GET /api/users/<uuid> 503");
    assert_eq!(d["messages"][1]["count"], 20);
    assert_eq!(
        d["programs"][0],
        serde_json::json!({"key": "docker/api-1", "count": 30})
    );
    assert_eq!(d["source"], "stream");
    assert_eq!(d["reporter"], HOST);

    // The link downloads exactly the shipped log.
    let shipped = env.shipped();
    assert_eq!(shipped.len(), 1);
    assert_eq!(note["log"], shipped[0].name);
    let link = note["object"]["link"].as_str().unwrap();
    assert!(link.contains("X-Amz-Signature="), "{link}");
    let (status, body) = http_get(link);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, shipped[0].body);
    // The digest JSON is beside the object and beside the local file.
    let local: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.logs_dir().join(shipped[0].name.replace(".gz", ".json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(&local, d);

    // Secrets stay out of the log: not the webhook's path, not the link's signature.
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    assert!(
        log.contains(&format!("notified http://127.0.0.1:{}", hook.port)),
        "{log}"
    );
    assert!(
        !log.contains("secret-token") && !log.contains("X-Amz-Signature"),
        "{log}"
    );
    env.expect_every_line_once(seq);
    drop(sng);
}

#[test]
fn a_failing_or_hanging_webhook_delays_no_shipment_and_is_retried() {
    // 500 first: shipped at once, notified on the retry (5 s later).
    let env = TestEnv::new_s3();
    let hook = Webhook::start(Answer::FailFirst(1));
    env.set_notify(&hook.url(), "");
    let mut sng = SyslogNg::start(&env, Some(&["--quiet", "300ms"]));
    let mut seq = 0;
    burst(&mut sng, &mut seq);
    env.wait_for("the shipment", WAIT, || env.shipped().len() == 1);
    env.wait_for("the retried notification", WAIT, || {
        hook.accepted_json().len() == 1
    });
    assert_eq!(hook.received(), 2);
    let text = hook.accepted_json()[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("*HTTP 5xx incident on "), "{text}");
    // no --ignore here: the health checks count
    assert!(text.contains("55 lines"), "{text}");
    assert!(
        text.contains("*Statuses:* 502 x30, 503 x20, 500 x5"),
        "{text}"
    );
    // Slack gives < and > a meaning: the placeholders are escaped
    assert!(text.contains("`POST /api/orders/&lt;n&gt; 502`"), "{text}");
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    assert!(log.contains("the webhook answered HTTP 500"), "{log}");
    drop(sng);

    // A webhook that never answers: two incidents ship while the first attempt still hangs.
    let env = TestEnv::new_s3();
    let hook = Webhook::start(Answer::Hang);
    env.set_notify(&hook.url(), "");
    let mut sng = SyslogNg::start(&env, Some(&["--quiet", "300ms"]));
    let mut seq = 0;
    burst(&mut sng, &mut seq);
    env.wait_for("the first shipment", WAIT, || env.shipped().len() == 1);
    env.wait_for("the first attempt", WAIT, || hook.received() == 1);
    let hanging_since = Instant::now();
    burst(&mut sng, &mut seq);
    env.wait_for("the second shipment", WAIT, || env.shipped().len() == 2);
    // Shipped while the first attempt was still waiting for its 10 s timeout.
    assert!(
        hanging_since.elapsed() < fasttrack::notify::ATTEMPT_TIMEOUT,
        "{}",
        env.dump()
    );
    assert_eq!(hook.received(), 1);
    drop(sng);
}

#[test]
fn digest_reads_plain_gzipped_and_s3_logs_alike() {
    let env = TestEnv::new_s3();
    let lines = [
        "Nov 22 04:26:15 web1 docker/api[7]: 172.18.0.1 - - [22/Nov/2026:04:26:15 +0000] \"POST /api/orders/1234 HTTP/1.1\" 502 157 \"-\" \"curl/8.0\"",
        "Nov 22 04:26:16 web1 docker/api[7]: 172.18.0.1 - - [22/Nov/2026:04:26:16 +0000] \"GET /api/orders/77 HTTP/1.1\" 200 12 \"-\" \"curl/8.0\"",
        "Nov 22 04:26:17 web2 docker/api[7]: 172.18.0.9 - - [22/Nov/2026:04:26:17 +0000] \"POST /api/orders/99 HTTP/1.1\" 502 157 \"-\" \"curl/8.0\"",
        "Nov 22 04:26:18 web2 docker/gunicorn[9]: 10.0.0.9 - - \"GET /admin/login/ HTTP/1.1\" 503 0 \"-\" \"Mozilla/5.0\"",
        "Nov 22 04:26:19 web2 docker/worker[3]: {\"level\":\"error\",\"requestId\":\"req-1\",\"actionId\":\"CreateOrder\",\"status\":500,\"message\":\"payment timeout after 3000ms (HTTP/1.1 500 )\"}",
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let plain = env.path().join("old.log");
    std::fs::write(&plain, &text).unwrap();
    let gz = env.path().join("old.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();

    let json = |file: &str| -> serde_json::Value {
        let out = env.run("digest", &["--json", file]);
        env.assert_exit(&out, 0);
        let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["log"] = serde_json::Value::Null;
        v
    };
    let a = json(plain.to_str().unwrap());
    assert_eq!(a, json(gz.to_str().unwrap()));
    assert_eq!(
        (a["lines_read"].as_u64(), a["lines"].as_u64()),
        (Some(5), Some(4))
    );
    assert_eq!(a["messages"][0]["template"], "POST /api/orders/<n> 502");
    assert_eq!(a["messages"][0]["count"], 2);
    assert_eq!(a["request_ids"], serde_json::json!(["req-1"]));
    assert_eq!(a["first_seen"].as_str().unwrap()[5..19], *"11-22T04:26:15");

    // --match changes the rule: every line is selected, and the 200 is still no incident line.
    let out = env.run(
        "digest",
        &["--json", "--match", ".", plain.to_str().unwrap()],
    );
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&all["lines"], &all["not_5xx"]),
        (&4.into(), &1.into()),
        "{all:#}"
    );

    // The text form, for people.
    let out = env.run("digest", &[gz.to_str().unwrap()]);
    env.assert_exit(&out, 0);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("lines        4 in the incident (5 read)"), "{t}");
    assert!(t.contains("statuses     502 x2, 500 x1, 503 x1"), "{t}");
    assert!(t.contains("hosts        web2 x3, web1 x1"), "{t}");

    // The same log shipped by hand to S3, then digested from there.
    std::fs::write(env.log(), &text).unwrap();
    let out = env.run("rotate", &["--reopen", "none"]);
    env.assert_exit(&out, 0);
    let name = &env.shipped_names()[0];
    let key = format!("s3://{}/{}/{HOST}/{name}", s3::BUCKET, s3::PREFIX);
    let from_s3 = json(&key);
    assert_eq!(from_s3, a);

    // A missing file is named, the others are still digested, and the exit code says so.
    let out = env.run(
        "digest",
        &["/nonexistent/docker.log", plain.to_str().unwrap()],
    );
    env.assert_exit(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/docker.log: cannot open"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 in the incident"));
    let out = env.run(
        "digest",
        &[&format!("s3://{}/{}/nope.gz", s3::BUCKET, s3::PREFIX)],
    );
    env.assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
