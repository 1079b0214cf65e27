//! `Config` built from both layers: precedence, defaults, and errors that name their origin.

use super::file::{self, FileConfig};
use super::values::parse_size;
use super::*;
use crate::cli::{CommonArgs, IncidentArgs, S3Args};

fn host() -> Option<String> {
    Some("sysname".into())
}

fn load(
    common: CommonArgs,
    watch: Option<WatchArgs>,
    file: &str,
    env: &[&'static str],
) -> anyhow::Result<Config> {
    let origins = Origins {
        from_env: env.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let s3 = S3Args::default();
    from_layers(
        &common,
        &s3,
        &IncidentArgs::default(),
        watch.as_ref(),
        &origins,
        file,
    )
}

/// `Config::from_parts` on the command line's groups, `origins` and the text of the file.
fn from_layers(
    common: &CommonArgs,
    s3: &S3Args,
    incident: &IncidentArgs,
    watch: Option<&WatchArgs>,
    origins: &Origins,
    file: &str,
) -> anyhow::Result<Config> {
    let file = FileConfig::parse(file).unwrap();
    let no_watch = WatchArgs::default();
    let flags = Layer {
        common,
        s3,
        incident,
        watch: watch.unwrap_or(&no_watch),
        routes: &[],
    };
    let path = PathBuf::from("/etc/fasttrack/fasttrack.toml");
    let src = Sources::new(origins, flags, file.layer(), Some(&path));
    Config::from_parts(&src, watch.is_some(), host)
}

fn err(result: anyhow::Result<Config>) -> String {
    let e = result.unwrap_err();
    assert!(
        e.downcast_ref::<ConfigError>().is_some(),
        "not a ConfigError: {e:#}"
    );
    e.to_string()
}

#[test]
fn defaults_when_nothing_is_set() {
    let c = load(CommonArgs::default(), None, "", &[]).unwrap();
    assert_eq!(c.log, PathBuf::from("/var/log/docker.log"));
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/fasttrack"));
    assert_eq!(c.host, "sysname");
    assert_eq!(c.keep, 10);
    assert_eq!(c.compression_level, 5);
    assert!((1..=8).contains(&c.compression_threads));
    assert_eq!(c.quiet, Duration::from_secs(30));
    assert_eq!(c.max_wait, Duration::from_secs(600));
    assert_eq!(c.reopen.method, ReopenMethod::Auto);
    assert_eq!(c.dest, None);
    assert!(
        err(Ok(c.clone()).and_then(|c| c.require_dest().cloned().map(|_| c))).contains("--dest")
    );
}

#[test]
fn flag_beats_file_and_file_beats_default() {
    let file = r#"
        log = "/srv/file.log"
        keep = 3
        quiet = "5s"
        host = "fromfile"
        dest = "file:///srv/out/"
    "#;
    let common = CommonArgs {
        log: Some("/srv/flag.log".into()),
        ..Default::default()
    };
    let watch = WatchArgs {
        quiet: Some("500ms".into()),
        max_wait: None,
    };
    let c = load(common, Some(watch), file, &[]).unwrap();
    assert_eq!(c.log, PathBuf::from("/srv/flag.log"));
    assert_eq!(c.keep, 3);
    assert_eq!(c.quiet, Duration::from_millis(500));
    assert_eq!(c.max_wait, Duration::from_secs(600));
    assert_eq!(c.host, "fromfile");
    assert_eq!(
        c.dest,
        Some(DestUrl::File {
            root: "/srv/out".into()
        })
    );
}

#[test]
fn the_progress_bar_is_allowed_unless_turned_off_by_flag_or_file() {
    let allowed = |flag: Option<&str>, file: &str| {
        let common = CommonArgs {
            no_progress: flag.map(Into::into),
            ..Default::default()
        };
        load(common, None, file, &[]).unwrap().progress
    };
    assert!(allowed(None, ""));
    assert!(!allowed(Some("true"), ""), "--no-progress");
    assert!(!allowed(None, "no-progress = true"));
    assert!(
        allowed(Some("false"), "no-progress = true"),
        "--no-progress=false"
    );
    let bad = CommonArgs {
        no_progress: Some("sometimes".into()),
        ..Default::default()
    };
    let e = err(load(bad, None, "", &["--no-progress"]));
    assert!(e.contains("FASTTRACK_NO_PROGRESS"), "{e}");
}

#[test]
fn errors_name_the_setting_and_where_it_came_from() {
    let bad_keep = CommonArgs {
        keep: Some("ten".into()),
        ..Default::default()
    };
    let e = err(load(bad_keep, None, "", &[]));
    assert!(e.contains("--keep") && e.contains("\"ten\""), "{e}");

    let bad_env = CommonArgs {
        close_timeout: Some("soon".into()),
        ..Default::default()
    };
    let e = err(load(bad_env, None, "", &["--close-timeout"]));
    assert!(
        e.contains("FASTTRACK_CLOSE_TIMEOUT") && e.contains("30s"),
        "{e}"
    );

    let e = err(load(CommonArgs::default(), None, "quiet = \"0s\"", &[]));
    assert!(e.contains("quiet in /etc/fasttrack/fasttrack.toml"), "{e}");

    let e = err(load(
        CommonArgs::default(),
        None,
        "compression-level = 12",
        &[],
    ));
    assert!(
        e.contains("compression-level") && e.contains("1 (fastest)"),
        "{e}"
    );

    let e = err(load(
        CommonArgs::default(),
        None,
        "compression-threads = 0",
        &[],
    ));
    assert!(
        e.contains("compression-threads") && e.contains("from 1 to 256"),
        "{e}"
    );

    let e = err(load(
        CommonArgs::default(),
        None,
        "dest = \"file://relative\"",
        &[],
    ));
    assert!(e.contains("three slashes"), "{e}");

    let e = err(load(CommonArgs::default(), None, "dest = \"ftp://x\"", &[]));
    assert!(e.contains("file:///DIR"), "{e}");

    let e = err(load(
        CommonArgs::default(),
        None,
        "dest = \"s3://Logs_Prod\"",
        &[],
    ));
    assert!(e.contains("not a valid bucket name"), "{e}");

    let e = err(load(
        CommonArgs::default(),
        None,
        "part-size = \"1MiB\"",
        &[],
    ));
    assert!(
        e.contains("part-size in") && e.contains("5MiB to 5GiB"),
        "{e}"
    );

    let e = err(load(
        CommonArgs::default(),
        None,
        "sse-kms-key-id = \"k\"",
        &[],
    ));
    assert!(e.contains("--sse aws:kms"), "{e}");

    let e = err(load(
        CommonArgs::default(),
        None,
        "checksum = \"always\"",
        &[],
    ));
    assert!(e.contains("when-required"), "{e}");

    let e = err(load(
        CommonArgs::default(),
        None,
        "endpoint-url = \"localhost:9000\"",
        &[],
    ));
    assert!(e.contains("http://"), "{e}");

    let e = err(load(CommonArgs::default(), None, "host = \"a/b\"", &[]));
    assert!(e.contains("\"a/b\""), "{e}");
}

#[test]
fn s3_destinations_and_options() {
    let file = r#"
        dest = "s3://logs-prod/incidents/web/"
        part-size = "32MiB"
        upload-concurrency = 2
        sse = "aws:kms"
        sse-kms-key-id = "alias/logs"
        storage-class = "standard_ia"
        path-style = true
        checksum = "when-required"
    "#;
    let c = load(CommonArgs::default(), None, file, &[]).unwrap();
    let dest = c.dest.clone().unwrap();
    assert_eq!(
        dest,
        DestUrl::S3 {
            bucket: "logs-prod".into(),
            prefix: "incidents/web".into()
        }
    );
    assert_eq!(dest.to_string(), "s3://logs-prod/incidents/web");
    assert_eq!(
        dest.key(
            &c.key_template,
            "web1",
            "docker.log-5.gz",
            chrono::Utc::now()
        )
        .unwrap()
        .as_str(),
        "incidents/web/web1/docker.log-5.gz"
    );
    assert_eq!(c.s3.part_size, 32 << 20);
    assert_eq!(c.s3.upload_concurrency, 2);
    assert_eq!(
        c.s3.sse,
        Some(Sse::Kms {
            key_id: Some("alias/logs".into())
        })
    );
    assert_eq!(
        c.s3.storage_class.map(|c| c.name()).as_deref(),
        Some("STANDARD_IA")
    );
    assert!(c.s3.path_style);
    assert_eq!(c.s3.checksum, ChecksumMode::WhenRequired);
    assert_eq!(parse_size("5242880"), Some(5 << 20));
    assert_eq!(parse_size("16M"), Some(16 << 20));
    assert_eq!(parse_size("1 GiB"), Some(1 << 30));
    assert_eq!(parse_size("16 parsecs"), None);
    let plain = DestUrl::parse("s3://logs-prod").unwrap();
    let key = plain
        .key(&Default::default(), "h", "f", chrono::Utc::now())
        .unwrap();
    assert_eq!(key.as_str(), "h/f");
}

#[test]
fn the_packaged_example_is_valid_with_every_key_uncommented() {
    let example = include_str!("../../packaging/fasttrack.toml");
    let uncommented: String = example
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase()) => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let c = load(CommonArgs::default(), None, &uncommented, &[]).unwrap();
    assert!(c.incident.is_ignored(b"x GET /health y"));
    assert_eq!(c.incident.top, 10);
    let n = c.incident.notify.unwrap();
    assert_eq!(n.routes.len(), 1);
    assert_eq!(n.routes[0].name, "notify");
    assert_eq!(n.routes[0].redacted_url(), "https://hooks.slack.com");
    assert_eq!(n.link_expiry, MAX_LINK_EXPIRY);
    assert!(c.incident.select.is_match(b"\"GET / HTTP/1.1\" 502 12"));
}

#[test]
fn incident_settings_are_checked() {
    let e = err(load(CommonArgs::default(), None, "ignore = ['(']", &[]));
    assert!(
        e.contains(
            "ignore in /etc/fasttrack/fasttrack.toml \"(\" is not a valid regular expression"
        ),
        "{e}"
    );
    let e = err(load(
        CommonArgs::default(),
        None,
        "notify = 'hooks.slack.com/x'",
        &[],
    ));
    assert!(e.contains("is not an http:// or https:// URL"), "{e}");
    let e = err(load(
        CommonArgs::default(),
        None,
        "notify = 'https://h/x'\nnotify-link-expiry = '8d'",
        &[],
    ));
    assert!(e.contains("at most 7d"), "{e}");
    assert_eq!(
        redact_url("https://user:pw@hooks.example.com:8443/services/T/B/secret?x=1"),
        "https://hooks.example.com:8443"
    );
}

#[test]
fn the_link_profile_keeps_where_it_was_set_and_a_blank_one_unsets_it() {
    let notify = |file: &str, incident: IncidentArgs, env: &[&'static str]| {
        let origins = Origins {
            from_env: env.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let c = from_layers(
            &CommonArgs::default(),
            &S3Args::default(),
            &incident,
            None,
            &origins,
            &format!("notify = 'https://h/x'\n{file}"),
        );
        c.unwrap().incident.notify.unwrap().link_profile
    };
    assert_eq!(notify("", IncidentArgs::default(), &[]), None);
    assert_eq!(
        notify("link-profile = 'signer'", IncidentArgs::default(), &[]),
        Some(LinkProfile {
            name: "signer".into(),
            origin: "link-profile in /etc/fasttrack/fasttrack.toml".into()
        })
    );
    let flag = || IncidentArgs {
        link_profile: Some("links".into()),
        ..Default::default()
    };
    let from_env = notify("link-profile = 'signer'", flag(), &["--link-profile"]);
    assert_eq!(
        from_env.map(|p| (p.name, p.origin)),
        Some(("links".into(), "FASTTRACK_LINK_PROFILE".into()))
    );
    let blank = IncidentArgs {
        link_profile: Some(" ".into()),
        ..Default::default()
    };
    assert_eq!(notify("link-profile = 'signer'", blank, &[]), None);
}

#[test]
fn a_secret_on_the_command_line_is_refused_by_watch_and_warned_about_elsewhere() {
    let incident = IncidentArgs {
        notify: Some("https://hooks.slack.com/services/T/B/secret".into()),
        ..Default::default()
    };
    let common = CommonArgs::default();
    let s3 = S3Args::default();
    let from = |watch: Option<&WatchArgs>, origins: &Origins, file: &str| {
        from_layers(&common, &s3, &incident, watch, origins, file)
    };
    let on_argv = Origins {
        on_command_line: ["--notify".to_string()].into(),
        ..Default::default()
    };
    let e = err(from(Some(&WatchArgs::default()), &on_argv, ""));
    assert!(
        e.contains("--notify on the command line is refused by `fasttrack watch`")
            && e.contains(
                "set notify in /etc/fasttrack/fasttrack.toml (mode 0640) or FASTTRACK_NOTIFY"
            ),
        "{e}"
    );
    assert!(!e.contains("secret\""), "the secret is not repeated: {e}");

    let c = from(None, &on_argv, "").unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].contains("can be read by every local user"),
        "{:?}",
        c.warnings
    );
    assert!(c.secret_keys_in_file.is_empty());

    // From the environment (readable by its owner only), or from the file: no complaint.
    let from_env = Origins {
        from_env: ["--notify".to_string()].into(),
        ..Default::default()
    };
    let c = from(Some(&WatchArgs::default()), &from_env, "").unwrap();
    assert!(c.warnings.is_empty());
    let c = load(
        CommonArgs::default(),
        Some(WatchArgs::default()),
        "notify = 'https://h/x'",
        &[],
    )
    .unwrap();
    assert!(c.warnings.is_empty());
    assert_eq!(c.secret_keys_in_file, ["notify"]);
}

