//! Taking in a request body: one pass that stores the bytes, computes the MD5
//! for the `ETag` and the flexible checksum the client asked for, and verifies
//! both against what the client declared. Nothing is hashed twice.

use std::io;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use http::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};
use s3s::dto::StreamingBlob;
use s3s::{S3Result, TrailingHeaders, s3_error};
use tern_store::{ByteStream, ObjectData, StoredChecksum};

use crate::error::{incomplete_body, internal, store_error};
use crate::md5_lanes::Md5Lane;
use crate::region::Region;
use crate::sse::{DataKey, seal_bytes, seal_stream};

/// Objects up to this size live inline in the metadata row: a small PUT then
/// costs one fsync (the WAL commit) instead of three (file, directory, WAL).
pub(crate) const INLINE_MAX: u64 = 64 * 1024;

pub(crate) const CHECKSUM_ALGORITHMS: [&str; 5] = ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"];

/// What the client declared about the body it sends.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    pub content_length: Option<u64>,
    /// Base64 `Content-MD5`.
    pub content_md5: Option<String>,
    /// Flexible checksum algorithm (upper case) and, if sent as a header, its value.
    pub checksum: Option<(String, Option<String>)>,
}

impl Declared {
    /// Reads the checksum declaration from the request headers: an
    /// `x-amz-checksum-*` value, else `x-amz-sdk-checksum-algorithm`, else the
    /// algorithm named by `x-amz-trailer`.
    pub fn from_headers(headers: &HeaderMap, content_length: Option<i64>, content_md5: Option<String>) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let with_value = CHECKSUM_ALGORITHMS.iter().find_map(|alg| {
            header(&format!("x-amz-checksum-{}", alg.to_lowercase())).map(|v| ((*alg).to_owned(), Some(v)))
        });
        let algorithm_only = || {
            header("x-amz-sdk-checksum-algorithm")
                .or_else(|| header("x-amz-trailer").and_then(|t| t.strip_prefix("x-amz-checksum-").map(str::to_owned)))
                .map(|alg| (alg.to_uppercase(), None))
        };
        Self {
            content_length: content_length.and_then(|n| u64::try_from(n).ok()),
            content_md5,
            checksum: with_value.or_else(algorithm_only),
        }
    }
}

/// A body that has been stored and verified.
#[derive(Debug)]
pub(crate) struct Ingested {
    pub data: ObjectData,
    pub size: u64,
    pub md5: [u8; 16],
    pub checksum: Option<StoredChecksum>,
}

struct Hashes {
    md5: Md5Lane,
    checksum: ChecksumHasher,
    plain_len: u64,
}

/// A hasher for one flexible checksum algorithm (upper-case AWS name).
pub(crate) fn checksum_hasher(algorithm: &str) -> S3Result<ChecksumHasher> {
    let mut hasher = ChecksumHasher::default();
    match algorithm {
        "CRC32" => hasher.crc32 = Some(Crc32::default()),
        "CRC32C" => hasher.crc32c = Some(Crc32c::default()),
        "SHA1" => hasher.sha1 = Some(Sha1::new()),
        "SHA256" => hasher.sha256 = Some(Sha256::new()),
        "CRC64NVME" => hasher.crc64nvme = Some(Crc64Nvme::default()),
        other => {
            return Err(s3_error!(InvalidRequest, "Value for x-amz-checksum-algorithm header is invalid: {other}"));
        }
    }
    Ok(hasher)
}

/// The base64 value a finished hasher computed for `algorithm`.
pub(crate) fn checksum_value(algorithm: &str, hasher: ChecksumHasher) -> Option<String> {
    let sums = hasher.finalize();
    match algorithm {
        "CRC32" => sums.checksum_crc32,
        "CRC32C" => sums.checksum_crc32c,
        "SHA1" => sums.checksum_sha1,
        "SHA256" => sums.checksum_sha256,
        _ => sums.checksum_crc64nvme,
    }
}

