//! Shipping: each compressed file not yet shipped, oldest first, with its digest before it
//! and its index record after it; its notifications queued and its shipment recorded. A log
//! can also be shipped while it is being compressed (src/spool/stream.rs), through the same
//! steps.

use super::path_of;
use crate::compress::describe_gz;
use crate::config::{Config, DestUrl};
use crate::dest::{Destination, Link, ObjectMeta, ShipError, Shipped};
use crate::digest::Digest;
use crate::digest::{scan, sidecar};
use crate::fsutil::FileAccess;
use crate::growing::Reader;
use crate::index;
use crate::known;
use crate::naming::{ObjectKey, RotatedName, Stage};
use crate::notify;
use crate::progress::{during, Progress, Silent, Step};
use crate::retry::Policy;
use crate::state::{now_rfc3339, PlainDigest, ShippedRecord, State, StateDir, StateLock};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The result of shipping the pending files.
#[derive(Debug, Default)]
pub struct ShipReport {
    pub shipped: Vec<String>,
    /// The bytes of the files shipped.
    pub shipped_bytes: u64,
    /// Files still waiting, and the error that stopped the first of them (naming the file,
    /// where it was going, and whether it will be retried).
    pub pending: Vec<String>,
    pub error: Option<ShipError>,
}

/// What shipping needs from its caller.
pub struct Shipper<'a> {
    pub config: &'a Config,
    pub dest: &'a dyn Destination,
    pub state_dir: &'a StateDir,
    pub lock: &'a StateLock,
    pub cancel: &'a AtomicBool,
    pub progress: &'a dyn Progress,
}

/// The plain file's line count, size and CRC-32: the object's metadata, known before its
/// `.gz` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainSums {
    pub lines: u64,
    pub bytes: u64,
    pub crc32: u32,
}

/// Where the log's bytes come from.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    /// The complete `.gz`.
    File,
    /// The `.gz` being written: the upload follows the compression.
    Growing(&'a Reader),
}

/// One log ready to go: everything about it but its bytes.
pub struct Prepared {
    name: String,
    path: PathBuf,
    key: ObjectKey,
    digest: Option<Digest>,
    sidecar: PathBuf,
    sidecar_key: ObjectKey,
    sidecar_meta: Option<ObjectMeta>,
}

/// Ships every compressed file not yet recorded as shipped, oldest first, recording each
/// durably as soon as it is shipped. A retryable failure is retried as `retry` says
/// ([`crate::retry`]); the first file that still fails stops the run (the rest stay pending).
/// The bytes of each `.gz` sent go to `progress` (its small digest JSON goes up unreported).
pub fn ship_pending(s: &Shipper, retry: Policy) -> Result<ShipReport> {
    let spool = super::Spool::scan(s.config)?;
    let state = s.state_dir.load()?;
    let mut report = ShipReport::default();
    for (&suffix, group) in &spool.groups {
        if !group.compressed {
            continue;
        }
        let name = RotatedName::new(s.config.log_name(), suffix, Stage::Compressed).to_string();
        if state.shipped.contains_key(&name) {
            continue;
        }
        if report.error.is_some() {
            report.pending.push(name);
            continue;
        }
        let gz = path_of(s.config, suffix, Stage::Compressed);
        let prepared = prepare(s, suffix, (&gz, FileAccess::derived_from_path(&gz)))?;
        let meta = object_meta(
            s.config,
            &state,
            (&name, &gz),
            None,
            prepared.digest.as_ref(),
        )?;
        let started = Instant::now();
        match upload(s, &prepared, &meta, Body::File, retry)? {
            Ok(shipped) => {
                let bytes = record(s, &prepared, &shipped, (started, Body::File))?;
                report.shipped.push(name);
                report.shipped_bytes += bytes;
            }
            Err(e) => {
                report.error = Some(e);
                report.pending.push(name);
            }
        }
    }
    Ok(report)
}

/// The log's key, its final digest (marked new or known) and its digest's object. `log` is
/// the file scanned if the digest is missing (the `.gz`, or the plain file while the `.gz` is
/// being written) and `access` the log's, which the rewritten digest takes.
pub fn prepare(s: &Shipper, suffix: u64, log: (&Path, FileAccess)) -> Result<Prepared> {
    let config = s.config;
    let dest_url = config.require_dest()?;
    let name = RotatedName::new(config.log_name(), suffix, Stage::Compressed).to_string();
    let path = path_of(config, suffix, Stage::Compressed);
    let at = crate::key_template::suffix_time(suffix);
    let key = dest_url.key(&config.key_template, &config.host, &name, at)?;
    let digest = final_digest(config, suffix, log, &name, (s.state_dir, s.lock))?;
    let sidecar = sidecar::sidecar_path(config, suffix);
    let sidecar_key = dest_url.key(
        &config.key_template,
        &config.host,
        &sidecar::sidecar_name(config, suffix),
        at,
    )?;
    let sidecar_meta = match &digest {
        Some(_) => Some(sidecar_meta(config, &sidecar, &name, digest.as_ref())?),
        None => None,
    };
    Ok(Prepared {
        name,
        path,
        key,
        digest,
        sidecar,
        sidecar_key,
        sidecar_meta,
    })
}

