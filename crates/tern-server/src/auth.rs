//! Who may call the S3 API: every request is `SigV4`-signed (or `SigV2`) by
//! the root, an IAM user, or an STS session (no anonymous access: no policy
//! can grant it yet), and authorized by the caller's identity policies.
//!
//! Authorization reads the request as the handler will: s3s's parsed
//! input, never raw text. An operation whose action, resources or
//! condition keys depend on its input (a version id, a copy source, tags,
//! SSE headers, listing parameters) is authorized in its own method below
//! once s3s has parsed it; `check` authorizes the rest. Until one of them
//! has, the request carries no [`Principal`], and every handler refuses a
//! request without one: an operation left out here fails closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{
    CopyObjectInput, CopySource, CreateMultipartUploadInput, DeleteObjectInput, DeleteObjectTaggingInput,
    DeleteObjectsInput, GetObjectAttributesInput, GetObjectInput, GetObjectTaggingInput, HeadObjectInput,
    ListObjectVersionsInput, ListObjectsInput, ListObjectsV2Input, PutObjectInput, PutObjectTaggingInput,
    UploadPartCopyInput,
};
use s3s::path::S3Path;
use s3s::validation::NameValidation;
use s3s::{S3Request, S3Result, s3_error};
use tern_iam::Iam;
use tern_iam::policy::{Principal, RequestContext};
use tern_s3::access::{iam_action, resource_arn};

/// STS sessions seen on this region's S3 requests. s3s asks for a secret by
/// access key alone, so the outer layer opens each request's session token
/// first ([`Sessions::admit`]) and the signature check then finds it here.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, (zeroize::Zeroizing<String>, i64)>>,
}

impl Sessions {
    /// Remembers the session of `access_key` if `token` is an authentic, live session of it.
    pub fn admit(&self, iam: &Iam, access_key: &str, token: &str) {
        let Some(identity) = iam.identity(access_key, Some(token)) else { return };
        let Some(expires) = identity.expires else { return };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut open = self.open.lock().expect("session cache lock");
        open.retain(|_, (_, until)| *until > now);
        open.insert(access_key.to_owned(), (identity.secret, expires));
    }

