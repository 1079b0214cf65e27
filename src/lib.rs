//! fasttrack: fast-track server errors from syslog-ng to a destination.
//!
//! `main` calls [`main_entry`]; everything else is reached from [`run`] with a validated
//! [`config::Config`].

pub mod check;
pub mod classify;
pub mod cli;
pub mod closewait;
pub mod compress;
pub mod config;
pub mod crash;
pub mod cycle;
pub mod debounce;
pub mod dest;
pub mod digest;
pub mod digest_command;
pub mod docs;
pub mod exit;
pub mod fsutil;
pub mod growing;
pub mod index;
pub mod key_template;
pub mod known;
pub mod logging;
pub mod metrics;
pub mod naming;
pub mod notify;
pub mod output;
pub mod pargz;
pub mod progress;
pub mod proxy;
pub mod reopen;
pub mod report;
pub mod retry;
pub mod rotate;
pub mod spool;
pub mod state;
pub mod status;
pub mod watch;

use anyhow::{Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use cli::{Cli, Command};
use config::{Config, Origins};
use exit::Outcome;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

/// Parses `args`, runs the command and maps the outcome to the documented exit codes.
pub fn main_entry(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    crash::install_hook();
    let args: Vec<OsString> = args.into_iter().collect();
    let is_watch = args.iter().skip(1).any(|a| a == "watch");
    let matches = match Cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            let printed = e.print();
            let failed = e.exit_code() != 0;
            // --help and --version go to stdout: a failure there is an error (a closed pipe
            // is not, src/output.rs); usage errors go to stderr, best effort.
            if let (false, Err(err)) = (failed, printed) {
                if err.kind() != std::io::ErrorKind::BrokenPipe {
                    output::eprint(format_args!("fasttrack: cannot write to stdout: {err}\n"));
                    return ExitCode::from(exit::ERROR);
                }
            }
            if failed && is_watch {
                // Under syslog-ng stderr is /dev/null: the log file is the only place to say it.
                logging::init(Some(&log_file_from_args(&args)));
                tracing::error!("cannot start `fasttrack watch`: {}", e.to_string().trim());
                watch::hold_before_failing();
            }
            return exit::exit_code(&if failed {
                Err(e.into())
            } else {
                Ok(Outcome::Done)
            });
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return exit::exit_code(&Err(e.into()));
        }
    };
    let origins = origins(&matches);
    let is_watch = matches!(cli.command, Command::Watch(_));
    let log_file = cli
        .common
        .log_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_LOG_FILE));
    let ended = run(cli, &origins);
    match &ended {
        // The reader of stdout went away: stop quietly (src/output.rs).
        Err(e) if output::is_stdout_closed(e) => return ExitCode::from(exit::OK),
        Err(e) => {
            output::eprint(format_args!("fasttrack: {e:#}\n"));
            if is_watch {
                // A no-op if logging already started; otherwise config errors reach the file too.
                logging::init(Some(&log_file));
            }
            tracing::error!("{e:#}");
            if is_watch {
                watch::hold_before_failing();
            }
        }
        Ok(_) => {}
    }
    exit::exit_code(&ended)
}

/// Runs one command with the configuration built from `cli`.
pub fn run(cli: Cli, origins: &Origins) -> Result<Outcome> {
    if let Command::GenerateDocs(args) = &cli.command {
        // Needs no configuration: packagers run it at build time.
        return generate_docs(&args.out);
    }
    let config = Config::load(&cli, origins)?;
    for warning in &config.warnings {
        output::eprint(format_args!("fasttrack: warning: {warning}\n"));
    }
    match cli.command {
        Command::Status(args) => status::run(
            &config,
            if args.json {
                status::Format::Json
            } else {
                status::Format::Text
            },
        ),
        Command::Check(args) => check::run(&config, &args),
        Command::Digest(args) => digest_command::run(&config, &args),
        Command::Report(args) => report::run(&config, &args, origins),
        Command::GenerateDocs(args) => generate_docs(&args.out),
        Command::Watch(_) => {
            config.require_dest()?;
            logging::init(Some(&config.log_file));
            watch::run(config)
        }
        Command::Rotate => ship_now(&config, cycle::Mode::Rotate),
        Command::Upload => ship_now(&config, cycle::Mode::Upload),
    }
}

