//! The settings (the public contract), each defined once: a field below is a flag, its
//! `FASTTRACK_*` variable (clap) and the config file key of the same name (serde). Its type is
//! its typed value (src/config/values.rs, choices.rs), read through the same `FromStr` from all
//! three. Parsing only: no defaults that matter and no logic; `Config::load` merges the command
//! line with the config file and the defaults.

use crate::config::choices::{CannedAcl, ChecksumMode, NotifyFormat, SseAlgorithm, StorageClass};
use crate::config::values::{
    AccountId, Concurrency, EndpointUrl, Given, HostName, IgnorePattern, Keep, Level, LinkExpiry,
    MatchRule, NonZeroDuration, NotifyInterval, OrBlank, PartSize, Tag, Threads, Toggle, Top,
    WebhookUrl,
};
use crate::config::DestUrl;
pub use crate::config::ReopenMethod;
use crate::key_template::KeyTemplate;
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "fasttrack",
    version,
    args_override_self = true,
    about = "Fast-track server errors to S3: rotate docker.log after a burst of 5xx lines, gzip it, ship it",
    after_help = "Every option can also be set in the config file and as FASTTRACK_<NAME> in the environment \
                  (e.g. FASTTRACK_STATE_DIR); precedence: flag > environment > file > default.\n\
                  Exit codes: 0 done, 1 error, 2 usage or configuration error, 3 rotated but something is still pending."
)]
pub struct Cli {
    /// Config file (TOML). Default /etc/fasttrack/fasttrack.toml, used only if it exists
    #[arg(
        short = 'c',
        long,
        env = "FASTTRACK_CONFIG",
        global = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub s3: S3Args,

    #[command(flatten)]
    pub incident: IncidentArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Be syslog-ng's program() destination: read the 5xx stream on stdin, fast-track after each quiet period
    Watch(WatchArgs),
    /// Rotate, compress and ship now; exit 0 only if everything was shipped
    Rotate,
    /// Ship rotated files that are still pending, without rotating
    Upload,
    /// Show the log, the rotated files and their state, the last rotation and the last error
    ///
    /// With --json, the same report as one JSON document whose schema (version 1) is
    /// /usr/share/doc/fasttrack/status-json.md (docs/ in the source). Exits 3 when a file is pending, either way.
    Status(StatusArgs),
    /// Check the set-up and catch the classic mistakes: destination, credentials, clock, syslog-ng, logrotate, state dir, webhook
    Check(CheckArgs),
    /// Print the incident digest of log files (plain or gzipped, local or s3://BUCKET/KEY)
    Digest(DigestArgs),
    /// The fleet's digest: merge the incident index of every host over a time range
    ///
    /// Lists only the index partitions of the range (PREFIX/_incidents/dt=YYYY-MM-DD/), fetches
    /// their records 64 at a time and prints totals per status, host, program and message, and the
    /// largest incidents with download links. The record schema is
    /// /usr/share/doc/fasttrack/incident-index.md (docs/ in the source). With --notify URL or FASTTRACK_NOTIFY
    /// (never the config file's notify alone) the report is also posted. Exits 1 if a record could not be read.
    Report(ReportArgs),
    /// Write the man page and shell completions into a directory (for packagers)
    #[command(hide = true)]
    GenerateDocs(GenerateDocsArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Post a clearly marked test message to the --notify webhook (without it, check only sees that the webhook answers)
    #[arg(long)]
    pub notify_test: bool,

    /// logrotate's main config: it and the files it includes must not rotate --log too [default: /etc/logrotate.conf]
    #[arg(long, value_name = "FILE")]
    pub logrotate_conf: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GenerateDocsArgs {
    /// Where to write fasttrack.1, fasttrack.bash, _fasttrack and fasttrack.fish
    #[arg(value_name = "OUT_DIR")]
    pub out: std::path::PathBuf,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Watch(_) => "watch",
            Command::Rotate => "rotate",
            Command::Upload => "upload",
            Command::Status(_) => "status",
            Command::Check(_) => "check",
            Command::Digest(_) => "digest",
            Command::Report(_) => "report",
            Command::GenerateDocs(_) => "generate-docs",
        }
    }
}

