//! Following `aws-chunked` framing without buffering it.
//!
//! A guard for `aws-chunked` request bodies. s3s 0.14 buffers a whole signed
//! chunk before verifying it, and a chunk header may declare up to 4 GiB; this
//! guard follows the framing as bytes stream past and fails the body as soon
//! as a header declares more than [`MAX_CHUNK`] or grows past [`MAX_LINE`],
//! without buffering anything. (s3s 0.16 added its own cap; we cannot use it
//! on Rust 1.95.)
//!
//! The framing: `hex-size[;chunk-signature=…]\r\n` `data` `\r\n` …, then a
//! zero-size chunk, then optional trailer lines and a final `\r\n`.

/// Largest chunk accepted. SDKs send 64 KiB–8 MiB chunks.
pub const MAX_CHUNK: u64 = 16 * 1024 * 1024;
/// Longest chunk-header or trailer line.
pub const MAX_LINE: usize = 4096;
/// Largest trailer section (all trailer lines together).
pub const MAX_TRAILER: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("aws-chunked chunk header is malformed")]
    BadHeader,
    #[error("aws-chunked chunk declares more than {MAX_CHUNK} bytes")]
    ChunkTooLarge,
    #[error("aws-chunked trailer is too large")]
    TrailerTooLarge,
    #[error("aws-chunked data is missing its CRLF")]
    MissingCrlf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line; `len` bytes of it seen so far.
    Header {
        len: usize,
        size: u64,
        digits: usize,
        in_ext: bool,
        cr: bool,
    },
    /// Inside chunk data; `left` bytes remain.
    Data {
        left: u64,
    },
    /// Expecting the CRLF after chunk data; `cr` once `\r` was seen.
    DataEnd {
        cr: bool,
    },
    /// After the zero-size chunk: trailer lines until an empty line.
    Trailer {
        total: usize,
        line: usize,
        cr: bool,
    },
    Done,
}

/// Follows `aws-chunked` framing byte by byte in O(1) memory.
#[derive(Debug, Clone)]
pub struct ChunkGuard {
    state: State,
}

impl Default for ChunkGuard {
    fn default() -> Self {
        Self { state: State::Header { len: 0, size: 0, digits: 0, in_ext: false, cr: false } }
    }
}

impl ChunkGuard {
    /// Checks the next bytes of the body.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), FramingError> {
        while let Some((&byte, rest)) = bytes.split_first() {
            if let State::Data { left } = self.state {
                // Skip data in bulk rather than byte by byte.
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                let left = left - n as u64;
                self.state = if left == 0 { State::DataEnd { cr: false } } else { State::Data { left } };
                bytes = &bytes[n..];
                continue;
            }
            self.state = step(self.state, byte)?;
            bytes = rest;
        }
        Ok(())
    }

    /// Whether the framing ended properly.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }
}

fn step(state: State, byte: u8) -> Result<State, FramingError> {
    match state {
        State::Header { len, size, digits, in_ext, cr } => header_step(len + 1, size, digits, in_ext, cr, byte),
        State::DataEnd { cr: false } if byte == b'\r' => Ok(State::DataEnd { cr: true }),
        State::DataEnd { cr: true } if byte == b'\n' => {
            Ok(State::Header { len: 0, size: 0, digits: 0, in_ext: false, cr: false })
        }
        State::DataEnd { .. } => Err(FramingError::MissingCrlf),
        State::Trailer { total, line, cr } => trailer_step(total + 1, line, cr, byte),
        State::Data { .. } => unreachable!("data is skipped in bulk"),
        State::Done => Ok(State::Done),
    }
}

fn header_step(len: usize, size: u64, digits: usize, in_ext: bool, cr: bool, byte: u8) -> Result<State, FramingError> {
    if len > MAX_LINE {
        return Err(FramingError::BadHeader);
    }
    match (cr, byte) {
        (true, b'\n') if digits == 0 => Err(FramingError::BadHeader),
        (true, b'\n') if size == 0 => Ok(State::Trailer { total: 0, line: 0, cr: false }),
        (true, b'\n') => Ok(State::Data { left: size }),
        (true, _) => Err(FramingError::BadHeader),
        (false, b'\r') => Ok(State::Header { len, size, digits, in_ext, cr: true }),
        (false, b';') => Ok(State::Header { len, size, digits, in_ext: true, cr: false }),
        (false, _) if in_ext => Ok(State::Header { len, size, digits, in_ext, cr: false }),
        (false, b) => {
            let digit = char::from(b).to_digit(16).ok_or(FramingError::BadHeader)?;
            let size = size * 16 + u64::from(digit);
            if size > MAX_CHUNK {
                return Err(FramingError::ChunkTooLarge);
            }
            Ok(State::Header { len, size, digits: digits + 1, in_ext, cr: false })
        }
    }
}

fn trailer_step(total: usize, line: usize, cr: bool, byte: u8) -> Result<State, FramingError> {
    if total > MAX_TRAILER || line >= MAX_LINE {
        return Err(FramingError::TrailerTooLarge);
    }
    match (cr, byte) {
        (true, b'\n') if line == 0 => Ok(State::Done),
        (true, b'\n') => Ok(State::Trailer { total, line: 0, cr: false }),
        (true, _) => Err(FramingError::BadHeader),
        (false, b'\r') => Ok(State::Trailer { total, line, cr: true }),
        (false, _) => Ok(State::Trailer { total, line: line + 1, cr: false }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &[u8]) -> Result<bool, FramingError> {
        let mut guard = ChunkGuard::default();
        // Feed in awkward pieces to exercise state carried across calls.
        for piece in body.chunks(3) {
            guard.feed(piece)?;
        }
        Ok(guard.is_complete())
    }

    #[test]
    fn accepts_what_sdks_send() {
        let signed = b"5;chunk-signature=abc\r\nhello\r\n0;chunk-signature=def\r\n\r\n";
        assert_eq!(check(signed), Ok(true));
        let trailer = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-trailer-signature:ff\r\n\r\n";
        assert_eq!(check(trailer), Ok(true));
        assert_eq!(check(b"1000000;chunk-signature=x\r\n"), Ok(false), "exactly 16 MiB is allowed");
    }

    #[test]
    fn refuses_oversized_and_malformed_framing() {
        assert_eq!(check(b"1000001;chunk-signature=x\r\n"), Err(FramingError::ChunkTooLarge));
        assert_eq!(check(b"ffffffff\r\n"), Err(FramingError::ChunkTooLarge));
        assert_eq!(check(b"zz\r\n"), Err(FramingError::BadHeader));
        assert_eq!(check(b"\r\n"), Err(FramingError::BadHeader));
        assert_eq!(check(b"2\r\nabXY"), Err(FramingError::MissingCrlf));
        let long_ext = [b"1;".as_slice(), &[b'a'; MAX_LINE], b"\r\n"].concat();
        assert_eq!(check(&long_ext), Err(FramingError::BadHeader));
        let long_trailer = [b"0\r\n".as_slice(), &[b'a'; MAX_LINE + 1]].concat();
        assert_eq!(check(&long_trailer), Err(FramingError::TrailerTooLarge));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A deterministic sweep standing in for the fuzz target between fuzz runs.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            for _ in 0..(x % 64) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(b"0123456789abcdefXx;\r\n="[usize::try_from(x % 22).unwrap()]);
            }
            let _ = check(&bytes);
        }
    }
}
