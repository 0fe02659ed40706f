//! The checksum of an object made by a multipart upload, as S3 computes it:
//! `COMPOSITE` (the checksum of the parts' checksums, `-N`) or `FULL_OBJECT`
//! (the CRC of the whole object, combined from the parts' CRCs and sizes
//! without reading a byte again).

use crc_fast::CrcAlgorithm;
use s3s::dto::{ChecksumAlgorithm, ChecksumType};
use s3s::{S3Result, s3_error};
use tern_store::{PartRecord, StoredChecksum};

use crate::body::{base64_decode, base64_encode, checksum_hasher, checksum_value};

const COMPOSITE: &str = "COMPOSITE";
const FULL_OBJECT: &str = "FULL_OBJECT";

/// The checksum an upload declares at its creation (its value comes at
/// completion), with S3's defaults and refusals: CRC64NVME is full-object
/// only, SHA-1 and SHA-256 composite only.
pub(crate) fn declared(
    algorithm: Option<&ChecksumAlgorithm>,
    kind: Option<&ChecksumType>,
) -> S3Result<Option<StoredChecksum>> {
    let Some(algorithm) = algorithm.map(|a| a.as_str().to_uppercase()) else {
        return match kind {
            None => Ok(None),
            Some(_) => Err(s3_error!(
                InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
            )),
        };
    };
    checksum_hasher(&algorithm)?;
    let kind = match (kind.map(ChecksumType::as_str), algorithm.as_str()) {
        (None, "CRC64NVME") | (Some(FULL_OBJECT), "CRC32" | "CRC32C" | "CRC64NVME") => FULL_OBJECT,
        (None, _) | (Some(COMPOSITE), "CRC32" | "CRC32C" | "SHA1" | "SHA256") => COMPOSITE,
        (Some(kind @ (COMPOSITE | FULL_OBJECT)), _) => {
            return Err(s3_error!(
                InvalidRequest,
                "The {kind} checksum type cannot be used with the {} checksum algorithm.",
                algorithm.to_lowercase()
            ));
        }
        (Some(other), _) => {
            return Err(s3_error!(InvalidRequest, "Value for x-amz-checksum-type header is invalid: {other}"));
        }
    };
    Ok(Some(StoredChecksum { algorithm, value: String::new(), kind: Some(kind.to_owned()) }))
}

/// The completed object's checksum from its parts' (`None` if a part was
/// uploaded without one). A full-object value the client sent with the
/// completion must agree.
pub(crate) fn completed(
    declared: &StoredChecksum,
    parts: &[PartRecord],
    claimed: Option<&str>,
) -> S3Result<Option<StoredChecksum>> {
    if declared.kind.as_deref() != Some(FULL_OBJECT) {
        let computed = composite(&declared.algorithm, parts);
        // A client may send the checksum of checksums with or without `-N`.
        if let (Some(claimed), Some(computed)) = (claimed, &computed)
            && claimed != computed.value
            && Some(claimed) != computed.value.rsplit_once('-').map(|(value, _)| value)
        {
            return Err(bad_digest(&declared.algorithm));
        }
        return Ok(computed);
    }
    let Some(value) = full_object(&declared.algorithm, parts) else { return Ok(None) };
    if claimed.is_some_and(|c| c != value) {
        return Err(bad_digest(&declared.algorithm));
    }
    Ok(Some(StoredChecksum { algorithm: declared.algorithm.clone(), value, kind: Some(FULL_OBJECT.to_owned()) }))
}

fn bad_digest(algorithm: &str) -> s3s::S3Error {
    s3_error!(BadDigest, "The {} you specified did not match the calculated checksum.", algorithm.to_lowercase())
}

/// The checksum of the parts' binary checksums, `-N`.
fn composite(algorithm: &str, parts: &[PartRecord]) -> Option<StoredChecksum> {
    let mut hasher = checksum_hasher(algorithm).ok()?;
    for part in parts {
        hasher.update(&base64_decode(part.checksum.as_deref()?)?);
    }
    let value = checksum_value(algorithm, hasher)?;
    Some(StoredChecksum {
        algorithm: algorithm.to_owned(),
        value: format!("{value}-{}", parts.len()),
        kind: Some(COMPOSITE.to_owned()),
    })
}

/// The CRC of the concatenated parts, from each part's CRC and size. CRCs
/// travel as big-endian bytes: 4 for the CRC-32s, 8 for CRC-64/NVME.
fn full_object(algorithm: &str, parts: &[PartRecord]) -> Option<String> {
    let (crc, width) = match algorithm {
        "CRC32" => (CrcAlgorithm::Crc32IsoHdlc, 4),
        "CRC32C" => (CrcAlgorithm::Crc32Iscsi, 4),
        "CRC64NVME" => (CrcAlgorithm::Crc64Nvme, 8),
        _ => return None,
    };
    let mut combined: Option<u64> = None;
    for part in parts {
        let bytes = base64_decode(part.checksum.as_deref()?)?;
        let mut wide = [0u8; 8];
        wide.get_mut(8 - width..)?.copy_from_slice(bytes.get(..width).filter(|_| bytes.len() == width)?);
        let value = u64::from_be_bytes(wide);
        combined = Some(match combined {
            None => value,
            Some(before) => crc_fast::checksum_combine(crc, before, value, part.size),
        });
    }
    Some(base64_encode(&combined?.to_be_bytes()[8 - width..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32, bytes: &[u8], algorithm: &str) -> PartRecord {
        let mut hasher = checksum_hasher(algorithm).unwrap();
        hasher.update(bytes);
        PartRecord {
            upload_id: "u".into(),
            part_number: number,
            size: bytes.len() as u64,
            etag: String::new(),
            blob: String::new(),
            modified_ms: 0,
            checksum: checksum_value(algorithm, hasher),
            binding: None,
        }
    }

    #[test]
    fn full_object_crcs_combine_to_the_whole_objects() {
        let whole: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for algorithm in ["CRC32", "CRC32C", "CRC64NVME"] {
            let parts = [
                part(1, &whole[..100_000], algorithm),
                part(2, &whole[100_000..250_001], algorithm),
                part(3, &whole[250_001..], algorithm),
            ];
            let mut hasher = checksum_hasher(algorithm).unwrap();
            hasher.update(&whole);
            assert_eq!(full_object(algorithm, &parts), checksum_value(algorithm, hasher), "{algorithm}");
        }
    }

    #[test]
    fn declarations_follow_s3_rules() {
        let kind = |a: &str, t: Option<&str>| {
            declared(Some(&ChecksumAlgorithm::from(a.to_owned())), t.map(|t| ChecksumType::from(t.to_owned())).as_ref())
                .map(|c| c.and_then(|c| c.kind))
        };
        assert_eq!(kind("CRC64NVME", None).unwrap().as_deref(), Some(FULL_OBJECT));
        assert_eq!(kind("crc32", None).unwrap().as_deref(), Some(COMPOSITE));
        assert_eq!(kind("CRC32C", Some(FULL_OBJECT)).unwrap().as_deref(), Some(FULL_OBJECT));
        assert!(kind("SHA256", Some(FULL_OBJECT)).is_err());
        assert!(kind("CRC64NVME", Some(COMPOSITE)).is_err());
        assert!(declared(None, Some(&ChecksumType::from(FULL_OBJECT.to_owned()))).is_err());
    }
}
