//! The validated configuration, built once from flags, environment, config file and defaults
//! (precedence in that order). Nothing below this module reads clap types or the environment.

use crate::cli::{Cli, CommonArgs, IncidentArgs, ReopenMethod, S3Args, WatchArgs};
use crate::naming::ObjectKey;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG: &str = "/etc/fasttrack/fasttrack.toml";
const DEFAULT_LOG: &str = "/var/log/docker.log";
const DEFAULT_STATE_DIR: &str = "/var/lib/fasttrack";
pub const DEFAULT_LOG_FILE: &str = "/var/log/fasttrack.log";
const DEFAULT_KEEP: usize = 10;
const DEFAULT_LEVEL: u32 = 6;
const DEFAULT_QUIET: Duration = Duration::from_secs(30);
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(600);
const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A usage or configuration error: the process exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn config_error(msg: impl Into<String>) -> anyhow::Error {
    ConfigError(msg.into()).into()
}

/// Where rotated logs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestUrl {
    /// `file:///DIR`: objects are written under DIR as `<HOST>/<file name>`.
    File { root: PathBuf },
    /// `s3://BUCKET[/PREFIX]`: objects are `<PREFIX>/<HOST>/<file name>` in BUCKET.
    S3 { bucket: String, prefix: String },
}

impl DestUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "destination {url:?} must be file:///ABSOLUTE/DIR (three slashes: file:// then the path)"
                ));
            }
            if path.split('/').any(|part| part == "..") {
                return Err(format!("destination {url:?} must not contain '..'"));
            }
            let trimmed = path.trim_end_matches('/');
            let root = if trimmed.is_empty() { "/" } else { trimmed };
            return Ok(DestUrl::File {
                root: PathBuf::from(root),
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            validate_bucket(bucket).map_err(|e| format!("destination {url:?}: {e}"))?;
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|p| p == ".." || p == ".") || prefix.contains("//") {
                return Err(format!(
                    "destination {url:?}: the prefix must not contain '.', '..' or empty parts"
                ));
            }
            return Ok(DestUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        Err(format!(
            "destination {url:?} is not a URL fasttrack knows; use s3://BUCKET[/PREFIX] or file:///DIR"
        ))
    }

    /// The key of a rotated file at this destination.
    pub fn key(&self, host: &str, file_name: &str) -> ObjectKey {
        match self {
            DestUrl::File { .. } => ObjectKey::new("", host, file_name),
            DestUrl::S3 { prefix, .. } => ObjectKey::new(prefix, host, file_name),
        }
    }
}

impl std::fmt::Display for DestUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DestUrl::File { root } => write!(f, "file://{}", root.display()),
            DestUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            DestUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// syslog-ng's reopen settings; the default locations are resolved when used, since
/// syslog-ng may start after fasttrack.
#[derive(Debug, Clone)]
pub struct ReopenConfig {
    pub method: ReopenMethod,
    pub control_socket: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
}

/// Server-side encryption of the objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    Aes256,
    Kms { key_id: Option<String> },
}

/// Which checksums the SDK sends: `WhenSupported` is AWS's default; `WhenRequired` is for stores
/// that reject or mangle them (awslabs/aws-sdk-rust#1240). Content-MD5 is always sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumMode {
    WhenSupported,
    WhenRequired,
}

/// Settings of the s3:// destination (ignored by file://).
#[derive(Debug, Clone)]
pub struct S3Options {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub path_style: bool,
    pub profile: Option<String>,
    pub aws_config_file: Option<PathBuf>,
    pub aws_credentials_file: Option<PathBuf>,
    pub storage_class: Option<String>,
    pub sse: Option<Sse>,
    pub checksum: ChecksumMode,
    pub part_size: u64,
    pub upload_concurrency: usize,
    pub upload_timeout: Duration,
}

pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
const DEFAULT_PART_SIZE: u64 = 16 * 1024 * 1024;
const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_RETRY_MAX_DELAY: Duration = Duration::from_secs(60);
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "EXPRESS_ONEZONE",
];

#[derive(Debug, Clone)]
pub struct Config {
    pub log: PathBuf,
    pub dest: Option<DestUrl>,
    pub host: String,
    pub state_dir: PathBuf,
    pub reopen: ReopenConfig,
    pub keep: usize,
    pub log_file: PathBuf,
    pub compression_level: u32,
    /// Threads that compress a rotated file (blocks deflated in parallel, one .gz).
    pub compression_threads: usize,
    pub close_timeout: Duration,
    pub quiet: Duration,
    pub max_wait: Duration,
    pub retry_max_delay: Duration,
    pub s3: S3Options,
    pub incident: IncidentConfig,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
}

