//! Webhook notifications of shipped incidents (`--notify URL`).
//!
//! A shipped incident becomes a job in `<state-dir>/notify/` (written before the shipment is
//! recorded, so a crash can repeat a notification but never lose one). Jobs are delivered by
//! `watch`'s notifier thread, or once at the end of `rotate`/`upload`, each attempt with a
//! timeout, retried with backoff for about an hour ([`Policy::WEBHOOK`]). Nothing here runs on the path of a
//! rotation or a shipment: a webhook that fails or hangs delays nothing but itself.
//!
//! Secrets: a Slack webhook URL carries its token and a presigned link its signature. Logs
//! show the webhook's scheme and host only, and never the link.

mod client;
mod fold;
mod routing;
mod throttle;

use client::Answer;
pub use routing::route_jobs;

use crate::config::routes::NOTIFY_ROUTE;
use crate::config::{NotifyConfig, NotifyFormat, Route};
use crate::digest::{render_slack, Digest};
use crate::fsutil::{atomic_write, create_private_dir, FileAccess};
use crate::retry::Policy;
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use throttle::Throttle;
use tracing::{error, info, warn};

/// One attempt may take this long (connect, send, answer).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A notification waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The shipped file's name (`docker.log-<suffix>.gz`): the job's id.
    pub name: String,
    /// Where it went: `s3://bucket/prefix` or `file:///dir`, and its key there.
    pub dest: String,
    pub key: String,
    pub bytes: u64,
    /// Where to download it (presigned for S3), and until when (RFC 3339).
    pub link: String,
    pub link_expires: Option<String>,
    /// When the temporary credentials that signed the link expire (RFC 3339), when that cut
    /// it short of `--notify-link-expiry`: the message says why the link lasts no longer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_credentials_expire: Option<String>,
    pub digest: Digest,
    pub attempts: u32,
    /// Unix seconds of the next attempt.
    pub next_at: u64,
    pub last_error: Option<String>,
    /// The route it goes to; jobs queued before routes existed go to `--notify`'s.
    #[serde(default = "notify_route")]
    pub route: String,
}

fn notify_route() -> String {
    NOTIFY_ROUTE.to_string()
}

pub fn queue_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("notify")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Queues `job`; its file holds the digest (lines of the log), so it gets `access`: that of a
/// file made from the shipped log, or of the job's earlier file when it is rescheduled.
pub fn enqueue(state_dir: &Path, job: &Job, access: FileAccess) -> Result<()> {
    create_private_dir(&queue_dir(state_dir))?;
    let bytes = serde_json::to_vec(job).context("cannot serialise a notification")?;
    atomic_write(&job_path(state_dir, job), &bytes, access)
}

/// `<state-dir>/notify/<route>@<name>.json`: one file per incident and route.
fn job_path(state_dir: &Path, job: &Job) -> PathBuf {
    queue_dir(state_dir).join(format!("{}@{}.json", job.route, job.name))
}

/// The jobs waiting, oldest first (read-only: `status` lists them).
pub fn pending(state_dir: &Path) -> Vec<(PathBuf, Job)> {
    read_queue(state_dir, false)
}

/// The jobs waiting; with `set_aside`, unreadable ones are renamed `.bad` with a warning.
fn read_queue(state_dir: &Path, set_aside: bool) -> Vec<(PathBuf, Job)> {
    let dir = queue_dir(state_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut jobs: Vec<(PathBuf, Job)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|b| serde_json::from_slice::<Job>(&b).map_err(anyhow::Error::from))
        {
            Ok(job) => jobs.push((path, job)),
            Err(e) if set_aside => {
                warn!(
                    "{} is not a notification fasttrack can read ({e}); moved aside",
                    path.display()
                );
                let _ = std::fs::rename(&path, path.with_extension("bad"));
            }
            Err(_) => {}
        }
    }
    jobs.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    jobs
}