#[test]
fn unknown_keys_in_the_file_are_rejected_by_name() {
    let e = FileConfig::parse("quite = \"5s\"").unwrap_err();
    assert!(e.to_string().contains("quite"), "{e}");
}

#[test]
fn a_missing_explicit_file_is_an_error_and_a_missing_default_is_not() {
    let e = file::read(Some(Path::new("/nonexistent/fasttrack.toml"))).unwrap_err();
    assert!(e.downcast_ref::<ConfigError>().is_some());
    assert!(e.to_string().contains("/nonexistent/fasttrack.toml"));
}

#[test]
fn relative_paths_are_made_absolute() {
    let common = CommonArgs {
        state_dir: Some("state".into()),
        ..Default::default()
    };
    let c = load(common, None, "", &[]).unwrap();
    assert!(c.state_dir.is_absolute());
    assert!(c.state_dir.ends_with("state"));
}

#[test]
fn a_value_is_checked_only_where_it_is_used() {
    // The flag wins, so the file's bad value does not matter.
    let common = CommonArgs {
        keep: Some("3".into()),
        ..Default::default()
    };
    let c = load(common, None, "keep = -1", &[]).unwrap();
    assert_eq!(c.keep, 3);
    // The format of a webhook that is not set is not read.
    let c = load(CommonArgs::default(), None, "notify-format = 'xml'", &[]).unwrap();
    assert!(c.incident.notify.is_none());
}

