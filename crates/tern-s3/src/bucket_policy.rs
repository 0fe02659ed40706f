//! Bucket policies (`Put`/`Get`/`DeleteBucketPolicy`, `GetBucketPolicyStatus`)
//! and Block Public Access (`Put`/`Get`/`DeletePublicAccessBlock`). A policy
//! is stored as written (a versioned document). Every S3 authorization of
//! the bucket's resources reads the stored text (the embedded store keeps
//! it in memory, forgetting it when a write commits; a shared store is read
//! every time, so a change made through any front-end holds at once on
//! all) and reuses its parse while the text is the same; the policy is
//! evaluated beside the caller's identity policies ([`Region::authorize_in`]).
//! Block Public Access is on for every bucket until removed, and the
//! deployment's account-wide setting adds to it: a public policy cannot be
//! put, and only the account's principals reach a bucket whose policy is
//! public.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use s3s::{S3Result, s3_error};
use serde::{Deserialize, Serialize};
use tern_iam::policy::{Policy, Principal, Request, RequestContext};

use crate::error::store_error;
use crate::region::Region;
use crate::stored::StoredConfig;

/// AWS's largest bucket policy.
const MAX_POLICY_BYTES: usize = 20 * 1024;

/// The parsed policies of this region's buckets, by bucket, each with the
/// text it was parsed from: only the store says which policy holds.
#[derive(Default)]
pub struct BucketPolicies {
    parsed: Mutex<HashMap<String, ParsedPolicy>>,
}

#[derive(Clone)]
struct ParsedPolicy {
    text: String,
    policy: Arc<Policy>,
}

impl ParsedPolicy {
    /// A stored policy that no longer parses denies everything but its own repair.
    fn of(text: String) -> Self {
        let policy = Arc::new(Policy::resource(&text).unwrap_or_else(|_| Policy::deny_all()));
        Self { text, policy }
    }
}

impl BucketPolicies {
    fn cache(&self) -> MutexGuard<'_, HashMap<String, ParsedPolicy>> {
        self.parsed.lock().expect("bucket policy cache lock")
    }

    /// `text`, the policy `bucket` has now, parsed (again only if it changed).
    fn parse(&self, bucket: &str, text: String) -> Arc<Policy> {
        if let Some(known) = self.cache().get(bucket).filter(|known| known.text == text) {
            return Arc::clone(&known.policy);
        }
        let parsed = ParsedPolicy::of(text);
        let policy = Arc::clone(&parsed.policy);
        self.cache().insert(bucket.to_owned(), parsed);
        policy
    }

    fn forget(&self, bucket: &str) {
        self.cache().remove(bucket);
    }
}

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

/// Block Public Access settings of a bucket (or the account).
#[allow(clippy::struct_excessive_bools)] // AWS's four independent settings, as its API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// Everything blocked: a new bucket's settings, as on AWS since 2023.
    pub const ALL: Self = Self {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };
    pub const NONE: Self = Self {
        block_public_acls: false,
        ignore_public_acls: false,
        block_public_policy: false,
        restrict_public_buckets: false,
    };

    /// Each setting that either blocks.
    fn or(self, other: Self) -> Self {
        Self {
            block_public_acls: self.block_public_acls || other.block_public_acls,
            ignore_public_acls: self.ignore_public_acls || other.ignore_public_acls,
            block_public_policy: self.block_public_policy || other.block_public_policy,
            restrict_public_buckets: self.restrict_public_buckets || other.restrict_public_buckets,
        }
    }
}

/// A bucket's Block Public Access as stored: a bucket without a row has
/// [`PublicAccessBlock::ALL`]; `None` once the configuration was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StoredPublicAccessBlock {
    config: Option<PublicAccessBlock>,
}

impl StoredConfig for StoredPublicAccessBlock {
    const KIND: &'static str = "public-access-block";
    const VERSION: u64 = 1;

    /// Block Public Access began at version 1.
    fn migrate(version: u64, _: serde_json::Value) -> Result<serde_json::Value, String> {
        Err(format!("no public access block was ever stored as version {version}"))
    }
}

/// The object actions whose requests carry `s3:ExistingObjectTag/<key>`.
const TAGGED_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectTagging",
    "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
];

/// Actions the account's root may always take on a bucket's policy, so a
/// policy can never lock the account out of its own bucket (as on AWS).
const POLICY_ACTIONS: [&str; 3] = ["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"];

