//! Pure naming rules: rotated file names, the monotonic suffix, object keys.
//!
//! A rotated log is `<log name>-<suffix>` where the suffix is the log's mtime in Unix
//! seconds, raised above every suffix already used so that names sort in the order the
//! lines were written even when the clock goes back or two rotations share a second.

use std::fmt;

/// The stage a rotated file is in, read from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// `docker.log-<suffix>`: renamed away from the live log, not yet compressed.
    Plain,
    /// `docker.log-<suffix>.gz.part`: an unfinished compression (discarded on recovery).
    Partial,
    /// `docker.log-<suffix>.gz`: complete and durable, shipped or waiting to be.
    Compressed,
}

/// A file name in the rotation family of one log, e.g. `docker.log-1763766000.gz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedName {
    pub base: String,
    pub suffix: u64,
    pub stage: Stage,
}

impl RotatedName {
    pub fn new(base: &str, suffix: u64, stage: Stage) -> Self {
        RotatedName {
            base: base.to_owned(),
            suffix,
            stage,
        }
    }

    /// Parses `name` if it belongs to the rotation family of `base`; anything else
    /// (`docker.log.1`, `docker.log-2021.txt`, a leading zero) is not ours and is left alone.
    pub fn parse(base: &str, name: &str) -> Option<Self> {
        let rest = name.strip_prefix(base)?.strip_prefix('-')?;
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, tail) = rest.split_at(digits_end);
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
            return None;
        }
        let suffix = digits.parse().ok()?;
        let stage = match tail {
            "" => Stage::Plain,
            ".gz" => Stage::Compressed,
            ".gz.part" => Stage::Partial,
            _ => return None,
        };
        Some(RotatedName::new(base, suffix, stage))
    }
}

impl fmt::Display for RotatedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ext = match self.stage {
            Stage::Plain => "",
            Stage::Partial => ".gz.part",
            Stage::Compressed => ".gz",
        };
        write!(f, "{}-{}{}", self.base, self.suffix, ext)
    }
}

/// The suffix for the next rotation: the log's mtime in Unix seconds, or one more than
/// the largest suffix already used when the mtime is not larger (same second, clock
/// moved back, mtime before 1970).
pub fn choose_suffix(mtime_unix: i64, largest_used: Option<u64>) -> u64 {
    let mtime = u64::try_from(mtime_unix).unwrap_or(0);
    match largest_used {
        Some(used) if mtime <= used => used + 1,
        _ => mtime,
    }
}

/// The key of a shipped object: `<prefix>/<host>/<file name>`, without empty parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(prefix: &str, host: &str, file_name: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        let key = if prefix.is_empty() {
            format!("{host}/{file_name}")
        } else {
            format!("{prefix}/{host}/{file_name}")
        };
        ObjectKey(key)
    }

    /// A key from its non-empty parts, joined by `/` (src/key_template.rs).
    pub fn from_parts(parts: &[&str]) -> Self {
        ObjectKey(parts.join("/"))
    }

    /// A key as the destination holds it: listed, or read back from an incident index record
    /// (src/index.rs builds the keys of its records).
    pub fn stored(key: impl Into<String>) -> Self {
        ObjectKey(key.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_the_mtime_when_it_is_new() {
        assert_eq!(choose_suffix(1_763_766_000, None), 1_763_766_000);
        assert_eq!(
            choose_suffix(1_763_766_000, Some(1_763_765_999)),
            1_763_766_000
        );
    }

    #[test]
    fn suffix_collision_in_the_same_second_goes_up_by_one() {
        assert_eq!(
            choose_suffix(1_763_766_000, Some(1_763_766_000)),
            1_763_766_001
        );
        // two more rotations in that same second keep climbing
        assert_eq!(
            choose_suffix(1_763_766_000, Some(1_763_766_001)),
            1_763_766_002
        );
    }

    #[test]
    fn suffix_never_goes_back_when_the_clock_does() {
        assert_eq!(
            choose_suffix(1_600_000_000, Some(1_763_766_000)),
            1_763_766_001
        );
        assert_eq!(choose_suffix(-5, Some(7)), 8);
        assert_eq!(choose_suffix(-5, None), 0);
    }

    #[test]
    fn suffixes_strictly_increase_over_any_mtime_sequence() {
        let mtimes = [100, 100, 99, 50, 200, 200, 150, 201, 0, 202];
        let mut last = None;
        for m in mtimes {
            let s = choose_suffix(m, last);
            if let Some(l) = last {
                assert!(s > l, "{s} after {l}");
            }
            last = Some(s);
        }
    }

    #[test]
    fn names_round_trip_and_foreign_names_are_ignored() {
        for (name, suffix, stage) in [
            ("docker.log-17", 17, Stage::Plain),
            ("docker.log-17.gz", 17, Stage::Compressed),
            ("docker.log-17.gz.part", 17, Stage::Partial),
            ("docker.log-0", 0, Stage::Plain),
        ] {
            let parsed = RotatedName::parse("docker.log", name).unwrap();
            assert_eq!((parsed.suffix, parsed.stage), (suffix, stage));
            assert_eq!(parsed.to_string(), name);
        }
        for foreign in [
            "docker.log",
            "docker.log.1",
            "docker.log-",
            "docker.log-017",
            "docker.log-12.txt",
            "docker.log-12.gz.tmp",
            "docker.log-abc",
            "other.log-12",
            "docker.logx-12",
            "docker.log-99999999999999999999999",
        ] {
            assert_eq!(RotatedName::parse("docker.log", foreign), None, "{foreign}");
        }
    }

    #[test]
    fn keys_join_prefix_host_and_name() {
        assert_eq!(
            ObjectKey::new("", "web1", "docker.log-5.gz").as_str(),
            "web1/docker.log-5.gz"
        );
        assert_eq!(
            ObjectKey::new("/logs/prod/", "web1", "docker.log-5.gz").as_str(),
            "logs/prod/web1/docker.log-5.gz"
        );
    }
}
