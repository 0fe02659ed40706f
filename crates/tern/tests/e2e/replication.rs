//! Bucket replication configuration and the outbox, through aws-sdk-s3.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination,
    ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus, ReplicationStatus,
    VersioningConfiguration,
};

use std::time::Duration;

use tern_testkit::eventually;

use crate::{EAST, WEST, code, two_regions};

const ROLE: &str = "arn:aws:iam::000000000000:role/replication";
/// What a role needs to replicate unencrypted and SSE-S3 objects.
pub(crate) const READ_AND_REPLICATE: &str = r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject"]"#;

pub(crate) async fn versioned(s3: &Client, name: &str, region: &str) {
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

pub(crate) fn rule(id: &str, priority: i32, prefix: &str, destination: &str) -> ReplicationRule {
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

/// Gives `bucket` (in the region `s3` serves) the replication `rules` of `role`.
pub(crate) async fn replicate(s3: &Client, bucket: &str, role: &str, rules: Vec<ReplicationRule>) {
    let c = ReplicationConfiguration::builder().role(role).set_rules(Some(rules)).build().unwrap();
    s3.put_bucket_replication().bucket(bucket).replication_configuration(c).send().await.unwrap();
}

fn config(rules: Vec<ReplicationRule>) -> ReplicationConfiguration {
    ReplicationConfiguration::builder().role(ROLE).set_rules(Some(rules)).build().unwrap()
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
    tern.s3_service_role(EAST, "replication").await.expect("role created");
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
    tern.s3_service_role(EAST, "replication").await.expect("role created");
    let c = config(vec![rule("docs", 1, "docs/", "outbox-dst")]);
    east.put_bucket_replication().bucket("outbox-src").replication_configuration(c).send().await.unwrap();
    for key in ["docs/a", "images/b"] {
        east.put_object().bucket("outbox-src").key(key).body(ByteStream::from_static(b"x")).send().await.unwrap();
    }
    let head = east.head_object().bucket("outbox-src").key("docs/a").send().await.unwrap();
    assert!(head.replication_status().is_some(), "the version has replication tasks");
    let head = east.head_object().bucket("outbox-src").key("images/b").send().await.unwrap();
    assert_eq!(head.replication_status(), None, "outside every rule's filter");
}

/// How long replication may take in these tests.
pub(crate) const REPLICATION_WITHIN: Duration = Duration::from_secs(20);

/// The source's `x-amz-replication-status` once it leaves PENDING.
pub(crate) async fn settled(s3: &Client, bucket: &str, key: &str) -> Option<ReplicationStatus> {
    eventually(REPLICATION_WITHIN, &format!("{bucket}/{key} leaves PENDING"), || async {
        let head = s3.head_object().bucket(bucket).key(key).send().await.unwrap();
        let status = head.replication_status().cloned();
        (status != Some(ReplicationStatus::Pending)).then_some(status)
    })
    .await
}

/// Proves that nothing more replicates from `bucket`: a later object under
/// the same rule arrives, and then exactly one more task has completed
/// (the later object's), none failed and none is pending. A look after a
/// pause would pass on a slow machine without testing anything.
pub(crate) async fn nothing_more_replicates(
    tern: &tern_testkit::Deployment,
    (source, bucket): (&Client, &str),
    (destination, destination_bucket): (&Client, &str),
    key: &str,
) {
    let completed = status_report(tern, bucket)["counts"]["COMPLETED"].as_u64().unwrap();
    source.put_object().bucket(bucket).key(key).body(ByteStream::from_static(b"later")).send().await.unwrap();
    assert_eq!(settled(source, bucket, key).await, Some(ReplicationStatus::Completed));
    assert!(destination.head_object().bucket(destination_bucket).key(key).send().await.is_ok());
    let counts = &status_report(tern, bucket)["counts"];
    assert_eq!(
        (counts["COMPLETED"].as_u64(), counts["FAILED"].as_u64(), counts["PENDING"].as_u64()),
        (Some(completed + 1), Some(0), Some(0)),
        "only the later object replicated"
    );
}

#[tokio::test]
async fn objects_replicate_as_the_role_with_their_identity() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "crr-src", EAST).await;
    versioned(&west, "crr-dst", WEST).await;
    let role = tern
        .replication_role(
            EAST,
            "crr",
            r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject","s3:ReplicateDelete"]"#,
        )
        .await
        .expect("role created");
    let rules = vec![rule("all", 1, "", "crr-dst")];
    replicate(&east, "crr-src", &role, rules).await;

    let big = crate::pattern(300_000, 7);
    for (key, body) in [("small", b"tiny".to_vec()), ("dir/big", big.clone())] {
        let put = east
            .put_object()
            .bucket("crr-src")
            .key(key)
            .content_type("text/plain")
            .metadata("owner", "ops")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(settled(&east, "crr-src", key).await, Some(ReplicationStatus::Completed), "{key}");
        let replica = west.get_object().bucket("crr-dst").key(key).send().await.unwrap();
        assert_eq!(replica.version_id(), put.version_id(), "the replica keeps the version id");
        assert_eq!(replica.e_tag(), put.e_tag(), "and the ETag");
        assert_eq!(replica.replication_status(), Some(&ReplicationStatus::Replica));
        assert_eq!(replica.metadata().unwrap().get("owner").map(String::as_str), Some("ops"));
        assert_eq!(replica.content_type(), Some("text/plain"));
        assert_eq!(replica.body.collect().await.unwrap().into_bytes().to_vec(), body);
    }
    let metrics = reqwest::get(format!("{}/_tern/metrics", tern.endpoint(EAST))).await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("tern_replication_latency_seconds_count{")
            && l.contains(r#"destination="crr-dst""#)
            && l.ends_with(" 2")),
        "{metrics}"
    );
    east.delete_object().bucket("crr-src").key("small").send().await.unwrap();
    nothing_more_replicates(&tern, (&east, "crr-src"), (&west, "crr-dst"), "later").await;
    assert!(
        west.get_object().bucket("crr-dst").key("small").send().await.is_ok(),
        "markers stay home (DeleteMarkerReplication Disabled)"
    );
}

