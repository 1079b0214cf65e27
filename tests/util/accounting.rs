//! The exact accounting of the lines a test sent: every line found exactly once, in order, in
//! the shipped objects (oldest suffix first) then the live log; every object complete, valid
//! gzip matching its metadata, with its digest beside it (S3). Shared by the reliability soak
//! and the fault-injection suite.

use super::s3::PREFIX;
use super::{TestEnv, HOST};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

/// The exact accounting of one run.
#[derive(Debug, Default)]
pub struct Accounting {
    pub sent: u64,
    pub found: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub in_order: bool,
    pub objects: u64,
    /// Objects that are not complete, valid gzip matching their checksum and line count,
    /// plus multipart uploads the server still holds.
    pub partial: u64,
    /// Rotated files still waiting locally (none once fasttrack has settled).
    pub left_local: u64,
    pub problems: Vec<String>,
}

impl Accounting {
    pub fn ok(&self) -> bool {
        self.missing == 0
            && self.duplicates == 0
            && self.in_order
            && self.partial == 0
            && self.found == self.sent
            && self.problems.is_empty()
    }
}

/// The `seq=N` numbers of the lines in `text`, in order.
pub fn seqs_in(text: &[u8], out: &mut Vec<u64>) -> u64 {
    let mut lines = 0;
    for line in text.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        lines += 1;
        if let Some(at) = line.windows(4).position(|w| w == b"seq=") {
            let digits: Vec<u8> = line[at + 4..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect();
            if let Ok(n) = std::str::from_utf8(&digits).unwrap_or("").parse() {
                out.push(n);
            }
        }
    }
    lines
}

/// Counts every line of the shipped objects (from the S3 server, or the destination
/// directory) then of the live log, and checks each object against its metadata.
pub fn account(env: &TestEnv, sent: u64) -> Accounting {
    let mut acc = Accounting {
        sent,
        ..Default::default()
    };
    let mut found = Vec::with_capacity(sent as usize);
    let mut objects: Vec<(String, Vec<u8>, BTreeMap<String, String>)> = match &env.s3 {
        Some(server) => {
            acc.partial += server.unfinished_uploads().len() as u64;
            server
                .download(&format!("{PREFIX}/{HOST}/"))
                .into_iter()
                .map(|o| {
                    let name = o.key.rsplit('/').next().unwrap_or_default().to_string();
                    (name, o.body, o.metadata.into_iter().collect())
                })
                .collect()
        }
        None => env
            .shipped()
            .into_iter()
            .map(|o| (o.name, o.body, BTreeMap::new()))
            .collect(),
    };
    // Every log object has its digest beside it (`docker.log-N.json`, checked below).
    let digests: BTreeMap<String, Vec<u8>> = objects
        .iter()
        .filter(|(name, _, _)| name.ends_with(".json"))
        .map(|(name, body, _)| (name.clone(), body.clone()))
        .collect();
    objects.retain(|(name, _, _)| !name.ends_with(".json"));
    objects.sort_by_key(|(name, _, _)| suffix_of(name));
    let mut last_suffix = None;
    for (name, body, meta) in &objects {
        acc.objects += 1;
        let suffix = suffix_of(name);
        if suffix.is_none() || suffix <= last_suffix {
            acc.problems
                .push(format!("object {name}: not a rotated name in order"));
        }
        last_suffix = suffix;
        let mut plain = Vec::new();
        if let Err(e) = flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut plain) {
            acc.partial += 1;
            acc.problems
                .push(format!("object {name}: not valid gzip: {e}"));
            continue;
        }
        let lines = seqs_in(&plain, &mut found);
        if env.s3.is_some() {
            let digest_name = name.replace(".gz", ".json");
            let digest = digests
                .get(&digest_name)
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
            match digest {
                Some(d) if d["log"] == serde_json::json!(name) && d["lines"].is_u64() => {}
                Some(_) => acc
                    .problems
                    .push(format!("object {digest_name}: not the digest of {name}")),
                None => acc
                    .problems
                    .push(format!("object {name}: no digest {digest_name} beside it")),
            }
        }
        if let Some(sha) = meta.get("sha256") {
            if *sha != hex(&Sha256::digest(body)) {
                acc.partial += 1;
                acc.problems
                    .push(format!("object {name}: sha256 differs from its metadata"));
            }
        }
        if let Some(n) = meta.get("lines") {
            if *n != lines.to_string() {
                acc.partial += 1;
                acc.problems
                    .push(format!("object {name}: {lines} lines, metadata says {n}"));
            }
        }
    }
    // Rotated files not yet compressed (plain docker.log-N) are still waiting locally.
    for entry in std::fs::read_dir(env.logs_dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("docker.log-") && !name.ends_with(".gz") && !name.ends_with(".json") {
            acc.left_local += 1;
        }
    }
    if let Ok(live) = std::fs::read(env.log()) {
        seqs_in(&live, &mut found);
    }
    acc.found = found.len() as u64;
    let mut seen = vec![0u32; sent as usize];
    for &s in &found {
        match seen.get_mut(s as usize) {
            Some(n) => *n += 1,
            None => acc.problems.push(format!("line seq={s} was never sent")),
        }
    }
    acc.missing = seen.iter().filter(|&&n| n == 0).count() as u64;
    acc.duplicates = seen.iter().map(|&n| u64::from(n.saturating_sub(1))).sum();
    acc.in_order = found.windows(2).all(|w| w[0] < w[1]);
    if acc.missing > 0 {
        let first: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] == 0).take(10).collect();
        acc.problems.push(format!("first missing: {first:?}"));
    }
    acc
}

pub fn suffix_of(name: &str) -> Option<u64> {
    name.strip_prefix("docker.log-")?
        .strip_suffix(".gz")?
        .parse()
        .ok()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The numbers of the lines tagged `src=NAME n=K` (sources whose lines are numbered apart, such
/// as each stream of each container), each source's in the order they are found in `lines`.
pub fn numbers_by_source(lines: &[String]) -> BTreeMap<String, Vec<u64>> {
    let mut found: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in lines {
        let Some(at) = line.find(" src=") else {
            continue;
        };
        let mut fields = line[at + 5..].split(' ');
        let source = fields.next().unwrap_or_default();
        let Some(n) = fields
            .next()
            .and_then(|f| f.strip_prefix("n="))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        found.entry(source.to_string()).or_default().push(n);
    }
    found
}

/// What differs between the numbers found per source and `0..count` for each expected source:
/// missing, duplicated or out-of-order numbers, and sources nobody sent. Empty when exact.
pub fn per_source_problems(
    found: &BTreeMap<String, Vec<u64>>,
    expected: &BTreeMap<String, u64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (source, &count) in expected {
        let numbers = found.get(source).map(Vec::as_slice).unwrap_or_default();
        if numbers.iter().copied().eq(0..count) {
            continue;
        }
        let mut seen = vec![0u32; count as usize];
        for &n in numbers {
            if let Some(c) = seen.get_mut(n as usize) {
                *c += 1;
            }
        }
        let missing: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] == 0).take(10).collect();
        let duplicated: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] > 1).take(10).collect();
        problems.push(format!(
            "{source}: sent {count}, found {} (missing {missing:?}, duplicated {duplicated:?}, in order: {})",
            numbers.len(),
            numbers.windows(2).all(|w| w[0] < w[1])
        ));
    }
    for source in found.keys().filter(|s| !expected.contains_key(*s)) {
        problems.push(format!("{source}: lines from a source nobody sent"));
    }
    problems
}
