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

use crate::config::{NotifyConfig, NotifyFormat};
use crate::digest::{render_slack, Digest};
use crate::fsutil::{atomic_write, create_private_dir, FileAccess};
use crate::retry::Policy;
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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
    pub digest: Digest,
    pub attempts: u32,
    /// Unix seconds of the next attempt.
    pub next_at: u64,
    pub last_error: Option<String>,
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
    let dir = queue_dir(state_dir);
    create_private_dir(&dir)?;
    let bytes = serde_json::to_vec(job).context("cannot serialise a notification")?;
    atomic_write(&dir.join(format!("{}.json", job.name)), &bytes, access)
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
        NotifyFormat::Slack => {
            let note = job
                .link_expires
                .as_deref()
                .map_or(String::new(), |t| format!(" (link valid until {t})"));
            serde_json::json!({
                "text": render_slack(&job.digest, &job.name, &job.link, &note),
            })
        }
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
            },
            "digest": job.digest,
        }),
    }
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// Delivers notification jobs. Has its own small runtime: it runs on its own thread in
/// `watch`, and after the cycle in `rotate`/`upload`.
pub struct Notifier {
    config: NotifyConfig,
    rt: tokio::runtime::Runtime,
    client: HttpClient,
}

/// What one pass over the queue did.
#[derive(Debug, Default)]
pub struct Delivery {
    pub sent: usize,
    pub failed: Vec<String>,
    /// When the next job is due, if any is left.
    pub next_at: Option<u64>,
}

impl Notifier {
    pub fn new(config: &NotifyConfig) -> Result<Notifier> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime for notifications")?;
        // The system's CA certificates, with the same TLS stack as the S3 client (rustls, ring).
        // Without any, https webhooks fail with a clear error and http ones still work.
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_provider_and_native_roots(provider.clone()) {
            Ok(b) => b,
            Err(e) => {
                warn!("no CA certificates found ({e}); https webhooks will fail: install ca-certificates");
                let tls = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .context("cannot configure TLS")?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls)
            }
        };
        let https = builder.https_or_http().enable_http1().build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Ok(Notifier {
            config: config.clone(),
            rt,
            client,
        })
    }

    /// Tries every job that is due once. Jobs delivered are removed; the others are
    /// rescheduled, and given up (with an error in the log) after the attempts of
    /// [`Policy::WEBHOOK`].
    pub fn deliver_due(&self, state_dir: &Path) -> Delivery {
        let mut out = Delivery::default();
        let now = unix_now();
        for (path, mut job) in read_queue(state_dir, true) {
            if job.next_at > now {
                out.next_at = Some(out.next_at.map_or(job.next_at, |n| n.min(job.next_at)));
                continue;
            }
            let body = payload(self.config.format, &job);
            match self.post(&body) {
                Ok(()) => {
                    info!(
                        "notified {} of {} ({} incident lines)",
                        self.config.redacted_url(),
                        job.name,
                        job.digest.lines
                    );
                    if let Err(e) = std::fs::remove_file(&path) {
                        warn!("cannot remove {}: {e}", path.display());
                    }
                    out.sent += 1;
                }
                Err(e) => {
                    job.attempts += 1;
                    let message = format!("{e:#}");
                    let retry = Policy::WEBHOOK;
                    if !retry.retries_after(job.attempts) {
                        error!(
                            "giving up notifying {} of {} after {} attempts: {message}",
                            self.config.redacted_url(),
                            job.name,
                            job.attempts
                        );
                        let _ = std::fs::remove_file(&path);
                        out.failed
                            .push(format!("{}: {message} (given up)", job.name));
                        continue;
                    }
                    let delay = retry.next_delay(job.attempts);
                    warn!(
                        "cannot notify {} of {} (attempt {} of {}): {message}; retrying in {delay:?}",
                        self.config.redacted_url(),
                        job.name,
                        job.attempts,
                        retry.max_attempts
                    );
                    job.next_at = unix_now() + delay.as_secs();
                    job.last_error = Some(message.clone());
                    if let Err(e) = enqueue(state_dir, &job, FileAccess::derived_from_path(&path)) {
                        warn!("cannot reschedule the notification of {}: {e:#}", job.name);
                    }
                    out.next_at = Some(out.next_at.map_or(job.next_at, |n| n.min(job.next_at)));
                    out.failed.push(format!("{}: {message}", job.name));
                }
            }
        }
        if !out.failed.is_empty() {
            let mut change = crate::metrics::Counters::default();
            change.failures.notify = out.failed.len() as u64;
            crate::metrics::store::record(state_dir, &change);
        }
        out
    }

    /// Posts `body` to the webhook once (also `fasttrack report --notify`).
    pub fn post(&self, body: &serde_json::Value) -> Result<()> {
        let bytes = serde_json::to_vec(body).context("cannot serialise the notification")?;
        let (status, body) = self.request(http::Method::POST, Bytes::from(bytes))?;
        if status.is_success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            Err(anyhow!(
                "the webhook answered HTTP {}: {}",
                status.as_u16(),
                text.trim()
            ))
        }
    }

    /// Whether the webhook answers at all, without posting anything: a HEAD request, whose
    /// status (often 405 or 400 for a POST-only hook) proves the host, TLS and path reachable.
    pub fn probe(&self) -> Result<http::StatusCode> {
        self.request(http::Method::HEAD, Bytes::new())
            .map(|(status, _)| status)
    }

    /// Posts a message that says it is a test, sent by `fasttrack check --notify-test` on
    /// `host`, in the configured format.
    pub fn send_test(&self, host: &str) -> Result<()> {
        let text = format!(
            "fasttrack test message from {host}: not an incident. Sent by `fasttrack check --notify-test` \
             to show that incidents will reach this channel."
        );
        let body = match self.config.format {
            NotifyFormat::Slack => serde_json::json!({ "text": text }),
            NotifyFormat::Json => serde_json::json!({
                "event": "fasttrack.test",
                "host": host,
                "text": text,
            }),
        };
        self.post(&body)
    }

    /// One request to the webhook, with the attempt timeout; its status and body.
    fn request(&self, method: http::Method, body: Bytes) -> Result<(http::StatusCode, Bytes)> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(&self.config.url)
            .header(
                http::header::USER_AGENT,
                concat!("fasttrack/", env!("CARGO_PKG_VERSION")),
            );
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body))
            .map_err(|_| anyhow!("the webhook URL is not valid; check --notify"))?;
        self.rt.block_on(async {
            tokio::time::timeout(ATTEMPT_TIMEOUT, async {
                let response = self.client.request(request).await.map_err(|e| {
                    // hyper's error text names no URL: safe to show.
                    anyhow!("cannot reach the webhook: {}", error_chain(&e))
                })?;
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                Ok::<_, anyhow::Error>((status, body))
            })
            .await
            .map_err(|_| anyhow!("the webhook did not answer within {ATTEMPT_TIMEOUT:?}"))?
        })
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
            digest: b.digest("web1", 10),
            attempts: 0,
            next_at: 0,
            last_error: None,
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
        let json = payload(NotifyFormat::Json, &j);
        assert_eq!(json["object"]["key"], "p/web1/docker.log-5.gz");
        assert_eq!(json["digest"]["lines"], 1);
        assert_eq!(json["digest"]["statuses"]["502"], 1);
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
