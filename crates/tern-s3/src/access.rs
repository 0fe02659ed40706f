//! The IAM action and resource of each S3 operation, as AWS's S3
//! authorization reference lists them, for identity policies; and the one
//! way this crate authorizes a principal itself.

use s3s::S3Result;
use tern_iam::policy::{Principal, RequestContext};

use crate::region::Region;

/// The IAM action of S3 operation `operation` (s3s's operation name);
/// `versioned` when the request names a version id. `None` for an
/// operation Tern does not serve: it is refused, never guessed at.
#[must_use]
pub fn iam_action(operation: &str, versioned: bool) -> Option<&'static str> {
    Some(match operation {
        "GetObject" | "HeadObject" if versioned => "s3:GetObjectVersion",
        "GetObject" | "HeadObject" => "s3:GetObject",
        "GetObjectAttributes" if versioned => "s3:GetObjectVersionAttributes",
        "GetObjectAttributes" => "s3:GetObjectAttributes",
        "GetObjectTagging" if versioned => "s3:GetObjectVersionTagging",
        "GetObjectTagging" => "s3:GetObjectTagging",
        "PutObjectTagging" if versioned => "s3:PutObjectVersionTagging",
        "PutObjectTagging" => "s3:PutObjectTagging",
        "DeleteObjectTagging" if versioned => "s3:DeleteObjectVersionTagging",
        "DeleteObjectTagging" => "s3:DeleteObjectTagging",
        "DeleteObject" if versioned => "s3:DeleteObjectVersion",
        "DeleteObject" | "DeleteObjects" => "s3:DeleteObject",
        "PutObject"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => "s3:PutObject",
        "AbortMultipartUpload" => "s3:AbortMultipartUpload",
        "ListParts" => "s3:ListMultipartUploadParts",
        "ListMultipartUploads" => "s3:ListBucketMultipartUploads",
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => "s3:ListBucket",
        "ListObjectVersions" => "s3:ListBucketVersions",
        "ListBuckets" => "s3:ListAllMyBuckets",
        "CreateBucket" => "s3:CreateBucket",
        "DeleteBucket" => "s3:DeleteBucket",
        "GetBucketLocation" => "s3:GetBucketLocation",
        "GetBucketVersioning" => "s3:GetBucketVersioning",
        "PutBucketVersioning" => "s3:PutBucketVersioning",
        "GetBucketEncryption" => "s3:GetEncryptionConfiguration",
        "PutBucketEncryption" | "DeleteBucketEncryption" => "s3:PutEncryptionConfiguration",
        "GetBucketLifecycleConfiguration" => "s3:GetLifecycleConfiguration",
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => "s3:PutLifecycleConfiguration",
        "GetBucketReplication" => "s3:GetReplicationConfiguration",
        "PutBucketReplication" | "DeleteBucketReplication" => "s3:PutReplicationConfiguration",
        "GetBucketPolicy" => "s3:GetBucketPolicy",
        "PutBucketPolicy" => "s3:PutBucketPolicy",
        "DeleteBucketPolicy" => "s3:DeleteBucketPolicy",
        "GetBucketPolicyStatus" => "s3:GetBucketPolicyStatus",
        "GetPublicAccessBlock" => "s3:GetBucketPublicAccessBlock",
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => "s3:PutBucketPublicAccessBlock",
        _ => return None,
    })
}

/// The ARN an S3 request acts on.
#[must_use]
pub fn resource_arn(bucket: Option<&str>, key: Option<&str>) -> String {
    match (bucket, key) {
        (Some(bucket), Some(key)) => format!("arn:aws:s3:::{bucket}/{key}"),
        (Some(bucket), None) => format!("arn:aws:s3:::{bucket}"),
        _ => "*".to_owned(),
    }
}

impl Region {
    /// Whether `who`'s identity policies allow `action` on `resource` (a
    /// follower region catches up with IAM before it refuses).
    pub(crate) async fn authorize(&self, who: &Principal, action: &str, resource: &str) -> S3Result<()> {
        self.authorize_in(who, action, resource, &RequestContext::of(who)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_the_actions_aws_checks() {
        assert_eq!(iam_action("HeadObject", false), Some("s3:GetObject"));
        assert_eq!(iam_action("GetObject", true), Some("s3:GetObjectVersion"));
        assert_eq!(iam_action("UploadPart", false), Some("s3:PutObject"));
        assert_eq!(iam_action("ListObjectsV2", false), Some("s3:ListBucket"));
        assert_eq!(iam_action("PutBucketVersioning", false), Some("s3:PutBucketVersioning"));
        assert_eq!(iam_action("PutBucketReplication", false), Some("s3:PutReplicationConfiguration"));
        assert_eq!(iam_action("DeleteBucketReplication", false), Some("s3:PutReplicationConfiguration"));
        assert_eq!(iam_action("PostObject", false), None, "an operation Tern does not serve has no action");
        assert_eq!(resource_arn(Some("b"), Some("a/k")), "arn:aws:s3:::b/a/k");
        assert_eq!(resource_arn(None, None), "*");
    }
}
