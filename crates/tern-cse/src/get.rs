//! Reading: the envelope (with the instruction file when the object's own
//! metadata lacks it), the policy and context checks, the data key from
//! KMS, then the ciphertext streamed through decryption. Plaintext is
//! released only once the tag verifies: into a temporary file renamed into
//! place, or into memory.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::cipher::{ContentKey, TAG_LEN};
use crate::client::{EncryptionClient, ObjectRef, s3_error};
use crate::content::{ContentOpener, open_in_place, range_opener};
use crate::envelope::{self, Envelope, Metadata, check_context, needs_instruction_file, parse_instruction_file};
use crate::error::{CseError, CseResult};

/// How the temporary file of a download into `dest` is named.
fn partial_prefix(dest: &Path) -> String {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!(".tern-cse-{name}.partial-")
}

/// Overwrites `file` with zeros, so its unauthenticated plaintext does not
/// outlive it on disk (removing a file frees its blocks without erasing them).
async fn scrub(file: &mut tokio::fs::File) -> std::io::Result<()> {
    use tokio::io::AsyncSeekExt as _;
    let len = file.metadata().await?.len();
    file.seek(std::io::SeekFrom::Start(0)).await?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(zeros.len());
        file.write_all(&zeros[..n]).await?;
        left -= n as u64;
    }
    file.sync_data().await
}

/// Scrubs and removes what an interrupted download of the same target left.
async fn scrub_leftovers(dir: &Path, prefix: &str) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else { return };
    while let Ok(Some(entry)) = entries.next_entry().await {
        // Only regular files of ours: a link planted under the name must not
        // turn the scrub against the file it points to.
        let regular = entry.file_type().await.is_ok_and(|t| t.is_file());
        if !regular || !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let open = tokio::fs::OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(entry.path()).await;
        let scrubbed = match open {
            Ok(mut file) => scrub(&mut file).await,
            Err(e) => Err(e),
        };
        if let Err(e) = scrubbed.and(tokio::fs::remove_file(entry.path()).await) {
            tracing::warn!(file = %entry.path().display(), error = %e, "could not remove an interrupted download");
        }
    }
}

/// What `inspect` sees without decrypting anything.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    pub object: String,
    pub format: String,
    pub algorithm: String,
    pub key_wrap: String,
    /// The stored encryption context, reserved entries included.
    pub encryption_context: Vec<(String, String)>,
    pub key_commitment: bool,
    pub instruction_file: bool,
    pub stored_bytes: u64,
    /// Known for GCM objects (stored bytes less the tag).
    pub plaintext_bytes: Option<u64>,
}

impl EncryptionClient {
    /// The envelope of `object`, whose user metadata is `metadata`; whether
    /// it came (in part) from the instruction file.
    async fn envelope_of(
        &self,
        object: &ObjectRef,
        metadata: Option<&HashMap<String, String>>,
    ) -> CseResult<(Envelope, bool)> {
        let own: Metadata =
            metadata.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
        if !needs_instruction_file(&own) || !self.config.instruction_files.read {
            return envelope::parse(&own, None).map(|e| (e, false)).map_err(|e| named(e, object));
        }
        let file = self.instruction_file(object).await?;
        match file {
            Some(file) => envelope::parse(&own, Some(&file)).map(|e| (e, true)),
            None => envelope::parse(&own, None).map(|e| (e, false)),
        }
        .map_err(|e| named(e, object))
    }

    /// The entries of `<key>.instruction`, if there is one.
    async fn instruction_file(&self, object: &ObjectRef) -> CseResult<Option<Metadata>> {
        let file = ObjectRef { bucket: object.bucket.clone(), key: format!("{}.instruction", object.key) };
        let got = self.s3.get_object().bucket(&file.bucket).key(&file.key).send().await;
        let out = match got {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(s3_error(&file, &e)),
        };
        if usize::try_from(out.content_length.unwrap_or(0)).unwrap_or(usize::MAX) > envelope::MAX_INSTRUCTION_FILE {
            return Err(CseError::Malformed(format!("{file} is too large to be an instruction file")));
        }
        let body = out.body.collect().await.map_err(|e| CseError::S3(format!("{file}: {e}")))?;
        parse_instruction_file(&body.into_bytes()).map(Some)
    }

