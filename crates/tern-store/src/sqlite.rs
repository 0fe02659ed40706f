//! The embedded metadata engine: `SQLite` through sqlx.
//!
//! WAL with `synchronous=FULL`: a committed transaction survives power loss,
//! not only `kill -9`. All writes go through a one-connection pool, so they are
//! serialized without `SQLITE_BUSY`; reads use a separate pool and never wait
//! for writers (WAL snapshots).

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::meta::MetaStore;
use crate::model::prefix_upper_bound;
use crate::model::{
    BlobPart, BucketRecord, Displaced, KeyStart, NULL_VERSION, NewVersion, ObjectAttrs, ObjectData, PartRecord,
    Precondition, RegisteredBucket, UploadRecord, VersionRecord, VersionSummary, Versioning,
};
use crate::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Columns of `versions` every version query selects, in [`version_from_row`] order.
const VERSION_COLUMNS: &str =
    "key, version_id, is_latest, is_delete_marker, modified_ms, size, etag, attrs, tags, inline_data, parts, bucket";
const SUMMARY_COLUMNS: &str = "key, version_id, is_latest, is_delete_marker, modified_ms, size, etag, attrs";

pub struct SqliteMeta {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteMeta {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(8).connect_with(options.read_only(true)).await?;
        Ok(Self { writer, reader })
    }

    /// Closes both pools, waiting for in-flight statements.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Every dynamic statement here is assembled from constant fragments of this
/// file; values always travel as bound parameters, never as SQL text.
fn audited(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(StoreError::from)
}

fn parts_of(data: &ObjectData) -> &[BlobPart] {
    match data {
        ObjectData::Inline(_) => &[],
        ObjectData::Blobs(parts) => parts,
    }
}

fn to_i64(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{n} out of range")))
}

fn to_u64(n: i64) -> StoreResult<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{n} out of range")))
}

fn version_from_row(row: &SqliteRow) -> StoreResult<VersionRecord> {
    let inline: Option<Vec<u8>> = row.try_get("inline_data")?;
    let parts: Vec<BlobPart> = serde_json::from_str(row.try_get("parts")?)?;
    let data = match inline {
        Some(bytes) => ObjectData::Inline(Bytes::from(bytes)),
        None => ObjectData::Blobs(parts),
    };
    Ok(VersionRecord {
        bucket: row.try_get("bucket")?,
        key: row.try_get("key")?,
        version_id: row.try_get("version_id")?,
        is_latest: row.try_get("is_latest")?,
        is_delete_marker: row.try_get("is_delete_marker")?,
        modified_ms: row.try_get("modified_ms")?,
        size: to_u64(row.try_get("size")?)?,
        etag: row.try_get("etag")?,
        attrs: serde_json::from_str(row.try_get("attrs")?)?,
        tags: serde_json::from_str(row.try_get("tags")?)?,
        data,
    })
}

fn summary_from_row(row: &SqliteRow) -> StoreResult<VersionSummary> {
    let attrs: ObjectAttrs = serde_json::from_str(row.try_get("attrs")?)?;
    Ok(VersionSummary {
        key: row.try_get("key")?,
        version_id: row.try_get("version_id")?,
        is_latest: row.try_get("is_latest")?,
        is_delete_marker: row.try_get("is_delete_marker")?,
        modified_ms: row.try_get("modified_ms")?,
        size: to_u64(row.try_get("size")?)?,
        etag: row.try_get("etag")?,
        storage_class: attrs.storage_class,
        checksum_algorithm: attrs.checksum.map(|c| c.algorithm),
    })
}

fn upload_from_row(row: &SqliteRow) -> StoreResult<UploadRecord> {
    Ok(UploadRecord {
        upload_id: row.try_get("upload_id")?,
        bucket: row.try_get("bucket")?,
        key: row.try_get("key")?,
        created_ms: row.try_get("created_ms")?,
        attrs: serde_json::from_str(row.try_get("attrs")?)?,
        tags: serde_json::from_str(row.try_get("tags")?)?,
    })
}

