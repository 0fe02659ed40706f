//! Streaming a byte range of a version out, across the blobs that hold it.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use s3s::dto::StreamingBlob;
use tern_store::{BlobStore, ObjectData};

/// The blob pieces covering `range`, as (blob id, range within that blob).
fn segments(data: &ObjectData, range: &Range<u64>) -> Vec<(String, Range<u64>)> {
    let ObjectData::Blobs(parts) = data else {
        return vec![];
    };
    let mut offset = 0;
    let mut out = Vec::new();
    for part in parts {
        let part_range = offset..offset + part.size;
        offset += part.size;
        let start = range.start.max(part_range.start);
        let end = range.end.min(part_range.end);
        if start < end {
            out.push((part.blob.clone(), start - part_range.start..end - part_range.start));
        }
    }
    out
}

/// The bytes of `range` of a version, opened blob by blob as the client reads.
pub(crate) fn stream_range(blobs: &Arc<dyn BlobStore>, data: &ObjectData, range: Range<u64>) -> StreamingBlob {
    if let ObjectData::Inline(bytes) = data {
        let slice = bytes.slice(usize::try_from(range.start).unwrap_or(0)..usize::try_from(range.end).unwrap_or(0));
        return StreamingBlob::wrap(futures::stream::once(async move { Ok::<Bytes, std::io::Error>(slice) }));
    }
    let blobs = Arc::clone(blobs);
    let stream = futures::stream::iter(segments(data, &range))
        .then(move |(blob, range)| {
            let blobs = Arc::clone(&blobs);
            async move {
                blobs.get(&blob, range).await.map_err(|e| {
                    tracing::error!(%blob, error = %e, "blob unreadable during GET");
                    std::io::Error::other(e)
                })
            }
        })
        .try_flatten();
    // s3s needs a `Sync` body; the blob futures are only `Send`, and the
    // stream is polled by one task at a time anyway.
    StreamingBlob::wrap(sync_wrapper::SyncStream::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_store::BlobPart;

    #[test]
    fn a_range_maps_onto_the_parts_it_touches() {
        let part = |blob: &str, size| BlobPart { blob: blob.into(), size };
        let data = ObjectData::Blobs(vec![part("a", 10), part("b", 10), part("c", 5)]);
        assert_eq!(segments(&data, &(0..25)), [("a".into(), 0..10), ("b".into(), 0..10), ("c".into(), 0..5)]);
        assert_eq!(segments(&data, &(12..13)), [("b".into(), 2..3)]);
        assert_eq!(segments(&data, &(8..22)), [("a".into(), 8..10), ("b".into(), 0..10), ("c".into(), 0..2)]);
        assert!(segments(&data, &(25..25)).is_empty());
    }
}
