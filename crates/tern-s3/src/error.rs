//! The one place domain errors become S3 wire errors.

use http::{HeaderMap, HeaderValue, StatusCode};
use s3s::{S3Error, S3ErrorCode, s3_error};
use tern_store::StoreError;

use crate::registry::RegistryError;

pub(crate) fn store_error(e: StoreError) -> S3Error {
    match e {
        StoreError::NoSuchBucket => s3_error!(NoSuchBucket, "The specified bucket does not exist"),
        StoreError::BucketExists => s3_error!(BucketAlreadyOwnedByYou),
        StoreError::BucketNotEmpty => s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty"),
        StoreError::NoSuchVersion => {
            s3_error!(NoSuchVersion, "The specified version does not exist.")
        }
        StoreError::NoSuchUpload => s3_error!(
            NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        ),
        StoreError::NoSuchKey => s3_error!(NoSuchKey, "The specified key does not exist."),
        StoreError::PreconditionFailed => {
            s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
        }
        StoreError::PartChanged => s3_error!(
            InvalidPart,
            "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
        ),
        StoreError::Body(e) => body_error(&e),
        e if e.is_refused_value() => s3_error!(InvalidArgument, "The request carries a value that cannot be stored."),
        e if e.is_unavailable() => {
            tracing::warn!(error = %e, "the metadata store is unavailable");
            with_headers(
                with_status(
                    S3Error::with_message(S3ErrorCode::ServiceUnavailable, "Please reduce your request rate."),
                    StatusCode::SERVICE_UNAVAILABLE,
                ),
                &[("retry-after", "1")],
            )
        }
        other => internal(other),
    }
}

/// Maps a failure of the request body stream. s3s's stream error types are
/// private, so their display text is the only way to tell them apart.
pub(crate) fn body_error(e: &std::io::Error) -> S3Error {
    let text = e.to_string();
    if text.contains("Sha256Mismatch") {
        with_status(
            S3Error::with_message(
                S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ),
            StatusCode::BAD_REQUEST,
        )
    } else if text.contains("aws-chunked") {
        // Raised by the outer layer's framing guard; the text names the violation.
        s3_error!(InvalidRequest, "{text}")
    } else if text.contains("SignatureMismatch") {
        s3_error!(SignatureDoesNotMatch, "The chunk signature we calculated does not match the signature you provided.")
    } else if text.contains(REQUEST_TIMEOUT_TEXT) {
        s3_error!(
            RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period. Idle \
             connections will be closed."
        )
    } else {
        incomplete_body()
    }
}

/// How the outer layer words a body that stopped arriving (it names no type
/// this crate could match on, as s3s's own stream errors do not either).
pub const REQUEST_TIMEOUT_TEXT: &str = "request body stalled";

/// The body ended before (or ran past) the length the client declared.
pub(crate) fn incomplete_body() -> S3Error {
    s3_error!(IncompleteBody, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
}

/// A refusal by policy, as S3 words it.
#[must_use]
pub fn access_denied(denial: &tern_iam::policy::Denial) -> S3Error {
    s3_error!(AccessDenied, "{denial}")
}

pub(crate) fn registry_error(e: &RegistryError) -> S3Error {
    tracing::error!(error = %e, "bucket registry unavailable");
    s3_error!(ServiceUnavailable, "The bucket registry is unavailable; please retry.")
}

/// S3's answer to a document that does not parse or fits no schema.
pub(crate) fn malformed_xml() -> S3Error {
    s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema")
}

/// A failure that is not the client's: logged, and kept as the error's
/// source; the client is told only that it happened.
pub(crate) fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> S3Error {
    let cause = cause.into();
    tracing::error!(error = %cause, "internal error");
    let mut err = s3_error!(InternalError, "We encountered an internal error. Please try again.");
    err.set_source(cause);
    err
}

pub(crate) fn with_status(mut err: S3Error, status: StatusCode) -> S3Error {
    err.set_status_code(status);
    err
}

pub(crate) fn with_headers(mut err: S3Error, headers: &[(&'static str, &str)]) -> S3Error {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            map.insert(*name, v);
        }
    }
    err.set_headers(map);
    err
}

/// AWS's answer for a bucket that lives in another region of the deployment.
pub(crate) fn wrong_region(bucket: &str, region: &str) -> S3Error {
    let err = S3Error::with_message(
        S3ErrorCode::PermanentRedirect,
        format!(
            "The bucket '{bucket}' is in region '{region}'. Please send all future requests to that region's endpoint."
        ),
    );
    with_headers(with_status(err, StatusCode::MOVED_PERMANENTLY), &[("x-amz-bucket-region", region)])
}
