//! Objects: put, get, head, delete (single and batch), copy.

use s3s::dto::{
    CopyObjectInput, CopyObjectOutput, CopyObjectResult, CopySource, DeleteObjectInput, DeleteObjectOutput,
    DeleteObjectsInput, DeleteObjectsOutput, DeletedObject, ETagCondition, GetObjectInput, GetObjectOutput,
    HeadObjectInput, HeadObjectOutput, PutObjectInput, PutObjectOutput, Range, Timestamp,
};
use s3s::{S3Error, S3Request, S3Result, s3_error};
use tern_core::names::is_valid_object_key;
use tern_store::{BucketRecord, NULL_VERSION, NewVersion, ObjectAttrs, Precondition, VersionRecord, Versioning};

use crate::body::{Declared, Ingested, ingest};
use tern_iam::policy::{Principal, Request, RequestContext};

use crate::customer_key::{copy_source_customer_key, customer_key};
use crate::encryption::{fill_sse, requested_encryption};
use crate::error::{store_error, with_headers, with_status};
use crate::read::stream_range;
use crate::region::Region;
use crate::wire::{
    attrs_from_input, checksum_type, etag, fill_checksum, fill_object_headers, new_version_id, now_ms,
    parse_tagging_header, timestamp,
};

pub(crate) fn check_key(key: &str) -> S3Result<()> {
    if is_valid_object_key(key) {
        Ok(())
    } else {
        Err(s3_error!(
            InvalidArgument,
            "Object key is not valid: it must be 1 to 1024 bytes of UTF-8 without control characters"
        ))
    }
}

/// The version id a new write gets in a bucket with this versioning state.
pub(crate) fn version_id_for(bucket: &BucketRecord) -> String {
    match bucket.versioning {
        Versioning::Enabled => new_version_id(),
        Versioning::Unversioned | Versioning::Suspended => NULL_VERSION.to_owned(),
    }
}

/// The `x-amz-version-id` a response carries for a write in this bucket.
pub(crate) fn reported_version(bucket: &BucketRecord, version_id: &str) -> Option<String> {
    (bucket.versioning != Versioning::Unversioned).then(|| version_id.to_owned())
}

pub(crate) fn write_precondition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Option<Precondition>> {
    match (if_match, if_none_match) {
        (Some(ETagCondition::ETag(tag)), _) => Ok(Some(Precondition::Match(tag.value().to_owned()))),
        (_, Some(ETagCondition::Any)) => Ok(Some(Precondition::NoneMatchAny)),
        (None, None) => Ok(None),
        _ => Err(s3_error!(NotImplemented, "A header you provided implies functionality that is not implemented")),
    }
}

/// A delete marker for `key`, now.
pub(crate) fn delete_marker(bucket: &BucketRecord, key: &str) -> NewVersion {
    let modified_ms = now_ms();
    NewVersion {
        bucket: bucket.name.clone(),
        key: key.to_owned(),
        version_id: version_id_for(bucket),
        is_delete_marker: true,
        modified_ms,
        size: 0,
        etag: String::new(),
        attrs: ObjectAttrs::default(),
        tags: vec![],
        tags_stamp: modified_ms,
        data: tern_store::ObjectData::Inline(bytes::Bytes::new()),
        replication: Vec::new(),
    }
}

/// A new version of `key` holding an ingested body, with the `ETag` S3 gives
/// a single-part object: the hex MD5 of its bytes.
fn new_object_version(
    bucket: &BucketRecord,
    key: String,
    ingested: Ingested,
    attrs: ObjectAttrs,
    tags: Vec<(String, String)>,
) -> NewVersion {
    let modified_ms = now_ms();
    NewVersion {
        bucket: bucket.name.clone(),
        key,
        version_id: version_id_for(bucket),
        is_delete_marker: false,
        modified_ms,
        size: ingested.size,
        etag: hex::encode(ingested.md5),
        attrs,
        tags,
        tags_stamp: modified_ms,
        data: ingested.data,
        replication: Vec::new(),
    }
}

