//! The write transactions of the PostgreSQL engine. Each runs in its own
//! READ COMMITTED transaction (see `PgStore::transaction`), and takes the
//! row locks that make it safe beside the same write on another front-end:
//! a key's lock row before anything that changes the key's versions, an
//! upload's row before its parts, a bucket's row before the bucket goes.

use std::collections::HashSet;

use sqlx::{PgConnection, Row as _};

use super::{TASK_COLUMNS, VERSION_COLUMNS};
use crate::docs::DocWrite;
use crate::model::{
    BlobPart, BucketRecord, DeleteGuard, Displaced, LiveVersion, NULL_VERSION, NewVersion, PartRecord, Precondition,
    RegisteredBucket, ReplicationStatus, UploadRecord, VersionRecord, Versioning,
};
use crate::replication::{NewTask, TagWrite, TagsApplied, TaskOutcome, TaskRecord, TaskState};
use crate::rows::{self, inline_of, json, parts_of, to_i64};
use crate::{StoreError, StoreResult};

/// SQLSTATE of a foreign key the write broke: what it refers to is gone.
const FOREIGN_KEY_VIOLATION: &str = "23503";

/// `missing` when `result` broke a foreign key (the bucket or upload it
/// names was removed, perhaps by another front-end a moment ago).
fn or_missing<T>(result: Result<T, sqlx::Error>, missing: StoreError) -> StoreResult<T> {
    match result {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(FOREIGN_KEY_VIOLATION) => Err(missing),
        other => Ok(other?),
    }
}

