//! Object bytes in any S3-compatible service (Ceph RGW, Garage, MinIO, AWS
//! S3, another Tern): the [`BlobStore`] of a region whose front-ends share
//! a bucket. Every byte arrives here already sealed by Tern's at-rest
//! encryption, so the service holds only ciphertext.
//!
//! A blob is one object, `<prefix>blobs/<id>`, written once: small ones with
//! one `PutObject`, larger ones as a multipart upload of `part_size` parts
//! (at most one part in memory), which becomes visible whole or not at all
//! when it completes. Nothing is acknowledged before the service has.

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use tern_store::{BlobStore, ByteStream, StoreError, StoreResult};

/// The smallest part S3 takes (but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// What part buffers may hold in all, in MiB (at least one part's worth).
const BUFFER_BUDGET_MIB: usize = 256;

/// Where the blobs go, and how to reach it.
#[derive(Clone)]
pub struct S3BlobsConfig {
    /// The service's URL; `None` for AWS S3 itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Prepended to every key (`""`, or ending in `/`).
    pub prefix: String,
    /// Static credentials; `None` takes them where the AWS SDKs look
    /// (`AWS_ACCESS_KEY_ID`…, profiles, instance roles).
    pub credentials: Option<(String, String)>,
    /// Bytes per part of a multipart upload, and the size above which one is used.
    pub part_size: usize,
}

/// Never shows the secret key.
impl std::fmt::Debug for S3BlobsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobsConfig")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.credentials.as_ref().map(|(key, _)| key))
            .finish_non_exhaustive()
    }
}

pub struct S3Blobs {
    client: Client,
    /// MiB of part buffers all writes may hold at once: a write waits for
    /// its part's worth, so many slow or concurrent PUTs cannot make the
    /// region hold a part size each without bound.
    buffers: Arc<tokio::sync::Semaphore>,
    bucket: String,
    prefix: String,
    part_size: usize,
    /// Named in errors: where the blobs are.
    server: String,
}

impl S3Blobs {
    /// A client for `config`; the bucket must exist and answer.
    ///
    /// # Errors
    /// `Unreachable` naming the service and bucket (never a secret).
    pub async fn open(config: &S3BlobsConfig) -> StoreResult<Self> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()));
        if let Some((key, secret)) = &config.credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                key,
                secret,
                None,
                None,
                "tern-config",
            ));
        }
        let shared = loader.load().await;
        let mut s3 = aws_sdk_s3::config::Builder::from(&shared).force_path_style(true);
        if let Some(endpoint) = &config.endpoint {
            s3 = s3.endpoint_url(endpoint);
        }
        let server = format!("{}/{}", config.endpoint.as_deref().unwrap_or("s3"), config.bucket);
        let part_size = config.part_size.max(MIN_PART_SIZE);
        let blobs = Self {
            client: Client::from_conf(s3.build()),
            buffers: Arc::new(tokio::sync::Semaphore::new(BUFFER_BUDGET_MIB.max(part_size >> 20))),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            part_size,
            server,
        };
        blobs.client.head_bucket().bucket(&blobs.bucket).send().await.map_err(|e| blobs.unreachable(&e))?;
        Ok(blobs)
    }

    fn key(&self, id: &str) -> StoreResult<String> {
        // Ids are ours (32 hex digits): anything else names no blob.
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::BlobMissing(id.to_owned()));
        }
        Ok(format!("{}blobs/{id}", self.prefix))
    }

    /// The service could not be asked, or failed: the region answers 503
    /// and the client retries.
    fn unreachable<E: std::fmt::Debug + aws_sdk_s3::error::ProvideErrorMetadata>(
        &self,
        e: &SdkError<E, HttpResponse>,
    ) -> StoreError {
        let reason = match e {
            SdkError::ServiceError(service) => {
                let err = service.err();
                format!("{}: {}", err.code().unwrap_or("error"), err.message().unwrap_or_default())
            }
            other => format!("{other:?}").chars().take(200).collect(),
        };
        StoreError::Unreachable { server: self.server.clone(), reason }
    }

    async fn put_whole(&self, key: &str, bytes: Bytes) -> StoreResult<()> {
        let put = self.client.put_object().bucket(&self.bucket).key(key).body(SdkStream::from(bytes));
        put.send().await.map_err(|e| self.unreachable(&e))?;
        Ok(())
    }

    /// A multipart upload of `first` and the rest of `body`; aborted if
    /// anything fails, so no part outlives a failed write.
    async fn put_parts(&self, key: &str, first: Bytes, body: &mut ByteStream) -> StoreResult<u64> {
        let created = self.client.create_multipart_upload().bucket(&self.bucket).key(key).send().await;
        let upload_id = created.map_err(|e| self.unreachable(&e))?.upload_id.unwrap_or_default();
        let uploaded = self.upload_parts(key, &upload_id, first, body).await;
        let completed = match uploaded {
            Ok((parts, size)) => {
                let all = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
                let complete = self.client.complete_multipart_upload().bucket(&self.bucket).key(key);
                match complete.upload_id(&upload_id).multipart_upload(all).send().await {
                    Ok(_) => return Ok(size),
                    Err(e) => Err(self.unreachable(&e)),
                }
            }
            Err(e) => Err(e),
        };
        let abort = self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(&upload_id);
        if let Err(e) = abort.send().await {
            tracing::warn!(error = %self.unreachable(&e), "a failed blob's upload stays until the sweep aborts it");
        }
        completed
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: Bytes,
        body: &mut ByteStream,
    ) -> StoreResult<(Vec<CompletedPart>, u64)> {
        let (mut parts, mut size) = (Vec::new(), 0);
        // A stream is never asked again once it has ended.
        let (mut part, mut ended) = (first, false);
        loop {
            size += part.len() as u64;
            let number = i32::try_from(parts.len() + 1).map_err(|_| StoreError::Corrupt("too many parts".into()))?;
            let upload = self.client.upload_part().bucket(&self.bucket).key(key).upload_id(upload_id);
            let answer = upload.part_number(number).body(SdkStream::from(part)).send().await;
            let etag = answer.map_err(|e| self.unreachable(&e))?.e_tag;
            parts.push(CompletedPart::builder().part_number(number).set_e_tag(etag).build());
            if ended {
                break;
            }
            let (more, done) = fill(body, self.part_size).await?;
            if more.is_empty() {
                break;
            }
            (part, ended) = (more, done);
        }
        Ok((parts, size))
    }
}

