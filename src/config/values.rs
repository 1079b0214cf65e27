//! The typed value of each setting, defined once: its `FromStr` is what a flag, a
//! `FASTTRACK_*` variable and a config file key all mean. Clap reads a field of src/cli.rs as a
//! [`Given<T>`] through `T::from_str`; serde reads the same field from the file as the TOML type
//! [`SettingValue::Toml`] and hands its text to the same `from_str`.
//!
//! A refused value is kept as an [`Invalid`], not raised at once, because only `Config` knows
//! where it came from (the flag, the variable or the file key the message must name) and whether
//! it is used at all: a flag overrides a bad value in the file, and `--notify-format` is read only
//! when `--notify` is set.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use std::convert::Infallible;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

/// Why a value is refused, worded to go with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Follows the origin: `--keep` + `"ten" is not valid: expected a number of files, 0 or more`.
    Value(String),
    /// A sentence, followed by ` (from ORIGIN)`: `destination "ftp://x" is not a URL...`.
    Sentence(String),
}

impl Invalid {
    /// The message for a value that came from `origin` (`--keep`, `FASTTRACK_KEEP`, `keep in FILE`).
    pub fn at(&self, origin: &str) -> String {
        match self {
            Invalid::Value(rest) => format!("{origin} {rest}"),
            Invalid::Sentence(sentence) => format!("{sentence} (from {origin})"),
        }
    }
}

impl From<Infallible> for Invalid {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

/// A setting as written on the command line, in the environment or in the file: its typed
/// value, or why the text is not one (raised by `Config` with the place it came from).
#[derive(Debug, Clone)]
pub struct Given<T>(Result<T, Invalid>);

impl<T> Given<T> {
    pub fn get(&self) -> Result<&T, &Invalid> {
        self.0.as_ref()
    }
}

/// What clap calls for each flag or variable value (its value parser), and what tests write.
impl<T: FromStr<Err = Invalid>> From<&str> for Given<T> {
    fn from(text: &str) -> Self {
        Given(text.parse())
    }
}

/// A value the config file can hold: the TOML type its key takes (any other type is the file's
/// error, which toml locates), whose text then goes through `from_str` like a flag's.
pub trait SettingValue: FromStr<Err = Invalid> {
    type Toml: DeserializeOwned + TomlText;
}

impl<'de, T: SettingValue> Deserialize<'de> for Given<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = T::Toml::deserialize(deserializer)?;
        Ok(Given::from(value.into_text().as_str()))
    }
}

/// The text of a TOML value, as a flag would carry it.
pub trait TomlText {
    fn into_text(self) -> String;
}

impl TomlText for String {
    fn into_text(self) -> String {
        self
    }
}

impl TomlText for i64 {
    fn into_text(self) -> String {
        self.to_string()
    }
}

impl TomlText for bool {
    fn into_text(self) -> String {
        self.to_string()
    }
}

/// Any TOML value (`part-size = "16MiB"` and `part-size = 16777216` alike).
impl TomlText for toml::Value {
    fn into_text(self) -> String {
        match self {
            toml::Value::String(s) => s,
            other => other.to_string(),
        }
    }
}

/// `T`, or a blank value, which unsets the setting: `--sse ""` also hides the file's `sse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrBlank<T>(pub Option<T>);

impl<T: FromStr> FromStr for OrBlank<T>
where
    Invalid: From<T::Err>,
{
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(OrBlank(None));
        }
        Ok(OrBlank(Some(text.parse()?)))
    }
}

impl<T: FromStr> SettingValue for OrBlank<T>
where
    Invalid: From<T::Err>,
{
    type Toml = String;
}

fn count(text: &str, range: RangeInclusive<i64>, what: &str) -> Result<i64, Invalid> {
    match text.trim().parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(Invalid::Value(format!(
            "{text:?} is not valid: expected {what}"
        ))),
    }
}

/// How many shipped rotated files to keep locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep(pub usize);

impl FromStr for Keep {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let n = count(text, 0..=1_000_000, "a number of files, 0 or more")?;
        Ok(Keep(n as usize))
    }
}

impl SettingValue for Keep {
    type Toml = i64;
}

/// A gzip level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level(pub u32);

