//! The KMS keyring: data keys from `GenerateDataKey`, unwrapped by `Decrypt`,
//! through aws-sdk-kms against any endpoint. Multi-Region-key aware, as the
//! Encryption SDK's MRK keyrings are: an MRK ARN of another region is used
//! through this client's region's replica, and the key KMS answers with is
//! checked against the key asked for. Without a key (discovery), it only
//! decrypts, with whichever key of this region KMS finds for the blob.

use std::collections::HashMap;

use aws_sdk_kms::error::ProvideErrorMetadata as _;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

use crate::cipher::ContentKey;
use crate::content::{DataKey, data_key_from};
use crate::error::{CseError, CseResult};

/// A KMS key, as the caller named it, used from one region.
#[derive(Clone)]
pub struct KmsKeyring {
    kms: aws_sdk_kms::Client,
    /// The key id as KMS in this region must be asked for it; `None` in
    /// discovery mode.
    key_id: Option<String>,
    region: String,
    /// The region of a single-Region key named by an ARN of another region,
    /// which cannot work here.
    foreign: Option<String>,
}

/// The parts of a key ARN: `arn:<partition>:kms:<region>:<account>:key/<id>`.
struct KeyArn<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
    id: &'a str,
}

fn key_arn(text: &str) -> Option<KeyArn<'_>> {
    let mut parts = text.splitn(6, ':');
    let (arn, partition, service, region, account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let id = resource.strip_prefix("key/")?;
    (arn == "arn" && service == "kms" && !id.is_empty()).then_some(KeyArn { partition, region, account, id })
}

impl KmsKeyring {
    /// `key_id` may be a key id, an alias, or a key or alias ARN. A
    /// multi-Region key's ARN from another region is rewritten to this
    /// `region`, whose replica of the key does the work.
    #[must_use]
    pub fn new(kms: aws_sdk_kms::Client, key_id: &str, region: &str) -> Self {
        let (key_id, foreign) = match key_arn(key_id) {
            Some(arn) if arn.region != region && arn.id.starts_with("mrk-") => {
                (format!("arn:{}:kms:{region}:{}:key/{}", arn.partition, arn.account, arn.id), None)
            }
            Some(arn) if arn.region != region => (key_id.to_owned(), Some(arn.region.to_owned())),
            _ => (key_id.to_owned(), None),
        };
        Self { kms, key_id: Some(key_id), region: region.to_owned(), foreign }
    }

    /// A keyring that only decrypts, with the key of `region` that KMS
    /// finds for each data key (a multi-Region key's local replica).
    #[must_use]
    pub fn discovery(kms: aws_sdk_kms::Client, region: &str) -> Self {
        Self { kms, key_id: None, region: region.to_owned(), foreign: None }
    }

    /// Refuses, before any call, a single-Region key of another region.
    fn usable_here(&self) -> CseResult<()> {
        match &self.foreign {
            Some(home) => Err(CseError::Kms(format!(
                "{} is a single-Region key of {home}; it does not exist in {} (only multi-Region keys have replicas)",
                self.key_id.as_deref().unwrap_or_default(),
                self.region
            ))),
            None => Ok(()),
        }
    }

