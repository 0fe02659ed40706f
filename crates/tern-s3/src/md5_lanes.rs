//! The `ETag`'s MD5 for uploads that arrive together, computed together.
//!
//! MD5 is serial within one body: one upload cannot hash faster than one
//! core's scalar MD5 (~0.8 GB/s here), and MD5 was a third of a PUT's CPU.
//! Independent bodies can share SIMD lanes (md5-many: 8 with AVX2, 16 with
//! AVX-512; eight 1 MiB bodies hash at ~6× the scalar rate). So a chunk is
//! not hashed when it arrives: it waits in a queue shared by the region's
//! uploads, and whoever needs a digest, or brings the queue to its share of
//! [`PASS_BYTES`] or [`PASS_UPLOADS`], hashes what waits, a bounded share of
//! each upload, in one multi-buffer pass. There is no thread of its own and no hand-off: a pass
//! runs on a task that had hashing to do anyway.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use md5_many::{Md5Many, Md5State};
use tokio::sync::Notify;

/// Bytes waiting (of all uploads) that start a pass whatever else holds:
/// the most memory the queue keeps.
const PASS_BYTES: usize = 8 << 20;
/// The most of one upload a pass hashes (a pass holds its thread ~3 ms at
/// most), and the bytes per waiting upload (up to four) that start a pass
/// when several wait, or when one uploads alone.
const PASS_SHARE: usize = 2 << 20;
/// The least of the longest waiting upload a pass hashes, however little
/// the others have.
const MIN_SHARE: usize = 512 << 10;
/// Uploads waiting that start a pass, however few bytes they have.
const PASS_UPLOADS: usize = 64;
/// Smaller chunks are copied together before they wait, so that a pass
/// never steps through a body a few bytes at a time (its steps end where
/// the shortest waiting piece ends) and never holds a large read buffer
/// for a small piece of it.
const PIECE_MIN: usize = 16 * 1024;

/// One body's MD5. Dropped unfinished, it leaves nothing waiting.
pub(crate) struct Md5Lane {
    upload: Arc<Upload>,
    lanes: Arc<Md5Lanes>,
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
    /// Pieces received and not hashed yet, in order; every one but the
    /// last is at least `PIECE_MIN` long (but the first, where a pass
    /// stopped part way).
    waiting: VecDeque<Bytes>,
    /// Small chunks being copied together, after `waiting` (whose last
    /// piece is then not small).
    gathering: BytesMut,
    /// In the shared queue. Never while `in_pass`.
    queued: bool,
    /// A pass holds the state (it comes back through `returned`).
    in_pass: bool,
    standing: Standing,
}

/// Whether an upload's bytes are still to be hashed.
#[derive(Default, PartialEq, Eq)]
enum Standing {
    #[default]
    Sound,
    /// A pass panicked part way: the state is not to be trusted.
    Broken,
    /// Its [`Md5Lane`] is gone: nobody will read the digest.
    Dropped,
}

impl Hashing {
    /// Keeps `chunk` for a pass. A small chunk after another small one is
    /// copied together with it, so at most the last piece is small.
    fn add(&mut self, chunk: Bytes) {
        if chunk.len() >= PIECE_MIN {
            self.end_gathering();
            self.waiting.push_back(chunk);
            return;
        }
        if self.gathering.is_empty() {
            match self.waiting.pop_back() {
                Some(small) if small.len() < PIECE_MIN => self.gathering.extend_from_slice(&small),
                other => {
                    self.waiting.extend(other);
                    self.waiting.push_back(chunk);
                    return;
                }
            }
        }
        self.gathering.extend_from_slice(&chunk);
        if self.gathering.len() >= PIECE_MIN {
            self.waiting.push_back(self.gathering.split().freeze());
        }
    }

    fn end_gathering(&mut self) {
        if !self.gathering.is_empty() {
            self.waiting.push_back(self.gathering.split().freeze());
        }
    }

    fn has_waiting(&self) -> bool {
        !self.waiting.is_empty() || !self.gathering.is_empty()
    }

