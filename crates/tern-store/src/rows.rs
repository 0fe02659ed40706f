//! Records read back from rows, for both SQL engines: each selects its
//! columns under the same names and with the same shapes (JSON as text,
//! integers as 64 bits), so one decoder serves both.

use bytes::Bytes;
use sqlx::Row as _;

use crate::model::{
    BlobPart, BucketRecord, ObjectAttrs, ObjectData, PartRecord, RegisteredBucket, UploadRecord, VersionRecord,
    VersionSummary, Versioning,
};
use crate::replication::{TaskKind, TaskRecord, TaskState};
use crate::{StoreError, StoreResult};

/// A row's columns, by name, in the types both engines decode alike.
pub(crate) trait Columns {
    fn text(&self, name: &str) -> StoreResult<String>;
    fn maybe_text(&self, name: &str) -> StoreResult<Option<String>>;
    fn int(&self, name: &str) -> StoreResult<i64>;
    fn maybe_int(&self, name: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, name: &str) -> StoreResult<bool>;
    fn maybe_bytes(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
}

macro_rules! columns_of {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, name: &str) -> StoreResult<String> {
                Ok(self.try_get(name)?)
            }
            fn maybe_text(&self, name: &str) -> StoreResult<Option<String>> {
                Ok(self.try_get(name)?)
            }
            fn int(&self, name: &str) -> StoreResult<i64> {
                Ok(self.try_get(name)?)
            }
            fn maybe_int(&self, name: &str) -> StoreResult<Option<i64>> {
                Ok(self.try_get(name)?)
            }
            fn flag(&self, name: &str) -> StoreResult<bool> {
                Ok(self.try_get(name)?)
            }
            fn maybe_bytes(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
                Ok(self.try_get(name)?)
            }
        }
    };
}

columns_of!(sqlx::sqlite::SqliteRow);
columns_of!(sqlx::postgres::PgRow);

pub(crate) fn to_i64(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{n} out of range")))
}

pub(crate) fn to_u64(n: i64) -> StoreResult<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{n} out of range")))
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(StoreError::from)
}

pub(crate) fn parts_of(data: &ObjectData) -> &[BlobPart] {
    match data {
        ObjectData::Inline(_) => &[],
        ObjectData::Blobs(parts) => parts,
    }
}

pub(crate) fn inline_of(data: &ObjectData) -> Option<&[u8]> {
    match data {
        ObjectData::Inline(bytes) => Some(bytes.as_ref()),
        ObjectData::Blobs(_) => None,
    }
}

pub(crate) fn version(row: &impl Columns) -> StoreResult<VersionRecord> {
    let parts: Vec<BlobPart> = serde_json::from_str(&row.text("parts")?)?;
    let data = match row.maybe_bytes("inline_data")? {
        Some(bytes) => ObjectData::Inline(Bytes::from(bytes)),
        None => ObjectData::Blobs(parts),
    };
    Ok(VersionRecord {
        bucket: row.text("bucket")?,
        key: row.text("key")?,
        version_id: row.text("version_id")?,
        is_latest: row.flag("is_latest")?,
        is_delete_marker: row.flag("is_delete_marker")?,
        modified_ms: row.int("modified_ms")?,
        size: to_u64(row.int("size")?)?,
        etag: row.text("etag")?,
        attrs: serde_json::from_str(&row.text("attrs")?)?,
        tags: serde_json::from_str(&row.text("tags")?)?,
        tags_stamp: row.int("tags_stamp")?,
        data,
        bucket_versioning: Versioning::from_db(row.maybe_text("bucket_versioning")?.as_deref()),
    })
}

pub(crate) fn attrs(row: &impl Columns) -> StoreResult<ObjectAttrs> {
    Ok(serde_json::from_str(&row.text("attrs")?)?)
}

pub(crate) fn summary(row: &impl Columns) -> StoreResult<VersionSummary> {
    let attrs = self::attrs(row)?;
    Ok(VersionSummary {
        key: row.text("key")?,
        version_id: row.text("version_id")?,
        is_latest: row.flag("is_latest")?,
        is_delete_marker: row.flag("is_delete_marker")?,
        modified_ms: row.int("modified_ms")?,
        size: to_u64(row.int("size")?)?,
        etag: row.text("etag")?,
        storage_class: attrs.storage_class,
        checksum_algorithm: attrs.checksum.map(|c| c.algorithm),
    })
}

pub(crate) fn upload(row: &impl Columns) -> StoreResult<UploadRecord> {
    Ok(UploadRecord {
        upload_id: row.text("upload_id")?,
        bucket: row.text("bucket")?,
        key: row.text("key")?,
        created_ms: row.int("created_ms")?,
        attrs: serde_json::from_str(&row.text("attrs")?)?,
        tags: serde_json::from_str(&row.text("tags")?)?,
    })
}

pub(crate) fn part(row: &impl Columns) -> StoreResult<PartRecord> {
    Ok(PartRecord {
        upload_id: row.text("upload_id")?,
        part_number: u32::try_from(row.int("part_number")?).map_err(|_| StoreError::Corrupt("part number".into()))?,
        size: to_u64(row.int("size")?)?,
        etag: row.text("etag")?,
        blob: row.text("blob")?,
        modified_ms: row.int("modified_ms")?,
        checksum: row.maybe_text("checksum")?,
        binding: row.maybe_text("binding")?,
    })
}

pub(crate) fn task(row: &impl Columns) -> StoreResult<TaskRecord> {
    Ok(TaskRecord {
        id: row.int("id")?,
        bucket: row.text("bucket")?,
        key: row.text("key")?,
        version_id: row.text("version_id")?,
        kind: TaskKind::from_db(&row.text("kind")?),
        rule_id: row.text("rule_id")?,
        destination: row.text("destination")?,
        role: row.text("role")?,
        replica_kms_key_id: row.maybe_text("replica_kms_key_id")?,
        storage_class: row.maybe_text("storage_class")?,
        size: to_u64(row.int("size")?)?,
        state: TaskState::from_db(&row.text("state")?),
        attempts: u32::try_from(row.int("attempts")?).unwrap_or(u32::MAX),
        reason: row.maybe_text("reason")?,
        created_ms: row.int("created_ms")?,
        finished_ms: row.maybe_int("finished_ms")?,
    })
}

pub(crate) fn registered(row: &impl Columns) -> StoreResult<RegisteredBucket> {
    Ok(RegisteredBucket { name: row.text("name")?, region: row.text("region")?, created_ms: row.int("created_ms")? })
}

pub(crate) fn bucket(row: &impl Columns) -> StoreResult<BucketRecord> {
    Ok(BucketRecord {
        name: row.text("name")?,
        created_ms: row.int("created_ms")?,
        versioning: Versioning::from_db(row.maybe_text("versioning")?.as_deref()),
    })
}
