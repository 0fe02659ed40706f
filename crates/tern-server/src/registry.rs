//! The global bucket-name registry: kept by the first region of the
//! deployment (the registry region) in its metadata store, and reached by
//! the others through signed HTTP calls to `/_tern/registry/{bucket}`.
//! Because it only needs HTTP, it works the same in one process and across hosts.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, StatusCode};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use tern_s3::{BucketRegistry, RegistryEntry, RegistryError};
use tern_store::MetaStore;

use crate::peer::PeerClient;

pub const ROUTE: &str = "/_tern/registry";
/// Where one name's entry is: `{PREFIX}{bucket}`.
pub const PREFIX: &str = "/_tern/registry/";

/// The registry region's own view: its metadata store.
pub struct LocalRegistry {
    pub meta: Arc<dyn MetaStore>,
}

fn unavailable(e: impl std::fmt::Display) -> RegistryError {
    RegistryError(e.to_string())
}

#[async_trait]
impl BucketRegistry for LocalRegistry {
    async fn claim(&self, name: &str, region: &str) -> Result<String, RegistryError> {
        Ok(self.meta.registry_claim(name, region).await.map_err(unavailable)?.region)
    }

    async fn lookup(&self, name: &str) -> Result<Option<String>, RegistryError> {
        Ok(self.meta.registry_lookup(name).await.map_err(unavailable)?.map(|b| b.region))
    }

    async fn release(&self, name: &str, region: &str) -> Result<(), RegistryError> {
        self.meta.registry_release(name, region).await.map_err(unavailable)
    }

    async fn list(&self) -> Result<Vec<RegistryEntry>, RegistryError> {
        let all = self.meta.registry_list().await.map_err(unavailable)?;
        Ok(all
            .into_iter()
            .map(|b| RegistryEntry { name: b.name, region: b.region, created_ms: b.created_ms })
            .collect())
    }
}

/// Any other region's view: HTTP calls to the registry region.
pub struct RemoteRegistry {
    pub peer: PeerClient,
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
    name: String,
    region: String,
    created_ms: i64,
}

impl RemoteRegistry {
    async fn call(&self, method: Method, path: &str) -> Result<(StatusCode, Bytes), RegistryError> {
        let (status, body) =
            self.peer.send(method, path, Bytes::new()).await.map_err(|e| unavailable(format!("{e:#}")))?;
        if status.is_server_error() || status == StatusCode::FORBIDDEN {
            return Err(unavailable(format!("registry answered {status}")));
        }
        Ok((status, body))
    }
}

fn text(body: &Bytes) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[async_trait]
impl BucketRegistry for RemoteRegistry {
    async fn claim(&self, name: &str, region: &str) -> Result<String, RegistryError> {
        let (_, body) = self.call(Method::PUT, &format!("{ROUTE}/{name}?region={region}")).await?;
        Ok(text(&body))
    }

    async fn lookup(&self, name: &str) -> Result<Option<String>, RegistryError> {
        let (status, body) = self.call(Method::GET, &format!("{ROUTE}/{name}")).await?;
        Ok((status == StatusCode::OK).then(|| text(&body)))
    }

    async fn release(&self, name: &str, region: &str) -> Result<(), RegistryError> {
        self.call(Method::DELETE, &format!("{ROUTE}/{name}?region={region}")).await.map(|_| ())
    }

    async fn list(&self) -> Result<Vec<RegistryEntry>, RegistryError> {
        let (_, body) = self.call(Method::GET, ROUTE).await?;
        let entries: Vec<WireEntry> = serde_json::from_slice(&body).map_err(unavailable)?;
        Ok(entries
            .into_iter()
            .map(|e| RegistryEntry { name: e.name, region: e.region, created_ms: e.created_ms })
            .collect())
    }
}

/// Serves the registry to the other regions (mounted on the registry region only).
pub struct RegistryRoute {
    pub registry: Arc<LocalRegistry>,
    pub root_access_key: String,
}

fn query_region(uri: &http::Uri) -> Option<String> {
    uri.query()?.split('&').find_map(|p| p.strip_prefix("region=")).map(str::to_owned)
}

fn respond(status: StatusCode, body: impl Into<Body>) -> S3Response<Body> {
    let mut response = S3Response::new(body.into());
    response.status = Some(status);
    response
}

#[async_trait]
impl S3Route for RegistryRoute {
    fn is_match(&self, _: &Method, uri: &http::Uri, _: &http::HeaderMap, _: &mut http::Extensions) -> bool {
        uri.path() == ROUTE || uri.path().starts_with(PREFIX)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        crate::internal_routes::root_only(req, &self.root_access_key)
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let internal = |e: RegistryError| s3_error!(InternalError, "{e}");
        let name = req.uri.path().strip_prefix(PREFIX).unwrap_or_default().to_owned();
        let region = query_region(&req.uri);
        match (req.method.clone(), name.is_empty(), region) {
            (Method::GET, true, _) => {
                let entries = self.registry.list().await.map_err(internal)?;
                let wire: Vec<WireEntry> = entries
                    .into_iter()
                    .map(|e| WireEntry { name: e.name, region: e.region, created_ms: e.created_ms })
                    .collect();
                let json = serde_json::to_string(&wire).map_err(|e| s3_error!(InternalError, "{e}"))?;
                Ok(respond(StatusCode::OK, json))
            }
            (Method::GET, false, _) => match self.registry.lookup(&name).await.map_err(internal)? {
                Some(region) => Ok(respond(StatusCode::OK, region)),
                None => Ok(respond(StatusCode::NOT_FOUND, Body::empty())),
            },
            (Method::PUT, false, Some(region)) => {
                Ok(respond(StatusCode::OK, self.registry.claim(&name, &region).await.map_err(internal)?))
            }
            (Method::DELETE, false, Some(region)) => {
                self.registry.release(&name, &region).await.map_err(internal)?;
                Ok(respond(StatusCode::NO_CONTENT, Body::empty()))
            }
            _ => Err(s3_error!(MethodNotAllowed)),
        }
    }
}
