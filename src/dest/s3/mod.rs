//! `s3://BUCKET[/PREFIX]`: verified uploads to S3 or an S3-compatible store.
//!
//! Small files go up with one PutObject, larger ones as a multipart upload read from disk part
//! by part, each part streamed from the file (memory does not grow with the part size).
//!
//! Checksums are computed here, in one pass over each part before it is sent, never by the
//! SDK: its default wraps streamed bodies in aws-chunked framing with a CRC32 trailer, which
//! cost 7 s per GiB against a local store (BENCHMARKS.md, figure 6). Every request carries
//! Content-MD5 and, with `--checksum when-supported` (the default), `x-amz-checksum-crc32` as a
//! plain header (the upload is created with the CRC32 algorithm, so the object keeps it).
//! What the store says it holds is compared with what was sent: the ETag with our MD5 (single
//! part) or with the MD5 of the part MD5s (multipart). A store that rejects the checksum
//! headers is answered with an error naming `--checksum when-required` (Content-MD5 only).
//!
//! A multipart upload's id is journalled in the state dir before any part is sent, so that
//! after a crash the next run aborts it and no orphan parts are left on the store.
//! Errors are classified once, in [`S3Dest::classify`], as retryable or permanent ([`ShipError`]);
//! how often each request is retried is [`crate::retry::Policy::S3_REQUEST`].

use super::{CheckItem, Destination, Link, ObjectMeta, ShipError, Shipped};
use crate::config::{ChecksumMode, ConfigError, S3Options, Sse};
use crate::fsutil::{atomic_write, create_private_dir, FileAccess};
use crate::growing::Reader;
use crate::naming::ObjectKey;
use crate::progress::Progress;
use crate::retry::Policy;
use anyhow::{anyhow, Context, Result};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{
    ProvideCredentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls;
use aws_smithy_types::base64::encode as base64;
use bytes::Bytes;
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing::{info, warn};

/// Read buffer of the parts streamed from disk.
const STREAM_BUFFER: usize = 256 * 1024;

/// The most parts a multipart upload may have.
const MAX_PARTS: u64 = 10_000;

/// Object metadata keys (sent as x-amz-meta-*).
const META_SHA256: &str = "sha256";

/// Storage class, server-side encryption, canned ACL and the source's tags, on PutObject and
/// CreateMultipartUpload alike (two builder types with the same setters). No tags: no
/// tagging header at all (an empty one is refused by some stores).
macro_rules! with_object_options {
    ($dest:expr, $req:expr, $source:expr) => {{
        let mut req = $req
            .set_acl($dest.acl())
            .set_tagging($source.tagging.clone());
        if let Some(class) = $dest.opts.storage_class {
            req = req.storage_class(StorageClass::from(class.name().as_str()));
        }
        match &$dest.opts.sse {
            None => req,
            Some(Sse::Aes256) => req.server_side_encryption(ServerSideEncryption::Aes256),
            Some(Sse::Kms { key_id }) => req
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(key_id.clone()),
        }
    }};
}

// After the macro: the submodules use it.
mod check;
mod errors;
mod identity;
mod link;
mod multipart;

use identity::{plain_sums, Ours};
mod read;

use errors::{is_precondition_failed, mismatch, Action};

/// The file being shipped: where it is, its size, and who hears of the bytes the store took
/// (per request: the whole file for a single PutObject, each part of a multipart upload).
struct Source<'a> {
    path: &'a Path,
    size: u64,
    progress: &'a dyn Progress,
    /// The `x-amz-tagging` of the object ([`ObjectMeta::tagging`]).
    tagging: Option<String>,
    /// The `.gz` is still being written ([`S3Dest::ship_growing`]): `size` is the plain file's,
    /// a bound of what it will be.
    growing: Option<&'a Reader>,
}

pub struct S3Dest {
    rt: tokio::runtime::Runtime,
    client: Client,
    credentials: Option<SharedCredentialsProvider>,
    /// `--link-profile`'s credentials, which sign links instead of `credentials`.
    link_signer: Option<link::LinkSigner>,
    bucket: String,
    region: String,
    endpoint: String,
    opts: S3Options,
    uploads_dir: PathBuf,
    /// HeadBucket succeeded once: the bucket exists and is reachable with these credentials.
    bucket_seen: std::sync::atomic::AtomicBool,
}