#[derive(Debug, Default, Args, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct CommonArgs {
    /// The log syslog-ng writes; rotated files live beside it [default: /var/log/docker.log]
    #[arg(long, env = "FASTTRACK_LOG", global = true, value_name = "PATH")]
    pub log: Option<PathBuf>,

    /// Where rotated logs are shipped: s3://BUCKET[/PREFIX] or file:///DIR; objects are <PREFIX>/<HOST>/<file>
    #[arg(long, env = "FASTTRACK_DEST", global = true, value_name = "URL")]
    pub dest: Option<Given<DestUrl>>,

    /// Object keys: {prefix} {host} {file} {date} {year} {month} {day} {hour} (UTC, of the rotation), e.g. logs/dt={date}/host={host}/{file} [default: {prefix}/{host}/{file}]
    #[arg(
        long,
        env = "FASTTRACK_KEY_TEMPLATE",
        global = true,
        value_name = "TEMPLATE"
    )]
    pub key_template: Option<Given<KeyTemplate>>,

    /// Host name used in object keys [default: the system hostname]
    #[arg(long, env = "FASTTRACK_HOST", global = true, value_name = "NAME")]
    pub host: Option<Given<HostName>>,

    /// Lock file and state [default: /var/lib/fasttrack]
    #[arg(long, env = "FASTTRACK_STATE_DIR", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// How to ask syslog-ng to reopen its files [default: auto = socket, then ctl, then usr1]
    #[arg(long, env = "FASTTRACK_REOPEN", global = true, value_enum)]
    pub reopen: Option<ReopenMethod>,

    /// syslog-ng's control socket [default: first that exists of the Debian and RHEL locations]
    #[arg(
        long,
        env = "FASTTRACK_CONTROL_SOCKET",
        global = true,
        value_name = "PATH"
    )]
    pub control_socket: Option<PathBuf>,

    /// syslog-ng's pidfile, for the usr1 and hup methods [default: first that exists of the Debian and RHEL locations]
    #[arg(long, env = "FASTTRACK_PIDFILE", global = true, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,

    /// How many shipped rotated files to keep locally; unshipped files are never deleted [default: 10]
    #[arg(long, env = "FASTTRACK_KEEP", global = true, value_name = "N")]
    pub keep: Option<Given<Keep>>,

    /// fasttrack's own log (stdout and stderr are lost under syslog-ng) [default: /var/log/fasttrack.log]
    #[arg(long, env = "FASTTRACK_LOG_FILE", global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// Compression level, 1 (fastest) to 9 (smallest), libdeflate's [default: 5]
    #[arg(
        long,
        env = "FASTTRACK_COMPRESSION_LEVEL",
        global = true,
        value_name = "1-9"
    )]
    pub compression_level: Option<Given<Level>>,

    /// Threads that compress a rotated file; the output is one ordinary .gz either way
    /// [default: the CPUs available, at most 8]
    #[arg(
        long,
        env = "FASTTRACK_COMPRESSION_THREADS",
        global = true,
        value_name = "N"
    )]
    pub compression_threads: Option<Given<Threads>>,

    /// How long to wait for syslog-ng to close the rotated file before falling back to
    /// waiting until its size is stable [default: 10s]
    #[arg(
        long,
        env = "FASTTRACK_CLOSE_TIMEOUT",
        global = true,
        value_name = "DURATION"
    )]
    pub close_timeout: Option<Given<NonZeroDuration>>,

    /// Longest delay between two attempts of `watch` to ship a pending file [default: 60s]
    #[arg(
        long,
        env = "FASTTRACK_RETRY_MAX_DELAY",
        global = true,
        value_name = "DURATION"
    )]
    pub retry_max_delay: Option<Given<NonZeroDuration>>,

    /// No progress bar on the terminal for `rotate` and `upload` (none is drawn anyway when
    /// stderr is not a terminal or TERM is dumb, nor by `watch`) [default: false]
    #[arg(long, env = "FASTTRACK_NO_PROGRESS", global = true, value_name = "BOOL",
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_progress: Option<Given<Toggle>>,

    /// Prometheus metrics, written atomically after each cycle and every 30 s by `watch`,
    /// for node_exporter's textfile collector, e.g.
    /// /var/lib/node_exporter/textfile_collector/fasttrack.prom [default: none]
    #[arg(
        long,
        env = "FASTTRACK_METRICS_FILE",
        global = true,
        value_name = "PATH"
    )]
    pub metrics_file: Option<PathBuf>,

    /// Reach S3 and webhooks through this proxy, http://[USER:PASSWORD@]HOST:PORT [default: https_proxy, http_proxy, all_proxy as curl reads them; no_proxy applies]
    #[arg(long, env = "FASTTRACK_PROXY", global = true, value_name = "URL")]
    pub proxy: Option<Given<OrBlank<String>>>,
}