    /// Whether this client's policy and the caller's encryption context
    /// accept `envelope` (before anything is asked of KMS).
    fn admit(&self, envelope: &Envelope, context: &[(String, String)]) -> CseResult<()> {
        self.check_readable(envelope)?;
        check_context(envelope, context)
    }

    /// The object's data key, from KMS.
    async fn data_key(&self, envelope: &Envelope) -> CseResult<ContentKey> {
        self.keyring.decrypt(&envelope.encrypted_key, &envelope.context).await
    }

    async fn fetch(
        &self,
        object: &ObjectRef,
        range: Option<String>,
    ) -> CseResult<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        let request = self.s3.get_object().bucket(&object.bucket).key(&object.key).set_range(range);
        request.send().await.map_err(|e| s3_error(object, &e))
    }

    /// Decrypts `object` into `dest` through a private temporary file beside
    /// it, which becomes `dest` only once the content authenticates. A
    /// failed or tampered download is overwritten with zeros and removed, so
    /// no unauthenticated plaintext stays behind; what a crash left of an
    /// earlier download of `dest` goes the same way before this one starts.
    /// `progress` hears the plaintext bytes done, of about how many. The
    /// plaintext length.
    pub async fn get_to_file(
        &self,
        object: &ObjectRef,
        dest: &Path,
        context: &[(String, String)],
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> CseResult<u64> {
        let opened = self.open(object, context).await?;
        let dir = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let prefix = partial_prefix(dest);
        scrub_leftovers(dir, &prefix).await;
        let temp = tempfile::Builder::new().prefix(&prefix).tempfile_in(dir)?;
        let (file, path) = temp.into_parts();
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
        let written = opened.decrypt_into(object, &mut file, progress).await;
        let mut file = file.into_inner();
        let len = match written {
            Ok(len) => len,
            Err(e) => {
                if let Err(scrub_error) = scrub(&mut file).await {
                    tracing::warn!(error = %scrub_error, "could not overwrite a failed download");
                }
                return Err(e);
            }
        };
        file.sync_all().await?;
        drop(file);
        path.persist(dest).map_err(|e| e.error)?;
        Ok(len)
    }

    /// Decrypts `object` into memory; returned only once authenticated.
    pub async fn get_bytes(&self, object: &ObjectRef, context: &[(String, String)]) -> CseResult<Bytes> {
        self.get_bytes_at_most(object, context, u64::MAX).await
    }

    /// [`Self::get_bytes`] for an object of at most `limit` plaintext bytes;
    /// a larger one is refused before its body is read.
    pub async fn get_bytes_at_most(
        &self,
        object: &ObjectRef,
        context: &[(String, String)],
        limit: u64,
    ) -> CseResult<Bytes> {
        let mut plaintext = Vec::new();
        let result = self.read_whole(object, context, &mut plaintext, limit).await;
        if result.is_err() {
            zeroize::Zeroize::zeroize(&mut plaintext);
        }
        result.map(|()| Bytes::from(plaintext))
    }

    /// Decrypts `object` into `buffer` (replacing what it held), reusing its
    /// allocation: a reader of many objects pays for memory once. On error
    /// `buffer` is left empty and its memory zeroed (a failed in-place open
    /// may leave unauthenticated plaintext there). GCM objects are decrypted
    /// in place, in one aws-lc-rs call.
    pub async fn get_into_vec(
        &self,
        object: &ObjectRef,
        context: &[(String, String)],
        buffer: &mut Vec<u8>,
    ) -> CseResult<()> {
        buffer.clear();
        let result = self.read_whole(object, context, buffer, u64::MAX).await;
        if result.is_err() {
            zeroize::Zeroize::zeroize(buffer);
        }
        result
    }

    async fn read_whole(
        &self,
        object: &ObjectRef,
        context: &[(String, String)],
        buffer: &mut Vec<u8>,
        limit: u64,
    ) -> CseResult<()> {
        let started = self.start(object).await?;
        if started.expected > limit {
            return Err(CseError::TooLarge { object: object.to_string(), bytes: started.expected, limit });
        }
        self.admit(&started.envelope, context)?;
        buffer.reserve(usize::try_from(started.expected).unwrap_or(0) + TAG_LEN);
        if started.envelope.suite.is_legacy() {
            let key = self.data_key(&started.envelope).await?;
            return started.with_key(key).decrypt_into(object, buffer, &|_, _| {}).await.map(drop);
        }
        // KMS unwraps the data key while the stored bytes arrive; nothing is
        // decrypted before both are here.
        let (envelope, body) = (&started.envelope, started.body);
        let (key, ()) = tokio::try_join!(self.data_key(envelope), read_all(object, body, buffer))?;
        let len = open_in_place(envelope, &key, buffer)?;
        buffer.truncate(len);
        Ok(())
    }

    /// Streams `object`'s plaintext into `out` as it decrypts, as the
    /// official clients' "delayed authentication" mode does: what reaches
    /// `out` is authenticated only once this returns `Ok`, and on an error
    /// the caller must discard all of it. For consumers that cannot hold an
    /// object (a pipe, a hash); [`Self::get_to_file`] and [`Self::get_bytes`]
    /// release nothing unauthenticated.
    pub async fn get_with_delayed_authentication(
        &self,
        object: &ObjectRef,
        out: &mut (impl AsyncWrite + Unpin),
        context: &[(String, String)],
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> CseResult<u64> {
        self.open(object, context).await?.decrypt_into(object, out, progress).await
    }

    /// Starts reading `object`: its envelope, its body ready to stream.
    async fn start(&self, object: &ObjectRef) -> CseResult<Started> {
        let got = self.fetch(object, None).await?;
        let stored = u64::try_from(got.content_length.unwrap_or(0)).unwrap_or(0);
        let (envelope, _) = self.envelope_of(object, got.metadata.as_ref()).await?;
        Ok(Started { envelope, body: got.body, expected: stored.saturating_sub(TAG_LEN as u64) })
    }

    /// Starts reading `object` with its envelope admitted and its data key unwrapped.
    async fn open(&self, object: &ObjectRef, context: &[(String, String)]) -> CseResult<Opened> {
        let started = self.start(object).await?;
        self.admit(&started.envelope, context)?;
        let key = self.data_key(&started.envelope).await?;
        Ok(started.with_key(key))
    }

    /// Plaintext bytes `range` of `object`, decrypted through the CTR suites
    /// of the specification. Nothing authenticates them: a ranged read cannot
    /// see the tag, so the client must allow them
    /// ([`crate::LegacyModes::unauthenticated_ranges`]). The object's key
    /// commitment is still verified.
    pub async fn get_range_unauthenticated(
        &self,
        object: &ObjectRef,
        range: RangeInclusive<u64>,
        context: &[(String, String)],
    ) -> CseResult<Bytes> {
        if !self.config.legacy.unauthenticated_ranges {
            return Err(CseError::NotAllowed(
                "ranged reads cannot be authenticated; allow unauthenticated ranges to make them".into(),
            ));
        }
        let (start, end) = (*range.start(), *range.end());
        if start > end {
            return Err(CseError::NotAllowed(format!("the range {start}-{end} is empty")));
        }
        let first_block = start / 16;
        let got = self.fetch(object, Some(format!("bytes={}-{end}", first_block * 16))).await?;
        let total = got.content_range.as_deref().and_then(|r| r.rsplit('/').next()?.parse::<u64>().ok());
        let (envelope, _) = self.envelope_of(object, got.metadata.as_ref()).await?;
        self.admit(&envelope, context)?;
        let key = self.data_key(&envelope).await?;
        let mut opener = range_opener(&envelope, &key, first_block)?;
        let stored = got.body.collect().await.map_err(|e| CseError::S3(format!("{object}: {e}")))?.into_bytes();
        let total =
            total.ok_or_else(|| CseError::S3(format!("{object}: a ranged read came back without its length")))?;
        let plaintext_len = total.saturating_sub(TAG_LEN as u64);
        let ciphertext_end = match plaintext_len.checked_sub(first_block * 16) {
            Some(end) if start < plaintext_len => end,
            _ => {
                return Err(CseError::NotAllowed(format!(
                    "the range starts at byte {start}, past the {plaintext_len} bytes of {object}"
                )));
            }
        };
        let ciphertext = &stored[..usize::try_from(ciphertext_end).unwrap_or(usize::MAX).min(stored.len())];
        let mut plaintext = BytesMut::new();
        opener.open(ciphertext, &mut plaintext);
        let skip = usize::try_from(start - first_block * 16).unwrap_or(usize::MAX).min(plaintext.len());
        let plaintext = plaintext.freeze().slice(skip..);
        let wanted = usize::try_from(end - start + 1).unwrap_or(usize::MAX).min(plaintext.len());
        Ok(plaintext.slice(..wanted))
    }

    /// How `object` is encrypted, from its metadata alone.
    pub async fn inspect(&self, object: &ObjectRef) -> CseResult<Inspection> {
        let head = self.s3.head_object().bucket(&object.bucket).key(&object.key).send().await;
        let head = head.map_err(|e| s3_error(object, &e))?;
        let (envelope, instruction_file) = self.envelope_of(object, head.metadata.as_ref()).await?;
        let stored = u64::try_from(head.content_length.unwrap_or(0)).unwrap_or(0);
        Ok(Inspection {
            object: object.to_string(),
            format: format!("{:?}", envelope.format),
            algorithm: envelope.suite.name().to_owned(),
            key_wrap: envelope.wrap.name().to_owned(),
            encryption_context: envelope.context.clone(),
            key_commitment: envelope.commitment.is_some(),
            instruction_file,
            stored_bytes: stored,
            plaintext_bytes: (!envelope.suite.is_legacy()).then(|| stored.saturating_sub(TAG_LEN as u64)),
        })
    }
}

/// An object whose reading has begun: its envelope and stored bytes.
struct Started {
    envelope: Envelope,
    body: ByteStream,
    /// About how many plaintext bytes to expect.
    expected: u64,
}

impl Started {
    fn with_key(self, key: ContentKey) -> Opened {
        Opened { envelope: self.envelope, key, body: self.body, expected: self.expected }
    }
}

/// All of a body, appended to `buffer`.
async fn read_all(object: &ObjectRef, mut body: ByteStream, buffer: &mut Vec<u8>) -> CseResult<()> {
    while let Some(chunk) = body.try_next().await.map_err(|e| CseError::S3(format!("{object}: {e}")))? {
        buffer.extend_from_slice(&chunk);
    }
    Ok(())
}

/// An object being read: its envelope, data key and stored bytes.
struct Opened {
    envelope: Envelope,
    key: ContentKey,
    body: ByteStream,
    /// About how many plaintext bytes to expect.
    expected: u64,
}

impl Opened {
    /// Streams the decrypted object into `out`, then verifies it; the caller
    /// must discard `out` on error.
    async fn decrypt_into(
        mut self,
        object: &ObjectRef,
        out: &mut (impl AsyncWrite + Unpin),
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> CseResult<u64> {
        let mut opener = ContentOpener::new(&self.envelope, &self.key)?;
        let mut plaintext = BytesMut::new();
        let mut done = 0;
        while let Some(chunk) = self.body.try_next().await.map_err(|e| CseError::S3(format!("{object}: {e}")))? {
            opener.update(&chunk, &mut plaintext)?;
            done += plaintext.len() as u64;
            out.write_all(&plaintext).await?;
            plaintext.clear();
            progress(done, self.expected);
        }
        opener.finish(&mut plaintext)?;
        done += plaintext.len() as u64;
        out.write_all(&plaintext).await?;
        out.flush().await?;
        Ok(done)
    }
}

/// Names the object in a "not encrypted" error.
fn named(e: CseError, object: &ObjectRef) -> CseError {
    match e {
        CseError::NotEncrypted(_) => CseError::NotEncrypted(object.to_string()),
        other => other,
    }
}