impl FromStr for Level {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let n = count(text, 1..=9, "a gzip level from 1 (fastest) to 9 (smallest)")?;
        Ok(Level(n as u32))
    }
}

impl SettingValue for Level {
    type Toml = i64;
}

/// Threads that compress one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads(pub usize);

impl FromStr for Threads {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let n = count(text, 1..=256, "a number of threads from 1 to 256")?;
        Ok(Threads(n as usize))
    }
}

impl SettingValue for Threads {
    type Toml = i64;
}

/// Parts of a multipart upload sent at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency(pub usize);

impl FromStr for Concurrency {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let n = count(text, 1..=64, "a number of parts from 1 to 64")?;
        Ok(Concurrency(n as usize))
    }
}

impl SettingValue for Concurrency {
    type Toml = i64;
}

/// Entries kept in each list of a digest (at most what the digester keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Top(pub usize);

impl FromStr for Top {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let max = crate::digest::MESSAGE_CAPACITY as i64;
        let what = format!("a number of entries from 1 to {max}");
        Ok(Top(count(text, 1..=max, &what)? as usize))
    }
}

impl SettingValue for Top {
    type Toml = i64;
}

/// A duration longer than zero, written like 500ms, 30s, 10m, 1h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonZeroDuration(pub Duration);

impl FromStr for NonZeroDuration {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => Ok(NonZeroDuration(d)),
            Ok(_) => Err(Invalid::Value(format!("{text:?} must be longer than zero"))),
            Err(e) => Err(Invalid::Value(format!(
                "{text:?} is not a duration ({e}); write e.g. 500ms, 30s, 10m"
            ))),
        }
    }
}

impl SettingValue for NonZeroDuration {
    type Toml = String;
}

/// An AWS account id: 12 digits (`--expected-bucket-owner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountId(pub String);

impl FromStr for AccountId {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let id = text.trim();
        if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(id.to_string()))
        } else {
            Err(Invalid::Value(format!(
                "{text:?} is not an AWS account id: expected its 12 digits"
            )))
        }
    }
}

impl SettingValue for AccountId {
    type Toml = String;
}

/// An object tag, `KEY=VALUE` (`--tag`): S3's rules, 1 to 128 characters of key, up to 256 of
/// value, letters, digits, spaces and `+ - = . _ : / @`; keys `aws:` are reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Whether S3 accepts `s` in a tag.
pub fn tag_text_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c))
}

impl FromStr for Tag {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let Some((key, value)) = text.split_once('=') else {
            return Err(Invalid::Value(format!(
                "{text:?} is not KEY=VALUE; write e.g. team=payments"
            )));
        };
        let (key, value) = (key.trim(), value.trim());
        let why = if key.is_empty() || key.chars().count() > 128 {
            Some("its key must have 1 to 128 characters")
        } else if value.chars().count() > 256 {
            Some("its value must have at most 256 characters")
        } else if !tag_text_ok(key) || !tag_text_ok(value) {
            Some("S3 tags hold only letters, digits, spaces and + - = . _ : / @")
        } else if key.starts_with("aws:") {
            Some("keys starting with aws: are reserved by AWS")
        } else {
            None
        };
        match why {
            Some(why) => Err(Invalid::Value(format!(
                "{text:?} is not a valid tag: {why}"
            ))),
            None => Ok(Tag {
                key: key.to_string(),
                value: value.to_string(),
            }),
        }
    }
}

impl SettingValue for Tag {
    type Toml = String;
}

/// The least time between two messages of one notification route; `0s`: no wait (still at
/// most one message a second per webhook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyInterval(pub Duration);

impl FromStr for NotifyInterval {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        match humantime::parse_duration(text.trim()) {
            Ok(d) => Ok(NotifyInterval(d)),
            Err(_) if text.trim() == "0" => Ok(NotifyInterval(Duration::ZERO)),
            Err(e) => Err(Invalid::Value(format!(
                "{text:?} is not a duration ({e}); write e.g. 5m, 30s, or 0s for no wait"
            ))),
        }
    }
}

impl SettingValue for NotifyInterval {
    type Toml = String;
}

/// The longest validity of an S3 presigned URL (SigV4).
pub const MAX_LINK_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a notification's download link works: a presigned URL, so at most 7 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkExpiry(pub Duration);