impl S3Dest {
    pub fn new(bucket: &str, opts: &S3Options, state_dir: &Path) -> Result<Self> {
        for (flag, file) in [
            ("--aws-config-file", &opts.aws_config_file),
            ("--aws-credentials-file", &opts.aws_credentials_file),
        ] {
            if let Some(f) = file {
                if !f.is_file() {
                    return Err(ConfigError(format!(
                        "{flag} {}: no such file; create it or fix {flag}",
                        f.display()
                    ))
                    .into());
                }
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime for S3")?;
        let http = https_client(opts)?;
        let sdk_retry = Policy::S3_REQUEST;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(opts.upload_timeout)
                    .build(),
            )
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(sdk_retry.max_attempts)
                    .with_initial_backoff(sdk_retry.first)
                    .with_max_backoff(sdk_retry.cap),
            );
        if let Some(profile) = &opts.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(files) = profile_files(opts) {
            loader = loader.profile_files(files);
        }
        if let Some(region) = &opts.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(fips) = opts.fips {
            loader = loader.use_fips(fips);
        }
        if let Some(dual_stack) = opts.dual_stack {
            loader = loader.use_dual_stack(dual_stack);
        }
        let sdk = rt.block_on(loader.load());
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_string());
        // The request checksums are ours (see the module doc): the SDK computes none.
        let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
            .region(Region::new(region.clone()))
            .force_path_style(opts.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
        if opts.checksum == ChecksumMode::WhenRequired {
            conf = conf.response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        Ok(S3Dest {
            rt,
            client: Client::from_conf(conf.build()),
            credentials: sdk.credentials_provider(),
            link_signer: None,
            bucket: bucket.to_string(),
            endpoint: opts
                .endpoint_url
                .clone()
                .unwrap_or_else(|| format!("s3.{region}.amazonaws.com")),
            region,
            opts: opts.clone(),
            uploads_dir: state_dir.join("uploads"),
            bucket_seen: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Whether requests carry `x-amz-checksum-crc32` (besides Content-MD5).
    fn crc32_headers(&self) -> bool {
        self.opts.checksum == ChecksumMode::WhenSupported
    }

    /// `--expected-bucket-owner`, sent with every request but the presigned links (a browser
    /// following one does not send the header, so it must not be signed into it).
    fn owner(&self) -> Option<String> {
        self.opts.expected_bucket_owner.clone()
    }

    fn acl(&self) -> Option<aws_sdk_s3::types::ObjectCannedAcl> {
        self.opts
            .acl
            .map(|a| aws_sdk_s3::types::ObjectCannedAcl::from(a.name().as_str()))
    }

    /// The proxy the requests to the store go through, as logs may show it.
    fn proxy_in_use(&self) -> Option<String> {
        let p = &self.opts.proxies;
        let https = !self.endpoint.starts_with("http://");
        let proxy = if https { &p.https } else { &p.http };
        let host = self
            .endpoint
            .split("://")
            .nth(1)?
            .split(['/', ':'])
            .next()?;
        let bypassed = p
            .matcher()
            .intercept(
                &format!("{}://{host}/", if https { "https" } else { "http" })
                    .parse()
                    .ok()?,
            )
            .is_none();
        proxy.as_ref().filter(|_| !bypassed).map(|p| p.redacted())
    }

    fn is_kms(&self) -> bool {
        matches!(self.opts.sse, Some(Sse::Kms { .. }))
    }

    /// Once per process: a missing bucket or a wrong region is reported as such, before any
    /// upload (some S3-compatible stores would otherwise create the bucket on the fly).
    /// A one-key listing rather than HeadBucket: a HEAD response has no body, so the store
    /// could not say *why* it refused (unknown key id, wrong secret, no such bucket).
    async fn ensure_bucket(&self, key: &ObjectKey) -> Result<(), ShipError> {
        use std::sync::atomic::Ordering;
        if self.bucket_seen.load(Ordering::Relaxed) {
            return Ok(());
        }
        let dir = key.as_str().rsplit_once('/').map_or("", |(d, _)| d);
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.owner())
            .prefix(format!("{dir}/"))
            .max_keys(1)
            .send()
            .await
            .map_err(|e| self.classify(e, Action::List, key.as_str()))?;
        self.bucket_seen.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn ship_async(
        &self,
        key: &ObjectKey,
        file: &Path,
        meta: &ObjectMeta,
        progress: &dyn Progress,
    ) -> Result<Shipped, ShipError> {
        self.ensure_bucket(key).await?;
        self.abort_leftover(key).await?;
        // The sha256 was computed while the file was written: no pass over it here.
        let sha256 = meta.sha256.clone();
        let size = std::fs::metadata(file)
            .with_context(|| format!("cannot stat {}", file.display()))?
            .len();
        let plain = plain_sums(meta.metadata.iter().map(|(k, v)| (k, v)));
        let ours = Ours {
            size: Some(size),
            sha256: Some(&sha256),
            plain: plain.as_ref(),
            md5: None,
            file: Some(file),
        };
        if let Some(shipped) = self.compare_existing(key, &ours).await? {
            return Ok(shipped);
        }
        let mut metadata: HashMap<String, String> = meta
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), ascii(v)))
            .collect();
        metadata.insert(META_SHA256.to_string(), sha256.clone());
        let source = Source {
            path: file,
            size,
            progress,
            tagging: meta.tagging(),
            growing: None,
        };
        if size <= self.opts.part_size {
            self.put_single(key, &source, &ours, meta.content_type, metadata)
                .await
        } else {
            self.put_multipart(key, &source, &ours, meta.content_type, metadata)
                .await
        }
    }

    async fn put_single(
        &self,
        key: &ObjectKey,
        source: &Source<'_>,
        ours: &Ours<'_>,
        content_type: &str,
        metadata: HashMap<String, String>,
    ) -> Result<Shipped, ShipError> {
        let (path, size) = (source.path.to_path_buf(), source.size);
        let (body, (md5, crc32)) = tokio::task::spawn_blocking(move || read_whole(&path, size))
            .await
            .map_err(anyhow::Error::from)??;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.owner())
            .key(key.as_str())
            .body(ByteStream::from(body))
            .content_length(size as i64)
            .content_md5(base64(md5))
            .set_checksum_crc32(self.crc32_headers().then(|| base64(crc32.to_be_bytes())))
            .content_type(content_type)
            .set_metadata(Some(metadata))
            .if_none_match("*");
        let req = with_object_options!(self, req, source);
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) if is_precondition_failed(&e) => {
                let md5 = hex::encode(md5);
                let ours = Ours {
                    md5: Some(&md5),
                    ..*ours
                };
                return self.written_meanwhile(key, &ours).await;
            }
            Err(e) => return Err(self.classify(e, Action::Put, key.as_str())),
        };
        source.progress.advance(size);
        let etag = out.e_tag().map(|e| e.trim_matches('"').to_string());
        self.verify(key, size, etag.as_deref(), &hex::encode(md5))
            .await?;
        Ok(Shipped::Written { bytes: size })
    }

    /// Checks that the store holds what was sent. The ETag is compared when it is an MD5
    /// (not with SSE-KMS); otherwise, and when the store returns none, the size is.
    async fn verify(
        &self,
        key: &ObjectKey,
        size: u64,
        etag: Option<&str>,
        expected: &str,
    ) -> Result<(), ShipError> {
        let etag_is_md5 = etag.is_some_and(|e| {
            let hex_part = e.split('-').next().unwrap_or("");
            hex_part.len() == 32 && hex_part.bytes().all(|b| b.is_ascii_hexdigit())
        });
        let ok = if etag_is_md5 && !self.is_kms() {
            etag == Some(expected)
        } else {
            self.head(key).await?.is_some_and(|e| e.size == size)
        };
        if ok {
            return Ok(());
        }
        // What is stored is not what we sent: never leave it under the final name.
        if let Err(e) = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.owner())
            .key(key.as_str())
            .send()
            .await
        {
            warn!(
                "cannot remove the mismatched {}: {}",
                self.url(key.as_str()),
                DisplayErrorContext(&e)
            );
        }
        Err(mismatch(
            &self.url(key.as_str()),
            &format!("ETag {}", etag.unwrap_or("(none)")),
            expected,
        ))
    }

    /// Streams the object at `key` (a full key, no prefix added) into `sink`.
    pub fn read_object(&self, key: &str, sink: &mut dyn std::io::Write) -> Result<u64> {
        self.rt.block_on(async {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .set_expected_bucket_owner(self.owner())
                .key(key)
                .send()
                .await
                .map_err(|e| self.get_error(e, key))?;
            let mut body = out.body;
            let mut total = 0u64;
            while let Some(chunk) = body
                .try_next()
                .await
                .with_context(|| format!("cannot read {}", self.url(key)))?
            {
                total += chunk.len() as u64;
                sink.write_all(&chunk)
                    .with_context(|| format!("cannot digest {}", self.url(key)))?;
            }
            Ok(total)
        })
    }
}

