//! Replicas that travel sealed, as the source stored them: SSE-C objects
//! (S3 never holds their key) and SSE-KMS objects under a multi-region key
//! whose replica in the destination unwraps the same data key. No byte is
//! decrypted or re-encrypted; every permission is still checked as on the
//! re-encrypting path — the role reads through the source's S3 API (which
//! checks `kms:Decrypt` on the source key), and the destination checks
//! `s3:ReplicateObject` and `kms:GenerateDataKey` on `ReplicaKmsKeyID`.

use bytes::Bytes;
use futures::TryStreamExt as _;
use tern_crypto::segments::{Header, ciphertext_len};
use tern_replication_model::FailureReason;
use tern_replication_model::protocol::{Route, SealedLayout, StagedBlob, StagedReceipt};
use tern_store::{BlobPart, ObjectData, SseAlgorithm, TaskRecord, VersionRecord};

use crate::Replicator;
use crate::reasons::{Trouble, destination_failure, permanent};
use crate::transfer::{Destination, RoleSession, transient};

/// Whether `version` replicates sealed under `task`'s rule.
pub(crate) fn travels_sealed(version: &VersionRecord, task: &TaskRecord) -> bool {
    if version.attrs.customer_key_fingerprint.is_some() {
        return true;
    }
    let key_id = |arn: &str| arn.rsplit('/').next().unwrap_or(arn).to_owned();
    let source_key = version.attrs.kms_key_arn.as_deref().map(key_id);
    let replica_key = task.replica_kms_key_id.as_deref().map(key_id);
    version.attrs.encryption == Some(SseAlgorithm::AwsKms)
        && source_key.as_deref().is_some_and(|k| k.starts_with("mrk-"))
        && source_key == replica_key
}

impl Replicator {
    /// The role's read permission at the source, checked as a real read
    /// would be: an SSE-KMS object is read (one byte) through S3, which
    /// asks KMS to decrypt as the role; an SSE-C object, whose key S3 never
    /// holds, by the role's policies.
    pub(crate) async fn check_source(
        &self,
        version: &VersionRecord,
        task: &TaskRecord,
        session: &RoleSession,
    ) -> Result<(), Trouble> {
        if version.attrs.customer_key_fingerprint.is_some() {
            let allowed = self.role_may(session, "s3:GetObjectVersionForReplication", task);
            return if allowed { Ok(()) } else { Err(permanent(FailureReason::SrcGetObjectNotPermitted)) };
        }
        let range = (version.size > 0).then_some("bytes=0-0");
        self.read_source(task, session, range).await.map(drop)
    }

    /// Stages each sealed blob at the destination; the layout the manifest
    /// names, and for an inline object its sealed bytes.
    pub(crate) async fn stage_sealed(
        &self,
        version: &VersionRecord,
        destination: &Destination,
        task: &TaskRecord,
        session: &RoleSession,
    ) -> Result<(SealedLayout, Option<Bytes>), Trouble> {
        let parts = match &version.data {
            ObjectData::Inline(bytes) => return Ok((SealedLayout::Inline, Some(bytes.clone()))),
            ObjectData::Blobs(parts) => parts,
        };
        let mut staged = Vec::with_capacity(parts.len());
        for part in parts {
            staged.push(self.stage_blob(part, destination, task, session).await?);
        }
        Ok((SealedLayout::Blobs(staged), None))
    }

    async fn stage_blob(
        &self,
        part: &BlobPart,
        Destination { endpoint, region }: &Destination,
        task: &TaskRecord,
        session: &RoleSession,
    ) -> Result<StagedBlob, Trouble> {
        let first: Vec<Bytes> =
            self.blobs.get(&part.blob, 0..6).await.map_err(transient)?.try_collect().await.map_err(transient)?;
        let first = first.concat();
        let header_len =
            Header::encoded_len(&first).map_err(|_| permanent(FailureReason::SrcObjectNotEligible))? as u64;
        let sealed_len = header_len + ciphertext_len(part.size);
        let stream = self.blobs.get(&part.blob, 0..sealed_len).await.map_err(transient)?;
        let url = Route::Blob.url(endpoint, &task.destination, &task.key);
        let payload = crate::signing::Payload::streamed(sealed_len, stream);
        let response = self
            .signed(&http::Method::PUT, &url, region, session, &[], Some(payload))?
            .send()
            .await
            .map_err(transient)?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(destination_failure(status, &text, FailureReason::DstPutObjectNotPermitted));
        }
        let StagedReceipt { blob, binding, ticket } = serde_json::from_str(&text).map_err(transient)?;
        Ok(StagedBlob { part: BlobPart { blob, size: part.size, binding }, ticket })
    }
}
