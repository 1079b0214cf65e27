//! The store of known messages, pure logic: which signatures earlier incidents had, and the
//! marks an incident's top messages get from it. No I/O, no clock (callers pass `now`).
//!
//! One entry per signature, bounded two ways: an entry not seen for [`Bounds::ttl`] (90 days)
//! is forgotten, and past [`Bounds::capacity`] (10 000) entries the least recently seen ones
//! go first (LRU). Neither ever drops an entry of the incident being marked.

use crate::digest::{Digest, Seen};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format of `known-messages.json` (docs/state.md): raised only by a change that older
/// versions could not read right.
pub const VERSION: u32 = 1;

/// How many entries the store keeps, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub capacity: usize,
    pub ttl: chrono::Duration,
}

impl Bounds {
    pub const DEFAULT: Bounds = Bounds {
        capacity: 10_000,
        ttl: chrono::Duration::days(90),
    };
}

/// What is known of one message signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The first line of the first incident that had it (the digest's `first_seen`).
    pub first_seen: DateTime<Utc>,
    /// When an incident with it was last recorded (this host's clock): the TTL and the LRU
    /// order go by it, never by the lines' own timestamps, which may be old or guessed.
    pub last_seen: DateTime<Utc>,
    /// Incidents that had it, the last one included.
    pub incidents: u64,
    /// The incident (the shipped file's name, `docker.log-<suffix>.gz`) that last counted it:
    /// marking that incident again counts nothing (a crash repeated the step).
    pub last_incident: String,
}

/// `known-messages.json`: entries by signature ([`signature`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    pub version: u32,
    #[serde(default)]
    pub signatures: BTreeMap<String, Entry>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            version: VERSION,
            signatures: BTreeMap::new(),
        }
    }
}

