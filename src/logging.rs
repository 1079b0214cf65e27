//! fasttrack's own log. Under syslog-ng stdout and stderr are /dev/null (shared/SYSLOG-NG.md),
//! so everything also goes to `--log-file`, with timestamps. It is never sent to syslog,
//! where the 5xx filter could feed it back to us.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Logs to stderr and, if it can be opened, to `log_file`.
pub fn init(log_file: Option<&Path>) {
    let file = log_file.and_then(|path| {
        match OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
        {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!(
                    "fasttrack: cannot open log file {} ({e}); logging to stderr only: fix --log-file",
                    path.display()
                );
                None
            }
        }
    });
    let builder = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_max_level(tracing::Level::INFO);
    let result = match file {
        Some(f) => builder
            .with_writer(std::io::stderr.and(Mutex::new(f)))
            .try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    // Already initialised (tests call run twice in one process): keep the first.
    drop(result);
}
