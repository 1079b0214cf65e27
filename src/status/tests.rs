//! The two renderings of one [`Status`]: the text as operators read it, the JSON as
//! docs/status-json.md documents it.

use super::*;
use crate::exit::Outcome;

fn file(name: &str, bytes: Option<u64>) -> Option<FileOnDisk> {
    Some(FileOnDisk {
        name: name.to_string(),
        bytes,
    })
}

/// A host with nothing rotated yet and no state dir.
fn untouched() -> Status {
    Status {
        version: SCHEMA_VERSION,
        generated_at: "2026-11-22T05:30:00Z".into(),
        generated_at_unix: 1_795_325_400,
        fasttrack_version: "0.1.0".into(),
        host: "web1".into(),
        destination: None,
        log: LiveLog {
            path: "/var/log/docker.log".into(),
            exists: false,
            regular_file: false,
            bytes: None,
            modified: None,
            modified_unix: None,
            error: Some("No such file or directory (os error 2)".into()),
        },
        state_dir: StateDirStatus {
            path: "/var/lib/fasttrack".into(),
            exists: false,
            locked_by_pid: None,
        },
        incident: Incident {
            open: false,
            since: None,
            since_unix: None,
            digest: None,
        },
        pending: 0,
        rotated_files: vec![],
        notifications: Notifications {
            configured: false,
            waiting: vec![],
        },
        last_rotation: None,
        last_error: None,
    }
}

/// A busy host: every line of the text report has something to say.
fn busy() -> Status {
    let mut s = untouched();
    s.destination = Some("s3://logs/prod".into());
    s.log = LiveLog {
        path: "/var/log/docker.log".into(),
        exists: true,
        regular_file: true,
        bytes: Some(1234),
        modified: Some("2026-11-22T05:29:58Z".into()),
        modified_unix: Some(1_795_325_398),
        error: None,
    };
    s.state_dir.exists = true;
    s.state_dir.locked_by_pid = Some(4242);
    s.incident = Incident {
        open: true,
        since: Some("2026-11-22T05:29:00Z".into()),
        since_unix: Some(1_795_325_340),
        digest: Some(DigestHeadline {
            lines: 54,
            ignored: 3,
            not_5xx: 2,
            first_seen: Some("2026-11-22T05:29:00Z".into()),
            first_seen_unix: Some(1_795_325_340),
            last_seen: Some("2026-11-22T05:29:40Z".into()),
            last_seen_unix: Some(1_795_325_380),
            statuses: [("502".to_string(), 50), ("503".to_string(), 4)].into(),
            top_message: Some(TopMessage {
                template: "POST /api/orders/<n> 502".into(),
                count: 50,
            }),
        }),
    };
    s.rotated_files = busy_files();
    s.pending = 2;
    s.notifications = Notifications {
        configured: true,
        waiting: vec![WaitingNotification {
            file: "docker.log-100.gz".into(),
            attempts: 2,
            next_attempt_at: Some("2026-11-22T05:31:00Z".into()),
            next_attempt_at_unix: Some(1_795_325_460),
            last_error: Some("the webhook answered HTTP 500".into()),
        }],
    };
    s.last_rotation = Some(LastRotation {
        at: "2026-11-22T05:10:00Z".into(),
        at_unix: Some(1_795_324_200),
        file: "docker.log-300".into(),
        bytes: 9000,
    });
    s.last_error = Some(LastError {
        at: "2026-11-22T05:10:02Z".into(),
        at_unix: Some(1_795_324_202),
        message: "cannot ship docker.log-200.gz (will be retried)".into(),
    });
    s
}

