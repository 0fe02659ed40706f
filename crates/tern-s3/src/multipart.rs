//! Multipart uploads. Parts are stored as blobs and the completed object is
//! the list of its part blobs, so completing a 5 GiB upload copies nothing.

use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::{
    AbortMultipartUploadInput, CompleteMultipartUploadInput, CompleteMultipartUploadOutput, CompletedPart,
    CopyPartResult, CreateMultipartUploadInput, CreateMultipartUploadOutput, Initiator, ListMultipartUploadsInput,
    ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput, MultipartUpload, Part, UploadPartCopyInput,
    UploadPartCopyOutput, UploadPartInput, UploadPartOutput,
};
use s3s::{S3Request, S3Result, s3_error};
use tern_store::{
    BlobPart, BucketRecord, NewVersion, ObjectAttrs, ObjectData, PartRecord, StoredChecksum, UploadRecord,
};

use crate::body::{Declared, Ingested, base64_encode, ingest};
use crate::upload_checksum;
use tern_iam::policy::Principal;

use crate::customer_key::{copy_source_customer_key, customer_key};
use crate::encryption::{fill_sse, requested_encryption};
use crate::error::store_error;
use crate::object::{check_key, copy_source_conditions, reported_version, version_id_for, write_precondition};
use crate::region::Region;
use crate::wire::{
    attrs_from_input, checksum_type, etag, fill_checksum, now_ms, owner, parse_tagging_header, timestamp,
};

/// Every part but the last must be at least this large (AWS's rule).
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PART_NUMBER: i32 = 10_000;

fn part_number(n: i32) -> S3Result<u32> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(n.unsigned_abs())
    } else {
        Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"))
    }
}

fn new_upload_id() -> String {
    let raw: [u8; 24] = rand::random();
    base64_encode(&raw).replace('+', "-").replace('/', "_")
}

impl Region {
    pub(crate) async fn create_multipart_upload(
        &self,
        input: CreateMultipartUploadInput,
        who: &Principal,
    ) -> S3Result<CreateMultipartUploadOutput> {
        check_key(&input.key)?;
        let bucket = self.bucket(&input.bucket).await?;
        let mut attrs = attrs_from_input!(input)?;
        attrs.checksum = upload_checksum::declared(input.checksum_algorithm.as_ref(), input.checksum_type.as_ref())?;
        let requested = requested_encryption!(input)?;
        let customer = requested.customer.clone();
        let plan = self.plan_encryption(&bucket.name, requested).await?;
        // SSE-KMS keeps this key for every part; the other kinds seal each part under a fresh one.
        self.data_key_for(&plan, &bucket.name, &input.key, &mut attrs, who).await?;
        let upload = UploadRecord {
            upload_id: new_upload_id(),
            bucket: bucket.name.clone(),
            key: input.key.clone(),
            created_ms: now_ms(),
            attrs,
            tags: input.tagging.as_deref().map(parse_tagging_header).transpose()?.unwrap_or_default(),
        };
        self.meta.create_upload(&upload).await.map_err(store_error)?;
        let mut out = CreateMultipartUploadOutput {
            ssekms_encryption_context: upload.attrs.kms_context.clone(),
            bucket: Some(bucket.name),
            key: Some(input.key),
            upload_id: Some(upload.upload_id),
            checksum_algorithm: input.checksum_algorithm,
            checksum_type: checksum_type(upload.attrs.checksum.as_ref()),
            ..Default::default()
        };
        fill_sse!(out, upload.attrs, customer.as_ref());
        Ok(out)
    }

    async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> S3Result<UploadRecord> {
        self.bucket(bucket).await?;
        let upload = self.meta.get_upload(bucket, upload_id).await.map_err(store_error)?;
        upload.filter(|u| u.key == key).ok_or_else(|| store_error(tern_store::StoreError::NoSuchUpload))
    }

