//! Where a region keeps its state, as its configuration says: `SQLite` and
//! files of its own, or a PostgreSQL database and a blob directory that
//! every front-end of the region shares.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tern_core::{BlobLocation, MetadataLocation, RegionConfig};
use tern_crypto::Key256;
use tern_store::{BlobStore, DocStore, DocWrite, LocalBlobs, MetaStore, PgStore, SqliteMeta, sweep_orphans};

/// How old a blob of a shared store must be before the sweep may call it
/// an orphan: far longer than any write takes between its bytes and its
/// commit, which another front-end may be in the middle of (a 5 GiB part
/// on a slow link, a large replica staged blob by blob).
const SHARED_SWEEP_GRACE: Duration = Duration::from_hours(24);

pub struct RegionStores {
    pub meta: Arc<dyn MetaStore>,
    /// KMS's and IAM's documents, in the same engine as `meta`.
    pub docs: Arc<dyn DocStore>,
    pub blobs: Arc<dyn BlobStore>,
}

/// Opens the region's stores, checks they were sealed under `root_key`,
/// and sweeps what interrupted writes left (in the background where other
/// front-ends share the stores).
pub async fn open(config: &RegionConfig, dir: &Path, root_key: &Key256) -> anyhow::Result<RegionStores> {
    let (meta, docs): (Arc<dyn MetaStore>, Arc<dyn DocStore>) = match config.metadata_location()? {
        MetadataLocation::Embedded => {
            let store = Arc::new(SqliteMeta::open(&dir.join("meta.db")).await.context("opening metadata")?);
            (Arc::clone(&store) as _, store as _)
        }
        MetadataLocation::Postgres(url) => {
            let store = Arc::new(PgStore::connect(&url).await?);
            (Arc::clone(&store) as _, store as _)
        }
    };
    check_root_key(docs.as_ref(), root_key, config.shares_stores()).await?;
    let blobs = open_blobs(config, dir).await?;
    let stores = RegionStores { meta, docs, blobs };
    if config.shares_stores() {
        tokio::spawn(sweep(Arc::clone(&stores.meta), Arc::clone(&stores.blobs), config.name.clone()));
    } else {
        let swept = sweep_orphans(stores.meta.as_ref(), stores.blobs.as_ref(), Duration::ZERO)
            .await
            .context("sweeping orphan blobs")?;
        if swept > 0 {
            tracing::info!(region = config.name, swept, "removed blobs left by interrupted writes");
        }
    }
    Ok(stores)
}

async fn open_blobs(config: &RegionConfig, dir: &Path) -> anyhow::Result<Arc<dyn BlobStore>> {
    let blob_dir = match config.blob_location()? {
        BlobLocation::Embedded => dir.join("blobs"),
        BlobLocation::Directory(shared) => shared,
        BlobLocation::S3 { bucket, prefix, service } => {
            let s3 = tern_blobs_s3::S3BlobsConfig {
                endpoint: service.endpoint,
                region: service.region,
                bucket,
                prefix,
                credentials: service.access_key_id.zip(service.secret_access_key),
                part_size: service.part_size_mib << 20,
            };
            return Ok(Arc::new(tern_blobs_s3::S3Blobs::open(&s3).await?));
        }
    };
    let blobs =
        LocalBlobs::open(&blob_dir).with_context(|| format!("opening the blob store in {}", blob_dir.display()))?;
    Ok(Arc::new(blobs))
}

async fn sweep(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>, region: String) {
    match sweep_orphans(meta.as_ref(), blobs.as_ref(), SHARED_SWEEP_GRACE).await {
        Ok(0) => {}
        Ok(swept) => tracing::info!(region, swept, "removed blobs left by interrupted writes"),
        Err(e) => tracing::warn!(region, error = %e, "cannot sweep orphan blobs; will try at the next start"),
    }
}

const CHECK_COLLECTION: &str = "region";
const CHECK_ID: &str = "root-key-check";
const CHECK_PURPOSE: &[u8] = b"tern/root-key-check/v1";

/// Refuses a root key other than the one the stores were sealed under. The
/// first start records a MAC under the key (never the key); every later
/// start, on any front-end, must reproduce it. Without this, a front-end
/// started with a fresh data directory would make a key of its own and
/// fail on every sealed key and object its peers wrote.
async fn check_root_key(docs: &dyn DocStore, root_key: &Key256, shared: bool) -> anyhow::Result<()> {
    let mac = tern_crypto::mac::Mac::derived(root_key, CHECK_PURPOSE);
    let recorded = docs.load_docs(CHECK_COLLECTION).await.context("reading the root key check")?;
    match recorded.docs.iter().find(|(id, _)| id == CHECK_ID) {
        Some((_, tag)) if mac.verify(CHECK_ID.as_bytes(), tag) => Ok(()),
        Some(_) if shared => anyhow::bail!(
            "this front-end's root key is not the one the region's database was sealed with: give every \
             front-end of the region the same root.key (or TERN_ROOT_KEY_FILE)"
        ),
        Some(_) => anyhow::bail!(
            "the region's root key is not the one its metadata was sealed with: restore its root.key \
             (or TERN_ROOT_KEY_FILE)"
        ),
        None => {
            let tag = mac.sign(CHECK_ID.as_bytes()).to_vec();
            // Expecting nothing there yet: of two first front-ends, one
            // records its key and the other is checked against it.
            let expect = [(CHECK_COLLECTION, recorded.generation)];
            match docs.write_docs(vec![DocWrite::put(CHECK_COLLECTION, CHECK_ID, tag)], &expect).await {
                Err(tern_store::StoreError::Conflict(_)) => Box::pin(check_root_key(docs, root_key, shared)).await,
                other => other.context("recording the root key check"),
            }
        }
    }
}
