//! Moving up, as a new user would: `tern up`, some data, stop,
//! `tern store migrate` each region into PostgreSQL (and its bytes into a
//! shared directory), point the deployment file at them, start each region
//! with `tern server`: every object, version, key, user, upload in progress
//! and the replication state are still there, and replication goes on.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};

use crate::replication::{READ_AND_REPLICATE, replicate, rule, settled, status_report, versioned};
use crate::{EAST, WEST, body_of, pattern, two_regions};

fn migrate(tern: &tern_testkit::Deployment, region: &str, database: &str, blobs: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["store", "migrate", "--region", region, "--to", database, "--blobs", blobs, "--config"])
        .arg(tern.config_path())
        .output()
        .expect("tern runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    said
}

#[tokio::test]
async fn an_embedded_deployment_moves_to_postgres_and_keeps_everything() {
    let Some(admin) = tern_store::contract::postgres_setting("TERN_TEST_POSTGRES_URL") else { return };
    let mut tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "keep", EAST).await;
    versioned(&west, "keep-copy", WEST).await;
    let role = tern.replication_role(EAST, "keep", READ_AND_REPLICATE).await.unwrap();
    replicate(&east, "keep", &role, vec![rule("all", 1, "replicated/", "keep-copy")]).await;
    let first = east.put_object().bucket("keep").key("doc").body(ByteStream::from_static(b"v1")).send().await.unwrap();
    east.put_object().bucket("keep").key("doc").body(ByteStream::from_static(b"v2")).send().await.unwrap();
    east.put_object().bucket("keep").key("big").body(ByteStream::from(pattern(300_000, 4))).send().await.unwrap();
    let key = tern.kms(EAST).create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let sealed = east.put_object().bucket("keep").key("sealed").body(ByteStream::from_static(b"secret"));
    sealed.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(&key).send().await.unwrap();
    let copied = east.put_object().bucket("keep").key("replicated/a").body(ByteStream::from_static(b"a"));
    copied.send().await.unwrap();
    assert_eq!(settled(&east, "keep", "replicated/a").await, Some(aws_sdk_s3::types::ReplicationStatus::Completed));
    let upload = east.create_multipart_upload().bucket("keep").key("open").send().await.unwrap();
    let upload_id = upload.upload_id().unwrap().to_owned();
    let part = east.upload_part().bucket("keep").key("open").upload_id(&upload_id).part_number(1);
    let part_one = part.body(ByteStream::from(pattern(5 << 20, 1))).send().await.unwrap();
    let bob = tern
        .user("bob", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::keep/*"}]}"#)
        .await
        .unwrap();
    let before = status_report(&tern, "keep");
    tern.stop().await.unwrap();

    for region in [EAST, WEST] {
        let database = tern_store::contract::fresh_database(&admin.to_string_lossy()).await;
        let shared = tern.data_dir().with_file_name(format!("shared-{region}"));
        let blobs = format!("file://{}", shared.display());
        let said = migrate(&tern, region, &database, &blobs);
        assert!(said.contains("metadata: copied and verified"), "{said}");
        assert!(said.contains(&format!("blobs = \"{blobs}\"")), "it says what to configure: {said}");
        let again = migrate(&tern, region, &database, &blobs);
        assert!(again.contains("metadata: already there"), "a second run changes nothing: {again}");
        tern.add_region_settings(region, &format!("metadata = \"{database}\"\nblobs = \"{blobs}\"")).unwrap();
    }
    tern.start_region(EAST).await.unwrap();
    tern.start_region(WEST).await.unwrap();

    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    assert_eq!(body_of(&east, "keep", "doc").await, b"v2");
    let v1 = east.get_object().bucket("keep").key("doc").version_id(first.version_id().unwrap()).send().await.unwrap();
    assert_eq!(v1.body.collect().await.unwrap().into_bytes().as_ref(), b"v1");
    assert_eq!(body_of(&east, "keep", "big").await, pattern(300_000, 4));
    assert_eq!(body_of(&east, "keep", "sealed").await, b"secret", "KMS keys moved with the metadata");
    assert_eq!(body_of(&tern.s3_as(&bob, EAST), "keep", "doc").await, b"v2", "IAM moved too");
    assert_eq!(body_of(&west, "keep-copy", "replicated/a").await, b"a");
    assert_eq!(status_report(&tern, "keep")["counts"], before["counts"], "replication state is as it was");

    let part = east.upload_part().bucket("keep").key("open").upload_id(&upload_id).part_number(2);
    let part_two = part.body(ByteStream::from_static(b"end")).send().await.unwrap();
    let parts = [(1, part_one.e_tag().unwrap()), (2, part_two.e_tag().unwrap())]
        .map(|(n, etag)| CompletedPart::builder().part_number(n).e_tag(etag).build());
    let all = CompletedMultipartUpload::builder().set_parts(Some(parts.to_vec())).build();
    let complete = east.complete_multipart_upload().bucket("keep").key("open").upload_id(&upload_id);
    complete.multipart_upload(all).send().await.expect("the upload in progress goes on");
    assert_eq!(body_of(&east, "keep", "open").await, [pattern(5 << 20, 1), b"end".to_vec()].concat());

    east.put_object().bucket("keep").key("replicated/b").body(ByteStream::from_static(b"b")).send().await.unwrap();
    assert_eq!(settled(&east, "keep", "replicated/b").await, Some(aws_sdk_s3::types::ReplicationStatus::Completed));
    assert_eq!(body_of(&west, "keep-copy", "replicated/b").await, b"b");
}
