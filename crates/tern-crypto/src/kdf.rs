//! HKDF-SHA256 to a 256-bit key, and the AES-256-GCM cipher of such a key:
//! the two primitives every format here is built from.

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};

use crate::Key256;

struct Len32;

impl KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// HKDF-SHA256(salt, ikm, info parts concatenated), 32 bytes.
pub(crate) fn hkdf32(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> Key256 {
    let prk = Salt::new(HKDF_SHA256, salt).extract(ikm);
    let okm = prk.expand(info, Len32).expect("32 bytes is within HKDF-SHA256's limit");
    let mut bytes = [0u8; 32];
    okm.fill(&mut bytes).expect("length matches");
    let key = Key256::from_bytes(bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    key
}

/// The AES-256-GCM cipher keyed by `key`.
pub(crate) fn cipher(key: &Key256) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.expose()).expect("32-byte key fits AES-256"))
}
