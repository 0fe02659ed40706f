//! Listings: `ListObjectsV2`, `ListObjects` (v1) and `ListObjectVersions`.
//!
//! All three walk key order in the store and fold keys that contain the
//! delimiter into common prefixes, jumping past each folded prefix with one
//! query instead of reading every key beneath it.

use std::future::Future;

use s3s::dto::{
    CommonPrefix, DeleteMarkerEntry, ListObjectVersionsInput, ListObjectVersionsOutput, ListObjectsInput,
    ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output, Object, ObjectVersion,
};
use s3s::{S3Result, s3_error};
use tern_store::{KeyStart, NULL_VERSION, VersionSummary, prefix_upper_bound};

use crate::error::store_error;
use crate::region::Region;
use crate::wire::{encode_if, etag, owner, timestamp};

/// One row of a listing page.
enum Entry {
    Item(VersionSummary),
    Prefix(String),
}

struct Page {
    entries: Vec<Entry>,
    truncated: bool,
}

/// Where a listing resumes after an entry.
fn resume_after(entry: &Entry, versions: bool) -> KeyStart {
    match entry {
        Entry::Prefix(cp) => prefix_upper_bound(cp).map_or(KeyStart::After(cp.clone()), KeyStart::From),
        Entry::Item(row) if versions => {
            KeyStart::AfterVersion { key: row.key.clone(), version_id: row.version_id.clone() }
        }
        Entry::Item(row) => KeyStart::After(row.key.clone()),
    }
}

/// The common prefix `key` folds into, if any.
fn common_prefix(key: &str, prefix: &str, delimiter: Option<&str>) -> Option<String> {
    let delimiter = delimiter?;
    let rest = key.strip_prefix(prefix)?;
    rest.find(delimiter).map(|i| format!("{prefix}{}", &rest[..i + delimiter.len()]))
}

/// A marker given by a client: inside a common prefix, resume after that prefix.
fn start_at_marker(marker: &str, prefix: &str, delimiter: Option<&str>) -> KeyStart {
    match common_prefix(marker, prefix, delimiter) {
        Some(cp) => resume_after(&Entry::Prefix(cp), false),
        None => KeyStart::After(marker.to_owned()),
    }
}

/// Collects up to `max` entries from `start`, folding by `delimiter`.
async fn walk<F, Fut>(
    prefix: &str,
    delimiter: Option<&str>,
    mut start: KeyStart,
    max: usize,
    versions: bool,
    mut fetch: F,
) -> S3Result<Page>
where
    F: FnMut(KeyStart, usize) -> Fut,
    Fut: Future<Output = S3Result<Vec<VersionSummary>>>,
{
    let mut entries: Vec<Entry> = Vec::new();
    if max == 0 {
        // S3 answers MaxKeys=0 with nothing, not truncated, whatever the bucket holds.
        return Ok(Page { entries, truncated: false });
    }
    // One entry past `max` tells whether the listing is truncated.
    'fetch: while entries.len() <= max {
        let rows = fetch(start.clone(), (max + 1 - entries.len()).clamp(1, 1000)).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let entry = match common_prefix(&row.key, prefix, delimiter) {
                Some(cp) => Entry::Prefix(cp),
                None => Entry::Item(row),
            };
            start = resume_after(&entry, versions);
            let folded = matches!(entry, Entry::Prefix(_));
            entries.push(entry);
            if folded || entries.len() > max {
                continue 'fetch;
            }
        }
    }
    let truncated = entries.len() > max;
    entries.truncate(max);
    Ok(Page { entries, truncated })
}

fn max_keys(requested: Option<i32>) -> S3Result<usize> {
    match requested {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "maxKeys should be non-negative")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(1000).min(1000)),
    }
}

/// An empty `delimiter=` is no delimiter, and S3 does not echo it.
fn delimiter_of(requested: Option<String>) -> Option<String> {
    requested.filter(|d| !d.is_empty())
}

fn url_encoding(encoding_type: Option<&s3s::dto::EncodingType>) -> bool {
    encoding_type.is_some_and(|e| e.as_str() == "url")
}

