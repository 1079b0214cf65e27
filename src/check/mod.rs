//! `fasttrack check`: is the destination reachable and writable, do credentials resolve, is
//! the clock in step with the store's, can syslog-ng be asked to reopen and does it run
//! `fasttrack watch`, is the log still written, does logrotate rotate it too, is the state dir
//! usable and private, does the webhook answer, and under SELinux may `watch` (fasttrack_t,
//! not the shell's domain) use those paths. One `OK`/`WARN`/`FAIL` line each, with the
//! fix; exit 0 unless a line is FAIL. A WARN does not change the exit code: fasttrack works,
//! but something should be looked at (a secret others can read, a silent log, dropped lines).
//! Nothing is left behind (the test object is removed); a webhook gets a message only with
//! `--notify-test`.

mod logrotate;
mod selinux;
mod selinuxfs;
mod syslog_ng;

use crate::cli::CheckArgs;
use crate::config::Config;
use crate::dest::{self, CheckItem, Verdict};
use crate::exit::Outcome;
use crate::notify::Notifier;
use crate::output::print;
use crate::state::unsafe_state_dir;
use anyhow::Result;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A log that syslog-ng has not written for longer than this gets a WARN: on a Docker host
/// whose containers log anything at all, six hours of silence means syslog-ng stopped
/// writing there (a failed reload, a changed destination, a full disk).
const LOG_SILENT_WARN: Duration = Duration::from_secs(6 * 3600);

pub fn run(config: &Config, args: &CheckArgs) -> Result<Outcome> {
    let dest_url = config.require_dest()?;
    print(format_args!(
        "destination {dest_url} (host {})\n",
        config.host
    ))?;
    let now = chrono::Utc::now();
    // Where a file rotated now would go (--key-template), so the probe tests that place.
    let probe = dest_url.key(
        &config.key_template,
        &config.host,
        &format!(
            ".fasttrack-check-{}-{}",
            now.timestamp(),
            std::process::id()
        ),
        now,
    )?;
    let mut items = match dest::open(config) {
        Ok(destination) => destination.check(&probe),
        Err(e) => vec![CheckItem::fail("destination", format!("{e:#}"))],
    };
    items.extend(syslog_ng::items(config));
    items.push(log_item(
        &config.log,
        std::fs::metadata(&config.log),
        SystemTime::now(),
    ));
    items.push(match &args.logrotate_conf {
        Some(given) => logrotate::item(given, &config.log, true),
        None => logrotate::item(Path::new(logrotate::MAIN_CONFIG), &config.log, false),
    });
    items.extend(state_dir(config));
    items.extend(webhook(config, args.notify_test));
    items.extend(secret_files(config));
    items.extend(selinuxfs::items(config));

    let mut all_ok = true;
    for item in &items {
        let label = match item.verdict {
            Verdict::Ok => "OK",
            Verdict::Warn => "WARN",
            Verdict::Fail => {
                all_ok = false;
                "FAIL"
            }
        };
        print(format_args!("{label:<6}{}: {}\n", item.what, item.detail))?;
    }
    Ok(if all_ok {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

/// Is syslog-ng still writing the log? From its metadata (or why there are none) and now.
fn log_item(log: &Path, meta: std::io::Result<std::fs::Metadata>, now: SystemTime) -> CheckItem {
    let what = format!("log {}", log.display());
    let meta = match meta {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return CheckItem::ok(
                what,
                "not there yet: syslog-ng creates it with the first container line",
            )
        }
        Err(e) => {
            return CheckItem::fail(
                what,
                format!("cannot read its metadata: {e}; run as root or fix --log"),
            )
        }
    };
    let written = meta.modified().unwrap_or(now);
    let age = now.duration_since(written).unwrap_or_default();
    let ago = humantime::format_duration(Duration::from_secs(age.as_secs()));
    if age > LOG_SILENT_WARN {
        CheckItem::warn(
            what,
            format!(
                "last written {ago} ago: if the containers log anything, syslog-ng no longer writes here; \
                 look for d_docker in `syslog-ng-ctl stats` and at syslog-ng's own messages"
            ),
        )
    } else {
        CheckItem::ok(
            what,
            format!("last written {ago} ago, {} bytes", meta.len()),
        )
    }
}

/// The state dir: writable, not open to others, and files in it not readable by everyone.
fn state_dir(config: &Config) -> Vec<CheckItem> {
    let dir = &config.state_dir;
    let what = "state dir";
    let meta = match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return vec![CheckItem::ok(
                what,
                format!("{} (created on first use)", dir.display()),
            )]
        }
        Err(e) => return vec![CheckItem::fail(what, format!("{}: {e}", dir.display()))],
        Ok(m) => m,
    };
    let euid = nix::unistd::geteuid().as_raw();
    if let Some(problem) = unsafe_state_dir(meta.mode(), meta.uid(), euid) {
        return vec![CheckItem::fail(
            what,
            format!("{}: {problem}", dir.display()),
        )];
    }
    if nix::unistd::access(dir.as_path(), nix::unistd::AccessFlags::W_OK).is_err() {
        return vec![CheckItem::fail(
            what,
            format!(
                "{} is not writable by this user; run as root or fix its permissions",
                dir.display()
            ),
        )];
    }
    let mut items = vec![CheckItem::ok(
        what,
        format!(
            "{} is writable (mode {:04o})",
            dir.display(),
            meta.mode() & 0o7777
        ),
    )];
    let open: Vec<String> = walk(dir, 2)
        .into_iter()
        .filter(|(_, mode)| mode & 0o006 != 0)
        .map(|(p, mode)| format!("{} ({:04o})", p.display(), mode & 0o7777))
        .collect();
    if !open.is_empty() {
        items.push(CheckItem::warn(
            "state files",
            format!(
                "{} can be read or written by every local user (made by an older fasttrack or by hand); \
                 run `chmod o-rwx` on them",
                open.join(", ")
            ),
        ));
    }
    items
}

