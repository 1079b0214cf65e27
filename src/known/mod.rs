//! Known and new errors (issue 15): each top message of an incident is marked `new`, or seen
//! in N earlier incidents of this host since a date, from a bounded store in the state dir,
//! `known-messages.json` ([`store`]; format and bounds in docs/state.md).
//!
//! When: once per incident, when its digest is final, in `spool::ship_pending` (through
//! `final_digest`), between reading (or rebuilding) the digest beside the rotated file and
//! shipping it. Every incident takes that path, whoever rotated it (`watch`, `rotate` by hand
//! or from cron, a file left by a crash and shipped by the next run), and always under the
//! state lock, which is what keeps two writers of the store apart. Idempotent: a digest whose messages are marked is not
//! marked again, and a store entry remembers the incident that last counted it, so a crash
//! after the store is saved and before the digest is rewritten repeats the same marks.
//!
//! Marks are secondary to the log: nothing here ever stops a shipment. A store that is
//! missing starts empty; one that cannot be parsed is moved aside with a warning and starts
//! empty; one that cannot be read is left alone (warning) and this incident's marks are made
//! as if it were empty.

pub mod store;

use crate::digest::sidecar::write_sidecar_as;
use crate::digest::Digest;
use crate::fsutil::{atomic_write, FileAccess};
use crate::state::{StateDir, StateLock};
use anyhow::{Context, Result};
use std::path::Path;
use store::Store;
use tracing::warn;

/// The store's file in the state dir.
pub const STORE_FILE: &str = "known-messages.json";

/// Marks the top messages of `digest`, the final digest of `incident` (the shipped file's
/// name), records them in the store and rewrites the digest beside the log (`sidecar`, with
/// the log's `access`). Returns the digest to ship and notify: the marked one, or the
/// one given when it was marked already or its marks could not be written.
pub fn mark(
    state_dir: &StateDir,
    _proof: &StateLock,
    incident: &str,
    (sidecar, access): (&Path, FileAccess),
    digest: Digest,
) -> Digest {
    if !store::needs_marks(&digest) {
        return digest;
    }
    let path = state_dir.path().join(STORE_FILE);
    let (mut known, writable) = load(&path);
    let mut marked = digest.clone();
    // Milliseconds are plenty for an LRU order and a 90-day TTL.
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 3);
    known.mark(incident, &mut marked, now);
    if writable {
        if let Err(e) = save(&path, &known) {
            warn!("{e:#}; {incident} is marked but not remembered: the next incidents may call its messages new");
        }
    }
    match write_sidecar_as(sidecar, &marked, access) {
        Ok(()) => marked,
        Err(e) => {
            warn!("{e:#}; {incident} is shipped without its new/known marks (the next attempt marks it)");
            digest
        }
    }
}

/// The store at `path`, and whether it may be written back. Never fails: a missing file is
/// an empty store, a damaged one is moved aside (`.bad`) and an empty store replaces it; a
/// file that cannot be read is left as it is (`false`) for a later run to read.
pub fn load(path: &Path) -> (Store, bool) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Store::default(), true),
        Err(e) => {
            warn!(
                "cannot read {}: {e}; this incident's messages are all marked new and the file is \
                 left as it is: give fasttrack's user read and write access to it",
                path.display()
            );
            return (Store::default(), false);
        }
    };
    match parse(&bytes) {
        Ok(store) => (store, true),
        Err(e) => {
            let aside = path.with_extension("json.bad");
            warn!(
                "{} is damaged ({e:#}); moved to {} and started anew: this incident's messages \
                 are all marked new",
                path.display(),
                aside.display()
            );
            if let Err(e) = std::fs::rename(path, &aside) {
                warn!("cannot move {} aside: {e}", path.display());
            }
            (Store::default(), true)
        }
    }
}

