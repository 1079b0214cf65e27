//! The incident index: one small JSON record per shipped incident, under a date-partitioned
//! prefix of the destination, `PREFIX/_incidents/dt=YYYY-MM-DD/<host>-<log>.json`, read by
//! `fasttrack report` (src/report/) and by Athena. The schema and its compatibility rule are
//! docs/incident-index.md: fields are added freely, `version` changes only when a field
//! changes meaning or type.
//!
//! [`Record::new`] is pure. [`ship_record`] writes the record through the same
//! `Destination::ship` as the log, right after the log and before the shipment is recorded
//! in state.toml, so a crash repeats it (see there for what a failure does).

use crate::config::DestUrl;
use crate::dest::{Destination, ObjectMeta, ShipError, Shipped};
use crate::digest::Digest;
use crate::fsutil::{atomic_write, FileAccess};
use crate::naming::ObjectKey;
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tracing::{info, warn};

/// The schema version every record carries.
pub const VERSION: u32 = 1;

/// The directory of the index under the destination's prefix.
pub const DIR: &str = "_incidents";

/// Programs and messages a record keeps (the digest beside the log has them all).
pub const TOP: usize = 5;

/// The temporary file a record is shipped from, in the state dir.
const TEMP_NAME: &str = "index-record.json";

/// One shipped incident, as one line of JSON (docs/incident-index.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// `YYYY-MM-DD`, UTC: the day of `first_seen`, else of `shipped_at` (the partition).
    pub dt: String,
    /// The host that shipped the log (`--host`).
    pub host: String,
    /// The shipped file's name, `docker.log-<suffix>.gz`.
    pub log: String,
    /// The log object's key, and its digest's, at the same destination.
    pub key: String,
    #[serde(default)]
    pub sidecar_key: String,
    /// The log object's size (gzipped).
    #[serde(default)]
    pub bytes: u64,
    /// Incident lines (the digest's `lines`).
    #[serde(default)]
    pub lines: u64,
    #[serde(default)]
    pub first_seen: Option<String>,
    #[serde(default)]
    pub last_seen: Option<String>,
    #[serde(default)]
    pub incident_id: String,
    /// Lines per HTTP status (`-`: none found).
    #[serde(default)]
    pub statuses: BTreeMap<String, u64>,
    /// The [`TOP`] programs and messages of the digest, largest first.
    #[serde(default)]
    pub programs: Vec<KeyCount>,
    #[serde(default)]
    pub messages: Vec<TopMessage>,
    /// RFC 3339, when the record was made (right after the log was shipped).
    pub shipped_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCount {
    pub key: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopMessage {
    pub template: String,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The digest's new/known mark of the template, when the digest has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
}

/// Whether a template was seen before this incident: the digest's message mark
/// (`first_seen`, RFC 3339; `incidents`, earlier incidents with it, 0 = new).
pub use crate::digest::Seen;

/// Where a shipped log went and what it is: what a record says besides its digest.
#[derive(Debug, Clone, Copy)]
pub struct Shipment<'a> {
    pub host: &'a str,
    /// `docker.log-<suffix>.gz`
    pub log: &'a str,
    pub key: &'a ObjectKey,
    pub sidecar_key: &'a ObjectKey,
    pub bytes: u64,
}

