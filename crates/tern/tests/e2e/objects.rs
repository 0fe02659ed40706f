use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{Delete, MetadataDirective, ObjectIdentifier, Tag, Tagging};

use crate::{EAST, body_of, bucket, code, one_region, pattern, status};

#[tokio::test]
async fn objects_round_trip_with_their_headers() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "objects").await;
    let envelope = r#"{"purpose": "demo", "aws:x-amz-cek-alg": "115"}"#;
    let put = s3
        .put_object()
        .bucket("objects")
        .key("dir/ünïcødé 🎉.bin")
        .body(ByteStream::from(pattern(200_000, 1)))
        .content_type("application/x-test")
        .content_disposition("attachment")
        .cache_control("max-age=60")
        .metadata("x-amz-t", envelope)
        .metadata("plain", "value")
        .metadata("encoded", "=?UTF-8?B?Y2Fmw6k=?=")
        .tagging("team=storage&tier=1")
        .send()
        .await
        .unwrap();
    assert!(put.e_tag().unwrap().starts_with('"'));

    let got = s3.get_object().bucket("objects").key("dir/ünïcødé 🎉.bin").send().await.unwrap();
    assert_eq!(got.content_length(), Some(200_000));
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(got.content_disposition(), Some("attachment"));
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(got.metadata().unwrap().get("x-amz-t").map(String::as_str), Some(envelope), "metadata is byte-exact");
    // Non-ASCII values travel RFC 2047-encoded, as AWS sends them.
    assert_eq!(got.metadata().unwrap().get("encoded").map(String::as_str), Some("=?UTF-8?B?Y2Fmw6k=?="));
    assert_eq!(got.tag_count(), Some(2));
    assert_eq!(got.e_tag(), put.e_tag());
    assert_eq!(got.body.collect().await.unwrap().into_bytes().to_vec(), pattern(200_000, 1));

    // Keys are never paths: `../` is just text and stays inside the bucket.
    s3.put_object().bucket("objects").key("../../etc/passwd").body(ByteStream::from_static(b"x")).send().await.unwrap();
    assert_eq!(body_of(&s3, "objects", "../../etc/passwd").await, b"x");

    let tags = s3.get_object_tagging().bucket("objects").key("dir/ünïcødé 🎉.bin").send().await.unwrap();
    assert_eq!(tags.tag_set().len(), 2);
    let replaced =
        Tagging::builder().tag_set(Tag::builder().key("only").value("one").build().unwrap()).build().unwrap();
    s3.put_object_tagging().bucket("objects").key("dir/ünïcødé 🎉.bin").tagging(replaced).send().await.unwrap();
    let tags = s3.get_object_tagging().bucket("objects").key("dir/ünïcødé 🎉.bin").send().await.unwrap();
    assert_eq!(tags.tag_set()[0].key(), "only");
}

#[tokio::test]
async fn ranges_and_conditions() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "ranges").await;
    let data = pattern(3 << 20, 7);
    let put = s3.put_object().bucket("ranges").key("big").body(ByteStream::from(data.clone())).send().await.unwrap();
    let etag = put.e_tag().unwrap().to_owned();

    let part = s3.get_object().bucket("ranges").key("big").range("bytes=1048570-2097160").send().await.unwrap();
    assert_eq!(part.content_range(), Some("bytes 1048570-2097160/3145728"));
    assert_eq!(part.body.collect().await.unwrap().into_bytes().to_vec(), &data[1_048_570..=2_097_160]);
    let tail = s3.get_object().bucket("ranges").key("big").range("bytes=-10").send().await.unwrap();
    assert_eq!(tail.body.collect().await.unwrap().into_bytes().to_vec(), &data[data.len() - 10..]);
    let whole = s3.get_object().bucket("ranges").key("big").send().await.unwrap();
    assert_eq!(whole.content_range(), None, "no 206 without a Range header");

    let bad = s3.get_object().bucket("ranges").key("big").range("bytes=5000000-5000001").send().await.unwrap_err();
    assert_eq!((code(&bad), status(&bad)), ("InvalidRange".into(), 416));

    let unchanged = s3.get_object().bucket("ranges").key("big").if_none_match(&etag).send().await.unwrap_err();
    assert_eq!(status(&unchanged), 304);
    let moved = s3.get_object().bucket("ranges").key("big").if_match("\"0123\"").send().await.unwrap_err();
    assert_eq!(status(&moved), 412);
    let since = DateTime::from_secs(put_time_secs(&s3).await + 3600);
    let fresh = s3.head_object().bucket("ranges").key("big").if_modified_since(since).send().await.unwrap_err();
    assert_eq!(status(&fresh), 304);
    s3.head_object().bucket("ranges").key("big").if_match(&etag).send().await.unwrap();

    // Conditional writes are atomic with the write.
    let exists = s3
        .put_object()
        .bucket("ranges")
        .key("big")
        .if_none_match("*")
        .body(ByteStream::from_static(b"no"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&exists), 412);
}

