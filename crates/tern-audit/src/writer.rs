//! Appending to a region's trail.
//!
//! One thread owns the open file. Callers queue serialized records; a
//! record nobody waits for (a KMS data-plane call) does not wake the thread,
//! which writes the queue once a [`BATCH_INTERVAL`], or sooner when it grows
//! long. A caller that must see its record durable (a management call)
//! wakes it: the thread writes everything queued and calls `fdatasync`
//! once for all the callers then waiting. Wake-ups, not bytes, are what
//! records would otherwise cost a busy region.

use std::fs::File;
use std::io::{BufWriter, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::oneshot;

use crate::chain::{ChainKey, GENESIS, Tag, claimed_tag};
use crate::files::{self, Closing};
use crate::record::{Durability, Record};

/// The longest a batched record waits to be synced: what a crash can lose
/// of KMS data-plane records (those not yet synced by a management call).
pub const BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// Queued records that wake the writer without waiting for the interval.
const WAKE_AT: usize = 4096;
/// Beyond this many queued records, or bytes (a disk that cannot keep up,
/// or callers sending large parameters), callers that can wait do, as
/// management calls do: the region slows down rather than queue without end.
const BACK_PRESSURE_AT: usize = 64 * 1024;
const BACK_PRESSURE_BYTES: usize = 64 << 20;

/// Where and how a region keeps its trail.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub region: String,
    /// A file is closed and the next one opened once it is this long.
    pub max_file_bytes: u64,
}

/// A record could not be made durable.
#[derive(Debug, thiserror::Error)]
#[error("the audit trail could not record the call")]
pub struct NotRecorded;

/// What callers have handed the writer and it has not yet taken.
#[derive(Default)]
struct Queue {
    records: Vec<Vec<u8>>,
    /// The bytes of `records`.
    bytes: usize,
    /// Callers waiting until everything queued before them is synced.
    waiting: Vec<oneshot::Sender<bool>>,
    /// Set by [`AuditLog::close`]: write, close the file, stop.
    closing: Option<oneshot::Sender<()>>,
    /// The writer has stopped (closed, or failed): nothing more is recorded.
    stopped: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A region's audit trail, or none (`[audit] enabled = false`).
pub struct AuditLog {
    shared: Option<Arc<Shared>>,
}

impl AuditLog {
    /// A trail that records nothing.
    #[must_use]
    pub fn disabled() -> Self {
        Self { shared: None }
    }

    /// Opens the trail in `options.dir`: a file a crash left open is closed
    /// first, then a new file is begun.
    ///
    /// # Errors
    /// If the directory or its files cannot be read or written.
    pub fn open(options: &Options, key: ChainKey) -> std::io::Result<Self> {
        let trail = Trail::resume(options, key)?;
        let shared = Arc::new(Shared::default());
        let writer = Arc::clone(&shared);
        std::thread::Builder::new().name(format!("audit-{}", options.region)).spawn(move || {
            let stopped = Stopped(&writer);
            run(&writer, trail);
            drop(stopped);
        })?;
        Ok(Self { shared: Some(shared) })
    }

    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// Appends `record`; with [`Durability::BeforeResponse`] (or when the
    /// queue is long: a disk that cannot keep up slows its callers), returns
    /// once it is synced to disk.
    ///
    /// # Errors
    /// If the trail has stopped or the record could not be written.
    pub async fn append(&self, record: &Record, durability: Durability) -> Result<(), NotRecorded> {
        // Every caller here can wait: when the queue is long, they do.
        let wait = durability == Durability::BeforeResponse || self.is_full();
        match self.push(record, wait)? {
            Some(synced) => synced.await.ok().filter(|ok| *ok).map(drop).ok_or(NotRecorded),
            None => Ok(()),
        }
    }

    /// Queues `record` for the next batch, from code that cannot wait (S3's
    /// calls to KMS inside a request). A record the trail cannot take is
    /// logged as lost.
    pub fn append_batched(&self, record: &Record) {
        if self.push(record, false).is_err() {
            tracing::error!(event = %record.event_name, "an audit record was lost: the trail has stopped or cannot keep up");
        }
    }

    fn is_full(&self) -> bool {
        self.shared.as_ref().is_some_and(|shared| {
            let queue = shared.lock();
            queue.records.len() >= BACK_PRESSURE_AT || queue.bytes >= BACK_PRESSURE_BYTES
        })
    }