/// Continuation tokens are the resume position, base64-encoded and opaque to clients.
fn encode_token(start: &KeyStart) -> String {
    let raw = match start {
        KeyStart::From(k) => format!("F{k}"),
        KeyStart::After(k) | KeyStart::AfterVersion { key: k, .. } => format!("A{k}"),
        KeyStart::Beginning => String::new(),
    };
    crate::body::base64_encode(raw.as_bytes())
}

fn decode_token(token: &str) -> S3Result<KeyStart> {
    let invalid = || s3_error!(InvalidArgument, "The continuation token provided is incorrect");
    let raw = crate::body::base64_decode(token).and_then(|b| String::from_utf8(b).ok()).ok_or_else(invalid)?;
    match raw.split_at_checked(1) {
        Some(("F", key)) => Ok(KeyStart::From(key.to_owned())),
        Some(("A", key)) => Ok(KeyStart::After(key.to_owned())),
        _ => Err(invalid()),
    }
}

fn split_entries(entries: Vec<Entry>, url: bool) -> (Vec<VersionSummary>, Vec<CommonPrefix>) {
    let mut items = Vec::new();
    let mut prefixes = Vec::new();
    for entry in entries {
        match entry {
            Entry::Item(row) => items.push(row),
            Entry::Prefix(p) => prefixes.push(CommonPrefix { prefix: Some(encode_if(url, p)) }),
        }
    }
    (items, prefixes)
}

impl Region {
    async fn list_current_page(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        start: KeyStart,
        max: usize,
    ) -> S3Result<Page> {
        walk(prefix, delimiter, start, max, false, |start, limit| async move {
            self.meta.list_current(bucket, prefix, &start, limit).await.map_err(store_error)
        })
        .await
    }

