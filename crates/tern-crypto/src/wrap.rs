//! Keys sealing keys: AES-256-GCM with a random nonce and a purpose label as
//! associated data, and HKDF-SHA256 to derive purpose-bound keys from a root.

use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};

use crate::kdf::{cipher, hkdf32};
use crate::{CryptoError, Key256};

/// Length of a wrapped 256-bit key: nonce ‖ ciphertext ‖ tag.
pub const WRAPPED_KEY_LEN: usize = NONCE_LEN + 32 + 16;

/// Seals `secret` under `kek`; `purpose` must be given again to unwrap.
pub fn seal(kek: &Key256, purpose: &[u8], secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| CryptoError::Random)?;
    let mut out = Vec::with_capacity(NONCE_LEN + secret.len() + 16);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(secret);
    let (head, body) = out.split_at_mut(NONCE_LEN);
    let tag = cipher(kek)
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(head.try_into().expect("nonce length")),
            Aad::from(purpose),
            body,
        )
        .map_err(|_| CryptoError::Corrupt)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens what [`seal`] produced with the same `kek` and `purpose`.
pub fn open(kek: &Key256, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
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

    #[test]
    fn derivation_is_deterministic_and_purpose_bound() {
        let root = Key256::from_bytes([7; 32]);
        assert_eq!(derive(&root, b"a").expose(), derive(&root, b"a").expose());
        assert_ne!(derive(&root, b"a").expose(), derive(&root, b"b").expose());
    }
}