/// Takes the lock that serializes every write to one key, creating its
/// row if needed (`ON CONFLICT DO UPDATE` both inserts and locks
/// atomically, even when two front-ends write a new key at once).
async fn lock_key(conn: &mut PgConnection, bucket: &str, key: &str) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO key_locks (bucket, key) VALUES ($1, $2) \
         ON CONFLICT (bucket, key) DO UPDATE SET bucket = EXCLUDED.bucket",
    )
    .bind(bucket)
    .bind(key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Locks an upload of `bucket` for the rest of the transaction.
async fn lock_upload(conn: &mut PgConnection, bucket: Option<&str>, upload_id: &str) -> StoreResult<()> {
    let found =
        sqlx::query("SELECT 1 FROM uploads WHERE upload_id = $1 AND ($2::text IS NULL OR bucket = $2) FOR UPDATE")
            .bind(upload_id)
            .bind(bucket)
            .fetch_optional(&mut *conn)
            .await?;
    found.map(|_| ()).ok_or(StoreError::NoSuchUpload)
}

/// The body of `put_version`, shared with `complete_upload`.
pub(super) async fn insert_version(
    conn: &mut PgConnection,
    v: &NewVersion,
    precondition: Option<&Precondition>,
) -> StoreResult<Displaced> {
    lock_key(conn, &v.bucket, &v.key).await?;
    if let Some(precondition) = precondition {
        let current = sqlx::query(
            "SELECT etag, version_id, modified_ms FROM versions \
             WHERE bucket = $1 AND key = $2 AND is_latest AND NOT is_delete_marker",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .fetch_optional(&mut *conn)
        .await?;
        let live = current
            .map(|row| {
                Ok::<_, sqlx::Error>((
                    row.try_get::<String, _>("etag")?,
                    row.try_get::<String, _>("version_id")?,
                    row.try_get::<i64, _>("modified_ms")?,
                ))
            })
            .transpose()?;
        let live = live.as_ref().map(|(etag, version_id, modified_ms)| LiveVersion {
            etag,
            version_id,
            modified_ms: *modified_ms,
        });
        precondition.check(live)?;
    }
    let mut displaced = Displaced::default();
    if v.version_id == NULL_VERSION {
        // One round trip: the null version goes, and whichever other version
        // was latest stops being so (disjoint rows; the key's lock is held).
        let old = sqlx::query(
            "WITH gone AS (DELETE FROM versions WHERE bucket = $1 AND key = $2 AND version_id = $3 \
             RETURNING parts::text AS parts), \
             demoted AS (UPDATE versions SET is_latest = false \
             WHERE bucket = $1 AND key = $2 AND is_latest AND version_id <> $3 RETURNING 1) \
             SELECT parts FROM gone",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(NULL_VERSION)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = old {
            let parts: Vec<BlobPart> = serde_json::from_str(row.try_get("parts")?)?;
            displaced.blobs.extend(parts.into_iter().map(|p| p.blob));
            release_blobs(conn, &displaced.blobs).await?;
        }
    } else {
        sqlx::query("UPDATE versions SET is_latest = false WHERE bucket = $1 AND key = $2 AND is_latest")
            .bind(&v.bucket)
            .bind(&v.key)
            .execute(&mut *conn)
            .await?;
    }
    insert_row(conn, v, true).await?;
    Ok(displaced)
}

/// Records `blobs` as owned by the row being written; a blob some other
/// row owns is refused.
async fn claim_blobs(conn: &mut PgConnection, blobs: Vec<String>) -> StoreResult<()> {
    if blobs.is_empty() {
        return Ok(());
    }
    let claimed: Vec<String> = sqlx::query_scalar(
        "INSERT INTO blob_owners (blob) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING blob",
    )
    .bind(&blobs)
    .fetch_all(&mut *conn)
    .await?;
    let mut claimed: HashSet<String> = claimed.into_iter().collect();
    // A blob not claimed here is another row's (or named twice).
    match blobs.into_iter().find(|b| !claimed.remove(b)) {
        Some(taken) => Err(StoreError::BlobInUse(taken)),
        None => Ok(()),
    }
}

/// Forgets the owner of `blobs`, whose row is gone: they may be deleted.
async fn release_blobs(conn: &mut PgConnection, blobs: &[String]) -> StoreResult<()> {
    if !blobs.is_empty() {
        sqlx::query("DELETE FROM blob_owners WHERE blob = ANY($1)").bind(blobs).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts the version row (latest or not) and its replication tasks.
async fn insert_row(conn: &mut PgConnection, v: &NewVersion, latest: bool) -> StoreResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO versions (bucket, key, version_id, is_latest, is_delete_marker, modified_ms, size, etag, \
         attrs, tags, tags_stamp, inline_data, parts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11, $12, $13::jsonb)",
    )
    .bind(&v.bucket)
    .bind(&v.key)
    .bind(&v.version_id)
    .bind(latest)
    .bind(v.is_delete_marker)
    .bind(v.modified_ms)
    .bind(to_i64(v.size)?)
    .bind(&v.etag)
    .bind(json(&v.attrs)?)
    .bind(json(&v.tags)?)
    .bind(v.tags_stamp)
    .bind(inline_of(&v.data))
    .bind(json(&parts_of(&v.data))?)
    .execute(&mut *conn)
    .await;
    or_missing(inserted, StoreError::NoSuchBucket)?;
    claim_blobs(conn, v.data.blob_ids().map(str::to_owned).collect()).await?;
    for task in &v.replication {
        sqlx::query(
            "INSERT INTO replication_tasks (bucket, key, version_id, rule_id, destination, role, replica_kms_key_id, \
             storage_class, size, state, not_before_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'PENDING', $10, $10)",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version_id)
        .bind(&task.rule_id)
        .bind(&task.destination)
        .bind(&task.role)
        .bind(&task.replica_kms_key_id)
        .bind(&task.storage_class)
        .bind(to_i64(v.size)?)
        .bind(v.modified_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A replica from another region (see `MetaStore::put_replica`).
pub(super) async fn insert_replica(conn: &mut PgConnection, v: &NewVersion) -> StoreResult<Displaced> {
    lock_key(conn, &v.bucket, &v.key).await?;
    let exists = sqlx::query("SELECT 1 FROM versions WHERE bucket = $1 AND key = $2 AND version_id = $3")
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version_id)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_some() {
        let blobs: Vec<String> = v.data.blob_ids().map(str::to_owned).collect();
        let owned: Vec<String> = sqlx::query_scalar("SELECT blob FROM blob_owners WHERE blob = ANY($1)")
            .bind(&blobs)
            .fetch_all(&mut *conn)
            .await?;
        let unowned = blobs.into_iter().filter(|b| !owned.contains(b)).collect();
        return Ok(Displaced { blobs: unowned });
    }
    let newer = sqlx::query("SELECT 1 FROM versions WHERE bucket = $1 AND key = $2 AND is_latest AND modified_ms > $3")
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(v.modified_ms)
        .fetch_optional(&mut *conn)
        .await?;
    if newer.is_some() {
        insert_row(conn, v, false).await?;
        Ok(Displaced::default())
    } else {
        insert_version(conn, v, None).await
    }
}

/// Leases due tasks no other worker holds; rows another front-end's
/// transaction is leasing right now are skipped, not waited for.
pub(super) async fn lease_tasks(
    conn: &mut PgConnection,
    owner: &str,
    (now_ms, lease_ms): (i64, i64),
    limit: usize,
) -> StoreResult<Vec<TaskRecord>> {
    let sql = format!(
        "UPDATE replication_tasks SET lease_until_ms = $1 + $2, lease_owner = $4 WHERE id IN (SELECT id FROM \
         replication_tasks t WHERE state = 'PENDING' AND not_before_ms <= $1 AND lease_until_ms <= $1 AND \
         (kind = 'OBJECT' OR NOT EXISTS (SELECT 1 FROM replication_tasks o WHERE o.bucket = t.bucket \
         AND o.key = t.key AND o.version_id = t.version_id AND o.destination = t.destination \
         AND o.kind = 'OBJECT' AND o.state = 'PENDING')) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING {TASK_COLUMNS}"
    );
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now_ms)
        .bind(lease_ms)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(owner)
        .fetch_all(&mut *conn)
        .await?;
    let mut tasks = found.iter().map(rows::task).collect::<StoreResult<Vec<_>>>()?;
    tasks.sort_by_key(|t| t.id);
    Ok(tasks)
}

/// Records how a task ended, if `owner` still holds its lease: a worker
/// whose lease ran out while it worked has been replaced, and only the
/// replacement's outcome counts.
pub(super) async fn finish_task(
    conn: &mut PgConnection,
    owner: &str,
    id: i64,
    outcome: &TaskOutcome,
    now_ms: i64,
) -> StoreResult<()> {
    let (state, reason, not_before, finished) = match outcome {
        TaskOutcome::Completed => (TaskState::Completed, None, now_ms, Some(now_ms)),
        TaskOutcome::Failed(reason) => (TaskState::Failed, Some(reason.as_str()), now_ms, Some(now_ms)),
        TaskOutcome::Retry { not_before_ms, reason } => {
            (TaskState::Pending, Some(reason.as_str()), *not_before_ms, None)
        }
    };
    let row = sqlx::query(
        "UPDATE replication_tasks SET state = $1, reason = $2, not_before_ms = $3, finished_ms = $4, \
         lease_until_ms = 0, lease_owner = NULL, attempts = attempts + 1 WHERE id = $5 AND lease_owner = $6 \
         RETURNING bucket, key, version_id",
    )
    .bind(state.as_str())
    .bind(reason)
    .bind(not_before)
    .bind(finished)
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(()) };
    let (bucket, key, version_id): (String, String, String) =
        (row.try_get("bucket")?, row.try_get("key")?, row.try_get("version_id")?);
    update_version_status(conn, &bucket, &key, &version_id).await
}

/// Sets a version's `replication_status` from its tasks.
async fn update_version_status(conn: &mut PgConnection, bucket: &str, key: &str, version_id: &str) -> StoreResult<()> {
    let task_states: Vec<String> =
        sqlx::query_scalar("SELECT state FROM replication_tasks WHERE bucket = $1 AND key = $2 AND version_id = $3")
            .bind(bucket)
            .bind(key)
            .bind(version_id)
            .fetch_all(&mut *conn)
            .await?;
    let any = |state: TaskState| task_states.iter().any(|s| TaskState::from_db(s) == state);
    let replication = if any(TaskState::Failed) {
        ReplicationStatus::Failed
    } else if any(TaskState::Pending) {
        ReplicationStatus::Pending
    } else {
        ReplicationStatus::Completed
    };
    sqlx::query(
        "UPDATE versions SET attrs = jsonb_set(attrs, '{replication_status}', to_jsonb(CAST( \
         CASE WHEN $1 = $2 AND attrs->'replica' = 'true'::jsonb THEN $3 ELSE $1 END AS text))) \
         WHERE bucket = $4 AND key = $5 AND version_id = $6",
    )
    .bind(replication.as_str())
    .bind(ReplicationStatus::Completed.as_str())
    .bind(ReplicationStatus::Replica.as_str())
    .bind(bucket)
    .bind(key)
    .bind(version_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn add_tasks(
    conn: &mut PgConnection,
    (bucket, key, version_id): (&str, &str, &str),
    tasks: &[NewTask],
) -> StoreResult<u64> {
    lock_key(conn, bucket, key).await?;
    let mut added = 0;
    for task in tasks {
        let inserted = sqlx::query(
            "INSERT INTO replication_tasks (bucket, key, version_id, rule_id, destination, role, replica_kms_key_id, \
             storage_class, size, state, not_before_ms, created_ms) SELECT bucket, key, version_id, $1, $2, $3, $4, $8, \
             size, 'PENDING', modified_ms, modified_ms FROM versions v WHERE bucket = $5 AND key = $6 AND version_id = $7 \
             AND NOT EXISTS \
             (SELECT 1 FROM replication_tasks t WHERE t.bucket = v.bucket AND t.key = v.key \
             AND t.version_id = v.version_id AND t.destination = $2)",
        )
        .bind(&task.rule_id)
        .bind(&task.destination)
        .bind(&task.role)
        .bind(&task.replica_kms_key_id)
        .bind(bucket)
        .bind(key)
        .bind(version_id)
        .bind(&task.storage_class)
        .execute(&mut *conn)
        .await?;
        added += inserted.rows_affected();
    }
    if added > 0 {
        update_version_status(conn, bucket, key, version_id).await?;
    }
    Ok(added)
}

pub(super) async fn retry_failed(conn: &mut PgConnection, bucket: &str, now_ms: i64) -> StoreResult<u64> {
    let found = sqlx::query(
        "UPDATE replication_tasks SET state = 'PENDING', reason = NULL, not_before_ms = $1, finished_ms = NULL, \
         lease_until_ms = 0, lease_owner = NULL, attempts = 0 WHERE bucket = $2 AND state = 'FAILED' \
         RETURNING key, version_id",
    )
    .bind(now_ms)
    .bind(bucket)
    .fetch_all(&mut *conn)
    .await?;
    let versions: HashSet<(String, String)> =
        found.iter().map(|row| Ok((row.try_get("key")?, row.try_get("version_id")?))).collect::<StoreResult<_>>()?;
    for (key, version_id) in &versions {
        update_version_status(conn, bucket, key, version_id).await?;
    }
    Ok(found.len() as u64)
}

pub(super) async fn create_bucket(conn: &mut PgConnection, bucket: &BucketRecord) -> StoreResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO buckets (name, created_ms, versioning) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&bucket.name)
    .bind(bucket.created_ms)
    .bind(bucket.versioning.to_db())
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::BucketExists);
    }
    Ok(())
}

/// Locks the bucket's row first: a write that references the bucket holds
/// a key-share lock on it until it commits, so by the time this lock is
/// granted every such write is visible to the emptiness check, and later
/// ones find the bucket gone.
pub(super) async fn delete_bucket(conn: &mut PgConnection, name: &str) -> StoreResult<Displaced> {
    let found =
        sqlx::query("SELECT 1 FROM buckets WHERE name = $1 FOR UPDATE").bind(name).fetch_optional(&mut *conn).await?;
    if found.is_none() {
        return Err(StoreError::NoSuchBucket);
    }
    let used =
        sqlx::query("SELECT 1 FROM versions WHERE bucket = $1 LIMIT 1").bind(name).fetch_optional(&mut *conn).await?;
    if used.is_some() {
        return Err(StoreError::BucketNotEmpty);
    }
    // Uploads in progress go with the bucket; each is locked as a part
    // write would lock it, so none is mid-write.
    let uploads: Vec<String> = sqlx::query_scalar("SELECT upload_id FROM uploads WHERE bucket = $1 FOR UPDATE")
        .bind(name)
        .fetch_all(&mut *conn)
        .await?;
    let blobs: Vec<String> = sqlx::query_scalar("DELETE FROM parts WHERE upload_id = ANY($1) RETURNING blob")
        .bind(&uploads)
        .fetch_all(&mut *conn)
        .await?;
    release_blobs(conn, &blobs).await?;
    sqlx::query("DELETE FROM uploads WHERE bucket = $1").bind(name).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM key_locks WHERE bucket = $1").bind(name).execute(&mut *conn).await?;
    let deleted = sqlx::query("DELETE FROM buckets WHERE name = $1").bind(name).execute(&mut *conn).await;
    or_missing(deleted, StoreError::BucketNotEmpty)?;
    Ok(Displaced { blobs })
}

pub(super) async fn set_versioning(conn: &mut PgConnection, name: &str, state: Versioning) -> StoreResult<()> {
    let updated = sqlx::query("UPDATE buckets SET versioning = $1 WHERE name = $2")
        .bind(state.to_db())
        .bind(name)
        .execute(&mut *conn)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NoSuchBucket);
    }
    Ok(())
}

