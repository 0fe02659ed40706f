//! The at-rest format of object bytes.
//!
//! ```text
//! header   = "TRN2" | key_len: u16 BE | wrapped data key (key_len) | salt (32)
//! key      = HKDF-SHA256(ikm = data key, salt = salt, info = "tern segments v2")
//! segments = seg_0 | seg_1 | … | seg_last      each = AES-256-GCM(plaintext ≤ 64 KiB) ‖ tag (16)
//! nonce_i  = 0 (7) | is_last (1) | i: u32 BE (4)
//! aad      = the header bytes
//! ```
//!
//! Version 1 (`"TRN1" | key_len | wrapped key | nonce prefix (7)`, the data
//! key itself as segment key, the prefix in the nonce) is still read, never
//! written: the parts of a multipart upload share one data key, and a 56-bit
//! random prefix per part left a small chance of nonce reuse. Now every blob
//! derives its own segment key from a random 256-bit salt.
//!
//! **These constants can never change** for data already written: the segment
//! size and nonce layout are part of every stored object.
//!
//! Why it is safe: each blob has its own segment key, so segments cannot be
//! moved between blobs; the index in the nonce stops reordering; the
//! last-segment flag stops truncation at a segment boundary (an empty object
//! still has one empty, flagged segment); the header is authenticated by every
//! segment, so swapping the wrapped key breaks them all. The salt also names
//! the blob: metadata records it ([`Header::binding`]), so a reader refuses a
//! blob swapped for another of the same object.

use std::ops::Range;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce};
use bytes::Bytes;

use crate::kdf::{cipher, hkdf32};
use crate::{CryptoError, Key256};

/// Plaintext bytes per segment.
pub const SEGMENT: usize = 64 * 1024;
/// GCM tag bytes per segment.
pub const TAG: usize = 16;
const MAGIC_V1: &[u8; 4] = b"TRN1";
const MAGIC_V2: &[u8; 4] = b"TRN2";
const PREFIX: usize = 7;
/// Length of a version-2 blob's salt, which is also its binding.
pub const SALT: usize = 32;
const INFO: &[u8] = b"tern segments v2";
/// Longest wrapped key a header may carry (KMS ciphertext blobs included).
pub const MAX_WRAPPED_KEY: usize = 4096;

/// Where a blob's segment key and nonces come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keying {
    /// Version 2: a segment key derived from the data key and this salt.
    Salt([u8; SALT]),
    /// Version 1: the data key itself, with this nonce prefix.
    Prefix([u8; PREFIX]),
}

/// The per-blob header: how to recover the data key, and the segment keying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub wrapped_key: Vec<u8>,
    pub keying: Keying,
}

impl Header {
    /// A header for a new blob with a random salt.
    pub fn new(wrapped_key: Vec<u8>) -> Result<Self, CryptoError> {
        let mut salt = [0u8; SALT];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| CryptoError::Random)?;
        Ok(Self { wrapped_key, keying: Keying::Salt(salt) })
    }

    /// What metadata records to bind this blob to its object: the salt of a
    /// version-2 blob (version 1 has none).
    #[must_use]
    pub fn binding(&self) -> Option<[u8; SALT]> {
        match self.keying {
            Keying::Salt(salt) => Some(salt),
            Keying::Prefix(_) => None,
        }
    }

    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let len = u16::try_from(self.wrapped_key.len()).expect("wrapped keys are at most MAX_WRAPPED_KEY");
        let mut out = Vec::with_capacity(6 + self.wrapped_key.len() + SALT);
        let (magic, tail): (&[u8; 4], &[u8]) = match &self.keying {
            Keying::Salt(salt) => (MAGIC_V2, salt),
            Keying::Prefix(prefix) => (MAGIC_V1, prefix),
        };
        out.extend_from_slice(magic);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.wrapped_key);
        out.extend_from_slice(tail);
        out
    }

    /// The full header length, from its first 6 bytes.
    pub fn encoded_len(first6: &[u8]) -> Result<usize, CryptoError> {
        let [m0, m1, m2, m3, hi, lo, ..] = first6 else { return Err(CryptoError::Corrupt) };
        let tail = match &[*m0, *m1, *m2, *m3] {
            MAGIC_V2 => SALT,
            MAGIC_V1 => PREFIX,
            _ => return Err(CryptoError::Corrupt),
        };
        let key_len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if key_len > MAX_WRAPPED_KEY {
            return Err(CryptoError::Corrupt);
        }
        Ok(6 + key_len + tail)
    }

    /// Parses a header from the start of `bytes`; returns it and its length.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), CryptoError> {
        let len = Self::encoded_len(bytes)?;
        let body = bytes.get(6..len).ok_or(CryptoError::Corrupt)?;
        let v2 = bytes.starts_with(MAGIC_V2);
        let (wrapped_key, tail) = body.split_at(body.len() - if v2 { SALT } else { PREFIX });
        let keying = if v2 {
            Keying::Salt(tail.try_into().map_err(|_| CryptoError::Corrupt)?)
        } else {
            Keying::Prefix(tail.try_into().map_err(|_| CryptoError::Corrupt)?)
        };
        Ok((Self { wrapped_key: wrapped_key.to_vec(), keying }, len))
    }

    /// The segment cipher and nonce prefix for `data_key`.
    fn segment_cipher(&self, data_key: &Key256) -> (LessSafeKey, [u8; PREFIX]) {
        match &self.keying {
            Keying::Salt(salt) => (cipher(&hkdf32(salt, data_key.expose(), &[INFO])), [0; PREFIX]),
            Keying::Prefix(prefix) => (cipher(data_key), *prefix),
        }
    }
}