/// The metadata of a log shipped while it is compressed ([`object_meta`] with `sums`).
pub fn streamed_meta(s: &Shipper, p: &Prepared, sums: &PlainSums) -> Result<ObjectMeta> {
    let state = s.state_dir.load()?;
    object_meta(
        s.config,
        &state,
        (&p.name, &p.path),
        Some(sums),
        p.digest.as_ref(),
    )
}

/// Ships the prepared log (its digest first, its index record after), tried as `retry` says.
/// The outer error is local, the inner one the shipment's (logged, naming the file).
pub fn upload(
    s: &Shipper,
    p: &Prepared,
    meta: &ObjectMeta,
    body: Body,
    retry: Policy,
) -> Result<Result<Shipped, ShipError>> {
    let (config, dest) = (s.config, s.dest);
    let dest_url = config.require_dest()?;
    let (name, path, key) = (&p.name, &p.path, &p.key);
    let ship_both = || -> Result<Shipped, ShipError> {
        if let Some(m) = &p.sidecar_meta {
            dest.ship(&p.sidecar_key, &p.sidecar, m, &Silent)?;
        }
        // Each attempt starts its bar from zero; the retry's warning is logged without one.
        let shipped = match body {
            Body::File => during(s.progress, Step::Upload, path, || {
                dest.ship(key, path, meta, s.progress)
            })?,
            // Its bar is the compression's, drawn by the compressing thread.
            Body::Growing(growing) => dest.ship_growing(key, growing, meta, &Silent)?,
        };
        // An incident's index record follows its log (src/index.rs: what a failure does).
        if let Some(d) = p.digest.as_ref().filter(|d| d.lines > 0) {
            let shipment = index::Shipment {
                host: &config.host,
                log: name,
                key,
                sidecar_key: &p.sidecar_key,
                bytes: shipped.bytes(),
            };
            let record = index::Record::new(&shipment, d, chrono::Utc::now());
            index::ship_record(
                dest,
                dest_url,
                s.state_dir.path(),
                path,
                &shipped,
                &record,
                &meta.tags,
            )?;
        }
        Ok(shipped)
    };
    Ok(with_retries(retry, s.cancel, name, ship_both).map_err(|e| {
        let e = ship_failed(e, path, dest_url, key);
        warn!("{e:#}");
        e
    }))
}

/// A shipped log: queues its notifications, then records the shipment (a crash in between
/// may repeat a notification, never lose one). Returns the object's size.
pub fn record(
    s: &Shipper,
    p: &Prepared,
    shipped: &Shipped,
    (started, body): (Instant, Body),
) -> Result<u64> {
    let (config, dest) = (s.config, s.dest);
    let dest_url = config.require_dest()?;
    let (name, path, key) = (&p.name, &p.path, &p.key);
    let (bytes, how) = match *shipped {
        Shipped::Written { bytes } => (bytes, "shipped"),
        Shipped::AlreadyThere { bytes } => (bytes, "already at the destination:"),
    };
    // Queued before the shipment is recorded: a crash may repeat a notification, never lose one.
    if let (Some(n), Some(d)) = (&config.incident.notify, &p.digest) {
        let job = notify_job(dest, dest_url, key, name, bytes, d, n.link_expiry);
        for job in notify::route_jobs(n, &config.incident, &job, path) {
            if let Err(e) = notify::enqueue(
                s.state_dir.path(),
                &job,
                FileAccess::derived_from_path(path),
            ) {
                warn!(
                    "cannot queue the notification of {name} for route {}: {e:#}",
                    job.route
                );
            }
        }
    }
    s.state_dir.update(s.lock, |st| {
        st.shipped.insert(
            name.clone(),
            ShippedRecord {
                at: now_rfc3339(),
                dest: dest_url.to_string(),
                key: key.to_string(),
                bytes,
            },
        );
    })?;
    let secs = started.elapsed().as_secs_f64();
    info!(
        "{how} {} -> {dest_url} {key} ({bytes} bytes, {:.0} ms, {:.1} MB/s{})",
        path.display(),
        secs * 1000.0,
        bytes as f64 / 1e6 / secs.max(1e-6),
        match body {
            Body::File => "",
            Body::Growing(_) => ", uploaded while compressed",
        }
    );
    Ok(bytes)
}