fn part_from_row(row: &SqliteRow) -> StoreResult<PartRecord> {
    Ok(PartRecord {
        upload_id: row.try_get("upload_id")?,
        part_number: u32::try_from(row.try_get::<i64, _>("part_number")?)
            .map_err(|_| StoreError::Corrupt("part number".into()))?,
        size: to_u64(row.try_get("size")?)?,
        etag: row.try_get("etag")?,
        blob: row.try_get("blob")?,
        modified_ms: row.try_get("modified_ms")?,
        checksum: row.try_get("checksum")?,
    })
}

/// SQL fragment and binds for "key within `prefix`, starting at `start`".
/// `AfterVersion` is handled by the version listing itself.
fn key_range(prefix: &str, start: &KeyStart) -> (String, Vec<String>) {
    let mut clauses = vec!["key >= ?".to_owned()];
    let mut binds = vec![prefix.to_owned()];
    if let Some(upper) = prefix_upper_bound(prefix) {
        clauses.push("key < ?".to_owned());
        binds.push(upper);
    }
    match start {
        KeyStart::Beginning | KeyStart::AfterVersion { .. } => {}
        KeyStart::After(key) => {
            clauses.push("key > ?".to_owned());
            binds.push(key.clone());
        }
        KeyStart::From(key) => {
            clauses.push("key >= ?".to_owned());
            binds.push(key.clone());
        }
    }
    (clauses.join(" AND "), binds)
}

async fn require_bucket(conn: &mut SqliteConnection, bucket: &str) -> StoreResult<()> {
    let found = sqlx::query("SELECT 1 FROM buckets WHERE name = ?").bind(bucket).fetch_optional(&mut *conn).await?;
    found.map(|_| ()).ok_or(StoreError::NoSuchBucket)
}

fn check_precondition(current: Option<&SqliteRow>, precondition: Option<&Precondition>) -> StoreResult<()> {
    let live_etag = match current {
        Some(row) if !row.try_get::<bool, _>("is_delete_marker")? => Some(row.try_get::<String, _>("etag")?),
        _ => None,
    };
    let holds = match precondition {
        None => true,
        Some(Precondition::NoneMatchAny) => live_etag.is_none(),
        Some(Precondition::Match(etag)) => live_etag.as_deref() == Some(etag.as_str()),
    };
    if holds { Ok(()) } else { Err(StoreError::PreconditionFailed) }
}