#[test]
fn a_blank_flag_unsets_the_file_value() {
    let s3 = S3Args {
        sse: Some(" ".into()),
        region: Some("".into()),
        ..Default::default()
    };
    let file = "sse = 'AES256'\nregion = 'eu-west-1'";
    let (common, incident) = (CommonArgs::default(), IncidentArgs::default());
    let c = from_layers(&common, &s3, &incident, None, &Origins::default(), file).unwrap();
    assert_eq!(c.s3.sse, None);
    assert_eq!(c.s3.region, None);
    let c = from_layers(
        &common,
        &S3Args::default(),
        &incident,
        None,
        &Origins::default(),
        file,
    )
    .unwrap();
    assert_eq!(c.s3.sse, Some(Sse::Aes256));
    assert_eq!(c.s3.region.as_deref(), Some("eu-west-1"));
}

#[test]
fn cross_account_options_from_the_file() {
    let c = load(
        CommonArgs::default(),
        None,
        "acl = \"bucket-owner-full-control\"\nexpected-bucket-owner = \"111122223333\"\n\
         tag = [\"team=payments\", \"retention=90d\"]\ntag-incident = true\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        c.s3.acl.map(|a| a.name()),
        Some("bucket-owner-full-control".into())
    );
    assert_eq!(c.s3.expected_bucket_owner.as_deref(), Some("111122223333"));
    let tags: Vec<(&str, &str)> =
        c.s3.tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
    assert_eq!(tags, [("team", "payments"), ("retention", "90d")]);
    assert!(c.s3.tag_incident);
    let e = err(load(CommonArgs::default(), None, "tag = [\"x\"]\n", &[]));
    assert!(
        e.contains("tag in /etc/fasttrack/fasttrack.toml \"x\" is not KEY=VALUE"),
        "{e}"
    );
}
