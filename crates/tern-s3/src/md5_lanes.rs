//! The `ETag`'s MD5 for uploads that arrive together, computed together.
//!
//! MD5 is serial within one body: one upload cannot hash faster than one
//! core's scalar MD5 (~0.8 GB/s here), and MD5 was a third of a PUT's CPU.
//! Independent bodies can share SIMD lanes (md5-many: 8 with AVX2, 16 with
//! AVX-512; eight 1 MiB bodies hash at ~6× the scalar rate). So a chunk is
//! not hashed when it arrives: it waits in a queue shared by every upload,
//! and whoever needs a digest, or brings the bytes waiting to
//! [`PASS_BYTES`], hashes everything waiting in one multi-buffer pass.
//! There is no thread of its own and no hand-off: a pass runs on a task
//! that had hashing to do anyway.

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use md5_many::{Md5Many, Md5State};
use tokio::sync::Notify;

/// Bytes waiting (of all uploads) that start a pass: enough for several
/// uploads to fill lanes side by side, and a bound on the memory held.
const PASS_BYTES: usize = 2 << 20;

/// The process's queue: uploads of every region share the lanes.
static SHARED: LazyLock<Arc<Lanes>> = LazyLock::new(|| Arc::new(Lanes::default()));

/// One body's MD5. Dropped unfinished, it leaves nothing waiting.
pub(crate) struct Md5Lane {
    upload: Arc<Upload>,
    lanes: Arc<Lanes>,
}

#[derive(Default)]
struct Upload {
    hashing: Mutex<Hashing>,
    /// Told when a pass hands this upload's state back.
    returned: Notify,
}

#[derive(Default)]
struct Hashing {
    state: Md5State,
    /// Chunks received and not hashed yet, in order.
    waiting: VecDeque<Bytes>,
    waiting_len: usize,
    /// In the shared queue. Never while `in_pass`.
    queued: bool,
    /// A pass holds the state (it comes back through `returned`).
    in_pass: bool,
    /// A pass panicked part way: the state is not to be trusted.
    broken: bool,
}

#[derive(Default)]
struct Lanes {
    engine: Md5Many,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// Uploads with chunks waiting, each once.
    uploads: Vec<Arc<Upload>>,
    /// Bytes pushed since the last pass took the queue.
    bytes: usize,
}

impl Md5Lane {
    pub(crate) fn new() -> Self {
        Self::on(&SHARED)
    }

    fn on(lanes: &Arc<Lanes>) -> Self {
        Self { upload: Arc::default(), lanes: Arc::clone(lanes) }
    }

    /// Adds the next chunk of the body; may run a pass.
    pub(crate) fn push(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let len = chunk.len();
        let enqueue = {
            let mut hashing = lock(&self.upload.hashing);
            hashing.waiting_len += len;
            hashing.waiting.push_back(chunk);
            let enqueue = !hashing.queued && !hashing.in_pass;
            hashing.queued |= enqueue;
            enqueue
        };
        let full = {
            let mut queue = lock(&self.lanes.queue);
            if enqueue {
                queue.uploads.push(Arc::clone(&self.upload));
            }
            queue.bytes += len;
            queue.bytes >= PASS_BYTES
        };
        if full {
            self.lanes.run_pass();
        }
    }

    /// The digest of everything pushed.
    pub(crate) async fn finish(self) -> std::io::Result<[u8; 16]> {
        loop {
            let in_pass = {
                let hashing = lock(&self.upload.hashing);
                if hashing.broken {
                    return Err(std::io::Error::other("an MD5 pass failed"));
                }
                if !hashing.in_pass && hashing.waiting.is_empty() {
                    return Ok(hashing.state.finalize());
                }
                hashing.in_pass
            };
            if in_pass {
                self.upload.returned.notified().await;
            } else {
                // Waiting chunks mean queued: this pass takes them, or one
                // already running has, and then it is `in_pass`.
                self.lanes.run_pass();
            }
        }
    }
}

