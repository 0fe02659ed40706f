//! Buckets and their configuration documents as last read, kept by the one
//! process that writes an embedded store (see `is_shared`). Every PUT reads
//! its bucket, the bucket's default encryption and its replication rules:
//! three round trips to sqlx's `SQLite` threads, whose hand-offs cost more
//! CPU than the reads themselves.
//!
//! Only buckets that exist are kept, so names a caller makes up take no
//! memory, and only so many, with short documents: a caller who may create
//! buckets cannot make the cache hold more than a few tens of MiB. A write
//! that changes a bucket or a document bumps the cache's generation after
//! it commits (in the writer task, so even when its caller is gone); a read
//! made before that is not kept.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::model::BucketRecord;

/// Buckets kept at most; past it, keeping one forgets another.
const MAX_BUCKETS: usize = 4096;
/// Longer documents are not kept (a policy is at most 20 KiB, a lifecycle
/// or replication document of many rules far more); they are read each time.
const MAX_DOCUMENT: usize = 4096;

#[derive(Default)]
pub(super) struct BucketCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every change; a read keeps its result only if the
    /// generation it started under is still current.
    generation: u64,
    buckets: HashMap<String, Cached>,
}

/// What the cache knows of a bucket's document of one kind.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kept {
    /// Not read since the bucket last changed: ask the store.
    Unknown,
    /// The document, or `None` when the bucket has none of that kind.
    Document(Option<String>),
}

struct Cached {
    record: BucketRecord,
    /// Documents by kind; `None` when the bucket has none of that kind.
    configs: HashMap<String, Option<String>>,
}

impl BucketCache {
    /// Taken before reading the store; hand it back with what was read.
    pub(super) fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub(super) fn bucket(&self, name: &str) -> Option<BucketRecord> {
        self.lock().buckets.get(name).map(|cached| cached.record.clone())
    }

    pub(super) fn config(&self, bucket: &str, kind: &str) -> Kept {
        let inner = self.lock();
        let document = inner.buckets.get(bucket).and_then(|cached| cached.configs.get(kind));
        document.map_or(Kept::Unknown, |document| Kept::Document(document.clone()))
    }

    /// Keeps `record`, read from the store under `generation`.
    pub(super) fn keep_bucket(&self, generation: u64, record: &BucketRecord) {
        let mut inner = self.lock();
        if inner.generation != generation || inner.buckets.contains_key(&record.name) {
            return;
        }
        if inner.buckets.len() >= MAX_BUCKETS {
            let evicted = inner.buckets.keys().next().cloned();
            evicted.map(|name| inner.buckets.remove(&name));
        }
        inner.buckets.insert(record.name.clone(), Cached { record: record.clone(), configs: HashMap::new() });
    }

    /// Keeps a document read under `generation`, if its bucket is kept.
    pub(super) fn keep_config(&self, generation: u64, bucket: &str, kind: &str, body: Option<&str>) {
        let mut inner = self.lock();
        if inner.generation != generation || body.is_some_and(|body| body.len() > MAX_DOCUMENT) {
            return;
        }
        if let Some(cached) = inner.buckets.get_mut(bucket) {
            cached.configs.insert(kind.to_owned(), body.map(str::to_owned));
        }
    }

    /// A write to `bucket` (its row or a document) has finished, committed
    /// or not: forget it, and keep nothing read before.
    pub(super) fn changed(&self, bucket: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.buckets.remove(bucket);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while this lock is held.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Versioning;

    fn record(name: &str, versioning: Versioning) -> BucketRecord {
        BucketRecord { name: name.to_owned(), created_ms: 1, versioning }
    }

    #[test]
    fn a_read_from_before_a_change_is_not_kept() {
        let cache = BucketCache::default();
        let before = cache.generation();
        cache.changed("b");
        cache.keep_bucket(before, &record("b", Versioning::Unversioned));
        assert_eq!(cache.bucket("b"), None);

        let now = cache.generation();
        cache.keep_bucket(now, &record("b", Versioning::Unversioned));
        cache.keep_config(now, "b", "encryption", Some("{}"));
        cache.keep_config(now, "b", "replication", None);
        assert_eq!(cache.config("b", "encryption"), Kept::Document(Some("{}".to_owned())));
        assert_eq!(cache.config("b", "replication"), Kept::Document(None));
        assert_eq!(cache.config("b", "lifecycle"), Kept::Unknown, "a kind never read is not known");

        cache.changed("b");
        assert_eq!(cache.bucket("b"), None);
        assert_eq!(cache.config("b", "encryption"), Kept::Unknown);
    }

    #[test]
    fn documents_of_buckets_not_kept_are_not_kept() {
        let cache = BucketCache::default();
        let now = cache.generation();
        cache.keep_config(now, "made-up", "encryption", None);
        assert_eq!(cache.config("made-up", "encryption"), Kept::Unknown);
    }

    #[test]
    fn what_is_kept_is_bounded() {
        let cache = BucketCache::default();
        let now = cache.generation();
        for i in 0..MAX_BUCKETS + 10 {
            cache.keep_bucket(now, &record(&format!("b{i}"), Versioning::Enabled));
        }
        assert_eq!(cache.lock().buckets.len(), MAX_BUCKETS);
        let kept = cache.lock().buckets.keys().next().cloned().unwrap();
        cache.keep_config(now, &kept, "lifecycle", Some(&"x".repeat(MAX_DOCUMENT + 1)));
        assert_eq!(cache.config(&kept, "lifecycle"), Kept::Unknown);
        cache.keep_config(now, &kept, "encryption", Some(&"x".repeat(MAX_DOCUMENT)));
        assert!(matches!(cache.config(&kept, "encryption"), Kept::Document(Some(_))));
    }
}
