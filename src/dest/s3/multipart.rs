//! Multipart uploads: the upload id journalled before the first part (the next run aborts
//! what a crash left), parts streamed from the file with their MD5 and CRC32, the
//! completion checked against the MD5 of the part MD5s.

use super::*;
use crate::growing::Range;

/// A part sent and what the store answered for it.
pub(super) struct SentPart {
    number: i32,
    etag: String,
    md5: [u8; 16],
    crc32: Option<u32>,
}

impl S3Dest {
    pub(super) fn journal_path(&self, key: &ObjectKey) -> PathBuf {
        self.uploads_dir
            .join(key.as_str().replace('%', "%25").replace('/', "%2F"))
    }

    /// Aborts a multipart upload a crashed run left for this key.
    pub(super) async fn abort_leftover(&self, key: &ObjectKey) -> Result<(), ShipError> {
        let journal = self.journal_path(key);
        let Ok(text) = std::fs::read_to_string(&journal) else {
            return Ok(());
        };
        if let Some(upload_id) = text.lines().nth(1) {
            match self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .set_expected_bucket_owner(self.owner())
                .key(key.as_str())
                .upload_id(upload_id)
                .send()
                .await
            {
                Ok(_) => info!(
                    "aborted the multipart upload {upload_id} of {} left by an interrupted run",
                    self.url(key.as_str())
                ),
                Err(e)
                    if e.code() == Some("NoSuchUpload")
                        || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {}
                Err(e) => return Err(self.classify(e, Action::Multipart, key.as_str())),
            }
        }
        std::fs::remove_file(&journal)
            .with_context(|| format!("cannot remove {}", journal.display()))?;
        Ok(())
    }

