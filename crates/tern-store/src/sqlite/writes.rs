//! The write transactions of the `SQLite` engine. Each runs on the one writer
//! connection inside a group-commit batch (see `group_commit`), isolated by a
//! SAVEPOINT, so it either applies whole or not at all.

use std::collections::HashSet;

use sqlx::sqlite::SqliteRow;
use sqlx::{Column as _, Row, SqliteConnection};

use super::{TASK_COLUMNS, VERSION_COLUMNS, audited};
use crate::docs::DocWrite;
use crate::model::{
    BlobPart, BucketRecord, DeleteGuard, Displaced, LiveVersion, NULL_VERSION, NewVersion, PartRecord, Precondition,
    RegisteredBucket, ReplicationStatus, UploadRecord, VersionRecord, Versioning,
};
use crate::replication::{NewTask, TagWrite, TagsApplied, TaskOutcome, TaskRecord, TaskState};
use crate::rows::{self, inline_of, json, parts_of, to_i64};
use crate::{StoreError, StoreResult};

async fn require_bucket(conn: &mut SqliteConnection, bucket: &str) -> StoreResult<()> {
    let found = sqlx::query("SELECT 1 FROM buckets WHERE name = ?").bind(bucket).fetch_optional(&mut *conn).await?;
    found.map(|_| ()).ok_or(StoreError::NoSuchBucket)
}

fn check_precondition(current: Option<&SqliteRow>, precondition: Option<&Precondition>) -> StoreResult<()> {
    let live = match current {
        Some(row) if !row.try_get::<bool, _>("is_delete_marker")? => Some((
            row.try_get::<String, _>("etag")?,
            row.try_get::<String, _>("version_id")?,
            row.try_get("modified_ms")?,
        )),
        _ => None,
    };
    let live = live.as_ref().map(|(etag, version_id, modified_ms)| LiveVersion {
        etag,
        version_id,
        modified_ms: *modified_ms,
    });
    precondition.map_or(Ok(()), |p| p.check(live))
}

/// A new version's row, its blobs' ownership and its replication tasks, in
/// one round trip. Its parameters, in order: the 13 columns of the row, the
/// parts again (JSON: the blobs to claim), then bucket, key, version id,
/// size, modified twice and the tasks (JSON). (Anonymous parameters: sqlx
/// numbers them on across the statements of one query, but stops binding a
/// statement at the first unused number past the values it was given.)
/// Only blobs nobody owns are claimed; the caller compares what comes back
/// (`RETURNING blob`) with what it asked for.
macro_rules! insert_row {
    () => {
        "INSERT INTO versions (bucket, key, version_id, is_latest, is_delete_marker, modified_ms, size, etag, attrs, \
            tags, tags_stamp, inline_data, parts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?); \
        INSERT INTO blob_owners (blob) SELECT part.value ->> 'blob' FROM json_each(?) AS part WHERE true \
            ON CONFLICT DO NOTHING RETURNING blob; \
        INSERT INTO replication_tasks (bucket, key, version_id, rule_id, destination, role, replica_kms_key_id, \
            storage_class, size, state, not_before_ms, created_ms) \
            SELECT ?, ?, ?, task.value ->> 'rule_id', task.value ->> 'destination', task.value ->> 'role', \
            task.value ->> 'replica_kms_key_id', task.value ->> 'storage_class', ?, 'PENDING', ?, ? \
            FROM json_each(?) AS task;"
    };
}
const INSERT_ROW: &str = insert_row!();

