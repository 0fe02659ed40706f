//! The listing queries, built once for both SQL engines: values always
//! travel as bound parameters (sqlx's `QueryBuilder` numbers them as each
//! engine wants), and each engine names the columns it selects.

use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::model::{KeyStart, prefix_upper_bound};

/// Latest versions that are not delete markers, by key.
pub(crate) fn current<DB>(columns: &str, bucket: &str, prefix: &str, start: &KeyStart, limit: i64) -> QueryBuilder<DB>
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(format!("SELECT {columns} FROM versions WHERE bucket = "));
    q.push_bind(bucket.to_owned()).push(" AND is_latest AND NOT is_delete_marker AND ");
    key_range(&mut q, prefix, start);
    q.push(" ORDER BY key LIMIT ").push_bind(limit);
    q
}

/// Every version and marker by key, newest first; `cursor` is the key and
/// row id of the last one listed, to continue after.
pub(crate) fn versions<DB>(
    columns: &str,
    bucket: &str,
    prefix: &str,
    start: &KeyStart,
    cursor: Option<(&str, i64)>,
    limit: i64,
) -> QueryBuilder<DB>
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(format!("SELECT {columns} FROM versions WHERE bucket = "));
    q.push_bind(bucket.to_owned()).push(" AND ");
    key_range(&mut q, prefix, start);
    if let Some((key, id)) = cursor {
        // Older versions of the same key, then later keys.
        q.push(" AND (key > ").push_bind(key.to_owned());
        q.push(" OR (key = ").push_bind(key.to_owned()).push(" AND id < ").push_bind(id).push("))");
    }
    q.push(" ORDER BY key, id DESC LIMIT ").push_bind(limit);
    q
}

/// Uploads in progress by key then creation, after the marker pair.
pub(crate) fn uploads<DB>(
    columns: &str,
    bucket: &str,
    prefix: &str,
    (key_marker, upload_id_marker): (Option<&str>, Option<&str>),
    limit: i64,
) -> QueryBuilder<DB>
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(format!("SELECT {columns} FROM uploads WHERE bucket = "));
    q.push_bind(bucket.to_owned()).push(" AND ");
    key_range(&mut q, prefix, &KeyStart::Beginning);
    match (key_marker, upload_id_marker) {
        // Uploads of a key list in creation order, so a page resumes after
        // the marker's (created, id); a marker since gone resumes at the key's
        // first upload (repeats, never skips).
        (Some(key), Some(upload_id)) => {
            let marker_created = |q: &mut QueryBuilder<DB>| {
                q.push("(SELECT created_ms FROM uploads WHERE bucket = ").push_bind(bucket.to_owned());
                q.push(" AND upload_id = ").push_bind(upload_id.to_owned()).push(")");
            };
            q.push(" AND (key > ").push_bind(key.to_owned());
            q.push(" OR (key = ").push_bind(key.to_owned()).push(" AND (created_ms > COALESCE(");
            marker_created(&mut q);
            q.push(", -1) OR (created_ms = ");
            marker_created(&mut q);
            q.push(" AND upload_id > ").push_bind(upload_id.to_owned()).push("))))");
        }
        (Some(key), None) => {
            q.push(" AND key > ").push_bind(key.to_owned());
        }
        _ => {}
    }
    q.push(" ORDER BY key, created_ms, upload_id LIMIT ").push_bind(limit);
    q
}

/// "key within `prefix`, starting at `start`" (`AfterVersion` is the
/// version listing's own cursor).
fn key_range<DB>(q: &mut QueryBuilder<DB>, prefix: &str, start: &KeyStart)
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
{
    q.push("key >= ").push_bind(prefix.to_owned());
    if let Some(upper) = prefix_upper_bound(prefix) {
        q.push(" AND key < ").push_bind(upper);
    }
    match start {
        KeyStart::Beginning | KeyStart::AfterVersion { .. } => {}
        KeyStart::After(key) => {
            q.push(" AND key > ").push_bind(key.clone());
        }
        KeyStart::From(key) => {
            q.push(" AND key >= ").push_bind(key.clone());
        }
    }
}
