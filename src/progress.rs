//! Progress of `rotate` and `upload` run by hand on a large log (issue 14): one bar on stderr
//! per step, "compress docker.log-N" then "upload docker.log-N.gz", with the bytes done, the
//! rate and the time left.
//!
//! The counts are real bytes, reported per block or part, never per line: the input the
//! compressor has read ([`Counted`] around the plain file: src/pargz.rs reads it in 1 MiB
//! blocks, a few read(2) calls each), what the `file://` destination has written (per 8 MiB chunk, src/dest/local.rs), and
//! for S3 the parts the store has acknowledged (src/dest/s3/multipart.rs): a file smaller than
//! `--part-size` goes up in one request, so its bar jumps from zero to the end.
//!
//! A bar is drawn only for a person watching: stderr a terminal, `TERM` set and not `dumb`, no
//! `--no-progress` ([`wanted`]). Anywhere else (cron, syslog-ng's program() destination, a
//! pipe) the steps get [`Silent`], no terminal code runs, and stderr carries exactly the log
//! lines it always did. `watch` always gets [`Silent`]. The steps see only the [`Progress`]
//! trait, never the terminal.
//!
//! A log line written while a bar is shown goes above it: src/logging.rs writes stderr through
//! [`TerminalBar::above`], which wipes the bar, lets the line out and redraws the bar. The
//! other writes to stderr (src/lib.rs: warnings, the error, pending files and notifications)
//! come before the first step or after the cycle, when no bar is drawn: each step clears its
//! bar when it ends, failed or not ([`during`]).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::ffi::OsStr;
use std::io::{IsTerminal, Read};
use std::path::Path;

/// What a bar is counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The plain rotated file read by the compressor.
    Compress,
    /// The `.gz` sent to the destination.
    Upload,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Compress => "compress",
            Step::Upload => "upload",
        }
    }
}

/// Where a long step reports the bytes it has done.
pub trait Progress: Send + Sync {
    /// A step begins on `file`, `total` bytes long; a retry begins again from zero.
    fn start(&self, step: Step, file: &str, total: u64);
    /// `bytes` more of the step are done.
    fn advance(&self, bytes: u64);
    /// The step ended, done or failed: its bar goes away (the log line after it says how it went).
    fn finish(&self);
}

/// No bar: stderr is not a terminal, the user said `--no-progress`, or this is `watch`.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: Step, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Runs `work` as `step` of `file` (its size is the total), the bar cleared however it ends.
pub fn during<T>(progress: &dyn Progress, step: Step, file: &Path, work: impl FnOnce() -> T) -> T {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Only the bar's total: `work` reports a file it cannot read with the real error.
    let total = std::fs::metadata(file).map_or(0, |m| m.len());
    progress.start(step, &name, total);
    let result = work();
    progress.finish();
    result
}