/// What makes an incident line, what is snoozed, and who is told when one is shipped.
#[derive(Debug, Clone)]
pub struct IncidentConfig {
    /// Selects the incident lines of a whole log (`digest`, rotations without `watch`).
    pub select: regex::Regex,
    /// Snoozed lines: they neither open an incident nor count in its digest.
    pub ignore: regex::RegexSet,
    /// Entries kept in each list of a digest.
    pub top: usize,
    pub notify: Option<NotifyConfig>,
}

impl IncidentConfig {
    pub fn is_ignored(&self, line: &str) -> bool {
        !self.ignore.is_empty() && self.ignore.is_match(line)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    Slack,
    Json,
}

#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The webhook; it is a secret (Slack's carry their token): only its host is ever logged.
    pub url: String,
    pub format: NotifyFormat,
    pub link_expiry: Duration,
}

impl NotifyConfig {
    /// `https://hooks.slack.com/...` -> `https://hooks.slack.com`: what logs may show.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}")
        }
        None => "(invalid URL)".to_string(),
    }
}

/// The longest validity of an S3 presigned URL (SigV4).
pub const MAX_LINK_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
const DEFAULT_TOP: i64 = 10;

/// The config file: the same names as the long flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    log: Option<PathBuf>,
    dest: Option<String>,
    host: Option<String>,
    state_dir: Option<PathBuf>,
    reopen: Option<ReopenMethod>,
    control_socket: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    keep: Option<i64>,
    log_file: Option<PathBuf>,
    compression_level: Option<i64>,
    compression_threads: Option<i64>,
    close_timeout: Option<String>,
    quiet: Option<String>,
    max_wait: Option<String>,
    retry_max_delay: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    path_style: Option<bool>,
    profile: Option<String>,
    aws_config_file: Option<PathBuf>,
    aws_credentials_file: Option<PathBuf>,
    storage_class: Option<String>,
    sse: Option<String>,
    sse_kms_key_id: Option<String>,
    checksum: Option<String>,
    part_size: Option<toml::Value>,
    upload_concurrency: Option<i64>,
    upload_timeout: Option<String>,
    #[serde(rename = "match")]
    match_: Option<String>,
    ignore: Option<Vec<String>>,
    top: Option<i64>,
    notify: Option<String>,
    notify_format: Option<String>,
    notify_link_expiry: Option<String>,
}

/// Which flag values came from the environment rather than the command line, so that
/// an error can name the variable the user has to fix.
/// The command line's flags, by group.
struct Flags<'a> {
    common: &'a CommonArgs,
    s3: &'a S3Args,
    incident: &'a IncidentArgs,
    watch: Option<&'a WatchArgs>,
}

#[derive(Debug, Default)]
pub struct Origins {
    pub from_env: HashSet<String>,
}

/// One setting's value and the place it came from, for error messages.
struct Setting<T> {
    value: T,
    origin: String,
}

struct Sources<'a> {
    origins: &'a Origins,
    file: FileConfig,
    file_name: Option<String>,
}

impl Sources<'_> {
    fn origin_of_flag(&self, flag: &'static str) -> String {
        if self.origins.from_env.contains(flag) {
            format!(
                "FASTTRACK_{}",
                flag.trim_start_matches("--")
                    .replace('-', "_")
                    .to_uppercase()
            )
        } else {
            flag.to_string()
        }
    }

    fn origin_of_key(&self, key: &str) -> String {
        match &self.file_name {
            Some(f) => format!("{key} in {f}"),
            None => key.to_string(),
        }
    }

    /// flag (or env, merged by clap) > file > none.
    fn pick<T>(
        &self,
        flag: &'static str,
        from_cli: Option<T>,
        from_file: Option<T>,
    ) -> Option<Setting<T>> {
        if let Some(value) = from_cli {
            return Some(Setting {
                value,
                origin: self.origin_of_flag(flag),
            });
        }
        from_file.map(|value| Setting {
            value,
            origin: self.origin_of_key(flag.trim_start_matches("--")),
        })
    }
}

