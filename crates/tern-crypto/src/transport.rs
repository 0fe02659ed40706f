//! Sealing secrets from one region to another, so key material never
//! crosses the network in plaintext, even on loopback, and only a region of
//! the same deployment can send it.
//!
//! ```text
//! sealed = ephemeral X25519 public key (32) | AES-256-GCM(secret) | tag (16)
//! cek    = HKDF-SHA256(ikm = X25519(ephemeral, recipient) | psk,
//!                      salt = ephemeral public | recipient public,
//!                      info = "tern transport v2" | context)
//! ```
//!
//! This is HPKE's PSK mode in spirit (RFC 9180 §5.1.2), written out on
//! aws-lc-rs's X25519 and HKDF because no maintained HPKE crate builds on
//! it. `psk` is the deployment's peer secret, which every region holds and
//! no client does: a man in the middle who substitutes its own public key
//! for the recipient's still cannot derive the content key, and cannot seal
//! anything a region would open. Anonymous ephemeral-static X25519 alone
//! (version 1) authenticated neither.
//!
//! Every message has a fresh ephemeral key, hence a fresh content key, so the
//! GCM nonce can be fixed at zero. `context` (what the secret is for, both
//! regions' names, the request's nonce) is bound through the KDF: a sealed
//! secret opened for another purpose, by another region, or in answer to
//! another request fails.

use aws_lc_rs::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};

use crate::kdf::{cipher, hkdf32};
use crate::{CryptoError, Key256};

/// Length of an X25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
const INFO: &[u8] = b"tern transport v2";

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

    /// Opens what [`seal_to`] sealed to this key with the same `psk` and `context`.
    pub fn open(&self, psk: &Key256, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < PUBLIC_KEY_LEN + TAG_LEN {
            return Err(CryptoError::Corrupt);
        }
        let (ephemeral, body) = sealed.split_at(PUBLIC_KEY_LEN);
        let exchange = Exchange { ephemeral, recipient: &self.public, psk, context };
        let cipher = content_key(&self.private, ephemeral, &exchange)?;
        let mut buf = body.to_vec();
        let len = cipher.open_in_place(zero_nonce(), Aad::empty(), &mut buf).map_err(|_| CryptoError::Corrupt)?.len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Seals `secret` so only the holder of `recipient`'s private key and of
/// `psk` can open it.
pub fn seal_to(
    recipient: &[u8; PUBLIC_KEY_LEN],
    psk: &Key256,
    context: &[u8],
    secret: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let ephemeral = TransportKey::from_private(PrivateKey::generate(&X25519).map_err(|_| CryptoError::Random)?);
    let exchange = Exchange { ephemeral: &ephemeral.public, recipient, psk, context };
    let cipher = content_key(&ephemeral.private, recipient, &exchange)?;
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

/// What both sides of one message agree on besides the X25519 secret.
struct Exchange<'a> {
    ephemeral: &'a [u8],
    recipient: &'a [u8],
    psk: &'a Key256,
    context: &'a [u8],
}

/// The content key of one message: `mine` agrees with `theirs`; the salt
/// binds both public keys of the exchange (ephemeral first), the input key
/// material the deployment's peer secret.
fn content_key(mine: &PrivateKey, theirs: &[u8], exchange: &Exchange<'_>) -> Result<LessSafeKey, CryptoError> {
    let peer = UnparsedPublicKey::new(&X25519, theirs);
    agreement::agree(mine, peer, CryptoError::Corrupt, |shared| {
        let salt = [exchange.ephemeral, exchange.recipient].concat();
        let ikm = zeroize::Zeroizing::new([shared, exchange.psk.expose().as_slice()].concat());
        Ok(cipher(&hkdf32(&salt, &ikm, &[INFO, exchange.context])))
    })
}

/// The deployment's peer secret, derived from the root secret access key
/// that every region of a deployment is given and no other party holds.
#[must_use]
pub fn peer_secret(root_secret_access_key: &str) -> Key256 {
    let seed = Key256::from_bytes(crate::sha256(root_secret_access_key.as_bytes()));
    crate::wrap::derive(&seed, b"tern peer secret v1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipient_opens_and_only_for_the_same_context() {
        let psk = peer_secret("root secret");
        let recipient = TransportKey::from_seed(&Key256::random().unwrap());
        let other = TransportKey::from_seed(&Key256::random().unwrap());
        let sealed = seal_to(&recipient.public(), &psk, b"mrk-1/v1", b"material").unwrap();
        assert_eq!(recipient.open(&psk, b"mrk-1/v1", &sealed).unwrap(), b"material");
        assert!(recipient.open(&psk, b"mrk-1/v2", &sealed).is_err());
        assert!(other.open(&psk, b"mrk-1/v1", &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[40] ^= 1;
        assert!(recipient.open(&psk, b"mrk-1/v1", &flipped).is_err());
        assert!(recipient.open(&psk, b"mrk-1/v1", &sealed[..20]).is_err());
        assert!(!sealed.windows(8).any(|w| w == b"material"));
    }

    #[test]
    fn without_the_peer_secret_nobody_seals_or_opens() {
        let psk = peer_secret("root secret");
        let outsider = peer_secret("a guess");
        let region = TransportKey::from_seed(&Key256::random().unwrap());
        // A man in the middle hands the sender its own key: what it receives stays closed to it.
        let attacker = TransportKey::from_seed(&Key256::random().unwrap());
        let intercepted = seal_to(&attacker.public(), &psk, b"ctx", b"material").unwrap();
        assert!(attacker.open(&outsider, b"ctx", &intercepted).is_err());
        // And what it seals itself, the region refuses.
        let forged = seal_to(&region.public(), &outsider, b"ctx", b"forged directory").unwrap();
        assert!(region.open(&psk, b"ctx", &forged).is_err());
    }

    #[test]
    fn the_key_pair_is_a_function_of_its_seed() {
        let seed = Key256::from_bytes([9; 32]);
        assert_eq!(TransportKey::from_seed(&seed).public(), TransportKey::from_seed(&seed).public());
    }
}
