//! The embedded metadata engine: `SQLite` through sqlx.
//!
//! WAL with `synchronous=FULL`: a committed transaction survives power loss,
//! not only `kill -9`. All writes go through a one-connection pool, so they are
//! serialized without `SQLITE_BUSY`; reads use a separate pool and never wait
//! for writers (WAL snapshots).

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, Row, SqliteConnection, SqlitePool};

use crate::docs::{DocStore, DocWrite, Docs};
use crate::group_commit::GroupCommitter;
use crate::meta::MetaStore;
use crate::model::{
    BlobPart, BucketRecord, DeleteGuard, Displaced, KeyStart, NewVersion, ObjectAttrs, PartRecord, Precondition,
    RegisteredBucket, UploadRecord, VersionRecord, VersionSummary, Versioning,
};
use crate::replication::{
    Backlog, NewTask, ReplicationReport, TagWrite, TagsApplied, TaskOutcome, TaskRecord, TaskState,
};
use crate::{StoreResult, listing, rows};

mod bucket_cache;
mod writes;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Columns of `versions` every version query selects, in [`rows::version`] order.
const VERSION_COLUMNS: &str = "key, version_id, is_latest, is_delete_marker, modified_ms, size, etag, attrs, tags, tags_stamp, inline_data, parts, \
     bucket, (SELECT versioning FROM buckets WHERE buckets.name = versions.bucket) AS bucket_versioning";
/// Columns of `replication_tasks`, in [`rows::task`] order.
const TASK_COLUMNS: &str = "id, bucket, key, version_id, kind, rule_id, destination, role, replica_kms_key_id, storage_class, size, state, attempts, reason, \
     created_ms, finished_ms";
const SUMMARY_COLUMNS: &str = "key, version_id, is_latest, is_delete_marker, modified_ms, size, etag, attrs";
const UPLOAD_COLUMNS: &str = "upload_id, bucket, key, created_ms, attrs, tags";

pub struct SqliteMeta {
    writer: GroupCommitter,
    reader: SqlitePool,
    buckets: Arc<bucket_cache::BucketCache>,
    /// Held while open: what is kept in memory assumes no other writer.
    _exclusive: std::fs::File,
}

impl SqliteMeta {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let exclusive = lock_exclusively(path)?;
        // SQLite gives its WAL and shared-memory files the database file's
        // mode, so a private database file keeps all three private.
        if !path.exists() {
            drop(crate::private::create_new(path)?);
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            crate::private::restrict_file(Path::new(&name))?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let mut conn = SqliteConnection::connect_with(&options).await?;
        MIGRATOR.run(&mut conn).await?;
        let writer = GroupCommitter::start(conn);
        let reader = SqlitePoolOptions::new().max_connections(8).connect_with(options.read_only(true)).await?;
        Ok(Self { writer, reader, buckets: Arc::default(), _exclusive: exclusive })
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// A write to `bucket`'s row or documents: once it has committed (or
    /// not), the cache forgets the bucket, in the writer task.
    async fn write_to_bucket<T, F>(&self, bucket: &str, write: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> futures::future::BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let (buckets, bucket) = (Arc::clone(&self.buckets), bucket.to_owned());
        self.writer.write_then(write, move || buckets.changed(&bucket)).await
    }
}

/// Locks `<path>-lock` (a file of its own: closing any other descriptor of
/// the database would drop `SQLite`'s own locks on it), or says who holds it.
fn lock_exclusively(path: &Path) -> StoreResult<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push("-lock");
    let file = crate::private::open_or_create(Path::new(&name))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!("{} is open in another process: one process at a time opens an embedded store", path.display()),
        )
        .into()),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Every dynamic statement here is assembled from constant fragments of this