impl Region {
    pub(crate) async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
        who: &Principal,
    ) -> S3Result<PutObjectOutput> {
        let input = req.input;
        check_key(&input.key)?;
        let bucket = self.bucket(&input.bucket).await?;
        let mut attrs = attrs_from_input!(input)?;
        let tags = input.tagging.as_deref().map(parse_tagging_header).transpose()?.unwrap_or_default();
        let precondition = write_precondition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
        let requested = requested_encryption!(input)?;
        let customer = requested.customer.clone();
        let plan = self.plan_encryption(&bucket.name, requested).await?;
        let key = self.data_key_for(&plan, &bucket.name, &input.key, &mut attrs, who).await?;
        let declared = Declared::from_headers(&req.headers, input.content_length, input.content_md5.clone());
        let ingested = ingest(self, input.body, &declared, req.trailing_headers.as_ref(), true, &key).await?;
        attrs.checksum.clone_from(&ingested.checksum);

        let mut version = new_object_version(&bucket, input.key, ingested, attrs, tags);
        let version_id = version.version_id.clone();
        self.commit(&mut version, precondition.as_ref()).await?;
        let mut out = PutObjectOutput {
            e_tag: Some(etag(&version.etag)),
            ssekms_encryption_context: version.attrs.kms_context.clone(),
            version_id: reported_version(&bucket, &version_id),
            ..Default::default()
        };
        fill_sse!(out, version.attrs, customer.as_ref());
        fill_checksum!(out, version.attrs.checksum.as_ref());
        out.checksum_type = checksum_type(version.attrs.checksum.as_ref());
        Ok(out)
    }

    /// Commits a new version with its replication tasks (one transaction);
    /// on failure its freshly written blobs are released.
    pub(crate) async fn commit(&self, version: &mut NewVersion, precondition: Option<&Precondition>) -> S3Result<()> {
        if let Err(e) = self.plan_replication(version).await {
            self.release_blobs(&version.data.blob_ids().map(str::to_owned).collect::<Vec<_>>()).await;
            return Err(e);
        }
        match self.meta.put_version(version, precondition).await {
            Ok(displaced) => {
                if !version.replication.is_empty() {
                    self.replication_wake.notify_one();
                }
                self.release_blobs(&displaced.blobs).await;
                Ok(())
            }
            Err(e) => {
                if !e.may_have_committed() {
                    self.release_blobs(&version.data.blob_ids().map(str::to_owned).collect::<Vec<_>>()).await;
                }
                Err(store_error(e))
            }
        }
    }

    /// The version a read addresses, with AWS's errors for delete markers.
    pub(crate) async fn readable_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<VersionRecord> {
        check_key(key)?;
        // A version found proves its bucket is here (versions go first);
        // only a miss asks which of bucket and key is missing.
        let found = self.meta.get_version(bucket, key, version_id).await.map_err(store_error)?;
        let Some(record) = found else {
            self.bucket(bucket).await?;
            return Err(match version_id {
                Some(_) => s3_error!(NoSuchVersion, "The specified version does not exist."),
                None => s3_error!(NoSuchKey, "The specified key does not exist."),
            });
        };
        if record.is_delete_marker {
            let marker_headers = [("x-amz-delete-marker", "true"), ("x-amz-version-id", record.version_id.as_str())];
            return Err(if version_id.is_some() {
                with_headers(
                    s3_error!(MethodNotAllowed, "The specified method is not allowed against this resource."),
                    &marker_headers,
                )
            } else {
                with_headers(s3_error!(NoSuchKey, "The specified key does not exist."), &marker_headers)
            });
        }
        Ok(record)
    }

    /// What a GET or HEAD reads: the version (conditions checked) and the byte range.
    async fn prepare_read(
        &self,
        target: (&str, &str, Option<&str>),
        conditions: ReadConditions<'_>,
        range: Option<&Range>,
        part_number: Option<i32>,
    ) -> S3Result<(VersionRecord, std::ops::Range<u64>, Option<String>)> {
        let (bucket, key, version_id) = target;
        let record = self.readable_version(bucket, key, version_id).await?;
        conditions.check(&record)?;
        let (range, content_range) = select_range(&record, range, part_number)?;
        Ok((record, range, content_range))
    }

    pub(crate) async fn get_object(&self, input: GetObjectInput, who: &Principal) -> S3Result<GetObjectOutput> {
        let customer = customer_key!(input)?;
        let target = (input.bucket.as_str(), input.key.as_str(), input.version_id.as_deref());
        let (record, range, content_range) =
            self.prepare_read(target, read_conditions!(input), input.range.as_ref(), input.part_number).await?;
        let keys = self.read_keys(&record, customer.as_ref(), who).await?;
        let with_checksum = checksum_asked(input.checksum_mode.as_ref());
        let mut out = GetObjectOutput {
            content_length: Some(i64::try_from(range.end - range.start).unwrap_or(i64::MAX)),
            content_range,
            tag_count: (!record.tags.is_empty()).then(|| i32::try_from(record.tags.len()).unwrap_or(i32::MAX)),
            body: Some(stream_range(self, keys, &record.data, record.size, range.clone())),
            ..Default::default()
        };
        fill_object_headers!(out, record, customer.as_ref());
        if with_checksum && range.end - range.start == record.size {
            fill_checksum!(out, record.attrs.checksum.as_ref());
            out.checksum_type = checksum_type(record.attrs.checksum.as_ref());
        }
        Ok(out)
    }

    /// HEAD, and the object's tag count (s3s's output has no place for the
    /// `x-amz-tagging-count` S3 now sends on HEAD too).
    pub(crate) async fn head_object(&self, input: HeadObjectInput) -> S3Result<(HeadObjectOutput, usize)> {
        let customer = customer_key!(input)?;
        let target = (input.bucket.as_str(), input.key.as_str(), input.version_id.as_deref());
        let (record, range, content_range) =
            self.prepare_read(target, read_conditions!(input), input.range.as_ref(), input.part_number).await?;
        self.check_customer(&record.attrs, &record.data, customer.as_ref()).await?;
        let mut out = HeadObjectOutput {
            content_length: Some(i64::try_from(range.end - range.start).unwrap_or(i64::MAX)),
            content_range,
            ..Default::default()
        };
        fill_object_headers!(out, record, customer.as_ref());
        if checksum_asked(input.checksum_mode.as_ref()) {
            fill_checksum!(out, record.attrs.checksum.as_ref());
            out.checksum_type = checksum_type(record.attrs.checksum.as_ref());
        }
        Ok((out, record.tags.len()))
    }

    pub(crate) async fn delete_object(&self, input: &DeleteObjectInput) -> S3Result<DeleteObjectOutput> {
        check_key(&input.key)?;
        let bucket = self.bucket(&input.bucket).await?;
        let deleted = self.delete_key(&bucket, &input.key, input.version_id.as_deref()).await?;
        Ok(DeleteObjectOutput {
            delete_marker: deleted.delete_marker,
            version_id: deleted.version_id,
            ..Default::default()
        })
    }

    /// DELETE semantics of S3: with a version id, remove that version for
    /// good; without, remove the null version (unversioned) or add a marker.
    async fn delete_key(&self, bucket: &BucketRecord, key: &str, version_id: Option<&str>) -> S3Result<DeletedObject> {
        if let Some(version_id) = version_id {
            let (removed, displaced) =
                self.meta.delete_version(&bucket.name, key, version_id, None).await.map_err(store_error)?;
            self.release_blobs(&displaced.blobs).await;
            return Ok(DeletedObject {
                key: Some(key.to_owned()),
                version_id: Some(version_id.to_owned()),
                delete_marker: removed.filter(|r| r.is_delete_marker).map(|_| true),
                ..Default::default()
            });
        }
        if bucket.versioning == Versioning::Unversioned {
            let (_, displaced) =
                self.meta.delete_version(&bucket.name, key, NULL_VERSION, None).await.map_err(store_error)?;
            self.release_blobs(&displaced.blobs).await;
            return Ok(DeletedObject { key: Some(key.to_owned()), ..Default::default() });
        }
        let mut marker = delete_marker(bucket, key);
        let marker_id = marker.version_id.clone();
        self.commit(&mut marker, None).await?;
        Ok(DeletedObject {
            key: Some(key.to_owned()),
            delete_marker: Some(true),
            delete_marker_version_id: Some(marker_id.clone()),
            version_id: Some(marker_id),
        })
    }

    /// Deletes each listed object that `who` may delete: as AWS does, every
    /// key is authorized on its own (`s3:DeleteObject`, or
    /// `s3:DeleteObjectVersion` for a version), and refused keys are
    /// reported as `AccessDenied` errors while the others go.
    pub(crate) async fn delete_objects(
        &self,
        input: DeleteObjectsInput,
        who: &Principal,
    ) -> S3Result<DeleteObjectsOutput> {
        let bucket = self.bucket(&input.bucket).await?;
        if input.delete.objects.len() > 1000 {
            return Err(crate::error::malformed_xml());
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let allowed = self.deletable(&bucket.name, &input.delete.objects, who).await;
        let (mut deleted, mut errors) = (Vec::new(), Vec::new());
        for (object, allowed) in input.delete.objects.into_iter().zip(allowed) {
            let result = match check_key(&object.key) {
                Ok(()) if allowed => self.delete_key(&bucket, &object.key, object.version_id.as_deref()).await,
                Ok(()) => Err(s3_error!(AccessDenied, "Access Denied")),
                Err(e) => Err(e),
            };
            match result {
                Ok(d) if !quiet => deleted.push(DeletedObject {
                    delete_marker_version_id: d.delete_marker_version_id.filter(|_| object.version_id.is_none()),
                    ..d
                }),
                Ok(_) => {}
                Err(e) => errors.push(s3s::dto::Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(object.key),
                    message: e.message().map(str::to_owned),
                    version_id: object.version_id,
                }),
            }
        }
        Ok(DeleteObjectsOutput { deleted: Some(deleted), errors: Some(errors), ..Default::default() })
    }

    /// Copying a source's tags along reads and writes tags: AWS asks for
    /// `s3:GetObject(Version)Tagging` on the source and `s3:PutObjectTagging`
    /// on the copy, when there are tags to copy.
    /// `versioned` when the copy named the source's version.
    async fn authorize_tag_copy(
        &self,
        copied: &crate::copy_source::Source,
        versioned: bool,
        (bucket, key): (&str, &str),
        who: &Principal,
    ) -> S3Result<()> {
        let source = &copied.record;
        if source.tags.is_empty() {
            return Ok(());
        }
        let read = crate::access::iam_action("GetObjectTagging", versioned).expect("GetObjectTagging is served");
        let resource = crate::access::resource_arn(Some(&source.bucket), Some(&source.key));
        match &copied.remote {
            // The source's region decides, with its bucket's policy.
            Some(region) => self
                .peers
                .s3_check(region, who, read, &resource)
                .await
                .map_err(|refusal| s3_error!(AccessDenied, "{refusal}"))?,
            None => self.authorize(who, read, &resource).await?,
        }
        self.authorize(who, "s3:PutObjectTagging", &crate::access::resource_arn(Some(bucket), Some(key))).await
    }

    /// Which of `objects` `who` may delete, each as AWS decides it:
    /// `s3:DeleteObject`, or `s3:DeleteObjectVersion` for a version. A
    /// follower catches up with IAM at most once for the whole list.
    async fn deletable(&self, bucket: &str, objects: &[s3s::dto::ObjectIdentifier], who: &Principal) -> Vec<bool> {
        let Ok(policy) = self.bucket_policy(bucket).await else { return vec![false; objects.len()] };
        let decide = || {
            objects
                .iter()
                .map(|object| {
                    let action = crate::access::iam_action("DeleteObject", object.version_id.is_some())
                        .expect("DeleteObject is served");
                    let resource = crate::access::resource_arn(Some(bucket), Some(&object.key));
                    let mut context = RequestContext::of(who);
                    if let Some(id) = &object.version_id {
                        context.set("s3:VersionId", id.clone());
                    }
                    let request = Request { principal: who, action, resource: &resource, context: &context };
                    self.iam.authorize_with(&request, policy.as_deref()).is_ok()
                })
                .collect::<Vec<bool>>()
        };
        let first = decide();
        if first.iter().all(|allowed| *allowed) || who.is_anonymous() || !self.iam.catch_up().await {
            return first;
        }
        decide()
    }

    pub(crate) async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
        who: &Principal,
    ) -> S3Result<CopyObjectOutput> {
        let input = req.input;
        check_key(&input.key)?;
        let source_customer = copy_source_customer_key!(input)?;
        let copied = self.copy_source_of(&input.copy_source, copy_source_conditions!(input), who).await?;
        let source = &copied.record;
        if copied.remote.is_none() {
            // A local source's key is checked before anything is written.
            self.read_keys(source, source_customer.as_ref(), who).await?;
        }
        let target = self.bucket(&input.bucket).await?;
        let requested = requested_encryption!(input)?;
        let customer = requested.customer.clone();

        let replace_metadata = input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == "REPLACE");
        let mut attrs = if replace_metadata { attrs_from_input!(input)? } else { source.attrs.clone() };
        (attrs.parts_count, attrs.upload_id) = (None, None);
        if !replace_metadata {
            attrs.storage_class = crate::wire::storage_class(input.storage_class.as_ref())?.or(attrs.storage_class);
        }
        let latest_source = matches!(input.copy_source, CopySource::Bucket { version_id: None, .. });
        let same_object = source.bucket == input.bucket && source.key == input.key && latest_source;
        if same_object && !replace_metadata && attrs == source.attrs && requested.is_empty() {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let replace_tags = input.tagging_directive.as_ref().is_some_and(|d| d.as_str() == "REPLACE");
        let tags = if replace_tags {
            input.tagging.as_deref().map(parse_tagging_header).transpose()?.unwrap_or_default()
        } else {
            self.authorize_tag_copy(&copied, !latest_source, (&input.bucket, &input.key), who).await?;
            source.tags.clone()
        };

        let plan = self.plan_encryption(&target.name, requested).await?;
        let key = self.data_key_for(&plan, &target.name, &input.key, &mut attrs, who).await?;
        let body = self.copy_source_bytes(&copied, source_customer.as_ref(), 0..source.size, who).await?;
        let declared = Declared { content_length: Some(source.size), ..Declared::default() };
        let ingested = ingest(self, Some(body), &declared, None, true, &key).await?;
        attrs.checksum = source.attrs.checksum.clone().filter(|_| source.attrs.parts_count.is_none());
        let mut version = new_object_version(&target, input.key, ingested, attrs, tags);
        let version_id = version.version_id.clone();
        self.commit(&mut version, None).await?;
        let mut result = CopyObjectResult {
            e_tag: Some(etag(&version.etag)),
            last_modified: Some(timestamp(version.modified_ms)),
            ..Default::default()
        };
        fill_checksum!(result, version.attrs.checksum.as_ref());
        let mut out = CopyObjectOutput {
            ssekms_encryption_context: version.attrs.kms_context.clone(),
            copy_object_result: Some(result),
            copy_source_version_id: (source.version_id != NULL_VERSION).then(|| source.version_id.clone()),
            version_id: reported_version(&target, &version_id),
            ..Default::default()
        };
        fill_sse!(out, version.attrs, customer.as_ref());
        Ok(out)
    }
}

