//! Object bytes: the `BlobStore` contract and the local-files engine.

use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::{StoreError, StoreResult};

/// A stream of bytes moving through a region in bounded memory.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + Sync>>;

/// Immutable blobs named by random ids. Ids are content-independent, so a blob
/// is never overwritten and readers never see a half-written one.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Writes `body` durably and returns its new id and length. An error from
    /// `body` aborts the write (`StoreError::Body`) and leaves nothing behind.
    async fn put(&self, body: ByteStream) -> StoreResult<(String, u64)>;
    /// Streams `range` of a blob. `BlobMissing` if the id is unknown.
    async fn get(&self, id: &str, range: Range<u64>) -> StoreResult<ByteStream>;
    /// Removes a blob; removing a missing blob succeeds.
    async fn delete(&self, id: &str) -> StoreResult<()>;
    /// Every blob id written more than `age` ago (for the orphan sweeper).
    async fn list(&self, age: Duration) -> StoreResult<Vec<String>>;
    /// Drops leftovers, begun more than `age` ago, of writes that never finished.
    async fn clear_incomplete(&self, age: Duration) -> StoreResult<()>;
    /// Whether the store answers (a region's readiness).
    async fn ping(&self) -> StoreResult<()>;
}

/// Plain files under `<root>/blobs/<xx>/<id>`.
///
/// Written by hand on `std::fs` rather than through `object_store`: durability
/// here depends on exact ordering (write to a temp file, rename it into place,
/// fdatasync the file and fsync the directory, and only after both does the
/// caller commit metadata), which we want visible in ~100 lines.
#[derive(Clone)]
pub struct LocalBlobs {
    root: Arc<PathBuf>,
}

/// Disk writes and reads move in 1 MiB blocks: small chunks cost a syscall
/// and a thread hop each (s3s-fs's 4 KiB reads make its GETs 4× slower).
const IO_BLOCK: usize = 1 << 20;

impl LocalBlobs {
    pub fn open(root: &Path) -> StoreResult<Self> {
        crate::private::dir_all(&root.join("tmp"))?;
        crate::private::dir_all(&root.join("blobs"))?;
        Ok(Self { root: Arc::new(root.to_owned()) })
    }

    /// Copies every blob into `target` under its own id (metadata names
    /// blobs by id), durably: each is written under a temporary name,
    /// synced, and renamed into place. A blob `target` holds already with
    /// the same bytes is left as it is, so a copy may run again after an
    /// interruption; one with other bytes is refused. `progress` hears of
    /// each blob copied (or found), with the total.
    pub async fn copy_into(&self, target: &Self, progress: &(dyn Fn(u64, u64) + Sync)) -> StoreResult<u64> {
        let ids = self.list(Duration::ZERO).await?;
        let total = ids.len() as u64;
        for (done, id) in ids.iter().enumerate() {
            let (from, to) = (self.blob_path(id)?, target.blob_path(id)?);
            let temp = target.root.join("tmp").join(format!("{id}.copy"));
            blocking(move || copy_file(&from, &to, &temp)).await?;
            progress(done as u64 + 1, total);
        }
        Ok(total)
    }

    fn blob_path(&self, id: &str) -> StoreResult<PathBuf> {
        let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(StoreError::BlobMissing(id.to_owned()));
        }
        Ok(self.root.join("blobs").join(&id[..2]).join(id))
    }

    /// Writes `body` to a new file at `path`; returns it (not yet fully
    /// synced) and its length.
    async fn write_temp(&self, path: PathBuf, body: ByteStream) -> StoreResult<(std::fs::File, u64)> {
        let created = blocking(move || crate::private::create_new(&path)).await?;
        let mut flush = EarlyFlush::default();
        let written = write_blocks(created, body, &mut flush).await;
        // Even a failed write waits for its flush: no sync outlives the blob.
        let flushed = flush.finish().await;
        let written = written?;
        flushed?;
        Ok(written)
    }
}

