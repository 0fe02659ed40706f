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

async fn kms_key(tern: &tern_testkit::Deployment, region: &str) -> String {
    tern.kms(region).create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap()
}

#[tokio::test]
async fn sse_kms_by_header_single_and_multipart() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    let arn = kms_key(&tern, EAST).await;
    tern.kms(EAST).create_alias().alias_name("alias/objects").target_key_id(&arn).send().await.unwrap();
    bucket(&s3, "kms").await;
    let context = base64_json(r#"{"tenant":"a"}"#);
    for (key, len) in [("small", 1_000), ("large", 700_000)] {
        let put = s3
            .put_object()
            .bucket("kms")
            .key(key)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id("alias/objects")
            .ssekms_encryption_context(&context)
            .body(ByteStream::from(marked(len)))
            .send()
            .await
            .unwrap();
        assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
        assert_eq!(put.ssekms_key_id(), Some(arn.as_str()), "the key is reported by ARN");
        let echoed = decode_json(put.ssekms_encryption_context().unwrap());
        assert_eq!(echoed["tenant"], "a");
        assert_eq!(echoed["aws:s3:arn"], format!("arn:aws:s3:::kms/{key}"));
        let head = s3.head_object().bucket("kms").key(key).send().await.unwrap();
        assert_eq!(
            (head.server_side_encryption(), head.ssekms_key_id()),
            (Some(&ServerSideEncryption::AwsKms), Some(arn.as_str()))
        );
        assert_eq!(body_of(&s3, "kms", key).await, marked(len));
        let range = s3.get_object().bucket("kms").key(key).range("bytes=100-199").send().await.unwrap();
        assert_eq!(range.body.collect().await.unwrap().into_bytes().as_ref(), &marked(len)[100..200]);
    }

    let upload = s3
        .create_multipart_upload()
        .bucket("kms")
        .key("parts")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&arn)
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let data = marked(6 * 1024 * 1024 + 10);
    let mut parts = Vec::new();
    for (n, chunk) in data.chunks(5 * 1024 * 1024).enumerate() {
        let n = i32::try_from(n + 1).unwrap();
        let part = s3.upload_part().bucket("kms").key("parts").upload_id(id).part_number(n);
        let out = part.body(ByteStream::from(chunk.to_vec())).send().await.unwrap();
        assert_eq!(out.ssekms_key_id(), Some(arn.as_str()));
        parts.push(aws_sdk_s3::types::CompletedPart::builder().part_number(n).e_tag(out.e_tag().unwrap()).build());
    }
    crate::complete(&s3, ("kms", "parts"), id, parts).await;
    assert_eq!(body_of(&s3, "kms", "parts").await, data);
    assert_no_marker(&tern);
}

fn base64_json(json: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(json)
}

fn decode_json(text: &str) -> serde_json::Value {
    use base64::Engine as _;
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(text).unwrap()).unwrap()
}

fn assert_no_marker(tern: &tern_testkit::Deployment) {
    let needle = b"TERN-PLAINTEXT-MARKER-";
    for file in crate::files_under(&tern.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "plaintext found in {}", file.display());
    }
}

