//! `fasttrack check`: is the destination reachable and writable, do credentials resolve, can
//! syslog-ng be asked to reopen, is the state dir usable. One OK/FAIL line each; exit 0 only
//! if every line is OK. Nothing is left behind (the test object is removed).

use crate::cli::ReopenMethod;
use crate::config::Config;
use crate::dest::{self, CheckItem};
use crate::exit::Outcome;
use crate::output::print;
use crate::reopen::Reopener;
use anyhow::Result;
use std::os::unix::net::UnixStream;

pub fn run(config: &Config) -> Result<Outcome> {
    let dest_url = config.require_dest()?;
    print(format_args!(
        "destination {dest_url} (host {})\n",
        config.host
    ))?;
    let probe = dest_url.key(
        &config.host,
        &format!(
            ".fasttrack-check-{}-{}",
            chrono::Utc::now().timestamp(),
            std::process::id()
        ),
    );
    let mut items = match dest::open(config) {
        Ok(destination) => destination.check(&probe),
        Err(e) => vec![CheckItem {
            what: "destination".into(),
            result: Err(format!("{e:#}")),
        }],
    };
    items.extend(syslog_ng(config));
    items.push(state_dir(config));

    let mut all_ok = true;
    for item in &items {
        match &item.result {
            Ok(detail) => print(format_args!("OK    {}: {detail}\n", item.what))?,
            Err(reason) => {
                all_ok = false;
                print(format_args!("FAIL  {}: {reason}\n", item.what))?;
            }
        }
    }
    Ok(if all_ok {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

fn syslog_ng(config: &Config) -> Vec<CheckItem> {
    let reopener = Reopener::new(&config.reopen);
    let socket = || CheckItem {
        what: "syslog-ng control socket".into(),
        result: match reopener.control_socket() {
            None => Err("not found; set --control-socket".into()),
            // Connecting and closing sends no command: syslog-ng just drops the connection.
            Some(p) => UnixStream::connect(&p)
                .map(|_| format!("{} accepts connections", p.display()))
                .map_err(|e| format!("{}: {e}", p.display())),
        },
    };
    let pid = || CheckItem {
        what: "syslog-ng pid".into(),
        result: reopener
            .syslog_ng_pid()
            .map(|p| format!("{p} (from the pidfile)"))
            .map_err(|e| format!("{e:#}")),
    };
    match config.reopen.method {
        ReopenMethod::None => vec![],
        ReopenMethod::Socket | ReopenMethod::Ctl => vec![socket()],
        ReopenMethod::Usr1 | ReopenMethod::Hup => vec![pid()],
        ReopenMethod::Auto => {
            let (s, p) = (socket(), pid());
            // auto needs one of them.
            if s.result.is_ok() || p.result.is_ok() {
                vec![s, p]
                    .into_iter()
                    .map(|mut i| {
                        if let Err(e) = &i.result {
                            i.result = Ok(format!("not usable ({e}), another method is"));
                        }
                        i
                    })
                    .collect()
            } else {
                vec![s, p]
            }
        }
    }
}

fn state_dir(config: &Config) -> CheckItem {
    let dir = &config.state_dir;
    let result = if !dir.exists() {
        Ok(format!("{} (created on first use)", dir.display()))
    } else if nix::unistd::access(dir.as_path(), nix::unistd::AccessFlags::W_OK).is_ok() {
        Ok(format!("{} is writable", dir.display()))
    } else {
        Err(format!(
            "{} is not writable by this user; run as root or fix its permissions",
            dir.display()
        ))
    };
    CheckItem {
        what: "state dir".into(),
        result,
    }
}
