//! `fasttrack report [DEST] --since 24h`: the fleet's digest, merged from the incident index
//! (src/index.rs, docs/incident-index.md) that every host writes beside its logs.
//!
//! Fleet-sized by construction: only the partitions of the range are listed (one
//! `_incidents/dt=YYYY-MM-DD/` prefix per UTC day, never the whole index; the days at once),
//! the records are fetched [`CONCURRENCY`] at a time while the listing goes on, and merged as
//! they arrive ([`merge`]): memory holds the keys and the counts, never the records
//! (BENCHMARKS.md, figure 12).

pub mod merge;
pub mod range;
pub mod render;

use crate::cli::ReportArgs;
use crate::config::routes::NOTIFY_ROUTE;
use crate::config::{Config, ConfigError, DestUrl, NotifyConfig, NotifyFormat, Origins};
use crate::dest::Destination;
use crate::exit::Outcome;
use crate::naming::ObjectKey;
use crate::{dest, index, notify, output};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use merge::{Merger, Report};
use range::Range;
use std::time::Duration;

/// Records fetched at once. A GET is bound by the store's latency (about 10 ms on s3s-fs,
/// tens of ms on S3), not by bandwidth or CPU: 16 in flight took 25 s for 20 000 records
/// on s3s-fs, 64 took 6 s (BENCHMARKS.md, figure 12), with 4 MiB more at the peak.
pub const CONCURRENCY: usize = 64;

/// What to report on, validated from the command line and the configuration.
#[derive(Debug, Clone)]
pub struct Request {
    pub dest: DestUrl,
    pub range: Range,
    pub json: bool,
    /// Entries in each list (`--top`).
    pub top: usize,
    /// The webhook to post the report to: only one given for this run (see [`Request::new`]).
    pub notify: Option<NotifyConfig>,
    pub link_expiry: Duration,
}

impl Request {
    /// The webhook is the one given for this run, on the command line or as
    /// `FASTTRACK_NOTIFY`, never the config file's `notify` alone: that one is the incident
    /// channel of `watch`, and a report run by hand must not post there by surprise.
    pub fn new(
        config: &Config,
        args: &ReportArgs,
        origins: &Origins,
        now: DateTime<Utc>,
    ) -> Result<Request> {
        let dest = match (&args.destination, &config.dest) {
            (Some(dest), _) | (None, Some(dest)) => dest.clone(),
            (None, None) => return Err(ConfigError(
                "no destination to report on: name it (`fasttrack report s3://BUCKET/PREFIX` or \
                     file:///DIR), or set --dest, FASTTRACK_DEST or dest in the config file"
                    .into(),
            )
            .into()),
        };
        let range = Range::new(args.since, args.until, now).map_err(ConfigError)?;
        let given =
            origins.on_command_line.contains("--notify") || origins.from_env.contains("--notify");
        let notify = config.incident.notify.clone();
        Ok(Request {
            dest,
            range,
            json: args.json,
            top: config.incident.top,
            link_expiry: notify
                .as_ref()
                .map_or(crate::config::MAX_LINK_EXPIRY, |n| n.link_expiry),
            notify: notify.filter(|_| given),
        })
    }
}

pub fn run(config: &Config, args: &ReportArgs, origins: &Origins) -> Result<Outcome> {
    let request = Request::new(config, args, origins, Utc::now())?;
    let destination = dest::open_url(&request.dest, config)?;
    let report = gather(destination.as_ref(), &request)?;
    let text = if request.json {
        serde_json::to_string_pretty(&report).context("cannot serialise the report")? + "\n"
    } else {
        render::render_text(&report)
    };
    // Posted even when the reader of stdout went away (cron with `| head`).
    let printed = output::print(format_args!("{text}"));
    if let Err(e) = &printed {
        if !output::is_stdout_closed(e) {
            return printed.map(|()| Outcome::Done);
        }
    }
    if let Some(n) = &request.notify {
        let to = n
            .routes
            .iter()
            .map(|r| r.redacted_url())
            .collect::<Vec<_>>()
            .join(", ");
        post(n, &report).with_context(|| format!("cannot post the report to {to}"))?;
    }
    printed?;
    if report.unreadable > 0 {
        output::eprint(format_args!(
            "fasttrack: {} of {} index records could not be read and are not counted: {}\n",
            report.unreadable,
            report.unreadable + report.records,
            report.errors.join("; ")
        ));
        return Ok(Outcome::Failed);
    }
    Ok(Outcome::Done)
}

/// Lists the partitions of the range, fetches their records and merges them.
pub fn gather(dest: &dyn Destination, request: &Request) -> Result<Report> {
    let days = request.range.days();
    let prefixes: Vec<String> = days
        .iter()
        .map(|day| index::day_prefix(&request.dest, *day))
        .collect();
    let mut merger = Merger::new(request.range, request.top);
    dest.fetch_under(&prefixes, ".json", CONCURRENCY, &mut |key, fetched| {
        merger.add(key, fetched)
    })
    .with_context(|| format!("cannot read the incident index of {}", request.dest))?;
    let partitions = days
        .iter()
        .map(|day| format!("dt={}", day.format("%Y-%m-%d")))
        .collect();
    let mut report = merger.finish(request.dest.to_string(), partitions);
    for incident in &mut report.largest {
        (incident.link, incident.link_expires) =
            link(dest, &request.dest, &incident.key, request.link_expiry);
    }
    Ok(report)
}

/// Where to download a log: a presigned link (S3) or its path (file://); else its URL.
fn link(
    dest: &dyn Destination,
    url: &DestUrl,
    key: &str,
    expiry: Duration,
) -> (String, Option<String>) {
    dest.link(&ObjectKey::stored(key), expiry)
        .map(|l| (l.url, l.expires))
        .unwrap_or_else(|e| {
            output::eprint(format_args!(
                "fasttrack: {e:#}; the report names the object instead\n"
            ));
            let url = match url {
                DestUrl::S3 { bucket, .. } => format!("s3://{bucket}/{key}"),
                DestUrl::File { root } => format!("file://{}/{key}", root.display()),
            };
            (url, None)
        })
}

/// Posts the report to the webhook in its format, with the notifier of incidents.
fn post(n: &NotifyConfig, report: &Report) -> Result<()> {
    // The webhook given for this run: `--notify` makes the route named `notify`.
    let Some(route) = n.routes.iter().find(|r| r.name == NOTIFY_ROUTE) else {
        return Ok(());
    };
    let body = match route.format {
        NotifyFormat::Slack => serde_json::json!({ "text": render::render_slack(report) }),
        NotifyFormat::Json => serde_json::json!({
            "event": "fasttrack.report",
            "report": report,
        }),
    };
    notify::Notifier::new(n)?.post_once(route, &body)
}