#[tokio::test]
async fn a_role_the_destination_refuses_fails_with_the_aws_reason() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "deny-src", EAST).await;
    versioned(&west, "deny-dst", WEST).await;
    let role = tern
        .replication_role(EAST, "readonly", r#"["s3:GetObjectVersionForReplication"]"#)
        .await
        .expect("role created");
    replicate(&east, "deny-src", &role, vec![rule("r", 1, "", "deny-dst")]).await;
    east.put_object().bucket("deny-src").key("k").body(ByteStream::from_static(b"x")).send().await.unwrap();
    assert_eq!(settled(&east, "deny-src", "k").await, Some(ReplicationStatus::Failed));
    let e = west.head_object().bucket("deny-dst").key("k").send().await.unwrap_err();
    assert_eq!(crate::status(&e), 404, "nothing was written at the destination");

    let report = status_report(&tern, "deny-src");
    assert_eq!(report["counts"]["FAILED"], 1);
    let failed = &report["failed"][0];
    assert_eq!((failed["key"].as_str(), failed["reason"].as_str()), (Some("k"), Some("DstPutObjectNotPermitted")));
    assert!(failed["hint"].as_str().unwrap().contains("s3:ReplicateObject"), "{failed}");
    assert!(cli(&tern, &["status", "--bucket", "deny-src"]).contains("fix: allow"));
    let metrics = reqwest::get(format!("{}/_tern/metrics", tern.endpoint(EAST))).await.unwrap().text().await.unwrap();
    let failed_series = metrics
        .lines()
        .find(|l| l.starts_with("tern_replication_failed_operations_total{") && l.contains("DstPutObjectNotPermitted"))
        .unwrap_or_default();
    assert!(failed_series.contains(r#"bucket="deny-src""#) && failed_series.ends_with(" 1"), "{metrics}");

    tern.allow_role(EAST, "readonly", READ_AND_REPLICATE).await.expect("role policy set");
    assert!(cli(&tern, &["retry", "--bucket", "deny-src"]).contains("re-queued 1"));
    let again = settled(&east, "deny-src", "k").await;
    assert_eq!(again, Some(ReplicationStatus::Completed), "AWS never retries FAILED; Tern does when asked");
    assert!(west.head_object().bucket("deny-dst").key("k").send().await.is_ok());
}

/// Runs `tern replication <args>` against us-east-1 as an operator would.
pub(crate) fn cli(tern: &tern_testkit::Deployment, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("replication")
        .args(args)
        .args(["--endpoint", &tern.endpoint(EAST)])
        .env("AWS_ACCESS_KEY_ID", tern_testkit::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", tern_testkit::SECRET_KEY)
        .env("AWS_REGION", EAST)
        .output()
        .expect("tern runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `tern replication status --json` of a bucket in EAST.
pub(crate) fn status_report(tern: &tern_testkit::Deployment, bucket: &str) -> serde_json::Value {
    serde_json::from_str(&cli(tern, &["status", "--bucket", bucket, "--json"])).unwrap()
}

async fn key_arn(tern: &tern_testkit::Deployment, region: &str) -> String {
    tern.kms(region).create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap()
}

fn kms_rule(destination: &str, replica_key: &str) -> ReplicationRule {
    kms_rule_for(("kms", 1, ""), destination, replica_key)
}

/// A rule `(id, priority, prefix)` that replicates SSE-KMS objects too,
/// re-encrypted under `replica_key`.
pub(crate) fn kms_rule_for(
    (id, priority, prefix): (&str, i32, &str),
    destination: &str,
    replica_key: &str,
) -> ReplicationRule {
    use aws_sdk_s3::types::{
        EncryptionConfiguration, SourceSelectionCriteria, SseKmsEncryptedObjects, SseKmsEncryptedObjectsStatus,
    };
    let sse = SseKmsEncryptedObjects::builder().status(SseKmsEncryptedObjectsStatus::Enabled).build().unwrap();
    let destination = Destination::builder()
        .bucket(format!("arn:aws:s3:::{destination}"))
        .encryption_configuration(EncryptionConfiguration::builder().replica_kms_key_id(replica_key).build())
        .build()
        .unwrap();
    let mut rule = rule(id, priority, prefix, "unused");
    rule.destination = Some(destination);
    rule.source_selection_criteria = Some(SourceSelectionCriteria::builder().sse_kms_encrypted_objects(sse).build());
    rule
}

#[tokio::test]
async fn sse_kms_objects_are_re_encrypted_under_the_replica_key_with_the_roles_permissions() {
    use aws_sdk_s3::types::ServerSideEncryption;
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "kms-src", EAST).await;
    versioned(&west, "kms-dst", WEST).await;
    let (source_key, replica_key) = (key_arn(&tern, EAST).await, key_arn(&tern, WEST).await);
    let actions = r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject","kms:Decrypt","kms:GenerateDataKey"]"#;
    let role = tern.replication_role(EAST, "kms-crr", actions).await.expect("role created");
    replicate(&east, "kms-src", &role, vec![kms_rule("kms-dst", &replica_key)]).await;
    let put = |key: &'static str| {
        east.put_object()
            .bucket("kms-src")
            .key(key)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&source_key)
            .body(ByteStream::from(crate::pattern(200_000, 3)))
            .send()
    };
    put("a").await.unwrap();
    assert_eq!(settled(&east, "kms-src", "a").await, Some(ReplicationStatus::Completed), "{}", tern.log());
    let replica = west.get_object().bucket("kms-dst").key("a").send().await.unwrap();
    assert_eq!(replica.ssekms_key_id(), Some(replica_key.as_str()), "the replica is under the destination's key");
    assert_eq!(replica.body.collect().await.unwrap().into_bytes().to_vec(), crate::pattern(200_000, 3));

    tern.kms(WEST).schedule_key_deletion().key_id(&replica_key).pending_window_in_days(7).send().await.unwrap();
    put("b").await.unwrap();
    assert_eq!(settled(&east, "kms-src", "b").await, Some(ReplicationStatus::Failed));
    assert_eq!(status_report(&tern, "kms-src")["failed"][0]["reason"], "DstKmsKeyInvalidState");
}

#[tokio::test]
async fn delete_markers_replicate_when_the_rule_says_so_and_version_deletes_never() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "dm-src", EAST).await;
    versioned(&west, "dm-dst", WEST).await;
    let role = tern
        .replication_role(
            EAST,
            "dm",
            r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject","s3:ReplicateDelete"]"#,
        )
        .await
        .expect("role created");
    let mut with_markers = rule("all", 1, "", "dm-dst");
    with_markers.delete_marker_replication =
        Some(DeleteMarkerReplication::builder().status(DeleteMarkerReplicationStatus::Enabled).build());
    replicate(&east, "dm-src", &role, vec![with_markers]).await;
    let put = east.put_object().bucket("dm-src").key("k").body(ByteStream::from_static(b"v1")).send().await.unwrap();
    assert_eq!(settled(&east, "dm-src", "k").await, Some(ReplicationStatus::Completed));
    let marker = east.delete_object().bucket("dm-src").key("k").send().await.unwrap();
    let marker_id = marker.version_id().unwrap().to_owned();
    let seen = eventually(REPLICATION_WITHIN, "the delete marker replicates", || async {
        let versions = west.list_object_versions().bucket("dm-dst").send().await.unwrap();
        versions.delete_markers().first().map(|m| m.version_id().map(str::to_owned))
    })
    .await;
    assert_eq!(seen.as_deref(), Some(marker_id.as_str()), "the marker replicated with its version id");
    east.delete_object().bucket("dm-src").key("k").version_id(put.version_id().unwrap()).send().await.unwrap();
    nothing_more_replicates(&tern, (&east, "dm-src"), (&west, "dm-dst"), "later").await;
    let kept = west.get_object().bucket("dm-dst").key("k").version_id(put.version_id().unwrap()).send().await;
    assert!(kept.is_ok(), "a version-specific delete is never replicated");
}