/// A new latest version, in one round trip: a null version replaces the
/// key's null version, whose blobs lose their owner and whose parts come
/// back (`RETURNING parts`) for the caller to delete after the commit;
/// whatever was latest no longer is; then [`INSERT_ROW`]. Its own
/// parameters come first: version id, bucket, key, twice, then bucket, key.
const INSERT_LATEST: &str = concat!(
    "DELETE FROM blob_owners WHERE ? = 'null' AND blob IN (SELECT part.value ->> 'blob' \
        FROM versions, json_each(versions.parts) AS part \
        WHERE versions.bucket = ? AND versions.key = ? AND versions.version_id = 'null'); \
    DELETE FROM versions WHERE ? = 'null' AND bucket = ? AND key = ? AND version_id = 'null' RETURNING parts; \
    UPDATE versions SET is_latest = 0 WHERE bucket = ? AND key = ? AND is_latest = 1; ",
    insert_row!()
);

// INSERT_LATEST names the null version as SQL text.
const _: () = assert!(matches!(NULL_VERSION.as_bytes(), b"null"));

/// The body of `put_version`, shared with `complete_upload`. Every round
/// trip to the writer connection's thread costs two thread hand-offs, so a
/// version is one (two when a precondition needs the current version read
/// first); the bucket's existence is the foreign key's job.
pub(super) async fn insert_version(
    conn: &mut SqliteConnection,
    v: &NewVersion,
    precondition: Option<&Precondition>,
) -> StoreResult<Displaced> {
    if precondition.is_some() {
        let current = sqlx::query(
            "SELECT etag, is_delete_marker, version_id, modified_ms FROM versions \
                 WHERE bucket = ? AND key = ? AND is_latest = 1",
        )
        .bind(&v.bucket)
        .bind(&v.key)
        .fetch_optional(&mut *conn)
        .await?;
        check_precondition(current.as_ref(), precondition)?;
    }
    let rows = insert_row(conn, v, true).await?;
    let mut displaced = Displaced::default();
    for replaced in returned(&rows, "parts")? {
        let parts: Vec<BlobPart> = serde_json::from_str(replaced)?;
        displaced.blobs.extend(parts.into_iter().map(|p| p.blob));
    }
    // Never hand back for deletion a blob the new version holds.
    let kept: HashSet<&str> = v.data.blob_ids().collect();
    displaced.blobs.retain(|blob| !kept.contains(blob.as_str()));
    Ok(displaced)
}

/// Forgets the owner of `blobs`, whose row is gone: they may be deleted.
async fn release_blobs(conn: &mut SqliteConnection, blobs: &[String]) -> StoreResult<()> {
    if !blobs.is_empty() {
        sqlx::query("DELETE FROM blob_owners WHERE blob IN (SELECT value FROM json_each(?))")
            .bind(json(&blobs)?)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Records `blob` as owned by the part being written; a blob some other
/// row owns is refused.
async fn claim_blob(conn: &mut SqliteConnection, blob: &str) -> StoreResult<()> {
    let claimed = sqlx::query("INSERT INTO blob_owners (blob) VALUES (?)").bind(blob).execute(&mut *conn).await;
    match claimed {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::BlobInUse(blob.to_owned())),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// Inserts `v`, through [`INSERT_LATEST`] if it is to be the latest, else
/// [`INSERT_ROW`]; returns the rows they returned once every blob of `v`
/// is claimed.
async fn insert_row(conn: &mut SqliteConnection, v: &NewVersion, latest: bool) -> StoreResult<Vec<SqliteRow>> {
    let inserted = bound_insert(v, latest)?.fetch_all(&mut *conn).await;
    let rows = match inserted {
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => return Err(StoreError::NoSuchBucket),
        other => other?,
    };
    let mut claimed: HashSet<&str> = returned(&rows, "blob")?.into_iter().collect();
    // A blob not claimed here is another row's (or named twice).
    match v.data.blob_ids().find(|blob| !claimed.remove(blob)) {
        Some(taken) => Err(StoreError::BlobInUse(taken.to_owned())),
        None => Ok(rows),
    }
}

/// The values of `column` in the rows of the statements that return it.
fn returned<'r>(rows: &'r [SqliteRow], column: &str) -> StoreResult<Vec<&'r str>> {
    let from_statement = |row: &&SqliteRow| row.columns().iter().any(|c| c.name() == column);
    rows.iter().filter(from_statement).map(|row| Ok(row.try_get::<&str, _>(column)?)).collect()
}

/// [`INSERT_LATEST`] or [`INSERT_ROW`] with `v`'s values, in their order.
fn bound_insert(v: &NewVersion, latest: bool) -> StoreResult<SqliteQuery<'_>> {
    let mut query = sqlx::query(if latest { INSERT_LATEST } else { INSERT_ROW });
    if latest {
        for _ in 0..2 {
            query = query.bind(&v.version_id).bind(&v.bucket).bind(&v.key);
        }
        query = query.bind(&v.bucket).bind(&v.key);
    }
    let (parts, size) = (json(&parts_of(&v.data))?, to_i64(v.size)?);
    let tasks: Vec<serde_json::Value> = v.replication.iter().map(task_json).collect();
    Ok(query
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version_id)
        .bind(latest)
        .bind(v.is_delete_marker)
        .bind(v.modified_ms)
        .bind(size)
        .bind(&v.etag)
        .bind(json(&v.attrs)?)
        .bind(json(&v.tags)?)
        .bind(v.tags_stamp)
        .bind(inline_of(&v.data))
        .bind(parts.clone())
        .bind(parts)
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version_id)
        .bind(size)
        .bind(v.modified_ms)
        .bind(v.modified_ms)
        .bind(json(&tasks)?))
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, <sqlx::Sqlite as sqlx::Database>::Arguments>;