impl Destination for S3Dest {
    fn ship(
        &self,
        key: &ObjectKey,
        file: &Path,
        meta: &ObjectMeta,
        progress: &dyn Progress,
    ) -> Result<Shipped, ShipError> {
        self.rt.block_on(self.ship_async(key, file, meta, progress))
    }

    fn ships_growing_from(&self) -> Option<u64> {
        // Below two parts the upload would hardly start before compression ends.
        self.opts
            .upload_while_compressing
            .then_some(2 * self.opts.part_size)
    }

    fn ship_growing(
        &self,
        key: &ObjectKey,
        growing: &Reader,
        meta: &ObjectMeta,
        progress: &dyn Progress,
    ) -> Result<Shipped, ShipError> {
        self.rt
            .block_on(self.ship_growing_async(key, growing, meta, progress))
    }

    fn link(&self, key: &ObjectKey, expiry: Duration) -> Result<Link> {
        self.rt.block_on(self.presign(key, expiry))
    }

    fn check(&self, probe_key: &ObjectKey) -> Vec<CheckItem> {
        self.rt.block_on(self.check_async(probe_key))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.list_keys(prefix)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        self.get_bytes(key)
    }

    fn fetch_under(
        &self,
        prefixes: &[String],
        suffix: &str,
        concurrency: usize,
        each: &mut dyn FnMut(&str, Result<Vec<u8>>),
    ) -> Result<()> {
        self.fetch_listed(prefixes, suffix, concurrency, each)
    }
}

