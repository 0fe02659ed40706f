//! The executable contracts of [`MetaStore`] and [`BlobStore`]. Every engine
//! runs these suites; passing them is what implementing the trait means.

use bytes::Bytes;
use futures::TryStreamExt;

use crate::model::{
    BlobPart, BucketRecord, DeleteGuard, KeyStart, NULL_VERSION, NewVersion, ObjectAttrs, ObjectData, PartRecord,
    Precondition, ReplicationStatus, UploadRecord, Versioning,
};
use crate::{BlobStore, ByteStream, DocStore, DocWrite, MetaStore, StoreError, TagWrite};

fn version(bucket: &str, key: &str, version_id: &str, etag: &str, data: ObjectData) -> NewVersion {
    NewVersion {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: version_id.to_owned(),
        is_delete_marker: false,
        modified_ms: 1_700_000_000_000,
        size: 1,
        etag: etag.to_owned(),
        attrs: ObjectAttrs::default(),
        tags: vec![],
        tags_stamp: 1_700_000_000_000,
        data,
        replication: vec![],
    }
}

/// A tag change made in this region, replicating to `destinations`.
fn tag_write(bucket: &str, version_id: Option<&str>, tags: &[(&str, &str)], destinations: &[&str]) -> TagWrite {
    TagWrite {
        bucket: bucket.to_owned(),
        key: "k".to_owned(),
        version_id: version_id.map(str::to_owned),
        tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        stamp: None,
        now_ms: 1_800_000_000_000,
        replication: destinations.iter().map(|d| task_to(d)).collect(),
    }
}

fn task_to(destination: &str) -> crate::NewTask {
    crate::NewTask {
        rule_id: "r".into(),
        destination: destination.into(),
        role: "arn:aws:iam::000000000000:role/r".into(),
        replica_kms_key_id: None,
        storage_class: Some("STANDARD_IA".into()),
    }
}

fn inline(text: &'static str) -> ObjectData {
    ObjectData::Inline(Bytes::from_static(text.as_bytes()))
}

fn blobs(ids: &[&str]) -> ObjectData {
    ObjectData::Blobs(ids.iter().map(|id| BlobPart { blob: (*id).to_owned(), size: 1, binding: None }).collect())
}

async fn new_bucket(store: &dyn MetaStore, name: &str, versioning: Versioning) {
    let record = BucketRecord { name: name.to_owned(), created_ms: 1, versioning };
    store.create_bucket(&record).await.unwrap();
}

/// Two stores of one region (front-ends of a shared engine): what one
/// commits, the other reads at once; writes to one key from both keep one
/// latest version; the outbox is one queue, whose leases each front-end
/// holds, finishes and releases for itself.
pub async fn front_ends_suite(a: &dyn MetaStore, b: &dyn MetaStore) {
    new_bucket(a, "shared", Versioning::Enabled).await;
    assert!(b.get_bucket("shared").await.unwrap().is_some(), "read your writes across front-ends");
    let writes = (0..40).map(|i| {
        let store = if i % 2 == 0 { a } else { b };
        let mut v = version("shared", "hot", &format!("v{i:02}"), "e", inline("x"));
        v.replication = vec![task_to("elsewhere")];
        async move { store.put_version(&v, None).await }
    });
    for result in futures::future::join_all(writes).await {
        result.unwrap();
    }
    let all = b.list_versions("shared", "hot", &KeyStart::Beginning, 100).await.unwrap();
    assert_eq!(all.len(), 40);
    assert_eq!(all.iter().filter(|v| v.is_latest).count(), 1, "exactly one latest");
    assert!(all[0].is_latest, "the newest is latest");
    let deletes = all.iter().take(10).enumerate().map(|(i, v)| {
        let store = if i % 2 == 0 { a } else { b };
        async move { store.delete_version("shared", "hot", &v.version_id, None).await }
    });
    for result in futures::future::join_all(deletes).await {
        assert!(result.unwrap().0.is_some());
    }
    let left = a.list_versions("shared", "hot", &KeyStart::Beginning, 100).await.unwrap();
    assert_eq!(left.len(), 30);
    assert_eq!(left.iter().filter(|v| v.is_latest).count(), 1, "a latest after concurrent deletes");

    let now = 1_800_000_000_000;
    let (by_a, by_b) = futures::future::join(a.lease_tasks(now, 1000, 25), b.lease_tasks(now, 1000, 25)).await;
    let (by_a, by_b) = (by_a.unwrap(), by_b.unwrap());
    assert_eq!(by_a.len() + by_b.len(), 40, "one queue, every task leased once");
    assert!(by_a.iter().all(|t| by_b.iter().all(|u| u.id != t.id)), "no task leased twice");
    assert_eq!(b.release_leases().await.unwrap(), by_b.len() as u64, "a front-end releases only its own");
    let taken_over = a.lease_tasks(now, 1000, 100).await.unwrap();
    assert_eq!(taken_over.len(), by_b.len(), "released tasks are due at once");
    // a's first leases run out: b takes one over, and only b's outcome counts.
    let stale = by_a[0].id;
    let retaken = b.lease_tasks(now + 1001, 1000, 100).await.unwrap();
    assert!(retaken.iter().any(|t| t.id == stale));
    a.finish_task(stale, &crate::TaskOutcome::Failed("late".into()), now + 1002).await.unwrap();
    b.finish_task(stale, &crate::TaskOutcome::Completed, now + 1002).await.unwrap();
    let report = a.replication_report("shared").await.unwrap();
    assert_eq!((report.completed, report.failed), (1, 0), "the lease holder's outcome, not the late one's");
}

/// Runs every metadata check against `store`, which must be empty.
pub async fn meta_suite(store: &dyn MetaStore) {
    bucket_configs(store).await;
    replication_outbox(store).await;
    tag_replication(store).await;
    replica_modifications(store).await;
    replicas(store).await;
    buckets(store).await;
    versions(store).await;
    preconditions(store).await;
    listings(store).await;
    attribute_samples(store).await;
    multipart(store).await;
    registry(store).await;
    concurrent_writes(store).await;
    blob_ownership(store).await;
}

