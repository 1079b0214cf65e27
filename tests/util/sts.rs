//! An STS stand-in on loopback: answers `AssumeRole` (the form the SDK posts) with the test
//! store's keys, a session token numbered per call and an expiry `lifetime` ahead, and keeps
//! every request's form, so a test sees which role was assumed, with which external id and
//! session name, and how often the credentials were refreshed.

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request's form: its fields in order.
pub type Form = Vec<(String, String)>;

pub struct Sts {
    pub port: u16,
    /// The form of each AssumeRole request, decoded (`Action`, `RoleArn`, ...).
    pub calls: Arc<Mutex<Vec<Form>>>,
}

impl Sts {
    pub fn start(lifetime: Duration) -> Sts {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls: Arc<Mutex<Vec<Form>>> = Arc::default();
        let seen = calls.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let Some((_, body)) = super::webhook::read_request(&mut conn) else {
                    continue;
                };
                let body = String::from_utf8_lossy(&body);
                let form: Form = body
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (decode(k), decode(v)))
                    .collect();
                let n = {
                    let mut c = seen.lock().unwrap();
                    c.push(form);
                    c.len()
                };
                let expires = chrono::Utc::now() + chrono::Duration::from_std(lifetime).unwrap();
                let xml = format!(
                    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
                     <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
                     <SessionToken>fasttrack-test-session-{n}</SessionToken><Expiration>{}</Expiration></Credentials>\
                     <AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/log-writer/s</Arn>\
                     <AssumedRoleId>AROATEST:s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>\
                     <ResponseMetadata><RequestId>req-{n}</RequestId></ResponseMetadata></AssumeRoleResponse>",
                    super::s3::ACCESS_KEY,
                    super::s3::SECRET_KEY,
                    expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                    xml.len()
                );
            }
        });
        Sts { port, calls }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn calls(&self) -> Vec<Form> {
        self.calls.lock().unwrap().clone()
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}
