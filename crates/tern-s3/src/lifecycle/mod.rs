//! Bucket lifecycle: Put/Get/DeleteBucketLifecycleConfiguration, and the
//! passes a region's lifecycle worker runs to apply the rules: current
//! versions expire (a delete marker where versioning is on, the object
//! itself where it is off), delete markers that hide nothing go, noncurrent
//! versions expire, and incomplete multipart uploads are aborted.
//!
//! A pass is bounded (rows read per rule, and per pass) and keeps
//! nothing but in-memory cursors, so it is restart-safe: after a restart
//! the rules are simply evaluated again. Every action re-checks what it
//! acts on in its own write (a null version only if unchanged since it was
//! listed, a delete marker only over the object it saw), so front-ends
//! sharing a store may run passes at once. As on AWS, what lifecycle
//! deletes is not replicated.

mod config;

use std::collections::HashMap;

use s3s::dto::{BucketLifecycleConfiguration, LifecycleRule};
use s3s::{S3Result, s3_error};
use tern_store::{
    BucketRecord, DeleteGuard, KeyStart, NULL_VERSION, Precondition, StoreError, VersionSummary, Versioning,
};

pub use config::LifecycleConfig;
use config::{Expiration, NoncurrentExpiration, Rule};

use crate::error::store_error;
use crate::region::Region;
use crate::stored::StoredConfig as _;

/// Rows one rule examines per pass, at most: a pass over a huge bucket
/// resumes where the last one stopped.
const SCAN_PER_RULE: u64 = 10_000;
const PAGE: usize = 1000;
/// Versions of one key a pass holds at most; beyond them, the key's oldest
/// wait for a later pass.
const MAX_KEY_VERSIONS: usize = 100_000;

/// What a pass did, and how many rows it read to decide.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleReport {
    pub expired: u64,
    pub delete_markers_removed: u64,
    pub noncurrent_expired: u64,
    pub uploads_aborted: u64,
    pub examined: u64,
}

/// When a pass runs, and how long its "day" is (86 400 s; shorter in tests).
#[derive(Debug, Clone, Copy)]
pub struct LifecycleClock {
    pub now_ms: i64,
    pub day_ms: i64,
}

impl LifecycleClock {
    fn after_days(&self, since_ms: i64, days: u32) -> bool {
        self.now_ms >= since_ms.saturating_add(self.day_ms.saturating_mul(i64::from(days)))
    }
}

/// Where scans resume; kept by the worker between passes (and lost on a
/// restart, which only means starting over).
#[derive(Debug, Default)]
pub struct LifecycleCursors {
    keys: HashMap<(String, String, &'static str), KeyStart>,
    uploads: HashMap<(String, String), (String, String)>,
    /// The bucket the last pass stopped in: the next starts there.
    bucket: Option<String>,
}

impl LifecycleCursors {
    fn take(&mut self, bucket: &str, rule: &str, action: &'static str) -> KeyStart {
        self.keys.remove(&(bucket.to_owned(), rule.to_owned(), action)).unwrap_or(KeyStart::Beginning)
    }

    fn keep(&mut self, bucket: &str, rule: &str, action: &'static str, at: KeyStart) {
        self.keys.insert((bucket.to_owned(), rule.to_owned(), action), at);
    }
}

impl Region {
    pub(crate) async fn put_bucket_lifecycle(
        &self,
        bucket: &str,
        config: Option<&BucketLifecycleConfiguration>,
    ) -> S3Result<()> {
        self.bucket(bucket).await?;
        let config = config.ok_or_else(crate::error::malformed_xml)?;
        config::parse(config)?.store(&*self.meta, bucket).await
    }

    pub(crate) async fn get_bucket_lifecycle(&self, bucket: &str) -> S3Result<Vec<LifecycleRule>> {
        self.bucket(bucket).await?;
        let config = LifecycleConfig::load(&*self.meta, bucket).await?;
        let config = config
            .ok_or_else(|| s3_error!(NoSuchLifecycleConfiguration, "The lifecycle configuration does not exist"))?;
        Ok(config::to_dto(&config))
    }