fn task_json(task: &NewTask) -> serde_json::Value {
    serde_json::json!({
        "rule_id": task.rule_id,
        "destination": task.destination,
        "role": task.role,
        "replica_kms_key_id": task.replica_kms_key_id,
        "storage_class": task.storage_class,
    })
}

/// A replica from another region. Applying it twice changes nothing, and
/// a version older than the key's current one never becomes current.
/// Returns the replica's blobs that no row owns when it was not inserted
/// (a repeated delivery): those, and only those, are the caller's to delete.
pub(super) async fn insert_replica(conn: &mut SqliteConnection, v: &NewVersion) -> StoreResult<Displaced> {
    let exists = sqlx::query("SELECT 1 FROM versions WHERE bucket = ? AND key = ? AND version_id = ?")
        .bind(&v.bucket)
        .bind(&v.key)
        .bind(&v.version_id)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_some() {
        let mut unowned = Displaced::default();
        for blob in v.data.blob_ids() {
            let owned =
                sqlx::query("SELECT 1 FROM blob_owners WHERE blob = ?").bind(blob).fetch_optional(&mut *conn).await?;
            if owned.is_none() {
                unowned.blobs.push(blob.to_owned());
            }
        }
        return Ok(unowned);
    }
    let newer =
        sqlx::query("SELECT 1 FROM versions WHERE bucket = ? AND key = ? AND is_latest = 1 AND modified_ms > ?")
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

/// Tasks `t` a worker may take at `?1`: pending, due, not leased, and for a
/// tag change, not behind a pending transfer of its own version.
pub(super) const TASK_IS_DUE: &str = "t.state = 'PENDING' AND t.not_before_ms <= ?1 AND t.lease_until_ms <= ?1 \
     AND (t.kind = 'OBJECT' OR NOT EXISTS (SELECT 1 FROM replication_tasks o WHERE o.bucket = t.bucket \
     AND o.key = t.key AND o.version_id = t.version_id AND o.destination = t.destination AND o.kind = 'OBJECT' \
     AND o.state = 'PENDING'))";

pub(super) async fn lease_tasks(
    conn: &mut SqliteConnection,
    now_ms: i64,
    lease_ms: i64,
    limit: usize,
) -> StoreResult<Vec<TaskRecord>> {
    let rows = sqlx::query(audited(format!(
        "UPDATE replication_tasks SET lease_until_ms = ?1 + ?2 WHERE id IN (SELECT id FROM replication_tasks t \
         WHERE {TASK_IS_DUE} ORDER BY id LIMIT ?3) RETURNING {TASK_COLUMNS}"
    )))
    .bind(now_ms)
    .bind(lease_ms)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    let mut tasks = rows.iter().map(rows::task).collect::<StoreResult<Vec<_>>>()?;
    tasks.sort_by_key(|t| t.id);
    Ok(tasks)
}

pub(super) async fn finish_task(
    conn: &mut SqliteConnection,
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
        "UPDATE replication_tasks SET state = ?, reason = ?, not_before_ms = ?, finished_ms = ?, lease_until_ms = 0, \
         attempts = attempts + 1 WHERE id = ? RETURNING bucket, key, version_id",
    )
    .bind(state.as_str())
    .bind(reason)
    .bind(not_before)
    .bind(finished)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(()) };
    let (bucket, key, version_id): (String, String, String) =
        (row.try_get("bucket")?, row.try_get("key")?, row.try_get("version_id")?);
    update_version_status(conn, &bucket, &key, &version_id).await
}

