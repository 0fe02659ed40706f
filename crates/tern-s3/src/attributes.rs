//! `GetObjectAttributes`: what S3 knows about an object without its bytes,
//! each attribute only when asked for.

use s3s::S3Result;
use s3s::dto::{
    Checksum, GetObjectAttributesInput, GetObjectAttributesOutput, GetObjectAttributesParts, ObjectAttributes,
    ObjectPart,
};
use tern_store::{ObjectData, VersionRecord};

use crate::customer_key::customer_key;
use crate::region::Region;
use crate::wire::{checksum_type, fill_checksum, timestamp};

/// At most this many parts per answer, as S3.
const MAX_PARTS: usize = 1000;

impl Region {
    pub(crate) async fn get_object_attributes(
        &self,
        input: GetObjectAttributesInput,
    ) -> S3Result<GetObjectAttributesOutput> {
        let customer = customer_key!(input)?;
        let record = self.readable_version(&input.bucket, &input.key, input.version_id.as_deref()).await?;
        self.check_customer(&record.attrs, &record.data, customer.as_ref()).await?;
        // Clients send the list as one comma-separated header.
        let asked = |attribute: &str| {
            input.object_attributes.iter().flat_map(|a| a.as_str().split(',')).any(|a| a.trim() == attribute)
        };
        let mut out = GetObjectAttributesOutput {
            last_modified: Some(timestamp(record.modified_ms)),
            version_id: crate::wire::reported_read_version(&record),
            ..Default::default()
        };
        if asked(ObjectAttributes::ETAG) {
            // Unlike every other answer, this one carries the ETag unquoted.
            out.e_tag = Some(s3s::dto::ETag::Strong(record.etag.clone()));
        }
        if asked(ObjectAttributes::CHECKSUM) {
            out.checksum = checksum_of(&record);
        }
        if asked(ObjectAttributes::OBJECT_SIZE) {
            out.object_size = Some(i64::try_from(record.size).unwrap_or(i64::MAX));
        }
        if asked(ObjectAttributes::STORAGE_CLASS) {
            let class = record.attrs.storage_class.clone().unwrap_or_else(|| "STANDARD".into());
            out.storage_class = Some(class.into());
        }
        if asked(ObjectAttributes::OBJECT_PARTS) {
            out.object_parts = parts_of(&record, input.part_number_marker, input.max_parts);
        }
        Ok(out)
    }
}

fn checksum_of(record: &VersionRecord) -> Option<Checksum> {
    let stored = record.attrs.checksum.as_ref()?;
    let mut checksum = Checksum { checksum_type: checksum_type(Some(stored)), ..Default::default() };
    fill_checksum!(checksum, Some(stored));
    Some(checksum)
}

/// A page of a multipart object's parts (`None` for an object written whole).
fn parts_of(record: &VersionRecord, marker: Option<i32>, max: Option<i32>) -> Option<GetObjectAttributesParts> {
    let total = record.attrs.parts_count?;
    // A version holds one blob per part, unless it was stored otherwise (a
    // replica may be): then only the count is known.
    let blobs = match &record.data {
        ObjectData::Blobs(blobs) if blobs.len() == usize::try_from(total).unwrap_or(0) => blobs.as_slice(),
        _ => &[],
    };
    let after = usize::try_from(marker.unwrap_or(0)).unwrap_or(0);
    let max = usize::try_from(max.unwrap_or(1000)).unwrap_or(MAX_PARTS).clamp(1, MAX_PARTS);
    let parts: Vec<ObjectPart> = blobs
        .iter()
        .enumerate()
        .skip(after)
        .take(max)
        .map(|(i, blob)| ObjectPart {
            part_number: i32::try_from(i + 1).ok(),
            size: i64::try_from(blob.size).ok(),
            ..Default::default()
        })
        .collect();
    let truncated = after + parts.len() < blobs.len();
    Some(GetObjectAttributesParts {
        total_parts_count: i32::try_from(total).ok(),
        part_number_marker: marker,
        next_part_number_marker: parts.last().and_then(|p| p.part_number).filter(|_| truncated),
        max_parts: i32::try_from(max).ok(),
        is_truncated: Some(truncated),
        parts: (!blobs.is_empty()).then_some(parts),
    })
}