/// Reads the store's JSON; a newer version's is read as far as its fields are known.
pub fn parse(bytes: &[u8]) -> Result<Store> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Replaces the store atomically (fasttrack's own state: 0640).
pub fn save(path: &Path, store: &Store) -> Result<()> {
    let bytes = serde_json::to_vec(store).context("cannot serialise the known messages")?;
    atomic_write(path, &bytes, FileAccess::STATE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Builder;
    use proptest::prelude::*;

    fn incident(lines: &[&str]) -> Digest {
        let mut b = Builder::new("file");
        for l in lines {
            b.add(l, crate::digest::test_now());
        }
        b.digest("web1", 10)
    }

    const A: &str = "Nov 22 04:26:15 web1 docker/api[1]: \"POST /orders/1 HTTP/1.1\" 502 0";
    const B: &str = "Nov 22 04:26:16 web1 docker/api[1]: \"GET /users/7 HTTP/1.1\" 503 0";

    /// The step end to end on disk: marks in the rewritten digest, the store remembered,
    /// nothing done twice.
    #[test]
    fn marks_are_written_beside_the_log_and_remembered_once() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = StateDir::open(&dir.path().join("state")).unwrap();
        let lock = state_dir
            .lock(&std::sync::atomic::AtomicBool::new(false), |_| {})
            .unwrap();
        let log = dir.path().join("docker.log-1.gz");
        std::fs::write(&log, b"x").unwrap();
        let sidecar = dir.path().join("docker.log-1.json");
        let one = mark(
            &state_dir,
            &lock,
            "docker.log-1.gz",
            (&sidecar, FileAccess::derived_from_path(&log)),
            incident(&[A]),
        );
        assert!(one.messages[0].seen.as_ref().unwrap().is_new());
        let on_disk = crate::digest::sidecar::read_sidecar(&sidecar)
            .unwrap()
            .unwrap();
        assert_eq!(on_disk, one);
        let again = mark(
            &state_dir,
            &lock,
            "docker.log-1.gz",
            (&sidecar, FileAccess::derived_from_path(&log)),
            one.clone(),
        );
        assert_eq!(again, one, "a marked digest is left as it is");
        let two = mark(
            &state_dir,
            &lock,
            "docker.log-2.gz",
            (&sidecar, FileAccess::derived_from_path(&log)),
            incident(&[A, B]),
        );
        let seen: Vec<(&str, u64)> = two
            .messages
            .iter()
            .map(|m| (m.template.as_str(), m.seen.as_ref().unwrap().incidents))
            .collect();
        assert_eq!(
            seen,
            [("GET /users/<n> 503", 0), ("POST /orders/<n> 502", 1)]
        );
        let path = state_dir.path().join(STORE_FILE);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("orders"),
            "no log content in the store: {text}"
        );
        assert_eq!(load(&path).0.signatures.len(), 2);
    }

    #[test]
    fn a_damaged_store_is_moved_aside_and_an_unreadable_one_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STORE_FILE);
        assert_eq!(load(&path), (Store::default(), true), "missing: empty");
        std::fs::write(
            &path,
            b"{\"version\":1,\"signatures\":{\"x\":{\"first_seen\":\"soon\"}}}",
        )
        .unwrap();
        assert_eq!(load(&path), (Store::default(), true));
        assert!(!path.exists());
        assert!(dir.path().join("known-messages.json.bad").exists());
        // A directory where the file should be: cannot be read, and is not replaced.
        std::fs::create_dir(&path).unwrap();
        assert_eq!(load(&path), (Store::default(), false));
        assert!(path.is_dir());
    }

    #[test]
    fn a_store_of_a_newer_version_is_read_as_far_as_it_is_known() {
        let text = r#"{"version":2,"future":true,"signatures":{"ab":{"first_seen":"2026-11-01T10:00:00Z",
            "last_seen":"2026-11-02T10:00:00Z","incidents":3,"last_incident":"docker.log-9.gz","more":1}}}"#;
        let store = parse(text.as_bytes()).unwrap();
        assert_eq!(store.signatures["ab"].incidents, 3);
    }

    proptest! {
        /// Whatever the file holds, loading it gives a store (never a panic, never an error),
        /// and marking with it works.
        #[test]
        fn any_bytes_give_a_store(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                  json in "[{}\\[\\]\":,0-9a-z_ -]{0,200}") {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(STORE_FILE);
            for content in [bytes, json.into_bytes()] {
                std::fs::write(&path, &content).unwrap();
                let (mut store, writable) = load(&path);
                prop_assert!(writable);
                let mut d = incident(&[A, B]);
                store.mark("docker.log-1.gz", &mut d, crate::digest::test_now());
                prop_assert!(d.messages.iter().all(|m| m.seen.is_some()));
            }
        }
    }
}