impl Region {
    /// The version a copy reads, with the `x-amz-copy-source-if-*` conditions
    /// (which answer 412 where a plain GET would answer 304).
    pub(crate) async fn copy_source(
        &self,
        source: &CopySource,
        conditions: ReadConditions<'_>,
    ) -> S3Result<VersionRecord> {
        let CopySource::Bucket { bucket, key, version_id } = source else {
            return Err(s3_error!(NotImplemented, "Copying from an access point is not supported"));
        };
        let record = self.readable_version(bucket, key, version_id.as_deref()).await?;
        conditions
            .check(&record)
            .map_err(|e| if *e.code() == s3s::S3ErrorCode::NotModified { s3_error!(PreconditionFailed) } else { e })?;
        Ok(record)
    }
}

/// `ReadConditions` from an input's `If-*` headers.
macro_rules! read_conditions {
    ($input:expr) => {
        $crate::object::ReadConditions {
            matches: $input.if_match.as_ref(),
            none_match: $input.if_none_match.as_ref(),
            modified_since: $input.if_modified_since.as_ref(),
            unmodified_since: $input.if_unmodified_since.as_ref(),
        }
    };
}
pub(crate) use read_conditions;

/// `ReadConditions` from an input's `x-amz-copy-source-if-*` headers.
macro_rules! copy_source_conditions {
    ($input:expr) => {
        $crate::object::ReadConditions {
            matches: $input.copy_source_if_match.as_ref(),
            none_match: $input.copy_source_if_none_match.as_ref(),
            modified_since: $input.copy_source_if_modified_since.as_ref(),
            unmodified_since: $input.copy_source_if_unmodified_since.as_ref(),
        }
    };
}
pub(crate) use copy_source_conditions;

