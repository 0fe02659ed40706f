//! The inter-region protocol of replication: where a destination takes
//! deliveries, the headers they carry, the manifests a replica and a tag
//! change travel with, and the session replication acts in. The worker
//! (sender) and the region server (receiver) both speak it from here.
//!
//! Every delivery is a `PUT` signed as the rule's role (an STS session S3
//! assumed for replication), its body in signed `aws-chunked` frames.

use serde::{Deserialize, Serialize};
use tern_store::{BlobPart, ObjectAttrs};

/// The session name S3 gives the sessions it assumes for replication.
pub const SESSION_NAME: &str = "s3-replication";

/// Marks a read of the source as replication's, which needs
/// `s3:GetObjectVersionForReplication` rather than `s3:GetObject`.
pub const REPLICATION_READ_HEADER: &str = "x-tern-replication";
/// Carries a delivery's manifest ([`ReplicaManifest`] or [`TagManifest`]),
/// base64 JSON.
pub const MANIFEST_HEADER: &str = "x-tern-replica";

/// A destination's delivery routes, each `PUT {prefix}{bucket}/{key}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A replica: its manifest, and its plaintext (or, sealed and small,
    /// its stored bytes) as the body.
    Object,
    /// One sealed blob of a replica, staged before its manifest; answered
    /// with a [`StagedReceipt`].
    Blob,
    /// A tag change made after the version replicated.
    Tags,
}

impl Route {
    const ALL: [Self; 3] = [Self::Object, Self::Blob, Self::Tags];

    #[must_use]
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Object => "/_tern/replicate/",
            Self::Blob => "/_tern/replicate-blob/",
            Self::Tags => "/_tern/replicate-tags/",
        }
    }

    /// The route a request path is on, if any.
    #[must_use]
    pub fn of(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| path.starts_with(r.prefix()))
    }

    /// The bucket and (decoded) key a path on this route names.
    #[must_use]
    pub fn target(self, path: &str) -> Option<(String, String)> {
        let (bucket, key) = path.strip_prefix(self.prefix())?.split_once('/')?;
        let key = urlencoding::decode(key).ok()?.into_owned();
        (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_owned(), key))
    }

    /// Where a delivery of `key` in `bucket` goes at `endpoint`.
    #[must_use]
    pub fn url(self, endpoint: &str, bucket: &str, key: &str) -> String {
        format!("{endpoint}{}{}", self.prefix(), object_path(bucket, key))
    }
}

/// `bucket/key` with each segment of the key percent-encoded, as S3 paths are.
#[must_use]
pub fn object_path(bucket: &str, key: &str) -> String {
    let key: Vec<String> = key.split('/').map(|s| urlencoding::encode(s).into_owned()).collect();
    format!("{bucket}/{}", key.join("/"))
}

/// The [`MANIFEST_HEADER`] value of a manifest.
#[must_use]
pub fn encode_manifest(manifest: &impl Serialize) -> String {
    let json = serde_json::to_vec(manifest).expect("manifests serialize");
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, json)
}

/// A manifest from its [`MANIFEST_HEADER`] value; `None` if it is not one.
#[must_use]
pub fn decode_manifest<M: serde::de::DeserializeOwned>(header: &str) -> Option<M> {
    let json = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, header).ok()?;
    serde_json::from_slice(&json).ok()
}

/// What a destination needs to write a replica, besides its bytes: the
/// source version's identity and metadata, and the rule's destination key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaManifest {
    pub version_id: String,
    pub modified_ms: i64,
    pub etag: String,
    pub is_delete_marker: bool,
    pub size: u64,
    pub attrs: ObjectAttrs,
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub tags_stamp: i64,
    /// The rule's `ReplicaKmsKeyID`, for SSE-KMS sources.
    pub replica_kms_key_id: Option<String>,
    /// Set when the replica arrives sealed, as the source stored it (SSE-C,
    /// and SSE-KMS under a multi-region key the destination holds): where
    /// its sealed bytes are. Otherwise the body is plaintext.
    #[serde(default)]
    pub sealed: Option<SealedLayout>,
}

impl ReplicaManifest {
    /// Whether the delivery's body holds the replica's bytes (it does not
    /// for a delete marker, nor for sealed bytes staged beforehand).
    #[must_use]
    pub fn carries_body(&self) -> bool {
        !self.is_delete_marker && !matches!(self.sealed, Some(SealedLayout::Blobs(_)))
    }
}