/// Options of the s3:// destination. Credentials come from the standard AWS chain (environment,
/// shared files, web identity, ECS, instance role), never from the command line.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
#[command(next_help_heading = "S3 destination")]
pub struct S3Args {
    /// AWS region [default: from the AWS config chain, else us-east-1]
    #[arg(long, env = "FASTTRACK_REGION", global = true, value_name = "REGION")]
    pub region: Option<Given<OrBlank<String>>>,

    /// S3-compatible endpoint (MinIO, Ceph, R2...), e.g. http://127.0.0.1:9000
    #[arg(
        long,
        env = "FASTTRACK_ENDPOINT_URL",
        global = true,
        value_name = "URL"
    )]
    pub endpoint_url: Option<Given<OrBlank<EndpointUrl>>>,

    /// Use the region's FIPS endpoints (s3-fips.REGION.amazonaws.com); AWS_USE_FIPS_ENDPOINT and the profile's use_fips_endpoint work too
    #[arg(long, env = "FASTTRACK_FIPS", global = true, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub fips: Option<Given<Toggle>>,

    /// Use the dual-stack (IPv6) endpoints (s3.dualstack.REGION.amazonaws.com); AWS_USE_DUALSTACK_ENDPOINT works too
    #[arg(long, env = "FASTTRACK_DUAL_STACK", global = true, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub dual_stack: Option<Given<Toggle>>,

    /// Address buckets as ENDPOINT/BUCKET instead of BUCKET.ENDPOINT (most S3-compatible stores)
    #[arg(long, env = "FASTTRACK_PATH_STYLE", global = true, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub path_style: Option<Given<Toggle>>,

    /// AWS profile of the shared config files
    #[arg(long, env = "FASTTRACK_PROFILE", global = true, value_name = "NAME")]
    pub profile: Option<Given<OrBlank<String>>>,

    /// AWS shared config file (instead of ~/.aws/config: syslog-ng's child may have no HOME)
    #[arg(
        long,
        env = "FASTTRACK_AWS_CONFIG_FILE",
        global = true,
        value_name = "PATH"
    )]
    pub aws_config_file: Option<PathBuf>,

    /// AWS shared credentials file (instead of ~/.aws/credentials)
    #[arg(
        long,
        env = "FASTTRACK_AWS_CREDENTIALS_FILE",
        global = true,
        value_name = "PATH"
    )]
    pub aws_credentials_file: Option<PathBuf>,

    /// Storage class of the objects, e.g. STANDARD_IA [default: the bucket's]
    #[arg(
        long,
        env = "FASTTRACK_STORAGE_CLASS",
        global = true,
        value_name = "CLASS"
    )]
    pub storage_class: Option<Given<OrBlank<StorageClass>>>,

    /// Canned ACL of the objects, e.g. bucket-owner-full-control for another account's bucket [default: none sent]
    #[arg(long, env = "FASTTRACK_ACL", global = true, value_name = "ACL")]
    pub acl: Option<Given<OrBlank<CannedAcl>>>,

    /// The account that must own the bucket (12 digits), sent with every request: S3 refuses it otherwise
    #[arg(
        long,
        env = "FASTTRACK_EXPECTED_BUCKET_OWNER",
        global = true,
        value_name = "ACCOUNT"
    )]
    pub expected_bucket_owner: Option<Given<OrBlank<AccountId>>>,

    /// Tag the objects KEY=VALUE (repeatable; at most 10 tags with --tag-incident's)
    #[arg(long, env = "FASTTRACK_TAG", global = true, value_name = "KEY=VALUE")]
    pub tag: Vec<Given<Tag>>,

    /// Also tag each log object with incident=<id> and statuses=<502-503...> from its digest
    #[arg(long, env = "FASTTRACK_TAG_INCIDENT", global = true, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub tag_incident: Option<Given<Toggle>>,

    /// Upload a large rotated log while it is compressed, its parts as they are written [default: true]
    #[arg(long, env = "FASTTRACK_UPLOAD_WHILE_COMPRESSING", global = true, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub upload_while_compressing: Option<Given<Toggle>>,

    /// Server-side encryption: AES256 or aws:kms
    #[arg(
        long,
        env = "FASTTRACK_SSE",
        global = true,
        value_name = "AES256|aws:kms"
    )]
    pub sse: Option<Given<OrBlank<SseAlgorithm>>>,

    /// KMS key for --sse aws:kms [default: the account's aws/s3 key]
    #[arg(
        long,
        env = "FASTTRACK_SSE_KMS_KEY_ID",
        global = true,
        value_name = "KEY"
    )]
    pub sse_kms_key_id: Option<Given<OrBlank<String>>>,

    /// when-supported (AWS) or when-required (stores that reject or mangle the SDK's default checksums) [default: when-supported]
    #[arg(long, env = "FASTTRACK_CHECKSUM", global = true, value_name = "WHEN")]
    pub checksum: Option<Given<OrBlank<ChecksumMode>>>,

    /// Files larger than this go up as multipart uploads of parts this size (5MiB..5GiB) [default: 8MiB]
    #[arg(long, env = "FASTTRACK_PART_SIZE", global = true, value_name = "SIZE")]
    pub part_size: Option<Given<PartSize>>,

    /// Parts uploaded at once, each streamed from the file [default: 4]
    #[arg(
        long,
        env = "FASTTRACK_UPLOAD_CONCURRENCY",
        global = true,
        value_name = "N"
    )]
    pub upload_concurrency: Option<Given<Concurrency>>,

    /// Longest time one request to the store may take [default: 5m]
    #[arg(
        long,
        env = "FASTTRACK_UPLOAD_TIMEOUT",
        global = true,
        value_name = "DURATION"
    )]
    pub upload_timeout: Option<Given<NonZeroDuration>>,
}

