use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

use crate::{EAST, WEST, bucket, code, message, status, two_regions};

fn in_region(region: &str) -> CreateBucketConfiguration {
    CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region)).build()
}

#[tokio::test]
async fn bucket_names_are_global_across_regions() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    bucket(&east, "shared-name").await;

    east.put_object().bucket("shared-name").key("k").body(b"kept".to_vec().into()).send().await.unwrap();
    // us-east-1's legacy answer to its owner: 200, and the bucket as it was.
    east.create_bucket().bucket("shared-name").send().await.expect("the owner re-creates in us-east-1");
    assert_eq!(crate::body_of(&east, "shared-name", "k").await, b"kept");
    let elsewhere = west
        .create_bucket()
        .bucket("shared-name")
        .create_bucket_configuration(in_region(WEST))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&elsewhere), "BucketAlreadyOwnedByYou");

    west.create_bucket().bucket("west-only").create_bucket_configuration(in_region(WEST)).send().await.unwrap();
    let again = west.create_bucket().bucket("west-only").create_bucket_configuration(in_region(WEST)).send().await;
    assert_eq!(code(&again.unwrap_err()), "BucketAlreadyOwnedByYou", "everywhere else, as AWS");
    let listed = east.list_buckets().send().await.unwrap();
    let names: Vec<(&str, &str)> =
        listed.buckets().iter().map(|b| (b.name().unwrap(), b.bucket_region().unwrap())).collect();
    assert_eq!(names, [("shared-name", EAST), ("west-only", WEST)]);

    // A bucket of the other region answers with AWS's redirect and its region.
    let moved = east.head_bucket().bucket("west-only").send().await.unwrap_err();
    assert_eq!(status(&moved), 301);
    let raw = moved.raw_response().unwrap();
    assert_eq!(raw.headers().get("x-amz-bucket-region"), Some(WEST));

    // Deleting frees the name for every region.
    west.delete_bucket().bucket("west-only").send().await.unwrap();
    bucket(&east, "west-only").await;
}

#[tokio::test]
async fn location_constraints_follow_aws() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    let missing = west.create_bucket().bucket("needs-constraint").send().await.unwrap_err();
    assert_eq!(code(&missing), "IllegalLocationConstraintException");
    let wrong = west
        .create_bucket()
        .bucket("needs-constraint")
        .create_bucket_configuration(in_region("ap-south-1"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&wrong), "IllegalLocationConstraintException");
    let redundant = east
        .create_bucket()
        .bucket("east-explicit")
        .create_bucket_configuration(in_region(EAST))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&redundant), "InvalidLocationConstraint");

    west.create_bucket().bucket("in-west").create_bucket_configuration(in_region(WEST)).send().await.unwrap();
    let location = west.get_bucket_location().bucket("in-west").send().await.unwrap();
    assert_eq!(location.location_constraint().map(BucketLocationConstraint::as_str), Some(WEST));
    bucket(&east, "in-east").await;
    let location = east.get_bucket_location().bucket("in-east").send().await.unwrap();
    assert!(location.location_constraint().is_none_or(|c| c.as_str().is_empty()));
    let head = west.head_bucket().bucket("in-west").send().await.unwrap();
    assert_eq!(head.bucket_region(), Some(WEST));
}

#[tokio::test]
async fn invalid_and_busy_buckets_are_refused() {
    let tern = two_regions().await;
    let east = tern.s3(EAST);
    for name in ["ab", "Upper-Case", "bad..dots", "192.168.0.1"] {
        let err = east.create_bucket().bucket(name).send().await.unwrap_err();
        assert_eq!(code(&err), "InvalidBucketName", "{name}");
        assert_eq!(message(&err), "The specified bucket is not valid.", "{name}");
    }
    let long_key = east.put_object().bucket("busy").key("k".repeat(1025)).send().await.unwrap_err();
    assert_eq!((code(&long_key).as_str(), message(&long_key).as_str()), ("KeyTooLongError", "Your key is too long"));
    bucket(&east, "busy").await;
    east.put_object().bucket("busy").key("k").body("x".as_bytes().to_vec().into()).send().await.unwrap();
    let busy = east.delete_bucket().bucket("busy").send().await.unwrap_err();
    assert_eq!((code(&busy), status(&busy)), ("BucketNotEmpty".into(), 409));
    let missing = east.delete_bucket().bucket("never-made").send().await.unwrap_err();
    assert_eq!(code(&missing), "NoSuchBucket");
    let names: Vec<String> = east
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["busy"], "failed creates leave nothing behind");
}

/// As on AWS, an upload left in progress does not keep its bucket alive:
/// `DeleteBucket` takes it, and its parts' bytes, along.
#[tokio::test]
async fn a_bucket_with_only_uploads_in_progress_is_deleted_with_them() {
    let tern = two_regions().await;
    let east = tern.s3(EAST);
    bucket(&east, "leftovers").await;
    let upload = east.create_multipart_upload().bucket("leftovers").key("big").send().await.unwrap();
    let part = east.upload_part().bucket("leftovers").key("big").upload_id(upload.upload_id().unwrap());
    part.part_number(1).body(vec![7u8; 200_000].into()).send().await.unwrap();
    let blobs = |tern: &tern_testkit::Deployment| {
        crate::files_under(&tern.data_dir().join(EAST).join("blobs").join("blobs")).len()
    };
    assert_eq!(blobs(&tern), 1, "the part's bytes");
    east.delete_bucket().bucket("leftovers").send().await.expect("uploads do not keep a bucket");
    assert_eq!(blobs(&tern), 0, "and they go with it");
    let gone = east.list_multipart_uploads().bucket("leftovers").send().await.unwrap_err();
    assert_eq!(code(&gone), "NoSuchBucket");
    bucket(&east, "leftovers").await;
    let fresh = east.list_multipart_uploads().bucket("leftovers").send().await.unwrap();
    assert!(fresh.uploads().is_empty(), "a bucket made again under the name starts empty");
}