/// The request body for the webhook.
pub fn payload(format: NotifyFormat, job: &Job) -> serde_json::Value {
    match format {
        NotifyFormat::Slack => serde_json::json!({
            "text": render_slack(&job.digest, &job.name, &job.link, &link_note(job)),
        }),
        NotifyFormat::Json => serde_json::json!({
            "event": "fasttrack.incident.shipped",
            "host": job.digest.reporter,
            "log": job.name,
            "object": {
                "dest": job.dest,
                "key": job.key,
                "bytes": job.bytes,
                "link": job.link,
                "link_expires": job.link_expires,
                "link_credentials_expire": job.link_credentials_expire,
            },
            "digest": job.digest,
        }),
    }
}

/// Until when the link works and, when the credentials that signed it cut it short, why.
fn link_note(job: &Job) -> String {
    match (&job.link_expires, &job.link_credentials_expire) {
        (None, _) => String::new(),
        (Some(until), None) => format!(" (link valid until {until})"),
        (Some(until), Some(creds)) => format!(
            " (link valid until {until}: signed with temporary credentials that expire at {creds})"
        ),
    }
}

/// Delivers notification jobs. Has its own small runtime: it runs on its own thread in
/// `watch`, and after the cycle in `rotate`/`upload`.
pub struct Notifier {
    config: NotifyConfig,
    rt: tokio::runtime::Runtime,
    clients: client::Clients,
    /// When each webhook URL was last posted to: at most one message a second each.
    last_post: Mutex<HashMap<String, Instant>>,
}

/// What one pass over the queue did.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Incidents told (a folded message tells several).
    pub sent: usize,
    pub failed: Vec<String>,
    /// When the next job is due, if any is left.
    pub next_at: Option<u64>,
}

impl Delivery {
    fn due(&mut self, at: u64) {
        self.next_at = Some(self.next_at.map_or(at, |n| n.min(at)));
    }
}

/// Why a post failed: the webhook asked to wait (429), or anything else.
#[derive(Debug)]
enum PostError {
    RateLimited(Duration),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for PostError {
    fn from(e: anyhow::Error) -> Self {
        PostError::Failed(e)
    }
}

/// The least time between two posts to one webhook URL (Slack drops faster bursts).
const URL_SPACING: Duration = Duration::from_secs(1);

impl Notifier {
    pub fn new(config: &NotifyConfig) -> Result<Notifier> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime for notifications")?;
        Ok(Notifier {
            config: config.clone(),
            rt,
            clients: client::Clients::new(&config.proxies)?,
            last_post: Mutex::new(HashMap::new()),
        })
    }

    pub fn routes(&self) -> &[Route] {
        &self.config.routes
    }