/// `rotate` and `upload`: one cycle, its report on stdout, then the queued notifications.
/// A progress bar on stderr only for a person watching it (src/progress.rs); it is gone
/// before the report is printed.
fn ship_now(config: &Config, mode: cycle::Mode) -> Result<Outcome> {
    config.require_dest()?;
    let bar = progress::for_stderr(config.progress);
    logging::init_with_bar(Some(&config.log_file), bar.as_ref());
    let destination = dest::open(config)?;
    let report = cycle::run(
        config,
        destination.as_ref(),
        mode,
        retry::Policy::SHIP_IN_COMMAND,
        &AtomicBool::new(false),
        None,
        match &bar {
            Some(bar) => bar,
            None => &progress::Silent,
        },
    );
    // Written however the command ends: a failure shows in the metrics too.
    let publish = || metrics::publish::publish_or_warn(config, None, &Default::default());
    let report = report.inspect_err(|_| publish())?;
    // The work is done whatever happens to its report: a reader that went away only stops
    // the printing (the exit code still says what was done); any other failure is exit 1.
    match print_report(config, mode, &report) {
        Err(e) if !output::is_stdout_closed(&e) => return Err(e),
        _ => {}
    }
    if let Some(error) = &report.ship_error {
        output::eprint(format_args!(
            "fasttrack: {error:#}\nfasttrack: {} file(s) kept, still pending ({}); {}\n",
            report.pending.len(),
            report.pending.join(", "),
            if error.is_permanent() {
                "fix the problem above, then run `fasttrack upload`"
            } else {
                "run `fasttrack upload` later (`fasttrack watch` retries by itself)"
            }
        ));
    }
    // Shipped incidents are announced after the shipping, each attempt bounded: what
    // fails stays queued for the next run (watch retries by itself).
    if let Some(n) = &config.incident.notify {
        let delivery = match notify::Notifier::new(n) {
            Ok(notifier) => notifier.deliver_due(&config.state_dir),
            Err(e) => notify::Delivery {
                failed: vec![format!("{e:#}")],
                ..Default::default()
            },
        };
        for failure in &delivery.failed {
            output::eprint(format_args!("fasttrack: notification pending: {failure}\n"));
        }
        let waiting = notify::pending(&config.state_dir).len();
        if delivery.failed.is_empty() && waiting > 0 {
            // Throttled: a route posted less than its interval ago.
            output::eprint(format_args!(
                "fasttrack: {waiting} notification(s) wait for their route's interval; the next \
                 `fasttrack watch`, `rotate` or `upload` after it sends them, folded into one message\n"
            ));
        }
    }
    publish();
    Ok(report.outcome())
}

fn print_report(config: &Config, mode: cycle::Mode, report: &cycle::Report) -> Result<()> {
    match &report.rotated {
        Some(name) => output::print(format_args!(
            "rotated {} -> {name}.gz\n",
            config.log.display()
        ))?,
        None if mode == cycle::Mode::Rotate => output::print(format_args!(
            "{} is missing or empty: nothing to rotate\n",
            config.log.display()
        ))?,
        None => {}
    }
    for name in &report.shipped {
        output::print(format_args!("shipped {name}\n"))?;
    }
    Ok(())
}

/// `fasttrack generate-docs OUT_DIR`: the man page and completions, for packagers.
fn generate_docs(out: &std::path::Path) -> Result<Outcome> {
    let files = docs::generate(out)
        .with_context(|| format!("cannot write the docs into {}", out.display()))?;
    for file in files {
        output::print(format_args!("{}\n", file.display()))?;
    }
    Ok(Outcome::Done)
}

/// `--log-file` as given on a command line that clap rejected (best effort), or the default.
fn log_file_from_args(args: &[OsString]) -> PathBuf {
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let arg = arg.to_string_lossy();
        if arg == "--log-file" {
            if let Some(value) = it.next() {
                return PathBuf::from(value);
            }
        } else if let Some(value) = arg.strip_prefix("--log-file=") {
            return PathBuf::from(value);
        }
    }
    std::env::var_os("FASTTRACK_LOG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_LOG_FILE))
}

/// Which options took their value from the environment (so errors name the variable), and
/// which from the command line itself (where a secret is visible to every local user).
fn origins(matches: &ArgMatches) -> Origins {
    let mut origins = Origins::default();
    let mut collect = |m: &ArgMatches| {
        for id in m.ids() {
            // `match_` is the field of `--match` (a keyword in Rust).
            let flag = format!("--{}", id.as_str().trim_end_matches('_').replace('_', "-"));
            match m.value_source(id.as_str()) {
                Some(ValueSource::EnvVariable) => origins.from_env.insert(flag),
                Some(ValueSource::CommandLine) => origins.on_command_line.insert(flag),
                _ => false,
            };
        }
    };
    collect(matches);
    if let Some((_, sub)) = matches.subcommand() {
        collect(sub);
    }
    origins
}
