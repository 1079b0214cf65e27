//! `fasttrack check` against S3: credentials, the clock against the server's, the bucket, a
//! probe object written, read back and removed, each an OK, WARN or FAIL line that says what to
//! fix.

use super::*;
use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

/// A clock further off the server's than this fails the check: S3 refuses requests signed
/// more than 15 minutes off its clock (RequestTimeTooSkewed), S3-compatible stores often
/// less, and the presigned links in notifications are signed with the host's clock, unlike
/// the SDK's requests, which it corrects after a refusal.
const SKEW_FAIL_SECS: i64 = 5 * 60;
/// Off by more than this: a WARN (NTP is not running or not synchronised).
const SKEW_WARN_SECS: i64 = 30;

/// Keeps the `Date` header of the response the request it is attached to receives, whatever
/// its status: an error answer (403, 404) carries the server's clock too.
#[derive(Debug, Default, Clone)]
struct DateHeader(Arc<Mutex<Option<String>>>);

impl Intercept for DateHeader {
    fn name(&self) -> &'static str {
        "fasttrack::DateHeader"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(date) = context.response().headers().get("date") {
            if let Ok(mut seen) = self.0.lock() {
                *seen = Some(date.to_string());
            }
        }
        Ok(())
    }
}

/// The check line for the host's clock, given the time halfway through the request and the
/// server's `Date` header (HTTP date, one-second resolution), if it sent one.
pub(super) fn clock_item(midpoint: DateTime<Utc>, date: Option<&str>, server: &str) -> CheckItem {
    let what = "clock";
    let Some(date) = date else {
        return CheckItem::warn(
            what,
            format!("cannot tell: {server} sent no Date header to compare with"),
        );
    };
    let Ok(theirs) = DateTime::parse_from_rfc2822(date) else {
        return CheckItem::warn(
            what,
            format!(
                "cannot tell: {server} sent the Date header {date:?}, which is not an HTTP date"
            ),
        );
    };
    let skew = (midpoint - theirs.with_timezone(&Utc)).num_seconds();
    let off = match skew {
        0 => "in step with".to_string(),
        s if s > 0 => format!("{s} s ahead of"),
        s => format!("{} s behind", -s),
    };
    let detail = format!("this host is {off} {server} (its Date: {date})");
    let fix = "; synchronise it (systemctl enable --now chronyd, or systemd-timesyncd) and run `fasttrack check` again";
    match skew.abs() {
        s if s > SKEW_FAIL_SECS => CheckItem::fail(
            what,
            format!(
                "{detail}: more than {} min breaks request signing and presigned links{fix}",
                SKEW_FAIL_SECS / 60
            ),
        ),
        s if s > SKEW_WARN_SECS => CheckItem::warn(what, format!("{detail}{fix}")),
        _ => CheckItem::ok(what, detail),
    }
}

