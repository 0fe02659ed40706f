//! How a replication went wrong: S3 answers mapped to AWS's failure
//! reasons (`tern_replication_model::FailureReason`), and the backoff of
//! transient trouble.

use tern_replication_model::{Failure, FailureReason};

/// How a transfer went wrong.
#[derive(Debug)]
pub(crate) enum Trouble {
    /// Never retried by itself: the task becomes FAILED with this reason.
    Permanent(Failure),
    /// Retried with backoff; the task stays PENDING.
    Transient(String),
}

pub(crate) fn permanent(reason: FailureReason) -> Trouble {
    Trouble::Permanent(reason.into())
}

/// A permanent failure for an S3 error `code` that has no reason of its own.
fn refused(reason: FailureReason, code: &str) -> Trouble {
    Trouble::Permanent(Failure { reason, detail: Some(code.to_owned()) })
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
    use FailureReason::{SrcBucketNotFound, SrcGetObjectNotPermitted, SrcKmsKeyInvalidState, SrcVersionNotFound};
    match (status, error_code(body)) {
        (403, _) => permanent(SrcGetObjectNotPermitted),
        (404, Some("NoSuchBucket")) => permanent(SrcBucketNotFound),
        (404, _) => permanent(SrcVersionNotFound),
        (_, Some("KMS.DisabledException" | "KMS.KMSInvalidStateException" | "KMS.NotFoundException")) => {
            permanent(SrcKmsKeyInvalidState)
        }
        (400..=499, Some(code)) => refused(SrcGetObjectNotPermitted, code),
        _ => Trouble::Transient(format!("source answered {status}")),
    }
}

/// The failure reason of the destination's answer to a delivery; `denied`
/// is the reason when the destination refuses it.
pub(crate) fn destination_failure(status: u16, body: &str, denied: FailureReason) -> Trouble {
    use FailureReason::{
        DstBucketNotFound, DstBucketUnversioned, DstKmsKeyInvalidState, DstKmsKeyNotFound, DstVersionNotFound,
    };
    match (status, error_code(body)) {
        (403, _) => permanent(denied),
        (404, Some("NoSuchVersion")) => permanent(DstVersionNotFound),
        (_, Some("KMS.NotFoundException" | "KMS.InvalidArnException")) => permanent(DstKmsKeyNotFound),
        (_, Some("KMS.DisabledException" | "KMS.KMSInvalidStateException")) => permanent(DstKmsKeyInvalidState),
        (_, Some("NoSuchBucket" | "PermanentRedirect")) | (301, _) => permanent(DstBucketNotFound),
        // The destination names this reason itself.
        (_, Some(code)) if code == DstBucketUnversioned.as_str() => permanent(DstBucketUnversioned),
        (400..=499, Some(code)) => refused(denied, code),
        _ => Trouble::Transient(format!("destination answered {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_errors_become_aws_failure_reasons() {
        let body = |code: &str| format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
        let reason = |t: Trouble| match t {
            Trouble::Permanent(failure) => failure.to_string(),
            Trouble::Transient(r) => format!("transient: {r}"),
        };
        let put = |status: u16, code: &str| {
            reason(destination_failure(status, &body(code), FailureReason::DstPutObjectNotPermitted))
        };
        assert_eq!(put(403, "AccessDenied"), "DstPutObjectNotPermitted");
        assert_eq!(
            reason(destination_failure(403, "", FailureReason::DstPutTaggingNotPermitted)),
            "DstPutTaggingNotPermitted"
        );
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
