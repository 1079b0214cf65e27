//! Enterprise S3 (issue 16): another account's bucket (a canned ACL, the expected bucket
//! owner on every request), object tags for lifecycle rules, asserted on the requests as they
//! reach the real S3 server (s3s-fs) through a recording proxy on loopback; and egress through
//! a real HTTP proxy (Debian's tinyproxy), asserted on the proxy's own log.

use crate::util::s3::Proxy;
use crate::util::sts::Sts;
use crate::util::tinyproxy::Tinyproxy;
use crate::util::webhook::{Answer, Webhook};
use crate::util::*;
use std::time::Duration;

/// A log with an incident: 502s and 503s.
fn write_incident(env: &TestEnv, from: u64) {
    let text: String = (from..from + 6)
        .map(|s| docker_line(s, if s % 2 == 0 { 502 } else { 503 }))
        .collect();
    std::fs::write(env.log(), text).unwrap();
}

#[test]
fn acl_owner_and_tags_go_with_every_request_that_takes_them() {
    let mut env = TestEnv::new_s3();
    let proxy = Proxy::recording(env.server().port);
    env.endpoint = Some(proxy.endpoint());
    write_incident(&env, 0);
    let owner = "111122223333";
    env.cmd(
        "rotate",
        &[
            "--reopen",
            "none",
            "--acl",
            "bucket-owner-full-control",
            "--expected-bucket-owner",
            owner,
            "--tag",
            "team=payments",
            "--tag",
            "cost center=ops/42",
            "--tag-incident",
        ],
    )
    .status(0)
    .run_in(&env);
    let requests = proxy.requests();
    assert!(requests.len() >= 3, "{requests:#?}");
    for r in &requests {
        assert_eq!(
            r.header("x-amz-expected-bucket-owner"),
            Some(owner),
            "{r:?}"
        );
    }
    let puts: Vec<_> = requests.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(
        puts.len(),
        3,
        "the digest, the log, its index record: {requests:#?}"
    );
    for put in puts {
        assert_eq!(
            put.header("x-amz-acl"),
            Some("bucket-owner-full-control"),
            "{put:?}"
        );
        let tagging = put.header("x-amz-tagging").unwrap_or_default();
        assert!(
            tagging.starts_with("team=payments&cost%20center=ops%2F42&incident=2"),
            "{tagging}"
        );
        assert!(tagging.ends_with("&statuses=502-503"), "{tagging}");
    }

    // Without tags, no tagging header at all (never an empty one); no ACL, no owner.
    write_incident(&env, 6);
    let before = proxy.requests().len();
    env.cmd("rotate", &["--reopen", "none"])
        .status(0)
        .run_in(&env);
    let later = &proxy.requests()[before..];
    assert!(!later.is_empty());
    for r in later {
        for header in ["x-amz-tagging", "x-amz-acl", "x-amz-expected-bucket-owner"] {
            assert_eq!(r.header(header), None, "{r:?}");
        }
    }
    assert_exactly_once_in_order(&env, 12);
}

#[test]
fn bad_acl_owner_and_tags_are_refused_with_the_flag_named() {
    let env = TestEnv::new_s3();
    for (args, expected) in [
        (
            vec!["--acl", "owner-full"],
            "--acl \"owner-full\" is not a canned ACL: use one of private",
        ),
        (
            vec!["--expected-bucket-owner", "12"],
            "--expected-bucket-owner \"12\" is not an AWS account id",
        ),
        (
            vec!["--tag", "novalue"],
            "--tag \"novalue\" is not KEY=VALUE",
        ),
        (
            vec!["--tag", "aws:x=1"],
            "keys starting with aws: are reserved",
        ),
        (
            vec!["--tag", "a=b", "--tag", "a=c"],
            "gives the tag key \"a\" twice",
        ),
        (
            vec!["--tag", "incident=x", "--tag-incident"],
            "which --tag-incident sets",
        ),
    ] {
        let mut args = args;
        args.extend(["--reopen", "none"]);
        env.cmd("rotate", &args)
            .status(2)
            .stderr_has(expected)
            .run();
    }
    let many: Vec<String> = (0..9).map(|i| format!("k{i}=v")).collect();
    let mut args: Vec<&str> = many.iter().flat_map(|t| ["--tag", t.as_str()]).collect();
    args.push("--tag-incident");
    env.cmd("rotate", &args)
        .status(2)
        .stderr_has("gives 9 tags (and --tag-incident adds 2): S3 allows 10 per object")
        .run();
    assert!(!env.state().exists(), "nothing was done");
}

