//! `fasttrack status --json` (docs/status-json.md): the real binary's document field by field,
//! its exit code against the text report's, and the documented example against a real run.

use crate::util::webhook::{Answer, Webhook};
use crate::util::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Runs `status --json` and the text `status` with the same arguments; both must succeed with
/// the same exit code. Returns the document and that code.
fn status(env: &TestEnv, extra: &[&str]) -> (Value, i32) {
    let json_args: Vec<&str> = extra.iter().copied().chain(["--json"]).collect();
    let json = env.run("status", &json_args);
    let text = env.run("status", extra);
    let code = |out: &Output| {
        let c = out.status.code().unwrap_or(-1);
        assert!(
            (c == 0 || c == 3) && out.stderr.is_empty(),
            "status exited {c}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            env.dump()
        );
        c
    };
    assert_eq!(code(&json), code(&text), "--json changes the exit code");
    let stdout = String::from_utf8_lossy(&json.stdout);
    assert!(stdout.ends_with("}\n"), "{stdout}");
    let doc: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("status --json printed no JSON ({e}):\n{stdout}"));
    assert_eq!(doc["version"], 1, "{doc:#}");
    (doc, code(&json))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Asserts that `doc[time]` is an RFC 3339 UTC time of the last minute, with its `_unix` twin.
fn assert_recent(doc: &Value, time: &str) {
    let text = doc[time]
        .as_str()
        .unwrap_or_else(|| panic!("{time}: {doc:#}"));
    assert!(text.ends_with('Z'), "{time} {text} is not UTC");
    let secs = chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{time} {text}: {e}"))
        .timestamp();
    assert_eq!(doc[format!("{time}_unix")], secs, "{doc:#}");
    assert!((now() - 60..=now()).contains(&secs), "{time} {text}");
}

/// 5xx lines `from..to`, as Docker sends them to syslog-ng.
fn errors(from: u64, to: u64, status: u16) -> String {
    (from..to).map(|s| docker_line(s, status)).collect()
}