/// A reader that reports the bytes read through it: the compressor's input.
pub struct Counted<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<'a, R: Read> Counted<'a, R> {
    pub fn new(inner: R, progress: &'a dyn Progress) -> Self {
        Counted { inner, progress }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Whether to draw a bar: allowed (no `--no-progress`), stderr a terminal, and a terminal that
/// moves its cursor: `TERM` set and not `dumb` (console-rs, which draws the bar, decides alike).
pub fn wanted(allowed: bool, stderr_is_terminal: bool, term: Option<&OsStr>) -> bool {
    allowed && stderr_is_terminal && term.is_some_and(|t| !t.is_empty() && t != "dumb")
}

/// The bar of this process's stderr, when [`wanted`].
pub fn for_stderr(allowed: bool) -> Option<TerminalBar> {
    let term = std::env::var_os("TERM");
    wanted(allowed, std::io::stderr().is_terminal(), term.as_deref())
        .then(|| TerminalBar::new(ProgressDrawTarget::stderr()))
}

/// `compress docker.log-42 [=====>    ] 1.20 GiB/3.00 GiB 310.00 MiB/s ETA 6s`
const TEMPLATE: &str = "{msg} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}";

/// One bar on a terminal, reused by each step in turn (indicatif draws it, at most 20 times a
/// second). Clones share the bar: the steps advance it, the log writes above it.
#[derive(Clone)]
pub struct TerminalBar {
    bar: ProgressBar,
}

impl TerminalBar {
    fn new(target: ProgressDrawTarget) -> TerminalBar {
        // Invariant: TEMPLATE is a constant, drawn by a unit test.
        let style = ProgressStyle::with_template(TEMPLATE)
            .expect("the progress template is valid")
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(None, target).with_style(style);
        // Hidden until the first step: a log line before it finds no bar to redraw.
        bar.finish_and_clear();
        TerminalBar { bar }
    }

    /// Runs `write` (a log line on stderr) with the bar wiped first and redrawn after.
    pub fn above<R>(&self, write: impl FnOnce() -> R) -> R {
        self.bar.suspend(write)
    }
}

impl Progress for TerminalBar {
    fn start(&self, step: Step, file: &str, total: u64) {
        // Set while the bar is still hidden, so that its first drawing is already right.
        self.bar.set_length(total);
        self.bar.set_message(format!("{} {file}", step.name()));
        self.bar.reset();
        // Shown at once, whatever part of the rate limit the step before used up.
        self.bar.force_draw();
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A [`Progress`] that records what it is told, for the tests of the steps that report to it.
#[cfg(test)]
pub mod recorder {
    use super::{Progress, Step};
    use std::sync::Mutex;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Event {
        Start(Step, String, u64),
        Advance(u64),
        Finish,
    }

    #[derive(Default)]
    pub struct Recorder(Mutex<Vec<Event>>);

    impl Recorder {
        pub fn events(&self) -> Vec<Event> {
            self.0.lock().unwrap().clone()
        }

        /// The bytes reported, and in how many reports.
        pub fn advanced(&self) -> (u64, usize) {
            let events = self.events();
            let steps: Vec<u64> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Advance(n) => Some(*n),
                    _ => None,
                })
                .collect();
            (steps.iter().sum(), steps.len())
        }
    }

    impl Progress for Recorder {
        fn start(&self, step: Step, file: &str, total: u64) {
            self.0
                .lock()
                .unwrap()
                .push(Event::Start(step, file.to_string(), total));
        }
        fn advance(&self, bytes: u64) {
            self.0.lock().unwrap().push(Event::Advance(bytes));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push(Event::Finish);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::recorder::{Event, Recorder};
    use super::*;
    use indicatif::TermLike;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_bar_only_for_a_terminal_that_can_draw_it_and_a_user_who_wants_it() {
        let xterm = Some(OsStr::new("xterm-256color"));
        assert!(wanted(true, true, xterm));
        assert!(!wanted(false, true, xterm), "--no-progress");
        assert!(!wanted(true, false, xterm), "cron, a pipe, syslog-ng");
        assert!(!wanted(true, true, Some(OsStr::new("dumb"))));
        assert!(!wanted(true, true, Some(OsStr::new(""))));
        assert!(
            !wanted(true, true, None),
            "no TERM: console-rs treats it as dumb"
        );
    }

    #[test]
    fn a_step_is_started_with_the_file_size_and_finished_even_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("docker.log-7");
        std::fs::write(&file, vec![b'x'; 3000]).unwrap();
        let recorder = Recorder::default();
        let read = during(&recorder, Step::Compress, &file, || {
            let mut counted = Counted::new(std::fs::File::open(&file)?, &recorder);
            let mut buf = [0u8; 1024];
            let mut total = 0;
            loop {
                match counted.read(&mut buf)? {
                    0 => return Ok::<_, std::io::Error>(total),
                    n => total += n,
                }
            }
        });
        assert_eq!(read.unwrap(), 3000);
        assert_eq!(
            recorder.events(),
            vec![
                Event::Start(Step::Compress, "docker.log-7".into(), 3000),
                Event::Advance(1024),
                Event::Advance(1024),
                Event::Advance(952),
                Event::Advance(0),
                Event::Finish,
            ]
        );
        let recorder = Recorder::default();
        let missing = dir.path().join("gone.gz");
        let failed: Result<(), &str> = during(&recorder, Step::Upload, &missing, || Err("no"));
        assert!(failed.is_err());
        assert_eq!(
            recorder.events(),
            vec![
                Event::Start(Step::Upload, "gone.gz".into(), 0),
                Event::Finish
            ]
        );
    }

    /// A terminal that keeps what is drawn on it, one entry per call.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        fn log(&self, entry: String) {
            self.0.lock().unwrap().push(entry);
        }
        fn entries(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            if n > 0 {
                self.log(format!("<up {n}>"));
            }
            Ok(())
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            if n > 0 {
                self.log(format!("<down {n}>"));
            }
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.log(format!("{s}\n"));
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            if !s.is_empty() {
                self.log(s.to_string());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.log("<clear>".into());
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_bar_shows_bytes_rate_and_eta_and_a_log_line_goes_above_it() {
        let screen = Screen::default();
        let bar = TerminalBar::new(ProgressDrawTarget::term_like(Box::new(screen.clone())));
        bar.above(|| screen.log("before any step\n".into()));
        assert_eq!(
            screen.entries(),
            vec!["before any step\n"],
            "no bar before the first step"
        );

        bar.start(Step::Compress, "docker.log-42", 4 << 20);
        bar.advance(1 << 20);
        let drawn = screen.entries().concat();
        assert!(drawn.contains("compress docker.log-42 ["), "{drawn}");
        assert!(drawn.contains("1.00 MiB/4.00 MiB"), "{drawn}");
        assert!(drawn.contains("/s ETA "), "{drawn}");

        let before = screen.entries().len();
        bar.above(|| screen.log("a log line\n".into()));
        let after = screen.entries()[before..].to_vec();
        let line = after.iter().position(|e| e == "a log line\n").unwrap();
        assert_eq!(
            after[line - 1],
            "<clear>",
            "the bar is wiped first: {after:?}"
        );
        assert!(
            after[line + 1..]
                .concat()
                .contains("compress docker.log-42"),
            "and drawn again below the line: {after:?}"
        );

        bar.finish();
        assert_eq!(screen.entries().last().unwrap(), "<clear>");
        let before = screen.entries().len();
        bar.above(|| screen.log("after the step\n".into()));
        assert_eq!(screen.entries()[before..], ["after the step\n"]);
    }
}