/// The HTTP conditional headers of a read, evaluated as S3 does (RFC 7232
/// precedence: If-Match beats If-Unmodified-Since; If-None-Match beats
/// If-Modified-Since).
pub(crate) struct ReadConditions<'a> {
    pub matches: Option<&'a ETagCondition>,
    pub none_match: Option<&'a ETagCondition>,
    pub modified_since: Option<&'a Timestamp>,
    pub unmodified_since: Option<&'a Timestamp>,
}

fn etag_matches(condition: &ETagCondition, record: &VersionRecord) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == record.etag,
    }
}

/// Seconds since the epoch: HTTP dates have one-second resolution.
fn seconds(ts: &Timestamp) -> i64 {
    time::OffsetDateTime::from(ts.clone()).unix_timestamp()
}

impl ReadConditions<'_> {
    pub(crate) fn check(&self, record: &VersionRecord) -> S3Result<()> {
        let modified = record.modified_ms.div_euclid(1000);
        let failed = || s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold");
        match self.matches {
            Some(c) if !etag_matches(c, record) => return Err(failed()),
            None if self.unmodified_since.is_some_and(|t| modified > seconds(t)) => {
                return Err(failed());
            }
            _ => {}
        }
        let not_modified = || with_headers(s3_error!(NotModified), &[("etag", &format!("\"{}\"", record.etag))]);
        match self.none_match {
            Some(c) if etag_matches(c, record) => Err(not_modified()),
            None if self.modified_since.is_some_and(|t| modified <= seconds(t)) => Err(not_modified()),
            _ => Ok(()),
        }
    }
}

