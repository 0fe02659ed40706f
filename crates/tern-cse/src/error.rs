//! What can go wrong, typed so callers (and the CLI) can say it plainly.

use crate::cipher::CipherError;

#[derive(Debug, thiserror::Error)]
pub enum CseError {
    /// The object carries no S3 Encryption Client metadata (and no
    /// instruction file).
    #[error("{0} is not an S3 Encryption Client object: it has no encryption metadata")]
    NotEncrypted(String),
    /// Metadata that no S3EC writes: missing or undecodable values,
    /// unknown algorithms, wrong lengths.
    #[error("malformed encryption metadata: {0}")]
    Malformed(String),
    /// Authentication failed, or the metadata shows signs of tampering.
    #[error("the object failed authentication: {0}")]
    Tampered(String),
    /// The object is valid but this client's configuration refuses it.
    #[error("{0}")]
    NotAllowed(String),
    /// An object larger than the caller's bound for reading it into memory.
    #[error("{object} holds {bytes} bytes, more than the {limit} this read allows")]
    TooLarge { object: String, bytes: u64, limit: u64 },
    /// The caller's encryption context is not the one the object was written with.
    #[error("the encryption context does not match the one the object was written with")]
    ContextMismatch,
    /// An encryption context the formats cannot carry.
    #[error("invalid encryption context: {0}")]
    InvalidContext(String),
    #[error("KMS: {0}")]
    Kms(String),
    #[error("S3: {0}")]
    S3(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<CipherError> for CseError {
    fn from(e: CipherError) -> Self {
        match e {
            CipherError::TooLong => Self::NotAllowed(e.to_string()),
            CipherError::TagMismatch | CipherError::Cbc => Self::Tampered(e.to_string()),
        }
    }
}

pub type CseResult<T> = Result<T, CseError>;
