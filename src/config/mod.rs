//! The validated configuration, built once from flags, environment, config file and defaults
//! (precedence in that order). Nothing below this module reads clap types or the environment.
//!
//! A setting is defined in two places: its field in src/cli.rs (flag, variable and file key
//! at once, typed by its value in [`values`] or [`choices`]) and its use in
//! [`Config::from_parts`] below (its `Config` field, default and cross-checks). [`sources`]
//! says which layer gave it, [`file`] reads the TOML layer.

pub mod choices;
mod dest_url;
mod file;
pub mod routes;
mod sources;
#[cfg(test)]
mod tests;
pub mod values;

pub use choices::{ChecksumMode, NotifyFormat, ReopenMethod};
pub use dest_url::DestUrl;
pub use routes::{LineFilter, Route};
pub use sources::Origins;
pub use values::{MAX_LINK_EXPIRY, MIN_PART_SIZE};

use crate::cli::{Cli, Command, WatchArgs};
use choices::SseAlgorithm;
use sources::{Layer, Sources};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG: &str = "/etc/fasttrack/fasttrack.toml";
const DEFAULT_LOG: &str = "/var/log/docker.log";
const DEFAULT_STATE_DIR: &str = "/var/lib/fasttrack";
pub const DEFAULT_LOG_FILE: &str = "/var/log/fasttrack.log";
const DEFAULT_KEEP: usize = 10;
/// libdeflate's level 5: smaller than `gzip -6` (0.97x) and faster than `pigz` (BENCHMARKS.md, figure 8).
const DEFAULT_LEVEL: u32 = 5;
const DEFAULT_QUIET: Duration = Duration::from_secs(30);
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(600);
const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRY_MAX_DELAY: Duration = Duration::from_secs(60);
/// The AWS CLI's default too; small enough that an upload while compressing starts early.
const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
const DEFAULT_UPLOAD_CONCURRENCY: usize = 4;
const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_TOP: usize = 10;

/// A usage or configuration error: the process exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub(crate) fn config_error(msg: impl Into<String>) -> anyhow::Error {
    ConfigError(msg.into()).into()
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

/// Settings of the s3:// destination (ignored by file://).
#[derive(Debug, Clone)]
pub struct S3Options {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub path_style: bool,
    pub profile: Option<String>,
    pub aws_config_file: Option<PathBuf>,
    pub aws_credentials_file: Option<PathBuf>,
    pub storage_class: Option<choices::StorageClass>,
    /// `--fips` / `--dual-stack`: `Some` when given (else the SDK reads AWS_USE_FIPS_ENDPOINT,
    /// AWS_USE_DUALSTACK_ENDPOINT and the profile).
    pub fips: Option<bool>,
    pub dual_stack: Option<bool>,
    /// Canned ACL sent with each upload (`--acl`).
    pub acl: Option<choices::CannedAcl>,
    /// Sent with every request as `x-amz-expected-bucket-owner` (`--expected-bucket-owner`).
    pub expected_bucket_owner: Option<String>,
    /// The proxies to reach the store through (`--proxy`, the environment).
    pub proxies: crate::proxy::Proxies,
    /// Tags of every object (`--tag`), in order, keys unique.
    pub tags: Vec<values::Tag>,
    /// Also tag log objects with their incident id and statuses (`--tag-incident`).
    pub tag_incident: bool,
    /// Ship a large rotated log while it is compressed (`--upload-while-compressing`).
    pub upload_while_compressing: bool,
    pub sse: Option<Sse>,
    pub checksum: ChecksumMode,
    pub part_size: u64,
    pub upload_concurrency: usize,
    pub upload_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub log: PathBuf,
    pub dest: Option<DestUrl>,
    /// Where each object goes at the destination (`--key-template`).
    pub key_template: crate::key_template::KeyTemplate,
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
    /// Where the Prometheus metrics are written, if anywhere (src/metrics).
    pub metrics_file: Option<PathBuf>,
    /// `rotate` and `upload` may draw a progress bar when stderr is a terminal (not
    /// `--no-progress`); src/progress.rs decides whether one is drawn.
    pub progress: bool,
    pub s3: S3Options,
    pub incident: IncidentConfig,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// The keys of the config file that hold a secret (`check` warns if others can read it).
    pub secret_keys_in_file: Vec<&'static str>,
    /// What the user should hear about before the command runs (printed on stderr).
    pub warnings: Vec<String>,
}

/// What makes an incident line, what is snoozed, and who is told when one is shipped.
#[derive(Debug, Clone)]
pub struct IncidentConfig {
    /// Selects the incident lines of a whole log (`digest`, rotations without `watch`).
    pub select: regex::bytes::Regex,
    /// Snoozed lines: they neither open an incident nor count in its digest.
    pub ignore: regex::bytes::RegexSet,
    /// Entries kept in each list of a digest.
    pub top: usize,
    pub notify: Option<NotifyConfig>,
}