    /// Queues `record`; returns what to await when the caller must wait.
    fn push(&self, record: &Record, wait: bool) -> Result<Option<oneshot::Receiver<bool>>, NotRecorded> {
        let Some(shared) = &self.shared else { return Ok(None) };
        let object = serde_json::to_vec(record).map_err(|_| NotRecorded)?;
        let mut queue = shared.lock();
        if queue.stopped {
            return Err(NotRecorded);
        }
        let full = queue.records.len() >= BACK_PRESSURE_AT || queue.bytes >= BACK_PRESSURE_BYTES;
        if full && !wait && queue.bytes >= 2 * BACK_PRESSURE_BYTES {
            // A caller that cannot wait, on a disk that does not keep up:
            // the record is lost, loudly, rather than memory without end.
            return Err(NotRecorded);
        }
        queue.bytes += object.len();
        queue.records.push(object);
        let queued = queue.records.len();
        let synced = wait.then(|| {
            let (synced, durable) = oneshot::channel();
            queue.waiting.push(synced);
            durable
        });
        drop(queue);
        if synced.is_some() || full || queued == WAKE_AT {
            shared.wake.notify_one();
        }
        Ok(synced)
    }

    /// Writes what is queued, closes the file with its digest, and stops.
    pub async fn close(&self) {
        let Some(shared) = &self.shared else { return };
        let (tx, rx) = oneshot::channel();
        {
            let mut queue = shared.lock();
            if queue.stopped || queue.closing.is_some() {
                return;
            }
            queue.closing = Some(tx);
        }
        shared.wake.notify_one();
        let _ = rx.await;
    }
}

impl Drop for AuditLog {
    /// A trail dropped without [`AuditLog::close`] is still closed, in the background.
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            let mut queue = shared.lock();
            if queue.closing.is_none() {
                queue.closing = Some(oneshot::channel().0);
            }
            shared.wake.notify_one();
        }
    }
}

/// Marks the trail stopped when the writer thread ends, however it ends
/// (a panic too): callers still waiting are told their record was not
/// made durable, and later ones are refused rather than left waiting.
struct Stopped<'a>(&'a Shared);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.lock();
        queue.stopped = true;
        for waiter in queue.waiting.drain(..) {
            let _ = waiter.send(false);
        }
        if let Some(closing) = queue.closing.take() {
            let _ = closing.send(());
        }
        queue.records.clear();
        queue.bytes = 0;
    }
}

/// The writer thread: takes what is queued when woken or when the interval
/// is up, writes it, and syncs when a caller waits or the interval is up.
/// After a failed write or sync it stops: what it had acknowledged stays
/// true, and nothing is acknowledged over a hole. The next start recovers
/// the file.
fn run(shared: &Shared, mut trail: Trail) {
    let mut last_sync = Instant::now();
    loop {
        let (records, waiting, closing) = {
            let queue = shared.lock();
            let idle = |q: &mut Queue| {
                q.waiting.is_empty()
                    && q.closing.is_none()
                    && q.records.len() < WAKE_AT
                    && q.bytes < BACK_PRESSURE_BYTES
            };
            let timeout = BATCH_INTERVAL.saturating_sub(last_sync.elapsed());
            let (mut queue, _) =
                shared.wake.wait_timeout_while(queue, timeout, idle).unwrap_or_else(PoisonError::into_inner);
            queue.bytes = 0;
            let closing = queue.closing.take();
            // Nothing queued after this could be written.
            queue.stopped |= closing.is_some();
            (std::mem::take(&mut queue.records), std::mem::take(&mut queue.waiting), closing)
        };
        let due = !waiting.is_empty() || closing.is_some() || last_sync.elapsed() >= BATCH_INTERVAL;
        let written = records.iter().try_for_each(|object| trail.append_record(object)).and_then(|()| trail.flush(due));
        if due {
            last_sync = Instant::now();
        }
        let ok = written.is_ok();
        for waiter in waiting {
            let _ = waiter.send(ok);
        }
        if let Err(e) = written {
            shared.lock().stopped = true;
            tracing::error!(error = %e, dir = %trail.dir.display(), "audit trail stopped: records not written");
            return;
        }
        if let Some(done) = closing {
            if let Err(e) = trail.close(Closing::Shutdown) {
                tracing::error!(error = %e, dir = %trail.dir.display(), "audit file not closed");
            }
            let _ = done.send(());
            return;
        }
    }
}

/// The open file of a trail.
struct Trail {
    dir: PathBuf,
    region: String,
    key: ChainKey,
    max_file_bytes: u64,
    file: BufWriter<File>,
    sequence: u64,
    bytes: u64,
    records: u64,
    last: Tag,
    unsynced: bool,
}