impl Drop for Md5Lane {
    fn drop(&mut self) {
        let mut hashing = lock(&self.upload.hashing);
        hashing.waiting.clear();
        hashing.waiting_len = 0;
    }
}

/// An upload's state and waiting chunks, taken by a pass.
struct Taken {
    upload: Arc<Upload>,
    state: Md5State,
    chunks: VecDeque<Bytes>,
}

impl Lanes {
    /// Hashes the waiting chunks of every queued upload.
    fn run_pass(&self) {
        let uploads = std::mem::take(&mut *lock(&self.queue)).uploads;
        let mut taken: Vec<Taken> = uploads.into_iter().filter_map(take_waiting).collect();
        if taken.is_empty() {
            return;
        }
        // A panic here would otherwise leave every upload in the pass waiting forever.
        let hashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.hash(&mut taken))).is_ok();
        for Taken { upload, state, .. } in taken {
            let mut hashing = lock(&upload.hashing);
            hashing.state = state;
            hashing.in_pass = false;
            hashing.broken |= !hashed;
            if !hashing.waiting.is_empty() {
                hashing.queued = true;
                let mut queue = lock(&self.queue);
                queue.uploads.push(Arc::clone(&upload));
                queue.bytes += hashing.waiting_len;
            }
            drop(hashing);
            upload.returned.notify_one();
        }
    }

    /// Runs the uploads side by side, in equal steps that end where the
    /// shortest current chunk ends; the last one left runs alone.
    fn hash(&self, taken: &mut [Taken]) {
        loop {
            let active: Vec<usize> = (0..taken.len()).filter(|&i| !taken[i].chunks.is_empty()).collect();
            match active.as_slice() {
                [] => return,
                // One stream is faster on the scalar compressor than in a lane.
                &[only] => {
                    let Taken { state, chunks, .. } = &mut taken[only];
                    chunks.drain(..).for_each(|chunk| state.update(&chunk));
                    return;
                }
                _ => {}
            }
            let step = active.iter().map(|&i| taken[i].chunks[0].len()).min().unwrap_or(0);
            let mut states: Vec<Md5State> = active.iter().map(|&i| taken[i].state).collect();
            let inputs: Vec<&[u8]> = active.iter().map(|&i| &taken[i].chunks[0][..step]).collect();
            self.update_padded(&mut states, &inputs);
            for (i, state) in active.into_iter().zip(states) {
                let Taken { state: kept, chunks, .. } = &mut taken[i];
                *kept = state;
                if chunks[0].len() == step {
                    chunks.pop_front();
                } else {
                    chunks[0] = chunks[0].slice(step..);
                }
            }
        }
    }

    /// `update_many` in groups of the widths md5-many has whole kernels
    /// for. Other counts take a generic path that is slower than scalar
    /// (six streams of 1 MiB: 216 MB/s together; eight: 4.9 GB/s), so a
    /// group is filled up with throwaway copies of its first lane.
    fn update_padded(&self, states: &mut [Md5State], inputs: &[&[u8]]) {
        let native = self.engine.lanes();
        for (states, inputs) in states.chunks_mut(native).zip(inputs.chunks(native)) {
            let width = if states.len() <= 8 && native >= 8 { 8 } else { native };
            let mut padded_states = states.to_vec();
            padded_states.resize(width, states[0]);
            let mut padded_inputs = inputs.to_vec();
            padded_inputs.resize(width, inputs[0]);
            self.engine.update_many(&mut padded_states, &padded_inputs);
            states.copy_from_slice(&padded_states[..states.len()]);
        }
    }
}