/// Writes `body` into `file` in ~1 MiB blocks, each while the next arrives.
async fn write_blocks(
    file: std::fs::File,
    mut body: ByteStream,
    flush: &mut EarlyFlush,
) -> StoreResult<(std::fs::File, u64)> {
    let mut file = Some(file);
    let mut pending: Option<tokio::task::JoinHandle<io::Result<std::fs::File>>> = None;
    // Chunks are gathered, not copied, into ~1 MiB writes.
    let mut block: Vec<Bytes> = Vec::new();
    let mut block_len = 0;
    let mut size = 0u64;
    loop {
        let chunk = body.next().await.transpose().map_err(StoreError::Body)?;
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            size += chunk.len() as u64;
            block_len += chunk.len();
            block.push(chunk);
        }
        if block_len >= IO_BLOCK || (done && block_len > 0) {
            // Overlap the disk write of this block with receiving the next one.
            if let Some(handle) = pending.take() {
                let written = join(handle).await?;
                flush.written(size - block_len as u64, &written).await?;
                file = Some(written);
            }
            let chunks = std::mem::take(&mut block);
            block_len = 0;
            let mut f = file.take().expect("file is returned by the previous write");
            pending = Some(tokio::task::spawn_blocking(move || {
                for chunk in &chunks {
                    io::Write::write_all(&mut f, chunk)?;
                }
                Ok(f)
            }));
        }
        if done {
            break;
        }
    }
    let f = match pending {
        Some(handle) => join(handle).await?,
        None => file.expect("no write in flight"),
    };
    Ok((f, size))
}

/// A large blob's pages start for the disk while the rest of it arrives:
/// a background fdatasync every [`EarlyFlush::EVERY`] bytes, on a second
/// descriptor, one at a time. Left to the final sync, a 64 MiB blob made
/// its upload wait ~70 ms for the disk after the last byte came in.
/// (Inline in the write path, such a sync stalled it: see performance.md.)
///
/// Its errors are not advisory: the two descriptors share one open file,
/// and an error the kernel reports to this fdatasync is not reported again
/// to the final one.
#[derive(Default)]
struct EarlyFlush {
    /// The second descriptor, opened when the first flush is due.
    file: Option<Arc<std::fs::File>>,
    flushed: u64,
    in_flight: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

impl EarlyFlush {
    const EVERY: u64 = 8 << 20;

    /// `written` bytes are in `file`: start a flush if one is due and none runs.
    async fn written(&mut self, written: u64, file: &std::fs::File) -> io::Result<()> {
        if written - self.flushed < Self::EVERY || self.in_flight.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        self.finish().await?;
        let second = match &self.file {
            Some(second) => Arc::clone(second),
            None => Arc::clone(self.file.insert(Arc::new(file.try_clone()?))),
        };
        self.in_flight = Some(tokio::task::spawn_blocking(move || second.sync_data()));
        self.flushed = written;
        Ok(())
    }

