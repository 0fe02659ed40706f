use crate::{BlobStore, MetaStore, StoreResult};

/// Removes blobs no metadata references: the leftovers of writes that crashed
/// between the blob fsync and the metadata commit, or between a commit and the
/// deletion of the blobs it displaced. Run before the region serves requests,
/// so no write can be in flight. Returns how many blobs were removed.
pub async fn sweep_orphans(meta: &dyn MetaStore, blobs: &dyn BlobStore) -> StoreResult<usize> {
    blobs.clear_incomplete().await?;
    let referenced = meta.referenced_blobs().await?;
    let mut removed = 0;
    for id in blobs.list().await? {
        if !referenced.contains(&id) {
            blobs.delete(&id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
