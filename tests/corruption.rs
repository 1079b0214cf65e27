//! Damaged state: `state.toml`, the `incident` marker, `incident-digest.json` and the digest
//! beside a log, truncated or with bytes changed at random. Each gives a clear error or a safe
//! default, never a panic, and no file is lost.

use crate::util::*;
use fasttrack::digest::{sidecar, stream};
use fasttrack::state::StateDir;
use proptest::prelude::*;

/// A valid file of each kind, as a real run writes them.
fn originals() -> (String, Vec<u8>, Vec<u8>) {
    let state = "last-suffix = 1795324210\n\n[last-rotation]\nat = \"2026-11-22T04:26:15Z\"\n\
                 file = \"docker.log-1795324210\"\nbytes = 2048\n\n[shipped.\"docker.log-1795324210.gz\"]\n\
                 at = \"2026-11-22T04:26:16Z\"\ndest = \"file:///srv/logs\"\nkey = \"testhost/docker.log-1795324210.gz\"\n\
                 bytes = 512\n\n[digests.\"docker.log-1795324210.gz\"]\nlines = 20\nbytes = 2048\ncrc32 = 12345\n"
        .to_string();
    let mut b = fasttrack::digest::Builder::new("stream");
    for i in 0..20 {
        b.add(
            &format!("Nov 22 04:26:15 web1 docker/api[1]: \"GET /a/{i} HTTP/1.1\" 502 0"),
            chrono::Utc::now(),
        );
    }
    let digest = serde_json::to_vec(&b.digest("testhost", 10)).unwrap();
    let persisted = serde_json::to_vec(&serde_json::json!({"clean": true, "builder": b})).unwrap();
    (state, digest, persisted)
}

/// Truncated at `cut`, with up to 4 bytes replaced.
fn damage(bytes: &[u8], cut: usize, flips: &[(usize, u8)]) -> Vec<u8> {
    let mut out = bytes[..cut % (bytes.len() + 1)].to_vec();
    for &(at, byte) in flips {
        if !out.is_empty() {
            let i = at % out.len();
            out[i] = byte;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn damaged_state_files_give_a_clear_error_or_a_safe_default(
        cut in 0usize..4096,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    ) {
        let (state, digest, persisted) = originals();
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(&dir.path().join("state")).unwrap();

        // state.toml: read whole, or an error naming the file and what to do.
        let bad = damage(state.as_bytes(), cut, &flips);
        std::fs::write(sd.path().join("state.toml"), &bad).unwrap();
        match sd.load() {
            Ok(_) => {}
            Err(e) => {
                let msg = format!("{e:#}");
                prop_assert!(msg.contains("state.toml") && (msg.contains("move it away") || msg.contains("cannot read")), "{}", msg);
            }
        }
        prop_assert_eq!(std::fs::read(sd.path().join("state.toml")).unwrap(), bad, "state.toml left as it was");

        // The incident marker: whatever its content, it still means an incident is open.
        std::fs::write(sd.path().join("incident"), damage(b"2026-11-22T04:26:15Z\n", cut, &flips)).unwrap();
        prop_assert!(sd.incident().is_some());

        // incident-digest.json: read back, or a fresh digest marked inexact (the rotated
        // file is then scanned); status shows it or nothing.
        let bad = damage(&persisted, cut, &flips);
        std::fs::write(sd.path().join("incident-digest.json"), &bad).unwrap();
        let b = stream::load_open(sd.path(), None, true);
        if serde_json::from_slice::<serde_json::Value>(&bad).is_err() {
            prop_assert!(!b.exact, "a digest that could not be read is inexact");
        }
        let _ = stream::peek_open(sd.path());

        // The digest beside a log: read back, or an error that says it is rebuilt.
        let bad = damage(&digest, cut, &flips);
        let path = dir.path().join("docker.log-1.json");
        std::fs::write(&path, &bad).unwrap();
        match sidecar::read_sidecar(&path) {
            Ok(d) => prop_assert!(d.is_some()),
            Err(e) => {
                let msg = format!("{e:#}");
                prop_assert!(msg.contains("remove it and it is rebuilt"), "{}", msg);
            }
        }
    }
}

/// End to end: with `state.toml` damaged, `upload` stops with an error that names it and
/// leaves every rotated file where it is; moved away, the next run ships them.
#[test]
fn a_damaged_state_file_stops_the_run_and_loses_nothing() {
    let env = TestEnv::new();
    std::fs::write(env.log(), docker_line(0, 502)).unwrap();
    let out = env.run("rotate", &["--reopen", "none"]);
    env.assert_exit(&out, 0);
    std::fs::write(env.log(), docker_line(1, 502)).unwrap();
    let state = env.state().join("state.toml");
    std::fs::write(&state, "last-suffix = \"oops\n").unwrap();
    let before = env.local_gz_names();
    let out = env.run("rotate", &["--reopen", "none"]);
    env.assert_exit(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("state.toml") && err.contains("move it away"),
        "{err}"
    );
    assert_eq!(env.local_gz_names(), before, "{}", env.dump());
    assert!(env.log().exists(), "the live log was not touched");
    std::fs::rename(&state, env.state().join("state.toml.damaged")).unwrap();
    let out = env.run("rotate", &["--reopen", "none"]);
    env.assert_exit(&out, 0);
    env.expect_every_line_once(2);
}
