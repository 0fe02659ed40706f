//! The hash chain that makes an audit trail tamper-evident.
//!
//! Every line of every file is a JSON object whose last member is
//! `"ternChain"`: HMAC-SHA256, under a key derived from the region's root
//! key, of the previous line's tag followed by the line's own bytes without
//! that member. The chain runs across files: a file's first line follows
//! the last line of the file before it. Changing, removing, inserting or
//! reordering a line breaks every tag after it, and without the root key
//! nobody can forge new ones.
//!
//! Lines are sealed and opened as bytes, never re-serialized, so what
//! `verify` checks is exactly what is stored.

use tern_crypto::Key256;
use tern_crypto::mac::Mac;

/// The tag before the first line of a region's first file.
pub const GENESIS: Tag = [0; 32];

/// A line's tag.
pub type Tag = [u8; 32];

const MEMBER: &[u8] = b",\"ternChain\":\"";
/// `,"ternChain":"<64 hex digits>"}`
const SUFFIX_LEN: usize = MEMBER.len() + 64 + 2;

/// The purpose from which the chain's key is derived.
const PURPOSE: &[u8] = b"tern/audit/chain/v1";

/// The key a region's chain is computed under.
pub struct ChainKey {
    mac: Mac,
}

impl ChainKey {
    #[must_use]
    pub fn derived(root_key: &Key256) -> Self {
        Self { mac: Mac::derived(root_key, PURPOSE) }
    }

    fn tag(&self, previous: &Tag, body: &[u8]) -> Tag {
        self.mac.sign(&[previous.as_slice(), body].concat())
    }

    /// The stored line (newline included) of the JSON object `object`,
    /// following `previous`, and its tag.
    ///
    /// # Panics
    /// If `object` is not a serialized JSON object with at least one
    /// member (a bug of the caller).
    #[must_use]
    pub fn seal(&self, previous: &Tag, object: &[u8]) -> (Vec<u8>, Tag) {
        assert!(object.len() > 2 && object.starts_with(b"{") && object.ends_with(b"}"), "not a JSON object");
        let tag = self.tag(previous, object);
        let mut line = Vec::with_capacity(object.len() + SUFFIX_LEN + 1);
        line.extend_from_slice(&object[..object.len() - 1]);
        line.extend_from_slice(MEMBER);
        line.extend_from_slice(hex::encode(tag).as_bytes());
        line.extend_from_slice(b"\"}\n");
        (line, tag)
    }

    /// The tag of stored `line` (without its newline) if it follows
    /// `previous` and is unchanged; compared in constant time.
    #[must_use]
    pub fn open(&self, previous: &Tag, line: &[u8]) -> Option<Tag> {
        let (body, claimed) = split(line)?;
        self.mac.verify(&[previous.as_slice(), &body].concat(), &claimed).then_some(claimed)
    }
}

/// The tag a line claims, unchecked (to continue a chain after a crash).
#[must_use]
pub fn claimed_tag(line: &[u8]) -> Option<Tag> {
    split(line).map(|(_, tag)| tag)
}

/// A stored line's object without our member, and the tag it claims.
fn split(line: &[u8]) -> Option<(Vec<u8>, Tag)> {
    let tail_at = line.len().checked_sub(SUFFIX_LEN)?;
    let (head, tail) = line.split_at(tail_at);
    let hex_digits = tail.strip_prefix(MEMBER)?.strip_suffix(b"\"}")?;
    let mut tag = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut tag).ok()?;
    let mut body = head.to_vec();
    body.push(b'}');
    Some((body, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ChainKey {
        ChainKey::derived(&Key256::from_bytes([7; 32]))
    }

    #[test]
    fn lines_open_only_unchanged_and_in_order() {
        let key = key();
        let (first, t1) = key.seal(&GENESIS, br#"{"a":1}"#);
        let (second, t2) = key.seal(&t1, br#"{"b":"x"}"#);
        assert!(first.ends_with(b"\"}\n"));
        let first = &first[..first.len() - 1];
        let second = &second[..second.len() - 1];
        assert_eq!(key.open(&GENESIS, first), Some(t1));
        assert_eq!(key.open(&t1, second), Some(t2));
        // Reordered, or changed by one byte, or under another key: refused.
        assert_eq!(key.open(&GENESIS, second), None);
        let mut changed = second.to_vec();
        changed[6] = b'y';
        assert_eq!(key.open(&t1, &changed), None);
        assert_eq!(ChainKey::derived(&Key256::from_bytes([8; 32])).open(&GENESIS, first), None);
        let stored: serde_json::Value = serde_json::from_slice(first).unwrap();
        assert_eq!(stored["a"], 1);
        assert_eq!(claimed_tag(second), Some(t2));
        assert_eq!(claimed_tag(b"{}"), None);
        assert_eq!(key.open(&GENESIS, b""), None);
    }
}
