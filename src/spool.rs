//! The rotated files beside the log and what each needs: scan, finish compression,
//! ship oldest first, prune shipped ones beyond `--keep`. Recovery after a crash is the
//! same code: whatever stage a file is found in, the next step is taken from there.

use crate::compress::{describe_gz, gzip_file};
use crate::config::{Config, DestUrl};
use crate::dest::{Destination, Link, ObjectMeta, ShipError, Shipped};
use crate::digest::Digest;
use crate::digest::{scan, sidecar};
use crate::fsutil::FileAccess;
use crate::index;
use crate::known;
use crate::naming::{ObjectKey, RotatedName, Stage};
use crate::notify;
use crate::progress::{during, Progress, Silent, Step};
use crate::reopen::Reopener;
use crate::retry::Policy;
use crate::rotate::ensure_closed;
use crate::state::{now_rfc3339, PlainDigest, ShippedRecord, State, StateDir, StateLock};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The files found for one suffix.
#[derive(Debug, Default, Clone)]
pub struct Group {
    pub plain: bool,
    pub partial: bool,
    pub compressed: bool,
}

/// Rotated files beside the log, by suffix (ascending = the order the lines were written).
#[derive(Debug, Default)]
pub struct Spool {
    pub groups: BTreeMap<u64, Group>,
}

impl Spool {
    pub fn scan(config: &Config) -> Result<Spool> {
        let dir = config.log_dir();
        let base = config.log_name();
        let mut groups: BTreeMap<u64, Group> = BTreeMap::new();
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|n| RotatedName::parse(base, n))
            else {
                continue;
            };
            let g = groups.entry(name.suffix).or_default();
            match name.stage {
                Stage::Plain => g.plain = true,
                Stage::Partial => g.partial = true,
                Stage::Compressed => g.compressed = true,
            }
        }
        Ok(Spool { groups })
    }

    pub fn largest_suffix(&self) -> Option<u64> {
        self.groups.keys().next_back().copied()
    }
}

fn path_of(config: &Config, suffix: u64, stage: Stage) -> PathBuf {
    config
        .log_dir()
        .join(RotatedName::new(config.log_name(), suffix, stage).to_string())
}

/// Brings every rotated file to the compressed stage: removes partial files, removes plain
/// files whose `.gz` is complete, compresses the rest (after making sure syslog-ng let go).
pub fn finish_local(
    config: &Config,
    reopener: &Reopener,
    state_dir: &StateDir,
    lock: &StateLock,
    cancel: &AtomicBool,
    progress: &dyn Progress,
) -> Result<()> {
    let spool = Spool::scan(config)?;
    for (&suffix, group) in &spool.groups {
        let plain = path_of(config, suffix, Stage::Plain);
        let part = path_of(config, suffix, Stage::Partial);
        let gz = path_of(config, suffix, Stage::Compressed);
        if group.partial {
            info!("discarding unfinished {}", part.display());
            std::fs::remove_file(&part)
                .with_context(|| format!("cannot remove {}", part.display()))?;
        }
        if group.plain && group.compressed {
            // The .gz was renamed into place only once complete and synced: the plain copy is redundant.
            info!("removing {}: {} is complete", plain.display(), gz.display());
            std::fs::remove_file(&plain)
                .with_context(|| format!("cannot remove {}", plain.display()))?;
        } else if group.plain {
            ensure_closed(&plain, config, reopener, cancel)?;
            compress(config, suffix, state_dir, lock, cancel, progress)?;
        }
    }
    Ok(())
}

/// Compresses the plain rotated file with this suffix and records what it holds.
pub fn compress(
    config: &Config,
    suffix: u64,
    state_dir: &StateDir,
    lock: &StateLock,
    cancel: &AtomicBool,
    progress: &dyn Progress,
) -> Result<()> {
    let plain = path_of(config, suffix, Stage::Plain);
    let started = Instant::now();
    let stats = during(progress, Step::Compress, &plain, || {
        gzip_file(
            &plain,
            &path_of(config, suffix, Stage::Partial),
            &path_of(config, suffix, Stage::Compressed),
            config.compression_level,
            config.compression_threads,
            cancel,
            progress,
        )
    })
    .map_err(|e| {
        if crate::fsutil::is_disk_full(&e) {
            e.context(format!(
                "no space left to compress {}; it is kept as is: free space in {}, it will be retried",
                plain.display(),
                config.log_dir().display()
            ))
        } else {
            e
        }
    })?;
    info!(
        "compressed {}: {} lines, {} -> {} bytes in {} ms",
        plain.display(),
        stats.lines,
        stats.plain_bytes,
        stats.gz_bytes,
        started.elapsed().as_millis()
    );
    let name = RotatedName::new(config.log_name(), suffix, Stage::Compressed).to_string();
    state_dir.update(lock, |s| {
        s.digests.insert(
            name,
            PlainDigest {
                lines: stats.lines,
                bytes: stats.plain_bytes,
                crc32: Some(stats.crc32),
                gz_sha256: Some(stats.gz_sha256.clone()),
            },
        );
    })?;
    Ok(())
}

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

