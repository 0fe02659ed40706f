use std::time::Duration;

use crate::{BlobStore, MetaStore, StoreResult};

/// Removes blobs no metadata references: the leftovers of writes that crashed
/// between the blob fsync and the metadata commit, or between a commit and the
/// deletion of the blobs it displaced. Only blobs written more than `grace`
/// ago are considered: zero before a region that owns its stores serves, so
/// no write can be in flight; longer than any write takes where other
/// front-ends share the stores and write meanwhile. Returns how many blobs
/// were removed.
pub async fn sweep_orphans(meta: &dyn MetaStore, blobs: &dyn BlobStore, grace: Duration) -> StoreResult<usize> {
    blobs.clear_incomplete(grace).await?;
    // Listed before the references are read: a blob committed in between is
    // then referenced, never mistaken for an orphan.
    let candidates = blobs.list(grace).await?;
    let referenced = meta.referenced_blobs().await?;
    let mut removed = 0;
    for id in candidates {
        if !referenced.contains(&id) {
            blobs.delete(&id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