async fn put_time_secs(s3: &aws_sdk_s3::Client) -> i64 {
    let head = s3.head_object().bucket("ranges").key("big").send().await.unwrap();
    head.last_modified().unwrap().secs()
}

#[tokio::test]
async fn copy_delete_and_batch_delete() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "copies").await;
    s3.put_object()
        .bucket("copies")
        .key("src")
        .body(ByteStream::from(pattern(100_000, 3)))
        .metadata("a", "1")
        .send()
        .await
        .unwrap();

    s3.copy_object().bucket("copies").key("same-meta").copy_source("copies/src").send().await.unwrap();
    let head = s3.head_object().bucket("copies").key("same-meta").send().await.unwrap();
    assert_eq!(head.metadata().unwrap().get("a").map(String::as_str), Some("1"));
    s3.copy_object()
        .bucket("copies")
        .key("new-meta")
        .copy_source("copies/src")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("b", "2")
        .send()
        .await
        .unwrap();
    let head = s3.head_object().bucket("copies").key("new-meta").send().await.unwrap();
    assert!(head.metadata().unwrap().get("a").is_none());
    assert_eq!(body_of(&s3, "copies", "new-meta").await, pattern(100_000, 3));
    let onto_itself = s3.copy_object().bucket("copies").key("src").copy_source("copies/src").send().await.unwrap_err();
    assert_eq!(code(&onto_itself), "InvalidRequest");

    s3.delete_object().bucket("copies").key("src").send().await.unwrap();
    let gone = s3.get_object().bucket("copies").key("src").send().await.unwrap_err();
    assert_eq!(code(&gone), "NoSuchKey");
    s3.delete_object().bucket("copies").key("never-existed").send().await.unwrap();

    let ids = ["same-meta", "new-meta", "missing"].map(|k| ObjectIdentifier::builder().key(k).build().unwrap());
    let deleted = s3
        .delete_objects()
        .bucket("copies")
        .delete(Delete::builder().set_objects(Some(ids.to_vec())).build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.deleted().len(), 3);
    assert!(deleted.errors().is_empty());
    assert!(s3.list_objects_v2().bucket("copies").send().await.unwrap().contents().is_empty());
}

#[tokio::test]
async fn bad_input_gets_aws_errors_and_changes_nothing() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "strict").await;

    let big_meta = s3
        .put_object()
        .bucket("strict")
        .key("m")
        .metadata("k", "v".repeat(2100))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&big_meta), "MetadataTooLarge");
    let md5 = s3
        .put_object()
        .bucket("strict")
        .key("md5")
        .content_md5("1B2M2Y8AsgTpgAmY7PhCfg==")
        .body(ByteStream::from_static(b"not empty"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&md5), "BadDigest");
    let crc = s3
        .put_object()
        .bucket("strict")
        .key("crc")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from(pattern(300_000, 1)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&crc), "BadDigest");
    let tags = s3
        .put_object()
        .bucket("strict")
        .key("t")
        .tagging("a=1&a=2")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&tags), "InvalidTag");
    let nul =
        s3.put_object().bucket("strict").key("a\u{1}b").body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    assert_eq!(status(&nul), 400);
    let no_bucket =
        s3.put_object().bucket("absent").key("k").body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    assert_eq!(code(&no_bucket), "NoSuchBucket");
    let version = s3.get_object().bucket("strict").key("k").version_id("nope").send().await.unwrap_err();
    assert_eq!(code(&version), "NoSuchVersion");

    let listed = s3.list_objects_v2().bucket("strict").send().await.unwrap();
    assert!(listed.contents().is_empty(), "refused writes leave nothing");
    let blobs = crate::files_under(&tern.data_dir().join(crate::EAST).join("blobs"));
    assert!(blobs.is_empty(), "no blob left behind: {blobs:?}");
}

