//! Appending to a region's trail.
//!
//! One thread owns the open file. Callers hand it serialized records over
//! a bounded channel (a region whose disk cannot keep up slows its callers
//! rather than queueing without end). The thread writes whatever has
//! arrived in one go and calls `fdatasync` when a caller is waiting for its
//! record to be durable, so concurrent management calls share one sync; a
//! tick every [`BATCH_INTERVAL`] syncs batched records that nobody waits for.

use std::fs::File;
use std::io::{BufWriter, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use crate::chain::{ChainKey, GENESIS, Tag, claimed_tag};
use crate::files::{self, Closing, Line};
use crate::record::{Durability, Record};

/// The longest a batched record waits to be synced: what a crash can lose
/// of KMS data-plane records (those not yet synced by a management call).
pub const BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// Records waiting for the writer, all callers together.
const QUEUE: usize = 16 * 1024;

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

enum Entry {
    Record { object: Vec<u8>, durable: Option<oneshot::Sender<bool>> },
    Tick,
    Close(oneshot::Sender<()>),
}

/// A region's audit trail, or none (`[audit] enabled = false`).
pub struct AuditLog {
    sender: Option<mpsc::Sender<Entry>>,
}

impl AuditLog {
    /// A trail that records nothing.
    #[must_use]
    pub fn disabled() -> Self {
        Self { sender: None }
    }

    /// Opens the trail in `options.dir`: a file a crash left open is closed
    /// first, then a new file is begun. Needs a Tokio runtime (for the tick).
    ///
    /// # Errors
    /// If the directory or its files cannot be read or written.
    pub fn open(options: &Options, key: ChainKey) -> std::io::Result<Self> {
        let trail = Trail::resume(options, key)?;
        let (sender, receiver) = mpsc::channel(QUEUE);
        std::thread::Builder::new().name(format!("audit-{}", options.region)).spawn(move || run(receiver, trail))?;
        let ticks = sender.downgrade();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(BATCH_INTERVAL);
            loop {
                interval.tick().await;
                let Some(sender) = ticks.upgrade() else { return };
                // A full queue will be written anyway.
                let _ = sender.try_send(Entry::Tick);
            }
        });
        Ok(Self { sender: Some(sender) })
    }

    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Appends `record`; with [`Durability::BeforeResponse`], returns once
    /// it is synced to disk.
    ///
    /// # Errors
    /// If the trail is closed or the record could not be written.
    pub async fn append(&self, record: &Record, durability: Durability) -> Result<(), NotRecorded> {
        let Some(sender) = &self.sender else { return Ok(()) };
        if durability == Durability::Batched {
            self.append_batched(record);
            return Ok(());
        }
        let object = serde_json::to_vec(record).map_err(|_| NotRecorded)?;
        let (durable, synced) = oneshot::channel();
        sender.send(Entry::Record { object, durable: Some(durable) }).await.map_err(|_| NotRecorded)?;
        synced.await.ok().filter(|ok| *ok).map(drop).ok_or(NotRecorded)
    }

    /// Queues `record` for the next batch, from code that cannot wait.
    /// Should the queue be full, a task waits for room: a record is
    /// delayed, never dropped.
    pub fn append_batched(&self, record: &Record) {
        let Some(sender) = &self.sender else { return };
        let Ok(object) = serde_json::to_vec(record) else { return };
        if let Err(mpsc::error::TrySendError::Full(entry)) = sender.try_send(Entry::Record { object, durable: None }) {
            let sender = sender.clone();
            tokio::spawn(async move { sender.send(entry).await });
        }
    }

    /// Writes what is queued, closes the file with its digest, and stops.
    pub async fn close(&self) {
        let Some(sender) = &self.sender else { return };
        let (tx, rx) = oneshot::channel();
        if sender.send(Entry::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// The writer thread: batches what has arrived, syncs when asked to.
fn run(mut receiver: mpsc::Receiver<Entry>, mut trail: Trail) {
    let mut batch = Vec::new();
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < 1024
            && let Ok(more) = receiver.try_recv()
        {
            batch.push(more);
        }
        let mut waiting = Vec::new();
        let mut sync = false;
        let mut closing = None;
        let mut written = Ok(());
        for entry in batch.drain(..) {
            match entry {
                Entry::Record { object, durable } => {
                    written = written.and_then(|()| trail.append_record(&object));
                    sync |= durable.is_some();
                    waiting.extend(durable);
                }
                Entry::Tick => sync |= trail.unsynced,
                Entry::Close(done) => closing = Some(done),
            }
        }
        let result = written.and_then(|()| trail.flush(sync));
        if let Err(e) = &result {
            tracing::error!(error = %e, dir = %trail.dir.display(), "audit records not written");
        }
        for waiter in waiting {
            let _ = waiter.send(result.is_ok());
        }
        if let Some(done) = closing {
            close(&mut trail, Closing::Shutdown);
            let _ = done.send(());
            return;
        }
    }
    close(&mut trail, Closing::Shutdown);
}

fn close(trail: &mut Trail, reason: Closing) {
    if let Err(e) = trail.close(reason) {
        tracing::error!(error = %e, dir = %trail.dir.display(), "audit file not closed");
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
            let (file, bytes, last) = begin(&self.dir, &self.region, &self.key, self.sequence + 1, &self.last)?;
            (self.file, self.bytes, self.last, self.records) = (file, bytes, last, 0);
            self.sequence += 1;
        }
        Ok(())
    }

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
/// digest; one with no complete line holds nothing and is removed.
fn recover(path: &Path, sequence: u64, key: &ChainKey, existing: &[(u64, PathBuf)]) -> std::io::Result<(u64, Tag)> {
    let bytes = std::fs::read(path)?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |at| at + 1);
    let lines: Vec<&[u8]> = bytes[..complete].split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let Some(last) = lines.last() else {
        std::fs::remove_file(path)?;
        let before = existing.iter().rev().nth(1).map(|(_, p)| last_line_tag(p)).transpose()?.flatten();
        return Ok((sequence, before.unwrap_or(GENESIS)));
    };
    let Some(last_tag) = claimed_tag(last) else {
        // Left as found, for `verify` to report; the trail goes on after it.
        tracing::error!(file = %path.display(), "audit file ends with a malformed line");
        return Ok((sequence + 1, GENESIS));
    };
    if let Some(Line::Digest(_)) = Line::classify(last) {
        return Ok((sequence + 1, last_tag));
    }
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(complete as u64)?;
    file.seek(std::io::SeekFrom::End(0))?;
    let records = lines.iter().filter(|l| Line::classify(l) == Some(Line::Record)).count() as u64;
    let (line, tag) = key.seal(&last_tag, &files::digest_object(sequence, records, Closing::Recovered));
    file.write_all(&line)?;
    file.sync_data()?;
    tracing::warn!(file = %path.display(), records, "closed an audit file left open by a crash");
    Ok((sequence + 1, tag))
}

fn last_line_tag(path: &Path) -> std::io::Result<Option<Tag>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).and_then(claimed_tag))
}