pub(super) async fn put_bucket_config(
    conn: &mut PgConnection,
    bucket: &str,
    kind: &str,
    body: Option<&str>,
) -> StoreResult<()> {
    let Some(body) = body else {
        let found =
            sqlx::query("SELECT 1 FROM buckets WHERE name = $1").bind(bucket).fetch_optional(&mut *conn).await?;
        found.ok_or(StoreError::NoSuchBucket)?;
        sqlx::query("DELETE FROM bucket_configs WHERE bucket = $1 AND kind = $2")
            .bind(bucket)
            .bind(kind)
            .execute(&mut *conn)
            .await?;
        return Ok(());
    };
    let stored = sqlx::query(
        "INSERT INTO bucket_configs (bucket, kind, body) VALUES ($1, $2, $3) \
         ON CONFLICT (bucket, kind) DO UPDATE SET body = EXCLUDED.body",
    )
    .bind(bucket)
    .bind(kind)
    .bind(body)
    .execute(&mut *conn)
    .await;
    or_missing(stored, StoreError::NoSuchBucket)?;
    Ok(())
}

pub(super) async fn delete_version(
    conn: &mut PgConnection,
    (bucket, key, version_id): (&str, &str, &str),
    guard: Option<DeleteGuard>,
) -> StoreResult<(Option<VersionRecord>, Displaced)> {
    lock_key(conn, bucket, key).await?;
    let condition = match guard {
        None => "",
        Some(g) if g.alone => {
            " AND modified_ms = $4 AND is_latest = $5 AND NOT EXISTS \
             (SELECT 1 FROM versions o WHERE o.bucket = $1 AND o.key = $2 AND o.version_id <> $3)"
        }
        Some(_) => " AND modified_ms = $4 AND is_latest = $5",
    };
    let sql = format!(
        "DELETE FROM versions WHERE bucket = $1 AND key = $2 AND version_id = $3{condition} RETURNING {VERSION_COLUMNS}"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(bucket).bind(key).bind(version_id);
    if let Some(guard) = guard {
        query = query.bind(guard.written_ms).bind(guard.latest);
    }
    let row = query.fetch_optional(&mut *conn).await?;
    let Some(row) = row else {
        forget_key_if_empty(conn, bucket, key).await?;
        return Ok((None, Displaced::default()));
    };
    let removed = rows::version(&row)?;
    let blobs: Vec<String> = removed.data.blob_ids().map(str::to_owned).collect();
    release_blobs(conn, &blobs).await?;
    if removed.is_latest {
        sqlx::query(
            "UPDATE versions SET is_latest = true WHERE id = \
             (SELECT id FROM versions WHERE bucket = $1 AND key = $2 ORDER BY modified_ms DESC, id DESC LIMIT 1)",
        )
        .bind(bucket)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    }
    forget_key_if_empty(conn, bucket, key).await?;
    Ok((Some(removed), Displaced { blobs }))
}

/// Removes the key's lock row once no version of it is left (the key lock
/// is held, so none can appear meanwhile).
async fn forget_key_if_empty(conn: &mut PgConnection, bucket: &str, key: &str) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM key_locks WHERE bucket = $1 AND key = $2 \
         AND NOT EXISTS (SELECT 1 FROM versions WHERE bucket = $1 AND key = $2)",
    )
    .bind(bucket)
    .bind(key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn put_tags(conn: &mut PgConnection, w: &TagWrite) -> StoreResult<TagsApplied> {
    lock_key(conn, &w.bucket, &w.key).await?;
    let selector = if w.version_id.is_some() { "version_id = $3" } else { "is_latest" };
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM versions WHERE bucket = $1 AND key = $2 AND {selector} AND NOT is_delete_marker"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&w.bucket).bind(&w.key);
    if let Some(id) = &w.version_id {
        query = query.bind(id);
    }
    let current = query
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| rows::version(&r))
        .transpose()?
        .ok_or(StoreError::NoSuchVersion)?;
    let tags = json(&w.tags)?;
    let stamp = match w.stamp {
        None => w.now_ms.max(current.tags_stamp + 1),
        Some(s) if (s, &tags) > (current.tags_stamp, &json(&current.tags)?) => s,
        Some(_) => return Ok(TagsApplied { version: current, changed: false, tasks: 0 }),
    };
    let sql = format!(
        "UPDATE versions SET tags = $1::jsonb, tags_stamp = $2 WHERE bucket = $3 AND key = $4 AND version_id = $5 \
         RETURNING {VERSION_COLUMNS}"
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&tags).bind(stamp).bind(&w.bucket).bind(&w.key);
    let version = rows::version(&query.bind(&current.version_id).fetch_one(&mut *conn).await?)?;
    let mut tasks = 0;
    for task in &w.replication {
        tasks += add_tag_task(conn, &version, task, w.now_ms).await?;
    }
    if tasks > 0 {
        update_version_status(conn, &version.bucket, &version.key, &version.version_id).await?;
    }
    Ok(TagsApplied { version, changed: true, tasks })
}

