//! `fasttrack check`: is the destination reachable and writable, do credentials resolve, can
//! syslog-ng be asked to reopen, is the state dir usable. One OK/FAIL line each; exit 0 only
//! if every line is OK. Nothing is left behind (the test object is removed). A file holding a
//! secret that other users can read gets a WARN line, which does not change the exit code:
//! fasttrack works, but the secret should be moved or the file's mode fixed.

use crate::cli::ReopenMethod;
use crate::config::Config;
use crate::dest::{self, CheckItem};
use crate::exit::Outcome;
use crate::output::print;
use crate::reopen::Reopener;
use anyhow::Result;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

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
    for warning in secret_files(config) {
        print(format_args!("WARN  {warning}\n"))?;
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

/// The files fasttrack reads that hold a secret, each with what it holds: the config file when
/// it has a secret key (the webhook URL), the AWS shared credentials file when one is named.
fn secret_files(config: &Config) -> Vec<String> {
    let mut files: Vec<(&str, &Path, String)> = Vec::new();
    if let (Some(file), false) = (&config.config_file, config.secret_keys_in_file.is_empty()) {
        files.push(("config file", file, config.secret_keys_in_file.join(", ")));
    }
    if let Some(file) = &config.s3.aws_credentials_file {
        files.push(("aws credentials file", file, "AWS keys".to_string()));
    }
    files
        .into_iter()
        .filter_map(|(what, path, holds)| {
            // A file that cannot be read is reported by the checks that need it.
            let meta = std::fs::metadata(path).ok()?;
            let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(meta.gid()))
                .ok()
                .flatten()
                .map_or_else(|| meta.gid().to_string(), |g| g.name);
            let (who, fix) = secret_file_exposure(meta.mode(), meta.gid(), &group)?;
            Some(format!(
                "{what} {path}: it holds {holds}, a secret, and {who} (mode {mode:04o}); run `{fix} {path}`",
                path = path.display(),
                mode = meta.mode() & 0o7777,
            ))
        })
        .collect()
}

/// Who besides its owner (and root's group) can read a file with this mode and group, and the
/// command that stops it; `None` if nobody. Group root is trusted: the packaged config file is
/// 0640 root:root.
pub fn secret_file_exposure(mode: u32, gid: u32, group: &str) -> Option<(String, &'static str)> {
    if mode & 0o004 != 0 {
        Some(("every local user can read it".to_string(), "chmod o-r"))
    } else if mode & 0o040 != 0 && gid != 0 {
        Some((
            format!("the members of group {group} can read it"),
            "chgrp root",
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_exposed_when_others_or_a_group_other_than_root_can_read_it() {
        assert_eq!(secret_file_exposure(0o100640, 0, "root"), None);
        assert_eq!(secret_file_exposure(0o600, 4, "adm"), None);
        assert_eq!(secret_file_exposure(0o620, 4, "adm"), None);
        assert_eq!(
            secret_file_exposure(0o100644, 0, "root"),
            Some(("every local user can read it".to_string(), "chmod o-r"))
        );
        assert_eq!(
            secret_file_exposure(0o640, 4, "adm"),
            Some((
                "the members of group adm can read it".to_string(),
                "chgrp root"
            ))
        );
    }
}