impl IncidentConfig {
    pub fn is_ignored(&self, line: &[u8]) -> bool {
        !self.ignore.is_empty() && self.ignore.is_match(line)
    }
}

/// Where incidents are told: one or more routes (`--notify` is one without filters).
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub routes: Vec<Route>,
    /// The proxies webhooks are reached through (src/proxy.rs).
    pub proxies: crate::proxy::Proxies,
    pub link_expiry: Duration,
    /// The AWS profile that signs links, if not the shipping credentials.
    pub link_profile: Option<LinkProfile>,
}

/// `--link-profile`: an AWS profile used only to sign download links, and where the setting
/// came from (its errors name it: the profile is resolved when the destination is opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkProfile {
    pub name: String,
    pub origin: String,
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

impl Config {
    /// Builds and validates the configuration for `cli`. Every failure is a [`ConfigError`].
    pub fn load(cli: &Cli, origins: &Origins) -> anyhow::Result<Config> {
        let (file, config_file) = file::read(cli.config.as_deref())?;
        let no_watch = WatchArgs::default();
        let (watch, is_watch) = match &cli.command {
            Command::Watch(w) => (w, true),
            _ => (&no_watch, false),
        };
        let flags = Layer {
            common: &cli.common,
            s3: &cli.s3,
            incident: &cli.incident,
            watch,
            routes: &[],
        };
        let src = Sources::new(origins, flags, file.layer(), config_file.as_deref());
        Self::from_parts(&src, is_watch, system_hostname)
    }

    /// Each setting is read from the layer that gives it, with its default, in the order
    /// written (the first error is the one reported).
    fn from_parts(
        src: &Sources,
        is_watch: bool,
        hostname: fn() -> Option<String>,
    ) -> anyhow::Result<Config> {
        let log = src
            .path("log", |l| &l.common.log)?
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LOG));
        if log.file_name().and_then(|n| n.to_str()).is_none() {
            return Err(config_error(format!(
                "--log {} must name a file with a UTF-8 name",
                log.display()
            )));
        }
        let dest = src.value("dest", |l| &l.common.dest)?;
        let host = match src.value("host", |l| &l.common.host)? {
            Some(host) => host.0,
            None => system_host(hostname)?,
        };
        let key_template = src
            .value("key-template", |l| &l.common.key_template)?
            .unwrap_or_default();
        if let Some(d) = &dest {
            // What this host's keys look like: an error now rather than at the first shipment.
            d.key(&key_template, &host, "docker.log-0.gz", chrono::Utc::now())
                .map_err(|e| config_error(format!("{e:#}")))?;
        }
        Ok(Config {
            log,
            dest,
            key_template,
            host,
            state_dir: src
                .path("state-dir", |l| &l.common.state_dir)?
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            log_file: src
                .path("log-file", |l| &l.common.log_file)?
                .unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_FILE)),
            reopen: ReopenConfig {
                method: src
                    .pick("reopen", |l| l.common.reopen.as_ref())
                    .map_or(ReopenMethod::Auto, |s| *s.value),
                control_socket: src.path("control-socket", |l| &l.common.control_socket)?,
                pidfile: src.path("pidfile", |l| &l.common.pidfile)?,
            },
            keep: src
                .value("keep", |l| &l.common.keep)?
                .map_or(DEFAULT_KEEP, |n| n.0),
            compression_level: src
                .value("compression-level", |l| &l.common.compression_level)?
                .map_or(DEFAULT_LEVEL, |n| n.0),
            compression_threads: src
                .value("compression-threads", |l| &l.common.compression_threads)?
                .map_or_else(default_compression_threads, |n| n.0),
            close_timeout: src
                .value("close-timeout", |l| &l.common.close_timeout)?
                .map_or(DEFAULT_CLOSE_TIMEOUT, |d| d.0),
            quiet: src
                .value("quiet", |l| &l.watch.quiet)?
                .map_or(DEFAULT_QUIET, |d| d.0),
            max_wait: src
                .value("max-wait", |l| &l.watch.max_wait)?
                .map_or(DEFAULT_MAX_WAIT, |d| d.0),
            retry_max_delay: src
                .value("retry-max-delay", |l| &l.common.retry_max_delay)?
                .map_or(DEFAULT_RETRY_MAX_DELAY, |d| d.0),
            metrics_file: src.path("metrics-file", |l| &l.common.metrics_file)?,
            progress: !src
                .value("no-progress", |l| &l.common.no_progress)?
                .is_some_and(|t| t.0),
            s3: s3_options(src)?,
            incident: incident_options(src)?,
            warnings: src.secrets_on_command_line(is_watch)?,
            config_file: src.file_path().map(Path::to_path_buf),
            secret_keys_in_file: secret_keys(src.file()),
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

