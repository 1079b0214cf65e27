//! `check`'s syslog-ng lines: can syslog-ng be asked to reopen (control socket or pid), does
//! it run fasttrack's program() destination (asked over the control socket with `STATS`,
//! docs/syslog-ng.md), is a `watch` running, and did syslog-ng drop lines meant for it.

use crate::cli::ReopenMethod;
use crate::config::Config;
use crate::dest::{CheckItem, Verdict};
use crate::reopen::Reopener;
use crate::state::StateDir;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// One program() destination syslog-ng runs, from its `STATS` rows.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProgramDestination {
    /// `d_fasttrack#0`
    pub id: String,
    /// The command line syslog-ng runs.
    pub command: String,
    pub dropped: u64,
    pub processed: u64,
}

/// The `dst.program` destinations in the answer to `STATS`: CSV rows
/// `SourceName;SourceId;SourceInstance;State;Type;Number`, one per counter.
pub fn program_destinations(stats: &str) -> Vec<ProgramDestination> {
    let mut out: Vec<ProgramDestination> = Vec::new();
    for row in stats.lines() {
        let fields: Vec<&str> = row.split(';').collect();
        let [name, id, instance, _state, kind, number] = fields[..] else {
            continue;
        };
        if name != "dst.program" {
            continue;
        }
        let index = match out.iter().position(|d| d.id == id) {
            Some(i) => i,
            None => {
                out.push(ProgramDestination {
                    id: id.to_string(),
                    command: instance.to_string(),
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        let number = number.trim().parse().unwrap_or(0);
        match kind {
            "dropped" => out[index].dropped = number,
            "processed" => out[index].processed = number,
            _ => {}
        }
    }
    out
}

/// Whether a program() command line runs `fasttrack watch` (through `exec`, a path, flags).
pub fn runs_watch(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().collect();
    words.iter().enumerate().any(|(i, w)| {
        Path::new(w).file_name().is_some_and(|n| n == "fasttrack")
            && words[i + 1..].contains(&"watch")
    })
}

/// Sends `STATS` on the control socket and returns the answer up to the `.` line.
fn stats(socket: &Path) -> Result<String> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot connect to {}", socket.display()))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream
        .write_all(b"STATS\n")
        .with_context(|| format!("cannot write to {}", socket.display()))?;
    let mut answer = String::new();
    for line in BufReader::new(stream).lines() {
        let line = line.with_context(|| format!("cannot read from {}", socket.display()))?;
        if line == "." {
            return Ok(answer);
        }
        answer.push_str(&line);
        answer.push('\n');
    }
    bail!(
        "syslog-ng closed {} before the end of its answer",
        socket.display()
    )
}

/// The destination line, from the `STATS` answer and whether a `watch` holds its lock
/// (`Some(pid)` when it wrote one).
pub fn destination_item(
    socket: &Path,
    stats: &str,
    watch: Option<Option<u32>>,
    state_dir: &Path,
    log_file: &Path,
) -> Vec<CheckItem> {
    let what = "syslog-ng destination";
    let ours: Vec<ProgramDestination> = program_destinations(stats)
        .into_iter()
        .filter(|d| runs_watch(&d.command))
        .collect();
    let Some(dest) = ours.first() else {
        return vec![CheckItem::fail(
            what,
            format!(
                "the syslog-ng on {} runs no program() destination with `fasttrack watch`: install the \
                 snippet as /etc/syslog-ng/conf.d/fasttrack.conf (the package does), check that syslog-ng.conf \
                 has @include \"/etc/syslog-ng/conf.d/*.conf\", then run `syslog-ng-ctl reload`",
                socket.display()
            ),
        )];
    };
    let id = dest.id.split('#').next().unwrap_or(&dest.id);
    let mut items = vec![match watch {
        Some(pid) => CheckItem::ok(
            what,
            format!(
                "{id} runs `{}`; a watch is running ({}, holding {}/watch.lock)",
                dest.command,
                pid.map_or("pid unknown".to_string(), |p| format!("pid {p}")),
                state_dir.display()
            ),
        ),
        None => CheckItem::warn(
            what,
            format!(
                "{id} runs `{}` but no watch holds {}/watch.lock: it exited or uses another --state-dir; \
                 {} says why, and syslog-ng starts it again with the next 5xx line",
                dest.command,
                state_dir.display(),
                log_file.display()
            ),
        ),
    }];
    if dest.dropped > 0 {
        items.push(CheckItem::warn(
            "syslog-ng queue",
            format!(
                "syslog-ng dropped {} lines meant for {id} (its queue was full while watch was down or \
                 slow): those lines are still in the log, but the quiet period may have been judged \
                 early; see {}",
                dest.dropped,
                log_file.display()
            ),
        ));
    }
    if ours.len() > 1 {
        items.push(CheckItem::warn(
            "syslog-ng destination",
            format!(
                "{} program() destinations run fasttrack watch ({}): each would rotate the same log; keep one",
                ours.len(),
                ours.iter().map(|d| d.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    items
}

/// Every syslog-ng line for this configuration.
pub fn items(config: &Config) -> Vec<CheckItem> {
    let reopener = Reopener::new(&config.reopen);
    let socket = reopener.control_socket();
    let socket_item = || {
        CheckItem::from_result(
            "syslog-ng control socket",
            match &socket {
                None => Err("not found; set --control-socket".into()),
                // Connecting and closing sends no command: syslog-ng just drops the connection.
                Some(p) => UnixStream::connect(p)
                    .map(|_| format!("{} accepts connections", p.display()))
                    .map_err(|e| format!("{}: {e}", p.display())),
            },
        )
    };
    let pid_item = || {
        CheckItem::from_result(
            "syslog-ng pid",
            reopener
                .syslog_ng_pid()
                .map(|p| format!("{p} (from the pidfile)"))
                .map_err(|e| format!("{e:#}")),
        )
    };
    let mut items = match config.reopen.method {
        // Not run under syslog-ng's control (a test host, another log daemon): nothing to ask.
        ReopenMethod::None => return vec![],
        ReopenMethod::Socket | ReopenMethod::Ctl => vec![socket_item()],
        ReopenMethod::Usr1 | ReopenMethod::Hup => vec![pid_item()],
        ReopenMethod::Auto => auto(socket_item(), pid_item()),
    };
    let Some(socket) = socket.filter(|_| items.iter().any(|i| i.verdict != Verdict::Fail)) else {
        return items;
    };
    match stats(&socket) {
        Ok(answer) => items.extend(destination_item(
            &socket,
            &answer,
            StateDir::existing(&config.state_dir).watch_holder(),
            &config.state_dir,
            &config.log_file,
        )),
        Err(e) => items.push(CheckItem::warn(
            "syslog-ng destination",
            format!("cannot ask syslog-ng which destinations it runs: {e:#}"),
        )),
    }
    items
}

/// `auto` needs one of the two methods: the other one failing is no failure.
fn auto(socket: CheckItem, pid: CheckItem) -> Vec<CheckItem> {
    if socket.verdict == Verdict::Fail && pid.verdict == Verdict::Fail {
        return vec![socket, pid];
    }
    [socket, pid]
        .into_iter()
        .map(|i| match i.verdict {
            Verdict::Fail => CheckItem::ok(
                i.what,
                format!("not usable ({}), another method is", i.detail),
            ),
            _ => i,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As syslog-ng 3.38 answers `STATS` at the default stats level (docs/syslog-ng.md).
    const STATS: &str = "SourceName;SourceId;SourceInstance;State;Type;Number\n\
        dst.program;d_fasttrack#0;exec /usr/bin/fasttrack watch --quiet 10s;a;dropped;3\n\
        global;msg_clones;;a;processed;0\n\
        dst.program;d_fasttrack#0;exec /usr/bin/fasttrack watch --quiet 10s;a;processed;120\n\
        destination;d_docker;;a;processed;0\n\
        dst.program;d_other#0;exec /bin/cat -;a;processed;7\n\
        dst.program;d_other#0;exec /bin/cat -;a;written;7\n";

    #[test]
    fn program_destinations_from_stats() {
        let found = program_destinations(STATS);
        assert_eq!(
            found,
            vec![
                ProgramDestination {
                    id: "d_fasttrack#0".into(),
                    command: "exec /usr/bin/fasttrack watch --quiet 10s".into(),
                    dropped: 3,
                    processed: 120,
                },
                ProgramDestination {
                    id: "d_other#0".into(),
                    command: "exec /bin/cat -".into(),
                    dropped: 0,
                    processed: 7,
                },
            ]
        );
    }

    #[test]
    fn which_commands_run_watch() {
        assert!(runs_watch("exec /usr/bin/fasttrack watch"));
        assert!(runs_watch("fasttrack -c /etc/f.toml watch"));
        assert!(!runs_watch("exec /usr/bin/fasttrack rotate"));
        assert!(!runs_watch("exec /usr/bin/fasttrack-old watch"));
        assert!(!runs_watch("exec cat >/dev/null"));
    }

    #[test]
    fn the_destination_line_names_what_to_do() {
        let (socket, state, log) = (
            Path::new("/run/syslog-ng.ctl"),
            Path::new("/var/lib/fasttrack"),
            Path::new("/var/log/fasttrack.log"),
        );
        let items = destination_item(socket, STATS, Some(Some(42)), state, log);
        assert_eq!(items[0].verdict, Verdict::Ok, "{items:?}");
        assert!(items[0].detail.contains("d_fasttrack runs `exec /usr/bin/fasttrack watch --quiet 10s`; a watch is running (pid 42"), "{items:?}");
        assert_eq!(items[1].verdict, Verdict::Warn, "{items:?}");
        assert!(items[1].detail.contains("dropped 3 lines"), "{items:?}");

        let items = destination_item(socket, STATS, None, state, log);
        assert_eq!(items[0].verdict, Verdict::Warn, "{items:?}");
        assert!(
            items[0]
                .detail
                .contains("no watch holds /var/lib/fasttrack/watch.lock"),
            "{items:?}"
        );

        let without: String = STATS
            .lines()
            .filter(|l| !l.contains("fasttrack"))
            .map(|l| format!("{l}\n"))
            .collect();
        let items = destination_item(socket, &without, None, state, log);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].verdict, Verdict::Fail, "{items:?}");
        assert!(
            items[0].detail.contains("syslog-ng-ctl reload"),
            "{items:?}"
        );
    }
}
