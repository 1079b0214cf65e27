//! Is the object already at a key ours? A retry after a crash finds the object an earlier
//! attempt completed but did not record; it counts as shipped only if it holds our log.
//! Anything else there is a conflict: fasttrack never overwrites a shipped log.
//!
//! What decides, in this order, with what both sides have:
//! 1. the sha256 of the `.gz` in our metadata (`x-amz-meta-sha256`), with the size;
//! 2. the plain file's line count, size and CRC-32 in our metadata (a log uploaded while it was
//!    compressed has no sha256: the `.gz` was not whole when the upload began);
//! 3. a store that kept no metadata (rclone serve s3 holds it in memory only, so a restart
//!    forgets it: tests/s3.rs): the ETag of a single-part object, the MD5 of its bytes.

use super::*;

/// Object metadata keys of the plain file's sums (src/spool/ship.rs writes them).
const META_PLAIN: [&str; 3] = ["lines", "uncompressed-bytes", "uncompressed-crc32"];

/// The plain file's sums among metadata pairs, when all three are there.
pub(super) fn plain_sums<'a>(
    pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Option<[String; 3]> {
    let mut found: [Option<String>; 3] = Default::default();
    for (k, v) in pairs {
        if let Some(i) = META_PLAIN.iter().position(|m| m == k) {
            found[i] = Some(v.clone());
        }
    }
    let [a, b, c] = found;
    Some([a?, b?, c?])
}

/// What we know of the object we are shipping.
#[derive(Clone, Copy)]
pub(super) struct Ours<'a> {
    /// The `.gz`'s size, once it is whole.
    pub size: Option<u64>,
    pub sha256: Option<&'a str>,
    pub plain: Option<&'a [String; 3]>,
    /// The MD5 of the bytes sent in one PutObject.
    pub md5: Option<&'a str>,
    /// The `.gz`, to compute its MD5 from when nothing else decides.
    pub file: Option<&'a Path>,
}

/// What HeadObject says of an existing object.
pub(super) struct Existing {
    pub size: u64,
    sha256: Option<String>,
    plain: Option<[String; 3]>,
    etag: Option<String>,
}

impl S3Dest {
    /// The object at `key`, if there is one.
    pub(super) async fn head(&self, key: &ObjectKey) -> Result<Option<Existing>, ShipError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.owner())
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => Ok(Some(Existing {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                sha256: out.metadata().and_then(|m| m.get(META_SHA256).cloned()),
                plain: out.metadata().and_then(plain_sums),
                etag: out.e_tag().map(|e| e.trim_matches('"').to_string()),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(self.classify(e, Action::Head, key.as_str())),
        }
    }

    /// An object already at `key`: ours counts as shipped (the module's rules decide), anything
    /// else is a [`ShipError::Permanent`] conflict; no object is `None`.
    pub(super) async fn compare_existing(
        &self,
        key: &ObjectKey,
        ours: &Ours<'_>,
    ) -> Result<Option<Shipped>, ShipError> {
        let Some(existing) = self.head(key).await? else {
            return Ok(None);
        };
        let size_matches = ours.size.map_or(true, |s| s == existing.size);
        let same = match (&existing, ours) {
            (
                Existing {
                    sha256: Some(theirs),
                    ..
                },
                Ours {
                    sha256: Some(mine), ..
                },
            ) => size_matches && theirs == mine,
            (
                Existing {
                    plain: Some(theirs),
                    ..
                },
                Ours {
                    plain: Some(mine), ..
                },
            ) => theirs == *mine,
            (Existing { etag: Some(e), .. }, _) if size_matches && ours.size.is_some() => {
                self.same_md5(e, ours, existing.size).await?
            }
            _ => false,
        };
        if same {
            Ok(Some(Shipped::AlreadyThere {
                bytes: existing.size,
            }))
        } else {
            Err(ShipError::permanent(format!(
                "{} already exists with different contents ({} bytes); fasttrack never \
                 overwrites a shipped log: remove it, or check that no two hosts ship under the same --host",
                self.url(key.as_str()),
                existing.size
            )))
        }
    }

    /// Rule 3: the ETag of a single-part object against the MD5 we sent or the file's.
    async fn same_md5(&self, etag: &str, ours: &Ours<'_>, size: u64) -> Result<bool, ShipError> {
        if let Some(m) = ours.md5 {
            return Ok(m == etag);
        }
        if !is_md5_hex(etag) || self.is_kms() {
            return Ok(false);
        }
        let Some(file) = ours.file else {
            return Ok(false);
        };
        let file = file.to_path_buf();
        let (md5, _) =
            tokio::task::spawn_blocking(move || multipart::sums_of_range(&file, 0, size))
                .await
                .map_err(anyhow::Error::from)??;
        Ok(hex::encode(md5).eq_ignore_ascii_case(etag))
    }

    /// `If-None-Match: *` failed: the object appeared since our HeadObject (an earlier run of
    /// ours finishing late); it counts as shipped only if it holds our bytes.
    pub(super) async fn written_meanwhile(
        &self,
        key: &ObjectKey,
        ours: &Ours<'_>,
    ) -> Result<Shipped, ShipError> {
        let ours = Ours {
            file: None,
            ..*ours
        };
        self.compare_existing(key, &ours).await?.ok_or_else(|| {
            ShipError::retryable(format!(
                "{} exists and then vanished; will retry",
                self.url(key.as_str())
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_sums_need_all_three() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let all = pairs(&[
            ("host", "web1"),
            ("lines", "3"),
            ("uncompressed-bytes", "20"),
            ("uncompressed-crc32", "0badf00d"),
        ]);
        assert_eq!(
            plain_sums(all.iter().map(|(k, v)| (k, v))),
            Some(["3".into(), "20".into(), "0badf00d".into()])
        );
        let two = pairs(&[("lines", "3"), ("uncompressed-bytes", "20")]);
        assert_eq!(plain_sums(two.iter().map(|(k, v)| (k, v))), None);
    }
}
