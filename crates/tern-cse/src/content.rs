//! One object's content, given its data key: the envelope and sealer of a
//! new object, and the opener of a stored one (key commitment first).

use bytes::BytesMut;
use subtle::ConstantTimeEq;

use crate::cipher::{CbcOpener, ContentKey, CtrOpener, GCM_IV_LEN, GcmOpener, GcmParams, KEY_LEN, TAG_LEN};
use crate::envelope::{Envelope, Format, KeyWrap};
use crate::error::{CseError, CseResult};
use crate::suite::{COMMITTING_IV, MESSAGE_ID_LEN, Suite, derive_committed_key};

/// A data key: as the keyring unwrapped it, and as it is stored.
pub struct DataKey {
    pub plaintext: ContentKey,
    pub encrypted: Vec<u8>,
}

/// How many fresh random bytes [`seal`] needs: the V3 message id, or the V2 IV.
#[must_use]
pub fn nonce_len(suite: Suite) -> usize {
    if suite.is_committing() { MESSAGE_ID_LEN } else { GCM_IV_LEN }
}

/// Starts encrypting an object under `suite` (V3 or V2): its envelope and
/// its content cipher. `context` is the full encryption context KMS bound
/// (reserved entry included); `nonce` comes fresh from a CSPRNG.
///
/// # Panics
/// If `nonce` is not [`nonce_len`] bytes, or `suite` is the legacy CBC one.
#[must_use]
pub fn seal(suite: Suite, key: &DataKey, context: Vec<(String, String)>, nonce: &[u8]) -> (Envelope, GcmParams) {
    assert_eq!(nonce.len(), nonce_len(suite), "a nonce of the suite's length");
    let mut envelope = Envelope {
        format: Format::V2,
        suite,
        wrap: KeyWrap::KmsContext,
        encrypted_key: key.encrypted.clone(),
        iv: nonce.to_vec(),
        context,
        message_id: None,
        commitment: None,
    };
    let params = match suite {
        Suite::AesGcmCommitting => {
            let message_id: [u8; MESSAGE_ID_LEN] = nonce.try_into().expect("length checked");
            let (content_key, commitment) = derive_committed_key(&key.plaintext, &message_id);
            envelope.format = Format::V3;
            envelope.iv = COMMITTING_IV.to_vec();
            envelope.message_id = Some(message_id);
            envelope.commitment = Some(commitment);
            GcmParams::new(content_key, COMMITTING_IV, &suite.id_bytes())
        }
        Suite::AesGcm => GcmParams::new(key.plaintext.clone(), nonce.try_into().expect("length checked"), b""),
        Suite::AesCbc => panic!("legacy CBC is never written"),
    };
    (envelope, params)
}

/// The key and IV the content of `envelope` is encrypted with. For V3, the
/// key commitment is verified first, in constant time.
fn content_key(envelope: &Envelope, data_key: &ContentKey) -> CseResult<(ContentKey, Vec<u8>)> {
    let (Some(message_id), Some(stored)) = (envelope.message_id, envelope.commitment) else {
        return Ok((data_key.clone(), envelope.iv.clone()));
    };
    let (key, derived) = derive_committed_key(data_key, &message_id);
    if !bool::from(derived.ct_eq(&stored)) {
        return Err(CseError::Tampered("the key commitment does not match the data key".into()));
    }
    Ok((key, envelope.iv.clone()))
}

fn gcm_iv(iv: &[u8]) -> CseResult<&[u8; GCM_IV_LEN]> {
    iv.try_into().map_err(|_| CseError::Malformed("a GCM IV is 12 bytes".into()))
}

/// The GCM parameters of a stored GCM object (key commitment checked).
fn gcm_params(envelope: &Envelope, data_key: &ContentKey) -> CseResult<GcmParams> {
    let (key, iv) = content_key(envelope, data_key)?;
    let aad = if envelope.suite.is_committing() { &envelope.suite.id_bytes()[..] } else { &[] };
    Ok(GcmParams::new(key, *gcm_iv(&iv)?, aad))
}

/// Decrypts a whole stored GCM object held in memory (ciphertext ‖ tag), in
/// place; the plaintext length. Legacy CBC objects must stream instead.
pub fn open_in_place(envelope: &Envelope, data_key: &ContentKey, stored: &mut [u8]) -> CseResult<usize> {
    if envelope.suite == Suite::AesCbc {
        return Err(CseError::NotAllowed("legacy CBC objects are decrypted as a stream".into()));
    }
    Ok(gcm_params(envelope, data_key)?.open_in_place(stored)?)
}

/// Decrypts an object's content as it streams by. For GCM, the trailing tag
/// is held back and checked by [`ContentOpener::finish`]; until then, what
/// it wrote is unauthenticated.
pub enum ContentOpener {
    Gcm { opener: Box<GcmOpener>, tail: Vec<u8> },
    Cbc(CbcOpener),
}

impl ContentOpener {
    pub fn new(envelope: &Envelope, data_key: &ContentKey) -> CseResult<Self> {
        if envelope.suite != Suite::AesCbc {
            let opener = Box::new(gcm_params(envelope, data_key)?.opener());
            return Ok(Self::Gcm { opener, tail: Vec::with_capacity(TAG_LEN) });
        }
        let (key, iv) = content_key(envelope, data_key)?;
        let iv: &[u8; 16] = iv.as_slice().try_into().map_err(|_| CseError::Malformed("a CBC IV is 16 bytes".into()))?;
        Ok(Self::Cbc(CbcOpener::new(&key, iv)))
    }

