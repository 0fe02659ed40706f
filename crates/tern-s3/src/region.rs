//! Everything one region's S3 operations need, passed explicitly (several
//! regions share a process in `tern up`, so nothing here is global).

use std::sync::Arc;

use tern_store::{BlobStore, MetaStore};

use crate::encryption::Sse;
use crate::registry::{BucketRegistry, PeerBuckets};

pub struct Region {
    /// This region's name, e.g. `us-east-1`.
    pub name: String,
    /// The deployment's account id (owner of every bucket).
    pub account_id: String,
    pub meta: Arc<dyn MetaStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub registry: Arc<dyn BucketRegistry>,
    /// Buckets of the other regions (replication destinations).
    pub peers: Arc<dyn PeerBuckets>,
    /// The deployment's identities, for roles named in configurations.
    pub iam: Arc<tern_iam::Iam>,
    /// Woken when a commit adds replication tasks to the outbox.
    pub replication_wake: Arc<tokio::sync::Notify>,
    /// Data keys for every stored byte: SSE-S3 (the default), SSE-KMS, SSE-C.
    pub sse: Arc<Sse>,
    /// Signs the tickets of blobs staged for replicas (a secret of this region).
    pub replica_tickets: tern_crypto::mac::Mac,
    /// The account's Block Public Access (the deployment's setting), which
    /// adds to every bucket's own.
    pub account_public_access_block: crate::PublicAccessBlock,
    /// Bucket policies, parsed, by bucket.
    pub bucket_policies: crate::BucketPolicies,
    /// Where changes of bucket configurations are recorded.
    pub audit: Arc<tern_audit::AuditLog>,
    /// Uploads' `ETag` MD5s, hashed side by side.
    pub md5_lanes: Arc<crate::Md5Lanes>,
}

impl Region {
    /// Deletes blobs a committed write no longer references. Failures only
    /// leave orphans, which the start-up sweeper removes, so they are logged.
    pub(crate) async fn release_blobs(&self, blobs: &[String]) {
        for id in blobs {
            if let Err(e) = self.blobs.delete(id).await {
                tracing::warn!(blob = %id, error = %e, "could not delete displaced blob; the sweeper will");
            }
        }
    }
}
