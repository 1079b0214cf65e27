//! The reliability suite: fasttrack under volume and under every fault one machine can
//! produce, each run ending with an exact accounting of the lines (every line sent found
//! exactly once, in order, in the shipped objects then the live log; no partial object).
//!
//! The soak (`soak_*`) runs a real syslog-ng, real `fasttrack watch` children and a real
//! s3s-fs behind a fault-injecting proxy, with steady traffic plus 5xx bursts so that a
//! rotation happens every few seconds, and injects the live faults at random moments.
//! CI runs it for one minute; `scripts/soak.sh --minutes N` runs the ignored `soak` for longer.
//! Every test appends its row of RELIABILITY.md's table to `$FASTTRACK_RELIABILITY_REPORT`.

use crate::util::accounting::{account, hex, seqs_in, Accounting};
use crate::util::s3::{Fault, Proxy};
use crate::util::*;
use nix::sys::signal::Signal;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(180);

/// The faults injected into a running soak (fault matrix items 2, 3, 4, 6 and 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LiveFault {
    /// kill -9 of `fasttrack watch` at a random moment (syslog-ng restarts it).
    Kill,
    /// kill -9 of `fasttrack watch` while it holds the lock: in the middle of a cycle.
    KillInCycle,
    /// `syslog-ng-ctl reload`: watch is SIGTERMed and replaced.
    Reload,
    /// SIGHUP to syslog-ng: the same through the signal.
    Hup,
    /// The S3 server stopped for a few seconds, then restarted.
    S3Down,
    /// Every request answered 503 SlowDown for a few seconds.
    SlowDown,
    /// Every connection reset for a few seconds, uploads in progress included.
    Reset,
    /// `fasttrack rotate` by hand in a loop for a few seconds, concurrently with watch.
    HandRotate,
    /// docker.log's mtime set into the future or the past, then a rotation.
    Clock,
}

impl LiveFault {
    const ALL: [LiveFault; 9] = [
        LiveFault::Kill,
        LiveFault::KillInCycle,
        LiveFault::Reload,
        LiveFault::Hup,
        LiveFault::S3Down,
        LiveFault::SlowDown,
        LiveFault::Reset,
        LiveFault::HandRotate,
        LiveFault::Clock,
    ];

    fn name(self) -> &'static str {
        match self {
            LiveFault::Kill => "kill",
            LiveFault::KillInCycle => "kill-in-cycle",
            LiveFault::Reload => "reload",
            LiveFault::Hup => "hup",
            LiveFault::S3Down => "s3-down",
            LiveFault::SlowDown => "slowdown",
            LiveFault::Reset => "reset",
            LiveFault::HandRotate => "hand-rotate",
            LiveFault::Clock => "clock",
        }
    }

    /// The fault matrix row this fault belongs to.
    fn row(self) -> &'static str {
        match self {
            LiveFault::Kill => "2. kill -9 of watch at random moments",
            LiveFault::KillInCycle => "2. kill -9 of watch in the middle of a cycle",
            LiveFault::Reload => "3. syslog-ng-ctl reload, half of them during a rotation",
            LiveFault::Hup => "3. SIGHUP to syslog-ng, half of them during a rotation",
            LiveFault::S3Down => "4. S3 server stopped, then restarted",
            LiveFault::SlowDown => "4. S3 answering 503 SlowDown",
            LiveFault::Reset => "4. connections reset, mid-upload too",
            LiveFault::HandRotate => "6. fasttrack rotate by hand in a loop, with watch",
            LiveFault::Clock => "7. docker.log's mtime moved back (and forward) before a rotation",
        }
    }

    fn parse_list(text: &str) -> Vec<LiveFault> {
        match text.trim() {
            "all" => return Self::ALL.to_vec(),
            "none" => return Vec::new(),
            _ => {}
        }
        text.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                Self::ALL
                    .into_iter()
                    .find(|f| f.name() == s.trim())
                    .unwrap_or_else(|| {
                        panic!(
                            "FASTTRACK_SOAK_FAULTS: unknown fault {s:?}; use `all`, `none` or some of {:?}",
                            Self::ALL.map(|f| f.name())
                        )
                    })
            })
            .collect()
    }
}

