use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};

use crate::{EAST, body_of, bucket, code, one_region, status};

async fn set_versioning(s3: &aws_sdk_s3::Client, name: &str, state: BucketVersioningStatus) {
    let config = VersioningConfiguration::builder().status(state).build();
    s3.put_bucket_versioning().bucket(name).versioning_configuration(config).send().await.unwrap();
}

async fn put(s3: &aws_sdk_s3::Client, key: &str, body: &'static [u8]) -> Option<String> {
    let out = s3.put_object().bucket("vers").key(key).body(ByteStream::from_static(body)).send().await.unwrap();
    out.version_id().map(str::to_owned)
}

#[tokio::test]
async fn versions_markers_and_permanent_deletes() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "vers").await;
    assert!(s3.get_bucket_versioning().bucket("vers").send().await.unwrap().status().is_none());
    assert_eq!(put(&s3, "k", b"unversioned").await, None);
    set_versioning(&s3, "vers", BucketVersioningStatus::Enabled).await;

    let v1 = put(&s3, "k", b"one").await.expect("version id");
    let v2 = put(&s3, "k", b"two").await.expect("version id");
    assert_ne!(v1, v2);
    assert_eq!(body_of(&s3, "vers", "k").await, b"two");
    let old = s3.get_object().bucket("vers").key("k").version_id(&v1).send().await.unwrap();
    assert_eq!(old.version_id(), Some(v1.as_str()));
    assert_eq!(old.body.collect().await.unwrap().into_bytes().as_ref(), b"one");
    let null = s3.get_object().bucket("vers").key("k").version_id("null").send().await.unwrap();
    assert_eq!(null.body.collect().await.unwrap().into_bytes().as_ref(), b"unversioned");

    let marker = s3.delete_object().bucket("vers").key("k").send().await.unwrap();
    assert_eq!(marker.delete_marker(), Some(true));
    let marker_id = marker.version_id().unwrap().to_owned();
    let hidden = s3.get_object().bucket("vers").key("k").send().await.unwrap_err();
    assert_eq!(code(&hidden), "NoSuchKey");
    assert_eq!(hidden.raw_response().unwrap().headers().get("x-amz-delete-marker"), Some("true"));
    let on_marker = s3.head_object().bucket("vers").key("k").version_id(&marker_id).send().await.unwrap_err();
    assert_eq!(status(&on_marker), 405);

    let versions = s3.list_object_versions().bucket("vers").send().await.unwrap();
    let ids: Vec<&str> = versions.versions().iter().filter_map(|v| v.version_id()).collect();
    assert_eq!(ids, [v2.as_str(), v1.as_str(), "null"], "newest first");
    assert_eq!(versions.delete_markers().len(), 1);
    assert_eq!(versions.delete_markers()[0].is_latest(), Some(true));

    // Removing the marker brings the newest version back.
    let removed = s3.delete_object().bucket("vers").key("k").version_id(&marker_id).send().await.unwrap();
    assert_eq!(removed.delete_marker(), Some(true));
    assert_eq!(body_of(&s3, "vers", "k").await, b"two");
    s3.delete_object().bucket("vers").key("k").version_id(&v2).send().await.unwrap();
    assert_eq!(body_of(&s3, "vers", "k").await, b"one");
}

#[tokio::test]
async fn suspended_versioning_overwrites_the_null_version() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "vers").await;
    set_versioning(&s3, "vers", BucketVersioningStatus::Enabled).await;
    let kept = put(&s3, "k", b"kept").await.unwrap();
    set_versioning(&s3, "vers", BucketVersioningStatus::Suspended).await;
    assert_eq!(put(&s3, "k", b"first null").await.as_deref(), Some("null"));
    put(&s3, "k", b"second null").await;
    let versions = s3.list_object_versions().bucket("vers").send().await.unwrap();
    let ids: Vec<&str> = versions.versions().iter().filter_map(|v| v.version_id()).collect();
    assert_eq!(ids, ["null", kept.as_str()]);
    assert_eq!(body_of(&s3, "vers", "k").await, b"second null");
    let status = s3.get_bucket_versioning().bucket("vers").send().await.unwrap();
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Suspended));
}

#[tokio::test]
async fn version_listing_paginates_across_keys_and_versions() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "vers").await;
    set_versioning(&s3, "vers", BucketVersioningStatus::Enabled).await;
    for key in ["a", "b", "c"] {
        for _ in 0..3 {
            put(&s3, key, b"v").await;
        }
    }
    let mut seen = Vec::new();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = s3
            .list_object_versions()
            .bucket("vers")
            .max_keys(2)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await
            .unwrap();
        seen.extend(page.versions().iter().map(|v| (v.key().unwrap().to_owned(), v.version_id().unwrap().to_owned())));
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
    assert_eq!(seen.len(), 9);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), 9, "no version listed twice");
}