fn not_found<E>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e, SdkError::ServiceError(s) if s.raw().status().as_u16() == 404)
}

/// Up to `limit` bytes of `body`, and whether it ended.
async fn fill(body: &mut ByteStream, limit: usize) -> StoreResult<(Bytes, bool)> {
    let mut buffer = BytesMut::new();
    while buffer.len() < limit {
        match body.next().await {
            None => return Ok((buffer.freeze(), true)),
            Some(Err(e)) => return Err(StoreError::Body(e)),
            Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
        }
    }
    Ok((buffer.freeze(), false))
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, mut body: ByteStream) -> StoreResult<(String, u64)> {
        let permits = u32::try_from(self.part_size >> 20).unwrap_or(u32::MAX);
        let _buffer = self.buffers.acquire_many(permits).await.map_err(io::Error::other)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let key = self.key(&id)?;
        let (first, ended) = fill(&mut body, self.part_size).await?;
        if ended {
            let size = first.len() as u64;
            self.put_whole(&key, first).await?;
            return Ok((id, size));
        }
        let size = self.put_parts(&key, first, &mut body).await?;
        Ok((id, size))
    }

    async fn get(&self, id: &str, range: Range<u64>) -> StoreResult<ByteStream> {
        let key = self.key(id)?;
        if range.is_empty() {
            return match self.client.head_object().bucket(&self.bucket).key(&key).send().await {
                Ok(_) => Ok(Box::pin(futures::stream::empty())),
                Err(e) if not_found(&e) => Err(StoreError::BlobMissing(id.to_owned())),
                Err(e) => Err(self.unreachable(&e)),
            };
        }
        let bytes = format!("bytes={}-{}", range.start, range.end - 1);
        let object = match self.client.get_object().bucket(&self.bucket).key(&key).range(bytes).send().await {
            Ok(object) => object,
            Err(e) if not_found(&e) => return Err(StoreError::BlobMissing(id.to_owned())),
            Err(e) => return Err(self.unreachable(&e)),
        };
        let stream = futures::stream::unfold(object.body, |mut body| async move {
            body.try_next().await.map_err(io::Error::other).transpose().map(|chunk| (chunk, body))
        });
        Ok(Box::pin(stream))
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        let key = self.key(id)?;
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(|e| self.unreachable(&e))?;
        Ok(())
    }

    async fn list(&self, age: Duration) -> StoreResult<Vec<String>> {
        let prefix = format!("{}blobs/", self.prefix);
        let before = std::time::SystemTime::now() - age;
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(&prefix).into_paginator().send();
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            for object in page.map_err(|e| self.unreachable(&e))?.contents.unwrap_or_default() {
                let old_enough = age.is_zero()
                    || object
                        .last_modified
                        .and_then(|t| std::time::SystemTime::try_from(t).ok())
                        .is_some_and(|t| t < before);
                // Only names a blob of ours could have: anything else someone
                // put there is not the sweep's to judge (nor to stop it).
                let id = object.key.as_deref().and_then(|k| k.strip_prefix(&prefix)).filter(|id| self.key(id).is_ok());
                if let Some(id) = id
                    && old_enough
                {
                    ids.push(id.to_owned());
                }
            }
        }
        Ok(ids)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map_err(|e| self.unreachable(&e))?;
        Ok(())
    }

    async fn clear_incomplete(&self, age: Duration) -> StoreResult<()> {
        let prefix = format!("{}blobs/", self.prefix);
        let before = std::time::SystemTime::now() - age;
        let (mut key_marker, mut upload_marker) = (None, None);
        loop {
            let page = self.client.list_multipart_uploads().bucket(&self.bucket).prefix(&prefix);
            let page = page.set_key_marker(key_marker.take()).set_upload_id_marker(upload_marker.take()).send().await;
            let page = match page {
                Ok(page) => page,
                // Some services (s3s-fs) cannot list them: their own lifecycle
                // rules (AbortIncompleteMultipartUpload) must clear them.
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 501) => {
                    tracing::warn!(server = %self.server, "the blob service cannot list incomplete uploads; give its bucket a rule that aborts them");
                    return Ok(());
                }
                Err(e) => return Err(self.unreachable(&e)),
            };
            for upload in page.uploads.unwrap_or_default() {
                let started = upload.initiated.and_then(|t| std::time::SystemTime::try_from(t).ok());
                if !age.is_zero() && started.is_none_or(|t| t >= before) {
                    continue;
                }
                let (Some(key), Some(upload_id)) = (upload.key, upload.upload_id) else { continue };
                let abort = self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id);
                abort.send().await.map_err(|e| self.unreachable(&e))?;
            }
            if page.is_truncated != Some(true) {
                break;
            }
            (key_marker, upload_marker) = (page.next_key_marker, page.next_upload_id_marker);
        }
        Ok(())
    }
}