    pub(crate) async fn delete_bucket_lifecycle(&self, bucket: &str) -> S3Result<()> {
        self.bucket(bucket).await?;
        LifecycleConfig::remove(&*self.meta, bucket).await
    }

    /// One pass over the buckets of the region with a lifecycle
    /// configuration, from where the last pass stopped; ends once it has
    /// read about `budget` rows. A bucket that fails is logged and skipped.
    pub async fn apply_lifecycle(
        &self,
        clock: LifecycleClock,
        budget: u64,
        cursors: &mut LifecycleCursors,
    ) -> S3Result<LifecycleReport> {
        let mut report = LifecycleReport::default();
        let mut buckets = self.meta.list_buckets().await.map_err(store_error)?;
        // Round-robin: a busy bucket early in name order cannot starve the rest.
        let resume = cursors.bucket.take();
        let first = resume.and_then(|name| buckets.iter().position(|b| b.name >= name)).unwrap_or(0);
        buckets.rotate_left(first);
        for bucket in &buckets {
            if report.examined >= budget {
                cursors.bucket = Some(bucket.name.clone());
                break;
            }
            if let Err(e) = self.apply_bucket_lifecycle(bucket, clock, &mut report, cursors).await {
                tracing::warn!(bucket = bucket.name, error = %e, "lifecycle skipped a bucket this pass");
            }
        }
        Ok(report)
    }

    async fn apply_bucket_lifecycle(
        &self,
        bucket: &BucketRecord,
        clock: LifecycleClock,
        report: &mut LifecycleReport,
        cursors: &mut LifecycleCursors,
    ) -> S3Result<()> {
        let Some(config) = LifecycleConfig::load(&*self.meta, &bucket.name).await? else { return Ok(()) };
        for rule in config.rules.iter().filter(|r| r.enabled) {
            let mut pass =
                Pass { region: self, bucket: &bucket.name, rule, clock, report: &mut *report, cursors: &mut *cursors };
            pass.run().await?;
        }
        Ok(())
    }
}

/// One rule applied to one bucket.
struct Pass<'a> {
    region: &'a Region,
    bucket: &'a str,
    rule: &'a Rule,
    clock: LifecycleClock,
    report: &'a mut LifecycleReport,
    cursors: &'a mut LifecycleCursors,
}

