use super::*;

fn snapshot() -> Snapshot {
    let mut counters = Counters {
        rotations: 3,
        shipped_files: 2,
        shipped_bytes: 1234,
        lines_read: 100,
        lines_not_5xx: 7,
        last_success: Some(1_764_700_000),
        last_rotation: Some(1_764_700_100),
        ..Counters::default()
    };
    counters.failures.permanent = 1;
    counters.failures.notify = 4;
    counters.last_cycle.set(Step::CloseWait, 0.25);
    counters.last_cycle.set(Step::Ship, 2.0);
    Snapshot {
        up: true,
        version: "1.2.3".into(),
        counters,
        pending_files: 1,
        pending_bytes: 4096,
        oldest_pending_age: 61.0,
        incident_open: true,
        incident_lines: 42,
        notifications_pending: 1,
    }
}

/// The sample lines of a rendered file, without the comments.
fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn every_metric_of_the_issue_is_rendered_with_its_value() {
    let text = render(&snapshot());
    let got = samples(&text);
    for want in [
        "fasttrack_up 1",
        "fasttrack_build_info{version=\"1.2.3\"} 1",
        "fasttrack_last_success_timestamp_seconds 1764700000",
        "fasttrack_last_rotation_timestamp_seconds 1764700100",
        "fasttrack_pending_files 1",
        "fasttrack_pending_bytes 4096",
        "fasttrack_oldest_pending_age_seconds 61",
        "fasttrack_rotations_total 3",
        "fasttrack_shipped_files_total 2",
        "fasttrack_shipped_bytes_total 1234",
        "fasttrack_failures_total{kind=\"temporary\"} 0",
        "fasttrack_failures_total{kind=\"permanent\"} 1",
        "fasttrack_failures_total{kind=\"reopen\"} 0",
        "fasttrack_failures_total{kind=\"compress\"} 0",
        "fasttrack_failures_total{kind=\"notify\"} 4",
        "fasttrack_incident_open 1",
        "fasttrack_incident_lines 42",
        "fasttrack_notifications_pending 1",
        "fasttrack_last_cycle_duration_seconds{step=\"rotate\"} 0",
        "fasttrack_last_cycle_duration_seconds{step=\"close_wait\"} 0.250",
        "fasttrack_last_cycle_duration_seconds{step=\"compress\"} 0",
        "fasttrack_last_cycle_duration_seconds{step=\"ship\"} 2",
        "fasttrack_lines_read_total 100",
        "fasttrack_lines_not_5xx_total 7",
    ] {
        assert!(got.contains(&want), "missing {want:?} in\n{text}");
    }
    assert_eq!(got.len(), 24, "{text}");
}

#[test]
fn each_family_has_help_and_type_before_its_samples_and_counters_end_in_total() {
    let text = render(&snapshot());
    let mut typed: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(kind == "gauge" || kind == "counter", "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            typed = Some((name.to_string(), kind.to_string()));
        } else if !line.starts_with("# HELP ") {
            let (name, _) = typed.as_ref().expect("a TYPE line first");
            let sample_name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(sample_name, name, "{line}");
        }
    }
}

#[test]
fn nothing_yet_renders_zeros_and_a_stopped_watch_is_down() {
    let text = render(&Snapshot {
        version: "0.1.0".into(),
        ..Snapshot::default()
    });
    let got = samples(&text);
    assert!(got.contains(&"fasttrack_up 0"), "{text}");
    assert!(got.contains(&"fasttrack_last_success_timestamp_seconds 0"));
    assert!(got.contains(&"fasttrack_failures_total{kind=\"notify\"} 0"));
    assert_eq!(got.len(), 24, "every series is present from the start");
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

#[test]
fn counters_add_up_timestamps_keep_the_latest_durations_the_newest() {
    let mut total = snapshot().counters;
    let mut change = Counters::failure(FailureKind::Permanent);
    change.rotations = 1;
    change.shipped_bytes = 6;
    change.last_success = Some(1);
    change.last_rotation = Some(1_764_800_000);
    change.last_cycle.set(Step::Ship, 0.5);
    total.absorb(&change);
    assert_eq!(total.rotations, 4);
    assert_eq!(total.shipped_bytes, 1240);
    assert_eq!(total.failures.permanent, 2);
    assert_eq!(total.failures.notify, 4);
    assert_eq!(
        total.last_success,
        Some(1_764_700_000),
        "an older one is ignored"
    );
    assert_eq!(total.last_rotation, Some(1_764_800_000));
    assert_eq!(total.last_cycle.get(Step::Ship), Some(0.5));
    assert_eq!(total.last_cycle.get(Step::CloseWait), Some(0.25), "kept");
    assert!(Counters::default().is_empty());
    assert!(!change.is_empty());
}

#[test]
fn concurrent_writers_lose_no_count() {
    let dir = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let change = Counters {
                        lines_read: 2,
                        ..Counters::failure(FailureKind::Notify)
                    };
                    store::add(&dir, &change).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let lock = store::lock(dir.path()).unwrap();
    let total = store::load(dir.path(), &lock).unwrap();
    assert_eq!((total.failures.notify, total.lines_read), (100, 200));
}

#[test]
fn a_damaged_counters_file_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(store::counters_path(dir.path()), "rotations = \"x\"").unwrap();
    let e = store::add(dir.path(), &Counters::failure(FailureKind::Reopen)).unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("counters.toml is damaged; move it away"), "{e}");
}