/// One rotated log in each state, with a leftover plain file and an unfinished compression.
fn busy_files() -> Vec<RotatedLog> {
    vec![
        RotatedLog {
            suffix: 100,
            stage: StageName::Compressed,
            state: FileState::Shipped,
            pending: false,
            gz: file("docker.log-100.gz", Some(210)),
            plain: file("docker.log-100", Some(5000)),
            partial: None,
            lines: Some(50),
            uncompressed_bytes: Some(5000),
            digest: Some("docker.log-100.json".into()),
            shipped: Some(Shipment {
                at: "2026-11-22T05:00:01Z".into(),
                at_unix: Some(1_795_323_601),
                dest: "s3://logs/prod".into(),
                key: "prod/web1/docker.log-100.gz".into(),
                bytes: 210,
            }),
        },
        RotatedLog {
            suffix: 200,
            stage: StageName::Compressed,
            state: FileState::PendingUpload,
            pending: true,
            gz: file("docker.log-200.gz", Some(300)),
            plain: None,
            partial: None,
            lines: Some(70),
            uncompressed_bytes: Some(7000),
            digest: Some("docker.log-200.json".into()),
            shipped: None,
        },
        RotatedLog {
            suffix: 300,
            stage: StageName::Plain,
            state: FileState::PendingCompression,
            pending: true,
            gz: None,
            plain: file("docker.log-300", Some(9000)),
            partial: file("docker.log-300.gz.part", None),
            lines: None,
            uncompressed_bytes: None,
            digest: None,
            shipped: None,
        },
    ]
}

#[test]
fn an_untouched_host_reads_as_before() {
    assert_eq!(
        render_text(&untouched()),
        "\
log            /var/log/docker.log (No such file or directory (os error 2))
destination    not configured (set --dest)
state dir      /var/lib/fasttrack (not created yet)
incident       none open
rotated files  none
last rotation  none recorded
last error     none recorded
"
    );
    assert_eq!(untouched().outcome(), Outcome::Done);
}

#[test]
fn a_busy_host_shows_every_file_and_the_incident() {
    let text = render_text(&busy());
    let expected = "\
log            /var/log/docker.log (1234 bytes, modified 2026-11-22T05:29:58Z)
destination    s3://logs/prod (host web1)
state dir      /var/lib/fasttrack (locked by pid 4242: rotating or shipping)
incident       open since 2026-11-22T05:29:00Z: fast-tracked after the next quiet period
  digest       54 lines, 3 snoozed; top: POST /api/orders/<n> 502 x50
  not 5xx      2 lines matched syslog-ng's filter with a status that is not 5xx: they open no incident; a large number means the filter is too broad (use the shipped f_5xxERR-hook, see README)
rotated files  3 (2 pending), oldest first:
  docker.log-100.gz                 210 bytes       shipped 2026-11-22T05:00:01Z to s3://logs/prod prod/web1/docker.log-100.gz
  docker.log-100                    5000 bytes      leftover of an interrupted compression (removed on the next run)
  docker.log-200.gz                 300 bytes       PENDING: compressed, not shipped yet
  docker.log-300                    9000 bytes      PENDING: rotated, not compressed yet
  docker.log-300.gz.part                            unfinished compression (redone on the next run)
notifications  1 waiting; docker.log-100.gz: the webhook answered HTTP 500
last rotation  2026-11-22T05:10:00Z docker.log-300 (9000 bytes)
last error     2026-11-22T05:10:02Z cannot ship docker.log-200.gz (will be retried)
";
    assert_eq!(text, expected, "\n{text}");
    assert_eq!(busy().outcome(), Outcome::Pending);
}

#[test]
fn odd_logs_markers_and_notifications_read_as_before() {
    let mut s = untouched();
    s.log.exists = true;
    s.log.error = None;
    s.incident.open = true;
    s.notifications.configured = true;
    let text = render_text(&s);
    assert!(
        text.contains("(NOT a regular file: it will not be rotated)\n"),
        "{text}"
    );
    assert!(
        text.contains("open since (an unreadable time): fast-tracked"),
        "{text}"
    );
    assert!(text.contains("notifications  none waiting\n"), "{text}");
    s.notifications.waiting = busy().notifications.waiting;
    s.notifications.waiting[0].last_error = None;
    assert!(render_text(&s).contains("1 waiting; docker.log-100.gz: not tried yet\n"));
}