    fn secret(&self, access_key: &str) -> Option<zeroize::Zeroizing<String>> {
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

impl IamAuth {
    /// The secret of `access_key`: the root's, an IAM user's, or an admitted
    /// session's. A key made a moment ago elsewhere must not be unknown for
    /// this region's lag, so a follower catches up before it says none.
    pub async fn secret(&self, access_key: &str) -> Option<zeroize::Zeroizing<String>> {
        let known = || match self.iam.identity(access_key, None) {
            Some(identity) => Some(identity.secret),
            None => self.sessions.secret(access_key),
        };
        match known() {
            None if self.iam.catch_up().await => known(),
            secret => secret,
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for IamAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let secret = self.secret(access_key).await.ok_or_else(|| {
            s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records.")
        })?;
        Ok(SecretKey::from(secret.as_str()))
    }
}

/// Authorizes each signed S3 request by its caller's identity policies and
/// the bucket's policy, and hands the caller to the operation (S3 calls KMS
/// on its behalf).
pub struct IamAccess {
    pub iam: Arc<Iam>,
    pub region: Arc<tern_s3::Region>,
}

/// An authenticated caller whose request is not authorized yet: its
/// operation's own method below decides, from the parsed input.
#[derive(Clone)]
struct Unauthorized(Principal);

/// Operations authorized from their parsed input, each by a method below.
const DECIDED_BY_INPUT: &[&str] = &[
    "GetObject",
    "GetObjectAttributes",
    "HeadObject",
    "DeleteObject",
    "DeleteObjects",
    "GetObjectTagging",
    "PutObjectTagging",
    "DeleteObjectTagging",
    "PutObject",
    "CopyObject",
    "CreateMultipartUpload",
    "UploadPartCopy",
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
];

/// The session token of an S3 request (header, else presigned query), as
/// the outer layer read it when it opened the session: authorization finds
/// it in the request's extensions rather than reading the request again.
#[derive(Clone)]
pub struct SessionToken(pub String);

/// One permission a request needs: an action on a resource.
struct Needs {
    action: &'static str,
    resource: String,
}

impl IamAccess {
    /// A refused change of a bucket's configuration is recorded as AWS
    /// records it: who tried, and the error they got.
    async fn audit_refusal(&self, cx: &mut S3AccessContext<'_>, principal: &Principal, refused: &s3s::S3Error) {
        let request_id = cx.extensions_mut().get::<tern_s3::audit::RequestId>().cloned();
        let S3Path::Bucket { bucket } = cx.s3_path() else { return };
        let Some(call) = tern_s3::audit::ConfigCall::of(cx.s3_op().name(), bucket) else { return };
        let outcome = Err((refused.code().as_str(), refused.message().unwrap_or_default()));
        let sent = (cx.headers(), request_id.as_ref());
        if self.region.audit_config_call(principal, sent, call, outcome).await.is_err() {
            tracing::error!(bucket = %bucket, "a refused configuration change was not recorded");
        }
    }

    /// Whether the bucket `path` names has a policy that could allow an
    /// unsigned caller anything (conditions aside).
    async fn may_let_in_anonymous(&self, path: &S3Path) -> S3Result<bool> {
        let (S3Path::Bucket { bucket } | S3Path::Object { bucket, .. }) = path else { return Ok(false) };
        Ok(self.region.bucket_policy(bucket).await?.is_some_and(|p| p.may_allow_anonymous()))
    }

    /// Identity policies and the bucket's policy decide each need.
    async fn authorize(&self, principal: &Principal, needs: &[Needs], context: &RequestContext) -> S3Result<()> {
        for Needs { action, resource } in needs {
            self.region.authorize_in(principal, action, resource, context).await?;
        }
        Ok(())
    }

    /// Authorizes a request `check` left to its operation: `needs`, with
    /// the request's condition keys added by `keys`.
    async fn decide<T>(
        &self,
        req: &mut S3Request<T>,
        needs: &[Needs],
        keys: impl FnOnce(&mut RequestContext),
    ) -> S3Result<()> {
        let Unauthorized(principal) =
            req.extensions.remove::<Unauthorized>().ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))?;
        let mut context = RequestContext::of(&principal);
        keys(&mut context);
        self.authorize(&principal, needs, &context).await?;
        req.extensions.insert(principal);
        Ok(())
    }
}

/// How an S3 request was signed (`s3:signatureversion`, `s3:authType`),
/// which travels with its principal like where it came from.
fn signature_of(headers: &http::HeaderMap, query: Option<&str>) -> (&'static str, &'static str) {
    let authorization = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let (v4, kind) = if let Some(authorization) = authorization {
        (authorization.starts_with("AWS4-"), "REST-HEADER")
    } else {
        let presigned_v4 = tern_sigv4::query::Query::of(query).is_ok_and(|q| q.has("X-Amz-Algorithm"));
        (presigned_v4, "REST-QUERY-STRING")
    };
    (if v4 { "AWS4-HMAC-SHA256" } else { "AWS" }, kind)
}

/// What an input names that its authorization reads: s3s's parsed fields.
trait Named {
    fn bucket(&self) -> &str;
    fn key(&self) -> Option<&str> {
        None
    }
    fn version_id(&self) -> Option<&String> {
        None
    }
    /// Tags sent with a write (`x-amz-tagging`).
    fn tagging(&self) -> Option<&String> {
        None
    }
    fn sse(&self) -> (Option<&s3s::dto::ServerSideEncryption>, Option<&String>) {
        (None, None)
    }
    fn listing(&self) -> (Option<&String>, Option<&String>, Option<i32>) {
        (None, None, None)
    }
}

macro_rules! named {
    ($($input:ty => { $($body:tt)* })*) => {
        $(impl Named for $input {
            fn bucket(&self) -> &str {
                &self.bucket
            }
            $($body)*
        })*
    };
}

macro_rules! versioned_object {
    () => {
        fn key(&self) -> Option<&str> {
            Some(&self.key)
        }
        fn version_id(&self) -> Option<&String> {
            self.version_id.as_ref()
        }
    };
}

macro_rules! object_write {
    () => {
        fn key(&self) -> Option<&str> {
            Some(&self.key)
        }
        fn tagging(&self) -> Option<&String> {
            self.tagging.as_ref()
        }
        fn sse(&self) -> (Option<&s3s::dto::ServerSideEncryption>, Option<&String>) {
            (self.server_side_encryption.as_ref(), self.ssekms_key_id.as_ref())
        }
    };
}

macro_rules! listing {
    () => {
        fn listing(&self) -> (Option<&String>, Option<&String>, Option<i32>) {
            (self.prefix.as_ref(), self.delimiter.as_ref(), self.max_keys)
        }
    };
}

named! {
    HeadObjectInput => { versioned_object!(); }
    GetObjectAttributesInput => { versioned_object!(); }
    DeleteObjectInput => { versioned_object!(); }
    GetObjectTaggingInput => { versioned_object!(); }
    PutObjectTaggingInput => { versioned_object!(); }
    DeleteObjectTaggingInput => { versioned_object!(); }
    PutObjectInput => { object_write!(); }
    CreateMultipartUploadInput => { object_write!(); }
    ListObjectsInput => { listing!(); }
    ListObjectsV2Input => { listing!(); }
    ListObjectVersionsInput => { listing!(); }
}

impl IamAccess {
    /// What reading a copy's source needs here, from the parsed
    /// `x-amz-copy-source`: nothing for a source in another region, whose
    /// region decides with its own bucket policy when it is read.
    async fn copy_source_needs(&self, source: &CopySource) -> S3Result<Option<Needs>> {
        match source {
            CopySource::Bucket { bucket, key, version_id } => {
                let here = self
                    .region
                    .meta
                    .get_bucket(bucket)
                    .await
                    .map_err(|_| s3_error!(ServiceUnavailable, "Please reduce your request rate."))?;
                Ok(here.map(|_| needs("GetObject", version_id.is_some(), object(bucket, key))))
            }
            CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => {
                Err(s3_error!(NotImplemented, "Copies from access points and outposts are not supported."))
            }
        }
    }

