//! The progress bar of `rotate` (src/progress.rs): drawn when stderr is a terminal, and not
//! one byte of it anywhere else. stderr goes to a real pseudo-terminal, read from its master
//! side; with stderr a pipe (cron, syslog-ng, scripts), stderr must be exactly the log lines the
//! run appended to its log file, as before the bar existed. Every run still ships every line.

use crate::util::*;
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, PtyMaster};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, ExitStatus, Stdio};

/// Lines of the large logs: about 30 MB, compressed in many blocks.
const LINES: u64 = 400_000;

/// Writes lines `from..to` as the live log; `noise` adds 32 random hex digits to each, so that
/// the `.gz` stays large enough to go up to S3 in several parts.
fn write_log(env: &TestEnv, from: u64, to: u64, noise: Option<&mut Rng>) {
    let mut text = String::with_capacity(((to - from) * 120) as usize);
    match noise {
        None => (from..to).for_each(|seq| text.push_str(&docker_line(seq, 200))),
        Some(rng) => (from..to).for_each(|seq| {
            let line = docker_line(seq, 200);
            let noisy = format!("&r={:016x}{:016x} HTTP/1.1", rng.next(), rng.next());
            text.push_str(&line.replacen(" HTTP/1.1", &noisy, 1));
        }),
    }
    std::fs::write(env.log(), text).unwrap();
}

/// What a run wrote on the terminal its stderr was attached to (newlines as the terminal
/// sends them, `\r\n`), its stdout and its exit status.
struct OnTerminal {
    status: ExitStatus,
    stdout: String,
    screen: String,
}

/// Runs `cmd` with stderr on a new pseudo-terminal (stdout a pipe), reading the terminal's
/// master side until fasttrack has exited and closed it.
fn run_on_terminal(cmd: &mut Command) -> OnTerminal {
    // Close-on-exec, so that no process another test starts meanwhile keeps the terminal open.
    let master =
        posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("posix_openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(OFlag::O_NOCTTY.bits())
        .open(ptsname_r(&master).expect("ptsname_r"))
        .expect("open the terminal");
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(slave)
        .spawn()
        .expect("spawn fasttrack");
    // The command's own copy of the terminal goes, so that the reader sees its end.
    cmd.stderr(Stdio::null());
    let reader = std::thread::spawn(move || read_until_closed(master));
    let out = child.wait_with_output().expect("wait for fasttrack");
    let screen = reader.join().expect("the terminal reader");
    OnTerminal {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        screen: String::from_utf8_lossy(&screen).into_owned(),
    }
}

fn read_until_closed(mut master: PtyMaster) -> Vec<u8> {
    let mut screen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match master.read(&mut buf) {
            Ok(0) => return screen,
            Ok(n) => screen.extend_from_slice(&buf[..n]),
            // Linux answers EIO once the last descriptor of the terminal's side is closed.
            Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => return screen,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("cannot read the terminal: {e}"),
        }
    }
}

/// The bytes `run` appended to fasttrack's log file: every line it logged.
fn logged_by(env: &TestEnv, run: impl FnOnce()) -> String {
    let before = std::fs::metadata(env.log_file()).map_or(0, |m| m.len()) as usize;
    run();
    let log = std::fs::read(env.log_file()).unwrap_or_default();
    String::from_utf8_lossy(&log[before.min(log.len())..]).into_owned()
}

/// The bar's drawing of `step` on the screen: its name, the bytes, the rate and the time left.
fn assert_bar_drawn(env: &TestEnv, screen: &str, step: &str) {
    let drawn = screen
        .split(&format!("{step} docker.log-"))
        .skip(1)
        .any(|after| {
            let bar = after.split(['\r', '\n']).next().unwrap_or_default();
            // `42 [==>   ] 1.00 MiB/31.17 MiB 252.35 MiB/s ETA 0s`: bytes, total, rate, time left.
            bar.contains(" [") && bar.matches("B/").count() >= 2 && bar.contains("/s ETA ")
        });
    assert!(
        drawn,
        "no `{step}` bar with bytes, rate and ETA on the terminal:\n{screen:?}\n{}",
        env.dump()
    );
}

/// Every line logged also reached the terminal whole: the bar was wiped before it, never drawn
/// into it.
fn assert_log_lines_whole(env: &TestEnv, screen: &str, logged: &str) {
    assert!(!logged.is_empty(), "nothing logged\n{}", env.dump());
    for line in logged.lines() {
        assert!(
            screen.contains(&format!("{line}\r\n")),
            "log line garbled or missing on the terminal: {line:?}\n{screen:?}"
        );
    }
}

