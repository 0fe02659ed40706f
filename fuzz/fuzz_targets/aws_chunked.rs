#![no_main]
//! The aws-chunked framing guard sees every streaming-signed request body.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut guard = tern_sigv4::chunked::ChunkGuard::default();
    // The first byte chooses how the body is split into reads.
    let (split, body) = data.split_first().map_or((1, data), |(s, b)| (usize::from(*s).max(1), b));
    for piece in body.chunks(split) {
        if guard.feed(piece).is_err() {
            return;
        }
    }
});
