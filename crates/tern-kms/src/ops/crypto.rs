//! The cryptographic operations: Encrypt, Decrypt, ReEncrypt,
//! GenerateDataKey(WithoutPlaintext) and GenerateRandom. The typed
//! [`Kms::seal_for`] and [`Kms::open_for`] also serve S3's SSE-KMS.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tern_crypto::kms_blob::{self, BlobHeader};
use zeroize::Zeroizing;

use crate::error::{KmsError, KmsResult};
use crate::model::{KeyRecord, KeyState};
use crate::store::LiveKey;
use crate::wire::{b64, base64_opt, required};
use crate::{Caller, CryptoCall, Kms};

pub type Context = BTreeMap<String, String>;
/// Encrypt's plaintext limit.
const MAX_PLAINTEXT: usize = 4096;
/// GenerateDataKey's and GenerateRandom's limit.
const MAX_RANDOM: i64 = 1024;

impl Kms {
    /// Why a key cannot be used for cryptography now, if it cannot.
    fn usable(&self, key: &KeyRecord) -> KmsResult<()> {
        match key.state {
            KeyState::Enabled => Ok(()),
            KeyState::Disabled => Err(KmsError::disabled(&self.arn(&key.id))),
            KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => {
                Err(KmsError::invalid_state(format!("{} is pending deletion.", self.arn(&key.id))))
            }
        }
    }

    /// Encrypts `plaintext` under `key_id` as `caller` performing
    /// `kms:<action>`; returns the blob and the key's ARN.
    pub fn seal_for(
        &self,
        caller: &Caller,
        action: &str,
        key_id: &str,
        context: &Context,
        plaintext: &[u8],
    ) -> KmsResult<(Vec<u8>, String)> {
        let sealed = (|| {
            check_context(context)?;
            let key = self.authorized(caller, action, key_id, context)?;
            let (version, material) = key.current().ok_or_else(|| KmsError::internal("The key has no material."))?;
            let header = BlobHeader { key_id: key.record.id.clone(), material_version: version };
            let blob = kms_blob::encrypt(&header, material, context, plaintext)
                .map_err(|e| KmsError::internal(e.to_string()))?;
            Ok((blob, self.arn(&key.record.id)))
        })();
        self.observe(caller, action, context, sealed.as_ref().map(|(_, arn)| arn.as_str()), Some(key_id));
        sealed
    }

    /// Checks, without any cryptography, that `caller` may perform
    /// `kms:<action>` with `key_id` and that the key is usable, as a call
    /// that uses the key (S3 adopting a multi-Region key's data key);
    /// returns the key's id and its ARN here.
    pub fn check(&self, caller: &Caller, action: &str, key_id: &str, context: &Context) -> KmsResult<(String, String)> {
        let checked = self.may_use(caller, action, key_id, context);
        self.observe(caller, action, context, checked.as_ref().map(|(_, arn)| arn.as_str()), Some(key_id));
        checked
    }

    /// As [`Kms::check`], for a diagnosis that only asks (`tern
    /// replication check`): neither counted nor audited as a use.
    pub fn may_use(
        &self,
        caller: &Caller,
        action: &str,
        key_id: &str,
        context: &Context,
    ) -> KmsResult<(String, String)> {
        let key = self.authorized(caller, action, key_id, context)?;
        Ok((key.record.id.clone(), self.arn(&key.record.id)))
    }

    /// The usable key `key_id`, once `caller` is authorized for `kms:<action>` on it.
    fn authorized(&self, caller: &Caller, action: &str, key_id: &str, context: &Context) -> KmsResult<Arc<LiveKey>> {
        let key = self.resolve(key_id)?;
        self.authorize_with_context(caller, action, &key, Some(context))?;
        self.usable(&key.record)?;
        Ok(key)
    }