    fn waiting_bytes(&self) -> usize {
        self.waiting.iter().map(Bytes::len).sum::<usize>() + self.gathering.len()
    }
}

/// A region's queue of uploads waiting to be hashed.
pub struct Md5Lanes {
    engine: Md5Many,
    queue: Mutex<Queue>,
}

impl Default for Md5Lanes {
    fn default() -> Self {
        Self::new(Md5Many::new())
    }
}

#[derive(Default)]
struct Queue {
    /// Uploads with chunks waiting, each once.
    uploads: Vec<Arc<Upload>>,
    /// Bytes pushed since a pass last took the queue. Pushes made while
    /// their upload was in a pass are counted again when it comes back:
    /// a pass may start early, never late.
    bytes: usize,
    /// Uploads begun and not finished: while another is under way, one
    /// upload's bytes wait for it (it is most often writing a block).
    live: usize,
}

impl Md5Lane {
    pub(crate) fn on(lanes: &Arc<Md5Lanes>) -> Self {
        lock(&lanes.queue).live += 1;
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
            if hashing.standing != Standing::Sound {
                return;
            }
            hashing.add(chunk);
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
            pass_due(&queue)
        };
        if full {
            self.lanes.run_pass(None);
        }
    }

    /// The digest of everything pushed.
    pub(crate) async fn finish(self) -> std::io::Result<[u8; 16]> {
        loop {
            let in_pass = {
                let hashing = lock(&self.upload.hashing);
                if hashing.standing == Standing::Broken {
                    return Err(std::io::Error::other("an MD5 pass failed"));
                }
                if !hashing.in_pass && !hashing.has_waiting() {
                    return Ok(hashing.state.finalize());
                }
                hashing.in_pass
            };
            // Waiting pieces mean queued: this pass takes them, or one that
            // has just taken the queue will, and tells us when it is done.
            if in_pass || !self.lanes.run_pass(Some(&self.upload)) {
                self.upload.returned.notified().await;
            } else {
                // A pass hashes a bounded share: others run before the next.
                tokio::task::yield_now().await;
            }
        }
    }
}

impl Drop for Md5Lane {
    fn drop(&mut self) {
        let queued = {
            let mut hashing = lock(&self.upload.hashing);
            hashing.waiting = VecDeque::new();
            hashing.gathering = BytesMut::new();
            hashing.standing = Standing::Dropped;
            hashing.queued
        };
        let mut queue = lock(&self.lanes.queue);
        queue.live -= 1;
        if queued {
            queue.uploads.retain(|upload| !Arc::ptr_eq(upload, &self.upload));
        }
    }
}

/// An upload's state and waiting pieces, taken by a pass.
struct Taken {
    upload: Arc<Upload>,
    state: Md5State,
    pieces: VecDeque<Bytes>,
    /// Bytes this pass may still hash of it.
    budget: usize,
}

impl Taken {
    fn waiting(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// The next step's most: to the end of the first piece, or of the budget.
    fn to_hash(&self) -> usize {
        self.pieces.front().map_or(0, |piece| piece.len().min(self.budget))
    }

    fn advance(&mut self, n: usize) {
        if self.pieces[0].len() == n {
            self.pieces.pop_front();
        } else {
            self.pieces[0] = self.pieces[0].slice(n..);
        }
        self.budget -= n;
    }
}

/// How much of each upload a pass hashes: as far as the second-longest
/// waiting upload reaches, so that every step has two lanes or more (for a
/// finishing upload, all it has, and the others as far; for one upload
/// alone, all it has); never more than [`PASS_SHARE`], never less than
/// [`MIN_SHARE`] of the longest.
fn share(taken: &[Taken], finisher: Option<usize>) -> usize {
    let reach = if let Some(f) = finisher {
        taken[f].waiting()
    } else {
        let mut lengths: Vec<usize> = taken.iter().map(Taken::waiting).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        match lengths.as_slice() {
            [_, second, ..] => (*second).max(MIN_SHARE),
            [only] => *only,
            [] => 0,
        }
    };
    reach.min(PASS_SHARE)
}

impl Md5Lanes {
    fn new(engine: Md5Many) -> Self {
        Self { engine, queue: Mutex::default() }
    }