    pub(crate) async fn list_objects_v2(&self, input: ListObjectsV2Input) -> S3Result<ListObjectsV2Output> {
        self.bucket(&input.bucket).await?;
        let max = max_keys(input.max_keys)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let start = match (&input.continuation_token, &input.start_after) {
            (Some(token), _) => decode_token(token)?,
            (None, Some(after)) => KeyStart::After(after.clone()),
            (None, None) => KeyStart::Beginning,
        };
        let delimiter = delimiter_of(input.delimiter);
        let page = self.list_current_page(&input.bucket, &prefix, delimiter.as_deref(), start, max).await?;
        let next = page.truncated.then(|| page.entries.last().map(|e| encode_token(&resume_after(e, false)))).flatten();
        let url = url_encoding(input.encoding_type.as_ref());
        let fetch_owner = input.fetch_owner == Some(true);
        let key_count = page.entries.len();
        let (items, prefixes) = split_entries(page.entries, url);
        Ok(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encode_if(url, prefix)),
            delimiter: delimiter.map(|d| encode_if(url, d)),
            max_keys: input.max_keys.or(Some(1000)),
            key_count: Some(i32::try_from(key_count).unwrap_or(i32::MAX)),
            is_truncated: Some(page.truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            start_after: input.start_after.map(|s| encode_if(url, s)),
            contents: Some(items.into_iter().map(|r| self.object_entry(r, url, fetch_owner)).collect()),
            common_prefixes: Some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        })
    }

    pub(crate) async fn list_objects_v1(&self, input: ListObjectsInput) -> S3Result<ListObjectsOutput> {
        self.bucket(&input.bucket).await?;
        let max = max_keys(input.max_keys)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = delimiter_of(input.delimiter);
        let start =
            input.marker.as_deref().map_or(KeyStart::Beginning, |m| start_at_marker(m, &prefix, delimiter.as_deref()));
        let page = self.list_current_page(&input.bucket, &prefix, delimiter.as_deref(), start, max).await?;
        let url = url_encoding(input.encoding_type.as_ref());
        // S3 names a NextMarker only when a delimiter was given; without one
        // the last key is the marker.
        let next_marker = (page.truncated && delimiter.is_some())
            .then(|| {
                page.entries.last().map(|e| match e {
                    Entry::Item(row) => row.key.clone(),
                    Entry::Prefix(cp) => cp.clone(),
                })
            })
            .flatten();
        let (items, prefixes) = split_entries(page.entries, url);
        Ok(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(encode_if(url, prefix)),
            delimiter: delimiter.map(|d| encode_if(url, d)),
            marker: Some(input.marker.map(|m| encode_if(url, m)).unwrap_or_default()),
            next_marker: next_marker.map(|m| encode_if(url, m)),
            max_keys: input.max_keys.or(Some(1000)),
            is_truncated: Some(page.truncated),
            contents: Some(items.into_iter().map(|r| self.object_entry(r, url, true)).collect()),
            common_prefixes: Some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        })
    }

    pub(crate) async fn list_object_versions(
        &self,
        input: ListObjectVersionsInput,
    ) -> S3Result<ListObjectVersionsOutput> {
        self.bucket(&input.bucket).await?;
        let max = max_keys(input.max_keys)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = delimiter_of(input.delimiter);
        let start = match (&input.key_marker, &input.version_id_marker) {
            (Some(key), Some(version)) if !version.is_empty() => {
                KeyStart::AfterVersion { key: key.clone(), version_id: version.clone() }
            }
            (Some(key), _) => start_at_marker(key, &prefix, delimiter.as_deref()),
            (None, _) => KeyStart::Beginning,
        };
        let bucket = input.bucket.as_str();
        let page = walk(&prefix, delimiter.as_deref(), start, max, true, |start, limit| {
            let prefix = prefix.as_str();
            async move { self.meta.list_versions(bucket, prefix, &start, limit).await.map_err(store_error) }
        })
        .await?;
        let url = url_encoding(input.encoding_type.as_ref());
        let (next_key, next_version) = match page.entries.last().filter(|_| page.truncated) {
            Some(Entry::Item(row)) => (Some(row.key.clone()), Some(row.version_id.clone())),
            Some(Entry::Prefix(cp)) => (Some(cp.clone()), None),
            None => (None, None),
        };
        let (items, prefixes) = split_entries(page.entries, url);
        let (mut versions, mut markers) = (Vec::new(), Vec::new());
        for row in items {
            self.push_version_entry(row, url, &mut versions, &mut markers);
        }
        Ok(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(encode_if(url, prefix)),
            delimiter: delimiter.map(|d| encode_if(url, d)),
            key_marker: Some(input.key_marker.map(|m| encode_if(url, m)).unwrap_or_default()),
            version_id_marker: Some(input.version_id_marker.unwrap_or_default()),
            next_key_marker: next_key.map(|k| encode_if(url, k)),
            next_version_id_marker: next_version,
            max_keys: input.max_keys.or(Some(1000)),
            is_truncated: Some(page.truncated),
            versions: Some(versions),
            delete_markers: Some(markers),
            common_prefixes: Some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        })
    }

    /// A V1 listing always names the owner; V2 only with `fetch-owner=true`.
    fn object_entry(&self, row: VersionSummary, url: bool, with_owner: bool) -> Object {
        Object {
            checksum_algorithm: row.checksum_algorithm.map(|a| vec![a.into()]),
            e_tag: Some(etag(&row.etag)),
            key: Some(encode_if(url, row.key)),
            last_modified: Some(timestamp(row.modified_ms)),
            owner: with_owner.then(|| owner(&self.account_id)),
            size: Some(i64::try_from(row.size).unwrap_or(i64::MAX)),
            storage_class: Some(row.storage_class.unwrap_or_else(|| "STANDARD".into()).into()),
            ..Default::default()
        }
    }

    fn push_version_entry(
        &self,
        row: VersionSummary,
        url: bool,
        versions: &mut Vec<ObjectVersion>,
        markers: &mut Vec<DeleteMarkerEntry>,
    ) {
        let version_id = Some(if row.version_id == NULL_VERSION { "null".to_owned() } else { row.version_id.clone() });
        if row.is_delete_marker {
            markers.push(DeleteMarkerEntry {
                is_latest: Some(row.is_latest),
                key: Some(encode_if(url, row.key)),
                last_modified: Some(timestamp(row.modified_ms)),
                owner: Some(owner(&self.account_id)),
                version_id,
            });
        } else {
            versions.push(ObjectVersion {
                checksum_algorithm: row.checksum_algorithm.map(|a| vec![a.into()]),
                e_tag: Some(etag(&row.etag)),
                is_latest: Some(row.is_latest),
                key: Some(encode_if(url, row.key)),
                last_modified: Some(timestamp(row.modified_ms)),
                owner: Some(owner(&self.account_id)),
                size: Some(i64::try_from(row.size).unwrap_or(i64::MAX)),
                storage_class: Some(row.storage_class.unwrap_or_else(|| "STANDARD".into()).into()),
                version_id,
                ..Default::default()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str) -> VersionSummary {
        VersionSummary {
            key: key.into(),
            version_id: "null".into(),
            is_latest: true,
            is_delete_marker: false,
            modified_ms: 0,
            size: 0,
            etag: String::new(),
            storage_class: None,
            checksum_algorithm: None,
        }
    }

    /// An in-memory stand-in for the store's `list_current`, for the walk logic alone.
    async fn walk_keys(
        keys: &[&str],
        prefix: &str,
        delimiter: Option<&str>,
        start: KeyStart,
        max: usize,
    ) -> (Vec<String>, bool) {
        let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        keys.sort();
        let page = walk(prefix, delimiter, start, max, false, |start, limit| {
            let rows: Vec<VersionSummary> = keys
                .iter()
                .filter(|k| k.starts_with(prefix))
                .filter(|k| match &start {
                    KeyStart::After(a) => k.as_str() > a.as_str(),
                    KeyStart::From(f) => k.as_str() >= f.as_str(),
                    _ => true,
                })
                .take(limit)
                .map(|k| row(k))
                .collect();
            async move { Ok(rows) }
        })
        .await
        .unwrap();
        let names = page
            .entries
            .iter()
            .map(|e| match e {
                Entry::Item(r) => r.key.clone(),
                Entry::Prefix(p) => format!("[{p}]"),
            })
            .collect();
        (names, page.truncated)
    }

    #[tokio::test]
    async fn delimiter_folds_keys_into_prefixes() {
        let keys = ["a/1", "a/2", "a/b/3", "b", "c/1", "d"];
        let (names, truncated) = walk_keys(&keys, "", Some("/"), KeyStart::Beginning, 10).await;
        assert_eq!(names, ["[a/]", "b", "[c/]", "d"]);
        assert!(!truncated);
        let (names, _) = walk_keys(&keys, "a/", Some("/"), KeyStart::Beginning, 10).await;
        assert_eq!(names, ["a/1", "a/2", "[a/b/]"]);
    }

    #[tokio::test]
    async fn pages_resume_exactly_where_they_stopped() {
        let keys = ["a/1", "a/2", "b", "c/1", "d"];
        let (names, truncated) = walk_keys(&keys, "", Some("/"), KeyStart::Beginning, 2).await;
        assert_eq!((names.as_slice(), truncated), (["[a/]".to_owned(), "b".to_owned()].as_slice(), true));
        let resume = start_at_marker("b", "", Some("/"));
        let (names, truncated) = walk_keys(&keys, "", Some("/"), resume, 2).await;
        assert_eq!((names.as_slice(), truncated), (["[c/]".to_owned(), "d".to_owned()].as_slice(), false));
        let after_prefix = start_at_marker("a/", "", Some("/"));
        let (names, _) = walk_keys(&keys, "", Some("/"), after_prefix, 1).await;
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        for start in [KeyStart::After("k/ü".into()), KeyStart::From("x0".into())] {
            assert_eq!(decode_token(&encode_token(&start)).unwrap(), start);
        }
        assert!(decode_token("!!!").is_err());
        assert!(decode_token(&crate::body::base64_encode(b"Zkey")).is_err());
    }
}
