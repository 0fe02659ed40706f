//! The shared metadata engine: PostgreSQL through sqlx, for a region served
//! by several front-ends (schema in `migrations-postgres/`).
//!
//! What its own statements ask of the database stays within what
//! PostgreSQL-wire distributed databases (CockroachDB, YugabyteDB) also
//! accept: no advisory locks, no LISTEN/NOTIFY as a correctness dependency,
//! and a transaction that fails to serialize (SQLSTATE 40001) is run again,
//! a bounded number of times. The schema is brought up to date without
//! sqlx's advisory lock: each migration runs in its own transaction, and a
//! front-end that finds another applying the same one at the same moment
//! (its transaction fails) looks again. A commit is durable once
//! acknowledged (`synchronous_commit` on, PostgreSQL's default).

use std::collections::HashSet;
use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool, Row as _};

use crate::docs::{DocStore, DocWrite, Docs};
use crate::meta::MetaStore;
use crate::model::{
    BucketRecord, DeleteGuard, Displaced, KeyStart, NewVersion, ObjectAttrs, PartRecord, Precondition,
    RegisteredBucket, UploadRecord, VersionRecord, VersionSummary, Versioning,
};
use crate::replication::{
    Backlog, NewTask, ReplicationReport, TagWrite, TagsApplied, TaskOutcome, TaskRecord, TaskState,
};
use crate::rows::{self, to_i64, to_u64};
use crate::{StoreError, StoreResult, listing};

mod writes;

/// Looks at the schema again after a failed migration, before giving up.
const MIGRATION_ATTEMPTS: u32 = 5;

/// Columns of `versions` every version query selects, as [`rows::version`] reads them.
const VERSION_COLUMNS: &str = "key, version_id, is_latest, is_delete_marker, modified_ms, size, etag, \
     attrs::text AS attrs, tags::text AS tags, tags_stamp, inline_data, parts::text AS parts, bucket, \
     (SELECT versioning FROM buckets WHERE buckets.name = versions.bucket) AS bucket_versioning";
/// Columns of `replication_tasks`, as [`rows::task`] reads them.
const TASK_COLUMNS: &str = "id, bucket, key, version_id, kind, rule_id, destination, role, replica_kms_key_id, \
     storage_class, size, state, attempts, reason, created_ms, finished_ms";
const SUMMARY_COLUMNS: &str =
    "key, version_id, is_latest, is_delete_marker, modified_ms, size, etag, attrs::text AS attrs";
const UPLOAD_COLUMNS: &str = "upload_id, bucket, key, created_ms, attrs::text AS attrs, tags::text AS tags";
const PART_COLUMNS: &str = "upload_id, part_number, size, etag, blob, modified_ms, checksum, binding";

/// How long a pooled connection may sit idle before it is tried on lending.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// Runs of a transaction that failed to serialize, before giving up.
const MAX_ATTEMPTS: u32 = 5;

pub struct PgStore {
    pool: PgPool,
    /// For readiness checks, which must not wait behind a busy pool.
    options: PgConnectOptions,
    /// Named in errors (never a password).
    server: String,
    /// Names this store's leases on replication tasks, so that finishing
    /// and releasing touch only its own (each front-end has its own).
    owner: String,
}

impl PgStore {
    /// Whether the database at `url` answers, with one connection and no
    /// change to its schema (`tern doctor`); the server, as errors name it
    /// (never the password).
    ///
    /// # Errors
    /// `Unreachable` naming the server, or a URL that does not parse.
    pub async fn probe(url: &str) -> StoreResult<String> {
        let options = PgConnectOptions::from_str(url)?;
        let server = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        let unreachable = |e: sqlx::Error| StoreError::Unreachable { server: server.clone(), reason: e.to_string() };
        PgConnection::connect_with(&options).await.map_err(unreachable)?.close().await?;
        Ok(server)
    }

    /// Connects to `url` (`postgres://user@host:port/database`; libpq's
    /// `PG*` environment variables fill in what it leaves out, `PGPASSWORD`
    /// included, so no password need be written down), brings the schema up
    /// to date, and refuses a schema a newer Tern made.
    ///
    /// # Errors
    /// `Unreachable` naming the server (never the password), `SchemaTooNew`,
    /// or the database's own error.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // One attempt first, so a server that is not there is said at once.
        let server = Self::probe(url).await?;
        let options = PgConnectOptions::from_str(url)?;
        let unreachable = |e: sqlx::Error| StoreError::Unreachable { server: server.clone(), reason: e.to_string() };
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            // A connection in use proves itself; one idle for a while may
            // have lost its server (a restart), so it is tried first. (sqlx's
            // own test pings before every use: a round trip per statement.)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_BEFORE_PING {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(unreachable)?;
        migrate(&pool).await?;
        Ok(Self { pool, options, server, owner: uuid::Uuid::new_v4().to_string() })
    }
}