/// The error that leaves `path` pending: where it was going, and whether it is retried.
fn ship_failed(e: ShipError, path: &Path, dest_url: &DestUrl, key: &ObjectKey) -> ShipError {
    let retried = if e.is_permanent() {
        ""
    } else {
        " (will be retried)"
    };
    e.context(format!(
        "cannot ship {} to {dest_url} as {key}{retried}",
        path.display()
    ))
}

/// Runs `ship` until it succeeds, fails for good, has made the attempts `retry` allows, or
/// the run is cancelled; a retryable failure is logged and waited out first.
fn with_retries(
    retry: Policy,
    cancel: &AtomicBool,
    name: &str,
    mut ship: impl FnMut() -> Result<Shipped, ShipError>,
) -> Result<Shipped, ShipError> {
    let mut attempt = 1;
    loop {
        match ship() {
            Err(ShipError::Retryable(e))
                if retry.retries_after(attempt) && !cancel.load(Ordering::Relaxed) =>
            {
                warn!(
                    "attempt {attempt} of {} to ship {name} failed: {e:#}",
                    retry.max_attempts
                );
                std::thread::sleep(retry.next_delay(attempt));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The notification of a shipped incident, with a link to the object where the destination
/// gives one.
fn notify_job(
    dest: &dyn Destination,
    dest_url: &DestUrl,
    key: &ObjectKey,
    name: &str,
    bytes: u64,
    digest: &Digest,
    link_expiry: Duration,
) -> notify::Job {
    // The link's real expiry: the credentials that sign it may expire before `link_expiry`.
    let link = dest.link(key, link_expiry).unwrap_or_else(|e| {
        warn!("{e:#}; the notification names the object without a link");
        Link::unsigned(format!("{dest_url} {key}"))
    });
    notify::Job {
        route: String::new(),
        name: name.to_string(),
        dest: dest_url.to_string(),
        key: key.to_string(),
        bytes,
        link: link.url,
        link_expires: link.expires,
        link_credentials_expire: link.credentials_expire,
        digest: digest.clone(),
        attempts: 0,
        next_at: 0,
        last_error: None,
    }
}

/// The final digest of the incident in the file `log` (the `.gz` named `name`, or the plain
/// file it is being compressed from), its top messages marked new or known ([`known`]): every
/// shipped incident passes here, once its digest can no longer change, whoever rotated it.
fn final_digest(
    config: &Config,
    suffix: u64,
    (log, access): (&Path, FileAccess),
    name: &str,
    (state_dir, lock): (&StateDir, &StateLock),
) -> Result<Option<Digest>> {
    let digest = ensure_digest(config, suffix, (log, access))?;
    let sidecar = sidecar::sidecar_path(config, suffix);
    Ok(digest.map(|d| known::mark(state_dir, lock, name, (&sidecar, access), d)))
}

/// The digest of a compressed file: its JSON next to it, or (a file rotated by an older
/// version, or whose JSON was lost) a scan of the file, written next to it. A file that
/// cannot be digested (not gzip) is shipped without one; but an error of the system (the JSON
/// cannot be written, the file cannot be read) is an error: the file stays pending and the
/// next run digests it, instead of shipping it without its digest for good, or failing later
/// on a JSON that was never written (found by tests/faults.rs).
fn ensure_digest(
    config: &Config,
    suffix: u64,
    (log, access): (&Path, FileAccess),
) -> Result<Option<Digest>> {
    let path = sidecar::sidecar_path(config, suffix);
    match sidecar::read_sidecar(&path) {
        Ok(Some(d)) => return Ok(Some(d)),
        Ok(None) => {}
        Err(e) => warn!("{e:#}"),
    }
    match scan::scan_path(log, &config.incident) {
        Ok(b) => {
            let mut d = b.digest(&config.host, config.incident.top);
            d.log =
                Some(RotatedName::new(config.log_name(), suffix, Stage::Compressed).to_string());
            sidecar::write_sidecar_as(&path, &d, access)?;
            info!("digested {}: {} incident lines", log.display(), d.lines);
            Ok(Some(d))
        }
        Err(e) if is_os_error(&e) => {
            Err(e.context(format!("cannot digest {}; it stays pending", log.display())))
        }
        Err(e) => {
            warn!(
                "no digest for {}: {e:#}; it is shipped without one",
                log.display()
            );
            Ok(None)
        }
    }
}

/// Whether an error comes from the system (EIO, ENOSPC, ...) rather than from the data.
fn is_os_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error().is_some())
    })
}

fn sidecar_meta(
    config: &Config,
    sidecar: &Path,
    log_name: &str,
    digest: Option<&Digest>,
) -> Result<ObjectMeta> {
    use sha2::Digest as _;
    let bytes =
        std::fs::read(sidecar).with_context(|| format!("cannot read {}", sidecar.display()))?;
    Ok(ObjectMeta {
        content_type: "application/json",
        sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        metadata: vec![
            ("host".to_string(), config.host.clone()),
            ("source-log".to_string(), config.log.display().to_string()),
            ("log".to_string(), log_name.to_string()),
        ],
        tags: object_tags(config, digest),
    })
}

