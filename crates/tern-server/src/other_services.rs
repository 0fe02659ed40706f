//! Requests for the services s3s does not serve (KMS, IAM, STS): they are
//! authenticated here with `tern_sigv4::verify` against the deployment's
//! identities, then answered in their own protocol (JSON 1.1 for KMS, the
//! query protocol's XML for IAM and STS).
//!
//! Who a request is from is settled before its body is read: an anonymous
//! or unknown caller cannot make the region hold a body at all. When the
//! request names its body's hash (Tern's regions always do), the signature
//! itself is checked before a byte is read; otherwise the body is read in
//! one of its caller's few places (`unverified`), under a deadline, out of
//! one bounded budget per region. The signature must then cover the body
//! received.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use s3s::Body;
use tern_audit::{AuditLog, Durability};
use tern_iam::policy::Principal;
use tern_iam::{Iam, SnapshotRequest};
use tern_kms::{Caller, Kms, KmsError};
use tern_sigv4::verify::{SignedRequest, VerifyError, admit};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::audit::{self, Requested};
use crate::body::RequestBody;
use crate::internal_routes;
use crate::listener::ClientAddress;
use crate::unverified::Unverified;

/// KMS, IAM and STS requests are small; anything larger is refused unread.
const MAX_BODY: usize = 1 << 20;
/// Bytes of KMS, IAM and STS bodies a region holds at once, all callers together.
const BODY_BUDGET: usize = 32 << 20;
/// The longest a KMS, IAM or STS body may take to arrive, however it trickles.
const BODY_DEADLINE: Duration = Duration::from_secs(30);
const BUDGET_UNIT: usize = 1024;

/// What the non-S3 services of a region need.
pub struct OtherServices {
    pub iam: Arc<Iam>,
    pub kms: Arc<Kms>,
    pub audit: Arc<AuditLog>,
    buffers: Arc<Semaphore>,
    unverified: Unverified,
}

impl OtherServices {
    #[must_use]
    pub fn new(iam: Arc<Iam>, kms: Arc<Kms>, audit: Arc<AuditLog>) -> Self {
        Self {
            iam,
            kms,
            audit,
            buffers: Arc::new(Semaphore::new(BODY_BUDGET / BUDGET_UNIT)),
            unverified: Unverified::default(),
        }
    }
}

fn response(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response<Body> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}

/// An error in the protocol of `service`.
fn error(service: &str, status: StatusCode, code: &str, message: &str) -> Response<Body> {
    if service == "kms" {
        let status = if status == StatusCode::FORBIDDEN { StatusCode::BAD_REQUEST } else { status };
        let body = serde_json::json!({"__type": code, "message": message}).to_string();
        response(status, "application/x-amz-json-1.1", body)
    } else {
        let namespace = if service == "sts" { tern_iam::sts::NAMESPACE } else { tern_iam::api::NAMESPACE };
        response(status, "text/xml", tern_iam::xml::error(namespace, code, message, status.is_client_error()))
    }
}

fn auth_error(service: &str, e: &VerifyError) -> Response<Body> {
    let kms = service == "kms";
    let (status, code) = match e {
        VerifyError::Malformed(_) if kms => (StatusCode::BAD_REQUEST, "IncompleteSignatureException"),
        VerifyError::Malformed(_) => (StatusCode::BAD_REQUEST, "IncompleteSignature"),
        VerifyError::UnknownAccessKey if kms => (StatusCode::BAD_REQUEST, "UnrecognizedClientException"),
        VerifyError::UnknownAccessKey => (StatusCode::FORBIDDEN, "InvalidClientTokenId"),
        VerifyError::Skewed | VerifyError::Mismatch | VerifyError::BodyHashMismatch if kms => {
            (StatusCode::BAD_REQUEST, "InvalidSignatureException")
        }
        VerifyError::Skewed => (StatusCode::BAD_REQUEST, "RequestExpired"),
        VerifyError::Mismatch | VerifyError::BodyHashMismatch => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
    };
    error(service, status, code, &e.to_string())
}

fn kms_error(e: &KmsError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::json!({"__type": e.code, "message": e.message});
    response(status, "application/x-amz-json-1.1", body.to_string())
}

