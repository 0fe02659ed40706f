//! The source of a copy (`CopyObject`, `UploadPartCopy`), in this region or
//! in another region of the deployment. A source elsewhere is read there:
//! that region authorizes the caller (identity and bucket policy, as for a
//! local read), checks the copy's conditions and decrypts with its own keys
//! and KMS as the caller; only plaintext of what the caller may read comes
//! back, and this region seals it as the copy's own, as for a local copy.

use s3s::dto::{CopySource, ETag, ETagCondition, StreamingBlob, Timestamp};
use s3s::{S3Result, s3_error};
use serde::{Deserialize, Serialize};
use tern_iam::policy::{Principal, RequestContext};
use tern_store::{ObjectAttrs, ObjectData, VersionRecord, Versioning};

use crate::customer_key::CustomerKey;
use crate::error::store_error;
use crate::object::ReadConditions;
use crate::read::stream_range;
use crate::region::Region;

/// What a copy asks of a source in another region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRead {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// Whether the caller's copy named a version (`s3:GetObjectVersion`, not
    /// `s3:GetObject`): the bytes of the version the first read described
    /// are read under the caller's original permission.
    pub named_version: bool,
    pub conditions: SourceConditions,
    /// The bytes `[start, end)`; `None` for the metadata alone.
    pub range: Option<(u64, u64)>,
    /// The `ETag` and write time the metadata read saw: the bytes are read
    /// only from that very object (a null version may have been replaced).
    pub expect: Option<(String, i64)>,
}

/// `x-amz-copy-source-if-*`: `*` or an `ETag` value; times in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceConditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since_ms: Option<i64>,
    pub if_unmodified_since_ms: Option<i64>,
}

/// A source version as its region describes it (no bytes, no keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMeta {
    pub version_id: String,
    pub modified_ms: i64,
    pub size: u64,
    pub etag: String,
    pub attrs: ObjectAttrs,
    pub tags: Vec<(String, String)>,
}

/// A copy's source and where its bytes come from.
pub(crate) struct Source {
    /// The source version (for a remote one, its metadata; no data).
    pub record: VersionRecord,
    /// The region holding it, when not this one.
    pub remote: Option<String>,
    /// Whether the copy named the source's version.
    pub named_version: bool,
}

fn condition(value: Option<&String>) -> Option<ETagCondition> {
    value.map(|v| if v == "*" { ETagCondition::Any } else { ETagCondition::ETag(ETag::Strong(v.clone())) })
}

fn time_of(ms: Option<i64>) -> Option<Timestamp> {
    ms.and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()).map(Into::into)
}

fn ms_of(ts: Option<&Timestamp>) -> Option<i64> {
    ts.map(|t| time::OffsetDateTime::from(t.clone()))
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
}

fn etag_text(c: Option<&ETagCondition>) -> Option<String> {
    c.map(|c| match c {
        ETagCondition::Any => "*".to_owned(),
        ETagCondition::ETag(tag) => tag.value().to_owned(),
    })
}

impl SourceConditions {
    pub(crate) fn of(c: &ReadConditions<'_>) -> Self {
        Self {
            if_match: etag_text(c.matches),
            if_none_match: etag_text(c.none_match),
            if_modified_since_ms: ms_of(c.modified_since),
            if_unmodified_since_ms: ms_of(c.unmodified_since),
        }
    }
}

impl Region {
    /// The source a copy names, here or in another region (read there as `who`).
    pub(crate) async fn copy_source_of(
        &self,
        source: &CopySource,
        conditions: ReadConditions<'_>,
        who: &Principal,
    ) -> S3Result<Source> {
        let CopySource::Bucket { bucket, key, version_id } = source else {
            return Err(s3_error!(NotImplemented, "Copying from an access point is not supported"));
        };
        let here = self.meta.get_bucket(bucket).await.map_err(store_error)?.is_some();
        let elsewhere = if here {
            None
        } else {
            let found = self.registry.lookup(bucket).await.map_err(|e| crate::error::registry_error(&e))?;
            found.filter(|r| *r != self.name)
        };
        if elsewhere.is_some() && who.is_anonymous() {
            return Err(s3_error!(AccessDenied, "Anonymous copies from another region are not supported."));
        }
        let named_version = version_id.is_some();
        let Some(region) = elsewhere else {
            return Ok(Source { record: self.copy_source(source, conditions).await?, remote: None, named_version });
        };
        let read = SourceRead {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: version_id.as_deref().map(str::to_owned),
            named_version,
            conditions: SourceConditions::of(&conditions),
            range: None,
            expect: None,
        };
        let (meta, _) = self.peers.read_source(&region, who, &read).await?;
        let record = VersionRecord {
            bucket: read.bucket,
            key: read.key,
            version_id: meta.version_id,
            is_latest: true,
            is_delete_marker: false,
            modified_ms: meta.modified_ms,
            size: meta.size,
            etag: meta.etag,
            attrs: meta.attrs,
            tags: meta.tags,
            tags_stamp: meta.modified_ms,
            data: ObjectData::Inline(bytes::Bytes::new()),
            bucket_versioning: Versioning::Enabled,
        };
        Ok(Source { record, remote: Some(region), named_version })
    }