impl Record {
    pub fn new(shipment: &Shipment, digest: &Digest, shipped_at: DateTime<Utc>) -> Record {
        let first = digest
            .first_seen
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        let day = first.map_or(shipped_at.date_naive(), |t| {
            t.with_timezone(&Utc).date_naive()
        });
        Record {
            version: VERSION,
            dt: day.format("%Y-%m-%d").to_string(),
            host: shipment.host.to_string(),
            log: shipment.log.to_string(),
            key: shipment.key.to_string(),
            sidecar_key: shipment.sidecar_key.to_string(),
            bytes: shipment.bytes,
            lines: digest.lines,
            first_seen: digest.first_seen.clone(),
            last_seen: digest.last_seen.clone(),
            incident_id: digest.incident_id.clone(),
            statuses: digest.statuses.clone(),
            programs: digest
                .programs
                .iter()
                .take(TOP)
                .map(|p| KeyCount {
                    key: p.key.clone(),
                    count: p.count,
                })
                .collect(),
            messages: digest
                .messages
                .iter()
                .take(TOP)
                .map(|m| TopMessage {
                    template: m.template.clone(),
                    count: m.count,
                    status: m.status.clone(),
                    seen: m.seen.clone(),
                })
                .collect(),
            shipped_at: shipped_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// The record as stored: one line of JSON, newline-terminated (Athena's JSON SerDe).
    pub fn to_line(&self) -> Result<Vec<u8>> {
        let mut line = serde_json::to_vec(self).context("cannot serialise an index record")?;
        line.push(b'\n');
        Ok(line)
    }

    /// Where this record goes at `dest`.
    pub fn key_at(&self, dest: &DestUrl) -> ObjectKey {
        let stem = self.log.strip_suffix(".gz").unwrap_or(&self.log);
        ObjectKey::stored(format!(
            "{}{}-{stem}.json",
            partition_prefix(dest, &self.dt),
            self.host
        ))
    }
}

/// The prefix of one day's records at `dest`: `PREFIX/_incidents/dt=YYYY-MM-DD/`.
pub fn partition_prefix(dest: &DestUrl, dt: &str) -> String {
    match dest {
        DestUrl::S3 { prefix, .. } if !prefix.is_empty() => format!("{prefix}/{DIR}/dt={dt}/"),
        _ => format!("{DIR}/dt={dt}/"),
    }
}

/// [`partition_prefix`] of a day.
pub fn day_prefix(dest: &DestUrl, day: NaiveDate) -> String {
    partition_prefix(dest, &day.format("%Y-%m-%d").to_string())
}

/// Ships the index record of an incident whose log (`log_path`) was just shipped (`log`).
///
/// What a failure does, so that the index never costs a log nor blocks shipping for good:
/// - the store failed in a way a retry may fix (unreachable, 5xx, SlowDown) right after this
///   attempt wrote the log: the error is returned, and the shipment is retried as any other
///   (its digest and log are then found already there, and the record is tiny);
/// - the same when the log was already there (that retry, or a run after a crash): a warning,
///   and the log counts as shipped. So a record that keeps failing where the logs do not (a
///   `file://` index directory fasttrack may not write) delays a shipment by one retry, never
///   more;
/// - a record already at its key (an earlier attempt that was not recorded, since
///   `shipped_at` differs between attempts) counts as written when it names the same log;
/// - anything else (access denied to `_incidents/`, a local error writing the temporary
///   file): a warning, and the log counts as shipped without its record: `fasttrack report`
///   will not count that incident.
pub fn ship_record(
    dest: &dyn Destination,
    dest_url: &DestUrl,
    state_dir: &Path,
    log_path: &Path,
    log: &Shipped,
    record: &Record,
    tags: &[(String, String)],
) -> Result<(), ShipError> {
    let key = record.key_at(dest_url);
    let temp = state_dir.join(TEMP_NAME);
    let shipped = write_temp(&temp, record, log_path, tags).map(|meta| {
        let shipped = dest.ship(&key, &temp, &meta, &crate::progress::Silent);
        let _ = std::fs::remove_file(&temp);
        shipped
    });
    let failure = match shipped {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(ShipError::Retryable(e))) if matches!(log, Shipped::Written { .. }) => {
            return Err(ShipError::Retryable(
                e.context(format!("cannot write the index record {key}")),
            ))
        }
        Ok(Err(ShipError::Permanent(e))) if same_record_there(dest, &key, record) => {
            info!("the index record {key} is already there ({e:#})");
            return Ok(());
        }
        Ok(Err(e)) => anyhow::Error::from(e),
        Err(e) => e,
    };
    warn!(
        "cannot write the index record {key} of {}: {failure:#}; the log is shipped without it \
         (fasttrack report will not count this incident)",
        record.log
    );
    Ok(())
}

/// Writes the record to `temp`, no more readable than the log it describes; the object gets
/// the log's `tags` (a bucket policy that requires tags requires them of every object).
fn write_temp(
    temp: &Path,
    record: &Record,
    log_path: &Path,
    tags: &[(String, String)],
) -> Result<ObjectMeta> {
    use sha2::Digest as _;
    let line = record.to_line()?;
    atomic_write(temp, &line, FileAccess::derived_from_path(log_path))?;
    Ok(ObjectMeta {
        content_type: "application/json",
        sha256: hex::encode(sha2::Sha256::digest(&line)),
        metadata: vec![
            ("host".to_string(), record.host.clone()),
            ("log".to_string(), record.log.clone()),
        ],
        tags: tags.to_vec(),
    })
}

/// Whether the object at `key` is a record of the same log (written by an earlier attempt).
fn same_record_there(dest: &dyn Destination, key: &ObjectKey, record: &Record) -> bool {
    dest.get(key.as_str())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
        .is_some_and(|there| there.key == record.key && there.host == record.host)
}

/// The fields of the first table after `heading` in docs/incident-index.md (each row starts
/// with one or more fields in backquotes), sorted: the tests compare them with the JSON.
#[cfg(test)]
pub(crate) fn documented_fields(heading: &str) -> Vec<String> {
    let doc = include_str!("../docs/incident-index.md");
    let section = doc
        .split(heading)
        .nth(1)
        .expect("the heading is in the doc");
    let mut fields: Vec<String> = section
        .lines()
        .skip_while(|l| !l.starts_with("| field"))
        .skip(2)
        .take_while(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let cell = l.split(" | ").next().unwrap_or("");
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    fields.sort();
    fields
}

/// The keys of a JSON object, sorted.
#[cfg(test)]
pub(crate) fn json_keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{test_now, Builder};
    use chrono::TimeZone;

    fn digest() -> Digest {
        let mut b = Builder::new("file");
        for (i, s) in [502, 502, 503, 500, 502, 504, 502].iter().enumerate() {
            b.add(
                &format!(
                    "2026-11-21T23:59:5{i}Z web1 docker/app{i}[1]: \"GET /p{i}x HTTP/1.1\" {s} 0"
                ),
                test_now(),
            );
        }
        b.digest("web1", 10)
    }

    fn shipment<'a>(key: &'a ObjectKey, sidecar: &'a ObjectKey) -> Shipment<'a> {
        Shipment {
            host: "web1",
            log: "docker.log-1795324210.gz",
            key,
            sidecar_key: sidecar,
            bytes: 4096,
        }
    }

    #[test]
    fn a_record_is_one_line_with_the_digest_headline_and_bounded_lists() {
        let key = ObjectKey::new("fast-track", "web1", "docker.log-1795324210.gz");
        let sidecar = ObjectKey::new("fast-track", "web1", "docker.log-1795324210.json");
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 0, 1, 2).unwrap();
        let r = Record::new(&shipment(&key, &sidecar), &digest(), at);
        assert_eq!(r.version, 1);
        // the day of the first line, not of the shipment
        assert_eq!(r.dt, "2026-11-21");
        assert_eq!(r.key, "fast-track/web1/docker.log-1795324210.gz");
        assert_eq!(r.sidecar_key, "fast-track/web1/docker.log-1795324210.json");
        assert_eq!((r.lines, r.bytes), (7, 4096));
        assert_eq!(r.statuses["502"], 4);
        assert_eq!((r.programs.len(), r.messages.len()), (TOP, TOP));
        assert_eq!(r.shipped_at, "2026-11-22T00:01:02Z");
        let line = r.to_line().unwrap();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(line.ends_with(b"\n"));
        let back: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            json_keys(&serde_json::to_value(&r).unwrap()),
            documented_fields("## The record (version 1)"),
            "docs/incident-index.md and the record disagree"
        );
        let s3 = DestUrl::parse("s3://incident-logs/fast-track").unwrap();
        assert_eq!(
            r.key_at(&s3).as_str(),
            "fast-track/_incidents/dt=2026-11-21/web1-docker.log-1795324210.json"
        );
        let dir = DestUrl::parse("file:///srv/logs").unwrap();
        assert_eq!(
            r.key_at(&dir).as_str(),
            "_incidents/dt=2026-11-21/web1-docker.log-1795324210.json"
        );
    }

    #[test]
    fn without_a_first_line_the_day_is_the_shipment_s() {
        let key = ObjectKey::new("", "web1", "docker.log-1.gz");
        let mut d = digest();
        d.first_seen = None;
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
        assert_eq!(Record::new(&shipment(&key, &key), &d, at).dt, "2026-12-01");
    }

    #[test]
    fn older_and_newer_records_read_back() {
        // the fields a record must have; everything else has a default, unknown ones are ignored
        let r: Record = serde_json::from_str(
            r#"{"version":1,"dt":"2026-11-21","host":"h","log":"l","key":"k","shipped_at":"t","future":[1]}"#,
        )
        .unwrap();
        assert_eq!((r.lines, r.messages.len()), (0, 0));
        let m: TopMessage = serde_json::from_str(
            r#"{"template":"GET /","count":3,"seen":{"first_seen":"2026-11-01T00:00:00Z","incidents":0}}"#,
        )
        .unwrap();
        assert_eq!(m.seen.unwrap().incidents, 0);
    }

    const WRITTEN: Shipped = Shipped::Written { bytes: 2 };

    #[test]
    fn a_record_ships_once_and_a_repeat_with_another_time_counts() {
        let out = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let log = state.path().join("docker.log-1.gz");
        std::fs::write(&log, b"gz").unwrap();
        let dest_url = DestUrl::parse(&format!("file://{}", out.path().display())).unwrap();
        let dest = crate::dest::local::LocalDir::new(out.path());
        let key = ObjectKey::new("", "web1", "docker.log-1.gz");
        let r = Record::new(&shipment(&key, &key), &digest(), test_now());
        ship_record(&dest, &dest_url, state.path(), &log, &WRITTEN, &r, &[]).unwrap();
        let there = out.path().join(r.key_at(&dest_url).as_str());
        assert_eq!(std::fs::read(&there).unwrap(), r.to_line().unwrap());
        assert!(!state.path().join(TEMP_NAME).exists());
        // a crash before the shipment was recorded: the next attempt has another shipped_at
        let again = Record::new(
            &shipment(&key, &key),
            &digest(),
            test_now() + chrono::Duration::minutes(5),
        );
        ship_record(&dest, &dest_url, state.path(), &log, &WRITTEN, &again, &[]).unwrap();
        assert_eq!(std::fs::read(&there).unwrap(), r.to_line().unwrap());
        // another log's record at that key is never overwritten, and the log still ships
        let other_key = ObjectKey::new("", "web1", "docker.log-2.gz");
        let mut other = Record::new(&shipment(&other_key, &other_key), &digest(), test_now());
        other.log = r.log.clone();
        ship_record(&dest, &dest_url, state.path(), &log, &WRITTEN, &other, &[]).unwrap();
        assert_eq!(std::fs::read(&there).unwrap(), r.to_line().unwrap());
    }

    #[test]
    fn a_record_the_store_keeps_refusing_delays_its_log_by_one_retry_only() {
        // file:// errors are all retryable (a mount may come back): an index directory that
        // cannot be written fails the attempt that wrote the log, then no more
        let out = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let log = state.path().join("docker.log-1.gz");
        std::fs::write(&log, b"gz").unwrap();
        std::fs::write(out.path().join(DIR), b"not a directory").unwrap();
        let dest_url = DestUrl::parse(&format!("file://{}", out.path().display())).unwrap();
        let dest = crate::dest::local::LocalDir::new(out.path());
        let key = ObjectKey::new("", "web1", "docker.log-1.gz");
        let r = Record::new(&shipment(&key, &key), &digest(), test_now());
        let e = ship_record(&dest, &dest_url, state.path(), &log, &WRITTEN, &r, &[]).unwrap_err();
        assert!(!e.is_permanent());
        assert!(
            format!("{e:#}").contains("cannot write the index record _incidents/"),
            "{e:#}"
        );
        let again = Shipped::AlreadyThere { bytes: 2 };
        ship_record(&dest, &dest_url, state.path(), &log, &again, &r, &[]).unwrap();
        assert!(!state.path().join(TEMP_NAME).exists());
    }
}
