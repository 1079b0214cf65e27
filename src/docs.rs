//! The man page `fasttrack.1` and the shell completions (`fasttrack.bash`, `_fasttrack`,
//! `fasttrack.fish`), generated from the clap definition in [`crate::cli`] so that they can
//! never disagree with the binary: `fasttrack generate-docs OUT_DIR` (a hidden subcommand,
//! used by `packaging/stage.sh` for the RPM and the .deb). The man page's date comes from
//! `SOURCE_DATE_EPOCH` when it is set.

use crate::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;
use std::path::{Path, PathBuf};

const BIN: &str = "fasttrack";

/// Writes the man page and the completions into `out`; returns the files written.
pub fn generate(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let mut written = vec![write_man(out)?];
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = Cli::command();
        written.push(clap_complete::generate_to(shell, &mut cmd, BIN, out)?);
    }
    Ok(written)
}

fn write_man(out: &Path) -> std::io::Result<PathBuf> {
    let cmd = Cli::command();
    // An empty date would shift the other .TH fields, so there is always one.
    let man = Man::new(cmd.clone())
        .title("FASTTRACK")
        .section("1")
        .date(man_date())
        .manual("User Commands");

    let mut w: Vec<u8> = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    man.render_synopsis_section(&mut w)?;
    man.render_description_section(&mut w)?;
    // OPTIONS and S3 DESTINATION (the help headings of src/cli.rs).
    man.render_options_section(&mut w)?;
    // Not render_subcommands_section: it points to fasttrack-watch(1) etc., which do not exist.
    extra_sections(&cmd).to_writer(&mut w)?;
    man.render_version_section(&mut w)?;

    // Each render_* call repeats roff's two-line preamble; keep only the first.
    let text = String::from_utf8_lossy(&w);
    let mut page = String::with_capacity(text.len());
    let mut seen_preamble = false;
    for line in text.lines() {
        let preamble = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if preamble && seen_preamble {
            continue;
        }
        seen_preamble |= line.starts_with(".el .ds Aq");
        page.push_str(line);
        page.push('\n');
        if line.starts_with(".TH ") {
            // No hyphenation (it would split flags and variable names), ragged right.
            page.push_str(".nh\n.ad l\n");
        }
    }
    let path = out.join("fasttrack.1");
    std::fs::write(&path, page)?;
    Ok(path)
}

/// COMMANDS, WATCH OPTIONS, CONFIGURATION, EXIT STATUS, FILES and SEE ALSO.
fn extra_sections(cmd: &clap::Command) -> Roff {
    let mut r = Roff::new();
    commands(&mut r, cmd);
    watch_options(&mut r, cmd);
    configuration(&mut r);
    exit_status(&mut r);
    files(&mut r);
    see_also(&mut r);
    r
}

fn commands(r: &mut Roff, cmd: &clap::Command) {
    r.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        r.control("TP", []);
        r.text([bold(format!("{BIN} {}", sub.get_name()))]);
        let about = sub.get_long_about().or(sub.get_about());
        r.text([roman(about.map(|a| a.to_string()).unwrap_or_default())]);
    }
}

fn watch_options(r: &mut Roff, cmd: &clap::Command) {
    // src/cli.rs defines it; a page without the section beats no page.
    let Some(watch) = cmd.find_subcommand("watch") else {
        return;
    };
    r.control("SH", ["WATCH OPTIONS"]);
    r.text([
        roman("Accepted after "),
        bold("fasttrack watch"),
        roman(" only (and as keys of the config file):"),
    ]);
    for arg in watch.get_arguments().filter(|a| {
        !a.is_global_set() && !a.is_hide_set() && a.get_long().is_some_and(|l| l != "help")
    }) {
        let long = arg.get_long().unwrap_or_default();
        let value = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map(|v| v.to_string())
            .unwrap_or_else(|| "VALUE".to_string());
        r.control("TP", []);
        r.text([
            bold(format!("--{long}")),
            roman(" "),
            italic(format!("<{value}>")),
        ]);
        r.text([roman(
            arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
        )]);
        if let Some(env) = arg.get_env() {
            r.control("RS", []);
            r.text([
                roman("May also be specified with the "),
                bold(env.to_string_lossy()),
                roman(" environment variable."),
            ]);
            r.control("RE", []);
        }
    }
}

fn configuration(r: &mut Roff) {
    r.control("SH", ["CONFIGURATION"]);
    r.text([
        roman("Every option is a flag, an environment variable "),
        bold("FASTTRACK_"),
        italic("NAME"),
        roman(" (the long flag in upper case, with underscores) and a key of the TOML config file named like the long flag without its leading dashes (e.g. "),
        bold("state-dir = \"/var/lib/fasttrack\""),
        roman(", "),
        bold("max-wait = \"10m\""),
        roman(", "),
        bold("part-size = \"16MiB\""),
        roman("). Precedence: flag, then environment, then file, then the default. A missing default file means defaults; a missing file given with "),
        bold("--config"),
        roman(" is an error. Durations are written like 500ms, 30s, 10m, 1h. The installed "),
        italic("/etc/fasttrack/fasttrack.toml"),
        roman(" lists every key, commented out."),
    ]);
}

fn exit_status(r: &mut Roff) {
    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "Done."),
        (
            "1",
            "Error, including a file kept unshipped because of an error that retrying cannot fix (no such bucket, access denied, wrong credentials); the message says what to change.",
        ),
        ("2", "Usage or configuration error."),
        (
            "3",
            "Rotated (or nothing to rotate), but a file is still waiting to be shipped after a temporary failure; retry later (watch retries by itself). For status: a file is pending.",
        ),
        (
            "70",
            "Internal error: a panic in any thread, whose reason is in fasttrack's log; watch then ends whole so that syslog-ng starts a new one.",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(code)]);
        r.text([roman(meaning)]);
    }
    r.control("PP", []);
    r.text([roman(
        "fasttrack never exits 127, which would make syslog-ng stop the destination until its next reload.",
    )]);
}

fn files(r: &mut Roff) {
    r.control("SH", ["FILES"]);
    for (file, meaning) in [
        (
            "/etc/fasttrack/fasttrack.toml",
            "The config file (default of --config).",
        ),
        (
            "/etc/syslog-ng/conf.d/fasttrack.conf",
            "The syslog-ng snippet: the Docker source, the 5xx filter, docker.log and the program() destination that runs fasttrack watch.",
        ),
        (
            "/var/log/docker.log",
            "The log syslog-ng writes (default of --log); rotated files docker.log-SUFFIX.gz live beside it.",
        ),
        (
            "/var/lib/fasttrack/",
            "The state dir (default of --state-dir): lock, watch.lock, state.toml, the incident marker, incident-digest.json, notify/ (notifications waiting) and uploads/ (the journal of multipart uploads in progress).",
        ),
        (
            "/var/log/fasttrack.log",
            "fasttrack's own log (default of --log-file).",
        ),
    ] {
        r.control("TP", []);
        r.text([italic(file)]);
        r.text([roman(meaning)]);
    }
}

fn see_also(r: &mut Roff) {
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("syslog-ng"),
        roman("(8), "),
        bold("syslog-ng.conf"),
        roman("(5), "),
        bold("syslog-ng-ctl"),
        roman("(1), "),
        bold("gzip"),
        roman("(1), "),
        bold("logrotate"),
        roman("(8)"),
    ]);
}

/// `SOURCE_DATE_EPOCH` (reproducible builds), else today, as YYYY-MM-DD.
fn man_date() -> String {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_else(chrono::Utc::now)
        .format("%Y-%m-%d")
        .to_string()
}