    /// Records an ingested part; if the upload vanished meanwhile, its blob goes too.
    async fn record_part(&self, upload_id: &str, number: u32, ingested: &Ingested) -> S3Result<()> {
        let ObjectData::Blobs(blobs) = &ingested.data else { unreachable!("parts are always blobs") };
        let part = PartRecord {
            upload_id: upload_id.to_owned(),
            part_number: number,
            size: ingested.size,
            etag: hex::encode(ingested.md5),
            blob: blobs[0].blob.clone(),
            modified_ms: now_ms(),
            checksum: ingested.checksum.as_ref().map(|c| c.value.clone()),
            binding: blobs[0].binding.clone(),
        };
        match self.meta.put_part(&part).await {
            Ok(displaced) => {
                self.release_blobs(&displaced.blobs).await;
                Ok(())
            }
            Err(e) => {
                if !e.may_have_committed() {
                    self.release_blobs(&[part.blob]).await;
                }
                Err(store_error(e))
            }
        }
    }

    pub(crate) async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
        who: &Principal,
    ) -> S3Result<UploadPartOutput> {
        let input = req.input;
        let number = part_number(input.part_number)?;
        let upload = self.upload(&input.bucket, &input.key, &input.upload_id).await?;
        let customer = customer_key!(input)?;
        let key = self.fresh_if_denied(|| self.part_key(&upload.attrs, customer.as_ref(), who)).await?;
        let mut declared = Declared::from_headers(&req.headers, input.content_length, input.content_md5.clone());
        declared.checksum = part_checksum(&upload, declared.checksum)?;
        let ingested = ingest(self, input.body, &declared, req.trailing_headers.as_ref(), false, &key).await?;
        self.record_part(&input.upload_id, number, &ingested).await?;
        let mut out = UploadPartOutput { e_tag: Some(etag(&hex::encode(ingested.md5))), ..Default::default() };
        fill_sse!(out, upload.attrs, customer.as_ref());
        fill_checksum!(out, ingested.checksum.as_ref());
        Ok(out)
    }

    pub(crate) async fn upload_part_copy(
        &self,
        input: UploadPartCopyInput,
        who: &Principal,
    ) -> S3Result<UploadPartCopyOutput> {
        let number = part_number(input.part_number)?;
        let upload = self.upload(&input.bucket, &input.key, &input.upload_id).await?;
        let customer = customer_key!(input)?;
        let key = self.fresh_if_denied(|| self.part_key(&upload.attrs, customer.as_ref(), who)).await?;
        let source_customer = copy_source_customer_key!(input)?;
        let copied = self.copy_source_of(&input.copy_source, copy_source_conditions!(input), who).await?;
        let source = &copied.record;
        let range = match input.copy_source_range.as_deref() {
            None => 0..source.size,
            Some(text) => copy_range(text, source.size)?,
        };
        let declared = Declared {
            content_length: Some(range.end - range.start),
            checksum: part_checksum(&upload, None)?,
            ..Declared::default()
        };
        let body = self.copy_source_bytes(&copied, source_customer.as_ref(), range, who).await?;
        let ingested = ingest(self, Some(body), &declared, None, false, &key).await?;
        self.record_part(&input.upload_id, number, &ingested).await?;
        let mut out = UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(etag(&hex::encode(ingested.md5))),
                last_modified: Some(timestamp(now_ms())),
                ..Default::default()
            }),
            copy_source_version_id: (source.version_id != tern_store::NULL_VERSION).then(|| source.version_id.clone()),
            ..Default::default()
        };
        fill_sse!(out, upload.attrs, customer.as_ref());
        Ok(out)
    }

    /// `CompleteMultipartUpload`; a retry of one that already succeeded (an SDK
    /// retries after a timeout) is answered as the first was, while the
    /// version it made is still the key's current one.
    pub(crate) async fn complete_multipart_upload(
        &self,
        input: CompleteMultipartUploadInput,
    ) -> S3Result<CompleteMultipartUploadOutput> {
        let bucket = self.bucket(&input.bucket).await?;
        let (key, upload_id) = (input.key.clone(), input.upload_id.clone());
        match self.complete_upload(&bucket, input).await {
            Err(e) if *e.code() == s3s::S3ErrorCode::NoSuchUpload => {
                self.completed_before(&bucket, &key, &upload_id).await?.ok_or(e)
            }
            done => done,
        }
    }

    /// The answer of an earlier Complete of `upload_id`, if its version is current.
    async fn completed_before(
        &self,
        bucket: &BucketRecord,
        key: &str,
        upload_id: &str,
    ) -> S3Result<Option<CompleteMultipartUploadOutput>> {
        let current = self.meta.get_version(&bucket.name, key, None).await.map_err(store_error)?;
        Ok(current
            .filter(|v| !v.is_delete_marker && v.attrs.upload_id.as_deref() == Some(upload_id))
            .map(|v| completed(bucket, key, &v.version_id, &v.etag, &v.attrs)))
    }

    async fn complete_upload(
        &self,
        bucket: &BucketRecord,
        input: CompleteMultipartUploadInput,
    ) -> S3Result<CompleteMultipartUploadOutput> {
        let upload = self.upload(&input.bucket, &input.key, &input.upload_id).await?;
        let requested = input.multipart_upload.as_ref().and_then(|m| m.parts.as_deref()).unwrap_or_default();
        let stored = self.meta.list_parts(&upload.upload_id, 0, 10_000).await.map_err(store_error)?;
        let chosen = choose_parts(requested, &stored)?;

        let mut attrs = upload.attrs.clone();
        attrs.parts_count = Some(u32::try_from(chosen.len()).unwrap_or(u32::MAX));
        attrs.upload_id = Some(upload.upload_id.clone());
        attrs.checksum = match &attrs.checksum {
            Some(declared) => upload_checksum::completed(declared, &chosen, claimed_checksum(&input, declared))?,
            None => None,
        };
        let version_id = version_id_for(bucket);
        let modified_ms = now_ms();
        let mut version = NewVersion {
            bucket: bucket.name.clone(),
            key: upload.key.clone(),
            version_id: version_id.clone(),
            is_delete_marker: false,
            modified_ms,
            size: chosen.iter().map(|p| p.size).sum(),
            etag: multipart_etag(&chosen),
            attrs,
            tags: upload.tags.clone(),
            tags_stamp: modified_ms,
            data: ObjectData::Blobs(
                chosen
                    .iter()
                    .map(|p| BlobPart { blob: p.blob.clone(), size: p.size, binding: p.binding.clone() })
                    .collect(),
            ),
            replication: Vec::new(),
        };
        self.plan_replication(&mut version).await?;
        let precondition = write_precondition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
        let displaced =
            self.meta.complete_upload(&upload.upload_id, &version, precondition.as_ref()).await.map_err(store_error)?;
        if !version.replication.is_empty() {
            self.replication_wake.notify_one();
        }
        self.release_blobs(&displaced.blobs).await;
        Ok(completed(bucket, &upload.key, &version_id, &version.etag, &version.attrs))
    }

    pub(crate) async fn abort_multipart_upload(&self, input: &AbortMultipartUploadInput) -> S3Result<()> {
        self.upload(&input.bucket, &input.key, &input.upload_id).await?;
        let displaced = self.meta.abort_upload(&input.bucket, &input.upload_id).await.map_err(store_error)?;
        self.release_blobs(&displaced.blobs).await;
        Ok(())
    }

    pub(crate) async fn list_parts(&self, input: ListPartsInput) -> S3Result<ListPartsOutput> {
        let upload = self.upload(&input.bucket, &input.key, &input.upload_id).await?;
        let max = usize::try_from(input.max_parts.unwrap_or(1000)).unwrap_or(1000).clamp(1, 1000);
        let marker = input
            .part_number_marker
            .map_or(Ok(0), u32::try_from)
            .map_err(|_| s3_error!(InvalidArgument, "Invalid part number marker"))?;
        let mut parts = self.meta.list_parts(&upload.upload_id, marker, max + 1).await.map_err(store_error)?;
        let truncated = parts.len() > max;
        parts.truncate(max);
        let next = parts.last().filter(|_| truncated).and_then(|p| i32::try_from(p.part_number).ok());
        let who = owner(&self.account_id);
        Ok(ListPartsOutput {
            bucket: Some(upload.bucket),
            key: Some(upload.key),
            upload_id: Some(upload.upload_id),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: next,
            max_parts: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(truncated),
            initiator: Some(Initiator { display_name: who.display_name.clone(), id: who.id.clone() }),
            owner: Some(who),
            checksum_algorithm: upload.attrs.checksum.as_ref().map(|c| c.algorithm.clone().into()),
            checksum_type: checksum_type(upload.attrs.checksum.as_ref()),
            storage_class: Some(upload.attrs.storage_class.unwrap_or_else(|| "STANDARD".into()).into()),
            parts: Some(parts.iter().map(part_entry).collect()),
            ..Default::default()
        })
    }

    pub(crate) async fn list_multipart_uploads(
        &self,
        input: ListMultipartUploadsInput,
    ) -> S3Result<ListMultipartUploadsOutput> {
        self.bucket(&input.bucket).await?;
        let max = usize::try_from(input.max_uploads.unwrap_or(1000)).unwrap_or(1000).clamp(1, 1000);
        let prefix = input.prefix.clone().unwrap_or_default();
        let mut uploads = self
            .meta
            .list_uploads(
                &input.bucket,
                &prefix,
                input.key_marker.as_deref(),
                input.upload_id_marker.as_deref(),
                max + 1,
            )
            .await
            .map_err(store_error)?;
        let truncated = uploads.len() > max;
        uploads.truncate(max);
        let last = uploads.last().filter(|_| truncated);
        let who = owner(&self.account_id);
        Ok(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: Some(prefix),
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            next_key_marker: last.map(|u| u.key.clone()),
            next_upload_id_marker: last.map(|u| u.upload_id.clone()),
            max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(truncated),
            uploads: Some(
                uploads
                    .into_iter()
                    .map(|u| MultipartUpload {
                        initiated: Some(timestamp(u.created_ms)),
                        initiator: Some(Initiator { display_name: who.display_name.clone(), id: who.id.clone() }),
                        owner: Some(who.clone()),
                        key: Some(u.key),
                        upload_id: Some(u.upload_id),
                        storage_class: Some(u.attrs.storage_class.unwrap_or_else(|| "STANDARD".into()).into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        })
    }
}

/// What `CompleteMultipartUpload` answers for the version it made.
fn completed(
    bucket: &BucketRecord,
    key: &str,
    version_id: &str,
    version_etag: &str,
    attrs: &ObjectAttrs,
) -> CompleteMultipartUploadOutput {
    let mut out = CompleteMultipartUploadOutput {
        server_side_encryption: crate::wire::sse_dto(attrs.encryption),
        ssekms_key_id: attrs.kms_key_arn.clone(),
        bucket_key_enabled: attrs.bucket_key.then_some(true),
        bucket: Some(bucket.name.clone()),
        key: Some(key.to_owned()),
        location: Some(format!("/{}/{key}", bucket.name)),
        e_tag: Some(etag(version_etag)),
        version_id: reported_version(bucket, version_id),
        ..Default::default()
    };
    fill_checksum!(out, attrs.checksum.as_ref());
    out.checksum_type = checksum_type(attrs.checksum.as_ref());
    out
}

fn part_entry(p: &PartRecord) -> Part {
    Part {
        e_tag: Some(etag(&p.etag)),
        last_modified: Some(timestamp(p.modified_ms)),
        part_number: i32::try_from(p.part_number).ok(),
        size: i64::try_from(p.size).ok(),
        ..Default::default()
    }
}

/// Matches the client's part list against the stored parts, as AWS checks it.
fn choose_parts(requested: &[CompletedPart], stored: &[PartRecord]) -> S3Result<Vec<PartRecord>> {
    if requested.is_empty() {
        return Err(crate::error::malformed_xml());
    }
    let numbers = requested
        .iter()
        .map(|p| p.part_number.map(part_number).transpose().map(Option::unwrap_or_default))
        .collect::<S3Result<Vec<u32>>>()?;
    if numbers.windows(2).any(|w| w[0] >= w[1]) {
        return Err(s3_error!(
            InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number."
        ));
    }
    let mut chosen: Vec<PartRecord> = Vec::with_capacity(requested.len());
    for (part, number) in requested.iter().zip(numbers) {
        let found = stored.iter().find(|s| s.part_number == number);
        let matches = found.is_some_and(|s| part.e_tag.as_ref().is_none_or(|e| e.value() == s.etag));
        let Some(found) = found.filter(|_| matches) else {
            return Err(s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
            ));
        };
        chosen.push(found.clone());
    }
    if chosen[..chosen.len() - 1].iter().any(|p| p.size < MIN_PART_SIZE) {
        return Err(s3_error!(EntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size."));
    }
    Ok(chosen)
}

/// `hex(md5(md5(part1) ‖ md5(part2) ‖ …))-N`, the multipart `ETag` every S3 client expects.
fn multipart_etag(parts: &[PartRecord]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(&hex::decode(&part.etag).unwrap_or_default());
    }
    format!("{}-{}", hex::encode(md5.finalize()), parts.len())
}

/// The checksum a part is stored with: the upload's algorithm, computed
/// when the client sent none; another algorithm is S3's mismatch.
fn part_checksum(
    upload: &UploadRecord,
    sent: Option<(String, Option<String>)>,
) -> S3Result<Option<(String, Option<String>)>> {
    let Some(expected) = upload.attrs.checksum.as_ref().map(|c| c.algorithm.clone()) else { return Ok(sent) };
    match sent {
        Some((algorithm, _)) if algorithm != expected => Err(s3_error!(
            InvalidRequest,
            "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
            expected.to_lowercase(),
            algorithm.to_lowercase()
        )),
        Some(sent) => Ok(Some(sent)),
        None => Ok(Some((expected, None))),
    }
}

/// The whole object's checksum a completion was sent with, in the upload's algorithm.
fn claimed_checksum<'i>(input: &'i CompleteMultipartUploadInput, declared: &StoredChecksum) -> Option<&'i str> {
    match declared.algorithm.as_str() {
        "CRC32" => input.checksum_crc32.as_deref(),
        "CRC32C" => input.checksum_crc32c.as_deref(),
        "CRC64NVME" => input.checksum_crc64nvme.as_deref(),
        "SHA1" => input.checksum_sha1.as_deref(),
        _ => input.checksum_sha256.as_deref(),
    }
}