    /// Posts what is due, one message per route: the jobs waiting for a route whose interval
    /// has passed go out folded into one message ([`fold`]). Delivered jobs are removed; the
    /// others are rescheduled, and given up (with an error in the log) after the attempts of
    /// [`Policy::WEBHOOK`]. A 429 defers the route by its `Retry-After` without counting as a
    /// failed attempt.
    pub fn deliver_due(&self, state_dir: &Path) -> Delivery {
        let mut out = Delivery::default();
        let mut by_route: BTreeMap<String, Vec<(PathBuf, Job)>> = BTreeMap::new();
        for (path, job) in read_queue(state_dir, true) {
            by_route
                .entry(job.route.clone())
                .or_default()
                .push((path, job));
        }
        let loaded = Throttle::load(state_dir);
        let mut throttle = loaded.clone();
        for (name, jobs) in by_route {
            let Some(route) = self.config.routes.iter().find(|r| r.name == name) else {
                set_aside_unrouted(&name, &jobs);
                continue;
            };
            let mut times = throttle.get(&name);
            let jobs_due = jobs.iter().map(|(_, j)| j.next_at).max().unwrap_or(0);
            let at = throttle::due_at(times, route.interval, jobs_due);
            if at > unix_now() {
                out.due(at);
                continue;
            }
            let batch: Vec<Job> = jobs.iter().map(|(_, j)| j.clone()).collect();
            match self.post_to(route, &fold::folded_payload(route.format, &batch)) {
                Ok(()) => {
                    info!(
                        "notified {} (route {name}) of {} ({} incident lines)",
                        route.redacted_url(),
                        batch
                            .iter()
                            .map(|j| j.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        batch.iter().map(|j| j.digest.lines).sum::<u64>()
                    );
                    for (path, _) in &jobs {
                        if let Err(e) = std::fs::remove_file(path) {
                            warn!("cannot remove {}: {e}", path.display());
                        }
                    }
                    times.last_sent = unix_now();
                    out.sent += batch.len();
                }
                Err(PostError::RateLimited(wait)) => {
                    warn!(
                        "{} (route {name}) asked to wait {wait:?} (HTTP 429); {} incidents wait for it",
                        route.redacted_url(),
                        batch.len()
                    );
                    times.not_before = unix_now() + wait.as_secs();
                    out.due(times.not_before);
                    out.failed
                        .push(format!("route {name}: HTTP 429, waiting {wait:?}"));
                }
                Err(PostError::Failed(e)) => {
                    let message = format!("{e:#}");
                    for (path, job) in jobs {
                        self.reschedule(state_dir, route, path, job, &message, &mut out);
                    }
                }
            }
            throttle.set(&name, times);
        }
        // Written only when a route posted or was told to wait: the notifier wakes often.
        if throttle != loaded {
            throttle.save(state_dir);
        }
        if !out.failed.is_empty() {
            let mut change = crate::metrics::Counters::default();
            change.failures.notify = out.failed.len() as u64;
            crate::metrics::store::record(state_dir, &change);
        }
        out
    }

    /// A failed attempt: the job waits for its next try, or is given up after the last one.
    fn reschedule(
        &self,
        state_dir: &Path,
        route: &Route,
        path: PathBuf,
        mut job: Job,
        message: &str,
        out: &mut Delivery,
    ) {
        job.attempts += 1;
        let retry = Policy::WEBHOOK;
        if !retry.retries_after(job.attempts) {
            error!(
                "giving up notifying {} (route {}) of {} after {} attempts: {message}",
                route.redacted_url(),
                route.name,
                job.name,
                job.attempts
            );
            let _ = std::fs::remove_file(&path);
            out.failed
                .push(format!("{}: {message} (given up)", job.name));
            return;
        }
        let delay = retry.next_delay(job.attempts);
        warn!(
            "cannot notify {} (route {}) of {} (attempt {} of {}): {message}; retrying in {delay:?}",
            route.redacted_url(),
            route.name,
            job.name,
            job.attempts,
            retry.max_attempts
        );
        job.next_at = unix_now() + delay.as_secs();
        job.last_error = Some(message.to_string());
        match enqueue(state_dir, &job, FileAccess::derived_from_path(&path)) {
            // A job queued before routes existed had another file name: one file per job.
            Ok(()) if path != job_path(state_dir, &job) => {
                let _ = std::fs::remove_file(&path);
            }
            Ok(()) => {}
            Err(e) => warn!("cannot reschedule the notification of {}: {e:#}", job.name),
        }
        out.due(job.next_at);
        out.failed.push(format!("{}: {message}", job.name));
    }

    /// Posts `body` to the route's webhook, at most once a second per URL.
    fn post_to(&self, route: &Route, body: &serde_json::Value) -> Result<(), PostError> {
        let wait = self.last_post.lock().ok().and_then(|m| {
            m.get(&route.url)
                .map(|t| URL_SPACING.saturating_sub(t.elapsed()))
        });
        if let Some(wait) = wait.filter(|w| !w.is_zero()) {
            std::thread::sleep(wait);
        }
        let result = self.post(&route.url, body);
        if let Ok(mut m) = self.last_post.lock() {
            m.insert(route.url.clone(), Instant::now());
        }
        result
    }

    fn post(&self, url: &str, body: &serde_json::Value) -> Result<(), PostError> {
        let bytes = serde_json::to_vec(body).context("cannot serialise the notification")?;
        let answer = self.request(url, http::Method::POST, Bytes::from(bytes))?;
        if answer.status.is_success() {
            return Ok(());
        }
        if answer.status == http::StatusCode::TOO_MANY_REQUESTS {
            let wait = throttle::retry_after(answer.retry_after.as_deref(), unix_now());
            return Err(PostError::RateLimited(wait));
        }
        let text = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]).into_owned();
        Err(PostError::Failed(anyhow!(
            "the webhook answered HTTP {}: {}",
            answer.status.as_u16(),
            text.trim()
        )))
    }

    /// Posts `body` once to `route`'s webhook (`fasttrack report --notify`): no queue, no
    /// throttle but the one message a second per URL.
    pub fn post_once(&self, route: &Route, body: &serde_json::Value) -> Result<()> {
        self.post_to(route, body).map_err(|e| match e {
            PostError::RateLimited(wait) => {
                anyhow!("the webhook answered HTTP 429: try again in {wait:?}")
            }
            PostError::Failed(e) => e,
        })
    }

    /// Whether the route's webhook answers at all, without posting anything: a HEAD request,
    /// whose status (often 405 or 400 for a POST-only hook) proves host, TLS and path.
    pub fn probe(&self, route: &Route) -> Result<http::StatusCode> {
        self.request(&route.url, http::Method::HEAD, Bytes::new())
            .map(|a| a.status)
    }

    /// Posts a message that says it is a test, sent by `fasttrack check --notify-test` on
    /// `host`, in the route's format.
    pub fn send_test(&self, route: &Route, host: &str) -> Result<()> {
        let text = format!(
            "fasttrack test message from {host}: not an incident. Sent by `fasttrack check --notify-test` \
             to show that incidents for route {} will reach this channel.",
            route.name
        );
        let body = match route.format {
            NotifyFormat::Slack => serde_json::json!({ "text": text }),
            NotifyFormat::Json => serde_json::json!({
                "event": "fasttrack.test",
                "host": host,
                "route": route.name,
                "text": text,
            }),
        };
        self.post_to(route, &body).map_err(|e| match e {
            PostError::RateLimited(wait) => {
                anyhow!("the webhook answered HTTP 429: try again in {wait:?}")
            }
            PostError::Failed(e) => e,
        })
    }

    /// One request to a webhook, with the attempt timeout.
    fn request(&self, url: &str, method: http::Method, body: Bytes) -> Result<Answer> {
        self.rt
            .block_on(self.clients.request(url, method, body, ATTEMPT_TIMEOUT))
    }
}

