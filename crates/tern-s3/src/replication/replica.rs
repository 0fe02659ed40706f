//! The receiving end of replication: replicas and their staged blobs,
//! delivered by another region's replication worker acting as the rule's
//! role. Only sessions S3 itself assumed for replication may deliver
//! (a user's own session of the same role may not), and a sealed replica
//! may only name blobs staged for it: each staged blob comes with a ticket
//! bound to the session, the object and the blob.

use s3s::{S3Result, s3_error};
use tern_iam::policy::Principal;
use tern_replication_model::FailureReason;
use tern_replication_model::protocol::{ReplicaManifest, SealedLayout, StagedBlob, StagedReceipt};
use tern_store::{BlobPart, NewVersion, ReplicationStatus, SseAlgorithm, Versioning};

use crate::customer_key::REPLICA_FINGERPRINT;
use crate::error::store_error;
use crate::region::Region;
use crate::sse::read_header;

impl Region {
    /// Writes a replica that replication brings from another region, as
    /// `who` (the rule's role): `s3:ReplicateObject` (or `ReplicateDelete`
    /// for a delete marker) on the object is required, and the replica is
    /// encrypted here: under the rule's `ReplicaKmsKeyID` for an SSE-KMS
    /// source, else with SSE-S3, as the source was.
    pub async fn apply_replica(
        &self,
        bucket: &str,
        key: &str,
        manifest: ReplicaManifest,
        body: Option<s3s::dto::StreamingBlob>,
        who: &Principal,
    ) -> S3Result<()> {
        require_replication(who)?;
        let target = self.bucket(bucket).await?;
        if target.versioning != Versioning::Enabled {
            return Err(crate::error::with_status(
                s3s::S3Error::with_message(
                    // The source maps this code to the failure reason of the same name.
                    s3s::S3ErrorCode::Custom(FailureReason::DstBucketUnversioned.as_str().into()),
                    "Destination bucket must have versioning enabled.",
                ),
                http::StatusCode::BAD_REQUEST,
            ));
        }
        let action = if manifest.is_delete_marker { "s3:ReplicateDelete" } else { "s3:ReplicateObject" };
        self.authorize(who, action, &crate::access::resource_arn(Some(bucket), Some(key))).await?;
        crate::wire::validate_tags(&manifest.tags)?;
        let sealed = manifest.sealed.is_some();
        let mut version = if manifest.is_delete_marker {
            replica_marker(bucket, key, &manifest)
        } else if let Some(layout) = manifest.sealed.clone() {
            self.sealed_replica((bucket, key), &manifest, layout, body, who).await?
        } else {
            self.replica_object(bucket, key, &manifest, body, who).await?
        };
        version.attrs.replication_status = Some(ReplicationStatus::Replica);
        version.attrs.replica = true;
        match self.meta.put_replica(&version).await {
            Ok(unused) => {
                self.release_blobs(&unused.blobs).await;
                Ok(())
            }
            Err(e) => {
                // Blobs ingested here are this delivery's alone; staged ones are
                // left for the start-up sweep, since the error may be that
                // another version owns one of them.
                if !sealed && !e.may_have_committed() {
                    self.release_blobs(&version.data.blob_ids().map(str::to_owned).collect::<Vec<_>>()).await;
                }
                Err(store_error(e))
            }
        }
    }

    async fn replica_object(
        &self,
        bucket: &str,
        key: &str,
        manifest: &ReplicaManifest,
        body: Option<s3s::dto::StreamingBlob>,
        who: &Principal,
    ) -> S3Result<NewVersion> {
        // As on AWS, a replica keeps its source's encryption, whatever the
        // bucket's default: SSE-KMS under the rule's ReplicaKmsKeyID, else
        // SSE-S3 (Tern stores nothing unencrypted, and SSE-C travels sealed).
        let sse = if manifest.replica_kms_key_id.is_some() { SseAlgorithm::AwsKms } else { SseAlgorithm::Aes256 };
        let requested = crate::encryption::Requested {
            sse: Some(sse.as_str().to_owned()),
            kms_key_id: manifest.replica_kms_key_id.clone(),
            context: None,
            bucket_key: None,
            customer: None,
        };
        let plan = self.plan_encryption(bucket, requested).await?;
        let mut attrs = manifest.attrs.clone();
        let data_key = self.data_key_for(&plan, bucket, key, &mut attrs, who).await?;
        let declared = crate::body::Declared { content_length: Some(manifest.size), ..Default::default() };
        let ingested = crate::body::ingest(self, body, &declared, None, true, &data_key).await?;
        Ok(replica_version((bucket, key), manifest, attrs, ingested.data))
    }
}

