//! The real Prometheus tools: `promtool` (Debian's `prometheus` package) and a
//! `prometheus-node-exporter` on a free loopback port, killed by pid on drop. Both are
//! installed by scripts/test-deps.sh; a missing or failing one fails the test loudly.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The packaging/ directory of the repository.
pub fn packaging_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging")
}

/// Runs `promtool ARGS` in `cwd` with `stdin`, and asserts it succeeded.
pub fn promtool(cwd: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): install Debian's prometheus package (scripts/test-deps.sh)")
        });
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A node_exporter serving only its textfile collector for `dir`, on 127.0.0.1.
pub struct NodeExporter {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl NodeExporter {
    /// Starts it and waits until it answers; panics with its output if it cannot.
    pub fn start(textfile_dir: &Path, log: &Path) -> NodeExporter {
        let port = free_port();
        let stderr = std::fs::File::create(log).unwrap();
        let child = Command::new("prometheus-node-exporter")
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                textfile_dir.display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start prometheus-node-exporter ({e}): install Debian's \
                     prometheus-node-exporter package (scripts/test-deps.sh)"
                )
            });
        let mut exporter = NodeExporter {
            child,
            port,
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = exporter.child.try_wait().unwrap() {
                panic!(
                    "prometheus-node-exporter exited at start ({status}):\n{}",
                    exporter.output()
                );
            }
            if exporter.get("/metrics").is_ok() {
                return exporter;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus-node-exporter did not answer on 127.0.0.1:{port} within 15 s:\n{}",
                exporter.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What it logged.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The body of `GET path` (HTTP/1.0: the server closes the connection after it).
    pub fn get(&self, path: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut response = String::new();
        s.read_to_string(&mut response)?;
        match response.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
                Ok(body.to_string())
            }
            _ => Err(std::io::Error::other(format!(
                "unexpected answer: {response}"
            ))),
        }
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The samples of a metrics text: `name{labels}` -> value.
pub fn samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}