/// Writes issued together succeed or fail one by one: a refused write
/// (failed precondition) never takes its neighbours down with it.
async fn concurrent_writes(store: &dyn MetaStore) {
    new_bucket(store, "b-conc", Versioning::Unversioned).await;
    let writes = (0..64).map(|i| {
        let v = version("b-conc", &format!("k{i}"), NULL_VERSION, "e", inline("x"));
        let precondition = (i % 2 == 1).then(|| Precondition::Match("absent".into()));
        async move { store.put_version(&v, precondition.as_ref()).await }
    });
    let results = futures::future::join_all(writes).await;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.is_ok(), i % 2 == 0, "write {i}: {result:?}");
    }
    let listed = store.list_current("b-conc", "", &KeyStart::Beginning, 100).await.unwrap();
    assert_eq!(listed.len(), 32);
    assert!(listed.iter().all(|r| r.key[1..].parse::<u32>().unwrap() % 2 == 0));
}

async fn buckets(store: &dyn MetaStore) {
    new_bucket(store, "b-one", Versioning::Unversioned).await;
    let again = BucketRecord { name: "b-one".into(), created_ms: 2, versioning: Versioning::Unversioned };
    assert!(matches!(store.create_bucket(&again).await, Err(StoreError::BucketExists)));
    assert_eq!(store.get_bucket("b-one").await.unwrap().unwrap().created_ms, 1);
    assert!(store.get_bucket("b-none").await.unwrap().is_none());
    store.set_versioning("b-one", Versioning::Suspended).await.unwrap();
    assert_eq!(store.get_bucket("b-one").await.unwrap().unwrap().versioning, Versioning::Suspended);
    assert!(matches!(store.set_versioning("b-none", Versioning::Enabled).await, Err(StoreError::NoSuchBucket)));

    store.put_version(&version("b-one", "k", NULL_VERSION, "e", inline("x")), None).await.unwrap();
    assert!(matches!(store.delete_bucket("b-one").await, Err(StoreError::BucketNotEmpty)));
    // A delete guarded by when the version was written spares a newer one.
    let guard = |written_ms, latest| Some(DeleteGuard { written_ms, latest, alone: false });
    let newer = store.delete_version("b-one", "k", NULL_VERSION, guard(1, true)).await.unwrap();
    assert!(newer.0.is_none() && store.get_version("b-one", "k", None).await.unwrap().is_some());
    let current = store.delete_version("b-one", "k", NULL_VERSION, guard(1_700_000_000_000, false)).await.unwrap();
    assert!(current.0.is_none(), "a guard for a noncurrent version spares the current one");
    let guarded = store.delete_version("b-one", "k", NULL_VERSION, guard(1_700_000_000_000, true)).await.unwrap();
    assert!(guarded.0.is_some());
    // An upload in progress goes with the bucket, and its parts' blobs are the caller's to delete.
    let upload = UploadRecord {
        upload_id: "left".into(),
        bucket: "b-one".into(),
        key: "k".into(),
        created_ms: 1,
        attrs: ObjectAttrs::default(),
        tags: vec![],
    };
    store.create_upload(&upload).await.unwrap();
    let part = PartRecord {
        upload_id: "left".into(),
        part_number: 1,
        size: 1,
        etag: "e".into(),
        blob: "left-part".into(),
        modified_ms: 1,
        checksum: None,
        binding: None,
    };
    store.put_part(&part).await.unwrap();
    assert_eq!(store.delete_bucket("b-one").await.unwrap().blobs, vec!["left-part".to_owned()]);
    assert!(store.get_upload("b-one", "left").await.unwrap().is_none());
    assert!(!store.referenced_blobs().await.unwrap().contains("left-part"));
    assert!(store.list_buckets().await.unwrap().iter().all(|b| b.name != "b-one"));
    let missing = version("b-none", "k", NULL_VERSION, "e", inline("x"));
    assert!(matches!(store.put_version(&missing, None).await, Err(StoreError::NoSuchBucket)));
}

async fn versions(store: &dyn MetaStore) {
    new_bucket(store, "b-ver", Versioning::Enabled).await;
    store.put_version(&version("b-ver", "k", "v1", "e1", blobs(&["blob1"])), None).await.unwrap();
    store.put_version(&version("b-ver", "k", "v2", "e2", inline("two")), None).await.unwrap();
    let latest = store.get_version("b-ver", "k", None).await.unwrap().unwrap();
    assert_eq!((latest.version_id.as_str(), latest.is_latest), ("v2", true));
    assert_eq!(latest.data, inline("two"));
    let first = store.get_version("b-ver", "k", Some("v1")).await.unwrap().unwrap();
    assert!(!first.is_latest);
    assert_eq!(first.data, blobs(&["blob1"]));

    // A delete marker becomes latest; removing it promotes the next newest.
    let mut marker = version("b-ver", "k", "v3", "", inline(""));
    marker.is_delete_marker = true;
    store.put_version(&marker, None).await.unwrap();
    assert!(store.get_version("b-ver", "k", None).await.unwrap().unwrap().is_delete_marker);
    // A marker that still hides versions is not "alone".
    let alone = DeleteGuard { written_ms: marker.modified_ms, latest: true, alone: true };
    assert!(store.delete_version("b-ver", "k", "v3", Some(alone)).await.unwrap().0.is_none());
    let (removed, displaced) = store.delete_version("b-ver", "k", "v3", None).await.unwrap();
    assert!(removed.unwrap().is_delete_marker && displaced.blobs.is_empty());
    assert_eq!(store.get_version("b-ver", "k", None).await.unwrap().unwrap().version_id, "v2");
    // The newest by write time becomes current, not the last stored (a
    // replica that arrives late is older than its row).
    let mut late = version("b-ver", "k", "v0-late", "e0", inline("old"));
    late.modified_ms -= 1000;
    store.put_replica(&late).await.unwrap();
    store.delete_version("b-ver", "k", "v2", None).await.unwrap();
    assert_eq!(store.get_version("b-ver", "k", None).await.unwrap().unwrap().version_id, "v1");
    store.delete_version("b-ver", "k", "v0-late", None).await.unwrap();
    let (_, displaced) = store.delete_version("b-ver", "k", "v1", None).await.unwrap();
    assert_eq!(displaced.blobs, vec!["blob1".to_owned()]);
    assert!(store.delete_version("b-ver", "k", "v1", None).await.unwrap().0.is_none());

    // A null version replaces the previous null version and hands back its blobs.
    store.put_version(&version("b-ver", "n", NULL_VERSION, "a", blobs(&["old"])), None).await.unwrap();
    let displaced = store.put_version(&version("b-ver", "n", NULL_VERSION, "b", inline("new")), None).await.unwrap();
    assert_eq!(displaced.blobs, vec!["old".to_owned()]);
    // Its blobs have no owner left: another version may take one.
    store.put_version(&version("b-ver", "m", NULL_VERSION, "c", blobs(&["old"])), None).await.unwrap();
    let (_, taken_back) = store.delete_version("b-ver", "m", NULL_VERSION, None).await.unwrap();
    assert_eq!(taken_back.blobs, vec!["old".to_owned()]);
    let mut tagging = tag_write("b-ver", None, &[("t", "1")], &[]);
    tagging.key = "n".into();
    let tagged = store.put_tags(&tagging).await.unwrap();
    assert_eq!(tagged.version.tags, vec![("t".to_owned(), "1".to_owned())]);
    tagging.version_id = Some("zz".into());
    assert!(matches!(store.put_tags(&tagging).await, Err(StoreError::NoSuchVersion)));
    assert!(store.referenced_blobs().await.unwrap().is_empty());
}