    /// Ships the `.gz` being written to `growing` as a multipart upload whose parts start as
    /// their bytes exist (src/spool/stream.rs); `meta` names the plain file's sums, by which
    /// an object a crashed attempt left is recognised.
    pub(super) async fn ship_growing_async(
        &self,
        key: &ObjectKey,
        growing: &Reader,
        meta: &ObjectMeta,
        progress: &dyn Progress,
    ) -> Result<Shipped, ShipError> {
        self.ensure_bucket(key).await?;
        self.abort_leftover(key).await?;
        let plain = plain_sums(meta.metadata.iter().map(|(k, v)| (k, v)));
        let Some(plain_bytes) = plain.as_ref().and_then(|p| p[1].parse::<u64>().ok()) else {
            return Err(ShipError::permanent(format!(
                "cannot ship {} while it is written: its metadata lacks the plain file's sums",
                growing.path().display()
            )));
        };
        let ours = Ours {
            size: None,
            sha256: None,
            plain: plain.as_ref(),
            md5: None,
            file: None,
        };
        if let Some(shipped) = self.compare_existing(key, &ours).await? {
            // Counted as shipped only once the local copy is whole too.
            growing.size().await?;
            return Ok(shipped);
        }
        let metadata: HashMap<String, String> = meta
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), ascii(v)))
            .collect();
        let source = Source {
            path: growing.path(),
            size: plain_bytes,
            progress,
            tagging: meta.tagging(),
            growing: Some(growing),
        };
        self.put_multipart(key, &source, &ours, meta.content_type, metadata)
            .await
    }

    pub(super) async fn put_multipart(
        &self,
        key: &ObjectKey,
        source: &Source<'_>,
        ours: &Ours<'_>,
        content_type: &str,
        metadata: HashMap<String, String>,
    ) -> Result<Shipped, ShipError> {
        let req = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.owner())
            .key(key.as_str())
            .set_checksum_algorithm(self.crc32_headers().then_some(ChecksumAlgorithm::Crc32))
            .content_type(content_type)
            .set_metadata(Some(metadata));
        let req = with_object_options!(self, req, source);
        let created = req
            .send()
            .await
            .map_err(|e| self.classify(e, Action::Multipart, key.as_str()))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| {
                anyhow!(
                    "the store returned no upload id for {}",
                    self.url(key.as_str())
                )
            })?
            .to_string();
        create_private_dir(&self.uploads_dir)?;
        atomic_write(
            &self.journal_path(key),
            format!("{key}\n{upload_id}\n").as_bytes(),
            FileAccess::STATE,
        )?;

        let result = async {
            let (parts, size) = self.upload_parts(key, &upload_id, source).await?;
            let ours = Ours {
                size: Some(size),
                ..*ours
            };
            self.complete(key, &upload_id, &ours, parts).await
        }
        .await;
        if result.is_err() {
            let abort = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .set_expected_bucket_owner(self.owner())
                .key(key.as_str())
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = abort {
                warn!(
                    "cannot abort multipart upload {upload_id} of {} ({}); the next run retries",
                    self.url(key.as_str()),
                    DisplayErrorContext(&e)
                );
                return result;
            }
        }
        let journal = self.journal_path(key);
        std::fs::remove_file(&journal)
            .with_context(|| format!("cannot remove {}", journal.display()))?;
        result
    }

    /// Sends the parts, at most `upload_concurrency` at a time, each read from disk when its turn
    /// comes (for a growing file, once its bytes are written); each part the store
    /// acknowledged is reported to the source's progress. Returns them and the object's size.
    pub(super) async fn upload_parts(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        source: &Source<'_>,
    ) -> Result<(Vec<SentPart>, u64), ShipError> {
        let file = source.path;
        let layout = Layout::new(source.size, source.growing.is_some(), self.opts.part_size);
        // Until a growing file ends, the number of parts is not known.
        let mut count = layout.count;
        // Parts stream from the file: memory stays at a few small read buffers per part in
        // flight, whatever the part size. The MD5 (Content-MD5, and the ETag to check) and the
        // CRC32 are computed first by reading the part once with a small buffer.
        let crc32_headers = self.crc32_headers();
        let mut in_flight = tokio::task::JoinSet::new();
        let mut next: u64 = 0;
        let mut sent = Vec::new();
        let mut total = 0u64;
        while next < count || !in_flight.is_empty() {
            while next < count && in_flight.len() < self.opts.upload_concurrency {
                let (offset, len) = layout.range(next);
                let growing = source.growing.cloned();
                let number = (next + 1) as i32;
                let path = file.to_path_buf();
                let request = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .set_expected_bucket_owner(self.owner())
                    .key(key.as_str())
                    .upload_id(upload_id)
                    .part_number(number);
                in_flight.spawn(async move {
                    let (len, open) = match &growing {
                        Some(g) => match g.range(offset, len).await? {
                            Range::Bytes(len) => (len, Some(g.open()?)),
                            Range::Past => return Ok(None),
                        },
                        None => (len, None),
                    };
                    let sum_file = match &open {
                        Some(f) => f.try_clone().context("cannot read the growing file")?,
                        None => File::open(&path)
                            .with_context(|| format!("cannot open {}", path.display()))?,
                    };
                    let sum_path = path.clone();
                    let (md5, crc32) = tokio::task::spawn_blocking(move || {
                        sums_of_file_range(&sum_file, &sum_path, offset, len)
                    })
                    .await??;
                    let crc32 = crc32_headers.then_some(crc32);
                    // Its own open file (its own offset): parts are read at once.
                    let body = match open {
                        Some(f) => ByteStream::read_from().file(tokio::fs::File::from_std(f)),
                        None => ByteStream::read_from().path(&path),
                    }
                    .offset(offset)
                    .length(Length::Exact(len))
                    .buffer_size(STREAM_BUFFER)
                    .build()
                    .await
                    .context("cannot read a part")?;
                    let out = request
                        .body(body)
                        .content_length(len as i64)
                        .content_md5(base64(md5))
                        .set_checksum_crc32(crc32.map(|c| base64(c.to_be_bytes())))
                        .send()
                        .await;
                    Ok::<_, anyhow::Error>(Some((number, len, md5, crc32, out)))
                });
                next += 1;
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            let Some((number, len, md5, crc32, out)) =
                joined.context("an upload task failed")??
            else {
                // A growing file ended before this part: no more parts.
                count = count.min(next);
                continue;
            };
            total += len;
            let out = out.map_err(|e| self.classify(e, Action::Multipart, key.as_str()))?;
            let etag = out
                .e_tag()
                .map(|e| e.trim_matches('"').to_string())
                .unwrap_or_default();
            if !self.is_kms() && etag != hex::encode(md5) {
                return Err(mismatch(
                    &self.url(key.as_str()),
                    &format!("part {number}: ETag {etag}"),
                    &hex::encode(md5),
                ));
            }
            source.progress.advance(len);
            sent.push(SentPart {
                number,
                etag,
                md5,
                crc32,
            });
        }
        sent.sort_by_key(|p| p.number);
        Ok((sent, total))
    }

    pub(super) async fn complete(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        ours: &Ours<'_>,
        parts: Vec<SentPart>,
    ) -> Result<Shipped, ShipError> {
        let size = ours.size.unwrap_or_default();
        let mut all = Md5::new();
        for p in &parts {
            all.update(p.md5);
        }
        let expected = format!("{}-{}", hex::encode(all.finalize()), parts.len());
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.number)
                            .e_tag(&p.etag)
                            .set_checksum_crc32(p.crc32.map(|c| base64(c.to_be_bytes())))
                            .build()
                    })
                    .collect(),
            ))
            .build();
        // Every byte is at the store now; what follows is the store's work, which can take
        // a while for a large object (a server that copies its parts into one file).
        info!(
            "all {} parts of {} are up ({size} bytes); completing the multipart upload",
            parts.len(),
            self.url(key.as_str())
        );
        let out = match self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .set_expected_bucket_owner(self.owner())
            .key(key.as_str())
            .upload_id(upload_id)
            .multipart_upload(completed)
            .if_none_match("*")
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if is_precondition_failed(&e) => {
                return self.written_meanwhile(key, ours).await;
            }
            Err(e) => return Err(self.classify(e, Action::Multipart, key.as_str())),
        };
        let etag = out.e_tag().map(|e| e.trim_matches('"').to_string());
        self.verify(key, size, etag.as_deref(), &expected).await?;
        Ok(Shipped::Written { bytes: size })
    }
}