/// The HTTP client of every AWS request: one TLS stack, rustls with ring.
/// The SDK's HTTP client: rustls with ring (one TLS stack), through the proxy of the S3
/// endpoint's scheme when there is one (src/proxy.rs; IMDS never is).
fn https_client(opts: &S3Options) -> Result<aws_sdk_s3::config::SharedHttpClient> {
    let endpoint_is_https = opts
        .endpoint_url
        .as_deref()
        .map_or(true, |u| u.starts_with("https://"));
    let Some(proxy) = opts.proxies.for_sdk(endpoint_is_https)? else {
        return Ok(aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https());
    };
    // As the SDK's own builder does (aws-smithy-http-client's new_conn_builder), with the
    // proxy added.
    Ok(
        aws_smithy_http_client::Builder::new().build_with_connector_fn(
            move |settings, components| {
                let mut builder = aws_smithy_http_client::Connector::builder();
                builder.set_connector_settings(settings.cloned());
                // The sleep the timeouts need (the time source setter is the SDK's own).
                if let Some(components) = components {
                    builder.set_sleep_impl(components.sleep_impl());
                }
                builder
                    .proxy_config(proxy.clone())
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build()
            },
        ),
    )
}

/// The shared config and credentials files, when one is named: syslog-ng's child may have no
/// HOME to find ~/.aws in. `None`: the SDK's defaults.
fn profile_files(opts: &S3Options) -> Option<EnvConfigFiles> {
    if opts.aws_config_file.is_none() && opts.aws_credentials_file.is_none() {
        return None;
    }
    let mut files = EnvConfigFiles::builder();
    files = match &opts.aws_config_file {
        Some(f) => files.with_file(EnvConfigFileKind::Config, f),
        None => files.include_default_config_file(true),
    };
    files = match &opts.aws_credentials_file {
        Some(f) => files.with_file(EnvConfigFileKind::Credentials, f),
        None => files.include_default_credentials_file(true),
    };
    Some(files.build())
}

/// Reads a whole (single-part) file, with its MD5 and CRC32.
fn read_whole(path: &Path, len: u64) -> Result<(Bytes, ([u8; 16], u32))> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let md5: [u8; 16] = Md5::digest(&buf).into();
    let crc32 = crc32fast::hash(&buf);
    Ok((Bytes::from(buf), (md5, crc32)))
}

/// A single-part object's ETag: 32 hex digits, the MD5 of its bytes (a multipart one ends `-N`).
fn is_md5_hex(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// S3 metadata values travel as HTTP headers: keep them ASCII.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_single_part_etag_is_an_md5() {
        assert!(is_md5_hex("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!is_md5_hex("d41d8cd98f00b204e9800998ecf8427e-3"));
        assert!(!is_md5_hex("not-an-md5"));
    }

    #[test]
    fn content_md5_is_base64_of_the_digest() {
        let md5: [u8; 16] = Md5::digest(b"").into();
        assert_eq!(base64(md5), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(base64(0x1c291ca3u32.to_be_bytes()), "HCkcow==");
    }

    #[test]
    fn metadata_values_stay_ascii() {
        assert_eq!(ascii("/var/log/dockér.log"), "/var/log/dock?r.log");
    }
}
