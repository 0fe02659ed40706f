//! Bucket lifecycle through aws-sdk-s3: configurations validated and
//! returned as AWS does, and each region's worker applying them (with a
//! two-second "day", `[lifecycle] day_seconds = 2`).

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleAndOperator, LifecycleRuleFilter, NoncurrentVersionExpiration, ReplicationStatus, Tag, Transition,
    TransitionStorageClass,
};
use tern_testkit::{Deployment, eventually};

use crate::replication::{READ_AND_REPLICATE, replicate, rule as replication_rule, settled, versioned};
use crate::{EAST, WEST, code, status};

const WITHIN: Duration = Duration::from_secs(20);

async fn fast_days(regions: &[&str]) -> Deployment {
    let settings = "lifecycle = { interval_seconds = 1, day_seconds = 2 }";
    Deployment::start_with(env!("CARGO_BIN_EXE_tern").as_ref(), regions, settings).await.expect("tern starts")
}

fn rule(id: &str) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    LifecycleRule::builder().id(id).status(ExpirationStatus::Enabled)
}

fn prefix(p: &str) -> LifecycleRuleFilter {
    LifecycleRuleFilter::builder().prefix(p).build()
}

fn expire_after(days: i32) -> LifecycleExpiration {
    LifecycleExpiration::builder().days(days).build()
}

async fn put_rules(s3: &Client, bucket: &str, rules: Vec<LifecycleRule>) -> Result<(), String> {
    let config = BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().unwrap();
    match s3.put_bucket_lifecycle_configuration().bucket(bucket).lifecycle_configuration(config).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{} {}", code(&e), status(&e))),
    }
}

async fn exists(s3: &Client, bucket: &str, key: &str) -> bool {
    s3.head_object().bucket(bucket).key(key).send().await.is_ok()
}

#[tokio::test]
async fn configurations_are_validated_and_round_trip_as_aws_does() {
    let tern = Deployment::start(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST]).await.unwrap();
    let s3 = tern.s3(EAST);
    crate::bucket(&s3, "rules").await;
    let none = s3.get_bucket_lifecycle_configuration().bucket("rules").send().await.unwrap_err();
    assert_eq!((code(&none), status(&none)), ("NoSuchLifecycleConfiguration".into(), 404));

    let refused = [
        (rule("no-action").filter(prefix("")).build().unwrap(), "InvalidRequest 400"),
        (rule("zero").filter(prefix("")).expiration(expire_after(0)).build().unwrap(), "InvalidArgument 400"),
        (
            rule("moves")
                .filter(prefix(""))
                .transitions(Transition::builder().days(30).storage_class(TransitionStorageClass::StandardIa).build())
                .build()
                .unwrap(),
            "NotImplemented 501",
        ),
        (
            rule("abort-tags")
                .filter(LifecycleRuleFilter::builder().tag(Tag::builder().key("k").value("v").build().unwrap()).build())
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder().days_after_initiation(1).build(),
                )
                .build()
                .unwrap(),
            "InvalidRequest 400",
        ),
    ];
    for (bad, expected) in refused {
        assert_eq!(put_rules(&s3, "rules", vec![bad]).await.unwrap_err(), expected);
    }
    let twice = vec![
        rule("same").filter(prefix("a/")).expiration(expire_after(1)).build().unwrap(),
        rule("same").filter(prefix("b/")).expiration(expire_after(1)).build().unwrap(),
    ];
    assert_eq!(put_rules(&s3, "rules", twice).await.unwrap_err(), "InvalidArgument 400");

    let tags = LifecycleRuleAndOperator::builder()
        .prefix("docs/")
        .tags(Tag::builder().key("class").value("temp").build().unwrap())
        .object_size_greater_than(10)
        .build();
    let written = vec![
        rule("by-prefix").filter(prefix("logs/")).expiration(expire_after(30)).build().unwrap(),
        rule("by-and")
            .filter(LifecycleRuleFilter::builder().and(tags).build())
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder().noncurrent_days(7).newer_noncurrent_versions(2).build(),
            )
            .build()
            .unwrap(),
        rule("uploads")
            .status(ExpirationStatus::Disabled)
            .filter(prefix(""))
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder().days_after_initiation(3).build(),
            )
            .expiration(LifecycleExpiration::builder().expired_object_delete_marker(true).build())
            .build()
            .unwrap(),
    ];
    put_rules(&s3, "rules", written.clone()).await.unwrap();
    let read = s3.get_bucket_lifecycle_configuration().bucket("rules").send().await.unwrap();
    assert_eq!(read.rules(), written.as_slice());
    s3.delete_bucket_lifecycle().bucket("rules").send().await.unwrap();
    let gone = s3.get_bucket_lifecycle_configuration().bucket("rules").send().await.unwrap_err();
    assert_eq!(code(&gone), "NoSuchLifecycleConfiguration");
}

