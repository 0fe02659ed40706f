//! One round of PUTs then GETs of a workload into a fresh bucket, with the
//! request headers an encryption mode needs.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use bytes::Bytes;

use crate::measure::{Measure, Workload, measure};

/// How objects of a round are encrypted, as the client asks for it.
#[derive(Clone)]
pub enum Encryption {
    /// No SSE headers (the server's default: SSE-S3 for Tern).
    Default,
    /// `aws:kms` with this key on every PUT.
    Kms(String),
    /// SSE-C with a fixed 256-bit key on every PUT and GET.
    Customer,
}

const CUSTOMER_KEY: [u8; 32] = [0x5a; 32];

fn customer_headers() -> (String, String) {
    use base64::Engine as _;
    use md5::Digest as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    (b64.encode(CUSTOMER_KEY), b64.encode(md5::Md5::digest(CUSTOMER_KEY)))
}

async fn put(s3: &Client, bucket: &str, key: &str, body: Bytes, encryption: &Encryption) -> anyhow::Result<()> {
    let mut request = s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body));
    match encryption {
        Encryption::Default => {}
        Encryption::Kms(id) => request = request.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(id),
        Encryption::Customer => {
            let (key, md5) = customer_headers();
            request = request.sse_customer_algorithm("AES256").sse_customer_key(key).sse_customer_key_md5(md5);
        }
    }
    request.send().await?;
    Ok(())
}

async fn get(s3: &Client, bucket: &str, key: &str, size: usize, encryption: &Encryption) -> anyhow::Result<()> {
    let mut request = s3.get_object().bucket(bucket).key(key);
    if let Encryption::Customer = encryption {
        let (key, md5) = customer_headers();
        request = request.sse_customer_algorithm("AES256").sse_customer_key(key).sse_customer_key_md5(md5);
    }
    let mut body = request.send().await?.body;
    let mut n = 0;
    while let Some(chunk) = body.next().await {
        n += chunk?.len();
    }
    anyhow::ensure!(n == size, "short read: {n}");
    Ok(())
}

/// PUTs `requests` objects of `w` into `bucket` (which must exist), then GETs them.
pub async fn put_get(
    s3: &Client,
    bucket: &str,
    w: &Workload,
    requests: usize,
    encryption: &Encryption,
) -> anyhow::Result<(Measure, Measure)> {
    let put = put_all(s3, bucket, w, requests, encryption).await?;
    let get = get_all(s3, bucket, w, requests, encryption).await?;
    Ok((put, get))
}

/// PUTs `requests` objects of `w` into `bucket`.
pub async fn put_all(
    s3: &Client,
    bucket: &str,
    w: &Workload,
    requests: usize,
    encryption: &Encryption,
) -> anyhow::Result<Measure> {
    let body = w.body();
    measure(requests, w.concurrency, w.size, |i| {
        let body = body.clone();
        async move { put(s3, bucket, &format!("o{i}"), body, encryption).await }
    })
    .await
}

/// GETs what [`put_all`] wrote.
pub async fn get_all(
    s3: &Client,
    bucket: &str,
    w: &Workload,
    requests: usize,
    encryption: &Encryption,
) -> anyhow::Result<Measure> {
    measure(
        requests,
        w.concurrency,
        w.size,
        |i| async move { get(s3, bucket, &format!("o{i}"), w.size, encryption).await },
    )
    .await
}
