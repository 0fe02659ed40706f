//! The outer layer in front of every service of a region: health, metrics,
//! routing by the `SigV4` credential scope's service, and the checks s3s 0.14
//! does not make: the region, size caps, presigned lifetimes, `SigV2` dates
//! and constant-time `SigV2` signatures, and browser-form POSTs, which are
//! refused before a byte of their body is read.
//!
//! Every decision here reads the request as the service will: the query
//! string decoded as s3s decodes it, never searched as raw text.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use s3s::path::ParseS3PathError;
use s3s::service::S3Service;
use s3s::{Body, S3Error, S3ErrorCode};
use tern_sigv4::query::Query;
use tern_sigv4::scope::{self, CredentialScope};
use tern_sigv4::v2;

use crate::access_log::{self, AccessNote, Arrival};
use crate::auth::{IamAuth, SessionToken, Sessions};
use crate::body::RequestBody;
use crate::internal_routes;
use crate::listener::{Handler, Transport};
use crate::metrics::{RegionMetrics, Served};
use crate::other_services::{self, OtherServices};

/// AWS's single-PUT limit.
const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;

pub struct OuterLayer {
    pub region: String,
    pub s3: S3Service,
    pub metrics: Arc<RegionMetrics>,
    /// Whether `/_tern/metrics` is served here (not on a listener of its own).
    pub serves_metrics: bool,
    /// The services s3s does not serve (KMS, IAM, STS).
    pub others: OtherServices,
    /// Secrets of S3 callers, for checking `SigV2` signatures.
    pub auth: Arc<IamAuth>,
    /// STS sessions of S3 requests, opened before s3s checks signatures.
    pub sessions: Arc<Sessions>,
    /// Whether `SigV2` requests are accepted.
    pub sigv2: bool,
    /// How long a request body may go without a byte.
    pub request_timeout: Duration,
    /// Routes between regions need the deployment's peer certificate (mutual TLS).
    pub peer_certificates: bool,
    /// What `/_tern/health` answers.
    pub readiness: Arc<crate::readiness::Readiness>,
    /// Relays requests signed for other regions of the deployment.
    pub forwarder: crate::forward::Forwarder,
    /// The web console, if the region was started with one.
    pub console: Option<Arc<dyn crate::WebConsole>>,
    /// Files in AWS's server access log format (`[access_log] dir`).
    pub server_access_log: Option<crate::server_access_log::ServerAccessLog>,
    /// The account, as the bucket owner of those files.
    pub account_id: String,
}

pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text.to_owned()));
    *response.status_mut() = status;
    response
}

pub fn metrics_response(metrics: &RegionMetrics) -> Response<Body> {
    let mut response = Response::new(Body::from(metrics.render()));
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

fn s3_error(err: S3Error) -> Response<Body> {
    err.to_http_response().unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

fn s3_error_with(code: S3ErrorCode, status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut err = S3Error::with_message(code, message.into());
    err.set_status_code(status);
    s3_error(err)
}

/// s3s refuses a path it cannot parse with a bare error code; AWS says
/// why, and clients show it. The path is read here exactly as s3s reads it.
fn path_refusal(req: &Request<Incoming>) -> Option<Response<Body>> {
    let (code, message) = match urlencoding::decode(req.uri().path()) {
        Err(_) => (S3ErrorCode::InvalidURI, "Couldn't parse the specified URI."),
        Ok(path) => match s3s::path::parse_path_style_with_validation(&path, &crate::auth::TernNames) {
            Ok(_) => return None,
            Err(ParseS3PathError::InvalidPath) => (S3ErrorCode::InvalidURI, "Couldn't parse the specified URI."),
            Err(ParseS3PathError::InvalidBucketName) => {
                (S3ErrorCode::InvalidBucketName, "The specified bucket is not valid.")
            }
            Err(ParseS3PathError::KeyTooLong) => (S3ErrorCode::KeyTooLongError, "Your key is too long"),
        },
    };
    Some(s3_error_with(code, StatusCode::BAD_REQUEST, message))
}

/// A header as s3s reads it: its one value that is UTF-8 (values that are
/// not are ignored, and a header given twice has none), so the outer layer
/// and the service it guards decide on the same reading.
fn header<'r>(req: &'r Request<Incoming>, name: &str) -> Option<&'r str> {
    let mut values = req.headers().get_all(name).iter().filter_map(|v| std::str::from_utf8(v.as_bytes()).ok());
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// Headers whose every reader must agree on one value: a request that
/// repeats one of them is refused rather than read two ways.
const SINGLE_VALUED: &[&str] = &[
    "authorization",
    "content-type",
    "content-length",
    "content-encoding",
    "date",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-decoded-content-length",
    "x-amz-security-token",
    "x-amz-target",
];

/// s3s quotes every `ETag` it writes; `GetObjectAttributes` is the one answer in
/// which S3 sends it bare, and clients compare it as sent.
fn unquote_attributes_etag(response: &mut Response<Body>) {
    let Some(xml) = response.body().bytes() else { return };
    let Ok(text) = std::str::from_utf8(&xml) else { return };
    let bare = text.replacen("<ETag>\"", "<ETag>", 1).replacen("\"</ETag>", "</ETag>", 1);
    response.headers_mut().insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(bare.len()));
    *response.body_mut() = Body::from(bare);
}