impl S3Dest {
    pub(super) async fn check_async(&self, probe: &ObjectKey) -> Vec<CheckItem> {
        let mut items = Vec::new();
        let credentials = match &self.credentials {
            None => Err("no credentials provider configured".to_string()),
            Some(p) => match p.provide_credentials().await {
                Ok(c) => Ok(match c.expiry() {
                    Some(t) => format!(
                        "resolved (temporary, expire {})",
                        chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                    None => "resolved".to_string(),
                }),
                Err(e) => Err(format!(
                    "{}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, --profile, --aws-credentials-file, \
                     or give the host an instance role",
                    DisplayErrorContext(&e)
                )),
            },
        };
        let creds_ok = credentials.is_ok();
        items.push(CheckItem::from_result("credentials", credentials));
        if !creds_ok {
            return items;
        }
        items.push(self.clock().await);
        let bucket = self
            .ensure_bucket(probe)
            .await
            .map(|()| format!("reachable at {}, region {}", self.endpoint, self.region))
            .map_err(|e| format!("{e:#}"));
        let bucket_ok = bucket.is_ok();
        items.push(CheckItem::from_result(
            format!("bucket {}", self.bucket),
            bucket,
        ));
        if !bucket_ok {
            return items;
        }
        let body = format!("fasttrack check {}\n", chrono::Utc::now().to_rfc3339());
        let md5: [u8; 16] = Md5::digest(body.as_bytes()).into();
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.owner())
            .key(probe.as_str())
            .body(ByteStream::from(Bytes::from(body.clone())))
            .content_md5(base64(md5))
            .set_acl(self.acl())
            .set_tagging(self.check_tagging())
            .send()
            .await;
        let written = match put {
            Err(e) => Err(format!(
                "{:#}",
                self.classify(e, Action::Put, probe.as_str())
            )),
            Ok(out) => {
                let etag = out
                    .e_tag()
                    .map(|e| e.trim_matches('"').to_string())
                    .unwrap_or_default();
                if self.is_kms() || etag == hex::encode(md5) {
                    Ok(format!("wrote {}", self.url(probe.as_str())))
                } else {
                    Err(format!(
                        "{:#}",
                        mismatch(
                            &self.url(probe.as_str()),
                            &format!("ETag {etag}"),
                            &hex::encode(md5)
                        )
                    ))
                }
            }
        };
        items.push(CheckItem::from_result("test write", written));
        let removed = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.owner())
            .key(probe.as_str())
            .send()
            .await
            .map(|_| format!("removed {}", self.url(probe.as_str())))
            .map_err(|e| format!("{:#}", self.classify(e, Action::Delete, probe.as_str())));
        items.push(CheckItem::from_result("test remove", removed));
        items
    }

    /// The probe object's tags: `--tag`'s, so that a bucket policy requiring them is seen.
    fn check_tagging(&self) -> Option<String> {
        crate::dest::ObjectMeta {
            content_type: "text/plain",
            sha256: String::new(),
            metadata: Vec::new(),
            tags: self
                .opts
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
        }
        .tagging()
    }

    /// Compares the host's clock with the server's, from the Date of a ListObjectsV2 answer
    /// (the request [`S3Dest::ensure_bucket`] makes; any answer, even a refusal, carries it).
    async fn clock(&self) -> CheckItem {
        let date = DateHeader::default();
        let before = Utc::now();
        let _answer = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.owner())
            .max_keys(1)
            .customize()
            .interceptor(date.clone())
            .send()
            .await;
        let after = Utc::now();
        let midpoint = before + (after - before) / 2;
        let seen = date.0.lock().map(|d| d.clone()).unwrap_or_default();
        clock_item(midpoint, seen.as_deref(), &self.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dest::Verdict;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_clock_is_judged_against_the_servers_date() {
        let server = "https://s3.example";
        let date = "Thu, 03 Dec 2026 00:10:00 GMT";
        let item = clock_item(at("2026-12-03T00:10:00.4Z"), Some(date), server);
        assert_eq!(item.verdict, Verdict::Ok, "{item:?}");
        assert!(
            item.detail
                .starts_with("this host is in step with https://s3.example"),
            "{item:?}"
        );

        let item = clock_item(at("2026-12-03T00:11:00Z"), Some(date), server);
        assert_eq!(item.verdict, Verdict::Warn, "{item:?}");
        assert!(item.detail.contains("60 s ahead of"), "{item:?}");

        let item = clock_item(at("2026-12-03T00:00:00Z"), Some(date), server);
        assert_eq!(item.verdict, Verdict::Fail, "{item:?}");
        assert!(item.detail.contains("600 s behind"), "{item:?}");
        assert!(item.detail.contains("synchronise it"), "{item:?}");

        // Exactly five minutes off is still a WARN.
        let item = clock_item(at("2026-12-03T00:15:00Z"), Some(date), server);
        assert_eq!(item.verdict, Verdict::Warn, "{item:?}");
    }

    #[test]
    fn no_date_or_a_bad_one_cannot_tell() {
        let now = at("2026-12-03T00:10:00Z");
        let item = clock_item(now, None, "https://s3.example");
        assert_eq!(item.verdict, Verdict::Warn);
        assert!(item.detail.contains("sent no Date header"), "{item:?}");
        let item = clock_item(now, Some("yesterday"), "https://s3.example");
        assert!(
            item.detail
                .contains("\"yesterday\", which is not an HTTP date"),
            "{item:?}"
        );
    }
}
