//! The records the metadata store keeps.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The version id S3 shows for objects written while versioning was off.
pub const NULL_VERSION: &str = "null";

/// A bucket's versioning state. A bucket never returns to `Unversioned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    Unversioned,
    Enabled,
    Suspended,
}

impl Versioning {
    pub(crate) fn to_db(self) -> Option<&'static str> {
        match self {
            Self::Unversioned => None,
            Self::Enabled => Some("Enabled"),
            Self::Suspended => Some("Suspended"),
        }
    }

    pub(crate) fn from_db(value: Option<&str>) -> Self {
        match value {
            Some("Enabled") => Self::Enabled,
            Some("Suspended") => Self::Suspended,
            _ => Self::Unversioned,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRecord {
    pub name: String,
    pub created_ms: i64,
    pub versioning: Versioning,
}

/// A checksum the client supplied and the server verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// `CRC32`, `CRC32C`, `SHA1`, `SHA256` or `CRC64NVME`.
    pub algorithm: String,
    /// Base64 as on the wire.
    pub value: String,
    /// `FULL_OBJECT` or `COMPOSITE`.
    #[serde(default)]
    pub kind: Option<String>,
}

/// How the server protects stored bytes: `x-amz-server-side-encryption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SseAlgorithm {
    /// SSE-S3.
    #[serde(rename = "AES256")]
    Aes256,
    /// SSE-KMS.
    #[serde(rename = "aws:kms")]
    AwsKms,
}

impl SseAlgorithm {
    /// The header's value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Aes256 => "AES256",
            Self::AwsKms => "aws:kms",
        }
    }

    /// The algorithm a header value names, if Tern serves it.
    #[must_use]
    pub fn named(value: &str) -> Option<Self> {
        [Self::Aes256, Self::AwsKms].into_iter().find(|a| a.as_str() == value)
    }
}

/// `x-amz-replication-status` of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ReplicationStatus {
    /// A source version with replication work outstanding (or a replica
    /// whose change is on its way back).
    Pending,
    /// A source version every destination holds.
    Completed,
    /// A source version (or changed replica) whose replication failed.
    Failed,
    /// A version replication wrote.
    Replica,
}

impl ReplicationStatus {
    /// The header's value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Replica => "REPLICA",
        }
    }
}

/// Everything about a version that is neither its bytes nor its identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectAttrs {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// RFC 1123 text as received.
    pub expires: Option<String>,
    pub website_redirect_location: Option<String>,
    pub storage_class: Option<String>,
    /// `x-amz-meta-*` values, stored byte-for-byte.
    pub user_metadata: BTreeMap<String, String>,
    pub checksum: Option<StoredChecksum>,
    /// Number of parts when the version came from a multipart upload.
    pub parts_count: Option<u32>,
    /// The multipart upload the version completed: a retried Complete of it
    /// is answered with this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// `x-amz-server-side-encryption` of the stored bytes; `None` with SSE-C.
    pub encryption: Option<SseAlgorithm>,
    /// SSE-KMS: ARN of the KMS key that protects the data key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// SSE-KMS: the encryption context of the data key (base64 JSON, as S3
    /// echoes it in `x-amz-server-side-encryption-context`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_context: Option<String>,
    /// SSE-KMS: the data key derives from an S3 Bucket Key.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bucket_key: bool,
    /// SSE-KMS: the object's data key as KMS encrypted it (base64), shared by
    /// all its parts; with a bucket key, the bucket key's blob and a salt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_data_key: Option<String>,
    /// SSE-C: how to recognise the customer's key, which is never stored:
    /// an HMAC under a secret of the region that wrote it (`hmac-sha256:…`),
    /// `replica` for a replica (its data key tells), or, for objects written
    /// before HMACs, the key's base64 MD5.
    #[serde(skip_serializing_if = "Option::is_none", alias = "customer_key_md5")]
    pub customer_key_fingerprint: Option<String>,
    /// `x-amz-replication-status`: PENDING/COMPLETED/FAILED on a source
    /// version with replication tasks, REPLICA on a replica (PENDING or
    /// FAILED while a change made to it replicates back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_status: Option<ReplicationStatus>,
    /// The version is a replica another region's replication wrote.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replica: bool,
}

/// One blob holding a contiguous run of a version's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobPart {
    pub blob: String,
    /// Bytes of the object this blob holds (before any at-rest encryption).
    pub size: u64,
    /// The salt in the blob's at-rest header (hex), which also names it: a
    /// reader refuses a blob whose header says otherwise, so blobs cannot be
    /// swapped between the parts of one object. Absent for blobs written
    /// before bindings existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
}

/// Where a version's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectData {
    /// Small objects are kept in the metadata row: one fsync per PUT, not three.
    Inline(Bytes),
    /// Concatenation of these blobs, in order (one per multipart part).
    Blobs(Vec<BlobPart>),
}

