//! The content ciphers of S3EC objects, streaming: AES-256-GCM for any
//! message length, AES-CTR for ranged reads of GCM objects, and legacy
//! AES-CBC decryption.
//!
//! aws-lc-rs offers GCM one-shot only, and an S3EC object is one GCM
//! message however large it is. So GCM is composed here from aws-lc-rs's
//! streaming AES-CTR (the keystream, from `inc32(J0)`) and `RustCrypto`'s GHASH
//! (the tag), per NIST SP 800-38D. It is the one piece of cryptography
//! written by hand in Tern, and its tests hold it to aws-lc-rs's one-shot
//! GCM for every length and chunking that matters.

use aws_lc_rs::cipher::{
    AES_256, DecryptionContext, EncryptingKey, EncryptionContext, StreamingDecryptingKey, StreamingEncryptingKey,
    UnboundCipherKey,
};
use bytes::BytesMut;
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub const KEY_LEN: usize = 32;
pub const GCM_IV_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
const BLOCK: usize = 16;
/// The most plaintext one GCM message may hold: 2^39 - 256 bits.
pub const GCM_MAX_PLAINTEXT: u64 = (1 << 36) - 32;

/// A 256-bit content key.
pub type ContentKey = Zeroizing<[u8; KEY_LEN]>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    #[error("the message is longer than one AES-GCM message may be")]
    TooLong,
    #[error("the authentication tag does not match: the object or its metadata was altered")]
    TagMismatch,
    #[error("the legacy CBC content does not decrypt")]
    Cbc,
}

fn unbound(key: &[u8; KEY_LEN]) -> UnboundCipherKey {
    UnboundCipherKey::new(&AES_256, key).expect("a 32-byte key fits AES-256")
}

/// `AES_K(counter)`: one block of CTR keystream.
fn aes_block(key: &[u8; KEY_LEN], counter: [u8; BLOCK]) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    let ctr = EncryptingKey::ctr(unbound(key)).expect("AES-256 supports CTR");
    ctr.less_safe_encrypt(&mut block, EncryptionContext::Iv128(counter.into())).expect("one block encrypts");
    block
}

/// The counter block `blocks` past `start`, as a 128-bit big-endian sum (the
/// same as GCM's inc32 for any message GCM allows).
fn counter_at(start: [u8; BLOCK], blocks: u64) -> [u8; BLOCK] {
    u128::from_be_bytes(start).wrapping_add(u128::from(blocks)).to_be_bytes()
}

/// J0 for a 96-bit IV: IV ‖ 0x00000001.
fn j0(iv: &[u8; GCM_IV_LEN]) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    block[..GCM_IV_LEN].copy_from_slice(iv);
    block[BLOCK - 1] = 1;
    block
}

/// Appends `f`'s output for `input` to `out`; `f` may write up to a block
/// more than it reads (aws-lc-rs's streaming contract).
fn append_with(
    out: &mut BytesMut,
    input: &[u8],
    f: impl FnOnce(&[u8], &mut [u8]) -> Result<usize, aws_lc_rs::error::Unspecified>,
) {
    let start = out.len();
    out.resize(start + input.len() + BLOCK - 1, 0);
    let written = f(input, &mut out[start..]).expect("the output buffer meets aws-lc-rs's minimum");
    out.truncate(start + written);
}

/// GHASH over AAD and a ciphertext that arrives in pieces of any size.
struct Ghasher {
    ghash: GHash,
    partial: [u8; BLOCK],
    partial_len: usize,
    aad_len: u64,
    text_len: u64,
}

impl Ghasher {
    fn new(h: &[u8; BLOCK], aad: &[u8]) -> Self {
        let mut ghash = GHash::new(h.into());
        ghash.update_padded(aad);
        Self { ghash, partial: [0; BLOCK], partial_len: 0, aad_len: aad.len() as u64, text_len: 0 }
    }