/// Parses `x-amz-copy-source-range: bytes=first-last` against the source size.
fn copy_range(text: &str, size: u64) -> S3Result<std::ops::Range<u64>> {
    let invalid = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let (first, last) = text.strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(invalid)?;
    let first: u64 = first.parse().map_err(|_| invalid())?;
    let last: u64 = last.parse().map_err(|_| invalid())?;
    if first > last || last >= size {
        return Err(s3_error!(InvalidRange, "The requested range is not satisfiable"));
    }
    Ok(first..last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(n: u32, size: u64) -> PartRecord {
        PartRecord {
            upload_id: "u".into(),
            part_number: n,
            size,
            etag: format!("{n:032x}"),
            blob: format!("b{n}"),
            modified_ms: 0,
            checksum: None,
            binding: None,
        }
    }

    fn completed(n: i32, etag_value: Option<&str>) -> CompletedPart {
        CompletedPart { part_number: Some(n), e_tag: etag_value.map(etag), ..Default::default() }
    }

    #[test]
    fn part_lists_are_checked_as_aws_does() {
        let parts = [stored(1, MIN_PART_SIZE), stored(2, 10), stored(3, 1)];
        let chosen = choose_parts(&[completed(1, None), completed(2, Some(&format!("{:032x}", 2)))], &parts).unwrap();
        assert_eq!(chosen.len(), 2);
        let code = |r: S3Result<Vec<PartRecord>>| r.unwrap_err().code().as_str().to_owned();
        assert_eq!(code(choose_parts(&[completed(2, None), completed(1, None)], &parts)), "InvalidPartOrder");
        assert_eq!(code(choose_parts(&[completed(4, None)], &parts)), "InvalidPart");
        assert_eq!(code(choose_parts(&[completed(1, Some("bad"))], &parts)), "InvalidPart");
        assert_eq!(code(choose_parts(&[completed(2, None), completed(3, None)], &parts)), "EntityTooSmall");
        assert_eq!(code(choose_parts(&[], &parts)), "MalformedXML");
    }

    #[test]
    fn multipart_etag_matches_the_s3_formula() {
        // Two parts whose MD5s are all-zero and all-one bytes.
        let mut a = stored(1, 1);
        a.etag = "00".repeat(16);
        let mut b = stored(2, 1);
        b.etag = "11".repeat(16);
        let mut md5 = Md5::new();
        md5.update(&[0u8; 16]);
        md5.update(&[0x11u8; 16]);
        assert_eq!(multipart_etag(&[a, b]), format!("{}-2", hex::encode(md5.finalize())));
    }

    #[test]
    fn copy_ranges() {
        assert_eq!(copy_range("bytes=0-9", 10).unwrap(), 0..10);
        assert_eq!(copy_range("bytes=5-10", 10).unwrap_err().code().as_str(), "InvalidRange");
        assert_eq!(copy_range("0-9", 10).unwrap_err().code().as_str(), "InvalidArgument");
    }
}
