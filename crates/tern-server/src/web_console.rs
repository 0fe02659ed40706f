//! The web console's place in a region: `/_tern/console/` is routed to
//! whatever console the region was started with (`tern-console`, a client
//! of the region's own APIs, so nothing here depends on it).

use std::sync::Arc;

use futures::future::BoxFuture;
use http::{Request, Response};
use hyper::body::Incoming;
use s3s::Body;

use crate::metrics::RegionMetrics;

/// Where the console is served.
pub const PATH: &str = "/_tern/console";

/// A region's web console.
pub trait WebConsole: Send + Sync + 'static {
    fn serve(&self, req: Request<Incoming>) -> BoxFuture<'_, Response<Body>>;
}

/// What a console is built from: the region it is served by, the
/// deployment it shows, and the region's metrics.
pub struct ConsoleContext {
    pub region: String,
    pub deployment: tern_core::DeploymentConfig,
    pub metrics: Arc<RegionMetrics>,
    /// The region's listener speaks HTTPS.
    pub secure: bool,
    /// Vouches for the console's user when it calls the regions as them.
    pub voucher: Arc<crate::Voucher>,
}

pub type ConsoleFactory = dyn Fn(&ConsoleContext) -> anyhow::Result<Arc<dyn WebConsole>> + Send + Sync;

/// Whether `path` is the console's.
#[must_use]
pub fn serves(path: &str) -> bool {
    path == PATH || path.strip_prefix(PATH).is_some_and(|rest| rest.starts_with('/'))
}
