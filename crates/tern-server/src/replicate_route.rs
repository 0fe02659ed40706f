//! `PUT /_tern/replicate/{bucket}/{key}`: where another region's
//! replication worker delivers a replica, signed as the rule's role (an STS
//! session). The manifest travels base64-JSON in `x-tern-replica`; the body
//! is the object's plaintext, which this region encrypts itself (or, for a
//! sealed replica, bytes staged under `/_tern/replicate-blob/`). A tag
//! change made after a version replicated goes to `/_tern/replicate-tags/`.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, StatusCode};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};
use tern_iam::Iam;
use tern_store::{ReplicaManifest, TagManifest};

pub const PREFIX: &str = "/_tern/replicate/";
/// Where a sealed replica's blobs are staged before its manifest.
pub const BLOB_PREFIX: &str = "/_tern/replicate-blob/";
pub const TAGS_PREFIX: &str = "/_tern/replicate-tags/";
const PREFIXES: [&str; 3] = [PREFIX, BLOB_PREFIX, TAGS_PREFIX];
pub const MANIFEST_HEADER: &str = "x-tern-replica";

pub struct ReplicateRoute {
    pub region: Arc<tern_s3::Region>,
    pub iam: Arc<Iam>,
}

fn target(path: &str) -> Option<(String, String)> {
    let rest = PREFIXES.iter().find_map(|p| path.strip_prefix(p))?;
    let (bucket, key) = rest.split_once('/')?;
    let key = urlencoding::decode(key).ok()?.into_owned();
    (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_owned(), key))
}

fn manifest<M: serde::de::DeserializeOwned>(headers: &http::HeaderMap) -> S3Result<M> {
    let text = headers.get(MANIFEST_HEADER).and_then(|v| v.to_str().ok());
    let json = text.and_then(|t| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, t).ok());
    let manifest = json.and_then(|j| serde_json::from_slice(&j).ok());
    manifest.ok_or_else(|| s3_error!(InvalidArgument, "A replica needs its manifest"))
}

fn is_replication(path: &str) -> bool {
    PREFIXES.iter().any(|p| path.starts_with(p))
}

#[async_trait]
impl S3Route for ReplicateRoute {
    fn is_match(&self, method: &Method, uri: &http::Uri, _: &http::HeaderMap, _: &mut http::Extensions) -> bool {
        method == Method::PUT && is_replication(uri.path())
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        match &req.credentials {
            Some(_) => Ok(()),
            None => Err(s3_error!(AccessDenied, "Access Denied")),
        }
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let access_key = req.credentials.as_ref().map(|c| c.access_key.clone()).unwrap_or_default();
        let token = req.headers.get("x-amz-security-token").and_then(|v| v.to_str().ok());
        let identity = self
            .iam
            .identity(&access_key, token)
            .ok_or_else(|| s3_error!(InvalidToken, "The provided token is malformed or otherwise invalid."))?;
        // Before anything of the request is read: only S3's replication delivers.
        tern_s3::require_replication(&identity.principal)?;
        let (bucket, key) = target(req.uri.path()).ok_or_else(|| s3_error!(InvalidURI, "No bucket and key"))?;
        if req.uri.path().starts_with(BLOB_PREFIX) {
            let body = s3s::dto::StreamingBlob::from(req.input);
            let staged = self.region.stage_replica_blob((&bucket, &key), body, &identity.principal).await?;
            let answer = serde_json::json!({ "blob": staged.blob, "binding": staged.binding, "ticket": staged.ticket });
            return Ok(S3Response::with_status(Body::from(answer.to_string()), StatusCode::OK));
        }
        if req.uri.path().starts_with(TAGS_PREFIX) {
            let manifest: TagManifest = manifest(&req.headers)?;
            self.region.apply_replica_tags(&bucket, &key, manifest, &identity.principal).await?;
            return Ok(S3Response::with_status(Body::empty(), StatusCode::OK));
        }
        let manifest: ReplicaManifest = manifest(&req.headers)?;
        let carries_body =
            !manifest.is_delete_marker && !matches!(manifest.sealed, Some(tern_store::SealedLayout::Blobs(_)));
        let body = carries_body.then(|| s3s::dto::StreamingBlob::from(req.input));
        self.region.apply_replica(&bucket, &key, manifest, body, &identity.principal).await?;
        Ok(S3Response::with_status(Body::empty(), StatusCode::OK))
    }
}

/// Tern's signed admin routes: the bucket registry (registry region only),
/// replica delivery, and the replication admin API.
pub struct AdminRoutes {
    pub registry: Option<crate::registry::RegistryRoute>,
    pub replicate: ReplicateRoute,
    pub replication: crate::replication_admin::ReplicationAdmin,
}

impl AdminRoutes {
    fn route_for(&self, path: &str) -> Option<&dyn S3Route> {
        if is_replication(path) {
            Some(&self.replicate)
        } else if path.starts_with(crate::replication_admin::PREFIX) {
            Some(&self.replication)
        } else {
            self.registry.as_ref().map(|r| r as &dyn S3Route)
        }
    }
}

#[async_trait]
impl S3Route for AdminRoutes {
    fn is_match(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        ext: &mut http::Extensions,
    ) -> bool {
        self.route_for(uri.path()).is_some_and(|r| r.is_match(method, uri, headers, ext))
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let route = self.route_for(req.uri.path()).ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))?;
        route.check_access(req).await
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let route = self.route_for(req.uri.path()).ok_or_else(|| s3_error!(NoSuchKey))?;
        route.call(req).await
    }
}