impl Config {
    /// Builds and validates the configuration for `cli`. Every failure is a [`ConfigError`].
    pub fn load(cli: &Cli, origins: &Origins) -> anyhow::Result<Config> {
        let (file, config_file) = read_config_file(cli.config.as_deref())?;
        let watch_args = match &cli.command {
            crate::cli::Command::Watch(w) => Some(w),
            _ => None,
        };
        Self::from_parts(
            Flags {
                common: &cli.common,
                s3: &cli.s3,
                incident: &cli.incident,
                watch: watch_args,
            },
            file,
            config_file,
            origins,
            system_hostname,
        )
    }

    fn from_parts(
        Flags {
            common,
            s3,
            incident,
            watch,
        }: Flags,
        file: FileConfig,
        config_file: Option<PathBuf>,
        origins: &Origins,
        hostname: fn() -> Option<String>,
    ) -> anyhow::Result<Config> {
        let src = Sources {
            origins,
            file_name: config_file.as_ref().map(|p| p.display().to_string()),
            file,
        };
        let f = &src.file;

        let log = absolute_path(
            src.pick("--log", common.log.clone(), f.log.clone()),
            DEFAULT_LOG,
        )?;
        if log.file_name().and_then(|n| n.to_str()).is_none() {
            return Err(config_error(format!(
                "--log {} must name a file with a UTF-8 name",
                log.display()
            )));
        }

        let dest = match src.pick("--dest", common.dest.clone(), f.dest.clone()) {
            Some(s) => Some(
                DestUrl::parse(s.value.trim())
                    .map_err(|e| config_error(format!("{} (from {})", e, s.origin)))?,
            ),
            None => None,
        };

        let host = match src.pick("--host", common.host.clone(), f.host.clone()) {
            Some(s) => validate_host(&s.value)
                .map_err(|e| config_error(format!("{e} (from {})", s.origin)))?,
            None => {
                let name = hostname().ok_or_else(|| {
                    config_error("cannot read the system hostname; set --host or FASTTRACK_HOST")
                })?;
                validate_host(&name).map_err(|e| {
                    config_error(format!(
                        "{e} (the system hostname); set --host or FASTTRACK_HOST"
                    ))
                })?
            }
        };

        let state_dir = absolute_path(
            src.pick("--state-dir", common.state_dir.clone(), f.state_dir.clone()),
            DEFAULT_STATE_DIR,
        )?;
        let log_file = absolute_path(
            src.pick("--log-file", common.log_file.clone(), f.log_file.clone()),
            DEFAULT_LOG_FILE,
        )?;

        let reopen = ReopenConfig {
            method: src
                .pick("--reopen", common.reopen, f.reopen)
                .map_or(ReopenMethod::Auto, |s| s.value),
            control_socket: src
                .pick(
                    "--control-socket",
                    common.control_socket.clone(),
                    f.control_socket.clone(),
                )
                .map(|s| absolute_path(Some(s), "").map(Some))
                .unwrap_or(Ok(None))?,
            pidfile: src
                .pick("--pidfile", common.pidfile.clone(), f.pidfile.clone())
                .map(|s| absolute_path(Some(s), "").map(Some))
                .unwrap_or(Ok(None))?,
        };

        let keep = integer(
            src.pick("--keep", common.keep.clone(), f.keep.map(|n| n.to_string())),
            DEFAULT_KEEP as i64,
            0..=1_000_000,
            "a number of files, 0 or more",
        )? as usize;
        let compression_level = integer(
            src.pick(
                "--compression-level",
                common.compression_level.clone(),
                f.compression_level.map(|n| n.to_string()),
            ),
            DEFAULT_LEVEL as i64,
            1..=9,
            "a gzip level from 1 (fastest) to 9 (smallest)",
        )? as u32;
        let compression_threads = integer(
            src.pick(
                "--compression-threads",
                common.compression_threads.clone(),
                f.compression_threads.map(|n| n.to_string()),
            ),
            default_compression_threads() as i64,
            1..=256,
            "a number of threads from 1 to 256",
        )? as usize;

        let close_timeout = duration(
            src.pick(
                "--close-timeout",
                common.close_timeout.clone(),
                f.close_timeout.clone(),
            ),
            DEFAULT_CLOSE_TIMEOUT,
        )?;
        let quiet = duration(
            src.pick(
                "--quiet",
                watch.and_then(|w| w.quiet.clone()),
                f.quiet.clone(),
            ),
            DEFAULT_QUIET,
        )?;
        let max_wait = duration(
            src.pick(
                "--max-wait",
                watch.and_then(|w| w.max_wait.clone()),
                f.max_wait.clone(),
            ),
            DEFAULT_MAX_WAIT,
        )?;

        let retry_max_delay = duration(
            src.pick(
                "--retry-max-delay",
                common.retry_max_delay.clone(),
                f.retry_max_delay.clone(),
            ),
            DEFAULT_RETRY_MAX_DELAY,
        )?;
        let s3 = s3_options(&src, s3)?;
        let incident = incident_options(&src, incident)?;

        Ok(Config {
            log,
            dest,
            host,
            state_dir,
            reopen,
            keep,
            log_file,
            compression_level,
            compression_threads,
            close_timeout,
            quiet,
            max_wait,
            retry_max_delay,
            s3,
            incident,
            config_file,
        })
    }