impl ObjectData {
    /// Blob ids this data references (none for inline data).
    pub fn blob_ids(&self) -> impl Iterator<Item = &str> {
        let parts: &[BlobPart] = match self {
            Self::Inline(_) => &[],
            Self::Blobs(parts) => parts,
        };
        parts.iter().map(|p| p.blob.as_str())
    }
}

/// A version or delete marker to be committed.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub bucket: String,
    pub key: String,
    /// A fresh id, or [`NULL_VERSION`], which replaces any existing null version.
    pub version_id: String,
    pub is_delete_marker: bool,
    pub modified_ms: i64,
    pub size: u64,
    pub etag: String,
    pub attrs: ObjectAttrs,
    pub tags: Vec<(String, String)>,
    /// When the tag set was set (see [`VersionRecord::tags_stamp`]).
    pub tags_stamp: i64,
    pub data: ObjectData,
    /// Replication tasks committed with the version (the outbox).
    pub replication: Vec<crate::replication::NewTask>,
}

/// A committed version or delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    pub is_latest: bool,
    pub is_delete_marker: bool,
    pub modified_ms: i64,
    pub size: u64,
    pub etag: String,
    pub attrs: ObjectAttrs,
    pub tags: Vec<(String, String)>,
    /// Milliseconds when the tag set was set, bumped past the previous stamp
    /// on every change; replicated changes apply only if newer.
    pub tags_stamp: i64,
    pub data: ObjectData,
    /// The bucket's versioning as the version was read: S3 names a null
    /// version `null` only in a bucket that has had versioning.
    pub bucket_versioning: Versioning,
}

/// What a listing row needs (no bytes, no tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    pub key: String,
    pub version_id: String,
    pub is_latest: bool,
    pub is_delete_marker: bool,
    pub modified_ms: i64,
    pub size: u64,
    pub etag: String,
    pub storage_class: Option<String>,
    pub checksum_algorithm: Option<String>,
}

/// A condition checked in the same transaction as a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `If-None-Match: *`: no current object may exist.
    NoneMatchAny,
    /// `If-Match: <etag>`: the current object must have this `ETag`.
    Match(String),
    /// The current object must still be this version, written at this time
    /// (lifecycle acts only on what it saw).
    Unchanged { version_id: String, modified_ms: i64 },
}

/// What a conditional delete requires of its version: still written at
/// this time, and still current (or still not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteGuard {
    pub written_ms: i64,
    pub latest: bool,
    /// Only if no other version or marker of the key exists (a delete
    /// marker that hides nothing).
    pub alone: bool,
}

/// The key's current object (not a delete marker), as a precondition sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveVersion<'a> {
    pub etag: &'a str,
    pub version_id: &'a str,
    pub modified_ms: i64,
}

impl Precondition {
    /// Whether the condition holds when the key's current object has
    /// `live_etag` (`None`: no object, or a delete marker): as S3 answers,
    /// `If-Match` with no object to match is `NoSuchKey`.
    pub fn check(&self, live: Option<LiveVersion<'_>>) -> Result<(), crate::StoreError> {
        match (self, live) {
            (Self::NoneMatchAny, None) => Ok(()),
            (Self::Match(_) | Self::Unchanged { .. }, None) => Err(crate::StoreError::NoSuchKey),
            (Self::Match(etag), Some(live)) if etag == live.etag => Ok(()),
            (Self::Unchanged { version_id, modified_ms }, Some(live))
                if version_id == live.version_id && *modified_ms == live.modified_ms =>
            {
                Ok(())
            }
            _ => Err(crate::StoreError::PreconditionFailed),
        }
    }
}

/// Where a key-ordered scan starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStart {
    Beginning,
    /// Keys strictly greater than this.
    After(String),
    /// Keys greater than or equal to this.
    From(String),
    /// Versions after this one (same key, older) and then later keys.
    AfterVersion {
        key: String,
        version_id: String,
    },
}

/// The outcome of a write: blobs no longer referenced, to delete after commit.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Displaced {
    pub blobs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub created_ms: i64,
    pub attrs: ObjectAttrs,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub upload_id: String,
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
    pub blob: String,
    pub modified_ms: i64,
    pub checksum: Option<String>,
    /// The binding of the part's blob (see [`BlobPart::binding`]).
    pub binding: Option<String>,
}

/// The smallest string greater than every string starting with `prefix`
/// (bytewise UTF-8 order, which is S3's listing order); `None` if unbounded.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Where a bucket name is registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredBucket {
    pub name: String,
    pub region: String,
    pub created_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_follows_utf8_order() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("photos/").as_deref(), Some("photos0"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        // Skips the surrogate gap.
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }
}