impl Region {
    /// A replica whose bytes arrive sealed as the source stored them: SSE-C
    /// (its customer key never leaves the customer), or SSE-KMS under a
    /// multi-region key whose replica here unwraps the same data key, so no
    /// byte is decrypted or re-encrypted on the way.
    async fn sealed_replica(
        &self,
        (bucket, key): (&str, &str),
        manifest: &ReplicaManifest,
        layout: SealedLayout,
        body: Option<s3s::dto::StreamingBlob>,
        who: &Principal,
    ) -> S3Result<NewVersion> {
        let mut attrs = manifest.attrs.clone();
        if attrs.encryption == Some(SseAlgorithm::AwsKms) {
            let replica_key = manifest
                .replica_kms_key_id
                .as_deref()
                .ok_or_else(|| s3_error!(InvalidRequest, "An SSE-KMS replica needs the rule's ReplicaKmsKeyID"))?;
            attrs.kms_key_arn = Some(self.fresh_if_denied(|| self.adopt_kms_data_key(&attrs, replica_key, who)).await?);
        } else if attrs.customer_key_fingerprint.is_some() {
            // The source's fingerprint means nothing here; the data key tells.
            attrs.customer_key_fingerprint = Some(REPLICA_FINGERPRINT.to_owned());
        } else {
            return Err(s3_error!(InvalidRequest, "Only SSE-C and multi-Region SSE-KMS replicas travel sealed"));
        }
        let data = match layout {
            SealedLayout::Inline => {
                let body = body.ok_or_else(|| s3_error!(IncompleteBody, "The sealed bytes are missing"))?;
                let chunks: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(body)
                    .await
                    .map_err(|e| crate::error::body_error(&std::io::Error::other(e)))?;
                tern_store::ObjectData::Inline(bytes::Bytes::from(chunks.concat()))
            }
            SealedLayout::Blobs(staged) => {
                tern_store::ObjectData::Blobs(self.redeem_tickets((bucket, key), &staged, who)?)
            }
        };
        Ok(replica_version((bucket, key), manifest, attrs, data))
    }

    /// Stores one sealed blob of a replica before its manifest arrives, as
    /// `who`, a replication session that must be allowed to replicate the
    /// object; returns it with its ticket. A blob whose manifest never comes
    /// is swept at the next start.
    pub async fn stage_replica_blob(
        &self,
        (bucket, key): (&str, &str),
        body: s3s::dto::StreamingBlob,
        who: &Principal,
    ) -> S3Result<StagedReceipt> {
        require_replication(who)?;
        self.bucket(bucket).await?;
        self.authorize(who, "s3:ReplicateObject", &crate::access::resource_arn(Some(bucket), Some(key))).await?;
        let stream: tern_store::ByteStream = Box::pin(futures::TryStreamExt::map_err(body, std::io::Error::other));
        let (blob, _) = self.blobs.put(stream).await.map_err(store_error)?;
        let Ok(header) = read_header(&self.blobs, &blob).await else {
            self.release_blobs(std::slice::from_ref(&blob)).await;
            return Err(s3_error!(InvalidArgument, "A staged blob must be sealed as Tern stores objects."));
        };
        let binding = header.binding().map(hex::encode);
        let ticket = self.ticket(who, (bucket, key), &blob, binding.as_deref());
        Ok(StagedReceipt { blob, binding, ticket })
    }

    /// What binds a staged blob to the session that staged it, its object
    /// and its binding.
    fn ticket(&self, who: &Principal, object: (&str, &str), blob: &str, binding: Option<&str>) -> String {
        hex::encode(self.replica_tickets.sign(&ticket_message(who, object, blob, binding)))
    }

    /// The blobs of a sealed replica's manifest, once each ticket proves it
    /// was staged by `who` for this object.
    fn redeem_tickets(&self, object: (&str, &str), staged: &[StagedBlob], who: &Principal) -> S3Result<Vec<BlobPart>> {
        staged
            .iter()
            .map(|s| {
                let message = ticket_message(who, object, &s.part.blob, s.part.binding.as_deref());
                let tag = hex::decode(&s.ticket).unwrap_or_default();
                if self.replica_tickets.verify(&message, &tag) {
                    Ok(s.part.clone())
                } else {
                    Err(s3_error!(AccessDenied, "A replica may only name blobs staged for it."))
                }
            })
            .collect()
    }
}

/// The version a replica becomes: the source's identity and metadata, with
/// `attrs` as protected here and `data` as stored here.
fn replica_version(
    (bucket, key): (&str, &str),
    manifest: &ReplicaManifest,
    attrs: tern_store::ObjectAttrs,
    data: tern_store::ObjectData,
) -> NewVersion {
    NewVersion {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: manifest.version_id.clone(),
        is_delete_marker: manifest.is_delete_marker,
        modified_ms: manifest.modified_ms,
        size: manifest.size,
        etag: manifest.etag.clone(),
        attrs,
        tags: manifest.tags.clone(),
        tags_stamp: manifest.tags_stamp,
        data,
        replication: Vec::new(),
    }
}

fn replica_marker(bucket: &str, key: &str, manifest: &ReplicaManifest) -> NewVersion {
    let empty = tern_store::ObjectData::Inline(bytes::Bytes::new());
    replica_version((bucket, key), manifest, tern_store::ObjectAttrs::default(), empty)
}

/// What a ticket signs: the session, the object, the blob and its binding.
fn ticket_message(who: &Principal, (bucket, key): (&str, &str), blob: &str, binding: Option<&str>) -> Vec<u8> {
    let session = who.session_arn.as_deref().unwrap_or_default();
    serde_json::json!(["tern staged blob v1", session, bucket, key, blob, binding]).to_string().into_bytes()
}

/// Replicas come only from sessions S3 assumed for replication.
pub fn require_replication(who: &Principal) -> S3Result<()> {
    if who.is_s3_replication() {
        return Ok(());
    }
    Err(s3_error!(AccessDenied, "Only S3 replication, acting as a replication rule's role, may deliver replicas."))
}
