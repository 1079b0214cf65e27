//! The s3:// destination against real S3-compatible servers (SigV4 checked) on loopback: end
//! to end from syslog-ng, multipart with bounded memory, outages, faults, kill -9 mid-upload,
//! wrong bucket and credentials, `fasttrack check`. The key tests run against both s3s-fs and
//! `rclone serve s3` ([`on_each_store!`]); what rclone does differently is tested as such.

use crate::util::s3::{Fault, Proxy, BUCKET, PREFIX};
use crate::util::*;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// Runs each named `fn NAME(store: Store)` once per S3 implementation, as the tests
/// `s3::NAME::s3s_fs` and `s3::NAME::rclone` (a module and a function may share a name).
macro_rules! on_each_store {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::util::Store;
            #[test]
            fn s3s_fs() {
                super::$name(Store::S3sFs)
            }
            #[test]
            fn rclone() {
                super::$name(Store::Rclone)
            }
        }
    )*};
}

on_each_store!(
    syslog_ng_to_s3_every_line_exactly_once_with_metadata,
    an_outage_is_survived_by_watch_without_a_restart_and_by_upload,
    wrong_bucket_and_credentials_are_permanent_errors_that_say_what_to_do,
    check_reports_each_item,
    a_store_that_holds_other_bytes_than_were_sent_is_caught_and_nothing_is_recorded,
    a_retry_after_a_store_restart_and_a_lost_state_finds_the_object_already_there,
);
// On s3s-fs only: the multipart tests (rclone cannot start a multipart upload for the AWS SDK:
// rclone_cannot_start_a_multipart_upload_... shows what happens then), and those about
// fasttrack's own side (a proxy's faults, credential files), which no store changes.

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_log(env: &TestEnv, from: u64, to: u64) {
    let text: String = (from..to).map(|s| docker_line(s, 200)).collect();
    std::fs::write(env.log(), text).unwrap();
}

/// A valid gzip file of `mb` MiB that does not compress (stored blocks of random bytes), as a
/// rotated file waiting to be shipped; returns its sha256.
fn big_rotated_gz(env: &TestEnv, name: &str, mb: usize) -> Vec<u8> {
    let path = env.logs_dir().join(name);
    let file = std::fs::File::create(&path).unwrap();
    let mut gz = GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::none());
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mb {
        for b in chunk.chunks_mut(8) {
            // xorshift: fast, incompressible enough for deflate
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b.copy_from_slice(&state.to_le_bytes()[..b.len()]);
        }
        gz.write_all(&chunk).unwrap();
    }
    gz.finish()
        .unwrap()
        .into_inner()
        .unwrap()
        .sync_all()
        .unwrap();
    Sha256::digest(std::fs::read(&path).unwrap()).to_vec()
}

fn syslog_ng_to_s3_every_line_exactly_once_with_metadata(store: Store) {
    let env = TestEnv::new_s3_on(store);
    let sng = Arc::new(Mutex::new(SyslogNg::start(
        &env,
        Some(&["--quiet", "300ms"]),
    )));
    let mut seq = 0;
    // three incidents separated by quiet periods, normal traffic around them
    for _ in 0..3 {
        {
            let mut s = sng.lock().unwrap();
            for i in 0..300 {
                s.send(&docker_line(seq, if i % 50 == 0 { 503 } else { 200 }));
                seq += 1;
            }
        }
        let before = env.shipped().len();
        env.wait_for("the incident to be shipped", WAIT, || {
            env.shipped().len() > before
        });
    }
    env.expect_every_line_once(seq);

    let (objects, digests): (Vec<_>, Vec<_>) = env
        .server()
        .download(&format!("{PREFIX}/{HOST}/"))
        .into_iter()
        .partition(|o| o.key.ends_with(".gz"));
    assert_eq!(objects.len(), 3);
    // each log has its digest beside it, and the digest's headline is in the log's metadata
    assert_eq!(digests.len(), 3);
    for d in &digests {
        assert_eq!(
            d.content_type.as_deref(),
            Some("application/json"),
            "{}",
            d.key
        );
        let digest: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        let log = objects
            .iter()
            .find(|o| o.key == d.key.replace(".json", ".gz"))
            .unwrap_or_else(|| panic!("no log for {}", d.key));
        assert_eq!(
            log.metadata.get("incident-lines"),
            Some(&digest["lines"].to_string()),
            "{}",
            log.key
        );
    }
    for o in &objects {
        assert_eq!(
            o.content_type.as_deref(),
            Some("application/gzip"),
            "{}",
            o.key
        );
        assert_eq!(o.metadata.get("host").map(String::as_str), Some(HOST));
        assert_eq!(
            o.metadata.get("source-log"),
            Some(&env.log().display().to_string())
        );
        let lines = gunzip_lines(&o.body);
        assert_eq!(
            o.metadata.get("lines"),
            Some(&lines.len().to_string()),
            "{}",
            o.key
        );
        let mut plain = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(&o.body[..]),
            &mut plain,
        )
        .unwrap();
        assert_eq!(
            o.metadata.get("uncompressed-crc32"),
            Some(&format!("{:08x}", crc32fast::hash(plain.as_bytes()))),
            "{}",
            o.key
        );
        let sha: String = Sha256::digest(&o.body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(o.metadata.get("sha256"), Some(&sha), "{}", o.key);
    }
    assert!(env.server().unfinished_uploads().is_empty());
}

