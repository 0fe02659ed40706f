//! Why a replication did not succeed, in AWS's failure-reason names, and
//! what to do about it.

/// How a transfer went wrong.
#[derive(Debug)]
pub(crate) enum Trouble {
    /// Never retried by itself: the task becomes FAILED with this reason.
    Permanent(String),
    /// Retried with backoff; the task stays PENDING.
    Transient(String),
}

pub(crate) fn permanent(reason: &str) -> Trouble {
    Trouble::Permanent(reason.to_owned())
}

/// Milliseconds to wait after `attempts` failed tries: 0.5 s doubling, at most a minute.
pub(crate) fn backoff(attempts: u32) -> i64 {
    500_i64.saturating_mul(1_i64 << attempts.min(7)).min(60_000)
}

/// The S3 error code of an error response body, if it has one.
pub(crate) fn error_code(body: &str) -> Option<&str> {
    let start = body.find("<Code>")? + "<Code>".len();
    let end = body[start..].find("</Code>")? + start;
    Some(&body[start..end])
}

/// The failure reason of the source side's answer to the replication read.
pub(crate) fn source_failure(status: u16, body: &str) -> Trouble {
    match (status, error_code(body)) {
        (403, _) => permanent("SrcGetObjectNotPermitted"),
        (404, Some("NoSuchBucket")) => permanent("SrcBucketNotFound"),
        (404, _) => permanent("SrcVersionNotFound"),
        (_, Some("KMS.DisabledException" | "KMS.KMSInvalidStateException" | "KMS.NotFoundException")) => {
            permanent("SrcKmsKeyInvalidState")
        }
        (400..=499, Some(code)) => Trouble::Permanent(format!("SrcGetObjectNotPermitted ({code})")),
        _ => Trouble::Transient(format!("source answered {status}")),
    }
}

/// The failure reason of the destination's answer to a delivery; `denied`
/// is the reason when the destination refuses it.
pub(crate) fn destination_failure(status: u16, body: &str, denied: &str) -> Trouble {
    match (status, error_code(body)) {
        (403, _) => permanent(denied),
        (404, Some("NoSuchVersion")) => permanent("DstVersionNotFound"),
        (_, Some("KMS.NotFoundException" | "KMS.InvalidArnException")) => permanent("DstKmsKeyNotFound"),
        (_, Some("KMS.DisabledException" | "KMS.KMSInvalidStateException")) => permanent("DstKmsKeyInvalidState"),
        (_, Some("NoSuchBucket" | "PermanentRedirect")) | (301, _) => permanent("DstBucketNotFound"),
        (_, Some("DstBucketUnversioned")) => permanent("DstBucketUnversioned"),
        (400..=499, Some(code)) => Trouble::Permanent(format!("{denied} ({code})")),
        _ => Trouble::Transient(format!("destination answered {status}")),
    }
}

/// What an operator should fix for a failure reason.
#[must_use]
pub fn hint(reason: &str, role: &str, destination: &str) -> String {
    let reason = reason.split(' ').next().unwrap_or(reason);
    match reason {
        "AssumeRoleNotPermitted" => {
            format!("let s3.amazonaws.com assume {role}: its trust policy must allow sts:AssumeRole for that service")
        }
        "SrcGetObjectNotPermitted" => format!(
            "allow {role} s3:GetObjectVersionForReplication on the source objects, and kms:Decrypt on the source key \
             (key policy and the role's policies) for SSE-KMS objects"
        ),
        "SrcKmsKeyInvalidState" => "enable the source object's KMS key (or cancel its deletion)".to_owned(),
        "SrcVersionNotFound" | "SrcBucketNotFound" => "the source version is gone; nothing to replicate".to_owned(),
        "DstPutObjectNotPermitted" => format!(
            "allow {role} s3:ReplicateObject on arn:aws:s3:::{destination}/*, and kms:GenerateDataKey and kms:Encrypt \
             on the ReplicaKmsKeyID (its key policy must allow the role) for SSE-KMS objects"
        ),
        "DstDelObjNotPermitted" => format!("allow {role} s3:ReplicateDelete on arn:aws:s3:::{destination}/*"),
        "SrcGetTaggingNotPermitted" => {
            format!("allow {role} s3:GetObjectVersionTagging on the source objects, so tag changes can replicate")
        }
        "DstPutTaggingNotPermitted" => format!("allow {role} s3:ReplicateTags on arn:aws:s3:::{destination}/*"),
        "DstVersionNotFound" => format!(
            "{destination} does not hold this version (its replication failed, or it was deleted there); retry it \
             once the version is there"
        ),
        "DstKmsKeyNotFound" => "ReplicaKmsKeyID must name a key that exists in the destination's region".to_owned(),
        "DstKmsKeyInvalidState" => {
            "enable the destination key named by ReplicaKmsKeyID (or cancel its deletion)".to_owned()
        }
        "DstBucketNotFound" => format!("create the destination bucket {destination}"),
        "DstBucketUnversioned" => format!("enable versioning on the destination bucket {destination}"),
        _ => "see the reason; then run `tern replication retry`".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_errors_become_aws_failure_reasons() {
        let body = |code: &str| format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
        let reason = |t: Trouble| match t {
            Trouble::Permanent(r) => r,
            Trouble::Transient(r) => format!("transient: {r}"),
        };
        let put =
            |status: u16, code: &str| reason(destination_failure(status, &body(code), "DstPutObjectNotPermitted"));
        assert_eq!(put(403, "AccessDenied"), "DstPutObjectNotPermitted");
        assert_eq!(reason(destination_failure(403, "", "DstPutTaggingNotPermitted")), "DstPutTaggingNotPermitted");
        assert_eq!(put(404, "NoSuchVersion"), "DstVersionNotFound");
        assert_eq!(put(400, "KMS.NotFoundException"), "DstKmsKeyNotFound");
        assert_eq!(put(400, "KMS.KMSInvalidStateException"), "DstKmsKeyInvalidState");
        assert_eq!(put(400, "DstBucketUnversioned"), "DstBucketUnversioned");
        assert_eq!(put(400, "InvalidRequest"), "DstPutObjectNotPermitted (InvalidRequest)");
        assert!(put(503, "SlowDown").starts_with("transient"));
        assert_eq!(reason(source_failure(400, &body("KMS.DisabledException"))), "SrcKmsKeyInvalidState");
        assert_eq!(reason(source_failure(403, &body("AccessDenied"))), "SrcGetObjectNotPermitted");
        assert!(reason(source_failure(500, "")).starts_with("transient"));
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        assert_eq!((backoff(0), backoff(1), backoff(3)), (500, 1000, 4000));
        assert_eq!(backoff(30), 60_000);
    }
}
