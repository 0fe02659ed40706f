//! Who may call the S3 API: `SigV4` identities (only the root identity until
//! IAM arrives) and no anonymous access, since no policy can grant it yet.

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::validation::NameValidation;
use s3s::{S3Result, s3_error};
use subtle::ConstantTimeEq as _;

use crate::credentials::RootCredentials;

/// Resolves an access key to its secret for s3s's signature check.
pub struct RootAuth {
    pub root: RootCredentials,
}

#[async_trait::async_trait]
impl S3Auth for RootAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        // Constant-time even for the public half, so timing reveals nothing about near misses.
        let known = access_key.as_bytes().ct_eq(self.root.access_key_id.as_bytes());
        if bool::from(known) {
            Ok(SecretKey::from(self.root.secret_access_key.clone()))
        } else {
            Err(s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records."))
        }
    }
}

/// Every S3 request must be signed by a known identity.
pub struct SignedOnly;

#[async_trait::async_trait]
impl S3Access for SignedOnly {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(s3_error!(AccessDenied, "Access Denied")),
        }
    }
}

/// AWS bucket naming, plus the reserved `_tern` path that carries Tern's own
/// signed admin routes (no valid bucket name can start with `_`).
pub struct TernNames;

pub const ADMIN_PREFIX: &str = "_tern";

impl NameValidation for TernNames {
    fn validate_bucket_name(&self, name: &str) -> bool {
        name == ADMIN_PREFIX || tern_core::names::is_valid_bucket_name(name)
    }
}