/// What makes an incident, what is left out of it, and who is told.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
#[command(next_help_heading = "Incident digest and notification")]
pub struct IncidentArgs {
    /// The lines of a whole log that belong to an incident, for `digest` and for rotations
    /// done without `watch` [default: the article's 5xx rule, HTTP/.{3,20}[[:space:]]5[[:digit:]]{2}[[:space:]]]
    #[arg(
        long = "match",
        env = "FASTTRACK_MATCH",
        global = true,
        value_name = "REGEX"
    )]
    #[serde(rename = "match")]
    pub match_: Option<Given<MatchRule>>,

    /// Snooze lines matching REGEX (repeatable): they neither open an incident nor count in
    /// its digest, and stay in the shipped log
    #[arg(long, env = "FASTTRACK_IGNORE", global = true, value_name = "REGEX")]
    pub ignore: Vec<Given<IgnorePattern>>,

    /// How many entries each list of the digest keeps (messages, hosts, programs) [default: 10]
    #[arg(long, env = "FASTTRACK_TOP", global = true, value_name = "N")]
    pub top: Option<Given<Top>>,

    /// POST a message to this webhook when an incident has been shipped (Slack incoming
    /// webhook, or any URL with --notify-format json). A secret: set notify in the config file
    /// or FASTTRACK_NOTIFY, since `watch` refuses it on the command line
    #[arg(long, env = "FASTTRACK_NOTIFY", global = true, value_name = "URL")]
    pub notify: Option<Given<WebhookUrl>>,

    /// slack (incoming-webhook JSON with a text) or json (the digest and the link) [default: slack]
    #[arg(
        long,
        env = "FASTTRACK_NOTIFY_FORMAT",
        global = true,
        value_name = "FORMAT"
    )]
    pub notify_format: Option<Given<NotifyFormat>>,

    /// At most one --notify message per this long: incidents in between are folded into the next, never dropped; 0s: no wait [default: 5m]
    #[arg(
        long,
        env = "FASTTRACK_NOTIFY_INTERVAL",
        global = true,
        value_name = "DURATION"
    )]
    pub notify_interval: Option<Given<NotifyInterval>>,

    /// How long the download link in a notification works (an S3 presigned URL: at most 7d) [default: 7d]
    #[arg(
        long,
        env = "FASTTRACK_NOTIFY_LINK_EXPIRY",
        global = true,
        value_name = "DURATION"
    )]
    pub notify_link_expiry: Option<Given<LinkExpiry>>,

    /// AWS profile whose credentials sign the download link only, e.g. a dedicated IAM user's
    /// long-lived keys: a link lasts no longer than the credentials that signed it, and the
    /// shipping ones may be temporary (an instance role's) [default: the shipping credentials]
    #[arg(
        long,
        env = "FASTTRACK_LINK_PROFILE",
        global = true,
        value_name = "NAME"
    )]
    pub link_profile: Option<Given<OrBlank<String>>>,
}

