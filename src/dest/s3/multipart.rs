//! Multipart uploads: the upload id journalled before the first part (the next run aborts
//! what a crash left), parts streamed from the file with their MD5 and CRC32, the
//! completion checked against the MD5 of the part MD5s.

use super::*;

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

    pub(super) async fn put_multipart(
        &self,
        key: &ObjectKey,
        source: &Source<'_>,
        sha256: &str,
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
            let parts = self.upload_parts(key, &upload_id, source).await?;
            self.complete(key, &upload_id, source.size, sha256, parts)
                .await
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
    /// comes; each part the store acknowledged is reported to the source's progress.
    pub(super) async fn upload_parts(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        source: &Source<'_>,
    ) -> Result<Vec<SentPart>, ShipError> {
        let (file, size) = (source.path, source.size);
        // S3 allows 10 000 parts: a file too large for the configured size gets larger parts.
        let part_size = self.opts.part_size.max(size.div_ceil(MAX_PARTS));
        let count = size.div_ceil(part_size);
        // Parts stream from the file: memory stays at a few small read buffers per part in
        // flight, whatever the part size. The MD5 (Content-MD5, and the ETag to check) and the
        // CRC32 are computed first by reading the part once with a small buffer.
        let crc32_headers = self.crc32_headers();
        let mut in_flight = tokio::task::JoinSet::new();
        let mut next: u64 = 0;
        let mut sent = Vec::with_capacity(count as usize);
        while next < count || !in_flight.is_empty() {
            while next < count && in_flight.len() < self.opts.upload_concurrency {
                let offset = next * part_size;
                let len = part_size.min(size - offset);
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
                    let sum_path = path.clone();
                    let (md5, crc32) =
                        tokio::task::spawn_blocking(move || sums_of_range(&sum_path, offset, len))
                            .await??;
                    let crc32 = crc32_headers.then_some(crc32);
                    let body = ByteStream::read_from()
                        .path(&path)
                        .offset(offset)
                        .length(Length::Exact(len))
                        .buffer_size(STREAM_BUFFER)
                        .build()
                        .await
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let out = request
                        .body(body)
                        .content_length(len as i64)
                        .content_md5(base64(md5))
                        .set_checksum_crc32(crc32.map(|c| base64(c.to_be_bytes())))
                        .send()
                        .await;
                    Ok::<_, anyhow::Error>((number, len, md5, crc32, out))
                });
                next += 1;
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            let (number, len, md5, crc32, out) = joined.context("an upload task failed")??;
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
        Ok(sent)
    }

    pub(super) async fn complete(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        size: u64,
        sha256: &str,
        parts: Vec<SentPart>,
    ) -> Result<Shipped, ShipError> {
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
                return self.written_meanwhile(key, size, sha256, None).await;
            }
            Err(e) => return Err(self.classify(e, Action::Multipart, key.as_str())),
        };
        let etag = out.e_tag().map(|e| e.trim_matches('"').to_string());
        self.verify(key, size, etag.as_deref(), &expected).await?;
        Ok(Shipped::Written { bytes: size })
    }
}

/// The MD5 and CRC32 of `len` bytes of `path` from `offset`, read with a small buffer.
pub(super) fn sums_of_range(path: &Path, offset: u64, len: u64) -> Result<([u8; 16], u32)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
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
