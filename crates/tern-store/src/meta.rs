//! The metadata contract. [`crate::contract::meta_suite`] is its executable form.

use std::collections::HashSet;

use async_trait::async_trait;

use crate::StoreResult;
use crate::model::{
    BucketRecord, DeleteGuard, Displaced, KeyStart, NewVersion, ObjectAttrs, PartRecord, Precondition,
    RegisteredBucket, UploadRecord, VersionRecord, VersionSummary, Versioning,
};
use crate::replication::{Backlog, NewTask, ReplicationReport, TagWrite, TagsApplied, TaskOutcome, TaskRecord};

/// Metadata of one region. Every method is one atomic transaction; a write
/// that returns `Ok` is durable.
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    // ---- buckets -------------------------------------------------------

    /// Fails with `BucketExists` if the name is taken in this region.
    async fn create_bucket(&self, bucket: &BucketRecord) -> StoreResult<()>;
    async fn get_bucket(&self, name: &str) -> StoreResult<Option<BucketRecord>>;
    /// All buckets, by name.
    async fn list_buckets(&self) -> StoreResult<Vec<BucketRecord>>;
    /// Fails with `BucketNotEmpty` while any version or marker exists;
    /// uploads in progress go with the bucket, as on AWS, and their parts'
    /// blobs are returned for deletion.
    async fn delete_bucket(&self, name: &str) -> StoreResult<Displaced>;
    async fn set_versioning(&self, name: &str, state: Versioning) -> StoreResult<()>;
    /// Sets (`Some`) or removes (`None`) the bucket's configuration of `kind`;
    /// `NoSuchBucket` if the bucket does not exist.
    async fn put_bucket_config(&self, bucket: &str, kind: &str, body: Option<&str>) -> StoreResult<()>;
    async fn get_bucket_config(&self, bucket: &str, kind: &str) -> StoreResult<Option<String>>;

    // ---- versions ------------------------------------------------------

    /// Commits `version` as the key's latest. A `null` version id replaces the
    /// existing null version; its blobs are returned for deletion.
    /// `precondition` is evaluated against the current latest in the same
    /// transaction (`PreconditionFailed` if it does not hold).
    async fn put_version(&self, version: &NewVersion, precondition: Option<&Precondition>) -> StoreResult<Displaced>;

    /// The given version, or the latest (possibly a delete marker) if `None`.
    async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StoreResult<Option<VersionRecord>>;

    /// Permanently removes one version or marker; the next newest becomes
    /// latest. With a guard, only if the version is still as it says
    /// (lifecycle must not remove a null version written since it looked,
    /// nor one that became current). Returns the removed record (`None` if
    /// absent or guarded) and its blobs.
    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        guard: Option<DeleteGuard>,
    ) -> StoreResult<(Option<VersionRecord>, Displaced)>;

    /// Replaces the tag set of one version (`NoSuchVersion` if it is absent
    /// or a delete marker) and, in the same transaction, adds the tasks that
    /// replicate the change (see [`TagWrite`]).
    async fn put_tags(&self, write: &TagWrite) -> StoreResult<TagsApplied>;

    /// Latest versions that are not delete markers, by key, with `prefix`,
    /// starting at `start`; at most `limit`.
    async fn list_current(
        &self,
        bucket: &str,
        prefix: &str,
        start: &KeyStart,
        limit: usize,
    ) -> StoreResult<Vec<VersionSummary>>;

    /// The attributes of at most `limit` current objects (not markers) with
    /// `prefix`, by key: a bounded sample of what a bucket holds.
    async fn sample_current_attrs(&self, bucket: &str, prefix: &str, limit: usize) -> StoreResult<Vec<ObjectAttrs>>;

    /// All versions and markers with `prefix`, by key then newest first.
    async fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        start: &KeyStart,
        limit: usize,
    ) -> StoreResult<Vec<VersionSummary>>;

    // ---- multipart -----------------------------------------------------

    async fn create_upload(&self, upload: &UploadRecord) -> StoreResult<()>;
    async fn get_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<Option<UploadRecord>>;
    /// Records a part, replacing one with the same number (whose blob is returned).
    async fn put_part(&self, part: &PartRecord) -> StoreResult<Displaced>;
    /// Parts with number > `after`, ascending; at most `limit`.
    async fn list_parts(&self, upload_id: &str, after: u32, limit: usize) -> StoreResult<Vec<PartRecord>>;
    /// Uploads in progress with `prefix`, by key then creation, after the marker pair.
    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        upload_id_marker: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<UploadRecord>>;
    /// Commits the upload as `version` and removes it. Parts not named in
    /// `version.data` are returned for deletion, with any displaced null version.
    async fn complete_upload(
        &self,
        upload_id: &str,
        version: &NewVersion,
        precondition: Option<&Precondition>,
    ) -> StoreResult<Displaced>;
    /// Removes the upload; its part blobs are returned for deletion.
    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<Displaced>;

    // ---- global bucket-name registry (used in the registry region) ------

    /// Registers `name` for `region` unless taken; returns the holder either way.
    async fn registry_claim(&self, name: &str, region: &str) -> StoreResult<RegisteredBucket>;
    async fn registry_lookup(&self, name: &str) -> StoreResult<Option<RegisteredBucket>>;
    /// Every registered bucket, by name.
    async fn registry_list(&self) -> StoreResult<Vec<RegisteredBucket>>;
    /// Releases `name` if `region` holds it.
    async fn registry_release(&self, name: &str, region: &str) -> StoreResult<()>;

    // ---- housekeeping ----------------------------------------------------

    /// Every blob id any version or part references.
    async fn referenced_blobs(&self) -> StoreResult<HashSet<String>>;
    /// Whether the engine answers (a region's readiness).
    async fn ping(&self) -> StoreResult<()>;
    /// Whether other processes (front-ends of the region) write to this
    /// store too, so nothing read from it may be kept as current for long.
    fn is_shared(&self) -> bool;
    /// Closes the engine's connections; every acknowledged write has
    /// already committed.
    async fn close(&self);

    // ---- replication outbox ---------------------------------------------

    /// Commits a replica from another region under its own version id.
    /// Applying it again changes nothing; a version older than the key's
    /// current one is kept but never becomes current. Returns the blobs the
    /// caller may now delete: those it replaced, or, for a repeated
    /// delivery, those of `version` that no row owns. A blob another row
    /// owns is refused (`BlobInUse`).
    async fn put_replica(&self, version: &NewVersion) -> StoreResult<Displaced>;

    /// Adds replication tasks to an existing version (backfill), except for
    /// destinations it already has a task for, and marks it PENDING if any
    /// was added; returns how many.
    async fn add_tasks(&self, bucket: &str, key: &str, version_id: &str, tasks: &[NewTask]) -> StoreResult<u64>;
    /// Ends every lease at start: in a region process that owns its store,
    /// a lease that exists then belonged to a process that died.
    async fn release_leases(&self) -> StoreResult<u64>;
    /// Leases up to `limit` due PENDING tasks until `now_ms + lease_ms`. A
    /// task whose lease ran out (its worker died) is due again. A TAGS task
    /// waits while its version's OBJECT task to the same destination is
    /// pending: the tags go after the object.
    async fn lease_tasks(&self, now_ms: i64, lease_ms: i64, limit: usize) -> StoreResult<Vec<TaskRecord>>;
    /// Extends to `until_ms` the leases this store holds on `ids` that are
    /// still pending (a worker renews what it is still working on).
    async fn renew_leases(&self, ids: &[i64], until_ms: i64) -> StoreResult<u64>;
    /// Records how a leased task ended, and sets its version's replication
    /// status: FAILED if any task failed, else PENDING while any is pending,
    /// else COMPLETED (REPLICA on a replica).
    async fn finish_task(&self, id: i64, outcome: &TaskOutcome, now_ms: i64) -> StoreResult<()>;
    /// Pending operations and bytes of every (bucket, rule, destination).
    async fn replication_backlog(&self) -> StoreResult<Vec<Backlog>>;
    /// Counts, backlog and failures of `bucket`'s replication.
    async fn replication_report(&self, bucket: &str) -> StoreResult<ReplicationReport>;
    /// Makes every FAILED task of `bucket` PENDING again; returns how many.
    async fn retry_failed(&self, bucket: &str, now_ms: i64) -> StoreResult<u64>;
    /// Makes every PENDING task to `destination` that is backing off due
    /// at `now_ms` (the destination is reachable again); returns how many.
    async fn expedite(&self, destination: &str, now_ms: i64) -> StoreResult<u64>;
}