#[tokio::test]
async fn the_worker_expires_objects_versions_markers_and_uploads() {
    let tern = fast_days(&[EAST]).await;
    let s3 = tern.s3(EAST);
    crate::bucket(&s3, "plain").await;
    for key in ["logs/old", "keep/this"] {
        s3.put_object().bucket("plain").key(key).body(ByteStream::from_static(b"x")).send().await.unwrap();
    }
    let upload = s3.create_multipart_upload().bucket("plain").key("logs/part").send().await.unwrap();
    let rules = vec![
        rule("logs").filter(prefix("logs/")).expiration(expire_after(1)).build().unwrap(),
        rule("uploads")
            .filter(prefix(""))
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder().days_after_initiation(1).build(),
            )
            .build()
            .unwrap(),
    ];
    put_rules(&s3, "plain", rules).await.unwrap();

    versioned(&s3, "kept", EAST).await;
    for body in ["v1", "v2", "v3"] {
        s3.put_object().bucket("kept").key("k").body(ByteStream::from_static(body.as_bytes())).send().await.unwrap();
    }
    let tagged = |key: &'static str, tagging: &'static str| {
        s3.put_object().bucket("kept").key(key).tagging(tagging).body(ByteStream::from_static(b"t")).send()
    };
    tagged("t/yes", "expire=yes").await.unwrap();
    tagged("t/no", "expire=no").await.unwrap();
    let lone = s3.put_object().bucket("kept").key("lone").body(ByteStream::from_static(b"l")).send().await.unwrap();
    s3.delete_object().bucket("kept").key("lone").send().await.unwrap();
    s3.delete_object().bucket("kept").key("lone").version_id(lone.version_id().unwrap()).send().await.unwrap();
    let tag_filter =
        LifecycleRuleFilter::builder().tag(Tag::builder().key("expire").value("yes").build().unwrap()).build();
    let rules = vec![
        rule("noncurrent")
            .filter(prefix("k"))
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder().noncurrent_days(1).newer_noncurrent_versions(1).build(),
            )
            .build()
            .unwrap(),
        rule("tagged").filter(tag_filter).expiration(expire_after(1)).build().unwrap(),
        rule("markers")
            .filter(prefix("lone"))
            .expiration(LifecycleExpiration::builder().expired_object_delete_marker(true).build())
            .build()
            .unwrap(),
    ];
    put_rules(&s3, "kept", rules).await.unwrap();

    eventually(WITHIN, "logs/old expires and the upload is aborted", || async {
        let uploads = s3.list_multipart_uploads().bucket("plain").send().await.unwrap();
        (!exists(&s3, "plain", "logs/old").await && uploads.uploads().is_empty()).then_some(())
    })
    .await;
    assert!(exists(&s3, "plain", "keep/this").await, "outside the rule's prefix");
    assert!(
        s3.list_parts().bucket("plain").key("logs/part").upload_id(upload.upload_id().unwrap()).send().await.is_err()
    );

    let versions_of = |key: &'static str| {
        let s3 = s3.clone();
        async move {
            let listed = s3.list_object_versions().bucket("kept").prefix(key).send().await.unwrap();
            let versions: Vec<String> = listed
                .versions()
                .iter()
                .filter(|v| v.key() == Some(key))
                .filter_map(|v| v.version_id().map(str::to_owned))
                .collect();
            let markers = listed.delete_markers().iter().filter(|m| m.key() == Some(key)).count();
            (versions.len(), markers)
        }
    };
    eventually(WITHIN, "the oldest noncurrent version expires, the newest noncurrent stays", || async {
        (versions_of("k").await == (2, 0)).then_some(())
    })
    .await;
    eventually(WITHIN, "the tagged object expires under a delete marker", || async {
        (versions_of("t/yes").await == (1, 1)).then_some(())
    })
    .await;
    assert_eq!(versions_of("t/no").await, (1, 0));
    eventually(WITHIN, "a delete marker hiding nothing goes", || async {
        (versions_of("lone").await == (0, 0)).then_some(())
    })
    .await;
    let body = s3.get_object().bucket("kept").key("k").send().await.unwrap().body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"v3");

    let metrics = reqwest::get(format!("{}/_tern/metrics", tern.endpoint(EAST))).await.unwrap().text().await.unwrap();
    for action in ["expire", "abort_upload", "expire_noncurrent", "remove_delete_marker"] {
        let series = format!(r#"tern_lifecycle_actions_total{{region="us-east-1",action="{action}"}}"#);
        assert!(metrics.lines().any(|l| l.starts_with(&series) && !l.ends_with(" 0")), "{action}: {metrics}");
    }
}

/// As on AWS, what lifecycle deletes is not replicated: the source's
/// expiry marker stays in the source region.
#[tokio::test]
async fn lifecycle_expiry_is_not_replicated() {
    let tern = fast_days(&[EAST, WEST]).await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "lc-src", EAST).await;
    versioned(&west, "lc-dst", WEST).await;
    let role = tern.replication_role(EAST, "lc", READ_AND_REPLICATE).await.unwrap();
    let mut replicated = replication_rule("all", 1, "", "lc-dst");
    replicated.delete_marker_replication = Some(
        aws_sdk_s3::types::DeleteMarkerReplication::builder()
            .status(aws_sdk_s3::types::DeleteMarkerReplicationStatus::Enabled)
            .build(),
    );
    replicate(&east, "lc-src", &role, vec![replicated]).await;
    east.put_object().bucket("lc-src").key("doc").body(ByteStream::from_static(b"d")).send().await.unwrap();
    assert_eq!(settled(&east, "lc-src", "doc").await, Some(ReplicationStatus::Completed));
    put_rules(&east, "lc-src", vec![rule("all").filter(prefix("")).expiration(expire_after(1)).build().unwrap()])
        .await
        .unwrap();
    eventually(WITHIN, "the source object expires", || async { (!exists(&east, "lc-src", "doc").await).then_some(()) })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(exists(&west, "lc-dst", "doc").await, "the replica stays: lifecycle deletions do not replicate");
}
