//! Keys sealing keys, and HKDF-SHA256 to derive purpose-bound keys from a root.
//!
//! ```text
//! sealed = "TW2" (3) | salt (32) | AES-256-GCM(secret) | tag (16)
//! cek    = HKDF-SHA256(ikm = kek, salt = salt, info = "tern wrap v2" | purpose), nonce 0
//! ```
//!
//! Every seal gets its own content key from a random 256-bit salt, so a
//! key-encryption key that never rotates (a region's SSE-S3 key wraps one data
//! key per object) never approaches GCM's limit on random 96-bit nonces
//! (about 2^32 messages per key). Version 1 (`nonce (12) | ciphertext | tag`,
//! the purpose as associated data) is still opened, never written.

use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};

use crate::kdf::{cipher, hkdf32};
use crate::{CryptoError, Key256};

const MAGIC: &[u8; 3] = b"TW2";
const SALT_LEN: usize = 32;
const TAG_LEN: usize = 16;
const INFO: &[u8] = b"tern wrap v2";

/// Length of a wrapped 256-bit key: magic ‖ salt ‖ ciphertext ‖ tag.
pub const WRAPPED_KEY_LEN: usize = MAGIC.len() + SALT_LEN + 32 + TAG_LEN;

/// Seals `secret` under `kek`; `purpose` must be given again to unwrap.
pub fn seal(kek: &Key256, purpose: &[u8], secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut salt = [0u8; SALT_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| CryptoError::Random)?;
    let mut out = Vec::with_capacity(MAGIC.len() + SALT_LEN + secret.len() + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&salt);
    out.extend_from_slice(secret);
    let tag = cipher(&hkdf32(&salt, kek.expose(), &[INFO, purpose]))
        .seal_in_place_separate_tag(zero_nonce(), Aad::empty(), &mut out[MAGIC.len() + SALT_LEN..])
        .map_err(|_| CryptoError::Corrupt)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens what [`seal`] produced with the same `kek` and `purpose`, or a
/// version-1 seal.
pub fn open(kek: &Key256, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    // A version-1 seal starts with a random nonce, which may spell the magic;
    // authentication decides, so trying both is safe.
    open_v2(kek, purpose, sealed).or_else(|_| open_v1(kek, purpose, sealed))
}

fn open_v2(kek: &Key256, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let rest = sealed.strip_prefix(MAGIC).ok_or(CryptoError::Corrupt)?;
    if rest.len() < SALT_LEN + TAG_LEN {
        return Err(CryptoError::Corrupt);
    }
    let (salt, body) = rest.split_at(SALT_LEN);
    let mut buf = body.to_vec();
    let len = cipher(&hkdf32(salt, kek.expose(), &[INFO, purpose]))
        .open_in_place(zero_nonce(), Aad::empty(), &mut buf)
        .map_err(|_| CryptoError::Corrupt)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn open_v1(kek: &Key256, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Corrupt);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Corrupt)?;
    let mut buf = rest.to_vec();
    let plain = cipher(kek).open_in_place(nonce, Aad::from(purpose), &mut buf).map_err(|_| CryptoError::Corrupt)?;
    let len = plain.len();
    buf.truncate(len);
    Ok(buf)
}

/// Each content key seals exactly one message, so a fixed nonce is unique.
fn zero_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; NONCE_LEN])
}

/// Wraps a data key (see [`seal`]).
pub fn wrap_key(kek: &Key256, purpose: &[u8], key: &Key256) -> Result<Vec<u8>, CryptoError> {
    seal(kek, purpose, key.expose())
}

/// Unwraps a data key (see [`open`]).
pub fn unwrap_key(kek: &Key256, purpose: &[u8], wrapped: &[u8]) -> Result<Key256, CryptoError> {
    let mut plain = open(kek, purpose, wrapped)?;
    let key = Key256::from_slice(&plain).ok_or(CryptoError::Corrupt);
    zeroize::Zeroize::zeroize(&mut plain);
    key
}

/// A key for one purpose, derived from `root` (HKDF-SHA256, `info` = purpose).
/// Different purposes give independent keys, so one root key can safely serve many.
#[must_use]
pub fn derive(root: &Key256, purpose: &[u8]) -> Key256 {
    hkdf32(b"tern key derivation v1", root.expose(), &[purpose])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_keys_open_only_with_the_same_kek_and_purpose() {
        let kek = Key256::random().unwrap();
        let key = Key256::random().unwrap();
        let wrapped = wrap_key(&kek, b"p", &key).unwrap();
        assert_eq!(wrapped.len(), WRAPPED_KEY_LEN);
        assert_eq!(unwrap_key(&kek, b"p", &wrapped).unwrap().expose(), key.expose());
        assert_eq!(unwrap_key(&kek, b"q", &wrapped).unwrap_err(), CryptoError::Corrupt);
        assert!(unwrap_key(&Key256::random().unwrap(), b"p", &wrapped).is_err());
        let mut flipped = wrapped.clone();
        flipped[20] ^= 1;
        assert!(unwrap_key(&kek, b"p", &flipped).is_err());
        assert!(unwrap_key(&kek, b"p", &wrapped[..10]).is_err());
    }

    /// A seal as version 1 wrote it: a random nonce, the purpose as AAD.
    fn seal_v1(kek: &Key256, purpose: &[u8], secret: &[u8]) -> Vec<u8> {
        let nonce = [0x54, 0x57, 0x32, 1, 2, 3, 4, 5, 6, 7, 8, 9]; // starts like the v2 magic
        let mut body = secret.to_vec();
        let tag = cipher(kek)
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(purpose), &mut body)
            .unwrap();
        [&nonce[..], &body, tag.as_ref()].concat()
    }

    #[test]
    fn version_one_seals_still_open() {
        let kek = Key256::random().unwrap();
        let old = seal_v1(&kek, b"p", b"an older secret");
        assert_eq!(open(&kek, b"p", &old).unwrap(), b"an older secret");
        assert!(open(&kek, b"q", &old).is_err());
        let new = seal(&kek, b"p", b"an older secret").unwrap();
        assert!(new.starts_with(MAGIC) && new != seal(&kek, b"p", b"an older secret").unwrap());
    }

    #[test]
    fn derivation_is_deterministic_and_purpose_bound() {
        let root = Key256::from_bytes([7; 32]);
        assert_eq!(derive(&root, b"a").expose(), derive(&root, b"a").expose());
        assert_ne!(derive(&root, b"a").expose(), derive(&root, b"b").expose());
    }
}
