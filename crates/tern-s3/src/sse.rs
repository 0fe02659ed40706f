//! Object bytes at rest: every object, inline or in blobs, is sealed in the
//! segmented format of `tern_crypto::segments` under a data key. How that
//! data key is protected (region key, KMS, customer key) is decided in
//! [`crate::encryption`]; here a write gets a [`DataKey`] and a read gets a
//! [`KeyOpener`] that turns each header's wrapped key back into a data key.

use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use tern_crypto::segments::{Header, Opener, Sealer, cipher_range};
use tern_crypto::{Key256, wrap};
use tern_store::{BlobPart, BlobStore, ByteStream, StoreError};

/// Associated data binding region-wrapped data keys to this use.
const DATA_KEY_PURPOSE: &[u8] = b"tern/sse-s3/data-key";
/// Purpose under which the SSE-S3 key is derived from the region root key.
pub const KEK_PURPOSE: &[u8] = b"tern/sse-s3/kek/v1";

pub(crate) fn crypto_error(e: tern_crypto::CryptoError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The data key of a write, and the bytes every header of it carries so a
/// reader can recover the key.
pub(crate) struct DataKey {
    pub key: Key256,
    pub wrapped: Vec<u8>,
}

/// Recovers a data key from the wrapped key in a segment header.
pub(crate) trait KeyOpener: Send + Sync {
    fn open(&self, wrapped: &[u8]) -> io::Result<Key256>;
}

/// Data keys wrapped under one key-encryption key: the region's SSE-S3 key,
/// or a customer's SSE-C key, each with its own purpose label.
pub(crate) struct WrappedKeys {
    kek: Key256,
    purpose: &'static [u8],
}

impl WrappedKeys {
    /// SSE-S3: data keys wrapped under the region's key.
    #[must_use]
    pub(crate) fn region(kek: Key256) -> Self {
        Self { kek, purpose: DATA_KEY_PURPOSE }
    }

    /// SSE-C: data keys wrapped under the customer's key.
    #[must_use]
    pub(crate) fn customer(key: Key256) -> Self {
        Self { kek: key, purpose: b"tern/sse-c/data-key" }
    }

    /// A fresh data key, wrapped.
    pub(crate) fn new_data_key(&self) -> io::Result<DataKey> {
        let key = Key256::random().map_err(crypto_error)?;
        let wrapped = wrap::wrap_key(&self.kek, self.purpose, &key).map_err(crypto_error)?;
        Ok(DataKey { key, wrapped })
    }
}

impl KeyOpener for WrappedKeys {
    fn open(&self, wrapped: &[u8]) -> io::Result<Key256> {
        wrap::unwrap_key(&self.kek, self.purpose, wrapped).map_err(crypto_error)
    }
}

/// One known data key (SSE-KMS: every part of an object shares it).
pub(crate) struct KnownKey(pub DataKey);

impl KeyOpener for KnownKey {
    fn open(&self, wrapped: &[u8]) -> io::Result<Key256> {
        if wrapped == self.0.wrapped.as_slice() {
            Ok(self.0.key.clone())
        } else {
            Err(crypto_error(tern_crypto::CryptoError::Corrupt))
        }
    }
}

fn new_header(key: &DataKey) -> io::Result<Header> {
    Header::new(key.wrapped.clone()).map_err(crypto_error)
}

/// The binding metadata records for a blob with `header` (hex of its salt).
fn binding_of(header: &Header) -> Option<String> {
    header.binding().map(hex::encode)
}

/// Seals a small object in memory.
pub(crate) fn seal_bytes(key: &DataKey, plain: &[u8]) -> io::Result<Bytes> {
    let mut sealer = Sealer::new(&key.key, &new_header(key)?);
    let mut out = sealer.header().to_vec();
    for segment in sealer.push(plain).map_err(crypto_error)? {
        out.extend_from_slice(&segment);
    }
    out.extend_from_slice(&sealer.finish().map_err(crypto_error)?);
    Ok(Bytes::from(out))
}

/// Seals a plaintext stream on the fly, in bounded memory; returns the
/// sealed stream and the binding of the blob it becomes.
pub(crate) fn seal_stream(key: &DataKey, plain: ByteStream) -> io::Result<(ByteStream, Option<String>)> {
    let header = new_header(key)?;
    let sealer = Sealer::new(&key.key, &header);
    let first = sealer.header();
    Ok((transform(plain, sealer, Some(first)), binding_of(&header)))
}

/// Plaintext `range` of an inline object of `plain_len` bytes.
pub(crate) fn open_bytes(keys: &dyn KeyOpener, stored: &[u8], plain_len: u64, range: &Range<u64>) -> io::Result<Bytes> {
    let (header, header_len) = Header::decode(stored).map_err(crypto_error)?;
    let cipher = cipher_range(range, plain_len);
    let start = header_len + usize::try_from(cipher.start).map_err(io::Error::other)?;
    let end = header_len + usize::try_from(cipher.end).map_err(io::Error::other)?;
    let body = stored.get(start..end).ok_or_else(|| crypto_error(tern_crypto::CryptoError::Corrupt))?;
    let mut opener = Opener::new(&keys.open(&header.wrapped_key)?, &header, plain_len, range);
    let pieces = opener.push(body).map_err(crypto_error)?;
    opener.finish().map_err(crypto_error)?;
    Ok(Bytes::from(pieces.concat()))
}

/// Streams plaintext `range` of `part`, a blob holding `part.size` sealed
/// bytes; a blob whose header does not carry the binding its metadata
/// recorded (another blob put in its place) is refused.
pub(crate) async fn open_blob(
    keys: &dyn KeyOpener,
    blobs: &Arc<dyn BlobStore>,
    part: &BlobPart,
    range: Range<u64>,
) -> Result<ByteStream, StoreError> {
    let (blob, plain_len) = (part.blob.as_str(), part.size);
    let header = read_header(blobs, blob).await?;
    if part.binding.is_some() && binding_of(&header) != part.binding {
        return Err(StoreError::Corrupt(format!("blob {blob} is not the blob this object was written with")));
    }
    let header_len = header.encode().len() as u64;
    let cipher = cipher_range(&range, plain_len);
    let input = blobs.get(blob, header_len + cipher.start..header_len + cipher.end).await?;
    let opener = Opener::new(&keys.open(&header.wrapped_key)?, &header, plain_len, &range);
    Ok(transform(input, opener, None))
}

/// A push-style transformation of a byte stream, segment by segment.
trait Segments: Send + Sync + 'static {
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, tern_crypto::CryptoError>;
    /// What remains once the input has ended (the last sealed segment, if any).
    fn finish(self) -> Result<Option<Bytes>, tern_crypto::CryptoError>;
}