    /// Decrypts the next piece of the stored bytes into `out`.
    pub fn update(&mut self, chunk: &[u8], out: &mut BytesMut) -> CseResult<()> {
        match self {
            Self::Cbc(cbc) => Ok(cbc.open(chunk, out)?),
            Self::Gcm { opener, tail } => {
                // Everything but the last TAG_LEN bytes seen so far is ciphertext.
                let release = (tail.len() + chunk.len()).saturating_sub(TAG_LEN);
                let from_tail = release.min(tail.len());
                opener.open(&tail[..from_tail], out)?;
                opener.open(&chunk[..release - from_tail], out)?;
                tail.drain(..from_tail);
                tail.extend_from_slice(&chunk[release - from_tail..]);
                Ok(())
            }
        }
    }

    /// Ends decryption: checks the GCM tag (or the CBC padding).
    pub fn finish(self, out: &mut BytesMut) -> CseResult<()> {
        match self {
            Self::Cbc(cbc) => Ok(cbc.finish(out)?),
            Self::Gcm { opener, tail } => Ok(opener.verify(&tail)?),
        }
    }
}

/// Decrypts stored bytes from ciphertext block `first_block` on, without
/// authenticating them: the ranged reads of the specification's CTR suites.
pub fn range_opener(envelope: &Envelope, data_key: &ContentKey, first_block: u64) -> CseResult<CtrOpener> {
    if envelope.suite == Suite::AesCbc {
        return Err(CseError::NotAllowed("ranged reads of legacy CBC objects are not supported".into()));
    }
    let (key, iv) = content_key(envelope, data_key)?;
    Ok(CtrOpener::at_block(&key, gcm_iv(&iv)?, first_block))
}

/// A 32-byte data key from what KMS returned.
pub fn data_key_from(bytes: &[u8]) -> CseResult<ContentKey> {
    let key: [u8; KEY_LEN] =
        bytes.try_into().map_err(|_| CseError::Kms(format!("a data key of {} bytes, not 32", bytes.len())))?;
    Ok(zeroize::Zeroizing::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vector {
        name: String,
        suite: String,
        data_key: String,
        nonce: String,
        encrypted_key: String,
        context: Vec<(String, String)>,
        plaintext: String,
        ciphertext: String,
        metadata: std::collections::BTreeMap<String, String>,
    }

    fn vectors() -> Vec<Vector> {
        serde_json::from_str(include_str!("../tests/kat/vectors.json")).expect("the vectors parse")
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    fn key_of(v: &Vector) -> DataKey {
        use base64::Engine as _;
        DataKey {
            plaintext: data_key_from(&unhex(&v.data_key)).unwrap(),
            encrypted: base64::engine::general_purpose::STANDARD.decode(&v.encrypted_key).unwrap(),
        }
    }

    #[test]
    fn sealing_writes_what_the_official_python_client_writes() {
        for v in vectors() {
            let suite = if v.suite == "v3" { Suite::AesGcmCommitting } else { Suite::AesGcm };
            let context = crate::envelope::context_for(suite, &v.context).unwrap();
            let (envelope, params) = seal(suite, &key_of(&v), context, &unhex(&v.nonce));
            let metadata: std::collections::BTreeMap<String, String> =
                envelope.entries().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            assert_eq!(metadata, v.metadata, "{}", v.name);
            let mut sealer = params.sealer();
            let mut out = BytesMut::new();
            sealer.seal(&unhex(&v.plaintext), &mut out).unwrap();
            out.extend_from_slice(&sealer.finish());
            assert_eq!(out.to_vec(), unhex(&v.ciphertext), "{}", v.name);
            let mut one_shot = BytesMut::from(&unhex(&v.plaintext)[..]);
            params.seal_in_place(&mut one_shot).unwrap();
            assert_eq!(one_shot.to_vec(), unhex(&v.ciphertext), "{} in one shot", v.name);
        }
    }

    #[test]
    fn opening_reads_what_the_official_python_client_wrote_and_nothing_altered() {
        for v in vectors() {
            let envelope = crate::envelope::parse(&v.metadata, None).unwrap();
            let key = key_of(&v).plaintext;
            let ciphertext = unhex(&v.ciphertext);
            let open = |bytes: &[u8], envelope: &Envelope| -> CseResult<Vec<u8>> {
                let mut opener = ContentOpener::new(envelope, &key)?;
                let mut out = BytesMut::new();
                for chunk in bytes.chunks(5) {
                    opener.update(chunk, &mut out)?;
                }
                opener.finish(&mut out).map(|()| out.to_vec())
            };
            assert_eq!(open(&ciphertext, &envelope).unwrap(), unhex(&v.plaintext), "{}", v.name);
            let mut in_place = ciphertext.clone();
            let len = open_in_place(&envelope, &key, &mut in_place).unwrap();
            assert_eq!(&in_place[..len], &unhex(&v.plaintext)[..], "{} in place", v.name);
            let mut flipped = ciphertext.clone();
            flipped[0] ^= 0x80;
            assert!(matches!(open(&flipped, &envelope), Err(CseError::Tampered(_))), "{}", v.name);
            assert!(open(&ciphertext[..ciphertext.len() - 1], &envelope).is_err(), "{} truncated", v.name);
            if let Some(mut commitment) = envelope.commitment {
                commitment[0] ^= 1;
                let forged = Envelope { commitment: Some(commitment), ..envelope.clone() };
                assert!(matches!(open(&ciphertext, &forged), Err(CseError::Tampered(m)) if m.contains("commitment")));
            }
        }
    }
}