/// Queues `version`'s new tag set for `task`'s destination (see the
/// `SQLite` engine's twin for when).
async fn add_tag_task(
    conn: &mut PgConnection,
    version: &VersionRecord,
    task: &NewTask,
    now_ms: i64,
) -> StoreResult<u64> {
    let added = sqlx::query(
        "INSERT INTO replication_tasks (bucket, key, version_id, kind, rule_id, destination, role, \
         replica_kms_key_id, size, state, not_before_ms, created_ms) \
         SELECT $1, $2, $3, 'TAGS', $4, $5, $6, $7, 0, 'PENDING', $8, $8 \
         WHERE ($9 OR EXISTS (SELECT 1 FROM replication_tasks WHERE bucket = $1 AND key = $2 AND version_id = $3 \
         AND destination = $5 AND kind = 'OBJECT' AND state <> 'FAILED')) \
         AND NOT EXISTS (SELECT 1 FROM replication_tasks WHERE bucket = $1 AND key = $2 AND version_id = $3 \
         AND destination = $5 AND kind = 'TAGS' AND state = 'PENDING' AND lease_until_ms <= $8)",
    )
    .bind(&version.bucket)
    .bind(&version.key)
    .bind(&version.version_id)
    .bind(&task.rule_id)
    .bind(&task.destination)
    .bind(&task.role)
    .bind(&task.replica_kms_key_id)
    .bind(now_ms)
    .bind(version.attrs.replica)
    .execute(&mut *conn)
    .await?;
    Ok(added.rows_affected())
}