/// The keys of the file that hold a secret.
fn secret_keys(file: Layer) -> Vec<&'static str> {
    [
        ("notify", file.incident.notify.is_some()),
        ("route", !file.routes.is_empty()),
    ]
    .into_iter()
    .filter_map(|(key, present)| present.then_some(key))
    .collect()
}

fn system_host(hostname: fn() -> Option<String>) -> anyhow::Result<String> {
    let name = hostname().ok_or_else(|| {
        config_error("cannot read the system hostname; set --host or FASTTRACK_HOST")
    })?;
    match name.parse::<values::HostName>() {
        Ok(host) => Ok(host.0),
        Err(values::Invalid::Sentence(e) | values::Invalid::Value(e)) => Err(config_error(
            format!("{e} (the system hostname); set --host or FASTTRACK_HOST"),
        )),
    }
}

fn s3_options(src: &Sources) -> anyhow::Result<S3Options> {
    let opts = S3Options {
        endpoint_url: src
            .value("endpoint-url", |l| &l.s3.endpoint_url)?
            .and_then(|e| e.0)
            .map(|e| e.0),
        path_style: src
            .value("path-style", |l| &l.s3.path_style)?
            .is_some_and(|p| p.0),
        storage_class: src
            .value("storage-class", |l| &l.s3.storage_class)?
            .and_then(|c| c.0),
        fips: src.value("fips", |l| &l.s3.fips)?.map(|t| t.0),
        dual_stack: src.value("dual-stack", |l| &l.s3.dual_stack)?.map(|t| t.0),
        acl: src.value("acl", |l| &l.s3.acl)?.and_then(|a| a.0),
        expected_bucket_owner: src
            .value("expected-bucket-owner", |l| &l.s3.expected_bucket_owner)?
            .and_then(|a| a.0)
            .map(|a| a.0),
        tags: tags(src)?,
        proxies: proxies(src)?,
        tag_incident: src
            .value("tag-incident", |l| &l.s3.tag_incident)?
            .is_some_and(|t| t.0),
        upload_while_compressing: src
            .value("upload-while-compressing", |l| {
                &l.s3.upload_while_compressing
            })?
            .map_or(true, |t| t.0),
        sse: sse(src)?,
        checksum: src
            .value("checksum", |l| &l.s3.checksum)?
            .and_then(|c| c.0)
            .unwrap_or(ChecksumMode::WhenSupported),
        part_size: src
            .value("part-size", |l| &l.s3.part_size)?
            .map_or(DEFAULT_PART_SIZE, |p| p.0),
        upload_concurrency: src
            .value("upload-concurrency", |l| &l.s3.upload_concurrency)?
            .map_or(DEFAULT_UPLOAD_CONCURRENCY, |n| n.0),
        upload_timeout: src
            .value("upload-timeout", |l| &l.s3.upload_timeout)?
            .map_or(DEFAULT_UPLOAD_TIMEOUT, |d| d.0),
        region: src.value("region", |l| &l.s3.region)?.and_then(|r| r.0),
        profile: src.value("profile", |l| &l.s3.profile)?.and_then(|p| p.0),
        aws_config_file: src.path("aws-config-file", |l| &l.s3.aws_config_file)?,
        aws_credentials_file: src.path("aws-credentials-file", |l| &l.s3.aws_credentials_file)?,
    };
    // The SDK refuses these with a custom endpoint at the first request: say so now.
    for (flag, on) in [("--fips", opts.fips), ("--dual-stack", opts.dual_stack)] {
        if let (Some(true), Some(url)) = (on, &opts.endpoint_url) {
            return Err(config_error(format!(
                "{flag} chooses one of AWS's own endpoints, which --endpoint-url {url} replaces; drop one of them"
            )));
        }
    }
    Ok(opts)
}

/// `--proxy`, else the environment (src/proxy.rs).
fn proxies(src: &Sources) -> anyhow::Result<crate::proxy::Proxies> {
    let flag = src
        .get("proxy", |l| &l.common.proxy)?
        .and_then(|s| s.value.0.map(|url| (url, s.origin)));
    crate::proxy::Proxies::resolve(
        flag.as_ref().map(|(u, o)| (u.as_str(), o.as_str())),
        |name| std::env::var(name).ok(),
    )
}

/// The most tags an S3 object may have.
pub const MAX_TAGS: usize = 10;