/// Ships every compressed file not yet recorded as shipped, oldest first, recording each
/// durably as soon as it is shipped. A retryable failure is retried as `retry` says
/// ([`crate::retry`]); the first file that still fails stops the run (the rest stay pending).
/// The bytes of each `.gz` sent go to `progress` (its small digest JSON goes up unreported).
pub fn ship_pending(
    config: &Config,
    dest: &dyn Destination,
    state_dir: &StateDir,
    lock: &StateLock,
    retry: Policy,
    cancel: &AtomicBool,
    progress: &dyn Progress,
) -> Result<ShipReport> {
    let dest_url = config.require_dest()?;
    let spool = Spool::scan(config)?;
    let state = state_dir.load()?;
    let mut report = ShipReport::default();
    for (&suffix, group) in &spool.groups {
        if !group.compressed {
            continue;
        }
        let name = RotatedName::new(config.log_name(), suffix, Stage::Compressed).to_string();
        if state.shipped.contains_key(&name) {
            continue;
        }
        if report.error.is_some() {
            report.pending.push(name);
            continue;
        }
        let path = path_of(config, suffix, Stage::Compressed);
        let at = crate::key_template::suffix_time(suffix);
        let key = dest_url.key(&config.key_template, &config.host, &name, at)?;
        let digest = final_digest(config, suffix, &path, &name, (state_dir, lock))?;
        let meta = object_meta(config, &state, &name, &path, digest.as_ref())?;
        // The digest goes first: whoever sees the log's object can already read its digest.
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
        let ship_both = || -> Result<Shipped, ShipError> {
            if let Some(m) = &sidecar_meta {
                dest.ship(&sidecar_key, &sidecar, m, &Silent)?;
            }
            // Each attempt starts its bar from zero; the retry's warning is logged without one.
            let shipped = during(progress, Step::Upload, &path, || {
                dest.ship(&key, &path, &meta, progress)
            })?;
            // An incident's index record follows its log (src/index.rs: what a failure does).
            if let Some(d) = digest.as_ref().filter(|d| d.lines > 0) {
                let shipment = index::Shipment {
                    host: &config.host,
                    log: &name,
                    key: &key,
                    sidecar_key: &sidecar_key,
                    bytes: shipped.bytes(),
                };
                let record = index::Record::new(&shipment, d, chrono::Utc::now());
                index::ship_record(
                    dest,
                    dest_url,
                    state_dir.path(),
                    &path,
                    &shipped,
                    &record,
                    &meta.tags,
                )?;
            }
            Ok(shipped)
        };
        let started = Instant::now();
        match with_retries(retry, cancel, &name, ship_both) {
            Ok(shipped) => {
                let (bytes, how) = match shipped {
                    Shipped::Written { bytes } => (bytes, "shipped"),
                    Shipped::AlreadyThere { bytes } => (bytes, "already at the destination:"),
                };
                // Queued before the shipment is recorded: a crash may repeat a notification,
                // never lose one.
                if let (Some(n), Some(d)) = (&config.incident.notify, &digest) {
                    let job = notify_job(dest, dest_url, &key, &name, bytes, d, n.link_expiry);
                    for job in notify::route_jobs(n, &config.incident, &job, &path) {
                        if let Err(e) = notify::enqueue(
                            state_dir.path(),
                            &job,
                            FileAccess::derived_from_path(&path),
                        ) {
                            warn!(
                                "cannot queue the notification of {name} for route {}: {e:#}",
                                job.route
                            );
                        }
                    }
                }
                state_dir.update(lock, |s| {
                    s.shipped.insert(
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
                    "{how} {} -> {dest_url} {key} ({bytes} bytes, {:.0} ms, {:.1} MB/s)",
                    path.display(),
                    secs * 1000.0,
                    bytes as f64 / 1e6 / secs.max(1e-6)
                );
                report.shipped.push(name);
                report.shipped_bytes += bytes;
            }
            Err(e) => {
                let e = ship_failed(e, &path, dest_url, &key);
                warn!("{e:#}");
                report.error = Some(e);
                report.pending.push(name);
            }
        }
    }
    Ok(report)
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

/// The final digest of the incident in the compressed file `gz` (`name`), its top messages
/// marked new or known ([`known`]): every shipped incident passes here, once its digest can
/// no longer change, whoever rotated it.
fn final_digest(
    config: &Config,
    suffix: u64,
    gz: &Path,
    name: &str,
    (state_dir, lock): (&StateDir, &StateLock),
) -> Result<Option<Digest>> {
    let digest = ensure_digest(config, suffix, gz)?;
    let sidecar = sidecar::sidecar_path(config, suffix);
    Ok(digest.map(|d| known::mark(state_dir, lock, name, (&sidecar, gz), d)))
}

/// The digest of a compressed file: its JSON next to it, or (a file rotated by an older
/// version, or whose JSON was lost) a scan of the file, written next to it. A file that
/// cannot be digested (not gzip) is shipped without one; but an error of the system (the JSON
/// cannot be written, the file cannot be read) is an error: the file stays pending and the
/// next run digests it, instead of shipping it without its digest for good, or failing later
/// on a JSON that was never written (found by tests/faults.rs).
fn ensure_digest(config: &Config, suffix: u64, gz: &Path) -> Result<Option<Digest>> {
    let path = sidecar::sidecar_path(config, suffix);
    match sidecar::read_sidecar(&path) {
        Ok(Some(d)) => return Ok(Some(d)),
        Ok(None) => {}
        Err(e) => warn!("{e:#}"),
    }
    match scan::scan_path(gz, &config.incident) {
        Ok(b) => {
            let mut d = b.digest(&config.host, config.incident.top);
            d.log = gz.file_name().map(|n| n.to_string_lossy().into_owned());
            sidecar::write_sidecar(&path, &d, gz)?;
            info!("digested {}: {} incident lines", gz.display(), d.lines);
            Ok(Some(d))
        }
        Err(e) if is_os_error(&e) => {
            Err(e.context(format!("cannot digest {}; it stays pending", gz.display())))
        }
        Err(e) => {
            warn!(
                "no digest for {}: {e:#}; it is shipped without one",
                gz.display()
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

/// What the object's metadata says about the log: recorded at compression, or read back,
/// and the headline of its digest.
fn object_meta(
    config: &Config,
    state: &State,
    name: &str,
    gz: &Path,
    digest: Option<&Digest>,
) -> Result<ObjectMeta> {
    let (lines, plain_bytes, crc32, gz_sha256) = match state.digests.get(name) {
        Some(PlainDigest {
            lines,
            bytes,
            crc32: Some(crc32),
            gz_sha256: Some(sha),
        }) => (*lines, *bytes, *crc32, sha.clone()),
        _ => {
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

/// Deletes shipped files beyond the newest `keep`, and forgets records of files that are gone.
/// Never deletes a file that is not recorded as shipped.
pub fn apply_keep(config: &Config, state_dir: &StateDir, lock: &StateLock) -> Result<()> {
    let spool = Spool::scan(config)?;
    let mut state: State = state_dir.load()?;
    let present: Vec<String> = spool
        .groups
        .iter()
        .filter(|(_, g)| g.compressed)
        .map(|(&s, _)| RotatedName::new(config.log_name(), s, Stage::Compressed).to_string())
        .collect();
    let shipped_present: Vec<&String> = present
        .iter()
        .filter(|n| state.shipped.contains_key(*n))
        .collect();
    let excess = shipped_present.len().saturating_sub(config.keep);
    let mut removed = Vec::new();
    for name in shipped_present.into_iter().take(excess) {
        let path = config.log_dir().join(name);
        if let Some(rotated) = RotatedName::parse(config.log_name(), name) {
            let sidecar = sidecar::sidecar_path(config, rotated.suffix);
            match std::fs::remove_file(&sidecar) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warn!("cannot remove {}: {e}", sidecar.display()),
            }
        }
        match std::fs::remove_file(&path) {
            Ok(()) => info!(
                "removed {} (shipped; --keep {})",
                path.display(),
                config.keep
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
        removed.push(name.clone());
    }
    let before = (state.shipped.len(), state.digests.len());
    let kept = |name: &String| present.contains(name) && !removed.contains(name);
    state.shipped.retain(|name, _| kept(name));
    state.digests.retain(|name, _| kept(name));
    if before != (state.shipped.len(), state.digests.len()) {
        state_dir.save(&state, lock)?;
    }
    Ok(())
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