fn json(result: Result<serde_json::Value, KmsError>) -> Response<Body> {
    match result {
        Ok(value) => response(StatusCode::OK, "application/x-amz-json-1.1", value.to_string()),
        Err(e) => kms_error(&e),
    }
}

fn header_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

fn target<'h>(headers: &'h HeaderMap, prefix: &str) -> Option<&'h str> {
    header_value(headers, "x-amz-target")?.strip_prefix(prefix)
}

/// The parameters of a query-protocol request: its form body, or its query
/// string, decoded as forms are. A parameter given twice is refused: which
/// copy counts must never be a matter of interpretation.
fn form_params(body: &[u8], query: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let text = if body.is_empty() { query.unwrap_or_default().as_bytes() } else { body };
    let params: Vec<(String, String)> =
        serde_urlencoded::from_bytes(text).map_err(|_| "The request parameters are not valid form encoding.")?;
    let mut names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    if let Some([twice, _]) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("The parameter {twice} is given more than once."));
    }
    Ok(params)
}

fn xml(status: u16, body: impl Into<Body>) -> Response<Body> {
    response(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "text/xml", body)
}

/// An authenticated request, its body read.
struct Authenticated {
    principal: Principal,
    parts: http::request::Parts,
    body: Bytes,
}

impl Authenticated {
    fn path(&self) -> &str {
        self.parts.uri.path()
    }

    fn requested<'a>(&'a self, services: &'a OtherServices) -> Requested<'a> {
        Requested {
            region: services.kms.region(),
            account: services.iam.account(),
            principal: &self.principal,
            user_agent: header_value(&self.parts.headers, "user-agent"),
            forwarded_by: None,
        }
    }
}

/// Answers a request signed for `service`.
pub async fn answer(service: &str, req: Request<Incoming>, services: &OtherServices, idle: Duration) -> Response<Body> {
    let request = match authenticate(service, req, services, idle).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    if let Some(note) = crate::access_log::note(&request.parts.extensions) {
        note.caller(&request.principal.arn);
        if let Some(operation) = target(&request.parts.headers, "TrentService.") {
            note.operation(operation);
        }
    }
    match (service, request.path()) {
        ("kms", "/") => answer_kms(services, &request).await,
        ("iam" | "sts", "/") => answer_query(service, services, &request).await,
        ("kms" | "iam", _) => answer_internal(service, services, &request).await,
        (other, _) => error(
            other,
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            &format!("The {other} service is not available in Tern."),
        ),
    }
}

/// Checks the signature: who is calling first, then the body they sent.
async fn authenticate(
    service: &str,
    req: Request<Incoming>,
    services: &OtherServices,
    idle: Duration,
) -> Result<Authenticated, Response<Body>> {
    let (parts, incoming) = req.into_parts();
    let mut headers: Vec<(&str, &str)> =
        parts.headers.iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))).collect();
    // HTTP/2 carries the host as the `:authority` pseudo-header, not a header.
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = parts.uri.authority()
    {
        headers.push(("host", authority.as_str()));
    }
    // Header authentication only: these services take no presigned URLs.
    let no_query = tern_sigv4::query::Query::default();
    let token = tern_sigv4::scope::session_token(header_value(&parts.headers, "x-amz-security-token"), &no_query);
    if let Some(key) = tern_sigv4::scope::access_key_of(header_value(&parts.headers, "authorization"), &no_query) {
        // A key made a moment ago elsewhere must not be unknown for this region's lag.
        if services.iam.identity(&key, token).is_none() {
            services.iam.catch_up().await;
        }
    }
    let mut principal = None;
    let origin = crate::listener::origin(&parts.extensions);
    let secret_for = |key: &str| {
        let identity = services.iam.identity(key, token)?;
        principal = Some(identity.principal.from(origin));
        Some(identity.secret)
    };
    let mut admitted =
        admit(&headers, secret_for, time::OffsetDateTime::now_utc()).map_err(|e| auth_error(service, &e))?;
    let head = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers: &headers,
        body: &[],
    };
    let verified_ahead = admitted.verify_ahead(&head).map_err(|e| auth_error(service, &e))?;
    // Tern's regions always name the body's hash, so its internal routes
    // never read a body before the signature holds.
    if !verified_ahead && head.path.starts_with("/_tern/") {
        return Err(error(
            service,
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "Internal routes need x-amz-content-sha256.",
        ));
    }
    let _place = if verified_ahead {
        None
    } else {
        let client = parts.extensions.get::<ClientAddress>().map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |c| c.0.ip());
        let entered = services.unverified.enter(admitted.access_key(), client, BODY_DEADLINE).await;
        Some(entered.ok_or_else(|| throttled(service))?)
    };
    let body = read_body(service, &parts.headers, incoming, services, idle).await?;
    let request = SignedRequest { body: &body.0, ..head };
    admitted.verify(&request).map_err(|e| auth_error(service, &e))?;
    let principal = principal.expect("an admitted request has an identity");
    drop(headers);
    Ok(Authenticated { principal, parts, body: body.0 })
}

