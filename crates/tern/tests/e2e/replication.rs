//! Bucket replication configuration and the outbox, through aws-sdk-s3.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination,
    ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus, ReplicationStatus,
    VersioningConfiguration,
};

use crate::{EAST, WEST, code, two_regions};

const ROLE: &str = "arn:aws:iam::000000000000:role/replication";

async fn versioned(s3: &Client, name: &str, region: &str) {
    let mut create = s3.create_bucket().bucket(name);
    if region != EAST {
        let location = aws_sdk_s3::types::BucketLocationConstraint::from(region);
        let config = aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(location).build();
        create = create.create_bucket_configuration(config);
    }
    create.send().await.unwrap();
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(name).versioning_configuration(enabled).send().await.unwrap();
}

fn rule(id: &str, priority: i32, prefix: &str, destination: &str) -> ReplicationRule {
    ReplicationRule::builder()
        .id(id)
        .priority(priority)
        .status(ReplicationRuleStatus::Enabled)
        .filter(ReplicationRuleFilter::builder().prefix(prefix).build())
        .delete_marker_replication(
            DeleteMarkerReplication::builder().status(DeleteMarkerReplicationStatus::Disabled).build(),
        )
        .destination(Destination::builder().bucket(format!("arn:aws:s3:::{destination}")).build().unwrap())
        .build()
        .unwrap()
}

fn config(rules: Vec<ReplicationRule>) -> ReplicationConfiguration {
    ReplicationConfiguration::builder().role(ROLE).set_rules(Some(rules)).build().unwrap()
}

async fn create_role(tern: &tern_testkit::Deployment) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let form = [
        ("Action", "CreateRole"),
        ("Version", "2010-05-08"),
        ("RoleName", "replication"),
        ("AssumeRolePolicyDocument", trust),
    ];
    tern.iam_call(EAST, &form).await.expect("role created");
}

#[tokio::test]
async fn configurations_are_validated_as_aws_does_and_round_trip() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "src", EAST).await;
    versioned(&west, "dst", WEST).await;
    east.create_bucket().bucket("plain").send().await.unwrap();
    west.create_bucket()
        .bucket("dst-unversioned")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(WEST))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let put = |bucket: &str, c: ReplicationConfiguration| {
        east.put_bucket_replication().bucket(bucket).replication_configuration(c).send()
    };
    let e = put("src", config(vec![rule("r", 1, "", "dst")])).await.unwrap_err();
    assert_eq!(code(&e), "InvalidArgument", "the role must exist");
    create_role(&tern).await;
    put("src", config(vec![rule("docs", 2, "docs/", "dst"), rule("all", 1, "", "dst")])).await.unwrap();

    for (bucket, c, expected) in [
        ("plain", config(vec![rule("r", 1, "", "dst")]), "InvalidRequest"),
        ("src", config(vec![rule("r", 1, "", "missing-bucket")]), "InvalidRequest"),
        ("src", config(vec![rule("r", 1, "", "dst-unversioned")]), "InvalidRequest"),
        ("src", config(vec![rule("a", 1, "", "dst"), rule("b", 1, "x/", "dst")]), "InvalidRequest"),
    ] {
        let e = put(bucket, c).await.unwrap_err();
        assert_eq!(code(&e), expected);
    }
    let stored = east.get_bucket_replication().bucket("src").send().await.unwrap();
    let rules = stored.replication_configuration().unwrap().rules();
    assert_eq!(rules.iter().map(|r| r.id().unwrap()).collect::<Vec<_>>(), ["docs", "all"], "refusals changed nothing");
    assert_eq!(rules[0].filter().unwrap().prefix(), Some("docs/"));

    east.delete_bucket_replication().bucket("src").send().await.unwrap();
    let e = east.get_bucket_replication().bucket("src").send().await.unwrap_err();
    assert_eq!(code(&e), "ReplicationConfigurationNotFoundError");
}

#[tokio::test]
async fn matching_versions_get_their_outbox_tasks_in_the_same_commit() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "outbox-src", EAST).await;
    versioned(&west, "outbox-dst", WEST).await;
    create_role(&tern).await;
    let c = config(vec![rule("docs", 1, "docs/", "outbox-dst")]);
    east.put_bucket_replication().bucket("outbox-src").replication_configuration(c).send().await.unwrap();
    for key in ["docs/a", "images/b"] {
        east.put_object().bucket("outbox-src").key(key).body(ByteStream::from_static(b"x")).send().await.unwrap();
    }
    let head = east.head_object().bucket("outbox-src").key("docs/a").send().await.unwrap();
    assert!(
        matches!(head.replication_status(), Some(ReplicationStatus::Pending | ReplicationStatus::Completed)),
        "{:?}",
        head.replication_status()
    );
    let head = east.head_object().bucket("outbox-src").key("images/b").send().await.unwrap();
    assert_eq!(head.replication_status(), None, "outside every rule's filter");
}
