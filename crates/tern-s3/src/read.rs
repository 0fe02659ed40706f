//! Streaming a byte range of a version out, across the blobs that hold it.

use std::ops::Range;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use s3s::dto::StreamingBlob;
use tern_store::{BlobPart, ObjectData};

use crate::region::Region;
use crate::sse::{KeyOpener, open_blob, open_bytes};

/// The blob pieces covering `range`, as (blob, range within it).
fn segments(data: &ObjectData, range: &Range<u64>) -> Vec<(BlobPart, Range<u64>)> {
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
            out.push((part.clone(), start - part_range.start..end - part_range.start));
        }
    }
    out
}

/// The plaintext of `range` of a version of `size` bytes, decrypted and
/// opened blob by blob as the client reads, with data keys from `keys`.
pub(crate) fn stream_range(
    region: &Region,
    keys: Arc<dyn KeyOpener>,
    data: &ObjectData,
    size: u64,
    range: Range<u64>,
) -> StreamingBlob {
    if let ObjectData::Inline(stored) = data {
        let plain = open_bytes(keys.as_ref(), stored, size, &range);
        if let Err(e) = &plain {
            tracing::error!(error = %e, "inline object failed authentication");
        }
        return StreamingBlob::wrap(futures::stream::once(async move { plain }));
    }
    let blobs = Arc::clone(&region.blobs);
    let stream = futures::stream::iter(segments(data, &range))
        .then(move |(part, range)| {
            let (blobs, keys) = (Arc::clone(&blobs), Arc::clone(&keys));
            async move {
                open_blob(keys.as_ref(), &blobs, &part, range).await.map_err(|e| {
                    tracing::error!(blob = %part.blob, error = %e, "blob unreadable during GET");
                    std::io::Error::other(e)
                })
            }
        })
        .try_flatten()
        .inspect_err(|e| tracing::error!(error = %e, "object bytes failed authentication"));
    // s3s needs a `Sync` body; the blob futures are only `Send`, and the
    // stream is polled by one task at a time anyway.
    StreamingBlob::wrap(sync_wrapper::SyncStream::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_maps_onto_the_parts_it_touches() {
        let part = |blob: &str, size| BlobPart { blob: blob.into(), size, binding: None };
        let data = ObjectData::Blobs(vec![part("a", 10), part("b", 10), part("c", 5)]);
        let (a, b, c) = (part("a", 10), part("b", 10), part("c", 5));
        assert_eq!(segments(&data, &(0..25)), [(a.clone(), 0..10), (b.clone(), 0..10), (c.clone(), 0..5)]);
        assert_eq!(segments(&data, &(12..13)), [(b.clone(), 2..3)]);
        assert_eq!(segments(&data, &(8..22)), [(a, 8..10), (b, 0..10), (c, 0..2)]);
        assert!(segments(&data, &(25..25)).is_empty());
    }
}