/// The byte range a read returns and its `Content-Range`; a `Content-Range`
/// (hence a 206) only when the client asked for a range or a part.
/// S3 returns an object's checksum on GET and HEAD only to `x-amz-checksum-mode: ENABLED`.
fn checksum_asked(mode: Option<&s3s::dto::ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str() == s3s::dto::ChecksumMode::ENABLED)
}

fn select_range(
    record: &VersionRecord,
    range: Option<&Range>,
    part_number: Option<i32>,
) -> S3Result<(std::ops::Range<u64>, Option<String>)> {
    let size = record.size;
    let selected = match (range, part_number) {
        (Some(_), Some(_)) => {
            return Err(s3_error!(InvalidRequest, "Cannot specify both Range header and partNumber query parameter"));
        }
        (Some(range), None) => range.check(size).map_err(|_| invalid_range(size))?,
        (None, Some(n)) => part_range(record, n)?,
        (None, None) => return Ok((0..size, None)),
    };
    let content_range = format!("bytes {}-{}/{size}", selected.start, selected.end.saturating_sub(1));
    Ok((selected, Some(content_range)))
}

fn part_range(record: &VersionRecord, part_number: i32) -> S3Result<std::ops::Range<u64>> {
    let index = usize::try_from(part_number).ok().filter(|n| *n >= 1).map(|n| n - 1);
    let sizes: Vec<u64> = match (&record.data, record.attrs.parts_count) {
        (tern_store::ObjectData::Blobs(parts), Some(_)) => parts.iter().map(|p| p.size).collect(),
        _ => vec![record.size],
    };
    let index = index.filter(|i| *i < sizes.len()).ok_or_else(invalid_part_number)?;
    let start: u64 = sizes[..index].iter().sum();
    Ok(start..start + sizes[index])
}

fn invalid_part_number() -> S3Error {
    let err = S3Error::with_message(
        s3s::S3ErrorCode::Custom("InvalidPartNumber".into()),
        "The requested partnumber is not satisfiable",
    );
    with_status(err, http::StatusCode::RANGE_NOT_SATISFIABLE)
}

fn invalid_range(size: u64) -> S3Error {
    with_headers(
        s3_error!(InvalidRange, "The requested range is not satisfiable"),
        &[("content-range", &format!("bytes */{size}"))],
    )
}