    /// An object operation whose action says whether it names a version.
    async fn by_version<T: Named + Send + Sync>(&self, req: &mut S3Request<T>, operation: &str) -> S3Result<()> {
        let input = &req.input;
        let need = needs(operation, input.version_id().is_some(), target_of(input));
        let version = input.version_id().cloned();
        self.decide(req, &[need], |cx| set_version(cx, version.as_ref())).await
    }

    /// A write: tags sent with it need `s3:PutObjectTagging` too, as on AWS,
    /// and its SSE headers are condition keys.
    async fn write<T: Named + Send + Sync>(&self, req: &mut S3Request<T>, operation: &str) -> S3Result<()> {
        let input = &req.input;
        let resource = target_of(input);
        let mut all = vec![needs(operation, false, resource.clone())];
        if input.tagging().is_some() {
            all.push(needs("PutObjectTagging", false, resource));
        }
        let (sse, kms_key) = input.sse();
        let (sse, kms_key) = (sse.cloned(), kms_key.cloned());
        let tags: Vec<(String, String)> =
            input.tagging().and_then(|t| serde_urlencoded::from_str(t).ok()).unwrap_or_default();
        self.decide(req, &all, |cx| {
            set_sse(cx, sse.as_ref(), kms_key.as_ref());
            set_request_tags(cx, &tags);
        })
        .await
    }