    /// The destination, which every command that ships needs.
    pub fn require_dest(&self) -> anyhow::Result<&DestUrl> {
        self.dest.as_ref().ok_or_else(|| {
            config_error(format!(
                "no destination configured: set --dest file:///DIR, FASTTRACK_DEST, or dest in {}",
                self.config_file
                    .as_deref()
                    .unwrap_or(Path::new(DEFAULT_CONFIG))
                    .display()
            ))
        })
    }

    /// The log's file name, e.g. `docker.log` (validated as UTF-8 in `load`).
    pub fn log_name(&self) -> &str {
        self.log
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("docker.log")
    }

    /// The directory that holds the log and its rotated files.
    pub fn log_dir(&self) -> &Path {
        self.log.parent().unwrap_or(Path::new("/"))
    }
}

fn s3_options(src: &Sources, a: &S3Args) -> anyhow::Result<S3Options> {
    let f = &src.file;
    let text = |flag: &'static str, cli: &Option<String>, file: &Option<String>| {
        src.pick(flag, cli.clone(), file.clone())
            .map(|s| Setting {
                value: s.value.trim().to_string(),
                origin: s.origin,
            })
            .filter(|s| !s.value.is_empty())
    };
    let path = |flag: &'static str, cli: &Option<PathBuf>, file: &Option<PathBuf>| {
        src.pick(flag, cli.clone(), file.clone())
            .map(|s| absolute_path(Some(s), ""))
            .transpose()
    };

    let endpoint_url = match text("--endpoint-url", &a.endpoint_url, &f.endpoint_url) {
        Some(s) if s.value.starts_with("http://") || s.value.starts_with("https://") => {
            Some(s.value.trim_end_matches('/').to_string())
        }
        Some(s) => {
            return Err(config_error(format!(
                "{} {:?} must start with http:// or https://",
                s.origin, s.value
            )))
        }
        None => None,
    };
    let path_style = match src.pick(
        "--path-style",
        a.path_style.clone(),
        f.path_style.map(|b| b.to_string()),
    ) {
        None => false,
        Some(s) => match s.value.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => true,
            "false" | "no" | "0" | "off" => false,
            _ => {
                return Err(config_error(format!(
                    "{} {:?} is not valid: expected true or false",
                    s.origin, s.value
                )))
            }
        },
    };
    let storage_class = match text("--storage-class", &a.storage_class, &f.storage_class) {
        Some(s) => {
            let upper = s.value.to_ascii_uppercase();
            if !STORAGE_CLASSES.contains(&upper.as_str()) {
                return Err(config_error(format!(
                    "{} {:?} is not a storage class: use one of {}",
                    s.origin,
                    s.value,
                    STORAGE_CLASSES.join(", ")
                )));
            }
            Some(upper)
        }
        None => None,
    };
    let kms_key = text("--sse-kms-key-id", &a.sse_kms_key_id, &f.sse_kms_key_id);
    let sse = match text("--sse", &a.sse, &f.sse) {
        Some(s) if s.value.eq_ignore_ascii_case("AES256") => {
            if let Some(k) = &kms_key {
                return Err(config_error(format!(
                    "{} needs --sse aws:kms, not AES256",
                    k.origin
                )));
            }
            Some(Sse::Aes256)
        }
        Some(s) if s.value.eq_ignore_ascii_case("aws:kms") => Some(Sse::Kms {
            key_id: kms_key.map(|k| k.value),
        }),
        Some(s) => {
            return Err(config_error(format!(
                "{} {:?} is not valid: use AES256 or aws:kms",
                s.origin, s.value
            )))
        }
        None => match kms_key {
            Some(k) => {
                return Err(config_error(format!(
                    "{} is set but --sse is not: add --sse aws:kms",
                    k.origin
                )))
            }
            None => None,
        },
    };
    let checksum = match text("--checksum", &a.checksum, &f.checksum) {
        None => ChecksumMode::WhenSupported,
        Some(s) => match s.value.as_str() {
            "when-supported" => ChecksumMode::WhenSupported,
            "when-required" => ChecksumMode::WhenRequired,
            _ => {
                return Err(config_error(format!(
                    "{} {:?} is not valid: use when-supported or when-required",
                    s.origin, s.value
                )))
            }
        },
    };
    let part_size = match src.pick(
        "--part-size",
        a.part_size.clone(),
        f.part_size.as_ref().map(|v| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    ) {
        None => DEFAULT_PART_SIZE,
        Some(s) => match parse_size(&s.value) {
            Some(n) if (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&n) => n,
            _ => {
                return Err(config_error(format!(
                    "{} {:?} is not valid: expected a size from 5MiB to 5GiB, e.g. 16MiB",
                    s.origin, s.value
                )))
            }
        },
    };
    let upload_concurrency = integer(
        src.pick(
            "--upload-concurrency",
            a.upload_concurrency.clone(),
            f.upload_concurrency.map(|n| n.to_string()),
        ),
        4,
        1..=64,
        "a number of parts from 1 to 64",
    )? as usize;
    let upload_timeout = duration(
        src.pick(
            "--upload-timeout",
            a.upload_timeout.clone(),
            f.upload_timeout.clone(),
        ),
        DEFAULT_UPLOAD_TIMEOUT,
    )?;
    Ok(S3Options {
        region: text("--region", &a.region, &f.region).map(|s| s.value),
        endpoint_url,
        path_style,
        profile: text("--profile", &a.profile, &f.profile).map(|s| s.value),
        aws_config_file: path("--aws-config-file", &a.aws_config_file, &f.aws_config_file)?,
        aws_credentials_file: path(
            "--aws-credentials-file",
            &a.aws_credentials_file,
            &f.aws_credentials_file,
        )?,
        storage_class,
        sse,
        checksum,
        part_size,
        upload_concurrency,
        upload_timeout,
    })
}