/// Takes a queued upload's waiting chunks and state for a pass, if it has any.
fn take_waiting(upload: Arc<Upload>) -> Option<Taken> {
    let mut hashing = lock(&upload.hashing);
    hashing.queued = false;
    if hashing.waiting.is_empty() {
        return None;
    }
    hashing.in_pass = true;
    hashing.waiting_len = 0;
    let (state, chunks) = (hashing.state, std::mem::take(&mut hashing.waiting));
    drop(hashing);
    Some(Taken { upload, state, chunks })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use md5::Digest as _;

    use super::*;

    /// A body of `len` bytes that differs per `seed`.
    fn body(seed: u64, len: usize) -> Bytes {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        Bytes::from(bytes)
    }

    fn expected(data: &[u8]) -> String {
        hex::encode(md5::Md5::digest(data))
    }

    fn push_in_chunks(lane: &Md5Lane, data: &Bytes, chunk: usize) {
        for start in (0..data.len()).step_by(chunk) {
            lane.push(data.slice(start..(start + chunk).min(data.len())));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_uploads_hash_as_each_would_alone() {
        let lanes = Arc::new(Lanes::default());
        // Lengths off block boundaries; chunks of a byte to past PASS_BYTES.
        let shapes =
            [(0, 1), (63, 7), (65_537, 1000), (1 << 20, 64 * 1024), (3_000_001, 170_000), (5 << 20, PASS_BYTES + 1)];
        let mut uploads = Vec::new();
        for round in 0..4u64 {
            for (i, &(len, chunk)) in (0u64..).zip(&shapes) {
                let lanes = Arc::clone(&lanes);
                uploads.push(tokio::spawn(async move {
                    let data = body(round * 100 + i, len);
                    let lane = Md5Lane::on(&lanes);
                    for start in (0..data.len()).step_by(chunk) {
                        lane.push(data.slice(start..(start + chunk).min(data.len())));
                        tokio::task::yield_now().await;
                    }
                    (hex::encode(lane.finish().await.unwrap()), expected(&data))
                }));
            }
        }
        for upload in uploads {
            let (got, expected) = upload.await.unwrap();
            assert_eq!(got, expected);
        }
        assert!(lock(&lanes.queue).uploads.is_empty());
    }

    #[tokio::test]
    async fn one_pass_hashes_uploads_of_unequal_lengths_side_by_side() {
        let lanes = Arc::new(Lanes::default());
        // More uploads than the widest lanes, so some passes run while pushing.
        let uploads: Vec<(Md5Lane, Bytes)> =
            (0..18u64).map(|i| (Md5Lane::on(&lanes), body(i, 5_000 + 70_001 * usize::try_from(i).unwrap()))).collect();
        for (i, (lane, data)) in (0..).zip(&uploads) {
            push_in_chunks(lane, data, 9_000 + 4_099 * i);
        }
        for (lane, data) in uploads {
            assert_eq!(hex::encode(lane.finish().await.unwrap()), expected(&data));
        }
    }

    #[tokio::test]
    async fn bytes_waiting_past_pass_bytes_are_hashed_at_once() {
        let lanes = Arc::new(Lanes::default());
        let (first, second) = (Md5Lane::on(&lanes), Md5Lane::on(&lanes));
        let (a, b) = (body(7, PASS_BYTES / 2), body(8, PASS_BYTES / 2 + 10));
        push_in_chunks(&first, &a, PASS_BYTES / 8);
        push_in_chunks(&second, &b, PASS_BYTES / 8);
        assert!(lock(&first.upload.hashing).waiting.is_empty());
        assert_eq!(lock(&second.upload.hashing).waiting_len, 10);
        assert_eq!(hex::encode(first.finish().await.unwrap()), expected(&a));
        assert_eq!(hex::encode(second.finish().await.unwrap()), expected(&b));
    }

    #[test]
    fn a_dropped_upload_leaves_nothing_waiting() {
        let lanes = Arc::new(Lanes::default());
        let lane = Md5Lane::on(&lanes);
        lane.push(body(1, 4096));
        let upload = Arc::clone(&lane.upload);
        drop(lane);
        assert!(lock(&upload.hashing).waiting.is_empty());
        lanes.run_pass();
        assert!(lock(&lanes.queue).uploads.is_empty());
    }
}
