//! fasttrack's own log. Under syslog-ng stdout and stderr are /dev/null (docs/syslog-ng.md),
//! so everything also goes to `--log-file`, with timestamps. It is never sent to syslog,
//! where the 5xx filter could feed it back to us.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::SubscriberExt;

/// Logs to stderr and, if it can be opened, to `log_file`.
pub fn init(log_file: Option<&Path>) {
    let file = log_file.and_then(|path| {
        match OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
        {
            Ok(f) => {
                crate::crash::log_to(path.to_path_buf());
                Some(f)
            }
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
    // Our own events at INFO; the AWS SDK's only when they are warnings or errors.
    let only = Targets::new()
        .with_target("fasttrack", tracing::Level::INFO)
        .with_default(tracing::Level::WARN);
    let result = match file {
        Some(f) => tracing::subscriber::set_global_default(
            builder
                .with_writer(std::io::stderr.and(Mutex::new(f)))
                .finish()
                .with(only),
        ),
        None => tracing::subscriber::set_global_default(
            builder.with_writer(std::io::stderr).finish().with(only),
        ),
    };
    // Already initialised (a second call after a failure): keep the first.
    drop(result);
}
