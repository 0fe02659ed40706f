//! Writing: one PUT for small objects; for large ones, a multipart upload
//! with one GCM stream across its parts (as AWS's clients do), encrypted in
//! order while earlier parts upload. The plaintext is read once and never
//! held whole.

use std::collections::HashMap;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::cipher::{GcmParams, GcmSealer, TAG_LEN};
use crate::client::{EncryptionClient, ObjectRef, s3_error};
use crate::content::{nonce_len, seal};
use crate::envelope::{Envelope, context_for, keys};
use crate::error::{CseError, CseResult};

/// S3 allows at most this many parts.
const MAX_PARTS: u64 = 10_000;

/// What a PUT left in S3.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub version_id: Option<String>,
    pub e_tag: Option<String>,
    /// Parts of the multipart upload (1 for a single PUT).
    pub parts: u64,
    /// Plaintext bytes encrypted.
    pub bytes: u64,
}

/// Reads up to `limit` bytes, fewer only at the end of `source`, into a
/// buffer with room for `spare` more.
async fn read_up_to(source: &mut (impl AsyncRead + Unpin), limit: u64, spare: usize) -> CseResult<BytesMut> {
    let mut buffer = BytesMut::with_capacity(usize::try_from(limit).unwrap_or(usize::MAX) + spare);
    let mut taken = (&mut *source).take(limit);
    while taken.read_buf(&mut buffer).await? > 0 {}
    Ok(buffer)
}

/// One part's plaintext, sealed as the next piece of the object's GCM stream.
fn seal_part(sealer: &mut GcmSealer, plaintext: &[u8]) -> CseResult<BytesMut> {
    let mut part = BytesMut::with_capacity(plaintext.len() + TAG_LEN);
    sealer.seal(plaintext, &mut part)?;
    Ok(part)
}

/// Whether `sent` bytes are what the caller said the source holds.
fn check_length(expected: Option<u64>, sent: u64) -> CseResult<()> {
    match expected {
        Some(n) if n != sent => Err(CseError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the source held {sent} bytes, not the {n} announced"),
        ))),
        _ => Ok(()),
    }
}

impl EncryptionClient {
    /// Encrypts `source` into `object` under the caller's encryption
    /// `context`. `len` is the source's length if known; without it, the
    /// source is read to its end (a pipe). `progress` hears the plaintext
    /// bytes done, of `len` (0 if unknown).
    pub async fn put(
        &self,
        object: &ObjectRef,
        mut source: impl AsyncRead + Unpin + Send,
        len: Option<u64>,
        context: &[(String, String)],
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> CseResult<Written> {
        let suite = self.config.suite;
        let context = context_for(suite, context)?;
        let data_key = self.keyring.generate(&context).await?;
        let mut nonce = vec![0u8; nonce_len(suite)];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| CseError::Io(std::io::Error::other("no system randomness")))?;
        let (envelope, cipher) = seal(suite, &data_key, context, &nonce);
        drop(data_key);
        // Up to the multipart threshold, one PUT; an unknown length is
        // looked at that far to decide.
        let threshold = self.config.multipart_threshold;
        let head = match len {
            Some(n) if n > threshold => BytesMut::new(),
            Some(n) => read_up_to(&mut source, n, TAG_LEN).await?,
            None => read_up_to(&mut source, threshold + 1, TAG_LEN).await?,
        };
        let single = len.map_or(head.len() as u64 <= threshold, |n| n <= threshold);
        let written = if single {
            check_length(len, head.len() as u64)?;
            self.put_single(object, head, &envelope, &cipher).await?
        } else {
            let mut source = std::io::Cursor::new(head.freeze()).chain(source);
            self.put_multipart(object, &mut source, len, &envelope, cipher.sealer(), progress).await?
        };
        progress(written.bytes, written.bytes);
        if self.config.instruction_files.write {
            self.put_instruction_file(object, &envelope).await?;
        }
        Ok(written)
    }

