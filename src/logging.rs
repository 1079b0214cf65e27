//! fasttrack's own log. Under syslog-ng stdout and stderr are /dev/null (docs/syslog-ng.md),
//! so everything also goes to `--log-file`, with timestamps. It is never sent to syslog,
//! where the 5xx filter could feed it back to us.
//!
//! Writing the log never panics and never stops the program (issue 18): each event goes to
//! stderr (best effort) and to the file independently, so a full disk under one of them does
//! not cost the other; an event the file cannot take is lost, as there is nowhere left to say
//! so. (tracing-subscriber's own report of a failed write is an `eprintln!`, which panics when
//! stderr fails too: it is turned off.)
//!
//! While `rotate` or `upload` draws a progress bar (src/progress.rs), each event goes to stderr
//! above the bar: the bar is wiped, the line written whole, the bar redrawn.

use crate::progress::TerminalBar;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Logs to stderr and, if it can be opened, to `log_file`.
pub fn init(log_file: Option<&Path>) {
    init_with_bar(log_file, None);
}

/// [`init`], with stderr's lines written above `bar` when there is one.
pub fn init_with_bar(log_file: Option<&Path>, bar: Option<&TerminalBar>) {
    let file = log_file.and_then(|path| {
        match OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
        {
            Ok(f) => {
                crate::crash::log_to(path.to_path_buf());
                Some(Arc::new(Mutex::new(f)))
            }
            Err(e) => {
                crate::output::eprint(format_args!(
                    "fasttrack: cannot open log file {} ({e}); logging to stderr only: fix --log-file\n",
                    path.display()
                ));
                None
            }
        }
    });
    // Our own events at INFO; the AWS SDK's only when they are warnings or errors.
    let only = Targets::new()
        .with_target("fasttrack", tracing::Level::INFO)
        .with_default(tracing::Level::WARN);
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .log_internal_errors(false)
        .with_writer(LogWriter {
            file,
            bar: bar.cloned(),
        })
        .finish()
        .with(only);
    // Already initialised (a second call after a failure): keep the first.
    drop(tracing::subscriber::set_global_default(subscriber));
}

/// stderr (above the progress bar, if one is drawn) and the log file, written independently.
#[derive(Clone)]
struct LogWriter {
    file: Option<Arc<Mutex<File>>>,
    bar: Option<TerminalBar>,
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Write for LogWriter {
    /// tracing-subscriber hands over one whole event per call: it goes to both or is lost in
    /// the one that fails.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let to_stderr = || std::io::stderr().lock().write_all(buf);
        let _ = match &self.bar {
            Some(bar) => bar.above(to_stderr),
            None => to_stderr(),
        };
        if let Some(file) = &self.file {
            // A poisoned lock only means another thread panicked mid-write: the file is fine.
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            f.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
