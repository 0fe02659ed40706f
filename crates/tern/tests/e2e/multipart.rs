use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::{EAST, bucket, code, one_region, pattern};

const PART: usize = 5 << 20;

#[tokio::test]
async fn multipart_upload_assembles_parts_in_order() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "mpu").await;
    let upload =
        s3.create_multipart_upload().bucket("mpu").key("big").content_type("video/x-test").send().await.unwrap();
    let id = upload.upload_id().unwrap();
    let parts = [pattern(PART, 1), pattern(PART, 2), pattern(1234, 3)];
    let mut completed = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let number = i32::try_from(i + 1).unwrap();
        let out = s3
            .upload_part()
            .bucket("mpu")
            .key("big")
            .upload_id(id)
            .part_number(number)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        completed.push(CompletedPart::builder().part_number(number).e_tag(out.e_tag().unwrap()).build());
    }
    let listed = s3.list_parts().bucket("mpu").key("big").upload_id(id).send().await.unwrap();
    assert_eq!(listed.parts().len(), 3);
    let uploads = s3.list_multipart_uploads().bucket("mpu").send().await.unwrap();
    assert_eq!(uploads.uploads().len(), 1);

    let done = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
        .send()
        .await
        .unwrap();
    assert!(done.e_tag().unwrap().ends_with("-3\""), "{:?}", done.e_tag());

    let whole: Vec<u8> = parts.concat();
    let got = s3.get_object().bucket("mpu").key("big").send().await.unwrap();
    assert_eq!(got.content_type(), Some("video/x-test"));
    assert_eq!(got.body.collect().await.unwrap().into_bytes().to_vec(), whole);
    let start = PART - 10;
    let across =
        s3.get_object().bucket("mpu").key("big").range(format!("bytes={start}-{}", PART + 10)).send().await.unwrap();
    assert_eq!(across.body.collect().await.unwrap().into_bytes().to_vec(), &whole[start..=PART + 10]);
    let second = s3.get_object().bucket("mpu").key("big").part_number(2).send().await.unwrap();
    assert_eq!(second.parts_count(), Some(3));
    assert_eq!(second.content_length(), Some(i64::try_from(PART).unwrap()));
    assert!(s3.list_multipart_uploads().bucket("mpu").send().await.unwrap().uploads().is_empty());
}

#[tokio::test]
async fn bad_completions_and_aborts() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "mpu").await;
    s3.put_object().bucket("mpu").key("src").body(ByteStream::from(pattern(PART + 100, 9))).send().await.unwrap();
    let id = s3.create_multipart_upload().bucket("mpu").key("k").send().await.unwrap().upload_id().unwrap().to_owned();
    let small = s3
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(b"tiny"))
        .send()
        .await
        .unwrap();
    let copied = s3
        .upload_part_copy()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .part_number(2)
        .copy_source("mpu/src")
        .copy_source_range("bytes=0-99")
        .send()
        .await
        .unwrap();
    let part = |n: i32, etag: &str| CompletedPart::builder().part_number(n).e_tag(etag).build();
    let complete = |parts: Vec<CompletedPart>| {
        s3.complete_multipart_upload()
            .bucket("mpu")
            .key("k")
            .upload_id(&id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
    };
    let too_small =
        complete(vec![part(1, small.e_tag().unwrap()), part(2, copied.copy_part_result().unwrap().e_tag().unwrap())])
            .await
            .unwrap_err();
    assert_eq!(code(&too_small), "EntityTooSmall");
    let wrong_tag = complete(vec![part(1, "\"00000000000000000000000000000000\"")]).await.unwrap_err();
    assert_eq!(code(&wrong_tag), "InvalidPart");
    let order = complete(vec![part(2, "x"), part(1, "y")]).await.unwrap_err();
    assert_eq!(code(&order), "InvalidPartOrder");

    s3.abort_multipart_upload().bucket("mpu").key("k").upload_id(&id).send().await.unwrap();
    let gone = s3
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .part_number(3)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&gone), "NoSuchUpload");
    let bad_number = s3
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .part_number(10_001)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_number), "InvalidArgument");
}

/// aws-sdk-s3 uploads with full-object CRC64NVME and CRC32C checksums: the
/// region combines the parts' CRCs into the whole object's, which is what
/// the SDK sends with the completion and what a read reports.
#[tokio::test]
async fn full_object_checksums_combine_from_the_parts() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType};
    use base64::Engine as _;
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "crc").await;
    let parts = [pattern(PART, 4), pattern(PART, 5), pattern(777, 6)];
    let whole = parts.concat();
    for (algorithm, crc) in [
        (ChecksumAlgorithm::Crc64Nvme, crc_fast::CrcAlgorithm::Crc64Nvme),
        (ChecksumAlgorithm::Crc32C, crc_fast::CrcAlgorithm::Crc32Iscsi),
    ] {
        let value = crc_fast::checksum(crc, &whole);
        let bytes = if crc == crc_fast::CrcAlgorithm::Crc64Nvme {
            value.to_be_bytes().to_vec()
        } else {
            u32::try_from(value).unwrap().to_be_bytes().to_vec()
        };
        let expected = base64::engine::general_purpose::STANDARD.encode(bytes);
        let key = algorithm.as_str();
        let created = s3
            .create_multipart_upload()
            .bucket("crc")
            .key(key)
            .checksum_algorithm(algorithm.clone())
            .checksum_type(ChecksumType::FullObject)
            .send()
            .await
            .unwrap();
        let id = created.upload_id().unwrap();
        let mut completed = Vec::new();
        for (i, data) in parts.iter().enumerate() {
            let number = i32::try_from(i + 1).unwrap();
            let out = s3
                .upload_part()
                .bucket("crc")
                .key(key)
                .upload_id(id)
                .part_number(number)
                .checksum_algorithm(algorithm.clone())
                .body(ByteStream::from(data.clone()))
                .send()
                .await
                .unwrap();
            let part = CompletedPart::builder().part_number(number).e_tag(out.e_tag().unwrap());
            let part = match algorithm {
                ChecksumAlgorithm::Crc64Nvme => part.checksum_crc64_nvme(out.checksum_crc64_nvme().unwrap()),
                _ => part.checksum_crc32_c(out.checksum_crc32_c().unwrap()),
            };
            completed.push(part.build());
        }
        let complete = s3
            .complete_multipart_upload()
            .bucket("crc")
            .key(key)
            .upload_id(id)
            .checksum_type(ChecksumType::FullObject)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build());
        let complete = match algorithm {
            ChecksumAlgorithm::Crc64Nvme => complete.checksum_crc64_nvme(&expected),
            _ => complete.checksum_crc32_c(&expected),
        };
        let done = complete.send().await.unwrap();
        assert_eq!(done.checksum_type(), Some(&ChecksumType::FullObject));
        let head = s3.head_object().bucket("crc").key(key).checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
        let reported = match algorithm {
            ChecksumAlgorithm::Crc64Nvme => head.checksum_crc64_nvme(),
            _ => head.checksum_crc32_c(),
        };
        assert_eq!(reported, Some(expected.as_str()), "{key}");
        // The SDK checks the whole object's CRC as it reads it back.
        let got = s3.get_object().bucket("crc").key(key).checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().len(), whole.len());
    }
}
