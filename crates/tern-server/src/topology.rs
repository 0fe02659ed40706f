//! Where buckets and regions are, for the replication worker: buckets
//! through the deployment's bucket registry, endpoints from the
//! deployment file every host shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tern_core::DeploymentConfig;
use tern_s3::BucketRegistry;

pub struct Topology {
    registry: Arc<dyn BucketRegistry>,
    endpoints: BTreeMap<String, String>,
}

impl Topology {
    pub fn new(registry: Arc<dyn BucketRegistry>, deployment: &DeploymentConfig) -> Self {
        let endpoints = deployment.regions.iter().map(|r| (r.name.clone(), r.endpoint_url())).collect();
        Self { registry, endpoints }
    }
}

#[async_trait]
impl tern_replication::Topology for Topology {
    async fn region_of(&self, bucket: &str) -> Result<Option<String>, String> {
        self.registry.lookup(bucket).await.map_err(|e| e.to_string())
    }

    fn endpoint(&self, region: &str) -> Option<String> {
        self.endpoints.get(region).cloned()
    }
}
