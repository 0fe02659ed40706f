//! KMS errors as the JSON 1.1 protocol carries them: an error type, a
//! message, and an HTTP status (400 for every client error, AccessDenied
//! included, as KMS answers).

/// One KMS error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct KmsError {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
}

pub type KmsResult<T> = Result<T, KmsError>;

const STALE: &str = "The key store changed during the request; try again.";

fn client(code: &'static str, message: impl Into<String>) -> KmsError {
    KmsError { code, message: message.into(), status: 400 }
}

/// Error types another region may answer with, so a relayed error keeps its type.
const KNOWN_CODES: &[&str] = &[
    "AccessDeniedException",
    "AlreadyExistsException",
    "DependencyTimeoutException",
    "DisabledException",
    "IncorrectKeyException",
    "InvalidArnException",
    "InvalidCiphertextException",
    "KMSInvalidStateException",
    "MalformedPolicyDocumentException",
    "NotFoundException",
    "TagException",
    "UnsupportedOperationException",
    "ValidationException",
];

impl KmsError {
    /// An error answered by another region, passed through with its type
    /// when it is one KMS defines (else as an internal error).
    #[must_use]
    pub fn relayed(code: &str, message: String, status: u16) -> Self {
        match KNOWN_CODES.iter().find(|known| **known == code) {
            Some(known) => Self { code: known, message, status },
            None => Self::internal(format!("{code}: {message}")),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        client("NotFoundException", message)
    }

    #[must_use]
    pub fn invalid_key_id(id: &str) -> Self {
        Self::not_found(format!("Invalid keyId '{id}'"))
    }

    #[must_use]
    pub fn invalid_arn_region(region: &str) -> Self {
        Self::not_found(format!("Invalid arn {region}"))
    }

    pub fn invalid_arn(message: impl Into<String>) -> Self {
        client("InvalidArnException", message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        client("ValidationException", message)
    }

    /// The `1 validation error detected` message AWS writes for one field.
    #[must_use]
    pub fn constraint(field: &str, value: &str, constraint: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ))
    }

    #[must_use]
    pub fn missing(field: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        client("SerializationException", message)
    }

    #[must_use]
    pub fn disabled(arn: &str) -> Self {
        client("DisabledException", format!("{arn} is disabled."))
    }

    pub fn invalid_state(message: impl Into<String>) -> Self {
        client("KMSInvalidStateException", message)
    }

    #[must_use]
    pub fn invalid_ciphertext() -> Self {
        client("InvalidCiphertextException", "")
    }

    #[must_use]
    pub fn incorrect_key() -> Self {
        client(
            "IncorrectKeyException",
            "The key ID in the request does not identify a CMK that can perform this operation.",
        )
    }

    pub fn invalid_key_usage(message: impl Into<String>) -> Self {
        client("InvalidKeyUsageException", message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        client("AccessDeniedException", message)
    }

    /// What Decrypt answers for a ciphertext whose key is not in this region.
    #[must_use]
    pub fn foreign_ciphertext() -> Self {
        Self::access_denied(
            "The ciphertext refers to a customer master key that does not exist, does not exist in this region, \
             or you are not allowed to access.",
        )
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        client("AlreadyExistsException", message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        client("UnsupportedOperationException", message)
    }

    pub fn malformed_policy(message: impl Into<String>) -> Self {
        client("MalformedPolicyDocumentException", message)
    }

    pub fn tag(message: impl Into<String>) -> Self {
        client("TagException", message)
    }

    pub fn invalid_alias_name(message: impl Into<String>) -> Self {
        client("InvalidAliasNameException", message)
    }

    /// A change to what only AWS may change (the aliases of AWS managed keys).
    pub fn not_authorized(message: impl Into<String>) -> Self {
        client("NotAuthorizedException", message)
    }

    #[must_use]
    pub fn invalid_marker() -> Self {
        client("InvalidMarkerException", "The marker is not valid.")
    }

    #[must_use]
    pub fn invalid_grant_token() -> Self {
        client("InvalidGrantTokenException", "The grant token is not valid.")
    }

    #[must_use]
    pub fn invalid_grant_id() -> Self {
        client("InvalidGrantIdException", "The grant id is not valid.")
    }

    #[must_use]
    pub fn dry_run() -> Self {
        client("DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
    }

    #[must_use]
    pub fn unknown_operation(target: &str) -> Self {
        client("UnknownOperationException", format!("Unknown operation {target}"))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self { code: "KMSInternalException", message: message.into(), status: 500 }
    }

    /// Another front-end of the region changed the keys while this request
    /// ran; the request may run again on the fresh state.
    #[must_use]
    pub fn stale() -> Self {
        Self::internal(STALE)
    }

    #[must_use]
    pub fn is_stale(&self) -> bool {
        self.code == "KMSInternalException" && self.message == STALE
    }

    /// A refusal that a front-end whose view of the keys is behind might
    /// give wrongly: worth a second look after catching up.
    #[must_use]
    pub fn may_be_behind(&self) -> bool {
        self.is_stale()
            || matches!(
                self.code,
                "NotFoundException" | "AccessDeniedException" | "DisabledException" | "KMSInvalidStateException"
            )
    }

    pub fn dependency_timeout(message: impl Into<String>) -> Self {
        Self { code: "DependencyTimeoutException", message: message.into(), status: 503 }
    }
}

impl From<tern_store::StoreError> for KmsError {
    fn from(e: tern_store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "the key store is unavailable");
            return Self::dependency_timeout("The key store is unavailable; retry the request.");
        }
        tracing::error!(error = %e, "key store failed");
        Self::internal("The key store could not complete the request.")
    }
}

/// A refusal by policy is KMS's `AccessDeniedException`.
impl From<tern_iam::policy::Denial> for KmsError {
    fn from(denial: tern_iam::policy::Denial) -> Self {
        Self::access_denied(denial.to_string())
    }
}
