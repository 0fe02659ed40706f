//! End-to-end tests: real `tern` processes driven by aws-sdk-s3.

mod attacks;
mod audit;
mod blobs_s3;
mod bucket_policy;
mod buckets;
mod cse;
mod demo;
mod doctor;
mod durability;
mod encryption;
mod front_ends;
mod kms;
mod lifecycle;
mod migrate;
mod multipart;
mod objects;
mod replication;
mod replication_tags;
mod requests;
mod tls;
mod versioning;

use aws_sdk_s3::Client;
use tern_testkit::Deployment;

pub const EAST: &str = "us-east-1";
pub const WEST: &str = "eu-west-1";

/// A two-region deployment of the `tern` binary under test.
pub async fn two_regions() -> Deployment {
    Deployment::start(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST, WEST]).await.expect("tern starts")
}

pub async fn one_region() -> Deployment {
    Deployment::start(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST]).await.expect("tern starts")
}

/// The AWS error code of a failed SDK call.
pub fn code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    err.as_service_error().and_then(|e| e.code()).map_or_else(|| format!("{err:?}"), str::to_owned)
}

/// The AWS error message of a failed SDK call.
pub fn message<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.message()).unwrap_or_default().to_owned()
}

/// The HTTP status of a failed SDK call.
pub fn status<E>(err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> u16 {
    err.raw_response().map(|r| r.status().as_u16()).unwrap_or_default()
}

pub async fn bucket(s3: &Client, name: &str) {
    s3.create_bucket().bucket(name).send().await.expect("bucket created");
}

/// Completes upload `id` of `bucket/key` with `parts`.
pub async fn complete(
    s3: &Client,
    (bucket, key): (&str, &str),
    id: &str,
    parts: Vec<aws_sdk_s3::types::CompletedPart>,
) {
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
    s3.complete_multipart_upload().bucket(bucket).key(key).upload_id(id).multipart_upload(done).send().await.unwrap();
}

/// A PUT of `body` under SSE-KMS with a key that does not exist: refused
/// with `KMS.NotFoundException` before its body is read.
pub async fn put_under_missing_key(s3: &Client, bucket: &str, body: Vec<u8>) -> String {
    let refused = s3
        .put_object()
        .bucket(bucket)
        .key("k")
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/no-such-key")
        .body(aws_sdk_s3::primitives::ByteStream::from(body))
        .send()
        .await
        .unwrap_err();
    code(&refused)
}

pub async fn body_of(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3.get_object().bucket(bucket).key(key).send().await.expect("object readable");
    out.body.collect().await.expect("body").into_bytes().to_vec()
}

#[must_use]
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| i.to_le_bytes()[0].wrapping_mul(31).wrapping_add(seed)).collect()
}

/// Every file below `dir`, recursively.
#[must_use]
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(files_under(&path)) } else { files.push(path) }
    }
    files
}
