//! The closed sets among the settings. Each is a `ValueEnum`, whose derive gives the one list of
//! its spellings; its `FromStr` reads those names (with the case rule the option always had) and
//! lists them when a value is refused, for flags and config file keys alike.

use super::values::{Invalid, SettingValue};
use clap::ValueEnum;
use std::str::FromStr;

/// Reads a closed set by the names its `ValueEnum` derive gives: the one list of its spellings.
fn one_of<T: ValueEnum>(text: &str, ignore_case: bool) -> Option<T> {
    <T as ValueEnum>::from_str(text, ignore_case).ok()
}

/// The names of a closed set, in their order of definition.
fn names<T: ValueEnum>() -> Vec<String> {
    T::value_variants()
        .iter()
        .filter_map(|v| v.to_possible_value())
        .map(|v| v.get_name().to_string())
        .collect()
}

/// How to ask syslog-ng to reopen its file destinations after the rename. Parsed by clap and
/// serde themselves (their errors list the methods), as it always was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReopenMethod {
    /// control socket, then syslog-ng-ctl, then SIGUSR1
    Auto,
    /// REOPEN on syslog-ng's control socket
    Socket,
    /// `syslog-ng-ctl reopen`
    Ctl,
    /// SIGUSR1 to the pid in the pidfile
    Usr1,
    /// SIGHUP (a full reload: syslog-ng then SIGTERMs and restarts `watch`)
    Hup,
    /// Nothing writes the log, or its writer reopens by itself: rotate without asking or waiting
    None,
}

impl ReopenMethod {
    pub fn name(self) -> &'static str {
        match self {
            ReopenMethod::Auto => "auto",
            ReopenMethod::Socket => "socket",
            ReopenMethod::Ctl => "ctl",
            ReopenMethod::Usr1 => "usr1",
            ReopenMethod::Hup => "hup",
            ReopenMethod::None => "none",
        }
    }
}

/// One of a closed set of two or three values, or an error that lists them.
fn either<T: ValueEnum>(text: &str, ignore_case: bool) -> Result<T, Invalid> {
    one_of(text, ignore_case).ok_or_else(|| {
        Invalid::Value(format!(
            "{text:?} is not valid: use {}",
            names::<T>().join(" or ")
        ))
    })
}

/// Which checksums the SDK sends: `WhenSupported` is AWS's default; `WhenRequired` is for stores
/// that reject or mangle them (awslabs/aws-sdk-rust#1240). Content-MD5 is always sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChecksumMode {
    WhenSupported,
    WhenRequired,
}

impl FromStr for ChecksumMode {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        either(text, false)
    }
}

/// How a notification is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NotifyFormat {
    /// Slack's incoming-webhook JSON, with a text
    Slack,
    /// The digest and the link
    Json,
}

impl FromStr for NotifyFormat {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        either(text, false)
    }
}

impl SettingValue for NotifyFormat {
    type Toml = String;
}

/// The server-side encryption algorithm asked for (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SseAlgorithm {
    #[value(name = "AES256")]
    Aes256,
    #[value(name = "aws:kms")]
    AwsKms,
}

impl FromStr for SseAlgorithm {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        either(text, true)
    }
}

/// A canned ACL for the objects (`bucket-owner-full-control` for another account's bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CannedAcl {
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    AwsExecRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
}

impl CannedAcl {
    /// The name S3 knows it by, e.g. `bucket-owner-full-control`.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

impl FromStr for CannedAcl {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        one_of(text, true).ok_or_else(|| {
            Invalid::Value(format!(
                "{text:?} is not a canned ACL: use one of {}",
                names::<Self>().join(", ")
            ))
        })
    }
}

/// An S3 storage class (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    Standard,
    ReducedRedundancy,
    StandardIa,
    OnezoneIa,
    IntelligentTiering,
    Glacier,
    DeepArchive,
    GlacierIr,
    ExpressOnezone,
}

impl StorageClass {
    /// The name S3 knows it by, e.g. `STANDARD_IA`.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

impl FromStr for StorageClass {
    type Err = Invalid;
    fn from_str(text: &str) -> Result<Self, Invalid> {
        one_of(text, true).ok_or_else(|| {
            Invalid::Value(format!(
                "{text:?} is not a storage class: use one of {}",
                names::<Self>().join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused<T: FromStr<Err = Invalid> + std::fmt::Debug>(text: &str) -> String {
        text.parse::<T>().unwrap_err().at("--x")
    }

    #[test]
    fn closed_sets_read_their_names_and_list_them_when_refused() {
        assert_eq!("when-required".parse(), Ok(ChecksumMode::WhenRequired));
        assert_eq!(
            refused::<ChecksumMode>("When-Required"),
            "--x \"When-Required\" is not valid: use when-supported or when-required"
        );
        assert_eq!("json".parse(), Ok(NotifyFormat::Json));
        assert!(refused::<NotifyFormat>(" json").contains("use slack or json"));
        assert_eq!("aes256".parse(), Ok(SseAlgorithm::Aes256));
        assert_eq!("AWS:KMS".parse(), Ok(SseAlgorithm::AwsKms));
        assert!(refused::<SseAlgorithm>("des").contains("use AES256 or aws:kms"));
        let class: StorageClass = "glacier_ir".parse().unwrap();
        assert_eq!(class.name(), "GLACIER_IR");
        assert_eq!(StorageClass::ExpressOnezone.name(), "EXPRESS_ONEZONE");
        assert!(refused::<StorageClass>("cold").contains(
            "use one of STANDARD, REDUCED_REDUNDANCY, STANDARD_IA, ONEZONE_IA, \
             INTELLIGENT_TIERING, GLACIER, DEEP_ARCHIVE, GLACIER_IR, EXPRESS_ONEZONE"
        ));
    }

    #[test]
    fn the_reopen_methods_have_one_spelling_for_clap_serde_and_messages() {
        #[derive(serde::Deserialize)]
        struct File {
            reopen: ReopenMethod,
        }
        for method in ReopenMethod::value_variants() {
            let name = method.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(method.name(), name);
            let file: File = toml::from_str(&format!("reopen = {name:?}")).unwrap();
            assert_eq!(file.reopen, *method);
        }
    }
}
