//! Bucket lifecycle: Put/Get/DeleteBucketLifecycleConfiguration, and the
//! passes a region's lifecycle worker runs to apply the rules: current
//! versions expire (a delete marker where versioning is on, the object
//! itself where it is off), delete markers that hide nothing go, noncurrent
//! versions expire, and incomplete multipart uploads are aborted.
//!
//! A pass is bounded (rows examined per rule, actions per pass) and keeps
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
use tern_store::{BucketRecord, KeyStart, NULL_VERSION, Precondition, StoreError, VersionSummary, Versioning};

pub use config::LifecycleConfig;
use config::{Expiration, NoncurrentExpiration, Rule};

use crate::error::store_error;
use crate::region::Region;
use crate::stored::StoredConfig as _;

/// Rows one rule examines per pass, at most: a pass over a huge bucket
/// resumes where the last one stopped.
const SCAN_PER_RULE: usize = 10_000;
const PAGE: usize = 1000;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleReport {
    pub expired: u64,
    pub delete_markers_removed: u64,
    pub noncurrent_expired: u64,
    pub uploads_aborted: u64,
}

impl LifecycleReport {
    fn total(&self) -> u64 {
        self.expired + self.delete_markers_removed + self.noncurrent_expired + self.uploads_aborted
    }
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

/// Where each rule's scans resume; kept by the worker between passes.
#[derive(Debug, Default)]
pub struct LifecycleCursors(HashMap<(String, String, &'static str), KeyStart>);

impl LifecycleCursors {
    fn take(&mut self, bucket: &str, rule: &str, action: &'static str) -> KeyStart {
        self.0.remove(&(bucket.to_owned(), rule.to_owned(), action)).unwrap_or(KeyStart::Beginning)
    }

    fn keep(&mut self, bucket: &str, rule: &str, action: &'static str, at: Option<KeyStart>) {
        if let Some(at) = at {
            self.0.insert((bucket.to_owned(), rule.to_owned(), action), at);
        }
    }
}

impl Region {
    pub(crate) async fn put_bucket_lifecycle(
        &self,
        bucket: &str,
        config: Option<&BucketLifecycleConfiguration>,
    ) -> S3Result<()> {
        self.bucket(bucket).await?;
        let config = config.ok_or_else(|| {
            s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            )
        })?;
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

    /// One pass over every bucket of the region with a lifecycle
    /// configuration; stops after about `budget` actions.
    pub async fn apply_lifecycle(
        &self,
        clock: LifecycleClock,
        budget: u64,
        cursors: &mut LifecycleCursors,
    ) -> S3Result<LifecycleReport> {
        let mut report = LifecycleReport::default();
        for bucket in self.meta.list_buckets().await.map_err(store_error)? {
            let Some(config) = LifecycleConfig::load(&*self.meta, &bucket.name).await? else { continue };
            for rule in config.rules.iter().filter(|r| r.enabled) {
                if report.total() >= budget {
                    return Ok(report);
                }
                let mut pass = Pass { region: self, bucket: &bucket, rule, clock, report: &mut report, cursors };
                pass.run().await?;
            }
        }
        Ok(report)
    }
}

/// One rule applied to one bucket.
struct Pass<'a> {
    region: &'a Region,
    bucket: &'a BucketRecord,
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

    /// Tags of a version, read only when the rule filters by them.
    async fn tags_of(&self, v: &VersionSummary) -> S3Result<Vec<(String, String)>> {
        if !self.rule.filter.has_tags() {
            return Ok(Vec::new());
        }
        let found = self.region.meta.get_version(&self.bucket.name, &v.key, Some(&v.version_id)).await;
        Ok(found.map_err(store_error)?.map(|r| r.tags).unwrap_or_default())
    }

    async fn covers(&self, v: &VersionSummary) -> S3Result<bool> {
        Ok(self.rule.filter.covers(&v.key, v.size, &self.tags_of(v).await?))
    }

    async fn expire_current(&mut self, due: impl Fn(&LifecycleClock, &VersionSummary) -> bool) -> S3Result<()> {
        let (bucket, prefix) = (self.bucket.name.clone(), self.rule.filter.prefix());
        let mut start = self.cursors.take(&bucket, &self.rule.id, "expire");
        let mut examined = 0;
        while examined < SCAN_PER_RULE {
            let rows = self.region.meta.list_current(&bucket, &prefix, &start, PAGE).await.map_err(store_error)?;
            let Some(last) = rows.last() else { return Ok(()) };
            start = KeyStart::After(last.key.clone());
            examined += rows.len();
            for v in &rows {
                if !v.is_delete_marker && due(&self.clock, v) && self.covers(v).await? && self.expire(v).await? {
                    self.report.expired += 1;
                }
            }
        }
        self.cursors.keep(&bucket, &self.rule.id, "expire", Some(start));
        Ok(())
    }

    /// Expires one current version as S3 does; false if it changed meanwhile.
    async fn expire(&self, v: &VersionSummary) -> S3Result<bool> {
        let meta = &self.region.meta;
        if self.bucket.versioning == Versioning::Unversioned {
            let (removed, displaced) = meta
                .delete_version(&self.bucket.name, &v.key, NULL_VERSION, Some(v.modified_ms))
                .await
                .map_err(store_error)?;
            self.region.release_blobs(&displaced.blobs).await;
            return Ok(removed.is_some());
        }
        // Only over the object it saw, and with no replication tasks: as on
        // AWS, a lifecycle expiry does not replicate.
        let marker = crate::object::delete_marker(self.bucket, &v.key);
        match meta.put_version(&marker, Some(&Precondition::Match(v.etag.clone()))).await {
            Ok(_) => Ok(true),
            Err(StoreError::PreconditionFailed | StoreError::NoSuchKey) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Removes delete markers that hide nothing and noncurrent versions past
    /// their days, walking every version of the rule's keys.
    async fn sweep_versions(&mut self, markers: bool, noncurrent: Option<NoncurrentExpiration>) -> S3Result<()> {
        let (bucket, prefix) = (self.bucket.name.clone(), self.rule.filter.prefix());
        let mut start = self.cursors.take(&bucket, &self.rule.id, "versions");
        let mut examined = 0;
        while examined < SCAN_PER_RULE {
            let rows = self.region.meta.list_versions(&bucket, &prefix, &start, PAGE).await.map_err(store_error)?;
            let full = rows.len() == PAGE;
            examined += rows.len();
            let mut keys = group_by_key(rows);
            // A full page may end inside a key: that key is read again, whole, next.
            let unfinished = if full && keys.len() > 1 { keys.pop() } else { None };
            start = match (&unfinished, keys.last()) {
                (Some(key), _) => KeyStart::From(key[0].key.clone()),
                (None, Some(key)) => KeyStart::After(key[0].key.clone()),
                (None, None) => return Ok(()),
            };
            for versions in &keys {
                self.sweep_key(versions, markers, noncurrent).await?;
            }
            if !full {
                return Ok(());
            }
        }
        self.cursors.keep(&bucket, &self.rule.id, "versions", Some(start));
        Ok(())
    }

    /// One key's versions, newest first.
    async fn sweep_key(
        &mut self,
        versions: &[VersionSummary],
        markers: bool,
        noncurrent: Option<NoncurrentExpiration>,
    ) -> S3Result<()> {
        let Some(latest) = versions.first() else { return Ok(()) };
        if markers && versions.len() == 1 && latest.is_delete_marker {
            if self.remove(latest).await? {
                self.report.delete_markers_removed += 1;
            }
            return Ok(());
        }
        let Some(rule) = noncurrent else { return Ok(()) };
        let mut kept = 0;
        // Each noncurrent version became so when its successor was written.
        for pair in versions.windows(2) {
            let (successor, v) = (&pair[0], &pair[1]);
            if v.is_delete_marker || !self.covers(v).await? {
                continue;
            }
            if rule.keep_newer.is_some_and(|keep| kept < keep) {
                kept += 1;
                continue;
            }
            if self.clock.after_days(successor.modified_ms, rule.days) && self.remove(v).await? {
                self.report.noncurrent_expired += 1;
            }
        }
        Ok(())
    }

    async fn remove(&self, v: &VersionSummary) -> S3Result<bool> {
        let removed =
            self.region.meta.delete_version(&self.bucket.name, &v.key, &v.version_id, Some(v.modified_ms)).await;
        let (removed, displaced) = removed.map_err(store_error)?;
        self.region.release_blobs(&displaced.blobs).await;
        Ok(removed.is_some())
    }

    async fn abort_uploads(&mut self, days: u32) -> S3Result<()> {
        let (bucket, prefix) = (self.bucket.name.clone(), self.rule.filter.prefix());
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        let mut examined = 0;
        while examined < SCAN_PER_RULE {
            let uploads = self
                .region
                .meta
                .list_uploads(&bucket, &prefix, key_marker.as_deref(), id_marker.as_deref(), PAGE)
                .await
                .map_err(store_error)?;
            examined += uploads.len();
            for upload in uploads.iter().filter(|u| self.clock.after_days(u.created_ms, days)) {
                match self.region.meta.abort_upload(&bucket, &upload.upload_id).await {
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