fn header_u64(req: &Request<Incoming>, name: &str) -> Option<u64> {
    header(req, name)?.parse().ok()
}

impl Handler for OuterLayer {
    async fn handle(&self, mut req: Request<Incoming>) -> Response<Body> {
        match req.uri().path() {
            "/_tern/health" => return self.readiness.response().await,
            "/_tern/metrics" if self.serves_metrics => return metrics_response(&self.metrics),
            _ => {}
        }
        let started = Instant::now();
        let method = req.method().clone();
        let declares_body = header_u64(&req, "content-length").is_some_and(|n| n > 0)
            || req.headers().contains_key(http::header::TRANSFER_ENCODING);
        let arrival = Arrival::of(&req, self.server_access_log.is_some());
        let note = Arc::new(AccessNote::default());
        req.extensions_mut().insert(Arc::clone(&note));
        if let Some(console) = self.console.as_ref().filter(|_| crate::web_console::serves(req.uri().path())) {
            let response = console.serve(req).await;
            self.metrics.observe(Served::Console, &method, response.status(), started.elapsed());
            access_log::record(&arrival, &note, response.status(), &response, started.elapsed());
            return response;
        }
        let (served, mut response) = self.dispatch(req).await;
        // A refusal is often answered before the body is read. A client told
        // no by its `Expect: 100-continue` then sends no body, and hyper would
        // read the next request on the connection as this body's rest; so an
        // error to a request with a body closes the connection.
        if declares_body && (response.status().is_client_error() || response.status().is_server_error()) {
            response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        }
        self.metrics.observe(served, &method, response.status(), started.elapsed());
        access_log::record(&arrival, &note, response.status(), &response, started.elapsed());
        if let Some(files) = &self.server_access_log {
            access_log::record_for_bucket(files, &self.account_id, (&arrival, &note), &response, started.elapsed());
        }
        // Every service's "try again shortly" says when.
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            let retry = http::HeaderValue::from_static("1");
            response.headers_mut().entry(http::header::RETRY_AFTER).or_insert(retry);
        }
        response
    }
}