fn incident_options(src: &Sources, a: &IncidentArgs) -> anyhow::Result<IncidentConfig> {
    let f = &src.file;
    let select = match src.pick("--match", a.match_.clone(), f.match_.clone()) {
        // Invariant: DEFAULT_MATCH is a constant that compiles (digest's tests use it).
        None => regex::Regex::new(crate::digest::DEFAULT_MATCH).expect("the default rule is valid"),
        Some(s) => regex::Regex::new(&s.value).map_err(|e| {
            config_error(format!(
                "{} {:?} is not a valid regular expression: {e}",
                s.origin, s.value
            ))
        })?,
    };
    let cli_ignore = (!a.ignore.is_empty()).then(|| a.ignore.clone());
    let ignore = match src.pick("--ignore", cli_ignore, f.ignore.clone()) {
        None => regex::RegexSet::empty(),
        Some(s) => {
            for pattern in &s.value {
                if let Err(e) = regex::Regex::new(pattern) {
                    return Err(config_error(format!(
                        "{} {pattern:?} is not a valid regular expression: {e}",
                        s.origin
                    )));
                }
            }
            regex::RegexSet::new(&s.value)
                .map_err(|e| config_error(format!("{}: {e}", s.origin)))?
        }
    };
    let top = integer(
        src.pick("--top", a.top.clone(), f.top.map(|n| n.to_string())),
        DEFAULT_TOP,
        1..=crate::digest::MESSAGE_CAPACITY as i64,
        "a number of entries from 1 to 200",
    )? as usize;
    let notify = match src.pick("--notify", a.notify.clone(), f.notify.clone()) {
        None => None,
        Some(s) => {
            let url = s.value.trim().to_string();
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url
                    .split_once("://")
                    .is_some_and(|(_, r)| !r.is_empty() && !r.starts_with('/'));
            if !ok {
                return Err(config_error(format!(
                    "{} is not an http:// or https:// URL; give the webhook's full URL",
                    s.origin
                )));
            }
            let format = match src.pick(
                "--notify-format",
                a.notify_format.clone(),
                f.notify_format.clone(),
            ) {
                None => NotifyFormat::Slack,
                Some(s) => match s.value.as_str() {
                    "slack" => NotifyFormat::Slack,
                    "json" => NotifyFormat::Json,
                    _ => {
                        return Err(config_error(format!(
                            "{} {:?} is not valid: use slack or json",
                            s.origin, s.value
                        )))
                    }
                },
            };
            let expiry_setting = src.pick(
                "--notify-link-expiry",
                a.notify_link_expiry.clone(),
                f.notify_link_expiry.clone(),
            );
            let origin = expiry_setting
                .as_ref()
                .map(|s| s.origin.clone())
                .unwrap_or_default();
            let link_expiry = duration(expiry_setting, MAX_LINK_EXPIRY)?;
            if link_expiry > MAX_LINK_EXPIRY {
                return Err(config_error(format!(
                    "{origin} must be at most 7d (the longest an S3 presigned URL lasts)"
                )));
            }
            Some(NotifyConfig {
                url,
                format,
                link_expiry,
            })
        }
    };
    Ok(IncidentConfig {
        select,
        ignore,
        top,
        notify,
    })
}