#[tokio::test]
async fn a_source_killed_mid_replication_resumes_and_loses_nothing() {
    let mut tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "crash-src", EAST).await;
    versioned(&west, "crash-dst", WEST).await;
    let role = tern.replication_role(EAST, "crash", READ_AND_REPLICATE).await.expect("role created");
    replicate(&east, "crash-src", &role, vec![rule("all", 1, "", "crash-dst")]).await;
    let objects = 1000;
    futures::future::join_all((0..objects).map(|i| {
        let east = east.clone();
        async move {
            let body = format!("object {i}").into_bytes();
            east.put_object()
                .bucket("crash-src")
                .key(format!("o{i:04}"))
                .body(ByteStream::from(body))
                .send()
                .await
                .unwrap();
        }
    }))
    .await;
    tern.restart().await.expect("restarted after kill -9 in the middle of replicating");
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    eventually(REPLICATION_WITHIN, "every acknowledged object replicates after the crash", || async {
        (status_report(&tern, "crash-src")["counts"]["COMPLETED"] == objects).then_some(())
    })
    .await;
    let mut versions = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = west.list_object_versions().bucket("crash-dst").set_key_marker(marker.clone()).send().await.unwrap();
        versions.extend(page.versions().iter().map(|v| v.key().unwrap().to_owned()));
        if page.is_truncated() != Some(true) {
            break;
        }
        marker = page.next_key_marker().map(str::to_owned);
    }
    assert_eq!(versions.len(), 1000, "none duplicated");
    versions.dedup();
    assert_eq!(versions.len(), 1000, "one version per key");
    for i in [0, 499, 999] {
        let key = format!("o{i:04}");
        let got = crate::body_of(&west, "crash-dst", &key).await;
        assert_eq!(got, format!("object {i}").into_bytes());
    }
    let head = east.head_object().bucket("crash-src").key("o0500").send().await.unwrap();
    assert_eq!(head.replication_status(), Some(&ReplicationStatus::Completed));
}

