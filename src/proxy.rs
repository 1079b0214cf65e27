//! Egress proxies for S3 (and STS) and for webhooks: `--proxy URL`, else the environment as
//! curl reads it (`https_proxy`/`HTTPS_PROXY`, `http_proxy` (and `HTTP_PROXY` outside CGI),
//! `all_proxy`/`ALL_PROXY`, `no_proxy`/`NO_PROXY`). The instance metadata service (IMDS, ECS)
//! is never reached through a proxy: its addresses are always in the no-proxy list. A proxy
//! URL's user and password are sent as `Proxy-Authorization` and never logged.

use crate::config::config_error;
use std::fmt;

/// Addresses reached directly whatever `NO_PROXY` says: EC2's IMDS (IPv4 and IPv6) and the
/// ECS container credentials endpoint.
pub const NEVER_PROXIED: &str = "169.254.169.254,fd00:ec2::254,169.254.170.2";

/// One proxy: its URL without credentials, and the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// `http://host:port` (no user, no password, no path).
    pub url: String,
    pub user: Option<(String, String)>,
}

impl fmt::Debug for ProxyUrl {
    /// Never shows the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.redacted())
    }
}

impl ProxyUrl {
    /// What logs may show: the URL, and the user name when there is one.
    pub fn redacted(&self) -> String {
        match &self.user {
            Some((user, _)) => format!("{} (as {user})", self.url),
            None => self.url.clone(),
        }
    }

    /// `user:password` as the value of a `Proxy-Authorization: Basic` header.
    pub fn basic_auth(&self) -> Option<String> {
        use aws_smithy_types::base64::encode;
        self.user
            .as_ref()
            .map(|(u, p)| format!("Basic {}", encode(format!("{u}:{p}"))))
    }

    /// Parses a proxy URL (`http://[user:password@]host[:port]`; no scheme means http, as
    /// curl takes it); `origin` names where it came from in the error.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<ProxyUrl> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        let bad = |why: &str| {
            // The value may hold a password: never repeated in the error.
            config_error(format!(
                "{origin} is not a proxy URL fasttrack can use: {why}; write http://[USER:PASSWORD@]HOST:PORT"
            ))
        };
        let (scheme, rest) = with_scheme
            .split_once("://")
            .ok_or_else(|| bad("no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad(&format!("the scheme {scheme:?} is not http or https")));
        }
        let authority = rest.split('/').next().unwrap_or("");
        let (user, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let (u, p) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                };
                (Some((decode(u), decode(p))), host)
            }
            None => (None, authority),
        };
        // `host`, `host:port`, `[v6]` or `[v6]:port`.
        let (name, port) = match host.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((name, rest)) => (name, rest.strip_prefix(':')),
                None => return Err(bad("an IPv6 address without its closing ]")),
            },
            None => match host.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            },
        };
        if port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(bad("the port is not a number"));
        }
        if name.is_empty() || host.parse::<http::uri::Authority>().is_err() {
            return Err(bad("no host"));
        }
        Ok(ProxyUrl {
            url: format!("{scheme}://{host}"),
            user,
        })
    }
}

/// Which proxy each kind of traffic takes, and what goes direct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// For `http://` destinations.
    pub http: Option<ProxyUrl>,
    /// For `https://` destinations.
    pub https: Option<ProxyUrl>,
    /// curl's `NO_PROXY` list, with [`NEVER_PROXIED`] added.
    pub no_proxy: String,
}

