//! Real Docker end to end: a private dockerd configured with the README's daemon.json (syslog
//! driver, its default format: no hostname), busybox containers printing numbered access-log
//! lines on stdout and stderr with 5xx bursts and a line longer than Docker's 16 KiB split, the
//! shipped syslog-ng snippet running `fasttrack watch`, and an S3 store (s3s-fs). Every line is
//! shipped or in the live log exactly once, in order per container and stream, and the bursts
//! are fast-tracked while the containers run. Skipped, loudly, where dockerd cannot run
//! (tests/util/docker.rs).

use crate::util::accounting::{self, numbers_by_source, per_source_problems};
use crate::util::docker::{readme_daemon_json, skip_or_fail, Dockerd, StartError};
use crate::util::s3::PREFIX;
use crate::util::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(90);
const CONTAINERS: [&str; 3] = ["shop-web", "shop-api", "payments"];
/// Rounds of normal traffic then a 5xx burst, each followed by a pause longer than `--quiet`.
const ROUNDS: u32 = 3;
const NORMAL: u32 = 50;
const BURST: u32 = 9;
const QUIET: &str = "500ms";
const PAUSE: &str = "1.5";
/// Longer than Docker's 16 KiB: its syslog driver sends it as two messages.
const LONG: usize = 22_000;

/// Every fifth normal line and every third burst line go to stderr.
fn on_stderr(j: u32, burst: bool) -> bool {
    if burst {
        j % 3 == 2
    } else {
        j % 5 == 4
    }
}