async fn preconditions(store: &dyn MetaStore) {
    new_bucket(store, "b-pre", Versioning::Unversioned).await;
    let v = version("b-pre", "k", NULL_VERSION, "e1", inline("x"));
    store.put_version(&v, Some(&Precondition::NoneMatchAny)).await.unwrap();
    let refused = store.put_version(&v, Some(&Precondition::NoneMatchAny)).await;
    assert!(matches!(refused, Err(StoreError::PreconditionFailed)));
    let wrong = store.put_version(&v, Some(&Precondition::Match("nope".into()))).await;
    assert!(matches!(wrong, Err(StoreError::PreconditionFailed)));
    store.put_version(&v, Some(&Precondition::Match("e1".into()))).await.unwrap();
    let absent = version("b-pre", "absent", NULL_VERSION, "e1", inline("x"));
    let nothing_to_match = store.put_version(&absent, Some(&Precondition::Match("e1".into()))).await;
    assert!(matches!(nothing_to_match, Err(StoreError::NoSuchKey)), "{nothing_to_match:?}");
}

async fn listings(store: &dyn MetaStore) {
    new_bucket(store, "b-list", Versioning::Enabled).await;
    for (key, vid) in [("a/1", "x1"), ("a/2", "x2"), ("a/2", "x3"), ("b", "x4"), ("ä", "x5")] {
        store.put_version(&version("b-list", key, vid, "e", inline("x")), None).await.unwrap();
    }
    let mut marker = version("b-list", "b", "x6", "", inline(""));
    marker.is_delete_marker = true;
    store.put_version(&marker, None).await.unwrap();

    let keys = |rows: Vec<crate::VersionSummary>| {
        rows.into_iter().map(|r| format!("{}@{}", r.key, r.version_id)).collect::<Vec<_>>()
    };
    let current = store.list_current("b-list", "", &KeyStart::Beginning, 10).await.unwrap();
    assert_eq!(keys(current), ["a/1@x1", "a/2@x3", "ä@x5"], "markers hide keys; UTF-8 byte order");
    let current = store.list_current("b-list", "a/", &KeyStart::After("a/1".into()), 10).await.unwrap();
    assert_eq!(keys(current), ["a/2@x3"]);
    let current = store.list_current("b-list", "", &KeyStart::From("b".into()), 1).await.unwrap();
    assert_eq!(keys(current), ["ä@x5"]);

    let all = store.list_versions("b-list", "", &KeyStart::Beginning, 10).await.unwrap();
    assert_eq!(keys(all), ["a/1@x1", "a/2@x3", "a/2@x2", "b@x6", "b@x4", "ä@x5"], "newest first per key");
    let cursor = KeyStart::AfterVersion { key: "a/2".into(), version_id: "x3".into() };
    let rest = store.list_versions("b-list", "", &cursor, 2).await.unwrap();
    assert_eq!(keys(rest), ["a/2@x2", "b@x6"]);
}

async fn attribute_samples(store: &dyn MetaStore) {
    new_bucket(store, "b-sample", Versioning::Enabled).await;
    for (key, vid, arn) in [("a/1", "x1", "k1"), ("a/2", "x2", "k2"), ("a/2", "x3", "k3"), ("b", "x4", "k4")] {
        let mut v = version("b-sample", key, vid, "e", inline("x"));
        v.attrs.kms_key_arn = Some(arn.to_owned());
        store.put_version(&v, None).await.unwrap();
    }
    let mut marker = version("b-sample", "a/3", "x5", "", inline(""));
    marker.is_delete_marker = true;
    store.put_version(&marker, None).await.unwrap();
    let arns = |sample: Vec<ObjectAttrs>| sample.into_iter().filter_map(|a| a.kms_key_arn).collect::<Vec<_>>();
    let sample = store.sample_current_attrs("b-sample", "a/", 10).await.unwrap();
    assert_eq!(arns(sample), ["k1", "k3"], "current objects of the prefix only, by key");
    let sample = store.sample_current_attrs("b-sample", "", 1).await.unwrap();
    assert_eq!(arns(sample), ["k1"], "at most the limit");
}