    /// Decrypts `blob` as `caller` performing `kms:<action>`; returns the
    /// plaintext and the ARN, in this region, of the key that decrypted.
    pub fn open_for(
        &self,
        caller: &Caller,
        action: &str,
        blob: &[u8],
        context: &Context,
        key_id: Option<&str>,
    ) -> KmsResult<(Zeroizing<Vec<u8>>, String)> {
        let opened = (|| {
            let header = kms_blob::header(blob).map_err(|_| KmsError::invalid_ciphertext())?;
            let key = self.store.key(&header.key_id).ok_or_else(KmsError::foreign_ciphertext)?;
            if let Some(named) = key_id
                && self.resolve(named)?.record.id != key.record.id
            {
                return Err(KmsError::incorrect_key());
            }
            self.authorize_with_context(caller, action, &key, Some(context))?;
            self.usable(&key.record)?;
            let material = key.materials.get(&header.material_version).ok_or_else(KmsError::invalid_ciphertext)?;
            let plain = kms_blob::decrypt(blob, material, context).map_err(|_| KmsError::invalid_ciphertext())?;
            Ok((Zeroizing::new(plain), self.arn(&key.record.id)))
        })();
        let named = key_id.map(str::to_owned).or_else(|| kms_blob::header(blob).ok().map(|h| h.key_id));
        self.observe(caller, action, context, opened.as_ref().map(|(_, arn)| arn.as_str()), named.as_deref());
        opened
    }

    /// Tells the observers of a call; a refused one still names the key it
    /// asked for, when that key exists here (who tried to use a key matters
    /// as much as who did).
    fn observe(
        &self,
        caller: &Caller,
        action: &str,
        context: &Context,
        outcome: Result<&str, &KmsError>,
        asked_for: Option<&str>,
    ) {
        let refused_key = || Some(self.arn(&self.resolve(asked_for?).ok()?.record.id));
        let (key_arn, error) = match outcome {
            Ok(arn) => (Some(arn.to_owned()), None),
            Err(e) => (refused_key(), Some(e)),
        };
        let key_arn = key_arn.as_deref();
        self.observer.cryptographic_call(&CryptoCall { action, caller, key_arn, context, error });
    }
}

/// An encryption context the ciphertext can bind: its entries and each key
/// and value at most 65,535 bytes (the blob's two-byte lengths). Beyond,
/// the caller is told so rather than given a server error.
fn check_context(context: &Context) -> KmsResult<()> {
    let limit = usize::from(u16::MAX);
    let fits = context.len() <= limit && context.iter().all(|(k, v)| k.len() <= limit && v.len() <= limit);
    if fits {
        Ok(())
    } else {
        Err(KmsError::validation(
            "1 validation error detected: Value at 'encryptionContext' failed to satisfy constraint: Member must \
             have at most 65535 entries, each key and value at most 65535 bytes",
        ))
    }
}

fn check_algorithm(algorithm: Option<&str>) -> KmsResult<()> {
    match algorithm {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        Some(other) => Err(KmsError::invalid_key_usage(format!(
            "The encryption algorithm {other} is not supported for a SYMMETRIC_DEFAULT key."
        ))),
    }
}