    /// Waits for the flush running, if any, and reports how it went.
    async fn finish(&mut self) -> io::Result<()> {
        match self.in_flight.take() {
            Some(handle) => join(handle).await,
            None => Ok(()),
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

async fn join<T>(handle: tokio::task::JoinHandle<io::Result<T>>) -> io::Result<T> {
    handle.await.map_err(io::Error::other)?
}

/// Copies `from` to `to` through `temp` (see [`LocalBlobs::copy_into`]).
fn copy_file(from: &Path, to: &Path, temp: &Path) -> io::Result<()> {
    if to.exists() {
        return if same_bytes(from, to)? {
            Ok(())
        } else {
            Err(io::Error::other(format!("{} exists with other bytes", to.display())))
        };
    }
    let dir = to.parent().expect("a blob lives in a directory");
    crate::private::new_dirs(dir)?;
    let _ = std::fs::remove_file(temp);
    let mut file = crate::private::create_new(temp)?;
    io::copy(&mut std::fs::File::open(from)?, &mut file)?;
    file.sync_data()?;
    std::fs::rename(temp, to)?;
    sync_dir(dir)
}

/// Whether two files hold the same bytes, read a block at a time.
fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    use std::io::Read as _;
    if std::fs::metadata(a)?.len() != std::fs::metadata(b)?.len() {
        return Ok(false);
    }
    let (mut a, mut b) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut block_a, mut block_b) = (vec![0; IO_BLOCK], vec![0; IO_BLOCK]);
    loop {
        let n = a.read(&mut block_a)?;
        if n == 0 {
            return Ok(true);
        }
        b.read_exact(&mut block_b[..n])?;
        if block_a[..n] != block_b[..n] {
            return Ok(false);
        }
    }
}

/// Whether `entry` was last written more than `age` ago (a clock that
/// stepped back counts as recent: kept).
fn written_before(entry: &std::fs::DirEntry, age: Duration) -> io::Result<bool> {
    let modified = entry.metadata()?.modified()?;
    Ok(age.is_zero() || modified.elapsed().is_ok_and(|elapsed| elapsed > age))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn put(&self, body: ByteStream) -> StoreResult<(String, u64)> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let temp = self.root.join("tmp").join(&id);
        let (file, size) = match self.write_temp(temp.clone(), body).await {
            Ok(written) => written,
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(e);
            }
        };
        let target = self.blob_path(&id)?;
        let dir = target.parent().expect("blob paths have a parent").to_owned();
        let renamed = {
            let (dir, target) = (dir.clone(), target.clone());
            blocking(move || {
                crate::private::new_dirs(&dir)?;
                std::fs::rename(&temp, &target)
            })
            .await
        };
        // Both the bytes and the new name must be durable before the caller
        // commits metadata naming this blob; the two syncs run concurrently.
        // Until that commit the blob is unreferenced, so a crash at any point
        // leaves only an orphan for the start-up sweeper.
        let synced = match renamed {
            Ok(()) => {
                let data = tokio::task::spawn_blocking(move || file.sync_data());
                let name = tokio::task::spawn_blocking(move || sync_dir(&dir));
                join(data).await.and(join(name).await)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            let _ = tokio::fs::remove_file(&target).await;
            return Err(e.into());
        }
        Ok((id, size))
    }

    async fn get(&self, id: &str, range: Range<u64>) -> StoreResult<ByteStream> {
        let path = self.blob_path(id)?;
        let file = match blocking(move || std::fs::File::open(path)).await {
            Ok(f) => Arc::new(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::BlobMissing(id.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        let stream = futures::stream::try_unfold(range, move |range| {
            let file = Arc::clone(&file);
            async move {
                if range.is_empty() {
                    return Ok(None);
                }
                let len = usize::try_from(range.end - range.start).unwrap_or(IO_BLOCK).min(IO_BLOCK);
                let offset = range.start;
                let chunk = blocking(move || {
                    let mut buf = vec![0; len];
                    file.read_exact_at(&mut buf, offset)?;
                    Ok(Bytes::from(buf))
                })
                .await?;
                Ok(Some((chunk, offset + len as u64..range.end)))
            }
        });
        Ok(Box::pin(stream))
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        let path = self.blob_path(id)?;
        match tokio::fs::remove_file(path).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn list(&self, age: Duration) -> StoreResult<Vec<String>> {
        let root = self.root.join("blobs");
        let ids = blocking(move || {
            let mut ids = Vec::new();
            for dir in std::fs::read_dir(root)? {
                for entry in std::fs::read_dir(dir?.path())? {
                    let entry = entry?;
                    if written_before(&entry, age)? {
                        ids.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            Ok(ids)
        })
        .await?;
        Ok(ids)
    }

    async fn ping(&self) -> StoreResult<()> {
        let root = self.root.join("blobs");
        blocking(move || std::fs::read_dir(root).map(drop)).await?;
        Ok(())
    }

    async fn clear_incomplete(&self, age: Duration) -> StoreResult<()> {
        let tmp = self.root.join("tmp");
        blocking(move || {
            for entry in std::fs::read_dir(&tmp)? {
                let entry = entry?;
                if written_before(&entry, age)? {
                    std::fs::remove_file(entry.path())?;
                }
            }
            Ok(())
        })
        .await?;
        Ok(())
    }
}