fn blob_contents(tern: &tern_testkit::Deployment, region: &str) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = crate::files_under(&tern.data_dir().join(region).join("blobs").join("blobs"))
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn mrk_objects_replicate_sealed_under_the_destinations_replica_key() {
    use aws_sdk_s3::types::ServerSideEncryption;
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "mrk-src", EAST).await;
    versioned(&west, "mrk-dst", WEST).await;
    let mrk = tern.kms(EAST).create_key().multi_region(true).send().await.unwrap().key_metadata.unwrap().key_id;
    tern.kms(EAST).replicate_key().key_id(&mrk).replica_region(WEST).send().await.unwrap();
    let (east_arn, west_arn) =
        (format!("arn:aws:kms:{EAST}:000000000000:key/{mrk}"), format!("arn:aws:kms:{WEST}:000000000000:key/{mrk}"));
    let role = tern
        .replication_role(
            EAST,
            "mrk-crr",
            r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject","kms:Decrypt"]"#,
        )
        .await
        .expect("role created");
    replicate(&east, "mrk-src", &role, vec![kms_rule("mrk-dst", &west_arn)]).await;
    let put = |key: &'static str, len: usize| {
        east.put_object()
            .bucket("mrk-src")
            .key(key)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&east_arn)
            .body(ByteStream::from(crate::pattern(len, 9)))
            .send()
    };
    put("refused", 1000).await.unwrap();
    assert_eq!(
        settled(&east, "mrk-src", "refused").await,
        Some(ReplicationStatus::Failed),
        "no kms:GenerateDataKey on the replica key"
    );

    tern.allow_role(
        EAST,
        "mrk-crr",
        r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject","kms:Decrypt","kms:GenerateDataKey"]"#,
    )
    .await
    .expect("role policy set");
    for (key, len) in [("small", 1000), ("big", 300_000)] {
        put(key, len).await.unwrap();
        assert_eq!(settled(&east, "mrk-src", key).await, Some(ReplicationStatus::Completed), "{}", tern.log());
        let replica = west.get_object().bucket("mrk-dst").key(key).send().await.unwrap();
        assert_eq!(
            replica.ssekms_key_id(),
            Some(west_arn.as_str()),
            "the replica reports the destination's MRK replica"
        );
        assert_eq!(replica.body.collect().await.unwrap().into_bytes().to_vec(), crate::pattern(len, 9));
    }
    assert_eq!(
        blob_contents(&tern, EAST),
        blob_contents(&tern, WEST),
        "the sealed bytes crossed as they were: nothing re-encrypted"
    );
}