    /// The plaintext of `range` of a copy's source, opened with the source's
    /// customer key here, or read from its region (the version it described).
    pub(crate) async fn copy_source_bytes(
        &self,
        source: &Source,
        customer: Option<&CustomerKey>,
        range: std::ops::Range<u64>,
        who: &Principal,
    ) -> S3Result<StreamingBlob> {
        let record = &source.record;
        let Some(region) = &source.remote else {
            let keys = self.read_keys(record, customer, who).await?;
            return Ok(stream_range(self, keys, &record.data, record.size, range));
        };
        let read = SourceRead {
            bucket: record.bucket.clone(),
            key: record.key.clone(),
            version_id: Some(record.version_id.clone()),
            named_version: source.named_version,
            conditions: SourceConditions::default(),
            range: Some((range.start, range.end)),
            expect: Some((record.etag.clone(), record.modified_ms)),
        };
        let (_, body) = self.peers.read_source(region, who, &read).await?;
        body.ok_or_else(|| crate::error::internal("the source region sent no bytes"))
    }

    /// At the source's region: `read` for `who`, authorized and decided here
    /// as a local read would be. SSE-C sources stay in their region (their
    /// key would have to cross the network).
    pub async fn serve_copy_source(
        &self,
        who: &Principal,
        read: SourceRead,
    ) -> S3Result<(SourceMeta, Option<StreamingBlob>)> {
        let action = crate::access::iam_action("GetObject", read.named_version).expect("GetObject is served");
        let resource = crate::access::resource_arn(Some(&read.bucket), Some(&read.key));
        let mut context = RequestContext::of(who);
        if let Some(id) = read.version_id.as_ref().filter(|_| read.named_version) {
            context.set("s3:VersionId", id.clone());
        }
        self.authorize_in(who, action, &resource, &context).await?;
        let (matches, none_match) =
            (condition(read.conditions.if_match.as_ref()), condition(read.conditions.if_none_match.as_ref()));
        let (since, until) =
            (time_of(read.conditions.if_modified_since_ms), time_of(read.conditions.if_unmodified_since_ms));
        let conditions = ReadConditions {
            matches: matches.as_ref(),
            none_match: none_match.as_ref(),
            modified_since: since.as_ref(),
            unmodified_since: until.as_ref(),
        };
        let source = CopySource::Bucket {
            bucket: read.bucket.clone().into(),
            key: read.key.clone().into(),
            version_id: read.version_id.clone().map(Into::into),
        };
        let record = self.copy_source(&source, conditions).await?;
        if read.expect.as_ref().is_some_and(|(etag, at)| *etag != record.etag || *at != record.modified_ms) {
            return Err(s3_error!(PreconditionFailed, "The copy's source changed while it was copied."));
        }
        if record.attrs.customer_key_fingerprint.is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "Copies of SSE-C objects from another region are not supported: the key would cross between regions."
            ));
        }
        let body = match read.range {
            Some((start, end)) if start <= end && end <= record.size => {
                let keys = self.read_keys(&record, None, who).await?;
                Some(stream_range(self, keys, &record.data, record.size, start..end))
            }
            Some(_) => return Err(s3_error!(InvalidRange, "The requested range is not satisfiable")),
            None => None,
        };
        let meta = SourceMeta {
            version_id: record.version_id,
            modified_ms: record.modified_ms,
            size: record.size,
            etag: record.etag,
            attrs: record.attrs,
            tags: record.tags,
        };
        Ok((meta, body))
    }
}