/// `16MiB`, `16M`, `16MB` (all binary), `5242880`.
fn parse_size(text: &str) -> Option<u64> {
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

/// S3's bucket naming rules, so that a typo is caught before the first upload.
fn validate_bucket(bucket: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{bucket:?} is not a valid bucket name (3 to 63 lower-case letters, digits, '.' and '-')"
        ))
    }
}

fn read_config_file(explicit: Option<&Path>) -> anyhow::Result<(FileConfig, Option<PathBuf>)> {
    let path = explicit.unwrap_or(Path::new(DEFAULT_CONFIG));
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok((FileConfig::default(), None));
        }
        Err(e) => {
            return Err(config_error(format!(
                "cannot read config file {}: {e}{}",
                path.display(),
                if e.kind() == std::io::ErrorKind::NotFound {
                    "; create it or fix --config / FASTTRACK_CONFIG"
                } else {
                    ""
                }
            )))
        }
    };
    let file: FileConfig = toml::from_str(&text).map_err(|e| {
        config_error(format!(
            "config file {} is not valid: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })?;
    Ok((file, Some(path.to_path_buf())))
}

fn absolute_path(setting: Option<Setting<PathBuf>>, default: &str) -> anyhow::Result<PathBuf> {
    let Some(setting) = setting else {
        return Ok(PathBuf::from(default));
    };
    if setting.value.as_os_str().is_empty() {
        return Err(config_error(format!("{} is empty", setting.origin)));
    }
    std::path::absolute(&setting.value).map_err(|e| {
        config_error(format!(
            "{} {}: {e}",
            setting.origin,
            setting.value.display()
        ))
    })
}

/// The CPUs this process may run on (cgroup and affinity limits included), at most 8.
pub fn default_compression_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

fn integer(
    setting: Option<Setting<String>>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    what: &str,
) -> anyhow::Result<i64> {
    let Some(s) = setting else {
        return Ok(default);
    };
    match s.value.trim().parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(config_error(format!(
            "{} {:?} is not valid: expected {what}",
            s.origin, s.value
        ))),
    }
}

fn duration(setting: Option<Setting<String>>, default: Duration) -> anyhow::Result<Duration> {
    let Some(s) = setting else {
        return Ok(default);
    };
    match humantime::parse_duration(s.value.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(config_error(format!(
            "{} {:?} must be longer than zero",
            s.origin, s.value
        ))),
        Err(e) => Err(config_error(format!(
            "{} {:?} is not a duration ({e}); write e.g. 500ms, 30s, 10m",
            s.origin, s.value
        ))),
    }
}

fn validate_host(name: &str) -> Result<String, String> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "host name {name:?} cannot be used in object keys: use letters, digits, '.', '-' and '_'"
        ))
    }
}