impl OuterLayer {
    async fn dispatch(&self, mut req: Request<Incoming>) -> (Served, Response<Body>) {
        let Ok(relayed) = self.forwarder.admit(&mut req) else {
            let refusal = s3_error_with(
                S3ErrorCode::AccessDenied,
                StatusCode::FORBIDDEN,
                "The relayed request's origin does not verify.",
            );
            return (Served::Refused, refusal);
        };
        let Ok(query) = Query::of(req.uri().query()) else {
            return (
                Served::Refused,
                s3_error(S3Error::with_message(S3ErrorCode::InvalidURI, "The query string is malformed.")),
            );
        };
        let scope = scope::of_request(header(&req, "authorization"), &query);
        let relay_to = scope.as_ref().map(|s| s.region.as_str()).filter(|region| {
            // Never relayed: a request already relayed once, and this
            // region's own routes (a relay holds the peer certificate).
            *region != self.region
                && !relayed
                && self.forwarder.serves(region)
                && !req.uri().path().starts_with("/_tern/")
        });
        if let Some(response) = self.refuse(&req, &query, scope.as_ref().filter(|_| relay_to.is_none())) {
            return (Served::Refused, response);
        }
        if let Some(region) = relay_to {
            let region = region.to_owned();
            return (Served::Relayed, self.forwarder.forward(req, &region).await);
        }
        match scope.as_ref().map(|s| s.service.as_str()) {
            Some(service @ ("kms" | "iam" | "sts")) => {
                let response = other_services::answer(service, req, &self.others, self.request_timeout).await;
                (Served::of(service), response)
            }
            Some("s3") | None => self.s3(req, &query).await,
            Some(_) => (
                Served::Refused,
                s3_error_with(
                    S3ErrorCode::NotImplemented,
                    StatusCode::NOT_IMPLEMENTED,
                    "Tern does not serve this service.",
                ),
            ),
        }
    }

