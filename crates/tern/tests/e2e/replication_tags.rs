//! Tag changes made after a version replicated, and `ReplicaModifications`:
//! two-way sync of edits made on replicas.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ReplicaModifications, ReplicaModificationsStatus, ReplicationStatus, SourceSelectionCriteria, Tag, Tagging,
};

use crate::replication::{READ_AND_REPLICATE, cli, replicate, rule, settled, status_report, versioned};
use crate::{EAST, WEST, two_regions};

type Tags = Vec<(String, String)>;

fn tagging(pairs: &[(&str, &str)]) -> Tagging {
    let tags = pairs.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap()).collect();
    Tagging::builder().set_tag_set(Some(tags)).build().unwrap()
}

fn owned(pairs: &[(&str, &str)]) -> Tags {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

async fn tags_of(s3: &Client, bucket: &str, key: &str) -> Tags {
    let out = s3.get_object_tagging().bucket(bucket).key(key).send().await.unwrap();
    out.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect()
}

/// Waits until `key`'s tags are `expected`, and returns them.
async fn tags_become(s3: &Client, bucket: &str, key: &str, expected: &[(&str, &str)]) -> Tags {
    let what = format!("{bucket}/{key} has the tags {expected:?}");
    tern_testkit::eventually(crate::replication::REPLICATION_WITHIN, &what, || async {
        let seen = tags_of(s3, bucket, key).await;
        (seen == owned(expected)).then_some(seen)
    })
    .await
}

#[tokio::test]
async fn tag_changes_replicate_and_replica_modifications_carry_edits_back() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "tw-a", EAST).await;
    versioned(&west, "tw-b", WEST).await;
    let actions = r#"["s3:GetObjectVersionForReplication","s3:GetObjectVersionTagging","s3:ReplicateObject",
        "s3:ReplicateTags"]"#;
    let role = tern.replication_role(EAST, "two-way", actions).await.expect("role created");
    replicate(&east, "tw-a", &role, vec![rule("to-b", 1, "", "tw-b")]).await;
    let modifications = ReplicaModifications::builder().status(ReplicaModificationsStatus::Enabled).build().unwrap();
    let criteria = SourceSelectionCriteria::builder().replica_modifications(modifications).build();
    let mut to_a = rule("to-a", 1, "", "tw-a");
    to_a.source_selection_criteria = Some(criteria);
    replicate(&west, "tw-b", &role, vec![to_a]).await;

    let body = ByteStream::from_static(b"draft text");
    east.put_object().bucket("tw-a").key("doc").tagging("stage=draft").body(body).send().await.unwrap();
    assert_eq!(settled(&east, "tw-a", "doc").await, Some(ReplicationStatus::Completed));
    assert_eq!(tags_of(&west, "tw-b", "doc").await, owned(&[("stage", "draft")]), "tags travel with the object");

    let edit = tagging(&[("stage", "final")]);
    east.put_object_tagging().bucket("tw-a").key("doc").tagging(edit).send().await.unwrap();
    let seen = tags_become(&west, "tw-b", "doc", &[("stage", "final")]).await;
    assert_eq!(seen, owned(&[("stage", "final")]), "a change after replication follows the version");
    assert_eq!(settled(&east, "tw-a", "doc").await, Some(ReplicationStatus::Completed));

    let edit = tagging(&[("stage", "reviewed"), ("by", "west")]);
    west.put_object_tagging().bucket("tw-b").key("doc").tagging(edit).send().await.unwrap();
    let seen = tags_become(&east, "tw-a", "doc", &[("stage", "reviewed"), ("by", "west")]).await;
    assert_eq!(seen, owned(&[("stage", "reviewed"), ("by", "west")]), "ReplicaModifications carries it back");
    let replica = settled(&west, "tw-b", "doc").await;
    assert_eq!(replica, Some(ReplicationStatus::Replica), "a replica whose change went back is a replica again");
    assert_eq!(tags_of(&west, "tw-b", "doc").await, owned(&[("stage", "reviewed"), ("by", "west")]));

    east.delete_object_tagging().bucket("tw-a").key("doc").send().await.unwrap();
    assert_eq!(tags_become(&west, "tw-b", "doc", &[]).await, Tags::new(), "deleting the tags replicates too");
}

#[tokio::test]
async fn tags_replicate_only_as_far_as_the_role_may_read_and_write_them() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "tp-src", EAST).await;
    versioned(&west, "tp-dst", WEST).await;
    let role = tern.replication_role(EAST, "tags-perm", READ_AND_REPLICATE).await.expect("role created");
    replicate(&east, "tp-src", &role, vec![rule("all", 1, "", "tp-dst")]).await;
    let body = ByteStream::from_static(b"x");
    east.put_object().bucket("tp-src").key("t").tagging("a=1").body(body).send().await.unwrap();
    assert_eq!(settled(&east, "tp-src", "t").await, Some(ReplicationStatus::Completed));
    assert_eq!(tags_of(&west, "tp-dst", "t").await, Tags::new(), "without the tagging read, tags stay home");

    let failure = || status_report(&tern, "tp-src")["failed"][0].clone();
    east.put_object_tagging().bucket("tp-src").key("t").tagging(tagging(&[("a", "2")])).send().await.unwrap();
    assert_eq!(settled(&east, "tp-src", "t").await, Some(ReplicationStatus::Failed));
    assert_eq!(failure()["reason"], "SrcGetTaggingNotPermitted");

    let with_read = r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject","s3:GetObjectVersionTagging"]"#;
    tern.allow_role(EAST, "tags-perm", with_read).await.expect("policy set");
    cli(&tern, &["retry", "--bucket", "tp-src"]);
    assert_eq!(settled(&east, "tp-src", "t").await, Some(ReplicationStatus::Failed));
    let failed = failure();
    assert_eq!(failed["reason"], "DstPutTaggingNotPermitted", "{failed}");
    assert!(failed["hint"].as_str().unwrap().contains("s3:ReplicateTags on arn:aws:s3:::tp-dst/*"), "{failed}");

    let everything = r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject","s3:GetObjectVersionTagging",
        "s3:ReplicateTags"]"#;
    tern.allow_role(EAST, "tags-perm", everything).await.expect("policy set");
    cli(&tern, &["retry", "--bucket", "tp-src"]);
    assert_eq!(settled(&east, "tp-src", "t").await, Some(ReplicationStatus::Completed));
    assert_eq!(tags_of(&west, "tp-dst", "t").await, owned(&[("a", "2")]));
}