#[tokio::test]
async fn sse_c_objects_replicate_sealed_and_need_the_customer_key_to_read() {
    use base64::Engine as _;
    use md5::Digest as _;
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "ssec-src", EAST).await;
    versioned(&west, "ssec-dst", WEST).await;
    let role = tern.replication_role(EAST, "ssec-crr", READ_AND_REPLICATE).await.expect("role created");
    replicate(&east, "ssec-src", &role, vec![rule("all", 1, "", "ssec-dst")]).await;
    let key = [0x42u8; 32];
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (key_b64, md5_b64) = (b64(&key), b64(md5::Md5::digest(key).as_slice()));
    east.put_object()
        .bucket("ssec-src")
        .key("k")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&md5_b64)
        .body(ByteStream::from(crate::pattern(200_000, 4)))
        .send()
        .await
        .unwrap();
    let head = east
        .head_object()
        .bucket("ssec-src")
        .key("k")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&md5_b64);
    let status = eventually(REPLICATION_WITHIN, "the SSE-C object leaves PENDING", || async {
        let status = head.clone().send().await.unwrap().replication_status().cloned();
        (status != Some(ReplicationStatus::Pending)).then_some(status)
    })
    .await;
    assert_eq!(status, Some(ReplicationStatus::Completed));
    assert!(
        west.get_object().bucket("ssec-dst").key("k").send().await.is_err(),
        "the replica needs the customer key too"
    );
    let replica = west
        .get_object()
        .bucket("ssec-dst")
        .key("k")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&md5_b64)
        .send()
        .await
        .unwrap();
    assert_eq!(replica.body.collect().await.unwrap().into_bytes().to_vec(), crate::pattern(200_000, 4));
}

#[tokio::test]
async fn existing_objects_are_backfilled_when_the_rule_asks() {
    use aws_sdk_s3::types::{ExistingObjectReplication, ExistingObjectReplicationStatus};
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "old-src", EAST).await;
    versioned(&west, "old-dst", WEST).await;
    for key in ["before-1", "before-2"] {
        east.put_object().bucket("old-src").key(key).body(ByteStream::from_static(b"old")).send().await.unwrap();
    }
    let role = tern.replication_role(EAST, "old", READ_AND_REPLICATE).await.expect("role created");
    let mut backfilling = rule("all", 1, "", "old-dst");
    backfilling.existing_object_replication =
        Some(ExistingObjectReplication::builder().status(ExistingObjectReplicationStatus::Enabled).build().unwrap());
    for _ in 0..2 {
        replicate(&east, "old-src", &role, vec![backfilling.clone()]).await;
    }
    for key in ["before-1", "before-2"] {
        assert_eq!(settled(&east, "old-src", key).await, Some(ReplicationStatus::Completed), "{key}");
        assert_eq!(crate::body_of(&west, "old-dst", key).await, b"old");
    }
    let report = status_report(&tern, "old-src");
    assert_eq!(report["counts"]["COMPLETED"], 2, "putting the configuration again replicates nothing twice");
}