    /// A listing: its parameters are condition keys.
    async fn listing<T: Named + Send + Sync>(&self, req: &mut S3Request<T>, operation: &str) -> S3Result<()> {
        let need = needs(operation, false, target_of(&req.input));
        let (prefix, delimiter, max) = req.input.listing();
        let (prefix, delimiter) = (prefix.cloned(), delimiter.cloned());
        self.decide(req, &[need], |cx| set_listing(cx, prefix.as_ref(), delimiter.as_ref(), max)).await
    }
}

fn object(bucket: &str, key: &str) -> String {
    resource_arn(Some(bucket), Some(key))
}

/// The ARN of what `input` names: its object, else its bucket.
fn target_of(input: &impl Named) -> String {
    resource_arn(Some(input.bucket()), input.key())
}

fn needs(operation: &str, versioned: bool, resource: String) -> Needs {
    Needs { action: iam_action(operation, versioned).expect("every operation here has an action"), resource }
}

fn set_version(context: &mut RequestContext, version_id: Option<&String>) {
    if let Some(id) = version_id {
        context.set("s3:VersionId", id.clone());
    }
}

/// The SSE condition keys of a write, from the headers it was sent with.
fn set_sse(context: &mut RequestContext, sse: Option<&s3s::dto::ServerSideEncryption>, kms_key: Option<&String>) {
    if let Some(sse) = sse {
        context.set("s3:x-amz-server-side-encryption", sse.as_str());
    }
    if let Some(key) = kms_key {
        context.set("s3:x-amz-server-side-encryption-aws-kms-key-id", key.clone());
    }
}

/// `s3:RequestObjectTag/<key>` and `s3:RequestObjectTagKeys` of tags sent with a write.
fn set_request_tags(context: &mut RequestContext, tags: &[(String, String)]) {
    for (key, value) in tags {
        context.set(&format!("s3:RequestObjectTag/{key}"), value.clone());
    }
    if !tags.is_empty() {
        context.set_all("s3:RequestObjectTagKeys", tags.iter().map(|(k, _)| k.clone()).collect());
    }
}

fn set_listing(
    context: &mut RequestContext,
    prefix: Option<&String>,
    delimiter: Option<&String>,
    max_keys: Option<i32>,
) {
    for (key, value) in [("s3:prefix", prefix.cloned()), ("s3:delimiter", delimiter.cloned())] {
        if let Some(value) = value {
            context.set(key, value);
        }
    }
    if let Some(max) = max_keys {
        context.set("s3:max-keys", max.to_string());
    }
}

/// Whether a read is replication's own (`s3:GetObjectVersionForReplication`):
/// only a session S3 assumed for replication may claim it.
fn replication_read<T>(req: &S3Request<T>) -> bool {
    let claimed = req.headers.contains_key(tern_replication_model::protocol::REPLICATION_READ_HEADER);
    claimed && req.extensions.get::<Unauthorized>().is_some_and(|Unauthorized(p)| p.is_s3_replication())
}

#[async_trait::async_trait]
impl S3Access for IamAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let principal = match cx.credentials() {
            // Unsigned: only a bucket policy that allows anyone may let it in.
            None => Principal::anonymous(),
            Some(credentials) => {
                let access_key = credentials.access_key.clone();
                let token = cx.extensions_mut().get::<SessionToken>().map(|t| t.0.clone());
                let identity = self
                    .iam
                    .identity(&access_key, token.as_deref())
                    .ok_or_else(|| s3_error!(InvalidToken, "The provided token is malformed or otherwise invalid."))?;
                identity.principal
            }
        };
        let signature = Some(signature_of(cx.headers(), cx.uri().query()));
        let principal =
            principal.from(tern_iam::policy::Origin { signature, ..crate::listener::origin(cx.extensions_mut()) });
        let operation = cx.s3_op().name().to_owned();
        if let Some(note) = crate::access_log::note(cx.extensions_mut()) {
            note.caller(&principal.arn);
            note.operation(&operation);
            note.signature(signature);
        }
        if principal.is_anonymous() && !self.may_let_in_anonymous(cx.s3_path()).await? {
            // Before s3s reads any body: nothing here lets an unsigned caller in.
            let refused = s3_error!(AccessDenied, "Access Denied");
            self.audit_refusal(cx, &principal, &refused).await;
            return Err(refused);
        }
        let operation = cx.s3_op().name();
        if DECIDED_BY_INPUT.contains(&operation) {
            cx.extensions_mut().insert(Unauthorized(principal));
            return Ok(());
        }
        let action = iam_action(operation, false)
            .ok_or_else(|| s3_error!(NotImplemented, "{operation} is not supported by Tern."))?;
        let resource = match cx.s3_path() {
            S3Path::Root => resource_arn(None, None),
            S3Path::Bucket { bucket } => resource_arn(Some(bucket), None),
            S3Path::Object { bucket, key } => resource_arn(Some(bucket), Some(key)),
        };
        let context = RequestContext::of(&principal);
        if let Err(refused) = self.authorize(&principal, &[Needs { action, resource }], &context).await {
            self.audit_refusal(cx, &principal, &refused).await;
            return Err(refused);
        }
        cx.extensions_mut().insert(principal);
        Ok(())
    }

    async fn get_object(&self, req: &mut S3Request<GetObjectInput>) -> S3Result<()> {
        let input = &req.input;
        let resource = object(&input.bucket, &input.key);
        let need = if replication_read(req) {
            Needs { action: "s3:GetObjectVersionForReplication", resource }
        } else {
            needs("GetObject", input.version_id.is_some(), resource)
        };
        let version = input.version_id.clone();
        self.decide(req, &[need], |cx| set_version(cx, version.as_ref())).await
    }

    async fn head_object(&self, req: &mut S3Request<HeadObjectInput>) -> S3Result<()> {
        self.by_version(req, "HeadObject").await
    }

    /// As AWS: the attributes' own permission and reading the object's.
    async fn get_object_attributes(&self, req: &mut S3Request<GetObjectAttributesInput>) -> S3Result<()> {
        let input = &req.input;
        let versioned = input.version_id().is_some();
        let all = [
            needs("GetObjectAttributes", versioned, target_of(input)),
            needs("GetObject", versioned, target_of(input)),
        ];
        let version = input.version_id().cloned();
        self.decide(req, &all, |cx| set_version(cx, version.as_ref())).await
    }

    async fn delete_object(&self, req: &mut S3Request<DeleteObjectInput>) -> S3Result<()> {
        self.by_version(req, "DeleteObject").await
    }

    /// Each listed key is authorized by itself when the request runs.
    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        self.decide(req, &[], |_| {}).await
    }

    async fn get_object_tagging(&self, req: &mut S3Request<GetObjectTaggingInput>) -> S3Result<()> {
        self.by_version(req, "GetObjectTagging").await
    }

    async fn put_object_tagging(&self, req: &mut S3Request<PutObjectTaggingInput>) -> S3Result<()> {
        self.by_version(req, "PutObjectTagging").await
    }

    async fn delete_object_tagging(&self, req: &mut S3Request<DeleteObjectTaggingInput>) -> S3Result<()> {
        self.by_version(req, "DeleteObjectTagging").await
    }

    async fn put_object(&self, req: &mut S3Request<PutObjectInput>) -> S3Result<()> {
        self.write(req, "PutObject").await
    }

    async fn create_multipart_upload(&self, req: &mut S3Request<CreateMultipartUploadInput>) -> S3Result<()> {
        self.write(req, "CreateMultipartUpload").await
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        let input = &req.input;
        let resource = object(&input.bucket, &input.key);
        let mut all = vec![needs("CopyObject", false, resource.clone())];
        all.extend(self.copy_source_needs(&input.copy_source).await?);
        let replaces_tags = input.tagging_directive.as_ref().is_some_and(|d| d.as_str() == "REPLACE");
        if replaces_tags && input.tagging.is_some() {
            all.push(needs("PutObjectTagging", false, resource));
        }
        let (sse, kms_key) = (input.server_side_encryption.clone(), input.ssekms_key_id.clone());
        self.decide(req, &all, |cx| set_sse(cx, sse.as_ref(), kms_key.as_ref())).await
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        let input = &req.input;
        let mut all = vec![needs("UploadPartCopy", false, object(&input.bucket, &input.key))];
        all.extend(self.copy_source_needs(&input.copy_source).await?);
        self.decide(req, &all, |_| {}).await
    }

    async fn list_objects(&self, req: &mut S3Request<ListObjectsInput>) -> S3Result<()> {
        self.listing(req, "ListObjects").await
    }

    async fn list_objects_v2(&self, req: &mut S3Request<ListObjectsV2Input>) -> S3Result<()> {
        self.listing(req, "ListObjectsV2").await
    }

    async fn list_object_versions(&self, req: &mut S3Request<ListObjectVersionsInput>) -> S3Result<()> {
        self.listing(req, "ListObjectVersions").await
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation left to its own method has one: a name listed here
    /// without a method would pass `check` and reach its handler without a
    /// principal, where it is refused. This keeps the list honest.
    #[test]
    fn every_operation_decided_by_input_has_an_action() {
        for operation in DECIDED_BY_INPUT {
            assert!(iam_action(operation, false).is_some(), "{operation}");
        }
    }
}
