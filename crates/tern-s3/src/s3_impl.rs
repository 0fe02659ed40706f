//! The s3s adapter: translate, delegate, wrap. No logic lives here.

use std::sync::Arc;

use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput, CompleteMultipartUploadOutput,
    CopyObjectInput, CopyObjectOutput, CreateBucketInput, CreateBucketOutput, CreateMultipartUploadInput,
    CreateMultipartUploadOutput, DeleteBucketEncryptionInput, DeleteBucketEncryptionOutput, DeleteBucketInput,
    DeleteBucketOutput, DeleteObjectInput, DeleteObjectOutput, DeleteObjectTaggingInput, DeleteObjectTaggingOutput,
    DeleteObjectsInput, DeleteObjectsOutput, GetBucketEncryptionInput, GetBucketEncryptionOutput,
    GetBucketLocationInput, GetBucketLocationOutput, GetBucketVersioningInput, GetBucketVersioningOutput,
    GetObjectAttributesInput, GetObjectAttributesOutput, GetObjectInput, GetObjectOutput, GetObjectTaggingInput,
    GetObjectTaggingOutput, HeadBucketInput, HeadBucketOutput, HeadObjectInput, HeadObjectOutput, ListBucketsInput,
    ListBucketsOutput, ListMultipartUploadsInput, ListMultipartUploadsOutput, ListObjectVersionsInput,
    ListObjectVersionsOutput, ListObjectsInput, ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output,
    ListPartsInput, ListPartsOutput, PutBucketEncryptionInput, PutBucketEncryptionOutput, PutBucketVersioningInput,
    PutBucketVersioningOutput, PutObjectInput, PutObjectOutput, PutObjectTaggingInput, PutObjectTaggingOutput, Tagging,
    UploadPartCopyInput, UploadPartCopyOutput, UploadPartInput, UploadPartOutput,
};
use s3s::dto::{
    DeleteBucketLifecycleInput, DeleteBucketLifecycleOutput, GetBucketLifecycleConfigurationInput,
    GetBucketLifecycleConfigurationOutput, PutBucketLifecycleConfigurationInput, PutBucketLifecycleConfigurationOutput,
};
use s3s::dto::{
    DeleteBucketPolicyInput, DeleteBucketPolicyOutput, GetBucketPolicyInput, GetBucketPolicyOutput,
    GetBucketPolicyStatusInput, GetBucketPolicyStatusOutput, PolicyStatus, PutBucketPolicyInput, PutBucketPolicyOutput,
};
use s3s::dto::{
    DeleteBucketReplicationInput, DeleteBucketReplicationOutput, GetBucketReplicationInput, GetBucketReplicationOutput,
    PutBucketReplicationInput, PutBucketReplicationOutput,
};
use s3s::dto::{
    DeletePublicAccessBlockInput, DeletePublicAccessBlockOutput, GetPublicAccessBlockInput, GetPublicAccessBlockOutput,
    PublicAccessBlockConfiguration, PutPublicAccessBlockInput, PutPublicAccessBlockOutput,
};
use s3s::{S3, S3Request, S3Response, S3Result};

use tern_iam::policy::Principal;

use crate::audit::{self, ConfigCall};
use crate::region::Region;

/// One region's S3 service.
#[derive(Clone)]
pub struct TernS3 {
    region: Arc<Region>,
}

impl TernS3 {
    #[must_use]
    pub fn new(region: Arc<Region>) -> Self {
        Self { region }
    }
}

/// The authenticated principal the access check attached to the request.
fn caller<T>(req: &S3Request<T>) -> S3Result<Principal> {
    req.extensions.get::<Principal>().cloned().ok_or_else(|| s3s::s3_error!(AccessDenied, "Access Denied"))
}

#[allow(clippy::unnecessary_wraps)] // keeps every trait method a one-liner
fn ok<T>(output: T) -> S3Result<S3Response<T>> {
    Ok(S3Response::new(output))
}

