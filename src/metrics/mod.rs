//! Prometheus metrics for node_exporter's textfile collector (`--metrics-file`, issue 14).
//!
//! Pure here: the [`Counters`] kept in the state dir (they only grow, so `rate()` works across
//! the restarts syslog-ng does on every reload) and [`render`], which turns a [`Snapshot`]
//! into the text format. [`store`] keeps the counters, [`publish`] gathers a snapshot from
//! the disk and writes the file.
//!
//! Timestamps that never happened are 0 (an alert on `time() - x > N` then fires, as it
//! should); every labelled series is always present, so `increase()` sees its first step.

pub mod publish;
pub mod store;

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

pub use publish::{publish, Live};

/// What failed, as `fasttrack_failures_total{kind}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A shipment that a retry may fix (store unreachable, 5xx, expired credentials).
    Temporary,
    /// A shipment that no retry fixes (no such bucket, access denied).
    Permanent,
    /// A rotation that failed: the rename, syslog-ng's reopen or the wait for its close.
    Reopen,
    /// Compressing a rotated file failed (disk full...).
    Compress,
    /// A webhook notification could not be delivered.
    Notify,
}

impl FailureKind {
    pub const ALL: [FailureKind; 5] = [
        FailureKind::Temporary,
        FailureKind::Permanent,
        FailureKind::Reopen,
        FailureKind::Compress,
        FailureKind::Notify,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Temporary => "temporary",
            FailureKind::Permanent => "permanent",
            FailureKind::Reopen => "reopen",
            FailureKind::Compress => "compress",
            FailureKind::Notify => "notify",
        }
    }
}

/// The steps of a cycle whose last duration is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Renaming the log and asking syslog-ng to reopen it.
    Rotate,
    /// Waiting until syslog-ng has closed the renamed file.
    CloseWait,
    Compress,
    Ship,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Rotate, Step::CloseWait, Step::Compress, Step::Ship];

    pub fn label(self) -> &'static str {
        match self {
            Step::Rotate => "rotate",
            Step::CloseWait => "close_wait",
            Step::Compress => "compress",
            Step::Ship => "ship",
        }
    }
}

/// Failures by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Failures {
    pub temporary: u64,
    pub permanent: u64,
    pub reopen: u64,
    pub compress: u64,
    pub notify: u64,
}

impl Failures {
    pub fn get(&self, kind: FailureKind) -> u64 {
        match kind {
            FailureKind::Temporary => self.temporary,
            FailureKind::Permanent => self.permanent,
            FailureKind::Reopen => self.reopen,
            FailureKind::Compress => self.compress,
            FailureKind::Notify => self.notify,
        }
    }

    fn slot(&mut self, kind: FailureKind) -> &mut u64 {
        match kind {
            FailureKind::Temporary => &mut self.temporary,
            FailureKind::Permanent => &mut self.permanent,
            FailureKind::Reopen => &mut self.reopen,
            FailureKind::Compress => &mut self.compress,
            FailureKind::Notify => &mut self.notify,
        }
    }
}

/// The last duration of each step, in seconds (absent: it never ran).
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct StepDurations {
    pub rotate: Option<f64>,
    pub close_wait: Option<f64>,
    pub compress: Option<f64>,
    pub ship: Option<f64>,
}

impl StepDurations {
    pub fn get(&self, step: Step) -> Option<f64> {
        match step {
            Step::Rotate => self.rotate,
            Step::CloseWait => self.close_wait,
            Step::Compress => self.compress,
            Step::Ship => self.ship,
        }
    }

    pub fn set(&mut self, step: Step, seconds: f64) {
        let slot = match step {
            Step::Rotate => &mut self.rotate,
            Step::CloseWait => &mut self.close_wait,
            Step::Compress => &mut self.compress,
            Step::Ship => &mut self.ship,
        };
        *slot = Some(seconds);
    }
}

/// What the state dir remembers for the metrics (`<state-dir>/counters.toml`). Used both as
/// the running totals and as a change to add to them ([`Counters::absorb`]): every process
/// (an old and a new `watch` overlapping on a reload, `rotate` beside `watch`) adds only what
/// it did itself, under the store's lock, so nothing is counted twice or lost.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Counters {
    pub rotations: u64,
    pub shipped_files: u64,
    pub shipped_bytes: u64,
    pub failures: Failures,
    /// Lines `watch` read on stdin, and those among them whose status is not 5xx.
    pub lines_read: u64,
    pub lines_not_5xx: u64,
    /// Unix seconds of the last cycle that left nothing pending.
    pub last_success: Option<i64>,
    /// Unix seconds of the last rotation.
    pub last_rotation: Option<i64>,
    pub last_cycle: StepDurations,
}

impl Counters {
    /// A change of one failure of `kind`.
    pub fn failure(kind: FailureKind) -> Counters {
        let mut c = Counters::default();
        *c.failures.slot(kind) = 1;
        c
    }