/// Where a sealed replica's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SealedLayout {
    /// The request body: one small object's sealed bytes.
    Inline,
    /// Blobs staged at the destination beforehand, in order.
    Blobs(Vec<StagedBlob>),
}

/// A blob the destination staged for one delivery, and the ticket it gave
/// for it: proof, checked when the manifest arrives, that this blob was
/// staged by the same replication session for the same object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedBlob {
    #[serde(flatten)]
    pub part: BlobPart,
    pub ticket: String,
}

/// The destination's answer to a [`Route::Blob`] delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedReceipt {
    pub blob: String,
    pub binding: Option<String>,
    pub ticket: String,
}

/// What a destination needs to apply a replicated tag change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagManifest {
    pub version_id: String,
    pub tags: Vec<(String, String)>,
    pub tags_stamp: i64,
    /// The bucket the change comes from; it is not sent back there.
    pub origin: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_their_bucket_and_key() {
        let url = Route::Blob.url("http://h:1", "dst", "a b/c%d");
        assert_eq!(url, "http://h:1/_tern/replicate-blob/dst/a%20b/c%25d");
        let path = url.strip_prefix("http://h:1").unwrap();
        assert_eq!(Route::of(path), Some(Route::Blob));
        assert_eq!(Route::Blob.target(path), Some(("dst".into(), "a b/c%d".into())));
        assert_eq!(Route::of("/_tern/replicate/b/k"), Some(Route::Object));
        assert_eq!(Route::of("/_tern/replication/b"), None, "the admin API is not a delivery route");
        assert_eq!(Route::Object.target("/_tern/replicate/b/"), None);
    }

    /// The JSON regions exchange, as earlier versions sent it: a change of
    /// the store's records must not change it unnoticed.
    #[test]
    fn manifests_keep_their_wire_form() {
        let sealed = ReplicaManifest {
            version_id: "v1".into(),
            modified_ms: 7,
            etag: "e".into(),
            is_delete_marker: false,
            size: 3,
            attrs: ObjectAttrs {
                encryption: Some(tern_store::SseAlgorithm::AwsKms),
                kms_key_arn: Some("arn:k".into()),
                replication_status: Some(tern_store::ReplicationStatus::Pending),
                ..ObjectAttrs::default()
            },
            tags: vec![("a".into(), "b".into())],
            tags_stamp: 9,
            replica_kms_key_id: Some("mrk-1".into()),
            sealed: Some(SealedLayout::Blobs(vec![StagedBlob {
                part: BlobPart { blob: "b1".into(), size: 3, binding: Some("ab".into()) },
                ticket: "t".into(),
            }])),
        };
        let wire = serde_json::json!({
            "version_id": "v1", "modified_ms": 7, "etag": "e", "is_delete_marker": false, "size": 3,
            "attrs": {
                "content_type": null, "content_encoding": null, "content_disposition": null,
                "content_language": null, "cache_control": null, "expires": null,
                "website_redirect_location": null, "storage_class": null, "user_metadata": {},
                "checksum": null, "parts_count": null, "encryption": "aws:kms", "kms_key_arn": "arn:k",
                "replication_status": "PENDING"
            },
            "tags": [["a", "b"]], "tags_stamp": 9, "replica_kms_key_id": "mrk-1",
            "sealed": {"Blobs": [{"blob": "b1", "size": 3, "binding": "ab", "ticket": "t"}]}
        });
        assert_eq!(serde_json::to_value(&sealed).unwrap(), wire);
        assert_eq!(serde_json::from_value::<ReplicaManifest>(wire).unwrap(), sealed);
        let receipt = serde_json::json!({"blob": "b1", "binding": null, "ticket": "t"});
        let read: StagedReceipt = serde_json::from_value(receipt.clone()).unwrap();
        assert_eq!(serde_json::to_value(read).unwrap(), receipt);
    }

    #[test]
    fn manifests_travel_as_base64_json() {
        let tags = TagManifest { version_id: "v".into(), tags: vec![], tags_stamp: 7, origin: "src".into() };
        assert_eq!(decode_manifest::<TagManifest>(&encode_manifest(&tags)), Some(tags));
        assert_eq!(decode_manifest::<TagManifest>("not base64!"), None);
    }
}