impl FromStr for LinkExpiry {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let NonZeroDuration(d) = text.parse()?;
        if d > MAX_LINK_EXPIRY {
            return Err(Invalid::Value(
                "must be at most 7d (the longest an S3 presigned URL lasts)".to_string(),
            ));
        }
        Ok(LinkExpiry(d))
    }
}

impl SettingValue for LinkExpiry {
    type Toml = String;
}

pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The size of a multipart upload's parts, within S3's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSize(pub u64);

impl FromStr for PartSize {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        match parse_size(text) {
            Some(n) if (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&n) => Ok(PartSize(n)),
            _ => Err(Invalid::Value(format!(
                "{text:?} is not valid: expected a size from 5MiB to 5GiB, e.g. 16MiB"
            ))),
        }
    }
}

impl SettingValue for PartSize {
    type Toml = toml::Value;
}

/// `16MiB`, `16M`, `16MB` (all binary), `5242880`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// A yes/no switch: true, yes, 1, on or false, no, 0, off (a TOML boolean in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toggle(pub bool);

impl FromStr for Toggle {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Ok(Toggle(true)),
            "false" | "no" | "0" | "off" => Ok(Toggle(false)),
            _ => Err(Invalid::Value(format!(
                "{text:?} is not valid: expected true or false"
            ))),
        }
    }
}

impl SettingValue for Toggle {
    type Toml = bool;
}

/// The host part of object keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName(pub String);

impl FromStr for HostName {
    type Err = Invalid;
    fn from_str(name: &str) -> Result<Self, Invalid> {
        let name = name.trim();
        let ok = !name.is_empty()
            && name != "."
            && name != ".."
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if ok {
            Ok(HostName(name.to_string()))
        } else {
            Err(Invalid::Sentence(format!(
                "host name {name:?} cannot be used in object keys: use letters, digits, '.', '-' and '_'"
            )))
        }
    }
}

impl SettingValue for HostName {
    type Toml = String;
}

/// An S3-compatible endpoint, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(pub String);

impl FromStr for EndpointUrl {
    type Err = Invalid;
    fn from_str(url: &str) -> Result<Self, Invalid> {
        if url.starts_with("http://") || url.starts_with("https://") {
            Ok(EndpointUrl(url.trim_end_matches('/').to_string()))
        } else {
            Err(Invalid::Value(format!(
                "{url:?} must start with http:// or https://"
            )))
        }
    }
}

/// A webhook URL. It is a secret (Slack's carry their token): its errors never repeat it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(pub String);

impl FromStr for WebhookUrl {
    type Err = Invalid;
    fn from_str(url: &str) -> Result<Self, Invalid> {
        let url = url.trim();
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url
                .split_once("://")
                .is_some_and(|(_, r)| !r.is_empty() && !r.starts_with('/'));
        if !ok {
            return Err(Invalid::Value(
                "is not an http:// or https:// URL; give the webhook's full URL".to_string(),
            ));
        }
        Ok(WebhookUrl(url.to_string()))
    }
}

impl SettingValue for WebhookUrl {
    type Toml = String;
}

/// The rule that selects the incident lines of a whole log (`--match`).
#[derive(Debug, Clone)]
pub struct MatchRule(pub regex::bytes::Regex);

impl FromStr for MatchRule {
    type Err = Invalid;
    fn from_str(pattern: &str) -> Result<Self, Invalid> {
        regex::bytes::Regex::new(pattern)
            .map(MatchRule)
            .map_err(|e| not_a_regex(pattern, e))
    }
}

impl SettingValue for MatchRule {
    type Toml = String;
}

/// One `--ignore` pattern, checked as a Unicode regex (its set is compiled by `Config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnorePattern(pub String);

impl FromStr for IgnorePattern {
    type Err = Invalid;
    fn from_str(pattern: &str) -> Result<Self, Invalid> {
        match regex::Regex::new(pattern) {
            Ok(_) => Ok(IgnorePattern(pattern.to_string())),
            Err(e) => Err(not_a_regex(pattern, e)),
        }
    }
}

impl SettingValue for IgnorePattern {
    type Toml = String;
}

