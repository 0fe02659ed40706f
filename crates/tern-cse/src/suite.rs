//! Algorithm suites and commitment policies, as the S3EC specification names
//! them, and the key derivation of the key-committing suite.

use aws_lc_rs::hkdf::{HKDF_SHA512, KeyType, Salt};
use zeroize::Zeroizing;

use crate::cipher::{ContentKey, KEY_LEN};

/// Bytes of a V3 message id (the HKDF salt) and of its key commitment.
pub const MESSAGE_ID_LEN: usize = 28;
pub const COMMITMENT_LEN: usize = 28;

/// How an object's content is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// `ALG_AES_256_CBC_IV16_NO_KDF` (0x0070): legacy, unauthenticated; read only.
    AesCbc,
    /// `ALG_AES_256_GCM_IV12_TAG16_NO_KDF` (0x0072): the V2 format.
    AesGcm,
    /// `ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY` (0x0073): the V3 format.
    AesGcmCommitting,
}

impl Suite {
    /// The suite's name in the S3EC specification.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::AesCbc => "ALG_AES_256_CBC_IV16_NO_KDF",
            Self::AesGcm => "ALG_AES_256_GCM_IV12_TAG16_NO_KDF",
            Self::AesGcmCommitting => "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
        }
    }

    /// The content-algorithm value in metadata (`x-amz-cek-alg` / `x-amz-c`),
    /// also bound into the KMS encryption context as `aws:x-amz-cek-alg`.
    #[must_use]
    pub fn content_alg(self) -> &'static str {
        match self {
            Self::AesCbc => "AES/CBC/PKCS5Padding",
            Self::AesGcm => "AES/GCM/NoPadding",
            Self::AesGcmCommitting => "115",
        }
    }

    #[must_use]
    pub fn from_content_alg(value: &str) -> Option<Self> {
        [Self::AesCbc, Self::AesGcm, Self::AesGcmCommitting].into_iter().find(|s| s.content_alg() == value)
    }

    #[must_use]
    pub fn is_committing(self) -> bool {
        self == Self::AesGcmCommitting
    }

    #[must_use]
    pub fn is_legacy(self) -> bool {
        self == Self::AesCbc
    }

    /// The suite id as two big-endian bytes: the V3 GCM AAD and HKDF info prefix.
    #[must_use]
    pub fn id_bytes(self) -> [u8; 2] {
        match self {
            Self::AesCbc => [0x00, 0x70],
            Self::AesGcm => [0x00, 0x72],
            Self::AesGcmCommitting => [0x00, 0x73],
        }
    }
}

/// Which suites a client may write and read (the specification's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitmentPolicy {
    /// Writes V2 (non-committing); reads everything allowed otherwise.
    ForbidEncryptAllowDecrypt,
    /// Writes V3; also reads non-committing objects.
    RequireEncryptAllowDecrypt,
    /// Writes and reads key-committing objects only.
    #[default]
    RequireEncryptRequireDecrypt,
}

impl CommitmentPolicy {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ForbidEncryptAllowDecrypt => "FORBID_ENCRYPT_ALLOW_DECRYPT",
            Self::RequireEncryptAllowDecrypt => "REQUIRE_ENCRYPT_ALLOW_DECRYPT",
            Self::RequireEncryptRequireDecrypt => "REQUIRE_ENCRYPT_REQUIRE_DECRYPT",
        }
    }

    #[must_use]
    pub fn allows_writing(self, suite: Suite) -> bool {
        match self {
            Self::ForbidEncryptAllowDecrypt => suite == Suite::AesGcm,
            Self::RequireEncryptAllowDecrypt | Self::RequireEncryptRequireDecrypt => suite.is_committing(),
        }
    }

    #[must_use]
    pub fn allows_reading(self, suite: Suite) -> bool {
        self != Self::RequireEncryptRequireDecrypt || suite.is_committing()
    }
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The content key and key commitment of a V3 object: HKDF-SHA512 with the
/// message id as salt and the data key as input, expanded with the suite
/// id and `DERIVEKEY` / `COMMITKEY`.
#[must_use]
pub fn derive_committed_key(data_key: &[u8; KEY_LEN], message_id: &[u8]) -> (ContentKey, [u8; COMMITMENT_LEN]) {
    let prk = Salt::new(HKDF_SHA512, message_id).extract(data_key);
    let id = Suite::AesGcmCommitting.id_bytes();
    let expand = |label: &[u8], out: &mut [u8]| {
        let info = [&id[..], label];
        let okm = prk.expand(&info, Len(out.len())).expect("the length is within HKDF-SHA512's limit");
        okm.fill(out).expect("the length matches");
    };
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    expand(b"DERIVEKEY", &mut key[..]);
    let mut commitment = [0u8; COMMITMENT_LEN];
    expand(b"COMMITKEY", &mut commitment);
    (key, commitment)
}

/// The fixed IV of the key-committing suite: twelve 0x01 bytes (its keys
/// are never reused, being derived from a fresh message id each time).
pub const COMMITTING_IV: [u8; 12] = [1; 12];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_algorithms_round_trip_and_unknown_ones_are_none() {
        for suite in [Suite::AesCbc, Suite::AesGcm, Suite::AesGcmCommitting] {
            assert_eq!(Suite::from_content_alg(suite.content_alg()), Some(suite));
        }
        assert_eq!(Suite::from_content_alg("116"), None);
    }

    #[test]
    fn policies_gate_suites_as_the_specification_says() {
        use CommitmentPolicy::*;
        assert!(RequireEncryptRequireDecrypt.allows_writing(Suite::AesGcmCommitting));
        assert!(!RequireEncryptRequireDecrypt.allows_reading(Suite::AesGcm));
        assert!(RequireEncryptAllowDecrypt.allows_reading(Suite::AesGcm));
        assert!(!RequireEncryptAllowDecrypt.allows_writing(Suite::AesGcm));
        assert!(ForbidEncryptAllowDecrypt.allows_writing(Suite::AesGcm));
        assert!(!ForbidEncryptAllowDecrypt.allows_writing(Suite::AesGcmCommitting));
    }
}
