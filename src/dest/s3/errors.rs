//! One place that sorts S3 errors into retryable and permanent ([`ShipError`]), with a message
//! that names the bucket or object and what to fix.

use super::*;

/// What an S3 call was doing, for the error message.
#[derive(Clone, Copy)]
pub(super) enum Action {
    List,
    Head,
    Put,
    Delete,
    Multipart,
}

impl Action {
    pub(super) fn permission(self) -> &'static str {
        match self {
            Action::List => "s3:ListBucket",
            Action::Head => "s3:GetObject",
            Action::Put | Action::Multipart => "s3:PutObject",
            Action::Delete => "s3:DeleteObject",
        }
    }
}

impl S3Dest {
    /// The one place where S3 errors are sorted into retryable and permanent, with a
    /// message that says what to do.
    pub(super) fn classify<E>(
        &self,
        err: SdkError<E, HttpResponse>,
        action: Action,
        key: &str,
    ) -> ShipError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_string);
        let detail = brief(&err);
        let bucket = &self.bucket;
        let region = &self.region;
        let what = self.url(key);
        let (permanent, retryable) = (ShipError::permanent, ShipError::retryable);
        let proxy = self.proxy_in_use();
        match (code.as_deref(), status) {
            // A proxy's refusal, not the store's: no S3 error code, 407 (or tinyproxy's 401).
            (None, Some(407)) | (None, Some(401)) if proxy.is_some() => permanent(format!(
                "the proxy {} refused the request to {what} (HTTP {}): fix the user and password in \
                 --proxy or https_proxy/http_proxy, or exempt the store with NO_PROXY",
                proxy.unwrap_or_default(),
                status.unwrap_or_default()
            )),
            (Some("NoSuchBucket"), _) | (None | Some("NotFound"), Some(404))
                if !matches!(action, Action::Head) =>
            {
                permanent(format!(
                    "bucket {bucket} does not exist in {region} ({}); create it or fix --dest",
                    self.endpoint
                ))
            }
            (Some("AccessDenied" | "AllAccessDisabled" | "AccountProblem"), _) | (None, Some(403)) => {
                let cross_account = match (&self.opts.expected_bucket_owner, &self.opts.acl) {
                    (Some(owner), _) => format!(
                        "; or the bucket is not owned by account {owner} (--expected-bucket-owner)"
                    ),
                    (None, None) => "; a bucket of another account may also require \
                                     --acl bucket-owner-full-control"
                        .to_string(),
                    (None, Some(_)) => String::new(),
                };
                permanent(format!(
                    "access denied to {what}: the credentials in use must allow {} on it (see the IAM policy in README.md){cross_account}",
                    action.permission()
                ))
            }
            (Some("NoSuchKey"), _) if matches!(action, Action::List) => permanent(format!(
                "bucket {bucket} does not exist in {region} ({}); create it or fix --dest",
                self.endpoint
            )),
            (Some("InvalidAccessKeyId" | "NotSignedUp"), _) => permanent(format!(
                "the store at {} does not know this access key id: fix the credentials \
                 (environment, --profile, --aws-credentials-file, instance role)",
                self.endpoint
            )),
            (Some("SignatureDoesNotMatch"), _) => permanent(
                "the secret key does not match the access key id: fix the credentials \
                 (environment, --profile, --aws-credentials-file)"
                    .to_string(),
            ),
            (
                Some("PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException"),
                _,
            )
            | (None, Some(301)) => permanent(format!(
                "bucket {bucket} is not in region {region}; set --region to the bucket's region"
            )),
            (Some("InvalidStorageClass"), _) => permanent(format!(
                "the store rejects storage class {:?}; fix --storage-class",
                self.opts.storage_class.map(|c| c.name()).unwrap_or_default()
            )),
            (Some(c), _) if c.starts_with("KMS.") => permanent(format!(
                "KMS refused to encrypt {what} ({c}): check --sse-kms-key-id and that the credentials may use the key"
            )),
            (Some("RequestTimeTooSkewed"), _) => permanent(
                "the store rejects requests because this host's clock is off: fix the time (NTP)".to_string(),
            ),
            (Some("BadDigest" | "XAmzContentSHA256Mismatch" | "InvalidDigest"), _) => retryable(format!(
                "the store received different bytes than were sent for {what} (corrupted in transit?); will retry: {detail}"
            )),
            (_, Some(s)) if (400..=501).contains(&s)
                && self.crc32_headers()
                && detail.to_ascii_lowercase().contains("checksum") =>
            {
                permanent(format!(
                    "the store at {} refuses the x-amz-checksum-crc32 header on {what} (HTTP {s}): \
                     set --checksum when-required (Content-MD5 only): {detail}",
                    self.endpoint
                ))
            }
            (_, Some(s)) if (400..500).contains(&s)
                && !matches!(code.as_deref(), Some("RequestTimeout" | "ExpiredToken" | "TokenRefreshRequired" | "SlowDown"))
                && s != 408 && s != 429 =>
            {
                permanent(format!("the store refused {what} (HTTP {s}): {detail}"))
            }
            (_, Some(s)) => retryable(format!("the store at {} answered HTTP {s} for {what}; will retry: {detail}", self.endpoint)),
            (_, None) if detail.contains("credentials") => retryable(format!(
                "no AWS credentials could be loaded ({detail}); set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, --profile, --aws-credentials-file, or give the host an instance role"
            )),
            (_, None) => retryable(format!("cannot reach {} for {what}; will retry: {detail}", self.endpoint)),
        }
    }
}

/// The store's error code and message, or the transport error without the SDK's Debug dump.
pub(super) fn brief<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: &SdkError<E, HttpResponse>,
) -> String {
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => {
            let full = DisplayErrorContext(err).to_string();
            let cut = [
                "DispatchFailure(",
                "ServiceError(",
                "TimeoutError(",
                "ResponseError(",
                "ConstructionFailure(",
            ]
            .iter()
            .filter_map(|marker| full.find(&format!(" ({marker}")))
            .min();
            match cut {
                Some(i) => full[..i].to_string(),
                None => full,
            }
        }
    }
}

pub(super) fn mismatch(url: &str, got: &str, expected: &str) -> ShipError {
    ShipError::permanent(format!(
        "the store does not hold the bytes that were sent for {url} ({got}, expected MD5 {expected}); \
         nothing is kept under that name. If the store mishandles checksum headers, set --checksum \
         when-required; otherwise check what sits between this host and the store"
    ))
}

pub(super) fn is_precondition_failed<E: ProvideErrorMetadata>(
    e: &SdkError<E, HttpResponse>,
) -> bool {
    e.code() == Some("PreconditionFailed")
        || e.raw_response().is_some_and(|r| r.status().as_u16() == 412)
}