/// Regular files under `dir`, `depth` levels deep, with their modes.
fn walk(dir: &Path, depth: usize) -> Vec<(std::path::PathBuf, u32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() {
            out.push((entry.path(), meta.mode()));
        } else if meta.is_dir() && depth > 1 {
            out.extend(walk(&entry.path(), depth - 1));
        }
    }
    out.sort();
    out
}

/// The webhooks, one line per route: reachable (a HEAD request), or a test message posted
/// when asked; and the notifications still waiting with their last error.
fn webhook(config: &Config, send_test: bool) -> Vec<CheckItem> {
    let Some(notify) = &config.incident.notify else {
        if send_test {
            return vec![CheckItem::fail(
                "webhook",
                "--notify-test: no webhook configured; set --notify or a [[route]]",
            )];
        }
        return vec![];
    };
    let notifier = match Notifier::new(notify) {
        Ok(n) => n,
        Err(e) => return vec![CheckItem::fail("webhook", format!("{e:#}"))],
    };
    let mut items: Vec<CheckItem> = notify
        .routes
        .iter()
        .map(|route| {
            let what = format!("webhook {} (route {})", route.redacted_url(), route.name);
            let fix = "; check the URL (--notify or the route's url) and the network path to it";
            if send_test {
                match notifier.send_test(route, &config.host) {
                    Ok(()) => CheckItem::ok(what, "posted a test message; look for it in the channel"),
                    Err(e) => CheckItem::fail(what, format!("{e:#}{fix}")),
                }
            } else {
                match notifier.probe(route) {
                    Ok(status) => CheckItem::ok(
                        what,
                        format!(
                            "answers (HTTP {} to HEAD); `fasttrack check --notify-test` posts a test message",
                            status.as_u16()
                        ),
                    ),
                    Err(e) => CheckItem::fail(what, format!("{e:#}{fix}")),
                }
            }
        })
        .collect();
    let waiting = crate::notify::pending(&config.state_dir);
    if let Some((_, job)) = waiting.iter().find(|(_, j)| j.last_error.is_some()) {
        items.push(CheckItem::warn(
            "notifications",
            format!(
                "{} waiting to be sent; the last error: {}; `fasttrack status` lists them",
                waiting.len(),
                job.last_error.as_deref().unwrap_or_default()
            ),
        ));
    }
    items
}

/// The files fasttrack reads that hold a secret, each with what it holds: the config file when
/// it has a secret key (the webhook URL), the AWS shared credentials file when one is named.
fn secret_files(config: &Config) -> Vec<CheckItem> {
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
            Some(CheckItem::warn(
                format!("{what} {}", path.display()),
                format!(
                    "it holds {holds}, a secret, and {who} (mode {mode:04o}); run `{fix} {path}`",
                    path = path.display(),
                    mode = meta.mode() & 0o7777,
                ),
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
