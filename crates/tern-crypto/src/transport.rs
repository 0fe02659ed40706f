//! Sealing secrets to another region's public key, so key material never
//! crosses the network in plaintext, even on loopback.
//!
//! ```text
//! sealed = ephemeral X25519 public key (32) | AES-256-GCM(secret) | tag (16)
//! cek    = HKDF-SHA256(ikm = X25519(ephemeral, recipient),
//!                      salt = ephemeral public | recipient public,
//!                      info = "tern transport v1" | context)
//! ```
//!
//! Every message has a fresh ephemeral key, hence a fresh content key, so the
//! GCM nonce can be fixed at zero. `context` (what the secret is for, e.g. a
//! key id and version) is bound through the KDF: a sealed secret opened for
//! another purpose fails.

use aws_lc_rs::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};

use crate::kdf::{cipher, hkdf32};
use crate::{CryptoError, Key256};

/// Length of an X25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
const INFO: &[u8] = b"tern transport v1";

/// A region's long-lived transport key pair, derived from its root key so it
/// needs no storage of its own.
pub struct TransportKey {
    private: PrivateKey,
    public: [u8; PUBLIC_KEY_LEN],
}

impl std::fmt::Debug for TransportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportKey").field("public", &self.public).finish_non_exhaustive()
    }
}

impl TransportKey {
    /// The key pair whose private half is `seed`.
    #[must_use]
    pub fn from_seed(seed: &Key256) -> Self {
        let private = PrivateKey::from_private_key(&X25519, seed.expose()).expect("any 32 bytes are an X25519 key");
        Self::from_private(private)
    }

    fn from_private(private: PrivateKey) -> Self {
        let public = private.compute_public_key().expect("X25519 public key");
        let public = public.as_ref().try_into().expect("X25519 public keys are 32 bytes");
        Self { private, public }
    }

    #[must_use]
    pub fn public(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public
    }

    /// Opens what [`seal_to`] sealed to this key with the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < PUBLIC_KEY_LEN + TAG_LEN {
            return Err(CryptoError::Corrupt);
        }
        let (ephemeral, body) = sealed.split_at(PUBLIC_KEY_LEN);
        let cipher = content_key(&self.private, ephemeral, ephemeral, &self.public, context)?;
        let mut buf = body.to_vec();
        let len = cipher.open_in_place(zero_nonce(), Aad::empty(), &mut buf).map_err(|_| CryptoError::Corrupt)?.len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Seals `secret` so only the holder of `recipient`'s private key can open it.
pub fn seal_to(recipient: &[u8; PUBLIC_KEY_LEN], context: &[u8], secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let ephemeral = TransportKey::from_private(PrivateKey::generate(&X25519).map_err(|_| CryptoError::Random)?);
    let cipher = content_key(&ephemeral.private, recipient, &ephemeral.public, recipient, context)?;
    let mut out = Vec::with_capacity(PUBLIC_KEY_LEN + secret.len() + TAG_LEN);
    out.extend_from_slice(&ephemeral.public);
    out.extend_from_slice(secret);
    let tag = cipher
        .seal_in_place_separate_tag(zero_nonce(), Aad::empty(), &mut out[PUBLIC_KEY_LEN..])
        .map_err(|_| CryptoError::Corrupt)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

fn zero_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; NONCE_LEN])
}

/// The content key of one message: `mine` agrees with `theirs`; the salt
/// binds both public keys of the exchange (ephemeral first).
fn content_key(
    mine: &PrivateKey,
    theirs: &[u8],
    ephemeral: &[u8],
    recipient: &[u8],
    context: &[u8],
) -> Result<LessSafeKey, CryptoError> {
    let peer = UnparsedPublicKey::new(&X25519, theirs);
    agreement::agree(mine, peer, CryptoError::Corrupt, |shared| {
        let salt = [ephemeral, recipient].concat();
        Ok(cipher(&hkdf32(&salt, shared, &[INFO, context])))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipient_opens_and_only_for_the_same_context() {
        let recipient = TransportKey::from_seed(&Key256::random().unwrap());
        let other = TransportKey::from_seed(&Key256::random().unwrap());
        let sealed = seal_to(&recipient.public(), b"mrk-1/v1", b"material").unwrap();
        assert_eq!(recipient.open(b"mrk-1/v1", &sealed).unwrap(), b"material");
        assert!(recipient.open(b"mrk-1/v2", &sealed).is_err());
        assert!(other.open(b"mrk-1/v1", &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[40] ^= 1;
        assert!(recipient.open(b"mrk-1/v1", &flipped).is_err());
        assert!(recipient.open(b"mrk-1/v1", &sealed[..20]).is_err());
        assert!(!sealed.windows(8).any(|w| w == b"material"));
    }

    #[test]
    fn the_key_pair_is_a_function_of_its_seed() {
        let seed = Key256::from_bytes([9; 32]);
        assert_eq!(TransportKey::from_seed(&seed).public(), TransportKey::from_seed(&seed).public());
    }
}