    /// Hashes the waiting pieces of every queued upload; whether there were any.
    fn run_pass(&self, finisher: Option<&Arc<Upload>>) -> bool {
        let uploads = {
            let mut queue = lock(&self.queue);
            queue.bytes = 0;
            std::mem::take(&mut queue.uploads)
        };
        let mut taken: Vec<Taken> = uploads.into_iter().filter_map(take_waiting).collect();
        if taken.is_empty() {
            return false;
        }
        let finisher = finisher.and_then(|f| taken.iter().position(|t| Arc::ptr_eq(&t.upload, f)));
        let share = share(&taken, finisher).next_multiple_of(64);
        for t in &mut taken {
            // Whatever chunks come, no upload keeps more than PASS_SHARE waiting.
            t.budget = share.max(t.waiting().saturating_sub(PASS_SHARE));
        }
        // A panic here would otherwise leave every upload in the pass waiting forever.
        let hashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.hash(&mut taken))).is_ok();
        self.hand_back(taken, hashed);
        true
    }

    /// Returns each upload's state and what the pass left of it (queued
    /// again), and tells whoever waits for it.
    fn hand_back(&self, taken: Vec<Taken>, hashed: bool) {
        for Taken { upload, state, mut pieces, .. } in taken {
            let mut hashing = lock(&upload.hashing);
            hashing.state = state;
            hashing.in_pass = false;
            if !hashed && hashing.standing == Standing::Sound {
                hashing.standing = Standing::Broken;
            }
            if hashing.standing == Standing::Sound {
                // What this pass left comes before what arrived meanwhile.
                pieces.append(&mut hashing.waiting);
                hashing.waiting = pieces;
            } else {
                // Nobody will read this digest: nothing of it waits any more.
                hashing.waiting.clear();
                hashing.gathering.clear();
            }
            if hashing.has_waiting() {
                hashing.queued = true;
                let mut queue = lock(&self.queue);
                queue.uploads.push(Arc::clone(&upload));
                queue.bytes += hashing.waiting_bytes();
            }
            drop(hashing);
            upload.returned.notify_one();
        }
    }

    /// Runs the uploads side by side, each as far as its budget, in equal
    /// steps that end where the shortest current piece (or budget) ends;
    /// the last one left runs alone.
    fn hash(&self, taken: &mut [Taken]) {
        loop {
            let active: Vec<usize> = (0..taken.len()).filter(|&i| taken[i].to_hash() > 0).collect();
            match active.as_slice() {
                [] => return,
                // One stream is faster on the scalar compressor than in a lane.
                &[only] => {
                    let alone = &mut taken[only];
                    loop {
                        let n = alone.to_hash();
                        if n == 0 {
                            return;
                        }
                        alone.state.update(&alone.pieces[0][..n]);
                        alone.advance(n);
                    }
                }
                _ => {}
            }
            let step = active.iter().map(|&i| taken[i].to_hash()).min().unwrap_or(0);
            let mut states: Vec<Md5State> = active.iter().map(|&i| taken[i].state).collect();
            let inputs: Vec<&[u8]> = active.iter().map(|&i| &taken[i].pieces[0][..step]).collect();
            self.update_padded(&mut states, &inputs);
            for (i, state) in active.into_iter().zip(states) {
                taken[i].state = state;
                taken[i].advance(step);
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

/// Takes a queued upload's waiting pieces and state for a pass, if it has any.
fn take_waiting(upload: Arc<Upload>) -> Option<Taken> {
    let mut hashing = lock(&upload.hashing);
    debug_assert!(!hashing.in_pass, "a queued upload is in no pass");
    hashing.queued = false;
    if !hashing.has_waiting() {
        return None;
    }
    hashing.end_gathering();
    hashing.in_pass = true;
    let (state, pieces) = (hashing.state, std::mem::take(&mut hashing.waiting));
    drop(hashing);
    Some(Taken { upload, state, pieces, budget: 0 })
}

/// Whether the queue should be hashed now: it holds [`PASS_BYTES`], or
/// enough for the uploads waiting to share lanes, or one upload runs alone.
/// While others are under way, one upload's bytes wait for theirs.
fn pass_due(queue: &Queue) -> bool {
    let waiting = queue.uploads.len();
    let shared = waiting >= 2 && queue.bytes >= PASS_SHARE * waiting.min(4);
    let alone = queue.live <= 1 && queue.bytes >= PASS_SHARE;
    shared || alone || queue.bytes >= PASS_BYTES || waiting >= PASS_UPLOADS
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
        let lanes = Arc::new(Md5Lanes::default());
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

    /// md5-many at every SIMD level this machine has (each has its own kernels).
    fn engines() -> Vec<Md5Many> {
        use fearless_simd::Simd;
        let best = fearless_simd::Level::new();
        let levels = [
            Some(fearless_simd::Level::baseline()),
            best.as_sse4_2().map(Simd::level),
            best.as_avx2().map(Simd::level),
            best.as_avx512().map(Simd::level),
        ];
        levels.into_iter().flatten().map(Md5Many::from_level).collect()
    }

    #[tokio::test]
    async fn one_pass_hashes_uploads_of_unequal_lengths_side_by_side() {
        for engine in engines() {
            let lanes = Arc::new(Md5Lanes::new(engine));
            // More uploads than the widest lanes, so some passes run while pushing.
            let uploads: Vec<(Md5Lane, Bytes)> = (0..18u64)
                .map(|i| (Md5Lane::on(&lanes), body(i, 5_000 + 70_001 * usize::try_from(i).unwrap())))
                .collect();
            for (i, (lane, data)) in (0..).zip(&uploads) {
                push_in_chunks(lane, data, 9_000 + 4_099 * i);
            }
            for (lane, data) in uploads {
                assert_eq!(hex::encode(lane.finish().await.unwrap()), expected(&data), "{} lanes", engine.lanes());
            }
        }
    }

    #[tokio::test]
    async fn small_chunks_wait_copied_together() {
        let lanes = Arc::new(Md5Lanes::default());
        let (dribble, stream) = (Md5Lane::on(&lanes), Md5Lane::on(&lanes));
        let (few, many) = (body(3, 100_000), body(4, 1_000_000));
        push_in_chunks(&dribble, &few, 1);
        push_in_chunks(&stream, &many, 250_000);
        let pieces = lock(&dribble.upload.hashing).waiting.len();
        assert_eq!(pieces, 100_000 / PIECE_MIN, "one piece per PIECE_MIN bytes, not one per byte");
        // A lone small chunk waits as it came; the next small one joins it.
        let lone = Md5Lane::on(&lanes);
        lone.push(Bytes::from_static(b"ab"));
        assert_eq!(lock(&lone.upload.hashing).waiting.len(), 1);
        lone.push(Bytes::from_static(b"c"));
        assert_eq!(&lock(&lone.upload.hashing).gathering[..], b"abc");
        assert_eq!(hex::encode(lone.finish().await.unwrap()), expected(b"abc"));
        assert_eq!(hex::encode(dribble.finish().await.unwrap()), expected(&few));
        assert_eq!(hex::encode(stream.finish().await.unwrap()), expected(&many));
    }

    #[tokio::test]
    async fn a_lone_upload_passes_early_and_one_among_others_waits_for_them() {
        let lanes = Arc::new(Md5Lanes::default());
        let (first, data) = (Md5Lane::on(&lanes), body(11, 3 * PASS_SHARE / 2));
        push_in_chunks(&first, &data, PASS_SHARE / 4);
        let waiting = |lane: &Md5Lane| lock(&lane.upload.hashing).waiting.iter().map(Bytes::len).sum::<usize>();
        assert_eq!(waiting(&first), PASS_SHARE / 2, "alone, a pass came at PASS_SHARE");

        // With a second upload under way, the first one's bytes wait for it.
        let second = Md5Lane::on(&lanes);
        let more = body(12, PASS_SHARE);
        push_in_chunks(&first, &more, PASS_SHARE / 4);
        assert_eq!(waiting(&first), 3 * PASS_SHARE / 2);
        let other = body(13, PASS_SHARE);
        push_in_chunks(&second, &other, PASS_SHARE / 4);
        assert!(waiting(&first) < 3 * PASS_SHARE / 2, "both waiting: a shared pass");
        let all: Vec<u8> = [&data[..], &more[..]].concat();
        assert_eq!(hex::encode(first.finish().await.unwrap()), expected(&all));
        assert_eq!(hex::encode(second.finish().await.unwrap()), expected(&other));
        assert_eq!(lock(&lanes.queue).live, 0);
    }

    #[test]
    fn an_upload_dropped_during_a_pass_is_not_put_back() {
        let lanes = Arc::new(Md5Lanes::default());
        let (kept, gone) = (Md5Lane::on(&lanes), Md5Lane::on(&lanes));
        push_in_chunks(&gone, &body(21, PASS_SHARE / 2), PASS_SHARE / 4);
        push_in_chunks(&kept, &body(22, PASS_SHARE / 2), PASS_SHARE / 4);
        // A pass (as on another thread) takes both and hashes part of each;
        // one upload goes away before the pass hands them back.
        let uploads = {
            let mut queue = lock(&lanes.queue);
            queue.bytes = 0;
            std::mem::take(&mut queue.uploads)
        };
        let mut taken: Vec<Taken> = uploads.into_iter().filter_map(take_waiting).collect();
        for t in &mut taken {
            t.budget = MIN_SHARE;
        }
        lanes.hash(&mut taken);
        let upload = Arc::clone(&gone.upload);
        drop(gone);
        lanes.hand_back(taken, true);
        assert!(!lock(&upload.hashing).has_waiting());
        let queue = lock(&lanes.queue);
        assert!(queue.uploads.iter().all(|u| Arc::ptr_eq(u, &kept.upload)));
        assert_eq!(queue.bytes, PASS_SHARE / 2 - MIN_SHARE, "only the kept upload's rest waits");
    }

    #[tokio::test]
    async fn what_waits_stays_bounded_beside_an_upload_that_trickles() {
        let lanes = Arc::new(Md5Lanes::default());
        let (fast, slow) = (Md5Lane::on(&lanes), Md5Lane::on(&lanes));
        // Chunks larger than MIN_SHARE, and a neighbour that rarely has any.
        let chunk = 1 << 20;
        let (a, b) = (body(7, 5 * PASS_BYTES / 2), body(8, 16 * 1024 * 20));
        let mut trickle = b.chunks(16 * 1024);
        for (i, piece) in a.chunks(chunk).enumerate() {
            fast.push(Bytes::copy_from_slice(piece));
            if i % 4 == 0
                && let Some(t) = trickle.next()
            {
                slow.push(Bytes::copy_from_slice(t));
            }
            let waiting = lock(&lanes.queue).bytes;
            assert!(waiting < PASS_BYTES + chunk, "{waiting} bytes wait after chunk {i}");
        }
        trickle.for_each(|t| slow.push(Bytes::copy_from_slice(t)));
        assert_eq!(hex::encode(fast.finish().await.unwrap()), expected(&a));
        assert_eq!(hex::encode(slow.finish().await.unwrap()), expected(&b));
    }

    #[test]
    fn a_dropped_upload_leaves_nothing_waiting() {
        let lanes = Arc::new(Md5Lanes::default());
        let lane = Md5Lane::on(&lanes);
        lane.push(body(1, 4096));
        let upload = Arc::clone(&lane.upload);
        drop(lane);
        assert!(!lock(&upload.hashing).has_waiting());
        assert!(lock(&lanes.queue).uploads.is_empty());
    }
}
