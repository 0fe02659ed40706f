//! Requests for the services s3s does not serve (KMS, IAM, STS): they are
//! authenticated here with `tern_sigv4::verify` against the deployment's
//! identities, then answered in their own protocol (JSON 1.1 for KMS, the
//! query protocol's XML for IAM and STS).

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use s3s::Body;
use tern_sigv4::verify::{SignedRequest, VerifyError, verify};

use tern_iam::Iam;
use tern_iam::policy::Principal;
use tern_kms::{Caller, Kms, KmsError};

use crate::iam_peer::{CALLER_PARAM, SESSION_PARAM, SNAPSHOT_ACTION};

/// What the non-S3 services of a region need.
pub struct OtherServices {
    pub iam: std::sync::Arc<Iam>,
    pub kms: std::sync::Arc<Kms>,
}

/// KMS, IAM and STS requests are small; anything larger is refused unread.
const MAX_BODY: usize = 1 << 20;

fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}

/// An error in the protocol of `service`.
fn error(service: &str, status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let message = message.replace('&', "&amp;").replace('<', "&lt;").replace('"', "'");
    if service == "kms" {
        let status = if status == StatusCode::FORBIDDEN { StatusCode::BAD_REQUEST } else { status };
        response(status, "application/x-amz-json-1.1", format!(r#"{{"__type":"{code}","message":"{message}"}}"#))
    } else {
        response(
            status,
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>0</RequestId></ErrorResponse>"
            ),
        )
    }
}

fn auth_error(service: &str, e: &VerifyError) -> Response<Body> {
    let kms = service == "kms";
    let (status, code) = match e {
        VerifyError::Malformed(_) if kms => (StatusCode::BAD_REQUEST, "IncompleteSignatureException"),
        VerifyError::Malformed(_) => (StatusCode::BAD_REQUEST, "IncompleteSignature"),
        VerifyError::UnknownAccessKey if kms => (StatusCode::BAD_REQUEST, "UnrecognizedClientException"),
        VerifyError::UnknownAccessKey => (StatusCode::FORBIDDEN, "InvalidClientTokenId"),
        VerifyError::Skewed | VerifyError::Mismatch if kms => (StatusCode::BAD_REQUEST, "InvalidSignatureException"),
        VerifyError::Skewed => (StatusCode::BAD_REQUEST, "RequestExpired"),
        VerifyError::Mismatch => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
    };
    error(service, status, code, &e.to_string())
}

fn kms_error(e: &KmsError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::json!({"__type": e.code, "message": e.message});
    response(status, "application/x-amz-json-1.1", body.to_string())
}

/// Answers an authenticated KMS request; the operation is named by
/// `X-Amz-Target: TrentService.<Operation>`.
async fn answer_kms(kms: &Kms, caller: &Caller, headers: &http::HeaderMap, body: &[u8]) -> Response<Body> {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some(operation) = target.strip_prefix("TrentService.") else {
        return kms_error(&KmsError::unknown_operation(target));
    };
    match kms.handle(caller, operation, body).await {
        Ok(value) => response(StatusCode::OK, "application/x-amz-json-1.1", value.to_string()),
        Err(e) => kms_error(&e),
    }
}

/// The parameters of a query-protocol request: its form body, or its query
/// string. Written by hand: ten lines, against a crate for one call.
fn form_params(body: &[u8], query: Option<&str>) -> Vec<(String, String)> {
    let text =
        if body.is_empty() { query.unwrap_or_default().to_owned() } else { String::from_utf8_lossy(body).into_owned() };
    let decode =
        |s: &str| urlencoding::decode(&s.replace('+', " ")).map(std::borrow::Cow::into_owned).unwrap_or_default();
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or_else(|| (decode(p), String::new()), |(k, v)| (decode(k), decode(v))))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn xml(status: u16, body: String) -> Response<Body> {
    response(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "text/xml", body)
}

/// Answers an authenticated IAM request. The root may act for a caller
/// another region authenticated (a forwarded call), or fetch a snapshot.
async fn answer_iam(iam: &Iam, principal: Principal, params: &[(String, String)]) -> Response<Body> {
    if !principal.is_root() {
        let params: Vec<_> = params.iter().filter(|(k, _)| !k.starts_with("Tern")).cloned().collect();
        let (status, body) = iam.handle_iam(&principal, &params).await;
        return xml(status, body);
    }
    if param(params, "Action") == Some(SNAPSHOT_ACTION) {
        return snapshot(iam, params);
    }
    let caller = match param(params, CALLER_PARAM) {
        Some(arn) => Principal {
            arn: arn.to_owned(),
            account: iam.account().to_owned(),
            session_arn: param(params, SESSION_PARAM).map(str::to_owned),
            service: None,
        },
        None => principal,
    };
    let params: Vec<_> = params.iter().filter(|(k, _)| !k.starts_with("Tern")).cloned().collect();
    let (status, body) = iam.handle_iam(&caller, &params).await;
    xml(status, body)
}

fn snapshot(iam: &Iam, params: &[(String, String)]) -> Response<Body> {
    let since = param(params, "Since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let key = param(params, "PublicKey")
        .and_then(|k| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, k).ok())
        .and_then(|k| <[u8; 32]>::try_from(k).ok());
    let Some(key) = key else {
        return error("iam", StatusCode::BAD_REQUEST, "ValidationError", "PublicKey is missing or malformed.");
    };
    match iam.snapshot_for(since, &key) {
        Ok(Some(sealed)) => {
            let mut response = Response::new(Body::from(bytes::Bytes::from(sealed)));
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/octet-stream"));
            response
        }
        Ok(None) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Err(e) => error("iam", StatusCode::INTERNAL_SERVER_ERROR, e.code, &e.message),
    }
}

/// Authenticates and answers a request for `service`.
pub async fn answer(service: &str, req: Request<Incoming>, services: &OtherServices) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(collected) = Limited::new(body, MAX_BODY).collect().await else {
        return error(
            service,
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "The request body is too large.",
        );
    };
    let body = collected.to_bytes();
    let headers: Vec<(&str, &str)> =
        parts.headers.iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))).collect();
    let request = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers: &headers,
        body: &body,
    };
    let token = parts.headers.get("x-amz-security-token").and_then(|v| v.to_str().ok());
    let mut principal = None;
    let secret_for = |key: &str| {
        let identity = services.iam.identity(key, token)?;
        principal = Some(identity.principal);
        Some(identity.secret.to_string())
    };
    if let Err(e) = verify(&request, secret_for, time::OffsetDateTime::now_utc()) {
        return auth_error(service, &e);
    }
    let principal = principal.expect("a verified request has an identity");
    match service {
        "kms" => answer_kms(&services.kms, &Caller::new(principal), &parts.headers, &body).await,
        "iam" => answer_iam(&services.iam, principal, &form_params(&body, parts.uri.query())).await,
        "sts" => {
            let (status, body) = services.iam.handle_sts(&principal, &form_params(&body, parts.uri.query()));
            xml(status, body)
        }
        other => {
            let message = format!("The {other} service is not available in Tern.");
            error(other, StatusCode::NOT_IMPLEMENTED, "NotImplemented", &message)
        }
    }
}
