//! Object bytes in an S3-compatible service: the blob contract on a real S3
//! server (another Tern, started here), and a region of two front-ends on
//! PostgreSQL whose bytes live there, sealed before they leave.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use tern_blobs_s3::{MIN_PART_SIZE, S3Blobs, S3BlobsConfig};
use tern_store::BlobStore as _;
use tern_testkit::Deployment;

use crate::{EAST, body_of, bucket, one_region, pattern};

fn backend(store: &Deployment, bucket: &str) -> S3BlobsConfig {
    backend_at(&store.endpoint(EAST), bucket)
}

fn backend_at(endpoint: &str, bucket: &str) -> S3BlobsConfig {
    S3BlobsConfig {
        endpoint: Some(endpoint.to_owned()),
        region: EAST.to_owned(),
        bucket: bucket.to_owned(),
        prefix: "region-a/".to_owned(),
        credentials: Some((tern_testkit::ACCESS_KEY.to_owned(), tern_testkit::SECRET_KEY.to_owned())),
        part_size: MIN_PART_SIZE,
    }
}

fn chunks_of(bytes: &[u8]) -> tern_store::ByteStream {
    tern_store::contract::stream_of(bytes.chunks(100_000).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect())
}

/// s3s-fs, an S3 server of another make: the contract and multipart blobs.
#[tokio::test]
async fn s3s_fs_meets_the_blob_contract() {
    let Some(s3s_fs) = tern_testkit::S3sFs::start().await.unwrap() else { return };
    let keys = (tern_testkit::S3sFs::ACCESS_KEY, tern_testkit::S3sFs::SECRET_KEY);
    let admin = tern_testkit::s3_client(&s3s_fs.endpoint, EAST, keys.0, keys.1);
    bucket(&admin, "blobs").await;
    let config = S3BlobsConfig {
        endpoint: Some(s3s_fs.endpoint.clone()),
        credentials: Some((keys.0.to_owned(), keys.1.to_owned())),
        ..backend_at("http://unused", "blobs")
    };
    let blobs = S3Blobs::open(&config).await.expect("s3s-fs answers");
    tern_store::contract::blob_suite(&blobs).await;
    let big = pattern(12 << 20, 5);
    let (id, size) = blobs.put(chunks_of(&big)).await.unwrap();
    assert_eq!(tern_store::contract::read_all(&blobs, &id, 0..size).await, big, "a multipart blob");
    blobs.clear_incomplete(Duration::ZERO).await.expect("a service that cannot list uploads is no error");
}

#[tokio::test]
async fn an_s3_service_meets_the_blob_contract_with_multipart_blobs_and_no_leftovers() {
    let store = one_region().await;
    bucket(&store.s3(EAST), "blobs").await;
    let blobs = S3Blobs::open(&backend(&store, "blobs")).await.expect("the service answers");
    tern_store::contract::blob_suite(&blobs).await;

    // Above one part: a multipart upload, read back whole and across a part boundary.
    let big = pattern(12 << 20, 3);
    let (id, size) = blobs.put(chunks_of(&big)).await.unwrap();
    assert_eq!(size, big.len() as u64);
    let read = |range| tern_store::contract::read_all(&blobs, &id, range);
    assert_eq!(read(0..size).await, big);
    let boundary = MIN_PART_SIZE as u64;
    assert_eq!(read(boundary - 10..boundary + 10).await, &big[MIN_PART_SIZE - 10..MIN_PART_SIZE + 10]);

    // A write whose body fails mid-way leaves no part behind.
    let failing: Vec<std::io::Result<bytes::Bytes>> =
        vec![Ok(bytes::Bytes::from(vec![1; MIN_PART_SIZE + 1])), Err(std::io::Error::other("client went away"))];
    assert!(blobs.put(tern_store::contract::stream_of(failing)).await.is_err());
    let uploads = store.s3(EAST).list_multipart_uploads().bucket("blobs").send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "aborted: {:?}", uploads.uploads());
    // An upload some crash left is cleared by the sweep, once old enough.
    store.s3(EAST).create_multipart_upload().bucket("blobs").key("region-a/blobs/stray").send().await.unwrap();
    blobs.clear_incomplete(Duration::from_hours(1)).await.unwrap();
    assert_eq!(store.s3(EAST).list_multipart_uploads().bucket("blobs").send().await.unwrap().uploads().len(), 1);
    blobs.clear_incomplete(Duration::ZERO).await.unwrap();
    assert!(store.s3(EAST).list_multipart_uploads().bucket("blobs").send().await.unwrap().uploads().is_empty());
}

#[tokio::test]
async fn front_ends_keep_their_bytes_in_an_s3_service_sealed() {
    let Some(admin) = tern_store::contract::postgres_setting("TERN_TEST_POSTGRES_URL") else { return };
    let store = one_region().await;
    bucket(&store.s3(EAST), "region-blobs").await;
    let endpoint = store.endpoint(EAST);
    let (key, secret) = (tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY);
    let in_s3 = |region: &str| {
        format!(
            "blobs = \"s3://region-blobs/{region}\"\n[region.blob_s3]\nendpoint = \"{endpoint}\"\nregion = \"{EAST}\"\n\
             access_key_id = \"{key}\"\nsecret_access_key = \"{secret}\"\npart_size_mib = 5"
        )
    };
    let binary = env!("CARGO_BIN_EXE_tern").as_ref();
    let tern =
        Deployment::start_shared_blobs(binary, &[(EAST, 2)], "", &admin.to_string_lossy(), &in_s3).await.unwrap();
    let (one, two) = (tern.s3(EAST), tern.s3("us-east-1#2"));
    bucket(&one, "data").await;
    let big = pattern(12 << 20, 9);
    let put = one.put_object().bucket("data").key("big").body(ByteStream::from(big.clone())).send().await;
    put.unwrap_or_else(|e| panic!("{e:?}\n{}", tern.log()));
    assert_eq!(body_of(&two, "data", "big").await, big, "through the other front-end, from the service");

    let stored = store.s3(EAST).list_objects_v2().bucket("region-blobs").prefix(format!("{EAST}/blobs/")).send();
    let stored = stored.await.unwrap();
    let [blob] = stored.contents() else { panic!("one blob: {:?}", stored.contents()) };
    let sealed = body_of(&store.s3(EAST), "region-blobs", blob.key().unwrap()).await;
    assert!(sealed.len() >= big.len(), "segments carry their tags");
    assert!(!sealed.windows(64).any(|w| w == &big[..64]), "the service holds no plaintext");

    one.delete_object().bucket("data").key("big").send().await.unwrap();
    let left = store.s3(EAST).list_objects_v2().bucket("region-blobs").send().await.unwrap();
    assert!(left.contents().is_empty(), "a deleted object's bytes go too: {:?}", left.contents());
}