#[derive(Debug, Default, Args)]
pub struct StatusArgs {
    /// Print one JSON document (schema version 1: /usr/share/doc/fasttrack/status-json.md) instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Default, Args)]
pub struct DigestArgs {
    /// Log files: plain or gzipped, local paths or s3://BUCKET/KEY (with the S3 options above)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,

    /// Print JSON (one object per file, as written next to rotated logs) instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The destination the hosts ship to: s3://BUCKET[/PREFIX] or file:///DIR [default: --dest]
    #[arg(value_name = "DEST", value_parser = DestUrl::parse)]
    pub destination: Option<DestUrl>,

    /// Start of the range: a duration before now (24h, 7d) or a UTC time (2026-11-22, 2026-11-22T05:00:00Z)
    #[arg(long, value_name = "WHEN", default_value = "24h")]
    pub since: crate::report::range::TimeBound,

    /// End of the range, excluded, written like --since [default: now]
    #[arg(long, value_name = "WHEN")]
    pub until: Option<crate::report::range::TimeBound>,

    /// Print one JSON document ("version": 1) instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Default, Args, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct WatchArgs {
    /// Fast-track once the 5xx stream has been quiet this long [default: 30s]
    #[arg(long, env = "FASTTRACK_QUIET", value_name = "DURATION")]
    pub quiet: Option<Given<NonZeroDuration>>,

    /// Fast-track at the latest this long after an incident opened, even if errors never stop [default: 10m]
    #[arg(long, env = "FASTTRACK_MAX_WAIT", value_name = "DURATION")]
    pub max_wait: Option<Given<NonZeroDuration>>,
}
