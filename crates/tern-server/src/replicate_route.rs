//! The receiving end of replication's protocol
//! (`tern_replication_model::protocol`): another region's replication
//! worker, signed as the rule's role (an STS session S3 assumed), delivers
//! replicas, their staged sealed blobs and tag changes here; the region's
//! S3 layer applies them.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, StatusCode};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};
use tern_iam::Iam;
use tern_replication_model::protocol::{MANIFEST_HEADER, ReplicaManifest, Route, TagManifest, decode_manifest};

pub struct ReplicateRoute {
    pub region: Arc<tern_s3::Region>,
    pub iam: Arc<Iam>,
}

fn manifest<M: serde::de::DeserializeOwned>(headers: &http::HeaderMap) -> S3Result<M> {
    let text = headers.get(MANIFEST_HEADER).and_then(|v| v.to_str().ok());
    text.and_then(decode_manifest).ok_or_else(|| s3_error!(InvalidArgument, "A replica needs its manifest"))
}

#[async_trait]
impl S3Route for ReplicateRoute {
    fn is_match(&self, method: &Method, uri: &http::Uri, _: &http::HeaderMap, _: &mut http::Extensions) -> bool {
        method == Method::PUT && Route::of(uri.path()).is_some()
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        match &req.credentials {
            Some(_) => Ok(()),
            None => Err(s3_error!(AccessDenied, "Access Denied")),
        }
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let access_key = req.credentials.as_ref().map(|c| c.access_key.clone()).unwrap_or_default();
        // The outer layer read the token (header or query) once.
        let token = req.extensions.get::<crate::auth::SessionToken>().map(|t| t.0.as_str());
        let identity = self
            .iam
            .identity(&access_key, token)
            .ok_or_else(|| s3_error!(InvalidToken, "The provided token is malformed or otherwise invalid."))?;
        let identity = tern_iam::Identity {
            principal: identity.principal.from(crate::listener::origin(&req.extensions)),
            ..identity
        };
        // Before anything of the request is read: only S3's replication delivers.
        tern_s3::require_replication(&identity.principal)?;
        let route = Route::of(req.uri.path()).ok_or_else(|| s3_error!(InvalidURI, "No bucket and key"))?;
        let (bucket, key) = route.target(req.uri.path()).ok_or_else(|| s3_error!(InvalidURI, "No bucket and key"))?;
        match route {
            Route::Blob => {
                let body = s3s::dto::StreamingBlob::from(req.input);
                let receipt = self.region.stage_replica_blob((&bucket, &key), body, &identity.principal).await?;
                let answer = serde_json::to_string(&receipt).expect("receipts serialize");
                Ok(S3Response::with_status(Body::from(answer), StatusCode::OK))
            }
            Route::Tags => {
                let manifest: TagManifest = manifest(&req.headers)?;
                self.region.apply_replica_tags(&bucket, &key, manifest, &identity.principal).await?;
                Ok(S3Response::with_status(Body::empty(), StatusCode::OK))
            }
            Route::Object => {
                let manifest: ReplicaManifest = manifest(&req.headers)?;
                let body = manifest.carries_body().then(|| s3s::dto::StreamingBlob::from(req.input));
                self.region.apply_replica(&bucket, &key, manifest, body, &identity.principal).await?;
                Ok(S3Response::with_status(Body::empty(), StatusCode::OK))
            }
        }
    }
}

/// Tern's signed admin routes: the bucket registry (registry region only),
/// replica delivery, and the replication admin API.
pub struct AdminRoutes {
    pub registry: Option<crate::registry::RegistryRoute>,
    pub replicate: ReplicateRoute,
    pub replication: crate::replication_admin::ReplicationAdmin,
    pub access_check: crate::access_check::AccessCheck,
    pub copy_source: crate::copy_source_route::CopySourceRoute,
}

impl AdminRoutes {
    fn route_for(&self, path: &str) -> Option<&dyn S3Route> {
        if Route::of(path).is_some() {
            Some(&self.replicate)
        } else if path.starts_with(crate::replication_admin::PREFIX) {
            Some(&self.replication)
        } else if path == crate::internal_routes::ACCESS_CHECK {
            Some(&self.access_check)
        } else if path == crate::internal_routes::COPY_SOURCE {
            Some(&self.copy_source)
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
