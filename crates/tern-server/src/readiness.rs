//! `/_tern/health`: a region is ready when its metadata store and its blob
//! store answer, so a load balancer stops sending to a front-end that lost
//! its database or its blob mount and sends to it again, without a
//! restart, once they are back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Response, StatusCode};
use s3s::Body;
use tern_store::{BlobStore, MetaStore};

/// How long one look at the store answers for: health checks come from
/// anyone, unauthenticated, and must not become database load.
const FRESH_FOR: Duration = Duration::from_millis(500);
/// How long a look may take before the store counts as unreachable.
const PATIENCE: Duration = Duration::from_secs(2);

pub struct Readiness {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    /// When the store was last asked, and whether it answered.
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl Readiness {
    pub fn new(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>) -> Self {
        Self { meta, blobs, last: tokio::sync::Mutex::default() }
    }

    pub async fn response(&self) -> Response<Body> {
        if self.ready().await {
            return crate::outer::plain(StatusCode::OK, "ok\n");
        }
        let mut response =
            crate::outer::plain(StatusCode::SERVICE_UNAVAILABLE, "not ready: the region's stores are unreachable\n");
        response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
        response
    }

    /// Callers arriving together share one look.
    async fn ready(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, ready)) = *last
            && at.elapsed() < FRESH_FOR
        {
            return ready;
        }
        let both = async { self.meta.ping().await.and(self.blobs.ping().await) };
        let ready = tokio::time::timeout(PATIENCE, both).await.is_ok_and(|answer| answer.is_ok());
        *last = Some((Instant::now(), ready));
        ready
    }
}