/// file; values always travel as bound parameters, never as SQL text.
fn audited(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

#[async_trait]
impl MetaStore for SqliteMeta {
    async fn create_bucket(&self, bucket: &BucketRecord) -> StoreResult<()> {
        let record = bucket.clone();
        self.write_to_bucket(&bucket.name, move |conn| {
            Box::pin(async move { writes::create_bucket(conn, &record).await })
        })
        .await
    }

    async fn get_bucket(&self, name: &str) -> StoreResult<Option<BucketRecord>> {
        if let Some(cached) = self.buckets.bucket(name) {
            return Ok(Some(cached));
        }
        let generation = self.buckets.generation();
        let row = sqlx::query("SELECT name, created_ms, versioning FROM buckets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        let record = row.map(|r| rows::bucket(&r)).transpose()?;
        if let Some(record) = &record {
            self.buckets.keep_bucket(generation, record);
        }
        Ok(record)
    }

    async fn list_buckets(&self) -> StoreResult<Vec<BucketRecord>> {
        let rows = sqlx::query("SELECT name, created_ms, versioning FROM buckets ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rows::bucket).collect()
    }

    async fn delete_bucket(&self, name: &str) -> StoreResult<Displaced> {
        let owned = name.to_owned();
        self.write_to_bucket(name, move |conn| Box::pin(async move { writes::delete_bucket(conn, &owned).await })).await
    }

    async fn set_versioning(&self, name: &str, state: Versioning) -> StoreResult<()> {
        let owned = name.to_owned();
        self.write_to_bucket(name, move |conn| {
            Box::pin(async move { writes::set_versioning(conn, &owned, state).await })
        })
        .await
    }

    async fn put_bucket_config(&self, bucket: &str, kind: &str, body: Option<&str>) -> StoreResult<()> {
        let (owned, kind, body) = (bucket.to_owned(), kind.to_owned(), body.map(str::to_owned));
        self.write_to_bucket(bucket, move |conn| {
            Box::pin(async move { writes::put_bucket_config(conn, &owned, &kind, body.as_deref()).await })
        })
        .await
    }

    async fn get_bucket_config(&self, bucket: &str, kind: &str) -> StoreResult<Option<String>> {
        if let bucket_cache::Kept::Document(kept) = self.buckets.config(bucket, kind) {
            return Ok(kept);
        }
        let generation = self.buckets.generation();
        let body: Option<String> = sqlx::query_scalar("SELECT body FROM bucket_configs WHERE bucket = ? AND kind = ?")
            .bind(bucket)
            .bind(kind)
            .fetch_optional(&self.reader)
            .await?;
        self.buckets.keep_config(generation, bucket, kind, body.as_deref());
        Ok(body)
    }

    async fn put_version(&self, version: &NewVersion, precondition: Option<&Precondition>) -> StoreResult<Displaced> {
        let (version, precondition) = (version.clone(), precondition.cloned());
        self.writer
            .write(move |conn| {
                Box::pin(async move { writes::insert_version(conn, &version, precondition.as_ref()).await })
            })
            .await
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
        row.map(|r| rows::version(&r)).transpose()
    }

    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        guard: Option<DeleteGuard>,
    ) -> StoreResult<(Option<VersionRecord>, Displaced)> {
        let (bucket, key, version_id) = (bucket.to_owned(), key.to_owned(), version_id.to_owned());
        self.writer
            .write(move |conn| {
                Box::pin(async move { writes::delete_version(conn, (&bucket, &key, &version_id), guard).await })
            })
            .await
    }

    async fn put_tags(&self, write: &TagWrite) -> StoreResult<TagsApplied> {
        let write = write.clone();
        self.writer.write(move |conn| Box::pin(async move { writes::put_tags(conn, &write).await })).await
    }

    async fn list_current(
        &self,
        bucket: &str,
        prefix: &str,
        start: &KeyStart,
        limit: usize,
    ) -> StoreResult<Vec<VersionSummary>> {
        let mut query = listing::current(SUMMARY_COLUMNS, bucket, prefix, start, rows::to_i64(limit as u64)?);
        let found = query.build().fetch_all(&self.reader).await?;
        found.iter().map(rows::summary).collect()
    }

    async fn sample_current_attrs(&self, bucket: &str, prefix: &str, limit: usize) -> StoreResult<Vec<ObjectAttrs>> {
        let mut query = listing::current("attrs", bucket, prefix, &KeyStart::Beginning, rows::to_i64(limit as u64)?);
        let found = query.build().fetch_all(&self.reader).await?;
        found.iter().map(rows::attrs).collect()
    }

    async fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        start: &KeyStart,
        limit: usize,
    ) -> StoreResult<Vec<VersionSummary>> {
        let cursor = match start {
            KeyStart::AfterVersion { key, version_id } => {
                let id: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM versions WHERE bucket = ? AND key = ? AND version_id = ?")
                        .bind(bucket)
                        .bind(key)
                        .bind(version_id)
                        .fetch_optional(&self.reader)
                        .await?;
                Some((key.as_str(), id.unwrap_or(i64::MIN)))
            }
            _ => None,
        };
        let limit = rows::to_i64(limit as u64)?;
        let mut query = listing::versions(SUMMARY_COLUMNS, bucket, prefix, start, cursor, limit);
        let found = query.build().fetch_all(&self.reader).await?;
        found.iter().map(rows::summary).collect()
    }

    async fn create_upload(&self, upload: &UploadRecord) -> StoreResult<()> {
        let upload = upload.clone();
        self.writer.write(move |conn| Box::pin(async move { writes::create_upload(conn, &upload).await })).await
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<Option<UploadRecord>> {
        let row = sqlx::query("SELECT * FROM uploads WHERE upload_id = ? AND bucket = ?")
            .bind(upload_id)
            .bind(bucket)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| rows::upload(&r)).transpose()
    }

    async fn put_part(&self, part: &PartRecord) -> StoreResult<Displaced> {
        let part = part.clone();
        self.writer.write(move |conn| Box::pin(async move { writes::put_part(conn, &part).await })).await
    }

    async fn list_parts(&self, upload_id: &str, after: u32, limit: usize) -> StoreResult<Vec<PartRecord>> {
        let rows =
            sqlx::query("SELECT * FROM parts WHERE upload_id = ? AND part_number > ? ORDER BY part_number LIMIT ?")
                .bind(upload_id)
                .bind(after)
                .bind(rows::to_i64(limit as u64)?)
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(rows::part).collect()
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        upload_id_marker: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<UploadRecord>> {
        let markers = (key_marker, upload_id_marker);
        let mut query = listing::uploads(UPLOAD_COLUMNS, bucket, prefix, markers, rows::to_i64(limit as u64)?);
        let found = query.build().fetch_all(&self.reader).await?;
        found.iter().map(rows::upload).collect()
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        version: &NewVersion,
        precondition: Option<&Precondition>,
    ) -> StoreResult<Displaced> {
        let (upload_id, version, precondition) = (upload_id.to_owned(), version.clone(), precondition.cloned());
        self.writer
            .write(move |conn| {
                Box::pin(
                    async move { writes::complete_upload(conn, &upload_id, &version, precondition.as_ref()).await },
                )
            })
            .await
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<Displaced> {
        let (bucket, upload_id) = (bucket.to_owned(), upload_id.to_owned());
        self.writer
            .write(move |conn| Box::pin(async move { writes::abort_upload(conn, &bucket, &upload_id).await }))
            .await
    }

    async fn registry_claim(&self, name: &str, region: &str) -> StoreResult<RegisteredBucket> {
        let (name, region) = (name.to_owned(), region.to_owned());
        self.writer.write(move |conn| Box::pin(async move { writes::registry_claim(conn, &name, &region).await })).await
    }

    async fn registry_lookup(&self, name: &str) -> StoreResult<Option<RegisteredBucket>> {
        let row = sqlx::query("SELECT name, region, created_ms FROM bucket_registry WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| rows::registered(&r)).transpose()
    }

    async fn registry_list(&self) -> StoreResult<Vec<RegisteredBucket>> {
        let rows = sqlx::query("SELECT name, region, created_ms FROM bucket_registry ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rows::registered).collect()
    }

    async fn registry_release(&self, name: &str, region: &str) -> StoreResult<()> {
        let (name, region) = (name.to_owned(), region.to_owned());
        self.writer
            .write(move |conn| Box::pin(async move { writes::registry_release(conn, &name, &region).await }))
            .await
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

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// One process opens an embedded store.
    fn is_shared(&self) -> bool {
        false
    }

    /// Closes the read pool; the writer connection closes when the store
    /// is dropped.
    async fn close(&self) {
        self.reader.close().await;
    }

    async fn put_replica(&self, version: &NewVersion) -> StoreResult<Displaced> {
        let version = version.clone();
        self.writer.write(move |conn| Box::pin(async move { writes::insert_replica(conn, &version).await })).await
    }

    async fn add_tasks(&self, bucket: &str, key: &str, version_id: &str, tasks: &[NewTask]) -> StoreResult<u64> {
        let (bucket, key, version_id, tasks) =
            (bucket.to_owned(), key.to_owned(), version_id.to_owned(), tasks.to_vec());
        self.writer
            .write(move |conn| {
                Box::pin(async move { writes::add_tasks(conn, (&bucket, &key, &version_id), &tasks).await })
            })
            .await
    }

    async fn release_leases(&self) -> StoreResult<u64> {
        self.writer
            .write(|conn| {
                Box::pin(async move {
                    let done = sqlx::query("UPDATE replication_tasks SET lease_until_ms = 0 WHERE lease_until_ms > 0")
                        .execute(&mut *conn)
                        .await?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }

    async fn lease_tasks(&self, now_ms: i64, lease_ms: i64, limit: usize) -> StoreResult<Vec<TaskRecord>> {
        // An idle worker polls several times a second: a read finds nothing
        // due without queueing a write transaction beside the PUTs' commits.
        let probe = format!("SELECT EXISTS (SELECT 1 FROM replication_tasks t WHERE {})", writes::TASK_IS_DUE);
        let due: bool = sqlx::query_scalar(audited(probe)).bind(now_ms).fetch_one(&self.reader).await?;
        if !due {
            return Ok(Vec::new());
        }
        self.writer
            .write(move |conn| Box::pin(async move { writes::lease_tasks(conn, now_ms, lease_ms, limit).await }))
            .await
    }

    async fn renew_leases(&self, ids: &[i64], until_ms: i64) -> StoreResult<u64> {
        let ids = ids.to_vec();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let mut renewed = 0;
                    for id in ids {
                        let done = sqlx::query(
                            "UPDATE replication_tasks SET lease_until_ms = ? \
                             WHERE id = ? AND state = 'PENDING' AND lease_until_ms > 0",
                        )
                        .bind(until_ms)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                        renewed += done.rows_affected();
                    }
                    Ok(renewed)
                })
            })
            .await
    }

    async fn finish_task(&self, id: i64, outcome: &TaskOutcome, now_ms: i64) -> StoreResult<()> {
        let outcome = outcome.clone();
        self.writer
            .write(move |conn| Box::pin(async move { writes::finish_task(conn, id, &outcome, now_ms).await }))
            .await
    }

    async fn replication_backlog(&self) -> StoreResult<Vec<Backlog>> {
        let rows = sqlx::query(
            "SELECT bucket, rule_id, destination, count(*) AS n, total(size) AS bytes FROM replication_tasks \
             WHERE state = 'PENDING' GROUP BY bucket, rule_id, destination",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                // total() is a float; backlogs stay far below 2^53 bytes.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let bytes = row.try_get::<f64, _>("bytes")? as u64;
                Ok(Backlog {
                    bucket: row.try_get("bucket")?,
                    rule_id: row.try_get("rule_id")?,
                    destination: row.try_get("destination")?,
                    operations: rows::to_u64(row.try_get("n")?)?,
                    bytes,
                })
            })
            .collect()
    }

    async fn replication_report(&self, bucket: &str) -> StoreResult<ReplicationReport> {
        let rows = sqlx::query(
            "SELECT state, count(*) AS n, total(size) AS bytes, min(created_ms) AS oldest FROM replication_tasks \
             WHERE bucket = ? GROUP BY state",
        )
        .bind(bucket)
        .fetch_all(&self.reader)
        .await?;
        let mut report = ReplicationReport::default();
        for row in &rows {
            let n = rows::to_u64(row.try_get("n")?)?;
            match TaskState::from_db(row.try_get("state")?) {
                TaskState::Pending => {
                    report.pending = n;
                    // total() is a float; backlogs stay far below 2^53 bytes.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let bytes = row.try_get::<f64, _>("bytes")? as u64;
                    report.backlog_bytes = bytes;
                    report.oldest_pending_ms = row.try_get("oldest")?;
                }
                TaskState::Completed => report.completed = n,
                TaskState::Failed => report.failed = n,
            }
        }
        let failed = sqlx::query(audited(format!(
            "SELECT {TASK_COLUMNS} FROM replication_tasks WHERE bucket = ? AND state = 'FAILED' ORDER BY id LIMIT 1000"
        )))
        .bind(bucket)
        .fetch_all(&self.reader)
        .await?;
        report.failures = failed.iter().map(rows::task).collect::<StoreResult<_>>()?;
        Ok(report)
    }

    async fn retry_failed(&self, bucket: &str, now_ms: i64) -> StoreResult<u64> {
        let bucket = bucket.to_owned();
        self.writer.write(move |conn| Box::pin(async move { writes::retry_failed(conn, &bucket, now_ms).await })).await
    }

    async fn expedite(&self, destination: &str, now_ms: i64) -> StoreResult<u64> {
        let destination = destination.to_owned();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE replication_tasks SET not_before_ms = ?1 \
                         WHERE state = 'PENDING' AND not_before_ms > ?1 AND destination = ?2",
                    )
                    .bind(now_ms)
                    .bind(&destination)
                    .execute(&mut *conn)
                    .await?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }
}

#[async_trait]
impl DocStore for SqliteMeta {
    async fn load_docs(&self, collection: &str) -> StoreResult<Docs> {
        let generation = self.doc_generation(collection).await?;
        let found = sqlx::query("SELECT id, body FROM docs WHERE collection = ? ORDER BY id")
            .bind(collection)
            .fetch_all(&self.reader)
            .await?;
        let docs = found.iter().map(|r| Ok((r.try_get("id")?, r.try_get("body")?))).collect::<StoreResult<_>>()?;
        Ok(Docs { generation, docs })
    }

    async fn doc_generation(&self, collection: &str) -> StoreResult<i64> {
        let generation: Option<i64> = sqlx::query_scalar("SELECT generation FROM doc_generations WHERE collection = ?")
            .bind(collection)
            .fetch_optional(&self.reader)
            .await?;
        Ok(generation.unwrap_or(0))
    }

    fn docs_shared(&self) -> bool {
        false
    }

    async fn write_docs(&self, writes: Vec<DocWrite>, expect: &[(&'static str, i64)]) -> StoreResult<()> {
        let expect = expect.to_vec();
        self.writer.write(move |conn| Box::pin(async move { writes::write_docs(conn, &writes, &expect).await })).await
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt as _;

    use super::*;

    #[tokio::test]
    async fn a_second_opening_is_refused_until_the_first_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        let first = SqliteMeta::open(&path).await.unwrap();
        let Err(refused) = SqliteMeta::open(&path).await else { panic!("opened twice") };
        assert!(refused.to_string().contains("open in another process"), "{refused}");
        first.close().await;
        drop(first);
        SqliteMeta::open(&path).await.unwrap();
    }

    /// A client that hangs up after its write was queued: the write still
    /// commits, and what is kept of the bucket must not hide it.
    #[tokio::test]
    async fn a_write_whose_caller_left_is_not_hidden_by_what_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteMeta::open(&dir.path().join("meta.db")).await.unwrap();
        let record = BucketRecord { name: "b".into(), created_ms: 1, versioning: Versioning::Unversioned };
        meta.create_bucket(&record).await.unwrap();
        meta.put_bucket_config("b", "encryption", Some("{}")).await.unwrap();
        assert_eq!(meta.get_bucket("b").await.unwrap(), Some(record));
        assert_eq!(meta.get_bucket_config("b", "encryption").await.unwrap().as_deref(), Some("{}"));

        // Each write is polled once (which queues it), then dropped.
        assert!(meta.set_versioning("b", Versioning::Enabled).now_or_never().is_none());
        assert!(meta.put_bucket_config("b", "encryption", None).now_or_never().is_none());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let versioning = meta.get_bucket("b").await.unwrap().map(|b| b.versioning);
            let encryption = meta.get_bucket_config("b", "encryption").await.unwrap();
            if versioning == Some(Versioning::Enabled) && encryption.is_none() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "still {versioning:?} and {encryption:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
