//! The global bucket namespace, as the S3 layer sees it.
//!
//! Bucket names are unique across a deployment. One region (the registry
//! region) keeps the authoritative name → region table; the others reach it
//! over HTTP. Implementations live in `tern-server`.

use async_trait::async_trait;

/// The registry could not be consulted (its region is down or unreachable).
#[derive(Debug, thiserror::Error)]
#[error("bucket registry unavailable: {0}")]
pub struct RegistryError(pub String);

/// A bucket the registry knows, with its home region and creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub name: String,
    pub region: String,
    pub created_ms: i64,
}

/// Buckets of other regions, as replication needs to see them.
#[async_trait]
pub trait PeerBuckets: Send + Sync + 'static {
    /// The versioning state of `bucket` in the other region `region`, or
    /// `None` if the bucket is not there.
    async fn versioning(&self, region: &str, bucket: &str) -> Result<Option<tern_store::Versioning>, RegistryError>;
    /// The default encryption of `bucket` in the other region `region`, or
    /// `None` if the bucket is not there.
    async fn default_encryption(
        &self,
        region: &str,
        bucket: &str,
    ) -> Result<Option<crate::BucketEncryption>, RegistryError>;
    /// Whether `principal` may perform `kms:<action>` on `key_id` in the
    /// other region `region`, through `via_service`; the refusal if not.
    async fn kms_check(
        &self,
        region: &str,
        principal: &tern_iam::policy::Principal,
        action: &str,
        key_id: &str,
        via_service: &str,
    ) -> Result<(), String>;
    /// Reads a copy's source in the other region `region` as `principal`,
    /// decided and decrypted there: its metadata and, when `read` names a
    /// range, those bytes. Refusals come back as that region answered them.
    async fn read_source(
        &self,
        region: &str,
        principal: &tern_iam::policy::Principal,
        read: &crate::SourceRead,
    ) -> s3s::S3Result<(crate::SourceMeta, Option<s3s::dto::StreamingBlob>)>;
    /// Whether `principal` may take the S3 `action` on `resource` in the
    /// other region `region`, decided there with the bucket's policy; the
    /// refusal if not.
    async fn s3_check(
        &self,
        region: &str,
        principal: &tern_iam::policy::Principal,
        action: &str,
        resource: &str,
    ) -> Result<(), String>;
}

#[async_trait]
pub trait BucketRegistry: Send + Sync + 'static {
    /// Claims `name` for `region` if free; returns the region holding it now.
    async fn claim(&self, name: &str, region: &str) -> Result<String, RegistryError>;
    /// The region holding `name`, if any.
    async fn lookup(&self, name: &str) -> Result<Option<String>, RegistryError>;
    /// Gives `name` up if `region` holds it.
    async fn release(&self, name: &str, region: &str) -> Result<(), RegistryError>;
    /// Every bucket of the deployment, by name.
    async fn list(&self) -> Result<Vec<RegistryEntry>, RegistryError>;
}
