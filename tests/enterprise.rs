//! Enterprise S3 (issue 16): another account's bucket (a canned ACL, the expected bucket
//! owner on every request), object tags for lifecycle rules. Asserted on the requests as they
//! reach the real S3 server (s3s-fs), through a recording proxy on loopback.

use crate::util::s3::Proxy;
use crate::util::*;

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
    assert_eq!(puts.len(), 2, "the digest and the log: {requests:#?}");
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