/// Jobs for a route no longer configured are kept, renamed `.unrouted`, with an error that
/// says how to send them.
fn set_aside_unrouted(route: &str, jobs: &[(PathBuf, Job)]) {
    for (path, job) in jobs {
        let aside = path.with_extension("unrouted");
        error!(
            "the notification of {} is for route {route:?}, which is not configured: kept as {}; \
             configure the route (or --notify for jobs queued before routes) and rename it back to .json, or remove it",
            job.name,
            aside.display()
        );
        let _ = std::fs::rename(path, &aside);
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

/// `watch`'s notifier: delivers what is due, then sleeps until the next job is due or a
/// new one is queued (`kick`). Sleeps without a timer when the queue is empty.
pub fn spawn_thread(
    notifier: Notifier,
    state_dir: PathBuf,
    kick: std::sync::mpsc::Receiver<()>,
) -> Result<()> {
    std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || loop {
            let delivery = notifier.deliver_due(&state_dir);
            let wait = delivery
                .next_at
                .map(|t| Duration::from_secs(t.saturating_sub(unix_now()).max(1)));
            let woke = match wait {
                Some(w) => match kick.recv_timeout(w) {
                    Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => true,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => false,
                },
                None => kick.recv().is_ok(),
            };
            if !woke {
                return;
            }
            crate::crash::test_panic_point("notify", &state_dir);
        })
        .context("cannot start the notification thread")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        let mut b = crate::digest::Builder::new("stream");
        b.add(
            "Nov 22 04:26:15 web1 docker/api[1]: \"GET /x HTTP/1.1\" 502 0",
            chrono::Utc::now(),
        );
        Job {
            name: "docker.log-5.gz".into(),
            dest: "s3://b/p".into(),
            key: "p/web1/docker.log-5.gz".into(),
            bytes: 10,
            link: "http://s3.local/b/p/web1/docker.log-5.gz?X-Amz-Signature=abc".into(),
            link_expires: Some("2026-11-29T04:26:15Z".into()),
            link_credentials_expire: None,
            digest: b.digest("web1", 10),
            attempts: 0,
            next_at: 0,
            last_error: None,
            route: "notify".into(),
        }
    }

    #[test]
    fn payloads_in_both_formats() {
        let j = job();
        let slack = payload(NotifyFormat::Slack, &j);
        let text = slack["text"].as_str().unwrap();
        assert!(
            text.contains("*HTTP 5xx incident on web1*: 1 lines"),
            "{text}"
        );
        assert!(
            text.contains(&format!("<{}|docker.log-5.gz>", j.link)),
            "{text}"
        );
        assert!(
            text.ends_with(" (link valid until 2026-11-29T04:26:15Z)"),
            "{text}"
        );
        let json = payload(NotifyFormat::Json, &j);
        assert_eq!(json["object"]["key"], "p/web1/docker.log-5.gz");
        assert_eq!(
            json["object"]["link_credentials_expire"],
            serde_json::Value::Null
        );
        assert_eq!(json["digest"]["lines"], 1);
        assert_eq!(json["digest"]["statuses"]["502"], 1);
    }

    #[test]
    fn a_link_cut_short_by_its_credentials_says_why_and_marks_show() {
        let mut j = job();
        j.link_expires = Some("2026-11-22T06:26:15Z".into());
        j.link_credentials_expire = Some("2026-11-22T06:26:15Z".into());
        j.digest.messages[0].seen = Some(crate::digest::Seen {
            first_seen: "2026-11-01T10:00:00.000Z".into(),
            incidents: 3,
        });
        let text = payload(NotifyFormat::Slack, &j)["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            text.ends_with(
                " (link valid until 2026-11-22T06:26:15Z: signed with temporary credentials \
                 that expire at 2026-11-22T06:26:15Z)"
            ),
            "{text}"
        );
        assert!(
            text.contains("`GET /x 502` (seen 3 times since 2026-11-01)"),
            "{text}"
        );
        let json = payload(NotifyFormat::Json, &j);
        assert_eq!(
            json["object"]["link_credentials_expire"],
            "2026-11-22T06:26:15Z"
        );
        assert_eq!(json["digest"]["messages"][0]["seen"]["incidents"], 3);
        // A job queued by an older version reads back without the new fields.
        let mut old = serde_json::to_value(job()).unwrap();
        old.as_object_mut()
            .unwrap()
            .remove("link_credentials_expire");
        let back: Job = serde_json::from_value(old).unwrap();
        assert_eq!(back.link_credentials_expire, None);
    }

    #[test]
    fn queue_round_trip_and_bad_files_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        enqueue(dir.path(), &job(), FileAccess::STATE).unwrap();
        std::fs::write(queue_dir(dir.path()).join("junk.json"), "nope").unwrap();
        let jobs = pending(dir.path());
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].1, job());
        assert!(
            !queue_dir(dir.path()).join("junk.bad").exists(),
            "read-only"
        );
        assert_eq!(read_queue(dir.path(), true).len(), 1);
        assert!(queue_dir(dir.path()).join("junk.bad").exists());
    }
}
