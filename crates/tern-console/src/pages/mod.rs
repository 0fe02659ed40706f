//! One module per page. Each asks the deployment as the signed-in user
//! and shows what it answered: the data, or the refusal in its place.

pub mod buckets;
pub mod keys;
pub mod login;
pub mod objects;
pub mod overview;
pub mod replication;

use aws_sdk_s3::error::ProvideErrorMetadata;
use http::StatusCode;

use crate::clients::RegionClients;
use crate::html::Refusal;
use crate::session::Session;

/// An AWS error as a person reads it: its code and message.
pub fn sdk_error<E: ProvideErrorMetadata + std::error::Error>(e: &E) -> String {
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
    }
}

/// The region holding `bucket`, and its clients, as `ListBuckets` tells.
async fn bucket_home<'s>(session: &'s Session, bucket: &str) -> Result<&'s RegionClients, Refusal> {
    let here = session.clients.here();
    let listed = here.s3.list_buckets().prefix(bucket).send().await;
    let listed = listed.map_err(|e| Refusal::new(StatusCode::BAD_GATEWAY, sdk_error(&e)))?;
    let region = listed
        .buckets()
        .iter()
        .find(|b| b.name() == Some(bucket))
        .map(|b| b.bucket_region().unwrap_or(&here.name).to_owned())
        .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("There is no bucket {bucket} you may list.")))?;
    session
        .clients
        .region(&region)
        .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("{bucket} is in {region}, not in this deployment.")))
}

/// The bucket a request names, and its region's clients.
pub async fn bucket_of<'r, 's>(
    session: &'s Session,
    req: &'r crate::request::ConsoleRequest,
) -> Result<(&'r str, &'s RegionClients), Refusal> {
    let bucket = req.required("bucket")?;
    Ok((bucket, bucket_home(session, bucket).await?))
}

/// The bucket and key a request names, and the bucket's region's clients.
pub async fn object_of<'r, 's>(
    session: &'s Session,
    req: &'r crate::request::ConsoleRequest,
) -> Result<(&'r str, &'r str, &'s RegionClients), Refusal> {
    let key = req.required("key")?;
    let (bucket, home) = bucket_of(session, req).await?;
    Ok((bucket, key, home))
}

/// How an object's bytes are protected, from its HEAD: a client-side
/// envelope in its metadata (inside whatever S3 added), SSE-KMS with its
/// key, SSE-S3, or SSE-C.
pub fn encryption_of(head: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> String {
    let sse = match head.server_side_encryption().map(aws_sdk_s3::types::ServerSideEncryption::as_str) {
        Some("aws:kms") => format!("SSE-KMS {}", head.ssekms_key_id().unwrap_or_default()),
        Some("AES256") => "SSE-S3".to_owned(),
        Some(other) => other.to_owned(),
        None if head.sse_customer_algorithm().is_some() => "SSE-C".to_owned(),
        None => "none".to_owned(),
    };
    let metadata = head.metadata();
    let has = |name: &str| metadata.is_some_and(|m| m.contains_key(name));
    if has("x-amz-c") || has("x-amz-3") {
        format!("client-side (S3EC V3), in {sse}")
    } else if has("x-amz-cek-alg") || has("x-amz-key-v2") {
        format!("client-side (S3EC V2), in {sse}")
    } else if has("x-amz-key") {
        format!("client-side (S3EC V1), in {sse}")
    } else {
        sse
    }
}