impl Proxies {
    /// From `--proxy` (with where it came from) and the environment `env` gives, as curl
    /// reads it; `--proxy` is used for both schemes.
    pub fn resolve(
        flag: Option<(&str, &str)>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Proxies> {
        let first = |names: &[&str]| -> Option<(String, String)> {
            names.iter().find_map(|n| {
                env(n)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (v, n.to_string()))
            })
        };
        // HTTP_PROXY in upper case only outside CGI (httpoxy): curl never reads it.
        let cgi = env("REQUEST_METHOD").is_some();
        let http_names: &[&str] = if cgi {
            &["http_proxy"]
        } else {
            &["http_proxy", "HTTP_PROXY"]
        };
        let parse = |found: Option<(String, String)>| -> anyhow::Result<Option<ProxyUrl>> {
            found
                .map(|(value, name)| {
                    ProxyUrl::parse(&value, &format!("the environment variable {name}"))
                })
                .transpose()
        };
        let (http, https) = match flag {
            Some((value, origin)) => {
                let p = ProxyUrl::parse(value, origin)?;
                (Some(p.clone()), Some(p))
            }
            None => {
                let all = parse(first(&["all_proxy", "ALL_PROXY"]))?;
                (
                    parse(first(http_names))?.or_else(|| all.clone()),
                    parse(first(&["https_proxy", "HTTPS_PROXY"]))?.or(all),
                )
            }
        };
        let mut no_proxy = first(&["no_proxy", "NO_PROXY"]).map_or(String::new(), |(v, _)| v);
        if !no_proxy.trim().is_empty() {
            no_proxy.push(',');
        }
        no_proxy.push_str(NEVER_PROXIED);
        Ok(Proxies {
            http,
            https,
            no_proxy,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The matcher that decides per destination (curl's `NO_PROXY` rules).
    pub fn matcher(&self) -> hyper_util::client::proxy::matcher::Matcher {
        let with_auth = |p: &ProxyUrl| match &p.user {
            Some((u, pw)) => {
                let (scheme, host) = p.url.split_once("://").unwrap_or(("http", &p.url));
                let enc = |s: &str| {
                    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                        .to_string()
                };
                format!("{scheme}://{}:{}@{host}", enc(u), enc(pw))
            }
            None => p.url.clone(),
        };
        let mut b = hyper_util::client::proxy::matcher::Matcher::builder();
        if let Some(p) = &self.http {
            b = b.http(with_auth(p));
        }
        if let Some(p) = &self.https {
            b = b.https(with_auth(p));
        }
        b.no(self.no_proxy.clone()).build()
    }

    /// The proxy of the AWS SDK's HTTP client for an endpoint of this scheme (the SDK's
    /// client takes one proxy: the one of the S3 endpoint's scheme; the other scheme goes
    /// direct, which is where IMDS, plain http, belongs anyway).
    pub fn for_sdk(
        &self,
        endpoint_is_https: bool,
    ) -> anyhow::Result<Option<aws_smithy_http_client::proxy::ProxyConfig>> {
        use aws_smithy_http_client::proxy::ProxyConfig;
        let chosen = if endpoint_is_https {
            &self.https
        } else {
            &self.http
        };
        let Some(p) = chosen else {
            return Ok(None);
        };
        let config = if endpoint_is_https {
            ProxyConfig::https(p.url.as_str())
        } else {
            ProxyConfig::http(p.url.as_str())
        }
        .map_err(|e| config_error(format!("proxy {}: {e}", p.redacted())))?;
        let config = match &p.user {
            Some((u, pw)) => config.with_basic_auth(u.clone(), pw.clone()),
            None => config,
        };
        Ok(Some(config.no_proxy(&self.no_proxy)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn read_from_the_environment_as_curl_does() {
        let p = Proxies::resolve(
            None,
            env(&[
                ("HTTPS_PROXY", "http://proxy:3128"),
                ("http_proxy", "proxy:8080"),
                ("NO_PROXY", "s3.internal,10.0.0.0/8"),
            ]),
        )
        .unwrap();
        assert_eq!(p.https.as_ref().unwrap().url, "http://proxy:3128");
        assert_eq!(p.http.as_ref().unwrap().url, "http://proxy:8080");
        assert_eq!(
            p.no_proxy,
            format!("s3.internal,10.0.0.0/8,{NEVER_PROXIED}")
        );
        // Lower case wins, as for curl; ALL_PROXY fills what is missing.
        let p = Proxies::resolve(
            None,
            env(&[
                ("https_proxy", "http://a:1"),
                ("HTTPS_PROXY", "http://b:2"),
                ("ALL_PROXY", "http://c:3"),
            ]),
        )
        .unwrap();
        assert_eq!(p.https.unwrap().url, "http://a:1");
        assert_eq!(p.http.unwrap().url, "http://c:3");
        // Under CGI, HTTP_PROXY may come from a request header: ignored.
        let p = Proxies::resolve(
            None,
            env(&[("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")]),
        )
        .unwrap();
        assert!(p.http.is_none());
        // --proxy wins over the environment, for both schemes.
        let p = Proxies::resolve(
            Some(("http://u:p%40ss@flag:9", "--proxy")),
            env(&[("https_proxy", "http://a:1")]),
        )
        .unwrap();
        assert_eq!(p.https.as_ref().unwrap().url, "http://flag:9");
        assert_eq!(
            p.http.as_ref().unwrap().user,
            Some(("u".into(), "p@ss".into()))
        );
    }

    #[test]
    fn credentials_are_never_shown_and_bad_urls_are_named() {
        let p = ProxyUrl::parse("http://alice:s3cret@proxy:3128", "--proxy").unwrap();
        assert_eq!(format!("{p:?}"), "http://proxy:3128 (as alice)");
        assert_eq!(p.basic_auth().unwrap(), "Basic YWxpY2U6czNjcmV0");
        let e = ProxyUrl::parse(
            "socks5://alice:s3cret@proxy:1080",
            "the environment variable HTTPS_PROXY",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("HTTPS_PROXY is not a proxy URL") && e.contains("\"socks5\""),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
        let e = ProxyUrl::parse("http://:8080", "--proxy")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no host"), "{e}");
        let e = ProxyUrl::parse("proxy:http", "--proxy")
            .unwrap_err()
            .to_string();
        assert!(e.contains("the port is not a number"), "{e}");
        assert_eq!(
            ProxyUrl::parse("[fd00::1]:3128", "--proxy").unwrap().url,
            "http://[fd00::1]:3128"
        );
        assert_eq!(
            ProxyUrl::parse("[fd00::1]", "--proxy").unwrap().url,
            "http://[fd00::1]"
        );
    }

    #[test]
    fn instance_metadata_is_never_proxied() {
        let p = Proxies::resolve(
            None,
            env(&[
                ("http_proxy", "http://proxy:3128"),
                ("https_proxy", "http://proxy:3128"),
            ]),
        )
        .unwrap();
        let m = p.matcher();
        for direct in [
            "http://169.254.169.254/latest/api/token",
            "http://[fd00:ec2::254]/latest",
            "http://169.254.170.2/v2/credentials",
        ] {
            assert!(m.intercept(&direct.parse().unwrap()).is_none(), "{direct}");
        }
        assert!(m
            .intercept(&"https://bucket.s3.amazonaws.com/".parse().unwrap())
            .is_some());
        let p = Proxies::resolve(
            None,
            env(&[
                ("https_proxy", "http://proxy:3128"),
                ("no_proxy", ".internal"),
            ]),
        )
        .unwrap();
        assert!(p
            .matcher()
            .intercept(&"https://s3.internal/".parse().unwrap())
            .is_none());
    }
}