impl Trail {
    /// Closes a file a crash left open and begins the next one.
    fn resume(options: &Options, key: ChainKey) -> std::io::Result<Self> {
        tern_store::private::dir_all(&options.dir)?;
        let existing = files::list(&options.dir)?;
        let (sequence, last) = match existing.last() {
            None => (1, GENESIS),
            Some((sequence, path)) => recover(path, *sequence, &key, &existing)?,
        };
        let (file, bytes, last) = begin(&options.dir, &options.region, &key, sequence, &last)?;
        Ok(Self {
            dir: options.dir.clone(),
            region: options.region.clone(),
            key,
            max_file_bytes: options.max_file_bytes,
            file,
            sequence,
            bytes,
            records: 0,
            last,
            unsynced: false,
        })
    }

    fn append(&mut self, object: &[u8]) -> std::io::Result<()> {
        let (line, tag) = self.key.seal(&self.last, object);
        self.file.write_all(&line)?;
        self.bytes += line.len() as u64;
        self.last = tag;
        self.unsynced = true;
        Ok(())
    }

    fn append_record(&mut self, object: &[u8]) -> std::io::Result<()> {
        self.append(object)?;
        self.records += 1;
        if self.bytes >= self.max_file_bytes {
            self.close(Closing::Rollover)?;
            let next = self.sequence.checked_add(1).ok_or_else(|| invalid(&self.dir))?;
            let (file, bytes, last) = begin(&self.dir, &self.region, &self.key, next, &self.last)?;
            (self.file, self.bytes, self.last, self.records, self.sequence) = (file, bytes, last, 0, next);
        }
        Ok(())
    }

    /// Hands buffered lines to the file and, with `sync`, makes them durable.
    fn flush(&mut self, sync: bool) -> std::io::Result<()> {
        self.file.flush()?;
        if sync && self.unsynced {
            self.file.get_ref().sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Ends the file with its digest, synced.
    fn close(&mut self, reason: Closing) -> std::io::Result<()> {
        self.append(&files::digest_object(self.sequence, self.records, reason))?;
        self.flush(true)
    }
}

/// Creates file `sequence` with its header, synced along with its directory entry.
fn begin(
    dir: &Path,
    region: &str,
    key: &ChainKey,
    sequence: u64,
    previous: &Tag,
) -> std::io::Result<(BufWriter<File>, u64, Tag)> {
    let path = dir.join(files::file_name(sequence));
    let mut file = tern_store::private::create_new(&path)?;
    let (line, tag) = key.seal(previous, &files::header_object(region, sequence, previous));
    file.write_all(&line)?;
    file.sync_data()?;
    File::open(dir)?.sync_all()?;
    Ok((BufWriter::with_capacity(64 * 1024, file), line.len() as u64, tag))
}

/// The sequence and tag a trail continues from after its newest file,
/// at `path`. A file left open by a crash loses its torn last line (never
/// acknowledged: it was never synced) and is closed with a `recovered`
/// digest; one with no complete line holds nothing and is removed. A file
/// whose lines do not verify is left as found, for `verify` to report, and
/// the trail goes on in a new file rather than seal over it.
fn recover(path: &Path, sequence: u64, key: &ChainKey, existing: &[(u64, PathBuf)]) -> std::io::Result<(u64, Tag)> {
    let bytes = std::fs::read(path)?;
    let complete = files::complete_lines(&bytes).len();
    if complete == 0 {
        std::fs::remove_file(path)?;
        let before = existing.iter().rev().nth(1).map(|(_, p)| last_line_tag(p)).transpose()?.flatten();
        return Ok((sequence, before.unwrap_or(GENESIS)));
    }
    let next = sequence.checked_add(1).ok_or_else(|| invalid(path))?;
    let (summary, tag) = match crate::verify::check_file(&bytes[..complete], key, None, sequence) {
        Ok(checked) => checked,
        Err((line, what)) => {
            tracing::error!(file = %path.display(), line, what, "audit file does not verify; left as found");
            return Ok((next, GENESIS));
        }
    };
    if summary.closed {
        return Ok((next, tag));
    }
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(complete as u64)?;
    file.seek(std::io::SeekFrom::End(0))?;
    let (line, tag) = key.seal(&tag, &files::digest_object(sequence, summary.records, Closing::Recovered));
    file.write_all(&line)?;
    file.sync_data()?;
    let torn = bytes.len() - complete;
    tracing::warn!(file = %path.display(), records = summary.records, torn, "closed an audit file left open by a crash");
    Ok((next, tag))
}

fn last_line_tag(path: &Path) -> std::io::Result<Option<Tag>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).and_then(claimed_tag))
}

/// A file numbered so high that no file can follow it (planted, not made).
fn invalid(path: &Path) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: no audit file can follow it", path.display()))
}
