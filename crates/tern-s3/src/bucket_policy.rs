//! Bucket policies: `Put`/`Get`/`DeleteBucketPolicy` and `GetBucketPolicyStatus`.
//! A policy is stored as written (a versioned document), parsed once, and
//! kept per bucket in memory; every S3 authorization of the bucket's
//! resources reads it beside the caller's identity policies
//! ([`Region::authorize_in`]).

use std::sync::Arc;

use s3s::{S3Result, s3_error};
use serde::{Deserialize, Serialize};
use tern_iam::policy::{Policy, Principal, Request, RequestContext};

use crate::error::store_error;
use crate::region::Region;
use crate::stored::StoredConfig;

/// AWS's largest bucket policy.
const MAX_POLICY_BYTES: usize = 20 * 1024;

/// A bucket policy as stored: the document as it was put.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredPolicy {
    pub text: String,
}

impl StoredConfig for StoredPolicy {
    const KIND: &'static str = "policy";
    const VERSION: u64 = 1;

    /// Bucket policies began at version 1.
    fn migrate(version: u64, _: serde_json::Value) -> Result<serde_json::Value, String> {
        Err(format!("no bucket policy was ever stored as version {version}"))
    }
}

/// Actions the account's root may always take on a bucket's policy, so a
/// policy can never lock the account out of its own bucket (as on AWS).
const POLICY_ACTIONS: [&str; 3] = ["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"];

fn malformed(message: &str) -> s3s::S3Error {
    s3_error!(MalformedPolicy, "{message}")
}

/// The bucket an S3 resource ARN names.
fn bucket_of(resource: &str) -> Option<&str> {
    let rest = resource.strip_prefix("arn:aws:s3:::")?;
    Some(rest.split_once('/').map_or(rest, |(bucket, _)| bucket)).filter(|b| !b.is_empty())
}

impl Region {
    pub(crate) async fn put_bucket_policy(&self, bucket: &str, text: &str) -> S3Result<()> {
        self.bucket(bucket).await?;
        if text.len() > MAX_POLICY_BYTES {
            return Err(malformed("Policies must be less than 20 KB."));
        }
        let policy = Policy::resource(text).map_err(|e| malformed(&e.0))?;
        let own = format!("arn:aws:s3:::{bucket}");
        let foreign = policy
            .named_resources()
            .into_iter()
            .find(|r| *r != own && !r.strip_prefix(own.as_str()).is_some_and(|rest| rest.starts_with('/')));
        if let Some(resource) = foreign {
            return Err(malformed(&format!("Policy has invalid resource: {resource}")));
        }
        if !self.iam.principals_exist_current(&policy.named_principals()).await {
            return Err(malformed("Invalid principal in policy"));
        }
        StoredPolicy { text: text.to_owned() }.store(&*self.meta, bucket).await?;
        self.policy_cache().insert(bucket.to_owned(), Some(Arc::new(policy)));
        Ok(())
    }

    pub(crate) async fn get_bucket_policy(&self, bucket: &str) -> S3Result<String> {
        self.bucket(bucket).await?;
        let stored = StoredPolicy::load(&*self.meta, bucket).await?;
        stored.map(|p| p.text).ok_or_else(|| s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist"))
    }

    pub(crate) async fn delete_bucket_policy(&self, bucket: &str) -> S3Result<()> {
        self.bucket(bucket).await?;
        StoredPolicy::remove(&*self.meta, bucket).await?;
        self.forget_bucket_policy(bucket);
        Ok(())
    }

    /// Whether the policy grants anyone (`Principal: *`) anything without a
    /// condition, as `GetBucketPolicyStatus` reports it.
    pub(crate) async fn bucket_policy_is_public(&self, bucket: &str) -> S3Result<bool> {
        self.get_bucket_policy(bucket).await?;
        Ok(self.bucket_policy(bucket).await?.is_some_and(|p| p.is_public()))
    }

    /// The bucket's policy, parsed; cached until it changes, for buckets
    /// of this region only (so names a caller makes up take no memory).
    pub(crate) async fn bucket_policy(&self, bucket: &str) -> S3Result<Option<Arc<Policy>>> {
        if let Some(cached) = self.policy_cache().get(bucket) {
            return Ok(cached.clone());
        }
        let stored = StoredPolicy::load(&*self.meta, bucket).await?;
        // A stored policy that no longer parses denies everything but its own repair.
        let policy = stored.map(|p| Arc::new(Policy::resource(&p.text).unwrap_or_else(|_| Policy::deny_all())));
        if policy.is_some() || self.meta.get_bucket(bucket).await.map_err(store_error)?.is_some() {
            self.policy_cache().insert(bucket.to_owned(), policy.clone());
        }
        Ok(policy)
    }

    /// Forgets what is cached of `bucket`'s policy (it changed, or the bucket went).
    pub(crate) fn forget_bucket_policy(&self, bucket: &str) {
        self.policy_cache().remove(bucket);
    }

    fn policy_cache(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Option<Arc<Policy>>>> {
        self.bucket_policies.lock().expect("bucket policy cache lock")
    }

    /// Whether `who` may take `action` on `resource` with the request's
    /// condition keys `context`: the caller's identity policies and, for a
    /// bucket of this region, its bucket policy (a follower region catches
    /// up with IAM before it refuses).
    pub async fn authorize_in(
        &self,
        who: &Principal,
        action: &str,
        resource: &str,
        context: &RequestContext,
    ) -> S3Result<()> {
        let exempt = who.is_root() && POLICY_ACTIONS.contains(&action);
        let policy = match bucket_of(resource) {
            Some(bucket) if !exempt => self.bucket_policy(bucket).await?,
            _ => None,
        };
        let request = Request { principal: who, action, resource, context };
        self.iam
            .authorize_current_with(&request, policy.as_deref())
            .await
            .map_err(|denial| crate::error::access_denied(&denial))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_their_bucket() {
        assert_eq!(bucket_of("arn:aws:s3:::b/k/x"), Some("b"));
        assert_eq!(bucket_of("arn:aws:s3:::b"), Some("b"));
        assert_eq!(bucket_of("arn:aws:s3:::"), None);
        assert_eq!(bucket_of("*"), None);
    }
}