/// `CopyObject` and `UploadPartCopy` from a bucket of the other region: the
/// source region authorizes the caller with its own bucket policy, checks
/// the conditions and decrypts with its own KMS key; the copy is sealed
/// here under this region's encryption.
#[tokio::test]
async fn copies_from_a_bucket_of_another_region() {
    use aws_sdk_s3::types::{CompletedPart, ServerSideEncryption};
    let tern = crate::two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(crate::WEST));
    crate::replication::versioned(&west, "far", crate::WEST).await;
    bucket(&east, "near").await;
    let west_key = tern.kms(crate::WEST).create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let data = crate::pattern(6 << 20, 5);
    let put = west
        .put_object()
        .bucket("far")
        .key("src")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&west_key)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let copied = east.copy_object().bucket("near").key("copy").copy_source("far/src").send().await.unwrap();
    assert_eq!(copied.copy_source_version_id(), put.version_id());
    assert_eq!(copied.server_side_encryption(), Some(&ServerSideEncryption::Aes256), "sealed as this region's own");
    assert_eq!(body_of(&east, "near", "copy").await, data);
    let stale =
        east.copy_object().bucket("near").key("c2").copy_source("far/src").copy_source_if_match("\"00\"").send();
    assert_eq!(code(&stale.await.unwrap_err()), "PreconditionFailed");
    let missing = east.copy_object().bucket("near").key("c3").copy_source("far/absent").send().await.unwrap_err();
    assert_eq!(code(&missing), "NoSuchKey");

    let upload = east.create_multipart_upload().bucket("near").key("parts").send().await.unwrap();
    let id = upload.upload_id().unwrap();
    let mut parts = Vec::new();
    for (number, range) in [(1, "bytes=0-5242879"), (2, "bytes=5242880-6291455")] {
        let part = east
            .upload_part_copy()
            .bucket("near")
            .key("parts")
            .upload_id(id)
            .part_number(number)
            .copy_source(format!("far/src?versionId={}", put.version_id().unwrap()))
            .copy_source_range(range)
            .send()
            .await
            .unwrap();
        let etag = part.copy_part_result().unwrap().e_tag().unwrap().to_owned();
        parts.push(CompletedPart::builder().part_number(number).e_tag(etag).build());
    }
    crate::complete(&east, ("near", "parts"), id, parts).await;
    assert_eq!(body_of(&east, "near", "parts").await, data);

    // Who may read the source is the source region's to say.
    let user = tern
        .user("copier", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"},{"Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"*"}]}"#)
        .await
        .unwrap();
    let as_user = tern.s3_as(&user, EAST);
    as_user.copy_object().bucket("near").key("by-user").copy_source("far/src").send().await.unwrap();
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/copier"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::far/*"}]}"#;
    west.put_bucket_policy().bucket("far").policy(deny).send().await.unwrap();
    let denied = as_user.copy_object().bucket("near").key("by-user-2").copy_source("far/src").send().await.unwrap_err();
    assert_eq!((code(&denied), status(&denied)), ("AccessDenied".into(), 403));
    assert!(east.head_object().bucket("near").key("by-user-2").send().await.is_err(), "nothing written");
    // A caller the source bucket's policy alone lets read copies too.
    let writer = tern
        .user("writer", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::near/*"},{"Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"*"}]}"#)
        .await
        .unwrap();
    let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/writer"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::far/*"}]}"#;
    west.put_bucket_policy().bucket("far").policy(allow).send().await.unwrap();
    let as_writer = tern.s3_as(&writer, EAST);
    as_writer.copy_object().bucket("near").key("by-policy").copy_source("far/src").send().await.unwrap();
    assert_eq!(body_of(&east, "near", "by-policy").await, data);

    // An SSE-C source's key would have to cross regions: refused.
    let customer = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let digest = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        <md5::Md5 as md5::Digest>::digest([7u8; 32]),
    );
    west.put_object()
        .bucket("far")
        .key("sse-c")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&customer)
        .sse_customer_key_md5(&digest)
        .body(ByteStream::from_static(b"secret"))
        .send()
        .await
        .unwrap();
    let refused = east
        .copy_object()
        .bucket("near")
        .key("c4")
        .copy_source("far/sse-c")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&customer)
        .copy_source_sse_customer_key_md5(&digest)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&refused), "InvalidRequest");
}