/// Brings the schema up to date; refuses one a newer Tern made.
async fn migrate(pool: &PgPool) -> StoreResult<()> {
    let mut migrator = sqlx::migrate!("./migrations-postgres");
    migrator.set_locking(false);
    let mut attempt = 1;
    loop {
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            Err(sqlx::migrate::MigrateError::VersionMissing(version)) => return Err(StoreError::SchemaTooNew(version)),
            // Another front-end applied the same migration a moment ago.
            Err(_) if attempt < MIGRATION_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl PgStore {
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Runs `$body` (a future using `$conn`) in one transaction of `$store`'s
/// pool, again (at most [`MAX_ATTEMPTS`] times) when the database could
/// not serialize it. A macro, not a function taking a closure: the body
/// borrows both the connection and the caller's arguments, and the future
/// must stay `Send`, which closures over borrowed arguments cannot yet say.
macro_rules! transaction {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let mut attempt = 1;
        loop {
            let mut tx = $store.pool.begin().await?;
            let $conn: &mut PgConnection = &mut tx;
            let result = match $body.await {
                Ok(value) => tx.commit().await.map(|()| value).map_err(StoreError::from),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if attempt < MAX_ATTEMPTS && is_serialization_failure(&e) => attempt += 1,
                other => break other,
            }
        }
    }};
}

/// SQLSTATE 40001 (serialization failure) or 40P01 (deadlock): the
/// transaction did nothing and may run again.
fn is_serialization_failure(e: &StoreError) -> bool {
    let StoreError::Db(sqlx::Error::Database(db)) = e else { return false };
    matches!(db.code().as_deref(), Some("40001" | "40P01"))
}

#[async_trait]
impl MetaStore for PgStore {
    async fn create_bucket(&self, bucket: &BucketRecord) -> StoreResult<()> {
        transaction!(self, |conn| writes::create_bucket(conn, bucket))
    }

    async fn get_bucket(&self, name: &str) -> StoreResult<Option<BucketRecord>> {
        let row = sqlx::query("SELECT name, created_ms, versioning FROM buckets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| rows::bucket(&r)).transpose()
    }

    async fn list_buckets(&self) -> StoreResult<Vec<BucketRecord>> {
        let found =
            sqlx::query("SELECT name, created_ms, versioning FROM buckets ORDER BY name").fetch_all(&self.pool).await?;
        found.iter().map(rows::bucket).collect()
    }

    async fn delete_bucket(&self, name: &str) -> StoreResult<Displaced> {
        transaction!(self, |conn| writes::delete_bucket(conn, name))
    }

    async fn set_versioning(&self, name: &str, state: Versioning) -> StoreResult<()> {
        transaction!(self, |conn| writes::set_versioning(conn, name, state))
    }

    async fn put_bucket_config(&self, bucket: &str, kind: &str, body: Option<&str>) -> StoreResult<()> {
        transaction!(self, |conn| writes::put_bucket_config(conn, bucket, kind, body))
    }

    async fn get_bucket_config(&self, bucket: &str, kind: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT body FROM bucket_configs WHERE bucket = $1 AND kind = $2")
            .bind(bucket)
            .bind(kind)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn put_version(&self, version: &NewVersion, precondition: Option<&Precondition>) -> StoreResult<Displaced> {
        transaction!(self, |conn| writes::insert_version(conn, version, precondition))
    }

    async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StoreResult<Option<VersionRecord>> {
        let selector = if version_id.is_some() { "version_id = $3" } else { "is_latest" };
        let sql = format!("SELECT {VERSION_COLUMNS} FROM versions WHERE bucket = $1 AND key = $2 AND {selector}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(bucket).bind(key);
        if let Some(id) = version_id {
            query = query.bind(id);
        }
        let row = query.fetch_optional(&self.pool).await?;
        row.map(|r| rows::version(&r)).transpose()
    }

    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        guard: Option<DeleteGuard>,
    ) -> StoreResult<(Option<VersionRecord>, Displaced)> {
        transaction!(self, |conn| writes::delete_version(conn, (bucket, key, version_id), guard))
    }

    async fn put_tags(&self, write: &TagWrite) -> StoreResult<TagsApplied> {
        transaction!(self, |conn| writes::put_tags(conn, write))
    }

    async fn list_current(
        &self,
        bucket: &str,
        prefix: &str,
        start: &KeyStart,
        limit: usize,
    ) -> StoreResult<Vec<VersionSummary>> {
        let mut query = listing::current(SUMMARY_COLUMNS, bucket, prefix, start, to_i64(limit as u64)?);
        let found = query.build().fetch_all(&self.pool).await?;
        found.iter().map(rows::summary).collect()
    }

    async fn sample_current_attrs(&self, bucket: &str, prefix: &str, limit: usize) -> StoreResult<Vec<ObjectAttrs>> {
        let mut query =
            listing::current("attrs::text AS attrs", bucket, prefix, &KeyStart::Beginning, to_i64(limit as u64)?);
        let found = query.build().fetch_all(&self.pool).await?;
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
                    sqlx::query_scalar("SELECT id FROM versions WHERE bucket = $1 AND key = $2 AND version_id = $3")
                        .bind(bucket)
                        .bind(key)
                        .bind(version_id)
                        .fetch_optional(&self.pool)
                        .await?;
                Some((key.as_str(), id.unwrap_or(i64::MIN)))
            }
            _ => None,
        };
        let limit = to_i64(limit as u64)?;
        let mut query = listing::versions(SUMMARY_COLUMNS, bucket, prefix, start, cursor, limit);
        let found = query.build().fetch_all(&self.pool).await?;
        found.iter().map(rows::summary).collect()
    }

    async fn create_upload(&self, upload: &UploadRecord) -> StoreResult<()> {
        transaction!(self, |conn| writes::create_upload(conn, upload))
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<Option<UploadRecord>> {
        let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = $1 AND bucket = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(upload_id).bind(bucket).fetch_optional(&self.pool).await?;
        row.map(|r| rows::upload(&r)).transpose()
    }

    async fn put_part(&self, part: &PartRecord) -> StoreResult<Displaced> {
        transaction!(self, |conn| writes::put_part(conn, part))
    }

    async fn list_parts(&self, upload_id: &str, after: u32, limit: usize) -> StoreResult<Vec<PartRecord>> {
        let sql = format!(
            "SELECT {PART_COLUMNS} FROM parts WHERE upload_id = $1 AND part_number > $2 ORDER BY part_number LIMIT $3"
        );
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(upload_id)
            .bind(i64::from(after))
            .bind(to_i64(limit as u64)?)
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::part).collect()
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
        let mut query = listing::uploads(UPLOAD_COLUMNS, bucket, prefix, markers, to_i64(limit as u64)?);
        let found = query.build().fetch_all(&self.pool).await?;
        found.iter().map(rows::upload).collect()
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        version: &NewVersion,
        precondition: Option<&Precondition>,
    ) -> StoreResult<Displaced> {
        transaction!(self, |conn| writes::complete_upload(conn, upload_id, version, precondition))
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> StoreResult<Displaced> {
        transaction!(self, |conn| writes::abort_upload(conn, bucket, upload_id))
    }

    async fn registry_claim(&self, name: &str, region: &str) -> StoreResult<RegisteredBucket> {
        transaction!(self, |conn| writes::registry_claim(conn, name, region))
    }

    async fn registry_lookup(&self, name: &str) -> StoreResult<Option<RegisteredBucket>> {
        let row = sqlx::query("SELECT name, region, created_ms FROM bucket_registry WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| rows::registered(&r)).transpose()
    }

    async fn registry_list(&self) -> StoreResult<Vec<RegisteredBucket>> {
        let found = sqlx::query("SELECT name, region, created_ms FROM bucket_registry ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        found.iter().map(rows::registered).collect()
    }

    async fn registry_release(&self, name: &str, region: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM bucket_registry WHERE name = $1 AND region = $2")
            .bind(name)
            .bind(region)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn referenced_blobs(&self) -> StoreResult<HashSet<String>> {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT part->>'blob' FROM versions, jsonb_array_elements(versions.parts) AS part \
             UNION SELECT blob FROM parts",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(found.into_iter().collect())
    }

    /// On a connection of its own (a pool busy with requests is no sign of
    /// trouble), and a server that cannot take writes (a standby after a
    /// failover) does not count.
    async fn ping(&self) -> StoreResult<()> {
        let unreachable = |reason: String| StoreError::Unreachable { server: self.server.clone(), reason };
        let mut conn = PgConnection::connect_with(&self.options).await.map_err(|e| unreachable(e.to_string()))?;
        let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut conn).await?;
        conn.close().await?;
        if standby {
            return Err(unreachable("a standby, which takes no writes".into()));
        }
        Ok(())
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn put_replica(&self, version: &NewVersion) -> StoreResult<Displaced> {
        transaction!(self, |conn| writes::insert_replica(conn, version))
    }

    async fn add_tasks(&self, bucket: &str, key: &str, version_id: &str, tasks: &[NewTask]) -> StoreResult<u64> {
        transaction!(self, |conn| writes::add_tasks(conn, (bucket, key, version_id), tasks))
    }

    /// Ends this store's own leases (at shutdown, so other front-ends take
    /// its unfinished tasks at once). A lease some other front-end holds is
    /// never ended early: a front-end that died loses its leases when they
    /// run out.
    async fn release_leases(&self) -> StoreResult<u64> {
        let done =
            sqlx::query("UPDATE replication_tasks SET lease_until_ms = 0, lease_owner = NULL WHERE lease_owner = $1")
                .bind(&self.owner)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    async fn lease_tasks(&self, now_ms: i64, lease_ms: i64, limit: usize) -> StoreResult<Vec<TaskRecord>> {
        transaction!(self, |conn| writes::lease_tasks(conn, &self.owner, (now_ms, lease_ms), limit))
    }

    async fn renew_leases(&self, ids: &[i64], until_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE replication_tasks SET lease_until_ms = $1 \
             WHERE id = ANY($2) AND lease_owner = $3 AND state = 'PENDING'",
        )
        .bind(until_ms)
        .bind(ids)
        .bind(&self.owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn finish_task(&self, id: i64, outcome: &TaskOutcome, now_ms: i64) -> StoreResult<()> {
        transaction!(self, |conn| writes::finish_task(conn, &self.owner, id, outcome, now_ms))
    }

    async fn replication_backlog(&self) -> StoreResult<Vec<Backlog>> {
        let found = sqlx::query(
            "SELECT bucket, rule_id, destination, count(*) AS n, CAST(sum(size) AS BIGINT) AS bytes \
             FROM replication_tasks WHERE state = 'PENDING' GROUP BY bucket, rule_id, destination",
        )
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(Backlog {
                    bucket: row.try_get("bucket")?,
                    rule_id: row.try_get("rule_id")?,
                    destination: row.try_get("destination")?,
                    operations: to_u64(row.try_get("n")?)?,
                    bytes: to_u64(row.try_get("bytes")?)?,
                })
            })
            .collect()
    }

    async fn replication_report(&self, bucket: &str) -> StoreResult<ReplicationReport> {
        let found = sqlx::query(
            "SELECT state, count(*) AS n, CAST(sum(size) AS BIGINT) AS bytes, min(created_ms) AS oldest \
             FROM replication_tasks WHERE bucket = $1 GROUP BY state",
        )
        .bind(bucket)
        .fetch_all(&self.pool)
        .await?;
        let mut report = ReplicationReport::default();
        for row in &found {
            let n = to_u64(row.try_get("n")?)?;
            match TaskState::from_db(row.try_get("state")?) {
                TaskState::Pending => {
                    report.pending = n;
                    report.backlog_bytes = to_u64(row.try_get("bytes")?)?;
                    report.oldest_pending_ms = row.try_get("oldest")?;
                }
                TaskState::Completed => report.completed = n,
                TaskState::Failed => report.failed = n,
            }
        }
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM replication_tasks WHERE bucket = $1 AND state = 'FAILED' ORDER BY id LIMIT 1000"
        );
        let failed = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(bucket).fetch_all(&self.pool).await?;
        report.failures = failed.iter().map(rows::task).collect::<StoreResult<_>>()?;
        Ok(report)
    }

    async fn retry_failed(&self, bucket: &str, now_ms: i64) -> StoreResult<u64> {
        transaction!(self, |conn| writes::retry_failed(conn, bucket, now_ms))
    }

    async fn expedite(&self, destination: &str, now_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE replication_tasks SET not_before_ms = $1 \
             WHERE state = 'PENDING' AND not_before_ms > $1 AND destination = $2",
        )
        .bind(now_ms)
        .bind(destination)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl DocStore for PgStore {
    async fn load_docs(&self, collection: &str) -> StoreResult<Docs> {
        let generation = self.doc_generation(collection).await?;
        let found = sqlx::query("SELECT id, body FROM docs WHERE collection = $1 ORDER BY id COLLATE \"C\"")
            .bind(collection)
            .fetch_all(&self.pool)
            .await?;
        let docs = found.iter().map(|r| Ok((r.try_get("id")?, r.try_get("body")?))).collect::<StoreResult<_>>()?;
        Ok(Docs { generation, docs })
    }

    async fn doc_generation(&self, collection: &str) -> StoreResult<i64> {
        let generation: Option<i64> =
            sqlx::query_scalar("SELECT generation FROM doc_generations WHERE collection = $1")
                .bind(collection)
                .fetch_optional(&self.pool)
                .await?;
        Ok(generation.unwrap_or(0))
    }

    fn docs_shared(&self) -> bool {
        true
    }

    async fn write_docs(&self, writes: Vec<DocWrite>, expect: &[(&'static str, i64)]) -> StoreResult<()> {
        transaction!(self, |conn| writes::write_docs(conn, &writes, expect))
    }
}