/// Number of segments for `plain_len` bytes (at least one).
#[must_use]
pub fn segment_count(plain_len: u64) -> u64 {
    plain_len.div_ceil(SEGMENT as u64).max(1)
}

/// Ciphertext bytes after the header for `plain_len` plaintext bytes.
#[must_use]
pub fn ciphertext_len(plain_len: u64) -> u64 {
    plain_len + segment_count(plain_len) * TAG as u64
}

/// The ciphertext range (after the header) whose segments cover `plain`.
#[must_use]
pub fn cipher_range(plain: &Range<u64>, plain_len: u64) -> Range<u64> {
    let seg = SEGMENT as u64;
    let first = plain.start / seg;
    let last = if plain.is_empty() { first } else { (plain.end - 1) / seg };
    let start = first * (seg + TAG as u64);
    let end = ((last + 1) * (seg + TAG as u64)).min(ciphertext_len(plain_len));
    start..end
}

fn nonce(prefix: [u8; PREFIX], index: u64, last: bool) -> Result<Nonce, CryptoError> {
    let index = u32::try_from(index).map_err(|_| CryptoError::Corrupt)?;
    let mut n = [0u8; 12];
    n[..PREFIX].copy_from_slice(&prefix);
    n[PREFIX] = u8::from(last);
    n[PREFIX + 1..].copy_from_slice(&index.to_be_bytes());
    Ok(Nonce::assume_unique_for_key(n))
}

/// Encrypts a plaintext stream into the format above, in bounded memory.
pub struct Sealer {
    key: LessSafeKey,
    header: Vec<u8>,
    prefix: [u8; PREFIX],
    index: u64,
    /// The segment being filled. Plaintext is copied once, into it; it is
    /// then sealed in place and handed out as it is.
    segment: Vec<u8>,
}

impl Sealer {
    #[must_use]
    pub fn new(data_key: &Key256, header: &Header) -> Self {
        let (key, prefix) = header.segment_cipher(data_key);
        Self { key, header: header.encode(), prefix, index: 0, segment: empty_segment() }
    }

    /// The header, to be written before any segment.
    #[must_use]
    pub fn header(&self) -> Bytes {
        Bytes::copy_from_slice(&self.header)
    }

    fn seal(&mut self, mut segment: Vec<u8>, last: bool) -> Result<Bytes, CryptoError> {
        self.key
            .seal_in_place_append_tag(nonce(self.prefix, self.index, last)?, Aad::from(&self.header), &mut segment)
            .map_err(|_| CryptoError::Corrupt)?;
        self.index += 1;
        Ok(Bytes::from(segment))
    }

    /// Feeds plaintext; returns every segment now complete. A full segment
    /// is held back until more plaintext arrives: only
    /// [`Sealer::finish`] knows which one is last, and flags it.
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<Bytes>, CryptoError> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.segment.len() == SEGMENT {
                let full = std::mem::replace(&mut self.segment, empty_segment());
                out.push(self.seal(full, false)?);
            }
            let (now, rest) = data.split_at(data.len().min(SEGMENT - self.segment.len()));
            self.segment.extend_from_slice(now);
            data = rest;
        }
        Ok(out)
    }

    /// Seals what remains as the last segment.
    pub fn finish(mut self) -> Result<Bytes, CryptoError> {
        let last = std::mem::take(&mut self.segment);
        self.seal(last, true)
    }
}