/// `--tag`, each key once, at most [`MAX_TAGS`] with the two `--tag-incident` adds.
fn tags(src: &Sources) -> anyhow::Result<Vec<values::Tag>> {
    let Some(given) = src.list("tag", |l| &l.s3.tag)? else {
        return Ok(Vec::new());
    };
    let incident = src
        .value("tag-incident", |l| &l.s3.tag_incident)?
        .is_some_and(|t| t.0);
    let mut seen = std::collections::HashSet::new();
    for tag in &given.value {
        if !seen.insert(tag.key.as_str()) {
            return Err(config_error(format!(
                "{} gives the tag key {:?} twice; give each key once",
                given.origin, tag.key
            )));
        }
        if incident && ["incident", "statuses"].contains(&tag.key.as_str()) {
            return Err(config_error(format!(
                "{} gives the tag key {:?}, which --tag-incident sets; rename it or drop --tag-incident",
                given.origin, tag.key
            )));
        }
    }
    let total = given.value.len() + if incident { 2 } else { 0 };
    if total > MAX_TAGS {
        return Err(config_error(format!(
            "{} gives {} tags{}: S3 allows {MAX_TAGS} per object; drop some",
            given.origin,
            given.value.len(),
            if incident {
                " (and --tag-incident adds 2)"
            } else {
                ""
            }
        )));
    }
    Ok(given.value)
}

/// `--sse` and `--sse-kms-key-id`, which only goes with `--sse aws:kms`.
fn sse(src: &Sources) -> anyhow::Result<Option<Sse>> {
    let kms_key = src
        .get("sse-kms-key-id", |l| &l.s3.sse_kms_key_id)?
        .and_then(|s| s.value.0.map(|key| (key, s.origin)));
    Ok(match src.value("sse", |l| &l.s3.sse)?.and_then(|s| s.0) {
        Some(SseAlgorithm::Aes256) => {
            if let Some((_, origin)) = &kms_key {
                return Err(config_error(format!(
                    "{origin} needs --sse aws:kms, not AES256"
                )));
            }
            Some(Sse::Aes256)
        }
        Some(SseAlgorithm::AwsKms) => Some(Sse::Kms {
            key_id: kms_key.map(|(key, _)| key),
        }),
        None => match kms_key {
            Some((_, origin)) => {
                return Err(config_error(format!(
                    "{origin} is set but --sse is not: add --sse aws:kms"
                )))
            }
            None => None,
        },
    })
}

fn incident_options(src: &Sources) -> anyhow::Result<IncidentConfig> {
    Ok(IncidentConfig {
        select: match src.value("match", |l| &l.incident.match_)? {
            Some(rule) => rule.0,
            // Invariant: DEFAULT_MATCH is a constant, compiled in a unit test.
            None => regex::bytes::Regex::new(crate::digest::DEFAULT_MATCH)
                .expect("the default rule is valid"),
        },
        ignore: match src.list("ignore", |l| &l.incident.ignore)? {
            None => regex::bytes::RegexSet::empty(),
            Some(s) => regex::bytes::RegexSet::new(s.value.iter().map(|p| &p.0))
                .map_err(|e| config_error(format!("{}: {e}", s.origin)))?,
        },
        top: src
            .value("top", |l| &l.incident.top)?
            .map_or(DEFAULT_TOP, |n| n.0),
        notify: notify(src)?,
    })
}

/// The webhooks: `--notify` (with `--notify-format`) and the file's `[[route]]` tables; `None`
/// when there are none.
fn notify(src: &Sources) -> anyhow::Result<Option<NotifyConfig>> {
    let shorthand = match src.value("notify", |l| &l.incident.notify)? {
        Some(url) => Some(Route::shorthand(
            url.0,
            src.value("notify-format", |l| &l.incident.notify_format)?
                .unwrap_or(NotifyFormat::Slack),
            src.value("notify-interval", |l| &l.incident.notify_interval)?
                .map_or(routes::DEFAULT_INTERVAL, |i| i.0),
        )),
        None => None,
    };
    let routes = routes::validate(src.file().routes, shorthand.as_ref())?;
    if routes.is_empty() {
        return Ok(None);
    }
    Ok(Some(NotifyConfig {
        routes,
        proxies: proxies(src)?,
        link_expiry: src
            .value("notify-link-expiry", |l| &l.incident.notify_link_expiry)?
            .map_or(MAX_LINK_EXPIRY, |e| e.0),
        link_profile: src
            .get("link-profile", |l| &l.incident.link_profile)?
            .and_then(|s| {
                s.value.0.map(|name| LinkProfile {
                    name,
                    origin: s.origin,
                })
            }),
    }))
}

/// The CPUs this process may run on (cgroup and affinity limits included), at most 8.
pub fn default_compression_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

fn system_hostname() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
}
