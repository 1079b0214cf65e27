//! The digest beside each rotated log (`docker.log-<suffix>.json`), its headline as object
//! metadata, and which digest a rotated file gets.
//!
//! The digest is secondary to the log: no failure here ever stops a rotation or a shipment.
//! A rotated file whose digest cannot be built from the stream gets one from a scan of the
//! file itself, and a shipped file without one is shipped anyway (with a warning).

use super::scan::{scan_path, scan_reader};
use crate::config::Config;
use crate::digest::{Builder, Digest};
use crate::fsutil::{atomic_write, FileAccess};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// `docker.log-<suffix>.json`, next to the rotated file.
pub fn sidecar_path(config: &Config, suffix: u64) -> PathBuf {
    config.log_dir().join(sidecar_name(config, suffix))
}

pub fn sidecar_name(config: &Config, suffix: u64) -> String {
    format!("{}-{suffix}.json", config.log_name())
}

pub fn read_sidecar(path: &Path) -> Result<Option<Digest>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a digest fasttrack wrote; remove it and it is rebuilt",
                path.display()
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the digest of `log` (the rotated file, plain or gzipped) to `path`, no more readable
/// than `log`: its examples are lines of it.
pub fn write_sidecar(path: &Path, digest: &Digest, log: &Path) -> Result<()> {
    write_sidecar_as(path, digest, FileAccess::derived_from_path(log))
}

/// [`write_sidecar`] with the access of the log given (the log may be gone by then).
pub fn write_sidecar_as(path: &Path, digest: &Digest, access: FileAccess) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(digest).context("cannot serialise the digest")?;
    text.push(b'\n');
    atomic_write(path, &text, access)
}

/// The digest's headline, as object metadata (S3 keeps 2 KB of it: values are short).
pub fn headline_metadata(d: &Digest) -> Vec<(String, String)> {
    let mut statuses: Vec<(&String, &u64)> = d.statuses.iter().collect();
    statuses.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let statuses: Vec<String> = statuses
        .iter()
        .take(8)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut out = vec![
        ("incident-lines".to_string(), d.lines.to_string()),
        ("incident-statuses".to_string(), statuses.join(",")),
    ];
    if let Some(f) = &d.first_seen {
        out.push(("incident-first-seen".to_string(), f.clone()));
    }
    if let Some(l) = &d.last_seen {
        out.push(("incident-last-seen".to_string(), l.clone()));
    }
    out.push(("incident-hosts".to_string(), d.hosts.len().to_string()));
    if let Some(m) = d.messages.first() {
        let top: String = m.template.chars().take(200).collect();
        out.push(("incident-top-message".to_string(), top));
        out.push(("incident-top-count".to_string(), m.count.to_string()));
    }
    out
}

/// The digest a rotated file gets: the stream's when it covers the file exactly, else a
/// scan of the file (`opened`, when given: the file at `plain` may be removed meanwhile). `None` (and a warning) when neither works: the file ships anyway.
pub fn digest_for_rotated(
    config: &Config,
    (plain, opened): (&Path, Option<std::fs::File>),
    log_name: &str,
    stream: Option<Builder>,
    last_suffix_before: Option<u64>,
) -> Option<Digest> {
    let builder = match stream {
        Some(b) if b.exact && b.after_suffix == last_suffix_before && b.lines() > 0 => {
            tracing::info!(
                "digest of {log_name}: {} incident lines, from the stream",
                b.lines()
            );
            Some(b)
        }
        other => {
            if let Some(b) = other {
                tracing::info!(
                    "the stream's digest ({} lines) may not match {log_name} exactly (a restart \
                     after a crash, or a rotation by hand): digesting the file instead",
                    b.lines()
                );
            }
            let scanned = match opened {
                Some(mut file) => scan_reader(&mut file, &config.incident)
                    .with_context(|| format!("cannot digest {}", plain.display())),
                None => scan_path(plain, &config.incident),
            };
            match scanned {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!("no digest for {log_name}: {e:#}");
                    None
                }
            }
        }
    }?;
    let mut digest = builder.digest(&config.host, config.incident.top);
    digest.log = Some(format!("{log_name}.gz"));
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn headline_metadata_is_short_and_ordered() {
        let mut b = Builder::new("file");
        for s in [502, 502, 503] {
            b.add(
                &format!("Nov 22 04:26:15 h p: \"GET / HTTP/1.1\" {s} 0"),
                Utc::now(),
            );
        }
        let m = headline_metadata(&b.digest("h", 10));
        assert!(m.contains(&("incident-lines".into(), "3".into())));
        assert!(m.contains(&("incident-statuses".into(), "502=2,503=1".into())));
        assert!(m.contains(&("incident-top-message".into(), "GET / 502".into())));
    }
}