#[tokio::test]
async fn bucket_default_encryption_with_bucket_keys_and_the_aws_managed_key() {
    use aws_sdk_s3::types::{
        ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    };
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    let arn = kms_key(&tern, EAST).await;
    bucket(&s3, "dflt").await;
    let default = s3.get_bucket_encryption().bucket("dflt").send().await.unwrap();
    let rule = &default.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(rule.apply_server_side_encryption_by_default().unwrap().sse_algorithm(), &ServerSideEncryption::Aes256);

    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id(&arn)
        .build()
        .unwrap();
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(by_default)
        .bucket_key_enabled(true)
        .build();
    let config = ServerSideEncryptionConfiguration::builder().rules(rule).build().unwrap();
    s3.put_bucket_encryption().bucket("dflt").server_side_encryption_configuration(config).send().await.unwrap();
    for key in ["a", "b", "c"] {
        let put = s3.put_object().bucket("dflt").key(key).body(ByteStream::from(marked(500))).send().await.unwrap();
        assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
        assert_eq!((put.ssekms_key_id(), put.bucket_key_enabled()), (Some(arn.as_str()), Some(true)));
        let context = decode_json(put.ssekms_encryption_context().unwrap());
        assert_eq!(context["aws:s3:arn"], "arn:aws:s3:::dflt", "bucket keys bind the bucket ARN");
    }
    assert_eq!(body_of(&s3, "dflt", "b").await, marked(500));

    let managed = s3
        .put_object()
        .bucket("dflt")
        .key("managed")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .bucket_key_enabled(false)
        .body(ByteStream::from_static(b"m"))
        .send()
        .await
        .unwrap();
    let managed_arn = managed.ssekms_key_id().unwrap();
    assert_eq!(managed_arn, arn.as_str(), "the bucket default key applies when the header names none");
    s3.delete_bucket_encryption().bucket("dflt").send().await.unwrap();
    let plain = s3.put_object().bucket("dflt").key("after").body(ByteStream::from_static(b"x")).send().await.unwrap();
    assert_eq!(plain.server_side_encryption(), Some(&ServerSideEncryption::Aes256));

    let aws_managed = s3
        .put_object()
        .bucket("dflt")
        .key("aws-managed")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .body(ByteStream::from_static(b"m"))
        .send()
        .await
        .unwrap();
    let aliases = tern.kms(EAST).list_aliases().send().await.unwrap();
    let alias =
        aliases.aliases().iter().find(|a| a.alias_name() == Some("alias/aws/s3")).expect("aws/s3 created on first use");
    assert!(aws_managed.ssekms_key_id().unwrap().ends_with(alias.target_key_id().unwrap()));
    let meta = tern.kms(EAST).describe_key().key_id("alias/aws/s3").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(meta.key_manager().map(aws_sdk_kms::types::KeyManagerType::as_str), Some("AWS"));
    let e = tern.kms(EAST).schedule_key_deletion().key_id(&meta.key_id).send().await.unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException", "an AWS managed key's policy keeps its lifecycle from users");
}

#[tokio::test]
async fn kms_refusals_reach_s3_callers_as_aws_reports_them() {
    let tern = crate::two_regions().await;
    let s3 = tern.s3(EAST);
    let arn = kms_key(&tern, EAST).await;
    let elsewhere = kms_key(&tern, crate::WEST).await;
    bucket(&s3, "refuse").await;
    let put = |key: &str, kms_key: &str| {
        s3.put_object()
            .bucket("refuse")
            .key(key)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(kms_key)
            .body(ByteStream::from_static(b"x"))
            .send()
    };
    put("ok", &arn).await.unwrap();
    let e = put("k", &elsewhere).await.unwrap_err();
    assert_eq!((code(&e), status(&e)), ("KMS.NotFoundException".into(), 400), "the key must be in the bucket's region");
    tern.kms(EAST).disable_key().key_id(&arn).send().await.unwrap();
    let e = put("k", &arn).await.unwrap_err();
    assert_eq!((code(&e), status(&e)), ("KMS.DisabledException".into(), 400));
    let e = s3.get_object().bucket("refuse").key("ok").send().await.unwrap_err();
    assert_eq!((code(&e), status(&e)), ("KMS.DisabledException".into(), 400));
    let listed = s3.list_objects_v2().bucket("refuse").send().await.unwrap();
    assert_eq!(listed.contents().len(), 1, "refused writes leave nothing");
}

#[tokio::test]
async fn sse_c_needs_the_customer_key_for_every_read_and_copy() {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let md5 = |b: &[u8]| {
        use md5::Digest as _;
        b64(md5::Md5::digest(b).as_slice())
    };
    let (key, other) = ([7u8; 32], [8u8; 32]);
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "ssec").await;
    let put = s3
        .put_object()
        .bucket("ssec")
        .key("k")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64(&key))
        .sse_customer_key_md5(md5(&key))
        .body(ByteStream::from(marked(200_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(put.sse_customer_key_md5(), Some(md5(&key).as_str()));
    assert_eq!(put.server_side_encryption(), None);

    let e = s3.head_object().bucket("ssec").key("k").send().await.unwrap_err();
    assert_eq!(status(&e), 400, "reading an SSE-C object needs its key");
    let wrong = s3
        .get_object()
        .bucket("ssec")
        .key("k")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64(&other))
        .sse_customer_key_md5(md5(&other))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&wrong), 403);
    let got = s3
        .get_object()
        .bucket("ssec")
        .key("k")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64(&key))
        .sse_customer_key_md5(md5(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().to_vec(), marked(200_000));

    let copied = s3
        .copy_object()
        .bucket("ssec")
        .key("as-kms")
        .copy_source("ssec/k")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(b64(&key))
        .copy_source_sse_customer_key_md5(md5(&key))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .send()
        .await
        .unwrap();
    assert_eq!(copied.server_side_encryption(), Some(&ServerSideEncryption::AwsKms), "a copy can change encryption");
    assert_eq!(body_of(&s3, "ssec", "as-kms").await, marked(200_000));
    assert_no_marker(&tern);
}
