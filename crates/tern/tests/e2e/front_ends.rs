//! A region served by several front-ends over one PostgreSQL database and
//! one blob directory: whatever is written through one is there, at once,
//! through the other: objects, versions, multipart parts, buckets, keys,
//! IAM users and policies, bucket policies.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, CompletedMultipartUpload, CompletedPart};
use tern_testkit::Deployment;

use crate::{EAST, WEST, body_of, bucket, code, pattern};

/// us-east-1 on two front-ends (`EAST` and `A2`), eu-west-1 on one, or
/// `None` without PostgreSQL.
async fn shared() -> Option<Deployment> {
    let layout = [(EAST, 2), (WEST, 1)];
    Deployment::start_shared(env!("CARGO_BIN_EXE_tern").as_ref(), &layout).await.expect("tern starts")
}

/// us-east-1's second front-end.
const A2: &str = "us-east-1#2";

#[tokio::test]
async fn objects_versions_and_uploads_written_through_one_front_end_are_read_through_the_other() {
    let Some(tern) = shared().await else { return };
    let (one, two) = (tern.s3(EAST), tern.s3(A2));
    bucket(&one, "shared").await;
    let big = pattern(3 << 20, 7);
    one.put_object().bucket("shared").key("big").body(ByteStream::from(big.clone())).send().await.unwrap();
    assert_eq!(body_of(&two, "shared", "big").await, big, "byte-exact through the other front-end");
    let listed = two.list_objects_v2().bucket("shared").send().await.unwrap();
    assert_eq!(listed.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["big"]);

    let on = aws_sdk_s3::types::VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    two.put_bucket_versioning().bucket("shared").versioning_configuration(on).send().await.unwrap();
    let first = one.put_object().bucket("shared").key("v").body(ByteStream::from_static(b"1")).send().await.unwrap();
    two.put_object().bucket("shared").key("v").body(ByteStream::from_static(b"2")).send().await.unwrap();
    assert_eq!(body_of(&one, "shared", "v").await, b"2", "the newest, whichever front-end wrote it");
    let versions = one.list_object_versions().bucket("shared").prefix("v").send().await.unwrap();
    assert_eq!(versions.versions().len(), 2);
    let old = two.get_object().bucket("shared").key("v").version_id(first.version_id().unwrap()).send().await;
    assert_eq!(old.unwrap().body.collect().await.unwrap().into_bytes().as_ref(), b"1");

    // A multipart upload whose parts go through different front-ends.
    let upload = one.create_multipart_upload().bucket("shared").key("mp").send().await.unwrap();
    let id = upload.upload_id().unwrap();
    let parts = [pattern(5 << 20, 1), pattern(1 << 20, 2)];
    let mut completed = Vec::new();
    for (n, (part, s3)) in parts.iter().zip([&two, &one]).enumerate() {
        let number = i32::try_from(n + 1).unwrap();
        let body = ByteStream::from(part.clone());
        let put = s3.upload_part().bucket("shared").key("mp").upload_id(id).part_number(number).body(body);
        let etag = put.send().await.unwrap().e_tag().unwrap().to_owned();
        completed.push(CompletedPart::builder().part_number(number).e_tag(etag).build());
    }
    let listed = one.list_parts().bucket("shared").key("mp").upload_id(id).send().await.unwrap();
    assert_eq!(listed.parts().len(), 2, "parts recorded through either front-end");
    let all = CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
    two.complete_multipart_upload()
        .bucket("shared")
        .key("mp")
        .upload_id(id)
        .multipart_upload(all)
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(&one, "shared", "mp").await, parts.concat());

    let gone = two.delete_bucket().bucket("shared").send().await.unwrap_err();
    assert_eq!(code(&gone), "BucketNotEmpty", "what one front-end wrote keeps the other from deleting");
}

