//! IAM and STS errors as the query protocol carries them.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct IamError {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
}

pub type IamResult<T> = Result<T, IamError>;

const STALE: &str = "The IAM directory changed during the request; try again.";

impl IamError {
    fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), status }
    }

    pub fn no_such_entity(message: impl Into<String>) -> Self {
        Self::new("NoSuchEntity", 404, message)
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new("EntityAlreadyExists", 409, message)
    }

    pub fn delete_conflict(message: impl Into<String>) -> Self {
        Self::new("DeleteConflict", 409, message)
    }

    pub fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new("MalformedPolicyDocument", 400, message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationError", 400, message)
    }

    #[must_use]
    pub fn missing(field: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    }

    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new("LimitExceeded", 409, message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new("AccessDenied", 403, message)
    }

    #[must_use]
    pub fn invalid_action(action: &str) -> Self {
        Self::new("InvalidAction", 400, format!("Could not find operation {action} for version 2010-05-08"))
    }

    pub fn service_failure(message: impl Into<String>) -> Self {
        Self::new("ServiceFailure", 500, message)
    }

    /// Another front-end of the authority region changed the directory
    /// while this request ran; the request may run again on the fresh one.
    #[must_use]
    pub fn stale() -> Self {
        Self::service_failure(STALE)
    }

    #[must_use]
    pub fn is_stale(&self) -> bool {
        self.code == "ServiceFailure" && self.message == STALE
    }

    /// An error another region answered, with its code when it is one of ours.
    #[must_use]
    pub fn relayed(code: &str, message: String, status: u16) -> Self {
        const KNOWN: &[&str] = &[
            "NoSuchEntity",
            "EntityAlreadyExists",
            "DeleteConflict",
            "MalformedPolicyDocument",
            "ValidationError",
            "LimitExceeded",
            "AccessDenied",
            "InvalidAction",
        ];
        match KNOWN.iter().find(|k| **k == code) {
            Some(known) => Self { code: known, message, status },
            None => Self::service_failure(format!("{code}: {message}")),
        }
    }
}

impl From<tern_store::StoreError> for IamError {
    fn from(e: tern_store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "the IAM store is unavailable");
            return Self::new(
                "ServiceUnavailable",
                503,
                "The request has failed due to a temporary failure of the server.",
            );
        }
        tracing::error!(error = %e, "IAM store failed");
        Self::service_failure("IAM could not store the change.")
    }
}

/// A refusal by policy is IAM's `AccessDenied`.
impl From<crate::policy::Denial> for IamError {
    fn from(denial: crate::policy::Denial) -> Self {
        Self::access_denied(denial.to_string())
    }
}
