//! Debian's tinyproxy on loopback for the proxy tests: its own config, log and port in the
//! test's directory, Basic authentication when asked, stopped by pid on drop. Its log names
//! every request it forwarded (`Request (file descriptor N): PUT http://... HTTP/1.1`, `CONNECT
//! host:port`): the tests assert on it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Tinyproxy {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Tinyproxy {
    /// Starts tinyproxy in `dir`, requiring `user:password` when given.
    pub fn start(dir: &Path, auth: Option<(&str, &str)>) -> Tinyproxy {
        let port = super::s3::free_port();
        let log = dir.join("tinyproxy.log");
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile \"{}\"\nLogLevel Info\nMaxClients 50\n\
                 Allow 127.0.0.1\nDisableViaHeader Yes\n{}",
                log.display(),
                auth.map_or(String::new(), |(u, p)| format!("BasicAuth {u} {p}\n"))
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy not found: run the README test command (it installs tinyproxy)");
        let mut proxy = Tinyproxy { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!(
                    "tinyproxy exited at start ({status}):\n{}",
                    proxy.log_text()
                );
            }
            assert!(Instant::now() < deadline, "tinyproxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }

    pub fn url(&self, user: Option<(&str, &str)>) -> String {
        match user {
            Some((u, p)) => format!("http://{u}:{p}@127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The requests it received: `PUT http://127.0.0.1:9000/bucket/key`, `CONNECT host:443`.
    pub fn requests(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter_map(|l| l.split_once("): ").map(|(_, r)| r))
            .filter(|r| r.ends_with(" HTTP/1.1") || r.ends_with(" HTTP/1.0"))
            .map(|r| r.rsplit_once(' ').map_or(r, |(req, _)| req).to_string())
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