    /// The user metadata the object itself carries.
    fn object_metadata(&self, envelope: &Envelope) -> HashMap<String, String> {
        let entries =
            if self.config.instruction_files.write { envelope.with_instruction_file().0 } else { envelope.entries() };
        entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    async fn put_single(
        &self,
        object: &ObjectRef,
        mut body: BytesMut,
        envelope: &Envelope,
        cipher: &GcmParams,
    ) -> CseResult<Written> {
        let bytes = body.len() as u64;
        cipher.seal_in_place(&mut body)?;
        let out = self
            .s3
            .put_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_metadata(Some(self.object_metadata(envelope)))
            .body(ByteStream::from(body.freeze()))
            .send()
            .await
            .map_err(|e| s3_error(object, &e))?;
        Ok(Written { version_id: out.version_id, e_tag: out.e_tag, parts: 1, bytes })
    }

    async fn put_multipart(
        &self,
        object: &ObjectRef,
        source: &mut (impl AsyncRead + Unpin + Send),
        len: Option<u64>,
        envelope: &Envelope,
        sealer: GcmSealer,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> CseResult<Written> {
        let created = self
            .s3
            .create_multipart_upload()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_metadata(Some(self.object_metadata(envelope)))
            .send()
            .await
            .map_err(|e| s3_error(object, &e))?;
        let upload_id = created.upload_id.ok_or_else(|| CseError::S3("S3 returned no upload id".into()))?;
        let (parts, bytes) = match self.upload_parts(object, &upload_id, source, len, sealer, progress).await {
            Ok(uploaded) => uploaded,
            Err(e) => {
                let abort = self.s3.abort_multipart_upload().bucket(&object.bucket).key(&object.key);
                if let Err(abort_error) = abort.upload_id(&upload_id).send().await {
                    tracing::warn!(%object, error = ?abort_error, "the failed upload could not be aborted");
                }
                return Err(e);
            }
        };
        let count = parts.len() as u64;
        let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
        let out = self
            .s3
            .complete_multipart_upload()
            .bucket(&object.bucket)
            .key(&object.key)
            .upload_id(&upload_id)
            .multipart_upload(done)
            .send()
            .await
            .map_err(|e| s3_error(object, &e))?;
        Ok(Written { version_id: out.version_id, e_tag: out.e_tag, parts: count, bytes })
    }

    /// Encrypts part after part in order (one GCM stream) while up to
    /// `concurrency` earlier parts upload. Each part waits until the next
    /// has been read, so the last one, which the tag ends, is known even
    /// when the length is not. The parts and the plaintext bytes sent.
    async fn upload_parts(
        &self,
        object: &ObjectRef,
        upload_id: &str,
        source: &mut (impl AsyncRead + Unpin + Send),
        len: Option<u64>,
        mut sealer: GcmSealer,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> CseResult<(Vec<CompletedPart>, u64)> {
        let part_size = self.config.part_size.max(len.unwrap_or(0).div_ceil(MAX_PARTS));
        let mut in_flight = FuturesUnordered::new();
        let mut done = Vec::new();
        let (mut number, mut sent) = (1, 0);
        let mut current = read_up_to(source, part_size, TAG_LEN).await?;
        loop {
            let next = read_up_to(source, part_size, TAG_LEN).await?;
            sent += current.len() as u64;
            let mut part = seal_part(&mut sealer, &current)?;
            if next.is_empty() {
                part.extend_from_slice(&sealer.finish());
                in_flight.push(self.upload_part(object, upload_id, number, part.freeze()));
                break;
            }
            if number == MAX_PARTS {
                return Err(CseError::NotAllowed(format!("over {MAX_PARTS} parts of {part_size} bytes")));
            }
            in_flight.push(self.upload_part(object, upload_id, number, part.freeze()));
            if in_flight.len() >= self.config.concurrency.max(1) {
                done.push(in_flight.next().await.expect("a part is in flight")?);
            }
            progress(sent, len.unwrap_or(0));
            (number, current) = (number + 1, next);
        }
        check_length(len, sent)?;
        while let Some(part) = in_flight.next().await {
            done.push(part?);
        }
        done.sort_by_key(|p: &CompletedPart| p.part_number);
        Ok((done, sent))
    }

    async fn upload_part(
        &self,
        object: &ObjectRef,
        upload_id: &str,
        number: u64,
        body: Bytes,
    ) -> CseResult<CompletedPart> {
        let number = i32::try_from(number).expect("at most 10,000 parts");
        let out = self
            .s3
            .upload_part()
            .bucket(&object.bucket)
            .key(&object.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_error(object, &e))?;
        Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag).build())
    }

    /// Writes the envelope's data-key entries to `<key>.instruction`.
    async fn put_instruction_file(&self, object: &ObjectRef, envelope: &Envelope) -> CseResult<()> {
        let (_, body) = envelope.with_instruction_file();
        let file = ObjectRef { bucket: object.bucket.clone(), key: format!("{}.instruction", object.key) };
        self.s3
            .put_object()
            .bucket(&file.bucket)
            .key(&file.key)
            .metadata(keys::INSTRUCTION_FILE, "")
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .map_err(|e| s3_error(&file, &e))?;
        Ok(())
    }
}