impl Segments for Sealer {
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, tern_crypto::CryptoError> {
        Sealer::push(self, chunk)
    }

    fn finish(self) -> Result<Option<Bytes>, tern_crypto::CryptoError> {
        Sealer::finish(self).map(Some)
    }
}

impl Segments for Opener {
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, tern_crypto::CryptoError> {
        Opener::push(self, chunk)
    }

    fn finish(self) -> Result<Option<Bytes>, tern_crypto::CryptoError> {
        Opener::finish(self).map(|()| None)
    }
}

/// Runs `input` through `segments`, emitting `first` before anything else.
/// After an error the stream ends: no bytes follow a failed authentication.
fn transform<T: Segments>(input: ByteStream, segments: T, first: Option<Bytes>) -> ByteStream {
    let state = (input, Some(segments), first.into_iter().collect::<VecDeque<_>>());
    Box::pin(futures::stream::unfold(state, |(mut input, mut segments, mut queue)| async move {
        loop {
            if let Some(bytes) = queue.pop_front() {
                return Some((Ok(bytes), (input, segments, queue)));
            }
            let active = segments.as_mut()?;
            let step = match input.next().await {
                Some(Ok(chunk)) => active.push(&chunk).map(|out| queue.extend(out)).map_err(crypto_error),
                Some(Err(e)) => Err(e),
                None => segments.take().expect("active").finish().map(|last| queue.extend(last)).map_err(crypto_error),
            };
            if let Err(e) = step {
                segments = None;
                return Some((Err(e), (input, segments, queue)));
            }
        }
    }))
}

async fn read_exact(blobs: &Arc<dyn BlobStore>, blob: &str, range: Range<u64>) -> Result<Vec<u8>, StoreError> {
    let want = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
    let mut stream = blobs.get(blob, range).await?;
    let mut out = Vec::with_capacity(want);
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    if out.len() == want { Ok(out) } else { Err(StoreError::Corrupt(format!("blob {blob} is truncated"))) }
}

/// The at-rest header of `blob`.
pub(crate) async fn read_header(blobs: &Arc<dyn BlobStore>, blob: &str) -> Result<Header, StoreError> {
    let corrupt = |_| StoreError::Corrupt(format!("blob {blob} has no valid header"));
    let first = read_exact(blobs, blob, 0..6).await?;
    let len = Header::encoded_len(&first).map_err(corrupt)?;
    let all = read_exact(blobs, blob, 0..len as u64).await?;
    Ok(Header::decode(&all).map_err(corrupt)?.0)
}