    fn absorb(&mut self, mut data: &[u8]) {
        self.text_len += data.len() as u64;
        if self.partial_len > 0 {
            let take = (BLOCK - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len < BLOCK {
                return;
            }
            self.ghash.update_padded(&self.partial);
            self.partial_len = 0;
        }
        // Whole blocks need no padding, so `update_padded` hashes them as they are.
        let whole = data.len() - data.len() % BLOCK;
        self.ghash.update_padded(&data[..whole]);
        let rest = &data[whole..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    fn tag(mut self, mask: &[u8; BLOCK]) -> [u8; TAG_LEN] {
        self.ghash.update_padded(&self.partial[..self.partial_len]);
        let mut lengths = [0u8; BLOCK];
        lengths[..8].copy_from_slice(&(self.aad_len * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(self.text_len * 8).to_be_bytes());
        self.ghash.update_padded(&lengths);
        let mut tag: [u8; TAG_LEN] = self.ghash.finalize().into();
        tag.iter_mut().zip(mask).for_each(|(t, m)| *t ^= m);
        tag
    }
}

/// What GCM needs besides the keystream: the hash of AAD and ciphertext, the
/// tag mask E(K, J0) and the length budget.
struct GcmState {
    ghash: Ghasher,
    /// E(K, J0): whoever holds it can forge tags, so it is wiped when done.
    mask: zeroize::Zeroizing<[u8; BLOCK]>,
    budget: u64,
}

impl GcmState {
    fn new(key: &[u8; KEY_LEN], iv: &[u8; GCM_IV_LEN], aad: &[u8]) -> (Self, [u8; BLOCK]) {
        // The hash key is as secret as the data key; `ghash` wipes its own copy.
        let h = zeroize::Zeroizing::new(aes_block(key, [0; BLOCK]));
        let j0 = j0(iv);
        let mask = zeroize::Zeroizing::new(aes_block(key, j0));
        let state = Self { ghash: Ghasher::new(&h, aad), mask, budget: GCM_MAX_PLAINTEXT };
        (state, counter_at(j0, 1))
    }

    fn spend(&mut self, len: usize) -> Result<(), CipherError> {
        self.budget = self.budget.checked_sub(len as u64).ok_or(CipherError::TooLong)?;
        Ok(())
    }
}

/// The key, IV and AAD of one GCM message. A message held whole in memory
/// goes through aws-lc-rs's one-shot GCM, several times faster than the
/// streaming composition; one that is not streams.
pub struct GcmParams {
    key: ContentKey,
    iv: [u8; GCM_IV_LEN],
    aad: Vec<u8>,
}

impl GcmParams {
    #[must_use]
    pub fn new(key: ContentKey, iv: [u8; GCM_IV_LEN], aad: &[u8]) -> Self {
        Self { key, iv, aad: aad.to_vec() }
    }

    #[must_use]
    pub fn sealer(&self) -> GcmSealer {
        GcmSealer::new(&self.key, &self.iv, &self.aad)
    }

    #[must_use]
    pub fn opener(&self) -> GcmOpener {
        GcmOpener::new(&self.key, &self.iv, &self.aad)
    }

    fn one_shot(&self) -> aws_lc_rs::aead::LessSafeKey {
        let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &self.key[..]);
        aws_lc_rs::aead::LessSafeKey::new(key.expect("a 32-byte key fits AES-256-GCM"))
    }

    /// Encrypts the whole message in `buf` in place and appends its tag.
    pub fn seal_in_place(&self, buf: &mut BytesMut) -> Result<(), CipherError> {
        if buf.len() as u64 > GCM_MAX_PLAINTEXT {
            return Err(CipherError::TooLong);
        }
        let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key(self.iv);
        let aad = aws_lc_rs::aead::Aad::from(&self.aad[..]);
        let tag =
            self.one_shot().seal_in_place_separate_tag(nonce, aad, &mut buf[..]).map_err(|_| CipherError::TooLong)?;
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypts a whole message (ciphertext ‖ tag) in place; the plaintext
    /// length, valid only if this returns `Ok`.
    pub fn open_in_place(&self, buf: &mut [u8]) -> Result<usize, CipherError> {
        let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key(self.iv);
        let aad = aws_lc_rs::aead::Aad::from(&self.aad[..]);
        let opened = self.one_shot().open_in_place(nonce, aad, buf).map_err(|_| CipherError::TagMismatch)?;
        Ok(opened.len())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Seal,
    Open,
}

/// One GCM message in progress: the CTR keystream from `inc32(J0)` and the
/// hash of the ciphertext. CTR is its own inverse, so the same stream seals
/// and opens; only which side is hashed differs.
struct GcmStream {
    ctr: StreamingEncryptingKey,
    state: GcmState,
}

impl GcmStream {
    fn new(key: &[u8; KEY_LEN], iv: &[u8; GCM_IV_LEN], aad: &[u8]) -> Self {
        let (state, first) = GcmState::new(key, iv, aad);
        let ctr = StreamingEncryptingKey::less_safe_ctr(unbound(key), EncryptionContext::Iv128(first.into()))
            .expect("AES-256 supports CTR");
        Self { ctr, state }
    }

    /// XORs `input` with the keystream into `out`, hashing whichever of
    /// the two is the ciphertext.
    fn apply(&mut self, input: &[u8], out: &mut BytesMut, direction: Direction) -> Result<(), CipherError> {
        self.state.spend(input.len())?;
        if direction == Direction::Open {
            self.state.ghash.absorb(input);
        }
        let start = out.len();
        append_with(out, input, |i, o| self.ctr.update(i, o).map(|u| u.written().len()));
        if direction == Direction::Seal {
            self.state.ghash.absorb(&out[start..]);
        }
        Ok(())
    }

    fn tag(self) -> [u8; TAG_LEN] {
        self.state.ghash.tag(&self.state.mask)
    }
}

/// Encrypts one GCM message, piece by piece.
pub struct GcmSealer(GcmStream);

impl GcmSealer {
    #[must_use]
    pub fn new(key: &[u8; KEY_LEN], iv: &[u8; GCM_IV_LEN], aad: &[u8]) -> Self {
        Self(GcmStream::new(key, iv, aad))
    }

    /// Encrypts the next piece of plaintext, appending its ciphertext to `out`.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut BytesMut) -> Result<(), CipherError> {
        self.0.apply(plaintext, out, Direction::Seal)
    }

    /// The authentication tag, which follows the ciphertext.
    #[must_use]
    pub fn finish(self) -> [u8; TAG_LEN] {
        self.0.tag()
    }
}

/// Decrypts one GCM message, piece by piece. Its plaintext is unauthenticated
/// until [`GcmOpener::verify`] accepts the tag; callers hold it back until then.
pub struct GcmOpener(GcmStream);

impl GcmOpener {
    #[must_use]
    pub fn new(key: &[u8; KEY_LEN], iv: &[u8; GCM_IV_LEN], aad: &[u8]) -> Self {
        Self(GcmStream::new(key, iv, aad))
    }

    /// Decrypts the next piece of ciphertext (without the tag), appending its
    /// plaintext to `out`.
    pub fn open(&mut self, ciphertext: &[u8], out: &mut BytesMut) -> Result<(), CipherError> {
        self.0.apply(ciphertext, out, Direction::Open)
    }

    /// Checks the tag, in constant time.
    pub fn verify(self, tag: &[u8]) -> Result<(), CipherError> {
        let expected = self.0.tag();
        if tag.len() == TAG_LEN && bool::from(expected.ct_eq(tag)) { Ok(()) } else { Err(CipherError::TagMismatch) }
    }
}

/// Decrypts part of a GCM message from a block boundary, without its tag:
/// the ranged read the S3EC specification describes (its CTR suites). What
/// it returns is not authenticated.
pub struct CtrOpener {
    ctr: StreamingDecryptingKey,
}

impl CtrOpener {
    /// Starts at ciphertext block `first_block` of the message `key`/`iv` sealed.
    #[must_use]
    pub fn at_block(key: &[u8; KEY_LEN], iv: &[u8; GCM_IV_LEN], first_block: u64) -> Self {
        let counter = counter_at(j0(iv), 1 + first_block);
        let ctr = StreamingDecryptingKey::ctr(unbound(key), DecryptionContext::Iv128(counter.into()))
            .expect("AES-256 supports CTR");
        Self { ctr }
    }

    pub fn open(&mut self, ciphertext: &[u8], out: &mut BytesMut) {
        append_with(out, ciphertext, |i, o| self.ctr.update(i, o).map(|u| u.written().len()));
    }
}

/// Decrypts legacy AES-256-CBC content with PKCS#7 padding (S3EC V1 and the
/// V2 CBC suite), which no tag protects.
pub struct CbcOpener {
    cbc: StreamingDecryptingKey,
}

impl CbcOpener {
    #[must_use]
    pub fn new(key: &[u8; KEY_LEN], iv: &[u8; BLOCK]) -> Self {
        let cbc = StreamingDecryptingKey::cbc_pkcs7(unbound(key), DecryptionContext::Iv128((*iv).into()))
            .expect("AES-256 supports CBC");
        Self { cbc }
    }

    pub fn open(&mut self, ciphertext: &[u8], out: &mut BytesMut) -> Result<(), CipherError> {
        let start = out.len();
        out.resize(start + ciphertext.len() + BLOCK - 1, 0);
        let written = self.cbc.update(ciphertext, &mut out[start..]).map_err(|_| CipherError::Cbc)?.written().len();
        out.truncate(start + written);
        Ok(())
    }

    /// The last block, unpadded. Every failure reads the same, so padding
    /// errors tell an attacker nothing.
    pub fn finish(self, out: &mut BytesMut) -> Result<(), CipherError> {
        let start = out.len();
        out.resize(start + BLOCK, 0);
        let written = self.cbc.finish(&mut out[start..]).map_err(|_| CipherError::Cbc)?.written().len();
        out.truncate(start + written);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

    use super::*;

    fn reference_seal(key: &[u8; KEY_LEN], iv: &[u8; GCM_IV_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
        let mut sealed = plaintext.to_vec();
        let nonce = Nonce::assume_unique_for_key(*iv);
        cipher.seal_in_place_append_tag(nonce, Aad::from(aad), &mut sealed).unwrap();
        sealed
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| u8::try_from((i * 31 + i / 7) % 251).unwrap()).collect()
    }

    fn sealed_in_pieces(key: &[u8; 32], iv: &[u8; 12], aad: &[u8], plaintext: &[u8], piece: usize) -> Vec<u8> {
        let mut sealer = GcmSealer::new(key, iv, aad);
        let mut out = BytesMut::new();
        for chunk in plaintext.chunks(piece.max(1)) {
            sealer.seal(chunk, &mut out).unwrap();
        }
        out.extend_from_slice(&sealer.finish());
        out.to_vec()
    }

    #[test]
    fn streaming_gcm_matches_one_shot_gcm_for_every_chunking() {
        let key = [7u8; 32];
        let iv = [1u8; 12];
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 100, 4096, 65_537] {
            let plaintext = data(len);
            for aad in [&b""[..], &[0x00, 0x73], &data(40)] {
                let expected = reference_seal(&key, &iv, aad, &plaintext);
                for piece in [1, 3, 16, 17, 1000, len] {
                    assert_eq!(sealed_in_pieces(&key, &iv, aad, &plaintext, piece), expected, "{len} {piece}");
                }
            }
        }
    }

    #[test]
    fn streaming_open_accepts_only_the_true_tag() {
        let (key, iv, aad) = ([9u8; 32], [3u8; 12], [0x00, 0x73]);
        let plaintext = data(5000);
        let sealed = reference_seal(&key, &iv, &aad, &plaintext);
        let (body, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let open = |body: &[u8], tag: &[u8], aad: &[u8]| {
            let mut opener = GcmOpener::new(&key, &iv, aad);
            let mut out = BytesMut::new();
            for chunk in body.chunks(333) {
                opener.open(chunk, &mut out).unwrap();
            }
            opener.verify(tag).map(|()| out.to_vec())
        };
        assert_eq!(open(body, tag, &aad).unwrap(), plaintext);
        let mut flipped = body.to_vec();
        flipped[4000] ^= 1;
        assert_eq!(open(&flipped, tag, &aad), Err(CipherError::TagMismatch));
        assert_eq!(open(body, &tag[..15], &aad), Err(CipherError::TagMismatch), "a truncated tag");
        assert_eq!(open(body, tag, b"other"), Err(CipherError::TagMismatch), "other AAD");
        assert_eq!(open(&body[..4999], tag, &aad), Err(CipherError::TagMismatch), "a truncated body");
    }

    #[test]
    fn ctr_reads_any_block_of_a_gcm_message() {
        let (key, iv) = ([5u8; 32], [8u8; 12]);
        let plaintext = data(1000);
        let sealed = reference_seal(&key, &iv, b"", &plaintext);
        for block in [0_usize, 1, 10, 62] {
            let mut opener = CtrOpener::at_block(&key, &iv, block as u64);
            let mut out = BytesMut::new();
            opener.open(&sealed[block * 16..plaintext.len()], &mut out);
            assert_eq!(&out[..], &plaintext[block * 16..]);
        }
    }

    #[test]
    fn one_shot_and_streaming_gcm_are_the_same_message() {
        let params = GcmParams::new(Zeroizing::new([2; 32]), [4; 12], &[0x00, 0x73]);
        let plaintext = data(70_000);
        let mut one_shot = BytesMut::from(&plaintext[..]);
        params.seal_in_place(&mut one_shot).unwrap();
        let mut sealer = params.sealer();
        let mut streamed = BytesMut::new();
        sealer.seal(&plaintext, &mut streamed).unwrap();
        streamed.extend_from_slice(&sealer.finish());
        assert_eq!(one_shot, streamed);
        let len = params.open_in_place(&mut one_shot).unwrap();
        assert_eq!(&one_shot[..len], &plaintext[..]);
        streamed[10] ^= 1;
        assert_eq!(params.open_in_place(&mut streamed), Err(CipherError::TagMismatch));
    }

    #[test]
    fn the_length_limit_is_enforced() {
        let mut sealer = GcmSealer::new(&[1; 32], &[1; 12], b"");
        sealer.0.state.budget = 10;
        let mut out = BytesMut::new();
        sealer.seal(&[0; 10], &mut out).unwrap();
        assert_eq!(sealer.seal(&[0; 1], &mut out), Err(CipherError::TooLong));
    }

    #[test]
    fn cbc_decrypts_what_aws_lc_encrypts_and_fails_alike_on_bad_padding() {
        use aws_lc_rs::cipher::PaddedBlockEncryptingKey;
        let (key, iv) = ([4u8; 32], [6u8; 16]);
        let plaintext = data(100);
        let encrypting = PaddedBlockEncryptingKey::cbc_pkcs7(unbound(&key)).unwrap();
        let mut sealed = plaintext.clone();
        encrypting.less_safe_encrypt(&mut sealed, EncryptionContext::Iv128(iv.into())).unwrap();
        let open = |sealed: &[u8]| {
            let mut opener = CbcOpener::new(&key, &iv);
            let mut out = BytesMut::new();
            for chunk in sealed.chunks(7) {
                opener.open(chunk, &mut out)?;
            }
            opener.finish(&mut out).map(|()| out.to_vec())
        };
        assert_eq!(open(&sealed).unwrap(), plaintext);
        let last = sealed.len() - 1;
        sealed[last] ^= 0x55;
        assert_eq!(open(&sealed), Err(CipherError::Cbc));
    }
}