/// The body of `put_version`, shared with `complete_upload`.
async fn insert_version(
    conn: &mut SqliteConnection,
    v: &NewVersion,
    precondition: Option<&Precondition>,
) -> StoreResult<Displaced> {
    require_bucket(conn, &v.bucket).await?;
    let current =
        sqlx::query("SELECT etag, is_delete_marker FROM versions WHERE bucket = ? AND key = ? AND is_latest = 1")
            .bind(&v.bucket)
            .bind(&v.key)
            .fetch_optional(&mut *conn)
            .await?;
    check_precondition(current.as_ref(), precondition)?;

    let mut displaced = Displaced::default();
    if v.version_id == NULL_VERSION {
        let old = sqlx::query("DELETE FROM versions WHERE bucket = ? AND key = ? AND version_id = ? RETURNING parts")
            .bind(&v.bucket)
            .bind(&v.key)
            .bind(NULL_VERSION)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = old {
            let parts: Vec<BlobPart> = serde_json::from_str(row.try_get("parts")?)?;
            displaced.blobs.extend(parts.into_iter().map(|p| p.blob));
        }
    }
    sqlx::query("UPDATE versions SET is_latest = 0 WHERE bucket = ? AND key = ? AND is_latest = 1")
        .bind(&v.bucket)
        .bind(&v.key)
        .execute(&mut *conn)
        .await?;
    let inline = match &v.data {
        ObjectData::Inline(bytes) => Some(bytes.as_ref()),
        ObjectData::Blobs(_) => None,
    };
    sqlx::query(
        "INSERT INTO versions (bucket, key, version_id, is_latest, is_delete_marker, modified_ms, size, etag, \
         attrs, tags, inline_data, parts) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&v.bucket)
    .bind(&v.key)
    .bind(&v.version_id)
    .bind(v.is_delete_marker)
    .bind(v.modified_ms)
    .bind(to_i64(v.size)?)
    .bind(&v.etag)
    .bind(json(&v.attrs)?)
    .bind(json(&v.tags)?)
    .bind(inline)
    .bind(json(&parts_of(&v.data))?)
    .execute(&mut *conn)
    .await?;
    Ok(displaced)
}

#[async_trait]
impl MetaStore for SqliteMeta {
    async fn create_bucket(&self, bucket: &BucketRecord) -> StoreResult<()> {
        let inserted = sqlx::query("INSERT OR IGNORE INTO buckets (name, created_ms, versioning) VALUES (?, ?, ?)")
            .bind(&bucket.name)
            .bind(bucket.created_ms)
            .bind(bucket.versioning.to_db())
            .execute(&self.writer)
            .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::BucketExists);
        }
        Ok(())
    }

    async fn get_bucket(&self, name: &str) -> StoreResult<Option<BucketRecord>> {
        let row = sqlx::query("SELECT name, created_ms, versioning FROM buckets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| bucket_from_row(&r)).transpose()
    }

    async fn list_buckets(&self) -> StoreResult<Vec<BucketRecord>> {
        let rows = sqlx::query("SELECT name, created_ms, versioning FROM buckets ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(bucket_from_row).collect()
    }

    async fn delete_bucket(&self, name: &str) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        require_bucket(&mut tx, name).await?;
        let used = sqlx::query(
            "SELECT 1 FROM versions WHERE bucket = ?1 UNION ALL SELECT 1 FROM uploads WHERE bucket = ?1 LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if used.is_some() {
            return Err(StoreError::BucketNotEmpty);
        }
        sqlx::query("DELETE FROM buckets WHERE name = ?").bind(name).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_versioning(&self, name: &str, state: Versioning) -> StoreResult<()> {
        let updated = sqlx::query("UPDATE buckets SET versioning = ? WHERE name = ?")
            .bind(state.to_db())
            .bind(name)
            .execute(&self.writer)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NoSuchBucket);
        }
        Ok(())
    }

    async fn put_version(&self, version: &NewVersion, precondition: Option<&Precondition>) -> StoreResult<Displaced> {
        let mut tx = self.writer.begin().await?;
        let displaced = insert_version(&mut tx, version, precondition).await?;
        tx.commit().await?;
        Ok(displaced)
    }

    async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StoreResult<Option<VersionRecord>> {
        let sql = match version_id {
            Some(_) => {
                format!("SELECT {VERSION_COLUMNS} FROM versions WHERE bucket = ? AND key = ? AND version_id = ?")
            }
            None => format!("SELECT {VERSION_COLUMNS} FROM versions WHERE bucket = ? AND key = ? AND is_latest = 1"),
        };
        let mut query = sqlx::query(audited(sql)).bind(bucket).bind(key);
        if let Some(id) = version_id {
            query = query.bind(id);
        }
        let row = query.fetch_optional(&self.reader).await?;
        row.map(|r| version_from_row(&r)).transpose()
    }

    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> StoreResult<(Option<VersionRecord>, Displaced)> {
        let mut tx = self.writer.begin().await?;
        let sql =
            format!("DELETE FROM versions WHERE bucket = ? AND key = ? AND version_id = ? RETURNING {VERSION_COLUMNS}");
        let row = sqlx::query(audited(sql)).bind(bucket).bind(key).bind(version_id).fetch_optional(&mut *tx).await?;
        let Some(row) = row else {
            return Ok((None, Displaced::default()));
        };
        let removed = version_from_row(&row)?;
        if removed.is_latest {
            sqlx::query(
                "UPDATE versions SET is_latest = 1 WHERE id = \
                 (SELECT max(id) FROM versions WHERE bucket = ? AND key = ?)",
            )
            .bind(bucket)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let blobs = removed.data.blob_ids().map(str::to_owned).collect();
        Ok((Some(removed), Displaced { blobs }))
    }

    async fn put_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: &[(String, String)],
    ) -> StoreResult<VersionRecord> {
        let selector = if version_id.is_some() { "version_id = ?" } else { "is_latest = 1" };
        let sql = format!(
            "UPDATE versions SET tags = ? WHERE bucket = ? AND key = ? AND {selector} AND is_delete_marker = 0 \
             RETURNING {VERSION_COLUMNS}"
        );
        let mut query = sqlx::query(audited(sql)).bind(json(&tags)?).bind(bucket).bind(key);
        if let Some(id) = version_id {
            query = query.bind(id);
        }
        let row = query.fetch_optional(&self.writer).await?;
        row.map(|r| version_from_row(&r)).transpose()?.ok_or(StoreError::NoSuchVersion)
    }

    async fn list_current(
        &self,
        bucket: &str,
        prefix: &str,
        start: &KeyStart,
        limit: usize,
    ) -> StoreResult<Vec<VersionSummary>> {
        let (range, binds) = key_range(prefix, start);
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM versions WHERE bucket = ? AND is_latest = 1 AND is_delete_marker = 0 \
             AND {range} ORDER BY key LIMIT ?"
        );
        let mut query = sqlx::query(audited(sql)).bind(bucket);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.bind(to_i64(limit as u64)?).fetch_all(&self.reader).await?;
        rows.iter().map(summary_from_row).collect()
    }

    async fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        start: &KeyStart,
        limit: usize,
    ) -> StoreResult<Vec<VersionSummary>> {
        let (range, binds) = key_range(prefix, start);
        // A version cursor continues with older versions of the same key, then later keys.
        let cursor = match start {
            KeyStart::AfterVersion { key, version_id } => {
                let id: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM versions WHERE bucket = ? AND key = ? AND version_id = ?")
                        .bind(bucket)
                        .bind(key)
                        .bind(version_id)
                        .fetch_optional(&self.reader)
                        .await?;
                Some((key.clone(), id.unwrap_or(i64::MIN)))
            }
            _ => None,
        };
        let after = if cursor.is_some() { " AND (key > ? OR (key = ? AND id < ?))" } else { "" };
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM versions WHERE bucket = ? AND {range}{after} ORDER BY key, id DESC LIMIT ?"
        );
        let mut query = sqlx::query(audited(sql)).bind(bucket);
        for b in &binds {
            query = query.bind(b);
        }
        if let Some((key, id)) = &cursor {
            query = query.bind(key).bind(key).bind(id);
        }
        let rows = query.bind(to_i64(limit as u64)?).fetch_all(&self.reader).await?;
        rows.iter().map(summary_from_row).collect()
    }

    async fn create_upload(&self, upload: &UploadRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        require_bucket(&mut tx, &upload.bucket).await?;
        sqlx::query("INSERT INTO uploads (upload_id, bucket, key, created_ms, attrs, tags) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&upload.upload_id)
            .bind(&upload.bucket)
            .bind(&upload.key)
            .bind(upload.created_ms)
            .bind(json(&upload.attrs)?)
            .bind(json(&upload.tags)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<Option<UploadRecord>> {
        let row = sqlx::query("SELECT * FROM uploads WHERE upload_id = ? AND bucket = ?")
            .bind(upload_id)
            .bind(bucket)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| upload_from_row(&r)).transpose()
    }

    async fn put_part(&self, part: &PartRecord) -> StoreResult<Displaced> {
        let mut tx = self.writer.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM uploads WHERE upload_id = ?")
            .bind(&part.upload_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let old: Option<String> = sqlx::query_scalar("SELECT blob FROM parts WHERE upload_id = ? AND part_number = ?")
            .bind(&part.upload_id)
            .bind(part.part_number)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT OR REPLACE INTO parts (upload_id, part_number, size, etag, blob, modified_ms, checksum) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&part.upload_id)
        .bind(part.part_number)
        .bind(to_i64(part.size)?)
        .bind(&part.etag)
        .bind(&part.blob)
        .bind(part.modified_ms)
        .bind(&part.checksum)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Displaced { blobs: old.into_iter().collect() })
    }

    async fn list_parts(&self, upload_id: &str, after: u32, limit: usize) -> StoreResult<Vec<PartRecord>> {
        let rows =
            sqlx::query("SELECT * FROM parts WHERE upload_id = ? AND part_number > ? ORDER BY part_number LIMIT ?")
                .bind(upload_id)
                .bind(after)
                .bind(to_i64(limit as u64)?)
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(part_from_row).collect()
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        upload_id_marker: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<UploadRecord>> {
        let (range, binds) = key_range(prefix, &KeyStart::Beginning);
        let after = match (key_marker, upload_id_marker) {
            (Some(_), Some(_)) => " AND (key > ? OR (key = ? AND upload_id > ?))",
            (Some(_), None) => " AND key > ?",
            _ => "",
        };
        let sql = format!(
            "SELECT * FROM uploads WHERE bucket = ? AND {range}{after} ORDER BY key, created_ms, upload_id LIMIT ?"
        );
        let mut query = sqlx::query(audited(sql)).bind(bucket);
        for b in &binds {
            query = query.bind(b);
        }
        if let Some(k) = key_marker {
            query = query.bind(k);
            if let Some(u) = upload_id_marker {
                query = query.bind(k).bind(u);
            }
        }
        let rows = query.bind(to_i64(limit as u64)?).fetch_all(&self.reader).await?;
        rows.iter().map(upload_from_row).collect()
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        version: &NewVersion,
        precondition: Option<&Precondition>,
    ) -> StoreResult<Displaced> {
        let mut tx = self.writer.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM uploads WHERE upload_id = ? AND bucket = ?")
            .bind(upload_id)
            .bind(&version.bucket)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let mut displaced = insert_version(&mut tx, version, precondition).await?;
        let kept: HashSet<&str> = version.data.blob_ids().collect();
        let blobs: Vec<String> = sqlx::query_scalar("DELETE FROM parts WHERE upload_id = ? RETURNING blob")
            .bind(upload_id)
            .fetch_all(&mut *tx)
            .await?;
        displaced.blobs.extend(blobs.into_iter().filter(|b| !kept.contains(b.as_str())));
        sqlx::query("DELETE FROM uploads WHERE upload_id = ?").bind(upload_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(displaced)
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<Displaced> {
        let mut tx = self.writer.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM uploads WHERE upload_id = ? AND bucket = ?")
            .bind(upload_id)
            .bind(bucket)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let blobs: Vec<String> = sqlx::query_scalar("DELETE FROM parts WHERE upload_id = ? RETURNING blob")
            .bind(upload_id)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM uploads WHERE upload_id = ?").bind(upload_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Displaced { blobs })
    }

    async fn registry_claim(&self, name: &str, region: &str) -> StoreResult<RegisteredBucket> {
        let now = time::OffsetDateTime::now_utc();
        let created_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let row = sqlx::query(
            "INSERT INTO bucket_registry (name, region, created_ms) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET name = name RETURNING name, region, created_ms",
        )
        .bind(name)
        .bind(region)
        .bind(created_ms)
        .fetch_one(&self.writer)
        .await?;
        registered_from_row(&row)
    }

    async fn registry_lookup(&self, name: &str) -> StoreResult<Option<RegisteredBucket>> {
        let row = sqlx::query("SELECT name, region, created_ms FROM bucket_registry WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| registered_from_row(&r)).transpose()
    }

    async fn registry_list(&self) -> StoreResult<Vec<RegisteredBucket>> {
        let rows = sqlx::query("SELECT name, region, created_ms FROM bucket_registry ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(registered_from_row).collect()
    }

    async fn registry_release(&self, name: &str, region: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM bucket_registry WHERE name = ? AND region = ?")
            .bind(name)
            .bind(region)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn referenced_blobs(&self) -> StoreResult<HashSet<String>> {
        let mut referenced = HashSet::new();
        let version_parts: Vec<String> =
            sqlx::query_scalar("SELECT parts FROM versions WHERE parts != '[]'").fetch_all(&self.reader).await?;
        for parts in version_parts {
            let parts: Vec<BlobPart> = serde_json::from_str(&parts)?;
            referenced.extend(parts.into_iter().map(|p| p.blob));
        }
        let part_blobs: Vec<String> = sqlx::query_scalar("SELECT blob FROM parts").fetch_all(&self.reader).await?;
        referenced.extend(part_blobs);
        Ok(referenced)
    }
}

fn registered_from_row(row: &SqliteRow) -> StoreResult<RegisteredBucket> {
    Ok(RegisteredBucket {
        name: row.try_get("name")?,
        region: row.try_get("region")?,
        created_ms: row.try_get("created_ms")?,
    })
}

fn bucket_from_row(row: &SqliteRow) -> StoreResult<BucketRecord> {
    Ok(BucketRecord {
        name: row.try_get("name")?,
        created_ms: row.try_get("created_ms")?,
        versioning: Versioning::from_db(row.try_get::<Option<&str>, _>("versioning")?),
    })
}