/// The issue's fault test: the destination is down for a full minute while
/// writes go on, long enough for retries to reach the backoff cap.
#[tokio::test]
async fn a_minute_long_destination_outage_leaves_versions_pending_and_the_backlog_drains_by_itself() {
    const OUTAGE: std::time::Duration = std::time::Duration::from_mins(1);
    let mut tern = tern_testkit::Deployment::start_split(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST, WEST])
        .await
        .expect("one process per region");
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "outage-src", EAST).await;
    versioned(&west, "outage-dst", WEST).await;
    let role = tern.replication_role(EAST, "outage", READ_AND_REPLICATE).await.expect("role created");
    replicate(&east, "outage-src", &role, vec![rule("all", 1, "", "outage-dst")]).await;

    tern.stop_region(WEST).await.unwrap();
    let down = std::time::Instant::now();
    let mut written = 0_u64;
    while down.elapsed() < OUTAGE {
        let body = ByteStream::from(format!("during the outage {written}").into_bytes());
        east.put_object().bucket("outage-src").key(format!("k{written}")).body(body).send().await.unwrap();
        written += 1;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let report = status_report(&tern, "outage-src");
    assert_eq!(
        (report["counts"]["PENDING"].as_u64(), report["counts"]["FAILED"].as_u64()),
        (Some(written), Some(0)),
        "an outage is not a failure"
    );

    tern.start_region(WEST).await.unwrap();
    let back = std::time::Instant::now();
    eventually(OUTAGE, "the backlog drains without anyone asking", || async {
        (status_report(&tern, "outage-src")["counts"]["COMPLETED"] == written).then_some(())
    })
    .await;
    eprintln!(
        "{written} versions written during a {OUTAGE:?} outage drained {:?} after the destination returned",
        back.elapsed()
    );
    assert_eq!(crate::body_of(&west, "outage-dst", "k7").await, b"during the outage 7");
}

#[tokio::test]
async fn check_names_what_a_rule_lacks_before_any_object_fails() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "chk-src", EAST).await;
    versioned(&west, "chk-dst", WEST).await;
    let replica_key = key_arn(&tern, WEST).await;
    let role =
        tern.replication_role(EAST, "chk", r#"["s3:GetObjectVersionForReplication"]"#).await.expect("role created");
    replicate(&east, "chk-src", &role, vec![kms_rule("chk-dst", &replica_key)]).await;

    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
            .arg("replication")
            .args(args)
            .args(["--endpoint", &tern.endpoint(EAST), "--bucket", "chk-src"])
            .env("AWS_ACCESS_KEY_ID", tern_testkit::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", tern_testkit::SECRET_KEY)
            .env("AWS_REGION", EAST)
            .output()
            .expect("tern runs")
    };
    let out = run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("s3:ReplicateObject on arn:aws:s3:::chk-dst/*"), "{text}");
    assert!(text.contains(&format!("ReplicaKmsKeyID {replica_key} in {WEST}: AccessDeniedException")), "{text}");
    assert!(text.contains("kms:GenerateDataKey"), "the destination's KMS names the action: {text}");

    tern.allow_role(
        EAST,
        "chk",
        r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject","kms:Decrypt","kms:GenerateDataKey"]"#,
    )
    .await
    .expect("role policy set");
    let within = Duration::from_secs(10);
    eventually(within, "check passes once the role may", || async { run(&["check"]).status.success().then_some(()) })
        .await;
    let json: serde_json::Value = serde_json::from_slice(&run(&["check", "--json"]).stdout).unwrap();
    assert_eq!(json["rules"][0]["ok"], true);
}

#[tokio::test]
async fn one_source_replicates_to_two_regions_and_completes_when_both_have_it() {
    const THIRD: &str = "ap-south-1";
    let tern = tern_testkit::Deployment::start(env!("CARGO_BIN_EXE_tern").as_ref(), &[EAST, WEST, THIRD])
        .await
        .expect("three regions");
    let (east, west, south) = (tern.s3(EAST), tern.s3(WEST), tern.s3(THIRD));
    versioned(&east, "fan-src", EAST).await;
    versioned(&west, "fan-west", WEST).await;
    versioned(&south, "fan-south", THIRD).await;
    let role = tern.replication_role(EAST, "fan", READ_AND_REPLICATE).await.expect("role created");
    let rules = vec![rule("to-west", 1, "", "fan-west"), rule("to-south", 2, "docs/", "fan-south")];
    replicate(&east, "fan-src", &role, rules).await;
    for key in ["docs/a", "img/b"] {
        east.put_object()
            .bucket("fan-src")
            .key(key)
            .body(ByteStream::from(key.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
        assert_eq!(settled(&east, "fan-src", key).await, Some(ReplicationStatus::Completed), "{key}");
        assert_eq!(crate::body_of(&west, "fan-west", key).await, key.as_bytes());
    }
    assert_eq!(
        crate::body_of(&south, "fan-south", "docs/a").await,
        b"docs/a",
        "the docs/ rule reaches the third region"
    );
    assert!(south.head_object().bucket("fan-south").key("img/b").send().await.is_err(), "outside that rule's filter");
}