/// Sets a version's `replication_status` from its tasks (a replica's
/// tasks carry changes made to it back).
async fn update_version_status(
    conn: &mut SqliteConnection,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> StoreResult<()> {
    let task_states: Vec<String> =
        sqlx::query_scalar("SELECT state FROM replication_tasks WHERE bucket = ? AND key = ? AND version_id = ?")
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
        "UPDATE versions SET attrs = json_set(attrs, '$.replication_status', \
         CASE WHEN ?1 = ?2 AND json_extract(attrs, '$.replica') THEN ?3 ELSE ?1 END) \
         WHERE bucket = ?4 AND key = ?5 AND version_id = ?6",
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
    conn: &mut SqliteConnection,
    (bucket, key, version_id): (&str, &str, &str),
    tasks: &[NewTask],
) -> StoreResult<u64> {
    let mut added = 0;
    for task in tasks {
        let inserted = sqlx::query(
            "INSERT INTO replication_tasks (bucket, key, version_id, rule_id, destination, role, replica_kms_key_id, \
             storage_class, size, state, not_before_ms, created_ms) SELECT bucket, key, version_id, ?, ?, ?, ?, ?, size, 'PENDING', \
             modified_ms, modified_ms FROM versions v WHERE bucket = ? AND key = ? AND version_id = ? AND NOT EXISTS \
             (SELECT 1 FROM replication_tasks t WHERE t.bucket = v.bucket AND t.key = v.key \
             AND t.version_id = v.version_id AND t.destination = ?)",
        )
        .bind(&task.rule_id)
        .bind(&task.destination)
        .bind(&task.role)
        .bind(&task.replica_kms_key_id)
        .bind(&task.storage_class)
        .bind(bucket)
        .bind(key)
        .bind(version_id)
        .bind(&task.destination)
        .execute(&mut *conn)
        .await?;
        added += inserted.rows_affected();
    }
    if added > 0 {
        update_version_status(conn, bucket, key, version_id).await?;
    }
    Ok(added)
}

pub(super) async fn retry_failed(conn: &mut SqliteConnection, bucket: &str, now_ms: i64) -> StoreResult<u64> {
    let rows = sqlx::query(
        "UPDATE replication_tasks SET state = 'PENDING', reason = NULL, not_before_ms = ?, finished_ms = NULL, \
         lease_until_ms = 0, attempts = 0 WHERE bucket = ? AND state = 'FAILED' RETURNING key, version_id",
    )
    .bind(now_ms)
    .bind(bucket)
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let (key, version_id): (String, String) = (row.try_get("key")?, row.try_get("version_id")?);
        update_version_status(conn, bucket, &key, &version_id).await?;
    }
    Ok(rows.len() as u64)
}