impl Pass<'_> {
    async fn run(&mut self) -> S3Result<()> {
        match self.rule.expiration {
            Some(Expiration::Days(days)) => {
                self.expire_current(|clock, v| clock.after_days(v.modified_ms, days)).await?;
            }
            Some(Expiration::Date(at)) => self.expire_current(|clock, _| clock.now_ms >= at).await?,
            Some(Expiration::ExpiredDeleteMarkers) | None => {}
        }
        let markers = self.rule.expiration == Some(Expiration::ExpiredDeleteMarkers);
        if markers || self.rule.noncurrent.is_some() {
            self.sweep_versions(markers, self.rule.noncurrent).await?;
        }
        if let Some(days) = self.rule.abort_upload_days {
            self.abort_uploads(days).await?;
        }
        Ok(())
    }

    fn examined(&mut self, rows: usize) {
        self.report.examined += u64::try_from(rows).unwrap_or(u64::MAX);
    }

    /// Whether this rule's scan has read its share since `since` (the
    /// report's count when the scan began).
    fn scanned_enough(&self, since: u64) -> bool {
        self.report.examined - since >= SCAN_PER_RULE
    }

    /// Tags of a version, read only when the rule filters by them.
    async fn tags_of(&self, v: &VersionSummary) -> S3Result<Vec<(String, String)>> {
        if !self.rule.filter.has_tags() {
            return Ok(Vec::new());
        }
        let found = self.region.meta.get_version(self.bucket, &v.key, Some(&v.version_id)).await;
        Ok(found.map_err(store_error)?.map(|r| r.tags).unwrap_or_default())
    }

    async fn covers(&self, v: &VersionSummary) -> S3Result<bool> {
        Ok(self.rule.filter.covers(&v.key, v.size, &self.tags_of(v).await?))
    }

    async fn expire_current(&mut self, due: impl Fn(&LifecycleClock, &VersionSummary) -> bool) -> S3Result<()> {
        let prefix = self.rule.filter.prefix();
        let mut start = self.cursors.take(self.bucket, &self.rule.id, "expire");
        let since = self.report.examined;
        while !self.scanned_enough(since) {
            let rows = self.region.meta.list_current(self.bucket, &prefix, &start, PAGE).await.map_err(store_error)?;
            self.examined(rows.len());
            let Some(last) = rows.last() else { return Ok(()) };
            start = KeyStart::After(last.key.clone());
            for v in &rows {
                if !v.is_delete_marker && due(&self.clock, v) && self.covers(v).await? && self.expire(v).await? {
                    self.report.expired += 1;
                }
            }
            if rows.len() < PAGE {
                return Ok(());
            }
        }
        self.cursors.keep(self.bucket, &self.rule.id, "expire", start);
        Ok(())
    }

    /// Expires one current version as S3 does, by the bucket's versioning
    /// now; false if the object changed since it was listed.
    async fn expire(&self, v: &VersionSummary) -> S3Result<bool> {
        let meta = &self.region.meta;
        let Some(bucket) = meta.get_bucket(self.bucket).await.map_err(store_error)? else { return Ok(false) };
        if bucket.versioning == Versioning::Unversioned {
            let guard = DeleteGuard { written_ms: v.modified_ms, latest: true, alone: false };
            let (removed, displaced) =
                meta.delete_version(self.bucket, &v.key, NULL_VERSION, Some(guard)).await.map_err(store_error)?;
            self.region.release_blobs(&displaced.blobs).await;
            return Ok(removed.is_some());
        }
        // Only over the very version it saw, and with no replication tasks:
        // as on AWS, a lifecycle expiry does not replicate.
        let marker = crate::object::delete_marker(&bucket, &v.key);
        let seen = Precondition::Unchanged { version_id: v.version_id.clone(), modified_ms: v.modified_ms };
        match meta.put_version(&marker, Some(&seen)).await {
            Ok(_) => Ok(true),
            Err(StoreError::PreconditionFailed | StoreError::NoSuchKey) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Removes delete markers that hide nothing and noncurrent versions past
    /// their days, one key (all its versions) at a time.
    async fn sweep_versions(&mut self, markers: bool, noncurrent: Option<NoncurrentExpiration>) -> S3Result<()> {
        let prefix = self.rule.filter.prefix();
        let mut start = self.cursors.take(self.bucket, &self.rule.id, "versions");
        let since = self.report.examined;
        while !self.scanned_enough(since) {
            let rows = self.region.meta.list_versions(self.bucket, &prefix, &start, PAGE).await.map_err(store_error)?;
            let full = rows.len() == PAGE;
            self.examined(rows.len());
            let mut keys = group_by_key(rows);
            if full && let Some(unfinished) = keys.pop() {
                // The page may end inside a key: read that key whole.
                let whole = self.rest_of_key(&prefix, unfinished).await?;
                keys.push(whole);
            }
            let Some(last) = keys.last() else { return Ok(()) };
            start = KeyStart::After(last[0].key.clone());
            for versions in &mut keys {
                self.sweep_key(versions, markers, noncurrent).await?;
            }
            if !full {
                return Ok(());
            }
        }
        self.cursors.keep(self.bucket, &self.rule.id, "versions", start);
        Ok(())
    }

    /// `versions` of one key and the rest of its versions after them.
    async fn rest_of_key(&mut self, prefix: &str, mut versions: Vec<VersionSummary>) -> S3Result<Vec<VersionSummary>> {
        loop {
            let last = versions.last().expect("a key has a version");
            let after = KeyStart::AfterVersion { key: last.key.clone(), version_id: last.version_id.clone() };
            let rows = self.region.meta.list_versions(self.bucket, prefix, &after, PAGE).await.map_err(store_error)?;
            self.examined(rows.len());
            let key = last.key.clone();
            let same: Vec<VersionSummary> = rows.into_iter().take_while(|r| r.key == key).collect();
            // Fewer than a page of the key: it ended (or the listing did).
            let ended = same.len() < PAGE;
            versions.extend(same);
            if ended || versions.len() >= MAX_KEY_VERSIONS {
                return Ok(versions);
            }
        }
    }

    /// One key's versions. Which one is current is the store's flag, and
    /// each noncurrent version became so when the next newer was written.
    async fn sweep_key(
        &mut self,
        versions: &mut [VersionSummary],
        markers: bool,
        noncurrent: Option<NoncurrentExpiration>,
    ) -> S3Result<()> {
        // Newest first by time: a replica that arrived late is stored later
        // but is older.
        versions.sort_by(|a, b| b.modified_ms.cmp(&a.modified_ms).then(b.is_latest.cmp(&a.is_latest)));
        if let [only] = &*versions {
            if markers && only.is_latest && only.is_delete_marker && self.remove(only, (true, true)).await? {
                self.report.delete_markers_removed += 1;
            }
            return Ok(());
        }
        let Some(rule) = noncurrent else { return Ok(()) };
        let mut kept = 0;
        for pair in versions.windows(2) {
            let (successor, v) = (&pair[0], &pair[1]);
            if v.is_latest || v.is_delete_marker || !self.covers(v).await? {
                continue;
            }
            if rule.keep_newer.is_some_and(|keep| kept < keep) {
                kept += 1;
                continue;
            }
            if self.clock.after_days(successor.modified_ms, rule.days) && self.remove(v, (false, false)).await? {
                self.report.noncurrent_expired += 1;
            }
        }
        Ok(())
    }

    /// Removes `v` if it is still as listed: current or not, and (for a
    /// marker that hides nothing) still alone.
    async fn remove(&self, v: &VersionSummary, (latest, alone): (bool, bool)) -> S3Result<bool> {
        let guard = DeleteGuard { written_ms: v.modified_ms, latest, alone };
        let removed = self.region.meta.delete_version(self.bucket, &v.key, &v.version_id, Some(guard)).await;
        let (removed, displaced) = removed.map_err(store_error)?;
        self.region.release_blobs(&displaced.blobs).await;
        Ok(removed.is_some())
    }

    async fn abort_uploads(&mut self, days: u32) -> S3Result<()> {
        let prefix = self.rule.filter.prefix();
        let at = (self.bucket.to_owned(), self.rule.id.clone());
        let (mut key_marker, mut id_marker) =
            self.cursors.uploads.remove(&at).map_or((None, None), |(k, u)| (Some(k), Some(u)));
        let since = self.report.examined;
        while !self.scanned_enough(since) {
            let uploads = self
                .region
                .meta
                .list_uploads(self.bucket, &prefix, key_marker.as_deref(), id_marker.as_deref(), PAGE)
                .await
                .map_err(store_error)?;
            self.examined(uploads.len());
            for upload in uploads.iter().filter(|u| self.clock.after_days(u.created_ms, days)) {
                match self.region.meta.abort_upload(self.bucket, &upload.upload_id).await {
                    Ok(displaced) => {
                        self.region.release_blobs(&displaced.blobs).await;
                        self.report.uploads_aborted += 1;
                    }
                    Err(StoreError::NoSuchUpload) => {}
                    Err(e) => return Err(store_error(e)),
                }
            }
            let Some(last) = uploads.last().filter(|_| uploads.len() == PAGE) else { return Ok(()) };
            (key_marker, id_marker) = (Some(last.key.clone()), Some(last.upload_id.clone()));
        }
        if let (Some(key), Some(id)) = (key_marker, id_marker) {
            self.cursors.uploads.insert(at, (key, id));
        }
        Ok(())
    }
}

fn group_by_key(rows: Vec<VersionSummary>) -> Vec<Vec<VersionSummary>> {
    let mut keys: Vec<Vec<VersionSummary>> = Vec::new();
    for row in rows {
        match keys.last_mut() {
            Some(group) if group[0].key == row.key => group.push(row),
            _ => keys.push(vec![row]),
        }
    }
    keys
}
