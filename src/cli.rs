//! The command line (the public contract). Parsing only: no defaults that matter and no logic;
//! `Config::load` merges these with the environment, the config file and the defaults.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "fasttrack",
    version,
    args_override_self = true,
    about = "Fast-track server errors to S3: rotate docker.log after a burst of 5xx lines, gzip it, ship it",
    after_help = "Every option can also be set in the config file and as FASTTRACK_<NAME> in the environment \
                  (e.g. FASTTRACK_STATE_DIR); precedence: flag > environment > file > default.\n\
                  Exit codes: 0 done, 1 error, 2 usage or configuration error, 3 rotated but something is still pending."
)]
pub struct Cli {
    /// Config file (TOML). Default /etc/fasttrack/fasttrack.toml, used only if it exists
    #[arg(
        short = 'c',
        long,
        env = "FASTTRACK_CONFIG",
        global = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Be syslog-ng's program() destination: read the 5xx stream on stdin, fast-track after each quiet period
    Watch(WatchArgs),
    /// Rotate, compress and ship now; exit 0 only if everything was shipped
    Rotate,
    /// Ship rotated files that are still pending, without rotating
    Upload,
    /// Show the log, the rotated files and their state, the last rotation and the last error
    Status,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Watch(_) => "watch",
            Command::Rotate => "rotate",
            Command::Upload => "upload",
            Command::Status => "status",
        }
    }
}

#[derive(Debug, Default, Args)]
pub struct CommonArgs {
    /// The log syslog-ng writes; rotated files live beside it [default: /var/log/docker.log]
    #[arg(long, env = "FASTTRACK_LOG", global = true, value_name = "PATH")]
    pub log: Option<PathBuf>,

    /// Where rotated logs are shipped: file:///DIR (objects land at DIR/<HOST>/<file>)
    #[arg(long, env = "FASTTRACK_DEST", global = true, value_name = "URL")]
    pub dest: Option<String>,

    /// Host name used in object keys [default: the system hostname]
    #[arg(long, env = "FASTTRACK_HOST", global = true, value_name = "NAME")]
    pub host: Option<String>,

    /// Lock file and state [default: /var/lib/fasttrack]
    #[arg(long, env = "FASTTRACK_STATE_DIR", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// How to ask syslog-ng to reopen its files [default: auto = socket, then ctl, then usr1]
    #[arg(long, env = "FASTTRACK_REOPEN", global = true, value_enum)]
    pub reopen: Option<ReopenMethod>,

    /// syslog-ng's control socket [default: first that exists of the Debian and RHEL locations]
    #[arg(
        long,
        env = "FASTTRACK_CONTROL_SOCKET",
        global = true,
        value_name = "PATH"
    )]
    pub control_socket: Option<PathBuf>,

    /// syslog-ng's pidfile, for the usr1 and hup methods [default: first that exists of the Debian and RHEL locations]
    #[arg(long, env = "FASTTRACK_PIDFILE", global = true, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,

    /// How many shipped rotated files to keep locally; unshipped files are never deleted [default: 10]
    #[arg(long, env = "FASTTRACK_KEEP", global = true, value_name = "N")]
    pub keep: Option<String>,

    /// fasttrack's own log (stdout and stderr are lost under syslog-ng) [default: /var/log/fasttrack.log]
    #[arg(long, env = "FASTTRACK_LOG_FILE", global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// gzip level, 1 (fastest) to 9 (smallest) [default: 6]
    #[arg(
        long,
        env = "FASTTRACK_COMPRESSION_LEVEL",
        global = true,
        value_name = "1-9"
    )]
    pub compression_level: Option<String>,

    /// How long to wait for syslog-ng to close the rotated file before falling back to
    /// waiting until its size is stable [default: 10s]
    #[arg(
        long,
        env = "FASTTRACK_CLOSE_TIMEOUT",
        global = true,
        value_name = "DURATION"
    )]
    pub close_timeout: Option<String>,
}

#[derive(Debug, Default, Args)]
pub struct WatchArgs {
    /// Fast-track once the 5xx stream has been quiet this long [default: 30s]
    #[arg(long, env = "FASTTRACK_QUIET", value_name = "DURATION")]
    pub quiet: Option<String>,

    /// Fast-track at the latest this long after an incident opened, even if errors never stop [default: 10m]
    #[arg(long, env = "FASTTRACK_MAX_WAIT", value_name = "DURATION")]
    pub max_wait: Option<String>,
}

/// How to ask syslog-ng to reopen its file destinations after the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReopenMethod {
    /// control socket, then syslog-ng-ctl, then SIGUSR1
    Auto,
    /// REOPEN on syslog-ng's control socket
    Socket,
    /// `syslog-ng-ctl reopen`
    Ctl,
    /// SIGUSR1 to the pid in the pidfile
    Usr1,
    /// SIGHUP (a full reload: syslog-ng then SIGTERMs and restarts `watch`)
    Hup,
    /// Nothing writes the log, or its writer reopens by itself: rotate without asking or waiting
    None,
}

impl ReopenMethod {
    pub fn name(self) -> &'static str {
        match self {
            ReopenMethod::Auto => "auto",
            ReopenMethod::Socket => "socket",
            ReopenMethod::Ctl => "ctl",
            ReopenMethod::Usr1 => "usr1",
            ReopenMethod::Hup => "hup",
            ReopenMethod::None => "none",
        }
    }
}