#[test]
fn a_200_mb_file_goes_up_as_multipart_with_bounded_memory() {
    let env = TestEnv::new_s3();
    let sha = big_rotated_gz(&env, "docker.log-1000.gz", 200);
    // GNU time reports the peak RSS of fasttrack itself.
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kib=%M"])
        .arg(BIN)
        .arg("upload")
        .args(env.common_args())
        .args([
            "--reopen",
            "none",
            "--part-size",
            "8MiB",
            "--upload-concurrency",
            "4",
            // The other multipart tests use the default (when-supported): cover both.
            "--checksum",
            "when-required",
        ])
        .envs(AWS_ENV.iter().copied())
        .output()
        .expect("/usr/bin/time (package time)");
    env.assert_exit(&out, 0);
    let err = stderr(&out);
    let peak: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {err}"));
    println!("200 MiB multipart upload: peak RSS {} MiB", peak / 1024);
    // Parts stream from the file: the process itself (~20 MiB) and small read buffers.
    assert!(peak < 40 * 1024, "peak RSS {peak} KiB");
    let shipped = env.shipped();
    assert_eq!(shipped.len(), 1);
    assert_eq!(
        Sha256::digest(&shipped[0].body).to_vec(),
        sha,
        "downloaded bytes differ"
    );
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    assert!(log.contains("shipped"), "{log}");
    assert!(env.server().unfinished_uploads().is_empty());
}

/// rclone serve s3 answers CreateMultipartUpload with an `<InitiateMultipartUpload>` document
/// (S3's is `<InitiateMultipartUploadResult>`), which the AWS SDK for Rust cannot read. A file
/// above `--part-size` is then kept, pending, with nothing left half-done on the store; a
/// `--part-size` above its size ships it in one PutObject.
#[test]
fn rclone_cannot_start_a_multipart_upload_so_a_larger_part_size_ships_the_file_whole() {
    let env = TestEnv::new_s3_on(Store::Rclone);
    let sha = big_rotated_gz(&env, "docker.log-1000.gz", 6);
    let out = env.run("upload", &["--reopen", "none", "--part-size", "5MiB"]);
    env.assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("InitiateMultipartUpload"),
        "{}",
        stderr(&out)
    );
    assert!(env.shipped().is_empty(), "{}", env.dump());
    assert_eq!(env.server().unfinished_uploads(), Vec::<String>::new());
    assert_eq!(env.local_gz_names(), ["docker.log-1000.gz"]);

    let out = env.run("upload", &["--reopen", "none", "--part-size", "8MiB"]);
    env.assert_exit(&out, 0);
    let shipped = env.shipped();
    assert_eq!(shipped.len(), 1);
    assert_eq!(Sha256::digest(&shipped[0].body).to_vec(), sha);
}

