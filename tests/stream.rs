//! A large rotated log uploaded while it is compressed (src/spool/stream.rs), against a real
//! s3s-fs: the object reads back identical, its metadata names the plain file, and a crash or
//! a lost state dir never costs a line nor leaves a second object.

use crate::util::s3::{Object, Proxy, PREFIX};
use crate::util::*;
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// Writes a docker.log of about `mb` MiB whose lines compress about 2:1 (random hex fields):
/// a `--part-size 5MiB` upload of it takes a few parts. Returns its bytes.
fn write_big_log(env: &TestEnv, mb: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut text = Vec::with_capacity(mb << 20);
    let mut seq = 0u64;
    while text.len() < mb << 20 {
        let line = docker_line(seq, 200);
        text.extend_from_slice(&line.as_bytes()[..line.len() - 1]);
        text.extend_from_slice(b" req=");
        for _ in 0..6 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.extend_from_slice(format!("{state:016x}").as_bytes());
        }
        text.push(b'\n');
        seq += 1;
    }
    std::fs::write(env.log(), &text).unwrap();
    text
}

fn the_gz(env: &TestEnv) -> Object {
    let mut objects: Vec<Object> = env
        .server()
        .download(&format!("{PREFIX}/{HOST}/"))
        .into_iter()
        .filter(|o| o.key.ends_with(".gz"))
        .collect();
    assert_eq!(
        objects.len(),
        1,
        "{:?}",
        objects.iter().map(|o| &o.key).collect::<Vec<_>>()
    );
    objects.remove(0)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn fasttrack_log(env: &TestEnv) -> String {
    std::fs::read_to_string(env.log_file()).unwrap_or_default()
}

fn nothing_half_done(env: &TestEnv) {
    assert_eq!(env.server().unfinished_uploads(), Vec::<String>::new());
    let journals = std::fs::read_dir(env.state().join("uploads"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(journals, 0, "multipart journals left");
}

#[test]
fn a_large_log_is_uploaded_while_compressed_and_reads_back_identical() {
    let env = TestEnv::new_s3();
    let plain = write_big_log(&env, 24);
    let out = env.run("rotate", &["--reopen", "none", "--part-size", "5MiB"]);
    env.assert_exit(&out, 0);
    let log = fasttrack_log(&env);
    assert!(log.contains("uploaded while compressed"), "{log}");
    // The line that says every part is at the store comes before the one that says shipped:
    // what lies between is the store's CompleteMultipartUpload (benches/bench.py, figure 10).
    let up = log
        .find("parts of s3://")
        .expect("no `all N parts ... are up` line");
    assert!(
        log[up..].contains("completing the multipart upload"),
        "{log}"
    );
    assert!(
        up < log.find("INFO shipped").expect("no shipped line"),
        "{log}"
    );
    let object = the_gz(&env);
    assert!(
        gunzip(&object.body) == plain,
        "the object does not read back as the log"
    );
    // The recovery copy on disk is the same bytes.
    let name = object.key.rsplit('/').next().unwrap();
    assert_eq!(
        std::fs::read(env.logs_dir().join(name)).unwrap(),
        object.body
    );
    // The plain file's sums identify it; the .gz's sha256 was not known when it began.
    let lines = plain.iter().filter(|&&b| b == b'\n').count().to_string();
    let m = &object.metadata;
    assert_eq!(m.get("lines"), Some(&lines));
    assert_eq!(m.get("uncompressed-bytes"), Some(&plain.len().to_string()));
    let crc = format!("{:08x}", crc32fast::hash(&plain));
    assert_eq!(m.get("uncompressed-crc32"), Some(&crc));
    assert_eq!(m.get("sha256"), None, "{m:?}");
    nothing_half_done(&env);
}

#[test]
fn upload_while_compressing_false_ships_the_whole_gz_with_its_sha256() {
    let env = TestEnv::new_s3();
    let plain = write_big_log(&env, 12);
    let out = env.run(
        "rotate",
        &[
            "--reopen",
            "none",
            "--part-size",
            "5MiB",
            "--upload-while-compressing=false",
        ],
    );
    env.assert_exit(&out, 0);
    assert!(!fasttrack_log(&env).contains("uploaded while compressed"));
    let object = the_gz(&env);
    assert!(gunzip(&object.body) == plain);
    assert!(
        object.metadata.contains_key("sha256"),
        "{:?}",
        object.metadata
    );
}

/// A crash after the object was completed but before it was recorded: the next run finds it
/// by the plain file's sums and counts it as shipped.
#[test]
fn a_streamed_object_is_recognised_after_the_state_is_lost() {
    let env = TestEnv::new_s3();
    let plain = write_big_log(&env, 12);
    let out = env.run("rotate", &["--reopen", "none", "--part-size", "5MiB"]);
    env.assert_exit(&out, 0);
    std::fs::remove_file(env.state().join("state.toml")).unwrap();
    let out = env.run("upload", &["--reopen", "none", "--part-size", "5MiB"]);
    env.assert_exit(&out, 0);
    let log = fasttrack_log(&env);
    assert!(log.contains("already at the destination"), "{log}");
    assert!(gunzip(&the_gz(&env).body) == plain);
    nothing_half_done(&env);
}

#[test]
fn kill_9_during_a_streamed_upload_recovers_with_one_object_and_every_line() {
    let mut env = TestEnv::new_s3();
    let plain = write_big_log(&env, 24);
    // A slow link, so that the upload is surely under way when it is killed.
    let proxy = Proxy::start(env.server().port, vec![], Some(2 << 20));
    env.endpoint = Some(proxy.endpoint());
    let child = env
        .fasttrack("rotate", &["--reopen", "none", "--part-size", "5MiB"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    kill_9_once_parts_are_up(&env, child, WAIT);

    env.endpoint = Some(env.server().endpoint());
    let out = env.run("upload", &["--reopen", "none", "--part-size", "5MiB"]);
    env.assert_exit(&out, 0);
    let log = fasttrack_log(&env);
    assert!(log.contains("aborted the multipart upload"), "{log}");
    assert!(gunzip(&the_gz(&env).body) == plain, "lines lost or doubled");
    nothing_half_done(&env);
}