/// Room for a whole segment and its tag, so sealing never reallocates.
fn empty_segment() -> Vec<u8> {
    Vec::with_capacity(SEGMENT + TAG)
}

/// Decrypts the segments covering a plaintext range, yielding only that range.
pub struct Opener {
    key: LessSafeKey,
    header: Vec<u8>,
    prefix: [u8; PREFIX],
    plain_len: u64,
    index: u64,
    buf: Vec<u8>,
    skip: usize,
    remaining: u64,
}

impl Opener {
    /// Prepares to read `plain` of an object of `plain_len` bytes; feed it the
    /// ciphertext range [`cipher_range`] returns.
    #[must_use]
    pub fn new(data_key: &Key256, header: &Header, plain_len: u64, plain: &Range<u64>) -> Self {
        let first = plain.start / SEGMENT as u64;
        let (key, prefix) = header.segment_cipher(data_key);
        Self {
            key,
            header: header.encode(),
            prefix,
            plain_len,
            index: first,
            buf: Vec::new(),
            skip: usize::try_from(plain.start - first * SEGMENT as u64).expect("below SEGMENT"),
            remaining: plain.end - plain.start,
        }
    }

    fn segment_cipher_len(&self) -> usize {
        let last = segment_count(self.plain_len) - 1;
        if self.index == last {
            usize::try_from(self.plain_len - last * SEGMENT as u64).expect("below SEGMENT") + TAG
        } else {
            SEGMENT + TAG
        }
    }

