//! Does logrotate also rotate the log fasttrack rotates? Two rotators on one file is the
//! classic mistake of a migration from the logrotate + gzip chain fasttrack replaces: each
//! renames the file under the other, and lines end up in files nobody ships, or twice.
//!
//! logrotate's config grammar, as far as this check needs it (logrotate(8)): `#` starts a
//! comment line; outside braces a line starting with a letter is a directive (`include FILE|DIR`
//! pulls in a file or every file of a directory except backups such as `*.dpkg-old`); anything
//! else is a list of log paths or shell globs, possibly over several lines and quoted, ended by
//! `{`; inside braces everything up to `}` applies to that list, and a script from
//! `postrotate`/`prerotate`/`firstaction`/`lastaction`/`preremove` to `endscript` is opaque
//! (it may hold braces).

use crate::dest::CheckItem;
use std::path::{Path, PathBuf};

/// File name endings logrotate skips in an included directory (Debian's default `tabooext`).
const TABOO: &[&str] = &[
    ",v",
    ".cfsaved",
    ".disabled",
    ".dpkg-bak",
    ".dpkg-del",
    ".dpkg-dist",
    ".dpkg-new",
    ".dpkg-old",
    ".rpmnew",
    ".rpmorig",
    ".rpmsave",
    ".swp",
    ".ucf-dist",
    ".ucf-new",
    ".ucf-old",
    "~",
];

/// Where logrotate reads its config from, unless `--logrotate-conf` says otherwise.
pub const MAIN_CONFIG: &str = "/etc/logrotate.conf";

/// Includes followed from the main config at most this deep (a loop stops here).
const MAX_DEPTH: usize = 4;

/// What one config file says: its log patterns with their line numbers, and its includes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub patterns: Vec<(usize, String)>,
    pub includes: Vec<String>,
}

/// Reads one logrotate config file's text.
pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut in_block = false;
    let mut in_script = false;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if in_script {
            in_script = line != "endscript";
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if in_block {
            let word = line.split_whitespace().next().unwrap_or("");
            if matches!(
                word,
                "postrotate" | "prerotate" | "firstaction" | "lastaction" | "preremove"
            ) {
                in_script = true;
            } else if line.starts_with('}') {
                in_block = false;
            }
            continue;
        }
        if line.starts_with(|c: char| c.is_ascii_alphabetic()) {
            let mut words = line.split_whitespace();
            if words.next() == Some("include") {
                if let Some(target) = words.next() {
                    out.includes.push(unquote(target).to_string());
                }
            }
            continue;
        }
        let (list, opens) = match line.split_once('{') {
            Some((list, _)) => (list, true),
            None => (line, false),
        };
        out.patterns
            .extend(words(list).into_iter().map(|w| (index + 1, w)));
        in_block = opens;
    }
    out
}

/// The words of a file list, where `"..."` and `'...'` keep spaces.
fn words(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let (word, after) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => match rest[1..].find(q) {
                Some(end) => (&rest[1..=end], &rest[end + 2..]),
                None => (&rest[1..], ""),
            },
            _ => rest.split_at(rest.find(char::is_whitespace).unwrap_or(rest.len())),
        };
        if !word.is_empty() {
            out.push(word.to_string());
        }
        rest = after.trim_start();
    }
    out
}

fn unquote(s: &str) -> &str {
    s.trim_matches(|c| c == '"' || c == '\'')
}

/// Whether logrotate's `pattern` names `log` (a glob as glob(3) reads it: `*` stops at `/`).
pub fn names(pattern: &str, log: &Path) -> bool {
    if Path::new(pattern) == log {
        return true;
    }
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches_path_with(log, options))
}

/// A rule of a config file that rotates the log.
#[derive(Debug, PartialEq, Eq)]
pub struct Hit {
    pub file: PathBuf,
    pub line: usize,
    pub pattern: String,
}

/// Every rule under `main` (and what it includes) naming `log` or the file it resolves to;
/// the files that could not be read, with why.
pub fn scan(main: &Path, log: &Path) -> (Vec<Hit>, Vec<String>) {
    let resolved = std::fs::canonicalize(log).ok();
    let mut hits = Vec::new();
    let mut unreadable = Vec::new();
    let mut queue = vec![(main.to_path_buf(), 0)];
    let mut seen = std::collections::HashSet::new();
    while let Some((file, depth)) = queue.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                unreadable.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        let parsed = parse(&text);
        for (line, pattern) in parsed.patterns {
            if names(&pattern, log) || resolved.as_deref().is_some_and(|r| names(&pattern, r)) {
                hits.push(Hit {
                    file: file.clone(),
                    line,
                    pattern,
                });
            }
        }
        if depth < MAX_DEPTH {
            for include in parsed.includes {
                queue.extend(included_files(Path::new(&include)).map(|f| (f, depth + 1)));
            }
        }
    }
    hits.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    (hits, unreadable)
}

