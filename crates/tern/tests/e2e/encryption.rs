//! SSE-S3 at rest: no plaintext on disk, tampering detected, AWS headers.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use crate::{EAST, body_of, bucket, code, one_region, status};

/// A recognisable plaintext of `len` bytes.
fn marked(len: usize) -> Vec<u8> {
    b"TERN-PLAINTEXT-MARKER-".iter().copied().cycle().take(len).collect()
}

#[tokio::test]
async fn no_plaintext_rests_on_disk() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "secret").await;
    for (key, len) in [("small", 1_000), ("large", 700_000)] {
        let put = s3.put_object().bucket("secret").key(key).body(ByteStream::from(marked(len))).send().await.unwrap();
        assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
        let head = s3.head_object().bucket("secret").key(key).send().await.unwrap();
        assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
        assert_eq!(body_of(&s3, "secret", key).await, marked(len));
    }
    let needle = b"TERN-PLAINTEXT-MARKER-";
    for file in crate::files_under(&tern.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "plaintext found in {}", file.display());
    }
}

#[tokio::test]
async fn tampered_bytes_fail_the_read() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "tamper").await;
    s3.put_object().bucket("tamper").key("k").body(ByteStream::from(marked(300_000))).send().await.unwrap();
    let blob = crate::files_under(&tern.data_dir().join(EAST).join("blobs").join("blobs")).pop().expect("one blob");
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[150_000] ^= 0x01;
    std::fs::write(&blob, bytes).unwrap();

    let read = async {
        let out = s3.get_object().bucket("tamper").key("k").send().await.map_err(|e| format!("{e:?}"))?;
        out.body.collect().await.map(|b| b.into_bytes().to_vec()).map_err(|e| format!("{e:?}"))
    };
    match read.await {
        Ok(bytes) => panic!("a tampered object was served ({} bytes)", bytes.len()),
        Err(e) => assert!(!e.is_empty()),
    }
}

#[tokio::test]
async fn kms_and_customer_keys_are_refused_clearly_until_kms_exists() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "sse").await;
    let kms = s3
        .put_object()
        .bucket("sse")
        .key("k")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!((code(&kms), status(&kms)), ("NotImplemented".into(), 501));
    let listed = s3.list_objects_v2().bucket("sse").send().await.unwrap();
    assert!(listed.contents().is_empty());
}