pub(super) async fn create_upload(conn: &mut PgConnection, upload: &UploadRecord) -> StoreResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO uploads (upload_id, bucket, key, created_ms, attrs, tags) \
         VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
    )
    .bind(&upload.upload_id)
    .bind(&upload.bucket)
    .bind(&upload.key)
    .bind(upload.created_ms)
    .bind(json(&upload.attrs)?)
    .bind(json(&upload.tags)?)
    .execute(&mut *conn)
    .await;
    or_missing(inserted, StoreError::NoSuchBucket)?;
    Ok(())
}

pub(super) async fn put_part(conn: &mut PgConnection, part: &PartRecord) -> StoreResult<Displaced> {
    lock_upload(conn, None, &part.upload_id).await?;
    let old: Option<String> = sqlx::query_scalar("SELECT blob FROM parts WHERE upload_id = $1 AND part_number = $2")
        .bind(&part.upload_id)
        .bind(i64::from(part.part_number))
        .fetch_optional(&mut *conn)
        .await?;
    let displaced: Vec<String> = old.into_iter().collect();
    release_blobs(conn, &displaced).await?;
    claim_blobs(conn, vec![part.blob.clone()]).await?;
    sqlx::query(
        "INSERT INTO parts (upload_id, part_number, size, etag, blob, modified_ms, checksum, binding) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (upload_id, part_number) DO UPDATE SET \
         size = EXCLUDED.size, etag = EXCLUDED.etag, blob = EXCLUDED.blob, modified_ms = EXCLUDED.modified_ms, \
         checksum = EXCLUDED.checksum, binding = EXCLUDED.binding",
    )
    .bind(&part.upload_id)
    .bind(i64::from(part.part_number))
    .bind(to_i64(part.size)?)
    .bind(&part.etag)
    .bind(&part.blob)
    .bind(part.modified_ms)
    .bind(&part.checksum)
    .bind(&part.binding)
    .execute(&mut *conn)
    .await?;
    Ok(Displaced { blobs: displaced })
}