fn an_outage_is_survived_by_watch_without_a_restart_and_by_upload(store: Store) {
    let mut env = TestEnv::new_s3_on(store);
    write_log(&env, 0, 10);
    env.server_mut().stop();
    let mut watch = env.spawn_watch(&[
        "--quiet",
        "200ms",
        "--reopen",
        "none",
        "--retry-max-delay",
        "1s",
    ]);
    let mut stdin = watch.stdin.take().unwrap();
    stdin.write_all(b"GET / HTTP/1.1 500 1\n").unwrap();
    env.wait_for("the failure to be recorded", WAIT, || {
        let out = env.run("status", &[]);
        String::from_utf8_lossy(&out.stdout).contains("PENDING: compressed, not shipped yet")
            && String::from_utf8_lossy(&out.stdout).contains("will be retried")
    });
    env.server_mut().restart();
    env.wait_for("watch to ship once the server is back", WAIT, || {
        env.shipped().len() == 1
    });
    drop(stdin);
    assert_eq!(watch.wait().unwrap().code(), Some(0));

    // The same with rotate (exit 3, file kept) then upload.
    write_log(&env, 10, 20);
    env.server_mut().stop();
    let out = env.run("rotate", &["--reopen", "none"]);
    env.assert_exit(&out, 3);
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
    assert_eq!(env.local_gz_names().len(), 2);
    env.server_mut().restart();
    let out = env.run("upload", &["--reopen", "none"]);
    env.assert_exit(&out, 0);
    assert_eq!(env.shipped().len(), 2);
    assert_exactly_once_in_order(&env, 20);
}

#[test]
fn slow_down_and_connection_resets_are_retried_and_shipped_once() {
    let mut env = TestEnv::new_s3();
    let proxy = Proxy::start(
        env.server().port,
        vec![
            Fault::SlowDown,
            Fault::Reset,
            Fault::SlowDown,
            Fault::Reset,
            Fault::SlowDown,
        ],
        None,
    );
    env.endpoint = Some(proxy.endpoint());
    write_log(&env, 0, 50);
    let out = env.run("rotate", &["--reopen", "none"]);
    env.assert_exit(&out, 0);
    assert_eq!(proxy.faulted.load(std::sync::atomic::Ordering::SeqCst), 5);
    assert_eq!(env.shipped_names().len(), 1);
    assert_exactly_once_in_order(&env, 50);
}

#[test]
fn kill_9_during_a_multipart_upload_leaves_no_orphan_and_ships_once() {
    let mut env = TestEnv::new_s3();
    let sha = big_rotated_gz(&env, "docker.log-2000.gz", 48);
    // A slow link, so that the upload is surely under way when it is killed.
    let proxy = Proxy::start(env.server().port, vec![], Some(8 << 20));
    env.endpoint = Some(proxy.endpoint());
    let child = env
        .fasttrack(
            "upload",
            &[
                "--reopen",
                "none",
                "--part-size",
                "5MiB",
                "--upload-concurrency",
                "2",
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    kill_9_once_parts_are_up(&env, child, WAIT);
    assert_eq!(
        std::fs::read_dir(env.state().join("uploads"))
            .unwrap()
            .count(),
        1,
        "journal"
    );

    env.endpoint = Some(env.server().endpoint());
    let out = env.run("upload", &["--reopen", "none", "--part-size", "5MiB"]);
    env.assert_exit(&out, 0);
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    assert!(log.contains("aborted the multipart upload"), "{log}");
    assert_eq!(env.server().unfinished_uploads(), Vec::<String>::new());
    let shipped = env.shipped();
    assert_eq!(shipped.len(), 1);
    assert_eq!(Sha256::digest(&shipped[0].body).to_vec(), sha);
}

fn wrong_bucket_and_credentials_are_permanent_errors_that_say_what_to_do(store: Store) {
    let env = TestEnv::new_s3_on(store);
    write_log(&env, 0, 10);
    let out = env.run(
        "rotate",
        &["--reopen", "none", "--dest", "s3://no-such-bucket/x"],
    );
    env.assert_exit(&out, 1);
    let e = stderr(&out);
    assert!(
        e.contains("bucket no-such-bucket does not exist in us-east-1")
            && e.contains("create it or fix --dest"),
        "{e}"
    );
    assert_eq!(env.local_gz_names().len(), 1, "the file is kept");

    let out = env
        .fasttrack("upload", &["--reopen", "none"])
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .output()
        .unwrap();
    env.assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("secret key does not match"),
        "{}",
        stderr(&out)
    );

    let out = env
        .fasttrack("upload", &["--reopen", "none"])
        .env("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN")
        .output()
        .unwrap();
    env.assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("fix the credentials"),
        "{}",
        stderr(&out)
    );

    let status = env.run("status", &[]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("last error"));
    // fixed: it goes
    let out = env.run("upload", &["--reopen", "none"]);
    env.assert_exit(&out, 0);
    assert_exactly_once_in_order(&env, 10);
}

