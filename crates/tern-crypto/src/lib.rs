//! Tern's cryptography, on aws-lc-rs. No I/O and no async: callers feed bytes
//! in and take bytes out.
//!
//! - [`Key256`]: a zeroizing 256-bit key whose `Debug` never shows it.
//! - [`wrap`]: sealing one key under another (AES-256-GCM), and deriving
//!   purpose-bound keys from a root key (HKDF-SHA256).
//! - [`segments`]: the at-rest format of object bytes, encrypted in 64 KiB
//!   segments so a range read decrypts only what it touches.
//! - [`kms_blob`]: the KMS ciphertext blob (key id, material version, context
//!   bound as associated data).
//! - [`transport`]: sealing key material to another region's X25519 key,
//!   under the deployment's peer secret.
//! - [`mac`]: HMAC-SHA256 tags a region vouches for.

mod kdf;
mod key;
pub mod kms_blob;
pub mod mac;
pub mod segments;
pub mod transport;
pub mod wrap;

pub use key::Key256;

/// SHA-256 of `bytes`.
#[must_use]
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// Fills `buf` from the system CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| CryptoError::Random)
}

/// Why bytes could not be decrypted. Deliberately uninformative: the reason
/// (wrong key, tampering, truncation) must not leak to an attacker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("ciphertext is malformed or was tampered with")]
    Corrupt,
    #[error("the system random generator failed")]
    Random,
}