#[test]
fn rotate_on_a_terminal_draws_a_bar_per_step_above_which_the_log_stays_whole() {
    let env = TestEnv::new();
    write_log(&env, 0, LINES, None);
    let mut run = None;
    let logged = logged_by(&env, || {
        let mut cmd = env.fasttrack("rotate", &["--reopen", "none"]);
        cmd.env("TERM", "xterm-256color");
        run = Some(run_on_terminal(&mut cmd));
    });
    let run = run.unwrap();
    assert!(
        run.status.success(),
        "{:?}\n{}\n{}",
        run.status,
        run.screen,
        env.dump()
    );
    assert_bar_drawn(&env, &run.screen, "compress");
    assert_bar_drawn(&env, &run.screen, "upload");
    assert!(
        run.screen.contains('\x1b'),
        "the bar is cleared with escape codes"
    );
    assert_log_lines_whole(&env, &run.screen, &logged);
    // The report on stdout is untouched by the bar.
    let names = env.shipped_names();
    assert_eq!(names.len(), 1, "{}", env.dump());
    assert_eq!(
        run.stdout,
        format!(
            "rotated {} -> {n}\nshipped {n}\n",
            env.log().display(),
            n = names[0]
        )
    );
    assert_exactly_once_in_order(&env, LINES);
}

#[test]
fn rotate_with_stderr_a_pipe_writes_exactly_its_log_lines_there() {
    let env = TestEnv::new();
    write_log(&env, 0, LINES, None);
    let mut out = None;
    let logged = logged_by(&env, || {
        // A terminal type that could draw: only stderr not being a terminal keeps the bar away.
        let mut cmd = env.fasttrack("rotate", &["--reopen", "none"]);
        cmd.env("TERM", "xterm-256color");
        out = Some(cmd.output().expect("run fasttrack"));
    });
    let out = out.unwrap();
    env.assert_exit(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("compressed "), "{stderr}");
    assert_eq!(stderr, logged, "stderr is the log lines, nothing else");
    assert!(
        !stderr.contains(['\x1b', '\r']),
        "no terminal codes: {stderr:?}"
    );
    assert_exactly_once_in_order(&env, LINES);
}

#[test]
fn no_progress_or_a_dumb_terminal_keep_the_terminal_free_of_any_bar() {
    let env = TestEnv::new();
    let lines_per_run = 20_000;
    let runs: [(&[&str], &str); 3] = [
        (&["--no-progress"], "xterm-256color"),
        (&["--no-progress=true"], "xterm-256color"),
        (&[], "dumb"),
    ];
    for (i, (flags, term)) in runs.into_iter().enumerate() {
        let from = i as u64 * lines_per_run;
        write_log(&env, from, from + lines_per_run, None);
        let mut run = None;
        let logged = logged_by(&env, || {
            let mut cmd = env.fasttrack("rotate", &[&["--reopen", "none"], flags].concat());
            cmd.env("TERM", term);
            run = Some(run_on_terminal(&mut cmd));
        });
        let run = run.unwrap();
        assert!(
            run.status.success(),
            "{flags:?} TERM={term}: {:?}\n{}",
            run.status,
            env.dump()
        );
        // The terminal turns each \n into \r\n; apart from that, only the log lines.
        assert_eq!(
            run.screen.replace("\r\n", "\n"),
            logged,
            "{flags:?} TERM={term}: the terminal shows the log lines, nothing else"
        );
        assert_exactly_once_in_order(&env, from + lines_per_run);
    }
}

#[test]
fn a_multipart_upload_to_s3_draws_its_bar_on_a_terminal() {
    let env = TestEnv::new_s3();
    write_log(&env, 0, LINES, Some(&mut Rng::new(14)));
    let mut run = None;
    let logged = logged_by(&env, || {
        // Compress, then upload: two bars (uploaded while compressed, it would draw the first only).
        let mut cmd = env.fasttrack(
            "rotate",
            &[
                "--reopen",
                "none",
                "--part-size",
                "5MiB",
                "--upload-while-compressing=false",
            ],
        );
        cmd.env("TERM", "xterm-256color");
        run = Some(run_on_terminal(&mut cmd));
    });
    let run = run.unwrap();
    assert!(
        run.status.success(),
        "{:?}\n{}\n{}",
        run.status,
        run.screen,
        env.dump()
    );
    let objects = env.shipped();
    assert!(
        objects[0].body.len() > 5 << 20,
        "the .gz ({} bytes) should need several parts",
        objects[0].body.len()
    );
    assert_bar_drawn(&env, &run.screen, "compress");
    assert_bar_drawn(&env, &run.screen, "upload");
    assert_log_lines_whole(&env, &run.screen, &logged);
    assert_exactly_once_in_order(&env, LINES);
}
