//! What someone with the data directory finds: files every local user could
//! read, the SSE-C key's unsalted MD5 (finding 17), and blobs that could be
//! swapped between the parts of an object unnoticed (19, 22).

use std::os::unix::fs::PermissionsExt as _;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;

use crate::{EAST, bucket, files_under, one_region, pattern};

fn md5_b64(bytes: &[u8]) -> String {
    use md5::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes))
}

#[tokio::test]
async fn the_data_directory_is_private_and_holds_no_key_hash() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "private").await;
    let key = [7u8; 32];
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(key);
    s3.put_object()
        .bucket("private")
        .key("customer")
        .body(ByteStream::from(pattern(100_000, 3)))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(md5_b64(&key))
        .send()
        .await
        .unwrap();
    tern.iam_call(EAST, &[("Action", "CreateUser"), ("Version", "2010-05-08"), ("UserName", "someone")]).await.unwrap();
    let data = tern.data_dir();
    for path in files_under(&data) {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", path.display());
    }
    let mut dirs = vec![data.clone()];
    while let Some(dir) = dirs.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is mode {mode:o}", dir.display());
        dirs.extend(std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    let md5 = md5_b64(&key);
    for path in files_under(&data) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(md5.len()).any(|w| w == md5.as_bytes()), "{} holds the key's MD5", path.display());
    }
    // The key is still recognised: reads with it work, reads with another do not.
    let read = s3.get_object().bucket("private").key("customer").sse_customer_algorithm("AES256");
    let read = read.sse_customer_key(&key_b64).sse_customer_key_md5(md5_b64(&key)).send().await.unwrap();
    assert_eq!(read.sse_customer_key_md5(), Some(md5_b64(&key).as_str()));
    let other = [8u8; 32];
    let wrong = s3.get_object().bucket("private").key("customer").sse_customer_algorithm("AES256");
    let wrong = wrong
        .sse_customer_key(base64::engine::general_purpose::STANDARD.encode(other))
        .sse_customer_key_md5(md5_b64(&other));
    assert_eq!(crate::code(&wrong.send().await.unwrap_err()), "AccessDenied");
}

/// Two parts of one upload share a data key; swapping their blob files on
/// disk must not go unnoticed (and each has its own segment key).
#[tokio::test]
async fn swapped_part_blobs_are_refused() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "parts").await;
    let upload = s3.create_multipart_upload().bucket("parts").key("two").send().await.unwrap();
    let id = upload.upload_id().unwrap();
    let part_len = 5 * 1024 * 1024;
    let mut completed = Vec::new();
    for n in 1..=2 {
        let body = ByteStream::from(pattern(part_len, u8::try_from(n).unwrap()));
        let part =
            s3.upload_part().bucket("parts").key("two").upload_id(id).part_number(n).body(body).send().await.unwrap();
        completed.push(CompletedPart::builder().part_number(n).e_tag(part.e_tag().unwrap()).build());
    }
    let done = CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
    s3.complete_multipart_upload()
        .bucket("parts")
        .key("two")
        .upload_id(id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    assert_eq!(crate::body_of(&s3, "parts", "two").await.len(), 2 * part_len);

    let blobs: Vec<_> =
        files_under(&tern.data_dir()).into_iter().filter(|p| p.to_string_lossy().contains("/blobs/blobs/")).collect();
    assert_eq!(blobs.len(), 2, "{blobs:?}");
    for blob in &blobs {
        assert_eq!(&std::fs::read(blob).unwrap()[..4], b"TRN2", "new blobs carry their own salt");
    }
    let (a, b) = (std::fs::read(&blobs[0]).unwrap(), std::fs::read(&blobs[1]).unwrap());
    std::fs::write(&blobs[0], &b).unwrap();
    std::fs::write(&blobs[1], &a).unwrap();
    let read = s3.get_object().bucket("parts").key("two").send().await;
    let refused = match read {
        Err(_) => true,
        Ok(out) => out.body.collect().await.is_err(),
    };
    assert!(refused, "a swapped part must not read back as the object");
}