/// The S3 server's port, as it appears in the proxy's log.
fn s3_port(env: &TestEnv) -> u16 {
    env.server().port
}

#[test]
fn s3_and_webhooks_go_through_the_proxy_and_no_proxy_bypasses_it() {
    let env = TestEnv::new_s3();
    let auth = ("alice", "s3cret-pw");
    let proxy = Tinyproxy::start(env.path(), Some(auth));
    let hook = Webhook::start(Answer::Ok);
    env.set_notify(&hook.url(), "notify-interval = \"0s\"\n");
    write_incident(&env, 0);
    let ran = env
        .cmd("rotate", &["--reopen", "none"])
        .env("http_proxy", proxy.url(Some(auth)))
        .status(0)
        .stderr_lacks(auth.1)
        .run_in(&env);
    let requests = proxy.requests();
    let s3 = format!("http://127.0.0.1:{}/incident-logs/", s3_port(&env));
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("PUT ") && r.contains(&s3)),
        "the upload went through the proxy: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("POST http://127.0.0.1:{}/hooks/", hook.port))),
        "the webhook too: {requests:#?}"
    );
    assert_eq!(hook.accepted_json().len(), 1);
    let log = std::fs::read_to_string(env.log_file()).unwrap_or_default();
    assert!(
        !log.contains(auth.1) && !ran.stdout.contains(auth.1),
        "the password is never shown"
    );

    // NO_PROXY: straight to the hosts it names.
    write_incident(&env, 6);
    let before = proxy.requests().len();
    env.cmd("rotate", &["--reopen", "none"])
        .env("http_proxy", proxy.url(Some(auth)))
        .env("NO_PROXY", "127.0.0.1")
        .status(0)
        .run_in(&env);
    assert_eq!(
        proxy.requests().len(),
        before,
        "{:#?}",
        &proxy.requests()[before..]
    );
    assert_eq!(hook.accepted_json().len(), 2);

    // --proxy wins over the environment; wrong credentials are refused by the proxy, the
    // file stays pending, and the error names the proxy but not the password.
    write_incident(&env, 12);
    let wrong = proxy.url(Some(("alice", "wrong-pw")));
    env.cmd("rotate", &["--reopen", "none", "--proxy", &wrong])
        .env("http_proxy", "http://127.0.0.1:9")
        .status(1)
        .stderr_has(format!(
            "the proxy http://127.0.0.1:{} (as alice) refused the request",
            proxy.port
        ))
        .stderr_lacks("wrong-pw")
        .run_in(&env);
    env.cmd(
        "upload",
        &["--reopen", "none", "--proxy", &proxy.url(Some(auth))],
    )
    .status(0)
    .run_in(&env);
    assert_exactly_once_in_order(&env, 18);
}