/// Reads a body of at most [`MAX_BODY`] out of the region's budget; the
/// permit is released when the bytes are dropped.
async fn read_body(
    service: &str,
    headers: &HeaderMap,
    incoming: Incoming,
    services: &OtherServices,
    idle: Duration,
) -> Result<(Bytes, OwnedSemaphorePermit), Response<Body>> {
    let too_large =
        || error(service, StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", "The request body is too large.");
    let declared = headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let reserve = declared.unwrap_or(MAX_BODY);
    if reserve > MAX_BODY {
        return Err(too_large());
    }
    let units = u32::try_from(reserve.div_ceil(BUDGET_UNIT).max(1)).expect("MAX_BODY / BUDGET_UNIT fits");
    let permit = Arc::clone(&services.buffers).try_acquire_many_owned(units).map_err(|_| throttled(service))?;
    let timed_out = || error(service, StatusCode::BAD_REQUEST, "RequestTimeout", "The request body took too long.");
    let read = async {
        let mut stream = RequestBody::new(incoming, idle, false);
        let mut body = Vec::with_capacity(declared.unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| error(service, StatusCode::BAD_REQUEST, "RequestTimeout", &e.to_string()))?;
            if body.len() + chunk.len() > reserve {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    };
    // Bytes trickling in keep the idle timer happy; the whole body still has
    // a deadline, so no caller holds its share of the budget for long.
    let body = tokio::time::timeout(BODY_DEADLINE, read).await.map_err(|_| timed_out())??;
    Ok((body, permit))
}

fn throttled(service: &str) -> Response<Body> {
    let code = if service == "kms" { "ThrottlingException" } else { "Throttling" };
    error(service, StatusCode::BAD_REQUEST, code, "Rate exceeded")
}

/// Answers a KMS request (`X-Amz-Target: TrentService.<Operation>`),
/// recorded in the audit trail before the answer goes out.
async fn answer_kms(services: &OtherServices, request: &Authenticated) -> Response<Body> {
    let Some(operation) = target(&request.parts.headers, "TrentService.") else {
        let named = header_value(&request.parts.headers, "x-amz-target").unwrap_or_default();
        return kms_error(&KmsError::unknown_operation(named));
    };
    let kms = &services.kms;
    // Read once as the record reads it: a body KMS would take but the
    // record could not show (a lone surrogate in an unknown member) is refused.
    let body = tern_kms::wire::request_body(&request.body);
    let (parsed, result) = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(parsed) => (parsed, kms.handle(&Caller::new(request.principal.clone()), operation, body).await),
        Err(e) => (serde_json::Value::Null, Err(KmsError::serialization(format!("Could not read the request: {e}")))),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let requested = request.requested(services);
    let (record, durability) = audit::kms_record(&requested, operation, &parsed, &result, &request_id);
    let mut response = match services.audit.append(&record, durability).await {
        Ok(()) => json(result),
        Err(_) => kms_error(&KmsError::internal(tern_audit::record::UNRECORDED.to_owned())),
    };
    if let Ok(id) = http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

/// Answers an IAM or STS query-API request, recorded in the audit trail
/// before the answer goes out.
async fn answer_query(service: &str, services: &OtherServices, request: &Authenticated) -> Response<Body> {
    let params = match form_params(&request.body, request.parts.uri.query()) {
        Ok(params) => params,
        Err(message) => return error(service, StatusCode::BAD_REQUEST, "ValidationError", &message),
    };
    if let (Some(note), Some((_, action))) =
        (crate::access_log::note(&request.parts.extensions), params.iter().find(|(name, _)| name == "Action"))
    {
        note.operation(action);
    }
    let iam = &services.iam;
    let (status, body) = if service == "sts" {
        let (status, body) = iam.handle_sts(&request.principal, &params);
        (status, body.into_bytes())
    } else {
        iam.handle_iam(&request.principal, &params).await
    };
    recorded(service, services, &request.requested(services), &params, (status, body)).await
}

/// The answer `(status, body)` to an IAM or STS call, once its record is on disk.
async fn recorded(
    service: &str,
    services: &OtherServices,
    requested: &Requested<'_>,
    params: &[(String, String)],
    (status, body): (u16, Vec<u8>),
) -> Response<Body> {
    let record = audit::query_record(requested, service, params, &String::from_utf8_lossy(&body));
    match services.audit.append(&record, Durability::BeforeResponse).await {
        Ok(()) => xml(status, body),
        Err(_) => error(service, StatusCode::INTERNAL_SERVER_ERROR, "ServiceFailure", tern_audit::record::UNRECORDED),
    }
}

/// Tern's internal routes: the deployment's root only.
async fn answer_internal(service: &str, services: &OtherServices, request: &Authenticated) -> Response<Body> {
    if !request.principal.is_root() {
        return error(
            service,
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Tern's internal routes are for its regions only.",
        );
    }
    match (service, request.path()) {
        ("kms", internal_routes::KMS) => match target(&request.parts.headers, internal_routes::KMS_TARGET_PREFIX) {
            Some(operation) => json(services.kms.handle_internal(operation, &request.body).await),
            None => kms_error(&KmsError::unknown_operation("")),
        },
        ("iam", internal_routes::IAM_FORWARD) => forwarded_iam(services, request).await,
        ("iam", internal_routes::IAM_SNAPSHOT) => snapshot(&services.iam, &request.body),
        _ => error(service, StatusCode::NOT_FOUND, "NotFound", "No such route."),
    }
}

/// An IAM call a follower authenticated and forwarded: it runs as the
/// caller the follower names, never as the root that signed it, and the
/// authority records it too (marked with the region that forwarded it), so
/// no change to IAM escapes the trail of the region that made it.
async fn forwarded_iam(services: &OtherServices, request: &Authenticated) -> Response<Body> {
    let iam = &services.iam;
    if header_value(&request.parts.headers, internal_routes::CALLER_HEADER).is_none() {
        return error("iam", StatusCode::BAD_REQUEST, "ValidationError", "A forwarded call names its caller.");
    }
    let Some(caller) = internal_routes::caller_of(&request.parts.headers, iam.account()) else {
        return error(
            "iam",
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "What a forwarded call says of its caller is signed.",
        );
    };
    let params = match form_params(&request.body, None) {
        Ok(params) => params,
        Err(message) => return error("iam", StatusCode::BAD_REQUEST, "ValidationError", &message),
    };
    let answer = iam.handle_iam(&caller, &params).await;
    let forwarded_by = header_value(&request.parts.headers, internal_routes::FORWARDED_BY_HEADER);
    let requested = Requested { principal: &caller, user_agent: None, forwarded_by, ..request.requested(services) };
    recorded("iam", services, &requested, &params, answer).await
}

/// Whether every `x-tern-*` header is among the headers the signature covers
/// (a header outside `SignedHeaders` could be added on the way).
fn snapshot(iam: &Iam, body: &[u8]) -> Response<Body> {
    let Ok(request) = serde_json::from_slice::<SnapshotRequest>(body) else {
        return error("iam", StatusCode::BAD_REQUEST, "ValidationError", "The snapshot request is malformed.");
    };
    match iam.snapshot_for(&request) {
        Ok(Some(sealed)) => response(StatusCode::OK, "application/octet-stream", Bytes::from(sealed)),
        Ok(None) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Err(e) => error("iam", StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), e.code, &e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_decoded_once_and_never_twice() {
        let params = form_params(b"Action=GetUser&UserName=al+ice%21", None).unwrap();
        assert_eq!(params[1], ("UserName".to_owned(), "al ice!".to_owned()));
        assert!(form_params(b"UserName=a&UserName=b", None).unwrap_err().contains("UserName"));
        assert_eq!(form_params(b"", Some("Action=ListUsers")).unwrap()[0].1, "ListUsers");
    }
}
