//! `fasttrack check` against S3: credentials, the bucket, a probe object written, read back
//! and removed, each an OK or FAIL line that says what to fix.

use super::*;

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
        items.push(CheckItem {
            what: "credentials".into(),
            result: credentials,
        });
        if !creds_ok {
            return items;
        }
        let bucket = self
            .ensure_bucket(probe)
            .await
            .map(|()| format!("reachable at {}, region {}", self.endpoint, self.region))
            .map_err(|e| format!("{e:#}"));
        let bucket_ok = bucket.is_ok();
        items.push(CheckItem {
            what: format!("bucket {}", self.bucket),
            result: bucket,
        });
        if !bucket_ok {
            return items;
        }
        let body = format!("fasttrack check {}\n", chrono::Utc::now().to_rfc3339());
        let md5: [u8; 16] = Md5::digest(body.as_bytes()).into();
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(probe.as_str())
            .body(ByteStream::from(Bytes::from(body.clone())))
            .content_md5(base64(md5))
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
        items.push(CheckItem {
            what: "test write".into(),
            result: written,
        });
        let removed = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(probe.as_str())
            .send()
            .await
            .map(|_| format!("removed {}", self.url(probe.as_str())))
            .map_err(|e| format!("{:#}", self.classify(e, Action::Delete, probe.as_str())));
        items.push(CheckItem {
            what: "test remove".into(),
            result: removed,
        });
        items
    }
}