    async fn s3(&self, mut req: Request<Incoming>, query: &Query) -> (Served, Response<Body>) {
        if let Some(refusal) = path_refusal(&req) {
            return (Served::Refused, refusal);
        }
        self.admit_session(&mut req, query);
        if let Some(refusal) = self.check_v2(&req, query).await {
            return (Served::Refused, refusal);
        }
        let chunked = header(&req, "x-amz-content-sha256").is_some_and(|v| v.starts_with("STREAMING-"));
        let request_id = tern_s3::audit::RequestId::new();
        req.extensions_mut().insert(request_id.clone());
        let is_head = req.method() == http::Method::HEAD;
        let object_attributes = req.method() == http::Method::GET && query.has("attributes");
        let (parts, incoming) = req.into_parts();
        let body = RequestBody::new(incoming, self.request_timeout, chunked);
        let req = Request::from_parts(parts, Body::from(Box::pin(body) as s3s::stream::DynByteStream));
        let mut response = match self.s3.call(req).await {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(error = ?e, "s3 service failed");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        };
        if let Ok(id) = http::HeaderValue::from_str(&request_id.0) {
            response.headers_mut().insert("x-amz-request-id", id);
        }
        // As a ranged GET, a HEAD of a range or a part is partial content
        // (s3s answers every successful HEAD 200).
        if is_head
            && response.status() == StatusCode::OK
            && response.headers().contains_key(http::header::CONTENT_RANGE)
        {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        if object_attributes && response.status() == StatusCode::OK {
            unquote_attributes_etag(&mut response);
        }
        (Served::S3, response)
    }

    /// Opens the STS session of an S3 request that carries a session token,
    /// and leaves the token in the request for authorization.
    fn admit_session(&self, req: &mut Request<Incoming>, query: &Query) {
        let token = tern_sigv4::scope::session_token(header(req, "x-amz-security-token"), query);
        let Some(token) = token.map(str::to_owned) else { return };
        let access_key = tern_sigv4::scope::access_key_of(header(req, "authorization"), query)
            .or_else(|| v2::Signed::of(header(req, "authorization"), query).map(|s| s.access_key().to_owned()));
        if let Some(access_key) = access_key {
            self.sessions.admit(&self.others.iam, &access_key, &token);
        }
        req.extensions_mut().insert(SessionToken(token));
    }

    /// A response for requests that must not reach a service handler.
    fn refuse(
        &self,
        req: &Request<Incoming>,
        query: &Query,
        scope: Option<&CredentialScope>,
    ) -> Option<Response<Body>> {
        if let Some(name) = SINGLE_VALUED.iter().find(|name| req.headers().get_all(**name).iter().nth(1).is_some()) {
            return Some(s3_error_with(
                S3ErrorCode::InvalidArgument,
                StatusCode::BAD_REQUEST,
                format!("The header {name} may be given only once."),
            ));
        }
        if let Some(refusal) = self.refuse_transport(req) {
            return Some(refusal);
        }
        let form = header(req, "content-type")
            .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
        if req.method() == http::Method::POST && form {
            return Some(s3_error_with(
                S3ErrorCode::NotImplemented,
                StatusCode::NOT_IMPLEMENTED,
                "Browser-based uploads (POST Object with an HTML form) are not supported by Tern.",
            ));
        }
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
        if query.has("X-Amz-Signature") && scope::presigned_too_long(query) {
            return Some(s3_error_with(
                S3ErrorCode::Custom("AuthorizationQueryParametersError".into()),
                StatusCode::BAD_REQUEST,
                "X-Amz-Expires must be less than a week (in seconds) that is 604800",
            ));
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

    /// What the connection cannot carry: routes between regions without the
    /// peer certificate (mutual TLS), and SSE-C keys in the clear over a
    /// network (loopback listeners may, as the embedded default does).
    fn refuse_transport(&self, req: &Request<Incoming>) -> Option<Response<Body>> {
        let transport = req.extensions().get::<Transport>().copied();
        let peer = transport.is_some_and(|t| t.peer_certificate);
        if self.peer_certificates && !peer && internal_routes::is_between_regions(req.uri().path()) {
            return Some(s3_error_with(
                S3ErrorCode::AccessDenied,
                StatusCode::FORBIDDEN,
                "Routes between regions need the deployment's peer certificate.",
            ));
        }
        let exposed = transport.is_none_or(|t| !t.tls && !t.loopback);
        let customer_key = req.headers().keys().any(|name| {
            let name = name.as_str();
            name.starts_with("x-amz-server-side-encryption-customer-")
                || name.starts_with("x-amz-copy-source-server-side-encryption-customer-")
        });
        (exposed && customer_key).then(|| {
            s3_error_with(
                S3ErrorCode::InvalidRequest,
                StatusCode::BAD_REQUEST,
                "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure \
                 connection.",
            )
        })
    }

    /// Checks what s3s does not about a `SigV2` request: that the deployment
    /// accepts `SigV2`, the request's date or the URL's expiry, and the
    /// signature itself, in constant time (s3s then compares it again with
    /// `==`, but only ever sees good ones).
    async fn check_v2(&self, req: &Request<Incoming>, query: &Query) -> Option<Response<Body>> {
        let signed = v2::Signed::of(header(req, "authorization"), query)?;
        if !self.sigv2 {
            return Some(s3_error_with(
                S3ErrorCode::InvalidRequest,
                StatusCode::BAD_REQUEST,
                "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
            ));
        }
        let headers: Vec<(&str, &str)> =
            req.headers().iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))).collect();
        let request = v2::V2Request { method: req.method().as_str(), path: req.uri().path(), query, headers: &headers };
        let refusal = |e: v2::V2Error| {
            let (code, status) = match e {
                v2::V2Error::MissingDate | v2::V2Error::Expired => (S3ErrorCode::AccessDenied, StatusCode::FORBIDDEN),
                v2::V2Error::Skewed => (S3ErrorCode::RequestTimeTooSkewed, StatusCode::FORBIDDEN),
                v2::V2Error::ExpiryTooLong => {
                    (S3ErrorCode::Custom("AuthorizationQueryParametersError".into()), StatusCode::BAD_REQUEST)
                }
                v2::V2Error::Mismatch => (S3ErrorCode::SignatureDoesNotMatch, StatusCode::FORBIDDEN),
            };
            s3_error_with(code, status, e.to_string())
        };
        if let Err(e) = v2::check_time(&signed, &request, time::OffsetDateTime::now_utc()) {
            return Some(refusal(e));
        }
        // An unknown key is s3s's to refuse, with InvalidAccessKeyId.
        let secret = self.auth.secret(signed.access_key()).await?;
        v2::verify(&signed, &request, &secret).err().map(refusal)
    }
}