struct Plan {
    duration: Duration,
    /// Lines per second, steady.
    rate: u64,
    /// A burst of 5xx lines opens every this many seconds; `--quiet 1s` rotates after each.
    burst_every: u64,
    /// `watch`'s `--part-size` (the default when `None`): with logs of at least twice this,
    /// each rotated log is uploaded while it is compressed.
    part_size: Option<String>,
    faults: Vec<LiveFault>,
    seed: u64,
    /// The row's label in the report.
    label: String,
    command: String,
}

/// Sends `rate` lines per second to syslog-ng from its own thread: `BURST` 5xx lines at the
/// start of every `burst_every` seconds of traffic, 200s otherwise.
struct Generator {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    /// The longest single write into syslog-ng's socket, in microseconds.
    longest_write_us: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const BURST: u64 = 20;

impl Generator {
    fn start(sng: Arc<Mutex<SyslogNg>>, rate: u64, burst_every: u64) -> Generator {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let longest = Arc::new(AtomicU64::new(0));
        let (s, n, l) = (stop.clone(), sent.clone(), longest.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let period = rate * burst_every;
            let mut seq = 0u64;
            let mut batch = String::new();
            while !s.load(Ordering::Relaxed) {
                let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
                batch.clear();
                // At most one second of traffic per write: catching up after a pause is a burst.
                while seq < due && batch.len() < (rate as usize) * 100 {
                    let status = if seq % period < BURST { 502 } else { 200 };
                    batch.push_str(&docker_line(seq, status));
                    seq += 1;
                }
                if !batch.is_empty() {
                    let mut sng = sng.lock().unwrap();
                    let t = Instant::now();
                    sng.send(&batch);
                    l.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    n.store(seq, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Generator {
            stop,
            sent,
            longest_write_us: longest,
            thread: Some(thread),
        }
    }

    /// Stops and returns the number of lines sent (0..n).
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.sent.load(Ordering::Relaxed)
    }
}

/// One row of RELIABILITY.md's table, appended (tab-separated) to
/// `$FASTTRACK_RELIABILITY_REPORT` when set, and printed.
struct Row<'a> {
    fault: &'a str,
    done: String,
    times: String,
    acc: &'a Accounting,
    result: String,
    command: &'a str,
}

fn report(row: Row) {
    let fields = [
        row.fault.to_string(),
        row.done,
        row.times,
        row.acc.sent.to_string(),
        row.acc.found.to_string(),
        row.acc.duplicates.to_string(),
        row.acc.partial.to_string(),
        row.result,
        row.command.to_string(),
    ];
    let line = fields.map(|f| f.replace(['\t', '\n'], " ")).join("\t");
    eprintln!("RELIABILITY\t{line}");
    if let Ok(path) = std::env::var("FASTTRACK_RELIABILITY_REPORT") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot append to {path}: {e}"));
        writeln!(f, "{line}").unwrap();
    }
}

/// Asserts the accounting, with everything needed to understand a failure.
fn assert_accounted(env: &TestEnv, acc: &Accounting, what: &str) {
    assert!(
        acc.ok(),
        "{what}: sent {} found {} missing {} duplicated {} partial {} in order {} left local {}\n{:?}\n{}",
        acc.sent,
        acc.found,
        acc.missing,
        acc.duplicates,
        acc.partial,
        acc.in_order,
        acc.left_local,
        acc.problems,
        env.dump()
    );
}

/// True when nothing is in flight: no open incident, nothing pending, the lock free.
fn settled(env: &TestEnv) -> bool {
    if env.state().join("incident").exists() {
        return false;
    }
    let out = env.run("status", &[]);
    out.status.code() == Some(0) && String::from_utf8_lossy(&out.stdout).contains("(idle)")
}

/// `fasttrack rotate` by hand: counts its exit code; anything but 0 (done) or 3 (pending
/// during an S3 fault) is a failure of the run.
fn rotate_by_hand(
    env: &TestEnv,
    what: &str,
    exits: &mut BTreeMap<i32, u64>,
    failures: &mut Vec<String>,
) {
    let out = env.run("rotate", &[]);
    let code = out.status.code().unwrap_or(-1);
    *exits.entry(code).or_default() += 1;
    if code != 0 && code != 3 {
        failures.push(format!(
            "fasttrack rotate{what} exited {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
}

/// Waits (up to 10 s) for a cycle to take the state lock, then a few ms into it; true if
/// the lock is still held then: the fault lands in the middle of a rotation or upload.
fn in_cycle(env: &TestEnv, rng: &mut Rng) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lock_held(env) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(rng.millis(0, 40));
    lock_held(env)
}

/// Whether the state lock is held right now (by whoever).
fn lock_held(env: &TestEnv) -> bool {
    let Ok(file) = std::fs::File::open(env.state().join("lock")) else {
        return false;
    };
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock).is_err()
}

fn run_soak(plan: &Plan) {
    let mut env = TestEnv::new_s3();
    let proxy = Proxy::start(env.server().port, vec![], None);
    env.endpoint = Some(proxy.endpoint());
    let mut watch_args = vec!["--quiet", "1s", "--retry-max-delay", "2s"];
    if let Some(size) = &plan.part_size {
        watch_args.extend(["--part-size", size.as_str()]);
    }
    let sng = Arc::new(Mutex::new(SyslogNg::start(&env, Some(&watch_args))));
    let mut rng = Rng::new(plan.seed);
    eprintln!(
        "soak {}: {:?} at {} lines/s, faults {:?}, seed {} (FASTTRACK_SOAK_SEED), dir {}",
        plan.label,
        plan.duration,
        plan.rate,
        plan.faults.iter().map(|f| f.name()).collect::<Vec<_>>(),
        plan.seed,
        env.path().display()
    );
    let generator = Generator::start(sng.clone(), plan.rate, plan.burst_every);
    let started = Instant::now();
    let mut injected: BTreeMap<LiveFault, u64> = BTreeMap::new();
    let mut during_cycle: BTreeMap<LiveFault, u64> = BTreeMap::new();
    let mut rotate_exits: BTreeMap<i32, u64> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    // Rounds of every fault asked for, each round in a random order, at random moments.
    let mut round: Vec<LiveFault> = Vec::new();
    if plan.faults.is_empty() {
        std::thread::sleep(plan.duration);
    }
    while started.elapsed() < plan.duration && !plan.faults.is_empty() {
        std::thread::sleep(rng.millis(300, 2000));
        if started.elapsed() >= plan.duration {
            break;
        }
        if round.is_empty() {
            round = plan.faults.clone();
            for i in (1..round.len()).rev() {
                round.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        let fault = round.pop().unwrap();
        let hold = rng.millis(1000, 4000);
        let done = match fault {
            LiveFault::Kill => {
                let pid = sng.lock().unwrap().watch_pid();
                pid.map(|p| signal(p, Signal::SIGKILL)).is_some()
            }
            LiveFault::KillInCycle => {
                let pid = sng.lock().unwrap().watch_pid();
                in_cycle(&env, &mut rng) && pid.map(|p| signal(p, Signal::SIGKILL)).is_some()
            }
            LiveFault::Reload | LiveFault::Hup => {
                // Half of them aimed at a rotation in progress, half at random moments.
                if rng.below(2) == 0 && in_cycle(&env, &mut rng) {
                    *during_cycle.entry(fault).or_default() += 1;
                }
                if fault == LiveFault::Reload {
                    sng.lock().unwrap().ctl(&env, &["reload"]);
                } else {
                    signal(sng.lock().unwrap().pid(), Signal::SIGHUP);
                }
                true
            }
            LiveFault::S3Down => {
                env.server_mut().stop();
                std::thread::sleep(hold);
                env.server_mut().restart();
                true
            }
            LiveFault::SlowDown | LiveFault::Reset => {
                proxy.set_mode(Some(if fault == LiveFault::SlowDown {
                    Fault::SlowDown
                } else {
                    Fault::Reset
                }));
                std::thread::sleep(hold);
                proxy.set_mode(None);
                true
            }
            LiveFault::HandRotate => {
                let until = Instant::now() + hold;
                while Instant::now() < until {
                    rotate_by_hand(&env, "", &mut rotate_exits, &mut failures);
                }
                true
            }
            LiveFault::Clock => {
                // Traffic paused (the generator waits for syslog-ng's handle) so that nothing
                // touches docker.log between the faked clock and the rotation.
                let _paused = sng.lock().unwrap();
                std::thread::sleep(Duration::from_millis(200));
                let date = match rng.below(3) {
                    0 => format!("@{}", unix_now() + 60 + rng.below(600)),
                    1 => format!("@{}", unix_now() - 3600 - rng.below(86_400)),
                    _ => "@0".to_string(),
                };
                let touched = std::process::Command::new("touch")
                    .args(["-d", &date])
                    .arg(env.log())
                    .status()
                    .unwrap();
                assert!(touched.success());
                let what = format!(" (mtime {date})");
                rotate_by_hand(&env, &what, &mut rotate_exits, &mut failures);
                true
            }
        };
        if done {
            *injected.entry(fault).or_default() += 1;
        }
    }
    let load_time = started.elapsed();
    let longest_write_us = generator.longest_write_us.clone();
    let sent = generator.stop();
    let longest_write = Duration::from_micros(longest_write_us.load(Ordering::Relaxed));
    proxy.set_mode(None);
    env.wait_for("a watch to be running", SETTLE, || {
        sng.lock().unwrap().watch_pid().is_some()
    });
    env.wait_for("fasttrack to settle after the soak", SETTLE, || {
        settled(&env)
    });
    let dropped = sng.lock().unwrap().dropped(&env);
    let acc = account(&env, sent);
    let rotations = acc.objects;
    let times = injected
        .iter()
        .map(|(f, n)| match during_cycle.get(f) {
            Some(c) => format!("{} {n} ({c} during a rotation)", f.name()),
            None => format!("{} {n}", f.name()),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let dropped_docker: u64 = dropped
        .iter()
        .filter(|(n, _)| n == "d_docker")
        .map(|(_, v)| v)
        .sum();
    let result = if acc.ok() && failures.is_empty() {
        "pass".to_string()
    } else {
        "FAIL".to_string()
    };
    // Logs large enough are uploaded while compressed: how many were (fasttrack's own log).
    let streamed = std::fs::read_to_string(env.log_file())
        .unwrap_or_default()
        .matches("uploaded while compressed")
        .count();
    if plan.part_size.is_some() {
        assert!(
            streamed > 0,
            "no log was uploaded while compressed\n{}",
            env.dump()
        );
    }
    report(Row {
        fault: &plan.label,
        done: format!(
            "{:.0} s at {} lines/s, a 5xx burst every {} s: {} objects shipped{}; {}syslog-ng dropped {}; \
             longest write into syslog-ng {:.1} ms; seed {}",
            load_time.as_secs_f64(),
            plan.rate,
            plan.burst_every,
            rotations,
            if plan.part_size.is_some() {
                format!(" ({streamed} uploaded while compressed)")
            } else {
                String::new()
            },
            rotate_exits
                .iter()
                .map(|(code, n)| format!("rotate by hand exit {code}: {n}; "))
                .collect::<String>(),
            dropped
                .iter()
                .map(|(d, n)| format!("{d} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            longest_write.as_secs_f64() * 1000.0,
            plan.seed
        ),
        times: if times.is_empty() {
            "-".into()
        } else {
            times
        },
        acc: &acc,
        result,
        command: &plan.command,
    });
    assert!(failures.is_empty(), "{failures:#?}\n{}", env.dump());
    assert_eq!(dropped_docker, 0, "syslog-ng dropped docker.log lines");
    assert_accounted(&env, &acc, &plan.label);
    for fault in &plan.faults {
        // Every fault asked for happened at least once (a run too short to show it proves nothing).
        if plan.duration >= Duration::from_secs(60) {
            assert!(
                injected.contains_key(fault),
                "{} was never injected in {:?} (seed {})",
                fault.name(),
                plan.duration,
                plan.seed
            );
        }
    }
    assert!(
        rotations as f64 >= load_time.as_secs_f64() / plan.burst_every as f64 * 0.5,
        "only {rotations} rotations in {load_time:?}\n{}",
        env.dump()
    );
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Fault matrix items 1-4, 6 and 7 together, for one minute (CI's part of the soak).
#[test]
fn soak_one_minute_at_5000_lines_per_second_with_every_live_fault() {
    run_soak(&Plan {
        duration: Duration::from_secs(60),
        rate: 5000,
        burst_every: 3,
        part_size: None,
        faults: LiveFault::ALL.to_vec(),
        seed: seed_from_env("FASTTRACK_SOAK_SEED"),
        label: "1-4, 6, 7 together (CI)".into(),
        command: "cargo test --test integration soak_one_minute".into(),
    });
}

/// The long soak: `scripts/soak.sh --minutes N [--faults LIST] [--rate N] [--seed N]`.
#[test]
#[ignore = "long: run by scripts/soak.sh"]
fn soak() {
    let env_or = |name: &str, default: &str| std::env::var(name).unwrap_or(default.to_string());
    let minutes: f64 = env_or("FASTTRACK_SOAK_MINUTES", "10")
        .parse()
        .expect("FASTTRACK_SOAK_MINUTES: a number of minutes");
    let rate: u64 = env_or("FASTTRACK_SOAK_RATE", "5000")
        .parse()
        .expect("FASTTRACK_SOAK_RATE: lines per second");
    let faults_text = env_or("FASTTRACK_SOAK_FAULTS", "all");
    let faults = LiveFault::parse_list(&faults_text);
    let seed = seed_from_env("FASTTRACK_SOAK_SEED");
    let burst_every: u64 = env_or("FASTTRACK_SOAK_BURST_EVERY", "3")
        .parse()
        .expect("FASTTRACK_SOAK_BURST_EVERY: seconds between 5xx bursts");
    let part_size = std::env::var("FASTTRACK_SOAK_PART_SIZE").ok();
    let label = match faults.as_slice() {
        [] => "1. load alone".to_string(),
        [one] => one.row().to_string(),
        _ if faults.len() == LiveFault::ALL.len() => "all of 1-4, 6, 7 at once".to_string(),
        _ => format!("together: {faults_text}"),
    };
    let streamed = match &part_size {
        Some(size) => format!(" --burst-every {burst_every} --part-size {size}"),
        None if burst_every != 3 => format!(" --burst-every {burst_every}"),
        None => String::new(),
    };
    let label = match &part_size {
        Some(size) => format!("{label}, uploaded while compressed ({size} parts)"),
        None => label,
    };
    run_soak(&Plan {
        duration: Duration::from_secs_f64(minutes * 60.0),
        rate,
        burst_every,
        part_size,
        label,
        command: format!(
            "scripts/soak.sh --minutes {minutes} --rate {rate} --faults {faults_text}{streamed} --seed {seed}"
        ),
        faults,
        seed,
    });
}

/// A size-limited tmpfs mounted over `dir` for one test (root only), lazily unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs on {} to fill it ({}); the reliability tests run as root, \
             as the README test command does",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(dir.to_path_buf())
    }

    fn available(&self) -> u64 {
        let st = nix::sys::statvfs::statvfs(&self.0).unwrap();
        st.blocks_available() as u64 * st.fragment_size() as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A docker line that gzip cannot shrink much (a hash of its number as payload).
fn incompressible_line(seq: u64, status: u16) -> String {
    let h = hex(&Sha256::digest(seq.to_le_bytes()));
    format!("<14>Nov 21 12:00:00 docker/web-1[42]: GET /api/orders?seq={seq}&token={h} HTTP/1.1\" {status} 17\n")
}

fn log_text(env: &TestEnv) -> String {
    std::fs::read_to_string(env.log_file()).unwrap_or_default()
}

/// Fault 5: the disk where rotated files are written fills up during a fast-track.
#[test]
fn a_full_disk_keeps_everything_says_so_and_resumes_when_space_returns() {
    let env = TestEnv::new();
    let disk = Tmpfs::mount(&env.logs_dir(), "4m");
    let mut sng = SyslogNg::start(&env, Some(&["--quiet", "1s", "--retry-max-delay", "1s"]));
    let mut seq = 0;
    let mut send = |sng: &mut SyslogNg, n: u64, status: u16| {
        let batch: String = (seq..seq + n)
            .map(|s| incompressible_line(s, status))
            .collect();
        sng.send(&batch);
        seq += n;
    };
    send(&mut sng, 8000, 200);
    env.wait_for("syslog-ng to write the traffic", SETTLE, || {
        seqs(&env.all_lines()).len() == 8000
    });
    // Leave less room than the compressed log needs, but enough for syslog-ng's next lines.
    let ballast = env.logs_dir().join("ballast");
    let room = 200 * 1024;
    std::fs::write(&ballast, vec![0u8; (disk.available() - room) as usize]).unwrap();
    send(&mut sng, 20, 503);
    env.wait_for("the compression to fail for lack of space", SETTLE, || {
        log_text(&env).contains("no space left to compress")
    });
    send(&mut sng, 200, 200);

    // By hand too: a clear error that names the file and says what to do, exit 1.
    let out = env.run("rotate", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}\n{}", env.dump());
    assert!(
        stderr.contains("no space left to compress")
            && stderr.contains("docker.log-")
            && stderr.contains("free space in"),
        "{stderr}"
    );
    eprintln!("rotate by hand on a full disk: {stderr}");
    // Nothing deleted, nothing half-written left: the rotated log is whole.
    let rotated: Vec<String> = std::fs::read_dir(env.logs_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("docker.log-") && !n.ends_with(".json"))
        .collect();
    assert_eq!(rotated.len(), 1, "{rotated:?}\n{}", env.dump());
    assert!(!rotated[0].ends_with(".gz") && !rotated[0].contains(".part"));
    let kept = std::fs::read(env.logs_dir().join(&rotated[0])).unwrap();
    let mut in_rotated = Vec::new();
    seqs_in(&kept, &mut in_rotated);
    assert_eq!(in_rotated, (0..8020).collect::<Vec<_>>());
    let status = env.run("status", &[]);
    let status_text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(status.status.code(), Some(3), "{status_text}");
    assert!(status_text.contains("no space left"), "{status_text}");
    assert!(env.shipped().is_empty());
    let failed_attempts = log_text(&env).matches("no space left to compress").count();

    // Space returns: the kept log is compressed and shipped, and fast-tracking goes on.
    std::fs::remove_file(&ballast).unwrap();
    env.wait_for("the kept log to be shipped", SETTLE, || {
        !env.shipped().is_empty()
    });
    env.wait_for("fasttrack to settle", SETTLE, || settled(&env));
    send(&mut sng, 10, 500);
    env.wait_for("the next incident to be shipped", SETTLE, || {
        env.shipped().len() >= 2 && settled(&env)
    });
    let sent = seq;
    env.wait_for("syslog-ng to write every line", SETTLE, || {
        seqs(&env.all_lines()).len() as u64 >= sent
    });
    let acc = account(&env, sent);
    report(Row {
        fault: "5. disk full where rotated files are written",
        done: format!(
            "docker.log's directory a 4 MiB tmpfs, filled but {} KiB while a 1.1 MB log was rotated; \
             `fasttrack rotate` by hand meanwhile (exit 1, names the file, says free space); ballast removed",
            room / 1024
        ),
        times: format!("{failed_attempts} failed compressions, then shipped"),
        acc: &acc,
        result: if acc.ok() { "pass" } else { "FAIL" }.into(),
        command: "cargo test --test integration a_full_disk",
    });
    assert_accounted(&env, &acc, "full disk");
    drop(sng);
    drop(disk);
}

/// Fault 8: what syslog-ng could never send but a broken pipe or a bug could: lines of 10 MB,
/// 50 MB without a newline, NULs and invalid UTF-8, then a flood of short 5xx lines.
#[test]
fn hostile_stdin_is_drained_counted_and_fast_tracked_with_bounded_memory() {
    let env = TestEnv::new();
    let body: String = (0..1000).map(|s| docker_line(s, 200)).collect();
    std::fs::write(env.log(), body).unwrap();
    let mut child = env.spawn_watch(&["--quiet", "1s", "--reopen", "none"]);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut newlines = 0u64;
    // Three lines of 10 MB each, with a 5xx status inside.
    let mut long = vec![b'x'; 10 << 20];
    long[5000..5020].copy_from_slice(b" HTTP/1.1\" 500 12   ");
    *long.last_mut().unwrap() = b'\n';
    for _ in 0..3 {
        stdin.write_all(&long).unwrap();
        newlines += 1;
    }
    // 50 MB without a newline, then NULs and invalid UTF-8.
    let chunk = vec![b'y'; 1 << 20];
    for _ in 0..50 {
        stdin.write_all(&chunk).unwrap();
    }
    stdin
        .write_all(b"\0\0\xff\xfe\xc3\x28 HTTP/1.1 500 \n\0\n")
        .unwrap();
    newlines += 2;
    // The flood: 3 x 1 M lines, as fast as the pipe takes them.
    let flood: Vec<u8> =
        b"Nov 21 12:00:00 web1 docker/web-1[42]: GET / HTTP/1.1\" 503 1\n".repeat(1 << 20);
    let started = Instant::now();
    for _ in 0..3 {
        stdin.write_all(&flood).unwrap();
        newlines += 1 << 20;
    }
    let flood_secs = started.elapsed().as_secs_f64();
    stdin.flush().unwrap();
    env.wait_for("the log to be shipped", SETTLE, || env.shipped().len() == 1);
    let peak_kib = peak_rss_kib(pid);
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    // Every newline was read: the counts the fast-tracks logged add up to what was written.
    let log = log_text(&env);
    let counted: u64 = log
        .lines()
        .filter_map(|l| l.split("fast-tracking: ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(log.contains("stdin closed"), "{log}");
    let acc = account(&env, 1000);
    let rate = (3 << 20) as f64 / flood_secs;
    report(Row {
        fault: "8. hostile stdin",
        done: format!(
            "3 lines of 10 MB, 50 MB without a newline, NULs and invalid UTF-8, then 3 M lines \
             written as fast as the pipe took them: {:.2} M lines/s; watch's peak RSS {} MiB; \
             lines counted by watch {counted} of {newlines}",
            rate / 1e6,
            peak_kib / 1024
        ),
        times: "1 run, 1 fast-track".into(),
        acc: &acc,
        result: if acc.ok() && counted == newlines && peak_kib < 32 * 1024 {
            "pass"
        } else {
            "FAIL"
        }
        .into(),
        command: "cargo test --test integration hostile_stdin",
    });
    assert_eq!(counted, newlines, "{log}");
    assert!(
        peak_kib > 0 && peak_kib < 32 * 1024,
        "peak RSS {peak_kib} KiB"
    );
    assert_accounted(&env, &acc, "hostile stdin");
}

/// Fault 9: what an admin's mistake or another user could leave where fasttrack works.
#[test]
fn hostile_files_are_refused_with_a_clear_error_and_never_followed() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let stderr_of = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let mut cases = 0;
    let mut refuse = |what: &str, extra: &[&str], expect: &str| {
        let out = env.run("rotate", &[&["--reopen", "none"], extra].concat());
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(expect),
            "{what}: {}",
            stderr_of(&out)
        );
        cases += 1;
    };

    // docker.log a symlink to a file that must not move: refused by rotate and by watch.
    let precious = env.path().join("precious");
    std::fs::write(&precious, "do not move me\n").unwrap();
    std::os::unix::fs::symlink(&precious, env.log()).unwrap();
    refuse("symlink", &[], "it is a symbolic link");
    let mut watch = env.spawn_watch(&["--quiet", "300ms", "--reopen", "none"]);
    watch
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"GET / HTTP/1.1\" 500 1\n")
        .unwrap();
    env.wait_for("watch to refuse the symlink", SETTLE, || {
        log_text(&env).contains("refusing to rotate")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(watch.try_wait().unwrap().is_none(), "watch keeps running");
    signal(watch.id(), Signal::SIGTERM);
    assert_eq!(watch.wait().unwrap().code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "do not move me\n"
    );
    assert!(std::fs::symlink_metadata(env.log())
        .unwrap()
        .file_type()
        .is_symlink());
    std::fs::remove_file(env.log()).unwrap();

    // A directory, then a FIFO (never opened: that would hang).
    std::fs::create_dir(env.log()).unwrap();
    refuse("directory", &[], "it is a directory");
    std::fs::remove_dir(env.log()).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(env.log())
        .status()
        .unwrap();
    assert!(made.success());
    refuse("fifo", &[], "it is a FIFO");
    std::fs::remove_file(env.log()).unwrap();

    // State dirs that cannot be trusted: a symlink, writable by everyone, another user's.
    let body = |from: u64, to: u64| -> String { (from..to).map(|s| docker_line(s, 200)).collect() };
    let touch = |path: &std::path::Path, date: &str| {
        let touched = std::process::Command::new("touch")
            .args(["-d", date])
            .arg(path)
            .status()
            .unwrap();
        assert!(touched.success());
    };
    std::fs::write(env.log(), body(10, 20)).unwrap();
    touch(&env.log(), "@2000000000");
    let real_state = env.path().join("real-state");
    std::fs::create_dir(&real_state).unwrap();
    let linked = env.path().join("linked-state");
    std::os::unix::fs::symlink(&real_state, &linked).unwrap();
    refuse(
        "symlinked state dir",
        &["--state-dir", linked.to_str().unwrap()],
        "is a symbolic link, which fasttrack does not follow",
    );
    std::fs::set_permissions(&real_state, std::fs::Permissions::from_mode(0o777)).unwrap();
    refuse(
        "world-writable state dir",
        &["--state-dir", real_state.to_str().unwrap()],
        "writable by everyone (mode 0777)",
    );
    std::fs::set_permissions(&real_state, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::chown(&real_state, Some(65534), Some(65534)).unwrap();
    refuse(
        "state dir of another user",
        &["--state-dir", real_state.to_str().unwrap()],
        "belongs to uid 65534 but fasttrack runs as uid 0",
    );
    assert_eq!(std::fs::read_dir(&real_state).unwrap().count(), 0);

    // A file already at the name the log would get: kept, shipped under its own name, and the
    // log rotated to the next free suffix; an object already at the destination under that
    // next name: never overwritten, the rotated log kept until the name is free.
    std::fs::write(env.logs_dir().join("docker.log-2000000000"), body(0, 10)).unwrap();
    let foreign = env.shipped_dir().join("docker.log-2000000001.gz");
    std::fs::create_dir_all(env.shipped_dir()).unwrap();
    std::fs::write(&foreign, b"someone else's object").unwrap();
    refuse(
        "object already at the destination",
        &[],
        "already exists with different contents; fasttrack never overwrites",
    );
    assert_eq!(std::fs::read(&foreign).unwrap(), b"someone else's object");
    let kept = env.local_gz_names();
    assert!(
        kept.contains(&"docker.log-2000000001.gz".to_string()),
        "{kept:?}"
    );
    std::fs::remove_file(&foreign).unwrap();
    let out = env.run("upload", &["--reopen", "none"]);
    env.assert_exit(&out, 0);
    assert_eq!(
        env.shipped_names(),
        ["docker.log-2000000000.gz", "docker.log-2000000001.gz"],
        "{}",
        env.dump()
    );
    let acc = account(&env, 20);
    report(Row {
        fault: "9. hostile files",
        done:
            "docker.log a symlink (rotate and a running watch), a directory, a FIFO; state dir a \
               symlink, mode 0777, another user's; a file already at the rotated name; an object \
               already at the destination name"
                .into(),
        times: format!("{cases} refusals (exit 1, clear message), 0 files followed or overwritten"),
        acc: &acc,
        result: if acc.ok() { "pass" } else { "FAIL" }.into(),
        command: "cargo test --test integration hostile_files",
    });
    assert_accounted(&env, &acc, "hostile files");
}
