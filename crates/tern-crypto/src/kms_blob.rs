//! The KMS ciphertext blob: what `Encrypt` and `GenerateDataKey` return and
//! Decrypt takes back.
//!
//! ```text
//! blob   = version (1) = 0x01 | key id (36, ASCII) | material version: u32 BE
//!        | salt (16) | nonce (12) | AES-256-GCM ciphertext | tag (16)
//! cek    = HKDF-SHA256(ikm = key material, salt = salt, info = "tern kms blob v1")
//! aad    = every byte before the ciphertext | canonical(encryption context)
//! canonical(ec) = count: u16 BE | for each pair, sorted by key:
//!                 key_len: u16 BE | key | value_len: u16 BE | value
//! ```
//!
//! The key id travels in the clear so any region holding the key (an MRK
//! replica) finds it without a cross-region call; the material version picks
//! the right material after rotation. Each blob gets its own content key from
//! a random 128-bit salt, so no material ever sees enough GCM nonces to
//! matter. The header and the encryption context are both authenticated:
//! changing the key id, the version, or a single context entry fails the tag.
//! **Never change this layout** for version 1; a new layout needs a new
//! version byte.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};

use crate::kdf::{cipher, hkdf32};
use crate::{CryptoError, Key256};

const VERSION: u8 = 1;
/// Every KMS key id is 36 characters: a UUID, or `mrk-` and 32 hex digits.
pub const KEY_ID_LEN: usize = 36;
const SALT_LEN: usize = 16;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + 4 + SALT_LEN + NONCE_LEN;
/// The bytes a blob adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
const INFO: &[u8] = b"tern kms blob v1";

/// What a blob names in the clear: which key, which material version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHeader {
    pub key_id: String,
    pub material_version: u32,
}

/// Reads the header of `blob` without decrypting; `Corrupt` if it is not a
/// well-formed version-1 blob.
pub fn header(blob: &[u8]) -> Result<BlobHeader, CryptoError> {
    if blob.len() < OVERHEAD || blob[0] != VERSION {
        return Err(CryptoError::Corrupt);
    }
    let key_id = std::str::from_utf8(&blob[1..=KEY_ID_LEN]).map_err(|_| CryptoError::Corrupt)?;
    if !key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(CryptoError::Corrupt);
    }
    let version = blob[1 + KEY_ID_LEN..HEADER_LEN - SALT_LEN - NONCE_LEN].try_into().expect("4 bytes");
    Ok(BlobHeader { key_id: key_id.to_owned(), material_version: u32::from_be_bytes(version) })
}

/// Encrypts `plaintext` under `material`, naming `key` in the header and
/// binding `context`.
pub fn encrypt(
    key: &BlobHeader,
    material: &Key256,
    context: &BTreeMap<String, String>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if key.key_id.len() != KEY_ID_LEN {
        return Err(CryptoError::Corrupt);
    }
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(VERSION);
    out.extend_from_slice(key.key_id.as_bytes());
    out.extend_from_slice(&key.material_version.to_be_bytes());
    let mut random = [0u8; SALT_LEN + NONCE_LEN];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| CryptoError::Random)?;
    out.extend_from_slice(&random);
    let aad = associated_data(&out, context)?;
    out.extend_from_slice(plaintext);
    let (head, body) = out.split_at_mut(HEADER_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&head[HEADER_LEN - NONCE_LEN..]).map_err(|_| CryptoError::Corrupt)?;
    let tag = content_key(material, &head[HEADER_LEN - NONCE_LEN - SALT_LEN..HEADER_LEN - NONCE_LEN])
        .seal_in_place_separate_tag(nonce, Aad::from(aad), body)
        .map_err(|_| CryptoError::Corrupt)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Decrypts a blob with the material its header names; any change to the
/// blob or the context gives `Corrupt`.
pub fn decrypt(blob: &[u8], material: &Key256, context: &BTreeMap<String, String>) -> Result<Vec<u8>, CryptoError> {
    header(blob)?;
    let (head, sealed) = blob.split_at(HEADER_LEN);
    let aad = associated_data(head, context)?;
    let nonce = Nonce::try_assume_unique_for_key(&head[HEADER_LEN - NONCE_LEN..]).map_err(|_| CryptoError::Corrupt)?;
    let mut buf = sealed.to_vec();
    let len = content_key(material, &head[HEADER_LEN - NONCE_LEN - SALT_LEN..HEADER_LEN - NONCE_LEN])
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| CryptoError::Corrupt)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn associated_data(head: &[u8], context: &BTreeMap<String, String>) -> Result<Vec<u8>, CryptoError> {
    let too_long = |_| CryptoError::Corrupt;
    let mut aad = Vec::with_capacity(head.len() + 64);
    aad.extend_from_slice(head);
    aad.extend_from_slice(&u16::try_from(context.len()).map_err(too_long)?.to_be_bytes());
    for (k, v) in context {
        for part in [k, v] {
            aad.extend_from_slice(&u16::try_from(part.len()).map_err(too_long)?.to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
    }
    Ok(aad)
}

fn content_key(material: &Key256, salt: &[u8]) -> LessSafeKey {
    cipher(&hkdf32(salt, material.expose(), &[INFO]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> BlobHeader {
        BlobHeader { key_id: "mrk-0123456789abcdef0123456789abcdef".into(), material_version: 3 }
    }

    fn context(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn round_trips_and_names_its_key() {
        let material = Key256::random().unwrap();
        let ec = context(&[("aws:s3:arn", "arn:aws:s3:::b/k"), ("a", "")]);
        let blob = encrypt(&key(), &material, &ec, b"secret").unwrap();
        assert_eq!(blob.len(), OVERHEAD + 6);
        assert_eq!(header(&blob).unwrap(), key());
        assert_eq!(decrypt(&blob, &material, &ec).unwrap(), b"secret");
        assert_ne!(blob, encrypt(&key(), &material, &ec, b"secret").unwrap(), "each blob is fresh");
    }

    #[test]
    fn any_change_to_blob_context_or_material_fails() {
        let material = Key256::random().unwrap();
        let ec = context(&[("k", "v")]);
        let blob = encrypt(&key(), &material, &ec, b"data key bytes").unwrap();
        for i in 0..blob.len() {
            let mut flipped = blob.clone();
            flipped[i] ^= 0x20;
            assert!(decrypt(&flipped, &material, &ec).is_err(), "byte {i}");
        }
        assert!(decrypt(&blob, &material, &context(&[("k", "w")])).is_err());
        assert!(decrypt(&blob, &material, &context(&[])).is_err());
        assert!(decrypt(&blob, &material, &context(&[("k", "v"), ("x", "")])).is_err());
        assert!(decrypt(&blob, &Key256::random().unwrap(), &ec).is_err());
        assert!(decrypt(&blob[..blob.len() - 1], &material, &ec).is_err());
        assert!(header(&blob[..OVERHEAD - 1]).is_err());
    }

    #[test]
    fn context_encoding_is_unambiguous() {
        // {"ab": "c"} and {"a": "bc"} must not share an AAD.
        let material = Key256::random().unwrap();
        let blob = encrypt(&key(), &material, &context(&[("ab", "c")]), b"x").unwrap();
        assert!(decrypt(&blob, &material, &context(&[("a", "bc")])).is_err());
    }
}
