//! `--key-template`: where each object goes. Variables: `{prefix}` (of `s3://BUCKET/PREFIX`),
//! `{host}`, `{file}` (the shipped file's name), and from the rotated file's suffix (its
//! mtime, UTC) `{date}` (`YYYY-MM-DD`), `{year}`, `{month}`, `{day}`, `{hour}`. The default,
//! `{prefix}/{host}/{file}`, is the layout fasttrack always had. Empty parts (no prefix) are
//! dropped. Checked when fasttrack starts: an unknown variable, no `{file}` (every file would
//! land on one key), a `..` part or a leading `/` is a configuration error.

use crate::config::values::{Invalid, SettingValue};
use crate::naming::ObjectKey;
use chrono::{DateTime, Datelike, Timelike, Utc};
use std::str::FromStr;

pub const DEFAULT_KEY_TEMPLATE: &str = "{prefix}/{host}/{file}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Prefix,
    Host,
    File,
    Date,
    Year,
    Month,
    Day,
    Hour,
}

const VARS: &[(&str, Var)] = &[
    ("prefix", Var::Prefix),
    ("host", Var::Host),
    ("file", Var::File),
    ("date", Var::Date),
    ("year", Var::Year),
    ("month", Var::Month),
    ("day", Var::Day),
    ("hour", Var::Hour),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A parsed key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<Part>,
    text: String,
}

impl Default for KeyTemplate {
    fn default() -> Self {
        // Invariant: the default template is valid (a unit test parses it).
        DEFAULT_KEY_TEMPLATE
            .parse()
            .expect("the default key template parses")
    }
}

impl FromStr for KeyTemplate {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let bad =
            |why: String| Invalid::Value(format!("{text:?} is not a valid key template: {why}"));
        let names = || {
            VARS.iter()
                .map(|(n, _)| format!("{{{n}}}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut parts = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(i) if rest.as_bytes()[i] == b'}' => {
                    return Err(bad("a } without its {".into()))
                }
                Some(i) => {
                    if i > 0 {
                        parts.push(Part::Text(rest[..i].to_string()));
                    }
                    let close = rest[i..]
                        .find('}')
                        .ok_or_else(|| bad("a { without its }".into()))?
                        + i;
                    let name = &rest[i + 1..close];
                    let var = VARS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| *v)
                        .ok_or_else(|| {
                            bad(format!("unknown variable {{{name}}}; use {}", names()))
                        })?;
                    parts.push(Part::Var(var));
                    rest = &rest[close + 1..];
                }
                None => {
                    parts.push(Part::Text(rest.to_string()));
                    rest = "";
                }
            }
        }
        if !parts.contains(&Part::Var(Var::File)) {
            return Err(bad(
                "it has no {file}, so every rotated file would go to the same key".into(),
            ));
        }
        let template = KeyTemplate {
            parts,
            text: text.trim().to_string(),
        };
        if text.trim().starts_with('/') {
            return Err(bad("keys do not start with /".into()));
        }
        if text.split('/').any(|p| p == ".." || p == ".") {
            return Err(bad("a key has no . or .. parts".into()));
        }
        Ok(template)
    }
}

impl SettingValue for KeyTemplate {
    type Toml = String;
}

impl std::fmt::Display for KeyTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl KeyTemplate {
    /// The key of `file` rotated at `at` on `host` (empty parts dropped); an error if the
    /// values make a key S3 or a directory cannot take (a `..` part, nothing left).
    pub fn render(
        &self,
        prefix: &str,
        host: &str,
        file: &str,
        at: DateTime<Utc>,
    ) -> Result<ObjectKey, String> {
        let mut key = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => key.push_str(t),
                Part::Var(v) => key.push_str(&match v {
                    Var::Prefix => prefix.trim_matches('/').to_string(),
                    Var::Host => host.to_string(),
                    Var::File => file.to_string(),
                    Var::Date => at.format("%Y-%m-%d").to_string(),
                    Var::Year => format!("{:04}", at.year()),
                    Var::Month => format!("{:02}", at.month()),
                    Var::Day => format!("{:02}", at.day()),
                    Var::Hour => format!("{:02}", at.hour()),
                }),
            }
        }
        let parts: Vec<&str> = key.split('/').filter(|p| !p.is_empty()).collect();
        if parts.iter().any(|p| *p == ".." || *p == ".") {
            return Err(format!(
                "key template {} makes the key {key:?}, with a . or .. part",
                self.text
            ));
        }
        if parts.is_empty() {
            return Err(format!("key template {} makes an empty key", self.text));
        }
        Ok(ObjectKey::from_parts(&parts))
    }

    /// Whether keys may differ by the file's date (a `report` or `status` cannot guess them).
    pub fn is_default(&self) -> bool {
        self.text == DEFAULT_KEY_TEMPLATE
    }
}

/// The time a suffix stands for (the rotated file's mtime, Unix seconds).
pub fn suffix_time(suffix: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(suffix.min(i64::MAX as u64) as i64, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-03T07:05:09Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_default_is_the_old_layout() {
        let t = KeyTemplate::default();
        assert!(t.is_default());
        assert_eq!(
            t.render("fast-track", "web1", "docker.log-9.gz", at())
                .unwrap()
                .as_str(),
            "fast-track/web1/docker.log-9.gz"
        );
        assert_eq!(
            t.render("", "web1", "docker.log-9.gz", at())
                .unwrap()
                .as_str(),
            "web1/docker.log-9.gz"
        );
        assert_eq!(
            t.render("", "web1", "f", at()).unwrap(),
            ObjectKey::new("", "web1", "f"),
        );
    }

    #[test]
    fn hive_style_partitions() {
        let t: KeyTemplate = "logs/dt={date}/host={host}/{file}".parse().unwrap();
        assert_eq!(
            t.render("p", "web1", "docker.log-9.gz", at())
                .unwrap()
                .as_str(),
            "logs/dt=2026-12-03/host=web1/docker.log-9.gz"
        );
        let t: KeyTemplate = "{prefix}/{year}/{month}/{day}/{hour}/{host}-{file}"
            .parse()
            .unwrap();
        assert_eq!(
            t.render("p/", "h", "f.gz", at()).unwrap().as_str(),
            "p/2026/12/03/07/h-f.gz"
        );
    }

    #[test]
    fn bad_templates_are_refused_saying_why() {
        for (text, why) in [
            (
                "{prefix}/{hots}/{file}",
                "unknown variable {hots}; use {prefix} {host} {file}",
            ),
            ("{prefix}/{host}", "it has no {file}"),
            ("/logs/{file}", "keys do not start with /"),
            ("logs/../{file}", "a key has no . or .. parts"),
            ("logs/{file", "a { without its }"),
            ("logs}/{file}", "a } without its {"),
        ] {
            let e = text
                .parse::<KeyTemplate>()
                .unwrap_err()
                .at("--key-template");
            assert!(e.contains(why), "{text}: {e}");
            assert!(
                e.starts_with(&format!(
                    "--key-template {text:?} is not a valid key template"
                )),
                "{e}"
            );
        }
        let t: KeyTemplate = "{host}/{file}".parse().unwrap();
        assert!(t
            .render("", "..", "f", at())
            .unwrap_err()
            .contains(". or .. part"));
    }

    #[test]
    fn suffixes_are_utc_times() {
        assert_eq!(suffix_time(0).to_rfc3339(), "1970-01-01T00:00:00+00:00");
        assert_eq!(
            suffix_time(1_796_281_509).format("%Y-%m-%d %H").to_string(),
            "2026-12-03 07"
        );
    }
}