fn system_hostname() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Option<String> {
        Some("sysname".into())
    }

    fn load(
        common: CommonArgs,
        watch: Option<WatchArgs>,
        file: &str,
        env: &[&'static str],
    ) -> anyhow::Result<Config> {
        let file: FileConfig = toml::from_str(file).unwrap();
        let origins = Origins {
            from_env: env.iter().map(|s| s.to_string()).collect(),
        };
        Config::from_parts(
            Flags {
                common: &common,
                s3: &S3Args::default(),
                incident: &IncidentArgs::default(),
                watch: watch.as_ref(),
            },
            file,
            Some(PathBuf::from("/etc/fasttrack/fasttrack.toml")),
            &origins,
            host,
        )
    }

    fn err(result: anyhow::Result<Config>) -> String {
        let e = result.unwrap_err();
        assert!(
            e.downcast_ref::<ConfigError>().is_some(),
            "not a ConfigError: {e:#}"
        );
        e.to_string()
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = load(CommonArgs::default(), None, "", &[]).unwrap();
        assert_eq!(c.log, PathBuf::from("/var/log/docker.log"));
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/fasttrack"));
        assert_eq!(c.host, "sysname");
        assert_eq!(c.keep, 10);
        assert_eq!(c.compression_level, 6);
        assert!((1..=8).contains(&c.compression_threads));
        assert_eq!(c.quiet, Duration::from_secs(30));
        assert_eq!(c.max_wait, Duration::from_secs(600));
        assert_eq!(c.reopen.method, ReopenMethod::Auto);
        assert_eq!(c.dest, None);
        assert!(
            err(Ok(c.clone()).and_then(|c| c.require_dest().cloned().map(|_| c)))
                .contains("--dest")
        );
    }

    #[test]
    fn flag_beats_file_and_file_beats_default() {
        let file = r#"
            log = "/srv/file.log"
            keep = 3
            quiet = "5s"
            host = "fromfile"
            dest = "file:///srv/out/"
        "#;
        let common = CommonArgs {
            log: Some("/srv/flag.log".into()),
            ..Default::default()
        };
        let watch = WatchArgs {
            quiet: Some("500ms".into()),
            max_wait: None,
        };
        let c = load(common, Some(watch), file, &[]).unwrap();
        assert_eq!(c.log, PathBuf::from("/srv/flag.log"));
        assert_eq!(c.keep, 3);
        assert_eq!(c.quiet, Duration::from_millis(500));
        assert_eq!(c.max_wait, Duration::from_secs(600));
        assert_eq!(c.host, "fromfile");
        assert_eq!(
            c.dest,
            Some(DestUrl::File {
                root: "/srv/out".into()
            })
        );
    }

    #[test]
    fn errors_name_the_setting_and_where_it_came_from() {
        let bad_keep = CommonArgs {
            keep: Some("ten".into()),
            ..Default::default()
        };
        let e = err(load(bad_keep, None, "", &[]));
        assert!(e.contains("--keep") && e.contains("\"ten\""), "{e}");

        let bad_env = CommonArgs {
            close_timeout: Some("soon".into()),
            ..Default::default()
        };
        let e = err(load(bad_env, None, "", &["--close-timeout"]));
        assert!(
            e.contains("FASTTRACK_CLOSE_TIMEOUT") && e.contains("30s"),
            "{e}"
        );

        let e = err(load(CommonArgs::default(), None, "quiet = \"0s\"", &[]));
        assert!(e.contains("quiet in /etc/fasttrack/fasttrack.toml"), "{e}");

        let e = err(load(
            CommonArgs::default(),
            None,
            "compression-level = 12",
            &[],
        ));
        assert!(
            e.contains("compression-level") && e.contains("1 (fastest)"),
            "{e}"
        );

        let e = err(load(
            CommonArgs::default(),
            None,
            "compression-threads = 0",
            &[],
        ));
        assert!(
            e.contains("compression-threads") && e.contains("from 1 to 256"),
            "{e}"
        );

        let e = err(load(
            CommonArgs::default(),
            None,
            "dest = \"file://relative\"",
            &[],
        ));
        assert!(e.contains("three slashes"), "{e}");

        let e = err(load(CommonArgs::default(), None, "dest = \"ftp://x\"", &[]));
        assert!(e.contains("file:///DIR"), "{e}");

        let e = err(load(
            CommonArgs::default(),
            None,
            "dest = \"s3://Logs_Prod\"",
            &[],
        ));
        assert!(e.contains("not a valid bucket name"), "{e}");

        let e = err(load(
            CommonArgs::default(),
            None,
            "part-size = \"1MiB\"",
            &[],
        ));
        assert!(
            e.contains("part-size in") && e.contains("5MiB to 5GiB"),
            "{e}"
        );

        let e = err(load(
            CommonArgs::default(),
            None,
            "sse-kms-key-id = \"k\"",
            &[],
        ));
        assert!(e.contains("--sse aws:kms"), "{e}");

        let e = err(load(
            CommonArgs::default(),
            None,
            "checksum = \"always\"",
            &[],
        ));
        assert!(e.contains("when-required"), "{e}");

        let e = err(load(
            CommonArgs::default(),
            None,
            "endpoint-url = \"localhost:9000\"",
            &[],
        ));
        assert!(e.contains("http://"), "{e}");

        let e = err(load(CommonArgs::default(), None, "host = \"a/b\"", &[]));
        assert!(e.contains("\"a/b\""), "{e}");
    }

    #[test]
    fn s3_destinations_and_options() {
        let file = r#"
            dest = "s3://logs-prod/incidents/web/"
            part-size = "32MiB"
            upload-concurrency = 2
            sse = "aws:kms"
            sse-kms-key-id = "alias/logs"
            storage-class = "standard_ia"
            path-style = true
            checksum = "when-required"
        "#;
        let c = load(CommonArgs::default(), None, file, &[]).unwrap();
        let dest = c.dest.clone().unwrap();
        assert_eq!(
            dest,
            DestUrl::S3 {
                bucket: "logs-prod".into(),
                prefix: "incidents/web".into()
            }
        );
        assert_eq!(dest.to_string(), "s3://logs-prod/incidents/web");
        assert_eq!(
            dest.key("web1", "docker.log-5.gz").as_str(),
            "incidents/web/web1/docker.log-5.gz"
        );
        assert_eq!(c.s3.part_size, 32 << 20);
        assert_eq!(c.s3.upload_concurrency, 2);
        assert_eq!(
            c.s3.sse,
            Some(Sse::Kms {
                key_id: Some("alias/logs".into())
            })
        );
        assert_eq!(c.s3.storage_class.as_deref(), Some("STANDARD_IA"));
        assert!(c.s3.path_style);
        assert_eq!(c.s3.checksum, ChecksumMode::WhenRequired);
        assert_eq!(parse_size("5242880"), Some(5 << 20));
        assert_eq!(parse_size("16M"), Some(16 << 20));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("16 parsecs"), None);
        let plain = DestUrl::parse("s3://logs-prod").unwrap();
        assert_eq!(plain.key("h", "f").as_str(), "h/f");
    }

    #[test]
    fn the_packaged_example_is_valid_with_every_key_uncommented() {
        let example = include_str!("../packaging/fasttrack.toml");
        let uncommented: String = example
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase()) => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c = load(CommonArgs::default(), None, &uncommented, &[]).unwrap();
        assert!(c.incident.is_ignored("x GET /health y"));
        assert_eq!(c.incident.top, 10);
        let n = c.incident.notify.unwrap();
        assert_eq!(n.redacted_url(), "https://hooks.slack.com");
        assert_eq!(n.link_expiry, MAX_LINK_EXPIRY);
        assert!(c.incident.select.is_match("\"GET / HTTP/1.1\" 502 12"));
    }

    #[test]
    fn incident_settings_are_checked() {
        let e = err(load(CommonArgs::default(), None, "ignore = ['(']", &[]));
        assert!(
            e.contains(
                "ignore in /etc/fasttrack/fasttrack.toml \"(\" is not a valid regular expression"
            ),
            "{e}"
        );
        let e = err(load(
            CommonArgs::default(),
            None,
            "notify = 'hooks.slack.com/x'",
            &[],
        ));
        assert!(e.contains("is not an http:// or https:// URL"), "{e}");
        let e = err(load(
            CommonArgs::default(),
            None,
            "notify = 'https://h/x'\nnotify-link-expiry = '8d'",
            &[],
        ));
        assert!(e.contains("at most 7d"), "{e}");
        assert_eq!(
            redact_url("https://user:pw@hooks.example.com:8443/services/T/B/secret?x=1"),
            "https://hooks.example.com:8443"
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected_by_name() {
        let e = toml::from_str::<FileConfig>("quite = \"5s\"").unwrap_err();
        assert!(e.to_string().contains("quite"), "{e}");
    }

    #[test]
    fn a_missing_explicit_file_is_an_error_and_a_missing_default_is_not() {
        let e = read_config_file(Some(Path::new("/nonexistent/fasttrack.toml"))).unwrap_err();
        assert!(e.downcast_ref::<ConfigError>().is_some());
        assert!(e.to_string().contains("/nonexistent/fasttrack.toml"));
    }

    #[test]
    fn relative_paths_are_made_absolute() {
        let common = CommonArgs {
            state_dir: Some("state".into()),
            ..Default::default()
        };
        let c = load(common, None, "", &[]).unwrap();
        assert!(c.state_dir.is_absolute());
        assert!(c.state_dir.ends_with("state"));
    }
}
