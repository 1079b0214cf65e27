//! A webhook receiver on loopback for the notification tests: it records every request body
//! and answers as told (200, 500 for the first N requests, or never).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy)]
pub enum Answer {
    Ok,
    /// HTTP 500 to the first `n` requests, then 200.
    FailFirst(usize),
    /// Reads the request and never answers (until the receiver is dropped).
    Hang,
    /// HTTP 429 with `Retry-After: secs` to the first `n` POSTs, then 200.
    TooMany {
        n: usize,
        secs: u32,
    },
}

pub struct Webhook {
    pub port: u16,
    /// Bodies of the requests answered 200.
    pub accepted: Arc<Mutex<Vec<Vec<u8>>>>,
    /// When each of them came.
    pub accepted_at: Arc<Mutex<Vec<std::time::Instant>>>,
    /// How many POST requests were received in all (answered or not).
    pub received: Arc<Mutex<usize>>,
    /// The methods of the other requests (answered 405), in order.
    pub others: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Webhook {
    pub fn start(answer: Answer) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let accepted_at: Arc<Mutex<Vec<std::time::Instant>>> = Arc::default();
        let received: Arc<Mutex<usize>> = Arc::default();
        let others: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (acc, acc_at, rec, oth, stopped) = (
            accepted.clone(),
            accepted_at.clone(),
            received.clone(),
            others.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            let mut hung: Vec<TcpStream> = Vec::new();
            for conn in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let Some((method, body)) = read_request(&mut conn) else {
                    continue;
                };
                if method != "POST" {
                    // As Slack's hooks do: only POST is served.
                    oth.lock().unwrap().push(method);
                    let _ = write!(
                        conn,
                        "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    continue;
                }
                let n = {
                    let mut r = rec.lock().unwrap();
                    *r += 1;
                    *r
                };
                let status = match answer {
                    Answer::Ok => 200,
                    Answer::TooMany { n: k, secs } if n <= k => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {secs}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        continue;
                    }
                    Answer::TooMany { .. } => 200,
                    Answer::FailFirst(k) if n <= k => 500,
                    Answer::FailFirst(_) => 200,
                    Answer::Hang => {
                        hung.push(conn);
                        continue;
                    }
                };
                if status == 200 {
                    acc.lock().unwrap().push(body);
                    acc_at.lock().unwrap().push(std::time::Instant::now());
                }
                let text = if status == 200 { "ok" } else { "boom" };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Webhook {
            port,
            accepted,
            accepted_at,
            received,
            others,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/T000/secret-token", self.port)
    }

    pub fn accepted_json(&self) -> Vec<serde_json::Value> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_slice(b).expect("the notification is JSON"))
            .collect()
    }

    pub fn received(&self) -> usize {
        *self.received.lock().unwrap()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one HTTP/1.1 request with a Content-Length body (none but for POST): its method and
/// body; None if it is not one.
pub fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let method = line.split(' ').next()?.to_string();
    if method.is_empty() || !line.contains(" HTTP/1.") {
        return None;
    }
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, body))
}

/// GETs an http:// URL (a presigned link) and returns the status and body.
pub fn http_get(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http:// link");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut conn = TcpStream::connect(authority).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    conn.read_to_end(&mut all).unwrap();
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = all[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let nl = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..nl]).trim(), 16).unwrap();
        data = &data[nl + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