#[tokio::test]
async fn keys_users_and_policies_made_through_one_front_end_hold_at_once_on_the_other() {
    let Some(tern) = shared().await else { return };
    // A key made through the second front-end protects an object written
    // through the first, at once.
    let key = tern.kms(A2).create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let one = tern.s3(EAST);
    bucket(&one, "sealed").await;
    let put = one.put_object().bucket("sealed").key("k").body(ByteStream::from_static(b"secret"));
    let put = put.server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms).ssekms_key_id(&key_id);
    put.send().await.expect("a key made a moment ago on the other front-end");
    assert_eq!(body_of(&tern.s3(A2), "sealed", "k").await, b"secret");

    // Disabled through one, refused through the other on the next call.
    tern.kms(EAST).disable_key().key_id(&key_id).send().await.unwrap();
    let plaintext = aws_sdk_kms::primitives::Blob::new(b"x".to_vec());
    let refused = tern.kms(A2).encrypt().key_id(&key_id).plaintext(plaintext).send().await.unwrap_err();
    assert_eq!(refused.as_service_error().and_then(|e| e.meta().code()), Some("DisabledException"));

    // A user made and granted through one front-end works through the other.
    let alice = tern
        .user("alice", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .await
        .unwrap();
    let as_alice = tern.s3_as(&alice, A2);
    as_alice.get_object().bucket("sealed").key("k").send().await.expect_err("no kms:Decrypt for alice");
    one.put_object().bucket("sealed").key("plain").body(ByteStream::from_static(b"p")).send().await.unwrap();
    assert_eq!(body_of(&as_alice, "sealed", "plain").await, b"p");

    // A bucket policy put through one front-end denies through the other at once…
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::sealed/*"}]}"#;
    one.put_bucket_policy().bucket("sealed").policy(deny).send().await.unwrap();
    let denied = as_alice.get_object().bucket("sealed").key("plain").send().await.unwrap_err();
    assert_eq!(code(&denied), "AccessDenied");
    // …and its removal through the other holds on the first.
    tern.s3(A2).delete_bucket_policy().bucket("sealed").send().await.unwrap();
    assert_eq!(body_of(&tern.s3_as(&alice, EAST), "sealed", "plain").await, b"p");
}

/// The three ways an object is protected, by key prefix: bytes S3 cannot
/// read (as a client-side encryption client writes them), SSE-KMS under a
/// key of this region, SSE-KMS under a multi-Region key.
const MODELS: [&str; 3] = ["opaque", "kms", "mrk"];

#[tokio::test]
async fn a_front_end_killed_mid_backlog_leaves_its_tasks_to_the_survivor_and_each_version_replicates_once() {
    use crate::replication::{kms_rule_for, replicate, rule, status_report, versioned};
    use aws_sdk_s3::types::ServerSideEncryption;
    let layout = [(EAST, 2), (WEST, 1)];
    let quick_leases = "[replication]\nlease_seconds = 3";
    let binary = env!("CARGO_BIN_EXE_tern").as_ref();
    let Some(mut tern) = Deployment::start_shared_with(binary, &layout, quick_leases).await.unwrap() else { return };
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "crr-src", EAST).await;
    versioned(&west, "crr-dst", WEST).await;
    let arn = |region: &str, id: &str| format!("arn:aws:kms:{region}:000000000000:key/{id}");
    let regional = tern.kms(EAST).create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let west_key = tern.kms(WEST).create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    let mrk = tern.kms(EAST).create_key().multi_region(true).send().await.unwrap().key_metadata.unwrap().key_id;
    tern.kms(EAST).replicate_key().key_id(&mrk).replica_region(WEST).send().await.unwrap();
    let actions = r#"["s3:GetObjectVersionForReplication","s3:ReplicateObject","kms:Decrypt","kms:GenerateDataKey"]"#;
    let role = tern.replication_role(EAST, "crr", actions).await.unwrap();
    let rules = vec![
        rule("opaque", 3, "opaque/", "crr-dst"),
        kms_rule_for(("kms", 2, "kms/"), "crr-dst", &west_key),
        kms_rule_for(("mrk", 1, "mrk/"), "crr-dst", &arn(WEST, &mrk)),
    ];
    replicate(&east, "crr-src", &role, rules).await;

    let objects: u64 = 300;
    let body = |i: usize| crate::pattern(1000 + (i % 7) * 20_000, u8::try_from(i % 251).unwrap());
    let key = |i: usize| format!("{}/{i:03}", MODELS[i % 3]);
    futures::future::join_all((0..300).map(|i| {
        let put = east.put_object().bucket("crr-src").key(key(i)).body(ByteStream::from(body(i)));
        let put = match MODELS[i % 3] {
            "kms" => put.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(&regional),
            "mrk" => put.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(arn(EAST, &mrk)),
            _ => put.metadata("x-amz-cek-alg", "AES/GCM/NoPadding"),
        };
        async move { put.send().await.expect("acknowledged") }
    }))
    .await;
    let completed = |tern: &Deployment| status_report(tern, "crr-src")["counts"]["COMPLETED"].as_u64().unwrap_or(0);
    tern_testkit::eventually(Duration::from_secs(30), "replication under way", || async {
        (completed(&tern) >= 20).then_some(())
    })
    .await;
    assert!(completed(&tern) < objects, "killed in the middle of the backlog");
    tern.stop_region(A2).await.unwrap();

    tern_testkit::eventually(Duration::from_mins(2), "the survivor finishes the backlog", || async {
        (completed(&tern) == objects).then_some(())
    })
    .await;
    let report = status_report(&tern, "crr-src");
    assert_eq!((report["counts"]["FAILED"].as_u64(), report["counts"]["PENDING"].as_u64()), (Some(0), Some(0)));
    let versions = west.list_object_versions().bucket("crr-dst").max_keys(1000).send().await.unwrap();
    let mut keys: Vec<&str> = versions.versions().iter().filter_map(|v| v.key()).collect();
    assert_eq!(keys.len(), usize::try_from(objects).unwrap(), "every version replicated exactly once");
    keys.dedup();
    assert_eq!(keys.len(), usize::try_from(objects).unwrap(), "one version per key");
    for i in [0, 1, 2, 100, 101, 299] {
        let replica = west.get_object().bucket("crr-dst").key(key(i)).send().await.unwrap();
        let expected_key = match MODELS[i % 3] {
            "kms" => Some(west_key.clone()),
            "mrk" => Some(arn(WEST, &mrk)),
            _ => None,
        };
        assert_eq!(replica.ssekms_key_id().map(str::to_owned), expected_key, "{}", key(i));
        assert_eq!(replica.body.collect().await.unwrap().into_bytes().to_vec(), body(i), "byte-exact: {}", key(i));
    }
}

/// The database of a region crashes under a stream of writes and comes
/// back: meanwhile every service answers 503 with `Retry-After` and the
/// region reports not ready; afterwards it serves again without a restart,
/// and every write it acknowledged is there, byte-exact.
#[tokio::test]
async fn a_database_crash_under_load_answers_503_loses_nothing_acknowledged_and_service_resumes() {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let Some(cluster) = tern_testkit::PgCluster::start().unwrap() else { return };
    let binary = env!("CARGO_BIN_EXE_tern").as_ref();
    let admin = cluster.admin_url().unwrap();
    let tern = Deployment::start_shared_on(binary, &[(EAST, 1)], "", &admin).await.unwrap();
    let s3 = tern.s3(EAST);
    bucket(&s3, "steady").await;

    let acknowledged: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u8)
        .map(|writer| {
            let (s3, acknowledged, done) = (s3.clone(), Arc::clone(&acknowledged), Arc::clone(&done));
            tokio::spawn(async move {
                for i in 0usize.. {
                    if done.load(Ordering::SeqCst) {
                        return;
                    }
                    let (key, body) = (format!("w{writer}/{i}"), pattern(500 + i % 3 * 40_000, writer));
                    let put = s3.put_object().bucket("steady").key(&key).body(ByteStream::from(body.clone()));
                    if put.send().await.is_ok() {
                        acknowledged.lock().unwrap().insert(key, body);
                    }
                }
            })
        })
        .collect();
    let health = format!("{}/_tern/health", tern.endpoint(EAST));
    let http = tern.http().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.crash().unwrap();

    let root = tern.root();
    let listing = tern.call_as(&root, EAST, "s3", ("GET", "/steady"), &[], Vec::new()).await.unwrap();
    assert_eq!(listing.status, 503, "{}", listing.text());
    assert!(listing.text().contains("<Code>ServiceUnavailable</Code>"), "{}", listing.text());
    assert_eq!(listing.headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
    let kms = tern.kms_as(&root, EAST, "ListKeys", "{}").await.unwrap();
    assert_eq!((kms.status, kms.headers.contains_key("retry-after")), (503, true), "{}", kms.text());
    assert!(kms.text().contains("DependencyTimeoutException"), "{}", kms.text());
    let unready = http.get(&health).send().await.unwrap();
    assert_eq!(unready.status(), 503, "not ready without its database");

    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.restart().unwrap();
    tern_testkit::eventually(Duration::from_secs(20), "ready again, without a restart", || async {
        http.get(&health).send().await.is_ok_and(|r| r.status() == 200).then_some(())
    })
    .await;
    let before = acknowledged.lock().unwrap().len();
    tern_testkit::eventually(Duration::from_secs(20), "writes acknowledged again", || async {
        (acknowledged.lock().unwrap().len() > before + 20).then_some(())
    })
    .await;
    done.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    for (key, body) in &acknowledged {
        assert_eq!(&body_of(&s3, "steady", key).await, body, "{key} was acknowledged");
    }
}

#[test]
fn an_unreachable_database_stops_the_front_end_with_one_line_naming_the_server_never_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = format!(
        "data_dir = \"{data}\"\n[[region]]\nname = \"us-east-1\"\nlisten = \"{listen}\"\n\
         metadata = \"postgres://tern:hunter2-secret@{closed}/tern_us\"\nblobs = \"file://{data}/blobs\"\n",
        data = dir.path().display()
    );
    std::fs::write(dir.path().join("tern.toml"), config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["server", "--region", EAST, "--config"])
        .arg(dir.path().join("tern.toml"))
        .env("TERN_LOG", "off")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(said.trim_end().lines().count(), 1, "{said}");
    assert!(said.contains(&format!("{closed}/tern_us")), "{said}");
    assert!(!said.contains("hunter2"), "{said}");
}

/// Text PostgreSQL cannot hold (a NUL character) is the request's fault:
/// a 400 with nothing written, as on the embedded engine, never a 500.
#[tokio::test]
async fn values_postgresql_cannot_store_are_refused_as_the_clients_mistake() {
    let Some(tern) = shared().await else { return };
    let s3 = tern.s3(EAST);
    bucket(&s3, "nul").await;
    s3.put_object().bucket("nul").key("k").body(ByteStream::from_static(b"x")).send().await.unwrap();
    let listed = s3.list_objects_v2().bucket("nul").prefix("a\0b").send().await.unwrap_err();
    assert_eq!((crate::status(&listed), code(&listed).as_str()), (400, "InvalidArgument"));
    let tags = aws_sdk_s3::types::Tagging::builder()
        .tag_set(aws_sdk_s3::types::Tag::builder().key("k").value("a\0b").build().unwrap())
        .build()
        .unwrap();
    let tagged = s3.put_object_tagging().bucket("nul").key("k").tagging(tags).send().await.unwrap_err();
    assert_eq!(code(&tagged), "InvalidTag");
    assert_eq!(body_of(&tern.s3(A2), "nul", "k").await, b"x");
}

/// A front-end whose blob mount is gone says so to the load balancer, and
/// is ready again when it is back, without a restart.
#[tokio::test]
async fn a_lost_blob_mount_makes_a_front_end_not_ready_until_it_is_back() {
    let Some(tern) = shared().await else { return };
    let health = format!("{}/_tern/health", tern.endpoint(EAST));
    let http = tern.http().unwrap();
    let status = || async { http.get(&health).send().await.unwrap().status().as_u16() };
    assert_eq!(status().await, 200);
    let mount = tern.data_dir().with_file_name(format!("blobs-{EAST}"));
    let away = mount.with_file_name("blobs-away");
    std::fs::rename(&mount, &away).unwrap();
    tern_testkit::eventually(Duration::from_secs(5), "not ready without the blob mount", || async {
        (status().await == 503).then_some(())
    })
    .await;
    std::fs::rename(&away, &mount).unwrap();
    tern_testkit::eventually(Duration::from_secs(5), "ready again", || async { (status().await == 200).then_some(()) })
        .await;
}