/// Stores `body` (inline if small, else as a blob) sealed under `key`, and
/// verifies it. On any failure nothing remains stored.
pub(crate) async fn ingest(
    region: &Region,
    body: Option<StreamingBlob>,
    declared: &Declared,
    trailers: Option<&TrailingHeaders>,
    allow_inline: bool,
    key: &DataKey,
) -> S3Result<Ingested> {
    let checksum_alg = declared.checksum.as_ref().map(|(alg, _)| alg.clone());
    let hashes = Arc::new(Mutex::new(Hashes {
        md5: Md5Lane::on(&region.md5_lanes),
        plain_len: 0,
        checksum: checksum_alg.as_deref().map_or_else(|| Ok(ChecksumHasher::default()), checksum_hasher)?,
    }));
    let stream: ByteStream = match body {
        Some(body) => {
            let hashes = Arc::clone(&hashes);
            Box::pin(body.map_err(io::Error::other).inspect_ok(move |chunk| {
                let mut h = hashes.lock().expect("hash state is never poisoned");
                h.md5.push(chunk.clone());
                h.checksum.update(chunk);
                h.plain_len += chunk.len() as u64;
            }))
        }
        None => Box::pin(futures::stream::empty()),
    };

    let inline = allow_inline && declared.content_length.is_some_and(|n| n <= INLINE_MAX);
    let data = if inline {
        let plain = collect_bounded(stream, INLINE_MAX).await?;
        ObjectData::Inline(seal_bytes(key, &plain).map_err(internal)?)
    } else {
        let (sealed, binding) = seal_stream(key, stream).map_err(internal)?;
        let (blob, _stored_len) = region.blobs.put(sealed).await.map_err(store_error)?;
        let plain_len = hashes.lock().expect("not poisoned").plain_len;
        ObjectData::Blobs(vec![tern_store::BlobPart { blob, size: plain_len, binding }])
    };

    let hashes = Arc::try_unwrap(hashes).ok().expect("the body stream is consumed").into_inner().expect("not poisoned");
    let size = hashes.plain_len;
    let md5 = hashes.md5.finish().await.map_err(internal);
    let verified =
        md5.and_then(|md5| Ok((md5, verify(declared, trailers, size, &md5, checksum_alg, hashes.checksum)?)));
    match verified {
        Ok((md5, checksum)) => Ok(Ingested { data, size, md5, checksum }),
        Err(e) => {
            region.release_blobs(&data.blob_ids().map(str::to_owned).collect::<Vec<_>>()).await;
            Err(e)
        }
    }
}

async fn collect_bounded(mut stream: ByteStream, limit: u64) -> S3Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| crate::error::body_error(&e))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(incomplete_body());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn verify(
    declared: &Declared,
    trailers: Option<&TrailingHeaders>,
    size: u64,
    md5: &[u8; 16],
    checksum_alg: Option<String>,
    hasher: ChecksumHasher,
) -> S3Result<Option<StoredChecksum>> {
    if declared.content_length.is_some_and(|n| n != size) {
        return Err(incomplete_body());
    }
    if let Some(claimed) = &declared.content_md5 {
        let claimed = base64_decode(claimed)
            .filter(|d| d.len() == 16)
            .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid."))?;
        if claimed != md5 {
            return Err(s3_error!(BadDigest, "The Content-MD5 you specified did not match what we received."));
        }
    }
    let Some(algorithm) = checksum_alg else {
        return Ok(None);
    };
    let computed = checksum_value(&algorithm, hasher).unwrap_or_default();
    let trailer_name = format!("x-amz-checksum-{}", algorithm.to_lowercase());
    let claimed = declared.checksum.as_ref().and_then(|(_, v)| v.clone()).or_else(|| {
        trailers?.read(|h| h.get(&trailer_name).and_then(|v| v.to_str().ok()).map(str::to_owned)).flatten()
    });
    if claimed.as_ref().is_some_and(|c| *c != computed) {
        return Err(s3_error!(BadDigest, "The {algorithm} you specified did not match the calculated checksum."));
    }
    Ok(Some(StoredChecksum { algorithm, value: computed, kind: Some("FULL_OBJECT".into()) }))
}

pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_declaration_prefers_a_header_value() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-sdk-checksum-algorithm", "SHA256".parse().unwrap());
        headers.insert("x-amz-checksum-crc32", "AAAAAA==".parse().unwrap());
        let declared = Declared::from_headers(&headers, Some(3), None);
        assert_eq!(declared.checksum, Some(("CRC32".into(), Some("AAAAAA==".into()))));

        let mut headers = HeaderMap::new();
        headers.insert("x-amz-trailer", "x-amz-checksum-crc32c".parse().unwrap());
        let declared = Declared::from_headers(&headers, None, None);
        assert_eq!(declared.checksum, Some(("CRC32C".into(), None)));
    }

    #[test]
    fn mismatches_are_reported_as_aws_does() {
        let declared = Declared { content_length: Some(5), ..Declared::default() };
        let err = verify(&declared, None, 4, &[0; 16], None, ChecksumHasher::default()).unwrap_err();
        assert_eq!(err.code().as_str(), "IncompleteBody");

        let declared = Declared { content_md5: Some(base64_encode(&[1; 16])), ..Declared::default() };
        let err = verify(&declared, None, 0, &[0; 16], None, ChecksumHasher::default()).unwrap_err();
        assert_eq!(err.code().as_str(), "BadDigest");

        let declared = Declared { checksum: Some(("CRC32".into(), Some("AAAAAA==".into()))), ..Declared::default() };
        let mut hasher = checksum_hasher("CRC32").unwrap();
        hasher.update(b"hello");
        let err = verify(&declared, None, 5, &[0; 16], Some("CRC32".into()), hasher).unwrap_err();
        assert_eq!(err.code().as_str(), "BadDigest");
    }
}
