//! The outer layer in front of every service of a region: health, routing by
//! the `SigV4` credential scope's service, the region check, and size caps
//! that s3s 0.14 does not enforce itself.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use s3s::service::S3Service;
use s3s::{Body, S3Error, S3ErrorCode};

use std::time::Instant;

use crate::chunk_guard::GuardedBody;
use crate::metrics::RegionMetrics;
use crate::other_services::{self, OtherServices};
use tern_sigv4::scope::{self, CredentialScope};

/// AWS's single-PUT limit.
const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;

pub struct OuterLayer {
    pub region: String,
    pub s3: S3Service,
    pub metrics: std::sync::Arc<RegionMetrics>,
    /// The services s3s does not serve (KMS, IAM, STS).
    pub others: OtherServices,
    /// STS sessions of S3 requests, opened before s3s checks signatures.
    pub sessions: std::sync::Arc<crate::auth::Sessions>,
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text.to_owned()));
    *response.status_mut() = status;
    response
}

fn metrics_response(text: String) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

fn s3_error(err: S3Error) -> Response<Body> {
    err.to_http_response().unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

/// Streaming-signed bodies pass through the framing guard before s3s sees them.
fn guard_chunked_body(req: Request<Incoming>) -> Request<Body> {
    let chunked = req
        .headers()
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"));
    let (parts, body) = req.into_parts();
    let body = if chunked {
        Body::from(Box::pin(GuardedBody::new(body)) as s3s::stream::DynByteStream)
    } else {
        Body::from(body)
    };
    Request::from_parts(parts, body)
}

fn header_u64(req: &Request<Incoming>, name: &str) -> Option<u64> {
    req.headers().get(name)?.to_str().ok()?.parse().ok()
}

impl OuterLayer {
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        match req.uri().path() {
            "/_tern/health" => return plain(StatusCode::OK, "ok\n"),
            "/_tern/metrics" => return metrics_response(self.metrics.render()),
            _ => {}
        }
        let started = Instant::now();
        let method = req.method().clone();
        let authorization = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let scope = scope::of_request(authorization, req.uri().query());
        let service = scope.as_ref().map_or("s3", |s| s.service.as_str()).to_owned();
        let response = self.dispatch(req, scope).await;
        self.metrics.observe(&service, &method, response.status(), started.elapsed());
        response
    }

    /// `scope` is the request's credential scope, if it is signed.
    async fn dispatch(&self, req: Request<Incoming>, scope: Option<CredentialScope>) -> Response<Body> {
        if let Some(response) = self.refuse(&req, scope.as_ref()) {
            return response;
        }
        if let Some(scope) = scope.filter(|s| s.service != "s3") {
            return other_services::answer(&scope.service, req, &self.others).await;
        }
        self.admit_session(&req);
        let req = guard_chunked_body(req);
        match self.s3.call(req).await {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(error = ?e, "s3 service failed");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }

    /// Opens the STS session of an S3 request that carries a session token.
    fn admit_session(&self, req: &Request<Incoming>) {
        let header = |name| req.headers().get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
        let query = req.uri().query();
        let token = header("x-amz-security-token").map(str::to_owned).or_else(|| {
            let value = query?.split('&').find_map(|p| p.strip_prefix("X-Amz-Security-Token="))?;
            urlencoding::decode(value).ok().map(std::borrow::Cow::into_owned)
        });
        if let (Some(token), Some(access_key)) =
            (token, tern_sigv4::scope::access_key_of(header("authorization"), query))
        {
            self.sessions.admit(&self.others.iam, &access_key, &token);
        }
    }

    /// A response for requests that must not reach a service handler.
    fn refuse(&self, req: &Request<Incoming>, scope: Option<&CredentialScope>) -> Option<Response<Body>> {
        // IAM is global: any region's endpoint answers it, whatever region signed.
        if let Some(scope) = scope
            && scope.region != self.region
            && scope.service != "iam"
        {
            return Some(s3_error(S3Error::with_message(
                S3ErrorCode::AuthorizationHeaderMalformed,
                format!(
                    "The authorization header is malformed; the region '{}' is wrong; expecting '{}'",
                    scope.region, self.region
                ),
            )));
        }
        let declared = header_u64(req, "x-amz-decoded-content-length").or_else(|| header_u64(req, "content-length"));
        if declared.is_some_and(|n| n > MAX_SINGLE_PUT) {
            return Some(s3_error(S3Error::with_message(
                S3ErrorCode::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size",
            )));
        }
        None
    }
}