async fn multipart(store: &dyn MetaStore) {
    new_bucket(store, "b-mpu", Versioning::Unversioned).await;
    let upload = UploadRecord {
        upload_id: "u1".into(),
        bucket: "b-mpu".into(),
        key: "big".into(),
        created_ms: 5,
        attrs: ObjectAttrs::default(),
        tags: vec![],
    };
    store.create_upload(&upload).await.unwrap();
    assert_eq!(store.get_upload("b-mpu", "u1").await.unwrap().unwrap(), upload);
    let part = |n: u32, blob: &str| PartRecord {
        upload_id: "u1".into(),
        part_number: n,
        size: 1,
        etag: format!("p{n}"),
        blob: blob.into(),
        modified_ms: 6,
        checksum: None,
        binding: Some(format!("binding-of-{blob}")),
    };
    store.put_part(&part(1, "p1a")).await.unwrap();
    assert_eq!(store.put_part(&part(1, "p1b")).await.unwrap().blobs, vec!["p1a".to_owned()]);
    store.put_part(&part(2, "p2")).await.unwrap();
    store.put_part(&part(3, "p3")).await.unwrap();
    let parts = store.list_parts("u1", 1, 10).await.unwrap();
    assert_eq!(parts.iter().map(|p| p.part_number).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(store.list_uploads("b-mpu", "b", None, None, 10).await.unwrap().len(), 1);
    // Uploads of one key page in creation order, whatever their ids.
    for (id, created_ms) in [("z-first", 1), ("a-second", 2), ("m-third", 3)] {
        let mut again = upload.clone();
        (again.upload_id, again.key, again.created_ms) = (id.into(), "same".into(), created_ms);
        store.create_upload(&again).await.unwrap();
    }
    let mut paged = Vec::new();
    let mut marker: Option<(String, String)> = None;
    while let Some(next) = store
        .list_uploads("b-mpu", "same", marker.as_ref().map(|m| m.0.as_str()), marker.as_ref().map(|m| m.1.as_str()), 1)
        .await
        .unwrap()
        .pop()
    {
        paged.push(next.upload_id.clone());
        marker = Some((next.key, next.upload_id));
    }
    assert_eq!(paged, ["z-first", "a-second", "m-third"]);
    for id in ["z-first", "a-second", "m-third"] {
        store.abort_upload("b-mpu", id).await.unwrap();
    }
    assert!(store.referenced_blobs().await.unwrap().contains("p3"));
    assert_eq!(parts[0].binding.as_deref(), Some("binding-of-p2"), "a part keeps its blob's binding");

    // A completion that names a part since uploaded again (the list it was
    // built from is stale) fails and changes nothing.
    let stale = version("b-mpu", "big", NULL_VERSION, "x-2", blobs(&["p1a", "p2"]));
    assert!(matches!(store.complete_upload("u1", &stale, None).await, Err(StoreError::PartChanged)));
    assert_eq!(store.list_parts("u1", 0, 10).await.unwrap().len(), 3, "the upload is as it was");
    let done = version("b-mpu", "big", NULL_VERSION, "x-2", blobs(&["p1b", "p2"]));
    let displaced = store.complete_upload("u1", &done, None).await.unwrap();
    assert_eq!(displaced.blobs, vec!["p3".to_owned()], "unused parts are released");
    assert!(store.get_upload("b-mpu", "u1").await.unwrap().is_none());
    assert!(matches!(store.complete_upload("u1", &done, None).await, Err(StoreError::NoSuchUpload)));
    assert!(matches!(store.put_part(&part(4, "p4")).await, Err(StoreError::NoSuchUpload)));

    store.create_upload(&UploadRecord { upload_id: "u2".into(), ..upload }).await.unwrap();
    store.put_part(&PartRecord { upload_id: "u2".into(), ..part(1, "q1") }).await.unwrap();
    assert_eq!(store.abort_upload("b-mpu", "u2").await.unwrap().blobs, vec!["q1".to_owned()]);
    assert!(matches!(store.abort_upload("b-mpu", "u2").await, Err(StoreError::NoSuchUpload)));
}

async fn registry(store: &dyn MetaStore) {
    assert_eq!(store.registry_claim("shared", "us-east-1").await.unwrap().region, "us-east-1");
    assert_eq!(store.registry_claim("shared", "eu-west-1").await.unwrap().region, "us-east-1");
    store.registry_claim("another", "eu-west-1").await.unwrap();
    let all: Vec<_> = store.registry_list().await.unwrap().into_iter().map(|b| (b.name, b.region)).collect();
    assert_eq!(all, [("another".into(), "eu-west-1".into()), ("shared".into(), "us-east-1".into())]);
    store.registry_release("shared", "eu-west-1").await.unwrap();
    assert!(store.registry_lookup("shared").await.unwrap().is_some(), "only the holder releases");
    store.registry_release("shared", "us-east-1").await.unwrap();
    assert!(store.registry_lookup("shared").await.unwrap().is_none());
}

/// A body of `chunks` that, like a request body, must not be asked for
/// more once it has ended (it panics if it is).
#[must_use]
pub fn stream_of(chunks: Vec<std::io::Result<Bytes>>) -> ByteStream {
    Box::pin(futures::stream::unfold(chunks.into_iter(), |mut rest| async move { rest.next().map(|c| (c, rest)) }))
}

/// The bytes of `range` of blob `id`.
pub async fn read_all(store: &dyn BlobStore, id: &str, range: std::ops::Range<u64>) -> Vec<u8> {
    let chunks: Vec<Bytes> = store.get(id, range).await.unwrap().try_collect().await.unwrap();
    chunks.concat()
}

/// Runs every blob check against `store`, which must be empty.
pub async fn blob_suite(store: &dyn BlobStore) {
    store.ping().await.expect("a store that works answers");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let chunks = big.chunks(65_536).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let (id, size) = store.put(stream_of(chunks)).await.unwrap();
    assert_eq!(size, big.len() as u64);
    assert_eq!(read_all(store, &id, 0..size).await, big);
    assert_eq!(read_all(store, &id, 1_048_570..2_097_160).await, &big[1_048_570..2_097_160]);
    assert!(read_all(store, &id, 7..7).await.is_empty());

    let (empty, zero) = store.put(stream_of(vec![])).await.unwrap();
    assert_eq!(zero, 0);
    assert!(read_all(store, &empty, 0..0).await.is_empty());

    let failing = stream_of(vec![Ok(Bytes::from_static(b"partial")), Err(std::io::Error::other("client went away"))]);
    assert!(matches!(store.put(failing).await, Err(StoreError::Body(_))));
    let mut listed = store.list(std::time::Duration::ZERO).await.unwrap();
    listed.sort();
    let mut expected = vec![id.clone(), empty];
    expected.sort();
    assert_eq!(listed, expected, "a failed write leaves nothing");

    store.delete(&id).await.unwrap();
    store.delete(&id).await.unwrap();
    assert!(matches!(store.get(&id, 0..1).await, Err(StoreError::BlobMissing(_))));
    assert!(matches!(store.get("../../etc/passwd", 0..1).await, Err(StoreError::BlobMissing(_))));
}

async fn bucket_configs(store: &dyn MetaStore) {
    assert!(matches!(store.put_bucket_config("cfg", "encryption", Some("{}")).await, Err(StoreError::NoSuchBucket)));
    new_bucket(store, "cfg", Versioning::Unversioned).await;
    assert_eq!(store.get_bucket_config("cfg", "encryption").await.unwrap(), None);
    store.put_bucket_config("cfg", "encryption", Some("{\"a\":1}")).await.unwrap();
    store.put_bucket_config("cfg", "replication", Some("r")).await.unwrap();
    assert_eq!(store.get_bucket_config("cfg", "encryption").await.unwrap().as_deref(), Some("{\"a\":1}"));
    store.put_bucket_config("cfg", "encryption", None).await.unwrap();
    assert_eq!(store.get_bucket_config("cfg", "encryption").await.unwrap(), None);
    store.delete_bucket("cfg").await.unwrap();
    new_bucket(store, "cfg", Versioning::Unversioned).await;
    assert_eq!(store.get_bucket_config("cfg", "replication").await.unwrap(), None, "configs go with their bucket");
    store.delete_bucket("cfg").await.unwrap();
}

async fn replication_outbox(store: &dyn MetaStore) {
    new_bucket(store, "outbox", Versioning::Enabled).await;
    let mut v = version("outbox", "k", "v1", "e", inline("x"));
    v.attrs.replication_status = Some(ReplicationStatus::Pending);
    v.replication = vec![task_to("east-copy"), task_to("west-copy")];
    store.put_version(&v, None).await.unwrap();
    let now = 1_800_000_000_000;
    let leased = store.lease_tasks(now, 1000, 10).await.unwrap();
    assert_eq!(leased.len(), 2, "both tasks committed with the version");
    assert!(leased.iter().all(|t| t.storage_class.as_deref() == Some("STANDARD_IA")), "{leased:?}");
    assert!(store.lease_tasks(now, 1000, 10).await.unwrap().is_empty(), "leased tasks are not handed out twice");
    assert_eq!(store.renew_leases(&[leased[0].id], now + 5000).await.unwrap(), 1);
    assert_eq!(store.lease_tasks(now + 1001, 1000, 10).await.unwrap().len(), 1, "an expired lease is taken over");
    assert!(store.lease_tasks(now + 2000, 1000, 10).await.unwrap().is_empty(), "a renewed lease holds");
    assert_eq!(store.lease_tasks(now + 5001, 1000, 10).await.unwrap().len(), 2, "until it runs out");
    assert_eq!(store.release_leases().await.unwrap(), 2);
    assert_eq!(store.lease_tasks(now + 5001, 1000, 10).await.unwrap().len(), 2, "a released lease is due at once");

    store.finish_task(leased[0].id, &crate::TaskOutcome::Completed, now).await.unwrap();
    assert_eq!(
        replication_status(store).await,
        Some(ReplicationStatus::Pending),
        "COMPLETED only when every destination is done"
    );
    let retry = crate::TaskOutcome::Retry { not_before_ms: now + 5000, reason: "destination down".into() };
    store.finish_task(leased[1].id, &retry, now).await.unwrap();
    assert!(store.lease_tasks(now + 2000, 1000, 10).await.unwrap().is_empty(), "backing off");
    assert_eq!(store.expedite("elsewhere", now + 2000).await.unwrap(), 0);
    assert_eq!(store.expedite(&leased[1].destination, now + 2000).await.unwrap(), 1);
    let again = store.lease_tasks(now + 2000, 1000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    store.finish_task(again[0].id, &crate::TaskOutcome::Failed("DstBucketUnversioned".into()), now).await.unwrap();
    assert_eq!(replication_status(store).await, Some(ReplicationStatus::Failed));

    let report = store.replication_report("outbox").await.unwrap();
    assert_eq!((report.pending, report.completed, report.failed), (0, 1, 1));
    assert!(store.replication_backlog().await.unwrap().iter().all(|b| b.bucket != "outbox"), "nothing pending");
    let both = [task_to("third"), task_to("east-copy")];
    assert_eq!(store.add_tasks("outbox", "k", "v1", &both).await.unwrap(), 1, "only destinations without a task");
    assert_eq!(store.add_tasks("outbox", "k", "missing", &both).await.unwrap(), 0);
    assert_eq!(report.failures[0].reason.as_deref(), Some("DstBucketUnversioned"));
    assert_eq!(store.retry_failed("outbox", now).await.unwrap(), 1);
    assert_eq!(replication_status(store).await, Some(ReplicationStatus::Pending));
    let report = store.replication_report("outbox").await.unwrap();
    assert_eq!((report.pending, report.backlog_bytes, report.oldest_pending_ms), (2, 2, Some(1_700_000_000_000)));
    for task in store.lease_tasks(now, 1000, 10).await.unwrap() {
        store.finish_task(task.id, &crate::TaskOutcome::Completed, now).await.unwrap();
    }
    assert_eq!(replication_status(store).await, Some(ReplicationStatus::Completed));
}

/// A tag change goes, after its object, where the version replicates to.
async fn tag_replication(store: &dyn MetaStore) {
    new_bucket(store, "tagged", Versioning::Enabled).await;
    let mut v = version("tagged", "k", "v1", "e", inline("x"));
    v.replication = vec![task_to("ok-dst"), task_to("failing-dst")];
    store.put_version(&v, None).await.unwrap();
    let now = 1_800_000_000_000;
    let objects = store.lease_tasks(now, 1000, 10).await.unwrap();
    store.finish_task(objects[1].id, &crate::TaskOutcome::Failed("DstBucketNotFound".into()), now).await.unwrap();

    let everywhere = tag_write("tagged", Some("v1"), &[("a", "1")], &["ok-dst", "failing-dst", "never-dst"]);
    let applied = store.put_tags(&everywhere).await.unwrap();
    assert_eq!(applied.tasks, 1, "only where the object goes and did not fail");
    assert!(applied.version.tags_stamp >= now);
    assert!(store.lease_tasks(now, 1000, 10).await.unwrap().is_empty(), "the tags wait for their object");
    store.finish_task(objects[0].id, &crate::TaskOutcome::Completed, now).await.unwrap();
    let again = tag_write("tagged", Some("v1"), &[("a", "2")], &["ok-dst"]);
    assert_eq!(store.put_tags(&again).await.unwrap().tasks, 0, "a queued task carries the newest tags already");
    let tags = store.lease_tasks(now, 1000, 10).await.unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!((tags[0].kind, tags[0].destination.as_str(), tags[0].size), (crate::TaskKind::Tags, "ok-dst", 0));
    let v = store.get_version("tagged", "k", Some("v1")).await.unwrap().unwrap();
    assert_eq!(v.attrs.replication_status, Some(ReplicationStatus::Failed));
    store.finish_task(tags[0].id, &crate::TaskOutcome::Completed, now).await.unwrap();
    assert_eq!(store.put_tags(&again).await.unwrap().tasks, 1, "a change after the last one went replicates");
}

/// Replicated tag changes apply only if newer, so two regions converge;
/// a replica's own changes go back where its rules send them.
async fn replica_modifications(store: &dyn MetaStore) {
    new_bucket(store, "two-way", Versioning::Enabled).await;
    let mut replica = version("two-way", "k", "v1", "e", inline("x"));
    replica.attrs.replica = true;
    replica.attrs.replication_status = Some(ReplicationStatus::Replica);
    store.put_replica(&replica).await.unwrap();
    let mut remote = tag_write("two-way", Some("v1"), &[("from", "source")], &[]);
    remote.stamp = Some(1_800_000_000_500);
    assert!(store.put_tags(&remote).await.unwrap().changed);
    let mut stale = tag_write("two-way", Some("v1"), &[("from", "stale")], &["back"]);
    stale.stamp = Some(1_800_000_000_400);
    let ignored = store.put_tags(&stale).await.unwrap();
    assert!(!ignored.changed && ignored.tasks == 0, "an older change never overwrites a newer one");
    assert_eq!(ignored.version.tags, vec![("from".to_owned(), "source".to_owned())]);
    let mut tie = tag_write("two-way", Some("v1"), &[("from", "z")], &[]);
    tie.stamp = Some(1_800_000_000_500);
    assert!(store.put_tags(&tie).await.unwrap().changed, "a tie goes to the greater tag set, in every region");

    let local = store.put_tags(&tag_write("two-way", Some("v1"), &[("edited", "here")], &["back"])).await.unwrap();
    assert_eq!(local.tasks, 1, "a replica has no object task; its rules decide");
    assert!(local.version.tags_stamp > 1_800_000_000_500, "a local change is newer than any it has seen");
    let v = store.get_version("two-way", "k", Some("v1")).await.unwrap().unwrap();
    assert_eq!(v.attrs.replication_status, Some(ReplicationStatus::Pending));
    let leased = store.lease_tasks(1_900_000_000_000, 1000, 10).await.unwrap();
    let task = leased.iter().find(|t| t.bucket == "two-way").expect("the change is queued");
    store.finish_task(task.id, &crate::TaskOutcome::Completed, 1_900_000_000_000).await.unwrap();
    let v = store.get_version("two-way", "k", Some("v1")).await.unwrap().unwrap();
    assert_eq!(v.attrs.replication_status, Some(ReplicationStatus::Replica), "a replica is a replica again");
}

async fn replicas(store: &dyn MetaStore) {
    new_bucket(store, "replicas", Versioning::Enabled).await;
    let mut newer = version("replicas", "k", "v2", "e2", inline("new"));
    newer.modified_ms += 10;
    assert!(store.put_replica(&newer).await.unwrap().blobs.is_empty());
    assert!(store.put_replica(&newer).await.unwrap().blobs.is_empty(), "applying a replica twice changes nothing");
    let older = version("replicas", "k", "v1", "e1", inline("old"));
    assert!(store.put_replica(&older).await.unwrap().blobs.is_empty());
    let latest = store.get_version("replicas", "k", None).await.unwrap().unwrap();
    assert_eq!(latest.version_id, "v2", "an older version arriving later never becomes current");
    assert!(store.get_version("replicas", "k", Some("v1")).await.unwrap().is_some());
    let mut newest = version("replicas", "k", "v3", "e3", inline("newest"));
    newest.modified_ms += 20;
    store.put_replica(&newest).await.unwrap();
    assert_eq!(store.get_version("replicas", "k", None).await.unwrap().unwrap().version_id, "v3");
}

/// A blob belongs to one row: nobody can name a blob another version or
/// part holds, and cleaning up after a repeated replica never reaches one.
async fn blob_ownership(store: &dyn MetaStore) {
    new_bucket(store, "owners", Versioning::Enabled).await;
    store.put_version(&version("owners", "a", "v1", "e", blobs(&["ba"])), None).await.unwrap();
    let thief = version("owners", "b", "v2", "e", blobs(&["ba"]));
    assert!(matches!(store.put_version(&thief, None).await, Err(StoreError::BlobInUse(b)) if b == "ba"));
    assert!(matches!(store.put_replica(&thief).await, Err(StoreError::BlobInUse(_))));
    let twice = version("owners", "c", "v3", "e", blobs(&["bd", "bd"]));
    assert!(matches!(store.put_version(&twice, None).await, Err(StoreError::BlobInUse(b)) if b == "bd"));
    assert!(store.get_version("owners", "b", None).await.unwrap().is_none(), "a refused write leaves nothing");

    let replica = version("owners", "c", "v3", "e", blobs(&["bc"]));
    assert!(store.put_replica(&replica).await.unwrap().blobs.is_empty());
    let repeated = version("owners", "c", "v3", "e", blobs(&["bc", "staged"]));
    assert_eq!(store.put_replica(&repeated).await.unwrap().blobs, ["staged"], "only what nobody owns");

    assert_eq!(store.delete_version("owners", "a", "v1", None).await.unwrap().1.blobs, ["ba"]);
    store.put_version(&thief, None).await.unwrap();
}

async fn replication_status(store: &dyn MetaStore) -> Option<ReplicationStatus> {
    store.get_version("outbox", "k", Some("v1")).await.unwrap().unwrap().attrs.replication_status
}

/// Runs every document check against `store`, which must be empty.
pub async fn doc_suite(store: &dyn DocStore) {
    assert_eq!(store.load_docs("keys").await.unwrap(), crate::Docs::default());
    let writes = vec![
        DocWrite::put("keys", "b", b"2".to_vec()),
        DocWrite::put("keys", "a", b"1".to_vec()),
        DocWrite::put("aliases", "a", b"x".to_vec()),
    ];
    store.write_docs(writes, &[]).await.unwrap();
    let loaded = store.load_docs("keys").await.unwrap();
    let expected = vec![("a".to_owned(), b"1".to_vec()), ("b".to_owned(), b"2".to_vec())];
    assert_eq!(loaded.docs, expected, "by id, per collection");
    assert_eq!(loaded.generation, 1, "one batch, one generation");

    let change = || vec![DocWrite::put("keys", "a", b"3".to_vec()), DocWrite::delete("keys", "b")];
    store.write_docs(change(), &[("keys", 1)]).await.unwrap();
    let refused = store.write_docs(vec![DocWrite::put("keys", "c", b"4".to_vec())], &[("keys", 1)]).await;
    assert!(matches!(refused, Err(StoreError::Conflict(c)) if c == "keys"), "a writer that missed a change");
    assert_eq!(store.doc_generation("keys").await.unwrap(), 2, "a refused batch changes nothing");
    assert_eq!(store.load_docs("keys").await.unwrap().docs, vec![("a".to_owned(), b"3".to_vec())]);
    store.write_docs(vec![DocWrite::delete("keys", "absent")], &[("keys", 2)]).await.unwrap();
    assert_eq!(store.load_docs("aliases").await.unwrap().docs, vec![("a".to_owned(), b"x".to_vec())]);
    assert_eq!(store.doc_generation("aliases").await.unwrap(), 1);
    assert_eq!(store.doc_generation("never-written").await.unwrap(), 0);
    let alias = || vec![DocWrite::put("aliases", "b", b"y".to_vec())];
    let refused = store.write_docs(alias(), &[("aliases", 1), ("keys", 2)]).await;
    assert!(matches!(refused, Err(StoreError::Conflict(c)) if c == "keys"), "a collection expected, not written");
    store.write_docs(alias(), &[("aliases", 1), ("keys", 3)]).await.unwrap();
    assert_eq!(store.doc_generation("keys").await.unwrap(), 3, "expected, not written: unchanged");
}

/// A fresh database in the cluster `scripts/with-postgres` started, or
/// `None` (said aloud) without one; `TERN_REQUIRE_POSTGRES`, which
/// `scripts/test` sets, makes that a failure.
pub async fn fresh_postgres() -> Option<String> {
    let admin = postgres_setting("TERN_TEST_POSTGRES_URL")?;
    Some(fresh_database(&admin.to_string_lossy()).await)
}

/// A setting `scripts/with-postgres` exports, or `None` (said aloud)
/// outside it; `TERN_REQUIRE_POSTGRES` makes that a failure.
#[must_use]
pub fn postgres_setting(name: &str) -> Option<std::ffi::OsString> {
    let value = std::env::var_os(name);
    if value.is_none() {
        assert!(
            std::env::var_os("TERN_REQUIRE_POSTGRES").is_none(),
            "TERN_REQUIRE_POSTGRES is set but {name} is not: run under scripts/with-postgres"
        );
        eprintln!("skipped: no PostgreSQL here (run under scripts/with-postgres)");
    }
    value
}

/// A fresh database in the cluster whose `postgres` database `admin` names.
pub async fn fresh_database(admin: &str) -> String {
    let name = format!("tern_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await.expect("the test cluster answers");
    // A name made here of hex digits: nothing a caller chose.
    let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"));
    sqlx::query(create).execute(&mut conn).await.expect("the test cluster creates a database");
    admin.replacen("/postgres?", &format!("/{name}?"), 1)
}

#[cfg(test)]
mod tests {
    use crate::{DocStore, DocWrite, KeyStart, LocalBlobs, MetaStore, SqliteMeta, sweep_orphans};

    #[tokio::test]
    async fn sqlite_meets_the_meta_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMeta::open(&dir.path().join("meta.db")).await.unwrap();
        super::meta_suite(&store).await;
    }

    #[tokio::test]
    async fn sqlite_meets_the_doc_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMeta::open(&dir.path().join("meta.db")).await.unwrap();
        super::doc_suite(&store).await;
    }

    #[tokio::test]
    async fn postgres_meets_the_meta_contract() {
        let Some(url) = super::fresh_postgres().await else { return };
        super::meta_suite(&crate::PgStore::connect(&url).await.unwrap()).await;
    }

    /// Two front-ends of one region, each with its own connection pool,
    /// started at once on a fresh database (both bring its schema up).
    #[tokio::test]
    async fn postgres_front_ends_share_one_outbox_and_one_key_order() {
        let Some(url) = super::fresh_postgres().await else { return };
        let (a, b) = futures::future::join(crate::PgStore::connect(&url), crate::PgStore::connect(&url)).await;
        let (a, b) = (a.unwrap(), b.unwrap());
        super::front_ends_suite(&a, &b).await;
        // Two front-ends change one collection from the same generation: one wins.
        let put = |body: &[u8]| vec![crate::DocWrite::put("kms-keys", "k", body.to_vec())];
        let (x, y) = futures::future::join(
            crate::DocStore::write_docs(&a, put(b"from a"), &[("kms-keys", 0)]),
            crate::DocStore::write_docs(&b, put(b"from b"), &[("kms-keys", 0)]),
        )
        .await;
        assert!(x.is_ok() != y.is_ok(), "exactly one of {x:?} and {y:?}");
    }

    /// Everything the contract suites leave in `SQLite` moves to PostgreSQL
    /// and reads back the same; again, it changes nothing; into a database
    /// that holds something else, it writes nothing.
    #[tokio::test]
    async fn an_embedded_store_migrates_to_postgres_once_and_verified() {
        use crate::migrate::Migration;
        let Some(url) = super::fresh_postgres().await else { return };
        let dir = tempfile::tempdir().unwrap();
        let source = SqliteMeta::open(&dir.path().join("meta.db")).await.unwrap();
        super::meta_suite(&source).await;
        super::doc_suite(&source).await;
        // What the suites leave no trace of: an upload in progress and a configuration.
        let upload = crate::UploadRecord {
            upload_id: "left-open".into(),
            bucket: "b-mpu".into(),
            key: "k".into(),
            created_ms: 9,
            attrs: crate::ObjectAttrs { content_type: Some("text/plain".into()), ..crate::ObjectAttrs::default() },
            tags: vec![("t".into(), String::new())],
        };
        source.create_upload(&upload).await.unwrap();
        let part = crate::PartRecord {
            upload_id: "left-open".into(),
            part_number: 1,
            size: 5,
            etag: "e".into(),
            blob: "open-part".into(),
            modified_ms: 10,
            checksum: Some("c".into()),
            binding: None,
        };
        source.put_part(&part).await.unwrap();
        source.put_bucket_config("b-mpu", "encryption", Some(r#"{"v":1}"#)).await.unwrap();
        let target = crate::PgStore::connect(&url).await.unwrap();
        let quiet = |_: u64, _: u64| {};
        let Migration::Copied(tables) = crate::migrate::to_postgres(&source, &target, &quiet).await.unwrap() else {
            panic!("an empty target takes the copy")
        };
        assert!(tables.iter().all(|t| t.rows > 0), "every table has something to copy: {tables:?}");
        let again = crate::migrate::to_postgres(&source, &target, &quiet).await.unwrap();
        assert_eq!(again, Migration::AlreadyThere(tables), "a second run finds the copy and leaves it");

        let (from, to): (&dyn MetaStore, &dyn MetaStore) = (&source, &target);
        assert_eq!(from.list_buckets().await.unwrap(), to.list_buckets().await.unwrap());
        assert_eq!(from.registry_list().await.unwrap(), to.registry_list().await.unwrap());
        for bucket in from.list_buckets().await.unwrap() {
            let all = KeyStart::Beginning;
            let versions = from.list_versions(&bucket.name, "", &all, 1000).await.unwrap();
            assert_eq!(versions, to.list_versions(&bucket.name, "", &all, 1000).await.unwrap(), "{}", bucket.name);
            assert_eq!(
                from.replication_report(&bucket.name).await.unwrap(),
                to.replication_report(&bucket.name).await.unwrap()
            );
        }
        assert_eq!(
            DocStore::load_docs(&source, "keys").await.unwrap(),
            DocStore::load_docs(&target, "keys").await.unwrap()
        );
        assert_eq!(from.referenced_blobs().await.unwrap(), to.referenced_blobs().await.unwrap());
        assert_eq!(to.get_upload("b-mpu", "left-open").await.unwrap(), Some(upload));
        assert_eq!(to.list_parts("left-open", 0, 10).await.unwrap(), vec![part]);
        assert_eq!(to.get_bucket_config("b-mpu", "encryption").await.unwrap().as_deref(), Some(r#"{"v":1}"#));

        let Some(other) = super::fresh_postgres().await else { return };
        let other = crate::PgStore::connect(&other).await.unwrap();
        DocStore::write_docs(&other, vec![DocWrite::put("region", "x", b"y".to_vec())], &[]).await.unwrap();
        let refused = crate::migrate::to_postgres(&source, &other, &quiet).await.unwrap();
        assert!(matches!(refused, Migration::TargetDiffers(_)), "{refused:?}");
        assert!(MetaStore::list_buckets(&other).await.unwrap().is_empty(), "nothing mixed in");
    }

    #[tokio::test]
    async fn postgres_meets_the_doc_contract() {
        let Some(url) = super::fresh_postgres().await else { return };
        super::doc_suite(&crate::PgStore::connect(&url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn a_schema_a_newer_tern_made_is_refused() {
        let Some(url) = super::fresh_postgres().await else { return };
        crate::MetaStore::close(&crate::PgStore::connect(&url).await.unwrap()).await;
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99999, 'from a newer tern', true, '\\x00', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let refused = crate::PgStore::connect(&url).await.err().expect("refused");
        assert!(matches!(refused, crate::StoreError::SchemaTooNew(99999)), "{refused}");
        assert!(refused.to_string().contains("newer Tern"), "{refused}");
    }

    #[tokio::test]
    async fn an_unreachable_database_is_named_never_its_password() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let url = format!("postgres://tern:hunter2-secret@{closed}/tern_region");
        let refused = crate::PgStore::connect(&url).await.err().expect("refused").to_string();
        assert!(refused.contains(&format!("{closed}/tern_region")), "{refused}");
        assert!(!refused.contains("hunter2"), "{refused}");
    }

    #[tokio::test]
    async fn local_files_meet_the_blob_contract() {
        let dir = tempfile::tempdir().unwrap();
        super::blob_suite(&LocalBlobs::open(dir.path()).unwrap()).await;
    }

    #[tokio::test]
    async fn a_local_blob_flushed_while_it_is_written_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).unwrap();
        // Past two early flushes (every 8 MiB), in chunks off their boundaries.
        let big: Vec<u8> = (0..17_000_001u32).map(|i| (i % 253) as u8).collect();
        let chunks = big.chunks(300_007).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
        let (id, size) = crate::BlobStore::put(&blobs, super::stream_of(chunks)).await.unwrap();
        assert_eq!(size, big.len() as u64);
        assert!(super::read_all(&blobs, &id, 0..size).await == big);
    }

    #[tokio::test]
    async fn sweeper_removes_only_unreferenced_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteMeta::open(&dir.path().join("meta.db")).await.unwrap();
        let blobs = LocalBlobs::open(&dir.path().join("blobs")).unwrap();
        let put = |b: &'static [u8]| super::stream_of(vec![Ok(bytes::Bytes::from_static(b))]);
        let (kept, _) = crate::BlobStore::put(&blobs, put(b"kept")).await.unwrap();
        let (orphan, _) = crate::BlobStore::put(&blobs, put(b"orphan")).await.unwrap();
        super::new_bucket(&meta, "b", crate::Versioning::Unversioned).await;
        let v = super::version("b", "k", crate::NULL_VERSION, "e", super::blobs(&[kept.as_str()]));
        crate::MetaStore::put_version(&meta, &v, None).await.unwrap();
        std::fs::write(dir.path().join("blobs/tmp/leftover"), b"half").unwrap();

        let young = std::time::Duration::from_hours(1);
        assert_eq!(sweep_orphans(&meta, &blobs, young).await.unwrap(), 0, "what another front-end may be writing");
        assert!(dir.path().join("blobs/tmp/leftover").exists());
        assert_eq!(sweep_orphans(&meta, &blobs, std::time::Duration::ZERO).await.unwrap(), 1);
        assert_eq!(crate::BlobStore::list(&blobs, std::time::Duration::ZERO).await.unwrap(), vec![kept]);
        assert!(!dir.path().join("blobs/tmp/leftover").exists());
        let _ = orphan;
    }
}