fn finish(dry_run: Option<bool>, response: Value) -> KmsResult<Value> {
    if dry_run == Some(true) { Err(KmsError::dry_run()) } else { Ok(response) }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct EncryptRequest {
    key_id: Option<String>,
    #[serde(deserialize_with = "base64_opt::deserialize")]
    plaintext: Option<Zeroizing<Vec<u8>>>,
    encryption_context: Option<Context>,
    encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

pub(crate) fn encrypt(kms: &Kms, caller: &Caller, req: EncryptRequest) -> KmsResult<Value> {
    let key_id = required(req.key_id, "keyId")?;
    let plaintext = required(req.plaintext, "plaintext")?;
    if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
        return Err(KmsError::constraint("plaintext", "***", "Member must have length between 1 and 4096"));
    }
    check_algorithm(req.encryption_algorithm.as_deref())?;
    let context = req.encryption_context.unwrap_or_default();
    let (blob, arn) = kms.seal_for(caller, "Encrypt", &key_id, &context, &plaintext)?;
    finish(req.dry_run, json!({"CiphertextBlob": b64(&blob), "KeyId": arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DecryptRequest {
    #[serde(deserialize_with = "base64_opt::deserialize")]
    ciphertext_blob: Option<Zeroizing<Vec<u8>>>,
    encryption_context: Option<Context>,
    key_id: Option<String>,
    encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

pub(crate) fn decrypt(kms: &Kms, caller: &Caller, req: DecryptRequest) -> KmsResult<Value> {
    let blob = required(req.ciphertext_blob, "ciphertextBlob")?;
    check_algorithm(req.encryption_algorithm.as_deref())?;
    let context = req.encryption_context.unwrap_or_default();
    let (plain, arn) = kms.open_for(caller, "Decrypt", &blob, &context, req.key_id.as_deref())?;
    finish(req.dry_run, json!({"KeyId": arn, "Plaintext": b64(&plain), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReEncryptRequest {
    #[serde(deserialize_with = "base64_opt::deserialize")]
    ciphertext_blob: Option<Zeroizing<Vec<u8>>>,
    source_encryption_context: Option<Context>,
    source_key_id: Option<String>,
    destination_key_id: Option<String>,
    destination_encryption_context: Option<Context>,
    source_encryption_algorithm: Option<String>,
    destination_encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

pub(crate) fn re_encrypt(kms: &Kms, caller: &Caller, req: ReEncryptRequest) -> KmsResult<Value> {
    let blob = required(req.ciphertext_blob, "ciphertextBlob")?;
    let destination = required(req.destination_key_id, "destinationKeyId")?;
    check_algorithm(req.source_encryption_algorithm.as_deref())?;
    check_algorithm(req.destination_encryption_algorithm.as_deref())?;
    let source_context = req.source_encryption_context.unwrap_or_default();
    let (plain, source_arn) =
        kms.open_for(caller, "ReEncryptFrom", &blob, &source_context, req.source_key_id.as_deref())?;
    let context = req.destination_encryption_context.unwrap_or_default();
    let (blob, arn) = kms.seal_for(caller, "ReEncryptTo", &destination, &context, &plain)?;
    finish(
        req.dry_run,
        json!({
            "CiphertextBlob": b64(&blob),
            "SourceKeyId": source_arn,
            "KeyId": arn,
            "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }),
    )
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DataKeyRequest {
    key_id: Option<String>,
    encryption_context: Option<Context>,
    number_of_bytes: Option<i64>,
    key_spec: Option<String>,
    dry_run: Option<bool>,
}

fn random_bytes(field: &str, n: i64) -> KmsResult<Zeroizing<Vec<u8>>> {
    if !(1..=MAX_RANDOM).contains(&n) {
        return Err(KmsError::constraint(field, &n.to_string(), "Member must have value between 1 and 1024"));
    }
    let mut bytes = Zeroizing::new(vec![0u8; usize::try_from(n).expect("1..=1024")]);
    tern_crypto::fill_random(bytes.as_mut_slice()).map_err(|e| KmsError::internal(e.to_string()))?;
    Ok(bytes)
}

fn data_key_length(number_of_bytes: Option<i64>, key_spec: Option<&str>) -> KmsResult<i64> {
    match (number_of_bytes, key_spec) {
        (Some(n), None) => Ok(n),
        (None, Some("AES_256")) => Ok(32),
        (None, Some("AES_128")) => Ok(16),
        (None, Some(other)) => {
            Err(KmsError::constraint("keySpec", other, "Member must satisfy enum value set: [AES_256, AES_128]"))
        }
        _ => Err(KmsError::validation("Please specify either number of bytes or key spec.")),
    }
}

pub(crate) fn generate_data_key(kms: &Kms, caller: &Caller, req: DataKeyRequest, plaintext: bool) -> KmsResult<Value> {
    let key_id = required(req.key_id, "keyId")?;
    let length = data_key_length(req.number_of_bytes, req.key_spec.as_deref())?;
    let data_key = random_bytes("numberOfBytes", length)?;
    let context = req.encryption_context.unwrap_or_default();
    let action = if plaintext { "GenerateDataKey" } else { "GenerateDataKeyWithoutPlaintext" };
    let (blob, arn) = kms.seal_for(caller, action, &key_id, &context, &data_key)?;
    let mut response = json!({"CiphertextBlob": b64(&blob), "KeyId": arn});
    if plaintext {
        response["Plaintext"] = json!(b64(&data_key));
    }
    finish(req.dry_run, response)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct RandomRequest {
    number_of_bytes: Option<i64>,
}

pub(crate) fn generate_random(req: &RandomRequest) -> KmsResult<Value> {
    let bytes = random_bytes("numberOfBytes", required(req.number_of_bytes, "numberOfBytes")?)?;
    Ok(json!({ "Plaintext": b64(&bytes) }))
}