    /// Feeds ciphertext; returns the plaintext now available.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Bytes>, CryptoError> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut consumed = 0;
        while self.remaining > 0 && self.buf.len() - consumed >= self.segment_cipher_len() {
            let len = self.segment_cipher_len();
            let last = self.index == segment_count(self.plain_len) - 1;
            let mut segment = self.buf[consumed..consumed + len].to_vec();
            let plain_len = self
                .key
                .open_in_place(nonce(self.prefix, self.index, last)?, Aad::from(&self.header), &mut segment)
                .map_err(|_| CryptoError::Corrupt)?
                .len();
            let start = std::mem::take(&mut self.skip).min(plain_len);
            let end = plain_len.min(start + usize::try_from(self.remaining).unwrap_or(usize::MAX));
            out.push(Bytes::from(segment).slice(start..end));
            self.remaining -= (end - start) as u64;
            self.index += 1;
            consumed += len;
        }
        self.buf.drain(..consumed);
        Ok(out)
    }

    /// Succeeds only if the whole requested range was decrypted.
    pub fn finish(self) -> Result<(), CryptoError> {
        if self.remaining == 0 { Ok(()) } else { Err(CryptoError::Corrupt) }
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test sizes are a few hundred KiB
mod tests {
    use super::*;

    fn seal_all(key: &Key256, header: &Header, plain: &[u8], chunk: usize) -> Vec<u8> {
        let mut sealer = Sealer::new(key, header);
        let mut out = sealer.header().to_vec();
        for piece in plain.chunks(chunk.max(1)) {
            for s in sealer.push(piece).unwrap() {
                out.extend_from_slice(&s);
            }
        }
        out.extend_from_slice(&sealer.finish().unwrap());
        out
    }

    fn open_range(key: &Key256, stored: &[u8], plain_len: u64, range: Range<u64>) -> Result<Vec<u8>, CryptoError> {
        let (header, header_len) = Header::decode(stored)?;
        let cipher = cipher_range(&range, plain_len);
        let bytes = stored
            .get(header_len + cipher.start as usize..header_len + cipher.end as usize)
            .ok_or(CryptoError::Corrupt)?;
        let mut opener = Opener::new(key, &header, plain_len, &range);
        let mut out = Vec::new();
        for piece in bytes.chunks(10_000) {
            for p in opener.push(piece)? {
                out.extend_from_slice(&p);
            }
        }
        opener.finish()?;
        Ok(out)
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 253) as u8).collect()
    }

    #[test]
    fn round_trips_every_size_and_range() {
        let key = Key256::random().unwrap();
        let header = Header::new(vec![9; 60]).unwrap();
        for len in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17] {
            let plain = sample(len);
            let stored = seal_all(&key, &header, &plain, 5000);
            assert_eq!(stored.len() as u64, header.encode().len() as u64 + ciphertext_len(len as u64));
            let n = len as u64;
            assert_eq!(open_range(&key, &stored, n, 0..n).unwrap(), plain);
            for (a, b) in [(0, 1), (n / 2, n), (SEGMENT as u64 - 3, SEGMENT as u64 + 3)] {
                if b <= n && a < b {
                    assert_eq!(
                        open_range(&key, &stored, n, a..b).unwrap(),
                        &plain[a as usize..b as usize],
                        "{len} {a}..{b}"
                    );
                }
            }
        }
    }

    #[test]
    fn how_the_plaintext_arrives_does_not_change_the_blob() {
        let key = Key256::random().unwrap();
        let header = Header::new(vec![3; 60]).unwrap();
        let plain = sample(3 * SEGMENT + 5);
        let whole = seal_all(&key, &header, &plain, plain.len());
        for chunk in [1, 4096, SEGMENT - 1, SEGMENT, SEGMENT + 1] {
            assert_eq!(seal_all(&key, &header, &plain, chunk), whole, "chunks of {chunk}");
        }
    }

    #[test]
    fn tampering_truncation_and_wrong_keys_fail() {
        let key = Key256::random().unwrap();
        let header = Header::new(vec![1; 60]).unwrap();
        let plain = sample(2 * SEGMENT + 100);
        let n = plain.len() as u64;
        let stored = seal_all(&key, &header, &plain, 65_536);
        let mut flipped = stored.clone();
        flipped[200] ^= 1;
        assert!(open_range(&key, &flipped, n, 0..n).is_err());
        // Dropping the last segment and claiming a shorter object fails: segment 1 is not flagged last.
        let header_len = header.encode().len();
        let truncated = &stored[..header_len + 2 * (SEGMENT + TAG)];
        assert!(open_range(&key, truncated, 2 * SEGMENT as u64, 0..2 * SEGMENT as u64).is_err());
        // Swapping two segments fails: the index is in the nonce.
        let mut swapped = stored.clone();
        let (a, b) = (header_len, header_len + SEGMENT + TAG);
        let first: Vec<u8> = swapped[a..b].to_vec();
        let second: Vec<u8> = swapped[b..b + SEGMENT + TAG].to_vec();
        swapped[a..b].copy_from_slice(&second);
        swapped[b..b + SEGMENT + TAG].copy_from_slice(&first);
        assert!(open_range(&key, &swapped, n, 0..n).is_err());
        assert!(open_range(&Key256::random().unwrap(), &stored, n, 0..n).is_err());
        // A different header (another wrapped key) breaks every segment.
        let mut other_header = stored.clone();
        other_header[10] ^= 1;
        assert!(open_range(&key, &other_header, n, 0..n).is_err());
    }

    #[test]
    fn version_one_blobs_still_read_and_version_two_blobs_differ_per_blob() {
        let key = Key256::random().unwrap();
        let v1 = Header { wrapped_key: vec![5; 60], keying: Keying::Prefix([7; PREFIX]) };
        let plain = sample(SEGMENT + 9);
        let n = plain.len() as u64;
        let stored = seal_all(&key, &v1, &plain, 4096);
        assert!(stored.starts_with(MAGIC_V1) && v1.binding().is_none());
        assert_eq!(open_range(&key, &stored, n, 0..n).unwrap(), plain);
        // Two blobs under one data key (two parts of an upload) share no segment key.
        let (a, b) = (Header::new(vec![5; 60]).unwrap(), Header::new(vec![5; 60]).unwrap());
        let (sa, sb) = (seal_all(&key, &a, &plain, 4096), seal_all(&key, &b, &plain, 4096));
        let body = a.encode().len();
        assert_ne!(sa[body..], sb[body..]);
        assert_ne!(a.binding(), b.binding());
    }

    #[test]
    fn headers_reject_garbage() {
        assert!(Header::decode(b"").is_err());
        assert!(Header::decode(b"XXXX\0\0").is_err());
        assert!(Header::decode(b"TRN1\xff\xff").is_err());
        assert!(Header::decode(b"TRN1\0\x05abc").is_err());
        let h = Header::new(vec![3; 60]).unwrap();
        let (back, len) = Header::decode(&h.encode()).unwrap();
        assert_eq!((back, len), (h.clone(), h.encode().len()));
    }
}
