//! How a region's KMS reaches the other regions: signed JSON 1.1 calls to
//! their KMS endpoints, as the deployment's root identity.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;
use tern_kms::{KmsError, KmsPeers, KmsResult};

use crate::internal_routes;
use crate::peer::{PeerRequest, Peers};

pub struct HttpKmsPeers {
    pub peers: Arc<Peers>,
}

#[async_trait]
impl KmsPeers for HttpKmsPeers {
    fn knows(&self, region: &str) -> bool {
        self.peers.get(region).is_some()
    }

    async fn call(&self, region: &str, operation: &str, body: Value) -> KmsResult<Value> {
        self.peers.kms_call(region, operation, body).await
    }
}

impl Peers {
    /// Calls Tern's internal KMS operation `operation` of `region` as the
    /// root; its error, relayed.
    pub async fn kms_call(&self, region: &str, operation: &str, body: Value) -> KmsResult<Value> {
        let peer = self
            .get(region)
            .ok_or_else(|| KmsError::unsupported(format!("Region {region} is not part of this Tern deployment.")))?;
        let target = format!("{}{operation}", internal_routes::KMS_TARGET_PREFIX);
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let request = PeerRequest {
            service: "kms",
            method: http::Method::POST,
            path_and_query: internal_routes::KMS,
            headers: &headers,
            body: Bytes::from(body.to_string()),
        };
        let (status, bytes) =
            peer.request(request).await.map_err(|e| KmsError::dependency_timeout(format!("{e:#}")))?;
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|_| KmsError::internal(format!("{region} answered {status} without a JSON body")))?;
        if status.is_success() {
            return Ok(answer);
        }
        let code = answer["__type"].as_str().unwrap_or("KMSInternalException");
        let message = answer["message"].as_str().unwrap_or_default().to_owned();
        Err(KmsError::relayed(code, message, status.as_u16()))
    }
}