/// The busybox shell script of container `name`: it waits for `/start/now` (so that the
/// containers' bursts and pauses line up, whatever their start-up times), then `say STREAM
/// STATUS PATH` prints one numbered access line (`src=NAME/out n=K`, numbered per stream) on
/// stdout or stderr.
fn script(name: &str) -> String {
    let rule = |burst: bool| {
        if burst {
            "[ $((j % 3)) = 2 ]"
        } else {
            "[ $((j % 5)) = 4 ]"
        }
    };
    let (normal_rule, burst_rule) = (rule(false), rule(true));
    format!(
        r#"while [ ! -e /start/now ]; do sleep 0.05; done
o=0; e=0
say() {{
  if [ "$1" = out ]; then echo "10.1.0.7 - - \"GET $3 HTTP/1.1\" $2 17 src={name}/out n=$o"; o=$((o+1))
  else echo "10.1.0.7 - - \"GET $3 HTTP/1.1\" $2 17 src={name}/err n=$e" >&2; e=$((e+1)); fi
}}
r=0
while [ $r -lt {ROUNDS} ]; do
  j=0
  while [ $j -lt {NORMAL} ]; do
    if {normal_rule}; then say err 200 /api/items/$j; else say out 200 /api/items/$j; fi
    j=$((j+1))
  done
  if [ $r = 1 ]; then
    p="{name}-long/"
    while [ ${{#p}} -lt {LONG} ]; do p="$p$p"; done
    echo "10.1.0.7 - - \"GET /long HTTP/1.1\" 200 17 src={name}/out n=$o pad=$p"; o=$((o+1))
  fi
  j=0
  while [ $j -lt {BURST} ]; do
    if {burst_rule}; then say err 502 /checkout; else say out 502 /checkout; fi
    j=$((j+1))
  done
  sleep {PAUSE}
  r=$((r+1))
done
say out 200 /bye
"#
    )
}

/// The lines each source of container `name` prints, as the script counts them.
fn expected_counts(name: &str, counts: &mut BTreeMap<String, u64>) {
    let (mut out, mut err) = (0, 0);
    for round in 0..ROUNDS {
        for (n, burst) in [(NORMAL, false), (BURST, true)] {
            for j in 0..n {
                if on_stderr(j, burst) {
                    err += 1;
                } else {
                    out += 1;
                }
            }
            if round == 1 && !burst {
                out += 1; // the long line
            }
        }
    }
    out += 1; // bye
    counts.insert(format!("{name}/out"), out);
    counts.insert(format!("{name}/err"), err);
}

/// The long line as the container printed it: the pad doubled until it passes LONG.
fn long_line(name: &str, n: u64) -> String {
    let mut pad = format!("{name}-long/");
    while pad.len() < LONG {
        pad = format!("{pad}{pad}");
    }
    format!("10.1.0.7 - - \"GET /long HTTP/1.1\" 200 17 src={name}/out n={n} pad={pad}")
}

/// A line of docker.log as syslog-ng writes it (`DATE HOST docker/NAME[PID]: MESSAGE`): the
/// container and the message.
fn container_and_message(line: &str) -> Option<(&str, &str)> {
    let at = line.find(" docker/")? + 8;
    let end = at + line[at..].find("]: ")?;
    let name = line[at..end].split('[').next()?;
    Some((name, &line[end + 3..]))
}

/// True when nothing is in flight: no open incident, nothing pending, lock free.
fn settled(env: &TestEnv) -> bool {
    if env.state().join("incident").exists() {
        return false;
    }
    let out = env.run("status", &[]);
    out.status.code() == Some(0) && String::from_utf8_lossy(&out.stdout).contains("(idle)")
}

#[test]
fn the_readme_and_the_snippet_give_docker_the_same_daemon_json() {
    let snippet = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/syslog-ng/fasttrack.conf"
    ))
    .unwrap();
    let block: String = snippet
        .lines()
        .skip_while(|l| !l.contains("/etc/docker/daemon.json:"))
        .skip(1)
        .take_while(|l| l.starts_with("#    "))
        .map(|l| &l[1..])
        .collect();
    let from_snippet: serde_json::Value =
        serde_json::from_str(&block).expect("the snippet's daemon.json comment is valid JSON");
    assert_eq!(from_snippet, readme_daemon_json());
}

#[test]
fn containers_logging_as_the_readme_says_are_fast_tracked_and_shipped_exactly_once() {
    const TEST: &str =
        "docker::containers_logging_as_the_readme_says_are_fast_tracked_and_shipped_exactly_once";
    let test_started = Instant::now();
    let env = TestEnv::new_s3();
    // dockerd checks the syslog socket of its log-opts when it starts: before syslog-ng has
    // made it, dockerd refuses to start at all (README: start Docker after syslog-ng).
    match Dockerd::try_start(&env) {
        Err(StartError::Config(why)) => assert!(
            why.contains("failed to set log opts") && why.contains("docker-syslog.sock"),
            "{why}"
        ),
        Err(StartError::Machine(reason)) => return skip_or_fail(TEST, &reason),
        Ok(_) => panic!("dockerd started with its syslog socket missing"),
    }
    let sng = SyslogNg::start(&env, Some(&["--quiet", QUIET]));
    let docker_started = Instant::now();
    let Some(docker) = Dockerd::start(&env, TEST) else {
        return;
    };
    println!(
        "dockerd answered in {:?}, ready with its image in {:?} (test at {:?})",
        docker.started_in,
        docker_started.elapsed(),
        test_started.elapsed()
    );
    let dump = || {
        format!(
            "{}\n--- dockerd log:\n{}\n--- syslog-ng:\n{}",
            env.dump(),
            docker.log_tail(30),
            std::fs::read_to_string(env.path().join("syslog-ng.out")).unwrap_or_default()
        )
    };

    let start = env.path().join("start");
    std::fs::create_dir(&start).unwrap();
    let volume = format!("{}:/start:ro", start.display());
    for name in CONTAINERS {
        docker.run_detached(name, &["-v", &volume], &script(name));
    }
    let ran = Instant::now();
    std::fs::write(start.join("now"), "").unwrap();
    let codes = docker.wait(&CONTAINERS);
    println!("containers ran for {:?}", ran.elapsed());
    assert_eq!(codes, [0, 0, 0], "{}", dump());

    let mut expected = BTreeMap::new();
    for name in CONTAINERS {
        expected_counts(name, &mut expected);
    }
    let sent: u64 = expected.values().sum();
    env.wait_for("every container line in docker.log", WAIT, || {
        numbers_by_source(&env.all_lines())
            .values()
            .map(|v| v.len() as u64)
            .sum::<u64>()
            >= sent
    });
    env.wait_for("fasttrack to settle", WAIT, || settled(&env));

    // Exactly once, in order per container and stream.
    let lines = env.all_lines();
    if let Some(line) = lines.iter().find(|l| l.contains("/err n=0")) {
        println!("as written to docker.log: {line}");
    }
    let problems = per_source_problems(&numbers_by_source(&lines), &expected);
    assert!(problems.is_empty(), "{problems:#?}\n{}", dump());

    // The long line arrived as Docker split it, one message per 16 KiB, and nothing is lost in
    // between: its parts, in order, are the line.
    for name in CONTAINERS {
        let messages: Vec<&str> = lines
            .iter()
            .filter_map(|l| container_and_message(l))
            .filter(|(c, _)| *c == name)
            .map(|(_, m)| m)
            .collect();
        let first = messages
            .iter()
            .position(|m| m.contains("\"GET /long "))
            .unwrap_or_else(|| panic!("no long line from {name}\n{}", dump()));
        let n = numbers_by_source(&[messages[first].to_string()])[&format!("{name}/out")][0];
        let parts: Vec<&str> = messages[first..]
            .iter()
            .enumerate()
            .filter(|(i, m)| *i == 0 || !m.contains(" src="))
            .take_while(|(_, m)| m.contains(&format!("{name}-long/")))
            .map(|(_, m)| *m)
            .collect();
        assert!(
            parts.len() >= 2 && parts[0].len() == 16 * 1024,
            "Docker split the {} bytes line of {name} into {:?} bytes",
            long_line(name, n).len(),
            parts.iter().map(|p| p.len()).collect::<Vec<_>>()
        );
        assert_eq!(parts.concat(), long_line(name, n), "{name}");
    }

    // Every object is whole and matches its metadata, its digest beside it.
    let acc = accounting::account(&env, 0);
    assert!(
        acc.problems.is_empty() && acc.partial == 0 && acc.left_local == 0,
        "{acc:?}\n{}",
        dump()
    );

    // Fast-tracked while the containers ran: each container's lines are in more than one file.
    let mut files: Vec<BTreeSet<String>> = env
        .shipped()
        .iter()
        .map(|o| {
            gunzip_lines(&o.body)
                .iter()
                .filter_map(|l| container_and_message(l).map(|(c, _)| c.to_string()))
                .collect()
        })
        .collect();
    files.push(
        std::fs::read_to_string(env.log())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| container_and_message(l).map(|(c, _)| c.to_string()))
            .collect(),
    );
    for name in CONTAINERS {
        let spans = files.iter().filter(|f| f.contains(name)).count();
        assert!(
            spans >= 2,
            "{name}'s lines are all in one file: no rotation while it ran\n{}",
            dump()
        );
    }

    // Every 502 line reached fasttrack through the snippet's filter (stdout and stderr alike),
    // and the digests name each container as Docker tagged it.
    let digests: Vec<serde_json::Value> = env
        .server()
        .download(&format!("{PREFIX}/{HOST}/"))
        .iter()
        .filter(|o| o.key.ends_with(".json"))
        .map(|o| serde_json::from_slice(&o.body).unwrap())
        .collect();
    let incident_lines: u64 = digests.iter().map(|d| d["lines"].as_u64().unwrap()).sum();
    let bursts = u64::from(ROUNDS * BURST) * CONTAINERS.len() as u64;
    assert_eq!(incident_lines, bursts, "{digests:#?}");
    let statuses: BTreeSet<String> = digests
        .iter()
        .flat_map(|d| d["statuses"].as_object().unwrap().keys().cloned())
        .collect();
    assert_eq!(
        statuses,
        BTreeSet::from(["502".to_string()]),
        "{digests:#?}"
    );
    let programs: BTreeSet<String> = digests
        .iter()
        .flat_map(|d| d["programs"].as_array().unwrap().iter())
        .map(|p| p["key"].as_str().unwrap().to_string())
        .collect();
    let tagged: BTreeSet<String> = CONTAINERS.iter().map(|c| format!("docker/{c}")).collect();
    assert_eq!(programs, tagged, "{digests:#?}");
    println!(
        "{sent} lines from {} containers, {} objects shipped, {incident_lines} incident lines; test took {:?}",
        CONTAINERS.len(),
        env.shipped().len(),
        test_started.elapsed()
    );
    drop(sng);
}