/// An include's files: the file itself, or a directory's files but its backups.
fn included_files(target: &Path) -> Box<dyn Iterator<Item = PathBuf>> {
    if !target.is_dir() {
        return Box::new(std::iter::once(target.to_path_buf()));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(target)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            !name.starts_with('.') && !TABOO.iter().any(|t| name.ends_with(t))
        })
        .collect();
    files.sort();
    Box::new(files.into_iter())
}

/// The check line; `given`: `main` was named by `--logrotate-conf`, so it must exist.
pub fn item(main: &Path, log: &Path, given: bool) -> CheckItem {
    let what = "logrotate";
    if given && !main.exists() {
        return CheckItem::fail(
            what,
            format!("{}: no such file; fix --logrotate-conf", main.display()),
        );
    }
    if !main.exists() {
        return CheckItem::ok(
            what,
            format!(
                "{} not found: logrotate does not rotate {}",
                main.display(),
                log.display()
            ),
        );
    }
    let (hits, unreadable) = scan(main, log);
    if let Some(first) = hits.first() {
        let rules: Vec<String> = hits
            .iter()
            .map(|h| format!("{}:{} ({})", h.file.display(), h.line, h.pattern))
            .collect();
        return CheckItem::fail(
            what,
            format!(
                "{} also rotates {}: two rotators lose and duplicate lines; remove {} from {} \
                 (fasttrack rotates it), then run `fasttrack check` again",
                rules.join(", "),
                log.display(),
                first.pattern,
                first.file.display()
            ),
        );
    }
    if !unreadable.is_empty() {
        return CheckItem::warn(
            what,
            format!(
                "cannot read {}: run `fasttrack check` as root to see whether logrotate rotates {}",
                unreadable.join(", "),
                log.display()
            ),
        );
    }
    CheckItem::ok(
        what,
        format!(
            "no rule in {} or its includes rotates {}",
            main.display(),
            log.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's /etc/logrotate.d/rsyslog, with a docker line added the way the seed's old
    /// chain had it, and a script holding braces.
    const RSYSLOG: &str = r#"
# comment /var/log/docker.log {
/var/log/syslog
/var/log/mail.log
"/var/log/docker.log"
{
	rotate 4
	weekly
	postrotate
		if [ -d /run/systemd ]; then { /usr/lib/rsyslog/rsyslog-rotate; }; fi
		echo /var/log/docker.log }
	endscript
}
/var/log/*.txt /srv/log/a.log {
	daily
}
"#;

    #[test]
    fn file_lists_span_lines_and_scripts_are_opaque() {
        let parsed = parse(RSYSLOG);
        assert_eq!(
            parsed.patterns,
            vec![
                (3, "/var/log/syslog".to_string()),
                (4, "/var/log/mail.log".to_string()),
                (5, "/var/log/docker.log".to_string()),
                (14, "/var/log/*.txt".to_string()),
                (14, "/srv/log/a.log".to_string()),
            ]
        );
        assert!(parsed.includes.is_empty());
    }

    #[test]
    fn directives_and_includes() {
        let parsed = parse("weekly\nrotate 4\ninclude /etc/logrotate.d\n/var/log/wtmp {\n}\n");
        assert_eq!(parsed.includes, vec!["/etc/logrotate.d".to_string()]);
        assert_eq!(parsed.patterns, vec![(4, "/var/log/wtmp".to_string())]);
    }

    #[test]
    fn quoted_names_keep_their_spaces() {
        assert_eq!(
            words(r#"/a "/b c" '/d e' /f"#),
            vec!["/a", "/b c", "/d e", "/f"]
        );
    }

    #[test]
    fn globs_match_as_glob3_does() {
        let log = Path::new("/var/log/docker.log");
        for yes in [
            "/var/log/docker.log",
            "/var/log/*.log",
            "/var/log/docker*",
            "/var/log/d?cker.[l]og",
        ] {
            assert!(names(yes, log), "{yes}");
        }
        for no in [
            "/var/log/*/docker.log",
            "/var/*",
            "/var/log/docker.log.1",
            "/var/log/*.txt",
        ] {
            assert!(!names(no, log), "{no}");
        }
    }
}