/// The smallest part S3 takes, but for the last.
const MIN_PART: u64 = 5 << 20;

/// How a file is cut into parts.
#[derive(Debug, PartialEq)]
struct Layout {
    /// The first part's size: the smallest S3 takes for a growing file, so that its upload
    /// starts as soon as it can; otherwise `size`.
    first: u64,
    /// Every other part's size (the last may be shorter).
    size: u64,
    /// How many parts; `u64::MAX` for a growing file, whose end is not known yet.
    count: u64,
    /// Where the file ends; `u64::MAX` for a growing file (its reader says where it ends).
    end: u64,
}

impl Layout {
    /// `part_size` is the configured one. S3 allows 10 000 parts: a file too large for it
    /// gets larger parts. A growing .gz is at most a little larger than its plain file
    /// (stored blocks, headers), whose size is `file_size` then; its small first part takes
    /// one of the 10 000.
    fn new(file_size: u64, growing: bool, part_size: u64) -> Layout {
        if growing {
            let size = part_size.max(growing_bound(file_size).div_ceil(MAX_PARTS - 1));
            Layout {
                first: MIN_PART.min(size),
                size,
                count: u64::MAX,
                end: u64::MAX,
            }
        } else {
            let size = part_size.max(file_size.div_ceil(MAX_PARTS));
            Layout {
                first: size,
                size,
                count: file_size.div_ceil(size),
                end: file_size,
            }
        }
    }

    /// Where part `n` (from 0) starts and how long it is (at most, for a growing file).
    fn range(&self, n: u64) -> (u64, u64) {
        let (offset, len) = match n {
            0 => (0, self.first),
            n => (self.first + (n - 1) * self.size, self.size),
        };
        (offset, len.min(self.end.saturating_sub(offset)))
    }
}

/// How large the .gz of a plain file of `size` bytes can get (stored blocks, headers).
fn growing_bound(size: u64) -> u64 {
    size + size / 1000 + (1 << 20)
}

/// The MD5 and CRC32 of `len` bytes of `path` from `offset`, read with a small buffer.
pub(super) fn sums_of_range(path: &Path, offset: u64, len: u64) -> Result<([u8; 16], u32)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    sums_of_file_range(&file, path, offset, len)
}

/// [`sums_of_range`] of a file already open (`path` names it in errors).
fn sums_of_file_range(file: &File, path: &Path, offset: u64, len: u64) -> Result<([u8; 16], u32)> {
    let mut md5 = Md5::new();
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; STREAM_BUFFER];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..want], offset + done)
            .with_context(|| format!("cannot read {} at {}", path.display(), offset + done))?;
        md5.update(&buf[..want]);
        crc.update(&buf[..want]);
        done += want as u64;
    }
    Ok((md5.finalize().into(), crc.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_tile_the_file_with_a_small_first_one() {
        let mib = 1 << 20;
        let growing = Layout::new(100 * mib, true, 8 * mib);
        let ranges: Vec<(u64, u64)> = (0..4).map(|n| growing.range(n)).collect();
        assert_eq!(
            ranges,
            [
                (0, 5 * mib),
                (5 * mib, 8 * mib),
                (13 * mib, 8 * mib),
                (21 * mib, 8 * mib)
            ]
        );
        // A whole file: uniform parts, part n starts at n * size, the last one is what is
        // left, and the count covers it.
        let whole = Layout::new(100 * mib, false, 8 * mib);
        assert_eq!(whole.count, 13);
        assert!((0..12).all(|n| whole.range(n) == (n * 8 * mib, 8 * mib)));
        assert_eq!(whole.range(12), (96 * mib, 4 * mib));
    }

    #[test]
    fn no_file_needs_more_than_ten_thousand_parts() {
        let mib: u64 = 1 << 20;
        for size in [5 * mib, 80_000 * mib, 5 << 40] {
            let whole = Layout::new(size, false, 8 * mib);
            assert!(whole.count <= MAX_PARTS, "{size}: {whole:?}");
            // A growing file: its .gz may grow a little past the plain size; the parts
            // needed to cover that bound stay within S3's limit.
            let g = Layout::new(size, true, 8 * mib);
            let parts = 1 + (growing_bound(size) - g.first).div_ceil(g.size);
            assert!(parts <= MAX_PARTS, "{size}: {g:?} needs {parts}");
        }
    }
}
