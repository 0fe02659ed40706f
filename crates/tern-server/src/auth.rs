//! Who may call the S3 API: every request is `SigV4`-signed by the root, an
//! IAM user, or an STS session (no anonymous access: no policy can grant
//! it yet), and authorized by the caller's identity policies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::validation::NameValidation;
use s3s::{S3Result, s3_error};
use tern_iam::Iam;
use tern_iam::policy::{Principal, Request, RequestContext};

/// STS sessions seen on this region's S3 requests. s3s asks for a secret by
/// access key alone, so the outer layer opens each request's session token
/// first ([`Sessions::admit`]) and the signature check then finds it here.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, (String, i64)>>,
}

impl Sessions {
    /// Remembers the session of `access_key` if `token` is an authentic, live session of it.
    pub fn admit(&self, iam: &Iam, access_key: &str, token: &str) {
        let Some(identity) = iam.identity(access_key, Some(token)) else { return };
        let Some(expires) = identity.expires else { return };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut open = self.open.lock().expect("session cache lock");
        open.retain(|_, (_, until)| *until > now);
        open.insert(access_key.to_owned(), (identity.secret.to_string(), expires));
    }

    fn secret(&self, access_key: &str) -> Option<String> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let open = self.open.lock().expect("session cache lock");
        open.get(access_key).filter(|(_, until)| *until > now).map(|(secret, _)| secret.clone())
    }
}

/// Resolves access keys to secrets for s3s's signature check.
pub struct IamAuth {
    pub iam: Arc<Iam>,
    pub sessions: Arc<Sessions>,
}

#[async_trait::async_trait]
impl S3Auth for IamAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let secret = match self.iam.identity(access_key, None) {
            Some(identity) => Some(identity.secret.to_string()),
            None => self.sessions.secret(access_key),
        };
        secret.map(SecretKey::from).ok_or_else(|| {
            s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records.")
        })
    }
}

/// Authorizes each signed S3 request by its caller's identity policies, and
/// hands the caller to the operation (S3 calls KMS on its behalf).
pub struct IamAccess {
    pub iam: Arc<Iam>,
}

fn session_token(cx: &S3AccessContext<'_>) -> Option<String> {
    if let Some(token) = cx.headers().get("x-amz-security-token").and_then(|v| v.to_str().ok()) {
        return Some(token.to_owned());
    }
    let query = cx.uri().query()?;
    let value = query.split('&').find_map(|p| p.strip_prefix("X-Amz-Security-Token="))?;
    urlencoding::decode(value).ok().map(std::borrow::Cow::into_owned)
}

#[async_trait::async_trait]
impl S3Access for IamAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let access_key = cx.credentials().ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))?.access_key.clone();
        let identity = self
            .iam
            .identity(&access_key, session_token(cx).as_deref())
            .ok_or_else(|| s3_error!(InvalidToken, "The provided token is malformed or otherwise invalid."))?;
        let principal: Principal = identity.principal;
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let versioned = cx.uri().query().is_some_and(|q| q.split('&').any(|p| p.starts_with("versionId=")));
        let replication_read = principal.session_arn.is_some()
            && cx.headers().contains_key(tern_replication::REPLICATION_READ_HEADER)
            && cx.s3_op().name() == "GetObject";
        let action = if replication_read {
            "s3:GetObjectVersionForReplication".to_owned()
        } else {
            tern_s3::access::iam_action(cx.s3_op().name(), versioned)
        };
        let resource = tern_s3::access::resource_arn(bucket.as_deref(), key.as_deref());
        let mut context = RequestContext::default();
        context.set("aws:PrincipalArn", principal.arn.clone());
        let request = Request { principal: &principal, action: &action, resource: &resource, context: &context };
        self.iam.authorize_current(&request).await.map_err(|message| s3_error!(AccessDenied, "{message}"))?;
        if let Some((source, versioned)) = copy_source(cx) {
            let action = if versioned { "s3:GetObjectVersion" } else { "s3:GetObject" };
            let read = Request { principal: &principal, action, resource: &source, context: &context };
            self.iam.authorize_current(&read).await.map_err(|message| s3_error!(AccessDenied, "{message}"))?;
        }
        cx.extensions_mut().insert(principal);
        Ok(())
    }
}

/// The object a copy reads (`x-amz-copy-source`), as an ARN, and whether
/// it names a version: reading it needs its own permission.
fn copy_source(cx: &S3AccessContext<'_>) -> Option<(String, bool)> {
    let header = cx.headers().get("x-amz-copy-source")?.to_str().ok()?;
    let (path, query) = header.split_once('?').unwrap_or((header, ""));
    let path = urlencoding::decode(path.trim_start_matches('/')).ok()?;
    Some((format!("arn:aws:s3:::{path}"), query.starts_with("versionId=")))
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