/// Every object key in `value`, with its path, outside the `statuses` maps (keyed by code).
fn keys(value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}.{k}");
                out.push(here.clone());
                if k != "statuses" {
                    keys(v, &here, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                keys(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_json_starts_with_its_version_and_has_every_key_even_when_null() {
    let json = render_json(&untouched()).unwrap();
    assert!(json.starts_with("{\n  \"version\": 1,\n"), "{json}");
    assert!(json.ends_with("}\n"), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for null in [
        "destination",
        "last_rotation",
        "last_error",
        "/log/bytes",
        "/log/modified",
        "/log/modified_unix",
        "/state_dir/locked_by_pid",
        "/incident/since",
        "/incident/since_unix",
        "/incident/digest",
    ] {
        let pointer = if null.starts_with('/') {
            null.to_string()
        } else {
            format!("/{null}")
        };
        assert_eq!(
            v.pointer(&pointer),
            Some(&serde_json::Value::Null),
            "{null}"
        );
    }
    assert_eq!(v["rotated_files"], serde_json::json!([]));
    assert_eq!(v["notifications"]["waiting"], serde_json::json!([]));

    // The busy host has every optional object filled in: together, every key of the schema.
    let busy: serde_json::Value = serde_json::from_str(&render_json(&busy()).unwrap()).unwrap();
    let mut all = Vec::new();
    keys(&busy, "", &mut all);
    for key in &all {
        let name = key.rsplit(['.', ']']).next().unwrap_or_default();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{key} is not snake_case"
        );
    }
    // The busy host has every key of the schema, and docs/status-json.md documents each.
    let mut all: Vec<String> = all.iter().map(|k| k[1..].to_string()).collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all,
        documented_fields(),
        "docs/status-json.md and the JSON disagree"
    );
}

/// The fields of the table in docs/status-json.md (its rows start with a field in backquotes).
fn documented_fields() -> Vec<String> {
    let mut fields: Vec<String> = include_str!("../../docs/status-json.md")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    fields.sort();
    fields
}

#[test]
fn the_json_says_what_the_text_says() {
    let v: serde_json::Value = serde_json::from_str(&render_json(&busy()).unwrap()).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["pending"], 2);
    assert_eq!(v["log"]["bytes"], 1234);
    assert_eq!(v["log"]["modified_unix"], 1_795_325_398);
    assert_eq!(v["state_dir"]["locked_by_pid"], 4242);
    assert_eq!(v["incident"]["digest"]["statuses"]["502"], 50);
    assert_eq!(
        v["incident"]["digest"]["top_message"]["template"],
        "POST /api/orders/<n> 502"
    );
    let files = v["rotated_files"].as_array().unwrap();
    let states: Vec<&str> = files.iter().map(|f| f["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["shipped", "pending_upload", "pending_compression"]);
    let stages: Vec<&str> = files.iter().map(|f| f["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["compressed", "compressed", "plain"]);
    assert_eq!(files[0]["shipped"]["key"], "prod/web1/docker.log-100.gz");
    assert_eq!(files[2]["partial"]["bytes"], serde_json::Value::Null);
    assert_eq!(v["notifications"]["waiting"][0]["attempts"], 2);
    assert_eq!(v["last_error"]["at_unix"], 1_795_324_202);
}

#[test]
fn only_files_waiting_to_be_compressed_or_shipped_are_pending() {
    assert!(FileState::PendingUpload.is_pending());
    assert!(FileState::PendingCompression.is_pending());
    assert!(!FileState::Shipped.is_pending());
    assert!(!FileState::Unfinished.is_pending());
}

#[test]
fn times_convert_both_ways() {
    assert_eq!(unix_to_rfc3339(1_795_325_400), "2026-11-22T05:30:00Z");
    assert_eq!(rfc3339_to_unix("2026-11-22T05:30:00Z"), Some(1_795_325_400));
    assert_eq!(
        rfc3339_to_unix("2026-11-22T06:30:00+01:00"),
        Some(1_795_325_400)
    );
    assert_eq!(rfc3339_to_unix("(an unreadable time)"), None);
}