#[test]
fn an_https_webhook_is_tunnelled_and_a_bad_proxy_url_is_named() {
    let env = TestEnv::new();
    let proxy = Tinyproxy::start(env.path(), None);
    // Nothing speaks TLS there: the check fails, but the tunnel went through the proxy.
    env.set_notify("https://127.0.0.1:9/hook", "");
    env.cmd(
        "check",
        &["--reopen", "none", "--logrotate-conf", "/dev/null"],
    )
    .env("https_proxy", proxy.url(None))
    .status(1)
    .stdout_has("through the proxy http://127.0.0.1:")
    .run_in(&env);
    assert!(
        proxy.requests().iter().any(|r| r == "CONNECT 127.0.0.1:9"),
        "{:#?}",
        proxy.requests()
    );
    env.cmd("rotate", &["--reopen", "none"])
        .env("HTTPS_PROXY", "socks5://alice:pw@proxy:1080")
        .status(2)
        .stderr_has("the environment variable HTTPS_PROXY is not a proxy URL fasttrack can use")
        .stderr_lacks(":pw@")
        .run();
}

#[test]
fn a_hive_style_key_template_places_each_file_by_its_rotation_date() {
    let env = TestEnv::new_s3();
    write_incident(&env, 0);
    let touched = std::process::Command::new("touch")
        .args(["-d", "2026-11-22 05:10:10 UTC"])
        .arg(env.log())
        .status()
        .unwrap();
    assert!(touched.success());
    let template = "logs/dt={date}/host={host}/{file}";
    env.cmd("rotate", &["--reopen", "none", "--key-template", template])
        .status(0)
        .run_in(&env);
    let keys: Vec<String> = env
        .server()
        .download("logs/")
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        keys,
        [
            "logs/dt=2026-11-22/host=testhost/docker.log-1795324210.gz",
            "logs/dt=2026-11-22/host=testhost/docker.log-1795324210.json",
        ]
    );
    // status follows: the key it reports is where the object is.
    let ran = env
        .cmd("status", &["--json", "--key-template", template])
        .status(0)
        .run();
    assert!(
        ran.stdout
            .contains("logs/dt=2026-11-22/host=testhost/docker.log-1795324210.gz"),
        "{}",
        ran.stdout
    );

    for (bad, why) in [
        ("{prefix}/{host}", "it has no {file}"),
        ("logs/{dt}/{file}", "unknown variable {dt}"),
        ("/logs/{file}", "keys do not start with /"),
    ] {
        env.cmd("rotate", &["--reopen", "none", "--key-template", bad])
            .status(2)
            .stderr_has(format!(
                "--key-template {bad:?} is not a valid key template: {why}"
            ))
            .run();
    }
}

/// The host names `rotate` tried to reach through the proxy (CONNECT host:443): which AWS
/// endpoint the SDK chose. Nothing beyond the proxy is reachable here, so the upload fails
/// (exit 3, the file kept), but the endpoint is in the proxy's log.
fn endpoint_chosen(
    env: &TestEnv,
    proxy: &Tinyproxy,
    args: &[&str],
    vars: &[(&str, &str)],
) -> Vec<String> {
    let before = proxy.requests().len();
    let mut cmd = Cmd::new({
        let mut c = std::process::Command::new(BIN);
        hermetic(&mut c)
            .arg("rotate")
            .args(["-c"])
            .arg(env.config_file())
            .args(["--log"])
            .arg(env.log())
            .args(["--state-dir"])
            .arg(env.state())
            .args(["--log-file"])
            .arg(env.log_file())
            .args([
                "--host",
                HOST,
                "--reopen",
                "none",
                "--dest",
                "s3://incident-logs/fast-track",
            ])
            .args([
                "--region",
                "us-east-1",
                "--upload-timeout",
                "5s",
                "--retry-max-delay",
                "1s",
            ])
            .args(args)
            .env("https_proxy", proxy.url(None));
        c
    })
    .status(3);
    for (k, v) in vars {
        cmd = cmd.env(k, v);
    }
    cmd.run_in(env);
    proxy.requests()[before..]
        .iter()
        .filter_map(|r| r.strip_prefix("CONNECT "))
        .map(str::to_string)
        .collect()
}

