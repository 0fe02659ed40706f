//! Object tagging: Get/Put/DeleteObjectTagging, and tag changes that
//! replication brings from another region.

use s3s::dto::{Tag, Tagging};
use s3s::{S3Result, s3_error};
use tern_iam::policy::Principal;
use tern_replication_model::protocol::TagManifest;
use tern_store::{NULL_VERSION, TagWrite};

use crate::error::store_error;
use crate::object::check_key;
use crate::region::Region;
use crate::wire::{now_ms, validate_tags};

impl Region {
    pub(crate) async fn get_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<(Vec<Tag>, Option<String>)> {
        let record = self.readable_version(bucket, key, version_id).await?;
        let tags = record.tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect();
        Ok((tags, (record.version_id != NULL_VERSION).then_some(record.version_id)))
    }

    /// Replaces the tag set (an empty set deletes it); returns the version
    /// tagged. The change replicates wherever the version did.
    pub(crate) async fn put_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tagging: Tagging,
    ) -> S3Result<Option<String>> {
        check_key(key)?;
        let tags: Vec<(String, String)> =
            tagging.tag_set.into_iter().map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())).collect();
        validate_tags(&tags)?;
        let version = self.readable_version(bucket, key, version_id).await?;
        let replication = self.plan_tag_replication(&version, &tags, None).await?;
        let write = TagWrite {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: Some(version.version_id),
            tags,
            stamp: None,
            now_ms: now_ms(),
            replication,
        };
        let applied = self.write_tags(&write).await?;
        Ok((applied.version_id != NULL_VERSION).then_some(applied.version_id))
    }

    /// Applies a tag change replication brings from another region, as
    /// `who` (the rule's role), who needs `s3:ReplicateTags` on the object.
    /// An older change than the tags in place is ignored; a newer one goes
    /// on to where this version replicates, except back where it came from.
    pub async fn apply_replica_tags(
        &self,
        bucket: &str,
        key: &str,
        manifest: TagManifest,
        who: &Principal,
    ) -> S3Result<()> {
        crate::replication::require_replication(who)?;
        self.bucket(bucket).await?;
        self.authorize(who, "s3:ReplicateTags", &crate::access::resource_arn(Some(bucket), Some(key))).await?;
        validate_tags(&manifest.tags)?;
        let found = self.meta.get_version(bucket, key, Some(&manifest.version_id)).await.map_err(store_error)?;
        let version = found.filter(|v| !v.is_delete_marker).ok_or_else(|| s3_error!(NoSuchVersion))?;
        let replication = self.plan_tag_replication(&version, &manifest.tags, Some(&manifest.origin)).await?;
        let write = TagWrite {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: Some(manifest.version_id),
            tags: manifest.tags,
            stamp: Some(manifest.tags_stamp),
            now_ms: now_ms(),
            replication,
        };
        self.write_tags(&write).await.map(drop)
    }

    async fn write_tags(&self, write: &TagWrite) -> S3Result<tern_store::VersionRecord> {
        let applied = self.meta.put_tags(write).await.map_err(store_error)?;
        if applied.tasks > 0 {
            self.replication_wake.notify_one();
        }
        Ok(applied.version)
    }
}
