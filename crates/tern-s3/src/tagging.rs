//! Object tagging: Get/Put/DeleteObjectTagging.

use s3s::S3Result;
use s3s::dto::{Tag, Tagging};
use tern_store::NULL_VERSION;

use crate::context::Region;
use crate::error::store_error;
use crate::object::check_key;
use crate::wire::validate_tags;

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

    /// Replaces the tag set (an empty set deletes it); returns the version tagged.
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
        self.readable_version(bucket, key, version_id).await?;
        let record = self.meta.put_tags(bucket, key, version_id, &tags).await.map_err(store_error)?;
        Ok((record.version_id != NULL_VERSION).then_some(record.version_id))
    }
}
