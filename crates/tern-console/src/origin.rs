//! Whose call it is. The console calls the regions from its own process, so
//! without more every call would come from the server's address: a policy
//! on `aws:SourceIp`, the audit trail and the access logs would see the
//! server, not the person signed in. Each request to the console runs with
//! that person's origin in scope, and every call it makes on their behalf
//! carries it under the deployment's voucher (as a relaying region's do),
//! bound to the call's own signature.

use std::sync::Arc;

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use tern_server::peer::AfterSigning;
use tern_server::{ClientOrigin, Signed, Voucher};

tokio::task_local! {
    /// The origin of the console request being served.
    static ORIGIN: ClientOrigin;
}

/// Runs `serve` with `origin` as the origin of the calls it makes.
pub async fn on_behalf_of<T>(origin: ClientOrigin, serve: impl Future<Output = T>) -> T {
    ORIGIN.scope(origin, serve).await
}

fn current() -> Option<ClientOrigin> {
    ORIGIN.try_with(|origin| *origin).ok()
}

/// Adds the voucher's headers to every signed SDK call made for a console user.
#[derive(Clone)]
pub struct Vouching {
    pub voucher: Arc<Voucher>,
    pub region: String,
}

impl std::fmt::Debug for Vouching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vouching").field("region", &self.region).finish_non_exhaustive()
    }
}

impl Intercept for Vouching {
    fn name(&self) -> &'static str {
        "Vouching"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(origin) = current() else { return Ok(()) };
        let request = context.request_mut();
        let uri: http::Uri = request.uri().parse()?;
        let path_and_query = uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
        let header = |name: &str| request.headers().get(name).unwrap_or_default().to_owned();
        let (authorization, amz_date) = (header("authorization"), header("x-amz-date"));
        let method = request.method().to_owned();
        let signed = Signed { method: &method, path_and_query, authorization: &authorization, amz_date: &amz_date };
        for (name, value) in self.voucher.vouch(&self.region, &signed, origin) {
            request.headers_mut().insert(name.as_str().to_owned(), value.to_str()?.to_owned());
        }
        Ok(())
    }
}

/// The same, for Tern's own routes the console calls with a `PeerClient`.
pub fn after_signing(voucher: Arc<Voucher>) -> AfterSigning {
    Arc::new(move |region: &str, request: &mut http::Request<bytes::Bytes>| {
        let Some(origin) = current() else { return };
        let path_and_query = request.uri().path_and_query().map_or("/", http::uri::PathAndQuery::as_str).to_owned();
        let method = request.method().as_str().to_owned();
        let headers = voucher.vouch(region, &Signed::of(&method, &path_and_query, request.headers()), origin);
        for (name, value) in headers {
            request.headers_mut().insert(name, value);
        }
    })
}