pub(super) async fn complete_upload(
    conn: &mut PgConnection,
    upload_id: &str,
    version: &NewVersion,
    precondition: Option<&Precondition>,
) -> StoreResult<Displaced> {
    lock_upload(conn, Some(&version.bucket), upload_id).await?;
    // The parts' blobs pass to the version: released first, claimed again below.
    let blobs: Vec<String> = sqlx::query_scalar("DELETE FROM parts WHERE upload_id = $1 RETURNING blob")
        .bind(upload_id)
        .fetch_all(&mut *conn)
        .await?;
    // The parts read before this transaction must be the upload's still:
    // one uploaded again meanwhile (through any front-end) fails the
    // completion rather than lose its bytes.
    if version.data.blob_ids().any(|b| !blobs.iter().any(|owned| owned == b)) {
        return Err(StoreError::PartChanged);
    }
    release_blobs(conn, &blobs).await?;
    let mut displaced = insert_version(conn, version, precondition).await?;
    let kept: HashSet<&str> = version.data.blob_ids().collect();
    displaced.blobs.extend(blobs.into_iter().filter(|b| !kept.contains(b.as_str())));
    sqlx::query("DELETE FROM uploads WHERE upload_id = $1").bind(upload_id).execute(&mut *conn).await?;
    Ok(displaced)
}