#[async_trait::async_trait]
impl S3 for TernS3 {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let done = self.region.create_bucket(&req.input).await;
        self.region.audited(&req, ConfigCall::new("CreateBucket", &req.input.bucket), done).await?;
        ok(CreateBucketOutput { location: Some(format!("/{}", req.input.bucket)) })
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        let done = self.region.delete_bucket(&req.input.bucket).await;
        self.region.audited(&req, ConfigCall::new("DeleteBucket", &req.input.bucket), done).await?;
        ok(DeleteBucketOutput {})
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.region.bucket(&req.input.bucket).await?;
        ok(HeadBucketOutput { bucket_region: Some(self.region.name.clone()), ..Default::default() })
    }

    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        ok(self.region.list_buckets(req.input).await?)
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let location_constraint = self.region.location(&req.input.bucket).await?;
        ok(GetBucketLocationOutput { location_constraint })
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let done = self.region.put_versioning(&req.input).await;
        let status = req.input.versioning_configuration.status.as_ref().map(|s| s.as_str().to_owned());
        let call = ConfigCall::new("PutBucketVersioning", &req.input.bucket)
            .with("VersioningConfiguration", serde_json::json!({ "Status": status }));
        self.region.audited(&req, call, done).await?;
        ok(PutBucketVersioningOutput {})
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        ok(self.region.get_versioning(&req.input.bucket).await?)
    }

    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        let input = &req.input;
        let rules = audit::encryption_rules(&input.server_side_encryption_configuration);
        let done =
            self.region.put_bucket_encryption(&input.bucket, input.server_side_encryption_configuration.clone()).await;
        let call =
            ConfigCall::new("PutBucketEncryption", &input.bucket).with("ServerSideEncryptionConfiguration", rules);
        self.region.audited(&req, call, done).await?;
        ok(PutBucketEncryptionOutput {})
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        ok(self.region.get_bucket_encryption(&req.input.bucket).await?)
    }

    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        let done = self.region.delete_bucket_encryption(&req.input.bucket).await;
        let call = ConfigCall::new("DeleteBucketEncryption", &req.input.bucket);
        self.region.audited(&req, call, done).await?;
        ok(DeleteBucketEncryptionOutput {})
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let done = self.region.put_bucket_policy(&req.input.bucket, &req.input.policy).await;
        let document = serde_json::from_str(&req.input.policy).unwrap_or(serde_json::Value::Null);
        let call = ConfigCall::new("PutBucketPolicy", &req.input.bucket).with("bucketPolicy", document);
        self.region.audited(&req, call, done).await?;
        ok(PutBucketPolicyOutput {})
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        ok(GetBucketPolicyOutput { policy: Some(self.region.get_bucket_policy(&req.input.bucket).await?) })
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        let done = self.region.delete_bucket_policy(&req.input.bucket).await;
        let call = ConfigCall::new("DeleteBucketPolicy", &req.input.bucket);
        self.region.audited(&req, call, done).await?;
        ok(DeleteBucketPolicyOutput {})
    }

    async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        let is_public = self.region.bucket_policy_is_public(&req.input.bucket).await?;
        ok(GetBucketPolicyStatusOutput { policy_status: Some(PolicyStatus { is_public: Some(is_public) }) })
    }

    async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        let c = &req.input.public_access_block_configuration;
        let setting = |s: Option<bool>| s.unwrap_or(false);
        let config = crate::PublicAccessBlock {
            block_public_acls: setting(c.block_public_acls),
            ignore_public_acls: setting(c.ignore_public_acls),
            block_public_policy: setting(c.block_public_policy),
            restrict_public_buckets: setting(c.restrict_public_buckets),
        };
        let done = self.region.put_public_access_block(&req.input.bucket, config).await;
        let call = ConfigCall::new("PutPublicAccessBlock", &req.input.bucket)
            .with("PublicAccessBlockConfiguration", audit::public_access_block(config));
        self.region.audited(&req, call, done).await?;
        ok(PutPublicAccessBlockOutput {})
    }

    async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        let c = self.region.get_public_access_block(&req.input.bucket).await?;
        let config = PublicAccessBlockConfiguration {
            block_public_acls: Some(c.block_public_acls),
            ignore_public_acls: Some(c.ignore_public_acls),
            block_public_policy: Some(c.block_public_policy),
            restrict_public_buckets: Some(c.restrict_public_buckets),
        };
        ok(GetPublicAccessBlockOutput { public_access_block_configuration: Some(config) })
    }

    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        let done = self.region.delete_public_access_block(&req.input.bucket).await;
        let call = ConfigCall::new("DeletePublicAccessBlock", &req.input.bucket);
        self.region.audited(&req, call, done).await?;
        ok(DeletePublicAccessBlockOutput {})
    }

    async fn put_bucket_replication(
        &self,
        req: S3Request<PutBucketReplicationInput>,
    ) -> S3Result<S3Response<PutBucketReplicationOutput>> {
        let who = caller(&req)?;
        let input = &req.input;
        let done = self.region.put_bucket_replication(&input.bucket, &input.replication_configuration, &who).await;
        let call = ConfigCall::new("PutBucketReplication", &input.bucket)
            .with("ReplicationConfiguration", serde_json::json!({ "Role": input.replication_configuration.role }));
        self.region.audited(&req, call, done).await?;
        ok(PutBucketReplicationOutput {})
    }

    async fn get_bucket_replication(
        &self,
        req: S3Request<GetBucketReplicationInput>,
    ) -> S3Result<S3Response<GetBucketReplicationOutput>> {
        let config = self.region.get_bucket_replication(&req.input.bucket).await?;
        ok(GetBucketReplicationOutput { replication_configuration: Some(config) })
    }

    async fn delete_bucket_replication(
        &self,
        req: S3Request<DeleteBucketReplicationInput>,
    ) -> S3Result<S3Response<DeleteBucketReplicationOutput>> {
        let done = self.region.delete_bucket_replication(&req.input.bucket).await;
        let call = ConfigCall::new("DeleteBucketReplication", &req.input.bucket);
        self.region.audited(&req, call, done).await?;
        ok(DeleteBucketReplicationOutput {})
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        let input = &req.input;
        let done = self.region.put_bucket_lifecycle(&input.bucket, input.lifecycle_configuration.as_ref()).await;
        let rules = input.lifecycle_configuration.as_ref().map_or(0, |c| c.rules.len());
        let call = ConfigCall::new("PutBucketLifecycleConfiguration", &input.bucket).with("Rules", rules.into());
        self.region.audited(&req, call, done).await?;
        ok(PutBucketLifecycleConfigurationOutput::default())
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        let rules = self.region.get_bucket_lifecycle(&req.input.bucket).await?;
        ok(GetBucketLifecycleConfigurationOutput { rules: Some(rules), ..Default::default() })
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        let done = self.region.delete_bucket_lifecycle(&req.input.bucket).await;
        let call = ConfigCall::new("DeleteBucketLifecycle", &req.input.bucket);
        self.region.audited(&req, call, done).await?;
        ok(DeleteBucketLifecycleOutput {})
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let who = caller(&req)?;
        ok(self.region.put_object(req, &who).await?)
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let who = caller(&req)?;
        ok(self.region.get_object(req.input, &who).await?)
    }

    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        ok(self.region.get_object_attributes(req.input).await?)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let (output, tags) = self.region.head_object(req.input).await?;
        let mut response = S3Response::new(output);
        if tags > 0 {
            response.headers.insert("x-amz-tagging-count", http::HeaderValue::from(tags));
        }
        Ok(response)
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        ok(self.region.delete_object(&req.input).await?)
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let who = caller(&req)?;
        ok(self.region.delete_objects(req.input, &who).await?)
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let who = caller(&req)?;
        ok(self.region.copy_object(req, &who).await?)
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        ok(self.region.list_objects_v1(req.input).await?)
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        ok(self.region.list_objects_v2(req.input).await?)
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        ok(self.region.list_object_versions(req.input).await?)
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let i = &req.input;
        let (tag_set, version_id) = self.region.get_tags(&i.bucket, &i.key, i.version_id.as_deref()).await?;
        ok(GetObjectTaggingOutput { tag_set, version_id })
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let i = req.input;
        let version_id = self.region.put_tags(&i.bucket, &i.key, i.version_id.as_deref(), i.tagging).await?;
        ok(PutObjectTaggingOutput { version_id })
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let i = req.input;
        let empty = Tagging { tag_set: vec![] };
        let version_id = self.region.put_tags(&i.bucket, &i.key, i.version_id.as_deref(), empty).await?;
        ok(DeleteObjectTaggingOutput { version_id })
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let who = caller(&req)?;
        ok(self.region.create_multipart_upload(req.input, &who).await?)
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let who = caller(&req)?;
        ok(self.region.upload_part(req, &who).await?)
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let who = caller(&req)?;
        ok(self.region.upload_part_copy(req.input, &who).await?)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        ok(self.region.complete_multipart_upload(req.input).await?)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.region.abort_multipart_upload(&req.input).await?;
        ok(AbortMultipartUploadOutput::default())
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        ok(self.region.list_parts(req.input).await?)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        ok(self.region.list_multipart_uploads(req.input).await?)
    }
}
