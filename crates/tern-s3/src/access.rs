//! The IAM action and resource of each S3 operation, as AWS's S3
//! authorization reference lists them, for identity policies.

/// The IAM action of S3 operation `operation` (s3s's operation name);
/// `versioned` when the request names a version id.
#[must_use]
pub fn iam_action(operation: &str, versioned: bool) -> String {
    let action = match operation {
        "GetObject" | "HeadObject" if versioned => "GetObjectVersion",
        "GetObject" | "HeadObject" => "GetObject",
        "GetObjectTagging" if versioned => "GetObjectVersionTagging",
        "PutObjectTagging" if versioned => "PutObjectVersionTagging",
        "DeleteObjectTagging" if versioned => "DeleteObjectVersionTagging",
        "DeleteObject" if versioned => "DeleteObjectVersion",
        "DeleteObjects" => "DeleteObject",
        "CopyObject" | "CreateMultipartUpload" | "UploadPart" | "UploadPartCopy" | "CompleteMultipartUpload" => {
            "PutObject"
        }
        "ListParts" => "ListMultipartUploadParts",
        "ListMultipartUploads" => "ListBucketMultipartUploads",
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => "ListBucket",
        "ListObjectVersions" => "ListBucketVersions",
        "ListBuckets" => "ListAllMyBuckets",
        "GetBucketEncryption" => "GetEncryptionConfiguration",
        "PutBucketEncryption" | "DeleteBucketEncryption" => "PutEncryptionConfiguration",
        other => other,
    };
    format!("s3:{action}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_the_actions_aws_checks() {
        assert_eq!(iam_action("HeadObject", false), "s3:GetObject");
        assert_eq!(iam_action("GetObject", true), "s3:GetObjectVersion");
        assert_eq!(iam_action("UploadPart", false), "s3:PutObject");
        assert_eq!(iam_action("ListObjectsV2", false), "s3:ListBucket");
        assert_eq!(iam_action("PutBucketVersioning", false), "s3:PutBucketVersioning");
        assert_eq!(resource_arn(Some("b"), Some("a/k")), "arn:aws:s3:::b/a/k");
        assert_eq!(resource_arn(None, None), "*");
    }
}
