//! Issue 15, items 3 and 4, end to end with the real binary: top messages marked new or
//! known across incidents (`fasttrack rotate` by hand, a `file://` destination, the webhook
//! receiver), and download links that say truly until when they work when the credentials
//! that sign them are temporary (a real `credential_process` against s3s-fs).

use crate::util::cmd::Ran;
use crate::util::s3;
use crate::util::webhook::{http_get, Answer, Webhook};
use crate::util::*;
use chrono::{DateTime, Duration as Days, SecondsFormat, Utc};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `n` access lines of `request` answered `status`, numbers varying (one template).
fn lines(request: &str, status: u16, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "Nov 22 04:26:{i:02} web1 docker/api[7]: 10.0.0.{i} - - \"{} HTTP/1.1\" {status} 17\n",
                request.replace("<n>", &(100 + i).to_string())
            )
        })
        .collect()
}

/// Writes `text` as the live log and rotates it by hand: rotate, digest, mark, ship, notify.
fn rotate(env: &TestEnv, text: &str, extra: &[&str]) -> Ran {
    std::fs::write(env.log(), text).unwrap();
    let mut args = vec!["--reopen", "none"];
    args.extend_from_slice(extra);
    env.cmd("rotate", &args).run()
}

/// The `(template, seen)` of each top message of a digest JSON.
fn marks(digest: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    digest["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["template"].as_str().unwrap().to_string(),
                m["seen"].clone(),
            )
        })
        .collect()
}

fn sidecar(dir: &Path, gz_name: &str) -> serde_json::Value {
    let path = dir.join(gz_name.replace(".gz", ".json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn a_message_of_an_earlier_incident_is_marked_known_and_a_new_one_new() {
    let env = TestEnv::new();
    let hook = Webhook::start(Answer::Ok);
    env.set_notify(&hook.url(), "notify-interval = \"0s\"\n");
    let orders = "POST /api/orders/<n>";
    let users = "GET /api/users/<n>";
    let stock = "GET /api/stock/<n>";

    // Incident 1: orders and users, both new.
    let ran = rotate(&env, &(lines(orders, 502, 3) + &lines(users, 503, 2)), &[]);
    assert_eq!(ran.code(), Some(0), "{}\n{}", ran.stderr, env.dump());
    let text = hook.accepted_json()[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("`POST /api/orders/&lt;n&gt; 502` (new)\n")
            && text.contains("`GET /api/users/&lt;n&gt; 503` (new)\n"),
        "{text}"
    );
    let first = env.shipped_names()[0].clone();
    let one = sidecar(&env.logs_dir(), &first);
    let since = one["first_seen"].as_str().unwrap().to_string();
    assert_eq!(one["messages"][0]["seen"]["incidents"], 0, "{one:#}");

    // Incident 2, whose file is kept pending by a destination that is not there: it is
    // marked (once) before it is shipped.
    let missing = format!("file://{}", env.path().join("nowhere").display());
    let ran = rotate(
        &env,
        &(lines(orders, 502, 2) + &lines(stock, 500, 1)),
        &["--dest", &missing],
    );
    assert_eq!(ran.code(), Some(3), "{}\n{}", ran.stderr, env.dump());
    let second = env
        .local_gz_names()
        .into_iter()
        .find(|n| *n != first)
        .unwrap();
    let marked = sidecar(&env.logs_dir(), &second);
    // A crash after the store was saved and before the digest was rewritten: the digest
    // beside the log has no marks; the next run marks it again, with the same marks.
    let mut unmarked = marked.clone();
    for m in unmarked["messages"].as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("seen");
    }
    std::fs::write(
        env.logs_dir().join(second.replace(".gz", ".json")),
        serde_json::to_vec_pretty(&unmarked).unwrap(),
    )
    .unwrap();
    env.cmd("upload", &[]).status(0).run();

    let expected = vec![
        (
            "POST /api/orders/<n> 502".to_string(),
            serde_json::json!({"first_seen": since, "incidents": 1}),
        ),
        (
            "GET /api/stock/<n> 500".to_string(),
            serde_json::json!({"first_seen": marked["first_seen"], "incidents": 0}),
        ),
    ];
    assert_eq!(marks(&marked), expected, "{marked:#}");
    let two = sidecar(&env.logs_dir(), &second);
    assert_eq!(
        marks(&two),
        expected,
        "marked once: {two:#}\n{}",
        env.dump()
    );
    // What was shipped beside the log, and what the webhook was told, say the same.
    assert_eq!(sidecar(&env.shipped_dir(), &second), two);
    let notes = hook.accepted_json();
    assert_eq!(notes.len(), 2, "{notes:#?}");
    let text = notes[1]["text"].as_str().unwrap();
    let day = &since[..10];
    assert!(
        text.contains(&format!(
            "`POST /api/orders/&lt;n&gt; 502` (seen 1 times since {day})\n"
        )) && text.contains("`GET /api/stock/&lt;n&gt; 500` (new)\n"),
        "{text}"
    );

    // The store: one entry per message, no log content, fasttrack's own state mode.
    let store_path = env.state().join("known-messages.json");
    let store: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&store_path).unwrap()).unwrap();
    let entries = store["signatures"].as_object().unwrap();
    assert_eq!(entries.len(), 3, "{store:#}");
    let counts: Vec<u64> = {
        let mut c: Vec<u64> = entries
            .values()
            .map(|e| e["incidents"].as_u64().unwrap())
            .collect();
        c.sort();
        c
    };
    assert_eq!(counts, [1, 1, 2], "{store:#}");
    assert!(!std::fs::read_to_string(&store_path)
        .unwrap()
        .contains("orders"));
    let mode = std::fs::metadata(&store_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);

    // A damaged store is a warning, never a failed shipment: the next incident is all new.
    std::fs::write(&store_path, b"{ not json").unwrap();
    let ran = rotate(&env, &lines(orders, 502, 1), &[]);
    assert_eq!(ran.code(), Some(0), "{}\n{}", ran.stderr, env.dump());
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    assert!(
        log.contains("known-messages.json is damaged") && log.contains("known-messages.json.bad"),
        "{log}"
    );
    let text = hook.accepted_json()[2]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("`POST /api/orders/&lt;n&gt; 502` (new)\n"),
        "{text}"
    );
}

