//! Which routes hear of an incident, and what each is told: the incident's digest restricted
//! to the lines the route's filters pass (the shop team's counts hold only shop lines), when
//! it has at least the route's `min-lines` (and, for `only-new`, a message never seen before).

use super::Job;
use crate::config::{IncidentConfig, NotifyConfig, Route};
use crate::digest::{scan, Builder, Digest};
use std::path::Path;
use tracing::warn;

/// One job per route that wants the incident `job` tells of; `gz` is the shipped log, read
/// once (whatever the number of routes) when a route filters lines.
pub fn route_jobs(notify: &NotifyConfig, rules: &IncidentConfig, job: &Job, gz: &Path) -> Vec<Job> {
    let filtered: Vec<&Route> = notify
        .routes
        .iter()
        .filter(|r| !r.filter.is_empty())
        .collect();
    let mut restricted = restricted_digests(&filtered, rules, &job.digest, gz);
    notify
        .routes
        .iter()
        .filter_map(|route| {
            let digest = match restricted.iter().position(|(name, _)| *name == route.name) {
                Some(i) => restricted.swap_remove(i).1,
                None => job.digest.clone(),
            };
            wants(route, &digest).then(|| Job {
                route: route.name.clone(),
                digest,
                ..job.clone()
            })
        })
        .collect()
}

/// Whether `route` is told of an incident whose share for it is `digest`: enough lines, and
/// for `only-new`, a top message no earlier incident had.
pub fn wants(route: &Route, digest: &Digest) -> bool {
    digest.lines > 0
        && digest.lines >= route.min_lines
        && (!route.only_new
            || digest
                .messages
                .iter()
                .any(|m| m.seen.as_ref().is_some_and(|s| s.is_new())))
}

/// The marks of the whole incident's top messages (src/known) on the same messages of a
/// route's share; a message outside the whole digest's top has none (not counted as new).
fn copy_marks(share: &mut Digest, whole: &Digest) {
    for m in &mut share.messages {
        m.seen = whole
            .messages
            .iter()
            .find(|w| w.template == m.template && w.status == m.status)
            .and_then(|w| w.seen.clone());
    }
}

/// The digests of the lines each route's filter passes, from one scan of `gz`. If the file
/// cannot be read now, the routes get the whole digest (told too much rather than nothing).
fn restricted_digests(
    routes: &[&Route],
    rules: &IncidentConfig,
    whole: &Digest,
    gz: &Path,
) -> Vec<(String, Digest)> {
    if routes.is_empty() {
        return Vec::new();
    }
    let mut builder = Builder::new(&whole.source);
    builder.routed = routes
        .iter()
        .map(|r| (r.filter.clone(), Builder::new(&whole.source)))
        .collect();
    let scanned = match scan::scan_path_into(gz, rules, builder) {
        Ok(b) => b,
        Err(e) => {
            warn!(
                "cannot read {} for the routes' share of the incident ({e:#}); routes {} get the whole digest",
                gz.display(),
                routes.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")
            );
            return Vec::new();
        }
    };
    routes
        .iter()
        .zip(scanned.routed)
        .map(|(route, (_, b))| {
            let mut d = b.digest(&whole.reporter, whole.messages.len().max(rules.top));
            d.log = whole.log.clone();
            d.incident_id = whole.incident_id.clone();
            d.source = whole.source.clone();
            copy_marks(&mut d, whole);
            (route.name.clone(), d)
        })
        .collect()
}