pub(super) async fn create_bucket(conn: &mut SqliteConnection, bucket: &BucketRecord) -> StoreResult<()> {
    let inserted = sqlx::query("INSERT OR IGNORE INTO buckets (name, created_ms, versioning) VALUES (?, ?, ?)")
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

pub(super) async fn delete_bucket(conn: &mut SqliteConnection, name: &str) -> StoreResult<Displaced> {
    require_bucket(conn, name).await?;
    let used =
        sqlx::query("SELECT 1 FROM versions WHERE bucket = ? LIMIT 1").bind(name).fetch_optional(&mut *conn).await?;
    if used.is_some() {
        return Err(StoreError::BucketNotEmpty);
    }
    let blobs: Vec<String> = sqlx::query_scalar(
        "DELETE FROM parts WHERE upload_id IN (SELECT upload_id FROM uploads WHERE bucket = ?) RETURNING blob",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    release_blobs(conn, &blobs).await?;
    sqlx::query("DELETE FROM uploads WHERE bucket = ?").bind(name).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM buckets WHERE name = ?").bind(name).execute(&mut *conn).await?;
    Ok(Displaced { blobs })
}

pub(super) async fn set_versioning(conn: &mut SqliteConnection, name: &str, state: Versioning) -> StoreResult<()> {
    let updated = sqlx::query("UPDATE buckets SET versioning = ? WHERE name = ?")
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
    conn: &mut SqliteConnection,
    bucket: &str,
    kind: &str,
    body: Option<&str>,
) -> StoreResult<()> {
    require_bucket(conn, bucket).await?;
    match body {
        Some(body) => {
            sqlx::query("INSERT OR REPLACE INTO bucket_configs (bucket, kind, body) VALUES (?, ?, ?)")
                .bind(bucket)
                .bind(kind)
                .bind(body)
                .execute(&mut *conn)
                .await?
        }
        None => {
            sqlx::query("DELETE FROM bucket_configs WHERE bucket = ? AND kind = ?")
                .bind(bucket)
                .bind(kind)
                .execute(&mut *conn)
                .await?
        }
    };
    Ok(())
}

pub(super) async fn delete_version(
    conn: &mut SqliteConnection,
    (bucket, key, version_id): (&str, &str, &str),
    guard: Option<DeleteGuard>,
) -> StoreResult<(Option<VersionRecord>, Displaced)> {
    let condition = match guard {
        None => "",
        Some(g) if g.alone => {
            " AND modified_ms = ?4 AND is_latest = ?5 AND NOT EXISTS \
             (SELECT 1 FROM versions o WHERE o.bucket = ?1 AND o.key = ?2 AND o.version_id <> ?3)"
        }
        Some(_) => " AND modified_ms = ?4 AND is_latest = ?5",
    };
    let sql = format!(
        "DELETE FROM versions WHERE bucket = ?1 AND key = ?2 AND version_id = ?3{condition} RETURNING {VERSION_COLUMNS}"
    );
    let mut query = sqlx::query(audited(sql)).bind(bucket).bind(key).bind(version_id);
    if let Some(guard) = guard {
        query = query.bind(guard.written_ms).bind(guard.latest);
    }
    let row = query.fetch_optional(&mut *conn).await?;
    let Some(row) = row else {
        return Ok((None, Displaced::default()));
    };
    let removed = rows::version(&row)?;
    let blobs: Vec<String> = removed.data.blob_ids().map(str::to_owned).collect();
    release_blobs(conn, &blobs).await?;
    if removed.is_latest {
        sqlx::query(
            "UPDATE versions SET is_latest = 1 WHERE id = \
             (SELECT id FROM versions WHERE bucket = ? AND key = ? ORDER BY modified_ms DESC, id DESC LIMIT 1)",
        )
        .bind(bucket)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    }
    Ok((Some(removed), Displaced { blobs }))
}

pub(super) async fn put_tags(conn: &mut SqliteConnection, w: &TagWrite) -> StoreResult<TagsApplied> {
    let selector = if w.version_id.is_some() { "version_id = ?" } else { "is_latest = 1" };
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM versions WHERE bucket = ? AND key = ? AND {selector} AND is_delete_marker = 0"
    );
    let mut query = sqlx::query(audited(sql)).bind(&w.bucket).bind(&w.key);
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
        "UPDATE versions SET tags = ?, tags_stamp = ? WHERE bucket = ? AND key = ? AND version_id = ? \
         RETURNING {VERSION_COLUMNS}"
    );
    let query = sqlx::query(audited(sql)).bind(&tags).bind(stamp).bind(&w.bucket).bind(&w.key);
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

/// Queues `version`'s new tag set for `task`'s destination, if the version
/// goes there (a replica's changes go where its rules say) and no queued,
/// unleased task would carry the same tags already.
async fn add_tag_task(
    conn: &mut SqliteConnection,
    version: &VersionRecord,
    task: &NewTask,
    now_ms: i64,
) -> StoreResult<u64> {
    let added = sqlx::query(
        "INSERT INTO replication_tasks (bucket, key, version_id, kind, rule_id, destination, role, \
         replica_kms_key_id, size, state, not_before_ms, created_ms) \
         SELECT ?1, ?2, ?3, 'TAGS', ?4, ?5, ?6, ?7, 0, 'PENDING', ?8, ?8 \
         WHERE (?9 OR EXISTS (SELECT 1 FROM replication_tasks WHERE bucket = ?1 AND key = ?2 AND version_id = ?3 \
         AND destination = ?5 AND kind = 'OBJECT' AND state <> 'FAILED')) \
         AND NOT EXISTS (SELECT 1 FROM replication_tasks WHERE bucket = ?1 AND key = ?2 AND version_id = ?3 \
         AND destination = ?5 AND kind = 'TAGS' AND state = 'PENDING' AND lease_until_ms <= ?8)",
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

pub(super) async fn create_upload(conn: &mut SqliteConnection, upload: &UploadRecord) -> StoreResult<()> {
    require_bucket(conn, &upload.bucket).await?;
    sqlx::query("INSERT INTO uploads (upload_id, bucket, key, created_ms, attrs, tags) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(&upload.upload_id)
        .bind(&upload.bucket)
        .bind(&upload.key)
        .bind(upload.created_ms)
        .bind(json(&upload.attrs)?)
        .bind(json(&upload.tags)?)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn put_part(conn: &mut SqliteConnection, part: &PartRecord) -> StoreResult<Displaced> {
    let exists = sqlx::query("SELECT 1 FROM uploads WHERE upload_id = ?")
        .bind(&part.upload_id)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        return Err(StoreError::NoSuchUpload);
    }
    let old: Option<String> = sqlx::query_scalar("SELECT blob FROM parts WHERE upload_id = ? AND part_number = ?")
        .bind(&part.upload_id)
        .bind(part.part_number)
        .fetch_optional(&mut *conn)
        .await?;
    let displaced: Vec<String> = old.into_iter().collect();
    release_blobs(conn, &displaced).await?;
    claim_blob(conn, &part.blob).await?;
    sqlx::query(
        "INSERT OR REPLACE INTO parts (upload_id, part_number, size, etag, blob, modified_ms, checksum, binding) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&part.upload_id)
    .bind(part.part_number)
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
    conn: &mut SqliteConnection,
    upload_id: &str,
    version: &NewVersion,
    precondition: Option<&Precondition>,
) -> StoreResult<Displaced> {
    let exists = sqlx::query("SELECT 1 FROM uploads WHERE upload_id = ? AND bucket = ?")
        .bind(upload_id)
        .bind(&version.bucket)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        return Err(StoreError::NoSuchUpload);
    }
    // The parts' blobs pass to the version: released first, claimed again below.
    let blobs: Vec<String> = sqlx::query_scalar("DELETE FROM parts WHERE upload_id = ? RETURNING blob")
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
    sqlx::query("DELETE FROM uploads WHERE upload_id = ?").bind(upload_id).execute(&mut *conn).await?;
    Ok(displaced)
}

pub(super) async fn abort_upload(conn: &mut SqliteConnection, bucket: &str, upload_id: &str) -> StoreResult<Displaced> {
    let exists = sqlx::query("SELECT 1 FROM uploads WHERE upload_id = ? AND bucket = ?")
        .bind(upload_id)
        .bind(bucket)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        return Err(StoreError::NoSuchUpload);
    }
    let blobs: Vec<String> = sqlx::query_scalar("DELETE FROM parts WHERE upload_id = ? RETURNING blob")
        .bind(upload_id)
        .fetch_all(&mut *conn)
        .await?;
    release_blobs(conn, &blobs).await?;
    sqlx::query("DELETE FROM uploads WHERE upload_id = ?").bind(upload_id).execute(&mut *conn).await?;
    Ok(Displaced { blobs })
}

pub(super) async fn registry_claim(
    conn: &mut SqliteConnection,
    name: &str,
    region: &str,
) -> StoreResult<RegisteredBucket> {
    let now = time::OffsetDateTime::now_utc();
    let created_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let row = sqlx::query(
        "INSERT INTO bucket_registry (name, region, created_ms) VALUES (?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET name = name RETURNING name, region, created_ms",
    )
    .bind(name)
    .bind(region)
    .bind(created_ms)
    .fetch_one(&mut *conn)
    .await?;
    rows::registered(&row)
}

pub(super) async fn registry_release(conn: &mut SqliteConnection, name: &str, region: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM bucket_registry WHERE name = ? AND region = ?")
        .bind(name)
        .bind(region)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn write_docs(
    conn: &mut SqliteConnection,
    writes: &[DocWrite],
    expect: &[(&'static str, i64)],
) -> StoreResult<()> {
    for collection in crate::docs::collections_of(writes) {
        let generation: i64 = sqlx::query_scalar(
            "INSERT INTO doc_generations (collection, generation) VALUES (?, 1) \
             ON CONFLICT (collection) DO UPDATE SET generation = generation + 1 RETURNING generation",
        )
        .bind(collection)
        .fetch_one(&mut *conn)
        .await?;
        crate::docs::check_expected(collection, generation, expect)?;
    }
    for (collection, expected) in crate::docs::only_expected(writes, expect) {
        let generation: Option<i64> = sqlx::query_scalar("SELECT generation FROM doc_generations WHERE collection = ?")
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
                sqlx::query("INSERT OR REPLACE INTO docs (collection, id, body) VALUES (?, ?, ?)")
                    .bind(write.collection)
                    .bind(&write.id)
                    .bind(body)
                    .execute(&mut *conn)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM docs WHERE collection = ? AND id = ?")
                    .bind(write.collection)
                    .bind(&write.id)
                    .execute(&mut *conn)
                    .await?
            }
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::Arguments as _;
    use sqlx::Execute as _;

    use super::*;
    use crate::model::{ObjectAttrs, ObjectData};

    /// A placeholder without its value would be NULL (sqlx stops binding
    /// there), and `json_each(NULL)` would drop replication tasks silently.
    #[test]
    fn every_placeholder_of_an_insert_has_its_value() {
        let v = NewVersion {
            bucket: "b".into(),
            key: "k".into(),
            version_id: NULL_VERSION.into(),
            is_delete_marker: false,
            modified_ms: 1,
            size: 1,
            etag: "e".into(),
            attrs: ObjectAttrs::default(),
            tags: vec![],
            tags_stamp: 1,
            data: ObjectData::Inline(bytes::Bytes::from_static(b"x")),
            replication: vec![],
        };
        for (latest, sql) in [(true, INSERT_LATEST), (false, INSERT_ROW)] {
            let mut query = bound_insert(&v, latest).unwrap();
            let bound = query.take_arguments().unwrap().unwrap().len();
            assert_eq!(bound, sql.matches('?').count(), "latest: {latest}");
        }
    }
}