/// The tags of a log and of its digest: `--tag`, then with `--tag-incident` the incident's
/// id and its statuses (`502-503`) when it has a digest.
pub fn object_tags(config: &Config, digest: Option<&Digest>) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = config
        .s3
        .tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    if let (true, Some(d)) = (config.s3.tag_incident, digest) {
        if !d.incident_id.is_empty() {
            tags.push(("incident".to_string(), d.incident_id.clone()));
        }
        let statuses: Vec<&str> = d.statuses.keys().map(String::as_str).collect();
        if !statuses.is_empty() {
            // S3 tag values: letters, digits and + - = . _ : / @ only.
            let value: String = statuses
                .join("-")
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-')
                .collect();
            tags.push(("statuses".to_string(), value.chars().take(256).collect()));
        }
    }
    tags
}

/// What the object's metadata says about the log: recorded at compression, or read back
/// from the `.gz`, or (a log shipped while it is compressed) read from the plain file
/// beforehand, without the sha256 of the `.gz` that does not exist yet; and the headline of its
/// digest.
fn object_meta(
    config: &Config,
    state: &State,
    (name, gz): (&str, &Path),
    known: Option<&PlainSums>,
    digest: Option<&Digest>,
) -> Result<ObjectMeta> {
    let (lines, plain_bytes, crc32, gz_sha256) = match (known, state.digests.get(name)) {
        (Some(p), _) => (p.lines, p.bytes, p.crc32, String::new()),
        (
            None,
            Some(PlainDigest {
                lines,
                bytes,
                crc32: Some(crc32),
                gz_sha256: Some(sha),
            }),
        ) => (*lines, *bytes, *crc32, sha.clone()),
        (None, _) => {
            let c = describe_gz(gz)?;
            (c.lines, c.plain_bytes, c.crc32, c.gz_sha256)
        }
    };
    let mut metadata = vec![
        ("host".to_string(), config.host.clone()),
        ("source-log".to_string(), config.log.display().to_string()),
        ("lines".to_string(), lines.to_string()),
        ("uncompressed-bytes".to_string(), plain_bytes.to_string()),
        ("uncompressed-crc32".to_string(), format!("{crc32:08x}")),
    ];
    if let Some(d) = digest {
        metadata.extend(sidecar::headline_metadata(d));
    }
    Ok(ObjectMeta {
        content_type: "application/gzip",
        sha256: gz_sha256,
        metadata,
        tags: object_tags(config, digest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Policy::SHIP_IN_COMMAND`] with millisecond delays.
    const FAST: Policy = Policy {
        first: Duration::from_millis(1),
        cap: Duration::from_millis(16),
        ..Policy::SHIP_IN_COMMAND
    };

    /// Ships with `with_retries`, failing the first `failures` calls with `fail`; returns the
    /// result and the number of calls.
    fn run(
        policy: Policy,
        cancel: bool,
        failures: usize,
        fail: fn() -> ShipError,
    ) -> (Result<Shipped, ShipError>, usize) {
        let mut calls = 0;
        let result = with_retries(policy, &AtomicBool::new(cancel), "docker.log-1.gz", || {
            calls += 1;
            if calls <= failures {
                Err(fail())
            } else {
                Ok(Shipped::Written { bytes: 1 })
            }
        });
        (result, calls)
    }

    fn busy() -> ShipError {
        ShipError::retryable("the store answered HTTP 503; will retry".into())
    }

    fn missing() -> ShipError {
        ShipError::permanent("bucket b does not exist; create it or fix --dest".into())
    }

    #[test]
    fn a_retryable_failure_is_tried_as_often_as_the_policy_says() {
        let (result, calls) = run(FAST, false, 2, busy);
        assert_eq!((result.unwrap(), calls), (Shipped::Written { bytes: 1 }, 3));
        let (result, calls) = run(FAST, false, 5, busy);
        assert!(!result.unwrap_err().is_permanent());
        assert_eq!(calls, 3);
        let (result, calls) = run(Policy::SHIP_IN_WATCH_CYCLE, false, 5, busy);
        assert!(result.is_err());
        assert_eq!(calls, 1, "watch's loop owns the retries");
    }

    #[test]
    fn a_permanent_failure_or_a_cancel_stops_at_once() {
        let (result, calls) = run(FAST, false, 5, missing);
        assert!(result.unwrap_err().is_permanent());
        assert_eq!(calls, 1);
        let (result, calls) = run(FAST, true, 5, busy);
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }
}
