//! Why a replication failed, in AWS's failure-reason names, and what an
//! operator should fix. Every reason has its name and its hint in the two
//! exhaustive matches below, so a reason without a hint does not compile.

use std::fmt;

/// Declares the reasons once: the enum, and the list parsing walks.
macro_rules! failure_reasons {
    ($($name:ident),+ $(,)?) => {
        /// A permanent replication failure, as AWS names it in
        /// `x-amz-replication-status` failure events.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FailureReason { $($name),+ }

        impl FailureReason {
            /// Every reason, in declaration order.
            pub const ALL: &[Self] = &[$(Self::$name),+];

            /// AWS's name of the reason.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$name => stringify!($name)),+ }
            }
        }
    };
}

failure_reasons! {
    AssumeRoleNotPermitted,
    SrcBucketNotFound,
    SrcGetObjectNotPermitted,
    SrcGetTaggingNotPermitted,
    SrcKmsKeyInvalidState,
    SrcObjectNotEligible,
    SrcVersionNotFound,
    DstBucketNotFound,
    DstBucketUnversioned,
    DstDelObjNotPermitted,
    DstKmsKeyInvalidState,
    DstKmsKeyNotFound,
    DstPutObjectNotPermitted,
    DstPutTaggingNotPermitted,
    DstVersionNotFound,
}

impl FailureReason {
    /// The reason AWS calls `name`.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == name)
    }

    /// What an operator should fix, for a rule acting as `role` and
    /// replicating to the bucket `destination`.
    #[must_use]
    pub fn hint(self, role: &str, destination: &str) -> String {
        match self {
            Self::AssumeRoleNotPermitted => {
                format!(
                    "let s3.amazonaws.com assume {role}: its trust policy must allow sts:AssumeRole for that service"
                )
            }
            Self::SrcGetObjectNotPermitted => format!(
                "allow {role} s3:GetObjectVersionForReplication on the source objects, and kms:Decrypt on the source \
                 key (key policy and the role's policies) for SSE-KMS objects"
            ),
            Self::SrcGetTaggingNotPermitted => {
                format!("allow {role} s3:GetObjectVersionTagging on the source objects, so tag changes can replicate")
            }
            Self::SrcKmsKeyInvalidState => "enable the source object's KMS key (or cancel its deletion)".to_owned(),
            Self::SrcObjectNotEligible => {
                "the source object is not stored in a form Tern can hand over sealed; retry it, or rewrite it"
                    .to_owned()
            }
            Self::SrcVersionNotFound | Self::SrcBucketNotFound => {
                "the source version is gone; nothing to replicate".to_owned()
            }
            Self::DstPutObjectNotPermitted => format!(
                "allow {role} s3:ReplicateObject on arn:aws:s3:::{destination}/*, and kms:GenerateDataKey and \
                 kms:Encrypt on the ReplicaKmsKeyID (its key policy must allow the role) for SSE-KMS objects"
            ),
            Self::DstDelObjNotPermitted => format!("allow {role} s3:ReplicateDelete on arn:aws:s3:::{destination}/*"),
            Self::DstPutTaggingNotPermitted => format!("allow {role} s3:ReplicateTags on arn:aws:s3:::{destination}/*"),
            Self::DstVersionNotFound => format!(
                "{destination} does not hold this version (its replication failed, or it was deleted there); retry \
                 it once the version is there"
            ),
            Self::DstKmsKeyNotFound => {
                "ReplicaKmsKeyID must name a key that exists in the destination's region".to_owned()
            }
            Self::DstKmsKeyInvalidState => {
                "enable the destination key named by ReplicaKmsKeyID (or cancel its deletion)".to_owned()
            }
            Self::DstBucketNotFound => format!("create the destination bucket {destination}"),
            Self::DstBucketUnversioned => format!("enable versioning on the destination bucket {destination}"),
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure as a task records it: the reason, and the S3 error code behind
/// it when that code has no reason of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailureReason,
    pub detail: Option<String>,
}

impl Failure {
    /// Reads a failure as [`Display`](fmt::Display) wrote it (`Reason` or
    /// `Reason (detail)`), as the outbox stores it.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let (name, rest) = text.split_once(' ').unwrap_or((text, ""));
        let detail = rest.strip_prefix('(').and_then(|d| d.strip_suffix(')')).map(str::to_owned);
        Some(Self { reason: FailureReason::named(name)?, detail })
    }
}

impl From<FailureReason> for Failure {
    fn from(reason: FailureReason) -> Self {
        Self { reason, detail: None }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{} ({detail})", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_by_its_name_and_has_a_hint() {
        for &reason in FailureReason::ALL {
            assert_eq!(FailureReason::named(reason.as_str()), Some(reason));
            assert!(!reason.hint("arn:aws:iam::000000000000:role/r", "dst").is_empty());
        }
        assert_eq!(FailureReason::named("DstBucketUnversioned"), Some(FailureReason::DstBucketUnversioned));
        assert_eq!(FailureReason::named("Nonsense"), None);
    }

    #[test]
    fn failures_read_back_as_they_were_written() {
        let with_detail =
            Failure { reason: FailureReason::DstPutObjectNotPermitted, detail: Some("InvalidRequest".into()) };
        assert_eq!(with_detail.to_string(), "DstPutObjectNotPermitted (InvalidRequest)");
        assert_eq!(Failure::parse(&with_detail.to_string()), Some(with_detail));
        assert_eq!(Failure::parse("DstBucketNotFound"), Some(FailureReason::DstBucketNotFound.into()));
        assert_eq!(Failure::parse("source answered 503"), None);
    }
}
