//! Writing to stdout and stderr without ever panicking (issue 18): `println!` panics when
//! stdout fails (a cron job whose output goes to a full disk), which turned a finished rotation
//! into exit 101 and a backtrace.
//!
//! The policy, one place:
//! - SIGPIPE stays ignored, as the Rust runtime sets it before `main`: a closed control socket
//!   or S3 connection is then an EPIPE error fasttrack reports, never a silent death. A reader
//!   of stdout that went away (`fasttrack digest ... | head -1`) is therefore [`StdoutClosed`]:
//!   printing stops quietly and `main` exits 0, as ripgrep does; `rotate` and `upload` keep
//!   the exit code of the work they did.
//! - Any other error writing stdout is an error of the command: "cannot write to stdout",
//!   exit 1.
//! - stderr is best effort: when it fails there is nowhere else to say so (what matters also
//!   goes to the log file), so its errors are ignored.

use std::fmt::Arguments;
use std::io::Write;

/// stdout was closed by its reader (EPIPE): stop printing, exit quietly.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed by its reader")]
pub struct StdoutClosed;

/// Whether `e` is, or was caused by, [`StdoutClosed`].
pub fn is_stdout_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<StdoutClosed>())
}

/// Prints to stdout and flushes, so that a failure is seen here and not lost at exit.
pub fn print(args: Arguments) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// Converts an error writing stdout into [`StdoutClosed`] or "cannot write to stdout".
pub fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::Error::new(e).context("cannot write to stdout")
    }
}

/// Prints to stderr, ignoring errors (see the module comment).
pub fn eprint(args: Arguments) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_pipe_is_told_apart_from_other_errors() {
        let closed = stdout_error(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_stdout_closed(&closed));
        let full = stdout_error(std::io::Error::from_raw_os_error(28));
        assert!(!is_stdout_closed(&full));
        assert!(
            format!("{full:#}").starts_with("cannot write to stdout: "),
            "{full:#}"
        );
    }
}