#[test]
fn fips_and_dual_stack_choose_awss_endpoints() {
    let env = TestEnv::new();
    let proxy = Tinyproxy::start(env.path(), None);
    write_incident(&env, 0);
    let plain = endpoint_chosen(&env, &proxy, &[], &[]);
    assert!(
        plain
            .iter()
            .all(|h| h == "incident-logs.s3.us-east-1.amazonaws.com:443"),
        "{plain:?}"
    );
    assert!(!plain.is_empty());
    let fips = endpoint_chosen(&env, &proxy, &["--fips"], &[]);
    assert!(
        fips.contains(&"incident-logs.s3-fips.us-east-1.amazonaws.com:443".to_string()),
        "{fips:?}"
    );
    let dual = endpoint_chosen(&env, &proxy, &[], &[("AWS_USE_DUALSTACK_ENDPOINT", "true")]);
    assert!(
        dual.contains(&"incident-logs.s3.dualstack.us-east-1.amazonaws.com:443".to_string()),
        "{dual:?}"
    );
    let local = [
        "--fips",
        "--dest",
        "s3://incident-logs",
        "--endpoint-url",
        "http://127.0.0.1:9",
    ];
    env.cmd("rotate", &local)
        .status(2)
        .stderr_has("--fips chooses one of AWS's own endpoints, which --endpoint-url")
        .run();
}

#[test]
fn a_role_assumed_through_the_profile_is_refreshed_during_a_long_upload() {
    let mut env = TestEnv::new_s3();
    // Credentials that last 15 s (the SDK renews them 10 s before): a 2-part upload slowed to
    // about 12 s by the proxy needs them renewed on the way.
    let sts = Sts::start(Duration::from_secs(15));
    let slow = Proxy::start(env.server().port, vec![], Some(1 << 20));
    env.endpoint = Some(slow.endpoint());
    let aws_config = env.path().join("aws-config");
    std::fs::write(
        &aws_config,
        format!(
            "[profile base]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
             [profile fasttrack]\nrole_arn = arn:aws:iam::111122223333:role/log-writer\nsource_profile = base\n\
             external_id = ext-4711\nrole_session_name = fasttrack-testhost\n",
            crate::util::s3::ACCESS_KEY,
            crate::util::s3::SECRET_KEY,
        ),
    )
    .unwrap();
    // Incompressible lines: 12 MiB of gzip, two 6 MiB parts sent one after the other.
    let mut rng = Rng::new(16);
    let text: String = (0..96_000u64)
        .map(|s| {
            let noise: String = (0..16).map(|_| format!("{:016x}", rng.next())).collect();
            docker_line(s, 200).replace(" 17\n", &format!(" 17 {noise}\n"))
        })
        .collect();
    std::fs::write(env.log(), text).unwrap();
    env.cmd(
        "rotate",
        &[
            "--reopen",
            "none",
            "--profile",
            "fasttrack",
            "--aws-config-file",
            aws_config.to_str().unwrap(),
            "--part-size",
            "6MiB",
            "--upload-concurrency",
            "1",
        ],
    )
    .env_remove("AWS_ACCESS_KEY_ID")
    .env_remove("AWS_SECRET_ACCESS_KEY")
    .env("AWS_CONFIG_FILE", &aws_config)
    // The STS stand-in, as a host would name a VPC endpoint for STS.
    .env("AWS_ENDPOINT_URL_STS", sts.endpoint())
    .status(0)
    .run_in(&env);
    let calls = sts.calls();
    assert!(calls.len() >= 2, "renewed during the upload: {calls:#?}");
    let first = &calls[0];
    for (k, v) in [
        ("Action", "AssumeRole"),
        ("RoleArn", "arn:aws:iam::111122223333:role/log-writer"),
        ("ExternalId", "ext-4711"),
        ("RoleSessionName", "fasttrack-testhost"),
    ] {
        assert!(
            first.contains(&(k.to_string(), v.to_string())),
            "{k}={v} in {first:?}"
        );
    }
    assert_exactly_once_in_order(&env, 96_000);
}
