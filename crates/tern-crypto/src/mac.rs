//! HMAC-SHA256 under a purpose-derived key, for values a region vouches for
//! (tickets, fingerprints): computed, then checked in constant time.

use aws_lc_rs::{constant_time, hmac};

use crate::Key256;

/// An HMAC-SHA256 key.
pub struct Mac {
    key: hmac::Key,
}

impl std::fmt::Debug for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mac(<redacted>)")
    }
}

impl Mac {
    /// The key for `purpose`, derived from `root`.
    #[must_use]
    pub fn derived(root: &Key256, purpose: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, crate::wrap::derive(root, purpose).expose()) }
    }

    /// The tag of `message`.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; 32] {
        hmac::sign(&self.key, message).as_ref().try_into().expect("HMAC-SHA256 tags are 32 bytes")
    }

    /// Whether `tag` is `message`'s, compared in constant time.
    #[must_use]
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        constant_time::verify_slices_are_equal(&self.sign(message), tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_verify_only_for_their_message_and_key() {
        let root = Key256::from_bytes([3; 32]);
        let mac = Mac::derived(&root, b"a");
        let tag = mac.sign(b"message");
        assert!(mac.verify(b"message", &tag));
        assert!(!mac.verify(b"other", &tag));
        assert!(!Mac::derived(&root, b"b").verify(b"message", &tag));
        assert!(!mac.verify(b"message", &tag[..31]));
    }
}
