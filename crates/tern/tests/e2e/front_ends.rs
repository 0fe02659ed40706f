//! A region served by several front-ends over one PostgreSQL database and
//! one blob directory: whatever is written through one is there, at once,
//! through the other: objects, versions, multipart parts, buckets, keys,
//! IAM users and policies, bucket policies.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, CompletedMultipartUpload, CompletedPart};
use tern_testkit::Deployment;

use crate::{EAST, WEST, body_of, bucket, code, pattern};

/// us-east-1 on two front-ends (`EAST` and `A2`), eu-west-1 on one, or
/// `None` without PostgreSQL.
async fn shared() -> Option<Deployment> {
    let layout = [(EAST, 2), (WEST, 1)];
    Deployment::start_shared(env!("CARGO_BIN_EXE_tern").as_ref(), &layout).await.expect("tern starts")
}

/// us-east-1's second front-end.
const A2: &str = "us-east-1#2";

#[tokio::test]
async fn objects_versions_and_uploads_written_through_one_front_end_are_read_through_the_other() {
    let Some(tern) = shared().await else { return };
    let (one, two) = (tern.s3(EAST), tern.s3(A2));
    bucket(&one, "shared").await;
    let big = pattern(3 << 20, 7);
    one.put_object().bucket("shared").key("big").body(ByteStream::from(big.clone())).send().await.unwrap();
    assert_eq!(body_of(&two, "shared", "big").await, big, "byte-exact through the other front-end");
    let listed = two.list_objects_v2().bucket("shared").send().await.unwrap();
    assert_eq!(listed.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["big"]);

    let on = aws_sdk_s3::types::VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    two.put_bucket_versioning().bucket("shared").versioning_configuration(on).send().await.unwrap();
    let first = one.put_object().bucket("shared").key("v").body(ByteStream::from_static(b"1")).send().await.unwrap();
    two.put_object().bucket("shared").key("v").body(ByteStream::from_static(b"2")).send().await.unwrap();
    assert_eq!(body_of(&one, "shared", "v").await, b"2", "the newest, whichever front-end wrote it");
    let versions = one.list_object_versions().bucket("shared").prefix("v").send().await.unwrap();
    assert_eq!(versions.versions().len(), 2);
    let old = two.get_object().bucket("shared").key("v").version_id(first.version_id().unwrap()).send().await;
    assert_eq!(old.unwrap().body.collect().await.unwrap().into_bytes().as_ref(), b"1");

    // A multipart upload whose parts go through different front-ends.
    let upload = one.create_multipart_upload().bucket("shared").key("mp").send().await.unwrap();
    let id = upload.upload_id().unwrap();
    let parts = [pattern(5 << 20, 1), pattern(1 << 20, 2)];
    let mut completed = Vec::new();
    for (n, (part, s3)) in parts.iter().zip([&two, &one]).enumerate() {
        let number = i32::try_from(n + 1).unwrap();
        let body = ByteStream::from(part.clone());
        let put = s3.upload_part().bucket("shared").key("mp").upload_id(id).part_number(number).body(body);
        let etag = put.send().await.unwrap().e_tag().unwrap().to_owned();
        completed.push(CompletedPart::builder().part_number(number).e_tag(etag).build());
    }
    let listed = one.list_parts().bucket("shared").key("mp").upload_id(id).send().await.unwrap();
    assert_eq!(listed.parts().len(), 2, "parts recorded through either front-end");
    let all = CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
    two.complete_multipart_upload()
        .bucket("shared")
        .key("mp")
        .upload_id(id)
        .multipart_upload(all)
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(&one, "shared", "mp").await, parts.concat());

    let gone = two.delete_bucket().bucket("shared").send().await.unwrap_err();
    assert_eq!(code(&gone), "BucketNotEmpty", "what one front-end wrote keeps the other from deleting");
}

#[tokio::test]
async fn keys_users_and_policies_made_through_one_front_end_hold_at_once_on_the_other() {
    let Some(tern) = shared().await else { return };
    // A key made through the second front-end protects an object written
    // through the first, at once.
    let key = tern.kms(A2).create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let one = tern.s3(EAST);
    bucket(&one, "sealed").await;
    let put = one.put_object().bucket("sealed").key("k").body(ByteStream::from_static(b"secret"));
    let put = put.server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms).ssekms_key_id(&key_id);
    put.send().await.expect("a key made a moment ago on the other front-end");
    assert_eq!(body_of(&tern.s3(A2), "sealed", "k").await, b"secret");

    // Disabled through one, refused through the other on the next call.
    tern.kms(EAST).disable_key().key_id(&key_id).send().await.unwrap();
    let plaintext = aws_sdk_kms::primitives::Blob::new(b"x".to_vec());
    let refused = tern.kms(A2).encrypt().key_id(&key_id).plaintext(plaintext).send().await.unwrap_err();
    assert_eq!(refused.as_service_error().and_then(|e| e.meta().code()), Some("DisabledException"));

    // A user made and granted through one front-end works through the other.
    let alice = tern
        .user("alice", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .await
        .unwrap();
    let as_alice = tern.s3_as(&alice, A2);
    as_alice.get_object().bucket("sealed").key("k").send().await.expect_err("no kms:Decrypt for alice");
    one.put_object().bucket("sealed").key("plain").body(ByteStream::from_static(b"p")).send().await.unwrap();
    assert_eq!(body_of(&as_alice, "sealed", "plain").await, b"p");

    // A bucket policy put through one front-end denies through the other at once…
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::sealed/*"}]}"#;
    one.put_bucket_policy().bucket("sealed").policy(deny).send().await.unwrap();
    let denied = as_alice.get_object().bucket("sealed").key("plain").send().await.unwrap_err();
    assert_eq!(code(&denied), "AccessDenied");
    // …and its removal through the other holds on the first.
    tern.s3(A2).delete_bucket_policy().bucket("sealed").send().await.unwrap();
    assert_eq!(body_of(&tern.s3_as(&alice, EAST), "sealed", "plain").await, b"p");
}
