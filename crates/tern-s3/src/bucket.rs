//! Buckets: create, delete, head, list, location, versioning.

use s3s::dto::{
    Bucket, BucketLocationConstraint, BucketVersioningStatus, CreateBucketInput, GetBucketVersioningOutput,
    ListBucketsInput, ListBucketsOutput, PutBucketVersioningInput,
};
use s3s::{S3Result, s3_error};
use tern_core::names::is_valid_bucket_name;
use tern_store::{BucketRecord, Versioning};

use crate::error::{registry_error, store_error, wrong_region};
use crate::region::Region;
use crate::wire::{now_ms, owner, timestamp};

impl Region {
    /// The local bucket `name`; for a bucket of another region, AWS's redirect.
    pub(crate) async fn bucket(&self, name: &str) -> S3Result<BucketRecord> {
        if let Some(bucket) = self.meta.get_bucket(name).await.map_err(store_error)? {
            return Ok(bucket);
        }
        match self.registry.lookup(name).await.map_err(|e| registry_error(&e))? {
            Some(region) if region != self.name => Err(wrong_region(name, &region)),
            _ => Err(s3_error!(NoSuchBucket, "The specified bucket does not exist")),
        }
    }

    pub(crate) async fn create_bucket(&self, input: &CreateBucketInput) -> S3Result<()> {
        if !is_valid_bucket_name(&input.bucket) {
            return Err(s3_error!(InvalidBucketName, "The specified bucket is not valid."));
        }
        self.check_location_constraint(input)?;
        let holder = self.registry.claim(&input.bucket, &self.name).await.map_err(|e| registry_error(&e))?;
        if holder != self.name {
            return Err(already_owned());
        }
        let record =
            BucketRecord { name: input.bucket.clone(), created_ms: now_ms(), versioning: Versioning::Unversioned };
        // Nothing cached of an earlier bucket of this name may govern this one.
        self.forget_bucket_policy(&input.bucket);
        match self.meta.create_bucket(&record).await {
            // AWS's legacy answer in us-east-1: the owner's bucket, as it was.
            Err(tern_store::StoreError::BucketExists) if self.name == "us-east-1" => Ok(()),
            Err(tern_store::StoreError::BucketExists) => Err(already_owned()),
            other => other.map_err(store_error),
        }
    }

    /// As AWS: us-east-1 takes no constraint; every other region requires its own name.
    fn check_location_constraint(&self, input: &CreateBucketInput) -> S3Result<()> {
        let constraint = input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(BucketLocationConstraint::as_str)
            .filter(|c| !c.is_empty());
        match (self.name.as_str(), constraint) {
            ("us-east-1", None) => Ok(()),
            ("us-east-1", Some("us-east-1")) => {
                Err(s3_error!(InvalidLocationConstraint, "The specified location-constraint is not valid"))
            }
            (own, Some(c)) if c == own => Ok(()),
            (_, None) => Err(s3_error!(
                IllegalLocationConstraintException,
                "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to."
            )),
            (_, Some(c)) => Err(s3_error!(
                IllegalLocationConstraintException,
                "The {c} location constraint is incompatible for the region specific endpoint this request was sent to."
            )),
        }
    }

    pub(crate) async fn delete_bucket(&self, name: &str) -> S3Result<()> {
        self.bucket(name).await?;
        let gone = self.meta.delete_bucket(name).await.map_err(store_error)?;
        self.release_blobs(&gone.blobs).await;
        self.forget_bucket_policy(name);
        if let Err(e) = self.registry.release(name, &self.name).await {
            // The name stays reserved for this region until a later create or delete.
            tracing::warn!(bucket = name, error = %e, "bucket deleted but its name could not be released");
        }
        Ok(())
    }

    /// `ListBuckets`, one page: names after the continuation token that match
    /// `prefix` and `bucket-region`, at most `max-buckets` (all when absent).
    pub(crate) async fn list_buckets(&self, input: ListBucketsInput) -> S3Result<ListBucketsOutput> {
        let max = match input.max_buckets {
            None => usize::MAX,
            Some(n @ 1..=10_000) => usize::try_from(n).unwrap_or(usize::MAX),
            Some(_) => {
                return Err(s3_error!(InvalidArgument, "Argument max-buckets must be an integer between 1 and 10000"));
            }
        };
        let after = input.continuation_token.as_deref().map(bucket_token_start).transpose()?;
        let prefix = input.prefix.as_deref().unwrap_or_default();
        let mut entries = self.registry.list().await.map_err(|e| registry_error(&e))?;
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let mut matching = entries
            .into_iter()
            .filter(|e| after.as_ref().is_none_or(|after| e.name > *after))
            .filter(|e| e.name.starts_with(prefix))
            .filter(|e| input.bucket_region.as_ref().is_none_or(|r| e.region == *r));
        let page: Vec<_> = matching.by_ref().take(max).collect();
        let next =
            (matching.next().is_some()).then(|| page.last().map(|e| crate::body::base64_encode(e.name.as_bytes())));
        let buckets = page
            .into_iter()
            .map(|e| Bucket {
                bucket_region: Some(e.region),
                creation_date: Some(timestamp(e.created_ms)),
                name: Some(e.name),
            })
            .collect();
        Ok(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner(&self.account_id)),
            continuation_token: next.flatten(),
            prefix: input.prefix,
        })
    }

    pub(crate) async fn location(&self, name: &str) -> S3Result<Option<BucketLocationConstraint>> {
        self.bucket(name).await?;
        // us-east-1 answers with an empty LocationConstraint.
        Ok((self.name != "us-east-1").then(|| BucketLocationConstraint::from(self.name.clone())))
    }

    pub(crate) async fn put_versioning(&self, input: &PutBucketVersioningInput) -> S3Result<()> {
        let bucket = self.bucket(&input.bucket).await?;
        let state = match input.versioning_configuration.status.as_ref().map(BucketVersioningStatus::as_str) {
            Some("Enabled") => Versioning::Enabled,
            Some("Suspended") => Versioning::Suspended,
            _ => {
                return Err(crate::error::malformed_xml());
            }
        };
        if state == Versioning::Suspended && self.replication_config(&bucket.name).await?.is_some() {
            return Err(s3_error!(
                InvalidBucketState,
                "A replication configuration is present on this bucket, so the versioning state cannot be changed."
            ));
        }
        self.meta.set_versioning(&bucket.name, state).await.map_err(store_error)
    }

    pub(crate) async fn get_versioning(&self, name: &str) -> S3Result<GetBucketVersioningOutput> {
        let bucket = self.bucket(name).await?;
        let status = match bucket.versioning {
            Versioning::Unversioned => None,
            Versioning::Enabled => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::ENABLED)),
            Versioning::Suspended => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::SUSPENDED)),
        };
        Ok(GetBucketVersioningOutput { status, ..Default::default() })
    }
}

/// The bucket name a `ListBuckets` continuation token resumes after.
fn bucket_token_start(token: &str) -> S3Result<String> {
    crate::body::base64_decode(token)
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))
}

fn already_owned() -> s3s::S3Error {
    s3_error!(
        BucketAlreadyOwnedByYou,
        "Your previous request to create the named bucket succeeded and you already own it."
    )
}