/// A message's signature: the first 128 bits of the SHA-256 of its status and template, in
/// hex. It holds no log content, so the store is fasttrack's own state (0640), not a file
/// made from a log.
pub fn signature(status: Option<&str>, template: &str) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(status.unwrap_or("-").as_bytes());
    h.update(b"\n");
    h.update(template.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Whether `digest` still needs its marks: a digest whose messages all carry one was marked
/// already (the step is done once per incident).
pub fn needs_marks(digest: &Digest) -> bool {
    digest.messages.iter().any(|m| m.seen.is_none())
}

impl Store {
    /// Marks each top message of `digest`, the final digest of `incident` (the shipped file's
    /// name), and records the incident: new signatures are added, known ones counted once.
    pub fn mark(&mut self, incident: &str, digest: &mut Digest, now: DateTime<Utc>) {
        self.mark_within(Bounds::DEFAULT, incident, digest, now);
    }

    /// [`Store::mark`] with other bounds (tests).
    pub fn mark_within(
        &mut self,
        bounds: Bounds,
        incident: &str,
        digest: &mut Digest,
        now: DateTime<Utc>,
    ) {
        self.expire(bounds.ttl, incident, now);
        let first = digest
            .first_seen
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or(now, |t| t.with_timezone(&Utc));
        for m in &mut digest.messages {
            let entry = self
                .signatures
                .entry(signature(m.status.as_deref(), &m.template))
                .or_insert_with(|| Entry {
                    first_seen: first,
                    last_seen: now,
                    incidents: 0,
                    last_incident: String::new(),
                });
            if entry.last_incident != incident {
                entry.incidents = entry.incidents.saturating_add(1);
                entry.last_incident = incident.to_string();
            }
            entry.last_seen = entry.last_seen.max(now);
            m.seen = Some(Seen {
                first_seen: crate::digest::rfc3339(entry.first_seen),
                // An entry of this incident counts it (>= 1) unless the file was edited by hand.
                incidents: entry.incidents.saturating_sub(1),
            });
        }
        self.evict(bounds.capacity, incident);
    }

    /// Forgets the entries not seen for `ttl`, but for `incident`'s own.
    fn expire(&mut self, ttl: chrono::Duration, incident: &str, now: DateTime<Utc>) {
        let oldest = now - ttl;
        self.signatures
            .retain(|_, e| e.last_seen >= oldest || e.last_incident == incident);
    }

    /// Drops the least recently seen entries beyond `capacity`, but never `incident`'s own.
    fn evict(&mut self, capacity: usize, incident: &str) {
        let excess = self.signatures.len().saturating_sub(capacity);
        if excess == 0 {
            return;
        }
        let mut candidates: Vec<(DateTime<Utc>, String)> = self
            .signatures
            .iter()
            .filter(|(_, e)| e.last_incident != incident)
            .map(|(sig, e)| (e.last_seen, sig.clone()))
            .collect();
        candidates.sort();
        for (_, sig) in candidates.into_iter().take(excess) {
            self.signatures.remove(&sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Message;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    fn message(template: &str, status: &str) -> Message {
        Message {
            template: template.to_string(),
            count: 1,
            error: 0,
            example: format!("x {template}"),
            status: Some(status.to_string()),
            seen: None,
        }
    }

    fn digest(first: DateTime<Utc>, messages: &[(&str, &str)]) -> Digest {
        Digest {
            first_seen: Some(crate::digest::rfc3339(first)),
            messages: messages.iter().map(|(t, s)| message(t, s)).collect(),
            ..Digest::default()
        }
    }

    fn marks(d: &Digest) -> Vec<(u64, String)> {
        d.messages
            .iter()
            .map(|m| {
                let s = m.seen.clone().expect("marked");
                (s.incidents, s.first_seen)
            })
            .collect()
    }

    #[test]
    fn a_message_is_new_once_then_counted_with_its_first_time() {
        let mut store = Store::default();
        let mut one = digest(at(1, 10), &[("GET /a 502", "502"), ("GET /b 503", "503")]);
        store.mark("docker.log-1.gz", &mut one, at(1, 11));
        assert_eq!(
            marks(&one),
            vec![
                (0, "2026-11-01T10:00:00.000Z".into()),
                (0, "2026-11-01T10:00:00.000Z".into())
            ]
        );
        assert!(one
            .messages
            .iter()
            .all(|m| m.seen.as_ref().unwrap().is_new()));
        let mut two = digest(at(2, 10), &[("GET /a 502", "502"), ("GET /c 500", "500")]);
        store.mark("docker.log-2.gz", &mut two, at(2, 11));
        assert_eq!(
            marks(&two),
            vec![
                (1, "2026-11-01T10:00:00.000Z".into()),
                (0, "2026-11-02T10:00:00.000Z".into())
            ]
        );
        let mut three = digest(at(3, 10), &[("GET /a 502", "502")]);
        store.mark("docker.log-3.gz", &mut three, at(3, 11));
        assert_eq!(marks(&three)[0].0, 2);
        let a = &store.signatures[&signature(Some("502"), "GET /a 502")];
        assert_eq!((a.incidents, a.last_seen), (3, at(3, 11)));
        assert_eq!(a.last_incident, "docker.log-3.gz");
    }

    #[test]
    fn the_same_template_with_another_status_is_another_message() {
        let mut store = Store::default();
        let mut one = digest(at(1, 10), &[("GET /a", "502")]);
        store.mark("docker.log-1.gz", &mut one, at(1, 11));
        let mut two = digest(at(2, 10), &[("GET /a", "503")]);
        store.mark("docker.log-2.gz", &mut two, at(2, 11));
        assert_eq!(marks(&two)[0].0, 0);
        assert_ne!(signature(Some("502"), "GET /a"), signature(None, "GET /a"));
    }

    #[test]
    fn marking_an_incident_again_gives_the_same_marks_and_counts_nothing() {
        let mut store = Store::default();
        let mut one = digest(at(1, 10), &[("GET /a 502", "502")]);
        store.mark("docker.log-1.gz", &mut one, at(1, 11));
        let mut two = digest(at(2, 10), &[("GET /a 502", "502"), ("new", "500")]);
        let before_marks = two.clone();
        store.mark("docker.log-2.gz", &mut two, at(2, 11));
        let after_first = store.clone();
        // A crash after the store was saved and before the digest was: the step runs again
        // on the unmarked digest.
        let mut again = before_marks;
        store.mark("docker.log-2.gz", &mut again, at(2, 12));
        assert_eq!(marks(&again), marks(&two));
        assert_eq!(
            store.signatures[&signature(Some("502"), "GET /a 502")].incidents,
            after_first.signatures[&signature(Some("502"), "GET /a 502")].incidents
        );
        assert!(!needs_marks(&two));
        assert!(needs_marks(&digest(at(1, 1), &[("x", "500")])));
        assert!(!needs_marks(&digest(at(1, 1), &[])), "nothing to mark");
    }

    #[test]
    fn an_entry_not_seen_for_the_ttl_is_forgotten() {
        let bounds = Bounds {
            capacity: 100,
            ttl: chrono::Duration::days(90),
        };
        let mut store = Store::default();
        let mut one = digest(at(1, 10), &[("GET /a 502", "502"), ("GET /b 502", "502")]);
        store.mark_within(bounds, "docker.log-1.gz", &mut one, at(1, 11));
        // /b comes back within 90 days: kept, and its last_seen moves on.
        let mut two = digest(at(20, 10), &[("GET /b 502", "502")]);
        store.mark_within(
            bounds,
            "docker.log-2.gz",
            &mut two,
            at(1, 11) + chrono::Duration::days(80),
        );
        assert_eq!(marks(&two)[0].0, 1);
        // 91 days after the first: /a is forgotten (new again), /b is not.
        let mut three = digest(at(21, 10), &[("GET /a 502", "502"), ("GET /b 502", "502")]);
        store.mark_within(
            bounds,
            "docker.log-3.gz",
            &mut three,
            at(1, 11) + chrono::Duration::days(91),
        );
        assert_eq!(
            marks(&three).iter().map(|m| m.0).collect::<Vec<_>>(),
            [0, 2]
        );
    }

    #[test]
    fn past_its_capacity_the_least_recently_seen_go_first() {
        let bounds = Bounds {
            capacity: 3,
            ttl: chrono::Duration::days(90),
        };
        let mut store = Store::default();
        for (i, t) in ["a", "b", "c"].iter().enumerate() {
            let mut d = digest(at(1, 1), &[(t, "500")]);
            store.mark_within(bounds, &format!("f{i}"), &mut d, at(1, i as u32 + 1));
        }
        // a is seen again: b is now the least recently seen.
        let mut d = digest(at(2, 1), &[("a", "500")]);
        store.mark_within(bounds, "f3", &mut d, at(2, 1));
        // Two new ones: b and c go, never the incident's own.
        let mut d = digest(at(3, 1), &[("d", "500"), ("e", "500")]);
        store.mark_within(bounds, "f4", &mut d, at(3, 1));
        assert_eq!(store.signatures.len(), 3);
        for (t, kept) in [
            ("a", true),
            ("b", false),
            ("c", false),
            ("d", true),
            ("e", true),
        ] {
            assert_eq!(
                store.signatures.contains_key(&signature(Some("500"), t)),
                kept,
                "{t}"
            );
        }
        // An incident with more messages than the capacity keeps all of its own.
        let many: Vec<(String, &str)> = (0..5).map(|i| (format!("m{i}"), "500")).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(t, s)| (t.as_str(), *s)).collect();
        let mut d = digest(at(4, 1), &many);
        store.mark_within(bounds, "f5", &mut d, at(4, 1));
        assert_eq!(store.signatures.len(), 5);
        assert!(d.messages.iter().all(|m| m.seen.is_some()));
    }
}
