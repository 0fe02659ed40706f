//! The encryption client: an S3 client and a KMS keyring, and the policy
//! that says which formats it writes and reads.

use aws_sdk_s3::error::ProvideErrorMetadata;

use crate::envelope::{Envelope, KeyWrap};
use crate::error::{CseError, CseResult};
use crate::keyring::KmsKeyring;
use crate::suite::{CommitmentPolicy, Suite};

/// Which formats a client writes and reads, and how it moves bytes.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// What new objects are written with: V3 (the default) or V2.
    pub suite: Suite,
    pub commitment_policy: CommitmentPolicy,
    pub legacy: LegacyModes,
    pub instruction_files: InstructionFiles,
    /// Objects larger than this are uploaded in parts.
    pub multipart_threshold: u64,
    /// Plaintext bytes per part (at least 5 MiB; grown for huge objects).
    pub part_size: u64,
    /// Parts uploaded at once; memory use is about (this + 1) × `part_size`.
    pub concurrency: usize,
}

/// Legacy formats a client reads only when told to.
#[derive(Debug, Clone, Copy, Default)]
pub struct LegacyModes {
    /// Read legacy AES-CBC objects, which nothing authenticates.
    pub unauthenticated_modes: bool,
    /// Unwrap data keys of the legacy `kms` wrapping (no encryption context).
    pub wrapping_algorithms: bool,
    /// Read byte ranges of GCM objects, which nothing can authenticate (a
    /// range never reaches the tag); AWS's Java client gates them likewise.
    pub unauthenticated_ranges: bool,
}

/// Where the envelope may live besides the object's metadata.
#[derive(Debug, Clone, Copy)]
pub struct InstructionFiles {
    /// Read `<key>.instruction` when an object's metadata lacks its envelope.
    pub read: bool,
    /// Write the data-key entries to `<key>.instruction` instead.
    pub write: bool,
}

impl Default for InstructionFiles {
    fn default() -> Self {
        Self { read: true, write: false }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            suite: Suite::AesGcmCommitting,
            commitment_policy: CommitmentPolicy::RequireEncryptRequireDecrypt,
            legacy: LegacyModes::default(),
            instruction_files: InstructionFiles::default(),
            multipart_threshold: 16 * 1024 * 1024,
            part_size: 8 * 1024 * 1024,
            concurrency: 4,
        }
    }
}

/// An S3 Encryption Client: reads and writes objects in the formats of
/// AWS's official clients, with data keys from a KMS keyring.
#[derive(Clone)]
pub struct EncryptionClient {
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) keyring: KmsKeyring,
    pub(crate) config: ClientConfig,
}

/// Where an object is: `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl std::str::FromStr for ObjectRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let rest = text.strip_prefix("s3://").ok_or_else(|| format!("{text}: expected s3://BUCKET/KEY"))?;
        match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
                Ok(Self { bucket: bucket.to_owned(), key: key.to_owned() })
            }
            _ => Err(format!("{text}: expected s3://BUCKET/KEY")),
        }
    }
}

impl EncryptionClient {
    /// # Errors
    /// If `config` asks to write a suite its commitment policy forbids.
    pub fn new(s3: aws_sdk_s3::Client, keyring: KmsKeyring, config: ClientConfig) -> CseResult<Self> {
        if !config.commitment_policy.allows_writing(config.suite) {
            return Err(CseError::NotAllowed(format!(
                "the commitment policy {} does not allow writing {}",
                config.commitment_policy.name(),
                config.suite.name()
            )));
        }
        Ok(Self { s3, keyring, config })
    }

    #[must_use]
    pub fn keyring(&self) -> &KmsKeyring {
        &self.keyring
    }

    /// Whether this client's policy lets it decrypt `envelope`.
    pub(crate) fn check_readable(&self, envelope: &Envelope) -> CseResult<()> {
        let suite = envelope.suite;
        if suite.is_legacy() && !self.config.legacy.unauthenticated_modes {
            return Err(CseError::NotAllowed(format!(
                "the object uses the legacy unauthenticated {}; allow legacy unauthenticated modes to read it",
                suite.name()
            )));
        }
        if !self.config.commitment_policy.allows_reading(suite) {
            return Err(CseError::NotAllowed(format!(
                "the object uses {}, which does not commit to its key; the commitment policy {} forbids reading it",
                suite.name(),
                self.config.commitment_policy.name()
            )));
        }
        match &envelope.wrap {
            KeyWrap::KmsContext => Ok(()),
            KeyWrap::Kms if self.config.legacy.wrapping_algorithms => Ok(()),
            KeyWrap::Kms => Err(CseError::NotAllowed(
                "the object's data key uses the legacy kms wrapping; allow legacy wrapping algorithms to read it"
                    .into(),
            )),
            KeyWrap::Unsupported(name) => Err(CseError::NotAllowed(format!(
                "the data key is wrapped with {name}, which a KMS keyring cannot open"
            ))),
        }
    }
}

/// An S3 error, said plainly.
pub(crate) fn s3_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    object: &ObjectRef,
    error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> CseError {
    let status = error.raw_response().map(|r| r.status().as_u16());
    let home = error.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")).map(str::to_owned);
    match (error.code(), status) {
        (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => CseError::S3(format!("{object} does not exist")),
        (Some("NoSuchBucket"), _) => CseError::S3(format!("bucket {} does not exist", object.bucket)),
        (Some("PermanentRedirect"), _) | (None, Some(301)) => CseError::S3(format!(
            "bucket {} is in region {}: use that region and its endpoint",
            object.bucket,
            home.as_deref().unwrap_or("another region")
        )),
        (Some(code), _) => CseError::S3(format!("{object}: {code}: {}", error.message().unwrap_or_default())),
        (None, _) => CseError::S3(format!("{object}: {error:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_urls_parse_as_the_aws_cli_writes_them() {
        let object: ObjectRef = "s3://bucket/dir/key.txt".parse().unwrap();
        assert_eq!((object.bucket.as_str(), object.key.as_str()), ("bucket", "dir/key.txt"));
        assert_eq!(object.to_string(), "s3://bucket/dir/key.txt");
        for bad in ["bucket/key", "s3://bucket", "s3://bucket/", "s3:///key"] {
            assert!(bad.parse::<ObjectRef>().is_err(), "{bad}");
        }
    }
}