fn check_reports_each_item(store: Store) {
    let env = TestEnv::new_s3_on(store);
    let out = env.run("check", &["--reopen", "none"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    env.assert_exit(&out, 0);
    for line in [
        "OK    credentials",
        "OK    bucket incident-logs",
        "OK    test write",
        "OK    test remove",
    ] {
        assert!(text.contains(line), "{text}");
    }
    assert!(env.shipped().is_empty(), "the test object is removed");

    let out = env.run(
        "check",
        &[
            "--reopen",
            "none",
            "--dest",
            &format!("s3://missing-{BUCKET}"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    env.assert_exit(&out, 1);
    assert!(
        text.contains(
            "FAIL  bucket missing-incident-logs: bucket missing-incident-logs does not exist"
        ),
        "{text}"
    );
}

fn a_store_that_holds_other_bytes_than_were_sent_is_caught_and_nothing_is_recorded(store: Store) {
    let mut env = TestEnv::new_s3_on(store);
    let proxy = Proxy::wrong_etags(env.server().port);
    env.endpoint = Some(proxy.endpoint());
    write_log(&env, 0, 10);
    let out = env.run("rotate", &["--reopen", "none"]);
    env.assert_exit(&out, 1);
    let e = stderr(&out);
    assert!(e.contains("does not hold the bytes that were sent"), "{e}");
    assert!(e.contains("--checksum when-required"), "{e}");
    // never recorded as shipped, never left under the final name, kept locally
    env.endpoint = Some(env.server().endpoint());
    assert!(env.shipped().is_empty(), "{}", env.dump());
    assert_eq!(env.local_gz_names().len(), 1);
    let status = env.run("status", &[]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("PENDING"));
    // The fix the message names works (here the store was fine all along: the proxy is gone).
    let out = env.run(
        "upload",
        &["--reopen", "none", "--checksum", "when-required"],
    );
    env.assert_exit(&out, 0);
    assert_exactly_once_in_order(&env, 10);
}

#[test]
fn credentials_from_a_file_work_without_home_or_environment() {
    // syslog-ng's child may have no HOME: --aws-credentials-file and --profile must suffice.
    let env = TestEnv::new_s3();
    let creds = env.path().join("aws-credentials");
    std::fs::write(
        &creds,
        format!(
            "[fasttrack]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            crate::util::s3::ACCESS_KEY,
            crate::util::s3::SECRET_KEY
        ),
    )
    .unwrap();
    write_log(&env, 0, 10);
    let creds = creds.display().to_string();
    let out = env
        .fasttrack(
            "rotate",
            &[
                "--reopen",
                "none",
                "--aws-credentials-file",
                &creds,
                "--profile",
                "fasttrack",
            ],
        )
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("HOME")
        .output()
        .unwrap();
    env.assert_exit(&out, 0);
    assert_exactly_once_in_order(&env, 10);

    let out = env.run("rotate", &["--aws-credentials-file", "/nonexistent/creds"]);
    env.assert_exit(&out, 2);
    assert!(stderr(&out).contains("--aws-credentials-file /nonexistent/creds: no such file"));
}

fn a_retry_after_a_store_restart_and_a_lost_state_finds_the_object_already_there(store: Store) {
    let mut env = TestEnv::new_s3_on(store);
    write_log(&env, 0, 10);
    env.assert_exit(&env.run("rotate", &["--reopen", "none"]), 0);
    std::fs::remove_dir_all(env.state()).unwrap();
    // rclone forgets the objects' metadata (our sha256) on a restart: the object is then
    // recognised by its ETag, the MD5 of its bytes.
    env.server_mut().restart();
    let out = env.run("upload", &["--reopen", "none"]);
    env.assert_exit(&out, 0);
    let log = std::fs::read_to_string(env.log_file()).unwrap();
    assert!(log.contains("already at the destination"), "{log}");
    assert_eq!(env.shipped().len(), 1);

    // A different object under the same key is never overwritten.
    let name = env.local_gz_names()[0].clone();
    std::fs::remove_dir_all(env.state()).unwrap();
    let local = env.logs_dir().join(&name);
    let mut other = GzEncoder::new(Vec::new(), flate2::Compression::default());
    other.write_all(b"another host's log\n").unwrap();
    std::fs::write(&local, other.finish().unwrap()).unwrap();
    let out = env.run("upload", &["--reopen", "none"]);
    env.assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("already exists with different contents"),
        "{}",
        stderr(&out)
    );
    assert_exactly_once_in_order(&env, 10);
}
