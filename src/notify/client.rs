//! The webhooks' HTTP client: rustls with ring (the S3 client's TLS stack) and the system's CA
//! certificates, direct or through the proxy `NO_PROXY` leaves for the webhook's host
//! (src/proxy.rs): an `https://` webhook through a `CONNECT` tunnel, an `http://` one as an
//! absolute-form request to the proxy (what squid's default rules allow, unlike a `CONNECT`
//! to port 80). The proxy's credentials go in `Proxy-Authorization`, never in a log.

use crate::proxy::{Proxies, ProxyUrl};
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tracing::warn;

/// A webhook's answer.
pub struct Answer {
    pub status: http::StatusCode,
    pub retry_after: Option<String>,
    pub body: Bytes,
}

type Direct = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;
type Tunneled = Client<hyper_rustls::HttpsConnector<Tunnel<HttpConnector>>, Full<Bytes>>;
type Forwarded = Client<ToProxy, Full<Bytes>>;

/// One client per way out, and what decides between them.
pub struct Clients {
    direct: Direct,
    matcher: Matcher,
    /// For `https://` webhooks when a proxy applies: the tunnel through it.
    tunneled: Option<(Tunneled, ProxyUrl)>,
    /// For `http://` webhooks when a proxy applies.
    forwarded: Option<(Forwarded, ProxyUrl)>,
}

/// rustls (ring) with the system's CA certificates; without any, https webhooks fail with a
/// clear error and http ones still work.
fn tls() -> Result<hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes>> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider.clone())
    {
        Ok(b) => Ok(b),
        Err(e) => {
            warn!(
                "no CA certificates found ({e}); https webhooks will fail: install ca-certificates"
            );
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .context("cannot configure TLS")?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            Ok(hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls))
        }
    }
}

fn proxy_uri(p: &ProxyUrl) -> Result<http::Uri> {
    if !p.url.starts_with("http://") {
        return Err(anyhow!(
            "proxy {}: webhooks go through http:// proxies only; give the proxy's http:// address",
            p.redacted()
        ));
    }
    p.url
        .parse()
        .map_err(|_| anyhow!("proxy {} is not a valid URL", p.redacted()))
}

impl Clients {
    pub fn new(proxies: &Proxies) -> Result<Clients> {
        let build = || Client::builder(TokioExecutor::new());
        let direct = build().build(tls()?.https_or_http().enable_http1().build());
        let tunneled = match &proxies.https {
            Some(p) => {
                let mut tunnel = Tunnel::new(proxy_uri(p)?, HttpConnector::new());
                if let Some(auth) = p.basic_auth() {
                    tunnel = tunnel.with_auth(auth.parse().context("proxy credentials")?);
                }
                let https = tls()?.https_only().enable_http1().wrap_connector(tunnel);
                Some((build().build(https), p.clone()))
            }
            None => None,
        };
        let forwarded = match &proxies.http {
            Some(p) => {
                let connector = ToProxy {
                    inner: HttpConnector::new(),
                    proxy: proxy_uri(p)?,
                };
                Some((build().build(connector), p.clone()))
            }
            None => None,
        };
        Ok(Clients {
            direct,
            matcher: proxies.matcher(),
            tunneled,
            forwarded,
        })
    }

    /// One request, within `timeout`.
    pub async fn request(
        &self,
        url: &str,
        method: http::Method,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer> {
        let uri: http::Uri = url.parse().map_err(|_| {
            anyhow!("the webhook URL is not valid; check --notify or the route's url")
        })?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(uri.clone())
            .header(
                http::header::USER_AGENT,
                concat!("fasttrack/", env!("CARGO_PKG_VERSION")),
            );
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let proxied = self.matcher.intercept(&uri).is_some();
        let https = uri.scheme_str() == Some("https");
        if let (true, false, Some((_, p))) = (proxied, https, &self.forwarded) {
            if let Some(auth) = p.basic_auth() {
                request = request.header(http::header::PROXY_AUTHORIZATION, auth);
            }
        }
        let request = request.body(Full::new(body)).map_err(|_| {
            anyhow!("the webhook URL is not valid; check --notify or the route's url")
        })?;
        let sent = async {
            let response = match (proxied, https, &self.tunneled, &self.forwarded) {
                (true, true, Some((c, p)), _) => c.request(request).await.map_err(|e| via(p, &e)),
                (true, false, _, Some((c, p))) => c.request(request).await.map_err(|e| via(p, &e)),
                _ => self.direct.request(request).await.map_err(|e| {
                    // hyper's error text names no URL: safe to show.
                    anyhow!("cannot reach the webhook: {}", super::error_chain(&e))
                }),
            }?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, anyhow::Error>(Answer {
                status,
                retry_after,
                body,
            })
        };
        tokio::time::timeout(timeout, sent)
            .await
            .map_err(|_| anyhow!("the webhook did not answer within {timeout:?}"))?
    }
}

/// An error reaching a webhook through proxy `p`.
fn via(p: &ProxyUrl, e: &dyn std::error::Error) -> anyhow::Error {
    anyhow!(
        "cannot reach the webhook through the proxy {}: {}",
        p.redacted(),
        super::error_chain(e)
    )
}

/// Connects every request to the proxy and tells hyper so, which then writes the request
/// in absolute form (`POST http://host/path HTTP/1.1`).
#[derive(Clone)]
pub struct ToProxy {
    inner: HttpConnector,
    proxy: http::Uri,
}

type Connecting =
    Pin<Box<dyn Future<Output = Result<Proxied, Box<dyn std::error::Error + Send + Sync>>> + Send>>;

impl tower_service::Service<http::Uri> for ToProxy {
    type Response = Proxied;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, _destination: http::Uri) -> Self::Future {
        let connecting = self.inner.call(self.proxy.clone());
        Box::pin(async move { Ok(Proxied(connecting.await?)) })
    }
}

/// A connection to the proxy.
pub struct Proxied(TokioIo<tokio::net::TcpStream>);

impl Connection for Proxied {
    fn connected(&self) -> Connected {
        self.0.connected().proxy(true)
    }
}

impl hyper::rt::Read for Proxied {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Proxied {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