fn gz_name(doc: &Value, i: usize) -> String {
    doc["rotated_files"][i]["gz"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_untouched_host_exits_0_with_every_key_and_nulls() {
    let env = TestEnv::new();
    let (doc, code) = status(&env, &[]);
    assert_eq!(code, 0);
    assert_eq!(doc["host"], HOST);
    assert_eq!(doc["destination"], env.dest_url());
    assert_eq!(doc["fasttrack_version"], env!("CARGO_PKG_VERSION"));
    assert_recent(&doc, "generated_at");
    let log = &doc["log"];
    assert_eq!(log["path"], env.log().display().to_string());
    assert_eq!(
        (&log["exists"], &log["regular_file"]),
        (&false.into(), &false.into())
    );
    assert!(
        log["error"].as_str().unwrap().contains("No such file"),
        "{log}"
    );
    for null in ["bytes", "modified", "modified_unix"] {
        assert_eq!(log[null], Value::Null, "log.{null}");
    }
    assert_eq!(
        doc["state_dir"],
        serde_json::json!({"path": env.state().display().to_string(), "exists": false, "locked_by_pid": null})
    );
    assert_eq!(
        doc["incident"],
        serde_json::json!({"open": false, "since": null, "since_unix": null, "digest": null})
    );
    assert_eq!(doc["pending"], 0);
    assert_eq!(doc["rotated_files"], serde_json::json!([]));
    assert_eq!(
        doc["notifications"],
        serde_json::json!({"configured": false, "waiting": []})
    );
    assert_eq!(doc["last_rotation"], Value::Null);
    assert_eq!(doc["last_error"], Value::Null);
    assert!(
        !env.state().exists(),
        "status --json never creates anything"
    );
}

#[test]
fn a_pending_file_its_error_then_its_shipment() {
    let env = TestEnv::new();
    let hook = Webhook::start(Answer::FailFirst(usize::MAX));
    env.set_notify(&hook.url(), "");
    let body = errors(0, 12, 502);
    std::fs::write(env.log(), &body).unwrap();
    let missing = env.path().join("not-mounted");
    let dest = format!("file://{}", missing.display());
    let out = env.run("rotate", &["--reopen", "none", "--dest", &dest]);
    env.assert_exit(&out, 3);

    // The next lines of the live log, with a known mtime.
    std::fs::write(env.log(), errors(12, 13, 200)).unwrap();
    let live = std::fs::File::options()
        .write(true)
        .open(env.log())
        .unwrap();
    live.set_modified(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
        .unwrap();
    let live_bytes = std::fs::metadata(env.log()).unwrap().len();

    let (doc, code) = status(&env, &["--dest", &dest]);
    assert_eq!(code, 3, "{doc:#}");
    assert_eq!(doc["destination"], dest);
    let log = &doc["log"];
    assert_eq!(log["bytes"], live_bytes);
    assert_eq!(log["modified"], "2030-01-01T00:00:00Z");
    assert_eq!(log["modified_unix"], 1_893_456_000);
    assert_eq!(
        (&log["regular_file"], &log["error"]),
        (&true.into(), &Value::Null)
    );
    assert_eq!(doc["state_dir"]["exists"], true);
    assert_eq!(doc["state_dir"]["locked_by_pid"], Value::Null);
    assert_eq!(doc["pending"], 1);
    let file = &doc["rotated_files"][0];
    let gz = gz_name(&doc, 0);
    let suffix = file["suffix"].as_u64().unwrap();
    assert_eq!(gz, format!("docker.log-{suffix}.gz"));
    assert_eq!(
        (&file["stage"], &file["state"], &file["pending"]),
        (&"compressed".into(), &"pending_upload".into(), &true.into())
    );
    let gz_bytes = std::fs::metadata(env.logs_dir().join(&gz)).unwrap().len();
    assert_eq!(file["gz"]["bytes"], gz_bytes);
    assert_eq!(
        (&file["plain"], &file["partial"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(file["lines"], 12);
    assert_eq!(file["uncompressed_bytes"], body.len());
    assert_eq!(file["digest"], format!("docker.log-{suffix}.json"));
    assert_eq!(file["shipped"], Value::Null);
    let rotation = &doc["last_rotation"];
    assert_eq!(rotation["file"], format!("docker.log-{suffix}"));
    assert_eq!(rotation["bytes"], body.len());
    assert_recent(rotation, "at");
    let error = &doc["last_error"];
    assert_recent(error, "at");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&gz) && message.contains("not-mounted"),
        "{message}"
    );
    // Nothing shipped yet, so nothing to announce.
    assert_eq!(
        doc["notifications"],
        serde_json::json!({"configured": true, "waiting": []})
    );

    // Shipped (with its notification failing): exit 0, the shipment, the webhook's error.
    std::fs::create_dir(&missing).unwrap();
    let out = env.run("upload", &["--reopen", "none", "--dest", &dest]);
    env.assert_exit(&out, 0);
    assert_shipped(&env, &dest, &gz, gz_bytes, message);
}

/// After `upload`: the file shipped to `dest`, the last error kept, the notification waiting.
fn assert_shipped(env: &TestEnv, dest: &str, gz: &str, gz_bytes: u64, message: &str) {
    let (doc, code) = status(env, &["--dest", dest]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["pending"], 0);
    let file = &doc["rotated_files"][0];
    assert_eq!(
        (&file["state"], &file["pending"]),
        (&"shipped".into(), &false.into())
    );
    let shipped = &file["shipped"];
    assert_eq!(shipped["dest"], dest);
    assert_eq!(shipped["key"], format!("{HOST}/{gz}"));
    assert_eq!(shipped["bytes"], gz_bytes);
    assert_recent(shipped, "at");
    assert!(env.path().join("not-mounted").join(HOST).join(gz).is_file());
    // The last error stays until the next one: it is the record of what went wrong last.
    assert_eq!(doc["last_error"]["message"], message);
    let waiting = &doc["notifications"]["waiting"];
    assert_eq!(waiting.as_array().map(Vec::len), Some(1), "{doc:#}");
    assert_eq!(waiting[0]["file"], gz);
    assert_eq!(waiting[0]["attempts"], 1);
    assert!(
        waiting[0]["last_error"].as_str().unwrap().contains("500"),
        "{waiting}"
    );
    let next = waiting[0]["next_attempt_at_unix"].as_i64().unwrap();
    assert!(next > now() - 5, "{waiting}");
    let next_at = waiting[0]["next_attempt_at"].as_str().unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(next_at)
            .unwrap()
            .timestamp(),
        next
    );
}

#[test]
fn a_rotation_in_progress_shows_its_pid() {
    let env = TestEnv::new();
    std::fs::create_dir(env.state()).unwrap();
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(env.state().join("lock"))
        .unwrap();
    let mut held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .unwrap();
    held.set_len(0).unwrap();
    writeln!(&mut *held, "{}", std::process::id()).unwrap();
    let (doc, _) = status(&env, &[]);
    assert_eq!(doc["state_dir"]["locked_by_pid"], std::process::id());
    drop(held);
    let (doc, _) = status(&env, &[]);
    assert_eq!(doc["state_dir"]["locked_by_pid"], Value::Null);
}

/// A host with a shipped file, a file pending for an unmounted destination, a notification
/// waiting and an open incident whose digest `watch` saved: the example of
/// docs/status-json.md. Returns the destination.
fn busy_host(env: &TestEnv, hook: &Webhook) -> String {
    env.set_notify(&hook.url(), "");
    std::fs::write(env.log(), errors(0, 10, 502)).unwrap();
    env.assert_exit(&env.run("rotate", &["--reopen", "none"]), 0);
    std::fs::write(env.log(), errors(10, 22, 503)).unwrap();
    let missing = format!("file://{}", env.path().join("not-mounted").display());
    env.assert_exit(
        &env.run("rotate", &["--reopen", "none", "--dest", &missing]),
        3,
    );
    let mut watch = env.spawn_watch(&["--reopen", "none", "--quiet", "1h", "--dest", &missing]);
    let mut stdin = watch.stdin.take().unwrap();
    let burst = errors(30, 34, 503) + &errors(34, 35, 200);
    stdin.write_all(burst.as_bytes()).unwrap();
    let marker = env.state().join("incident");
    env.wait_for("the incident to open", Duration::from_secs(20), || {
        marker.exists()
    });
    // Closing stdin stops watch, which saves the open incident's digest on its way out.
    drop(stdin);
    let ended = watch.wait().unwrap();
    assert!(ended.success(), "{ended}\n{}", env.dump());
    missing
}

#[test]
fn an_open_incident_with_its_digest_headline() {
    let env = TestEnv::new();
    let hook = Webhook::start(Answer::FailFirst(usize::MAX));
    let dest = busy_host(&env, &hook);
    let (doc, code) = status(&env, &["--dest", &dest]);
    assert_eq!(code, 3, "{doc:#}");
    let incident = &doc["incident"];
    assert_eq!(incident["open"], true);
    assert_recent(incident, "since");
    let digest = &incident["digest"];
    assert_eq!(
        (&digest["lines"], &digest["ignored"], &digest["not_5xx"]),
        (&4.into(), &0.into(), &1.into()),
        "{digest:#}"
    );
    assert_eq!(digest["statuses"], serde_json::json!({"503": 4}));
    let top = &digest["top_message"];
    assert_eq!(top["count"], 4);
    assert!(
        top["template"].as_str().unwrap().contains("/api/orders"),
        "{top}"
    );
    for time in ["first_seen", "last_seen"] {
        let text = digest[time].as_str().unwrap();
        let secs = chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp();
        assert_eq!(digest[format!("{time}_unix")], secs, "{digest:#}");
    }
    let states: Vec<&str> = doc["rotated_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["shipped", "pending_upload"]);
    assert_eq!(doc["pending"], 1);
    assert_eq!(doc["notifications"]["waiting"][0]["file"], gz_name(&doc, 0));
}

/// JSON type names, for the messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where the example's shape (keys and types) differs from a real run's; a null on either side
/// is not compared, and the elements of an array are compared with the real run's first one.
fn differences(example: &Value, real: &Value, path: &str, out: &mut Vec<String>) {
    match (example, real) {
        (Value::Null, _) | (_, Value::Null) => {}
        // Keyed by HTTP status: its keys are data.
        (Value::Object(_), Value::Object(_)) if path.ends_with(".statuses") => {}
        (Value::Object(a), Value::Object(b)) => {
            let (ka, kb): (BTreeSet<&String>, BTreeSet<&String>) =
                (a.keys().collect(), b.keys().collect());
            if ka != kb {
                out.push(format!("{path}: the example has {ka:?}, a real run {kb:?}"));
            }
            for k in ka.intersection(&kb) {
                differences(&a[*k], &b[*k], &format!("{path}.{k}"), out);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let Some(first) = b.first() {
                for item in a {
                    differences(item, first, &format!("{path}[]"), out);
                }
            }
        }
        (a, b) if kind(a) != kind(b) => out.push(format!(
            "{path}: the example has a {}, a real run a {}",
            kind(a),
            kind(b)
        )),
        _ => {}
    }
}

/// The first ```json block of docs/status-json.md's "Example" section.
fn documented_example() -> Value {
    let doc = include_str!("../docs/status-json.md");
    let example = doc
        .split_once("\n## Example")
        .and_then(|(_, rest)| rest.split_once("```json\n"))
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .map(|(json, _)| json)
        .expect("docs/status-json.md has a ```json block under ## Example");
    serde_json::from_str(example)
        .unwrap_or_else(|e| panic!("the example of docs/status-json.md is not JSON: {e}"))
}

#[test]
fn the_documented_example_has_the_shape_of_a_real_run() {
    let example = documented_example();
    assert_eq!(example["version"], 1);
    let env = TestEnv::new();
    let hook = Webhook::start(Answer::FailFirst(usize::MAX));
    let dest = busy_host(&env, &hook);
    let (real, _) = status(&env, &["--dest", &dest]);
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&example), keys(&real), "top-level keys");
    let mut found = Vec::new();
    differences(&example, &real, "", &mut found);
    assert!(found.is_empty(), "{found:#?}\n{real:#}");
    // Every object of the example is filled in, so that it shows what each one holds.
    for filled in [
        "/incident/digest/top_message",
        "/rotated_files/0/shipped",
        "/notifications/waiting/0",
        "/last_error",
        "/last_rotation",
    ] {
        assert!(
            example.pointer(filled).is_some_and(Value::is_object),
            "{filled}"
        );
    }
}