fn no_policy() -> s3s::S3Error {
    s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist")
}

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
        if policy.is_public() && self.public_access_block(bucket).await?.block_public_policy {
            return Err(s3_error!(
                AccessDenied,
                "User is not authorized to perform: s3:PutBucketPolicy on resource: \"arn:aws:s3:::{bucket}\" because \
                 public policies are blocked by the BlockPublicPolicy block public access setting."
            ));
        }
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
        StoredPolicy { text: text.to_owned() }.store(&*self.meta, bucket).await
    }

    pub(crate) async fn get_bucket_policy(&self, bucket: &str) -> S3Result<String> {
        self.bucket(bucket).await?;
        let stored = StoredPolicy::load(&*self.meta, bucket).await?;
        stored.map(|p| p.text).ok_or_else(no_policy)
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
        self.bucket(bucket).await?;
        Ok(self.bucket_policy(bucket).await?.ok_or_else(no_policy)?.is_public())
    }

    /// The bucket's policy, parsed. The text as the store has it decides;
    /// only its parse is kept here, with the text, so nothing kept here can
    /// outlive a change (one whose caller hung up, or another front-end's).
    pub async fn bucket_policy(&self, bucket: &str) -> S3Result<Option<Arc<Policy>>> {
        let Some(stored) = StoredPolicy::load(&*self.meta, bucket).await? else {
            self.bucket_policies.forget(bucket);
            return Ok(None);
        };
        Ok(Some(self.bucket_policies.parse(bucket, stored.text)))
    }

    pub(crate) async fn put_public_access_block(&self, bucket: &str, config: PublicAccessBlock) -> S3Result<()> {
        self.bucket(bucket).await?;
        StoredPublicAccessBlock { config: Some(config) }.store(&*self.meta, bucket).await
    }

    pub(crate) async fn get_public_access_block(&self, bucket: &str) -> S3Result<PublicAccessBlock> {
        self.bucket(bucket).await?;
        let stored = StoredPublicAccessBlock::load(&*self.meta, bucket).await?;
        stored.map_or(Some(PublicAccessBlock::ALL), |s| s.config).ok_or_else(|| {
            crate::error::with_status(
                s3s::S3Error::with_message(
                    s3s::S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
                    "The public access block configuration was not found",
                ),
                http::StatusCode::NOT_FOUND,
            )
        })
    }

    pub(crate) async fn delete_public_access_block(&self, bucket: &str) -> S3Result<()> {
        self.bucket(bucket).await?;
        StoredPublicAccessBlock { config: None }.store(&*self.meta, bucket).await
    }

    /// What blocks public access to `bucket`: its own settings and the account's.
    async fn public_access_block(&self, bucket: &str) -> S3Result<PublicAccessBlock> {
        let stored = StoredPublicAccessBlock::load(&*self.meta, bucket).await?;
        let own = stored.map_or(Some(PublicAccessBlock::ALL), |s| s.config).unwrap_or(PublicAccessBlock::NONE);
        Ok(own.or(self.account_public_access_block))
    }

    /// Drops the parse kept of `bucket`'s policy (memory only: the stored text decides).
    pub(crate) fn forget_bucket_policy(&self, bucket: &str) {
        self.bucket_policies.forget(bucket);
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
        let bucket = bucket_of(resource).filter(|_| !exempt);
        let mut policy = match bucket {
            Some(bucket) => self.bucket_policy(bucket).await?,
            None => None,
        };
        // RestrictPublicBuckets: a public policy reaches only the account's principals.
        if let Some(bucket) = bucket
            && who.is_anonymous()
            && policy.as_ref().is_some_and(|p| p.is_public())
            && self.public_access_block(bucket).await?.restrict_public_buckets
        {
            policy = None;
        }
        let with_tags = self.existing_object_tags(who, action, resource, context, policy.as_deref()).await?;
        let context = with_tags.as_ref().unwrap_or(context);
        let request = Request { principal: who, action, resource, context };
        self.iam
            .authorize_current_with(&request, policy.as_deref())
            .await
            .map_err(|denial| crate::error::access_denied(&denial))
    }

    /// `s3:ExistingObjectTag/<key>` for the object actions that carry it,
    /// looked up only when a policy that decides reads it.
    async fn existing_object_tags(
        &self,
        who: &Principal,
        action: &str,
        resource: &str,
        context: &RequestContext,
        policy: Option<&Policy>,
    ) -> S3Result<Option<RequestContext>> {
        const PREFIX: &str = "s3:existingobjecttag/";
        let Some((bucket, key)) = resource.strip_prefix("arn:aws:s3:::").and_then(|r| r.split_once('/')) else {
            return Ok(None);
        };
        // The action first: it is the cheap test, and most requests stop here.
        if !TAGGED_ACTIONS.contains(&action)
            || !(policy.is_some_and(|p| p.reads_keys(PREFIX)) || self.iam.identity_reads_keys(who, PREFIX))
        {
            return Ok(None);
        }
        let version = context.value("s3:VersionId");
        let Some(found) = self.meta.get_version(bucket, key, version).await.map_err(store_error)? else {
            return Ok(None);
        };
        let mut context = context.clone();
        for (tag, value) in &found.tags {
            context.set(&format!("s3:ExistingObjectTag/{tag}"), value.clone());
        }
        Ok(Some(context))
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