    /// The key this keyring asks KMS for.
    #[must_use]
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// A fresh 256-bit data key, wrapped under `context`.
    pub async fn generate(&self, context: &[(String, String)]) -> CseResult<DataKey> {
        self.usable_here()?;
        let key_id =
            self.key_id.as_deref().ok_or_else(|| CseError::NotAllowed("encrypting needs a KMS key id".into()))?;
        let mut out = self
            .kms
            .generate_data_key()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context.iter().cloned().collect::<HashMap<_, _>>()))
            .send()
            .await
            .map_err(|e| self.kms_error(&e))?;
        self.check_answer(out.key_id())?;
        let plaintext = data_key_from(&take_plaintext(&mut out.plaintext))?;
        let encrypted = out.ciphertext_blob().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        Ok(DataKey { plaintext, encrypted })
    }

    /// Unwraps a stored data key with this keyring's key (KMS refuses a
    /// blob of another key) under the stored `context`.
    pub async fn decrypt(&self, encrypted: &[u8], context: &[(String, String)]) -> CseResult<ContentKey> {
        self.usable_here()?;
        let context: HashMap<String, String> = context.iter().cloned().collect();
        let mut out = self
            .kms
            .decrypt()
            .set_key_id(self.key_id.clone())
            .ciphertext_blob(Blob::new(encrypted))
            .set_encryption_context((!context.is_empty()).then_some(context))
            .send()
            .await
            .map_err(|e| self.kms_error(&e))?;
        self.check_answer(out.key_id())?;
        data_key_from(&take_plaintext(&mut out.plaintext))
    }

    /// KMS must answer with the key it was asked for (its ARN, when asked
    /// by ARN or by id), and in discovery with a key of this region.
    /// Aliases resolve inside KMS and are taken as given.
    fn check_answer(&self, answered: Option<&str>) -> CseResult<()> {
        let answered = answered.ok_or_else(|| CseError::Kms("KMS named no key in its answer".into()))?;
        let local = |id: Option<&str>| {
            key_arn(answered).is_some_and(|a| a.region == self.region && id.is_none_or(|id| a.id == id))
        };
        let expected = match self.key_id.as_deref() {
            Some(asked) if key_arn(asked).is_some() => answered == asked,
            Some(alias) if alias.starts_with("alias/") => true,
            asked => local(asked),
        };
        if expected {
            Ok(())
        } else {
            let asked = self.key_id.as_deref().unwrap_or("a key of this region");
            Err(CseError::Kms(format!("KMS answered with key {answered}, not {asked}")))
        }
    }

    fn kms_error<E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug>(
        &self,
        error: &aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
    ) -> CseError {
        let code = error.code().unwrap_or_default();
        let message = error.message().unwrap_or_default();
        match code {
            "NotFoundException" => {
                let key = self.key_id.as_deref().unwrap_or("the object's key");
                CseError::Kms(format!("{key} is not in region {} ({message})", self.region))
            }
            "InvalidCiphertextException" => {
                CseError::Tampered(format!("KMS cannot unwrap the data key under this encryption context ({message})"))
            }
            "IncorrectKeyException" => CseError::Kms(format!(
                "the object's data key was not wrapped by {} ({message})",
                self.key_id.as_deref().unwrap_or_default()
            )),
            "" => CseError::Kms(format!("{error:?}")),
            _ => CseError::Kms(format!("{code}: {message}")),
        }
    }
}

/// The plaintext data key an SDK answer holds, taken out of it so that it
/// is wiped once used, not left in the answer's buffer.
fn take_plaintext(blob: &mut Option<Blob>) -> zeroize::Zeroizing<Vec<u8>> {
    zeroize::Zeroizing::new(blob.take().map(Blob::into_inner).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(key: &str, region: &str) -> KmsKeyring {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_kms::config::Region::new("x"))
            .build();
        KmsKeyring::new(aws_sdk_kms::Client::from_conf(config), key, region)
    }

    #[test]
    fn multi_region_key_arns_are_used_through_the_local_replica() {
        let mrk = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd";
        let local = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd";
        assert_eq!(keyring(mrk, "eu-west-1").key_id(), Some(local));
        assert_eq!(keyring(mrk, "us-east-1").key_id(), Some(mrk));
        let regional = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab";
        assert_eq!(keyring(regional, "eu-west-1").key_id(), Some(regional), "a single-region key is never rewritten");
        let refused = keyring(regional, "eu-west-1").usable_here().unwrap_err().to_string();
        assert!(refused.contains("single-Region key of us-east-1; it does not exist in eu-west-1"), "{refused}");
        assert!(keyring(regional, "us-east-1").usable_here().is_ok());
        assert_eq!(keyring("mrk-1234abcd", "eu-west-1").key_id(), Some("mrk-1234abcd"));
    }

    #[test]
    fn kms_must_answer_with_the_key_asked_for() {
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1";
        assert!(keyring(arn, "eu-west-1").check_answer(Some(arn)).is_ok());
        let other = "arn:aws:kms:eu-west-1:111122223333:key/mrk-2";
        assert!(keyring(arn, "eu-west-1").check_answer(Some(other)).is_err());
        assert!(keyring("mrk-1", "eu-west-1").check_answer(Some(arn)).is_ok());
        let elsewhere = "arn:aws:kms:us-east-1:111122223333:key/mrk-1";
        assert!(keyring("mrk-1", "eu-west-1").check_answer(Some(elsewhere)).is_err());
        assert!(keyring("alias/app", "eu-west-1").check_answer(Some(other)).is_ok());
        assert!(keyring(arn, "eu-west-1").check_answer(None).is_err());
        let discovery = KmsKeyring { key_id: None, ..keyring(arn, "eu-west-1") };
        assert!(discovery.check_answer(Some(other)).is_ok());
        assert!(discovery.check_answer(Some(elsewhere)).is_err(), "discovery stays in its region");
    }
}
