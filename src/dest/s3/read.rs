//! Reading the bucket back for `fasttrack report`: prefixes listed (every page) and the small
//! objects under them fetched, both at once on the client's runtime. A large object is
//! streamed by `S3Dest::read_object`.
//!
//! Why at once: a GET is bound by the store's latency, not by bandwidth (about 10 ms a request
//! on the local s3s-fs, tens of ms on S3), so 20 000 records take 20 000 latencies divided by
//! the requests in flight; and each prefix is listed by a task of its own, page after page,
//! its keys fetched as soon as a page arrives instead of after the last one (BENCHMARKS.md,
//! figure 12). Memory holds the keys waiting and the objects in flight, never all the objects.

use super::*;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error;
use std::collections::VecDeque;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Why one GET failed: the request (sorted by [`S3Dest::get_error`]) or its body.
enum Failed {
    Request(Box<SdkError<GetObjectError, HttpResponse>>),
    Body(aws_smithy_types::byte_stream::error::Error),
}

/// One page of a listing, or the prefix whose listing failed and why.
type Page = Result<Vec<String>, (String, Box<SdkError<ListObjectsV2Error, HttpResponse>>)>;

/// Lists `prefix`, every page, sending each page's keys as soon as it is listed; stops at
/// the first error (sent too) or when nobody listens any more.
/// Where to list: the client, the bucket and its expected owner (`--expected-bucket-owner`).
type Lister = (Client, String, Option<String>);

async fn list_pages((client, bucket, owner): Lister, prefix: String, pages: mpsc::Sender<Page>) {
    let mut token: Option<String> = None;
    loop {
        let listed = client
            .list_objects_v2()
            .bucket(&bucket)
            .set_expected_bucket_owner(owner.clone())
            .prefix(&prefix)
            .set_continuation_token(token.take())
            .send()
            .await;
        let page = match listed {
            Ok(page) => page,
            Err(e) => {
                let _ = pages.send(Err((prefix, Box::new(e)))).await;
                return;
            }
        };
        let keys = page.contents().iter().filter_map(|o| o.key());
        if pages
            .send(Ok(keys.map(str::to_string).collect()))
            .await
            .is_err()
        {
            return;
        }
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
            _ => return,
        }
    }
}

impl S3Dest {
    fn lister(&self) -> Lister {
        (self.client.clone(), self.bucket.clone(), self.owner())
    }

    /// The keys under `prefix`, every page of ListObjectsV2, in key order.
    pub(super) fn list_keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.rt.block_on(async {
            let (tx, mut pages) = mpsc::channel(2);
            let mut lister = JoinSet::new();
            lister.spawn(list_pages(self.lister(), prefix.to_string(), tx));
            let mut keys = Vec::new();
            while let Some(page) = pages.recv().await {
                keys.extend(page.map_err(|(prefix, e)| self.list_error(*e, &prefix))?);
            }
            Ok(keys)
        })
    }

    /// [`crate::dest::Destination::fetch_under`]: every prefix listed by a task of its own,
    /// at most `concurrency` GETs in flight, each object handed to `each` as it arrives.
    pub(super) fn fetch_listed(
        &self,
        prefixes: &[String],
        suffix: &str,
        concurrency: usize,
        each: &mut dyn FnMut(&str, Result<Vec<u8>>),
    ) -> Result<()> {
        self.rt.block_on(async {
            let (tx, mut pages) = mpsc::channel(2 * prefixes.len().max(1));
            // Dropped on return: an error stops every listing and fetch still running.
            let mut listers = JoinSet::new();
            for prefix in prefixes {
                listers.spawn(list_pages(self.lister(), prefix.clone(), tx.clone()));
            }
            drop(tx);
            let mut waiting: VecDeque<String> = VecDeque::new();
            let mut gets = JoinSet::new();
            let mut listing = true;
            loop {
                while gets.len() < concurrency.max(1) {
                    let Some(key) = waiting.pop_front() else { break };
                    let request = self
                        .client
                        .get_object()
                        .bucket(&self.bucket)
                        .set_expected_bucket_owner(self.owner())
                        .key(&key);
                    gets.spawn(async move {
                        let got = match request.send().await {
                            Ok(out) => out.body.collect().await.map_err(Failed::Body),
                            Err(e) => Err(Failed::Request(Box::new(e))),
                        };
                        (key, got.map(|body| body.into_bytes().to_vec()))
                    });
                }
                tokio::select! {
                    page = pages.recv(), if listing => match page {
                        Some(Ok(keys)) => {
                            waiting.extend(keys.into_iter().filter(|k| k.ends_with(suffix)));
                        }
                        Some(Err((prefix, e))) => return Err(self.list_error(*e, &prefix)),
                        None => listing = false,
                    },
                    Some(joined) = gets.join_next(), if !gets.is_empty() => self.hand_over(joined, each),
                    else => return Ok(()),
                }
            }
        })
    }

    /// Gives one finished GET to `each`, with the error worded for people.
    fn hand_over(
        &self,
        joined: Result<(String, Result<Vec<u8>, Failed>), tokio::task::JoinError>,
        each: &mut dyn FnMut(&str, Result<Vec<u8>>),
    ) {
        match joined {
            Ok((key, got)) => {
                let got = got.map_err(|failed| match failed {
                    Failed::Request(e) => self.get_error(*e, &key),
                    Failed::Body(e) => {
                        anyhow::Error::new(e).context(format!("cannot read {}", self.url(&key)))
                    }
                });
                each(&key, got);
            }
            // A panic in a task is one of the process: the crash hook reports it.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }

    fn list_error(
        &self,
        e: SdkError<ListObjectsV2Error, HttpResponse>,
        prefix: &str,
    ) -> anyhow::Error {
        anyhow::Error::from(self.classify(e, Action::List, prefix))
            .context(format!("cannot list {}", self.url(prefix)))
    }

    /// A failed GetObject, with what to do: a missing key is named as such, the rest is
    /// sorted like every S3 error ([`S3Dest::classify`]).
    pub(super) fn get_error(
        &self,
        e: SdkError<GetObjectError, HttpResponse>,
        key: &str,
    ) -> anyhow::Error {
        match e.code() {
            Some("NoSuchKey") => anyhow!(
                "{} does not exist; list the bucket with `aws s3 ls` and check the key",
                self.url(key)
            ),
            _ => self.classify(e, Action::Head, key).into(),
        }
    }

    /// The bytes of a small object.
    pub(super) fn get_bytes(&self, key: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.read_object(key, &mut bytes)?;
        Ok(bytes)
    }
}
