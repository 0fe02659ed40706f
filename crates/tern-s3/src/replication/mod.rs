//! Cross-region replication as the S3 layer sees it. The rule model and
//! the inter-region protocol live in `tern-replication-model`; here:
//!
//! - `config`: Put/Get/DeleteBucketReplication's XML, validated as AWS does;
//! - this module: the stored configuration and the checks that need lookups
//!   (the role, the destination bucket);
//! - `plan`: the outbox — which tasks a write commits with;
//! - `check`: the diagnosis behind `tern replication check`;
//! - `replica`: the receiving end of replica delivery.

mod check;
mod config;
mod plan;
mod replica;

use s3s::dto::ReplicationConfiguration;
use s3s::{S3Result, s3_error};
use tern_iam::policy::Principal;
use tern_replication_model::ReplicationConfig;
use tern_store::Versioning;

pub use check::RuleCheck;
pub use replica::require_replication;

use crate::error::{registry_error, store_error};
use crate::region::Region;
use crate::stored::StoredConfig as _;

impl Region {
    /// The bucket's replication configuration, if it has one.
    pub(crate) async fn replication_config(&self, bucket: &str) -> S3Result<Option<ReplicationConfig>> {
        ReplicationConfig::load(&*self.meta, bucket).await
    }

    pub(crate) async fn put_bucket_replication(
        &self,
        bucket: &str,
        config: &ReplicationConfiguration,
        caller: &Principal,
    ) -> S3Result<()> {
        let source = self.bucket(bucket).await?;
        if source.versioning != Versioning::Enabled {
            return Err(config::invalid(
                "Versioning must be 'Enabled' on the bucket to apply a replication configuration",
            ));
        }
        let config = config::parse(config)?;
        self.check_role(&config.role, caller).await?;
        for rule in &config.rules {
            self.check_destination(&rule.destination.bucket).await?;
        }
        config.store(&*self.meta, bucket).await?;
        self.backfill(bucket, &config).await
    }

    /// The role must parse, exist, and be passable by the caller (`iam:PassRole`).
    async fn check_role(&self, role: &str, caller: &Principal) -> S3Result<()> {
        role.strip_prefix(&format!("arn:aws:iam::{}:role/", self.account_id)).filter(|n| !n.is_empty()).ok_or_else(
            || s3_error!(InvalidArgument, "Invalid ArgumentRole: {role} is not a role ARN of this account"),
        )?;
        if !self.iam.principals_exist_current(&[role]).await {
            return Err(s3_error!(InvalidArgument, "The role {role} does not exist"));
        }
        self.authorize(caller, "iam:PassRole", role).await
    }

    /// The destination bucket must exist (in any region) and be versioned.
    async fn check_destination(&self, bucket: &str) -> S3Result<()> {
        let region = self.registry.lookup(bucket).await.map_err(|e| registry_error(&e))?;
        let versioning = match region {
            None => None,
            Some(region) if region == self.name => {
                self.meta.get_bucket(bucket).await.map_err(store_error)?.map(|b| b.versioning)
            }
            Some(region) => self.peers.versioning(&region, bucket).await.map_err(|e| registry_error(&e))?,
        };
        match versioning {
            None => Err(config::invalid("Destination bucket must exist.")),
            Some(Versioning::Enabled) => Ok(()),
            Some(_) => Err(config::invalid("Destination bucket must have versioning enabled.")),
        }
    }

    /// The configuration, or AWS's error when the bucket has none.
    async fn existing_replication_config(&self, bucket: &str) -> S3Result<ReplicationConfig> {
        self.bucket(bucket).await?;
        self.replication_config(bucket).await?.ok_or_else(|| {
            s3_error!(ReplicationConfigurationNotFoundError, "The replication configuration was not found")
        })
    }

    pub(crate) async fn get_bucket_replication(&self, bucket: &str) -> S3Result<ReplicationConfiguration> {
        Ok(config::to_dto(&self.existing_replication_config(bucket).await?))
    }

    pub(crate) async fn delete_bucket_replication(&self, bucket: &str) -> S3Result<()> {
        self.bucket(bucket).await?;
        ReplicationConfig::remove(&*self.meta, bucket).await
    }
}
