//! Requests for the services s3s does not serve (KMS, IAM, STS): they are
//! authenticated here with `tern_sigv4::verify`, and answer in their own
//! protocol's shape (JSON 1.1 for KMS, query XML for IAM and STS). KMS is
//! served by `tern_kms`; IAM and STS tell an authentic caller that they are
//! not available yet.

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use s3s::Body;
use tern_sigv4::verify::{SignedRequest, VerifyError, verify};

use tern_kms::{Caller, Kms, KmsError};

use crate::credentials::RootCredentials;

/// What the non-S3 services of a region need.
pub struct OtherServices {
    pub root: RootCredentials,
    pub account: String,
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

/// Authenticates and answers a request for `service`.
pub async fn answer(service: &str, req: Request<Incoming>, services: &OtherServices) -> Response<Body> {
    let root = &services.root;
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
    let secret_for = |key: &str| (key == root.access_key_id).then(|| root.secret_access_key.clone());
    if let Err(e) = verify(&request, secret_for, time::OffsetDateTime::now_utc()) {
        return auth_error(service, &e);
    }
    if service == "kms" {
        let caller = Caller::root(&services.account);
        return answer_kms(&services.kms, &caller, &parts.headers, &body).await;
    }
    let message = format!("The {service} service is not available in this Tern build yet.");
    let code = if service == "kms" { "UnsupportedOperationException" } else { "NotImplemented" };
    error(service, StatusCode::NOT_IMPLEMENTED, code, &message)
}