/// An AWS shared config file with a profile whose `credential_process` prints temporary
/// credentials for the test server's key, expiring at `expiration`, and a profile with the
/// same key as long-lived credentials.
fn aws_config(env: &TestEnv, expiration: &str) -> PathBuf {
    let script = env.path().join("temporary-credentials.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat <<'EOF'\n{{\"Version\": 1, \"AccessKeyId\": \"{}\", \"SecretAccessKey\": \"{}\", \
             \"SessionToken\": \"session-token-of-the-test\", \"Expiration\": \"{expiration}\"}}\nEOF\n",
            s3::ACCESS_KEY,
            s3::SECRET_KEY
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = env.path().join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile temporary]\ncredential_process = {}\n\n[profile signer]\n\
             aws_access_key_id = {}\naws_secret_access_key = {}\n",
            script.display(),
            s3::ACCESS_KEY,
            s3::SECRET_KEY
        ),
    )
    .unwrap();
    config
}

/// `fasttrack rotate` shipping with the `temporary` profile only (no keys in the environment).
fn rotate_with_temporary_credentials(env: &TestEnv, config: &Path, extra: &[&str]) -> Ran {
    std::fs::write(env.log(), lines("POST /api/orders/<n>", 502, 2)).unwrap();
    let mut args = vec!["--reopen", "none", "--profile", "temporary"];
    args.extend_from_slice(extra);
    env.cmd("rotate", &args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", config)
        .run()
}

fn time(s: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn a_link_signed_with_temporary_credentials_says_it_ends_with_them() {
    let env = TestEnv::new_s3();
    let hook = Webhook::start(Answer::Ok);
    let expiration = (Utc::now() + Days::hours(2)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let config = aws_config(&env, &expiration);

    // Shipped and signed with credentials that expire in 2 hours: the link lasts 2 hours,
    // not the 7 days asked for, and says why. s3s-fs takes the session token (it checks the
    // signature, which covers the token), so the link is tried for real.
    env.set_notify(
        &hook.url(),
        "notify-format = \"json\"\nnotify-interval = \"0s\"\n",
    );
    let ran = rotate_with_temporary_credentials(&env, &config, &[]);
    assert_eq!(ran.code(), Some(0), "{}\n{}", ran.stderr, env.dump());
    let note = &hook.accepted_json()[0];
    assert_eq!(
        note["object"]["link_expires"],
        expiration.as_str(),
        "{note:#}"
    );
    assert_eq!(
        note["object"]["link_credentials_expire"],
        expiration.as_str()
    );
    let link = note["object"]["link"].as_str().unwrap();
    assert!(link.contains("X-Amz-Security-Token="), "{link}");
    let (status, body) = http_get(link);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, env.shipped()[0].body);

    // The Slack text says until when and why.
    env.set_notify(&hook.url(), "notify-interval = \"0s\"\n");
    let ran = rotate_with_temporary_credentials(&env, &config, &[]);
    assert_eq!(ran.code(), Some(0), "{}\n{}", ran.stderr, env.dump());
    let text = hook.accepted_json()[1]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.ends_with(&format!(
            " (link valid until {expiration}: signed with temporary credentials that expire at {expiration})"
        )),
        "{text}"
    );

    // --link-profile names long-lived keys: the link lasts as asked (3 days here).
    env.set_notify(
        &hook.url(),
        "notify-format = \"json\"\nnotify-link-expiry = \"3d\"\nnotify-interval = \"0s\"\n",
    );
    let before = Utc::now();
    let ran = rotate_with_temporary_credentials(&env, &config, &["--link-profile", "signer"]);
    let after = Utc::now();
    assert_eq!(ran.code(), Some(0), "{}\n{}", ran.stderr, env.dump());
    let note = &hook.accepted_json()[2];
    let until = time(&note["object"]["link_expires"]);
    assert!(
        until >= before + Days::days(3) - Days::seconds(1) && until <= after + Days::days(3),
        "{note:#}"
    );
    assert_eq!(
        note["object"]["link_credentials_expire"],
        serde_json::Value::Null
    );
    let link = note["object"]["link"].as_str().unwrap();
    assert!(!link.contains("X-Amz-Security-Token="), "{link}");
    assert!(link.contains("X-Amz-Expires=259200"), "{link}");
    let (status, _) = http_get(link);
    assert_eq!(status, 200);

    // A link profile that does not exist stops the command at start, naming it and the file.
    std::fs::write(env.log(), lines("POST /api/orders/<n>", 502, 1)).unwrap();
    env.cmd("rotate", &["--reopen", "none", "--link-profile", "nope"])
        .env("AWS_CONFIG_FILE", &config)
        .status(2)
        .stderr_has("--link-profile \"nope\": no credentials from this profile of")
        .stderr_has(config.display().to_string())
        .run();
    assert_eq!(env.shipped().len(), 3, "nothing shipped: {}", env.dump());
}