    /// Adds `change`: counters add up (saturating), timestamps keep the latest, durations
    /// the change's where it has one.
    pub fn absorb(&mut self, change: &Counters) {
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.rotations, change.rotations);
        add(&mut self.shipped_files, change.shipped_files);
        add(&mut self.shipped_bytes, change.shipped_bytes);
        add(&mut self.lines_read, change.lines_read);
        add(&mut self.lines_not_5xx, change.lines_not_5xx);
        for kind in FailureKind::ALL {
            add(self.failures.slot(kind), change.failures.get(kind));
        }
        let latest = |a: Option<i64>, b: Option<i64>| a.max(b);
        self.last_success = latest(self.last_success, change.last_success);
        self.last_rotation = latest(self.last_rotation, change.last_rotation);
        for step in Step::ALL {
            if let Some(s) = change.last_cycle.get(step) {
                self.last_cycle.set(step, s);
            }
        }
    }

    /// Whether adding this changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Counters::default()
    }
}

/// Everything the metrics file says, at one moment.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    /// A `watch` runs on this host.
    pub up: bool,
    pub version: String,
    pub counters: Counters,
    /// Rotated files not shipped yet, their bytes, and the age of the oldest, in seconds.
    pub pending_files: u64,
    pub pending_bytes: u64,
    pub oldest_pending_age: f64,
    pub incident_open: bool,
    /// Incident lines of the open incident (0 when none is open).
    pub incident_lines: u64,
    pub notifications_pending: u64,
}

/// One metric family: its help line, type and samples (`labels`, value).
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP fasttrack_{name} {help}");
        let _ = writeln!(self.out, "# TYPE fasttrack_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "fasttrack_{name}");
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(self.out, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.head(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// A sample value: integers without a fraction, others with up to millisecond precision.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

const GAUGE: &str = "gauge";
const COUNTER: &str = "counter";

/// The metrics file's text (Prometheus text format 0.0.4).
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    let c = &s.counters;
    f.single(
        "up",
        GAUGE,
        "1 while a fasttrack watch runs on this host, 0 once it stopped.",
        flag(s.up),
    );
    f.head(
        "build_info",
        GAUGE,
        "The fasttrack version that wrote this file.",
    );
    f.sample("build_info", &[("version", &s.version)], 1.0);
    for (name, kind, help, value) in unlabelled(s) {
        f.single(name, kind, help, value);
    }
    f.head("failures_total", COUNTER, "Failures by kind: temporary and permanent shipments, reopen (rotation), compress, notify (webhook).");
    for kind in FailureKind::ALL {
        f.sample(
            "failures_total",
            &[("kind", kind.label())],
            c.failures.get(kind) as f64,
        );
    }
    f.head(
        "last_cycle_duration_seconds",
        GAUGE,
        "How long each step took the last time it ran.",
    );
    for step in Step::ALL {
        let secs = c.last_cycle.get(step).unwrap_or(0.0);
        f.sample(
            "last_cycle_duration_seconds",
            &[("step", step.label())],
            secs,
        );
    }
    out
}

/// (name, type, help, value) of the metrics without labels, in the file's order.
fn unlabelled(s: &Snapshot) -> [(&'static str, &'static str, &'static str, f64); 13] {
    let c = &s.counters;
    let ts = |t: Option<i64>| t.unwrap_or(0) as f64;
    [
        ("last_success_timestamp_seconds", GAUGE, "When a cycle last ended with nothing left pending (0: never).", ts(c.last_success)),
        ("last_rotation_timestamp_seconds", GAUGE, "When the log was last rotated (0: never).", ts(c.last_rotation)),
        ("pending_files", GAUGE, "Rotated files not shipped yet.", s.pending_files as f64),
        ("pending_bytes", GAUGE, "Bytes of the rotated files not shipped yet.", s.pending_bytes as f64),
        ("oldest_pending_age_seconds", GAUGE, "Age of the oldest rotated file not shipped yet (0: none).", s.oldest_pending_age),
        ("rotations_total", COUNTER, "Rotations of the log.", c.rotations as f64),
        ("shipped_files_total", COUNTER, "Rotated files shipped to the destination.", c.shipped_files as f64),
        ("shipped_bytes_total", COUNTER, "Bytes shipped to the destination.", c.shipped_bytes as f64),
        ("incident_open", GAUGE, "1 while 5xx lines wait to be fast-tracked.", flag(s.incident_open)),
        ("incident_lines", GAUGE, "Incident lines of the open incident.", s.incident_lines as f64),
        ("notifications_pending", GAUGE, "Webhook notifications waiting to be delivered.", s.notifications_pending as f64),
        ("lines_read_total", COUNTER, "Lines watch read from syslog-ng.", c.lines_read as f64),
        ("lines_not_5xx_total", COUNTER, "Lines syslog-ng passed whose status is not 5xx (a filter letting them through shows here).", c.lines_not_5xx as f64),
    ]
}

#[cfg(test)]
mod tests;