fn not_a_regex(pattern: &str, e: regex::Error) -> Invalid {
    Invalid::Value(format!(
        "{pattern:?} is not a valid regular expression: {e}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused<T: FromStr<Err = Invalid> + std::fmt::Debug>(text: &str) -> String {
        text.parse::<T>().unwrap_err().at("--x")
    }

    #[test]
    fn counts_are_bounded_and_name_what_to_write() {
        assert_eq!("0".parse(), Ok(Keep(0)));
        assert_eq!(" 7 ".parse(), Ok(Keep(7)));
        assert_eq!(
            refused::<Keep>("-1"),
            "--x \"-1\" is not valid: expected a number of files, 0 or more"
        );
        assert_eq!("9".parse(), Ok(Level(9)));
        assert!(refused::<Level>("0").contains("1 (fastest) to 9 (smallest)"));
        assert!(refused::<Threads>("257").contains("from 1 to 256"));
        assert!(refused::<Concurrency>("65").contains("from 1 to 64"));
        assert_eq!("200".parse(), Ok(Top(200)));
        assert!(refused::<Top>("201").contains("from 1 to 200"));
    }

    #[test]
    fn durations_are_longer_than_zero() {
        assert_eq!(
            "500ms".parse(),
            Ok(NonZeroDuration(Duration::from_millis(500)))
        );
        assert_eq!(
            refused::<NonZeroDuration>("0s"),
            "--x \"0s\" must be longer than zero"
        );
        assert!(refused::<NonZeroDuration>("soon").contains("write e.g. 500ms, 30s, 10m"));
        assert_eq!("7d".parse(), Ok(LinkExpiry(MAX_LINK_EXPIRY)));
        assert!(refused::<LinkExpiry>("8d").contains("at most 7d"));
    }

    #[test]
    fn a_blank_value_unsets_and_is_not_refused() {
        use super::super::choices::{ChecksumMode, SseAlgorithm};
        assert_eq!(" ".parse(), Ok(OrBlank::<ChecksumMode>(None)));
        assert_eq!(" aws:kms ".parse(), Ok(OrBlank(Some(SseAlgorithm::AwsKms))));
        assert_eq!(
            " eu-west-1 ".parse(),
            Ok(OrBlank(Some("eu-west-1".to_string())))
        );
        assert!("x".parse::<OrBlank<EndpointUrl>>().is_err());
    }

    #[test]
    fn sizes_switches_and_urls() {
        assert_eq!(parse_size("5242880"), Some(5 << 20));
        assert_eq!("16MiB".parse(), Ok(PartSize(16 << 20)));
        assert!(refused::<PartSize>("6G").contains("5MiB to 5GiB"));
        assert_eq!("On".parse(), Ok(Toggle(true)));
        assert_eq!("0".parse(), Ok(Toggle(false)));
        assert!(refused::<Toggle>("maybe").contains("expected true or false"));
        assert_eq!(
            "http://127.0.0.1:9000/".parse(),
            Ok(EndpointUrl("http://127.0.0.1:9000".into()))
        );
        let e = refused::<WebhookUrl>("ftp://hooks/secret");
        assert!(
            e.starts_with("--x is not an http://") && !e.contains("secret"),
            "{e}"
        );
        assert_eq!(
            refused::<HostName>("a/b"),
            "host name \"a/b\" cannot be used in object keys: use letters, digits, '.', '-' and '_' (from --x)"
        );
    }

    #[test]
    fn the_file_reads_the_same_text_as_a_flag() {
        #[derive(Deserialize)]
        struct Keys {
            keep: Given<Keep>,
            part: Given<PartSize>,
            flag: Given<Toggle>,
        }
        let k: Keys = toml::from_str("keep = 3\npart = 16777216\nflag = true").unwrap();
        assert_eq!(k.keep.get(), Ok(&Keep(3)));
        assert_eq!(k.part.get(), Ok(&PartSize(16 << 20)));
        assert_eq!(k.flag.get(), Ok(&Toggle(true)));
        // A wrong TOML type is the file's error; a wrong value waits for its origin.
        assert!(toml::from_str::<Keys>("keep = \"3\"\npart = 1\nflag = true").is_err());
        let k: Keys = toml::from_str("keep = -1\npart = 1\nflag = true").unwrap();
        assert!(k.keep.get().is_err() && k.part.get().is_err());
    }
}