pub(super) async fn abort_upload(conn: &mut PgConnection, bucket: &str, upload_id: &str) -> StoreResult<Displaced> {
    lock_upload(conn, Some(bucket), upload_id).await?;
    let blobs: Vec<String> = sqlx::query_scalar("DELETE FROM parts WHERE upload_id = $1 RETURNING blob")
        .bind(upload_id)
        .fetch_all(&mut *conn)
        .await?;
    release_blobs(conn, &blobs).await?;
    sqlx::query("DELETE FROM uploads WHERE upload_id = $1").bind(upload_id).execute(&mut *conn).await?;
    Ok(Displaced { blobs })
}

pub(super) async fn registry_claim(conn: &mut PgConnection, name: &str, region: &str) -> StoreResult<RegisteredBucket> {
    let now = time::OffsetDateTime::now_utc();
    let created_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let row = sqlx::query(
        "INSERT INTO bucket_registry (name, region, created_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET region = bucket_registry.region RETURNING name, region, created_ms",
    )
    .bind(name)
    .bind(region)
    .bind(created_ms)
    .fetch_one(&mut *conn)
    .await?;
    rows::registered(&row)
}

/// The generation rows are bumped first: each locks its collection against
/// every other front-end's batch until this one commits.
pub(super) async fn write_docs(
    conn: &mut PgConnection,
    writes: &[DocWrite],
    expect: &[(&'static str, i64)],
) -> StoreResult<()> {
    for collection in crate::docs::collections_of(writes) {
        let generation: i64 = sqlx::query_scalar(
            "INSERT INTO doc_generations (collection, generation) VALUES ($1, 1) \
             ON CONFLICT (collection) DO UPDATE SET generation = doc_generations.generation + 1 RETURNING generation",
        )
        .bind(collection)
        .fetch_one(&mut *conn)
        .await?;
        crate::docs::check_expected(collection, generation, expect)?;
    }
    // Read with a share lock: no batch may change them before this commits.
    for (collection, expected) in crate::docs::only_expected(writes, expect) {
        let generation: Option<i64> =
            sqlx::query_scalar("SELECT generation FROM doc_generations WHERE collection = $1 FOR SHARE")
                .bind(collection)
                .fetch_optional(&mut *conn)
                .await?;
        if generation.unwrap_or(0) != expected {
            return Err(StoreError::Conflict(collection.to_owned()));
        }
    }
    for write in writes {
        match &write.body {
            Some(body) => {
                sqlx::query(
                    "INSERT INTO docs (collection, id, body) VALUES ($1, $2, $3) \
                     ON CONFLICT (collection, id) DO UPDATE SET body = EXCLUDED.body",
                )
                .bind(write.collection)
                .bind(&write.id)
                .bind(body)
                .execute(&mut *conn)
                .await?
            }
            None => {
                sqlx::query("DELETE FROM docs WHERE collection = $1 AND id = $2")
                    .bind(write.collection)
                    .bind(&write.id)
                    .execute(&mut *conn)
                    .await?
            }
        };
    }
    Ok(())
}
